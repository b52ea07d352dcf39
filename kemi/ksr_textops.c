// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * KSR.textops: regular-expression search, replace and sed-like substitution
 * over the message, header presence and removal, body tests and replacement,
 * string helpers. Behaviour and return codes follow Kamailio's textops.
 *
 * Regular expressions are POSIX extended, compiled once per worker and kept in
 * a small cache keyed by their text (a route calls the same few patterns for
 * every message). Text edits never touch the received buffer: a change inside
 * a header becomes a replacement of that header, a change in the body a new
 * body (msg_set_body), applied when the outgoing buffer is built.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/lib/hash.h"
#include "../core/lib/log.h"
#include "ksr_textops.h"

static int clip(size_t n)
{
	return n > 200 ? 200 : (int)n;
}

void ksr_text_err(ksr_ctx_t *c, const char *fmt, ...)
{
	char fn[64] = "KSR", text[512];
	va_list ap;
	if (!LOG_ON(L_ERR))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (c->fn)
		ksr_fn_fullname(c->fn, fn, sizeof(fn));
	str_t cid = c->msg ? sip_msg_callid(&c->msg->sip) : STR_NULL;
	LOG_MSG_ERR(LUA, &cid, "%s: %s", fn, text);
}

/* ---------------------------------------------------------------- regex cache */

/*
 * Set-associative: RE_SETS sets of RE_WAYS slots, least recently used slot of
 * the set replaced. Bounded, so scripts that build patterns from message data
 * cannot grow it; 4 ways keep the 2 patterns of remove_hf_exp() together.
 */
#define RE_SETS 128
#define RE_WAYS 4
#define RE_KIND_SUBST (-1) /* a whole "/re/repl/flags" expression, not a bare pattern */

typedef struct subst subst_t;

typedef struct {
	char *key;      /* the text as given, NUL-terminated (owned) */
	size_t keylen;
	int kind;       /* regcomp flags, or RE_KIND_SUBST */
	uint64_t stamp; /* last use; 0 = free slot */
	bool ok;        /* false: the text is remembered as bad */
	regex_t re;
	subst_t *subst; /* RE_KIND_SUBST: the parsed replacement (owned) */
} re_slot_t;

static pthread_key_t re_key;
static pthread_once_t re_once = PTHREAD_ONCE_INIT;
static _Thread_local re_slot_t *re_slots;
static _Thread_local uint64_t re_clock;

static void slot_clear(re_slot_t *s)
{
	if (s->ok)
		regfree(&s->re);
	free(s->key);
	free(s->subst);
	memset(s, 0, sizeof(*s));
}

/* Thread exit: the worker's cache goes with it. */
static void re_cache_free(void *p)
{
	re_slot_t *slots = p;
	for (unsigned i = 0; i < RE_SETS * RE_WAYS; i++)
		if (slots[i].stamp)
			slot_clear(&slots[i]);
	free(slots);
}

static void re_key_init(void)
{
	pthread_key_create(&re_key, re_cache_free);
}

static re_slot_t *cache_slots(void)
{
	if (!re_slots) {
		pthread_once(&re_once, re_key_init);
		re_slots = calloc(RE_SETS * RE_WAYS, sizeof(*re_slots));
		if (re_slots)
			pthread_setspecific(re_key, re_slots);
	}
	return re_slots;
}

/* The slot holding (text, kind), or an emptied one to fill (*found = false). */
static re_slot_t *slot_for(str_t text, int kind, bool *found)
{
	re_slot_t *slots = cache_slots();
	if (!slots)
		return NULL;
	uint64_t h = hash64_final(hash64_str(hash64_mix(hash_seed, &kind, sizeof(kind)), text));
	re_slot_t *set = &slots[(h % RE_SETS) * RE_WAYS], *victim = set;
	for (unsigned w = 0; w < RE_WAYS; w++) {
		re_slot_t *s = &set[w];
		if (s->stamp && s->kind == kind && s->keylen == text.len &&
		    (text.len == 0 || !memcmp(s->key, text.s, text.len))) {
			s->stamp = ++re_clock;
			*found = true;
			return s;
		}
		if (s->stamp < victim->stamp)
			victim = s;
	}
	if (victim->stamp)
		slot_clear(victim);
	*found = false;
	return victim;
}

static bool slot_claim(re_slot_t *s, str_t text, int kind)
{
	s->key = malloc(text.len + 1);
	if (!s->key)
		return false;
	if (text.len)
		memcpy(s->key, text.s, text.len);
	s->key[text.len] = '\0';
	s->keylen = text.len;
	s->kind = kind;
	s->stamp = ++re_clock;
	return true;
}

static bool compile(ksr_ctx_t *c, re_slot_t *s, const char *pattern, int cflags)
{
	int rc = regcomp(&s->re, pattern, cflags);
	if (rc != 0) {
		char why[160];
		regerror(rc, &s->re, why, sizeof(why));
		ksr_text_err(c, "bad regular expression '%.*s': %s", clip(strlen(pattern)), pattern, why);
		return false;
	}
	s->ok = true;
	return true;
}

const regex_t *ksr_re_get(ksr_ctx_t *c, str_t pattern, int cflags)
{
	bool found;
	re_slot_t *s = slot_for(pattern, cflags, &found);
	if (!s)
		return NULL;
	if (found)
		return s->ok ? &s->re : NULL;
	if (!slot_claim(s, pattern, cflags))
		return NULL;
	return compile(c, s, s->key, cflags) ? &s->re : NULL;
}

bool ksr_re_exec(const regex_t *re, const char *s, size_t lo, size_t hi, size_t nm, regmatch_t *pm)
{
	pm[0].rm_so = (regoff_t)lo;
	pm[0].rm_eo = (regoff_t)hi;
	return regexec(re, s ? s : "", nm, pm, REG_STARTEND) == 0;
}

