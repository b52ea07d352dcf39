// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Via: a comma list of via-parms,
 *   sent-protocol LWS sent-by *( SEMI via-params )
 * with LWS allowed around '/', ':', ';' and '=' (RFC 3261 §25.1, RFC 4475 wsinv).
 */
#include "parser_int.h"

static int via_token(const char **pp, const char *end, str_t *out)
{
	const char *p = skip_ws(*pp, end);
	const char *q = skip_cls(p, end, CC_TOKEN);
	if (q == p)
		return SIP_E_PARSE;
	*out = str_from(p, (size_t)(q - p));
	*pp = q;
	return SIP_OK;
}

static int via_slash(const char **pp, const char *end)
{
	const char *p = skip_ws(*pp, end);
	if (p >= end || *p != '/')
		return SIP_E_PARSE;
	*pp = p + 1;
	return SIP_OK;
}

/* The first occurrence wins, as with sip_param_find(). */
static void via_shortcuts(sip_via_t *v)
{
	for (sip_param_t *p = v->params; p; p = p->next) {
		switch (p->name.len) {
		case 3:
			if (!v->ttl.s && PNAME_IS(p->name, "ttl"))
				v->ttl = p->value;
			break;
		case 5:
			if (!v->has_rport && PNAME_IS(p->name, "rport")) {
				v->has_rport = true;
				v->rport_val = p->value.len ? p->value : STR_NULL;
			} else if (!v->maddr.s && PNAME_IS(p->name, "maddr")) {
				v->maddr = p->value;
			}
			break;
		case 6:
			if (!v->branch.s && PNAME_IS(p->name, "branch"))
				v->branch = p->value;
			break;
		case 8:
			if (!v->received.s && PNAME_IS(p->name, "received"))
				v->received = p->value;
			break;
		default:
			break;
		}
	}
}

/*
 * ;params of a via-parm. Lax (the accessor's mode), an empty parameter is
 * skipped and the via-parm marked repaired instead of failing.
 */
static int via_params(arena_t *a, const char **pp, const char *end, sip_via_t *v, bool lax, sip_error_t *err)
{
	sip_param_t **tail = &v->params;
	const char *p = *pp;
	for (;;) {
		p = skip_ws(p, end);
		if (p >= end || *p != ';')
			break;
		p = skip_ws(p + 1, end);
		if (lax && (p >= end || *p == ';' || *p == ',')) {
			v->repaired = true;
			continue;
		}
		sip_param_t *prm;
		int rc = sip_param_one(a, &p, end, ';', &prm, err);
		if (rc)
			return rc;
		*tail = prm;
		tail = &prm->next;
	}
	*pp = p;
	return SIP_OK;
}

/* One via-parm at *pp; leaves *pp after the trailing LWS. */
static int via_parm(arena_t *a, const char **pp, const char *end, sip_via_t *v, bool lax, sip_error_t *err)
{
	const char *p = skip_ws(*pp, end);
	const char *start = p;
	if (via_token(&p, end, &v->proto_name) || via_slash(&p, end) || via_token(&p, end, &v->version) ||
	    via_slash(&p, end) || via_token(&p, end, &v->transport))
		return parse_fail(err, "Malformed Via");
	v->proto = sip_proto_from_name(v->transport);
	if (p >= end || !cc_is(*p, CC_WS))
		return parse_fail(err, "Malformed Via");
	p = skip_ws(p, end);
	if (sip_parse_host(&p, end, &v->host, &(bool){false}, err))
		return parse_fail(err, "Malformed Via");
	const char *last = p;
	const char *q = skip_ws(p, end);
	if (q < end && *q == ':') {
		q = skip_ws(q + 1, end);
		if (sip_parse_port(&q, end, &v->port_str, &v->port, err))
			return parse_fail(err, "Malformed Via");
		last = p = q;
	}
	q = skip_ws(p, end);
	if (q < end && *q == ';') {
		int rc = via_params(a, &p, end, v, lax, err);
		if (rc)
			return rc == SIP_E_NOMEM ? rc : parse_fail(err, "Malformed Via");
		/* params_str and raw end where the last parameter ends, not at trailing LWS */
		last = p;
		while (last > q && cc_is(last[-1], CC_WS))
			last--;
		v->params_str = str_from(q + 1, (size_t)(last - q - 1));
		via_shortcuts(v);
	}
	v->raw = str_from(start, (size_t)(last - start));
	*pp = skip_ws(p, end);
	return SIP_OK;
}

/*
 * Lax: skips the separators between via-parms; more than `allowed` commas, a
 * stray ';' or a comma at the end make them junk.
 */
static const char *skip_seps(const char *p, const char *end, unsigned allowed, bool *junk)
{
	unsigned commas = 0;
	for (;; p++) {
		p = skip_ws(p, end);
		if (p < end && *p == ',')
			commas++;
		else if (p < end && *p == ';')
			*junk = true;
		else
			break;
	}
	if (commas > allowed || (commas && p >= end))
		*junk = true;
	return p;
}

static int via_list(arena_t *a, str_t body, sip_hdr_t *h, sip_via_t **first, bool lax, sip_error_t *err)
{
	*first = NULL;
	if (!body.s)
		return parse_fail(err, "Malformed Via");
	const char *p = body.s, *end = body.s + body.len;
	sip_via_t **tail = first;
	bool junk = false;
	if (lax)
		p = skip_seps(p, end, 0, &junk);
	for (;;) {
		sip_via_t *v = arena_zalloc(a, sizeof(*v));
		if (!v)
			return nomem(err);
		v->hdr = h;
		int rc = via_parm(a, &p, end, v, lax, err);
		if (rc)
			return rc;
		v->repaired |= junk; /* leading junk counts against the first via-parm */
		junk = false;
		*tail = v;
		tail = &v->next;
		if (p >= end)
			return SIP_OK;
		if (*p != ',')
			return parse_fail(err, "Malformed Via");
		if (!lax) {
			p++;
			continue;
		}
		p = skip_seps(p, end, 1, &junk);
		v->repaired |= junk;
		junk = false;
		if (p >= end)
			return SIP_OK;
	}
}

int sip_parse_via_list(arena_t *a, str_t body, sip_hdr_t *h, sip_via_t **first, sip_error_t *err)
{
	return via_list(a, body, h, first, false, err);
}

int sip_parse_via_list_lax(arena_t *a, str_t body, sip_hdr_t *h, sip_via_t **first, sip_error_t *err)
{
	return via_list(a, body, h, first, true, err);
}
