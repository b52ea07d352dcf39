// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * The RPC server, driven as a client would: it runs on a private event loop
 * that the test steps (ev_run EVRUN_NOWAIT) while it waits for answers, on a
 * unix socket in a fresh directory and on an HTTP port the kernel picks.
 * Covers the JSON-RPC 2.0 rules (errors, notifications, batches), framing on
 * the stream, the built-in methods, and the HTTP endpoint (/RPC, /metrics and
 * its refusals).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/lib/log.h"
#include "core/lib/stats.h"
#include "core/rpc/rpc.h"

static char dir[64];
static char sock[128];
static char http[32];
static struct ev_loop *loop;
static stat_counter_t *hits, *active;

/* ------------------------------------------------------- test methods */

static void t_echo(rpc_req_t *r, const json_t *params)
{
	json_w_value(rpc_result(r), params);
}

static void t_add(rpc_req_t *r, const json_t *params)
{
	long long a, b = 0;
	if (rpc_param_int(r, 0, "a", &a) < 0 || rpc_param_opt_int(r, 1, "b", &b) < 0)
		return;
	json_w_int(rpc_result(r), a + b);
}

static void t_hello(rpc_req_t *r, const json_t *params)
{
	str_t name;
	if (rpc_param_str(r, 0, "name", &name) < 0)
		return;
	json_w_printf(rpc_result(r), "hello %.*s", STR_FMT(name));
}

static void t_fail(rpc_req_t *r, const json_t *params)
{
	json_w_arr_begin(rpc_result(r)); /* a fault discards what was written */
	rpc_fault(r, RPC_E_NOT_FOUND, "nothing here");
}

static void t_unbalanced(rpc_req_t *r, const json_t *params)
{
	json_w_arr_begin(rpc_result(r));
}

static void t_nothing(rpc_req_t *r, const json_t *params)
{
	stat_inc(hits);
}

/* ------------------------------------------------------------- fixture */

static void setup(void)
{
	strcpy(dir, "/tmp/ksrd-rpc-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/ctl.sock", dir);
	strcpy(http, "127.0.0.1:0");
	loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_ptr_nonnull(loop);
	hits = stat_register("test", "hits", false);
	active = stat_register("test", "active", true);
	static bool registered;
	if (!registered) {
		ck_assert_int_eq(rpc_register("test.echo", t_echo, "Returns its params."), 0);
		ck_assert_int_eq(rpc_register("test.add", t_add, "a + b"), 0);
		ck_assert_int_eq(rpc_register("test.hello", t_hello, "greets"), 0);
		ck_assert_int_eq(rpc_register("test.fail", t_fail, "always fails"), 0);
		ck_assert_int_eq(rpc_register("test.unbalanced", t_unbalanced, "bad result"), 0);
		ck_assert_int_eq(rpc_register("test.nothing", t_nothing, "counts a hit"), 0);
		registered = true;
	}
	ck_assert_int_eq(rpc_register("test.echo", t_echo, "again"), -EEXIST);
	ck_assert_int_eq(rpc_register("bad name", t_echo, NULL), -EINVAL);
	ck_assert_int_eq(rpc_register("", t_echo, NULL), -EINVAL);
}

static void start(void)
{
	char err[256] = "";
	ksr_cfg_t cfg = {0};
	cfg.rpc.socket = sock;
	cfg.rpc.http = http;
	int rc = rpc_start(loop, &cfg, err, sizeof(err));
	ck_assert_msg(rc == 0, "rpc_start: %s", err);
}

static void setup_started(void)
{
	setup();
	start();
}

static void teardown(void)
{
	rpc_stop();
	rpc_stop(); /* twice is harmless */
	ev_loop_destroy(loop);
	unlink(sock);
	rmdir(dir);
}

