// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Transactions (RFC 3261 §17 with the RFC 6026 corrections) for a stateful
 * proxy (§16): one cell per received request holds the server transaction
 * (the request, the last reply sent upstream) and its client transactions
 * (branches, one per destination).
 *
 * Cells live in a shared hash table with one lock per bucket; a cell has its
 * own lock, taken for any state change, and a reference count: the table, each
 * armed timer and each message being handled hold one. Any worker may see a
 * retransmission of, or a reply for, a cell another worker created.
 *
 * Timers run on the wheel thread (core/lib/wheel.h). Retransmissions are sent
 * from there; anything that needs the script (failure routes after a timeout)
 * is posted to the worker that created the cell.
 *
 * Callbacks into the script go through worker_hooks(): named routes are
 * resolved by name when they run, so after a reload a pending failure route
 * runs the new script's function of that name.
 */
#include <stdbool.h>

#include "../cfg/cfg.h"
#include "../msg/msg.h"

typedef struct tm_cell tm_cell_t;

typedef enum { TM_ROUTE_FAILURE, TM_ROUTE_BRANCH, TM_ROUTE_ONREPLY, TM_ROUTE_BRANCH_FAILURE, TM_ROUTE__N } tm_route_t;

int tm_init(const ksr_cfg_t *cfg);
void tm_shutdown(void);

/* ---- request side: m is a request being routed */

/* KSR.tm.t_newtran: 1 created, 0 retransmission absorbed, -1 error. */
int tm_newtran(msg_t *m);
/*
 * KSR.tm.t_check_trans: for a request, 0 when it is a retransmission (absorbed,
 * the last reply resent) or an ACK for a non-2xx final (absorbed); 1 when a
 * transaction exists (CANCEL: the INVITE's is found); -1 when there is none.
 */
int tm_check_trans(msg_t *m);
/* KSR.tmx.t_precheck_trans: 1 when the same request is being handled right now. */
int tm_precheck(msg_t *m);
/* Relays statefully to $du/R-URI and the extra branches. 1 ok, <0 error. */
int tm_relay(msg_t *m);
/* Stateful reply; creates the transaction when `create`. 1 ok, -1 error. */
int tm_reply(msg_t *m, int code, str_t reason, bool create);
/* Sends a copy of the request statefully to uri; nothing comes back upstream. */
int tm_replicate(msg_t *m, str_t uri);
/*
 * Serial forking (Kamailio's t_load_contacts / t_next_contacts): the R-URI and
 * the destination set are kept on the transaction ordered by q; each call of
 * tm_next_contacts() makes the next group of equal q the R-URI and branches.
 * load: 1 (also when there is a single destination: nothing to order), -1 error.
 * next: 1 when a group was loaded, -1 when none is left.
 */
int tm_load_contacts(msg_t *m);
int tm_next_contacts(msg_t *m);
/*
 * KSR.tm.t_uac_send: a request made here (From/To/Call-ID/CSeq added unless the
 * headers carry them), sent statefully to nexthop (or the R-URI) from socket
 * ("proto:ip:port", or "" for any); its replies end in the transaction. The
 * script's tm.event_callback function is told "tm:local-request" first, with
 * the request as the message. 1 sent, -1 error. `arena` holds the temporaries.
 */
int tm_uac_send(arena_t *arena, str_t method, str_t ruri, str_t nexthop, str_t socket, str_t headers, str_t body);
/*
 * Asynchronous processing (KSR.tmx.t_suspend / t_continue): suspend gives the
 * transaction's index and label (also $T(id_index), $T(id_label)); the route
 * then ends without answering. t_continue(index, label, fn) later runs the
 * script function fn on the transaction's request, in a failure-route-like
 * context where it may relay or reply. 1 / -1 (no such suspended transaction).
 */
int tm_suspend(msg_t *m, unsigned *index, unsigned *label);
int tm_continue(unsigned index, unsigned label, const char *fn, arena_t *a);
/* index and label of m's transaction, or -1. */
int tm_ids(msg_t *m, unsigned *index, unsigned *label);
/* End of the handling of a message: releases what tm held for it. */
void tm_msg_done(msg_t *m);

/* ---- reply side */

/* Reply processing; 1 when it belonged to a transaction (then it is handled), else 0. */
int tm_on_reply(msg_t *m);

/* ---- per-transaction settings from the script (current transaction of m) */

int tm_set_route(msg_t *m, tm_route_t which, str_t fn);
bool tm_route_is_set(msg_t *m, tm_route_t which);
/* fr and fr_inv in ms; 0 keeps the current value. */
int tm_set_fr(msg_t *m, unsigned fr_inv, unsigned fr);
int tm_reset_fr(msg_t *m);
int tm_set_max_lifetime(msg_t *m, unsigned inv, unsigned noninv);
int tm_set_auto_inv_100(msg_t *m, bool on);

/* ---- queries (current transaction of m; in failure routes the failed one) */

bool tm_is_canceled(msg_t *m);
bool tm_is_expired(msg_t *m);
bool tm_branch_timeout(msg_t *m);
bool tm_branch_replied(msg_t *m);
bool tm_any_timeout(msg_t *m);
bool tm_any_replied(msg_t *m);
/* Status code of the reply this route is about (failure: the winning one), or -1. */
int tm_get_status_code(msg_t *m);
int tm_get_branch_index(msg_t *m);
/* Reply being handled in failure/onreply routes (failure: the winning reply), or NULL. */
msg_t *tm_route_reply(msg_t *m);
/* t_drop_replies: mode 'a' all, 'l' last, 'n' none. */
int tm_drop_replies(msg_t *m, char mode);
bool tm_exists(msg_t *m);
/*
 * The $avp list of m: the transaction's once there is one (it moves there when
 * the transaction is created), locked until tm_avps_unlock(m), since reply and
 * failure routes of the same transaction may run on other workers.
 */
avp_t **tm_avps_lock(msg_t *m);
void tm_avps_unlock(msg_t *m);

/* ---- RPC / statistics */

typedef struct {
	unsigned long long current, waiting, total, total_local, created, freed, replied_locally;
	unsigned long long rpl_received, rpl_generated, rpl_sent;
	unsigned long long c1xx, c2xx, c3xx, c4xx, c5xx, c6xx;
	unsigned long long retransmissions;
} tm_stats_t;

void tm_get_stats(tm_stats_t *s);

typedef struct {
	char method[24];
	char callid[128];
	char from_tag[64];
	unsigned long long cseq;
	int uas_status;
	unsigned nbranches;
	unsigned long long age_ms;
	unsigned bucket, label;
} tm_info_t;

/* Visits every transaction (snapshot of each, taken under its lock). */
void tm_list(void (*fn)(const tm_info_t *t, void *arg), void *arg);
/* Registers tm.stats, tm.list, tm.cancel. */
int tm_rpc_init(void);
/* Cancels the INVITE transaction with that Call-ID and CSeq number. 1 found, -1 not. */
int tm_cancel_callid(str_t callid, str_t cseq, int reason_code);
