// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "engine.h"

#include <errno.h>
#include <lauxlib.h>
#include <libgen.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/lib/log.h"
#include "../core/lib/stats.h"
#include "../core/sl/sl.h"
#include "config.h"
#include "engine_internal.h"
#include "ksr.h"

static const ksr_cfg_t *cfg;
static char *script_path;            /* current script; replaced on reload with a path */
static pthread_mutex_t script_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic unsigned script_gen = 1;
static stat_counter_t *st_script_errors, *st_reloads, *st_reload_errors;

/* Its address is the value KSR.x.exit() raises; compared by identity. */
const char ksr_exit_sentinel = 0;

/* ---------------------------------------------------------------- allocator */

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	ksr_engine_t *e = ud;
	void *p = NULL;
	e->in_c++; /* malloc may hold locks: the watchdog must not jump out of here */
	if (nsize == 0) {
		free(ptr);
		e->mem_used -= osize;
		goto out;
	}
	/* ptr == NULL: osize is a type tag, not a size */
	size_t old = ptr ? osize : 0;
	/* Failing the allocation makes Lua raise "not enough memory", handled like any
	 * script error: that is how both the memory budget and an aborted callback end. */
	/* Enforced only while a callback runs: an allocation that fails outside
	 * lua_pcall (the engine pushing the next callback) makes LuaJIT panic and
	 * exit the process. */
	if (nsize > old && e->depth > 0 &&
	    ((e->mem_limit && e->mem_used + (nsize - old) > e->mem_limit) ||
	     atomic_load_explicit(&e->abort, memory_order_relaxed)))
		goto out;
	p = realloc(ptr, nsize);
	if (p)
		e->mem_used += nsize - old;
out:
	e->in_c--;
	return p;
}

/* ---------------------------------------------------------------- state setup */

static void set_package_path(lua_State *L, const char *script)
{
	char *dup = strdup(script);
	const char *dir = dup ? dirname(dup) : ".";
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s/lua/lib/?.lua;%s/lua/lib/?/init.lua;", dir, dir,
			KSR_SOURCE_DIR, KSR_SOURCE_DIR);
	lua_getfield(L, -2, "path");
	lua_concat(L, 2);
	lua_setfield(L, -2, "path");
	lua_pop(L, 1);
	free(dup);
}

static int traceback_handler(lua_State *L)
{
	if (lua_touserdata(L, 1) == &ksr_exit_sentinel)
		return 1;
	const char *msg = lua_tostring(L, 1);
	luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
	return 1;
}

static int global_guard(lua_State *L)
{
	const char *k = lua_tostring(L, 2);
	return luaL_error(L, "assignment to undeclared global '%s' (declare it at load time or use local)",
			  k ? k : "?");
}

/* Makes writes to new globals an error once the script is loaded (STYLE.md). */
static void lock_globals(lua_State *L)
{
	lua_pushvalue(L, LUA_GLOBALSINDEX);
	lua_newtable(L);
	lua_pushcfunction(L, global_guard);
	lua_setfield(L, -2, "__newindex");
	lua_setmetatable(L, -2);
	lua_pop(L, 1);
}

static ksr_engine_t *engine_new(unsigned worker_id)
{
	ksr_engine_t *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->worker_id = worker_id;
	e->ctx.engine = e;
	e->mem_limit = cfg && cfg->lua.mem_budget_mb ? (size_t)cfg->lua.mem_budget_mb << 20 : 0;
	return e;
}

/* Loading a script runs its top level: bounded, so a loop there cannot hang the
 * thread that checks it (the main thread, for a reload). Twice a callback's
 * budget, at least half a second. */
static long long load_deadline_ms;
static unsigned load_budget_ms = 2000;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void load_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (now_ms() > load_deadline_ms)
		luaL_error(L, "the script's top level exceeded its time budget of %u ms at load (an endless loop?)",
			   load_budget_ms);
}

/* Creates a state with the KSR table and runs the script. NULL + errbuf on failure. */
static lua_State *state_load(ksr_engine_t *e, const char *path, char *errbuf, size_t errlen)
{
	lua_State *L = lua_newstate(lua_alloc, e);
	if (!L) {
		snprintf(errbuf, errlen, "cannot create a Lua state (out of memory)");
		return NULL;
	}

	luaL_openlibs(L);
	if (e->check_only) {
		/* interpreted (after openlibs, which turns the JIT on), so the count
		 * hook sees every loop */
		luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
		load_deadline_ms = now_ms() + load_budget_ms;
		lua_sethook(L, load_hook, LUA_MASKCOUNT, 10000);
	}
	set_package_path(L, path);
	ksr_api_register(L, e);
	ksr_ffi_register(L, e); /* on failure the C-API closures stay: slower, same behaviour */
	lua_pushcfunction(L, traceback_handler);
	int rc = luaL_loadfile(L, path);
	if (rc == 0) {
		e->ctx.route = RT_NONE;
		e->ctx.msg = NULL;
		rc = lua_pcall(L, 0, 0, -2);
	}
	if (rc != 0) {
		const char *msg = lua_touserdata(L, -1) == &ksr_exit_sentinel ? "KSR.x.exit() at load time"
										 : lua_tostring(L, -1);
		snprintf(errbuf, errlen, "%s", msg ? msg : "unknown Lua error");
		lua_close(L);
		return NULL;
	}
	lua_pop(L, 1);
	lua_getglobal(L, "ksr_request_route");
	bool ok = lua_isfunction(L, -1);
	lua_pop(L, 1);
	if (!ok) {
		snprintf(errbuf, errlen, "%s: function ksr_request_route is not defined", path);
		lua_close(L);
		return NULL;
	}
	lock_globals(L);
	lua_pushcfunction(L, traceback_handler);
	e->traceback_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return L;
}

