// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "rr.h"

#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "../lib/log.h"

static bool append_fromtag = true;
static bool double_rr = true;

void rr_init(const ksr_cfg_t *cfg)
{
	append_fromtag = cfg->rr.append_fromtag;
	double_rr = cfg->rr.enable_double_rr;
}

int rr_record_route(msg_t *m, str_t params)
{
	if (m->sip.type != SIP_REQUEST)
		return -1;
	m->rr_on = true;
	if (params.len)
		return rr_add_param(m, params);
	return 1;
}

int rr_record_route_preset(msg_t *m, str_t a1, str_t a2)
{
	if (m->sip.type != SIP_REQUEST || !a1.len)
		return -1;
	m->rr_on = true;
	m->rr_preset[0] = arena_strdup(m->arena, a1);
	m->rr_preset[1] = a2.len ? arena_strdup(m->arena, a2) : STR_NULL;
	return 1;
}

int rr_add_param(msg_t *m, str_t param)
{
	if (!param.len)
		return -1;
	bool semi = param.s[0] == ';';
	str_t p = arena_printf(m->arena, "%.*s%s%.*s", STR_FMT(m->rr_params), semi ? "" : ";", STR_FMT(param));
	if (!p.s)
		return -1;
	m->rr_params = p;
	return 1;
}

/* One Record-Route line for socket l (or a preset address). */
static str_t rr_line(msg_t *m, const net_listen_t *l, str_t preset, bool r2)
{
	msg_buf_t b;
	sip_nameaddr_t *from = sip_msg_from(&m->sip);
	mbuf_init(&b, m->arena, 256);
	mbuf_lit(&b, "Record-Route: <sip:");
	if (preset.len) {
		if (preset.len > 4 && !strncasecmp(preset.s, "sip:", 4))
			preset = str_from(preset.s + 4, preset.len - 4);
		mbuf_str(&b, preset);
	} else {
		mbuf_str(&b, l->host);
		mbuf_lit(&b, ":");
		mbuf_u64(&b, l->port);
		if (l->proto == SIP_PROTO_TCP)
			mbuf_lit(&b, ";transport=tcp");
	}
	mbuf_lit(&b, ";lr");
	if (r2)
		mbuf_lit(&b, ";r2=on");
	if (append_fromtag && from && from->tag.len) {
		mbuf_lit(&b, ";ftag=");
		mbuf_str(&b, from->tag);
	}
	mbuf_str(&b, m->rr_params);
	mbuf_lit(&b, ">\r\n");
	return mbuf_done(&b);
}

/* Our entries go above any Record-Route already in the request. */
static int insert_rr(msg_t *m, str_t line)
{
	sip_hdr_t *first = m->sip.first[HDR_RECORD_ROUTE];
	if (first)
		return msg_hdr_insert_before(m, first->index, line);
	return msg_hdr_insert_top(m, line);
}

int rr_apply(msg_t *m, const net_listen_t *out)
{
	const net_listen_t *in = m->rcv.local;
	if (!m->rr_on || !in)
		return 0;
	if (!out)
		out = in;
	bool two = m->rr_preset[1].len ||
		   (double_rr && !m->rr_preset[0].len &&
		    (out->proto != in->proto || !net_addr_eq(&out->addr, &in->addr) || !str_eq(out->host, in->host)));
	if (!two)
		return insert_rr(m, rr_line(m, in, m->rr_preset[0], false)) == 0 ? 1 : -1;
	/* the entry facing the next hop first, then the one facing where we got it */
	str_t outer = rr_line(m, out, m->rr_preset[0].len ? m->rr_preset[0] : STR_NULL, true);
	str_t inner = rr_line(m, in, m->rr_preset[1], true);
	if (!outer.s || !inner.s)
		return -1;
	if (m->sip.first[HDR_RECORD_ROUTE]) {
		/* insertions before one header come out in the order made */
		if (insert_rr(m, outer) < 0 || insert_rr(m, inner) < 0)
			return -1;
		return 1;
	}
	/* insertions at the top come out newest first */
	if (insert_rr(m, inner) < 0 || insert_rr(m, outer) < 0)
		return -1;
	return 1;
}

/* ---------------------------------------------------------------- Route processing */

static bool uri_is_ours(const sip_uri_t *u)
{
	return (u->scheme == URI_SIP || u->scheme == URI_SIPS) &&
	       net_is_myself(u->maddr.len ? u->maddr : u->host, u->port, sip_uri_proto(u));
}

/* Removes the first element of Route header h (the whole line when alone). */
static int remove_first_route(msg_t *m, const sip_nameaddr_t *r)
{
	sip_hdr_t *h = r->hdr;
	const char *rest = r->raw.s + r->raw.len;
	const char *end = h->body.s + h->body.len;
	while (rest < end && (*rest == ' ' || *rest == '\t' || *rest == ',' || *rest == '\r' || *rest == '\n'))
		rest++;
	if (rest >= end)
		return msg_hdr_remove(m, h->index);
	str_t line = arena_printf(m->arena, "Route: %.*s\r\n", (int)(end - rest), rest);
	return line.s ? msg_hdr_replace(m, h->index, line) : -1;
}

static bool has_totag(msg_t *m)
{
	sip_nameaddr_t *to = sip_msg_to(&m->sip);
	return to && to->tag.len;
}

