// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * usrloc's rows in PostgreSQL, Kamailio's `location` layout (version 9).
 *
 * Every statement is prepared per table ("ul.location.upsert" ...): the table
 * name is the one thing spliced into SQL text, and only after ul_domain()
 * checked it is a plain identifier. Contacts are written with an upsert keyed
 * by ruid, so write-through, write-back and a retried write all converge on the
 * same row. Times are local-time TIMESTAMPs as Kamailio writes them; the
 * permanent contact (expires 0) is the Unix epoch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "ul_int.h"

#define COLS \
	"ruid, username, domain, contact, received, path, expires, q, callid, cseq, last_modified, " \
	"flags, cflags, user_agent, socket, methods, instance, reg_id, server_id"
enum {
	C_RUID, C_USER, C_DOMAIN, C_CONTACT, C_RECEIVED, C_PATH, C_EXPIRES, C_Q, C_CALLID, C_CSEQ,
	C_LASTMOD, C_FLAGS, C_CFLAGS, C_UA, C_SOCKET, C_METHODS, C_INSTANCE, C_REGID, C_SERVERID, C_N
};

/* ---------------------------------------------------------------- statements */

static void stmt_name(const ul_domain_t *d, const char *what, char *buf, size_t len)
{
	snprintf(buf, len, "ul.%s.%s", d->name, what);
}

/* SQL from a template whose @T stands for the table name (already checked to be
 * an identifier): the one thing that is ever spliced into a statement. */
static int prep(ul_domain_t *d, const char *what, unsigned nparams, const char *tmpl)
{
	char name[96], sql[1024];
	size_t o = 0;

	stmt_name(d, what, name, sizeof(name));
	for (const char *t = tmpl; *t && o + d->name_len + 1 < sizeof(sql); t++) {
		if (t[0] == '@' && t[1] == 'T') {
			memcpy(sql + o, d->name, d->name_len);
			o += d->name_len;
			t++;
		} else {
			sql[o++] = *t;
		}
	}
	sql[o] = '\0';
	int rc = db_prepare(ul_g.db, name, sql, nparams);
	return rc == -EEXIST ? 0 : rc;
}

int ul_db_prepare(ul_domain_t *d)
{
	bool ud = ul_g.use_domain;
	unsigned aor_params = ud ? 2 : 1;
	int rc = 0;

	rc |= prep(d, "upsert", C_N,
		   "INSERT INTO @T (" COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
		   "$15, $16, $17, $18, $19) ON CONFLICT (ruid) DO UPDATE SET username = EXCLUDED.username, "
		   "domain = EXCLUDED.domain, contact = EXCLUDED.contact, received = EXCLUDED.received, "
		   "path = EXCLUDED.path, expires = EXCLUDED.expires, q = EXCLUDED.q, callid = EXCLUDED.callid, "
		   "cseq = EXCLUDED.cseq, last_modified = EXCLUDED.last_modified, flags = EXCLUDED.flags, "
		   "cflags = EXCLUDED.cflags, user_agent = EXCLUDED.user_agent, socket = EXCLUDED.socket, "
		   "methods = EXCLUDED.methods, instance = EXCLUDED.instance, reg_id = EXCLUDED.reg_id, "
		   "server_id = EXCLUDED.server_id");
	rc |= prep(d, "delete", 1, "DELETE FROM @T WHERE ruid = $1");
	rc |= prep(d, "delete_aor", aor_params,
		   ud ? "DELETE FROM @T WHERE username = $1 AND domain IS NOT DISTINCT FROM $2"
		      : "DELETE FROM @T WHERE username = $1");
	rc |= prep(d, "select_aor", aor_params,
		   ud ? "SELECT " COLS " FROM @T WHERE username = $1 AND domain IS NOT DISTINCT FROM $2 ORDER BY id"
		      : "SELECT " COLS " FROM @T WHERE username = $1 ORDER BY id");
	rc |= prep(d, "select_all", 0, "SELECT " COLS " FROM @T ORDER BY username, domain, id");
	rc |= prep(d, "delete_expired", 2, "DELETE FROM @T WHERE expires < $1 AND expires <> $2");
	rc |= prep(d, "count_users", 0, "SELECT count(DISTINCT (username, domain)) FROM @T");
	rc |= prep(d, "count_contacts", 0, "SELECT count(*) FROM @T");
	return rc ? -EINVAL : 0;
}

