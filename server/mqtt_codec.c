#include "server/mqtt_codec.h"

#include <string.h>

/* The largest value four remaining-length bytes can carry (3.1.1 §2.2.3). */
#define MQTT_MAX_REMAINING 268435455u
/* Strings are prefixed with a 16-bit length (3.1.1 §1.5.3). */
#define MQTT_MAX_STRING 65535u

/* A read cursor over one packet's variable header and payload. Every read is checked against
 * the end, so nothing a length field claims is trusted before it is known to fit. */
struct reader {
	const uint8_t *p;
	size_t len;
	size_t off;
};

static size_t rd_left(const struct reader *r)
{
	return r->len - r->off;
}

static int rd_u8(struct reader *r, uint8_t *v)
{
	if (rd_left(r) < 1)
		return 0;
	*v = r->p[r->off++];
	return 1;
}

static int rd_u16(struct reader *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return 0;
	*v = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
	r->off += 2;
	return 1;
}

/* A length-prefixed field; binary until the caller checks it as text. */
static int rd_str(struct reader *r, struct mqtt_str *s)
{
	uint16_t n;

	if (!rd_u16(r, &n) || rd_left(r) < n)
		return 0;
	s->p = r->p + r->off;
	s->len = n;
	r->off += n;
	return 1;
}

/* Well-formed UTF-8 after Unicode table 3-7 (which already excludes overlongs, surrogates and
 * anything past U+10FFFF), plus 3.1.1 §1.5.3's ban on U+0000. */
static int utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0, n, k;
	uint8_t lo, hi, c;

	while (i < len) {
		c = s[i];
		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c == 0xe0) {
			n = 2;
			lo = 0xa0;
		} else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
			n = 2;
		} else if (c == 0xed) {
			n = 2;
			hi = 0x9f;
		} else if (c == 0xf0) {
			n = 3;
			lo = 0x90;
		} else if (c >= 0xf1 && c <= 0xf3) {
			n = 3;
		} else if (c == 0xf4) {
			n = 3;
			hi = 0x8f;
		} else {
			return 0;
		}
		if (len - i - 1 < n)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (k = 2; k <= n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		i += n + 1;
	}
	return 1;
}

/* Decode the remaining length that starts at p[0]. 1 with *value and *nbytes set, 0 if more
 * bytes are needed, -1 if a fourth byte still says "continued". Non-minimal encodings are
 * accepted: 3.1.1, unlike 5.0, does not forbid them, and they cannot exceed four bytes. */
static int varint_decode(const uint8_t *p, size_t len, uint32_t *value, size_t *nbytes)
{
	uint32_t v = 0;
	size_t i;

	for (i = 0; i < 4; i++) {
		if (i >= len)
			return 0;
		v |= (uint32_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*value = v;
			*nbytes = i + 1;
			return 1;
		}
	}
	return -1;
}

static size_t varint_size(size_t v)
{
	if (v < 128)
		return 1;
	if (v < 16384)
		return 2;
	if (v < 2097152)
		return 3;
	return 4;
}

