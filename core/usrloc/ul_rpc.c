// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * ul.* RPC methods, with Kamailio's result shapes. They run on the main thread
 * and go through the same locked access as the workers; in db_mode 3 they read
 * and write the database like everything else.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../rpc/rpc.h"
#include "ul_int.h"

static const char not_set[] = "[not set]";

static void kstr_or_unset(json_w_t *w, const char *k, str_t v)
{
	json_w_key(w, k);
	if (v.len)
		json_w_str(w, v);
	else
		json_w_cstr(w, not_set);
}

static void write_contact(json_w_t *w, const ul_contact_t *c, int64_t now)
{
	char q[8];
	static const char *const states[] = {"CS_NEW", "CS_SYNC", "CS_DIRTY"};

	json_w_obj_begin(w);
	json_w_key(w, "Contact");
	json_w_obj_begin(w);
	json_w_kstr(w, "Address", ul_cstr(c, UL_CONTACT));
	json_w_key(w, "Expires");
	if (c->expires == 0)
		json_w_cstr(w, "permanent");
	else if (c->expires <= now)
		json_w_cstr(w, "expired");
	else
		json_w_int(w, c->expires - now);
	json_w_key(w, "Q");
	if (c->q < 0)
		json_w_int(w, -1);
	else
		json_w_str(w, ul_q_str(c->q, q));
	json_w_kstr(w, "Call-ID", ul_cstr(c, UL_CALLID));
	json_w_kuint(w, "CSeq", c->cseq);
	json_w_kstr(w, "User-Agent", ul_cstr(c, UL_UA));
	kstr_or_unset(w, "Received", ul_cstr(c, UL_RECEIVED));
	kstr_or_unset(w, "Path", ul_cstr(c, UL_PATH));
	json_w_kcstr(w, "State", states[c->state < 3 ? c->state : 0]);
	json_w_kuint(w, "Flags", c->flags);
	json_w_kuint(w, "CFlags", c->cflags);
	kstr_or_unset(w, "Socket", ul_cstr(c, UL_SOCKET));
	json_w_kuint(w, "Methods", c->methods);
	kstr_or_unset(w, "Ruid", ul_cstr(c, UL_RUID));
	kstr_or_unset(w, "Instance", ul_cstr(c, UL_INSTANCE));
	json_w_kuint(w, "Reg-Id", c->reg_id);
	json_w_kint(w, "Server-Id", c->server_id);
	json_w_kint(w, "Tcpconn-Id", -1);
	json_w_kint(w, "Keepalive", 0);
	json_w_kint(w, "Last-Modified", c->last_modified);
	json_w_obj_end(w);
	json_w_obj_end(w);
}

static void write_contacts(json_w_t *w, const ul_record_t *r, bool brief, int64_t now)
{
	json_w_key(w, "Contacts");
	json_w_arr_begin(w);
	for (const ul_contact_t *c = r->contacts; c; c = c->next) {
		if (!ul_contact_valid(c, now))
			continue;
		if (!brief) {
			write_contact(w, c, now);
			continue;
		}
		json_w_obj_begin(w);
		json_w_key(w, "Contact");
		json_w_obj_begin(w);
		json_w_kstr(w, "Address", ul_cstr(c, UL_CONTACT));
		json_w_obj_end(w);
		json_w_obj_end(w);
	}
	json_w_arr_end(w);
}

/* ---------------------------------------------------------------- ul.dump */

typedef struct {
	json_w_t *w;
	bool brief;
	int64_t now;
	unsigned records;
} dump_t;

static bool dump_record(const ul_record_t *r, void *arg)
{
	dump_t *d = arg;
	if (!ul_count_valid(r, d->now))
		return true;
	json_w_obj_begin(d->w);
	json_w_key(d->w, "Info");
	json_w_obj_begin(d->w);
	json_w_kstr(d->w, "AoR", ul_aor(r));
	json_w_kuint(d->w, "HashID", r->hash);
	write_contacts(d->w, r, d->brief, d->now);
	json_w_obj_end(d->w);
	json_w_obj_end(d->w);
	d->records++;
	return true;
}

static void dump_domain(ul_domain_t *dom, void *arg)
{
	dump_t *d = arg;
	json_w_t *w = d->w;

	d->records = 0;
	json_w_obj_begin(w);
	json_w_key(w, "Domain");
	json_w_obj_begin(w);
	json_w_kstr(w, "Domain", ul_domain_name(dom));
	json_w_kuint(w, "Size", ul_domain_size(dom));
	json_w_key(w, "AoRs");
	json_w_arr_begin(w);
	ul_foreach_record(dom, dump_record, d);
	json_w_arr_end(w);
	json_w_key(w, "Stats");
	json_w_obj_begin(w);
	json_w_kuint(w, "Records", d->records);
	json_w_kuint(w, "Max-Slots", ul_domain_size(dom));
	json_w_obj_end(w);
	json_w_obj_end(w);
	json_w_obj_end(w);
}

