// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * libpq, used asynchronously so that every wait has a deadline: connecting
 * with PQconnectStartParams/PQconnectPoll, statements with
 * PQsendQueryPrepared/PQconsumeInput, both driven by poll().
 */
#include "db.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 8000

typedef struct {
	char *name;
	char *sql;
	unsigned nparams;
} db_stmt_t;

struct db {
	char *host, *port, *user, *pass, *dbname;
	char safe_url[256];
	char options[64];      /* "-c statement_timeout=N" */
	char connect_timeout[16];
	unsigned timeout_ms;
	pthread_key_t key;     /* the calling thread's db_conn_t */
	pthread_mutex_t lock;  /* statements */
	db_stmt_t stmts[DB_MAX_STMTS];
	unsigned nstmts;
	_Atomic int down;      /* an outage is in progress (logged once) */
};

typedef struct {
	PGconn *pg;
	long long next_try_ms; /* monotonic: no connect attempt before this */
	unsigned backoff_ms;
	bool prepared[DB_MAX_STMTS];
} db_conn_t;

struct db_res {
	PGresult *pg;
};

/* ---------------------------------------------------------------- helpers */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void mark_down(db_t *db, const char *why)
{
	if (!atomic_exchange(&db->down, 1))
		LOG_ERR(DB, "%s: database unreachable: %s (further errors are not logged until it is back)",
			db->safe_url, why);
}

static void mark_up(db_t *db)
{
	if (atomic_load_explicit(&db->down, memory_order_relaxed) && atomic_exchange(&db->down, 0))
		LOG_NOTICE(DB, "%s: database reachable again", db->safe_url);
}

/* libpq's messages end with a newline; this one line is for our logs. */
static const char *pq_error(PGconn *pg)
{
	static _Thread_local char buf[256];
	const char *e = pg ? PQerrorMessage(pg) : "out of memory";
	snprintf(buf, sizeof(buf), "%s", e && *e ? e : "unknown error");
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = *(p + 1) ? ' ' : '\0';
	return buf;
}

/* ---------------------------------------------------------------- URL */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A %-decoded, NUL-terminated copy of s[0..n). */
static char *decoded(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* postgres://[user[:pass]@]host[:port]/dbname ; host may be [v6] */
static int parse_url(db_t *db, const char *url, char *err, size_t errlen)
{
	const char *p = url, *at, *slash, *colon, *hend;

	if (!strncmp(p, "postgres://", 11))
		p += 11;
	else if (!strncmp(p, "postgresql://", 13))
		p += 13;
	else {
		snprintf(err, errlen, "db_url: expected postgres://user:pass@host:port/dbname");
		return -EINVAL;
	}
	slash = strchr(p, '/');
	if (!slash || !slash[1]) {
		snprintf(err, errlen, "db_url: no database name (postgres://user:pass@host:port/dbname)");
		return -EINVAL;
	}
	at = memrchr(p, '@', (size_t)(slash - p));
	if (at) {
		colon = memchr(p, ':', (size_t)(at - p));
		db->user = decoded(p, (size_t)((colon ? colon : at) - p));
		if (colon)
			db->pass = decoded(colon + 1, (size_t)(at - colon - 1));
		p = at + 1;
	}
	if (*p == '[') {
		hend = memchr(p, ']', (size_t)(slash - p));
		if (!hend) {
			snprintf(err, errlen, "db_url: unterminated [IPv6] host");
			return -EINVAL;
		}
		db->host = decoded(p + 1, (size_t)(hend - p - 1));
		colon = hend[1] == ':' ? hend + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(slash - p));
		db->host = decoded(p, (size_t)((colon ? colon : slash) - p));
	}
	if (colon)
		db->port = decoded(colon + 1, (size_t)(slash - colon - 1));
	db->dbname = decoded(slash + 1, strlen(slash + 1));
	if (!db->host || !db->dbname || (colon && !db->port)) {
		snprintf(err, errlen, "db_url: out of memory");
		return -ENOMEM;
	}
	snprintf(db->safe_url, sizeof(db->safe_url), "postgres://%s%s%s%s%s/%s", db->user ? db->user : "",
		 db->user ? "@" : "", db->host, db->port ? ":" : "", db->port ? db->port : "", db->dbname);
	return 0;
}

/* ---------------------------------------------------------------- handle */

static void conn_drop(db_conn_t *c)
{
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	memset(c->prepared, 0, sizeof(c->prepared));
}

