/* conn: one device connection of the MQTT endpoint: its socket, its TLS state, its buffers, and
 * the MQTT 3.1.1 protocol state machine (handshake -> CONNECT -> connected -> closed). It turns
 * bytes into packets with the codec and packets into broker calls. Every limit is enforced here:
 * a connection that breaks one is closed, alone, with one log line and a counter. */
#ifndef HEARTH_CONN_H
#define HEARTH_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "server/addrlimit.h"
#include "server/broker.h"
#include "server/tls.h"

struct endpoint_limits {
	size_t max_packet;            /* bytes, whole MQTT packet */
	size_t max_connections;
	size_t max_connections_per_address; /* server/addrlimit.h; 0: no limit */
	size_t max_handshakes_per_address;  /* unfinished TLS handshakes from one address; 0: no limit */
	size_t max_inflight;          /* QoS 1 messages to a device not yet acknowledged */
	size_t max_subscriptions;     /* per session */
	size_t max_queued;            /* QoS 1 messages waiting per session */
	size_t max_output;            /* bytes waiting to be sent to one connection */
	unsigned handshake_timeout_ms;
	unsigned connect_timeout_ms;  /* from the end of the handshake to CONNECT */
	int handshake_threads;        /* 0: handshakes on the event loop; -1: one per spare core */
};

/* Why connections were refused or closed, counted (and exported as metrics later). */
struct endpoint_stats {
	uint64_t accepted, handshakes, resumed, connects;
	uint64_t refused_handshake, refused_connections, refused_connect, refused_address;
	uint64_t closed_too_big, closed_protocol, closed_acl, closed_timeout, closed_slow, closed_revoked;
	uint64_t feed_records;    /* minimized records published for closed buckets */
};

struct conn;

/* What every connection shares; owned by the endpoint. */
struct conn_env {
	struct broker *broker;
	struct tls_server *tls;       /* new connections take a reference of the current one */
	const struct endpoint_limits *lim;
	struct endpoint_stats *stats;
	int epfd;
	struct conn *dead;            /* closed connections, freed by the endpoint after each batch */
	struct conn *ready;           /* connections with input left over after their read budget */
	/* Group commit: writes of one loop turn share a transaction; the acknowledgements they allow
	 * wait on their connections until the endpoint commits (conn_batch_done). */
	struct store *store;
	int batch_open;
	uint64_t batch_opened_us;     /* CLOCK_MONOTONIC, when its first message arrived */
	size_t batch_msgs;            /* messages taken into it */
	struct conn *ack_waiters;
	size_t ack_waiting;           /* connections on ack_waiters */
	size_t count;
	struct addrlimit *addrs;      /* connections per address (the endpoint's); see conn_set_address */
	/* Back-pressure while the store cannot write (a full disk, I/O errors): a connection whose
	 * next packet is a QoS 1/2 PUBLISH is no longer read (QoS 0 ones are dropped), and its
	 * keepalive waits; from time to time one such message is tried again, alone, and kept if it
	 * fails. The first commit that succeeds resumes them all. */
	struct store_outage {
		int on;
		uint64_t since_ms, retry_ms, next_try_ms;
		uint64_t unacked, dropped_qos0;  /* during this outage */
		struct conn *paused;
		struct conn *trial;            /* the paused connection whose message the batch tries */
	} outage;
};

/* A new socket whose TLS handshake this connection will drive itself, on the event loop. */
enum herr conn_new(struct conn_env *env, int fd, const char *addr, uint64_t now_ms, struct conn **out);
/* A socket whose handshake a handshake thread completed (and whose device was admitted). */
enum herr conn_adopt(struct conn_env *env, int fd, struct tls_conn *tls, const char *addr,
		     uint64_t now_ms, struct conn **out);
/* Give c its address's entry in env->addrs (ownership of one count passes to c): c ends the
 * entry's handshake when its own ends, if in_handshake, and closes it when c is freed. */
void conn_set_address(struct conn *c, struct addrlimit_entry *e, int in_handshake);
/* epoll reported events for c. */
void conn_on_event(struct conn *c, uint32_t events, uint64_t now_ms);
/* Take the list of connections that still have input to read (see conn_on_event); the loop
 * calls conn_on_event(c, EPOLLIN, now) for each before it waits again. */
struct conn *conn_take_ready(struct conn_env *env);
struct conn *conn_ready_next(const struct conn *c);
/* The turn's transaction ended: committed (ok) releases the held acknowledgements (and ends a
 * store outage); otherwise their connections are closed without them (the devices will resend),
 * except the outage's trial, which keeps its message for the next try. */
void conn_batch_done(struct conn_env *env, int ok);
/* Periodic: enforce the handshake, CONNECT and keepalive deadlines. */
void conn_on_tick(struct conn *c, uint64_t now_ms);
/* Close: flush what can be, close_notify, and put c on env->dead. */
void conn_close(struct conn *c, const char *reason);
int conn_is_dead(const struct conn *c);
/* Unregister and free a dead connection. */
void conn_free(struct conn *c);

/* The connections list the endpoint walks for ticks. */
struct conn *conn_next(const struct conn *c);
struct conn *conn_dead_next(const struct conn *c);
void conn_link(struct conn **head, struct conn *c);
void conn_unlink(struct conn **head, struct conn *c);

/* The broker's sink: send an encoded packet, close a detached connection. */
extern const struct broker_sink conn_broker_sink;

#endif
