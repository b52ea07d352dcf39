// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * KSR.kx: quick getters for what routing asks about most (Kamailio's kemix
 * module). Values are slices of the message or of the listen table, or built
 * in the message arena: nothing is malloc'ed and nothing outlives the message.
 *
 * A getter with no value leaves *r null; the table row decides whether Lua
 * sees nil, "" or "<null>" (get / gete / getw share one implementation).
 */
#include <stdlib.h>
#include <time.h>

#include "ksr.h"

/* A non-empty slice, else no value. */
static int ret_nonempty(ksr_xval_t *r, str_t s)
{
	return s.len ? ksr_xval_str(r, s) : 0;
}

/* ---------------------------------------------------------------- R-URI */

/* The current R-URI parsed; NULL for replies or when it does not parse. */
static sip_uri_t *ruri_of(msg_t *m)
{
	return m->sip.type == SIP_REQUEST ? msg_ruri(m) : NULL;
}

int ksr_kx_get_ruri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return ruri_of(c->msg) ? ksr_xval_opt_str(r, c->msg->ruri) : 0;
}

int ksr_kx_get_ouri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return ruri_of(c->msg) ? ksr_xval_opt_str(r, c->msg->sip.ruri_str) : 0;
}

int ksr_kx_get_ruser(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_uri_t *u = ruri_of(c->msg);
	return u ? ret_nonempty(r, u->user) : 0;
}

int ksr_kx_get_rhost(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_uri_t *u = ruri_of(c->msg);
	return u ? ret_nonempty(r, u->host) : 0;
}

/* ---------------------------------------------------------------- From, To */

int ksr_kx_get_furi(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_nameaddr_t *na = sip_msg_from(&c->msg->sip);
	return na ? ksr_xval_opt_str(r, na->uri_str) : 0;
}

int ksr_kx_get_fuser(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_nameaddr_t *na = sip_msg_from(&c->msg->sip);
	return na ? ret_nonempty(r, na->uri.user) : 0;
}

int ksr_kx_get_fhost(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_nameaddr_t *na = sip_msg_from(&c->msg->sip);
	return na ? ret_nonempty(r, na->uri.host) : 0;
}

int ksr_kx_get_turi(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_nameaddr_t *na = sip_msg_to(&c->msg->sip);
	return na ? ksr_xval_opt_str(r, na->uri_str) : 0;
}

int ksr_kx_get_tuser(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_nameaddr_t *na = sip_msg_to(&c->msg->sip);
	return na ? ret_nonempty(r, na->uri.user) : 0;
}

int ksr_kx_get_thost(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_nameaddr_t *na = sip_msg_to(&c->msg->sip);
	return na ? ret_nonempty(r, na->uri.host) : 0;
}

/* ---------------------------------------------------------------- $du, Contact, next hop */

int ksr_kx_get_duri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return ret_nonempty(r, c->msg->du);
}

int ksr_kx_get_nhuri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	if (c->msg->du.len)
		return ksr_xval_str(r, c->msg->du);
	return ksr_kx_get_ruri(c, a, r);
}

/* The URI of the first Contact; none for "*". */
int ksr_kx_get_cturi(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	if (!c->msg->sip.first[HDR_CONTACT])
		return 0;
	sip_contacts_t *ct = sip_msg_contacts(&c->msg->sip);
	return ct && !ct->star && ct->first ? ret_nonempty(r, ct->first->uri_str) : 0;
}

/* ---------------------------------------------------------------- headers */

int ksr_kx_get_ua(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_hdr_t *h = c->msg->sip.first[HDR_USER_AGENT];
	return h ? ksr_xval_opt_str(r, h->body) : 0;
}

/* Missing Call-ID: no value (the table says ""). */
int ksr_kx_get_callid(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_hdr_t *h = c->msg->sip.first[HDR_CALLID];
	return h ? ksr_xval_opt_str(r, h->body) : 0;
}

/* Request method, or the CSeq method of a reply. */
int ksr_kx_get_method(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_msg_t *sm = &c->msg->sip;
	if (sm->type == SIP_REQUEST)
		return ksr_xval_opt_str(r, sm->method);
	sip_cseq_t *cs = sip_msg_cseq(sm);
	return cs ? ksr_xval_opt_str(r, cs->method) : 0;
}

