/* mosq_client: drives hearth's MQTT endpoint through libmosquitto, a client library nobody here
 * wrote, for tests/integration/14-libmosquitto.sh; in stream mode it is a device that keeps
 * publishing QoS 1 telemetry (33-kill9.sh, 34-load-held.sh), in flood mode one that reconnects as
 * fast as it can (34-load-held.sh). One mode per run, one verdict line on stdout,
 * details on stderr; exit 0 only if everything the mode checks held. Connects only to 127.0.0.1
 * (from a loopback address of 127/8 with --bind),
 * always verifies the endpoint (TLS 1.2, CA and host name), and bounds every wait in loop count
 * and wall-clock time; it never calls mosquitto_loop_forever(). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#include <mosquitto.h>

/* libmosquitto takes OpenSSL's verify mode as a plain int; this is SSL_VERIFY_PEER from
 * <openssl/ssl.h>, spelled out so the client needs no OpenSSL headers. */
#define VERIFY_PEER 0x01

#define HOST "127.0.0.1"
#define KEEPALIVE_S 60
#define LOOP_MS 100
/* A hard cap on mosquitto_loop() calls per wait, besides the deadline: the loop returns early on
 * every bit of traffic, so this only guards against a busy spin. */
#define MAX_LOOPS 1000000
#define MAX_COUNT 10000
#define TOPIC_MAX 256
#define PAYLOAD_MAX 64
/* After the last expected message, stay this long to see duplicates or strays arrive. */
#define DRAIN_MS 300
#define SUBACK_REFUSED 128

/* Stream mode: message j sets field "k<j / STREAM_BITS>" to 2^(j % STREAM_BITS), so the sum a
 * "mean" policy stores per field is a bitmap of exactly the messages it kept (doubles hold sums of
 * distinct powers of two below 2^53 exactly); 64 fields, a policy's most. */
#define STREAM_BITS 50
#define STREAM_MAX (64 * STREAM_BITS)

enum mode { MODE_NONE, MODE_ROUNDTRIP, MODE_RETAINED, MODE_FORBIDDEN, MODE_STREAM, MODE_FLOOD };

struct options {
	int port;
	const char *cafile, *cert, *key, *id, *other;
	long timeout_s;
	long count;
	long rate;              /* stream: messages per second at most */
	long window;            /* stream: unacknowledged messages at most */
	const char *acked;      /* stream: file that gets the number of each message PUBACKed */
	const char *bind;       /* the local address to connect from (127.x.y.z), or NULL */
	enum mode mode;
};

