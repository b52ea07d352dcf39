// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* The method registry and the JSON-RPC 2.0 dispatcher: request in, response out. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "rpc_internal.h"

typedef struct {
	char *name;
	char *doc;
	rpc_handler_t fn;
} method_t;

struct rpc_req {
	const method_t *method;
	const json_t *params;
	arena_t *arena;
	json_w_t result;
	bool faulted;
	int code;
	str_t message;
};

static method_t *methods;
static size_t nmethods, cap_methods;
/* Scratch for one rpc_process() call: the parsed tree, fault messages. */
static arena_t scratch;
static bool scratch_ready;

/* ------------------------------------------------------------- registry */

static const method_t *method_find(str_t name)
{
	for (size_t i = 0; i < nmethods; i++)
		if (str_eq(str_cstr(methods[i].name), name))
			return &methods[i];
	return NULL;
}

static bool valid_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

int rpc_register(const char *method, rpc_handler_t fn, const char *doc)
{
	if (!valid_name(method) || !fn)
		return -EINVAL;
	if (method_find(str_cstr(method)))
		return -EEXIST;
	if (nmethods == cap_methods) {
		size_t cap = cap_methods ? cap_methods * 2 : 32;
		method_t *m = realloc(methods, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		methods = m;
		cap_methods = cap;
	}
	method_t *m = &methods[nmethods];
	m->name = strdup(method);
	m->doc = strdup(doc ? doc : "");
	m->fn = fn;
	if (!m->name || !m->doc) {
		free(m->name);
		free(m->doc);
		return -ENOMEM;
	}
	nmethods++;
	return 0;
}

size_t rpc_method_count(void)
{
	return nmethods;
}

const char *rpc_method_name(size_t idx)
{
	return idx < nmethods ? methods[idx].name : NULL;
}

const char *rpc_method_doc(const char *name)
{
	const method_t *m = method_find(str_cstr(name));
	return m ? m->doc : NULL;
}

/* ------------------------------------------------------ handler helpers */

json_w_t *rpc_result(rpc_req_t *r)
{
	return &r->result;
}

arena_t *rpc_arena(rpc_req_t *r)
{
	return r->arena;
}

const char *rpc_method(const rpc_req_t *r)
{
	return r->method->name;
}

void rpc_fault(rpc_req_t *r, int code, const char *fmt, ...)
{
	if (r->faulted)
		return;
	r->faulted = true;
	r->code = code;
	va_list ap;
	va_start(ap, fmt);
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->message = arena_strdup(r->arena, str_cstr(msg));
}

const json_t *rpc_param(const rpc_req_t *r, unsigned idx, const char *name)
{
	if (json_is(r->params, JSON_ARRAY))
		return json_at(r->params, idx);
	if (json_is(r->params, JSON_OBJECT) && name)
		return json_get(r->params, name);
	return NULL;
}

static int param_missing(rpc_req_t *r, unsigned idx, const char *name)
{
	rpc_fault(r, RPC_E_PARAMS, "missing parameter %u (%s)", idx + 1, name ? name : "?");
	return -EINVAL;
}

static int param_type(rpc_req_t *r, unsigned idx, const char *name, const char *want, const json_t *v)
{
	rpc_fault(r, RPC_E_PARAMS, "parameter %u (%s): expected %s, got %s", idx + 1, name ? name : "?",
		  want, json_type_name(v->type));
	return -EINVAL;
}

static int param_str(rpc_req_t *r, unsigned idx, const char *name, str_t *out, bool required)
{
	const json_t *v = rpc_param(r, idx, name);
	if (!v || v->type == JSON_NULL)
		return required ? param_missing(r, idx, name) : 0;
	if (v->type != JSON_STRING && v->type != JSON_NUMBER)
		return param_type(r, idx, name, "a string", v);
	*out = v->str;
	return 0;
}

static int param_int(rpc_req_t *r, unsigned idx, const char *name, long long *out, bool required)
{
	const json_t *v = rpc_param(r, idx, name);
	if (!v || v->type == JSON_NULL)
		return required ? param_missing(r, idx, name) : 0;
	if (json_is_int(v)) {
		*out = v->i;
		return 0;
	}
	if (v->type == JSON_STRING) {
		str_t s = v->str;
		bool neg = s.len && s.s[0] == '-';
		unsigned long long u;
		if (str_to_u64(str_from(s.s + neg, s.len - neg), (unsigned long long)LLONG_MAX, &u)) {
			*out = neg ? -(long long)u : (long long)u;
			return 0;
		}
	}
	return param_type(r, idx, name, "an integer", v);
}

int rpc_param_str(rpc_req_t *r, unsigned idx, const char *name, str_t *out)
{
	return param_str(r, idx, name, out, true);
}

int rpc_param_opt_str(rpc_req_t *r, unsigned idx, const char *name, str_t *out)
{
	return param_str(r, idx, name, out, false);
}

int rpc_param_int(rpc_req_t *r, unsigned idx, const char *name, long long *out)
{
	return param_int(r, idx, name, out, true);
}

int rpc_param_opt_int(rpc_req_t *r, unsigned idx, const char *name, long long *out)
{
	return param_int(r, idx, name, out, false);
}

/* ------------------------------------------------------------ dispatch */

static void write_error(json_w_t *out, int code, const char *msg, const json_t *id)
{
	json_w_obj_begin(out);
	json_w_kcstr(out, "jsonrpc", "2.0");
	json_w_key(out, "error");
	json_w_obj_begin(out);
	json_w_kint(out, "code", code);
	json_w_kcstr(out, "message", msg);
	json_w_obj_end(out);
	json_w_key(out, "id");
	json_w_value(out, id);
	json_w_obj_end(out);
}

/* Runs the handler and writes its response; the result goes through its own writer. */
static void call(const method_t *m, const json_t *params, const json_t *id, json_w_t *out)
{
	rpc_req_t r = {.method = m, .params = params, .arena = &scratch};
	json_w_init(&r.result);
	m->fn(&r, params);
	if (!r.faulted && !json_w_ok(&r.result)) {
		LOG_ERR(RPC, "%s: the handler wrote an invalid result", m->name);
		rpc_fault(&r, RPC_E_INTERNAL, "Internal error: invalid result");
	}
	if (id) {
		if (r.faulted) {
			write_error(out, r.code, r.message.s ? r.message.s : "error", id);
		} else {
			json_w_obj_begin(out);
			json_w_kcstr(out, "jsonrpc", "2.0");
			json_w_key(out, "result");
			if (r.result.len)
				json_w_raw(out, json_w_text(&r.result));
			else
				json_w_null(out);
			json_w_key(out, "id");
			json_w_value(out, id);
			json_w_obj_end(out);
		}
	}
	json_w_free(&r.result);
}

static const char *check_request(const json_t *req, const json_t **id)
{
	*id = NULL;
	if (!json_is(req, JSON_OBJECT))
		return "Invalid Request: not an object";
	const json_t *v = json_get(req, "id");
	if (v && v->type != JSON_STRING && v->type != JSON_NUMBER && v->type != JSON_NULL)
		return "Invalid Request: id must be a string, a number or null";
	*id = v;
	v = json_get(req, "jsonrpc");
	if (v && !str_eq(json_str(v), STR_LIT("2.0")))
		return "Invalid Request: jsonrpc must be \"2.0\"";
	if (!json_is(json_get(req, "method"), JSON_STRING))
		return "Invalid Request: method must be a string";
	v = json_get(req, "params");
	if (v && v->type != JSON_ARRAY && v->type != JSON_OBJECT && v->type != JSON_NULL)
		return "Invalid Request: params must be an array or an object";
	return NULL;
}

/* One request object. A request without "id" is a notification: run, never answered. */
static void one_request(const json_t *req, json_w_t *out)
{
	static const json_t null_id = {.type = JSON_NULL};
	const json_t *id;
	const char *bad = check_request(req, &id);
	if (bad) {
		write_error(out, RPC_E_INVALID, bad, id ? id : &null_id);
		return;
	}
	str_t name = json_str(json_get(req, "method"));
	const method_t *m = method_find(name);
	if (!m) {
		if (id)
			write_error(out, RPC_E_METHOD, "Method not found", id);
		return;
	}
	const json_t *params = json_get(req, "params");
	call(m, json_is(params, JSON_NULL) ? NULL : params, id, out);
}

static void batch(const json_t *arr, json_w_t *out)
{
	static const json_t null_id = {.type = JSON_NULL};
	if (arr->count == 0) {
		write_error(out, RPC_E_INVALID, "Invalid Request: empty batch", &null_id);
		return;
	}
	/* Each answer is written alone first: a notification adds nothing, and a
	 * batch of notifications only is answered with nothing at all. */
	json_w_t one;
	json_w_init(&one);
	bool any = false;
	json_foreach(req, arr) {
		json_w_reset(&one);
		one_request(req, &one);
		if (!one.len)
			continue;
		if (!any)
			json_w_arr_begin(out);
		any = true;
		json_w_raw(out, json_w_text(&one));
	}
	if (any)
		json_w_arr_end(out);
	json_w_free(&one);
}

int rpc_process(const char *text, size_t len, json_w_t *out)
{
	static const json_t null_id = {.type = JSON_NULL};
	json_t *root;
	json_err_t err = {0};
	if (!scratch_ready) {
		arena_init(&scratch, 16384);
		scratch_ready = true;
	}
	arena_reset(&scratch);
	json_w_reset(out);
	int rc = json_parse(&scratch, text, len, &root, &err);
	if (rc < 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "Parse error: %s at offset %zu", err.msg ? err.msg : "?", err.pos);
		write_error(out, rc == -ENOMEM ? RPC_E_INTERNAL : RPC_E_PARSE, msg, &null_id);
		return RPC_E_PARSE;
	}
	if (json_is(root, JSON_ARRAY))
		batch(root, out);
	else
		one_request(root, out);
	if (!json_w_ok(out)) {
		/* only out of memory gets here: answer something small */
		json_w_reset(out);
		write_error(out, RPC_E_INTERNAL, "Internal error", &null_id);
	}
	arena_reset(&scratch);
	return 0;
}

void rpc_error_response(json_w_t *out, int code, const char *msg)
{
	static const json_t null_id = {.type = JSON_NULL};
	json_w_reset(out);
	write_error(out, code, msg, &null_id);
}

void rpc_dispatch_free(void)
{
	if (scratch_ready)
		arena_free(&scratch);
	scratch_ready = false;
}

/* --------------------------------------------------------------- buffer */

void rpc_buf_put(rpc_buf_t *b, const char *s, size_t n)
{
	if (b->err || !n)
		return;
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->err = true;
				return;
			}
			cap *= 2;
		}
		char *p = realloc(b->s, cap);
		if (!p) {
			b->err = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
}

void rpc_buf_printf(rpc_buf_t *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		rpc_buf_put(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->err = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rpc_buf_put(b, big, (size_t)n);
	free(big);
}

void rpc_buf_free(rpc_buf_t *b)
{
	free(b->s);
	*b = (rpc_buf_t){0};
}
