// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * TCP transport and the connection table.
 *
 * A connection is owned by one worker: only that worker reads it, runs its
 * watchers and closes it. Other threads reach it through the table (by id or
 * by peer address), holding a reference while they write under its write lock.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/hash.h"
#include "../lib/log.h"
#include "../lib/stats.h"
#include "net_internal.h"

#define CONN_BUCKETS 256

struct conn {
	uint64_t id;
	int fd;
	net_worker_t *owner;
	const net_listen_t *local;
	net_addr_t peer;
	_Atomic int refs;
	bool closed;              /* under wlock */
	bool connecting;          /* under wlock */
	bool close_after_write;   /* under wlock */
	bool pending;             /* in owner's pending list; under owner->pending_lock */
	pthread_mutex_t wlock;
	char *outq;
	size_t outlen, outcap;
	ev_io rio, wio;
	ev_tstamp last_active;    /* owner only */
	ev_tstamp msg_started;    /* owner only: first byte of an incomplete message, 0 = none */
	char *rbuf;
	size_t rlen, rcap;
	conn_t *id_next, *addr_next;
	conn_t *w_prev, *w_next;
	conn_t *pend_next;
};

typedef struct {
	pthread_mutex_t lock;
	conn_t *by_id;
	conn_t *by_addr;
} bucket_t;

static bucket_t buckets[CONN_BUCKETS];
static _Atomic uint64_t next_conn_id = 1;
static _Atomic unsigned nconns;
static stat_counter_t *st_accepted, *st_closed, *st_rejected, *st_framing_err, *st_keepalive;

void net_tcp_init(void)
{
	for (unsigned i = 0; i < CONN_BUCKETS; i++) {
		pthread_mutex_init(&buckets[i].lock, NULL);
		buckets[i].by_id = buckets[i].by_addr = NULL;
	}
	st_accepted = stat_register("net", "tcp_accepted", false);
	st_closed = stat_register("net", "tcp_closed", false);
	st_rejected = stat_register("net", "tcp_rejected", false);
	st_framing_err = stat_register("net", "tcp_framing_errors", false);
	st_keepalive = stat_register("net", "tcp_keepalives", false);
}

void net_tcp_shutdown(void)
{
}

unsigned net_tcp_connections(void)
{
	return atomic_load(&nconns);
}

static unsigned id_bucket(uint64_t id)
{
	return (unsigned)(hash64_final(id) % CONN_BUCKETS);
}

static unsigned addr_bucket(const net_addr_t *a)
{
	return (unsigned)(net_addr_hash(a) % CONN_BUCKETS);
}

static void conn_release(conn_t *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&c->wlock);
	free(c->outq);
	free(c->rbuf);
	free(c);
}

static void table_add(conn_t *c)
{
	bucket_t *b = &buckets[id_bucket(c->id)];
	pthread_mutex_lock(&b->lock);
	c->id_next = b->by_id;
	b->by_id = c;
	pthread_mutex_unlock(&b->lock);
	b = &buckets[addr_bucket(&c->peer)];
	pthread_mutex_lock(&b->lock);
	c->addr_next = b->by_addr;
	b->by_addr = c;
	pthread_mutex_unlock(&b->lock);
}

static void table_del(conn_t *c)
{
	bucket_t *b = &buckets[id_bucket(c->id)];
	pthread_mutex_lock(&b->lock);
	for (conn_t **p = &b->by_id; *p; p = &(*p)->id_next)
		if (*p == c) {
			*p = c->id_next;
			break;
		}
	pthread_mutex_unlock(&b->lock);
	b = &buckets[addr_bucket(&c->peer)];
	pthread_mutex_lock(&b->lock);
	for (conn_t **p = &b->by_addr; *p; p = &(*p)->addr_next)
		if (*p == c) {
			*p = c->addr_next;
			break;
		}
	pthread_mutex_unlock(&b->lock);
}

/* Returns a referenced connection or NULL. */
static conn_t *conn_get_by_id(uint64_t id)
{
	bucket_t *b = &buckets[id_bucket(id)];
	conn_t *c;
	pthread_mutex_lock(&b->lock);
	for (c = b->by_id; c; c = c->id_next)
		if (c->id == id) {
			atomic_fetch_add(&c->refs, 1);
			break;
		}
	pthread_mutex_unlock(&b->lock);
	return c;
}

static conn_t *conn_get_by_addr(const net_addr_t *a)
{
	bucket_t *b = &buckets[addr_bucket(a)];
	conn_t *c;
	pthread_mutex_lock(&b->lock);
	for (c = b->by_addr; c; c = c->addr_next)
		if (net_addr_eq(&c->peer, a)) {
			atomic_fetch_add(&c->refs, 1);
			break;
		}
	pthread_mutex_unlock(&b->lock);
	return c;
}