/* -------------------------------------------------------------- client */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_unix(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, sock);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int connect_http(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rpc_http_port())};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_uint_ne(rpc_http_port(), 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* Sends everything, stepping the server while the socket is full. */
static void send_all(int fd, const char *s, size_t n)
{
	double until = now() + 10;
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
		if (k > 0) {
			s += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EPIPE)
			return; /* the server closed: the caller reads why */
		ck_assert_msg(k < 0 && errno == EAGAIN, "send: %s", strerror(errno));
		ck_assert_msg(now() < until, "send timed out");
		ev_run(loop, EVRUN_NOWAIT);
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

typedef bool (*done_fn)(const char *buf, size_t len);

/* Reads into a static buffer until done() says so, the peer closes (*closed), or a timeout. */
static const char *recv_until(int fd, done_fn done, bool *closed)
{
	static char buf[1 << 20];
	size_t len = 0;
	double until = now() + 5;
	if (closed)
		*closed = false;
	for (;;) {
		ev_run(loop, EVRUN_NOWAIT);
		ssize_t k = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (k > 0) {
			len += (size_t)k;
			buf[len] = '\0';
			if (done && done(buf, len))
				return buf;
			continue;
		}
		if (k == 0 || (k < 0 && errno == ECONNRESET)) {
			if (closed)
				*closed = true;
			buf[len] = '\0';
			return buf;
		}
		ck_assert_msg(errno == EAGAIN, "recv: %s", strerror(errno));
		if (now() > until) {
			buf[len] = '\0';
			return buf;
		}
		usleep(200);
	}
}

static bool has_newline(const char *buf, size_t len)
{
	return memchr(buf, '\n', len) != NULL;
}

static bool three_lines(const char *buf, size_t len)
{
	int n = 0;
	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\n';
	return n >= 3;
}

/* One request, one line of answer (without its newline). */
static const char *call_on(int fd, const char *req)
{
	send_str(fd, req);
	send_str(fd, "\n");
	const char *ans = recv_until(fd, has_newline, NULL);
	char *nl = strchr(ans, '\n');
	ck_assert_msg(nl != NULL, "no answer to %s (got \"%s\")", req, ans);
	*nl = '\0';
	return ans;
}

static const char *call(const char *req)
{
	int fd = connect_unix();
	const char *ans = call_on(fd, req);
	close(fd);
	return ans;
}

static void contains(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle) != NULL, "\"%s\" not in \"%s\"", needle, hay);
}

/* ------------------------------------------------------------- jsonrpc */

START_TEST(list_methods)
{
	const char *ans = call("{\"jsonrpc\":\"2.0\",\"method\":\"system.listMethods\",\"id\":1}");
	contains(ans, "\"result\":[");
	contains(ans, "\"core.version\"");
	contains(ans, "\"test.echo\"");
	contains(ans, "\"stats.get_statistics\"");
	contains(ans, "\"id\":1}");
	/* sorted */
	ck_assert(strstr(ans, "\"core.psx\"") < strstr(ans, "\"core.version\""));
	ans = call("{\"jsonrpc\":\"2.0\",\"method\":\"system.methodHelp\",\"params\":[\"test.echo\"],\"id\":2}");
	ck_assert_str_eq(ans, "{\"jsonrpc\":\"2.0\",\"result\":\"Returns its params.\",\"id\":2}");
	ans = call("{\"jsonrpc\":\"2.0\",\"method\":\"system.methodHelp\",\"params\":[\"nope\"],\"id\":3}");
	contains(ans, "\"code\":404");
}
END_TEST

START_TEST(errors)
{
	ck_assert_str_eq(call("{\"jsonrpc\":\"2.0\",\"method\":\"no.such\",\"id\":\"x\"}"),
			 "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32601,\"message\":\"Method not found\"},\"id\":\"x\"}");
	const char *ans = call("{\"jsonrpc\":\"1.0\",\"method\":\"core.version\",\"id\":4}");
	contains(ans, "\"code\":-32600");
	contains(ans, "\"id\":4");
	ans = call("{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":4}");
	contains(ans, "\"code\":-32600");
	ans = call("{\"jsonrpc\":\"2.0\",\"method\":\"test.echo\",\"params\":\"x\",\"id\":4}");
	contains(ans, "\"code\":-32600");
	ans = call("{\"jsonrpc\":\"2.0\",\"method\":\"test.echo\",\"id\":{\"no\":1}}");
	contains(ans, "\"code\":-32600");
	contains(ans, "\"id\":null");
	ans = call("[1]");
	contains(ans, "[{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600");
	ans = call("\"just a string\"");
	contains(ans, "\"code\":-32600");
	/* handler faults carry their code; a result left open is an internal error */
	ck_assert_str_eq(call("{\"jsonrpc\":\"2.0\",\"method\":\"test.fail\",\"id\":5}"),
			 "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":404,\"message\":\"nothing here\"},\"id\":5}");
	ans = call("{\"jsonrpc\":\"2.0\",\"method\":\"test.unbalanced\",\"id\":6}");
	contains(ans, "\"code\":-32603");
	/* "jsonrpc" may be left out, as with Kamailio */
	contains(call("{\"method\":\"test.add\",\"params\":[1,2],\"id\":7}"), "\"result\":3");
}
END_TEST

