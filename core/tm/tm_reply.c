// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* Replies to our branches: the client state machines, best-response selection
 * (RFC 3261 §16.7), failure routes and relaying upstream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fwd/fwd.h"
#include "../lib/log.h"
#include "../worker/worker.h"
#include "tm_int.h"

#define RT_REPLY_BIT (1u << 1)
#define RT_FAILURE_BIT (1u << 2)

/* "z9hG4bKt<bucket>.<label>.<idx>" */
static bool parse_branch(str_t br, unsigned *bucket, uint32_t *label, unsigned *idx)
{
	char tmp[64];
	if (br.len < 9 || br.len >= sizeof(tmp) || memcmp(br.s, "z9hG4bKt", 8))
		return false;
	memcpy(tmp, br.s + 8, br.len - 8);
	tmp[br.len - 8] = '\0';
	char *e;
	unsigned long b = strtoul(tmp, &e, 16);
	if (*e != '.')
		return false;
	unsigned long l = strtoul(e + 1, &e, 16);
	if (*e != '.')
		return false;
	unsigned long i = strtoul(e + 1, &e, 10);
	if (*e || b >= TM_BUCKETS || l > UINT32_MAX || i >= TM_MAX_BRANCHES)
		return false;
	*bucket = (unsigned)b;
	*label = (uint32_t)l;
	*idx = (unsigned)i;
	return true;
}

