/* loadgen: drives hearth's MQTT-over-TLS endpoint from one thread (epoll, non-blocking OpenSSL) to
 * measure full and resumed mTLS handshakes, the cost of idle connections, and QoS 1 throughput.
 * A benchmark tool, not part of hearth: it connects only to 127.0.0.1, always verifies the
 * endpoint, and bounds every loop in count and the whole run in time. One "result key=value..."
 * line goes to stdout for bench/run.sh; progress and errors go to stderr. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* The only peer we ever talk to: a benchmark must never become a load generator for others. */
#define HOST "127.0.0.1"
#define ID_MAX 64
#define MAX_IDS 100000
#define MAX_CONNS 10000
#define MAX_WINDOW 64
#define BUF_CAP 2048
#define PAYLOAD_LEN 100
#define KEEPALIVE_S 60
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
/* One connection may take this long to get from connect() to CONNACK, or to get a PUBACK. */
#define CONN_TIMEOUT_NS (10 * NS_PER_S)
#define TICK_NS (100 * NS_PER_MS)
#define MAX_EVENTS 256
/* Records read from one connection per wakeup; the window keeps the server below this. */
#define READ_ROUNDS 256
#define WRITE_ROUNDS 64
#define ERRORS_SHOWN 10

/* Latency histogram, log-linear: 64 linear buckets per power of two (under 1 % error), over
 * nanoseconds up to hours, so percentiles need no stored samples. */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB * 40)

struct hist {
	uint64_t count, max;
	uint64_t buckets[HIST_BUCKETS];
};

enum mode { MODE_NONE, MODE_HANDSHAKES, MODE_RESUMED, MODE_IDLE, MODE_PUBLISH };

enum conn_state { CS_FREE, CS_TCP, CS_TLS, CS_MQTT, CS_READY };

static const char *const state_names[] = {
	[CS_FREE] = "free", [CS_TCP] = "connect", [CS_TLS] = "TLS handshake",
	[CS_MQTT] = "waiting for CONNACK", [CS_READY] = "connected",
};

struct identity {
	char id[ID_MAX + 1];
	X509 *crt;
	EVP_PKEY *key;
	SSL_SESSION *session;   /* from this device's priming connection (resumed mode) */
};

struct in_flight {
	uint16_t pid;
	uint64_t sent;          /* ns; 0 = slot unused */
};

struct conn {
	int fd;
	SSL *ssl;
	enum conn_state state;
	size_t ident;
	int reused;
	uint64_t started;       /* ns, when connect() was called */
	uint64_t deadline;      /* ns; 0 = none */
	uint64_t next_ping;     /* ns; 0 = none */
	uint32_t events;        /* current epoll interest */
	size_t write_len;       /* OpenSSL answered WANT_* to a write of this length: repeat it */
	uint8_t out[BUF_CAP];
	size_t out_off, out_len;
	uint8_t in[BUF_CAP];
	size_t in_len;
	uint32_t sent, acked;
	uint16_t next_pid;
	uint16_t inflight;
	struct in_flight win[MAX_WINDOW];
};

/* One batch of connections: a timed run, or the priming run before the resumed one. */
struct phase {
	size_t jobs, started;           /* connections to make, and made so far */
	size_t max_opening, opening;    /* connections between connect() and CONNACK */
	size_t ident_mod;               /* job j uses identity j % ident_mod */
	int keep;                       /* stay connected after CONNACK (idle, publish) */
	int prime, resume;
	size_t done;                    /* CONNACK received and closed again (handshake modes) */
	size_t ready;                   /* CONNACK received and kept (idle, publish) */
	size_t failed_open, failed_later, reused;
	int publishing;
	size_t pub_done;
	uint64_t acked;
	struct hist connect_lat, puback_lat;
};

struct loadgen {
	enum mode mode;
	unsigned long port, count, concurrency, hold_s, clients, messages, window, devices, timeout_s;
	unsigned long checkpoint;
	long server_pid;
	const char *certdir, *ids_path, *groups, *ready_file;

	SSL_CTX *ctx;
	struct identity *ids;
	size_t nids;
	int epfd;
	struct conn *conns;
	size_t nconns;
	size_t *free_slots;
	size_t nfree;
	uint64_t run_deadline;
	struct phase ph;
	size_t errors, errors_shown;
	uint8_t payload[PAYLOAD_LEN];
};

struct usage_mark {
	uint64_t wall;          /* ns */
	double client_cpu;      /* s */
	double server_cpu;      /* s; negative when unknown */
	double machine_cpu;     /* s, all CPUs busy; negative when unknown */
};

