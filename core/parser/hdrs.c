// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * Name tables: header names (long and compact), methods, transports.
 * Header-name lookup runs once per header line, so it dispatches on the
 * length and the first letter before comparing anything.
 */
#include "parser_int.h"

static const char *const hdr_names[HDR__COUNT] = {
	[HDR_OTHER] = "",
	[HDR_VIA] = "Via",
	[HDR_FROM] = "From",
	[HDR_TO] = "To",
	[HDR_CALLID] = "Call-ID",
	[HDR_CSEQ] = "CSeq",
	[HDR_CONTACT] = "Contact",
	[HDR_ROUTE] = "Route",
	[HDR_RECORD_ROUTE] = "Record-Route",
	[HDR_MAX_FORWARDS] = "Max-Forwards",
	[HDR_CONTENT_LENGTH] = "Content-Length",
	[HDR_CONTENT_TYPE] = "Content-Type",
	[HDR_EXPIRES] = "Expires",
	[HDR_MIN_EXPIRES] = "Min-Expires",
	[HDR_SUPPORTED] = "Supported",
	[HDR_REQUIRE] = "Require",
	[HDR_PROXY_REQUIRE] = "Proxy-Require",
	[HDR_UNSUPPORTED] = "Unsupported",
	[HDR_AUTHORIZATION] = "Authorization",
	[HDR_PROXY_AUTHORIZATION] = "Proxy-Authorization",
	[HDR_WWW_AUTHENTICATE] = "WWW-Authenticate",
	[HDR_PROXY_AUTHENTICATE] = "Proxy-Authenticate",
	[HDR_USER_AGENT] = "User-Agent",
	[HDR_SERVER] = "Server",
	[HDR_ALLOW] = "Allow",
	[HDR_PATH] = "Path",
	[HDR_DATE] = "Date",
	[HDR_EVENT] = "Event",
	[HDR_SUBJECT] = "Subject",
	[HDR_ACCEPT] = "Accept",
	[HDR_CONTENT_ENCODING] = "Content-Encoding",
	[HDR_RETRY_AFTER] = "Retry-After",
	[HDR_SESSION_EXPIRES] = "Session-Expires",
	[HDR_ACCEPT_CONTACT] = "Accept-Contact",
	[HDR_REFERRED_BY] = "Referred-By",
	[HDR_REQUEST_DISPOSITION] = "Request-Disposition",
	[HDR_REJECT_CONTACT] = "Reject-Contact",
	[HDR_IDENTITY_INFO] = "Identity-Info",
	[HDR_REFER_TO] = "Refer-To",
	[HDR_ALLOW_EVENTS] = "Allow-Events",
	[HDR_IDENTITY] = "Identity",
};

const char *sip_hdr_name(sip_hdr_type_t t)
{
	if ((unsigned)t >= HDR__COUNT)
		return "";
	return hdr_names[t];
}

static sip_hdr_type_t compact_type(char c)
{
	switch (c | 0x20) {
	case 'a': return HDR_ACCEPT_CONTACT;
	case 'b': return HDR_REFERRED_BY;
	case 'c': return HDR_CONTENT_TYPE;
	case 'd': return HDR_REQUEST_DISPOSITION;
	case 'e': return HDR_CONTENT_ENCODING;
	case 'f': return HDR_FROM;
	case 'i': return HDR_CALLID;
	case 'j': return HDR_REJECT_CONTACT;
	case 'k': return HDR_SUPPORTED;
	case 'l': return HDR_CONTENT_LENGTH;
	case 'm': return HDR_CONTACT;
	case 'n': return HDR_IDENTITY_INFO;
	case 'o': return HDR_EVENT;
	case 'r': return HDR_REFER_TO;
	case 's': return HDR_SUBJECT;
	case 't': return HDR_TO;
	case 'u': return HDR_ALLOW_EVENTS;
	case 'v': return HDR_VIA;
	case 'x': return HDR_SESSION_EXPIRES;
	case 'y': return HDR_IDENTITY;
	default: return HDR_OTHER;
	}
}

/*
 * Compares token octets with a literal made of lower-case letters and '-'.
 * Setting bit 0x20 folds case; on token octets it cannot make anything else
 * equal to a letter or to '-' (only CR, not a token octet, becomes '-'), so
 * eight octets are compared at a time without a per-octet class test.
 */
static inline bool tok_eq(const char *s, const char *lit, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t a, b;
		memcpy(&a, s + i, 8);
		memcpy(&b, lit + i, 8);
		if ((a | 0x2020202020202020ull) != b)
			return false;
	}
	for (; i < n; i++)
		if ((s[i] | 0x20) != lit[i])
			return false;
	return true;
}

#define IS(lit, t) \
	do { \
		if (n.len == sizeof(lit) - 1 && tok_eq(n.s + 1, (lit) + 1, sizeof(lit) - 2)) \
			return (t); \
	} while (0)

