// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Time budget of a Lua callback, and the registry of running engines.
 *
 * LuaJIT does not run debug hooks inside JIT-compiled code (Debian's build has
 * no LUAJIT_ENABLE_CHECKHOOK), so `while true do end` cannot be stopped by a
 * count hook alone. A watchdog thread therefore escalates:
 *  1. over budget: set a count hook (stops interpreted code at the next
 *     instruction) and make the state's allocator fail (stops any loop that
 *     allocates); both end the callback with an ordinary Lua error.
 *  2. still running after a grace period: signal the worker thread; if it is in
 *     Lua code (not inside a C function of ours or the allocator, which may hold
 *     locks), the handler jumps back to the callback's start. The state is then
 *     inconsistent: it is abandoned (kept reachable, never used again) and the
 *     worker builds a fresh one from the current script.
 */
#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/lib/log.h"
#include "../core/lib/stats.h"
#include "engine_internal.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static ksr_engine_t *engines;
static pthread_t watchdog;
static bool watchdog_running;
static _Atomic bool watchdog_stop;
static unsigned budget_ms;
static stat_counter_t *st_interrupted, *st_forced;
static _Thread_local ksr_engine_t *cur_engine;
/* States left inconsistent by a forced stop: never touched again, kept reachable. */
static lua_State **abandoned;
static unsigned nabandoned;

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ksr_engine_register(ksr_engine_t *e)
{
	e->thread = pthread_self();
	cur_engine = e;
	pthread_mutex_lock(&reg_lock);
	e->next = engines;
	engines = e;
	pthread_mutex_unlock(&reg_lock);
}

void ksr_engine_unregister(ksr_engine_t *e)
{
	pthread_mutex_lock(&reg_lock);
	for (ksr_engine_t **p = &engines; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	if (cur_engine == e)
		cur_engine = NULL;
}

void ksr_engine_foreach(void (*fn)(ksr_engine_t *e, void *arg), void *arg)
{
	pthread_mutex_lock(&reg_lock);
	for (ksr_engine_t *e = engines; e; e = e->next)
		fn(e, arg);
	pthread_mutex_unlock(&reg_lock);
}

static void abort_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	luaL_error(L, "script exceeded its time budget of %d ms", (int)budget_ms);
}

static void on_stop_signal(int sig)
{
	ksr_engine_t *e = cur_engine;
	(void)sig;
	if (e && e->jmp_armed && !e->in_c && atomic_load(&e->abort))
		siglongjmp(e->jmp, 1);
}

static int stop_signal(void)
{
	return SIGRTMIN + 3;
}

static void check_engine(ksr_engine_t *e, void *arg)
{
	long long now = *(long long *)arg;
	long long started = atomic_load(&e->cb_started_ms);
	if (!started || now - started <= budget_ms)
		return;
	if (!atomic_exchange(&e->abort, 1)) {
		stat_inc(st_interrupted);
		/* lua_sethook may be called from another thread (it only sets fields) */
		lua_sethook(e->L, abort_hook, LUA_MASKCOUNT, 1);
		return;
	}
	long long grace = budget_ms / 2 > 100 ? budget_ms / 2 : 100;
	if (now - started > budget_ms + grace)
		pthread_kill(e->thread, stop_signal());
}

static void *watchdog_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&watchdog_stop)) {
		long long now = mono_ms();
		ksr_engine_foreach(check_engine, &now);
		usleep(20000);
	}
	return NULL;
}

void ksr_budget_global_init(const ksr_cfg_t *c)
{
	budget_ms = c->lua.time_budget_ms;
	st_interrupted = stat_register("app_lua", "budget_interrupts", false);
	st_forced = stat_register("app_lua", "states_abandoned", false);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(stop_signal(), &sa, NULL);
	if (budget_ms && !watchdog_running) {
		atomic_store(&watchdog_stop, false);
		watchdog_running = pthread_create(&watchdog, NULL, watchdog_main, NULL) == 0;
	}
}

void ksr_budget_global_shutdown(void)
{
	if (!watchdog_running)
		return;
	atomic_store(&watchdog_stop, true);
	pthread_join(watchdog, NULL);
	watchdog_running = false;
}

void ksr_budget_start(ksr_engine_t *e)
{
	atomic_store(&e->abort, 0);
	/* a hook set by the watchdog just as the previous callback ended */
	if (lua_gethook(e->L))
		lua_sethook(e->L, NULL, 0, 0);
	atomic_store(&e->cb_started_ms, mono_ms());
}

void ksr_budget_stop(ksr_engine_t *e)
{
	atomic_store(&e->cb_started_ms, 0);
	if (atomic_exchange(&e->abort, 0))
		lua_sethook(e->L, NULL, 0, 0);
}

void ksr_budget_abandon_state(ksr_engine_t *e)
{
	pthread_mutex_lock(&reg_lock);
	lua_State **a = realloc(abandoned, sizeof(*a) * (nabandoned + 1));
	if (a) {
		a[nabandoned++] = e->L;
		abandoned = a;
	}
	pthread_mutex_unlock(&reg_lock);
	stat_inc(st_forced);
	LOG_ERR(LUA, "worker %u: script stopped by force after exceeding its time budget; state replaced",
		e->worker_id);
	e->L = NULL;
	e->gen = 0;
}

/* Unblocks the stop signal on a worker thread (workers start with all signals blocked). */
void ksr_budget_thread_init(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, stop_signal());
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}
