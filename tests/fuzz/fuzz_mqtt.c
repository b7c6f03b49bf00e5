/* Fuzz target for server/mqtt_codec: the input is a byte stream from a client, framed and parsed
 * packet by packet as the connection would. Beyond "no crash", every PUBLISH that parses is written
 * back with mqtt_write_publish and must parse to the same fields (and, when the sender used the
 * shortest length encoding, to the same bytes); the topic functions must agree with the parser, and
 * server/acl's verdicts on every parsed topic and filter must keep a device inside its subtree. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/acl.h"
#include "server/mqtt_codec.h"

#define FUZZ_MAX_PACKET (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int str_eq(struct mqtt_str a, struct mqtt_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* The device a topic or filter names (hearth/v1/<id>/...), as a C string; "" if none or too long. */
static void device_of(const uint8_t *t, size_t len, char id[65])
{
	const uint8_t *p;
	size_t n = acl_topic_device(t, len, &p), plen = strlen(ACL_PREFIX);

	id[0] = '\0';
	if (n == 0)
		return;
	if (p != t + plen || n >= len - plen || t[plen + n] != '/' || memchr(p, '/', n) != NULL)
		abort();
	if (n <= 64 && !memchr(p, '\0', n)) {
		memcpy(id, p, n);
		id[n] = '\0';
	}
}

/* What acl lets a device or an integration client do with this topic (publish) or filter. */
static void check_acl(const uint8_t *t, size_t len, int is_filter)
{
	static const char *const leaves[] = { "telemetry", "ack", "status" };
	const char *ids[2] = { "dev-1", NULL };
	char own[65], want[200];
	size_t i, k, n;

	device_of(t, len, own);
	ids[1] = own[0] ? own : NULL;
	for (i = 0; i < 2 && ids[i]; i++) {
		n = (size_t)snprintf(want, sizeof(want), ACL_PREFIX "%s/", ids[i]);
		if (is_filter) {
			if (acl_may_subscribe(ACL_DEVICE, ids[i], t, len) &&
			    (len < n || memcmp(t, want, n) != 0))
				abort();
			continue;
		}
		if (acl_may_publish(ACL_INTEGRATION, ids[i], t, len))
			abort();
		if (!acl_may_publish(ACL_DEVICE, ids[i], t, len))
			continue;
		for (k = 0; k < sizeof(leaves) / sizeof(leaves[0]); k++)
			if (len == n + strlen(leaves[k]) && memcmp(t, want, n) == 0 &&
			    memcmp(t + n, leaves[k], len - n) == 0)
				break;
		if (k == sizeof(leaves) / sizeof(leaves[0]))
			abort();
	}
	if (acl_is_telemetry(t, len)) {
		const uint8_t *p;
		size_t plen = strlen(ACL_PREFIX);

		n = acl_topic_device(t, len, &p);
		if (n == 0 || len != plen + n + 1 + 9 || memcmp(t + plen + n + 1, "telemetry", 9) != 0)
			abort();
	}
	/* An integration client reads the minimized stream only: every device's, or one device's. */
	if (is_filter && acl_may_subscribe(ACL_INTEGRATION, "ha", t, len)) {
		const uint8_t *p;

		n = acl_topic_device(t, len, &p);
		if (!acl_is_telemetry(t, len) || n == 0 || n > 64)
			abort();
		if (!(n == 1 && p[0] == '+'))
			for (k = 0; k < n; k++)
				if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", p[k]) ||
				    p[k] == '\0')
					abort();
	}
}

static void check_publish(const uint8_t *pkt, size_t len, const struct mqtt_publish *p)
{
	const struct mqtt_publish *q;
	struct mqtt_packet again;
	const char *why;
	uint8_t *buf;
	size_t n, want;

	/* What the parser accepts as a name, the topic functions accept too. */
	if (!mqtt_topic_valid_name(p->topic.p, p->topic.len) ||
	    !mqtt_topic_valid_filter(p->topic.p, p->topic.len) ||
	    !mqtt_topic_matches(p->topic.p, p->topic.len, p->topic.p, p->topic.len))
		abort();
	if (mqtt_topic_matches((const uint8_t *)"#", 1, p->topic.p, p->topic.len) !=
	    (p->topic.p[0] != '$'))
		abort();
	check_acl(p->topic.p, p->topic.len, 0);

	/* The shortest header can only make the packet smaller than the one received. */
	want = mqtt_publish_size(p->topic.len, p->payload_len, p->qos);
	if (want == 0 || want > len)
		abort();
	buf = malloc(want);
	if (!buf)
		return;
	/* A byte short never fits. */
	if (mqtt_write_publish(buf, want - 1, p->topic.p, p->topic.len, p->payload, p->payload_len,
			       p->qos, p->retain, p->dup, p->packet_id) != 0)
		abort();
	n = mqtt_write_publish(buf, want, p->topic.p, p->topic.len, p->payload, p->payload_len,
			       p->qos, p->retain, p->dup, p->packet_id);
	if (n != want)
		abort();
	if (mqtt_parse(buf, n, &again, &why) != HERR_OK || again.type != MQTT_PUBLISH)
		abort();
	q = &again.u.publish;
	if (q->dup != p->dup || q->retain != p->retain || q->qos != p->qos ||
	    q->packet_id != p->packet_id || !str_eq(q->topic, p->topic) ||
	    q->payload_len != p->payload_len ||
	    (p->payload_len > 0 && memcmp(q->payload, p->payload, p->payload_len) != 0))
		abort();
	/* The same length means the sender's header was already the shortest: then, same bytes. */
	if (n == len && memcmp(buf, pkt, len) != 0)
		abort();
	free(buf);
}

