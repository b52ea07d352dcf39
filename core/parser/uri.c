// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * URIs: sip/sips (RFC 3261 §19.1, IPv6 references per RFC 5118), tel
 * (RFC 3966, number and parameters only) and any other scheme as an opaque
 * string. Components stay escaped; sip_unescape() decodes on demand.
 */
#include "parser_int.h"

int sip_parse_host(const char **pp, const char *end, str_t *host, bool *ipv6, sip_error_t *err)
{
	const char *p = *pp;
	if (p < end && *p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));
		if (!close)
			return parse_fail(err, "Bad IPv6 reference");
		unsigned colons = 0;
		for (const char *q = p + 1; q < close; q++) {
			if (*q == ':')
				colons++;
			else if (*q != '.' && !cc_is(*q, CC_HEX))
				return parse_fail(err, "Bad IPv6 reference");
		}
		/* RFC 5118 §4.10: the 3-colon form is tolerated, so only the count is checked */
		if (colons < 2)
			return parse_fail(err, "Bad IPv6 reference");
		*host = str_from(p, (size_t)(close + 1 - p));
		*ipv6 = true;
		*pp = close + 1;
		return SIP_OK;
	}
	const char *q = skip_cls(p, end, CC_HOST);
	if (q == p)
		return parse_fail(err, "Bad host");
	*host = str_from(p, (size_t)(q - p));
	*ipv6 = false;
	*pp = q;
	return SIP_OK;
}

int sip_parse_port(const char **pp, const char *end, str_t *port_str, uint16_t *port, sip_error_t *err)
{
	const char *p = *pp;
	const char *q = skip_cls(p, end, CC_DIGIT);
	unsigned long long v;
	if (q == p || q - p > 5 || !str_to_u64(str_from(p, (size_t)(q - p)), 65535, &v))
		return parse_fail(err, "Bad port");
	*port_str = str_from(p, (size_t)(q - p));
	*port = (uint16_t)v;
	*pp = q;
	return SIP_OK;
}

/* uri-parameters: ;name[=value] up to '?' or the end; stops at *pp on '?' */
static int uri_params(arena_t *a, const char **pp, const char *end, sip_uri_t *u, sip_error_t *err)
{
	const char *p = *pp;
	const char *stop = memchr(p, '?', (size_t)(end - p));
	if (!stop)
		stop = end;
	u->params_str = str_from(p + 1, (size_t)(stop - p - 1));
	sip_param_t **tail = &u->params;
	while (p < stop) {
		p++; /* ';' */
		const char *n = p;
		while (p < stop && *p != ';' && *p != '=') {
			if (!cc_is(*p, CC_PARAM))
				return parse_fail(err, "Bad URI parameter");
			p++;
		}
		str_t name = str_from(n, (size_t)(p - n)), value = STR_NULL;
		if (p < stop && *p == '=') {
			const char *v = ++p;
			while (p < stop && *p != ';') {
				/* '=' is tolerated in values: base64 padding from some B2BUAs */
				if (!cc_is(*p, CC_PARAM) && *p != '=')
					return parse_fail(err, "Bad URI parameter");
				p++;
			}
			value = str_from(v, (size_t)(p - v));
		}
		if (name.len == 0) {
			if (value.s)
				return parse_fail(err, "Bad URI parameter");
			continue; /* ";;" carries nothing; tolerated inside URIs */
		}
		sip_param_t *prm = arena_alloc(a, sizeof(*prm));
		if (!prm)
			return nomem(err);
		*prm = (sip_param_t){name, value, NULL};
		*tail = prm;
		tail = &prm->next;
		if (PNAME_IS(name, "lr"))
			u->lr = true;
		else if (!u->transport.s && PNAME_IS(name, "transport"))
			u->transport = value;
		else if (!u->maddr.s && PNAME_IS(name, "maddr"))
			u->maddr = value;
	}
	*pp = stop;
	return SIP_OK;
}

/* Anything printable but what delimits a URI in a header (RFC 3986 without escapes checks). */
static bool opaque_ok(const char *p, const char *end)
{
	for (; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"')
			return false;
	}
	return true;
}

static int uri_headers(const char *p, const char *end, sip_uri_t *u, sip_error_t *err)
{
	/* p at '?' */
	if (!opaque_ok(p + 1, end))
		return parse_fail(err, "Bad URI headers");
	u->headers = str_from(p + 1, (size_t)(end - p - 1));
	return SIP_OK;
}

