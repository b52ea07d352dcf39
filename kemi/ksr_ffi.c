// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * LuaJIT FFI binding for the functions the table marks BIND_FFI.
 *
 * Classic lua_CFunction calls are never JIT-compiled; calls through ffi.C are.
 * So for pure, hot functions (pseudo-variable reads, method tests, header
 * reads) the engine replaces the C-API closure by a small Lua wrapper, made
 * from a template per signature, that fills a per-state argument buffer and
 * calls ksr_ffi_call() through the FFI. Such functions must never call back
 * into Lua or raise a Lua error: the table is where that promise is made.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "../core/lib/log.h"
#include "engine_internal.h"
#include "ksr.h"

#define KSR_EXPORT __attribute__((visibility("default")))
#define KSR_FFI_REFUSED (-0x7fff)

/* Called from Lua through ffi.C; same checks as the C-API dispatcher except
 * arity and types, which the generated wrapper checks before the call. */
KSR_EXPORT int ksr_ffi_call(ksr_engine_t *e, unsigned idx, const ksr_arg_t *argv, ksr_xval_t *ret);

int ksr_ffi_call(ksr_engine_t *e, unsigned idx, const ksr_arg_t *argv, ksr_xval_t *ret)
{
	char name[64];
	if (idx >= ksr_nfns)
		return KSR_FFI_REFUSED;
	const ksr_fn_def_t *f = &ksr_fns[idx];
	ksr_ctx_t *ctx = &e->ctx;
	bool allowed = ctx->route == RT_NONE ? (f->routes & (1u << 15)) != 0 : (f->routes & ctx->route) != 0;
	ret->type = XVAL_NULL;
	if (!allowed) {
		LOG_ERR(LUA, "%s is not allowed in a %s route", ksr_fn_fullname(f, name, sizeof(name)),
			ksr_route_name(ctx->route));
		return KSR_FFI_REFUSED;
	}
	ctx->fn = f;
	e->in_c++;
	int rc = f->impl(ctx, argv, ret);
	e->in_c--;
	ctx->fn = NULL;
	return rc;
}

/*
 * The Lua side. `make(idx, params, ret, null)` returns the wrapper for one
 * function; the code is generated per signature so every wrapper is a plain
 * function with fixed arguments (what the JIT compiles best).
 */
static const char ffi_setup[] =
	"local ffi = require 'ffi'\n"
	"local E, fail_arity, fail_type = ...\n"
	"pcall(ffi.cdef, [[\n"
	"typedef struct { const char *s; size_t len; } ksr_str_t;\n"
	"typedef struct { ksr_str_t s; long long i; } ksr_arg_t;\n"
	"typedef struct { int type; long long i; ksr_str_t s; } ksr_xval_t;\n"
	"int ksr_ffi_call(void *e, unsigned idx, ksr_arg_t *argv, ksr_xval_t *ret);\n"
	"]])\n"
	"local C = ffi.C\n"
	/* a cdata pointer: the JIT cannot convert a lightuserdata argument */
	"E = ffi.cast('void *', E)\n"
	"local argv = ffi.new('ksr_arg_t[6]')\n"
	"local ret = ffi.new('ksr_xval_t')\n"
	"local cache = {}\n"
	"return function(idx, params, rtype, null, fullname)\n"
	"  local n = #params\n"
	"  local args, fill = {}, {}\n"
	"  for i = 1, n do\n"
	"    local a = 'a' .. i\n"
	"    args[i] = a\n"
	"    if params:sub(i, i) == 's' then\n"
	"      fill[i] = ('if type(%s) ~= \"string\" then if type(%s) == \"number\" then %s = tostring(%s) "
	"elseif %s == nil then %s = \"\" else return fail_type(%d) end end argv[%d].s.s = %s argv[%d].s.len = #%s')"
	":format(a, a, a, a, a, a, i, i - 1, a, i - 1, a)\n"
	"    else\n"
	"      fill[i] = ('if type(%s) ~= \"number\" then %s = tonumber(%s) or 0 end argv[%d].i = %s')"
	":format(a, a, a, i - 1, a)\n"
	"    end\n"
	"  end\n"
	"  local tail\n"
	"  if rtype == 'xval' then\n"
	"    tail = 'local t = ret.type if t == 2 then return ffi_string(ret.s.s, ret.s.len) elseif t == 1 then "
	"return tonumber(ret.i) end if rc == -32767 then return nil end return NULLV'\n"
	"  elseif rtype == 'bool' then tail = 'return rc > 0'\n"
	"  elseif rtype == 'int' then tail = 'if rc == -32767 then return -1 end return rc'\n"
	"  else tail = 'return' end\n"
	"  local key = params .. rtype\n"
	"  local maker = cache[key]\n"
	"  if not maker then\n"
	"    local decl = n > 0 and ('local ' .. table.concat(args, ', ') .. ' = ...') or ''\n"
	"    local src = ('local C, E, argv, ret, ffi_string, fail_arity, fail_type, NULLV, IDX, NAME = ...\\n'\n"
	"      .. 'return function(...) if select(\"#\", ...) < %d then return fail_arity() end %s %s '\n"
	"      .. 'local rc = C.ksr_ffi_call(E, IDX, argv, ret) %s end')\n"
	"      :format(n, decl, table.concat(fill, ' '), tail)\n"
	"    maker = assert(loadstring(src, '=ksr_ffi_wrapper'))\n"
	"    cache[key] = maker\n"
	"  end\n"
	"  local nullv\n"
	"  if null == 'empty' then nullv = '' elseif null == 'nullstr' then nullv = '<null>' "
	"elseif null == 'zero' then nullv = 0 end\n"
	"  local failv = false\n"
	"  if rtype == 'int' then failv = -1 elseif rtype == 'xval' then failv = nil end\n"
	"  return maker(C, E, argv, ret, ffi.string,\n"
	"    function() fail_arity(fullname, n) return failv end,\n"
	"    function(i) fail_type(fullname, i) return failv end, nullv, idx, fullname)\n"
	"end\n";

