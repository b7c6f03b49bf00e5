/* bridge: minimized records, device status and Home Assistant discovery into an external MQTT
 * broker (see bridge.h). One thread owns everything here: its store handle, the libmosquitto
 * client (driven with mosquitto_loop, so every callback runs on this thread), the in-flight table
 * and the device table. Other threads only touch the atomics (stored_until, stop, the counters). */
#include "server/bridge.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <mosquitto.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/strmap.h"
#include "server/datadir.h"
#include "server/hadisc.h"
#include "server/ingest.h"
#include "server/policy.h"
#include "server/record.h"
#include "server/store.h"

#define LOOP_MS 100               /* mosquitto_loop's wait: how fast the thread notices a stop */
#define WINDOW 32                 /* messages in flight before no more are started */
#define FLIGHT_MAX 1024           /* messages in flight at most (one device's configs may pass WINDOW) */
#define DONE_MAX 65536            /* acknowledged, not yet recorded in the store */
#define OUTBOX_PAGE 32
#define STEP_S 3600               /* one producer transaction covers at most this much time */
#define STEPS_PER_RUN 24          /* a catch-up moves at most a day per second */
#define PRODUCE_MS 1000
#define POLL_MS 5000              /* how often device status and policies are read */
#define TRIM_MS 60000
#define STATS_MS 5000            /* the outbox gauge from the store (others may delete rows) */
#define CONNECT_TIMEOUT_MS 15000  /* from the attempt to the broker's CONNACK */
#define KEEPALIVE_S 30
#define BACKOFF_MAX_S 60
#define STOP_FLUSH_MS 1000        /* at stop, how long "offline" may take to be acknowledged */
#define HASH_NONE 1               /* the wanted state of a kind is: nothing (clear what is there) */
#define TOPIC_MAX 512
#define REASON_MAX 384

enum conn_state { DOWN, CONNECTING, UP };
enum flight_kind { FL_RECORD, FL_STATUS, FL_CONFIG };

/* What the bridge knows of one device: the wanted retained state (hashes of it) for status and for
 * discovery, what the broker acknowledged on this connection, and what is on its way. */
struct dev {
	char id[65], model[65], firmware[65];
	int active;
	int64_t last_seen;          /* the last-seen bucket the status shows: only a closed one */
	char *status_json;          /* the wanted status payload; NULL when none is wanted */
	uint64_t want[2], sent[2], busy[2];  /* [0] status, [1] config; sent 0: not on this connection */
	unsigned inflight[2];
	int partial[2];             /* the last sync did not fit: sync again when it is through */
};

struct model {
	uint64_t text_hash;         /* 0: no policy */
	struct policy *policy;      /* NULL: none, or not valid */
};

struct flight {
	int mid;
	enum flight_kind kind;
	int64_t seq;                /* FL_RECORD: the outbox row */
	struct dev *dev;            /* FL_STATUS, FL_CONFIG */
	char *clear;                /* an empty retained message to this topic: forget it once acked */
};

struct bridge {
	struct bridge_config cfg;
	unsigned send;              /* BRIDGE_SEND_* */
	char client_id[BRIDGE_TEXT_MAX], avail_topic[TOPIC_MAX];
	struct hadisc_topics ha;
	struct datadir *dd;
	struct store *st;
	pthread_t thread;
	atomic_int stop;
	_Atomic int64_t stored_until;
	atomic_int stat_connected;
	_Atomic uint64_t stat_sent, stat_rows, stat_dropped, stat_reconnects;

	struct mosquitto *mosq;
	enum conn_state state;
	int down;                   /* a callback or the loop saw the connection end */
	uint64_t deadline, next_attempt;
	unsigned attempts;          /* failed attempts since the last success */
	uint64_t tries;             /* every attempt ever */
	char reason[REASON_MAX], last_reason[REASON_MAX], tls_log[REASON_MAX];

	struct flight fl[FLIGHT_MAX];
	size_t nfl;
	int publishing;             /* inside mosquitto_publish: a QoS 0 ack may come before its mid */
	int early[64];
	size_t nearly;
	int offline_mid, offline_acked;

	int64_t cursor;             /* the last outbox seq handed over on this connection */
	int outbox_more;            /* the outbox may hold rows after cursor */
	int64_t done_seq[DONE_MAX]; /* acknowledged rows to delete */
	size_t ndone_seq;
	char *done_topic[DONE_MAX / 16]; /* cleared retained topics to forget */
	size_t ndone_topic;

	int64_t until;              /* records of buckets closed by then are in the outbox */
	int dropping;
	int64_t dropped_burst;
	enum herr last_store_rc;

	struct strmap *devs, *models;
	struct dev **order;
	size_t ndev, cap, rr;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* FNV-1a, for "did the wanted state change"; never 0 (unknown) nor HASH_NONE. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	return hash_bytes(h, s, strlen(s) + 1);
}

static uint64_t hash_final(uint64_t h)
{
	return h <= HASH_NONE ? h + 2 : h;
}

#define HASH_START 14695981039346656037ull

static const char *target(const struct bridge *b, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%d", b->cfg.host, bridge_port(&b->cfg));
	return buf;
}

/* --- the store's side of things ---------------------------------------------------------------- */

static void gauge_sub(_Atomic uint64_t *g, uint64_t n)
{
	uint64_t v = atomic_load(g);

	atomic_store(g, v > n ? v - n : 0); /* only this thread writes it */
}