/* What the callbacks saw on one connection. */
struct conn_state {
	bool connacked;
	int connack_rc;
	bool disconnected;
	int disconnect_rc;
	bool subacked;
	int granted_qos;
	long acked;             /* on_publish calls */
	long acked_unknown;     /* PUBACKs for a mid we did not send, or twice for one */
	/* Messages: roundtrip checks each against its expected payload in order. */
	const char *want_topic;
	char (*want)[PAYLOAD_MAX];
	long want_count;
	long received;
	long mismatched;        /* wrong topic, payload, order, QoS or retain flag */
	/* For retained: the payload sought and whether it came with the retain flag. */
	const char *want_retained;
	bool got_retained;
	int *mids;              /* roundtrip: mid of each publish, -1 once acknowledged */
	long mid_count;
	FILE *acked_file;       /* stream: each acknowledged message's index, a line each, as it comes */
	long acked_low;         /* stream: no message below this index awaits its PUBACK */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* libmosquitto reports what OpenSSL said (a failed verification, say) only through its log. */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
	(void)mosq;
	(void)obj;
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		fprintf(stderr, "libmosquitto: %s\n", str);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct conn_state *st = obj;
	(void)mosq;
	st->connacked = true;
	st->connack_rc = rc;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
	struct conn_state *st = obj;
	(void)mosq;
	st->disconnected = true;
	st->disconnect_rc = rc;
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted)
{
	struct conn_state *st = obj;
	(void)mosq;
	(void)mid;
	st->subacked = true;
	st->granted_qos = qos_count >= 1 ? granted[0] : -1;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
	struct conn_state *st = obj;
	long i;
	(void)mosq;
	st->acked++;
	for (i = st->acked_low; i < st->mid_count; i++) {
		if (st->mids[i] == mid) {
			st->mids[i] = -1;
			if (st->acked_file != NULL) {
				fprintf(st->acked_file, "%ld\n", i);
				fflush(st->acked_file);
			}
			while (st->acked_low < st->mid_count && st->mids[st->acked_low] == -1)
				st->acked_low++;
			return;
		}
	}
	if (st->mids != NULL)
		st->acked_unknown++;
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	struct conn_state *st = obj;
	const char *payload = msg->payload != NULL ? msg->payload : "";
	size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	(void)mosq;

	if (st->want_retained != NULL) {
		if (strcmp(msg->topic, st->want_topic) == 0 && msg->retain &&
		    len == strlen(st->want_retained) && memcmp(payload, st->want_retained, len) == 0)
			st->got_retained = true;
		else
			fprintf(stderr, "unexpected message on %s (retain %d, %zu bytes)\n", msg->topic,
			        (int)msg->retain, len);
		return;
	}
	if (st->want == NULL)
		return;
	if (st->received >= st->want_count) {
		fprintf(stderr, "message %ld beyond the %ld expected: %.*s\n", st->received + 1,
		        st->want_count, (int)len, payload);
		st->mismatched++;
	} else if (strcmp(msg->topic, st->want_topic) != 0 || msg->qos != 1 || msg->retain ||
	           len != strlen(st->want[st->received]) ||
	           memcmp(payload, st->want[st->received], len) != 0) {
		if (st->mismatched < 10)
			fprintf(stderr, "message %ld: got %s qos %d retain %d '%.*s', wanted '%s'\n",
			        st->received + 1, msg->topic, msg->qos, (int)msg->retain, (int)len,
			        payload, st->want[st->received]);
		st->mismatched++;
	}
	st->received++;
}

/* Run the network loop until done(st) holds, the connection is gone, or the deadline passes.
 * Returns done(st). */
static bool wait_until(struct mosquitto *mosq, struct conn_state *st,
                       bool (*done)(const struct conn_state *), uint64_t deadline)
{
	long loops;
	int rc;

	for (loops = 0; loops < MAX_LOOPS && !done(st); loops++) {
		if (now_ms() >= deadline)
			break;
		rc = mosquitto_loop(mosq, LOOP_MS, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			if (!st->disconnected)
				fprintf(stderr, "mosquitto_loop: %s\n", mosquitto_strerror(rc));
			break;
		}
	}
	return done(st);
}

static bool is_connacked(const struct conn_state *st) { return st->connacked || st->disconnected; }
static bool is_subacked(const struct conn_state *st) { return st->subacked || st->disconnected; }
static bool is_disconnected(const struct conn_state *st) { return st->disconnected; }

static bool roundtrip_done(const struct conn_state *st)
{
	return st->disconnected || (st->acked >= st->mid_count && st->received >= st->want_count);
}

static bool retained_done(const struct conn_state *st)
{
	return st->got_retained || st->disconnected;
}

static bool first_acked(const struct conn_state *st)
{
	return st->acked > 0 || st->disconnected;
}

