// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * save(): a REGISTER's bindings into usrloc (RFC 3261 §10.3).
 *
 * Three passes, so that a rejected request changes nothing: read the request
 * (AOR, Call-ID, CSeq, Path, every Contact and its expiration), then, with the
 * AOR locked, match each Contact against the stored bindings (Call-ID/CSeq
 * ordering, max_contacts), and only then apply the changes and list the
 * bindings for the 200. The lock is held from the check to the listing, so
 * the 200 shows exactly what this request left behind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "../sl/sl.h"
#include "../tm/tm.h"
#include "reg_int.h"

#define MAX_CONTACT_LEN 512 /* the location.contact column */
#define MAX_CALLID_LEN 255
#define MAX_RECEIVED_LEN 128

typedef enum { OP_NONE, OP_INSERT, OP_UPDATE, OP_DELETE } reg_op_t;

typedef struct {
	const sip_nameaddr_t *na;
	str_t uri, instance;
	uint32_t reg_id;
	int64_t expires; /* seconds from now; 0 = remove */
	int32_t q;
	reg_op_t op;
	bool retrans;    /* equal CSeq within cseq_delay: leave the binding alone */
} reg_item_t;

typedef struct {
	msg_t *m;
	unsigned flags;
	ul_domain_t *d;
	str_t aor, callid, path, received, socket, ua;
	uint32_t cseq, cflags, methods;
	int64_t now;
	bool star, path_supported;
	reg_item_t *items;
	unsigned n;
	/* the answer */
	int code;
	const char *reason;
	const char *info;       /* P-Registrar-Error */
	const char *extra;      /* one more header line (Min-Expires, Unsupported) */
	str_t listing;          /* Contact: ... of the 200 */
	int result;             /* KEMI result of a success */
} reg_save_t;

static int fail(reg_save_t *s, int code, const char *reason, const char *info)
{
	s->code = code;
	s->reason = reason;
	s->info = info;
	return -1;
}

/* ---------------------------------------------------------------- reading the request */

static uint32_t next_rand(void)
{
	static _Thread_local uint32_t x;
	if (!x)
		x = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)&x ^ 0x9e3779b9u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

/* Path header values joined by commas (RFC 3327 §5.3 keeps their order). */
static str_t path_of(msg_t *m)
{
	msg_buf_t b;
	mbuf_init(&b, m->arena, 256);
	for (const sip_hdr_t *h = m->sip.first[HDR_PATH]; h; h = h->next_same) {
		if (b.len)
			mbuf_lit(&b, ",");
		mbuf_str(&b, sip_hdr_unfold(&m->sip, h));
	}
	return b.len ? mbuf_done(&b) : STR_NULL;
}

static bool has_option(msg_t *m, sip_hdr_type_t which, const char *tag)
{
	for (const sip_param_t *p = sip_msg_option_tags(&m->sip, which); p; p = p->next)
		if (str_caseeq_lit(p->name, tag))
			return true;
	return false;
}

/* The methods a UA accepts: its Allow header, else all (Kamailio's default). */
static uint32_t allowed_methods(msg_t *m)
{
	uint32_t bits = 0;
	if (!m->sip.first[HDR_ALLOW])
		return UL_METHODS_ALL;
	for (const sip_param_t *p = sip_msg_option_tags(&m->sip, HDR_ALLOW); p; p = p->next)
		bits |= ul_method_bit(sip_method_id(p->name));
	return bits ? bits : UL_METHODS_ALL;
}

/* "sip:IP:PORT[;transport=x]": where a NATed UA can really be reached. */
static str_t source_uri(msg_t *m)
{
	char ip[64];
	size_t n = net_addr_ip_str(&m->rcv.src, ip, sizeof(ip));
	bool v6 = m->rcv.src.sa.sa_family == AF_INET6;
	bool udp = m->rcv.proto == SIP_PROTO_UDP;
	return arena_printf(m->arena, "sip:%s%.*s%s:%u%s%s", v6 ? "[" : "", (int)n, ip, v6 ? "]" : "",
			    net_addr_port(&m->rcv.src), udp ? "" : ";transport=", udp ? "" : sip_proto_name(m->rcv.proto));
}

