// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "sip.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- messages */

int sip_status(const char *msg, size_t len)
{
	if (len >= 12 && memcmp(msg, "SIP/2.0 ", 8) == 0) {
		int v = 0;
		for (int i = 8; i < 11; i++) {
			if (!isdigit((unsigned char)msg[i]))
				return -1;
			v = v * 10 + (msg[i] - '0');
		}
		return v;
	}
	return len > 0 && isupper((unsigned char)msg[0]) ? 0 : -1;
}

size_t sip_head_len(const char *msg, size_t len)
{
	const char *e = memmem(msg, len, "\r\n\r\n", 4);
	return e ? (size_t)(e - msg) + 4 : 0;
}

static sstr_t trim(const char *a, const char *b)
{
	while (a < b && (*a == ' ' || *a == '\t'))
		a++;
	while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
		b--;
	return (sstr_t){a, (size_t)(b - a)};
}

bool sip_next_header(const char *msg, size_t len, size_t *pos, sstr_t *name, sstr_t *value)
{
	size_t i = *pos;
	if (i == 0) { /* skip the start line */
		const char *nl = memchr(msg, '\n', len);
		if (!nl)
			return false;
		i = (size_t)(nl - msg) + 1;
	}
	if (i >= len || msg[i] == '\r' || msg[i] == '\n')
		return false;
	const char *line = msg + i;
	const char *nl = memchr(line, '\n', len - i);
	const char *end = nl ? nl : msg + len;
	const char *colon = memchr(line, ':', (size_t)(end - line));
	if (!colon)
		return false;
	*name = trim(line, colon);
	*value = trim(colon + 1, end);
	*pos = nl ? (size_t)(nl - msg) + 1 : len;
	return true;
}

bool sip_name_is(sstr_t name, const char *full, char compact)
{
	if (compact && name.n == 1 && tolower((unsigned char)name.p[0]) == compact)
		return true;
	size_t n = strlen(full);
	return name.n == n && strncasecmp(name.p, full, n) == 0;
}

bool sip_find(const char *msg, size_t len, const char *full, char compact, sstr_t *value)
{
	size_t pos = 0;
	sstr_t n, v;
	while (sip_next_header(msg, len, &pos, &n, &v))
		if (sip_name_is(n, full, compact)) {
			*value = v;
			return true;
		}
	return false;
}

long sip_frame(const char *buf, size_t len, size_t *skip)
{
	size_t s = 0;
	while (s < len && (buf[s] == '\r' || buf[s] == '\n'))
		s++;
	*skip = s;
	buf += s;
	len -= s;
	size_t head = sip_head_len(buf, len);
	if (!head)
		return len > 65536 ? -1 : 0;
	sstr_t cl;
	size_t body = 0;
	if (sip_find(buf, head, "content-length", 'l', &cl)) {
		for (size_t i = 0; i < cl.n; i++) {
			if (!isdigit((unsigned char)cl.p[i]))
				return -1;
			body = body * 10 + (size_t)(cl.p[i] - '0');
			if (body > 1 << 20)
				return -1;
		}
	} else {
		return -1; /* RFC 3261 §18.3: mandatory on streams */
	}
	if (head + body > len)
		return 0;
	return (long)(head + body);
}

bool sip_param(sstr_t list, const char *name, sstr_t *value)
{
	size_t nl = strlen(name);
	const char *p = list.p, *end = list.p + list.n;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ',' || *p == ';'))
			p++;
		const char *ks = p;
		while (p < end && *p != '=' && *p != ',' && *p != ';' && *p != ' ')
			p++;
		sstr_t key = {ks, (size_t)(p - ks)};
		while (p < end && *p == ' ')
			p++;
		sstr_t val = {p, 0};
		if (p < end && *p == '=') {
			p++;
			while (p < end && *p == ' ')
				p++;
			if (p < end && *p == '"') {
				const char *vs = ++p;
				while (p < end && *p != '"')
					p += (*p == '\\' && p + 1 < end) ? 2 : 1;
				val = (sstr_t){vs, (size_t)(p - vs)};
				if (p < end)
					p++;
			} else {
				const char *vs = p;
				while (p < end && *p != ',' && *p != ';' && *p != ' ')
					p++;
				val = (sstr_t){vs, (size_t)(p - vs)};
			}
		}
		if (key.n == nl && strncasecmp(key.p, name, nl) == 0) {
			*value = val;
			return true;
		}
		/* skip anything up to the next separator */
		while (p < end && *p != ',' && *p != ';')
			p++;
	}
	return false;
}

