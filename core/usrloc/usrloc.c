// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * The in-memory location table, its locks, the expiry/write-back thread.
 * The database side (statements, row conversions) is in ul_db.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/hash.h"
#include "../lib/log.h"
#include "ul_int.h"

ul_global_t ul_g = {.nat_bflag = -1, .hash_bits = 10, .timer_interval = 60};

static ul_domain_t *domains;
static pthread_mutex_t domains_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_t timer_thread;
static bool timer_running;
static bool timer_stop;
static pthread_mutex_t timer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t timer_cond;

static _Atomic uint32_t ruid_counter;
static uint32_t ruid_salt;

/* ---------------------------------------------------------------- settings */

bool ul_use_domain(void)
{
	return ul_g.use_domain;
}

int ul_db_mode(void)
{
	return ul_g.db_mode;
}

int ul_nat_bflag(void)
{
	return ul_g.nat_bflag;
}

int32_t ul_server_id(void)
{
	return ul_g.server_id;
}

/* ---------------------------------------------------------------- helpers */

uint32_t ul_method_bit(sip_method_t m)
{
	/* Kamailio's METHOD_* values, so that the methods column means the same to both */
	switch (m) {
	case METH_INVITE: return 1u << 0;
	case METH_CANCEL: return 1u << 1;
	case METH_ACK: return 1u << 2;
	case METH_BYE: return 1u << 3;
	case METH_INFO: return 1u << 4;
	case METH_REGISTER: return 1u << 5;
	case METH_SUBSCRIBE: return 1u << 6;
	case METH_NOTIFY: return 1u << 7;
	case METH_MESSAGE: return 1u << 8;
	case METH_OPTIONS: return 1u << 9;
	case METH_PRACK: return 1u << 10;
	case METH_UPDATE: return 1u << 11;
	case METH_REFER: return 1u << 12;
	case METH_PUBLISH: return 1u << 13;
	case METH_KDMQ: return 1u << 14;
	case METH_GET: return 1u << 15;
	case METH_POST: return 1u << 16;
	case METH_PUT: return 1u << 17;
	case METH_DELETE: return 1u << 18;
	default: return 0;
	}
}

bool ul_parse_q(str_t s, int32_t *out)
{
	/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) (RFC 3261 §25.1) */
	s = str_trim(s);
	if (s.len == 0 || s.len > 5 || (s.s[0] != '0' && s.s[0] != '1'))
		return false;
	int32_t v = (s.s[0] - '0') * 1000, scale = 100;
	if (s.len > 1) {
		if (s.s[1] != '.')
			return false;
		for (size_t i = 2; i < s.len; i++, scale /= 10) {
			if (s.s[i] < '0' || s.s[i] > '9')
				return false;
			v += (s.s[i] - '0') * scale;
		}
	}
	if (v > 1000)
		return false;
	*out = v;
	return true;
}

str_t ul_q_str(int32_t q, char *buf)
{
	if (q < 0)
		return str_from(buf, 0);
	if (q >= 1000) {
		memcpy(buf, "1", 2);
		return str_from(buf, 1);
	}
	int n = snprintf(buf, 8, "0.%03d", (int)q);
	while (n > 3 && buf[n - 1] == '0')
		n--;
	if (n == 3 && buf[2] == '0') /* q=0 */
		n = 1;
	return str_from(buf, (size_t)n);
}

uint32_t ul_aor_hash(str_t aor)
{
	return (uint32_t)hash64_final(hash64_mix(0xcbf29ce484222325ULL, aor.s, aor.len));
}

