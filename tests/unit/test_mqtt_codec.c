/* Unit tests of server/mqtt_codec: every 3.1.1 rule the parser enforces, each with a raw byte
 * vector accepted and refused, the hostile inputs a client can send, encoder output against the
 * bytes the spec gives, write-then-parse round trips, and a topic-matching table. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/mqtt_codec.h"
#include "tests/unit/unit.h"

/* A byte vector and its length, as two arguments. */
#define BYTES(...) ((const uint8_t[]){ __VA_ARGS__ }), sizeof((const uint8_t[]){ __VA_ARGS__ })
#define S(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

#define MAX_PACKET (256 * 1024)

/* mqtt_parse, checking the promise about *why on the way. */
static enum herr parse(const uint8_t *b, size_t n, struct mqtt_packet *p)
{
	const char *why = "unset";
	enum herr rc;

	rc = mqtt_parse(b, n, p, &why);
	if (rc == HERR_OK) {
		ck_assert_ptr_null(why);
	} else {
		ck_assert_ptr_nonnull(why);
		ck_assert(why[0] != '\0');
	}
	return rc;
}

/* Refused, and for the expected reason: a vector refused for some other defect proves nothing. */
static void refused(const uint8_t *b, size_t n, const char *reason)
{
	static const struct mqtt_packet zero;
	struct mqtt_packet p;
	const char *why = NULL;

	memset(&p, 0xa5, sizeof(p));
	ck_assert_int_eq(mqtt_parse(b, n, &p, &why), HERR_INVALID);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, reason) != NULL, "why \"%s\" lacks \"%s\"", why, reason);
	/* nothing half-parsed is left behind */
	ck_assert_mem_eq(&p, &zero, sizeof(p));
}

static void accepted(const uint8_t *b, size_t n, enum mqtt_type type)
{
	struct mqtt_packet p;

	ck_assert_int_eq(parse(b, n, &p), HERR_OK);
	ck_assert_int_eq(p.type, type);
}

/* A packet under construction: body bytes, then a fixed header with a minimal remaining length. */
struct pkt {
	uint8_t *b;
	size_t n, cap;
};

static void pkt_init(struct pkt *k, size_t cap)
{
	k->b = malloc(cap);
	ck_assert_ptr_nonnull(k->b);
	k->n = MQTT_MAX_HEADER; /* room for the fixed header, written by pkt_done */
	k->cap = cap;
}

static void put_raw(struct pkt *k, const void *p, size_t n)
{
	ck_assert_uint_le(n, k->cap - k->n);
	memcpy(k->b + k->n, p, n);
	k->n += n;
}

static void put8(struct pkt *k, uint8_t v)
{
	put_raw(k, &v, 1);
}

static void put16(struct pkt *k, uint16_t v)
{
	put8(k, (uint8_t)(v >> 8));
	put8(k, (uint8_t)v);
}

static void put_str(struct pkt *k, const void *p, size_t n)
{
	put16(k, (uint16_t)n);
	put_raw(k, p, n);
}

static void put_cstr(struct pkt *k, const char *s)
{
	put_str(k, s, strlen(s));
}

/* Writes the fixed header in front of the body; returns the packet's start. */
static const uint8_t *pkt_done(struct pkt *k, uint8_t first, size_t *len)
{
	size_t rl = k->n - MQTT_MAX_HEADER, nb = 1, i;
	uint8_t vb[4];
	size_t v = rl;

	for (i = 0;; i++) {
		vb[i] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (!v)
			break;
		vb[i] |= 0x80;
		nb++;
	}
	k->b[MQTT_MAX_HEADER - nb - 1] = first;
	memcpy(k->b + MQTT_MAX_HEADER - nb, vb, nb);
	*len = 1 + nb + rl;
	return k->b + MQTT_MAX_HEADER - nb - 1;
}

static void pkt_free(struct pkt *k)
{
	free(k->b);
	k->b = NULL;
}

static int str_is(struct mqtt_str s, const char *want)
{
	return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

/* ---- mqtt_frame ---- */

START_TEST(frame_incomplete)
{
	size_t total = 99;

	ck_assert_int_eq(mqtt_frame(NULL, 0, MAX_PACKET, &total), HERR_OK);
	ck_assert_uint_eq(total, 0);
	total = 99;
	ck_assert_int_eq(mqtt_frame(BYTES(0x30), MAX_PACKET, &total), HERR_OK);
	ck_assert_uint_eq(total, 0);
	total = 99;
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x80), MAX_PACKET, &total), HERR_OK);
	ck_assert_uint_eq(total, 0);
	total = 99;
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x80, 0x80, 0x80), MAX_PACKET, &total), HERR_OK);
	ck_assert_uint_eq(total, 0);
	total = 99;
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x05, 0x00, 0x01, 'a'), MAX_PACKET, &total), HERR_OK);
	ck_assert_uint_eq(total, 0);
}
END_TEST

START_TEST(frame_complete)
{
	size_t total = 0;

	ck_assert_int_eq(mqtt_frame(BYTES(0xc0, 0x00), MAX_PACKET, &total), HERR_OK);
	ck_assert_uint_eq(total, 2);
	/* Only the first packet is delimited; the rest is the next one. */
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x03, 0x00, 0x01, 'a', 0xc0, 0x00), MAX_PACKET,
				    &total), HERR_OK);
	ck_assert_uint_eq(total, 5);
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x80, 0x01), 1000, &total), HERR_OK);
	ck_assert_uint_eq(total, 0);
}
END_TEST

START_TEST(frame_five_length_bytes)
{
	size_t total = 99;

	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0xff, 0xff, 0xff, 0xff, 0x01), SIZE_MAX, &total),
			 HERR_INVALID);
	ck_assert_uint_eq(total, 0);
	/* Known as soon as the fourth length byte says "continued". */
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x80, 0x80, 0x80, 0x80), SIZE_MAX, &total),
			 HERR_INVALID);
}
END_TEST

START_TEST(frame_toobig_from_header)
{
	size_t total = 99;

	/* 268,435,455 bytes claimed, only the 5 header bytes given. */
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0xff, 0xff, 0xff, 0x7f), MAX_PACKET, &total),
			 HERR_TOOBIG);
	ck_assert_uint_eq(total, 0);
	/* 200 MB. */
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x80, 0x80, 0x80, 0x64), MAX_PACKET, &total),
			 HERR_TOOBIG);
	/* 2 MiB. */
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x80, 0x80, 0x80, 0x01), MAX_PACKET, &total),
			 HERR_TOOBIG);
}
END_TEST

START_TEST(frame_max_packet_boundary)
{
	size_t total = 0;

	/* The largest remaining length: 1 + 4 + 268435455 bytes in all. */
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0xff, 0xff, 0xff, 0x7f), 268435460, &total), HERR_OK);
	ck_assert_uint_eq(total, 0);
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0xff, 0xff, 0xff, 0x7f), 268435459, &total),
			 HERR_TOOBIG);
	/* 16384 + 4 bytes of header. */
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x80, 0x80, 0x01), 16388, &total), HERR_OK);
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x80, 0x80, 0x01), 16387, &total), HERR_TOOBIG);
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x03, 0x00, 0x01, 'a'), 5, &total), HERR_OK);
	ck_assert_uint_eq(total, 5);
	ck_assert_int_eq(mqtt_frame(BYTES(0x30, 0x03, 0x00, 0x01, 'a'), 4, &total), HERR_TOOBIG);
}
END_TEST

START_TEST(frame_non_minimal_length)
{
	struct mqtt_packet p;
	size_t total = 0;

	/* 3.1.1 does not require the shortest encoding: 0x80 0x00 is a remaining length of 0. */
	ck_assert_int_eq(mqtt_frame(BYTES(0xc0, 0x80, 0x00), MAX_PACKET, &total), HERR_OK);
	ck_assert_uint_eq(total, 3);
	ck_assert_int_eq(parse(BYTES(0xc0, 0x80, 0x00), &p), HERR_OK);
	ck_assert_int_eq(p.type, MQTT_PINGREQ);
}
END_TEST

