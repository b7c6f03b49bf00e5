#include "ca/crl.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/base64.h>
#include <mbedtls/bignum.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/sha1.h>

#include "ca/der.h"
#include "common/log.h"

#define CRL_PEM_BEGIN "-----BEGIN X509 CRL-----\n"
#define CRL_PEM_END   "-----END X509 CRL-----\n"

/* Room for everything but the issuer name and the entries: outer headers, version, two algorithm
 * identifiers, two times, both extensions and the signature come to well under 300 bytes. */
#define CRL_FIXED_MAX 1024
/* One revoked entry: SEQUENCE { INTEGER (at most 21 bytes for a 40-digit serial),
 * GeneralizedTime (15 bytes) }, with headers, is at most 46 bytes. */
#define CRL_ENTRY_MAX 64
/* signatureAlgorithm (12 bytes) and the BIT STRING around a DER ECDSA signature. */
#define CRL_TAIL_MAX (16 + 4 + CA_SIG_MAX)
/* SHA-1, the RFC 5280 §4.2.1.2 method (1) key identifier mbedTLS writes into certificates. */
#define KEY_ID_LEN 20

/* ecdsa-with-SHA256; RFC 5758 §3.2 says its parameters are absent, not NULL, which is why this is
 * not mbedtls_asn1_write_algorithm_identifier (that writes NULL). */
