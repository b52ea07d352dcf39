// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#pragma once
/*
 * Per-message arena: bump allocation from chained blocks, everything released at
 * once by arena_reset(). The first block is kept across resets so a worker that
 * handles messages of a steady size does no malloc at all after warm-up.
 * Not thread-safe: one arena belongs to one worker.
 */
#include <stddef.h>

#include "str.h"

typedef struct arena_block arena_block_t;

typedef struct {
	arena_block_t *head;   /* block being filled */
	arena_block_t *first;  /* kept across resets */
	size_t block_size;
	size_t used_total;     /* bytes handed out since the last reset */
} arena_t;

void arena_init(arena_t *a, size_t block_size);
void arena_reset(arena_t *a);
void arena_free(arena_t *a);
/* Returns 16-byte aligned memory or NULL when malloc fails. */
void *arena_alloc(arena_t *a, size_t n);
void *arena_zalloc(arena_t *a, size_t n);
/* Copies bytes into the arena; the result is NUL-terminated (not counted in len). */
str_t arena_strdup(arena_t *a, str_t s);
/* printf into the arena; returns STR_NULL on failure. */
str_t arena_printf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
