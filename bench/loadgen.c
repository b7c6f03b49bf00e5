/* loadgen: drives an MQTT-over-TLS broker (hearth's endpoint, or Mosquitto for comparison) from one
 * thread (epoll, non-blocking OpenSSL) to measure full and resumed mTLS handshakes, the cost of
 * idle connections, reconnect storms, and QoS 1 publishing, closed loop or open loop at a set rate.
 * A benchmark tool, not part of hearth: it connects only to 127.0.0.1, always verifies the
 * server's certificate, and bounds every loop in count and the whole run in time. "result
 * key=value..." lines go to stdout for bench/run.sh; progress and errors go to stderr. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <linux/tcp.h>  /* struct tcp_info with tcpi_data_segs_in; glibc's lacks it */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
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
/* Connections held at once (10,000 devices and room to spare); each is a descriptor. */
#define MAX_CONNS 20000
#define SPARE_FDS 64
#define MAX_WINDOW 64
#define BUF_CAP 2048
#define TOPIC_MAX 256
#define PAYLOAD_LEN 100
#define KEEPALIVE_S 60
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull
/* One connection may take this long to get from connect() to CONNACK (handshake modes). */
#define CONN_TIMEOUT_NS (10 * NS_PER_S)
/* A publisher with messages in flight must get a PUBACK this often. Generous: an open loop
 * offered more than the server can take queues up, and that shows as latency, not as failures. */
#define ACK_TIMEOUT_NS (30 * NS_PER_S)
#define TICK_NS (100 * NS_PER_MS)
#define MAX_EVENTS 256
/* Records read from one connection per wakeup; the window keeps the server below this. */
#define READ_ROUNDS 256
#define WRITE_ROUNDS 64
#define ERRORS_SHOWN 10
/* Reconnect storms: a device whose attempt failed tries again after a doubling, jittered wait,
 * as device firmware does, and gives up after so many attempts. */
#define BACKOFF_FIRST_NS (500 * NS_PER_MS)
#define BACKOFF_MAX_NS (8 * NS_PER_S)
#define MAX_ATTEMPTS 30
/* Open loop: messages in one run, at most. */
#define MAX_MESSAGES 100000000ull

/* Latency histogram, log-linear: 64 linear buckets per power of two (under 1 % error), over
 * nanoseconds up to hours, so percentiles need no stored samples. */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB * 40)

struct hist {
	uint64_t count, max;
	uint64_t buckets[HIST_BUCKETS];
};

enum mode { MODE_NONE, MODE_HANDSHAKES, MODE_RESUMED, MODE_IDLE, MODE_STORM, MODE_PUBLISH };

enum conn_state { CS_FREE, CS_TCP, CS_TLS, CS_MQTT, CS_READY };

static const char *const state_names[] = {
	[CS_FREE] = "free", [CS_TCP] = "connect", [CS_TLS] = "TLS handshake",
	[CS_MQTT] = "waiting for CONNACK", [CS_READY] = "connected",
};

struct identity {
	char id[ID_MAX + 1];
	X509 *crt;
	EVP_PKEY *key;
	SSL_SESSION *session;   /* from this device's priming connection (resumed, storm) */
	uint32_t attempts;      /* connections begun in this phase */
};

struct in_flight {
	uint16_t pid;
	uint64_t sent;          /* ns (open loop: when it was due); 0 = slot unused */
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
	uint32_t due, quota;    /* open loop: messages due by now, and in the whole run */
	size_t pub_idx;         /* publishers are numbered 0..P-1 for the schedule */
	int dirty;              /* open loop: in this turn's list of publishers to pump */
	uint16_t next_pid;
	uint16_t inflight;
	struct in_flight win[MAX_WINDOW];
};

struct retry {
	uint64_t due;           /* ns */
	size_t ident;
};

/* One batch of connections: a timed run, the priming run before the resumed one, or one round
 * of a reconnect storm. */
struct phase {
	size_t jobs, started;           /* devices to connect, and started so far */
	size_t max_opening, opening;    /* connections between connect() and CONNACK */
	size_t ident_mod;               /* job j uses identity j % ident_mod */
	int keep;                       /* stay connected after CONNACK (idle, storm, publish) */
	int prime, resume;
	int retry;                      /* a device whose attempt failed tries again (storm) */
	uint64_t attempt_ns;            /* connect() to CONNACK, at most */
	uint64_t t0;                    /* ns; a storm's devices are back this long after it */
	uint64_t deadline;              /* ns; 0 = only the run's own */
	uint64_t last_connack;
	size_t done;                    /* CONNACK received and closed again (handshake modes) */
	uint64_t segs_in;               /* TCP segments with data received up to CONNACK, summed */
	size_t segs_counted;            /* connections whose segments are in segs_in */
	size_t ready;                   /* CONNACK received and kept */
	size_t failed_open;             /* attempts that ended before CONNACK */
	size_t lost;                    /* devices that gave up (without retry: each failed attempt) */
	size_t failed_later, reused, attempts;
	/* Publishing. */
	int publishing, open_loop, swept;
	uint64_t pub_t0, pub_stop;      /* ns; pub_stop 0: by count */
	uint64_t next_g, total;         /* open loop: next message of the schedule, and how many */
	double interval_ns;
	uint64_t last_ack;
	size_t pub_done;
	uint64_t acked;
	struct hist connect_lat, puback_lat, send_lag;
};

