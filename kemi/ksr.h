// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * The KSR API: types shared by the binding table (ksr.def), the functions it
 * names and the engine that exposes them to Lua.
 *
 * Every KSR function has one C signature:
 *     int impl(ksr_ctx_t *ctx, const ksr_arg_t *argv, ksr_xval_t *ret);
 * The table says how many arguments of which type it takes ("si" = str, int),
 * what it returns and in which routes it may run; the engine checks all that
 * before the call, so an implementation may trust argv and ctx->msg.
 * For RET_INT/RET_BOOL the int returned is the KEMI result (> 0 true). For
 * RET_XVAL the value goes into *ret (left XV_NULL for "no value"), and the int
 * returned is ignored unless negative (then nil is returned).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/lib/str.h"
#include "../core/msg/msg.h"

/* Route types, as bits so the table can list where a function is allowed. */
enum {
	RT_NONE = 0,        /* script load, no message */
	RT_REQUEST = 1u << 0,
	RT_REPLY = 1u << 1, /* ksr_reply_route / onreply */
	RT_FAILURE = 1u << 2,
	RT_BRANCH = 1u << 3,
	RT_ONSEND = 1u << 4,
	RT_EVENT = 1u << 5,
	RT_BRANCH_FAILURE = 1u << 6,
	RT_MSG = RT_REQUEST | RT_REPLY | RT_FAILURE | RT_BRANCH | RT_ONSEND | RT_BRANCH_FAILURE,
	RT_REQ_ANY = RT_REQUEST | RT_FAILURE | RT_BRANCH | RT_BRANCH_FAILURE,
	RT_ANY = RT_MSG | RT_EVENT,
	RT_ANYWHERE = RT_ANY | 1u << 15, /* also at load time, without a message */
};

typedef enum { RET_NONE, RET_INT, RET_BOOL, RET_XVAL } ksr_ret_type_t;
/* What an XVAL function returns when it has no value (KEMI get/gete/getw/getz). */
typedef enum { XV_NIL, XV_EMPTY, XV_NULLSTR, XV_ZERO } ksr_null_mode_t;
typedef enum { BIND_CAPI, BIND_FFI } ksr_bind_t;

typedef struct {
	str_t s;     /* for 's' parameters (numbers converted); never NULL .s */
	long long i; /* for 'i' parameters */
} ksr_arg_t;

typedef struct {
	enum { XVAL_NULL = 0, XVAL_INT, XVAL_STR } type;
	long long i;
	str_t s;
} ksr_xval_t;

typedef struct ksr_engine ksr_engine_t;

typedef struct ksr_ctx {
	msg_t *msg;            /* NULL outside message callbacks */
	unsigned route;        /* RT_* of the running callback */
	ksr_engine_t *engine;
	bool exit;             /* KSR.x.exit()/drop(): raise the exit sentinel after the call */
	const struct ksr_fn_def *fn; /* function being called, for messages */
	const net_dest_t *snd; /* onsend route: where the request goes */
	str_t snd_buf;         /* onsend route: what is sent */
} ksr_ctx_t;

typedef int ksr_impl_t(ksr_ctx_t *ctx, const ksr_arg_t *argv, ksr_xval_t *ret);

typedef struct ksr_fn_def {
	const char *module;    /* "" for top-level KSR.* */
	const char *name;
	ksr_impl_t *impl;
	ksr_ret_type_t ret;
	const char *params;    /* one char per parameter: 's' or 'i' */
	unsigned char nparams; /* strlen(params), fixed at compile time */
	unsigned routes;
	ksr_null_mode_t null_mode;
	ksr_bind_t bind;
	const char *doc;
} ksr_fn_def_t;

/* The whole table, in ksr.def order, and its length. */
extern const ksr_fn_def_t ksr_fns[];
extern const unsigned ksr_nfns;

/* Prototypes of every implementation named in the table. */
#define KSR_FN(mod, name, impl, ret, params, routes, nullmode, bind, doc) ksr_impl_t impl;
#include "ksr.def"
#undef KSR_FN

/* Helpers for implementations */
static inline int ksr_xval_str(ksr_xval_t *r, str_t s)
{
	r->type = XVAL_STR;
	r->s = s;
	return 1;
}
/* s as the value, or no value (nil) when s is unset */
static inline int ksr_xval_opt_str(ksr_xval_t *r, str_t s)
{
	return s.s ? ksr_xval_str(r, s) : 0;
}
/* KEMI's answer to a comparison of order d: 1 equal, -1 greater, -2 less. */
static inline int ksr_cmp_result(int d)
{
	return d == 0 ? 1 : d > 0 ? -1 : -2;
}
static inline int ksr_xval_int(ksr_xval_t *r, long long v)
{
	r->type = XVAL_INT;
	r->i = v;
	return 1;
}
/* "KSR.sl.send_reply" style name of the function being called. */
const char *ksr_fn_fullname(const ksr_fn_def_t *f, char *buf, size_t len);
/* "none", "int", "bool" or "xval": how --dump-api and app_lua.api_list name a return type */
const char *ksr_ret_name(ksr_ret_type_t r);
const char *ksr_route_name(unsigned route);

/* JSON description of the table (ksrd --dump-api). */
void ksr_dump_api(FILE *out);
