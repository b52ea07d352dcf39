// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * The one pass over a message: start line, header index, framing. Bodies of
 * headers are left alone here (see access.c) except Content-Length, which
 * framing needs.
 *
 * After an error in the start line or in one header line the pass goes on, so
 * that the Via, From, To, Call-ID and CSeq headers are indexed for the 400
 * (or 505) that the caller will send; the first error is the one reported.
 */
#include "parser_int.h"

#define HDRS_INITIAL 32

typedef struct {
	sip_msg_t *m;
	int rc; /* first error, SIP_OK if none */
	unsigned cap;
	bool stream;
} pstate_t;

/* Records the first error; replies get status 0 (drop) whatever the cause. */
static void note(pstate_t *ps, int rc, int status, const char *reason)
{
	if (ps->rc != SIP_OK)
		return;
	ps->rc = rc;
	ps->m->err.status = ps->m->type == SIP_REPLY ? 0 : status;
	ps->m->err.reason = reason;
}

static void bad(pstate_t *ps, const char *reason)
{
	note(ps, SIP_E_PARSE, 400, reason);
}

/* "SIP/" 1*DIGIT "." 1*DIGIT; returns false if it is not even that shape */
static bool version_shape(str_t v)
{
	if (v.len < 7 || !ci_eq(v.s, "sip/", 4))
		return false;
	const char *p = v.s + 4, *end = v.s + v.len;
	const char *q = skip_cls(p, end, CC_DIGIT);
	if (q == p || q >= end || *q != '.')
		return false;
	p = q + 1;
	q = skip_cls(p, end, CC_DIGIT);
	return q != p && q == end;
}

static bool version_is_20(str_t v)
{
	return v.len == 7 && ci_eq(v.s, "sip/2.0", 7);
}

static void status_line(pstate_t *ps, str_t line)
{
	sip_msg_t *m = ps->m;
	m->type = SIP_REPLY;
	const char *end = line.s + line.len;
	const char *sp = memchr(line.s, ' ', line.len);
	if (!sp) {
		bad(ps, "Malformed status line");
		return;
	}
	m->version = str_from(line.s, (size_t)(sp - line.s));
	if (!version_is_20(m->version)) {
		bad(ps, "Unsupported SIP version");
		return;
	}
	const char *p = sp;
	while (p < end && *p == ' ')
		p++;
	const char *q = skip_cls(p, end, CC_DIGIT);
	if (q - p != 3 || (q < end && *q != ' ')) {
		bad(ps, "Bad status code");
		return;
	}
	int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (code < 100 || code > 699) {
		bad(ps, "Bad status code");
		return;
	}
	m->status = code;
	m->reason = q < end ? str_from(q + 1, (size_t)(end - q - 1)) : str_from(end, 0);
}

