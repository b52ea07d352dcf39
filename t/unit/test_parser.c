// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * The SIP parser against the shared test data, read at run time from
 * $KSR_TESTDATA (default: the testdata folder beside the source tree):
 * - every row of torture/INDEX.tsv, with the verdict derived from the row's
 *   own expected / expected_server_action text;
 * - every message in real/;
 * - the accessors' values on selected messages, stream framing, URIs, limits
 *   and hostile input.
 * Every message is copied into a buffer of exactly its size, so that
 * AddressSanitizer sees any read past the end.
 */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "core/parser/sip_parser.h"

/* ---------------------------------------------------------------- test data */

static const char *testdata(void)
{
	const char *d = getenv("KSR_TESTDATA");
	return d && *d ? d : KSR_SOURCE_DIR "/../shared/testdata";
}

/* testdata/<sub>[/<name>] into path; the result is checked, so a long path fails loudly. */
static void data_path(char *path, size_t cap, const char *sub, const char *name)
{
	int n = name ? snprintf(path, cap, "%s/%s/%s", testdata(), sub, name)
		     : snprintf(path, cap, "%s/%s", testdata(), sub);
	ck_assert_msg(n > 0 && (size_t)n < cap, "path too long under %s", testdata());
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	/* exact size, so that a read past the message is a read past the allocation */
	char *exact = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(exact);
	memcpy(exact, buf, n);
	free(buf);
	*len = n;
	return exact;
}

typedef struct {
	char name[64];
	char kind[16];
	char expected[32];
	char action[256];
} row_t;

#define MAX_ROWS 256
static row_t rows[MAX_ROWS];
static int nrows = -1; /* -1: INDEX.tsv could not be read */

static void copy_field(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static void load_index(void)
{
	char path[1024], line[8192];
	snprintf(path, sizeof(path), "%s/torture/INDEX.tsv", testdata());
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	nrows = 0;
	bool header = true;
	while (fgets(line, sizeof(line), f) && nrows < MAX_ROWS) {
		line[strcspn(line, "\r\n")] = '\0';
		if (header || !line[0]) {
			header = false;
			continue;
		}
		char *cols[7] = {0};
		char *p = line;
		for (int i = 0; i < 7 && p; i++) {
			cols[i] = p;
			p = strchr(p, '\t');
			if (p)
				*p++ = '\0';
		}
		row_t *r = &rows[nrows++];
		copy_field(r->name, sizeof(r->name), cols[0]);
		copy_field(r->kind, sizeof(r->kind), cols[3]);
		copy_field(r->expected, sizeof(r->expected), cols[4]);
		copy_field(r->action, sizeof(r->action), cols[5]);
	}
	fclose(f);
}

static void row_file(char *file, size_t cap, const row_t *r)
{
	int n = snprintf(file, cap, "%s.sip", r->name);
	ck_assert_msg(n > 0 && (size_t)n < cap, "file name too long: %s", r->name);
}

/* ---------------------------------------------------------------- fixtures */

typedef struct {
	arena_t a;
	sip_msg_t m;
	char *buf;
	size_t len;
	int rc;
	char what[160];
} fx_t;

static void fx_init(fx_t *f)
{
	memset(f, 0, sizeof(*f));
	arena_init(&f->a, 0);
}

static void fx_free(fx_t *f)
{
	arena_free(&f->a);
	free(f->buf);
	f->buf = NULL;
}

static int fx_parse(fx_t *f, unsigned flags)
{
	arena_reset(&f->a);
	f->rc = sip_parse_msg(&f->m, f->buf, f->len, &f->a, flags);
	return f->rc;
}

/* Loads testdata/<dir>/<name> and parses it as one datagram. */
static int fx_load(fx_t *f, const char *dir, const char *name)
{
	char path[1024];
	fx_init(f);
	snprintf(f->what, sizeof(f->what), "%s/%s", dir, name);
	data_path(path, sizeof(path), dir, name);
	f->buf = read_file(path, &f->len);
	ck_assert_msg(f->buf != NULL, "%s: %s", path, strerror(errno));
	return fx_parse(f, SIP_PARSE_DATAGRAM);
}

static int fx_text(fx_t *f, const char *text, size_t len, unsigned flags)
{
	fx_init(f);
	snprintf(f->what, sizeof(f->what), "inline message");
	f->buf = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(f->buf);
	memcpy(f->buf, text, len);
	f->len = len;
	return fx_parse(f, flags);
}
#define FX_TEXT(f, lit, flags) fx_text((f), (lit), sizeof(lit) - 1, (flags))

static const char *cstr(str_t s, char *buf, size_t cap)
{
	if (!s.s)
		return "(null)";
	snprintf(buf, cap, "%.*s", (int)(s.len < cap ? s.len : cap - 1), s.s);
	return buf;
}

#define STR_IS(x, lit) \
	do { \
		char b_[512]; \
		str_t x_ = (x); \
		ck_assert_msg(x_.s && str_eq(x_, STR_LIT(lit)), "%s: expected '%s', got '%s'", #x, (lit), \
			      cstr(x_, b_, sizeof(b_))); \
	} while (0)

#define OK_BOTH(f) \
	do { \
		ck_assert_msg((f)->rc == SIP_OK, "%s: parse %d (%d %s)", (f)->what, (f)->rc, (f)->m.err.status, \
			      (f)->m.err.reason ? (f)->m.err.reason : ""); \
		int v_ = sip_msg_validate(&(f)->m); \
		ck_assert_msg(v_ == SIP_OK, "%s: validate %d (%d %s)", (f)->what, v_, (f)->m.err.status, \
			      (f)->m.err.reason ? (f)->m.err.reason : ""); \
	} while (0)

static unsigned via_count(sip_msg_t *m)
{
	unsigned n = 0;
	for (sip_via_t *v = sip_msg_via1(m); v; v = v->next)
		n++;
	return n;
}

static const sip_param_t *param(const sip_param_t *l, const char *name)
{
	return sip_param_find(l, str_cstr(name));
}

/* ---------------------------------------------------------------- torture verdicts */

typedef struct {
	bool success_ok; /* the action lets a lenient element accept */
	int codes[8];    /* acceptable err.status values; 0 = drop */
	int ncodes;
} verdict_t;

/*
 * Reads the verdict from the action text itself: every 3-digit reply code it
 * names ("reply 400", "reject with 400", "400 also acceptable") is acceptable,
 * "drop the response" means status 0, and "tolerate"/"ignore" means a lenient
 * parser may accept the message instead.
 */
static verdict_t verdict_of(const char *action)
{
	verdict_t v = {0};
	for (const char *p = action; *p; p++) {
		if (p != action && isalnum((unsigned char)p[-1]))
			continue;
		if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) ||
		    isalnum((unsigned char)p[3]))
			continue;
		int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (code >= 100 && code <= 699 && v.ncodes < 8)
			v.codes[v.ncodes++] = code;
	}
	if (strstr(action, "drop the response") && v.ncodes < 8)
		v.codes[v.ncodes++] = 0;
	v.success_ok = strstr(action, "tolerate") || strstr(action, "ignore");
	return v;
}

static bool code_ok(const verdict_t *v, int status)
{
	for (int i = 0; i < v->ncodes; i++)
		if (v->codes[i] == status)
			return true;
	return false;
}

