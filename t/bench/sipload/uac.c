// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Generator threads. Each owns its sockets (UDP) or connections (TCP), a
 * table of units in flight (a unit is one OPTIONS, one REGISTER, a REGISTER
 * with its challenge, or a whole call), a timer wheel and its statistics;
 * nothing is shared with the other threads, so nothing is locked.
 *
 * A unit's slot number and generation travel in the Via branch of every
 * request it sends, so a reply finds its unit without a lookup, and a late
 * reply for a slot that moved on is recognised by the generation.
 *
 * UDP retransmissions follow RFC 3261 §17.1: INVITE from T1 doubling until a
 * provisional reply (timer A), other requests from T1 doubling up to T2 and
 * then T2 (timer E, T2 at once after a provisional reply); the unit fails at
 * the transaction timeout (timers B and F). Over TCP nothing is retransmitted.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "sip.h"
#include "sipload.h"
#include "tbucket.h"

#define REQ_CAP 2048
#define DLG_CAP 1536
#define NONE UINT32_MAX
#define WHEEL (1u << 16) /* 1 ms ticks: 65 s ahead, more than any timeout allowed */
#define BATCH 64
#define RBUF 8192
#define TCP_IN_CAP (256 * 1024)
#define TCP_OUT_CAP (4 * 1024 * 1024)
#define SCRATCH_CAP (256 * 1024)
#define START_MAX 1024 /* units started per loop turn, so replies are read in between */

enum { S_FREE, S_TX1, S_TX2, S_HOLD };

typedef struct {
	uint32_t gen;
	uint8_t state, conn, provisional, invite;
	uint16_t reqlen, to_len, route_len, target_len;
	uint32_t rto; /* ms; 0 = no retransmission pending */
	uint32_t tnext, tprev;
	uint64_t tfire; /* tick; 0 = not armed */
	uint64_t user;
	uint64_t t_start, deadline;
	char *req; /* the request of the current transaction, for retransmission */
	char *dlg; /* call: To, Route line, remote target */
} sess_t;

typedef struct {
	int fd;
	char port[8];
	size_t port_len;
	/* UDP: datagrams waiting for sendmmsg */
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	int nq;
	/* TCP */
	char *in, *out;
	size_t inlen, outlen;
	bool dead;
} conn_t;

struct uac_thread {
	worker_t *w;
	int id;
	conn_t *conns;
	int nconns, cur;
	int ep;
	sess_t *sess;
	uint32_t nsess, hiwater;
	uint32_t *freel;
	uint32_t nfree;
	uint32_t *wheel;
	uint64_t tick, armed;
	tbucket_t tb;
	stats_t st;
	uint64_t inflight;
	uint64_t user_k;
	uint64_t started_epoch;
	unsigned state; /* last ctl state seen (epoch << 8 | phase) */
	char *scratch;
	size_t scratch_len;
	EVP_MD_CTX *md;
	struct mmsghdr rmm[BATCH];
	struct iovec riov[BATCH];
	char *rbuf;
};

/* ---------------------------------------------------------------- templates */

enum {
	V_USER, V_DOMAIN, V_SRV, V_LIP, V_LPORT, V_TRANSPORT, V_BRANCH, V_CALLID, V_FTAG, V_CSEQ, V_UAS, V_EXPIRES,
	V_AUTH, V_TO, V_ROUTE, V_TARGET, V_CLEN, V_BODY, V_TPARAM, V__N
};
static const char *const var_names[V__N] = {"user", "domain", "srv", "lip", "lport", "transport", "branch",
					    "callid", "ftag", "cseq", "uas", "expires", "auth", "to",
					    "route", "target", "clen", "body", "tparam"};

#define VIA "Via: SIP/2.0/{transport} {lip}:{lport};branch={branch};rport\r\n"
static const char T_OPTIONS[] = "OPTIONS sip:{srv} SIP/2.0\r\n" VIA "Max-Forwards: 70\r\n"
				"From: <sip:{user}@{domain}>;tag={ftag}\r\n"
				"To: <sip:{srv}>\r\n"
				"Call-ID: {callid}\r\n"
				"CSeq: {cseq} OPTIONS\r\n"
				"User-Agent: sipload\r\n"
				"Content-Length: 0\r\n\r\n";
static const char T_REGISTER[] = "REGISTER sip:{domain} SIP/2.0\r\n" VIA "Max-Forwards: 70\r\n"
				 "From: <sip:{user}@{domain}>;tag={ftag}\r\n"
				 "To: <sip:{user}@{domain}>\r\n"
				 "Call-ID: {callid}\r\n"
				 "CSeq: {cseq} REGISTER\r\n"
				 "Contact: <sip:{user}@{lip}:{lport}{tparam}>;expires={expires}\r\n"
				 "{auth}"
				 "User-Agent: sipload\r\n"
				 "Content-Length: 0\r\n\r\n";