/* Forget acknowledged rows and cleared topics, in one transaction. */
static void flush_done(struct bridge *b)
{
	enum herr rc;
	size_t i;

	if (b->ndone_seq == 0 && b->ndone_topic == 0)
		return;
	rc = store_begin(b->st);
	for (i = 0; rc == HERR_OK && i < b->ndone_seq; i++)
		rc = store_bridge_outbox_delete(b->st, b->done_seq[i]);
	for (i = 0; rc == HERR_OK && i < b->ndone_topic; i++)
		rc = store_bridge_topic_delete(b->st, b->done_topic[i]);
	if (rc == HERR_OK)
		rc = store_commit(b->st);
	if (rc != HERR_OK) {
		store_rollback(b->st);
		if (b->last_store_rc == HERR_OK)
			log_err("bridge: acknowledged records not removed from the outbox (%s); retrying",
				herr_str(rc));
		b->last_store_rc = rc;
		return;
	}
	b->last_store_rc = HERR_OK;
	gauge_sub(&b->stat_rows, b->ndone_seq);
	for (i = 0; i < b->ndone_topic; i++)
		free(b->done_topic[i]);
	b->ndone_seq = b->ndone_topic = 0;
}

static void note_dropped(struct bridge *b, int64_t rows)
{
	if (rows > 0) {
		gauge_sub(&b->stat_rows, (uint64_t)rows);
		atomic_fetch_add(&b->stat_dropped, (uint64_t)rows);
		if (!b->dropping)
			log_warn("bridge: the outbox is over its bounds (bridge_outbox_max_bytes = %zu, "
				 "bridge_outbox_max_age_s = %u) or its records passed their retention: the oldest "
				 "are dropped", b->cfg.outbox_max_bytes, b->cfg.outbox_max_age_s);
		b->dropping = 1;
		b->dropped_burst += rows;
	} else if (b->dropping) {
		log_warn("bridge: %lld records were dropped from the outbox unsent", (long long)b->dropped_burst);
		b->dropping = 0;
		b->dropped_burst = 0;
	}
}

struct pending_record {
	char *topic, *payload, device[65];
	size_t len;
	int64_t expires_at;
};

struct collected {
	struct bridge *b;
	struct pending_record *r;
	size_t n, cap;
};

static int collect_record(void *ctx, const struct record *r)
{
	struct collected *c = ctx;
	struct pending_record *p;
	char topic[TOPIC_MAX];

	if (!hadisc_id_ok(r->device) ||
	    (size_t)snprintf(topic, sizeof(topic), "%s%s/telemetry", c->b->cfg.prefix, r->device) >= sizeof(topic))
		return -1;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct pending_record *grown = realloc(c->r, cap * sizeof(*grown));

		if (!grown)
			return -1;
		c->r = grown;
		c->cap = cap;
	}
	p = &c->r[c->n];
	p->topic = strdup(topic);
	p->payload = strdup(r->json);
	if (!p->topic || !p->payload) {
		free(p->topic);
		free(p->payload);
		return -1;
	}
	snprintf(p->device, sizeof(p->device), "%s", r->device);
	p->len = r->len;
	p->expires_at = r->expires_at;
	c->n++;
	return 0;
}

static void collected_free(struct collected *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->r[i].topic);
		free(c->r[i].payload);
	}
	free(c->r);
}

/* Bound the outbox; part of the caller's transaction. */
static enum herr trim(struct bridge *b, int64_t now, int64_t *dropped)
{
	return store_bridge_outbox_trim(b->st, (int64_t)b->cfg.outbox_max_bytes,
					now - (int64_t)b->cfg.outbox_max_age_s, now, dropped);
}

/* One step of the producer: the records of buckets closed in (until, to] into the outbox, with
 * the watermark, in one transaction (read first, so the write lock is held only briefly). */
static enum herr produce_step(struct bridge *b, int64_t to, int64_t now)
{
	struct collected c = { .b = b };
	int64_t dropped = 0;
	size_t i, failed = 0;
	enum herr rc = HERR_OK;

	if (b->send & BRIDGE_SEND_TELEMETRY) {
		rc = record_closed(b->st, b->until, to, collect_record, &c, NULL, &failed);
		if (rc != HERR_OK) {
			collected_free(&c);
			return rc;
		}
		if (failed)
			log_warn("bridge: %zu records could not be queued", failed);
	}
	rc = store_begin(b->st);
	for (i = 0; rc == HERR_OK && i < c.n; i++) {
		struct store_bridge_record r = {
			.device_id = c.r[i].device, .topic = c.r[i].topic, .payload = c.r[i].payload,
			.len = c.r[i].len, .retain = 0, .created_at = now, .expires_at = c.r[i].expires_at,
		};

		rc = store_bridge_outbox_add(b->st, &r);
	}
	if (rc == HERR_OK)
		rc = store_bridge_set_until(b->st, to);
	if (rc == HERR_OK && c.n > 0)
		rc = trim(b, now, &dropped);
	if (rc == HERR_OK)
		rc = store_commit(b->st);
	if (rc != HERR_OK) {
		store_rollback(b->st);
	} else {
		b->until = to;
		if (c.n > 0) {
			b->outbox_more = 1;
			atomic_fetch_add(&b->stat_rows, (uint64_t)c.n);
			note_dropped(b, dropped);
		}
	}
	collected_free(&c);
	return rc;
}