START_TEST(torture_row)
{
	ck_assert_msg(nrows > 0, "torture/INDEX.tsv could not be read from %s", testdata());
	const row_t *r = &rows[_i];
	char file[96];
	row_file(file, sizeof(file), r);
	fx_t f;
	int rc = fx_load(&f, "torture", file);
	int vrc = rc == SIP_OK ? sip_msg_validate(&f.m) : rc;
	const char *why = f.m.err.reason ? f.m.err.reason : "";

	if (strcmp(r->expected, "valid") == 0) {
		ck_assert_msg(rc == SIP_OK && vrc == SIP_OK, "%s (valid): parse %d, validate %d: %d %s", file, rc, vrc,
			      f.m.err.status, why);
	} else if (strcmp(r->expected, "valid-but-app-reject") == 0) {
		ck_assert_msg(rc == SIP_OK, "%s (valid-but-app-reject): parse %d: %d %s", file, rc, f.m.err.status,
			      why);
		/*
		 * The README lets the layer above answer "a 400 for semantic faults such as
		 * missing or duplicated mandatory headers"; sip_msg_validate() is where those
		 * are checked, so a row whose action is that 400 may fail validation with it.
		 */
		if (vrc != SIP_OK)
			ck_assert_msg(strncmp(r->action, "reply 400", 9) == 0 && f.m.err.status == 400,
				      "%s (valid-but-app-reject, \"%s\"): validate %d: %d %s", file, r->action, vrc,
				      f.m.err.status, why);
	} else {
		ck_assert_msg(strcmp(r->expected, "invalid") == 0, "%s: unknown verdict '%s'", file, r->expected);
		verdict_t v = verdict_of(r->action);
		ck_assert_msg(v.ncodes > 0, "%s: no reply code in \"%s\"", file, r->action);
		if (vrc == SIP_OK)
			ck_assert_msg(v.success_ok, "%s (invalid, \"%s\"): accepted", file, r->action);
		else
			ck_assert_msg(code_ok(&v, f.m.err.status), "%s (invalid, \"%s\"): got %d %s", file, r->action,
				      f.m.err.status, why);
		if (strcmp(r->kind, "response") == 0 && vrc != SIP_OK)
			ck_assert_msg(f.m.err.status == 0, "%s: a bad response must be dropped, got %d", file,
				      f.m.err.status);
	}
	fx_free(&f);
}
END_TEST