static const char usage[] =
	"loadgen --port PORT --certdir DIR --ids FILE MODE [options]\n"
	"  connects to " HOST ":PORT only; DIR holds ca.pem and ID.crt/ID.key per id in FILE\n"
	"modes:\n"
	"  --handshakes N            N full mTLS handshakes + CONNECT/CONNACK\n"
	"  --resumed N               N handshakes resuming a ticket got once per device\n"
	"  --idle N --hold S         N connections held S seconds, then closed\n"
	"  --publish --clients P --messages M   P publishers x M QoS 1 messages\n"
	"options:\n"
	"  --concurrency C           connections being opened at once (default 50)\n"
	"  --window W                unacknowledged PUBLISH per publisher (default 10, max 64)\n"
	"  --devices K               use only the first K ids (default all)\n"
	"  --groups LIST             ECDHE groups offered (default P-256)\n"
	"  --server-pid PID          report the server's CPU time over the timed part\n"
	"  --ready-file PATH         idle: created once all connections are up\n"
	"  --checkpoint K            idle: also create it once K are up, and wait until it is\n"
	"                            removed before opening the rest\n"
	"  --timeout S               the whole run (default 120)\n";

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static size_t hist_index(uint64_t v)
{
	unsigned e;
	size_t idx;

	if (v < HIST_SUB)
		return (size_t)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	idx = (size_t)(e - HIST_SUB_BITS + 1) * HIST_SUB + (size_t)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The middle of a bucket. */
static uint64_t hist_value(size_t idx)
{
	unsigned e;
	uint64_t sub;

	if (idx < HIST_SUB)
		return idx;
	e = (unsigned)(idx / HIST_SUB) + HIST_SUB_BITS - 1;
	sub = idx % HIST_SUB;
	return ((HIST_SUB + sub) << (e - HIST_SUB_BITS)) + ((1ull << (e - HIST_SUB_BITS)) >> 1);
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->buckets[hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

/* In milliseconds; 0 for an empty histogram. */
static double hist_ms(const struct hist *h, double q)
{
	uint64_t want, seen = 0, v;
	size_t i;

	if (h->count == 0)
		return 0;
	want = (uint64_t)(q * (double)h->count + 0.999999);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= want)
			break;
	}
	v = i < HIST_BUCKETS ? hist_value(i) : h->max;
	if (v > h->max)
		v = h->max;
	return (double)v / (double)NS_PER_MS;
}

/* utime + stime of another process, from /proc/PID/stat, in seconds; -1 if unknown. */
static double proc_cpu_s(long pid)
{
	char path[64], buf[1024], *p, *end;
	unsigned long long ticks = 0;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;
	int field;

	if (pid <= 0 || hz <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields are counted after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	/* The field after ')' is number 3 (state); utime and stime are 14 and 15. */
	for (field = 3; field <= 15; field++) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return -1;
		if (field >= 14) {
			errno = 0;
			ticks += strtoull(p, &end, 10);
			if (errno != 0 || end == p)
				return -1;
			p = end;
		} else {
			p += strcspn(p, " ");
		}
	}
	return (double)ticks / (double)hz;
}

static double self_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU time all CPUs spent busy since boot (user, nice, system, irq, softirq, steal), from
 * /proc/stat; -1 if unknown. Minus our own and the server's, it shows whether something else ran. */
static double machine_cpu_s(void)
{
	unsigned long long v[8] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f || hz <= 0) {
		if (f)
			fclose(f);
		return -1;
	}
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return -1;
	/* v[3] is idle, v[4] iowait. */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)hz;
}

static void mark(const struct loadgen *lg, struct usage_mark *m)
{
	m->wall = now_ns();
	m->client_cpu = self_cpu_s();
	m->server_cpu = proc_cpu_s(lg->server_pid);
	m->machine_cpu = machine_cpu_s();
}

/* The reason OpenSSL gave, for a log line. Clears its error queue. */
static const char *tls_why(SSL *ssl, int err, char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();
	long verify;

	if (err == SSL_ERROR_SYSCALL && e == 0) {
		snprintf(buf, size, "%s", errno ? strerror(errno) : "unexpected EOF from the server");
	} else if (e != 0) {
		ERR_error_string_n(e, buf, size);
		verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
		if (verify != X509_V_OK) {
			size_t used = strlen(buf);

			snprintf(buf + used, size - used, " (%s)", X509_verify_cert_error_string(verify));
		}
	} else {
		snprintf(buf, size, "SSL error %d", err);
	}
	ERR_clear_error();
	return buf;
}

