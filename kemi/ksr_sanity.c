// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * KSR.sanity: the checks of Kamailio's sanity module, selected by the same
 * bitmasks, failing with the same replies.
 *
 * Much of what sanity checks, ksrd's core already enforces before the route
 * runs (sip_msg_validate: version, mandatory headers, CSeq, Content-Length,
 * URI syntax), so on a message a script can see most checks pass; they are
 * kept so that masks mean the same and replies stay right if that changes.
 *
 * Kamailio's module parameters keep their defaults: default_checks 3047,
 * uri_checks 7, proxy_require "" (no extension is supported: any
 * Proxy-Require tag is refused with 420), noreply 0 (the check sends its
 * reply itself, so sanity_reply() has nothing left to do).
 */
#include "../core/lib/log.h"
#include "../core/sl/sl.h"
#include "ksr.h"

enum {
	SN_RURI_SIP_VERSION = 1 << 0,
	SN_RURI_SCHEME = 1 << 1,
	SN_REQUIRED_HEADERS = 1 << 2,
	SN_VIA_SIP_VERSION = 1 << 3, /* a no-op in Kamailio too */
	SN_VIA_PROTOCOL = 1 << 4,    /* a no-op in Kamailio too */
	SN_CSEQ_METHOD = 1 << 5,
	SN_CSEQ_VALUE = 1 << 6,
	SN_CL = 1 << 7,
	SN_EXPIRES_VALUE = 1 << 8,
	SN_PROXY_REQUIRE = 1 << 9,
	SN_PARSE_URIS = 1 << 10,
	SN_CHECK_DIGEST = 1 << 11,
	SN_CHECK_DUPTAGS = 1 << 12,
	SN_CHECK_AUTHORIZATION = 1 << 13,
	SN_VIA1_HEADER = 1 << 14,
	SN_DEFAULT_CHECKS = SN_RURI_SIP_VERSION | SN_RURI_SCHEME | SN_REQUIRED_HEADERS | SN_CSEQ_METHOD |
			    SN_CSEQ_VALUE | SN_CL | SN_EXPIRES_VALUE | SN_PROXY_REQUIRE | SN_CHECK_DIGEST, /* 3047 */
};

enum {
	SN_URI_RURI = 1 << 0,
	SN_URI_FROM = 1 << 1,
	SN_URI_TO = 1 << 2,
	SN_URI_CONTACT = 1 << 3,
	SN_DEFAULT_URI_CHECKS = SN_URI_RURI | SN_URI_FROM | SN_URI_TO, /* 7 */
};

/* Outcome of one check; NOT_APPLICABLE is a non-digest Authorization. */
typedef enum { SN_PASS, SN_FAIL, SN_NOT_APPLICABLE } sn_result_t;

/*
 * Fails a check with a reply, as Kamailio's sanity does (noreply = 0). Replies
 * and ACKs are never answered. The result of sending does not change the
 * verdict: the message is bad either way.
 */
static sn_result_t fail_reply(msg_t *m, int code, const char *reason)
{
	str_t cid = sip_msg_callid(&m->sip);
	LOG_MSG_DBG(SANITY, &cid, "sanity check failed: %d %s", code, reason);
	if (m->sip.type == SIP_REQUEST && m->sip.method_id != METH_ACK)
		sl_send_reply(m, code, str_cstr(reason));
	return SN_FAIL;
}

/* Fails without a reply: what is broken would make the reply itself wrong. */
static sn_result_t fail_quiet(msg_t *m, const char *why)
{
	str_t cid = sip_msg_callid(&m->sip);
	LOG_MSG_DBG(SANITY, &cid, "sanity check failed: %s", why);
	return SN_FAIL;
}

/* Schemes Kamailio's URI parser accepts; anything else is a URI it cannot parse. */
static bool scheme_known(const sip_uri_t *u)
{
	return u->scheme == URI_SIP || u->scheme == URI_SIPS || u->scheme == URI_TEL ||
	       str_caseeq_lit(u->scheme_str, "tels") || str_caseeq_lit(u->scheme_str, "urn");
}