static int count_files(const char *sub, const char *suffix)
{
	char path[1024];
	data_path(path, sizeof(path), sub, NULL);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	size_t sl = strlen(suffix);
	for (struct dirent *e; (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

START_TEST(torture_all_files_indexed)
{
	int files = count_files("torture", ".sip");
	ck_assert_msg(files > 0, "no .sip files in %s/torture", testdata());
	ck_assert_msg(nrows == files, "INDEX.tsv has %d rows but torture/ has %d .sip files", nrows, files);
	for (int i = 0; i < nrows; i++) {
		char path[1024];
		char file[96];
		row_file(file, sizeof(file), &rows[i]);
		data_path(path, sizeof(path), "torture", file);
		FILE *fp = fopen(path, "rb");
		ck_assert_msg(fp != NULL, "INDEX.tsv row %s: no file %s", rows[i].name, path);
		fclose(fp);
	}
}
END_TEST

START_TEST(verdict_text)
{
	verdict_t v = verdict_of("reply 501 Not Implemented (400 also acceptable)");
	ck_assert(!v.success_ok && code_ok(&v, 501) && code_ok(&v, 400) && !code_ok(&v, 0));
	v = verdict_of("reply 400, or tolerate the extra SP and never forward it");
	ck_assert(v.success_ok && code_ok(&v, 400));
	v = verdict_of("drop the response silently");
	ck_assert(!v.success_ok && code_ok(&v, 0) && v.ncodes == 1);
	v = verdict_of("reply 400; UDP: drop rest of datagram; stream: close the connection");
	ck_assert(!v.success_ok && code_ok(&v, 400) && !code_ok(&v, 0));
}
END_TEST

/* ---------------------------------------------------------------- real messages */

START_TEST(real_all)
{
	char path[1024];
	data_path(path, sizeof(path), "real", NULL);
	DIR *d = opendir(path);
	ck_assert_msg(d != NULL, "%s: %s", path, strerror(errno));
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (l < 5 || strcmp(e->d_name + l - 4, ".sip") != 0)
			continue;
		fx_t f;
		fx_load(&f, "real", e->d_name);
		OK_BOTH(&f);
		ck_assert_msg(f.m.content_length >= 0 && f.m.body.len == (size_t)f.m.content_length,
			      "%s: body %zu vs Content-Length %ld", e->d_name, f.m.body.len, f.m.content_length);
		/* every message there frames on a stream too */
		ck_assert_msg(sip_frame_stream(f.buf, f.len, 65536) == (long)f.len, "%s: stream framing", e->d_name);
		ck_assert_msg(fx_parse(&f, SIP_PARSE_STREAM) == SIP_OK, "%s: stream parse %s", e->d_name,
			      f.m.err.reason);
		fx_free(&f);
		n++;
	}
	closedir(d);
	ck_assert_msg(n >= 10, "only %d messages in %s", n, path);
}
END_TEST

/* ---------------------------------------------------------------- torture accessors */

START_TEST(acc_wsinv)
{
	fx_t f;
	fx_load(&f, "torture", "wsinv.sip");
	OK_BOTH(&f);
	sip_msg_t *m = &f.m;
	ck_assert_int_eq(m->type, SIP_REQUEST);
	ck_assert_int_eq(m->method_id, METH_INVITE);
	ck_assert_int_eq(sip_msg_max_forwards(m), 68);
	sip_cseq_t *cs = sip_msg_cseq(m);
	ck_assert_ptr_nonnull(cs);
	ck_assert_uint_eq(cs->seq, 9);
	STR_IS(cs->seq_str, "0009");
	STR_IS(cs->method, "INVITE");
	sip_hdr_t *u = sip_msg_hdr_find(m, STR_LIT("unknownheaderwithunusualvalue"));
	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(u->type, HDR_OTHER);
	ck_assert_ptr_null(u->parsed);
	STR_IS(u->body, ";;,,;;,;");
	STR_IS(sip_msg_to(m)->tag, "1918181833n");
	STR_IS(sip_msg_to(m)->uri.host, "chair-dnrc.example.com");
	sip_nameaddr_t *from = sip_msg_from(m);
	STR_IS(from->tag, "98asjd8");
	STR_IS(from->display, "\"J Rosenberg \\\\\\\"\"");
	ck_assert_uint_eq(via_count(m), 3);
	sip_via_t *v = sip_msg_via1(m);
	STR_IS(v->proto_name, "SIP");
	STR_IS(v->version, "2.0");
	STR_IS(v->transport, "UDP");
	STR_IS(v->host, "192.0.2.2");
	STR_IS(v->branch, "390skdjuw");
	v = v->next;
	ck_assert_int_eq(v->proto, SIP_PROTO_TCP);
	STR_IS(v->host, "spindle.example.com");
	STR_IS(v->branch, "z9hG4bK9ikj8");
	ck_assert_ptr_eq(v->hdr, v->next->hdr);
	STR_IS(v->next->host, "192.168.255.111");
	STR_IS(v->next->branch, "z9hG4bK30239");
	sip_contacts_t *c = sip_msg_contacts(m);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->count, 1);
	STR_IS(c->first->q_str, "0.33");
	STR_IS(param(c->first->params, "newparam")->value, "newvalue");
	ck_assert_ptr_null(param(c->first->params, "secondparam")->value.s);
	sip_hdr_t *nf = sip_msg_hdr_find(m, STR_LIT("NewFangledHeader"));
	STR_IS(sip_hdr_unfold(m, nf), "newfangled value continued newfangled value");
	sip_hdr_t *subj = sip_msg_hdr_find(m, STR_LIT("Subject"));
	ck_assert_msg(subj && subj->type == HDR_SUBJECT && subj->body.len == 0, "empty Subject (s :)");
	sip_nameaddr_t *r = sip_msg_routes(m);
	ck_assert(r && r->uri.lr && !r->next);
	ck_assert_int_eq(m->content_length, 150);
	ck_assert_uint_eq(m->body.len, 150);
	fx_free(&f);
}
END_TEST

START_TEST(acc_esc01)
{
	fx_t f;
	fx_load(&f, "torture", "esc01.sip");
	OK_BOTH(&f);
	sip_msg_t *m = &f.m;
	sip_uri_t *ru = sip_msg_ruri(m);
	STR_IS(ru->user, "sips%3Auser%40example.com");
	STR_IS(sip_unescape(&f.a, ru->user), "sips:user@example.com");
	STR_IS(sip_unescape(&f.a, sip_msg_to(m)->uri.user), "user");
	STR_IS(sip_unescape(&f.a, sip_msg_from(m)->uri.user), "I have spaces");
	sip_contacts_t *c = sip_msg_contacts(m);
	sip_uri_t *cu = &c->first->uri;
	STR_IS(sip_unescape(&f.a, cu->user), "caller");
	ck_assert_msg(cu->lr, "escaped ;%%6C%%72 is ;lr");
	const sip_param_t *p = param(cu->params, "n%61me");
	ck_assert_ptr_nonnull(p);
	STR_IS(sip_unescape(&f.a, p->name), "name");
	/* once only: %25%34%31 is "%41", never "A" */
	STR_IS(sip_unescape(&f.a, p->value), "value%41");
	ck_assert_int_eq(sip_msg_hdr_find(m, STR_LIT("i"))->type, HDR_CALLID);
	ck_assert_int_eq(sip_msg_hdr_find(m, STR_LIT("Content-Type"))->type, HDR_CONTENT_TYPE);
	fx_free(&f);
}
END_TEST

START_TEST(acc_semiuri)
{
	fx_t f;
	fx_load(&f, "torture", "semiuri.sip");
	OK_BOTH(&f);
	sip_uri_t *u = sip_msg_ruri(&f.m);
	STR_IS(u->user, "user;par=u%40example.net");
	STR_IS(sip_unescape(&f.a, u->user), "user;par=u@example.net");
	STR_IS(u->host, "example.com");
	ck_assert_ptr_null(u->params);
	sip_hdr_t *acc = sip_msg_hdr_find(&f.m, STR_LIT("Accept"));
	STR_IS(sip_hdr_unfold(&f.m, acc),
	       "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag");
	fx_free(&f);
}
END_TEST

START_TEST(acc_longreq)
{
	fx_t f;
	fx_load(&f, "torture", "longreq.sip");
	OK_BOTH(&f);
	sip_msg_t *m = &f.m;
	ck_assert_uint_eq(via_count(m), 34);
	ck_assert_uint_eq(sip_msg_hdr_count(m, STR_LIT("Via")), 34);
	ck_assert_uint_eq(sip_msg_hdr_count(m, STR_LIT("v")), 34);
	STR_IS(sip_msg_via1(m)->host, "sip33.example.com");
	sip_hdr_t *last = sip_msg_hdr_find_idx(m, STR_LIT("via"), -1);
	sip_via_t *lv = last->parsed;
	STR_IS(lv->host, "host.example.com");
	STR_IS(lv->received, "192.0.2.5");
	ck_assert_uint_eq(lv->branch.len, 215);
	ck_assert(memcmp(lv->branch.s + 204, "branchvalue", 11) == 0);
	ck_assert_uint_eq(sip_msg_to(m)->uri.port, 6000);
	ck_assert_uint_eq(m->body.len, 150);
	fx_free(&f);
}
END_TEST

START_TEST(acc_ipv6_ports)
{
	fx_t f;
	fx_load(&f, "torture", "port-ambiguous.sip");
	OK_BOTH(&f);
	sip_uri_t *u = sip_msg_ruri(&f.m);
	STR_IS(u->host, "[2001:db8::10:5070]");
	ck_assert(u->host_is_ipv6);
	ck_assert_uint_eq(u->port, 0);
	ck_assert_uint_eq(sip_uri_port(u), 5060);
	fx_free(&f);

	fx_load(&f, "torture", "port-unambiguous.sip");
	OK_BOTH(&f);
	u = sip_msg_ruri(&f.m);
	STR_IS(u->host, "[2001:db8::10]");
	STR_IS(u->port_str, "5070");
	ck_assert_uint_eq(u->port, 5070);
	STR_IS(sip_msg_via1(&f.m)->host, "[2001:db8::9:1]");
	fx_free(&f);

	fx_load(&f, "torture", "ipv6-bug-abnf-3-colons.sip");
	OK_BOTH(&f);
	STR_IS(sip_msg_ruri(&f.m)->host, "[2001:db8:::192.0.2.1]");
	fx_free(&f);

	fx_load(&f, "torture", "mult-ip-in-header.sip");
	OK_BOTH(&f);
	sip_via_t *v = sip_msg_via1(&f.m);
	STR_IS(v->host, "[2001:db8::9:1]");
	ck_assert_uint_eq(v->port, 6050);
	STR_IS(v->next->next->received, "192.0.2.200");
	fx_free(&f);

	fx_load(&f, "torture", "ipv6-bad.sip");
	ck_assert_int_eq(f.rc, SIP_OK);
	ck_assert_ptr_null(sip_msg_ruri(&f.m));
	ck_assert_int_eq(f.m.err.status, 400);
	fx_free(&f);
}
END_TEST

START_TEST(acc_received)
{
	fx_t f;
	fx_load(&f, "torture", "via-received-param-with-delim.sip");
	OK_BOTH(&f);
	STR_IS(sip_msg_via1(&f.m)->received, "[2001:db8::9:255]");
	STR_IS(sip_msg_via1(&f.m)->branch, "z9hG4bKas3-111");
	fx_free(&f);
	fx_load(&f, "torture", "via-received-param-no-delim.sip");
	OK_BOTH(&f);
	STR_IS(sip_msg_via1(&f.m)->received, "2001:db8::9:255");
	STR_IS(sip_msg_via1(&f.m)->branch, "z9hG4bKas3");
	fx_free(&f);
}
END_TEST

START_TEST(acc_framing)
{
	fx_t f;
	/* datagram: Content-Length 0, then 450 octets that are ignored */
	fx_load(&f, "torture", "dblreq.sip");
	OK_BOTH(&f);
	ck_assert_int_eq(f.m.method_id, METH_REGISTER);
	ck_assert_uint_eq(f.m.body.len, 0);
	ck_assert_uint_eq(f.m.len + 450, f.len);
	ck_assert_int_eq(f.m.first[HDR_CALLID]->type, HDR_CALLID);
	STR_IS(sip_msg_callid(&f.m), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
	fx_free(&f);

	/* datagram without Content-Length: the body is the rest */
	fx_load(&f, "torture", "inv2543.sip");
	OK_BOTH(&f);
	ck_assert_int_eq(f.m.content_length, -1);
	ck_assert_uint_eq(f.m.body.len, 105);
	ck_assert_int_eq(sip_msg_max_forwards(&f.m), -1);
	ck_assert_ptr_null(sip_msg_via1(&f.m)->branch.s);
	ck_assert_int_eq(fx_parse(&f, SIP_PARSE_STREAM), SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 400);
	fx_free(&f);

	/* on a stream, a short body means: wait */
	fx_load(&f, "torture", "clerr.sip");
	ck_assert_int_eq(f.rc, SIP_E_PARSE);
	STR_IS(str_cstr(f.m.err.reason), "Content-Length mismatch");
	ck_assert_int_eq(fx_parse(&f, SIP_PARSE_STREAM), SIP_E_INCOMPLETE);
	ck_assert_int_eq(sip_frame_stream(f.buf, f.len, 65536), SIP_E_INCOMPLETE);
	fx_free(&f);

	fx_load(&f, "torture", "mcl01.sip");
	ck_assert_int_eq(f.rc, SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 400);
	ck_assert_int_eq(sip_frame_stream(f.buf, f.len, 65536), SIP_E_PARSE);
	fx_free(&f);

	fx_load(&f, "torture", "ncl.sip");
	ck_assert_int_eq(f.rc, SIP_E_PARSE);
	ck_assert_int_eq(sip_frame_stream(f.buf, f.len, 65536), SIP_E_PARSE);
	fx_free(&f);

	/* the binary body part holds NULs, bare CR and LF: framing is by length only */
	fx_load(&f, "torture", "mpart01.sip");
	OK_BOTH(&f);
	ck_assert_uint_eq(f.m.body.len, 553);
	ck_assert_ptr_nonnull(memchr(f.m.body.s, '\0', f.m.body.len));
	fx_free(&f);
}
END_TEST

START_TEST(acc_errors_keep_index)
{
	fx_t f;
	/* a 505 still needs Via, From, To, Call-ID and CSeq to be built */
	fx_load(&f, "torture", "badvers.sip");
	ck_assert_int_eq(f.rc, SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 505);
	ck_assert_int_eq(f.m.type, SIP_REQUEST);
	STR_IS(sip_msg_callid(&f.m), "badvers.31417@c.example.com");
	ck_assert_ptr_nonnull(sip_msg_cseq(&f.m));
	ck_assert_ptr_nonnull(sip_msg_via1(&f.m));
	fx_free(&f);

	/* badinv01: the Via is good enough to answer, not to accept */
	fx_load(&f, "torture", "badinv01.sip");
	ck_assert_int_eq(f.rc, SIP_OK);
	sip_via_t *v = sip_msg_via1(&f.m);
	ck_assert_ptr_nonnull(v);
	ck_assert(v->repaired && !v->next && !v->params);
	STR_IS(v->host, "192.0.2.15");
	ck_assert_int_eq(sip_msg_validate(&f.m), SIP_E_PARSE);
	STR_IS(str_cstr(f.m.err.reason), "Malformed Via");
	sip_error_t e;
	ck_assert_int_eq(sip_parse_via_list(&f.a, f.m.first[HDR_VIA]->body, NULL, &v, &e), SIP_E_PARSE);
	fx_free(&f);
	static const char *const lax[] = {
		"SIP/2.0/UDP a;;branch=1",  "SIP/2.0/UDP a;branch=1,", ",SIP/2.0/UDP a;branch=1",
		"SIP/2.0/UDP a, ,SIP/2.0/UDP b", "SIP/2.0/UDP a;branch=1;",
	};
	for (size_t i = 0; i < sizeof(lax) / sizeof(lax[0]); i++) {
		char msg[512];
		int n = snprintf(msg, sizeof(msg),
				 "OPTIONS sip:b@example.com SIP/2.0\r\nVia: %s\r\nFrom: <sip:a@b>;tag=1\r\n"
				 "To: <sip:b@c>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
				 lax[i]);
		fx_text(&f, msg, (size_t)n, SIP_PARSE_DATAGRAM);
		v = sip_msg_via1(&f.m);
		ck_assert_msg(v && v->repaired && str_eq(v->host, STR_LIT("a")), "Via: %s", lax[i]);
		ck_assert_msg(sip_msg_validate(&f.m) == SIP_E_PARSE && f.m.err.status == 400, "Via: %s", lax[i]);
		fx_free(&f);
	}

	fx_load(&f, "torture", "bigcode.sip");
	ck_assert_int_eq(f.rc, SIP_E_PARSE);
	ck_assert_int_eq(f.m.type, SIP_REPLY);
	ck_assert_int_eq(f.m.err.status, 0);
	fx_free(&f);

	fx_load(&f, "torture", "scalarlg.sip");
	ck_assert_int_eq(f.rc, SIP_OK);
	ck_assert_int_eq(sip_msg_validate(&f.m), SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 0);
	fx_free(&f);

	fx_load(&f, "torture", "scalar02.sip");
	ck_assert_int_eq(sip_msg_validate(&f.m), SIP_E_PARSE);
	STR_IS(str_cstr(f.m.err.reason), "Bad CSeq");
	ck_assert_int_eq(sip_msg_max_forwards(&f.m), -2);
	ck_assert_int_eq(sip_msg_expires(&f.m), (long)UINT32_MAX);
	fx_free(&f);
}
END_TEST

START_TEST(acc_nul)
{
	fx_t f;
	/* intmeth: a NUL inside a quoted-pair of a display name is legal */
	fx_load(&f, "torture", "intmeth.sip");
	OK_BOTH(&f);
	ck_assert_int_eq(f.m.method_id, METH_OTHER);
	STR_IS(f.m.method, "!interesting-Method0123456789_*+`.%indeed'~");
	sip_nameaddr_t *to = sip_msg_to(&f.m);
	ck_assert_ptr_nonnull(memchr(to->display.s, '\0', to->display.len));
	sip_uri_t *u = sip_msg_ruri(&f.m);
	STR_IS(u->user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
	STR_IS(u->password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
	STR_IS(u->host, "example.com");
	STR_IS(sip_msg_from(&f.m)->display, "token1~` token2'+_ token3*%!.-");
	STR_IS(sip_msg_from(&f.m)->tag, "_token~1'+`*%!-.");
	fx_free(&f);

	static const char raw_nul[] = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
				      "From: <sip:a@b>;tag=1\r\nTo: \"x\0y\" <sip:a@b>\r\nCall-ID: 1\r\n"
				      "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
	fx_text(&f, raw_nul, sizeof(raw_nul) - 1, SIP_PARSE_DATAGRAM);
	ck_assert_int_eq(f.rc, SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 400);
	fx_free(&f);
}
END_TEST

START_TEST(acc_unknown_schemes)
{
	fx_t f;
	fx_load(&f, "torture", "unkscm.sip");
	OK_BOTH(&f);
	ck_assert_int_eq(sip_msg_ruri(&f.m)->scheme, URI_OTHER);
	STR_IS(sip_msg_ruri(&f.m)->scheme_str, "nobodyKnowsThisScheme");
	fx_free(&f);
	fx_load(&f, "torture", "unksm2.sip");
	OK_BOTH(&f);
	STR_IS(sip_msg_to(&f.m)->uri.scheme_str, "isbn");
	STR_IS(sip_msg_from(&f.m)->uri.scheme_str, "http");
	STR_IS(sip_msg_contacts(&f.m)->first->uri.scheme_str, "name");
	fx_free(&f);
	fx_load(&f, "torture", "cparam01.sip");
	OK_BOTH(&f);
	sip_nameaddr_t *c = sip_msg_contacts(&f.m)->first;
	ck_assert(!c->angle);
	ck_assert_ptr_null(c->uri.params);
	ck_assert_ptr_nonnull(param(c->params, "unknownparam"));
	fx_free(&f);
	fx_load(&f, "torture", "cparam02.sip");
	OK_BOTH(&f);
	c = sip_msg_contacts(&f.m)->first;
	ck_assert_ptr_nonnull(param(c->uri.params, "unknownparam"));
	ck_assert_ptr_null(c->params);
	fx_free(&f);
	fx_load(&f, "torture", "regescrt.sip");
	OK_BOTH(&f);
	STR_IS(sip_msg_contacts(&f.m)->first->uri.headers, "Route=%3Csip:sip.example.com%3E");
	fx_free(&f);
	fx_load(&f, "torture", "bext01.sip");
	OK_BOTH(&f);
	sip_param_t *req = sip_msg_option_tags(&f.m, HDR_PROXY_REQUIRE);
	STR_IS(req->name, "noProxiesSupportThis");
	STR_IS(req->next->name, "norDoAnyProxiesSupportThis");
	ck_assert_ptr_null(req->next->next);
	fx_free(&f);
	fx_load(&f, "torture", "regaut01.sip");
	OK_BOTH(&f);
	sip_auth_t *au = sip_msg_auth(&f.m, HDR_AUTHORIZATION);
	STR_IS(au->scheme, "NoOneKnowsThisScheme");
	STR_IS(param(au->params, "opaque-data")->value, "here");
	fx_free(&f);
}
END_TEST

/* ---------------------------------------------------------------- real accessors */

START_TEST(acc_digest)
{
	fx_t f;
	fx_load(&f, "real", "register-digest-auth.sip");
	OK_BOTH(&f);
	sip_auth_t *a = sip_msg_auth(&f.m, HDR_AUTHORIZATION);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_eq(a, sip_msg_auth(&f.m, HDR_AUTHORIZATION)); /* cached */
	STR_IS(a->scheme, "Digest");
	STR_IS(a->username, "alice");
	STR_IS(a->realm, "example.com");
	STR_IS(a->nonce, "Z0dA3mcRt2vYx1b9Kq8WcA7fN4sE");
	STR_IS(a->uri, "sip:example.com");
	STR_IS(a->response, "63c8d0f593b16ade42dedc31890286f7");
	STR_IS(a->algorithm, "MD5");
	STR_IS(a->cnonce, "0a4f113b9d5c");
	STR_IS(a->opaque, "5ccc069c1f8e3a7d");
	STR_IS(a->qop, "auth");
	STR_IS(a->nc, "00000001");
	unsigned n = 0;
	for (sip_param_t *p = a->params; p; p = p->next, n++)
		ck_assert_msg(!memchr(p->value.s, '"', p->value.len), "param %.*s still quoted", STR_FMT(p->name));
	ck_assert_uint_eq(n, 10);
	ck_assert_ptr_null(sip_msg_auth(&f.m, HDR_PROXY_AUTHORIZATION));
	STR_IS(sip_msg_contacts(&f.m)->first->expires_str, "3600");
	ck_assert_int_eq(sip_uri_proto(&sip_msg_contacts(&f.m)->first->uri), SIP_PROTO_UDP);
	fx_free(&f);
}
END_TEST

START_TEST(acc_multi_via)
{
	fx_t f;
	fx_load(&f, "real", "response-180-multi-via.sip");
	OK_BOTH(&f);
	sip_msg_t *m = &f.m;
	ck_assert_int_eq(m->type, SIP_REPLY);
	ck_assert_int_eq(m->status, 180);
	STR_IS(m->reason, "Ringing");
	ck_assert_uint_eq(via_count(m), 3);
	sip_via_t *v1 = sip_msg_via1(m), *v2 = sip_msg_via2(m), *v3 = v2->next;
	STR_IS(v1->host, "198.51.100.20");
	STR_IS(v2->host, "198.51.100.10");
	STR_IS(v3->host, "10.1.3.27");
	ck_assert_uint_eq(v3->port, 5060);
	ck_assert_ptr_eq(v2->hdr, v3->hdr);
	ck_assert_ptr_ne(v1->hdr, v2->hdr);
	STR_IS(v3->received, "203.0.113.45");
	ck_assert(v3->has_rport);
	STR_IS(v3->rport_val, "41936");
	STR_IS(v3->branch, "z9hG4bK.Hq7d3lWk9");
	STR_IS(v3->params_str, "received=203.0.113.45;rport=41936;branch=z9hG4bK.Hq7d3lWk9");
	STR_IS(v2->raw, "SIP/2.0/UDP 198.51.100.10;branch=z9hG4bKc5e1.2d7e8a9b1f3c6e4d5a0b7c8e9f1a2b3c.0");
	ck_assert(!v1->has_rport);
	sip_nameaddr_t *rr = sip_msg_record_routes(m);
	ck_assert(rr && rr->next && !rr->next->next);
	STR_IS(rr->next->uri.host, "198.51.100.10");
	STR_IS(param(rr->next->uri.params, "nat")->value, "yes");
	STR_IS(sip_msg_cseq(m)->method, "INVITE");
	ck_assert_int_eq(sip_msg_cseq(m)->method_id, METH_INVITE);
	fx_free(&f);

	fx_load(&f, "real", "bye-route.sip");
	OK_BOTH(&f);
	sip_nameaddr_t *r = sip_msg_routes(&f.m);
	STR_IS(r->uri.host, "198.51.100.20");
	STR_IS(r->next->uri.host, "198.51.100.10");
	ck_assert_ptr_ne(r->hdr, r->next->hdr);
	STR_IS(sip_msg_to(&f.m)->display, "\"Alice Liddell\"");
	fx_free(&f);
}
END_TEST

START_TEST(acc_folded)
{
	fx_t f;
	fx_load(&f, "real", "options-folded-headers.sip");
	OK_BOTH(&f);
	sip_msg_t *m = &f.m;
	sip_via_t *v = sip_msg_via1(m);
	STR_IS(v->host, "192.0.2.9");
	ck_assert_uint_eq(v->port, 5060);
	STR_IS(v->branch, "z9hG4bKk8s3n1x0p");
	ck_assert(v->has_rport);
	ck_assert_ptr_null(v->rport_val.s);
	ck_assert_ptr_null(v->next);
	sip_nameaddr_t *fr = sip_msg_from(m);
	STR_IS(fr->display, "\"Monitoring Probe\"");
	STR_IS(fr->uri.host, "monitor.example.net");
	STR_IS(fr->tag, "mon-20931");
	STR_IS(sip_hdr_unfold(m, sip_msg_hdr_find(m, STR_LIT("subject"))), "periodic health check of the edge proxy");
	STR_IS(sip_hdr_unfold(m, sip_msg_hdr_find(m, STR_LIT("Allow"))), "INVITE, ACK, CANCEL, BYE, OPTIONS");
	sip_param_t *allow = sip_msg_option_tags(m, HDR_ALLOW);
	unsigned n = 0;
	for (; allow; allow = allow->next)
		n++;
	ck_assert_uint_eq(n, 5);
	/* an unfolded-free body is returned as is, without a copy */
	sip_hdr_t *ua = sip_msg_hdr_find(m, STR_LIT("User-Agent"));
	ck_assert_ptr_eq(sip_hdr_unfold(m, ua).s, ua->body.s);
	fx_free(&f);
}
END_TEST

START_TEST(acc_compact)
{
	fx_t f;
	fx_load(&f, "real", "notify-compact-headers.sip");
	OK_BOTH(&f);
	sip_msg_t *m = &f.m;
	static const struct {
		const char *name;
		sip_hdr_type_t t;
	} map[] = {
		{"v", HDR_VIA},        {"f", HDR_FROM},          {"t", HDR_TO},           {"i", HDR_CALLID},
		{"m", HDR_CONTACT},    {"o", HDR_EVENT},         {"u", HDR_ALLOW_EVENTS}, {"c", HDR_CONTENT_TYPE},
		{"l", HDR_CONTENT_LENGTH},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		sip_hdr_t *h = m->first[map[i].t];
		ck_assert_msg(h != NULL, "no header of type %s", sip_hdr_name(map[i].t));
		ck_assert_msg(h->name.len == 1 && h->name.s[0] == map[i].name[0], "%s written as %.*s",
			      map[i].name, STR_FMT(h->name));
		ck_assert_ptr_eq(sip_msg_hdr_find(m, str_cstr(sip_hdr_name(map[i].t))), h);
		ck_assert_ptr_eq(sip_msg_hdr_find(m, str_cstr(map[i].name)), h);
	}
	STR_IS(sip_msg_hdr_find(m, STR_LIT("EVENT"))->body, "presence");
	STR_IS(sip_msg_hdr_find(m, STR_LIT("Allow-Events"))->body, "presence, dialog");
	ck_assert_int_eq(m->content_length, 321);
	ck_assert_uint_eq(m->body.len, 321);
	STR_IS(sip_msg_to(m)->tag, "d1v8q3");
	ck_assert_int_eq(sip_msg_via1(m)->proto, SIP_PROTO_TCP);
	ck_assert_int_eq(sip_uri_proto(sip_msg_ruri(m)), SIP_PROTO_TCP);
	ck_assert_uint_eq(sip_msg_ruri(m)->port, 50311);
	STR_IS(sip_msg_hdr_find(m, STR_LIT("subscription-state"))->body, "active;expires=3420");
	fx_free(&f);
}
END_TEST

START_TEST(acc_outbound)
{
	fx_t f;
	fx_load(&f, "real", "register-ws-outbound.sip");
	OK_BOTH(&f);
	sip_msg_t *m = &f.m;
	sip_contacts_t *cs = sip_msg_contacts(m);
	ck_assert(cs && !cs->star && cs->count == 1);
	sip_nameaddr_t *c = cs->first;
	STR_IS(c->expires_str, "600");
	STR_IS(c->reg_id, "1");
	STR_IS(c->instance, "<urn:uuid:5d3c1a8e-0b7f-4e29-9a6d-2c4f8e1b7a03>");
	STR_IS(param(c->params, "+sip.instance")->value, "\"<urn:uuid:5d3c1a8e-0b7f-4e29-9a6d-2c4f8e1b7a03>\"");
	ck_assert_ptr_null(c->q_str.s);
	ck_assert_int_eq(sip_uri_proto(&c->uri), SIP_PROTO_WS);
	ck_assert_ptr_nonnull(param(c->uri.params, "ob"));
	STR_IS(c->uri.host, "q8v2lz1m0r6c.invalid");
	sip_via_t *v = sip_msg_via1(m);
	ck_assert_int_eq(v->proto, SIP_PROTO_WSS);
	STR_IS(v->transport, "WSS");
	sip_param_t *sup = sip_msg_option_tags(m, HDR_SUPPORTED);
	STR_IS(sup->name, "path");
	STR_IS(sup->next->name, "gruu");
	STR_IS(sup->next->next->name, "outbound");
	ck_assert_ptr_null(sup->next->next->next);
	ck_assert_ptr_null(sip_msg_option_tags(m, HDR_REQUIRE));
	fx_free(&f);
}
END_TEST

/* ---------------------------------------------------------------- built messages */

#define HDRS_OK "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK77\r\n" \
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n" \
		"Call-ID: c1@example.com\r\nMax-Forwards: 70\r\n"

START_TEST(contact_star_and_q)
{
	fx_t f;
	FX_TEXT(&f, "REGISTER sip:example.com SIP/2.0\r\n" HDRS_OK "CSeq: 2 REGISTER\r\nContact: *\r\n"
		    "Expires: 0\r\nl: 0\r\n\r\n", SIP_PARSE_DATAGRAM);
	OK_BOTH(&f);
	sip_contacts_t *c = sip_msg_contacts(&f.m);
	ck_assert(c && c->star && !c->first && c->count == 0);
	ck_assert_int_eq(sip_msg_expires(&f.m), 0);
	fx_free(&f);

	FX_TEXT(&f, "REGISTER sip:example.com SIP/2.0\r\n" HDRS_OK "CSeq: 2 REGISTER\r\nContact: *\r\n"
		    "m: <sip:a@192.0.2.1>\r\nl: 0\r\n\r\n", SIP_PARSE_DATAGRAM);
	ck_assert_int_eq(f.rc, SIP_OK);
	ck_assert_ptr_null(sip_msg_contacts(&f.m));
	ck_assert_int_eq(sip_msg_validate(&f.m), SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 400);
	fx_free(&f);

	FX_TEXT(&f, "REGISTER sip:example.com SIP/2.0\r\n" HDRS_OK "CSeq: 2 REGISTER\r\n"
		    "Contact: \"A, B\" <sip:a@192.0.2.1>;q=0.7;expires=60, sip:b@192.0.2.2;q=1.0\r\n"
		    "Contact: <sip:c@192.0.2.3>\r\nl: 0\r\n\r\n", SIP_PARSE_DATAGRAM);
	OK_BOTH(&f);
	c = sip_msg_contacts(&f.m);
	ck_assert_uint_eq(c->count, 3);
	STR_IS(c->first->display, "\"A, B\"");
	STR_IS(c->first->q_str, "0.7");
	STR_IS(c->first->expires_str, "60");
	STR_IS(c->first->next->q_str, "1.0");
	STR_IS(c->first->next->uri.host, "192.0.2.2");
	STR_IS(c->first->next->next->uri.user, "c");
	ck_assert_ptr_ne(c->first->hdr, c->first->next->next->hdr);
	fx_free(&f);
}
END_TEST

START_TEST(uri_cases)
{
	arena_t a;
	arena_init(&a, 0);
	sip_uri_t u;
	sip_error_t e;

	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("sips:alice@example.com"), &u, &e), SIP_OK);
	ck_assert_int_eq(u.scheme, URI_SIPS);
	ck_assert_uint_eq(u.port, 0);
	ck_assert_uint_eq(sip_uri_port(&u), 5061);
	ck_assert_int_eq(sip_uri_proto(&u), SIP_PROTO_NONE);

	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("sip:bob@host.example.com;transport=TLS"), &u, &e), SIP_OK);
	STR_IS(u.transport, "TLS");
	ck_assert_int_eq(sip_uri_proto(&u), SIP_PROTO_TLS);
	ck_assert_uint_eq(sip_uri_port(&u), 5061);
	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("sip:bob@host;transport=tcp"), &u, &e), SIP_OK);
	ck_assert_uint_eq(sip_uri_port(&u), 5060);
	ck_assert_int_eq(sip_uri_proto(&u), SIP_PROTO_TCP);

	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("sip:p1.example.com;lr;maddr=239.255.255.1;ttl=15"), &u, &e),
			 SIP_OK);
	ck_assert(u.lr);
	ck_assert_ptr_null(u.user.s);
	STR_IS(u.maddr, "239.255.255.1");
	STR_IS(u.params_str, "lr;maddr=239.255.255.1;ttl=15");
	STR_IS(param(u.params, "ttl")->value, "15");
	ck_assert_ptr_null(param(u.params, "lr")->value.s);

	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("sip:[2001:db8::1]:5070;transport=udp"), &u, &e), SIP_OK);
	STR_IS(u.host, "[2001:db8::1]");
	ck_assert(u.host_is_ipv6);
	ck_assert_uint_eq(u.port, 5070);
	ck_assert_uint_eq(sip_uri_port(&u), 5070);

	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("tel:+1-555-0100;phone-context=example.com"), &u, &e), SIP_OK);
	ck_assert_int_eq(u.scheme, URI_TEL);
	STR_IS(u.user, "+1-555-0100");
	STR_IS(param(u.params, "phone-context")->value, "example.com");
	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("tel:+1-555"), &u, &e), SIP_OK);
	STR_IS(u.user, "+1-555");

	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("sip:alice:secret@example.com:5080"), &u, &e), SIP_OK);
	STR_IS(u.user, "alice");
	STR_IS(u.password, "secret");
	ck_assert_uint_eq(u.port, 5080);

	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("sip:a@example.com;x=1?subject=hi&priority=urgent"), &u, &e),
			 SIP_OK);
	STR_IS(u.headers, "subject=hi&priority=urgent");
	STR_IS(u.params_str, "x=1");
	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("sip:192.0.2.1;lr;ctx=YWJj==;gr=urn:uuid:1-2"), &u, &e), SIP_OK);
	STR_IS(param(u.params, "ctx")->value, "YWJj==");
	STR_IS(param(u.params, "gr")->value, "urn:uuid:1-2");
	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("SIP:A@EXAMPLE.COM"), &u, &e), SIP_OK);
	ck_assert_int_eq(u.scheme, URI_SIP);

	ck_assert_int_eq(sip_uri_parse(&a, STR_LIT("urn:service:sos"), &u, &e), SIP_OK);
	ck_assert_int_eq(u.scheme, URI_OTHER);
	STR_IS(u.scheme_str, "urn");

	static const char *const bad[] = {
		"",           "sip:",          "sip:@example.com", "sip:a@b:99999",    "sip:a@b:",
		"<sip:a@b>",  "sip:a b@c",     "sip:2001:db8::10", "sip:a@[2001:db8::1", "sip:a@[zz::1]",
		"sip:a@b>",   "1sip:a@b",      "tel:",             "x:",               "sip:a@b;=x",
		"sip:a\"@b", "sip:a@b c",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e.reason = NULL;
		ck_assert_msg(sip_uri_parse(&a, str_cstr(bad[i]), &u, &e) == SIP_E_PARSE, "accepted '%s'", bad[i]);
		ck_assert_msg(e.status == 400 && e.reason, "no error for '%s'", bad[i]);
	}

	STR_IS(sip_unescape(&a, STR_LIT("%41%4")), "A%4");
	STR_IS(sip_unescape(&a, STR_LIT("%zz%%41")), "%zz%A");
	str_t z = sip_unescape(&a, STR_LIT("a%00b"));
	ck_assert_uint_eq(z.len, 3);
	ck_assert_int_eq(z.s[1], '\0');
	arena_free(&a);
}
END_TEST

