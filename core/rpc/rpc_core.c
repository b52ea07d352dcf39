// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/* The built-in methods (system.*, core.*, stats.*) and the Prometheus export. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/stats.h"
#include "../worker/worker.h"
#include "config.h"
#include "rpc_internal.h"

static time_t started_at;
static struct timespec started_mono;

void rpc_core_started(void)
{
	started_at = time(NULL);
	clock_gettime(CLOCK_MONOTONIC, &started_mono);
}

/* --------------------------------------------------------------- system */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void m_list_methods(rpc_req_t *r, const json_t *params)
{
	size_t n = rpc_method_count();
	const char **names = arena_alloc(rpc_arena(r), (n ? n : 1) * sizeof(*names));
	if (!names) {
		rpc_fault(r, RPC_E_FAILED, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		names[i] = rpc_method_name(i);
	qsort(names, n, sizeof(*names), by_name);
	json_w_t *w = rpc_result(r);
	json_w_arr_begin(w);
	for (size_t i = 0; i < n; i++)
		json_w_cstr(w, names[i]);
	json_w_arr_end(w);
}

static void m_method_help(rpc_req_t *r, const json_t *params)
{
	str_t name;
	if (rpc_param_str(r, 0, "method", &name) < 0)
		return;
	/* param strings are NUL-terminated copies in the request's arena */
	const char *doc = rpc_method_doc(name.s);
	if (!doc) {
		rpc_fault(r, RPC_E_NOT_FOUND, "no such method: %.*s", STR_FMT(name));
		return;
	}
	json_w_cstr(rpc_result(r), doc);
}

/* ----------------------------------------------------------------- core */

static void m_version(rpc_req_t *r, const json_t *params)
{
	json_w_t *w = rpc_result(r);
	json_w_obj_begin(w);
	json_w_kcstr(w, "name", "ksrd");
	json_w_kcstr(w, "version", KSR_VERSION);
	json_w_kcstr(w, "build_flags", KSR_BUILD_FLAGS);
	json_w_obj_end(w);
}

static void put_time(json_w_t *w, const char *key, time_t t)
{
	struct tm tm;
	char buf[64];
	localtime_r(&t, &tm);
	/* ctime()'s format, without its newline, as Kamailio prints it */
	strftime(buf, sizeof(buf), "%a %b %e %H:%M:%S %Y", &tm);
	json_w_kcstr(w, key, buf);
}

static void m_uptime(rpc_req_t *r, const json_t *params)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	json_w_t *w = rpc_result(r);
	json_w_obj_begin(w);
	put_time(w, "now", time(NULL));
	put_time(w, "up_since", started_at);
	json_w_kint(w, "uptime", (long long)(now.tv_sec - started_mono.tv_sec));
	json_w_obj_end(w);
}

static void m_psx(rpc_req_t *r, const json_t *params)
{
	json_w_t *w = rpc_result(r);
	json_w_arr_begin(w);
	for (unsigned i = 0; i < workers_count(); i++) {
		json_w_obj_begin(w);
		json_w_kuint(w, "IDX", i);
		json_w_kint(w, "PID", worker_tid(i));
		json_w_key(w, "DSC");
		json_w_printf(w, "worker %u", i);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
}

/* A "VmRSS:    1234 kB" line of /proc/self/status, in bytes; 0 when unknown. */
static unsigned long long proc_status_kb(const char *status, const char *field)
{
	const char *p = strstr(status, field);
	if (!p)
		return 0;
	return strtoull(p + strlen(field), NULL, 10) * 1024;
}

static void m_shmmem(rpc_req_t *r, const json_t *params)
{
	char status[4096] = "";
	FILE *f = fopen("/proc/self/status", "r");
	if (f) {
		size_t n = fread(status, 1, sizeof(status) - 1, f);
		status[n] = '\0';
		fclose(f);
	}
	struct mallinfo2 mi = mallinfo2();
	json_w_t *w = rpc_result(r);
	json_w_obj_begin(w);
	json_w_kuint(w, "total", mi.arena + mi.hblkhd);
	json_w_kuint(w, "free", mi.fordblks);
	json_w_kuint(w, "used", mi.uordblks + mi.hblkhd);
	json_w_kuint(w, "real_used", proc_status_kb(status, "VmRSS:"));
	json_w_kuint(w, "max_used", proc_status_kb(status, "VmHWM:"));
	json_w_kuint(w, "fragments", mi.ordblks);
	json_w_obj_end(w);
}

/* ---------------------------------------------------------------- stats */

/*
 * "all"; "group:" (a whole group); "group:name"; a bare word matches a group
 * of that name or a statistic of that name in any group (as Kamailio does).
 */
typedef struct {
	str_t group, name;
	bool all, bare;
} selector_t;

static selector_t selector(str_t s)
{
	selector_t sel = {0};
	const char *colon = memchr(s.s, ':', s.len);
	if (str_eq(s, STR_LIT("all")))
		sel.all = true;
	else if (colon)
		sel = (selector_t){.group = str_from(s.s, (size_t)(colon - s.s)),
				   .name = str_from(colon + 1, s.len - (size_t)(colon - s.s) - 1)};
	else
		sel = (selector_t){.group = s, .bare = true};
	return sel;
}

static bool selected(const selector_t *sel, const stat_counter_t *c)
{
	str_t g = str_cstr(c->group), n = str_cstr(c->name);
	if (sel->all)
		return true;
	if (sel->bare)
		return str_eq(sel->group, g) || str_eq(sel->group, n);
	return str_eq(sel->group, g) && (!sel->name.len || str_eq(sel->name, n));
}

typedef enum { STATS_LIST, STATS_FETCH, STATS_RESET } stats_op_t;

typedef struct {
	const selector_t *sels;
	size_t nsels;
	stats_op_t op;
	json_w_t *w;
	size_t matched;
} stats_walk_t;

static void stats_visit(const stat_counter_t *c, void *arg)
{
	stats_walk_t *sw = arg;
	size_t i = 0;
	while (i < sw->nsels && !selected(&sw->sels[i], c))
		i++;
	if (i == sw->nsels)
		return;
	sw->matched++;
	switch (sw->op) {
	case STATS_LIST:
		json_w_printf(sw->w, "%s:%s = %llu", c->group, c->name, (unsigned long long)stat_get(c));
		break;
	case STATS_FETCH: {
		char key[256];
		snprintf(key, sizeof(key), "%s.%s", c->group, c->name);
		json_w_kuint(sw->w, key, stat_get(c));
		break;
	}
	case STATS_RESET:
		if (!c->no_reset) {
			/* the registry hands out const views; stat_find gives the writable handle */
			stat_counter_t *m = stat_find(c->group, c->name);
			if (m)
				atomic_store_explicit(&m->value, 0, memory_order_relaxed);
		}
		break;
	}
}

/* Selectors from the params: each positional string, or the named "stat"; "all" by default. */
static int read_selectors(rpc_req_t *r, const json_t *params, selector_t **out, size_t *n)
{
	static selector_t all = {.all = true};
	size_t count = json_is(params, JSON_ARRAY) ? params->count : 1;
	selector_t *sels = arena_alloc(rpc_arena(r), (count ? count : 1) * sizeof(*sels));
	if (!sels) {
		rpc_fault(r, RPC_E_FAILED, "out of memory");
		return -ENOMEM;
	}
	*out = sels;
	*n = 0;
	for (size_t i = 0; i < count; i++) {
		str_t s = STR_NULL;
		if (rpc_param_opt_str(r, (unsigned)i, "stat", &s) < 0)
			return -EINVAL;
		if (s.s)
			sels[(*n)++] = selector(s);
	}
	if (*n == 0) {
		*out = &all;
		*n = 1;
	}
	return 0;
}

static void stats_run(rpc_req_t *r, const json_t *params, stats_op_t op)
{
	stats_walk_t sw = {.op = op};
	selector_t *sels;
	if (read_selectors(r, params, &sels, &sw.nsels) < 0)
		return;
	sw.sels = sels;
	/* the result goes to a side writer: nothing is answered when nothing matched */
	json_w_t tmp;
	json_w_init(&tmp);
	sw.w = &tmp;
	if (op == STATS_LIST)
		json_w_arr_begin(&tmp);
	else if (op == STATS_FETCH)
		json_w_obj_begin(&tmp);
	stat_foreach(stats_visit, &sw);
	if (op == STATS_LIST)
		json_w_arr_end(&tmp);
	else if (op == STATS_FETCH)
		json_w_obj_end(&tmp);
	if (!sw.matched && !sels[0].all)
		rpc_fault(r, RPC_E_NOT_FOUND, "no statistics match");
	else if (op != STATS_RESET)
		json_w_raw(rpc_result(r), json_w_text(&tmp));
	json_w_free(&tmp);
}

static void m_get_statistics(rpc_req_t *r, const json_t *params)
{
	stats_run(r, params, STATS_LIST);
}

static void m_fetch(rpc_req_t *r, const json_t *params)
{
	stats_run(r, params, STATS_FETCH);
}

static void m_reset_statistics(rpc_req_t *r, const json_t *params)
{
	stats_run(r, params, STATS_RESET);
}

/* ------------------------------------------------------------ prometheus */

static void put_metric_name(rpc_buf_t *out, const char *group, const char *name)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "ksrd_%s_%s", group, name);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	for (int i = 0; i < n; i++) {
		char c = buf[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
		if (!ok)
			buf[i] = '_';
	}
	rpc_buf_put(out, buf, (size_t)n);
}

static void metric_visit(const stat_counter_t *c, void *arg)
{
	rpc_buf_t *out = arg;
	rpc_buf_printf(out, "# TYPE ");
	put_metric_name(out, c->group, c->name);
	rpc_buf_printf(out, " %s\n", c->no_reset ? "gauge" : "counter");
	put_metric_name(out, c->group, c->name);
	rpc_buf_printf(out, " %llu\n", (unsigned long long)stat_get(c));
}

void rpc_metrics(rpc_buf_t *out)
{
	stat_foreach(metric_visit, out);
}

/* ------------------------------------------------------------- registry */

static const struct {
	const char *name;
	rpc_handler_t fn;
	const char *doc;
} builtins[] = {
	{"system.listMethods", m_list_methods, "Names of all methods, sorted."},
	{"system.methodHelp", m_method_help, "Help for a method: system.methodHelp METHOD"},
	{"core.version", m_version, "Version and build flags."},
	{"core.uptime", m_uptime, "Current time, start time, and seconds since the start."},
	{"core.psx", m_psx, "Worker threads: IDX (index), PID (Linux thread id), DSC (description)."},
	{"core.shmmem",
	 m_shmmem,
	 "Memory, with Kamailio's field names; ksrd has no separate shared-memory pool, so these describe "
	 "the process: total = heap obtained by malloc from the system, free = free heap, used = heap in use, "
	 "real_used = resident set (VmRSS), max_used = peak resident set (VmHWM), fragments = free heap "
	 "chunks. Lua states allocate outside malloc's heap: they count in real_used only."},
	{"stats.get_statistics", m_get_statistics,
	 "Statistics as \"group:name = value\" lines: stats.get_statistics [all | GROUP | GROUP: | GROUP:NAME "
	 "| NAME]..."},
	{"stats.fetch", m_fetch, "Statistics as an object {\"group.name\": value}; selectors as get_statistics."},
	{"stats.reset_statistics", m_reset_statistics,
	 "Resets counters (not gauges) to 0; selectors as get_statistics."},
	{"stats.clear_statistics", m_reset_statistics, "Alias of stats.reset_statistics."},
};

int rpc_core_register(void)
{
	static bool done;
	if (done)
		return 0;
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
		int rc = rpc_register(builtins[i].name, builtins[i].fn, builtins[i].doc);
		if (rc < 0 && rc != -EEXIST)
			return rc;
	}
	done = true;
	return 0;
}