static void set_events(struct loadgen *lg, struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events)
		return;
	if (epoll_ctl(lg->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

/* Close without ceremony and give the slot back. */
static void conn_drop(struct loadgen *lg, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(lg->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	SSL_free(c->ssl);
	c->ssl = NULL;
	c->state = CS_FREE;
	lg->free_slots[lg->nfree++] = (size_t)(c - lg->conns);
}

__attribute__((format(printf, 3, 4)))
static void conn_fail(struct loadgen *lg, struct conn *c, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	lg->errors++;
	/* The first few say what went wrong; the rest would only repeat it, so they are counted. */
	if (lg->errors_shown < ERRORS_SHOWN) {
		lg->errors_shown++;
		fprintf(stderr, "loadgen: %s: %s: %s\n", lg->ids[c->ident].id, state_names[c->state], why);
	}
	if (c->state == CS_READY) {
		lg->ph.failed_later++;
	} else {
		lg->ph.failed_open++;
		lg->ph.opening--;
	}
	conn_drop(lg, c);
}

static int queue_out(struct conn *c, const uint8_t *pkt, size_t len)
{
	/* Compact only while no write is pending: OpenSSL must be handed the same bytes again. */
	if (c->out_len + len > sizeof(c->out) && c->out_off > 0 && c->write_len == 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > sizeof(c->out))
		return -1;
	memcpy(c->out + c->out_len, pkt, len);
	c->out_len += len;
	return 0;
}

/* Encrypt what is queued; with push, also send every record still in the write buffer (see
 * set_bios). 0 while the connection lives (all sent, or the rest waits for EPOLLOUT); -1 once
 * it is gone. */
static int conn_flush(struct loadgen *lg, struct conn *c, int push)
{
	BIO *wbio = SSL_get_wbio(c->ssl);
	char why[256];
	int rounds;

	for (rounds = 0; c->out_off < c->out_len && rounds < WRITE_ROUNDS; rounds++) {
		size_t len = c->write_len ? c->write_len : c->out_len - c->out_off;
		int n, err;

		ERR_clear_error();
		n = SSL_write(c->ssl, c->out + c->out_off, (int)len);
		if (n > 0) {
			c->write_len = 0;
			c->out_off += (size_t)n;
			continue;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
			c->write_len = len;
			set_events(lg, c, EPOLLIN | EPOLLOUT);
			return 0;
		}
		conn_fail(lg, c, "write: %s", tls_why(c->ssl, err, why, sizeof(why)));
		return -1;
	}
	if (c->out_off < c->out_len) {
		set_events(lg, c, EPOLLIN | EPOLLOUT);
		return 0;
	}
	c->out_off = c->out_len = 0;
	if (push && BIO_wpending(wbio) > 0) {
		errno = 0;
		if (BIO_flush(wbio) <= 0) {
			if (BIO_should_retry(wbio)) {
				set_events(lg, c, EPOLLIN | EPOLLOUT);
				return 0;
			}
			conn_fail(lg, c, "send: %s", errno ? strerror(errno) : "failed");
			return -1;
		}
	}
	if (!push || BIO_wpending(wbio) == 0)
		set_events(lg, c, EPOLLIN);
	return 0;
}

/* Say goodbye the way a device would (DISCONNECT, close_notify), best effort and without waiting
 * for the server: what happens after the goodbye is not part of any measurement. */
static void conn_finish(struct loadgen *lg, struct conn *c)
{
	static const uint8_t disconnect[2] = { 0xe0, 0x00 };

	ERR_clear_error();
	if (c->state == CS_READY && c->out_off == c->out_len)
		(void)SSL_write(c->ssl, disconnect, sizeof(disconnect));
	(void)SSL_shutdown(c->ssl);
	(void)BIO_flush(SSL_get_wbio(c->ssl));
	ERR_clear_error();
	conn_drop(lg, c);
}

static size_t put_remaining_length(uint8_t *p, size_t len)
{
	size_t n = 0;

	do {
		uint8_t b = (uint8_t)(len % 128);

		len /= 128;
		p[n++] = (uint8_t)(len ? b | 0x80 : b);
	} while (len && n < 4);
	return n;
}

static int queue_connect(struct conn *c, const char *id)
{
	uint8_t pkt[16 + ID_MAX];
	size_t idlen = strlen(id), n = 0;

	pkt[n++] = 0x10;
	n += put_remaining_length(pkt + n, 10 + 2 + idlen);
	memcpy(pkt + n, "\x00\x04MQTT\x04", 7);
	n += 7;
	pkt[n++] = 0x02;                         /* clean session; no will, no credentials */
	pkt[n++] = (uint8_t)(KEEPALIVE_S >> 8);
	pkt[n++] = (uint8_t)(KEEPALIVE_S & 0xff);
	pkt[n++] = (uint8_t)(idlen >> 8);
	pkt[n++] = (uint8_t)(idlen & 0xff);
	memcpy(pkt + n, id, idlen);
	n += idlen;
	return queue_out(c, pkt, n);
}

/* Fill the window with QoS 1 PUBLISH packets to the device's own telemetry topic. Each is written
 * on its own, so in its own TLS record, as a device's MQTT library would (several packets in one
 * record would flatter the server's cost per message); the records then leave in one send(). */
static int pump_publish(struct loadgen *lg, struct conn *c)
{
	char topic[ID_MAX + 32];
	uint8_t pkt[sizeof(topic) + PAYLOAD_LEN + 16];
	int tlen = snprintf(topic, sizeof(topic), "hearth/v1/%s/telemetry", lg->ids[c->ident].id);

	if (tlen < 0 || (size_t)tlen >= sizeof(topic)) {
		conn_fail(lg, c, "topic too long");
		return -1;
	}
	while (c->inflight < lg->window && c->sent < lg->messages) {
		size_t n = 0;
		uint16_t pid = c->next_pid;
		struct in_flight *slot = &c->win[pid % MAX_WINDOW];

		/* Packet ids wrap, and ids 64 apart share a slot: the window (at most 64) keeps the
		 * older one acknowledged before its successor is sent, with acknowledgements in order. */
		if (slot->sent != 0)
			break;
		pkt[n++] = 0x32;                 /* PUBLISH, QoS 1 */
		n += put_remaining_length(pkt + n, 2 + (size_t)tlen + 2 + PAYLOAD_LEN);
		pkt[n++] = (uint8_t)(tlen >> 8);
		pkt[n++] = (uint8_t)(tlen & 0xff);
		memcpy(pkt + n, topic, (size_t)tlen);
		n += (size_t)tlen;
		pkt[n++] = (uint8_t)(pid >> 8);
		pkt[n++] = (uint8_t)(pid & 0xff);
		memcpy(pkt + n, lg->payload, PAYLOAD_LEN);
		n += PAYLOAD_LEN;
		if (queue_out(c, pkt, n) != 0)
			break;
		slot->pid = pid;
		slot->sent = now_ns();
		c->next_pid = (uint16_t)(pid == 65535 ? 1 : pid + 1);
		c->inflight++;
		c->sent++;
		if (c->deadline == 0)
			c->deadline = slot->sent + CONN_TIMEOUT_NS;
		if (conn_flush(lg, c, 0) != 0)
			return -1;
	}
	return conn_flush(lg, c, 1);
}

/* 0: go on reading; -1: the connection is gone (failed or finished). */
static int on_connack(struct loadgen *lg, struct conn *c, const uint8_t *body, size_t len)
{
	struct phase *ph = &lg->ph;
	uint64_t now = now_ns();

	if (c->state != CS_MQTT || len != 2) {
		conn_fail(lg, c, "unexpected CONNACK");
		return -1;
	}
	if (body[1] != 0) {
		conn_fail(lg, c, "CONNACK refused the connection, return code %u", body[1]);
		return -1;
	}
	hist_add(&ph->connect_lat, now - c->started);
	if (c->reused)
		ph->reused++;
	ph->opening--;
	c->deadline = 0;
	if (!ph->keep) {
		ph->done++;
		c->state = CS_READY;
		conn_finish(lg, c);
		return -1;
	}
	c->state = CS_READY;
	ph->ready++;
	if (lg->mode == MODE_IDLE)
		c->next_ping = now + KEEPALIVE_S / 2 * NS_PER_S;
	return 0;
}

static int on_puback(struct loadgen *lg, struct conn *c, const uint8_t *body, size_t len)
{
	struct phase *ph = &lg->ph;
	struct in_flight *slot;
	uint16_t pid;
	uint64_t now = now_ns();

	if (c->state != CS_READY || len != 2) {
		conn_fail(lg, c, "unexpected PUBACK");
		return -1;
	}
	pid = (uint16_t)((body[0] << 8) | body[1]);
	slot = &c->win[pid % MAX_WINDOW];
	if (slot->sent == 0 || slot->pid != pid) {
		conn_fail(lg, c, "PUBACK for packet id %u, which is not in flight", pid);
		return -1;
	}
	hist_add(&ph->puback_lat, now - slot->sent);
	slot->sent = 0;
	c->inflight--;
	c->acked++;
	ph->acked++;
	c->deadline = c->inflight ? now + CONN_TIMEOUT_NS : 0;
	if (c->acked == lg->messages) {
		ph->pub_done++;
		conn_finish(lg, c);
		return -1;
	}
	return 0;
}

static int on_packet(struct loadgen *lg, struct conn *c, uint8_t type, const uint8_t *body, size_t len)
{
	switch (type) {
	case 0x20:
		return on_connack(lg, c, body, len);
	case 0x40:
		return on_puback(lg, c, body, len);
	case 0xd0:                               /* PINGRESP */
		return 0;
	default:
		conn_fail(lg, c, "unexpected packet type 0x%02x from the server", type);
		return -1;
	}
}

/* Every complete packet in the input buffer. 0, or -1 once the connection is gone. */
static int parse_input(struct loadgen *lg, struct conn *c)
{
	size_t off = 0;

	while (off < c->in_len) {
		const uint8_t *p = c->in + off;
		size_t avail = c->in_len - off, rl = 0, hl, shift = 0;
		int complete = 0;

		for (hl = 1; hl < avail && hl <= 4; hl++, shift += 7) {
			rl |= (size_t)(p[hl] & 0x7f) << shift;
			if (!(p[hl] & 0x80)) {
				complete = 1;
				hl++;
				break;
			}
		}
		if (!complete && hl > 4) {
			conn_fail(lg, c, "malformed remaining length from the server");
			return -1;
		}
		if (!complete || rl > avail - hl)
			break;
		if (on_packet(lg, c, p[0], p + hl, rl) != 0)
			return -1;
		off += hl + rl;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return 0;
}

/* Read until OpenSSL wants more from the socket. 0, or -1 once the connection is gone. */
static int conn_read(struct loadgen *lg, struct conn *c)
{
	char why[256];
	int rounds;

	for (rounds = 0; rounds < READ_ROUNDS; rounds++) {
		int n, err;

		if (c->in_len == sizeof(c->in)) {
			conn_fail(lg, c, "server packet larger than %zu bytes", sizeof(c->in));
			return -1;
		}
		ERR_clear_error();
		n = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof(c->in) - c->in_len));
		if (n > 0) {
			c->in_len += (size_t)n;
			if (parse_input(lg, c) != 0)
				return -1;
			continue;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_READ)
			return 0;
		if (err == SSL_ERROR_WANT_WRITE) {
			set_events(lg, c, EPOLLIN | EPOLLOUT);
			return 0;
		}
		if (err == SSL_ERROR_ZERO_RETURN)
			conn_fail(lg, c, "closed by the server");
		else
			conn_fail(lg, c, "read: %s", tls_why(c->ssl, err, why, sizeof(why)));
		return -1;
	}
	conn_fail(lg, c, "more than %d records in one go from the server", READ_ROUNDS);
	return -1;
}

static void conn_handshake(struct loadgen *lg, struct conn *c)
{
	struct identity *ident = &lg->ids[c->ident];
	char why[256];
	int ret, err;

	ERR_clear_error();
	ret = SSL_do_handshake(c->ssl);
	if (ret != 1) {
		err = SSL_get_error(c->ssl, ret);
		if (err == SSL_ERROR_WANT_READ)
			set_events(lg, c, EPOLLIN);
		else if (err == SSL_ERROR_WANT_WRITE)
			set_events(lg, c, EPOLLOUT);
		else
			conn_fail(lg, c, "%s", tls_why(c->ssl, err, why, sizeof(why)));
		return;
	}
	/* SSL_VERIFY_PEER already failed the handshake otherwise; checked again because a benchmark
	 * that silently stopped verifying would measure something else. */
	if (SSL_get_verify_result(c->ssl) != X509_V_OK || !SSL_get0_peer_certificate(c->ssl)) {
		conn_fail(lg, c, "endpoint certificate not verified");
		return;
	}
	c->reused = SSL_session_reused(c->ssl);
	if (lg->ph.prime && !ident->session) {
		ident->session = SSL_get1_session(c->ssl);
		if (ident->session && !SSL_SESSION_is_resumable(ident->session)) {
			SSL_SESSION_free(ident->session);
			ident->session = NULL;
		}
	}
	c->state = CS_MQTT;
	if (queue_connect(c, ident->id) != 0) {
		conn_fail(lg, c, "CONNECT does not fit the output buffer");
		return;
	}
	if (conn_flush(lg, c, 1) != 0)
		return;
	(void)conn_read(lg, c);
}

/* Reads straight from the socket; writes through a buffer, so the records of several packets
 * leave in one send(): the loadgen's system calls would otherwise cap the message rate on a small
 * machine before the server's did. What the server sees is the same as from a device whose
 * packets queue up in its socket. */
static int set_bios(SSL *ssl, int fd)
{
	BIO *sock = BIO_new_socket(fd, BIO_NOCLOSE);
	BIO *buf = BIO_new(BIO_f_buffer());

	if (!sock || !buf || BIO_set_write_buffer_size(buf, 16384) != 1 || BIO_up_ref(sock) != 1) {
		BIO_free(buf);
		BIO_free(sock);
		return -1;
	}
	BIO_push(buf, sock);
	SSL_set_bio(ssl, sock, buf);  /* ownership passed: the read side and the chain hold a ref each */
	return 0;
}

static void conn_tls_begin(struct loadgen *lg, struct conn *c)
{
	struct identity *ident = &lg->ids[c->ident];
	char why[256];
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
		conn_fail(lg, c, "connect: %s", strerror(err ? err : errno));
		return;
	}
	ERR_clear_error();
	c->ssl = SSL_new(lg->ctx);
	if (!c->ssl || set_bios(c->ssl, c->fd) != 0 || SSL_use_certificate(c->ssl, ident->crt) != 1 ||
	    SSL_use_PrivateKey(c->ssl, ident->key) != 1 ||
	    (lg->ph.resume && ident->session && SSL_set_session(c->ssl, ident->session) != 1)) {
		conn_fail(lg, c, "TLS setup: %s", tls_why(c->ssl, SSL_ERROR_SSL, why, sizeof(why)));
		return;
	}
	SSL_set_connect_state(c->ssl);
	c->state = CS_TLS;
	conn_handshake(lg, c);
}

static void conn_start(struct loadgen *lg, struct conn *c, size_t ident)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)lg->port) };
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->ident = ident;
	c->next_pid = 1;
	c->state = CS_TCP;
	c->started = now_ns();
	c->deadline = c->started + CONN_TIMEOUT_NS;
	lg->ph.opening++;
	inet_pton(AF_INET, HOST, &sa.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_fail(lg, c, "socket: %s", strerror(errno));
		return;
	}
	/* Like the server: MQTT packets are small and latency is what we measure. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
		conn_fail(lg, c, "connect: %s", strerror(errno));
		return;
	}
	if (epoll_ctl(lg->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		conn_fail(lg, c, "epoll_ctl: %s", strerror(errno));
		return;
	}
	c->events = EPOLLOUT;
}

static void conn_event(struct loadgen *lg, struct conn *c, uint32_t events)
{
	switch (c->state) {
	case CS_FREE:
		return;   /* closed earlier in this batch of events */
	case CS_TCP:
		conn_tls_begin(lg, c);
		return;
	case CS_TLS:
		conn_handshake(lg, c);
		return;
	case CS_MQTT:
	case CS_READY:
		if ((events & EPOLLOUT) && conn_flush(lg, c, 1) != 0)
			return;
		if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_read(lg, c) != 0)
			return;
		/* Acknowledgements read above opened the window again. */
		if (lg->ph.publishing && c->state == CS_READY)
			(void)pump_publish(lg, c);
		return;
	}
}