struct loadgen {
	enum mode mode;
	unsigned long port, count, concurrency, hold_s, clients, messages, window, devices, timeout_s;
	unsigned long checkpoint, duration_s, rate, attempt_s, round_s;
	int no_tickets;
	long server_pid;
	const char *certdir, *ids_path, *groups, *ready_file, *topic, *reconnect;
	int rounds[2];                  /* storm: 1 = with tickets, 0 = without, in this order */
	size_t nrounds;

	SSL_CTX *ctx;
	X509 *endpoint;                 /* the server certificate that passed X509_verify_cert */
	struct identity *ids;
	size_t nids;
	int epfd;
	int have_pwait2;
	struct conn *conns;
	size_t nconns;
	size_t *free_slots;
	size_t nfree;
	struct retry *retries;          /* min-heap by due time, at most nconns */
	size_t nretries;
	struct conn **pubs, **dirty;    /* publishers in schedule order; this turn's to pump */
	size_t npubs;
	uint64_t rng;
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
	"  --storm N                 N devices connect and are held (--hold S); then all are reset\n"
	"                            at once and all reconnect at once, retrying with backoff,\n"
	"                            once with their session tickets and once without\n"
	"  --publish --clients P (--messages M | --duration S [--rate R])\n"
	"                            P publishers of QoS 1 messages: M each, or for S seconds as\n"
	"                            fast as the window allows (closed loop), or R messages/s in all\n"
	"                            on a fixed schedule, latency counted from when each was due\n"
	"options:\n"
	"  --concurrency C           connections being opened at once (default 50)\n"
	"  --window W                unacknowledged PUBLISH per publisher (default 10, max 64)\n"
	"  --topic TEMPLATE          publish topic, {id} is the device id\n"
	"                            (default hearth/v1/{id}/telemetry)\n"
	"  --devices K               use only the first K ids (default all)\n"
	"  --groups LIST             ECDHE groups offered (default P-256)\n"
	"  --no-tickets              handshakes: do not offer the session ticket extension (a server\n"
	"                            then keeps each session in its cache, if it has one)\n"
	"  --server-pid PID          report the server's CPU time over the timed parts\n"
	"  --ready-file PATH         idle, storm: at each pause point write PATH (one word: checkpoint,\n"
	"                            connected, dropped) and wait until it is removed\n"
	"  --checkpoint K            idle, storm: a pause point once K are up\n"
	"  --reconnect LIST          storm: rounds, tickets,full (default), tickets, full\n"
	"  --attempt-timeout S       storm: one attempt's limit, connect() to CONNACK (default 30)\n"
	"  --round-timeout S         storm: one round's limit (default 300)\n"
	"  --timeout S               the whole run (default 120)\n";

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static double seconds(uint64_t ns)
{
	return (double)ns / (double)NS_PER_S;
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
	/* OpenSSL would mark the session of a connection freed without close_notify as not
	 * resumable; a device keeps its ticket when its connection breaks, and so do we. */
	if (c->ssl)
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(c->ssl);
	c->ssl = NULL;
	c->state = CS_FREE;
	lg->free_slots[lg->nfree++] = (size_t)(c - lg->conns);
}

/* xorshift64*: jitter for retries, nothing that needs to be unpredictable. */
static uint64_t next_random(struct loadgen *lg)
{
	lg->rng ^= lg->rng >> 12;
	lg->rng ^= lg->rng << 25;
	lg->rng ^= lg->rng >> 27;
	return lg->rng * 0x2545f4914f6cdd1dull;
}

/* The wait before attempt number attempts + 1: doubling from BACKOFF_FIRST_NS up to
 * BACKOFF_MAX_NS, each drawn from its upper half so devices that failed together spread out. */
static uint64_t backoff_ns(struct loadgen *lg, uint32_t attempts)
{
	uint64_t d = BACKOFF_FIRST_NS;
	uint32_t i;

	for (i = 1; i < attempts && d < BACKOFF_MAX_NS; i++)
		d *= 2;
	if (d > BACKOFF_MAX_NS)
		d = BACKOFF_MAX_NS;
	return d / 2 + next_random(lg) % (d / 2 + 1);
}

static void retry_push(struct loadgen *lg, uint64_t due, size_t ident)
{
	size_t i = lg->nretries++;

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (lg->retries[parent].due <= due)
			break;
		lg->retries[i] = lg->retries[parent];
		i = parent;
	}
	lg->retries[i].due = due;
	lg->retries[i].ident = ident;
}

static struct retry retry_pop(struct loadgen *lg)
{
	struct retry top = lg->retries[0], last = lg->retries[--lg->nretries];
	size_t i = 0, n = lg->nretries;

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= n)
			break;
		if (child + 1 < n && lg->retries[child + 1].due < lg->retries[child].due)
			child++;
		if (last.due <= lg->retries[child].due)
			break;
		lg->retries[i] = lg->retries[child];
		i = child;
	}
	if (n > 0)
		lg->retries[i] = last;
	return top;
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
		struct identity *ident = &lg->ids[c->ident];

		lg->ph.failed_open++;
		lg->ph.opening--;
		/* The heap holds each device at most once (it has no other attempt open), so
		 * nconns entries always suffice; checked all the same. */
		if (lg->ph.retry && ident->attempts < MAX_ATTEMPTS && lg->nretries < lg->nconns)
			retry_push(lg, now_ns() + backoff_ns(lg, ident->attempts), c->ident);
		else
			lg->ph.lost++;
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

