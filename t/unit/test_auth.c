// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Digest authentication: the arithmetic against RFC 7616 §3.9.1 and the
 * known-good REGISTER in the shared test data, nonces (signature, realm,
 * expiry, tampering), nonce counts (replay, eviction), and auth_verify() on
 * whole requests, including the malformed ones.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/auth/auth.h"
#include "core/cfg/cfg.h"
#include "core/lib/hash.h"
#include "core/lib/stats.h"
#include "core/msg/msg.h"
#include "core/sl/sl.h"

/* RFC 7616 §3.9.1 */
#define R_USER "Mufasa"
#define R_REALM "http-auth@example.org"
#define R_PASS "Circle of Life"
#define R_NONCE "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
#define R_CNONCE "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"

static str_t S(const char *s)
{
	return str_cstr(s);
}

/* ---------------------------------------------------------------- arithmetic */

static void rfc_response(auth_alg_t alg, const char *qop, const char *nc, const char *method, const char *uri,
			 const char *body, auth_hex_t out)
{
	auth_hex_t ha1;
	ck_assert_int_eq(auth_ha1(alg, S(R_USER), S(R_REALM), S(R_PASS), ha1), 0);
	ck_assert_int_eq(auth_response(alg, str_cstr(ha1), S(R_NONCE), S(nc), S(R_CNONCE), S(qop), S(method),
				       S(uri), S(body), out),
			 0);
}

START_TEST(test_rfc7616_md5)
{
	auth_hex_t r;
	rfc_response(AUTH_ALG_MD5, "auth", "00000001", "GET", "/dir/index.html", "", r);
	ck_assert_str_eq(r, "8ca523f5e9506fed4657c9700eebdbec");
}
END_TEST

