// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct arena_block {
	arena_block_t *next;
	size_t size;
	size_t used;
	_Alignas(16) unsigned char data[];
};

static arena_block_t *block_new(size_t size)
{
	arena_block_t *b = malloc(sizeof(*b) + size);
	if (!b)
		return NULL;
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

void arena_init(arena_t *a, size_t block_size)
{
	a->block_size = block_size ? block_size : 16384;
	a->first = a->head = NULL;
	a->used_total = 0;
}

void arena_reset(arena_t *a)
{
	arena_block_t *b = a->first ? a->first->next : NULL;
	while (b) {
		arena_block_t *n = b->next;
		free(b);
		b = n;
	}
	if (a->first) {
		a->first->next = NULL;
		a->first->used = 0;
	}
	a->head = a->first;
	a->used_total = 0;
}

void arena_free(arena_t *a)
{
	arena_reset(a);
	free(a->first);
	a->first = a->head = NULL;
}

void *arena_alloc(arena_t *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (!a->head || a->head->size - a->head->used < n) {
		size_t sz = n > a->block_size ? n : a->block_size;
		arena_block_t *b = block_new(sz);
		if (!b)
			return NULL;
		if (!a->first)
			a->first = b;
		else
			a->head->next = b;
		a->head = b;
	}
	void *p = a->head->data + a->head->used;
	a->head->used += n;
	a->used_total += n;
	return p;
}

void *arena_zalloc(arena_t *a, size_t n)
{
	void *p = arena_alloc(a, n);
	if (p)
		memset(p, 0, n);
	return p;
}

str_t arena_strdup(arena_t *a, str_t s)
{
	char *p = arena_alloc(a, s.len + 1);
	if (!p)
		return STR_NULL;
	if (s.len)
		memcpy(p, s.s, s.len);
	p[s.len] = '\0';
	return str_from(p, s.len);
}

str_t arena_printf(arena_t *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return STR_NULL;
	char *p = arena_alloc(a, (size_t)n + 1);
	if (!p)
		return STR_NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return str_from(p, (size_t)n);
}
