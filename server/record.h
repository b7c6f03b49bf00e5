/* record: the minimized record of one device and one closed time bucket, as JSON text, built from
 * what the store holds for it and nothing else (never a raw payload, never a per-message time,
 * nothing a policy dropped). The feed (integration clients) and the bridge (an external broker)
 * send the same records:
 *
 *   {"device":"<id>","bucket_start":<unix s>,"bucket_s":<s>,
 *    "values":{"<field>":{"agg":"mean","value":21.5,"n":120}, ...}}
 */
#ifndef HEARTH_RECORD_H
#define HEARTH_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "server/store.h"

/* A record is at most this large (a policy keeps at most 64 fields of bounded size). */
#define RECORD_MAX (64 * 1024)

/* One record, valid only during the call: device is a store id; json is NUL-terminated and len
 * long (<= RECORD_MAX); expires_at is when the shortest-kept of its values passes its retention
 * (the store deletes it then). */
struct record {
	const char *device;
	int64_t bucket_start, expires_at;
	uint32_t bucket_s;
	const char *json;
	size_t len;
};
/* A non-zero return counts the record as failed (the callee logs why). */
typedef int (*record_fn)(void *ctx, const struct record *r);

/* The records of the buckets that closed in (after, until], by device and bucket, each handed to
 * fn; *delivered and *failed (may be NULL) count them (a record that could not be built counts as
 * failed). HERR_STORE if the store could not be read to the end: records handed over before the
 * failure count as not sent (a caller that stores them rolls back; one that publishes them may
 * publish them again). */
enum herr record_closed(struct store *st, int64_t after, int64_t until, record_fn fn, void *ctx,
			size_t *delivered, size_t *failed);

#endif
