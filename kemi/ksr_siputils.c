// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * KSR.siputils: message tests, R-URI parameters, string tests, URI
 * comparison and the OPTIONS keep-alive answer, with the return codes of
 * Kamailio's siputils module (several tests fail with -2 or -3, not -1).
 *
 * URIs are parsed into the message arena. Like Kamailio's URI parser, only
 * sip, sips, tel, tels and urn count as URIs here.
 */
#include <time.h>

#include "../core/lib/log.h"
#include "../core/sl/sl.h"
#include "ksr.h"

static bool scheme_known(const sip_uri_t *u)
{
	return u->scheme == URI_SIP || u->scheme == URI_SIPS || u->scheme == URI_TEL ||
	       str_caseeq_lit(u->scheme_str, "tels") || str_caseeq_lit(u->scheme_str, "urn");
}

/* Parses s into the arena; NULL when it is not a URI we know. */
static sip_uri_t *uri_parse(msg_t *m, str_t s, sip_uri_t *u)
{
	if (!s.len || sip_uri_parse(m->arena, s, u, NULL) != SIP_OK || !scheme_known(u))
		return NULL;
	return u;
}

static void log_err(ksr_ctx_t *c, const char *what)
{
	char fn[64];
	str_t cid = sip_msg_callid(&c->msg->sip);
	LOG_MSG_ERR(LUA, &cid, "%s: %s", ksr_fn_fullname(c->fn, fn, sizeof(fn)), what);
}

/* ---------------------------------------------------------------- message tests */

int ksr_siputils_has_totag(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_nameaddr_t *to = sip_msg_to(&c->msg->sip);
	return to && to->tag.len ? 1 : -1;
}

int ksr_siputils_is_request(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return c->msg->sip.type == SIP_REQUEST ? 1 : -1;
}

int ksr_siputils_is_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return c->msg->sip.type == SIP_REPLY ? 1 : -1;
}

/* A reply looped back to us: it comes from the address its top Record-Route names. */
static bool reply_loops(msg_t *m, const sip_uri_t *u)
{
	net_addr_t rr;
	if (!net_addr_from_ip(u->host, 0, &rr) || !net_addr_ip_eq(&rr, &m->rcv.src))
		return false;
	uint16_t sport = net_addr_port(&m->rcv.src);
	sip_proto_t p = sip_uri_proto(u);
	return (sport == u->port || (!u->port_str.len && sport == 5060)) &&
	       (p == m->rcv.proto || (p == SIP_PROTO_NONE && m->rcv.proto == SIP_PROTO_UDP));
}

/*
 * A request is at its first hop when it carries one Via. A reply is when it
 * has no Record-Route, or when the top one is us (mode 0: written as an IP
 * address, and the reply does not come from that very address, a loop).
 */
static int first_hop(msg_t *m, long long mode)
{
	if (m->sip.type == SIP_REQUEST) {
		sip_via_t *v = sip_msg_via1(&m->sip);
		return !v || !v->next ? 1 : -1;
	}
	if (!m->sip.first[HDR_RECORD_ROUTE])
		return 1;
	sip_nameaddr_t *rr = sip_msg_record_routes(&m->sip);
	if (!rr || !scheme_known(&rr->uri))
		return -1;
	const sip_uri_t *u = &rr->uri;
	net_addr_t ip;
	if (mode == 0 && !net_addr_from_ip(u->host, 0, &ip))
		return -1;
	sip_proto_t p = u->transport.s ? sip_uri_proto(u) : SIP_PROTO_NONE;
	if (!net_is_myself(u->host, u->port_str.len ? u->port : 0, p))
		return -1;
	return mode == 0 && reply_loops(m, u) ? -1 : 1;
}

int ksr_siputils_is_first_hop(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return first_hop(c->msg, 0);
}

int ksr_siputils_is_first_hop_mode(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return first_hop(c->msg, a[0].i);
}