static void tick(struct loadgen *lg, uint64_t now)
{
	static const uint8_t pingreq[2] = { 0xc0, 0x00 };
	size_t i;

	for (i = 0; i < lg->nconns; i++) {
		struct conn *c = &lg->conns[i];

		if (c->state == CS_FREE)
			continue;
		if (c->deadline != 0 && now >= c->deadline) {
			conn_fail(lg, c, c->state == CS_READY ? "no PUBACK within %llu s" :
				  "no progress within %llu s", (unsigned long long)(CONN_TIMEOUT_NS / NS_PER_S));
			continue;
		}
		/* Idle connections stay within their keepalive, as a real device's would. */
		if (c->next_ping != 0 && now >= c->next_ping) {
			c->next_ping = now + KEEPALIVE_S / 2 * NS_PER_S;
			if (queue_out(c, pingreq, sizeof(pingreq)) == 0)
				(void)conn_flush(lg, c, 1);
		}
	}
}

static void start_jobs(struct loadgen *lg)
{
	struct phase *ph = &lg->ph;

	while (ph->started < ph->jobs && ph->opening < ph->max_opening && lg->nfree > 0) {
		struct conn *c = &lg->conns[lg->free_slots[--lg->nfree]];
		size_t job = ph->started++;

		conn_start(lg, c, job % ph->ident_mod);
	}
}

