// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Checking a request's credentials and challenging it: the parts of Kamailio's
 * auth module that scripts call, over the arithmetic (digest.c), the nonces
 * (nonce.c) and the nonce counts (nc.c).
 *
 * What a check learns about a message (which credentials passed, whether the
 * nonce was stale) is kept per worker thread, keyed by the message: a
 * challenge sent later for the same message says stale=true by itself, and
 * consume_credentials() knows which header to remove.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "../lib/log.h"
#include "../sl/sl.h"
#include "../tm/tm.h"
#include "auth_int.h"

auth_settings_t auth_settings = {
	.nonce_expire = 300,
	.algs = {AUTH_ALG_MD5},
	.nalgs = 1,
};
_Atomic int auth_alg_override = -1;
stat_counter_t *auth_st_challenges, *auth_st_ok, *auth_st_failed, *auth_st_stale, *auth_st_replayed,
	*auth_st_bad;
static const ksr_cfg_t *cfg_in_force;

/* As Kamailio's auth replies by default (sl's freply): through the transaction when there is one. */
static int default_reply(msg_t *m, int code, str_t reason)
{
	if (m->tm)
		return tm_reply(m, code, reason, false);
	return sl_send_reply(m, code, reason);
}

static _Atomic(auth_reply_fn_t) reply_fn = default_reply;

void auth_set_reply_fn(auth_reply_fn_t fn)
{
	atomic_store(&reply_fn, fn ? fn : default_reply);
}

int auth_reply(msg_t *m, int code, str_t reason)
{
	return atomic_load(&reply_fn)(m, code, reason);
}

/* ---------------------------------------------------------------- set-up */

/* "SHA-256, MD5" -> algs[]; the config loader has checked every name. */
static void parse_alg_list(const char *list)
{
	str_t rest = str_cstr(list);

	auth_settings.nalgs = 0;
	while (rest.s && auth_settings.nalgs < AUTH_ALG__COUNT) {
		const char *comma = rest.len ? memchr(rest.s, ',', rest.len) : NULL;
		auth_alg_t a = auth_alg_parse(str_trim(str_from(rest.s, comma ? (size_t)(comma - rest.s) : rest.len)));
		bool dup = false;
		for (unsigned i = 0; i < auth_settings.nalgs; i++)
			dup |= auth_settings.algs[i] == a;
		if (a != AUTH_ALG_UNKNOWN && !dup)
			auth_settings.algs[auth_settings.nalgs++] = a;
		rest = comma ? str_from(comma + 1, rest.len - (size_t)(comma + 1 - rest.s)) : STR_NULL;
	}
	if (!auth_settings.nalgs)
		auth_settings.algs[auth_settings.nalgs++] = AUTH_ALG_MD5;
}

static void register_stats(void)
{
	auth_st_challenges = stat_register("auth", "challenges", false);
	auth_st_ok = stat_register("auth", "successful", false);
	auth_st_failed = stat_register("auth", "failed", false);
	auth_st_stale = stat_register("auth", "stale_nonces", false);
	auth_st_replayed = stat_register("auth", "replayed_nonces", false);
	auth_st_bad = stat_register("auth", "bad_credentials", false);
}

int auth_init(const ksr_cfg_t *cfg, char *errbuf, size_t errlen)
{
	const char *secret = cfg->auth.secret;

	auth_settings.nonce_expire = cfg->auth.nonce_expire ? cfg->auth.nonce_expire : 300;
	auth_settings.nonce_count = cfg->auth.nonce_count;
	auth_settings.use_domain = cfg->auth.use_domain;
	parse_alg_list(cfg->auth.algorithm ? cfg->auth.algorithm : "MD5");
	auth_settings.qop_flags = 0;
	if (cfg->auth.qop && !strcmp(cfg->auth.qop, "auth"))
		auth_settings.qop_flags = AUTH_CHF_QOP_AUTH;
	else if (cfg->auth.qop && !strcmp(cfg->auth.qop, "auth-int"))
		auth_settings.qop_flags = AUTH_CHF_QOP_AUTH_INT;
	atomic_store(&auth_alg_override, -1);

	if (auth_nonce_set_secret(secret, secret ? strlen(secret) : 0) < 0) {
		snprintf(errbuf, errlen, "auth: cannot set up the nonce secret (OpenSSL)");
		return -1;
	}
	if (!secret || !*secret)
		LOG_INFO(AUTH, "no auth.secret: nonces are signed with a random key, valid until restart and on this node only");
	else if (strlen(secret) < 16)
		LOG_WARN(AUTH, "auth.secret is short (%zu octets): use 16 or more random characters", strlen(secret));
	auth_nc_free();
	if (auth_settings.nonce_count && auth_nc_init(cfg->auth.nc_array_size) < 0) {
		snprintf(errbuf, errlen, "auth: out of memory for %u nonce counts", cfg->auth.nc_array_size);
		return -1;
	}
	if (auth_db_init(cfg, errbuf, errlen) < 0)
		return -1;
	register_stats();
	auth_rpc_init();
	cfg_in_force = cfg;
	return 0;
}

