// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Digest authentication (RFC 7616, RFC 8760 for SHA-256 in SIP; RFC 3261 §22).
 *
 * Nonces are stateless and signed: base64url(version ‖ time ‖ random ‖ tag),
 * tag = HMAC-SHA256(secret, version ‖ time ‖ random ‖ realm) cut to 128 bits.
 * Any worker (and, with the same auth.secret and nonce_count off, any node)
 * can check a nonce without a lookup. A nonce for another realm, a tampered
 * one or one from another secret fails the tag check; a good tag older than
 * auth.nonce_expire is stale: the challenge that follows says stale=true so
 * the phone retries without asking its user. Without auth.secret the key is
 * random per start: nonces then die with the process and never span nodes.
 *
 * Replay: with auth.nonce_count on, every nonce issued gets an entry in a
 * bounded shared table (striped locks; entries live as long as the nonce) and
 * the nc of each accepted response must be higher than the last one accepted
 * for that nonce. A nonce missing from the table (pushed out when it was full,
 * issued before a restart or by another node) is answered as stale, never
 * accepted: a replay can't slip through an eviction. Only a response whose
 * digest matches moves the counter, so wrong guesses cost a client nothing.
 *
 * Results follow Kamailio's auth module (auth_code_t). Everything here runs on
 * the worker that owns the message; the tables are shared and locked.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../cfg/cfg.h"
#include "../lib/str.h"
#include "../msg/msg.h"

/* What the KSR functions return: Kamailio's auth_cfg_result values. */
typedef enum {
	AUTH_OK = 1,
	AUTH_DROP = 0,
	AUTH_ERROR = -1,            /* malformed or unverifiable credentials, internal error */
	AUTH_INVALID_PASSWORD = -2, /* the response does not match */
	AUTH_USER_UNKNOWN = -3,     /* no such subscriber (auth_db) */
	AUTH_STALE_NONCE = -4,      /* nonce expired (or no longer tracked): challenge with stale=true */
	AUTH_NO_CREDENTIALS = -5,   /* no credentials for this realm */
	AUTH_NONCE_REUSED = -6,     /* nc not higher than one already accepted */
	AUTH_USERNAME_EXPIRED = -7, /* ephemeral usernames (not used by ksrd) */
	AUTH_USER_MISMATCH = -8,    /* auth user differs from the From/To user (checks) */
} auth_code_t;

typedef enum {
	AUTH_ALG_MD5 = 0,
	AUTH_ALG_MD5_SESS,
	AUTH_ALG_SHA256,
	AUTH_ALG_SHA256_SESS,
	AUTH_ALG__COUNT,
	AUTH_ALG_UNKNOWN = -1,
} auth_alg_t;

/* Longest digest in hex (SHA-256) and the buffer that holds it with a NUL. */
#define AUTH_HEX_MAX 64
typedef char auth_hex_t[AUTH_HEX_MAX + 1];

/* Flags of the challenge functions (Kamailio's www_challenge flags). */
enum {
	AUTH_CHF_QOP_AUTH = 1,
	AUTH_CHF_QOP_AUTH_INT = 2,
	AUTH_CHF_NO_500 = 4, /* on failure return the code, send no 500 */
	AUTH_CHF_STALE = 16,
};
/* Flags of the pv_* check functions (Kamailio's pv_www_authenticate flags). */
enum {
	AUTH_PVF_HA1 = 1, /* the password argument is HA1 in hex */
	/* 2, 4, 8: build a challenge into $avp(challenge) (not provided: use auth_challenge) */
	AUTH_PVF_NOINVNC = 32, /* nc is never moved by a failure anyway: accepted, no effect */
};
/* checks argument of pv_auth_check / auth_db.auth_check */
enum {
	AUTH_CHECK_ID = 1,      /* auth user must be the From (To for REGISTER/PUBLISH) user */
	AUTH_CHECK_SKIPFWD = 2, /* ... except for INVITE BYE PRACK UPDATE MESSAGE (auth_db) */
};

/* ---------------------------------------------------------------- set-up */

/*
 * Reads cfg->auth (secret, nonce_expire, algorithm, qop, nonce_count,
 * nc_array_size ...), builds the nc table and registers the statistics and the
 * auth.failures RPC. Call once at start-up, before the workers; returns 0 or
 * -1 with one line in errbuf. Functions used before auth_init() (unit tests of
 * the arithmetic) work with built-in defaults and a random secret.
 */
int auth_init(const ksr_cfg_t *cfg, char *errbuf, size_t errlen);
void auth_shutdown(void);
/* Settings in force (cfg->auth as loaded). Valid after auth_init(). */
const ksr_cfg_t *auth_cfg(void);