START_TEST(method_ids)
{
	static const struct {
		const char *name;
		sip_method_t id;
	} m[] = {
		{"INVITE", METH_INVITE},     {"ACK", METH_ACK},         {"BYE", METH_BYE},
		{"CANCEL", METH_CANCEL},     {"REGISTER", METH_REGISTER}, {"OPTIONS", METH_OPTIONS},
		{"SUBSCRIBE", METH_SUBSCRIBE}, {"NOTIFY", METH_NOTIFY},   {"PUBLISH", METH_PUBLISH},
		{"REFER", METH_REFER},       {"INFO", METH_INFO},       {"UPDATE", METH_UPDATE},
		{"PRACK", METH_PRACK},       {"MESSAGE", METH_MESSAGE}, {"KDMQ", METH_KDMQ},
		{"GET", METH_GET},           {"POST", METH_POST},       {"PUT", METH_PUT},
		{"DELETE", METH_DELETE},
	};
	unsigned seen = 0;
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		sip_method_t id = sip_method_id(str_cstr(m[i].name));
		ck_assert_msg(id == m[i].id, "%s -> %u", m[i].name, (unsigned)id);
		ck_assert_msg(id && (id & (id - 1)) == 0, "%s is not one bit", m[i].name);
		ck_assert_msg(!(seen & id), "%s shares a bit", m[i].name);
		seen |= id;
	}
	ck_assert_int_eq(sip_method_id(STR_LIT("invite")), METH_OTHER);
	ck_assert_int_eq(sip_method_id(STR_LIT("INVITEX")), METH_OTHER);
	ck_assert_int_eq(sip_method_id(STR_LIT("RE%47IST%45R")), METH_OTHER);
	ck_assert_int_eq(sip_method_id(STR_NULL), METH_OTHER);
	unsigned set = METH_INVITE | METH_ACK | METH_BYE;
	ck_assert(set & sip_method_id(STR_LIT("ACK")));
	ck_assert(!(set & sip_method_id(STR_LIT("CANCEL"))));

	ck_assert_int_eq(sip_hdr_type(STR_LIT("CALL-id")), HDR_CALLID);
	ck_assert_int_eq(sip_hdr_type(STR_LIT("k")), HDR_SUPPORTED);
	ck_assert_int_eq(sip_hdr_type(STR_LIT("X")), HDR_SESSION_EXPIRES);
	ck_assert_int_eq(sip_hdr_type(STR_LIT("r")), HDR_REFER_TO);
	ck_assert_int_eq(sip_hdr_type(STR_LIT("Call\rID")), HDR_OTHER);
	ck_assert_int_eq(sip_hdr_type(STR_LIT("g")), HDR_OTHER);
	ck_assert_int_eq(sip_hdr_type(STR_LIT("C%6Fntact")), HDR_OTHER);
	for (int t = HDR_OTHER + 1; t < HDR__COUNT; t++)
		ck_assert_int_eq(sip_hdr_type(str_cstr(sip_hdr_name((sip_hdr_type_t)t))), t);
	ck_assert_int_eq(sip_proto_from_name(STR_LIT("SCTP")), SIP_PROTO_SCTP);
	ck_assert_int_eq(sip_proto_from_name(STR_LIT("UNKNOWN")), SIP_PROTO_OTHER);
	ck_assert_str_eq(sip_proto_name(SIP_PROTO_WSS), "wss");
}
END_TEST

