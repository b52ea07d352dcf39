// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * auth_db: HA1 (or the plain password) from a Kamailio-style subscriber table
 * through core/db. Scripts name the table at call time, so the statements are
 * prepared on first use of each (table, with-domain) pair; the table name is
 * checked to be a plain SQL identifier first, because identifiers cannot be
 * parameters. Values (user, domain) only ever travel as parameters.
 *
 * One query per check returns the password column(s) and the load_credentials
 * columns together. A database that does not answer makes auth_check() reply
 * 500 with Retry-After and log why, within auth.db_timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../db/db.h"
#include "../lib/log.h"
#include "auth_int.h"

#define MAX_TABLE 63
#define RETRY_AFTER "Retry-After: 5\r\n"

static db_t *adb;
static const ksr_cfg_t *acfg;
static unsigned npw;                       /* password columns selected: 1 or 2 */
static char *cred_cols[AUTH_DB_MAX_CREDS]; /* load_credentials: columns ... */
static char *cred_pvs[AUTH_DB_MAX_CREDS];  /* ... and where they go */
static unsigned ncreds;

/* ---------------------------------------------------------------- set-up */

static void free_creds(void)
{
	for (unsigned i = 0; i < ncreds; i++) {
		free(cred_cols[i]);
		free(cred_pvs[i]);
	}
	ncreds = 0;
}

/* "col;$avp(x)=col2" (checked by the config loader); a bare column goes to $avp(column). */
static int parse_creds(const char *spec, char *errbuf, size_t errlen)
{
	str_t rest = str_cstr(spec);

	while (rest.len) {
		const char *semi = memchr(rest.s, ';', rest.len);
		str_t item = str_trim(str_from(rest.s, semi ? (size_t)(semi - rest.s) : rest.len));
		rest = semi ? str_from(semi + 1, rest.len - (size_t)(semi + 1 - rest.s)) : STR_NULL;
		if (!item.len)
			continue;
		if (ncreds == AUTH_DB_MAX_CREDS) {
			snprintf(errbuf, errlen, "auth.load_credentials: more than %d columns", AUTH_DB_MAX_CREDS);
			return -1;
		}
		const char *eq = memchr(item.s, '=', item.len);
		str_t col = eq ? str_trim(str_from(eq + 1, item.len - (size_t)(eq + 1 - item.s))) : item;
		str_t pv = eq ? str_trim(str_from(item.s, (size_t)(eq - item.s))) : STR_NULL;
		cred_cols[ncreds] = strndup(col.s, col.len);
		if (pv.len)
			cred_pvs[ncreds] = strndup(pv.s, pv.len);
		else if (asprintf(&cred_pvs[ncreds], "$avp(%.*s)", STR_FMT(col)) < 0)
			cred_pvs[ncreds] = NULL;
		if (!cred_cols[ncreds] || !cred_pvs[ncreds]) {
			free(cred_cols[ncreds]);
			free(cred_pvs[ncreds]);
			snprintf(errbuf, errlen, "auth.load_credentials: out of memory");
			return -1;
		}
		ncreds++;
	}
	return 0;
}

int auth_db_init(const ksr_cfg_t *cfg, char *errbuf, size_t errlen)
{
	char why[256];

	auth_db_shutdown();
	acfg = cfg;
	npw = cfg->auth.calculate_ha1 ? 1 : 2;
	if (cfg->auth.load_credentials && parse_creds(cfg->auth.load_credentials, errbuf, errlen) < 0)
		return -1;
	if (!cfg->auth.db_url || !cfg->auth.db_url[0])
		return 0;
	adb = db_open(cfg->auth.db_url, cfg->auth.db_timeout, why, sizeof(why));
	if (!adb) {
		snprintf(errbuf, errlen, "auth.db_url: %s", why);
		return -1;
	}
	/* Down at start is not fatal: each query retries, and a check meanwhile gets a 500. */
	if (db_connect(adb) < 0)
		LOG_WARN(AUTH, "auth_db: %s not reachable yet; checks answer 500 until it is", db_url_safe(adb));
	return 0;
}

