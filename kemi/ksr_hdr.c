// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * KSR.hdr: read, add and remove headers of the current message.
 *
 * Names match the way Kamailio matches them: a known header by its type, so
 * "v" finds "Via" and the other way round; any other header by its name,
 * case-insensitively.
 *
 * Edits are deferred (msg_hdr_*): they shape the message we send, never the
 * one we received. Reads see the received message, as in Kamailio, where a
 * removed header stays visible to hdr.get/is_present until the changes are
 * applied: `KSR.hdr.remove("X"); KSR.hdr.is_present("X")` is still 1. We keep
 * that so a script behaves the same on both servers.
 */
#include "../core/lib/log.h"
#include "ksr.h"

/* Kamailio refuses header names of 252 octets and more (its lookup buffer). */
#define HNAME_MAX 252

static bool hname_ok(ksr_ctx_t *c, str_t name)
{
	if (name.len > 0 && name.len < HNAME_MAX)
		return true;
	char fn[64];
	str_t cid = sip_msg_callid(&c->msg->sip);
	LOG_MSG_ERR(LUA, &cid, "%s: bad header name (%zu octets)", ksr_fn_fullname(c->fn, fn, sizeof(fn)),
		    name.len);
	return false;
}

static int edit_failed(ksr_ctx_t *c)
{
	char fn[64];
	str_t cid = sip_msg_callid(&c->msg->sip);
	LOG_MSG_ERR(LUA, &cid, "%s: cannot record the header edit (out of memory)",
		    ksr_fn_fullname(c->fn, fn, sizeof(fn)));
	return -1;
}

/*
 * Text goes in as given: like Kamailio we do not add a missing CRLF, the
 * script owns the line. An empty text is a successful no-op.
 */
static int add_top(ksr_ctx_t *c, str_t text)
{
	msg_t *m = c->msg;
	if (!text.len)
		return 1;
	/* before the first header, after what earlier calls put there: Kamailio
	 * keeps insertions at the same place in call order */
	int rc = m->sip.nhdrs ? msg_hdr_insert_before(m, 0, text) : msg_hdr_insert_top(m, text);
	return rc == 0 ? 1 : edit_failed(c);
}

static int add_bottom(ksr_ctx_t *c, str_t text)
{
	if (!text.len)
		return 1;
	return msg_hdr_append_bottom(c->msg, text) == 0 ? 1 : edit_failed(c);
}

int ksr_hdr_append(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return add_bottom(c, a[0].s);
}

int ksr_hdr_insert(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return add_top(c, a[0].s);
}

/* hdr.append_after(text, name): after the first header called name, else after the last one. */
int ksr_hdr_append_after(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	if (!hname_ok(c, a[1].s))
		return -1;
	sip_hdr_t *h = sip_msg_hdr_find(&c->msg->sip, a[1].s);
	if (!h)
		return add_bottom(c, a[0].s);
	if (!a[0].s.len)
		return 1;
	return msg_hdr_append_after(c->msg, h->index, a[0].s) == 0 ? 1 : edit_failed(c);
}

/* hdr.insert_before(text, name): before the first header called name, else before the first one. */
int ksr_hdr_insert_before(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	if (!hname_ok(c, a[1].s))
		return -1;
	sip_hdr_t *h = sip_msg_hdr_find(&c->msg->sip, a[1].s);
	if (!h)
		return add_top(c, a[0].s);
	if (!a[0].s.len)
		return 1;
	return msg_hdr_insert_before(c->msg, h->index, a[0].s) == 0 ? 1 : edit_failed(c);
}

/* 1 whether or not such a header was there, as in Kamailio. */
static int remove_all(ksr_ctx_t *c, str_t name)
{
	if (!hname_ok(c, name))
		return -1;
	msg_hdr_remove_name(c->msg, name);
	return 1;
}

int ksr_hdr_remove(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return remove_all(c, a[0].s);
}

int ksr_hdr_rmappend(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	int rc = remove_all(c, a[0].s);
	return rc < 0 ? rc : add_bottom(c, a[1].s);
}

int ksr_hdr_rminsert(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	int rc = remove_all(c, a[0].s);
	return rc < 0 ? rc : add_top(c, a[1].s);
}

int ksr_hdr_is_present(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	if (!hname_ok(c, a[0].s))
		return -1;
	return sip_msg_hdr_find(&c->msg->sip, a[0].s) ? 1 : -1;
}

int ksr_hdr_append_to_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	if (!a[0].s.len)
		return 1;
	return msg_reply_hdr_add(c->msg, a[0].s) == 0 ? 1 : edit_failed(c);
}