static const char T_MESSAGE[] = "MESSAGE sip:{user}@{uas}{tparam} SIP/2.0\r\n" VIA "Max-Forwards: 70\r\n"
				"From: <sip:{user}@{domain}>;tag={ftag}\r\n"
				"To: <sip:{user}@{uas}>\r\n"
				"Call-ID: {callid}\r\n"
				"CSeq: {cseq} MESSAGE\r\n"
				"Content-Type: text/plain\r\n"
				"Content-Length: {clen}\r\n\r\n{body}";
static const char T_INVITE[] = "INVITE sip:{user}@{uas}{tparam} SIP/2.0\r\n" VIA "Max-Forwards: 70\r\n"
			       "From: <sip:{user}@{domain}>;tag={ftag}\r\n"
			       "To: <sip:{user}@{uas}>\r\n"
			       "Call-ID: {callid}\r\n"
			       "CSeq: {cseq} INVITE\r\n"
			       "Contact: <sip:{user}@{lip}:{lport}{tparam}>\r\n"
			       "Content-Type: application/sdp\r\n"
			       "Content-Length: {clen}\r\n\r\n{body}";
static const char T_ACK[] = "ACK {target} SIP/2.0\r\n" VIA "{route}Max-Forwards: 70\r\n"
			    "From: <sip:{user}@{domain}>;tag={ftag}\r\n"
			    "To: {to}\r\n"
			    "Call-ID: {callid}\r\n"
			    "CSeq: {cseq} ACK\r\n"
			    "Content-Length: 0\r\n\r\n";
static const char T_BYE[] = "BYE {target} SIP/2.0\r\n" VIA "{route}Max-Forwards: 70\r\n"
			    "From: <sip:{user}@{domain}>;tag={ftag}\r\n"
			    "To: {to}\r\n"
			    "Call-ID: {callid}\r\n"
			    "CSeq: {cseq} BYE\r\n"
			    "Content-Length: 0\r\n\r\n";
static const char MESSAGE_BODY[] = "sipload: a short instant message of a typical size.\r\n";
static const char SDP_BODY[] = "v=0\r\n"
			       "o=sipload 1 1 IN IP4 127.0.0.1\r\n"
			       "s=-\r\n"
			       "c=IN IP4 127.0.0.1\r\n"
			       "t=0 0\r\n"
			       "m=audio 40000 RTP/AVP 0 8 101\r\n"
			       "a=rtpmap:0 PCMU/8000\r\n"
			       "a=rtpmap:8 PCMA/8000\r\n"
			       "a=rtpmap:101 telephone-event/8000\r\n"
			       "a=sendrecv\r\n";

static tpl_t tp_options, tp_register, tp_message, tp_invite, tp_ack, tp_bye;
static sstr_t g_vars[V__N]; /* the constant ones; threads copy and fill in the rest */
static char msg_clen[16], sdp_clen[16], expires_s[16];

int uac_prepare(char *errbuf, size_t errlen)
{
	struct {
		tpl_t *t;
		const char *text;
	} all[] = {{&tp_options, T_OPTIONS}, {&tp_register, T_REGISTER}, {&tp_message, T_MESSAGE},
		   {&tp_invite, T_INVITE},   {&tp_ack, T_ACK},		 {&tp_bye, T_BYE}};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (tpl_compile(all[i].t, all[i].text, var_names, V__N, errbuf, errlen) < 0)
			return -1;
	g_vars[V_DOMAIN] = (sstr_t){cfg.domain, strlen(cfg.domain)};
	g_vars[V_SRV] = (sstr_t){cfg.server_str, strlen(cfg.server_str)};
	g_vars[V_LIP] = (sstr_t){cfg.local_ip, strlen(cfg.local_ip)};
	g_vars[V_TRANSPORT] = cfg.tcp ? SSTR("TCP") : SSTR("UDP");
	g_vars[V_UAS] = (sstr_t){cfg.uas_str, strlen(cfg.uas_str)};
	g_vars[V_TPARAM] = cfg.tcp ? SSTR(";transport=tcp") : SSTR("");
	snprintf(expires_s, sizeof expires_s, "%d", cfg.expires);
	g_vars[V_EXPIRES] = (sstr_t){expires_s, strlen(expires_s)};
	g_vars[V_AUTH] = SSTR("");
	g_vars[V_ROUTE] = SSTR("");
	if (cfg.scenario == SC_MESSAGE) {
		snprintf(msg_clen, sizeof msg_clen, "%zu", sizeof MESSAGE_BODY - 1);
		g_vars[V_CLEN] = (sstr_t){msg_clen, strlen(msg_clen)};
		g_vars[V_BODY] = SSTR(MESSAGE_BODY);
	} else {
		snprintf(sdp_clen, sizeof sdp_clen, "%zu", sizeof SDP_BODY - 1);
		g_vars[V_CLEN] = (sstr_t){sdp_clen, strlen(sdp_clen)};
		g_vars[V_BODY] = SSTR(SDP_BODY);
	}
	return 0;
}

/* ---------------------------------------------------------------- time */

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- timer wheel */

