// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Transports: listen sockets, UDP and TCP, the connection table, the send path.
 *
 * The listen table is built once at start-up from the configuration and is
 * read-only afterwards. Every worker opens its own UDP socket per UDP listen
 * address and its own TCP listening socket per TCP address (SO_REUSEPORT: the
 * kernel spreads datagrams and connections); a connection belongs to the worker
 * that accepted or opened it, which alone reads it and closes it.
 *
 * Any thread may send on any connection: net_send() writes directly under the
 * connection's write lock; what the kernel did not take is queued and the owner
 * is woken to flush it. UDP sends made while a worker handles a received batch
 * are queued and leave in one sendmmsg() when the batch is done.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../cfg/cfg.h"
#include "../lib/str.h"
#include "../parser/sip_parser.h"
#include "addr.h"

struct ev_loop;

typedef struct net_listen {
	unsigned idx;
	sip_proto_t proto;
	net_addr_t addr;      /* bound address; port is the real one */
	char ip[48];          /* numeric IP, IPv6 without brackets */
	str_t host;           /* host for SIP headers: advertised name or IP (IPv6 in brackets) */
	uint16_t port;        /* port for SIP headers: advertised or real */
	bool any;             /* bound to the wildcard address */
	char sock_str[96];    /* "udp:127.0.0.1:5060" */
	char host_buf[264];
} net_listen_t;

/* What is known of a received message's arrival. */
typedef struct {
	sip_proto_t proto;
	net_addr_t src;
	const net_listen_t *local;
	uint64_t conn_id;     /* 0 for UDP */
} net_rcv_t;

/* Where to send. */
typedef struct {
	sip_proto_t proto;
	net_addr_t addr;
	uint64_t conn_id;          /* stream: use this connection if still open */
	const net_listen_t *from;  /* NULL: pick one of the right proto and family */
	bool no_connect;           /* stream: only over an existing connection */
} net_dest_t;

/* Called by a worker for every complete message received; buf is valid only during the call. */
typedef void (*net_msg_fn)(const net_rcv_t *rcv, const char *buf, size_t len);

/* Builds the listen table, checks that every address can be bound. */
int net_init(const ksr_cfg_t *cfg, char *errbuf, size_t errlen);
void net_shutdown(void);
unsigned net_listen_count(void);
const net_listen_t *net_listen_get(unsigned idx);
/* A listen socket for sending with proto to family (AF_INET/AF_INET6); NULL if none. */
const net_listen_t *net_listen_pick(sip_proto_t proto, int family);
/* By "proto:ip:port" string. */
const net_listen_t *net_listen_by_str(str_t sock);

/*
 * True if host[:port] is one of ours: a listen IP (or any local IP when bound
 * to the wildcard), an advertised name, or a configured alias. port 0 = the
 * default port 5060/5061 is assumed as SIP says; proto NONE = any.
 */
bool net_is_myself(str_t host, uint16_t port, sip_proto_t proto);
bool net_is_myself_ip(const net_addr_t *a);

/* Per-worker transport state; started on the worker's own loop and thread. */
typedef struct net_worker net_worker_t;
net_worker_t *net_worker_start(unsigned id, struct ev_loop *loop, net_msg_fn on_msg);
void net_worker_stop(net_worker_t *w);
/* Sends UDP datagrams queued by this worker (end of a receive batch). */
void net_worker_flush(net_worker_t *w);

/*
 * Sends a whole SIP message. Returns 0 when sent or queued, negative errno
 * otherwise (-ECONNREFUSED, -ENOTCONN for no_connect, -EMSGSIZE ...).
 * buf is copied when it cannot be sent at once: the caller keeps ownership.
 */
int net_send(const net_dest_t *d, const char *buf, size_t len);

/*
 * Told when the transport learns that a destination cannot be reached: an ICMP
 * error for a UDP datagram we sent (IP_RECVERR), a TCP connect that failed.
 * Called on a worker thread. One handler (tm's), set before workers start.
 */
void net_set_unreachable_handler(void (*fn)(sip_proto_t proto, const net_addr_t *dst, int err));

/* Resolves host (numeric or name; IPv6 with brackets) to an address. 0 or -errno. */
int net_resolve(str_t host, uint16_t port, net_addr_t *out);

/* Connection info for RPC/tests. */
unsigned net_tcp_connections(void);
/* Closes a connection after what is queued has been written (set_reply_close). */
void net_conn_close_later(uint64_t conn_id);
