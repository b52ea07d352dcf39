// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Lazy accessors: parse a header body on first use and cache the result on the
 * header (hdr->parsed) or on the message. A header's cache only ever holds the
 * type its own header type implies, so handing a header of another type to
 * sip_hdr_auth() parses it without caching.
 *
 * A failed parse is not cached: asking again parses again and sets m->err again.
 */
#include <limits.h>

#include "parser_int.h"

#define NOMEM_REASON "Out of memory"

static void *acc_fail(sip_msg_t *m, const char *reason)
{
	m->err.status = m->type == SIP_REPLY ? 0 : 400;
	m->err.reason = reason;
	return NULL;
}

/* After a sub-parser failed: keep "out of memory" apart from malformed input. */
static void *acc_rc(sip_msg_t *m, int rc, const char *reason)
{
	if (rc == SIP_E_NOMEM) {
		acc_fail(m, NOMEM_REASON);
		if (m->type != SIP_REPLY)
			m->err.status = 500;
		return NULL;
	}
	return acc_fail(m, reason);
}

sip_uri_t *sip_msg_ruri(sip_msg_t *m)
{
	if (m->ruri)
		return m->ruri;
	if (m->type != SIP_REQUEST || !m->ruri_str.s)
		return acc_fail(m, "Missing Request-URI");
	sip_uri_t *u = arena_alloc(m->arena, sizeof(*u));
	if (!u)
		return acc_rc(m, SIP_E_NOMEM, NULL);
	int rc = sip_uri_parse(m->arena, m->ruri_str, u, NULL);
	if (rc)
		return acc_rc(m, rc, "Bad Request-URI");
	m->ruri = u;
	return u;
}

static sip_via_t *vias(sip_msg_t *m)
{
	if (m->vias_done)
		return m->vias;
	sip_hdr_t *h = m->first[HDR_VIA];
	if (!h)
		return acc_fail(m, "Missing Via");
	sip_via_t *first = NULL, **tail = &first;
	for (; h; h = h->next_same) {
		sip_via_t *v;
		int rc = sip_parse_via_list_lax(m->arena, h->body, h, &v, NULL);
		if (rc)
			return acc_rc(m, rc, "Malformed Via");
		h->parsed = v;
		*tail = v;
		while (*tail)
			tail = &(*tail)->next;
	}
	m->vias = first;
	m->vias_done = true;
	return first;
}

sip_via_t *sip_msg_via1(sip_msg_t *m)
{
	return vias(m);
}

sip_via_t *sip_msg_via2(sip_msg_t *m)
{
	sip_via_t *v = vias(m);
	if (!v)
		return NULL;
	if (!v->next)
		return acc_fail(m, "Missing second Via");
	return v->next;
}

static sip_nameaddr_t *na_single(sip_msg_t *m, sip_hdr_type_t t, const char *missing, const char *malformed)
{
	sip_hdr_t *h = m->first[t];
	if (!h)
		return acc_fail(m, missing);
	if (h->parsed)
		return h->parsed;
	sip_nameaddr_t *na = arena_alloc(m->arena, sizeof(*na));
	if (!na)
		return acc_rc(m, SIP_E_NOMEM, NULL);
	int rc = sip_parse_nameaddr(m->arena, h->body, na, NULL);
	if (rc)
		return acc_rc(m, rc, malformed);
	na->hdr = h;
	h->parsed = na;
	return na;
}

sip_nameaddr_t *sip_msg_from(sip_msg_t *m)
{
	return na_single(m, HDR_FROM, "Missing From", "Malformed From");
}

sip_nameaddr_t *sip_msg_to(sip_msg_t *m)
{
	return na_single(m, HDR_TO, "Missing To", "Malformed To");
}

