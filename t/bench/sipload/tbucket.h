// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Token bucket for open-loop load: tokens accrue at `rate` per second up to
 * `burst`, and each new call or transaction spends one. The clock is passed
 * in (nanoseconds, any origin) so that the tests can drive it by hand.
 *
 * The burst bounds how much a thread that was descheduled for a while may
 * catch up at once: a generator that drops those tokens under-reports the
 * rate it claims, one that keeps them all sends an unrealistic spike.
 */
#include <stdint.h>

typedef struct {
	double rate;   /* tokens per second */
	double burst;  /* most tokens held */
	double tokens; /* tokens held now (fractional) */
	uint64_t last; /* ns of the last refill */
} tbucket_t;

/* Starts with one token, so the first send is immediate. */
void tb_init(tbucket_t *tb, double rate, double burst, uint64_t now_ns);
/* Changes the rate, keeping the tokens already earned. */
void tb_set_rate(tbucket_t *tb, double rate, double burst, uint64_t now_ns);
/* Takes up to `want` whole tokens; returns how many were taken. */
uint64_t tb_take(tbucket_t *tb, uint64_t now_ns, uint64_t want);
/* Nanoseconds from now until the next whole token (0 if one is there). */
uint64_t tb_wait_ns(const tbucket_t *tb, uint64_t now_ns);
