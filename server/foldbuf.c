#include "server/foldbuf.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/policy.h"

/* Open addressing over twice as many slots as rows: a slot holds a row's index + 1, 0 is free. */
#define SLOTS (2 * FOLDBUF_ROWS)

enum row_kind { ROW_FOLD, ROW_SEEN, ROW_DROPPED };

struct row {
	uint32_t hash;
	uint8_t kind, has_text, sensitive;
	char key1[65];                 /* device id (fold, seen) or model (dropped) */
	char key2[POLICY_FIELD_MAX];   /* field path (fold) or dropped name; "" for seen */
	char agg[8];
	int64_t bucket_start;          /* fold: the bucket; seen: the newest bucket */
	int64_t n;                     /* fold: samples; dropped: count */
	uint32_t bucket_s, retention_days;
	double value;                  /* mean: the sum */
	char text[256];
};

struct foldbuf {
	struct store *store;
	size_t count;
	struct foldbuf_stats stats;
	uint16_t slots[SLOTS];
	struct row rows[FOLDBUF_ROWS];
};

_Static_assert(FOLDBUF_ROWS < 65535, "slots hold a row index + 1 in 16 bits");

enum herr foldbuf_new(struct store *st, struct foldbuf **out)
{
	/* Not zeroed: only the slots must start free, and untouched rows then cost no resident pages. */
	struct foldbuf *fb = malloc(sizeof(*fb));

	*out = NULL;
	if (!fb)
		return HERR_NOMEM;
	fb->store = st;
	fb->count = 0;
	memset(&fb->stats, 0, sizeof(fb->stats));
	memset(fb->slots, 0, sizeof(fb->slots));
	*out = fb;
	return HERR_OK;
}

void foldbuf_free(struct foldbuf *fb)
{
	free(fb);
}

static uint32_t mix(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u; /* FNV-1a */
	return h;
}

static uint32_t key_hash(enum row_kind kind, const char *k1, const char *k2, int64_t bucket)
{
	uint8_t k = (uint8_t)kind;
	uint32_t h = mix(2166136261u, &k, 1);

	h = mix(h, k1, strlen(k1) + 1);
	h = mix(h, k2, strlen(k2) + 1);
	return mix(h, &bucket, sizeof(bucket));
}

/* The row with this key, or a new one (*fresh = 1) if there is room; NULL when the buffer is full. */
static struct row *find(struct foldbuf *fb, enum row_kind kind, const char *k1, const char *k2, int64_t bucket,
			int *fresh)
{
	uint32_t h = key_hash(kind, k1, k2, bucket);
	size_t i = h % SLOTS;
	struct row *r;

	*fresh = 0;
	for (; fb->slots[i]; i = (i + 1) % SLOTS) {
		r = &fb->rows[fb->slots[i] - 1];
		if (r->hash == h && r->kind == kind && strcmp(r->key1, k1) == 0 && strcmp(r->key2, k2) == 0 &&
		    (kind != ROW_FOLD || r->bucket_start == bucket))
			return r;
	}
	if (fb->count == FOLDBUF_ROWS)
		return NULL;
	r = &fb->rows[fb->count];
	fb->slots[i] = (uint16_t)(++fb->count);
	memset(r, 0, offsetof(struct row, text));
	r->text[0] = '\0';
	r->hash = h;
	r->kind = (uint8_t)kind;
	/* The callers checked that both fit (fits()): never cut here. */
	snprintf(r->key1, sizeof(r->key1), "%s", k1);
	snprintf(r->key2, sizeof(r->key2), "%s", k2);
	r->bucket_start = bucket;
	*fresh = 1;
	return r;
}

/* Like find, but makes room by writing the buffer out first. NULL with *rc set on a store error. */
static struct row *find_room(struct foldbuf *fb, enum row_kind kind, const char *k1, const char *k2, int64_t bucket,
			     int *fresh, enum herr *rc)
{
	struct row *r = find(fb, kind, k1, k2, bucket, fresh);

	*rc = HERR_OK;
	if (r)
		return r;
	if ((*rc = foldbuf_flush(fb)) != HERR_OK)
		return NULL;
	return find(fb, kind, k1, k2, bucket, fresh);
}

static int fits(const char *s, size_t size)
{
	return strlen(s) < size;
}

enum herr foldbuf_sample(struct foldbuf *fb, const struct store_sample *s)
{
	struct row *r;
	enum herr rc;
	int fresh;

