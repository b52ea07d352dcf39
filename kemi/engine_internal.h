// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/* Shared between the files of kemi/ only. */
#include <lua.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "../core/cfg/cfg.h"
#include "ksr.h"

struct pv_cache;
struct pv_vars;

struct ksr_engine {
	unsigned worker_id;
	lua_State *L;
	unsigned gen;             /* script generation of L */
	int traceback_ref;        /* registry slot of L's error handler */
	bool check_only;          /* a scratch engine that only validates a script */
	time_t loaded_at;
	bool last_error;          /* the last reload attempt in this worker failed */
	ksr_ctx_t ctx;
	size_t mem_used, mem_limit;
	struct pv_cache *pv_cache;
	struct pv_vars *vars;     /* $var(x): per worker, survives messages (and reloads) */
	char *scratch;            /* PV values read without a message (event routes) */
	_Atomic long long cb_started_ms; /* monotonic ms when the running callback began, 0 = idle */
	_Atomic int abort;        /* watchdog: over budget, fail allocations, stop at the next hook */
	volatile sig_atomic_t in_c; /* inside a C function called from Lua: not safe to jump out */
	volatile sig_atomic_t jmp_armed;
	int depth;                /* nesting of callbacks (onsend inside request ...) */
	sigjmp_buf jmp;           /* where the watchdog's signal lands when Lua cannot be stopped */
	pthread_t thread;

	struct ksr_engine *next;  /* registry of running engines */
};

extern const char ksr_exit_sentinel;

/* ksr_api.c */
void ksr_api_register(lua_State *L, ksr_engine_t *e);
/* ksr_ffi.c: rebinds BIND_FFI functions through LuaJIT FFI. 0 or -1. */
int ksr_ffi_register(lua_State *L, ksr_engine_t *e);

/* engine registry (budget.c) for RPC and the watchdog */
void ksr_engine_register(ksr_engine_t *e);
void ksr_engine_unregister(ksr_engine_t *e);

/* budget.c */
void ksr_budget_global_init(const ksr_cfg_t *c);
void ksr_budget_global_shutdown(void);
void ksr_budget_start(ksr_engine_t *e);
void ksr_budget_stop(ksr_engine_t *e);
void ksr_budget_abandon_state(ksr_engine_t *e);
void ksr_budget_thread_init(void);
void ksr_engine_foreach(void (*fn)(ksr_engine_t *e, void *arg), void *arg);

/* ksr_pv.c */
void ksr_pv_global_free(void);
void ksr_pv_worker_free(ksr_engine_t *e);
/* A pseudo-variable's value when name is one (1 value, 0 null), -2 quietly when it is not. */
int ksr_pv_lookup(ksr_ctx_t *c, str_t name, ksr_xval_t *out);
