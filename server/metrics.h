/* metrics: what /metrics shows, as a snapshot the endpoint's loop copies out of its counters
 * (so the REST thread never reads them while they change), and its Prometheus text rendering. */
#ifndef HEARTH_METRICS_H
#define HEARTH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "server/bridge.h"
#include "server/broker.h"
#include "server/conn.h"
#include "server/ingest.h"

/* Upper bounds (seconds) of the group-commit latency histogram's buckets. */
#define METRICS_COMMIT_BUCKETS 9
extern const double metrics_commit_bounds[METRICS_COMMIT_BUCKETS];

struct metrics_snap {
	struct endpoint_stats ep;
	struct broker_stats broker;
	struct ingest_stats ingest;
	size_t connections;
	int store_outage;          /* 1 while the store cannot take messages (server/conn.h) */
	uint64_t outage_unacked;   /* messages not acknowledged during the current or last outage */
	uint64_t commit_le[METRICS_COMMIT_BUCKETS], commit_count; /* cumulative, as Prometheus wants */
	double commit_sum;
	struct bridge_stats bridge;
	uint64_t memory_returns[2]; /* give-backs of freed memory: by the event loop, by handshake threads */
};

/* Render s into buf (NUL-terminated, cut at size); returns the length written. */
size_t metrics_render(const struct metrics_snap *s, char *buf, size_t size);

#endif