void auth_shutdown(void)
{
	auth_db_shutdown();
	auth_nc_free();
	auth_nonce_free();
	cfg_in_force = NULL;
}

const ksr_cfg_t *auth_cfg(void)
{
	return cfg_in_force;
}

int auth_set_algorithm(str_t name)
{
	auth_alg_t a = auth_alg_parse(name);

	if (!name.len || a == AUTH_ALG_UNKNOWN)
		return -1;
	atomic_store(&auth_alg_override, (int)a);
	return 1;
}

/* Algorithms offered now, in order; returns how many. */
static unsigned offered_algs(auth_alg_t out[AUTH_ALG__COUNT])
{
	int o = atomic_load(&auth_alg_override);

	if (o >= 0) {
		out[0] = (auth_alg_t)o;
		return 1;
	}
	memcpy(out, auth_settings.algs, sizeof(auth_settings.algs));
	return auth_settings.nalgs;
}

static bool alg_offered(auth_alg_t a)
{
	auth_alg_t algs[AUTH_ALG__COUNT];
	unsigned n = offered_algs(algs);

	for (unsigned i = 0; i < n; i++)
		if (algs[i] == a)
			return true;
	return false;
}

/* ---------------------------------------------------------------- per-message state */

typedef struct {
	const msg_t *msg;
	uint64_t id;
	const char *buf;
	sip_hdr_t *authorized; /* credentials that passed */
	const sip_auth_t *cred;
	bool stale;            /* a genuine but expired (or untracked) nonce was seen */
} msg_state_t;

static _Thread_local msg_state_t mstate;

static msg_state_t *state_of(const msg_t *m)
{
	if (mstate.msg != m || mstate.id != m->id || mstate.buf != m->sip.buf)
		mstate = (msg_state_t){.msg = m, .id = m->id, .buf = m->sip.buf};
	return &mstate;
}

const sip_auth_t *auth_authorized(const msg_t *m)
{
	msg_state_t *st = state_of(m);
	return st->authorized ? st->cred : NULL;
}

/* ---------------------------------------------------------------- per-source failures */

#define SRC_SETS 256
#define SRC_WAYS 4

typedef struct {
	net_addr_t ip; /* port zeroed; family 0 = free */
	uint64_t count;
	uint64_t last;
} src_slot_t;

static src_slot_t src_slots[SRC_SETS][SRC_WAYS];
static pthread_mutex_t src_locks[SRC_SETS];
static pthread_once_t src_once = PTHREAD_ONCE_INIT;

static void src_locks_init(void)
{
	for (unsigned i = 0; i < SRC_SETS; i++)
		pthread_mutex_init(&src_locks[i], NULL);
}

static unsigned src_set(const net_addr_t *ip)
{
	return (unsigned)(net_addr_hash(ip) % SRC_SETS);
}

static net_addr_t ip_only(const net_addr_t *src)
{
	net_addr_t a = *src;
	net_addr_set_port(&a, 0);
	return a;
}

void auth_failure(const net_addr_t *src)
{
	auth_count(auth_st_failed);
	if (!src || !src->sa.sa_family)
		return;
	pthread_once(&src_once, src_locks_init);
	net_addr_t ip = ip_only(src);
	unsigned s = src_set(&ip);
	pthread_mutex_lock(&src_locks[s]);
	src_slot_t *set = src_slots[s], *slot = NULL, *lru = &set[0];
	for (unsigned i = 0; i < SRC_WAYS && !slot; i++) {
		if (set[i].ip.sa.sa_family && net_addr_ip_eq(&set[i].ip, &ip))
			slot = &set[i];
		else if (set[i].last < lru->last)
			lru = &set[i];
	}
	if (!slot) {
		/* the source seen least recently gives way: a persistent one stays */
		slot = lru;
		*slot = (src_slot_t){.ip = ip};
	}
	slot->count++;
	slot->last = (uint64_t)time(NULL);
	pthread_mutex_unlock(&src_locks[s]);
}

