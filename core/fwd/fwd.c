// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "fwd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../lib/hash.h"
#include "../lib/log.h"
#include "../lib/stats.h"
#include "../rr/rr.h"
#include "../sl/sl.h"

static bool (*onsend_hook)(msg_t *m, const net_dest_t *d, str_t out);
static stat_counter_t *st_fwd_req, *st_fwd_rpl, *st_fwd_err, *st_rpl_dropped;

void fwd_set_onsend(bool (*fn)(msg_t *m, const net_dest_t *d, str_t out))
{
	onsend_hook = fn;
}

bool fwd_onsend(msg_t *m, const net_dest_t *d, str_t out)
{
	return !onsend_hook || onsend_hook(m, d, out);
}

void fwd_init(void)
{
	st_fwd_req = stat_register("core", "fwd_requests", false);
	st_fwd_rpl = stat_register("core", "fwd_replies", false);
	st_fwd_err = stat_register("core", "fwd_errors", false);
	st_rpl_dropped = stat_register("core", "drop_replies", false);
}

static str_t callid_of(msg_t *m)
{
	return sip_msg_callid(&m->sip);
}

int fwd_uri_dest(msg_t *m, str_t uri, net_dest_t *d)
{
	sip_uri_t u;
	memset(d, 0, sizeof(*d));
	if (uri.s == m->ruri.s && uri.len == m->ruri.len) {
		/* the R-URI is already parsed (validation or msg_set_ruri) */
		const sip_uri_t *r = msg_ruri(m);
		if (!r)
			return -EINVAL;
		u = *r;
	} else if (sip_uri_parse(m->arena, uri, &u, NULL) != SIP_OK) {
		return -EINVAL;
	}
	if (u.scheme != URI_SIP && u.scheme != URI_SIPS)
		return -EPROTONOSUPPORT;
	sip_proto_t proto = sip_uri_proto(&u);
	if (proto == SIP_PROTO_NONE)
		proto = u.scheme == URI_SIPS ? SIP_PROTO_TLS : SIP_PROTO_UDP;
	if (proto != SIP_PROTO_UDP && proto != SIP_PROTO_TCP)
		return -EPROTONOSUPPORT;
	str_t host = u.maddr.len ? u.maddr : u.host;
	int rc = net_resolve(host, sip_uri_port(&u), &d->addr);
	if (rc < 0)
		return rc;
	d->proto = proto;
	d->from = m->send_sock;
	if (!d->from || d->from->proto != proto || d->from->addr.sa.sa_family != d->addr.sa.sa_family)
		d->from = net_listen_pick(proto, d->addr.sa.sa_family);
	if (!d->from)
		return -EAFNOSUPPORT;
	d->no_connect = m->forward_no_connect;
	return 0;
}

str_t fwd_branch(msg_t *m)
{
	uint64_t h = hash_seed;
	sip_via_t *v = sip_msg_via1(&m->sip);
	if (v && v->branch.len > 7 && !memcmp(v->branch.s, "z9hG4bK", 7)) {
		h = hash64_str(h, v->branch);
		h = hash64_str(h, v->host);
	} else {
		/* RFC 2543 peers: hash what identifies the transaction (§16.11) */
		sip_nameaddr_t *to = sip_msg_to(&m->sip), *from = sip_msg_from(&m->sip);
		sip_cseq_t *cs = sip_msg_cseq(&m->sip);
		h = hash64_str(h, to ? to->tag : STR_NULL);
		h = hash64_str(h, from ? from->tag : STR_NULL);
		h = hash64_str(h, callid_of(m));
		h = hash64_str(h, m->sip.ruri_str);
		h = hash64_str(h, cs ? cs->seq_str : STR_NULL);
		h = hash64_str(h, v ? v->raw : STR_NULL);
	}
	char *b = arena_alloc(m->arena, 7 + 16);
	if (!b)
		return STR_NULL;
	memcpy(b, "z9hG4bK", 7);
	hex64(hash64_final(h), b + 7);
	return str_from(b, 23);
}

static const char *via_transport(sip_proto_t p)
{
	return p == SIP_PROTO_TCP ? "TCP" : p == SIP_PROTO_TLS ? "TLS" : "UDP";
}

str_t fwd_via_line(msg_t *m, const net_listen_t *l, sip_proto_t proto, str_t branch)
{
	msg_buf_t b;
	mbuf_init(&b, m->arena, 128);
	mbuf_lit(&b, "Via: SIP/2.0/");
	mbuf_lit(&b, via_transport(proto));
	mbuf_lit(&b, " ");
	mbuf_str(&b, l->host);
	mbuf_lit(&b, ":");
	mbuf_u64(&b, l->port);
	mbuf_lit(&b, ";branch=");
	mbuf_str(&b, branch);
	mbuf_lit(&b, "\r\n");
	return mbuf_done(&b);
}

/* Max-Forwards per RFC 3261 §16.6 step 3. -1 if the request must not leave. */
int fwd_max_forwards(msg_t *m)
{
	if (m->maxfwd_done)
		return 0;
	int mf = sip_msg_max_forwards(&m->sip);
	if (mf == -1)
		return msg_hdr_append_bottom(m, STR_LIT("Max-Forwards: 70\r\n"));
	if (mf <= 0)
		return -1;
	char line[40];
	int n = snprintf(line, sizeof(line), "Max-Forwards: %d\r\n", mf - 1);
	return msg_hdr_replace(m, m->sip.first[HDR_MAX_FORWARDS]->index, str_from(line, (size_t)n));
}