static int write_sig_alg(unsigned char **p, unsigned char *start)
{
	int ret, len = 0;

	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_ECDSA_SHA256,
							 MBEDTLS_OID_SIZE(MBEDTLS_OID_ECDSA_SHA256)));
	MBEDTLS_ASN1_CHK_ADD(len, ca_der_write_header(p, start, (size_t)len,
					       MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	return len;
}

/* A non-negative INTEGER wider than mbedtls_asn1_write_int's int. */
static int write_u64(unsigned char **p, unsigned char *start, uint64_t v)
{
	int ret, len = 0;

	do {
		if (*p - start < 1)
			return MBEDTLS_ERR_ASN1_BUF_TOO_SMALL;
		*--(*p) = (unsigned char)(v & 0xff);
		v >>= 8;
		len++;
	} while (v != 0);
	/* A set top bit would read as negative. */
	if (**p & 0x80) {
		if (*p - start < 1)
			return MBEDTLS_ERR_ASN1_BUF_TOO_SMALL;
		*--(*p) = 0;
		len++;
	}
	MBEDTLS_ASN1_CHK_ADD(len, ca_der_write_header(p, start, (size_t)len, MBEDTLS_ASN1_INTEGER));
	return len;
}

/* Wrap the value_len bytes just written at *p as a non-critical Extension with the given OID. */
static int wrap_extension(unsigned char **p, unsigned char *start, size_t value_len,
			  const char *oid, size_t oid_len)
{
	int ret, len = (int)value_len;

	MBEDTLS_ASN1_CHK_ADD(len, ca_der_write_header(p, start, value_len, MBEDTLS_ASN1_OCTET_STRING));
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_oid(p, start, oid, oid_len));
	MBEDTLS_ASN1_CHK_ADD(len, ca_der_write_header(p, start, (size_t)len,
					       MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	return len;
}

/* [0] EXPLICIT Extensions: AuthorityKeyIdentifier (which RFC 5280 §5.2.1 requires of every CRL)
 * and CRLNumber (§5.2.3), both non-critical. */
static int write_crl_extensions(unsigned char **p, unsigned char *start,
				const unsigned char key_id[KEY_ID_LEN], uint64_t crl_number)
{
	int ret, len = 0, value_len = 0;

	MBEDTLS_ASN1_CHK_ADD(value_len, write_u64(p, start, crl_number));
	MBEDTLS_ASN1_CHK_ADD(len, wrap_extension(p, start, (size_t)value_len, MBEDTLS_OID_CRL_NUMBER,
						 MBEDTLS_OID_SIZE(MBEDTLS_OID_CRL_NUMBER)));

	/* AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING } */
	value_len = 0;
	MBEDTLS_ASN1_CHK_ADD(value_len, mbedtls_asn1_write_raw_buffer(p, start, key_id, KEY_ID_LEN));
	MBEDTLS_ASN1_CHK_ADD(value_len, ca_der_write_header(p, start, KEY_ID_LEN,
						     MBEDTLS_ASN1_CONTEXT_SPECIFIC | 0));
	MBEDTLS_ASN1_CHK_ADD(value_len, ca_der_write_header(p, start, (size_t)value_len,
						     MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	MBEDTLS_ASN1_CHK_ADD(len, wrap_extension(p, start, (size_t)value_len,
						 MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER,
						 MBEDTLS_OID_SIZE(MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER)));

	MBEDTLS_ASN1_CHK_ADD(len, ca_der_write_header(p, start, (size_t)len,
					       MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	MBEDTLS_ASN1_CHK_ADD(len, ca_der_write_header(p, start, (size_t)len,
					       MBEDTLS_ASN1_CONTEXT_SPECIFIC |
					       MBEDTLS_ASN1_CONSTRUCTED | 0));
	return len;
}

/* revokedCertificates, last entry first so the DER lists them in the caller's order. The serials
 * were validated by check_entries(), so a parse failure here is not the caller's fault. */
static int write_revoked(unsigned char **p, unsigned char *start,
			 const struct ca_crl_entry *entries, size_t count)
{
	mbedtls_mpi serial;
	int ret, len = 0;
	size_t i;

	mbedtls_mpi_init(&serial);
	for (i = count; i-- > 0;) {
		int entry_len = 0;

		if (ca_serial_from_hex(entries[i].serial_hex, &serial) != HERR_OK) {
			ret = MBEDTLS_ERR_ASN1_INVALID_DATA;
			goto out;
		}
		ret = ca_der_write_time(p, start, entries[i].revoked_at);
		if (ret < 0)
			goto out;
		entry_len += ret;
		ret = mbedtls_asn1_write_mpi(p, start, &serial);
		if (ret < 0)
			goto out;
		entry_len += ret;
		ret = ca_der_write_header(p, start, (size_t)entry_len,
				   MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
		if (ret < 0)
			goto out;
		len += entry_len + ret;
	}
	ret = ca_der_write_header(p, start, (size_t)len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
	if (ret < 0)
		goto out;
	ret += len;
out:
	mbedtls_mpi_free(&serial);
	return ret;
}

struct crl_params {
	const mbedtls_x509_crt *issuer;
	unsigned char key_id[KEY_ID_LEN];
	const struct ca_crl_entry *entries;
	size_t count;
	uint64_t crl_number;
	int64_t this_update, next_update;
};

static int write_tbs(unsigned char **p, unsigned char *start, const struct crl_params *cp)
{
	int ret, len = 0;

	MBEDTLS_ASN1_CHK_ADD(len, write_crl_extensions(p, start, cp->key_id, cp->crl_number));
	/* RFC 5280 §5.1.2.6: with no entries the list is absent, not empty. */
	if (cp->count > 0)
		MBEDTLS_ASN1_CHK_ADD(len, write_revoked(p, start, cp->entries, cp->count));
	MBEDTLS_ASN1_CHK_ADD(len, ca_der_write_time(p, start, cp->next_update));
	MBEDTLS_ASN1_CHK_ADD(len, ca_der_write_time(p, start, cp->this_update));
	/* Byte for byte the issuer's subject, which is how relying parties match the two. */
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_raw_buffer(p, start, cp->issuer->subject_raw.p,
								cp->issuer->subject_raw.len));
	MBEDTLS_ASN1_CHK_ADD(len, write_sig_alg(p, start));
	/* v2, needed because of the extensions */
	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_int(p, start, 1));
	MBEDTLS_ASN1_CHK_ADD(len, ca_der_write_header(p, start, (size_t)len,
					       MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	return len;
}

/* signatureAlgorithm and signatureValue, the part of the CRL after the TBS. */
static int write_sig(unsigned char **p, unsigned char *start, const unsigned char *sig,
		     size_t sig_len)
{
	int ret, len = 0;

	MBEDTLS_ASN1_CHK_ADD(len, mbedtls_asn1_write_bitstring(p, start, sig, sig_len * 8));
	MBEDTLS_ASN1_CHK_ADD(len, write_sig_alg(p, start));
	return len;
}

/* The issuer's key identifier derived as mbedtls_x509write_crt_set_subject_key_identifier derives
 * it for the certificates ca/cert writes: SHA-1 of the subjectPublicKey BIT STRING's contents. */
static enum herr issuer_key_id(const mbedtls_x509_crt *crt, unsigned char key_id[KEY_ID_LEN])
{
	unsigned char buf[CA_SPKI_MAX];
	unsigned char *p = buf + sizeof(buf);
	int len, ret;

	len = mbedtls_pk_write_pubkey(&p, buf, &crt->pk);
	if (len < 0)
		return ca_mbedtls_fail(__func__, "write issuer public key", len);
	ret = mbedtls_sha1_ret(p, (size_t)len, key_id);
	if (ret != 0)
		return ca_mbedtls_fail(__func__, "SHA-1", ret);
	return HERR_OK;
}

/* Reject bad serials before anything is allocated or signed, naming the entry at fault. */
static enum herr check_entries(const struct ca_crl_entry *entries, size_t count)
{
	enum herr rc = HERR_OK;
	mbedtls_mpi serial;
	size_t i;

	mbedtls_mpi_init(&serial);
	for (i = 0; i < count; i++) {
		if (!entries[i].serial_hex ||
		    ca_serial_from_hex(entries[i].serial_hex, &serial) != HERR_OK) {
			log_err("entry %zu: serial is not 1 to 40 hex digits", i);
			rc = HERR_INVALID;
			break;
		}
	}
	mbedtls_mpi_free(&serial);
	return rc;
}

static enum herr der_to_pem(const unsigned char *der, size_t der_len, char **pem)
{
	unsigned char *buf = NULL;
	size_t size = 0, olen = 0;
	int ret;

	/* With no buffer, mbedTLS reports the size it needs, NUL included. */
	ret = mbedtls_pem_write_buffer(CRL_PEM_BEGIN, CRL_PEM_END, der, der_len, NULL, 0, &size);
	if (ret != MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL)
		return ca_mbedtls_fail(__func__, "PEM size", ret);
	buf = malloc(size);
	if (!buf)
		return HERR_NOMEM;
	ret = mbedtls_pem_write_buffer(CRL_PEM_BEGIN, CRL_PEM_END, der, der_len, buf, size, &olen);
	if (ret != 0) {
		free(buf);
		return ca_mbedtls_fail(__func__, "PEM encode", ret);
	}
	*pem = (char *)buf;
	return HERR_OK;
}

enum herr ca_crl_issue(struct ca_key *issuer_key, const struct ca_cert *issuer_cert,
		       const struct ca_crl_entry *entries, size_t count, uint64_t crl_number,
		       int64_t this_update, int64_t next_update, char **pem)
{
	struct crl_params cp;
	unsigned char sig[CA_SIG_MAX];
	unsigned char tail[CRL_TAIL_MAX];
	unsigned char *buf = NULL, *p, *tbs_end, *tp;
	size_t size, sig_len = 0;
	int tbs_len, tail_len, ret;
	enum herr rc;

	*pem = NULL;
	/* count first: it bounds everything below, entries included. */
	if (count > CA_CRL_MAX_ENTRIES) {
		log_err("%zu entries; at most %d fit in a CRL", count, CA_CRL_MAX_ENTRIES);
		return HERR_TOOBIG;
	}
	if (count > 0 && !entries)
		return HERR_INVALID;
	if (next_update < this_update) {
		log_err("nextUpdate is before thisUpdate");
		return HERR_INVALID;
	}
	/* A CRL signed by any other key would verify against nothing. */
	if (!ca_cert_matches_key(issuer_cert, issuer_key)) {
		log_err("issuing key does not belong to the issuing certificate");
		return HERR_INVALID;
	}
	rc = check_entries(entries, count);
	if (rc != HERR_OK)
		return rc;

	memset(&cp, 0, sizeof(cp));
	cp.issuer = ca_cert_crt(issuer_cert);
	cp.entries = entries;
	cp.count = count;
	cp.crl_number = crl_number;
	cp.this_update = this_update;
	cp.next_update = next_update;
	rc = issuer_key_id(cp.issuer, cp.key_id);
	if (rc != HERR_OK)
		return rc;

	/* count <= CA_CRL_MAX_ENTRIES keeps this well inside size_t and the int lengths of asn1write. */
	size = CRL_FIXED_MAX + cp.issuer->subject_raw.len + count * CRL_ENTRY_MAX;
	buf = malloc(size);
	if (!buf)
		return HERR_NOMEM;

	/* The TBS is written backwards from the end, short of room for the signature that follows it,
	 * and signed where it lies. */
	tbs_end = buf + size - CRL_TAIL_MAX;
	p = tbs_end;
	tbs_len = write_tbs(&p, buf, &cp);
	if (tbs_len < 0) {
		rc = ca_mbedtls_fail(__func__, "write TBSCertList", tbs_len);
		goto out;
	}
	rc = ca_key_sign(issuer_key, p, (size_t)tbs_len, sig, sizeof(sig), &sig_len);
	if (rc != HERR_OK)
		goto out;

	tp = tail + sizeof(tail);
	tail_len = write_sig(&tp, tail, sig, sig_len);
	if (tail_len < 0) {
		rc = ca_mbedtls_fail(__func__, "write signature", tail_len);
		goto out;
	}
	memcpy(tbs_end, tp, (size_t)tail_len);
	ret = ca_der_write_header(&p, buf, (size_t)tbs_len + (size_t)tail_len,
			   MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
	if (ret < 0) {
		rc = ca_mbedtls_fail(__func__, "write CertificateList", ret);
		goto out;
	}
	rc = der_to_pem(p, (size_t)(tbs_end + tail_len - p), pem);
out:
	/* Nothing here is secret: the key never left ca_key_sign, and a CRL is public. */
	free(buf);
	return rc;
}
