// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * The SIP parser. Zero-copy: every str_t handed out is a slice of the buffer
 * given to sip_parse_msg() (borrowed: valid while that buffer lives), except
 * values that needed unfolding, unescaping or unquoting, which are copied into
 * the message's arena (also valid until the message is done).
 *
 * sip_parse_msg() does one pass: start line, the index of every header
 * (name, type, raw line, trimmed body), and framing (Content-Length, body).
 * Header bodies are parsed lazily by the sip_msg_*() accessors on first use and
 * the result is cached on the header; a second call costs a pointer load.
 * sip_msg_validate() parses every header the parser knows, eagerly, and is what
 * decides whether a message is acceptable at all (see sip_error_t).
 *
 * Nothing here allocates with malloc: all memory comes from the arena passed in.
 * Nothing here is shared between threads.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/arena.h"
#include "../lib/str.h"

/* ---------------------------------------------------------------- errors */

/*
 * An error says what was wrong (reason, a short human phrase used as the
 * reason phrase of a 400) and what a server should do about it (status: the
 * reply code to send for a request, 0 = drop silently).
 */
typedef struct {
	int status;         /* 400, 505, 416, 420 ...; 0 = drop (e.g. bad responses) */
	const char *reason; /* static string, e.g. "Bad CSeq" */
} sip_error_t;

enum {
	SIP_OK = 0,
	SIP_E_PARSE = -1,   /* malformed; see sip_error_t for details */
	SIP_E_NOMEM = -2,   /* arena exhausted */
	SIP_E_TOOBIG = -3,  /* over a configured limit */
	SIP_E_INCOMPLETE = -4, /* stream framing: need more bytes */
};

/* ---------------------------------------------------------------- enums */

typedef enum { SIP_REQUEST = 1, SIP_REPLY = 2 } sip_msg_type_t;

/* Method ids are bits so KSR.is_method_in() can test a set with one AND. */
typedef enum {
	METH_OTHER = 0,
	METH_INVITE = 1u << 0,
	METH_ACK = 1u << 1,
	METH_BYE = 1u << 2,
	METH_CANCEL = 1u << 3,
	METH_REGISTER = 1u << 4,
	METH_OPTIONS = 1u << 5,
	METH_SUBSCRIBE = 1u << 6,
	METH_NOTIFY = 1u << 7,
	METH_PUBLISH = 1u << 8,
	METH_REFER = 1u << 9,
	METH_INFO = 1u << 10,
	METH_UPDATE = 1u << 11,
	METH_PRACK = 1u << 12,
	METH_MESSAGE = 1u << 13,
	METH_KDMQ = 1u << 14,
	METH_GET = 1u << 15,
	METH_POST = 1u << 16,
	METH_PUT = 1u << 17,
	METH_DELETE = 1u << 18,
} sip_method_t;

/* Method names are case-sensitive (RFC 3261 §7.1). Returns METH_OTHER if unknown. */
sip_method_t sip_method_id(str_t name);

typedef enum {
	HDR_OTHER = 0,
	HDR_VIA,
	HDR_FROM,
	HDR_TO,
	HDR_CALLID,
	HDR_CSEQ,
	HDR_CONTACT,
	HDR_ROUTE,
	HDR_RECORD_ROUTE,
	HDR_MAX_FORWARDS,
	HDR_CONTENT_LENGTH,
	HDR_CONTENT_TYPE,
	HDR_EXPIRES,
	HDR_MIN_EXPIRES,
	HDR_SUPPORTED,
	HDR_REQUIRE,
	HDR_PROXY_REQUIRE,
	HDR_UNSUPPORTED,
	HDR_AUTHORIZATION,
	HDR_PROXY_AUTHORIZATION,
	HDR_WWW_AUTHENTICATE,
	HDR_PROXY_AUTHENTICATE,
	HDR_USER_AGENT,
	HDR_SERVER,
	HDR_ALLOW,
	HDR_PATH,
	HDR_DATE,
	HDR_EVENT,
	HDR_SUBJECT,
	HDR_ACCEPT,
	HDR_CONTENT_ENCODING,
	HDR_RETRY_AFTER,
	HDR_SESSION_EXPIRES,
	/* the remaining headers with a compact form (RFC 3841, 3892, 3515, 6086, 4474, 4488),
	   typed so that a lookup by either name finds them */
	HDR_ACCEPT_CONTACT,      /* a */
	HDR_REFERRED_BY,         /* b */
	HDR_REQUEST_DISPOSITION, /* d */
	HDR_REJECT_CONTACT,      /* j */
	HDR_IDENTITY_INFO,       /* n */
	HDR_REFER_TO,            /* r */
	HDR_ALLOW_EVENTS,        /* u */
	HDR_IDENTITY,            /* y */
	HDR__COUNT
} sip_hdr_type_t;