static char *current_script(void)
{
	pthread_mutex_lock(&script_lock);
	char *p = script_path ? strdup(script_path) : NULL;
	pthread_mutex_unlock(&script_lock);
	return p;
}

/* Brings the worker's state to the current generation. */
static void engine_sync(ksr_engine_t *e)
{
	if (e->depth)
		return; /* never swap the state under a running callback */
	unsigned gen = atomic_load_explicit(&script_gen, memory_order_acquire);
	if (e->L && e->gen == gen)
		return;
	char err[1024];
	char *path = current_script();
	if (!path)
		return;
	lua_State *L = state_load(e, path, err, sizeof(err));
	free(path);
	if (!L) {
		/* validated by the reload RPC, so only a file changed since: keep the old one */
		LOG_ERR(LUA, "worker %u: cannot load script generation %u: %s", e->worker_id, gen, err);
		e->last_error = true;
		e->gen = gen;
		return;
	}
	if (e->L)
		lua_close(e->L);
	e->L = L;
	e->gen = gen;
	e->loaded_at = time(NULL);
	e->last_error = false;
}

/* ---------------------------------------------------------------- callbacks */

static void *hook_init(unsigned worker_id)
{
	ksr_budget_thread_init();
	ksr_engine_t *e = engine_new(worker_id);
	if (!e)
		return NULL;
	engine_sync(e);
	if (!e->L) {
		free(e);
		return NULL;
	}
	ksr_engine_register(e);
	return e;
}

static void hook_fini(void *p)
{
	ksr_engine_t *e = p;
	if (!e)
		return;
	ksr_engine_unregister(e);
	ksr_pv_worker_free(e);
	if (e->L)
		lua_close(e->L);
	free(e);
}

/*
 * Runs global function `name` with the message as context. Returns 1 when the
 * function ran (or ended with KSR.x.exit), 0 when not defined, -1 on error.
 */
static int run_callback(ksr_engine_t *e, const char *name, msg_t *m, unsigned route, const char *arg)
{
	lua_State *L = e->L;
	/* Callbacks nest (the onsend route runs inside KSR.forward): only the outermost
	 * one owns the time budget and the watchdog's landing point. */
	bool outer = e->depth == 0;
	int base = lua_gettop(L);
	/* the handler closure is made once per state: lua_pushcfunction would allocate */
	lua_rawgeti(L, LUA_REGISTRYINDEX, e->traceback_ref);
	lua_getglobal(L, name);
	if (!lua_isfunction(L, -1)) {
		lua_settop(L, base);
		return 0;
	}
	ksr_ctx_t saved = e->ctx;
	e->ctx.msg = m;
	e->ctx.route = route;
	e->ctx.exit = false;
	if (outer) {
		ksr_budget_start(e);
		/* no mask saved: saving it costs a system call per message; the one
		   path that jumps here restores the mask itself */
		if (sigsetjmp(e->jmp, 0)) {
			/* the watchdog's signal: L is unusable from here on; the jump left
			   the handler without returning, so its signal is still blocked */
			ksr_budget_thread_init();
			e->jmp_armed = 0;
			e->depth = 0;
			ksr_budget_stop(e);
			ksr_budget_abandon_state(e);
			engine_sync(e);
			str_t cid = m ? sip_msg_callid(&m->sip) : STR_NULL;
			LOG_MSG_ERR(LUA, &cid, "%s stopped: time budget exceeded in compiled code", name);
			stat_inc(st_script_errors);
			e->ctx = saved;
			return -1;
		}
		e->jmp_armed = 1;
	}
	int nargs = 0;
	if (arg) {
		lua_pushstring(L, arg);
		nargs = 1;
	}
	e->depth++;
	int rc = lua_pcall(L, nargs, 0, base + 1);
	e->depth--;
	bool over_budget = outer && atomic_load(&e->abort);
	if (outer) {
		e->jmp_armed = 0;
		ksr_budget_stop(e);
	}
	int ret = 1;
	if (rc != 0 && lua_touserdata(L, -1) != &ksr_exit_sentinel) {
		str_t cid = m ? sip_msg_callid(&m->sip) : STR_NULL;
		const char *msg = lua_tostring(L, -1);
		LOG_MSG_ERR(LUA, &cid, "error in %s: %s%s", name,
			    over_budget ? "time budget exceeded, stopped at: " : "", msg ? msg : "?");
		stat_inc(st_script_errors);
		ret = -1;
	}
	e->ctx = saved;
	lua_settop(L, base);
	if (rc == LUA_ERRMEM || (outer && e->mem_limit && e->mem_used > e->mem_limit / 2))
		lua_gc(L, LUA_GCCOLLECT, 0); /* what the failed callback left must not starve the next */
	return ret;
}

