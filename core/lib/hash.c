// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "hash.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t hash_seed = 0xcbf29ce484222325ULL;

void hash_seed_init(void)
{
	uint64_t s;
	if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
		s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	hash_seed ^= s;
}