/* Kamailio's str2valid_uint: up to 10 digits, not above 4294967296 (sic: it lets 2^32 through). */
static bool valid_uint(str_t s)
{
	unsigned long long v;
	return s.len <= 10 && str_to_u64(s, 4294967296ull, &v);
}

/* ---------------------------------------------------------------- request line */

static sn_result_t check_ruri_version(msg_t *m)
{
	str_t v = m->sip.version;
	const char *slash = v.len ? memchr(v.s, '/', v.len) : NULL;
	if (!v.len)
		return SN_PASS;
	if (!slash)
		return fail_quiet(m, "no '/' in the SIP version");
	str_t num = str_from(slash + 1, (size_t)(v.s + v.len - slash - 1));
	return str_eq(num, STR_LIT("2.0")) ? SN_PASS : fail_reply(m, 505, "Version Not Supported (R-URI)");
}

/* The R-URI as routing has it now ($ru), which is what Kamailio parses. An
 * unknown scheme fails to parse there: 400, not 416. */
static sn_result_t check_ruri_parses(msg_t *m)
{
	sip_uri_t *u = msg_ruri(m);
	return u && scheme_known(u) ? SN_PASS : fail_reply(m, 400, "Bad Request URI");
}

/* ---------------------------------------------------------------- headers */

static sn_result_t check_required_headers(msg_t *m)
{
	static const sip_hdr_type_t once[] = {HDR_FROM, HDR_TO, HDR_CALLID, HDR_CSEQ};
	sip_msg_t *sm = &m->sip;
	if (!sm->first[HDR_VIA])
		return fail_quiet(m, "missing Via");
	for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
		if (!sm->first[once[i]])
			return fail_quiet(m, "missing a required header");
		if (sm->first[once[i]] != sm->last[once[i]])
			return fail_quiet(m, "duplicated From, To, Call-ID or CSeq");
	}
	return SN_PASS;
}

static sn_result_t check_via1(msg_t *m)
{
	sip_via_t *v = sip_msg_via1(&m->sip);
	return v && v->host.len ? SN_PASS : fail_quiet(m, "bad first Via");
}

static sn_result_t check_cseq_method(msg_t *m)
{
	sip_cseq_t *cs = sip_msg_cseq(&m->sip);
	if (!cs)
		return fail_quiet(m, "bad CSeq");
	if (!cs->method.len)
		return fail_reply(m, 400, "Missing method in CSeq header");
	/* method names are case-sensitive (RFC 3261 §7.1) */
	if (!str_eq(cs->method, m->sip.method))
		return fail_reply(m, 400, "CSeq method does not match request method");
	return SN_PASS;
}

static sn_result_t check_cseq_value(msg_t *m)
{
	sip_cseq_t *cs = sip_msg_cseq(&m->sip);
	if (!cs)
		return fail_quiet(m, "bad CSeq");
	if (!cs->seq_str.len)
		return fail_reply(m, 400, "Missing number in CSeq header");
	return valid_uint(cs->seq_str) ? SN_PASS : fail_reply(m, 400, "CSeq number is illegal");
}

static sn_result_t check_content_length(msg_t *m)
{
	long cl = m->sip.content_length;
	if (cl < 0 || m->sip.body.len == (size_t)cl)
		return SN_PASS;
	return fail_reply(m, 400, "Content-Length mis-match");
}

/* The first Expires header, as Kamailio looks only at that one. */
static sn_result_t check_expires(msg_t *m)
{
	sip_hdr_t *h = m->sip.first[HDR_EXPIRES];
	if (!h)
		return SN_PASS;
	str_t b = str_trim(h->body);
	if (!b.len)
		return fail_reply(m, 400, "Missing number in Expires header");
	for (size_t i = 0; i < b.len; i++)
		if (b.s[i] < '0' || b.s[i] > '9')
			return fail_reply(m, 400, "Bad Expires Header");
	return valid_uint(b) ? SN_PASS : fail_reply(m, 400, "Expires value is illegal");
}

