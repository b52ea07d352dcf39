// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include <errno.h>
#include <time.h> /* before linux/errqueue.h, which uses struct timespec */
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/stats.h"
#include "net_internal.h"

static stat_counter_t *st_udp_rx, *st_udp_tx, *st_udp_tx_err, *st_udp_unreach;

/*
 * ICMP errors for datagrams we sent (IP_RECVERR): each names the destination
 * that could not be reached. Drained fully, or the socket stays readable.
 */
static void drain_errors(int fd)
{
	for (int i = 0; i < 64; i++) {
		net_addr_t dst;
		char ctrl[512];
		char data[64];
		struct iovec iov = {data, sizeof(data)};
		struct msghdr mh = {.msg_name = &dst, .msg_namelen = sizeof(dst), .msg_iov = &iov,
				    .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof(ctrl)};
		if (recvmsg(fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			return;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			bool v4 = cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_RECVERR;
			bool v6 = cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_RECVERR;
			if (!v4 && !v6)
				continue;
			const struct sock_extended_err *ee = (const void *)CMSG_DATA(cm);
			if (ee->ee_origin != SO_EE_ORIGIN_ICMP && ee->ee_origin != SO_EE_ORIGIN_ICMP6)
				continue;
			stat_inc(st_udp_unreach);
			if (net_unreachable && mh.msg_namelen)
				net_unreachable(SIP_PROTO_UDP, &dst, (int)ee->ee_errno);
		}
	}
}

static void udp_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	net_worker_t *w = io->data;
	unsigned li = (unsigned)(io - w->udp_io);
	const net_listen_t *l = &net_listens[li];
	struct mmsghdr msgs[NET_MAX_BATCH];
	struct iovec iov[NET_MAX_BATCH];
	net_addr_t from[NET_MAX_BATCH];
	(void)loop;
	(void)revents;

	/* Bounded rounds so one busy socket cannot starve the others or the timers. */
	for (int round = 0; round < 8; round++) {
		for (unsigned i = 0; i < w->batch; i++) {
			iov[i].iov_base = w->rx_bufs + (size_t)i * NET_UDP_BUF;
			iov[i].iov_len = NET_UDP_BUF - 1;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &from[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		int n = recvmmsg(w->udp_fd[li], msgs, w->batch, MSG_DONTWAIT, NULL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			drain_errors(w->udp_fd[li]);
			continue; /* the datagrams behind the error are still there */
		}
		if (n <= 0)
			return;
		stat_add(st_udp_rx, n);
		w->in_batch = true;
		for (int i = 0; i < n; i++) {
			net_rcv_t rcv = {.proto = SIP_PROTO_UDP, .local = l, .conn_id = 0};
			rcv.src = from[i];
			char *b = iov[i].iov_base;
			size_t len = msgs[i].msg_len;
			b[len] = '\0'; /* sentinel for parsers that peek one past the end */
			if (len == 0 || (len <= 4 && strspn(b, "\r\n") == len))
				continue; /* keep-alive datagrams (RFC 5626 §3.5.1 CRLF) */
			w->on_msg(&rcv, b, len);
		}
		w->in_batch = false;
		net_worker_flush(w);
		if ((unsigned)n < w->batch)
			return;
	}
}

int net_udp_worker_start(net_worker_t *w)
{
	if (!st_udp_rx) {
		st_udp_rx = stat_register("net", "udp_rcv", false);
		st_udp_tx = stat_register("net", "udp_sent", false);
		st_udp_tx_err = stat_register("net", "udp_send_errors", false);
		st_udp_unreach = stat_register("net", "udp_unreachable", false);
	}
	w->rx_bufs = malloc((size_t)w->batch * NET_UDP_BUF);
	if (!w->rx_bufs)
		return -ENOMEM;
	for (unsigned i = 0; i < net_nlistens; i++) {
		if (net_listens[i].proto != SIP_PROTO_UDP)
			continue;
		int fd = net_socket_for(&net_listens[i], SOCK_DGRAM, true);
		if (fd < 0) {
			LOG_ERR(NET, "worker %u: cannot bind %s: %s", w->id, net_listens[i].sock_str, strerror(-fd));
			return fd;
		}
		int one = 1;
		if (net_listens[i].addr.sa.sa_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
		else
			setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
		int sz = 4 * 1024 * 1024;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		w->udp_fd[i] = fd;
		ev_io_init(&w->udp_io[i], udp_read_cb, fd, EV_READ);
		w->udp_io[i].data = w;
		ev_io_start(w->loop, &w->udp_io[i]);
	}
	return 0;
}

void net_udp_worker_stop(net_worker_t *w)
{
	net_worker_flush(w);
	for (unsigned i = 0; i < NET_MAX_LISTEN; i++) {
		if (w->udp_fd[i] < 0)
			continue;
		ev_io_stop(w->loop, &w->udp_io[i]);
		close(w->udp_fd[i]);
		w->udp_fd[i] = -1;
	}
	for (unsigned i = 0; i < NET_MAX_BATCH; i++) {
		free(w->out[i].buf);
		w->out[i].buf = NULL;
	}
	free(w->rx_bufs);
	w->rx_bufs = NULL;
}

static int pick_fd(net_worker_t *w, const net_dest_t *d)
{
	const net_listen_t *l = d->from;
	if (!l || l->proto != SIP_PROTO_UDP || l->addr.sa.sa_family != d->addr.sa.sa_family)
		l = net_listen_pick(SIP_PROTO_UDP, d->addr.sa.sa_family);
	if (!l)
		return -EAFNOSUPPORT;
	/* Outside a worker (RPC thread): worker 0's socket; sendto is thread-safe. */
	if (!w)
		w = net_workers[0];
	return w ? w->udp_fd[l->idx] : -ENOTCONN;
}

void net_worker_flush(net_worker_t *w)
{
	struct mmsghdr msgs[NET_MAX_BATCH];
	struct iovec iov[NET_MAX_BATCH];
	unsigned i = 0;
	while (i < w->nout) {
		/* one sendmmsg per run of datagrams leaving through the same socket */
		unsigned j = i, n = 0;
		while (j < w->nout && w->out[j].fd == w->out[i].fd) {
			iov[n].iov_base = w->out[j].buf;
			iov[n].iov_len = w->out[j].len;
			memset(&msgs[n].msg_hdr, 0, sizeof(msgs[n].msg_hdr));
			msgs[n].msg_hdr.msg_iov = &iov[n];
			msgs[n].msg_hdr.msg_iovlen = 1;
			msgs[n].msg_hdr.msg_name = &w->out[j].to;
			msgs[n].msg_hdr.msg_namelen = net_addr_len(&w->out[j].to);
			j++;
			n++;
		}
		unsigned done = 0;
		while (done < n) {
			int r = sendmmsg(w->out[i].fd, msgs + done, n - done, MSG_DONTWAIT);
			if (r <= 0) {
				/* skip the datagram that failed (e.g. ICMP unreachable reported) */
				stat_inc(st_udp_tx_err);
				done++;
				continue;
			}
			stat_add(st_udp_tx, r);
			done += (unsigned)r;
		}
		i = j;
	}
	w->nout = 0;
}

int net_udp_send(net_worker_t *w, const net_dest_t *d, const char *buf, size_t len)
{
	int fd = pick_fd(w, d);
	if (fd < 0)
		return fd;
	if (len > 65507)
		return -EMSGSIZE;
	if (w && w->in_batch) {
		if (w->nout == NET_MAX_BATCH)
			net_worker_flush(w);
		udp_out_t *o = &w->out[w->nout];
		if (!o->buf && !(o->buf = malloc(NET_UDP_BUF)))
			return -ENOMEM;
		memcpy(o->buf, buf, len);
		o->len = len;
		o->to = d->addr;
		o->fd = fd;
		w->nout++;
		return 0;
	}
	ssize_t r = sendto(fd, buf, len, MSG_DONTWAIT, &d->addr.sa, net_addr_len(&d->addr));
	if (r < 0) {
		stat_inc(st_udp_tx_err);
		return -errno;
	}
	stat_inc(st_udp_tx);
	return 0;
}
