/* feed: the minimized telemetry stream. When a time bucket closes, what the store kept for it is
 * published on hearth/v1/<id>/telemetry, one JSON record per device and bucket, for integration
 * clients (Home Assistant, Node-RED) and whoever else may read that topic. The record is
 * record.h's: only what the store holds, never a raw payload, nothing a policy dropped.
 *
 * The feed keeps in the store how far it got, so buckets that closed while hearth was down are
 * published after a restart, up to FEED_CATCHUP_S back (older ones stay queryable in the store). */
#ifndef HEARTH_FEED_H
#define HEARTH_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "server/broker.h"
#include "server/store.h"

#define FEED_CATCHUP_S 86400
/* One run covers at most this much time, so a catch-up never stalls the event loop for long. */
#define FEED_STEP_S 3600

struct feed;

/* Start where the last run stopped (or at now, the first time ever). */
enum herr feed_new(struct store *st, struct broker *b, int64_t now, struct feed **out);
void feed_free(struct feed *f);

/* Publish the records of the buckets that closed since the last run, up to now; *records (may be
 * NULL) counts them. Must run outside any open transaction, after the messages received before
 * now were committed. HERR_STORE: nothing was skipped, the next run tries again. */
enum herr feed_run(struct feed *f, int64_t now, size_t *records);

#endif