/*
 * No extension is supported (proxy_require = ""), so the first tag of any
 * Proxy-Require header is answered 420 with Unsupported naming it
 * (RFC 3261 §16.3 step 4, §20.40).
 */
static sn_result_t check_proxy_require(msg_t *m)
{
	if (!m->sip.first[HDR_PROXY_REQUIRE])
		return SN_PASS;
	sip_param_t *tag = sip_msg_option_tags(&m->sip, HDR_PROXY_REQUIRE);
	if (!tag)
		return fail_reply(m, 400, "Bad Proxy Require Header");
	msg_buf_t b;
	mbuf_init(&b, m->arena, tag->name.len + 16);
	mbuf_lit(&b, "Unsupported: ");
	mbuf_str(&b, tag->name);
	mbuf_lit(&b, "\r\n");
	str_t line = mbuf_done(&b);
	if (line.s)
		msg_reply_hdr_add(m, line);
	return fail_reply(m, 420, "Bad Proxy Require Extension");
}

/* ---------------------------------------------------------------- URIs */

static sn_result_t check_nameaddr_uri(msg_t *m, sip_hdr_type_t t, const char *reason)
{
	if (!m->sip.first[t])
		return fail_quiet(m, "missing From or To");
	sip_nameaddr_t *na = t == HDR_FROM ? sip_msg_from(&m->sip) : sip_msg_to(&m->sip);
	return na && scheme_known(&na->uri) ? SN_PASS : fail_reply(m, 400, reason);
}

static sn_result_t check_contact_uri(msg_t *m)
{
	if (!m->sip.first[HDR_CONTACT])
		return SN_PASS;
	sip_contacts_t *ct = sip_msg_contacts(&m->sip);
	if (!ct)
		return fail_reply(m, 400, "Bad Contact Header");
	if (ct->star || !ct->first)
		return SN_PASS;
	return scheme_known(&ct->first->uri) ? SN_PASS : fail_reply(m, 400, "Bad Contact URI");
}

static sn_result_t check_parse_uris(msg_t *m, int uri_checks)
{
	sn_result_t rc = SN_PASS;
	if ((uri_checks & SN_URI_RURI) && m->sip.type == SIP_REQUEST)
		rc = check_ruri_parses(m);
	if (rc == SN_PASS && (uri_checks & SN_URI_FROM))
		rc = check_nameaddr_uri(m, HDR_FROM, "Invalid From Header");
	/* Kamailio's reason says "Ivalid To Header"; the typo is not worth keeping */
	if (rc == SN_PASS && (uri_checks & SN_URI_TO))
		rc = check_nameaddr_uri(m, HDR_TO, "Invalid To Header");
	if (rc == SN_PASS && (uri_checks & SN_URI_CONTACT))
		rc = check_contact_uri(m);
	return rc;
}

/* ---------------------------------------------------------------- credentials */

/* What Kamailio's check_dig_cred() demands, then non-empty username, nonce, response. */
static sn_result_t check_one_digest(msg_t *m, const sip_auth_t *au)
{
	bool qop = str_caseeq_lit(au->qop, "auth") || str_caseeq_lit(au->qop, "auth-int");
	if (!au->username.s || !au->realm.s || !au->nonce.s || !au->uri.s || !au->response.s ||
	    (qop && (!au->cnonce.s || !au->nc.s)))
		return fail_reply(m, 400, "Bad Auth Credentials");
	if (!au->username.len)
		return fail_reply(m, 400, "Auth Empty User");
	if (!au->nonce.len)
		return fail_reply(m, 400, "Auth Empty Nonce");
	if (!au->response.len)
		return fail_reply(m, 400, "Auth Empty Response");
	return SN_PASS;
}

/* Every Authorization, then every Proxy-Authorization. The first credentials
 * that are not Digest end the check as not applicable. */