/* Username of the credentials, Proxy-Authorization first as in Kamailio; the
 * user part only ("alice" of username="alice@example.com"). Digest only. */
int ksr_kx_get_au(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_msg_t *sm = &c->msg->sip;
	if (sm->type != SIP_REQUEST || sm->method_id == METH_ACK || sm->method_id == METH_CANCEL)
		return 0;
	sip_hdr_t *h = sm->first[HDR_PROXY_AUTHORIZATION] ? sm->first[HDR_PROXY_AUTHORIZATION]
							    : sm->first[HDR_AUTHORIZATION];
	if (!h)
		return 0;
	sip_auth_t *au = sip_hdr_auth(sm, h);
	if (!au || !str_caseeq_lit(au->scheme, "digest") || !au->username.s)
		return 0;
	str_t u = au->username;
	const char *at = u.len ? memchr(u.s, '@', u.len) : NULL;
	if (at)
		u.len = (size_t)(at - u.s);
	return ksr_xval_str(r, u);
}

/* ---------------------------------------------------------------- status, body, buffer */

int ksr_kx_get_status(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return c->msg->sip.type == SIP_REPLY ? c->msg->sip.status : -1;
}

/* The status code as written on the status line. */
int ksr_kx_gets_status(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_msg_t *sm = &c->msg->sip;
	if (sm->type != SIP_REPLY)
		return 0;
	const char *sp = memchr(sm->first_line.s, ' ', sm->first_line.len);
	if (!sp || (size_t)(sp - sm->first_line.s) + 4 > sm->first_line.len)
		return 0;
	return ksr_xval_str(r, str_from(sp + 1, 3));
}

int ksr_kx_get_body(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return ret_nonempty(r, c->msg->sip.body);
}

int ksr_kx_get_bodylen(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return (int)c->msg->sip.body.len;
}

int ksr_kx_get_msgbuf(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return ksr_xval_str(r, str_from(c->msg->sip.buf, c->msg->sip.len));
}

int ksr_kx_get_msglen(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return (int)c->msg->sip.len;
}

int ksr_kx_get_msgtype(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	switch (c->msg->sip.type) {
	case SIP_REQUEST: return 1;
	case SIP_REPLY: return 2;
	default: return 0;
	}
}

/* ---------------------------------------------------------------- where it came from */

/* The source IP as text (IPv6 without brackets), in the arena. */
static str_t src_ip(msg_t *m)
{
	char *buf = arena_alloc(m->arena, 64);
	if (!buf)
		return STR_NULL;
	size_t n = net_addr_ip_str(&m->rcv.src, buf, 64);
	return str_from(buf, n);
}

int ksr_kx_get_srcip(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return ksr_xval_opt_str(r, src_ip(c->msg));
}

int ksr_kx_get_srcport(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return ksr_xval_int(r, net_addr_port(&c->msg->rcv.src));
}

/* "sip:IP:PORT", with ";transport=x" unless UDP (the default). */
int ksr_kx_get_srcuri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	msg_t *m = c->msg;
	str_t ip = src_ip(m);
	if (!ip.s)
		return 0;
	bool v6 = m->rcv.src.sa.sa_family == AF_INET6;
	bool udp = m->rcv.proto == SIP_PROTO_UDP || m->rcv.proto == SIP_PROTO_NONE;
	return ksr_xval_opt_str(r, arena_printf(m->arena, "sip:%s%.*s%s:%u%s%s", v6 ? "[" : "", STR_FMT(ip), v6 ? "]" : "",
				       net_addr_port(&m->rcv.src), udp ? "" : ";transport=",
				       udp ? "" : sip_proto_name(m->rcv.proto)));
}

/* "proto:IP:PORT", IPv6 in brackets. */
int ksr_kx_get_srcaddr_sock(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	msg_t *m = c->msg;
	str_t ip = src_ip(m);
	if (!ip.s)
		return 0;
	bool v6 = m->rcv.src.sa.sa_family == AF_INET6;
	return ksr_xval_opt_str(r, arena_printf(m->arena, "%s:%s%.*s%s:%u", sip_proto_name(m->rcv.proto), v6 ? "[" : "",
				       STR_FMT(ip), v6 ? "]" : "", net_addr_port(&m->rcv.src)));
}

