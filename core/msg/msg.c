// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "msg.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void mbuf_init(msg_buf_t *b, arena_t *a, size_t cap)
{
	b->a = a;
	b->len = 0;
	b->cap = cap ? cap : 1024;
	b->p = arena_alloc(a, b->cap);
	b->failed = b->p == NULL;
}

void mbuf_add_slow(msg_buf_t *b, const char *s, size_t n)
{
	if (b->failed || n == 0)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap * 2;
		while (cap < b->len + n)
			cap *= 2;
		char *p = arena_alloc(b->a, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		memcpy(p, b->p, b->len);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

void mbuf_u64(msg_buf_t *b, unsigned long long v)
{
	/* by hand: snprintf costs more than building the rest of a reply */
	char tmp[24];
	char *p = tmp + sizeof(tmp);
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	mbuf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

_Static_assert(offsetof(msg_t, sip) == 0, "msg_init clears what follows sip");

int msg_init(msg_t *m, arena_t *a, const net_rcv_t *rcv, const char *buf, size_t len)
{
	static _Thread_local uint64_t next_id;
	/* m->sip is the first member and sip_parse_msg() clears it itself */
	memset((char *)m + offsetof(msg_t, rcv), 0, sizeof(*m) - offsetof(msg_t, rcv));
	m->arena = a;
	m->rcv = *rcv;
	m->id = ++next_id;
	m->received_at = (uint64_t)time(NULL);
	int rc = sip_parse_msg(&m->sip, buf, len, a,
			       rcv->proto == SIP_PROTO_UDP ? SIP_PARSE_DATAGRAM : SIP_PARSE_STREAM);
	if (m->sip.type == SIP_REQUEST)
		m->ruri = m->sip.ruri_str;
	m->ruri_q = -1;
	m->tm_auto100 = -1;
	return rc;
}

sip_uri_t *msg_ruri(msg_t *m)
{
	if (m->ruri_parsed)
		return m->ruri_parsed;
	if (!m->ruri_changed) {
		m->ruri_parsed = sip_msg_ruri(&m->sip);
		return m->ruri_parsed;
	}
	sip_uri_t *u = arena_zalloc(m->arena, sizeof(*u));
	if (!u || sip_uri_parse(m->arena, m->ruri, u, &m->sip.err) != SIP_OK)
		return NULL;
	m->ruri_parsed = u;
	return u;
}

str_t msg_ruri_with(msg_t *m, const str_t *user, const str_t *host, const str_t *port)
{
	const sip_uri_t *u = msg_ruri(m);
	if (!u || (u->scheme != URI_SIP && u->scheme != URI_SIPS))
		return STR_NULL;
	str_t nuser = user ? *user : u->user;
	str_t nhost = host ? *host : u->host;
	str_t nport = port ? *port : u->port_str;
	msg_buf_t b;
	mbuf_init(&b, m->arena, m->ruri.len + nuser.len + nhost.len + nport.len + 8);
	mbuf_str(&b, u->scheme_str);
	mbuf_lit(&b, ":");
	if (nuser.len) {
		mbuf_str(&b, nuser);
		if (u->password.len) {
			mbuf_lit(&b, ":");
			mbuf_str(&b, u->password);
		}
		mbuf_lit(&b, "@");
	}
	mbuf_str(&b, nhost);
	if (nport.len) {
		mbuf_lit(&b, ":");
		mbuf_str(&b, nport);
	}
	if (u->params_str.len) {
		mbuf_lit(&b, ";");
		mbuf_str(&b, u->params_str);
	}
	if (u->headers.len) {
		mbuf_lit(&b, "?");
		mbuf_str(&b, u->headers);
	}
	return mbuf_done(&b);
}

int msg_set_ruri(msg_t *m, str_t uri)
{
	sip_uri_t *u = arena_zalloc(m->arena, sizeof(*u));
	str_t copy = arena_strdup(m->arena, str_trim(uri));
	if (!u || !copy.s)
		return -ENOMEM;
	if (sip_uri_parse(m->arena, copy, u, NULL) != SIP_OK)
		return -EINVAL;
	m->ruri = copy;
	m->ruri_parsed = u;
	m->ruri_changed = true;
	return 0;
}

int msg_set_du(msg_t *m, str_t uri)
{
	uri = str_trim(uri);
	if (!uri.s || uri.len == 0) {
		m->du = STR_NULL;
		return 0;
	}
	sip_uri_t u;
	str_t copy = arena_strdup(m->arena, uri);
	if (!copy.s)
		return -ENOMEM;
	if (sip_uri_parse(m->arena, copy, &u, NULL) != SIP_OK)
		return -EINVAL;
	m->du = copy;
	return 0;
}

static msg_hdr_edit_t *edit_of(msg_t *m, unsigned idx)
{
	if (idx >= m->sip.nhdrs)
		return NULL;
	if (!m->edits) {
		m->edits = arena_zalloc(m->arena, sizeof(*m->edits) * m->sip.nhdrs);
		if (!m->edits)
			return NULL;
	}
	return &m->edits[idx];
}

static msg_text_t *text_new(msg_t *m, str_t text)
{
	msg_text_t *t = arena_alloc(m->arena, sizeof(*t));
	if (!t)
		return NULL;
	t->text = arena_strdup(m->arena, text);
	t->next = NULL;
	return t->text.s ? t : NULL;
}

/* Newest first; msg_text_write() writes them out oldest first. */
static int list_append(msg_t *m, msg_text_t **list, str_t text)
{
	msg_text_t *t = text_new(m, text);
	if (!t)
		return -ENOMEM;
	t->next = *list;
	*list = t;
	return 0;
}

int msg_hdr_remove(msg_t *m, unsigned idx)
{
	msg_hdr_edit_t *e = edit_of(m, idx);
	if (!e)
		return -EINVAL;
	e->removed = true;
	e->replace = NULL; /* removing a replaced header removes its replacement too */
	return 0;
}

bool msg_hdr_is_removed(const msg_t *m, unsigned idx)
{
	return m->edits && idx < m->sip.nhdrs && (m->edits[idx].removed || m->edits[idx].replace);
}

int msg_hdr_replace(msg_t *m, unsigned idx, str_t text)
{
	msg_hdr_edit_t *e = edit_of(m, idx);
	if (!e)
		return -EINVAL;
	e->replace = text_new(m, text);
	return e->replace ? 0 : -ENOMEM;
}

int msg_hdr_insert_before(msg_t *m, unsigned idx, str_t text)
{
	msg_hdr_edit_t *e = edit_of(m, idx);
	return e ? list_append(m, &e->before, text) : -EINVAL;
}

int msg_hdr_append_after(msg_t *m, unsigned idx, str_t text)
{
	msg_hdr_edit_t *e = edit_of(m, idx);
	return e ? list_append(m, &e->after, text) : -EINVAL;
}

int msg_hdr_insert_top(msg_t *m, str_t text)
{
	msg_text_t *t = text_new(m, text);
	if (!t)
		return -ENOMEM;
	t->next = m->top;
	m->top = t;
	return 0;
}

int msg_hdr_append_bottom(msg_t *m, str_t text)
{
	return list_append(m, &m->bottom, text);
}

int msg_reply_hdr_add(msg_t *m, str_t text)
{
	return list_append(m, &m->reply_hdrs, text);
}

int msg_hdr_remove_name(msg_t *m, str_t name)
{
	sip_hdr_type_t t = sip_hdr_type(name);
	int n = 0;
	for (unsigned i = 0; i < m->sip.nhdrs; i++) {
		const sip_hdr_t *h = &m->sip.hdrs[i];
		bool match = t != HDR_OTHER ? h->type == t : (h->type == HDR_OTHER && str_caseeq(h->name, name));
		if (match && !msg_hdr_is_removed(m, i) && msg_hdr_remove(m, i) == 0)
			n++;
	}
	return n;
}

str_t msg_body(const msg_t *m)
{
	return m->body_set ? m->new_body : m->sip.body;
}

/* Copies s into the arena; an empty s gives an empty, non-NULL slice. */
static int copy_to(msg_t *m, str_t s, str_t *out)
{
	str_t c = arena_strdup(m->arena, s);
	if (!c.s)
		return -ENOMEM;
	*out = c;
	return 0;
}

int msg_set_body(msg_t *m, str_t body, str_t ctype)
{
	str_t nb, nc = m->new_ctype;
	if (copy_to(m, body, &nb) < 0 || (ctype.len && copy_to(m, ctype, &nc) < 0))
		return -ENOMEM;
	m->new_body = nb;
	m->new_ctype = nc;
	m->body_set = true;
	return 0;
}

int msg_set_reply_body(msg_t *m, str_t body, str_t ctype)
{
	str_t nb, nc;
	if (copy_to(m, body, &nb) < 0 || copy_to(m, ctype, &nc) < 0)
		return -ENOMEM;
	m->reply_body = nb;
	m->reply_ctype = nc;
	return 0;
}

int msg_set_first_line(msg_t *m, str_t line)
{
	return copy_to(m, line, &m->new_first_line);
}

/* Writes a newest-first list in the order the texts were added. */
void msg_text_write(msg_buf_t *b, const msg_text_t *t)
{
	const msg_text_t *stack[32];
	unsigned n = 0;
	if (!t)
		return;
	for (const msg_text_t *p = t; p && n < 32; p = p->next)
		stack[n++] = p;
	if (n == 32 && stack[31]->next)
		msg_text_write(b, stack[31]->next); /* very long lists: older part first */
	while (n)
		mbuf_str(b, stack[--n]->text);
}

/* The top list is already in output order: each insert goes above the others. */
static void add_list_fwd(msg_buf_t *b, const msg_text_t *t)
{
	for (; t; t = t->next)
		mbuf_str(b, t->text);
}

static void add_content_length(msg_buf_t *b, size_t len)
{
	mbuf_lit(b, "Content-Length: ");
	mbuf_u64(b, len);
	mbuf_lit(b, "\r\n");
}

/*
 * One received header with its edits. A replaced body rewrites Content-Length;
 * a replaced Content-Type drops the received ones (the new one goes last).
 */
static void add_header(msg_t *m, msg_buf_t *b, const sip_hdr_t *h, const msg_hdr_edit_t *e, bool *have_cl)
{
	bool removed = e && e->removed && !e->replace;
	if (h->type == HDR_CONTENT_TYPE && m->new_ctype.len)
		return;
	if (h->type == HDR_CONTENT_LENGTH && m->body_set && !removed) {
		add_content_length(b, m->new_body.len);
		*have_cl = true;
	} else if (e && e->replace) {
		msg_text_write(b, e->replace);
	} else if (!removed) {
		mbuf_str(b, h->raw);
		if (h->type == HDR_CONTENT_LENGTH)
			*have_cl = true;
	}
}

/* Headers with edits applied, then Content-Length if needed, blank line, body. */
static void add_headers_and_body(msg_t *m, msg_buf_t *b, bool stream)
{
	bool have_cl = false;
	str_t body = msg_body(m);
	add_list_fwd(b, m->top);
	for (unsigned i = 0; i < m->sip.nhdrs; i++) {
		const msg_hdr_edit_t *e = m->edits ? &m->edits[i] : NULL;
		if (e)
			msg_text_write(b, e->before);
		add_header(m, b, &m->sip.hdrs[i], e, &have_cl);
		if (e)
			msg_text_write(b, e->after);
	}
	msg_text_write(b, m->bottom);
	if (m->new_ctype.len) {
		mbuf_lit(b, "Content-Type: ");
		mbuf_str(b, m->new_ctype);
		mbuf_lit(b, "\r\n");
	}
	if (!have_cl && (stream || body.len))
		add_content_length(b, body.len);
	mbuf_lit(b, "\r\n");
	mbuf_str(b, body);
}

str_t msg_build_request(msg_t *m, str_t via, bool stream)
{
	msg_buf_t b;
	mbuf_init(&b, m->arena, m->sip.len + m->new_body.len + 512);
	mbuf_str(&b, m->sip.method);
	mbuf_lit(&b, " ");
	mbuf_str(&b, m->ruri);
	mbuf_lit(&b, " SIP/2.0\r\n");
	mbuf_str(&b, via);
	add_headers_and_body(m, &b, stream);
	return mbuf_done(&b);
}

str_t msg_build_fwd_reply(msg_t *m, bool stream)
{
	msg_buf_t b;
	mbuf_init(&b, m->arena, m->sip.len + 256);
	mbuf_str(&b, m->new_first_line.s ? m->new_first_line : m->sip.first_line);
	mbuf_lit(&b, "\r\n");
	add_headers_and_body(m, &b, stream);
	return mbuf_done(&b);
}

int msg_snapshot(msg_t *m, msg_snapshot_t *s)
{
	s->edits = NULL;
	if (m->edits) {
		s->edits = arena_alloc(m->arena, sizeof(*m->edits) * m->sip.nhdrs);
		if (!s->edits)
			return -ENOMEM;
		memcpy(s->edits, m->edits, sizeof(*m->edits) * m->sip.nhdrs);
	}
	s->top = m->top;
	s->bottom = m->bottom;
	s->body_set = m->body_set;
	s->new_body = m->new_body;
	s->new_ctype = m->new_ctype;
	s->new_first_line = m->new_first_line;
	s->xflags = m->xflags;
	s->ruri = m->ruri;
	s->du = m->du;
	s->ruri_parsed = m->ruri_parsed;
	s->ruri_changed = m->ruri_changed;
	s->bflags = m->bflags;
	s->send_sock = m->send_sock;
	return 0;
}

void msg_restore(msg_t *m, const msg_snapshot_t *s)
{
	if (s->edits)
		memcpy(m->edits, s->edits, sizeof(*m->edits) * m->sip.nhdrs);
	else if (m->edits)
		memset(m->edits, 0, sizeof(*m->edits) * m->sip.nhdrs);
	m->top = s->top;
	m->bottom = s->bottom;
	m->body_set = s->body_set;
	m->new_body = s->new_body;
	m->new_ctype = s->new_ctype;
	m->new_first_line = s->new_first_line;
	m->xflags = s->xflags;
	m->ruri = s->ruri;
	m->du = s->du;
	m->ruri_parsed = s->ruri_parsed;
	m->ruri_changed = s->ruri_changed;
	m->bflags = s->bflags;
	m->send_sock = s->send_sock;
}

msg_branch_t *msg_append_branch(msg_t *m, str_t uri, str_t du, int q)
{
	msg_branch_t *b = arena_zalloc(m->arena, sizeof(*b));
	if (!b)
		return NULL;
	b->uri = arena_strdup(m->arena, uri);
	b->du = du.len ? arena_strdup(m->arena, du) : STR_NULL;
	b->q = q;
	if (!b->uri.s)
		return NULL;
	if (m->branches_tail)
		m->branches_tail->next = b;
	else
		m->branches = b;
	m->branches_tail = b;
	m->nbranches++;
	return b;
}

void msg_clear_branches(msg_t *m)
{
	m->branches = m->branches_tail = NULL;
	m->nbranches = 0;
}
