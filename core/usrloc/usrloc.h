// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * User location: the shared table of where users can be reached.
 *
 * Shape. Tables ("domains" in Kamailio's words, e.g. "location") hold records,
 * one per address-of-record (AOR: "alice", or "alice@example.com" with
 * use_domain), and a record holds its contacts (bindings). Every table is a
 * hash of 2^hash_size buckets; each bucket has its own mutex, so workers
 * touching different AORs never wait for each other. A table is created on
 * first use by name and lives until shutdown.
 *
 * Memory. A contact is one allocation: a fixed head (numbers and string
 * lengths) followed by its strings back to back; nothing is sized for the
 * worst case. A record is one allocation too (head + AOR).
 *
 * Access. Everything that reads or changes a record goes through a ul_ref_t:
 * ul_open() locks the AOR's bucket and finds the record, the caller reads or
 * changes it with ul_add/ul_update/ul_remove, and ul_close() unlocks. Pointers
 * into the table (records, contacts, their strings) are borrowed and valid only
 * until ul_close(); copy what must outlive it.
 *
 * Persistence (db_mode):
 *   0  memory only.
 *   1  write-through: each change is written to PostgreSQL before memory is
 *      changed, so a failed write leaves both as they were (-ENOTCONN etc.);
 *      the table is loaded from the database at start-up.
 *   2  write-back: changes are marked and written every timer_interval by the
 *      usrloc thread, and once more on a clean shutdown; loaded at start-up.
 *   3  database only: ul_open() reads the AOR's contacts from the database into
 *      a record private to the caller, changes are written straight through,
 *      and nothing is kept in memory. Several ksrd nodes sharing the database
 *      see each other's registrations; the expiry timer deletes only rows that
 *      have expired, so no node removes another's live contacts.
 * The bucket lock is held across the database write in modes 1 and 3: two
 * REGISTERs for one AOR on one node are serialised, bounded by the db timeout.
 *
 * Expiry. A contact whose expires (absolute unix time; 0 = permanent) is not
 * in the future is invisible at once (ul_contact_valid) and is removed by the
 * usrloc thread, which wakes every timer_interval seconds: it drops expired
 * contacts from memory, deletes expired rows (modes 1-3) and flushes (mode 2).
 * The "usrloc:contact-expired" event is not raised yet: events need a worker
 * thread's Lua state, and expiry runs on the usrloc thread (see ul_init).
 *
 * Statistics (group "usrloc"): registered_users (records), contacts, and per
 * table <table>-users, <table>-contacts, <table>-expires (Kamailio's names).
 * In db_mode 3 nothing is in memory and the gauges stay 0.
 */
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../cfg/cfg.h"
#include "../lib/str.h"
#include "../parser/sip_parser.h"

/* The strings of a contact, in the order they are stored. */
typedef enum {
	UL_CONTACT,  /* the Contact URI */
	UL_RECEIVED, /* where it was received from when behind NAT ("sip:ip:port;transport=") */
	UL_PATH,     /* Path header values (RFC 3327), comma separated */
	UL_CALLID,
	UL_UA,       /* User-Agent */
	UL_SOCKET,   /* local socket it arrived on, "udp:127.0.0.1:5060" */
	UL_INSTANCE, /* +sip.instance, without the quotes (RFC 5626) */
	UL_RUID,     /* record unique id: key of the row in the database */
	UL_NSTR
} ul_str_id_t;

#define UL_Q_UNSET (-1)              /* no q given; sorts as q=1.0 would not: after explicit q */
#define UL_METHODS_ALL 0xffffffffu

/* Write-back state of a contact (db_mode 2). */
enum { UL_CS_NEW = 0, UL_CS_SYNC = 1, UL_CS_DIRTY = 2 };

typedef struct ul_contact {
	struct ul_contact *next;
	int64_t expires;       /* absolute unix time; 0 = permanent */
	int64_t last_modified; /* unix time */
	int32_t q;             /* 0..1000 (q * 1000), or UL_Q_UNSET */
	uint32_t cseq;
	uint32_t flags;        /* usrloc flags (Kamailio's FL_*) */
	uint32_t cflags;       /* branch flags saved with the contact */
	uint32_t methods;      /* Kamailio's METHOD_* bits (see ul_method_bit), UL_METHODS_ALL */
	uint32_t reg_id;       /* RFC 5626 reg-id, 0 = none */
	int32_t server_id;
	uint8_t state;         /* UL_CS_* */
	uint16_t len[UL_NSTR];
	char data[];           /* the strings, in ul_str_id_t order, not NUL-terminated */
} ul_contact_t;

typedef struct ul_record {
	struct ul_record *next;  /* bucket chain */
	ul_contact_t *contacts;  /* q descending; equal q: oldest first (Kamailio's order) */
	uint32_t hash;           /* of the AOR ("HashID" in ul.dump) */
	uint16_t aor_len;
	char aor[];
} ul_record_t;

/* What a contact is made of: input to ul_add/ul_update. Strings are copied. */
typedef struct {
	str_t s[UL_NSTR];     /* UL_RUID empty: one is generated */
	int64_t expires;
	int32_t q;
	uint32_t cseq, flags, cflags, methods, reg_id;
} ul_info_t;

typedef struct ul_domain ul_domain_t;

/* A locked record (see "Access" above). */
typedef struct {
	ul_domain_t *d;
	str_t aor;
	ul_record_t *r;   /* NULL when the AOR has no record */
	unsigned bucket;
	bool temp;        /* db_mode 3: r is private, freed by ul_close */
	bool nodb;        /* changes stay in memory (save flag 0x01; ignored in db_mode 3) */
} ul_ref_t;

static inline str_t ul_cstr(const ul_contact_t *c, ul_str_id_t id)
{
	size_t off = 0;
	for (unsigned i = 0; i < (unsigned)id; i++)
		off += c->len[i];
	return str_from(c->data + off, c->len[id]);
}

static inline str_t ul_aor(const ul_record_t *r)
{
	return str_from(r->aor, r->aor_len);
}

/* Not expired at `now` (unix seconds). */
static inline bool ul_contact_valid(const ul_contact_t *c, int64_t now)
{
	return c->expires == 0 || c->expires > now;
}

/* ---------------------------------------------------------------- life cycle */

/*
 * Reads cfg->usrloc, opens the database (modes 1-3: it must answer now) and,
 * in modes 1 and 2, loads the "location" table. Call on the main thread before
 * workers start. 0, or negative with one line in errbuf.
 */
int ul_init(const ksr_cfg_t *cfg, char *errbuf, size_t errlen);
/* Starts the usrloc thread (expiry, write-back). */
int ul_start(void);
/* Stops the thread, flushes (mode 2), frees every table. Workers must have stopped. */
void ul_shutdown(void);
/* Registers the ul.* RPC methods (core/rpc). Main thread, before rpc_start. */
void ul_rpc_init(void);

/* cfg values other subsystems need */
bool ul_use_domain(void);
int ul_db_mode(void);
int ul_nat_bflag(void);
int32_t ul_server_id(void);

/* ---------------------------------------------------------------- tables */

/* The table named `name`, created on first use (and loaded in modes 1/2).
 * NULL for a name that is not [A-Za-z0-9_]{1,63} (it becomes an SQL identifier). */
ul_domain_t *ul_domain(str_t name);
str_t ul_domain_name(const ul_domain_t *d);
/* Visits every table. */
void ul_foreach_domain(void (*fn)(ul_domain_t *d, void *arg), void *arg);
unsigned ul_domain_size(const ul_domain_t *d); /* buckets */

/* ---------------------------------------------------------------- records */

/*
 * Locks aor's bucket and finds its record. In db_mode 3 the contacts are read
 * from the database: on a database error returns -ENOTCONN/-ETIMEDOUT/-EIO with
 * nothing locked. Otherwise 0, and ul_close() must follow.
 */
int ul_open(ul_domain_t *d, str_t aor, ul_ref_t *ref);
void ul_close(ul_ref_t *ref);

/*
 * Changes, with the bucket locked through ref. Each writes the database first
 * where the mode says so and leaves memory untouched if that fails (the
 * database's error code is returned). out, when not NULL, gets the contact as
 * stored (borrowed until ul_close). ul_update replaces c (c is invalid after).
 */
int ul_add(ul_ref_t *ref, const ul_info_t *ci, ul_contact_t **out);
int ul_update(ul_ref_t *ref, ul_contact_t *c, const ul_info_t *ci, ul_contact_t **out);
int ul_remove(ul_ref_t *ref, ul_contact_t *c);
int ul_remove_all(ul_ref_t *ref);

/* Contact of the record by URI (exact bytes), or by +sip.instance and reg-id
 * when instance is not empty (RFC 5626 §6). NULL if none. */
ul_contact_t *ul_find_contact(const ul_record_t *r, str_t uri, str_t instance, uint32_t reg_id);
ul_contact_t *ul_find_ruid(const ul_record_t *r, str_t ruid);

/* A copy of r with its contacts valid at now (owned: ul_record_free), NULL when
 * out of memory. For keeping a record beyond ul_close(). */
ul_record_t *ul_record_copy(const ul_record_t *r, int64_t now);
/*
 * Told of each contact the expiry timer removes (memory modes), with a record
 * of the AOR holding just that contact, which the handler owns (ul_record_free).
 * Called on the usrloc thread with the bucket locked: hand it over, don't work.
 */
void ul_set_expired_handler(void (*fn)(ul_record_t *expired));
void ul_record_free(ul_record_t *r);

/* Number of valid contacts of a record at now. */
unsigned ul_count_valid(const ul_record_t *r, int64_t now);

/*
 * Visits every record of a table with its bucket locked (memory tables; in
 * db_mode 3 the database is read in pages, one record at a time). fn returns
 * false to stop. Returns 0 or a database error.
 */
int ul_foreach_record(ul_domain_t *d, bool (*fn)(const ul_record_t *r, void *arg), void *arg);

/* ---------------------------------------------------------------- timer, db */

/* One round of the usrloc thread's work at `now`: expiry, write-back, row cleanup.
 * Exposed for tests and ul.flush. */
void ul_timer_run(int64_t now);
/* Writes every pending change now (mode 2). 0 or a database error. */
int ul_flush(void);
/* Database counts for ul.db_users / ul.db_contacts: >= 0 or negative error. */
long long ul_db_count(ul_domain_t *d, bool users);

/* ---------------------------------------------------------------- helpers */

/* Kamailio's METHOD_* bit for a method (0 for METH_OTHER). */
uint32_t ul_method_bit(sip_method_t m);
/* Parses "0.5", "1", "0.001" into 0..1000; false when not a q-value. */
bool ul_parse_q(str_t s, int32_t *out);
/* q as text: "0.5", "1" ... into buf (>= 8 bytes); "" for UL_Q_UNSET. */
str_t ul_q_str(int32_t q, char *buf);
