// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>

_Atomic int log_level = L_INFO;

static bool use_stderr = true;
static char log_prefix[64] = "ksrd";

static const char *const level_names[] = {"CRIT", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"};
static const int syslog_prio[] = {LOG_CRIT, LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

void log_setup(const char *prefix, bool to_stderr)
{
	/* copied: the configuration that holds the prefix is freed before the last log line */
	if (prefix)
		snprintf(log_prefix, sizeof(log_prefix), "%s", prefix);
	use_stderr = to_stderr;
	if (!to_stderr)
		openlog(log_prefix, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int log_level_from_name(str_t n)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {
		{"crit", L_CRIT},     {"critical", L_CRIT}, {"err", L_ERR},     {"error", L_ERR},
		{"warn", L_WARN},     {"warning", L_WARN},  {"notice", L_NOTICE}, {"info", L_INFO},
		{"dbg", L_DBG},       {"debug", L_DBG},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (str_caseeq_lit(n, names[i].name))
			return names[i].level;
	return -1;
}

const char *log_level_name(int level)
{
	if (level < L_CRIT)
		level = L_CRIT;
	if (level > L_DBG)
		level = L_DBG;
	return level_names[level];
}

void log_write(int level, const char *group, const str_t *callid, const char *fmt, ...)
{
	char line[2048];
	int n;
	va_list ap;
	if (level < L_CRIT)
		level = L_CRIT;
	if (level > L_DBG)
		level = L_DBG;
	if (callid && callid->len)
		n = snprintf(line, sizeof(line), "%s: %s [%.*s] ", level_names[level], group,
			     (int)(callid->len > 200 ? 200 : callid->len), callid->s);
	else
		n = snprintf(line, sizeof(line), "%s: %s ", level_names[level], group);
	if (n < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (!use_stderr) {
		syslog(syslog_prio[level], "%s", line);
		return;
	}
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	/* one fprintf per line: stdio locks the stream, so lines from threads never interleave */
	fprintf(stderr, "%02d:%02d:%02d.%03ld %s %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
		ts.tv_nsec / 1000000, log_prefix, line);
}

void ksr_require_fail(const char *what, const char *file, int line)
{
	log_write(L_CRIT, "CORE", NULL, "invariant failed: %s at %s:%d", what, file, line);
	abort();
}