static void t_cancel(struct uac_thread *T, uint32_t i)
{
	sess_t *s = &T->sess[i];
	if (!s->tfire)
		return;
	if (s->tprev != NONE)
		T->sess[s->tprev].tnext = s->tnext;
	else
		T->wheel[s->tfire & (WHEEL - 1)] = s->tnext;
	if (s->tnext != NONE)
		T->sess[s->tnext].tprev = s->tprev;
	s->tfire = 0;
	T->armed--;
}

static void t_arm(struct uac_thread *T, uint32_t i, uint64_t fire_ns)
{
	sess_t *s = &T->sess[i];
	t_cancel(T, i);
	/* rounded up: a timer never fires before its time (the deadline check relies on it) */
	uint64_t tick = (fire_ns + 999999) / 1000000;
	if (tick <= T->tick)
		tick = T->tick + 1;
	if (tick - T->tick >= WHEEL)
		tick = T->tick + WHEEL - 1;
	s->tfire = tick;
	uint32_t *head = &T->wheel[tick & (WHEEL - 1)];
	s->tprev = NONE;
	s->tnext = *head;
	if (*head != NONE)
		T->sess[*head].tprev = i;
	*head = i;
	T->armed++;
}

/* ---------------------------------------------------------------- sending */

static void flush_conn(struct uac_thread *T, conn_t *c)
{
	if (!cfg.tcp) {
		int off = 0;
		while (off < c->nq) {
			int n = sendmmsg(c->fd, c->mm + off, (unsigned)(c->nq - off), 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				/* ECONNREFUSED (an ICMP error of an earlier datagram) or a full
				 * buffer: this datagram is lost; its retransmission may fare better */
				T->st.send_errors++;
				off++;
				continue;
			}
			off += n;
		}
		c->nq = 0;
		return;
	}
	while (c->outlen && !c->dead) {
		ssize_t n = write(c->fd, c->out, c->outlen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->dead = true;
			return;
		}
		memmove(c->out, c->out + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
}

static void flush_all(struct uac_thread *T)
{
	for (int i = 0; i < T->nconns; i++)
		flush_conn(T, &T->conns[i]);
	T->scratch_len = 0;
}

/* Queues len octets at p (which must stay valid until the next flush). */
static void send_msg(struct uac_thread *T, int ci, const char *p, size_t len)
{
	conn_t *c = &T->conns[ci];
	T->st.sent++;
	if (!cfg.tcp) {
		if (c->nq == BATCH)
			flush_conn(T, c);
		c->iov[c->nq] = (struct iovec){(void *)p, len};
		c->mm[c->nq].msg_hdr = (struct msghdr){.msg_iov = &c->iov[c->nq], .msg_iovlen = 1};
		c->nq++;
		return;
	}
	if (c->outlen + len > TCP_OUT_CAP) {
		flush_conn(T, c);
		if (c->outlen + len > TCP_OUT_CAP) {
			T->st.send_errors++;
			return;
		}
	}
	memcpy(c->out + c->outlen, p, len);
	c->outlen += len;
}

/* Room for a message that is not kept (ACK); flushes first when full. */
static char *scratch(struct uac_thread *T, size_t need)
{
	if (T->scratch_len + need > SCRATCH_CAP)
		flush_all(T);
	return T->scratch + T->scratch_len;
}

/* ---------------------------------------------------------------- units */

typedef struct {
	sstr_t v[V__N];
	char user[24], lport[8], branch[64], callid[96], ftag[40], cseq[12];
} vars_t;

static void vars_fill(struct uac_thread *T, vars_t *V, uint32_t i, int step, uint32_t cseq)
{
	sess_t *s = &T->sess[i];
	memcpy(V->v, g_vars, sizeof g_vars);
	size_t n = fmt_u64(V->user, s->user);
	V->v[V_USER] = (sstr_t){V->user, n};
	conn_t *c = &T->conns[s->conn];
	V->v[V_LPORT] = (sstr_t){c->port, c->port_len};
	/* z9hG4bKsl<thread>.<slot>.<gen>.<step>: see the file comment */
	char *b = V->branch;
	memcpy(b, "z9hG4bKsl", 9);
	n = 9;
	n += fmt_hex(b + n, (uint64_t)T->id);
	b[n++] = '.';
	n += fmt_hex(b + n, i);
	b[n++] = '.';
	n += fmt_hex(b + n, s->gen);
	b[n++] = '.';
	b[n++] = (char)('0' + step);
	V->v[V_BRANCH] = (sstr_t){b, n};
	char *ci = V->callid;
	n = fmt_hex(ci, cfg.run_id);
	ci[n++] = '-';
	n += fmt_hex(ci + n, (uint64_t)T->id);
	ci[n++] = '-';
	n += fmt_hex(ci + n, i);
	ci[n++] = '-';
	n += fmt_hex(ci + n, s->gen);
	memcpy(ci + n, "@sipload", 8);
	n += 8;
	V->v[V_CALLID] = (sstr_t){ci, n};
	char *ft = V->ftag;
	ft[0] = 't';
	n = 1 + fmt_hex(ft + 1, ((uint64_t)i << 32) | s->gen);
	V->v[V_FTAG] = (sstr_t){ft, n};
	n = fmt_u64(V->cseq, cseq);
	V->v[V_CSEQ] = (sstr_t){V->cseq, n};
}

static void unit_free(struct uac_thread *T, uint32_t i)
{
	sess_t *s = &T->sess[i];
	t_cancel(T, i);
	s->state = S_FREE;
	T->freel[T->nfree++] = i;
	T->inflight--;
}

static void unit_done(struct uac_thread *T, uint32_t i, uint64_t now)
{
	T->st.completed++;
	hist_record(&T->st.hist, (now - T->sess[i].t_start) / 1000);
	unit_free(T, i);
}

static void unit_fail(struct uac_thread *T, uint32_t i, bool timeout)
{
	T->st.failed++;
	if (timeout)
		T->st.timeouts++;
	else
		T->st.errors++;
	unit_free(T, i);
}

/* Sends s->req as a new client transaction and starts its timers. */
static void tx_start(struct uac_thread *T, uint32_t i, uint64_t now, bool invite)
{
	sess_t *s = &T->sess[i];
	s->invite = invite;
	s->provisional = 0;
	s->deadline = now + (uint64_t)cfg.timeout_ms * 1000000;
	send_msg(T, s->conn, s->req, s->reqlen);
	if (cfg.tcp) {
		s->rto = 0;
		t_arm(T, i, s->deadline);
	} else {
		s->rto = cfg.t1_ms;
		uint64_t at = now + (uint64_t)s->rto * 1000000;
		t_arm(T, i, at < s->deadline ? at : s->deadline);
	}
}

static bool render(const tpl_t *t, vars_t *V, char *out, size_t cap, uint16_t *len)
{
	size_t n = tpl_render(t, out, cap, V->v);
	*len = (uint16_t)n;
	return n > 0;
}

static void unit_start(struct uac_thread *T, uint64_t now)
{
	T->st.started++;
	T->started_epoch++;
	if (!T->nfree) {
		T->st.failed++;
		T->st.overflow++;
		return;
	}
	uint32_t i = T->freel[--T->nfree];
	if (i >= T->hiwater)
		T->hiwater = i + 1;
	T->inflight++;
	sess_t *s = &T->sess[i];
	s->gen++;
	s->state = S_TX1;
	uint64_t span = cfg.user_hi - cfg.user_lo + 1;
	s->user = cfg.user_lo + ((uint64_t)T->id + T->user_k++ * (uint64_t)cfg.threads) % span;
	s->t_start = now;
	s->conn = (uint8_t)T->cur;
	s->tfire = 0;
	vars_t V;
	vars_fill(T, &V, i, 0, 1);
	const tpl_t *t = cfg.scenario == SC_OPTIONS ? &tp_options
			 : cfg.scenario == SC_MESSAGE ? &tp_message
			 : cfg.scenario == SC_CALL    ? &tp_invite
						      : &tp_register;
	if (!render(t, &V, s->req, REQ_CAP, &s->reqlen)) {
		unit_fail(T, i, false);
		return;
	}
	tx_start(T, i, now, cfg.scenario == SC_CALL);
}

/* ---------------------------------------------------------------- replies */

/* Parses our branch out of the top Via: thread, slot, generation, step. */
static bool parse_branch(const char *msg, size_t len, uint32_t *thread, uint32_t *slot, uint32_t *gen, int *step)
{
	sstr_t via;
	if (!sip_find(msg, len, "via", 'v', &via))
		return false;
	const char *b = memmem(via.p, via.n, "branch=z9hG4bKsl", 16);
	if (!b)
		return false;
	const char *p = b + 16, *end = via.p + via.n;
	uint64_t v[3] = {0, 0, 0};
	for (int k = 0; k < 3; k++) {
		const char *s0 = p;
		while (p < end && *p != '.') {
			int d = (*p >= '0' && *p <= '9') ? *p - '0' : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 : -1;
			if (d < 0 || p - s0 > 12)
				return false;
			v[k] = v[k] * 16 + (uint64_t)d;
			p++;
		}
		if (p == s0 || p >= end)
			return false;
		p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return false;
	*thread = (uint32_t)v[0];
	*slot = (uint32_t)v[1];
	*gen = (uint32_t)v[2];
	*step = *p - '0';
	return true;
}

/* Copies the dialog of a 2xx to INVITE into s->dlg: To, the route set (reversed
 * Record-Route, as one Route line) and the remote target (Contact URI). */
static bool take_dialog(sess_t *s, const char *msg, size_t len)
{
	sstr_t to, contact;
	if (!sip_find(msg, len, "to", 't', &to) || !sip_find(msg, len, "contact", 'm', &contact))
		return false;
	sstr_t target = sip_uri_of(contact);
	sstr_t rr[16];
	int nrr = 0;
	size_t pos = 0;
	sstr_t n, v;
	while (sip_next_header(msg, len, &pos, &n, &v)) {
		if (!sip_name_is(n, "record-route", 0))
			continue;
		/* one header may hold a comma list: split outside <> */
		const char *p = v.p, *end = v.p + v.n;
		while (p < end && nrr < 16) {
			while (p < end && (*p == ' ' || *p == ','))
				p++;
			const char *st = p;
			int depth = 0;
			while (p < end && (depth || *p != ',')) {
				depth += *p == '<' ? 1 : *p == '>' ? -1 : 0;
				p++;
			}
			if (p > st)
				rr[nrr++] = (sstr_t){st, (size_t)(p - st)};
		}
	}
	size_t need = to.n + target.n + 16;
	for (int k = 0; k < nrr; k++)
		need += rr[k].n + 2;
	if (need > DLG_CAP)
		return false;
	char *d = s->dlg;
	memcpy(d, to.p, to.n);
	s->to_len = (uint16_t)to.n;
	d += to.n;
	size_t rl = 0;
	if (nrr) {
		memcpy(d, "Route: ", 7);
		rl = 7;
		for (int k = nrr - 1; k >= 0; k--) {
			memcpy(d + rl, rr[k].p, rr[k].n);
			rl += rr[k].n;
			if (k) {
				memcpy(d + rl, ", ", 2);
				rl += 2;
			}
		}
		memcpy(d + rl, "\r\n", 2);
		rl += 2;
	}
	s->route_len = (uint16_t)rl;
	d += rl;
	memcpy(d, target.p, target.n);
	s->target_len = (uint16_t)target.n;
	return true;
}

static void dialog_vars(sess_t *s, vars_t *V)
{
	V->v[V_TO] = (sstr_t){s->dlg, s->to_len};
	V->v[V_ROUTE] = (sstr_t){s->dlg + s->to_len, s->route_len};
	V->v[V_TARGET] = (sstr_t){s->dlg + s->to_len + s->route_len, s->target_len};
}

static void send_bye(struct uac_thread *T, uint32_t i, uint64_t now)
{
	sess_t *s = &T->sess[i];
	vars_t V;
	vars_fill(T, &V, i, 1, 2);
	dialog_vars(s, &V);
	s->state = S_TX2;
	if (!render(&tp_bye, &V, s->req, REQ_CAP, &s->reqlen)) {
		unit_fail(T, i, false);
		return;
	}
	tx_start(T, i, now, false);
}

/* ACK for a non-2xx final reply: part of the INVITE transaction (same branch). */
static void ack_non2xx(struct uac_thread *T, uint32_t i, const char *msg, size_t len)
{
	sess_t *s = &T->sess[i];
	sstr_t to;
	if (!sip_find(msg, len, "to", 't', &to))
		return;
	vars_t V;
	vars_fill(T, &V, i, 0, 1);
	char target[160];
	int n = snprintf(target, sizeof target, "sip:%.*s@%s%s", (int)V.v[V_USER].n, V.user, cfg.uas_str, cfg.tcp ? ";transport=tcp" : "");
	if (n < 0 || (size_t)n >= sizeof target)
		return;
	V.v[V_TARGET] = (sstr_t){target, strlen(target)};
	V.v[V_TO] = to;
	char *out = scratch(T, REQ_CAP);
	uint16_t l;
	if (render(&tp_ack, &V, out, REQ_CAP, &l)) {
		T->scratch_len += l;
		send_msg(T, s->conn, out, l);
	}
}

static void on_invite_2xx(struct uac_thread *T, uint32_t i, const char *msg, size_t len, uint64_t now)
{
	sess_t *s = &T->sess[i];
	if (!take_dialog(s, msg, len)) {
		unit_fail(T, i, false);
		return;
	}
	vars_t V;
	vars_fill(T, &V, i, 2, 1);
	dialog_vars(s, &V);
	char *out = scratch(T, REQ_CAP);
	uint16_t l;
	if (render(&tp_ack, &V, out, REQ_CAP, &l)) {
		T->scratch_len += l;
		send_msg(T, s->conn, out, l);
	}
	if (cfg.hold_ms) {
		s->state = S_HOLD;
		s->rto = 0;
		t_arm(T, i, now + (uint64_t)cfg.hold_ms * 1000000);
		return;
	}
	send_bye(T, i, now);
}

static void on_challenge(struct uac_thread *T, uint32_t i, int status, const char *msg, size_t len, uint64_t now)
{
	sess_t *s = &T->sess[i];
	sstr_t h;
	bool proxy = status == 407;
	if (!sip_find(msg, len, proxy ? "proxy-authenticate" : "www-authenticate", 0, &h)) {
		unit_fail(T, i, false);
		return;
	}
	digest_chal_t c;
	if (!digest_parse_challenge(h, &c)) {
		unit_fail(T, i, false);
		return;
	}
	vars_t V;
	vars_fill(T, &V, i, 1, 2);
	char uri[160];
	snprintf(uri, sizeof uri, "sip:%s", cfg.domain);
	char cred[1024];
	size_t hl = proxy ? 21 : 15;
	memcpy(cred, proxy ? "Proxy-Authorization: " : "Authorization: ", hl);
	size_t n = digest_credentials(T->md, &c, V.v[V_USER], (sstr_t){cfg.password, strlen(cfg.password)},
				      SSTR("REGISTER"), (sstr_t){uri, strlen(uri)}, V.v[V_FTAG], 1, cred + hl,
				      sizeof cred - hl - 2);
	if (!n) {
		unit_fail(T, i, false);
		return;
	}
	memcpy(cred + hl + n, "\r\n", 2);
	V.v[V_AUTH] = (sstr_t){cred, hl + n + 2};
	s->state = S_TX2;
	if (!render(&tp_register, &V, s->req, REQ_CAP, &s->reqlen)) {
		unit_fail(T, i, false);
		return;
	}
	tx_start(T, i, now, false);
}

static void on_reply(struct uac_thread *T, const char *msg, size_t len, uint64_t now)
{
	T->st.received++;
	int status = sip_status(msg, len);
	uint32_t th, slot, gen;
	int step;
	if (status < 100 || !parse_branch(msg, len, &th, &slot, &gen, &step) || th != (uint32_t)T->id ||
	    slot >= T->nsess) {
		T->st.stray++;
		return;
	}
	sess_t *s = &T->sess[slot];
	if (s->gen != gen || s->state == S_FREE || (step == 0 && s->state != S_TX1) ||
	    (step == 1 && s->state != S_TX2) || step > 1) {
		T->st.stray++; /* a late retransmission of a reply */
		return;
	}
	if (status < 200) {
		if (!s->provisional) {
			s->provisional = 1;
			if (s->invite) { /* timer A stops; B goes on */
				s->rto = 0;
				t_arm(T, slot, s->deadline);
			} else if (s->rto) { /* timer E continues at T2 */
				s->rto = cfg.t2_ms;
			}
		}
		return;
	}
	bool ok = status < 300;
	switch (cfg.scenario) {
	case SC_OPTIONS:
	case SC_REGISTER:
	case SC_MESSAGE:
		if (ok)
			unit_done(T, slot, now);
		else
			unit_fail(T, slot, false);
		break;
	case SC_REGISTER_AUTH:
		if (s->state == S_TX1 && (status == 401 || status == 407))
			on_challenge(T, slot, status, msg, len, now);
		else if (s->state == S_TX2 && ok)
			unit_done(T, slot, now);
		else
			unit_fail(T, slot, false); /* includes a 200 without a challenge */
		break;
	case SC_CALL:
		if (s->state == S_TX1) {
			if (ok) {
				on_invite_2xx(T, slot, msg, len, now);
			} else {
				ack_non2xx(T, slot, msg, len);
				unit_fail(T, slot, false);
			}
		} else if (ok) {
			unit_done(T, slot, now);
		} else {
			unit_fail(T, slot, false);
		}
		break;
	default:
		break;
	}
}

static void on_timer(struct uac_thread *T, uint32_t i, uint64_t now)
{
	sess_t *s = &T->sess[i];
	if (s->state == S_HOLD) {
		send_bye(T, i, now);
		return;
	}
	if (now + 500000 >= s->deadline) { /* within half a tick of it */
		unit_fail(T, i, true);
		return;
	}
	if (s->rto) {
		send_msg(T, s->conn, s->req, s->reqlen);
		T->st.retrans++;
		s->rto = s->invite ? s->rto * 2 : (s->provisional ? cfg.t2_ms : (s->rto * 2 < cfg.t2_ms ? s->rto * 2 : cfg.t2_ms));
		uint64_t at = now + (uint64_t)s->rto * 1000000;
		t_arm(T, i, at < s->deadline ? at : s->deadline);
		return;
	}
	t_arm(T, i, s->deadline);
}

static void run_timers(struct uac_thread *T, uint64_t now)
{
	uint64_t target = now / 1000000;
	while (T->tick < target) {
		T->tick++;
		uint32_t *head = &T->wheel[T->tick & (WHEEL - 1)];
		uint32_t i = *head;
		*head = NONE;
		while (i != NONE) {
			sess_t *s = &T->sess[i];
			uint32_t next = s->tnext;
			if (s->tfire == T->tick) {
				s->tfire = 0;
				T->armed--;
				on_timer(T, i, now);
			} else { /* cannot happen within the horizon; keep it anyway */
				uint64_t f = s->tfire;
				s->tfire = 0;
				T->armed--;
				t_arm(T, i, f * 1000000);
			}
			i = next;
		}
	}
}

/* ---------------------------------------------------------------- receiving */

static void recv_udp(struct uac_thread *T, conn_t *c)
{
	for (;;) {
		for (int k = 0; k < BATCH; k++) {
			T->riov[k] = (struct iovec){T->rbuf + (size_t)k * RBUF, RBUF};
			T->rmm[k].msg_hdr = (struct msghdr){.msg_iov = &T->riov[k], .msg_iovlen = 1};
		}
		int n = recvmmsg(c->fd, T->rmm, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return; /* EAGAIN, or ECONNREFUSED from an ICMP error: nothing to read */
		uint64_t now = now_ns();
		for (int k = 0; k < n; k++)
			on_reply(T, T->rbuf + (size_t)k * RBUF, T->rmm[k].msg_len, now);
		if (n < BATCH)
			return;
	}
}

static void recv_tcp(struct uac_thread *T, conn_t *c)
{
	for (;;) {
		if (c->inlen == TCP_IN_CAP) {
			c->dead = true;
			return;
		}
		ssize_t n = read(c->fd, c->in + c->inlen, TCP_IN_CAP - c->inlen);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			if (!c->dead)
				snprintf(T->w->err, sizeof T->w->err, "connection to the server closed");
			c->dead = true;
			epoll_ctl(T->ep, EPOLL_CTL_DEL, c->fd, NULL);
			return;
		}
		if (n < 0)
			return;
		c->inlen += (size_t)n;
		uint64_t now = now_ns();
		size_t off = 0;
		for (;;) {
			size_t skip;
			long m = sip_frame(c->in + off, c->inlen - off, &skip);
			if (m < 0) {
				c->dead = true;
				return;
			}
			off += skip;
			if (m == 0)
				break;
			on_reply(T, c->in + off, (size_t)m, now);
			off += (size_t)m;
		}
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
}

/* ---------------------------------------------------------------- set-up */

static int open_conn(struct uac_thread *T, conn_t *c, char *err, size_t errlen)
{
	c->fd = socket(AF_INET, (cfg.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	int big = 4 << 20;
	/* replies must not be lost on our side: a full receive buffer would be
	 * charged to the server. FORCE needs CAP_NET_ADMIN; the plain call is the fallback. */
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	if (setsockopt(c->fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0)
		setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	struct sockaddr_in la = {.sin_family = AF_INET};
	inet_pton(AF_INET, cfg.local_ip, &la.sin_addr);
	if (bind(c->fd, (struct sockaddr *)&la, sizeof la) < 0) {
		snprintf(err, errlen, "bind %s: %s", cfg.local_ip, strerror(errno));
		return -1;
	}
	if (connect(c->fd, (struct sockaddr *)&cfg.server, sizeof cfg.server) < 0) {
		snprintf(err, errlen, "connect %s: %s", cfg.server_str, strerror(errno));
		return -1;
	}
	if (cfg.tcp) {
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->in = malloc(TCP_IN_CAP);
		c->out = malloc(TCP_OUT_CAP);
		if (!c->in || !c->out) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_in me;
	socklen_t ml = sizeof me;
	getsockname(c->fd, (struct sockaddr *)&me, &ml);
	c->port_len = fmt_u64(c->port, ntohs(me.sin_port));
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - T->conns)};
	epoll_ctl(T->ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

static int thread_init(struct uac_thread *T, worker_t *w)
{
	T->w = w;
	T->id = w->id;
	T->ep = epoll_create1(EPOLL_CLOEXEC);
	T->nconns = cfg.sockets;
	T->conns = calloc((size_t)T->nconns, sizeof *T->conns);
	T->nsess = cfg.max_inflight;
	T->sess = calloc(T->nsess, sizeof *T->sess);
	T->freel = malloc(T->nsess * sizeof *T->freel);
	T->wheel = malloc(WHEEL * sizeof *T->wheel);
	/* one block for every slot's buffers: pages are only touched when used */
	char *bufs = malloc((size_t)T->nsess * (REQ_CAP + DLG_CAP));
	T->scratch = malloc(SCRATCH_CAP);
	T->rbuf = malloc((size_t)BATCH * RBUF);
	T->md = EVP_MD_CTX_new();
	if (T->ep < 0 || !T->conns || !T->sess || !T->freel || !T->wheel || !bufs || !T->scratch || !T->rbuf || !T->md) {
		snprintf(w->err, sizeof w->err, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < T->nsess; i++) {
		T->sess[i].req = bufs + (size_t)i * (REQ_CAP + DLG_CAP);
		T->sess[i].dlg = T->sess[i].req + REQ_CAP;
		T->sess[i].gen = (uint32_t)T->id * 7919u; /* any start; distinct per thread helps reading traces */
		T->freel[i] = T->nsess - 1 - i;           /* low slots first: fewer pages touched */
	}
	T->nfree = T->nsess;
	for (uint32_t i = 0; i < WHEEL; i++)
		T->wheel[i] = NONE;
	T->tick = now_ns() / 1000000;
	hist_reset(&T->st.hist);
	for (int k = 0; k < T->nconns; k++)
		if (open_conn(T, &T->conns[k], w->err, sizeof w->err) < 0)
			return -1;
	return 0;
}

static void thread_free(struct uac_thread *T)
{
	for (int k = 0; k < T->nconns; k++) {
		if (T->conns[k].fd > 0)
			close(T->conns[k].fd);
		free(T->conns[k].in);
		free(T->conns[k].out);
	}
	if (T->ep >= 0)
		close(T->ep);
	free(T->conns);
	if (T->sess)
		free(T->sess[0].req); /* the block of every slot's buffers */
	free(T->sess);
	free(T->freel);
	free(T->wheel);
	free(T->scratch);
	free(T->rbuf);
	EVP_MD_CTX_free(T->md);
	T->w->priv = NULL;
	free(T);
}

static void abandon_all(struct uac_thread *T)
{
	for (uint32_t i = 0; i < T->hiwater; i++)
		if (T->sess[i].state != S_FREE)
			unit_fail(T, i, true);
}

static void publish(struct uac_thread *T)
{
	worker_t *w = T->w;
	atomic_store_explicit(&w->live_started, T->st.started, memory_order_relaxed);
	atomic_store_explicit(&w->live_completed, T->st.completed, memory_order_relaxed);
	atomic_store_explicit(&w->live_failed, T->st.failed, memory_order_relaxed);
	atomic_store_explicit(&w->live_inflight, T->inflight, memory_order_relaxed);
}

static void start_units(struct uac_thread *T, uint64_t now)
{
	double rate = atomic_load_explicit(&ctl.rate, memory_order_relaxed);
	int conc = atomic_load_explicit(&ctl.concurrency, memory_order_relaxed);
	uint64_t count = atomic_load_explicit(&ctl.count, memory_order_relaxed);
	uint64_t room = START_MAX;
	if (conc > 0)
		room = T->inflight >= (uint64_t)conc ? 0 : (uint64_t)conc - T->inflight;
	if (count && room > count - (T->started_epoch < count ? T->started_epoch : count))
		room = count - (T->started_epoch < count ? T->started_epoch : count);
	if (room > START_MAX)
		room = START_MAX;
	uint64_t n = room;
	if (rate > 0)
		n = tb_take(&T->tb, now, room);
	if (n) {
		/* a burst goes out of one socket, so that it leaves in one sendmmsg */
		T->cur = (T->cur + 1) % T->nconns;
		if (cfg.tcp && T->conns[T->cur].dead)
			for (int k = 0; k < T->nconns && T->conns[T->cur].dead; k++)
				T->cur = (T->cur + 1) % T->nconns;
	}
	for (uint64_t k = 0; k < n; k++)
		unit_start(T, now);
}

void *uac_main(void *arg)
{
	worker_t *w = arg;
	struct uac_thread *T = calloc(1, sizeof *T);
	if (!T || thread_init(T, w) < 0) {
		if (T && !w->err[0])
			snprintf(w->err, sizeof w->err, "thread set-up failed");
		atomic_store(&w->failed_init, 1);
		return NULL;
	}
	w->priv = T;
	struct epoll_event evs[64];
	T->state = 0;
	for (;;) {
		unsigned st = atomic_load_explicit(&ctl.phase, memory_order_acquire);
		int phase = (int)(st & 0xff);
		if (phase == PH_EXIT)
			break;
		uint64_t now = now_ns();
		if (st != T->state) {
			unsigned epoch = st >> 8;
			if (epoch != T->state >> 8) { /* a new measured step: fresh statistics */
				memset(&T->st, 0, offsetof(stats_t, hist));
				hist_reset(&T->st.hist);
				T->started_epoch = 0;
				double r = atomic_load(&ctl.rate);
				tb_init(&T->tb, r, r * cfg.burst_ms / 1000.0, now);
			}
			if (phase == PH_PAUSE) {
				flush_all(T);
				abandon_all(T);
				T->w->snap = T->st;
				publish(T);
				atomic_store_explicit(&w->ack_phase, st, memory_order_release);
			}
			T->state = st;
		}
		run_timers(T, now);
		if (phase == PH_RUN)
			start_units(T, now);
		flush_all(T);
		publish(T);
		int timeout = 10;
		if (phase == PH_RUN) {
			double rate = atomic_load_explicit(&ctl.rate, memory_order_relaxed);
			if (rate > 0) {
				/* never spin for the next token: sleep at least a tick and
				 * send what accrued in one batch */
				uint64_t wns = tb_wait_ns(&T->tb, now);
				int ms = wns == 0 ? 0 : wns >= 10000000 ? 10 : (int)((wns + 999999) / 1000000);
				timeout = ms < timeout ? ms : timeout;
			}
		}
		if (T->armed && timeout > 1)
			timeout = 1;
		int n = epoll_wait(T->ep, evs, 64, timeout);
		for (int k = 0; k < n; k++) {
			conn_t *c = &T->conns[evs[k].data.u32];
			if (cfg.tcp)
				recv_tcp(T, c);
			else
				recv_udp(T, c);
		}
		flush_all(T);
	}
	thread_free(T);
	return NULL;
}
