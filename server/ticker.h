/* ticker: the server's background work that may take a while (signing manifests, deleting expired
 * telemetry), on a thread of its own with its own store handle, so the MQTT event loop never waits
 * for it. Once a second it moves firmware rollouts on (firmware_rollout_tick) and, when that issued
 * manifests, calls wake so the endpoint delivers them at once; once an hour (and at start) it
 * deletes telemetry past its retention, in chunks, and empties the WAL. */
#ifndef HEARTH_TICKER_H
#define HEARTH_TICKER_H

#include "common/herr.h"

struct ticker;

/* Start on data directory dir. wake(ctx) may be NULL; it is called from the ticker's thread. */
enum herr ticker_start(const char *dir, void (*wake)(void *ctx), void *ctx, struct ticker **out);
/* Stop (within a second: a tick's work ends between chunks) and free; t may be NULL. */
void ticker_stop(struct ticker *t);

#endif
