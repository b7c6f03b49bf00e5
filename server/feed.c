#include "server/feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/acl.h"
#include "server/record.h"

/* The watermark is written when records went out, and at least this often otherwise. */
#define FEED_PERSIST_S 600

struct feed {
	struct store *store;
	struct broker *broker;
	int64_t until;       /* records of buckets closed at or before this were published */
	int64_t persisted;   /* the watermark the store holds */
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

/* One record out to the integration sessions, QoS 1, not retained. */
static int publish(void *ctx, const struct record *r)
{
	struct feed *f = ctx;
	char topic[128];
	enum herr rc = HERR_TOOBIG;

	if ((size_t)snprintf(topic, sizeof(topic), ACL_PREFIX "%s/telemetry", r->device) < sizeof(topic))
		rc = broker_publish(f->broker, topic, (const uint8_t *)r->json, r->len, 1, 0);
	if (rc != HERR_OK)
		log_warn("feed: record of %s at %lld not published: %s", r->device, (long long)r->bucket_start,
			 herr_str(rc));
	return rc == HERR_OK ? 0 : -1;
}

enum herr feed_run(struct feed *f, int64_t now, size_t *records)
{
	int64_t until = now < f->until + FEED_STEP_S ? now : f->until + FEED_STEP_S;
	size_t published = 0;
	enum herr rc;

	if (records)
		*records = 0;
	if (until <= f->until)
		return HERR_OK;
	rc = record_closed(f->store, f->until, until, publish, f, &published, NULL);
	if (rc != HERR_OK)
		return rc;
	f->until = until;
	if (records)
		*records = published;
	if (published > 0 || f->until - f->persisted >= FEED_PERSIST_S) {
		if (store_feed_set(f->store, f->until) == HERR_OK)
			f->persisted = f->until;
	}
	return HERR_OK;
}
