// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* KSR.rr over core/rr. */
#include "../core/rr/rr.h"
#include "ksr.h"

int ksr_rr_record_route(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return rr_record_route(c->msg, STR_NULL);
}

int ksr_rr_record_route_params(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return rr_record_route(c->msg, a[0].s);
}

int ksr_rr_record_route_preset_one(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return rr_record_route_preset(c->msg, a[0].s, STR_NULL);
}

int ksr_rr_record_route_preset(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return rr_record_route_preset(c->msg, a[0].s, a[1].s);
}

int ksr_rr_add_rr_param(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return rr_add_param(c->msg, a[0].s);
}

int ksr_rr_loose_route(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return rr_loose_route(c->msg);
}

int ksr_rr_check_route_param(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return rr_check_route_param(c->msg, a[0].s);
}

int ksr_rr_is_direction(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return rr_is_direction(c->msg, a[0].s);
}
