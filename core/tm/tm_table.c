// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* The transaction table, cells and their matching (RFC 3261 §17.2.3, RFC 2543 fallback). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/hash.h"
#include "../lib/log.h"
#include "../sl/sl.h"
#include "tm_int.h"

void tm_uas_timers_init(tm_cell_t *c);

typedef struct {
	pthread_mutex_t lock;
	tm_cell_t *head;
	uint32_t next_label;
} bucket_t;

static bucket_t buckets[TM_BUCKETS];

void tm_table_init(void);
void tm_table_init(void)
{
	for (unsigned i = 0; i < TM_BUCKETS; i++) {
		pthread_mutex_init(&buckets[i].lock, NULL);
		buckets[i].head = NULL;
		buckets[i].next_label = 1;
	}
}

static bool has_cookie(str_t branch)
{
	return branch.len > 7 && !memcmp(branch.s, "z9hG4bK", 7);
}

static str_t via_sentby(const sip_via_t *v)
{
	/* host[:port] as written: from host start to the end of the port */
	const char *end = v->port_str.len ? v->port_str.s + v->port_str.len : v->host.s + v->host.len;
	return str_from(v->host.s, (size_t)(end - v->host.s));
}

uint64_t tm_request_key(msg_t *m, bool *rfc2543)
{
	uint64_t h = hash_seed;
	sip_via_t *v = sip_msg_via1(&m->sip);
	if (v && has_cookie(v->branch)) {
		*rfc2543 = false;
		h = hash64_str(h, v->branch);
		h = hash64_str(h, via_sentby(v));
	} else {
		sip_cseq_t *cs = sip_msg_cseq(&m->sip);
		*rfc2543 = true;
		h = hash64_str(h, sip_msg_callid(&m->sip));
		h = hash64_str(h, cs ? cs->seq_str : STR_NULL);
	}
	return hash64_final(h);
}

/* Re-points a slice of the received buffer into the cell's copy. */
static str_t rebase(str_t s, const msg_t *m, const char *copy)
{
	if (!s.s || s.s < m->sip.buf || s.s > m->sip.buf + m->sip.len)
		return STR_NULL;
	return str_from(copy + (s.s - m->sip.buf), s.len);
}

tm_cell_t *tm_cell_new(msg_t *m)
{
	tm_cell_t *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->req = malloc(m->sip.len + 1);
	if (!c->req) {
		free(c);
		return NULL;
	}
	memcpy(c->req, m->sip.buf, m->sip.len);
	c->req[m->sip.len] = '\0';
	c->req_len = m->sip.len;
	c->rcv = m->rcv;
	c->method = m->sip.method_id;
	snprintf(c->method_str, sizeof(c->method_str), "%.*s",
		 (int)(m->sip.method.len < 23 ? m->sip.method.len : 23), m->sip.method.s);
	c->key = tm_request_key(m, &c->rfc2543);
	sip_via_t *v = sip_msg_via1(&m->sip);
	sip_cseq_t *cs = sip_msg_cseq(&m->sip);
	sip_nameaddr_t *from = sip_msg_from(&m->sip), *to = sip_msg_to(&m->sip);
	if (v) {
		c->via_branch = rebase(v->branch, m, c->req);
		c->via_sentby = rebase(via_sentby(v), m, c->req);
	}
	c->callid = rebase(sip_msg_callid(&m->sip), m, c->req);
	if (cs)
		c->cseq_num = rebase(cs->seq_str, m, c->req);
	if (from)
		c->from_tag = rebase(from->tag, m, c->req);
	if (to)
		c->to_tag = rebase(to->tag, m, c->req);
	c->ruri_orig = rebase(m->sip.ruri_str, m, c->req);
	atomic_init(&c->refs, 1); /* the creator's */
	/* recursive: routes run under the lock and the script calls back into tm */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&c->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	tm_uas_timers_init(c);
	sl_reply_dest(m, &c->uas_dest);
	c->created_ms = wheel_now_ms();
	c->best_idx = -1;
	c->fr_ms = tm_cfg->tm.fr_timer;
	c->fr_inv_ms = tm_cfg->tm.fr_inv_timer;
	c->life_inv_ms = tm_cfg->tm.max_inv_lifetime;
	c->life_noninv_ms = tm_cfg->tm.max_noninv_lifetime;
	c->auto100 = tm_cfg->tm.auto_inv_100;
	c->flags = m->flags;
	stat_inc(tm_st.created);
	stat_inc(tm_st.current);
	return c;
}

