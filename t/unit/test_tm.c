// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Transaction matching in core/tm without a network: requests are parsed as
 * received, t_newtran / t_check_trans are asked what they make of them
 * (RFC 3261 §17.2.3 with the RFC 2543 fallback, ACK and CANCEL matching),
 * and t_precheck_trans recognises a request being handled. Nothing here makes
 * tm send anything (no reply exists to retransmit).
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg/cfg.h"
#include "core/msg/msg.h"
#include "core/tm/tm.h"
#include "core/tm/tm_int.h"

static ksr_cfg_t cfg;
static bool inited;

typedef struct {
	msg_t m;
	arena_t a;
	char *buf;
} req_t;

static req_t *req_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static req_t *req_new(const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	req_t *r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	arena_init(&r->a, 8192);
	r->buf = strdup(text);
	net_rcv_t rcv = {.proto = SIP_PROTO_UDP};
	ck_assert_int_eq(msg_init(&r->m, &r->a, &rcv, r->buf, strlen(r->buf)), SIP_OK);
	return r;
}

static void req_free(req_t *r)
{
	tm_msg_done(&r->m);
	arena_free(&r->a);
	free(r->buf);
	free(r);
}

#define INVITE(branch, sentby, cid, ftag, totag, ruri) \
	req_new("INVITE %s SIP/2.0\r\n" \
		"Via: SIP/2.0/UDP %s;branch=%s\r\n" \
		"Max-Forwards: 70\r\n" \
		"From: <sip:alice@example.com>;tag=%s\r\n" \
		"To: <sip:bob@example.com>%s%s\r\n" \
		"Call-ID: %s\r\n" \
		"CSeq: 1 INVITE\r\n" \
		"Content-Length: 0\r\n\r\n", \
		ruri, sentby, branch, ftag, (totag)[0] ? ";tag=" : "", totag, cid)

#define REQ(method, cseqm, branch, sentby, cid, ftag, totag, ruri) \
	req_new("%s %s SIP/2.0\r\n" \
		"Via: SIP/2.0/UDP %s;branch=%s\r\n" \
		"Max-Forwards: 70\r\n" \
		"From: <sip:alice@example.com>;tag=%s\r\n" \
		"To: <sip:bob@example.com>%s%s\r\n" \
		"Call-ID: %s\r\n" \
		"CSeq: 1 %s\r\n" \
		"Content-Length: 0\r\n\r\n", \
		method, ruri, sentby, branch, ftag, (totag)[0] ? ";tag=" : "", totag, cid, cseqm)

static void setup(void)
{
	char err[256];
	if (!inited) {
		ck_assert_int_eq(cfg_defaults(&cfg, err, sizeof(err)), 0);
		ck_assert_int_eq(tm_init(&cfg), 0);
		inited = true;
	}
}

static void teardown(void)
{
}

static const char *R = "sip:bob@example.com";

START_TEST(retransmission_matches)
{
	req_t *a = INVITE("z9hG4bK-r1", "10.1.1.1:5060", "cid-r1", "f1", "", R);
	ck_assert_int_eq(tm_newtran(&a->m), 1);
	ck_assert_ptr_nonnull(a->m.tm);
	ck_assert_int_eq(tm_newtran(&a->m), 1); /* the same message again: its own cell */

	req_t *b = INVITE("z9hG4bK-r1", "10.1.1.1:5060", "cid-r1", "f1", "", R);
	ck_assert_int_eq(tm_check_trans(&b->m), 0); /* retransmission absorbed */
	ck_assert(b->m.tm_absorbed);
	req_t *c = INVITE("z9hG4bK-r1", "10.1.1.1:5060", "cid-r1", "f1", "", R);
	ck_assert_int_eq(tm_newtran(&c->m), 0);
	ck_assert_ptr_null(c->m.tm);

	/* a third copy */
	req_t *d = INVITE("z9hG4bK-r1", "10.1.1.1:5060", "cid-r1", "f1", "", R);
	ck_assert_int_eq(tm_check_trans(&d->m), 0);
	req_free(b);
	req_free(c);
	req_free(d);
	req_free(a);
}
END_TEST

