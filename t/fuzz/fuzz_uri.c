// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * libFuzzer target for the URI parser and the %HH decoder; the input is one
 * URI. Checks the invariants a caller relies on: every slice lies inside the
 * input, and unescaping never grows a string.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/parser/sip_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(str_t in, str_t part)
{
	if (!part.s)
		return;
	if (part.s < in.s || part.s + part.len > in.s + in.len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t a;
	static int ready;
	if (!ready) {
		arena_init(&a, 0);
		ready = 1;
	}
	arena_reset(&a);
	str_t in = str_from((const char *)data, size);
	sip_uri_t u;
	sip_error_t e = {0};
	int rc = sip_uri_parse(&a, in, &u, &e);
	if (rc != SIP_OK && (rc != SIP_E_PARSE || !e.reason || e.status != 400))
		abort();
	if (rc == SIP_OK) {
		inside(in, u.scheme_str);
		inside(in, u.user);
		inside(in, u.password);
		inside(in, u.host);
		inside(in, u.port_str);
		inside(in, u.params_str);
		inside(in, u.headers);
		inside(in, u.transport);
		inside(in, u.maddr);
		for (const sip_param_t *p = u.params; p; p = p->next) {
			inside(in, p->name);
			inside(in, p->value);
		}
		(void)sip_uri_port(&u);
		(void)sip_uri_proto(&u);
		str_t un = sip_unescape(&a, u.user);
		if (un.len > u.user.len)
			abort();
	}
	str_t all = sip_unescape(&a, in);
	if (!all.s || all.len > size)
		abort();
	return 0;
}
