// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * sipload's statistics and helpers: the histogram's percentiles against the
 * exact ones of known distributions, the token bucket's rate on a fake clock
 * (regular and irregular polling, bursts, fractional rates), and the pieces
 * of SIP it builds and reads (templates, stream framing, digest responses).
 */
#include <check.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t/bench/sipload/hist.h"
#include "t/bench/sipload/sip.h"
#include "t/bench/sipload/tbucket.h"

/* ---------------------------------------------------------------- helpers */

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
static double uniform01(void)
{
	return (double)(xorshift() >> 11) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t exact_pct(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

/* Records n values from gen, checks p50..p99.9 against the exact ones within
 * the histogram's resolution (half a bucket: 1/256 relative, at least 1). */
static void check_distribution(const char *name, uint64_t (*gen)(void), size_t n)
{
	static hist_t h;
	hist_reset(&h);
	uint64_t *v = malloc(n * sizeof *v);
	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < n; i++) {
		v[i] = gen();
		hist_record(&h, v[i]);
	}
	qsort(v, n, sizeof *v, cmp_u64);
	const double ps[] = {1, 10, 50, 90, 99, 99.9, 100};
	for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
		uint64_t want = exact_pct(v, n, ps[k]);
		uint64_t got = hist_percentile(&h, ps[k]);
		double tol = (double)want / 256.0 + 1.0;
		ck_assert_msg(fabs((double)got - (double)want) <= tol, "%s p%g: histogram %llu, exact %llu", name, ps[k],
			      (unsigned long long)got, (unsigned long long)want);
	}
	ck_assert_uint_eq(h.total, n);
	ck_assert_uint_eq(h.min, v[0]);
	ck_assert_uint_eq(h.max, v[n - 1]);
	free(v);
}

static uint64_t gen_uniform(void)
{
	return 1 + xorshift() % 1000000;
}
static uint64_t gen_exponential(void)
{
	return (uint64_t)(-log(1.0 - uniform01()) * 800.0);
}
static uint64_t gen_lognormal(void)
{
	double u1 = uniform01() + 1e-12, u2 = uniform01();
	double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
	return (uint64_t)exp(6.0 + 1.5 * z);
}
/* what a server under load looks like: most replies fast, a tail of retransmissions */
static uint64_t gen_bimodal(void)
{
	return xorshift() % 100 < 97 ? 150 + xorshift() % 300 : 500000 + xorshift() % 1500000;
}

/* ---------------------------------------------------------------- histogram */

START_TEST(hist_buckets_cover_values)
{
	uint64_t prev_high = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
		ck_assert_msg(i == 0 || lo == prev_high + 1, "bucket %u starts at %llu after %llu", i,
			      (unsigned long long)lo, (unsigned long long)prev_high);
		ck_assert_uint_ge(hi, lo);
		/* relative width: at most 1/HIST_SUB of the bucket's values */
		ck_assert_msg((double)(hi - lo + 1) <= (double)lo / HIST_SUB + 1, "bucket %u too wide", i);
		ck_assert_uint_eq(hist_index(lo), i);
		ck_assert_uint_eq(hist_index(hi), i);
		prev_high = hi;
	}
	for (int k = 0; k < 100000; k++) {
		uint64_t v = xorshift() >> (xorshift() % 40 + 24);
		unsigned i = hist_index(v);
		ck_assert(hist_bucket_low(i) <= v && v <= hist_bucket_high(i));
	}
	ck_assert_uint_eq(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
}
END_TEST

START_TEST(hist_small_values_exact)
{
	static hist_t h;
	hist_reset(&h);
	ck_assert_uint_eq(hist_percentile(&h, 50), 0);
	for (uint64_t v = 1; v <= 200; v++)
		hist_record(&h, v);
	ck_assert_uint_eq(hist_percentile(&h, 50), 100);
	ck_assert_uint_eq(hist_percentile(&h, 99), 198);
	ck_assert_uint_eq(hist_percentile(&h, 100), 200);
	ck_assert_uint_eq(hist_percentile(&h, 0), 1);
	ck_assert(fabs(hist_mean(&h) - 100.5) < 1e-9);
}
END_TEST

START_TEST(hist_known_distributions)
{
	check_distribution("uniform", gen_uniform, 200000);
	check_distribution("exponential", gen_exponential, 200000);
	check_distribution("lognormal", gen_lognormal, 200000);
	check_distribution("bimodal", gen_bimodal, 200000);
}
END_TEST

START_TEST(hist_single_value_is_exact)
{
	static hist_t h;
	hist_reset(&h);
	for (int i = 0; i < 1000; i++)
		hist_record(&h, 123457);
	/* clamped to min/max: a constant is reported exactly, not by its bucket */
	ck_assert_uint_eq(hist_percentile(&h, 50), 123457);
	ck_assert_uint_eq(hist_percentile(&h, 99.9), 123457);
}
END_TEST