/* ---------------------------------------------------------------- subst expressions */

/*
 * "/re/repl/flags" as Kamailio's subst: any first character is the separator;
 * flags i (ignore case), g (all matches), s (newline is an ordinary character).
 * The replacement may hold \0..\9 (groups), \u (the R-URI), \n \r \t \\ \$
 * and \<sep>, and pseudo-variables ($rU, $var(x), $hdr(X-Foo), ...).
 */
enum { RP_TEXT, RP_GROUP, RP_URI, RP_PV };

typedef struct {
	int kind;
	int group;  /* RP_GROUP */
	str_t text; /* RP_TEXT: literal; RP_PV: the variable's name */
} repl_part_t;

struct subst {
	bool global;
	unsigned nparts;
	int max_group;
	repl_part_t *parts;
	char *texts; /* literals, after the parts in the same allocation */
};

#define MAX_GROUPS 10

typedef struct {
	const char *p, *end;
	char sep;
} cursor_t;

/* Copies the regular expression up to the separator, unescaping "\<sep>". */
static bool parse_re_part(cursor_t *cu, char *out)
{
	size_t n = 0;
	while (cu->p < cu->end) {
		char ch = *cu->p;
		if (ch == '\\' && cu->p + 1 < cu->end) {
			if (cu->p[1] != cu->sep)
				out[n++] = ch;
			out[n++] = cu->p[1];
			cu->p += 2;
			continue;
		}
		if (ch == cu->sep) {
			out[n] = '\0';
			cu->p++;
			return true;
		}
		out[n++] = ch;
		cu->p++;
	}
	return false;
}

