// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * libFuzzer target for the JSON parser and the framing scanner of the control
 * socket, which read whatever a local client sends. Checks what the RPC server
 * relies on: the scanner never claims a value ends past the input, a value it
 * frames in one call frames the same fed byte by byte, and a parsed value
 * serializes to JSON that parses again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t a;
	static int ready;
	if (!ready) {
		arena_init(&a, 0);
		ready = 1;
	}
	arena_reset(&a);
	const char *buf = (const char *)data;

	json_scan_t s = {0};
	size_t end = 0;
	int rc = json_scan(&s, buf, size, &end);
	if (rc == 1 && (end > size || end <= s.start))
		abort();
	if (rc == 1 && size < 4096) {
		/* the same answer when the bytes come one at a time */
		json_scan_t t = {0};
		size_t end2 = 0;
		int rc2 = 0;
		for (size_t n = 1; n <= size && rc2 == 0; n++)
			rc2 = json_scan(&t, buf, n, &end2);
		if (rc2 != 1 || end2 != end)
			abort();
	}

	json_t *v = NULL;
	json_err_t err;
	if (json_parse(&a, buf, size, &v, &err) != 0)
		return 0;
	json_w_t w;
	json_w_init(&w);
	json_w_value(&w, v);
	if (json_w_ok(&w)) {
		json_t *again = NULL;
		str_t out = json_w_text(&w);
		if (json_parse(&a, out.s, out.len, &again, &err) != 0)
			abort();
	}
	json_w_free(&w);
	return 0;
}
