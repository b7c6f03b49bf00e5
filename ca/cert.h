/* ca/cert: issues X.509 certificates for hearth's own CA (root, issuing CA, endpoint, devices) and
 * reads them back. The certificate's profile (extensions, lifetimes) is decided here from its kind,
 * never from what a requester asked for. */
#ifndef HEARTH_CA_CERT_H
#define HEARTH_CA_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "ca/key.h"

enum ca_cert_kind {
	CA_CERT_ROOT,     /* self-signed; CA:TRUE; keyCertSign, cRLSign */
	CA_CERT_ISSUING,  /* signed by root; CA:TRUE, pathlen 0; keyCertSign, cRLSign */
	CA_CERT_ENDPOINT, /* signed by issuing; serverAuth; SANs */
	CA_CERT_DEVICE,   /* signed by issuing; clientAuth only; CN = device id */
};

#define CA_MAX_SANS 16
/* Serials are at most 20 bytes (RFC 5280 §4.1.2.2): 40 hex digits and a NUL. */
#define CA_SERIAL_HEX_LEN 41

struct ca_cert_request {
	enum ca_cert_kind kind;
	const char *common_name;
	const char *const *sans;     /* endpoint: DNS names or IP literals */
	size_t san_count;
	unsigned days;               /* life from now */
	const uint8_t *subject_spki; /* DER SubjectPublicKeyInfo of the subject */
	size_t subject_spki_len;
};

struct ca_cert;

/* Facts about one certificate, in the form the store and the CLI want them. */
struct ca_cert_info {
	char serial_hex[CA_SERIAL_HEX_LEN]; /* upper-case hex, as openssl prints it */
	char subject[256];                /* RFC 4514-ish, as mbedTLS prints it */
	char fingerprint[CA_HEX256_LEN];  /* hex SHA-256 of the DER certificate */
	char pin[CA_PIN_LEN];             /* of its public key */
	int64_t not_before, not_after;    /* Unix seconds */
	int is_ca;
};

/* Issue a certificate. issuer_cert is NULL for the self-signed root (then issuer_key must be the
 * subject's key). On success *pem is a new NUL-terminated PEM string (caller frees). */
enum herr ca_cert_issue(const struct ca_cert_request *req, struct ca_key *issuer_key,
			const struct ca_cert *issuer_cert, char **pem, struct ca_cert_info *info);

/* Parse PEM certificates; with several (a chain), the first is the one described. */
enum herr ca_cert_parse(const uint8_t *pem, size_t len, struct ca_cert **out);
enum herr ca_cert_load(const char *path, struct ca_cert **out);
void ca_cert_free(struct ca_cert *cert);

void ca_cert_get_info(const struct ca_cert *cert, struct ca_cert_info *info);
enum herr ca_cert_spki(const struct ca_cert *cert, uint8_t *buf, size_t size, size_t *len);

/* 1 if cert's public key is key's public key. */
int ca_cert_matches_key(const struct ca_cert *cert, const struct ca_key *key);

/* The subjectAltName entries (DNS names and IP addresses, as text) of a certificate. */
#define CA_NAME_LEN 256
enum herr ca_cert_names(const struct ca_cert *cert, char names[][CA_NAME_LEN], size_t max, size_t *count);

/* A fresh endpoint certificate like old: same subject CN and names; new serial, validity of days
 * from now; the same public key, or the one in spki (a DER SubjectPublicKeyInfo) when a pin
 * rotation moves the endpoint to its next key. */
enum herr ca_cert_renew_endpoint(const struct ca_cert *old, const uint8_t *spki, size_t spki_len,
				 struct ca_key *issuer_key, const struct ca_cert *issuer_cert, unsigned days,
				 char **pem, struct ca_cert_info *info);

/* A DER serial's bytes as upper-case hex without leading zero bytes (how openssl prints it). */
void ca_serial_hex(const uint8_t *serial, size_t len, char hex[CA_SERIAL_HEX_LEN]);

/* A name for an endpoint SAN: an IPv4/IPv6 literal or a DNS name ([A-Za-z0-9.-], <= 253). */
int ca_valid_san(const char *name);

/* A device id or model name: [A-Za-z0-9_-]{1,64}. */
int ca_valid_id(const char *id);

#endif
