// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ UTF-8 */

/*
 * Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one:
 * overlong forms, surrogates and code points past U+10FFFF are invalid.
 */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	if (c < 0xc2 || c > 0xf4)
		return 0;
	size_t n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (c == 0xe0 && s[1] < 0xa0)
		return 0; /* overlong */
	if (c == 0xed && s[1] >= 0xa0)
		return 0; /* surrogate */
	if (c == 0xf0 && s[1] < 0x90)
		return 0; /* overlong */
	if (c == 0xf4 && s[1] >= 0x90)
		return 0; /* past U+10FFFF */
	return n;
}

static size_t utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* ----------------------------------------------------------------- parser */

typedef struct {
	arena_t *a;
	const char *s;
	size_t len;
	size_t pos;
	unsigned depth;
	const char *err;
	size_t err_pos;
	bool oom;
} parser_t;

static int fail(parser_t *p, const char *msg)
{
	if (!p->err) {
		p->err = msg;
		p->err_pos = p->pos;
	}
	return -EINVAL;
}

static int fail_oom(parser_t *p)
{
	p->oom = true;
	return fail(p, "out of memory");
}

static void skip_ws(parser_t *p)
{
	while (p->pos < p->len) {
		char c = p->s[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		p->pos++;
	}
}

static bool at(const parser_t *p, char c)
{
	return p->pos < p->len && p->s[p->pos] == c;
}

static int hex4(parser_t *p, uint32_t *out)
{
	uint32_t v = 0;
	if (p->len - p->pos < 4)
		return fail(p, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = p->s[p->pos++];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return fail(p, "bad hex digit in \\u escape");
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

/* After "\u" (already consumed): one code point, pairing surrogates. */
static int unicode_escape(parser_t *p, uint32_t *cp)
{
	uint32_t hi, lo;
	if (hex4(p, &hi) < 0)
		return -EINVAL;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return fail(p, "unpaired low surrogate");
	if (hi < 0xd800 || hi > 0xdbff) {
		*cp = hi;
		return 0;
	}
	if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
		return fail(p, "unpaired high surrogate");
	p->pos += 2;
	if (hex4(p, &lo) < 0)
		return -EINVAL;
	if (lo < 0xdc00 || lo > 0xdfff)
		return fail(p, "unpaired high surrogate");
	*cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

static int escape(parser_t *p, char *out, size_t *n)
{
	if (p->pos >= p->len)
		return fail(p, "truncated escape");
	char c = p->s[p->pos++];
	static const char from[] = "\"\\/bfnrt";
	static const char to[] = "\"\\/\b\f\n\r\t";
	const char *k = c ? strchr(from, c) : NULL;
	if (k) {
		out[(*n)++] = to[k - from];
		return 0;
	}
	if (c != 'u') {
		p->pos--;
		return fail(p, "bad escape");
	}
	uint32_t cp;
	if (unicode_escape(p, &cp) < 0)
		return -EINVAL;
	*n += utf8_put(out + *n, cp);
	return 0;
}

/* p->pos is just past the opening quote. Escapes never decode longer than they are written. */
static int parse_string(parser_t *p, str_t *out)
{
	size_t start = p->pos, end = start;
	while (end < p->len && p->s[end] != '"')
		end += p->s[end] == '\\' ? 2 : 1;
	if (end >= p->len) {
		p->pos = p->len;
		return fail(p, "unterminated string");
	}
	char *buf = arena_alloc(p->a, end - start + 1);
	if (!buf)
		return fail_oom(p);
	size_t n = 0;
	while (p->pos < end) {
		unsigned char c = (unsigned char)p->s[p->pos];
		if (c == '\\') {
			p->pos++;
			if (escape(p, buf, &n) < 0)
				return -EINVAL;
			continue;
		}
		if (c < 0x20)
			return fail(p, "control character in string");
		size_t k = utf8_seq((const unsigned char *)p->s + p->pos, end - p->pos);
		if (!k)
			return fail(p, "invalid UTF-8 in string");
		memcpy(buf + n, p->s + p->pos, k);
		n += k;
		p->pos += k;
	}
	p->pos = end + 1;
	buf[n] = '\0';
	*out = str_from(buf, n);
	return 0;
}

static size_t digits(parser_t *p)
{
	size_t n = 0;
	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
		p->pos++;
		n++;
	}
	return n;
}

/* Exact integer value of text that is "-?[0-9]+", or false on overflow. */
static bool int_value(const char *s, size_t len, long long *out)
{
	bool neg = s[0] == '-';
	unsigned long long max = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	unsigned long long v;
	if (!str_to_u64(str_from(s + neg, len - neg), max, &v))
		return false;
	*out = neg ? (v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v) : (long long)v;
	return true;
}

static int parse_number(parser_t *p, json_t *v)
{
	size_t start = p->pos;
	bool integral = true;
	if (at(p, '-'))
		p->pos++;
	if (at(p, '0'))
		p->pos++;
	else if (!digits(p))
		return fail(p, p->pos == start ? "unexpected character" : "bad number");
	if (at(p, '.')) {
		p->pos++;
		integral = false;
		if (!digits(p))
			return fail(p, "bad number: digit expected after '.'");
	}
	if (at(p, 'e') || at(p, 'E')) {
		p->pos++;
		integral = false;
		if (at(p, '+') || at(p, '-'))
			p->pos++;
		if (!digits(p))
			return fail(p, "bad number: digit expected in exponent");
	}
	/* strtod needs a NUL-terminated copy; it doubles as the number's text. */
	v->str = arena_strdup(p->a, str_from(p->s + start, p->pos - start));
	if (!v->str.s)
		return fail_oom(p);
	v->type = JSON_NUMBER;
	v->num = strtod(v->str.s, NULL);
	v->is_int = integral && int_value(v->str.s, v->str.len, &v->i);
	return 0;
}

static int parse_literal(parser_t *p, const char *lit)
{
	size_t n = strlen(lit);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0)
		return fail(p, "unexpected character");
	p->pos += n;
	return 0;
}

static int parse_value(parser_t *p, json_t **out);

static json_t *node_new(parser_t *p, json_type_t t)
{
	json_t *v = arena_zalloc(p->a, sizeof(*v));
	if (!v) {
		fail_oom(p);
		return NULL;
	}
	v->type = t;
	return v;
}

static int parse_members(parser_t *p, json_t *obj)
{
	json_t **tail = &obj->child;
	skip_ws(p);
	if (at(p, '}')) {
		p->pos++;
		return 0;
	}
	for (;;) {
		str_t key;
		json_t *v;
		skip_ws(p);
		if (!at(p, '"'))
			return fail(p, "expected a string key");
		p->pos++;
		if (parse_string(p, &key) < 0)
			return -EINVAL;
		skip_ws(p);
		if (!at(p, ':'))
			return fail(p, "expected ':'");
		p->pos++;
		if (parse_value(p, &v) < 0)
			return -EINVAL;
		v->key = key;
		*tail = v;
		tail = &v->next;
		obj->count++;
		skip_ws(p);
		if (at(p, '}')) {
			p->pos++;
			return 0;
		}
		if (!at(p, ','))
			return fail(p, "expected ',' or '}'");
		p->pos++;
	}
}

static int parse_elements(parser_t *p, json_t *arr)
{
	json_t **tail = &arr->child;
	skip_ws(p);
	if (at(p, ']')) {
		p->pos++;
		return 0;
	}
	for (;;) {
		json_t *v;
		if (parse_value(p, &v) < 0)
			return -EINVAL;
		*tail = v;
		tail = &v->next;
		arr->count++;
		skip_ws(p);
		if (at(p, ']')) {
			p->pos++;
			return 0;
		}
		if (!at(p, ','))
			return fail(p, "expected ',' or ']'");
		p->pos++;
	}
}

static int parse_container(parser_t *p, json_t *v)
{
	if (p->depth >= JSON_MAX_DEPTH)
		return fail(p, "nesting too deep");
	p->depth++;
	p->pos++;
	int rc = v->type == JSON_OBJECT ? parse_members(p, v) : parse_elements(p, v);
	p->depth--;
	return rc;
}

static int parse_value(parser_t *p, json_t **out)
{
	skip_ws(p);
	if (p->pos >= p->len)
		return fail(p, "unexpected end of input");
	json_t *v = node_new(p, JSON_NULL);
	if (!v)
		return -ENOMEM;
	*out = v;
	switch (p->s[p->pos]) {
	case '{':
		v->type = JSON_OBJECT;
		return parse_container(p, v);
	case '[':
		v->type = JSON_ARRAY;
		return parse_container(p, v);
	case '"':
		v->type = JSON_STRING;
		p->pos++;
		return parse_string(p, &v->str);
	case 't':
		v->type = JSON_BOOL;
		v->b = true;
		return parse_literal(p, "true");
	case 'f':
		v->type = JSON_BOOL;
		return parse_literal(p, "false");
	case 'n':
		return parse_literal(p, "null");
	default:
		return parse_number(p, v);
	}
}

int json_parse(arena_t *a, const char *buf, size_t len, json_t **out, json_err_t *err)
{
	parser_t p = {.a = a, .s = buf, .len = buf ? len : 0};
	json_t *v = NULL;
	int rc = parse_value(&p, &v);
	if (rc == 0) {
		skip_ws(&p);
		if (p.pos < p.len)
			rc = fail(&p, "trailing characters after the value");
	}
	if (rc < 0) {
		if (err)
			*err = (json_err_t){p.err_pos, p.err};
		return p.oom ? -ENOMEM : -EINVAL;
	}
	*out = v;
	return 0;
}

/* ---------------------------------------------------------------- lookups */

const json_t *json_get_str(const json_t *obj, str_t key)
{
	if (!json_is(obj, JSON_OBJECT))
		return NULL;
	json_foreach(it, obj)
		if (str_eq(it->key, key))
			return it;
	return NULL;
}

const json_t *json_get(const json_t *obj, const char *key)
{
	return json_get_str(obj, str_cstr(key));
}

const json_t *json_at(const json_t *arr, size_t idx)
{
	if (!json_is(arr, JSON_ARRAY) || idx >= arr->count)
		return NULL;
	const json_t *it = arr->child;
	while (idx--)
		it = it->next;
	return it;
}

const char *json_type_name(json_type_t t)
{
	switch (t) {
	case JSON_NULL:
		return "null";
	case JSON_BOOL:
		return "boolean";
	case JSON_NUMBER:
		return "number";
	case JSON_STRING:
		return "string";
	case JSON_ARRAY:
		return "array";
	case JSON_OBJECT:
		return "object";
	}
	return "?";
}

/* ---------------------------------------------------------------- scanner */

enum { SCAN_START, SCAN_NEST, SCAN_STR, SCAN_STR_ESC, SCAN_SCALAR };
/* inside a container: what the next token may be */
enum { EX_VALUE_OR_CLOSE, EX_VALUE, EX_KEY_OR_CLOSE, EX_KEY, EX_COLON, EX_COMMA_OR_CLOSE, EX_IN_SCALAR };

static bool scan_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool scan_in_object(const json_scan_t *s)
{
	return s->depth >= 1 && s->depth <= 64 && (s->objects >> (s->depth - 1) & 1);
}

/* A container opened at s->depth (already incremented). */
static void scan_open(json_scan_t *s, char c)
{
	if (s->depth <= 64) {
		unsigned long long bit = 1ull << (s->depth - 1);
		s->objects = c == '{' ? s->objects | bit : s->objects & ~bit;
	}
	s->expect = c == '{' ? EX_KEY_OR_CLOSE : EX_VALUE_OR_CLOSE;
}

/* One byte in a container, outside strings. <0: the structure is broken. */
static int scan_nest(json_scan_t *s, char c, size_t *end)
{
	bool deep = s->depth > 64; /* past what we track: only brackets */
	if (s->expect == EX_IN_SCALAR) {
		if (!(scan_ws(c) || c == ',' || c == '}' || c == ']'))
			return 0;
		s->expect = EX_COMMA_OR_CLOSE;
	}
	if (scan_ws(c))
		return 0;
	unsigned char ex = s->expect;
	if (c == '"') {
		if (!deep && ex != EX_KEY && ex != EX_KEY_OR_CLOSE && ex != EX_VALUE && ex != EX_VALUE_OR_CLOSE)
			return -1;
		s->expect = ex == EX_KEY || ex == EX_KEY_OR_CLOSE ? EX_COLON : EX_COMMA_OR_CLOSE;
		s->state = SCAN_STR;
		return 0;
	}
	if (c == '{' || c == '[') {
		if (!deep && ex != EX_VALUE && ex != EX_VALUE_OR_CLOSE)
			return -1;
		s->depth++;
		scan_open(s, c);
		return 0;
	}
	if (c == '}' || c == ']') {
		bool obj = scan_in_object(s);
		if (!deep && (obj != (c == '}') || (ex != EX_COMMA_OR_CLOSE && ex != EX_KEY_OR_CLOSE &&
							 ex != EX_VALUE_OR_CLOSE)))
			return -1;
		if (--s->depth == 0) {
			*end = s->pos + 1;
			return 1;
		}
		s->expect = EX_COMMA_OR_CLOSE;
		return 0;
	}
	if (deep)
		return 0;
	if (c == ':') {
		if (ex != EX_COLON)
			return -1;
		s->expect = EX_VALUE;
		return 0;
	}
	if (c == ',') {
		if (ex != EX_COMMA_OR_CLOSE)
			return -1;
		s->expect = scan_in_object(s) ? EX_KEY : EX_VALUE;
		return 0;
	}
	if ((ex == EX_VALUE || ex == EX_VALUE_OR_CLOSE) &&
	    (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n')) {
		s->expect = EX_IN_SCALAR;
		return 0;
	}
	return -1;
}

static bool scan_ends_scalar(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '[' || c == ']' || c == '{' ||
	       c == '}' || c == '"' || c == ',';
}

static int scan_start(json_scan_t *s, char c)
{
	if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
		return 0;
	s->start = s->pos;
	if (c == '{' || c == '[') {
		s->depth = 1;
		s->state = SCAN_NEST;
		scan_open(s, c);
	} else if (c == '"') {
		s->state = SCAN_STR;
	} else if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
		s->state = SCAN_SCALAR;
	} else {
		return -EINVAL;
	}
	return 0;
}

bool json_scan_started(const json_scan_t *s)
{
	return s->state != SCAN_START;
}

int json_scan(json_scan_t *s, const char *buf, size_t len, size_t *end)
{
	for (; s->pos < len; s->pos++) {
		char c = buf[s->pos];
		switch (s->state) {
		case SCAN_START:
			if (scan_start(s, c) < 0)
				return -EINVAL;
			break;
		case SCAN_NEST: {
			int rc = scan_nest(s, c, end);
			if (rc < 0)
				return -EINVAL;
			if (rc > 0)
				return 1;
			break;
		}
		case SCAN_STR:
			if (c == '\\') {
				s->state = SCAN_STR_ESC;
			} else if (c == '"') {
				s->state = SCAN_NEST;
				if (s->depth == 0) {
					*end = s->pos + 1;
					return 1;
				}
			}
			break;
		case SCAN_STR_ESC:
			s->state = SCAN_STR;
			break;
		case SCAN_SCALAR:
			if (scan_ends_scalar(c)) {
				*end = s->pos;
				return 1;
			}
			break;
		}
	}
	return 0;
}

/* ----------------------------------------------------------------- writer */

void json_w_init(json_w_t *w)
{
	*w = (json_w_t){0};
}

void json_w_free(json_w_t *w)
{
	free(w->buf);
	*w = (json_w_t){0};
}

void json_w_reset(json_w_t *w)
{
	char *buf = w->buf;
	size_t cap = w->cap;
	*w = (json_w_t){.buf = buf, .cap = cap};
	if (buf)
		buf[0] = '\0';
}

bool json_w_ok(const json_w_t *w)
{
	return !w->err && w->depth == 0 && !w->after_key;
}

static bool reserve(json_w_t *w, size_t n)
{
	if (w->err)
		return false;
	if (w->cap - w->len > n)
		return true;
	size_t cap = w->cap ? w->cap : 256;
	while (cap - w->len <= n) {
		if (cap > SIZE_MAX / 2) {
			w->err = true;
			return false;
		}
		cap *= 2;
	}
	char *b = realloc(w->buf, cap);
	if (!b) {
		w->err = true;
		return false;
	}
	w->buf = b;
	w->cap = cap;
	return true;
}

static void put(json_w_t *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	if (n)
		memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void putc_(json_w_t *w, char c)
{
	put(w, &c, 1);
}

static uint64_t bit(unsigned depth)
{
	return (uint64_t)1 << (depth - 1);
}

/* Called before every value: checks it may come here and writes the comma. */
static bool value_begin(json_w_t *w)
{
	if (w->err)
		return false;
	if (w->depth == 0) {
		if (w->top_done)
			w->err = true;
		w->top_done = true;
		return !w->err;
	}
	if (w->in_object & bit(w->depth)) {
		if (!w->after_key)
			w->err = true;
		w->after_key = false;
		return !w->err;
	}
	if (w->has_items & bit(w->depth))
		putc_(w, ',');
	w->has_items |= bit(w->depth);
	return !w->err;
}

static void put_escaped(json_w_t *w, str_t s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s.s;
	size_t i = 0;
	putc_(w, '"');
	while (i < s.len && !w->err) {
		size_t run = i;
		/* copy the longest stretch needing no escape in one go */
		while (run < s.len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
			run++;
		put(w, s.s + i, run - i);
		i = run;
		if (i >= s.len)
			break;
		unsigned char c = p[i];
		if (c >= 0x80) {
			size_t k = utf8_seq(p + i, s.len - i);
			put(w, k ? s.s + i : "\xef\xbf\xbd", k ? k : 3);
			i += k ? k : 1;
			continue;
		}
		char e[6] = {'\\', 0};
		size_t n = 2;
		switch (c) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		case '\b': e[1] = 'b'; break;
		case '\f': e[1] = 'f'; break;
		default:
			memcpy(e + 1, "u00", 3);
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			n = 6;
		}
		put(w, e, n);
		i++;
	}
	putc_(w, '"');
}

static void open_(json_w_t *w, bool object)
{
	if (!value_begin(w))
		return;
	if (w->depth >= JSON_MAX_DEPTH) {
		w->err = true;
		return;
	}
	w->depth++;
	w->has_items &= ~bit(w->depth);
	if (object)
		w->in_object |= bit(w->depth);
	else
		w->in_object &= ~bit(w->depth);
	putc_(w, object ? '{' : '[');
}

static void close_(json_w_t *w, bool object)
{
	if (w->err)
		return;
	if (w->depth == 0 || !(w->in_object & bit(w->depth)) != !object || w->after_key) {
		w->err = true;
		return;
	}
	w->depth--;
	putc_(w, object ? '}' : ']');
}

void json_w_obj_begin(json_w_t *w)
{
	open_(w, true);
}

void json_w_obj_end(json_w_t *w)
{
	close_(w, true);
}

void json_w_arr_begin(json_w_t *w)
{
	open_(w, false);
}

void json_w_arr_end(json_w_t *w)
{
	close_(w, false);
}

void json_w_key_str(json_w_t *w, str_t key)
{
	if (w->err)
		return;
	if (w->depth == 0 || !(w->in_object & bit(w->depth)) || w->after_key) {
		w->err = true;
		return;
	}
	if (w->has_items & bit(w->depth))
		putc_(w, ',');
	w->has_items |= bit(w->depth);
	put_escaped(w, key);
	putc_(w, ':');
	w->after_key = true;
}

void json_w_key(json_w_t *w, const char *key)
{
	json_w_key_str(w, str_cstr(key));
}

void json_w_str(json_w_t *w, str_t s)
{
	if (value_begin(w))
		put_escaped(w, s);
}

void json_w_cstr(json_w_t *w, const char *s)
{
	if (!s)
		json_w_null(w);
	else
		json_w_str(w, str_cstr(s));
}

void json_w_printf(json_w_t *w, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		w->err = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		json_w_str(w, str_from(small, (size_t)n));
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		w->err = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	json_w_str(w, str_from(big, (size_t)n));
	free(big);
}

void json_w_int(json_w_t *w, long long v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%lld", v);
	if (value_begin(w))
		put(w, b, (size_t)n);
}

void json_w_uint(json_w_t *w, unsigned long long v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%llu", v);
	if (value_begin(w))
		put(w, b, (size_t)n);
}

void json_w_double(json_w_t *w, double v)
{
	char b[32];
	if (!isfinite(v)) {
		json_w_null(w);
		return;
	}
	/* the shortest of the two precisions that reads back as the same double */
	int n = snprintf(b, sizeof(b), "%.15g", v);
	if (strtod(b, NULL) != v)
		n = snprintf(b, sizeof(b), "%.17g", v);
	if (value_begin(w))
		put(w, b, (size_t)n);
}

void json_w_bool(json_w_t *w, bool v)
{
	if (value_begin(w))
		put(w, v ? "true" : "false", v ? 4 : 5);
}

void json_w_null(json_w_t *w)
{
	if (value_begin(w))
		put(w, "null", 4);
}

void json_w_raw(json_w_t *w, str_t json)
{
	if (value_begin(w))
		put(w, json.s, json.len);
}

void json_w_value(json_w_t *w, const json_t *v)
{
	if (!v) {
		json_w_null(w);
		return;
	}
	switch (v->type) {
	case JSON_NULL:
		json_w_null(w);
		return;
	case JSON_BOOL:
		json_w_bool(w, v->b);
		return;
	case JSON_NUMBER:
		/* the text as parsed keeps precision a double would lose */
		json_w_raw(w, v->str);
		return;
	case JSON_STRING:
		json_w_str(w, v->str);
		return;
	case JSON_ARRAY:
		json_w_arr_begin(w);
		json_foreach(it, v)
			json_w_value(w, it);
		json_w_arr_end(w);
		return;
	case JSON_OBJECT:
		json_w_obj_begin(w);
		json_foreach(it, v) {
			json_w_key_str(w, it->key);
			json_w_value(w, it);
		}
		json_w_obj_end(w);
		return;
	}
}
