// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Digest arithmetic (RFC 7616 §3.4): HA1, HA2 and the request-digest, with MD5
 * or SHA-256 through OpenSSL's EVP interface. Every value is fed to the hash
 * in pieces, so nothing is concatenated into a temporary buffer.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth.h"

static const struct {
	const char *name;
	bool sha256;
	bool sess;
} algs[AUTH_ALG__COUNT] = {
	[AUTH_ALG_MD5] = {"MD5", false, false},
	[AUTH_ALG_MD5_SESS] = {"MD5-sess", false, true},
	[AUTH_ALG_SHA256] = {"SHA-256", true, false},
	[AUTH_ALG_SHA256_SESS] = {"SHA-256-sess", true, true},
};

auth_alg_t auth_alg_parse(str_t name)
{
	if (!name.len)
		return AUTH_ALG_MD5; /* RFC 7616 §3.3: absent means MD5 */
	for (int i = 0; i < AUTH_ALG__COUNT; i++)
		if (str_caseeq_lit(name, algs[i].name))
			return (auth_alg_t)i;
	return AUTH_ALG_UNKNOWN;
}

const char *auth_alg_name(auth_alg_t a)
{
	return a >= 0 && a < AUTH_ALG__COUNT ? algs[a].name : "?";
}

size_t auth_alg_hexlen(auth_alg_t a)
{
	return a >= 0 && a < AUTH_ALG__COUNT && algs[a].sha256 ? 64 : 32;
}

static bool alg_sess(auth_alg_t a)
{
	return a >= 0 && a < AUTH_ALG__COUNT && algs[a].sess;
}

/* ---------------------------------------------------------------- hashing */

/* Up to 6 parts joined by ':' are enough for every digest of RFC 7616. */
#define MAX_PARTS 7

static void to_hex(const unsigned char *d, unsigned n, auth_hex_t out)
{
	static const char x[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* H(p[0] ":" p[1] ":" ...) in lower-case hex. 0 or -1 (OpenSSL failure). */
static int hash_parts(auth_alg_t a, const str_t *p, unsigned n, auth_hex_t out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, algs[a].sha256 ? EVP_sha256() : EVP_md5(), NULL);

	for (unsigned i = 0; ok && i < n; i++) {
		if (i)
			ok = EVP_DigestUpdate(ctx, ":", 1);
		if (ok && p[i].len)
			ok = EVP_DigestUpdate(ctx, p[i].s, p[i].len);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok || mdlen * 2 > AUTH_HEX_MAX)
		return -1;
	to_hex(md, mdlen, out);
	return 0;
}

/* ---------------------------------------------------------------- digests */

int auth_ha1_sess(auth_alg_t a, str_t ha1, str_t nonce, str_t cnonce, auth_hex_t out)
{
	str_t p[] = {ha1, nonce, cnonce};
	if (a < 0 || a >= AUTH_ALG__COUNT)
		return -1;
	return hash_parts(a, p, 3, out);
}

int auth_ha1(auth_alg_t a, str_t user, str_t realm, str_t password, auth_hex_t out)
{
	str_t p[] = {user, realm, password};
	if (a < 0 || a >= AUTH_ALG__COUNT)
		return -1;
	return hash_parts(a, p, 3, out);
}

int auth_response(auth_alg_t a, str_t ha1, str_t nonce, str_t nc, str_t cnonce, str_t qop, str_t method,
		  str_t uri, str_t body, auth_hex_t out)
{
	auth_hex_t ha2, hbody, sess;
	bool int_ = str_eq(qop, STR_LIT("auth-int"));
	str_t p2[3] = {method, uri, STR_NULL};

	if (a < 0 || a >= AUTH_ALG__COUNT)
		return -1;
	if (alg_sess(a)) {
		/* RFC 7616 §3.4.2: the session key binds HA1 to this nonce and cnonce */
		if (auth_ha1_sess(a, ha1, nonce, cnonce, sess) < 0)
			return -1;
		ha1 = str_cstr(sess);
	}
	if (int_) {
		if (hash_parts(a, &body, 1, hbody) < 0)
			return -1;
		p2[2] = str_cstr(hbody);
	}
	if (hash_parts(a, p2, int_ ? 3 : 2, ha2) < 0)
		return -1;
	if (!qop.len) {
		str_t p[] = {ha1, nonce, str_cstr(ha2)};
		return hash_parts(a, p, 3, out);
	}
	str_t p[] = {ha1, nonce, nc, cnonce, qop, str_cstr(ha2)};
	return hash_parts(a, p, 6, out);
}

bool auth_hex_equal(str_t a, str_t b)
{
	char low[AUTH_HEX_MAX];

	if (a.len != b.len || a.len > AUTH_HEX_MAX || !a.len)
		return false;
	/* Case folding touches every byte alike, so timing says nothing about a match. */
	for (size_t i = 0; i < a.len; i++) {
		unsigned char ch = (unsigned char)a.s[i];
		low[i] = (char)(ch | (unsigned char)(((unsigned)(ch - 'A') < 26u) << 5));
	}
	return CRYPTO_memcmp(low, b.s, a.len) == 0;
}
