// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * The timer wheel (core/lib/wheel.c) on its real thread and clock: timers fire
 * in order and never early (one tick of tolerance: resolution is a tick), a
 * cancelled timer never runs, many timers spread over every slot each fire
 * once, a timer longer than one revolution (WHEEL_SLOTS * WHEEL_TICK_MS) waits
 * for its own revolution, and timers armed from several threads at once are
 * all fired on time.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/lib/wheel.h"

#define LATE_MS 80 /* how late a timer may fire on a loaded 2-core machine */

typedef struct {
	wheel_timer_t t;
	uint64_t armed_at, due, fired_at;
	_Atomic int fired;
	int id;
} rec_t;

static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static int order[4096];
static int norder;

static void record(wheel_timer_t *t, void *arg)
{
	rec_t *r = arg;
	(void)t;
	r->fired_at = wheel_now_ms();
	atomic_fetch_add(&r->fired, 1);
	pthread_mutex_lock(&order_lock);
	if (norder < (int)(sizeof(order) / sizeof(order[0])))
		order[norder++] = r->id;
	pthread_mutex_unlock(&order_lock);
}

static void arm(rec_t *r, int id, uint64_t ms)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
	wheel_timer_init(&r->t, record, r);
	r->armed_at = wheel_now_ms();
	r->due = r->armed_at + ms;
	wheel_add(&r->t, ms);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Waits until every record fired (or timeout_ms passed). */
static bool wait_all(rec_t *rs, int n, unsigned timeout_ms)
{
	uint64_t end = wheel_now_ms() + timeout_ms;
	for (;;) {
		int done = 0;
		for (int i = 0; i < n; i++)
			done += atomic_load(&rs[i].fired) > 0;
		if (done == n)
			return true;
		if (wheel_now_ms() > end)
			return false;
		sleep_ms(5);
	}
}

static void check_on_time(const rec_t *r)
{
	ck_assert_msg(atomic_load(&r->fired) == 1, "timer %d fired %d times", r->id, atomic_load(&r->fired));
	ck_assert_msg(r->fired_at + WHEEL_TICK_MS >= r->due, "timer %d (%llu ms) fired %lld ms early", r->id,
		      (unsigned long long)(r->due - r->armed_at), (long long)(r->due - r->fired_at));
	ck_assert_msg(r->fired_at <= r->due + LATE_MS, "timer %d (%llu ms) fired %llu ms late", r->id,
		      (unsigned long long)(r->due - r->armed_at), (unsigned long long)(r->fired_at - r->due));
}

static void setup(void)
{
	norder = 0;
	ck_assert_int_eq(wheel_start(), 0);
}

static void teardown(void)
{
	wheel_stop();
}

START_TEST(fire_in_order_not_early)
{
	static rec_t rs[6];
	static const unsigned ms[6] = {250, 40, 130, 20, 90, 180}; /* armed out of order */
	for (int i = 0; i < 6; i++)
		arm(&rs[i], (int)ms[i], ms[i]);
	ck_assert(wait_all(rs, 6, 2000));
	for (int i = 0; i < 6; i++)
		check_on_time(&rs[i]);
	ck_assert_int_eq(norder, 6);
	for (int i = 1; i < norder; i++)
		ck_assert_msg(order[i - 1] < order[i], "timer %d ms fired after %d ms", order[i - 1], order[i]);
}
END_TEST

START_TEST(cancel_before_firing)
{
	static rec_t a, b;
	arm(&a, 1, 60);
	arm(&b, 2, 80);
	ck_assert(wheel_cancel(&a.t));
	ck_assert(!wheel_cancel(&a.t)); /* a second cancel: no longer armed */
	ck_assert(wait_all(&b, 1, 1000));
	sleep_ms(150);
	ck_assert_int_eq(atomic_load(&a.fired), 0);
	ck_assert(!wheel_cancel(&b.t)); /* fired: nothing to take off */
	/* a cancelled timer can be armed again and then fires */
	arm(&a, 3, 30);
	ck_assert(wait_all(&a, 1, 1000));
	check_on_time(&a);
}
END_TEST

START_TEST(cancel_many_in_one_slot)
{
	/* several timers in one slot; cancelling some leaves the others intact */
	static rec_t rs[8];
	for (int i = 0; i < 8; i++)
		arm(&rs[i], i, 100);
	for (int i = 0; i < 8; i += 2)
		ck_assert(wheel_cancel(&rs[i].t));
	ck_assert(wait_all(&rs[1], 1, 1000));
	sleep_ms(100);
	for (int i = 0; i < 8; i++) {
		if (i % 2)
			check_on_time(&rs[i]);
		else
			ck_assert_int_eq(atomic_load(&rs[i].fired), 0);
	}
}
END_TEST