/* ---------------------------------------------------------------- arithmetic (digest.c) */

/* "MD5", "md5-sess", "SHA-256" ... (case-insensitive); an absent algorithm is MD5. */
auth_alg_t auth_alg_parse(str_t name);
const char *auth_alg_name(auth_alg_t a);
/* Length of the algorithm's digest in hex: 32 or 64. */
size_t auth_alg_hexlen(auth_alg_t a);

/* HA1 = H(user:realm:password), whatever the algorithm (-sess is applied by auth_response). */
int auth_ha1(auth_alg_t a, str_t user, str_t realm, str_t password, auth_hex_t out);
/* The -sess step alone, from a stored (plain) HA1. */
int auth_ha1_sess(auth_alg_t a, str_t ha1, str_t nonce, str_t cnonce, auth_hex_t out);
/*
 * request-digest (RFC 7616 §3.4.1): qop "" (RFC 2069 form), "auth" or
 * "auth-int" (then body is hashed into HA2). ha1 is hex as stored, H(user:realm:password);
 * for the -sess algorithms the session key H(ha1:nonce:cnonce) is derived here.
 */
int auth_response(auth_alg_t a, str_t ha1, str_t nonce, str_t nc, str_t cnonce, str_t qop, str_t method,
		  str_t uri, str_t body, auth_hex_t out);
/* Constant-time comparison of hex digests; a's case is ignored, lengths must match. */
bool auth_hex_equal(str_t a, str_t b);

/* ---------------------------------------------------------------- nonces (nonce.c) */

/* A nonce: 44 base64url characters. */
#define AUTH_NONCE_LEN 44

typedef enum {
	AUTH_NONCE_VALID = 0,
	AUTH_NONCE_STALE = 1,  /* genuine, too old */
	AUTH_NONCE_BAD = -1,   /* not ours, other realm, tampered, malformed */
} auth_nonce_rc_t;

/* Writes a fresh nonce for realm (NUL-terminated) and registers it for nc checks. */
int auth_nonce_new(str_t realm, char out[AUTH_NONCE_LEN + 1]);
/* Checks a nonce for realm at time now; *key gets its nc-table key. */
auth_nonce_rc_t auth_nonce_check(str_t nonce, str_t realm, uint64_t now, uint64_t *key);
/* As auth_nonce_new() with an explicit issue time (tests; checks of expiry). */
int auth_nonce_make(str_t realm, uint64_t issued, char out[AUTH_NONCE_LEN + 1]);
/* Installs a secret (tests; auth_init does this from cfg). len 0 = random. */
int auth_nonce_set_secret(const void *key, size_t len);

/* ---------------------------------------------------------------- nonce counts (nc.c) */

typedef enum {
	AUTH_NC_OK = 0,
	AUTH_NC_REPLAY = -1,  /* nc not above the last accepted one */
	AUTH_NC_UNKNOWN = -2, /* nonce not tracked (evicted, another node, restart) */
} auth_nc_rc_t;

/* Sizes the table (entries, rounded up to a power of two, at least 64). */
int auth_nc_init(unsigned entries);
void auth_nc_free(void);
/* A new nonce: tracked with nc 0 until `expires`. */
void auth_nc_issue(uint64_t key, uint64_t expires);
/* Would nc be accepted now? Nothing changes. */
auth_nc_rc_t auth_nc_peek(uint64_t key, uint32_t nc, uint64_t now);
/* Accepts nc atomically: only if it is still above the last accepted one. */
auth_nc_rc_t auth_nc_commit(uint64_t key, uint32_t nc, uint64_t now);

/* ---------------------------------------------------------------- per-source failures (auth.c) */

/* Counts a failed attempt of this source (bounded table, plus auth:failed). */
void auth_failure(const net_addr_t *src);
/* Failures seen from the IP of src (0 when not tracked). */
uint64_t auth_failures_of(const net_addr_t *src);
/* Visits every tracked source (port 0) with its count and the time of its last failure. */
void auth_failures_foreach(void (*fn)(const net_addr_t *ip, uint64_t count, uint64_t last, void *arg),
			   void *arg);

/* ---------------------------------------------------------------- checking a request (auth.c) */

/* Where the HA1 comes from, once the credentials are known to be well-formed. */
typedef struct auth_secret_src {
	/* Fills ha1 (hex, for the algorithm of the credentials) for user; returns
	 * AUTH_OK, AUTH_USER_UNKNOWN or AUTH_ERROR. cred->username is the user. */
	int (*get_ha1)(struct auth_secret_src *src, msg_t *m, const sip_auth_t *cred, auth_alg_t alg,
		       str_t realm, auth_hex_t ha1);
	void *arg;
} auth_secret_src_t;

