// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Pseudo-variables for KSR.pv.*. A name ("$ru", "$hdr(Via)[-1]", "$var(x)") is
 * parsed once per worker into a spec and cached by its text; after that a get
 * is a hash lookup and a switch. $var lives in the worker and survives
 * messages and reloads; $shv is process-wide; $avp lives with the message.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/lib/hash.h"
#include "../core/lib/log.h"
#include "../core/registrar/registrar.h"
#include "../core/tm/tm.h"
#include "engine_internal.h"
#include "ksr.h"

typedef enum {
	PV_RU, PV_RUSER, PV_RD, PV_RP, PV_RZ, PV_OU, PV_OUSER, PV_DU, PV_DD, PV_DP, PV_DPROTO,
	PV_FU, PV_FUSER, PV_FD, PV_FN, PV_FT, PV_TU, PV_TUSER, PV_TD, PV_TN, PV_TT,
	PV_CI, PV_CS, PV_CSB, PV_RM, PV_RMID, PV_RS, PV_RR, PV_UA, PV_CT, PV_CTU,
	PV_SI, PV_SP, PV_SU, PV_SAS, PV_RI, PV_RPORT, PV_RU_SOCK, PV_PROTO, PV_PRID,
	PV_ML, PV_MT, PV_MB, PV_RB, PV_BS, PV_CL, PV_CTYPE, PV_TS_MSG, PV_TS_NOW, PV_MI,
	PV_CONID, PV_MF, PV_BF, PV_AU, PV_AR, PV_FS,
	PV_HDR, PV_HDRC, PV_VAR, PV_SHV, PV_AVP, PV_T_RPL, PV_ULC, PV_RUID, PV_LOCATION_UA,
	PV_T_REPLY_CODE, PV_T_REPLY_REASON, PV_T_BRANCH_IDX, PV_T,
} pv_type_t;

typedef struct {
	pv_type_t type;
	str_t arg;  /* inner name of $hdr(x), $var(x) ... (owned by the cache) */
	int idx;    /* $hdr(x)[idx], $avp(x)[idx]; 0 = first */
	bool has_idx;
} pv_spec_t;

static const struct {
	const char *name;
	pv_type_t type;
} simple_pvs[] = {
	{"ru", PV_RU}, {"rU", PV_RUSER}, {"rd", PV_RD}, {"rp", PV_RP}, {"rz", PV_RZ}, {"ou", PV_OU},
	{"oU", PV_OUSER}, {"du", PV_DU}, {"dd", PV_DD}, {"dp", PV_DP}, {"dP", PV_DPROTO}, {"fu", PV_FU},
	{"fU", PV_FUSER}, {"fd", PV_FD}, {"fn", PV_FN}, {"ft", PV_FT}, {"tu", PV_TU}, {"tU", PV_TUSER},
	{"td", PV_TD}, {"tn", PV_TN}, {"tt", PV_TT}, {"ci", PV_CI}, {"cs", PV_CS}, {"csb", PV_CSB},
	{"rm", PV_RM}, {"rmid", PV_RMID}, {"rs", PV_RS}, {"rr", PV_RR}, {"ua", PV_UA}, {"ct", PV_CT},
	{"ctu", PV_CTU}, {"si", PV_SI}, {"sp", PV_SP}, {"su", PV_SU}, {"sas", PV_SAS}, {"Ri", PV_RI},
	{"Rp", PV_RPORT}, {"Ru", PV_RU_SOCK}, {"proto", PV_PROTO}, {"pr", PV_PROTO}, {"prid", PV_PRID},
	{"ml", PV_ML}, {"mt", PV_MT}, {"mb", PV_MB}, {"rb", PV_RB}, {"bs", PV_BS}, {"cl", PV_CL},
	{"cT", PV_CTYPE}, {"Ts", PV_TS_MSG}, {"TS", PV_TS_NOW}, {"mi", PV_MI}, {"conid", PV_CONID},
	{"mf", PV_MF}, {"bf", PV_BF}, {"au", PV_AU}, {"ar", PV_AR}, {"fs", PV_FS},
	{"T_reply_code", PV_T_REPLY_CODE}, {"T_reply_reason", PV_T_REPLY_REASON},
	{"T_branch_idx", PV_T_BRANCH_IDX}, {"ruid", PV_RUID}, {"location_ua", PV_LOCATION_UA},
};

