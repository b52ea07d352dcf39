// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "sl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../lib/hash.h"
#include "../lib/log.h"
#include "../lib/stats.h"

static char server_hdr[300];
static size_t server_hdr_len;
static stat_counter_t *st_replies[7], *st_sent, *st_failed;

static const char *const class_names[] = {"", "1xx_replies", "2xx_replies", "3xx_replies",
					  "4xx_replies", "5xx_replies", "6xx_replies"};

void sl_init(const char *server_header)
{
	server_hdr_len = 0;
	if (server_header && *server_header) {
		int n = snprintf(server_hdr, sizeof(server_hdr), "Server: %s\r\n", server_header);
		if (n > 0 && (size_t)n < sizeof(server_hdr))
			server_hdr_len = (size_t)n;
	}
	for (int i = 1; i <= 6; i++)
		st_replies[i] = stat_register("sl", class_names[i], false);
	st_sent = stat_register("sl", "sent_replies", false);
	st_failed = stat_register("sl", "failures", false);
}

static const char *default_reason(int code)
{
	switch (code) {
	case 100: return "Trying";
	case 180: return "Ringing";
	case 183: return "Session Progress";
	case 200: return "OK";
	case 202: return "Accepted";
	case 301: return "Moved Permanently";
	case 302: return "Moved Temporarily";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 415: return "Unsupported Media Type";
	case 416: return "Unsupported URI Scheme";
	case 420: return "Bad Extension";
	case 423: return "Interval Too Brief";
	case 480: return "Temporarily Unavailable";
	case 481: return "Call/Transaction Does Not Exist";
	case 482: return "Loop Detected";
	case 483: return "Too Many Hops";
	case 484: return "Address Incomplete";
	case 486: return "Busy Here";
	case 487: return "Request Terminated";
	case 488: return "Not Acceptable Here";
	case 500: return "Server Internal Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Server Time-out";
	case 505: return "Version Not Supported";
	case 513: return "Message Too Large";
	case 603: return "Decline";
	default: return code < 200 ? "Progress" : code < 300 ? "OK" : "Error";
	}
}

str_t sl_totag(msg_t *m)
{
	uint64_t h = hash_seed;
	sip_nameaddr_t *from = sip_msg_from(&m->sip);
	sip_via_t *via = sip_msg_via1(&m->sip);
	h = hash64_str(h, sip_msg_callid(&m->sip));
	if (from)
		h = hash64_str(h, from->tag);
	if (via)
		h = hash64_str(h, via->branch);
	char *t = arena_alloc(m->arena, 16);
	if (!t)
		return STR_NULL;
	hex64(hash64_final(h), t);
	return str_from(t, 16);
}

/* The text of a param inside a via-parm: from its ';' to the end of its value. */
static str_t param_span(const sip_via_t *v, const sip_param_t *p)
{
	const char *start = p->name.s;
	while (start > v->raw.s && *start != ';')
		start--;
	const char *end = p->value.s ? p->value.s + p->value.len : p->name.s + p->name.len;
	if (start < v->raw.s || end > v->raw.s + v->raw.len || *start != ';')
		return STR_NULL;
	return str_from(start, (size_t)(end - start));
}

/* Whether the sent-by host is the source address already (IPv6 with brackets, any spelling). */
static bool sent_by_is_source(str_t host, const net_addr_t *src)
{
	net_addr_t a;
	return net_addr_from_ip(str_trim(host), 0, &a) && net_addr_ip_eq(&a, src);
}

/* RFC 3261 §18.2.1 / RFC 3581 §4: received is added when sent-by is not the
   source address, and always alongside rport */
static bool via_wants_received(const msg_t *m, const sip_via_t *v)
{
	return v->has_rport || m->force_rport || !sent_by_is_source(v->host, &m->rcv.src);
}

/* Top via-parm with received/rport filled in; want_received from via_wants_received(). */
static void add_top_via(msg_t *m, msg_buf_t *b, const sip_via_t *v, bool want_received)
{
	bool want_rport = v->has_rport || m->force_rport;
	const char *pos = v->raw.s;
	const char *end = v->raw.s + v->raw.len;
	for (const sip_param_t *p = v->params; p; p = p->next) {
		bool drop = (want_rport && str_caseeq_lit(p->name, "rport")) ||
			    (want_received && str_caseeq_lit(p->name, "received"));
		if (!drop)
			continue;
		str_t span = param_span(v, p);
		if (!span.s || span.s < pos)
			continue;
		mbuf_add(b, pos, (size_t)(span.s - pos));
		pos = span.s + span.len;
	}
	mbuf_add(b, pos, (size_t)(end - pos));
	if (want_received) {
		char ip[64];
		size_t iplen = net_addr_ip_str(&m->rcv.src, ip, sizeof(ip));
		mbuf_lit(b, ";received=");
		/* RFC 5118 §4.5: received carries the bare IPv6 address */
		mbuf_add(b, ip, iplen);
	}
	if (want_rport) {
		mbuf_lit(b, ";rport=");
		mbuf_u64(b, net_addr_port(&m->rcv.src));
	}
}

/* The header line of via1 (with any via-parms after it) with received/rport filled in. */
static void add_via1_line(msg_t *m, msg_buf_t *b, const sip_via_t *v1, bool want_received)
{
	const sip_hdr_t *h = v1->hdr;
	mbuf_lit(b, "Via: ");
	/* what precedes via1 on its line is only whitespace: via1 is first */
	add_top_via(m, b, v1, want_received);
	const char *rest = v1->raw.s + v1->raw.len;
	const char *bend = h->body.s + h->body.len;
	if (rest < bend)
		mbuf_add(b, rest, (size_t)(bend - rest));
	mbuf_lit(b, "\r\n");
}

