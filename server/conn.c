#include "server/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "server/acl.h"
#include "server/mqtt_codec.h"
#include "server/store.h"

#define IN_INITIAL 2048
/* Bytes one connection may read per turn, so a flooding client cannot starve the others. */
#define READ_BUDGET (64 * 1024)
/* QoS 2 PUBLISH ids awaiting PUBREL; a client that leaves more hanging is closed. */
#define MAX_QOS2 16
/* Acknowledgements held for the group commit, per connection and turn. */
#define MAX_HELD_ACKS 4096
#define HELD_ACKS_INITIAL 16
/* While the store cannot write, a paused message is tried again after this long, doubling up to
 * the maximum: soon at first (space is often freed within seconds), then rarely. */
#define OUTAGE_RETRY_FIRST_MS 500
#define OUTAGE_RETRY_MAX_MS 5000

enum conn_state { CONN_HANDSHAKE, CONN_WAIT_CONNECT, CONN_CONNECTED, CONN_DEAD };

struct conn {
	struct conn_env *env;
	struct conn *prev, *next;
	struct conn *dead_next;
	struct conn *ready_next;
	int on_ready;
	int fd;
	struct tls_conn *tls;
	enum conn_state state;
	char addr[64];
	char id[65];
	struct addrlimit_entry *address; /* its count in env->addrs, or NULL */
	int address_hs;         /* ... which still counts its handshake */
	struct broker_session *session;
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	uint64_t deadline;      /* ms; 0 = none */
	uint64_t keepalive_ms;  /* 1.5 x the client's keepalive; 0 = none */
	uint32_t events;        /* current epoll interest */
	uint16_t qos2[MAX_QOS2];
	size_t nqos2;
	struct conn *ack_next;  /* on env->ack_waiters */
	int waiting;
	uint8_t *held;          /* encoded PUBACK/PUBREC packets, 4 bytes each */
	size_t nheld, held_cap;
	/* Store outage (env->outage): not read while paused; its first input packet is the PUBLISH
	 * that waits. When it is the trial, that packet's bytes stay until the commit decides. */
	int paused;
	struct conn *paused_next;
	size_t trial_len;
	uint16_t trial_qos2;    /* the QoS 2 packet id the trial recorded, 0 if none */
};

/* CLOCK_MONOTONIC in ms: the clock of the endpoint's now_ms arguments too. */
static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The epoll interest c needs: input unless paused, output while some waits. */
static uint32_t interest(const struct conn *c, int out)
{
	return (c->paused ? 0 : EPOLLIN) | (out ? EPOLLOUT : 0);
}

