/* pki: the operations of hearth's running CA on an open data directory: issuing device and
 * integration client certificates and publishing the CRL. Each one records what it did in the store (certificate rows
 * and the audit log) in the same transaction as the change. */
#ifndef HEARTH_PKI_H
#define HEARTH_PKI_H

#include <stddef.h>
#include <stdint.h>

#include "ca/cert.h"
#include "common/herr.h"
#include "server/datadir.h"

#define PKI_DEVICE_DAYS 365

/* Register device id of model and sign a certificate for the public key spki (from a checked CSR
 * or a key made here), audited as actor from source (a client address; NULL for the host's CLI).
 * Runs inside the caller's transaction. info is required: it receives the facts of the new
 * certificate. */
enum herr pki_issue_device(struct datadir *dd, const char *id, const char *model,
			   const uint8_t *spki, size_t spki_len, unsigned days, const char *actor,
			   const char *source, char **pem, struct ca_cert_info *info);

/* The same for an integration client (role "integration"): a client certificate of the same
 * shape, recorded as the client's. */
enum herr pki_issue_client(struct datadir *dd, const char *id, const char *role,
			   const uint8_t *spki, size_t spki_len, unsigned days, const char *actor,
			   const char *source, char **pem, struct ca_cert_info *info);

/* A further certificate for the active device id (renewal; the key may be new), audited as actor
 * from source. HERR_NOTFOUND, or HERR_STATE if the device is not active. In the caller's
 * transaction. */
enum herr pki_renew_device(struct datadir *dd, const char *id, const uint8_t *spki, size_t spki_len,
			   unsigned days, const char *actor, const char *source, char **pem,
			   struct ca_cert_info *info);

/* Re-issue the CRL from the store's revoked certificates, write it to DIR/certs/crl.pem, and hand
 * back the PEM if pem is not NULL. Runs inside the caller's transaction. */
enum herr pki_publish_crl(struct datadir *dd, char **pem);

/* Renew the endpoint certificate (same key and names, DATADIR_ENDPOINT_DAYS from now): write
 * DIR/certs/endpoint.crt, record it and audit it, in its own transaction. */
enum herr pki_renew_endpoint(struct datadir *dd, const char *actor, struct ca_cert_info *info);
/* The same for the key now in DIR/keys/endpoint.key (a pin rotation's switch put it there). */
enum herr pki_rekey_endpoint(struct datadir *dd, const char *actor, struct ca_cert_info *info);
/* 1 if the endpoint certificate has used 2/3 of its life at now (or cannot be read; 0 when memory
 * ran out reading it). */
int pki_endpoint_due(const struct datadir *dd, int64_t now);

/* The bundle a device needs to verify the endpoint (issuing CA + root), as a new string. */
enum herr pki_ca_bundle(const struct datadir *dd, char **pem, size_t *len);

/* The trust anchors a device takes home at enrollment: the pin of the endpoint's key (of the
 * certificate it serves, which holds that key) and the manifest-signing key, by keyid (what DSSE
 * signatures name: hex SHA-256 of its DER SubjectPublicKeyInfo) and as a PEM public key. */
struct pki_anchors {
	char endpoint_pin[CA_PIN_LEN];
	char manifest_keyid[CA_HEX256_LEN];
	char *manifest_public_pem;
};
enum herr pki_anchors(const struct datadir *dd, struct pki_anchors *out);
/* Frees what pki_anchors made; out may be cleared twice. */
void pki_anchors_clear(struct pki_anchors *a);

#endif
