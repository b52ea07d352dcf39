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
	} tm;
		bool append_fromtag;        /* ;ftag= in our Record-Route (is_direction); default true */
		bool enable_double_rr;      /* two entries when leaving by another socket; default true */
	} rr;

	struct {
		bool reply_unmatched;      /* forward replies matching no transaction statelessly;
		                              default true */
	} fwd;
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
