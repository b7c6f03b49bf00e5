/* strmap: a map from NUL-terminated string keys (copied in) to caller-owned pointers. Chained hash
 * table that doubles when full; lookups are O(1) on average. Not thread-safe. */
#ifndef HEARTH_STRMAP_H
#define HEARTH_STRMAP_H

#include <stddef.h>

#include "herr.h"

struct strmap;

struct strmap *strmap_new(void);
/* Frees the map and its keys, not the values. */
void strmap_free(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Insert or replace; *old (may be NULL) receives the replaced value. */
enum herr strmap_put(struct strmap *m, const char *key, void *value, void **old);
/* Remove and return the value (NULL if absent). */
void *strmap_del(struct strmap *m, const char *key);
size_t strmap_count(const struct strmap *m);
/* Call fn for every entry; fn may not change the map. A non-zero return stops the walk. */
void strmap_each(const struct strmap *m, int (*fn)(void *ctx, const char *key, void *value), void *ctx);

#endif
