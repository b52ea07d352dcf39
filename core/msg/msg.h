// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * The message being handled: the parsed SIP message, how it arrived, and what
 * routing has decided so far (new R-URI, destination URI, flags, header edits).
 *
 * The received buffer is never modified. Edits are recorded here and applied
 * once, when an outgoing buffer is built (msg_build_request / msg_build_reply).
 * Everything hanging off a msg_t lives in its arena and is gone when the worker
 * resets the arena for the next message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../lib/arena.h"
#include "../lib/avp.h"
#include "../net/net.h"
#include "../parser/sip_parser.h"

/* Lists of added text keep the newest first and are never modified once linked,
 * so a snapshot of an edit state is a copy of a few pointers (branch routes). */
typedef struct msg_text {
	str_t text; /* complete header line(s), each ending in CRLF */
	struct msg_text *next;
} msg_text_t;

/* An extra branch of the destination set (append_branch, lookup). */
typedef struct msg_branch {
	str_t uri;
	str_t du;
	str_t path;            /* Path of the contact, becomes Route headers */
	str_t ruid;
	str_t instance;
	const net_listen_t *sock;
	uint32_t bflags;
	int q;                 /* 0..1000, -1 = not given */
	struct msg_branch *next;
} msg_branch_t;

typedef struct {
	bool removed;
	msg_text_t *before, *after;
	msg_text_t *replace; /* text that takes the header's place (implies removed) */
} msg_hdr_edit_t;

typedef struct msg {
	sip_msg_t sip;
	net_rcv_t rcv;
	arena_t *arena;
	uint64_t id;            /* $mi: unique per worker and message */
	uint64_t received_at;   /* unix seconds ($Ts) */

	/* routing state (requests) */
	str_t ruri;             /* current R-URI: the received one until changed */
	sip_uri_t *ruri_parsed; /* parsed current R-URI, lazily (msg_ruri) */
	bool ruri_changed;
	str_t du;               /* $du, STR_NULL when unset */
	const net_listen_t *send_sock; /* $fs, NULL = automatic */
	uint32_t flags;         /* message flags 0..31 */
	uint32_t bflags;        /* branch flags of branch 0 */
	bool force_rport;
	bool reply_close;       /* close the connection after the reply */
	bool forward_close;
	bool reply_no_connect;
	bool forward_no_connect;
	bool drop;              /* set_drop(): drop a reply/branch, don't forward */
	int replied;            /* status code of the last local reply sent, 0 = none */

	/* header edits */
	msg_hdr_edit_t *edits;  /* nhdrs entries, allocated on first edit */
	msg_text_t *top, *bottom; /* before the first / after the last header */
	msg_text_t *reply_hdrs;   /* headers for the next local reply (append_to_reply) */

	/* Replacements set by textops/textopsx, applied when a buffer is built
	 * (msg_set_body, msg_set_reply_body, msg_set_first_line); all in the arena. */
	bool body_set;          /* new_body leaves instead of sip.body; Content-Length follows it */
	str_t new_body;
	str_t new_ctype;        /* non-empty: every Content-Type is replaced by one with this value */
	str_t new_first_line;   /* forwarded reply: start line (no CRLF); STR_NULL = the received one */
	str_t reply_body;       /* body of the next local reply (sl), with its Content-Type */
	str_t reply_ctype;
	uint64_t xflags;        /* extended message flags 0..63 (KSR.corex.setxflag) */

	/* destination set beyond the R-URI branch, in the order added */
	msg_branch_t *branches, *branches_tail;
	unsigned nbranches;
	str_t path;             /* Path (Route set) for the R-URI branch, set by lookup */
	int ruri_q;             /* q of the R-URI branch (0..1000), -1 = not given */

	avp_t *avps;            /* $avp: malloc'd; freed with the message or handed to tm */
	void *tm;               /* the transaction this message belongs to (core/tm), or NULL */
	bool tm_absorbed;       /* tm answered or absorbed it (retransmission, ACK) */
	void *tm_precheck;      /* t_precheck_trans entry to release when done */
	int8_t tm_auto100;      /* t_set_auto_inv_100 before the transaction exists: -1 unset */

	/* record-routing (core/rr): applied when the request is built for a socket */
	bool rr_on;             /* record_route() was called */
	str_t rr_params;        /* add_rr_param()s, each starting with ';' */
	str_t rr_preset[2];     /* record_route_preset(): explicit addresses */
	str_t route_params;     /* params of our Route that loose_route() consumed */
	bool route_consumed;    /* loose_route() removed a Route of ours */
	bool maxfwd_done;       /* the script handled Max-Forwards (KSR.maxfwd): fwd leaves it */
} msg_t;

/* Edit state, to undo what a branch route changed before the next branch. */
typedef struct {
	msg_hdr_edit_t *edits;
	msg_text_t *top, *bottom;
	bool body_set;
	str_t new_body, new_ctype, new_first_line;
	uint64_t xflags;
	str_t ruri, du;
	sip_uri_t *ruri_parsed;
	bool ruri_changed;
	uint32_t bflags;
	const net_listen_t *send_sock;
} msg_snapshot_t;

