// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * The registrar (RFC 3261 §10.3, RFC 3327 Path, RFC 5626 outbound), Kamailio's
 * registrar module in behaviour: save() stores the bindings of a REGISTER in
 * usrloc and answers it; lookup() turns a request's R-URI into the contacts
 * registered for it.
 *
 * save(table, flags[, uri]) returns 1 contacts inserted, 2 updated, 3 deleted,
 * 4 only listed (no Contact), -1 on any error; it replies itself unless
 * REG_SAVE_NOREPLY (then reg_send_reply() sends what it prepared). Replies:
 *   200 with every current binding (expires, q, +sip.instance, reg-id) and Date
 *   400 invalid Contact/Expires/q/reg-id, "*" misuse, lower CSeq for the same
 *       Call-ID (RFC 3261 §10.3 step 7 says "fail"; Kamailio answers 400
 *       "Invalid CSeq number": so do we); an equal CSeq within cseq_delay
 *       seconds is a retransmission and changes nothing
 *   403 more bindings than max_contacts (Kamailio: 503, which invites retries)
 *   420 Path without "Supported: path" when path_mode is strict
 *   423 expires below min_expires, with Min-Expires (Kamailio clamps instead)
 *   500 the database failed (db_mode 1, 3), with Retry-After: retry_after
 * Errors carry Kamailio's P-Registrar-Error header. Validation happens before
 * any change, so a rejected REGISTER changes nothing.
 *
 * lookup(table[, uri]) returns 1 found, -1 none (or all expired), -2 found but
 * none accepts the method (method_filtering), -3 internal error (database).
 * The best contact (highest q) becomes the R-URI; its Path becomes Route
 * headers and $du the first Path hop (or the received address when there is
 * no Path); its cflags become the branch flags and its socket the send socket.
 * The other contacts become branches (append_branches), ordered by q.
 *
 * Branches. Until tm's destination set exists, lookup's branches and the
 * attributes of the chosen contact ($ruid, $location_ua) are kept per message
 * here, in the calling worker's thread: reg_branches(m) and reg_ruid(m) are
 * valid while m is being handled (the strings live in m's arena) and empty
 * for any other message. Nothing sends to branches yet; tm will take them.
 *
 * Profiles. reg_fetch_contacts() copies an AOR's record into a named profile
 * of the calling worker (heap, kept across messages until reg_free_contacts or
 * the next fetch with that name), read with reg_ulc_get ($ulc(name=>attr)).
 *
 * Statistics (group "registrar"): accepted_regs, rejected_regs.
 */
#include <stdbool.h>
#include <stdint.h>

#include "../cfg/cfg.h"
#include "../msg/msg.h"

/* save() flags, Kamailio's values */
enum {
	REG_SAVE_MEM = 1u << 0,         /* memory only: no database write (db_mode 1, 2) */
	REG_SAVE_NOREPLY = 1u << 1,     /* do not reply; reg_send_reply() later */
	REG_SAVE_REPLACE = 1u << 2,     /* drop bindings the REGISTER does not list */
	REG_SAVE_NOVARIATION = 1u << 3, /* no expires_range spread */
};

/* lookup() results */
enum { REG_FOUND = 1, REG_NOT_FOUND = -1, REG_METHOD = -2, REG_ERROR = -3 };

typedef struct reg_branch {
	str_t uri;      /* contact URI */
	str_t du;       /* destination: first Path hop or received; STR_NULL if none */
	str_t path;     /* Path of the contact (becomes Route), STR_NULL if none */
	str_t ruid, ua, instance, received, socket;
	int32_t q;      /* 0..1000 or -1 */
	uint32_t cflags;
	const net_listen_t *sock; /* resolved socket, NULL if not one of ours */
	struct reg_branch *next;
} reg_branch_t;

/* registrar.event_callback: the script is told "usrloc:contact-expired" for each
 * contact the timer removes, with it as $ulc(exp=>...). Main thread. */
void reg_events_init(const ksr_cfg_t *cfg);
/* Reads cfg->registrar; registers statistics. Main thread, after ul_init. */
int reg_init(const ksr_cfg_t *cfg);

/* registrar.received_avp ("$avp(name)"), or an empty string. */
str_t reg_received_avp(void);

/* uri: STR_NULL = the To URI. received: NAT source URI to store (STR_NULL = none
 * unless the nat_bflag branch flag is set, then the source address). */
int reg_save(msg_t *m, str_t table, unsigned flags, str_t uri, str_t received);
/* Sends the reply prepared by save(..., REG_SAVE_NOREPLY). 1 or -1. */
int reg_send_reply(msg_t *m);
/* q for the contacts of the next save() of this message ("0.5"); 1 or -1. */
int reg_set_q_override(msg_t *m, str_t q);

/* uri: STR_NULL = the current R-URI. to_dset: only add branches, R-URI untouched. */
int reg_lookup(msg_t *m, str_t table, str_t uri, bool to_dset);
/* lookup() for the R-URI and then for every branch URI. */
int reg_lookup_branches(msg_t *m, str_t table);
/* 1 when the AOR has a valid contact, -1 when not, -3 on error. */
int reg_registered(msg_t *m, str_t table, str_t uri);
/* Removes every contact of the AOR (ruid empty) or the one with that ruid.
 * 1 done, -1 not found (ruid) or error. */
int reg_unregister(msg_t *m, str_t table, str_t uri, str_t ruid);
/* 1 when the message's source IP (and port, mode 1) is a contact's (or its
 * received) address; -1 otherwise. */
int reg_from_user(msg_t *m, str_t table, str_t uri, int mode);
/* Adds "name: proto:ip:port" of the receiving socket to the request. */
int reg_add_sock_hdr(msg_t *m, str_t name);

/* Per-message lookup results (see "Branches"). */
const reg_branch_t *reg_branches(const msg_t *m);
str_t reg_ruid(const msg_t *m);
str_t reg_location_ua(const msg_t *m);

/* Profiles for $ulc. fetch: 1 found, -1 none, -3 error. */
int reg_fetch_contacts(msg_t *m, str_t table, str_t uri, str_t profile);
int reg_free_contacts(str_t profile);
/*
 * An attribute of a fetched profile: record attributes (aor, domain, aorhash,
 * count) with idx < 0, contact attributes (addr, path, received, expires,
 * callid, q, cseq, flags, cflags, user_agent, socket, modified, methods, ruid,
 * reg_id, instance, server_id) of contact idx. 1 with *s or *i set (is_int
 * says which), -1 when absent.
 */
int reg_ulc_get(str_t profile, str_t attr, int idx, str_t *s, long long *i, bool *is_int);
/* Frees the calling thread's profiles (also done by itself when a worker exits). */
void reg_thread_cleanup(void);

/* The AOR of a URI as usrloc keys it (user, or user@host with use_domain), in m's arena. */
int reg_aor_of(msg_t *m, str_t uri, str_t *aor);
