#include "server/broker.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/strmap.h"
#include "server/ack.h"
#include "server/acl.h"
#include "server/ingest.h"

/* One message held by the broker: queued or in flight for a session, retained, or a will. */
struct qmsg {
	struct qmsg *next;
	uint16_t packet_id; /* set when sent at QoS 1 */
	uint8_t qos;
	uint8_t retain;
	size_t tlen, plen;
	uint8_t data[];     /* topic bytes, then payload bytes */
};

struct sub {
	uint8_t *filter;
	uint16_t len;
	uint8_t qos;
};

struct mlist {
	struct qmsg *head, *tail;
	size_t count;
};

struct broker_session {
	char id[65];
	enum acl_role role;
	int clean;
	void *conn;             /* NULL while offline */
	struct sub *subs;
	size_t nsubs;
	struct mlist inflight;  /* sent at QoS 1, waiting for PUBACK, in send order */
	struct mlist queue;     /* waiting to be sent */
	uint16_t next_id;
	struct qmsg *will;
};

struct broker {
	struct broker_limits lim;
	struct broker_sink sink;
	struct store *store;
	struct strmap *sessions;  /* device or client id -> struct broker_session */
	struct broker_session **integrations; /* the integration clients' sessions, also in sessions */
	size_t n_integrations, cap_integrations;
	struct strmap *retained;  /* device id ("" outside device subtrees) -> struct mlist */
	struct broker_stats stats;
	struct ingest *ingest;
	uint8_t *scratch;
	size_t scratch_size;
};

static struct qmsg *qmsg_new(const uint8_t *topic, size_t tlen, const uint8_t *payload, size_t plen,
			     uint8_t qos, int retain)
{
	struct qmsg *m = malloc(sizeof(*m) + tlen + plen);

	if (!m)
		return NULL;
	m->next = NULL;
	m->packet_id = 0;
	m->qos = qos;
	m->retain = retain ? 1 : 0;
	m->tlen = tlen;
	m->plen = plen;
	memcpy(m->data, topic, tlen);
	if (plen)
		memcpy(m->data + tlen, payload, plen);
	return m;
}

static void mlist_push(struct mlist *l, struct qmsg *m)
{
	m->next = NULL;
	if (l->tail)
		l->tail->next = m;
	else
		l->head = m;
	l->tail = m;
	l->count++;
}

static struct qmsg *mlist_pop(struct mlist *l)
{
	struct qmsg *m = l->head;

	if (!m)
		return NULL;
	l->head = m->next;
	if (!l->head)
		l->tail = NULL;
	l->count--;
	m->next = NULL;
	return m;
}

static void mlist_clear(struct mlist *l)
{
	struct qmsg *m;

	while ((m = mlist_pop(l)) != NULL)
		free(m);
}

/* Encode a PUBLISH into the scratch buffer and hand it to the connection. */
static int send_publish(struct broker *b, void *conn, const struct qmsg *m, uint8_t qos, int retain,
			int dup, uint16_t id)
{
	size_t need = mqtt_publish_size(m->tlen, m->plen, qos), n;

	if (need > b->scratch_size) {
		uint8_t *grown = realloc(b->scratch, need);

		if (!grown)
			return -1;
		b->scratch = grown;
		b->scratch_size = need;
	}
	n = mqtt_write_publish(b->scratch, b->scratch_size, m->data, m->tlen, m->data + m->tlen, m->plen,
			       qos, retain, dup, id);
	if (n == 0 || b->sink.send(conn, b->scratch, n) != 0)
		return -1;
	b->stats.messages_out++;
	return 0;
}

static int inflight_has(const struct broker_session *s, uint16_t id)
{
	const struct qmsg *m;

	for (m = s->inflight.head; m; m = m->next) {
		if (m->packet_id == id)
			return 1;
	}
	return 0;
}

static uint16_t next_packet_id(struct broker_session *s)
{
	/* The window is small (max_inflight), so a free id is always found quickly. */
	do {
		if (++s->next_id == 0)
			s->next_id = 1;
	} while (inflight_has(s, s->next_id));
	return s->next_id;
}

/* Move queued QoS 1 messages into flight while the window has room. */
static void pump(struct broker *b, struct broker_session *s)
{
	while (s->conn && s->queue.head && s->inflight.count < b->lim.max_inflight) {
		struct qmsg *m = s->queue.head;

		m->packet_id = next_packet_id(s);
		if (send_publish(b, s->conn, m, 1, m->retain, 0, m->packet_id) != 0)
			return; /* the connection is full; try again after the next PUBACK or reconnect */
		mlist_push(&s->inflight, mlist_pop(&s->queue));
	}
}

