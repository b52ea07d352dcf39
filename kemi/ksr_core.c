// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* KSR.* (core), KSR.x and KSR.sl: thin wrappers over core/ subsystems. */
#include <errno.h>
#include <string.h>

#include "../core/fwd/fwd.h"
#include "../core/lib/log.h"
#include "../core/sl/sl.h"
#include "../core/tm/tm.h"
#include "ksr.h"

/* ---------------------------------------------------------------- logging */

static str_t msg_callid(ksr_ctx_t *c)
{
	return c->msg ? sip_msg_callid(&c->msg->sip) : STR_NULL;
}

static int log_at(ksr_ctx_t *c, int level, str_t text)
{
	if (LOG_ON(level)) {
		str_t cid = msg_callid(c);
		/* scripts usually end lines with "\n" (Kamailio habit): one log line each */
		if (text.len && text.s[text.len - 1] == '\n')
			text.len--;
		log_write(level, "SCRIPT", &cid, "%.*s", STR_FMT(text));
	}
	return 1;
}

int ksr_log_dbg(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return log_at(c, L_DBG, a[0].s);
}
int ksr_log_info(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return log_at(c, L_INFO, a[0].s);
}
int ksr_log_notice(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return log_at(c, L_NOTICE, a[0].s);
}
int ksr_log_warn(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return log_at(c, L_WARN, a[0].s);
}
int ksr_log_err(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return log_at(c, L_ERR, a[0].s);
}
int ksr_log_crit(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return log_at(c, L_CRIT, a[0].s);
}
int ksr_log_level(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	int level = log_level_from_name(a[0].s);
	return log_at(c, level < 0 ? L_ERR : level, a[1].s);
}

/* ---------------------------------------------------------------- methods */

static sip_method_t method_of(ksr_ctx_t *c)
{
	msg_t *m = c->msg;
	if (m->sip.type == SIP_REQUEST)
		return m->sip.method_id;
	sip_cseq_t *cs = sip_msg_cseq(&m->sip);
	return cs ? cs->method_id : METH_OTHER;
}

static str_t method_name(ksr_ctx_t *c)
{
	msg_t *m = c->msg;
	if (m->sip.type == SIP_REQUEST)
		return m->sip.method;
	sip_cseq_t *cs = sip_msg_cseq(&m->sip);
	return cs ? cs->method : STR_NULL;
}

int ksr_is_method(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	sip_method_t want = sip_method_id(a[0].s);
	/* known methods compare by id; others by name, case-sensitively (RFC 3261 §7.1) */
	if (want != METH_OTHER)
		return method_of(c) == want ? 1 : -1;
	return str_eq(method_name(c), a[0].s) ? 1 : -1;
}

int ksr_is_method_in(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	static const struct {
		char letter;
		sip_method_t id;
	} letters[] = {
		{'I', METH_INVITE},   {'A', METH_ACK},     {'B', METH_BYE},     {'C', METH_CANCEL},
		{'M', METH_MESSAGE},  {'R', METH_REGISTER}, {'E', METH_PUBLISH}, {'P', METH_PRACK},
		{'S', METH_SUBSCRIBE}, {'N', METH_NOTIFY},  {'O', METH_OPTIONS}, {'F', METH_REFER},
		{'G', METH_GET},      {'U', METH_UPDATE},  {'K', METH_KDMQ},    {'D', METH_DELETE},
		{'T', METH_POST},     {'V', METH_PUT},
	};
	(void)r;
	sip_method_t m = method_of(c);
	if (m == METH_OTHER)
		return -1;
	for (size_t i = 0; i < a[0].s.len; i++)
		for (size_t j = 0; j < sizeof(letters) / sizeof(letters[0]); j++)
			if (letters[j].letter == a[0].s.s[i] && letters[j].id == m)
				return 1;
	return -1;
}

#define IS_METHOD_FN(M) \
	int ksr_is_##M(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r) \
	{ \
		(void)a; \
		(void)r; \
		return method_of(c) == METH_##M ? 1 : -1; \
	}
