// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Just enough SIP for a load generator: find headers by name in a message we
 * trust to be well formed (it comes from the server under test or from
 * ourselves), frame messages on a stream, render requests from templates
 * compiled once, and compute digest responses. Nothing here allocates.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
	const char *p;
	size_t n;
} sstr_t;

#define SSTR(lit) ((sstr_t){(lit), sizeof(lit) - 1})

/* ---- messages */

/* Status code of a reply, 0 for a request, -1 if neither. */
int sip_status(const char *msg, size_t len);
/* End of the header section (offset just past the empty line), or 0. */
size_t sip_head_len(const char *msg, size_t len);
/*
 * Iterates the header lines of msg[0..len): *pos starts at 0 and is advanced.
 * Fills name and value (trimmed); returns false after the last header.
 * Continuation lines are not joined (nothing we talk to folds).
 */
bool sip_next_header(const char *msg, size_t len, size_t *pos, sstr_t *name, sstr_t *value);
/* Header name equal to full (case-insensitive) or to its compact form (0: none). */
bool sip_name_is(sstr_t name, const char *full, char compact);
/* First header of that name; false if none. */
bool sip_find(const char *msg, size_t len, const char *full, char compact, sstr_t *value);
/*
 * Stream framing: how many octets the message at buf takes (headers and
 * Content-Length body), 0 when incomplete, -1 when it cannot be framed.
 * *skip receives the number of leading CR/LF (keepalives) before it.
 */
long sip_frame(const char *buf, size_t len, size_t *skip);
/* Value of parameter name (case-insensitive) in a ;-separated or ,-separated list. */
bool sip_param(sstr_t list, const char *name, sstr_t *value);
/* URI inside <...>, or up to the first ';' when there are no brackets. */
sstr_t sip_uri_of(sstr_t nameaddr);

/* ---- templates: "{name}" placeholders, resolved to variable numbers once */

#define TPL_MAX_SEG 48
typedef struct {
	uint32_t off, len; /* literal text, or ... */
	int var;           /* ... variable number (-1: literal) */
} tpl_seg_t;
typedef struct {
	const char *text;
	int nseg;
	tpl_seg_t seg[TPL_MAX_SEG];
} tpl_t;

/* 0, or -1 when a placeholder names no variable in names[0..nnames) (errbuf says which). */
int tpl_compile(tpl_t *t, const char *text, const char *const *names, int nnames, char *errbuf, size_t errlen);
/* Renders into out (cap octets); returns the length, or 0 if it did not fit. */
size_t tpl_render(const tpl_t *t, char *out, size_t cap, const sstr_t *vars);

/* Writes v in decimal (or lower-case hex) at p; returns the length. */
size_t fmt_u64(char *p, uint64_t v);
size_t fmt_hex(char *p, uint64_t v);

/* ---- digest (RFC 2617, RFC 7616 MD5 and SHA-256) */

typedef struct {
	sstr_t realm, nonce, opaque, qop, algorithm;
	bool sha256;
	bool qop_auth; /* the challenge offers qop=auth */
} digest_chal_t;

/* Parses the value of WWW-Authenticate / Proxy-Authenticate. false if not Digest. */
bool digest_parse_challenge(sstr_t value, digest_chal_t *c);
/*
 * Writes the credentials (the header value after "Authorization: ") for user
 * and password answering c, for method and uri; cnonce and nc as given.
 * Returns the length, 0 if it did not fit. ctx is an EVP_MD_CTX* (reused).
 */
size_t digest_credentials(void *ctx, const digest_chal_t *c, sstr_t user, sstr_t password, sstr_t method,
			  sstr_t uri, sstr_t cnonce, uint32_t nc, char *out, size_t cap);
/* Hex request-digest alone (for the tests): out gets 32 or 64 characters and a NUL. */
void digest_response(void *ctx, const digest_chal_t *c, sstr_t user, sstr_t password, sstr_t method, sstr_t uri,
		     sstr_t cnonce, const char *nc8, char *out);
