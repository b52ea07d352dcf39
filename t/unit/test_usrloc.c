// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * usrloc (memory table: operations, q order, expiry, instance/reg-id matching,
 * striped locks under several threads) and the registrar's save() rules
 * (Call-ID/CSeq ordering, "*", expires limits, max_contacts) on parsed messages.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cfg/cfg.h"
#include "core/lib/stats.h"
#include "core/msg/msg.h"
#include "core/registrar/registrar.h"
#include "core/usrloc/usrloc.h"
#include "core/usrloc/ul_int.h" /* ul_contact_new */

static ksr_cfg_t cfg;

static void setup(void)
{
	char err[256];
	ck_assert_int_eq(cfg_defaults(&cfg, err, sizeof(err)), 0);
	cfg.usrloc.hash_size = 4; /* 16 buckets: threads collide on purpose */
	cfg.registrar.max_contacts = 3;
	ck_assert_msg(ul_init(&cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(reg_init(&cfg), 0);
}

static void teardown(void)
{
	ul_shutdown();
	cfg_free(&cfg);
}

static ul_domain_t *loc(void)
{
	ul_domain_t *d = ul_domain(STR_LIT("location"));
	ck_assert_ptr_nonnull(d);
	return d;
}

static ul_info_t info(const char *uri, int64_t expires, int32_t q)
{
	ul_info_t ci = {.expires = expires, .q = q, .cseq = 1, .methods = UL_METHODS_ALL};
	ci.s[UL_CONTACT] = str_cstr(uri);
	ci.s[UL_CALLID] = STR_LIT("call-1");
	return ci;
}

static int add(const char *aor, const char *uri, int64_t expires, int32_t q)
{
	ul_ref_t ref;
	ul_info_t ci = info(uri, expires, q);
	ck_assert_int_eq(ul_open(loc(), str_cstr(aor), &ref), 0);
	int rc = ul_add(&ref, &ci, NULL);
	ul_close(&ref);
	return rc;
}

static unsigned count(const char *aor)
{
	ul_ref_t ref;
	ck_assert_int_eq(ul_open(loc(), str_cstr(aor), &ref), 0);
	unsigned n = ul_count_valid(ref.r, time(NULL));
	ul_close(&ref);
	return n;
}

static uint64_t stat_of(const char *name)
{
	stat_counter_t *c = stat_find("usrloc", name);
	ck_assert_ptr_nonnull(c);
	return stat_get(c);
}

/* ---------------------------------------------------------------- table */

START_TEST(add_find_update_remove)
{
	int64_t now = time(NULL);
	ul_ref_t ref;

	ck_assert_int_eq(add("alice", "sip:alice@192.0.2.1", now + 60, UL_Q_UNSET), 0);
	ck_assert_int_eq(add("alice", "sip:alice@192.0.2.2", now + 60, UL_Q_UNSET), 0);
	ck_assert_uint_eq(count("alice"), 2);
	ck_assert_uint_eq(count("bob"), 0);
	ck_assert_uint_eq(stat_of("registered_users"), 1);
	ck_assert_uint_eq(stat_of("contacts"), 2);

	ck_assert_int_eq(ul_open(loc(), STR_LIT("alice"), &ref), 0);
	ul_contact_t *c = ul_find_contact(ref.r, STR_LIT("sip:alice@192.0.2.2"), STR_NULL, 0);
	ck_assert_ptr_nonnull(c);
	str_t ruid = ul_cstr(c, UL_RUID);
	char ruid_copy[64];
	ck_assert_uint_lt(ruid.len, sizeof(ruid_copy));
	memcpy(ruid_copy, ruid.s, ruid.len);
	ruid_copy[ruid.len] = '\0';
	ul_info_t ci = info("sip:alice@192.0.2.2", now + 120, 500);
	ci.cseq = 2;
	ul_contact_t *u;
	ck_assert_int_eq(ul_update(&ref, c, &ci, &u), 0);
	ck_assert_int_eq(u->cseq, 2);
	ck_assert_int_eq(u->expires, now + 120);
	/* the binding keeps its ruid across updates: it is the database key */
	ck_assert(str_eq(ul_cstr(u, UL_RUID), str_cstr(ruid_copy)));
	ck_assert_ptr_eq(ul_find_ruid(ref.r, str_cstr(ruid_copy)), u);
	ck_assert_int_eq(ul_remove(&ref, u), 0);
	ul_close(&ref);
	ck_assert_uint_eq(count("alice"), 1);
	ck_assert_uint_eq(stat_of("contacts"), 1);

	ck_assert_int_eq(ul_open(loc(), STR_LIT("alice"), &ref), 0);
	ck_assert_int_eq(ul_remove_all(&ref), 0);
	ck_assert_ptr_null(ref.r);
	ul_close(&ref);
	ck_assert_uint_eq(stat_of("registered_users"), 0);
	ck_assert_uint_eq(stat_of("contacts"), 0);
}
END_TEST

START_TEST(strings_in_one_allocation)
{
	ul_info_t ci = info("sip:x@192.0.2.9;transport=tcp", 0, 1000);
	ci.s[UL_PATH] = STR_LIT("<sip:edge.example.com;lr>");
	ci.s[UL_UA] = STR_LIT("phone/1.0");
	ci.s[UL_INSTANCE] = STR_LIT("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>");
	ul_contact_t *c = ul_contact_new(&ci);
	ck_assert_ptr_nonnull(c);
	ck_assert(str_eq(ul_cstr(c, UL_CONTACT), ci.s[UL_CONTACT]));
	ck_assert(str_eq(ul_cstr(c, UL_PATH), ci.s[UL_PATH]));
	ck_assert(str_eq(ul_cstr(c, UL_UA), ci.s[UL_UA]));
	ck_assert(str_eq(ul_cstr(c, UL_INSTANCE), ci.s[UL_INSTANCE]));
	ck_assert_uint_eq(ul_cstr(c, UL_RECEIVED).len, 0);
	ck_assert_uint_gt(ul_cstr(c, UL_RUID).len, 5);
	/* the head is small: no fixed-size buffers */
	ck_assert_uint_le(sizeof(ul_contact_t), 80);
	free(c);
}
END_TEST

START_TEST(q_order)
{
	int64_t now = time(NULL);
	ul_ref_t ref;
	const int32_t want[] = {1000, 800, 800, 500, UL_Q_UNSET};

	ck_assert_int_eq(add("q", "sip:a@h", now + 60, 500), 0);
	ck_assert_int_eq(add("q", "sip:b@h", now + 60, UL_Q_UNSET), 0);
	ck_assert_int_eq(add("q", "sip:c@h", now + 60, 800), 0);
	ck_assert_int_eq(add("q", "sip:d@h", now + 60, 1000), 0);
	ck_assert_int_eq(add("q", "sip:e@h", now + 60, 800), 0);
	ck_assert_int_eq(ul_open(loc(), STR_LIT("q"), &ref), 0);
	unsigned i = 0;
	for (ul_contact_t *c = ref.r->contacts; c; c = c->next, i++)
		ck_assert_int_eq(c->q, want[i]);
	/* equal q: the older binding first, as Kamailio orders them */
	ck_assert(str_eq(ul_cstr(ref.r->contacts->next, UL_CONTACT), STR_LIT("sip:c@h")));
	ul_close(&ref);
	ck_assert_uint_eq(i, 5);
}
END_TEST

START_TEST(q_values)
{
	int32_t q;
	char buf[8];
	ck_assert(ul_parse_q(STR_LIT("0.5"), &q) && q == 500);
	ck_assert(ul_parse_q(STR_LIT("1"), &q) && q == 1000);
	ck_assert(ul_parse_q(STR_LIT("1.000"), &q) && q == 1000);
	ck_assert(ul_parse_q(STR_LIT("0.001"), &q) && q == 1);
	ck_assert(!ul_parse_q(STR_LIT("1.5"), &q));
	ck_assert(!ul_parse_q(STR_LIT("0.0001"), &q));
	ck_assert(!ul_parse_q(STR_LIT("abc"), &q));
	ck_assert(str_eq(ul_q_str(500, buf), STR_LIT("0.5")));
	ck_assert(str_eq(ul_q_str(1000, buf), STR_LIT("1")));
	ck_assert(str_eq(ul_q_str(0, buf), STR_LIT("0")));
	ck_assert(str_eq(ul_q_str(125, buf), STR_LIT("0.125")));
}
END_TEST

START_TEST(expiry)
{
	int64_t now = time(NULL);

	ck_assert_int_eq(add("exp", "sip:short@h", now + 1, UL_Q_UNSET), 0);
	ck_assert_int_eq(add("exp", "sip:long@h", now + 100, UL_Q_UNSET), 0);
	ck_assert_int_eq(add("perm", "sip:perm@h", 0, UL_Q_UNSET), 0);
	ck_assert_int_eq(add("gone", "sip:gone@h", now + 1, UL_Q_UNSET), 0);
	ul_timer_run(now + 5);
	ul_ref_t ref;
	ck_assert_int_eq(ul_open(loc(), STR_LIT("exp"), &ref), 0);
	ck_assert_ptr_nonnull(ref.r);
	ck_assert_ptr_null(ul_find_contact(ref.r, STR_LIT("sip:short@h"), STR_NULL, 0));
	ck_assert_ptr_nonnull(ul_find_contact(ref.r, STR_LIT("sip:long@h"), STR_NULL, 0));
	ul_close(&ref);
	/* an emptied record goes; a permanent contact stays */
	ck_assert_int_eq(ul_open(loc(), STR_LIT("gone"), &ref), 0);
	ck_assert_ptr_null(ref.r);
	ul_close(&ref);
	ck_assert_uint_eq(count("perm"), 1);
	ck_assert_uint_eq(stat_of("location-expires"), 2);
	ck_assert_uint_eq(stat_of("registered_users"), 2);
}
END_TEST

START_TEST(instance_reg_id)
{
	int64_t now = time(NULL);
	ul_ref_t ref;
	str_t inst = STR_LIT("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>");

	ck_assert_int_eq(ul_open(loc(), STR_LIT("ob"), &ref), 0);
	for (uint32_t id = 1; id <= 2; id++) {
		ul_info_t ci = info(id == 1 ? "sip:ob@192.0.2.1:5060" : "sip:ob@192.0.2.1:5062", now + 60, UL_Q_UNSET);
		ci.s[UL_INSTANCE] = inst;
		ci.reg_id = id;
		ck_assert_int_eq(ul_add(&ref, &ci, NULL), 0);
	}
	/* RFC 5626: a flow is (instance, reg-id), whatever its Contact URI now */
	ul_contact_t *c = ul_find_contact(ref.r, STR_LIT("sip:ob@198.51.100.7:4000"), inst, 2);
	ck_assert_ptr_nonnull(c);
	ck_assert(str_eq(ul_cstr(c, UL_CONTACT), STR_LIT("sip:ob@192.0.2.1:5062")));
	ck_assert_ptr_null(ul_find_contact(ref.r, STR_LIT("sip:ob@192.0.2.1:5060"), inst, 3));
	ck_assert_ptr_null(ul_find_contact(ref.r, STR_LIT("sip:ob@192.0.2.1:5060"),
					   STR_LIT("<urn:uuid:00000000-0000-0000-0000-000000000000>"), 1));
	/* without an instance, the URI decides */
	ck_assert_ptr_nonnull(ul_find_contact(ref.r, STR_LIT("sip:ob@192.0.2.1:5060"), STR_NULL, 0));
	ul_close(&ref);
}
END_TEST

START_TEST(bad_table_names)
{
	ck_assert_ptr_null(ul_domain(STR_LIT("location; DROP TABLE x")));
	ck_assert_ptr_null(ul_domain(STR_LIT("")));
	ck_assert_ptr_nonnull(ul_domain(STR_LIT("other_table")));
	ck_assert_ptr_eq(ul_domain(STR_LIT("other_table")), ul_domain(STR_LIT("other_table")));
}
END_TEST

/* ---------------------------------------------------------------- threads */

#define NTHREADS 4
#define PER_THREAD 3000

static void *hammer(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	int64_t now = time(NULL);
	char aor[32], uri[64];

	for (unsigned i = 0; i < PER_THREAD; i++) {
		/* shared AORs: every thread writes to the same records too */
		snprintf(aor, sizeof(aor), "u%u", i % 500);
		snprintf(uri, sizeof(uri), "sip:t%u-%u@192.0.2.1", t, i);
		ul_ref_t ref;
		ul_info_t ci = info(uri, now + 600, UL_Q_UNSET);
		if (ul_open(loc(), str_cstr(aor), &ref) != 0 || ul_add(&ref, &ci, NULL) != 0)
			return (void *)1;
		ul_close(&ref);
	}
	for (unsigned i = 0; i < PER_THREAD; i += 2) {
		snprintf(aor, sizeof(aor), "u%u", i % 500);
		snprintf(uri, sizeof(uri), "sip:t%u-%u@192.0.2.1", t, i);
		ul_ref_t ref;
		if (ul_open(loc(), str_cstr(aor), &ref) != 0)
			return (void *)1;
		ul_contact_t *c = ul_find_contact(ref.r, str_cstr(uri), STR_NULL, 0);
		int rc = c ? ul_remove(&ref, c) : -1;
		ul_close(&ref);
		if (rc)
			return (void *)1;
	}
	return NULL;
}

static bool count_all(const ul_record_t *r, void *arg)
{
	unsigned *n = arg;
	for (const ul_contact_t *c = r->contacts; c; c = c->next)
		(*n)++;
	return true;
}

START_TEST(striped_locks_threads)
{
	pthread_t th[NTHREADS];
	for (unsigned t = 0; t < NTHREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, hammer, (void *)(uintptr_t)t), 0);
	for (unsigned t = 0; t < NTHREADS; t++) {
		void *rc;
		pthread_join(th[t], &rc);
		ck_assert_ptr_null(rc);
	}
	unsigned n = 0;
	ck_assert_int_eq(ul_foreach_record(loc(), count_all, &n), 0);
	ck_assert_uint_eq(n, NTHREADS * PER_THREAD / 2);
	ck_assert_uint_eq(stat_of("contacts"), NTHREADS * PER_THREAD / 2);
	/* i % 500 is even exactly when i is: those AORs lost every contact, and their records */
	ck_assert_uint_eq(stat_of("registered_users"), 250);
}
END_TEST

/* ---------------------------------------------------------------- registrar save() */

static arena_t arena;
static msg_t msg;

static msg_t *parse(const char *text)
{
	net_rcv_t rcv = {.proto = SIP_PROTO_UDP};
	rcv.src.sin.sin_family = AF_INET;
	rcv.src.sin.sin_port = htons(5060);
	rcv.src.sin.sin_addr.s_addr = htonl(0xc0000201);
	arena_reset(&arena);
	ck_assert_int_eq(msg_init(&msg, &arena, &rcv, text, strlen(text)), SIP_OK);
	ck_assert_int_eq(sip_msg_validate(&msg.sip), SIP_OK);
	return &msg;
}

/* A REGISTER for bob; the reply is not sent (flag 2): the return value tells. */
static int reg(const char *callid, unsigned cseq, const char *contact, const char *expires)
{
	static char buf[2048];
	snprintf(buf, sizeof(buf),
		 "REGISTER sip:example.com SIP/2.0\r\n"
		 "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK%u%s\r\n"
		 "Max-Forwards: 70\r\n"
		 "From: <sip:bob@example.com>;tag=1\r\n"
		 "To: <sip:bob@example.com>\r\n"
		 "Call-ID: %s\r\n"
		 "CSeq: %u REGISTER\r\n"
		 "%s%s%s"
		 "%s%s%s"
		 "Content-Length: 0\r\n\r\n",
		 cseq, callid, callid, cseq, contact ? "Contact: " : "", contact ? contact : "", contact ? "\r\n" : "",
		 expires ? "Expires: " : "", expires ? expires : "", expires ? "\r\n" : "");
	return reg_save(parse(buf), STR_LIT("location"), REG_SAVE_NOREPLY, STR_NULL, STR_NULL);
}

static void reg_setup(void)
{
	setup();
	arena_init(&arena, 16384);
}

static void reg_teardown(void)
{
	arena_free(&arena);
	teardown();
}

START_TEST(save_callid_cseq)
{
	ck_assert_int_eq(reg("a", 10, "<sip:bob@192.0.2.1>", "600"), 1);
	/* same Call-ID, higher CSeq: refresh */
	ck_assert_int_eq(reg("a", 11, "<sip:bob@192.0.2.1>", "600"), 2);
	/* same Call-ID, lower CSeq: out of order, refused (400) */
	ck_assert_int_eq(reg("a", 9, "<sip:bob@192.0.2.1>", "0"), -1);
	ck_assert_uint_eq(count("bob"), 1);
	/* equal CSeq just after: a retransmission, accepted and changing nothing */
	ck_assert_int_eq(reg("a", 11, "<sip:bob@192.0.2.1>", "0"), 2);
	ck_assert_uint_eq(count("bob"), 1);
	/* another Call-ID may do anything, whatever its CSeq */
	ck_assert_int_eq(reg("b", 1, "<sip:bob@192.0.2.1>", "0"), 3);
	ck_assert_uint_eq(count("bob"), 0);
}
END_TEST

START_TEST(save_star_and_limits)
{
	ck_assert_int_eq(reg("a", 1, "<sip:bob@192.0.2.1>, <sip:bob@192.0.2.2>", "600"), 1);
	ck_assert_uint_eq(count("bob"), 2);
	/* "*" needs Expires: 0 (with another Contact the parser refuses it already) */
	ck_assert_int_eq(reg("a", 2, "*", "600"), -1);
	ck_assert_uint_eq(count("bob"), 2);
	/* below min_expires: 423, nothing stored */
	ck_assert_int_eq(reg("a", 4, "<sip:bob@192.0.2.3>", "5"), -1);
	/* max_contacts = 3 */
	ck_assert_int_eq(reg("a", 5, "<sip:bob@192.0.2.3>, <sip:bob@192.0.2.4>", "600"), -1);
	ck_assert_uint_eq(count("bob"), 2);
	ck_assert_int_eq(reg("a", 6, "<sip:bob@192.0.2.3>", "600"), 1);
	ck_assert_uint_eq(count("bob"), 3);
	/* a query lists and changes nothing */
	ck_assert_int_eq(reg("a", 7, NULL, NULL), 4);
	ck_assert_int_eq(reg("a", 8, "*", "0"), 3);
	ck_assert_uint_eq(count("bob"), 0);
}
END_TEST

START_TEST(save_bad_values)
{
	ck_assert_int_eq(reg("a", 1, "<sip:bob@192.0.2.1>;expires=ten", NULL), -1);
	ck_assert_int_eq(reg("a", 2, "<sip:bob@192.0.2.1>;q=2", NULL), -1);
	ck_assert_int_eq(reg("a", 3, "<sip:bob@192.0.2.1>;+sip.instance=\"<urn:x>\";reg-id=abc", NULL), -1);
	ck_assert_uint_eq(count("bob"), 0);
	/* default_expires when nothing says */
	ck_assert_int_eq(reg("a", 4, "<sip:bob@192.0.2.1>", NULL), 1);
	ul_ref_t ref;
	ck_assert_int_eq(ul_open(loc(), STR_LIT("bob"), &ref), 0);
	ck_assert_int_ge(ref.r->contacts->expires - time(NULL), 3599);
	ul_close(&ref);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("usrloc");
	TCase *t = tcase_create("table");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, add_find_update_remove);
	tcase_add_test(t, strings_in_one_allocation);
	tcase_add_test(t, q_order);
	tcase_add_test(t, q_values);
	tcase_add_test(t, expiry);
	tcase_add_test(t, instance_reg_id);
	tcase_add_test(t, bad_table_names);
	tcase_add_test(t, striped_locks_threads);
	suite_add_tcase(s, t);

	TCase *r = tcase_create("registrar");
	tcase_add_checked_fixture(r, reg_setup, reg_teardown);
	tcase_add_test(r, save_callid_cseq);
	tcase_add_test(r, save_star_and_limits);
	tcase_add_test(r, save_bad_values);
	suite_add_tcase(s, r);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
