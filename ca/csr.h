/* ca/csr: checks a device's certificate signing request. A pure function over bytes: it decides
 * whether a CSR is acceptable and extracts only its public key; everything else the CSR asks for is
 * ignored, because the CA's profile, not the request, decides a certificate's contents. */
#ifndef HEARTH_CA_CSR_H
#define HEARTH_CA_CSR_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "ca/key.h"

/* A PEM CSR for an RSA-4096 key is about 1.7 KiB; anything past this is hostile. */
#define CA_CSR_MAX 16384

struct ca_csr {
	uint8_t spki[CA_SPKI_MAX]; /* DER SubjectPublicKeyInfo */
	size_t spki_len;
	char key_desc[32];         /* "EC P-256", "RSA 2048", ... */
};

/* Accepts a PEM or DER PKCS#10 request that is at most CA_CSR_MAX bytes, whose self-signature
 * verifies, whose key is EC P-256 or RSA 2048..4096 bits, and that does not ask to be a CA.
 * On refusal, why says what was wrong in one line. */
enum herr ca_csr_check(const uint8_t *data, size_t len, struct ca_csr *out,
		       char *why, size_t why_size);

#endif