static int opening_done(const struct loadgen *lg)
{
	const struct phase *ph = &lg->ph;

	return ph->done + ph->ready + ph->failed_open == ph->jobs;
}

static int publishing_done(const struct loadgen *lg)
{
	const struct phase *ph = &lg->ph;

	return ph->pub_done + ph->failed_later + ph->failed_open == ph->jobs;
}

/* Serve events until done() holds or, without done, until `until` (ns). -1 when the whole run's
 * time is up first. */
static int run_until(struct loadgen *lg, int (*done)(const struct loadgen *), uint64_t until)
{
	struct epoll_event events[MAX_EVENTS];
	uint64_t next_tick = now_ns() + TICK_NS;

	for (;;) {
		uint64_t now;
		int i, n;

		start_jobs(lg);
		now = now_ns();
		if (done ? done(lg) : now >= until)
			return 0;
		if (now >= lg->run_deadline) {
			fprintf(stderr, "loadgen: the run's %lu s are up\n", lg->timeout_s);
			return -1;
		}
		n = epoll_wait(lg->epfd, events, MAX_EVENTS, (int)(TICK_NS / NS_PER_MS));
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "loadgen: epoll_wait: %s\n", strerror(errno));
			return -1;
		}
		for (i = 0; i < n; i++)
			conn_event(lg, events[i].data.ptr, events[i].events);
		now = now_ns();
		if (now >= next_tick) {
			tick(lg, now);
			next_tick = now + TICK_NS;
		}
	}
}

static void phase_begin(struct loadgen *lg, size_t jobs, size_t max_opening, size_t ident_mod, int keep)
{
	memset(&lg->ph, 0, sizeof(lg->ph));
	lg->ph.jobs = jobs;
	lg->ph.max_opening = max_opening;
	lg->ph.ident_mod = ident_mod ? ident_mod : 1;
	lg->ph.keep = keep;
}

static void close_all(struct loadgen *lg)
{
	size_t i;

	for (i = 0; i < lg->nconns; i++) {
		struct conn *c = &lg->conns[i];

		if (c->state == CS_READY)
			conn_finish(lg, c);
		else if (c->state != CS_FREE)
			conn_fail(lg, c, "still opening at the end of the run");
	}
}

static double seconds(uint64_t ns)
{
	return (double)ns / (double)NS_PER_S;
}

static void print_cpu(const struct usage_mark *a, const struct usage_mark *b)
{
	double client = b->client_cpu - a->client_cpu;

	printf(" client_cpu_s=%.3f", client);
	if (a->server_cpu < 0 || b->server_cpu < 0)
		return;
	printf(" server_cpu_s=%.3f", b->server_cpu - a->server_cpu);
	if (a->machine_cpu >= 0 && b->machine_cpu >= 0)
		printf(" other_cpu_s=%.3f", b->machine_cpu - a->machine_cpu - client -
		       (b->server_cpu - a->server_cpu));
}

