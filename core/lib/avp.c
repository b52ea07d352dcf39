// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "avp.h"

#include <stdlib.h>
#include <string.h>

static bool named(const avp_t *a, str_t name)
{
	return a->name_len == name.len && !memcmp(a->name, name.s, name.len);
}

int avp_push(avp_t **list, str_t name, bool is_int, long long i, str_t s)
{
	avp_t *a = malloc(sizeof(*a) + name.len);
	if (!a)
		return -1;
	a->is_int = is_int;
	a->i = i;
	a->s = STR_NULL;
	if (!is_int) {
		char *p = malloc(s.len + 1);
		if (!p) {
			free(a);
			return -1;
		}
		if (s.len)
			memcpy(p, s.s, s.len);
		p[s.len] = '\0';
		a->s = str_from(p, s.len);
	}
	a->name_len = name.len;
	memcpy(a->name, name.s, name.len);
	a->next = *list;
	*list = a;
	return 0;
}

const avp_t *avp_get(const avp_t *list, str_t name, int idx)
{
	if (idx < 0) {
		int n = 0;
		for (const avp_t *a = list; a; a = a->next)
			if (named(a, name))
				n++;
		idx += n;
		if (idx < 0)
			return NULL;
	}
	for (const avp_t *a = list; a; a = a->next)
		if (named(a, name) && idx-- == 0)
			return a;
	return NULL;
}

int avp_del(avp_t **list, str_t name)
{
	int n = 0;
	while (*list) {
		avp_t *a = *list;
		if (!named(a, name)) {
			list = &a->next;
			continue;
		}
		*list = a->next;
		free((char *)a->s.s);
		free(a);
		n++;
	}
	return n;
}

void avp_free_all(avp_t **list)
{
	while (*list) {
		avp_t *a = *list;
		*list = a->next;
		free((char *)a->s.s);
		free(a);
	}
}