IS_METHOD_FN(INVITE)
IS_METHOD_FN(ACK)
IS_METHOD_FN(BYE)
IS_METHOD_FN(CANCEL)
IS_METHOD_FN(REGISTER)
IS_METHOD_FN(OPTIONS)
IS_METHOD_FN(SUBSCRIBE)
IS_METHOD_FN(NOTIFY)
IS_METHOD_FN(PUBLISH)
IS_METHOD_FN(REFER)
IS_METHOD_FN(INFO)
IS_METHOD_FN(UPDATE)
IS_METHOD_FN(PRACK)
IS_METHOD_FN(MESSAGE)
IS_METHOD_FN(KDMQ)
IS_METHOD_FN(GET)
IS_METHOD_FN(POST)
IS_METHOD_FN(PUT)
IS_METHOD_FN(DELETE)

/* ---------------------------------------------------------------- transport */

static int proto_is(ksr_ctx_t *c, unsigned mask)
{
	return (1u << c->msg->rcv.proto) & mask ? 1 : -1;
}

#define P(x) (1u << SIP_PROTO_##x)
#define IS_PROTO_FN(fn, mask) \
	int ksr_is_##fn(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r) \
	{ \
		(void)a; \
		(void)r; \
		return proto_is(c, mask); \
	}
IS_PROTO_FN(UDP, P(UDP))
IS_PROTO_FN(TCP, P(TCP))
IS_PROTO_FN(TLS, P(TLS))
IS_PROTO_FN(WS, P(WS))
IS_PROTO_FN(WSS, P(WSS))
IS_PROTO_FN(WSX, P(WS) | P(WSS))
IS_PROTO_FN(TCPX, P(TCP) | P(TLS) | P(WS) | P(WSS))
IS_PROTO_FN(SCTP, P(SCTP))

int ksr_is_proto(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	unsigned mask = 0;
	(void)r;
	for (size_t i = 0; i < a[0].s.len; i++) {
		switch (a[0].s.s[i]) {
		case 'u': case 'U': mask |= P(UDP); break;
		case 't': case 'T': mask |= P(TCP); break;
		case 'e': case 'E': mask |= P(TLS); break;
		case 's': case 'S': mask |= P(SCTP); break;
		case 'v': case 'V': mask |= P(WS); break;
		case 'w': case 'W': mask |= P(WSS); break;
		default: break;
		}
	}
	return proto_is(c, mask);
}
#undef P

int ksr_is_IPv4(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return c->msg->rcv.src.sa.sa_family == AF_INET ? 1 : -1;
}

int ksr_is_IPv6(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return c->msg->rcv.src.sa.sa_family == AF_INET6 ? 1 : -1;
}

int ksr_is_src_port(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return net_addr_port(&c->msg->rcv.src) == a[0].i ? 1 : -1;
}

int ksr_is_dst_port(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const net_listen_t *l = c->msg->rcv.local;
	return l && net_addr_port(&l->addr) == a[0].i ? 1 : -1;
}

/* ---------------------------------------------------------------- myself */

static int uri_is_myself(arena_t *ar, str_t uri)
{
	sip_uri_t u;
	if (!uri.len || sip_uri_parse(ar, uri, &u, NULL) != SIP_OK || (u.scheme != URI_SIP && u.scheme != URI_SIPS))
		return -1;
	return net_is_myself(u.host, u.port, sip_uri_proto(&u)) ? 1 : -1;
}

int ksr_is_myself(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!c->msg)
		return -1;
	return uri_is_myself(c->msg->arena, a[0].s);
}

int ksr_is_myself_ruri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	if (c->msg->sip.type != SIP_REQUEST)
		return -1;
	sip_uri_t *u = msg_ruri(c->msg);
	return u && (u->scheme == URI_SIP || u->scheme == URI_SIPS) &&
		       net_is_myself(u->host, u->port, sip_uri_proto(u))
		   ? 1
		   : -1;
}

static int nameaddr_is_myself(sip_nameaddr_t *na)
{
	if (!na || (na->uri.scheme != URI_SIP && na->uri.scheme != URI_SIPS))
		return -1;
	return net_is_myself(na->uri.host, na->uri.port, sip_uri_proto(&na->uri)) ? 1 : -1;
}

int ksr_is_myself_furi(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return nameaddr_is_myself(sip_msg_from(&c->msg->sip));
}

int ksr_is_myself_turi(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return nameaddr_is_myself(sip_msg_to(&c->msg->sip));
}

int ksr_is_myself_duri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return uri_is_myself(c->msg->arena, c->msg->du);
}

int ksr_is_myself_srcip(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return net_is_myself_ip(&c->msg->rcv.src) ? 1 : -1;
}

/* ---------------------------------------------------------------- flags */