static void hook_request(void *p, msg_t *m)
{
	ksr_engine_t *e = p;
	engine_sync(e);
	int rc = run_callback(e, "ksr_request_route", m, RT_REQUEST, NULL);
	if (rc < 0 && !m->replied && m->sip.method_id != METH_ACK)
		sl_send_reply(m, 500, STR_LIT("Server Internal Error"));
}

static void hook_reply(void *p, msg_t *m)
{
	ksr_engine_t *e = p;
	engine_sync(e);
	run_callback(e, "ksr_reply_route", m, RT_REPLY, NULL);
}

static bool hook_onsend(void *p, msg_t *m, const net_dest_t *dst, str_t out)
{
	ksr_engine_t *e = p;
	const net_dest_t *saved_snd = e->ctx.snd;
	str_t saved_buf = e->ctx.snd_buf;
	bool saved_drop = m->drop;
	m->drop = false;
	e->ctx.snd = dst;
	e->ctx.snd_buf = out;
	run_callback(e, "ksr_onsend_route", m, RT_ONSEND, NULL);
	bool send = !m->drop;
	m->drop = saved_drop;
	e->ctx.snd = saved_snd;
	e->ctx.snd_buf = saved_buf;
	return send;
}

static int hook_named_route(void *p, const char *fn, msg_t *m, unsigned route)
{
	ksr_engine_t *e = p;
	engine_sync(e);
	return run_callback(e, fn, m, route, NULL);
}

static int hook_event(void *p, const char *fn, const char *evname, msg_t *m)
{
	ksr_engine_t *e = p;
	engine_sync(e);
	return run_callback(e, fn, m, RT_EVENT, evname);
}

static const worker_hooks_t hooks = {
	.init = hook_init,
	.fini = hook_fini,
	.request = hook_request,
	.reply = hook_reply,
	.onsend = hook_onsend,
	.named_route = hook_named_route,
	.event = hook_event,
};

const worker_hooks_t *ksr_engine_hooks(void)
{
	return &hooks;
}

/* ---------------------------------------------------------------- global */

static int check_script(const char *path, char *errbuf, size_t errlen)
{
	ksr_engine_t *e = engine_new(0);
	if (!e) {
		snprintf(errbuf, errlen, "out of memory");
		return -1;
	}
	e->check_only = true;
	lua_State *L = state_load(e, path, errbuf, errlen);
	if (L)
		lua_close(L);
	ksr_pv_worker_free(e);
	free(e);
	return L ? 0 : -1;
}

int ksr_engine_init(const ksr_cfg_t *c, char *errbuf, size_t errlen)
{
	cfg = c;
	load_budget_ms = c->lua.time_budget_ms * 2 > 500 ? c->lua.time_budget_ms * 2 : 500;
	st_script_errors = stat_register("app_lua", "script_errors", false);
	st_reloads = stat_register("app_lua", "reloads", false);
	st_reload_errors = stat_register("app_lua", "reload_errors", false);
	ksr_budget_global_init(c);
	if (check_script(c->script, errbuf, errlen) < 0)
		return -1;
	pthread_mutex_lock(&script_lock);
	free(script_path);
	script_path = strdup(c->script);
	pthread_mutex_unlock(&script_lock);
	return script_path ? 0 : -1;
}

void ksr_engine_shutdown(void)
{
	ksr_budget_global_shutdown();
	pthread_mutex_lock(&script_lock);
	free(script_path);
	script_path = NULL;
	pthread_mutex_unlock(&script_lock);
	ksr_pv_global_free();
}

int ksr_engine_reload(const char *path, char *errbuf, size_t errlen)
{
	char *p = path ? strdup(path) : current_script();
	if (!p) {
		snprintf(errbuf, errlen, "no script");
		return -1;
	}
	if (check_script(p, errbuf, errlen) < 0) {
		stat_inc(st_reload_errors);
		LOG_ERR(LUA, "reload refused: %s", errbuf);
		free(p);
		return -1;
	}
	pthread_mutex_lock(&script_lock);
	free(script_path);
	script_path = p;
	pthread_mutex_unlock(&script_lock);
	unsigned g = atomic_fetch_add_explicit(&script_gen, 1, memory_order_acq_rel) + 1;
	stat_inc(st_reloads);
	LOG_INFO(LUA, "script %s accepted, generation %u", p, g);
	return 0;
}

unsigned ksr_engine_generation(void)
{
	return atomic_load(&script_gen);
}

const char *ksr_engine_script(void)
{
	return script_path;
}