static const struct {
	const char *name;
	pv_type_t type;
} class_pvs[] = {
	{"hdr", PV_HDR}, {"hdrc", PV_HDRC}, {"var", PV_VAR}, {"shv", PV_SHV}, {"avp", PV_AVP},
	{"T_rpl", PV_T_RPL}, {"ulc", PV_ULC}, {"T", PV_T},
};

/* ---------------------------------------------------------------- named value stores */

typedef struct kv {
	char *name;
	ksr_xval_t val;  /* val.s owned */
	struct kv *next;
} kv_t;

typedef struct pv_vars {
	kv_t *buckets[64];
} kv_store_t;

static kv_t *kv_find(kv_store_t *st, str_t name, bool create)
{
	unsigned b = (unsigned)(hash64_final(hash64_mix(hash_seed, name.s, name.len)) % 64);
	for (kv_t *k = st->buckets[b]; k; k = k->next)
		if (strlen(k->name) == name.len && !memcmp(k->name, name.s, name.len))
			return k;
	if (!create)
		return NULL;
	kv_t *k = calloc(1, sizeof(*k));
	if (!k || !(k->name = strndup(name.s, name.len))) {
		free(k);
		return NULL;
	}
	k->next = st->buckets[b];
	st->buckets[b] = k;
	return k;
}

static int kv_set(kv_store_t *st, str_t name, const ksr_xval_t *v)
{
	kv_t *k = kv_find(st, name, true);
	if (!k)
		return -1;
	char *copy = NULL;
	if (v && v->type == XVAL_STR && !(copy = malloc(v->s.len + 1)))
		return -1;
	if (k->val.type == XVAL_STR)
		free((char *)k->val.s.s);
	k->val = v ? *v : (ksr_xval_t){.type = XVAL_NULL};
	if (copy) {
		memcpy(copy, v->s.s, v->s.len);
		copy[v->s.len] = '\0';
		k->val.s = str_from(copy, v->s.len);
	}
	return 1;
}

static void kv_free(kv_store_t *st)
{
	for (unsigned b = 0; b < 64; b++) {
		kv_t *k = st->buckets[b];
		while (k) {
			kv_t *n = k->next;
			if (k->val.type == XVAL_STR)
				free((char *)k->val.s.s);
			free(k->name);
			free(k);
			k = n;
		}
		st->buckets[b] = NULL;
	}
}

static kv_store_t shv_store;
static pthread_mutex_t shv_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------- spec cache */

#define PV_CACHE_SIZE 256

typedef struct pv_entry {
	char *text;
	size_t len;
	pv_spec_t spec;
	struct pv_entry *next;
} pv_entry_t;

typedef struct pv_cache {
	pv_entry_t *buckets[PV_CACHE_SIZE];
} pv_cache_t;

static bool parse_spec(str_t name, pv_spec_t *out)
{
	memset(out, 0, sizeof(*out));
	if (name.len < 2 || name.s[0] != '$')
		return false;
	str_t body = str_from(name.s + 1, name.len - 1);
	const char *paren = memchr(body.s, '(', body.len);
	if (!paren) {
		for (size_t i = 0; i < sizeof(simple_pvs) / sizeof(simple_pvs[0]); i++)
			if (str_eq(body, str_cstr(simple_pvs[i].name))) {
				out->type = simple_pvs[i].type;
				return true;
			}
		return false;
	}
	str_t cls = str_from(body.s, (size_t)(paren - body.s));
	/* the matching ')': the argument may itself be a pseudo-variable ($T_rpl($hdr(X))) */
	const char *close = NULL;
	int depth = 0;
	for (const char *q = paren; q < body.s + body.len; q++) {
		if (*q == '(')
			depth++;
		else if (*q == ')' && --depth == 0) {
			close = q;
			break;
		}
	}
	if (!close || close == paren + 1)
		return false;
	out->arg = str_from(paren + 1, (size_t)(close - paren - 1));
	const char *rest = close + 1;
	const char *end = body.s + body.len;
	if (rest < end) {
		/* [index]: negative counts from the end */
		if (*rest != '[' || end[-1] != ']')
			return false;
		char tmp[16];
		size_t n = (size_t)(end - rest - 2);
		if (n == 0 || n >= sizeof(tmp))
			return false;
		memcpy(tmp, rest + 1, n);
		tmp[n] = '\0';
		char *e;
		long v = strtol(tmp, &e, 10);
		if (*e)
			return false;
		out->idx = (int)v;
		out->has_idx = true;
	}
	for (size_t i = 0; i < sizeof(class_pvs) / sizeof(class_pvs[0]); i++)
		if (str_eq(cls, str_cstr(class_pvs[i].name))) {
			out->type = class_pvs[i].type;
			return true;
		}
	return false;
}

