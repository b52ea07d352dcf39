// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Record-routing (RFC 3261 §16.6 step 4, §16.12) and Route processing.
 *
 * record_route() only marks the request: the Record-Route header is written by
 * rr_apply() when the request is built for a given outgoing socket, because a
 * request leaving by another transport or address than it came in needs two
 * entries (double record-routing), and that is known only then.
 */
#include "../msg/msg.h"

void rr_init(const ksr_cfg_t *cfg);

int rr_record_route(msg_t *m, str_t params);
int rr_record_route_preset(msg_t *m, str_t addr1, str_t addr2);
int rr_add_param(msg_t *m, str_t param);
/* Writes the Record-Route header(s) for a request leaving by `out` (edits of m). */
int rr_apply(msg_t *m, const net_listen_t *out);

/*
 * RFC 3261 §16.4/§16.12: consumes our Route entries and sets the next hop.
 * 1 next hop from the Route set (or R-URI after our Route in a dialog),
 * -1 no Route set (or only ours on an initial request), -3 next hop from a
 * preloaded route set of an initial request — Kamailio's codes.
 */
int rr_loose_route(msg_t *m);
/* POSIX regex over the params of our Route consumed by loose_route. 1 / -1. */
int rr_check_route_param(msg_t *m, str_t re);
/* "downstream" (caller to callee) or "upstream", from the ftag of our Route. 1 / -1. */
int rr_is_direction(msg_t *m, str_t dir);