static void produce(struct bridge *b)
{
	int64_t stored = atomic_load(&b->stored_until), now = (int64_t)time(NULL), oldest, to;
	enum herr rc = HERR_OK;
	int steps;

	if (stored <= 0)
		return; /* the endpoint has not committed a turn yet */
	if (b->until == 0) {
		/* The first run ever: records of buckets that close from now on. */
		if (store_bridge_set_until(b->st, stored) == HERR_OK)
			b->until = stored;
		return;
	}
	oldest = stored - (int64_t)b->cfg.outbox_max_age_s;
	if (b->until < oldest) {
		log_warn("bridge: off since %lld; records of buckets that closed more than "
			 "bridge_outbox_max_age_s ago are not sent (they stay in the store)", (long long)b->until);
		b->until = oldest;
	}
	for (steps = 0; steps < STEPS_PER_RUN && b->until < stored && rc == HERR_OK; steps++) {
		to = stored < b->until + STEP_S ? stored : b->until + STEP_S;
		rc = produce_step(b, to, now);
	}
	if (rc != HERR_OK && b->last_store_rc == HERR_OK)
		log_err("bridge: closed buckets not queued (%s); retrying every second", herr_str(rc));
	b->last_store_rc = rc;
}

static void trim_now(struct bridge *b)
{
	int64_t dropped = 0;
	enum herr rc = store_begin(b->st);

	if (rc == HERR_OK)
		rc = trim(b, (int64_t)time(NULL), &dropped);
	if (rc == HERR_OK)
		rc = store_commit(b->st);
	if (rc != HERR_OK)
		store_rollback(b->st);
	else
		note_dropped(b, dropped);
}

static void refresh_stats(struct bridge *b)
{
	struct store_bridge_state s;

	if (store_bridge_state(b->st, &s) != HERR_OK)
		return;
	atomic_store(&b->stat_rows, (uint64_t)s.rows);
	atomic_store(&b->stat_dropped, (uint64_t)s.dropped);
}

/* --- what the broker should hold: device status and discovery ---------------------------------- */

static char *status_json(const struct store_device *d, const struct store_device_firmware *fw, int64_t last_seen)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "device", d->id, "status", d->status, "model", d->model);
	char *text = NULL;

	if (!o)
		return NULL;
	if ((fw->firmware_version[0] &&
	     json_object_set_new(o, "firmware_version", json_string(fw->firmware_version)) != 0) ||
	    (fw->reported_at > 0 &&
	     json_object_set_new(o, "security_version", json_integer(fw->security_version)) != 0) ||
	    (d->cert_not_after > 0 &&
	     json_object_set_new(o, "cert_not_after", json_integer(d->cert_not_after)) != 0) ||
	    (last_seen > 0 && json_object_set_new(o, "last_seen", json_integer(last_seen)) != 0)) {
		json_decref(o);
		return NULL;
	}
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

struct names {
	char (*name)[65];
	size_t n, cap;
};

static int add_model(void *ctx, const char *name, int has_policy, int64_t devices)
{
	struct names *m = ctx;

	(void)has_policy;
	(void)devices;
	if (strlen(name) >= sizeof(m->name[0]))
		return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		char (*grown)[65] = realloc(m->name, cap * sizeof(*grown));

		if (!grown)
			return 1;
		m->name = grown;
		m->cap = cap;
	}
	memcpy(m->name[m->n++], name, strlen(name) + 1);
	return 0;
}

static void poll_models(struct bridge *b)
{
	struct names m = { 0 };
	size_t i;

	if (store_model_list(b->st, add_model, &m) != HERR_OK) {
		free(m.name);
		return;
	}
	for (i = 0; i < m.n; i++) {
		struct model *mod = strmap_get(b->models, m.name[i]);
		char *text = NULL, why[256];
		uint64_t h = 0;

		if (store_model_get_policy(b->st, m.name[i], &text) != HERR_OK)
			continue;
		if (text)
			h = hash_final(hash_str(HASH_START, text));
		if (!mod) {
			mod = calloc(1, sizeof(*mod));
			if (!mod || strmap_put(b->models, m.name[i], mod, NULL) != HERR_OK) {
				free(mod);
				free(text);
				continue;
			}
		}
		if (mod->text_hash != h) {
			free(mod->policy);
			mod->policy = NULL;
			mod->text_hash = h;
			if (text && (mod->policy = malloc(sizeof(*mod->policy))) != NULL &&
			    policy_parse((const uint8_t *)text, strlen(text), mod->policy, why, sizeof(why)) != HERR_OK) {
				log_warn("bridge: model %s: its policy does not parse (%s); no discovery for it",
					 m.name[i], why);
				free(mod->policy);
				mod->policy = NULL;
			}
		}
		free(text);
	}
	free(m.name);
}

struct device_list {
	struct store_device *d;
	size_t n, cap;
};

static int add_device(void *ctx, const struct store_device *d)
{
	struct device_list *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct store_device *grown = realloc(l->d, cap * sizeof(*grown));

		if (!grown)
			return 1;
		l->d = grown;
		l->cap = cap;
	}
	l->d[l->n++] = *d;
	return 0;
}

static struct dev *dev_get(struct bridge *b, const char *id)
{
	struct dev *d = strmap_get(b->devs, id), **grown;