START_TEST(frame_stream_of_packets)
{
	static const uint8_t s[] = {
		0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
		0x30, 0x05, 0x00, 0x01, 't', 'h', 'i',
		0xc0, 0x00,
		0xe0, 0x00,
	};
	static const enum mqtt_type want[] = { MQTT_CONNECT, MQTT_PUBLISH, MQTT_PINGREQ,
					       MQTT_DISCONNECT };
	struct mqtt_packet p;
	size_t off = 0, total, i = 0;

	while (off < sizeof(s)) {
		ck_assert_int_eq(mqtt_frame(s + off, sizeof(s) - off, MAX_PACKET, &total), HERR_OK);
		ck_assert_uint_gt(total, 0);
		ck_assert_int_eq(parse(s + off, total, &p), HERR_OK);
		ck_assert_uint_lt(i, 4);
		ck_assert_int_eq(p.type, want[i++]);
		off += total;
	}
	ck_assert_uint_eq(i, 4);
}
END_TEST

/* ---- fixed header ---- */

START_TEST(header_reserved_types)
{
	refused(BYTES(0x00, 0x00), "reserved packet type");
	refused(BYTES(0xf0, 0x00), "reserved packet type");
}
END_TEST

START_TEST(header_reserved_flags)
{
	refused(BYTES(0x11, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00),
		"flags");
	refused(BYTES(0x21, 0x02, 0x00, 0x00), "flags");
	refused(BYTES(0x41, 0x02, 0x00, 0x01), "flags");
	refused(BYTES(0x52, 0x02, 0x00, 0x01), "flags");
	refused(BYTES(0x60, 0x02, 0x00, 0x01), "flags"); /* PUBREL needs 0x2 */
	refused(BYTES(0x63, 0x02, 0x00, 0x01), "flags");
	refused(BYTES(0x78, 0x02, 0x00, 0x01), "flags");
	refused(BYTES(0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00), "flags");
	refused(BYTES(0x83, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00), "flags");
	refused(BYTES(0x92, 0x03, 0x00, 0x01, 0x00), "flags");
	refused(BYTES(0xa0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'), "flags");
	refused(BYTES(0xb2, 0x02, 0x00, 0x01), "flags");
	refused(BYTES(0xc1, 0x00), "flags");
	refused(BYTES(0xd4, 0x00), "flags");
	refused(BYTES(0xe2, 0x00), "flags");
	accepted(BYTES(0x62, 0x02, 0x00, 0x01), MQTT_PUBREL);
	accepted(BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00), MQTT_SUBSCRIBE);
	accepted(BYTES(0xa2, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'), MQTT_UNSUBSCRIBE);
}
END_TEST

START_TEST(header_length_mismatch)
{
	/* mqtt_parse takes exactly one packet: more or fewer bytes than it claims is malformed. */
	refused(BYTES(0xc0, 0x00, 0x00), "remaining length");
	refused(BYTES(0x30, 0x05, 0x00, 0x01, 't'), "remaining length");
	refused(BYTES(0x30), "fixed header");
	refused(BYTES(0x30, 0x80), "fixed header");
	refused(BYTES(0x30, 0xff, 0xff, 0xff, 0xff, 0x01), "fixed header");
}
END_TEST

/* ---- PUBLISH ---- */

START_TEST(publish_qos0)
{
	/* Named, not a compound literal: the parsed fields point into it after the assert. */
	static const uint8_t b[] = {
		0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i',
	};
	struct mqtt_packet p;

	ck_assert_int_eq(parse(b, sizeof(b), &p), HERR_OK);
	ck_assert_int_eq(p.type, MQTT_PUBLISH);
	ck_assert_int_eq(p.u.publish.qos, 0);
	ck_assert_int_eq(p.u.publish.retain, 0);
	ck_assert_int_eq(p.u.publish.dup, 0);
	ck_assert_int_eq(p.u.publish.packet_id, 0);
	ck_assert(str_is(p.u.publish.topic, "a/b"));
	ck_assert_uint_eq(p.u.publish.payload_len, 2);
	ck_assert_mem_eq(p.u.publish.payload, "hi", 2);
}
END_TEST

START_TEST(publish_qos1_retain_dup)
{
	static const uint8_t b[] = {
		0x3b, 0x07, 0x00, 0x01, 't', 0x12, 0x34, 'x', 'y',
	};
	struct mqtt_packet p;

	ck_assert_int_eq(parse(b, sizeof(b), &p), HERR_OK);
	ck_assert_int_eq(p.u.publish.qos, 1);
	ck_assert_int_eq(p.u.publish.retain, 1);
	ck_assert_int_eq(p.u.publish.dup, 1);
	ck_assert_int_eq(p.u.publish.packet_id, 0x1234);
	ck_assert(str_is(p.u.publish.topic, "t"));
	ck_assert_uint_eq(p.u.publish.payload_len, 2);
	ck_assert_mem_eq(p.u.publish.payload, "xy", 2);
	ck_assert_int_eq(parse(BYTES(0x34, 0x05, 0x00, 0x01, 't', 0x00, 0x01), &p), HERR_OK);
	ck_assert_int_eq(p.u.publish.qos, 2);
	ck_assert_uint_eq(p.u.publish.payload_len, 0);
}
END_TEST

START_TEST(publish_empty_payload)
{
	struct mqtt_packet p;

	ck_assert_int_eq(parse(BYTES(0x31, 0x03, 0x00, 0x01, 't'), &p), HERR_OK);
	ck_assert_int_eq(p.u.publish.retain, 1);
	ck_assert_uint_eq(p.u.publish.payload_len, 0);
}
END_TEST

START_TEST(publish_qos3)
{
	refused(BYTES(0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01), "QoS is 3");
	refused(BYTES(0x37, 0x05, 0x00, 0x01, 't', 0x00, 0x01), "QoS is 3");
}
END_TEST

START_TEST(publish_dup_qos0)
{
	refused(BYTES(0x38, 0x03, 0x00, 0x01, 't'), "DUP");
	accepted(BYTES(0x3a, 0x05, 0x00, 0x01, 't', 0x00, 0x01), MQTT_PUBLISH);
}
END_TEST

START_TEST(publish_packet_id)
{
	refused(BYTES(0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00), "packet id is 0");
	refused(BYTES(0x34, 0x05, 0x00, 0x01, 't', 0x00, 0x00), "packet id is 0");
	refused(BYTES(0x32, 0x04, 0x00, 0x01, 't', 0x01), "before the packet id");
	refused(BYTES(0x32, 0x03, 0x00, 0x01, 't'), "before the packet id");
}
END_TEST

START_TEST(publish_topic_runs_past_packet)
{
	refused(BYTES(0x30, 0x04, 0x00, 0x05, 'a', 'b'), "runs past");
	refused(BYTES(0x30, 0x01, 0x00), "runs past");
	refused(BYTES(0x30, 0x00), "runs past");
	refused(BYTES(0x30, 0x04, 0xff, 0xff, 'a', 'b'), "runs past");
}
END_TEST

START_TEST(publish_topic_empty)
{
	refused(BYTES(0x30, 0x04, 0x00, 0x00, 'h', 'i'), "empty");
}
END_TEST

START_TEST(publish_topic_wildcards)
{
	refused(BYTES(0x30, 0x05, 0x00, 0x03, 'a', '/', '+'), "wildcard");
	refused(BYTES(0x30, 0x05, 0x00, 0x03, 'a', '/', '#'), "wildcard");
	refused(BYTES(0x30, 0x03, 0x00, 0x01, '#'), "wildcard");
	refused(BYTES(0x30, 0x05, 0x00, 0x03, 'a', '+', 'b'), "wildcard");
}
END_TEST

START_TEST(publish_topic_utf8)
{
	/* U+0000 */
	refused(BYTES(0x30, 0x05, 0x00, 0x03, 'a', 0x00, 'b'), "UTF-8");
	/* Overlong '/' */
	refused(BYTES(0x30, 0x04, 0x00, 0x02, 0xc0, 0xaf), "UTF-8");
	/* Overlong U+0000 */
	refused(BYTES(0x30, 0x04, 0x00, 0x02, 0xc0, 0x80), "UTF-8");
	/* Overlong three- and four-byte forms of '/' */
	refused(BYTES(0x30, 0x05, 0x00, 0x03, 0xe0, 0x80, 0xaf), "UTF-8");
	refused(BYTES(0x30, 0x06, 0x00, 0x04, 0xf0, 0x80, 0x80, 0xaf), "UTF-8");
	/* Lone surrogates U+D800 and U+DFFF */
	refused(BYTES(0x30, 0x05, 0x00, 0x03, 0xed, 0xa0, 0x80), "UTF-8");
	refused(BYTES(0x30, 0x05, 0x00, 0x03, 0xed, 0xbf, 0xbf), "UTF-8");
	/* Truncated sequence: the first two bytes of '€', at the end and before ASCII */
	refused(BYTES(0x30, 0x04, 0x00, 0x02, 0xe2, 0x82), "UTF-8");
	refused(BYTES(0x30, 0x05, 0x00, 0x03, 0xe2, 0x82, 'a'), "UTF-8");
	/* ... and cut by the string's end though a continuation byte follows in the packet */
	refused(BYTES(0x32, 0x06, 0x00, 0x02, 0xe2, 0x82, 0x80, 0x01), "UTF-8");
	/* Stray continuation byte */
	refused(BYTES(0x30, 0x03, 0x00, 0x01, 0x80), "UTF-8");
	/* Past U+10FFFF, and bytes that never occur */
	refused(BYTES(0x30, 0x06, 0x00, 0x04, 0xf4, 0x90, 0x80, 0x80), "UTF-8");
	refused(BYTES(0x30, 0x06, 0x00, 0x04, 0xf5, 0x80, 0x80, 0x80), "UTF-8");
	refused(BYTES(0x30, 0x03, 0x00, 0x01, 0xff), "UTF-8");
	/* Well-formed: é, €, U+D7FF, U+E000, U+10000, U+10FFFF */
	accepted(BYTES(0x30, 0x04, 0x00, 0x02, 0xc3, 0xa9), MQTT_PUBLISH);
	accepted(BYTES(0x30, 0x05, 0x00, 0x03, 0xe2, 0x82, 0xac), MQTT_PUBLISH);
	accepted(BYTES(0x30, 0x05, 0x00, 0x03, 0xed, 0x9f, 0xbf), MQTT_PUBLISH);
	accepted(BYTES(0x30, 0x05, 0x00, 0x03, 0xee, 0x80, 0x80), MQTT_PUBLISH);
	accepted(BYTES(0x30, 0x06, 0x00, 0x04, 0xf0, 0x90, 0x80, 0x80), MQTT_PUBLISH);
	accepted(BYTES(0x30, 0x06, 0x00, 0x04, 0xf4, 0x8f, 0xbf, 0xbf), MQTT_PUBLISH);
}
END_TEST

/* A PUBLISH to a topic of `levels` levels ("l/l/.../l"). */
static enum herr publish_levels(size_t levels)
{
	struct mqtt_packet p;
	const uint8_t *b;
	struct pkt k;
	char *topic;
	size_t i, n;
	enum herr rc;

	topic = malloc(2 * levels);
	ck_assert_ptr_nonnull(topic);
	for (i = 0; i < levels; i++) {
		topic[2 * i] = 'l';
		topic[2 * i + 1] = '/';
	}
	pkt_init(&k, 2 * levels + 64);
	put_str(&k, topic, 2 * levels - 1);
	put_raw(&k, "payload", 7);
	b = pkt_done(&k, 0x30, &n);
	rc = parse(b, n, &p);
	if (rc == HERR_OK)
		ck_assert_uint_eq(p.u.publish.topic.len, 2 * levels - 1);
	ck_assert_int_eq(mqtt_topic_valid_name((const uint8_t *)topic, 2 * levels - 1),
			 rc == HERR_OK);
	pkt_free(&k);
	free(topic);
	return rc;
}

START_TEST(publish_topic_depth)
{
	ck_assert_int_eq(publish_levels(1), HERR_OK);
	ck_assert_int_eq(publish_levels(MQTT_MAX_LEVELS), HERR_OK);
	ck_assert_int_eq(publish_levels(MQTT_MAX_LEVELS + 1), HERR_INVALID);
	ck_assert_int_eq(publish_levels(5000), HERR_INVALID);
}
END_TEST

START_TEST(publish_topic_special_but_valid)
{
	struct mqtt_packet p;

	/* '$' names, empty levels and spaces are all legal topic names. */
	accepted(BYTES(0x30, 0x08, 0x00, 0x06, '$', 'S', 'Y', 'S', '/', 'x'), MQTT_PUBLISH);
	accepted(BYTES(0x30, 0x03, 0x00, 0x01, '/'), MQTT_PUBLISH);
	accepted(BYTES(0x30, 0x06, 0x00, 0x04, 'a', '/', '/', 'b'), MQTT_PUBLISH);
	accepted(BYTES(0x30, 0x05, 0x00, 0x03, 'a', ' ', 'b'), MQTT_PUBLISH);
	/* The payload is binary: NUL and invalid UTF-8 are fine there. */
	ck_assert_int_eq(parse(BYTES(0x30, 0x06, 0x00, 0x01, 't', 0x00, 0xc0, 0xff), &p), HERR_OK);
	ck_assert_uint_eq(p.u.publish.payload_len, 3);
}
END_TEST

/* ---- CONNECT ---- */

/* A 3.1.1 CONNECT body up to (not including) the client id. */
static void connect_head(struct pkt *k, uint8_t flags, uint16_t keepalive)
{
	pkt_init(k, 1024);
	put_cstr(k, "MQTT");
	put8(k, 4);
	put8(k, flags);
	put16(k, keepalive);
}

START_TEST(connect_minimal)
{
	static const uint8_t b[] = {
		0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
	};
	struct mqtt_packet p;
	struct mqtt_connect *c = &p.u.connect;

	ck_assert_int_eq(parse(b, sizeof(b), &p), HERR_OK);
	ck_assert_int_eq(p.type, MQTT_CONNECT);
	ck_assert(str_is(c->protocol_name, "MQTT"));
	ck_assert_int_eq(c->protocol_level, 4);
	ck_assert_int_eq(c->clean_session, 1);
	ck_assert_int_eq(c->keepalive, 60);
	ck_assert_uint_eq(c->client_id.len, 0);
	ck_assert_int_eq(c->will, 0);
	ck_assert_int_eq(c->has_username, 0);
	ck_assert_int_eq(c->has_password, 0);
}
END_TEST

START_TEST(connect_full)
{
	static const uint8_t pw[] = { 0x00, 0xff, 's', 0xc0 };
	struct mqtt_packet p;
	struct mqtt_connect *c = &p.u.connect;
	const uint8_t *b;
	struct pkt k;
	size_t n;

	/* user, password, will retain, will QoS 2, will, no clean session */
	connect_head(&k, 0x80 | 0x40 | 0x20 | 0x10 | 0x04, 0xffff);
	put_cstr(&k, "dev-01");
	put_cstr(&k, "dev/dev-01/status");
	put_str(&k, "\x00off", 4);
	put_cstr(&k, "user\xc3\xa9");
	put_str(&k, pw, sizeof(pw));
	b = pkt_done(&k, 0x10, &n);
	ck_assert_int_eq(parse(b, n, &p), HERR_OK);
	ck_assert_int_eq(c->clean_session, 0);
	ck_assert_int_eq(c->keepalive, 0xffff);
	ck_assert(str_is(c->client_id, "dev-01"));
	ck_assert_int_eq(c->will, 1);
	ck_assert_int_eq(c->will_qos, 2);
	ck_assert_int_eq(c->will_retain, 1);
	ck_assert(str_is(c->will_topic, "dev/dev-01/status"));
	ck_assert_uint_eq(c->will_payload.len, 4);
	ck_assert_mem_eq(c->will_payload.p, "\x00off", 4);
	ck_assert_int_eq(c->has_username, 1);
	ck_assert(str_is(c->username, "user\xc3\xa9"));
	ck_assert_int_eq(c->has_password, 1);
	ck_assert_uint_eq(c->password.len, sizeof(pw));
	ck_assert_mem_eq(c->password.p, pw, sizeof(pw));
	/* Every field points into the packet. */
	ck_assert(c->password.p > b && c->password.p + c->password.len == b + n);
	pkt_free(&k);
}
END_TEST

START_TEST(connect_user_without_password)
{
	struct mqtt_packet p;
	const uint8_t *b;
	struct pkt k;
	size_t n;

	connect_head(&k, 0x80 | 0x02, 10);
	put_cstr(&k, "c");
	put_cstr(&k, "u");
	b = pkt_done(&k, 0x10, &n);
	ck_assert_int_eq(parse(b, n, &p), HERR_OK);
	ck_assert_int_eq(p.u.connect.has_username, 1);
	ck_assert_int_eq(p.u.connect.has_password, 0);
	ck_assert(str_is(p.u.connect.username, "u"));
	pkt_free(&k);
}
END_TEST

START_TEST(connect_password_without_username)
{
	const uint8_t *b;
	struct pkt k;
	size_t n;

	connect_head(&k, 0x40 | 0x02, 10);
	put_cstr(&k, "c");
	put_cstr(&k, "pw");
	b = pkt_done(&k, 0x10, &n);
	refused(b, n, "password flag without username");
	pkt_free(&k);
}
END_TEST

START_TEST(connect_other_protocol)
{
	/* MQTT 3.1 */
	refused(BYTES(0x10, 0x0e, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x3c,
		      0x00, 0x00), "not \"MQTT\"");
	refused(BYTES(0x10, 0x0c, 0x00, 0x04, 'm', 'q', 't', 't', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00),
		"not \"MQTT\"");
	refused(BYTES(0x10, 0x0b, 0x00, 0x03, 'M', 'Q', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00),
		"not \"MQTT\"");
	refused(BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 0xc0, 0xaf, 0x04, 0x02, 0x00, 0x3c, 0x00,
		      0x00), "UTF-8");
	refused(BYTES(0x10, 0x06, 0x00, 0x09, 'M', 'Q', 'T', 'T'), "runs past");
	refused(BYTES(0x10, 0x06, 0x00, 0x04, 'M', 'Q', 'T', 'T'), "protocol level");
}
END_TEST

START_TEST(connect_other_level)
{
	static const uint8_t b[] = {
		0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x03, 0x02, 0x00, 0x3c, 0x00, 0x02,
		'i', 'd',
	};
	struct mqtt_packet p;
	struct mqtt_connect *c = &p.u.connect;

	/* Level 3 with a 3.1.1 body: reported, the rest left alone and zeroed. */
	ck_assert_int_eq(parse(b, sizeof(b), &p), HERR_OK);
	ck_assert(str_is(c->protocol_name, "MQTT"));
	ck_assert_int_eq(c->protocol_level, 3);
	ck_assert_int_eq(c->keepalive, 0);
	ck_assert_int_eq(c->clean_session, 0);
	ck_assert_uint_eq(c->client_id.len, 0);
	ck_assert_ptr_null(c->client_id.p);
	/* Level 5 with a body 3.1.1 would refuse (reserved flag, trailing junk). */
	ck_assert_int_eq(parse(BYTES(0x10, 0x0b, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xff, 0xff,
				     0xff, 0xff), &p), HERR_OK);
	ck_assert_int_eq(c->protocol_level, 5);
	ck_assert_int_eq(c->will, 0);
	/* Level alone, nothing after it. */
	ck_assert_int_eq(parse(BYTES(0x10, 0x07, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x00), &p), HERR_OK);
	ck_assert_int_eq(c->protocol_level, 0);
}
END_TEST

START_TEST(connect_reserved_flag)
{
	refused(BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x03, 0x00, 0x3c, 0x00, 0x00),
		"reserved flag");
	refused(BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x01, 0x00, 0x3c, 0x00, 0x00),
		"reserved flag");
}
END_TEST

