#include "server/feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "server/acl.h"

/* The watermark is written when records went out, and at least this often otherwise. */
#define FEED_PERSIST_S 600

struct feed {
	struct store *store;
	struct broker *broker;
	int64_t until;       /* records of buckets closed at or before this were published */
	int64_t persisted;   /* the watermark the store holds */
};

/* The record being assembled while the rows of one device and bucket come by. */
struct record {
	struct feed *feed;
	json_t *values;
	char device[65];
	int64_t bucket_start;
	uint32_t bucket_s;
	size_t published, failed;
};

enum herr feed_new(struct store *st, struct broker *b, int64_t now, struct feed **out)
{
	struct feed *f;
	enum herr rc;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return HERR_NOMEM;
	f->store = st;
	f->broker = b;
	rc = store_feed_get(st, &f->until);
	if (rc == HERR_NOTFOUND) {
		f->until = now;
		rc = HERR_OK;
	}
	if (rc != HERR_OK) {
		free(f);
		return rc;
	}
	f->persisted = f->until;
	if (f->until < now - FEED_CATCHUP_S) {
		log_warn("feed: down since %lld; records of buckets that closed more than %d s ago are not "
			 "published (they stay in the store)", (long long)f->until, FEED_CATCHUP_S);
		f->until = now - FEED_CATCHUP_S;
	}
	*out = f;
	return HERR_OK;
}

void feed_free(struct feed *f)
{
	free(f);
}

static void record_flush(struct record *r)
{
	json_t *obj;
	char topic[128], *text = NULL;
	enum herr rc = HERR_NOMEM;

	if (!r->values)
		return;
	obj = json_pack("{s:s, s:I, s:I, s:O}", "device", r->device, "bucket_start", (json_int_t)r->bucket_start,
			"bucket_s", (json_int_t)r->bucket_s, "values", r->values);
	if (obj)
		text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(12));
	if (text && strlen(text) <= FEED_RECORD_MAX &&
	    (size_t)snprintf(topic, sizeof(topic), ACL_PREFIX "%s/telemetry", r->device) < sizeof(topic))
		rc = broker_publish(r->feed->broker, topic, (const uint8_t *)text, strlen(text), 1, 0);
	if (rc == HERR_OK) {
		r->published++;
	} else {
		r->failed++;
		log_warn("feed: record of %s at %lld not published: %s", r->device, (long long)r->bucket_start,
			 herr_str(rc));
	}
	free(text);
	json_decref(obj);
	json_decref(r->values);
	r->values = NULL;
}

static int add_row(void *ctx, const struct store_row *row)
{
	struct record *r = ctx;
	json_t *v;

	if (r->values && (strcmp(r->device, row->device_id) != 0 || r->bucket_start != row->bucket_start ||
			  r->bucket_s != row->bucket_s))
		record_flush(r);
	if (!r->values) {
		if (strlen(row->device_id) >= sizeof(r->device))
			return 0; /* not an id hearth issues; nothing to publish it under */
		r->values = json_object();
		if (!r->values) {
			r->failed++;
			return 0;
		}
		memcpy(r->device, row->device_id, strlen(row->device_id) + 1);
		r->bucket_start = row->bucket_start;
		r->bucket_s = row->bucket_s;
	}
	if (row->text)
		v = json_pack("{s:s, s:s, s:I}", "agg", row->agg, "value", row->text, "n", (json_int_t)row->n);
	else if (row->has_value)
		v = json_pack("{s:s, s:f, s:I}", "agg", row->agg, "value", row->value, "n", (json_int_t)row->n);
	else
		v = json_pack("{s:s, s:n, s:I}", "agg", row->agg, "value", "n", (json_int_t)row->n);
	/* NaN or infinity cannot be stored (minimize refuses them), and jansson would refuse them. */
	if (!v || json_object_set_new(r->values, row->field, v) != 0)
		r->failed++;
	return 0;
}

enum herr feed_run(struct feed *f, int64_t now, size_t *records)
{
	struct record r = { .feed = f };
	int64_t until = now < f->until + FEED_STEP_S ? now : f->until + FEED_STEP_S;
	enum herr rc;

	if (records)
		*records = 0;
	if (until <= f->until)
		return HERR_OK;
	rc = store_telemetry_closed(f->store, f->until, until, add_row, &r);
	if (rc == HERR_OK)
		record_flush(&r);
	json_decref(r.values);
	if (rc != HERR_OK)
		return rc;
	f->until = until;
	if (records)
		*records = r.published;
	if (r.published > 0 || f->until - f->persisted >= FEED_PERSIST_S) {
		if (store_feed_set(f->store, f->until) == HERR_OK)
			f->persisted = f->until;
	}
	return HERR_OK;
}
