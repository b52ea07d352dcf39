// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * name-addr / addr-spec with header parameters: To, From, Contact, Route,
 * Record-Route (RFC 3261 §20.10). Without <>, the URI ends at the first LWS,
 * ';' or ',', so everything after ';' is a header parameter (RFC 4475
 * cparam01), and a URI carrying '?' headers must be in <> (regbadct).
 */
#include "parser_int.h"

/* A display name written as tokens: token chars and LWS, plus UTF-8 that some
 * user agents send unquoted. Returns where the run stops. */
static const char *display_tokens(const char *p, const char *end)
{
	while (p < end && (cc_is(*p, CC_TOKEN | CC_WS) || (unsigned char)*p >= 0x80))
		p++;
	return p;
}

/* The first occurrence wins, as with sip_param_find(). */
static void na_shortcuts(arena_t *a, sip_nameaddr_t *na)
{
	for (sip_param_t *p = na->params; p; p = p->next) {
		switch (p->name.len) {
		case 1:
			if (!na->q_str.s && PNAME_IS(p->name, "q"))
				na->q_str = p->value;
			break;
		case 3:
			if (!na->tag.s && PNAME_IS(p->name, "tag"))
				na->tag = p->value;
			break;
		case 6:
			if (!na->reg_id.s && PNAME_IS(p->name, "reg-id"))
				na->reg_id = p->value;
			break;
		case 7:
			if (!na->expires_str.s && PNAME_IS(p->name, "expires"))
				na->expires_str = p->value;
			break;
		case 13:
			if (!na->instance.s && PNAME_IS(p->name, "+sip.instance"))
				na->instance = sip_unquote(a, p->value);
			break;
		default:
			break;
		}
	}
}

/* Finds the URI of one element; p after any display name. */
static int na_uri(const char **pp, const char *end, sip_nameaddr_t *na, sip_error_t *err)
{
	const char *p = *pp;
	if (p < end && *p == '<') {
		const char *close = memchr(p + 1, '>', (size_t)(end - p - 1));
		if (!close)
			return parse_fail(err, "Missing '>'");
		na->uri_str = str_from(p + 1, (size_t)(close - p - 1));
		na->angle = true;
		*pp = close + 1;
		return SIP_OK;
	}
	const char *q = p;
	while (q < end && !cc_is(*q, CC_WS) && *q != ';' && *q != ',')
		q++;
	if (q == p)
		return parse_fail(err, "Missing URI");
	na->uri_str = str_from(p, (size_t)(q - p));
	if (memchr(p, '?', (size_t)(q - p)) || memchr(p, '<', (size_t)(q - p)) || memchr(p, '>', (size_t)(q - p)))
		return parse_fail(err, "URI with headers must be in <>");
	*pp = q;
	return SIP_OK;
}

/* One element at *pp; leaves *pp after trailing LWS. */
static int na_one(arena_t *a, const char **pp, const char *end, sip_nameaddr_t *na, sip_error_t *err)
{
	const char *p = skip_ws(*pp, end);
	const char *start = p;
	if (p >= end)
		return parse_fail(err, "Empty address");
	if (*p == '"') {
		const char *q = sip_scan_quoted(p, end);
		if (!q)
			return parse_fail(err, "Unterminated quoted string");
		na->display = str_from(p, (size_t)(q - p));
		p = skip_ws(q, end);
		if (p >= end || *p != '<')
			return parse_fail(err, "Bad display name");
	} else if (*p != '<') {
		const char *q = display_tokens(p, end);
		if (q < end && *q == '<') {
			na->display = str_trim(str_from(p, (size_t)(q - p)));
			p = q;
		}
	}
	int rc = na_uri(&p, end, na, err);
	if (rc)
		return rc;
	rc = sip_uri_parse(a, na->uri_str, &na->uri, err);
	if (rc)
		return rc;
	const char *last = p;
	sip_param_t **tail = &na->params;
	rc = sip_params_run(a, &p, end, ';', &tail, err);
	if (rc)
		return rc;
	if (na->params) {
		last = p;
		while (last > start && cc_is(last[-1], CC_WS))
			last--;
		na_shortcuts(a, na);
	}
	na->raw = str_from(start, (size_t)(last - start));
	*pp = p;
	return SIP_OK;
}

int sip_parse_nameaddr(arena_t *a, str_t body, sip_nameaddr_t *out, sip_error_t *err)
{
	memset(out, 0, sizeof(*out));
	if (!body.s)
		return parse_fail(err, "Empty address");
	const char *p = body.s, *end = body.s + body.len;
	int rc = na_one(a, &p, end, out, err);
	if (rc)
		return rc;
	if (p != end)
		return parse_fail(err, *p == ',' ? "More than one address" : "Bad address");
	return SIP_OK;
}

int sip_parse_nameaddr_list(arena_t *a, str_t body, sip_hdr_t *h, sip_nameaddr_t **first,
			    sip_error_t *err)
{
	*first = NULL;
	if (!body.s)
		return parse_fail(err, "Empty address");
	const char *p = body.s, *end = body.s + body.len;
	sip_nameaddr_t **tail = first;
	for (;;) {
		sip_nameaddr_t *na = arena_zalloc(a, sizeof(*na));
		if (!na)
			return nomem(err);
		na->hdr = h;
		int rc = na_one(a, &p, end, na, err);
		if (rc)
			return rc;
		*tail = na;
		tail = &na->next;
		if (p >= end)
			return SIP_OK;
		if (*p != ',')
			return parse_fail(err, "Bad address");
		p++;
	}
}
