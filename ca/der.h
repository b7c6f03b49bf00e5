/* ca/der: helpers shared by the files of ca/ only (not part of ca's public API): access to the
 * mbedTLS objects behind ca's opaque types, mbedTLS error conversion, and DER writing of the bits
 * mbedTLS 2.28 does not write itself. All DER writers follow mbedTLS's convention: they write
 * backwards from *p towards start and return the byte count or a negative mbedTLS error. */
#ifndef HEARTH_CA_DER_H
#define HEARTH_CA_DER_H

#include <stdint.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "common/herr.h"
#include "ca/cert.h"
#include "ca/key.h"

mbedtls_pk_context *ca_key_pk(const struct ca_key *key);
const mbedtls_x509_crt *ca_cert_crt(const struct ca_cert *cert);

/* Log an mbedTLS failure (with its text) on behalf of func; HERR_NOMEM if memory ran out, else
 * HERR_CRYPTO. */
enum herr ca_mbedtls_fail(const char *func, const char *what, int ret);

/* Unix seconds to "YYYYMMDDhhmmss" (UTC), the form mbedtls_x509write_crt_set_validity takes. */
void ca_time_string(int64_t t, char out[15]);
/* The tag and length in front of len bytes just written at *p. */
int ca_der_write_header(unsigned char **p, unsigned char *start, size_t len, unsigned char tag);
/* RFC 5280 Time: UTCTime before 2050, GeneralizedTime from then on. */
int ca_der_write_time(unsigned char **p, unsigned char *start, int64_t t);
/* mbedtls_x509_time (as parsed from a certificate) to Unix seconds. */
int64_t ca_x509_time_to_unix(const mbedtls_x509_time *t);

/* Parse upper- or lower-case hex into an mbedTLS big number; HERR_INVALID if not hex or empty. */
enum herr ca_serial_from_hex(const char *hex, mbedtls_mpi *serial);

#endif