/* Length of a pseudo-variable name at p ("$rU", "$var(x)", "$(hdr(a)[1])"), 0 if none. */
static size_t pv_name_len(const char *p, const char *end)
{
	const char *q = p + 1;
	int depth = 0;
	if (q < end && *q == '(') {
		for (; q < end; q++) {
			depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
			if (depth == 0)
				return (size_t)(q + 1 - p);
		}
		return 0;
	}
	while (q < end && (((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z') || (*q >= '0' && *q <= '9') || *q == '_' ||
			   *q == '.'))
		q++;
	if (q == p + 1)
		return 0;
	if (q < end && *q == '(') {
		for (; q < end; q++) {
			depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
			if (depth == 0)
				break;
		}
		if (q >= end)
			return 0;
		q++;
		if (q < end && *q == '[') {
			const char *close = memchr(q, ']', (size_t)(end - q));
			if (!close)
				return 0;
			q = close + 1;
		}
	}
	return (size_t)(q - p);
}

typedef struct {
	subst_t *sub;
	char *lit;   /* where the current literal grows */
	size_t litn;
} repl_builder_t;

static void flush_literal(repl_builder_t *rb)
{
	if (!rb->litn)
		return;
	rb->sub->parts[rb->sub->nparts++] = (repl_part_t){RP_TEXT, 0, str_from(rb->lit, rb->litn)};
	rb->lit += rb->litn;
	rb->litn = 0;
}

static void add_part(repl_builder_t *rb, int kind, int group, str_t text)
{
	flush_literal(rb);
	rb->sub->parts[rb->sub->nparts++] = (repl_part_t){kind, group, text};
	if (kind == RP_GROUP && group > rb->sub->max_group)
		rb->sub->max_group = group;
}

/* One "\x" of the replacement. */
static bool parse_escape(repl_builder_t *rb, char ch, char sep)
{
	char lit;
	switch (ch) {
	case '\\': lit = '\\'; break;
	case 'n': lit = '\n'; break;
	case 'r': lit = '\r'; break;
	case 't': lit = '\t'; break;
	case '$': lit = '$'; break;
	case 'u': add_part(rb, RP_URI, 0, STR_NULL); return true;
	default:
		if (ch >= '0' && ch <= '9') {
			add_part(rb, RP_GROUP, ch - '0', STR_NULL);
			return true;
		}
		if (ch != sep)
			return false;
		lit = sep;
	}
	rb->lit[rb->litn++] = lit;
	return true;
}

/* The replacement up to the separator. Names of variables point into the cursor's text. */
static const char *parse_repl_part(cursor_t *cu, repl_builder_t *rb)
{
	while (cu->p < cu->end) {
		char ch = *cu->p;
		if (ch == cu->sep) {
			flush_literal(rb);
			cu->p++;
			return NULL;
		}
		if (ch == '\\') {
			if (cu->p + 1 >= cu->end || !parse_escape(rb, cu->p[1], cu->sep))
				return "unknown escape in the replacement";
			cu->p += 2;
			continue;
		}
		if (ch == '$') {
			size_t n = pv_name_len(cu->p, cu->end);
			if (!n)
				return "bad pseudo-variable in the replacement";
			add_part(rb, RP_PV, 0, str_from(cu->p, n));
			cu->p += n;
			continue;
		}
		rb->lit[rb->litn++] = ch;
		cu->p++;
	}
	return "no separator after the replacement";
}

static const char *parse_flags(cursor_t *cu, int *cflags, bool *global)
{
	*cflags = REG_EXTENDED | REG_NEWLINE;
	*global = false;
	for (; cu->p < cu->end; cu->p++) {
		switch (*cu->p) {
		case 'i': *cflags |= REG_ICASE; break;
		case 's': *cflags &= ~REG_NEWLINE; break;
		case 'g': *global = true; break;
		default: return "unknown flag";
		}
	}
	return NULL;
}

/* Parses the expression held by slot s (its key) and compiles its regex. */
static bool subst_compile(ksr_ctx_t *c, re_slot_t *s)
{
	size_t len = s->keylen;
	const char *why = "too short";
	cursor_t cu = {s->key, s->key + len, len ? s->key[0] : 0};
	char *re = malloc(len + 1);
	subst_t *sub = calloc(1, sizeof(*sub) + (len + 1) * sizeof(repl_part_t) + len + 1);
	if (!re || !sub)
		goto fail;
	sub->parts = (repl_part_t *)(sub + 1);
	sub->texts = (char *)(sub->parts + len + 1);
	repl_builder_t rb = {sub, sub->texts, 0};
	int cflags;
	if (len < 3 || cu.sep == '\\')
		goto fail;
	cu.p++;
	why = "no separator after the regular expression";
	if (!parse_re_part(&cu, re))
		goto fail;
	if ((why = parse_repl_part(&cu, &rb)) || (why = parse_flags(&cu, &cflags, &sub->global)))
		goto fail;
	if (!compile(c, s, re, cflags)) {
		why = NULL;
		goto fail;
	}
	if ((size_t)sub->max_group > s->re.re_nsub) {
		why = "the replacement names a group the expression does not have";
		goto fail;
	}
	free(re);
	s->subst = sub;
	return true;
fail:
	if (why)
		ksr_text_err(c, "bad substitution '%.*s': %s", clip(len), s->key, why);
	if (s->ok) {
		regfree(&s->re);
		s->ok = false;
	}
	free(re);
	free(sub);
	return false;
}

/* The compiled expression for text, from the cache; NULL (logged once) if malformed. */
static re_slot_t *subst_get(ksr_ctx_t *c, str_t text)
{
	bool found;
	re_slot_t *s = slot_for(text, RE_KIND_SUBST, &found);
	if (!s)
		return NULL;
	if (found)
		return s->ok ? s : NULL;
	if (!slot_claim(s, text, RE_KIND_SUBST))
		return NULL;
	return subst_compile(c, s) ? s : NULL;
}

/* A variable's value; false when the name is not a known pseudo-variable (logged). */
static bool add_pv_value(ksr_ctx_t *c, str_t name, msg_buf_t *b)
{
	ksr_arg_t a = {name, 0};
	ksr_xval_t v = {.type = XVAL_NULL};
	if (ksr_pv_get(c, &a, &v) < 0)
		return false;
	if (v.type == XVAL_STR) {
		mbuf_str(b, v.s);
	} else if (v.type == XVAL_INT) {
		char num[24];
		int n = snprintf(num, sizeof(num), "%lld", v.i);
		mbuf_add(b, num, (size_t)n);
	} else {
		mbuf_lit(b, "<null>"); /* what Kamailio prints for a null variable */
	}
	return true;
}

/* Appends the replacement for one match (pm: offsets into s). */
static bool subst_build(ksr_ctx_t *c, const subst_t *sub, const char *s, const regmatch_t *pm, msg_buf_t *b)
{
	for (unsigned i = 0; i < sub->nparts; i++) {
		const repl_part_t *p = &sub->parts[i];
		switch (p->kind) {
		case RP_TEXT: mbuf_str(b, p->text); break;
		case RP_GROUP:
			if (pm[p->group].rm_so >= 0)
				mbuf_add(b, s + pm[p->group].rm_so, (size_t)(pm[p->group].rm_eo - pm[p->group].rm_so));
			break;
		case RP_URI:
			if (c->msg->sip.type != SIP_REQUEST) {
				ksr_text_err(c, "\\u (the R-URI) used on a reply");
				return false;
			}
			mbuf_str(b, c->msg->ruri);
			break;
		default:
			if (!add_pv_value(c, p->text, b))
				return false;
			break;
		}
	}
	return !b->failed;
}

static str_t subst_repl(ksr_ctx_t *c, const subst_t *sub, const char *s, const regmatch_t *pm)
{
	msg_buf_t b;
	mbuf_init(&b, c->msg->arena, 64);
	return subst_build(c, sub, s, pm, &b) ? mbuf_done(&b) : STR_NULL;
}

/*
 * Substitutes in a string: 1 with the result in *out (arena), -1 when nothing
 * matched or on error. An empty match is an error, as in Kamailio.
 */
static int subst_str(ksr_ctx_t *c, const re_slot_t *s, str_t in, str_t *out)
{
	regmatch_t pm[MAX_GROUPS];
	msg_buf_t b;
	size_t p = 0;
	bool any = false;
	mbuf_init(&b, c->msg->arena, in.len + 64);
	while (p <= in.len && ksr_re_exec(&s->re, in.s, p, in.len, MAX_GROUPS, pm)) {
		size_t so = (size_t)pm[0].rm_so, eo = (size_t)pm[0].rm_eo;
		if (so == eo) {
			ksr_text_err(c, "'%.*s' matched an empty string", clip(s->keylen), s->key);
			return -1;
		}
		mbuf_add(&b, in.s + p, so - p);
		if (!subst_build(c, s->subst, in.s, pm, &b))
			return -1;
		p = eo;
		any = true;
		if (!s->subst->global)
			break;
	}
	if (!any)
		return -1;
	mbuf_add(&b, in.s + p, in.len - p);
	*out = mbuf_done(&b);
	return out->s ? 1 : -1;
}

/* ---------------------------------------------------------------- headers */

bool ksr_hdr_is(const sip_hdr_t *h, sip_hdr_type_t t, str_t name)
{
	if (t != HDR_OTHER)
		return h->type == t;
	return h->type == HDR_OTHER && str_caseeq(h->name, name);
}

str_t ksr_hdr_text(const msg_t *m, unsigned idx)
{
	const msg_hdr_edit_t *e = m->edits ? &m->edits[idx] : NULL;
	if (e && e->replace)
		return e->replace->text;
	if (e && e->removed)
		return str_from("", 0);
	return m->sip.hdrs[idx].raw;
}

/* Already removed by the script (a replacement counts as present). */
static bool hdr_gone(const msg_t *m, unsigned idx)
{
	return m->edits && m->edits[idx].removed && !m->edits[idx].replace;
}

static bool hdr_drop(msg_t *m, unsigned idx)
{
	return !hdr_gone(m, idx) && msg_hdr_remove(m, idx) == 0;
}

/* ---------------------------------------------------------------- text views and edits */

/*
 * The headers, the blank line and the body as they will leave, as one text,
 * cut in segments: header i is [off[i], off[i+1]), then the blank line, then
 * the body. When nothing was edited the received buffer is used as it is.
 */
typedef struct {
	const char *s;
	size_t len;
	unsigned nhdrs;
	size_t *off; /* nhdrs + 3 entries */
	size_t small[3];
} view_t;

static bool view_received(msg_t *m, view_t *v)
{
	const sip_msg_t *sm = &m->sip;
	if (m->edits || m->body_set || !sm->nhdrs)
		return false;
	v->off = arena_alloc(m->arena, (sm->nhdrs + 3) * sizeof(size_t));
	if (!v->off)
		return false;
	const char *base = sm->hdrs[0].raw.s, *p = base;
	for (unsigned i = 0; i < sm->nhdrs; i++) {
		if (sm->hdrs[i].raw.s != p)
			return false;
		v->off[i] = (size_t)(p - base);
		p += sm->hdrs[i].raw.len;
	}
	const char *bufend = sm->buf + sm->len;
	size_t seplen = p < bufend && *p == '\r' ? 2 : 1;
	if (p + seplen > bufend || (sm->body.len && sm->body.s != p + seplen))
		return false;
	v->off[sm->nhdrs] = (size_t)(p - base);
	v->off[sm->nhdrs + 1] = v->off[sm->nhdrs] + seplen;
	v->off[sm->nhdrs + 2] = v->off[sm->nhdrs + 1] + sm->body.len;
	v->s = base;
	v->len = v->off[sm->nhdrs + 2];
	v->nhdrs = sm->nhdrs;
	return true;
}

static bool view_copy(msg_t *m, view_t *v)
{
	unsigned n = m->sip.nhdrs;
	str_t body = msg_body(m);
	size_t total = 2 + body.len;
	for (unsigned i = 0; i < n; i++)
		total += ksr_hdr_text(m, i).len;
	char *buf = arena_alloc(m->arena, total + 1);
	v->off = arena_alloc(m->arena, (n + 3) * sizeof(size_t));
	if (!buf || !v->off)
		return false;
	size_t pos = 0;
	for (unsigned i = 0; i < n; i++) {
		str_t t = ksr_hdr_text(m, i);
		v->off[i] = pos;
		if (t.len)
			memcpy(buf + pos, t.s, t.len);
		pos += t.len;
	}
	v->off[n] = pos;
	memcpy(buf + pos, "\r\n", 2);
	pos += 2;
	v->off[n + 1] = pos;
	if (body.len)
		memcpy(buf + pos, body.s, body.len);
	pos += body.len;
	v->off[n + 2] = pos;
	buf[pos] = '\0';
	v->s = buf;
	v->len = pos;
	v->nhdrs = n;
	return true;
}

static bool view_message(msg_t *m, view_t *v)
{
	return view_received(m, v) || view_copy(m, v);
}

/* The body alone, as it will leave: an empty blank-line segment, then the body. */
static void view_body(msg_t *m, view_t *v)
{
	str_t body = msg_body(m);
	v->s = body.s;
	v->len = body.len;
	v->nhdrs = 0;
	v->off = v->small;
	v->small[0] = v->small[1] = 0;
	v->small[2] = body.len;
}

typedef struct {
	size_t so, eo; /* replaced range of the view */
	str_t repl;
} tx_edit_t;

typedef struct {
	tx_edit_t *v;
	unsigned n, cap;
} edits_t;

static bool edits_add(msg_t *m, edits_t *ed, size_t so, size_t eo, str_t repl)
{
	if (ed->n == ed->cap) {
		unsigned cap = ed->cap ? ed->cap * 2 : 8;
		tx_edit_t *nv = arena_alloc(m->arena, cap * sizeof(*nv));
		if (!nv)
			return false;
		if (ed->n)
			memcpy(nv, ed->v, ed->n * sizeof(*nv));
		ed->v = nv;
		ed->cap = cap;
	}
	ed->v[ed->n++] = (tx_edit_t){so, eo, repl};
	return true;
}

/*
 * Segment [a, b) with the edits applied; *touched tells whether any applies.
 * An edit starting at b belongs to the next segment, except for `take_end`
 * (the body, and the last header for insertions at the end of the headers).
 */
static str_t segment_apply(msg_t *m, const view_t *v, size_t a, size_t b, bool take_end, const edits_t *ed,
			   bool *touched)
{
	msg_buf_t out;
	size_t p = a;
	*touched = false;
	mbuf_init(&out, m->arena, (b - a) + 64);
	for (unsigned i = 0; i < ed->n; i++) {
		const tx_edit_t *e = &ed->v[i];
		bool starts = (e->so >= a && e->so < b) || (take_end && e->so == b && e->eo == b);
		bool covers = e->so < b && e->eo > a;
		if (!starts && !covers)
			continue;
		*touched = true;
		if (starts) {
			mbuf_add(&out, v->s + p, e->so - p);
			mbuf_str(&out, e->repl);
			p = e->so;
		}
		if (e->eo > p)
			p = e->eo < b ? e->eo : b;
	}
	if (!*touched)
		return STR_NULL;
	mbuf_add(&out, v->s + p, b - p);
	str_t r = mbuf_done(&out);
	if (!r.s)
		*touched = false;
	return r.s ? r : STR_NULL;
}

/*
 * Turns edits of the view (sorted, not overlapping) into message edits: a
 * changed header is replaced (removed when nothing is left of it), a changed
 * body becomes the new body. An edit across the blank line between headers
 * and body is refused: there is no deferred edit for that line.
 */
static int view_apply(ksr_ctx_t *c, const view_t *v, const edits_t *ed)
{
	msg_t *m = c->msg;
	size_t sa = v->off[v->nhdrs], sb = v->off[v->nhdrs + 1];
	for (unsigned i = 0; i < ed->n; i++) {
		const tx_edit_t *e = &ed->v[i];
		bool insert_at_end = e->so == sa && e->eo == sa && v->nhdrs; /* goes to the last header */
		if (sb > sa && !insert_at_end && ((e->so >= sa && e->so < sb) || (e->so < sb && e->eo > sa))) {
			ksr_text_err(c, "a match spans the end of the headers; not changed");
			return -1;
		}
	}
	unsigned nseg = v->nhdrs + 2;
	for (unsigned seg = 0; seg < nseg; seg++) {
		size_t a = v->off[seg], b = v->off[seg + 1];
		bool touched, last = seg + 1 == nseg;
		if (seg == v->nhdrs || (a == b && !last))
			continue;
		str_t t = segment_apply(m, v, a, b, last || seg + 1 == v->nhdrs, ed, &touched);
		if (!touched)
			continue;
		int rc;
		if (last)
			rc = msg_set_body(m, t, STR_NULL);
		else
			rc = t.len ? msg_hdr_replace(m, seg, t) : msg_hdr_remove(m, seg);
		if (rc < 0)
			return -1;
	}
	return 1;
}

/*
 * Collects matches of re in v->s[lo, hi): the first, or all of them. The
 * replacement is `literal`, or built by `sub` from the groups. Empty matches
 * end a global scan with an error (Kamailio's rule); a single one is allowed
 * only when `allow_empty`. Returns the number of matches, -1 on error.
 */
typedef struct {
	const regex_t *re;
	const subst_t *sub;
	str_t literal;
	bool all, allow_empty;
	str_t what;  /* pattern, for messages */
	bool append; /* insert `literal` after the match instead of replacing it */
} scan_t;

static int view_scan(ksr_ctx_t *c, const view_t *v, size_t lo, size_t hi, const scan_t *sc, edits_t *ed)
{
	regmatch_t pm[MAX_GROUPS];
	size_t p = lo;
	while (p <= hi && ksr_re_exec(sc->re, v->s, p, hi, sc->sub ? MAX_GROUPS : 1, pm)) {
		size_t so = (size_t)pm[0].rm_so, eo = (size_t)pm[0].rm_eo;
		if (so == eo && (sc->all || !sc->allow_empty)) {
			ksr_text_err(c, "'%.*s' matched an empty string", clip(sc->what.len), sc->what.s);
			return -1;
		}
		str_t repl = sc->sub ? subst_repl(c, sc->sub, v->s, pm) : sc->literal;
		if (sc->append)
			so = eo;
		if (!repl.s || !edits_add(c->msg, ed, so, eo, repl))
			return -1;
		if (!sc->all)
			break;
		p = eo;
	}
	return (int)ed->n;
}

/* Scan then apply: 1 when something was replaced, -1 when nothing matched or on error. */
static int view_replace(ksr_ctx_t *c, const view_t *v, size_t lo, size_t hi, const scan_t *sc)
{
	edits_t ed = {0};
	int n = view_scan(c, v, lo, hi, sc, &ed);
	if (n <= 0)
		return -1;
	return view_apply(c, v, &ed);
}

/* ---------------------------------------------------------------- search */

static int search_in(ksr_ctx_t *c, str_t pattern, const char *s, size_t len, int cflags)
{
	regmatch_t pm[1];
	const regex_t *re = ksr_re_get(c, pattern, cflags);
	if (!re)
		return -1;
	return ksr_re_exec(re, s, 0, len, 1, pm) ? 1 : -1;
}

int ksr_textops_search(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[0].s.len)
		return 1; /* Kamailio: an empty expression matches */
	return search_in(c, a[0].s, c->msg->sip.buf, c->msg->sip.len, KSR_RE_FLAGS);
}

int ksr_textops_search_body(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[0].s.len)
		return 1;
	if (!c->msg->sip.body.len)
		return -1;
	return search_in(c, a[0].s, c->msg->sip.body.s, c->msg->sip.body.len, KSR_RE_FLAGS);
}

