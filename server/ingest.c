#include "server/ingest.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strmap.h"
#include "server/foldbuf.h"
#include "server/minimize.h"
#include "server/policy.h"
#include "server/sensitive.h"

struct device_entry {
	char model[65];
	int64_t loaded;
};

struct policy_entry {
	struct policy *policy;  /* NULL: the model has no policy */
	int64_t loaded;
};

struct ingest {
	struct store *store;
	struct foldbuf *writes;   /* this group commit's telemetry writes, merged */
	struct strmap *devices;   /* id -> struct device_entry */
	struct strmap *policies;  /* model -> struct policy_entry */
	struct minimize_result result;  /* big: kept here, not on the stack */
	struct ingest_stats stats;
};

static const char *const agg_names[] = {
	[POLICY_AGG_NONE] = "none", [POLICY_AGG_MEAN] = "mean", [POLICY_AGG_MIN] = "min",
	[POLICY_AGG_MAX] = "max", [POLICY_AGG_LAST] = "last", [POLICY_AGG_COUNT] = "count",
};

enum herr ingest_new(struct store *st, struct ingest **out)
{
	struct ingest *ing = calloc(1, sizeof(*ing));

	*out = NULL;
	if (!ing)
		return HERR_NOMEM;
	ing->store = st;
	ing->devices = strmap_new();
	ing->policies = strmap_new();
	if (!ing->devices || !ing->policies || foldbuf_new(st, &ing->writes) != HERR_OK) {
		ingest_free(ing);
		return HERR_NOMEM;
	}
	*out = ing;
	return HERR_OK;
}

static int free_device(void *ctx, const char *key, void *value)
{
	(void)ctx;
	(void)key;
	free(value);
	return 0;
}

static int free_policy(void *ctx, const char *key, void *value)
{
	struct policy_entry *e = value;

	(void)ctx;
	(void)key;
	free(e->policy);
	free(e);
	return 0;
}

void ingest_forget(struct ingest *ing)
{
	strmap_each(ing->devices, free_device, NULL);
	strmap_each(ing->policies, free_policy, NULL);
	strmap_free(ing->devices);
	strmap_free(ing->policies);
	ing->devices = strmap_new();
	ing->policies = strmap_new();
}

void ingest_free(struct ingest *ing)
{
	if (!ing)
		return;
	if (ing->devices) {
		strmap_each(ing->devices, free_device, NULL);
		strmap_free(ing->devices);
	}
	if (ing->policies) {
		strmap_each(ing->policies, free_policy, NULL);
		strmap_free(ing->policies);
	}
	foldbuf_free(ing->writes);
	free(ing);
}

const struct ingest_stats *ingest_stats(const struct ingest *ing)
{
	return &ing->stats;
}

/* 1 if any component of a dotted name is in the sensitive catalogue. */
static int name_sensitive(const char *dotted)
{
	const char *p = dotted;

	while (*p) {
		size_t n = strcspn(p, ".");

		if (sensitive_classify(p, n) != SENSITIVE_NONE)
			return 1;
		p += n;
		if (*p == '.')
			p++;
	}
	return 0;
}

/* Device id's model into *model (the cache's copy). HERR_NOTFOUND for a device the store does not
 * know; a failed read or allocation is not cached. */
static enum herr device_model(struct ingest *ing, const char *id, int64_t now, const char **model)
{
	struct device_entry *e = ing->devices ? strmap_get(ing->devices, id) : NULL;
	enum herr rc;

	*model = NULL;
	if (e && now - e->loaded < INGEST_CACHE_S) {
		*model = e->model;
		return HERR_OK;
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !ing->devices || strmap_put(ing->devices, id, e, NULL) != HERR_OK) {
			free(e);
			return HERR_NOMEM;
		}
	}
	e->loaded = 0;
	rc = store_device_model(ing->store, id, e->model);
	if (rc != HERR_OK)
		return rc;
	e->loaded = now;
	*model = e->model;
	return HERR_OK;
}

/* The model's policy into *out, NULL if it has none (or the stored one no longer parses: then
 * nothing is kept). A policy that could not be read (the store failed, or memory ran out) is an
 * error and is not cached: caching "none" would drop every field of messages that are then
 * acknowledged. */
