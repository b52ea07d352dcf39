// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * The JSON library: what the parser accepts and refuses (RFC 8259 exactly,
 * nesting bounded, never a read past the input), what the writer produces,
 * round trips between them, and the stream scanner the transports frame
 * requests with.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/lib/json.h"

static arena_t A;

static void setup(void)
{
	arena_init(&A, 4096);
}

static void teardown(void)
{
	arena_free(&A);
}

/* Parses from an exact-size heap copy, so ASan catches any read past the end. */
static int parse(const char *text, json_t **out, json_err_t *err)
{
	size_t n = strlen(text);
	char *copy = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, n);
	json_err_t e = {0};
	int rc = json_parse(&A, copy, n, out, &e);
	free(copy);
	if (err)
		*err = e;
	return rc;
}

static json_t *ok(const char *text)
{
	json_t *v = NULL;
	json_err_t e = {0};
	int rc = parse(text, &v, &e);
	ck_assert_msg(rc == 0, "%s: refused: %s at %zu", text, e.msg, e.pos);
	return v;
}

static void refused(const char *text, const char *why)
{
	json_t *v = NULL;
	json_err_t e = {0};
	ck_assert_msg(parse(text, &v, &e) == -EINVAL, "accepted: %s", text);
	ck_assert_ptr_nonnull(e.msg);
	if (why)
		ck_assert_msg(strstr(e.msg, why), "%s: said \"%s\", expected \"%s\"", text, e.msg, why);
}

/* The compact text of a value through the writer. */
static const char *written(const json_t *v)
{
	static char out[4096];
	json_w_t w;
	json_w_init(&w);
	json_w_value(&w, v);
	ck_assert(json_w_ok(&w));
	ck_assert_uint_lt(w.len, sizeof(out));
	memcpy(out, w.buf, w.len + 1);
	json_w_free(&w);
	return out;
}

static void str_is(str_t s, const char *bytes, size_t n)
{
	ck_assert_uint_eq(s.len, n);
	ck_assert_mem_eq(s.s, bytes, n);
}

/* ----------------------------------------------------------------- parse */

START_TEST(scalars)
{
	ck_assert_int_eq(ok("null")->type, JSON_NULL);
	ck_assert(ok(" true ")->b);
	ck_assert_int_eq(ok("false")->type, JSON_BOOL);
	ck_assert(!ok("false")->b);
	str_is(json_str(ok("\"hi\"")), "hi", 2);
	str_is(json_str(ok("\"\"")), "", 0);
	refused("", "end of input");
	refused("   ", "end of input");
	refused("tru", NULL);
	refused("nul", NULL);
	refused("True", NULL);
	refused("nulll", "trailing");
	refused("undefined", NULL);
	refused("'x'", NULL);
}
END_TEST

START_TEST(numbers)
{
	json_t *v = ok("42");
	ck_assert(v->is_int);
	ck_assert_int_eq(v->i, 42);
	ck_assert(v->num == 42.0);
	v = ok("-0");
	ck_assert(v->is_int && v->i == 0);
	v = ok("9223372036854775807");
	ck_assert(v->is_int && v->i == LLONG_MAX);
	v = ok("-9223372036854775808");
	ck_assert(v->is_int && v->i == LLONG_MIN);
	v = ok("9223372036854775808");
	ck_assert(!v->is_int);
	ck_assert(v->num > 9.2e18);
	v = ok("1.5");
	ck_assert(!v->is_int && v->num == 1.5);
	v = ok("-2.5e3");
	ck_assert(v->num == -2500.0);
	v = ok("1E+2");
	ck_assert(!v->is_int && v->num == 100.0);
	v = ok("1e-2");
	ck_assert(fabs(v->num - 0.01) < 1e-12);
	str_is(ok("12.50")->str, "12.50", 5);
	/* a huge exponent is valid JSON; it reads as infinity and is written back as written */
	ck_assert_str_eq(written(ok("1e999")), "1e999");
	refused("01", NULL);
	refused("-", "bad number");
	refused("1.", "digit expected after '.'");
	refused(".5", NULL);
	refused("1e", "exponent");
	refused("1e+", "exponent");
	refused("+1", NULL);
	refused("0x10", NULL);
	refused("NaN", NULL);
	refused("-Infinity", NULL);
	refused("1 2", "trailing");
}
END_TEST

