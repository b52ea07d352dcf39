// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * sip_msg_validate(): parses every header the parser knows and applies the
 * RFC 3261 rules that hold whatever the policy. What is policy (unknown URI
 * schemes, Require/Proxy-Require options, a Via without branch, Max-Forwards
 * 0, an unknown method) is left to the layers above: such messages pass.
 */
#include "parser_int.h"

static int vfail(sip_msg_t *m, const char *reason)
{
	m->err.status = m->type == SIP_REPLY ? 0 : 400;
	m->err.reason = reason;
	return SIP_E_PARSE;
}

/* An accessor failed and has set m->err already. */
static int afail(const sip_msg_t *m)
{
	return sip_err_is_nomem(m) ? SIP_E_NOMEM : SIP_E_PARSE;
}

static const struct {
	sip_hdr_type_t type;
	const char *missing, *dup;
} mandatory[] = {
	{HDR_CALLID, "Missing Call-ID", "Duplicate Call-ID"},
	{HDR_FROM, "Missing From", "Duplicate From"},
	{HDR_TO, "Missing To", "Duplicate To"},
	{HDR_CSEQ, "Missing CSeq", "Duplicate CSeq"},
};

static int check_mandatory(sip_msg_t *m)
{
	if (!sip_msg_via1(m))
		return afail(m);
	for (const sip_via_t *v = m->vias; v; v = v->next)
		if (v->repaired)
			return vfail(m, "Malformed Via");
	for (size_t i = 0; i < sizeof(mandatory) / sizeof(mandatory[0]); i++) {
		sip_hdr_type_t t = mandatory[i].type;
		if (!m->first[t])
			return vfail(m, mandatory[i].missing);
		if (m->first[t] != m->last[t])
			return vfail(m, mandatory[i].dup);
	}
	str_t cid = sip_msg_callid(m);
	if (cid.len == 0 || has_ws(cid))
		return vfail(m, "Bad Call-ID");
	if (!sip_msg_from(m) || !sip_msg_to(m))
		return afail(m);
	sip_cseq_t *cs = sip_msg_cseq(m);
	if (!cs)
		return afail(m);
	/* RFC 3261 §8.1.1.5; RFC 4475 mismatch01/02 */
	if (m->type == SIP_REQUEST && !str_eq(cs->method, m->method))
		return vfail(m, "CSeq method does not match");
	return SIP_OK;
}

static int check_optional(sip_msg_t *m)
{
	if (m->first[HDR_MAX_FORWARDS] && sip_msg_max_forwards(m) == -2)
		return afail(m);
	if (m->first[HDR_CONTACT] && !sip_msg_contacts(m))
		return afail(m);
	if (m->first[HDR_ROUTE] && !sip_msg_routes(m))
		return afail(m);
	if (m->first[HDR_RECORD_ROUTE] && !sip_msg_record_routes(m))
		return afail(m);
	static const sip_hdr_type_t tags[] = {HDR_SUPPORTED, HDR_REQUIRE, HDR_PROXY_REQUIRE, HDR_UNSUPPORTED};
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (sip_opt_tags_parse(m, tags[i]))
			return afail(m);
	static const sip_hdr_type_t auths[] = {HDR_AUTHORIZATION, HDR_PROXY_AUTHORIZATION, HDR_WWW_AUTHENTICATE,
					       HDR_PROXY_AUTHENTICATE};
	for (size_t i = 0; i < sizeof(auths) / sizeof(auths[0]); i++)
		for (sip_hdr_t *h = m->first[auths[i]]; h; h = h->next_same)
			if (!sip_hdr_auth(m, h))
				return afail(m);
	return SIP_OK;
}

int sip_msg_validate(sip_msg_t *m)
{
	if (m->type != SIP_REQUEST && m->type != SIP_REPLY)
		return vfail(m, "Not a SIP message");
	if (m->version.len == 0)
		return vfail(m, "Malformed start line");
	if (m->version.len != 7 || !ci_eq(m->version.s, "sip/2.0", 7)) {
		vfail(m, "Version Not Supported");
		if (m->type == SIP_REQUEST)
			m->err.status = 505;
		return SIP_E_PARSE;
	}
	if (m->type == SIP_REQUEST && !sip_msg_ruri(m))
		return afail(m);
	int rc = check_mandatory(m);
	if (rc)
		return rc;
	rc = check_optional(m);
	if (rc)
		return rc;
	if (m->content_length >= 0 && m->body.len != (size_t)m->content_length)
		return vfail(m, "Content-Length mismatch");
	return SIP_OK;
}