static int run(ul_domain_t *d, const char *what, const str_t *params, unsigned n, db_res_t **res)
{
	char name[96];
	stmt_name(d, what, name, sizeof(name));
	return db_exec(ul_g.db, name, params, n, res);
}

/* ---------------------------------------------------------------- values */

static str_t fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;
	localtime_r(&tt, &tm);
	return str_from(buf, strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm));
}

static int64_t parse_time(str_t s)
{
	char buf[40];
	struct tm tm = {0};
	if (!s.s || s.len >= sizeof(buf))
		return 0;
	memcpy(buf, s.s, s.len);
	buf[s.len] = '\0';
	if (!strptime(buf, "%Y-%m-%d %H:%M:%S", &tm))
		return 0;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm);
}

static long long parse_int(str_t s, long long def)
{
	char buf[32];
	if (!s.s || s.len == 0 || s.len >= sizeof(buf))
		return def;
	memcpy(buf, s.s, s.len);
	buf[s.len] = '\0';
	return strtoll(buf, NULL, 10);
}

static int32_t parse_q_col(str_t s)
{
	char buf[32];
	if (!s.s || s.len == 0 || s.len >= sizeof(buf))
		return UL_Q_UNSET;
	memcpy(buf, s.s, s.len);
	buf[s.len] = '\0';
	double q = strtod(buf, NULL);
	if (q < 0)
		return UL_Q_UNSET;
	return q >= 1 ? 1000 : (int32_t)(q * 1000 + 0.5);
}

/* NULL for an empty optional string, as Kamailio leaves those columns. */
static str_t opt(str_t s)
{
	return s.len ? s : STR_NULL;
}

/* The username and domain columns of an AOR: with use_domain, split at the last '@'. */
static void split_aor(str_t aor, str_t *user, str_t *domain)
{
	*user = aor;
	*domain = STR_NULL;
	if (!ul_g.use_domain)
		return;
	for (size_t i = aor.len; i-- > 0;)
		if (aor.s[i] == '@') {
			*user = str_from(aor.s, i);
			*domain = str_from(aor.s + i + 1, aor.len - i - 1);
			return;
		}
	*domain = str_from(aor.s + aor.len, 0); /* '' rather than NULL: there is a domain column */
}

/* The AOR of row i (user, or user@domain with use_domain) into buf. */
static str_t row_aor(const db_res_t *res, unsigned i, char *buf, size_t len)
{
	str_t user = db_value(res, i, C_USER), dom = db_value(res, i, C_DOMAIN);
	if (!ul_g.use_domain || dom.len == 0)
		return user;
	int n = snprintf(buf, len, "%.*s@%.*s", STR_FMT(user), STR_FMT(dom));
	return n > 0 && (size_t)n < len ? str_from(buf, (size_t)n) : STR_NULL;
}

/* Builds a contact from row i, as it is in the database. */
static ul_contact_t *row_contact(const db_res_t *res, unsigned i)
{
	ul_info_t ci = {
		.expires = parse_time(db_value(res, i, C_EXPIRES)),
		.q = parse_q_col(db_value(res, i, C_Q)),
		.cseq = (uint32_t)parse_int(db_value(res, i, C_CSEQ), 0),
		.flags = (uint32_t)parse_int(db_value(res, i, C_FLAGS), 0),
		.cflags = (uint32_t)parse_int(db_value(res, i, C_CFLAGS), 0),
		.methods = (uint32_t)parse_int(db_value(res, i, C_METHODS), -1),
		.reg_id = (uint32_t)parse_int(db_value(res, i, C_REGID), 0),
	};
	static const int map[UL_NSTR] = {
		[UL_CONTACT] = C_CONTACT, [UL_RECEIVED] = C_RECEIVED, [UL_PATH] = C_PATH, [UL_CALLID] = C_CALLID,
		[UL_UA] = C_UA, [UL_SOCKET] = C_SOCKET, [UL_INSTANCE] = C_INSTANCE, [UL_RUID] = C_RUID,
	};
	for (unsigned k = 0; k < UL_NSTR; k++) {
		ci.s[k] = db_value(res, i, (unsigned)map[k]);
		if (!ci.s[k].s)
			ci.s[k] = str_from("", 0);
	}
	/* the epoch, in whatever time zone it was written: permanent */
	if (ci.expires < 2 * 86400)
		ci.expires = 0;
	ul_contact_t *c = ul_contact_new(&ci);
	if (c) {
		c->last_modified = parse_time(db_value(res, i, C_LASTMOD));
		c->server_id = (int32_t)parse_int(db_value(res, i, C_SERVERID), 0);
		c->state = UL_CS_SYNC;
	}
	return c;
}

