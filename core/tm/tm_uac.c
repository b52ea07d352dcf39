// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* Client transactions: sending branches, retransmissions, timeouts, CANCEL. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fwd/fwd.h"
#include "../lib/log.h"
#include "../rr/rr.h"
#include "../worker/worker.h"
#include "tm_int.h"

static char *dup_str(str_t s)
{
	char *p = malloc(s.len + 1);
	if (p) {
		memcpy(p, s.s, s.len);
		p[s.len] = '\0';
	}
	return p;
}

void tm_branch_free(tm_branch_t *b)
{
	if (!b)
		return;
	free(b->req);
	free(b->uri);
	free(b->via_line);
	free(b->routes);
	free(b->cancel);
	free(b->reply);
	free(b);
}

/* ---------------------------------------------------------------- timers */

static void retr_fire(wheel_timer_t *t, void *arg);
static void fr_fire(wheel_timer_t *t, void *arg);

static void arm_retr(tm_branch_t *b, unsigned ms)
{
	if (!b->retr_armed) {
		tm_cell_ref(b->cell);
		b->retr_armed = true;
	}
	b->retr_ms = ms;
	wheel_add(&b->retr_timer, ms);
}

void tm_branch_arm_fr(tm_branch_t *b, unsigned ms)
{
	if (b->fr_armed) {
		if (!wheel_cancel(&b->fr_timer))
			return; /* firing right now: it will complete the branch */
	} else {
		tm_cell_ref(b->cell);
		b->fr_armed = true;
	}
	wheel_add(&b->fr_timer, ms);
}

/* With the cell lock held. A timer already firing keeps its reference and sees
 * the branch completed. */
void tm_branch_stop_timers(tm_branch_t *b)
{
	if (b->retr_armed && wheel_cancel(&b->retr_timer)) {
		b->retr_armed = false;
		tm_cell_unref(b->cell); /* the cell is still referenced by our caller */
	}
	if (b->fr_armed && wheel_cancel(&b->fr_timer)) {
		b->fr_armed = false;
		tm_cell_unref(b->cell);
	}
}

static void retr_fire(wheel_timer_t *t, void *arg)
{
	tm_branch_t *b = arg;
	tm_cell_t *c = b->cell;
	(void)t;
	pthread_mutex_lock(&c->lock);
	bool again = false;
	bool calling = b->state == BR_CALLING;
	bool noninv_proceeding = b->state == BR_PROCEEDING && c->method != METH_INVITE;
	if (calling || noninv_proceeding) {
		net_send(&b->dest, b->req, b->req_len);
		stat_inc(tm_st.retransmissions);
		b->retr_count++;
		unsigned next = b->retr_ms * 2;
		/* Timer A doubles without bound; Timer E is capped at T2 (and is T2 once proceeding) */
		if (c->method != METH_INVITE && (next > tm_cfg->tm.retr_timer2 || noninv_proceeding))
			next = tm_cfg->tm.retr_timer2;
		b->retr_ms = next;
		wheel_add(&b->retr_timer, next);
		again = true;
	}
	if (!again)
		b->retr_armed = false;
	pthread_mutex_unlock(&c->lock);
	if (!again)
		tm_cell_unref(c);
}

void tm_completion_job(void *arg)
{
	tm_cell_t *c = arg;
	arena_t *a = worker_arena_reset();
	pthread_mutex_lock(&c->lock);
	if (a)
		tm_check_completion(c, a);
	pthread_mutex_unlock(&c->lock);
	tm_cell_unref(c);
}

/* From a timer: the script may need to run, so the owner worker takes over. */
void tm_post_completion(tm_cell_t *c)
{
	tm_cell_ref(c);
	if (worker_post(c->owner, tm_completion_job, c) < 0 && worker_post(0, tm_completion_job, c) < 0)
		tm_cell_unref(c);
}

static void fr_fire(wheel_timer_t *t, void *arg)
{
	tm_branch_t *b = arg;
	tm_cell_t *c = b->cell;
	(void)t;
	pthread_mutex_lock(&c->lock);
	b->fr_armed = false;
	if (b->state != BR_COMPLETED) {
		/* Timer C after a provisional: cancel it downstream (RFC 3261 §16.8) */
		if (c->method == METH_INVITE && b->state == BR_PROCEEDING)
			tm_branch_cancel(b);
		b->timed_out = true;
		b->local = true;
		b->status = 408;
		b->state = BR_COMPLETED;
		tm_branch_stop_timers(b);
		tm_post_completion(c);
	}
	pthread_mutex_unlock(&c->lock);
	tm_cell_unref(c);
}

/* ---------------------------------------------------------------- CANCEL */

