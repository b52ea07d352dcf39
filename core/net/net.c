// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"
#include "net_internal.h"

const ksr_cfg_t *net_cfg;
net_listen_t net_listens[NET_MAX_LISTEN];
unsigned net_nlistens;
_Thread_local net_worker_t *net_cur_worker;
net_worker_t *net_workers[256];
void (*net_unreachable)(sip_proto_t proto, const net_addr_t *dst, int err);

void net_set_unreachable_handler(void (*fn)(sip_proto_t proto, const net_addr_t *dst, int err))
{
	net_unreachable = fn;
}

/* Local interface addresses, for "myself" checks against wildcard listeners. */
static net_addr_t *local_ips;
static unsigned nlocal_ips;

static void collect_local_ips(void)
{
	struct ifaddrs *ifa, *p;
	unsigned n = 0;
	if (getifaddrs(&ifa) != 0)
		return;
	for (p = ifa; p; p = p->ifa_next)
		if (p->ifa_addr && (p->ifa_addr->sa_family == AF_INET || p->ifa_addr->sa_family == AF_INET6))
			n++;
	local_ips = calloc(n ? n : 1, sizeof(*local_ips));
	if (local_ips) {
		for (p = ifa; p; p = p->ifa_next) {
			if (!p->ifa_addr)
				continue;
			if (p->ifa_addr->sa_family == AF_INET)
				memcpy(&local_ips[nlocal_ips++].sin, p->ifa_addr, sizeof(struct sockaddr_in));
			else if (p->ifa_addr->sa_family == AF_INET6)
				memcpy(&local_ips[nlocal_ips++].sin6, p->ifa_addr, sizeof(struct sockaddr_in6));
		}
	}
	freeifaddrs(ifa);
}