void auth_db_shutdown(void)
{
	if (adb)
		db_close(adb);
	adb = NULL;
	free_creds();
}

unsigned auth_db_cred_count(void)
{
	return ncreds;
}

const char *auth_db_cred_pv(unsigned i)
{
	return i < ncreds ? cred_pvs[i] : NULL;
}

/* ---------------------------------------------------------------- statements */

/* A table name goes into SQL text: a plain identifier, optionally schema-qualified. */
static bool table_ok(str_t t)
{
	bool dot = false;

	if (!t.len || t.len > MAX_TABLE || t.s[0] == '.' || t.s[t.len - 1] == '.')
		return false;
	for (size_t i = 0; i < t.len; i++) {
		char c = t.s[i];
		bool first = i == 0 || t.s[i - 1] == '.';
		if (c == '.' && !dot) {
			dot = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* Prepares (once per table and form) the subscriber lookup; its name goes to name. 0 or -1. */
static int prepare(str_t table, bool with_domain, char *name, size_t len)
{
	const ksr_cfg_t *c = acfg;
	char sql[1024];
	int n;

	snprintf(name, len, "auth_db:%.*s:%d", STR_FMT(table), with_domain);
	n = snprintf(sql, sizeof(sql), "SELECT %s", c->auth.password_column);
	if (npw == 2)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, ", %s", c->auth.password_column_2);
	for (unsigned i = 0; i < ncreds && n > 0 && (size_t)n < sizeof(sql); i++)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, ", %s", cred_cols[i]);
	if (n > 0 && (size_t)n < sizeof(sql))
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " FROM %.*s WHERE %s = $1", STR_FMT(table),
			      c->auth.user_column);
	if (with_domain && n > 0 && (size_t)n < sizeof(sql))
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND %s = $2", c->auth.domain_column);
	if (n <= 0 || (size_t)n >= sizeof(sql))
		return -1;
	int rc = db_prepare(adb, name, sql, with_domain ? 2 : 1);
	if (rc == 0 || rc == -EEXIST)
		return 0;
	LOG_ERR(AUTH, "auth_db: cannot prepare the lookup in table %.*s: %s", STR_FMT(table), strerror(-rc));
	return -1;
}

/* ---------------------------------------------------------------- lookups */

static str_t cid_of(msg_t *m)
{
	return m ? sip_msg_callid(&m->sip) : STR_NULL;
}

/*
 * Runs the lookup. 1 found (*res holds the row), 0 no such subscriber, -1 the
 * database failed (logged), -2 bad table name (logged).
 */
static int lookup(msg_t *m, str_t table, str_t user, str_t domain, bool with_domain, db_res_t **res)
{
	char name[96];
	str_t params[2] = {user, domain};
	str_t cid = cid_of(m);

	*res = NULL;
	if (!adb) {
		LOG_MSG_ERR(AUTH, &cid, "auth_db: no database (set auth.db_url)");
		return -1;
	}
	if (!table_ok(table)) {
		LOG_MSG_ERR(AUTH, &cid, "auth_db: \"%.*s\" is not a table name", (int)(table.len > 64 ? 64 : table.len),
			    table.s ? table.s : "");
		return -2;
	}
	if (prepare(table, with_domain, name, sizeof(name)) < 0)
		return -1;
	int n = db_exec(adb, name, params, with_domain ? 2 : 1, res);
	if (n < 0) {
		LOG_MSG_ERR(AUTH, &cid, "auth_db: lookup of a subscriber in %.*s on %s failed: %s", STR_FMT(table),
			    db_url_safe(adb), strerror(-n));
		return -1;
	}
	return n > 0 ? 1 : 0;
}

/* Copies the load_credentials columns of row 0 (after npw skip password columns) into creds. */
static void fill_creds(msg_t *m, db_res_t *res, unsigned skip, auth_db_creds_t *creds)
{
	if (!creds)
		return;
	creds->n = ncreds;
	for (unsigned i = 0; i < ncreds; i++) {
		str_t v = db_value(res, 0, skip + i);
		bool null = db_is_null(res, 0, skip + i);
		creds->value[i] = null ? STR_NULL : (m ? arena_strdup(m->arena, v) : v);
		creds->is_null[i] = null || (v.len && !creds->value[i].s);
	}
}