START_TEST(different_branch_or_sentby_no_match)
{
	req_t *a = INVITE("z9hG4bK-d1", "10.1.1.1:5060", "cid-d1", "f1", "", R);
	ck_assert_int_eq(tm_newtran(&a->m), 1);
	req_t *b = INVITE("z9hG4bK-d2", "10.1.1.1:5060", "cid-d1", "f1", "", R);
	ck_assert_int_eq(tm_check_trans(&b->m), -1);
	req_t *c = INVITE("z9hG4bK-d1", "10.1.1.2:5060", "cid-d1", "f1", "", R);
	ck_assert_int_eq(tm_check_trans(&c->m), -1);
	req_t *d = INVITE("z9hG4bK-d1", "10.1.1.1:5070", "cid-d1", "f1", "", R);
	ck_assert_int_eq(tm_check_trans(&d->m), -1);
	/* the same branch for another method is another transaction (§17.2.3) */
	req_t *e = REQ("OPTIONS", "OPTIONS", "z9hG4bK-d1", "10.1.1.1:5060", "cid-d1", "f1", "", R);
	ck_assert_int_eq(tm_check_trans(&e->m), -1);
	ck_assert_int_eq(tm_newtran(&e->m), 1);
	req_free(b);
	req_free(c);
	req_free(d);
	req_free(e);
	req_free(a);
}
END_TEST

START_TEST(cancel_finds_its_invite)
{
	req_t *inv = INVITE("z9hG4bK-c1", "10.1.1.1:5060", "cid-c1", "f1", "", R);
	ck_assert_int_eq(tm_newtran(&inv->m), 1);
	req_t *cancel = REQ("CANCEL", "CANCEL", "z9hG4bK-c1", "10.1.1.1:5060", "cid-c1", "f1", "", R);
	ck_assert_int_eq(tm_check_trans(&cancel->m), 1);
	ck_assert(!cancel->m.tm_absorbed);
	req_t *other = REQ("CANCEL", "CANCEL", "z9hG4bK-c2", "10.1.1.1:5060", "cid-c1", "f1", "", R);
	ck_assert_int_eq(tm_check_trans(&other->m), -1);
	req_free(cancel);
	req_free(other);
	req_free(inv);
}
END_TEST

START_TEST(ack_matching)
{
	req_t *inv = INVITE("z9hG4bK-a1", "10.1.1.1:5060", "cid-a1", "f1", "", R);
	ck_assert_int_eq(tm_newtran(&inv->m), 1);
	tm_cell_t *c = inv->m.tm;
	/* no final yet: an ACK with the INVITE's branch is not one of ours to absorb */
	req_t *ack0 = REQ("ACK", "ACK", "z9hG4bK-a1", "10.1.1.1:5060", "cid-a1", "f1", "tt", R);
	ck_assert_int_eq(tm_check_trans(&ack0->m), -1);
	/* as if a 486 had gone upstream */
	pthread_mutex_lock(&c->lock);
	c->uas_status = 486;
	snprintf(c->totag, sizeof(c->totag), "tt");
	pthread_mutex_unlock(&c->lock);
	req_t *ack = REQ("ACK", "ACK", "z9hG4bK-a1", "10.1.1.1:5060", "cid-a1", "f1", "tt", R);
	ck_assert_int_eq(tm_check_trans(&ack->m), 0);
	ck_assert(ack->m.tm_absorbed);
	ck_assert(c->acked);
	/* an ACK for a 2xx is a new transaction: another branch, nothing matches */
	req_t *ack2 = REQ("ACK", "ACK", "z9hG4bK-a2", "10.1.1.1:5060", "cid-a1", "f1", "tt", R);
	ck_assert_int_eq(tm_check_trans(&ack2->m), -1);
	ck_assert_int_eq(tm_newtran(&ack2->m), -1);
	req_free(ack0);
	req_free(ack);
	req_free(ack2);
	req_free(inv);
}
END_TEST