/* The topic for a device: the template with each {id} replaced. Its length, or -1 if it does not
 * fit. */
static int topic_for(const char *tmpl, const char *id, char *out, size_t size)
{
	size_t n = 0, idlen = strlen(id);

	while (*tmpl) {
		if (strncmp(tmpl, "{id}", 4) == 0) {
			if (n + idlen >= size)
				return -1;
			memcpy(out + n, id, idlen);
			n += idlen;
			tmpl += 4;
			continue;
		}
		if (n + 1 >= size)
			return -1;
		out[n++] = *tmpl++;
	}
	out[n] = '\0';
	return n <= TOPIC_MAX ? (int)n : -1;
}

/* Open loop: message g of the whole schedule is due at pub_t0 + g / rate, from publisher g % P.
 * Publishers take turns, so the load on the server is even, not in bursts of P. */
static uint64_t sched_time(const struct phase *ph, uint64_t g)
{
	return ph->pub_t0 + (uint64_t)((double)g * ph->interval_ns);
}

static int pub_more(const struct loadgen *lg, const struct conn *c, uint64_t now)
{
	const struct phase *ph = &lg->ph;

	if (ph->open_loop)
		return c->sent < c->quota;
	if (ph->pub_stop)
		return now < ph->pub_stop;
	return c->sent < lg->messages;
}

/* Fill the window with QoS 1 PUBLISH packets (open loop: only those due by now). Each is written
 * on its own, so in its own TLS record, as a device's MQTT library would (several packets in one
 * record would flatter the server's cost per message); the records then leave in one send(). */
static int pump_publish(struct loadgen *lg, struct conn *c)
{
	struct phase *ph = &lg->ph;
	char topic[TOPIC_MAX + 1];
	uint8_t pkt[TOPIC_MAX + PAYLOAD_LEN + 16];
	uint64_t now = now_ns();
	int tlen = topic_for(lg->topic, lg->ids[c->ident].id, topic, sizeof(topic));

	if (tlen < 0) {
		conn_fail(lg, c, "topic longer than %d bytes", TOPIC_MAX);
		return -1;
	}
	while (c->inflight < lg->window && pub_more(lg, c, now) && (!ph->open_loop || c->sent < c->due)) {
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
		if (ph->open_loop) {
			/* Latency runs from when the message was due, not from when it could go: a server
			 * that holds the publisher back is charged for the wait (no coordinated omission). */
			slot->sent = sched_time(ph, (uint64_t)c->sent * lg->npubs + c->pub_idx);
			hist_add(&ph->send_lag, now > slot->sent ? now - slot->sent : 0);
		} else {
			slot->sent = now;
		}
		c->next_pid = (uint16_t)(pid == 65535 ? 1 : pid + 1);
		c->inflight++;
		c->sent++;
		if (c->deadline == 0)
			c->deadline = now + ACK_TIMEOUT_NS;
		if (conn_flush(lg, c, 0) != 0)
			return -1;
	}
	return conn_flush(lg, c, 1);
}

/* How many TCP segments carrying data the server sent until now (its handshake flights and the
 * CONNACK): the fewer, the fewer sends, packets and wake-ups on both sides. */