int ksr_textops_search_str(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return search_in(c, a[1].s, a[0].s.s, a[0].s.len, KSR_RE_FLAGS);
}

/* Which headers of a name a/f/l flags pick: all, only the first, only the last. */
static char which_flag(str_t flags)
{
	return flags.len && (flags.s[0] == 'f' || flags.s[0] == 'l') ? flags.s[0] : 'a';
}

int ksr_textops_search_hf(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	sip_msg_t *sm = &c->msg->sip;
	regmatch_t pm[1];
	if (!a[0].s.len || !a[1].s.len)
		return -1;
	const regex_t *re = ksr_re_get(c, a[1].s, KSR_RE_FLAGS);
	if (!re)
		return -1;
	sip_hdr_type_t t = sip_hdr_type(a[0].s);
	char which = which_flag(a[2].s);
	const sip_hdr_t *last = NULL;
	for (unsigned i = 0; i < sm->nhdrs; i++) {
		const sip_hdr_t *h = &sm->hdrs[i];
		if (!ksr_hdr_is(h, t, a[0].s))
			continue;
		if (which == 'l') {
			last = h;
			continue;
		}
		if (ksr_re_exec(re, h->body.s, 0, h->body.len, 1, pm))
			return 1;
		if (which == 'f')
			return -1;
	}
	return last && ksr_re_exec(re, last->body.s, 0, last->body.len, 1, pm) ? 1 : -1;
}