/* Long and compact names, case-insensitive. HDR_OTHER if unknown. */
sip_hdr_type_t sip_hdr_type(str_t name);
/* Canonical long name of a known header type ("Via", "Call-ID", ...). */
const char *sip_hdr_name(sip_hdr_type_t t);

typedef enum {
	SIP_PROTO_NONE = 0,
	SIP_PROTO_UDP,
	SIP_PROTO_TCP,
	SIP_PROTO_TLS,
	SIP_PROTO_SCTP,
	SIP_PROTO_WS,
	SIP_PROTO_WSS,
	SIP_PROTO_OTHER,
} sip_proto_t;

sip_proto_t sip_proto_from_name(str_t name); /* case-insensitive; OTHER if unknown */
const char *sip_proto_name(sip_proto_t p);   /* lower case: "udp", "tcp", ... */

/* ---------------------------------------------------------------- params */

/*
 * A generic ;name[=value] parameter. value.s == NULL when there was no '='.
 * Values are as written (a quoted-string keeps its quotes), except in sip_auth_t.
 */
typedef struct sip_param {
	str_t name;
	str_t value;
	struct sip_param *next;
} sip_param_t;

/* First parameter whose name matches case-insensitively, or NULL. */
const sip_param_t *sip_param_find(const sip_param_t *list, str_t name);

/* ---------------------------------------------------------------- URI */

typedef enum { URI_SIP = 1, URI_SIPS, URI_TEL, URI_OTHER } sip_uri_scheme_t;

typedef struct {
	str_t raw;        /* the whole URI as given */
	sip_uri_scheme_t scheme;
	str_t scheme_str; /* "sip", "tel", "urn", ... */
	str_t user;       /* raw (still escaped); for tel: the number */
	str_t password;
	str_t host;       /* for IPv6 references: with the brackets */
	str_t port_str;
	uint16_t port;    /* 0 if absent */
	bool host_is_ipv6;
	sip_param_t *params;   /* uri-parameters (;transport=, ;lr, ;maddr= ...) */
	str_t params_str;      /* after the first ';' of the host part up to '?' or the end, without ';' */
	str_t headers;         /* after '?', raw, without '?' */
	/* shortcuts, filled when present */
	str_t transport;       /* value of ;transport= */
	str_t maddr;
	bool lr;
} sip_uri_t;

/*
 * Parses a URI (sip, sips, tel; others only as scheme + opaque rest).
 * Returns SIP_OK, SIP_E_PARSE (then err says why, if err != NULL) or SIP_E_NOMEM.
 */
int sip_uri_parse(arena_t *a, str_t s, sip_uri_t *out, sip_error_t *err);
/* %HH-decodes once (RFC 3261 §19.1.4); a '%' not followed by two hex digits is kept.
 * Result in the arena (STR_NULL if the arena is exhausted); may contain NUL bytes. */
str_t sip_unescape(arena_t *a, str_t s);
/* Default port for the URI: its port, or 5061 for sips / transport=tls, else 5060. */
uint16_t sip_uri_port(const sip_uri_t *u);
/* Transport implied by the URI: ;transport= or SIP_PROTO_NONE when absent. */
sip_proto_t sip_uri_proto(const sip_uri_t *u);

/* ---------------------------------------------------------------- Via */

typedef struct sip_via {
	str_t raw;          /* this via-parm, as written (one element of a comma list) */
	str_t proto_name;   /* "SIP" */
	str_t version;      /* "2.0" */
	str_t transport;    /* "UDP", "TCP", anything (opaque token) */
	sip_proto_t proto;
	str_t host;         /* sent-by host; IPv6 with brackets */
	str_t port_str;
	uint16_t port;      /* 0 if absent */
	sip_param_t *params;
	str_t branch;       /* STR_NULL when absent */
	str_t received;     /* value, STR_NULL when absent */
	str_t rport_val;    /* value, STR_NULL when absent or empty */
	bool has_rport;     /* ";rport" present, with or without value */
	str_t maddr;
	str_t ttl;
	str_t params_str;   /* from the first ';' (excluded) to the end of this via-parm */
	struct sip_via *next; /* next via-parm in this message, across header lines */
	struct sip_hdr *hdr;  /* the header line this via-parm is on */
	bool repaired;        /* sip_msg_via1() skipped empty params or list elements in or after it
	                         (RFC 4475 badinv01): good enough to send a 400, refused by
	                         sip_msg_validate(); sip_parse_via_list() refuses them instead */
} sip_via_t;