/* 1 with a value in gr, 2 for a bare ;gr, -1 otherwise. */
int ksr_siputils_is_gruu(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_uri_t *u = c->msg->sip.type == SIP_REQUEST ? msg_ruri(c->msg) : NULL;
	if (!u)
		return -1;
	const sip_param_t *gr = sip_param_find(u->params, STR_LIT("gr"));
	if (!gr)
		return -1;
	return gr->value.len ? 1 : 2;
}

/* ---------------------------------------------------------------- strings */

int ksr_siputils_is_uri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_uri_t u;
	return uri_parse(c->msg, a[0].s, &u) ? 1 : -1;
}

/* Optional '+' then a digit 1-9, then digits. */
int ksr_siputils_is_tel_number(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	str_t s = a[0].s;
	size_t i = 0;
	if (!s.len)
		return -2;
	if (s.s[0] == '+') {
		if (s.len < 2 || s.s[1] < '1' || s.s[1] > '9')
			return -2;
		i = 2;
	}
	for (; i < s.len; i++)
		if (s.s[i] < '0' || s.s[i] > '9')
			return -2;
	return 1;
}

int ksr_siputils_is_numeric(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	str_t s = a[0].s;
	if (!s.len)
		return -2;
	for (size_t i = 0; i < s.len; i++)
		if (s.s[i] < '0' || s.s[i] > '9')
			return -2;
	return 1;
}

