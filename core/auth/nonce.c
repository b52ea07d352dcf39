// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Stateless nonces: 33 octets, base64url without padding (44 characters, all
 * of them legal inside a quoted-string and a token, so phones copy them back
 * unchanged):
 *   version(1) ‖ issued(8, seconds, big-endian) ‖ random(8) ‖ tag(16)
 *   tag = first 16 octets of HMAC-SHA256(secret, version ‖ issued ‖ random ‖ realm)
 * 128 bits of tag leave nothing to guess (RFC 2104 §5 allows truncation to
 * half the output), and keep the header short. The realm is signed, not
 * carried: a nonce presented for another realm fails like a forged one.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "../lib/log.h"
#include "auth_int.h"

#define NONCE_VERSION 1
#define RAW_LEN 33
#define SIGNED_LEN 17 /* version + issued + random */
#define TAG_LEN 16
/* A nonce dated later than this (clock stepped back, or not ours) is refused. */
#define MAX_FUTURE 5

static unsigned char secret[64];
static size_t secret_len;
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac;

/* ---------------------------------------------------------------- secret */

static void default_secret(void)
{
	/* A secret set before first use stays; otherwise a random one. */
	if (!secret_len && RAND_bytes(secret, 32) == 1)
		secret_len = 32;
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

int auth_nonce_set_secret(const void *key, size_t len)
{
	pthread_once(&secret_once, default_secret);
	if (!len) {
		if (RAND_bytes(secret, 32) != 1)
			return -1;
		secret_len = 32;
		return 0;
	}
	if (len > sizeof(secret)) {
		/* A long pass-phrase is condensed rather than cut: every byte counts. */
		unsigned n = 0;
		if (!EVP_Digest(key, len, secret, &n, EVP_sha256(), NULL))
			return -1;
		secret_len = n;
		return 0;
	}
	memcpy(secret, key, len);
	secret_len = len;
	return 0;
}

/* tag over signed part + realm. 0 or -1. */
static int make_tag(const unsigned char *signed_part, str_t realm, unsigned char tag[TAG_LEN])
{
	unsigned char full[EVP_MAX_MD_SIZE];
	size_t outl = 0;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};

	pthread_once(&secret_once, default_secret);
	if (!hmac || !secret_len)
		return -1;
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac);
	int ok = ctx && EVP_MAC_init(ctx, secret, secret_len, params) &&
		 EVP_MAC_update(ctx, signed_part, SIGNED_LEN) &&
		 (!realm.len || EVP_MAC_update(ctx, (const unsigned char *)realm.s, realm.len)) &&
		 EVP_MAC_final(ctx, full, &outl, sizeof(full));
	EVP_MAC_CTX_free(ctx);
	if (!ok || outl < TAG_LEN)
		return -1;
	memcpy(tag, full, TAG_LEN);
	return 0;
}

/* ---------------------------------------------------------------- base64url */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* n must be a multiple of 3 (33 is): no padding is ever needed. */
static void b64url_encode(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = b64[v >> 18];
		*out++ = b64[(v >> 12) & 63];
		*out++ = b64[(v >> 6) & 63];
		*out++ = b64[v & 63];
	}
	*out = '\0';
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes exactly AUTH_NONCE_LEN characters into RAW_LEN octets. */
static bool b64url_decode(str_t s, unsigned char *out)
{
	if (s.len != AUTH_NONCE_LEN)
		return false;
	for (size_t i = 0, o = 0; i < s.len; i += 4, o += 3) {
		uint32_t v = 0;
		for (int j = 0; j < 4; j++) {
			int d = b64_val(s.s[i + (size_t)j]);
			if (d < 0)
				return false;
			v = v << 6 | (uint32_t)d;
		}
		out[o] = (unsigned char)(v >> 16);
		out[o + 1] = (unsigned char)(v >> 8);
		out[o + 2] = (unsigned char)v;
	}
	return true;
}

/* ---------------------------------------------------------------- nonces */

static uint64_t load_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint64_t tag_key(const unsigned char *tag)
{
	/* The tag is a MAC: its first 64 bits are as good as random and unforgeable. */
	return load_be64(tag);
}

int auth_nonce_make(str_t realm, uint64_t issued, char out[AUTH_NONCE_LEN + 1])
{
	unsigned char raw[RAW_LEN];

	raw[0] = NONCE_VERSION;
	for (int i = 0; i < 8; i++)
		raw[1 + i] = (unsigned char)(issued >> (56 - 8 * i));
	if (RAND_bytes(raw + 9, 8) != 1 || make_tag(raw, realm, raw + SIGNED_LEN) < 0) {
		LOG_ERR(AUTH, "cannot make a nonce: OpenSSL failed");
		return -1;
	}
	b64url_encode(raw, RAW_LEN, out);
	if (auth_settings.nonce_count)
		auth_nc_issue(tag_key(raw + SIGNED_LEN), issued + auth_settings.nonce_expire);
	return 0;
}

int auth_nonce_new(str_t realm, char out[AUTH_NONCE_LEN + 1])
{
	return auth_nonce_make(realm, (uint64_t)time(NULL), out);
}

auth_nonce_rc_t auth_nonce_check(str_t nonce, str_t realm, uint64_t now, uint64_t *key)
{
	unsigned char raw[RAW_LEN], tag[TAG_LEN];

	if (!b64url_decode(nonce, raw) || raw[0] != NONCE_VERSION)
		return AUTH_NONCE_BAD;
	if (make_tag(raw, realm, tag) < 0 || CRYPTO_memcmp(tag, raw + SIGNED_LEN, TAG_LEN) != 0)
		return AUTH_NONCE_BAD;
	uint64_t issued = load_be64(raw + 1);
	if (key)
		*key = tag_key(raw + SIGNED_LEN);
	if (issued > now + MAX_FUTURE)
		return AUTH_NONCE_BAD;
	if (now >= issued + auth_settings.nonce_expire)
		return AUTH_NONCE_STALE;
	return AUTH_NONCE_VALID;
}

void auth_nonce_free(void)
{
	/* hmac stays: pthread_once cannot fetch it again, and OpenSSL frees it at exit */
	OPENSSL_cleanse(secret, sizeof(secret));
	secret_len = 0;
}