/* Owner only. */
static void conn_destroy(conn_t *c, const char *why)
{
	net_worker_t *w = c->owner;
	LOG_DBG(NET, "tcp conn %llu closed: %s", (unsigned long long)c->id, why);
	table_del(c);
	ev_io_stop(w->loop, &c->rio);
	ev_io_stop(w->loop, &c->wio);
	pthread_mutex_lock(&c->wlock);
	bool never_connected = c->connecting;
	c->closed = true;
	close(c->fd);
	c->fd = -1;
	pthread_mutex_unlock(&c->wlock);
	if (never_connected && net_unreachable)
		net_unreachable(SIP_PROTO_TCP, &c->peer, ECONNREFUSED);
	if (c->w_prev)
		c->w_prev->w_next = c->w_next;
	else
		w->conns = c->w_next;
	if (c->w_next)
		c->w_next->w_prev = c->w_prev;
	pthread_mutex_lock(&w->pending_lock);
	if (c->pending) {
		for (conn_t **p = &w->pending; *p; p = &(*p)->pend_next)
			if (*p == c) {
				*p = c->pend_next;
				break;
			}
		c->pending = false;
		pthread_mutex_unlock(&w->pending_lock);
		conn_release(c); /* the pending list's reference */
	} else {
		pthread_mutex_unlock(&w->pending_lock);
	}
	atomic_fetch_sub(&nconns, 1);
	stat_inc(st_closed);
	conn_release(c); /* the table's reference */
}

/* With wlock held: writes as much of the queue as the kernel takes. <0 on a dead socket. */
static int flush_locked(conn_t *c)
{
	while (c->outlen) {
		ssize_t n = send(c->fd, c->outq, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			return -errno;
		}
		memmove(c->outq, c->outq + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
	return 0;
}

static void write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	conn_t *c = io->data;
	int err = 0;
	(void)revents;
	pthread_mutex_lock(&c->wlock);
	if (c->connecting) {
		socklen_t sl = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		if (!err)
			c->connecting = false;
	}
	if (!err)
		err = -flush_locked(c);
	bool done = c->outlen == 0;
	bool close_now = done && c->close_after_write;
	pthread_mutex_unlock(&c->wlock);
	if (err) {
		conn_destroy(c, strerror(err));
		return;
	}
	if (done)
		ev_io_stop(loop, io);
	if (close_now)
		conn_destroy(c, "closed after write");
}

static bool is_owner(const conn_t *c)
{
	return net_cur_worker == c->owner;
}

/* Makes the owner watch for writability (directly, or by waking its loop). */
static void want_write(conn_t *c)
{
	net_worker_t *w = c->owner;
	if (is_owner(c)) {
		ev_io_start(w->loop, &c->wio);
		return;
	}
	pthread_mutex_lock(&w->pending_lock);
	if (!c->pending) {
		c->pending = true;
		atomic_fetch_add(&c->refs, 1);
		c->pend_next = w->pending;
		w->pending = c;
	}
	pthread_mutex_unlock(&w->pending_lock);
	ev_async_send(w->loop, &w->wake);
}

static void wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	net_worker_t *w = a->data;
	(void)loop;
	(void)revents;
	pthread_mutex_lock(&w->pending_lock);
	conn_t *list = w->pending;
	w->pending = NULL;
	for (conn_t *c = list; c; c = c->pend_next)
		c->pending = false;
	pthread_mutex_unlock(&w->pending_lock);
	while (list) {
		conn_t *c = list;
		list = c->pend_next;
		pthread_mutex_lock(&c->wlock);
		bool alive = !c->closed;
		pthread_mutex_unlock(&c->wlock);
		if (alive)
			ev_io_start(w->loop, &c->wio);
		conn_release(c);
	}
}

static int conn_write(conn_t *c, const char *buf, size_t len)
{
	int rc = 0;
	pthread_mutex_lock(&c->wlock);
	if (c->closed) {
		pthread_mutex_unlock(&c->wlock);
		return -ENOTCONN;
	}
	if (c->outlen == 0 && !c->connecting) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			rc = -errno;
		else if (n > 0) {
			buf += n;
			len -= (size_t)n;
		}
	}
	if (rc == 0 && len) {
		if (c->outlen + len > c->outcap) {
			size_t cap = c->outcap ? c->outcap : 4096;
			while (cap < c->outlen + len)
				cap *= 2;
			/* a peer that reads nothing must not make us hold unbounded memory */
			if (cap > 16u * 1024 * 1024) {
				rc = -ENOBUFS;
				goto out;
			}
			char *q = realloc(c->outq, cap);
			if (!q) {
				rc = -ENOMEM;
				goto out;
			}
			c->outq = q;
			c->outcap = cap;
		}
		memcpy(c->outq + c->outlen, buf, len);
		c->outlen += len;
		pthread_mutex_unlock(&c->wlock);
		want_write(c);
		return 0;
	}