static const pv_spec_t *spec_get(ksr_engine_t *e, str_t name)
{
	pv_cache_t *c = e->pv_cache;
	if (!c && !(c = e->pv_cache = calloc(1, sizeof(*c))))
		return NULL;
	unsigned b = (unsigned)(hash64_final(hash64_mix(hash_seed, name.s, name.len)) % PV_CACHE_SIZE);
	for (pv_entry_t *p = c->buckets[b]; p; p = p->next)
		if (p->len == name.len && !memcmp(p->text, name.s, name.len))
			return &p->spec;
	pv_spec_t spec;
	if (!parse_spec(name, &spec)) {
		str_t cid = e->ctx.msg ? sip_msg_callid(&e->ctx.msg->sip) : STR_NULL;
		LOG_MSG_ERR(LUA, &cid, "unknown pseudo-variable '%.*s'", (int)(name.len > 100 ? 100 : name.len),
			    name.s);
		return NULL;
	}
	pv_entry_t *p = calloc(1, sizeof(*p));
	if (!p || !(p->text = malloc(name.len + 1))) {
		free(p);
		return NULL;
	}
	memcpy(p->text, name.s, name.len);
	p->text[name.len] = '\0';
	p->len = name.len;
	p->spec = spec;
	if (spec.arg.s) /* re-point the argument into our own copy of the text */
		p->spec.arg.s = p->text + (spec.arg.s - name.s);
	p->next = c->buckets[b];
	c->buckets[b] = p;
	return &p->spec;
}

/* ---------------------------------------------------------------- getters */

static int uri_part(ksr_xval_t *r, sip_uri_t *u, int part)
{
	if (!u)
		return 0;
	switch (part) {
	case 0: return ksr_xval_opt_str(r, u->raw);
	case 1: return u->user.len ? ksr_xval_opt_str(r, u->user) : 0;
	case 2: return ksr_xval_opt_str(r, u->host);
	case 3: return u->port_str.len ? ksr_xval_opt_str(r, u->port_str) : 0;
	default: return ksr_xval_opt_str(r, u->scheme_str);
	}
}

static int nameaddr_part(ksr_xval_t *r, sip_nameaddr_t *na, int part)
{
	if (!na)
		return 0;
	switch (part) {
	case 0: return ksr_xval_opt_str(r, na->uri_str);
	case 1: return na->uri.user.len ? ksr_xval_opt_str(r, na->uri.user) : 0;
	case 2: return ksr_xval_opt_str(r, na->uri.host);
	case 3: return na->display.len ? ksr_xval_opt_str(r, na->display) : 0;
	default: return na->tag.len ? ksr_xval_opt_str(r, na->tag) : 0;
	}
}

static int src_uri(msg_t *m, ksr_xval_t *r, bool sock_form)
{
	char ip[64];
	net_addr_ip_str(&m->rcv.src, ip, sizeof(ip));
	bool v6 = m->rcv.src.sa.sa_family == AF_INET6;
	/* Kamailio's $su names the transport only when it is not UDP */
	bool udp = m->rcv.proto == SIP_PROTO_UDP;
	str_t s = sock_form ? arena_printf(m->arena, v6 ? "%s:[%s]:%u" : "%s:%s:%u", sip_proto_name(m->rcv.proto),
					   ip, net_addr_port(&m->rcv.src))
			    : arena_printf(m->arena, v6 ? "sip:[%s]:%u%s%s" : "sip:%s:%u%s%s", ip,
					   net_addr_port(&m->rcv.src), udp ? "" : ";transport=",
					   udp ? "" : sip_proto_name(m->rcv.proto));
	return ksr_xval_opt_str(r, s);
}

