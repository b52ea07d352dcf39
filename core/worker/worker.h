// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Worker threads and the path of a received message through the core:
 * parse -> validate -> (request) route hook | (reply) reply hook -> forward.
 *
 * Each worker owns an event loop, a per-message arena and whatever its hooks
 * create at start (the Lua state: the core never knows it is Lua). Malformed
 * requests get a 4xx from here, before any script runs; malformed replies are
 * dropped. Both are counted.
 */
#include "../cfg/cfg.h"
#include "../msg/msg.h"

typedef struct {
	/* Runs on the new worker thread before it receives anything; returns its engine. */
	void *(*init)(unsigned worker_id);
	void (*fini)(void *engine);
	void (*request)(void *engine, msg_t *m);
	/* Sets m->drop to stop the reply being forwarded. */
	void (*reply)(void *engine, msg_t *m);
	/* A request is about to leave (stateless or stateful); false = do not send it. */
	bool (*onsend)(void *engine, msg_t *m, const net_dest_t *dst, str_t out);
	/* Runs script function `fn` in a route of type `route` (failure, branch ...) with m,
	 * resolved by name at call time so a reload takes effect. <0 error, 0 no such function. */
	int (*named_route)(void *engine, const char *fn, msg_t *m, unsigned route);
	/* Module event ("dialog:end" ...) delivered to script function `fn`. */
	int (*event)(void *engine, const char *fn, const char *evname, msg_t *m);
} worker_hooks_t;

/*
 * Subsystems above the message path (tm) hook in here rather than being called
 * by name, so dependencies keep running one way. A reply filter sees every
 * reply after ksr_reply_route and returns 1 when it took the reply (then it is
 * not forwarded statelessly); done handlers run when a message is finished.
 * Register before workers_start().
 */
void worker_set_reply_filter(int (*fn)(msg_t *m));
void worker_set_done_handler(void (*fn)(msg_t *m));

int workers_start(const ksr_cfg_t *cfg, const worker_hooks_t *hooks);
/* Asks every worker to finish and joins them. */
void workers_stop(void);
unsigned workers_count(void);
/* Id of the calling worker thread, or -1 outside workers. */
int worker_self(void);
/* The calling worker's per-message arena, reset: for a job posted with worker_post()
 * that handles a message of its own. NULL outside workers. */
arena_t *worker_arena_reset(void);
/* The calling worker's engine (what hooks.init returned), NULL outside workers. */
void *worker_engine(void);
/*
 * Runs fn(arg) on worker `id`'s thread, soon (from any thread). Used where work
 * that needs a worker's engine (a failure route after a timeout) arises on a
 * thread that has none. 0, or -1 if the worker does not exist or is stopping.
 */
int worker_post(unsigned id, void (*fn)(void *arg), void *arg);

/* Hooks in force, for subsystems that call back into the script (tm, dialog ...). */
const worker_hooks_t *worker_hooks(void);
/* Linux thread id (as top -H, gdb and /proc/PID/task show it) of worker idx, or -1. */
int worker_tid(unsigned idx);
