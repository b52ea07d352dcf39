// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* KSR.tm and KSR.tmx over core/tm. */
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "../core/lib/log.h"
#include "../core/tm/tm.h"
#include "ksr.h"

/* Sets $du to proto/host/port (host and port default to the next hop's) and relays. */
static int relay_with(ksr_ctx_t *c, const char *proto, str_t host, long long port)
{
	msg_t *m = c->msg;
	sip_uri_t du_uri, *u = NULL;
	if (m->du.len && sip_uri_parse(m->arena, m->du, &du_uri, NULL) == SIP_OK)
		u = &du_uri;
	else
		u = msg_ruri(m);
	if (!host.len && !u)
		return -1;
	str_t h = host.len ? host : u->host;
	unsigned p = port > 0 ? (unsigned)port : (host.len ? 5060 : sip_uri_port(u));
	str_t du = arena_printf(m->arena, "sip:%.*s:%u;transport=%s", STR_FMT(h), p, proto);
	if (!du.s || msg_set_du(m, du) < 0)
		return -1;
	return tm_relay(m);
}

int ksr_tm_t_relay(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_relay(c->msg);
}

static bool proto_ok(str_t p)
{
	return str_caseeq_lit(p, "udp") || str_caseeq_lit(p, "tcp");
}

int ksr_tm_t_relay_to_proto(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	char proto[8];
	(void)r;
	if (!proto_ok(a[0].s))
		return -1;
	snprintf(proto, sizeof(proto), "%.*s", STR_FMT(a[0].s));
	return relay_with(c, proto, STR_NULL, 0);
}

int ksr_tm_t_relay_to_proto_addr(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	char proto[8];
	(void)r;
	if (!proto_ok(a[0].s) || !a[1].s.len || a[2].i <= 0 || a[2].i > 65535)
		return -1;
	snprintf(proto, sizeof(proto), "%.*s", STR_FMT(a[0].s));
	return relay_with(c, proto, a[1].s, a[2].i);
}

int ksr_tm_t_relay_to_proxy(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	/* "proto:host:port" (host may be an IPv6 reference) */
	str_t s = a[0].s;
	(void)r;
	const char *colon = memchr(s.s, ':', s.len);
	const char *last = s.len ? s.s + s.len - 1 : s.s;
	while (last > s.s && *last != ':')
		last--;
	if (!colon || last <= colon)
		return -1;
	str_t proto = str_from(s.s, (size_t)(colon - s.s));
	str_t host = str_from(colon + 1, (size_t)(last - colon - 1));
	unsigned long long port;
	if (!proto_ok(proto) || !host.len || !str_to_u64(str_from(last + 1, (size_t)(s.s + s.len - last - 1)), 65535, &port))
		return -1;
	char p[8];
	snprintf(p, sizeof(p), "%.*s", STR_FMT(proto));
	return relay_with(c, p, host, (long long)port);
}

static int set_route(ksr_ctx_t *c, tm_route_t which, str_t fn)
{
	return tm_set_route(c->msg, which, fn);
}

int ksr_tm_t_on_failure(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return set_route(c, TM_ROUTE_FAILURE, a[0].s);
}
int ksr_tm_t_on_branch(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return set_route(c, TM_ROUTE_BRANCH, a[0].s);
}
int ksr_tm_t_on_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return set_route(c, TM_ROUTE_ONREPLY, a[0].s);
}
int ksr_tm_t_on_branch_failure(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return set_route(c, TM_ROUTE_BRANCH_FAILURE, a[0].s);
}

int ksr_tm_t_is_set(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	tm_route_t which;
	if (str_eq(a[0].s, STR_LIT("branch_route")))
		which = TM_ROUTE_BRANCH;
	else if (str_eq(a[0].s, STR_LIT("failure_route")))
		which = TM_ROUTE_FAILURE;
	else if (str_eq(a[0].s, STR_LIT("onreply_route")))
		which = TM_ROUTE_ONREPLY;
	else
		return -1;
	return tm_route_is_set(c->msg, which) ? 1 : -1;
}