/* $Ru: the receiving socket as a URI; like $su, the transport only when not UDP. */
static int rcv_uri(msg_t *m, ksr_xval_t *r)
{
	const net_listen_t *l = m->rcv.local;
	if (!l)
		return 0;
	bool v6 = l->addr.sa.sa_family == AF_INET6;
	bool udp = l->proto == SIP_PROTO_UDP;
	str_t s = arena_printf(m->arena, v6 ? "sip:[%s]:%u%s%s" : "sip:%s:%u%s%s", l->ip, net_addr_port(&l->addr),
			       udp ? "" : ";transport=", udp ? "" : sip_proto_name(l->proto));
	return ksr_xval_opt_str(r, s);
}

static int get_hdr(msg_t *m, const pv_spec_t *s, ksr_xval_t *r)
{
	sip_hdr_t *h = sip_msg_hdr_find_idx(&m->sip, s->arg, s->has_idx ? s->idx : 0);
	return h ? ksr_xval_opt_str(r, h->body) : 0;
}

static int get_du_part(msg_t *m, ksr_xval_t *r, pv_type_t t)
{
	sip_uri_t u;
	if (!m->du.len || sip_uri_parse(m->arena, m->du, &u, NULL) != SIP_OK)
		return 0;
	if (t == PV_DD)
		return ksr_xval_opt_str(r, u.host);
	if (t == PV_DP)
		return ksr_xval_int(r, sip_uri_port(&u));
	sip_proto_t p = sip_uri_proto(&u);
	return ksr_xval_opt_str(r, str_cstr(sip_proto_name(p == SIP_PROTO_NONE ? SIP_PROTO_UDP : p)));
}

