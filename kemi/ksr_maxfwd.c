// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * KSR.maxfwd: Max-Forwards (RFC 3261 §16.6 step 3, §8.1.1.6), with the return
 * codes of Kamailio's maxfwd module.
 *
 * The received header is never touched: a decrement replaces it in the
 * outgoing message (msg_hdr_replace), and later calls for the same message
 * read the value back from that replacement, so process_maxfwd() then
 * is_maxfwd_lt() see the decremented value as they do in Kamailio.
 */
#include <stdio.h>
#include <string.h>

#include "../core/lib/log.h"
#include "ksr.h"

/* Kamailio's max_limit modparam default: a larger received value is lowered to it. */
#define MAXFWD_MAX_LIMIT 70

static bool limit_ok(ksr_ctx_t *c, long long limit)
{
	if (limit >= 0 && limit <= 255)
		return true;
	char fn[64];
	str_t cid = sip_msg_callid(&c->msg->sip);
	LOG_MSG_ERR(LUA, &cid, "%s: invalid limit %lld (0..255)", ksr_fn_fullname(c->fn, fn, sizeof(fn)), limit);
	return false;
}

/* The number in a "Max-Forwards: N\r\n" line we wrote ourselves. */
static int value_of_line(str_t line)
{
	const char *p = memchr(line.s, ':', line.len);
	unsigned long long v;
	if (!p)
		return -2;
	str_t num = str_trim(str_from(p + 1, (size_t)(line.s + line.len - p - 1)));
	return str_to_u64(num, 255, &v) ? (int)v : -2;
}

/* Current value: -1 absent, -2 malformed, else 0..255. */
static int current_value(msg_t *m, sip_hdr_t **hp)
{
	sip_hdr_t *h = m->sip.first[HDR_MAX_FORWARDS];
	*hp = h;
	if (!h)
		return -1;
	if (m->edits && m->edits[h->index].replace)
		return value_of_line(m->edits[h->index].replace->text);
	unsigned long long v;
	return str_to_u64(h->body, 255, &v) ? (int)v : -2;
}

/*
 * process_maxfwd(limit): 2 when the header was missing and was added with
 * limit, 1 when decremented, -1 when it is already 0 (the script answers 483)
 * or limit is out of range, -2 on error.
 */
int ksr_maxfwd_process_maxfwd(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	msg_t *m = c->msg;
	sip_hdr_t *h;
	char line[64];
	if (!limit_ok(c, a[0].i))
		return -1;
	int v = current_value(m, &h);
	m->maxfwd_done = true; /* stateless/stateful forwarding must not do it again */
	if (v == -1) {
		/* before the first header, where Kamailio puts it; a second call for
		 * the same message adds a second header there too */
		int n = snprintf(line, sizeof(line), "Max-Forwards: %lld\r\n", a[0].i);
		return msg_hdr_insert_before(m, 0, str_from(line, (size_t)n)) == 0 ? 2 : -2;
	}
	if (v < 0)
		return -2;
	if (v == 0)
		return -1;
	if (v > MAXFWD_MAX_LIMIT)
		v = MAXFWD_MAX_LIMIT + 1;
	/* keep the name as the sender spelled it (Kamailio rewrites only the digits);
	 * built by hand: this runs for every request and snprintf is most of its cost */
	size_t nl = h->name.len > 32 ? 32 : h->name.len;
	char *p = line;
	memcpy(p, h->name.s, nl);
	p += nl;
	*p++ = ':';
	*p++ = ' ';
	int d = v - 1; /* 0..70 */
	if (d >= 10)
		*p++ = (char)('0' + d / 10);
	*p++ = (char)('0' + d % 10);
	*p++ = '\r';
	*p++ = '\n';
	return msg_hdr_replace(m, h->index, str_from(line, (size_t)(p - line))) == 0 ? 1 : -2;
}

/* is_maxfwd_lt(limit): 1 when the value is below limit, -1 when not (or bad
 * limit), -2 when there is no header, -3 when it is malformed. */
int ksr_maxfwd_is_maxfwd_lt(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	sip_hdr_t *h;
	if (!limit_ok(c, a[0].i))
		return -1;
	int v = current_value(c->msg, &h);
	if (v < 0)
		return v - 1;
	return v < a[0].i ? 1 : -1;
}