START_TEST(connect_will_flags)
{
	const uint8_t *b;
	struct pkt k;
	size_t n;

	/* will QoS 3 */
	connect_head(&k, 0x04 | 0x18, 10);
	put_cstr(&k, "c");
	put_cstr(&k, "w");
	put_cstr(&k, "m");
	b = pkt_done(&k, 0x10, &n);
	refused(b, n, "will QoS is 3");
	pkt_free(&k);
	/* will QoS 1 / QoS 2 / retain without the will flag */
	refused(BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x0a, 0x00, 0x3c, 0x00, 0x00),
		"without a will");
	refused(BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x12, 0x00, 0x3c, 0x00, 0x00),
		"without a will");
	refused(BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x22, 0x00, 0x3c, 0x00, 0x00),
		"without a will");
	/* will QoS 1 with the will flag is fine */
	connect_head(&k, 0x04 | 0x08, 10);
	put_cstr(&k, "c");
	put_cstr(&k, "w");
	put_str(&k, "", 0);
	b = pkt_done(&k, 0x10, &n);
	accepted(b, n, MQTT_CONNECT);
	pkt_free(&k);
}
END_TEST

START_TEST(connect_will_topic)
{
	static const char *bad[] = { "", "a/+", "#", "a\xc0\xaf", "a\x00" };
	const uint8_t *b;
	struct pkt k;
	size_t n, i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		connect_head(&k, 0x04, 10);
		put_cstr(&k, "c");
		put_str(&k, bad[i], i == 4 ? 2 : strlen(bad[i]));
		put_cstr(&k, "m");
		b = pkt_done(&k, 0x10, &n);
		refused(b, n, "will topic");
		pkt_free(&k);
	}
	/* will topic and message must both be present */
	connect_head(&k, 0x04, 10);
	put_cstr(&k, "c");
	put_cstr(&k, "w");
	b = pkt_done(&k, 0x10, &n);
	refused(b, n, "will message runs past");
	pkt_free(&k);
}
END_TEST