static int fail_arity(lua_State *L)
{
	LOG_ERR(LUA, "%s: expected %d argument(s)", lua_tostring(L, 1), (int)lua_tointeger(L, 2));
	return 0;
}

static int fail_type(lua_State *L)
{
	LOG_ERR(LUA, "%s: argument %d must be a string", lua_tostring(L, 1), (int)lua_tointeger(L, 2));
	return 0;
}

static const char *null_name(ksr_null_mode_t m)
{
	static const char *const names[] = {"nil", "empty", "nullstr", "zero"};
	return names[m];
}

static const char *ret_name(ksr_ret_type_t r)
{
	static const char *const names[] = {"none", "int", "bool", "xval"};
	return names[r];
}

/* Replaces the C-API closures of BIND_FFI functions in the KSR global. 0 or -1. */
int ksr_ffi_register(lua_State *L, ksr_engine_t *e)
{
	int top = lua_gettop(L);
	if (luaL_loadbuffer(L, ffi_setup, sizeof(ffi_setup) - 1, "=ksr_ffi") != 0)
		goto fail;
	lua_pushlightuserdata(L, e);
	lua_pushcfunction(L, fail_arity);
	lua_pushcfunction(L, fail_type);
	if (lua_pcall(L, 3, 1, 0) != 0)
		goto fail;
	int make = lua_gettop(L);
	lua_getglobal(L, "KSR");
	int ksr = lua_gettop(L);
	for (unsigned i = 0; i < ksr_nfns; i++) {
		const ksr_fn_def_t *f = &ksr_fns[i];
		char name[64];
		if (f->bind != BIND_FFI)
			continue;
		bool core = !strcmp(f->module, "core");
		if (core) {
			lua_pushvalue(L, ksr);
		} else {
			lua_getfield(L, ksr, f->module);
		}
		lua_pushvalue(L, make);
		lua_pushinteger(L, i);
		lua_pushstring(L, f->params);
		lua_pushstring(L, ret_name(f->ret));
		lua_pushstring(L, null_name(f->null_mode));
		lua_pushstring(L, ksr_fn_fullname(f, name, sizeof(name)));
		if (lua_pcall(L, 5, 1, 0) != 0)
			goto fail;
		lua_setfield(L, -2, f->name);
		lua_pop(L, 1);
	}
	lua_settop(L, top);
	return 0;
fail:
	LOG_ERR(LUA, "FFI bindings: %s", lua_tostring(L, -1));
	lua_settop(L, top);
	return -1;
}