/* Parses every header of type t as a name-addr list, linking the lists in message order. */
static int na_lists(sip_msg_t *m, sip_hdr_type_t t, const char *malformed, unsigned *count, bool *star)
{
	sip_nameaddr_t *first = NULL, **tail = &first;
	unsigned stars = 0;
	for (sip_hdr_t *h = m->first[t]; h; h = h->next_same) {
		h->parsed = NULL;
		if (star && h->body.len == 1 && h->body.s[0] == '*') {
			stars++;
			continue;
		}
		sip_nameaddr_t *na;
		int rc = sip_parse_nameaddr_list(m->arena, h->body, h, &na, NULL);
		if (rc) {
			acc_rc(m, rc, malformed);
			return rc;
		}
		h->parsed = na;
		*tail = na;
		for (; *tail; tail = &(*tail)->next)
			(*count)++;
	}
	/* "*" is only meaningful alone (RFC 3261 §10.2.2) */
	if (stars && (first || stars > 1)) {
		acc_fail(m, malformed);
		return SIP_E_PARSE;
	}
	if (star)
		*star = stars != 0;
	m->lists_done |= 1ull << t;
	return SIP_OK;
}

sip_contacts_t *sip_msg_contacts(sip_msg_t *m)
{
	if (m->contacts)
		return m->contacts;
	if (!m->first[HDR_CONTACT])
		return acc_fail(m, "Missing Contact");
	sip_contacts_t *c = arena_zalloc(m->arena, sizeof(*c));
	if (!c)
		return acc_rc(m, SIP_E_NOMEM, NULL);
	if (na_lists(m, HDR_CONTACT, "Malformed Contact", &c->count, &c->star))
		return NULL;
	c->first = m->first[HDR_CONTACT]->parsed;
	m->contacts = c;
	return c;
}

static sip_nameaddr_t *route_list(sip_msg_t *m, sip_hdr_type_t t, const char *missing, const char *malformed)
{
	if (!m->first[t])
		return acc_fail(m, missing);
	unsigned n = 0;
	if (!(m->lists_done & (1ull << t)) && na_lists(m, t, malformed, &n, NULL))
		return NULL;
	return m->first[t]->parsed;
}

sip_nameaddr_t *sip_msg_routes(sip_msg_t *m)
{
	return route_list(m, HDR_ROUTE, "Missing Route", "Malformed Route");
}

sip_nameaddr_t *sip_msg_record_routes(sip_msg_t *m)
{
	return route_list(m, HDR_RECORD_ROUTE, "Missing Record-Route", "Malformed Record-Route");
}

static int parse_cseq(str_t b, sip_cseq_t *c)
{
	const char *p = b.s, *end = b.s + b.len;
	const char *d = p;
	p = skip_cls(p, end, CC_DIGIT);
	unsigned long long v;
	if (!str_to_u64(str_from(d, (size_t)(p - d)), UINT32_MAX, &v))
		return SIP_E_PARSE;
	if (p >= end || !cc_is(*p, CC_WS))
		return SIP_E_PARSE;
	c->seq = (uint32_t)v;
	c->seq_str = str_from(d, (size_t)(p - d));
	p = skip_ws(p, end);
	const char *mt = p;
	p = skip_cls(p, end, CC_TOKEN);
	if (p == mt || p != end)
		return SIP_E_PARSE;
	c->method = str_from(mt, (size_t)(p - mt));
	c->method_id = sip_method_id(c->method);
	return SIP_OK;
}

sip_cseq_t *sip_msg_cseq(sip_msg_t *m)
{
	sip_hdr_t *h = m->first[HDR_CSEQ];
	if (!h)
		return acc_fail(m, "Missing CSeq");
	if (h->parsed)
		return h->parsed;
	sip_cseq_t *c = arena_alloc(m->arena, sizeof(*c));
	if (!c)
		return acc_rc(m, SIP_E_NOMEM, NULL);
	if (!h->body.s || parse_cseq(h->body, c))
		return acc_fail(m, "Bad CSeq");
	h->parsed = c;
	return c;
}

str_t sip_msg_callid(sip_msg_t *m)
{
	sip_hdr_t *h = m->first[HDR_CALLID];
	if (!h) {
		acc_fail(m, "Missing Call-ID");
		return STR_NULL;
	}
	return h->body;
}