int ksr_kx_get_proto(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return ksr_xval_str(r, str_cstr(sip_proto_name(c->msg->rcv.proto)));
}

/* Our numbering is Kamailio's: udp 1, tcp 2, tls 3, sctp 4, ws 5, wss 6. */
int ksr_kx_get_protoid(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return (int)c->msg->rcv.proto;
}

/* Stream connection id, -1 for datagrams. */
int ksr_kx_get_conid(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return c->msg->rcv.conn_id ? (int)c->msg->rcv.conn_id : -1;
}

/* ---------------------------------------------------------------- local sockets */

int ksr_kx_get_rcvip(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const net_listen_t *l = c->msg->rcv.local;
	return l ? ksr_xval_str(r, str_cstr(l->ip)) : 0;
}

int ksr_kx_get_rcvport(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const net_listen_t *l = c->msg->rcv.local;
	return ksr_xval_int(r, l ? net_addr_port(&l->addr) : 0);
}

/* The advertised address when one is configured, else the real one. l->host
 * is the advertised name or, without one, the IP (IPv6 in brackets). */
int ksr_kx_get_rcvadvip(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const net_listen_t *l = c->msg->rcv.local;
	if (!l)
		return 0;
	str_t h = l->host;
	if (h.len >= 2 && h.s[0] == '[')
		h = str_from(h.s + 1, h.len - 2);
	if (!h.len || str_caseeq(h, str_cstr(l->ip)))
		return ksr_xval_str(r, str_cstr(l->ip));
	return ksr_xval_str(r, l->host);
}

int ksr_kx_get_rcvadvport(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const net_listen_t *l = c->msg->rcv.local;
	return ksr_xval_int(r, l ? l->port : 0);
}

int ksr_kx_get_rcvaddr_sock(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const net_listen_t *l = c->msg->rcv.local;
	return l ? ksr_xval_str(r, str_cstr(l->sock_str)) : 0;
}

/* The socket forced with $fs; none when sending picks one itself. */
int ksr_kx_get_send_sock(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const net_listen_t *l = c->msg->send_sock;
	return l ? ksr_xval_str(r, str_cstr(l->sock_str)) : 0;
}

int ksr_kx_get_send_sock_port(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const net_listen_t *l = c->msg->send_sock;
	return l ? net_addr_port(&l->addr) : 0;
}

/* ---------------------------------------------------------------- no message needed */

int ksr_kx_get_timestamp(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return (int)time(NULL);
}

/*
 * ksrd has no configuration preprocessor, so no #!define name exists: ifdef
 * is false, ifndef true, get_def "" and get_defn 0, exactly what Kamailio
 * answers for a name that is not defined.
 */
int ksr_kx_ifdef(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return -1;
}

int ksr_kx_ifndef(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return 1;
}

int ksr_kx_get_def(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return 0;
}

int ksr_kx_get_defn(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	return 0;
}

/* getenv() wants a C string: names are short, a stack copy does. */
static const char *env_value(str_t name)
{
	char buf[256];
	if (!name.len || name.len >= sizeof(buf) || memchr(name.s, '\0', name.len))
		return NULL;
	memcpy(buf, name.s, name.len);
	buf[name.len] = '\0';
	return getenv(buf);
}

/* The environment's value, or no value ("" per the table). */
int ksr_kx_get_env(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const char *v = env_value(a[0].s);
	return v ? ksr_xval_str(r, str_cstr(v)) : 0;
}

/* As an integer: optional sign and digits only, anything else is 0 (Kamailio's str2sint). */
int ksr_kx_get_envn(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const char *v = env_value(a[0].s);
	if (!v || !*v)
		return 0;
	bool neg = *v == '-';
	if (*v == '-' || *v == '+')
		v++;
	long long n = 0;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || n > INT32_MAX)
			return 0;
		n = n * 10 + (*v - '0');
	}
	if (n > INT32_MAX)
		return 0;
	return (int)(neg ? -n : n);
}