static int run_handshakes(struct loadgen *lg, int resume)
{
	struct usage_mark a, b;
	size_t primed = 0, prime_jobs = 0, i;
	int rc = 0;

	if (resume) {
		/* One full handshake per device, untimed, for a ticket each. */
		phase_begin(lg, lg->count < lg->nids ? lg->count : lg->nids, lg->concurrency,
			    lg->nids, 0);
		lg->ph.prime = 1;
		rc = run_until(lg, opening_done, 0);
		prime_jobs = lg->ph.jobs;
		for (i = 0; i < lg->nids; i++)
			primed += lg->ids[i].session != NULL;
		fprintf(stderr, "loadgen: priming: %zu connections, %zu failed, %zu tickets\n", lg->ph.jobs,
			lg->ph.failed_open, primed);
		if (rc != 0 || primed == 0)
			return 2;
	}
	/* Job j resumes device j % prime_jobs: fewer jobs than devices never repeat one, more never
	 * have one device twice at once, as concurrency <= devices. */
	phase_begin(lg, lg->count, lg->concurrency, resume ? prime_jobs : lg->nids, 0);
	lg->ph.resume = resume;
	mark(lg, &a);
	rc = run_until(lg, opening_done, 0);
	close_all(lg);
	mark(lg, &b);
	printf("result mode=%s ok=%zu failed=%zu elapsed_s=%.3f rate=%.1f reused=%zu reused_frac=%.4f",
	       resume ? "resumed" : "handshakes", lg->ph.done, lg->ph.failed_open, seconds(b.wall - a.wall),
	       (double)lg->ph.done / seconds(b.wall - a.wall), lg->ph.reused,
	       lg->ph.done ? (double)lg->ph.reused / (double)lg->ph.done : 0.0);
	if (resume)
		printf(" primed=%zu", primed);
	printf(" p50_ms=%.3f p99_ms=%.3f max_ms=%.3f concurrency=%lu", hist_ms(&lg->ph.connect_lat, 0.50),
	       hist_ms(&lg->ph.connect_lat, 0.99), (double)lg->ph.connect_lat.max / (double)NS_PER_MS,
	       lg->concurrency);
	print_cpu(&a, &b);
	printf("\n");
	if (rc != 0)
		return 2;
	return lg->ph.failed_open ? 1 : 0;
}

