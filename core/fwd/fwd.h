// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Stateless forwarding (RFC 3261 §16.11). A forwarded request gets our Via on
 * top, with a branch derived from the request so that a retransmission
 * (or the CANCEL/non-2xx ACK of an INVITE) leaves with the same branch;
 * Max-Forwards is decremented, or set to 70 when absent. A reply is forwarded
 * by removing our Via and sending to the next one (received/rport honoured).
 */
#include "../msg/msg.h"

void fwd_init(void);
/* Called with every request about to be forwarded; returning false drops it. */
void fwd_set_onsend(bool (*fn)(msg_t *m, const net_dest_t *d, str_t out));

/* Forwards request m to uri (STR_NULL: $du, else the R-URI). 1 on success, negative on error. */
int fwd_request(msg_t *m, str_t uri);
/* Forwards reply m to the Via below ours. 1 sent, 0 not ours (dropped), negative on error. */
int fwd_reply(msg_t *m);

/* Where a URI leads: proto, address (resolved), per RFC 3263 §4 minus DNS SRV/NAPTR. */
int fwd_uri_dest(msg_t *m, str_t uri, net_dest_t *d);
/* Builds our Via header line for a request leaving through `via_sock` with proto. */
str_t fwd_via_line(msg_t *m, const net_listen_t *via_sock, sip_proto_t proto, str_t branch);
/* The §16.11 branch for m ("z9hG4bK" + stable hash). */
str_t fwd_branch(msg_t *m);
/* Max-Forwards per RFC 3261 §16.6 step 3 as an edit on m; -1 if m must not leave. */
int fwd_max_forwards(msg_t *m);
/* Removes our via-parm from reply m (the whole line when alone on it). */
int fwd_remove_top_via(msg_t *m, sip_via_t *v1);
/* Runs the onsend hook: false when the script dropped the request. */
bool fwd_onsend(msg_t *m, const net_dest_t *d, str_t out);
