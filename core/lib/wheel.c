// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "wheel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	pthread_mutex_t lock;
	wheel_timer_t *head;
} slot_t;

static slot_t slots[WHEEL_SLOTS];
static _Atomic uint64_t cur_tick;
static uint64_t start_ms;
static pthread_t thread;
static _Atomic bool running;
static bool started;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t wheel_now_ms(void)
{
	return mono_ms();
}

static void unlink_locked(slot_t *s, wheel_timer_t *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		s->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->next = t->prev = NULL;
	t->slot = -1;
}

void wheel_add(wheel_timer_t *t, uint64_t ms)
{
	uint64_t ticks = (ms + WHEEL_TICK_MS - 1) / WHEEL_TICK_MS;
	if (ticks == 0)
		ticks = 1;
	for (;;) {
		/* Ticks are counted from the start so the due tick does not depend on
		 * when the wheel thread last woke up. */
		uint64_t c = atomic_load(&cur_tick);
		uint64_t now_tick = (mono_ms() - start_ms) / WHEEL_TICK_MS;
		if (now_tick < c)
			now_tick = c;
		t->expire = now_tick + ticks;
		int si = (int)(t->expire % WHEEL_SLOTS);
		slot_t *s = &slots[si];
		pthread_mutex_lock(&s->lock);
		/* The wheel announces a tick before it scans the slot (under this lock):
		 * a tick it has announced must not receive the timer, or it would wait a
		 * whole revolution. */
		if (t->expire <= atomic_load(&cur_tick)) {
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		t->slot = si;
		t->prev = NULL;
		t->next = s->head;
		if (s->head)
			s->head->prev = t;
		s->head = t;
		pthread_mutex_unlock(&s->lock);
		return;
	}
}

bool wheel_cancel(wheel_timer_t *t)
{
	int si = __atomic_load_n(&t->slot, __ATOMIC_ACQUIRE);
	if (si < 0)
		return false;
	slot_t *s = &slots[si];
	pthread_mutex_lock(&s->lock);
	bool removed = t->slot == si;
	if (removed)
		unlink_locked(s, t);
	pthread_mutex_unlock(&s->lock);
	return removed;
}

static void run_slot(uint64_t tick)
{
	slot_t *s = &slots[tick % WHEEL_SLOTS];
	wheel_timer_t *due = NULL;
	pthread_mutex_lock(&s->lock);
	wheel_timer_t *t = s->head;
	while (t) {
		wheel_timer_t *n = t->next;
		if (t->expire <= tick) {
			unlink_locked(s, t);
			t->next = due;
			due = t;
		}
		t = n;
	}
	pthread_mutex_unlock(&s->lock);
	while (due) {
		wheel_timer_t *n = due->next;
		due->next = NULL;
		due->fn(due, due->arg);
		due = n;
	}
}

static void *wheel_main(void *arg)
{
	(void)arg;
	while (atomic_load(&running)) {
		uint64_t target = (mono_ms() - start_ms) / WHEEL_TICK_MS;
		uint64_t c = atomic_load(&cur_tick);
		/* catch up tick by tick after a stall so no slot is skipped */
		while (c < target) {
			c++;
			atomic_store(&cur_tick, c); /* announced before the scan: see wheel_add */
			run_slot(c);
		}
		usleep(WHEEL_TICK_MS * 1000 / 2);
	}
	return NULL;
}

int wheel_start(void)
{
	if (started)
		return 0;
	for (int i = 0; i < WHEEL_SLOTS; i++) {
		pthread_mutex_init(&slots[i].lock, NULL);
		slots[i].head = NULL;
	}
	start_ms = mono_ms();
	atomic_store(&cur_tick, 0);
	atomic_store(&running, true);
	if (pthread_create(&thread, NULL, wheel_main, NULL) != 0) {
		atomic_store(&running, false);
		return -1;
	}
	started = true;
	return 0;
}

void wheel_stop(void)
{
	if (!started)
		return;
	atomic_store(&running, false);
	pthread_join(thread, NULL);
	started = false;
}