START_TEST(connect_strings)
{
	const uint8_t *b;
	struct pkt k;
	size_t n;

	/* client id: invalid UTF-8, U+0000, surrogate, past the packet */
	refused(BYTES(0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02,
		      0xc0, 0xaf), "client id is not valid UTF-8");
	refused(BYTES(0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02,
		      'a', 0x00), "client id is not valid UTF-8");
	refused(BYTES(0x10, 0x0f, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x03,
		      0xed, 0xa0, 0x80), "client id is not valid UTF-8");
	refused(BYTES(0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x03,
		      'a', 'b'), "client id runs past");
	refused(BYTES(0x10, 0x0a, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c),
		"client id runs past");
	refused(BYTES(0x10, 0x09, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00),
		"truncated");
	/* username: invalid UTF-8, missing */
	connect_head(&k, 0x80, 10);
	put_cstr(&k, "c");
	put_str(&k, "\xe2\x82", 2);
	b = pkt_done(&k, 0x10, &n);
	refused(b, n, "username is not valid UTF-8");
	pkt_free(&k);
	connect_head(&k, 0x80, 10);
	put_cstr(&k, "c");
	b = pkt_done(&k, 0x10, &n);
	refused(b, n, "username runs past");
	pkt_free(&k);
	/* password flagged but absent */
	connect_head(&k, 0xc0, 10);
	put_cstr(&k, "c");
	put_cstr(&k, "u");
	b = pkt_done(&k, 0x10, &n);
	refused(b, n, "password runs past");
	pkt_free(&k);
}
END_TEST

START_TEST(connect_trailing_bytes)
{
	refused(BYTES(0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
		      0x00), "trailing");
	/* a username present without its flag is trailing bytes */
	refused(BYTES(0x10, 0x0f, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
		      0x00, 0x01, 'u'), "trailing");
}
END_TEST

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

