// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Strings are slices into someone else's buffer: never assumed NUL-terminated.
 * Who owns the bytes is said by whoever hands out the slice (usually the message
 * being parsed, valid until the message is done).
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct {
	const char *s;
	size_t len;
} str_t;

#define STR_LIT(lit) ((str_t){(lit), sizeof(lit) - 1})
#define STR_NULL ((str_t){NULL, 0})
#define STR_FMT(x) (int)(x).len, (x).s /* use with "%.*s" */

static inline str_t str_from(const char *s, size_t len)
{
	return (str_t){s, len};
}

static inline str_t str_cstr(const char *s)
{
	return (str_t){s, s ? strlen(s) : 0};
}

static inline bool str_eq(str_t a, str_t b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.s, b.s, a.len) == 0);
}

static inline bool str_caseeq(str_t a, str_t b)
{
	return a.len == b.len && (a.len == 0 || strncasecmp(a.s, b.s, a.len) == 0);
}

/* Byte order of a and b, a prefix first (Kamailio's cmp_str): <0, 0 or >0. */
static inline int str_cmp(str_t a, str_t b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int d = n ? memcmp(a.s, b.s, n) : 0;
	return d ? d : a.len == b.len ? 0 : a.len < b.len ? -1 : 1;
}

/* str_cmp ignoring ASCII case (Kamailio's cmpi_str). */
static inline int str_casecmp(str_t a, str_t b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int d = n ? strncasecmp(a.s, b.s, n) : 0;
	return d ? d : a.len == b.len ? 0 : a.len < b.len ? -1 : 1;
}

static inline bool str_caseeq_lit(str_t a, const char *lit)
{
	return str_caseeq(a, str_cstr(lit));
}

/* Removes leading and trailing SP/HTAB/CR/LF. */
static inline str_t str_trim(str_t x)
{
	while (x.len && (x.s[0] == ' ' || x.s[0] == '\t' || x.s[0] == '\r' || x.s[0] == '\n')) {
		x.s++;
		x.len--;
	}
	while (x.len && (x.s[x.len - 1] == ' ' || x.s[x.len - 1] == '\t' || x.s[x.len - 1] == '\r' ||
			 x.s[x.len - 1] == '\n'))
		x.len--;
	return x;
}

/* Parses an unsigned decimal that must fill the whole slice; false on overflow past max. */
static inline bool str_to_u64(str_t x, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;
	if (x.len == 0)
		return false;
	for (size_t i = 0; i < x.len; i++) {
		unsigned d = (unsigned char)x.s[i] - '0';
		if (d > 9)
			return false;
		/* no division per digit: this parses every port, CSeq and length */
		if (v > 1844674407370955161ULL /* ULLONG_MAX / 10 */)
			return false;
		unsigned long long nv = v * 10 + d;
		if (nv < v * 10 || nv > max)
			return false;
		v = nv;
	}
	*out = v;
	return true;
}