START_TEST(many_timers_across_slots)
{
	enum { N = 3000 };
	static rec_t rs[N];
	/* 10 ms .. ~3 s: every slot of the first 300 gets several, many share a slot */
	for (int i = 0; i < N; i++)
		arm(&rs[i], i, 10 + (unsigned)((i * 7919) % 3000));
	ck_assert(wait_all(rs, N, 6000));
	for (int i = 0; i < N; i++)
		check_on_time(&rs[i]);
	sleep_ms(50);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(atomic_load(&rs[i].fired), 1);
}
END_TEST

START_TEST(longer_than_one_revolution)
{
	static rec_t lap, exact, short_one;
	const unsigned rev = WHEEL_SLOTS * WHEEL_TICK_MS;
	arm(&lap, 1, rev + 300);     /* its slot comes up 300 ms from now: must not fire then */
	arm(&exact, 2, rev);         /* lands in the slot being at now */
	arm(&short_one, 3, 300);     /* shares the slot of `lap` on this revolution */
	ck_assert(wait_all(&short_one, 1, 2000));
	check_on_time(&short_one);
	sleep_ms(200);
	ck_assert_msg(atomic_load(&lap.fired) == 0, "a timer of %u ms fired after %llu ms", rev + 300,
		      (unsigned long long)(lap.fired_at - lap.armed_at));
	ck_assert_int_eq(atomic_load(&exact.fired), 0);
	ck_assert(wait_all(&exact, 1, rev + 2000));
	check_on_time(&exact);
	ck_assert(wait_all(&lap, 1, 2000));
	check_on_time(&lap);
}
END_TEST

/* A callback that arms its own timer again: periodic timers. */
static _Atomic int periodic_runs;
static rec_t periodic;

static void again(wheel_timer_t *t, void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&periodic_runs, 1) + 1 < 5)
		wheel_add(t, 20);
}

START_TEST(rearm_from_callback)
{
	atomic_store(&periodic_runs, 0);
	wheel_timer_init(&periodic.t, again, NULL);
	uint64_t t0 = wheel_now_ms();
	wheel_add(&periodic.t, 20);
	uint64_t end = t0 + 2000;
	while (atomic_load(&periodic_runs) < 5 && wheel_now_ms() < end)
		sleep_ms(5);
	ck_assert_int_eq(atomic_load(&periodic_runs), 5);
	uint64_t took = wheel_now_ms() - t0;
	ck_assert_msg(took + WHEEL_TICK_MS * 5 >= 100, "5 x 20 ms took %llu ms", (unsigned long long)took);
	sleep_ms(60);
	ck_assert_int_eq(atomic_load(&periodic_runs), 5);
}
END_TEST

/* Several threads arm short timers at once while the wheel turns. */
enum { THREADS = 4, PER_THREAD = 400 };
static rec_t mt[THREADS][PER_THREAD];

static void *armer(void *arg)
{
	int k = (int)(intptr_t)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		arm(&mt[k][i], k * PER_THREAD + i, 10 + (unsigned)(i % 5) * 10);
		if (i % 20 == 0)
			sleep_ms(3); /* spread the arming over many ticks */
	}
	return NULL;
}

START_TEST(concurrent_arming)
{
	pthread_t th[THREADS];
	for (int k = 0; k < THREADS; k++)
		ck_assert_int_eq(pthread_create(&th[k], NULL, armer, (void *)(intptr_t)k), 0);
	for (int k = 0; k < THREADS; k++)
		pthread_join(th[k], NULL);
	bool all = wait_all(&mt[0][0], THREADS * PER_THREAD, 3000);
	int missing = 0;
	for (int k = 0; k < THREADS; k++)
		for (int i = 0; i < PER_THREAD; i++)
			missing += atomic_load(&mt[k][i].fired) == 0;
	ck_assert_msg(all, "%d timers of 10..50 ms had not fired after 3 s", missing);
	for (int k = 0; k < THREADS; k++)
		for (int i = 0; i < PER_THREAD; i++)
			check_on_time(&mt[k][i]);
}
END_TEST

static Suite *wheel_suite(void)
{
	Suite *s = suite_create("wheel");
	TCase *tc = tcase_create("timers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 40);
	tcase_add_test(tc, fire_in_order_not_early);
	tcase_add_test(tc, cancel_before_firing);
	tcase_add_test(tc, cancel_many_in_one_slot);
	tcase_add_test(tc, many_timers_across_slots);
	tcase_add_test(tc, longer_than_one_revolution);
	tcase_add_test(tc, rearm_from_callback);
	tcase_add_test(tc, concurrent_arming);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(wheel_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
