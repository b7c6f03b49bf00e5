/* dsse: signed manifests as DSSE envelopes (the signing envelope of in-toto and sigstore), ECDSA
 * P-256 over SHA-256. DESIGN.md "Signed manifests":
 *
 *   {"payloadType": "application/vnd.hearth.manifest+json",
 *    "payload": "<base64 of the body>",
 *    "signatures": [{"keyid": "<hex SHA-256 of the signer's DER SubjectPublicKeyInfo>",
 *                    "sig": "<base64 of the DER ECDSA signature>"}]}
 *
 * A signature covers PAE = "DSSEv1" SP len(type) SP type SP len(body) SP body (lengths in ASCII
 * decimal, the body as raw bytes), so it verifies with the openssl command line alone and no JSON
 * is ever canonicalised. Verification is strict and happens before anyone parses the body: the
 * envelope is parsed by a small bounded parser of its own (no duplicate or unknown keys, no
 * trailing bytes), the payloadType must be exactly DSSE_PAYLOAD_TYPE, every signature is checked,
 * and at least threshold *distinct* trusted keys must have signed.
 *
 * Uses only common/ and mbedTLS: the verification core is meant to build for a device too
 * (device/, and an ESP32 under ESP-IDF). Signing goes through a callback, so the private key stays
 * behind whatever holds it (ca/key.h on the server, an HSM, another machine). */
#ifndef HEARTH_OTA_DSSE_H
#define HEARTH_OTA_DSSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"

#define DSSE_PAYLOAD_TYPE "application/vnd.hearth.manifest+json"
#define DSSE_ENVELOPE_MAX (256 * 1024)   /* bytes of envelope JSON accepted */
#define DSSE_BODY_MAX (128 * 1024)       /* bytes of body */
#define DSSE_SIGS_MAX 8                  /* signatures in one envelope */
#define DSSE_KEYID_LEN 65                /* 64 hex digits + NUL */
#define DSSE_SIG_MAX 80                  /* DER ECDSA P-256 signature */
#define DSSE_SPKI_MAX 160                /* DER SubjectPublicKeyInfo of a P-256 key */

/* Sign msg (the PAE); DER signature into sig (size >= DSSE_SIG_MAX), its length into *sig_len. */
typedef enum herr (*dsse_sign_fn)(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig, size_t size,
				  size_t *sig_len);

struct dsse_signer {
	char keyid[DSSE_KEYID_LEN];  /* dsse_keyid() of its public key */
	dsse_sign_fn sign;
	void *ctx;
};

/* A key a verifier trusts: its DER SubjectPublicKeyInfo (P-256 only, named curve and uncompressed
 * point, as openssl and mbedTLS write it, so that it has one keyid). */
struct dsse_key {
	uint8_t spki[DSSE_SPKI_MAX];
	size_t spki_len;
};

/* hex SHA-256 of a DER SubjectPublicKeyInfo. */
void dsse_keyid(const uint8_t *spki, size_t len, char keyid[DSSE_KEYID_LEN]);

/* The PAE of body under DSSE_PAYLOAD_TYPE, as a new buffer (caller frees). HERR_TOOBIG if body is
 * over DSSE_BODY_MAX. */
enum herr dsse_pae(const uint8_t *body, size_t len, uint8_t **pae, size_t *pae_len);

/* An envelope of body signed by each of signers (count 1..DSSE_SIGS_MAX), as a new NUL-terminated
 * JSON text (caller frees). HERR_TOOBIG if body is over DSSE_BODY_MAX. */
enum herr dsse_sign(const uint8_t *body, size_t len, const struct dsse_signer *signers, size_t count,
		    char **envelope, size_t *envelope_len);

/* What verification found. */
struct dsse_verified {
	uint8_t *body;               /* the payload, decoded (NUL-terminated; caller frees) */
	size_t body_len;
	size_t valid_keys;           /* distinct trusted keys with a good signature */
	char keyids[DSSE_SIGS_MAX][DSSE_KEYID_LEN]; /* those keys' ids */
};

/* Verify envelope (len bytes, untrusted) against keys (count trusted keys): HERR_OK only if the
 * envelope is well-formed, the payloadType is DSSE_PAYLOAD_TYPE, every signature that names a
 * trusted key verifies, and at least threshold (0 counts as 1) distinct trusted keys signed; then
 * out->body holds the payload. A signature by an unknown key is ignored (it counts for nothing); one
 * that names a trusted key but does not verify fails the envelope. A trusted key that is not P-256
 * is an error whatever the envelope. why (may be NULL) says what was wrong; out is left empty.
 * Pure apart from mbedTLS; never reads out of bounds, whatever the input. */
enum herr dsse_verify(const uint8_t *envelope, size_t len, const struct dsse_key *keys, size_t count,
		      size_t threshold, struct dsse_verified *out, char *why, size_t why_size);
void dsse_verified_free(struct dsse_verified *v);

/* base64 (standard alphabet, padded), used for payload and sig. encode: a new NUL-terminated
 * string. decode: strict (no whitespace, correct padding), a new buffer (NUL-terminated for
 * convenience). */
enum herr dsse_b64_encode(const uint8_t *data, size_t len, char **out, size_t *out_len);
enum herr dsse_b64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);

#endif
