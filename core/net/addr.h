// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Socket addresses as values: an IPv4 or IPv6 address with port, comparable
 * and hashable, printable without the resolver.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../lib/str.h"

typedef union {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_storage ss;
} net_addr_t;

static inline socklen_t net_addr_len(const net_addr_t *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

uint16_t net_addr_port(const net_addr_t *a);
void net_addr_set_port(net_addr_t *a, uint16_t port);
/* Address and port equal (IPv4-mapped IPv6 is not folded). */
bool net_addr_eq(const net_addr_t *a, const net_addr_t *b);
/* Address only, port ignored. */
bool net_addr_ip_eq(const net_addr_t *a, const net_addr_t *b);
uint64_t net_addr_hash(const net_addr_t *a);
/* IP text without brackets into buf (INET6_ADDRSTRLEN); returns length. */
size_t net_addr_ip_str(const net_addr_t *a, char *buf, size_t len);
/* Parses a numeric IPv4 or IPv6 (with or without brackets) into a (port untouched
 * except zeroed). Returns false if not a numeric address. */
bool net_addr_from_ip(str_t ip, uint16_t port, net_addr_t *a);
