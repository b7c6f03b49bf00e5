#include "ca/csr.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_csr.h>

#include "ca/der.h"

#define PEM_BEGIN         "-----BEGIN "
#define PEM_BEGIN_CSR     "-----BEGIN CERTIFICATE REQUEST-----"
#define PEM_BEGIN_NEW_CSR "-----BEGIN NEW CERTIFICATE REQUEST-----"

#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 4096

#define TAG_SEQUENCE (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)
#define TAG_SET      (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SET)
#define TAG_ATTRS    (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_CONTEXT_SPECIFIC | 0)

static enum herr refuse(char *why, size_t why_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Every refusal goes through here so why is always one bounded, NUL-terminated line. */
static enum herr refuse(char *why, size_t why_size, const char *fmt, ...)
{
	va_list ap;

	if (why && why_size > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_size, fmt, ap);
		va_end(ap);
	}
	return HERR_INVALID;
}

static int contains(const uint8_t *data, size_t len, const char *s)
{
	return memmem(data, len, s, strlen(s)) != NULL;
}

/* The label of the first PEM block (e.g. "CERTIFICATE"), keeping only characters a label may have
 * so that client bytes cannot break the one-line reason. */
static void pem_label(const uint8_t *data, size_t len, char *label, size_t size)
{
	const uint8_t *p = memmem(data, len, PEM_BEGIN, strlen(PEM_BEGIN));
	const uint8_t *end = data + len;
	size_t n = 0;

	if (p) {
		for (p += strlen(PEM_BEGIN); p < end && n + 1 < size; p++) {
			if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == ' '))
				break;
			label[n++] = (char)*p;
		}
	}
	label[n] = '\0';
}

static enum herr parse(const uint8_t *data, size_t len, mbedtls_x509_csr *csr,
		       char *why, size_t why_size)
{
	unsigned char *copy = NULL;
	char text[160];
	char label[32];
	enum herr rc;
	int ret;

	if (data[0] == TAG_SEQUENCE) {
		/* Straight to the DER parser: mbedtls_x509_csr_parse would go looking for a PEM
		 * header inside binary input if it happened to end in a zero byte. */
		ret = mbedtls_x509_csr_parse_der(csr, data, len);
	} else if (contains(data, len, PEM_BEGIN_CSR) || contains(data, len, PEM_BEGIN_NEW_CSR)) {
		/* mbedTLS only looks for PEM in a buffer whose last counted byte is a NUL. */
		copy = malloc(len + 1);
		if (!copy)
			return HERR_NOMEM;
		memcpy(copy, data, len);
		copy[len] = '\0';
		ret = mbedtls_x509_csr_parse(csr, copy, len + 1);
	} else if (contains(data, len, PEM_BEGIN)) {
		pem_label(data, len, label, sizeof(label));
		return refuse(why, why_size, "PEM block \"%s\" is not a certificate request", label);
	} else {
		return refuse(why, why_size, "input is neither a PEM nor a DER certificate request");
	}

	rc = HERR_OK;
	/* mbedTLS adds a low-level (ASN.1) code to a high-level one; either may be the allocation. */
	if (ret == MBEDTLS_ERR_X509_ALLOC_FAILED || ret == MBEDTLS_ERR_PEM_ALLOC_FAILED ||
	    ret == MBEDTLS_ERR_PK_ALLOC_FAILED || (-ret & 0x7f) == -MBEDTLS_ERR_ASN1_ALLOC_FAILED) {
		rc = HERR_NOMEM;
	} else if (ret == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG) {
		rc = refuse(why, why_size, "CSR key algorithm is not supported; use EC P-256 or RSA");
	} else if (ret == MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG) {
		rc = refuse(why, why_size, "CSR signature algorithm is not supported");
	} else if (ret != 0) {
		mbedtls_strerror(ret, text, sizeof(text));
		rc = refuse(why, why_size, "CSR does not parse: %s", text);
	}
	free(copy);
	return rc;
}

static enum herr check_key(const mbedtls_pk_context *pk, struct ca_csr *out,
			   char *why, size_t why_size)
{
	const mbedtls_ecp_curve_info *curve;
	mbedtls_ecp_group_id grp_id;
	size_t bits;

	switch (mbedtls_pk_get_type(pk)) {
	case MBEDTLS_PK_ECKEY:
		grp_id = mbedtls_pk_ec(*pk)->grp.id;
		if (grp_id != MBEDTLS_ECP_DP_SECP256R1) {
			curve = mbedtls_ecp_curve_info_from_grp_id(grp_id);
			return refuse(why, why_size, "EC key on curve %s is not accepted; use P-256",
				      curve ? curve->name : "(unnamed)");
		}
		snprintf(out->key_desc, sizeof(out->key_desc), "EC P-256");
		return HERR_OK;
	case MBEDTLS_PK_RSA:
		bits = mbedtls_pk_get_bitlen(pk);
		if (bits < RSA_MIN_BITS)
			return refuse(why, why_size, "RSA key of %zu bits is too short (minimum %d)",
				      bits, RSA_MIN_BITS);
		/* The upper bound keeps its SubjectPublicKeyInfo inside CA_SPKI_MAX. */
		if (bits > RSA_MAX_BITS)
			return refuse(why, why_size, "RSA key of %zu bits is too long (maximum %d)",
				      bits, RSA_MAX_BITS);
		snprintf(out->key_desc, sizeof(out->key_desc), "RSA %zu", bits);
		return HERR_OK;
	default:
		return refuse(why, why_size, "%s key is not accepted; use EC P-256 or RSA 2048..4096",
			      mbedtls_pk_get_name(pk));
	}
}

