// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * lookup(): from an AOR to the places it is registered. The contacts are copied
 * into the message's arena while the AOR is locked; everything after that
 * (R-URI, $du, Route, branches) works on the copies.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "reg_int.h"

static str_t dup(msg_t *m, str_t s)
{
	return s.len ? arena_strdup(m->arena, s) : STR_NULL;
}

/* The first URI of a Path value ("<sip:a;lr>,<sip:b;lr>" -> sip:a;lr). */
static str_t first_path_uri(msg_t *m, str_t path, sip_uri_t *u)
{
	sip_nameaddr_t *list;
	if (sip_parse_nameaddr_list(m->arena, path, NULL, &list, NULL) != SIP_OK || !list)
		return STR_NULL;
	*u = list->uri;
	return list->uri_str;
}

/* Where the request for branch b must go first: the Path's first hop, else received. */
static str_t branch_dst(msg_t *m, const reg_branch_t *b)
{
	sip_uri_t u = {0};
	if (b->path.len) {
		str_t first = first_path_uri(m, b->path, &u);
		const sip_param_t *rcv = sip_param_find(u.params, STR_LIT("received"));
		if (reg_cfg.path_use_received && rcv && rcv->value.len) {
			str_t v = rcv->value;
			if (v.len >= 2 && v.s[0] == '"')
				v = str_from(v.s + 1, v.len - 2);
			return sip_unescape(m->arena, v);
		}
		return first;
	}
	return b->received;
}

static reg_branch_t *branch_of(msg_t *m, const ul_contact_t *c)
{
	reg_branch_t *b = arena_zalloc(m->arena, sizeof(*b));
	if (!b)
		return NULL;
	b->uri = dup(m, ul_cstr(c, UL_CONTACT));
	b->path = dup(m, ul_cstr(c, UL_PATH));
	b->received = dup(m, ul_cstr(c, UL_RECEIVED));
	b->ruid = dup(m, ul_cstr(c, UL_RUID));
	b->ua = dup(m, ul_cstr(c, UL_UA));
	b->instance = dup(m, ul_cstr(c, UL_INSTANCE));
	b->socket = dup(m, ul_cstr(c, UL_SOCKET));
	b->q = c->q;
	b->cflags = c->cflags;
	if (!b->uri.s)
		return NULL;
	b->sock = b->socket.len ? net_listen_by_str(b->socket) : NULL;
	b->du = branch_dst(m, b);
	return b;
}

/*
 * Copies the valid contacts of aor that accept the method, best first.
 * 1 some, -1 none, -2 only ones refusing the method, -3 error.
 */
static int collect(msg_t *m, str_t table, str_t aor, reg_branch_t **out)
{
	ul_domain_t *d = ul_domain(table);
	uint32_t want = reg_cfg.method_filtering ? ul_method_bit(m->sip.method_id) : 0;
	int64_t now = time(NULL);
	bool filtered = false;
	reg_branch_t **tail = out;
	ul_ref_t ref;

	*out = NULL;
	if (!d)
		return REG_ERROR;
	if (ul_open(d, aor, &ref) < 0)
		return REG_ERROR;
	for (const ul_contact_t *c = ref.r ? ref.r->contacts : NULL; c; c = c->next) {
		if (!ul_contact_valid(c, now))
			continue;
		if (want && !(c->methods & want)) {
			filtered = true;
			continue;
		}
		reg_branch_t *b = branch_of(m, c);
		if (!b)
			break;
		*tail = b;
		tail = &b->next;
	}
	ul_close(&ref);
	if (*out)
		return REG_FOUND;
	return filtered ? REG_METHOD : REG_NOT_FOUND;
}

/* The chosen contact becomes the request's target. */
static int use_branch(msg_t *m, reg_msg_ctx_t *ctx, const reg_branch_t *b)
{
	if (msg_set_ruri(m, b->uri) < 0)
		return REG_ERROR;
	if (msg_set_du(m, b->du) < 0)
		return REG_ERROR;
	/* Path becomes Route when the request is built for this branch (tm, fwd), so the
	 * other branches of a fork do not inherit it */
	m->path = reg_cfg.path_mode != 0 ? b->path : STR_NULL;
	m->ruri_q = b->q;
	m->bflags = b->cflags;
	if (b->sock)
		m->send_sock = b->sock;
	ctx->ruid = b->ruid;
	ctx->ua = b->ua;
	return REG_FOUND;
}

/* The other contacts join the message's destination set, which tm relays to. */
static void append_branches(msg_t *m, reg_msg_ctx_t *ctx, reg_branch_t *list)
{
	reg_branch_t **tail = &ctx->branches;
	while (*tail)
		tail = &(*tail)->next;
	*tail = list;
	for (reg_branch_t *b = list; b; b = b->next) {
		msg_branch_t *mb = msg_append_branch(m, b->uri, b->du, b->q);
		if (!mb)
			continue;
		mb->path = reg_cfg.path_mode != 0 ? b->path : STR_NULL;
		mb->ruid = b->ruid;
		mb->instance = b->instance;
		mb->sock = b->sock;
		mb->bflags = b->cflags;
	}
}

int reg_lookup(msg_t *m, str_t table, str_t uri, bool to_dset)
{
	reg_msg_ctx_t *ctx = reg_ctx(m);
	reg_branch_t *list;
	str_t aor;

	if (!uri.len) {
		if (!msg_ruri(m))
			return REG_ERROR;
		uri = m->ruri;
	}
	if (reg_aor_of(m, uri, &aor) < 0)
		return REG_NOT_FOUND;
	int rc = collect(m, table, aor, &list);
	if (rc != REG_FOUND)
		return rc;
	if (to_dset) {
		append_branches(m, ctx, list);
		return REG_FOUND;
	}
	rc = use_branch(m, ctx, list);
	if (rc == REG_FOUND && reg_cfg.append_branches)
		append_branches(m, ctx, list->next);
	return rc;
}

int reg_lookup_branches(msg_t *m, str_t table)
{
	reg_msg_ctx_t *ctx = reg_ctx(m);
	msg_branch_t *old = m->branches;

	ctx->branches = NULL;
	msg_clear_branches(m); /* rebuilt below from what was there */
	int best = reg_lookup(m, table, STR_NULL, false);
	/* each branch that was there before is replaced by the contacts of its URI;
	 * one that is not a registered AOR stays as it was */
	for (msg_branch_t *b = old, *next; b; b = next) {
		reg_branch_t *list;
		str_t aor;
		next = b->next;
		if (reg_aor_of(m, b->uri, &aor) == 0 && collect(m, table, aor, &list) == REG_FOUND) {
			append_branches(m, ctx, list);
			best = REG_FOUND;
			continue;
		}
		msg_branch_t *kept = msg_append_branch(m, b->uri, b->du, b->q);
		if (kept) {
			kept->path = b->path;
			kept->sock = b->sock;
			kept->bflags = b->bflags;
		}
	}
	return best;
}
