// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * The configuration loader: the shipped configurations load with the values
 * they say, and each kind of mistake is refused with a message naming the
 * file, the key and what was expected. Configurations are written to a fresh
 * directory under /tmp, with a route script beside them.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#include "core/cfg/cfg.h"
#include "core/lib/log.h"

#define LISTEN_EXPECT "expected \"proto:address:port [advertise host:port]\""

/* Small on purpose, so that every message built from them fits in 512 bytes. */
static char tmpdir[32];   /* as created */
static char realdir[128]; /* resolved, as the loader reports paths */
static char conf[160];    /* the last configuration written */
static char err[1024];

static void write_file(const char *path, const char *body)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(body, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
	char path[512];

	char *r;

	strcpy(tmpdir, "/tmp/ksrd-cfg-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	r = realpath(tmpdir, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_lt(strlen(r), sizeof realdir);
	strcpy(realdir, r);
	free(r);
	snprintf(path, sizeof path, "%s/route.lua", tmpdir);
	write_file(path, "-- a route script\n");
	conf[0] = '\0';
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	ck_assert_int_eq(nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

/* Writes a configuration file (mkstemp) holding exactly body. */
static const char *write_conf_raw(const char *body)
{
	int fd;

	snprintf(conf, sizeof conf, "%s/ksrd-XXXXXX", tmpdir);
	fd = mkstemp(conf);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	return conf;
}

/* Same, with the route script written beside it, so that only body is tested. */
static const char *write_conf(const char *body)
{
	char full[8192];

	snprintf(full, sizeof full, "%s\nscript = \"route.lua\"\n", body);
	return write_conf_raw(full);
}

static void load_ok(const char *body, ksr_cfg_t *c)
{
	int rc = cfg_load(write_conf(body), c, err, sizeof err);

	ck_assert_msg(rc == 0, "cfg_load failed (%d): %s", rc, err);
}

/* Loading fails, writes a message, and leaves *out as it was. */
static const char *load_fail_path(const char *path)
{
	ksr_cfg_t c, before;

	memset(&c, 0xa5, sizeof c);
	before = c;
	ck_assert_int_lt(cfg_load(path, &c, err, sizeof err), 0);
	ck_assert_msg(memcmp(&c, &before, sizeof c) == 0, "cfg_load changed *out on error");
	ck_assert_msg(err[0] != '\0', "no error message");
	return err;
}

static const char *load_fail(const char *body)
{
	return load_fail_path(write_conf(body));
}

#define ck_assert_contains(hay, needle) \
	ck_assert_msg(strstr((hay), (needle)) != NULL, "\"%s\" does not contain \"%s\"", (hay), (needle))

#define ck_assert_lacks(hay, needle) \
	ck_assert_msg(strstr((hay), (needle)) == NULL, "\"%s\" contains \"%s\"", (hay), (needle))

/* The message starts with the file and the key, and says what was expected. */
static void expect_error(const char *body, const char *key, const char *expected)
{
	char head[512];
	const char *e = load_fail(body);

	snprintf(head, sizeof head, "%s: %s: ", conf, key);
	ck_assert_msg(strncmp(e, head, strlen(head)) == 0, "\"%s\" does not start with \"%s\"", e, head);
	ck_assert_contains(e, expected);
}

static unsigned online_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

static uint16_t sa_port(const cfg_listen_t *l)
{
	if (l->addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
}

static void assert_listen(const cfg_listen_t *l, sip_proto_t proto, int family, const char *host,
			  uint16_t port)
{
	ck_assert_int_eq(l->proto, proto);
	ck_assert_int_eq(l->addr.ss_family, family);
	ck_assert_str_eq(l->host, host);
	ck_assert_uint_eq(l->port, port);
	ck_assert_uint_eq(sa_port(l), port);
	ck_assert_uint_eq(l->addrlen, family == AF_INET6 ? sizeof(struct sockaddr_in6)
							 : sizeof(struct sockaddr_in));
}

static char *real(const char *path)
{
	static char buf[PATH_MAX];
	ck_assert_msg(realpath(path, buf) != NULL, "%s: %s", path, strerror(errno));
	return buf;
}

/* ---------------------------------------------------------------- shipped files */

START_TEST(test_default_conf)
{
	ksr_cfg_t c;
	const char *path = KSR_SOURCE_DIR "/conf/ksrd.lua";
	int rc = cfg_load(path, &c, err, sizeof err);

	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_str_eq(c.file, path);
	ck_assert_uint_eq(c.nlisten, 2);
	assert_listen(&c.listen[0], SIP_PROTO_UDP, AF_INET, "0.0.0.0", 5060);
	assert_listen(&c.listen[1], SIP_PROTO_TCP, AF_INET, "0.0.0.0", 5060);
	ck_assert_str_eq(c.listen[0].spec, "udp:0.0.0.0:5060");
	ck_assert_uint_eq(c.workers, online_workers());
	ck_assert_str_eq(c.script, real(KSR_SOURCE_DIR "/lua/routes/registrar-proxy/route.lua"));
	ck_assert_int_eq(c.log.level, L_INFO);
	ck_assert(c.log.to_stderr);
	ck_assert_str_eq(c.log.prefix, "ksrd");
	ck_assert_str_eq(c.sl.server_header, "ksrd " KSR_VERSION);
	ck_assert_uint_eq(c.tcp.idle_timeout, 600);
	ck_assert_uint_eq(c.naliases, 0);
	cfg_free(&c);
}
END_TEST

START_TEST(test_example_ipv6_advertise)
{
	ksr_cfg_t c;
	int rc = cfg_load(KSR_SOURCE_DIR "/conf/examples/ipv6-advertise.lua", &c, err, sizeof err);

	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_uint_eq(c.nlisten, 4);
	assert_listen(&c.listen[0], SIP_PROTO_UDP, AF_INET, "10.0.0.5", 5060);
	ck_assert_str_eq(c.listen[0].adv_host, "203.0.113.10");
	ck_assert_uint_eq(c.listen[0].adv_port, 5060);
	assert_listen(&c.listen[2], SIP_PROTO_UDP, AF_INET6, "2001:db8::5", 5060);
	ck_assert_str_eq(c.listen[2].adv_host, "");
	ck_assert_uint_eq(c.listen[2].adv_port, 0);
	ck_assert_str_eq(c.listen[3].adv_host, "sip.example.com");
	ck_assert_uint_eq(c.naliases, 2);
	ck_assert_str_eq(c.aliases[1], "sip.example.com");
	ck_assert_int_eq(c.log.level, L_NOTICE);
	ck_assert(!c.log.to_stderr);
	cfg_free(&c);
}
END_TEST

START_TEST(test_example_tcp_tuned)
{
	ksr_cfg_t c;
	int rc = cfg_load(KSR_SOURCE_DIR "/conf/examples/tcp-tuned.lua", &c, err, sizeof err);

	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_uint_eq(c.nlisten, 2);
	ck_assert_int_eq(c.listen[0].proto, SIP_PROTO_TCP);
	ck_assert_uint_eq(c.workers, 8);
	ck_assert_uint_eq(c.tcp.idle_timeout, 300);
	ck_assert_uint_eq(c.tcp.max_connections, 50000);
	ck_assert_uint_eq(c.tcp.connect_timeout, 2000);
	ck_assert_uint_eq(c.tcp.max_message_size, 65536);
	ck_assert_uint_eq(c.udp.recv_batch, 64);
	ck_assert_int_eq(c.log.level, L_WARN);
	cfg_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- values */

START_TEST(test_defaults)
{
	ksr_cfg_t c;

	ck_assert_int_eq(cfg_defaults(&c, err, sizeof err), 0);
	ck_assert_ptr_null(c.file);
	ck_assert_uint_eq(c.nlisten, 2);
	assert_listen(&c.listen[0], SIP_PROTO_UDP, AF_INET, "0.0.0.0", 5060);
	assert_listen(&c.listen[1], SIP_PROTO_TCP, AF_INET, "0.0.0.0", 5060);
	ck_assert_uint_eq(((struct sockaddr_in *)&c.listen[0].addr)->sin_addr.s_addr, htonl(INADDR_ANY));
	ck_assert_uint_eq(c.workers, online_workers());
	ck_assert_str_eq(c.script, KSR_SOURCE_DIR "/lua/routes/default/route.lua");
	ck_assert_ptr_null(c.aliases);
	ck_assert_uint_eq(c.naliases, 0);
	ck_assert_int_eq(c.log.level, L_INFO);
	ck_assert_str_eq(c.log.prefix, "ksrd");
	ck_assert(c.log.to_stderr);
	ck_assert_str_eq(c.sl.server_header, "ksrd " KSR_VERSION);
	ck_assert_uint_eq(c.tcp.idle_timeout, 600);
	ck_assert_uint_eq(c.tcp.max_connections, 4096);
	ck_assert_uint_eq(c.tcp.max_message_size, 65536);
	ck_assert_uint_eq(c.tcp.connect_timeout, 5000);
	ck_assert_uint_eq(c.tcp.keepalive_pong, 1);
	ck_assert_uint_eq(c.udp.max_message_size, 65535);
	ck_assert_uint_eq(c.udp.recv_batch, 32);
	ck_assert_uint_eq(c.lua.time_budget_ms, 1000);
	ck_assert_uint_eq(c.lua.mem_budget_mb, 256);
	ck_assert_str_eq(c.rpc.socket, "/tmp/ksrd.sock");
	ck_assert_ptr_null(c.rpc.http);
	ck_assert(c.fwd.reply_unmatched);
	cfg_free(&c);
	ck_assert_ptr_null(c.listen); /* cfg_free leaves nothing to free twice */
	cfg_free(&c);
}
END_TEST

START_TEST(test_every_key)
{
	ksr_cfg_t c;
	char sock[512];

	load_ok("listen = { 'tcp:127.0.0.1:5070' }\n"
		"workers = 3\n"
		"aliases = { 'sip.example.com', '192.0.2.1', '[2001:db8::1]' }\n"
		"log = { level = 'dbg', prefix = 'edge', target = 'syslog' }\n"
		"sl = { server_header = 'Edge/2' }\n"
		"tcp = { idle_timeout = 30, max_connections = 10, max_message_size = 4096,\n"
		"        connect_timeout = 250, keepalive_pong = false }\n"
		"udp = { max_message_size = 1500, recv_batch = 1 }\n"
		"lua = { time_budget_ms = 50, mem_budget_mb = 64 }\n"
		"rpc = { socket = 'ctl.sock', http = '127.0.0.1:8080' }\n"
		"fwd = { reply_unmatched = false }\n",
		&c);
	ck_assert_uint_eq(c.nlisten, 1);
	assert_listen(&c.listen[0], SIP_PROTO_TCP, AF_INET, "127.0.0.1", 5070);
	ck_assert_uint_eq(c.workers, 3);
	ck_assert_uint_eq(c.naliases, 3);
	ck_assert_str_eq(c.aliases[0], "sip.example.com");
	ck_assert_str_eq(c.aliases[2], "[2001:db8::1]");
	ck_assert_int_eq(c.log.level, L_DBG);
	ck_assert_str_eq(c.log.prefix, "edge");
	ck_assert(!c.log.to_stderr);
	ck_assert_str_eq(c.sl.server_header, "Edge/2");
	ck_assert_uint_eq(c.tcp.idle_timeout, 30);
	ck_assert_uint_eq(c.tcp.max_connections, 10);
	ck_assert_uint_eq(c.tcp.max_message_size, 4096);
	ck_assert_uint_eq(c.tcp.connect_timeout, 250);
	ck_assert_uint_eq(c.tcp.keepalive_pong, 0);
	ck_assert_uint_eq(c.udp.max_message_size, 1500);
	ck_assert_uint_eq(c.udp.recv_batch, 1);
	ck_assert_uint_eq(c.lua.time_budget_ms, 50);
	ck_assert_uint_eq(c.lua.mem_budget_mb, 64);
	snprintf(sock, sizeof sock, "%s/ctl.sock", realdir);
	ck_assert_str_eq(c.rpc.socket, sock);
	ck_assert_str_eq(c.rpc.http, "127.0.0.1:8080");
	ck_assert(!c.fwd.reply_unmatched);
	cfg_free(&c);
}
END_TEST

START_TEST(test_empty_conf_gives_defaults)
{
	ksr_cfg_t c;
	char script[512];

	load_ok("", &c);
	ck_assert_str_eq(c.file, conf);
	ck_assert_uint_eq(c.nlisten, 2);
	ck_assert_uint_eq(c.workers, online_workers());
	snprintf(script, sizeof script, "%s/route.lua", realdir);
	ck_assert_str_eq(c.script, script);
	ck_assert_uint_eq(c.udp.recv_batch, 32);
	cfg_free(&c);
}
END_TEST

START_TEST(test_sandbox_allows_computing)
{
	ksr_cfg_t c;

	load_ok("local base = 5060\n"
		"local l = {}\n"
		"for i, h in ipairs({ '10.0.0.1', '10.0.0.2' }) do\n"
		"  l[#l + 1] = string.format('udp:%s:%d', h, base + i)\n"
		"end\n"
		"listen = l\n"
		"workers = math.max(2, 3)\n"
		"log = { prefix = table.concat({ 'ksrd', tostring(7) }, '-'), level = ('INFO'):lower() }\n",
		&c);
	ck_assert_uint_eq(c.nlisten, 2);
	assert_listen(&c.listen[1], SIP_PROTO_UDP, AF_INET, "10.0.0.2", 5062);
	ck_assert_uint_eq(c.workers, 3);
	ck_assert_str_eq(c.log.prefix, "ksrd-7");
	ck_assert_int_eq(c.log.level, L_INFO);
	cfg_free(&c);
}
END_TEST

START_TEST(test_log_level_forms)
{
	static const struct {
		const char *value;
		int level;
	} cases[] = {
		{"'crit'", L_CRIT}, {"'error'", L_ERR}, {"'warning'", L_WARN}, {"'NOTICE'", L_NOTICE},
		{"'debug'", L_DBG}, {"0", L_CRIT},      {"5", L_DBG},          {"3", L_NOTICE},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ksr_cfg_t c;
		char body[128];
		snprintf(body, sizeof body, "log = { level = %s }", cases[i].value);
		load_ok(body, &c);
		ck_assert_msg(c.log.level == cases[i].level, "%s gave %d", cases[i].value, c.log.level);
		cfg_free(&c);
	}
}
END_TEST

START_TEST(test_server_header_off)
{
	ksr_cfg_t c;

	load_ok("sl = { server_header = false }", &c);
	ck_assert_ptr_null(c.sl.server_header);
	cfg_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- paths */

START_TEST(test_relative_script)
{
	ksr_cfg_t c;
	char dir[256], script[512], cwd[PATH_MAX];

	snprintf(dir, sizeof dir, "%s/routes", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(script, sizeof script, "%s/main.lua", dir);
	write_file(script, "-- route\n");
	write_conf_raw("script = 'routes/main.lua'\n");

	/* From another directory: relative to the file, not to the cwd. */
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_msg(cfg_load(conf, &c, err, sizeof err) == 0, "%s", err);
	snprintf(script, sizeof script, "%s/routes/main.lua", realdir);
	ck_assert_str_eq(c.script, script);
	cfg_free(&c);

	/* A configuration named relative to the cwd: its directory is the cwd. */
	ck_assert_int_eq(chdir(tmpdir), 0);
	ck_assert_msg(cfg_load(strrchr(conf, '/') + 1, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(c.script, script);
	cfg_free(&c);
	ck_assert_int_eq(chdir(cwd), 0);
}
END_TEST

START_TEST(test_absolute_script)
{
	ksr_cfg_t c;
	char body[512], script[256];

	snprintf(script, sizeof script, "%s/route.lua", realdir);
	snprintf(body, sizeof body, "script = '%s'\n", script);
	write_conf_raw(body);
	ck_assert_msg(cfg_load(conf, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(c.script, script);
	cfg_free(&c);
}
END_TEST

START_TEST(test_script_missing)
{
	char missing[512];
	const char *e;

	write_conf_raw("script = 'nope/route.lua'\n");
	e = load_fail_path(conf);
	snprintf(missing, sizeof missing, "%s: script: cannot read %s/nope/route.lua: ", conf, realdir);
	ck_assert_msg(strncmp(e, missing, strlen(missing)) == 0, "\"%s\" does not start with \"%s\"", e,
		      missing);
	ck_assert_contains(e, "No such file");
}
END_TEST

START_TEST(test_script_not_a_file)
{
	write_conf_raw("script = '.'\n");
	ck_assert_contains(load_fail_path(conf), "is not a regular file");
	write_conf_raw("script = ''\n");
	ck_assert_contains(load_fail_path(conf), "script: expected non-empty string (a path), got string \"\"");
	write_conf_raw("script = 42\n");
	ck_assert_contains(load_fail_path(conf), "script: expected string (path of the route script), got number 42");
}
END_TEST

START_TEST(test_missing_file)
{
	const char *e = load_fail_path("/nonexistent/ksrd.lua");

	ck_assert_str_eq(e, "/nonexistent/ksrd.lua: cannot open: No such file or directory");
}
END_TEST

/* ---------------------------------------------------------------- mistakes */

START_TEST(test_wrong_type_message)
{
	char want[512];
	const char *e = load_fail("tcp = { idle_timeout = \"ten\" }");

	snprintf(want, sizeof want, "%s: tcp.idle_timeout: expected integer >= 1, got string \"ten\"", conf);
	ck_assert_str_eq(e, want);
}
END_TEST

START_TEST(test_unknown_top_level)
{
	expect_error("wrokers = 2", "wrokers", "unknown key (did you mean workers?)");
	expect_error("frobnicate = 1", "frobnicate", "unknown key");
	ck_assert_lacks(err, "did you mean");
	/* A top-level key that belongs in a section. */
	expect_error("idle_timeout = 5", "idle_timeout", "did you mean tcp.idle_timeout?");
	/* Helpers must be local: a global function is a setting nobody knows. */
	expect_error("function helper() end", "helper", "unknown key");
	/* Several: the first in alphabetical order, whatever the hashing. */
	expect_error("zzz = 1 aaa = 2 mmm = 3", "aaa", "unknown key");
}
END_TEST

START_TEST(test_unknown_nested)
{
	expect_error("tcp = { idle_timeot = 5 }", "tcp.idle_timeot",
		     "unknown key (did you mean tcp.idle_timeout?)");
	expect_error("log = { level = 'info', colour = true }", "log.colour", "unknown key");
	expect_error("tcp = { 5 }", "tcp[1]", "unknown key");
	expect_error("tcp = { [true] = 5 }", "tcp[boolean]", "unknown key");
	expect_error("tcp = { ['idle\\ntimeout'] = 5 }", "tcp.idle?timeout", "unknown key");
	expect_error("tcp = { ['idle_timeout\\0x'] = 5 }", "tcp.idle_timeout?x", "unknown key");
	/* A known key name in the wrong section. */
	expect_error("udp = { idle_timeout = 5 }", "udp.idle_timeout", "did you mean tcp.idle_timeout?");
}
END_TEST

START_TEST(test_wrong_types)
{
	expect_error("workers = '4'", "workers", "expected integer 1..256, got string \"4\"");
	expect_error("tcp = 5", "tcp", "expected table, got number 5");
	expect_error("log = 'info'", "log", "expected table, got string \"info\"");
	expect_error("tcp = { keepalive_pong = 1 }", "tcp.keepalive_pong", "expected boolean, got number 1");
	expect_error("fwd = { reply_unmatched = 'yes' }", "fwd.reply_unmatched",
		     "expected boolean, got string \"yes\"");
	expect_error("log = { prefix = 5 }", "log.prefix", "expected string, got number 5");
	expect_error("log = { target = 'file' }", "log.target",
		     "expected \"stderr\" or \"syslog\", got string \"file\"");
	expect_error("sl = { server_header = true }", "sl.server_header",
		     "expected string without control characters, or false, got boolean true");
	expect_error("sl = { server_header = 'a\\r\\nX-Evil: 1' }", "sl.server_header",
		     "got string \"a\\x0d\\x0aX-Evil: 1\"");
	expect_error("rpc = { http = 'localhost:8080' }", "rpc.http",
		     "expected string \"ADDRESS:PORT\" with a numeric address");
	expect_error("rpc = { http = '127.0.0.1' }", "rpc.http", "missing :port");
	expect_error("workers = {}", "workers", "got table");
}
END_TEST

START_TEST(test_non_integral)
{
	expect_error("workers = 1.5", "workers", "expected integer 1..256, got number 1.5");
	expect_error("tcp = { idle_timeout = 0/0 }", "tcp.idle_timeout", "expected integer >= 1, got number");
	expect_error("tcp = { idle_timeout = math.huge }", "tcp.idle_timeout", "expected integer");
}
END_TEST

START_TEST(test_out_of_range)
{
	expect_error("workers = 0", "workers", "expected integer 1..256, got number 0");
	expect_error("workers = 257", "workers", "expected integer 1..256, got number 257");
	expect_error("workers = -1", "workers", "expected integer 1..256, got number -1");
	expect_error("udp = { recv_batch = 5000 }", "udp.recv_batch", "expected integer 1..64, got number 5000");
	expect_error("tcp = { idle_timeout = 0 }", "tcp.idle_timeout", "expected integer >= 1, got number 0");
	expect_error("tcp = { idle_timeout = 5e9 }", "tcp.idle_timeout",
		     "expected integer 1..4294967295, got number 5000000000");
	expect_error("udp = { max_message_size = 70000 }", "udp.max_message_size",
		     "expected integer 1024..65535, got number 70000");
}
END_TEST

START_TEST(test_bad_log_level)
{
	const char *expect =
		"expected log level (crit, err, warn, notice, info, dbg) or integer 0..5, got string \"loud\"";

	expect_error("log = { level = 'loud' }", "log.level", expect);
	expect_error("log = { level = 6 }", "log.level", "or integer 0..5, got number 6");
	expect_error("log = { level = 2.5 }", "log.level", "or integer 0..5, got number 2.5");
	expect_error("log = { level = true }", "log.level", "got boolean true");
}
END_TEST

START_TEST(test_bad_listen_entries)
{
	static const struct {
		const char *spec;
		const char *why;
	} cases[] = {
		{"sctp:1.2.3.4:5060", "sctp is not supported"},
		{"foo:1.2.3.4:5060", "proto must be udp or tcp"},
		{"tls:1.2.3.4:5061", "tls is not supported yet"},
		{"ws:1.2.3.4:80", "ws is not supported yet"},
		{"wss:1.2.3.4:443", "wss is not supported yet"},
		{"1.2.3.4:5060", "proto must be udp or tcp"},
		{"udp", "must be separated by ':'"},
		{"udp:1.2.3.999:5060", "bad IPv4 address"},
		{"udp:example.com:5060", "address must be IPv4, [IPv6] or *"},
		{"udp:1.2.3.4", "missing :port"},
		{"udp:1.2.3.4:", "missing port"},
		{"udp:1.2.3.4:0", "port must be 1..65535"},
		{"udp:1.2.3.4:70000", "port must be 1..65535"},
		{"udp:1.2.3.4:99999999999999999999", "port must be 1..65535"},
		{"udp:1.2.3.4:50a0", "port must be a number"},
		{"udp:::1:5060", "IPv6 address must be in brackets"},
		{"udp:2001:db8::1:5060", "IPv6 address must be in brackets"},
		{"udp:[::1:5060", "missing ']'"},
		{"udp:[::1]5060", "unexpected text after the address"},
		{"udp:[fe80::zz]:5060", "bad IPv6 address"},
		{"udp:[1.2.3.4]:5060", "bad IPv6 address"},
		{"udp:1.2.3.4:5060 advertise", "only \"advertise host[:port]\""},
		{"udp:1.2.3.4:5060 adv x", "only \"advertise host[:port]\""},
		{"udp:1.2.3.4:5060 advertise bad_host!", "host must be a name"},
		{"udp:1.2.3.4:5060 advertise a.example.com:0", "port must be 1..65535"},
		{"udp:1.2.3.4:5060 advertise a.example.com extra", "host must be a name"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char body[256], got[128];
		snprintf(body, sizeof body, "listen = { 'udp:0.0.0.0:5060', '%s' }", cases[i].spec);
		expect_error(body, "listen[2]", LISTEN_EXPECT);
		ck_assert_contains(err, cases[i].why);
		snprintf(got, sizeof got, ", got \"%s\"", cases[i].spec);
		ck_assert_contains(err, got);
	}
}
END_TEST

START_TEST(test_bad_listen_shapes)
{
	expect_error("listen = 'udp:1.2.3.4:5060'", "listen",
		     "expected array of \"proto:address:port [advertise host:port]\" strings, got string");
	expect_error("listen = {}", "listen", "got an empty table");
	expect_error("listen = { 5060 }", "listen[1]", "expected string \"proto:address:port");
	expect_error("listen = { 'udp:1.2.3.4:5060', x = 'tcp:1.2.3.4:5060' }", "listen",
		     "got a table with key string \"x\"");
	expect_error("listen = { 'udp:1.2.3.4:5060', nil, 'tcp:1.2.3.4:5060' }", "listen", "expected array");
	expect_error("listen = { 'udp:1.2.3.4:5060', 'tcp:1.2.3.4:5060', 'udp:1.2.3.4:5060' }", "listen[3]",
		     "binds the same socket as listen[1]");
}
END_TEST

START_TEST(test_bad_aliases)
{
	expect_error("aliases = 'sip.example.com'", "aliases", "expected array of host name strings");
	expect_error("aliases = { 'ok.example.com', 'bad host' }", "aliases[2]",
		     "expected a host name, IPv4 or [IPv6] address");
	expect_error("aliases = { 'sip.example.com:5060' }", "aliases[1]", "no :port expected");
	expect_error("aliases = { 42 }", "aliases[1]", "expected string (a host name), got number 42");
}
END_TEST

START_TEST(test_syntax_error)
{
	char where[512];
	const char *e = load_fail("workers = 2\nlog = { level = 'info' \ntcp = {}\n");

	snprintf(where, sizeof where, "%s:3:", conf);
	ck_assert_msg(strncmp(e, where, strlen(where)) == 0, "\"%s\" does not start with \"%s\"", e, where);
}
END_TEST

START_TEST(test_runtime_error)
{
	char where[512];
	const char *e = load_fail("workers = 2\nlocal x = nil + 1\n");

	snprintf(where, sizeof where, "%s:2:", conf);
	ck_assert_msg(strncmp(e, where, strlen(where)) == 0, "\"%s\" does not start with \"%s\"", e, where);
	ck_assert_contains(e, "arithmetic");

	e = load_fail("error('no listen for you')\n");
	snprintf(where, sizeof where, "%s:1: no listen for you", conf);
	ck_assert_str_eq(e, where);
}
END_TEST

START_TEST(test_sandbox_escape)
{
	char body[512], witness[256];

	/* Had os.exit run, this test would end with status 3. */
	ck_assert_contains(load_fail("os.exit(3)\n"), "'os'");

	snprintf(witness, sizeof witness, "%s/written", tmpdir);
	snprintf(body, sizeof body, "io.open('%s', 'w'):write('x')\n", witness);
	ck_assert_contains(load_fail(body), "'io'");
	ck_assert_int_ne(access(witness, F_OK), 0);

	static const char *const escapes[] = {
		"require('os')",
		"dofile('/etc/passwd')",
		"loadfile('/etc/passwd')",
		"loadstring('return 1')()",
		"load(function() return nil end)",
		"debug.getinfo(1)",
		"getfenv(1).x = 1",
		"setfenv(1, {})",
		"package.loaded.os.exit(3)",
		"jit.off()",
		"print('leak')",
		"_G.os.exit(3)",
		"rawset(_G, 'x', 1)",
		"collectgarbage()",
		"newproxy(true)",
		"getmetatable('').__index.x = 1",
		"module('x')",
	};
	for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
		const char *e = load_fail(escapes[i]);
		ck_assert_msg(strstr(e, "attempt to call") || strstr(e, "attempt to index"),
			      "%s: unexpected \"%s\"", escapes[i], e);
	}
}
END_TEST

START_TEST(test_odd_lua_errors)
{
	char want[512];

	write_conf_raw("\033LJ\002garbage");
	snprintf(want, sizeof want, "%s: attempt to load chunk with wrong mode", conf);
	ck_assert_str_eq(load_fail_path(conf), want);
	load_fail("error({})");
	snprintf(want, sizeof want, "%s: error object is a table, not a string", conf);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_endless_loop)
{
	ck_assert_contains(load_fail("while true do end"), "endless loop");
}
END_TEST

/* ---------------------------------------------------------------- cfg_parse_listen */

START_TEST(test_listen_ipv4)
{
	cfg_listen_t l;
	struct in_addr want;

	ck_assert_int_eq(cfg_parse_listen("udp:1.2.3.4:5060", &l, err, sizeof err), 0);
	assert_listen(&l, SIP_PROTO_UDP, AF_INET, "1.2.3.4", 5060);
	inet_pton(AF_INET, "1.2.3.4", &want);
	ck_assert_uint_eq(((struct sockaddr_in *)&l.addr)->sin_addr.s_addr, want.s_addr);
	ck_assert_str_eq(l.adv_host, "");
	ck_assert_uint_eq(l.adv_port, 0);
	ck_assert_str_eq(l.spec, "udp:1.2.3.4:5060");
}
END_TEST

START_TEST(test_listen_ipv6)
{
	cfg_listen_t l;
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&l.addr;

	ck_assert_int_eq(cfg_parse_listen("tcp:[::1]:5070", &l, err, sizeof err), 0);
	assert_listen(&l, SIP_PROTO_TCP, AF_INET6, "::1", 5070);
	ck_assert(memcmp(&a->sin6_addr, &in6addr_loopback, sizeof a->sin6_addr) == 0);

	ck_assert_int_eq(cfg_parse_listen("udp:[2001:db8::5]:5080", &l, err, sizeof err), 0);
	assert_listen(&l, SIP_PROTO_UDP, AF_INET6, "2001:db8::5", 5080);
}
END_TEST

START_TEST(test_listen_any)
{
	cfg_listen_t l;

	ck_assert_int_eq(cfg_parse_listen("udp:*:5060", &l, err, sizeof err), 0);
	assert_listen(&l, SIP_PROTO_UDP, AF_INET, "0.0.0.0", 5060);
	ck_assert_uint_eq(((struct sockaddr_in *)&l.addr)->sin_addr.s_addr, htonl(INADDR_ANY));
	ck_assert_str_eq(l.spec, "udp:*:5060");

	ck_assert_int_eq(cfg_parse_listen("  TCP:[::]:5060  ", &l, err, sizeof err), 0);
	assert_listen(&l, SIP_PROTO_TCP, AF_INET6, "::", 5060);
	ck_assert_str_eq(l.spec, "TCP:[::]:5060");
}
END_TEST

START_TEST(test_listen_advertise)
{
	cfg_listen_t l;

	ck_assert_int_eq(cfg_parse_listen("tcp:0.0.0.0:5060 advertise sip.example.com:5080", &l, err, sizeof err), 0);
	assert_listen(&l, SIP_PROTO_TCP, AF_INET, "0.0.0.0", 5060);
	ck_assert_str_eq(l.adv_host, "sip.example.com");
	ck_assert_uint_eq(l.adv_port, 5080);
	ck_assert_str_eq(l.spec, "tcp:0.0.0.0:5060 advertise sip.example.com:5080");

	/* Without a port the listen port is advertised. */
	ck_assert_int_eq(cfg_parse_listen("udp:10.0.0.5:5070\tadvertise   203.0.113.10", &l, err, sizeof err), 0);
	ck_assert_str_eq(l.adv_host, "203.0.113.10");
	ck_assert_uint_eq(l.adv_port, 5070);

	ck_assert_int_eq(cfg_parse_listen("udp:[::]:5060 advertise [2001:db8::1]:5062", &l, err, sizeof err), 0);
	ck_assert_str_eq(l.adv_host, "[2001:db8::1]");
	ck_assert_uint_eq(l.adv_port, 5062);
}
END_TEST

START_TEST(test_listen_errors)
{
	cfg_listen_t l;

	ck_assert_int_eq(cfg_parse_listen("udp:[::1]:0", &l, err, sizeof err), -1);
	ck_assert_str_eq(err, LISTEN_EXPECT " (port must be 1..65535), got \"udp:[::1]:0\"");
	ck_assert_uint_eq(l.port, 0); /* nothing half-filled */
	ck_assert_int_eq(cfg_parse_listen("", &l, err, sizeof err), -1);
	ck_assert_contains(err, "(empty)");
	ck_assert_int_eq(cfg_parse_listen(NULL, &l, err, sizeof err), -1);
	ck_assert_int_eq(cfg_parse_listen("udp:1.2.3.4:5060 advertise x.example.com", &l, NULL, 0), 0);
}
END_TEST

static Suite *cfg_suite(void)
{
	Suite *s = suite_create("cfg");
	TCase *shipped = tcase_create("shipped");
	TCase *values = tcase_create("values");
	TCase *mistakes = tcase_create("mistakes");
	TCase *listen = tcase_create("listen");

	tcase_add_test(shipped, test_default_conf);
	tcase_add_test(shipped, test_example_ipv6_advertise);
	tcase_add_test(shipped, test_example_tcp_tuned);
	tcase_add_test(shipped, test_defaults);
	suite_add_tcase(s, shipped);

	tcase_add_checked_fixture(values, setup, teardown);
	tcase_add_test(values, test_every_key);
	tcase_add_test(values, test_empty_conf_gives_defaults);
	tcase_add_test(values, test_sandbox_allows_computing);
	tcase_add_test(values, test_log_level_forms);
	tcase_add_test(values, test_server_header_off);
	tcase_add_test(values, test_relative_script);
	tcase_add_test(values, test_absolute_script);
	suite_add_tcase(s, values);

	tcase_add_checked_fixture(mistakes, setup, teardown);
	tcase_add_test(mistakes, test_script_missing);
	tcase_add_test(mistakes, test_script_not_a_file);
	tcase_add_test(mistakes, test_missing_file);
	tcase_add_test(mistakes, test_wrong_type_message);
	tcase_add_test(mistakes, test_unknown_top_level);
	tcase_add_test(mistakes, test_unknown_nested);
	tcase_add_test(mistakes, test_wrong_types);
	tcase_add_test(mistakes, test_non_integral);
	tcase_add_test(mistakes, test_out_of_range);
	tcase_add_test(mistakes, test_bad_log_level);
	tcase_add_test(mistakes, test_bad_listen_entries);
	tcase_add_test(mistakes, test_bad_listen_shapes);
	tcase_add_test(mistakes, test_bad_aliases);
	tcase_add_test(mistakes, test_syntax_error);
	tcase_add_test(mistakes, test_runtime_error);
	tcase_add_test(mistakes, test_sandbox_escape);
	tcase_add_test(mistakes, test_odd_lua_errors);
	tcase_add_test(mistakes, test_endless_loop);
	suite_add_tcase(s, mistakes);

	tcase_add_test(listen, test_listen_ipv4);
	tcase_add_test(listen, test_listen_ipv6);
	tcase_add_test(listen, test_listen_any);
	tcase_add_test(listen, test_listen_advertise);
	tcase_add_test(listen, test_listen_errors);
	suite_add_tcase(s, listen);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cfg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
