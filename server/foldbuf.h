/* foldbuf: the telemetry writes of one group commit, merged in memory before they reach the store.
 * A device that sends several messages within one commit updates the same aggregate row, the
 * same last-seen row and the same dropped-field counters each time; here those updates are folded
 * into one write per row, and ingest hands them to the store when the endpoint commits (or sooner,
 * inside the same transaction, when the buffer is full). The store's rows come out exactly as if
 * every sample had been written on its own (tests/unit/test_foldbuf.c checks that against a store
 * written sample by sample).
 *
 * Nothing here outlives the transaction: the endpoint flushes before every commit, and a PUBACK
 * only follows the commit, so a crash loses nothing that was acknowledged. Not thread-safe. */
#ifndef HEARTH_FOLDBUF_H
#define HEARTH_FOLDBUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "server/store.h"

/* Rows held at most before they are written out early (each ~0.5 KiB). */
#define FOLDBUF_ROWS 1024

struct foldbuf;

struct foldbuf_stats {
	uint64_t samples, rows_written, flushes;
};

/* The buffer writes into st; *out is NULL on HERR_NOMEM. */
enum herr foldbuf_new(struct store *st, struct foldbuf **out);
void foldbuf_free(struct foldbuf *fb);

/* Fold one sample (s->n >= 1) into its row: mean adds up, min/max keep the extreme, last/none/
 * count take the newest value and text. Strings are copied. Errors are the store's (from an early
 * flush) or HERR_INVALID for a sample the store would refuse. */
enum herr foldbuf_sample(struct foldbuf *fb, const struct store_sample *s);
/* Device id was seen in the bucket starting at bucket_start (the newest bucket wins). */
enum herr foldbuf_seen(struct foldbuf *fb, const char *device_id, int64_t bucket_start);
/* Field name of model was dropped count more times (sensitive: any call's flag wins). */
enum herr foldbuf_dropped(struct foldbuf *fb, const char *model, const char *field, int sensitive,
			  int64_t count);

/* Write every held row into the store's open transaction, in the order rows were first touched,
 * and empty the buffer. On an error the buffer is emptied too: the transaction is spoiled and will
 * be rolled back, and its messages were not acknowledged. */
enum herr foldbuf_flush(struct foldbuf *fb);
/* Forget the held rows unwritten (the transaction they belong to was rolled back). */
void foldbuf_discard(struct foldbuf *fb);
size_t foldbuf_held(const struct foldbuf *fb);
const struct foldbuf_stats *foldbuf_stats(const struct foldbuf *fb);

#endif