out:
	pthread_mutex_unlock(&c->wlock);
	return rc;
}

static void read_cb(struct ev_loop *loop, ev_io *io, int revents);

static conn_t *conn_new(net_worker_t *w, int fd, const net_addr_t *peer, const net_listen_t *local)
{
	conn_t *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->id = atomic_fetch_add(&next_conn_id, 1);
	c->fd = fd;
	c->owner = w;
	c->local = local;
	c->peer = *peer;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->wlock, NULL);
	c->last_active = ev_now(w->loop);
	ev_io_init(&c->rio, read_cb, fd, EV_READ);
	ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	c->w_next = w->conns;
	if (w->conns)
		w->conns->w_prev = c;
	w->conns = c;
	atomic_fetch_add(&nconns, 1);
	table_add(c);
	ev_io_start(w->loop, &c->rio);
	return c;
}

/*
 * Framing is lost (sip_frame_stream failed). When the cause is the Content-Length
 * (missing, malformed or duplicated: RFC 3261 §18.3, RFC 4475 ncl and mcl01) rather
 * than the size, the worker still gets what was read, so that a request with a
 * usable Via is answered 400 with the reason before the connection is closed.
 */
static void deliver_unframed(conn_t *c, size_t off)
{
	char *p = c->rbuf + off;
	size_t len = c->rlen - off;
	if (sip_frame_stream(p, len, (size_t)LONG_MAX) != SIP_E_PARSE)
		return; /* only too large: nothing more useful to say than closing */
	net_rcv_t rcv = {.proto = SIP_PROTO_TCP, .src = c->peer, .local = c->local, .conn_id = c->id};
	p[len] = '\0'; /* rbuf has room for it */
	c->owner->on_msg(&rcv, p, len);
}

/* Frames and hands out every complete message in the read buffer. false = close. */
static bool process_rbuf(conn_t *c)
{
	net_worker_t *w = c->owner;
	size_t off = 0;
	size_t max = net_cfg && net_cfg->tcp.max_message_size ? net_cfg->tcp.max_message_size : 65536;
	while (off < c->rlen) {
		size_t ka = sip_skip_keepalive(c->rbuf + off, c->rlen - off);
		if (ka) {
			/* RFC 5626 §3.5.1: a double CRLF ping is answered with one CRLF pong */
			if (ka >= 4 && (!net_cfg || net_cfg->tcp.keepalive_pong)) {
				stat_inc(st_keepalive);
				conn_write(c, "\r\n", 2);
			}
			off += ka;
			continue;
		}
		long n = sip_frame_stream(c->rbuf + off, c->rlen - off, max);
		if (n == SIP_E_INCOMPLETE)
			break;
		if (n < 0) {
			stat_inc(st_framing_err);
			LOG_INFO(NET, "tcp conn %llu: framing lost, closing", (unsigned long long)c->id);
			deliver_unframed(c, off);
			return false;
		}
		net_rcv_t rcv = {.proto = SIP_PROTO_TCP, .src = c->peer, .local = c->local, .conn_id = c->id};
		char save = c->rbuf[off + (size_t)n];
		c->rbuf[off + (size_t)n] = '\0';
		w->on_msg(&rcv, c->rbuf + off, (size_t)n);
		c->rbuf[off + (size_t)n] = save;
		off += (size_t)n;
	}
	if (off) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
	c->msg_started = c->rlen ? (c->msg_started ? c->msg_started : ev_now(w->loop)) : 0;
	return true;
}