static char *dup_buf(const char *s, size_t len)
{
	char *p = malloc(len + 1);
	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* Relays reply m (ours on top) upstream, as the transaction's reply. */
static void relay_upstream(tm_cell_t *c, msg_t *m)
{
	sip_via_t *v1 = sip_msg_via1(&m->sip);
	if (!v1 || fwd_remove_top_via(m, v1) < 0)
		return;
	str_t out = msg_build_fwd_reply(m, c->uas_dest.proto != SIP_PROTO_UDP);
	if (out.s)
		tm_uas_send(c, m->sip.status, out.s, out.len, false);
}

/* ACK for a non-2xx final on branch b, hop by hop (RFC 3261 §17.1.1.3). */
static void send_ack(tm_branch_t *b, msg_t *rpl)
{
	sip_cseq_t *cs = sip_msg_cseq(&rpl->sip);
	sip_msg_t *s = &rpl->sip;
	if (!cs || !s->first[HDR_FROM] || !s->first[HDR_TO] || !s->first[HDR_CALLID])
		return;
	msg_buf_t a;
	mbuf_init(&a, rpl->arena, 512);
	mbuf_lit(&a, "ACK ");
	mbuf_lit(&a, b->uri);
	mbuf_lit(&a, " SIP/2.0\r\n");
	mbuf_lit(&a, b->via_line);
	mbuf_lit(&a, b->routes ? b->routes : "");
	mbuf_str(&a, s->first[HDR_FROM]->raw);
	mbuf_str(&a, s->first[HDR_TO]->raw);
	mbuf_str(&a, s->first[HDR_CALLID]->raw);
	mbuf_lit(&a, "CSeq: ");
	mbuf_str(&a, cs->seq_str);
	mbuf_lit(&a, " ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
	str_t out = mbuf_done(&a);
	if (out.s)
		net_send(&b->dest, out.s, out.len);
}

/* Lower is better: §16.7 step 6 plus "a real reply beats one we made up". */
static int rank(const tm_branch_t *b)
{
	int code = b->status;
	int r;
	if (code >= 600)
		r = 0;
	else if (code >= 300 && code < 400)
		r = 100;
	else if (code == 401 || code == 407 || code == 415 || code == 420 || code == 484)
		r = 200;
	else if (code >= 400 && code < 500)
		r = 210;
	else
		r = 300;
	return r + (b->local ? 50 : 0) + (b->reply_dropped ? 1000 : 0);
}

static int pick_best(tm_cell_t *c)
{
	int best = -1;
	for (unsigned i = c->failure_first; i < c->nbranches; i++) {
		tm_branch_t *b = c->branches[i];
		if (b->status < 300)
			continue;
		if (best < 0 || rank(b) < rank(c->branches[best]))
			best = (int)i;
	}
	return best;
}

msg_t *tm_parse_request(tm_cell_t *c, arena_t *a)
{
	msg_t *m = arena_zalloc(a, sizeof(*m));
	const char *buf = c->fwd_req ? c->fwd_req : c->req;
	size_t len = c->fwd_req ? c->fwd_req_len : c->req_len;
	if (!m || msg_init(m, a, &c->rcv, buf, len) != SIP_OK)
		return NULL;
	if (c->ruri)
		msg_set_ruri(m, str_cstr(c->ruri));
	if (c->du)
		msg_set_du(m, str_cstr(c->du));
	m->flags = c->flags;
	m->rr_on = c->rr_on;
	m->maxfwd_done = c->maxfwd_done;
	m->rr_params = c->rr_params ? str_cstr(c->rr_params) : STR_NULL;
	m->rr_preset[0] = c->rr_preset[0] ? str_cstr(c->rr_preset[0]) : STR_NULL;
	m->rr_preset[1] = c->rr_preset[1] ? str_cstr(c->rr_preset[1]) : STR_NULL;
	m->tm = c;
	return m;
}

static msg_t *parse_reply(tm_branch_t *b, arena_t *a)
{
	if (!b->reply)
		return NULL;
	msg_t *m = arena_zalloc(a, sizeof(*m));
	net_rcv_t rcv = {.proto = b->dest.proto, .src = b->dest.addr};
	if (!m || msg_init(m, a, &rcv, b->reply, b->reply_len) != SIP_OK)
		return NULL;
	m->tm = b->cell;
	return m;
}

/* §16.7 step 7: every challenge of every 401/407 goes into the reply relayed. */
static void aggregate_challenges(tm_cell_t *c, int best, msg_t *rpl, arena_t *a)
{
	for (unsigned i = c->failure_first; i < c->nbranches; i++) {
		tm_branch_t *b = c->branches[i];
		if ((int)i == best || (b->status != 401 && b->status != 407) || !b->reply)
			continue;
		msg_t *o = parse_reply(b, a);
		if (!o)
			continue;
		for (sip_hdr_type_t t = HDR_WWW_AUTHENTICATE; t <= HDR_PROXY_AUTHENTICATE; t++)
			for (sip_hdr_t *h = o->sip.first[t]; h; h = h->next_same)
				msg_hdr_append_bottom(rpl, h->raw);
	}
}

static const char *local_reason(int code)
{
	return code == 408 ? "Request Timeout" : code == 503 ? "Service Unavailable" : code == 487 ? "Request Terminated" : "";
}

/* Sends the best final upstream (cell locked). */
static void relay_best(tm_cell_t *c, int best, arena_t *a)
{
	tm_branch_t *b = c->branches[best];
	if (b->local || !b->reply) {
		msg_t *req = tm_parse_request(c, a);
		if (req)
			tm_uas_local_reply(c, req, b->status, str_cstr(local_reason(b->status)));
		return;
	}
	msg_t *rpl = parse_reply(b, a);
	if (!rpl)
		return;
	if (b->status == 401 || b->status == 407)
		aggregate_challenges(c, best, rpl, a);
	relay_upstream(c, rpl);
}

static bool run_failure_route(tm_cell_t *c, int best, arena_t *a)
{
	const worker_hooks_t *h = worker_hooks();
	void *engine = worker_engine();
	char fn[TM_ROUTE_NAME];
	if (!c->routes[TM_ROUTE_FAILURE][0] || !h->named_route || !engine || c->is_replicate)
		return false;
	/* one shot, as in Kamailio: a failure route arms the next one itself */
	memcpy(fn, c->routes[TM_ROUTE_FAILURE], sizeof(fn));
	c->routes[TM_ROUTE_FAILURE][0] = '\0';
	msg_t *req = tm_parse_request(c, a);
	if (!req)
		return false;
	tm_cell_ref(c); /* the request's, released below */
	c->best_idx = best;
	c->in_failure = true;
	unsigned before = c->nbranches;
	h->named_route(engine, fn, req, RT_FAILURE_BIT);
	c->in_failure = false;
	tm_cell_unref(c);
	if (c->nbranches > before) {
		c->failure_first = before;
		c->best_idx = -1;
		/* a branch that failed at once may leave nothing to wait for */
		for (unsigned i = before; i < c->nbranches; i++)
			if (c->branches[i]->state != BR_COMPLETED)
				return true;
		return false;
	}
	return c->uas_status >= 200;
}

void tm_all_completed(tm_cell_t *c, arena_t *a)
{
	if (c->uas_status >= 200 || c->nbranches == 0) {
		tm_cell_finish(c);
		return;
	}
	for (int rounds = 0; rounds < TM_MAX_BRANCHES; rounds++) {
		int best = pick_best(c);
		if (best < 0)
			break;
		if (run_failure_route(c, best, a)) {
			bool waiting = false;
			for (unsigned i = c->failure_first; i < c->nbranches; i++)
				if (c->branches[i]->state != BR_COMPLETED)
					waiting = true;
			if (waiting)
				return;
			if (c->uas_status >= 200)
				break;
			continue; /* new branches failed at once: judge them */
		}
		if (c->uas_status < 200)
			relay_best(c, best, a);
		break;
	}
	if (c->uas_status >= 200)
		tm_cell_finish(c);
}

void tm_check_completion(tm_cell_t *c, arena_t *a)
{
	for (unsigned i = 0; i < c->nbranches; i++)
		if (c->branches[i]->state != BR_COMPLETED)
			return;
	if (c->in_failure)
		return; /* the running failure route decides */
	tm_all_completed(c, a);
}

void tm_branch_completed(tm_cell_t *c, tm_branch_t *b, arena_t *a)
{
	b->state = BR_COMPLETED;
	tm_branch_stop_timers(b);
	tm_check_completion(c, a);
}

static void run_onreply(tm_cell_t *c, msg_t *m)
{
	const worker_hooks_t *h = worker_hooks();
	void *engine = worker_engine();
	if (!c->routes[TM_ROUTE_ONREPLY][0] || !h->named_route || !engine)
		return;
	h->named_route(engine, c->routes[TM_ROUTE_ONREPLY], m, RT_REPLY_BIT);
}

static void on_provisional(tm_cell_t *c, tm_branch_t *b, msg_t *m)
{
	int code = m->sip.status;
	if (b->state == BR_CALLING) {
		b->state = BR_PROCEEDING;
		if (c->method == METH_INVITE && b->retr_armed && wheel_cancel(&b->retr_timer)) {
			b->retr_armed = false; /* Timer A stops on a provisional */
			tm_cell_unref(c);
		}
		if (c->method == METH_INVITE)
			tm_branch_arm_fr(b, c->fr_inv_ms);
	} else if (c->method == METH_INVITE && tm_cfg->tm.restart_fr_on_each_reply) {
		tm_branch_arm_fr(b, c->fr_inv_ms);
	}
	b->status = code;
	if (b->cancel_pending) {
		b->cancel_pending = false;
		tm_branch_cancel(b);
	}
	if (code > 100 && c->uas_status < 200 && !m->drop && !c->canceled)
		relay_upstream(c, m);
}

static void on_final(tm_cell_t *c, tm_branch_t *b, msg_t *m)
{
	int code = m->sip.status;
	b->status = code;
	b->local = false;
	free(b->reply);
	b->reply = dup_buf(m->sip.buf, m->sip.len);
	b->reply_len = b->reply ? m->sip.len : 0;
	if (code < 300) {
		b->state = BR_COMPLETED;
		tm_branch_stop_timers(b);
		/* RFC 6026: every 2xx goes upstream, also after the first */
		if (!m->drop)
			relay_upstream(c, m);
		if (c->method == METH_INVITE)
			tm_cancel_branches(c, (int)b->idx);
		tm_check_completion(c, m->arena);
		return;
	}
	if (c->method == METH_INVITE) {
		send_ack(b, m);
		if (code >= 600)
			tm_cancel_branches(c, (int)b->idx);
	}
	if (m->drop)
		b->reply_dropped = true;
	tm_branch_completed(c, b, m->arena);
}

int tm_on_reply(msg_t *m)
{
	unsigned bucket, idx;
	uint32_t label;
	sip_via_t *v1 = sip_msg_via1(&m->sip);
	sip_cseq_t *cs = sip_msg_cseq(&m->sip);
	if (!v1 || !cs || !parse_branch(v1->branch, &bucket, &label, &idx))
		return 0;
	tm_cell_t *c = tm_table_lookup_label(bucket, label);
	if (!c)
		return 0; /* e.g. a 2xx retransmitted after the transaction ended: relayed statelessly */
	stat_inc(tm_st.rpl_received);
	if (cs->method_id == METH_CANCEL) {
		tm_cell_unref(c); /* the reply to our CANCEL ends there */
		return 1;
	}
	pthread_mutex_lock(&c->lock);
	if (idx >= c->nbranches || (c->method != METH_OTHER && cs->method_id != c->method)) {
		pthread_mutex_unlock(&c->lock);
		tm_cell_unref(c);
		return 1;
	}
	tm_branch_t *b = c->branches[idx];
	int code = m->sip.status;
	b->replied = true;
	if (b->state == BR_COMPLETED && code < 200 && b->cancel_pending && b->cancel) {
		/* the provisional a pending CANCEL waited for (RFC 3261 §9.1) */
		b->cancel_pending = false;
		b->cancel_sent = true;
		net_send(&b->dest, b->cancel, b->cancel_len);
	}
	if (b->state == BR_COMPLETED) {
		/* a retransmitted final: 2xx still go upstream (RFC 6026), others are re-ACKed */
		if (code >= 200 && code < 300 && c->method == METH_INVITE)
			relay_upstream(c, m);
		else if (code >= 300 && c->method == METH_INVITE)
			send_ack(b, m);
		pthread_mutex_unlock(&c->lock);
		tm_cell_unref(c);
		return 1;
	}
	m->tm = c;
	run_onreply(c, m);
	if (code < 200)
		on_provisional(c, b, m);
	else
		on_final(c, b, m);
	m->tm = NULL;
	pthread_mutex_unlock(&c->lock);
	tm_cell_unref(c);
	return 1;
}