START_TEST(test_rfc7616_sha256)
{
	auth_hex_t r;
	rfc_response(AUTH_ALG_SHA256, "auth", "00000001", "GET", "/dir/index.html", "", r);
	ck_assert_str_eq(r, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}
END_TEST

/* The other forms, against values computed independently (Python hashlib). */
START_TEST(test_other_forms)
{
	auth_hex_t r;
	rfc_response(AUTH_ALG_MD5_SESS, "auth", "00000001", "GET", "/dir/index.html", "", r);
	ck_assert_str_eq(r, "e783283f46242139c486a698fec7211d");
	rfc_response(AUTH_ALG_SHA256_SESS, "auth", "00000001", "GET", "/dir/index.html", "", r);
	ck_assert_str_eq(r, "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7");
	rfc_response(AUTH_ALG_MD5, "auth-int", "00000002", "POST", "/x", "hello", r);
	ck_assert_str_eq(r, "f42c830699dd238b20ce6d9298dc829f");
	rfc_response(AUTH_ALG_SHA256, "auth-int", "00000002", "POST", "/x", "hello", r);
	ck_assert_str_eq(r, "a7ecf6c1097629764248963471d2fd26703e6be61d7660e03a527f9c9e68e012");
	rfc_response(AUTH_ALG_MD5, "", "", "GET", "/dir/index.html", "", r);
	ck_assert_str_eq(r, "7b2cc3b30e75b4777ea31027084363fd");
	rfc_response(AUTH_ALG_SHA256, "", "", "GET", "/dir/index.html", "", r);
	ck_assert_str_eq(r, "a1306b0595a6c7fe96c448631fb5cfbd5107bd1fe1da729d978dd7446b812363");
}
END_TEST

START_TEST(test_alg_names)
{
	ck_assert_int_eq(auth_alg_parse(STR_NULL), AUTH_ALG_MD5);
	ck_assert_int_eq(auth_alg_parse(S("md5")), AUTH_ALG_MD5);
	ck_assert_int_eq(auth_alg_parse(S("SHA-256")), AUTH_ALG_SHA256);
	ck_assert_int_eq(auth_alg_parse(S("sha-256-SESS")), AUTH_ALG_SHA256_SESS);
	ck_assert_int_eq(auth_alg_parse(S("MD5-sess")), AUTH_ALG_MD5_SESS);
	ck_assert_int_eq(auth_alg_parse(S("SHA-512-256")), AUTH_ALG_UNKNOWN);
	ck_assert_int_eq(auth_alg_parse(S("SHA-256x")), AUTH_ALG_UNKNOWN);
	ck_assert_uint_eq(auth_alg_hexlen(AUTH_ALG_MD5), 32);
	ck_assert_uint_eq(auth_alg_hexlen(AUTH_ALG_SHA256_SESS), 64);
}
END_TEST

START_TEST(test_hex_equal)
{
	ck_assert(auth_hex_equal(S("8CA523F5e9506fed4657c9700eebdbec"), S("8ca523f5e9506fed4657c9700eebdbec")));
	ck_assert(!auth_hex_equal(S("8ca523f5e9506fed4657c9700eebdbed"), S("8ca523f5e9506fed4657c9700eebdbec")));
	ck_assert(!auth_hex_equal(S("8ca523f5e9506fed4657c9700eebdbe"), S("8ca523f5e9506fed4657c9700eebdbec")));
	ck_assert(!auth_hex_equal(STR_NULL, STR_NULL));
}
END_TEST

/* ---------------------------------------------------------------- messages */

static arena_t arena;
static msg_t msg;
static char *bufs[16];
static unsigned nbufs;

static msg_t *parse(const char *text)
{
	net_rcv_t rcv = {.proto = SIP_PROTO_UDP};
	ck_assert(net_addr_from_ip(S("192.0.2.9"), 5060, &rcv.src));
	ck_assert_uint_lt(nbufs, 16);
	char *copy = bufs[nbufs++] = strdup(text);
	ck_assert_int_eq(msg_init(&msg, &arena, &rcv, copy, strlen(copy)), SIP_OK);
	return &msg;
}

static char *load_testdata(const char *name)
{
	char path[1024];
	const char *dir = getenv("KSR_TESTDATA");
	snprintf(path, sizeof(path), "%s/real/%s", dir ? dir : "../shared/testdata", name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	static char data[8192];
	size_t n = fread(data, 1, sizeof(data) - 1, f);
	fclose(f);
	data[n] = '\0';
	return data;
}

/* ../shared/testdata/real/register-digest-auth.sip: a real response, checked by its README's values. */
START_TEST(test_testdata_register)
{
	msg_t *m = parse(load_testdata("register-digest-auth.sip"));
	sip_auth_t *a = sip_msg_auth(&m->sip, HDR_AUTHORIZATION);
	ck_assert_ptr_nonnull(a);
	auth_hex_t ha1, r;
	ck_assert_int_eq(auth_ha1(auth_alg_parse(a->algorithm), a->username, a->realm, S("Wonderland-27"), ha1), 0);
	ck_assert_str_eq(ha1, "ddc6cf43d5f428fa7210fafa0c63968b");
	ck_assert_int_eq(auth_response(AUTH_ALG_MD5, str_cstr(ha1), a->nonce, a->nc, a->cnonce, a->qop, m->sip.method,
				       a->uri, m->sip.body, r),
			 0);
	ck_assert_str_eq(r, "63c8d0f593b16ade42dedc31890286f7");
	ck_assert(auth_hex_equal(a->response, str_cstr(r)));
	/* one letter of the password off: another response */
	ck_assert_int_eq(auth_ha1(AUTH_ALG_MD5, a->username, a->realm, S("Wonderland-28"), ha1), 0);
	ck_assert_int_eq(auth_response(AUTH_ALG_MD5, str_cstr(ha1), a->nonce, a->nc, a->cnonce, a->qop, m->sip.method,
				       a->uri, m->sip.body, r),
			 0);
	ck_assert(!auth_hex_equal(a->response, str_cstr(r)));
}
END_TEST

/* ---------------------------------------------------------------- nonces */

static ksr_cfg_t cfg;
static char errbuf[256];

static void setup(void)
{
	hash_seed_init();
	sl_init(NULL); /* replies fail to send (no sockets) but are counted */
	arena_init(&arena, 8192);
	ck_assert_int_eq(cfg_defaults(&cfg, errbuf, sizeof(errbuf)), 0);
	free(cfg.auth.secret);
	cfg.auth.secret = strdup("unit-test-secret-0123456789");
	cfg.auth.nonce_expire = 30;
	ck_assert_int_eq(auth_init(&cfg, errbuf, sizeof(errbuf)), 0);
}

static void teardown(void)
{
	auth_shutdown();
	cfg_free(&cfg);
	arena_free(&arena);
	for (unsigned i = 0; i < nbufs; i++)
		free(bufs[i]);
	nbufs = 0;
}

START_TEST(test_nonce_roundtrip)
{
	char n[AUTH_NONCE_LEN + 1], n2[AUTH_NONCE_LEN + 1];
	uint64_t now = (uint64_t)time(NULL), key = 0, key2 = 0;
	ck_assert_int_eq(auth_nonce_new(S("example.com"), n), 0);
	ck_assert_uint_eq(strlen(n), AUTH_NONCE_LEN);
	for (const char *p = n; *p; p++)
		ck_assert_msg(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p),
			      "nonce %s has %c", n, *p);
	ck_assert_int_eq(auth_nonce_check(S(n), S("example.com"), now, &key), AUTH_NONCE_VALID);
	ck_assert_uint_ne(key, 0);
	/* every nonce is new */
	ck_assert_int_eq(auth_nonce_new(S("example.com"), n2), 0);
	ck_assert_str_ne(n, n2);
	ck_assert_int_eq(auth_nonce_check(S(n2), S("example.com"), now, &key2), AUTH_NONCE_VALID);
	ck_assert_uint_ne(key, key2);
}
END_TEST

START_TEST(test_nonce_other_realm)
{
	char n[AUTH_NONCE_LEN + 1];
	uint64_t now = (uint64_t)time(NULL);
	ck_assert_int_eq(auth_nonce_new(S("example.com"), n), 0);
	ck_assert_int_eq(auth_nonce_check(S(n), S("example.org"), now, NULL), AUTH_NONCE_BAD);
	ck_assert_int_eq(auth_nonce_check(S(n), S("example.co"), now, NULL), AUTH_NONCE_BAD);
	ck_assert_int_eq(auth_nonce_check(S(n), STR_NULL, now, NULL), AUTH_NONCE_BAD);
}
END_TEST

START_TEST(test_nonce_tamper)
{
	char n[AUTH_NONCE_LEN + 1];
	uint64_t now = (uint64_t)time(NULL);
	ck_assert_int_eq(auth_nonce_new(S("example.com"), n), 0);
	/* any character changed, in the time, the random part or the tag */
	for (size_t i = 0; i < AUTH_NONCE_LEN; i++) {
		char t[AUTH_NONCE_LEN + 1];
		memcpy(t, n, sizeof(t));
		t[i] = t[i] == 'A' ? 'B' : 'A';
		ck_assert_msg(auth_nonce_check(S(t), S("example.com"), now, NULL) == AUTH_NONCE_BAD, "position %zu", i);
	}
	/* wrong length, bad alphabet, padding, empty */
	ck_assert_int_eq(auth_nonce_check(str_from(n, AUTH_NONCE_LEN - 1), S("example.com"), now, NULL), AUTH_NONCE_BAD);
	char longer[AUTH_NONCE_LEN + 2];
	snprintf(longer, sizeof(longer), "%sA", n);
	ck_assert_int_eq(auth_nonce_check(S(longer), S("example.com"), now, NULL), AUTH_NONCE_BAD);
	char bad[AUTH_NONCE_LEN + 1];
	memcpy(bad, n, sizeof(bad));
	bad[3] = '+';
	ck_assert_int_eq(auth_nonce_check(S(bad), S("example.com"), now, NULL), AUTH_NONCE_BAD);
	bad[3] = '=';
	ck_assert_int_eq(auth_nonce_check(S(bad), S("example.com"), now, NULL), AUTH_NONCE_BAD);
	ck_assert_int_eq(auth_nonce_check(STR_NULL, S("example.com"), now, NULL), AUTH_NONCE_BAD);
	ck_assert_int_eq(auth_nonce_check(S(R_NONCE), S("example.com"), now, NULL), AUTH_NONCE_BAD);
}
END_TEST

START_TEST(test_nonce_expiry)
{
	char n[AUTH_NONCE_LEN + 1];
	uint64_t now = (uint64_t)time(NULL);
	ck_assert_int_eq(auth_nonce_make(S("example.com"), now - 29, n), 0);
	ck_assert_int_eq(auth_nonce_check(S(n), S("example.com"), now, NULL), AUTH_NONCE_VALID);
	ck_assert_int_eq(auth_nonce_make(S("example.com"), now - 30, n), 0);
	ck_assert_int_eq(auth_nonce_check(S(n), S("example.com"), now, NULL), AUTH_NONCE_STALE);
	/* stale only when genuine: the same nonce for another realm is just bad */
	ck_assert_int_eq(auth_nonce_check(S(n), S("example.org"), now, NULL), AUTH_NONCE_BAD);
	/* from the future (beyond clock drift) */
	ck_assert_int_eq(auth_nonce_make(S("example.com"), now + 60, n), 0);
	ck_assert_int_eq(auth_nonce_check(S(n), S("example.com"), now, NULL), AUTH_NONCE_BAD);
}
END_TEST

START_TEST(test_nonce_secret)
{
	char n[AUTH_NONCE_LEN + 1];
	uint64_t now = (uint64_t)time(NULL);
	ck_assert_int_eq(auth_nonce_new(S("example.com"), n), 0);
	/* another node with another secret (or this one after a restart with a random key) */
	ck_assert_int_eq(auth_nonce_set_secret("another-secret-xyz", 18), 0);
	ck_assert_int_eq(auth_nonce_check(S(n), S("example.com"), now, NULL), AUTH_NONCE_BAD);
	/* the same secret again: valid again (nodes sharing auth.secret) */
	ck_assert_int_eq(auth_nonce_set_secret("unit-test-secret-0123456789", 27), 0);
	ck_assert_int_eq(auth_nonce_check(S(n), S("example.com"), now, NULL), AUTH_NONCE_VALID);
	/* a pass-phrase longer than the key buffer still works */
	char lng[200];
	memset(lng, 'k', sizeof(lng));
	ck_assert_int_eq(auth_nonce_set_secret(lng, sizeof(lng)), 0);
	ck_assert_int_eq(auth_nonce_new(S("example.com"), n), 0);
	ck_assert_int_eq(auth_nonce_check(S(n), S("example.com"), now, NULL), AUTH_NONCE_VALID);
}
END_TEST

/* ---------------------------------------------------------------- nonce counts */

START_TEST(test_nc_sequence)
{
	uint64_t now = 1000000;
	auth_nc_issue(42, now + 30);
	ck_assert_int_eq(auth_nc_peek(42, 1, now), AUTH_NC_OK);
	ck_assert_int_eq(auth_nc_commit(42, 1, now), AUTH_NC_OK);
	ck_assert_int_eq(auth_nc_peek(42, 1, now), AUTH_NC_REPLAY);
	ck_assert_int_eq(auth_nc_commit(42, 1, now), AUTH_NC_REPLAY);
	/* peek does not move the counter */
	ck_assert_int_eq(auth_nc_peek(42, 5, now), AUTH_NC_OK);
	ck_assert_int_eq(auth_nc_commit(42, 3, now), AUTH_NC_OK);
	ck_assert_int_eq(auth_nc_commit(42, 2, now), AUTH_NC_REPLAY);
	ck_assert_int_eq(auth_nc_commit(42, 3, now), AUTH_NC_REPLAY);
	ck_assert_int_eq(auth_nc_commit(42, 4, now), AUTH_NC_OK);
	/* never issued, and expired with its nonce */
	ck_assert_int_eq(auth_nc_peek(43, 1, now), AUTH_NC_UNKNOWN);
	ck_assert_int_eq(auth_nc_peek(42, 9, now + 30), AUTH_NC_UNKNOWN);
	/* key 0 is a valid key too */
	auth_nc_issue(0, now + 30);
	ck_assert_int_eq(auth_nc_commit(0, 1, now), AUTH_NC_OK);
	ck_assert_int_eq(auth_nc_commit(0, 1, now), AUTH_NC_REPLAY);
}
END_TEST

START_TEST(test_nc_bounded)
{
	uint64_t now = 1000000;
	/* the table holds 64 entries (8 sets of 8): the 9th nonce of one set evicts the oldest */
	ck_assert_int_eq(auth_nc_init(64), 0);
	for (uint64_t i = 0; i < 9; i++)
		auth_nc_issue(8 * i + 3, now + 10 + i); /* all in set 3 */
	ck_assert_int_eq(auth_nc_peek(3, 1, now), AUTH_NC_UNKNOWN); /* evicted: stale, never accepted */
	for (uint64_t i = 1; i < 9; i++)
		ck_assert_int_eq(auth_nc_peek(8 * i + 3, 1, now), AUTH_NC_OK);
	/* an expired entry is reused before a live one */
	ck_assert_int_eq(auth_nc_commit(8 * 1 + 3, 1, now), AUTH_NC_OK);
	auth_nc_issue(8 * 20 + 3, now + 100);
	ck_assert_int_eq(auth_nc_peek(8 * 20 + 3, 1, now + 12), AUTH_NC_OK);
	for (uint64_t i = 3; i < 9; i++)
		ck_assert_int_eq(auth_nc_peek(8 * i + 3, 1, now + 12), AUTH_NC_OK);
	/* a flood of new nonces never grows the table: entries of other sets survive */
	auth_nc_issue(5, now + 50);
	for (uint64_t i = 0; i < 100000; i++)
		auth_nc_issue(8 * i + 3, now + 60);
	ck_assert_int_eq(auth_nc_peek(5, 1, now), AUTH_NC_OK);
}
END_TEST

/* ---------------------------------------------------------------- whole requests */

#define REALM "example.com"

typedef struct {
	const char *method, *user, *realm, *password, *uri, *qop, *nc, *cnonce, *alg;
	const char *nonce; /* NULL: a fresh one for realm */
	const char *to_user, *from_user;
	bool proxy;        /* Proxy-Authorization */
} req_t;

static char last_nonce[AUTH_NONCE_LEN + 1];

/* A request whose credentials answer correctly with r's password. */
static msg_t *request(req_t r)
{
	const char *method = r.method ? r.method : "REGISTER";
	const char *user = r.user ? r.user : "alice";
	const char *realm = r.realm ? r.realm : REALM;
	const char *uri = r.uri ? r.uri : "sip:" REALM;
	const char *qop = r.qop ? r.qop : "auth";
	const char *nc = r.nc ? r.nc : "00000001";
	const char *cnonce = r.cnonce ? r.cnonce : "0a4f113b9d5c";
	auth_alg_t alg = auth_alg_parse(S(r.alg ? r.alg : "MD5"));
	if (r.nonce)
		snprintf(last_nonce, sizeof(last_nonce), "%s", r.nonce);
	else
		ck_assert_int_eq(auth_nonce_new(S(realm), last_nonce), 0);
	auth_hex_t ha1, resp;
	ck_assert_int_eq(auth_ha1(alg, S(user), S(realm), S(r.password ? r.password : "Wonderland-27"), ha1), 0);
	ck_assert_int_eq(auth_response(alg, str_cstr(ha1), S(last_nonce), S(nc), S(cnonce), S(qop), S(method),
				       S(uri), STR_NULL, resp),
			 0);
	char qop_part[128] = "";
	if (*qop)
		snprintf(qop_part, sizeof(qop_part), ", qop=%s, nc=%s, cnonce=\"%s\"", qop, nc, cnonce);
	static char text[2048];
	snprintf(text, sizeof(text),
		 "%s sip:%s SIP/2.0\r\n"
		 "Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-%ld\r\n"
		 "Max-Forwards: 70\r\n"
		 "From: <sip:%s@" REALM ">;tag=f1\r\n"
		 "To: <sip:%s@" REALM ">\r\n"
		 "Call-ID: auth-test-%ld\r\n"
		 "CSeq: 1 %s\r\n"
		 "%s: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\", algorithm=%s%s\r\n"
		 "Content-Length: 0\r\n\r\n",
		 method, REALM, random(), r.from_user ? r.from_user : user, r.to_user ? r.to_user : user, random(),
		 method, r.proxy ? "Proxy-Authorization" : "Authorization", user, realm, last_nonce, uri, resp,
		 auth_alg_name(alg), qop_part);
	return parse(text);
}

static int verify(msg_t *m, const char *password)
{
	auth_pw_src_t pw;
	auth_pw_src_init(&pw, S(password), false);
	return auth_verify(m, S(REALM), m->sip.method_id == METH_REGISTER ? HDR_AUTHORIZATION : HDR_PROXY_AUTHORIZATION,
			   STR_NULL, &pw.src);
}

START_TEST(test_verify_ok_and_replay)
{
	msg_t *m = request((req_t){0});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
	ck_assert_ptr_nonnull(auth_authorized(m));
	/* the same nonce and nc again (a replay) */
	char nonce[AUTH_NONCE_LEN + 1];
	strcpy(nonce, last_nonce);
	m = request((req_t){.nonce = nonce});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_NONCE_REUSED);
	ck_assert_ptr_null(auth_authorized(m));
	/* the next nc on the same nonce is fine, a lower one is not */
	m = request((req_t){.nonce = nonce, .nc = "00000003"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
	m = request((req_t){.nonce = nonce, .nc = "00000002"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_NONCE_REUSED);
}
END_TEST

START_TEST(test_verify_wrong_password)
{
	stat_counter_t *failed = stat_find("auth", "failed");
	uint64_t before = stat_get(failed);
	net_addr_t src;
	ck_assert(net_addr_from_ip(S("192.0.2.9"), 0, &src));
	uint64_t from_src = auth_failures_of(&src);
	msg_t *m = request((req_t){.password = "guess"});
	char nonce[AUTH_NONCE_LEN + 1];
	strcpy(nonce, last_nonce);
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_INVALID_PASSWORD);
	ck_assert_uint_eq(stat_get(failed), before + 1);
	ck_assert_uint_eq(auth_failures_of(&src), from_src + 1);
	/* a wrong guess does not use up the nc: the right answer still passes */
	m = request((req_t){.nonce = nonce});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
	/* HA1 given instead of the password */
	m = request((req_t){0});
	auth_pw_src_t pw;
	auth_pw_src_init(&pw, S("ddc6cf43d5f428fa7210fafa0c63968b"), true);
	ck_assert_int_eq(auth_verify(m, S(REALM), HDR_AUTHORIZATION, STR_NULL, &pw.src), AUTH_OK);
	m = request((req_t){0});
	auth_pw_src_init(&pw, S("ddc6cf43d5f428fa7210fafa0c63968c"), true);
	ck_assert_int_eq(auth_verify(m, S(REALM), HDR_AUTHORIZATION, STR_NULL, &pw.src), AUTH_INVALID_PASSWORD);
}
END_TEST

START_TEST(test_verify_realms)
{
	/* credentials for another realm only: none for ours */
	msg_t *m = request((req_t){.realm = "example.org"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_NO_CREDENTIALS);
	ck_assert_int_eq(auth_has_credentials(m, S("example.org")), 1);
	ck_assert_int_eq(auth_has_credentials(m, S(REALM)), -1);
	/* a nonce issued for example.org in credentials for example.com */
	char other[AUTH_NONCE_LEN + 1];
	ck_assert_int_eq(auth_nonce_new(S("example.org"), other), 0);
	m = request((req_t){.nonce = other});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_ERROR);
	/* no credentials at all */
	m = parse("OPTIONS sip:" REALM " SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n"
		  "From: <sip:a@" REALM ">;tag=1\r\nTo: <sip:" REALM ">\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
		  "Content-Length: 0\r\n\r\n");
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_NO_CREDENTIALS);
	ck_assert_int_eq(auth_has_credentials(m, S(REALM)), -1);
}
END_TEST

START_TEST(test_verify_stale)
{
	char n[AUTH_NONCE_LEN + 1];
	ck_assert_int_eq(auth_nonce_make(S(REALM), (uint64_t)time(NULL) - 31, n), 0);
	msg_t *m = request((req_t){.nonce = n});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_STALE_NONCE);
	/* the challenge that follows says stale=true without being told */
	str_t h = auth_challenge_hdrs(m, S(REALM), 1, HDR_AUTHORIZATION);
	ck_assert_ptr_nonnull(strstr(h.s, "stale=true"));
	/* a nonce with a good signature that is not tracked (another node, restart): stale too */
	ck_assert_int_eq(auth_nc_init(64), 0);
	ck_assert_int_eq(auth_nonce_new(S(REALM), n), 0);
	ck_assert_int_eq(auth_nc_init(64), 0); /* forgets it */
	m = request((req_t){.nonce = n});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_STALE_NONCE);
	/* another message: no stale flag carried over */
	m = request((req_t){0});
	h = auth_challenge_hdrs(m, S(REALM), 1, HDR_AUTHORIZATION);
	ck_assert_ptr_null(strstr(h.s, "stale"));
}
END_TEST

