// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Internal to core/rpc: the HTTP/1.1 subset the control endpoint speaks.
 * Bodies are framed by Content-Length only (no chunked encoding). Routes:
 * POST /RPC and POST / (JSON-RPC), GET /metrics (Prometheus). Every error
 * response closes the connection, so a request whose body was not read never
 * leaves the stream out of step.
 *
 * The endpoint is loopback-only, and since a web browser on the same machine
 * can reach loopback too, it refuses requests that carry an Origin header
 * (browsers send one with every POST) and requests whose Host is not a loopback
 * address or "localhost" (DNS rebinding).
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "rpc_internal.h"

#define RPC_HTTP_MAX_HEAD 16384

typedef enum { RPC_HTTP_RPC = 1, RPC_HTTP_METRICS } rpc_http_route_t;

typedef struct {
	rpc_http_route_t route;
	size_t content_length;
	bool keep_alive;
	bool expect_continue;
	const char *why;   /* error: what was wrong, for the response body */
	const char *allow; /* 405: the method the route takes */
} rpc_http_req_t;

/*
 * Parses a request head at buf. Returns its length once complete (including
 * the empty line), 0 when more bytes are needed, or -STATUS (e.g. -400, -404)
 * with q->why set.
 */
int rpc_http_head(const char *buf, size_t len, rpc_http_req_t *q);
/* Answers a request whose body (q->content_length bytes) has arrived. */
void rpc_http_handle(const rpc_http_req_t *q, const char *body, json_w_t *scratch, rpc_buf_t *out);
/* Writes an error response; the connection must be closed after it. */
void rpc_http_error(rpc_buf_t *out, int status, const rpc_http_req_t *q);
/* Parses "IPv4:PORT" or "[IPv6]:PORT"; only loopback addresses. NULL or what is wrong. */
const char *rpc_http_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len);