/* ---------------------------------------------------------------- To/From/Contact/Route */

typedef struct sip_nameaddr {
	str_t raw;           /* the whole element */
	str_t display;       /* as written, quotes included; STR_NULL if none */
	str_t uri_str;       /* inside <> if present */
	sip_uri_t uri;       /* parsed uri_str */
	bool angle;          /* written with <> */
	sip_param_t *params; /* header parameters (after '>' or after the URI) */
	str_t tag;           /* To/From: tag param value */
	/* Contact only */
	str_t expires_str;   /* STR_NULL if absent */
	str_t q_str;
	str_t instance;      /* +sip.instance, without the surrounding quotes */
	str_t reg_id;
	struct sip_nameaddr *next; /* next element (comma list / further header lines) */
	struct sip_hdr *hdr;
} sip_nameaddr_t;

typedef struct {
	bool star;               /* "Contact: *" */
	sip_nameaddr_t *first;   /* NULL if star or none */
	unsigned count;
} sip_contacts_t;

typedef struct {
	uint32_t seq;
	str_t seq_str;
	str_t method;
	sip_method_t method_id;
} sip_cseq_t;

/* ---------------------------------------------------------------- auth */

typedef struct {
	str_t scheme;      /* "Digest" */
	str_t username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc;
	sip_param_t *params; /* every auth-param, values unquoted */
} sip_auth_t;

/* ---------------------------------------------------------------- headers, message */

typedef struct sip_hdr {
	sip_hdr_type_t type;
	str_t name;        /* as written */
	str_t body;        /* trimmed value; may contain folded CRLF+WSP sequences */
	str_t raw;         /* the whole header, from name to the CRLF that ends it (included) */
	unsigned index;    /* position in msg->hdrs */
	void *parsed;      /* lazily parsed body (type depends on header), cached: sip_via_t (first
	                      via-parm of this line), sip_nameaddr_t (To/From; Contact/Route/
	                      Record-Route: first element of this line), sip_cseq_t, sip_auth_t,
	                      sip_param_t (token lists); NULL for other types */
	struct sip_hdr *next_same; /* next header of the same type (HDR_OTHER: not linked) */
} sip_hdr_t;

typedef struct sip_msg {
	arena_t *arena;
	const char *buf;   /* the message (borrowed) */
	size_t len;        /* octets of this message (a datagram may carry more after it) */
	sip_msg_type_t type;

	/* request line */
	str_t method;
	sip_method_t method_id;
	str_t ruri_str;
	str_t version;
	/* status line */
	int status;
	str_t reason;

	str_t first_line;  /* without CRLF */
	sip_hdr_t *hdrs;   /* array, in order */
	unsigned nhdrs;
	sip_hdr_t *first[HDR__COUNT]; /* first header of each known type, or NULL */
	sip_hdr_t *last[HDR__COUNT];
	str_t headers_block; /* from the first header to the empty line (excluded) */
	str_t body;          /* framed by Content-Length (or to end of datagram if absent) */
	long content_length; /* -1 when no Content-Length header (or an unusable one: parse failed) */

	/* lazily filled caches (use the accessors) */
	sip_uri_t *ruri;
	sip_via_t *vias;
	bool vias_done;
	sip_error_t err;     /* last error from parse/validate/accessor */
	sip_contacts_t *contacts; /* cache of sip_msg_contacts() */
	uint64_t lists_done; /* bit (1 << type): every header of that type parsed and linked */
} sip_msg_t;

/* sip_parse_msg() indexes at most this many headers (SIP_E_TOOBIG, 400 beyond). */
#define SIP_MAX_HEADERS 1024

typedef enum {
	SIP_PARSE_DATAGRAM = 1u << 0, /* UDP: body is the rest of the datagram when no Content-Length;
	                                 trailing octets beyond Content-Length are ignored */
	SIP_PARSE_STREAM = 1u << 1,   /* TCP: Content-Length is mandatory */
} sip_parse_flags_t;

/*
 * Indexes a message. `buf` must stay valid while the message is used.
 * On SIP_E_PARSE, m->err tells what to answer; m->type and whatever was parsed
 * before the error stay filled so a 400 can still be built when the Via, From,
 * To, Call-ID and CSeq headers are usable.
 */
