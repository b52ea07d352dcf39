// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * A small JSON library for the control plane: a parser into a tree, a scanner
 * that frames values in a byte stream, and a writer.
 *
 * The parser faces the network. It never reads past len, refuses nesting deeper
 * than JSON_MAX_DEPTH, accepts exactly RFC 8259 (no comments, no trailing
 * commas, no NaN, strings must be valid UTF-8, \uXXXX surrogates must pair) and
 * allocates every node and decoded string from the caller's arena: the tree
 * lives until the arena is reset, and nothing needs freeing one by one. Decoded
 * strings are NUL-terminated (the NUL is not counted) but may contain NULs
 * (from \u0000), so treat them as str_t.
 *
 * The writer appends compact JSON to a malloc'ed, growing buffer and places
 * the commas itself. Errors (out of memory, unbalanced calls, nesting deeper
 * than JSON_MAX_DEPTH) are sticky: calls after one do nothing and json_w_ok()
 * says false, so a sequence of writes needs one check at the end. Strings are
 * escaped; bytes that are not valid UTF-8 are written as U+FFFD, so the output
 * is always valid JSON whatever the input (SIP headers are not UTF-8-checked).
 *
 * Numbers are written and parsed in the C locale's format; ksrd never calls
 * setlocale().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "str.h"

#define JSON_MAX_DEPTH 64

typedef enum {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
} json_type_t;

typedef struct json json_t;
struct json {
	json_type_t type;
	bool b;        /* JSON_BOOL */
	bool is_int;   /* JSON_NUMBER without fraction or exponent that fits a long long */
	long long i;   /* JSON_NUMBER when is_int */
	double num;    /* JSON_NUMBER, always set */
	str_t str;     /* JSON_STRING: decoded; JSON_NUMBER: its text as written */
	size_t count;  /* JSON_ARRAY, JSON_OBJECT: number of children */
	json_t *child; /* first child, in document order */
	json_t *next;  /* next sibling */
	str_t key;     /* decoded member name, when the parent is an object */
};

typedef struct {
	size_t pos;      /* byte offset of the error */
	const char *msg; /* static phrase: "expected ':'", "nesting too deep", ... */
} json_err_t;

/*
 * Parses exactly one value, optionally surrounded by whitespace, from
 * buf[0..len). Returns 0 and the root in *out, or -EINVAL (syntax; err says
 * where and what, when err is not NULL) or -ENOMEM (the arena failed).
 */
int json_parse(arena_t *a, const char *buf, size_t len, json_t **out, json_err_t *err);

/* Iterates over the children of an array or object. */
#define json_foreach(it, parent) for (const json_t *it = (parent) ? (parent)->child : NULL; it; it = it->next)

/* Lookups return NULL when v is NULL, of another type, or has no such child. */
const json_t *json_get(const json_t *obj, const char *key);
const json_t *json_get_str(const json_t *obj, str_t key);
const json_t *json_at(const json_t *arr, size_t idx);

static inline bool json_is(const json_t *v, json_type_t t)
{
	return v && v->type == t;
}
static inline bool json_is_int(const json_t *v)
{
	return v && v->type == JSON_NUMBER && v->is_int;
}
/* Returns the string, or STR_NULL when v is not a string. */
static inline str_t json_str(const json_t *v)
{
	return json_is(v, JSON_STRING) ? v->str : STR_NULL;
}
const char *json_type_name(json_type_t t);

/*
 * Stream framing: finds where the first JSON value of a growing buffer ends,
 * without building anything, so a transport can wait for a whole request and
 * then parse it once. Keep one json_scan_t per pending value and call
 * json_scan() again with the same (possibly moved, possibly longer) buffer after
 * every read; it resumes where it stopped. Leading whitespace is skipped.
 *
 * Returns 1 and *end (offset just past the value) when one is complete; 0 when
 * more input is needed; -EINVAL when the bytes cannot start a JSON value or
 * break the structure of one (a key that is not a string, a missing ':' or
 * ','). Scalars are not checked: the frame still has to be parsed.
 * Scalars at top level end at the first whitespace or bracket after them.
 */
