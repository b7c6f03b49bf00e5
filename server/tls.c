#include "server/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/rng.h"

#define KEY_FILE_MAX 8192
#define TICKET_LIFETIME_S 86400

/* Session-ticket keys, shared by a server and its successors so a certificate swap does not
 * invalidate every device's ticket at once. */
struct tickets {
	int refs;
	mbedtls_ssl_ticket_context ctx;
};

struct tls_server {
	int refs;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt own_chain;
	mbedtls_x509_crt client_ca;
	mbedtls_pk_context own_key;
	struct tickets *tickets;
	tls_identity_fn identity;
	void *identity_ctx;
};

struct tls_conn {
	struct tls_server *srv;
	mbedtls_ssl_context ssl;
	int fd;
	void *identity_ctx;    /* for the identity callback; the server's unless set per connection */
	int verified;          /* the certificate was verified in this handshake (not resumed) */
	int admitted;
	size_t write_pending;  /* length of a write mbedTLS answered WANT_WRITE to */
	/* Until the peer is admitted, the records mbedTLS writes are gathered here and sent when it
	 * returns (flight_send): a flight (ServerHello to ServerHelloDone; ticket, ChangeCipherSpec
	 * and Finished) leaves in one send and one segment, not one per record. */
	unsigned char *flight;
	size_t flight_len, flight_off;
	/* Until then, too, reads take what the socket holds (up to AHEAD_MAX) and mbedTLS's record
	 * header and body reads are served from it: one recv per flight, not two per record. What is
	 * left at admission (data sent right after the client's Finished) is served first, then the
	 * buffer goes. */
	unsigned char *ahead;
	size_t ahead_len, ahead_off;
	struct tls_peer peer;
	char error[256];
};

/* ECDHE with ECDSA (our endpoint key is P-256) and AEAD only: no CBC, no static RSA, no PSK. */
static const int ciphersuites[] = {
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
	MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
	MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
	MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
#endif
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	0
};

/* mbedTLS 2.28 prefers the strongest curve the client offers, P-521 for OpenSSL clients, which
 * costs several times P-256 per handshake for no gain over our P-256 keys. */
#if MBEDTLS_VERSION_NUMBER >= 0x03010000
static const uint16_t groups[] = {
	MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
	MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
	MBEDTLS_SSL_IANA_TLS_GROUP_NONE
};
#else
static const mbedtls_ecp_group_id curves[] = {
	MBEDTLS_ECP_DP_SECP256R1,
	MBEDTLS_ECP_DP_CURVE25519,
	MBEDTLS_ECP_DP_NONE
};
#endif

/* Reference counts are atomic: handshake threads create connections, the event loop frees them. */
static void tickets_unref(struct tickets *t)
{
	if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		mbedtls_ssl_ticket_free(&t->ctx);
		free(t);
	}
}

static enum herr mbed_fail(const char *func, const char *what, int ret)
{
	char text[128];

	mbedtls_strerror(ret, text, sizeof(text));
	log_msg(LOG_LEVEL_ERR, func, "%s: %s (-0x%04x)", what, text, (unsigned)-ret);
	return HERR_CRYPTO;
}

static enum herr load_key(const char *path, mbedtls_pk_context *pk)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	enum herr rc;
	int ret;

	rc = fs_read_secret(path, KEY_FILE_MAX, &pem, &len);
	if (rc != HERR_OK) {
		log_err("%s: %s", path, herr_str(rc));
		return rc;
	}
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	ret = mbedtls_pk_parse_key(pk, pem, len + 1, NULL, 0, rng_callback, NULL);
#else
	ret = mbedtls_pk_parse_key(pk, pem, len + 1, NULL, 0);
#endif
	mbedtls_platform_zeroize(pem, len);
	free(pem);
	if (ret != 0)
		return mbed_fail(__func__, path, ret);
	return HERR_OK;
}

static enum herr load_certs(const char *path, mbedtls_x509_crt *crt)
{
	int ret = mbedtls_x509_crt_parse_file(crt, path);

	if (ret != 0)
		return mbed_fail(__func__, path, ret);
	return HERR_OK;
}