static enum herr model_policy(struct ingest *ing, const char *model, int64_t now,
			      const struct policy **out)
{
	struct policy_entry *e = ing->policies ? strmap_get(ing->policies, model) : NULL;
	struct policy *pol = NULL;
	char *text = NULL, why[256];
	enum herr rc;

	*out = NULL;
	if (e && now - e->loaded < INGEST_CACHE_S) {
		*out = e->policy;
		return HERR_OK;
	}
	rc = store_model_get_policy(ing->store, model, &text);
	if (rc == HERR_NOTFOUND)
		rc = HERR_OK; /* a model the store does not know has no policy */
	if (rc != HERR_OK)
		return rc;
	if (text) {
		pol = calloc(1, sizeof(*pol));
		if (!pol) {
			free(text);
			return HERR_NOMEM;
		}
		/* Stored policies were validated when set; one that no longer parses keeps nothing. */
		if (policy_parse((const uint8_t *)text, strlen(text), pol, why, sizeof(why)) != HERR_OK) {
			log_err("model %s: stored policy is invalid (%s); keeping nothing", model, why);
			free(pol);
			pol = NULL;
		}
		free(text);
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !ing->policies || strmap_put(ing->policies, model, e, NULL) != HERR_OK) {
			free(e);
			free(pol);
			return HERR_NOMEM;
		}
	}
	free(e->policy);
	e->policy = pol; /* ownership passed */
	e->loaded = now;
	*out = pol;
	return HERR_OK;
}

enum herr ingest_seen(struct ingest *ing, const char *id, int64_t now)
{
	const struct policy *pol;
	const char *model;
	enum herr rc;

	if ((rc = device_model(ing, id, now, &model)) != HERR_OK ||
	    (rc = model_policy(ing, model, now, &pol)) != HERR_OK)
		return rc;
	return foldbuf_seen(ing->writes, id, now - now % (pol ? pol->last_seen_bucket_s : INGEST_DEFAULT_LAST_SEEN_S));
}

enum herr ingest_telemetry(struct ingest *ing, const char *id, const uint8_t *payload, size_t len,
			   int64_t now)
{
	struct minimize_result *r = &ing->result;
	const struct policy *pol;
	const char *model, *why = NULL;
	uint32_t seen_s;
	enum herr rc;
	size_t i;

	ing->stats.messages++;
	if ((rc = device_model(ing, id, now, &model)) != HERR_OK ||
	    (rc = model_policy(ing, model, now, &pol)) != HERR_OK)
		return rc;
	seen_s = pol ? pol->last_seen_bucket_s : INGEST_DEFAULT_LAST_SEEN_S;
	if (foldbuf_seen(ing->writes, id, now - now % seen_s) != HERR_OK)
		return HERR_STORE;
	rc = minimize_apply(pol, payload, len, r, &why);
	if (rc == HERR_NOMEM)
		return rc; /* not the payload's fault: it is not counted, nor acknowledged */
	if (rc != HERR_OK) {
		ing->stats.invalid_payloads++;
		log_debug("%s: telemetry dropped whole: %s", id, why ? why : "invalid");
		return foldbuf_dropped(ing->writes, model, "(invalid payload)", 0, 1) == HERR_OK ? HERR_OK : HERR_STORE;
	}
	for (i = 0; i < r->count; i++) {
		const struct minimize_value *v = &r->values[i];
		const struct policy_field *f = &pol->fields[v->field];
		/* Unaggregated fields still never get a per-message time: they are kept as the last
		 * value of the last-seen bucket. */
		uint32_t bucket = f->agg == POLICY_AGG_NONE ? seen_s : f->bucket_s;
		struct store_sample s = {
			.device_id = id, .field = f->path, .bucket_start = now - now % bucket,
			.bucket_s = bucket, .retention_days = f->retention_days,
			.agg = agg_names[f->agg == POLICY_AGG_NONE ? POLICY_AGG_LAST : f->agg], .n = 1,
			.value = v->number, .text = v->type == POLICY_STRING ? v->text : NULL,
		};

		if (foldbuf_sample(ing->writes, &s) != HERR_OK)
			return HERR_STORE;
		ing->stats.values_kept++;
	}
	for (i = 0; i < r->dropped_names; i++) {
		/* Each distinct dropped name counts once per message. */
		if (foldbuf_dropped(ing->writes, model, r->dropped[i], name_sensitive(r->dropped[i]), 1) != HERR_OK)
			return HERR_STORE;
	}
	ing->stats.fields_dropped += r->dropped_count;
	return HERR_OK;
}

enum herr ingest_flush(struct ingest *ing)
{
	enum herr rc = foldbuf_flush(ing->writes);

	ing->stats.rows_written = foldbuf_stats(ing->writes)->rows_written;
	return rc;
}

void ingest_discard(struct ingest *ing)
{
	foldbuf_discard(ing->writes);
}
