// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Credentials and challenges (RFC 3261 §25.1, RFC 7616 token68 aside):
 *   scheme LWS auth-param *( COMMA auth-param )
 * Digest is parsed strictly. Other schemes are opaque to us (RFC 4475 regaut01:
 * a proxy forwards them unchanged), so a body that is not a param list is
 * accepted with an empty list.
 */
#include "parser_int.h"

/* The first occurrence wins, as with sip_param_find(). */
static void set_once(str_t *dst, str_t v)
{
	if (!dst->s)
		*dst = v;
}

static void auth_shortcut(sip_auth_t *o, const sip_param_t *p)
{
	str_t n = p->name, v = p->value;
	switch (n.len) {
	case 2:
		if (ci_eq(n.s, "nc", 2))
			set_once(&o->nc, v);
		break;
	case 3:
		if (ci_eq(n.s, "uri", 3))
			set_once(&o->uri, v);
		else if (ci_eq(n.s, "qop", 3))
			set_once(&o->qop, v);
		break;
	case 5:
		if (ci_eq(n.s, "realm", 5))
			set_once(&o->realm, v);
		else if (ci_eq(n.s, "nonce", 5))
			set_once(&o->nonce, v);
		break;
	case 6:
		if (ci_eq(n.s, "cnonce", 6))
			set_once(&o->cnonce, v);
		else if (ci_eq(n.s, "opaque", 6))
			set_once(&o->opaque, v);
		break;
	case 8:
		if (ci_eq(n.s, "username", 8))
			set_once(&o->username, v);
		else if (ci_eq(n.s, "response", 8))
			set_once(&o->response, v);
		break;
	case 9:
		if (ci_eq(n.s, "algorithm", 9))
			set_once(&o->algorithm, v);
		break;
	default:
		break;
	}
}

int sip_parse_auth(arena_t *a, str_t body, sip_auth_t *o, sip_error_t *err)
{
	memset(o, 0, sizeof(*o));
	if (!body.s)
		return parse_fail(err, "Bad credentials");
	const char *p = skip_ws(body.s, body.s + body.len), *end = body.s + body.len;
	const char *s = p;
	p = skip_cls(p, end, CC_TOKEN);
	if (p == s)
		return parse_fail(err, "Bad credentials");
	o->scheme = str_from(s, (size_t)(p - s));
	if (p < end && !cc_is(*p, CC_WS))
		return parse_fail(err, "Bad credentials");
	bool digest = STR_CI_IS(o->scheme, "digest");
	str_t rest = str_from(p, (size_t)(end - p));
	sip_error_t perr;
	int rc = sip_parse_params(a, rest, ',', &o->params, &perr);
	if (rc == SIP_E_NOMEM)
		return nomem(err);
	if (rc) {
		o->params = NULL;
		return digest ? parse_fail(err, "Bad credentials") : SIP_OK;
	}
	for (sip_param_t *prm = o->params; prm; prm = prm->next) {
		if (prm->value.s) {
			str_t v = sip_unquote(a, prm->value);
			if (!v.s)
				return nomem(err);
			prm->value = v;
		} else if (digest) {
			return parse_fail(err, "Bad credentials");
		}
		auth_shortcut(o, prm);
	}
	return SIP_OK;
}
