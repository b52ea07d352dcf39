// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * sipload: a SIP load generator for benchmarking ksrd against other servers.
 *
 *   main.c   command line, the run and the --ramp search, the report
 *   uac.c    generator threads: scenarios, timers, retransmissions
 *   uas.c    the answering side: `uas` (INVITE 180+200, BYE/other 200) and
 *            `echo` (the request's headers back under a 200 status line)
 *   sip.c    header scanning, templates, digest
 *   hist.c   latency histogram; tbucket.c open-loop rate control
 *
 * The main thread never touches a generator thread's state while it runs: it
 * moves all of them through phases (run, drain, pause) by atomics, and reads
 * the statistics a thread publishes when it acknowledges the pause.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hist.h"

typedef enum { SC_OPTIONS, SC_REGISTER, SC_REGISTER_AUTH, SC_CALL, SC_MESSAGE, SC__N } scenario_t;

extern const char *const scenario_names[SC__N];

typedef struct {
	scenario_t scenario;
	bool tcp;
	struct sockaddr_in server, uas;
	char server_str[64], uas_str[64], local_ip[64], domain[128], password[64], realm_hint[64];
	int threads, sockets; /* sockets (UDP) or connections (TCP) per thread */
	double rate;          /* units started per second, all threads; 0: no limit */
	int concurrency;      /* units in flight, all threads; 0: no limit (open loop) */
	double duration;      /* seconds */
	uint64_t count;       /* stop starting after this many units (0: no limit) */
	uint64_t user_lo, user_hi;
	int expires;
	unsigned timeout_ms, t1_ms, t2_ms, hold_ms;
	unsigned max_inflight; /* per thread */
	double burst_ms;
	double drain_s;
	/* --ramp */
	bool ramp;
	double ramp_start, ramp_max, ramp_step_s, ramp_precision, ramp_p99_ms, ramp_settle_s, ramp_probe_s;
	double ramp_fail_ratio;
	int ramp_max_steps, ramp_probe_conc;
	bool json;
	double progress_s;
	uint32_t run_id;
} cfg_t;

typedef struct {
	uint64_t started, completed, failed;
	uint64_t timeouts, errors, overflow, send_errors;
	uint64_t retrans, sent, received, stray;
	hist_t hist; /* latency of completed units, µs */
} stats_t;

enum { PH_RUN = 1, PH_DRAIN, PH_PAUSE, PH_EXIT };

/* What main sets for the threads. */
typedef struct {
	/* epoch << 8 | PH_*: one word, so a thread never sees a new phase with an
	 * old epoch. The epoch is bumped for each measured step. */
	_Atomic unsigned phase;
	_Atomic double rate;         /* per thread */
	_Atomic int concurrency;     /* per thread, 0 = none */
	_Atomic uint64_t count;      /* per thread, 0 = none */
} ctl_t;

typedef struct uac_thread uac_thread_t;

typedef struct {
	int id;
	pthread_t tid;
	uac_thread_t *priv;
	/* published by the thread */
	_Atomic unsigned ack_phase; /* the ctl.phase value of the last pause done */
	_Atomic uint64_t live_started, live_completed, live_failed, live_inflight;
	stats_t snap; /* valid after ack_phase == PH_PAUSE for ack_epoch */
	char err[256];
	_Atomic int failed_init;
} worker_t;

extern cfg_t cfg;
extern ctl_t ctl;

void *uac_main(void *arg);
int uac_prepare(char *errbuf, size_t errlen); /* templates, once, before the threads */

/* uas.c: runs until SIGINT/SIGTERM; returns the exit code. */
int uas_run(int argc, char **argv, bool echo);

uint64_t now_ns(void);
