#include "ca/cert.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>

#include "ca/der.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/rng.h"

#define CERT_PEM_MAX 4096
#define CERT_FILE_MAX 65536
/* Certificates start a little in the past so a device whose clock lags accepts them at once. */
#define BACKDATE_S 300

struct ca_cert {
	mbedtls_x509_crt crt;
};

const mbedtls_x509_crt *ca_cert_crt(const struct ca_cert *cert)
{
	return &cert->crt;
}

/* 1 if the first n bytes of s are ASCII letters, digits, or one of extra. Plain ASCII ranges, not
 * isalnum(): the answer must not depend on the locale. */
static int only_chars(const char *s, size_t n, const char *extra)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c != '\0' && strchr(extra, c))))
			return 0;
	}
	return 1;
}

int ca_valid_id(const char *id)
{
	size_t n = strnlen(id, 65);

	return n >= 1 && n <= 64 && only_chars(id, n, "_-");
}

/* A DNS name we are willing to put in a SAN (and in a subject string, so no ',' '=' '\'). */
static int valid_dns_name(const char *name)
{
	size_t n = strnlen(name, 254);

	if (n == 0 || n > 253 || name[0] == '.' || name[0] == '-' || name[n - 1] == '.')
		return 0;
	return only_chars(name, n, ".-");
}

int ca_valid_san(const char *name)
{
	unsigned char a[16];

	return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1 ||
	       valid_dns_name(name);
}

/* GeneralNames ::= SEQUENCE OF GeneralName; dNSName [2] IA5String, iPAddress [7] OCTET STRING. */
static int write_sans(unsigned char **p, unsigned char *start, const char *const *sans, size_t count)
{
	size_t i = count;
	int ret, len = 0;

	while (i-- > 0) {
		unsigned char addr[16];
		size_t alen = 0;
		unsigned char tag;
		int n;

		if (inet_pton(AF_INET, sans[i], addr) == 1) {
			alen = 4;
		} else if (inet_pton(AF_INET6, sans[i], addr) == 1) {
			alen = 16;
		}
		if (alen > 0) {
			n = mbedtls_asn1_write_raw_buffer(p, start, addr, alen);
			tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7;
		} else {
			n = mbedtls_asn1_write_raw_buffer(p, start, (const unsigned char *)sans[i],
							  strlen(sans[i]));
			tag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2;
		}
		if (n < 0)
			return n;
		ret = ca_der_write_header(p, start, (size_t)n, tag);
		if (ret < 0)
			return ret;
		len += n + ret;
	}
	ret = ca_der_write_header(p, start, (size_t)len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
	if (ret < 0)
		return ret;
	return len + ret;
}

/* ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId, here exactly one. */
static int write_eku(unsigned char **p, unsigned char *start, const char *oid, size_t oid_len)
{
	int ret, len;

	len = mbedtls_asn1_write_oid(p, start, oid, oid_len);
	if (len < 0)
		return len;
	ret = ca_der_write_header(p, start, (size_t)len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
	if (ret < 0)
		return ret;
	return len + ret;
}

/* A positive serial of 16 random bytes with the top bit clear and the first byte non-zero, so its
 * DER form is always 16 bytes and it carries 119+ bits of randomness (CA/B Forum asks for 64). */
static enum herr random_serial(mbedtls_mpi *serial)
{
	unsigned char b[16];
	enum herr rc;

	do {
		rc = rng_bytes(b, sizeof(b));
		if (rc != HERR_OK)
			return rc;
		b[0] &= 0x7f;
	} while (b[0] == 0);
	if (mbedtls_mpi_read_binary(serial, b, sizeof(b)) != 0)
		return HERR_NOMEM;
	return HERR_OK;
}

static enum herr set_profile(mbedtls_x509write_cert *w, const struct ca_cert_request *req)
{
	unsigned char buf[1024], *p = buf + sizeof(buf);
	const char *what = "extensions";
	int ret = 0, len;

	switch (req->kind) {
	case CA_CERT_ROOT:
	case CA_CERT_ISSUING:
		what = "basicConstraints";
		ret = mbedtls_x509write_crt_set_basic_constraints(w, 1,
			req->kind == CA_CERT_ISSUING ? 0 : -1);
		if (ret != 0)
			break;
		what = "keyUsage";
		ret = mbedtls_x509write_crt_set_key_usage(w,
			MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN);
		break;
	case CA_CERT_ENDPOINT:
	case CA_CERT_DEVICE:
		what = "basicConstraints";
		ret = mbedtls_x509write_crt_set_basic_constraints(w, 0, -1);
		if (ret != 0)
			break;
		what = "keyUsage";
		ret = mbedtls_x509write_crt_set_key_usage(w, MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
		if (ret != 0)
			break;
		what = "extKeyUsage";
		if (req->kind == CA_CERT_ENDPOINT)
			len = write_eku(&p, buf, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH));
		else
			len = write_eku(&p, buf, MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH));
		if (len < 0) {
			ret = len;
			break;
		}
		ret = mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_EXTENDED_KEY_USAGE,
			MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0, p, (size_t)len);
		if (ret != 0 || req->kind != CA_CERT_ENDPOINT)
			break;
		what = "subjectAltName";
		p = buf + sizeof(buf);
		len = write_sans(&p, buf, req->sans, req->san_count);
		if (len < 0) {
			ret = len;
			break;
		}
		ret = mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_SUBJECT_ALT_NAME,
			MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, p, (size_t)len);
		break;
	}
	if (ret != 0)
		return ca_mbedtls_fail(__func__, what, ret);
	return HERR_OK;
}