/* A new client for opts->id with TLS set up and CONNACK 0 received, or NULL. */
static struct mosquitto *client_connect(const struct options *opts, struct conn_state *st,
                                        uint64_t deadline)
{
	struct mosquitto *mosq;
	int rc;

	mosq = mosquitto_new(opts->id, true, st);
	if (mosq == NULL) {
		fprintf(stderr, "mosquitto_new: %s\n", strerror(errno));
		return NULL;
	}
	rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_set(mosq, opts->cafile, NULL, opts->cert, opts->key, NULL);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_opts_set(mosq, VERIFY_PEER, "tlsv1.2", NULL);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_insecure_set(mosq, false);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "TLS setup: %s\n", mosquitto_strerror(rc));
		goto fail;
	}
	mosquitto_log_callback_set(mosq, on_log);
	mosquitto_connect_callback_set(mosq, on_connect);
	mosquitto_disconnect_callback_set(mosq, on_disconnect);
	mosquitto_subscribe_callback_set(mosq, on_subscribe);
	mosquitto_publish_callback_set(mosq, on_publish);
	mosquitto_message_callback_set(mosq, on_message);

	rc = mosquitto_connect_bind(mosq, HOST, opts->port, KEEPALIVE_S, opts->bind);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "connect: %s\n", rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		goto fail;
	}
	if (!wait_until(mosq, st, is_connacked, deadline) || !st->connacked) {
		fprintf(stderr, "no CONNACK\n");
		goto fail;
	}
	if (st->connack_rc != 0) {
		fprintf(stderr, "CONNACK %d: %s\n", st->connack_rc, mosquitto_connack_string(st->connack_rc));
		goto fail;
	}
	return mosq;
fail:
	mosquitto_destroy(mosq);
	return NULL;
}

/* Subscribe at QoS 1 and wait for the SUBACK; returns the granted QoS, or -1. */
static int client_subscribe(struct mosquitto *mosq, struct conn_state *st, const char *topic,
                            uint64_t deadline)
{
	int rc;

	rc = mosquitto_subscribe(mosq, NULL, topic, 1);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "subscribe %s: %s\n", topic, mosquitto_strerror(rc));
		return -1;
	}
	if (!wait_until(mosq, st, is_subacked, deadline) || !st->subacked) {
		fprintf(stderr, "no SUBACK for %s\n", topic);
		return -1;
	}
	return st->granted_qos;
}

/* A clean DISCONNECT; true if the library reported it as such. */
static bool client_disconnect(struct mosquitto *mosq, struct conn_state *st, uint64_t deadline)
{
	if (st->disconnected)
		return false;
	if (mosquitto_disconnect(mosq) != MOSQ_ERR_SUCCESS)
		return false;
	if (!wait_until(mosq, st, is_disconnected, deadline))
		return false;
	return st->disconnect_rc == 0;
}

