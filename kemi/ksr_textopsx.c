// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * KSR.textopsx: body removal, keep_hf, shell-pattern matching, the status of
 * a forwarded reply, comma-list header values and header iterators, as
 * Kamailio's textopsx. Edits are deferred like every other edit (msg.h).
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "../core/lib/log.h"
#include "ksr_textops.h"

static int clip(size_t n)
{
	return n > 200 ? 200 : (int)n;
}

/* ---------------------------------------------------------------- body, keep_hf */

int ksr_textopsx_remove_body(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	if (!msg_body(c->msg).len)
		return 1; /* nothing to remove is a success, as in Kamailio */
	return msg_set_body(c->msg, str_from("", 0), STR_NULL) == 0 ? 1 : -1;
}

/* Headers keep_hf never removes. */
static bool always_kept(sip_hdr_type_t t)
{
	switch (t) {
	case HDR_FROM: case HDR_TO: case HDR_CALLID: case HDR_CSEQ: case HDR_VIA: case HDR_CONTACT:
	case HDR_CONTENT_LENGTH: case HDR_CONTENT_TYPE: case HDR_ROUTE: case HDR_RECORD_ROUTE:
	case HDR_MAX_FORWARDS:
		return true;
	default:
		return false;
	}
}

/* Removes every header but the mandatory ones and those whose name matches re (NULL: none). */
static int keep_hf(msg_t *m, const regex_t *re)
{
	regmatch_t pm[1];
	for (unsigned i = 0; i < m->sip.nhdrs; i++) {
		const sip_hdr_t *h = &m->sip.hdrs[i];
		if (always_kept(h->type) || (re && ksr_re_exec(re, h->name.s, 0, h->name.len, 1, pm)))
			continue;
		if (msg_hdr_remove(m, i) < 0)
			return -1;
	}
	return 1;
}

int ksr_textopsx_keep_hf(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return keep_hf(c->msg, NULL);
}

int ksr_textopsx_keep_hf_re(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[0].s.len)
		return keep_hf(c->msg, NULL);
	const regex_t *re = ksr_re_get(c, a[0].s, KSR_RE_FLAGS);
	return re ? keep_hf(c->msg, re) : -1;
}

/* ---------------------------------------------------------------- fnmatch */

/* fnmatch(3) wants C strings: short ones are copied on the stack, long ones to the heap. */
#define FN_STACK 512

static int fn_match(str_t value, str_t pattern, str_t flags)
{
	char vbuf[FN_STACK], pbuf[FN_STACK];
	char *v = value.len < FN_STACK ? vbuf : malloc(value.len + 1);
	char *p = pattern.len < FN_STACK ? pbuf : malloc(pattern.len + 1);
	int rc = -1;
	if (v && p) {
		memcpy(v, value.s, value.len);
		v[value.len] = '\0';
		memcpy(p, pattern.s, pattern.len);
		p[pattern.len] = '\0';
		int fl = flags.len && (flags.s[0] == 'i' || flags.s[0] == 'I') ? FNM_CASEFOLD : 0;
		rc = fnmatch(p, v, fl) == 0 ? 1 : -1;
	}
	if (v != vbuf)
		free(v);
	if (p != pbuf)
		free(p);
	return rc;
}

int ksr_textopsx_fnmatch(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	return fn_match(a[0].s, a[1].s, STR_NULL);
}

int ksr_textopsx_fnmatch_ex(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	return fn_match(a[0].s, a[1].s, a[2].s);
}

/* ---------------------------------------------------------------- reply status */

/*
 * New status line for the reply being forwarded. As Kamailio: 100..699, and
 * a provisional or 2xx reply keeps its class (a 1xx cannot become final, a
 * 2xx cannot become an error, nor the reverse).
 */