static int read_request(reg_save_t *s, str_t uri, str_t received)
{
	msg_t *m = s->m;
	sip_cseq_t *cs = sip_msg_cseq(&m->sip);
	int rc = reg_aor_of(m, uri, &s->aor);

	if (rc == -ENOENT)
		return fail(s, 400, "Bad Request", "No username in To URI");
	if (rc < 0)
		return fail(s, 400, "Bad Request", "Error while parsing AOR");
	s->callid = sip_msg_callid(&m->sip);
	if (!s->callid.len)
		return fail(s, 400, "Bad Request", "Call-ID header not found");
	if (s->callid.len > MAX_CALLID_LEN)
		return fail(s, 400, "Bad Request", "Callid too long");
	if (!cs)
		return fail(s, 400, "Bad Request", "CSeq header not found");
	s->cseq = cs->seq;
	if (reg_cfg.use_path && (s->path = path_of(m)).len) {
		s->path_supported = has_option(m, HDR_SUPPORTED, "path");
		if (reg_cfg.path_mode == 2 && !s->path_supported) {
			s->extra = "Unsupported: path\r\n";
			return fail(s, 420, "Bad Extension", "No support for found Path indicated");
		}
	}
	if (received.len)
		s->received = received;
	else if (ul_nat_bflag() >= 0 && (m->bflags & (1u << ul_nat_bflag())))
		s->received = source_uri(m);
	if (s->received.len > MAX_RECEIVED_LEN)
		return fail(s, 400, "Bad Request", "Contact/received too long");
	s->socket = m->rcv.local ? str_cstr(m->rcv.local->sock_str) : STR_NULL;
	if (m->sip.first[HDR_USER_AGENT])
		s->ua = sip_hdr_unfold(&m->sip, m->sip.first[HDR_USER_AGENT]);
	if (s->ua.len > 255)
		s->ua.len = 255;
	s->cflags = m->bflags;
	s->methods = allowed_methods(m);
	return 0;
}

/* Expiration of one Contact in seconds from now (0 = remove). */
static int contact_expires(reg_save_t *s, const sip_nameaddr_t *na, long hdr, int64_t *out)
{
	unsigned long long v;
	unsigned range = reg_cfg.expires_range;

	if (na->expires_str.s) {
		if (!str_to_u64(str_trim(na->expires_str), UINT32_MAX, &v))
			return fail(s, 400, "Bad Request", "Invalid expires param in contact");
	} else if (hdr >= 0) {
		v = (unsigned long long)hdr;
	} else {
		v = reg_cfg.default_expires;
		range = reg_cfg.default_expires_range;
	}
	if (v && reg_cfg.min_expires && v < reg_cfg.min_expires) {
		s->extra = arena_printf(s->m->arena, "Min-Expires: %u\r\n", reg_cfg.min_expires).s;
		return fail(s, 423, "Interval Too Brief", "Interval too brief");
	}
	if (v && reg_cfg.max_expires && v > reg_cfg.max_expires)
		v = reg_cfg.max_expires;
	if (v && range && !(s->flags & REG_SAVE_NOVARIATION)) {
		/* spread refreshes of many UAs that registered at the same moment */
		unsigned long long spread = v * range / 100;
		v = v - spread + next_rand() % (2 * spread + 1);
		if (reg_cfg.max_expires && v > reg_cfg.max_expires)
			v = reg_cfg.max_expires;
		if (!v)
			v = 1;
	}
	*out = (int64_t)v;
	return 0;
}

static int read_contact(reg_save_t *s, const sip_nameaddr_t *na, long hdr, reg_item_t *it)
{
	unsigned long long v;

	*it = (reg_item_t){.na = na, .uri = na->uri_str, .q = UL_Q_UNSET};
	if (!it->uri.len || na->uri.scheme == 0)
		return fail(s, 400, "Bad Request", "Contact parse error");
	if (it->uri.len > MAX_CONTACT_LEN)
		return fail(s, 400, "Bad Request", "Contact/received too long");
	if (na->q_str.s && !ul_parse_q(na->q_str, &it->q))
		return fail(s, 400, "Bad Request", "Invalid q param in contact");
	int32_t qo = reg_ctx(s->m)->q_override;
	if (qo >= 0)
		it->q = qo;
	it->instance = na->instance;
	if (it->instance.len > 255)
		return fail(s, 400, "Bad Request", "Contact parse error");
	/* reg-id means something only with an instance (RFC 5626 §4.2) */
	if (na->reg_id.s && it->instance.len) {
		if (!str_to_u64(str_trim(na->reg_id), INT32_MAX, &v) || v == 0)
			return fail(s, 400, "Bad Request", "Invalid Reg-Id number");
		it->reg_id = (uint32_t)v;
	}
	return contact_expires(s, na, hdr, &it->expires);
}

