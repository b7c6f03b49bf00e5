/* handshake: TLS handshakes on worker threads. A full mTLS handshake costs the server an ECDHE
 * key pair, an ECDH, an ECDSA signature and a certificate-chain check: milliseconds of CPU that,
 * on the event loop, would stall every established connection during a reconnect storm. The loop
 * accepts a socket and submits it; a worker drives the handshake with its own epoll, its own TLS
 * server (so no key context is shared between threads) and its own store handle for the identity
 * check; finished connections come back through a queue the loop polls via an eventfd. */
#ifndef HEARTH_HANDSHAKE_H
#define HEARTH_HANDSHAKE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "server/tls.h"

struct hs_pool;

struct hs_config {
	unsigned threads;             /* >= 1 */
	char chain[PATH_MAX];         /* endpoint certificate chain, key, client CA, database */
	char key[PATH_MAX];
	char ca[PATH_MAX];
	char db[PATH_MAX];
	tls_identity_fn identity;     /* called with the worker's own struct store * */
	unsigned timeout_ms;
	struct tls_server *tickets_from; /* share its session-ticket keys */
};

/* A finished handshake: tls is set if the peer was admitted, else error says why. */
struct hs_result {
	int fd;
	void *tag;                    /* as submitted */
	struct tls_conn *tls;
	char addr[80];
	char error[256];
	int timed_out;
};

enum herr hs_pool_new(const struct hs_config *cfg, struct hs_pool **out);
/* Stops the workers and closes every socket still in a handshake. */
void hs_pool_free(struct hs_pool *p);

/* The descriptor to poll for readability: results are waiting. */
int hs_pool_fd(const struct hs_pool *p);
/* Hand over an accepted socket (the pool owns it from now on, and closes it on failure); tag comes
 * back with its result. */
enum herr hs_pool_submit(struct hs_pool *p, int fd, const char *addr, void *tag);
/* Take up to max finished handshakes. */
size_t hs_pool_collect(struct hs_pool *p, struct hs_result *out, size_t max);
/* Handshakes submitted and not yet collected. */
size_t hs_pool_pending(const struct hs_pool *p);
/* How many times a handshake thread has given memory back (after a burst, or a lull). */
uint64_t hs_pool_memory_returns(const struct hs_pool *p);
/* A new handshake timeout, for handshakes submitted from now on. */
void hs_pool_set_timeout(struct hs_pool *p, unsigned timeout_ms);
/* The endpoint certificate changed: workers rebuild their TLS servers before their next accept. */
void hs_pool_reload(struct hs_pool *p, struct tls_server *tickets_from);

#endif