static bool random_hex(char *out, size_t out_len)
{
	uint8_t buf[8];
	size_t i;

	if (out_len < 2 * sizeof(buf) + 1 || getrandom(buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return false;
	for (i = 0; i < sizeof(buf); i++)
		snprintf(out + 2 * i, 3, "%02x", buf[i]);
	return true;
}

static bool topic_for(char *out, const char *id, const char *suffix)
{
	int n = snprintf(out, TOPIC_MAX, "hearth/v1/%s/%s", id, suffix);
	return n > 0 && n < TOPIC_MAX;
}

static int run_roundtrip(const struct options *opts, uint64_t deadline)
{
	struct conn_state st = {0};
	struct mosquitto *mosq = NULL;
	char topic[TOPIC_MAX], nonce[17];
	char (*payloads)[PAYLOAD_MAX] = NULL;
	int *mids = NULL;
	long i, published = 0;
	int granted, rc, result = 1;
	uint64_t drain_end;
	bool clean = false;

	/* The ack topic: raw telemetry is never routed back (subscribers get minimized records). */
	if (!topic_for(topic, opts->id, "ack") || !random_hex(nonce, sizeof(nonce)))
		goto out;
	payloads = calloc((size_t)opts->count, sizeof(*payloads));
	mids = calloc((size_t)opts->count, sizeof(*mids));
	if (payloads == NULL || mids == NULL)
		goto out;
	for (i = 0; i < opts->count; i++)
		snprintf(payloads[i], PAYLOAD_MAX, "{\"seq\":%ld,\"run\":\"%s\"}", i, nonce);

	mosq = client_connect(opts, &st, deadline);
	if (mosq == NULL)
		goto out;
	granted = client_subscribe(mosq, &st, topic, deadline);
	if (granted != 1) {
		fprintf(stderr, "subscription to %s granted %d, wanted 1\n", topic, granted);
		goto out;
	}
	st.want_topic = topic;
	st.want = payloads;
	st.want_count = opts->count;
	st.mids = mids;
	for (i = 0; i < opts->count && !st.disconnected; i++) {
		rc = mosquitto_publish(mosq, &mids[i], topic, (int)strlen(payloads[i]), payloads[i], 1, false);
		if (rc != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "publish %ld: %s\n", i, mosquitto_strerror(rc));
			break;
		}
		/* on_publish may already have run for earlier mids; only count what was sent. */
		st.mid_count = i + 1;
		published++;
	}
	if (published == opts->count && !wait_until(mosq, &st, roundtrip_done, deadline))
		fprintf(stderr, "timed out waiting for PUBACKs and messages\n");
	/* Stray or duplicate deliveries show up within a short bounded window. */
	drain_end = now_ms() + DRAIN_MS;
	wait_until(mosq, &st, is_disconnected, drain_end < deadline ? drain_end : deadline);
	if (st.disconnected)
		fprintf(stderr, "connection lost: %s\n", mosquitto_strerror(st.disconnect_rc));
	else if (!(clean = client_disconnect(mosq, &st, deadline)))
		fprintf(stderr, "no clean disconnect\n");

	printf("published %ld acked %ld received %ld\n", published, st.acked, st.received);
	if (st.mismatched > 0)
		fprintf(stderr, "%ld messages out of order, altered, or unexpected\n", st.mismatched);
	if (st.acked_unknown > 0)
		fprintf(stderr, "%ld PUBACKs for unknown or already acknowledged mids\n", st.acked_unknown);
	if (published == opts->count && st.acked == opts->count && st.received == opts->count &&
	    st.mismatched == 0 && st.acked_unknown == 0 && clean)
		result = 0;
out:
	mosquitto_destroy(mosq);
	free(mids);
	free(payloads);
	return result;
}

static int run_retained(const struct options *opts, uint64_t deadline)
{
	struct conn_state st = {0};
	struct mosquitto *mosq = NULL;
	char topic[TOPIC_MAX], filter[TOPIC_MAX], nonce[17], payload[PAYLOAD_MAX];
	int granted, rc, result = 1;

	if (!topic_for(topic, opts->id, "status") || !topic_for(filter, opts->id, "#") ||
	    !random_hex(nonce, sizeof(nonce)))
		goto out;
	snprintf(payload, sizeof(payload), "retained-%s", nonce);

	mosq = client_connect(opts, &st, deadline);
	if (mosq == NULL)
		goto out;
	rc = mosquitto_publish(mosq, NULL, topic, (int)strlen(payload), payload, 1, true);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "publish: %s\n", mosquitto_strerror(rc));
		goto out;
	}
	if (!wait_until(mosq, &st, first_acked, deadline) || st.acked != 1) {
		fprintf(stderr, "no PUBACK for the retained publish\n");
		goto out;
	}
	if (!client_disconnect(mosq, &st, deadline)) {
		fprintf(stderr, "no clean disconnect after publishing\n");
		goto out;
	}
	mosquitto_destroy(mosq);
	mosq = NULL;

	/* A new instance: nothing of the first connection's state carries over. */
	memset(&st, 0, sizeof(st));
	mosq = client_connect(opts, &st, deadline);
	if (mosq == NULL)
		goto out;
	st.want_topic = topic;
	st.want_retained = payload;
	granted = client_subscribe(mosq, &st, filter, deadline);
	if (granted != 1) {
		fprintf(stderr, "subscription to %s granted %d, wanted 1\n", filter, granted);
		goto out;
	}
	if (!wait_until(mosq, &st, retained_done, deadline) || !st.got_retained) {
		fprintf(stderr, "the retained message did not arrive\n");
		goto out;
	}
	if (!client_disconnect(mosq, &st, deadline)) {
		fprintf(stderr, "no clean disconnect after receiving\n");
		goto out;
	}
	printf("retained %s %s received with the retain flag\n", topic, payload);
	result = 0;
