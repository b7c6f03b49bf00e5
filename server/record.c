/* record: closed buckets as minimized JSON records (see record.h). */
#include "server/record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"

/* The record being assembled while the rows of one device and bucket come by (the store hands
 * them over ordered by device, bucket and field). */
struct pending {
	record_fn fn;
	void *ctx;
	json_t *values;
	char device[65];
	int64_t bucket_start, expires_at;
	uint32_t bucket_s;
	size_t delivered, failed;
};

static void flush(struct pending *p)
{
	json_t *obj;
	char *text = NULL;
	int ok = 0;

	if (!p->values)
		return;
	obj = json_pack("{s:s, s:I, s:I, s:O}", "device", p->device, "bucket_start",
			(json_int_t)p->bucket_start, "bucket_s", (json_int_t)p->bucket_s, "values", p->values);
	if (obj)
		text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(12));
	if (text && strlen(text) <= RECORD_MAX) {
		struct record r = { .device = p->device, .bucket_start = p->bucket_start,
				    .expires_at = p->expires_at, .bucket_s = p->bucket_s, .json = text,
				    .len = strlen(text) };

		ok = p->fn(p->ctx, &r) == 0;
	}
	else
		log_warn("record of %s at %lld could not be built", p->device, (long long)p->bucket_start);
	if (ok)
		p->delivered++;
	else
		p->failed++;
	free(text);
	json_decref(obj);
	json_decref(p->values);
	p->values = NULL;
}

static int add_row(void *ctx, const struct store_row *row)
{
	struct pending *p = ctx;
	int64_t expires;
	json_t *v;

	if (p->values && (strcmp(p->device, row->device_id) != 0 || p->bucket_start != row->bucket_start ||
			  p->bucket_s != row->bucket_s))
		flush(p);
	if (!p->values) {
		if (strlen(row->device_id) >= sizeof(p->device))
			return 0; /* not an id hearth issues; nothing to send it under */
		p->values = json_object();
		if (!p->values) {
			p->failed++;
			return 0;
		}
		memcpy(p->device, row->device_id, strlen(row->device_id) + 1);
		p->bucket_start = row->bucket_start;
		p->bucket_s = row->bucket_s;
		p->expires_at = INT64_MAX;
	}
	/* As the store's retention counts it (store_telemetry_expire). */
	expires = row->bucket_start + (int64_t)row->bucket_s + (int64_t)row->retention_days * 86400;
	if (expires < p->expires_at)
		p->expires_at = expires;
	if (row->text)
		v = json_pack("{s:s, s:s, s:I}", "agg", row->agg, "value", row->text, "n", (json_int_t)row->n);
	else if (row->has_value)
		v = json_pack("{s:s, s:f, s:I}", "agg", row->agg, "value", row->value, "n", (json_int_t)row->n);
	else
		v = json_pack("{s:s, s:n, s:I}", "agg", row->agg, "value", "n", (json_int_t)row->n);
	/* NaN or infinity cannot be stored (minimize refuses them), and jansson would refuse them. */
	if (!v || json_object_set_new(p->values, row->field, v) != 0)
		p->failed++;
	return 0;
}

enum herr record_closed(struct store *st, int64_t after, int64_t until, record_fn fn, void *ctx,
			size_t *delivered, size_t *failed)
{
	struct pending p = { .fn = fn, .ctx = ctx };
	enum herr rc = store_telemetry_closed(st, after, until, add_row, &p);

	if (rc == HERR_OK)
		flush(&p);
	json_decref(p.values);
	if (delivered)
		*delivered = p.delivered;
	if (failed)
		*failed = p.failed;
	return rc;
}