/* ---------------------------------------------------------------- header presence and removal */

int ksr_textops_is_present_hf(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[0].s.len)
		return -1;
	return sip_msg_hdr_find(&c->msg->sip, a[0].s) ? 1 : -1;
}

static bool name_matches(const regex_t *re, const sip_hdr_t *h)
{
	regmatch_t pm[1];
	return ksr_re_exec(re, h->name.s, 0, h->name.len, 1, pm);
}

int ksr_textops_is_present_hf_re(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const sip_msg_t *sm = &c->msg->sip;
	const regex_t *re = ksr_re_get(c, a[0].s, KSR_RE_FLAGS);
	if (!re)
		return -1;
	for (unsigned i = 0; i < sm->nhdrs; i++)
		if (name_matches(re, &sm->hdrs[i]))
			return 1;
	return -1;
}

int ksr_textops_remove_hf(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	msg_t *m = c->msg;
	int n = 0;
	if (!a[0].s.len)
		return -1;
	sip_hdr_type_t t = sip_hdr_type(a[0].s);
	for (unsigned i = 0; i < m->sip.nhdrs; i++)
		if (ksr_hdr_is(&m->sip.hdrs[i], t, a[0].s) && hdr_drop(m, i))
			n++;
	return n ? n : -1;
}

/* Removes headers whose name matches `match` and not `skip` (NULL: none skipped). */
static int remove_by_re(msg_t *m, const regex_t *match, const regex_t *skip)
{
	int n = 0;
	for (unsigned i = 0; i < m->sip.nhdrs; i++) {
		const sip_hdr_t *h = &m->sip.hdrs[i];
		if (skip && name_matches(skip, h))
			continue;
		if (name_matches(match, h) && hdr_drop(m, i))
			n++;
	}
	return n ? n : -1;
}

