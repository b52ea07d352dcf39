// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * The Lua engine: one LuaJIT state per worker running the route script, the
 * KSR table built from the binding table, the callbacks the core calls, and
 * hot reload.
 *
 * Reload: ksr_engine_reload() compiles and runs the script in a scratch state
 * on the calling thread; only if that works is the global script generation
 * bumped. Each worker compares its state's generation with the global one
 * before every callback and, when it is behind, builds a fresh state and
 * closes the old one. So a message is always handled entirely by one script.
 */
#include <stdbool.h>
#include <stddef.h>

#include "../core/cfg/cfg.h"
#include "../core/worker/worker.h"

/* Checks the configured script in a scratch state (ksrd -c, and start-up). */
int ksr_engine_init(const ksr_cfg_t *cfg, char *errbuf, size_t errlen);
void ksr_engine_shutdown(void);
/* The hooks to give workers_start(). */
const worker_hooks_t *ksr_engine_hooks(void);

/* Validates `path` (NULL: the current script) and, if good, makes every worker
 * switch to it before its next callback. 0 or -1 with the Lua error in errbuf. */
int ksr_engine_reload(const char *path, char *errbuf, size_t errlen);
unsigned ksr_engine_generation(void);
/* Registers app_lua.* RPC methods. */
int ksr_engine_rpc_init(void);
const char *ksr_engine_script(void);