/* "uloc-<time>-<salt>-<counter>": unique across restarts and across nodes sharing a database. */
static char *put_hex(char *p, unsigned long long v)
{
	char tmp[16];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static size_t make_ruid(char *buf, size_t len)
{
	/* by hand: snprintf was a tenth of a REGISTER's cost */
	uint32_t n = atomic_fetch_add_explicit(&ruid_counter, 1, memory_order_relaxed);
	if (len < 48)
		return 0;
	char *p = buf;
	memcpy(p, "uloc-", 5);
	p = put_hex(p + 5, (unsigned long long)time(NULL));
	*p++ = '-';
	p = put_hex(p, ruid_salt);
	*p++ = '-';
	p = put_hex(p, n);
	*p = '\0';
	return (size_t)(p - buf);
}

/* ---------------------------------------------------------------- contacts, records */

ul_contact_t *ul_contact_new(const ul_info_t *ci)
{
	char ruid[64];
	str_t strs[UL_NSTR];
	size_t total = 0;

	memcpy(strs, ci->s, sizeof(strs));
	if (!strs[UL_RUID].len)
		strs[UL_RUID] = str_from(ruid, make_ruid(ruid, sizeof(ruid)));
	for (unsigned i = 0; i < UL_NSTR; i++) {
		if (strs[i].len > UINT16_MAX)
			return NULL;
		total += strs[i].len;
	}
	ul_contact_t *c = malloc(sizeof(*c) + total);
	if (!c)
		return NULL;
	*c = (ul_contact_t){
		.expires = ci->expires,
		.last_modified = time(NULL),
		.q = ci->q,
		.cseq = ci->cseq,
		.flags = ci->flags,
		.cflags = ci->cflags,
		.methods = ci->methods,
		.reg_id = ci->reg_id,
		.server_id = ul_g.server_id,
		.state = UL_CS_NEW,
	};
	char *p = c->data;
	for (unsigned i = 0; i < UL_NSTR; i++) {
		c->len[i] = (uint16_t)strs[i].len;
		if (strs[i].len)
			memcpy(p, strs[i].s, strs[i].len);
		p += strs[i].len;
	}
	return c;
}

ul_record_t *ul_record_new(str_t aor)
{
	if (aor.len == 0 || aor.len > UINT16_MAX)
		return NULL;
	ul_record_t *r = malloc(sizeof(*r) + aor.len);
	if (!r)
		return NULL;
	*r = (ul_record_t){.hash = ul_aor_hash(aor), .aor_len = (uint16_t)aor.len};
	memcpy(r->aor, aor.s, aor.len);
	return r;
}

void ul_record_free(ul_record_t *r)
{
	if (!r)
		return;
	for (ul_contact_t *c = r->contacts, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	free(r);
}

ul_record_t *ul_record_copy(const ul_record_t *r, int64_t now)
{
	ul_record_t *cp = ul_record_new(ul_aor(r));
	if (!cp)
		return NULL;
	ul_contact_t **tail = &cp->contacts;
	for (const ul_contact_t *c = r->contacts; c; c = c->next) {
		if (!ul_contact_valid(c, now))
			continue;
		size_t len = sizeof(*c);
		for (unsigned i = 0; i < UL_NSTR; i++)
			len += c->len[i];
		ul_contact_t *cc = malloc(len);
		if (!cc) {
			ul_record_free(cp);
			return NULL;
		}
		memcpy(cc, c, len);
		cc->next = NULL;
		*tail = cc;
		tail = &cc->next;
	}
	return cp;
}

void ul_record_link(ul_record_t *r, ul_contact_t *c)
{
	ul_contact_t **pp = &r->contacts;
	while (*pp && (*pp)->q >= c->q)
		pp = &(*pp)->next;
	c->next = *pp;
	*pp = c;
}

static void record_unlink(ul_record_t *r, ul_contact_t *c)
{
	for (ul_contact_t **pp = &r->contacts; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return;
		}
}

ul_contact_t *ul_find_contact(const ul_record_t *r, str_t uri, str_t instance, uint32_t reg_id)
{
	if (!r)
		return NULL;
	for (ul_contact_t *c = r->contacts; c; c = c->next) {
		if (instance.len) {
			if (str_eq(ul_cstr(c, UL_INSTANCE), instance) && c->reg_id == reg_id)
				return c;
		} else if (str_eq(ul_cstr(c, UL_CONTACT), uri)) {
			return c;
		}
	}
	return NULL;
}

ul_contact_t *ul_find_ruid(const ul_record_t *r, str_t ruid)
{
	for (ul_contact_t *c = r ? r->contacts : NULL; c; c = c->next)
		if (str_eq(ul_cstr(c, UL_RUID), ruid))
			return c;
	return NULL;
}

unsigned ul_count_valid(const ul_record_t *r, int64_t now)
{
	unsigned n = 0;
	for (const ul_contact_t *c = r ? r->contacts : NULL; c; c = c->next)
		n += ul_contact_valid(c, now);
	return n;
}

/* ---------------------------------------------------------------- tables */

static bool valid_table_name(str_t name)
{
	if (name.len == 0 || name.len > 63)
		return false;
	for (size_t i = 0; i < name.len; i++) {
		char ch = name.s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	return true;
}

static void domain_free(ul_domain_t *d)
{
	for (unsigned i = 0; d->buckets && i < d->size; i++) {
		for (ul_record_t *r = d->buckets[i].first, *n; r; r = n) {
			n = r->next;
			ul_record_free(r);
		}
		pthread_mutex_destroy(&d->buckets[i].lock);
	}
	for (ul_del_t *x = d->dels, *n; x; x = n) {
		n = x->next;
		free(x);
	}
	pthread_mutex_destroy(&d->del_lock);
	free(d->buckets);
	free(d->stat_names);
	free(d);
}

static void domain_stats(ul_domain_t *d)
{
	size_t n = d->name_len;
	/* "<name>-users\0<name>-contacts\0<name>-expires\0" */
	d->stat_names = malloc(3 * (n + 10));
	if (!d->stat_names)
		return;
	char *u = d->stat_names, *c = u + n + 10, *e = c + n + 10;
	snprintf(u, n + 10, "%s-users", d->name);
	snprintf(c, n + 10, "%s-contacts", d->name);
	snprintf(e, n + 10, "%s-expires", d->name);
	d->st_users = stat_register("usrloc", u, true);
	d->st_contacts = stat_register("usrloc", c, true);
	d->st_expires = stat_register("usrloc", e, false);
}

static ul_domain_t *domain_new(str_t name)
{
	ul_domain_t *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	memcpy(d->name, name.s, name.len);
	d->name_len = name.len;
	d->size = 1u << ul_g.hash_bits;
	pthread_mutex_init(&d->del_lock, NULL);
	d->buckets = calloc(d->size, sizeof(*d->buckets));
	if (!d->buckets) {
		d->size = 0;
		domain_free(d);
		return NULL;
	}
	for (unsigned i = 0; i < d->size; i++)
		pthread_mutex_init(&d->buckets[i].lock, NULL);
	domain_stats(d);
	if (ul_g.db_mode && ul_db_prepare(d) < 0) {
		domain_free(d);
		return NULL;
	}
	/* modes 1 and 2 keep the table in memory: fill it before anyone uses it */
	if ((ul_g.db_mode == 1 || ul_g.db_mode == 2) && ul_db_load_all(d) < 0) {
		LOG_ERR(USRLOC, "table %s: loading from the database failed", d->name);
		domain_free(d);
		return NULL;
	}
	return d;
}

ul_domain_t *ul_domain(str_t name)
{
	ul_domain_t *d;

	if (!valid_table_name(name))
		return NULL;
	pthread_mutex_lock(&domains_lock);
	for (d = domains; d; d = d->next)
		if (str_eq(str_from(d->name, d->name_len), name))
			break;
	if (!d && (d = domain_new(name))) {
		d->next = domains;
		domains = d;
	}
	pthread_mutex_unlock(&domains_lock);
	return d;
}

str_t ul_domain_name(const ul_domain_t *d)
{
	return str_from(d->name, d->name_len);
}

unsigned ul_domain_size(const ul_domain_t *d)
{
	return d->size;
}

void ul_foreach_domain(void (*fn)(ul_domain_t *d, void *arg), void *arg)
{
	pthread_mutex_lock(&domains_lock);
	ul_domain_t *first = domains;
	pthread_mutex_unlock(&domains_lock);
	/* the list only grows at its head: what was there stays valid */
	for (ul_domain_t *d = first; d; d = d->next)
		fn(d, arg);
}

void ul_bucket_stats(ul_domain_t *d, int users, int contacts)
{
	if (users) {
		stat_add(ul_g.st_users, users);
		if (d->st_users)
			stat_add(d->st_users, users);
	}
	if (contacts) {
		stat_add(ul_g.st_contacts, contacts);
		if (d->st_contacts)
			stat_add(d->st_contacts, contacts);
	}
}

/* ---------------------------------------------------------------- records: locked access */

static ul_record_t **record_slot(ul_bucket_t *b, str_t aor)
{
	ul_record_t **pp = &b->first;
	while (*pp && !str_eq(ul_aor(*pp), aor))
		pp = &(*pp)->next;
	return pp;
}

int ul_open(ul_domain_t *d, str_t aor, ul_ref_t *ref)
{
	*ref = (ul_ref_t){.d = d, .aor = aor, .bucket = ul_aor_hash(aor) & (d->size - 1)};
	ul_bucket_t *b = &d->buckets[ref->bucket];

	pthread_mutex_lock(&b->lock);
	if (ul_g.db_mode != 3) {
		ref->r = *record_slot(b, aor);
		return 0;
	}
	ref->temp = true;
	int rc = ul_db_load_aor(d, aor, &ref->r);
	if (rc < 0)
		pthread_mutex_unlock(&b->lock);
	return rc < 0 ? rc : 0;
}

void ul_close(ul_ref_t *ref)
{
	if (!ref->d)
		return;
	if (ref->temp)
		ul_record_free(ref->r);
	ref->r = NULL;
	pthread_mutex_unlock(&ref->d->buckets[ref->bucket].lock);
	ref->d = NULL;
}

/* Whether changes through ref go to the database now. */
static bool writes_through(const ul_ref_t *ref)
{
	return ul_g.db_mode == 3 || (ul_g.db_mode == 1 && !ref->nodb);
}

/* The record for ref, created (and linked into the bucket) when missing. */
static ul_record_t *ref_record(ul_ref_t *ref)
{
	if (ref->r)
		return ref->r;
	ref->r = ul_record_new(ref->aor);
	if (!ref->r)
		return NULL;
	if (!ref->temp) {
		ul_bucket_t *b = &ref->d->buckets[ref->bucket];
		ref->r->next = b->first;
		b->first = ref->r;
		ul_bucket_stats(ref->d, 1, 0);
	}
	return ref->r;
}

/* Drops the record from the table once its last contact is gone. */
static void ref_prune(ul_ref_t *ref)
{
	if (!ref->r || ref->r->contacts || ref->temp)
		return;
	ul_record_t **pp = record_slot(&ref->d->buckets[ref->bucket], ref->aor);
	if (*pp == ref->r) {
		*pp = ref->r->next;
		ul_bucket_stats(ref->d, -1, 0);
		free(ref->r);
	}
	ref->r = NULL;
}

/* Remembers a row to delete at the next write-back. */
static void queue_delete(ul_domain_t *d, str_t ruid)
{
	ul_del_t *x = malloc(sizeof(*x) + ruid.len);
	if (!x) {
		atomic_store(&ul_g.resync, true);
		return;
	}
	x->len = ruid.len;
	memcpy(x->ruid, ruid.s, ruid.len);
	pthread_mutex_lock(&d->del_lock);
	x->next = d->dels;
	d->dels = x;
	pthread_mutex_unlock(&d->del_lock);
}

int ul_add(ul_ref_t *ref, const ul_info_t *ci, ul_contact_t **out)
{
	ul_contact_t *c = ul_contact_new(ci);
	int rc;

	if (!c)
		return -ENOMEM;
	if (writes_through(ref) && (rc = ul_db_upsert(ref->d, ref->aor, c)) < 0) {
		free(c);
		return rc;
	}
	if (writes_through(ref) || (ul_g.db_mode == 1 && ref->nodb))
		c->state = UL_CS_SYNC;
	ul_record_t *r = ref_record(ref);
	if (!r) {
		free(c);
		return -ENOMEM;
	}
	ul_record_link(r, c);
	if (!ref->temp)
		ul_bucket_stats(ref->d, 0, 1);
	if (out)
		*out = c;
	return 0;
}

int ul_update(ul_ref_t *ref, ul_contact_t *old, const ul_info_t *ci, ul_contact_t **out)
{
	ul_info_t keep = *ci;
	keep.s[UL_RUID] = ul_cstr(old, UL_RUID); /* the row keeps its key */
	ul_contact_t *c = ul_contact_new(&keep);
	int rc;

	if (!c)
		return -ENOMEM;
	c->server_id = old->server_id;
	if (writes_through(ref) && (rc = ul_db_upsert(ref->d, ref->aor, c)) < 0) {
		free(c);
		return rc;
	}
	c->state = (writes_through(ref) || ul_g.db_mode != 2) ? UL_CS_SYNC
		 : old->state == UL_CS_NEW		      ? UL_CS_NEW
							      : UL_CS_DIRTY;
	if (old->q == c->q) {
		/* same place in the q order: swap in place */
		for (ul_contact_t **pp = &ref->r->contacts; *pp; pp = &(*pp)->next)
			if (*pp == old) {
				c->next = old->next;
				*pp = c;
				break;
			}
	} else {
		record_unlink(ref->r, old);
		ul_record_link(ref->r, c);
	}
	free(old);
	if (out)
		*out = c;
	return 0;
}

int ul_remove(ul_ref_t *ref, ul_contact_t *c)
{
	int rc;

	if (writes_through(ref) && (rc = ul_db_delete(ref->d, ul_cstr(c, UL_RUID))) < 0)
		return rc;
	if (ul_g.db_mode == 2 && c->state != UL_CS_NEW)
		queue_delete(ref->d, ul_cstr(c, UL_RUID));
	record_unlink(ref->r, c);
	free(c);
	if (!ref->temp)
		ul_bucket_stats(ref->d, 0, -1);
	ref_prune(ref);
	return 0;
}

int ul_remove_all(ul_ref_t *ref)
{
	int rc;

	if (!ref->r)
		return 0;
	if (writes_through(ref) && (rc = ul_db_delete_aor(ref->d, ref->aor)) < 0)
		return rc;
	while (ref->r && ref->r->contacts) {
		ul_contact_t *c = ref->r->contacts;
		if (ul_g.db_mode == 2 && c->state != UL_CS_NEW)
			queue_delete(ref->d, ul_cstr(c, UL_RUID));
		ref->r->contacts = c->next;
		free(c);
		if (!ref->temp)
			ul_bucket_stats(ref->d, 0, -1);
	}
	ref_prune(ref);
	return 0;
}

int ul_foreach_record(ul_domain_t *d, bool (*fn)(const ul_record_t *r, void *arg), void *arg)
{
	if (ul_g.db_mode == 3)
		return ul_db_foreach(d, fn, arg);
	for (unsigned i = 0; i < d->size; i++) {
		ul_bucket_t *b = &d->buckets[i];
		bool go = true;
		pthread_mutex_lock(&b->lock);
		for (ul_record_t *r = b->first; r && go; r = r->next)
			go = fn(r, arg);
		pthread_mutex_unlock(&b->lock);
		if (!go)
			break;
	}
	return 0;
}

/* ---------------------------------------------------------------- expiry */

static void (*expired_handler)(ul_record_t *expired);

void ul_set_expired_handler(void (*fn)(ul_record_t *expired))
{
	expired_handler = fn;
}

/* The contact leaves the table: to the handler (in a record of its own), or freed. */
static void expired_contact(const ul_record_t *r, ul_contact_t *c)
{
	ul_record_t *x = expired_handler ? ul_record_new(ul_aor(r)) : NULL;
	if (!x) {
		free(c);
		return;
	}
	c->next = NULL;
	x->contacts = c;
	expired_handler(x);
}

/* Removes the expired contacts of one bucket (memory only: rows go in bulk). */
static void expire_bucket(ul_domain_t *d, ul_bucket_t *b, int64_t now)
{
	ul_record_t **rp = &b->first;
	while (*rp) {
		ul_record_t *r = *rp;
		ul_contact_t **cp = &r->contacts;
		while (*cp) {
			ul_contact_t *c = *cp;
			if (ul_contact_valid(c, now)) {
				cp = &c->next;
				continue;
			}
			LOG_DBG(USRLOC, "%s: contact <%.*s> of %.*s expired", d->name, STR_FMT(ul_cstr(c, UL_CONTACT)),
				STR_FMT(ul_aor(r)));
			*cp = c->next;
			expired_contact(r, c);
			ul_bucket_stats(d, 0, -1);
			if (d->st_expires)
				stat_inc(d->st_expires);
		}
		if (r->contacts) {
			rp = &r->next;
			continue;
		}
		*rp = r->next;
		free(r);
		ul_bucket_stats(d, -1, 0);
	}
}

static void timer_domain(ul_domain_t *d, void *arg)
{
	int64_t now = *(int64_t *)arg;

	if (ul_g.db_mode != 3)
		for (unsigned i = 0; i < d->size; i++) {
			pthread_mutex_lock(&d->buckets[i].lock);
			expire_bucket(d, &d->buckets[i], now);
			pthread_mutex_unlock(&d->buckets[i].lock);
		}
	if (ul_g.db_mode)
		ul_db_delete_expired(d, now);
}

void ul_timer_run(int64_t now)
{
	if (ul_g.db_mode == 2)
		ul_flush();
	ul_foreach_domain(timer_domain, &now);
}

/* ---------------------------------------------------------------- write-back */

typedef struct {
	ul_contact_t *c;  /* copy */
	ul_record_t *aor; /* copy of the record head (no contacts) */
} ul_pending_t;

typedef struct {
	ul_pending_t *v;
	size_t n, cap;
	bool all;
} ul_batch_t;

static bool batch_add(ul_batch_t *bt, const ul_record_t *r, const ul_contact_t *c)
{
	size_t clen = sizeof(*c);
	for (unsigned i = 0; i < UL_NSTR; i++)
		clen += c->len[i];
	if (bt->n == bt->cap) {
		size_t cap = bt->cap ? bt->cap * 2 : 64;
		ul_pending_t *v = realloc(bt->v, cap * sizeof(*v));
		if (!v)
			return false;
		bt->v = v;
		bt->cap = cap;
	}
	ul_contact_t *cc = malloc(clen);
	ul_record_t *rr = ul_record_new(ul_aor(r));
	if (!cc || !rr) {
		free(cc);
		free(rr);
		return false;
	}
	memcpy(cc, c, clen);
	cc->next = NULL;
	bt->v[bt->n++] = (ul_pending_t){cc, rr};
	return true;
}

/* Copies what changed in one bucket and marks it written. */
static bool collect_bucket(ul_bucket_t *b, ul_batch_t *bt)
{
	bool ok = true;
	pthread_mutex_lock(&b->lock);
	for (ul_record_t *r = b->first; r && ok; r = r->next)
		for (ul_contact_t *c = r->contacts; c && ok; c = c->next) {
			if (c->state == UL_CS_SYNC && !bt->all)
				continue;
			ok = batch_add(bt, r, c);
			if (ok)
				c->state = UL_CS_SYNC;
		}
	pthread_mutex_unlock(&b->lock);
	return ok;
}

static int write_batch(ul_domain_t *d, ul_batch_t *bt)
{
	int rc = 0;
	for (size_t i = 0; i < bt->n; i++) {
		if (!rc)
			rc = ul_db_upsert(d, ul_aor(bt->v[i].aor), bt->v[i].c);
		free(bt->v[i].c);
		free(bt->v[i].aor);
	}
	bt->n = 0;
	return rc;
}

static int flush_deletes(ul_domain_t *d)
{
	pthread_mutex_lock(&d->del_lock);
	ul_del_t *list = d->dels;
	d->dels = NULL;
	pthread_mutex_unlock(&d->del_lock);

	int rc = 0;
	while (list) {
		ul_del_t *x = list;
		list = x->next;
		if (!rc)
			rc = ul_db_delete(d, str_from(x->ruid, x->len));
		if (!rc) {
			free(x);
			continue;
		}
		pthread_mutex_lock(&d->del_lock); /* keep it for the next round */
		x->next = d->dels;
		d->dels = x;
		pthread_mutex_unlock(&d->del_lock);
	}
	return rc;
}

typedef struct {
	int rc;
	bool all;
} ul_flush_t;

static void flush_domain(ul_domain_t *d, void *arg)
{
	ul_flush_t *f = arg;
	ul_batch_t bt = {.all = f->all};

	/* one bucket at a time: never a lock held while the database answers */
	for (unsigned i = 0; i < d->size && !f->rc; i++) {
		if (!collect_bucket(&d->buckets[i], &bt))
			f->rc = -ENOMEM;
		int w = write_batch(d, &bt);
		if (!f->rc)
			f->rc = w;
	}
	if (!f->rc)
		f->rc = flush_deletes(d);
	free(bt.v);
}

int ul_flush(void)
{
	if (ul_g.db_mode != 2)
		return 0;
	pthread_mutex_lock(&flush_lock);
	ul_flush_t f = {.all = atomic_exchange(&ul_g.resync, false)};
	ul_foreach_domain(flush_domain, &f);
	/* contacts marked written by a failed round are written again, all of them */
	if (f.rc < 0)
		atomic_store(&ul_g.resync, true);
	pthread_mutex_unlock(&flush_lock);
	if (f.rc < 0)
		LOG_WARN(USRLOC, "write-back incomplete (%d): everything is written again at the next timer", f.rc);
	return f.rc;
}

/* ---------------------------------------------------------------- thread */

static void *timer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&timer_lock);
	while (!timer_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += ul_g.timer_interval;
		while (!timer_stop && pthread_cond_timedwait(&timer_cond, &timer_lock, &ts) != ETIMEDOUT)
			;
		if (timer_stop)
			break;
		pthread_mutex_unlock(&timer_lock);
		ul_timer_run(time(NULL));
		pthread_mutex_lock(&timer_lock);
	}
	pthread_mutex_unlock(&timer_lock);
	return NULL;
}

int ul_start(void)
{
	pthread_condattr_t ca;
	sigset_t all, old;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	timer_stop = false;
	/* only the main thread handles signals */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&timer_thread, NULL, timer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -rc;
	timer_running = true;
	return 0;
}

/* ---------------------------------------------------------------- init, shutdown */

int ul_init(const ksr_cfg_t *cfg, char *errbuf, size_t errlen)
{
	ul_g.db_mode = (int)cfg->usrloc.db_mode;
	ul_g.use_domain = cfg->usrloc.use_domain;
	ul_g.hash_bits = cfg->usrloc.hash_size ? cfg->usrloc.hash_size : 10;
	ul_g.timer_interval = cfg->usrloc.timer_interval ? cfg->usrloc.timer_interval : 60;
	ul_g.nat_bflag = cfg->usrloc.nat_bflag;
	ul_g.server_id = (int32_t)cfg->usrloc.server_id;
	ul_g.st_users = stat_register("usrloc", "registered_users", true);
	ul_g.st_contacts = stat_register("usrloc", "contacts", true);
	ruid_salt = (uint32_t)(hash64_final((uint64_t)getpid() ^ ((uint64_t)time(NULL) << 20) ^
					    (uint64_t)(uintptr_t)&ruid_salt));

	if (ul_g.db_mode && !(cfg->usrloc.db_url && cfg->usrloc.db_url[0])) {
		snprintf(errbuf, errlen, "usrloc.db_mode %d needs usrloc.db_url", ul_g.db_mode);
		return -EINVAL;
	}
	if (ul_g.db_mode) {
		char why[256];
		ul_g.db = db_open(cfg->usrloc.db_url, cfg->usrloc.db_timeout, why, sizeof(why));
		if (!ul_g.db) {
			snprintf(errbuf, errlen, "usrloc.%s", why);
			return -EINVAL;
		}
		if (db_connect(ul_g.db) < 0) {
			snprintf(errbuf, errlen, "usrloc: cannot connect to %s (db_mode %d)", db_url_safe(ul_g.db),
				 ul_g.db_mode);
			return -ENOTCONN;
		}
	}
	if (!ul_domain(STR_LIT("location"))) {
		snprintf(errbuf, errlen, "usrloc: cannot create the location table%s",
			 ul_g.db_mode ? " (database error: see the log)" : "");
		return -EIO;
	}
	return 0;
}

void ul_shutdown(void)
{
	if (timer_running) {
		pthread_mutex_lock(&timer_lock);
		timer_stop = true;
		pthread_cond_signal(&timer_cond);
		pthread_mutex_unlock(&timer_lock);
		pthread_join(timer_thread, NULL);
		pthread_cond_destroy(&timer_cond);
		timer_running = false;
	}
	if (ul_g.db_mode == 2 && ul_flush() < 0)
		LOG_ERR(USRLOC, "write-back at shutdown failed: recent changes are lost");
	pthread_mutex_lock(&domains_lock);
	while (domains) {
		ul_domain_t *d = domains;
		domains = d->next;
		domain_free(d);
	}
	pthread_mutex_unlock(&domains_lock);
	db_close(ul_g.db);
	ul_g.db = NULL;
}
