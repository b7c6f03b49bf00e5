/* ca/key: ECDSA P-256 key pairs behind a narrow API. The private half is generated here, saved to a
 * 0600 file, loaded, used to sign, and zeroed on free; it is never handed out as bytes. */
#ifndef HEARTH_CA_KEY_H
#define HEARTH_CA_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"

/* Largest DER SubjectPublicKeyInfo we deal with (RSA-4096 device keys included). */
#define CA_SPKI_MAX 1024
/* "sha256/" + base64 of 32 bytes + NUL */
#define CA_PIN_LEN 52
/* hex SHA-256 + NUL */
#define CA_HEX256_LEN 65
/* Largest DER ECDSA P-256 signature. */
#define CA_SIG_MAX 80

struct ca_key;

enum herr ca_key_generate(struct ca_key **out);
/* Load a PEM private key file; refuses a file that others can read and any key but P-256. */
enum herr ca_key_load(const char *path, struct ca_key **out);
/* Write the private key as PEM to a new file with mode 0600 (HERR_EXISTS if it is there). */
enum herr ca_key_save(const struct ca_key *key, const char *path);
void ca_key_free(struct ca_key *key);

/* DER SubjectPublicKeyInfo of the key. */
enum herr ca_key_spki(const struct ca_key *key, uint8_t *buf, size_t size, size_t *len);

/* ECDSA P-256 over SHA-256(msg), DER-encoded into sig (at least CA_SIG_MAX bytes). */
enum herr ca_key_sign(struct ca_key *key, const uint8_t *msg, size_t len,
		      uint8_t *sig, size_t size, size_t *sig_len);

/* The public half as PEM ("-----BEGIN PUBLIC KEY-----": base64 of the DER SubjectPublicKeyInfo in
 * 64-character lines), a new string the caller frees. */
enum herr ca_key_public_pem(const struct ca_key *key, char **pem);

/* Pin of a DER SubjectPublicKeyInfo as HPKP wrote it: "sha256/<base64 of SHA-256(spki)>". */
void ca_pin_from_spki(const uint8_t *spki, size_t len, char pin[CA_PIN_LEN]);
/* Lower-case hex SHA-256 of arbitrary bytes (fingerprints, manifest key ids). */
void ca_sha256_hex(const uint8_t *data, size_t len, char hex[CA_HEX256_LEN]);

#endif
