/* ca/crl: writes X.509 v2 certificate revocation lists signed by the issuing CA (mbedTLS 2.28 can
 * parse CRLs but not write them). */
#ifndef HEARTH_CA_CRL_H
#define HEARTH_CA_CRL_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "ca/cert.h"
#include "ca/key.h"

/* Keeps a CRL a bounded size; the CLI refuses to revoke past it. */
#define CA_CRL_MAX_ENTRIES 1000000

struct ca_crl_entry {
	const char *serial_hex; /* as in struct ca_cert_info */
	int64_t revoked_at;     /* Unix seconds */
};

/* Issue a CRL listing entries, with CRL number crl_number, valid from this_update to next_update.
 * On success *pem is a new NUL-terminated PEM string (caller frees). */
enum herr ca_crl_issue(struct ca_key *issuer_key, const struct ca_cert *issuer_cert,
		       const struct ca_crl_entry *entries, size_t count, uint64_t crl_number,
		       int64_t this_update, int64_t next_update, char **pem);

#endif