/* The highest QoS granted by any of s's subscriptions matching topic, or -1. */
static int granted_qos(const struct broker_session *s, const uint8_t *topic, size_t tlen)
{
	int best = -1;
	size_t i;

	for (i = 0; i < s->nsubs; i++) {
		if (s->subs[i].qos > best &&
		    mqtt_topic_matches(s->subs[i].filter, s->subs[i].len, topic, tlen))
			best = s->subs[i].qos;
	}
	return best;
}

/* Offer one message to one session, at the lower of the message's and the subscription's QoS. */
static void offer(struct broker *b, struct broker_session *s, const struct qmsg *m, int retain,
		  int only_filter, const struct sub *filter)
{
	struct qmsg *copy;
	int qos;

	if (only_filter)
		qos = mqtt_topic_matches(filter->filter, filter->len, m->data, m->tlen) ? filter->qos : -1;
	else
		qos = granted_qos(s, m->data, m->tlen);
	if (qos < 0)
		return;
	if (m->qos < qos)
		qos = m->qos;
	if (qos == 0) {
		if (s->conn)
			(void)send_publish(b, s->conn, m, 0, retain, 0, 0);
		return;
	}
	copy = qmsg_new(m->data, m->tlen, m->data + m->tlen, m->plen, 1, retain);
	if (!copy) {
		b->stats.queued_dropped++;
		return;
	}
	if (s->queue.count >= b->lim.max_queued) {
		/* Oldest first out: the newest state is what a device needs. */
		free(mlist_pop(&s->queue));
		b->stats.queued_dropped++;
		log_warn("device %s: queue full (%zu), dropped its oldest message", s->id, b->lim.max_queued);
	}
	mlist_push(&s->queue, copy);
	pump(b, s);
}

/* The device whose subtree holds topic, as a NUL-terminated key ("" if none). */
static void topic_owner(const uint8_t *topic, size_t tlen, char key[65])
{
	const uint8_t *id;
	size_t n = acl_topic_device(topic, tlen, &id);

	if (n == 0 || n > 64)
		n = 0;
	if (n)
		memcpy(key, id, n);
	key[n] = '\0';
}

/* The device whose subtree holds the topic, and for the telemetry stream (which carries only
 * minimized records: raw device telemetry is never routed) the integration clients too. */
static void route(struct broker *b, const struct qmsg *m)
{
	struct broker_session *s;
	char owner[65];
	size_t i;

	topic_owner(m->data, m->tlen, owner);
	s = owner[0] ? strmap_get(b->sessions, owner) : NULL;
	if (s && s->role == ACL_DEVICE)
		offer(b, s, m, 0, 0, NULL);
	if (!acl_is_telemetry(m->data, m->tlen))
		return;
	for (i = 0; i < b->n_integrations; i++)
		offer(b, b->integrations[i], m, 0, 0, NULL);
}

/* Keep (or with an empty payload, drop) the retained message of m's topic: durably first. */
static enum herr retain_message(struct broker *b, const struct qmsg *m)
{
	char owner[65], topic[65536];
	struct mlist *set;
	struct qmsg **pp, *copy = NULL;
	enum herr rc;

	memcpy(topic, m->data, m->tlen);
	topic[m->tlen] = '\0';
	topic_owner(m->data, m->tlen, owner);
	set = strmap_get(b->retained, owner);
	if (m->plen > 0 && !set) {
		set = calloc(1, sizeof(*set));
		if (!set || strmap_put(b->retained, owner, set, NULL) != HERR_OK) {
			free(set);
			return HERR_NOMEM;
		}
	}
	if (m->plen > 0) {
		copy = qmsg_new(m->data, m->tlen, m->data + m->tlen, m->plen, m->qos, 1);
		if (!copy)
			return HERR_NOMEM;
	}
	for (pp = set ? &set->head : NULL; pp && *pp; pp = &(*pp)->next) {
		if ((*pp)->tlen == m->tlen && memcmp((*pp)->data, m->data, m->tlen) == 0)
			break;
	}
	if (copy && !(pp && *pp) && set->count >= b->lim.max_retained) {
		log_warn("device %s: retained topics at their limit (%zu); not kept", owner, b->lim.max_retained);
		free(copy);
		return HERR_OK;
	}
	if (b->store) {
		rc = store_retained_set(b->store, topic, m->data + m->tlen, m->plen, m->qos, (int64_t)time(NULL));
		if (rc != HERR_OK) {
			free(copy);
			return HERR_STORE;
		}
	}
	if (pp && *pp) {
		struct qmsg *old = *pp;

		if (copy) {
			copy->next = old->next;
			*pp = copy;
			if (set->tail == old)
				set->tail = copy;
		} else {
			*pp = old->next;
			set->count--;
			if (set->tail == old) {
				struct qmsg *t = set->head;

				while (t && t->next)
					t = t->next;
				set->tail = t;
			}
		}
		free(old);
	} else if (copy) {
		mlist_push(set, copy);
	}
	b->stats.retained_stored++;
	return HERR_OK;
}