out:
	mosquitto_destroy(mosq);
	return result;
}

static int run_forbidden(const struct options *opts, uint64_t deadline)
{
	struct conn_state st = {0};
	struct mosquitto *mosq = NULL;
	char topic[TOPIC_MAX], filter[TOPIC_MAX];
	int granted, rc, result = 1;

	if (!topic_for(topic, opts->other, "status") || !topic_for(filter, opts->other, "#"))
		goto out;

	mosq = client_connect(opts, &st, deadline);
	if (mosq == NULL)
		goto out;
	rc = mosquitto_publish(mosq, NULL, topic, 5, "spoof", 1, false);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "publish: %s\n", mosquitto_strerror(rc));
		goto out;
	}
	if (!wait_until(mosq, &st, is_disconnected, deadline)) {
		fprintf(stderr, "the server did not close the connection (PUBACKs: %ld)\n", st.acked);
		goto out;
	}
	if (st.disconnect_rc == 0 || st.acked != 0) {
		fprintf(stderr, "publish to %s: disconnect rc %d, PUBACKs %ld\n", topic,
		        st.disconnect_rc, st.acked);
		goto out;
	}
	printf("publish to %s: closed by the server (%s), no PUBACK\n", topic,
	       mosquitto_strerror(st.disconnect_rc));
	/* A new instance, since the old one would resend the unacknowledged publish. */
	mosquitto_destroy(mosq);
	mosq = NULL;

	memset(&st, 0, sizeof(st));
	mosq = client_connect(opts, &st, deadline);
	if (mosq == NULL)
		goto out;
	granted = client_subscribe(mosq, &st, filter, deadline);
	printf("subscribe to %s: granted %d\n", filter, granted);
	if (granted != SUBACK_REFUSED)
		goto out;
	if (!client_disconnect(mosq, &st, deadline)) {
		fprintf(stderr, "no clean disconnect after the refused subscription\n");
		goto out;
	}
	result = 0;
out:
	mosquitto_destroy(mosq);
	return result;
}

static bool stream_done(const struct conn_state *st)
{
	return st->disconnected || st->acked >= st->mid_count;
}

/* Publish opts->count QoS 1 messages to the device's telemetry topic, at most opts->rate a second
 * and opts->window unacknowledged, writing each PUBACKed message's index to opts->acked as it
 * comes. Stops early when the connection is lost (the server was killed, say): exit 3, and the
 * file holds exactly the messages acknowledged. 0 when all were published and acknowledged. */