uint64_t auth_failures_of(const net_addr_t *src)
{
	uint64_t n = 0;

	pthread_once(&src_once, src_locks_init);
	net_addr_t ip = ip_only(src);
	unsigned s = src_set(&ip);
	pthread_mutex_lock(&src_locks[s]);
	for (unsigned i = 0; i < SRC_WAYS; i++)
		if (src_slots[s][i].ip.sa.sa_family && net_addr_ip_eq(&src_slots[s][i].ip, &ip))
			n = src_slots[s][i].count;
	pthread_mutex_unlock(&src_locks[s]);
	return n;
}

void auth_failures_foreach(void (*fn)(const net_addr_t *ip, uint64_t count, uint64_t last, void *arg),
			   void *arg)
{
	pthread_once(&src_once, src_locks_init);
	for (unsigned s = 0; s < SRC_SETS; s++) {
		src_slot_t copy[SRC_WAYS];
		pthread_mutex_lock(&src_locks[s]);
		memcpy(copy, src_slots[s], sizeof(copy));
		pthread_mutex_unlock(&src_locks[s]);
		for (unsigned i = 0; i < SRC_WAYS; i++)
			if (copy[i].ip.sa.sa_family)
				fn(&copy[i].ip, copy[i].count, copy[i].last, arg);
	}
}

/* ---------------------------------------------------------------- finding credentials */

static str_t callid(msg_t *m)
{
	return sip_msg_callid(&m->sip);
}

/* The scheme token at the start of a credentials header, case-insensitively "Digest"? */
static bool is_digest(const sip_hdr_t *h)
{
	str_t b = str_trim(h->body);
	return b.len >= 6 && !strncasecmp(b.s, "Digest", 6) && (b.len == 6 || b.s[6] == ' ' || b.s[6] == '\t' ||
								   b.s[6] == '\r' || b.s[6] == '\n');
}

/* RFC 7616 §3.4: what every Digest response carries. */
static bool has_mandatory(const sip_auth_t *a)
{
	return a->username.s && a->realm.s && a->nonce.s && a->uri.s && a->response.s;
}

typedef enum { FIND_NONE, FIND_FOUND, FIND_BAD } find_rc_t;

/* First Digest credentials of type which for realm; FIND_BAD at the first malformed Digest header. */
static find_rc_t find_credentials(msg_t *m, str_t realm, sip_hdr_type_t which, sip_hdr_t **hout,
				  sip_auth_t **aout)
{
	for (sip_hdr_t *h = m->sip.first[which]; h; h = h->next_same) {
		if (!is_digest(h))
			continue; /* another scheme: not for us (RFC 4475 regaut01) */
		sip_auth_t *a = sip_hdr_auth(&m->sip, h);
		if (!a || !has_mandatory(a))
			return FIND_BAD;
		if (str_caseeq(a->realm, realm)) {
			*hout = h;
			*aout = a;
			return FIND_FOUND;
		}
	}
	return FIND_NONE;
}

