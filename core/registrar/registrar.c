// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Registrar: settings, the AOR of a URI, per-message context, and the smaller
 * functions (registered, unregister, reg_from_user, profiles for $ulc).
 * save() is in reg_save.c, lookup() in reg_lookup.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "../worker/worker.h"
#include "reg_int.h"

reg_cfg_t reg_cfg = {.default_expires = 3600, .min_expires = 60, .path_mode = 2, .append_branches = true,
		     .cseq_delay = 20, .received_param = "received"};

static _Thread_local reg_msg_ctx_t mctx;

int reg_init(const ksr_cfg_t *cfg)
{
	const __typeof__(cfg->registrar) *r = &cfg->registrar;

	reg_cfg.default_expires = r->default_expires;
	reg_cfg.min_expires = r->min_expires;
	reg_cfg.max_expires = r->max_expires;
	reg_cfg.expires_range = r->expires_range;
	reg_cfg.default_expires_range = r->default_expires_range;
	reg_cfg.max_contacts = r->max_contacts;
	reg_cfg.use_path = r->use_path;
	reg_cfg.path_mode = r->path_mode;
	reg_cfg.path_use_received = r->path_use_received;
	reg_cfg.method_filtering = r->method_filtering;
	reg_cfg.append_branches = r->append_branches;
	reg_cfg.retry_after = r->retry_after;
	reg_cfg.cseq_delay = r->cseq_delay;
	snprintf(reg_cfg.received_param, sizeof(reg_cfg.received_param), "%s",
		 r->received_param ? r->received_param : "");
	snprintf(reg_cfg.received_avp, sizeof(reg_cfg.received_avp), "%s",
		 r->received_avp ? r->received_avp : "");
	reg_cfg.st_accepted = stat_register("registrar", "accepted_regs", false);
	reg_cfg.st_rejected = stat_register("registrar", "rejected_regs", false);
	return 0;
}

str_t reg_received_avp(void)
{
	return str_cstr(reg_cfg.received_avp);
}

reg_msg_ctx_t *reg_ctx(const msg_t *m)
{
	if (mctx.m != m || mctx.id != m->id)
		mctx = (reg_msg_ctx_t){.m = m, .id = m->id, .q_override = -2};
	return &mctx;
}

const reg_branch_t *reg_branches(const msg_t *m)
{
	return mctx.m == m && mctx.id == m->id ? mctx.branches : NULL;
}

str_t reg_ruid(const msg_t *m)
{
	return mctx.m == m && mctx.id == m->id ? mctx.ruid : STR_NULL;
}

str_t reg_location_ua(const msg_t *m)
{
	return mctx.m == m && mctx.id == m->id ? mctx.ua : STR_NULL;
}

int reg_set_q_override(msg_t *m, str_t q)
{
	int32_t v;
	if (!ul_parse_q(q, &v))
		return -1;
	reg_ctx(m)->q_override = v;
	return 1;
}

/* ---------------------------------------------------------------- AOR */

int reg_aor_of(msg_t *m, str_t uri_str, str_t *aor)
{
	sip_uri_t tmp, *u = &tmp;

	if (uri_str.s) {
		if (sip_uri_parse(m->arena, uri_str, &tmp, NULL) != SIP_OK)
			return -EINVAL;
	} else {
		sip_nameaddr_t *to = sip_msg_to(&m->sip);
		if (!to)
			return -EINVAL;
		u = &to->uri;
	}
	/* escaped and unescaped spellings of a user are the same user */
	str_t user = u->user.len ? sip_unescape(m->arena, u->user) : u->user;
	if (!user.s || user.len == 0)
		return -ENOENT;
	if (!ul_use_domain() || u->host.len == 0) {
		*aor = user;
		return 0;
	}
	char *buf = arena_alloc(m->arena, user.len + 1 + u->host.len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, user.s, user.len);
	buf[user.len] = '@';
	for (size_t i = 0; i < u->host.len; i++) /* host names are case-insensitive */
		buf[user.len + 1 + i] = (char)((u->host.s[i] >= 'A' && u->host.s[i] <= 'Z') ? u->host.s[i] + 32
											   : u->host.s[i]);
	*aor = str_from(buf, user.len + 1 + u->host.len);
	return 0;
}

/* The AOR for lookup-like functions: uri, or the current R-URI. */
static int target_aor(msg_t *m, str_t uri, str_t *aor)
{
	if (!uri.s || !uri.len) {
		if (!msg_ruri(m))
			return -EINVAL;
		uri = m->ruri;
	}
	return reg_aor_of(m, uri, aor);
}

/* ---------------------------------------------------------------- registered, unregister */

int reg_registered(msg_t *m, str_t table, str_t uri)
{
	ul_domain_t *d = ul_domain(table);
	ul_ref_t ref;
	str_t aor;

	if (!d || target_aor(m, uri, &aor) < 0)
		return -1;
	if (ul_open(d, aor, &ref) < 0)
		return -3;
	unsigned n = ul_count_valid(ref.r, time(NULL));
	ul_close(&ref);
	return n ? 1 : -1;
}