START_TEST(strings_and_escapes)
{
	str_is(json_str(ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"")), "\"\\/\b\f\n\r\t", 8);
	str_is(json_str(ok("\"\\u0041\\u00e9\\u20AC\"")), "A\xc3\xa9\xe2\x82\xac", 6);
	/* a surrogate pair is one code point, U+1F600, four bytes of UTF-8 */
	str_is(json_str(ok("\"\\ud83d\\ude00\"")), "\xf0\x9f\x98\x80", 4);
	str_is(json_str(ok("\"\\uDBFF\\uDFFF\"")), "\xf4\x8f\xbf\xbf", 4);
	/* \u0000 is allowed: the result is a slice with a NUL inside */
	str_is(json_str(ok("\"a\\u0000b\"")), "a\0b", 3);
	/* raw UTF-8 passes through */
	str_is(json_str(ok("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"")), "caf\xc3\xa9 \xf0\x9f\x98\x80", 10);
	/* decoded strings are NUL-terminated for convenience */
	ck_assert_int_eq(json_str(ok("\"xyz\"")).s[3], 0);

	refused("\"\\ud83d\"", "unpaired high surrogate");
	refused("\"\\ud83d\\u0041\"", "unpaired high surrogate");
	refused("\"\\ude00\"", "unpaired low surrogate");
	refused("\"\\u12\"", "\\u escape");
	refused("\"\\u12", NULL);
	refused("\"\\uzzzz\"", "hex");
	refused("\"\\x41\"", "bad escape");
	refused("\"\\", NULL);
	refused("\"abc", "unterminated");
	refused("\"a\nb\"", "control character");
	refused("\"a\tb\"", "control character");
	refused("\"\xff\"", "UTF-8");
	refused("\"\xc0\xaf\"", "UTF-8");         /* overlong '/' */
	refused("\"\xed\xa0\x80\"", "UTF-8");     /* encoded surrogate */
	refused("\"\xf4\x90\x80\x80\"", "UTF-8"); /* past U+10FFFF */
	refused("\"\xe2\x82\"", "UTF-8");         /* truncated sequence */
}
END_TEST

START_TEST(containers)
{
	json_t *v = ok(" { \"a\" : [1, 2, {\"b\": null}], \"c\": \"d\", \"a\": 9, \"\": true } ");
	ck_assert_int_eq(v->type, JSON_OBJECT);
	ck_assert_uint_eq(v->count, 4);
	const json_t *a = json_get(v, "a");
	ck_assert(json_is(a, JSON_ARRAY));
	ck_assert_uint_eq(a->count, 3);
	ck_assert_int_eq(json_at(a, 1)->i, 2);
	ck_assert(json_is(json_get(json_at(a, 2), "b"), JSON_NULL));
	ck_assert_ptr_null(json_at(a, 3));
	ck_assert_ptr_null(json_get(a, "x"));   /* not an object */
	ck_assert_ptr_null(json_at(v, 0));      /* not an array */
	ck_assert_ptr_null(json_get(NULL, "a"));
	ck_assert_ptr_null(json_get(v, "missing"));
	str_is(json_str(json_get(v, "c")), "d", 1);
	ck_assert(json_get(v, "")->b);
	/* a duplicate key: lookups see the first */
	ck_assert(json_is(json_get(v, "a"), JSON_ARRAY));
	/* keys are decoded like strings */
	ck_assert_ptr_nonnull(json_get(ok("{\"\\u0061\\n\":1}"), "a\n"));
	ck_assert_uint_eq(ok("[]")->count, 0);
	ck_assert_uint_eq(ok("{}")->count, 0);
	size_t n = 0;
	json_foreach(it, ok("[1,2,3]"))
		n += (size_t)it->i;
	ck_assert_uint_eq(n, 6);

	refused("[1,]", NULL);
	refused("[,1]", NULL);
	refused("{\"a\":1,}", "string key");
	refused("{\"a\" 1}", "':'");
	refused("{a:1}", "string key");
	refused("{\"a\":}", NULL);
	refused("[1 2]", "',' or ']'");
	refused("{\"a\":1 \"b\":2}", "',' or '}'");
	refused("[1}", NULL);
	refused("{]", NULL);
	refused("[", "end of input");
	refused("{\"a\":[1,{\"b\":", "end of input");
	refused("[1] [2]", "trailing");
	refused("[/* no */1]", NULL);
}
END_TEST

START_TEST(depth_limit)
{
	char buf[400];
	size_t n = 0;
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		buf[n++] = '[';
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		buf[n++] = ']';
	buf[n] = '\0';
	ok(buf);
	n = 0;
	for (int i = 0; i < JSON_MAX_DEPTH + 1; i++)
		buf[n++] = '[';
	for (int i = 0; i < JSON_MAX_DEPTH + 1; i++)
		buf[n++] = ']';
	buf[n] = '\0';
	refused(buf, "nesting too deep");
	/* objects count too, mixed with arrays */
	n = 0;
	for (int i = 0; i < 40; i++)
		n += (size_t)sprintf(buf + n, "{\"a\":[");
	buf[n] = '\0';
	refused(buf, "nesting too deep");

	/* a megabyte of brackets is refused quickly and without deep recursion */
	size_t big = 1024 * 1024;
	char *deep = malloc(big);
	ck_assert_ptr_nonnull(deep);
	memset(deep, '[', big);
	json_t *v;
	json_err_t e;
	ck_assert_int_eq(json_parse(&A, deep, big, &v, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "nesting too deep");
	ck_assert_uint_eq(e.pos, JSON_MAX_DEPTH);
	free(deep);
}
END_TEST

/* Every proper prefix of a valid document is refused, and read within bounds. */
START_TEST(truncated)
{
	static const char *docs[] = {
		"{\"jsonrpc\":\"2.0\",\"method\":\"core.version\",\"params\":[1,-2.5e3,true,null],\"id\":7}",
		"[\"\\ud83d\\ude00\",\"\\u00e9\\n\",{\"k\":[[],{}]},false]",
		"\"caf\xc3\xa9\"",
		"-12.75e-3",
	};
	for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
		size_t len = strlen(docs[d]);
		for (size_t cut = 0; cut < len; cut++) {
			char *p = malloc(cut ? cut : 1);
			ck_assert_ptr_nonnull(p);
			memcpy(p, docs[d], cut);
			json_t *v;
			int rc = json_parse(&A, p, cut, &v, NULL);
			free(p);
			/* "-12.75e-3" cut to "-12.75" or "-12" is still a number */
			if (d == 3 && (cut == 3 || cut == 6 || cut == 2 || cut == 5))
				continue;
			ck_assert_msg(rc == -EINVAL, "doc %zu cut at %zu accepted", d, cut);
		}
		ok(docs[d]);
	}
}
END_TEST

/* Random bytes and mutated documents: refused or accepted, never a crash or an overread. */
START_TEST(garbage)
{
	static const char alphabet[] = "{}[]\",:\\u0123456789abcdefEe.+-tfnrl \n\t\x80\xc3\xa9\xff";
	const char *seed = "{\"a\":[1,2.5,\"x\\u00e9\\ud83d\\ude00\",true,null,{\"b\":false}],\"c\":-3e2}";
	size_t slen = strlen(seed);
	unsigned long long x = 88172645463325252ULL;
	for (int round = 0; round < 20000; round++) {
		char buf[96];
		size_t n;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (round & 1) {
			n = x % sizeof(buf);
			for (size_t i = 0; i < n; i++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				buf[i] = alphabet[x % (sizeof(alphabet) - 1)];
			}
		} else {
			n = slen;
			memcpy(buf, seed, n);
			for (int k = 0; k < 3; k++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				buf[x % n] = alphabet[(x >> 20) % (sizeof(alphabet) - 1)];
			}
		}
		char *p = malloc(n ? n : 1);
		ck_assert_ptr_nonnull(p);
		memcpy(p, buf, n);
		json_t *v;
		json_err_t e = {0};
		int rc = json_parse(&A, p, n, &v, &e);
		ck_assert(rc == 0 || rc == -EINVAL);
		if (rc == 0) {
			/* what was accepted is written back as valid JSON that parses again */
			const char *w = written(v);
			ck_assert_int_eq(json_parse(&A, w, strlen(w), &v, NULL), 0);
		} else {
			ck_assert_uint_le(e.pos, n);
		}
		json_scan_t s = {0};
		size_t end;
		rc = json_scan(&s, p, n, &end);
		ck_assert(rc >= -EINVAL && rc <= 1);
		if (rc == 1)
			ck_assert_uint_le(end, n);
		free(p);
		arena_reset(&A);
	}
}
END_TEST

/* ---------------------------------------------------------------- writer */

START_TEST(round_trip)
{
	static const char *docs[] = {
		"{\"a\":[1,-2,3.25,1e10,-0],\"b\":{\"c\":null,\"d\":true,\"e\":false},\"f\":\"x\\\"y\\\\z\"}",
		"[]",
		"{}",
		"[[[]],{},\"\"]",
		"\"\\u0001\\u001f\\n\\r\\t\\b\\f\"",
		"\"caf\xc3\xa9 \xf0\x9f\x98\x80 /\"",
		"123456789012345678901234567890",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		ck_assert_str_eq(written(ok(docs[i])), docs[i]);
	/* whitespace goes, escapes are normalized */
	ck_assert_str_eq(written(ok(" [ 1 , { \"a\" : \"\\u0041\\/\" } ] ")), "[1,{\"a\":\"A/\"}]");
	ck_assert_str_eq(written(ok("\"\\ud83d\\ude00\"")), "\"\xf0\x9f\x98\x80\"");
	ck_assert_str_eq(written(ok("\"a\\u0000b\"")), "\"a\\u0000b\"");
}
END_TEST

START_TEST(writer)
{
	json_w_t w;
	json_w_init(&w);
	json_w_obj_begin(&w);
	json_w_kstr(&w, "s", STR_LIT("q\"b\\s\x01\x7f"));
	json_w_kint(&w, "min", LLONG_MIN);
	json_w_kuint(&w, "max", ULLONG_MAX);
	json_w_kdouble(&w, "d", 0.1);
	json_w_kdouble(&w, "big", 1e300);
	json_w_kdouble(&w, "nan", NAN);
	json_w_kdouble(&w, "inf", -INFINITY);
	json_w_kbool(&w, "t", true);
	json_w_kcstr(&w, "nil", NULL);
	json_w_key(&w, "arr");
	json_w_arr_begin(&w);
	json_w_int(&w, 1);
	json_w_printf(&w, "%s-%d", "x", 2);
	json_w_arr_begin(&w);
	json_w_arr_end(&w);
	json_w_obj_begin(&w);
	json_w_obj_end(&w);
	json_w_null(&w);
	json_w_arr_end(&w);
	json_w_key(&w, "raw");
	json_w_raw(&w, STR_LIT("{\"k\":[1]}"));
	json_w_obj_end(&w);
	ck_assert(json_w_ok(&w));
	ck_assert_str_eq(w.buf, "{\"s\":\"q\\\"b\\\\s\\u0001\x7f\",\"min\":-9223372036854775808,"
				"\"max\":18446744073709551615,\"d\":0.1,\"big\":1e+300,\"nan\":null,\"inf\":null,"
				"\"t\":true,\"nil\":null,\"arr\":[1,\"x-2\",[],{},null],\"raw\":{\"k\":[1]}}");
	ck_assert_int_eq(json_parse(&A, w.buf, w.len, &(json_t *){0}, NULL), 0);

	/* bytes that are not UTF-8 become U+FFFD: the output stays valid JSON */
	json_w_reset(&w);
	json_w_str(&w, STR_LIT("a\xff" "b\xc3(\xe2\x82\xac"));
	ck_assert_str_eq(w.buf, "\"a\xef\xbf\xbd" "b\xef\xbf\xbd(\xe2\x82\xac\"");
	json_t *v;
	ck_assert_int_eq(json_parse(&A, w.buf, w.len, &v, NULL), 0);

	/* a long string in one go, and doubles that need all 17 digits */
	json_w_reset(&w);
	char big[5000];
	memset(big, 'z', sizeof(big));
	json_w_arr_begin(&w);
	json_w_str(&w, str_from(big, sizeof(big)));
	json_w_double(&w, 0.1 + 0.2);
	json_w_arr_end(&w);
	ck_assert(json_w_ok(&w));
	ck_assert_int_eq(json_parse(&A, w.buf, w.len, &v, NULL), 0);
	ck_assert_uint_eq(json_at(v, 0)->str.len, sizeof(big));
	ck_assert(json_at(v, 1)->num == 0.1 + 0.2);
	json_w_free(&w);
}
END_TEST

START_TEST(writer_misuse)
{
	json_w_t w;
	json_w_init(&w);
	ck_assert(json_w_ok(&w)); /* empty is fine */

	json_w_obj_begin(&w);
	json_w_int(&w, 1); /* a value without a key */
	ck_assert(!json_w_ok(&w));

	json_w_reset(&w);
	json_w_arr_begin(&w);
	json_w_key(&w, "k"); /* a key in an array */
	ck_assert(!json_w_ok(&w));

	json_w_reset(&w);
	json_w_arr_begin(&w);
	ck_assert(!json_w_ok(&w)); /* unclosed */
	json_w_obj_end(&w);        /* wrong closer */
	ck_assert(!json_w_ok(&w));

	json_w_reset(&w);
	json_w_int(&w, 1);
	json_w_int(&w, 2); /* two top-level values */
	ck_assert(!json_w_ok(&w));

	json_w_reset(&w);
	json_w_obj_begin(&w);
	json_w_key(&w, "a");
	json_w_obj_end(&w); /* key without value */
	ck_assert(!json_w_ok(&w));

	json_w_reset(&w);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_w_arr_begin(&w);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_w_arr_end(&w);
	ck_assert(json_w_ok(&w));
	json_w_reset(&w);
	for (int i = 0; i <= JSON_MAX_DEPTH; i++)
		json_w_arr_begin(&w);
	ck_assert(!json_w_ok(&w));
	json_w_free(&w);
}
END_TEST

/* --------------------------------------------------------------- scanner */

START_TEST(scanner)
{
	json_scan_t s = {0};
	size_t end = 0;
	const char *two = " {\"a\":\"}]\\\"{\",\"b\":[1,{}]}\n{\"c\":2}";
	ck_assert_int_eq(json_scan(&s, two, strlen(two), &end), 1);
	ck_assert_uint_eq(s.start, 1);
	ck_assert_uint_eq(end, strlen(" {\"a\":\"}]\\\"{\",\"b\":[1,{}]}"));
	json_scan_reset(&s);
	const char *rest = two + end;
	ck_assert_int_eq(json_scan(&s, rest, strlen(rest), &end), 1);
	ck_assert_uint_eq(end, strlen(rest));

	/* fed one byte at a time, it finds the same end */
	const char *doc = "[\"x\\\\\",{\"y\":\"\\\"]\"}] trailing";
	size_t want = strlen("[\"x\\\\\",{\"y\":\"\\\"]\"}]");
	json_scan_reset(&s);
	int rc = 0;
	size_t n;
	for (n = 1; n <= strlen(doc) && rc == 0; n++)
		rc = json_scan(&s, doc, n, &end);
	ck_assert_int_eq(rc, 1);
	ck_assert_uint_eq(end, want);
	ck_assert_uint_eq(n - 1, want);

	/* top-level scalars end at whitespace or a bracket */
	json_scan_reset(&s);
	ck_assert_int_eq(json_scan(&s, "123", 3, &end), 0);
	ck_assert_int_eq(json_scan(&s, "123\n", 4, &end), 1);
	ck_assert_uint_eq(end, 3);
	json_scan_reset(&s);
	ck_assert_int_eq(json_scan(&s, "\"a b\" x", 7, &end), 1);
	ck_assert_uint_eq(end, 5);

	/* what cannot start a value */
	json_scan_reset(&s);
	ck_assert_int_eq(json_scan(&s, "  GET / HTTP/1.1", 16, &end), -EINVAL);
	json_scan_reset(&s);
	ck_assert_int_eq(json_scan(&s, "}", 1, &end), -EINVAL);
	json_scan_reset(&s);
	ck_assert_int_eq(json_scan(&s, "   \n", 4, &end), 0);
	ck_assert(!json_scan_started(&s));
}
END_TEST

/* Broken structure inside an unclosed container is refused at once (a client
 * must not wait for an answer until the idle timeout). */
START_TEST(scanner_structure)
{
	static const char *const broken[] = {
		"{\"jsonrpc\": \"2.0\", bad",   /* a key that is not a string */
		"{\"a\" 1",                      /* no colon */
		"{\"a\": 1 \"b\"",               /* no comma */
		"[1, 2 3",                        /* no comma in an array */
		"{\"a\": ]",                      /* the wrong closer */
		"[1,,2",                          /* an empty element */
		"{,",
	};
	static const char *const incomplete[] = {
		"{\"a\": [1, {\"b\": tru", "{\"a\"", "{\"a\":", "[ ", "{\"a\": \"x\\\"", "[-1, 2.5e3, null,",
	};
	size_t end;
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		json_scan_t s = {0};
		ck_assert_msg(json_scan(&s, broken[i], strlen(broken[i]), &end) == -EINVAL, "accepted: %s", broken[i]);
	}
	for (size_t i = 0; i < sizeof(incomplete) / sizeof(incomplete[0]); i++) {
		json_scan_t s = {0};
		ck_assert_msg(json_scan(&s, incomplete[i], strlen(incomplete[i]), &end) == 0, "not waiting: %s",
			      incomplete[i]);
		ck_assert(json_scan_started(&s));
	}
	json_scan_t s = {0};
	const char *ok = "{\"a\": [1, {\"b\": true}, \"}\"], \"c\": {}}";
	ck_assert_int_eq(json_scan(&s, ok, strlen(ok), &end), 1);
	ck_assert_uint_eq(end, strlen(ok));
}
END_TEST

static Suite *json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, scalars);
	tcase_add_test(tc, numbers);
	tcase_add_test(tc, strings_and_escapes);
	tcase_add_test(tc, containers);
	tcase_add_test(tc, depth_limit);
	tcase_add_test(tc, truncated);
	tcase_add_test(tc, garbage);
	suite_add_tcase(s, tc);
	tc = tcase_create("write");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, writer);
	tcase_add_test(tc, writer_misuse);
	tcase_add_test(tc, scanner);
	tcase_add_test(tc, scanner_structure);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(json_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