static const char stream_msg[] = "OPTIONS sip:b@example.com SIP/2.0\r\n" HDRS_OK
				 "CSeq: 5 OPTIONS\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";

START_TEST(stream_framing)
{
	size_t n = sizeof(stream_msg) - 1;
	char *two = malloc(2 * n);
	memcpy(two, stream_msg, n);
	memcpy(two + n, stream_msg, n);
	ck_assert_int_eq(sip_frame_stream(two, 2 * n, 65536), (long)n);
	ck_assert_int_eq(sip_frame_stream(two + n, n, 65536), (long)n);
	for (size_t k = 0; k < n; k++) {
		char *p = malloc(k ? k : 1);
		memcpy(p, stream_msg, k);
		ck_assert_msg(sip_frame_stream(p, k, 65536) == SIP_E_INCOMPLETE, "prefix %zu", k);
		sip_msg_t m;
		arena_t a;
		arena_init(&a, 0);
		ck_assert_msg(sip_parse_msg(&m, p, k, &a, SIP_PARSE_STREAM) == SIP_E_INCOMPLETE, "parse prefix %zu: %s",
			      k, m.err.reason);
		arena_free(&a);
		free(p);
	}
	/* header block over the limit, and a body over the limit */
	ck_assert_int_eq(sip_frame_stream(two, 2 * n, 64), SIP_E_PARSE);
	ck_assert_int_eq(sip_frame_stream(two, 2 * n, n - 1), SIP_E_PARSE);
	ck_assert_int_eq(sip_frame_stream(two, 20, 16), SIP_E_PARSE);
	free(two);

	static const char nocl[] = "OPTIONS sip:b@example.com SIP/2.0\r\nCall-ID: x\r\n\r\n";
	ck_assert_int_eq(sip_frame_stream(nocl, sizeof(nocl) - 1, 65536), SIP_E_PARSE);
	static const char compact[] = "SIP/2.0 200 OK\r\nl :\r\n 2\r\n\r\nokX";
	ck_assert_int_eq(sip_frame_stream(compact, sizeof(compact) - 1, 65536), (long)sizeof(compact) - 2);
	static const char dup[] = "SIP/2.0 200 OK\r\nl: 2\r\nContent-Length: 2\r\n\r\nok";
	ck_assert_int_eq(sip_frame_stream(dup, sizeof(dup) - 1, 65536), SIP_E_PARSE);
	static const char neg[] = "SIP/2.0 200 OK\r\nContent-Length: -2\r\n\r\nok";
	ck_assert_int_eq(sip_frame_stream(neg, sizeof(neg) - 1, 65536), SIP_E_PARSE);
	static const char huge[] = "SIP/2.0 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n";
	ck_assert_int_eq(sip_frame_stream(huge, sizeof(huge) - 1, 65536), SIP_E_PARSE);
	static const char lf[] = "SIP/2.0 200 OK\nContent-Length: 1\n\nx";
	ck_assert_int_eq(sip_frame_stream(lf, sizeof(lf) - 1, 65536), (long)sizeof(lf) - 1);

	ck_assert_uint_eq(sip_skip_keepalive("\r\n\r\nOPTIONS", 11), 4);
	ck_assert_uint_eq(sip_skip_keepalive("\r\n", 2), 2);
	ck_assert_uint_eq(sip_skip_keepalive("OPTIONS", 7), 0);
	ck_assert_uint_eq(sip_skip_keepalive("", 0), 0);
}
END_TEST