int ksr_textops_remove_hf_re(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const regex_t *re = ksr_re_get(c, a[0].s, KSR_RE_FLAGS);
	return re ? remove_by_re(c->msg, re, NULL) : -1;
}

int ksr_textops_remove_hf_exp(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const regex_t *match = ksr_re_get(c, a[0].s, KSR_RE_FLAGS);
	const regex_t *skip = match ? ksr_re_get(c, a[1].s, KSR_RE_FLAGS) : NULL;
	return skip ? remove_by_re(c->msg, match, skip) : -1;
}

int ksr_textops_remove_hf_idx(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[0].s.len || a[1].i > 65535 || a[1].i < -65535)
		return -1;
	sip_hdr_t *h = sip_msg_hdr_find_idx(&c->msg->sip, a[0].s, (int)a[1].i);
	if (!h)
		return -1;
	hdr_drop(c->msg, h->index);
	return 1;
}

/* ---------------------------------------------------------------- replace */

/* Regex replace over headers and body (hdrs_only: headers alone), first or all matches. */
static int replace_in_message(ksr_ctx_t *c, const ksr_arg_t *a, bool all, bool hdrs_only)
{
	view_t v;
	const regex_t *re = ksr_re_get(c, a[0].s, KSR_RE_FLAGS);
	if (!re || !view_message(c->msg, &v))
		return -1;
	scan_t sc = {re, NULL, a[1].s, all, !all, a[0].s, false};
	return view_replace(c, &v, 0, hdrs_only ? v.off[v.nhdrs] : v.len, &sc);
}

int ksr_textops_replace(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return replace_in_message(c, a, false, false);
}

int ksr_textops_replace_all(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return replace_in_message(c, a, true, false);
}

int ksr_textops_replace_hdrs(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return replace_in_message(c, a, false, true);
}

/* Regex replace in the body: first match, all (line by line), or all over the
 * whole body as one text (atonce: '.' and '^' do not stop at line ends). */
static int replace_in_body(ksr_ctx_t *c, const ksr_arg_t *a, bool all, int cflags)
{
	view_t v;
	view_body(c->msg, &v);
	if (!v.len)
		return -1;
	const regex_t *re = ksr_re_get(c, a[0].s, cflags);
	if (!re)
		return -1;
	scan_t sc = {re, NULL, a[1].s, all, !all, a[0].s, false};
	return view_replace(c, &v, 0, v.len, &sc);
}

int ksr_textops_replace_body(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return replace_in_body(c, a, false, KSR_RE_FLAGS);
}

int ksr_textops_replace_body_all(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return replace_in_body(c, a, true, KSR_RE_FLAGS);
}

int ksr_textops_replace_body_atonce(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return replace_in_body(c, a, true, REG_EXTENDED | REG_ICASE);
}

/* Inserts a[1] after the first match of regex a[0] in the headers and body (or the body alone). */
static int search_append(ksr_ctx_t *c, const ksr_arg_t *a, bool body_only)
{
	view_t v;
	if (body_only)
		view_body(c->msg, &v);
	else if (!view_message(c->msg, &v))
		return -1;
	if (!v.len)
		return -1;
	const regex_t *re = ksr_re_get(c, a[0].s, KSR_RE_FLAGS);
	if (!re)
		return -1;
	scan_t sc = {re, NULL, a[1].s, false, true, a[0].s, true};
	return view_replace(c, &v, 0, v.len, &sc);
}

int ksr_textops_search_append(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return search_append(c, a, false);
}

int ksr_textops_search_append_body(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	return search_append(c, a, true);
}