static int read_contacts(reg_save_t *s)
{
	msg_t *m = s->m;
	sip_contacts_t *cl = sip_msg_contacts(&m->sip);
	long hdr = sip_msg_expires(&m->sip);

	if (m->sip.first[HDR_EXPIRES] && hdr < 0)
		return fail(s, 400, "Bad Request", "Expires parse error");
	if (!cl)
		return m->sip.first[HDR_CONTACT] ? fail(s, 400, "Bad Request", "Contact parse error") : 0;
	if (cl->star) {
		/* RFC 3261 §10.2.2: "*" only alone and only with Expires: 0 */
		if (cl->first || cl->count > 1)
			return fail(s, 400, "Bad Request", "* used in contact and more than 1 contact");
		if (hdr != 0)
			return fail(s, 400, "Bad Request", "* used in contact and expires is not zero");
		s->star = true;
		return 0;
	}
	s->items = arena_zalloc(m->arena, (cl->count ? cl->count : 1) * sizeof(*s->items));
	if (!s->items)
		return fail(s, 500, "Server Internal Error", "usrloc_contact_insert failed");
	for (const sip_nameaddr_t *na = cl->first; na; na = na->next)
		if (read_contact(s, na, hdr, &s->items[s->n++]) < 0)
			return -1;
	return 0;
}

/* ---------------------------------------------------------------- checking against the table */

/* Call-ID/CSeq ordering (RFC 3261 §10.3 step 7) and what to do with each Contact. */
static int check_items(reg_save_t *s, const ul_record_t *r)
{
	int64_t count = ul_count_valid(r, s->now);

	for (unsigned i = 0; i < s->n; i++) {
		reg_item_t *it = &s->items[i];
		const ul_contact_t *c = ul_find_contact(r, it->uri, it->instance, it->reg_id);
		if (c && str_eq(ul_cstr(c, UL_CALLID), s->callid)) {
			if (s->cseq < c->cseq)
				return fail(s, 400, "Bad Request", "Invalid CSeq number");
			if (s->cseq == c->cseq) {
				if (c->last_modified + (int64_t)reg_cfg.cseq_delay <= s->now)
					return fail(s, 400, "Bad Request", "Invalid CSeq number");
				it->retrans = true;
			}
		}
		bool live = c && ul_contact_valid(c, s->now);
		it->op = it->expires == 0 ? (c ? OP_DELETE : OP_NONE) : (c ? OP_UPDATE : OP_INSERT);
		if (it->retrans)
			continue;
		if (it->op == OP_INSERT || (it->op == OP_UPDATE && !live))
			count++;
		else if (it->op == OP_DELETE && live)
			count--;
	}
	if (s->flags & REG_SAVE_REPLACE) {
		count = 0;
		for (unsigned i = 0; i < s->n; i++)
			count += s->items[i].expires > 0;
	}
	if (reg_cfg.max_contacts && count > (int64_t)reg_cfg.max_contacts)
		return fail(s, 403, "Too many registered contacts", "Too many registered contacts");
	return 0;
}

/* ---------------------------------------------------------------- applying */

static void item_info(const reg_save_t *s, const reg_item_t *it, ul_info_t *ci)
{
	*ci = (ul_info_t){
		.expires = s->now + it->expires,
		.q = it->q,
		.cseq = s->cseq,
		.cflags = s->cflags,
		.methods = s->methods,
		.reg_id = it->reg_id,
	};
	ci->s[UL_CONTACT] = it->uri;
	ci->s[UL_RECEIVED] = s->received;
	ci->s[UL_PATH] = s->path;
	ci->s[UL_CALLID] = s->callid;
	ci->s[UL_UA] = s->ua;
	ci->s[UL_SOCKET] = s->socket;
	ci->s[UL_INSTANCE] = it->instance;
}

static int db_failed(reg_save_t *s, int rc, const char *what)
{
	LOG_MSG_ERR(REGISTRAR, &s->callid, "save of %.*s failed: %s (%d)", STR_FMT(s->aor), what, rc);
	return fail(s, 500, "Server Internal Error", what);
}