static void conn_free(void *p)
{
	db_conn_t *c = p;
	conn_drop(c);
	free(c);
}

db_t *db_open(const char *url, unsigned timeout_ms, char *errbuf, size_t errlen)
{
	db_t *db = calloc(1, sizeof(*db));

	if (!db) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	if (parse_url(db, url ? url : "", errbuf, errlen) < 0 || pthread_key_create(&db->key, conn_free) != 0) {
		free(db->host), free(db->port), free(db->user), free(db->pass), free(db->dbname);
		free(db);
		return NULL;
	}
	if (timeout_ms < 100)
		timeout_ms = 100;
	db->timeout_ms = timeout_ms;
	snprintf(db->options, sizeof(db->options), "-c statement_timeout=%u", timeout_ms);
	/* libpq's own connect timeout is in seconds; ours (poll deadline) is the real bound */
	snprintf(db->connect_timeout, sizeof(db->connect_timeout), "%u", (timeout_ms + 999) / 1000 + 1);
	pthread_mutex_init(&db->lock, NULL);
	return db;
}

void db_close(db_t *db)
{
	if (!db)
		return;
	db_conn_t *c = pthread_getspecific(db->key);
	if (c) {
		pthread_setspecific(db->key, NULL);
		conn_free(c);
	}
	pthread_key_delete(db->key);
	for (unsigned i = 0; i < db->nstmts; i++) {
		free(db->stmts[i].name);
		free(db->stmts[i].sql);
	}
	pthread_mutex_destroy(&db->lock);
	free(db->host), free(db->port), free(db->user), free(db->pass), free(db->dbname);
	free(db);
}

const char *db_url_safe(const db_t *db)
{
	return db->safe_url;
}

bool db_is_up(const db_t *db)
{
	return !atomic_load_explicit(&((db_t *)db)->down, memory_order_relaxed);
}

int db_prepare(db_t *db, const char *name, const char *sql, unsigned nparams)
{
	int rc = 0;

	if (nparams > DB_MAX_PARAMS)
		return -E2BIG;
	pthread_mutex_lock(&db->lock);
	for (unsigned i = 0; i < db->nstmts && !rc; i++)
		if (!strcmp(db->stmts[i].name, name))
			rc = -EEXIST;
	if (!rc && db->nstmts == DB_MAX_STMTS)
		rc = -E2BIG;
	if (!rc) {
		db_stmt_t *s = &db->stmts[db->nstmts];
		s->name = strdup(name);
		s->sql = strdup(sql);
		s->nparams = nparams;
		if (!s->name || !s->sql) {
			free(s->name), free(s->sql);
			rc = -ENOMEM;
		} else {
			db->nstmts++;
		}
	}
	pthread_mutex_unlock(&db->lock);
	return rc;
}

static int find_stmt(db_t *db, const char *name)
{
	int idx = -1;
	pthread_mutex_lock(&db->lock);
	for (unsigned i = 0; i < db->nstmts; i++)
		if (!strcmp(db->stmts[i].name, name)) {
			idx = (int)i;
			break;
		}
	pthread_mutex_unlock(&db->lock);
	return idx;
}

/* ---------------------------------------------------------------- waiting */

/* Waits until fd is ready for `events` or the deadline passes: 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Sends what libpq has buffered: 0, -ETIMEDOUT or -ENOTCONN. */
static int flush_out(PGconn *pg, long long deadline)
{
	int f;
	while ((f = PQflush(pg)) == 1) {
		int w = wait_fd(PQsocket(pg), POLLOUT | POLLIN, deadline);
		if (w == 0)
			return -ETIMEDOUT;
		if (w < 0 || !PQconsumeInput(pg))
			return -ENOTCONN;
	}
	return f == 0 ? 0 : -ENOTCONN;
}

/*
 * Collects the results of the command just sent and returns the last one
 * (NULL with *rc set on failure).
 */
static PGresult *wait_result(PGconn *pg, long long deadline, int *rc)
{
	PGresult *last = NULL;

	*rc = flush_out(pg, deadline);
	if (*rc)
		return NULL;
	for (;;) {
		if (!PQconsumeInput(pg)) {
			*rc = -ENOTCONN;
			break;
		}
		while (!PQisBusy(pg)) {
			PGresult *r = PQgetResult(pg);
			if (!r)
				return last;
			if (last)
				PQclear(last);
			last = r;
		}
		int w = wait_fd(PQsocket(pg), POLLIN, deadline);
		if (w <= 0) {
			*rc = w == 0 ? -ETIMEDOUT : -ENOTCONN;
			break;
		}
	}
	if (last)
		PQclear(last);
	return NULL;
}

