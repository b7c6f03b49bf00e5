/* broker: MQTT sessions and message routing for the endpoint, independent of sockets and TLS.
 * It owns sessions (subscriptions, QoS 1 messages in flight and queued, the will), retained
 * messages (per device, persisted through the store), and the ACL decisions. The connection layer
 * feeds it parsed packets and gives it a sink to send through; nothing here blocks.
 *
 * Routing is O(1) per message for devices: every topic a device may touch lies in its own subtree,
 * so a message is offered only to the session of the device whose subtree holds the topic. The
 * telemetry topics are the exception: raw device telemetry goes to ingest and to nobody else, and
 * the minimized records hearth publishes there also reach the (few) integration clients. */
#ifndef HEARTH_BROKER_H
#define HEARTH_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "server/acl.h"
#include "server/mqtt_codec.h"
#include "server/store.h"

struct broker;
struct broker_session;

/* Retained topics per device: a device has few (status, manifests). */
#define BROKER_MAX_RETAINED 64

struct broker_limits {
	size_t max_subscriptions;   /* per session */
	size_t max_inflight;        /* QoS 1 messages sent and not yet acknowledged, per session */
	size_t max_queued;          /* QoS 1 messages waiting, per session (offline or window full) */
	size_t max_retained;        /* retained topics per device */
};

/* How the broker reaches a connection. conn is the connection layer's own handle. */
struct broker_sink {
	/* Queue an encoded packet for sending; -1 if the connection cannot take it (then the broker
	 * treats the message as not sent). */
	int (*send)(void *conn, const uint8_t *pkt, size_t len);
	/* Close the connection soon (takeover, revocation); reason is static, for the log. The
	 * broker has already detached it: the connection must not call broker_disconnect. */
	void (*close)(void *conn, const char *reason);
};

/* Counters the endpoint exposes (and later /metrics). */
struct broker_stats {
	uint64_t messages_in, messages_out, queued_dropped, retained_stored;
	uint64_t acks_recorded, acks_invalid;   /* manifest acknowledgements on hearth/v1/<id>/ack */
};

enum herr broker_new(const struct broker_limits *limits, const struct broker_sink *sink,
		     struct store *store, struct broker **out);
void broker_free(struct broker *b);
struct ingest;
/* Telemetry PUBLISHes go through ing (minimized into the store) before anything else happens. */
void broker_set_ingest(struct broker *b, struct ingest *ing);
/* New limits (SIGHUP); they apply to the next decision, nothing already held is dropped. */
void broker_set_limits(struct broker *b, const struct broker_limits *limits);
const struct broker_stats *broker_stats(const struct broker *b);

/* CONNECT from an admitted device or client (id = its certificate CN, role from the store; the
 * codec already parsed c). Returns a CONNACK code; on MQTT_CONNACK_ACCEPTED *session is set and
 * *present says whether a persistent session was resumed. An existing connection of the same
 * identity is closed. */
uint8_t broker_connect(struct broker *b, const char *id, enum acl_role role, void *conn,
		       const struct mqtt_connect *c, struct broker_session **session, int *present);
/* After the CONNACK went out: resend what was in flight, drain the queue. */
void broker_resume(struct broker *b, struct broker_session *s);
/* The connection is gone. graceful = a DISCONNECT was received (no will). */
void broker_disconnect(struct broker *b, struct broker_session *s, int graceful);

/* A PUBLISH from the session's device. HERR_INVALID = forbidden topic (close the connection);
 * HERR_STORE = could not be stored durably (do not acknowledge; the caller's transaction is lost);
 * HERR_NOMEM, HERR_NOTFOUND (device gone from the store, anything else) = not taken (close
 * without acknowledging). An ack (hearth/v1/<id>/ack, server/ack.h) is recorded in the store, then routed
 * like any message. */
enum herr broker_publish_in(struct broker *b, struct broker_session *s, const struct mqtt_publish *p);
/* SUBSCRIBE: fills codes (one per filter) and queues retained messages afterwards via
 * broker_after_subscribe, which must be called once the SUBACK has been sent. */
void broker_subscribe(struct broker *b, struct broker_session *s, const struct mqtt_subscribe *sub,
		      uint8_t *codes);
void broker_after_subscribe(struct broker *b, struct broker_session *s, const struct mqtt_subscribe *sub,
			    const uint8_t *codes);
void broker_unsubscribe(struct broker *b, struct broker_session *s, const struct mqtt_subscribe *sub);
/* PUBACK from the device for one of our QoS 1 messages. */
void broker_puback(struct broker *b, struct broker_session *s, uint16_t packet_id);

/* Server-side publish (OTA manifests, pin sets): to any topic, optionally retained. */
enum herr broker_publish(struct broker *b, const char *topic, const uint8_t *payload, size_t len,
			 uint8_t qos, int retain);

/* Close the live connection of a device (revocation); 1 if there was one. */
int broker_kick(struct broker *b, const char *id, const char *reason);

/* A decommissioned device: close its connection and drop its session and retained messages from
 * memory (the store already deleted them). Returns how many retained messages were dropped. */
size_t broker_forget(struct broker *b, const char *id);

const char *broker_session_id(const struct broker_session *s);

#endif