/* §16.12 step 6 for a next hop that is a strict router. */
static int route_to_strict(msg_t *m, const sip_nameaddr_t *next)
{
	str_t old = m->ruri;
	if (msg_set_ruri(m, next->uri_str) < 0 || remove_first_route(m, next) < 0)
		return -1;
	str_t line = arena_printf(m->arena, "Route: <%.*s>\r\n", STR_FMT(old));
	return line.s ? msg_hdr_append_bottom(m, line) : -1;
}

static int next_hop_from(msg_t *m, const sip_nameaddr_t *next)
{
	int rc = next->uri.lr ? msg_set_du(m, next->uri_str) : route_to_strict(m, next);
	if (rc < 0)
		return -1;
	return has_totag(m) ? 1 : -3;
}

/* §16.4: a strict router before us put our Record-Route into the R-URI. */
static int undo_strict_routing(msg_t *m)
{
	sip_nameaddr_t *last = NULL;
	for (sip_nameaddr_t *r = sip_msg_routes(&m->sip); r; r = r->next)
		last = r;
	if (!last)
		return -1;
	sip_uri_t *u = msg_ruri(m);
	m->route_params = u ? u->params_str : STR_NULL;
	m->route_consumed = true;
	if (msg_set_ruri(m, last->uri_str) < 0)
		return -1;
	/* the last element goes: with its header line when it is alone on it */
	sip_nameaddr_t *first_on_line = NULL;
	for (sip_nameaddr_t *r = sip_msg_routes(&m->sip); r && !first_on_line; r = r->next)
		if (r->hdr == last->hdr)
			first_on_line = r;
	if (first_on_line == last)
		return msg_hdr_remove(m, last->hdr->index) == 0 ? 1 : -1;
	str_t body = str_from(last->hdr->body.s, (size_t)(last->raw.s - last->hdr->body.s));
	while (body.len && (body.s[body.len - 1] == ',' || body.s[body.len - 1] == ' '))
		body.len--;
	str_t line = arena_printf(m->arena, "Route: %.*s\r\n", STR_FMT(body));
	return line.s && msg_hdr_replace(m, last->hdr->index, line) == 0 ? 1 : -1;
}

int rr_loose_route(msg_t *m)
{
	if (m->sip.type != SIP_REQUEST)
		return -1;
	sip_nameaddr_t *r = sip_msg_routes(&m->sip);
	sip_uri_t *ru = msg_ruri(m);
	if (ru && ru->lr && uri_is_ours(ru) && r) {
		if (undo_strict_routing(m) < 0)
			return -1;
		/* then §16.6 step 6 with what remains of the Route set (its last entry,
		 * now the R-URI, is gone) */
		sip_nameaddr_t *last = r;
		while (last->next)
			last = last->next;
		if (r != last && uri_is_ours(&r->uri)) {
			if (remove_first_route(m, r) < 0)
				return -1;
			r = r->next;
		}
		return r && r != last ? next_hop_from(m, r) : 1;
	}
	if (!r)
		return -1;
	if (!uri_is_ours(&r->uri))
		return next_hop_from(m, r);
	m->route_params = r->uri.params_str;
	m->route_consumed = true;
	if (remove_first_route(m, r) < 0)
		return -1;
	sip_nameaddr_t *next = r->next;
	/* double record-routing left two entries of ours */
	if (next && uri_is_ours(&next->uri) && sip_param_find(next->uri.params, STR_LIT("r2"))) {
		if (remove_first_route(m, next) < 0)
			return -1;
		next = next->next;
	}
	if (next)
		return next_hop_from(m, next);
	/* only ours: in a dialog the R-URI is the next hop; an initial request with a
	 * preloaded Route to us alone is not loose-routed (Kamailio's -1) */
	return has_totag(m) ? 1 : -1;
}

int rr_check_route_param(msg_t *m, str_t re_text)
{
	char pat[256], subj[1024];
	regex_t re;
	if (!m->route_consumed || re_text.len >= sizeof(pat) || m->route_params.len >= sizeof(subj))
		return -1;
	snprintf(pat, sizeof(pat), "%.*s", STR_FMT(re_text));
	snprintf(subj, sizeof(subj), "%.*s", STR_FMT(m->route_params));
	if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
		return -1;
	int rc = regexec(&re, subj, 0, NULL, 0);
	regfree(&re);
	return rc == 0 ? 1 : -1;
}

int rr_is_direction(msg_t *m, str_t dir)
{
	bool down;
	if (str_caseeq_lit(dir, "downstream"))
		down = true;
	else if (str_caseeq_lit(dir, "upstream"))
		down = false;
	else
		return -1;
	if (!m->route_consumed)
		return -1;
	/* the ftag of our Route is the caller's tag: equal From tag means caller → callee */
	const char *p = m->route_params.s;
	const char *end = p + m->route_params.len;
	str_t ftag = STR_NULL;
	while (p && p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;
		if ((size_t)(stop - p) > 5 && !strncasecmp(p, "ftag=", 5))
			ftag = str_from(p + 5, (size_t)(stop - p - 5));
		p = semi ? semi + 1 : NULL;
	}
	sip_nameaddr_t *from = sip_msg_from(&m->sip);
	if (!ftag.len || !from)
		return -1;
	bool is_down = str_eq(ftag, from->tag);
	return is_down == down ? 1 : -1;
}