static enum herr check_request(const struct ca_cert_request *req, const struct ca_cert *issuer_cert)
{
	size_t i;

	if (!req->common_name || req->days == 0 || req->days > 36500 || !req->subject_spki) {
		log_err("incomplete certificate request");
		return HERR_INVALID;
	}
	if ((req->kind == CA_CERT_ROOT) != (issuer_cert == NULL)) {
		log_err("only the root certificate is self-signed");
		return HERR_INVALID;
	}
	if (req->kind == CA_CERT_DEVICE && !ca_valid_id(req->common_name)) {
		log_err("device id must match [A-Za-z0-9_-]{1,64}");
		return HERR_INVALID;
	}
	if (req->kind == CA_CERT_ENDPOINT) {
		if (req->san_count == 0 || req->san_count > CA_MAX_SANS) {
			log_err("an endpoint certificate needs 1 to %d names", CA_MAX_SANS);
			return HERR_INVALID;
		}
		for (i = 0; i < req->san_count; i++) {
			if (!ca_valid_san(req->sans[i])) {
				log_err("'%s' is neither a DNS name nor an IP address", req->sans[i]);
				return HERR_INVALID;
			}
		}
	}
	/* The CN goes into mbedTLS's "CN=...,O=..." string syntax: no separators or escapes. */
	if (strpbrk(req->common_name, ",=\\+\"<>;") || strlen(req->common_name) > 64) {
		log_err("common name '%.64s' has characters or a length not allowed", req->common_name);
		return HERR_INVALID;
	}
	return HERR_OK;
}

