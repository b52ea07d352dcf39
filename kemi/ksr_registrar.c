// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* KSR.registrar: thin wrappers over core/registrar. */
#include "../core/registrar/registrar.h"
#include "ksr.h"

/* The NAT source address the script put in registrar.received_avp, if any. */
static str_t received_of(ksr_ctx_t *c)
{
	ksr_arg_t arg = {.s = reg_received_avp()};
	ksr_xval_t v = {0};

	if (!arg.s.len || ksr_pv_get(c, &arg, &v) < 0 || v.type != XVAL_STR)
		return STR_NULL;
	return v.s;
}

int ksr_reg_save(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_save(c->msg, a[0].s, (unsigned)a[1].i, STR_NULL, received_of(c));
}

int ksr_reg_save_uri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_save(c->msg, a[0].s, (unsigned)a[1].i, a[2].s, received_of(c));
}

int ksr_reg_lookup(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_lookup(c->msg, a[0].s, STR_NULL, false);
}

int ksr_reg_lookup_uri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_lookup(c->msg, a[0].s, a[1].s, false);
}

int ksr_reg_lookup_to_dset(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_lookup(c->msg, a[0].s, a[1].s, true);
}

int ksr_reg_lookup_branches(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_lookup_branches(c->msg, a[0].s);
}

int ksr_reg_registered(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_registered(c->msg, a[0].s, STR_NULL);
}

int ksr_reg_registered_uri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_registered(c->msg, a[0].s, a[1].s);
}

int ksr_reg_set_q_override(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_set_q_override(c->msg, a[0].s);
}

int ksr_reg_add_sock_hdr(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_add_sock_hdr(c->msg, a[0].s);
}

int ksr_reg_unregister(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_unregister(c->msg, a[0].s, a[1].s, STR_NULL);
}

int ksr_reg_unregister_ruid(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[2].s.len)
		return -1;
	return reg_unregister(c->msg, a[0].s, a[1].s, a[2].s);
}

int ksr_reg_fetch_contacts(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_fetch_contacts(c->msg, a[0].s, a[1].s, a[2].s);
}

int ksr_reg_free_contacts(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	return reg_free_contacts(a[0].s);
}

int ksr_reg_from_user(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return reg_from_user(c->msg, a[0].s, a[1].s, (int)a[2].i);
}

int ksr_reg_send_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return reg_send_reply(c->msg);
}

static int ulc_get(str_t profile, str_t attr, int idx, ksr_xval_t *r)
{
	str_t s;
	long long i;
	bool is_int;

	if (reg_ulc_get(profile, attr, idx, &s, &i, &is_int) < 0)
		return -1;
	if (is_int)
		return ksr_xval_int(r, i);
	return s.s ? ksr_xval_str(r, s) : -1;
}

int ksr_reg_ulc_rget(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	return ulc_get(a[0].s, a[1].s, -1, r);
}

int ksr_reg_ulc_cget(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	return ulc_get(a[0].s, a[1].s, (int)a[2].i, r);
}
