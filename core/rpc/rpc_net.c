// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * The RPC transports: the unix socket (JSON texts back to back) and the
 * loopback HTTP server, on the main thread's loop. A connection reads into one
 * buffer, answers every complete request in it, and writes the answers out;
 * while more than OUT_HIGH bytes wait to be sent it stops reading, so a client
 * that sends without reading cannot make ksrd buffer without bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../lib/log.h"
#include "rpc_http.h"
#include "rpc_internal.h"

#define IDLE_TIMEOUT 30.0
#define MAX_CONNS 64
#define OUT_HIGH (4u * 1024 * 1024)
#define READ_MIN 16384

typedef struct conn conn_t;
struct conn {
	int fd;
	bool http;
	bool eof;       /* the peer will send nothing more */
	bool closing;   /* read nothing more; close once the output is sent */
	bool continued; /* HTTP: "100 Continue" sent for the pending request */
	ev_io rio, wio;
	ev_timer idle;
	char *in;
	size_t in_len, in_off, in_cap;
	rpc_buf_t out;
	size_t out_off;
	json_scan_t scan;
	conn_t *prev, *next;
};

typedef struct {
	int fd;
	bool http;
	ev_io io;
	ev_timer retry; /* accept paused after running out of descriptors */
} listener_t;

static struct ev_loop *rpc_loop;
static bool running;
static listener_t lis_unix = {.fd = -1}, lis_http = {.fd = -1, .http = true};
static conn_t *conns;
static unsigned nconns;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static dev_t sock_dev;
static ino_t sock_ino;
static unsigned http_port;
static json_w_t resp;

/* ----------------------------------------------------------- connection */