static int pv_get_msg(ksr_engine_t *e, msg_t *m, const pv_spec_t *s, ksr_xval_t *r)
{
	sip_msg_t *sm = &m->sip;
	bool req = sm->type == SIP_REQUEST;
	switch (s->type) {
	case PV_RU: return req ? ksr_xval_opt_str(r, m->ruri) : 0;
	case PV_RUSER: return req ? uri_part(r, msg_ruri(m), 1) : 0;
	case PV_RD: return req ? uri_part(r, msg_ruri(m), 2) : 0;
	case PV_RP: {
		/* the default port when the R-URI has none, as Kamailio answers */
		sip_uri_t *u = req ? msg_ruri(m) : NULL;
		if (!u)
			return 0;
		if (u->port_str.len)
			return ksr_xval_opt_str(r, u->port_str);
		return ksr_xval_opt_str(r, u->scheme == URI_SIPS || sip_uri_proto(u) == SIP_PROTO_TLS ? STR_LIT("5061")
											    : STR_LIT("5060"));
	}
	case PV_RZ: return req ? uri_part(r, msg_ruri(m), 4) : 0;
	case PV_OU: return req ? ksr_xval_opt_str(r, sm->ruri_str) : 0;
	case PV_OUSER: return req ? uri_part(r, sip_msg_ruri(sm), 1) : 0;
	case PV_DU: return m->du.len ? ksr_xval_opt_str(r, m->du) : 0;
	case PV_DD: case PV_DP: case PV_DPROTO: return get_du_part(m, r, s->type);
	case PV_FU: return nameaddr_part(r, sip_msg_from(sm), 0);
	case PV_FUSER: return nameaddr_part(r, sip_msg_from(sm), 1);
	case PV_FD: return nameaddr_part(r, sip_msg_from(sm), 2);
	case PV_FN: return nameaddr_part(r, sip_msg_from(sm), 3);
	case PV_FT: return nameaddr_part(r, sip_msg_from(sm), 4);
	case PV_TU: return nameaddr_part(r, sip_msg_to(sm), 0);
	case PV_TUSER: return nameaddr_part(r, sip_msg_to(sm), 1);
	case PV_TD: return nameaddr_part(r, sip_msg_to(sm), 2);
	case PV_TN: return nameaddr_part(r, sip_msg_to(sm), 3);
	case PV_TT: return nameaddr_part(r, sip_msg_to(sm), 4);
	case PV_CI: return ksr_xval_opt_str(r, sip_msg_callid(sm));
	case PV_CS: {
		sip_cseq_t *cs = sip_msg_cseq(sm);
		return cs ? ksr_xval_int(r, cs->seq) : 0;
	}
	case PV_CSB: return sm->first[HDR_CSEQ] ? ksr_xval_opt_str(r, sm->first[HDR_CSEQ]->body) : 0;
	case PV_RM: {
		if (req)
			return ksr_xval_opt_str(r, sm->method);
		sip_cseq_t *cs = sip_msg_cseq(sm);
		return cs ? ksr_xval_opt_str(r, cs->method) : 0;
	}
	case PV_RMID: return ksr_xval_int(r, req ? sm->method_id : 0);
	case PV_RS: return req ? 0 : ksr_xval_int(r, sm->status);
	case PV_RR: return req ? 0 : ksr_xval_opt_str(r, sm->reason);
	case PV_UA: return sm->first[HDR_USER_AGENT] ? ksr_xval_opt_str(r, sm->first[HDR_USER_AGENT]->body) : 0;
	case PV_CT: return sm->first[HDR_CONTACT] ? ksr_xval_opt_str(r, sm->first[HDR_CONTACT]->body) : 0;
	case PV_CTU: {
		sip_contacts_t *c = sip_msg_contacts(sm);
		return c && c->first ? ksr_xval_opt_str(r, c->first->uri_str) : 0;
	}
	case PV_SI: {
		char ip[64];
		size_t n = net_addr_ip_str(&m->rcv.src, ip, sizeof(ip));
		return ksr_xval_opt_str(r, arena_strdup(m->arena, str_from(ip, n)));
	}
	case PV_SP: return ksr_xval_int(r, net_addr_port(&m->rcv.src));
	case PV_SU: return src_uri(m, r, false);
	case PV_SAS: return src_uri(m, r, true);
	case PV_RI: return m->rcv.local ? ksr_xval_opt_str(r, str_cstr(m->rcv.local->ip)) : 0;
	case PV_RPORT: return m->rcv.local ? ksr_xval_int(r, net_addr_port(&m->rcv.local->addr)) : 0;
	case PV_RU_SOCK: return rcv_uri(m, r);
	case PV_PROTO: return ksr_xval_opt_str(r, str_cstr(sip_proto_name(m->rcv.proto)));
	case PV_PRID: return ksr_xval_int(r, m->rcv.proto);
	case PV_ML: return ksr_xval_int(r, (long long)sm->len);
	case PV_MT: return ksr_xval_int(r, req ? 1 : 2);
	case PV_MB: return ksr_xval_opt_str(r, str_from(sm->buf, sm->len));
	case PV_RB: return sm->body.len ? ksr_xval_opt_str(r, sm->body) : 0;
	case PV_BS: return ksr_xval_int(r, (long long)sm->body.len);
	case PV_CL: return sm->content_length >= 0 ? ksr_xval_int(r, sm->content_length) : 0;
	case PV_CTYPE: return sm->first[HDR_CONTENT_TYPE] ? ksr_xval_opt_str(r, sm->first[HDR_CONTENT_TYPE]->body) : 0;
	case PV_TS_MSG: return ksr_xval_int(r, (long long)m->received_at);
	case PV_MI: return ksr_xval_int(r, (long long)m->id);
	case PV_CONID: return m->rcv.conn_id ? ksr_xval_int(r, (long long)m->rcv.conn_id) : 0;
	case PV_MF: return ksr_xval_int(r, m->flags);
	case PV_BF: return ksr_xval_int(r, m->bflags);
	case PV_FS: return m->send_sock ? ksr_xval_opt_str(r, str_cstr(m->send_sock->sock_str)) : 0;
	case PV_AU: case PV_AR: {
		sip_auth_t *a = sip_msg_auth(sm, HDR_AUTHORIZATION);
		if (!a)
			a = sip_msg_auth(sm, HDR_PROXY_AUTHORIZATION);
		if (!a)
			return 0;
		return ksr_xval_opt_str(r, s->type == PV_AU ? a->username : a->realm);
	}
	case PV_HDR: return get_hdr(m, s, r);
	case PV_T_RPL: {
		/* the inner pseudo-variable, evaluated on the reply the route is about */
		const pv_spec_t *inner = spec_get(e, s->arg);
		msg_t *rpl = inner ? tm_route_reply(m) : NULL;
		return rpl && inner->type != PV_T_RPL ? pv_get_msg(e, rpl, inner, r) : 0;
	}
	case PV_RUID: return ksr_xval_opt_str(r, reg_ruid(m));
	case PV_LOCATION_UA: return ksr_xval_opt_str(r, reg_location_ua(m));
	case PV_T: {
		/* $T(id_index), $T(id_label), $T(reply_code), $T(branch_index) */
		unsigned idx, label;
		if (str_eq(s->arg, STR_LIT("id_index")) || str_eq(s->arg, STR_LIT("id_label"))) {
			if (tm_ids(m, &idx, &label) < 0)
				return 0;
			return ksr_xval_int(r, str_eq(s->arg, STR_LIT("id_index")) ? idx : label);
		}
		if (str_eq(s->arg, STR_LIT("reply_code"))) {
			int code = tm_get_status_code(m);
			return code > 0 ? ksr_xval_int(r, code) : 0;
		}
		if (str_eq(s->arg, STR_LIT("branch_index"))) {
			int bi = tm_get_branch_index(m);
			return bi >= 0 ? ksr_xval_int(r, bi) : 0;
		}
		return 0;
	}
	case PV_T_REPLY_CODE: {
		int code = tm_get_status_code(m);
		return code > 0 ? ksr_xval_int(r, code) : 0;
	}
	case PV_T_REPLY_REASON: {
		msg_t *rpl = tm_route_reply(m);
		return rpl ? ksr_xval_opt_str(r, rpl->sip.reason) : 0;
	}
	case PV_T_BRANCH_IDX: {
		int idx = tm_get_branch_index(m);
		return idx >= 0 ? ksr_xval_int(r, idx) : 0;
	}
	case PV_HDRC: return ksr_xval_int(r, sip_msg_hdr_count(sm, s->arg));
	default: break;
	}
	(void)e;
	return 0;
}