int fwd_request(msg_t *m, str_t uri)
{
	net_dest_t d;
	str_t cid = callid_of(m);
	if (m->sip.type != SIP_REQUEST)
		return -1;
	if (!uri.s || !uri.len)
		uri = m->du.len ? m->du : m->ruri;
	int rc = fwd_uri_dest(m, uri, &d);
	if (rc < 0) {
		LOG_MSG_WARN(FWD, &cid, "cannot forward to %.*s: %s", STR_FMT(uri), strerror(-rc));
		stat_inc(st_fwd_err);
		return -1;
	}
	if (fwd_max_forwards(m) < 0) {
		LOG_MSG_INFO(FWD, &cid, "not forwarding: Max-Forwards exhausted or malformed");
		stat_inc(st_fwd_err);
		return -1;
	}
	/* §18.2.1, RFC 3581: the Via we received gets received/rport, which fwd_reply
	 * then follows back (through NAT, to the port the request came from) */
	str_t v1line = sl_via1_received_line(m);
	if (v1line.s && msg_hdr_replace(m, sip_msg_via1(&m->sip)->hdr->index, v1line) < 0) {
		stat_inc(st_fwd_err);
		return -1;
	}
	if (m->path.len) {
		/* the Path of the contact lookup() chose (RFC 3327 §5.3) */
		str_t route = arena_printf(m->arena, "Route: %.*s\r\n", STR_FMT(m->path));
		if (!route.s || msg_hdr_insert_top(m, route) < 0)
			return -1;
		m->path = STR_NULL; /* once, even if the script forwards again */
	}
	if (rr_apply(m, d.from) < 0)
		return -1;
	str_t via = fwd_via_line(m, d.from, d.proto, fwd_branch(m));
	str_t out = msg_build_request(m, via, d.proto != SIP_PROTO_UDP);
	if (!out.s)
		return -1;
	if (!fwd_onsend(m, &d, out)) {
		LOG_MSG_DBG(FWD, &cid, "dropped in onsend route");
		return -1;
	}
	rc = net_send(&d, out.s, out.len);
	if (rc < 0) {
		LOG_MSG_WARN(FWD, &cid, "sending to %.*s failed: %s", STR_FMT(uri), strerror(-rc));
		stat_inc(st_fwd_err);
		return -1;
	}
	stat_inc(st_fwd_req);
	return 1;
}

/* Removes our via-parm: the whole line when alone on it, else just the element. */
int fwd_remove_top_via(msg_t *m, sip_via_t *v1)
{
	sip_hdr_t *h = v1->hdr;
	const char *rest = v1->raw.s + v1->raw.len;
	const char *end = h->body.s + h->body.len;
	while (rest < end && (*rest == ' ' || *rest == '\t' || *rest == ',' || *rest == '\r' || *rest == '\n'))
		rest++;
	if (rest >= end)
		return msg_hdr_remove(m, h->index);
	msg_buf_t b;
	mbuf_init(&b, m->arena, (size_t)(end - rest) + 8);
	mbuf_lit(&b, "Via: ");
	mbuf_add(&b, rest, (size_t)(end - rest));
	mbuf_lit(&b, "\r\n");
	str_t line = mbuf_done(&b);
	return line.s ? msg_hdr_replace(m, h->index, line) : -ENOMEM;
}

int fwd_reply(msg_t *m)
{
	str_t cid = callid_of(m);
	sip_via_t *v1 = sip_msg_via1(&m->sip);
	sip_via_t *v2 = sip_msg_via2(&m->sip);
	if (!v1 || !net_is_myself(v1->host, v1->port, SIP_PROTO_NONE)) {
		LOG_MSG_DBG(FWD, &cid, "reply's top Via is not ours: dropped");
		stat_inc(st_rpl_dropped);
		return 0;
	}
	if (!v2) {
		stat_inc(st_rpl_dropped);
		return 0;
	}
	net_dest_t d;
	memset(&d, 0, sizeof(d));
	d.proto = v2->proto == SIP_PROTO_TCP ? SIP_PROTO_TCP : SIP_PROTO_UDP;
	str_t host = v2->received.len ? v2->received : v2->host;
	unsigned long long port = v2->port ? v2->port : 5060;
	unsigned long long rp;
	if (v2->rport_val.len && str_to_u64(v2->rport_val, 65535, &rp) && rp)
		port = rp;
	int rc = net_resolve(host, (uint16_t)port, &d.addr);
	if (rc == 0) {
		d.from = net_listen_pick(d.proto, d.addr.sa.sa_family);
		rc = fwd_remove_top_via(m, v1);
	}
	str_t out = rc == 0 ? msg_build_fwd_reply(m, d.proto != SIP_PROTO_UDP) : STR_NULL;
	if (out.s)
		rc = net_send(&d, out.s, out.len);
	if (!out.s || rc < 0) {
		LOG_MSG_WARN(FWD, &cid, "cannot forward reply to %.*s:%llu: %s", STR_FMT(host), port,
			     strerror(rc < 0 ? -rc : EINVAL));
		stat_inc(st_fwd_err);
		return -1;
	}
	stat_inc(st_fwd_rpl);
	return 1;
}