/* Appends to a growing buffer (tests only). */
typedef struct {
	char *s;
	size_t len, cap;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->s = realloc(b->s, b->cap);
		ck_assert_ptr_nonnull(b->s);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
}

static void sb_cstr(sbuf_t *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

START_TEST(limits)
{
	fx_t f;
	sbuf_t b = {0};
	char line[128];

	/* 1000 Via header lines */
	sb_cstr(&b, "OPTIONS sip:b@example.com SIP/2.0\r\n");
	for (int i = 0; i < 1000; i++) {
		snprintf(line, sizeof(line), "Via: SIP/2.0/UDP h%d.example.com;branch=z9hG4bK%d\r\n", i, i);
		sb_cstr(&b, line);
	}
	sb_cstr(&b, "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: v1000\r\n"
		    "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
	fx_text(&f, b.s, b.len, SIP_PARSE_DATAGRAM);
	OK_BOTH(&f);
	ck_assert_uint_eq(via_count(&f.m), 1000);
	STR_IS(sip_msg_hdr_find_idx(&f.m, STR_LIT("Via"), -1)->body, "SIP/2.0/UDP h999.example.com;branch=z9hG4bK999");
	STR_IS(sip_msg_hdr_find_idx(&f.m, STR_LIT("Via"), 1)->body, "SIP/2.0/UDP h1.example.com;branch=z9hG4bK1");
	ck_assert_ptr_null(sip_msg_hdr_find_idx(&f.m, STR_LIT("Via"), 1000));
	ck_assert_ptr_null(sip_msg_hdr_find_idx(&f.m, STR_LIT("Via"), -1001));
	fx_free(&f);

	/* 1000 via-parms on one line */
	b.len = 0;
	sb_cstr(&b, "OPTIONS sip:b@example.com SIP/2.0\r\nVia: ");
	for (int i = 0; i < 1000; i++) {
		snprintf(line, sizeof(line), "%sSIP/2.0/TCP [2001:db8::%x]:%d;rport", i ? ", " : "", i, 1000 + i);
		sb_cstr(&b, line);
	}
	sb_cstr(&b, "\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: v1000\r\n"
		    "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
	fx_text(&f, b.s, b.len, SIP_PARSE_DATAGRAM);
	OK_BOTH(&f);
	ck_assert_uint_eq(via_count(&f.m), 1000);
	fx_free(&f);

	/* more header lines than SIP_MAX_HEADERS */
	b.len = 0;
	sb_cstr(&b, "OPTIONS sip:b@example.com SIP/2.0\r\n" HDRS_OK "CSeq: 1 OPTIONS\r\n");
	for (int i = 0; i < SIP_MAX_HEADERS; i++)
		sb_cstr(&b, "X-Filler: x\r\n");
	sb_cstr(&b, "\r\n");
	fx_text(&f, b.s, b.len, SIP_PARSE_DATAGRAM);
	ck_assert_int_eq(f.rc, SIP_E_TOOBIG);
	ck_assert_int_eq(f.m.err.status, 400);
	ck_assert_uint_eq(f.m.nhdrs, SIP_MAX_HEADERS);
	fx_free(&f);

	/* a 10 KB user part */
	b.len = 0;
	sb_cstr(&b, "INVITE sip:");
	for (int i = 0; i < 10240; i++)
		sb_add(&b, "u", 1);
	sb_cstr(&b, "@example.com SIP/2.0\r\n" HDRS_OK "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
	fx_text(&f, b.s, b.len, SIP_PARSE_DATAGRAM);
	OK_BOTH(&f);
	ck_assert_uint_eq(sip_msg_ruri(&f.m)->user.len, 10240);
	STR_IS(sip_msg_ruri(&f.m)->host, "example.com");
	fx_free(&f);
	free(b.s);
}
END_TEST

START_TEST(hostile_input)
{
	fx_t f;
	ck_assert_int_eq(fx_text(&f, "", 0, SIP_PARSE_DATAGRAM), SIP_E_PARSE);
	ck_assert_int_eq(sip_msg_validate(&f.m), SIP_E_PARSE);
	fx_free(&f);
	ck_assert_int_eq(fx_text(&f, "", 0, SIP_PARSE_STREAM), SIP_E_INCOMPLETE);
	fx_free(&f);
	ck_assert_int_eq(FX_TEXT(&f, "\r\n\r\n", SIP_PARSE_DATAGRAM), SIP_E_PARSE);
	fx_free(&f);
	ck_assert_int_eq(FX_TEXT(&f, "INVITE sip:a@b\r\nVia: x\r\n\r\n", SIP_PARSE_DATAGRAM), SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 400);
	fx_free(&f);
	ck_assert_int_eq(FX_TEXT(&f, "INVITE sip:a@b HTTP/1.1\r\n\r\n", SIP_PARSE_DATAGRAM), SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 400);
	fx_free(&f);
	ck_assert_int_eq(FX_TEXT(&f, "SIP/2.0 200\r\n", SIP_PARSE_DATAGRAM), SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 0);
	fx_free(&f);
	ck_assert_int_eq(FX_TEXT(&f, "SIP/2.0 200\r\n\r\n", SIP_PARSE_DATAGRAM), SIP_OK);
	ck_assert_int_eq(f.m.status, 200);
	ck_assert_int_eq(sip_msg_validate(&f.m), SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 0);
	fx_free(&f);
	ck_assert_int_eq(FX_TEXT(&f, "SIP/2.0 99 Low\r\n\r\n", SIP_PARSE_DATAGRAM), SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 0);
	fx_free(&f);
	ck_assert_int_eq(FX_TEXT(&f, "SIP/3.0 200 OK\r\n\r\n", SIP_PARSE_DATAGRAM), SIP_E_PARSE);
	ck_assert_int_eq(f.m.err.status, 0);
	fx_free(&f);
	ck_assert_int_eq(FX_TEXT(&f, "OPTIONS sip:a@b SIP/2.0\r\nVia SIP/2.0/UDP h\r\n\r\n", SIP_PARSE_DATAGRAM),
			 SIP_E_PARSE);
	STR_IS(str_cstr(f.m.err.reason), "Malformed header");
	fx_free(&f);

	/* every prefix of a real message: no crash, never success unless complete */
	fx_t real;
	fx_load(&real, "real", "invite-sdp-offer.sip");
	OK_BOTH(&real);
	for (size_t k = 0; k < real.len; k++) {
		fx_text(&f, real.buf, k, SIP_PARSE_DATAGRAM);
		if (f.rc == SIP_OK)
			ck_assert_msg(sip_msg_validate(&f.m) != SIP_OK, "prefix %zu of %zu validates", k, real.len);
		fx_free(&f);
	}
	fx_free(&real);

	/* pseudo-random bytes and mutations of a valid message */
	uint32_t seed = 12345;
	char buf[600];
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(round % 599) + 1;
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (char)(seed >> 16);
		}
		if (round & 1) {
			size_t m = sizeof(stream_msg) - 1 < n ? sizeof(stream_msg) - 1 : n;
			memcpy(buf, stream_msg, m);
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 8) % m] = (char)(seed >> 20);
		}
		fx_text(&f, buf, n, round & 2 ? SIP_PARSE_STREAM : SIP_PARSE_DATAGRAM);
		sip_msg_validate(&f.m);
		sip_msg_contacts(&f.m);
		sip_msg_routes(&f.m);
		sip_msg_via2(&f.m);
		sip_frame_stream(f.buf, f.len, 1024);
		fx_free(&f);
	}
}
END_TEST

