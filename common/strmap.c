#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *next;
	uint64_t hash;
	void *value;
	char key[];
};

struct strmap {
	struct entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
};

/* FNV-1a, unkeyed: keys are device ids, which only the operator (or hearth) chooses and which a
 * certificate must prove, so no client can pick keys to flood one bucket. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

struct strmap *strmap_new(void)
{
	struct strmap *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nbuckets = 64;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (!m->buckets) {
		free(m);
		return NULL;
	}
	return m;
}

void strmap_free(struct strmap *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->nbuckets; i++) {
		struct entry *e = m->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->buckets);
	free(m);
}

static struct entry **find(const struct strmap *m, const char *key, uint64_t h)
{
	struct entry **pp = &m->buckets[h & (m->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			break;
	}
	return pp;
}

void *strmap_get(const struct strmap *m, const char *key)
{
	struct entry **pp = find(m, key, hash_str(key));

	return *pp ? (*pp)->value : NULL;
}

static void grow(struct strmap *m)
{
	size_t n = m->nbuckets * 2, i;
	struct entry **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (i = 0; i < m->nbuckets; i++) {
		struct entry *e = m->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

enum herr strmap_put(struct strmap *m, const char *key, void *value, void **old)
{
	uint64_t h = hash_str(key);
	struct entry **pp = find(m, key, h), *e;
	size_t klen;

	if (old)
		*old = NULL;
	if (*pp) {
		if (old)
			*old = (*pp)->value;
		(*pp)->value = value;
		return HERR_OK;
	}
	klen = strlen(key);
	e = malloc(sizeof(*e) + klen + 1);
	if (!e)
		return HERR_NOMEM;
	memcpy(e->key, key, klen + 1);
	e->hash = h;
	e->value = value;
	e->next = NULL;
	*pp = e;
	if (++m->count > m->nbuckets)
		grow(m);
	return HERR_OK;
}

void *strmap_del(struct strmap *m, const char *key)
{
	struct entry **pp = find(m, key, hash_str(key)), *e = *pp;
	void *v;

	if (!e)
		return NULL;
	*pp = e->next;
	v = e->value;
	free(e);
	m->count--;
	return v;
}

size_t strmap_count(const struct strmap *m)
{
	return m->count;
}

void strmap_each(const struct strmap *m, int (*fn)(void *ctx, const char *key, void *value), void *ctx)
{
	size_t i;

	for (i = 0; i < m->nbuckets; i++) {
		const struct entry *e;

		for (e = m->buckets[i]; e; e = e->next) {
			if (fn(ctx, e->key, e->value) != 0)
				return;
		}
	}
}
