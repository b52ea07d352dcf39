// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * The answering side of the benchmarks.
 *
 * `uas`: the far end of the call and message scenarios. INVITE gets 180 and
 * 200 (with an SDP answer, our Contact and the Record-Route copied, so the
 * ACK and BYE come back through the proxy), ACK nothing, anything else 200.
 * It keeps no state: a retransmitted INVITE is answered again the same way
 * (same To tag, derived from the Call-ID). With --ring the 200 follows the
 * 180 after that many milliseconds, which keeps calls in progress at the proxy.
 *
 * `echo`: the ceiling of the machine for the options scenario. A request
 * comes back as a reply by replacing its start line with "SIP/2.0 200 OK":
 * one copy, no parsing; recvmmsg/sendmmsg in batches, as cheap as a SIP
 * responder can be.
 *
 * UDP: one socket read by every thread (EPOLLEXCLUSIVE wakes one), because a
 * proxy sends from one address and port, which SO_REUSEPORT would hash onto a
 * single socket. TCP (uas): each thread listens with SO_REUSEPORT and serves
 * the connections it accepts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sip.h"
#include "sipload.h"

#define BATCH 64
#define RBUF 8192
#define OBUF 4096
#define CONN_IN 65536
#define CONN_OUT (1 << 20)

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static struct {
	bool echo, udp, tcp;
	char host[64];
	int port, threads;
	unsigned ring_ms;
	struct sockaddr_in addr;
	int udp_fd;
} U;

enum { K_UDP, K_LISTEN, K_CONN };
typedef struct ep_item {
	int kind, fd;
	char *in, *out;
	size_t inlen, outlen;
	struct ep_item *next; /* the thread's connections, freed at exit */
} ep_item_t;

typedef struct delayed {
	uint64_t due;
	struct sockaddr_in to;
	ep_item_t *conn; /* TCP: the connection; NULL for UDP */
	size_t len;
	struct delayed *next;
	char data[];
} delayed_t;

typedef struct {
	pthread_t tid;
	int id, ep;
	ep_item_t udp, listen;
	delayed_t *dq_head, *dq_tail;
	ep_item_t *conns;
	uint64_t requests, invites, acks, byes, others, replies, bad;
	struct mmsghdr rmm[BATCH], smm[2 * BATCH];
	struct iovec riov[BATCH], siov[2 * BATCH];
	struct sockaddr_in src[BATCH];
	char *rbuf, *obuf;
} uas_thread_t;