/* mbedTLS 2.28 parses the self-signature but never checks it; without the check a CSR proves
 * nothing about who holds the private key. */
static enum herr check_signature(mbedtls_x509_csr *csr, char *why, size_t why_size)
{
	unsigned char hash[MBEDTLS_MD_MAX_SIZE];
	const mbedtls_md_info_t *md;
	int ret;

	md = mbedtls_md_info_from_type(csr->sig_md);
	switch (csr->sig_md) {
	case MBEDTLS_MD_SHA256:
	case MBEDTLS_MD_SHA384:
	case MBEDTLS_MD_SHA512:
		break;
	default:
		return refuse(why, why_size, "CSR signature hash %s is not accepted; use SHA-256 or stronger",
			      md ? mbedtls_md_get_name(md) : "(none)");
	}
	if (!md)
		return ca_mbedtls_fail(__func__, "mbedtls_md_info_from_type",
				       MBEDTLS_ERR_MD_FEATURE_UNAVAILABLE);
	ret = mbedtls_md(md, csr->cri.p, csr->cri.len, hash);
	if (ret != 0)
		return ca_mbedtls_fail(__func__, "mbedtls_md", ret);
	ret = mbedtls_pk_verify_ext(csr->sig_pk, csr->sig_opts, &csr->pk, csr->sig_md,
				    hash, mbedtls_md_get_size(md), csr->sig.p, csr->sig.len);
	if (ret == MBEDTLS_ERR_PK_TYPE_MISMATCH)
		return refuse(why, why_size, "CSR signature algorithm does not match its key");
	if (ret != 0)
		return refuse(why, why_size, "CSR signature does not verify");
	return HERR_OK;
}

static enum herr malformed(char *why, size_t why_size, const char *what)
{
	return refuse(why, why_size, "CSR %s is malformed", what);
}

/* BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } */
static enum herr check_basic_constraints(unsigned char *p, const unsigned char *end,
					 char *why, size_t why_size)
{
	size_t len;
	int ca = 0;

	if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQUENCE) != 0 || p + len != end)
		return malformed(why, why_size, "basicConstraints");
	/* Any non-zero octet counts as TRUE, so a sloppy encoding cannot sneak CA:TRUE past us. */
	if (p < end && *p == MBEDTLS_ASN1_BOOLEAN && mbedtls_asn1_get_bool(&p, end, &ca) != 0)
		return malformed(why, why_size, "basicConstraints");
	if (p < end) {
		if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_INTEGER) != 0)
			return malformed(why, why_size, "basicConstraints");
		p += len;
	}
	if (p != end)
		return malformed(why, why_size, "basicConstraints");
	if (ca)
		return refuse(why, why_size,
			      "CSR asks to be a certificate authority (basicConstraints CA:TRUE)");
	return HERR_OK;
}

/* Extensions ::= SEQUENCE OF Extension
 * Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
static enum herr check_extensions(unsigned char **p, const unsigned char *end,
				  char *why, size_t why_size)
{
	const unsigned char *exts_end, *ext_end;
	mbedtls_asn1_buf oid;
	enum herr rc;
	int critical;
	size_t len;

	if (mbedtls_asn1_get_tag(p, end, &len, TAG_SEQUENCE) != 0)
		return malformed(why, why_size, "extension request");
	exts_end = *p + len;
	while (*p < exts_end) {
		if (mbedtls_asn1_get_tag(p, exts_end, &len, TAG_SEQUENCE) != 0)
			return malformed(why, why_size, "extension request");
		ext_end = *p + len;
		if (mbedtls_asn1_get_tag(p, ext_end, &oid.len, MBEDTLS_ASN1_OID) != 0)
			return malformed(why, why_size, "extension request");
		oid.tag = MBEDTLS_ASN1_OID;
		oid.p = *p;
		*p += oid.len;
		/* Criticality is parsed only to reach the value; the CA profile decides anyway. */
		if (*p < ext_end && **p == MBEDTLS_ASN1_BOOLEAN &&
		    mbedtls_asn1_get_bool(p, ext_end, &critical) != 0)
			return malformed(why, why_size, "extension request");
		if (mbedtls_asn1_get_tag(p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0 ||
		    *p + len != ext_end)
			return malformed(why, why_size, "extension request");
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_BASIC_CONSTRAINTS, &oid) == 0) {
			rc = check_basic_constraints(*p, ext_end, why, why_size);
			if (rc != HERR_OK)
				return rc;
		}
		*p += len;
	}
	return HERR_OK;
}