int ksr_tm_t_check_trans(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_check_trans(c->msg);
}

int ksr_tm_t_newtran(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_newtran(c->msg);
}

int ksr_tm_t_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (a[0].i < 100 || a[0].i > 699)
		return -1;
	return tm_reply(c->msg, (int)a[0].i, a[1].s, false);
}

int ksr_tm_t_send_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (a[0].i < 100 || a[0].i > 699)
		return -1;
	return tm_reply(c->msg, (int)a[0].i, a[1].s, true);
}

int ksr_tm_t_release(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	/* the message's reference goes now; the cell lives on its timers */
	if (!c->msg->tm)
		return -1;
	tm_msg_done(c->msg);
	return 1;
}

int ksr_tm_t_replicate(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return tm_replicate(c->msg, a[0].s);
}

#define BOOL_Q(name, expr) \
	int ksr_tm_##name(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r) \
	{ \
		(void)a; \
		(void)r; \
		return (expr) ? 1 : -1; \
	}
BOOL_Q(t_is_canceled, tm_is_canceled(c->msg))
BOOL_Q(t_is_expired, tm_is_expired(c->msg))
BOOL_Q(t_branch_timeout, tm_branch_timeout(c->msg))
BOOL_Q(t_branch_replied, tm_branch_replied(c->msg))
BOOL_Q(t_any_timeout, tm_any_timeout(c->msg))
BOOL_Q(t_any_replied, tm_any_replied(c->msg))
BOOL_Q(t_exists, tm_exists(c->msg))

int ksr_tm_t_lookup_cancel(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	if (c->msg->sip.method_id != METH_CANCEL)
		return -1;
	return tm_check_trans(c->msg) == 1 ? 1 : -1;
}

int ksr_tm_t_retransmit_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_check_trans(c->msg) == 0 ? 1 : -1;
}

int ksr_tm_t_check_status(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	char pattern[256], code[16];
	regex_t re;
	(void)r;
	int status = tm_get_status_code(c->msg);
	if (status < 0 || a[0].s.len >= sizeof(pattern))
		return -1;
	snprintf(pattern, sizeof(pattern), "%.*s", STR_FMT(a[0].s));
	snprintf(code, sizeof(code), "%d", status);
	/* like Kamailio: a POSIX extended regex searched in the three-digit code */
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
		LOG_ERR(LUA, "KSR.tm.t_check_status: bad regular expression '%s'", pattern);
		return -1;
	}
	int rc = regexec(&re, code, 0, NULL, 0);
	regfree(&re);
	return rc == 0 ? 1 : -1;
}

int ksr_tm_t_get_status_code(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_get_status_code(c->msg);
}

int ksr_tm_t_get_branch_index(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_get_branch_index(c->msg);
}

int ksr_tm_t_set_fr(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (a[0].i < 0 || a[1].i < 0)
		return -1;
	return tm_set_fr(c->msg, (unsigned)a[0].i, (unsigned)a[1].i);
}

int ksr_tm_t_set_fr_inv(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (a[0].i <= 0)
		return -1;
	return tm_set_fr(c->msg, (unsigned)a[0].i, 0);
}

int ksr_tm_t_reset_fr(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_reset_fr(c->msg);
}

int ksr_tm_t_set_max_lifetime(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (a[0].i < 0 || a[1].i < 0)
		return -1;
	return tm_set_max_lifetime(c->msg, (unsigned)a[0].i, (unsigned)a[1].i);
}

int ksr_tm_t_reset_max_lifetime(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_set_max_lifetime(c->msg, 0, 0);
}

int ksr_tm_t_set_auto_inv_100(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return tm_set_auto_inv_100(c->msg, a[0].i != 0);
}

int ksr_tm_t_drop_replies(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	char mode = a[0].s.len ? a[0].s.s[0] : 'a';
	if (mode != 'a' && mode != 'l' && mode != 'n')
		return -1;
	return mode == 'n' ? 1 : tm_drop_replies(c->msg, mode);
}

