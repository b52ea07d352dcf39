// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "tbucket.h"

static void refill(tbucket_t *tb, uint64_t now)
{
	if (now > tb->last) {
		tb->tokens += (double)(now - tb->last) * tb->rate / 1e9;
		if (tb->tokens > tb->burst)
			tb->tokens = tb->burst;
	}
	/* a clock that went backwards (other CPU's reading) earns nothing */
	if (now > tb->last)
		tb->last = now;
}

void tb_init(tbucket_t *tb, double rate, double burst, uint64_t now_ns)
{
	tb->rate = rate > 0 ? rate : 0;
	tb->burst = burst >= 1 ? burst : 1;
	tb->tokens = 1;
	tb->last = now_ns;
}

void tb_set_rate(tbucket_t *tb, double rate, double burst, uint64_t now_ns)
{
	refill(tb, now_ns);
	tb->rate = rate > 0 ? rate : 0;
	tb->burst = burst >= 1 ? burst : 1;
	if (tb->tokens > tb->burst)
		tb->tokens = tb->burst;
}

uint64_t tb_take(tbucket_t *tb, uint64_t now_ns, uint64_t want)
{
	refill(tb, now_ns);
	if (tb->tokens < 1 || want == 0)
		return 0;
	uint64_t have = (uint64_t)tb->tokens;
	uint64_t n = have < want ? have : want;
	tb->tokens -= (double)n;
	return n;
}

uint64_t tb_wait_ns(const tbucket_t *tb, uint64_t now_ns)
{
	double tokens = tb->tokens;
	if (now_ns > tb->last)
		tokens += (double)(now_ns - tb->last) * tb->rate / 1e9;
	if (tokens >= 1)
		return 0;
	if (tb->rate <= 0)
		return UINT64_MAX;
	return (uint64_t)((1 - tokens) * 1e9 / tb->rate) + 1;
}