static sn_result_t check_digest_only(msg_t *m)
{
	static const sip_hdr_type_t types[] = {HDR_AUTHORIZATION, HDR_PROXY_AUTHORIZATION};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		for (sip_hdr_t *h = m->sip.first[types[i]]; h; h = h->next_same) {
			sip_auth_t *au = sip_hdr_auth(&m->sip, h);
			if (!au)
				return fail_reply(m, 400, "Bad Auth Header");
			if (!str_caseeq_lit(au->scheme, "digest"))
				return SN_NOT_APPLICABLE;
			if (check_one_digest(m, au) != SN_PASS)
				return SN_FAIL;
		}
	}
	return SN_PASS;
}

/* 2048: non-Digest credentials fail (quietly); 8192: they pass. */
static sn_result_t check_digest(msg_t *m)
{
	sn_result_t rc = check_digest_only(m);
	return rc == SN_NOT_APPLICABLE ? fail_quiet(m, "credentials are not Digest") : rc;
}

static sn_result_t check_authorization(msg_t *m)
{
	sn_result_t rc = check_digest_only(m);
	return rc == SN_NOT_APPLICABLE ? SN_PASS : rc;
}

/* ---------------------------------------------------------------- tags */

static unsigned tag_count(const sip_nameaddr_t *na)
{
	unsigned n = 0;
	for (const sip_param_t *p = na->params; p; p = p->next)
		if (str_caseeq_lit(p->name, "tag"))
			n++;
	return n;
}

static sn_result_t check_duptags(msg_t *m)
{
	sip_nameaddr_t *from = sip_msg_from(&m->sip), *to = sip_msg_to(&m->sip);
	if (!from || !to)
		return fail_quiet(m, "bad From or To");
	if (tag_count(from) > 1)
		return fail_reply(m, 400, "Many From Tag Params");
	if (tag_count(to) > 1)
		return fail_reply(m, 400, "Many To Tag Params");
	return SN_PASS;
}

/* ---------------------------------------------------------------- the checks in Kamailio's order */

static int run_checks(msg_t *m, long long checks, long long uri_checks)
{
	bool req = m->sip.type == SIP_REQUEST;
	sn_result_t rc = SN_PASS;
	/* checks of the request line have nothing to look at in a reply */
#define RUN(bit, call) \
	if (rc == SN_PASS && (checks & (bit))) \
		rc = (call);
	RUN(SN_RURI_SIP_VERSION, req ? check_ruri_version(m) : SN_PASS)
	RUN(SN_RURI_SCHEME, req ? check_ruri_parses(m) : SN_PASS)
	RUN(SN_REQUIRED_HEADERS, check_required_headers(m))
	RUN(SN_VIA1_HEADER, check_via1(m))
	RUN(SN_CSEQ_METHOD, req ? check_cseq_method(m) : SN_PASS)
	RUN(SN_CSEQ_VALUE, check_cseq_value(m))
	RUN(SN_CL, check_content_length(m))
	RUN(SN_EXPIRES_VALUE, check_expires(m))
	RUN(SN_PROXY_REQUIRE, req ? check_proxy_require(m) : SN_PASS)
	RUN(SN_PARSE_URIS, check_parse_uris(m, (int)uri_checks))
	RUN(SN_CHECK_DIGEST, check_digest(m))
	RUN(SN_CHECK_AUTHORIZATION, check_authorization(m))
	RUN(SN_CHECK_DUPTAGS, check_duptags(m))
#undef RUN
	return rc == SN_PASS ? 1 : -1;
}

/* sanity_check(msg_checks, uri_checks): 1 when every selected check passes;
 * -1 when one fails, after the failing check has sent its reply. */
int ksr_sanity_sanity_check(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return run_checks(c->msg, a[0].i, a[1].i);
}

int ksr_sanity_sanity_check_defaults(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return run_checks(c->msg, SN_DEFAULT_CHECKS, SN_DEFAULT_URI_CHECKS);
}

/* With noreply = 0 the failed check has replied already; like Kamailio this
 * returns 1 and sends nothing. */
int ksr_sanity_sanity_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return 1;
}