/* String (not regex) replace in v->s[lo, hi); mode "a": every occurrence, else the first. */
static int replace_str_in(ksr_ctx_t *c, const view_t *v, size_t lo, size_t hi, const ksr_arg_t *a)
{
	str_t match = a[0].s;
	bool all = a[2].s.len && a[2].s.s[0] == 'a';
	edits_t ed = {0};
	if (!match.len)
		return -1;
	for (size_t p = lo; p + match.len <= hi;) {
		const char *f = memmem(v->s + p, hi - p, match.s, match.len);
		if (!f)
			break;
		size_t so = (size_t)(f - v->s);
		if (!edits_add(c->msg, &ed, so, so + match.len, a[1].s))
			return -1;
		if (!all)
			break;
		p = so + match.len;
	}
	return ed.n ? view_apply(c, v, &ed) : -1;
}

int ksr_textops_replace_str(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	view_t v;
	return view_message(c->msg, &v) ? replace_str_in(c, &v, 0, v.len, a) : -1;
}

int ksr_textops_replace_hdrs_str(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	view_t v;
	return view_message(c->msg, &v) ? replace_str_in(c, &v, 0, v.off[v.nhdrs], a) : -1;
}

int ksr_textops_replace_body_str(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	view_t v;
	view_body(c->msg, &v);
	return replace_str_in(c, &v, 0, v.len, a);
}

/* ---------------------------------------------------------------- subst */

static int subst_view(ksr_ctx_t *c, str_t expr, view_t *v)
{
	if (!expr.len)
		return -1;
	const re_slot_t *s = subst_get(c, expr);
	if (!s)
		return -1;
	scan_t sc = {&s->re, s->subst, STR_NULL, s->subst->global, false, expr, false};
	return view_replace(c, v, 0, v->len, &sc);
}

int ksr_textops_subst(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	view_t v;
	return view_message(c->msg, &v) ? subst_view(c, a[0].s, &v) : -1;
}

int ksr_textops_subst_body(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	view_t v;
	view_body(c->msg, &v);
	return v.len ? subst_view(c, a[0].s, &v) : -1;
}

int ksr_textops_subst_uri(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	str_t out;
	const re_slot_t *s = a[0].s.len ? subst_get(c, a[0].s) : NULL;
	if (!s || subst_str(c, s, c->msg->ruri, &out) < 0)
		return -1;
	if (msg_set_ruri(c->msg, out) < 0) {
		ksr_text_err(c, "the result is not a URI: '%.*s'", clip(out.len), out.s);
		return -1;
	}
	return 1;
}

int ksr_textops_subst_user(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	str_t out;
	sip_uri_t *u = msg_ruri(c->msg);
	const re_slot_t *s = a[0].s.len ? subst_get(c, a[0].s) : NULL;
	if (!s || !u)
		return -1;
	if (subst_str(c, s, u->user, &out) < 0)
		return -1;
	ksr_arg_t user = {out, 0};
	return ksr_setuser(c, &user, r);
}

/* Substitution inside one header's value; the name and line end are kept. */
static int subst_one_hf(ksr_ctx_t *c, const re_slot_t *s, unsigned idx)
{
	msg_t *m = c->msg;
	str_t text = ksr_hdr_text(m, idx), out;
	const char *colon = memchr(text.s, ':', text.len);
	if (!colon)
		return -1;
	const char *vs = colon + 1, *ve = text.s + text.len;
	while (vs < ve && (*vs == ' ' || *vs == '\t'))
		vs++;
	while (ve > vs && (ve[-1] == '\r' || ve[-1] == '\n' || ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	if (subst_str(c, s, str_from(vs, (size_t)(ve - vs)), &out) < 0)
		return -1;
	msg_buf_t b;
	mbuf_init(&b, m->arena, text.len + out.len);
	mbuf_add(&b, text.s, (size_t)(vs - text.s));
	mbuf_str(&b, out);
	mbuf_add(&b, ve, (size_t)(text.s + text.len - ve));
	str_t line = mbuf_done(&b);
	return line.s && msg_hdr_replace(m, idx, line) == 0 ? 1 : -1;
}

int ksr_textops_subst_hf(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	msg_t *m = c->msg;
	if (!a[0].s.len || !a[1].s.len)
		return -1;
	const re_slot_t *s = subst_get(c, a[1].s);
	if (!s)
		return -1;
	sip_hdr_type_t t = sip_hdr_type(a[0].s);
	char which = which_flag(a[2].s);
	int ret = -1, last = -1;
	for (unsigned i = 0; i < m->sip.nhdrs; i++) {
		if (!ksr_hdr_is(&m->sip.hdrs[i], t, a[0].s) || hdr_gone(m, i))
			continue;
		if (which == 'l') {
			last = (int)i;
			continue;
		}
		if (subst_one_hf(c, s, i) > 0)
			ret = 1;
		if (which == 'f')
			return ret;
	}
	if (last >= 0)
		ret = subst_one_hf(c, s, (unsigned)last);
	return ret;
}

/* ---------------------------------------------------------------- body */

int ksr_textops_has_body(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)a;
	(void)r;
	/* Kamailio's rule: a Content-Length header with a value above 0 */
	return c->msg->sip.content_length > 0 ? 1 : -1;
}

/* "type/subtype" of a media type, without parameters or blanks. */
static str_t mime_of(str_t s)
{
	const char *semi = memchr(s.s, ';', s.len);
	if (semi)
		s.len = (size_t)(semi - s.s);
	return str_trim(s);
}

static bool mime_eq(str_t a, str_t b)
{
	const char *sa = memchr(a.s, '/', a.len), *sb = memchr(b.s, '/', b.len);
	if (!sa || !sb)
		return str_caseeq(a, b);
	return str_caseeq(str_trim(str_from(a.s, (size_t)(sa - a.s))), str_trim(str_from(b.s, (size_t)(sb - b.s)))) &&
	       str_caseeq(str_trim(str_from(sa + 1, (size_t)(a.s + a.len - sa - 1))),
			  str_trim(str_from(sb + 1, (size_t)(b.s + b.len - sb - 1))));
}

int ksr_textops_has_body_type(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	const sip_msg_t *sm = &c->msg->sip;
	if (sm->content_length <= 0)
		return -1;
	str_t want = mime_of(a[0].s);
	if (!want.len)
		return 1;
	const sip_hdr_t *ct = sm->first[HDR_CONTENT_TYPE];
	/* no Content-Type: RFC 3261 implies application/sdp, as Kamailio assumes */
	str_t have = ct ? mime_of(ct->body) : STR_LIT("application/sdp");
	return mime_eq(have, want) ? 1 : -1;
}

int ksr_textops_set_body(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[0].s.len || !a[1].s.len) {
		ksr_text_err(c, "empty %s", a[0].s.len ? "content type" : "body");
		return -1;
	}
	return msg_set_body(c->msg, a[0].s, a[1].s) == 0 ? 1 : -1;
}