int reg_unregister(msg_t *m, str_t table, str_t uri, str_t ruid)
{
	ul_domain_t *d = ul_domain(table);
	ul_ref_t ref;
	str_t aor;
	int rc;

	if (!d || reg_aor_of(m, uri, &aor) < 0)
		return -1;
	if (ul_open(d, aor, &ref) < 0)
		return -1;
	if (ruid.len) {
		ul_contact_t *c = ul_find_ruid(ref.r, ruid);
		rc = c ? ul_remove(&ref, c) : -ENOENT;
	} else {
		rc = ul_remove_all(&ref);
	}
	ul_close(&ref);
	return rc < 0 ? -1 : 1;
}

/* ---------------------------------------------------------------- reg_from_user */

/* Whether URI s points at the message's source address (and port, when want_port). */
static bool uri_is_source(msg_t *m, str_t s, bool want_port)
{
	sip_uri_t u;
	net_addr_t a;

	if (!s.len || sip_uri_parse(m->arena, s, &u, NULL) != SIP_OK)
		return false;
	if (!net_addr_from_ip(u.host, 0, &a) || !net_addr_ip_eq(&a, &m->rcv.src))
		return false;
	return !want_port || sip_uri_port(&u) == net_addr_port(&m->rcv.src);
}

int reg_from_user(msg_t *m, str_t table, str_t uri, int mode)
{
	ul_domain_t *d = ul_domain(table);
	int64_t now = time(NULL);
	ul_ref_t ref;
	str_t aor;
	bool found = false;

	if (!d || reg_aor_of(m, uri, &aor) < 0 || ul_open(d, aor, &ref) < 0)
		return -1;
	for (const ul_contact_t *c = ref.r ? ref.r->contacts : NULL; c && !found; c = c->next) {
		if (!ul_contact_valid(c, now))
			continue;
		str_t rcv = ul_cstr(c, UL_RECEIVED);
		found = uri_is_source(m, rcv.len ? rcv : ul_cstr(c, UL_CONTACT), mode & 1);
	}
	ul_close(&ref);
	return found ? 1 : -1;
}

int reg_add_sock_hdr(msg_t *m, str_t name)
{
	if (!name.len || !m->rcv.local)
		return -1;
	str_t line = arena_printf(m->arena, "%.*s: %s\r\n", STR_FMT(name), m->rcv.local->sock_str);
	return line.s && msg_hdr_append_bottom(m, line) == 0 ? 1 : -1;
}

/* ---------------------------------------------------------------- profiles ($ulc) */

static void expired_event(ul_record_t *x);

typedef struct reg_profile {
	struct reg_profile *next;
	char name[64];
	ul_record_t *r;    /* deep copy */
	unsigned count;
} reg_profile_t;

static _Thread_local reg_profile_t *profiles;

/* A worker that exits with profiles still fetched frees them: the key's
 * destructor runs on the exiting thread, whose thread-locals are still there. */
static pthread_key_t profiles_key;
static pthread_once_t profiles_once = PTHREAD_ONCE_INIT;

static void profiles_exit(void *unused)
{
	(void)unused;
	reg_thread_cleanup();
}

static void profiles_key_init(void)
{
	pthread_key_create(&profiles_key, profiles_exit);
}

static reg_profile_t **profile_slot(str_t name)
{
	reg_profile_t **pp = &profiles;
	while (*pp && !str_eq(str_cstr((*pp)->name), name))
		pp = &(*pp)->next;
	return pp;
}

static void profile_free(reg_profile_t *p)
{
	ul_record_free(p->r);
	free(p);
}

int reg_fetch_contacts(msg_t *m, str_t table, str_t uri, str_t profile)
{
	ul_domain_t *d = ul_domain(table);
	ul_ref_t ref;
	str_t aor;

	if (!d || !profile.len || profile.len >= 64 || target_aor(m, uri, &aor) < 0)
		return -1;
	reg_free_contacts(profile);
	if (ul_open(d, aor, &ref) < 0)
		return -3;
	ul_record_t *cp = ref.r ? ul_record_copy(ref.r, time(NULL)) : NULL;
	ul_close(&ref);
	unsigned count = 0;
	for (const ul_contact_t *c = cp ? cp->contacts : NULL; c; c = c->next)
		count++;
	if (!cp || !count) {
		ul_record_free(cp);
		return -1;
	}
	reg_profile_t *p = calloc(1, sizeof(*p));
	if (!p) {
		ul_record_free(cp);
		return -1;
	}
	pthread_once(&profiles_once, profiles_key_init);
	pthread_setspecific(profiles_key, p); /* any non-NULL value arms the destructor */
	memcpy(p->name, profile.s, profile.len);
	p->r = cp;
	p->count = count;
	p->next = profiles;
	profiles = p;
	return 1;
}

