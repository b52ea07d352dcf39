// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * PostgreSQL through libpq: a small, generic connection layer.
 *
 * A db_t names one database (a Kamailio-style URL,
 * postgres://user:pass@host:port/dbname) and the statements prepared on it.
 * It holds no connection itself: every thread that calls db_exec() gets its own
 * connection, opened lazily on first use and closed when the thread exits
 * (a pthread key destructor), so worker threads never share a PGconn and never
 * wait for each other's queries.
 *
 * Only prepared statements run: db_prepare() registers a name and its SQL
 * ($1, $2 ... placeholders) once at start-up, and each connection prepares it
 * on first use. Values travel as parameters, never spliced into SQL text, so a
 * username such as  a'; DROP TABLE x; --  is stored and matched literally.
 *
 * Time is bounded. statement_timeout is set on every connection, and the client
 * waits for a result with poll() against a deadline of the same length
 * (connecting too): a database that stops answering makes db_exec() return
 * -ETIMEDOUT after `timeout_ms`, and the connection is dropped. After a failed
 * connect, the thread does not try again before a back-off delay (250 ms,
 * doubling up to 8 s): meanwhile db_exec() fails at once with -ENOTCONN, so an
 * outage costs a worker nothing but an error reply.
 *
 * An outage is logged once when it starts (error) and once when it ends
 * (notice), whichever threads notice it; db_is_up() tells the current state.
 *
 * Ownership: db_open() returns an owned handle; db_close() frees it after the
 * threads that used it have stopped. A db_res_t is owned by the caller until
 * db_res_free(); the str_t values read from it are borrowed from it.
 */
#include <stdbool.h>

#include "../lib/str.h"

typedef struct db db_t;
typedef struct db_res db_res_t;

#define DB_MAX_STMTS 64   /* prepared statements per db_t */
#define DB_MAX_PARAMS 32  /* parameters per statement */

/*
 * Parses url and returns a handle (no connection is made yet), or NULL with one
 * line in errbuf. timeout_ms bounds connecting and every statement (>= 100).
 */
db_t *db_open(const char *url, unsigned timeout_ms, char *errbuf, size_t errlen);
/* Closes the calling thread's connection and frees db. Other threads must be done. */
void db_close(db_t *db);

/*
 * Registers statement `name` with `sql` taking nparams parameters. Call before
 * the threads that use it start. 0, -EEXIST, -E2BIG (too many), -ENOMEM.
 */
int db_prepare(db_t *db, const char *name, const char *sql, unsigned nparams);

/*
 * Runs a prepared statement on the calling thread's connection. params are text
 * (a .s == NULL parameter is SQL NULL). On success returns the number of rows
 * returned (SELECT) or affected (INSERT/UPDATE/DELETE), and *res, when res is
 * not NULL, holds the result (free it with db_res_free). Errors:
 *   -ENOTCONN   no connection (down, or waiting out the back-off)
 *   -ETIMEDOUT  no answer within the timeout (the connection was dropped)
 *   -EIO        the statement failed (constraint, bad value ...: logged)
 *   -ENOENT     no statement of that name; -EINVAL wrong parameter count
 * A connection found broken (server restarted) is reopened once and the
 * statement retried before giving up.
 */
int db_exec(db_t *db, const char *name, const str_t *params, unsigned nparams, db_res_t **res);

/* Opens the calling thread's connection now (start-up checks): 0 or -ENOTCONN. */
int db_connect(db_t *db);
/* False from the first failed connect or query until a statement succeeds again. */
bool db_is_up(const db_t *db);
/* The URL without its password, for logs and RPC: "postgres://user@host:port/db". */
const char *db_url_safe(const db_t *db);

/* Results. Rows and columns count from 0. */
unsigned db_rows(const db_res_t *r);
unsigned db_cols(const db_res_t *r);
/* Column index by name, or -1. */
int db_col(const db_res_t *r, const char *name);
/* Value as text (borrowed); STR_NULL for SQL NULL or out of range. */
str_t db_value(const db_res_t *r, unsigned row, unsigned col);
bool db_is_null(const db_res_t *r, unsigned row, unsigned col);
/* Value by column name; STR_NULL when NULL or no such column. */
str_t db_get(const db_res_t *r, unsigned row, const char *col);
void db_res_free(db_res_t *r);
