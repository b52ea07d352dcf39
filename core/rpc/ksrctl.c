// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
/*
 * ksrctl: the command-line client of ksrd's control socket (like kamcmd).
 *
 *   ksrctl [-s SOCKET] [--json] METHOD [ARGS...]
 *
 * ARGS become positional params; one that is a decimal integer is sent as a
 * number unless written "s:123". The result is printed as text: strings as
 * they are, arrays one item per line, objects as "key: value" lines (nested
 * ones indented); --json prints the result as JSON instead. Exit status: 0,
 * 1 when the server answered with an error, 2 when it could not be asked.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../lib/arena.h"
#include "../lib/json.h"

#define DEFAULT_SOCKET "/tmp/ksrd.sock"
#define TIMEOUT_MS 60000
#define MAX_ANSWER (256u * 1024 * 1024)

static void usage(FILE *f)
{
	fprintf(f, "usage: ksrctl [-s SOCKET] [--json] METHOD [ARGS...]\n"
		   "  -s, --socket PATH  control socket of ksrd (default " DEFAULT_SOCKET ")\n"
		   "      --json         print the result as JSON\n"
		   "  An argument that is an integer is sent as a number; write s:123 to send a string.\n"
		   "  ksrctl system.listMethods lists the methods; ksrctl system.methodHelp METHOD explains one.\n");
}

static bool is_integer(const char *s)
{
	str_t t = str_cstr(s);
	unsigned long long v;
	if (t.len && t.s[0] == '-')
		t = str_from(t.s + 1, t.len - 1);
	/* leading zeros ("007") are not a JSON number: keep those as strings */
	if (t.len > 1 && t.s[0] == '0')
		return false;
	return str_to_u64(t, 9223372036854775807ULL, &v);
}

static void build_request(json_w_t *w, const char *method, char **args, int nargs)
{
	json_w_obj_begin(w);
	json_w_kcstr(w, "jsonrpc", "2.0");
	json_w_kcstr(w, "method", method);
	json_w_key(w, "params");
	json_w_arr_begin(w);
	for (int i = 0; i < nargs; i++) {
		if (!strncmp(args[i], "s:", 2))
			json_w_cstr(w, args[i] + 2);
		else if (is_integer(args[i]))
			json_w_raw(w, str_cstr(args[i]));
		else
			json_w_cstr(w, args[i]);
	}
	json_w_arr_end(w);
	json_w_kint(w, "id", 1);
	json_w_obj_end(w);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ksrctl: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "ksrctl: cannot connect to %s: %s; is ksrd running?\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, str_t s)
{
	while (s.len) {
		ssize_t n = send(fd, s.s, s.len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s = str_from(s.s + n, s.len - (size_t)n);
	}
	return 0;
}

/* Reads until one whole JSON value has arrived; returns its length or -1. */
static long read_answer(int fd, char **buf)
{
	size_t len = 0, cap = 0, end;
	json_scan_t scan = {0};
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 65536;
			char *p = cap <= MAX_ANSWER ? realloc(*buf, cap) : NULL;
			if (!p) {
				fprintf(stderr, "ksrctl: answer too large\n");
				return -1;
			}
			*buf = p;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int rc = poll(&pfd, 1, TIMEOUT_MS);
		if (rc == 0) {
			fprintf(stderr, "ksrctl: no answer within %d s\n", TIMEOUT_MS / 1000);
			return -1;
		}
		ssize_t n = rc < 0 ? -1 : recv(fd, *buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "ksrctl: connection closed before the answer%s%s\n", n < 0 ? ": " : "",
				n < 0 ? strerror(errno) : "");
			return -1;
		}
		len += (size_t)n;
		rc = json_scan(&scan, *buf, len, &end);
		if (rc < 0) {
			fprintf(stderr, "ksrctl: the server's answer is not JSON\n");
			return -1;
		}
		if (rc > 0)
			return (long)end;
	}
}