static void check_filters(const struct mqtt_subscribe *s, const struct mqtt_str *last_topic)
{
	size_t i;

	if (s->count == 0 || s->count > MQTT_MAX_FILTERS)
		abort();
	for (i = 0; i < s->count; i++) {
		if (s->valid[i] != mqtt_topic_valid_filter(s->filters[i].p, s->filters[i].len))
			abort();
		if (s->valid[i])
			check_acl(s->filters[i].p, s->filters[i].len, 1);
		if (s->qos[i] > 2)
			abort();
		if (s->valid[i] && last_topic->len > 0)
			mqtt_topic_matches(s->filters[i].p, s->filters[i].len, last_topic->p,
					   last_topic->len);
	}
}

/* The server's own replies, written from what was parsed, must parse again; a reply received in
 * the shortest form must be written back byte for byte. */
static void check_replies(const uint8_t *pkt, size_t len, const struct mqtt_packet *p)
{
	uint8_t buf[4 + MQTT_MAX_FILTERS], codes[MQTT_MAX_FILTERS];
	struct mqtt_packet again;
	size_t n, i;

	switch (p->type) {
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
	case MQTT_UNSUBACK:
		n = mqtt_write_ack(buf, sizeof(buf), p->type, p->u.packet_id);
		if (n != 4 || (len == 4 && memcmp(buf, pkt, 4) != 0))
			abort();
		break;
	case MQTT_CONNACK:
		n = mqtt_write_connack(buf, sizeof(buf), p->u.connack.session_present,
				       p->u.connack.rc);
		if (n != 4 || (len == 4 && memcmp(buf, pkt, 4) != 0))
			abort();
		break;
	case MQTT_PINGRESP:
		n = mqtt_write_pingresp(buf, sizeof(buf));
		if (n != 2 || (len == 2 && memcmp(buf, pkt, 2) != 0))
			abort();
		break;
	case MQTT_SUBSCRIBE:
		for (i = 0; i < p->u.subscribe.count; i++)
			codes[i] = p->u.subscribe.valid[i] ? p->u.subscribe.qos[i] :
							     MQTT_SUBACK_FAILURE;
		n = mqtt_write_suback(buf, sizeof(buf), p->u.subscribe.packet_id, codes,
				      p->u.subscribe.count);
		if (n != 4 + p->u.subscribe.count ||
		    mqtt_parse(buf, n, &again, NULL) != HERR_OK || again.type != MQTT_SUBACK ||
		    again.u.packet_id != p->u.subscribe.packet_id)
			abort();
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct mqtt_packet zero;
	struct mqtt_str last_topic = { NULL, 0 };
	struct mqtt_packet pkt;
	size_t off = 0, total;
	const char *why;
	enum herr rc;

	while (off < size) {
		if (mqtt_frame(data + off, size - off, FUZZ_MAX_PACKET, &total) != HERR_OK)
			break;
		if (total == 0)
			break;
		if (total < 2 || total > size - off || total > FUZZ_MAX_PACKET)
			abort();
		why = "unset";
		rc = mqtt_parse(data + off, total, &pkt, &why);
		if (rc == HERR_OK && why != NULL)
			abort();
		if (rc != HERR_OK && (rc != HERR_INVALID || why == NULL || why[0] == '\0'))
			abort();
		if (rc != HERR_OK && memcmp(&pkt, &zero, sizeof(pkt)) != 0)
			abort();
		if (rc == HERR_OK) {
			check_replies(data + off, total, &pkt);
			switch (pkt.type) {
			case MQTT_PUBLISH:
				check_publish(data + off, total, &pkt.u.publish);
				last_topic = pkt.u.publish.topic;
				break;
			case MQTT_SUBSCRIBE:
			case MQTT_UNSUBSCRIBE:
				check_filters(&pkt.u.subscribe, &last_topic);
				break;
			case MQTT_CONNECT:
				if (pkt.u.connect.will &&
				    !mqtt_topic_valid_name(pkt.u.connect.will_topic.p,
							   pkt.u.connect.will_topic.len))
					abort();
				break;
			default:
				break;
			}
		}
		off += total;
	}
	/* The whole input as one packet: mqtt_parse must check the framing itself. */
	rc = mqtt_parse(data, size, &pkt, &why);
	if (rc == HERR_OK && (mqtt_frame(data, size, SIZE_MAX, &total) != HERR_OK || total != size))
		abort();
	/* Whatever the bytes, the topic functions give an answer: the whole input as both. */
	if (size <= 65535) {
		mqtt_topic_valid_name(data, size);
		mqtt_topic_valid_filter(data, size);
		mqtt_topic_matches(data, size / 2, data + size / 2, size - size / 2);
	}
	return 0;
}