static int run_stream(const struct options *opts, uint64_t deadline)
{
	struct conn_state st = {0};
	struct mosquitto *mosq = NULL;
	char topic[TOPIC_MAX], payload[PAYLOAD_MAX];
	uint64_t next_send, interval_us, start;
	long j, published = 0, loops;
	int rc, result = 1;

	if (!topic_for(topic, opts->id, "telemetry"))
		return 1;
	st.mids = calloc((size_t)opts->count, sizeof(*st.mids));
	st.acked_file = fopen(opts->acked, "w");
	if (st.mids == NULL || st.acked_file == NULL) {
		fprintf(stderr, "stream: %s\n", st.mids == NULL ? "out of memory" : strerror(errno));
		goto out;
	}
	mosq = client_connect(opts, &st, deadline);
	if (mosq == NULL) {
		result = 3;
		goto out;
	}
	interval_us = 1000000u / (uint64_t)opts->rate;
	start = now_ms();
	for (loops = 0; loops < MAX_LOOPS && !st.disconnected && now_ms() < deadline; loops++) {
		uint64_t now = now_ms(), wait;

		/* Publish what the rate and the window allow now (a message's time is start + j/rate). */
		while (published < opts->count && published - st.acked < opts->window &&
		       (now - start) * 1000u >= (uint64_t)published * interval_us) {
			j = published;
			snprintf(payload, sizeof(payload), "{\"k%ld\": %llu}", j / STREAM_BITS,
			         1ULL << (j % STREAM_BITS));
			rc = mosquitto_publish(mosq, &st.mids[j], topic, (int)strlen(payload), payload, 1, false);
			if (rc != MOSQ_ERR_SUCCESS) {
				if (!st.disconnected)
					fprintf(stderr, "publish %ld: %s\n", j, mosquitto_strerror(rc));
				break;
			}
			published++;
			st.mid_count = published;
		}
		if (published == opts->count && st.acked >= published)
			break;
		next_send = start + ((uint64_t)published * interval_us) / 1000u;
		wait = published < opts->count && next_send > now ? next_send - now : LOOP_MS;
		rc = mosquitto_loop(mosq, (int)(wait < 1 ? 1 : wait > LOOP_MS ? LOOP_MS : wait), 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			if (!st.disconnected)
				fprintf(stderr, "mosquitto_loop: %s\n", mosquitto_strerror(rc));
			st.disconnected = true;
		}
	}
	if (!st.disconnected && published == opts->count)
		wait_until(mosq, &st, stream_done, deadline);
	printf("published %ld acked %ld%s\n", published, st.acked, st.disconnected ? " connection lost" : "");
	if (st.acked_unknown > 0)
		fprintf(stderr, "%ld PUBACKs for unknown or already acknowledged mids\n", st.acked_unknown);
	if (st.disconnected)
		result = 3;
	else if (published == opts->count && st.acked == published && st.acked_unknown == 0 &&
	         client_disconnect(mosq, &st, deadline))
		result = 0;
out:
	if (st.acked_file != NULL)
		fclose(st.acked_file);
	mosquitto_destroy(mosq);
	free(st.mids);
	return result;
}

/* Up to opts->count connections one after another until the deadline, each a full TLS handshake,
 * CONNECT, one QoS 1 PUBLISH and DISCONNECT; a connection the server refuses (closed before its
 * CONNACK) is counted (and said on stderr) and the next one tried at once. Prints what happened;
 * exit 0 if the loop ran to its end (the counts are the verdict). */