int net_socket_for(const net_listen_t *l, int type, bool reuseport)
{
	int one = 1;
	int fd = socket(l->addr.sa.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (l->addr.sa.sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, &l->addr.sa, net_addr_len(&l->addr)) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* The first non-loopback (else loopback) local address of family, as text. */
static void first_local_ip(int family, char *out, size_t len)
{
	const net_addr_t *lo = NULL;
	for (unsigned i = 0; i < nlocal_ips; i++) {
		const net_addr_t *a = &local_ips[i];
		if (a->sa.sa_family != family)
			continue;
		bool loop = family == AF_INET ? (ntohl(a->sin.sin_addr.s_addr) >> 24) == 127
					      : IN6_IS_ADDR_LOOPBACK(&a->sin6.sin6_addr) ||
						    IN6_IS_ADDR_LINKLOCAL(&a->sin6.sin6_addr);
		if (!loop) {
			net_addr_ip_str(a, out, len);
			return;
		}
		if (!lo)
			lo = a;
	}
	if (lo)
		net_addr_ip_str(lo, out, len);
}

static void fill_listen(net_listen_t *l, unsigned idx, const cfg_listen_t *c)
{
	memset(l, 0, sizeof(*l));
	l->idx = idx;
	l->proto = c->proto;
	memcpy(&l->addr.ss, &c->addr, sizeof(c->addr));
	l->any = l->addr.sa.sa_family == AF_INET6
		      ? IN6_IS_ADDR_UNSPECIFIED(&l->addr.sin6.sin6_addr)
		      : l->addr.sin.sin_addr.s_addr == htonl(INADDR_ANY);
	net_addr_ip_str(&l->addr, l->ip, sizeof(l->ip));
	l->port = c->adv_port ? c->adv_port : c->port;
	/* A wildcard address cannot go into Via or Record-Route: advertise the
	 * machine's first address of that family that is not loopback (set
	 * `advertise` when another one is meant). */
	char ip[48];
	snprintf(ip, sizeof(ip), "%s", l->ip);
	if (l->any && !c->adv_host[0])
		first_local_ip(l->addr.sa.sa_family, ip, sizeof(ip));
	if (c->adv_host[0])
		snprintf(l->host_buf, sizeof(l->host_buf), "%s", c->adv_host);
	else if (l->addr.sa.sa_family == AF_INET6)
		snprintf(l->host_buf, sizeof(l->host_buf), "[%s]", ip);
	else
		snprintf(l->host_buf, sizeof(l->host_buf), "%s", ip);
	l->host = str_cstr(l->host_buf);
	snprintf(l->sock_str, sizeof(l->sock_str), l->addr.sa.sa_family == AF_INET6 ? "%s:[%s]:%u" : "%s:%s:%u",
		 sip_proto_name(l->proto), l->ip, (unsigned)net_addr_port(&l->addr));
}

int net_init(const ksr_cfg_t *cfg, char *errbuf, size_t errlen)
{
	net_cfg = cfg;
	net_nlistens = 0;
	collect_local_ips(); /* before the listen table: wildcard entries advertise one */
	if (cfg->nlisten > NET_MAX_LISTEN) {
		snprintf(errbuf, errlen, "too many listen addresses (max %d)", NET_MAX_LISTEN);
		return -1;
	}
	for (unsigned i = 0; i < cfg->nlisten; i++) {
		net_listen_t *l = &net_listens[net_nlistens];
		cfg_listen_t c = cfg->listen[i];
		fill_listen(l, net_nlistens, &c);
		/* A throwaway bind now turns "address in use" into a start-up error
		 * instead of a worker that silently fails later. */
		int fd = net_socket_for(l, l->proto == SIP_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM, true);
		if (fd < 0) {
			snprintf(errbuf, errlen, "cannot bind %s: %s", c.spec, strerror(-fd));
			return -1;
		}
		if (c.port == 0) {
			/* port 0 (tests): keep the port the kernel picked for every worker */
			net_addr_t bound;
			socklen_t sl = sizeof(bound);
			getsockname(fd, &bound.sa, &sl);
			c.port = net_addr_port(&bound);
			net_addr_set_port((net_addr_t *)&c.addr, c.port);
			fill_listen(l, net_nlistens, &c);
		}
		close(fd);
		net_nlistens++;
	}
	net_tcp_init();
	return 0;
}

void net_shutdown(void)
{
	net_tcp_shutdown();
	free(local_ips);
	local_ips = NULL;
	nlocal_ips = 0;
}

unsigned net_listen_count(void)
{
	return net_nlistens;
}

const net_listen_t *net_listen_get(unsigned idx)
{
	return idx < net_nlistens ? &net_listens[idx] : NULL;
}

const net_listen_t *net_listen_pick(sip_proto_t proto, int family)
{
	for (unsigned i = 0; i < net_nlistens; i++)
		if (net_listens[i].proto == proto && net_listens[i].addr.sa.sa_family == family)
			return &net_listens[i];
	return NULL;
}

const net_listen_t *net_listen_by_str(str_t sock)
{
	for (unsigned i = 0; i < net_nlistens; i++)
		if (str_caseeq(sock, str_cstr(net_listens[i].sock_str)))
			return &net_listens[i];
	return NULL;
}

bool net_is_myself_ip(const net_addr_t *a)
{
	for (unsigned i = 0; i < net_nlistens; i++) {
		const net_listen_t *l = &net_listens[i];
		if (l->addr.sa.sa_family != a->sa.sa_family)
			continue;
		if (!l->any && net_addr_ip_eq(&l->addr, a))
			return true;
		if (l->any)
			for (unsigned j = 0; j < nlocal_ips; j++)
				if (net_addr_ip_eq(&local_ips[j], a))
					return true;
	}
	return false;
}

static bool port_is_ours(uint16_t port, sip_proto_t proto)
{
	for (unsigned i = 0; i < net_nlistens; i++) {
		const net_listen_t *l = &net_listens[i];
		if (proto != SIP_PROTO_NONE && proto != l->proto)
			continue;
		if (port == l->port || port == net_addr_port(&l->addr))
			return true;
	}
	return false;
}

bool net_is_myself(str_t host, uint16_t port, sip_proto_t proto)
{
	net_addr_t a;
	if (port == 0)
		port = proto == SIP_PROTO_TLS ? 5061 : 5060;
	if (!port_is_ours(port, proto))
		return false;
	if (net_addr_from_ip(host, 0, &a) && net_is_myself_ip(&a))
		return true;
	for (unsigned i = 0; i < net_nlistens; i++)
		if (str_caseeq(host, net_listens[i].host))
			return true;
	if (net_cfg)
		for (unsigned i = 0; i < net_cfg->naliases; i++)
			if (str_caseeq(host, str_cstr(net_cfg->aliases[i])))
				return true;
	return false;
}

int net_resolve(str_t host, uint16_t port, net_addr_t *out)
{
	char name[256];
	struct addrinfo hints = {0}, *res = NULL;
	if (net_addr_from_ip(host, port, out))
		return 0;
	if (host.len == 0 || host.len >= sizeof(name))
		return -EINVAL;
	memcpy(name, host.s, host.len);
	name[host.len] = '\0';
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	/* Blocking lookup: names are rare in SIP routing (hosts come as IPs from
	 * Via/Contact/location); RFC 3263 SRV/NAPTR and an async resolver come with
	 * the dispatcher work. */
	if (getaddrinfo(name, NULL, &hints, &res) != 0 || !res)
		return -EHOSTUNREACH;
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	net_addr_set_port(out, port);
	freeaddrinfo(res);
	return 0;
}

int net_send(const net_dest_t *d, const char *buf, size_t len)
{
	switch (d->proto) {
	case SIP_PROTO_UDP:
		return net_udp_send(net_cur_worker, d, buf, len);
	case SIP_PROTO_TCP:
		return net_tcp_send(d, buf, len);
	default:
		return -EPROTONOSUPPORT;
	}
}

net_worker_t *net_worker_start(unsigned id, struct ev_loop *loop, net_msg_fn on_msg)
{
	net_worker_t *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->id = id;
	w->loop = loop;
	w->on_msg = on_msg;
	w->batch = net_cfg && net_cfg->udp.recv_batch ? net_cfg->udp.recv_batch : 32;
	if (w->batch > NET_MAX_BATCH)
		w->batch = NET_MAX_BATCH;
	for (unsigned i = 0; i < NET_MAX_LISTEN; i++)
		w->udp_fd[i] = w->tcp_fd[i] = -1;
	net_cur_worker = w;
	if (id < 256)
		net_workers[id] = w;
	if (net_udp_worker_start(w) < 0 || net_tcp_worker_start(w) < 0) {
		net_worker_stop(w);
		return NULL;
	}
	return w;
}

void net_worker_stop(net_worker_t *w)
{
	if (!w)
		return;
	net_tcp_worker_stop(w);
	net_udp_worker_stop(w);
	if (w->id < 256 && net_workers[w->id] == w)
		net_workers[w->id] = NULL;
	if (net_cur_worker == w)
		net_cur_worker = NULL;
	free(w);
}
