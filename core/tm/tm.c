// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* The request side of tm and its public API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fwd/fwd.h"
#include "../lib/hash.h"
#include <stdint.h>
#include <strings.h>
#include "../lib/log.h"
#include "../sl/sl.h"
#include "../worker/worker.h"
#include "tm_int.h"

const ksr_cfg_t *tm_cfg;
tm_counters_t tm_st;

void tm_table_init(void);
void tm_uas_acked(tm_cell_t *c);

/* ---------------------------------------------------------------- t_precheck_trans */

#define PRE_BUCKETS 1024

typedef struct pre_entry {
	uint64_t key;
	struct pre_entry *next;
} pre_entry_t;

static struct {
	pthread_mutex_t lock;
	pre_entry_t *head;
} pre[PRE_BUCKETS];

static uint64_t pre_key(msg_t *m)
{
	uint64_t h = hash_seed ^ 0x5bd1e995;
	sip_via_t *v = sip_msg_via1(&m->sip);
	sip_cseq_t *cs = sip_msg_cseq(&m->sip);
	h = hash64_str(h, sip_msg_callid(&m->sip));
	h = hash64_str(h, cs ? cs->seq_str : STR_NULL);
	h = hash64_str(h, m->sip.method);
	h = hash64_str(h, v ? v->branch : STR_NULL);
	return hash64_final(h);
}

int tm_precheck(msg_t *m)
{
	if (m->tm_precheck)
		return -1; /* already registered by this very message */
	uint64_t k = pre_key(m);
	unsigned bi = (unsigned)(k % PRE_BUCKETS);
	pthread_mutex_lock(&pre[bi].lock);
	for (pre_entry_t *e = pre[bi].head; e; e = e->next)
		if (e->key == k) {
			pthread_mutex_unlock(&pre[bi].lock);
			return 1;
		}
	pre_entry_t *e = malloc(sizeof(*e));
	if (e) {
		e->key = k;
		e->next = pre[bi].head;
		pre[bi].head = e;
		m->tm_precheck = e;
	}
	pthread_mutex_unlock(&pre[bi].lock);
	return -1;
}