static bool ascii_alnum(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* -2 when empty, -3 at the first character that is neither alphanumeric nor in extra. */
static int alnum_ex(str_t s, str_t extra)
{
	if (!s.len)
		return -2;
	for (size_t i = 0; i < s.len; i++)
		if (!ascii_alnum(s.s[i]) && !(extra.len && memchr(extra.s, s.s[i], extra.len)))
			return -3;
	return 1;
}

int ksr_siputils_is_alphanum(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return alnum_ex(a[0].s, STR_NULL);
}

int ksr_siputils_is_alphanumex(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return alnum_ex(a[0].s, a[1].s);
}

/* ---------------------------------------------------------------- R-URI parameters */

static sip_uri_t *ruri_or_log(ksr_ctx_t *c)
{
	sip_uri_t *u = c->msg->sip.type == SIP_REQUEST ? msg_ruri(c->msg) : NULL;
	if (!u)
		log_err(c, "the R-URI does not parse");
	return u;
}

/*
 * uri_param(name) / uri_param_value(name, value): the first parameter called
 * name (case-sensitive, as in Kamailio) decides: without value it must have
 * none, with value it must equal it.
 */
static int param_value_is(ksr_ctx_t *c, str_t name, const str_t *value)
{
	sip_uri_t *u = ruri_or_log(c);
	if (!u)
		return -1;
	for (const sip_param_t *p = u->params; p; p = p->next) {
		if (!str_eq(p->name, name))
			continue;
		if (value)
			return str_eq(p->value, *value) ? 1 : -1;
		return p->value.len ? -1 : 1;
	}
	return -1;
}

int ksr_siputils_uri_param(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return param_value_is(c, a[0].s, NULL);
}

int ksr_siputils_uri_param_value(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return param_value_is(c, a[0].s, &a[1].s);
}

/* Present, with or without a value; the name ignoring case. */
int ksr_siputils_uri_param_any(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_uri_t *u = ruri_or_log(c);
	return u && sip_param_find(u->params, a[0].s) ? 1 : -1;
}

/* Removes ";name[=value]" (the first, name ignoring case) from the R-URI; 1 also when absent. */
int ksr_siputils_uri_param_rm(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	msg_t *m = c->msg;
	sip_uri_t *u = ruri_or_log(c);
	if (!u)
		return -1;
	const sip_param_t *p = sip_param_find(u->params, a[0].s);
	if (!p)
		return 1;
	/* the parsed URI points into m->ruri, so the parameter is a span of it */
	str_t ru = m->ruri;
	const char *start = p->name.s;
	while (start > ru.s && *start != ';')
		start--;
	const char *end = p->value.s ? p->value.s + p->value.len : p->name.s + p->name.len;
	if (start < ru.s || end > ru.s + ru.len) {
		log_err(c, "cannot locate the parameter in the R-URI");
		return -1;
	}
	msg_buf_t b;
	mbuf_init(&b, m->arena, ru.len);
	mbuf_add(&b, ru.s, (size_t)(start - ru.s));
	mbuf_add(&b, end, (size_t)(ru.s + ru.len - end));
	str_t nu = mbuf_done(&b);
	return nu.s && msg_set_ruri(m, nu) == 0 ? 1 : -1;
}

/* Adds ";param" to the R-URI, before any "?headers". An empty param does nothing. */
int ksr_siputils_add_uri_param(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	msg_t *m = c->msg;
	if (!a[0].s.len)
		return 1;
	sip_uri_t *u = ruri_or_log(c);
	if (!u)
		return -1;
	str_t ru = m->ruri;
	size_t head = u->headers.s ? (size_t)(u->headers.s - 1 - ru.s) : ru.len;
	msg_buf_t b;
	mbuf_init(&b, m->arena, ru.len + a[0].s.len + 2);
	mbuf_add(&b, ru.s, head);
	mbuf_lit(&b, ";");
	mbuf_str(&b, a[0].s);
	mbuf_add(&b, ru.s + head, ru.len - head);
	str_t nu = mbuf_done(&b);
	if (!nu.s || msg_set_ruri(m, nu) != 0) {
		log_err(c, "the new R-URI does not parse");
		return -1;
	}
	return 1;
}

/* ---------------------------------------------------------------- comparisons */


static bool has_param(const sip_uri_t *u, const char *name)
{
	return sip_param_find(u->params, str_cstr(name)) != NULL;
}

/*
 * RFC 3261 §19.1.4 as Kamailio reads it: same scheme, user, password and port
 * as written, host ignoring case; a parameter present on both sides must have
 * the same value (ignoring case); user, ttl, method and maddr may not appear
 * on one side only when the other has no parameters at all.
 */
static bool uri_equal(const sip_uri_t *x, const sip_uri_t *y)
{
	static const char *const must_match[] = {"user", "ttl", "method", "maddr"};
	if (x->scheme != y->scheme || !str_caseeq(x->scheme_str, y->scheme_str) || !str_eq(x->user, y->user) ||
	    !str_eq(x->password, y->password) || !str_eq(x->port_str, y->port_str) || !str_caseeq(x->host, y->host))
		return false;
	/* urn, tels: opaque after the scheme */
	if (x->scheme == URI_OTHER)
		return str_caseeq(x->raw, y->raw);
	if (!x->params && !y->params)
		return true;
	for (size_t i = 0; i < sizeof(must_match) / sizeof(must_match[0]); i++)
		if ((!x->params && has_param(y, must_match[i])) || (!y->params && has_param(x, must_match[i])))
			return false;
	for (const sip_param_t *p = x->params; p; p = p->next) {
		const sip_param_t *q = sip_param_find(y->params, p->name);
		if (q && !str_caseeq(p->value, q->value))
			return false;
	}
	return true;
}

int ksr_siputils_cmp_uri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_uri_t x, y;
	if (!uri_parse(c->msg, a[0].s, &x) || !uri_parse(c->msg, a[1].s, &y))
		return -2;
	return uri_equal(&x, &y) ? 1 : -1;
}

/* Address of record: user, host (ignoring case) and port, a missing port being 5060.
 * (Kamailio lets two different explicit ports pass; we compare them.) */
int ksr_siputils_cmp_aor(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_uri_t x, y;
	if (!uri_parse(c->msg, a[0].s, &x) || !uri_parse(c->msg, a[1].s, &y))
		return -2;
	uint16_t px = x.port_str.len ? x.port : 5060, py = y.port_str.len ? y.port : 5060;
	return str_eq(x.user, y.user) && str_caseeq(x.host, y.host) && px == py ? 1 : -1;
}