/* Attribute ::= SEQUENCE { type OID, values SET OF ANY } */
static enum herr check_attribute(unsigned char **p, const unsigned char *end,
				 char *why, size_t why_size)
{
	const unsigned char *attr_end;
	mbedtls_asn1_buf oid;
	enum herr rc;
	size_t len;

	if (mbedtls_asn1_get_tag(p, end, &len, TAG_SEQUENCE) != 0)
		return malformed(why, why_size, "attribute");
	attr_end = *p + len;
	if (mbedtls_asn1_get_tag(p, attr_end, &oid.len, MBEDTLS_ASN1_OID) != 0)
		return malformed(why, why_size, "attribute");
	oid.tag = MBEDTLS_ASN1_OID;
	oid.p = *p;
	*p += oid.len;
	if (mbedtls_asn1_get_tag(p, attr_end, &len, TAG_SET) != 0 || *p + len != attr_end)
		return malformed(why, why_size, "attribute");
	if (MBEDTLS_OID_CMP(MBEDTLS_OID_PKCS9_CSR_EXT_REQ, &oid) != 0) {
		/* challengePassword and friends mean nothing to us. */
		*p += len;
		return HERR_OK;
	}
	while (*p < attr_end) {
		rc = check_extensions(p, attr_end, why, why_size);
		if (rc != HERR_OK)
			return rc;
	}
	return HERR_OK;
}

/* mbedTLS 2.28 skips the attributes without looking, so walk them here.
 * CertificationRequestInfo ::= SEQUENCE { version INTEGER, subject Name,
 *     subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute } */
static enum herr check_attributes(const mbedtls_x509_csr *csr, char *why, size_t why_size)
{
	unsigned char *p = csr->cri.p;
	const unsigned char *end = p + csr->cri.len;
	enum herr rc;
	size_t len;

	if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQUENCE) != 0)
		return malformed(why, why_size, "request info");
	end = p + len;
	if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_INTEGER) != 0)
		return malformed(why, why_size, "request info");
	p += len;
	if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQUENCE) != 0)
		return malformed(why, why_size, "request info");
	p += len;
	if (mbedtls_asn1_get_tag(&p, end, &len, TAG_SEQUENCE) != 0)
		return malformed(why, why_size, "request info");
	p += len;
	/* mbedTLS does not notice bytes between the attributes and the end of the request info. */
	if (mbedtls_asn1_get_tag(&p, end, &len, TAG_ATTRS) != 0 || p + len != end)
		return malformed(why, why_size, "attribute set");
	while (p < end) {
		rc = check_attribute(&p, end, why, why_size);
		if (rc != HERR_OK)
			return rc;
	}
	return HERR_OK;
}

static enum herr write_spki(mbedtls_pk_context *pk, struct ca_csr *out)
{
	int ret;

	ret = mbedtls_pk_write_pubkey_der(pk, out->spki, sizeof(out->spki));
	if (ret < 0)
		return ca_mbedtls_fail(__func__, "mbedtls_pk_write_pubkey_der", ret);
	/* mbedTLS writes DER backwards from the end of the buffer. */
	memmove(out->spki, out->spki + sizeof(out->spki) - (size_t)ret, (size_t)ret);
	out->spki_len = (size_t)ret;
	return HERR_OK;
}

enum herr ca_csr_check(const uint8_t *data, size_t len, struct ca_csr *out,
		       char *why, size_t why_size)
{
	mbedtls_x509_csr csr;
	enum herr rc;

	if (why && why_size > 0)
		why[0] = '\0';
	if (!out)
		return refuse(why, why_size, "no place for the result");
	memset(out, 0, sizeof(*out));
	mbedtls_x509_csr_init(&csr);

	if (len > CA_CSR_MAX) {
		refuse(why, why_size, "CSR of %zu bytes is too large (maximum %d)", len, CA_CSR_MAX);
		rc = HERR_TOOBIG;
		goto out;
	}
	if (len == 0 || !data) {
		rc = refuse(why, why_size, "CSR is empty");
		goto out;
	}
	rc = parse(data, len, &csr, why, why_size);
	if (rc != HERR_OK)
		goto out;
	rc = check_key(&csr.pk, out, why, why_size);
	if (rc != HERR_OK)
		goto out;
	/* The attribute walk is bounded parsing like mbedTLS's own, so it may see the bytes before the
	 * signature vouches for them; in this order a fuzzer reaches it without forging signatures. */
	rc = check_attributes(&csr, why, why_size);
	if (rc != HERR_OK)
		goto out;
	rc = check_signature(&csr, why, why_size);
	if (rc != HERR_OK)
		goto out;
	rc = write_spki(&csr.pk, out);
out:
	mbedtls_x509_csr_free(&csr);
	if (rc != HERR_OK) {
		memset(out, 0, sizeof(*out));
		/* Out of memory and library failures are not the request's fault but still need a line. */
		if (why && why_size > 0 && why[0] == '\0')
			refuse(why, why_size, "%s", herr_str(rc));
	}
	return rc;
}
