// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * libFuzzer target for the message parser: frames the input as a stream,
 * parses it as a datagram and as a stream, validates, and then calls every
 * accessor and walks everything they return, so that lazily parsed headers
 * are exercised whether or not validation passed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/parser/sip_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void touch(str_t s)
{
	if (s.s && s.len)
		sink += (unsigned char)s.s[0] + (unsigned char)s.s[s.len - 1];
}

static void walk_params(const sip_param_t *p)
{
	for (; p; p = p->next) {
		touch(p->name);
		touch(p->value);
	}
}

static void walk_uri(arena_t *a, const sip_uri_t *u)
{
	touch(u->raw);
	touch(u->user);
	touch(u->host);
	touch(u->headers);
	walk_params(u->params);
	touch(sip_unescape(a, u->user));
	sink += sip_uri_port(u) + (size_t)sip_uri_proto(u);
}

static void walk_nameaddrs(arena_t *a, const sip_nameaddr_t *n)
{
	for (; n; n = n->next) {
		touch(n->raw);
		touch(n->display);
		touch(n->tag);
		touch(n->instance);
		walk_params(n->params);
		walk_uri(a, &n->uri);
	}
}

static void walk_auth(const sip_auth_t *au)
{
	if (!au)
		return;
	touch(au->scheme);
	touch(au->username);
	touch(au->response);
	walk_params(au->params);
}

static void accessors(sip_msg_t *m)
{
	sip_uri_t *u = sip_msg_ruri(m);
	if (u)
		walk_uri(m->arena, u);
	for (sip_via_t *v = sip_msg_via1(m); v; v = v->next) {
		touch(v->raw);
		touch(v->host);
		touch(v->branch);
		touch(v->received);
		touch(v->params_str);
		walk_params(v->params);
	}
	sip_msg_via2(m);
	sip_nameaddr_t *n = sip_msg_from(m);
	if (n)
		walk_nameaddrs(m->arena, n);
	n = sip_msg_to(m);
	if (n)
		walk_nameaddrs(m->arena, n);
	sip_cseq_t *cs = sip_msg_cseq(m);
	if (cs)
		touch(cs->method);
	touch(sip_msg_callid(m));
	sip_contacts_t *c = sip_msg_contacts(m);
	if (c)
		walk_nameaddrs(m->arena, c->first);
	walk_nameaddrs(m->arena, sip_msg_routes(m));
	walk_nameaddrs(m->arena, sip_msg_record_routes(m));
	sink += (size_t)sip_msg_max_forwards(m) + (size_t)sip_msg_expires(m);
	for (int t = HDR_OTHER; t <= HDR__COUNT; t++) {
		walk_params(sip_msg_option_tags(m, (sip_hdr_type_t)t));
		walk_auth(sip_msg_auth(m, (sip_hdr_type_t)t));
	}
	for (unsigned i = 0; i < m->nhdrs; i++) {
		sip_hdr_t *h = &m->hdrs[i];
		touch(sip_hdr_unfold(m, h));
		walk_auth(sip_hdr_auth(m, h));
		if (i < 32) { /* lookups by name are linear: keep the run time linear too */
			sink += sip_msg_hdr_count(m, h->name);
			sip_msg_hdr_find_idx(m, h->name, -1);
			sip_msg_hdr_find_idx(m, h->name, 1);
		}
		/* the standalone parsers on every body, whatever its type */
		sip_via_t *v;
		sip_nameaddr_t *na;
		sip_param_t *p;
		sip_error_t e;
		sip_parse_via_list(m->arena, h->body, h, &v, &e);
		sip_parse_nameaddr_list(m->arena, h->body, h, &na, &e);
		sip_parse_params(m->arena, h->body, ';', &p, &e);
		sip_parse_params(m->arena, h->body, ',', &p, &e);
	}
	sip_msg_hdr_find(m, STR_LIT("X-Unknown"));
	sip_msg_hdr_find(m, STR_LIT("v"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t a;
	static int ready;
	if (!ready) {
		arena_init(&a, 0);
		ready = 1;
	}
	const char *buf = (const char *)data;
	long framed = sip_frame_stream(buf, size, 4096);
	size_t skip = sip_skip_keepalive(buf, size);
	sink += (size_t)framed + skip;

	static const unsigned modes[] = {SIP_PARSE_DATAGRAM, SIP_PARSE_STREAM};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		sip_msg_t m;
		arena_reset(&a);
		int rc = sip_parse_msg(&m, buf, size, &a, modes[i]);
		if (rc == SIP_OK && m.len > size)
			abort();
		if (rc == SIP_OK && m.content_length >= 0 && m.body.len != (size_t)m.content_length)
			abort();
		sip_msg_validate(&m);
		accessors(&m);
		/* a second round must come from the caches without breaking anything */
		sip_msg_validate(&m);
		accessors(&m);
	}
	/* a message that frames on a stream must parse as a stream message of that length */
	if (framed > 0) {
		sip_msg_t m;
		arena_reset(&a);
		int rc = sip_parse_msg(&m, buf, (size_t)framed, &a, SIP_PARSE_STREAM);
		if (rc == SIP_E_INCOMPLETE)
			abort();
		if (rc == SIP_OK && m.len != (size_t)framed)
			abort();
	}
	return 0;
}