static void set_events(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events || c->state == CONN_DEAD)
		return;
	if (epoll_ctl(c->env->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

static enum herr conn_alloc(struct conn_env *env, int fd, struct tls_conn *tls, const char *addr,
			    enum conn_state state, struct conn **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct conn *c;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return HERR_NOMEM;
	c->env = env;
	c->fd = fd;
	c->tls = tls;
	c->state = state;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	ev.data.ptr = c;
	if (epoll_ctl(env->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		free(c);
		return HERR_IO;
	}
	c->events = EPOLLIN;
	env->count++;
	*out = c;
	return HERR_OK;
}

enum herr conn_new(struct conn_env *env, int fd, const char *addr, uint64_t now_ms, struct conn **out)
{
	struct tls_conn *tls = NULL;
	enum herr rc;

	*out = NULL;
	rc = tls_conn_new(env->tls, fd, &tls);
	if (rc != HERR_OK)
		return rc;
	rc = conn_alloc(env, fd, tls, addr, CONN_HANDSHAKE, out);
	if (rc != HERR_OK) {
		tls_conn_free(tls);
		return rc;
	}
	(*out)->deadline = now_ms + env->lim->handshake_timeout_ms;
	return HERR_OK;
}

static void read_input(struct conn *c, uint64_t now_ms);

/* Have the loop call conn_on_event(c, EPOLLIN) on its next turn without waiting for the socket:
 * mbedTLS or the input buffer may hold what epoll will never report. */
static void make_ready(struct conn *c)
{
	if (c->on_ready)
		return;
	c->on_ready = 1;
	c->ready_next = c->env->ready;
	c->env->ready = c;
}

/* The handshake is done and the device admitted: wait for its CONNECT. */
static void admitted(struct conn *c, uint64_t now_ms)
{
	memcpy(c->id, tls_conn_peer(c->tls)->id, sizeof(c->id));
	if (c->address_hs) {
		addrlimit_handshake_done(c->env->addrs, c->address);
		c->address_hs = 0;
	}
	c->env->stats->handshakes++;
	if (tls_conn_resumed(c->tls))
		c->env->stats->resumed++;
	c->state = CONN_WAIT_CONNECT;
	c->deadline = now_ms + c->env->lim->connect_timeout_ms;
	set_events(c, EPOLLIN);
	/* Application data may have arrived with the last handshake flight. */
	read_input(c, now_ms);
}

enum herr conn_adopt(struct conn_env *env, int fd, struct tls_conn *tls, const char *addr,
		     uint64_t now_ms, struct conn **out)
{
	enum herr rc = conn_alloc(env, fd, tls, addr, CONN_HANDSHAKE, out);

	if (rc == HERR_OK)
		admitted(*out, now_ms);
	return rc;
}

void conn_set_address(struct conn *c, struct addrlimit_entry *e, int in_handshake)
{
	c->address = e;
	c->address_hs = in_handshake && e;
}

void conn_free(struct conn *c)
{
	struct conn **pp;

	if (!c)
		return;
	for (pp = &c->env->ack_waiters; c->waiting && *pp; pp = &(*pp)->ack_next) {
		if (*pp == c) {
			*pp = c->ack_next;
			c->env->ack_waiting--;
			break;
		}
	}
	free(c->held);
	for (pp = &c->env->ready; c->on_ready && *pp; pp = &(*pp)->ready_next) {
		if (*pp == c) {
			*pp = c->ready_next;
			break;
		}
	}
	for (pp = &c->env->outage.paused; c->paused && *pp; pp = &(*pp)->paused_next) {
		if (*pp == c) {
			*pp = c->paused_next;
			break;
		}
	}
	if (c->env->outage.trial == c)
		c->env->outage.trial = NULL;
	epoll_ctl(c->env->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	tls_conn_free(c->tls);
	addrlimit_close(c->env->addrs, c->address, c->address_hs);
	free(c->in);
	free(c->out);
	c->env->count--;
	free(c);
}

int conn_is_dead(const struct conn *c)
{
	return c->state == CONN_DEAD;
}

struct conn *conn_next(const struct conn *c)
{
	return c->next;
}

struct conn *conn_dead_next(const struct conn *c)
{
	return c->dead_next;
}

void conn_link(struct conn **head, struct conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

void conn_unlink(struct conn **head, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* Send what is buffered; EPOLLOUT only while something is left. */
static void flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		size_t n = 0;
		enum tls_io io = tls_conn_write(c->tls, c->out + c->out_off, c->out_len - c->out_off, &n);

		if (io == TLS_OK) {
			c->out_off += n;
			continue;
		}
		if (io == TLS_WANT_WRITE || io == TLS_WANT_READ) {
			set_events(c, interest(c, 1));
			return;
		}
		conn_close(c, io == TLS_CLOSED ? "peer closed" : tls_conn_error(c->tls));
		return;
	}
	c->out_off = c->out_len = 0;
	if (c->state != CONN_DEAD)
		set_events(c, interest(c, 0));
}

/* Append one packet to the output buffer, bounded by max_output: -1 past the bound, -2 out of
 * memory. */
static int queue_out(struct conn *c, const uint8_t *pkt, size_t len)
{
	if (c->state == CONN_DEAD)
		return -1;
	if (c->out_off > 0 && c->out_len + len > c->out_cap) {
		/* Compacting is safe even mid-write: mbedTLS has its own copy of what it encrypted. */
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		uint8_t *grown;

		while (cap < c->out_len + len)
			cap *= 2;
		if (c->out_len + len > c->env->lim->max_output)
			return -1;
		if (cap > c->env->lim->max_output)
			cap = c->env->lim->max_output;
		grown = realloc(c->out, cap);
		if (!grown)
			return -2;
		c->out = grown;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, pkt, len);
	c->out_len += len;
	return 0;
}

static int sink_send(void *conn, const uint8_t *pkt, size_t len)
{
	struct conn *c = conn;

	if (c->state == CONN_DEAD)
		return -1;
	switch (queue_out(c, pkt, len)) {
	case 0:
		break;
	case -2:
		conn_close(c, "out of memory for output");
		return -1;
	default:
		c->env->stats->closed_slow++;
		conn_close(c, "output buffer full (slow consumer)");
		return -1;
	}
	set_events(c, interest(c, 1));
	return 0;
}

static void sink_close(void *conn, const char *reason)
{
	struct conn *c = conn;

	c->session = NULL; /* detached by the broker */
	conn_close(c, reason);
}

const struct broker_sink conn_broker_sink = { .send = sink_send, .close = sink_close };

void conn_close(struct conn *c, const char *reason)
{
	struct broker_session *s = c->session;
	enum conn_state was = c->state;

	if (was == CONN_DEAD)
		return;
	c->session = NULL;
	if (c->id[0])
		log_info("%s (%s): closed: %s", c->id, c->addr, reason);
	else
		log_info("%s: closed: %s", c->addr, reason);
	/* Dead before the broker runs, so nothing it does (a will) is sent to this connection. */
	c->state = CONN_DEAD;
	if (s)
		broker_disconnect(c->env->broker, s, 0);
	if (c->out_len > c->out_off) {
		size_t n = 0;

		/* One best-effort try, so a refusal (CONNACK with an error code) reaches the client. */
		(void)tls_conn_write(c->tls, c->out + c->out_off, c->out_len - c->out_off, &n);
	}
	if (was != CONN_HANDSHAKE)
		tls_conn_shutdown(c->tls);
	c->dead_next = c->env->dead;
	c->env->dead = c;
}

static void send_packet(struct conn *c, const uint8_t *pkt, size_t len)
{
	if (len == 0 || sink_send(c, pkt, len) != 0)
		return;
}

static void send_ack(struct conn *c, enum mqtt_type type, uint16_t id)
{
	uint8_t pkt[4];

	send_packet(c, pkt, mqtt_write_ack(pkt, sizeof(pkt), type, id));
}

static void protocol_error(struct conn *c, const char *why)
{
	c->env->stats->closed_protocol++;
	conn_close(c, why);
}

static void on_connect(struct conn *c, const struct mqtt_connect *m, uint64_t now_ms)
{
	struct broker_session *s = NULL;
	uint8_t pkt[4], rc;
	int present = 0;

	if (m->protocol_level != 4) {
		send_packet(c, pkt, mqtt_write_connack(pkt, sizeof(pkt), 0, MQTT_CONNACK_BAD_PROTOCOL));
		c->env->stats->refused_connect++;
		conn_close(c, "unsupported MQTT protocol level (only 3.1.1 = 4)");
		return;
	}
	rc = broker_connect(c->env->broker, c->id, tls_conn_peer(c->tls)->role, c, m, &s, &present);
	send_packet(c, pkt, mqtt_write_connack(pkt, sizeof(pkt), present, rc));
	if (rc != MQTT_CONNACK_ACCEPTED) {
		c->env->stats->refused_connect++;
		conn_close(c, rc == MQTT_CONNACK_BAD_CLIENT_ID ? "client id differs from the certificate's CN" :
			      rc == MQTT_CONNACK_NOT_AUTHORIZED ? "will topic not allowed (own status or ack topics only)" :
			      "CONNECT refused");
		return;
	}
	c->session = s;
	c->state = CONN_CONNECTED;
	c->env->stats->connects++;
	/* Devices are many and quiet in the log; a reader of the whole fleet's stream is worth a line. */
	if (tls_conn_peer(c->tls)->role == ACL_INTEGRATION)
		log_info("%s (%s): integration client connected", c->id, c->addr);
	c->keepalive_ms = (uint64_t)m->keepalive * 1500;
	c->deadline = c->keepalive_ms ? now_ms + c->keepalive_ms : 0;
	broker_resume(c->env->broker, s);
}

/* An acknowledgement that may only go out once this turn's transaction is committed. */
static void hold_ack(struct conn *c, enum mqtt_type type, uint16_t id)
{
	if (!c->env->batch_open) {
		send_ack(c, type, id);
		return;
	}
	if (c->nheld == MAX_HELD_ACKS) {
		protocol_error(c, "too many unacknowledged messages in one burst");
		return;
	}
	if (c->nheld == c->held_cap) {
		/* Grown by doubling from a few: a whole MAX_HELD_ACKS buffer per turn would be big
		 * enough for glibc to mmap and munmap it every time (cmd_serve.c's threshold). */
		size_t cap = c->held_cap ? c->held_cap * 2 : HELD_ACKS_INITIAL;
		uint8_t *grown = realloc(c->held, (cap < MAX_HELD_ACKS ? cap : MAX_HELD_ACKS) * 4);

		if (!grown) {
			conn_close(c, "out of memory");
			return;
		}
		c->held = grown;
		c->held_cap = cap < MAX_HELD_ACKS ? cap : MAX_HELD_ACKS;
	}
	if (mqtt_write_ack(c->held + c->nheld * 4, 4, type, id) != 4)
		return;
	c->nheld++;
	if (!c->waiting) {
		c->waiting = 1;
		c->ack_next = c->env->ack_waiters;
		c->env->ack_waiters = c;
		c->env->ack_waiting++;
	}
}

static int qos2_seen(struct conn *c, uint16_t id, int remove)
{
	size_t i;

	for (i = 0; i < c->nqos2; i++) {
		if (c->qos2[i] == id) {
			if (remove)
				c->qos2[i] = c->qos2[--c->nqos2];
			return 1;
		}
	}
	return 0;
}

/* The store failed to take a message: an outage starts (one log line for all of it), or the try
 * that just failed puts the next one further off. */
static void outage_begin(struct conn_env *env)
{
	struct store_outage *o = &env->outage;
	uint64_t now = mono_ms();

	if (!o->on) {
		o->on = 1;
		o->since_ms = now;
		o->retry_ms = OUTAGE_RETRY_FIRST_MS;
		o->unacked = o->dropped_qos0 = 0;
		log_err("the store cannot take messages: none is acknowledged, and a device that publishes is no "
			"longer read until one is stored again (tried after %.1f s, then up to every %.1f s)",
			OUTAGE_RETRY_FIRST_MS / 1000.0, OUTAGE_RETRY_MAX_MS / 1000.0);
	} else if (now < o->next_try_ms) {
		return; /* the same try failed twice (its message, then its commit) */
	} else {
		o->retry_ms = o->retry_ms * 2 < OUTAGE_RETRY_MAX_MS ? o->retry_ms * 2 : OUTAGE_RETRY_MAX_MS;
	}
	o->next_try_ms = now + o->retry_ms;
}

/* A message was stored: every paused connection is read again, from the message it holds. */
static void outage_end(struct conn_env *env)
{
	struct store_outage *o = &env->outage;
	uint64_t now = mono_ms();
	struct conn *c, *next;
	size_t n = 0;

	for (c = o->paused; c; c = next) {
		next = c->paused_next;
		c->paused = 0;
		c->paused_next = NULL;
		n++;
		if (c->state == CONN_DEAD)
			continue;
		/* Its keepalive starts again: while paused it was the server that did not read. */
		c->deadline = c->keepalive_ms ? now + c->keepalive_ms : 0;
		set_events(c, interest(c, c->out_len > c->out_off));
		make_ready(c);
	}
	o->paused = NULL;
	o->on = 0;
	log_info("messages are stored again after %.1f s; %zu paused connection(s) resumed; %llu message(s) "
		 "were not acknowledged (their devices send them again), %llu QoS 0 message(s) dropped",
		 (double)(now - o->since_ms) / 1000.0, n, (unsigned long long)o->unacked,
		 (unsigned long long)o->dropped_qos0);
}

/* c's next packet, the PUBLISH p, cannot be stored now: c is not read until the outage ends
 * (its sender waits with it unacknowledged). A QoS 0 message is dropped instead: 1 if p stays. */
static int hold_back(struct conn *c, const struct mqtt_publish *p)
{
	struct store_outage *o = &c->env->outage;

	if (p->qos == 0) {
		o->dropped_qos0++;
		return 0;
	}
	if (!c->paused) {
		c->paused = 1;
		c->paused_next = o->paused;
		o->paused = c;
		set_events(c, interest(c, c->out_len > c->out_off));
	}
	return 1;
}

/* Drop the first len bytes of the input (a message taken at last). */
static void consume_input(struct conn *c, size_t len)
{
	memmove(c->in, c->in + len, c->in_len - len);
	c->in_len -= len;
}

void conn_batch_done(struct conn_env *env, int ok)
{
	struct conn *c = env->ack_waiters, *next, *trial = env->outage.trial;

	env->ack_waiters = NULL;
	env->ack_waiting = 0;
	env->outage.trial = NULL;
	if (!ok)
		outage_begin(env);
	for (; c; c = next) {
		next = c->ack_next;
		c->waiting = 0;
		c->ack_next = NULL;
		if (c->state == CONN_DEAD) {
			/* nothing to send */
		} else if (!ok && c == trial) {
			/* Still not stored: the message stays first in the input for the next try. */
			if (c->trial_qos2)
				(void)qos2_seen(c, c->trial_qos2, 1);
		} else if (!ok) {
			env->outage.unacked += c->nheld;
			conn_close(c, "messages could not be stored; not acknowledged");
		} else {
			int q;

			if (c == trial)
				consume_input(c, c->trial_len);
			q = queue_out(c, c->held, c->nheld * 4);
			if (q == 0)
				flush(c);
			else
				conn_close(c, q == -2 ? "out of memory for output" : "output buffer full (slow consumer)");
		}
		c->nheld = 0;
		/* The buffer is kept only while a burst is on: idle connections hold none. */
		free(c->held);
		c->held = NULL;
		c->held_cap = 0;
	}
	if (trial) {
		trial->trial_len = 0;
		trial->trial_qos2 = 0;
	}
	if (ok && env->outage.on)
		outage_end(env);
}

/* 1 if p was not taken: it stays first in the input and c is paused (store outage). */
static int on_publish(struct conn *c, const struct mqtt_publish *p)
{
	struct conn_env *env = c->env;
	enum herr rc;

	/* A QoS 2 message is delivered once: a resent PUBLISH before PUBREL only gets PUBREC again. */
	if (p->qos == 2 && qos2_seen(c, p->packet_id, 0)) {
		send_ack(c, MQTT_PUBREC, p->packet_id);
		return 0;
	}
	if (env->outage.on && env->outage.trial != c)
		return hold_back(c, p);
	/* Whatever the message writes joins this turn's transaction (group commit). */
	if (!env->batch_open && env->store) {
		if (store_begin(env->store) != HERR_OK) {
			outage_begin(env);
			return hold_back(c, p);
		}
		env->batch_open = 1;
		env->batch_opened_us = mono_us();
		env->batch_msgs = 0;
	}
	rc = broker_publish_in(env->broker, c->session, p);
	if (rc == HERR_INVALID) {
		env->stats->closed_acl++;
		conn_close(c, "PUBLISH to a topic outside the device's own");
		return 0;
	}
	if (rc == HERR_STORE) {
		/* The turn's transaction is spoiled (the store commits none with a failed write). A
		 * connection with nothing else in it keeps its message for later; one with messages
		 * in it must lose them and is closed without their acknowledgements. */
		outage_begin(env);
		if (c->nheld == 0)
			return hold_back(c, p);
		env->outage.unacked += c->nheld + 1;
		conn_close(c, "messages could not be stored; not acknowledged");
		return 0;
	}
	if (rc != HERR_OK) {
		/* Not stored, so not acknowledged: the device will send it again. */
		conn_close(c, rc == HERR_NOMEM ? "out of memory; message not acknowledged" :
			      "message could not be stored; not acknowledged");
		return 0;
	}
	env->batch_msgs++;
	if (p->qos == 1) {
		hold_ack(c, MQTT_PUBACK, p->packet_id);
	} else if (p->qos == 2) {
		if (c->nqos2 == MAX_QOS2) {
			protocol_error(c, "too many QoS 2 messages awaiting PUBREL");
			return 0;
		}
		c->qos2[c->nqos2++] = p->packet_id;
		if (env->outage.trial == c)
			c->trial_qos2 = p->packet_id;
		hold_ack(c, MQTT_PUBREC, p->packet_id);
	}
	return 0;
}

/* 1 if pk was not taken (a PUBLISH held back by a store outage). */
static int on_packet(struct conn *c, const struct mqtt_packet *pk, uint64_t now_ms)
{
	uint8_t codes[MQTT_MAX_FILTERS], pkt[MQTT_MAX_FILTERS + 8];

	if (c->state == CONN_WAIT_CONNECT) {
		if (pk->type != MQTT_CONNECT) {
			protocol_error(c, "first packet is not CONNECT");
			return 0;
		}
		on_connect(c, &pk->u.connect, now_ms);
		return 0;
	}
	if (c->keepalive_ms)
		c->deadline = now_ms + c->keepalive_ms;
	switch (pk->type) {
	case MQTT_PUBLISH:
		return on_publish(c, &pk->u.publish);
	case MQTT_PUBACK:
		broker_puback(c->env->broker, c->session, pk->u.packet_id);
		break;
	case MQTT_PUBREL:
		qos2_seen(c, pk->u.packet_id, 1);
		send_ack(c, MQTT_PUBCOMP, pk->u.packet_id);
		break;
	case MQTT_SUBSCRIBE:
		broker_subscribe(c->env->broker, c->session, &pk->u.subscribe, codes);
		send_packet(c, pkt, mqtt_write_suback(pkt, sizeof(pkt), pk->u.subscribe.packet_id, codes,
						      pk->u.subscribe.count));
		if (c->state == CONN_CONNECTED)
			broker_after_subscribe(c->env->broker, c->session, &pk->u.subscribe, codes);
		break;
	case MQTT_UNSUBSCRIBE:
		broker_unsubscribe(c->env->broker, c->session, &pk->u.subscribe);
		send_ack(c, MQTT_UNSUBACK, pk->u.subscribe.packet_id);
		break;
	case MQTT_PINGREQ:
		send_packet(c, pkt, mqtt_write_pingresp(pkt, sizeof(pkt)));
		break;
	case MQTT_DISCONNECT: {
		struct broker_session *s = c->session;

		c->session = NULL;
		broker_disconnect(c->env->broker, s, 1);
		conn_close(c, "client disconnected");
		break;
	}
	case MQTT_CONNECT:
		protocol_error(c, "second CONNECT");
		break;
	default:
		/* CONNACK, SUBACK, UNSUBACK, PINGRESP, PUBREC, PUBCOMP: we never asked for these. */
		protocol_error(c, "packet a client may not send");
		break;
	}
	return 0;
}

/* Take every complete packet out of the input buffer. */
static void process_input(struct conn *c, uint64_t now_ms)
{
	size_t off = 0;

	while (c->state != CONN_DEAD && !c->paused && off < c->in_len) {
		struct mqtt_packet pk;
		const char *why = NULL;
		size_t total = 0;
		enum herr rc = mqtt_frame(c->in + off, c->in_len - off, c->env->lim->max_packet, &total);

		if (rc == HERR_TOOBIG) {
			c->env->stats->closed_too_big++;
			conn_close(c, "packet larger than the maximum packet size");
			return;
		}
		if (rc != HERR_OK) {
			protocol_error(c, "malformed remaining length");
			return;
		}
		if (total == 0 || total > c->in_len - off)
			break;
		if (mqtt_parse(c->in + off, total, &pk, &why) != HERR_OK) {
			protocol_error(c, why ? why : "malformed packet");
			return;
		}
		if (on_packet(c, &pk, now_ms))
			break; /* paused: the packet stays first in the buffer */
		off += total;
	}
	if (off > 0 && c->state != CONN_DEAD) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	/* An idle connection keeps no input buffer. */
	if (c->in_len == 0 && c->in_cap > IN_INITIAL) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

static int grow_input(struct conn *c)
{
	size_t limit = c->env->lim->max_packet + MQTT_MAX_HEADER;
	size_t cap = c->in_cap ? c->in_cap * 2 : IN_INITIAL;
	uint8_t *grown;

	if (c->in_cap >= limit)
		return -1;
	if (cap > limit)
		cap = limit;
	grown = realloc(c->in, cap);
	if (!grown)
		return -1;
	c->in = grown;
	c->in_cap = cap;
	return 0;
}

struct conn *conn_take_ready(struct conn_env *env)
{
	struct conn *list = env->ready, *c;

	env->ready = NULL;
	for (c = list; c; c = c->ready_next)
		c->on_ready = 0;
	return list;
}

struct conn *conn_ready_next(const struct conn *c)
{
	return c->ready_next;
}

static void read_input(struct conn *c, uint64_t now_ms)
{
	size_t budget = READ_BUDGET;

	while (c->state != CONN_DEAD && !c->paused) {
		if (budget == 0) {
			/* Come back on the next turn: mbedTLS may hold the rest already. */
			make_ready(c);
			return;
		}
		size_t n = 0;
		enum tls_io io;

		if (c->in_len == c->in_cap && grow_input(c) != 0) {
			conn_close(c, "out of memory for input");
			return;
		}
		io = tls_conn_read(c->tls, c->in + c->in_len, c->in_cap - c->in_len, &n);
		if (io == TLS_OK) {
			c->in_len += n;
			budget = n < budget ? budget - n : 0;
			process_input(c, now_ms);
			continue;
		}
		if (io == TLS_WANT_READ)
			return;
		if (io == TLS_WANT_WRITE) {
			set_events(c, interest(c, 1));
			return;
		}
		conn_close(c, io == TLS_CLOSED ? "connection closed by the peer" : tls_conn_error(c->tls));
		return;
	}
}

static void handshake(struct conn *c, uint64_t now_ms)
{
	enum tls_io io = tls_conn_handshake(c->tls);

	if (io == TLS_WANT_READ) {
		set_events(c, EPOLLIN);
		return;
	}
	if (io == TLS_WANT_WRITE) {
		set_events(c, EPOLLIN | EPOLLOUT);
		return;
	}
	if (io != TLS_OK) {
		c->env->stats->refused_handshake++;
		conn_close(c, tls_conn_error(c->tls));
		return;
	}
	admitted(c, now_ms);
}

/* c is the outage's trial: its held-back message is tried again, alone. Its bytes stay in the
 * input until conn_batch_done knows whether it was stored. */
static void try_paused(struct conn *c)
{
	struct conn_env *env = c->env;
	struct mqtt_packet pk;
	size_t total = 0;

	if (mqtt_frame(c->in, c->in_len, env->lim->max_packet, &total) != HERR_OK || total == 0 ||
	    total > c->in_len || mqtt_parse(c->in, total, &pk, NULL) != HERR_OK || pk.type != MQTT_PUBLISH) {
		env->outage.trial = NULL; /* cannot be: it was parsed when c was paused */
		protocol_error(c, "paused without a message");
		return;
	}
	if (on_publish(c, &pk.u.publish) != 0 || c->state == CONN_DEAD) {
		env->outage.trial = NULL; /* held back again, or closed */
		return;
	}
	if (!env->batch_open) {
		/* Taken without the store (a repeated QoS 2 message): the next try may come at once. */
		consume_input(c, total);
		env->outage.trial = NULL;
		env->outage.next_try_ms = 0;
		return;
	}
	c->trial_len = total;
}

void conn_on_event(struct conn *c, uint32_t events, uint64_t now_ms)
{
	if (c->state == CONN_DEAD)
		return;
	if (c->paused) {
		if (events & (EPOLLERR | EPOLLHUP)) {
			conn_close(c, "connection lost while its message waited for the store");
			return;
		}
		if (c->env->outage.trial == c && c->trial_len == 0)
			try_paused(c);
		if (c->state != CONN_DEAD && c->out_len > c->out_off)
			flush(c);
		return;
	}
	if (c->state == CONN_HANDSHAKE) {
		handshake(c, now_ms);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		read_input(c, now_ms);
	if (c->state != CONN_DEAD && c->out_len > c->out_off)
		flush(c);
}

void conn_on_tick(struct conn *c, uint64_t now_ms)
{
	struct store_outage *o = &c->env->outage;

	if (c->state == CONN_DEAD)
		return;
	if (c->paused) {
		/* No keepalive while paused: it is the server that does not read. */
		if (!o->trial && now_ms >= o->next_try_ms) {
			o->trial = c;
			make_ready(c);
		}
		return;
	}
	if (c->deadline == 0 || now_ms < c->deadline)
		return;
	c->env->stats->closed_timeout++;
	conn_close(c, c->state == CONN_HANDSHAKE ? "TLS handshake timed out" :
		      c->state == CONN_WAIT_CONNECT ? "no CONNECT in time" : "keepalive expired");
}