/* mbedTLS 2.28 signs and verifies with an EC key as parsed (type ECKEY) through a temporary ECDSA
 * copy whose curve group is loaded afresh, so the base point's comb table, which costs about as
 * much as a scalar multiplication, is rebuilt for every signature and every verification. As an
 * ECDSA key the same key is used in place and its group keeps the table: the endpoint key signs
 * every ServerKeyExchange and the CA key verifies every client certificate. The table is built
 * here, once, so handshakes only read it (each tls_server's handshakes run on one thread anyway).
 * A key of another type is left as it is. */
static enum herr keep_base_table(mbedtls_pk_context *pk, const char *what)
{
#if MBEDTLS_VERSION_NUMBER < 0x03000000
	mbedtls_pk_context ecdsa;
	mbedtls_ecp_keypair *kp;
	mbedtls_ecp_point r;
	mbedtls_mpi one;
	int ret;

	if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY)
		return HERR_OK;
	mbedtls_pk_init(&ecdsa);
	mbedtls_ecp_point_init(&r);
	mbedtls_mpi_init(&one);
	if ((ret = mbedtls_pk_setup(&ecdsa, mbedtls_pk_info_from_type(MBEDTLS_PK_ECDSA))) == 0 &&
	    (ret = mbedtls_ecdsa_from_keypair(mbedtls_pk_ec(ecdsa), mbedtls_pk_ec(*pk))) == 0 &&
	    (ret = mbedtls_mpi_lset(&one, 1)) == 0) {
		kp = mbedtls_pk_ec(ecdsa);
		ret = mbedtls_ecp_mul(&kp->grp, &r, &one, &kp->grp.G, rng_callback, NULL);
	}
	mbedtls_mpi_free(&one);
	mbedtls_ecp_point_free(&r);
	if (ret != 0) {
		mbedtls_pk_free(&ecdsa);
		return mbed_fail(__func__, what, ret);
	}
	mbedtls_pk_free(pk);
	*pk = ecdsa;
#else
	(void)pk;
	(void)what;
#endif
	return HERR_OK;
}

/* The subject CN of a certificate, if it is a valid device id. */
static int peer_from_crt(const mbedtls_x509_crt *crt, struct tls_peer *peer)
{
	const mbedtls_x509_name *n;

	memset(peer, 0, sizeof(*peer));
	for (n = &crt->subject; n; n = n->next) {
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) != 0 || n->val.len >= sizeof(peer->id))
			continue;
		memcpy(peer->id, n->val.p, n->val.len);
		peer->id[n->val.len] = '\0';
		break;
	}
	ca_serial_hex(crt->serial.p, crt->serial.len, peer->serial);
	return ca_valid_id(peer->id);
}

/* Run by mbedTLS for each certificate of the client's chain, after its own checks (chain to the
 * issuing CA, validity dates, key usage). Depth 0 is the device's own certificate. */
static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct tls_conn *c = ctx;
	char why[128];

	if (depth != 0)
		return 0;
	c->verified = 1;
	if (mbedtls_x509_crt_check_extended_key_usage(crt, MBEDTLS_OID_CLIENT_AUTH,
						      MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)) != 0)
		*flags |= MBEDTLS_X509_BADCERT_EXT_KEY_USAGE;
	if (!peer_from_crt(crt, &c->peer)) {
		*flags |= MBEDTLS_X509_BADCERT_OTHER;
		snprintf(c->error, sizeof(c->error), "client certificate CN is not a device id");
		return 0;
	}
	if (*flags != 0) {
		if (mbedtls_x509_crt_verify_info(why, sizeof(why), "", *flags) < 0)
			snprintf(why, sizeof(why), "flags 0x%x", (unsigned)*flags);
		why[strcspn(why, "\n")] = '\0';
		snprintf(c->error, sizeof(c->error), "client certificate of '%s' refused: %s",
			 c->peer.id, why);
		return 0;
	}
	/* Checked here too, not only after the handshake, so a refused device gets a TLS alert. */
	const char *refusal = c->srv->identity(c->identity_ctx, &c->peer);

	if (refusal) {
		*flags |= MBEDTLS_X509_BADCERT_REVOKED;
		snprintf(c->error, sizeof(c->error), "device '%s' refused: %s", c->peer.id, refusal);
	}
	return 0;
}

