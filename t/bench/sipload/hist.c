// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_reset(hist_t *h)
{
	memset(h, 0, sizeof *h);
}

/*
 * Values below 2*HIST_SUB map to themselves. Above, a value with its highest
 * bit at position e keeps its top HIST_SUB_BITS+1 bits: shift = e - SUB_BITS,
 * sub = v >> shift lies in [SUB, 2*SUB), and each shift gets its own row of
 * SUB buckets after the exact ones.
 */
unsigned hist_index(uint64_t v)
{
	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);
	if (e >= HIST_MAX_BITS)
		return HIST_BUCKETS - 1;
	unsigned shift = e - HIST_SUB_BITS;
	unsigned sub = (unsigned)(v >> shift);
	return (shift + 1) * HIST_SUB + (sub - HIST_SUB);
}

uint64_t hist_bucket_low(unsigned idx)
{
	if (idx < 2 * HIST_SUB)
		return idx;
	unsigned shift = idx / HIST_SUB - 1;
	uint64_t sub = HIST_SUB + idx % HIST_SUB;
	return sub << shift;
}

uint64_t hist_bucket_high(unsigned idx)
{
	if (idx < 2 * HIST_SUB)
		return idx;
	unsigned shift = idx / HIST_SUB - 1;
	uint64_t sub = HIST_SUB + idx % HIST_SUB;
	return ((sub + 1) << shift) - 1;
}

void hist_record(hist_t *h, uint64_t v)
{
	if (h->total == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->total++;
	h->sum += (double)v;
	h->count[hist_index(v)]++;
}

void hist_merge(hist_t *dst, const hist_t *src)
{
	if (src->total == 0)
		return;
	if (dst->total == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->total += src->total;
	dst->sum += src->sum;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->count[i] += src->count[i];
}

uint64_t hist_percentile(const hist_t *h, double p)
{
	if (h->total == 0)
		return 0;
	if (p < 0)
		p = 0;
	if (p > 100)
		p = 100;
	/* rank of the value wanted, 1-based: the nearest-rank definition */
	uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->total);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
			uint64_t v = lo + (hi - lo) / 2;
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

double hist_mean(const hist_t *h)
{
	return h->total ? h->sum / (double)h->total : 0.0;
}