typedef struct {
	auth_secret_src_t src;
	str_t table;
	db_res_t *res; /* kept for the credentials */
	bool db_failed;
} db_src_t;

/* Kamailio's split of a username "user@domain": the user is looked up, the domain matched. */
static void split_username(str_t whole, str_t realm, str_t *user, str_t *domain, bool *has_domain)
{
	const char *at = whole.len ? memchr(whole.s, '@', whole.len) : NULL;
	*has_domain = at != NULL;
	*user = at ? str_from(whole.s, (size_t)(at - whole.s)) : whole;
	*domain = at ? str_from(at + 1, whole.len - (size_t)(at + 1 - whole.s)) : realm;
}

static int db_get_ha1(auth_secret_src_t *s, msg_t *m, const sip_auth_t *cred, auth_alg_t alg, str_t realm,
		      auth_hex_t ha1)
{
	db_src_t *d = (db_src_t *)s;
	str_t user, domain;
	bool has_domain;

	split_username(cred->username, realm, &user, &domain, &has_domain);
	int rc = lookup(m, d->table, user, domain, acfg->auth.use_domain, &d->res);
	if (rc < 0) {
		d->db_failed = rc == -1;
		return AUTH_ERROR;
	}
	if (rc == 0)
		return AUTH_USER_UNKNOWN;
	if (acfg->auth.calculate_ha1)
		return auth_ha1(alg, cred->username, realm, db_value(d->res, 0, 0), ha1) < 0 ? AUTH_ERROR : AUTH_OK;
	/* stored HA1: ha1b was computed with "user@domain" as the username */
	str_t v = db_value(d->res, 0, has_domain ? 1 : 0);
	size_t n = v.len < AUTH_HEX_MAX ? v.len : AUTH_HEX_MAX;
	memcpy(ha1, v.s, n);
	ha1[n] = '\0';
	return AUTH_OK;
}

static void db_unavailable(msg_t *m)
{
	/* RFC 3261 §21.5.1: a 500 may say when to retry */
	if (m->replied < 200 && msg_reply_hdr_add(m, STR_LIT(RETRY_AFTER)) == 0)
		auth_reply(m, 500, STR_LIT("Server Internal Error"));
}

int auth_db_verify(msg_t *m, str_t realm, str_t table, sip_hdr_type_t which, str_t method, auth_db_creds_t *creds)
{
	db_src_t d = {.src = {.get_ha1 = db_get_ha1}, .table = table};

	if (creds)
		creds->n = 0;
	int rc = auth_verify(m, realm, which, method, &d.src);
	if (d.db_failed)
		db_unavailable(m);
	if (rc == AUTH_OK && d.res)
		fill_creds(m, d.res, npw, creds);
	db_res_free(d.res);
	return rc;
}

int auth_db_is_subscriber(msg_t *m, str_t uri, str_t table, int flags, auth_db_creds_t *creds)
{
	sip_uri_t u;
	db_res_t *res;

	if (creds)
		creds->n = 0;
	if (!m || sip_uri_parse(m->arena, uri, &u, NULL) != SIP_OK || !u.user.len) {
		str_t cid = cid_of(m);
		LOG_MSG_ERR(AUTH, &cid, "auth_db.is_subscriber: \"%.*s\" is not a URI with a user",
			    (int)(uri.len > 128 ? 128 : uri.len), uri.s ? uri.s : "");
		return -1;
	}
	int rc = lookup(m, table, u.user, u.host, flags & AUTH_DB_SUBS_USE_DOMAIN, &res);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		db_res_free(res);
		return -2;
	}
	if (!(flags & AUTH_DB_SUBS_SKIP_CREDENTIALS))
		fill_creds(m, res, npw, creds);
	db_res_free(res);
	return 1;
}