void tm_branch_cancel(tm_branch_t *b)
{
	if (b->cell->method != METH_INVITE || b->state == BR_COMPLETED || b->cancel_sent || !b->cancel)
		return;
	if (b->state == BR_CALLING) {
		/* RFC 3261 §9.1: no CANCEL before a provisional; it goes out if one comes.
		 * The branch is over for us (a local 487), so the caller is not kept
		 * waiting for fr_timer by a next hop that never answers. */
		b->cancel_pending = true;
		b->status = 487;
		b->local = true;
		b->state = BR_COMPLETED;
		tm_branch_stop_timers(b);
		return;
	}
	net_send(&b->dest, b->cancel, b->cancel_len);
	b->cancel_sent = true;
}

void tm_cancel_branches(tm_cell_t *c, int except)
{
	for (unsigned i = 0; i < c->nbranches; i++)
		if ((int)i != except)
			tm_branch_cancel(c->branches[i]);
}

/* ---------------------------------------------------------------- sending */

/* Route lines, From/To/Call-ID/CSeq of what was sent: for CANCEL and ACK (§9.1, §17.1.1.3). */
static int remember_for_cancel(tm_cell_t *c, tm_branch_t *b, arena_t *a, str_t out)
{
	sip_msg_t sm;
	if (sip_parse_msg(&sm, out.s, out.len, a, SIP_PARSE_DATAGRAM) != SIP_OK)
		return -1;
	msg_buf_t routes;
	mbuf_init(&routes, a, 256);
	for (sip_hdr_t *h = sm.first[HDR_ROUTE]; h; h = h->next_same)
		mbuf_str(&routes, h->raw);
	mbuf_add(&routes, "", 0);
	str_t r = mbuf_done(&routes);
	b->routes = dup_str(r.s ? r : STR_LIT(""));
	if (c->method != METH_INVITE)
		return b->routes ? 0 : -1;
	sip_cseq_t *cs = sip_msg_cseq(&sm);
	if (!cs || !sm.first[HDR_FROM] || !sm.first[HDR_TO] || !sm.first[HDR_CALLID])
		return -1;
	msg_buf_t cb;
	mbuf_init(&cb, a, 512);
	mbuf_lit(&cb, "CANCEL ");
	mbuf_str(&cb, sm.ruri_str);
	mbuf_lit(&cb, " SIP/2.0\r\n");
	mbuf_lit(&cb, b->via_line);
	mbuf_lit(&cb, b->routes ? b->routes : "");
	mbuf_str(&cb, sm.first[HDR_FROM]->raw);
	mbuf_str(&cb, sm.first[HDR_TO]->raw);
	mbuf_str(&cb, sm.first[HDR_CALLID]->raw);
	mbuf_lit(&cb, "CSeq: ");
	mbuf_str(&cb, cs->seq_str);
	mbuf_lit(&cb, " CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
	str_t cancel = mbuf_done(&cb);
	if (!cancel.s)
		return -1;
	b->cancel = dup_str(cancel);
	b->cancel_len = cancel.len;
	return b->cancel ? 0 : -1;
}

static str_t branch_id(msg_t *m, tm_cell_t *c, unsigned idx)
{
	/* bucket and label find the cell again from a reply without a search */
	return arena_printf(m->arena, "z9hG4bKt%x.%x.%u", c->bucket, c->label, idx);
}

/* Path of a contact becomes Route headers of its branch (RFC 3327 §5.3). */
static void add_path_routes(msg_t *m, str_t path)
{
	if (!path.len)
		return;
	str_t line = arena_printf(m->arena, "Route: %.*s\r\n", STR_FMT(path));
	if (line.s)
		msg_hdr_insert_top(m, line);
}

/* Builds, records and sends one branch for the current R-URI/$du of m. */
static int send_one(tm_cell_t *c, msg_t *m)
{
	net_dest_t d;
	str_t cid = sip_msg_callid(&m->sip);
	if (c->nbranches >= TM_MAX_BRANCHES) {
		LOG_MSG_WARN(TM, &cid, "too many branches (max %d)", TM_MAX_BRANCHES);
		return -1;
	}
	str_t target = m->du.len ? m->du : m->ruri;
	int rc = fwd_uri_dest(m, target, &d);
	if (rc < 0) {
		LOG_MSG_WARN(TM, &cid, "cannot relay to %.*s: %s", STR_FMT(target), strerror(-rc));
		return -1;
	}
	if (fwd_max_forwards(m) < 0) {
		LOG_MSG_INFO(TM, &cid, "not relaying: Max-Forwards exhausted or malformed");
		return -1;
	}
	if (rr_apply(m, d.from) < 0)
		return -1;
	unsigned idx = c->nbranches;
	str_t via = fwd_via_line(m, d.from, d.proto, branch_id(m, c, idx));
	str_t out = msg_build_request(m, via, d.proto != SIP_PROTO_UDP);
	if (!out.s || !via.s)
		return -1;
	if (!fwd_onsend(m, &d, out))
		return -1;
	tm_branch_t *b = calloc(1, sizeof(*b));
	if (!b)
		return -1;
	b->cell = c;
	b->idx = idx;
	b->dest = d;
	b->bflags = m->bflags;
	b->req = dup_str(out);
	b->req_len = out.len;
	b->uri = dup_str(m->ruri);
	b->via_line = dup_str(via);
	wheel_timer_init(&b->retr_timer, retr_fire, b);
	wheel_timer_init(&b->fr_timer, fr_fire, b);
	if (!b->req || !b->uri || !b->via_line || remember_for_cancel(c, b, m->arena, out) < 0) {
		tm_branch_free(b);
		return -1;
	}
	c->branches[idx] = b;
	c->nbranches++;
	rc = net_send(&d, out.s, out.len);
	if (rc < 0) {
		/* the transport refused at once: a local 503 for this branch (failover can act) */
		LOG_MSG_INFO(TM, &cid, "branch %u to %.*s failed: %s", idx, STR_FMT(target), strerror(-rc));
		b->status = 503;
		b->local = true;
		b->state = BR_COMPLETED;
		return 0;
	}
	stat_inc(tm_st.relayed);
	if (d.proto == SIP_PROTO_UDP)
		arm_retr(b, tm_cfg->tm.retr_timer1);
	tm_branch_arm_fr(b, c->fr_ms);
	return 1;
}

/* Runs the branch route for the branch about to be built; false: the script dropped it. */
static bool run_branch_route(tm_cell_t *c, msg_t *m)
{
	const char *fn = c->routes[TM_ROUTE_BRANCH];
	const worker_hooks_t *h = worker_hooks();
	void *engine = worker_engine();
	if (!fn[0] || !h->named_route || !engine)
		return true;
	bool saved = m->drop;
	m->drop = false;
	h->named_route(engine, fn, m, 1u << 3 /* RT_BRANCH */);
	bool keep = !m->drop;
	m->drop = saved;
	return keep;
}

/*
 * Sends the R-URI branch and every branch of the destination set of m. Returns
 * 1 when at least one branch went out, -1 when none could be sent.
 */
int tm_send_branches(tm_cell_t *c, msg_t *m, unsigned first_new)
{
	msg_snapshot_t snap;
	int sent = 0;
	(void)first_new;
	if (msg_snapshot(m, &snap) < 0)
		return -1;
	msg_branch_t *extra = m->branches;
	/* the destination set is consumed by this relay (as Kamailio's t_relay does) */
	msg_clear_branches(m);
	add_path_routes(m, m->path);
	if (run_branch_route(c, m) && send_one(c, m) > 0)
		sent++;
	msg_restore(m, &snap);
	for (msg_branch_t *br = extra; br; br = br->next) {
		if (msg_set_ruri(m, br->uri) < 0)
			continue;
		msg_set_du(m, br->du);
		if (br->sock)
			m->send_sock = br->sock;
		m->bflags = br->bflags;
		add_path_routes(m, br->path);
		if (run_branch_route(c, m) && send_one(c, m) > 0)
			sent++;
		msg_restore(m, &snap);
	}
	return sent ? 1 : -1;
}

/* ---------------------------------------------------------------- unreachable destinations */

typedef struct {
	sip_proto_t proto;
	const net_addr_t *dst;
	tm_cell_t *hit[64];
	unsigned n;
} unreach_t;

/* Under the bucket lock (bucket then cell is the lock order everywhere). */
static void unreach_one(tm_cell_t *c, void *arg)
{
	unreach_t *u = arg;
	if (u->n == 64 || c->done || !c->nbranches)
		return;
	bool failed = false;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nbranches; i++) {
		tm_branch_t *b = c->branches[i];
		if (b->state != BR_CALLING || b->replied || b->dest.proto != u->proto ||
		    !net_addr_eq(&b->dest.addr, u->dst))
			continue;
		b->status = 503;
		b->local = true;
		b->state = BR_COMPLETED;
		tm_branch_stop_timers(b);
		failed = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (failed) {
		tm_cell_ref(c);
		u->hit[u->n++] = c;
	}
}

/* The transport knows a destination is unreachable: its pending branches fail
 * now with a local 503 instead of waiting for their timers. */
void tm_unreachable(sip_proto_t proto, const net_addr_t *dst, int err);
void tm_unreachable(sip_proto_t proto, const net_addr_t *dst, int err)
{
	unreach_t u = {.proto = proto, .dst = dst};
	(void)err;
	tm_table_foreach(unreach_one, &u);
	for (unsigned i = 0; i < u.n; i++) {
		tm_post_completion(u.hit[i]);
		tm_cell_unref(u.hit[i]);
	}
}
