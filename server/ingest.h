/* ingest: telemetry from the endpoint into the store, minimized first. For each message it finds
 * the device's model policy, runs minimize_apply, and folds each kept value into the aggregate of
 * its time bucket (server receive time, truncated to the bucket: a device's clock never places
 * data). Dropped fields are counted per model and normalised name. Its writes are merged per row
 * in memory (server/foldbuf.h) and go into the caller's transaction (the endpoint's group commit)
 * at ingest_flush, which the caller runs before committing: a PUBACK follows the commit. */
#ifndef HEARTH_INGEST_H
#define HEARTH_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "server/store.h"

/* How long a device's model and a model's policy are cached before they are read again. */
#define INGEST_CACHE_S 10
/* A model without a policy keeps only a last-seen time, this coarse. */
#define INGEST_DEFAULT_LAST_SEEN_S 3600

struct ingest;

struct ingest_stats {
	uint64_t messages, values_kept, fields_dropped, invalid_payloads;
	uint64_t rows_written;    /* store upserts after merging (aggregates, last-seen, dropped counts) */
};

enum herr ingest_new(struct store *st, struct ingest **out);
void ingest_free(struct ingest *ing);
/* Forget cached models and policies (SIGHUP, or a policy change). */
void ingest_forget(struct ingest *ing);
const struct ingest_stats *ingest_stats(const struct ingest *ing);

/* One telemetry payload of device id, received at now. A payload that is not a JSON object is
 * dropped whole and counted (as field "(invalid payload)"), not an error. HERR_STORE if the store
 * failed, HERR_NOMEM if memory ran out, HERR_NOTFOUND for a device the store does not know: the
 * message must not be acknowledged. */
enum herr ingest_telemetry(struct ingest *ing, const char *id, const uint8_t *payload, size_t len,
			   int64_t now);

/* Device id showed it is alive without telemetry (its status, at now): its last-seen bucket, as
 * coarse as its model's policy says, so that readiness counts (pins) see devices that send no
 * telemetry. Errors as ingest_telemetry's. */
enum herr ingest_seen(struct ingest *ing, const char *id, int64_t now);

/* Write what the messages since the last flush keep into the store's open transaction; errors are
 * the store's (the transaction must then be rolled back). Before every commit of that transaction. */
enum herr ingest_flush(struct ingest *ing);
/* The transaction was rolled back: forget what was not written yet. */
void ingest_discard(struct ingest *ing);

#endif