/* Header names ignoring case; the sign convention makes "a" < "b" an error (-2), as in Kamailio. */
int ksr_siputils_cmp_hdr_name(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return ksr_cmp_result(str_casecmp(a[0].s, a[1].s));
}

/* ---------------------------------------------------------------- Date */

static int two_digits(const char *p)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return -1;
	return (p[0] - '0') * 10 + (p[1] - '0');
}

/*
 * RFC 3261 §20.17 / RFC 1123: "Sun, 06 Nov 1994 08:49:37 GMT", nothing else
 * (Kamailio's date parser is as strict). Returns false when malformed.
 */
static bool parse_date(str_t s, time_t *out)
{
	static const char wkdays[] = "MonTueWedThuFriSatSun";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *p = s.s;
	if (s.len != 29 || p[3] != ',' || p[4] != ' ' || p[7] != ' ' || p[11] != ' ' || p[16] != ' ' ||
	    p[19] != ':' || p[22] != ':' || p[25] != ' ' || memcmp(p + 26, "GMT", 3) != 0)
		return false;
	bool wk = false;
	for (int i = 0; i < 7 && !wk; i++)
		wk = memcmp(p, wkdays + 3 * i, 3) == 0;
	int mon = -1;
	for (int i = 0; i < 12 && mon < 0; i++)
		if (memcmp(p + 8, months + 3 * i, 3) == 0)
			mon = i;
	int day = two_digits(p + 5), y1 = two_digits(p + 12), y2 = two_digits(p + 14);
	int hh = two_digits(p + 17), mm = two_digits(p + 20), ss = two_digits(p + 23);
	if (!wk || mon < 0 || day < 1 || day > 31 || y1 < 0 || y2 < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
	    ss < 0 || ss > 60)
		return false;
	struct tm tm = {.tm_year = y1 * 100 + y2 - 1900, .tm_mon = mon, .tm_mday = day, .tm_hour = hh,
			.tm_min = mm, .tm_sec = ss};
	*out = timegm(&tm);
	return *out != (time_t)-1;
}

/* hdr_date_check(tdiff): 1 when the Date header is not older than tdiff seconds,
 * -4 when it is, -1 when it is missing or malformed. */
int ksr_siputils_hdr_date_check(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_hdr_t *h = c->msg->sip.first[HDR_DATE];
	time_t t;
	if (!h) {
		log_err(c, "no Date header");
		return -1;
	}
	if (!parse_date(str_trim(h->body), &t)) {
		log_err(c, "malformed Date header");
		return -1;
	}
	return time(NULL) > t + a[0].i ? -4 : 1;
}

/* ---------------------------------------------------------------- OPTIONS */

/* What Kamailio's siputils answers with (its opt_* modparams at their defaults). */
#define OPTIONS_HDRS "Accept: */*\r\nAccept-Encoding: \r\nAccept-Language: en\r\nSupported: \r\n"

/*
 * options_reply(): 200 to an OPTIONS whose R-URI has no user part, i.e. one
 * meant for the server itself (RFC 3261 §11.2). -1 for anything else.
 */
int ksr_siputils_options_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	msg_t *m = c->msg;
	if (m->sip.type != SIP_REQUEST || m->sip.method_id != METH_OPTIONS) {
		log_err(c, "called for a non-OPTIONS request");
		return -1;
	}
	sip_uri_t *u = ruri_or_log(c);
	if (!u)
		return -1;
	if (u->user.len) {
		log_err(c, "the R-URI has a user part");
		return -1;
	}
	if (msg_reply_hdr_add(m, STR_LIT(OPTIONS_HDRS)) != 0)
		return sl_send_reply(m, 500, STR_LIT("Server internal error")) > 0 ? 1 : -1;
	return sl_send_reply(m, 200, STR_LIT("OK")) > 0 ? 1 : -1;
}