static void scalar_text(const json_t *v, FILE *f)
{
	switch (v->type) {
	case JSON_STRING:
		fwrite(v->str.s, 1, v->str.len, f);
		break;
	case JSON_NUMBER:
		fwrite(v->str.s, 1, v->str.len, f);
		break;
	case JSON_BOOL:
		fputs(v->b ? "true" : "false", f);
		break;
	case JSON_NULL:
		fputs("null", f);
		break;
	case JSON_ARRAY:
		fputs("[]", f);
		break;
	case JSON_OBJECT:
		fputs("{}", f);
		break;
	}
}

static bool is_container(const json_t *v)
{
	return (v->type == JSON_ARRAY || v->type == JSON_OBJECT) && v->count;
}

static void print_value(const json_t *v, int indent)
{
	if (v->type == JSON_OBJECT) {
		json_foreach(it, v) {
			printf("%*s%.*s:", indent, "", STR_FMT(it->key));
			if (is_container(it)) {
				putchar('\n');
				print_value(it, indent + 2);
			} else {
				putchar(' ');
				scalar_text(it, stdout);
				putchar('\n');
			}
		}
		return;
	}
	if (v->type == JSON_ARRAY) {
		bool first = true;
		json_foreach(it, v) {
			/* objects in a list read best as blocks separated by a blank line */
			if (it->type == JSON_OBJECT && is_container(it) && !first)
				putchar('\n');
			first = false;
			print_value(it, is_container(it) && it->type == JSON_ARRAY ? indent + 2 : indent);
		}
		return;
	}
	printf("%*s", indent, "");
	scalar_text(v, stdout);
	putchar('\n');
}

static int show_answer(const json_t *ans, bool as_json)
{
	const json_t *err = json_get(ans, "error");
	if (err) {
		const json_t *code = json_get(err, "code");
		str_t c = code && code->str.s ? code->str : STR_LIT("?");
		str_t msg = json_str(json_get(err, "message"));
		if (!msg.s)
			msg = STR_LIT("?");
		fprintf(stderr, "error %.*s: %.*s\n", STR_FMT(c), STR_FMT(msg));
		return 1;
	}
	const json_t *res = json_get(ans, "result");
	if (!res) {
		fprintf(stderr, "ksrctl: the answer has neither result nor error\n");
		return 2;
	}
	if (as_json) {
		json_w_t w;
		json_w_init(&w);
		json_w_value(&w, res);
		printf("%.*s\n", STR_FMT(json_w_text(&w)));
		json_w_free(&w);
		return 0;
	}
	if (res->type != JSON_NULL)
		print_value(res, 0);
	return 0;
}

static int call(const char *path, const char *method, char **args, int nargs, bool as_json)
{
	json_w_t req;
	json_w_init(&req);
	build_request(&req, method, args, nargs);
	if (!json_w_ok(&req)) {
		fprintf(stderr, "ksrctl: out of memory\n");
		json_w_free(&req);
		return 2;
	}
	int fd = connect_to(path);
	if (fd < 0) {
		json_w_free(&req);
		return 2;
	}
	int rc = 2;
	char *buf = NULL;
	arena_t a;
	arena_init(&a, 65536);
	json_t *ans;
	json_err_t jerr;
	long n;
	if (send_all(fd, json_w_text(&req)) < 0 || send_all(fd, STR_LIT("\n")) < 0) {
		fprintf(stderr, "ksrctl: cannot send to %s: %s\n", path, strerror(errno));
	} else if ((n = read_answer(fd, &buf)) >= 0) {
		if (json_parse(&a, buf, (size_t)n, &ans, &jerr) < 0)
			fprintf(stderr, "ksrctl: bad answer: %s at offset %zu\n", jerr.msg, jerr.pos);
		else
			rc = show_answer(ans, as_json);
	}
	close(fd);
	free(buf);
	arena_free(&a);
	json_w_free(&req);
	return rc;
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_SOCKET;
	bool as_json = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--")) {
			i++;
			break;
		} else if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(o, "--json")) {
			as_json = true;
		} else if ((!strcmp(o, "-s") || !strcmp(o, "--socket")) && i + 1 < argc) {
			path = argv[++i];
		} else {
			fprintf(stderr, "ksrctl: unknown option %s\n", o);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	return call(path, argv[i], argv + i + 1, argc - i - 1, as_json);
}