static void conn_close(conn_t *c)
{
	ev_io_stop(rpc_loop, &c->rio);
	ev_io_stop(rpc_loop, &c->wio);
	ev_timer_stop(rpc_loop, &c->idle);
	close(c->fd);
	free(c->in);
	rpc_buf_free(&c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nconns--;
	free(c);
}

static size_t pending_out(const conn_t *c)
{
	return c->out.len - c->out_off;
}

static size_t pending_in(const conn_t *c)
{
	return c->in_len - c->in_off;
}

static size_t in_limit(const conn_t *c)
{
	return c->http ? RPC_HTTP_MAX_HEAD + RPC_MAX_REQUEST : RPC_MAX_REQUEST;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static void reply_json(conn_t *c)
{
	if (!resp.len)
		return;
	rpc_buf_put(&c->out, resp.buf, resp.len);
	rpc_buf_put(&c->out, "\n", 1);
}

/* Answers the complete JSON texts in the input; true when it stopped because output piled up. */
static bool process_json(conn_t *c)
{
	while (pending_out(c) < OUT_HIGH) {
		if (c->scan.pos == 0)
			while (c->in_off < c->in_len && is_space(c->in[c->in_off]))
				c->in_off++;
		const char *p = c->in + c->in_off;
		size_t end, n = pending_in(c);
		int rc = json_scan(&c->scan, p, n, &end);
		if (rc < 0) {
			rpc_error_response(&resp, RPC_E_PARSE, "Parse error: not a JSON value");
			reply_json(c);
			c->closing = true;
			return false;
		}
		if (rc == 0) {
			if (c->eof && json_scan_started(&c->scan)) {
				/* the peer closed its side in the middle of a value */
				rpc_error_response(&resp, RPC_E_PARSE, "Parse error: incomplete JSON at end of input");
				reply_json(c);
				c->closing = true;
				return false;
			}
			if (n < RPC_MAX_REQUEST)
				return false;
			rpc_error_response(&resp, RPC_E_INVALID, "Invalid Request: larger than 1 MB");
			reply_json(c);
			c->closing = true;
			return false;
		}
		rc = rpc_process(p + c->scan.start, end - c->scan.start, &resp);
		c->in_off += end;
		json_scan_reset(&c->scan);
		reply_json(c);
		if (rc == RPC_E_PARSE) {
			/* where the next request starts is anyone's guess */
			c->closing = true;
			return false;
		}
	}
	return true;
}

static bool process_http(conn_t *c)
{
	while (pending_out(c) < OUT_HIGH) {
		rpc_http_req_t q;
		int rc = rpc_http_head(c->in + c->in_off, pending_in(c), &q);
		if (rc == 0)
			return false;
		if (rc < 0) {
			rpc_http_error(&c->out, -rc, &q);
			c->closing = true;
			return false;
		}
		size_t need = (size_t)rc + q.content_length;
		if (pending_in(c) < need) {
			if (q.expect_continue && !c->continued) {
				rpc_buf_printf(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
				c->continued = true;
			}
			return false;
		}
		rpc_http_handle(&q, c->in + c->in_off + rc, &resp, &c->out);
		c->in_off += need;
		c->continued = false;
		if (!q.keep_alive) {
			c->closing = true;
			return false;
		}
	}
	return true;
}

static bool process(conn_t *c)
{
	bool more = c->http ? process_http(c) : process_json(c);
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	return more;
}

/* Returns 1 when output is left to send, 0 when all is sent, -1 when the peer is gone. */
static int flush(conn_t *c)
{
	while (pending_out(c)) {
		ssize_t n = send(c->fd, c->out.s + c->out_off, pending_out(c), MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			ev_timer_again(rpc_loop, &c->idle);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		return -1;
	}
	c->out.len = c->out_off = 0;
	return 0;
}

static void set_watchers(conn_t *c)
{
	if (pending_out(c))
		ev_io_start(rpc_loop, &c->wio);
	else
		ev_io_stop(rpc_loop, &c->wio);
	if (!c->closing && !c->eof && pending_out(c) < OUT_HIGH)
		ev_io_start(rpc_loop, &c->rio);
	else
		ev_io_stop(rpc_loop, &c->rio);
}

/* Answers what can be answered, sends what can be sent, and closes when done. */
static void conn_run(conn_t *c)
{
	for (;;) {
		bool more = c->closing ? false : process(c);
		if (c->eof && !more)
			c->closing = true;
		if (c->out.err) {
			LOG_ERR(RPC, "out of memory answering a control connection");
			conn_close(c);
			return;
		}
		int rc = flush(c);
		if (rc < 0 || (rc == 0 && c->closing)) {
			conn_close(c);
			return;
		}
		if (!more || rc != 0)
			break;
	}
	set_watchers(c);
}

static bool make_room(conn_t *c)
{
	if (c->in_off) {
		memmove(c->in, c->in + c->in_off, pending_in(c));
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	size_t limit = in_limit(c);
	if (c->in_len >= limit)
		return false;
	if (c->in_cap - c->in_len >= READ_MIN || c->in_cap >= limit)
		return true;
	size_t cap = c->in_cap ? c->in_cap * 2 : READ_MIN;
	while (cap - c->in_len < READ_MIN)
		cap *= 2;
	if (cap > limit)
		cap = limit;
	char *p = realloc(c->in, cap);
	if (!p)
		return false;
	c->in = p;
	c->in_cap = cap;
	return true;
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	conn_t *c = w->data;
	if (!make_room(c)) {
		/* process() refuses what cannot fit, so only malloc failing gets here */
		LOG_ERR(RPC, "no memory for a control connection's input");
		conn_close(c);
		return;
	}
	ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		LOG_DBG(RPC, "control connection: %s", strerror(errno));
		conn_close(c);
		return;
	}
	if (n == 0)
		c->eof = true;
	c->in_len += (size_t)n;
	ev_timer_again(loop, &c->idle);
	conn_run(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	conn_run(w->data);
}

static void on_idle(struct ev_loop *loop, ev_timer *t, int revents)
{
	conn_t *c = t->data;
	LOG_DBG(RPC, "closing a control connection idle for %.0f s", IDLE_TIMEOUT);
	conn_close(c);
}

static void conn_new(int fd, bool http)
{
	conn_t *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->http = http;
	ev_io_init(&c->rio, on_read, fd, EV_READ);
	ev_io_init(&c->wio, on_write, fd, EV_WRITE);
	ev_init(&c->idle, on_idle);
	c->idle.repeat = IDLE_TIMEOUT;
	c->rio.data = c->wio.data = c->idle.data = c;
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	nconns++;
	ev_io_start(rpc_loop, &c->rio);
	ev_timer_again(rpc_loop, &c->idle);
}

/* ------------------------------------------------------------- listeners */

static void on_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	listener_t *l = t->data;
	ev_io_start(loop, &l->io);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	listener_t *l = w->data;
	/* a bounded number per wake-up, so a flood cannot starve the other watchers */
	for (int i = 0; i < 16; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* the socket stays readable: retry later rather than spin */
				LOG_ERR(RPC, "accept: %s; pausing the control socket for 1 s", strerror(errno));
				ev_io_stop(loop, &l->io);
				ev_timer_set(&l->retry, 1.0, 0.0);
				ev_timer_start(loop, &l->retry);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
				LOG_ERR(RPC, "accept: %s", strerror(errno));
			}
			return;
		}
		if (nconns >= MAX_CONNS) {
			LOG_WARN(RPC, "%d control connections open: refusing another", MAX_CONNS);
			close(fd);
			continue;
		}
		conn_new(fd, l->http);
	}
}

static void listener_start(listener_t *l, int fd)
{
	l->fd = fd;
	ev_io_init(&l->io, on_accept, fd, EV_READ);
	ev_init(&l->retry, on_retry);
	l->io.data = l->retry.data = l;
	ev_io_start(rpc_loop, &l->io);
}

static void listener_stop(listener_t *l)
{
	if (l->fd < 0)
		return;
	ev_io_stop(rpc_loop, &l->io);
	ev_timer_stop(rpc_loop, &l->retry);
	close(l->fd);
	l->fd = -1;
}

__attribute__((format(printf, 4, 5))) static int err_out(char *errbuf, size_t errlen, int rc, const char *fmt,
							    ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* A socket file is left behind by a server that died; a live one still accepts. */
static int unix_clear_stale(const char *path, char *errbuf, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_out(errbuf, errlen, -errno, "rpc.socket %s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return err_out(errbuf, errlen, -EEXIST, "rpc.socket %s: exists and is not a socket", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_out(errbuf, errlen, -errno, "rpc.socket %s: %s", path, strerror(errno));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS)
		return err_out(errbuf, errlen, -EADDRINUSE,
			       "rpc.socket %s: another server is answering there (is ksrd already running?)", path);
	if (e != ECONNREFUSED)
		return err_out(errbuf, errlen, -e, "rpc.socket %s: %s", path, strerror(e));
	if (unlink(path) < 0 && errno != ENOENT)
		return err_out(errbuf, errlen, -errno, "rpc.socket %s: cannot remove the stale socket: %s", path,
			       strerror(errno));
	LOG_INFO(RPC, "removed the stale control socket %s", path);
	return 0;
}

static int unix_open(const char *path, char *errbuf, size_t errlen)
{
	if (strlen(path) >= sizeof(sock_path))
		return err_out(errbuf, errlen, -ENAMETOOLONG, "rpc.socket %s: path too long for a unix socket", path);
	int rc = unix_clear_stale(path, errbuf, errlen);
	if (rc < 0)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_out(errbuf, errlen, -errno, "rpc.socket %s: %s", path, strerror(errno));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* the umask makes the socket 0600 from birth: no window where others may connect */
	mode_t old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	struct stat st;
	if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0 || stat(path, &st) < 0) {
		e = rc < 0 ? e : errno;
		close(fd);
		if (rc == 0)
			unlink(path);
		return err_out(errbuf, errlen, -e, "rpc.socket %s: %s", path, strerror(e));
	}
	memcpy(sock_path, path, strlen(path) + 1);
	sock_dev = st.st_dev;
	sock_ino = st.st_ino;
	listener_start(&lis_unix, fd);
	return 0;
}

static int http_open(const char *spec, char *errbuf, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	const char *why = rpc_http_parse_addr(spec, &ss, &sl);
	if (why)
		return err_out(errbuf, errlen, -EINVAL, "rpc.http %s: %s", spec, why);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_out(errbuf, errlen, -errno, "rpc.http %s: %s", spec, strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		int e = errno;
		close(fd);
		return err_out(errbuf, errlen, -e, "rpc.http %s: %s", spec, strerror(e));
	}
	http_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	listener_start(&lis_http, fd);
	return 0;
}

int rpc_start(struct ev_loop *loop, const ksr_cfg_t *cfg, char *errbuf, size_t errlen)
{
	if (running)
		return err_out(errbuf, errlen, -EALREADY, "rpc: already started");
	int rc = rpc_core_register();
	if (rc < 0)
		return err_out(errbuf, errlen, rc, "rpc: cannot register the built-in methods: %s", strerror(-rc));
	rpc_loop = loop;
	running = true;
	rpc_core_started();
	if (cfg->rpc.socket && *cfg->rpc.socket) {
		rc = unix_open(cfg->rpc.socket, errbuf, errlen);
		if (rc < 0)
			goto fail;
		LOG_INFO(RPC, "control socket %s", cfg->rpc.socket);
	}
	if (cfg->rpc.http) {
		rc = http_open(cfg->rpc.http, errbuf, errlen);
		if (rc < 0)
			goto fail;
		LOG_INFO(RPC, "control over HTTP on %s (port %u): POST /RPC, GET /metrics", cfg->rpc.http, http_port);
	}
	return 0;
fail:
	rpc_stop();
	return rc;
}

void rpc_stop(void)
{
	if (!running)
		return;
	while (conns)
		conn_close(conns);
	listener_stop(&lis_http);
	if (lis_unix.fd >= 0) {
		listener_stop(&lis_unix);
		/* only our own socket: another server may have replaced it since */
		struct stat st;
		if (stat(sock_path, &st) == 0 && st.st_dev == sock_dev && st.st_ino == sock_ino)
			unlink(sock_path);
	}
	http_port = 0;
	json_w_free(&resp);
	rpc_dispatch_free();
	running = false;
}

unsigned rpc_http_port(void)
{
	return http_port;
}