sstr_t sip_uri_of(sstr_t na)
{
	const char *lt = memchr(na.p, '<', na.n);
	if (lt) {
		const char *gt = memchr(lt, '>', (size_t)(na.p + na.n - lt));
		if (gt)
			return (sstr_t){lt + 1, (size_t)(gt - lt - 1)};
	}
	const char *semi = memchr(na.p, ';', na.n);
	return (sstr_t){na.p, semi ? (size_t)(semi - na.p) : na.n};
}

/* ---------------------------------------------------------------- templates */

int tpl_compile(tpl_t *t, const char *text, const char *const *names, int nnames, char *errbuf, size_t errlen)
{
	t->text = text;
	t->nseg = 0;
	const char *p = text, *lit = text;
	while (*p) {
		if (*p != '{') {
			p++;
			continue;
		}
		const char *close = strchr(p, '}');
		if (!close)
			break;
		size_t n = (size_t)(close - p - 1);
		int var = -1;
		for (int i = 0; i < nnames; i++)
			if (strlen(names[i]) == n && memcmp(names[i], p + 1, n) == 0)
				var = i;
		if (var < 0) {
			snprintf(errbuf, errlen, "template: unknown placeholder {%.*s}", (int)n, p + 1);
			return -1;
		}
		if (t->nseg + 2 > TPL_MAX_SEG) {
			snprintf(errbuf, errlen, "template: too many placeholders");
			return -1;
		}
		if (p > lit)
			t->seg[t->nseg++] = (tpl_seg_t){(uint32_t)(lit - text), (uint32_t)(p - lit), -1};
		t->seg[t->nseg++] = (tpl_seg_t){0, 0, var};
		p = lit = close + 1;
	}
	p = lit + strlen(lit);
	if (p > lit) {
		if (t->nseg + 1 > TPL_MAX_SEG) {
			snprintf(errbuf, errlen, "template: too many placeholders");
			return -1;
		}
		t->seg[t->nseg++] = (tpl_seg_t){(uint32_t)(lit - text), (uint32_t)(p - lit), -1};
	}
	return 0;
}

size_t tpl_render(const tpl_t *t, char *out, size_t cap, const sstr_t *vars)
{
	size_t n = 0;
	for (int i = 0; i < t->nseg; i++) {
		const char *src;
		size_t len;
		if (t->seg[i].var < 0) {
			src = t->text + t->seg[i].off;
			len = t->seg[i].len;
		} else {
			src = vars[t->seg[i].var].p;
			len = vars[t->seg[i].var].n;
		}
		if (n + len > cap)
			return 0;
		memcpy(out + n, src, len);
		n += len;
	}
	return n;
}

size_t fmt_u64(char *p, uint64_t v)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