/* ---------------------------------------------------------------- connecting */

static db_conn_t *thread_conn(db_t *db)
{
	db_conn_t *c = pthread_getspecific(db->key);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (c && pthread_setspecific(db->key, c) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

static PGconn *start_connect(db_t *db)
{
	const char *keys[] = {"host", "port", "user", "password", "dbname", "options", "connect_timeout",
			      "application_name", NULL};
	const char *vals[] = {db->host, db->port, db->user, db->pass, db->dbname, db->options,
			      db->connect_timeout, "ksrd", NULL};
	return PQconnectStartParams(keys, vals, 0);
}

/* Drives PQconnectPoll against the deadline. 0 or -ENOTCONN/-ETIMEDOUT (why in *why). */
static int finish_connect(PGconn *pg, long long deadline, const char **why)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	for (;;) {
		if (st == PGRES_POLLING_OK)
			return 0;
		if (st == PGRES_POLLING_FAILED) {
			*why = pq_error(pg);
			return -ENOTCONN;
		}
		int w = wait_fd(PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
		if (w == 0) {
			*why = "connect timed out";
			return -ETIMEDOUT;
		}
		if (w < 0) {
			*why = "poll failed";
			return -ENOTCONN;
		}
		st = PQconnectPoll(pg);
	}
}

static int conn_open(db_t *db, db_conn_t *c)
{
	const char *why = "out of memory";
	long long now = now_ms();
	int rc = -ENOTCONN;

	if (now < c->next_try_ms)
		return -ENOTCONN;
	c->pg = start_connect(db);
	if (c->pg && PQstatus(c->pg) != CONNECTION_BAD)
		rc = finish_connect(c->pg, now + db->timeout_ms, &why);
	else if (c->pg)
		why = pq_error(c->pg);
	if (rc == 0 && PQsetnonblocking(c->pg, 1) != 0) {
		why = pq_error(c->pg);
		rc = -ENOTCONN;
	}
	if (rc < 0) {
		conn_drop(c);
		c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (c->backoff_ms > BACKOFF_MAX_MS)
			c->backoff_ms = BACKOFF_MAX_MS;
		c->next_try_ms = now_ms() + c->backoff_ms;
		mark_down(db, why);
		return -ENOTCONN;
	}
	c->backoff_ms = 0;
	c->next_try_ms = 0;
	memset(c->prepared, 0, sizeof(c->prepared));
	return 0;
}

int db_connect(db_t *db)
{
	db_conn_t *c = thread_conn(db);
	if (!c)
		return -ENOMEM;
	if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	conn_drop(c);
	c->next_try_ms = 0;
	int rc = conn_open(db, c);
	if (rc == 0)
		mark_up(db);
	return rc;
}

/* ---------------------------------------------------------------- statements */

/* After a failed exchange: why, and whether the connection is still usable. */
static int classify(db_t *db, db_conn_t *c, int rc)
{
	if (rc == -ETIMEDOUT) {
		/* a reply may still come: this connection is out of step for good */
		conn_drop(c);
		mark_down(db, "statement timed out");
		return rc;
	}
	mark_down(db, pq_error(c->pg));
	conn_drop(c);
	return -ENOTCONN;
}

static int result_error(db_t *db, db_conn_t *c, PGresult *r, const char *stmt)
{
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	char msg[256], state[8] = "";

	/* both live in r: copied before PQclear frees it */
	snprintf(state, sizeof(state), "%s", st ? st : "");
	snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
	msg[strcspn(msg, "\r\n")] = '\0';
	PQclear(r);
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		mark_down(db, msg);
		conn_drop(c);
		return -ENOTCONN;
	}
	if (!strcmp(state, "57014")) { /* query_canceled: statement_timeout */
		mark_down(db, "statement timed out on the server");
		return -ETIMEDOUT;
	}
	LOG_ERR(DB, "%s: statement %s failed: %s", db->safe_url, stmt, msg);
	return -EIO;
}

static int ensure_prepared(db_t *db, db_conn_t *c, int idx, long long deadline)
{
	const db_stmt_t *s = &db->stmts[idx];
	int rc;

	if (c->prepared[idx])
		return 0;
	if (!PQsendPrepare(c->pg, s->name, s->sql, (int)s->nparams, NULL))
		return classify(db, c, -ENOTCONN);
	PGresult *r = wait_result(c->pg, deadline, &rc);
	if (!r)
		return classify(db, c, rc ? rc : -ENOTCONN);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		return result_error(db, c, r, s->name);
	PQclear(r);
	c->prepared[idx] = true;
	return 0;
}

/* One attempt on an open connection. */
static int exec_once(db_t *db, db_conn_t *c, int idx, const char *const *vals, db_res_t **res)
{
	const db_stmt_t *s = &db->stmts[idx];
	long long deadline = now_ms() + db->timeout_ms;
	int rc = ensure_prepared(db, c, idx, deadline);

	if (rc)
		return rc;
	if (!PQsendQueryPrepared(c->pg, s->name, (int)s->nparams, vals, NULL, NULL, 0))
		return classify(db, c, -ENOTCONN);
	PGresult *r = wait_result(c->pg, deadline, &rc);
	if (!r)
		return classify(db, c, rc ? rc : -ENOTCONN);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return result_error(db, c, r, s->name);
	mark_up(db);
	rc = st == PGRES_TUPLES_OK ? PQntuples(r) : atoi(PQcmdTuples(r));
	if (res && (*res = malloc(sizeof(**res)))) {
		(*res)->pg = r;
		return rc;
	}
	PQclear(r);
	return res ? -ENOMEM : rc;
}

/* NUL-terminated copies of the parameters, in one buffer. */
static char *param_copies(const str_t *params, unsigned n, const char **vals)
{
	size_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += params[i].len + 1;
	char *buf = malloc(total ? total : 1), *p = buf;
	if (!buf)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		if (!params[i].s) {
			vals[i] = NULL;
			continue;
		}
		memcpy(p, params[i].s, params[i].len);
		p[params[i].len] = '\0';
		vals[i] = p;
		p += params[i].len + 1;
	}
	return buf;
}

