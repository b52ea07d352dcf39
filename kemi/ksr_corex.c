// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * KSR.corex: R-URI user and User-Agent tests, extended flags, choosing the
 * sending or receiving socket, raw sends, file read/write, as Kamailio's corex.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/lib/log.h"
#include "ksr_textops.h"

static int clip(size_t n)
{
	return n > 200 ? 200 : (int)n;
}

/* ---------------------------------------------------------------- tests */

int ksr_corex_has_ruri_user(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	if (c->msg->sip.type != SIP_REQUEST)
		return -1; /* a reply has no R-URI */
	sip_uri_t *u = msg_ruri(c->msg);
	return u && u->user.len ? 1 : -1;
}

int ksr_corex_has_user_agent(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	const sip_hdr_t *h = c->msg->sip.first[HDR_USER_AGENT];
	return h && h->body.len ? 1 : -1;
}

/* ---------------------------------------------------------------- extended flags */

#define XFLAG_MAX 63

static int xflag_op(ksr_ctx_t *c, long long bit, int op)
{
	if (bit < 0 || bit > XFLAG_MAX)
		return -1;
	uint64_t m = 1ULL << bit;
	if (op > 0)
		c->msg->xflags |= m;
	else if (op < 0)
		c->msg->xflags &= ~m;
	else
		return c->msg->xflags & m ? 1 : -1;
	return 1;
}

int ksr_corex_setxflag(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return xflag_op(c, a[0].i, 1);
}

int ksr_corex_resetxflag(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return xflag_op(c, a[0].i, -1);
}

int ksr_corex_isxflagset(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return xflag_op(c, a[0].i, 0);
}

/* ---------------------------------------------------------------- sockets */

/* "[proto:]host[:port]" as Kamailio's socket specs; host may be [IPv6]. */
typedef struct {
	sip_proto_t proto; /* NONE: any */
	str_t host;        /* without brackets */
	unsigned port;     /* 0: any */
} sock_spec_t;

static bool parse_port(str_t s, unsigned *port)
{
	unsigned long long v;
	if (!str_to_u64(s, 65535, &v) || !v)
		return false;
	*port = (unsigned)v;
	return true;
}

static bool parse_sock_spec(str_t s, sock_spec_t *out)
{
	memset(out, 0, sizeof(*out));
	s = str_trim(s);
	const char *colon = memchr(s.s, ':', s.len);
	if (colon && s.s[0] != '[') {
		sip_proto_t p = sip_proto_from_name(str_from(s.s, (size_t)(colon - s.s)));
		if (p != SIP_PROTO_OTHER && p != SIP_PROTO_NONE) {
			out->proto = p;
			s = str_from(colon + 1, s.len - (size_t)(colon + 1 - s.s));
		}
	}
	if (s.len && s.s[0] == '[') {
		const char *close = memchr(s.s, ']', s.len);
		if (!close)
			return false;
		out->host = str_from(s.s + 1, (size_t)(close - s.s - 1));
		str_t rest = str_from(close + 1, s.len - (size_t)(close + 1 - s.s));
		if (rest.len && (rest.s[0] != ':' || !parse_port(str_from(rest.s + 1, rest.len - 1), &out->port)))
			return false;
		return out->host.len > 0;
	}
	colon = memchr(s.s, ':', s.len);
	if (colon && !memchr(colon + 1, ':', s.len - (size_t)(colon + 1 - s.s))) {
		out->host = str_from(s.s, (size_t)(colon - s.s));
		if (!parse_port(str_from(colon + 1, s.len - (size_t)(colon + 1 - s.s)), &out->port))
			return false;
	} else {
		out->host = s; /* a bare IPv6 address has several colons and no port */
	}
	return out->host.len > 0;
}