enum herr ca_cert_issue(const struct ca_cert_request *req, struct ca_key *issuer_key,
			const struct ca_cert *issuer_cert, char **pem, struct ca_cert_info *info)
{
	char subject[160], issuer[256], from[15], until[15];
	unsigned char *buf = NULL;
	struct ca_cert *parsed = NULL;
	mbedtls_pk_context subject_pk;
	mbedtls_x509write_cert w;
	mbedtls_mpi serial;
	int64_t now = (int64_t)time(NULL);
	enum herr rc;
	int ret;

	*pem = NULL;
	mbedtls_x509write_crt_init(&w);
	mbedtls_pk_init(&subject_pk);
	mbedtls_mpi_init(&serial);

	rc = check_request(req, issuer_cert);
	if (rc != HERR_OK)
		goto out;
	ret = mbedtls_pk_parse_public_key(&subject_pk, req->subject_spki, req->subject_spki_len);
	if (ret != 0) {
		rc = ca_mbedtls_fail(__func__, "subject public key", ret);
		goto out;
	}
	/* A device's subject is its opaque id alone: in TLS 1.2 it crosses the wire in clear. */
	if (req->kind == CA_CERT_DEVICE)
		rc = fs_path(subject, sizeof(subject), "CN=%s", req->common_name);
	else
		rc = fs_path(subject, sizeof(subject), "CN=%s,O=hearth", req->common_name);
	if (rc != HERR_OK)
		goto out;
	if (issuer_cert) {
		ret = mbedtls_x509_dn_gets(issuer, sizeof(issuer), &issuer_cert->crt.subject);
		if (ret < 0) {
			rc = ca_mbedtls_fail(__func__, "issuer name", ret);
			goto out;
		}
		if (!ca_cert_matches_key(issuer_cert, issuer_key)) {
			log_err("issuer key does not match issuer certificate");
			rc = HERR_INVALID;
			goto out;
		}
	} else {
		uint8_t own[CA_SPKI_MAX];
		size_t own_len = 0;

		/* Self-signed: the signing key must be the subject's own, or the root cannot verify. */
		rc = ca_key_spki(issuer_key, own, sizeof(own), &own_len);
		if (rc != HERR_OK)
			goto out;
		if (own_len != req->subject_spki_len || memcmp(own, req->subject_spki, own_len) != 0) {
			log_err("a root certificate must be signed with its own key");
			rc = HERR_INVALID;
			goto out;
		}
		memcpy(issuer, subject, sizeof(subject));
	}
	rc = random_serial(&serial);
	if (rc != HERR_OK)
		goto out;
	ca_time_string(now - BACKDATE_S, from);
	ca_time_string(now + (int64_t)req->days * 86400, until);

	mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&w, &subject_pk);
	mbedtls_x509write_crt_set_issuer_key(&w, ca_key_pk(issuer_key));
	rc = HERR_CRYPTO;
	if ((ret = mbedtls_x509write_crt_set_serial(&w, &serial)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_validity(&w, from, until)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_subject_name(&w, subject)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_issuer_name(&w, issuer)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_subject_key_identifier(&w)) != 0 ||
	    (ret = mbedtls_x509write_crt_set_authority_key_identifier(&w)) != 0) {
		ca_mbedtls_fail(__func__, "certificate fields", ret);
		goto out;
	}
	rc = set_profile(&w, req);
	if (rc != HERR_OK)
		goto out;
	buf = malloc(CERT_PEM_MAX);
	if (!buf) {
		rc = HERR_NOMEM;
		goto out;
	}
	ret = mbedtls_x509write_crt_pem(&w, buf, CERT_PEM_MAX, rng_callback, NULL);
	if (ret != 0) {
		rc = ca_mbedtls_fail(__func__, "sign certificate", ret);
		goto out;
	}
	/* Read our own output back: it proves the encoding parses and gives the facts to record. */
	rc = ca_cert_parse(buf, strlen((char *)buf), &parsed);
	if (rc != HERR_OK)
		goto out;
	if (info)
		ca_cert_get_info(parsed, info);
	*pem = (char *)buf;
	buf = NULL; /* ownership passed */
	rc = HERR_OK;
out:
	ca_cert_free(parsed);
	free(buf);
	mbedtls_mpi_free(&serial);
	mbedtls_pk_free(&subject_pk);
	mbedtls_x509write_crt_free(&w);
	return rc;
}

enum herr ca_cert_parse(const uint8_t *pem, size_t len, struct ca_cert **out)
{
	struct ca_cert *cert;
	uint8_t *copy;
	int ret;