size_t fmt_hex(char *p, uint64_t v)
{
	static const char hx[] = "0123456789abcdef";
	char tmp[16];
	size_t n = 0;
	do {
		tmp[n++] = hx[v & 15];
		v >>= 4;
	} while (v);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/* ---------------------------------------------------------------- digest */

bool digest_parse_challenge(sstr_t v, digest_chal_t *c)
{
	memset(c, 0, sizeof *c);
	if (v.n < 7 || strncasecmp(v.p, "digest", 6) != 0)
		return false;
	sstr_t rest = {v.p + 6, v.n - 6};
	if (!sip_param(rest, "realm", &c->realm) || !sip_param(rest, "nonce", &c->nonce))
		return false;
	sip_param(rest, "opaque", &c->opaque);
	if (sip_param(rest, "algorithm", &c->algorithm)) {
		if (c->algorithm.n == 7 && strncasecmp(c->algorithm.p, "SHA-256", 7) == 0)
			c->sha256 = true;
		else if (!(c->algorithm.n == 3 && strncasecmp(c->algorithm.p, "MD5", 3) == 0))
			return false; /* -sess variants: not needed by the scenarios */
	}
	if (sip_param(rest, "qop", &c->qop)) {
		/* a quoted list such as "auth,auth-int": we answer with auth */
		const char *p = c->qop.p, *end = c->qop.p + c->qop.n;
		while (p < end) {
			while (p < end && (*p == ',' || *p == ' '))
				p++;
			const char *s = p;
			while (p < end && *p != ',' && *p != ' ')
				p++;
			if (p - s == 4 && strncasecmp(s, "auth", 4) == 0)
				c->qop_auth = true;
		}
	}
	return true;
}

/* H(parts joined by ':') in lower-case hex; returns the hex length. */
static size_t hash_hex(EVP_MD_CTX *ctx, bool sha256, const sstr_t *parts, int n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_DigestInit_ex(ctx, sha256 ? EVP_sha256() : EVP_md5(), NULL);
	for (int i = 0; i < n; i++) {
		if (i)
			EVP_DigestUpdate(ctx, ":", 1);
		EVP_DigestUpdate(ctx, parts[i].p, parts[i].n);
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	for (unsigned i = 0; i < mdlen; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[2 * mdlen] = 0;
	return 2 * mdlen;
}

void digest_response(void *vctx, const digest_chal_t *c, sstr_t user, sstr_t password, sstr_t method, sstr_t uri,
		     sstr_t cnonce, const char *nc8, char *out)
{
	EVP_MD_CTX *ctx = vctx;
	char ha1[65], ha2[65];
	size_t l1 = hash_hex(ctx, c->sha256, (sstr_t[]){user, c->realm, password}, 3, ha1);
	size_t l2 = hash_hex(ctx, c->sha256, (sstr_t[]){method, uri}, 2, ha2);
	if (c->qop_auth)
		hash_hex(ctx, c->sha256,
			 (sstr_t[]){{ha1, l1}, c->nonce, {nc8, 8}, cnonce, SSTR("auth"), {ha2, l2}}, 6, out);
	else
		hash_hex(ctx, c->sha256, (sstr_t[]){{ha1, l1}, c->nonce, {ha2, l2}}, 3, out);
}

size_t digest_credentials(void *ctx, const digest_chal_t *c, sstr_t user, sstr_t password, sstr_t method,
			  sstr_t uri, sstr_t cnonce, uint32_t nc, char *out, size_t cap)
{
	char nc8[9], resp[65];
	snprintf(nc8, sizeof nc8, "%08x", nc);
	digest_response(ctx, c, user, password, method, uri, cnonce, nc8, resp);
	int n = snprintf(out, cap, "Digest username=\"%.*s\", realm=\"%.*s\", nonce=\"%.*s\", uri=\"%.*s\", "
			 "response=\"%s\", algorithm=%s",
			 (int)user.n, user.p, (int)c->realm.n, c->realm.p, (int)c->nonce.n, c->nonce.p, (int)uri.n,
			 uri.p, resp, c->sha256 ? "SHA-256" : "MD5");
	if (n < 0 || (size_t)n >= cap)
		return 0;
	size_t len = (size_t)n;
	if (c->qop_auth) {
		n = snprintf(out + len, cap - len, ", cnonce=\"%.*s\", qop=auth, nc=%s", (int)cnonce.n, cnonce.p, nc8);
		if (n < 0 || (size_t)n >= cap - len)
			return 0;
		len += (size_t)n;
	}
	if (c->opaque.p) {
		n = snprintf(out + len, cap - len, ", opaque=\"%.*s\"", (int)c->opaque.n, c->opaque.p);
		if (n < 0 || (size_t)n >= cap - len)
			return 0;
		len += (size_t)n;
	}
	return len;
}
