// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * ksrd start-up: arguments, configuration, subsystems, workers, signals.
 * The one place where the core and the Lua engine (kemi/) meet: the core
 * library never includes kemi/, this file wires the engine's hooks into it.
 */
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../kemi/engine.h"
#include "../kemi/ksr.h"
#include "auth/auth.h"
#include "cfg/cfg.h"
#include "config.h"
#include "fwd/fwd.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "net/net.h"
#include "registrar/registrar.h"
#include "rpc/rpc.h"
#include "rr/rr.h"
#include "sl/sl.h"
#include "usrloc/usrloc.h"
#include "tm/tm.h"
#include "worker/worker.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: ksrd [-f FILE] [-c] [-E] [-d LEVEL] [-V] [--dump-api]\n"
		     "  -f FILE      configuration file (default: built-in defaults)\n"
		     "  -c           check the configuration and the route script, then exit\n"
		     "  -E           log to stderr (overrides log.target)\n"
		     "  -d LEVEL     log level: crit, err, warn, notice, info, dbg (overrides log.level)\n"
		     "  -V           print version and build flags\n"
		     "  --dump-api   print the KSR binding table as JSON\n");
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	LOG_NOTICE(CORE, "signal %d: stopping", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	char err[1024];
	(void)loop;
	(void)w;
	(void)revents;
	if (ksr_engine_reload(NULL, err, sizeof(err)) < 0)
		LOG_ERR(CORE, "SIGHUP reload refused: %s", err);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dump-api", no_argument, NULL, 'A'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = NULL, *level = NULL;
	bool check_only = false, force_stderr = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "f:cEd:Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': file = optarg; break;
		case 'c': check_only = true; break;
		case 'E': force_stderr = true; break;
		case 'd': level = optarg; break;
		case 'V':
			printf("ksrd %s\nbuild: %s\n", KSR_VERSION, KSR_BUILD_FLAGS);
			return 0;
		case 'A': ksr_dump_api(stdout); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}

	ksr_cfg_t cfg;
	char err[1024];
	int rc = file ? cfg_load(file, &cfg, err, sizeof(err)) : cfg_defaults(&cfg, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "ksrd: %s\n", err);
		return 1;
	}
	int lvl = cfg.log.level;
	if (level && (lvl = log_level_from_name(str_cstr(level))) < 0) {
		fprintf(stderr, "ksrd: -d %s: expected one of crit, err, warn, notice, info, dbg\n", level);
		cfg_free(&cfg);
		return 1;
	}
	atomic_store(&log_level, lvl);
	log_setup(cfg.log.prefix, force_stderr || cfg.log.to_stderr);
	hash_seed_init();

	rc = 1;
	struct ev_loop *loop = NULL;
	if (ksr_engine_init(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "ksrd: script %s: %s\n", cfg.script, err);
		goto out_engine;
	}
	if (check_only) {
		printf("ksrd: %s: configuration OK; script %s OK; %u listen address(es), %u worker(s)\n",
		       file ? file : "(defaults)", cfg.script, cfg.nlisten, cfg.workers);
		rc = 0;
		goto out_engine;
	}
	if (net_init(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "ksrd: %s\n", err);
		goto out_engine;
	}
	sl_init(cfg.sl.server_header);
	fwd_init();
	rr_init(&cfg);
	if (auth_init(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "ksrd: %s\n", err);
		goto out_net;
	}
	if (tm_init(&cfg) < 0) {
		fprintf(stderr, "ksrd: cannot start the transaction timer\n");
		goto out_auth;
	}
	/* usrloc loads its table from the database (db_mode 1, 2) before any worker runs */
	if (ul_init(&cfg, err, sizeof(err)) < 0 || reg_init(&cfg) < 0 || ul_start() < 0) {
		fprintf(stderr, "ksrd: %s\n", err);
		goto out_ul;
	}
	ul_rpc_init();
	reg_events_init(&cfg);
	tm_rpc_init();
	ksr_engine_rpc_init();

	loop = ev_default_loop(0);
	ev_signal sig_term, sig_int, sig_hup;
	ev_signal_init(&sig_term, on_stop, SIGTERM);
	ev_signal_init(&sig_int, on_stop, SIGINT);
	ev_signal_init(&sig_hup, on_hup, SIGHUP);
	ev_signal_start(loop, &sig_term);
	ev_signal_start(loop, &sig_int);
	ev_signal_start(loop, &sig_hup);
	signal(SIGPIPE, SIG_IGN);

	/* the control socket first: once SIP is answered, RPC answers too */
	if (rpc_start(loop, &cfg, err, sizeof(err)) < 0) {
		LOG_CRIT(CORE, "control socket: %s", err);
		goto out_ul;
	}
	if (workers_start(&cfg, ksr_engine_hooks()) < 0) {
		LOG_CRIT(CORE, "workers failed to start");
		goto out_rpc;
	}
	for (unsigned i = 0; i < net_listen_count(); i++)
		LOG_NOTICE(CORE, "listening on %s (advertised %s:%u)", net_listen_get(i)->sock_str,
			   net_listen_get(i)->host.s, net_listen_get(i)->port);
	LOG_NOTICE(CORE, "ksrd %s started: %u workers, script %s", KSR_VERSION, workers_count(), cfg.script);

	ev_run(loop, 0);
	rc = 0;
	workers_stop();
out_rpc:
	rpc_stop();
out_ul:
	ul_shutdown(); /* after the workers: flushes what they wrote last (db_mode 2) */
	tm_shutdown();
out_auth:
	auth_shutdown();
out_net:
	net_shutdown();
out_engine:
	ksr_engine_shutdown();
	if (loop)
		ev_loop_destroy(loop);
	cfg_free(&cfg);
	if (check_only || rc != 0)
		return rc;
	LOG_NOTICE(CORE, "stopped");
	return rc;
}