/* A password (plain or HA1 hex when ha1 is true) given by the caller. */
typedef struct {
	auth_secret_src_t src;
	str_t password;
	bool ha1;
} auth_pw_src_t;
void auth_pw_src_init(auth_pw_src_t *p, str_t password, bool ha1);

/*
 * Verifies the credentials for realm in the headers of type which
 * (HDR_AUTHORIZATION or HDR_PROXY_AUTHORIZATION) of request m, with the
 * method given (STR_NULL: the request's). ACK, CANCEL and PRACK pass, as they
 * cannot be challenged. Malformed Digest credentials get a "400 Bad
 * Credentials" reply here and AUTH_ERROR. Returns an auth_code_t.
 */
int auth_verify(msg_t *m, str_t realm, sip_hdr_type_t which, str_t method, auth_secret_src_t *src);
/* The From/To user checks of pv_auth_check and auth_check (flags AUTH_CHECK_*). */
int auth_check_user(msg_t *m, int checks);

/* Credentials of m for realm, either header type: 1 present, -1 not. */
int auth_has_credentials(msg_t *m, str_t realm);
/* Removes the credentials that authorized m from what is relayed. 1 or -1. */
int auth_consume_credentials(msg_t *m);
/* The credentials header that authorized m (NULL if none): $au of auth_db. */
const sip_auth_t *auth_authorized(const msg_t *m);

/* ---------------------------------------------------------------- challenges (auth.c) */

/*
 * Builds the WWW-Authenticate (which = HDR_AUTHORIZATION) or Proxy-Authenticate
 * header lines for realm: one per configured algorithm, each ending in CRLF,
 * into m's arena (m may be NULL: then malloc'ed and owned by the caller).
 * flags: AUTH_CHF_*. stale=true is added when flags say so or when m's
 * credentials for this realm were found stale.
 */
str_t auth_challenge_hdrs(msg_t *m, str_t realm, int flags, sip_hdr_type_t which);
/* Sends 401 (which = HDR_AUTHORIZATION) or 407 with the challenge. Kamailio's codes:
 * 1 sent, -1 bad arguments, -2 challenge not built, -3 reply not sent. */
int auth_challenge_send(msg_t *m, str_t realm, int flags, sip_hdr_type_t which);
/*
 * How auth sends its replies (challenges, 400 Bad Credentials, 500): by default
 * through the request's transaction when it has one (tm_reply), else statelessly
 * (sl_send_reply). 1 sent, negative not. NULL restores the default.
 */
typedef int (*auth_reply_fn_t)(msg_t *m, int code, str_t reason);
void auth_set_reply_fn(auth_reply_fn_t fn);
int auth_reply(msg_t *m, int code, str_t reason);
/* Runtime choice of the challenge algorithm (KSR.auth.auth_algorithm): 1 or -1. */
int auth_set_algorithm(str_t name);

/* ---------------------------------------------------------------- subscriber table (auth_db.c) */

#define AUTH_DB_MAX_CREDS 16

/* is_subscriber flags (Kamailio's) */
enum {
	AUTH_DB_SUBS_USE_DOMAIN = 1,       /* match the URI's host in the domain column */
	AUTH_DB_SUBS_SKIP_CREDENTIALS = 2, /* only say whether the subscriber exists */
};

/* The auth.load_credentials columns of the subscriber found, for the KSR layer to store. */
typedef struct {
	unsigned n;                        /* 0 when nothing was loaded */
	str_t value[AUTH_DB_MAX_CREDS];    /* in m's arena; STR_NULL for SQL NULL */
	bool is_null[AUTH_DB_MAX_CREDS];
} auth_db_creds_t;

/* Called by auth_init(): parses load_credentials and opens auth.db_url if set. */
int auth_db_init(const ksr_cfg_t *cfg, char *errbuf, size_t errlen);
void auth_db_shutdown(void);
/* How many load_credentials columns, and the pseudo-variable each one goes into. */
unsigned auth_db_cred_count(void);
const char *auth_db_cred_pv(unsigned i);

/*
 * auth_verify() with the HA1 from table (auth.calculate_ha1: from the plain
 * password column). A subscriber missing is AUTH_USER_UNKNOWN; a database that
 * fails gets the request a 500 with Retry-After (and a log line) and AUTH_ERROR.
 * On AUTH_OK, creds (may be NULL) holds the load_credentials values.
 */
int auth_db_verify(msg_t *m, str_t realm, str_t table, sip_hdr_type_t which, str_t method, auth_db_creds_t *creds);
/* Kamailio's is_subscriber: 1 found (creds loaded unless flag 2), -1 error, -2 not found. */
int auth_db_is_subscriber(msg_t *m, str_t uri, str_t table, int flags, auth_db_creds_t *creds);
