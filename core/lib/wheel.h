// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * A hashed timer wheel driven by one thread. Resolution is one tick
 * (WHEEL_TICK_MS); a timer lands in slot (expiry tick % WHEEL_SLOTS) and fires
 * on the rotation where its tick comes up. Each slot has its own lock, so
 * threads arming and cancelling timers rarely meet.
 *
 * Callbacks run on the wheel's thread, never with a slot lock held. A timer
 * that is cancelled while its callback is about to run cannot be stopped:
 * wheel_cancel() says which happened, so the owner can keep a reference for
 * the callback (the usual pattern: an armed timer holds a reference to its
 * object; whoever takes the timer off the wheel, cancel or callback, drops it).
 */
#include <stdbool.h>
#include <stdint.h>

#define WHEEL_TICK_MS 10
#define WHEEL_SLOTS 1024

typedef struct wheel_timer wheel_timer_t;
typedef void (*wheel_fn)(wheel_timer_t *t, void *arg);

struct wheel_timer {
	wheel_timer_t *next, *prev;
	uint64_t expire;   /* tick */
	int slot;          /* -1 when not on the wheel */
	wheel_fn fn;
	void *arg;
};

int wheel_start(void);
void wheel_stop(void);
/* Current time in ms on the wheel's monotonic clock. */
uint64_t wheel_now_ms(void);

static inline void wheel_timer_init(wheel_timer_t *t, wheel_fn fn, void *arg)
{
	t->next = t->prev = 0;
	t->slot = -1;
	t->fn = fn;
	t->arg = arg;
	t->expire = 0;
}

/* Arms t to fire after ms milliseconds. t must not be armed. */
void wheel_add(wheel_timer_t *t, uint64_t ms);
/* true: t was taken off the wheel before firing. false: not armed, or firing/fired. */
bool wheel_cancel(wheel_timer_t *t);