static int parse_sip(arena_t *a, const char *p, const char *end, sip_uri_t *u, sip_error_t *err)
{
	/* '@' may not appear unescaped after the userinfo, so the first one ends it */
	const char *at = memchr(p, '@', (size_t)(end - p));
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		const char *uend = colon ? colon : at;
		if (uend == p)
			return parse_fail(err, "Bad URI user");
		for (const char *q = p; q < at; q++)
			if (q != colon && !cc_is(*q, CC_USER))
				return parse_fail(err, "Bad URI user");
		u->user = str_from(p, (size_t)(uend - p));
		if (colon)
			u->password = str_from(colon + 1, (size_t)(at - colon - 1));
		p = at + 1;
	}
	int rc = sip_parse_host(&p, end, &u->host, &u->host_is_ipv6, err);
	if (rc)
		return rc;
	if (p < end && *p == ':') {
		p++;
		rc = sip_parse_port(&p, end, &u->port_str, &u->port, err);
		if (rc)
			return rc;
	}
	if (p < end && *p == ';') {
		rc = uri_params(a, &p, end, u, err);
		if (rc)
			return rc;
	}
	if (p < end && *p == '?')
		return uri_headers(p, end, u, err);
	if (p != end)
		return parse_fail(err, "Bad URI");
	return SIP_OK;
}

static int parse_tel(arena_t *a, const char *p, const char *end, sip_uri_t *u, sip_error_t *err)
{
	const char *n = p;
	while (p < end && *p != ';' && *p != '?') {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '@' || c == ',')
			return parse_fail(err, "Bad tel URI");
		p++;
	}
	if (p == n)
		return parse_fail(err, "Bad tel URI");
	u->user = str_from(n, (size_t)(p - n));
	if (p < end && *p == ';') {
		int rc = uri_params(a, &p, end, u, err);
		if (rc)
			return rc;
	}
	if (p < end && *p == '?')
		return uri_headers(p, end, u, err);
	return SIP_OK;
}

int sip_uri_parse(arena_t *a, str_t s, sip_uri_t *u, sip_error_t *err)
{
	memset(u, 0, sizeof(*u));
	u->raw = s;
	if (!s.s || s.len == 0)
		return parse_fail(err, "Empty URI");
	const char *p = s.s, *end = s.s + s.len;
	if (!(((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
		return parse_fail(err, "Bad URI scheme");
	const char *q = skip_cls(p + 1, end, CC_SCHEME);
	if (q >= end || *q != ':')
		return parse_fail(err, "Bad URI scheme");
	u->scheme_str = str_from(p, (size_t)(q - p));
	p = q + 1;
	if (STR_CI_IS(u->scheme_str, "sip"))
		u->scheme = URI_SIP;
	else if (STR_CI_IS(u->scheme_str, "sips"))
		u->scheme = URI_SIPS;
	else if (STR_CI_IS(u->scheme_str, "tel"))
		u->scheme = URI_TEL;
	else
		u->scheme = URI_OTHER;

	switch (u->scheme) {
	case URI_SIP:
	case URI_SIPS:
		return parse_sip(a, p, end, u, err);
	case URI_TEL:
		return parse_tel(a, p, end, u, err);
	case URI_OTHER:
		break;
	}
	if (p == end || !opaque_ok(p, end))
		return parse_fail(err, "Bad URI");
	return SIP_OK;
}

str_t sip_unescape(arena_t *a, str_t s)
{
	char *o = arena_alloc(a, s.len + 1);
	if (!o)
		return STR_NULL;
	size_t n = 0;
	for (size_t i = 0; i < s.len; i++) {
		int hi, lo;
		if (s.s[i] == '%' && i + 2 < s.len && (hi = hexval(s.s[i + 1])) >= 0 &&
		    (lo = hexval(s.s[i + 2])) >= 0) {
			o[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			o[n++] = s.s[i];
		}
	}
	o[n] = '\0';
	return str_from(o, n);
}

uint16_t sip_uri_port(const sip_uri_t *u)
{
	if (u->port)
		return u->port;
	if (u->scheme == URI_SIPS || STR_CI_IS(u->transport, "tls"))
		return 5061;
	return 5060;
}

sip_proto_t sip_uri_proto(const sip_uri_t *u)
{
	if (!u->transport.s)
		return SIP_PROTO_NONE;
	return sip_proto_from_name(u->transport);
}
