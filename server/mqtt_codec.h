/* mqtt_codec: MQTT 3.1.1 packets to and from bytes. Pure functions, no I/O and no allocation:
 * parsed fields point into the caller's packet buffer, which must outlive them. Every limit that a
 * client could push on is a parameter or a constant here, checked before anything is trusted.
 * Topic names and filters are validated and matched here too (mqtt_topic_*). */
#ifndef HEARTH_MQTT_CODEC_H
#define HEARTH_MQTT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"

enum mqtt_type {
	MQTT_CONNECT = 1, MQTT_CONNACK, MQTT_PUBLISH, MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL,
	MQTT_PUBCOMP, MQTT_SUBSCRIBE, MQTT_SUBACK, MQTT_UNSUBSCRIBE, MQTT_UNSUBACK, MQTT_PINGREQ,
	MQTT_PINGRESP, MQTT_DISCONNECT,
};

/* CONNACK return codes (3.1.1 §3.2.2.3). */
enum mqtt_connack_rc {
	MQTT_CONNACK_ACCEPTED = 0, MQTT_CONNACK_BAD_PROTOCOL = 1, MQTT_CONNACK_BAD_CLIENT_ID = 2,
	MQTT_CONNACK_UNAVAILABLE = 3, MQTT_CONNACK_BAD_CREDENTIALS = 4, MQTT_CONNACK_NOT_AUTHORIZED = 5,
};

#define MQTT_SUBACK_FAILURE 0x80
/* Topic levels beyond this are refused: deep topics only cost the matcher. */
#define MQTT_MAX_LEVELS 32
/* Filters in one SUBSCRIBE/UNSUBSCRIBE we parse; more is refused as malformed-by-policy. */
#define MQTT_MAX_FILTERS 16
/* Fixed header: 1 type byte + at most 4 remaining-length bytes. */
#define MQTT_MAX_HEADER 5

/* A length-prefixed string or binary field, pointing into the packet. Not NUL-terminated. */
struct mqtt_str {
	const uint8_t *p;
	uint16_t len;
};

struct mqtt_connect {
	struct mqtt_str protocol_name;  /* "MQTT" for 3.1.1 */
	uint8_t protocol_level;         /* 4 for 3.1.1; the caller answers other levels with rc 1 */
	int clean_session;
	uint16_t keepalive;             /* seconds; 0 = none */
	struct mqtt_str client_id;      /* may be empty */
	int will;                       /* will_* valid only if set */
	uint8_t will_qos;
	int will_retain;
	struct mqtt_str will_topic;     /* a valid topic name */
	struct mqtt_str will_payload;   /* binary */
	int has_username, has_password;
	struct mqtt_str username, password;
};

struct mqtt_publish {
	int dup, retain;
	uint8_t qos;                    /* 0, 1 or 2 */
	struct mqtt_str topic;          /* a valid topic name: no wildcards, no U+0000, valid UTF-8 */
	uint16_t packet_id;             /* non-zero when qos > 0, else 0 */
	const uint8_t *payload;
	size_t payload_len;
};

struct mqtt_subscribe {             /* SUBSCRIBE and UNSUBSCRIBE */
	uint16_t packet_id;
	size_t count;                   /* >= 1 */
	struct mqtt_str filters[MQTT_MAX_FILTERS];
	uint8_t qos[MQTT_MAX_FILTERS];  /* requested QoS (SUBSCRIBE only) */
	/* A syntactically bad filter in a SUBSCRIBE is not a framing error: it is answered with
	 * 0x80 for that filter (3.1.1 allows closing too; we keep the connection). */
	uint8_t valid[MQTT_MAX_FILTERS];
};

struct mqtt_packet {
	enum mqtt_type type;
	uint8_t flags;                  /* low nibble of the first byte */
	union {
		struct mqtt_connect connect;
		struct mqtt_publish publish;
		struct mqtt_subscribe subscribe;
		uint16_t packet_id;     /* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, SUBACK (first 2 bytes) */
		struct {
			uint8_t session_present, rc;
		} connack;
	} u;
};

/* Find the next packet in buf[0..len). On HERR_OK, *total is the whole packet's size
 * (header + remaining length) if it is complete in buf, or 0 if more bytes are needed.
 * HERR_INVALID for a remaining length longer than 4 bytes; HERR_TOOBIG if the packet would
 * exceed max_packet — decided from the header alone, before anything is buffered. */
enum herr mqtt_frame(const uint8_t *buf, size_t len, size_t max_packet, size_t *total);

/* Parse one whole packet (as delimited by mqtt_frame). HERR_INVALID for anything malformed
 * under 3.1.1 (reserved flags, QoS 3, packet id 0, bad UTF-8, wildcards in a topic name, too many
 * levels, trailing bytes, ...); *why (if not NULL) gets a static one-line reason for the log,
 * or NULL on success. */
enum herr mqtt_parse(const uint8_t *pkt, size_t len, struct mqtt_packet *out, const char **why);

/* Topic names and filters (3.1.1 §4.7), bounded by MQTT_MAX_LEVELS. */
int mqtt_topic_valid_name(const uint8_t *t, size_t len);
int mqtt_topic_valid_filter(const uint8_t *f, size_t len);
/* 1 if the (valid) filter matches the (valid) topic name. Wildcards never match a topic that
 * starts with '$' at the first level. */
int mqtt_topic_matches(const uint8_t *filter, size_t flen, const uint8_t *topic, size_t tlen);

/* Encoders: write one packet into out[0..size) and return its length, or 0 if it does not fit
 * or cannot be sent as asked (packet id 0, QoS > 2, DUP with QoS 0, a reserved return code). */
size_t mqtt_write_connack(uint8_t *out, size_t size, int session_present, uint8_t rc);
size_t mqtt_write_ack(uint8_t *out, size_t size, enum mqtt_type type, uint16_t packet_id); /* PUBACK..UNSUBACK */
size_t mqtt_write_suback(uint8_t *out, size_t size, uint16_t packet_id, const uint8_t *codes, size_t n);
size_t mqtt_write_pingresp(uint8_t *out, size_t size);
/* PUBLISH; packet_id is ignored for qos 0. */
size_t mqtt_write_publish(uint8_t *out, size_t size, const uint8_t *topic, size_t topic_len,
			  const uint8_t *payload, size_t payload_len, uint8_t qos, int retain, int dup,
			  uint16_t packet_id);
/* Client-side packets, for tests and the reference device: CONNECT, SUBSCRIBE, PINGREQ,
 * DISCONNECT are written by the tests' own clients, not here. */

/* Size of the PUBLISH mqtt_write_publish would produce, to size a buffer first; 0 if it cannot be
 * encoded (topic over 65535 bytes, remaining length over 268,435,455, QoS > 2). */
size_t mqtt_publish_size(size_t topic_len, size_t payload_len, uint8_t qos);

#endif