START_TEST(test_verify_sha256_and_algorithms)
{
	/* MD5 only is configured: SHA-256 credentials are not accepted (no downgrade games either way) */
	msg_t *m = request((req_t){.alg = "SHA-256"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_ERROR);
	ck_assert_int_eq(auth_set_algorithm(S("SHA-256")), 1);
	m = request((req_t){.alg = "SHA-256"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
	m = request((req_t){.alg = "SHA-256", .password = "x"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_INVALID_PASSWORD);
	str_t h = auth_challenge_hdrs(m, S(REALM), 0, HDR_PROXY_AUTHORIZATION);
	ck_assert_ptr_nonnull(strstr(h.s, "Proxy-Authenticate: Digest realm=\"example.com\", nonce=\""));
	ck_assert_ptr_nonnull(strstr(h.s, ", algorithm=SHA-256\r\n"));
	ck_assert_ptr_null(strstr(h.s, "qop"));
	ck_assert_int_eq(auth_set_algorithm(S("SHA-1")), -1);
	ck_assert_int_eq(auth_set_algorithm(S("MD5-sess")), 1);
	m = request((req_t){.alg = "MD5-sess"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
}
END_TEST

START_TEST(test_challenge_both)
{
	/* RFC 8760: SHA-256 first, MD5 for older phones, one nonce */
	auth_shutdown();
	free(cfg.auth.algorithm);
	cfg.auth.algorithm = strdup("SHA-256, MD5");
	ck_assert_int_eq(auth_init(&cfg, errbuf, sizeof(errbuf)), 0);
	msg_t *m = request((req_t){0});
	str_t h = auth_challenge_hdrs(m, S(REALM), AUTH_CHF_QOP_AUTH, HDR_AUTHORIZATION);
	ck_assert_ptr_nonnull(h.s);
	const char *sha = strstr(h.s, "algorithm=SHA-256\r\n"), *md5 = strstr(h.s, "algorithm=MD5\r\n");
	ck_assert_ptr_nonnull(sha);
	ck_assert_ptr_nonnull(md5);
	ck_assert(sha < md5);
	const char *n1 = strstr(h.s, "nonce=\""), *n2 = strstr(n1 + 1, "nonce=\"");
	ck_assert_ptr_nonnull(n2);
	ck_assert_int_eq(memcmp(n1, n2, 7 + AUTH_NONCE_LEN), 0);
	ck_assert_ptr_nonnull(strstr(h.s, "WWW-Authenticate: Digest realm=\"example.com\", nonce=\""));
	ck_assert_ptr_nonnull(strstr(h.s, ", qop=\"auth\", algorithm=MD5\r\n"));
	/* both answers pass */
	ck_assert_int_eq(verify(request((req_t){.alg = "SHA-256"}), "Wonderland-27"), AUTH_OK);
	ck_assert_int_eq(verify(request((req_t){.alg = "MD5"}), "Wonderland-27"), AUTH_OK);
	/* auth-int, both, stale */
	h = auth_challenge_hdrs(m, S(REALM), AUTH_CHF_QOP_AUTH | AUTH_CHF_QOP_AUTH_INT | AUTH_CHF_STALE,
				HDR_AUTHORIZATION);
	ck_assert_ptr_nonnull(strstr(h.s, ", qop=\"auth,auth-int\", stale=true, algorithm=SHA-256\r\n"));
	/* realms that cannot be quoted */
	ck_assert_ptr_null(auth_challenge_hdrs(m, S("a\"b"), 0, HDR_AUTHORIZATION).s);
	ck_assert_ptr_null(auth_challenge_hdrs(m, S("a\r\nX: y"), 0, HDR_AUTHORIZATION).s);
	ck_assert_ptr_null(auth_challenge_hdrs(m, STR_NULL, 0, HDR_AUTHORIZATION).s);
}
END_TEST

static const char *malformed[] = {
	/* not a parameter list */
	"Authorization: Digest username=\"alice\" realm=\"example.com\"\r\n",
	"Authorization: Digest ,,,\r\n",
	"Authorization: Digest username\r\n",
	"Authorization: Digest username=\"alice\r\n",
	/* a mandatory parameter missing */
	"Authorization: Digest username=\"alice\", realm=\"example.com\", uri=\"sip:example.com\", "
	"response=\"63c8d0f593b16ade42dedc31890286f7\"\r\n",
	"Authorization: Digest realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", "
	"response=\"63c8d0f593b16ade42dedc31890286f7\"\r\n",
	/* qop without nc / cnonce, a bad nc, a bad qop */
	"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", "
	"response=\"63c8d0f593b16ade42dedc31890286f7\", qop=auth, cnonce=\"c\"\r\n",
	"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", "
	"response=\"63c8d0f593b16ade42dedc31890286f7\", qop=auth, nc=00000001\r\n",
	"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", "
	"response=\"63c8d0f593b16ade42dedc31890286f7\", qop=auth, nc=1, cnonce=\"c\"\r\n",
	"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", "
	"response=\"63c8d0f593b16ade42dedc31890286f7\", qop=auth, nc=0000000g, cnonce=\"c\"\r\n",
	"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", "
	"response=\"63c8d0f593b16ade42dedc31890286f7\", qop=auth, nc=00000000, cnonce=\"c\"\r\n",
	"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", "
	"response=\"63c8d0f593b16ade42dedc31890286f7\", qop=bogus, nc=00000001, cnonce=\"c\"\r\n",
	/* a response of the wrong length or not hex */
	"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", "
	"response=\"63c8d0f593b16ade42dedc31890286f\"\r\n",
	"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", "
	"response=\"zzc8d0f593b16ade42dedc31890286f7\"\r\n",
	/* an empty username */
	"Authorization: Digest username=\"\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", "
	"response=\"63c8d0f593b16ade42dedc31890286f7\"\r\n",
};

START_TEST(test_verify_malformed)
{
	stat_counter_t *bad = stat_find("auth", "bad_credentials");
	uint64_t before = stat_get(bad);
	char text[2048];
	snprintf(text, sizeof(text),
		 "REGISTER sip:" REALM " SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n"
		 "From: <sip:alice@" REALM ">;tag=1\r\nTo: <sip:alice@" REALM ">\r\nCall-ID: m%d\r\nCSeq: 1 REGISTER\r\n"
		 "%sContent-Length: 0\r\n\r\n",
		 _i, malformed[_i]);
	msg_t *m = parse(text);
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_ERROR);
	ck_assert_uint_eq(stat_get(bad), before + 1);
	ck_assert_ptr_null(auth_authorized(m));
}
END_TEST

START_TEST(test_verify_other_schemes_ignored)
{
	msg_t *m = parse("REGISTER sip:" REALM " SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n"
			 "From: <sip:alice@" REALM ">;tag=1\r\nTo: <sip:alice@" REALM ">\r\nCall-ID: o\r\n"
			 "CSeq: 1 REGISTER\r\nAuthorization: Basic YWxpY2U6cGFzcw==\r\n"
			 "Authorization: Bearer abc.def.ghi\r\nContent-Length: 0\r\n\r\n");
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_NO_CREDENTIALS);
}
END_TEST

START_TEST(test_unchallengeable_methods)
{
	msg_t *m = parse("ACK sip:" REALM " SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n"
			 "From: <sip:alice@" REALM ">;tag=1\r\nTo: <sip:b@" REALM ">;tag=2\r\nCall-ID: a\r\n"
			 "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
	ck_assert_int_eq(verify(m, "x"), AUTH_OK);
	ck_assert_int_eq(auth_check_user(m, AUTH_CHECK_ID), AUTH_OK);
	ck_assert_int_eq(auth_consume_credentials(m), -1);
}
END_TEST

START_TEST(test_user_checks)
{
	msg_t *m = request((req_t){0});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
	ck_assert_int_eq(auth_check_user(m, 0), AUTH_OK);
	ck_assert_int_eq(auth_check_user(m, AUTH_CHECK_ID), AUTH_OK);
	/* REGISTER for someone else's AOR */
	m = request((req_t){.to_user = "bob", .from_user = "bob"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
	ck_assert_int_eq(auth_check_user(m, AUTH_CHECK_ID), AUTH_USER_MISMATCH);
	/* From differs from To */
	m = request((req_t){.from_user = "bob"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
	ck_assert_int_eq(auth_check_user(m, AUTH_CHECK_ID), AUTH_USER_MISMATCH);
	/* INVITE: the From user counts, and flag 2 lets anonymous callers through */
	m = request((req_t){.method = "INVITE", .proxy = true, .from_user = "anonymous"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
	ck_assert_int_eq(auth_check_user(m, AUTH_CHECK_ID), AUTH_USER_MISMATCH);
	ck_assert_int_eq(auth_check_user(m, AUTH_CHECK_ID | AUTH_CHECK_SKIPFWD), AUTH_OK);
	/* no authorized credentials: an error, not a pass */
	m = request((req_t){.password = "nope"});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_INVALID_PASSWORD);
	ck_assert_int_eq(auth_check_user(m, AUTH_CHECK_ID), AUTH_ERROR);
}
END_TEST

START_TEST(test_consume)
{
	msg_t *m = request((req_t){.method = "INVITE", .proxy = true});
	ck_assert_int_eq(auth_consume_credentials(m), -1); /* nothing authorized yet */
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
	ck_assert_int_eq(auth_consume_credentials(m), 1);
	str_t out = msg_build_request(m, STR_NULL, false);
	ck_assert_ptr_nonnull(out.s);
	ck_assert_ptr_null(memmem(out.s, out.len, "Proxy-Authorization", 19));
	ck_assert_ptr_nonnull(memmem(out.s, out.len, "Call-ID", 7));
}
END_TEST

START_TEST(test_nonce_count_off)
{
	auth_shutdown();
	cfg.auth.nonce_count = false;
	ck_assert_int_eq(auth_init(&cfg, errbuf, sizeof(errbuf)), 0);
	msg_t *m = request((req_t){0});
	char nonce[AUTH_NONCE_LEN + 1];
	strcpy(nonce, last_nonce);
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
	/* without nc checks a nonce may be reused until it expires */
	m = request((req_t){.nonce = nonce});
	ck_assert_int_eq(verify(m, "Wonderland-27"), AUTH_OK);
}
END_TEST

/* ---------------------------------------------------------------- configuration */

/* Loads `body` as a configuration (with a route script beside it); 0 or the loader's error. */
static int load_conf(const char *body, ksr_cfg_t *out)
{
	char dir[] = "/tmp/ksrd-auth-XXXXXX", path[64], script[64];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/route.lua", dir);
	snprintf(path, sizeof(path), "%s/ksrd.lua", dir);
	FILE *f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	fputs("-- route\n", f);
	fclose(f);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "script = \"route.lua\"\n%s\n", body);
	fclose(f);
	int rc = cfg_load(path, out, errbuf, sizeof(errbuf));
	unlink(script);
	unlink(path);
	rmdir(dir);
	return rc;
}

START_TEST(test_cfg_defaults)
{
	ksr_cfg_t c;
	ck_assert_int_eq(cfg_defaults(&c, errbuf, sizeof(errbuf)), 0);
	ck_assert_ptr_null(c.auth.secret);
	ck_assert_uint_eq(c.auth.nonce_expire, 300);
	ck_assert_str_eq(c.auth.algorithm, "MD5");
	ck_assert_str_eq(c.auth.qop, "");
	ck_assert(c.auth.nonce_count);
	ck_assert_uint_eq(c.auth.nc_array_size, 131072);
	ck_assert(!c.auth.use_domain && !c.auth.calculate_ha1);
	ck_assert_str_eq(c.auth.user_column, "username");
	ck_assert_str_eq(c.auth.domain_column, "domain");
	ck_assert_str_eq(c.auth.password_column, "ha1");
	ck_assert_str_eq(c.auth.password_column_2, "ha1b");
	ck_assert_ptr_null(c.auth.load_credentials);
	ck_assert_ptr_null(c.auth.db_url);
	ck_assert_uint_eq(c.auth.db_timeout, 2000);
	cfg_free(&c);
}
END_TEST

START_TEST(test_cfg_values)
{
	ksr_cfg_t c;
	int rc = load_conf("auth = { secret = 's3cret-s3cret-s3cret', nonce_expire = 60, algorithm = 'SHA-256, MD5',"
			   " qop = 'auth', nonce_count = false, nc_array_size = 1024, use_domain = true,"
			   " calculate_ha1 = true, password_column = 'password', load_credentials = 'rpid;$avp(e)=email',"
			   " db_url = 'postgres://u:p@127.0.0.1:5432/k', db_timeout = 500 }",
			   &c);
	ck_assert_msg(rc == 0, "%s", errbuf);
	ck_assert_str_eq(c.auth.secret, "s3cret-s3cret-s3cret");
	ck_assert_uint_eq(c.auth.nonce_expire, 60);
	ck_assert_str_eq(c.auth.algorithm, "SHA-256, MD5");
	ck_assert_str_eq(c.auth.qop, "auth");
	ck_assert(!c.auth.nonce_count);
	ck_assert(c.auth.use_domain && c.auth.calculate_ha1);
	ck_assert_str_eq(c.auth.password_column, "password");
	ck_assert_str_eq(c.auth.load_credentials, "rpid;$avp(e)=email");
	ck_assert_uint_eq(c.auth.db_timeout, 500);
	/* what auth_init makes of them */
	ck_assert_int_eq(auth_init(&c, errbuf, sizeof(errbuf)), 0);
	ck_assert_uint_eq(auth_db_cred_count(), 2);
	ck_assert_str_eq(auth_db_cred_pv(0), "$avp(rpid)");
	ck_assert_str_eq(auth_db_cred_pv(1), "$avp(e)");
	str_t h = auth_challenge_hdrs(NULL, S(REALM), 0, HDR_AUTHORIZATION);
	ck_assert_ptr_nonnull(h.s);
	ck_assert_ptr_nonnull(strstr(h.s, "qop=\"auth\", algorithm=SHA-256\r\nWWW-Authenticate: "));
	free((char *)h.s);
	auth_shutdown();
	cfg_free(&c);
}
END_TEST

static const struct {
	const char *conf, *key, *want;
} cfg_bad[] = {
	{"auth = { algorithm = 'SHA-1' }", "auth.algorithm", "SHA-256"},
	{"auth = { algorithm = 'MD5,' }", "auth.algorithm", "comma list"},
	{"auth = { qop = 'auth-conf' }", "auth.qop", "auth-int"},
	{"auth = { nonce_expire = 0 }", "auth.nonce_expire", "integer >= 1"},
	{"auth = { user_column = 'user; DROP TABLE x' }", "auth.user_column", "SQL identifier"},
	{"auth = { password_column = '1ha1' }", "auth.password_column", "SQL identifier"},
	{"auth = { load_credentials = 'a;b c' }", "auth.load_credentials", "SQL identifiers"},
	{"auth = { load_credentials = 'x=col' }", "auth.load_credentials", "$pv"},
	{"auth = { nonce_countt = true }", "auth.nonce_countt", "did you mean auth.nonce_count"},
};

START_TEST(test_cfg_mistakes)
{
	ksr_cfg_t c;
	ck_assert_int_lt(load_conf(cfg_bad[_i].conf, &c), 0);
	ck_assert_msg(strstr(errbuf, cfg_bad[_i].key) && strstr(errbuf, cfg_bad[_i].want), "%s: %s", cfg_bad[_i].conf,
		      errbuf);
}
END_TEST

static Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *arith = tcase_create("arithmetic");
	tcase_add_checked_fixture(arith, setup, teardown);
	tcase_add_test(arith, test_rfc7616_md5);
	tcase_add_test(arith, test_rfc7616_sha256);
	tcase_add_test(arith, test_other_forms);
	tcase_add_test(arith, test_alg_names);
	tcase_add_test(arith, test_hex_equal);
	tcase_add_test(arith, test_testdata_register);
	suite_add_tcase(s, arith);

	TCase *nonces = tcase_create("nonces");
	tcase_add_checked_fixture(nonces, setup, teardown);
	tcase_add_test(nonces, test_nonce_roundtrip);
	tcase_add_test(nonces, test_nonce_other_realm);
	tcase_add_test(nonces, test_nonce_tamper);
	tcase_add_test(nonces, test_nonce_expiry);
	tcase_add_test(nonces, test_nonce_secret);
	tcase_add_test(nonces, test_nc_sequence);
	tcase_add_test(nonces, test_nc_bounded);
	suite_add_tcase(s, nonces);

	TCase *verify_tc = tcase_create("verify");
	tcase_add_checked_fixture(verify_tc, setup, teardown);
	tcase_add_test(verify_tc, test_verify_ok_and_replay);
	tcase_add_test(verify_tc, test_verify_wrong_password);
	tcase_add_test(verify_tc, test_verify_realms);
	tcase_add_test(verify_tc, test_verify_stale);
	tcase_add_test(verify_tc, test_verify_sha256_and_algorithms);
	tcase_add_test(verify_tc, test_challenge_both);
	tcase_add_loop_test(verify_tc, test_verify_malformed, 0, (int)(sizeof(malformed) / sizeof(malformed[0])));
	tcase_add_test(verify_tc, test_verify_other_schemes_ignored);
	tcase_add_test(verify_tc, test_unchallengeable_methods);
	tcase_add_test(verify_tc, test_user_checks);
	tcase_add_test(verify_tc, test_consume);
	tcase_add_test(verify_tc, test_nonce_count_off);
	suite_add_tcase(s, verify_tc);

	TCase *conf = tcase_create("config");
	tcase_add_test(conf, test_cfg_defaults);
	tcase_add_test(conf, test_cfg_values);
	tcase_add_loop_test(conf, test_cfg_mistakes, 0, (int)(sizeof(cfg_bad) / sizeof(cfg_bad[0])));
	suite_add_tcase(s, conf);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
