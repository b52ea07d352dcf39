// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * The server's configuration: a Lua file (conf/ksrd.lua) evaluated once at
 * start-up in a sandbox (no io/os/require/load; only the base functions a config
 * needs: string, table, math, tostring, tonumber, pairs, ipairs, next, type,
 * select, unpack, error, assert). The file
 * assigns globals (listen = {...}, workers = 2, tcp = {...}); each global and each
 * nested key is checked against a schema. An unknown key, a wrong type or a bad
 * value is an error naming the file, the key path and what was expected, e.g.
 *   conf/ksrd.lua: tcp.idle_timeout: expected integer >= 1, got string "ten"
 * Nothing partial is ever used: cfg_load() fills *out only on success.
 *
 * Relative paths (script, rpc.socket, ...) are resolved against the directory
 * of the configuration file, so `ksrd -f /etc/ksrd/ksrd.lua` works from any cwd.
 *
 * The loaded config is process lifetime, read-only once workers start.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../parser/sip_parser.h"

typedef struct {
	sip_proto_t proto;            /* UDP or TCP (later TLS, WS) */
	struct sockaddr_storage addr; /* where to bind */
	socklen_t addrlen;
	char host[64];                /* numeric address as written, IPv6 without brackets;
	                                 "*" is stored as "0.0.0.0" */
	uint16_t port;
	char adv_host[256];           /* "advertise HOST:PORT": empty when not set; a name or
	                                 a numeric address, IPv6 in brackets (header-ready) */
	uint16_t adv_port;            /* 0 when not set; the listen port when HOST has none */
	char spec[320];               /* the listen string as written, for logs and RPC */
} cfg_listen_t;