int sip_msg_max_forwards(sip_msg_t *m)
{
	sip_hdr_t *h = m->first[HDR_MAX_FORWARDS];
	if (!h) {
		acc_fail(m, "Missing Max-Forwards");
		return -1;
	}
	unsigned long long v;
	if (!str_to_u64(h->body, 255, &v)) {
		acc_fail(m, "Bad Max-Forwards");
		return -2;
	}
	return (int)v;
}

long sip_msg_expires(sip_msg_t *m)
{
	sip_hdr_t *h = m->first[HDR_EXPIRES];
	if (!h) {
		acc_fail(m, "Missing Expires");
		return -1;
	}
	str_t b = h->body;
	if (b.len == 0) {
		acc_fail(m, "Bad Expires");
		return -1;
	}
	unsigned long long v = 0;
	for (size_t i = 0; i < b.len; i++) {
		if (!cc_is(b.s[i], CC_DIGIT)) {
			acc_fail(m, "Bad Expires");
			return -1;
		}
		/* RFC 3261 §25.1: delta-seconds past 2^32-1 mean 2^32-1 */
		if (v < UINT32_MAX)
			v = v * 10 + (unsigned)(b.s[i] - '0');
	}
	return v > UINT32_MAX ? (long)UINT32_MAX : (long)v;
}

/* Headers whose body is a plain token list; their hdr->parsed holds sip_param_t. */
static bool token_list_type(sip_hdr_type_t t)
{
	return t == HDR_SUPPORTED || t == HDR_REQUIRE || t == HDR_PROXY_REQUIRE || t == HDR_UNSUPPORTED ||
	       t == HDR_ALLOW || t == HDR_ALLOW_EVENTS;
}

/* option-tag *( COMMA option-tag ); empty elements are skipped */
static int tag_list(arena_t *a, str_t b, sip_param_t **first)
{
	const char *p = b.s, *end = b.s + b.len;
	sip_param_t **tail = first;
	*first = NULL;
	while (p < end) {
		p = skip_ws(p, end);
		const char *t = p;
		p = skip_cls(p, end, CC_TOKEN);
		if (p > t) {
			sip_param_t *prm = arena_alloc(a, sizeof(*prm));
			if (!prm)
				return SIP_E_NOMEM;
			*prm = (sip_param_t){str_from(t, (size_t)(p - t)), STR_NULL, NULL};
			*tail = prm;
			tail = &prm->next;
		}
		p = skip_ws(p, end);
		if (p < end && *p++ != ',')
			return SIP_E_PARSE;
	}
	return SIP_OK;
}

int sip_opt_tags_parse(sip_msg_t *m, sip_hdr_type_t t)
{
	if (!token_list_type(t)) {
		acc_fail(m, "Not a token-list header");
		return SIP_E_PARSE;
	}
	if (m->lists_done & (1ull << t))
		return SIP_OK;
	sip_param_t *prev_last = NULL;
	for (sip_hdr_t *h = m->first[t]; h; h = h->next_same) {
		sip_param_t *l;
		int rc = tag_list(m->arena, h->body, &l);
		if (rc) {
			acc_rc(m, rc, "Bad option tag");
			return rc;
		}
		h->parsed = l;
		if (!l)
			continue;
		if (prev_last)
			prev_last->next = l;
		for (prev_last = l; prev_last->next; prev_last = prev_last->next)
			;
	}
	m->lists_done |= 1ull << t;
	return SIP_OK;
}

sip_param_t *sip_msg_option_tags(sip_msg_t *m, sip_hdr_type_t which)
{
	if (!token_list_type(which))
		return acc_fail(m, "Not a token-list header");
	if (!m->first[which])
		return acc_fail(m, "Missing option tags");
	if (sip_opt_tags_parse(m, which))
		return NULL;
	for (sip_hdr_t *h = m->first[which]; h; h = h->next_same)
		if (h->parsed)
			return h->parsed;
	return acc_fail(m, "Missing option tags");
}

static bool auth_type(sip_hdr_type_t t)
{
	return t == HDR_AUTHORIZATION || t == HDR_PROXY_AUTHORIZATION || t == HDR_WWW_AUTHENTICATE ||
	       t == HDR_PROXY_AUTHENTICATE;
}

