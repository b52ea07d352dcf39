// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/* Shared between the files of core/usrloc only. */
#include <pthread.h>

#include "../db/db.h"
#include "../lib/stats.h"
#include "usrloc.h"

typedef struct {
	pthread_mutex_t lock;
	ul_record_t *first;
} ul_bucket_t;

/* A row to delete at the next write-back (db_mode 2). */
typedef struct ul_del {
	struct ul_del *next;
	size_t len;
	char ruid[];
} ul_del_t;

struct ul_domain {
	struct ul_domain *next;
	char name[64];
	size_t name_len;
	unsigned size; /* power of two */
	ul_bucket_t *buckets;
	stat_counter_t *st_users, *st_contacts, *st_expires;
	char *stat_names;       /* owns the three counter names */
	pthread_mutex_t del_lock;
	ul_del_t *dels;
};

/* Process-wide usrloc state, set by ul_init. */
typedef struct {
	int db_mode;
	bool use_domain;
	unsigned hash_bits;
	unsigned timer_interval;
	int nat_bflag;
	int32_t server_id;
	db_t *db;
	stat_counter_t *st_users, *st_contacts;
	_Atomic bool resync;    /* a write-back failed: the next one writes everything */
} ul_global_t;

extern ul_global_t ul_g;

/* usrloc.c: building blocks the database side uses */
ul_contact_t *ul_contact_new(const ul_info_t *ci);
ul_record_t *ul_record_new(str_t aor);
/* Links c into r in q order (no database, no statistics). */
void ul_record_link(ul_record_t *r, ul_contact_t *c);
uint32_t ul_aor_hash(str_t aor);
void ul_bucket_stats(ul_domain_t *d, int users, int contacts);

/* ul_db.c */
int ul_db_prepare(ul_domain_t *d);
int ul_db_upsert(ul_domain_t *d, str_t aor, const ul_contact_t *c);
int ul_db_delete(ul_domain_t *d, str_t ruid);
int ul_db_delete_aor(ul_domain_t *d, str_t aor);
int ul_db_delete_expired(ul_domain_t *d, int64_t now);
/* Reads aor's contacts (db_mode 3): *out is a new record or NULL when none. */
int ul_db_load_aor(ul_domain_t *d, str_t aor, ul_record_t **out);
/* Loads every row of the table into memory (db_mode 1, 2). */
int ul_db_load_all(ul_domain_t *d);
/* Visits every AOR in the table, built as temporary records. */
int ul_db_foreach(ul_domain_t *d, bool (*fn)(const ul_record_t *r, void *arg), void *arg);
