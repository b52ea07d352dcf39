// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Nonce counts: a fixed, set-associative table shared by all workers. A nonce
 * hashes to one set of WAYS slots; the set's stripe lock covers the scan.
 * Memory is bounded by auth.nc_array_size whatever the traffic: when a set is
 * full, the slot of the nonce closest to expiry gives way. A nonce that lost
 * its slot is then "unknown" and answered as stale, which costs the phone one
 * round trip, never a replay.
 */
#include <pthread.h>
#include <stdlib.h>

#include "auth_int.h"

#define WAYS 8
#define NLOCKS 256

typedef struct {
	uint64_t key;     /* 0 = free */
	uint32_t expires; /* unix seconds (fits until 2106) */
	uint32_t nc;      /* highest accepted; 0 = none yet */
} nc_slot_t;

static nc_slot_t *slots;
static size_t nsets;
static pthread_mutex_t locks[NLOCKS];

int auth_nc_init(unsigned entries)
{
	size_t n = 64;

	auth_nc_free();
	while (n < entries && n < ((size_t)1 << 30))
		n <<= 1;
	slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -1;
	nsets = n / WAYS;
	for (unsigned i = 0; i < NLOCKS; i++)
		pthread_mutex_init(&locks[i], NULL);
	return 0;
}

void auth_nc_free(void)
{
	if (!slots)
		return;
	for (unsigned i = 0; i < NLOCKS; i++)
		pthread_mutex_destroy(&locks[i]);
	free(slots);
	slots = NULL;
	nsets = 0;
}

static uint64_t norm_key(uint64_t key)
{
	return key ? key : 1; /* 0 marks a free slot */
}

static nc_slot_t *set_of(uint64_t key, pthread_mutex_t **lock)
{
	size_t set = (size_t)(key & (nsets - 1));
	*lock = &locks[set & (NLOCKS - 1)];
	return &slots[set * WAYS];
}

void auth_nc_issue(uint64_t key, uint64_t expires)
{
	pthread_mutex_t *lock;

	if (!slots)
		return;
	key = norm_key(key);
	nc_slot_t *set = set_of(key, &lock);
	pthread_mutex_lock(lock);
	nc_slot_t *victim = &set[0];
	for (unsigned i = 0; i < WAYS; i++) {
		if (!set[i].key) {
			victim = &set[i];
			break;
		}
		if (set[i].expires < victim->expires)
			victim = &set[i];
	}
	victim->key = key;
	victim->expires = (uint32_t)expires;
	victim->nc = 0;
	pthread_mutex_unlock(lock);
}

/* The live slot of key in set, or NULL. Called with the set's lock held. */
static nc_slot_t *find(nc_slot_t *set, uint64_t key, uint64_t now)
{
	for (unsigned i = 0; i < WAYS; i++)
		if (set[i].key == key)
			return set[i].expires > now ? &set[i] : NULL;
	return NULL;
}

static auth_nc_rc_t check(uint64_t key, uint32_t nc, uint64_t now, bool commit)
{
	pthread_mutex_t *lock;
	auth_nc_rc_t rc;

	if (!slots)
		return AUTH_NC_UNKNOWN;
	key = norm_key(key);
	nc_slot_t *set = set_of(key, &lock);
	pthread_mutex_lock(lock);
	nc_slot_t *s = find(set, key, now);
	if (!s)
		rc = AUTH_NC_UNKNOWN;
	else if (nc <= s->nc)
		rc = AUTH_NC_REPLAY;
	else {
		rc = AUTH_NC_OK;
		if (commit)
			s->nc = nc;
	}
	pthread_mutex_unlock(lock);
	return rc;
}

auth_nc_rc_t auth_nc_peek(uint64_t key, uint32_t nc, uint64_t now)
{
	return check(key, nc, now, false);
}

auth_nc_rc_t auth_nc_commit(uint64_t key, uint32_t nc, uint64_t now)
{
	return check(key, nc, now, true);
}