static int load_retained(void *ctx, const char *topic, const uint8_t *payload, size_t len, int qos)
{
	struct broker *b = ctx;
	struct qmsg *m = qmsg_new((const uint8_t *)topic, strlen(topic), payload, len, (uint8_t)qos, 1);
	struct store *st = b->store;

	if (!m)
		return 1;
	b->store = NULL; /* already durable: only rebuild memory */
	(void)retain_message(b, m);
	b->store = st;
	free(m);
	return 0;
}

enum herr broker_new(const struct broker_limits *limits, const struct broker_sink *sink,
		     struct store *store, struct broker **out)
{
	struct broker *b;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return HERR_NOMEM;
	b->lim = *limits;
	b->sink = *sink;
	b->store = store;
	b->sessions = strmap_new();
	b->retained = strmap_new();
	if (!b->sessions || !b->retained) {
		broker_free(b);
		return HERR_NOMEM;
	}
	if (store && store_retained_list(store, load_retained, b) != HERR_OK) {
		broker_free(b);
		return HERR_STORE;
	}
	*out = b;
	return HERR_OK;
}

static void session_free(struct broker_session *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->nsubs; i++)
		free(s->subs[i].filter);
	free(s->subs);
	mlist_clear(&s->inflight);
	mlist_clear(&s->queue);
	free(s->will);
	free(s);
}

/* Forget a session everywhere the broker holds it, and free it. */
static void session_drop(struct broker *b, struct broker_session *s)
{
	size_t i;

	strmap_del(b->sessions, s->id);
	for (i = 0; i < b->n_integrations; i++) {
		if (b->integrations[i] == s) {
			b->integrations[i] = b->integrations[--b->n_integrations];
			break;
		}
	}
	session_free(s);
}

static int free_session_cb(void *ctx, const char *key, void *value)
{
	(void)ctx;
	(void)key;
	session_free(value);
	return 0;
}

static int free_retained_cb(void *ctx, const char *key, void *value)
{
	(void)ctx;
	(void)key;
	mlist_clear(value);
	free(value);
	return 0;
}

void broker_free(struct broker *b)
{
	if (!b)
		return;
	if (b->sessions) {
		strmap_each(b->sessions, free_session_cb, NULL);
		strmap_free(b->sessions);
	}
	if (b->retained) {
		strmap_each(b->retained, free_retained_cb, NULL);
		strmap_free(b->retained);
	}
	free(b->integrations);
	free(b->scratch);
	free(b);
}

void broker_set_ingest(struct broker *b, struct ingest *ing)
{
	b->ingest = ing;
}

void broker_set_limits(struct broker *b, const struct broker_limits *limits)
{
	b->lim = *limits;
}

const struct broker_stats *broker_stats(const struct broker *b)
{
	return &b->stats;
}

const char *broker_session_id(const struct broker_session *s)
{
	return s->id;
}

/* A new session, registered under its id (and as an integration if it is one). */
static struct broker_session *session_new(struct broker *b, const char *id, enum acl_role role)
{
	struct broker_session *s;