/* REG_SAVE_REPLACE: every binding the request does not list goes. */
static int drop_unlisted(reg_save_t *s, ul_ref_t *ref)
{
	ul_contact_t *c = ref->r ? ref->r->contacts : NULL;
	while (c) {
		ul_contact_t *next = c->next;
		bool listed = false;
		for (unsigned i = 0; i < s->n && !listed; i++)
			listed = s->items[i].expires &&
				 c == ul_find_contact(ref->r, s->items[i].uri, s->items[i].instance, s->items[i].reg_id);
		if (!listed) {
			int rc = ul_remove(ref, c);
			if (rc < 0)
				return db_failed(s, rc, "usrloc_contact_delete failed");
			if (!ref->r)
				break;
		}
		c = next;
	}
	return 0;
}

static int apply_item(reg_save_t *s, ul_ref_t *ref, const reg_item_t *it, unsigned *done)
{
	ul_contact_t *c = ul_find_contact(ref->r, it->uri, it->instance, it->reg_id);
	ul_info_t ci;
	int rc = 0;

	if (it->retrans)
		return 0;
	if (it->expires == 0) {
		if (c && (rc = ul_remove(ref, c)) < 0)
			return db_failed(s, rc, "usrloc_contact_delete failed");
		*done |= c ? 4 : 0;
		return 0;
	}
	item_info(s, it, &ci);
	if (c) {
		if ((rc = ul_update(ref, c, &ci, NULL)) < 0)
			return db_failed(s, rc, "usrloc_contact_update failed");
		*done |= 2;
	} else {
		if ((rc = ul_add(ref, &ci, NULL)) < 0)
			return db_failed(s, rc, "usrloc_contact_insert failed");
		*done |= 1;
	}
	return 0;
}

/* "Contact: <a>;q=0.5;expires=60, <b>;expires=3600\r\n": every valid binding (§10.3 step 8). */
static str_t listing(reg_save_t *s, const ul_record_t *r)
{
	msg_buf_t b;
	char q[8];
	bool first = true;

	mbuf_init(&b, s->m->arena, 512);
	for (const ul_contact_t *c = r ? r->contacts : NULL; c; c = c->next) {
		if (!ul_contact_valid(c, s->now))
			continue;
		mbuf_lit(&b, first ? "Contact: <" : ", <");
		first = false;
		mbuf_str(&b, ul_cstr(c, UL_CONTACT));
		mbuf_lit(&b, ">");
		if (c->q >= 0) {
			mbuf_lit(&b, ";q=");
			mbuf_str(&b, ul_q_str(c->q, q));
		}
		mbuf_lit(&b, ";expires=");
		mbuf_u64(&b, c->expires ? (unsigned long long)(c->expires - s->now) : 0);
		if (reg_cfg.received_param[0] && c->len[UL_RECEIVED]) {
			mbuf_lit(&b, ";");
			mbuf_lit(&b, reg_cfg.received_param);
			mbuf_lit(&b, "=\"");
			mbuf_str(&b, ul_cstr(c, UL_RECEIVED));
			mbuf_lit(&b, "\"");
		}
		if (c->len[UL_INSTANCE]) {
			mbuf_lit(&b, ";+sip.instance=\"");
			mbuf_str(&b, ul_cstr(c, UL_INSTANCE));
			mbuf_lit(&b, "\"");
		}
		if (c->reg_id) {
			mbuf_lit(&b, ";reg-id=");
			mbuf_u64(&b, c->reg_id);
		}
	}
	if (!first)
		mbuf_lit(&b, "\r\n");
	return mbuf_done(&b);
}

/* Steps with the AOR locked: check, apply, list. */
static int save_locked(reg_save_t *s, ul_ref_t *ref)
{
	unsigned done = 0;

	if (s->star) {
		int rc = ul_remove_all(ref);
		if (rc < 0)
			return db_failed(s, rc, "usrloc_record_delete failed");
		s->result = 3;
		return 0;
	}
	if (check_items(s, ref->r) < 0)
		return -1;
	if ((s->flags & REG_SAVE_REPLACE) && drop_unlisted(s, ref) < 0)
		return -1;
	for (unsigned i = 0; i < s->n; i++)
		if (apply_item(s, ref, &s->items[i], &done) < 0)
			return -1;
	s->listing = listing(s, ref->r);
	s->result = s->n == 0 ? 4 : (done & 1) ? 1 : (done & 2) ? 2 : (done & 4) ? 3 : 2;
	return 0;
}