static void add_vias(msg_t *m, msg_buf_t *b, const sip_via_t *v1)
{
	for (const sip_hdr_t *h = m->sip.first[HDR_VIA]; h; h = h->next_same) {
		if (!v1 || h != v1->hdr)
			mbuf_str(b, h->raw);
		else
			add_via1_line(m, b, v1, via_wants_received(m, v1));
	}
}

str_t sl_via1_received_line(msg_t *m)
{
	sip_via_t *v1 = sip_msg_via1(&m->sip);
	if (!v1 || !v1->hdr)
		return STR_NULL;
	if (!via_wants_received(m, v1))
		return STR_NULL;
	msg_buf_t b;
	mbuf_init(&b, m->arena, v1->hdr->raw.len + 96);
	add_via1_line(m, &b, v1, true);
	return mbuf_done(&b);
}

static void add_to(msg_t *m, msg_buf_t *b, int code)
{
	const sip_hdr_t *h = m->sip.first[HDR_TO];
	if (!h)
		return;
	sip_nameaddr_t *to = sip_msg_to(&m->sip);
	if (!to || to->tag.len || code == 100) {
		mbuf_str(b, h->raw);
		return;
	}
	mbuf_lit(b, "To: ");
	mbuf_str(b, h->body);
	mbuf_lit(b, ";tag=");
	mbuf_str(b, sl_totag(m));
	mbuf_lit(b, "\r\n");
}

str_t sl_build_reply(msg_t *m, int code, str_t reason, str_t extra_hdrs, str_t body)
{
	msg_buf_t b;
	sip_via_t *v1 = sip_msg_via1(&m->sip);
	if (!v1)
		return STR_NULL;
	if (!reason.s || !reason.len)
		reason = str_cstr(default_reason(code));
	mbuf_init(&b, m->arena, 1024);
	mbuf_lit(&b, "SIP/2.0 ");
	mbuf_u64(&b, (unsigned long long)code);
	mbuf_lit(&b, " ");
	mbuf_str(&b, reason);
	mbuf_lit(&b, "\r\n");
	add_vias(m, &b, v1);
	if (m->sip.first[HDR_FROM])
		mbuf_str(&b, m->sip.first[HDR_FROM]->raw);
	add_to(m, &b, code);
	if (m->sip.first[HDR_CALLID])
		mbuf_str(&b, m->sip.first[HDR_CALLID]->raw);
	if (m->sip.first[HDR_CSEQ])
		mbuf_str(&b, m->sip.first[HDR_CSEQ]->raw);
	msg_text_write(&b, m->reply_hdrs);
	mbuf_str(&b, extra_hdrs);
	mbuf_add(&b, server_hdr, server_hdr_len);
	if (!body.len && m->reply_body.len) {
		/* set by the script for the next local reply (KSR.textops.set_reply_body) */
		mbuf_lit(&b, "Content-Type: ");
		mbuf_str(&b, m->reply_ctype);
		mbuf_lit(&b, "\r\n");
		body = m->reply_body;
	}
	mbuf_lit(&b, "Content-Length: ");
	mbuf_u64(&b, body.len);
	mbuf_lit(&b, "\r\n\r\n");
	mbuf_str(&b, body);
	return mbuf_done(&b);
}

int sl_reply_dest(msg_t *m, net_dest_t *d)
{
	sip_via_t *v1 = sip_msg_via1(&m->sip);
	memset(d, 0, sizeof(*d));
	d->proto = m->rcv.proto;
	d->addr = m->rcv.src;
	d->from = m->rcv.local;
	d->conn_id = m->rcv.conn_id;
	d->no_connect = m->reply_no_connect;
	if (!v1)
		return -EINVAL;
	if (d->proto == SIP_PROTO_UDP && !v1->has_rport && !m->force_rport)
		net_addr_set_port(&d->addr, v1->port ? v1->port : 5060);
	return 0;
}

int sl_send_reply(msg_t *m, int code, str_t reason)
{
	net_dest_t d;
	if (m->sip.type != SIP_REQUEST || code < 100 || code > 699)
		return -1;
	if (m->sip.method_id == METH_ACK)
		return -1; /* an ACK is never answered (RFC 3261 §17.2.1) */
	if (m->replied >= 200 && code >= 200) {
		/* one final reply per request, even when a Kamailio script answers twice
		 * (save() replied, then sl_reply_error()) */
		str_t cid = sip_msg_callid(&m->sip);
		LOG_MSG_INFO(SL, &cid, "not sending %d: the request was already answered %d", code, m->replied);
		return -1;
	}
	str_t out = sl_build_reply(m, code, reason, STR_NULL, STR_NULL);
	if (!out.s || sl_reply_dest(m, &d) < 0) {
		stat_inc(st_failed);
		return -1;
	}
	int rc = net_send(&d, out.s, out.len);
	if (rc < 0) {
		str_t cid = sip_msg_callid(&m->sip);
		LOG_MSG_WARN(SL, &cid, "cannot send %d reply: %s", code, strerror(-rc));
		stat_inc(st_failed);
		return -1;
	}
	if (m->reply_close && m->rcv.conn_id)
		net_conn_close_later(m->rcv.conn_id);
	m->replied = code;
	stat_inc(st_sent);
	stat_inc(st_replies[code / 100]);
	return 1;
}

int sl_reply_error(msg_t *m)
{
	if (m->sip.err.status < 300)
		return -1;
	return sl_send_reply(m, m->sip.err.status, str_cstr(m->sip.err.reason));
}