	if (role == ACL_INTEGRATION && b->n_integrations == b->cap_integrations) {
		size_t cap = b->cap_integrations ? b->cap_integrations * 2 : 8;
		struct broker_session **grown = realloc(b->integrations, cap * sizeof(*grown));

		if (!grown)
			return NULL;
		b->integrations = grown;
		b->cap_integrations = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	memcpy(s->id, id, strlen(id) + 1);
	s->role = role;
	if (strmap_put(b->sessions, id, s, NULL) != HERR_OK) {
		free(s);
		return NULL;
	}
	if (role == ACL_INTEGRATION)
		b->integrations[b->n_integrations++] = s;
	return s;
}

static int retained_has(struct broker *b, const char *owner, const char *topic)
{
	struct mlist *set = strmap_get(b->retained, owner);
	size_t len = strlen(topic);
	struct qmsg *m;

	for (m = set ? set->head : NULL; m; m = m->next)
		if (m->tlen == len && memcmp(m->data, topic, len) == 0)
			return 1;
	return 0;
}

struct catch_up {
	struct broker *b;
	const char *topic;
	int64_t delivered;           /* the endpoint's delivery cursor */
	enum herr rc;
};

static int retain_manifest(void *ctx, const struct store_manifest *m)
{
	struct catch_up *c = ctx;
	struct qmsg *q;

	/* One the endpoint has not published yet reaches this device when it is (it exists now):
	 * retaining it here could let an older one, published after, overwrite it. */
	if (m->seq > c->delivered)
		return 0;
	q = qmsg_new((const uint8_t *)c->topic, strlen(c->topic), (const uint8_t *)m->envelope,
		     strlen(m->envelope), 1, 1);
	c->rc = q ? retain_message(c->b, q) : HERR_NOMEM;
	free(q);
	return 0;
}

/* A device's manifest topics hold the newest manifest of each type addressed to it (endpoint.c
 * publishes each new one to every device it addresses). A device enrolled after a manifest was
 * issued to its model or to all has none yet: retain them now, before it subscribes. Costs store
 * reads only while a topic is empty. */
static void catch_up_manifests(struct broker *b, const char *id)
{
	static const char *const types[] = { "pins", "keys", "firmware" };
	char topic[160];
	int64_t delivered = -1;
	size_t i;

	if (!b->store)
		return;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct catch_up c = { .b = b, .topic = topic, .rc = HERR_OK };
		enum herr rc;

		snprintf(topic, sizeof(topic), ACL_PREFIX "%s/manifest/%s", id, types[i]);
		if (retained_has(b, id, topic))
			continue;
		if (delivered < 0 && store_manifest_delivered(b->store, &delivered) != HERR_OK) {
			log_warn("%s: its manifests could not be looked up", id);
			return;
		}
		c.delivered = delivered;
		rc = store_manifest_for_device(b->store, id, types[i], 0, retain_manifest, &c);
		if ((rc != HERR_OK && rc != HERR_NOTFOUND) || c.rc != HERR_OK)
			log_warn("%s: the newest %s manifest could not be retained for it", id, types[i]);
	}
}

uint8_t broker_connect(struct broker *b, const char *id, enum acl_role role, void *conn,
		       const struct mqtt_connect *c, struct broker_session **session, int *present)
{
	struct broker_session *s;

	*session = NULL;
	*present = 0;
	/* Identity is the certificate's CN; the client id may only repeat it (or be empty). */
	if (c->client_id.len != 0 &&
	    (c->client_id.len != strlen(id) || memcmp(c->client_id.p, id, c->client_id.len) != 0))
		return MQTT_CONNACK_BAD_CLIENT_ID;
	/* A will is published as if the device sent it, but outside any group commit: so not on
	 * the telemetry topic, whose messages must be minimized and stored before anything else. */
	if (c->will && (!acl_may_publish(role, id, c->will_topic.p, c->will_topic.len) ||
			acl_is_telemetry(c->will_topic.p, c->will_topic.len)))
		return MQTT_CONNACK_NOT_AUTHORIZED;

	s = strmap_get(b->sessions, id);
	if (s && s->conn) {
		b->sink.close(s->conn, "taken over by a new connection of the same device");
		s->conn = NULL;
	}
	if (s && (c->clean_session || s->role != role)) {
		session_drop(b, s);
		s = NULL;
	}
	if (!s) {
		s = session_new(b, id, role);
		if (!s)
			return MQTT_CONNACK_UNAVAILABLE;
	} else {
		*present = 1;
	}
	s->clean = c->clean_session;
	s->conn = conn;
	free(s->will);
	s->will = NULL;
	if (c->will) {
		s->will = qmsg_new(c->will_topic.p, c->will_topic.len, c->will_payload.p,
				   c->will_payload.len, c->will_qos > 1 ? 1 : c->will_qos, c->will_retain);
		if (!s->will) {
			s->conn = NULL;
			return MQTT_CONNACK_UNAVAILABLE;
		}
	}
	if (role == ACL_DEVICE)
		catch_up_manifests(b, id);
	*session = s;
	return MQTT_CONNACK_ACCEPTED;
}