typedef struct {
	char *file;                   /* path of the config file as given; NULL from cfg_defaults */
	cfg_listen_t *listen;
	unsigned nlisten;
	unsigned workers;             /* default: number of online CPUs */
	char *script;                 /* resolved path of the route script */
	char **aliases;               /* extra host names that are "myself" */
	unsigned naliases;

	struct {
		int level;            /* L_* from core/lib/log.h; default L_INFO */
		char *prefix;         /* default "ksrd" */
		bool to_stderr;       /* target = "stderr" (default) | "syslog" */
	} log;

	struct {
		char *server_header;  /* Server: value for local replies; NULL = none.
		                         default "ksrd <version>"; false in the file turns it off */
	} sl;

	struct {
		unsigned idle_timeout;     /* seconds; default 600 */
		unsigned max_connections;  /* default 4096 */
		unsigned max_message_size; /* octets; default 65536 */
		unsigned connect_timeout;  /* ms; default 5000 */
		unsigned keepalive_pong;   /* answer CRLFCRLF pings with CRLF: default true(1) */
		unsigned read_timeout;     /* seconds a started message may take to arrive; default 20 */
	} tcp;

	struct {
		unsigned max_message_size; /* octets; default 65535 */
		unsigned recv_batch;       /* recvmmsg batch; default 32 */
	} udp;

	struct {
		unsigned time_budget_ms;   /* per callback; default 1000 */
		unsigned mem_budget_mb;    /* per worker state; default 256 */
	} lua;

	struct {
		char *socket;              /* unix socket path; default "/tmp/ksrd.sock" */
		char *http;                /* "127.0.0.1:PORT" or NULL */
	} rpc;

	/* Transactions; names and defaults follow Kamailio's tm module (times in ms). */
	struct {
		unsigned fr_timer;            /* final reply wait (Timer B/F); default 30000 */
		unsigned fr_inv_timer;        /* INVITE final reply after a provisional (Timer C); 120000 */
		unsigned max_inv_lifetime;    /* 180000 */
		unsigned max_noninv_lifetime; /* 32000 */
		unsigned wt_timer;            /* kept after completion to absorb retransmissions; 5000 */
		unsigned retr_timer1;         /* T1; 500 */
		unsigned retr_timer2;         /* T2; 4000 */
		bool restart_fr_on_each_reply; /* default true */
		bool auto_inv_100;            /* default true */
		char *auto_inv_100_reason;    /* default "Trying" */
		bool noisy_ctimer;            /* cancel and 408 after fr_inv_timer even if ringing; true */
		unsigned unmatched_cancel;    /* 0: reply 481 (default); 1: forward statelessly; 2: drop */
		char *event_callback;         /* Lua function told "tm:local-request"; NULL = none */
	} tm;

	struct {
		bool append_fromtag;        /* ;ftag= in our Record-Route (is_direction); default true */
		bool enable_double_rr;      /* two entries when leaving by another socket; default true */
	} rr;

	struct {
		bool reply_unmatched;      /* forward replies matching no transaction statelessly;
		                              default true */
	} fwd;

	struct {
		char *db_url;              /* postgres://user:pass@host:port/db; NULL = none */
		unsigned db_mode;          /* 0 memory (default), 1 write-through, 2 write-back,
		                              3 database only */
		unsigned db_timeout;       /* ms bound on connecting and on every statement; default 2000 */
		bool use_domain;           /* AOR is user@domain rather than user; default false */
		unsigned hash_size;        /* 2^hash_size buckets per table; default 10 */
		unsigned timer_interval;   /* seconds between expiry / write-back runs; default 60 */
		int nat_bflag;             /* branch flag marking a contact behind NAT; -1 = none */
		unsigned server_id;        /* stored with every contact; default 0 */
	} usrloc;

	struct {
		unsigned default_expires;  /* seconds when the REGISTER gives none; default 3600 */
		unsigned min_expires;      /* below it: 423 with Min-Expires; 0 = none; default 60 */
		unsigned max_expires;      /* above it: clamped; 0 = no limit (default) */
		unsigned expires_range;    /* percent of random spread on expires; default 0 */
		unsigned default_expires_range; /* the same when default_expires is used; default 0 */
		unsigned max_contacts;     /* per AOR, 0 = unlimited (default); more: 403 */
		bool use_path;             /* store Path (RFC 3327); default false */
		unsigned path_mode;        /* 0 off, 1 lazy, 2 strict (420 without Supported: path) */
		bool path_use_received;    /* $du from the received= param of the first Path URI */
		bool method_filtering;     /* lookup skips contacts whose Allow excludes the method */
		bool append_branches;      /* lookup adds the other contacts as branches; default true */
		unsigned retry_after;      /* Retry-After on 5xx replies of save(); 0 = none; default 30 */
		unsigned cseq_delay;       /* seconds an equal CSeq counts as a retransmission; default 20 */
		char *received_avp;        /* "$avp(name)" holding a NAT source URI to store as received */
		char *received_param;      /* Contact parameter showing received in replies; default "received" */
		char *event_callback;      /* Lua function told "usrloc:contact-expired"; NULL = none */
	} registrar;

	/* Digest authentication (auth) and its subscriber table (auth_db); names and
	 * defaults follow Kamailio's auth and auth_db modparams. */
	struct {
		char *secret;              /* nonce HMAC key; NULL (default) = random at start, so
		                              nonces neither survive a restart nor span nodes */
		unsigned nonce_expire;     /* seconds a nonce stays valid; default 300 */
		char *algorithm;           /* offered in challenges, in order: "MD5" (default),
		                              "SHA-256", "MD5-sess", "SHA-256-sess" or a comma list */
		char *qop;                 /* "" (default: the challenge flags decide), "auth" or
		                              "auth-int": always offered */
		bool nonce_count;          /* nc must rise per nonce (replay protection); default true */
		unsigned nc_array_size;    /* nonces tracked for nc; default 131072 */
		bool use_domain;           /* user-id checks compare domains; auth_db matches the
		                              domain column too; default false */
		bool calculate_ha1;        /* auth_db: password_column holds plain text; default false */
		char *user_column;         /* default "username" */
		char *domain_column;       /* default "domain" */
		char *password_column;     /* default "ha1" */
		char *password_column_2;   /* HA1 computed with "user@domain"; default "ha1b" */
		char *load_credentials;    /* "col;$avp(x)=col": columns copied into PVs; NULL = none */
		char *db_url;              /* auth_db: postgres://user:pass@host:port/db; NULL = no auth_db */
		unsigned db_timeout;       /* auth_db: ms bound on connecting and each query; default 2000 */
	} auth;
} ksr_cfg_t;

/*
 * Loads and checks `path`. On error returns a negative value and writes one
 * line (file: key: what was expected, got what) into errbuf.
 */
int cfg_load(const char *path, ksr_cfg_t *out, char *errbuf, size_t errlen);
/* The configuration used when no file is given: UDP+TCP on 0.0.0.0:5060, default script. */
int cfg_defaults(ksr_cfg_t *out, char *errbuf, size_t errlen);
void cfg_free(ksr_cfg_t *c);

/*
 * Parses a listen spec "proto:host:port [advertise host:port]"; host may be an
 * IPv4 address, an IPv6 address in brackets, or "*" (any IPv4 address, i.e.
 * 0.0.0.0; the IPv6 wildcard is "[::]"). proto is udp or tcp (case-insensitive).
 * Used by cfg_load and by RPC/tests. Returns 0 or -1 with errbuf saying what
 * was expected.
 */
int cfg_parse_listen(const char *spec, cfg_listen_t *out, char *errbuf, size_t errlen);
