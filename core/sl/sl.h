// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Stateless replies (RFC 3261 §8.2.6, §16.7 for local replies; §18.2.2 for where
 * they go). The reply copies Via, From, To, Call-ID and CSeq from the request;
 * the top Via gets received= (and rport= when the request asked for it, RFC 3581);
 * a To-tag is added when absent, derived from the request so a retransmitted
 * request gets the same tag back.
 */
#include "../msg/msg.h"

void sl_init(const char *server_header); /* NULL = no Server header */

/* Builds and sends a reply to request m. 1 on success, negative on error (KEMI style). */
int sl_send_reply(msg_t *m, int code, str_t reason);
/* Reply for the error recorded by the parser (m->sip.err); -1 if none can be formed. */
int sl_reply_error(msg_t *m);
/* Builds the reply text without sending it (used by tm later and by tests). */
str_t sl_build_reply(msg_t *m, int code, str_t reason, str_t extra_hdrs, str_t body);
/* Destination of a reply to m per RFC 3261 §18.2.2 / RFC 3581. */
int sl_reply_dest(msg_t *m, net_dest_t *d);
/*
 * The header line holding request m's top Via with received= and rport= added as
 * RFC 3261 §18.2.1 and RFC 3581 §4 ask (for replies, and for fwd to put into the
 * forwarded request so that replies find their way back); STR_NULL when the Via
 * needs neither, or on error.
 */
str_t sl_via1_received_line(msg_t *m);
/* The To-tag this server uses for local replies to m. */
str_t sl_totag(msg_t *m);