void broker_resume(struct broker *b, struct broker_session *s)
{
	struct qmsg *m;

	/* 3.1.1 §4.4: unacknowledged QoS 1 messages are sent again, with DUP, in order. */
	for (m = s->inflight.head; m && s->conn; m = m->next)
		(void)send_publish(b, s->conn, m, 1, m->retain, 1, m->packet_id);
	pump(b, s);
}

void broker_disconnect(struct broker *b, struct broker_session *s, int graceful)
{
	struct qmsg *will = s->will;

	s->will = NULL;
	s->conn = NULL;
	if (will && !graceful) {
		if (will->retain)
			(void)retain_message(b, will);
		b->stats.messages_in++;
		route(b, will);
	}
	free(will);
	if (s->clean)
		session_drop(b, s);
}

/* What broker_publish_in says when a message could not be taken: the store failed (the caller's
 * transaction is lost with it), memory ran out, or anything else (the device is gone from the
 * store, a constraint): HERR_NOTFOUND. */
static enum herr not_taken(enum herr rc)
{
	return rc == HERR_OK || rc == HERR_NOMEM || rc == HERR_STORE ? rc : HERR_NOTFOUND;
}

enum herr broker_publish_in(struct broker *b, struct broker_session *s, const struct mqtt_publish *p)
{
	struct qmsg *m;
	enum herr rc = HERR_OK;

	if (!acl_may_publish(s->role, s->id, p->topic.p, p->topic.len))
		return HERR_INVALID;
	b->stats.messages_in++;
	/* Raw telemetry goes to minimization and nowhere else: not retained (it would reach the
	 * disk), not routed (subscribers of the telemetry topic get the minimized records). */
	if (acl_is_telemetry(p->topic.p, p->topic.len))
		return b->ingest ? not_taken(ingest_telemetry(b->ingest, s->id, p->payload, p->payload_len,
							       (int64_t)time(NULL))) : HERR_OK;
	if (acl_is_leaf(p->topic.p, p->topic.len, "ack") && b->store) {
		struct ack a;
		const char *why;
		enum herr prc = ack_parse(p->payload, p->payload_len, &a, &why);

		if (prc == HERR_NOMEM) {
			return prc; /* not recorded, so not acknowledged */
		} else if (prc != HERR_OK) {
			b->stats.acks_invalid++;
			log_debug("%s: ack not recorded: %s", s->id, why);
		} else if ((rc = store_manifest_ack(b->store, s->id, a.type, a.version, a.status,
						    (int64_t)time(NULL))) != HERR_OK) {
			return not_taken(rc);
		} else {
			b->stats.acks_recorded++;
		}
	}
	if (acl_is_leaf(p->topic.p, p->topic.len, "status") && b->store && p->payload_len > 0) {
		struct ack_status st;
		const char *why;
		enum herr prc = ack_status_parse(p->payload, p->payload_len, &st, &why);

		if (prc == HERR_INVALID)
			log_debug("%s: status not read: %s", s->id, why);
		else if (prc == HERR_OK)
			prc = store_device_report(b->store, s->id, st.firmware[0] ? st.firmware : NULL,
						  st.security_version, (int64_t)time(NULL));
		if (prc != HERR_OK && prc != HERR_NOTFOUND && prc != HERR_INVALID)
			return not_taken(prc);
		if (b->ingest && (rc = not_taken(ingest_seen(b->ingest, s->id, (int64_t)time(NULL)))) != HERR_OK)
			return rc;
	}
	m = qmsg_new(p->topic.p, p->topic.len, p->payload, p->payload_len, p->qos > 1 ? 1 : p->qos, 0);
	if (!m)
		return HERR_NOMEM;
	if (p->retain)
		rc = retain_message(b, m);
	if (rc == HERR_OK)
		route(b, m);
	free(m);
	return rc;
}

static struct sub *find_sub(struct broker_session *s, const uint8_t *f, size_t len)
{
	size_t i;

	for (i = 0; i < s->nsubs; i++) {
		if (s->subs[i].len == len && memcmp(s->subs[i].filter, f, len) == 0)
			return &s->subs[i];
	}
	return NULL;
}

