// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * From the binding table to Lua: one generic dispatcher checks arity, argument
 * types and the route the call is made in, then calls the implementation and
 * converts its result the KEMI way. Also the JSON dump of the table.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "../core/lib/json.h"
#include "../core/lib/log.h"
#include "engine_internal.h"
#include "ksr.h"

const ksr_fn_def_t ksr_fns[] = {
#define KSR_FN(mod, nm, impl, rt, params, routes, nullmode, bind, doc) \
	{#mod, #nm, impl, rt, params, sizeof(params) - 1, routes, nullmode, bind, doc},
#include "ksr.def"
#undef KSR_FN
};
const unsigned ksr_nfns = sizeof(ksr_fns) / sizeof(ksr_fns[0]);

/* The table may not declare more than KEMI's maximum of 6 parameters. */
#define KSR_FN(mod, nm, impl, rt, params, routes, nullmode, bind, doc) \
	_Static_assert(sizeof(params) - 1 <= 6, "KSR." #mod "." #nm ": more than 6 parameters");
#include "ksr.def"
#undef KSR_FN

const char *ksr_fn_fullname(const ksr_fn_def_t *f, char *buf, size_t len)
{
	if (!strcmp(f->module, "core"))
		snprintf(buf, len, "KSR.%s", f->name);
	else
		snprintf(buf, len, "KSR.%s.%s", f->module, f->name);
	return buf;
}

const char *ksr_route_name(unsigned route)
{
	switch (route) {
	case RT_NONE: return "load-time";
	case RT_REQUEST: return "request";
	case RT_REPLY: return "reply";
	case RT_FAILURE: return "failure";
	case RT_BRANCH: return "branch";
	case RT_ONSEND: return "onsend";
	case RT_EVENT: return "event";
	case RT_BRANCH_FAILURE: return "branch-failure";
	default: return "unknown";
	}
}

/* The "false" of each return type, for calls refused before they run. */
static int push_failure(lua_State *L, const ksr_fn_def_t *f)
{
	switch (f->ret) {
	case RET_INT: lua_pushinteger(L, -1); return 1;
	case RET_XVAL: lua_pushnil(L); return 1;
	default: lua_pushboolean(L, 0); return 1;
	}
}

static int push_xval(lua_State *L, const ksr_fn_def_t *f, const ksr_xval_t *v)
{
	switch (v->type) {
	case XVAL_INT: lua_pushinteger(L, (lua_Integer)v->i); return 1;
	case XVAL_STR: lua_pushlstring(L, v->s.s ? v->s.s : "", v->s.len); return 1;
	default: break;
	}
	switch (f->null_mode) {
	case XV_EMPTY: lua_pushliteral(L, ""); break;
	case XV_NULLSTR: lua_pushliteral(L, "<null>"); break;
	case XV_ZERO: lua_pushinteger(L, 0); break;
	default: lua_pushnil(L); break;
	}
	return 1;
}

static int dispatch(lua_State *L)
{
	const ksr_fn_def_t *f = lua_touserdata(L, lua_upvalueindex(1));
	ksr_engine_t *e = lua_touserdata(L, lua_upvalueindex(2));
	ksr_ctx_t *ctx = &e->ctx;
	ksr_arg_t argv[6];
	char name[64];
	int nparams = f->nparams;
	int nargs = lua_gettop(L);

	if (nargs < nparams) {
		LOG_ERR(LUA, "%s: expected %d argument(s), got %d", ksr_fn_fullname(f, name, sizeof(name)),
			nparams, nargs);
		return push_failure(L, f);
	}
	bool allowed = ctx->route == RT_NONE ? (f->routes & (1u << 15)) != 0 : (f->routes & ctx->route) != 0;
	if (!allowed) {
		LOG_ERR(LUA, "%s is not allowed in a %s route", ksr_fn_fullname(f, name, sizeof(name)),
			ksr_route_name(ctx->route));
		return push_failure(L, f);
	}
	for (int i = 0; i < nparams; i++) {
		if (f->params[i] == 'i') {
			argv[i].i = (long long)lua_tointeger(L, i + 1);
			argv[i].s = STR_NULL;
			continue;
		}
		size_t len = 0;
		const char *s = lua_isnil(L, i + 1) ? "" : lua_tolstring(L, i + 1, &len);
		if (!s) {
			LOG_ERR(LUA, "%s: argument %d must be a string, got %s",
				ksr_fn_fullname(f, name, sizeof(name)), i + 1, luaL_typename(L, i + 1));
			return push_failure(L, f);
		}
		argv[i].s = str_from(s, len);
		argv[i].i = 0;
	}
	ksr_xval_t ret = {.type = XVAL_NULL};
	ctx->fn = f;
	e->in_c++;
	int rc = f->impl(ctx, argv, &ret);
	e->in_c--;
	ctx->fn = NULL;
	if (ctx->exit) {
		ctx->exit = false;
		lua_pushlightuserdata(L, (void *)&ksr_exit_sentinel);
		return lua_error(L);
	}
	switch (f->ret) {
	case RET_INT: lua_pushinteger(L, rc); return 1;
	case RET_BOOL: lua_pushboolean(L, rc > 0); return 1;
	case RET_XVAL:
		if (rc < 0)
			ret.type = XVAL_NULL;
		return push_xval(L, f, &ret);
	default: return 0;
	}
}

void ksr_api_register(lua_State *L, ksr_engine_t *e)
{
	lua_newtable(L); /* KSR */
	for (unsigned i = 0; i < ksr_nfns; i++) {
		const ksr_fn_def_t *f = &ksr_fns[i];
		bool top = !strcmp(f->module, "core");
		if (!top) {
			lua_getfield(L, -1, f->module);
			if (lua_isnil(L, -1)) {
				lua_pop(L, 1);
				lua_newtable(L);
				lua_pushvalue(L, -1);
				lua_setfield(L, -3, f->module);
			}
		}
		lua_pushlightuserdata(L, (void *)f);
		lua_pushlightuserdata(L, e);
		lua_pushcclosure(L, dispatch, 2);
		lua_setfield(L, -2, f->name);
		if (!top)
			lua_pop(L, 1);
	}
	lua_setglobal(L, "KSR");
	lua_pushliteral(L, "2.0");
	lua_setglobal(L, "KSRVERSION");
}

const char *ksr_ret_name(ksr_ret_type_t r)
{
	static const char *const names[] = {"none", "int", "bool", "xval"};
	return names[r];
}

static const char *null_name(ksr_null_mode_t m)
{
	static const char *const names[] = {"nil", "empty", "nullstr", "zero"};
	return names[m];
}

void ksr_dump_api(FILE *out)
{
	static const struct {
		unsigned bit;
		const char *name;
	} routes[] = {{RT_REQUEST, "request"}, {RT_REPLY, "reply"},   {RT_FAILURE, "failure"},
		      {RT_BRANCH, "branch"},   {RT_ONSEND, "onsend"}, {RT_EVENT, "event"},
		      {RT_BRANCH_FAILURE, "branch_failure"}, {1u << 15, "load"}};
	json_w_t w;
	json_w_init(&w);
	json_w_obj_begin(&w);
	json_w_kcstr(&w, "version", "2.0");
	json_w_key(&w, "functions");
	json_w_arr_begin(&w);
	for (unsigned i = 0; i < ksr_nfns; i++) {
		const ksr_fn_def_t *f = &ksr_fns[i];
		json_w_obj_begin(&w);
		json_w_kcstr(&w, "module", strcmp(f->module, "core") ? f->module : "");
		json_w_kcstr(&w, "name", f->name);
		json_w_key(&w, "params");
		json_w_arr_begin(&w);
		for (const char *p = f->params; *p; p++)
			json_w_cstr(&w, *p == 'i' ? "int" : "str");
		json_w_arr_end(&w);
		json_w_kcstr(&w, "ret", ksr_ret_name(f->ret));
		json_w_kcstr(&w, "null", null_name(f->null_mode));
		json_w_kcstr(&w, "bind", f->bind == BIND_FFI ? "ffi" : "capi");
		json_w_key(&w, "routes");
		json_w_arr_begin(&w);
		for (unsigned r = 0; r < sizeof(routes) / sizeof(routes[0]); r++)
			if (f->routes & routes[r].bit)
				json_w_cstr(&w, routes[r].name);
		json_w_arr_end(&w);
		json_w_kcstr(&w, "doc", f->doc);
		json_w_obj_end(&w);
	}
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	str_t text = json_w_text(&w);
	fwrite(text.s, 1, text.len, out);
	fputc('\n', out);
	json_w_free(&w);
}