static uint32_t fnv1a(const char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static size_t put(char *o, size_t n, size_t cap, const char *p, size_t len)
{
	if (n + len > cap)
		return cap + 1;
	memcpy(o + n, p, len);
	return n + len;
}
#define PUTS(o, n, cap, lit) put(o, n, cap, lit, sizeof(lit) - 1)

static const char SDP_ANSWER[] = "v=0\r\n"
				 "o=sipload-uas 1 1 IN IP4 127.0.0.1\r\n"
				 "s=-\r\n"
				 "c=IN IP4 127.0.0.1\r\n"
				 "t=0 0\r\n"
				 "m=audio 41000 RTP/AVP 0 101\r\n"
				 "a=rtpmap:0 PCMU/8000\r\n"
				 "a=rtpmap:101 telephone-event/8000\r\n"
				 "a=sendrecv\r\n";

/*
 * One reply to the request msg: status line, the request's Via, From, To
 * (tagged), Call-ID and CSeq; for INVITE also Record-Route and Contact, and
 * for its 200 the SDP. Returns the length, 0 when it did not fit.
 */
static size_t build_reply(const char *msg, size_t len, int status, bool invite, bool tcp, char *o, size_t cap)
{
	size_t n = 0;
	n = status == 180 ? PUTS(o, n, cap, "SIP/2.0 180 Ringing\r\n") : PUTS(o, n, cap, "SIP/2.0 200 OK\r\n");
	size_t pos = 0;
	sstr_t name, v, callid = {0};
	sip_find(msg, len, "call-id", 'i', &callid);
	while (sip_next_header(msg, len, &pos, &name, &v)) {
		bool to = sip_name_is(name, "to", 't');
		if (sip_name_is(name, "via", 'v') || sip_name_is(name, "from", 'f') || to ||
		    sip_name_is(name, "call-id", 'i') || sip_name_is(name, "cseq", 0) ||
		    (invite && sip_name_is(name, "record-route", 0))) {
			n = put(o, n, cap, name.p, name.n);
			n = PUTS(o, n, cap, ": ");
			n = put(o, n, cap, v.p, v.n);
			if (to && !memmem(v.p, v.n, ";tag=", 5)) {
				char tag[24];
				int tl = snprintf(tag, sizeof tag, ";tag=u%08x", fnv1a(callid.p, callid.n));
				n = put(o, n, cap, tag, (size_t)tl);
			}
			n = PUTS(o, n, cap, "\r\n");
		}
	}
	if (invite) {
		char contact[128];
		int cl = snprintf(contact, sizeof contact, "Contact: <sip:uas@%s:%d%s>\r\n", U.host, U.port,
				  tcp ? ";transport=tcp" : "");
		n = put(o, n, cap, contact, (size_t)cl);
	}
	n = PUTS(o, n, cap, "Server: sipload-uas\r\n");
	if (invite && status == 200) {
		char clen[64];
		int l = snprintf(clen, sizeof clen, "Content-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n",
				 sizeof SDP_ANSWER - 1);
		n = put(o, n, cap, clen, (size_t)l);
		n = PUTS(o, n, cap, SDP_ANSWER);
	} else {
		n = PUTS(o, n, cap, "Content-Length: 0\r\n\r\n");
	}
	return n > cap ? 0 : n;
}

/* echo: the request's headers and body back under a 200 status line. */
static size_t build_echo(const char *msg, size_t len, char *o, size_t cap)
{
	const char *nl = memchr(msg, '\n', len);
	if (!nl || sip_status(msg, len) != 0 || (len >= 4 && memcmp(msg, "ACK ", 4) == 0))
		return 0;
	size_t rest = len - (size_t)(nl + 1 - msg);
	static const char sl[] = "SIP/2.0 200 OK\r\n";
	if (rest + sizeof sl > cap)
		return 0;
	memcpy(o, sl, sizeof sl - 1);
	memcpy(o + sizeof sl - 1, nl + 1, rest);
	return sizeof sl - 1 + rest;
}

static uint64_t mono_ns(void)
{
	return now_ns();
}

static void conn_send(ep_item_t *c, const char *p, size_t len)
{
	if (c->outlen == 0) {
		ssize_t w = write(c->fd, p, len);
		if (w == (ssize_t)len)
			return;
		if (w < 0)
			w = 0;
		p += w;
		len -= (size_t)w;
	}
	if (c->outlen + len > CONN_OUT)
		return; /* the proxy stopped reading: it will time out, as it should */
	memcpy(c->out + c->outlen, p, len);
	c->outlen += len;
}

static void conn_flush(ep_item_t *c)
{
	while (c->outlen) {
		ssize_t w = write(c->fd, c->out, c->outlen);
		if (w <= 0)
			return;
		memmove(c->out, c->out + w, c->outlen - (size_t)w);
		c->outlen -= (size_t)w;
	}
}

static void delay(uas_thread_t *T, const char *p, size_t len, const struct sockaddr_in *to, ep_item_t *conn)
{
	delayed_t *d = malloc(sizeof *d + len);
	if (!d)
		return;
	d->due = mono_ns() + (uint64_t)U.ring_ms * 1000000;
	if (to)
		d->to = *to;
	d->conn = conn;
	d->len = len;
	d->next = NULL;
	memcpy(d->data, p, len);
	if (T->dq_tail)
		T->dq_tail->next = d;
	else
		T->dq_head = d;
	T->dq_tail = d;
}

static void run_delayed(uas_thread_t *T)
{
	uint64_t now = mono_ns();
	while (T->dq_head && T->dq_head->due <= now) {
		delayed_t *d = T->dq_head;
		T->dq_head = d->next;
		if (!T->dq_head)
			T->dq_tail = NULL;
		if (d->conn)
			conn_send(d->conn, d->data, d->len);
		else
			sendto(U.udp_fd, d->data, d->len, 0, (struct sockaddr *)&d->to, sizeof d->to);
		T->replies++;
		free(d);
	}
}

/*
 * Answers one request. emit(o, len) sends a reply now. Returns the number of
 * replies built into o (each OBUF octets apart): 0, 1 or 2.
 */
static int answer(uas_thread_t *T, const char *msg, size_t len, bool tcp, char *o, size_t *lens,
		  const struct sockaddr_in *src, ep_item_t *conn)
{
	if (U.echo) {
		lens[0] = build_echo(msg, len, o, OBUF);
		if (lens[0])
			T->requests++;
		return lens[0] ? 1 : 0;
	}
	if (sip_status(msg, len) != 0) {
		T->bad++;
		return 0;
	}
	T->requests++;
	if (len >= 4 && memcmp(msg, "ACK ", 4) == 0) {
		T->acks++;
		return 0;
	}
	if (len >= 7 && memcmp(msg, "INVITE ", 7) == 0) {
		T->invites++;
		lens[0] = build_reply(msg, len, 180, true, tcp, o, OBUF);
		size_t l200 = build_reply(msg, len, 200, true, tcp, o + OBUF, OBUF);
		if (U.ring_ms && l200) {
			delay(T, o + OBUF, l200, src, conn);
			return lens[0] ? 1 : 0;
		}
		lens[1] = l200;
		return lens[0] && lens[1] ? 2 : 0;
	}
	if (len >= 4 && memcmp(msg, "BYE ", 4) == 0)
		T->byes++;
	else
		T->others++;
	lens[0] = build_reply(msg, len, 200, false, tcp, o, OBUF);
	return lens[0] ? 1 : 0;
}

static void serve_udp(uas_thread_t *T)
{
	for (;;) {
		for (int k = 0; k < BATCH; k++) {
			T->riov[k] = (struct iovec){T->rbuf + (size_t)k * RBUF, RBUF};
			T->rmm[k].msg_hdr = (struct msghdr){.msg_name = &T->src[k],
							    .msg_namelen = sizeof T->src[k],
							    .msg_iov = &T->riov[k],
							    .msg_iovlen = 1};
		}
		int n = recvmmsg(U.udp_fd, T->rmm, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		int ns = 0;
		for (int k = 0; k < n; k++) {
			char *o = T->obuf + (size_t)ns * OBUF;
			size_t lens[2] = {0, 0};
			int r = answer(T, T->rbuf + (size_t)k * RBUF, T->rmm[k].msg_len, false, o, lens, &T->src[k], NULL);
			for (int j = 0; j < r; j++) {
				T->siov[ns] = (struct iovec){o + (size_t)j * OBUF, lens[j]};
				T->smm[ns].msg_hdr = (struct msghdr){.msg_name = &T->src[k],
								     .msg_namelen = sizeof T->src[k],
								     .msg_iov = &T->siov[ns],
								     .msg_iovlen = 1};
				ns++;
			}
		}
		int off = 0;
		while (off < ns) {
			int s = sendmmsg(U.udp_fd, T->smm + off, (unsigned)(ns - off), 0);
			if (s <= 0) {
				off++; /* lost: the caller retransmits */
				continue;
			}
			off += s;
		}
		T->replies += (uint64_t)ns;
		if (n < BATCH)
			return;
	}
}

static void close_conn(uas_thread_t *T, ep_item_t *c)
{
	epoll_ctl(T->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	/* delayed replies may still point at it: keep the item, mark it closed */
	c->fd = -1;
	c->outlen = 0;
}

static void serve_conn(uas_thread_t *T, ep_item_t *c)
{
	for (;;) {
		if (c->fd < 0)
			return;
		ssize_t r = read(c->fd, c->in + c->inlen, CONN_IN - c->inlen);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			close_conn(T, c);
			return;
		}
		if (r < 0)
			break;
		c->inlen += (size_t)r;
		size_t off = 0;
		for (;;) {
			size_t skip;
			long m = sip_frame(c->in + off, c->inlen - off, &skip);
			if (m < 0) {
				close_conn(T, c);
				return;
			}
			off += skip;
			if (m == 0)
				break;
			size_t lens[2] = {0, 0};
			int k = answer(T, c->in + off, (size_t)m, true, T->obuf, lens, NULL, c);
			for (int j = 0; j < k; j++)
				conn_send(c, T->obuf + (size_t)j * OBUF, lens[j]);
			T->replies += (uint64_t)k;
			off += (size_t)m;
		}
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
		if (c->inlen == CONN_IN) {
			close_conn(T, c);
			return;
		}
	}
	conn_flush(c);
}

static void accept_all(uas_thread_t *T)
{
	for (;;) {
		int fd = accept4(T->listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		ep_item_t *c = calloc(1, sizeof *c);
		if (!c || !(c->in = malloc(CONN_IN)) || !(c->out = malloc(CONN_OUT))) {
			if (c) {
				free(c->in);
				free(c);
			}
			close(fd);
			continue;
		}
		c->kind = K_CONN;
		c->fd = fd;
		c->next = T->conns;
		T->conns = c;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(T->ep, EPOLL_CTL_ADD, fd, &ev);
	}
}

static void *uas_thread(void *arg)
{
	uas_thread_t *T = arg;
	struct epoll_event evs[64];
	while (!stop_flag) {
		int timeout = 100;
		if (T->dq_head) {
			uint64_t now = mono_ns();
			timeout = T->dq_head->due <= now ? 0 : (int)((T->dq_head->due - now) / 1000000) + 1;
			if (timeout > 100)
				timeout = 100;
		}
		int n = epoll_wait(T->ep, evs, 64, timeout);
		for (int k = 0; k < n; k++) {
			ep_item_t *it = evs[k].data.ptr;
			if (it->kind == K_UDP)
				serve_udp(T);
			else if (it->kind == K_LISTEN)
				accept_all(T);
			else
				serve_conn(T, it);
		}
		run_delayed(T);
	}
	return NULL;
}

static void usage(bool echo)
{
	if (echo)
		fprintf(stderr, "usage: sipload echo --port N [--host 127.0.0.1] [--threads N]\n"
				"  answers every UDP request but ACK with its own headers under \"SIP/2.0 200 OK\"\n");
	else
		fprintf(stderr, "usage: sipload uas --port N [--host 127.0.0.1] [--threads N] [--transport udp|tcp|both]\n"
				"                  [--ring MS]\n"
				"  INVITE: 180 and 200 (the 200 MS later with --ring); ACK: nothing; others: 200\n");
}

static int listen_sock(int type, bool reuseport)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1, big = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (type == SOCK_DGRAM) {
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	}
	if (bind(fd, (struct sockaddr *)&U.addr, sizeof U.addr) < 0 || (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

int uas_run(int argc, char **argv, bool echo)
{
	memset(&U, 0, sizeof U);
	U.echo = echo;
	U.udp = true;
	U.tcp = !echo;
	U.threads = 2;
	snprintf(U.host, sizeof U.host, "127.0.0.1");
	static const struct option opts[] = {{"port", required_argument, 0, 'p'},
					     {"host", required_argument, 0, 'H'},
					     {"threads", required_argument, 0, 't'},
					     {"transport", required_argument, 0, 'T'},
					     {"ring", required_argument, 0, 'r'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			U.port = atoi(optarg);
			break;
		case 'H':
			snprintf(U.host, sizeof U.host, "%s", optarg);
			break;
		case 't':
			U.threads = atoi(optarg);
			break;
		case 'T':
			U.udp = strcmp(optarg, "tcp") != 0;
			U.tcp = strcmp(optarg, "udp") != 0 && !echo;
			break;
		case 'r':
			U.ring_ms = (unsigned)atoi(optarg);
			break;
		case 'h':
			usage(echo);
			return 0;
		default:
			usage(echo);
			return 2;
		}
	}
	if (U.port <= 0 || U.port > 65535 || U.threads < 1 || U.threads > 64) {
		usage(echo);
		return 2;
	}
	U.addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)U.port)};
	if (inet_pton(AF_INET, U.host, &U.addr.sin_addr) != 1) {
		fprintf(stderr, "sipload: --host must be an IPv4 address\n");
		return 2;
	}
	U.udp_fd = -1;
	if (U.udp && (U.udp_fd = listen_sock(SOCK_DGRAM, false)) < 0) {
		fprintf(stderr, "sipload: udp %s:%d: %s\n", U.host, U.port, strerror(errno));
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	uas_thread_t *th = calloc((size_t)U.threads, sizeof *th);
	for (int i = 0; i < U.threads; i++) {
		uas_thread_t *T = &th[i];
		T->id = i;
		T->ep = epoll_create1(EPOLL_CLOEXEC);
		T->rbuf = malloc((size_t)BATCH * RBUF);
		T->obuf = malloc((size_t)2 * BATCH * OBUF);
		if (U.udp) {
			T->udp = (ep_item_t){.kind = K_UDP, .fd = U.udp_fd};
			struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &T->udp};
			epoll_ctl(T->ep, EPOLL_CTL_ADD, U.udp_fd, &ev);
		}
		if (U.tcp) {
			int fd = listen_sock(SOCK_STREAM, true);
			if (fd < 0) {
				fprintf(stderr, "sipload: tcp %s:%d: %s\n", U.host, U.port, strerror(errno));
				return 1;
			}
			T->listen = (ep_item_t){.kind = K_LISTEN, .fd = fd};
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &T->listen};
			epoll_ctl(T->ep, EPOLL_CTL_ADD, fd, &ev);
		}
	}
	fprintf(stderr, "sipload %s: listening on %s:%d (%s%s%s), %d threads\n", echo ? "echo" : "uas", U.host, U.port,
		U.udp ? "udp" : "", U.udp && U.tcp ? "+" : "", U.tcp ? "tcp" : "", U.threads);
	for (int i = 0; i < U.threads; i++)
		pthread_create(&th[i].tid, NULL, uas_thread, &th[i]);
	for (int i = 0; i < U.threads; i++)
		pthread_join(th[i].tid, NULL);
	uint64_t req = 0, inv = 0, ack = 0, bye = 0, oth = 0, rep = 0, bad = 0;
	for (int i = 0; i < U.threads; i++) {
		uas_thread_t *T = &th[i];
		for (ep_item_t *c = T->conns, *next; c; c = next) {
			next = c->next;
			if (c->fd >= 0)
				close(c->fd);
			free(c->in);
			free(c->out);
			free(c);
		}
		for (delayed_t *d = T->dq_head, *next; d; d = next) {
			next = d->next;
			free(d);
		}
		if (U.tcp)
			close(T->listen.fd);
		close(T->ep);
		free(T->rbuf);
		free(T->obuf);
	}
	for (int i = 0; i < U.threads; i++) {
		req += th[i].requests;
		inv += th[i].invites;
		ack += th[i].acks;
		bye += th[i].byes;
		oth += th[i].others;
		rep += th[i].replies;
		bad += th[i].bad;
	}
	if (echo)
		printf("{\"mode\":\"echo\",\"requests\":%llu,\"replies\":%llu}\n", (unsigned long long)req,
		       (unsigned long long)rep);
	else
		printf("{\"mode\":\"uas\",\"requests\":%llu,\"invite\":%llu,\"ack\":%llu,\"bye\":%llu,\"other\":%llu,"
		       "\"replies\":%llu,\"not_requests\":%llu}\n",
		       (unsigned long long)req, (unsigned long long)inv, (unsigned long long)ack, (unsigned long long)bye,
		       (unsigned long long)oth, (unsigned long long)rep, (unsigned long long)bad);
	fflush(stdout);
	free(th);
	if (U.udp_fd >= 0)
		close(U.udp_fd);
	return 0;
}
