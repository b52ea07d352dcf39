// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * sipload: command line, runs and the --ramp search, reports.
 *
 * A run is one or more steps. A step sets the offered load, lets the threads
 * start units for its duration, stops starting, waits (--drain) for the units
 * in flight to finish, then pauses the threads, which count whatever is
 * still in flight as failed (timed out) and publish their statistics. So
 * every unit started in a step is accounted to that step, completed or failed.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sip.h"
#include "sipload.h"

const char *const scenario_names[SC__N] = {"options", "register", "register-auth", "call", "message"};

cfg_t cfg;
ctl_t ctl;
static worker_t *workers;
static unsigned epoch;
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sipload SCENARIO [options]     SCENARIO: options register register-auth call message\n"
		"       sipload uas --port N [--ring MS] [--threads N] [--transport udp|tcp|both]\n"
		"       sipload echo --port N [--threads N]\n"
		"\n"
		"  -s, --server HOST:PORT   the server under test (127.0.0.1:5060)\n"
		"      --transport udp|tcp  (udp)\n"
		"      --uas HOST:PORT      call, message: where the proxy relays to (127.0.0.1:5070)\n"
		"      --local-ip IP        address to send from (127.0.0.1)\n"
		"      --domain D           domain of the users (the server's address)\n"
		"  -t, --threads N          generator threads (2)\n"
		"      --sockets N          UDP sockets / TCP connections per thread (16 / 2)\n"
		"  -r, --rate R             units started per second, open loop (0: unlimited)\n"
		"  -c, --concurrency N      units in flight at most: closed loop without --rate\n"
		"  -d, --duration S         seconds (10)\n"
		"  -n, --count N            stop after starting N units\n"
		"      --users A-B          user numbers, taken in turn (1000000-1999999)\n"
		"      --password P         register-auth password (bench)\n"
		"      --expires S          REGISTER expires (3600)\n"
		"      --timeout MS         transaction timeout, timers B/F (32000)\n"
		"      --t1 MS / --t2 MS    RFC 3261 T1 (500) and T2 (4000)\n"
		"      --hold MS            call: time between ACK and BYE (0)\n"
		"      --max-inflight N     units in flight per thread (65536); more count as failed\n"
		"      --burst-ms MS        open loop: most a late thread catches up at once (100)\n"
		"      --drain S            wait at the end for units in flight (5)\n"
		"      --ramp               find the highest rate sustained with few failures:\n"
		"      --ramp-start R       first rate (0: estimate with a closed-loop probe)\n"
		"      --ramp-step S        seconds per step (10)\n"
		"      --ramp-fail F        largest failed fraction that passes (0.001)\n"
		"      --ramp-p99 MS        largest p99 latency that passes (250; 0: none)\n"
		"      --ramp-precision F   stop when the bracket is this narrow (0.05)\n"
		"      --ramp-max R         never offer more (2000000)\n"
		"      --ramp-max-steps N   (10)\n"
		"      --ramp-settle S      pause between steps (1)\n"
		"      --ramp-probe S       length of the probe (3)\n"
		"      --json               one JSON object on stdout\n"
		"      --progress S         a progress line on stderr every S seconds\n");
}

static int parse_hostport(const char *s, struct sockaddr_in *sa, char *out, size_t outlen, int defport)
{
	char host[64];
	int port = defport;
	const char *colon = strrchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : strlen(s);
	if (hl >= sizeof host)
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	if (colon)
		port = atoi(colon + 1);
	*sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -1;
	/* host is shorter than 64 and out is 64: the port may not fit in theory */
	if ((size_t)snprintf(out, outlen, "%.40s:%d", host, port) >= outlen)
		return -1;
	return 0;
}