START_TEST(parse_error_closes)
{
	int fd = connect_unix();
	send_str(fd, "{\"jsonrpc\":\"2.0\",\"method\":}\n{\"method\":\"core.version\",\"id\":1}\n");
	bool closed;
	const char *ans = recv_until(fd, NULL, &closed);
	ck_assert(closed);
	contains(ans, "\"code\":-32700");
	contains(ans, "\"id\":null");
	/* nothing after the bad text was answered: the framing was lost */
	ck_assert_ptr_null(strstr(ans, "\"result\""));
	close(fd);

	fd = connect_unix();
	send_str(fd, "GET / HTTP/1.1\r\n\r\n");
	ans = recv_until(fd, NULL, &closed);
	ck_assert(closed);
	contains(ans, "\"code\":-32700");
	close(fd);
}
END_TEST

START_TEST(params)
{
	ck_assert_str_eq(call("{\"jsonrpc\":\"2.0\",\"method\":\"test.add\",\"params\":[2,3],\"id\":1}"),
			 "{\"jsonrpc\":\"2.0\",\"result\":5,\"id\":1}");
	contains(call("{\"jsonrpc\":\"2.0\",\"method\":\"test.add\",\"params\":{\"b\":40,\"a\":2},\"id\":1}"),
		 "\"result\":42");
	contains(call("{\"jsonrpc\":\"2.0\",\"method\":\"test.add\",\"params\":[\"-7\"],\"id\":1}"), "\"result\":-7");
	const char *ans = call("{\"jsonrpc\":\"2.0\",\"method\":\"test.add\",\"id\":1}");
	contains(ans, "\"code\":-32602");
	contains(ans, "missing parameter 1 (a)");
	ans = call("{\"jsonrpc\":\"2.0\",\"method\":\"test.add\",\"params\":[1,\"two\"],\"id\":1}");
	contains(ans, "\"code\":-32602");
	contains(ans, "parameter 2 (b): expected an integer, got string");
	ans = call("{\"jsonrpc\":\"2.0\",\"method\":\"test.add\",\"params\":[1.5],\"id\":1}");
	contains(ans, "expected an integer, got number");
	contains(call("{\"jsonrpc\":\"2.0\",\"method\":\"test.hello\",\"params\":[\"w\\u00f6rld\"],\"id\":1}"),
		 "\"result\":\"hello w\xc3\xb6rld\"");
	/* ksrctl sends 1001 as a number: a string parameter takes its text */
	contains(call("{\"jsonrpc\":\"2.0\",\"method\":\"test.hello\",\"params\":[1001],\"id\":1}"),
		 "\"result\":\"hello 1001\"");
	ans = call("{\"jsonrpc\":\"2.0\",\"method\":\"test.hello\",\"params\":[[1]],\"id\":1}");
	contains(ans, "expected a string, got array");
	/* params come through intact, numbers as written */
	ck_assert_str_eq(call("{\"method\":\"test.echo\",\"params\":{\"n\":12345678901234567890,\"s\":\"\\n\"},"
			      "\"id\":9}"),
			 "{\"jsonrpc\":\"2.0\",\"result\":{\"n\":12345678901234567890,\"s\":\"\\n\"},\"id\":9}");
	/* no params at all: the handler sees NULL, the result is null */
	ck_assert_str_eq(call("{\"method\":\"test.echo\",\"id\":null}"), "{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":null}");
}
END_TEST

