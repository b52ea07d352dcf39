// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Latency histogram with log-linear buckets, in the manner of HdrHistogram:
 * every power of two is cut into HIST_SUB equal sub-buckets, so a recorded
 * value is known to within 1/HIST_SUB of itself at any magnitude (< 0.4 %
 * when a bucket is reported by its midpoint) while the whole range from 1 µs
 * to days fits in a few thousand counters. Recording is an increment, so each
 * generator thread keeps its own histogram and they are merged for the report.
 *
 * Values are unsigned integers in whatever unit the caller uses (sipload:
 * microseconds). Values below 2*HIST_SUB are counted exactly.
 */
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40 /* values of 2^40 and more are counted as the largest bucket */
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct {
	uint64_t total;
	uint64_t min, max;
	double sum;
	uint64_t count[HIST_BUCKETS];
} hist_t;

void hist_reset(hist_t *h);
void hist_record(hist_t *h, uint64_t v);
void hist_merge(hist_t *dst, const hist_t *src);
/* The value at percentile p (0..100): the smallest bucket holding the
 * ceil(p/100 * total)-th value, reported by its midpoint and clamped to the
 * recorded min and max. 0 for an empty histogram. */
uint64_t hist_percentile(const hist_t *h, double p);
double hist_mean(const hist_t *h);

/* Bucket arithmetic, exposed for the tests. */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_low(unsigned idx);
uint64_t hist_bucket_high(unsigned idx); /* inclusive */