static int write_ready_file(const char *path, size_t n)
{
	char tmp[4096];
	FILE *f;
	int len = snprintf(tmp, sizeof(tmp), "%s.tmp", path);

	if (len < 0 || (size_t)len >= sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%zu\n", n);
	if (fclose(f) != 0)
		return -1;
	/* Renamed into place, so whoever polls for it never sees it half written. */
	return rename(tmp, path);
}

static int ready_file_gone(const struct loadgen *lg)
{
	return access(lg->ready_file, F_OK) != 0;
}

static int run_idle(struct loadgen *lg)
{
	struct usage_mark a, b, c;
	size_t dropped;
	int rc = 0;

	phase_begin(lg, lg->count, lg->concurrency, lg->nids, 1);
	mark(lg, &a);
	/* A second point for the harness's memory reading: the cost of the connections between the
	 * checkpoint and the end is free of heap the server kept from earlier runs. */
	if (lg->checkpoint && lg->ready_file) {
		lg->ph.jobs = lg->checkpoint;
		rc = run_until(lg, opening_done, 0);
		if (rc == 0 && write_ready_file(lg->ready_file, lg->ph.ready) != 0) {
			fprintf(stderr, "loadgen: %s: %s\n", lg->ready_file, strerror(errno));
			rc = -1;
		}
		if (rc == 0)
			rc = run_until(lg, ready_file_gone, 0);
		lg->ph.jobs = lg->count;
	}
	if (rc == 0)
		rc = run_until(lg, opening_done, 0);
	mark(lg, &b);
	fprintf(stderr, "loadgen: %zu connections up in %.2f s (%zu failed); holding %lu s\n", lg->ph.ready,
		seconds(b.wall - a.wall), lg->ph.failed_open, lg->hold_s);
	if (rc == 0 && lg->ready_file && write_ready_file(lg->ready_file, lg->ph.ready) != 0) {
		fprintf(stderr, "loadgen: %s: %s\n", lg->ready_file, strerror(errno));
		rc = -1;
	}
	if (rc == 0)
		rc = run_until(lg, NULL, b.wall + lg->hold_s * NS_PER_S);
	mark(lg, &c);
	dropped = lg->ph.failed_later;
	close_all(lg);
	printf("result mode=idle requested=%zu established=%zu failed=%zu dropped=%zu open_s=%.3f "
	       "held_s=%.3f p50_ms=%.3f p99_ms=%.3f", lg->ph.jobs, lg->ph.ready, lg->ph.failed_open, dropped,
	       seconds(b.wall - a.wall), seconds(c.wall - b.wall), hist_ms(&lg->ph.connect_lat, 0.50),
	       hist_ms(&lg->ph.connect_lat, 0.99));
	print_cpu(&b, &c);
	printf("\n");
	if (rc != 0)
		return 2;
	return lg->ph.failed_open || dropped ? 1 : 0;
}

static int run_publish(struct loadgen *lg)
{
	struct usage_mark a, b;
	size_t i;
	int rc;

	phase_begin(lg, lg->clients, lg->concurrency, lg->nids, 1);
	rc = run_until(lg, opening_done, 0);
	fprintf(stderr, "loadgen: %zu publishers connected (%zu failed)\n", lg->ph.ready, lg->ph.failed_open);
	mark(lg, &a);
	if (rc == 0) {
		/* Everyone starts together, so the rate is not diluted by connection set-up. */
		lg->ph.publishing = 1;
		for (i = 0; i < lg->nconns; i++) {
			if (lg->conns[i].state == CS_READY)
				(void)pump_publish(lg, &lg->conns[i]);
		}
		rc = run_until(lg, publishing_done, 0);
	}
	mark(lg, &b);
	close_all(lg);
	printf("result mode=publish clients=%zu ready=%zu messages=%lu acked=%llu failed=%zu elapsed_s=%.3f "
	       "rate=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f window=%lu", lg->ph.jobs, lg->ph.ready,
	       lg->messages, (unsigned long long)lg->ph.acked, lg->ph.failed_open + lg->ph.failed_later,
	       seconds(b.wall - a.wall), (double)lg->ph.acked / seconds(b.wall - a.wall),
	       hist_ms(&lg->ph.puback_lat, 0.50), hist_ms(&lg->ph.puback_lat, 0.99),
	       (double)lg->ph.puback_lat.max / (double)NS_PER_MS, lg->window);
	print_cpu(&a, &b);
	printf("\n");
	if (rc != 0)
		return 2;
	return lg->ph.failed_open || lg->ph.failed_later ? 1 : 0;
}

static int valid_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

static int load_pem(const char *dir, const char *id, const char *ext, X509 **crt, EVP_PKEY **key)
{
	char path[4096];
	FILE *f;
	int n = snprintf(path, sizeof(path), "%s/%s.%s", dir, id, ext);

	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (crt)
		*crt = PEM_read_X509(f, NULL, NULL, NULL);
	else
		*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (crt ? !*crt : !*key) {
		fprintf(stderr, "loadgen: %s: not a PEM %s\n", path, crt ? "certificate" : "private key");
		return -1;
	}
	return 0;
}

static int load_ids(struct loadgen *lg)
{
	char line[ID_MAX + 4];
	size_t limit = lg->devices ? lg->devices : MAX_IDS, lines = 0;
	FILE *f = NULL;
	int rc = -1;

	lg->ids = calloc(limit, sizeof(*lg->ids));
	if (!lg->ids)
		goto out;
	f = fopen(lg->ids_path, "r");
	if (!f) {
		fprintf(stderr, "loadgen: %s: %s\n", lg->ids_path, strerror(errno));
		goto out;
	}
	while (lg->nids < limit && lines++ < MAX_IDS && fgets(line, sizeof(line), f)) {
		struct identity *ident = &lg->ids[lg->nids];
		size_t len = strcspn(line, "\r\n");

		if (line[len] == '\0' && !feof(f)) {
			fprintf(stderr, "loadgen: %s: line %zu is too long for a device id\n", lg->ids_path, lines);
			goto out;
		}
		line[len] = '\0';
		if (len == 0)
			continue;
		if (!valid_id(line)) {
			fprintf(stderr, "loadgen: %s: line %zu is not a device id\n", lg->ids_path, lines);
			goto out;
		}
		memcpy(ident->id, line, len + 1);
		lg->nids++;   /* counted now, so the cleanup frees what is half loaded */
		if (load_pem(lg->certdir, line, "crt", &ident->crt, NULL) != 0 ||
		    load_pem(lg->certdir, line, "key", NULL, &ident->key) != 0)
			goto out;
		if (X509_check_private_key(ident->crt, ident->key) != 1) {
			fprintf(stderr, "loadgen: %s: key does not match the certificate\n", line);
			goto out;
		}
	}
	if (lg->nids == 0) {
		fprintf(stderr, "loadgen: %s: no device ids\n", lg->ids_path);
		goto out;
	}
	rc = 0;
out:
	if (f)
		fclose(f);
	ERR_clear_error();
	return rc;
}

static int ctx_setup(struct loadgen *lg)
{
	char ca[4096];
	int n = snprintf(ca, sizeof(ca), "%s/ca.pem", lg->certdir);

	if (n < 0 || (size_t)n >= sizeof(ca))
		return -1;
	lg->ctx = SSL_CTX_new(TLS_client_method());
	if (!lg->ctx)
		goto fail;
	/* One protocol, one suite, one group: the same handshake for every server we compare. */
	if (SSL_CTX_set_min_proto_version(lg->ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(lg->ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(lg->ctx, "ECDHE-ECDSA-AES128-GCM-SHA256") != 1 ||
	    SSL_CTX_set1_groups_list(lg->ctx, lg->groups) != 1)
		goto fail;
	if (SSL_CTX_load_verify_locations(lg->ctx, ca, NULL) != 1)
		goto fail;
	SSL_CTX_set_verify(lg->ctx, SSL_VERIFY_PEER, NULL);
	/* An IP literal is not allowed in SNI (RFC 6066 §3), so none is sent; the endpoint certificate
	 * must name 127.0.0.1 in its subjectAltName instead. */
	if (X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(lg->ctx), HOST) != 1)
		goto fail;
	SSL_CTX_set_mode(lg->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return 0;
fail:
	fprintf(stderr, "loadgen: TLS client setup (%s): ", ca);
	ERR_print_errors_fp(stderr);
	return -1;
}

static int parse_args(struct loadgen *lg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "certdir", required_argument, NULL, 'c' },
		{ "ids", required_argument, NULL, 'i' },
		{ "handshakes", required_argument, NULL, 1 },
		{ "resumed", required_argument, NULL, 2 },
		{ "idle", required_argument, NULL, 3 },
		{ "publish", no_argument, NULL, 4 },
		{ "concurrency", required_argument, NULL, 5 },
		{ "hold", required_argument, NULL, 6 },
		{ "clients", required_argument, NULL, 7 },
		{ "messages", required_argument, NULL, 8 },
		{ "window", required_argument, NULL, 9 },
		{ "devices", required_argument, NULL, 10 },
		{ "timeout", required_argument, NULL, 11 },
		{ "groups", required_argument, NULL, 12 },
		{ "server-pid", required_argument, NULL, 13 },
		{ "ready-file", required_argument, NULL, 14 },
		{ "checkpoint", required_argument, NULL, 15 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	int c, li = 0, modes = 0;

	while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
		unsigned long *dst = NULL, min = 1, max = MAX_CONNS;

		switch (c) {
		case 'p': dst = &lg->port; max = 65535; break;
		case 'c': lg->certdir = optarg; continue;
		case 'i': lg->ids_path = optarg; continue;
		case 1: lg->mode = MODE_HANDSHAKES; modes++; dst = &lg->count; max = 10000000; break;
		case 2: lg->mode = MODE_RESUMED; modes++; dst = &lg->count; max = 10000000; break;
		case 3: lg->mode = MODE_IDLE; modes++; dst = &lg->count; break;
		case 4: lg->mode = MODE_PUBLISH; modes++; continue;
		case 5: dst = &lg->concurrency; break;
		case 6: dst = &lg->hold_s; min = 0; max = 3600; break;
		case 7: dst = &lg->clients; break;
		case 8: dst = &lg->messages; max = 10000000; break;
		case 9: dst = &lg->window; max = MAX_WINDOW; break;
		case 10: dst = &lg->devices; max = MAX_IDS; break;
		case 11: dst = &lg->timeout_s; max = 86400; break;
		case 12: lg->groups = optarg; continue;
		case 13:
			if (parse_ulong(optarg, 1, 4194304, &v) != 0)
				goto bad;
			lg->server_pid = (long)v;
			continue;
		case 14: lg->ready_file = optarg; continue;
		case 15: dst = &lg->checkpoint; break;
		case 'h': fputs(usage, stdout); exit(0);
		default: goto bad;
		}
		if (parse_ulong(optarg, min, max, dst) != 0) {
			fprintf(stderr, "loadgen: --%s must be %lu..%lu\n", opts[li].name, min, max);
			goto bad;
		}
	}
	if (optind != argc || modes != 1 || !lg->port || !lg->certdir || !lg->ids_path)
		goto bad;
	if (lg->mode == MODE_PUBLISH && (!lg->clients || !lg->messages))
		goto bad;
	if (lg->checkpoint && (lg->mode != MODE_IDLE || lg->checkpoint >= lg->count || !lg->ready_file)) {
		fprintf(stderr, "loadgen: --checkpoint needs --idle N > K and --ready-file\n");
		goto bad;
	}
	if (lg->mode == MODE_IDLE && lg->hold_s >= lg->timeout_s) {
		fprintf(stderr, "loadgen: --hold must be shorter than --timeout\n");
		goto bad;
	}
	return 0;
bad:
	fputs(usage, stderr);
	return -1;
}

int main(int argc, char **argv)
{
	struct loadgen lg;
	struct rlimit rl;
	size_t i, need;
	int rc = 2;

	memset(&lg, 0, sizeof(lg));
	lg.epfd = -1;
	lg.concurrency = 50;
	lg.hold_s = 10;
	lg.window = 10;
	lg.timeout_s = 120;
	lg.groups = "P-256";
	if (parse_args(&lg, argc, argv) != 0)
		return 2;
	lg.run_deadline = now_ns() + lg.timeout_s * NS_PER_S;
	/* A write to a connection the server already closed must be an error, not the end of us. */
	signal(SIGPIPE, SIG_IGN);
	/* Every connection is a descriptor: use all the kernel allows us. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (load_ids(&lg) != 0 || ctx_setup(&lg) != 0)
		goto out;
	need = lg.mode == MODE_IDLE ? lg.count : lg.mode == MODE_PUBLISH ? lg.clients : lg.concurrency;
	/* Two live connections of one device would have the server close the older one. */
	if (need > lg.nids) {
		fprintf(stderr, "loadgen: %zu connections at once need as many device ids, have %zu\n", need,
			lg.nids);
		goto out;
	}
	lg.nconns = need;
	lg.conns = calloc(lg.nconns, sizeof(*lg.conns));
	lg.free_slots = calloc(lg.nconns, sizeof(*lg.free_slots));
	lg.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!lg.conns || !lg.free_slots || lg.epfd < 0) {
		fprintf(stderr, "loadgen: out of memory or descriptors\n");
		goto out;
	}
	for (i = 0; i < lg.nconns; i++) {
		lg.conns[i].fd = -1;
		lg.free_slots[lg.nfree++] = lg.nconns - 1 - i;
	}
	{
		/* A heater's telemetry: three fields a policy keeps, three presence-revealing ones it
		 * drops; padded with JSON whitespace to PAYLOAD_LEN bytes. */
		static const char json[] = "{\"temperature\": 21.3, \"setpoint\": 21, \"humidity\": 41,"
					   " \"co2_ppm\": 612, \"motion\": 0, \"rssi\": -60}";

		memset(lg.payload, ' ', PAYLOAD_LEN);
		memcpy(lg.payload, json, sizeof(json) - 1 < PAYLOAD_LEN ? sizeof(json) - 1 : PAYLOAD_LEN);
	}

	switch (lg.mode) {
	case MODE_HANDSHAKES: rc = run_handshakes(&lg, 0); break;
	case MODE_RESUMED: rc = run_handshakes(&lg, 1); break;
	case MODE_IDLE: rc = run_idle(&lg); break;
	case MODE_PUBLISH: rc = run_publish(&lg); break;
	case MODE_NONE: break;
	}
	if (lg.errors > lg.errors_shown)
		fprintf(stderr, "loadgen: %zu more errors not shown\n", lg.errors - lg.errors_shown);
out:
	fflush(stdout);
	if (lg.conns) {
		for (i = 0; i < lg.nconns; i++) {
			SSL_free(lg.conns[i].ssl);
			if (lg.conns[i].fd >= 0)
				close(lg.conns[i].fd);
		}
	}
	if (lg.epfd >= 0)
		close(lg.epfd);
	for (i = 0; lg.ids && i < lg.nids; i++) {
		X509_free(lg.ids[i].crt);
		EVP_PKEY_free(lg.ids[i].key);
		SSL_SESSION_free(lg.ids[i].session);
	}
	free(lg.ids);
	free(lg.conns);
	free(lg.free_slots);
	SSL_CTX_free(lg.ctx);
	return rc;
}