	*out = NULL;
	if (len == 0 || len > CERT_FILE_MAX)
		return len == 0 ? HERR_INVALID : HERR_TOOBIG;
	cert = calloc(1, sizeof(*cert));
	copy = malloc(len + 1);
	if (!cert || !copy) {
		free(cert);
		free(copy);
		return HERR_NOMEM;
	}
	memcpy(copy, pem, len);
	copy[len] = '\0';
	mbedtls_x509_crt_init(&cert->crt);
	/* A chain file parses into a list; the first certificate (its leaf) is the one we describe. */
	ret = mbedtls_x509_crt_parse(&cert->crt, copy, len + 1);
	free(copy);
	if (ret < 0 || cert->crt.version == 0) {
		ca_cert_free(cert);
		return ca_mbedtls_fail(__func__, "parse certificate", ret < 0 ? ret : -1);
	}
	*out = cert;
	return HERR_OK;
}

enum herr ca_cert_load(const char *path, struct ca_cert **out)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	enum herr rc;

	*out = NULL;
	rc = fs_read_file(path, CERT_FILE_MAX, &pem, &len);
	if (rc != HERR_OK) {
		log_err("%s: cannot read certificate: %s", path, herr_str(rc));
		return rc;
	}
	rc = ca_cert_parse(pem, len, out);
	if (rc != HERR_OK)
		log_err("%s: not a certificate", path);
	free(pem);
	return rc;
}

void ca_cert_free(struct ca_cert *cert)
{
	if (!cert)
		return;
	mbedtls_x509_crt_free(&cert->crt);
	free(cert);
}

void ca_serial_hex(const uint8_t *serial, size_t len, char hex[CA_SERIAL_HEX_LEN])
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i, j = 0;

	/* Skip DER's leading zero padding, as openssl does when it prints a serial. */
	for (i = 0; i + 1 < len && serial[i] == 0; i++)
		;
	for (; i < len && j + 2 < CA_SERIAL_HEX_LEN; i++) {
		hex[j++] = digits[serial[i] >> 4];
		hex[j++] = digits[serial[i] & 15];
	}
	hex[j] = '\0';
}

void ca_cert_get_info(const struct ca_cert *cert, struct ca_cert_info *info)
{
	const mbedtls_x509_crt *crt = &cert->crt;
	uint8_t spki[CA_SPKI_MAX];
	size_t spki_len = 0;

	memset(info, 0, sizeof(*info));
	ca_serial_hex(crt->serial.p, crt->serial.len, info->serial_hex);
	if (mbedtls_x509_dn_gets(info->subject, sizeof(info->subject), &crt->subject) < 0)
		info->subject[0] = '\0';
	ca_sha256_hex(crt->raw.p, crt->raw.len, info->fingerprint);
	if (ca_cert_spki(cert, spki, sizeof(spki), &spki_len) == HERR_OK)
		ca_pin_from_spki(spki, spki_len, info->pin);
	info->not_before = ca_x509_time_to_unix(&crt->valid_from);
	info->not_after = ca_x509_time_to_unix(&crt->valid_to);
	info->is_ca = crt->ca_istrue;
}

enum herr ca_cert_spki(const struct ca_cert *cert, uint8_t *buf, size_t size, size_t *len)
{
	int ret;

	ret = mbedtls_pk_write_pubkey_der((mbedtls_pk_context *)&cert->crt.pk, buf, size);
	if (ret < 0)
		return ca_mbedtls_fail(__func__, "write public key", ret);
	memmove(buf, buf + size - (size_t)ret, (size_t)ret);
	*len = (size_t)ret;
	return HERR_OK;
}