static int set_status(ksr_ctx_t *c, long long code, str_t reason)
{
	msg_t *m = c->msg;
	if (m->sip.type != SIP_REPLY)
		return -1;
	if (code < 100 || code > 699) {
		ksr_text_err(c, "bad status code %lld", code);
		return -1;
	}
	if ((code < 300 || m->sip.status < 300) && code / 100 != m->sip.status / 100) {
		ksr_text_err(c, "a %d reply cannot become a %lld", m->sip.status, code);
		return -1;
	}
	str_t version = m->sip.version.len ? m->sip.version : STR_LIT("SIP/2.0");
	str_t line = arena_printf(m->arena, "%.*s %lld %.*s", STR_FMT(version), code, STR_FMT(reason));
	if (!line.s || msg_set_first_line(m, line) < 0)
		return -1;
	/* later reads ($rs, $rr) see the new status, as in Kamailio */
	m->sip.status = (int)code;
	m->sip.reason = str_from(m->new_first_line.s + m->new_first_line.len - reason.len, reason.len);
	return 1;
}

int ksr_textopsx_change_reply_status(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[1].s.len) {
		ksr_text_err(c, "empty reason phrase");
		return -1;
	}
	return set_status(c, a[0].i, a[1].s);
}

int ksr_textopsx_change_reply_status_code(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return set_status(c, a[0].i, c->msg->sip.reason);
}

/* ---------------------------------------------------------------- comma-list header values */

/*
 * The header name argument of *_hf_value: letters, digits, '-' and '_' with
 * blanks around; these functions take neither [index] nor .param.
 */
static bool hf_name_arg(str_t in, str_t *name)
{
	str_t s = str_trim(in);
	for (size_t i = 0; i < s.len; i++) {
		char ch = s.s[i];
		bool ok = ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
		if (!ok)
			return false;
	}
	*name = s;
	return s.len > 0;
}

/* The value part of a header line: after ':' and blanks, before the line end. */
static bool hdr_value_span(str_t text, const char **vs, const char **ve)
{
	const char *colon = memchr(text.s, ':', text.len);
	if (!colon)
		return false;
	*vs = colon + 1;
	*ve = text.s + text.len;
	while (*vs < *ve && (**vs == ' ' || **vs == '\t'))
		(*vs)++;
	while (*ve > *vs && ((*ve)[-1] == '\r' || (*ve)[-1] == '\n' || (*ve)[-1] == ' ' || (*ve)[-1] == '\t'))
		(*ve)--;
	return true;
}

/* Next comma-separated item (quotes respected), trimmed; *p moves past its comma. */
static bool next_item(const char **p, const char *end, str_t *item, const char **item_end)
{
	if (*p > end)
		return false;
	const char *q = *p;
	bool quoted = false;
	while (q < end && (*q != ',' || quoted)) {
		if (*q == '"' && (q == *p || q[-1] != '\\'))
			quoted = !quoted;
		q++;
	}
	*item = str_trim(str_from(*p, (size_t)(q - *p)));
	*item_end = q;
	*p = q + 1;
	return true;
}

static bool value_in(str_t value, str_t body)
{
	const char *p = body.s, *end = body.s + body.len, *ie;
	str_t item;
	while (next_item(&p, end, &item, &ie))
		if (item.len && str_caseeq(item, value))
			return true;
	return false;
}

int ksr_textopsx_hf_value_exists(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	str_t name, value = str_trim(a[1].s);
	sip_msg_t *sm = &c->msg->sip;
	if (!hf_name_arg(a[0].s, &name)) {
		ksr_text_err(c, "bad header name '%.*s'", clip(a[0].s.len), a[0].s.s);
		return -1;
	}
	if (!value.len)
		return -1;
	sip_hdr_type_t t = sip_hdr_type(name);
	for (unsigned i = 0; i < sm->nhdrs; i++)
		if (ksr_hdr_is(&sm->hdrs[i], t, name) && value_in(value, sm->hdrs[i].body))
			return 1;
	return -1;
}

/* Header line `text` with its value replaced by `value`; NULL slice if out of memory. */
static str_t with_value(msg_t *m, str_t text, const char *vs, const char *ve, str_t value)
{
	msg_buf_t b;
	mbuf_init(&b, m->arena, text.len + value.len + 4);
	mbuf_add(&b, text.s, (size_t)(vs - text.s));
	mbuf_str(&b, value);
	mbuf_add(&b, ve, (size_t)(text.s + text.len - ve));
	return mbuf_done(&b);
}

