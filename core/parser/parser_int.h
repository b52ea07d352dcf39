// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Private to core/parser: character classes and the helpers the parser files
 * share. Nothing outside core/parser includes this; other subsystems use
 * sip_parser.h only.
 *
 * Every scanner here takes a [p, end) range and never reads at or past end.
 * Header bodies may hold folded lines (CRLF + WSP); the sub-parsers treat CR and
 * LF like SP, which is what folding means.
 */
#include <stdint.h>

#include "sip_parser.h"

enum {
	CC_TOKEN = 1 << 0, /* RFC 3261 token */
	CC_WS = 1 << 1,    /* SP HTAB CR LF */
	CC_DIGIT = 1 << 2,
	CC_HEX = 1 << 3,
	CC_SCHEME = 1 << 4, /* ALPHA DIGIT + - . */
	CC_HOST = 1 << 5,   /* hostname / IPv4: alphanum - . and (tolerated) _ */
	CC_USER = 1 << 6,   /* user and password of a SIP URI, '%' included */
	CC_PARAM = 1 << 7,  /* uri-parameter name and value chars, '%' included */
};

#define CC_ALNUM(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9'))
#define CC_MARK(c) \
	((c) == '-' || (c) == '_' || (c) == '.' || (c) == '!' || (c) == '~' || (c) == '*' || (c) == '\'' || \
	 (c) == '(' || (c) == ')')
#define CC_UNRESERVED(c) (CC_ALNUM(c) || CC_MARK(c))
#define CC_OF(c) \
	((CC_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '!' || (c) == '%' || (c) == '*' || (c) == '_' || \
	  (c) == '+' || (c) == '`' || (c) == '\'' || (c) == '~' ? CC_TOKEN : 0) | \
	 ((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\n' ? CC_WS : 0) | \
	 ((c) >= '0' && (c) <= '9' ? CC_DIGIT : 0) | \
	 (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F') ? CC_HEX : 0) | \
	 (CC_ALNUM(c) || (c) == '+' || (c) == '-' || (c) == '.' ? CC_SCHEME : 0) | \
	 (CC_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '_' ? CC_HOST : 0) | \
	 (CC_UNRESERVED(c) || (c) == '&' || (c) == '=' || (c) == '+' || (c) == '$' || (c) == ',' || (c) == ';' || \
	  (c) == '?' || (c) == '/' || (c) == '%' || (c) == '#' ? CC_USER : 0) | \
	 (CC_UNRESERVED(c) || (c) == '[' || (c) == ']' || (c) == '/' || (c) == ':' || (c) == '&' || (c) == '+' || \
	  (c) == '$' || (c) == '%' ? CC_PARAM : 0))
#define CC_R4(n) CC_OF(n), CC_OF((n) + 1), CC_OF((n) + 2), CC_OF((n) + 3)
#define CC_R16(n) CC_R4(n), CC_R4((n) + 4), CC_R4((n) + 8), CC_R4((n) + 12)
#define CC_R64(n) CC_R16(n), CC_R16((n) + 16), CC_R16((n) + 32), CC_R16((n) + 48)

/* Built at compile time; a copy per file is 256 bytes and keeps the symbol static. */
static const uint8_t sip_cc[256] = {CC_R64(0), CC_R64(64), CC_R64(128), CC_R64(192)};

static inline bool cc_is(char c, unsigned cls)
{
	return sip_cc[(unsigned char)c] & cls;
}

static inline const char *skip_ws(const char *p, const char *end)
{
	while (p < end && cc_is(*p, CC_WS))
		p++;
	return p;
}

static inline const char *skip_cls(const char *p, const char *end, unsigned cls)
{
	while (p < end && cc_is(*p, cls))
		p++;
	return p;
}

static inline bool has_ws(str_t s)
{
	for (size_t i = 0; i < s.len; i++)
		if (cc_is(s.s[i], CC_WS))
			return true;
	return false;
}

static inline int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Case-insensitive compare of s with a lower-case literal of the same length. */
static inline bool ci_eq(const char *s, const char *lit, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char l = lit[i];
		char c = s[i];
		if (l >= 'a' && l <= 'z' ? (c | 0x20) != l : c != l)
			return false;
	}
	return true;
}

static inline bool str_ci_is(str_t s, const char *lit, size_t n)
{
	return s.len == n && ci_eq(s.s, lit, n);
}
#define STR_CI_IS(s, lit) str_ci_is((s), (lit), sizeof(lit) - 1)

static inline int set_err(sip_error_t *err, int status, const char *reason, int rc)
{
	if (err) {
		err->status = status;
		err->reason = reason;
	}
	return rc;
}

static inline int parse_fail(sip_error_t *err, const char *reason)
{
	return set_err(err, 400, reason, SIP_E_PARSE);
}

static inline int nomem(sip_error_t *err)
{
	return set_err(err, 500, "Out of memory", SIP_E_NOMEM);
}

/* ---- shared between the parser files (params.c, uri.c) */

/*
 * p at an opening '"': returns the octet after the closing quote, or NULL when
 * the string is not terminated before end. Quoted-pairs (\x) are skipped whole.
 */
const char *sip_scan_quoted(const char *p, const char *end);
/* A quoted-string without its quotes, quoted-pairs resolved (arena copy only if needed). */
str_t sip_unquote(arena_t *a, str_t v);
/*
 * Parses *( LWS sep LWS name [ LWS "=" LWS value ] ) from *pp, appending to
 * **tail. Stops (leaving *pp after any LWS) at the first octet that does not
 * start another parameter: the caller decides whether that octet is acceptable.
 */
int sip_params_run(arena_t *a, const char **pp, const char *end, char sep, sip_param_t ***tail,
		   sip_error_t *err);
/* Parses one name[=value] at *pp (no leading separator). */
int sip_param_one(arena_t *a, const char **pp, const char *end, char sep, sip_param_t **out,
		  sip_error_t *err);
/* Compares a (possibly %-escaped) parameter name with a lower-case literal. */
bool sip_pname_is(str_t name, const char *lit, size_t n);
#define PNAME_IS(name, lit) sip_pname_is((name), (lit), sizeof(lit) - 1)
/* host [":" port] of a SIP URI or a Via sent-by; see uri.c. */
int sip_parse_host(const char **pp, const char *end, str_t *host, bool *ipv6, sip_error_t *err);
int sip_parse_port(const char **pp, const char *end, str_t *port_str, uint16_t *port, sip_error_t *err);

/* sip_hdr_type() for a name already known to be a non-empty token (the index). */
sip_hdr_type_t sip_hdr_type_tok(str_t name);

/* sip_parse_via_list() that skips empty params and list elements, marking the
 * via-parm repaired (see sip_via_t), so that a 400 can still be sent. */
int sip_parse_via_list_lax(arena_t *a, str_t body, sip_hdr_t *h, sip_via_t **first, sip_error_t *err);

/* ---- shared between access.c and validate.c */

/* Parses (once) every header of type t as option tags, linking across lines;
 * unlike sip_msg_option_tags(), an empty list is not an error. */
int sip_opt_tags_parse(sip_msg_t *m, sip_hdr_type_t t);
/* True when m->err was set because the arena ran out, not because of the input. */
bool sip_err_is_nomem(const sip_msg_t *m);
