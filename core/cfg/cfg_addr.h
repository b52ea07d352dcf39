// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Internal to core/cfg: the "host[:port]" syntax shared by listen specs,
 * "advertise", aliases and rpc.http, so that they all accept and reject the
 * same spellings. Only numeric addresses are understood (inet_pton): a
 * configuration never waits for DNS.
 */
#include <stddef.h>
#include <stdint.h>

#include "../lib/str.h"

enum {
	CFG_HP_NAME = 1 << 0,   /* a host name is allowed, not only an IP literal */
	CFG_HP_ANY = 1 << 1,    /* "*" is allowed and means 0.0.0.0 */
	CFG_HP_PORT = 1 << 2,   /* ":port" is required */
	CFG_HP_NOPORT = 1 << 3, /* ":port" is not allowed */
};

typedef struct {
	char host[256]; /* without brackets; "0.0.0.0" for "*" */
	int family;     /* AF_INET, AF_INET6, or AF_UNSPEC for a host name */
	uint16_t port;  /* 0 when absent */
} cfg_hostport_t;

/*
 * Splits "host[:port]" where host is IPv4, [IPv6], or what flags allow.
 * Returns NULL, or a static phrase saying what is wrong ("port must be 1..65535").
 */
const char *cfg_split_hostport(str_t s, unsigned flags, cfg_hostport_t *out);

/* Writes s as a double-quoted, escaped, possibly shortened C string into buf. */
void cfg_quote(char *buf, size_t len, const char *s, size_t n);