START_TEST(hist_merge_equals_one)
{
	static hist_t a, b, all;
	hist_reset(&a);
	hist_reset(&b);
	hist_reset(&all);
	for (int i = 0; i < 50000; i++) {
		uint64_t v = gen_lognormal();
		hist_record(i % 3 ? &a : &b, v);
		hist_record(&all, v);
	}
	hist_merge(&a, &b);
	ck_assert_uint_eq(a.total, all.total);
	ck_assert_uint_eq(a.min, all.min);
	ck_assert_uint_eq(a.max, all.max);
	ck_assert_int_eq(memcmp(a.count, all.count, sizeof a.count), 0);
	for (double p = 1; p < 100; p += 7.7)
		ck_assert_uint_eq(hist_percentile(&a, p), hist_percentile(&all, p));
}
END_TEST

/* ---------------------------------------------------------------- token bucket */

#define NS 1000000000ull

/* Polls every `step` ns (jittered when jitter) for secs; returns tokens taken. */
static uint64_t drive(tbucket_t *tb, uint64_t *clock, double secs, uint64_t step, bool jitter)
{
	uint64_t end = *clock + (uint64_t)(secs * NS), taken = 0;
	while (*clock < end) {
		*clock += jitter ? 1 + xorshift() % (2 * step) : step;
		taken += tb_take(tb, *clock, UINT64_MAX);
	}
	return taken;
}

START_TEST(tb_regular_rate)
{
	tbucket_t tb;
	uint64_t clock = 5 * NS;
	tb_init(&tb, 10000, 100, clock);
	uint64_t n = drive(&tb, &clock, 10, 100000, false);
	/* 100,000 expected; the initial token and rounding allow one or two more */
	ck_assert_msg(n >= 99990 && n <= 100002, "took %llu", (unsigned long long)n);
}
END_TEST

START_TEST(tb_irregular_polling)
{
	tbucket_t tb;
	uint64_t clock = 0;
	/* polls at random gaps averaging 2 ms with a 20 ms burst: nothing is lost */
	tb_init(&tb, 50000, 50000 * 0.020, clock);
	uint64_t n = drive(&tb, &clock, 20, 2000000, true);
	double want = 50000.0 * (double)clock / NS;
	ck_assert_msg(fabs((double)n - want) <= want * 0.001, "took %llu, want %.0f", (unsigned long long)n, want);
}
END_TEST

START_TEST(tb_fractional_rate)
{
	tbucket_t tb;
	uint64_t clock = 0;
	tb_init(&tb, 333.333, 4, clock);
	uint64_t n = drive(&tb, &clock, 30, 1000000, false);
	ck_assert_msg(n >= 9999 && n <= 10001, "took %llu", (unsigned long long)n);
}
END_TEST

START_TEST(tb_burst_is_capped)
{
	tbucket_t tb;
	uint64_t clock = 0;
	tb_init(&tb, 1000, 10, clock);
	ck_assert_uint_eq(tb_take(&tb, clock, 100), 1); /* the initial token */
	clock += 5 * NS;                                 /* asleep for 5 s: 5000 earned, 10 kept */
	ck_assert_uint_eq(tb_take(&tb, clock, UINT64_MAX), 10);
	ck_assert_uint_eq(tb_take(&tb, clock, UINT64_MAX), 0);
	/* want limits what is taken, the rest stays */
	clock += 8 * NS / 1000;
	ck_assert_uint_eq(tb_take(&tb, clock, 3), 3);
	ck_assert_uint_eq(tb_take(&tb, clock, 100), 5);
}
END_TEST

START_TEST(tb_wait_and_rate_change)
{
	tbucket_t tb;
	uint64_t clock = 0;
	tb_init(&tb, 1000, 5, clock);
	ck_assert_uint_eq(tb_wait_ns(&tb, clock), 0);
	ck_assert_uint_eq(tb_take(&tb, clock, 1), 1);
	uint64_t w = tb_wait_ns(&tb, clock);
	ck_assert_msg(w >= 999000 && w <= 1000001, "wait %llu", (unsigned long long)w);
	clock += w;
	ck_assert_uint_eq(tb_take(&tb, clock, 1), 1);
	tb_set_rate(&tb, 4000, 5, clock);
	uint64_t n = drive(&tb, &clock, 2, 50000, false);
	ck_assert_msg(n >= 7995 && n <= 8005, "took %llu", (unsigned long long)n);
	tb_set_rate(&tb, 0, 5, clock);
	ck_assert_uint_eq(drive(&tb, &clock, 1, 50000, false), 0);
	ck_assert_uint_eq(tb_wait_ns(&tb, clock), UINT64_MAX);
}
END_TEST

/* ---------------------------------------------------------------- SIP helpers */