START_TEST(batch)
{
	uint64_t before = stat_get(hits);
	const char *ans = call("[{\"jsonrpc\":\"2.0\",\"method\":\"test.add\",\"params\":[1,1],\"id\":1},"
			       "{\"jsonrpc\":\"2.0\",\"method\":\"test.nothing\"},"
			       "{\"jsonrpc\":\"2.0\",\"method\":\"no.such\",\"id\":2},"
			       "{\"jsonrpc\":\"2.0\",\"method\":\"no.such\"},"
			       "{\"jsonrpc\":\"2.0\",\"method\":\"test.fail\"},"
			       "7]");
	ck_assert_str_eq(ans, "[{\"jsonrpc\":\"2.0\",\"result\":2,\"id\":1},"
			      "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32601,\"message\":\"Method not found\"},\"id\":2},"
			      "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600,\"message\":\"Invalid Request: not an "
			      "object\"},\"id\":null}]");
	ck_assert_uint_eq(stat_get(hits), before + 1);
	contains(call("[]"), "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32600");

	/* notifications only: no answer at all, the next request's answer comes first */
	int fd = connect_unix();
	send_str(fd, "[{\"method\":\"test.nothing\"},{\"method\":\"test.nothing\"}]\n{\"method\":\"test.nothing\"}\n");
	ans = call_on(fd, "{\"method\":\"test.add\",\"params\":[40,2],\"id\":3}");
	ck_assert_str_eq(ans, "{\"jsonrpc\":\"2.0\",\"result\":42,\"id\":3}");
	ck_assert_uint_eq(stat_get(hits), before + 4);
	close(fd);
}
END_TEST

START_TEST(framing)
{
	/* several requests in one write, with or without separators */
	int fd = connect_unix();
	send_str(fd, "{\"method\":\"test.add\",\"params\":[1],\"id\":1}{\"method\":\"test.add\",\"params\":[2],\"id\":2}"
		     "\r\n  [{\"method\":\"test.add\",\"params\":[3],\"id\":3}]");
	const char *ans = recv_until(fd, three_lines, NULL);
	ck_assert_str_eq(ans, "{\"jsonrpc\":\"2.0\",\"result\":1,\"id\":1}\n"
			      "{\"jsonrpc\":\"2.0\",\"result\":2,\"id\":2}\n"
			      "[{\"jsonrpc\":\"2.0\",\"result\":3,\"id\":3}]\n");

	/* one request a byte at a time, braces and quotes inside strings */
	const char *req = "{\"method\":\"test.echo\",\"params\":[\"}{\\\"]\"],\"id\":4}";
	for (const char *p = req; *p; p++) {
		send_all(fd, p, 1);
		ev_run(loop, EVRUN_NOWAIT);
	}
	send_str(fd, "\n");
	ans = recv_until(fd, has_newline, NULL);
	ck_assert_str_eq(ans, "{\"jsonrpc\":\"2.0\",\"result\":[\"}{\\\"]\"],\"id\":4}\n");
	close(fd);

	/* a client that never finishes does not hold up another */
	int slow = connect_unix();
	send_str(slow, "{\"method\":\"test.add\",\"params\":[");
	ck_assert_str_eq(call("{\"method\":\"test.add\",\"params\":[5],\"id\":5}"),
			 "{\"jsonrpc\":\"2.0\",\"result\":5,\"id\":5}");
	send_str(slow, "6],\"id\":6}\n");
	ck_assert_str_eq(recv_until(slow, has_newline, NULL), "{\"jsonrpc\":\"2.0\",\"result\":6,\"id\":6}\n");
	close(slow);
}
END_TEST

START_TEST(too_large)
{
	int fd = connect_unix();
	size_t n = RPC_MAX_REQUEST + 4096;
	char *big = malloc(n);
	ck_assert_ptr_nonnull(big);
	memset(big, ' ', n);
	memcpy(big, "[\"", 2);
	send_all(fd, big, n);
	free(big);
	bool closed;
	const char *ans = recv_until(fd, NULL, &closed);
	ck_assert(closed);
	contains(ans, "\"code\":-32600");
	contains(ans, "larger than 1 MB");
	close(fd);
}
END_TEST

/* ------------------------------------------------------------ built-ins */

