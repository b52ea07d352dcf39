// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "addr.h"

#include <arpa/inet.h>
#include <string.h>

#include "../lib/hash.h"

uint16_t net_addr_port(const net_addr_t *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->sin6.sin6_port : a->sin.sin_port);
}

void net_addr_set_port(net_addr_t *a, uint16_t port)
{
	if (a->sa.sa_family == AF_INET6)
		a->sin6.sin6_port = htons(port);
	else
		a->sin.sin_port = htons(port);
}

bool net_addr_ip_eq(const net_addr_t *a, const net_addr_t *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET6)
		return !memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, 16);
	return a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
}

bool net_addr_eq(const net_addr_t *a, const net_addr_t *b)
{
	return net_addr_ip_eq(a, b) && net_addr_port(a) == net_addr_port(b);
}

uint64_t net_addr_hash(const net_addr_t *a)
{
	uint64_t h = hash_seed;
	uint16_t port = net_addr_port(a);
	if (a->sa.sa_family == AF_INET6)
		h = hash64_mix(h, &a->sin6.sin6_addr, 16);
	else
		h = hash64_mix(h, &a->sin.sin_addr, 4);
	h = hash64_mix(h, &port, sizeof(port));
	return hash64_final(h);
}

/* Dotted quad by hand: inet_ntop goes through sprintf, and replies need this per message. */
static size_t ipv4_str(const struct in_addr *in, char *buf, size_t len)
{
	const unsigned char *b = (const unsigned char *)&in->s_addr;
	char *p = buf;
	if (len < 16)
		return 0;
	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];
		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
		if (i < 3)
			*p++ = '.';
	}
	*p = '\0';
	return (size_t)(p - buf);
}

size_t net_addr_ip_str(const net_addr_t *a, char *buf, size_t len)
{
	if (a->sa.sa_family == AF_INET)
		return ipv4_str(&a->sin.sin_addr, buf, len);
	const void *src = a->sa.sa_family == AF_INET6 ? (const void *)&a->sin6.sin6_addr
						    : (const void *)&a->sin.sin_addr;
	if (!inet_ntop(a->sa.sa_family, src, buf, (socklen_t)len)) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	return strlen(buf);
}

bool net_addr_from_ip(str_t ip, uint16_t port, net_addr_t *a)
{
	char tmp[64];
	if (ip.len >= 2 && ip.s[0] == '[' && ip.s[ip.len - 1] == ']') {
		ip.s++;
		ip.len -= 2;
	}
	if (ip.len == 0 || ip.len >= sizeof(tmp))
		return false;
	memcpy(tmp, ip.s, ip.len);
	tmp[ip.len] = '\0';
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, tmp, &a->sin.sin_addr) == 1) {
		a->sin.sin_family = AF_INET;
		a->sin.sin_port = htons(port);
		return true;
	}
	if (inet_pton(AF_INET6, tmp, &a->sin6.sin6_addr) == 1) {
		a->sin6.sin6_family = AF_INET6;
		a->sin6.sin6_port = htons(port);
		return true;
	}
	return false;
}
