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
} worker_hooks_t;

int workers_start(const ksr_cfg_t *cfg, const worker_hooks_t *hooks);
/* Asks every worker to finish and joins them. */
void workers_stop(void);
unsigned workers_count(void);
/* Id of the calling worker thread, or -1 outside workers. */
int worker_self(void);