static int flag_op(uint32_t *flags, long long bit, int op)
{
	if (bit < 0 || bit > 31)
		return -1;
	uint32_t m = 1u << bit;
	if (op > 0)
		*flags |= m;
	else if (op < 0)
		*flags &= ~m;
	else
		return *flags & m ? 1 : -1;
	return 1;
}

int ksr_setflag(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return flag_op(&c->msg->flags, a[0].i, 1);
}
int ksr_resetflag(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return flag_op(&c->msg->flags, a[0].i, -1);
}
int ksr_isflagset(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return flag_op(&c->msg->flags, a[0].i, 0);
}
int ksr_setbflag(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return flag_op(&c->msg->bflags, a[0].i, 1);
}
int ksr_resetbflag(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return flag_op(&c->msg->bflags, a[0].i, -1);
}
int ksr_isbflagset(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return flag_op(&c->msg->bflags, a[0].i, 0);
}

/* ---------------------------------------------------------------- R-URI, $du, forwarding */

static int log_bad_uri(ksr_ctx_t *c, str_t uri)
{
	char name[64];
	str_t cid = msg_callid(c);
	LOG_MSG_ERR(LUA, &cid, "%s: not a valid URI: '%.*s'", ksr_fn_fullname(c->fn, name, sizeof(name)),
		    (int)(uri.len > 200 ? 200 : uri.len), uri.s);
	return -1;
}

int ksr_seturi(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return msg_set_ruri(c->msg, a[0].s) == 0 ? 1 : log_bad_uri(c, a[0].s);
}

/* The R-URI with the user or the host replaced. */
static int ruri_replace(ksr_ctx_t *c, const str_t *user, const str_t *host)
{
	str_t nu = msg_ruri_with(c->msg, user, host, NULL);
	if (!nu.s)
		return -1;
	return msg_set_ruri(c->msg, nu) == 0 ? 1 : log_bad_uri(c, nu);
}

int ksr_setuser(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return ruri_replace(c, &a[0].s, NULL);
}

int ksr_sethost(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[0].s.len)
		return -1;
	return ruri_replace(c, NULL, &a[0].s);
}

int ksr_setdsturi(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return msg_set_du(c->msg, a[0].s) == 0 ? 1 : log_bad_uri(c, a[0].s);
}

int ksr_resetdsturi(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	c->msg->du = STR_NULL;
	return 1;
}

int ksr_isdsturiset(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return c->msg->du.len ? 1 : -1;
}

#define SET_BOOL_FN(fn, field) \
	int ksr_##fn(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r) \
	{ \
		(void)a; \
		(void)r; \
		c->msg->field = true; \
		return 1; \
	}
SET_BOOL_FN(force_rport, force_rport)
SET_BOOL_FN(set_reply_close, reply_close)
SET_BOOL_FN(set_reply_no_connect, reply_no_connect)
SET_BOOL_FN(set_forward_no_connect, forward_no_connect)

int ksr_set_drop(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	c->msg->drop = true;
	return 1;
}

int ksr_forward(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return fwd_request(c->msg, STR_NULL);
}

int ksr_forward_uri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[0].s.len)
		return -1;
	return fwd_request(c->msg, a[0].s);
}

/* ---------------------------------------------------------------- KSR.x */

int ksr_x_exit(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	c->exit = true;
	return 0;
}

int ksr_x_drop(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	if (c->msg)
		c->msg->drop = true;
	c->exit = true;
	return 0;
}

/* ---------------------------------------------------------------- KSR.sl */

int ksr_sl_sl_send_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (a[0].i < 100 || a[0].i > 699)
		return -1;
	return sl_send_reply(c->msg, (int)a[0].i, a[1].s);
}

int ksr_sl_send_reply(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (a[0].i < 100 || a[0].i > 699)
		return -1;
	if (c->msg->tm)
		return tm_reply(c->msg, (int)a[0].i, a[1].s, false);
	return sl_send_reply(c->msg, (int)a[0].i, a[1].s);
}

int ksr_sl_reply_error(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	int code = c->msg->sip.err.status >= 400 ? c->msg->sip.err.status : 500;
	str_t reason = c->msg->sip.err.status >= 400 ? str_cstr(c->msg->sip.err.reason) : STR_LIT("Server Internal Error");
	if (c->msg->tm)
		return tm_reply(c->msg, code, reason, false);
	return sl_send_reply(c->msg, code, reason);
}