void broker_subscribe(struct broker *b, struct broker_session *s, const struct mqtt_subscribe *sub,
		      uint8_t *codes)
{
	size_t i;

	for (i = 0; i < sub->count; i++) {
		const struct mqtt_str *f = &sub->filters[i];
		uint8_t qos = sub->qos[i] > 1 ? 1 : sub->qos[i]; /* QoS 2 is granted as 1 */
		struct sub *existing;

		codes[i] = MQTT_SUBACK_FAILURE;
		if (!sub->valid[i] || !acl_may_subscribe(s->role, s->id, f->p, f->len))
			continue;
		existing = find_sub(s, f->p, f->len);
		if (existing) {
			existing->qos = qos;
		} else {
			struct sub *grown;
			uint8_t *copy;

			if (s->nsubs >= b->lim.max_subscriptions)
				continue;
			grown = realloc(s->subs, (s->nsubs + 1) * sizeof(*grown));
			if (!grown)
				continue;
			s->subs = grown;
			copy = malloc(f->len);
			if (!copy)
				continue;
			memcpy(copy, f->p, f->len);
			s->subs[s->nsubs++] = (struct sub){ .filter = copy, .len = f->len, .qos = qos };
		}
		codes[i] = qos;
	}
}

void broker_after_subscribe(struct broker *b, struct broker_session *s, const struct mqtt_subscribe *sub,
			    const uint8_t *codes)
{
	struct mlist *set;
	struct qmsg *m;
	size_t i;

	/* A device subscribes only inside its own subtree, so only its own retained set can match. */
	set = strmap_get(b->retained, s->id);
	if (!set)
		return;
	for (i = 0; i < sub->count; i++) {
		struct sub f = { .filter = (uint8_t *)sub->filters[i].p, .len = sub->filters[i].len,
				 .qos = codes[i] };

		if (codes[i] == MQTT_SUBACK_FAILURE)
			continue;
		for (m = set->head; m; m = m->next)
			offer(b, s, m, 1, 1, &f);
	}
}

void broker_unsubscribe(struct broker *b, struct broker_session *s, const struct mqtt_subscribe *sub)
{
	size_t i;

	(void)b;
	for (i = 0; i < sub->count; i++) {
		struct sub *f = find_sub(s, sub->filters[i].p, sub->filters[i].len);

		if (!f)
			continue;
		free(f->filter);
		*f = s->subs[--s->nsubs];
	}
}

void broker_puback(struct broker *b, struct broker_session *s, uint16_t packet_id)
{
	struct qmsg **pp, *prev = NULL;

	for (pp = &s->inflight.head; *pp; prev = *pp, pp = &(*pp)->next) {
		if ((*pp)->packet_id == packet_id) {
			struct qmsg *m = *pp;

			*pp = m->next;
			if (s->inflight.tail == m)
				s->inflight.tail = prev;
			s->inflight.count--;
			free(m);
			break;
		}
	}
	pump(b, s);
}

enum herr broker_publish(struct broker *b, const char *topic, const uint8_t *payload, size_t len,
			 uint8_t qos, int retain)
{
	size_t tlen = strlen(topic);
	struct qmsg *m;
	enum herr rc = HERR_OK;

	if (!mqtt_topic_valid_name((const uint8_t *)topic, tlen) || qos > 1)
		return HERR_INVALID;
	m = qmsg_new((const uint8_t *)topic, tlen, payload, len, qos, 0);
	if (!m)
		return HERR_NOMEM;
	if (retain)
		rc = retain_message(b, m);
	if (rc == HERR_OK)
		route(b, m);
	free(m);
	return rc;
}

int broker_kick(struct broker *b, const char *id, const char *reason)
{
	struct broker_session *s = strmap_get(b->sessions, id);

	if (!s || !s->conn)
		return 0;
	b->sink.close(s->conn, reason);
	/* A revoked device's will is not published: nothing it asked for happens any more. */
	free(s->will);
	s->will = NULL;
	s->conn = NULL;
	if (s->clean)
		session_drop(b, s);
	return 1;
}

size_t broker_forget(struct broker *b, const char *id)
{
	struct broker_session *s = strmap_get(b->sessions, id);
	struct mlist *set = strmap_get(b->retained, id);
	size_t n = 0;

	if (s) {
		if (s->conn)
			b->sink.close(s->conn, "device decommissioned");
		s->conn = NULL;
		session_drop(b, s);
	}
	if (set) {
		n = set->count;
		strmap_del(b->retained, id);
		mlist_clear(set);
		free(set);
	}
	return n;
}