int reg_free_contacts(str_t profile)
{
	reg_profile_t **pp = profile_slot(profile);
	if (!*pp)
		return 1;
	reg_profile_t *p = *pp;
	*pp = p->next;
	profile_free(p);
	return 1;
}

void reg_thread_cleanup(void)
{
	while (profiles) {
		reg_profile_t *p = profiles;
		profiles = p->next;
		profile_free(p);
	}
}

static int ret_s(str_t v, str_t *s, bool *is_int)
{
	*s = v;
	*is_int = false;
	return 1;
}

static int ret_i(long long v, long long *i, bool *is_int)
{
	*i = v;
	*is_int = true;
	return 1;
}

static int contact_attr(const ul_contact_t *c, str_t attr, str_t *s, long long *i, bool *is_int)
{
	static const struct {
		const char *name;
		ul_str_id_t id;
	} strs[] = {
		{"addr", UL_CONTACT},  {"path", UL_PATH},	  {"received", UL_RECEIVED}, {"callid", UL_CALLID},
		{"user_agent", UL_UA}, {"socket", UL_SOCKET}, {"ruid", UL_RUID},	     {"instance", UL_INSTANCE},
	};
	for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
		if (str_eq(attr, str_cstr(strs[k].name)))
			return ret_s(ul_cstr(c, strs[k].id), s, is_int);
	if (str_eq(attr, STR_LIT("expires")))
		return ret_i(c->expires ? c->expires - time(NULL) : 0, i, is_int);
	if (str_eq(attr, STR_LIT("q")))
		return ret_i(c->q, i, is_int);
	if (str_eq(attr, STR_LIT("cseq")))
		return ret_i(c->cseq, i, is_int);
	if (str_eq(attr, STR_LIT("flags")))
		return ret_i(c->flags, i, is_int);
	if (str_eq(attr, STR_LIT("cflags")))
		return ret_i(c->cflags, i, is_int);
	if (str_eq(attr, STR_LIT("modified")))
		return ret_i(c->last_modified, i, is_int);
	if (str_eq(attr, STR_LIT("methods")))
		return ret_i(c->methods, i, is_int);
	if (str_eq(attr, STR_LIT("reg_id")))
		return ret_i(c->reg_id, i, is_int);
	if (str_eq(attr, STR_LIT("server_id")))
		return ret_i(c->server_id, i, is_int);
	return -1;
}

int reg_ulc_get(str_t profile, str_t attr, int idx, str_t *s, long long *i, bool *is_int)
{
	reg_profile_t *p = *profile_slot(profile);

	if (!p)
		return -1;
	if (str_eq(attr, STR_LIT("count")))
		return ret_i(p->count, i, is_int);
	if (idx < 0) {
		str_t aor = ul_aor(p->r);
		if (str_eq(attr, STR_LIT("aor")))
			return ret_s(aor, s, is_int);
		if (str_eq(attr, STR_LIT("aorhash")))
			return ret_i(p->r->hash, i, is_int);
		if (str_eq(attr, STR_LIT("domain"))) {
			const char *at = memchr(aor.s, '@', aor.len);
			return ret_s(at ? str_from(at + 1, aor.len - (size_t)(at + 1 - aor.s)) : STR_NULL, s, is_int);
		}
		idx = 0; /* $ulc(p=>addr) means the first contact */
	}
	const ul_contact_t *c = p->r->contacts;
	for (int k = 0; c && k < idx; k++)
		c = c->next;
	return c ? contact_attr(c, attr, s, i, is_int) : -1;
}

/* ---------------------------------------------------------------- usrloc:contact-expired */

static char *expired_fn;
static _Atomic unsigned expired_rr;

/* On a worker: the script's callback sees the contact as $ulc(exp=>...). */
static void expired_job(void *arg)
{
	ul_record_t *x = arg;
	const worker_hooks_t *h = worker_hooks();
	void *engine = worker_engine();
	reg_free_contacts(STR_LIT("exp"));
	reg_profile_t *p = calloc(1, sizeof(*p));
	if (!p || !engine || !h->event) {
		free(p);
		ul_record_free(x);
		return;
	}
	pthread_once(&profiles_once, profiles_key_init);
	pthread_setspecific(profiles_key, p);
	memcpy(p->name, "exp", 4);
	p->r = x;
	p->count = 1;
	p->next = profiles;
	profiles = p;
	h->event(engine, expired_fn, "usrloc:contact-expired", NULL);
	reg_free_contacts(STR_LIT("exp"));
}

static void expired_event(ul_record_t *x)
{
	unsigned n = workers_count();
	unsigned id = n ? atomic_fetch_add(&expired_rr, 1) % n : 0;
	if (worker_post(id, expired_job, x) < 0)
		ul_record_free(x);
}

void reg_events_init(const ksr_cfg_t *cfg)
{
	if (!cfg->registrar.event_callback || !*cfg->registrar.event_callback)
		return;
	expired_fn = cfg->registrar.event_callback;
	ul_set_expired_handler(expired_event);
}