static void precheck_release(msg_t *m)
{
	pre_entry_t *e = m->tm_precheck;
	if (!e)
		return;
	unsigned bi = (unsigned)(e->key % PRE_BUCKETS);
	pthread_mutex_lock(&pre[bi].lock);
	for (pre_entry_t **p = &pre[bi].head; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	pthread_mutex_unlock(&pre[bi].lock);
	free(e);
	m->tm_precheck = NULL;
}

void tm_msg_done(msg_t *m)
{
	precheck_release(m);
	if (m->tm) {
		tm_cell_unref(m->tm);
		m->tm = NULL;
	}
}

static void keep_request_state(tm_cell_t *c, msg_t *m, bool copy);

/* ---------------------------------------------------------------- cells for requests */

static str_t cid_of(msg_t *m)
{
	return sip_msg_callid(&m->sip);
}

/* A retransmission of a request we handle: send again what we answered. Cell locked. */
static void absorb_retransmission(tm_cell_t *c)
{
	if (c->uas_reply) {
		net_send(&c->uas_dest, c->uas_reply, c->uas_reply_len);
		stat_inc(tm_st.retransmissions);
	}
}

static sip_method_t lookup_method(msg_t *m)
{
	return m->sip.method_id == METH_ACK ? METH_INVITE : m->sip.method_id;
}

/* For ACK: absorbs it when it acknowledges our non-2xx final. 0 absorbed, -1 not ours. */
static int handle_ack(msg_t *m)
{
	tm_cell_t *c = tm_table_lookup(m, METH_INVITE);
	if (!c)
		return -1;
	pthread_mutex_lock(&c->lock);
	bool ours = c->uas_status >= 300;
	if (ours)
		tm_uas_acked(c);
	pthread_mutex_unlock(&c->lock);
	tm_cell_unref(c);
	if (ours)
		m->tm_absorbed = true;
	return ours ? 0 : -1;
}

/* 1 new cell on m, 0 retransmission absorbed, -1 error. */
int tm_newtran(msg_t *m)
{
	if (m->tm)
		return 1;
	if (m->sip.type != SIP_REQUEST)
		return -1;
	if (m->sip.method_id == METH_ACK)
		return handle_ack(m) == 0 ? 0 : -1;
	tm_cell_t *c = tm_cell_new(m);
	if (!c)
		return -1;
	int w = worker_self();
	c->owner = w < 0 ? 0 : (unsigned)w;
	if (m->tm_auto100 >= 0)
		c->auto100 = m->tm_auto100;
	tm_cell_t *old = tm_table_insert(c);
	if (old) {
		tm_cell_unref(c);
		pthread_mutex_lock(&old->lock);
		absorb_retransmission(old);
		pthread_mutex_unlock(&old->lock);
		tm_cell_unref(old);
		m->tm_absorbed = true;
		return 0;
	}
	m->tm = c; /* the creator's reference now belongs to the message */
	/* the AVPs move to the transaction: failure and reply routes see them */
	c->avps = m->avps;
	m->avps = NULL;
	pthread_mutex_lock(&c->lock);
	tm_arm_life(c); /* a transaction the script never relays nor answers still ends */
	pthread_mutex_unlock(&c->lock);
	return 1;
}

int tm_check_trans(msg_t *m)
{
	if (m->sip.type != SIP_REQUEST)
		return -1;
	if (m->tm)
		return 1;
	if (m->sip.method_id == METH_ACK)
		return handle_ack(m);
	if (m->sip.method_id == METH_CANCEL) {
		tm_cell_t *own = tm_table_lookup(m, METH_CANCEL);
		if (own) {
			pthread_mutex_lock(&own->lock);
			absorb_retransmission(own);
			pthread_mutex_unlock(&own->lock);
			tm_cell_unref(own);
			m->tm_absorbed = true;
			return 0;
		}
		tm_cell_t *inv = tm_table_lookup(m, METH_INVITE);
		if (!inv)
			return -1;
		tm_cell_unref(inv);
		return 1;
	}
	tm_cell_t *c = tm_table_lookup(m, lookup_method(m));
	if (!c)
		return -1;
	pthread_mutex_lock(&c->lock);
	absorb_retransmission(c);
	pthread_mutex_unlock(&c->lock);
	tm_cell_unref(c);
	m->tm_absorbed = true;
	return 0;
}

/* ---------------------------------------------------------------- relay */

static int relay_cancel(msg_t *m)
{
	str_t cid = cid_of(m);
	tm_cell_t *inv = tm_table_lookup(m, METH_INVITE);
	if (!inv) {
		switch (tm_cfg->tm.unmatched_cancel) {
		case 1: return fwd_request(m, STR_NULL);
		case 2: return 1;
		default:
			LOG_MSG_DBG(TM, &cid, "CANCEL matches no transaction: 481");
			return sl_send_reply(m, 481, STR_LIT("Call/Transaction Does Not Exist"));
		}
	}
	int rc = tm_newtran(m);
	if (rc == 1) {
		tm_cell_t *c = m->tm;
		pthread_mutex_lock(&c->lock);
		tm_uas_local_reply(c, m, 200, STR_LIT("Canceling"));
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_lock(&inv->lock);
	if (!inv->canceled) {
		inv->canceled = true;
		tm_cancel_branches(inv, -1);
		/* branches that never answered are finished now: the 487 may go up at once */
		tm_check_completion(inv, m->arena);
	}
	pthread_mutex_unlock(&inv->lock);
	tm_cell_unref(inv);
	return rc < 0 ? -1 : 1;
}

static char *dup_or_null(str_t s)
{
	return s.len ? strndup(s.s, s.len) : NULL;
}

/* What the failure route needs of the request as the script made it (first relay). */
static void keep_request_state(tm_cell_t *c, msg_t *m, bool copy)
{
	c->ruri = strndup(m->ruri.s, m->ruri.len);
	c->du = dup_or_null(m->du);

	c->flags = m->flags;
	c->rr_on = m->rr_on;
	c->maxfwd_done = m->maxfwd_done;
	c->rr_params = dup_or_null(m->rr_params);
	c->rr_preset[0] = dup_or_null(m->rr_preset[0]);
	c->rr_preset[1] = dup_or_null(m->rr_preset[1]);
	/* only a failure route re-parses it: skip the copy (and its cost) otherwise */
	if (!copy && !c->routes[TM_ROUTE_FAILURE][0] && !c->routes[TM_ROUTE_BRANCH_FAILURE][0])
		return;
	str_t edited = msg_build_request(m, STR_NULL, m->rcv.proto != SIP_PROTO_UDP);
	if (edited.s && (c->fwd_req = malloc(edited.len + 1))) {
		memcpy(c->fwd_req, edited.s, edited.len);
		c->fwd_req[edited.len] = '\0';
		c->fwd_req_len = edited.len;
	}
}

int tm_relay(msg_t *m)
{
	if (m->sip.type != SIP_REQUEST)
		return -1;
	if (m->sip.method_id == METH_ACK)
		return fwd_request(m, STR_NULL); /* ACK for a 2xx: end to end, no transaction */
	if (m->sip.method_id == METH_CANCEL)
		return relay_cancel(m);
	int rc = tm_newtran(m);
	if (rc <= 0)
		return rc;
	tm_cell_t *c = m->tm;
	pthread_mutex_lock(&c->lock);
	if (c->uas_status >= 200 && !c->in_failure) {
		pthread_mutex_unlock(&c->lock);
		return -1; /* already answered */
	}
	if (!c->ruri)
		keep_request_state(c, m, false);
	if (c->method == METH_INVITE && c->auto100 && c->uas_status == 0)
		tm_uas_local_reply(c, m, 100, str_cstr(tm_cfg->tm.auto_inv_100_reason));
	tm_arm_life(c);
	unsigned first = c->nbranches;
	rc = tm_send_branches(c, m, first);
	if (rc > 0 && !c->in_failure) {
		/* branches that failed at once may already decide the outcome */
		tm_check_completion(c, m->arena);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int tm_replicate(msg_t *m, str_t uri)
{
	/* a separate transaction keyed like the original but never answered upstream */
	tm_cell_t *c = tm_cell_new(m);
	if (!c)
		return -1;
	c->is_replicate = true;
	c->uas_status = 200; /* nothing goes upstream from it */
	c->key ^= 0x9e3779b97f4a7c15ULL; /* never matches the original's retransmissions */
	if (tm_table_insert(c)) {
		tm_cell_unref(c);
		return -1;
	}
	msg_snapshot_t snap;
	msg_snapshot(m, &snap);
	msg_branch_t *saved = m->branches, *saved_tail = m->branches_tail;
	unsigned saved_n = m->nbranches;
	msg_clear_branches(m);
	msg_set_du(m, uri);
	pthread_mutex_lock(&c->lock);
	int rc = tm_send_branches(c, m, 0);
	tm_arm_life(c);
	pthread_mutex_unlock(&c->lock);
	msg_restore(m, &snap);
	m->branches = saved;
	m->branches_tail = saved_tail;
	m->nbranches = saved_n;
	tm_cell_unref(c);
	return rc;
}

/* A header named name (case-insensitive, long form) is among the script's lines. */
static bool has_header(str_t hdrs, const char *name)
{
	size_t n = strlen(name);
	const char *p = hdrs.s, *end = hdrs.s + hdrs.len;
	while (p && p < end) {
		if ((size_t)(end - p) > n && !strncasecmp(p, name, n) && (p[n] == ':' || p[n] == ' '))
			return true;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

int tm_uac_send(arena_t *a, str_t method, str_t ruri, str_t nexthop, str_t socket, str_t headers, str_t body)
{
	if (!method.len || !ruri.len || sip_method_id(method) == METH_ACK || sip_method_id(method) == METH_CANCEL)
		return -1;
	const net_listen_t *l = socket.len ? net_listen_by_str(socket) : net_listen_pick(SIP_PROTO_UDP, AF_INET);
	if (!l && socket.len)
		return -1;
	char tag[17], cid[17];
	hex64(hash64_final(hash_seed ^ wheel_now_ms() ^ (uint64_t)(uintptr_t)a), tag);
	tag[16] = '\0';
	hex64(hash64_final(hash_seed + wheel_now_ms() * 31 + (uint64_t)(uintptr_t)&tag), cid);
	cid[16] = '\0';
	str_t host = l ? l->host : STR_LIT("localhost");
	msg_buf_t b;
	mbuf_init(&b, a, 512 + headers.len + body.len);
	mbuf_str(&b, method);
	mbuf_lit(&b, " ");
	mbuf_str(&b, ruri);
	mbuf_lit(&b, " SIP/2.0\r\nVia: SIP/2.0/UDP ");
	/* a placeholder Via so the request parses like a received one; branches get ours */
	mbuf_str(&b, host);
	mbuf_lit(&b, ";branch=z9hG4bKuac");
	mbuf_lit(&b, cid);
	mbuf_lit(&b, "\r\n");
	if (!has_header(headers, "From")) {
		mbuf_lit(&b, "From: <sip:ksrd@");
		mbuf_str(&b, host);
		mbuf_lit(&b, ">;tag=");
		mbuf_lit(&b, tag);
		mbuf_lit(&b, "\r\n");
	}
	if (!has_header(headers, "To")) {
		mbuf_lit(&b, "To: <");
		mbuf_str(&b, ruri);
		mbuf_lit(&b, ">\r\n");
	}
	if (!has_header(headers, "Call-ID")) {
		mbuf_lit(&b, "Call-ID: ");
		mbuf_lit(&b, cid);
		mbuf_lit(&b, "@ksrd\r\n");
	}
	if (!has_header(headers, "CSeq")) {
		mbuf_lit(&b, "CSeq: 1 ");
		mbuf_str(&b, method);
		mbuf_lit(&b, "\r\n");
	}
	if (!has_header(headers, "Max-Forwards"))
		mbuf_lit(&b, "Max-Forwards: 70\r\n");
	mbuf_str(&b, headers);
	mbuf_lit(&b, "Content-Length: ");
	mbuf_u64(&b, body.len);
	mbuf_lit(&b, "\r\n\r\n");
	mbuf_str(&b, body);
	str_t text = mbuf_done(&b);
	if (!text.s)
		return -1;
	msg_t *m = arena_zalloc(a, sizeof(*m));
	net_rcv_t rcv = {.proto = SIP_PROTO_UDP, .local = l};
	if (l)
		rcv.src = l->addr;
	if (!m || msg_init(m, a, &rcv, text.s, text.len) != SIP_OK || sip_msg_validate(&m->sip) != SIP_OK)
		return -1;
	/* the placeholder Via is not forwarded: branches carry only ours */
	msg_hdr_remove(m, m->sip.first[HDR_VIA]->index);
	m->send_sock = l;
	m->maxfwd_done = true; /* ours: it leaves with the Max-Forwards we wrote */
	if (nexthop.len && msg_set_du(m, nexthop) < 0)
		return -1;
	const worker_hooks_t *h = worker_hooks();
	void *engine = worker_engine();
	const char *fn = tm_cfg->tm.event_callback;
	if (fn && *fn && h->event && engine)
		h->event(engine, fn, "tm:local-request", m);
	tm_cell_t *c = tm_cell_new(m);
	if (!c)
		return -1;
	c->is_replicate = true;
	c->uas_status = 200; /* nothing goes upstream */
	int w = worker_self();
	c->owner = w < 0 ? 0 : (unsigned)w;
	if (tm_table_insert(c)) {
		tm_cell_unref(c);
		return -1;
	}
	pthread_mutex_lock(&c->lock);
	int rc = tm_send_branches(c, m, 0);
	tm_arm_life(c);
	pthread_mutex_unlock(&c->lock);
	tm_cell_unref(c);
	return rc;
}

int tm_reply(msg_t *m, int code, str_t reason, bool create)
{
	if (m->sip.type != SIP_REQUEST || m->sip.method_id == METH_ACK)
		return -1;
	if (!m->tm && (!create || tm_newtran(m) != 1))
		return -1;
	if (m->replied >= 200 && code >= 200)
		return -1; /* one final reply per request (see sl_send_reply) */
	tm_cell_t *c = m->tm;
	pthread_mutex_lock(&c->lock);
	int rc = tm_uas_local_reply(c, m, code, reason);
	if (rc > 0 && code >= 200)
		tm_cancel_branches(c, -1);
	pthread_mutex_unlock(&c->lock);
	if (rc > 0)
		m->replied = code;
	return rc;
}

/* ---------------------------------------------------------------- serial forking */

static tm_contact_t *contact_new(str_t uri, str_t du, str_t path, int q)
{
	tm_contact_t *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->uri = strndup(uri.s, uri.len);
	k->du = du.len ? strndup(du.s, du.len) : NULL;
	k->path = path.len ? strndup(path.s, path.len) : NULL;
	k->q = q < 0 ? 1000 : q; /* RFC 3261 §16.6: no q means the highest */
	if (!k->uri) {
		free(k);
		return NULL;
	}
	return k;
}

/* Inserts keeping q descending and, for equal q, the order of arrival. */
static void contact_insert(tm_cell_t *c, tm_contact_t *k)
{
	tm_contact_t **p = &c->contacts;
	while (*p && (*p)->q >= k->q)
		p = &(*p)->next;
	k->next = *p;
	*p = k;
}

int tm_load_contacts(msg_t *m)
{
	if (m->sip.type != SIP_REQUEST)
		return -1;
	if (!m->nbranches)
		return 1; /* one destination: nothing to order (as Kamailio) */
	if (!m->tm && tm_newtran(m) != 1)
		return -1;
	tm_cell_t *c = m->tm;
	pthread_mutex_lock(&c->lock);
	tm_contact_t *k = contact_new(m->ruri, m->du, m->path, m->ruri_q);
	if (k)
		contact_insert(c, k);
	for (msg_branch_t *b = m->branches; b; b = b->next)
		if ((k = contact_new(b->uri, b->du, b->path, b->q)))
			contact_insert(c, k);
	pthread_mutex_unlock(&c->lock);
	msg_clear_branches(m);
	return 1;
}

int tm_next_contacts(msg_t *m)
{
	tm_cell_t *c = m->tm;
	if (!c)
		return -1;
	pthread_mutex_lock(&c->lock);
	tm_contact_t *k = c->contacts;
	if (!k) {
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	int q = k->q;
	int rc = msg_set_ruri(m, str_cstr(k->uri)) == 0 ? 1 : -1;
	msg_set_du(m, k->du ? str_cstr(k->du) : STR_NULL);
	m->path = k->path ? arena_strdup(m->arena, str_cstr(k->path)) : STR_NULL;
	msg_clear_branches(m);
	c->contacts = k->next;
	free(k->uri);
	free(k->du);
	free(k->path);
	free(k);
	while (c->contacts && c->contacts->q == q) {
		k = c->contacts;
		msg_branch_t *b = msg_append_branch(m, str_cstr(k->uri), k->du ? str_cstr(k->du) : STR_NULL, k->q);
		if (b && k->path)
			b->path = arena_strdup(m->arena, str_cstr(k->path));
		c->contacts = k->next;
		free(k->uri);
		free(k->du);
		free(k->path);
		free(k);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---------------------------------------------------------------- settings, queries */

int tm_set_route(msg_t *m, tm_route_t which, str_t fn)
{
	tm_cell_t *c = m->tm;
	if (!c && (m->sip.type != SIP_REQUEST || tm_newtran(m) != 1))
		return -1;
	c = m->tm;
	if (fn.len >= TM_ROUTE_NAME)
		return -1;
	pthread_mutex_lock(&c->lock);
	memcpy(c->routes[which], fn.s, fn.len);
	c->routes[which][fn.len] = '\0';
	pthread_mutex_unlock(&c->lock);
	return 1;
}

bool tm_route_is_set(msg_t *m, tm_route_t which)
{
	tm_cell_t *c = m->tm;
	return c && c->routes[which][0];
}

int tm_set_fr(msg_t *m, unsigned fr_inv, unsigned fr)
{
	if (!m->tm && tm_newtran(m) != 1)
		return -1;
	tm_cell_t *c = m->tm;
	if (fr_inv)
		c->fr_inv_ms = fr_inv;
	if (fr)
		c->fr_ms = fr;
	return 1;
}

int tm_reset_fr(msg_t *m)
{
	tm_cell_t *c = m->tm;
	if (!c)
		return -1;
	c->fr_ms = tm_cfg->tm.fr_timer;
	c->fr_inv_ms = tm_cfg->tm.fr_inv_timer;
	return 1;
}

int tm_set_max_lifetime(msg_t *m, unsigned inv, unsigned noninv)
{
	if (!m->tm && tm_newtran(m) != 1)
		return -1;
	tm_cell_t *c = m->tm;
	c->life_inv_ms = inv ? inv : tm_cfg->tm.max_inv_lifetime;
	c->life_noninv_ms = noninv ? noninv : tm_cfg->tm.max_noninv_lifetime;
	return 1;
}

int tm_set_auto_inv_100(msg_t *m, bool on)
{
	/* kept on the message until the transaction exists: creating it here would
	 * send the very 100 the script is turning off */
	m->tm_auto100 = on;
	if (m->tm)
		((tm_cell_t *)m->tm)->auto100 = on;
	return 1;
}

static tm_branch_t *route_branch(msg_t *m)
{
	tm_cell_t *c = m->tm;
	if (!c || c->best_idx < 0 || (unsigned)c->best_idx >= c->nbranches)
		return NULL;
	return c->branches[c->best_idx];
}

bool tm_is_canceled(msg_t *m)
{
	tm_cell_t *c = m->tm;
	if (c)
		return c->canceled;
	if (m->sip.type != SIP_REQUEST)
		return false;
	tm_cell_t *inv = tm_table_lookup(m, METH_INVITE);
	bool r = inv && inv->canceled;
	if (inv)
		tm_cell_unref(inv);
	return r;
}

bool tm_is_expired(msg_t *m)
{
	tm_cell_t *c = m->tm;
	return c && (c->expired || (wheel_now_ms() - c->created_ms) >
						(c->method == METH_INVITE ? c->life_inv_ms : c->life_noninv_ms));
}

bool tm_branch_timeout(msg_t *m)
{
	tm_branch_t *b = route_branch(m);
	return b && b->timed_out;
}

bool tm_branch_replied(msg_t *m)
{
	tm_branch_t *b = route_branch(m);
	return b && b->replied;
}

bool tm_any_timeout(msg_t *m)
{
	tm_cell_t *c = m->tm;
	for (unsigned i = 0; c && i < c->nbranches; i++)
		if (c->branches[i]->timed_out)
			return true;
	return false;
}

bool tm_any_replied(msg_t *m)
{
	tm_cell_t *c = m->tm;
	for (unsigned i = 0; c && i < c->nbranches; i++)
		if (c->branches[i]->replied)
			return true;
	return false;
}

int tm_get_status_code(msg_t *m)
{
	tm_cell_t *c = m->tm;
	if (m->sip.type == SIP_REPLY)
		return m->sip.status;
	tm_branch_t *b = route_branch(m);
	if (b)
		return b->status;
	return c && c->uas_status ? c->uas_status : -1;
}

int tm_get_branch_index(msg_t *m)
{
	tm_cell_t *c = m->tm;
	if (!c)
		return -1;
	if (c->best_idx >= 0)
		return c->best_idx;
	return (int)c->nbranches;
}

msg_t *tm_route_reply(msg_t *m)
{
	if (m->sip.type == SIP_REPLY)
		return m;
	tm_branch_t *b = route_branch(m);
	if (!b)
		return NULL;
	if (!b->reply)
		return NULL;
	msg_t *r = arena_zalloc(m->arena, sizeof(*r));
	net_rcv_t rcv = {.proto = b->dest.proto, .src = b->dest.addr};
	if (!r || msg_init(r, m->arena, &rcv, b->reply, b->reply_len) != SIP_OK)
		return NULL;
	return r;
}

int tm_drop_replies(msg_t *m, char mode)
{
	tm_cell_t *c = m->tm;
	if (!c)
		return -1;
	for (unsigned i = c->failure_first; i < c->nbranches; i++) {
		tm_branch_t *b = c->branches[i];
		if (mode == 'a' || (mode == 'l' && (int)i == c->best_idx))
			b->reply_dropped = true;
	}
	return 1;
}

int tm_ids(msg_t *m, unsigned *index, unsigned *label)
{
	tm_cell_t *c = m->tm;
	if (!c)
		return -1;
	*index = c->bucket;
	*label = c->label;
	return 1;
}

int tm_suspend(msg_t *m, unsigned *index, unsigned *label)
{
	if (m->sip.type != SIP_REQUEST || m->sip.method_id == METH_ACK)
		return -1;
	if (!m->tm && tm_newtran(m) != 1)
		return -1;
	tm_cell_t *c = m->tm;
	pthread_mutex_lock(&c->lock);
	int rc = -1;
	if (c->uas_status < 200 && !c->suspended) {
		c->suspended = true;
		if (!c->ruri)
			keep_request_state(c, m, true); /* the continuation sees the request as it is now */
		rc = 1;
	}
	pthread_mutex_unlock(&c->lock);
	*index = c->bucket;
	*label = c->label;
	return rc;
}

int tm_continue(unsigned index, unsigned label, const char *fn, arena_t *a)
{
	tm_cell_t *c = tm_table_lookup_label(index, (uint32_t)label);
	if (!c)
		return -1;
	const worker_hooks_t *h = worker_hooks();
	void *engine = worker_engine();
	pthread_mutex_lock(&c->lock);
	int rc = -1;
	if (c->suspended && engine && h->named_route) {
		c->suspended = false;
		msg_t *req = tm_parse_request(c, a);
		if (req) {
			tm_cell_ref(c); /* the request's */
			c->in_failure = true;
			unsigned before = c->nbranches;
			h->named_route(engine, fn, req, 1u << 2 /* failure-route-like */);
			c->in_failure = false;
			if (c->nbranches > before)
				c->failure_first = before;
			tm_cell_unref(c);
			rc = 1;
		}
	}
	pthread_mutex_unlock(&c->lock);
	tm_cell_unref(c);
	return rc;
}

avp_t **tm_avps_lock(msg_t *m)
{
	tm_cell_t *c = m->tm;
	if (!c)
		return &m->avps;
	pthread_mutex_lock(&c->lock);
	return &c->avps;
}

void tm_avps_unlock(msg_t *m)
{
	tm_cell_t *c = m->tm;
	if (c)
		pthread_mutex_unlock(&c->lock);
}

bool tm_exists(msg_t *m)
{
	return m->tm != NULL;
}

/* ---------------------------------------------------------------- stats, listing */

void tm_get_stats(tm_stats_t *s)
{
	memset(s, 0, sizeof(*s));
	s->current = stat_get(tm_st.current);
	s->waiting = stat_get(tm_st.waiting);
	s->created = stat_get(tm_st.created);
	s->freed = stat_get(tm_st.freed);
	s->total = s->created;
	s->rpl_received = stat_get(tm_st.rpl_received);
	s->rpl_generated = stat_get(tm_st.rpl_generated);
	s->rpl_sent = stat_get(tm_st.rpl_sent);
	s->replied_locally = s->rpl_generated;
	s->c1xx = stat_get(tm_st.rpl_class[1]);
	s->c2xx = stat_get(tm_st.rpl_class[2]);
	s->c3xx = stat_get(tm_st.rpl_class[3]);
	s->c4xx = stat_get(tm_st.rpl_class[4]);
	s->c5xx = stat_get(tm_st.rpl_class[5]);
	s->c6xx = stat_get(tm_st.rpl_class[6]);
	s->retransmissions = stat_get(tm_st.retransmissions);
}

typedef struct {
	void (*fn)(const tm_info_t *t, void *arg);
	void *arg;
} list_ctx_t;

static void list_one(tm_cell_t *c, void *arg)
{
	list_ctx_t *lc = arg;
	tm_info_t i;
	memset(&i, 0, sizeof(i));
	/* read without the cell lock (bucket lock held): these fields are set once, or
	 * plain integers where a stale value is harmless in a listing */
	snprintf(i.method, sizeof(i.method), "%s", c->method_str);
	snprintf(i.callid, sizeof(i.callid), "%.*s", (int)c->callid.len, c->callid.s);
	snprintf(i.from_tag, sizeof(i.from_tag), "%.*s", (int)c->from_tag.len, c->from_tag.s);
	unsigned long long cseq = 0;
	str_to_u64(c->cseq_num, UINT32_MAX, &cseq);
	i.cseq = cseq;
	i.uas_status = c->uas_status;
	i.nbranches = c->nbranches;
	i.age_ms = wheel_now_ms() - c->created_ms;
	i.bucket = c->bucket;
	i.label = c->label;
	lc->fn(&i, lc->arg);
}

void tm_list(void (*fn)(const tm_info_t *t, void *arg), void *arg)
{
	list_ctx_t lc = {fn, arg};
	tm_table_foreach(list_one, &lc);
}

typedef struct {
	str_t callid, cseq;
	tm_cell_t *found;
} find_ctx_t;

static void find_one(tm_cell_t *c, void *arg)
{
	find_ctx_t *f = arg;
	if (!f->found && c->method == METH_INVITE && str_eq(c->callid, f->callid) && str_eq(c->cseq_num, f->cseq)) {
		tm_cell_ref(c);
		f->found = c;
	}
}

int tm_cancel_callid(str_t callid, str_t cseq, int reason_code)
{
	find_ctx_t f = {callid, cseq, NULL};
	(void)reason_code;
	tm_table_foreach(find_one, &f);
	if (!f.found)
		return -1;
	pthread_mutex_lock(&f.found->lock);
	f.found->canceled = true;
	tm_cancel_branches(f.found, -1);
	pthread_mutex_unlock(&f.found->lock);
	tm_cell_unref(f.found);
	return 1;
}

/* ---------------------------------------------------------------- init */

int tm_init(const ksr_cfg_t *cfg)
{
	static const char *const classes[] = {"", "1xx_replies", "2xx_replies", "3xx_replies",
					      "4xx_replies", "5xx_replies", "6xx_replies"};
	tm_cfg = cfg;
	tm_table_init();
	for (unsigned i = 0; i < PRE_BUCKETS; i++) {
		pthread_mutex_init(&pre[i].lock, NULL);
		pre[i].head = NULL;
	}
	tm_st.current = stat_register("tm", "current", true);
	tm_st.waiting = stat_register("tm", "waiting", true);
	tm_st.created = stat_register("tm", "created", false);
	tm_st.freed = stat_register("tm", "freed", false);
	tm_st.rpl_received = stat_register("tm", "rpl_received", false);
	tm_st.rpl_generated = stat_register("tm", "rpl_generated", false);
	tm_st.rpl_sent = stat_register("tm", "rpl_sent", false);
	tm_st.retransmissions = stat_register("tm", "retransmissions", false);
	tm_st.relayed = stat_register("tm", "relayed_requests", false);
	for (int i = 1; i <= 6; i++)
		tm_st.rpl_class[i] = stat_register("tm", classes[i], false);
	worker_set_reply_filter(tm_on_reply);
	net_set_unreachable_handler(tm_unreachable);
	worker_set_done_handler(tm_msg_done);
	return wheel_start();
}

void tm_shutdown(void)
{
	wheel_stop();
}
