// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/* Shared between the files of core/auth only. */
#include <stdatomic.h>

#include "../lib/stats.h"
#include "auth.h"

/* Settings in force: built-in defaults until auth_init() copies cfg->auth. */
typedef struct {
	unsigned nonce_expire;          /* seconds */
	bool nonce_count;               /* nc checks on */
	auth_alg_t algs[AUTH_ALG__COUNT]; /* offered in challenges, in order */
	unsigned nalgs;
	int qop_flags;                  /* AUTH_CHF_QOP_* always offered (auth.qop) */
	bool use_domain;
} auth_settings_t;

extern auth_settings_t auth_settings;

/* Set by KSR.auth.auth_algorithm(): one algorithm replacing the configured list; -1 = none. */
extern _Atomic int auth_alg_override;

/* Statistics (NULL before auth_init: then not counted). */
extern stat_counter_t *auth_st_challenges, *auth_st_ok, *auth_st_failed, *auth_st_stale,
	*auth_st_replayed, *auth_st_bad;

/* auth_rpc.c: registers auth.failures */
void auth_rpc_init(void);

/* nonce.c: forgets the secret (shutdown) */
void auth_nonce_free(void);

static inline void auth_count(stat_counter_t *c)
{
	if (c)
		stat_inc(c);
}
