// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Logging by group token. The level check happens before any argument is
 * evaluated, so a LOG_DBG in the hot path costs one load and a branch.
 * The LOG_MSG_* variants prefix the Call-ID of the message being handled.
 */
#include <stdatomic.h>
#include <stdbool.h>

#include "str.h"

enum { L_CRIT = 0, L_ERR = 1, L_WARN = 2, L_NOTICE = 3, L_INFO = 4, L_DBG = 5 };

extern _Atomic int log_level;

void log_setup(const char *prefix, bool to_stderr);
/* Returns -1 for an unknown name; accepts crit/err/warn/notice/info/dbg and their long forms. */
int log_level_from_name(str_t name);
const char *log_level_name(int level);
void log_write(int level, const char *group, const str_t *callid, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define LOG_ON(lvl) (atomic_load_explicit(&log_level, memory_order_relaxed) >= (lvl))
#define LOG_AT(lvl, grp, ...) \
	do { \
		if (LOG_ON(lvl)) \
			log_write((lvl), #grp, NULL, __VA_ARGS__); \
	} while (0)
#define LOG_MSG_AT(lvl, grp, cid, ...) \
	do { \
		if (LOG_ON(lvl)) \
			log_write((lvl), #grp, (cid), __VA_ARGS__); \
	} while (0)

#define LOG_CRIT(grp, ...) LOG_AT(L_CRIT, grp, __VA_ARGS__)
#define LOG_ERR(grp, ...) LOG_AT(L_ERR, grp, __VA_ARGS__)
#define LOG_WARN(grp, ...) LOG_AT(L_WARN, grp, __VA_ARGS__)
#define LOG_NOTICE(grp, ...) LOG_AT(L_NOTICE, grp, __VA_ARGS__)
#define LOG_INFO(grp, ...) LOG_AT(L_INFO, grp, __VA_ARGS__)
#define LOG_DBG(grp, ...) LOG_AT(L_DBG, grp, __VA_ARGS__)
#define LOG_MSG_ERR(grp, cid, ...) LOG_MSG_AT(L_ERR, grp, cid, __VA_ARGS__)
#define LOG_MSG_WARN(grp, cid, ...) LOG_MSG_AT(L_WARN, grp, cid, __VA_ARGS__)
#define LOG_MSG_INFO(grp, cid, ...) LOG_MSG_AT(L_INFO, grp, cid, __VA_ARGS__)
#define LOG_MSG_DBG(grp, cid, ...) LOG_MSG_AT(L_DBG, grp, cid, __VA_ARGS__)

/* Invariants that must hold; failure is fatal and always checked. */
#define ksr_require(cond) \
	do { \
		if (!(cond)) \
			ksr_require_fail(#cond, __FILE__, __LINE__); \
	} while (0)
_Noreturn void ksr_require_fail(const char *what, const char *file, int line);