void tm_cell_ref(tm_cell_t *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void tm_cell_unref(tm_cell_t *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (unsigned i = 0; i < c->nbranches; i++)
		tm_branch_free(c->branches[i]);
	while (c->contacts) {
		tm_contact_t *n = c->contacts->next;
		free(c->contacts->uri);
		free(c->contacts->du);
		free(c->contacts->path);
		free(c->contacts);
		c->contacts = n;
	}
	avp_free_all(&c->avps);
	free(c->req);
	free(c->fwd_req);
	free(c->rr_params);
	free(c->rr_preset[0]);
	free(c->rr_preset[1]);
	free(c->ruri);
	free(c->du);
	free(c->uas_reply);
	pthread_mutex_destroy(&c->lock);
	free(c);
	stat_inc(tm_st.freed);
	stat_add(tm_st.current, -1);
}

static bool method_matches(const tm_cell_t *c, sip_method_t as)
{
	if (as == METH_OTHER || c->method == METH_OTHER)
		return false; /* unknown methods compare by name below */
	return c->method == as;
}

/* §17.2.3: branch + sent-by (+ method); RFC 2543: the fields of §17.2.3's fallback. */
static bool cell_matches(const tm_cell_t *c, msg_t *m, uint64_t key, bool rfc2543, sip_method_t as)
{
	if (c->key != key || c->rfc2543 != rfc2543)
		return false;
	if (!method_matches(c, as)) {
		if (as != METH_OTHER || c->method != METH_OTHER ||
		    !str_eq(str_cstr(c->method_str), m->sip.method))
			return false;
	}
	sip_via_t *v = sip_msg_via1(&m->sip);
	if (!rfc2543)
		return v && str_eq(v->branch, c->via_branch) && str_caseeq(via_sentby(v), c->via_sentby);
	sip_nameaddr_t *from = sip_msg_from(&m->sip), *to = sip_msg_to(&m->sip);
	sip_cseq_t *cs = sip_msg_cseq(&m->sip);
	if (!from || !to || !cs || !str_eq(sip_msg_callid(&m->sip), c->callid) ||
	    !str_eq(cs->seq_str, c->cseq_num) || !str_eq(from->tag, c->from_tag))
		return false;
	if (m->sip.method_id == METH_ACK)
		/* ACK of a non-2xx: its To-tag is the one of our reply */
		return str_eq(to->tag, c->to_tag) || str_eq(to->tag, str_cstr(c->totag));
	return str_eq(to->tag, c->to_tag) && str_eq(m->sip.ruri_str, c->ruri_orig);
}

tm_cell_t *tm_table_lookup(msg_t *m, sip_method_t as)
{
	bool rfc2543;
	uint64_t key = tm_request_key(m, &rfc2543);
	bucket_t *b = &buckets[key % TM_BUCKETS];
	tm_cell_t *found = NULL;
	pthread_mutex_lock(&b->lock);
	for (tm_cell_t *c = b->head; c; c = c->next)
		if (cell_matches(c, m, key, rfc2543, as)) {
			tm_cell_ref(c);
			found = c;
			break;
		}
	pthread_mutex_unlock(&b->lock);
	return found;
}

tm_cell_t *tm_table_insert(tm_cell_t *c)
{
	/* a throwaway message view of the cell's own request, to reuse cell_matches */
	bucket_t *b = &buckets[c->key % TM_BUCKETS];
	pthread_mutex_lock(&b->lock);
	for (tm_cell_t *o = b->head; o; o = o->next) {
		if (o->key != c->key || o->rfc2543 != c->rfc2543 || o->method != c->method)
			continue;
		if (o->method == METH_OTHER && strcmp(o->method_str, c->method_str))
			continue;
		bool same = c->rfc2543 ? str_eq(o->callid, c->callid) && str_eq(o->cseq_num, c->cseq_num) &&
						 str_eq(o->from_tag, c->from_tag) && str_eq(o->ruri_orig, c->ruri_orig)
				       : str_eq(o->via_branch, c->via_branch) && str_caseeq(o->via_sentby, c->via_sentby);
		if (same) {
			tm_cell_ref(o);
			pthread_mutex_unlock(&b->lock);
			return o;
		}
	}
	c->bucket = (unsigned)(c->key % TM_BUCKETS);
	c->label = b->next_label++;
	c->prev = NULL;
	c->next = b->head;
	if (b->head)
		b->head->prev = c;
	b->head = c;
	c->in_table = true;
	tm_cell_ref(c); /* the table's */
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

tm_cell_t *tm_table_lookup_label(unsigned bucket, uint32_t label)
{
	if (bucket >= TM_BUCKETS)
		return NULL;
	bucket_t *b = &buckets[bucket];
	tm_cell_t *found = NULL;
	pthread_mutex_lock(&b->lock);
	for (tm_cell_t *c = b->head; c; c = c->next)
		if (c->label == label) {
			tm_cell_ref(c);
			found = c;
			break;
		}
	pthread_mutex_unlock(&b->lock);
	return found;
}

void tm_table_remove(tm_cell_t *c)
{
	bucket_t *b = &buckets[c->bucket];
	bool was = false;
	pthread_mutex_lock(&b->lock);
	if (c->in_table) {
		if (c->prev)
			c->prev->next = c->next;
		else
			b->head = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->in_table = false;
		was = true;
	}
	pthread_mutex_unlock(&b->lock);
	if (was)
		tm_cell_unref(c);
}

void tm_table_foreach(void (*fn)(tm_cell_t *c, void *arg), void *arg)
{
	for (unsigned i = 0; i < TM_BUCKETS; i++) {
		bucket_t *b = &buckets[i];
		if (!b->head)
			continue;
		pthread_mutex_lock(&b->lock);
		for (tm_cell_t *c = b->head; c; c = c->next)
			fn(c, arg);
		pthread_mutex_unlock(&b->lock);
	}
}
