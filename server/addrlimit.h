/* addrlimit: connections per client address at the MQTT endpoint, so that one address (a flood, a
 * client stuck in a reconnect loop, a scan) cannot take every connection slot, nor fill the
 * handshake threads' queues with handshakes that never finish. An address is the client's IPv4
 * address, or its IPv6 /64: one home network, as NAT makes one IPv4 address of a home. Each
 * connection is counted from accept to close, and among those the ones whose TLS handshake has not
 * ended. An address has an entry only while it has a connection, so the table never holds more
 * entries than there are connections. Used by the event loop's thread only. */
#ifndef HEARTH_ADDRLIMIT_H
#define HEARTH_ADDRLIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct addrlimit;
struct addrlimit_entry;

struct addrlimit *addrlimit_new(void);
/* Frees the table and every entry still in it (handles held elsewhere become invalid). */
void addrlimit_free(struct addrlimit *t);

enum addrlimit_verdict {
	ADDRLIMIT_OK,
	ADDRLIMIT_CONNECTIONS,        /* the address has max_connections open already */
	ADDRLIMIT_HANDSHAKES,         /* ... or max_handshakes unfinished */
	ADDRLIMIT_NOMEM,
};

/* A connection from sa (len bytes) was accepted and starts its handshake: counted, with *out its
 * address's entry, unless that address is at one of the limits (0: no limit). Refused, nothing is
 * counted and *out is the address's entry (for addrlimit_refused), or NULL out of memory. */
enum addrlimit_verdict addrlimit_open(struct addrlimit *t, const struct sockaddr *sa, socklen_t len,
				      size_t max_connections, size_t max_handshakes,
				      struct addrlimit_entry **out);
/* The connection's TLS handshake ended, whether it was admitted or not. */
void addrlimit_handshake_done(struct addrlimit *t, struct addrlimit_entry *e);
/* The connection closed; in_handshake if its handshake had not ended. e may be invalid after. */
void addrlimit_close(struct addrlimit *t, struct addrlimit_entry *e, int in_handshake);

/* The address as the table counts it: "192.0.2.7", "2001:db8:1:2::/64". */
const char *addrlimit_name(const struct addrlimit_entry *e);
size_t addrlimit_connections(const struct addrlimit_entry *e);
size_t addrlimit_handshakes(const struct addrlimit_entry *e);
/* Addresses with at least one connection. */
size_t addrlimit_addresses(const struct addrlimit *t);

/* Refusals are logged once per address and burst: 1 if a refusal now (ms, monotonic) should be
 * logged, with *since set to how many were refused unlogged before it. */
int addrlimit_refused(struct addrlimit_entry *e, uint64_t now_ms, uint64_t *since);

#endif
