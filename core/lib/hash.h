// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Non-cryptographic 64-bit hashing for table buckets and for values that must
 * be stable for equal inputs (Via branches of retransmissions, To-tags of
 * stateless replies). Seeded so outsiders cannot predict branches.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "str.h"

static inline uint64_t hash64_mix(uint64_t h, const void *data, size_t len)
{
	/* eight bytes per multiply (the byte-wise FNV loop showed in profiles) */
	const unsigned char *p = data;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
		p += 8;
		len -= 8;
	}
	uint64_t tail = 0;
	memcpy(&tail, p, len);
	h = (h ^ tail ^ ((uint64_t)len << 56)) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 32);
}

static inline uint64_t hash64_str(uint64_t h, str_t s)
{
	h = hash64_mix(h, s.s, s.len);
	h ^= 0xff; /* separator so ("ab","c") and ("a","bc") differ */
	return h * 0x100000001b3ULL;
}

static inline uint64_t hash64_final(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Process-wide random seed, set once at start-up by hash_seed_init(). */
extern uint64_t hash_seed;
void hash_seed_init(void);

/* Writes 16 lower-case hex digits of v to out (no NUL). */
static inline void hex64(uint64_t v, char out[16])
{
	static const char d[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--) {
		out[i] = d[v & 15];
		v >>= 4;
	}
}