int ksr_tm_t_drop_replies_all(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_drop_replies(c->msg, 'a');
}

/* ---- tmx */

int ksr_tmx_t_precheck_trans(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_precheck(c->msg);
}

#define ROUTE_Q(name, rt) \
	int ksr_tmx_##name(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r) \
	{ \
		(void)a; \
		(void)r; \
		return c->route == (rt) ? 1 : -1; \
	}
ROUTE_Q(t_is_request_route, RT_REQUEST)
ROUTE_Q(t_is_reply_route, RT_REPLY)
ROUTE_Q(t_is_failure_route, RT_FAILURE)
ROUTE_Q(t_is_branch_route, RT_BRANCH)

int ksr_tmx_t_cancel_callid(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	return tm_cancel_callid(a[0].s, a[1].s, (int)a[2].i);
}

int ksr_tm_t_load_contacts(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_load_contacts(c->msg);
}

int ksr_tm_t_next_contacts(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return tm_next_contacts(c->msg);
}

/* ---- corex: destination set */

/* "0.5" -> 500; -1 when empty or malformed (RFC 3261 qvalue: 0[.ddd] or 1[.000]) */
static int parse_q(str_t s)
{
	if (!s.len || s.s[0] < '0' || s.s[0] > '1')
		return -1;
	int q = (s.s[0] - '0') * 1000;
	if (s.len > 1 && s.s[1] != '.')
		return -1;
	int scale = 100;
	for (size_t i = 2; i < s.len && i < 5; i++) {
		if (s.s[i] < '0' || s.s[i] > '9')
			return -1;
		q += (s.s[i] - '0') * scale;
		scale /= 10;
	}
	return q > 1000 ? -1 : q;
}

int ksr_corex_append_branch(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	msg_t *m = c->msg;
	msg_branch_t *b = msg_append_branch(m, m->ruri, m->du, m->ruri_q);
	if (!b)
		return -1;
	b->bflags = m->bflags;
	b->sock = m->send_sock;
	return 1;
}

int ksr_corex_append_branch_uri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_uri_t u;
	(void)r;
	if (sip_uri_parse(c->msg->arena, a[0].s, &u, NULL) != SIP_OK)
		return -1;
	return msg_append_branch(c->msg, a[0].s, STR_NULL, -1) ? 1 : -1;
}

int ksr_corex_append_branch_uri_q(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_uri_t u;
	(void)r;
	int q = parse_q(a[1].s);
	if (q < 0 || sip_uri_parse(c->msg->arena, a[0].s, &u, NULL) != SIP_OK)
		return -1;
	return msg_append_branch(c->msg, a[0].s, STR_NULL, q) ? 1 : -1;
}

int ksr_tm_t_uac_send(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	arena_t own, *ar = c->msg ? c->msg->arena : NULL;
	if (!ar) {
		arena_init(&own, 8192);
		ar = &own;
	}
	int rc = tm_uac_send(ar, a[0].s, a[1].s, a[2].s, a[3].s, a[4].s, a[5].s);
	if (ar == &own)
		arena_free(&own);
	return rc;
}

int ksr_tmx_t_suspend(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	unsigned idx, label;
	(void)a;
	(void)r;
	return tm_suspend(c->msg, &idx, &label);
}

int ksr_tmx_t_continue(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	char fn[64];
	(void)r;
	if (a[0].i < 0 || a[1].i < 0 || !a[2].s.len || a[2].s.len >= sizeof(fn))
		return -1;
	memcpy(fn, a[2].s.s, a[2].s.len);
	fn[a[2].s.len] = '\0';
	arena_t own, *ar = c->msg ? c->msg->arena : NULL;
	if (!ar) {
		arena_init(&own, 16384);
		ar = &own;
	}
	int rc = tm_continue((unsigned)a[0].i, (unsigned)a[1].i, fn, ar);
	if (ar == &own)
		arena_free(&own);
	return rc;
}