sip_auth_t *sip_hdr_auth(sip_msg_t *m, sip_hdr_t *h)
{
	if (!h)
		return acc_fail(m, "Missing credentials");
	bool cache = auth_type(h->type);
	if (cache && h->parsed)
		return h->parsed;
	sip_auth_t *au = arena_alloc(m->arena, sizeof(*au));
	if (!au)
		return acc_rc(m, SIP_E_NOMEM, NULL);
	int rc = sip_parse_auth(m->arena, h->body, au, NULL);
	if (rc)
		return acc_rc(m, rc, "Malformed credentials");
	if (cache)
		h->parsed = au;
	return au;
}

sip_auth_t *sip_msg_auth(sip_msg_t *m, sip_hdr_type_t which)
{
	if (!auth_type(which))
		return acc_fail(m, "Not a credentials header");
	return sip_hdr_auth(m, m->first[which]);
}

str_t sip_hdr_unfold(sip_msg_t *m, const sip_hdr_t *h)
{
	str_t b = h->body;
	if (!b.s || (!memchr(b.s, '\n', b.len) && !memchr(b.s, '\r', b.len)))
		return b;
	char *o = arena_alloc(m->arena, b.len + 1);
	if (!o)
		return STR_NULL;
	size_t n = 0;
	for (size_t i = 0; i < b.len;) {
		char c = b.s[i];
		if (c != '\r' && c != '\n') {
			o[n++] = c;
			i++;
			continue;
		}
		/* the fold and the WSP on both sides of it become one SP */
		while (n && (o[n - 1] == ' ' || o[n - 1] == '\t'))
			n--;
		while (i < b.len && cc_is(b.s[i], CC_WS))
			i++;
		o[n++] = ' ';
	}
	o[n] = '\0';
	return str_from(o, n);
}

/* ---------------------------------------------------------------- lookup by name */

static bool hdr_is(const sip_hdr_t *h, sip_hdr_type_t t, str_t name)
{
	if (t != HDR_OTHER)
		return h->type == t;
	return h->type == HDR_OTHER && str_caseeq(h->name, name);
}

/* The next header after h (or the first if h is NULL) that matches. */
static sip_hdr_t *hdr_next(sip_msg_t *m, sip_hdr_t *h, sip_hdr_type_t t, str_t name)
{
	if (t != HDR_OTHER)
		return h ? h->next_same : m->first[t];
	for (unsigned i = h ? h->index + 1 : 0; i < m->nhdrs; i++)
		if (hdr_is(&m->hdrs[i], t, name))
			return &m->hdrs[i];
	return NULL;
}

sip_hdr_t *sip_msg_hdr_find(sip_msg_t *m, str_t name)
{
	if (!name.s || !name.len)
		return NULL;
	return hdr_next(m, NULL, sip_hdr_type(name), name);
}

static unsigned hdr_count(sip_msg_t *m, sip_hdr_type_t t, str_t name)
{
	unsigned n = 0;
	for (sip_hdr_t *h = hdr_next(m, NULL, t, name); h; h = hdr_next(m, h, t, name))
		n++;
	return n;
}

unsigned sip_msg_hdr_count(sip_msg_t *m, str_t name)
{
	if (!name.s || !name.len)
		return 0;
	return hdr_count(m, sip_hdr_type(name), name);
}

sip_hdr_t *sip_msg_hdr_find_idx(sip_msg_t *m, str_t name, int idx)
{
	if (!name.s || !name.len)
		return NULL;
	sip_hdr_type_t t = sip_hdr_type(name);
	if (idx < 0) {
		long k = (long)hdr_count(m, t, name) + idx;
		if (k < 0)
			return NULL;
		idx = (int)k;
	}
	sip_hdr_t *h = hdr_next(m, NULL, t, name);
	for (int i = 0; h && i < idx; i++)
		h = hdr_next(m, h, t, name);
	return h;
}

bool sip_err_is_nomem(const sip_msg_t *m)
{
	return m->err.reason && strcmp(m->err.reason, NOMEM_REASON) == 0;
}