sip_hdr_type_t sip_hdr_type_tok(str_t n)
{
	if (n.len == 1)
		return (n.s[0] | 0x20) >= 'a' && (n.s[0] | 0x20) <= 'z' ? compact_type(n.s[0]) : HDR_OTHER;
	switch (n.s[0] | 0x20) {
	case 'a':
		IS("allow", HDR_ALLOW);
		IS("accept", HDR_ACCEPT);
		IS("authorization", HDR_AUTHORIZATION);
		IS("allow-events", HDR_ALLOW_EVENTS);
		IS("accept-contact", HDR_ACCEPT_CONTACT);
		break;
	case 'c':
		IS("cseq", HDR_CSEQ);
		IS("call-id", HDR_CALLID);
		IS("contact", HDR_CONTACT);
		IS("content-type", HDR_CONTENT_TYPE);
		IS("content-length", HDR_CONTENT_LENGTH);
		IS("content-encoding", HDR_CONTENT_ENCODING);
		break;
	case 'd':
		IS("date", HDR_DATE);
		break;
	case 'e':
		IS("event", HDR_EVENT);
		IS("expires", HDR_EXPIRES);
		break;
	case 'f':
		IS("from", HDR_FROM);
		break;
	case 'i':
		IS("identity", HDR_IDENTITY);
		IS("identity-info", HDR_IDENTITY_INFO);
		break;
	case 'm':
		IS("max-forwards", HDR_MAX_FORWARDS);
		IS("min-expires", HDR_MIN_EXPIRES);
		break;
	case 'p':
		IS("path", HDR_PATH);
		IS("proxy-require", HDR_PROXY_REQUIRE);
		IS("proxy-authorization", HDR_PROXY_AUTHORIZATION);
		IS("proxy-authenticate", HDR_PROXY_AUTHENTICATE);
		break;
	case 'r':
		IS("route", HDR_ROUTE);
		IS("require", HDR_REQUIRE);
		IS("refer-to", HDR_REFER_TO);
		IS("retry-after", HDR_RETRY_AFTER);
		IS("referred-by", HDR_REFERRED_BY);
		IS("record-route", HDR_RECORD_ROUTE);
		IS("reject-contact", HDR_REJECT_CONTACT);
		IS("request-disposition", HDR_REQUEST_DISPOSITION);
		break;
	case 's':
		IS("server", HDR_SERVER);
		IS("subject", HDR_SUBJECT);
		IS("supported", HDR_SUPPORTED);
		IS("session-expires", HDR_SESSION_EXPIRES);
		break;
	case 't':
		IS("to", HDR_TO);
		break;
	case 'u':
		IS("user-agent", HDR_USER_AGENT);
		IS("unsupported", HDR_UNSUPPORTED);
		break;
	case 'v':
		IS("via", HDR_VIA);
		break;
	case 'w':
		IS("www-authenticate", HDR_WWW_AUTHENTICATE);
		break;
	default:
		break;
	}
	return HDR_OTHER;
}
#undef IS

sip_hdr_type_t sip_hdr_type(str_t n)
{
	if (n.len == 0 || !n.s || skip_cls(n.s, n.s + n.len, CC_TOKEN) != n.s + n.len)
		return HDR_OTHER;
	return sip_hdr_type_tok(n);
}

#define METH(lit, id) \
	do { \
		if (memcmp(n.s, (lit), sizeof(lit) - 1) == 0) \
			return (id); \
	} while (0)

sip_method_t sip_method_id(str_t n)
{
	if (!n.s)
		return METH_OTHER;
	switch (n.len) {
	case 3:
		METH("ACK", METH_ACK);
		METH("BYE", METH_BYE);
		METH("GET", METH_GET);
		METH("PUT", METH_PUT);
		break;
	case 4:
		METH("INFO", METH_INFO);
		METH("POST", METH_POST);
		METH("KDMQ", METH_KDMQ);
		break;
	case 5:
		METH("PRACK", METH_PRACK);
		METH("REFER", METH_REFER);
		break;
	case 6:
		METH("INVITE", METH_INVITE);
		METH("CANCEL", METH_CANCEL);
		METH("NOTIFY", METH_NOTIFY);
		METH("UPDATE", METH_UPDATE);
		METH("DELETE", METH_DELETE);
		break;
	case 7:
		METH("OPTIONS", METH_OPTIONS);
		METH("PUBLISH", METH_PUBLISH);
		METH("MESSAGE", METH_MESSAGE);
		break;
	case 8:
		METH("REGISTER", METH_REGISTER);
		break;
	case 9:
		METH("SUBSCRIBE", METH_SUBSCRIBE);
		break;
	default:
		break;
	}
	return METH_OTHER;
}
#undef METH

sip_proto_t sip_proto_from_name(str_t n)
{
	if (!n.s)
		return SIP_PROTO_OTHER;
	switch (n.len) {
	case 2:
		if (ci_eq(n.s, "ws", 2))
			return SIP_PROTO_WS;
		break;
	case 3:
		if (ci_eq(n.s, "udp", 3))
			return SIP_PROTO_UDP;
		if (ci_eq(n.s, "tcp", 3))
			return SIP_PROTO_TCP;
		if (ci_eq(n.s, "tls", 3))
			return SIP_PROTO_TLS;
		if (ci_eq(n.s, "wss", 3))
			return SIP_PROTO_WSS;
		break;
	case 4:
		if (ci_eq(n.s, "sctp", 4))
			return SIP_PROTO_SCTP;
		break;
	default:
		break;
	}
	return SIP_PROTO_OTHER;
}

const char *sip_proto_name(sip_proto_t p)
{
	switch (p) {
	case SIP_PROTO_NONE: return "none";
	case SIP_PROTO_UDP: return "udp";
	case SIP_PROTO_TCP: return "tcp";
	case SIP_PROTO_TLS: return "tls";
	case SIP_PROTO_SCTP: return "sctp";
	case SIP_PROTO_WS: return "ws";
	case SIP_PROTO_WSS: return "wss";
	case SIP_PROTO_OTHER: break;
	}
	return "other";
}