static void rpc_dump(rpc_req_t *r, const json_t *params)
{
	str_t mode = STR_NULL;
	(void)params;
	if (rpc_param_opt_str(r, 0, "mode", &mode) < 0)
		return;
	dump_t d = {.w = rpc_result(r), .brief = str_eq(mode, STR_LIT("brief")), .now = time(NULL)};
	json_w_obj_begin(d.w);
	json_w_key(d.w, "Domains");
	json_w_arr_begin(d.w);
	ul_foreach_domain(dump_domain, &d);
	json_w_arr_end(d.w);
	json_w_obj_end(d.w);
}

/* ---------------------------------------------------------------- per AOR */

/* table and AOR parameters; NULL after faulting. */
static ul_domain_t *table_aor(rpc_req_t *r, str_t *aor)
{
	str_t table;
	if (rpc_param_str(r, 0, "table", &table) < 0 || rpc_param_str(r, 1, "aor", aor) < 0)
		return NULL;
	ul_domain_t *d = ul_domain(table);
	if (!d)
		rpc_fault(r, RPC_E_NOT_FOUND, "Table not found: %.*s", STR_FMT(table));
	return d;
}

static bool opened(rpc_req_t *r, ul_domain_t *d, str_t aor, ul_ref_t *ref)
{
	int rc = ul_open(d, aor, ref);
	if (rc < 0)
		rpc_fault(r, RPC_E_FAILED, "Database error (%d)", rc);
	return rc == 0;
}

static void rpc_lookup(rpc_req_t *r, const json_t *params)
{
	ul_ref_t ref;
	str_t aor;
	int64_t now = time(NULL);
	(void)params;

	ul_domain_t *d = table_aor(r, &aor);
	if (!d || !opened(r, d, aor, &ref))
		return;
	if (!ul_count_valid(ref.r, now)) {
		ul_close(&ref);
		rpc_fault(r, RPC_E_NOT_FOUND, "AOR not found");
		return;
	}
	json_w_t *w = rpc_result(r);
	json_w_obj_begin(w);
	json_w_kstr(w, "AoR", aor);
	write_contacts(w, ref.r, false, now);
	json_w_obj_end(w);
	ul_close(&ref);
}

static void rpc_rm(rpc_req_t *r, const json_t *params)
{
	ul_ref_t ref;
	str_t aor;
	(void)params;

	ul_domain_t *d = table_aor(r, &aor);
	if (!d || !opened(r, d, aor, &ref))
		return;
	int rc = ref.r ? ul_remove_all(&ref) : -ENOENT;
	ul_close(&ref);
	if (rc == -ENOENT)
		rpc_fault(r, RPC_E_NOT_FOUND, "AOR not found");
	else if (rc < 0)
		rpc_fault(r, RPC_E_FAILED, "Failed to delete AOR (%d)", rc);
}

static void rpc_rm_contact(rpc_req_t *r, const json_t *params)
{
	ul_ref_t ref;
	str_t aor, contact;
	(void)params;

	ul_domain_t *d = table_aor(r, &aor);
	if (!d || rpc_param_str(r, 2, "contact", &contact) < 0 || !opened(r, d, aor, &ref))
		return;
	ul_contact_t *c = ul_find_contact(ref.r, contact, STR_NULL, 0);
	int rc = !ref.r ? -ENOENT : !c ? -ESRCH : ul_remove(&ref, c);
	ul_close(&ref);
	if (rc == -ENOENT)
		rpc_fault(r, RPC_E_NOT_FOUND, "AOR not found");
	else if (rc == -ESRCH)
		rpc_fault(r, RPC_E_NOT_FOUND, "Contact not found");
	else if (rc < 0)
		rpc_fault(r, RPC_E_FAILED, "Failed to delete contact (%d)", rc);
}

