// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/* Shared between the files of core/tm only. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../lib/stats.h"
#include "../lib/wheel.h"
#include "tm.h"

#define TM_MAX_BRANCHES 16
#define TM_BUCKETS 16384
#define TM_ROUTE_NAME 64

/* A destination waiting for serial forking (t_load_contacts / t_next_contacts). */
typedef struct tm_contact {
	char *uri, *du, *path;
	int q;
	struct tm_contact *next;
} tm_contact_t;

typedef enum {
	BR_CALLING = 0,  /* sent, no reply yet */
	BR_PROCEEDING,   /* provisional received */
	BR_COMPLETED,    /* final received or generated (timeout, transport error) */
} tm_branch_state_t;

typedef struct tm_branch {
	struct tm_cell *cell;
	unsigned idx;
	tm_branch_state_t state;
	char *req;                 /* the request as sent (malloc) */
	size_t req_len;
	char *uri;                 /* its Request-URI (malloc, NUL-terminated) */
	char *via_line;            /* our Via header line, CRLF included */
	char *routes;              /* Route header lines it carried (may be empty) */
	char *cancel;              /* CANCEL for it (INVITE only), built when sent */
	size_t cancel_len;
	net_dest_t dest;
	int status;                /* last reply code, 0 none */
	char *reply;               /* final reply as received (malloc), NULL when local */
	size_t reply_len;
	bool local;                /* status generated here (408, 503) */
	bool timed_out;
	bool replied;              /* a reply came from the network */
	bool cancel_pending;       /* cancel once a provisional arrives */
	bool cancel_sent;
	bool reply_dropped;        /* t_drop_replies */
	uint32_t bflags;
	unsigned retr_ms;
	unsigned retr_count;
	wheel_timer_t retr_timer;
	wheel_timer_t fr_timer;
	bool retr_armed, fr_armed; /* under the cell lock: who owns the timer reference */
} tm_branch_t;

struct tm_cell {
	struct tm_cell *next, *prev; /* bucket list */
	unsigned bucket;
	uint32_t label;
	uint64_t key;              /* matching hash (branch, or Call-ID+CSeq for RFC 2543) */
	bool in_table;
	_Atomic int refs;
	pthread_mutex_t lock;
	uint64_t created_ms;
	unsigned owner;            /* worker that created it: runs its timed-out failure routes */

	/* the request (copy of what was received) and what identifies it */
	char *req;
	size_t req_len;
	net_rcv_t rcv;
	sip_method_t method;
	char method_str[24];
	bool rfc2543;
	str_t via_branch, via_sentby, callid, cseq_num, from_tag, to_tag, ruri_orig; /* into req */
	char *ruri;                /* R-URI when first relayed: $ru in the failure route */
	char *du;
	/* the request as the script left it at the first relay (headers and body
	 * edits applied, our Via not yet): what failure routes work on, as Kamailio
	 * keeps the request's changes in the transaction */
	char *fwd_req;
	size_t fwd_req_len;
	bool rr_on, maxfwd_done;
	char *rr_params, *rr_preset[2];
	uint32_t flags;            /* message flags when relayed */

	/* server side */
	int uas_status;            /* last status sent upstream, 0 none */
	char *uas_reply;           /* last reply sent upstream (for retransmissions) */
	size_t uas_reply_len;
	net_dest_t uas_dest;
	bool uas_local;            /* that reply was generated here */
	bool acked;                /* ACK for our non-2xx final seen */
	bool canceled;             /* CANCEL received */
	char totag[17];
	unsigned uas_retr_ms;
	wheel_timer_t uas_timer;   /* Timer G (non-2xx INVITE final retransmissions, UDP) */
	bool uas_timer_armed;
	uint64_t uas_final_ms;     /* when the final went out (Timer H) */
	wheel_timer_t wait_timer;  /* wt_timer: delete after completion */
	bool wait_armed;
	wheel_timer_t life_timer;  /* max lifetime */
	bool life_armed;
	bool expired;
	bool done;                 /* final sent and nothing left to do: waiting for deletion */

	/* client side */
	tm_branch_t *branches[TM_MAX_BRANCHES];
	unsigned nbranches;
	unsigned failure_first;    /* branches before this index were already judged */
	int best_idx;              /* winning branch of the last failure, -1 none */
	bool in_failure;           /* failure route running */
	bool failure_done;         /* the failure route has run for the current set */
	char routes[TM_ROUTE__N][TM_ROUTE_NAME];
	unsigned fr_ms, fr_inv_ms, life_inv_ms, life_noninv_ms;
	bool auto100;
	bool is_replicate;         /* t_replicate, t_uac_send: nothing goes upstream */
	tm_contact_t *contacts;    /* serial forking: by q, highest first */
	avp_t *avps;               /* the request's $avp from its first relay on */
	bool suspended;            /* t_suspend: waiting for t_continue */
};

extern const ksr_cfg_t *tm_cfg;

typedef struct {
	stat_counter_t *current, *waiting, *created, *freed, *rpl_received, *rpl_generated, *rpl_sent,
		*rpl_class[7], *retransmissions, *local_replies, *relayed;
} tm_counters_t;
extern tm_counters_t tm_st;

/* tm_table.c */
tm_cell_t *tm_cell_new(msg_t *m);
void tm_cell_ref(tm_cell_t *c);
void tm_cell_unref(tm_cell_t *c);
/* Inserts c unless an equal transaction is there: then returns that one, referenced. */
tm_cell_t *tm_table_insert(tm_cell_t *c);
/* Finds the transaction m belongs to (referenced); for ACK/CANCEL the INVITE's. */
tm_cell_t *tm_table_lookup(msg_t *m, sip_method_t as_method);
tm_cell_t *tm_table_lookup_label(unsigned bucket, uint32_t label);
void tm_table_remove(tm_cell_t *c);
uint64_t tm_request_key(msg_t *m, bool *rfc2543);
void tm_table_foreach(void (*fn)(tm_cell_t *c, void *arg), void *arg);

/* tm_uac.c */
int tm_send_branches(tm_cell_t *c, msg_t *m, unsigned first_new);
void tm_branch_cancel(tm_branch_t *b);
void tm_branch_free(tm_branch_t *b);
void tm_branch_stop_timers(tm_branch_t *b);
void tm_branch_arm_fr(tm_branch_t *b, unsigned ms);
void tm_cancel_branches(tm_cell_t *c, int except);
/* Has the owner worker judge the cell (failure route, best reply); takes its own reference. */
void tm_post_completion(tm_cell_t *c);
/* worker_post job: runs tm_check_completion on the cell and drops the job's reference */
void tm_completion_job(void *cell);
void tm_unreachable(sip_proto_t proto, const net_addr_t *dst, int err);

/* tm_reply.c */
/* On a worker thread, cell locked; a = arena for what must be parsed again. */
void tm_branch_completed(tm_cell_t *c, tm_branch_t *b, arena_t *a);
void tm_check_completion(tm_cell_t *c, arena_t *a);
/* Runs the failure route / forwards the best reply once every branch completed. */
void tm_all_completed(tm_cell_t *c, arena_t *a);

/* tm_uas.c */
int tm_uas_send(tm_cell_t *c, int code, const char *buf, size_t len, bool local);
int tm_uas_local_reply(tm_cell_t *c, msg_t *req, int code, str_t reason);
void tm_cell_finish(tm_cell_t *c);
void tm_arm_life(tm_cell_t *c);
msg_t *tm_parse_request(tm_cell_t *c, arena_t *a);
