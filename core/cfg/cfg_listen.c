// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Listen specs ("udp:1.2.3.4:5060 advertise sip.example.com:5060") and the
 * host[:port] syntax under them. Errors are static phrases so that the loader
 * can put them into its one-line message without owning any memory.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "cfg_addr.h"

#define LISTEN_FORMAT "\"proto:address:port [advertise host:port]\""

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_alnum(char ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

void cfg_quote(char *buf, size_t len, const char *s, size_t n)
{
	/* Room for the longest escape (\xNN), "...", the closing quote and NUL. */
	const size_t tail = 4 + 3 + 1 + 1;
	size_t o = 0;

	if (len < tail + 1) {
		if (len)
			buf[0] = '\0';
		return;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (o + tail > len) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

/* RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
static bool is_host_name(str_t s)
{
	size_t label = 0;

	if (s.len == 0 || s.len > 253)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char ch = s.s[i];
		if (ch == '.') {
			if (label == 0 || s.s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum(ch) && !(ch == '-' && label > 0))
			return false;
		if (++label > 63)
			return false;
	}
	return s.s[s.len - 1] != '-';
}

static bool all_digits_and_dots(str_t s)
{
	for (size_t i = 0; i < s.len; i++)
		if (!is_digit(s.s[i]) && s.s[i] != '.')
			return false;
	return true;
}

static const char *parse_port(str_t s, uint16_t *port)
{
	unsigned v = 0;

	if (s.len == 0)
		return "missing port after ':'";
	for (size_t i = 0; i < s.len; i++) {
		if (!is_digit(s.s[i]))
			return "port must be a number 1..65535";
		if (v <= 65535)
			v = v * 10 + (unsigned)(s.s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return "port must be 1..65535";
	*port = (uint16_t)v;
	return NULL;
}

/* Host part without brackets: IPv4, "*" or a name, as flags allow. */
static const char *parse_plain_host(str_t h, unsigned flags, cfg_hostport_t *out)
{
	struct in_addr a4;

	if (h.len == 0)
		return "missing address";
	if (h.len >= sizeof out->host)
		return "host is too long";
	if ((flags & CFG_HP_ANY) && h.len == 1 && h.s[0] == '*') {
		strcpy(out->host, "0.0.0.0");
		out->family = AF_INET;
		return NULL;
	}
	memcpy(out->host, h.s, h.len);
	out->host[h.len] = '\0';
	if (inet_pton(AF_INET, out->host, &a4) == 1) {
		out->family = AF_INET;
		return NULL;
	}
	if (all_digits_and_dots(h))
		return "bad IPv4 address";
	if ((flags & CFG_HP_NAME) && is_host_name(h)) {
		out->family = AF_UNSPEC;
		return NULL;
	}
	if (flags & CFG_HP_NAME)
		return "host must be a name, an IPv4 address or an [IPv6] address";
	if (flags & CFG_HP_ANY)
		return "address must be IPv4, [IPv6] or *";
	return "address must be IPv4 or [IPv6]";
}

/* "[v6]" at the start of s; *rest gets what follows the ']'. */
static const char *parse_bracketed(str_t s, cfg_hostport_t *out, str_t *rest)
{
	struct in6_addr a6;
	const char *close = memchr(s.s, ']', s.len);
	size_t n;

	if (!close)
		return "missing ']' after IPv6 address";
	n = (size_t)(close - s.s) - 1;
	if (n == 0 || n >= INET6_ADDRSTRLEN)
		return "bad IPv6 address";
	memcpy(out->host, s.s + 1, n);
	out->host[n] = '\0';
	if (inet_pton(AF_INET6, out->host, &a6) != 1)
		return "bad IPv6 address";
	out->family = AF_INET6;
	*rest = str_from(close + 1, s.len - n - 2);
	return NULL;
}

const char *cfg_split_hostport(str_t s, unsigned flags, cfg_hostport_t *out)
{
	const char *why;
	str_t rest;

	memset(out, 0, sizeof *out);
	if (s.len && s.s[0] == '[') {
		why = parse_bracketed(s, out, &rest);
	} else {
		const char *colon = memchr(s.s, ':', s.len);
		size_t hlen = colon ? (size_t)(colon - s.s) : s.len;
		/* Two colons can only be an IPv6 address, and without brackets its
		 * last group cannot be told from a port. */
		if (colon && memchr(colon + 1, ':', s.len - hlen - 1))
			return "an IPv6 address must be in brackets, e.g. [::1]:5060";
		why = parse_plain_host(str_from(s.s, hlen), flags, out);
		rest = str_from(s.s + hlen, s.len - hlen);
	}
	if (why)
		return why;
	if (rest.len == 0)
		return (flags & CFG_HP_PORT) ? "missing :port" : NULL;
	if (rest.s[0] != ':')
		return "unexpected text after the address";
	if (flags & CFG_HP_NOPORT)
		return "no :port expected here";
	return parse_port(str_from(rest.s + 1, rest.len - 1), &out->port);
}

static int listen_err(char *errbuf, size_t errlen, const char *spec, const char *why)
{
	char q[128];

	cfg_quote(q, sizeof q, spec, strlen(spec));
	snprintf(errbuf, errlen, "expected " LISTEN_FORMAT " (%s), got %s", why, q);
	return -1;
}

static const char *parse_proto(str_t name, sip_proto_t *proto)
{
	static const struct {
		const char *name;
		sip_proto_t proto;
		const char *why; /* NULL when supported */
	} protos[] = {
		{"udp", SIP_PROTO_UDP, NULL},
		{"tcp", SIP_PROTO_TCP, NULL},
		{"tls", SIP_PROTO_TLS, "proto tls is not supported yet; use udp or tcp"},
		{"ws", SIP_PROTO_WS, "proto ws is not supported yet; use udp or tcp"},
		{"wss", SIP_PROTO_WSS, "proto wss is not supported yet; use udp or tcp"},
		{"sctp", SIP_PROTO_SCTP, "proto sctp is not supported; use udp or tcp"},
	};

	for (size_t i = 0; i < sizeof protos / sizeof protos[0]; i++) {
		if (!str_caseeq_lit(name, protos[i].name))
			continue;
		*proto = protos[i].proto;
		return protos[i].why;
	}
	return "proto must be udp or tcp";
}

static void fill_sockaddr(cfg_listen_t *out, int family)
{
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->addr;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(out->port);
		inet_pton(AF_INET6, out->host, &a->sin6_addr);
		out->addrlen = sizeof *a;
		return;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)&out->addr;
	a->sin_family = AF_INET;
	a->sin_port = htons(out->port);
	inet_pton(AF_INET, out->host, &a->sin_addr);
	out->addrlen = sizeof *a;
}

/* "proto:address:port" */
static const char *parse_bind(str_t s, cfg_listen_t *out)
{
	const char *colon = memchr(s.s, ':', s.len);
	cfg_hostport_t hp;
	const char *why;

	if (!colon)
		return "proto, address and port must be separated by ':'";
	why = parse_proto(str_from(s.s, (size_t)(colon - s.s)), &out->proto);
	if (why)
		return why;
	s = str_from(colon + 1, s.len - (size_t)(colon - s.s) - 1);
	why = cfg_split_hostport(s, CFG_HP_ANY | CFG_HP_PORT, &hp);
	if (why)
		return why;
	if (strlen(hp.host) >= sizeof out->host)
		return "address is too long";
	strcpy(out->host, hp.host);
	out->port = hp.port;
	fill_sockaddr(out, hp.family);
	return NULL;
}

/* "advertise host[:port]"; without a port the listen port is advertised. */
static const char *parse_advertise(str_t s, cfg_listen_t *out)
{
	static const char kw[] = "advertise";
	cfg_hostport_t hp;
	const char *why;

	if (s.len <= sizeof kw - 1 || strncmp(s.s, kw, sizeof kw - 1) != 0 ||
	    !is_space(s.s[sizeof kw - 1]))
		return "only \"advertise host[:port]\" may follow the address";
	s = str_trim(str_from(s.s + sizeof kw - 1, s.len - (sizeof kw - 1)));
	why = cfg_split_hostport(s, CFG_HP_NAME, &hp);
	if (why)
		return why;
	/* It goes into Via and Contact as is, where an IPv6 address needs brackets. */
	if (hp.family == AF_INET6)
		snprintf(out->adv_host, sizeof out->adv_host, "[%.*s]", INET6_ADDRSTRLEN, hp.host);
	else
		strcpy(out->adv_host, hp.host); /* both are 256 bytes */
	out->adv_port = hp.port ? hp.port : out->port;
	return NULL;
}

int cfg_parse_listen(const char *spec, cfg_listen_t *out, char *errbuf, size_t errlen)
{
	str_t s;
	size_t i = 0;
	const char *why;

	memset(out, 0, sizeof *out);
	if (!spec)
		return listen_err(errbuf, errlen, "", "empty");
	s = str_trim(str_cstr(spec));
	if (s.len == 0)
		return listen_err(errbuf, errlen, spec, "empty");
	if (s.len >= sizeof out->spec)
		return listen_err(errbuf, errlen, spec, "too long");
	memcpy(out->spec, s.s, s.len);

	while (i < s.len && !is_space(s.s[i]))
		i++;
	why = parse_bind(str_from(s.s, i), out);
	if (!why && i < s.len)
		why = parse_advertise(str_trim(str_from(s.s + i, s.len - i)), out);
	if (why) {
		memset(out, 0, sizeof *out);
		return listen_err(errbuf, errlen, spec, why);
	}
	return 0;
}