START_TEST(subscribe_basic)
{
	static const uint8_t b[] = {
		0x82, 0x12, 0x00, 0x0a, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x00, 0x01, '#', 0x00,
		0x00, 0x03, '+', '/', 'x', 0x02,
	};
	struct mqtt_packet p;
	struct mqtt_subscribe *s = &p.u.subscribe;

	ck_assert_int_eq(parse(b, sizeof(b), &p), HERR_OK);
	ck_assert_int_eq(p.type, MQTT_SUBSCRIBE);
	ck_assert_int_eq(s->packet_id, 10);
	ck_assert_uint_eq(s->count, 3);
	ck_assert(str_is(s->filters[0], "a/b"));
	ck_assert(str_is(s->filters[1], "#"));
	ck_assert(str_is(s->filters[2], "+/x"));
	ck_assert_int_eq(s->qos[0], 1);
	ck_assert_int_eq(s->qos[1], 0);
	ck_assert_int_eq(s->qos[2], 2);
	ck_assert_int_eq(s->valid[0], 1);
	ck_assert_int_eq(s->valid[1], 1);
	ck_assert_int_eq(s->valid[2], 1);
}
END_TEST

START_TEST(subscribe_packet_id_and_empty)
{
	refused(BYTES(0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00), "packet id is 0");
	refused(BYTES(0x82, 0x02, 0x00, 0x01), "no topic filter");
	refused(BYTES(0x82, 0x01, 0x00), "before the packet id");
	refused(BYTES(0x82, 0x00), "before the packet id");
}
END_TEST

START_TEST(subscribe_requested_qos)
{
	refused(BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03), "requested QoS");
	refused(BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04), "requested QoS");
	refused(BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x41), "requested QoS");
	refused(BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x80), "requested QoS");
	refused(BYTES(0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'), "without a requested QoS");
	/* a later pair is checked as strictly as the first */
	refused(BYTES(0x82, 0x0a, 0x00, 0x01, 0x00, 0x01, 'a', 0x00, 0x00, 0x01, 'b', 0xfe),
		"requested QoS");
}
END_TEST

START_TEST(subscribe_filter_strings)
{
	refused(BYTES(0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 0xc0, 0xaf, 0x00), "not valid UTF-8");
	refused(BYTES(0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 'a', 0x00, 0x00), "not valid UTF-8");
	refused(BYTES(0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 0xed, 0xa0, 0x80, 0x00), "not valid UTF-8");
	refused(BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x07, 'a', 0x00), "runs past");
	refused(BYTES(0x82, 0x03, 0x00, 0x01, 0x00), "runs past");
}
END_TEST

START_TEST(subscribe_bad_filters_marked)
{
	struct mqtt_packet p;
	struct mqtt_subscribe *s = &p.u.subscribe;
	const uint8_t *b;
	struct pkt k;
	size_t n, i;
	static const char *filters[] = { "a/#/b", "a+/b", "#a", "", "ok/+/#", "a/b#", "+a" };
	static const int valid[] = { 0, 0, 0, 0, 1, 0, 0 };

	pkt_init(&k, 1024);
	put16(&k, 7);
	for (i = 0; i < 7; i++) {
		put_cstr(&k, filters[i]);
		put8(&k, 1);
	}
	/* MQTT_MAX_LEVELS + 1 levels: text, but too deep to subscribe to */
	put16(&k, 2 * MQTT_MAX_LEVELS + 1);
	for (i = 0; i <= MQTT_MAX_LEVELS; i++)
		put_raw(&k, i ? "/a" : "a", i ? 2 : 1);
	put8(&k, 0);
	b = pkt_done(&k, 0x82, &n);
	ck_assert_int_eq(parse(b, n, &p), HERR_OK);
	ck_assert_uint_eq(s->count, 8);
	for (i = 0; i < 7; i++) {
		ck_assert_msg(s->valid[i] == valid[i], "filter \"%s\"", filters[i]);
		ck_assert(str_is(s->filters[i], filters[i]));
	}
	ck_assert_int_eq(s->valid[7], 0);
	ck_assert_uint_eq(s->filters[7].len, 2 * MQTT_MAX_LEVELS + 1);
	pkt_free(&k);
}
END_TEST

static enum herr subscribe_n(size_t count, int unsubscribe, struct mqtt_packet *p)
{
	const uint8_t *b;
	struct pkt k;
	size_t i, n;
	enum herr rc;
	char f[8];

	pkt_init(&k, 1024);
	put16(&k, 1);
	for (i = 0; i < count; i++) {
		f[0] = 'f';
		f[1] = (char)('a' + i % 26);
		put_str(&k, f, 2);
		if (!unsubscribe)
			put8(&k, (uint8_t)(i % 3));
	}
	b = pkt_done(&k, unsubscribe ? 0xa2 : 0x82, &n);
	rc = parse(b, n, p);
	if (rc != HERR_OK)
		refused(b, n, "too many filters");
	pkt_free(&k);
	return rc;
}

START_TEST(subscribe_too_many_filters)
{
	struct mqtt_packet p;

	ck_assert_int_eq(subscribe_n(MQTT_MAX_FILTERS, 0, &p), HERR_OK);
	ck_assert_uint_eq(p.u.subscribe.count, MQTT_MAX_FILTERS);
	ck_assert_int_eq(p.u.subscribe.qos[MQTT_MAX_FILTERS - 1], (MQTT_MAX_FILTERS - 1) % 3);
	ck_assert_int_eq(subscribe_n(MQTT_MAX_FILTERS + 1, 0, &p), HERR_INVALID);
	ck_assert_int_eq(subscribe_n(MQTT_MAX_FILTERS, 1, &p), HERR_OK);
	ck_assert_uint_eq(p.u.subscribe.count, MQTT_MAX_FILTERS);
	ck_assert_int_eq(subscribe_n(MQTT_MAX_FILTERS + 1, 1, &p), HERR_INVALID);
}
END_TEST

START_TEST(unsubscribe_basic)
{
	static const uint8_t b[] = {
		0xa2, 0x0d, 0x12, 0x34, 0x00, 0x03, 'a', '/', '#', 0x00, 0x04, 'a', '/', '#', 'b',
	};
	struct mqtt_packet p;
	struct mqtt_subscribe *s = &p.u.subscribe;

	ck_assert_int_eq(parse(b, sizeof(b), &p), HERR_OK);
	ck_assert_int_eq(p.type, MQTT_UNSUBSCRIBE);
	ck_assert_int_eq(s->packet_id, 0x1234);
	ck_assert_uint_eq(s->count, 2);
	ck_assert(str_is(s->filters[0], "a/#"));
	ck_assert(str_is(s->filters[1], "a/#b"));
	ck_assert_int_eq(s->valid[0], 1);
	ck_assert_int_eq(s->valid[1], 0);
	ck_assert_int_eq(s->qos[0], 0);
	ck_assert_int_eq(s->qos[1], 0);
}
END_TEST