static void request_line(pstate_t *ps, str_t line)
{
	sip_msg_t *m = ps->m;
	m->type = SIP_REQUEST;
	const char *end = line.s + line.len;
	const char *sp1 = memchr(line.s, ' ', line.len);
	if (!sp1 || sp1 == line.s) {
		bad(ps, "Malformed request line");
		return;
	}
	m->method = str_from(line.s, (size_t)(sp1 - line.s));
	if (skip_cls(line.s, sp1, CC_TOKEN) != sp1) {
		bad(ps, "Bad method");
		return;
	}
	m->method_id = sip_method_id(m->method);
	/* RFC 4475 lwsstart/trws: extra SP between and after the elements is tolerated */
	while (end > sp1 && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	const char *sp2 = end;
	while (sp2 > sp1 && sp2[-1] != ' ')
		sp2--;
	if (sp2 <= sp1 + 1) {
		bad(ps, "Malformed request line");
		return;
	}
	str_t ver = str_from(sp2, (size_t)(end - sp2));
	str_t ruri = str_trim(str_from(sp1 + 1, (size_t)(sp2 - sp1 - 1)));
	if (!version_shape(ver)) {
		bad(ps, "Malformed request line");
		return;
	}
	m->version = ver;
	if (!version_is_20(m->version)) {
		note(ps, SIP_E_PARSE, 505, "Version Not Supported");
		return;
	}
	if (ruri.len == 0) {
		bad(ps, "Missing Request-URI");
		return;
	}
	m->ruri_str = ruri;
	/* RFC 4475 lwsruri: LWS inside would make it two elements */
	if (has_ws(ruri))
		bad(ps, "Bad Request-URI");
}

static int content_length(pstate_t *ps, str_t v)
{
	unsigned long long n;
	if (ps->m->content_length != -1) {
		bad(ps, "Duplicate Content-Length");
		return SIP_E_PARSE;
	}
	if (!str_to_u64(v, (unsigned long long)INT32_MAX, &n)) {
		bad(ps, "Bad Content-Length");
		return SIP_E_PARSE;
	}
	ps->m->content_length = (long)n;
	return SIP_OK;
}

static sip_hdr_t *hdr_slot(pstate_t *ps)
{
	sip_msg_t *m = ps->m;
	if (m->nhdrs < ps->cap)
		return &m->hdrs[m->nhdrs];
	if (m->nhdrs >= SIP_MAX_HEADERS) {
		note(ps, SIP_E_TOOBIG, 400, "Too many headers");
		return NULL;
	}
	unsigned cap = ps->cap ? ps->cap * 2 : HDRS_INITIAL;
	if (cap > SIP_MAX_HEADERS)
		cap = SIP_MAX_HEADERS;
	sip_hdr_t *h = arena_alloc(m->arena, cap * sizeof(*h));
	if (!h) {
		note(ps, SIP_E_NOMEM, 500, "Out of memory");
		return NULL;
	}
	if (m->nhdrs)
		memcpy(h, m->hdrs, m->nhdrs * sizeof(*h));
	m->hdrs = h;
	ps->cap = cap;
	return &h[m->nhdrs];
}

/* One header field starting at p (not a continuation). Returns the octet after
 * its last line end, or NULL when the field is not terminated within end. */
static const char *field_end(const char *p, const char *end)
{
	for (;;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return NULL;
		p = nl + 1;
		if (p >= end || (*p != ' ' && *p != '\t'))
			return p;
	}
}

static void add_header(pstate_t *ps, const char *start, const char *next)
{
	const char *colon_end = next;
	const char *p = skip_cls(start, colon_end, CC_TOKEN);
	str_t name = str_from(start, (size_t)(p - start));
	while (p < colon_end && (*p == ' ' || *p == '\t'))
		p++;
	if (name.len == 0 || p >= colon_end || *p != ':') {
		bad(ps, "Malformed header");
		return;
	}
	sip_hdr_t *h = hdr_slot(ps);
	if (!h)
		return;
	h->type = sip_hdr_type_tok(name);
	h->name = name;
	/* the field ends in LF: trim LWS (folds included) on both sides */
	const char *b = skip_ws(p + 1, next), *e = next;
	while (e > b && cc_is(e[-1], CC_WS))
		e--;
	h->body = str_from(b, (size_t)(e - b));
	h->raw = str_from(start, (size_t)(next - start));
	h->index = ps->m->nhdrs++;
	h->parsed = NULL;
	h->next_same = NULL;
	if (h->type == HDR_CONTENT_LENGTH)
		content_length(ps, h->body);
}

/*
 * Indexes header lines from p; returns the start of the body, or NULL if the
 * header section is not complete (then ps->rc says why).
 */
static const char *index_headers(pstate_t *ps, const char *p, const char *end, const char **blank)
{
	while (p < end) {
		if (*p == '\n') {
			*blank = p;
			return p + 1;
		}
		if (*p == '\r' && p + 1 < end && p[1] == '\n') {
			*blank = p;
			return p + 2;
		}
		const char *next = field_end(p, end);
		if (!next)
			break;
		add_header(ps, p, next);
		if (ps->rc == SIP_E_TOOBIG || ps->rc == SIP_E_NOMEM)
			return NULL;
		p = next;
	}
	if (ps->stream) {
		note(ps, SIP_E_INCOMPLETE, 400, "Incomplete message");
		return NULL;
	}
	/* Even when the datagram ends right after a header line (RFC 4475 baddn), the
	 * message may have been cut there: without the empty line it is refused. */
	bad(ps, p >= end ? "Missing empty line after headers" : "Truncated message");
	return NULL;
}

static void link_headers(sip_msg_t *m)
{
	for (unsigned i = 0; i < m->nhdrs; i++) {
		sip_hdr_t *h = &m->hdrs[i];
		if (h->type == HDR_OTHER)
			continue;
		if (m->last[h->type])
			m->last[h->type]->next_same = h;
		else
			m->first[h->type] = h;
		m->last[h->type] = h;
	}
}

/* NUL may appear in a header only as a quoted-pair inside a quoted string
 * (RFC 3261 §25.1; RFC 4475 intmeth): anything else is refused. */
static bool nul_ok(str_t v)
{
	bool quoted = false;
	for (size_t i = 0; i < v.len; i++) {
		char c = v.s[i];
		if (c == '\0')
			return false;
		if (!quoted) {
			quoted = c == '"';
			continue;
		}
		if (c == '\\')
			i++;
		else if (c == '"')
			quoted = false;
	}
	return true;
}

static void check_nuls(pstate_t *ps, const char *from, const char *to)
{
	sip_msg_t *m = ps->m;
	const char *p = memchr(from, '\0', (size_t)(to - from));
	unsigned i = 0;
	while (p) {
		while (i < m->nhdrs && m->hdrs[i].raw.s + m->hdrs[i].raw.len <= p)
			i++;
		if (i >= m->nhdrs || p < m->hdrs[i].raw.s || !nul_ok(m->hdrs[i].body)) {
			bad(ps, "NUL octet in header");
			return;
		}
		const char *after = m->hdrs[i].raw.s + m->hdrs[i].raw.len;
		if (after >= to)
			return;
		p = memchr(after, '\0', (size_t)(to - after));
	}
}

static void frame(pstate_t *ps, const char *body, const char *end)
{
	sip_msg_t *m = ps->m;
	size_t avail = (size_t)(end - body);
	if (m->content_length < 0) {
		if (ps->stream)
			bad(ps, "Missing Content-Length");
		m->body = str_from(body, avail);
		return;
	}
	if ((size_t)m->content_length > avail) {
		m->body = str_from(body, avail);
		if (ps->stream)
			note(ps, SIP_E_INCOMPLETE, 400, "Incomplete message");
		else
			bad(ps, "Content-Length mismatch");
		return;
	}
	m->body = str_from(body, (size_t)m->content_length);
	m->len = (size_t)(body + m->content_length - m->buf);
}

int sip_parse_msg(sip_msg_t *m, const char *buf, size_t len, arena_t *a, unsigned flags)
{
	memset(m, 0, sizeof(*m));
	m->arena = a;
	m->buf = buf;
	m->len = len;
	m->content_length = -1;
	pstate_t ps = {.m = m, .rc = SIP_OK, .stream = (flags & SIP_PARSE_STREAM) != 0};
	if (!buf || len == 0) {
		note(&ps, ps.stream ? SIP_E_INCOMPLETE : SIP_E_PARSE, 0, "Empty message");
		return ps.rc;
	}
	const char *end = buf + len;
	const char *eol = memchr(buf, '\n', len);
	if (!eol) {
		if (len >= 4 && ci_eq(buf, "sip/", 4))
			m->type = SIP_REPLY;
		note(&ps, ps.stream ? SIP_E_INCOMPLETE : SIP_E_PARSE, 400, "Truncated message");
		return ps.rc;
	}
	str_t line = str_from(buf, (size_t)(eol - buf));
	if (line.len && line.s[line.len - 1] == '\r')
		line.len--;
	m->first_line = line;
	if (line.len >= 4 && ci_eq(line.s, "sip/", 4))
		status_line(&ps, line);
	else
		request_line(&ps, line);

	const char *hstart = eol + 1, *blank = NULL;
	const char *body = index_headers(&ps, hstart, end, &blank);
	link_headers(m);
	if (!body)
		return ps.rc;
	m->headers_block = str_from(hstart, (size_t)(blank - hstart));
	check_nuls(&ps, buf, blank);
	frame(&ps, body, end);
	return ps.rc;
}

/* ---------------------------------------------------------------- stream framing */

/* Value of a Content-Length field (line from name to its end, folds included). */
static long frame_cl_value(const char *p, const char *end)
{
	p = skip_ws(p, end);
	const char *d = p;
	p = skip_cls(p, end, CC_DIGIT);
	unsigned long long v;
	if (skip_ws(p, end) != end || !str_to_u64(str_from(d, (size_t)(p - d)), (unsigned long long)INT32_MAX, &v))
		return -1;
	return (long)v;
}

/* Content-Length of the header section [p, hend): -1 absent, -2 bad or duplicate. */
static long frame_cl(const char *p, const char *hend)
{
	long cl = -1;
	while (p < hend) {
		const char *next = field_end(p, hend);
		if (!next)
			next = hend;
		const char *n = skip_cls(p, next, CC_TOKEN);
		size_t nlen = (size_t)(n - p);
		if ((nlen == 1 && (*p | 0x20) == 'l') || (nlen == 14 && ci_eq(p, "content-length", 14))) {
			while (n < next && (*n == ' ' || *n == '\t'))
				n++;
			if (n < next && *n == ':') {
				long v = frame_cl_value(n + 1, next);
				if (v < 0 || cl != -1)
					return -2;
				cl = v;
			}
		}
		p = next;
	}
	return cl;
}

long sip_frame_stream(const char *buf, size_t len, size_t max_len)
{
	const char *end = buf + len, *p = buf, *hend = NULL;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		p = nl + 1;
		if (p < end && *p == '\n') {
			hend = p + 1;
			break;
		}
		if (p + 1 < end && p[0] == '\r' && p[1] == '\n') {
			hend = p + 2;
			break;
		}
	}
	if (!hend)
		return len > max_len ? SIP_E_PARSE : SIP_E_INCOMPLETE;
	size_t hlen = (size_t)(hend - buf);
	if (hlen > max_len)
		return SIP_E_PARSE;
	const char *first_nl = memchr(buf, '\n', hlen);
	long cl = frame_cl(first_nl + 1, hend);
	if (cl < 0)
		return SIP_E_PARSE;
	if ((size_t)cl > max_len - hlen)
		return SIP_E_PARSE;
	if ((size_t)cl > len - hlen)
		return SIP_E_INCOMPLETE;
	return (long)(hlen + (size_t)cl);
}

size_t sip_skip_keepalive(const char *buf, size_t len)
{
	size_t i = 0;
	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	return i;
}
