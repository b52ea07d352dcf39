// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Process-wide statistics: named counters in groups ("core:rcv_requests").
 * Counters are registered at start-up (before workers run) and then only
 * touched through their handle with relaxed atomics: no lock, no lookup on the
 * hot path. Lookup by name is for RPC and tests.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "str.h"

typedef struct stat_counter {
	const char *group;
	const char *name;
	_Atomic uint64_t value;
	bool no_reset; /* gauges such as active transactions are not reset by RPC */
	struct stat_counter *next;
} stat_counter_t;

/* Registers (or finds) a counter; the strings must live for the process. */
stat_counter_t *stat_register(const char *group, const char *name, bool no_reset);
stat_counter_t *stat_find(const char *group, const char *name);
/* Visits every counter in registration order. */
void stat_foreach(void (*fn)(const stat_counter_t *c, void *arg), void *arg);
void stat_reset_all(void);

static inline void stat_inc(stat_counter_t *c)
{
	atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
}
static inline void stat_add(stat_counter_t *c, int64_t d)
{
	atomic_fetch_add_explicit(&c->value, (uint64_t)d, memory_order_relaxed);
}
static inline uint64_t stat_get(const stat_counter_t *c)
{
	return atomic_load_explicit(&c->value, memory_order_relaxed);
}
