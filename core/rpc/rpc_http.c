// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "rpc_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int bad(rpc_http_req_t *q, int status, const char *why)
{
	q->why = why;
	return -status;
}

/* Offset just past the empty line ending the head, or 0 when it has not arrived. */
static size_t head_end(const char *buf, size_t pos, size_t len)
{
	for (size_t i = pos; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* The next line in [*pos, end), without its CRLF or LF. */
static str_t next_line(const char *buf, size_t *pos, size_t end)
{
	const char *s = buf + *pos;
	const char *nl = memchr(s, '\n', end - *pos);
	size_t n = nl ? (size_t)(nl - s) : end - *pos;
	*pos += n + (nl ? 1 : 0);
	if (n && s[n - 1] == '\r')
		n--;
	return str_from(s, n);
}

static bool host_is_loopback(str_t h)
{
	char ip[64];
	str_t host = h;
	if (h.len && h.s[0] == '[') {
		const char *close = memchr(h.s, ']', h.len);
		if (!close)
			return false;
		host = str_from(h.s + 1, (size_t)(close - h.s) - 1);
	} else {
		const char *colon = memchr(h.s, ':', h.len);
		if (colon)
			host.len = (size_t)(colon - h.s);
	}
	if (str_caseeq_lit(host, "localhost"))
		return true;
	if (host.len >= sizeof(ip))
		return false;
	memcpy(ip, host.s, host.len);
	ip[host.len] = '\0';
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, ip, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, ip, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static bool has_token(str_t list, const char *token)
{
	while (list.len) {
		const char *comma = memchr(list.s, ',', list.len);
		size_t n = comma ? (size_t)(comma - list.s) : list.len;
		if (str_caseeq_lit(str_trim(str_from(list.s, n)), token))
			return true;
		list = comma ? str_from(comma + 1, list.len - n - 1) : STR_NULL;
	}
	return false;
}

typedef struct {
	bool have_length;
} head_state_t;

static int header(rpc_http_req_t *q, head_state_t *st, str_t name, str_t value)
{
	if (str_caseeq_lit(name, "content-length")) {
		unsigned long long n;
		if (!str_to_u64(value, (unsigned long long)SIZE_MAX, &n))
			return bad(q, 400, "bad Content-Length");
		if (st->have_length && n != q->content_length)
			return bad(q, 400, "conflicting Content-Length headers");
		st->have_length = true;
		q->content_length = (size_t)n;
	} else if (str_caseeq_lit(name, "transfer-encoding")) {
		return bad(q, 501, "Transfer-Encoding is not supported: send Content-Length");
	} else if (str_caseeq_lit(name, "connection")) {
		if (has_token(value, "close"))
			q->keep_alive = false;
		else if (has_token(value, "keep-alive"))
			q->keep_alive = true;
	} else if (str_caseeq_lit(name, "expect")) {
		if (!str_caseeq_lit(value, "100-continue"))
			return bad(q, 417, "only \"Expect: 100-continue\" is understood");
		q->expect_continue = true;
	} else if (str_caseeq_lit(name, "origin")) {
		return bad(q, 403, "requests from web pages are refused");
	} else if (str_caseeq_lit(name, "host")) {
		if (!host_is_loopback(value))
			return bad(q, 403, "Host must be a loopback address or localhost");
	}
	return 0;
}

static int request_line(rpc_http_req_t *q, str_t line, str_t *method, str_t *path)
{
	const char *sp1 = memchr(line.s, ' ', line.len);
	if (!sp1)
		return bad(q, 400, "bad request line");
	const char *t = sp1 + 1;
	size_t rest = line.len - (size_t)(t - line.s);
	const char *sp2 = memchr(t, ' ', rest);
	if (!sp2)
		return bad(q, 400, "bad request line");
	*method = str_from(line.s, (size_t)(sp1 - line.s));
	str_t target = str_from(t, (size_t)(sp2 - t));
	str_t version = str_from(sp2 + 1, rest - target.len - 1);
	if (str_eq(version, STR_LIT("HTTP/1.1")))
		q->keep_alive = true;
	else if (str_eq(version, STR_LIT("HTTP/1.0")))
		q->keep_alive = false;
	else
		return bad(q, version.len > 5 && !memcmp(version.s, "HTTP/", 5) ? 505 : 400, "bad HTTP version");
	if (!method->len || !target.len || target.s[0] != '/')
		return bad(q, 400, "bad request line");
	const char *query = memchr(target.s, '?', target.len);
	*path = query ? str_from(target.s, (size_t)(query - target.s)) : target;
	return 0;
}

static int route(rpc_http_req_t *q, str_t method, str_t path, bool have_length)
{
	if (str_eq(path, STR_LIT("/RPC")) || str_eq(path, STR_LIT("/"))) {
		q->route = RPC_HTTP_RPC;
		q->allow = "POST";
		if (!str_eq(method, STR_LIT("POST")))
			return bad(q, 405, "JSON-RPC takes POST");
		if (!have_length)
			return bad(q, 411, "Content-Length required");
	} else if (str_eq(path, STR_LIT("/metrics"))) {
		q->route = RPC_HTTP_METRICS;
		q->allow = "GET";
		if (!str_eq(method, STR_LIT("GET")))
			return bad(q, 405, "/metrics takes GET");
	} else {
		return bad(q, 404, "try POST /RPC or GET /metrics");
	}
	if (q->content_length > RPC_MAX_REQUEST)
		return bad(q, 413, "the body is larger than 1 MB");
	return 0;
}

int rpc_http_head(const char *buf, size_t len, rpc_http_req_t *q)
{
	*q = (rpc_http_req_t){0};
	size_t pos = 0;
	/* an extra CRLF after a body is tolerated, as RFC 9112 asks */
	while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n'))
		pos++;
	size_t end = head_end(buf, pos, len < RPC_HTTP_MAX_HEAD ? len : RPC_HTTP_MAX_HEAD);
	if (!end)
		return len >= RPC_HTTP_MAX_HEAD ? bad(q, 431, "request head larger than 16 kB") : 0;
	str_t method, path;
	int rc = request_line(q, next_line(buf, &pos, end), &method, &path);
	if (rc < 0)
		return rc;
	head_state_t st = {0};
	for (;;) {
		str_t line = next_line(buf, &pos, end);
		if (!line.len)
			break;
		const char *colon = memchr(line.s, ':', line.len);
		str_t name = str_from(line.s, colon ? (size_t)(colon - line.s) : 0);
		if (!colon || !name.len || memchr(name.s, ' ', name.len) || memchr(name.s, '\t', name.len))
			return bad(q, 400, "bad header line");
		rc = header(q, &st, name, str_trim(str_from(colon + 1, line.len - name.len - 1)));
		if (rc < 0)
			return rc;
	}
	rc = route(q, method, path, st.have_length);
	return rc < 0 ? rc : (int)end;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	}
	return "Error";
}

static void respond(rpc_buf_t *out, int status, const char *ctype, str_t body, bool keep, const char *allow)
{
	rpc_buf_printf(out, "HTTP/1.1 %d %s\r\n", status, reason(status));
	if (status != 204)
		rpc_buf_printf(out, "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, body.len);
	if (allow)
		rpc_buf_printf(out, "Allow: %s\r\n", allow);
	rpc_buf_printf(out, "Cache-Control: no-store\r\nConnection: %s\r\n\r\n", keep ? "keep-alive" : "close");
	rpc_buf_put(out, body.s, body.len);
}

void rpc_http_error(rpc_buf_t *out, int status, const rpc_http_req_t *q)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, reason(status), q->why ? q->why : "");
	respond(out, status, "text/plain; charset=utf-8", str_from(body, (size_t)n), false,
		status == 405 ? q->allow : NULL);
}

void rpc_http_handle(const rpc_http_req_t *q, const char *body, json_w_t *scratch, rpc_buf_t *out)
{
	if (q->route == RPC_HTTP_METRICS) {
		rpc_buf_t m = {0};
		rpc_metrics(&m);
		if (m.err) {
			rpc_http_error(out, 500, &(rpc_http_req_t){.why = "out of memory"});
		} else {
			respond(out, 200, "text/plain; version=0.0.4; charset=utf-8", str_from(m.s ? m.s : "", m.len),
				q->keep_alive, NULL);
		}
		rpc_buf_free(&m);
		return;
	}
	/* a JSON-RPC error is still a successful HTTP exchange: the status stays 200 */
	rpc_process(body, q->content_length, scratch);
	if (!scratch->len)
		respond(out, 204, NULL, STR_NULL, q->keep_alive, NULL);
	else
		respond(out, 200, "application/json", json_w_text(scratch), q->keep_alive, NULL);
}

const char *rpc_http_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	str_t s = str_cstr(spec);
	const char *colon = s.len ? strrchr(spec, ':') : NULL;
	if (!colon)
		return "expected ADDRESS:PORT";
	str_t h = str_from(spec, (size_t)(colon - spec));
	unsigned long long port;
	if (!str_to_u64(str_cstr(colon + 1), 65535, &port))
		return "bad port";
	bool v6 = h.len >= 2 && h.s[0] == '[' && h.s[h.len - 1] == ']';
	if (v6)
		h = str_from(h.s + 1, h.len - 2);
	if (h.len >= sizeof(host))
		return "bad address";
	memcpy(host, h.s, h.len);
	host[h.len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return "bad IPv6 address";
		if (!IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return "the control endpoint must be on a loopback address (::1)";
		*len = sizeof(*a);
		return NULL;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return "bad IPv4 address (IPv6 goes in brackets)";
	if ((ntohl(a->sin_addr.s_addr) >> 24) != 127)
		return "the control endpoint must be on a loopback address (127.0.0.0/8)";
	*len = sizeof(*a);
	return NULL;
}
