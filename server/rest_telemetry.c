/* REST telemetry: a device's stored (minimized) series, and the counts of fields that were dropped
 * instead of stored. Only what the store holds is shown: nothing here can reach a raw payload. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "server/rest_internal.h"
#include "server/store.h"

#define ITEMS_MAX 10000
#define DEFAULT_SPAN_S (7 * 86400)

struct json_list {
	json_t *items;
	size_t count;
	const char *field;           /* only this field, or NULL */
	int failed;                  /* out of memory */
	int truncated;               /* more rows than ITEMS_MAX */
};

static int append(struct json_list *l, json_t *item)
{
	if (l->count >= ITEMS_MAX) {
		json_decref(item);
		l->truncated = 1;
		return 1;
	}
	if (json_array_append_new(l->items, item) != 0) {
		l->failed = 1;
		return 1;
	}
	l->count++;
	return 0;
}

/* {"items": [...]}, with "truncated": true if rows were left out. */
static void reply_list(struct rest_req *req, struct json_list *l)
{
	json_t *body = json_pack("{s:o}", "items", l->items);

	if (body && l->truncated && json_object_set_new(body, "truncated", json_true()) != 0) {
		json_decref(body);
		body = NULL;
	}
	rest_reply_json(req, 200, body);
}

static int add_row(void *ctx, const struct store_row *r)
{
	struct json_list *l = ctx;
	json_t *value;

	if (l->field && strcmp(l->field, r->field) != 0)
		return 0;
	if (r->text)
		value = json_string(r->text);
	else if (r->has_value && isfinite(r->value))
		value = json_real(r->value);
	else
		value = json_null();
	return append(l, json_pack("{s:s, s:s, s:I, s:I, s:o, s:I}", "field", r->field, "agg", r->agg,
				   "bucket_start", (json_int_t)r->bucket_start, "bucket_s", (json_int_t)r->bucket_s,
				   "value", value, "n", (json_int_t)r->n));
}

void rest_device_telemetry(struct rest_req *req)
{
	const char *id = req->params[0];
	struct json_list l = { .field = rest_query(req, "field") };
	int64_t from = -1, to = -1;
	struct store_device d;
	enum herr rc;

	if (rest_query_seconds(req, "from", &from) != 0 || rest_query_seconds(req, "to", &to) != 0)
		return;
	/* Defaults: up to now (the open bucket included), and a week before the end. */
	if (to < 0)
		to = (int64_t)time(NULL) + 1;
	if (from < 0)
		from = to > DEFAULT_SPAN_S ? to - DEFAULT_SPAN_S : 0;
	if (to <= from) {
		rest_reply_error(req, 400, "invalid_query", "to must be after from");
		return;
	}
	rc = store_device_get(req->dd->store, id, &d);
	if (rc == HERR_NOTFOUND) {
		rest_reply_error(req, 404, "not_found", "no device '%s'", id);
		return;
	}
	l.items = rc == HERR_OK ? json_array() : NULL;
	if (!l.items) {
		rest_reply_internal(req);
		return;
	}
	rc = store_telemetry_query(req->dd->store, id, from, to, add_row, &l);
	if (rc != HERR_OK || l.failed) {
		json_decref(l.items);
		rest_reply_internal(req);
		return;
	}
	rest_reply_json(req, 200, json_pack("{s:s, s:o, s:b}", "device", id, "items", l.items,
					    "truncated", l.truncated));
}

static int add_dropped(void *ctx, const char *model, const char *field, int sensitive, int64_t count)
{
	return append(ctx, json_pack("{s:s, s:s, s:b, s:I}", "model", model, "field", field,
				     "sensitive", sensitive, "count", (json_int_t)count));
}

void rest_telemetry_dropped(struct rest_req *req)
{
	struct json_list l = { .items = json_array() };

	if (!l.items || store_dropped_list(req->dd->store, add_dropped, &l) != HERR_OK || l.failed) {
		json_decref(l.items);
		rest_reply_internal(req);
		return;
	}
	reply_list(req, &l);
}