int db_exec(db_t *db, const char *name, const str_t *params, unsigned nparams, db_res_t **res)
{
	const char *vals[DB_MAX_PARAMS];
	int idx = find_stmt(db, name);
	db_conn_t *c;
	int rc;

	if (res)
		*res = NULL;
	if (idx < 0)
		return -ENOENT;
	if (nparams != db->stmts[idx].nparams)
		return -EINVAL;
	c = thread_conn(db);
	if (!c)
		return -ENOMEM;
	char *buf = param_copies(params, nparams, vals);
	if (!buf)
		return -ENOMEM;
	bool was_open = c->pg != NULL;
	if (!was_open && (rc = conn_open(db, c)) < 0)
		goto out;
	rc = exec_once(db, c, idx, vals, res);
	/* A connection that broke while idle (server restart) gets one more chance. */
	if (rc == -ENOTCONN && was_open) {
		c->next_try_ms = 0;
		if (conn_open(db, c) == 0)
			rc = exec_once(db, c, idx, vals, res);
	}
out:
	free(buf);
	return rc;
}

/* ---------------------------------------------------------------- results */

unsigned db_rows(const db_res_t *r)
{
	return r ? (unsigned)PQntuples(r->pg) : 0;
}

unsigned db_cols(const db_res_t *r)
{
	return r ? (unsigned)PQnfields(r->pg) : 0;
}

int db_col(const db_res_t *r, const char *name)
{
	return r ? PQfnumber(r->pg, name) : -1;
}

bool db_is_null(const db_res_t *r, unsigned row, unsigned col)
{
	return !r || row >= db_rows(r) || col >= db_cols(r) || PQgetisnull(r->pg, (int)row, (int)col);
}

str_t db_value(const db_res_t *r, unsigned row, unsigned col)
{
	if (db_is_null(r, row, col))
		return STR_NULL;
	return str_from(PQgetvalue(r->pg, (int)row, (int)col), (size_t)PQgetlength(r->pg, (int)row, (int)col));
}

str_t db_get(const db_res_t *r, unsigned row, const char *col)
{
	int c = db_col(r, col);
	return c < 0 ? STR_NULL : db_value(r, row, (unsigned)c);
}

void db_res_free(db_res_t *r)
{
	if (!r)
		return;
	PQclear(r->pg);
	free(r);
}
