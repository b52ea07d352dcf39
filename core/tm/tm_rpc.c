// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* RPC: tm.stats, tm.list, tm.cancel (Kamailio's field names). */
#include "../lib/json.h"
#include "../rpc/rpc.h"
#include "tm.h"

static void rpc_stats(rpc_req_t *r, const json_t *params)
{
	tm_stats_t s;
	(void)params;
	tm_get_stats(&s);
	json_w_t *w = rpc_result(r);
	json_w_obj_begin(w);
	json_w_kuint(w, "current", s.current);
	json_w_kuint(w, "waiting", s.waiting);
	json_w_kuint(w, "total", s.total);
	json_w_kuint(w, "total_local", s.replied_locally);
	json_w_kuint(w, "rpl_received", s.rpl_received);
	json_w_kuint(w, "rpl_generated", s.rpl_generated);
	json_w_kuint(w, "rpl_sent", s.rpl_sent);
	json_w_kuint(w, "6xx", s.c6xx);
	json_w_kuint(w, "5xx", s.c5xx);
	json_w_kuint(w, "4xx", s.c4xx);
	json_w_kuint(w, "3xx", s.c3xx);
	json_w_kuint(w, "2xx", s.c2xx);
	json_w_kuint(w, "1xx", s.c1xx);
	json_w_kuint(w, "created", s.created);
	json_w_kuint(w, "freed", s.freed);
	json_w_kuint(w, "retransmissions", s.retransmissions);
	json_w_obj_end(w);
}

static void list_one(const tm_info_t *t, void *arg)
{
	json_w_t *w = arg;
	json_w_obj_begin(w);
	json_w_kuint(w, "tindex", t->bucket);
	json_w_kuint(w, "tlabel", t->label);
	json_w_kcstr(w, "method", t->method);
	json_w_kcstr(w, "callid", t->callid);
	json_w_kcstr(w, "from_tag", t->from_tag);
	json_w_kuint(w, "cseq", t->cseq);
	json_w_kint(w, "uas_status", t->uas_status);
	json_w_kuint(w, "branches", t->nbranches);
	json_w_kuint(w, "age_ms", t->age_ms);
	json_w_obj_end(w);
}

static void rpc_list(rpc_req_t *r, const json_t *params)
{
	(void)params;
	json_w_t *w = rpc_result(r);
	json_w_arr_begin(w);
	tm_list(list_one, w);
	json_w_arr_end(w);
}

static void rpc_cancel(rpc_req_t *r, const json_t *params)
{
	str_t callid, cseq;
	(void)params;
	if (rpc_param_str(r, 0, "callid", &callid) < 0 || rpc_param_str(r, 1, "cseq", &cseq) < 0)
		return;
	if (tm_cancel_callid(callid, cseq, 0) < 0) {
		rpc_fault(r, RPC_E_NOT_FOUND, "no INVITE transaction with Call-ID %.*s and CSeq %.*s",
			  STR_FMT(callid), STR_FMT(cseq));
		return;
	}
	json_w_cstr(rpc_result(r), "canceled");
}

int tm_rpc_init(void)
{
	int rc = 0;
	rc |= rpc_register("tm.stats", rpc_stats, "Transaction statistics");
	rc |= rpc_register("tm.list", rpc_list, "Transactions in the table");
	rc |= rpc_register("tm.cancel", rpc_cancel, "Cancel an INVITE transaction: tm.cancel CALLID CSEQ");
	return rc;
}
