// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * The control plane: a JSON-RPC 2.0 server on the main thread's event loop.
 *
 * Transports. A unix stream socket (cfg rpc.socket, mode 0600) carrying JSON
 * texts back to back: each request is one JSON value (an object, or a batch
 * array), answered by one JSON value followed by "\n"; several requests may
 * share a connection. Bad JSON loses the framing, so it is answered with -32700
 * and the connection is closed. When rpc.http is set (a loopback address only),
 * a minimal HTTP/1.1 server too: POST /RPC (or /) with a JSON-RPC body, and
 * GET /metrics with every statistic in Prometheus text format. Requests are
 * bounded (1 MB), idle connections are closed (30 s), and all I/O is
 * non-blocking, so a stuck client never holds up the main thread. "jsonrpc":
 * "2.0" is checked when present and tolerated when absent (as Kamailio's
 * jsonrpcs does).
 *
 * Methods. Subsystems register theirs with rpc_register() at start-up, on the
 * main thread; names follow Kamailio's ("tm.stats", "ul.dump"). A handler runs
 * on the main thread, synchronously: it must not block, and it reads worker
 * state only through thread-safe accessors. It gets the params (an array, an
 * object, or NULL when none were sent) and either writes exactly one JSON value
 * through rpc_result(), or calls rpc_fault(). Writing nothing answers null; a
 * fault discards whatever was written.
 *
 *	static void ul_lookup(rpc_req_t *r, const json_t *params)
 *	{
 *		str_t aor;
 *		if (rpc_param_str(r, 0, "aor", &aor) < 0)
 *			return;                        // already faulted with -32602
 *		const contact_t *c = ul_find(aor);
 *		if (!c) {
 *			rpc_fault(r, RPC_E_NOT_FOUND, "AOR not found: %.*s", STR_FMT(aor));
 *			return;
 *		}
 *		json_w_t *w = rpc_result(r);
 *		json_w_obj_begin(w);
 *		json_w_kstr(w, "contact", c->uri);
 *		json_w_kint(w, "expires", c->expires);
 *		json_w_obj_end(w);
 *	}
 *	...
 *	rpc_register("ul.lookup", ul_lookup, "Contacts of an AOR: ul.lookup AOR");
 *
 * Error codes. The -32xxx codes are JSON-RPC's own and are set by the server:
 * -32700 parse error, -32600 invalid request, -32601 method not found, -32602
 * invalid params (also from the rpc_param_* helpers), -32603 internal error
 * (e.g. a handler that left its result unbalanced). Handlers report their own
 * failures with HTTP-like codes, as Kamailio's RPC does: 400 bad request (params
 * well-formed but meaningless), 404 not found, 500 failed, 503 busy/unavailable.
 */
#include <stdbool.h>
#include <stddef.h>

#include "../cfg/cfg.h"
#include "../lib/arena.h"
#include "../lib/json.h"
#include "../lib/str.h"

struct ev_loop;

enum {
	RPC_E_PARSE = -32700,
	RPC_E_INVALID = -32600,
	RPC_E_METHOD = -32601,
	RPC_E_PARAMS = -32602,
	RPC_E_INTERNAL = -32603,
	RPC_E_BAD = 400,
	RPC_E_NOT_FOUND = 404,
	RPC_E_FAILED = 500,
	RPC_E_BUSY = 503,
};

/* Upper bound of one request (one JSON text or one HTTP body). */
#define RPC_MAX_REQUEST (1024 * 1024)

typedef struct rpc_req rpc_req_t;
typedef void (*rpc_handler_t)(rpc_req_t *r, const json_t *params);

/*
 * Adds a method. method and doc are copied. Call on the main thread, normally
 * before rpc_start(). Returns 0, -EEXIST for a name already taken, -EINVAL for
 * an empty name or one with spaces, -ENOMEM.
 */
int rpc_register(const char *method, rpc_handler_t fn, const char *doc);

/*
 * Opens the unix socket (unless cfg->rpc.socket is NULL or empty) and the HTTP
 * listener (when cfg->rpc.http is set) on loop. A stale socket file is
 * replaced; a live server on the same path, a path that is not a socket, or a
 * non-loopback HTTP address are refused. Returns 0, or a negative errno with
 * one line in errbuf.
 */
int rpc_start(struct ev_loop *loop, const ksr_cfg_t *cfg, char *errbuf, size_t errlen);
/* Closes listeners and connections and removes the socket file. Safe to call twice. */
void rpc_stop(void);
/* The bound HTTP port (useful when configured as port 0, as tests do), or 0 when off. */
unsigned rpc_http_port(void);

/* ------------------------------------------------------- inside a handler */

/* Where the result goes: write exactly one value. Borrowed, valid during the call. */
json_w_t *rpc_result(rpc_req_t *r);
/* Answers with an error instead of a result; the first fault wins. */
void rpc_fault(rpc_req_t *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Scratch memory released after the request is answered. */
arena_t *rpc_arena(rpc_req_t *r);
/* The method being called, e.g. for a handler shared by aliases. */
const char *rpc_method(const rpc_req_t *r);

/*
 * Parameter access, positional or named: parameter idx (0-based) when params
 * is an array, member `name` when it is an object. NULL when absent.
 */
const json_t *rpc_param(const rpc_req_t *r, unsigned idx, const char *name);

/*
 * Typed reads. They return 0, or fault with -32602 ("missing parameter 1
 * (aor)", "parameter 2 (expires): expected an integer, got string") and return
 * -EINVAL: the handler just returns. The opt variants leave *out untouched and
 * return 0 when the parameter is absent or null, so set the default first.
 *
 * A string parameter also accepts a number and yields its text, because ksrctl
 * sends an argument that looks like an integer as a number ("ul.lookup 1001").
 * An integer parameter also accepts a string holding a decimal integer. The
 * string is borrowed from the request: valid until the handler returns.
 */
int rpc_param_str(rpc_req_t *r, unsigned idx, const char *name, str_t *out);
int rpc_param_int(rpc_req_t *r, unsigned idx, const char *name, long long *out);
int rpc_param_opt_str(rpc_req_t *r, unsigned idx, const char *name, str_t *out);
int rpc_param_opt_int(rpc_req_t *r, unsigned idx, const char *name, long long *out);