/* ul.add table aor contact expires q path flags cflags methods [received] [socket] */
static int add_params(rpc_req_t *r, ul_info_t *ci)
{
	long long expires, flags = 0, cflags = 0, methods = -1;
	str_t q = STR_NULL, path = STR_NULL;

	if (rpc_param_str(r, 2, "contact", &ci->s[UL_CONTACT]) < 0 || rpc_param_int(r, 3, "expires", &expires) < 0 ||
	    rpc_param_opt_str(r, 4, "q", &q) < 0 || rpc_param_opt_str(r, 5, "path", &path) < 0 ||
	    rpc_param_opt_int(r, 6, "flags", &flags) < 0 || rpc_param_opt_int(r, 7, "cflags", &cflags) < 0 ||
	    rpc_param_opt_int(r, 8, "methods", &methods) < 0 ||
	    rpc_param_opt_str(r, 9, "received", &ci->s[UL_RECEIVED]) < 0 ||
	    rpc_param_opt_str(r, 10, "socket", &ci->s[UL_SOCKET]) < 0)
		return -1;
	ci->q = UL_Q_UNSET;
	if (q.len && !str_eq(q, STR_LIT("-1")) && !ul_parse_q(q, &ci->q)) {
		rpc_fault(r, RPC_E_BAD, "Invalid q value");
		return -1;
	}
	/* Kamailio's kamcmd habit: "0" or "." for no path */
	if (!str_eq(path, STR_LIT("0")) && !str_eq(path, STR_LIT(".")))
		ci->s[UL_PATH] = path;
	ci->expires = expires > 0 ? time(NULL) + expires : 0;
	ci->flags = (uint32_t)flags;
	ci->cflags = (uint32_t)cflags;
	ci->methods = (uint32_t)methods;
	ci->s[UL_CALLID] = STR_LIT("dfjrewr12386fd6-343@kamailio.mi");
	ci->s[UL_UA] = STR_LIT("SIP Router MI Server");
	ci->cseq = 1;
	return 0;
}

static void rpc_add(rpc_req_t *r, const json_t *params)
{
	ul_info_t ci = {0};
	ul_ref_t ref;
	str_t aor;
	(void)params;

	ul_domain_t *d = table_aor(r, &aor);
	if (!d || add_params(r, &ci) < 0 || !opened(r, d, aor, &ref))
		return;
	ul_contact_t *c = ul_find_contact(ref.r, ci.s[UL_CONTACT], STR_NULL, 0);
	int rc = c ? ul_update(&ref, c, &ci, NULL) : ul_add(&ref, &ci, NULL);
	ul_close(&ref);
	if (rc < 0)
		rpc_fault(r, RPC_E_FAILED, "Failed to add contact (%d)", rc);
}

static void rpc_flush(rpc_req_t *r, const json_t *params)
{
	(void)params;
	int rc = ul_flush();
	if (rc < 0)
		rpc_fault(r, RPC_E_FAILED, "Flush failed (%d)", rc);
}

static void rpc_db_count(rpc_req_t *r, const json_t *params)
{
	str_t table;
	bool users = !strcmp(rpc_method(r), "ul.db_users");
	(void)params;

	if (rpc_param_str(r, 0, "table", &table) < 0)
		return;
	if (!ul_db_mode()) {
		rpc_fault(r, RPC_E_BAD, "Database not in use (db_mode 0)");
		return;
	}
	ul_domain_t *d = ul_domain(table);
	long long n = d ? ul_db_count(d, users) : -ENOENT;
	if (n < 0) {
		rpc_fault(r, n == -ENOENT ? RPC_E_NOT_FOUND : RPC_E_FAILED, "Failed to count (%lld)", n);
		return;
	}
	json_w_t *w = rpc_result(r);
	json_w_obj_begin(w);
	json_w_kint(w, users ? "Users" : "Contacts", n);
	json_w_obj_end(w);
}

void ul_rpc_init(void)
{
	rpc_register("ul.dump", rpc_dump, "Every table, AOR and contact: ul.dump [brief]");
	rpc_register("ul.lookup", rpc_lookup, "Contacts of an AOR: ul.lookup TABLE AOR");
	rpc_register("ul.rm", rpc_rm, "Remove an AOR: ul.rm TABLE AOR");
	rpc_register("ul.rm_contact", rpc_rm_contact, "Remove one contact: ul.rm_contact TABLE AOR CONTACT");
	rpc_register("ul.add", rpc_add,
		     "Add or update a contact: ul.add TABLE AOR CONTACT EXPIRES Q PATH FLAGS CFLAGS METHODS "
		     "[RECEIVED] [SOCKET]");
	rpc_register("ul.flush", rpc_flush, "Write pending changes to the database now (db_mode 2)");
	rpc_register("ul.db_users", rpc_db_count, "Number of AORs in the database: ul.db_users TABLE");
	rpc_register("ul.db_contacts", rpc_db_count, "Number of contacts in the database: ul.db_contacts TABLE");
}