static bool listen_matches(const net_listen_t *l, const sock_spec_t *sp)
{
	if (sp->proto && l->proto != sp->proto)
		return false;
	if (sp->port && sp->port != net_addr_port(&l->addr) && sp->port != l->port)
		return false;
	str_t host = l->host;
	if (host.len > 1 && host.s[0] == '[')
		host = str_from(host.s + 1, host.len - 2);
	return str_caseeq(sp->host, str_cstr(l->ip)) || str_caseeq(sp->host, host);
}

static const net_listen_t *find_listen(const sock_spec_t *sp)
{
	for (unsigned i = 0; i < net_listen_count(); i++) {
		const net_listen_t *l = net_listen_get(i);
		if (listen_matches(l, sp))
			return l;
	}
	return NULL;
}

/*
 * The socket for a spec: 1 with *l set (NULL when none matches, which Kamailio
 * only warns about), -1 if the spec is malformed.
 */
static int socket_for(ksr_ctx_t *c, str_t spec, const net_listen_t **l)
{
	sock_spec_t sp;
	if (!parse_sock_spec(spec, &sp)) {
		ksr_text_err(c, "bad socket '%.*s' (expected [proto:]host[:port])", clip(spec.len), spec.s);
		return -1;
	}
	*l = find_listen(&sp);
	if (!*l) {
		str_t cid = c->msg ? sip_msg_callid(&c->msg->sip) : STR_NULL;
		LOG_MSG_WARN(LUA, &cid, "no local socket matches '%.*s'", clip(spec.len), spec.s);
	}
	return 1;
}

int ksr_corex_set_send_socket(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const net_listen_t *l;
	if (!a[0].s.len) {
		c->msg->send_sock = NULL; /* empty: back to automatic */
		return 1;
	}
	if (socket_for(c, a[0].s, &l) < 0)
		return -1;
	if (l)
		c->msg->send_sock = l;
	return 1;
}

int ksr_corex_set_recv_socket(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const net_listen_t *l;
	if (!a[0].s.len)
		return 1;
	if (socket_for(c, a[0].s, &l) < 0)
		return -1;
	if (l) {
		/* as if received there: $Ri/$Rp, and local replies leave from it (a new
		 * connection for a stream transport, as in Kamailio) */
		c->msg->rcv.local = l;
		c->msg->rcv.proto = l->proto;
		c->msg->rcv.conn_id = 0;
	}
	return 1;
}

/* ---------------------------------------------------------------- raw sends */

/*
 * URIs are parsed in a per-worker scratch arena: send_data also runs in
 * event routes, where there is no message (and so no message arena).
 */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local arena_t *scratch;

static void scratch_free(void *p)
{
	arena_free(p);
	free(p);
}

static void scratch_key_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

static arena_t *scratch_arena(void)
{
	if (!scratch) {
		pthread_once(&scratch_once, scratch_key_init);
		scratch = malloc(sizeof(*scratch));
		if (!scratch)
			return NULL;
		arena_init(scratch, 4096);
		pthread_setspecific(scratch_key, scratch);
	}
	arena_reset(scratch);
	return scratch;
}

/* Where a URI leads: its transport (UDP by default), host and port (5060/5061 by default). */
static int uri_dest(ksr_ctx_t *c, str_t uri, net_dest_t *d)
{
	sip_uri_t u;
	arena_t *ar = scratch_arena();
	memset(d, 0, sizeof(*d));
	if (!ar || sip_uri_parse(ar, uri, &u, NULL) != SIP_OK || (u.scheme != URI_SIP && u.scheme != URI_SIPS)) {
		ksr_text_err(c, "bad destination '%.*s'", clip(uri.len), uri.s);
		return -1;
	}
	sip_proto_t proto = sip_uri_proto(&u);
	d->proto = proto == SIP_PROTO_NONE ? SIP_PROTO_UDP : proto;
	if (d->proto != SIP_PROTO_UDP && d->proto != SIP_PROTO_TCP) {
		ksr_text_err(c, "transport %s not supported", sip_proto_name(d->proto));
		return -1;
	}
	int rc = net_resolve(u.maddr.len ? u.maddr : u.host, sip_uri_port(&u), &d->addr);
	if (rc < 0) {
		ksr_text_err(c, "cannot resolve '%.*s': %s", STR_FMT(u.host), strerror(-rc));
		return -1;
	}
	return 0;
}

