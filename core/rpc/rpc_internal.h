// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Internal to core/rpc: what the transports (rpc_net.c), the dispatcher
 * (rpc.c) and the built-in methods (rpc_core.c) share.
 */
#include <stdbool.h>
#include <stddef.h>

#include "rpc.h"

/* A growing byte buffer; like json_w_t, errors are sticky. */
typedef struct {
	char *s; /* owned */
	size_t len;
	size_t cap;
	bool err;
} rpc_buf_t;

void rpc_buf_put(rpc_buf_t *b, const char *s, size_t n);
void rpc_buf_printf(rpc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rpc_buf_free(rpc_buf_t *b);

/*
 * Answers one JSON-RPC text (a request or a batch) and writes the response
 * into out, which is left empty when nothing is to be sent back (notifications
 * only). Returns 0, or RPC_E_PARSE when the text is not JSON (out then holds
 * the -32700 error response).
 */
int rpc_process(const char *text, size_t len, json_w_t *out);

/* Replaces out with an error response with a null id (for transport-level errors). */
void rpc_error_response(json_w_t *out, int code, const char *msg);

/* Writes every statistic in Prometheus text exposition format. */
void rpc_metrics(rpc_buf_t *out);

/* Registers core.*, system.* and stats.* methods (once). */
int rpc_core_register(void);
/* Remembers when the server started, for core.uptime. */
void rpc_core_started(void);

/* The registry, for system.listMethods and system.methodHelp. */
size_t rpc_method_count(void);
const char *rpc_method_name(size_t idx);
/* NULL when no such method. */
const char *rpc_method_doc(const char *name);

/* Drops the dispatcher's scratch memory (called by rpc_stop). */
void rpc_dispatch_free(void);
