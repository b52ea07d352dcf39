// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * What KSR.textops, KSR.textopsx and KSR.corex share: the per-worker cache of
 * compiled POSIX regular expressions, header matching the textops way, and
 * error logging that names the KSR function.
 *
 * Reading functions (search*, is_present_hf*, has_body*) look at the message
 * as received, as Kamailio's do; editing functions work on the message as it
 * will leave (earlier edits included) and record deferred edits (msg_hdr_*,
 * msg_set_body).
 */
#include <regex.h>
#include <stdbool.h>

#include "ksr.h"

/* Flags of Kamailio's textops regular expressions. */
#define KSR_RE_FLAGS (REG_EXTENDED | REG_ICASE | REG_NEWLINE)

/*
 * The compiled pattern from this worker's cache: compiled on first use and
 * kept (a pattern that does not compile is remembered too: NULL, logged once).
 * Borrowed: valid until a later ksr_re_get() evicts it; up to 4 results stay
 * valid together.
 */
const regex_t *ksr_re_get(ksr_ctx_t *c, str_t pattern, int cflags);

/* Matches re in s[lo, hi) (REG_STARTEND: no NUL needed, and '^' sees what
 * precedes lo); pm[0] and the groups are offsets into s. */
bool ksr_re_exec(const regex_t *re, const char *s, size_t lo, size_t hi, size_t nm, regmatch_t *pm);

/* The textops rule for a header name: known headers by type (so "f" finds
 * From), others by name, case-insensitively. t = sip_hdr_type(name). */
bool ksr_hdr_is(const sip_hdr_t *h, sip_hdr_type_t t, str_t name);

/* Header idx as it will leave: its replacement, "" when removed, else the received line. */
str_t ksr_hdr_text(const msg_t *m, unsigned idx);

/* Logs an error prefixed by the KSR function being called and the Call-ID. */
void ksr_text_err(ksr_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