int ksr_textops_set_reply_body(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	if (!a[0].s.len || !a[1].s.len) {
		ksr_text_err(c, "empty %s", a[0].s.len ? "content type" : "body");
		return -1;
	}
	return msg_set_reply_body(c->msg, a[0].s, a[1].s) == 0 ? 1 : -1;
}

/* ---------------------------------------------------------------- privacy (RFC 3323) */

static unsigned privacy_bit(str_t v)
{
	static const char *const names[] = {"header", "session", "user", "none", "critical", "id", "history"};
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (str_caseeq_lit(v, names[i]))
			return 1u << i;
	return 0;
}

/* Bits of the priv-values of the first Privacy header; 0 if absent or malformed. */
static unsigned privacy_values(sip_msg_t *sm)
{
	const sip_hdr_t *h = sip_msg_hdr_find(sm, STR_LIT("Privacy"));
	if (!h)
		return 0;
	unsigned bits = 0;
	const char *p = h->body.s, *end = h->body.s + h->body.len;
	while (p <= end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;
		unsigned b = privacy_bit(str_trim(str_from(p, (size_t)(stop - p))));
		if (!b)
			return 0;
		bits |= b;
		p = stop + 1;
	}
	return bits;
}

int ksr_textops_is_privacy(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)r;
	unsigned want = privacy_bit(str_trim(a[0].s));
	if (!want) {
		ksr_text_err(c, "invalid privacy value '%.*s'", clip(a[0].s.len), a[0].s.s);
		return -1;
	}
	return privacy_values(&c->msg->sip) & want ? 1 : -1;
}

/* ---------------------------------------------------------------- strings */

static bool is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

int ksr_textops_in_list(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	str_t subject = a[0].s, list = a[1].s;
	if (!subject.len || !list.len || !a[2].s.len)
		return -1;
	char sep = a[2].s.s[0];
	const char *p = list.s, *end = list.s + list.len;
	while (p <= end) {
		const char *next = memchr(p, sep, (size_t)(end - p));
		const char *stop = next ? next : end, *q = p;
		while (q < stop && is_ws(*q))
			q++;
		while (stop > q && is_ws(stop[-1]))
			stop--;
		if (str_eq(str_from(q, (size_t)(stop - q)), subject))
			return 1;
		if (!next)
			break;
		p = next + 1;
	}
	return -1;
}


int ksr_textops_cmp_str(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	return ksr_cmp_result(str_cmp(a[0].s, a[1].s));
}

int ksr_textops_cmp_istr(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	return ksr_cmp_result(str_casecmp(a[0].s, a[1].s));
}

int ksr_textops_starts_with(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	if (a[0].s.len < a[1].s.len)
		return -1;
	return ksr_cmp_result(a[1].s.len ? strncmp(a[0].s.s, a[1].s.s, a[1].s.len) : 0);
}

int ksr_textops_ends_with(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	if (a[0].s.len < a[1].s.len)
		return -1;
	return ksr_cmp_result(a[1].s.len ? strncmp(a[0].s.s + a[0].s.len - a[1].s.len, a[1].s.s, a[1].s.len) : 0);
}

/* 1-based position of needle in text (0 would mean "stop" to a KEMI caller), -1 if absent. */
static int find(str_t text, str_t needle, bool icase)
{
	if (!needle.len || needle.len > text.len)
		return -1;
	for (size_t i = 0; i + needle.len <= text.len; i++) {
		int rc = icase ? strncasecmp(text.s + i, needle.s, needle.len) : memcmp(text.s + i, needle.s, needle.len);
		if (rc == 0)
			return i < 0x7ffffffe ? (int)i + 1 : -1;
	}
	return -1;
}

int ksr_textops_str_find(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	return find(a[0].s, a[1].s, false);
}

int ksr_textops_str_ifind(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	return find(a[0].s, a[1].s, true);
}

/* Whether the characters of clist are in txt: any of them, or all of them. */
static int chars_in(str_t txt, str_t clist, bool all)
{
	if (!txt.len || !clist.len)
		return -1;
	for (size_t i = 0; i < clist.len; i++) {
		bool in = memchr(txt.s, clist.s[i], txt.len) != NULL;
		if (in && !all)
			return 1;
		if (!in && all)
			return -1;
	}
	return all ? 1 : -1;
}

int ksr_textops_str_any_in(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	return chars_in(a[0].s, a[1].s, false);
}

int ksr_textops_str_all_in(ksr_ctx_t *c, const ksr_arg_t *a, ksr_xval_t *r)
{
	(void)c;
	(void)r;
	return chars_in(a[0].s, a[1].s, true);
}