typedef struct {
	size_t pos;
	size_t start;        /* offset of the value's first byte */
	unsigned long depth; /* may exceed JSON_MAX_DEPTH: the parser refuses that */
	unsigned char state;
	/* what may come next inside a container, so that garbage in an unclosed
	 * object is refused at once rather than waited on (first 64 levels) */
	unsigned char expect;
	unsigned long long objects; /* bit d-1: level d is an object */
} json_scan_t;

int json_scan(json_scan_t *s, const char *buf, size_t len, size_t *end);
/* A value has begun (more than leading whitespace was seen). */
bool json_scan_started(const json_scan_t *s);
static inline void json_scan_reset(json_scan_t *s)
{
	*s = (json_scan_t){0};
}

/* ------------------------------------------------------------------ writer */

typedef struct {
	char *buf; /* owned; NUL-terminated while ok (not counted in len) */
	size_t len;
	size_t cap;
	unsigned depth;
	bool err;
	bool top_done;      /* the one top-level value has been started */
	bool after_key;     /* a key was written, its value comes next */
	uint64_t has_items; /* bit d-1: the container at depth d already has an item */
	uint64_t in_object; /* bit d-1: the container at depth d is an object */
} json_w_t;

void json_w_init(json_w_t *w);
void json_w_free(json_w_t *w);
/* Empties the buffer (keeping its memory) and clears errors. */
void json_w_reset(json_w_t *w);
/* True when no error happened and every container was closed. */
bool json_w_ok(const json_w_t *w);
/* The JSON text so far; borrowed, valid until the next write. */
static inline str_t json_w_text(const json_w_t *w)
{
	return str_from(w->buf ? w->buf : "", w->buf ? w->len : 0);
}

void json_w_obj_begin(json_w_t *w);
void json_w_obj_end(json_w_t *w);
void json_w_arr_begin(json_w_t *w);
void json_w_arr_end(json_w_t *w);
/* Inside an object, each value is preceded by exactly one key. */
void json_w_key(json_w_t *w, const char *key);
void json_w_key_str(json_w_t *w, str_t key);
void json_w_str(json_w_t *w, str_t s);
/* A NULL string is written as null. */
void json_w_cstr(json_w_t *w, const char *s);
void json_w_printf(json_w_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void json_w_int(json_w_t *w, long long v);
void json_w_uint(json_w_t *w, unsigned long long v);
/* NaN and infinities have no JSON spelling: they are written as null. */
void json_w_double(json_w_t *w, double v);
void json_w_bool(json_w_t *w, bool v);
void json_w_null(json_w_t *w);
/* Writes a parsed value back (a NULL v is written as null). */
void json_w_value(json_w_t *w, const json_t *v);
/*
 * Appends text that the caller guarantees is exactly one valid JSON value,
 * e.g. the output of another writer.
 */
void json_w_raw(json_w_t *w, str_t json);

/* key + value in one call, for the common object member. */
static inline void json_w_kstr(json_w_t *w, const char *k, str_t v)
{
	json_w_key(w, k);
	json_w_str(w, v);
}
static inline void json_w_kcstr(json_w_t *w, const char *k, const char *v)
{
	json_w_key(w, k);
	json_w_cstr(w, v);
}
static inline void json_w_kint(json_w_t *w, const char *k, long long v)
{
	json_w_key(w, k);
	json_w_int(w, v);
}
static inline void json_w_kuint(json_w_t *w, const char *k, unsigned long long v)
{
	json_w_key(w, k);
	json_w_uint(w, v);
}
static inline void json_w_kdouble(json_w_t *w, const char *k, double v)
{
	json_w_key(w, k);
	json_w_double(w, v);
}
static inline void json_w_kbool(json_w_t *w, const char *k, bool v)
{
	json_w_key(w, k);
	json_w_bool(w, v);
}