static void sleep_s(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
	nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- steps */

typedef struct {
	double target; /* offered rate (0: closed loop) */
	double secs;   /* how long units were started */
	stats_t st;
	bool pass;
} step_t;

static void set_phase(int phase)
{
	atomic_store(&ctl.phase, epoch << 8 | (unsigned)phase);
}


static void run_step(double rate, int conc, uint64_t count, double secs, step_t *out)
{
	int n = cfg.threads;
	epoch++;
	atomic_store(&ctl.rate, rate / n);
	atomic_store(&ctl.concurrency, conc > 0 ? (conc + n - 1) / n : 0);
	atomic_store(&ctl.count, count ? (count + (uint64_t)n - 1) / (uint64_t)n : 0);
	set_phase(PH_RUN);
	uint64_t t0 = now_ns(), last_prog = t0;
	uint64_t prev_done = 0;
	for (;;) {
		sleep_s(0.01);
		uint64_t now = now_ns();
		double el = (double)(now - t0) / 1e9;
		uint64_t started = 0, done = 0, failed = 0, infl = 0;
		for (int i = 0; i < n; i++) {
			started += atomic_load_explicit(&workers[i].live_started, memory_order_relaxed);
			done += atomic_load_explicit(&workers[i].live_completed, memory_order_relaxed);
			failed += atomic_load_explicit(&workers[i].live_failed, memory_order_relaxed);
			infl += atomic_load_explicit(&workers[i].live_inflight, memory_order_relaxed);
		}
		if (cfg.progress_s > 0 && (double)(now - last_prog) / 1e9 >= cfg.progress_s) {
			double dt = (double)(now - last_prog) / 1e9;
			fprintf(stderr, "progress t=%.1f started=%llu completed=%llu failed=%llu inflight=%llu rate=%.0f\n", el,
				(unsigned long long)started, (unsigned long long)done, (unsigned long long)failed,
				(unsigned long long)infl, (double)(done - prev_done) / dt);
			prev_done = done;
			last_prog = now;
		}
		bool all_started = count && started >= (uint64_t)n * ((count + (uint64_t)n - 1) / (uint64_t)n);
		if (el >= secs || all_started || interrupted) {
			out->secs = el;
			break;
		}
	}
	set_phase(PH_DRAIN);
	uint64_t d0 = now_ns();
	while ((double)(now_ns() - d0) / 1e9 < cfg.drain_s) {
		uint64_t infl = 0;
		for (int i = 0; i < n; i++)
			infl += atomic_load_explicit(&workers[i].live_inflight, memory_order_relaxed);
		if (infl == 0)
			break;
		sleep_s(0.005);
	}
	set_phase(PH_PAUSE);
	unsigned want = epoch << 8 | PH_PAUSE;
	for (int i = 0; i < n; i++)
		while (atomic_load_explicit(&workers[i].ack_phase, memory_order_acquire) != want)
			sleep_s(0.001);
	memset(&out->st, 0, sizeof out->st);
	for (int i = 0; i < n; i++) {
		stats_t *s = &workers[i].snap;
		out->st.started += s->started;
		out->st.completed += s->completed;
		out->st.failed += s->failed;
		out->st.timeouts += s->timeouts;
		out->st.errors += s->errors;
		out->st.overflow += s->overflow;
		out->st.send_errors += s->send_errors;
		out->st.retrans += s->retrans;
		out->st.sent += s->sent;
		out->st.received += s->received;
		out->st.stray += s->stray;
		hist_merge(&out->st.hist, &s->hist);
	}
	out->target = rate;
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static double step_rate(const step_t *s)
{
	return s->secs > 0 ? (double)s->st.completed / s->secs : 0;
}

static bool step_passes(step_t *s)
{
	const stats_t *st = &s->st;
	if (st->started == 0)
		return false;
	if ((double)st->failed > cfg.ramp_fail_ratio * (double)st->started)
		return false;
	/* the generator itself must have offered what was asked */
	if (s->target > 0 && (double)st->started < 0.97 * s->target * s->secs)
		return false;
	if (cfg.ramp_p99_ms > 0 && ms(hist_percentile(&st->hist, 99)) > cfg.ramp_p99_ms)
		return false;
	return true;
}

static void print_step_line(const char *what, const step_t *s)
{
	const stats_t *st = &s->st;
	fprintf(stderr,
		"%s target=%.0f/s achieved=%.0f/s started=%llu completed=%llu failed=%llu retrans=%llu p50=%.2fms "
		"p99=%.2fms%s\n",
		what, s->target, step_rate(s), (unsigned long long)st->started, (unsigned long long)st->completed,
		(unsigned long long)st->failed, (unsigned long long)st->retrans, ms(hist_percentile(&st->hist, 50)),
		ms(hist_percentile(&st->hist, 99)), s->target > 0 ? (s->pass ? " pass" : " FAIL") : "");
}

/* ---------------------------------------------------------------- report */

static void json_stats(FILE *f, const step_t *s)
{
	const stats_t *st = &s->st;
	const hist_t *h = &st->hist;
	fprintf(f,
		"\"target_rate\":%.1f,\"duration\":%.3f,\"rate\":%.1f,\"started\":%llu,\"completed\":%llu,"
		"\"failed\":%llu,\"timeouts\":%llu,\"errors\":%llu,\"overflow\":%llu,\"send_errors\":%llu,"
		"\"retransmissions\":%llu,\"sent\":%llu,\"received\":%llu,\"stray\":%llu,"
		"\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f",
		s->target, s->secs, step_rate(s), (unsigned long long)st->started, (unsigned long long)st->completed,
		(unsigned long long)st->failed, (unsigned long long)st->timeouts, (unsigned long long)st->errors,
		(unsigned long long)st->overflow, (unsigned long long)st->send_errors, (unsigned long long)st->retrans,
		(unsigned long long)st->sent, (unsigned long long)st->received, (unsigned long long)st->stray,
		ms(hist_percentile(h, 50)), ms(hist_percentile(h, 90)), ms(hist_percentile(h, 99)),
		ms(hist_percentile(h, 99.9)), ms(h->max), hist_mean(h) / 1000.0);
}

static void text_stats(FILE *f, const step_t *s)
{
	const stats_t *st = &s->st;
	const hist_t *h = &st->hist;
	fprintf(f, "  started %llu  completed %llu  failed %llu (timeouts %llu, errors %llu, overflow %llu)\n",
		(unsigned long long)st->started, (unsigned long long)st->completed, (unsigned long long)st->failed,
		(unsigned long long)st->timeouts, (unsigned long long)st->errors, (unsigned long long)st->overflow);
	fprintf(f, "  rate %.1f/s over %.2f s  retransmissions %llu  sent %llu  received %llu  stray %llu\n",
		step_rate(s), s->secs, (unsigned long long)st->retrans, (unsigned long long)st->sent,
		(unsigned long long)st->received, (unsigned long long)st->stray);
	fprintf(f, "  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
		ms(hist_percentile(h, 50)), ms(hist_percentile(h, 90)), ms(hist_percentile(h, 99)),
		ms(hist_percentile(h, 99.9)), ms(h->max), hist_mean(h) / 1000.0);
}

static void report(const step_t *main_step, const step_t *steps, int nsteps, double max_rate)
{
	if (cfg.json) {
		printf("{\"scenario\":\"%s\",\"transport\":\"%s\",\"threads\":%d,\"sockets\":%d,\"concurrency\":%d,",
		       scenario_names[cfg.scenario], cfg.tcp ? "tcp" : "udp", cfg.threads, cfg.sockets, cfg.concurrency);
		json_stats(stdout, main_step);
		if (cfg.ramp) {
			printf(",\"max_rate\":%.1f,\"ramp_step_s\":%.1f,\"steps\":[", max_rate, cfg.ramp_step_s);
			for (int i = 0; i < nsteps; i++) {
				printf("%s{", i ? "," : "");
				json_stats(stdout, &steps[i]);
				printf(",\"pass\":%s}", steps[i].pass ? "true" : "false");
			}
			printf("]");
		}
		printf("}\n");
		fflush(stdout);
		return;
	}
	printf("sipload %s over %s: %d threads x %d %s", scenario_names[cfg.scenario], cfg.tcp ? "TCP" : "UDP",
	       cfg.threads, cfg.sockets, cfg.tcp ? "connections" : "sockets");
	if (cfg.ramp) {
		printf(", ramp with %.0f s steps\n", cfg.ramp_step_s);
		printf("  max rate sustained: %.0f/s (failures < %.2f%%%s)\n", max_rate, cfg.ramp_fail_ratio * 100,
		       cfg.ramp_p99_ms > 0 ? ", p99 within the bound" : "");
		printf("  at that rate:\n");
	} else {
		printf(", %s\n", main_step->target > 0 ? "open loop" : "closed loop");
	}
	text_stats(stdout, main_step);
	fflush(stdout);
}

/* ---------------------------------------------------------------- main */

static int parse_args(int argc, char **argv)
{
	enum {
		O_TRANSPORT = 256, O_UAS, O_LOCAL, O_DOMAIN, O_SOCKETS, O_USERS, O_PASSWORD, O_EXPIRES, O_TIMEOUT,
		O_T1, O_T2, O_HOLD, O_MAXINF, O_BURST, O_DRAIN, O_RAMP, O_RSTART, O_RSTEP, O_RFAIL, O_RP99, O_RPREC,
		O_RMAX, O_RMAXSTEPS, O_RSETTLE, O_RPROBE, O_JSON, O_PROGRESS
	};
	static const struct option opts[] = {{"server", required_argument, 0, 's'},
					     {"transport", required_argument, 0, O_TRANSPORT},
					     {"uas", required_argument, 0, O_UAS},
					     {"local-ip", required_argument, 0, O_LOCAL},
					     {"domain", required_argument, 0, O_DOMAIN},
					     {"threads", required_argument, 0, 't'},
					     {"sockets", required_argument, 0, O_SOCKETS},
					     {"rate", required_argument, 0, 'r'},
					     {"concurrency", required_argument, 0, 'c'},
					     {"duration", required_argument, 0, 'd'},
					     {"count", required_argument, 0, 'n'},
					     {"users", required_argument, 0, O_USERS},
					     {"password", required_argument, 0, O_PASSWORD},
					     {"expires", required_argument, 0, O_EXPIRES},
					     {"timeout", required_argument, 0, O_TIMEOUT},
					     {"t1", required_argument, 0, O_T1},
					     {"t2", required_argument, 0, O_T2},
					     {"hold", required_argument, 0, O_HOLD},
					     {"max-inflight", required_argument, 0, O_MAXINF},
					     {"burst-ms", required_argument, 0, O_BURST},
					     {"drain", required_argument, 0, O_DRAIN},
					     {"ramp", no_argument, 0, O_RAMP},
					     {"ramp-start", required_argument, 0, O_RSTART},
					     {"ramp-step", required_argument, 0, O_RSTEP},
					     {"ramp-fail", required_argument, 0, O_RFAIL},
					     {"ramp-p99", required_argument, 0, O_RP99},
					     {"ramp-precision", required_argument, 0, O_RPREC},
					     {"ramp-max", required_argument, 0, O_RMAX},
					     {"ramp-max-steps", required_argument, 0, O_RMAXSTEPS},
					     {"ramp-settle", required_argument, 0, O_RSETTLE},
					     {"ramp-probe", required_argument, 0, O_RPROBE},
					     {"json", no_argument, 0, O_JSON},
					     {"progress", required_argument, 0, O_PROGRESS},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	const char *server = "127.0.0.1:5060", *uas = "127.0.0.1:5070";
	bool duration_set = false, sockets_set = false;
	cfg.threads = 2;
	cfg.duration = 10;
	cfg.user_lo = 1000000;
	cfg.user_hi = 1999999;
	snprintf(cfg.password, sizeof cfg.password, "bench");
	snprintf(cfg.local_ip, sizeof cfg.local_ip, "127.0.0.1");
	cfg.expires = 3600;
	cfg.timeout_ms = 32000;
	cfg.t1_ms = 500;
	cfg.t2_ms = 4000;
	cfg.max_inflight = 65536;
	cfg.burst_ms = 100;
	cfg.drain_s = 5;
	cfg.ramp_step_s = 10;
	cfg.ramp_fail_ratio = 0.001;
	cfg.ramp_p99_ms = 250;
	cfg.ramp_precision = 0.05;
	cfg.ramp_max = 2000000;
	cfg.ramp_max_steps = 10;
	cfg.ramp_settle_s = 1;
	cfg.ramp_probe_s = 3;
	int o;
	while ((o = getopt_long(argc, argv, "s:t:r:c:d:n:h", opts, NULL)) != -1) {
		switch (o) {
		case 's': server = optarg; break;
		case O_TRANSPORT:
			if (strcmp(optarg, "udp") && strcmp(optarg, "tcp")) {
				fprintf(stderr, "sipload: --transport udp or tcp\n");
				return -1;
			}
			cfg.tcp = strcmp(optarg, "tcp") == 0;
			break;
		case O_UAS: uas = optarg; break;
		case O_LOCAL: snprintf(cfg.local_ip, sizeof cfg.local_ip, "%s", optarg); break;
		case O_DOMAIN: snprintf(cfg.domain, sizeof cfg.domain, "%s", optarg); break;
		case 't': cfg.threads = atoi(optarg); break;
		case O_SOCKETS: cfg.sockets = atoi(optarg); sockets_set = true; break;
		case 'r': cfg.rate = atof(optarg); break;
		case 'c': cfg.concurrency = atoi(optarg); break;
		case 'd': cfg.duration = atof(optarg); duration_set = true; break;
		case 'n': cfg.count = strtoull(optarg, NULL, 10); break;
		case O_USERS:
			if (sscanf(optarg, "%llu-%llu", (unsigned long long *)&cfg.user_lo,
				   (unsigned long long *)&cfg.user_hi) != 2 || cfg.user_hi < cfg.user_lo) {
				fprintf(stderr, "sipload: --users A-B with A <= B\n");
				return -1;
			}
			break;
		case O_PASSWORD: snprintf(cfg.password, sizeof cfg.password, "%s", optarg); break;
		case O_EXPIRES: cfg.expires = atoi(optarg); break;
		case O_TIMEOUT: cfg.timeout_ms = (unsigned)atoi(optarg); break;
		case O_T1: cfg.t1_ms = (unsigned)atoi(optarg); break;
		case O_T2: cfg.t2_ms = (unsigned)atoi(optarg); break;
		case O_HOLD: cfg.hold_ms = (unsigned)atoi(optarg); break;
		case O_MAXINF: cfg.max_inflight = (unsigned)atoi(optarg); break;
		case O_BURST: cfg.burst_ms = atof(optarg); break;
		case O_DRAIN: cfg.drain_s = atof(optarg); break;
		case O_RAMP: cfg.ramp = true; break;
		case O_RSTART: cfg.ramp_start = atof(optarg); break;
		case O_RSTEP: cfg.ramp_step_s = atof(optarg); break;
		case O_RFAIL: cfg.ramp_fail_ratio = atof(optarg); break;
		case O_RP99: cfg.ramp_p99_ms = atof(optarg); break;
		case O_RPREC: cfg.ramp_precision = atof(optarg); break;
		case O_RMAX: cfg.ramp_max = atof(optarg); break;
		case O_RMAXSTEPS: cfg.ramp_max_steps = atoi(optarg); break;
		case O_RSETTLE: cfg.ramp_settle_s = atof(optarg); break;
		case O_RPROBE: cfg.ramp_probe_s = atof(optarg); break;
		case O_JSON: cfg.json = true; break;
		case O_PROGRESS: cfg.progress_s = atof(optarg); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return -1;
	}
	int sc = -1;
	for (int i = 0; i < SC__N; i++)
		if (strcmp(argv[optind], scenario_names[i]) == 0)
			sc = i;
	if (sc < 0) {
		fprintf(stderr, "sipload: unknown scenario %s\n", argv[optind]);
		return -1;
	}
	cfg.scenario = (scenario_t)sc;
	if (parse_hostport(server, &cfg.server, cfg.server_str, sizeof cfg.server_str, 5060) < 0 ||
	    parse_hostport(uas, &cfg.uas, cfg.uas_str, sizeof cfg.uas_str, 5070) < 0) {
		fprintf(stderr, "sipload: --server/--uas take IPv4:port\n");
		return -1;
	}
	if (!cfg.domain[0]) {
		snprintf(cfg.domain, sizeof cfg.domain, "%s", cfg.server_str);
		*strrchr(cfg.domain, ':') = 0;
	}
	if (!sockets_set)
		cfg.sockets = cfg.tcp ? 2 : 16;
	if (cfg.threads < 1 || cfg.threads > 64 || cfg.sockets < 1 || cfg.sockets > 250) {
		fprintf(stderr, "sipload: --threads 1..64, --sockets 1..250\n");
		return -1;
	}
	if (cfg.timeout_ms < cfg.t1_ms || cfg.timeout_ms > 60000 || cfg.t1_ms < 1 || cfg.t2_ms < cfg.t1_ms) {
		fprintf(stderr, "sipload: need 1 <= t1 <= t2 and t1 <= timeout <= 60000 ms\n");
		return -1;
	}
	if (cfg.max_inflight < 1 || cfg.max_inflight > 4000000) {
		fprintf(stderr, "sipload: --max-inflight 1..4000000\n");
		return -1;
	}
	if (!cfg.ramp && cfg.rate <= 0 && cfg.concurrency <= 0) {
		fprintf(stderr, "sipload: give --rate (open loop), --concurrency (closed loop) or --ramp\n");
		return -1;
	}
	if (cfg.count && !duration_set)
		cfg.duration = 1e9;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "uas") == 0 || strcmp(argv[1], "echo") == 0))
		return uas_run(argc - 1, argv + 1, strcmp(argv[1], "echo") == 0);
	if (parse_args(argc, argv) < 0)
		return 2;
	cfg.run_id = (uint32_t)(getpid() * 2654435761u) ^ (uint32_t)now_ns();
	char err[256];
	if (uac_prepare(err, sizeof err) < 0) {
		fprintf(stderr, "sipload: %s\n", err);
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	workers = calloc((size_t)cfg.threads, sizeof *workers);
	atomic_store(&ctl.phase, 0u << 8 | PH_PAUSE);
	for (int i = 0; i < cfg.threads; i++) {
		workers[i].id = i;
		pthread_create(&workers[i].tid, NULL, uac_main, &workers[i]);
	}
	/* wait until every thread is set up (or one failed) */
	for (int i = 0; i < cfg.threads; i++) {
		while (!workers[i].priv && !atomic_load(&workers[i].failed_init))
			sleep_s(0.001);
		if (atomic_load(&workers[i].failed_init)) {
			fprintf(stderr, "sipload: thread %d: %s\n", i, workers[i].err);
			return 1;
		}
	}
	int rc = 0;
	if (!cfg.ramp) {
		step_t s = {0};
		run_step(cfg.rate, cfg.concurrency, cfg.count, cfg.duration, &s);
		s.pass = step_passes(&s);
		report(&s, NULL, 0, 0);
	} else {
		step_t steps[64], best = {0};
		int nsteps = 0;
		double r = cfg.ramp_start, lo = 0, hi = 0;
		if (r <= 0) {
			step_t probe = {0};
			int conc = cfg.concurrency > 0 ? cfg.concurrency : 64 * cfg.threads;
			run_step(0, conc, 0, cfg.ramp_probe_s, &probe);
			print_step_line("probe (closed loop)", &probe);
			/* a closed loop runs at the server's pace: open loop just below it
			 * either holds or shows where it breaks */
			r = 0.75 * step_rate(&probe);
			if (r < 10)
				r = 10;
			sleep_s(cfg.ramp_settle_s);
		}
		int maxsteps = cfg.ramp_max_steps < 64 ? cfg.ramp_max_steps : 64;
		while (nsteps < maxsteps && !interrupted) {
			if (r > cfg.ramp_max)
				r = cfg.ramp_max;
			step_t *s = &steps[nsteps++];
			run_step(r, cfg.concurrency, 0, cfg.ramp_step_s, s);
			s->pass = step_passes(s);
			char what[32];
			snprintf(what, sizeof what, "step %d", nsteps);
			print_step_line(what, s);
			if (s->pass) {
				if (r > lo) {
					lo = r;
					best = *s;
				}
				if (r >= cfg.ramp_max)
					break;
			} else {
				hi = r;
			}
			if (hi > 0 && lo > 0 && hi / lo <= 1 + cfg.ramp_precision)
				break;
			if (hi == 0)
				r = lo * 1.15;
			else if (lo == 0)
				r = r * 0.75;
			else
				r = (lo + hi) / 2;
			if (lo == 0 && r < 1)
				break;
			sleep_s(cfg.ramp_settle_s);
		}
		report(&best, steps, nsteps, lo);
		if (lo == 0)
			rc = 3;
	}
	set_phase(PH_EXIT);
	for (int i = 0; i < cfg.threads; i++)
		pthread_join(workers[i].tid, NULL);
	for (int i = 0; i < cfg.threads; i++)
		if (workers[i].err[0])
			fprintf(stderr, "sipload: thread %d: %s\n", i, workers[i].err);
	free(workers);
	return rc;
}