int msg_snapshot(msg_t *m, msg_snapshot_t *s);
void msg_restore(msg_t *m, const msg_snapshot_t *s);

/* Adds a branch to the destination set (strings are copied). */
msg_branch_t *msg_append_branch(msg_t *m, str_t uri, str_t du, int q);
void msg_clear_branches(msg_t *m);

/* Parses buf and prepares m. Returns the sip_parse_msg() result. */
int msg_init(msg_t *m, arena_t *a, const net_rcv_t *rcv, const char *buf, size_t len);

/* Current R-URI, parsed; NULL if it does not parse (then m->sip.err says why). */
sip_uri_t *msg_ruri(msg_t *m);
int msg_set_ruri(msg_t *m, str_t uri);   /* copies; 0 or -EINVAL if not a URI */
/* The current SIP/SIPS R-URI rebuilt with the given parts replaced (NULL:
   kept), in the arena; STR_NULL when the R-URI is not a SIP URI. As in
   Kamailio's rewrite of the R-URI, a password stays while there is a user.
   The caller sets it with msg_set_ruri. */
str_t msg_ruri_with(msg_t *m, const str_t *user, const str_t *host, const str_t *port);
int msg_set_du(msg_t *m, str_t uri);     /* copies; STR_NULL/empty resets */

/* Header edits. idx is an index into m->sip.hdrs. Text is copied. */
int msg_hdr_remove(msg_t *m, unsigned idx);
bool msg_hdr_is_removed(const msg_t *m, unsigned idx);
int msg_hdr_replace(msg_t *m, unsigned idx, str_t text);
int msg_hdr_insert_before(msg_t *m, unsigned idx, str_t text);
int msg_hdr_append_after(msg_t *m, unsigned idx, str_t text);
int msg_hdr_insert_top(msg_t *m, str_t text);
int msg_hdr_append_bottom(msg_t *m, str_t text);
int msg_reply_hdr_add(msg_t *m, str_t text);
/* Removes every header with that name (any spelling); returns how many. */
int msg_hdr_remove_name(msg_t *m, str_t name);

/* The body as it will leave: the replacement when one is set, else the received one. */
str_t msg_body(const msg_t *m);
/*
 * Replaces the body (copied; empty = no body). Content-Length is rewritten to
 * the new length when the message is built (added when absent). A non-empty
 * ctype also replaces every Content-Type header by one with that value, placed
 * after the last header; STR_NULL keeps them.
 */
int msg_set_body(msg_t *m, str_t body, str_t ctype);
/* Body and Content-Type of the next local reply (sl_build_reply without a body); copied. */
int msg_set_reply_body(msg_t *m, str_t body, str_t ctype);
/* Start line of the forwarded reply (msg_build_fwd_reply), without CRLF; copied. */
int msg_set_first_line(msg_t *m, str_t line);

/*
 * Builds the outgoing request: request line with the current R-URI, `via` (a
 * full header line with CRLF, or STR_NULL) on top, the received headers with
 * the edits applied, Content-Length added when `stream` and absent, the body.
 */
str_t msg_build_request(msg_t *m, str_t via, bool stream);
/* Builds a forwarded reply: the received reply with edits (no new first line). */
str_t msg_build_fwd_reply(msg_t *m, bool stream);

/* Appends to a growing arena buffer. */
typedef struct {
	arena_t *a;
	char *p;
	size_t len, cap;
	bool failed;
} msg_buf_t;

void mbuf_init(msg_buf_t *b, arena_t *a, size_t cap);
void mbuf_add_slow(msg_buf_t *b, const char *s, size_t n);
/* Inline: replies and requests are built from dozens of these; the copy is the
 * common case, growing the buffer the rare one. */
static inline void mbuf_add(msg_buf_t *b, const char *s, size_t n)
{
	if (!b->failed && b->len + n <= b->cap) {
		if (n) /* s may be NULL for an empty slice */
			memcpy(b->p + b->len, s, n);
		b->len += n;
		return;
	}
	mbuf_add_slow(b, s, n);
}
static inline void mbuf_str(msg_buf_t *b, str_t s)
{
	mbuf_add(b, s.s, s.len);
}
/* For literals: inlined, the compiler knows the length. */
static inline void mbuf_lit(msg_buf_t *b, const char *s)
{
	mbuf_add(b, s, strlen(s));
}
void mbuf_u64(msg_buf_t *b, unsigned long long v);
/* Writes a list of added texts (kept newest first) in the order they were added. */
void msg_text_write(msg_buf_t *b, const msg_text_t *t);
static inline str_t mbuf_done(msg_buf_t *b)
{
	return b->failed ? STR_NULL : str_from(b->p, b->len);
}
