// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the ksrd authors
#include "stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static stat_counter_t *head, *tail;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

stat_counter_t *stat_find(const char *group, const char *name)
{
	for (stat_counter_t *c = head; c; c = c->next)
		if (!strcmp(c->group, group) && !strcmp(c->name, name))
			return c;
	return NULL;
}

stat_counter_t *stat_register(const char *group, const char *name, bool no_reset)
{
	pthread_mutex_lock(&reg_lock);
	stat_counter_t *c = stat_find(group, name);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c) {
			c->group = group;
			c->name = name;
			c->no_reset = no_reset;
			if (tail)
				tail->next = c;
			else
				head = c;
			tail = c;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	return c;
}

void stat_foreach(void (*fn)(const stat_counter_t *c, void *arg), void *arg)
{
	for (stat_counter_t *c = head; c; c = c->next)
		fn(c, arg);
}

void stat_reset_all(void)
{
	for (stat_counter_t *c = head; c; c = c->next)
		if (!c->no_reset)
			atomic_store_explicit(&c->value, 0, memory_order_relaxed);
}