/* ---------------------------------------------------------------- get */

/* The body is a slice of the received message: no copy. No header = no value,
 * which the table turns into nil, "" or "<null>" per variant. */
static int get_body(ksr_ctx_t *c, str_t name, long long idx, ksr_xval_t *r)
{
	if (!hname_ok(c, name) || idx > INT32_MAX || idx < INT32_MIN)
		return 0;
	sip_hdr_t *h = sip_msg_hdr_find_idx(&c->msg->sip, name, (int)idx);
	return h ? ksr_xval_str(r, h->body) : 0;
}

int ksr_hdr_get(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return get_body(c, a[0].s, 0, r);
}

int ksr_hdr_get_idx(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return get_body(c, a[0].s, a[1].i, r);
}

/* ---------------------------------------------------------------- match_content */

typedef enum { MC_EQ, MC_NE, MC_SW, MC_IN } mc_op_t;
typedef enum { MC_FIRST, MC_LAST, MC_ALL, MC_ONE } mc_which_t;

static bool ci_contains(str_t hay, str_t needle)
{
	if (needle.len == 0)
		return true;
	for (size_t i = 0; i + needle.len <= hay.len; i++)
		if (strncasecmp(hay.s + i, needle.s, needle.len) == 0)
			return true;
	return false;
}

/* Comparisons ignore case, as Kamailio's do. */
static bool mc_match(mc_op_t op, str_t body, str_t val)
{
	switch (op) {
	case MC_EQ: return str_caseeq(body, val);
	case MC_NE: return !str_caseeq(body, val);
	case MC_SW: return body.len >= val.len && (val.len == 0 || strncasecmp(body.s, val.s, val.len) == 0);
	case MC_IN: return body.len >= val.len && ci_contains(body, val);
	}
	return false;
}

static bool mc_parse(ksr_ctx_t *c, str_t op, str_t which, mc_op_t *o, mc_which_t *w)
{
	static const struct {
		const char *name;
		mc_op_t op;
	} ops[] = {{"eq", MC_EQ}, {"ne", MC_NE}, {"sw", MC_SW}, {"in", MC_IN}};
	char fn[64];
	str_t cid = sip_msg_callid(&c->msg->sip);
	bool found = false;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && !found; i++)
		if (str_caseeq_lit(op, ops[i].name)) {
			*o = ops[i].op;
			found = true;
		}
	if (!found) {
		/* "re" exists in Kamailio's list but is not implemented there either */
		LOG_MSG_ERR(LUA, &cid, "%s: invalid operator '%.*s' (eq, ne, sw, in)",
			    ksr_fn_fullname(c->fn, fn, sizeof(fn)), (int)(op.len > 16 ? 16 : op.len), op.s);
		return false;
	}
	switch (which.len ? which.s[0] | 0x20 : 0) {
	case 'f': *w = MC_FIRST; return true;
	case 'l': *w = MC_LAST; return true;
	case 'a': *w = MC_ALL; return true;
	case 'o': *w = MC_ONE; return true;
	default: break;
	}
	LOG_MSG_ERR(LUA, &cid, "%s: invalid header index '%.*s' (f, l, a, o)", ksr_fn_fullname(c->fn, fn, sizeof(fn)),
		    (int)(which.len > 16 ? 16 : which.len), which.s);
	return false;
}

/*
 * hdr.match_content(name, op, value, which): compares the trimmed bodies of the
 * headers called name with value. which: f(irst), l(ast), a(ll) must match,
 * o(ne) of them must match. No such header: false.
 */
int ksr_hdr_match_content(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	mc_op_t op;
	mc_which_t which;
	if (!hname_ok(c, a[0].s) || !mc_parse(c, a[1].s, a[3].s, &op, &which))
		return -1;
	sip_msg_t *sm = &c->msg->sip;
	sip_hdr_type_t t = sip_hdr_type(a[0].s);
	bool matched = false;
	for (unsigned i = 0; i < sm->nhdrs; i++) {
		const sip_hdr_t *h = &sm->hdrs[i];
		if (t != HDR_OTHER ? h->type != t : (h->type != HDR_OTHER || !str_caseeq(h->name, a[0].s)))
			continue;
		matched = mc_match(op, str_trim(h->body), a[2].s);
		if (which == MC_FIRST || (which == MC_ALL && !matched) || (which == MC_ONE && matched))
			return matched ? 1 : -1;
	}
	/* last, all, or one that never matched: the last header decides */
	return matched ? 1 : -1;
}