static void count_segments(struct phase *ph, int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    len >= offsetof(struct tcp_info, tcpi_data_segs_in) + sizeof(ti.tcpi_data_segs_in)) {
		ph->segs_in += ti.tcpi_data_segs_in;
		ph->segs_counted++;
	}
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
	/* In a storm what counts is when the device is back, however many attempts it took. */
	hist_add(&ph->connect_lat, now - (ph->retry ? ph->t0 : c->started));
	count_segments(ph, c->fd);
	ph->last_connack = now;
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
	if (lg->mode == MODE_IDLE || lg->mode == MODE_STORM)
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
	hist_add(&ph->puback_lat, now > slot->sent ? now - slot->sent : 0);
	slot->sent = 0;
	c->inflight--;
	c->acked++;
	ph->acked++;
	ph->last_ack = now;
	c->deadline = c->inflight ? now + ACK_TIMEOUT_NS : 0;
	if (c->inflight == 0 && !pub_more(lg, c, now)) {
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
 * packets queue up in its socket. Publishers get a buffer for a window of records; the many idle
 * connections keep BIO's small default. */
static int set_bios(SSL *ssl, int fd, int publisher)
{
	BIO *sock = BIO_new_socket(fd, BIO_NOCLOSE);
	BIO *buf = BIO_new(BIO_f_buffer());

	if (!sock || !buf || (publisher && BIO_set_write_buffer_size(buf, 16384) != 1) || BIO_up_ref(sock) != 1) {
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
	if (!c->ssl || set_bios(c->ssl, c->fd, lg->mode == MODE_PUBLISH) != 0 || SSL_use_certificate(c->ssl, ident->crt) != 1 ||
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
	c->deadline = c->started + lg->ph.attempt_ns;
	lg->ph.opening++;
	lg->ph.attempts++;
	lg->ids[ident].attempts++;
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
			if (c->state == CS_READY)
				conn_fail(lg, c, "no PUBACK within %llu s",
					  (unsigned long long)(ACK_TIMEOUT_NS / NS_PER_S));
			else
				conn_fail(lg, c, "no progress within %llu s",
					  (unsigned long long)(lg->ph.attempt_ns / NS_PER_S));
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

static void start_jobs(struct loadgen *lg, uint64_t now)
{
	struct phase *ph = &lg->ph;

	/* Devices that are due to try again go first, then those not yet started. */
	while (lg->nretries > 0 && lg->retries[0].due <= now && ph->opening < ph->max_opening && lg->nfree > 0) {
		struct retry r = retry_pop(lg);

		conn_start(lg, &lg->conns[lg->free_slots[--lg->nfree]], r.ident);
	}
	while (ph->started < ph->jobs && ph->opening < ph->max_opening && lg->nfree > 0) {
		struct conn *c = &lg->conns[lg->free_slots[--lg->nfree]];
		size_t job = ph->started++;

		conn_start(lg, c, job % ph->ident_mod);
	}
}

static int opening_done(const struct loadgen *lg)
{
	const struct phase *ph = &lg->ph;

	return ph->done + ph->ready + ph->lost == ph->jobs;
}

static int publishing_done(const struct loadgen *lg)
{
	const struct phase *ph = &lg->ph;

	return ph->pub_done + ph->failed_later == lg->npubs;
}

/* Open loop: hand every message due by now to its publisher, then pump each publisher that got
 * one. Returns when the next message is due (ns), 0 when the schedule is through. */
static uint64_t schedule_due(struct loadgen *lg, uint64_t now)
{
	struct phase *ph = &lg->ph;
	size_t i, n = 0;

	while (ph->next_g < ph->total && sched_time(ph, ph->next_g) <= now) {
		struct conn *c = lg->pubs[ph->next_g % lg->npubs];

		ph->next_g++;
		c->due++;
		if (c->state == CS_READY && !c->dirty) {
			c->dirty = 1;
			lg->dirty[n++] = c;
		}
	}
	for (i = 0; i < n; i++) {
		lg->dirty[i]->dirty = 0;
		if (lg->dirty[i]->state == CS_READY)
			(void)pump_publish(lg, lg->dirty[i]);
	}
	return ph->next_g < ph->total ? sched_time(ph, ph->next_g) : 0;
}

/* Closed loop for a set time: once it is up, publishers with nothing in flight are through (the
 * others are when their last PUBACK comes). */
static void sweep_publishers(struct loadgen *lg, uint64_t now)
{
	struct phase *ph = &lg->ph;
	size_t i;

	if (!ph->publishing || ph->open_loop || !ph->pub_stop || ph->swept || now < ph->pub_stop)
		return;
	ph->swept = 1;
	for (i = 0; i < lg->npubs; i++) {
		struct conn *c = lg->pubs[i];

		if (c->state == CS_READY && c->inflight == 0) {
			ph->pub_done++;
			conn_finish(lg, c);
		}
	}
}

/* epoll_wait with a timeout in nanoseconds where the kernel has epoll_pwait2 (5.11), so an open
 * loop's schedule is kept to well under a millisecond. */
static int wait_events(struct loadgen *lg, struct epoll_event *events, uint64_t timeout_ns)
{
	if (lg->have_pwait2) {
		struct timespec ts = { .tv_sec = (time_t)(timeout_ns / NS_PER_S),
				       .tv_nsec = (long)(timeout_ns % NS_PER_S) };
		int n = epoll_pwait2(lg->epfd, events, MAX_EVENTS, &ts, NULL);

		if (n >= 0 || errno != ENOSYS)
			return n;
		lg->have_pwait2 = 0;
	}
	return epoll_wait(lg->epfd, events, MAX_EVENTS, (int)((timeout_ns + NS_PER_MS - 1) / NS_PER_MS));
}

/* Serve events until done() holds or, without done, until `until` (ns). 0 then; 1 when the
 * phase's own deadline came first; -1 when the whole run's time is up first. */
static int run_until(struct loadgen *lg, int (*done)(const struct loadgen *), uint64_t until)
{
	struct epoll_event events[MAX_EVENTS];
	uint64_t next_tick = now_ns() + TICK_NS;

	for (;;) {
		uint64_t now = now_ns(), wait = TICK_NS;
		int i, n;

		start_jobs(lg, now);
		if (lg->ph.publishing && lg->ph.open_loop) {
			uint64_t next = schedule_due(lg, now);

			now = now_ns();
			if (next != 0 && next - now < wait)
				wait = next > now ? next - now : 0;
		}
		sweep_publishers(lg, now);
		if (done ? done(lg) : now >= until)
			return 0;
		if (now >= lg->run_deadline) {
			fprintf(stderr, "loadgen: the run's %lu s are up\n", lg->timeout_s);
			return -1;
		}
		if (lg->ph.deadline != 0 && now >= lg->ph.deadline)
			return 1;
		n = wait_events(lg, events, wait);
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
	lg->ph.attempt_ns = CONN_TIMEOUT_NS;
	lg->ph.t0 = now_ns();
}

static void close_all(struct loadgen *lg)
{
	size_t i;

	lg->ph.retry = 0;
	lg->nretries = 0;
	for (i = 0; i < lg->nconns; i++) {
		struct conn *c = &lg->conns[i];

		if (c->state == CS_READY)
			conn_finish(lg, c);
		else if (c->state != CS_FREE)
			conn_fail(lg, c, "still opening at the end of the run");
	}
}

/* Every connection reset at once, with no goodbye, as when devices lose power or their NAT
 * forgets them and the server hears a reset; no TIME_WAIT stays behind. The connections that
 * were up. */
static size_t drop_all(struct loadgen *lg)
{
	static const struct linger hard = { .l_onoff = 1, .l_linger = 0 };
	size_t i, n = 0;

	lg->nretries = 0;
	for (i = 0; i < lg->nconns; i++) {
		struct conn *c = &lg->conns[i];

		if (c->state == CS_FREE)
			continue;
		if (c->state == CS_READY) {
			(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
			n++;
		}
		conn_drop(lg, c);
	}
	return n;
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
	if (lg->ph.segs_counted)
		printf(" server_segments=%.2f", (double)lg->ph.segs_in / (double)lg->ph.segs_counted);
	print_cpu(&a, &b);
	printf("\n");
	fflush(stdout);
	if (rc != 0)
		return 2;
	return lg->ph.failed_open ? 1 : 0;
}

static int write_ready_file(const char *path, const char *label)
{
	char tmp[4096];
	FILE *f;
	int len = snprintf(tmp, sizeof(tmp), "%s.tmp", path);

	if (len < 0 || (size_t)len >= sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%s\n", label);
	if (fclose(f) != 0)
		return -1;
	/* Renamed into place, so whoever polls for it never sees it half written. */
	return rename(tmp, path);
}

static int ready_file_gone(const struct loadgen *lg)
{
	return access(lg->ready_file, F_OK) != 0;
}

/* Let the harness look (memory, descriptors): say where we are in the ready file and serve the
 * connections until it removes the file, within the run's time. */
static int pause_point(struct loadgen *lg, const char *label)
{
	if (!lg->ready_file)
		return 0;
	if (write_ready_file(lg->ready_file, label) != 0) {
		fprintf(stderr, "loadgen: %s: %s\n", lg->ready_file, strerror(errno));
		return -1;
	}
	return run_until(lg, ready_file_gone, 0);
}

/* One round of a reconnect storm: everyone is reset at once, then everyone reconnects at once
 * (with the ticket from the first connection, or with a full handshake), retrying with backoff
 * until back or out of attempts. */
static int storm_round(struct loadgen *lg, int tickets)
{
	struct usage_mark a, b;
	size_t i, dropped, not_back;
	int rc;

	dropped = drop_all(lg);
	fprintf(stderr, "loadgen: %zu connections reset at once; reconnecting %s tickets\n", dropped,
		tickets ? "with" : "without");
	rc = pause_point(lg, "dropped");
	if (rc != 0)
		return -1;
	for (i = 0; i < lg->nids; i++)
		lg->ids[i].attempts = 0;
	phase_begin(lg, lg->count, lg->count, lg->nids, 1);
	lg->ph.retry = 1;
	lg->ph.resume = tickets;
	lg->ph.attempt_ns = lg->attempt_s * NS_PER_S;
	mark(lg, &a);
	lg->ph.t0 = a.wall;
	lg->ph.deadline = a.wall + lg->round_s * NS_PER_S;
	rc = run_until(lg, opening_done, 0);
	mark(lg, &b);
	not_back = lg->ph.jobs - lg->ph.ready;
	fprintf(stderr, "loadgen: storm %s tickets: %zu of %zu back in %.2f s, %zu attempts, %zu failed\n",
		tickets ? "with" : "without", lg->ph.ready, lg->ph.jobs, seconds(b.wall - a.wall),
		lg->ph.attempts, lg->ph.failed_open);
	printf("result mode=storm kind=%s devices=%zu dropped=%zu back=%zu not_back=%zu attempts=%zu "
	       "failed_attempts=%zu resumed=%zu", tickets ? "tickets" : "full", lg->ph.jobs, dropped,
	       lg->ph.ready, not_back, lg->ph.attempts, lg->ph.failed_open, lg->ph.reused);
	if (not_back == 0)
		printf(" all_back_s=%.3f", seconds(lg->ph.last_connack - a.wall));
	else
		printf(" all_back_s=?");
	printf(" p50_s=%.3f p99_s=%.3f elapsed_s=%.3f", hist_ms(&lg->ph.connect_lat, 0.50) / 1000,
	       hist_ms(&lg->ph.connect_lat, 0.99) / 1000, seconds(b.wall - a.wall));
	print_cpu(&a, &b);
	printf("\n");
	fflush(stdout);
	if (rc < 0)
		return -1;
	return not_back ? 1 : 0;
}

/* Idle and storm: connect count devices (pausing at the checkpoint and when all are up, for the
 * harness to read memory), hold them, then the storm's rounds. */
static int run_fleet(struct loadgen *lg)
{
	struct usage_mark a, b, c, d;
	size_t dropped, r;
	int rc = 0, worst = 0;

	phase_begin(lg, lg->count, lg->concurrency, lg->nids, 1);
	lg->ph.prime = lg->mode == MODE_STORM;
	mark(lg, &a);
	if (lg->checkpoint) {
		lg->ph.jobs = lg->checkpoint;
		rc = run_until(lg, opening_done, 0);
		fprintf(stderr, "loadgen: %zu connections up (%zu failed)\n", lg->ph.ready, lg->ph.lost);
		if (rc == 0)
			rc = pause_point(lg, "checkpoint");
		lg->ph.jobs = lg->count;
	}
	if (rc == 0)
		rc = run_until(lg, opening_done, 0);
	mark(lg, &b);
	fprintf(stderr, "loadgen: %zu connections up in %.2f s (%zu failed); holding %lu s\n", lg->ph.ready,
		seconds(b.wall - a.wall), lg->ph.lost, lg->hold_s);
	if (rc == 0)
		rc = pause_point(lg, "connected");
	mark(lg, &c);
	if (rc == 0)
		rc = run_until(lg, NULL, c.wall + lg->hold_s * NS_PER_S);
	mark(lg, &d);
	dropped = lg->ph.failed_later;
	printf("result mode=idle requested=%zu established=%zu failed=%zu dropped=%zu open_s=%.3f "
	       "open_rate=%.1f held_s=%.3f p50_ms=%.3f p99_ms=%.3f open_server_cpu_s=%.3f", lg->ph.jobs,
	       lg->ph.ready, lg->ph.lost, dropped, seconds(b.wall - a.wall),
	       (double)lg->ph.ready / seconds(b.wall - a.wall), seconds(d.wall - c.wall),
	       hist_ms(&lg->ph.connect_lat, 0.50), hist_ms(&lg->ph.connect_lat, 0.99),
	       a.server_cpu >= 0 && b.server_cpu >= 0 ? b.server_cpu - a.server_cpu : -1.0);
	print_cpu(&c, &d);
	printf("\n");
	fflush(stdout);
	if (rc == 0 && (lg->ph.lost || dropped))
		worst = 1;
	for (r = 0; rc == 0 && r < lg->nrounds; r++) {
		int one = storm_round(lg, lg->rounds[r]);

		if (one < 0)
			rc = -1;
		else if (one > worst)
			worst = one;
	}
	close_all(lg);
	return rc != 0 ? 2 : worst;
}

static int run_publish(struct loadgen *lg)
{
	struct phase *ph = &lg->ph;
	struct usage_mark a, b;
	size_t i, before;
	uint64_t end;
	double elapsed;
	int rc;

	phase_begin(lg, lg->clients, lg->concurrency, lg->nids, 1);
	rc = run_until(lg, opening_done, 0);
	fprintf(stderr, "loadgen: %zu publishers connected (%zu failed)\n", ph->ready, ph->lost);
	for (i = 0; i < lg->nconns; i++) {
		if (lg->conns[i].state == CS_READY) {
			lg->conns[i].pub_idx = lg->npubs;
			lg->pubs[lg->npubs++] = &lg->conns[i];
		}
	}
	/* Publishers lost between CONNACK and now are not in the run, so not counted as its failures. */
	before = ph->failed_later;
	ph->failed_later = 0;
	if (rc != 0 || lg->npubs == 0) {
		close_all(lg);
		return 2;
	}
	mark(lg, &a);
	/* Everyone starts together, so the rate is not diluted by connection set-up. */
	ph->pub_t0 = a.wall;
	ph->publishing = 1;
	if (lg->rate) {
		ph->open_loop = 1;
		ph->total = (uint64_t)lg->rate * lg->duration_s;
		ph->interval_ns = (double)NS_PER_S / (double)lg->rate;
		for (i = 0; i < lg->npubs; i++) {
			struct conn *c = lg->pubs[i];

			c->quota = (uint32_t)(ph->total / lg->npubs + (i < ph->total % lg->npubs));
			if (c->quota == 0) {
				ph->pub_done++;
				conn_finish(lg, c);
			}
		}
	} else {
		if (lg->duration_s)
			ph->pub_stop = a.wall + lg->duration_s * NS_PER_S;
		for (i = 0; i < lg->npubs; i++)
			(void)pump_publish(lg, lg->pubs[i]);
	}
	rc = run_until(lg, publishing_done, 0);
	mark(lg, &b);
	close_all(lg);
	/* Open loop: over until the last PUBACK (a server that fell behind stretches it). */
	end = ph->open_loop && ph->last_ack > a.wall ? ph->last_ack : b.wall;
	elapsed = seconds(end - a.wall);
	printf("result mode=publish loop=%s clients=%zu ready=%zu", ph->open_loop ? "open" : "closed", ph->jobs,
	       lg->npubs);
	if (ph->open_loop)
		printf(" offered=%lu duration_s=%lu messages=%llu", lg->rate, lg->duration_s,
		       (unsigned long long)ph->total);
	else if (lg->duration_s)
		printf(" duration_s=%lu", lg->duration_s);
	else
		printf(" messages=%lu", lg->messages);
	printf(" acked=%llu failed=%zu elapsed_s=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f "
	       "max_ms=%.3f window=%lu", (unsigned long long)ph->acked, ph->lost + before + ph->failed_later,
	       elapsed, (double)ph->acked / elapsed, hist_ms(&ph->puback_lat, 0.50),
	       hist_ms(&ph->puback_lat, 0.99), hist_ms(&ph->puback_lat, 0.999),
	       (double)ph->puback_lat.max / (double)NS_PER_MS, lg->window);
	if (ph->open_loop)
		printf(" lag_p99_ms=%.3f lag_max_ms=%.3f", hist_ms(&ph->send_lag, 0.99),
		       (double)ph->send_lag.max / (double)NS_PER_MS);
	print_cpu(&a, &b);
	printf("\n");
	fflush(stdout);
	if (rc != 0)
		return 2;
	return ph->lost || before || ph->failed_later ? 1 : 0;
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

/* The server presents the same certificate on every connection. It is verified in full (chain to
 * ca.pem, validity, 127.0.0.1 in subjectAltName) the first time; after that a certificate equal to
 * it byte for byte is accepted without repeating the work, as a device that pins the endpoint does.
 * Any other certificate is verified in full. The handshake still proves the server holds the key
 * (its ServerKeyExchange signature is checked with that certificate's key). Re-verifying the chain
 * was a fifth of this client's CPU, taken from the core it shares with the server under test. */
static int verify_endpoint(X509_STORE_CTX *store, void *arg)
{
	struct loadgen *lg = arg;
	X509 *leaf = X509_STORE_CTX_get0_cert(store);
	int ok;

	if (lg->endpoint && leaf && X509_cmp(leaf, lg->endpoint) == 0) {
		X509_STORE_CTX_set_error(store, X509_V_OK);
		return 1;
	}
	ok = X509_verify_cert(store);
	if (ok == 1 && leaf && !lg->endpoint && X509_up_ref(leaf) == 1)
		lg->endpoint = leaf;
	return ok;
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
	SSL_CTX_set_cert_verify_callback(lg->ctx, verify_endpoint, lg);
	if (lg->no_tickets)
		SSL_CTX_set_options(lg->ctx, SSL_OP_NO_TICKET);
	/* An IP literal is not allowed in SNI (RFC 6066 §3), so none is sent; the endpoint certificate
	 * must name 127.0.0.1 in its subjectAltName instead. */
	if (X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(lg->ctx), HOST) != 1)
		goto fail;
	SSL_CTX_set_mode(lg->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* A device sends its own certificate only, as hearth-agent does: the server holds the CA. Left
	 * to itself OpenSSL builds that chain again on every handshake (X509_verify_cert against
	 * ca.pem) and sends the CA certificate along. */
	SSL_CTX_set_mode(lg->ctx, SSL_MODE_NO_AUTO_CHAIN);
	/* Ten thousand quiet connections need not hold 34 KB of record buffers each here. */
	if (lg->mode == MODE_IDLE || lg->mode == MODE_STORM)
		SSL_CTX_set_mode(lg->ctx, SSL_MODE_RELEASE_BUFFERS);
	return 0;
fail:
	fprintf(stderr, "loadgen: TLS client setup (%s): ", ca);
	ERR_print_errors_fp(stderr);
	return -1;
}

static int valid_topic(const char *t)
{
	char probe[TOPIC_MAX + 1];
	size_t n = strlen(t);

	/* A publish topic has no wildcards; the longest id must still fit. */
	if (n == 0 || n > TOPIC_MAX || strpbrk(t, "+#"))
		return 0;
	return topic_for(t, "0123456789012345678901234567890123456789012345678901234567890123", probe,
			 sizeof(probe)) >= 0;
}

static int parse_reconnect(struct loadgen *lg, const char *s)
{
	if (strcmp(s, "tickets,full") == 0) {
		lg->rounds[0] = 1;
		lg->rounds[1] = 0;
		lg->nrounds = 2;
	} else if (strcmp(s, "full,tickets") == 0) {
		lg->rounds[0] = 0;
		lg->rounds[1] = 1;
		lg->nrounds = 2;
	} else if (strcmp(s, "tickets") == 0 || strcmp(s, "full") == 0) {
		lg->rounds[0] = strcmp(s, "tickets") == 0;
		lg->nrounds = 1;
	} else {
		return -1;
	}
	return 0;
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
		{ "storm", required_argument, NULL, 16 },
		{ "topic", required_argument, NULL, 17 },
		{ "duration", required_argument, NULL, 18 },
		{ "rate", required_argument, NULL, 19 },
		{ "reconnect", required_argument, NULL, 20 },
		{ "attempt-timeout", required_argument, NULL, 21 },
		{ "round-timeout", required_argument, NULL, 22 },
		{ "no-tickets", no_argument, NULL, 23 },
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
		case 16: lg->mode = MODE_STORM; modes++; dst = &lg->count; break;
		case 17:
			if (!valid_topic(optarg)) {
				fprintf(stderr, "loadgen: --topic: 1..%d bytes with the id, no + or #\n", TOPIC_MAX);
				goto bad;
			}
			lg->topic = optarg;
			continue;
		case 18: dst = &lg->duration_s; max = 3600; break;
		case 19: dst = &lg->rate; max = 1000000; break;
		case 20:
			if (parse_reconnect(lg, optarg) != 0) {
				fprintf(stderr, "loadgen: --reconnect: tickets,full | full,tickets | tickets | full\n");
				goto bad;
			}
			continue;
		case 21: dst = &lg->attempt_s; max = 600; break;
		case 22: dst = &lg->round_s; max = 3600; break;
		case 23: lg->no_tickets = 1; continue;
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
	if (lg->mode == MODE_PUBLISH) {
		if (!lg->clients || !!lg->messages == !!lg->duration_s) {
			fprintf(stderr, "loadgen: --publish needs --clients and one of --messages, --duration\n");
			goto bad;
		}
		if (lg->rate && !lg->duration_s) {
			fprintf(stderr, "loadgen: --rate needs --duration\n");
			goto bad;
		}
		if ((unsigned long long)lg->rate * lg->duration_s > MAX_MESSAGES) {
			fprintf(stderr, "loadgen: --rate x --duration is more than %llu messages\n", MAX_MESSAGES);
			goto bad;
		}
		if (lg->duration_s >= lg->timeout_s) {
			fprintf(stderr, "loadgen: --duration must be shorter than --timeout\n");
			goto bad;
		}
	}
	if (lg->checkpoint && ((lg->mode != MODE_IDLE && lg->mode != MODE_STORM) || lg->checkpoint >= lg->count ||
			       !lg->ready_file)) {
		fprintf(stderr, "loadgen: --checkpoint needs --idle or --storm N > K, and --ready-file\n");
		goto bad;
	}
	if ((lg->mode == MODE_IDLE || lg->mode == MODE_STORM) && lg->hold_s >= lg->timeout_s) {
		fprintf(stderr, "loadgen: --hold must be shorter than --timeout\n");
		goto bad;
	}
	if (lg->mode != MODE_STORM)
		lg->nrounds = 0;
	if (lg->no_tickets && lg->mode != MODE_HANDSHAKES) {
		fprintf(stderr, "loadgen: --no-tickets is for --handshakes\n");
		goto bad;
	}
	return 0;
bad:
	fputs(usage, stderr);
	return -1;
}

/* Descriptors for every connection and some to spare: the soft limit up to the hard one, and the
 * hard one too where we may (root). */
static int raise_fd_limit(size_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		struct rlimit more = { .rlim_cur = need, .rlim_max = need };

		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return 0;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)) {
		fprintf(stderr, "loadgen: %zu connections need %zu descriptors; the limit is %llu (ulimit -n)\n",
			need - SPARE_FDS, need, (unsigned long long)rl.rlim_cur);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct loadgen lg;
	size_t i, need;
	int rc = 2;

	memset(&lg, 0, sizeof(lg));
	lg.epfd = -1;
	lg.have_pwait2 = 1;
	lg.concurrency = 50;
	lg.hold_s = 10;
	lg.window = 10;
	lg.timeout_s = 120;
	lg.attempt_s = 30;
	lg.round_s = 300;
	lg.groups = "P-256";
	lg.topic = "hearth/v1/{id}/telemetry";
	parse_reconnect(&lg, "tickets,full");
	if (parse_args(&lg, argc, argv) != 0)
		return 2;
	lg.run_deadline = now_ns() + lg.timeout_s * NS_PER_S;
	lg.rng = lg.run_deadline | 1;
	/* A write to a connection the server already closed must be an error, not the end of us. */
	signal(SIGPIPE, SIG_IGN);
	switch (lg.mode) {
	case MODE_IDLE:
	case MODE_STORM: need = lg.count; break;
	case MODE_PUBLISH: need = lg.clients; break;
	default: need = lg.concurrency; break;
	}
	if (raise_fd_limit(need + SPARE_FDS) != 0)
		goto out;
	{
		uint64_t t0 = now_ns();

		if (load_ids(&lg) != 0 || ctx_setup(&lg) != 0)
			goto out;
		if (lg.nids >= 1000)
			fprintf(stderr, "loadgen: %zu device keys and certificates loaded in %.1f s\n", lg.nids,
				seconds(now_ns() - t0));
	}
	/* Two live connections of one device would have the server close the older one. */
	if (need > lg.nids) {
		fprintf(stderr, "loadgen: %zu connections at once need as many device ids, have %zu\n", need,
			lg.nids);
		goto out;
	}
	lg.nconns = need;
	lg.conns = calloc(lg.nconns, sizeof(*lg.conns));
	lg.free_slots = calloc(lg.nconns, sizeof(*lg.free_slots));
	lg.retries = calloc(lg.nconns, sizeof(*lg.retries));
	lg.pubs = calloc(lg.nconns, sizeof(*lg.pubs));
	lg.dirty = calloc(lg.nconns, sizeof(*lg.dirty));
	lg.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!lg.conns || !lg.free_slots || !lg.retries || !lg.pubs || !lg.dirty || lg.epfd < 0) {
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
	case MODE_IDLE:
	case MODE_STORM: rc = run_fleet(&lg); break;
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
	free(lg.retries);
	free(lg.pubs);
	free(lg.dirty);
	X509_free(lg.endpoint);
	SSL_CTX_free(lg.ctx);
	return rc;
}