START_TEST(unsubscribe_refused)
{
	refused(BYTES(0xa2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a'), "packet id is 0");
	refused(BYTES(0xa2, 0x02, 0x00, 0x01), "no topic filter");
	refused(BYTES(0xa2, 0x06, 0x00, 0x01, 0x00, 0x02, 0xc0, 0xaf), "not valid UTF-8");
	refused(BYTES(0xa2, 0x05, 0x00, 0x01, 0x00, 0x02, 'a'), "runs past");
	/* a stray QoS byte reads as a truncated second filter */
	refused(BYTES(0xa2, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x01), "runs past");
}
END_TEST

/* ---- acknowledgements, CONNACK, SUBACK, empty packets ---- */

START_TEST(acks)
{
	static const uint8_t firsts[] = { 0x40, 0x50, 0x62, 0x70, 0xb0 };
	static const enum mqtt_type types[] = { MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP,
						MQTT_UNSUBACK };
	struct mqtt_packet p;
	uint8_t b[5];
	size_t i;

	for (i = 0; i < 5; i++) {
		b[0] = firsts[i];
		b[1] = 2;
		b[2] = 0xab;
		b[3] = 0xcd;
		ck_assert_int_eq(parse(b, 4, &p), HERR_OK);
		ck_assert_int_eq(p.type, types[i]);
		ck_assert_int_eq(p.u.packet_id, 0xabcd);
		b[2] = b[3] = 0;
		refused(b, 4, "packet id is 0");
		b[1] = 3;
		b[3] = 1;
		b[4] = 0;
		refused(b, 5, "not 2");
		b[1] = 1;
		refused(b, 3, "not 2");
		b[1] = 0;
		refused(b, 2, "not 2");
	}
}
END_TEST

START_TEST(suback)
{
	struct mqtt_packet p;

	ck_assert_int_eq(parse(BYTES(0x90, 0x06, 0x00, 0x07, 0x00, 0x01, 0x02, 0x80), &p), HERR_OK);
	ck_assert_int_eq(p.type, MQTT_SUBACK);
	ck_assert_int_eq(p.u.packet_id, 7);
	refused(BYTES(0x90, 0x02, 0x00, 0x07), "no return code");
	refused(BYTES(0x90, 0x03, 0x00, 0x00, 0x00), "packet id is 0");
	refused(BYTES(0x90, 0x03, 0x00, 0x07, 0x03), "reserved");
	refused(BYTES(0x90, 0x04, 0x00, 0x07, 0x00, 0x81), "reserved");
	refused(BYTES(0x90, 0x01, 0x07), "truncated");
}
END_TEST

START_TEST(connack)
{
	struct mqtt_packet p;

	ck_assert_int_eq(parse(BYTES(0x20, 0x02, 0x00, 0x00), &p), HERR_OK);
	ck_assert_int_eq(p.type, MQTT_CONNACK);
	ck_assert_int_eq(p.u.connack.session_present, 0);
	ck_assert_int_eq(p.u.connack.rc, 0);
	ck_assert_int_eq(parse(BYTES(0x20, 0x02, 0x01, 0x00), &p), HERR_OK);
	ck_assert_int_eq(p.u.connack.session_present, 1);
	ck_assert_int_eq(parse(BYTES(0x20, 0x02, 0x00, 0x05), &p), HERR_OK);
	ck_assert_int_eq(p.u.connack.rc, MQTT_CONNACK_NOT_AUTHORIZED);
	refused(BYTES(0x20, 0x03, 0x00, 0x00, 0x00), "not 2");
	refused(BYTES(0x20, 0x01, 0x00), "not 2");
	refused(BYTES(0x20, 0x02, 0x02, 0x00), "reserved flag");
	refused(BYTES(0x20, 0x02, 0x00, 0x06), "reserved");
	refused(BYTES(0x20, 0x02, 0x01, 0x04), "session present");
}
END_TEST

START_TEST(empty_packets)
{
	accepted(BYTES(0xc0, 0x00), MQTT_PINGREQ);
	accepted(BYTES(0xd0, 0x00), MQTT_PINGRESP);
	accepted(BYTES(0xe0, 0x00), MQTT_DISCONNECT);
	refused(BYTES(0xc0, 0x01, 0x00), "not 0");
	refused(BYTES(0xd0, 0x01, 0x00), "not 0");
	refused(BYTES(0xe0, 0x02, 0x00, 0x00), "not 0");
}
END_TEST

/* ---- topic names and filters ---- */

START_TEST(topic_filter_syntax)
{
	static const struct {
		const char *f;
		int valid;
	} cases[] = {
		{ "#", 1 }, { "+", 1 }, { "a/#", 1 }, { "+/+", 1 }, { "/+", 1 }, { "a//b", 1 },
		{ "$SYS/#", 1 }, { "+/tennis/#", 1 }, { "/", 1 }, { "a/+/c", 1 }, { "\xc3\xa9/+", 1 },
		{ "", 0 }, { "a/#/b", 0 }, { "a+/b", 0 }, { "#a", 0 }, { "a#", 0 }, { "+a", 0 },
		{ "a/b#", 0 }, { "##", 0 }, { "a/++", 0 }, { "#/", 0 }, { "a/+b/c", 0 },
		{ "\xc0\xaf", 0 }, { "\xed\xa0\x80", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(mqtt_topic_valid_filter((const uint8_t *)cases[i].f, strlen(cases[i].f))
			      == cases[i].valid, "filter \"%s\"", cases[i].f);
	ck_assert_int_eq(mqtt_topic_valid_filter(S("a\0b")), 0);
}
END_TEST

START_TEST(topic_name_syntax)
{
	ck_assert_int_eq(mqtt_topic_valid_name(S("a")), 1);
	ck_assert_int_eq(mqtt_topic_valid_name(S("/")), 1);
	ck_assert_int_eq(mqtt_topic_valid_name(S("$SYS/x")), 1);
	ck_assert_int_eq(mqtt_topic_valid_name(S("a//b")), 1);
	ck_assert_int_eq(mqtt_topic_valid_name(S("")), 0);
	ck_assert_int_eq(mqtt_topic_valid_name(S("a/+")), 0);
	ck_assert_int_eq(mqtt_topic_valid_name(S("#")), 0);
	ck_assert_int_eq(mqtt_topic_valid_name(S("a\0")), 0);
	ck_assert_int_eq(mqtt_topic_valid_name(S("\xe2\x82")), 0);
	/* the length, not what follows in memory, ends the name */
	ck_assert_int_eq(mqtt_topic_valid_name((const uint8_t *)"a\xe2\x82\xac", 3), 0);
	ck_assert_int_eq(mqtt_topic_valid_name((const uint8_t *)"a/+", 2), 1);
}
END_TEST

START_TEST(topic_filter_depth)
{
	uint8_t f[2 * MQTT_MAX_LEVELS + 2];
	size_t i;

	/* "+/+/.../+" with MQTT_MAX_LEVELS levels, then one more. */
	for (i = 0; i < sizeof(f); i += 2) {
		f[i] = '+';
		f[i + 1] = '/';
	}
	ck_assert_int_eq(mqtt_topic_valid_filter(f, 2 * MQTT_MAX_LEVELS - 1), 1);
	/* a trailing '/' is one more (empty) level */
	ck_assert_int_eq(mqtt_topic_valid_filter(f, 2 * MQTT_MAX_LEVELS), 0);
	ck_assert_int_eq(mqtt_topic_valid_filter(f, 2 * MQTT_MAX_LEVELS + 1), 0);
	f[2 * MQTT_MAX_LEVELS - 2] = '#';
	ck_assert_int_eq(mqtt_topic_valid_filter(f, 2 * MQTT_MAX_LEVELS - 1), 1);
}
END_TEST

START_TEST(topic_matching)
{
	static const struct {
		const char *filter, *topic;
		int match;
	} cases[] = {
		{ "a/b", "a/b", 1 },
		{ "a/b", "a/c", 0 },
		{ "a/b", "a/b/c", 0 },
		{ "a/b/c", "a/b", 0 },
		{ "a/b", "A/b", 0 },            /* byte-wise, case-sensitive */
		{ "a/b", "a/b ", 0 },
		{ "\xc3\xa9", "\x65\xcc\x81", 0 }, /* no Unicode normalisation */
		{ "#", "a", 1 },
		{ "#", "a/b/c", 1 },
		{ "#", "/", 1 },
		{ "sport/#", "sport", 1 },      /* '#' includes the parent level */
		{ "sport/#", "sport/", 1 },
		{ "sport/#", "sport/tennis/player1", 1 },
		{ "sport/#", "sports", 0 },
		{ "sport/tennis/#", "sport/tennis", 1 },
		{ "sport/+", "sport", 0 },
		{ "sport/+", "sport/", 1 },     /* '+' matches an empty level */
		{ "sport/+", "sport/tennis", 1 },
		{ "sport/+", "sport/tennis/x", 0 },
		{ "+/+", "/finance", 1 },
		{ "/+", "/finance", 1 },
		{ "+", "/finance", 0 },
		{ "+", "finance", 1 },
		{ "+/b/+", "a/b/c", 1 },
		{ "+/b/+", "a/x/c", 0 },
		{ "a/+/#", "a/b", 1 },
		{ "a/+/#", "a", 0 },
		{ "a//b", "a//b", 1 },
		{ "a/+/b", "a//b", 1 },
		{ "#", "$SYS/broker", 0 },      /* §4.7.2 */
		{ "+/broker", "$SYS/broker", 0 },
		{ "+", "$SYS", 0 },
		{ "$SYS/#", "$SYS/broker", 1 },
		{ "$SYS/+", "$SYS/broker", 1 },
		{ "$SYS/broker", "$SYS/broker", 1 },
		{ "a/#", "a/$SYS", 1 },         /* only the first level counts */
		{ "+/$x", "a/$x", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(mqtt_topic_matches((const uint8_t *)cases[i].filter,
						 strlen(cases[i].filter),
						 (const uint8_t *)cases[i].topic,
						 strlen(cases[i].topic)) == cases[i].match,
			      "\"%s\" vs \"%s\" should %smatch", cases[i].filter, cases[i].topic,
			      cases[i].match ? "" : "not ");
}
END_TEST

/* ---- encoders ---- */

START_TEST(write_connack)
{
	uint8_t b[8];

	ck_assert_uint_eq(mqtt_write_connack(b, sizeof(b), 0, MQTT_CONNACK_ACCEPTED), 4);
	ck_assert_mem_eq(b, "\x20\x02\x00\x00", 4);
	ck_assert_uint_eq(mqtt_write_connack(b, sizeof(b), 1, MQTT_CONNACK_ACCEPTED), 4);
	ck_assert_mem_eq(b, "\x20\x02\x01\x00", 4);
	ck_assert_uint_eq(mqtt_write_connack(b, sizeof(b), 0, MQTT_CONNACK_BAD_PROTOCOL), 4);
	ck_assert_mem_eq(b, "\x20\x02\x00\x01", 4);
	ck_assert_uint_eq(mqtt_write_connack(b, 4, 0, MQTT_CONNACK_NOT_AUTHORIZED), 4);
	ck_assert_mem_eq(b, "\x20\x02\x00\x05", 4);
	ck_assert_uint_eq(mqtt_write_connack(b, 3, 0, MQTT_CONNACK_ACCEPTED), 0);
	ck_assert_uint_eq(mqtt_write_connack(b, 0, 0, MQTT_CONNACK_ACCEPTED), 0);
	ck_assert_uint_eq(mqtt_write_connack(b, sizeof(b), 0, 6), 0);
	ck_assert_uint_eq(mqtt_write_connack(b, sizeof(b), 1, MQTT_CONNACK_BAD_CREDENTIALS), 0);
}
END_TEST

START_TEST(write_ack)
{
	uint8_t b[8];

	ck_assert_uint_eq(mqtt_write_ack(b, sizeof(b), MQTT_PUBACK, 0x1234), 4);
	ck_assert_mem_eq(b, "\x40\x02\x12\x34", 4);
	ck_assert_uint_eq(mqtt_write_ack(b, sizeof(b), MQTT_PUBREC, 1), 4);
	ck_assert_mem_eq(b, "\x50\x02\x00\x01", 4);
	ck_assert_uint_eq(mqtt_write_ack(b, sizeof(b), MQTT_PUBREL, 0xffff), 4);
	ck_assert_mem_eq(b, "\x62\x02\xff\xff", 4);
	ck_assert_uint_eq(mqtt_write_ack(b, sizeof(b), MQTT_PUBCOMP, 0x0100), 4);
	ck_assert_mem_eq(b, "\x70\x02\x01\x00", 4);
	ck_assert_uint_eq(mqtt_write_ack(b, 4, MQTT_UNSUBACK, 9), 4);
	ck_assert_mem_eq(b, "\xb0\x02\x00\x09", 4);
	ck_assert_uint_eq(mqtt_write_ack(b, 3, MQTT_PUBACK, 1), 0);
	ck_assert_uint_eq(mqtt_write_ack(b, sizeof(b), MQTT_PUBACK, 0), 0);
	ck_assert_uint_eq(mqtt_write_ack(b, sizeof(b), MQTT_SUBACK, 1), 0);
	ck_assert_uint_eq(mqtt_write_ack(b, sizeof(b), MQTT_SUBSCRIBE, 1), 0);
	ck_assert_uint_eq(mqtt_write_ack(b, sizeof(b), MQTT_CONNACK, 1), 0);
	ck_assert_uint_eq(mqtt_write_ack(b, sizeof(b), MQTT_PUBLISH, 1), 0);
}
END_TEST

START_TEST(write_suback_pingresp)
{
	static const uint8_t codes[] = { 0x00, 0x01, 0x02, MQTT_SUBACK_FAILURE };
	static const uint8_t bad[] = { 0x00, 0x03 };
	struct mqtt_packet p;
	uint8_t b[16];

	ck_assert_uint_eq(mqtt_write_suback(b, sizeof(b), 7, codes, 4), 8);
	ck_assert_mem_eq(b, "\x90\x06\x00\x07\x00\x01\x02\x80", 8);
	ck_assert_int_eq(parse(b, 8, &p), HERR_OK);
	ck_assert_int_eq(p.u.packet_id, 7);
	ck_assert_uint_eq(mqtt_write_suback(b, 8, 7, codes, 4), 8);
	ck_assert_uint_eq(mqtt_write_suback(b, 7, 7, codes, 4), 0);
	ck_assert_uint_eq(mqtt_write_suback(b, sizeof(b), 7, codes, 0), 0);
	ck_assert_uint_eq(mqtt_write_suback(b, sizeof(b), 0, codes, 4), 0);
	ck_assert_uint_eq(mqtt_write_suback(b, sizeof(b), 7, bad, 2), 0);
	ck_assert_uint_eq(mqtt_write_pingresp(b, sizeof(b)), 2);
	ck_assert_mem_eq(b, "\xd0\x00", 2);
	ck_assert_uint_eq(mqtt_write_pingresp(b, 1), 0);
}
END_TEST

START_TEST(write_publish_bytes)
{
	uint8_t b[32];

	ck_assert_uint_eq(mqtt_write_publish(b, sizeof(b), S("a/b"), S("hi"), 0, 0, 0, 77), 9);
	ck_assert_mem_eq(b, "\x30\x07\x00\x03" "a/b" "hi", 9);
	ck_assert_uint_eq(mqtt_publish_size(3, 2, 0), 9);
	ck_assert_uint_eq(mqtt_write_publish(b, sizeof(b), S("a/b"), S("hi"), 1, 1, 0, 10), 11);
	ck_assert_mem_eq(b, "\x33\x09\x00\x03" "a/b" "\x00\x0a" "hi", 11);
	ck_assert_uint_eq(mqtt_publish_size(3, 2, 1), 11);
	ck_assert_uint_eq(mqtt_write_publish(b, sizeof(b), S("t"), NULL, 0, 2, 0, 1, 0xfffe), 7);
	ck_assert_mem_eq(b, "\x3c\x05\x00\x01" "t" "\xff\xfe", 7);
	/* exactly the size fits; a byte less does not */
	ck_assert_uint_eq(mqtt_write_publish(b, 9, S("a/b"), S("hi"), 0, 0, 0, 0), 9);
	ck_assert_uint_eq(mqtt_write_publish(b, 8, S("a/b"), S("hi"), 0, 0, 0, 0), 0);
	ck_assert_uint_eq(mqtt_write_publish(b, 0, S("a/b"), S("hi"), 0, 0, 0, 0), 0);
	/* arguments that cannot be sent */
	ck_assert_uint_eq(mqtt_write_publish(b, sizeof(b), S("a/b"), S("hi"), 1, 0, 0, 0), 0);
	ck_assert_uint_eq(mqtt_write_publish(b, sizeof(b), S("a/b"), S("hi"), 3, 0, 0, 1), 0);
	ck_assert_uint_eq(mqtt_write_publish(b, sizeof(b), S("a/b"), S("hi"), 0, 0, 1, 0), 0);
	ck_assert_uint_eq(mqtt_write_publish(b, sizeof(b), S(""), S("hi"), 0, 0, 0, 0), 0);
}
END_TEST

START_TEST(publish_size_limits)
{
	/* remaining length 268,435,455 is the most four bytes carry: 2 + 1 + 268435452 */
	ck_assert_uint_eq(mqtt_publish_size(1, 268435452, 0), 1 + 4 + 268435455);
	ck_assert_uint_eq(mqtt_publish_size(1, 268435453, 0), 0);
	ck_assert_uint_eq(mqtt_publish_size(1, 268435450, 1), 1 + 4 + 268435455);
	ck_assert_uint_eq(mqtt_publish_size(1, 268435451, 1), 0);
	ck_assert_uint_eq(mqtt_publish_size(1, SIZE_MAX, 0), 0);
	ck_assert_uint_eq(mqtt_publish_size(65535, 0, 0), 1 + 3 + 65537);
	ck_assert_uint_eq(mqtt_publish_size(65536, 0, 0), 0);
	ck_assert_uint_eq(mqtt_publish_size(1, 0, 3), 0);
	/* the remaining-length size steps: 127 | 128, 16383 | 16384, 2097151 | 2097152 */
	ck_assert_uint_eq(mqtt_publish_size(1, 124, 0), 1 + 1 + 127);
	ck_assert_uint_eq(mqtt_publish_size(1, 125, 0), 1 + 2 + 128);
	ck_assert_uint_eq(mqtt_publish_size(1, 16380, 0), 1 + 2 + 16383);
	ck_assert_uint_eq(mqtt_publish_size(1, 16381, 0), 1 + 3 + 16384);
	ck_assert_uint_eq(mqtt_publish_size(1, 2097148, 0), 1 + 3 + 2097151);
	ck_assert_uint_eq(mqtt_publish_size(1, 2097149, 0), 1 + 4 + 2097152);
}
END_TEST

/* Write a PUBLISH, frame it and parse it back; every field must survive. */
static void round_trip(const char *topic, size_t payload_len, uint8_t qos, int retain, int dup,
		       uint16_t id, size_t header_len)
{
	struct mqtt_packet p;
	uint8_t *payload, *b;
	size_t size, n, total, i;

	payload = malloc(payload_len + 1);
	ck_assert_ptr_nonnull(payload);
	for (i = 0; i < payload_len; i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	size = mqtt_publish_size(strlen(topic), payload_len, qos);
	ck_assert_uint_gt(size, 0);
	b = malloc(size);
	ck_assert_ptr_nonnull(b);
	n = mqtt_write_publish(b, size, (const uint8_t *)topic, strlen(topic), payload, payload_len,
			       qos, retain, dup, id);
	ck_assert_uint_eq(n, size);
	ck_assert_uint_eq(n, header_len + 2 + strlen(topic) + (qos ? 2 : 0) + payload_len);
	for (i = 1; i < header_len; i++)
		ck_assert_int_eq(!!(b[i] & 0x80), i + 1 < header_len);
	ck_assert_int_eq(mqtt_frame(b, n, SIZE_MAX, &total), HERR_OK);
	ck_assert_uint_eq(total, n);
	ck_assert_int_eq(mqtt_frame(b, n - 1, SIZE_MAX, &total), HERR_OK);
	ck_assert_uint_eq(total, 0);
	ck_assert_int_eq(parse(b, n, &p), HERR_OK);
	ck_assert_int_eq(p.type, MQTT_PUBLISH);
	ck_assert_int_eq(p.u.publish.qos, qos);
	ck_assert_int_eq(p.u.publish.retain, !!retain);
	ck_assert_int_eq(p.u.publish.dup, !!dup);
	ck_assert_int_eq(p.u.publish.packet_id, qos ? id : 0);
	ck_assert(str_is(p.u.publish.topic, topic));
	ck_assert_uint_eq(p.u.publish.payload_len, payload_len);
	if (payload_len)
		ck_assert_mem_eq(p.u.publish.payload, payload, payload_len);
	free(b);
	free(payload);
}

START_TEST(publish_round_trips)
{
	round_trip("a/b", 5, 0, 0, 0, 0, 2);
	round_trip("a/b", 5, 0, 1, 0, 0, 2);
	round_trip("dev/\xc3\xa9/t", 5, 1, 0, 0, 1, 2);
	round_trip("dev/1/t", 5, 1, 1, 1, 0xffff, 2);
	round_trip("x", 5, 2, 0, 0, 300, 2);
	round_trip("empty/payload", 0, 0, 0, 0, 0, 2);
	round_trip("empty/payload", 0, 1, 1, 0, 42, 2);
	round_trip("t", 124, 0, 0, 0, 0, 2);
	round_trip("t", 125, 0, 0, 0, 0, 3);
	round_trip("t", 16381, 0, 0, 0, 0, 4);
	round_trip("big", 200 * 1024, 0, 1, 0, 0, 4);
	round_trip("big", 200 * 1024, 1, 0, 0, 9, 4);
	round_trip("t", 2097149, 1, 0, 0, 9, 5);
}
END_TEST

static Suite *mqtt_codec_suite(void)
{
	Suite *s = suite_create("mqtt_codec");
	TCase *tc;

	tc = tcase_create("frame");
	tcase_add_test(tc, frame_incomplete);
	tcase_add_test(tc, frame_complete);
	tcase_add_test(tc, frame_five_length_bytes);
	tcase_add_test(tc, frame_toobig_from_header);
	tcase_add_test(tc, frame_max_packet_boundary);
	tcase_add_test(tc, frame_non_minimal_length);
	tcase_add_test(tc, frame_stream_of_packets);
	suite_add_tcase(s, tc);

	tc = tcase_create("header");
	tcase_add_test(tc, header_reserved_types);
	tcase_add_test(tc, header_reserved_flags);
	tcase_add_test(tc, header_length_mismatch);
	suite_add_tcase(s, tc);

	tc = tcase_create("publish");
	tcase_add_test(tc, publish_qos0);
	tcase_add_test(tc, publish_qos1_retain_dup);
	tcase_add_test(tc, publish_empty_payload);
	tcase_add_test(tc, publish_qos3);
	tcase_add_test(tc, publish_dup_qos0);
	tcase_add_test(tc, publish_packet_id);
	tcase_add_test(tc, publish_topic_runs_past_packet);
	tcase_add_test(tc, publish_topic_empty);
	tcase_add_test(tc, publish_topic_wildcards);
	tcase_add_test(tc, publish_topic_utf8);
	tcase_add_test(tc, publish_topic_depth);
	tcase_add_test(tc, publish_topic_special_but_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("connect");
	tcase_add_test(tc, connect_minimal);
	tcase_add_test(tc, connect_full);
	tcase_add_test(tc, connect_user_without_password);
	tcase_add_test(tc, connect_password_without_username);
	tcase_add_test(tc, connect_other_protocol);
	tcase_add_test(tc, connect_other_level);
	tcase_add_test(tc, connect_reserved_flag);
	tcase_add_test(tc, connect_will_flags);
	tcase_add_test(tc, connect_will_topic);
	tcase_add_test(tc, connect_strings);
	tcase_add_test(tc, connect_trailing_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("subscribe");
	tcase_add_test(tc, subscribe_basic);
	tcase_add_test(tc, subscribe_packet_id_and_empty);
	tcase_add_test(tc, subscribe_requested_qos);
	tcase_add_test(tc, subscribe_filter_strings);
	tcase_add_test(tc, subscribe_bad_filters_marked);
	tcase_add_test(tc, subscribe_too_many_filters);
	tcase_add_test(tc, unsubscribe_basic);
	tcase_add_test(tc, unsubscribe_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("acks");
	tcase_add_test(tc, acks);
	tcase_add_test(tc, suback);
	tcase_add_test(tc, connack);
	tcase_add_test(tc, empty_packets);
	suite_add_tcase(s, tc);

	tc = tcase_create("topics");
	tcase_add_test(tc, topic_filter_syntax);
	tcase_add_test(tc, topic_name_syntax);
	tcase_add_test(tc, topic_filter_depth);
	tcase_add_test(tc, topic_matching);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode");
	tcase_add_test(tc, write_connack);
	tcase_add_test(tc, write_ack);
	tcase_add_test(tc, write_suback_pingresp);
	tcase_add_test(tc, write_publish_bytes);
	tcase_add_test(tc, publish_size_limits);
	tcase_add_test(tc, publish_round_trips);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(mqtt_codec_suite());
}