	if (d)
		return d;
	if (b->ndev == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;

		grown = realloc(b->order, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		b->order = grown;
		b->cap = cap;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	snprintf(d->id, sizeof(d->id), "%s", id);
	if (strmap_put(b->devs, id, d, NULL) != HERR_OK) {
		free(d);
		return NULL;
	}
	b->order[b->ndev++] = d;
	return d;
}

/* Read what the store says of every device and work out what the broker should hold. */
static void poll_store(struct bridge *b)
{
	struct device_list l = { 0 };
	int64_t now = (int64_t)time(NULL);
	uint32_t seen_s;
	size_t i;

	poll_models(b);
	if (store_device_list(b->st, add_device, &l) != HERR_OK) {
		free(l.d);
		return;
	}
	for (i = 0; i < l.n; i++) {
		const struct store_device *sd = &l.d[i];
		struct store_device_firmware fw;
		struct dev *d;
		struct model *mod;
		uint64_t h;

		if (!hadisc_id_ok(sd->id) || !(d = dev_get(b, sd->id)))
			continue;
		if (store_device_firmware(b->st, sd->id, &fw) != HERR_OK)
			memset(&fw, 0, sizeof(fw));
		snprintf(d->model, sizeof(d->model), "%s", sd->model);
		snprintf(d->firmware, sizeof(d->firmware), "%s", fw.firmware_version);
		d->active = strcmp(sd->status, "active") == 0;
		mod = strmap_get(b->models, sd->model);
		/* A last-seen bucket is shown once it has closed. Shown as soon as it changed, the status
		 * would time the device's first message in each bucket, which the store does not keep. */
		seen_s = mod && mod->policy ? mod->policy->last_seen_bucket_s : INGEST_DEFAULT_LAST_SEEN_S;
		if (sd->last_seen == 0 || sd->last_seen + (int64_t)seen_s <= now)
			d->last_seen = sd->last_seen;
		/* Status: what the store knows, while the device is not decommissioned (then everything
		 * about it goes, here too). */
		free(d->status_json);
		d->status_json = NULL;
		d->want[0] = HASH_NONE;
		if ((b->send & BRIDGE_SEND_STATUS) && strcmp(sd->status, "decommissioned") != 0 &&
		    (d->status_json = status_json(sd, &fw, d->last_seen)) != NULL)
			d->want[0] = hash_final(hash_str(HASH_START, d->status_json));
		/* Discovery: the kept fields of an active device whose records are sent. */
		d->want[1] = HASH_NONE;
		if (b->cfg.ha_discovery && (b->send & BRIDGE_SEND_TELEMETRY) && d->active && mod && mod->policy &&
		    mod->policy->count > 0) {
			h = hash_bytes(HASH_START, &mod->text_hash, sizeof(mod->text_hash));
			h = hash_str(hash_str(h, sd->model), fw.firmware_version);
			d->want[1] = hash_final(h);
		}
	}
	free(l.d);
}

/* --- publishing -------------------------------------------------------------------------------- */

static void acked(struct bridge *b, int mid);

/* Publish and remember it under its mid. 0, or a MOSQ_ERR_ code (nothing remembered). */
static int publish(struct bridge *b, const char *topic, const void *payload, size_t len, int qos, int retain,
		   const struct flight *f)
{
	int mid = 0, rc;
	size_t i, n;

	if (b->nfl == FLIGHT_MAX)
		return MOSQ_ERR_NOMEM;
	b->publishing = 1;
	b->nearly = 0;
	rc = mosquitto_publish(b->mosq, &mid, topic, (int)len, payload, qos, retain);
	b->publishing = 0;
	if (rc == MOSQ_ERR_SUCCESS) {
		b->fl[b->nfl] = *f;
		b->fl[b->nfl++].mid = mid;
	}
	/* QoS 0 messages are "acknowledged" when written, which can happen inside the call. */
	n = b->nearly;
	b->nearly = 0;
	for (i = 0; i < n; i++)
		acked(b, b->early[i]);
	return rc;
}

/* After a failed publish: a bad topic or payload will never go (drop it); anything else means the
 * connection is going. */
static int publish_failed(struct bridge *b, int rc, const char *what)
{
	if (rc == MOSQ_ERR_INVAL || rc == MOSQ_ERR_MALFORMED_UTF8 || rc == MOSQ_ERR_PAYLOAD_SIZE) {
		log_err("bridge: %s cannot be published (%s); dropped", what, mosquitto_strerror(rc));
		return 0;
	}
	if (!b->down) {
		snprintf(b->reason, sizeof(b->reason), "publish: %s", mosquitto_strerror(rc));
		b->down = 1;
	}
	return -1;
}

static void sync_finished(struct dev *d, int k)
{
	if (d->inflight[k] > 0)
		return;
	if (!d->partial[k])
		d->sent[k] = d->busy[k];
	d->busy[k] = 0;
	d->partial[k] = 0;
}

static void acked(struct bridge *b, int mid)
{
	size_t i;

	if (b->publishing) {
		if (b->nearly < sizeof(b->early) / sizeof(b->early[0]))
			b->early[b->nearly++] = mid;
		return;
	}
	if (mid == b->offline_mid && mid != 0) {
		b->offline_acked = 1;
		return;
	}
	for (i = 0; i < b->nfl && b->fl[i].mid != mid; i++)
		;
	if (i == b->nfl)
		return; /* "online", or one from before a reconnect */
	if (b->fl[i].kind == FL_RECORD) {
		if (b->ndone_seq < DONE_MAX)
			b->done_seq[b->ndone_seq++] = b->fl[i].seq;
		atomic_fetch_add(&b->stat_sent, 1);
	} else {
		struct dev *d = b->fl[i].dev;
		int k = b->fl[i].kind == FL_STATUS ? 0 : 1;

		if (b->fl[i].clear) {
			if (b->ndone_topic < sizeof(b->done_topic) / sizeof(b->done_topic[0]))
				b->done_topic[b->ndone_topic++] = b->fl[i].clear;
			else
				free(b->fl[i].clear); /* forgotten later: the next sync clears it again */
			b->fl[i].clear = NULL;
		}
		d->inflight[k]--;
		sync_finished(d, k);
	}
	b->fl[i] = b->fl[--b->nfl];
}

struct outbox_page {
	struct bridge *b;
	size_t rows;
	int stop;
};

static int send_row(void *ctx, const struct store_bridge_row *r)
{
	struct outbox_page *p = ctx;
	struct bridge *b = p->b;
	struct flight f = { .kind = FL_RECORD, .seq = r->seq };
	int rc;

	p->rows++;
	rc = publish(b, r->topic, r->payload, r->len, (int)b->cfg.qos, r->retain, &f);
	if (rc != MOSQ_ERR_SUCCESS && publish_failed(b, rc, "a record") != 0) {
		p->stop = 1;
		return 1;
	}
	if (rc != MOSQ_ERR_SUCCESS && b->ndone_seq < DONE_MAX)
		b->done_seq[b->ndone_seq++] = r->seq; /* never sendable: out of the outbox */
	b->cursor = r->seq;
	return 0;
}

/* Records in seq order while the window has room. */
static void send_records(struct bridge *b)
{
	while (b->state == UP && !b->down && b->outbox_more && b->nfl < WINDOW && b->ndone_seq + WINDOW < DONE_MAX) {
		struct outbox_page p = { .b = b };
		size_t want = WINDOW - b->nfl;

		if (want > OUTBOX_PAGE)
			want = OUTBOX_PAGE;
		if (store_bridge_outbox_list(b->st, b->cursor, want, send_row, &p) != HERR_OK || p.stop)
			return;
		if (p.rows < want)
			b->outbox_more = 0;
	}
}

struct wanted {
	char *topic[POLICY_MAX_FIELDS + 1];
	char *payload[POLICY_MAX_FIELDS + 1];
	size_t n;
	char **have;                /* topics of this kind the store says are set */
	size_t nhave, caphave;
	const char *kind;
};

static int add_wanted(void *ctx, const char *topic, const char *json)
{
	struct wanted *w = ctx;

	if (w->n == sizeof(w->topic) / sizeof(w->topic[0]))
		return 1;
	w->topic[w->n] = strdup(topic);
	w->payload[w->n] = strdup(json);
	if (!w->topic[w->n] || !w->payload[w->n]) {
		free(w->topic[w->n]);
		free(w->payload[w->n]);
		return 1;
	}
	w->n++;
	return 0;
}

static int add_have(void *ctx, const char *topic, const char *kind)
{
	struct wanted *w = ctx;
	char **grown;

	if (strcmp(kind, w->kind) != 0)
		return 0;
	if (w->nhave == w->caphave) {
		size_t cap = w->caphave ? w->caphave * 2 : 16;

		grown = realloc(w->have, cap * sizeof(*grown));
		if (!grown)
			return 1;
		w->have = grown;
		w->caphave = cap;
	}
	if ((w->have[w->nhave] = strdup(topic)) != NULL)
		w->nhave++;
	return 0;
}

static void wanted_free(struct wanted *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		free(w->topic[i]);
		free(w->payload[i]);
	}
	for (i = 0; i < w->nhave; i++)
		free(w->have[i]);
	free(w->have);
}

/* Bring one kind of a device's retained state at the broker to what is wanted: publish every wanted
 * message (recorded in the store first) and clear every topic the store says was set but is no
 * longer wanted. */
static void sync_dev(struct bridge *b, struct dev *d, int k)
{
	struct wanted w = { .kind = k == 0 ? "status" : "config" };
	struct flight f = { .kind = k == 0 ? FL_STATUS : FL_CONFIG, .dev = d };
	char topic[TOPIC_MAX];
	enum herr rc = HERR_OK;
	size_t i, j;

	if (d->want[k] != HASH_NONE) {
		if (k == 0 && d->status_json &&
		    (size_t)snprintf(topic, sizeof(topic), "%s%s/status", b->cfg.prefix, d->id) < sizeof(topic)) {
			add_wanted(&w, topic, d->status_json);
		} else if (k == 1) {
			struct model *mod = strmap_get(b->models, d->model);
			struct hadisc_device hd = { .id = d->id, .model = d->model, .sw_version = d->firmware };
			size_t skipped = 0;

			if (mod && mod->policy)
				rc = hadisc_configs(&b->ha, &hd, mod->policy, add_wanted, &w, &skipped);
			if (skipped)
				log_debug("bridge: %s: %zu fields get no discovery config (name not usable in a topic)",
					  d->id, skipped);
		}
	}
	if (rc == HERR_OK)
		rc = store_bridge_topics(b->st, d->id, add_have, &w);
	if (rc == HERR_OK && w.n > 0) {
		rc = store_begin(b->st);
		for (i = 0; rc == HERR_OK && i < w.n; i++)
			rc = store_bridge_topic_add(b->st, w.topic[i], d->id, w.kind);
		if (rc == HERR_OK)
			rc = store_commit(b->st);
		if (rc != HERR_OK)
			store_rollback(b->st);
	}
	if (rc != HERR_OK) {
		wanted_free(&w);
		return; /* the next turn tries again */
	}
	d->busy[k] = d->want[k];
	d->partial[k] = 0;
	for (i = 0; i < w.n && !b->down; i++) {
		int mrc = publish(b, w.topic[i], w.payload[i], strlen(w.payload[i]), 1, 1, &f);

		if (mrc == MOSQ_ERR_SUCCESS)
			d->inflight[k]++;
		else if (b->nfl == FLIGHT_MAX)
			d->partial[k] = 1;
		else
			publish_failed(b, mrc, w.topic[i]);
	}
	for (j = 0; j < w.nhave && !b->down; j++) {
		struct flight c = f;
		int mrc;

		for (i = 0; i < w.n && strcmp(w.topic[i], w.have[j]) != 0; i++)
			;
		if (i < w.n)
			continue;
		if (b->nfl == FLIGHT_MAX) {
			d->partial[k] = 1;
			break;
		}
		c.clear = w.have[j];
		mrc = publish(b, w.have[j], "", 0, 1, 1, &c);
		if (mrc == MOSQ_ERR_SUCCESS) {
			d->inflight[k]++;
			w.have[j] = NULL; /* ownership passed to the flight */
		} else {
			publish_failed(b, mrc, c.clear);
		}
	}
	wanted_free(&w);
	sync_finished(d, k);
}

/* Devices whose wanted state the broker does not hold yet, round-robin, while the window has room. */
static void sync_retained(struct bridge *b)
{
	size_t n;

	for (n = 0; n < b->ndev && b->state == UP && !b->down && b->nfl < WINDOW; n++) {
		struct dev *d = b->order[b->rr++ % b->ndev];
		int k;

		for (k = 0; k < 2; k++)
			if (d->want[k] != 0 && d->want[k] != d->sent[k] && d->busy[k] == 0)
				sync_dev(b, d, k);
	}
}

/* --- the connection ---------------------------------------------------------------------------- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct bridge *b = obj;
	char where[BRIDGE_TEXT_MAX + 8];

	if (rc != 0) {
		snprintf(b->reason, sizeof(b->reason), "refused: %s", mosquitto_connack_string(rc));
		b->down = 1;
		return;
	}
	b->state = UP;
	b->attempts = 0;
	b->last_reason[0] = '\0';
	b->cursor = 0;
	b->outbox_more = 1;
	atomic_store(&b->stat_connected, 1);
	log_info("bridge: connected to %s (%s)", target(b, where, sizeof(where)),
		 b->cfg.tls ? "TLS, certificate and host name verified" : "plain");
	if (store_bridge_set_connected(b->st, 1, (int64_t)time(NULL)) != HERR_OK)
		log_warn("bridge: could not record the connection in the store");
	mosquitto_publish(mosq, NULL, b->avail_topic, 6, "online", 1, true);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
	struct bridge *b = obj;

	(void)mosq;
	if (b->down)
		return;
	snprintf(b->reason, sizeof(b->reason), "%s", rc == 0 ? "disconnected" : mosquitto_strerror(rc));
	b->down = 1;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
	(void)mosq;
	acked(obj, mid);
}

/* libmosquitto says why TLS failed only here ("OpenSSL Error[0]: ... certificate verify failed"). */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
	struct bridge *b = obj;
	size_t n = strlen(b->tls_log);