static void read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	conn_t *c = io->data;
	size_t max = net_cfg && net_cfg->tcp.max_message_size ? net_cfg->tcp.max_message_size : 65536;
	(void)revents;
	for (int round = 0; round < 4; round++) {
		if (c->rcap - c->rlen < 4096) {
			size_t cap = c->rcap ? c->rcap * 2 : 8192;
			/* room for one maximal message plus the start of the next */
			if (cap > 2 * max + 8192)
				cap = 2 * max + 8192;
			if (cap <= c->rlen + 1) {
				conn_destroy(c, "message too large");
				return;
			}
			char *nb = realloc(c->rbuf, cap + 1);
			if (!nb) {
				conn_destroy(c, "out of memory");
				return;
			}
			c->rbuf = nb;
			c->rcap = cap;
		}
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
		if (n == 0) {
			conn_destroy(c, "peer closed");
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			conn_destroy(c, strerror(errno));
			return;
		}
		c->rlen += (size_t)n;
		c->last_active = ev_now(loop);
		c->owner->in_batch = true;
		bool ok = process_rbuf(c);
		c->owner->in_batch = false;
		net_worker_flush(c->owner);
		if (!ok) {
			conn_destroy(c, "framing error");
			return;
		}
		if ((size_t)n < 4096)
			break;
	}
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	net_worker_t *w = io->data;
	unsigned li = (unsigned)(io - w->tcp_io);
	unsigned maxc = net_cfg && net_cfg->tcp.max_connections ? net_cfg->tcp.max_connections : 4096;
	(void)loop;
	(void)revents;
	for (int i = 0; i < 64; i++) {
		net_addr_t peer;
		socklen_t sl = sizeof(peer);
		int fd = accept4(w->tcp_fd[li], &peer.sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (atomic_load(&nconns) >= maxc) {
			stat_inc(st_rejected);
			LOG_WARN(NET, "tcp: max_connections (%u) reached, refusing a connection", maxc);
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (!conn_new(w, fd, &peer, &net_listens[li]))
			close(fd);
		else
			stat_inc(st_accepted);
	}
}

static void sweep_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	net_worker_t *w = t->data;
	ev_tstamp now = ev_now(loop);
	double idle = net_cfg && net_cfg->tcp.idle_timeout ? net_cfg->tcp.idle_timeout : 600;
	double rd = net_cfg && net_cfg->tcp.read_timeout ? net_cfg->tcp.read_timeout : 20;
	(void)revents;
	conn_t *c = w->conns;
	while (c) {
		conn_t *next = c->w_next;
		if (now - c->last_active > idle)
			conn_destroy(c, "idle timeout");
		else if (c->msg_started && now - c->msg_started > rd)
			conn_destroy(c, "incomplete message timeout");
		c = next;
	}
}

int net_tcp_worker_start(net_worker_t *w)
{
	pthread_mutex_init(&w->pending_lock, NULL);
	ev_async_init(&w->wake, wake_cb);
	w->wake.data = w;
	ev_async_start(w->loop, &w->wake);
	ev_timer_init(&w->sweep, sweep_cb, 1.0, 1.0);
	w->sweep.data = w;
	ev_timer_start(w->loop, &w->sweep);
	for (unsigned i = 0; i < net_nlistens; i++) {
		if (net_listens[i].proto != SIP_PROTO_TCP)
			continue;
		int fd = net_socket_for(&net_listens[i], SOCK_STREAM, true);
		if (fd < 0 || listen(fd, 1024) != 0) {
			LOG_ERR(NET, "worker %u: cannot listen on %s", w->id, net_listens[i].sock_str);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		w->tcp_fd[i] = fd;
		ev_io_init(&w->tcp_io[i], accept_cb, fd, EV_READ);
		w->tcp_io[i].data = w;
		ev_io_start(w->loop, &w->tcp_io[i]);
	}
	return 0;
}

void net_tcp_worker_stop(net_worker_t *w)
{
	for (unsigned i = 0; i < NET_MAX_LISTEN; i++) {
		if (w->tcp_fd[i] < 0)
			continue;
		ev_io_stop(w->loop, &w->tcp_io[i]);
		close(w->tcp_fd[i]);
		w->tcp_fd[i] = -1;
	}
	while (w->conns)
		conn_destroy(w->conns, "shutdown");
	ev_timer_stop(w->loop, &w->sweep);
	ev_async_stop(w->loop, &w->wake);
	pthread_mutex_destroy(&w->pending_lock);
}

static conn_t *conn_connect(net_worker_t *w, const net_dest_t *d)
{
	const net_listen_t *l = d->from;
	if (!l || l->proto != SIP_PROTO_TCP || l->addr.sa.sa_family != d->addr.sa.sa_family)
		l = net_listen_pick(SIP_PROTO_TCP, d->addr.sa.sa_family);
	int fd = socket(d->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, &d->addr.sa, net_addr_len(&d->addr)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return NULL;
	}
	conn_t *c = conn_new(w, fd, &d->addr, l);
	if (!c) {
		close(fd);
		return NULL;
	}
	c->connecting = true;
	return c;
}

int net_tcp_send(const net_dest_t *d, const char *buf, size_t len)
{
	conn_t *c = d->conn_id ? conn_get_by_id(d->conn_id) : NULL;
	if (!c)
		c = conn_get_by_addr(&d->addr);
	if (!c) {
		if (d->no_connect)
			return -ENOTCONN;
		if (!net_cur_worker)
			return -ENOTCONN;
		c = conn_connect(net_cur_worker, d);
		if (!c)
			return -ECONNREFUSED;
		atomic_fetch_add(&c->refs, 1);
	}
	int rc = conn_write(c, buf, len);
	conn_release(c);
	return rc;
}

void net_conn_close_later(uint64_t conn_id)
{
	conn_t *c = conn_get_by_id(conn_id);
	if (!c)
		return;
	pthread_mutex_lock(&c->wlock);
	c->close_after_write = true;
	pthread_mutex_unlock(&c->wlock);
	want_write(c);
	conn_release(c);
}