/* Sends data to uri, from `from` when it fits the destination (else a socket of the right kind). */
static int send_data(ksr_ctx_t *c, str_t uri, const net_listen_t *from, str_t data)
{
	net_dest_t d;
	if (uri_dest(c, uri, &d) < 0)
		return -1;
	d.from = from && from->proto == d.proto && from->addr.sa.sa_family == d.addr.sa.sa_family
			 ? from
			 : net_listen_pick(d.proto, d.addr.sa.sa_family);
	if (!d.from) {
		ksr_text_err(c, "no %s socket to reach '%.*s'", sip_proto_name(d.proto), clip(uri.len), uri.s);
		return -1;
	}
	int rc = net_send(&d, data.s, data.len);
	if (rc < 0) {
		ksr_text_err(c, "sending to '%.*s' failed: %s", clip(uri.len), uri.s, strerror(-rc));
		return -1;
	}
	return 1;
}

int ksr_corex_send_data(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return send_data(c, a[0].s, NULL, a[1].s);
}

int ksr_corex_sendx(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const net_listen_t *from = NULL;
	if (a[1].s.len && socket_for(c, a[1].s, &from) < 0)
		return -1;
	return send_data(c, a[0].s, from, a[2].s);
}

/* ---------------------------------------------------------------- files */

static bool c_path(ksr_ctx_t *c, str_t path, char out[PATH_MAX])
{
	if (!path.len || path.len >= PATH_MAX || memchr(path.s, '\0', path.len)) {
		ksr_text_err(c, "bad file name '%.*s'", clip(path.len), path.s);
		return false;
	}
	memcpy(out, path.s, path.len);
	out[path.len] = '\0';
	return true;
}

/* The last file read, per worker: Lua copies it as soon as the call returns. */
static _Thread_local char *file_buf;
static _Thread_local size_t file_cap;
static pthread_key_t file_key;
static pthread_once_t file_once = PTHREAD_ONCE_INIT;

static void file_key_init(void)
{
	pthread_key_create(&file_key, free);
}

static char *file_room(size_t n)
{
	if (n <= file_cap)
		return file_buf;
	char *p = realloc(file_buf, n);
	if (!p)
		return NULL;
	pthread_once(&file_once, file_key_init);
	pthread_setspecific(file_key, p);
	file_buf = p;
	file_cap = n;
	return p;
}

int ksr_corex_file_read(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	char path[PATH_MAX];
	if (!c_path(c, a[0].s, path))
		return -1;
	FILE *f = fopen(path, "rb");
	if (!f) {
		ksr_text_err(c, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	size_t n = 0;
	int rc = -1;
	for (;;) {
		char *buf = file_room(n + 4096 > file_cap ? (n + 4096) * 2 : file_cap);
		if (!buf)
			break;
		size_t got = fread(buf + n, 1, file_cap - n, f);
		n += got;
		if (got == 0) {
			rc = ferror(f) ? -1 : 1;
			break;
		}
	}
	if (rc < 0)
		ksr_text_err(c, "cannot read '%s'", path);
	fclose(f);
	return rc < 0 ? -1 : ksr_xval_str(r, str_from(file_buf, n));
}

int ksr_corex_file_write(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	char path[PATH_MAX];
	if (!c_path(c, a[0].s, path))
		return -1;
	FILE *f = fopen(path, "wb");
	if (!f) {
		ksr_text_err(c, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	bool ok = fwrite(a[1].s.s, 1, a[1].s.len, f) == a[1].s.len;
	ok = fclose(f) == 0 && ok;
	if (!ok)
		ksr_text_err(c, "cannot write '%s'", path);
	return ok ? 1 : -1;
}