int ca_cert_matches_key(const struct ca_cert *cert, const struct ca_key *key)
{
	uint8_t a[CA_SPKI_MAX], b[CA_SPKI_MAX];
	size_t alen = 0, blen = 0;

	if (ca_cert_spki(cert, a, sizeof(a), &alen) != HERR_OK ||
	    ca_key_spki(key, b, sizeof(b), &blen) != HERR_OK)
		return 0;
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* The value (OCTET STRING contents) of the extension oid in cert, or NULL. mbedTLS 2.28 keeps the
 * raw Extensions but parses only DNS names out of a subjectAltName. */
static const unsigned char *find_extension(const mbedtls_x509_crt *crt, const char *oid, size_t oid_len,
					   size_t *len)
{
	unsigned char *p = crt->v3_ext.p, *end = crt->v3_ext.p + crt->v3_ext.len;
	size_t n;

	if (!p || mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
		return NULL;
	end = p + n;
	while (p < end) {
		unsigned char *ext_end, *id;
		size_t id_len;
		int critical = 0;

		if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
			return NULL;
		ext_end = p + n;
		if (mbedtls_asn1_get_tag(&p, ext_end, &id_len, MBEDTLS_ASN1_OID) != 0)
			return NULL;
		id = p;
		p += id_len;
		(void)mbedtls_asn1_get_bool(&p, ext_end, &critical);
		if (mbedtls_asn1_get_tag(&p, ext_end, &n, MBEDTLS_ASN1_OCTET_STRING) != 0)
			return NULL;
		if (id_len == oid_len && memcmp(id, oid, oid_len) == 0) {
			*len = n;
			return p;
		}
		p = ext_end;
	}
	return NULL;
}

enum herr ca_cert_names(const struct ca_cert *cert, char names[][CA_NAME_LEN], size_t max, size_t *count)
{
	const unsigned char *v;
	unsigned char *p, *end;
	size_t len = 0, n;

	*count = 0;
	v = find_extension(&cert->crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
			   MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), &len);
	if (!v)
		return HERR_NOTFOUND;
	p = (unsigned char *)v;
	end = p + len;
	if (mbedtls_asn1_get_tag(&p, end, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
		return HERR_INVALID;
	end = p + n;
	while (p < end && *count < max) {
		unsigned char tag = *p++;
		char *out = names[*count];

		if (mbedtls_asn1_get_len(&p, end, &n) != 0)
			return HERR_INVALID;
		if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2) && n < CA_NAME_LEN) {
			memcpy(out, p, n);
			out[n] = '\0';
			(*count)++;
		} else if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && (n == 4 || n == 16)) {
			if (inet_ntop(n == 4 ? AF_INET : AF_INET6, p, out, CA_NAME_LEN))
				(*count)++;
		}
		p += n;
	}
	return *count ? HERR_OK : HERR_NOTFOUND;
}

enum herr ca_cert_renew_endpoint(const struct ca_cert *old, const uint8_t *new_spki, size_t new_spki_len,
				 struct ca_key *issuer_key, const struct ca_cert *issuer_cert, unsigned days,
				 char **pem, struct ca_cert_info *info)
{
	char names[CA_MAX_SANS][CA_NAME_LEN], cn[CA_NAME_LEN] = "";
	const char *sans[CA_MAX_SANS];
	const mbedtls_x509_name *n;
	uint8_t spki[CA_SPKI_MAX];
	size_t i, count = 0, spki_len = 0;
	enum herr rc;

	*pem = NULL;
	rc = ca_cert_names(old, names, CA_MAX_SANS, &count);
	if (rc != HERR_OK) {
		log_err("the endpoint certificate has no usable subjectAltName");
		return rc;
	}
	for (n = &old->crt.subject; n; n = n->next) {
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 && n->val.len < sizeof(cn)) {
			memcpy(cn, n->val.p, n->val.len);
			cn[n->val.len] = '\0';
		}
	}
	for (i = 0; i < count; i++)
		sans[i] = names[i];
	if (new_spki) {
		if (new_spki_len > sizeof(spki))
			return HERR_TOOBIG;
		memcpy(spki, new_spki, new_spki_len);
		spki_len = new_spki_len;
	} else {
		rc = ca_cert_spki(old, spki, sizeof(spki), &spki_len);
		if (rc != HERR_OK)
			return rc;
	}
	/* Same key unless a pin rotation moves it, same names, new serial and validity. */
	struct ca_cert_request req = {
		.kind = CA_CERT_ENDPOINT, .common_name = cn[0] ? cn : sans[0], .sans = sans,
		.san_count = count, .days = days, .subject_spki = spki, .subject_spki_len = spki_len,
	};
	return ca_cert_issue(&req, issuer_key, issuer_cert, pem, info);
}