START_TEST(tpl_renders)
{
	const char *names[] = {"user", "branch"};
	tpl_t t;
	char err[128];
	ck_assert_int_eq(tpl_compile(&t, "REGISTER sip:{user}@x SIP/2.0\r\nVia: b={branch};{user}", names, 2, err,
				     sizeof err),
			 0);
	sstr_t vars[] = {SSTR("1000042"), SSTR("z9hG4bK1")};
	char out[128];
	size_t n = tpl_render(&t, out, sizeof out, vars);
	ck_assert_str_eq((out[n] = 0, out), "REGISTER sip:1000042@x SIP/2.0\r\nVia: b=z9hG4bK1;1000042");
	ck_assert_uint_eq(tpl_render(&t, out, 10, vars), 0);
	ck_assert_int_eq(tpl_compile(&t, "{nope}", names, 2, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "nope"));
	char num[24];
	ck_assert_uint_eq(fmt_u64(num, 0), 1);
	num[fmt_u64(num, 18446744073709551615ull)] = 0;
	ck_assert_str_eq(num, "18446744073709551615");
	num[fmt_hex(num, 0xbeef)] = 0;
	ck_assert_str_eq(num, "beef");
}
END_TEST

START_TEST(frame_and_headers)
{
	const char msg[] = "\r\n\r\nSIP/2.0 200 OK\r\nv: SIP/2.0/TCP a;branch=z9hG4bKx\r\nTo: <sip:a@b>;tag=1\r\n"
			   "l: 4\r\n\r\nbodyNEXT";
	size_t skip;
	long n = sip_frame(msg, sizeof msg - 1, &skip);
	ck_assert_uint_eq(skip, 4);
	ck_assert_int_eq(n, (long)(sizeof msg - 1 - 4 - 4));
	ck_assert_int_eq(sip_frame(msg, 30, &skip), 0);
	const char *m = msg + skip;
	ck_assert_int_eq(sip_status(m, (size_t)n), 200);
	sstr_t v;
	ck_assert(sip_find(m, (size_t)n, "via", 'v', &v));
	ck_assert_int_eq(strncmp(v.p, "SIP/2.0/TCP a;branch=z9hG4bKx", v.n), 0);
	ck_assert(sip_find(m, (size_t)n, "to", 't', &v));
	sstr_t tag;
	ck_assert(sip_param(v, "tag", &tag));
	ck_assert_int_eq(tag.n, 1);
	sstr_t uri = sip_uri_of(v);
	ck_assert_int_eq(strncmp(uri.p, "sip:a@b", uri.n), 0);
	ck_assert(!sip_find(m, (size_t)n, "contact", 'm', &v));
	ck_assert_int_eq(sip_frame("OPTIONS x SIP/2.0\r\nVia: y\r\n\r\n", 29, &skip), -1); /* no Content-Length */
}
END_TEST

/* RFC 2617 §3.5 */
START_TEST(digest_rfc2617)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	digest_chal_t c;
	sstr_t chal = SSTR("Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", "
			   "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"");
	ck_assert(digest_parse_challenge(chal, &c));
	ck_assert(c.qop_auth);
	ck_assert(!c.sha256);
	char out[65];
	digest_response(ctx, &c, SSTR("Mufasa"), SSTR("Circle Of Life"), SSTR("GET"), SSTR("/dir/index.html"),
			SSTR("0a4f113b"), "00000001", out);
	ck_assert_str_eq(out, "6629fae49393a05397450978507c4ef1");
	char cred[512];
	size_t n = digest_credentials(ctx, &c, SSTR("Mufasa"), SSTR("Circle Of Life"), SSTR("GET"),
				      SSTR("/dir/index.html"), SSTR("0a4f113b"), 1, cred, sizeof cred);
	cred[n] = 0;
	ck_assert_ptr_nonnull(strstr(cred, "response=\"6629fae49393a05397450978507c4ef1\""));
	ck_assert_ptr_nonnull(strstr(cred, "nc=00000001"));
	ck_assert_ptr_nonnull(strstr(cred, "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
	ck_assert(!digest_parse_challenge(SSTR("Basic realm=\"x\""), &c));
	EVP_MD_CTX_free(ctx);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sipload");
	TCase *h = tcase_create("histogram");
	tcase_set_timeout(h, 60);
	tcase_add_test(h, hist_buckets_cover_values);
	tcase_add_test(h, hist_small_values_exact);
	tcase_add_test(h, hist_known_distributions);
	tcase_add_test(h, hist_single_value_is_exact);
	tcase_add_test(h, hist_merge_equals_one);
	suite_add_tcase(s, h);
	TCase *t = tcase_create("token bucket");
	tcase_add_test(t, tb_regular_rate);
	tcase_add_test(t, tb_irregular_polling);
	tcase_add_test(t, tb_fractional_rate);
	tcase_add_test(t, tb_burst_is_capped);
	tcase_add_test(t, tb_wait_and_rate_change);
	suite_add_tcase(s, t);
	TCase *m = tcase_create("sip");
	tcase_add_test(m, tpl_renders);
	tcase_add_test(m, frame_and_headers);
	tcase_add_test(m, digest_rfc2617);
	suite_add_tcase(s, m);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