START_TEST(lookup)
{
	fx_t f;
	FX_TEXT(&f, "OPTIONS sip:b@example.com SIP/2.0\r\n" HDRS_OK "CSeq: 1 OPTIONS\r\n"
		    "X-A: 1\r\nx-a  :  2\r\nX-B: 3\r\nX-a:\r\n\t4\r\nX-E:\r\nX-F: a \r\n \r\nX-G:\t\n"
		    "Content-Length: 0\r\n\r\n", SIP_PARSE_DATAGRAM);
	OK_BOTH(&f);
	ck_assert_uint_eq(sip_msg_hdr_find(&f.m, STR_LIT("X-E"))->body.len, 0);
	STR_IS(sip_msg_hdr_find(&f.m, STR_LIT("X-F"))->body, "a");
	STR_IS(sip_msg_hdr_find(&f.m, STR_LIT("X-F"))->raw, "X-F: a \r\n \r\n");
	ck_assert_uint_eq(sip_msg_hdr_find(&f.m, STR_LIT("X-G"))->body.len, 0);
	ck_assert_uint_eq(sip_msg_hdr_count(&f.m, STR_LIT("x-A")), 3);
	STR_IS(sip_msg_hdr_find(&f.m, STR_LIT("X-A"))->body, "1");
	STR_IS(sip_msg_hdr_find_idx(&f.m, STR_LIT("X-A"), 1)->body, "2");
	STR_IS(sip_msg_hdr_find_idx(&f.m, STR_LIT("X-A"), -1)->body, "4");
	STR_IS(sip_msg_hdr_find_idx(&f.m, STR_LIT("X-A"), -3)->body, "1");
	ck_assert_ptr_null(sip_msg_hdr_find_idx(&f.m, STR_LIT("X-A"), -4));
	ck_assert_ptr_null(sip_msg_hdr_find(&f.m, STR_LIT("X-C")));
	sip_hdr_t *h = sip_msg_hdr_find(&f.m, STR_LIT("x-b"));
	STR_IS(h->raw, "X-B: 3\r\n");
	STR_IS(h->name, "X-B");
	ck_assert_uint_eq(sip_msg_hdr_count(&f.m, STR_LIT("Max-Forwards")), 1);
	ck_assert_int_eq(sip_msg_max_forwards(&f.m), 70);
	ck_assert_int_eq(sip_msg_expires(&f.m), -1);
	STR_IS(f.m.headers_block, HDRS_OK "CSeq: 1 OPTIONS\r\nX-A: 1\r\nx-a  :  2\r\nX-B: 3\r\nX-a:\r\n\t4\r\n"
				  "X-E:\r\nX-F: a \r\n \r\nX-G:\t\nContent-Length: 0\r\n");
	fx_free(&f);
}
END_TEST