/* $avp(x)[idx]: the message's values, or its transaction's once it has one. */
static int avp_read(msg_t *m, const pv_spec_t *s, ksr_xval_t *r)
{
	if (!m)
		return 0;
	avp_t **list = tm_avps_lock(m);
	const avp_t *a = avp_get(*list, s->arg, s->has_idx ? s->idx : 0);
	int rc = 0;
	if (a)
		rc = a->is_int ? ksr_xval_int(r, a->i) : ksr_xval_str(r, arena_strdup(m->arena, a->s));
	tm_avps_unlock(m);
	return rc;
}

/* Assigning pushes a value (older ones stay, as in Kamailio); unset removes them all. */
static int avp_write(msg_t *m, const pv_spec_t *s, const ksr_xval_t *v)
{
	if (!m)
		return -1;
	avp_t **list = tm_avps_lock(m);
	int rc = 1;
	if (!v || v->type == XVAL_NULL)
		avp_del(list, s->arg);
	else if (avp_push(list, s->arg, v->type == XVAL_INT, v->i, v->s) < 0)
		rc = -1;
	tm_avps_unlock(m);
	return rc;
}

/* Without a message there is no arena: the engine's scratch string holds the value
 * until the next call (the caller copies it into a Lua string at once). */
static str_t scratch_copy(ksr_engine_t *e, str_t v)
{
	char *p = realloc(e->scratch, v.len + 1);
	if (!p)
		return STR_NULL;
	e->scratch = p;
	memcpy(p, v.s, v.len);
	p[v.len] = '\0';
	return str_from(p, v.len);
}

static int copy_val(msg_t *m, const ksr_xval_t *v, ksr_xval_t *r)
{
	if (v->type == XVAL_INT)
		return ksr_xval_int(r, v->i);
	if (v->type == XVAL_STR) {
		/* a copy: the script may overwrite the variable while holding the value */
		if (m)
			return ksr_xval_str(r, arena_strdup(m->arena, v->s));
		return ksr_xval_str(r, v->s);
	}
	return 0;
}

