// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* The server side: replies upstream, their retransmissions, the end of a cell. */
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../sl/sl.h"
#include "../worker/worker.h"
#include "tm_int.h"

static void uas_retr_fire(wheel_timer_t *t, void *arg);
static void wait_fire(wheel_timer_t *t, void *arg);
static void life_fire(wheel_timer_t *t, void *arg);

void tm_uas_timers_init(tm_cell_t *c);
void tm_uas_timers_init(tm_cell_t *c)
{
	wheel_timer_init(&c->uas_timer, uas_retr_fire, c);
	wheel_timer_init(&c->wait_timer, wait_fire, c);
	wheel_timer_init(&c->life_timer, life_fire, c);
}

static void count_reply(int code, bool local)
{
	stat_inc(tm_st.rpl_sent);
	if (code >= 100 && code < 700)
		stat_inc(tm_st.rpl_class[code / 100]);
	if (local)
		stat_inc(tm_st.rpl_generated);
}

/* Cell locked. Keeps a copy for retransmissions of the request. */
int tm_uas_send(tm_cell_t *c, int code, const char *buf, size_t len, bool local)
{
	if (c->uas_status >= 200 && !(code >= 200 && code < 300 && c->method == METH_INVITE))
		return -1; /* one final per transaction, except further 2xx (RFC 6026) */
	char *copy = malloc(len);
	if (copy) {
		memcpy(copy, buf, len);
		free(c->uas_reply);
		c->uas_reply = copy;
		c->uas_reply_len = len;
	}
	if (code > c->uas_status || code >= 200)
		c->uas_status = code;
	c->uas_local = local;
	int rc = net_send(&c->uas_dest, buf, len);
	count_reply(code, local);
	if (code >= 300 && c->method == METH_INVITE && c->uas_dest.proto == SIP_PROTO_UDP &&
	    !c->uas_timer_armed) {
		/* Timer G: our non-2xx final is resent until the ACK comes (Timer H ends it) */
		tm_cell_ref(c);
		c->uas_timer_armed = true;
		c->uas_retr_ms = tm_cfg->tm.retr_timer1;
		c->uas_final_ms = wheel_now_ms();
		wheel_add(&c->uas_timer, c->uas_retr_ms);
	}
	return rc < 0 ? -1 : 1;
}

int tm_uas_local_reply(tm_cell_t *c, msg_t *req, int code, str_t reason)
{
	str_t out = sl_build_reply(req, code, reason, STR_NULL, STR_NULL);
	if (!out.s)
		return -1;
	if (!c->totag[0]) {
		str_t tag = sl_totag(req);
		if (tag.len < sizeof(c->totag)) {
			memcpy(c->totag, tag.s, tag.len);
			c->totag[tag.len] = '\0';
		}
	}
	int rc = tm_uas_send(c, code, out.s, out.len, true);
	if (rc > 0 && code >= 200)
		tm_cell_finish(c);
	return rc;
}

static void uas_retr_fire(wheel_timer_t *t, void *arg)
{
	tm_cell_t *c = arg;
	(void)t;
	pthread_mutex_lock(&c->lock);
	bool again = !c->acked && c->uas_reply &&
		     wheel_now_ms() - c->uas_final_ms < 64ull * tm_cfg->tm.retr_timer1;
	if (again) {
		net_send(&c->uas_dest, c->uas_reply, c->uas_reply_len);
		stat_inc(tm_st.retransmissions);
		c->uas_retr_ms *= 2;
		if (c->uas_retr_ms > tm_cfg->tm.retr_timer2)
			c->uas_retr_ms = tm_cfg->tm.retr_timer2;
		wheel_add(&c->uas_timer, c->uas_retr_ms);
	} else {
		c->uas_timer_armed = false;
	}
	pthread_mutex_unlock(&c->lock);
	if (!again)
		tm_cell_unref(c);
}

/* Stops Timer G (ACK received). Cell locked; the caller holds a reference. */
void tm_uas_acked(tm_cell_t *c);
void tm_uas_acked(tm_cell_t *c)
{
	c->acked = true;
	if (c->uas_timer_armed && wheel_cancel(&c->uas_timer)) {
		c->uas_timer_armed = false;
		tm_cell_unref(c);
	}
}

static void wait_fire(wheel_timer_t *t, void *arg)
{
	tm_cell_t *c = arg;
	(void)t;
	pthread_mutex_lock(&c->lock);
	c->wait_armed = false;
	/* a non-2xx INVITE final waits for its ACK (or Timer H) before going */
	bool keep = c->uas_timer_armed;
	if (keep) {
		tm_cell_ref(c);
		c->wait_armed = true;
		wheel_add(&c->wait_timer, tm_cfg->tm.wt_timer);
	}
	pthread_mutex_unlock(&c->lock);
	if (!keep) {
		stat_add(tm_st.waiting, -1);
		tm_table_remove(c);
	}
	tm_cell_unref(c);
}

/* Cell locked: nothing more will go upstream; keep the cell wt_timer ms to absorb
 * retransmissions, then drop it. */
void tm_cell_finish(tm_cell_t *c)
{
	if (c->done)
		return;
	c->done = true;
	if (c->life_armed && wheel_cancel(&c->life_timer)) {
		c->life_armed = false;
		tm_cell_unref(c);
	}
	if (!c->in_table)
		return;
	tm_cell_ref(c);
	c->wait_armed = true;
	stat_inc(tm_st.waiting);
	wheel_add(&c->wait_timer, tm_cfg->tm.wt_timer);
}


/* max_inv_lifetime / max_noninv_lifetime: whatever is pending ends now. */
static void life_fire(wheel_timer_t *t, void *arg)
{
	tm_cell_t *c = arg;
	(void)t;
	pthread_mutex_lock(&c->lock);
	c->life_armed = false;
	c->expired = true;
	bool pending = false;
	for (unsigned i = 0; i < c->nbranches; i++) {
		tm_branch_t *b = c->branches[i];
		if (b->state == BR_COMPLETED)
			continue;
		tm_branch_cancel(b);
		b->timed_out = true;
		b->local = true;
		b->status = 408;
		b->state = BR_COMPLETED;
		tm_branch_stop_timers(b);
		pending = true;
	}
	if (!pending && !c->done && c->uas_status < 200)
		tm_cell_finish(c); /* nothing was relayed nor answered: let it go */
	pthread_mutex_unlock(&c->lock);
	if (pending) {
		/* the failure route (if any) runs on the owner worker; it takes our reference */
		if (worker_post(c->owner, tm_completion_job, c) == 0)
			return;
	}
	tm_cell_unref(c);
}

void tm_arm_life(tm_cell_t *c)
{
	if (c->life_armed || c->done)
		return;
	tm_cell_ref(c);
	c->life_armed = true;
	wheel_add(&c->life_timer, c->method == METH_INVITE ? c->life_inv_ms : c->life_noninv_ms);
}