int sip_parse_msg(sip_msg_t *m, const char *buf, size_t len, arena_t *a, unsigned flags);

/*
 * Stream framing: looks for a complete message at the start of buf.
 * Returns the message length (> 0), SIP_E_INCOMPLETE when more bytes are
 * needed, or SIP_E_PARSE when framing is lost (no/bad/duplicate Content-Length,
 * header block or whole message larger than max_len): the connection must then
 * be closed.
 * Leading CRLFs (keep-alives) are not skipped here; see sip_skip_keepalive().
 */
long sip_frame_stream(const char *buf, size_t len, size_t max_len);
/* Number of leading CR/LF octets at buf (RFC 5626 keep-alive pings). */
size_t sip_skip_keepalive(const char *buf, size_t len);

/*
 * Parses every header the parser knows and checks the rules of RFC 3261 that
 * do not depend on policy (mandatory headers, CSeq range and method match,
 * version, Content-Length, Max-Forwards range, URI syntax ...). Returns
 * SIP_OK or SIP_E_PARSE with m->err set (status 0 for replies: drop).
 */
int sip_msg_validate(sip_msg_t *m);

/* Lazy accessors: NULL (and m->err set) if missing or malformed. */
sip_uri_t *sip_msg_ruri(sip_msg_t *m);
sip_via_t *sip_msg_via1(sip_msg_t *m);     /* top via-parm */
sip_via_t *sip_msg_via2(sip_msg_t *m);     /* second via-parm (next hop of a reply) */
sip_nameaddr_t *sip_msg_from(sip_msg_t *m);
sip_nameaddr_t *sip_msg_to(sip_msg_t *m);
sip_cseq_t *sip_msg_cseq(sip_msg_t *m);
str_t sip_msg_callid(sip_msg_t *m);        /* STR_NULL if absent */
sip_contacts_t *sip_msg_contacts(sip_msg_t *m); /* all Contact headers, NULL if none/malformed */
sip_nameaddr_t *sip_msg_routes(sip_msg_t *m);   /* all Route elements in order, NULL if none */
sip_nameaddr_t *sip_msg_record_routes(sip_msg_t *m);
/* -1 absent, -2 malformed, else 0..255 (values above 255 are malformed) */
int sip_msg_max_forwards(sip_msg_t *m);
/* -1 absent or malformed, else the delta-seconds (clamped to UINT32_MAX) */
long sip_msg_expires(sip_msg_t *m);
/* Option tags of Supported/Require/Proxy-Require/Unsupported as a list (name only);
 * also the token lists of Allow and Allow-Events. NULL for any other type. */
sip_param_t *sip_msg_option_tags(sip_msg_t *m, sip_hdr_type_t which);
/* First Authorization (type HDR_AUTHORIZATION) or Proxy-Authorization credentials. */
sip_auth_t *sip_msg_auth(sip_msg_t *m, sip_hdr_type_t which);
/* Parses one header's value as credentials/challenge. */
sip_auth_t *sip_hdr_auth(sip_msg_t *m, sip_hdr_t *h);
/* Header body with folding (CRLF followed by WSP) turned into single spaces (arena copy
 * only when needed). */
str_t sip_hdr_unfold(sip_msg_t *m, const sip_hdr_t *h);

/* Header lookup by any name (long, compact, or unknown), case-insensitive. */
sip_hdr_t *sip_msg_hdr_find(sip_msg_t *m, str_t name);
/* The idx-th header with that name; negative idx counts from the end (-1 = last). */
sip_hdr_t *sip_msg_hdr_find_idx(sip_msg_t *m, str_t name, int idx);
unsigned sip_msg_hdr_count(sip_msg_t *m, str_t name);

/* Standalone parsers, used by the accessors and by other subsystems. */
int sip_parse_via_list(arena_t *a, str_t body, sip_hdr_t *h, sip_via_t **first, sip_error_t *err);
int sip_parse_nameaddr_list(arena_t *a, str_t body, sip_hdr_t *h, sip_nameaddr_t **first,
			    sip_error_t *err);
int sip_parse_nameaddr(arena_t *a, str_t body, sip_nameaddr_t *out, sip_error_t *err);
/* s: name[=value] elements separated by sep, LWS allowed around them and a leading sep
 * optional; an empty element is an error. */
int sip_parse_params(arena_t *a, str_t s, char sep, sip_param_t **first, sip_error_t *err);
int sip_parse_auth(arena_t *a, str_t body, sip_auth_t *out, sip_error_t *err);