enum herr tls_server_new(const char *endpoint_chain, const char *endpoint_key, const char *client_ca,
			 tls_identity_fn identity, void *identity_ctx, struct tls_server **out)
{
	struct tls_server *srv;
	enum herr rc;
	int ret;

	*out = NULL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return HERR_NOMEM;
	srv->refs = 1;
	srv->identity = identity;
	srv->identity_ctx = identity_ctx;
	mbedtls_ssl_config_init(&srv->conf);
	mbedtls_x509_crt_init(&srv->own_chain);
	mbedtls_x509_crt_init(&srv->client_ca);
	mbedtls_pk_init(&srv->own_key);

	if ((rc = load_certs(endpoint_chain, &srv->own_chain)) != HERR_OK ||
	    (rc = load_key(endpoint_key, &srv->own_key)) != HERR_OK ||
	    (rc = load_certs(client_ca, &srv->client_ca)) != HERR_OK ||
	    (rc = keep_base_table(&srv->own_key, endpoint_key)) != HERR_OK)
		goto fail;
	for (mbedtls_x509_crt *crt = &srv->client_ca; crt; crt = crt->next)
		if ((rc = keep_base_table(&crt->pk, client_ca)) != HERR_OK)
			goto fail;
	ret = mbedtls_ssl_config_defaults(&srv->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
					  MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret != 0) {
		rc = mbed_fail(__func__, "config defaults", ret);
		goto fail;
	}
	mbedtls_ssl_conf_rng(&srv->conf, rng_callback, NULL);
	/* 2.28 speaks TLS 1.2 only; a 3.x build with TLS 1.3 gets it as well, never less than 1.2. */
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
	mbedtls_ssl_conf_min_tls_version(&srv->conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
	mbedtls_ssl_conf_min_version(&srv->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
	mbedtls_ssl_conf_ciphersuites(&srv->conf, ciphersuites);
#if MBEDTLS_VERSION_NUMBER >= 0x03010000
	mbedtls_ssl_conf_groups(&srv->conf, groups);
#else
	mbedtls_ssl_conf_curves(&srv->conf, curves);
#endif
	mbedtls_ssl_conf_authmode(&srv->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	/* The issuing CA is the only trust anchor: a certificate must chain to it, not just to root. */
	mbedtls_ssl_conf_ca_chain(&srv->conf, &srv->client_ca, NULL);
	ret = mbedtls_ssl_conf_own_cert(&srv->conf, &srv->own_chain, &srv->own_key);
	if (ret != 0) {
		rc = mbed_fail(__func__, "endpoint certificate", ret);
		goto fail;
	}
	srv->tickets = calloc(1, sizeof(*srv->tickets));
	if (!srv->tickets) {
		rc = HERR_NOMEM;
		goto fail;
	}
	srv->tickets->refs = 1;
	mbedtls_ssl_ticket_init(&srv->tickets->ctx);
	ret = mbedtls_ssl_ticket_setup(&srv->tickets->ctx, rng_callback, NULL, MBEDTLS_CIPHER_AES_256_GCM,
				       TICKET_LIFETIME_S);
	if (ret != 0) {
		rc = mbed_fail(__func__, "session tickets", ret);
		goto fail;
	}
	mbedtls_ssl_conf_session_tickets_cb(&srv->conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
					    &srv->tickets->ctx);
	*out = srv;
	return HERR_OK;
fail:
	tls_server_unref(srv);
	return rc;
}

void tls_server_ref(struct tls_server *srv)
{
	__atomic_add_fetch(&srv->refs, 1, __ATOMIC_RELAXED);
}

void tls_server_unref(struct tls_server *srv)
{
	if (!srv || __atomic_sub_fetch(&srv->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	mbedtls_ssl_config_free(&srv->conf);
	mbedtls_x509_crt_free(&srv->own_chain);
	mbedtls_x509_crt_free(&srv->client_ca);
	mbedtls_pk_free(&srv->own_key);
	tickets_unref(srv->tickets);
	free(srv);
}

void tls_server_share_tickets(struct tls_server *from, struct tls_server *to)
{
	if (!from->tickets || from->tickets == to->tickets)
		return;
	tickets_unref(to->tickets);
	to->tickets = from->tickets;
	__atomic_add_fetch(&to->tickets->refs, 1, __ATOMIC_RELAXED);
	mbedtls_ssl_conf_session_tickets_cb(&to->conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
					    &to->tickets->ctx);
}

/* At most this much of a handshake is gathered (a full handshake's first flight is ~1.3 KB with a
 * P-256 chain of two); more goes out as it comes. */
#define FLIGHT_MAX 4096

static int send_error(int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	return err == EPIPE || err == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_SEND_FAILED;
}

/* Send what the flight holds: 0 once it is all out, else an mbedTLS error code (WANT_WRITE: the
 * socket is full, the rest stays for the next call). */
static int flight_send(struct tls_conn *c)
{
	while (c->flight_off < c->flight_len) {
		ssize_t n = send(c->fd, c->flight + c->flight_off, c->flight_len - c->flight_off, MSG_NOSIGNAL);

		if (n < 0)
			return send_error(errno);
		c->flight_off += (size_t)n;
	}
	c->flight_len = c->flight_off = 0;
	return 0;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct tls_conn *c = ctx;
	ssize_t n;
	int ret;

	if (!c->admitted && len <= FLIGHT_MAX) {
		if (len > FLIGHT_MAX - c->flight_len && (ret = flight_send(c)) != 0)
			return ret;
		if (!c->flight)
			c->flight = malloc(FLIGHT_MAX);
		if (c->flight) {
			memcpy(c->flight + c->flight_len, buf, len);
			c->flight_len += len;
			return (int)len;
		}
	}
	/* Straight out; what was gathered goes first. */
	if ((ret = flight_send(c)) != 0)
		return ret;
	n = send(c->fd, buf, len, MSG_NOSIGNAL);
	return n >= 0 ? (int)n : send_error(errno);
}

/* A handshake's reads fill at most this much at once (a full handshake's client flight is ~700
 * bytes with a P-256 certificate). */
#define AHEAD_MAX 4096

static int recv_error(int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
		return MBEDTLS_ERR_SSL_WANT_READ;
	return err == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct tls_conn *c = ctx;
	ssize_t n;

	if (c->ahead_off == c->ahead_len && !c->admitted && len < AHEAD_MAX) {
		if (!c->ahead)
			c->ahead = malloc(AHEAD_MAX);
		if (c->ahead) {
			n = recv(c->fd, c->ahead, AHEAD_MAX, 0);
			if (n <= 0)
				return n == 0 ? 0 : recv_error(errno);
			c->ahead_len = (size_t)n;
			c->ahead_off = 0;
		}
	}
	if (c->ahead_off < c->ahead_len) {
		size_t k = c->ahead_len - c->ahead_off < len ? c->ahead_len - c->ahead_off : len;

		memcpy(buf, c->ahead + c->ahead_off, k);
		c->ahead_off += k;
		if (c->admitted && c->ahead_off == c->ahead_len) {
			free(c->ahead);
			c->ahead = NULL;
			c->ahead_len = c->ahead_off = 0;
		}
		return (int)k;
	}
	n = recv(c->fd, buf, len, 0);
	return n >= 0 ? (int)n : recv_error(errno);
}

enum herr tls_conn_new(struct tls_server *srv, int fd, struct tls_conn **out)
{
	struct tls_conn *c;
	int ret;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return HERR_NOMEM;
	mbedtls_ssl_init(&c->ssl);
	ret = mbedtls_ssl_setup(&c->ssl, &srv->conf);
	if (ret != 0) {
		mbedtls_ssl_free(&c->ssl);
		free(c);
		return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? HERR_NOMEM : mbed_fail(__func__, "setup", ret);
	}
	c->srv = srv;
	tls_server_ref(srv);
	c->fd = fd;
	c->identity_ctx = srv->identity_ctx;
	mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
	mbedtls_ssl_set_verify(&c->ssl, verify_cb, c);
	*out = c;
	return HERR_OK;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	free(c->flight);
	free(c->ahead);
	mbedtls_ssl_free(&c->ssl);
	tls_server_unref(c->srv);
	free(c);
}

static enum tls_io io_result(struct tls_conn *c, int ret, const char *what)
{
	char text[96];

	switch (ret) {
	case MBEDTLS_ERR_SSL_WANT_READ:
		return TLS_WANT_READ;
	case MBEDTLS_ERR_SSL_WANT_WRITE:
		return TLS_WANT_WRITE;
	case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
	case MBEDTLS_ERR_SSL_CONN_EOF:
	case MBEDTLS_ERR_NET_CONN_RESET:
		return TLS_CLOSED;
	default:
		if (c->error[0] == '\0') {
			mbedtls_strerror(ret, text, sizeof(text));
			snprintf(c->error, sizeof(c->error), "%s: %s", what, text);
		}
		return TLS_FAILED;
	}
}

enum tls_io tls_conn_handshake(struct tls_conn *c)
{
	const mbedtls_x509_crt *crt;
	const char *refusal;
	int ret, sent;

	if (c->admitted)
		return TLS_OK;
	/* What an earlier call could not send goes before anything new; whatever mbedTLS writes now
	 * (records, or an alert before it fails) leaves when it returns. A send that cannot finish
	 * outranks waiting for the peer, but not a failure of mbedTLS's own. */
	ret = flight_send(c);
	if (ret == 0) {
		ret = mbedtls_ssl_handshake(&c->ssl);
		sent = flight_send(c);
		if (sent != 0 && (ret == 0 || ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE))
			ret = sent;
	}
	if (ret != 0) {
		/* An EOF mid-handshake is a failed handshake, not a clean close. */
		enum tls_io io = io_result(c, ret, "handshake");

		return io == TLS_CLOSED ? TLS_FAILED : io;
	}
	/* A resumed session skipped verify_cb: take the identity from the session's certificate and
	 * ask again, so a device revoked since its ticket was issued is still refused. */
	crt = mbedtls_ssl_get_peer_cert(&c->ssl);
	if (!crt || !peer_from_crt(crt, &c->peer)) {
		snprintf(c->error, sizeof(c->error), "no usable client certificate in the session");
		return TLS_FAILED;
	}
	refusal = c->srv->identity(c->identity_ctx, &c->peer);
	if (refusal) {
		snprintf(c->error, sizeof(c->error), "device '%s' refused%s: %s", c->peer.id,
			 c->verified ? "" : " on resumption", refusal);
		return TLS_FAILED;
	}
	c->admitted = 1;
	free(c->flight);
	c->flight = NULL;
	if (c->ahead_off == c->ahead_len) {
		free(c->ahead);
		c->ahead = NULL;
		c->ahead_len = c->ahead_off = 0;
	}
	return TLS_OK;
}

void tls_conn_set_identity_ctx(struct tls_conn *c, void *ctx)
{
	c->identity_ctx = ctx;
}

const struct tls_peer *tls_conn_peer(const struct tls_conn *c)
{
	return &c->peer;
}

int tls_conn_resumed(const struct tls_conn *c)
{
	return c->admitted && !c->verified;
}

int tls_conn_hello_done(const struct tls_conn *c)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	return c->ssl.MBEDTLS_PRIVATE(state) > MBEDTLS_SSL_CLIENT_HELLO;
#else
	return c->ssl.state > MBEDTLS_SSL_CLIENT_HELLO;
#endif
}

enum tls_io tls_conn_read(struct tls_conn *c, uint8_t *buf, size_t size, size_t *n)
{
	int ret;

	*n = 0;
	ret = mbedtls_ssl_read(&c->ssl, buf, size);
	if (ret > 0) {
		*n = (size_t)ret;
		return TLS_OK;
	}
	if (ret == 0)
		return TLS_CLOSED;
	return io_result(c, ret, "read");
}

enum tls_io tls_conn_write(struct tls_conn *c, const uint8_t *buf, size_t len, size_t *n)
{
	int ret;

	*n = 0;
	/* After WANT_WRITE mbedTLS has already encrypted the first write_pending bytes and must be
	 * called again with exactly that length, or it reports more bytes sent than it sent. */
	if (c->write_pending) {
		if (len < c->write_pending)
			return TLS_FAILED;
		len = c->write_pending;
	}
	ret = mbedtls_ssl_write(&c->ssl, buf, len);
	if (ret >= 0) {
		c->write_pending = 0;
		*n = (size_t)ret;
		return TLS_OK;
	}
	if (ret == MBEDTLS_ERR_SSL_WANT_WRITE)
		c->write_pending = len;
	return io_result(c, ret, "write");
}

int tls_conn_pending(const struct tls_conn *c)
{
	return mbedtls_ssl_get_bytes_avail(&c->ssl) > 0 || mbedtls_ssl_check_pending(&c->ssl) ||
	       c->ahead_off < c->ahead_len;
}

void tls_conn_shutdown(struct tls_conn *c)
{
	(void)mbedtls_ssl_close_notify(&c->ssl);
	(void)flight_send(c);
}

const char *tls_conn_error(const struct tls_conn *c)
{
	return c->error[0] ? c->error : "unknown TLS error";
}
