// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * auth.failures: the sources that failed to authenticate, most failures first
 * (what a fail2ban-style job or an operator looks at). Runs on the main thread
 * and reads the per-source table through its locks.
 */
#include <stdlib.h>

#include "../rpc/rpc.h"
#include "auth_int.h"

#define MAX_ROWS 1024 /* the table holds SRC_SETS * SRC_WAYS = 1024 sources */

typedef struct {
	net_addr_t ip;
	uint64_t count, last;
} row_t;

typedef struct {
	row_t rows[MAX_ROWS];
	unsigned n;
} rows_t;

static void collect(const net_addr_t *ip, uint64_t count, uint64_t last, void *arg)
{
	rows_t *r = arg;
	if (r->n < MAX_ROWS)
		r->rows[r->n++] = (row_t){*ip, count, last};
}

static int by_count_desc(const void *a, const void *b)
{
	const row_t *x = a, *y = b;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->last < y->last ? 1 : x->last > y->last ? -1 : 0;
}

static void rpc_failures(rpc_req_t *r, const json_t *params)
{
	long long limit = 100;
	(void)params;
	if (rpc_param_opt_int(r, 0, "limit", &limit) < 0)
		return;
	rows_t *rows = calloc(1, sizeof(*rows));
	if (!rows) {
		rpc_fault(r, RPC_E_FAILED, "out of memory");
		return;
	}
	auth_failures_foreach(collect, rows);
	qsort(rows->rows, rows->n, sizeof(row_t), by_count_desc);
	json_w_t *w = rpc_result(r);
	json_w_arr_begin(w);
	for (unsigned i = 0; i < rows->n && (limit <= 0 || i < (unsigned long long)limit); i++) {
		char ip[64];
		net_addr_ip_str(&rows->rows[i].ip, ip, sizeof(ip));
		json_w_obj_begin(w);
		json_w_kcstr(w, "source", ip);
		json_w_kuint(w, "failures", rows->rows[i].count);
		json_w_kuint(w, "last", rows->rows[i].last);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
	free(rows);
}

void auth_rpc_init(void)
{
	/* -EEXIST when auth_init runs again (tests): the method is there already */
	rpc_register("auth.failures", rpc_failures,
		     "Sources that failed digest authentication, most failures first: auth.failures [limit]");
}
