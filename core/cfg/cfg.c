// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Loading the configuration: the Lua file runs in a fresh state whose chunk
 * sees only a sandbox environment; whatever it assigned is then checked against
 * the schema below and copied into a ksr_cfg_t. Everything allocated hangs off
 * that ksr_cfg_t as soon as it exists, so one cfg_free() cleans up any failure.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>

#include "config.h"

#include "../lib/log.h"
#include "../lib/str.h"
#include "cfg.h"
#include "cfg_addr.h"

#define DEFAULT_SCRIPT KSR_SOURCE_DIR "/lua/routes/default/route.lua"

/* A configuration is a few assignments: anything running this long is a loop
 * that would otherwise hang start-up. Counted in VM instructions. */
#define MAX_INSTRUCTIONS 10000000
#define HOOK_EVERY 1000

#define MAX_PATH_NAME 128 /* key paths in messages: "tcp.idle_timeout", "listen[2]" */

typedef struct {
	lua_State *L;
	const char *file; /* as given: the first word of every message */
	char *dir;        /* absolute directory of the file, base of relative paths */
	ksr_cfg_t *cfg;   /* being filled; owns every allocation so far */
	char *err;
	size_t errlen;
	int rc;           /* result of the checks run inside lua_cpcall */
	long steps;       /* instruction hook calls so far */
	bool script_set;  /* the file set script, rather than leaving the default */
} cfg_ctx_t;

typedef enum {
	CFG_SECTION, /* a table of further keys */
	CFG_INT,     /* integral number in [min, max], into an integer or bool field */
	CFG_BOOL,    /* Lua boolean, into a bool or unsigned field */
	CFG_STRING,  /* string without NUL bytes, into an owned char * */
	CFG_PATH,    /* string; relative means relative to the config file's directory */
	CFG_CUSTOM,  /* parse() checks and stores; expect says what it accepts */
} cfg_type_t;