static int pv_get(ksr_engine_t *e, const pv_spec_t *s, ksr_xval_t *r)
{
	msg_t *m = e->ctx.msg;
	switch (s->type) {
	case PV_VAR: {
		kv_t *k = e->vars ? kv_find(e->vars, s->arg, false) : NULL;
		return k ? copy_val(m, &k->val, r) : 0;
	}
	case PV_SHV: {
		pthread_mutex_lock(&shv_lock);
		kv_t *k = kv_find(&shv_store, s->arg, false);
		ksr_xval_t v = k ? k->val : (ksr_xval_t){.type = XVAL_NULL};
		int rc = 0;
		if (v.type == XVAL_INT)
			rc = ksr_xval_int(r, v.i);
		else if (v.type == XVAL_STR)
			rc = ksr_xval_str(r, m ? arena_strdup(m->arena, v.s) : scratch_copy(e, v.s));
		pthread_mutex_unlock(&shv_lock);
		return rc;
	}
	case PV_AVP: return avp_read(m, s, r);
	case PV_TS_NOW: return ksr_xval_int(r, (long long)time(NULL));
	case PV_ULC: {
		/* $ulc(profile=>attr), contact attributes by [index] */
		const char *arrow = memchr(s->arg.s, '=', s->arg.len);
		if (!arrow || arrow + 1 >= s->arg.s + s->arg.len || arrow[1] != '>')
			return 0;
		str_t prof = str_from(s->arg.s, (size_t)(arrow - s->arg.s));
		str_t attr = str_from(arrow + 2, (size_t)(s->arg.s + s->arg.len - arrow - 2));
		str_t sv;
		long long iv;
		bool is_int;
		bool record = str_eq(attr, STR_LIT("aor")) || str_eq(attr, STR_LIT("domain")) ||
			      str_eq(attr, STR_LIT("aorhash")) || str_eq(attr, STR_LIT("count"));
		int idx = record ? -1 : (s->has_idx ? s->idx : 0);
		if (reg_ulc_get(prof, attr, idx, &sv, &iv, &is_int) < 0)
			return 0;
		/* borrowed from the profile when there is no message (event routes) */
		return is_int ? ksr_xval_int(r, iv) : ksr_xval_opt_str(r, m ? arena_strdup(m->arena, sv) : sv);
	}
	default: break;
	}
	if (!m)
		return 0;
	return pv_get_msg(e, m, s, r);
}

/* ---------------------------------------------------------------- setters */

static int set_ruri_part(msg_t *m, pv_type_t t, str_t v)
{
	str_t nu = msg_ruri_with(m, t == PV_RUSER ? &v : NULL, t == PV_RD ? &v : NULL, t == PV_RP ? &v : NULL);
	return nu.s && msg_set_ruri(m, nu) == 0 ? 1 : -1;
}

static str_t val_as_str(msg_t *m, const ksr_xval_t *v, char *tmp, size_t len)
{
	if (v->type == XVAL_STR)
		return v->s;
	int n = snprintf(tmp, len, "%lld", v->i);
	(void)m;
	return str_from(tmp, (size_t)n);
}

/* v == NULL: unset. Returns 1 or -1. */
static int pv_set(ksr_engine_t *e, const pv_spec_t *s, const ksr_xval_t *v)
{
	msg_t *m = e->ctx.msg;
	char tmp[32];
	switch (s->type) {
	case PV_VAR:
		if (!e->vars && !(e->vars = calloc(1, sizeof(*e->vars))))
			return -1;
		return kv_set(e->vars, s->arg, v);
	case PV_SHV: {
		pthread_mutex_lock(&shv_lock);
		int rc = kv_set(&shv_store, s->arg, v);
		pthread_mutex_unlock(&shv_lock);
		return rc;
	}
	case PV_AVP: return avp_write(m, s, v);
	default: break;
	}
	if (!m)
		return -1;
	bool req = m->sip.type == SIP_REQUEST;
	switch (s->type) {
	case PV_RU:
		if (!req || !v)
			return -1;
		return msg_set_ruri(m, val_as_str(m, v, tmp, sizeof(tmp))) == 0 ? 1 : -1;
	case PV_RUSER: case PV_RD: case PV_RP:
		if (!req)
			return -1;
		return set_ruri_part(m, s->type, v ? val_as_str(m, v, tmp, sizeof(tmp)) : STR_NULL);
	case PV_DU:
		return msg_set_du(m, v ? val_as_str(m, v, tmp, sizeof(tmp)) : STR_NULL) == 0 ? 1 : -1;
	case PV_MF:
		m->flags = v && v->type == XVAL_INT ? (uint32_t)v->i : 0;
		return 1;
	case PV_BF:
		m->bflags = v && v->type == XVAL_INT ? (uint32_t)v->i : 0;
		return 1;
	case PV_FS: {
		if (!v) {
			m->send_sock = NULL;
			return 1;
		}
		const net_listen_t *l = net_listen_by_str(val_as_str(m, v, tmp, sizeof(tmp)));
		if (!l)
			return -1;
		m->send_sock = l;
		return 1;
	}
	default:
		return -1; /* read-only */
	}
}