/* ---------------------------------------------------------------- writes */

int ul_db_upsert(ul_domain_t *d, str_t aor, const ul_contact_t *c)
{
	char exp[32], mod[32], q[8], cseq[16], flags[16], cflags[16], methods[16], regid[16], sid[16];
	str_t p[C_N], user, dom;

	split_aor(aor, &user, &dom);
	/* a permanent contact is stored as the epoch, as Kamailio does */
	p[C_RUID] = ul_cstr(c, UL_RUID);
	p[C_USER] = user;
	p[C_DOMAIN] = dom;
	p[C_CONTACT] = ul_cstr(c, UL_CONTACT);
	p[C_RECEIVED] = opt(ul_cstr(c, UL_RECEIVED));
	p[C_PATH] = opt(ul_cstr(c, UL_PATH));
	p[C_EXPIRES] = fmt_time(c->expires, exp, sizeof(exp));
	p[C_Q] = c->q < 0 ? STR_LIT("-1") : ul_q_str(c->q, q);
	p[C_CALLID] = ul_cstr(c, UL_CALLID);
	p[C_CSEQ] = str_from(cseq, (size_t)snprintf(cseq, sizeof(cseq), "%d", (int32_t)c->cseq));
	p[C_LASTMOD] = fmt_time(c->last_modified, mod, sizeof(mod));
	p[C_FLAGS] = str_from(flags, (size_t)snprintf(flags, sizeof(flags), "%d", (int32_t)c->flags));
	p[C_CFLAGS] = str_from(cflags, (size_t)snprintf(cflags, sizeof(cflags), "%d", (int32_t)c->cflags));
	p[C_UA] = ul_cstr(c, UL_UA);
	p[C_SOCKET] = opt(ul_cstr(c, UL_SOCKET));
	p[C_METHODS] = str_from(methods, (size_t)snprintf(methods, sizeof(methods), "%d", (int32_t)c->methods));
	p[C_INSTANCE] = opt(ul_cstr(c, UL_INSTANCE));
	p[C_REGID] = str_from(regid, (size_t)snprintf(regid, sizeof(regid), "%d", (int32_t)c->reg_id));
	p[C_SERVERID] = str_from(sid, (size_t)snprintf(sid, sizeof(sid), "%d", c->server_id));
	/* text columns are NOT NULL: an absent value is '' */
	for (unsigned i = 0; i < C_N; i++)
		if (!p[i].s && i != C_DOMAIN && i != C_RECEIVED && i != C_PATH && i != C_SOCKET && i != C_INSTANCE)
			p[i] = str_from("", 0);
	int rc = run(d, "upsert", p, C_N, NULL);
	return rc < 0 ? rc : 0;
}

int ul_db_delete(ul_domain_t *d, str_t ruid)
{
	int rc = run(d, "delete", &ruid, 1, NULL);
	return rc < 0 ? rc : 0;
}

int ul_db_delete_aor(ul_domain_t *d, str_t aor)
{
	str_t p[2];
	split_aor(aor, &p[0], &p[1]);
	int rc = run(d, "delete_aor", p, ul_g.use_domain ? 2 : 1, NULL);
	return rc < 0 ? rc : 0;
}

int ul_db_delete_expired(ul_domain_t *d, int64_t now)
{
	char a[32], b[32];
	str_t p[2] = {fmt_time(now, a, sizeof(a)), fmt_time(0, b, sizeof(b))};
	int rc = run(d, "delete_expired", p, 2, NULL);
	if (rc > 0)
		LOG_DBG(USRLOC, "%s: %d expired row(s) deleted", d->name, rc);
	return rc < 0 ? rc : 0;
}