	(void)mosq;
	if (!(level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) || n + 4 >= sizeof(b->tls_log))
		return;
	snprintf(b->tls_log + n, sizeof(b->tls_log) - n, "%s%s", n ? "; " : "", str);
}

/* The username and password from bridge_password_file, given to the client and wiped here. */
static int set_credentials(struct bridge *b)
{
	char user[BRIDGE_CRED_MAX], pass[BRIDGE_CRED_MAX], why[128];
	uint8_t *data = NULL;
	size_t len = 0;
	enum herr rc;
	int mrc = MOSQ_ERR_INVAL;

	rc = fs_read_secret(b->cfg.password_file, 4096, &data, &len);
	if (rc != HERR_OK) {
		snprintf(b->reason, sizeof(b->reason), "bridge_password_file: cannot read it (%s)", herr_str(rc));
		return -1;
	}
	rc = bridge_parse_credentials(data, len, user, pass, why, sizeof(why));
	explicit_bzero(data, len);
	free(data);
	if (rc == HERR_OK)
		mrc = mosquitto_username_pw_set(b->mosq, user, pass);
	explicit_bzero(user, sizeof(user));
	explicit_bzero(pass, sizeof(pass));
	if (rc != HERR_OK || mrc != MOSQ_ERR_SUCCESS) {
		snprintf(b->reason, sizeof(b->reason), "bridge_password_file: %s",
			 rc != HERR_OK ? why : mosquitto_strerror(mrc));
		return -1;
	}
	return 0;
}

