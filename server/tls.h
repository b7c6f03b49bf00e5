/* tls: mbedTLS behind the endpoint. A tls_server holds what every handshake shares (endpoint
 * certificate and key, the issuing CA as the only trust anchor for clients, session-ticket keys);
 * a tls_conn is one non-blocking connection's TLS state. TLS 1.2 or later, ECDHE-ECDSA with AEAD
 * only, a client certificate always required. Who may connect is decided by an identity callback
 * run at the end of every handshake, full or resumed, before the first application byte. */
#ifndef HEARTH_TLS_H
#define HEARTH_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "ca/cert.h"
#include "common/herr.h"
#include "server/acl.h"

struct tls_server;
struct tls_conn;

/* The identity (certificate CN) and the certificate's serial, for the identity callback, which
 * also says what role the identity has. */
struct tls_peer {
	char id[65];
	char serial[CA_SERIAL_HEX_LEN];
	enum acl_role role;
};

/* Returns 0 to admit the peer (after setting peer->role), or a static reason to refuse it. */
typedef const char *(*tls_identity_fn)(void *ctx, struct tls_peer *peer);

/* Load endpoint_chain (leaf + issuing, PEM), endpoint_key and trust only client_ca (PEM). */
enum herr tls_server_new(const char *endpoint_chain, const char *endpoint_key, const char *client_ca,
			 tls_identity_fn identity, void *identity_ctx, struct tls_server **out);
/* Connections hold a reference (atomic: they may be made and freed on different threads), so a
 * replaced server (new certificate) lives until its last
 * connection closes while new handshakes use its successor. */
void tls_server_ref(struct tls_server *srv);
void tls_server_unref(struct tls_server *srv);
/* Share session-ticket keys with a successor so tickets survive a certificate swap. */
void tls_server_share_tickets(struct tls_server *from, struct tls_server *to);

enum tls_io {
	TLS_OK,          /* done (or some bytes moved) */
	TLS_WANT_READ,   /* wait for the socket to be readable */
	TLS_WANT_WRITE,  /* wait for the socket to be writable */
	TLS_CLOSED,      /* the peer closed (close_notify or EOF) */
	TLS_FAILED,      /* fatal; tls_conn_error() says why */
};

enum herr tls_conn_new(struct tls_server *srv, int fd, struct tls_conn **out);
/* The identity callback's context for this connection (a handshake thread passes its own store
 * handle); by default the server's. */
void tls_conn_set_identity_ctx(struct tls_conn *c, void *ctx);
void tls_conn_free(struct tls_conn *c);

/* Advance the handshake. TLS_OK once it is complete and the peer was admitted. */
enum tls_io tls_conn_handshake(struct tls_conn *c);
const struct tls_peer *tls_conn_peer(const struct tls_conn *c);
int tls_conn_resumed(const struct tls_conn *c);
/* 1 once the ClientHello has been read and answered: the costly part of a full handshake (key
 * exchange, signature, then the client's certificate) has begun. */
int tls_conn_hello_done(const struct tls_conn *c);

/* Decrypted bytes into buf; *n > 0 with TLS_OK. */
enum tls_io tls_conn_read(struct tls_conn *c, uint8_t *buf, size_t size, size_t *n);
/* Encrypt and send; *n bytes were consumed with TLS_OK. After TLS_WANT_WRITE, call again with
 * the same bytes at the start of buf (more may follow). */
enum tls_io tls_conn_write(struct tls_conn *c, const uint8_t *buf, size_t len, size_t *n);
/* 1 if mbedTLS holds received data already (decrypted or a whole record): the socket may not
 * become readable again for it, so the caller must read without waiting. */
int tls_conn_pending(const struct tls_conn *c);
/* Best effort close_notify. */
void tls_conn_shutdown(struct tls_conn *c);
/* Why the last TLS_FAILED happened, for the log. */
const char *tls_conn_error(const struct tls_conn *c);

#endif
