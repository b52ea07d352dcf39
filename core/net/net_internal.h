// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/* Shared between the files of core/net only. */
#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>

#include "net.h"

#define NET_MAX_LISTEN 64
#define NET_UDP_BUF 65536
#define NET_MAX_BATCH 64

typedef struct conn conn_t;

typedef struct {
	char *buf;  /* copy of the datagram */
	size_t len;
	net_addr_t to;
	int fd;
} udp_out_t;

struct net_worker {
	unsigned id;
	struct ev_loop *loop;
	net_msg_fn on_msg;
	/* UDP: one socket per UDP listen entry (-1 for other protos) */
	int udp_fd[NET_MAX_LISTEN];
	ev_io udp_io[NET_MAX_LISTEN];
	char *rx_bufs;             /* batch * NET_UDP_BUF */
	unsigned batch;
	bool in_batch;             /* queue UDP sends until net_worker_flush */
	udp_out_t out[NET_MAX_BATCH];
	unsigned nout;
	/* TCP */
	int tcp_fd[NET_MAX_LISTEN];
	ev_io tcp_io[NET_MAX_LISTEN];
	ev_async wake;             /* another thread queued output on one of our conns */
	pthread_mutex_t pending_lock;
	conn_t *pending;           /* conns with queued output to flush (owner side) */
	ev_timer sweep;            /* idle connection sweep */
	conn_t *conns;             /* connections owned by this worker (doubly linked) */
};

extern const ksr_cfg_t *net_cfg;
extern net_listen_t net_listens[NET_MAX_LISTEN];
extern unsigned net_nlistens;
extern _Thread_local net_worker_t *net_cur_worker;
extern net_worker_t *net_workers[256];

int net_udp_worker_start(net_worker_t *w);
void net_udp_worker_stop(net_worker_t *w);
int net_udp_send(net_worker_t *w, const net_dest_t *d, const char *buf, size_t len);

int net_tcp_worker_start(net_worker_t *w);
void net_tcp_worker_stop(net_worker_t *w);
int net_tcp_send(const net_dest_t *d, const char *buf, size_t len);
void net_tcp_init(void);
void net_tcp_shutdown(void);

int net_socket_for(const net_listen_t *l, int type, bool reuseport);
extern void (*net_unreachable)(sip_proto_t proto, const net_addr_t *dst, int err);
