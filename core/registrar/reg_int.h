// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/* Shared between the files of core/registrar only. */
#include "../lib/stats.h"
#include "../usrloc/usrloc.h"
#include "registrar.h"

typedef struct {
	unsigned default_expires, min_expires, max_expires, expires_range, default_expires_range;
	unsigned max_contacts, path_mode, retry_after, cseq_delay;
	bool use_path, path_use_received, method_filtering, append_branches;
	char received_param[32];
	char received_avp[64];
	stat_counter_t *st_accepted, *st_rejected;
} reg_cfg_t;

extern reg_cfg_t reg_cfg;

/* What the registrar keeps about the message being handled, in this thread. */
typedef struct {
	const msg_t *m;
	uint64_t id;
	reg_branch_t *branches;
	str_t ruid, ua;
	int32_t q_override;    /* -2: none */
	int reply_code;        /* prepared by save(NOREPLY); 0 = none */
	const char *reply_reason;
	str_t reply_hdrs;      /* header lines (arena of m) */
} reg_msg_ctx_t;

/* The context of m, reset when m is not the message it was made for. */
reg_msg_ctx_t *reg_ctx(const msg_t *m);