int ksr_textopsx_include_hf_value(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	msg_t *m = c->msg;
	str_t name, value = str_trim(a[1].s);
	if (!hf_name_arg(a[0].s, &name) || !value.len)
		return -1;
	sip_hdr_type_t t = sip_hdr_type(name);
	int first = -1;
	for (unsigned i = 0; i < m->sip.nhdrs; i++) {
		const char *vs, *ve;
		if (!ksr_hdr_is(&m->sip.hdrs[i], t, name) || !ksr_hdr_text(m, i).len)
			continue;
		str_t text = ksr_hdr_text(m, i);
		if (!hdr_value_span(text, &vs, &ve))
			continue;
		if (value_in(value, str_from(vs, (size_t)(ve - vs))))
			return 1;
		if (first < 0)
			first = (int)i;
	}
	if (first < 0) {
		str_t line = arena_printf(m->arena, "%.*s: %.*s\r\n", STR_FMT(name), STR_FMT(value));
		return line.s && msg_hdr_append_bottom(m, line) == 0 ? 1 : -1;
	}
	/* added at the end of the first header's list */
	const char *vs, *ve;
	str_t text = ksr_hdr_text(m, (unsigned)first);
	hdr_value_span(text, &vs, &ve);
	str_t list = arena_printf(m->arena, "%.*s%s%.*s", (int)(ve - vs), vs, ve > vs ? "," : "", STR_FMT(value));
	str_t line = list.s ? with_value(m, text, vs, ve, list) : STR_NULL;
	return line.s && msg_hdr_replace(m, (unsigned)first, line) == 0 ? 1 : -1;
}

/* The list without the items equal to value; *changed tells whether any went. */
static str_t list_without(msg_t *m, str_t list, str_t value, bool *changed)
{
	msg_buf_t b;
	const char *p = list.s, *end = list.s + list.len, *ie;
	str_t item;
	*changed = false;
	mbuf_init(&b, m->arena, list.len + 1);
	while (next_item(&p, end, &item, &ie)) {
		if (item.len && str_caseeq(item, value)) {
			*changed = true;
			continue;
		}
		if (b.len)
			mbuf_lit(&b, ", ");
		mbuf_str(&b, item);
	}
	return b.len ? mbuf_done(&b) : str_from("", 0);
}

int ksr_textopsx_exclude_hf_value(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	msg_t *m = c->msg;
	str_t name, value = str_trim(a[1].s);
	if (!hf_name_arg(a[0].s, &name) || !value.len)
		return -1;
	sip_hdr_type_t t = sip_hdr_type(name);
	for (unsigned i = 0; i < m->sip.nhdrs; i++) {
		const char *vs, *ve;
		bool changed;
		str_t text = ksr_hdr_text(m, i);
		if (!ksr_hdr_is(&m->sip.hdrs[i], t, name) || !text.len || !hdr_value_span(text, &vs, &ve))
			continue;
		str_t rest = list_without(m, str_from(vs, (size_t)(ve - vs)), value, &changed);
		if (!changed)
			continue;
		if (!rest.len) { /* nothing left: the whole header goes */
			if (msg_hdr_remove(m, i) < 0)
				return -1;
			continue;
		}
		str_t line = with_value(m, text, vs, ve, rest);
		if (!line.s || msg_hdr_replace(m, i, line) < 0)
			return -1;
	}
	return 1; /* also when nothing was there, as in Kamailio */
}

/* ---------------------------------------------------------------- header iterators */

/*
 * Up to 4 named iterators over the received headers, per worker. An iterator
 * belongs to the message it was started on: on a later message it is stale,
 * its operations fail and its slot can be taken by a new name.
 */
#define HF_ITERATORS 4
#define HF_ITER_NAME 32

typedef struct {
	char name[HF_ITER_NAME];
	size_t namelen;
	uint64_t msg_id; /* 0 = free */
	long pos;        /* -1 before the first header, nhdrs after the last */
} hf_iter_t;