static bool is_hex(str_t s)
{
	for (size_t i = 0; i < s.len; i++) {
		char c = s.s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

/* nc is exactly 8 hex digits (RFC 7616 §3.4), never 0. */
static bool parse_nc(str_t s, uint32_t *out)
{
	uint32_t v = 0;

	if (s.len != 8 || !is_hex(s))
		return false;
	for (size_t i = 0; i < 8; i++) {
		char c = s.s[i];
		unsigned d = c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
		v = v << 4 | d;
	}
	*out = v;
	return v != 0;
}

/* Syntax checks of the chosen credentials beyond what the parser does. */
static bool well_formed(const sip_auth_t *a, auth_alg_t alg, uint32_t *nc)
{
	*nc = 1; /* without qop a nonce is good for one request */
	if (a->qop.s) {
		if (!str_eq(a->qop, STR_LIT("auth")) && !str_eq(a->qop, STR_LIT("auth-int")))
			return false;
		if (!a->cnonce.len || !parse_nc(a->nc, nc))
			return false;
	} else if ((alg == AUTH_ALG_MD5_SESS || alg == AUTH_ALG_SHA256_SESS) && !a->cnonce.len) {
		return false;
	}
	if (alg != AUTH_ALG_UNKNOWN && a->response.len != auth_alg_hexlen(alg))
		return false;
	return a->username.len && is_hex(a->response);
}

/* ---------------------------------------------------------------- verifying */

static bool unauthenticatable(const msg_t *m)
{
	/* ACK and CANCEL cannot be challenged; PRACK follows its INVITE (Kamailio's pre_auth) */
	return m->sip.method_id & (METH_ACK | METH_CANCEL | METH_PRACK);
}

static int bad_credentials(msg_t *m, const char *why)
{
	str_t cid = callid(m);
	LOG_MSG_DBG(AUTH, &cid, "malformed credentials (%s): 400", why);
	auth_count(auth_st_bad);
	auth_failure(&m->rcv.src);
	if (m->replied < 200)
		auth_reply(m, 400, STR_LIT("Bad Credentials"));
	return AUTH_ERROR;
}

static int fail(msg_t *m, int code, const char *why)
{
	str_t cid = callid(m);
	/* The log may say why (at dbg: one line per message); the reply never does.
	 * Who keeps failing is in auth.failures. */
	LOG_MSG_DBG(AUTH, &cid, "authentication failed: %s", why);
	auth_failure(&m->rcv.src);
	return code;
}

static int stale(msg_t *m, msg_state_t *st)
{
	st->stale = true;
	auth_count(auth_st_stale);
	return AUTH_STALE_NONCE;
}

/* nonce and nc checks; AUTH_OK or the code to return. */
static int check_nonce(msg_t *m, msg_state_t *st, const sip_auth_t *a, str_t realm, uint32_t nc,
		       uint64_t now, uint64_t *key)
{
	switch (auth_nonce_check(a->nonce, realm, now, key)) {
	case AUTH_NONCE_BAD: return fail(m, AUTH_ERROR, "nonce not ours (forged, tampered or for another realm)");
	case AUTH_NONCE_STALE: return stale(m, st);
	case AUTH_NONCE_VALID: break;
	}
	if (!auth_settings.nonce_count)
		return AUTH_OK;
	switch (auth_nc_peek(*key, nc, now)) {
	case AUTH_NC_UNKNOWN: return stale(m, st);
	case AUTH_NC_REPLAY:
		auth_count(auth_st_replayed);
		return fail(m, AUTH_NONCE_REUSED, "nonce count replayed");
	case AUTH_NC_OK: break;
	}
	return AUTH_OK;
}

static int compare_response(msg_t *m, const sip_auth_t *a, auth_alg_t alg, str_t method, str_t ha1)
{
	auth_hex_t want;
	str_t qop = a->qop.s ? a->qop : STR_NULL;

	if (ha1.len != auth_alg_hexlen(alg) || !is_hex(ha1)) {
		str_t cid = callid(m);
		LOG_MSG_ERR(AUTH, &cid, "the HA1 for user '%.*s' is not %s hex: cannot check", STR_FMT(a->username),
			    auth_alg_name(alg));
		return AUTH_ERROR;
	}
	if (auth_response(alg, ha1, a->nonce, a->nc, a->cnonce, qop, method, a->uri, m->sip.body, want) < 0)
		return AUTH_ERROR;
	if (!auth_hex_equal(a->response, str_cstr(want)))
		return fail(m, AUTH_INVALID_PASSWORD, "wrong response (password)");
	return AUTH_OK;
}

int auth_verify(msg_t *m, str_t realm, sip_hdr_type_t which, str_t method, auth_secret_src_t *src)
{
	sip_hdr_t *h;
	sip_auth_t *a;
	uint32_t nc;
	uint64_t key = 0, now = (uint64_t)time(NULL);
	auth_hex_t ha1;
	msg_state_t *st = state_of(m);

	if (m->sip.type != SIP_REQUEST || !realm.len)
		return AUTH_ERROR;
	if (unauthenticatable(m))
		return AUTH_OK;
	switch (find_credentials(m, realm, which, &h, &a)) {
	case FIND_NONE: return AUTH_NO_CREDENTIALS;
	case FIND_BAD: return bad_credentials(m, "unparsable Digest or a mandatory parameter missing");
	case FIND_FOUND: break;
	}
	auth_alg_t alg = auth_alg_parse(a->algorithm);
	if (!well_formed(a, alg, &nc))
		return bad_credentials(m, "qop, nc, cnonce or response");
	if (alg == AUTH_ALG_UNKNOWN || !alg_offered(alg))
		return fail(m, AUTH_ERROR, "algorithm not offered");
	int rc = check_nonce(m, st, a, realm, nc, now, &key);
	if (rc != AUTH_OK)
		return rc;
	rc = src->get_ha1(src, m, a, alg, realm, ha1);
	if (rc == AUTH_USER_UNKNOWN)
		return fail(m, rc, "no such user");
	if (rc != AUTH_OK)
		return rc;
	rc = compare_response(m, a, alg, method.len ? method : m->sip.method, str_cstr(ha1));
	OPENSSL_cleanse(ha1, sizeof(ha1)); /* as good as the password for this realm */
	if (rc != AUTH_OK)
		return rc;
	if (auth_settings.nonce_count && auth_nc_commit(key, nc, now) != AUTH_NC_OK) {
		/* the same nc won a race on another worker */
		auth_count(auth_st_replayed);
		return fail(m, AUTH_NONCE_REUSED, "nonce count replayed");
	}
	st->authorized = h;
	st->cred = a;
	auth_count(auth_st_ok);
	return AUTH_OK;
}

/* ---------------------------------------------------------------- password source */

static int pw_get_ha1(auth_secret_src_t *s, msg_t *m, const sip_auth_t *cred, auth_alg_t alg, str_t realm,
		      auth_hex_t ha1)
{
	auth_pw_src_t *p = (auth_pw_src_t *)s;
	(void)m;
	if (p->ha1) {
		size_t n = p->password.len < AUTH_HEX_MAX ? p->password.len : AUTH_HEX_MAX;
		memcpy(ha1, p->password.s, n);
		ha1[n] = '\0';
		return AUTH_OK;
	}
	/* Kamailio hashes the whole username (with any @domain) and the realm asked for */
	return auth_ha1(alg, cred->username, realm, p->password, ha1) < 0 ? AUTH_ERROR : AUTH_OK;
}

void auth_pw_src_init(auth_pw_src_t *p, str_t password, bool ha1)
{
	*p = (auth_pw_src_t){.src = {.get_ha1 = pw_get_ha1}, .password = password, .ha1 = ha1};
}

/* ---------------------------------------------------------------- user checks */

/* The user part of a username that may be "user@domain". */
static str_t user_part(str_t u)
{
	const char *at = u.len ? memchr(u.s, '@', u.len) : NULL;
	return at ? str_from(u.s, (size_t)(at - u.s)) : u;
}

static bool id_check_skipped(const msg_t *m, int checks)
{
	/* callers may hide their identity on these (auth_db flag 2) */
	return (checks & AUTH_CHECK_SKIPFWD) &&
	       (m->sip.method_id & (METH_INVITE | METH_BYE | METH_PRACK | METH_UPDATE | METH_MESSAGE));
}

int auth_check_user(msg_t *m, int checks)
{
	msg_state_t *st = state_of(m);
	sip_nameaddr_t *from, *to = NULL;

	if (!(checks & AUTH_CHECK_ID))
		return AUTH_OK;
	if (!st->authorized)
		return unauthenticatable(m) ? AUTH_OK : AUTH_ERROR;
	bool reg_pub = m->sip.method_id & (METH_REGISTER | METH_PUBLISH);
	if (!(from = sip_msg_from(&m->sip)) || (reg_pub && !(to = sip_msg_to(&m->sip))))
		return AUTH_ERROR;
	const sip_uri_t *uri = reg_pub ? &to->uri : &from->uri;
	if (!id_check_skipped(m, checks) && !str_eq(user_part(st->cred->username), uri->user))
		return AUTH_USER_MISMATCH;
	if (!reg_pub)
		return AUTH_OK;
	if (!str_eq(from->uri.user, to->uri.user))
		return AUTH_USER_MISMATCH;
	if (auth_settings.use_domain && !str_caseeq(from->uri.host, to->uri.host))
		return AUTH_USER_MISMATCH;
	if (m->sip.method_id == METH_PUBLISH) {
		sip_uri_t *ru = msg_ruri(m);
		if (!ru)
			return AUTH_ERROR;
		if (!str_eq(from->uri.user, ru->user))
			return AUTH_USER_MISMATCH;
		if (auth_settings.use_domain && !str_caseeq(from->uri.host, ru->host))
			return AUTH_USER_MISMATCH;
	}
	return AUTH_OK;
}

/* ---------------------------------------------------------------- has / consume */

int auth_has_credentials(msg_t *m, str_t realm)
{
	static const sip_hdr_type_t types[] = {HDR_PROXY_AUTHORIZATION, HDR_AUTHORIZATION};

	for (size_t i = 0; i < 2; i++)
		for (sip_hdr_t *h = m->sip.first[types[i]]; h; h = h->next_same) {
			sip_auth_t *a = is_digest(h) ? sip_hdr_auth(&m->sip, h) : NULL;
			if (a && a->realm.s && str_caseeq(a->realm, realm))
				return 1;
		}
	return -1;
}

int auth_consume_credentials(msg_t *m)
{
	msg_state_t *st = state_of(m);

	if (unauthenticatable(m))
		return -1;
	if (!st->authorized) {
		str_t cid = callid(m);
		LOG_MSG_ERR(AUTH, &cid, "consume_credentials: no authorized credentials (check the script)");
		return -1;
	}
	return msg_hdr_remove(m, st->authorized->index) < 0 ? -1 : 1;
}

/* ---------------------------------------------------------------- challenges */

/* A realm goes between quotes as is: refuse what would end the quoted-string or the line. */
static bool realm_ok(str_t realm)
{
	if (!realm.len || realm.len > 256)
		return false;
	for (size_t i = 0; i < realm.len; i++) {
		unsigned char c = (unsigned char)realm.s[i];
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			return false;
	}
	return true;
}

static const char *qop_value(int flags)
{
	flags |= auth_settings.qop_flags;
	if ((flags & AUTH_CHF_QOP_AUTH) && (flags & AUTH_CHF_QOP_AUTH_INT))
		return "auth,auth-int";
	if (flags & AUTH_CHF_QOP_AUTH_INT)
		return "auth-int";
	if (flags & AUTH_CHF_QOP_AUTH)
		return "auth";
	return NULL;
}

str_t auth_challenge_hdrs(msg_t *m, str_t realm, int flags, sip_hdr_type_t which)
{
	char nonce[AUTH_NONCE_LEN + 1];
	auth_alg_t algs[AUTH_ALG__COUNT];
	unsigned n = offered_algs(algs);
	const char *qop = qop_value(flags);
	bool is_stale = (flags & AUTH_CHF_STALE) || (m && state_of(m)->stale);
	const char *name = which == HDR_PROXY_AUTHORIZATION ? "Proxy-Authenticate" : "WWW-Authenticate";
	char *buf;
	size_t len;

	if (!realm_ok(realm) || auth_nonce_new(realm, nonce) < 0)
		return STR_NULL;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return STR_NULL;
	/* One nonce for every algorithm offered: RFC 7616 §3.7, the client picks the first it knows. */
	for (unsigned i = 0; i < n; i++) {
		fprintf(f, "%s: Digest realm=\"%.*s\", nonce=\"%s\"", name, STR_FMT(realm), nonce);
		if (qop)
			fprintf(f, ", qop=\"%s\"", qop);
		if (is_stale)
			fputs(", stale=true", f);
		fprintf(f, ", algorithm=%s\r\n", auth_alg_name(algs[i]));
	}
	if (fclose(f) != 0) {
		free(buf);
		return STR_NULL;
	}
	if (!m)
		return str_from(buf, len);
	str_t out = arena_strdup(m->arena, str_from(buf, len));
	free(buf);
	return out;
}

static int challenge_error(msg_t *m, int flags, int code)
{
	if (!(flags & AUTH_CHF_NO_500) && m->replied < 200 && auth_reply(m, 500, STR_NULL) < 0)
		return -4;
	return code;
}

int auth_challenge_send(msg_t *m, str_t realm, int flags, sip_hdr_type_t which)
{
	str_t cid = callid(m);

	if (m->sip.type != SIP_REQUEST || !realm_ok(realm)) {
		LOG_MSG_ERR(AUTH, &cid, "challenge: realm '%.*s' is empty or cannot be quoted",
			    (int)(realm.len > 64 ? 64 : realm.len), realm.s ? realm.s : "");
		return challenge_error(m, flags, -1);
	}
	if (m->replied >= 200) {
		/* e.g. 400 Bad Credentials already went out: one final reply per request */
		LOG_MSG_DBG(AUTH, &cid, "challenge: request already answered with %d", m->replied);
		return -3;
	}
	str_t hdrs = auth_challenge_hdrs(m, realm, flags, which);
	if (!hdrs.s || msg_reply_hdr_add(m, hdrs) < 0)
		return challenge_error(m, flags, -2);
	bool proxy = which == HDR_PROXY_AUTHORIZATION;
	if (auth_reply(m, proxy ? 407 : 401,
			  proxy ? STR_LIT("Proxy Authentication Required") : STR_LIT("Unauthorized")) < 0)
		return -3;
	auth_count(auth_st_challenges);
	return 1;
}
