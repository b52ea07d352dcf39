// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * KSR.auth: Kamailio's auth module for KEMI scripts, over core/auth.
 *
 * The realm and password arguments are values, as in Kamailio's KEMI; a value
 * that is a pseudo-variable name ("$fd", "$avp(pw)", "$sht(cred=>$fU)" is not
 * one: only names KSR.pv knows) is read instead, as Kamailio's native config
 * does, so credentials cached in a variable can be named directly. A literal
 * password that happens to be exactly such a name would be read as the
 * variable: spell it through KSR.pv.get() in that case.
 */
#include <stdlib.h>

#include "../core/auth/auth.h"
#include "../core/lib/log.h"
#include "engine_internal.h"
#include "ksr.h"
#include "ksr_auth.h"

/* A value, or the value of the pseudo-variable it names. STR_NULL when that is null. */
str_t ksr_auth_value(ksr_ctx_t *c, str_t v)
{
	ksr_xval_t x;
	char num[32];

	if (!v.len || v.s[0] != '$')
		return v;
	int rc = ksr_pv_lookup(c, v, &x);
	if (rc == -2)
		return v;
	if (rc <= 0)
		return STR_NULL;
	if (x.type == XVAL_STR)
		return x.s;
	int n = snprintf(num, sizeof(num), "%lld", x.i);
	return c->msg ? arena_strdup(c->msg->arena, str_from(num, (size_t)n)) : STR_NULL;
}

static void log_empty(ksr_ctx_t *c, const char *what)
{
	char fn[64];
	str_t cid = c->msg ? sip_msg_callid(&c->msg->sip) : STR_NULL;
	LOG_MSG_ERR(AUTH, &cid, "%s: empty %s", ksr_fn_fullname(c->fn, fn, sizeof(fn)), what);
}

static sip_hdr_type_t hdr_for_method(const msg_t *m)
{
	return m->sip.method_id == METH_REGISTER ? HDR_AUTHORIZATION : HDR_PROXY_AUTHORIZATION;
}

/* ---------------------------------------------------------------- checks */

static int pv_authenticate(ksr_ctx_t *c, str_t realm, str_t passwd, long long flags, sip_hdr_type_t which,
			   str_t method)
{
	auth_pw_src_t pw;

	realm = ksr_auth_value(c, realm);
	passwd = ksr_auth_value(c, passwd);
	if (!realm.len) {
		log_empty(c, "realm");
		return AUTH_ERROR;
	}
	if (!passwd.len) {
		/* e.g. no cached credentials for this user: Kamailio says -1 too */
		log_empty(c, "password");
		return AUTH_ERROR;
	}
	auth_pw_src_init(&pw, passwd, flags & AUTH_PVF_HA1);
	return auth_verify(c->msg, realm, which, method, &pw.src);
}

int ksr_auth_pv_auth_check(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	msg_t *m = c->msg;
	if (m->sip.method_id & (METH_ACK | METH_CANCEL))
		return AUTH_OK;
	int rc = pv_authenticate(c, a[0].s, a[1].s, a[2].i, hdr_for_method(m), STR_NULL);
	if (rc != AUTH_OK)
		return rc;
	/* auth_db's flag 2 (skip the check for INVITE, BYE ...) is not pv_auth_check's */
	return auth_check_user(m, (int)(a[3].i & AUTH_CHECK_ID));
}

int ksr_auth_pv_proxy_authenticate(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return pv_authenticate(c, a[0].s, a[1].s, a[2].i, HDR_PROXY_AUTHORIZATION, STR_NULL);
}

int ksr_auth_pv_www_authenticate(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return pv_authenticate(c, a[0].s, a[1].s, a[2].i, HDR_AUTHORIZATION, STR_NULL);
}

int ksr_auth_pv_www_authenticate_method(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[3].s.len) {
		log_empty(c, "method");
		return AUTH_ERROR;
	}
	return pv_authenticate(c, a[0].s, a[1].s, a[2].i, HDR_AUTHORIZATION, a[3].s);
}

int ksr_auth_has_credentials(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	str_t realm = ksr_auth_value(c, a[0].s);
	return realm.len ? auth_has_credentials(c->msg, realm) : -1;
}

int ksr_auth_consume_credentials(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	return auth_consume_credentials(c->msg);
}

/* ---------------------------------------------------------------- challenges */

static int challenge(ksr_ctx_t *c, str_t realm, long long flags, sip_hdr_type_t which)
{
	if (c->msg->sip.method_id & (METH_ACK | METH_CANCEL))
		return 1; /* nothing to challenge: Kamailio's auth_challenge says 1 too */
	return auth_challenge_send(c->msg, ksr_auth_value(c, realm), (int)flags, which);
}

int ksr_auth_auth_challenge(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return challenge(c, a[0].s, a[1].i, hdr_for_method(c->msg));
}

int ksr_auth_www_challenge(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return challenge(c, a[0].s, a[1].i, HDR_AUTHORIZATION);
}

int ksr_auth_proxy_challenge(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return challenge(c, a[0].s, a[1].i, HDR_PROXY_AUTHORIZATION);
}

int ksr_auth_auth_get_www_authenticate(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	ksr_arg_t set[2];
	str_t realm = c->msg ? ksr_auth_value(c, a[0].s) : a[0].s;
	str_t h = auth_challenge_hdrs(c->msg, realm, (int)a[1].i, HDR_AUTHORIZATION);

	if (!h.s)
		return -1;
	set[0].s = a[2].s;
	set[1].s = h;
	int rc = ksr_pv_sets(c, set, r);
	if (!c->msg)
		free((char *)h.s); /* no message arena: auth_challenge_hdrs malloc'ed it */
	return rc > 0 ? 1 : -1;
}

int ksr_auth_auth_algorithm(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	int rc = auth_set_algorithm(a[0].s);
	if (rc < 0) {
		str_t cid = c->msg ? sip_msg_callid(&c->msg->sip) : STR_NULL;
		LOG_MSG_ERR(AUTH, &cid, "KSR.auth.auth_algorithm: \"%.*s\" is not MD5, MD5-sess, SHA-256 or SHA-256-sess",
			    STR_FMT(a[0].s));
	}
	return rc;
}
