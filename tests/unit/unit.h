/* unit: what the Check unit tests share. Scratch directories under /tmp that are removed again, a
 * test PKI, file and DER helpers that assert as they go, and the runner every main() calls. */
#ifndef HEARTH_TESTS_UNIT_H
#define HEARTH_TESTS_UNIT_H

#include <stddef.h>
#include <stdint.h>

#include <check.h>
#include <mbedtls/x509.h>

#include "ca/cert.h"
#include "ca/key.h"
#include "common/herr.h"

/* Run the suite (CK_NORMAL output) and free it; EXIT_FAILURE if any test failed. */
int unit_run(Suite *s);

/* --- scratch directories ---------------------------------------------------------------------- */

/* Give tc a directory /tmp/hearth-<program>-XXXXXX, made before its tests and removed with all it
 * holds after them, and give each test (tests run in forked children) an empty directory of its
 * own under it: unit_dir(). */
void unit_scratch_add(TCase *tc);

/* The current test's own directory. */
const char *unit_dir(void);

/* buf = dir/name; asserts that it fits. */
void unit_path(char *buf, size_t size, const char *dir, const char *name);

/* buf = unit_dir()/name; asserts that it fits. */
void unit_at(char *buf, size_t size, const char *name);

/* --- files ------------------------------------------------------------------------------------ */

/* Read path (at most max bytes) with fs_read_file and assert that it worked; *data is
 * NUL-terminated and the caller frees it. */
void unit_read_file(const char *path, size_t max, uint8_t **data, size_t *len);

/* --- test PKI --------------------------------------------------------------------------------- */

/* A root CA ("test root", 3650 days) and an issuing CA under it ("test issuing", 1825 days), each
 * with a fresh P-256 key. */
struct unit_pki {
	struct ca_key *root_key, *issuing_key;
	struct ca_cert *root_cert, *issuing_cert;
	char *root_pem, *issuing_pem;
};

void unit_pki_make(struct unit_pki *pki);

/* Frees all of pki and zeroes it; a zeroed pki is fine. */
void unit_pki_free(struct unit_pki *pki);

/* Give tc a fresh unit_pki for its tests: made once before them, freed after. */
void unit_pki_add(TCase *tc);
extern struct unit_pki unit_pki;

/* ca_cert_issue for subject's key with a request built from the arguments (sans may be NULL).
 * Returns what ca_cert_issue returns, so refusals can be tested. */
enum herr unit_issue(enum ca_cert_kind kind, const char *cn, const char *const *sans,
		     size_t san_count, unsigned days, const struct ca_key *subject,
		     struct ca_key *issuer_key, const struct ca_cert *issuer_cert, char **pem,
		     struct ca_cert_info *info);

/* --- X.509 ------------------------------------------------------------------------------------ */

/* Find the extnValue contents of the extension with OID oid in a SEQUENCE OF Extension as mbedTLS
 * keeps it (crt->v3_ext, crl->crl_ext: the contents of the [0]/[3] wrapper). 0 if found. */
int unit_find_ext(const mbedtls_x509_buf *exts, const char *oid, size_t oid_len,
		  unsigned char **val, size_t *val_len, int *critical);

/* An X.509 time as Unix time, computed independently of ca/der so tests can check what it says. */
int64_t unit_x509_time_to_unix(const mbedtls_x509_time *t);

#endif