/* ---------------------------------------------------------------- the reply */

/* Through the transaction when the script made one (t_newtran), else stateless. */
static int send_reply(msg_t *m, int code, str_t reason)
{
	if (m->tm)
		return tm_reply(m, code, reason, false);
	return sl_send_reply(m, code, reason);
}

static str_t reply_headers(reg_save_t *s)
{
	msg_buf_t b;
	mbuf_init(&b, s->m->arena, 256 + s->listing.len);
	if (s->code == 200) {
		/* RFC 3261 §20.17: rfc1123-date, always GMT. strftime costs more than the
		 * rest of the reply: the line is made once per second per thread. */
		static _Thread_local char date[64];
		static _Thread_local time_t date_for = -1;
		time_t t = (time_t)s->now;
		if (t != date_for) {
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(date, sizeof(date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
			date_for = t;
		}
		mbuf_str(&b, s->listing);
		mbuf_lit(&b, date);
		if (s->path.len && reg_cfg.path_mode != 0 && s->path_supported) {
			mbuf_lit(&b, "Path: ");
			mbuf_str(&b, s->path);
			mbuf_lit(&b, "\r\n");
		}
		return mbuf_done(&b);
	}
	if (s->extra)
		mbuf_lit(&b, s->extra);
	if (s->info) {
		mbuf_lit(&b, "P-Registrar-Error: ");
		mbuf_lit(&b, s->info);
		mbuf_lit(&b, "\r\n");
	}
	if (s->code >= 500 && reg_cfg.retry_after) {
		mbuf_lit(&b, "Retry-After: ");
		mbuf_u64(&b, reg_cfg.retry_after);
		mbuf_lit(&b, "\r\n");
	}
	return mbuf_done(&b);
}

static int answer(reg_save_t *s)
{
	str_t hdrs = reply_headers(s);
	reg_msg_ctx_t *ctx = reg_ctx(s->m);

	stat_inc(s->code == 200 ? reg_cfg.st_accepted : reg_cfg.st_rejected);
	if (s->flags & REG_SAVE_NOREPLY) {
		ctx->reply_code = s->code;
		ctx->reply_reason = s->reason;
		ctx->reply_hdrs = hdrs;
		return 0;
	}
	if (hdrs.len && msg_reply_hdr_add(s->m, hdrs) < 0)
		return -1;
	return send_reply(s->m, s->code, str_cstr(s->reason)) > 0 ? 0 : -1;
}

int reg_send_reply(msg_t *m)
{
	reg_msg_ctx_t *ctx = reg_ctx(m);
	if (!ctx->reply_code)
		return -1;
	if (ctx->reply_hdrs.len && msg_reply_hdr_add(m, ctx->reply_hdrs) < 0)
		return -1;
	int code = ctx->reply_code;
	ctx->reply_code = 0;
	return send_reply(m, code, str_cstr(ctx->reply_reason)) > 0 ? 1 : -1;
}

/* ---------------------------------------------------------------- save */

int reg_save(msg_t *m, str_t table, unsigned flags, str_t uri, str_t received)
{
	reg_save_t s = {.m = m, .flags = flags, .now = time(NULL), .code = 200, .reason = "OK"};
	ul_ref_t ref;
	int rc;

	s.d = ul_domain(table);
	if (!s.d) {
		LOG_ERR(REGISTRAR, "save: no usable table \"%.*s\"", STR_FMT(table));
		return -1;
	}
	if (read_request(&s, uri, received) < 0 || read_contacts(&s) < 0)
		goto reply;
	rc = ul_open(s.d, s.aor, &ref);
	if (rc < 0) {
		db_failed(&s, rc, "usrloc_record_get failed");
		goto reply;
	}
	ref.nodb = (flags & REG_SAVE_MEM) != 0;
	rc = save_locked(&s, &ref);
	ul_close(&ref);
reply:
	if (answer(&s) < 0)
		LOG_MSG_ERR(REGISTRAR, &s.callid, "could not send the %d reply", s.code);
	if (s.code != 200)
		LOG_MSG_INFO(REGISTRAR, &s.callid, "REGISTER for %.*s refused: %d %s", STR_FMT(s.aor), s.code,
			     s.info ? s.info : s.reason);
	return s.code == 200 ? s.result : -1;
}
