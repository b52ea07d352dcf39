// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Attribute-value pairs ($avp(name)): a stack of named values per message,
 * handed to the transaction when the request is relayed so failure and reply
 * routes see (and change) the same values, as in Kamailio. Assigning pushes a
 * new value on top; reading gives the newest (index 0) or an older one.
 * Everything is malloc'd: a list outlives the message arena.
 */
#include <stdbool.h>

#include "str.h"

typedef struct avp {
	struct avp *next;
	bool is_int;
	long long i;
	str_t s;       /* owned, NUL-terminated */
	size_t name_len;
	char name[];   /* not NUL-terminated */
} avp_t;

/* Pushes a value (string copied); 0 or -1 when out of memory. */
int avp_push(avp_t **list, str_t name, bool is_int, long long i, str_t s);
/* idx-th value of name, newest first (negative: from the oldest); NULL if none. */
const avp_t *avp_get(const avp_t *list, str_t name, int idx);
/* Removes every value of name; returns how many. */
int avp_del(avp_t **list, str_t name);
void avp_free_all(avp_t **list);