START_TEST(core_methods)
{
	const char *ans = call("{\"method\":\"core.version\",\"id\":1}");
	contains(ans, "\"name\":\"ksrd\"");
	contains(ans, "\"version\":\"");
	contains(ans, "\"build_flags\":\"");
	ans = call("{\"method\":\"core.uptime\",\"id\":1}");
	contains(ans, "\"now\":\"");
	contains(ans, "\"up_since\":\"");
	contains(ans, "\"uptime\":0");
	/* no workers in this process */
	ck_assert_str_eq(call("{\"method\":\"core.psx\",\"id\":1}"), "{\"jsonrpc\":\"2.0\",\"result\":[],\"id\":1}");
	ans = call("{\"method\":\"core.shmmem\",\"id\":1}");
	static const char *fields[] = {"total", "free", "used", "real_used", "max_used", "fragments"};
	for (size_t i = 0; i < 6; i++) {
		char key[32];
		snprintf(key, sizeof(key), "\"%s\":", fields[i]);
		contains(ans, key);
	}
	ck_assert_ptr_null(strstr(ans, "\"real_used\":0,"));
}
END_TEST

START_TEST(statistics)
{
	atomic_store(&hits->value, 3);
	atomic_store(&active->value, 7);
	const char *want = "{\"jsonrpc\":\"2.0\",\"result\":[\"test:hits = 3\",\"test:active = 7\"],\"id\":1}";
	ck_assert_str_eq(call("{\"method\":\"stats.get_statistics\",\"params\":[\"test\"],\"id\":1}"), want);
	ck_assert_str_eq(call("{\"method\":\"stats.get_statistics\",\"params\":[\"test:\"],\"id\":1}"), want);
	ck_assert_str_eq(call("{\"method\":\"stats.get_statistics\",\"params\":[\"test:hits\"],\"id\":1}"),
			 "{\"jsonrpc\":\"2.0\",\"result\":[\"test:hits = 3\"],\"id\":1}");
	ck_assert_str_eq(call("{\"method\":\"stats.get_statistics\",\"params\":[\"hits\",\"test:active\"],\"id\":1}"),
			 want);
	contains(call("{\"method\":\"stats.get_statistics\",\"params\":[\"all\"],\"id\":1}"), "\"test:active = 7\"");
	contains(call("{\"method\":\"stats.get_statistics\",\"id\":1}"), "\"test:hits = 3\"");
	contains(call("{\"method\":\"stats.get_statistics\",\"params\":[\"nope:\"],\"id\":1}"), "\"code\":404");
	contains(call("{\"method\":\"stats.fetch\",\"params\":[\"test\"],\"id\":1}"),
		 "\"result\":{\"test.hits\":3,\"test.active\":7}");

	/* reset touches counters, not gauges */
	ck_assert_str_eq(call("{\"method\":\"stats.reset_statistics\",\"params\":[\"test\"],\"id\":1}"),
			 "{\"jsonrpc\":\"2.0\",\"result\":null,\"id\":1}");
	ck_assert_uint_eq(stat_get(hits), 0);
	ck_assert_uint_eq(stat_get(active), 7);
	atomic_store(&hits->value, 2);
	call("{\"method\":\"stats.clear_statistics\",\"params\":[\"test:hits\"],\"id\":1}");
	ck_assert_uint_eq(stat_get(hits), 0);
	contains(call("{\"method\":\"stats.reset_statistics\",\"params\":[\"nope:x\"],\"id\":1}"), "\"code\":404");
}
END_TEST

/* ----------------------------------------------------------------- http */

/* True once a whole response (head + Content-Length body) is in. */
static bool http_done(const char *buf, size_t len)
{
	const char *end = strstr(buf, "\r\n\r\n");
	if (!end)
		return false;
	const char *cl = strstr(buf, "Content-Length: ");
	size_t body = cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0;
	return len >= (size_t)(end + 4 - buf) + body;
}

static const char *http_on(int fd, const char *req)
{
	send_str(fd, req);
	return recv_until(fd, http_done, NULL);
}

static const char *http_req(const char *req)
{
	int fd = connect_http();
	const char *ans = http_on(fd, req);
	close(fd);
	return ans;
}

