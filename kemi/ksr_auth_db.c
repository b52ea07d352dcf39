// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * KSR.auth_db: Kamailio's auth_db module for KEMI scripts, over core/auth's
 * subscriber lookups. The table is named by the script; the columns and the
 * database come from the auth section of the configuration. Columns listed in
 * auth.load_credentials are stored into their pseudo-variables after a
 * successful check (and by is_subscriber unless its flag 2 is set).
 */
#include "../core/auth/auth.h"
#include "../core/lib/log.h"
#include "engine_internal.h"
#include "ksr.h"
#include "ksr_auth.h"

static void store_creds(ksr_ctx_t *c, const auth_db_creds_t *cr)
{
	ksr_xval_t ignore;

	for (unsigned i = 0; i < cr->n; i++) {
		const char *pv = auth_db_cred_pv(i);
		ksr_arg_t args[2] = {{.s = str_cstr(pv)}, {.s = cr->value[i]}};
		if (!pv)
			continue;
		if (cr->is_null[i])
			ksr_pv_unset(c, args, &ignore);
		else
			ksr_pv_sets(c, args, &ignore);
	}
}

static int authenticate(ksr_ctx_t *c, str_t realm, str_t table, sip_hdr_type_t which, str_t method)
{
	auth_db_creds_t cr;

	realm = ksr_auth_value(c, realm);
	table = ksr_auth_value(c, table);
	if (!realm.len || !table.len) {
		char fn[64];
		str_t cid = sip_msg_callid(&c->msg->sip);
		LOG_MSG_ERR(AUTH, &cid, "%s: empty %s", ksr_fn_fullname(c->fn, fn, sizeof(fn)),
			    realm.len ? "table" : "realm");
		return AUTH_ERROR;
	}
	int rc = auth_db_verify(c->msg, realm, table, which, method, &cr);
	if (rc == AUTH_OK)
		store_creds(c, &cr);
	return rc;
}

int ksr_auth_db_auth_check(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	msg_t *m = c->msg;
	if (m->sip.method_id & (METH_ACK | METH_CANCEL))
		return AUTH_OK;
	sip_hdr_type_t which = m->sip.method_id == METH_REGISTER ? HDR_AUTHORIZATION : HDR_PROXY_AUTHORIZATION;
	int rc = authenticate(c, a[0].s, a[1].s, which, STR_NULL);
	if (rc != AUTH_OK)
		return rc;
	return auth_check_user(m, (int)(a[2].i & (AUTH_CHECK_ID | AUTH_CHECK_SKIPFWD)));
}

int ksr_auth_db_www_authenticate(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return authenticate(c, a[0].s, a[1].s, HDR_AUTHORIZATION, STR_NULL);
}

int ksr_auth_db_www_authenticate_method(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[2].s.len)
		return AUTH_ERROR;
	return authenticate(c, a[0].s, a[1].s, HDR_AUTHORIZATION, a[2].s);
}

int ksr_auth_db_is_subscriber(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	auth_db_creds_t cr;
	(void)r;
	if (!c->msg)
		return -1;
	int rc = auth_db_is_subscriber(c->msg, ksr_auth_value(c, a[0].s), ksr_auth_value(c, a[1].s), (int)a[2].i, &cr);
	if (rc > 0)
		store_creds(c, &cr);
	return rc;
}