typedef struct cfg_key cfg_key_t;
/* Checks the value at stack index idx and stores it into field (or c->cfg). */
typedef int (*cfg_parse_fn)(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
/* Computes a default that is not a constant. */
typedef int (*cfg_default_fn)(cfg_ctx_t *c, void *field);

struct cfg_key {
	const char *path;      /* "tcp.idle_timeout": sections first, then their keys */
	cfg_type_t type;
	size_t off, size;      /* the field in ksr_cfg_t; unused for sections */
	long long min, max;    /* CFG_INT bounds, inclusive */
	long long def;         /* CFG_INT, CFG_BOOL and integer CUSTOM fields; 0 = none */
	const char *def_s;     /* default of an owned string field; NULL = none */
	cfg_default_fn def_fn; /* default computed at load time */
	cfg_parse_fn parse;    /* CFG_CUSTOM */
	const char *expect;    /* CFG_CUSTOM: "string or false", used in messages */
	bool owned;            /* the field is a char * that cfg_free() frees */
};

static int parse_listen(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_aliases(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_script(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_log_level(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_log_target(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_server_header(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_socket_path(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_rpc_http(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_auth_algorithm(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_auth_qop(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_sql_ident(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int parse_load_credentials(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field);
static int default_listen(cfg_ctx_t *c, void *field);
static int default_workers(cfg_ctx_t *c, void *field);

#define FIELD(f) .off = offsetof(ksr_cfg_t, f), .size = sizeof(((ksr_cfg_t *)0)->f)
#define SECTION(p) {.path = (p), .type = CFG_SECTION}
#define INT(p, f, lo, hi, d) {.path = (p), .type = CFG_INT, FIELD(f), .min = (lo), .max = (hi), .def = (d)}
#define BOOL(p, f, d) {.path = (p), .type = CFG_BOOL, FIELD(f), .def = (d)}
#define STRING(p, f, d) {.path = (p), .type = CFG_STRING, FIELD(f), .def_s = (d), .owned = true}
#define PATH(p, f, d) {.path = (p), .type = CFG_PATH, FIELD(f), .def_s = (d), .owned = true}
#define CUSTOM(p, f, fn, exp, ...) \
	{.path = (p), .type = CFG_CUSTOM, FIELD(f), .parse = (fn), .expect = (exp), __VA_ARGS__}
#define NOMAX UINT_MAX /* shown as "integer >= min" */

/*
 * The schema: every key a configuration may set, its type, bounds and default.
 * Checks, defaults, "unknown key" and "did you mean" all come from this table,
 * and cfg_free() frees the fields marked owned.
 *
 * To add a subsystem's settings (say tm):
 *   1. add the fields to ksr_cfg_t in cfg.h, with their defaults in comments;
 *   2. add one SECTION("tm") line, then one line per key, e.g.
 *        INT("tm.fr_timer", tm.fr_timer, 100, NOMAX, 30000),
 *        BOOL("tm.auto_inv_100", tm.auto_inv_100, 1),
 *        STRING("tm.name", tm.name, "default"),   (char *, freed by cfg_free)
 *      a value that needs its own check gets CUSTOM(path, field, parse_fn,
 *      "what the message says was expected", .def = ... / .def_s = ... / .owned = true);
 *   3. show it, commented, in conf/ksrd.lua.
 * Keys of a section must come after its SECTION line. Integer fields may be
 * bool, uint16_t, int or unsigned. Names follow Kamailio's modparams where one exists.
 */
static const cfg_key_t cfg_schema[] = {
	CUSTOM("listen", listen, parse_listen,
	       "array of \"proto:address:port [advertise host:port]\" strings", .def_fn = default_listen),
	{.path = "workers", .type = CFG_INT, FIELD(workers), .min = 1, .max = 256, .def_fn = default_workers},
	CUSTOM("script", script, parse_script, "string (path of the route script)",
	       .def_s = DEFAULT_SCRIPT, .owned = true),
	CUSTOM("aliases", aliases, parse_aliases, "array of host name strings"),

	SECTION("log"),
	CUSTOM("log.level", log.level, parse_log_level,
	       "log level (crit, err, warn, notice, info, dbg) or integer 0..5", .def = L_INFO),
	STRING("log.prefix", log.prefix, "ksrd"),
	CUSTOM("log.target", log.to_stderr, parse_log_target, "\"stderr\" or \"syslog\"", .def = 1),

	SECTION("sl"),
	CUSTOM("sl.server_header", sl.server_header, parse_server_header,
	       "string without control characters, or false", .def_s = "ksrd " KSR_VERSION, .owned = true),

	SECTION("tcp"),
	INT("tcp.idle_timeout", tcp.idle_timeout, 1, NOMAX, 600),
	INT("tcp.max_connections", tcp.max_connections, 1, NOMAX, 4096),
	INT("tcp.max_message_size", tcp.max_message_size, 1024, 16 << 20, 65536),
	INT("tcp.connect_timeout", tcp.connect_timeout, 1, NOMAX, 5000),
	BOOL("tcp.keepalive_pong", tcp.keepalive_pong, 1),
	/* a peer that starts a message and stalls holds a buffer: give up after this */
	INT("tcp.read_timeout", tcp.read_timeout, 1, NOMAX, 20),

	SECTION("udp"),
	/* 65535 is what a UDP length field can say. */
	INT("udp.max_message_size", udp.max_message_size, 1024, 65535, 65535),
	/* per-worker receive buffers are preallocated for at most 64 datagrams */
	INT("udp.recv_batch", udp.recv_batch, 1, 64, 32),

	SECTION("lua"),
	INT("lua.time_budget_ms", lua.time_budget_ms, 1, NOMAX, 1000),
	/* LuaJIT without GC64 cannot address more than 2 GB per state. */
	INT("lua.mem_budget_mb", lua.mem_budget_mb, 1, 2048, 256),

	SECTION("rpc"),
	CUSTOM("rpc.socket", rpc.socket, parse_socket_path, "string (path of a unix socket)",
	       .def_s = "/tmp/ksrd.sock", .owned = true),
	CUSTOM("rpc.http", rpc.http, parse_rpc_http, "string \"ADDRESS:PORT\" with a numeric address",
	       .owned = true),

	SECTION("tm"),
	INT("tm.fr_timer", tm.fr_timer, 10, NOMAX, 30000),
	INT("tm.fr_inv_timer", tm.fr_inv_timer, 10, NOMAX, 120000),
	INT("tm.max_inv_lifetime", tm.max_inv_lifetime, 10, NOMAX, 180000),
	INT("tm.max_noninv_lifetime", tm.max_noninv_lifetime, 10, NOMAX, 32000),
	INT("tm.wt_timer", tm.wt_timer, 10, NOMAX, 5000),
	INT("tm.retr_timer1", tm.retr_timer1, 10, NOMAX, 500),
	INT("tm.retr_timer2", tm.retr_timer2, 10, NOMAX, 4000),
	BOOL("tm.restart_fr_on_each_reply", tm.restart_fr_on_each_reply, 1),
	BOOL("tm.auto_inv_100", tm.auto_inv_100, 1),
	STRING("tm.auto_inv_100_reason", tm.auto_inv_100_reason, "Trying"),
	BOOL("tm.noisy_ctimer", tm.noisy_ctimer, 1),
	/* RFC 3261 §9.2 (481) by default, unlike Kamailio's stateful forward */
	INT("tm.unmatched_cancel", tm.unmatched_cancel, 0, 2, 0),
	STRING("tm.event_callback", tm.event_callback, NULL),

	SECTION("rr"),
	BOOL("rr.append_fromtag", rr.append_fromtag, 1),
	BOOL("rr.enable_double_rr", rr.enable_double_rr, 1),

	SECTION("fwd"),
	BOOL("fwd.reply_unmatched", fwd.reply_unmatched, 1),

	SECTION("usrloc"),
	STRING("usrloc.db_url", usrloc.db_url, NULL),
	INT("usrloc.db_mode", usrloc.db_mode, 0, 3, 0),
	INT("usrloc.db_timeout", usrloc.db_timeout, 100, 60000, 2000),
	BOOL("usrloc.use_domain", usrloc.use_domain, 0),
	/* 2^20 buckets is already far more than a node's users */
	INT("usrloc.hash_size", usrloc.hash_size, 1, 20, 10),
	INT("usrloc.timer_interval", usrloc.timer_interval, 1, 86400, 60),
	INT("usrloc.nat_bflag", usrloc.nat_bflag, -1, 31, -1),
	INT("usrloc.server_id", usrloc.server_id, 0, 2147483647, 0),

	SECTION("registrar"),
	INT("registrar.default_expires", registrar.default_expires, 1, 2147483647, 3600),
	INT("registrar.min_expires", registrar.min_expires, 0, 2147483647, 60),
	INT("registrar.max_expires", registrar.max_expires, 0, 2147483647, 0),
	INT("registrar.expires_range", registrar.expires_range, 0, 100, 0),
	INT("registrar.default_expires_range", registrar.default_expires_range, 0, 100, 0),
	INT("registrar.max_contacts", registrar.max_contacts, 0, NOMAX, 0),
	BOOL("registrar.use_path", registrar.use_path, 0),
	INT("registrar.path_mode", registrar.path_mode, 0, 2, 2),
	BOOL("registrar.path_use_received", registrar.path_use_received, 0),
	BOOL("registrar.method_filtering", registrar.method_filtering, 0),
	BOOL("registrar.append_branches", registrar.append_branches, 1),
	INT("registrar.retry_after", registrar.retry_after, 0, 86400, 30),
	INT("registrar.cseq_delay", registrar.cseq_delay, 0, 3600, 20),
	STRING("registrar.received_avp", registrar.received_avp, NULL),
	STRING("registrar.received_param", registrar.received_param, "received"),

	STRING("registrar.event_callback", registrar.event_callback, NULL),

	SECTION("auth"),
	STRING("auth.secret", auth.secret, NULL),
	INT("auth.nonce_expire", auth.nonce_expire, 1, NOMAX, 300),
	CUSTOM("auth.algorithm", auth.algorithm, parse_auth_algorithm,
	       "\"MD5\", \"MD5-sess\", \"SHA-256\", \"SHA-256-sess\" or a comma list of them",
	       .def_s = "MD5", .owned = true),
	CUSTOM("auth.qop", auth.qop, parse_auth_qop, "\"\", \"auth\" or \"auth-int\"", .def_s = "",
	       .owned = true),
	BOOL("auth.nonce_count", auth.nonce_count, 1),
	/* 16 octets each; a nonce pushed out early is answered with stale=true */
	INT("auth.nc_array_size", auth.nc_array_size, 64, 1 << 26, 131072),
	BOOL("auth.use_domain", auth.use_domain, 0),
	BOOL("auth.calculate_ha1", auth.calculate_ha1, 0),
	/* column names go into SQL text (identifiers cannot be parameters): checked here */
	CUSTOM("auth.user_column", auth.user_column, parse_sql_ident, "SQL identifier ([A-Za-z_][A-Za-z0-9_]*)",
	       .def_s = "username", .owned = true),
	CUSTOM("auth.domain_column", auth.domain_column, parse_sql_ident,
	       "SQL identifier ([A-Za-z_][A-Za-z0-9_]*)", .def_s = "domain", .owned = true),
	CUSTOM("auth.password_column", auth.password_column, parse_sql_ident,
	       "SQL identifier ([A-Za-z_][A-Za-z0-9_]*)", .def_s = "ha1", .owned = true),
	CUSTOM("auth.password_column_2", auth.password_column_2, parse_sql_ident,
	       "SQL identifier ([A-Za-z_][A-Za-z0-9_]*)", .def_s = "ha1b", .owned = true),
	CUSTOM("auth.load_credentials", auth.load_credentials, parse_load_credentials,
	       "string \"[$pv=]column;...\" with SQL identifiers as columns", .owned = true),
	STRING("auth.db_url", auth.db_url, NULL),
	INT("auth.db_timeout", auth.db_timeout, 100, 60000, 2000),
};

#define NKEYS (sizeof cfg_schema / sizeof cfg_schema[0])

/* ---------------------------------------------------------------- messages */

/* Writes "FILE: PATH: message" and returns -EINVAL; path may be NULL. */
__attribute__((format(printf, 3, 4))) static int cfg_err(cfg_ctx_t *c, const char *path,
							   const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!c->errlen)
		return -EINVAL;
	n = path ? snprintf(c->err, c->errlen, "%s: %s: ", c->file, path)
		 : snprintf(c->err, c->errlen, "%s: ", c->file);
	if (n < 0 || (size_t)n >= c->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int cfg_oom(cfg_ctx_t *c, const char *path)
{
	cfg_err(c, path, "out of memory");
	return -ENOMEM;
}

/* What a value is, for "got ...": `string "ten"`, `number 1.5`, `table`. */
static void describe(lua_State *L, int idx, char *buf, size_t len)
{
	size_t n;
	const char *s;

	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		snprintf(buf, len, "boolean %s", lua_toboolean(L, idx) ? "true" : "false");
		return;
	case LUA_TNUMBER:
		snprintf(buf, len, "number %.14g", (double)lua_tonumber(L, idx));
		return;
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &n);
		snprintf(buf, len, "string ");
		cfg_quote(buf + 7, len - 7, s, n);
		return;
	default:
		snprintf(buf, len, "%s", lua_typename(L, lua_type(L, idx)));
	}
}

static int type_err(cfg_ctx_t *c, const char *path, const char *expect, int idx)
{
	char got[96];

	describe(c->L, idx, got, sizeof got);
	return cfg_err(c, path, "expected %s, got %s", expect, got);
}

static void int_expect(const cfg_key_t *k, double got, char *buf, size_t len)
{
	if (k->max == NOMAX && !(got > (double)NOMAX))
		snprintf(buf, len, "integer >= %lld", k->min);
	else
		snprintf(buf, len, "integer %lld..%lld", k->min, k->max);
}

/* ---------------------------------------------------------------- fields */

static void *field_of(ksr_cfg_t *cfg, const cfg_key_t *k)
{
	return (char *)cfg + k->off;
}

static void store_int(void *field, size_t size, long long v)
{
	switch (size) {
	case sizeof(bool):
		*(bool *)field = v != 0;
		break;
	case sizeof(uint16_t):
		*(uint16_t *)field = (uint16_t)v;
		break;
	default:
		/* int and unsigned share a representation for the values we allow. */
		ksr_require(size == sizeof(unsigned));
		*(unsigned *)field = (unsigned)v;
	}
}

/* Replaces the owned string in field by a copy of s[0..n). */
static int set_str(cfg_ctx_t *c, const char *path, void *field, const char *s, size_t n)
{
	char **dst = field;
	char *copy = strndup(s, n);

	if (!copy)
		return cfg_oom(c, path);
	free(*dst);
	*dst = copy;
	return 0;
}

/* Takes ownership of s (which may be NULL after a failed allocation). */
static int take_str(cfg_ctx_t *c, const char *path, void *field, char *s)
{
	char **dst = field;

	if (!s)
		return cfg_oom(c, path);
	free(*dst);
	*dst = s;
	return 0;
}

/* ---------------------------------------------------------------- generic types */

/* A string without NUL bytes, or an error naming what was expected. */
static const char *get_string(cfg_ctx_t *c, const char *path, const char *expect, int idx,
			      size_t *len)
{
	const char *s;

	if (lua_type(c->L, idx) != LUA_TSTRING) {
		type_err(c, path, expect, idx);
		return NULL;
	}
	s = lua_tolstring(c->L, idx, len);
	if (strlen(s) != *len) {
		type_err(c, path, "string without NUL bytes", idx);
		return NULL;
	}
	return s;
}

static int parse_int(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	char expect[64];
	double d;

	if (lua_type(c->L, idx) != LUA_TNUMBER) {
		int_expect(k, 0, expect, sizeof expect);
		return type_err(c, k->path, expect, idx);
	}
	d = lua_tonumber(c->L, idx);
	/* Written so that NaN fails too. */
	if (!(d >= (double)k->min && d <= (double)k->max) || d != (double)(long long)d) {
		int_expect(k, d, expect, sizeof expect);
		return type_err(c, k->path, expect, idx);
	}
	store_int(field, k->size, (long long)d);
	return 0;
}

static int parse_bool(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	if (lua_type(c->L, idx) != LUA_TBOOLEAN)
		return type_err(c, k->path, "boolean", idx);
	store_int(field, k->size, lua_toboolean(c->L, idx));
	return 0;
}

static int parse_string(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	size_t n;
	const char *s = get_string(c, k->path, "string", idx, &n);

	return s ? set_str(c, k->path, field, s, n) : -EINVAL;
}

/* Absolute paths stay; relative ones are joined to the config file's directory. */
static char *resolve_path(cfg_ctx_t *c, const char *s)
{
	char *out;

	if (s[0] == '/')
		return strdup(s);
	if (asprintf(&out, "%s/%s", c->dir, s) < 0)
		return NULL;
	return out;
}

static int parse_path(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	size_t n;
	const char *expect = k->expect ? k->expect : "string (a path)";
	const char *s = get_string(c, k->path, expect, idx, &n);

	if (!s)
		return -EINVAL;
	if (n == 0)
		return type_err(c, k->path, "non-empty string (a path)", idx);
	return take_str(c, k->path, field, resolve_path(c, s));
}

/* ---------------------------------------------------------------- custom types */

/* A table whose keys are exactly 1..n, n >= 1; *n gets its length. */
static int check_array(cfg_ctx_t *c, const cfg_key_t *k, int idx, unsigned *n)
{
	lua_State *L = c->L;
	size_t len, count = 0;

	if (!lua_istable(L, idx))
		return type_err(c, k->path, k->expect, idx);
	len = lua_objlen(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		double d = lua_type(L, -2) == LUA_TNUMBER ? lua_tonumber(L, -2) : 0;
		if (d < 1 || d > (double)len || d != (double)(size_t)d) {
			char key[96];
			describe(L, -2, key, sizeof key);
			lua_pop(L, 2);
			return cfg_err(c, k->path, "expected %s, got a table with key %s", k->expect, key);
		}
		count++;
		lua_pop(L, 1);
	}
	if (count == 0)
		return cfg_err(c, k->path, "expected %s, got an empty table", k->expect);
	if (count != len || len > 65536)
		return cfg_err(c, k->path, "expected %s, got a table with holes", k->expect);
	*n = (unsigned)len;
	return 0;
}

static bool same_listen(const cfg_listen_t *a, const cfg_listen_t *b)
{
	return a->proto == b->proto && a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static int parse_listen_entry(cfg_ctx_t *c, unsigned i)
{
	cfg_listen_t *l = &c->cfg->listen[i];
	char path[32], why[512];
	const char *s;
	size_t n;
	int rc = 0;

	snprintf(path, sizeof path, "listen[%u]", i + 1);
	s = get_string(c, path, "string \"proto:address:port [advertise host:port]\"", -1, &n);
	if (!s)
		return -EINVAL;
	if (cfg_parse_listen(s, l, why, sizeof why) < 0)
		return cfg_err(c, path, "%s", why);
	for (unsigned j = 0; j < i && !rc; j++)
		if (same_listen(&c->cfg->listen[j], l))
			rc = cfg_err(c, path, "\"%s\" binds the same socket as listen[%u]", l->spec, j + 1);
	return rc;
}

static int parse_listen(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	ksr_cfg_t *cfg = c->cfg;
	unsigned n;
	int rc = check_array(c, k, idx, &n);

	if (rc)
		return rc;
	free(cfg->listen);
	cfg->nlisten = 0;
	cfg->listen = calloc(n, sizeof *cfg->listen);
	if (!cfg->listen)
		return cfg_oom(c, k->path);
	cfg->nlisten = n;
	for (unsigned i = 0; i < n && !rc; i++) {
		lua_rawgeti(c->L, idx, (int)i + 1);
		rc = parse_listen_entry(c, i);
		lua_pop(c->L, 1);
	}
	return rc;
}

static int parse_alias(cfg_ctx_t *c, unsigned i)
{
	char path[32];
	const char *s, *why;
	cfg_hostport_t hp;
	size_t n;

	snprintf(path, sizeof path, "aliases[%u]", i + 1);
	s = get_string(c, path, "string (a host name)", -1, &n);
	if (!s)
		return -EINVAL;
	why = cfg_split_hostport(str_from(s, n), CFG_HP_NAME | CFG_HP_NOPORT, &hp);
	if (why) {
		char got[96];
		describe(c->L, -1, got, sizeof got);
		return cfg_err(c, path, "expected a host name, IPv4 or [IPv6] address (%s), got %s", why, got);
	}
	c->cfg->aliases[i] = strndup(s, n);
	return c->cfg->aliases[i] ? 0 : cfg_oom(c, path);
}

static int parse_aliases(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	ksr_cfg_t *cfg = c->cfg;
	unsigned n;
	int rc = check_array(c, k, idx, &n);

	if (rc)
		return rc;
	cfg->aliases = calloc(n, sizeof *cfg->aliases);
	if (!cfg->aliases)
		return cfg_oom(c, k->path);
	cfg->naliases = n;
	for (unsigned i = 0; i < n && !rc; i++) {
		lua_rawgeti(c->L, idx, (int)i + 1);
		rc = parse_alias(c, i);
		lua_pop(c->L, 1);
	}
	return rc;
}

/* Only resolved here: whether it is readable is checked once, default or not. */
static int parse_script(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	c->script_set = true;
	return parse_path(c, k, idx, field);
}

static int parse_log_level(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	int level = -1;

	if (lua_type(c->L, idx) == LUA_TSTRING) {
		size_t n;
		const char *s = lua_tolstring(c->L, idx, &n);
		level = log_level_from_name(str_from(s, n));
	} else if (lua_type(c->L, idx) == LUA_TNUMBER) {
		double d = lua_tonumber(c->L, idx);
		if (d >= L_CRIT && d <= L_DBG && d == (double)(int)d)
			level = (int)d;
	}
	if (level < 0)
		return type_err(c, k->path, k->expect, idx);
	*(int *)field = level;
	return 0;
}

static int parse_log_target(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	size_t n;
	const char *s = lua_type(c->L, idx) == LUA_TSTRING ? lua_tolstring(c->L, idx, &n) : NULL;

	if (s && str_eq(str_from(s, n), STR_LIT("stderr")))
		*(bool *)field = true;
	else if (s && str_eq(str_from(s, n), STR_LIT("syslog")))
		*(bool *)field = false;
	else
		return type_err(c, k->path, k->expect, idx);
	return 0;
}

static int parse_server_header(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	char **dst = field;
	const char *s;
	size_t n;

	if (lua_type(c->L, idx) == LUA_TBOOLEAN && !lua_toboolean(c->L, idx)) {
		free(*dst);
		*dst = NULL;
		return 0;
	}
	s = get_string(c, k->path, k->expect, idx, &n);
	if (!s)
		return -EINVAL;
	/* It goes into a header line as is: CR or LF would end the header. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return type_err(c, k->path, k->expect, idx);
	return set_str(c, k->path, field, s, n);
}

static int parse_socket_path(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	int rc = parse_path(c, k, idx, field);
	const char *path = *(char **)field;

	if (rc)
		return rc;
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return cfg_err(c, k->path, "%s is longer than a unix socket path may be (%zu bytes)", path,
			       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return 0;
}

static int parse_rpc_http(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	cfg_hostport_t hp;
	const char *s, *why;
	size_t n;

	s = get_string(c, k->path, k->expect, idx, &n);
	if (!s)
		return -EINVAL;
	why = cfg_split_hostport(str_from(s, n), CFG_HP_PORT, &hp);
	if (why) {
		char got[96];
		describe(c->L, idx, got, sizeof got);
		return cfg_err(c, k->path, "expected %s (%s), got %s", k->expect, why, got);
	}
	return set_str(c, k->path, field, s, n);
}

/* ---------------------------------------------------------------- auth */

static bool auth_alg_known(str_t a)
{
	static const char *const names[] = {"MD5", "MD5-sess", "SHA-256", "SHA-256-sess"};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (str_caseeq_lit(a, names[i]))
			return true;
	return false;
}

/* A comma list of digest algorithms, each named once: the challenge offers them in order. */
static int parse_auth_algorithm(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	size_t n;
	const char *s = get_string(c, k->path, k->expect, idx, &n);
	str_t rest;

	if (!s)
		return -EINVAL;
	rest = str_from(s, n);
	do {
		const char *comma = memchr(rest.s, ',', rest.len);
		str_t one = str_trim(str_from(rest.s, comma ? (size_t)(comma - rest.s) : rest.len));
		if (!auth_alg_known(one))
			return type_err(c, k->path, k->expect, idx);
		rest = comma ? str_from(comma + 1, rest.len - (size_t)(comma + 1 - rest.s)) : STR_NULL;
	} while (rest.s);
	return set_str(c, k->path, field, s, n);
}

static int parse_auth_qop(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	size_t n;
	const char *s = get_string(c, k->path, k->expect, idx, &n);

	if (!s)
		return -EINVAL;
	if (n && !str_eq(str_from(s, n), STR_LIT("auth")) && !str_eq(str_from(s, n), STR_LIT("auth-int")))
		return type_err(c, k->path, k->expect, idx);
	return set_str(c, k->path, field, s, n);
}

static bool sql_ident(str_t s)
{
	if (!s.len || s.len > 63 || (s.s[0] >= '0' && s.s[0] <= '9'))
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char ch = s.s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	return true;
}

static int parse_sql_ident(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	size_t n;
	const char *s = get_string(c, k->path, k->expect, idx, &n);

	if (!s)
		return -EINVAL;
	if (!sql_ident(str_from(s, n)))
		return type_err(c, k->path, k->expect, idx);
	return set_str(c, k->path, field, s, n);
}

/* "col;$avp(x)=col2": each item a column, optionally preceded by the PV it goes into. */
static int parse_load_credentials(cfg_ctx_t *c, const cfg_key_t *k, int idx, void *field)
{
	size_t n;
	const char *s = get_string(c, k->path, k->expect, idx, &n);
	str_t rest;

	if (!s)
		return -EINVAL;
	rest = str_from(s, n);
	while (rest.len) {
		const char *semi = memchr(rest.s, ';', rest.len);
		str_t item = str_trim(str_from(rest.s, semi ? (size_t)(semi - rest.s) : rest.len));
		const char *eq = item.len ? memchr(item.s, '=', item.len) : NULL;
		str_t col = eq ? str_trim(str_from(eq + 1, item.len - (size_t)(eq + 1 - item.s))) : item;
		if (eq && (item.s[0] != '$' || eq - item.s < 2))
			return type_err(c, k->path, k->expect, idx);
		if (!sql_ident(col))
			return type_err(c, k->path, k->expect, idx);
		rest = semi ? str_from(semi + 1, rest.len - (size_t)(semi + 1 - rest.s)) : STR_NULL;
	}
	return set_str(c, k->path, field, s, n);
}

/* ---------------------------------------------------------------- defaults */

static int default_listen(cfg_ctx_t *c, void *field)
{
	static const char *const specs[] = {"udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"};
	ksr_cfg_t *cfg = c->cfg;
	char why[256];

	cfg->listen = calloc(2, sizeof *cfg->listen);
	if (!cfg->listen)
		return cfg_oom(c, "listen");
	cfg->nlisten = 2;
	for (unsigned i = 0; i < 2; i++)
		ksr_require(cfg_parse_listen(specs[i], &cfg->listen[i], why, sizeof why) == 0);
	return 0;
}

static int default_workers(cfg_ctx_t *c, void *field)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	*(unsigned *)field = n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
	return 0;
}

static int apply_defaults(cfg_ctx_t *c)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const cfg_key_t *k = &cfg_schema[i];
		void *field = field_of(c->cfg, k);
		int rc = 0;

		if (k->def_fn)
			rc = k->def_fn(c, field);
		else if (k->owned && k->def_s)
			rc = set_str(c, k->path, field, k->def_s, strlen(k->def_s));
		else if (!k->owned && k->def)
			store_int(field, k->size, k->def);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- schema walk */

static const cfg_key_t *find_key(const char *path)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(cfg_schema[i].path, path) == 0)
			return &cfg_schema[i];
	return NULL;
}

static const char *last_part(const char *path)
{
	const char *dot = strrchr(path, '.');
	return dot ? dot + 1 : path;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64];

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The known key closest to `path` by its last part, preferring its own section. */
static const char *suggest(const char *path)
{
	const char *leaf = last_part(path), *best = NULL;
	size_t best_d = SIZE_MAX, plen = (size_t)(leaf - path);
	bool best_local = false;

	for (size_t i = 0; i < NKEYS; i++) {
		const char *p = cfg_schema[i].path;
		size_t d = edit_distance(leaf, last_part(p));
		bool local = (size_t)(last_part(p) - p) == plen && strncmp(p, path, plen) == 0;
		if (d < best_d || (d == best_d && local && !best_local)) {
			best = p;
			best_d = d;
			best_local = local;
		}
	}
	/* Beyond a third of the letters it is a different word, and a guess
	 * would mislead; the same word in another section is always a good guess. */
	if (!best || (best_d > 1 && best_d > strlen(leaf) / 3))
		return NULL;
	return best;
}

/* Appends the key at stack index -2 to path: ".name" or "[n]". Control
 * characters and NUL become '?', so that the message stays one printable line. */
static void append_key(lua_State *L, char *path, size_t plen)
{
	size_t room = MAX_PATH_NAME - plen, n, o = 0;
	const char *s;

	if (lua_type(L, -2) == LUA_TNUMBER) {
		snprintf(path + plen, room, "[%.14g]", (double)lua_tonumber(L, -2));
		return;
	}
	if (lua_type(L, -2) != LUA_TSTRING) {
		snprintf(path + plen, room, "[%s]", lua_typename(L, lua_type(L, -2)));
		return;
	}
	s = lua_tolstring(L, -2, &n);
	if (plen)
		path[plen + o++] = '.';
	for (size_t i = 0; i < n && o + 1 < room; i++)
		path[plen + o++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	path[plen + o] = '\0';
}

/* Whether the key at -2, appended whole to path, names a schema entry. */
static bool is_known(lua_State *L, const char *path, size_t plen)
{
	size_t sep = plen ? 1 : 0;

	if (lua_type(L, -2) != LUA_TSTRING)
		return false;
	return strlen(path) == plen + sep + lua_objlen(L, -2) && find_key(path);
}

/* Every key of table t must be in the schema under prefix; the first one in
 * alphabetical order is reported, so the message does not depend on hashing. */
static int check_unknown(cfg_ctx_t *c, int t, char *path, size_t plen)
{
	lua_State *L = c->L;
	char bad[MAX_PATH_NAME] = "";
	const char *hint;

	lua_pushnil(L);
	while (lua_next(L, t)) {
		append_key(L, path, plen);
		if (!is_known(L, path, plen) && (!bad[0] || strcmp(path, bad) < 0))
			strcpy(bad, path);
		path[plen] = '\0';
		lua_pop(L, 1);
	}
	if (!bad[0])
		return 0;
	hint = suggest(bad);
	if (hint)
		return cfg_err(c, bad, "unknown key (did you mean %s?)", hint);
	return cfg_err(c, bad, "unknown key");
}

/* Checks table t (whose path is prefix) for unknown keys, then its sections. */
static int check_level(cfg_ctx_t *c, int t, char *path, size_t plen)
{
	lua_State *L = c->L;
	int rc = check_unknown(c, t, path, plen);

	for (size_t i = 0; i < NKEYS && !rc; i++) {
		const cfg_key_t *k = &cfg_schema[i];
		const char *leaf = last_part(k->path);
		if (k->type != CFG_SECTION || (size_t)(leaf - k->path) != (plen ? plen + 1 : 0) ||
		    strncmp(k->path, path, plen) != 0)
			continue;
		lua_getfield(L, t, leaf); /* t has no metatable below the top level */
		if (lua_istable(L, -1)) {
			strcpy(path, k->path);
			rc = check_level(c, lua_gettop(L), path, strlen(path));
			path[plen] = '\0';
		} else if (!lua_isnil(L, -1)) {
			rc = type_err(c, k->path, "table", -1);
		}
		lua_pop(L, 1);
	}
	return rc;
}

/* Pushes the value at path ("tcp.idle_timeout") in env, or nil. */
static void push_value(lua_State *L, int env, const char *path)
{
	const char *dot;

	lua_pushvalue(L, env);
	while (!lua_isnil(L, -1)) {
		dot = strchr(path, '.');
		lua_pushlstring(L, path, dot ? (size_t)(dot - path) : strlen(path));
		lua_rawget(L, -2);
		lua_remove(L, -2);
		if (!dot)
			return;
		path = dot + 1;
	}
}

static int parse_value(cfg_ctx_t *c, const cfg_key_t *k, int idx)
{
	void *field = field_of(c->cfg, k);

	switch (k->type) {
	case CFG_INT:
		return parse_int(c, k, idx, field);
	case CFG_BOOL:
		return parse_bool(c, k, idx, field);
	case CFG_STRING:
		return parse_string(c, k, idx, field);
	case CFG_PATH:
		return parse_path(c, k, idx, field);
	case CFG_CUSTOM:
		return k->parse(c, k, idx, field);
	case CFG_SECTION:
		break;
	}
	return 0;
}

/* Schema order, so that the first mistake reported is always the same one. */
static int read_values(cfg_ctx_t *c, int env)
{
	lua_State *L = c->L;
	int rc = 0;

	for (size_t i = 0; i < NKEYS && !rc; i++) {
		const cfg_key_t *k = &cfg_schema[i];
		if (k->type == CFG_SECTION)
			continue;
		push_value(L, env, k->path);
		if (!lua_isnil(L, -1))
			rc = parse_value(c, k, lua_gettop(L));
		lua_pop(L, 1);
	}
	return rc;
}

/* ---------------------------------------------------------------- sandbox */

/* What a configuration may call. No io, os, require, load*, dofile, debug,
 * getfenv: the file describes values, it does not act. */
static const char *const sandbox_names[] = {
	"string", "table", "math", "pairs", "ipairs", "next", "type", "tostring",
	"tonumber", "select", "error", "assert", "unpack",
};

static void open_lib(lua_State *L, lua_CFunction open, const char *name)
{
	lua_pushcfunction(L, open);
	lua_pushstring(L, name);
	lua_call(L, 1, 0);
}

/* Pushes an empty table whose reads fall back to the allowed functions, so that
 * afterwards it holds exactly what the file assigned. */
static void push_sandbox(lua_State *L)
{
	open_lib(L, luaopen_base, "");
	open_lib(L, luaopen_string, LUA_STRLIBNAME);
	open_lib(L, luaopen_table, LUA_TABLIBNAME);
	open_lib(L, luaopen_math, LUA_MATHLIBNAME);

	lua_newtable(L); /* env */
	lua_newtable(L); /* its metatable */
	lua_newtable(L); /* the allowed names */
	for (size_t i = 0; i < sizeof sandbox_names / sizeof sandbox_names[0]; i++) {
		lua_getglobal(L, sandbox_names[i]);
		lua_setfield(L, -2, sandbox_names[i]);
	}
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
	cfg_ctx_t *c;

	lua_getfield(L, LUA_REGISTRYINDEX, "ksrd.cfg");
	c = lua_touserdata(L, -1);
	lua_pop(L, 1);
	if (++c->steps <= MAX_INSTRUCTIONS / HOOK_EVERY)
		return;
	/* Not luaL_error: inside a hook its "file:line:" prefix is unreliable. */
	lua_pushfstring(L, "still running after %d million instructions: endless loop?",
			MAX_INSTRUCTIONS / 1000000);
	lua_error(L);
}

/* Runs under lua_cpcall: Lua errors (the file's own, or memory) unwind to it. */
static int run_protected(lua_State *L)
{
	cfg_ctx_t *c = lua_touserdata(L, 1);
	char path[MAX_PATH_NAME] = "";
	int env;

	lua_settop(L, 0);
	lua_pushlightuserdata(L, c);
	lua_setfield(L, LUA_REGISTRYINDEX, "ksrd.cfg");
	push_sandbox(L);
	env = lua_gettop(L);

	/* "t": text only, precompiled bytecode can break out of any sandbox. */
	if (luaL_loadfilex(L, c->file, "t") != 0)
		return lua_error(L);
	lua_pushvalue(L, env);
	lua_setfenv(L, -2);
	lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
	lua_call(L, 0, 0);
	lua_sethook(L, NULL, 0, 0);

	/* The sandbox's fallback must not answer for keys the file did not set. */
	lua_pushnil(L);
	lua_setmetatable(L, env);
	c->rc = check_level(c, env, path, 0);
	if (!c->rc)
		c->rc = read_values(c, env);
	return 0;
}

static int run_file(cfg_ctx_t *c)
{
	lua_State *L = luaL_newstate();
	int rc;

	if (!L)
		return cfg_oom(c, NULL);
	c->L = L;
	/* Interpreted only: the count hook does not fire inside JIT traces, and a
	 * config runs once. */
	luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
	rc = lua_cpcall(L, run_protected, c);
	if (rc != 0) {
		const char *msg = lua_tostring(L, -1);
		size_t flen = strlen(c->file);
		/* Most of Lua's messages start with "file:line:" already; some do not
		 * ("wrong mode"), and a long file name is shortened with "...". */
		if (!msg)
			cfg_err(c, NULL, "error object is a %s, not a string", luaL_typename(L, -1));
		else if (strncmp(msg, c->file, flen) == 0 && msg[flen] == ':')
			snprintf(c->err, c->errlen, "%s", msg);
		else
			cfg_err(c, NULL, "%s", msg);
		c->rc = rc == LUA_ERRMEM ? -ENOMEM : -EINVAL;
	}
	lua_close(L);
	c->L = NULL;
	return c->rc;
}

/* ---------------------------------------------------------------- load */

static int find_dir(cfg_ctx_t *c)
{
	char *copy = strdup(c->file), *slash;

	if (!copy)
		return cfg_oom(c, NULL);
	slash = strrchr(copy, '/');
	if (slash == copy)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	c->dir = realpath(slash ? copy : ".", NULL);
	free(copy);
	if (!c->dir)
		return cfg_err(c, NULL, "cannot open: %s", strerror(errno));
	return 0;
}

/* The script must be there now rather than fail in every worker later. */
static int check_script(cfg_ctx_t *c)
{
	ksr_cfg_t *cfg = c->cfg;
	struct stat st;
	char *real;

	if (stat(cfg->script, &st) != 0 || access(cfg->script, R_OK) != 0) {
		if (!c->script_set)
			return cfg_err(c, "script", "cannot read the default %s: %s; set script to the route script's path",
				       cfg->script, strerror(errno));
		return cfg_err(c, "script", "cannot read %s: %s (a relative path is relative to %s)",
			       cfg->script, strerror(errno), c->dir);
	}
	if (!S_ISREG(st.st_mode))
		return cfg_err(c, "script", "%s is not a regular file", cfg->script);
	real = realpath(cfg->script, NULL);
	if (!real)
		return cfg_err(c, "script", "cannot resolve %s: %s", cfg->script, strerror(errno));
	free(cfg->script);
	cfg->script = real;
	return 0;
}

int cfg_load(const char *path, ksr_cfg_t *out, char *errbuf, size_t errlen)
{
	ksr_cfg_t tmp = {0};
	cfg_ctx_t c = {.file = path ? path : "(null)", .cfg = &tmp, .err = errbuf, .errlen = errlen};
	int rc;

	if (errlen)
		errbuf[0] = '\0';
	if (!path || !path[0])
		return cfg_err(&c, NULL, "no configuration file given");
	if (access(path, R_OK) != 0)
		return cfg_err(&c, NULL, "cannot open: %s", strerror(errno));
	rc = find_dir(&c);
	if (!rc)
		rc = apply_defaults(&c);
	if (!rc)
		rc = take_str(&c, NULL, &tmp.file, strdup(path));
	if (!rc)
		rc = run_file(&c);
	if (!rc)
		rc = check_script(&c);
	free(c.dir);
	if (rc) {
		cfg_free(&tmp);
		return rc;
	}
	*out = tmp;
	return 0;
}

int cfg_defaults(ksr_cfg_t *out, char *errbuf, size_t errlen)
{
	ksr_cfg_t tmp = {0};
	cfg_ctx_t c = {.file = "(defaults)", .cfg = &tmp, .err = errbuf, .errlen = errlen};
	int rc;

	if (errlen)
		errbuf[0] = '\0';
	rc = apply_defaults(&c);
	if (rc) {
		cfg_free(&tmp);
		return rc;
	}
	*out = tmp;
	return 0;
}

void cfg_free(ksr_cfg_t *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		if (cfg_schema[i].owned)
			free(*(char **)field_of(cfg, &cfg_schema[i]));
	for (unsigned i = 0; i < cfg->naliases; i++)
		free(cfg->aliases[i]);
	free(cfg->aliases);
	free(cfg->listen);
	free(cfg->file);
	memset(cfg, 0, sizeof *cfg);
}