static int run_flood(const struct options *opts, uint64_t deadline)
{
	char topic[TOPIC_MAX];
	long tried = 0, connected = 0, acked = 0;

	if (!topic_for(topic, opts->id, "telemetry"))
		return 1;
	while (tried < opts->count && now_ms() < deadline) {
		struct conn_state st = {0};
		uint64_t until = now_ms() + 5000;
		struct mosquitto *mosq;

		tried++;
		mosq = client_connect(opts, &st, until < deadline ? until : deadline);
		if (mosq == NULL)
			continue;
		connected++;
		if (mosquitto_publish(mosq, NULL, topic, 9, "{\"k0\": 1}", 1, false) == MOSQ_ERR_SUCCESS &&
		    wait_until(mosq, &st, first_acked, until) && st.acked == 1)
			acked++;
		client_disconnect(mosq, &st, until);
		mosquitto_destroy(mosq);
	}
	printf("tried %ld connected %ld acked %ld refused %ld\n", tried, connected, acked, tried - connected);
	return 0;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static void usage(void)
{
	fprintf(stderr, "usage: mosq_client --port N --cafile CA --cert C --key K --id ID [--timeout S]\n"
	                "                   (roundtrip --count N | retained | forbidden --other ID |\n"
	                "                    stream --count N --acked FILE [--rate PER_S] [--window N] |\n"
	                "                    flood --count N [--bind 127.X.Y.Z])\n");
}

static bool parse_options(int argc, char **argv, struct options *opts)
{
	static const struct option longopts[] = {
		{"port", required_argument, NULL, 'p'},
		{"cafile", required_argument, NULL, 'a'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"id", required_argument, NULL, 'i'},
		{"timeout", required_argument, NULL, 't'},
		{"count", required_argument, NULL, 'n'},
		{"other", required_argument, NULL, 'o'},
		{"rate", required_argument, NULL, 'r'},
		{"window", required_argument, NULL, 'w'},
		{"acked", required_argument, NULL, 'A'},
		{"bind", required_argument, NULL, 'b'},
		{NULL, 0, NULL, 0},
	};
	long port = 0;
	int c;

	opts->timeout_s = 10;
	opts->count = -1;
	opts->rate = 200;
	opts->window = 16;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': if (!parse_long(optarg, 1, 65535, &port)) return false; break;
		case 'a': opts->cafile = optarg; break;
		case 'c': opts->cert = optarg; break;
		case 'k': opts->key = optarg; break;
		case 'i': opts->id = optarg; break;
		case 't': if (!parse_long(optarg, 1, 3600, &opts->timeout_s)) return false; break;
		case 'n': if (!parse_long(optarg, 1, MAX_COUNT, &opts->count)) return false; break;
		case 'o': opts->other = optarg; break;
		case 'r': if (!parse_long(optarg, 1, 100000, &opts->rate)) return false; break;
		case 'w': if (!parse_long(optarg, 1, 65535, &opts->window)) return false; break;
		case 'A': opts->acked = optarg; break;
		case 'b': opts->bind = optarg; break;
		default: return false;
		}
	}
	opts->port = (int)port;
	if (optind != argc - 1 || opts->port == 0 || opts->cafile == NULL || opts->cert == NULL ||
	    opts->key == NULL || opts->id == NULL)
		return false;
	if (strcmp(argv[optind], "roundtrip") == 0 && opts->count > 0)
		opts->mode = MODE_ROUNDTRIP;
	else if (strcmp(argv[optind], "retained") == 0)
		opts->mode = MODE_RETAINED;
	else if (strcmp(argv[optind], "forbidden") == 0 && opts->other != NULL)
		opts->mode = MODE_FORBIDDEN;
	else if (strcmp(argv[optind], "stream") == 0 && opts->count > 0 && opts->count <= STREAM_MAX &&
	         opts->acked != NULL)
		opts->mode = MODE_STREAM;
	else if (strcmp(argv[optind], "flood") == 0 && opts->count > 0)
		opts->mode = MODE_FLOOD;
	/* Traffic stays on the loopback: --bind only picks which of its addresses the client is. */
	if (opts->bind != NULL && strncmp(opts->bind, "127.", 4) != 0)
		return false;
	return opts->mode != MODE_NONE;
}

int main(int argc, char **argv)
{
	struct options opts = {0};
	uint64_t deadline;
	int result = 1;

	if (!parse_options(argc, argv, &opts)) {
		usage();
		return 2;
	}
	if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "mosquitto_lib_init failed\n");
		return 1;
	}
	deadline = now_ms() + (uint64_t)opts.timeout_s * 1000u;
	switch (opts.mode) {
	case MODE_ROUNDTRIP: result = run_roundtrip(&opts, deadline); break;
	case MODE_RETAINED: result = run_retained(&opts, deadline); break;
	case MODE_FORBIDDEN: result = run_forbidden(&opts, deadline); break;
	case MODE_STREAM: result = run_stream(&opts, deadline); break;
	case MODE_FLOOD: result = run_flood(&opts, deadline); break;
	case MODE_NONE: break;
	}
	mosquitto_lib_cleanup();
	return result;
}