static const char *post(const char *path, const char *body, const char *extra)
{
	static char req[4096];
	snprintf(req, sizeof(req),
		 "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
		 path, extra, strlen(body), body);
	return req;
}

START_TEST(http_rpc)
{
	int fd = connect_http();
	const char *ans = http_on(fd, post("/RPC", "{\"jsonrpc\":\"2.0\",\"method\":\"test.add\",\"params\":[20,22],\"id\":1}", ""));
	contains(ans, "HTTP/1.1 200 OK\r\n");
	contains(ans, "Content-Type: application/json\r\n");
	contains(ans, "Connection: keep-alive\r\n");
	contains(ans, "\r\n\r\n{\"jsonrpc\":\"2.0\",\"result\":42,\"id\":1}");
	/* the same connection again, at "/" */
	ans = http_on(fd, post("/", "{\"method\":\"core.version\",\"id\":2}", ""));
	contains(ans, "\"name\":\"ksrd\"");
	/* a JSON-RPC error is still HTTP 200 */
	ans = http_on(fd, post("/RPC", "{\"method\":", ""));
	contains(ans, "HTTP/1.1 200 OK\r\n");
	contains(ans, "\"code\":-32700");
	/* notifications only: 204 without a body */
	ans = http_on(fd, post("/RPC", "{\"method\":\"test.nothing\"}", ""));
	contains(ans, "HTTP/1.1 204 No Content\r\n");
	ck_assert_ptr_null(strstr(ans, "Content-Length"));
	/* Connection: close is honoured */
	ans = http_on(fd, post("/RPC", "[{\"method\":\"test.add\",\"params\":[1],\"id\":1}]", "Connection: close\r\n"));
	contains(ans, "Connection: close\r\n");
	bool closed;
	recv_until(fd, NULL, &closed);
	ck_assert(closed);
	close(fd);

	/* a body sent after "100 Continue", as curl does with large bodies */
	fd = connect_http();
	send_str(fd, "POST /RPC HTTP/1.1\r\nHost: localhost:1\r\nExpect: 100-continue\r\nContent-Length: 32\r\n\r\n");
	ans = recv_until(fd, http_done, NULL);
	ck_assert_str_eq(ans, "HTTP/1.1 100 Continue\r\n\r\n");
	ans = http_on(fd, "{\"method\":\"test.echo\",\"id\":10}  "); /* 32 bytes */
	contains(ans, "HTTP/1.1 200 OK");
	contains(ans, "\"result\":null,\"id\":10}");
	close(fd);
}
END_TEST

START_TEST(http_metrics)
{
	atomic_store(&hits->value, 11);
	atomic_store(&active->value, 2);
	const char *ans = http_req("GET /metrics HTTP/1.1\r\nHost: [::1]:9\r\n\r\n");
	contains(ans, "HTTP/1.1 200 OK\r\n");
	contains(ans, "Content-Type: text/plain; version=0.0.4");
	contains(ans, "\n# TYPE ksrd_test_hits counter\nksrd_test_hits 11\n");
	contains(ans, "\n# TYPE ksrd_test_active gauge\nksrd_test_active 2\n");
	/* HTTP/1.0 closes by default */
	ans = http_req("GET /metrics?x=1 HTTP/1.0\r\n\r\n");
	contains(ans, "Connection: close\r\n");
	contains(ans, "ksrd_test_hits 11\n");
}
END_TEST

