// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "worker.h"

#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../fwd/fwd.h"
#include "../lib/log.h"
#include "../lib/stats.h"
#include "../sl/sl.h"

typedef struct job {
	void (*fn)(void *arg);
	void *arg;
	struct job *next;
} job_t;

typedef struct {
	unsigned id;
	pthread_t thread;
	struct ev_loop *loop;
	ev_async stop;
	ev_async jobs_wake;
	pthread_mutex_t jobs_lock;
	job_t *jobs, *jobs_tail;
	bool accepting; /* under jobs_lock */
	net_worker_t *net;
	void *engine;
	arena_t arena;
	msg_t msg;
	pthread_mutex_t ready_lock;
	pthread_cond_t ready_cond;
	int ready; /* 0 starting, 1 running, -1 failed */
} worker_t;

static worker_t *workers;
static unsigned nworkers;
static worker_hooks_t hooks;
static _Thread_local worker_t *self;
static int (*reply_filter)(msg_t *m);
static void (*done_handler)(msg_t *m);
static bool reply_unmatched = true;
static stat_counter_t *st_rcv_req, *st_rcv_rpl, *st_bad_req, *st_bad_rpl, *st_bad_dropped;

void worker_set_reply_filter(int (*fn)(msg_t *m))
{
	reply_filter = fn;
}

void worker_set_done_handler(void (*fn)(msg_t *m))
{
	done_handler = fn;
}

int worker_self(void)
{
	return self ? (int)self->id : -1;
}

arena_t *worker_arena_reset(void)
{
	if (!self)
		return NULL;
	arena_reset(&self->arena);
	return &self->arena;
}

void *worker_engine(void)
{
	return self ? self->engine : NULL;
}

const worker_hooks_t *worker_hooks(void)
{
	return &hooks;
}

static bool onsend(msg_t *m, const net_dest_t *d, str_t out)
{
	return !hooks.onsend || !self || hooks.onsend(self->engine, m, d, out);
}

unsigned workers_count(void)
{
	return nworkers;
}

static void bad_message(msg_t *m)
{
	/* kept before replying: the reply builder's accessors may overwrite m->sip.err */
	sip_error_t err = m->sip.err;
	str_t cid = sip_msg_callid(&m->sip);
	if (m->sip.type == SIP_REQUEST && err.status >= 400 && m->sip.method_id != METH_ACK &&
	    sl_reply_error(m) > 0) {
		stat_inc(st_bad_req);
		LOG_MSG_INFO(CORE, &cid, "bad request answered %d %s", err.status, err.reason ? err.reason : "");
		return;
	}
	stat_inc(m->sip.type == SIP_REPLY ? st_bad_rpl : st_bad_dropped);
	LOG_MSG_INFO(CORE, &cid, "malformed message dropped: %s", err.reason ? err.reason : "?");
}

static void on_message(const net_rcv_t *rcv, const char *buf, size_t len)
{
	worker_t *w = self;
	msg_t *m = &w->msg;
	arena_reset(&w->arena);
	int rc = msg_init(m, &w->arena, rcv, buf, len);
	if (rc == SIP_OK)
		rc = sip_msg_validate(&m->sip);
	if (rc != SIP_OK) {
		bad_message(m);
		return;
	}
	if (m->sip.type == SIP_REQUEST) {
		stat_inc(st_rcv_req);
		hooks.request(w->engine, m);
	} else {
		stat_inc(st_rcv_rpl);
		if (hooks.reply)
			hooks.reply(w->engine, m);
		if (!m->drop && !(reply_filter && reply_filter(m) > 0) && reply_unmatched)
			fwd_reply(m);
	}
	if (done_handler)
		done_handler(m);
	avp_free_all(&m->avps);
}

static void jobs_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	worker_t *w = a->data;
	(void)loop;
	(void)revents;
	pthread_mutex_lock(&w->jobs_lock);
	job_t *list = w->jobs;
	w->jobs = w->jobs_tail = NULL;
	pthread_mutex_unlock(&w->jobs_lock);
	while (list) {
		job_t *j = list;
		list = j->next;
		j->fn(j->arg);
		free(j);
	}
}

int worker_post(unsigned id, void (*fn)(void *arg), void *arg)
{
	if (id >= nworkers)
		return -1;
	worker_t *w = &workers[id];
	job_t *j = malloc(sizeof(*j));
	if (!j)
		return -1;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&w->jobs_lock);
	if (!w->accepting) {
		pthread_mutex_unlock(&w->jobs_lock);
		free(j);
		return -1;
	}
	if (w->jobs_tail)
		w->jobs_tail->next = j;
	else
		w->jobs = j;
	w->jobs_tail = j;
	pthread_mutex_unlock(&w->jobs_lock);
	ev_async_send(w->loop, &w->jobs_wake);
	return 0;
}