/* ---------------------------------------------------------------- KSR.pv */

int ksr_pv_get(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	const pv_spec_t *s = spec_get(c->engine, a[0].s);
	return s ? pv_get(c->engine, s, r) : -1;
}

static int set_checked(ksr_ctx_t *c, str_t name, const ksr_xval_t *v)
{
	const pv_spec_t *s = spec_get(c->engine, name);
	if (!s)
		return -1;
	int rc = pv_set(c->engine, s, v);
	if (rc < 0) {
		str_t cid = c->msg ? sip_msg_callid(&c->msg->sip) : STR_NULL;
		LOG_MSG_ERR(LUA, &cid, "cannot assign pseudo-variable '%.*s' (read-only, bad value or no message)",
			    STR_FMT(name));
	}
	return rc;
}

int ksr_pv_sets(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	ksr_xval_t v = {.type = XVAL_STR, .s = a[1].s};
	return set_checked(c, a[0].s, &v);
}

int ksr_pv_seti(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	ksr_xval_t v = {.type = XVAL_INT, .i = a[1].i};
	return set_checked(c, a[0].s, &v);
}

int ksr_pv_unset(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return set_checked(c, a[0].s, NULL);
}

int ksr_pv_is_null(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	ksr_xval_t v = {.type = XVAL_NULL};
	(void)r;
	const pv_spec_t *s = spec_get(c->engine, a[0].s);
	if (!s || pv_get(c->engine, s, &v) <= 0)
		return 1;
	return v.type == XVAL_NULL ? 1 : -1;
}

/*
 * For other KSR modules that take "a value or a pseudo-variable name" (auth's
 * pv_* functions, as Kamailio's native config allows): when name is a
 * pseudo-variable this reads it (1 value, 0 null) and otherwise returns -2
 * without logging, so the caller can take the text literally. The value is
 * borrowed as from KSR.pv.get.
 */
int ksr_pv_lookup(ksr_ctx_t *c, str_t name, ksr_xval_t *out)
{
	pv_spec_t spec;

	out->type = XVAL_NULL;
	if (!parse_spec(name, &spec))
		return -2;
	const pv_spec_t *s = spec_get(c->engine, name);
	if (!s)
		return -2;
	return pv_get(c->engine, s, out) > 0 && out->type != XVAL_NULL ? 1 : 0;
}

/* ---------------------------------------------------------------- lifecycle */

void ksr_pv_global_free(void)
{
	pthread_mutex_lock(&shv_lock);
	kv_free(&shv_store);
	pthread_mutex_unlock(&shv_lock);
}

void ksr_pv_worker_free(ksr_engine_t *e)
{
	pv_cache_t *c = e->pv_cache;
	if (c) {
		for (unsigned b = 0; b < PV_CACHE_SIZE; b++) {
			pv_entry_t *p = c->buckets[b];
			while (p) {
				pv_entry_t *n = p->next;
				free(p->text);
				free(p);
				p = n;
			}
		}
		free(c);
		e->pv_cache = NULL;
	}
	if (e->vars) {
		kv_free(e->vars);
		free(e->vars);
		e->vars = NULL;
	}
	free(e->scratch);
	e->scratch = NULL;
}
