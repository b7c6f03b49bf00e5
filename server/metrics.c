#include "server/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

const double metrics_commit_bounds[METRICS_COMMIT_BUCKETS] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
								0.1, 0.25, 1.0 };

static void emit(char *buf, size_t size, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (*n + 1 >= size)
		return;
	va_start(ap, fmt);
	w = vsnprintf(buf + *n, size - *n, fmt, ap);
	va_end(ap);
	if (w > 0)
		*n = (size_t)w < size - *n ? *n + (size_t)w : size - 1;
}

size_t metrics_render(const struct metrics_snap *s, char *buf, size_t size)
{
	size_t n = 0, i;

	if (size == 0)
		return 0;
	buf[0] = '\0';
	emit(buf, size, &n, "# HELP hearth_connections MQTT connections open now.\n# TYPE hearth_connections gauge\n"
	     "hearth_connections %zu\n", s->connections);
	emit(buf, size, &n, "# HELP hearth_store_outage 1 while the store cannot take messages: publishing devices "
	     "are not read and nothing is acknowledged.\n# TYPE hearth_store_outage gauge\nhearth_store_outage %d\n",
	     s->store_outage);
	emit(buf, size, &n, "# HELP hearth_store_outage_unacked Messages not acknowledged in the current or last store "
	     "outage (their devices send them again).\n# TYPE hearth_store_outage_unacked gauge\n"
	     "hearth_store_outage_unacked %" PRIu64 "\n", s->outage_unacked);
	emit(buf, size, &n, "# HELP hearth_memory_returned_total Times freed heap and page cache went back to the "
	     "kernel after connections came and went, by thread.\n# TYPE hearth_memory_returned_total counter\n"
	     "hearth_memory_returned_total{by=\"loop\"} %" PRIu64 "\nhearth_memory_returned_total{by=\"handshake\"} %"
	     PRIu64 "\n", s->memory_returns[0], s->memory_returns[1]);
	emit(buf, size, &n, "# HELP hearth_accepted_total TCP connections accepted.\n# TYPE hearth_accepted_total counter\n"
	     "hearth_accepted_total %" PRIu64 "\n", s->ep.accepted);
	emit(buf, size, &n, "# HELP hearth_handshakes_total TLS handshakes completed, by kind.\n"
	     "# TYPE hearth_handshakes_total counter\n"
	     "hearth_handshakes_total{kind=\"full\"} %" PRIu64 "\nhearth_handshakes_total{kind=\"resumed\"} %" PRIu64 "\n",
	     s->ep.handshakes - s->ep.resumed, s->ep.resumed);
	emit(buf, size, &n, "# HELP hearth_messages_total MQTT messages, by direction.\n# TYPE hearth_messages_total counter\n"
	     "hearth_messages_total{direction=\"in\"} %" PRIu64 "\nhearth_messages_total{direction=\"out\"} %" PRIu64 "\n",
	     s->broker.messages_in, s->broker.messages_out);
	emit(buf, size, &n, "# HELP hearth_refused_total Connections refused or closed, by reason.\n# TYPE hearth_refused_total counter\n");
	emit(buf, size, &n, "hearth_refused_total{reason=\"handshake\"} %" PRIu64 "\n", s->ep.refused_handshake);
	emit(buf, size, &n, "hearth_refused_total{reason=\"connection_limit\"} %" PRIu64 "\n", s->ep.refused_connections);
	emit(buf, size, &n, "hearth_refused_total{reason=\"address_limit\"} %" PRIu64 "\n", s->ep.refused_address);
	emit(buf, size, &n, "hearth_refused_total{reason=\"connect\"} %" PRIu64 "\n", s->ep.refused_connect);
	emit(buf, size, &n, "hearth_refused_total{reason=\"too_big\"} %" PRIu64 "\n", s->ep.closed_too_big);
	emit(buf, size, &n, "hearth_refused_total{reason=\"protocol\"} %" PRIu64 "\n", s->ep.closed_protocol);
	emit(buf, size, &n, "hearth_refused_total{reason=\"acl\"} %" PRIu64 "\n", s->ep.closed_acl);
	emit(buf, size, &n, "hearth_refused_total{reason=\"timeout\"} %" PRIu64 "\n", s->ep.closed_timeout);
	emit(buf, size, &n, "hearth_refused_total{reason=\"slow\"} %" PRIu64 "\n", s->ep.closed_slow);
	emit(buf, size, &n, "hearth_refused_total{reason=\"revoked\"} %" PRIu64 "\n", s->ep.closed_revoked);
	emit(buf, size, &n, "# HELP hearth_queued_dropped_total QoS 1 messages dropped from full session queues.\n"
	     "# TYPE hearth_queued_dropped_total counter\nhearth_queued_dropped_total %" PRIu64 "\n",
	     s->broker.queued_dropped);
	emit(buf, size, &n, "# HELP hearth_telemetry_messages_total Telemetry messages minimized and stored.\n"
	     "# TYPE hearth_telemetry_messages_total counter\nhearth_telemetry_messages_total %" PRIu64 "\n",
	     s->ingest.messages);
	emit(buf, size, &n, "# HELP hearth_telemetry_values_kept_total Values kept by policies.\n"
	     "# TYPE hearth_telemetry_values_kept_total counter\nhearth_telemetry_values_kept_total %" PRIu64 "\n",
	     s->ingest.values_kept);
	emit(buf, size, &n, "# HELP hearth_telemetry_fields_dropped_total Fields dropped by minimization.\n"
	     "# TYPE hearth_telemetry_fields_dropped_total counter\nhearth_telemetry_fields_dropped_total %" PRIu64 "\n",
	     s->ingest.fields_dropped);
	emit(buf, size, &n, "# HELP hearth_telemetry_rows_written_total Telemetry upserts the store ran: kept values, "
	     "last-seen times and dropped-field counts, merged per row within each group commit.\n"
	     "# TYPE hearth_telemetry_rows_written_total counter\nhearth_telemetry_rows_written_total %" PRIu64 "\n",
	     s->ingest.rows_written);
	emit(buf, size, &n, "# HELP hearth_telemetry_invalid_total Payloads dropped whole (not a JSON object).\n"
	     "# TYPE hearth_telemetry_invalid_total counter\nhearth_telemetry_invalid_total %" PRIu64 "\n",
	     s->ingest.invalid_payloads);
	emit(buf, size, &n, "# HELP hearth_feed_records_total Minimized records published for closed buckets.\n"
	     "# TYPE hearth_feed_records_total counter\nhearth_feed_records_total %" PRIu64 "\n", s->ep.feed_records);
	emit(buf, size, &n, "# HELP hearth_bridge_connected 1 while the bridge is connected to its broker.\n"
	     "# TYPE hearth_bridge_connected gauge\nhearth_bridge_connected %d\n", s->bridge.connected);
	emit(buf, size, &n, "# HELP hearth_bridge_records_sent_total Records the bridge's broker acknowledged.\n"
	     "# TYPE hearth_bridge_records_sent_total counter\nhearth_bridge_records_sent_total %" PRIu64 "\n",
	     s->bridge.records_sent);
	emit(buf, size, &n, "# HELP hearth_bridge_outbox_rows Records waiting in the bridge's outbox.\n"
	     "# TYPE hearth_bridge_outbox_rows gauge\nhearth_bridge_outbox_rows %" PRIu64 "\n", s->bridge.outbox_rows);
	emit(buf, size, &n, "# HELP hearth_bridge_dropped_total Records dropped from the bridge's outbox unsent.\n"
	     "# TYPE hearth_bridge_dropped_total counter\nhearth_bridge_dropped_total %" PRIu64 "\n", s->bridge.dropped);
	emit(buf, size, &n, "# HELP hearth_bridge_reconnects_total Connection attempts to the bridge's broker after "
	     "the first.\n# TYPE hearth_bridge_reconnects_total counter\nhearth_bridge_reconnects_total %" PRIu64 "\n",
	     s->bridge.reconnects);
	emit(buf, size, &n, "# HELP hearth_store_commit_seconds Group commit latency.\n# TYPE hearth_store_commit_seconds histogram\n");
	for (i = 0; i < METRICS_COMMIT_BUCKETS; i++)
		emit(buf, size, &n, "hearth_store_commit_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", metrics_commit_bounds[i], s->commit_le[i]);
	emit(buf, size, &n, "hearth_store_commit_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", s->commit_count);
	emit(buf, size, &n, "hearth_store_commit_seconds_sum %.6f\nhearth_store_commit_seconds_count %" PRIu64 "\n", s->commit_sum,
	     s->commit_count);
	return n;
}