static void stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)a;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void set_ready(worker_t *w, int v)
{
	pthread_mutex_lock(&w->ready_lock);
	w->ready = v;
	pthread_cond_signal(&w->ready_cond);
	pthread_mutex_unlock(&w->ready_lock);
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;
	self = w;
	arena_init(&w->arena, 32768);
	w->loop = ev_loop_new(EVFLAG_AUTO);
	if (!w->loop) {
		set_ready(w, -1);
		return NULL;
	}
	ev_async_init(&w->stop, stop_cb);
	ev_async_start(w->loop, &w->stop);
	ev_async_init(&w->jobs_wake, jobs_cb);
	w->jobs_wake.data = w;
	ev_async_start(w->loop, &w->jobs_wake);
	w->engine = hooks.init ? hooks.init(w->id) : NULL;
	if (hooks.init && !w->engine) {
		set_ready(w, -1);
		return NULL;
	}
	w->net = net_worker_start(w->id, w->loop, on_message);
	if (!w->net) {
		set_ready(w, -1);
		return NULL;
	}
	pthread_mutex_lock(&w->jobs_lock);
	w->accepting = true;
	pthread_mutex_unlock(&w->jobs_lock);
	set_ready(w, 1);
	ev_run(w->loop, 0);
	pthread_mutex_lock(&w->jobs_lock);
	w->accepting = false;
	job_t *left = w->jobs;
	w->jobs = w->jobs_tail = NULL;
	pthread_mutex_unlock(&w->jobs_lock);
	/* run what is left so owners of the jobs release what they hold */
	while (left) {
		job_t *j = left;
		left = j->next;
		j->fn(j->arg);
		free(j);
	}
	net_worker_stop(w->net);
	if (hooks.fini)
		hooks.fini(w->engine);
	arena_free(&w->arena);
	ev_loop_destroy(w->loop);
	return NULL;
}

int workers_start(const ksr_cfg_t *cfg, const worker_hooks_t *h)
{
	sigset_t all, old;
	hooks = *h;
	reply_unmatched = cfg->fwd.reply_unmatched;
	fwd_set_onsend(onsend);
	nworkers = cfg->workers ? cfg->workers : 1;
	workers = calloc(nworkers, sizeof(*workers));
	if (!workers)
		return -1;
	st_rcv_req = stat_register("core", "rcv_requests", false);
	st_rcv_rpl = stat_register("core", "rcv_replies", false);
	st_bad_req = stat_register("core", "bad_requests_answered", false);
	st_bad_rpl = stat_register("core", "bad_replies_dropped", false);
	st_bad_dropped = stat_register("core", "bad_msgs_dropped", false);
	/* Workers inherit a full signal mask: only the main thread handles signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = 0;
	for (unsigned i = 0; i < nworkers; i++) {
		worker_t *w = &workers[i];
		w->id = i;
		pthread_mutex_init(&w->ready_lock, NULL);
		pthread_mutex_init(&w->jobs_lock, NULL);
		pthread_cond_init(&w->ready_cond, NULL);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			rc = -1;
			nworkers = i;
			break;
		}
		/* one at a time: a worker that cannot start stops start-up with its reason logged */
		pthread_mutex_lock(&w->ready_lock);
		while (w->ready == 0)
			pthread_cond_wait(&w->ready_cond, &w->ready_lock);
		pthread_mutex_unlock(&w->ready_lock);
		if (w->ready < 0) {
			pthread_join(w->thread, NULL);
			nworkers = i;
			rc = -1;
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0)
		workers_stop();
	return rc;
}

void workers_stop(void)
{
	for (unsigned i = 0; i < nworkers; i++)
		ev_async_send(workers[i].loop, &workers[i].stop);
	for (unsigned i = 0; i < nworkers; i++) {
		pthread_join(workers[i].thread, NULL);
		pthread_mutex_destroy(&workers[i].ready_lock);
		pthread_mutex_destroy(&workers[i].jobs_lock);
		pthread_cond_destroy(&workers[i].ready_cond);
	}
	free(workers);
	workers = NULL;
	nworkers = 0;
}

int worker_tid(unsigned idx)
{
	clockid_t cid;
	if (idx >= nworkers || pthread_getcpuclockid(workers[idx].thread, &cid) != 0)
		return -1;
	/* glibc < 2.42 has no pthread_gettid_np, but a thread's CPU clock id carries its
	 * id by kernel ABI: clockid = (~tid << 3) | CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED */
	return (int)~(cid >> 3);
}