/* The caller has checked v <= MQTT_MAX_REMAINING and that varint_size(v) bytes fit. */
static size_t varint_encode(uint8_t *p, size_t v)
{
	size_t n = 0;

	do {
		p[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

enum herr mqtt_frame(const uint8_t *buf, size_t len, size_t max_packet, size_t *total)
{
	uint32_t rl;
	size_t n, whole;
	int ret;

	*total = 0;
	if (len < 2)
		return HERR_OK;
	ret = varint_decode(buf + 1, len - 1, &rl, &n);
	if (ret < 0)
		return HERR_INVALID;
	if (ret == 0)
		return HERR_OK;
	/* At most 1 + 4 + 268435455: no overflow even with a 32-bit size_t. */
	whole = 1 + n + (size_t)rl;
	if (whole > max_packet)
		return HERR_TOOBIG;
	if (len >= whole)
		*total = whole;
	return HERR_OK;
}

static int level_count_ok(const uint8_t *t, size_t len)
{
	size_t i, levels = 1;

	for (i = 0; i < len; i++)
		if (t[i] == '/' && ++levels > MQTT_MAX_LEVELS)
			return 0;
	return 1;
}

int mqtt_topic_valid_name(const uint8_t *t, size_t len)
{
	if (len == 0 || len > MQTT_MAX_STRING)
		return 0;
	/* '+', '#' and '/' are ASCII, so they never occur inside a multi-byte sequence. */
	if (memchr(t, '+', len) || memchr(t, '#', len))
		return 0;
	return level_count_ok(t, len) && utf8_valid(t, len);
}

int mqtt_topic_valid_filter(const uint8_t *f, size_t len)
{
	size_t i;

	if (len == 0 || len > MQTT_MAX_STRING)
		return 0;
	for (i = 0; i < len; i++) {
		if (f[i] != '+' && f[i] != '#')
			continue;
		/* A wildcard fills its level alone; '#' also ends the filter (3.1.1 §4.7.1). */
		if (i > 0 && f[i - 1] != '/')
			return 0;
		if (f[i] == '+' && i + 1 < len && f[i + 1] != '/')
			return 0;
		if (f[i] == '#' && i + 1 != len)
			return 0;
	}
	return level_count_ok(f, len) && utf8_valid(f, len);
}

/* End of the level that starts at s[i]: the next '/' or len. */
static size_t level_end(const uint8_t *s, size_t len, size_t i)
{
	const uint8_t *slash = i < len ? memchr(s + i, '/', len - i) : NULL;

	return slash ? (size_t)(slash - s) : len;
}

int mqtt_topic_matches(const uint8_t *filter, size_t flen, const uint8_t *topic, size_t tlen)
{
	size_t fi = 0, ti = 0, fe, te;
	int topic_done = 0;

	/* $-topics (e.g. $SYS) are for filters that name them, not for "#" or "+/..." (§4.7.2). */
	if (tlen > 0 && topic[0] == '$' && flen > 0 && (filter[0] == '+' || filter[0] == '#'))
		return 0;
	for (;;) {
		fe = level_end(filter, flen, fi);
		/* "#" also matches the parent level: "a/#" matches "a" (§4.7.1.2). */
		if (fe - fi == 1 && filter[fi] == '#')
			return 1;
		if (topic_done)
			return 0;
		te = level_end(topic, tlen, ti);
		if (!(fe - fi == 1 && filter[fi] == '+') &&
		    (fe - fi != te - ti || memcmp(filter + fi, topic + ti, fe - fi) != 0))
			return 0;
		if (te == tlen)
			topic_done = 1;
		else
			ti = te + 1;
		if (fe == flen)
			return topic_done;
		fi = fe + 1;
	}
}

static enum herr refuse(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return HERR_INVALID;
}

static enum herr parse_connect(struct reader *r, struct mqtt_connect *c, const char **why)
{
	struct mqtt_str name;
	uint8_t flags;

	if (!rd_str(r, &name))
		return refuse(why, "CONNECT protocol name runs past the packet");
	if (!utf8_valid(name.p, name.len))
		return refuse(why, "CONNECT protocol name is not valid UTF-8");
	/* Anything else (e.g. 3.1's "MQIsdp") is another protocol, not a level to refuse. */
	if (name.len != 4 || memcmp(name.p, "MQTT", 4) != 0)
		return refuse(why, "CONNECT protocol name is not \"MQTT\"");
	if (!rd_u8(r, &c->protocol_level))
		return refuse(why, "CONNECT truncated before the protocol level");
	c->protocol_name = name;
	/* Other levels lay out the rest differently; the caller answers them with rc 1. */
	if (c->protocol_level != 4)
		return HERR_OK;

	if (!rd_u8(r, &flags) || !rd_u16(r, &c->keepalive))
		return refuse(why, "CONNECT truncated in the variable header");
	if (flags & 0x01)
		return refuse(why, "CONNECT reserved flag is set");
	c->clean_session = !!(flags & 0x02);
	c->will = !!(flags & 0x04);
	c->will_qos = (flags >> 3) & 0x03;
	c->will_retain = !!(flags & 0x20);
	c->has_password = !!(flags & 0x40);
	c->has_username = !!(flags & 0x80);
	if (c->will_qos == 3)
		return refuse(why, "CONNECT will QoS is 3");
	if (!c->will && (c->will_qos != 0 || c->will_retain))
		return refuse(why, "CONNECT will QoS or retain set without a will");
	if (c->has_password && !c->has_username)
		return refuse(why, "CONNECT password flag without username flag");

	if (!rd_str(r, &c->client_id))
		return refuse(why, "CONNECT client id runs past the packet");
	if (!utf8_valid(c->client_id.p, c->client_id.len))
		return refuse(why, "CONNECT client id is not valid UTF-8");
	if (c->will) {
		if (!rd_str(r, &c->will_topic))
			return refuse(why, "CONNECT will topic runs past the packet");
		if (!mqtt_topic_valid_name(c->will_topic.p, c->will_topic.len))
			return refuse(why, "CONNECT will topic is not a valid topic name");
		if (!rd_str(r, &c->will_payload))
			return refuse(why, "CONNECT will message runs past the packet");
	}
	if (c->has_username) {
		if (!rd_str(r, &c->username))
			return refuse(why, "CONNECT username runs past the packet");
		if (!utf8_valid(c->username.p, c->username.len))
			return refuse(why, "CONNECT username is not valid UTF-8");
	}
	if (c->has_password && !rd_str(r, &c->password))
		return refuse(why, "CONNECT password runs past the packet");
	if (rd_left(r) != 0)
		return refuse(why, "CONNECT has trailing bytes");
	return HERR_OK;
}

static enum herr parse_publish(struct reader *r, uint8_t flags, struct mqtt_publish *p,
			       const char **why)
{
	p->dup = !!(flags & 0x08);
	p->qos = (flags >> 1) & 0x03;
	p->retain = !!(flags & 0x01);
	if (p->qos == 3)
		return refuse(why, "PUBLISH QoS is 3");
	if (p->dup && p->qos == 0)
		return refuse(why, "PUBLISH DUP set with QoS 0");
	if (!rd_str(r, &p->topic))
		return refuse(why, "PUBLISH topic runs past the packet");
	if (p->topic.len == 0)
		return refuse(why, "PUBLISH topic is empty");
	if (!utf8_valid(p->topic.p, p->topic.len))
		return refuse(why, "PUBLISH topic is not valid UTF-8");
	if (!mqtt_topic_valid_name(p->topic.p, p->topic.len))
		return refuse(why, "PUBLISH topic has a wildcard or too many levels");
	if (p->qos > 0) {
		if (!rd_u16(r, &p->packet_id))
			return refuse(why, "PUBLISH truncated before the packet id");
		if (p->packet_id == 0)
			return refuse(why, "PUBLISH packet id is 0");
	}
	p->payload = r->p + r->off;
	p->payload_len = rd_left(r);
	return HERR_OK;
}

/* SUBSCRIBE (with a requested QoS after each filter) and UNSUBSCRIBE. Only a filter that is not
 * even text is a framing error; a bad filter is marked invalid and answered per filter. */
static enum herr parse_filters(struct reader *r, int with_qos, struct mqtt_subscribe *s,
			       const char **why)
{
	struct mqtt_str f;
	uint8_t qos = 0;

	if (!rd_u16(r, &s->packet_id))
		return refuse(why, "SUBSCRIBE/UNSUBSCRIBE truncated before the packet id");
	if (s->packet_id == 0)
		return refuse(why, "SUBSCRIBE/UNSUBSCRIBE packet id is 0");
	if (rd_left(r) == 0)
		return refuse(why, "SUBSCRIBE/UNSUBSCRIBE has no topic filter");
	while (rd_left(r) > 0) {
		if (s->count == MQTT_MAX_FILTERS)
			return refuse(why, "too many filters");
		if (!rd_str(r, &f))
			return refuse(why, "topic filter runs past the packet");
		if (!utf8_valid(f.p, f.len))
			return refuse(why, "topic filter is not valid UTF-8");
		if (with_qos) {
			if (!rd_u8(r, &qos))
				return refuse(why, "SUBSCRIBE filter without a requested QoS");
			if (qos > 2)
				return refuse(why, "SUBSCRIBE requested QoS is not 0, 1 or 2");
		}
		s->filters[s->count] = f;
		s->qos[s->count] = qos;
		s->valid[s->count] = (uint8_t)mqtt_topic_valid_filter(f.p, f.len);
		s->count++;
	}
	return HERR_OK;
}

static enum herr parse_id(struct reader *r, uint16_t *id, const char **why)
{
	if (!rd_u16(r, id))
		return refuse(why, "acknowledgement truncated before the packet id");
	if (*id == 0)
		return refuse(why, "acknowledgement packet id is 0");
	return HERR_OK;
}

static enum herr parse_suback(struct reader *r, uint16_t *id, const char **why)
{
	uint8_t code;
	enum herr rc;

	rc = parse_id(r, id, why);
	if (rc != HERR_OK)
		return rc;
	if (rd_left(r) == 0)
		return refuse(why, "SUBACK has no return code");
	while (rd_u8(r, &code))
		if (code > 2 && code != MQTT_SUBACK_FAILURE)
			return refuse(why, "SUBACK return code is reserved");
	return HERR_OK;
}

static enum herr parse_connack(struct reader *r, uint8_t *session_present, uint8_t *rc,
			       const char **why)
{
	if (rd_left(r) != 2)
		return refuse(why, "CONNACK remaining length is not 2");
	rd_u8(r, session_present);
	rd_u8(r, rc);
	if (*session_present & 0xfe)
		return refuse(why, "CONNACK reserved flag is set");
	if (*rc > MQTT_CONNACK_NOT_AUTHORIZED)
		return refuse(why, "CONNACK return code is reserved");
	if (*rc != MQTT_CONNACK_ACCEPTED && *session_present)
		return refuse(why, "CONNACK session present with a refusal");
	return HERR_OK;
}

/* The fixed-header flags each type must carry (3.1.1 §2.2.2); PUBLISH is checked on its own. */
static int flags_ok(unsigned type, uint8_t flags)
{
	switch (type) {
	case MQTT_PUBLISH:
		return 1;
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return flags == 0x2;
	default:
		return flags == 0;
	}
}

static enum herr parse_packet(const uint8_t *pkt, size_t len, struct mqtt_packet *out,
			      const char **why)
{
	struct reader r;
	unsigned type;
	uint32_t rl;
	size_t n;

	if (len < 2 || varint_decode(pkt + 1, len - 1, &rl, &n) != 1)
		return refuse(why, "incomplete or overlong fixed header");
	if ((size_t)rl != len - 1 - n)
		return refuse(why, "remaining length does not match the packet");
	type = pkt[0] >> 4;
	out->flags = pkt[0] & 0x0f;
	if (type < MQTT_CONNECT || type > MQTT_DISCONNECT)
		return refuse(why, "reserved packet type");
	out->type = (enum mqtt_type)type;
	if (!flags_ok(type, out->flags))
		return refuse(why, "reserved fixed-header flags are set");

	r.p = pkt + 1 + n;
	r.len = rl;
	r.off = 0;
	switch (out->type) {
	case MQTT_CONNECT:
		return parse_connect(&r, &out->u.connect, why);
	case MQTT_CONNACK:
		return parse_connack(&r, &out->u.connack.session_present, &out->u.connack.rc, why);
	case MQTT_PUBLISH:
		return parse_publish(&r, out->flags, &out->u.publish, why);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
	case MQTT_UNSUBACK:
		if (rl != 2)
			return refuse(why, "acknowledgement remaining length is not 2");
		return parse_id(&r, &out->u.packet_id, why);
	case MQTT_SUBSCRIBE:
		return parse_filters(&r, 1, &out->u.subscribe, why);
	case MQTT_SUBACK:
		return parse_suback(&r, &out->u.packet_id, why);
	case MQTT_UNSUBSCRIBE:
		return parse_filters(&r, 0, &out->u.subscribe, why);
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
	case MQTT_DISCONNECT:
		if (rl != 0)
			return refuse(why, "PINGREQ/PINGRESP/DISCONNECT remaining length is not 0");
		return HERR_OK;
	}
	return refuse(why, "reserved packet type");
}

enum herr mqtt_parse(const uint8_t *pkt, size_t len, struct mqtt_packet *out, const char **why)
{
	enum herr rc;

	memset(out, 0, sizeof(*out));
	if (why)
		*why = NULL;
	rc = parse_packet(pkt, len, out, why);
	/* A refused packet leaves nothing half-parsed behind for a careless caller to use. */
	if (rc != HERR_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* Writes the fixed header for a remaining length of rl; 0 if the whole packet does not fit. */
static size_t put_header(uint8_t *out, size_t size, uint8_t first, size_t rl)
{
	size_t n;

	if (rl > MQTT_MAX_REMAINING)
		return 0;
	n = varint_size(rl);
	if (size < 1 + n || size - 1 - n < rl)
		return 0;
	out[0] = first;
	return 1 + varint_encode(out + 1, rl);
}

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)(v & 0xff);
}

/* The encoders also return 0 for arguments that break a rule they can check cheaply (packet id 0,
 * QoS 3, DUP on QoS 0, a reserved code), so a bug upstream shows up here rather than as a peer
 * dropping the connection. Topic contents are not checked: they were validated on arrival. */
size_t mqtt_write_connack(uint8_t *out, size_t size, int session_present, uint8_t rc)
{
	if (rc > MQTT_CONNACK_NOT_AUTHORIZED || (rc != MQTT_CONNACK_ACCEPTED && session_present))
		return 0;
	if (put_header(out, size, MQTT_CONNACK << 4, 2) == 0)
		return 0;
	out[2] = session_present ? 1 : 0;
	out[3] = rc;
	return 4;
}

size_t mqtt_write_ack(uint8_t *out, size_t size, enum mqtt_type type, uint16_t packet_id)
{
	uint8_t first;

	switch (type) {
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
	case MQTT_UNSUBACK:
		first = (uint8_t)(type << 4);
		break;
	case MQTT_PUBREL:
		first = (uint8_t)(type << 4 | 0x2);
		break;
	default:
		return 0;
	}
	if (packet_id == 0 || put_header(out, size, first, 2) == 0)
		return 0;
	put_u16(out + 2, packet_id);
	return 4;
}

size_t mqtt_write_suback(uint8_t *out, size_t size, uint16_t packet_id, const uint8_t *codes,
			 size_t n)
{
	size_t h, i;

	if (packet_id == 0 || n == 0 || n > MQTT_MAX_REMAINING - 2)
		return 0;
	for (i = 0; i < n; i++)
		if (codes[i] > 2 && codes[i] != MQTT_SUBACK_FAILURE)
			return 0;
	h = put_header(out, size, MQTT_SUBACK << 4, 2 + n);
	if (h == 0)
		return 0;
	put_u16(out + h, packet_id);
	memcpy(out + h + 2, codes, n);
	return h + 2 + n;
}

size_t mqtt_write_pingresp(uint8_t *out, size_t size)
{
	return put_header(out, size, MQTT_PINGRESP << 4, 0);
}

/* The remaining length of a PUBLISH, or 0 if it cannot be encoded (it is never 0 otherwise). */
static size_t publish_remaining(size_t topic_len, size_t payload_len, uint8_t qos)
{
	size_t rl;

	if (topic_len > MQTT_MAX_STRING || qos > 2 || payload_len > MQTT_MAX_REMAINING)
		return 0;
	rl = 2 + topic_len + (qos > 0 ? 2 : 0) + payload_len;
	return rl > MQTT_MAX_REMAINING ? 0 : rl;
}

size_t mqtt_publish_size(size_t topic_len, size_t payload_len, uint8_t qos)
{
	size_t rl = publish_remaining(topic_len, payload_len, qos);

	return rl ? 1 + varint_size(rl) + rl : 0;
}

size_t mqtt_write_publish(uint8_t *out, size_t size, const uint8_t *topic, size_t topic_len,
			  const uint8_t *payload, size_t payload_len, uint8_t qos, int retain,
			  int dup, uint16_t packet_id)
{
	size_t rl, off;
	uint8_t first;

	rl = publish_remaining(topic_len, payload_len, qos);
	if (rl == 0 || topic_len == 0 || (qos > 0 && packet_id == 0) || (qos == 0 && dup))
		return 0;
	first = (uint8_t)(MQTT_PUBLISH << 4 | (dup ? 0x08 : 0) | qos << 1 | (retain ? 0x01 : 0));
	off = put_header(out, size, first, rl);
	if (off == 0)
		return 0;
	put_u16(out + off, (uint16_t)topic_len);
	off += 2;
	if (topic_len > 0)
		memcpy(out + off, topic, topic_len);
	off += topic_len;
	if (qos > 0) {
		put_u16(out + off, packet_id);
		off += 2;
	}
	/* memcpy from NULL is undefined even for 0 bytes, and an empty payload may be NULL. */
	if (payload_len > 0)
		memcpy(out + off, payload, payload_len);
	return off + payload_len;
}