static Suite *parser_suite(void)
{
	Suite *s = suite_create("parser");
	TCase *tc = tcase_create("torture");
	tcase_add_test(tc, torture_all_files_indexed);
	tcase_add_test(tc, verdict_text);
	tcase_add_loop_test(tc, torture_row, 0, nrows > 0 ? nrows : 1);
	suite_add_tcase(s, tc);

	tc = tcase_create("real");
	tcase_add_test(tc, real_all);
	suite_add_tcase(s, tc);

	tc = tcase_create("accessors");
	tcase_add_test(tc, acc_wsinv);
	tcase_add_test(tc, acc_esc01);
	tcase_add_test(tc, acc_semiuri);
	tcase_add_test(tc, acc_longreq);
	tcase_add_test(tc, acc_ipv6_ports);
	tcase_add_test(tc, acc_received);
	tcase_add_test(tc, acc_framing);
	tcase_add_test(tc, acc_errors_keep_index);
	tcase_add_test(tc, acc_nul);
	tcase_add_test(tc, acc_unknown_schemes);
	tcase_add_test(tc, acc_digest);
	tcase_add_test(tc, acc_multi_via);
	tcase_add_test(tc, acc_folded);
	tcase_add_test(tc, acc_compact);
	tcase_add_test(tc, acc_outbound);
	tcase_add_test(tc, contact_star_and_q);
	tcase_add_test(tc, lookup);
	suite_add_tcase(s, tc);

	tc = tcase_create("units");
	tcase_add_test(tc, uri_cases);
	tcase_add_test(tc, method_ids);
	tcase_add_test(tc, stream_framing);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, hostile_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	load_index();
	SRunner *sr = srunner_create(parser_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
