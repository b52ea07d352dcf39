// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Header parameters (;name=value lists of Via, To/From/Contact, auth-params)
 * and quoted strings.
 */
#include "parser_int.h"

const char *sip_scan_quoted(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\' && ++p >= end)
			return NULL;
	}
	return NULL;
}

str_t sip_unquote(arena_t *a, str_t v)
{
	if (v.len < 2 || v.s[0] != '"' || v.s[v.len - 1] != '"')
		return v;
	str_t in = str_from(v.s + 1, v.len - 2);
	if (!memchr(in.s, '\\', in.len))
		return in;
	char *o = arena_alloc(a, in.len + 1);
	if (!o)
		return STR_NULL;
	size_t n = 0;
	for (size_t i = 0; i < in.len; i++) {
		if (in.s[i] == '\\' && i + 1 < in.len)
			i++;
		o[n++] = in.s[i];
	}
	o[n] = '\0';
	return str_from(o, n);
}

/* Octets that may appear in an unquoted parameter value: tolerant on purpose
 * (IPv6 in received=, '[' ']', UTF-8), stopping only at what delimits. */
static inline bool value_char(char c, char sep)
{
	unsigned char u = (unsigned char)c;
	if (u <= 0x20 || u == 0x7f || c == '"' || c == ',' || c == sep)
		return false;
	return true;
}

int sip_param_one(arena_t *a, const char **pp, const char *end, char sep, sip_param_t **out,
		  sip_error_t *err)
{
	const char *p = *pp;
	const char *n = p;
	p = skip_cls(p, end, CC_TOKEN);
	if (p == n)
		return parse_fail(err, "Bad parameter");
	sip_param_t *prm = arena_alloc(a, sizeof(*prm));
	if (!prm)
		return nomem(err);
	prm->name = str_from(n, (size_t)(p - n));
	prm->value = STR_NULL;
	prm->next = NULL;
	const char *q = skip_ws(p, end);
	if (q < end && *q == '=') {
		q = skip_ws(q + 1, end);
		const char *v = q;
		if (q < end && *q == '"') {
			q = sip_scan_quoted(q, end);
			if (!q)
				return parse_fail(err, "Unterminated quoted string");
		} else {
			while (q < end && value_char(*q, sep))
				q++;
		}
		prm->value = str_from(v, (size_t)(q - v));
		p = q;
	}
	*out = prm;
	*pp = p;
	return SIP_OK;
}

int sip_params_run(arena_t *a, const char **pp, const char *end, char sep, sip_param_t ***tail,
		   sip_error_t *err)
{
	const char *p = *pp;
	for (;;) {
		p = skip_ws(p, end);
		if (p >= end || *p != sep)
			break;
		p = skip_ws(p + 1, end);
		sip_param_t *prm;
		int rc = sip_param_one(a, &p, end, sep, &prm, err);
		if (rc)
			return rc;
		**tail = prm;
		*tail = &prm->next;
	}
	*pp = p;
	return SIP_OK;
}

int sip_parse_params(arena_t *a, str_t s, char sep, sip_param_t **first, sip_error_t *err)
{
	*first = NULL;
	if (!s.s)
		return SIP_OK;
	const char *p = skip_ws(s.s, s.s + s.len), *end = s.s + s.len;
	sip_param_t **tail = first;
	if (p < end && *p != sep) {
		int rc = sip_param_one(a, &p, end, sep, tail, err);
		if (rc)
			return rc;
		tail = &(*tail)->next;
	}
	int rc = sip_params_run(a, &p, end, sep, &tail, err);
	if (rc)
		return rc;
	if (p != end)
		return parse_fail(err, "Bad parameter");
	return SIP_OK;
}

const sip_param_t *sip_param_find(const sip_param_t *l, str_t name)
{
	for (; l; l = l->next)
		if (str_caseeq(l->name, name))
			return l;
	return NULL;
}

bool sip_pname_is(str_t name, const char *lit, size_t n)
{
	if (name.len == n)
		return ci_eq(name.s, lit, n);
	/* an escaped name (";%6C%72" is ";lr") is longer than the literal */
	if (name.len < n || !memchr(name.s, '%', name.len))
		return false;
	size_t j = 0;
	for (size_t i = 0; i < name.len; i++, j++) {
		char c = name.s[i];
		if (c == '%' && i + 2 < name.len && hexval(name.s[i + 1]) >= 0 && hexval(name.s[i + 2]) >= 0) {
			c = (char)(hexval(name.s[i + 1]) * 16 + hexval(name.s[i + 2]));
			i += 2;
		}
		if (j >= n || !ci_eq(&c, lit + j, 1))
			return false;
	}
	return j == n;
}