START_TEST(rfc2543_fallback)
{
	/* no magic cookie: Call-ID, CSeq, From tag, To tag, R-URI (and top Via) decide */
	req_t *a = INVITE("old1", "10.2.2.2:5060", "cid-o1", "f9", "", R);
	ck_assert_int_eq(tm_newtran(&a->m), 1);
	req_t *b = INVITE("old1", "10.2.2.2:5060", "cid-o1", "f9", "", R);
	ck_assert_int_eq(tm_check_trans(&b->m), 0);
	req_t *c = INVITE("old1", "10.2.2.2:5060", "cid-o1", "f9", "", "sip:carol@example.com");
	ck_assert_int_eq(tm_check_trans(&c->m), -1);
	req_t *d = INVITE("old1", "10.2.2.2:5060", "cid-o1", "f8", "", R);
	ck_assert_int_eq(tm_check_trans(&d->m), -1);
	req_t *e = INVITE("old1", "10.2.2.2:5060", "cid-o2", "f9", "", R);
	ck_assert_int_eq(tm_check_trans(&e->m), -1);
	req_t *f = INVITE("z9hG4bK-new", "10.2.2.2:5060", "cid-o1", "f9", "", R);
	ck_assert_int_eq(tm_check_trans(&f->m), -1); /* RFC 3261 branch: not the old one */
	req_free(b);
	req_free(c);
	req_free(d);
	req_free(e);
	req_free(f);
	req_free(a);
}
END_TEST

START_TEST(precheck)
{
	req_t *a = INVITE("z9hG4bK-p1", "10.1.1.1:5060", "cid-p1", "f1", "", R);
	req_t *b = INVITE("z9hG4bK-p1", "10.1.1.1:5060", "cid-p1", "f1", "", R);
	req_t *c = INVITE("z9hG4bK-p2", "10.1.1.1:5060", "cid-p1", "f1", "", R);
	ck_assert_int_eq(tm_precheck(&a->m), -1); /* first: registered */
	ck_assert_int_eq(tm_precheck(&a->m), -1); /* the same message asking again */
	ck_assert_int_eq(tm_precheck(&b->m), 1);  /* a copy while a is handled */
	ck_assert_int_eq(tm_precheck(&c->m), -1); /* another transaction */
	tm_msg_done(&a->m);                       /* a is done */
	req_t *d = INVITE("z9hG4bK-p1", "10.1.1.1:5060", "cid-p1", "f1", "", R);
	ck_assert_int_eq(tm_precheck(&d->m), -1);
	req_free(a);
	req_free(b);
	req_free(c);
	req_free(d);
}
END_TEST

START_TEST(stats_count_cells)
{
	tm_stats_t s0, s1;
	tm_get_stats(&s0);
	req_t *a = REQ("MESSAGE", "MESSAGE", "z9hG4bK-s1", "10.1.1.1:5060", "cid-s1", "f1", "", R);
	ck_assert_int_eq(tm_newtran(&a->m), 1);
	tm_get_stats(&s1);
	ck_assert_uint_eq(s1.created, s0.created + 1);
	ck_assert_uint_eq(s1.current, s0.current + 1);
	req_free(a);
}
END_TEST

static Suite *tm_suite(void)
{
	Suite *s = suite_create("tm");
	TCase *tc = tcase_create("matching");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, retransmission_matches);
	tcase_add_test(tc, different_branch_or_sentby_no_match);
	tcase_add_test(tc, cancel_finds_its_invite);
	tcase_add_test(tc, ack_matching);
	tcase_add_test(tc, rfc2543_fallback);
	tcase_add_test(tc, precheck);
	tcase_add_test(tc, stats_count_cells);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tm_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