static _Thread_local hf_iter_t hf_iters[HF_ITERATORS];

static bool iter_named(const hf_iter_t *it, str_t name)
{
	return it->msg_id && it->namelen == name.len && !memcmp(it->name, name.s, name.len);
}

/* The iterator with that name on the current message, or NULL. */
static hf_iter_t *iter_get(ksr_ctx_t *c, str_t name)
{
	for (unsigned i = 0; i < HF_ITERATORS; i++)
		if (iter_named(&hf_iters[i], name) && hf_iters[i].msg_id == c->msg->id)
			return &hf_iters[i];
	return NULL;
}

/* The header the iterator is on, or NULL. */
static const sip_hdr_t *iter_hdr(ksr_ctx_t *c, str_t name)
{
	hf_iter_t *it = iter_get(c, name);
	if (!it || it->pos < 0 || (unsigned long)it->pos >= c->msg->sip.nhdrs)
		return NULL;
	return &c->msg->sip.hdrs[it->pos];
}

int ksr_textopsx_hf_iterator_start(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	str_t name = a[0].s;
	hf_iter_t *slot = NULL;
	if (!name.len || name.len >= HF_ITER_NAME) {
		ksr_text_err(c, "bad iterator name '%.*s'", clip(name.len), name.s);
		return -1;
	}
	for (unsigned i = 0; i < HF_ITERATORS && !slot; i++)
		if (iter_named(&hf_iters[i], name))
			slot = &hf_iters[i];
	for (unsigned i = 0; i < HF_ITERATORS && !slot; i++)
		if (hf_iters[i].msg_id != c->msg->id)
			slot = &hf_iters[i];
	if (!slot) {
		ksr_text_err(c, "no free iterator for '%.*s' (%d in use)", clip(name.len), name.s, HF_ITERATORS);
		return -1;
	}
	memcpy(slot->name, name.s, name.len);
	slot->namelen = name.len;
	slot->msg_id = c->msg->id;
	slot->pos = -1;
	return 1;
}

int ksr_textopsx_hf_iterator_end(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	hf_iter_t *it = iter_get(c, a[0].s);
	if (!it)
		return -1;
	memset(it, 0, sizeof(*it));
	return 1;
}

int ksr_textopsx_hf_iterator_next(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	hf_iter_t *it = iter_get(c, a[0].s);
	long n = (long)c->msg->sip.nhdrs;
	if (!it || it->pos >= n)
		return -1;
	it->pos++;
	return it->pos < n ? 1 : -1;
}

int ksr_textopsx_hf_iterator_prev(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	hf_iter_t *it = iter_get(c, a[0].s);
	if (!it || it->pos <= 0) {
		if (it)
			it->pos = -1;
		return -1;
	}
	it->pos--;
	return 1;
}

int ksr_textopsx_hf_iterator_rm(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const sip_hdr_t *h = iter_hdr(c, a[0].s);
	return h && msg_hdr_remove(c->msg, h->index) == 0 ? 1 : -1;
}

int ksr_textopsx_hf_iterator_append(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const sip_hdr_t *h = iter_hdr(c, a[0].s);
	if (!h || !a[1].s.len)
		return -1;
	return msg_hdr_append_after(c->msg, h->index, a[1].s) == 0 ? 1 : -1;
}

int ksr_textopsx_hf_iterator_insert(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const sip_hdr_t *h = iter_hdr(c, a[0].s);
	if (!h || !a[1].s.len)
		return -1;
	return msg_hdr_insert_before(c->msg, h->index, a[1].s) == 0 ? 1 : -1;
}

int ksr_textopsx_hf_iterator_hname(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const sip_hdr_t *h = iter_hdr(c, a[0].s);
	return h ? ksr_xval_str(r, h->name) : -1;
}

int ksr_textopsx_hf_iterator_hbody(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const sip_hdr_t *h = iter_hdr(c, a[0].s);
	return h ? ksr_xval_str(r, sip_hdr_unfold(&c->msg->sip, h)) : -1;
}