/* ---------------------------------------------------------------- reads */

int ul_db_load_aor(ul_domain_t *d, str_t aor, ul_record_t **out)
{
	db_res_t *res;
	str_t p[2];
	int64_t now = time(NULL);

	*out = NULL;
	split_aor(aor, &p[0], &p[1]);
	int rc = run(d, "select_aor", p, ul_g.use_domain ? 2 : 1, &res);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < db_rows(res); i++) {
		ul_contact_t *c = row_contact(res, i);
		if (!c || !ul_contact_valid(c, now)) {
			free(c);
			continue;
		}
		if (!*out && !(*out = ul_record_new(aor))) {
			free(c);
			break;
		}
		ul_record_link(*out, c);
	}
	db_res_free(res);
	return 0;
}

/* Adds a contact read from the database to memory as it is (no write back). */
static bool load_one(ul_domain_t *d, str_t aor, const ul_contact_t *c)
{
	ul_info_t ci = {
		.expires = c->expires, .q = c->q, .cseq = c->cseq, .flags = c->flags,
		.cflags = c->cflags, .methods = c->methods, .reg_id = c->reg_id,
	};
	ul_contact_t *added;
	ul_ref_t ref;

	for (unsigned k = 0; k < UL_NSTR; k++)
		ci.s[k] = ul_cstr(c, (ul_str_id_t)k);
	if (ul_open(d, aor, &ref) < 0)
		return false;
	ref.nodb = true;
	int rc = ul_add(&ref, &ci, &added);
	if (rc == 0) {
		added->last_modified = c->last_modified;
		added->server_id = c->server_id;
		added->state = UL_CS_SYNC;
	}
	ul_close(&ref);
	return rc == 0;
}

int ul_db_load_all(ul_domain_t *d)
{
	db_res_t *res;
	char buf[512];
	unsigned n = 0;
	int64_t now = time(NULL);

	int rc = run(d, "select_all", NULL, 0, &res);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < db_rows(res); i++) {
		str_t aor = row_aor(res, i, buf, sizeof(buf));
		ul_contact_t *c = row_contact(res, i);
		if (c && aor.len && ul_contact_valid(c, now) && load_one(d, aor, c))
			n++;
		free(c);
	}
	db_res_free(res);
	LOG_NOTICE(USRLOC, "table %s: %u contact(s) loaded from %s", d->name, n, db_url_safe(ul_g.db));
	return 0;
}

int ul_db_foreach(ul_domain_t *d, bool (*fn)(const ul_record_t *r, void *arg), void *arg)
{
	db_res_t *res;
	char buf[512];
	ul_record_t *r = NULL;
	int64_t now = time(NULL);
	bool go = true;

	int rc = run(d, "select_all", NULL, 0, &res);
	if (rc < 0)
		return rc;
	/* rows come ordered by AOR: each run of equal AORs is one record */
	for (unsigned i = 0; i < db_rows(res) && go; i++) {
		str_t aor = row_aor(res, i, buf, sizeof(buf));
		if (r && !str_eq(ul_aor(r), aor)) {
			go = fn(r, arg);
			ul_record_free(r);
			r = NULL;
		}
		ul_contact_t *c = row_contact(res, i);
		if (!go || !c || !ul_contact_valid(c, now)) {
			free(c);
			continue;
		}
		if (!r && !(r = ul_record_new(aor))) {
			free(c);
			continue;
		}
		ul_record_link(r, c);
	}
	if (r && go)
		fn(r, arg);
	ul_record_free(r);
	db_res_free(res);
	return 0;
}

long long ul_db_count(ul_domain_t *d, bool users)
{
	db_res_t *res;
	if (!ul_g.db)
		return -ENOTCONN;
	int rc = run(d, users ? "count_users" : "count_contacts", NULL, 0, &res);
	if (rc < 0)
		return rc;
	long long n = parse_int(db_value(res, 0, 0), 0);
	db_res_free(res);
	return n;
}