static int configure(struct bridge *b)
{
	const struct bridge_config *c = &b->cfg;
	int rc;

	mosquitto_connect_callback_set(b->mosq, on_connect);
	mosquitto_disconnect_callback_set(b->mosq, on_disconnect);
	mosquitto_publish_callback_set(b->mosq, on_publish);
	mosquitto_log_callback_set(b->mosq, on_log);
	mosquitto_int_option(b->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_int_option(b->mosq, MOSQ_OPT_SEND_MAXIMUM, FLIGHT_MAX);
	rc = mosquitto_will_set(b->mosq, b->avail_topic, 7, "offline", 1, true);
	if (rc == MOSQ_ERR_SUCCESS && c->tls) {
		const char *cert = c->certfile[0] ? c->certfile : NULL, *key = c->keyfile[0] ? c->keyfile : NULL;

		if (!c->cafile[0])
			mosquitto_int_option(b->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
		rc = mosquitto_tls_set(b->mosq, c->cafile[0] ? c->cafile : NULL, c->cafile[0] ? NULL : "/etc/ssl/certs",
				       cert, key, NULL);
		/* Verify the chain and the host name, always: never mosquitto_tls_insecure_set(true). */
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_tls_opts_set(b->mosq, 1, NULL, NULL);
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_tls_insecure_set(b->mosq, false);
	}
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(b->reason, sizeof(b->reason), "client set-up: %s", mosquitto_strerror(rc));
		return -1;
	}
	return c->password_file[0] ? set_credentials(b) : 0;
}

static void connection_failed(struct bridge *b, uint64_t now);

static void connect_start(struct bridge *b, uint64_t now)
{
	int rc;

	if (b->tries++ > 0)
		atomic_fetch_add(&b->stat_reconnects, 1);
	b->down = 0;
	b->reason[0] = b->tls_log[0] = '\0';
	b->mosq = mosquitto_new(b->client_id, true, b);
	if (!b->mosq) {
		snprintf(b->reason, sizeof(b->reason), "out of memory");
		connection_failed(b, now);
		return;
	}
	if (configure(b) != 0) {
		connection_failed(b, now);
		return;
	}
	b->state = CONNECTING;
	b->deadline = now + CONNECT_TIMEOUT_MS;
	rc = mosquitto_connect_async(b->mosq, b->cfg.host, bridge_port(&b->cfg), KEEPALIVE_S);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(b->reason, sizeof(b->reason), "%s",
			 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		connection_failed(b, now);
	}
}

/* Whatever ended it: forget what was in flight (it is sent again, oldest first), close, and try
 * again after a backoff of 1, 2, 4 ... 60 s. */
static void connection_failed(struct bridge *b, uint64_t now)
{
	char where[BRIDGE_TEXT_MAX + 8], reason[2 * REASON_MAX + 4];
	unsigned delay;
	size_t i;
	int k;

	flush_done(b);
	for (i = 0; i < b->nfl; i++)
		free(b->fl[i].clear);
	b->nfl = 0;
	for (i = 0; i < b->ndev; i++) {
		for (k = 0; k < 2; k++) {
			b->order[i]->sent[k] = b->order[i]->busy[k] = 0;
			b->order[i]->inflight[k] = 0;
			b->order[i]->partial[k] = 0;
		}
	}
	b->cursor = 0;
	b->outbox_more = 1;
	if (b->mosq)
		mosquitto_destroy(b->mosq);
	b->mosq = NULL;
	/* libmosquitto's messages end in '.'; ours go on after them. */
	if (b->reason[0] && b->reason[strlen(b->reason) - 1] == '.')
		b->reason[strlen(b->reason) - 1] = '\0';
	snprintf(reason, sizeof(reason), "%s%s%s", b->reason[0] ? b->reason : "connection failed",
		 b->tls_log[0] ? ": " : "", b->tls_log);
	target(b, where, sizeof(where));
	if (b->state == UP) {
		atomic_store(&b->stat_connected, 0);
		store_bridge_set_connected(b->st, 0, (int64_t)time(NULL));
		log_warn("bridge: connection to %s lost (%s); reconnecting", where, reason);
		b->attempts = 0;
		snprintf(b->last_reason, sizeof(b->last_reason), "%.*s", (int)sizeof(b->last_reason) - 1, reason);
	} else {
		b->attempts++;
		/* Each new reason is logged, a repeated one at 1, 2, 4, 8 ... attempts. */
		if (strncmp(reason, b->last_reason, sizeof(b->last_reason) - 1) != 0 ||
		    (b->attempts & (b->attempts - 1)) == 0)
			log_warn("bridge: cannot connect to %s (%s); attempt %u, retrying", where, reason, b->attempts);
		snprintf(b->last_reason, sizeof(b->last_reason), "%.*s", (int)sizeof(b->last_reason) - 1, reason);
	}
	b->state = DOWN;
	b->down = 0;
	delay = b->attempts == 0 ? 1 : b->attempts > 6 ? BACKOFF_MAX_S : 1u << (b->attempts - 1);
	if (delay > BACKOFF_MAX_S)
		delay = BACKOFF_MAX_S;
	b->next_attempt = now + (uint64_t)delay * 1000;
}

/* "offline" where Home Assistant looks, then a clean disconnect (which sends no will). */
static void say_offline(struct bridge *b)
{
	uint64_t until = mono_ms() + STOP_FLUSH_MS;

	if (b->state != UP || b->down)
		return;
	b->offline_acked = 0;
	if (mosquitto_publish(b->mosq, &b->offline_mid, b->avail_topic, 7, "offline", 1, true) ==
	    MOSQ_ERR_SUCCESS) {
		while (!b->offline_acked && !b->down && mono_ms() < until)
			if (mosquitto_loop(b->mosq, 50, 1) != MOSQ_ERR_SUCCESS)
				break;
	}
	mosquitto_disconnect(b->mosq);
	mosquitto_loop(b->mosq, 50, 1);
}

static void *run(void *arg)
{
	struct bridge *b = arg;
	uint64_t next_produce = 0, next_poll = 0, next_trim = 0, next_stats = 0, now;

	while (!atomic_load(&b->stop)) {
		now = mono_ms();
		if (!b->mosq && now >= b->next_attempt)
			connect_start(b, now);
		if (b->mosq) {
			int rc = mosquitto_loop(b->mosq, LOOP_MS, 1);

			if (rc != MOSQ_ERR_SUCCESS && !b->down) {
				snprintf(b->reason, sizeof(b->reason), "%s",
					 rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
				b->down = 1;
			}
			if (b->state == CONNECTING && !b->down && mono_ms() >= b->deadline) {
				snprintf(b->reason, sizeof(b->reason), "no answer within %d s", CONNECT_TIMEOUT_MS / 1000);
				b->down = 1;
			}
			if (b->down)
				connection_failed(b, mono_ms());
		} else {
			struct timespec ts = { 0, LOOP_MS * 1000000L };

			nanosleep(&ts, NULL);
		}
		now = mono_ms();
		if (now >= next_produce) {
			produce(b);
			next_produce = now + PRODUCE_MS;
		}
		if (now >= next_poll) {
			poll_store(b);
			next_poll = now + POLL_MS;
		}
		if (now >= next_trim) {
			trim_now(b);
			next_trim = now + TRIM_MS;
		}
		if (b->state == UP && !b->down) {
			sync_retained(b);
			send_records(b);
		}
		flush_done(b);
		if (now >= next_stats) {
			refresh_stats(b);
			next_stats = now + STATS_MS;
		}
	}
	if (b->mosq) {
		say_offline(b);
		flush_done(b);
		if (b->state == UP)
			store_bridge_set_connected(b->st, 0, (int64_t)time(NULL));
		mosquitto_destroy(b->mosq);
		b->mosq = NULL;
	}
	return NULL;
}

/* --- the API ----------------------------------------------------------------------------------- */

static void default_client_id(char *buf, size_t size)
{
	char host[256] = "";
	size_t i, n = strlen("hearth-");

	snprintf(buf, size, "hearth-");
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "host");
	for (i = 0; host[i] && n + 1 < size && n < 64; i++) {
		char ch = host[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		    ch == '.' || ch == '_')
			buf[n++] = ch;
	}
	buf[n] = '\0';
}

static int free_model(void *ctx, const char *key, void *value)
{
	struct model *m = value;

	(void)ctx;
	(void)key;
	free(m->policy);
	free(m);
	return 0;
}

static void bridge_free(struct bridge *b)
{
	size_t i;

	for (i = 0; i < b->nfl; i++)
		free(b->fl[i].clear);
	for (i = 0; i < b->ndone_topic; i++)
		free(b->done_topic[i]);
	for (i = 0; i < b->ndev; i++) {
		free(b->order[i]->status_json);
		free(b->order[i]);
	}
	free(b->order);
	strmap_free(b->devs);
	if (b->models)
		strmap_each(b->models, free_model, NULL);
	strmap_free(b->models);
	datadir_close(b->dd);
	free(b);
}

enum herr bridge_start(const char *dir, const struct bridge_config *c, struct bridge **out)
{
	struct store_bridge_state s;
	struct bridge *b;
	char where[BRIDGE_TEXT_MAX + 8];
	enum herr rc;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return HERR_NOMEM;
	b->cfg = *c;
	b->send = bridge_records_parse(c->records);
	if (c->client_id[0])
		snprintf(b->client_id, sizeof(b->client_id), "%s", c->client_id);
	else
		default_client_id(b->client_id, sizeof(b->client_id));
	snprintf(b->avail_topic, sizeof(b->avail_topic), "%savailability", c->prefix);
	b->ha.ha_prefix = b->cfg.ha_prefix;
	b->ha.prefix = b->cfg.prefix;
	b->devs = strmap_new();
	b->models = strmap_new();
	rc = b->devs && b->models ? datadir_open(dir, &b->dd) : HERR_NOMEM;
	if (rc == HERR_OK) {
		b->st = b->dd->store;
		rc = store_bridge_state(b->st, &s);
	}
	if (rc != HERR_OK) {
		bridge_free(b);
		return rc;
	}
	b->until = s.until;
	atomic_store(&b->stat_rows, (uint64_t)s.rows);
	atomic_store(&b->stat_dropped, (uint64_t)s.dropped);
	/* A crash leaves "connected" behind: it is not, yet. */
	if (s.connected)
		store_bridge_set_connected(b->st, 0, (int64_t)time(NULL));
	mosquitto_lib_init();
	if (pthread_create(&b->thread, NULL, run, b) != 0) {
		mosquitto_lib_cleanup();
		bridge_free(b);
		return HERR_NOMEM;
	}
	log_info("bridge: to %s as %s (%s%s%s), records on %s<device>/telemetry (QoS %u)%s; outbox: %lld record%s",
		 target(b, where, sizeof(where)), b->client_id, c->tls ? "TLS" : "plain",
		 c->certfile[0] ? ", client certificate" : "", c->password_file[0] ? ", username and password" : "",
		 c->prefix, c->qos, c->ha_discovery ? ", Home Assistant discovery" : "", (long long)s.rows,
		 s.rows == 1 ? "" : "s");
	*out = b;
	return HERR_OK;
}

void bridge_stored_until(struct bridge *b, int64_t now)
{
	if (b)
		atomic_store(&b->stored_until, now);
}

void bridge_stats(struct bridge *b, struct bridge_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!b)
		return;
	out->enabled = 1;
	out->connected = atomic_load(&b->stat_connected);
	out->records_sent = atomic_load(&b->stat_sent);
	out->outbox_rows = atomic_load(&b->stat_rows);
	out->dropped = atomic_load(&b->stat_dropped);
	out->reconnects = atomic_load(&b->stat_reconnects);
}

void bridge_stop(struct bridge *b)
{
	if (!b)
		return;
	atomic_store(&b->stop, 1);
	pthread_join(b->thread, NULL);
	mosquitto_lib_cleanup();
	bridge_free(b);
}