START_TEST(http_refusals)
{
	contains(http_req("GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n"), "HTTP/1.1 404 Not Found\r\n");
	const char *ans = http_req("GET /RPC HTTP/1.1\r\nHost: localhost\r\n\r\n");
	contains(ans, "HTTP/1.1 405 Method Not Allowed\r\n");
	contains(ans, "Allow: POST\r\n");
	contains(http_req("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), "Allow: GET\r\n");
	contains(http_req("POST /RPC HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"), "HTTP/1.1 413 ");
	contains(http_req("POST /RPC HTTP/1.1\r\n\r\n"), "HTTP/1.1 411 ");
	contains(http_req("POST /RPC HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), "HTTP/1.1 501 ");
	contains(http_req(post("/RPC", "{}", "Origin: http://evil.example\r\n")), "HTTP/1.1 403 ");
	contains(http_req("GET /metrics HTTP/1.1\r\nHost: evil.example\r\n\r\n"), "HTTP/1.1 403 ");
	contains(http_req("BLAH\r\n\r\n"), "HTTP/1.1 400 ");
	contains(http_req("GET /metrics HTTP/2.0\r\n\r\n"), "HTTP/1.1 505 ");
	contains(http_req("GET /metrics HTTP/1.1\r\nbad header\r\n\r\n"), "HTTP/1.1 400 ");
	contains(http_req("POST /RPC HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"), "HTTP/1.1 400 ");
	contains(http_req("POST /RPC HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), "HTTP/1.1 400 ");

	/* a head that never ends */
	int fd = connect_http();
	char junk[1024];
	memset(junk, 'x', sizeof(junk));
	send_str(fd, "GET /metrics HTTP/1.1\r\nX: ");
	for (int i = 0; i < 20; i++)
		send_all(fd, junk, sizeof(junk));
	bool closed;
	ans = recv_until(fd, NULL, &closed);
	ck_assert(closed);
	contains(ans, "HTTP/1.1 431 ");
	close(fd);
}
END_TEST

/* ------------------------------------------------------------ lifecycle */

START_TEST(socket_file)
{
	struct stat st;
	ck_assert_int_eq(stat(sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	char err[256];
	ksr_cfg_t cfg = {0};
	cfg.rpc.socket = sock;
	ck_assert_int_eq(rpc_start(loop, &cfg, err, sizeof(err)), -EALREADY);
	rpc_stop();
	ck_assert_int_eq(stat(sock, &st), -1); /* removed on stop */
}
END_TEST

START_TEST(stale_and_live)
{
	char err[256] = "";
	ksr_cfg_t cfg = {0};
	cfg.rpc.socket = sock;

	/* a socket file nobody listens on is stale: replaced */
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, sock);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(rpc_start(loop, &cfg, err, sizeof(err)), 0);
	contains(call("{\"method\":\"test.add\",\"params\":[1],\"id\":1}"), "\"result\":1");
	rpc_stop();

	/* a live server is left alone */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_lt(rpc_start(loop, &cfg, err, sizeof(err)), 0);
	contains(err, "another server");
	close(fd);
	unlink(sock);

	/* so is a file that is not a socket */
	FILE *f = fopen(sock, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_lt(rpc_start(loop, &cfg, err, sizeof(err)), 0);
	contains(err, "not a socket");
	unlink(sock);

	/* HTTP only on loopback */
	cfg.rpc.socket = NULL;
	cfg.rpc.http = (char *)"0.0.0.0:8080";
	ck_assert_int_lt(rpc_start(loop, &cfg, err, sizeof(err)), 0);
	contains(err, "loopback");
	cfg.rpc.http = (char *)"[::1]:0";
	ck_assert_int_eq(rpc_start(loop, &cfg, err, sizeof(err)), 0);
	ck_assert_uint_ne(rpc_http_port(), 0);
	rpc_stop();
}
END_TEST

static Suite *rpc_suite(void)
{
	Suite *s = suite_create("rpc");
	TCase *tc = tcase_create("jsonrpc");
	tcase_add_checked_fixture(tc, setup_started, teardown);
	tcase_add_test(tc, list_methods);
	tcase_add_test(tc, errors);
	tcase_add_test(tc, parse_error_closes);
	tcase_add_test(tc, params);
	tcase_add_test(tc, batch);
	tcase_add_test(tc, framing);
	tcase_add_test(tc, too_large);
	tcase_add_test(tc, core_methods);
	tcase_add_test(tc, statistics);
	suite_add_tcase(s, tc);
	tc = tcase_create("http");
	tcase_add_checked_fixture(tc, setup_started, teardown);
	tcase_add_test(tc, http_rpc);
	tcase_add_test(tc, http_metrics);
	tcase_add_test(tc, http_refusals);
	suite_add_tcase(s, tc);
	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, setup_started, teardown);
	tcase_add_test(tc, socket_file);
	suite_add_tcase(s, tc);
	tc = tcase_create("start");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, stale_and_live);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	atomic_store(&log_level, L_WARN); /* the start-up notices of every test are noise here */
	SRunner *sr = srunner_create(rpc_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