	if (!s->device_id || !s->field || !s->agg || s->n < 1)
		return HERR_INVALID;
	fb->stats.samples++;
	if (!fits(s->device_id, sizeof(r->key1)) || !fits(s->field, sizeof(r->key2)) ||
	    !fits(s->agg, sizeof(r->agg)) || (s->text && !fits(s->text, sizeof(r->text)))) {
		/* Too long to hold: written now, after everything held (order matters for "last"). */
		if ((rc = foldbuf_flush(fb)) != HERR_OK)
			return rc;
		fb->stats.rows_written++;
		return store_telemetry_fold(fb->store, s);
	}
	r = find_room(fb, ROW_FOLD, s->device_id, s->field, s->bucket_start, &fresh, &rc);
	if (!r)
		return rc;
	if (fresh) {
		/* The first sample decides what the store's insert would have: bucket length, retention
		 * and aggregate are not changed by later updates of the row. */
		snprintf(r->agg, sizeof(r->agg), "%s", s->agg);
		r->bucket_s = s->bucket_s;
		r->retention_days = s->retention_days;
		r->value = s->value;
	} else if (strcmp(r->agg, "mean") == 0) {
		r->value += s->value;
	} else if (strcmp(r->agg, "min") == 0) {
		r->value = s->value < r->value ? s->value : r->value;
	} else if (strcmp(r->agg, "max") == 0) {
		r->value = s->value > r->value ? s->value : r->value;
	} else {
		r->value = s->value;
	}
	r->n += s->n;
	r->has_text = s->text != NULL;
	if (s->text)
		snprintf(r->text, sizeof(r->text), "%s", s->text);
	return HERR_OK;
}

enum herr foldbuf_seen(struct foldbuf *fb, const char *device_id, int64_t bucket_start)
{
	struct row *r;
	enum herr rc;
	int fresh;

	if (!device_id)
		return HERR_INVALID;
	if (!fits(device_id, sizeof(r->key1))) {
		if ((rc = foldbuf_flush(fb)) != HERR_OK)
			return rc;
		fb->stats.rows_written++;
		return store_last_seen(fb->store, device_id, bucket_start);
	}
	r = find_room(fb, ROW_SEEN, device_id, "", 0, &fresh, &rc);
	if (!r)
		return rc;
	if (fresh || bucket_start > r->bucket_start)
		r->bucket_start = bucket_start;
	return HERR_OK;
}

enum herr foldbuf_dropped(struct foldbuf *fb, const char *model, const char *field, int sensitive,
			  int64_t count)
{
	struct row *r;
	enum herr rc;
	int fresh;

	if (!model || !field)
		return HERR_INVALID;
	if (!fits(model, sizeof(r->key1)) || !fits(field, sizeof(r->key2))) {
		if ((rc = foldbuf_flush(fb)) != HERR_OK)
			return rc;
		fb->stats.rows_written++;
		return store_dropped_add(fb->store, model, field, sensitive, count);
	}
	r = find_room(fb, ROW_DROPPED, model, field, 0, &fresh, &rc);
	if (!r)
		return rc;
	r->n += count;
	if (sensitive)
		r->sensitive = 1;
	return HERR_OK;
}

static enum herr write_row(struct foldbuf *fb, const struct row *r)
{
	struct store_sample s;

	switch ((enum row_kind)r->kind) {
	case ROW_FOLD:
		s = (struct store_sample){
			.device_id = r->key1, .field = r->key2, .bucket_start = r->bucket_start,
			.bucket_s = r->bucket_s, .retention_days = r->retention_days, .agg = r->agg,
			.n = r->n, .value = r->value, .text = r->has_text ? r->text : NULL,
		};
		return store_telemetry_fold(fb->store, &s);
	case ROW_SEEN:
		return store_last_seen(fb->store, r->key1, r->bucket_start);
	case ROW_DROPPED:
		return store_dropped_add(fb->store, r->key1, r->key2, r->sensitive, r->n);
	}
	return HERR_INVALID;
}

enum herr foldbuf_flush(struct foldbuf *fb)
{
	enum herr rc = HERR_OK;
	size_t i;

	if (fb->count == 0)
		return HERR_OK;
	fb->stats.flushes++;
	for (i = 0; i < fb->count && rc == HERR_OK; i++) {
		rc = write_row(fb, &fb->rows[i]);
		fb->stats.rows_written++;
	}
	foldbuf_discard(fb);
	return rc;
}

void foldbuf_discard(struct foldbuf *fb)
{
	if (fb->count == 0)
		return;
	fb->count = 0;
	memset(fb->slots, 0, sizeof(fb->slots));
}

size_t foldbuf_held(const struct foldbuf *fb)
{
	return fb->count;
}

const struct foldbuf_stats *foldbuf_stats(const struct foldbuf *fb)
{
	return &fb->stats;
}
