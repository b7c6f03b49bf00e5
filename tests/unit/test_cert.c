/* Unit tests of ca/key and ca/cert: keys are P-256 only, private on disk and never overwritten;
 * signatures verify; certificates carry the profile of their kind, parse and chain-verify with
 * mbedTLS itself, and requests that break a rule are refused. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/bignum.h>
#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>

#include "ca/cert.h"
#include "ca/der.h"
#include "ca/key.h"
#include "common/fsutil.h"
#include "common/rng.h"
#include "tests/unit/unit.h"

/* --- helpers ---------------------------------------------------------------------------------- */

static void spki_of(const struct ca_key *key, uint8_t *spki, size_t *len)
{
	ck_assert_int_eq(ca_key_spki(key, spki, CA_SPKI_MAX, len), HERR_OK);
	ck_assert_uint_gt(*len, 0);
}

static void parse_crt(const char *pem, mbedtls_x509_crt *crt)
{
	int ret;

	mbedtls_x509_crt_init(crt);
	ret = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem, strlen(pem) + 1);
	ck_assert_msg(ret == 0, "mbedtls_x509_crt_parse: -0x%04x", (unsigned)-ret);
	ck_assert_int_eq(crt->version, 3);
}

static void sha256_hex(const unsigned char *data, size_t len, char out[65])
{
	unsigned char h[32];
	size_t i;

	ck_assert_int_eq(mbedtls_sha256_ret(data, len, h, 0), 0);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int ext_critical(const mbedtls_x509_crt *crt, const char *oid, size_t oid_len)
{
	unsigned char *val = NULL;
	size_t len = 0;
	int critical = -1;

	ck_assert_int_eq(unit_find_ext(&crt->v3_ext, oid, oid_len, &val, &len, &critical), 0);
	return critical;
}

/* Verify leaf (+ intermediate, may be NULL) against trust; returns mbedTLS's flags (0: valid). */
static uint32_t verify_flags(const char *leaf_pem, const char *inter_pem, const char *trust_pem,
			     const char *cn)
{
	mbedtls_x509_crt chain, trust;
	uint32_t flags = 0;
	int ret;

	parse_crt(leaf_pem, &chain);
	if (inter_pem)
		ck_assert_int_eq(mbedtls_x509_crt_parse(&chain, (const unsigned char *)inter_pem,
							strlen(inter_pem) + 1), 0);
	parse_crt(trust_pem, &trust);
	ret = mbedtls_x509_crt_verify(&chain, &trust, NULL, cn, &flags, NULL, NULL);
	ck_assert_msg((ret == 0) == (flags == 0), "verify returned -0x%04x with flags %08x",
		      (unsigned)-ret, (unsigned)flags);
	mbedtls_x509_crt_free(&trust);
	mbedtls_x509_crt_free(&chain);
	return flags;
}

static void write_file(const char *path, const void *data, size_t len, unsigned mode)
{
	ck_assert_int_eq(fs_write_file(path, data, len, mode, 0), HERR_OK);
}

/* --- ca/key ----------------------------------------------------------------------------------- */

START_TEST(test_key_roundtrip)
{
	uint8_t a[CA_SPKI_MAX], b[CA_SPKI_MAX];
	size_t alen = 0, blen = 0;
	struct ca_key *key = NULL, *loaded = NULL, *other = NULL;
	char path[4096];
	struct stat st;

	unit_at(path, sizeof(path), "k.key");
	ck_assert_int_eq(ca_key_generate(&key), HERR_OK);
	ck_assert_int_eq(ca_key_save(key, path), HERR_OK);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600, "mode %04o",
		      (unsigned)(st.st_mode & 07777));
	ck_assert_int_eq(ca_key_load(path, &loaded), HERR_OK);
	ck_assert_ptr_nonnull(loaded);
	spki_of(key, a, &alen);
	spki_of(loaded, b, &blen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_mem_eq(a, b, alen);
	/* Two generated keys differ. */
	ck_assert_int_eq(ca_key_generate(&other), HERR_OK);
	spki_of(other, b, &blen);
	ck_assert_msg(alen != blen || memcmp(a, b, alen) != 0, "two generated keys are equal");
	ca_key_free(other);
	ca_key_free(loaded);
	ca_key_free(key);
	ca_key_free(NULL);
}
END_TEST

START_TEST(test_key_save_no_overwrite)
{
	struct ca_key *key = NULL;
	char path[4096];
	uint8_t *data = NULL;
	size_t len = 0;

	unit_at(path, sizeof(path), "k.key");
	write_file(path, "precious", 8, 0600);
	ck_assert_int_eq(ca_key_generate(&key), HERR_OK);
	ck_assert_int_eq(ca_key_save(key, path), HERR_EXISTS);
	unit_read_file(path, 100, &data, &len);
	ck_assert_str_eq((char *)data, "precious");
	free(data);
	ca_key_free(key);
}
END_TEST

START_TEST(test_key_load_mode)
{
	static const unsigned modes[] = { 0644, 0640, 0604, 0660 };
	struct ca_key *key = NULL, *loaded = NULL;
	char path[4096];
	size_t i;

	unit_at(path, sizeof(path), "k.key");
	ck_assert_int_eq(ca_key_generate(&key), HERR_OK);
	ck_assert_int_eq(ca_key_save(key, path), HERR_OK);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		ck_assert_int_eq(chmod(path, modes[i]), 0);
		loaded = key; /* must be reset to NULL */
		ck_assert_int_eq(ca_key_load(path, &loaded), HERR_STATE);
		ck_assert_ptr_null(loaded);
	}
	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(ca_key_load(path, &loaded), HERR_OK);
	ca_key_free(loaded);
	ca_key_free(key);
}
END_TEST

START_TEST(test_key_load_garbage)
{
	static const char *const bad[] = {
		"",
		"garbage\n",
		"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
	};
	struct ca_key *loaded = NULL;
	char path[4096], name[16];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(name, sizeof(name), "bad%zu.key", i);
		unit_at(path, sizeof(path), name);
		write_file(path, bad[i], strlen(bad[i]), 0600);
		ck_assert_int_ne(ca_key_load(path, &loaded), HERR_OK);
		ck_assert_ptr_null(loaded);
	}
	/* Certificates are public and not keys. */
	unit_at(path, sizeof(path), "cert.pem");
	write_file(path, unit_pki.root_pem, strlen(unit_pki.root_pem), 0600);
	ck_assert_int_ne(ca_key_load(path, &loaded), HERR_OK);
	ck_assert_ptr_null(loaded);

	unit_at(path, sizeof(path), "missing.key");
	ck_assert_int_eq(ca_key_load(path, &loaded), HERR_NOTFOUND);
	ck_assert_ptr_null(loaded);
}
END_TEST

/* A well-formed EC key on curve grp, as PEM, made with mbedTLS directly. */
static void write_ec_key(const char *path, mbedtls_ecp_group_id grp)
{
	unsigned char pem[2048];
	mbedtls_pk_context pk;

	mbedtls_pk_init(&pk);
	ck_assert_int_eq(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
	ck_assert_int_eq(mbedtls_ecp_gen_key(grp, mbedtls_pk_ec(pk), rng_callback, NULL), 0);
	ck_assert_int_eq(mbedtls_pk_write_key_pem(&pk, pem, sizeof(pem)), 0);
	write_file(path, pem, strlen((char *)pem), 0600);
	mbedtls_pk_free(&pk);
}

START_TEST(test_key_load_wrong_curve)
{
	struct ca_key *loaded = NULL;
	char path[4096];

	unit_at(path, sizeof(path), "p384.key");
	write_ec_key(path, MBEDTLS_ECP_DP_SECP384R1);
	ck_assert_int_eq(ca_key_load(path, &loaded), HERR_INVALID);
	ck_assert_ptr_null(loaded);
#ifdef MBEDTLS_ECP_DP_SECP256K1_ENABLED
	/* Same size, another curve: the check is on the curve, not the key length. */
	unit_at(path, sizeof(path), "k256.key");
	write_ec_key(path, MBEDTLS_ECP_DP_SECP256K1);
	ck_assert_int_eq(ca_key_load(path, &loaded), HERR_INVALID);
	ck_assert_ptr_null(loaded);
#endif
	/* And the control: the same route with P-256 loads. */
	unit_at(path, sizeof(path), "p256.key");
	write_ec_key(path, MBEDTLS_ECP_DP_SECP256R1);
	ck_assert_int_eq(ca_key_load(path, &loaded), HERR_OK);
	ca_key_free(loaded);
}
END_TEST

static int verifies(const uint8_t *spki, size_t spki_len, const void *msg, size_t len,
		    const uint8_t *sig, size_t sig_len)
{
	unsigned char hash[32];
	mbedtls_pk_context pk;
	int ret;

	mbedtls_pk_init(&pk);
	ck_assert_int_eq(mbedtls_pk_parse_public_key(&pk, spki, spki_len), 0);
	ck_assert_int_eq(mbedtls_sha256_ret(msg, len, hash, 0), 0);
	ret = mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, sig_len);
	mbedtls_pk_free(&pk);
	return ret == 0;
}

START_TEST(test_key_sign)
{
	static const char msg[] = "firmware manifest v1";
	uint8_t spki[CA_SPKI_MAX], other_spki[CA_SPKI_MAX], sig[CA_SIG_MAX];
	size_t spki_len = 0, other_len = 0, sig_len = 0;
	char tampered[sizeof(msg)];
	struct ca_key *key = NULL;

	ck_assert_int_eq(ca_key_generate(&key), HERR_OK);
	spki_of(key, spki, &spki_len);
	ck_assert_int_eq(ca_key_sign(key, (const uint8_t *)msg, strlen(msg), sig, sizeof(sig),
				     &sig_len), HERR_OK);
	ck_assert_uint_gt(sig_len, 8);
	ck_assert_uint_le(sig_len, CA_SIG_MAX);
	ck_assert_int_eq(sig[0], MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
	ck_assert_msg(verifies(spki, spki_len, msg, strlen(msg), sig, sig_len),
		      "signature does not verify");

	memcpy(tampered, msg, sizeof(msg));
	tampered[0] ^= 1;
	ck_assert_msg(!verifies(spki, spki_len, tampered, strlen(tampered), sig, sig_len),
		      "signature verifies over a modified message");
	ck_assert_msg(!verifies(spki, spki_len, msg, strlen(msg) - 1, sig, sig_len),
		      "signature verifies over a truncated message");
	spki_of(unit_pki.root_key, other_spki, &other_len);
	ck_assert_msg(!verifies(other_spki, other_len, msg, strlen(msg), sig, sig_len),
		      "signature verifies under another key");

	/* Empty message is a message. */
	ck_assert_int_eq(ca_key_sign(key, (const uint8_t *)"", 0, sig, sizeof(sig), &sig_len),
			 HERR_OK);
	ck_assert(verifies(spki, spki_len, "", 0, sig, sig_len));

	/* Too small a buffer is refused, not overrun. */
	ck_assert_int_eq(ca_key_sign(key, (const uint8_t *)msg, strlen(msg), sig, CA_SIG_MAX - 1,
				     &sig_len), HERR_TOOBIG);
	ca_key_free(key);
}
END_TEST

START_TEST(test_pin)
{
	unsigned char bytes[300], hash[32], b64[64];
	char pin[CA_PIN_LEN], want[80];
	size_t i, olen = 0;

	/* Known answer: SHA-256("abc") in base64. */
	memset(pin, 'x', sizeof(pin));
	ca_pin_from_spki((const uint8_t *)"abc", 3, pin);
	ck_assert_str_eq(pin, "sha256/ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");

	/* Independently computed over fixed bytes. */
	for (i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)(i * 7 + 3);
	ck_assert_int_eq(mbedtls_sha256_ret(bytes, sizeof(bytes), hash, 0), 0);
	ck_assert_int_eq(mbedtls_base64_encode(b64, sizeof(b64), &olen, hash, sizeof(hash)), 0);
	ck_assert_uint_eq(olen, 44);
	snprintf(want, sizeof(want), "sha256/%s", (char *)b64);
	memset(pin, 'x', sizeof(pin));
	ca_pin_from_spki(bytes, sizeof(bytes), pin);
	ck_assert_str_eq(pin, want);
	ck_assert_int_eq(strncmp(pin, "sha256/", 7), 0);
	ck_assert_uint_eq(strlen(pin), 51);
}
END_TEST

/* An mbedTLS failure that says memory ran out, alone or as either part of a combined code, is
 * HERR_NOMEM (a caller may try again); any other is HERR_CRYPTO. */
START_TEST(test_mbedtls_fail_kinds)
{
	ck_assert_int_eq(ca_mbedtls_fail(__func__, "x", MBEDTLS_ERR_X509_ALLOC_FAILED), HERR_NOMEM);
	ck_assert_int_eq(ca_mbedtls_fail(__func__, "x", MBEDTLS_ERR_PK_ALLOC_FAILED), HERR_NOMEM);
	ck_assert_int_eq(ca_mbedtls_fail(__func__, "x", MBEDTLS_ERR_ECP_ALLOC_FAILED), HERR_NOMEM);
	ck_assert_int_eq(ca_mbedtls_fail(__func__, "x", MBEDTLS_ERR_MPI_ALLOC_FAILED), HERR_NOMEM);
	ck_assert_int_eq(ca_mbedtls_fail(__func__, "x", MBEDTLS_ERR_X509_INVALID_FORMAT + MBEDTLS_ERR_ASN1_ALLOC_FAILED),
			 HERR_NOMEM);
	ck_assert_int_eq(ca_mbedtls_fail(__func__, "x", MBEDTLS_ERR_PK_KEY_INVALID_FORMAT + MBEDTLS_ERR_MPI_ALLOC_FAILED),
			 HERR_NOMEM);
	ck_assert_int_eq(ca_mbedtls_fail(__func__, "x", MBEDTLS_ERR_X509_INVALID_FORMAT + MBEDTLS_ERR_ASN1_OUT_OF_DATA),
			 HERR_CRYPTO);
	ck_assert_int_eq(ca_mbedtls_fail(__func__, "x", MBEDTLS_ERR_ECP_VERIFY_FAILED), HERR_CRYPTO);
	ck_assert_int_eq(ca_mbedtls_fail(__func__, "x", MBEDTLS_ERR_X509_CERT_VERIFY_FAILED), HERR_CRYPTO);
	ck_assert_int_eq(ca_mbedtls_fail(__func__, "x", -1), HERR_CRYPTO);
}
END_TEST

START_TEST(test_sha256_hex)
{
	char hex[CA_HEX256_LEN];

	memset(hex, 'x', sizeof(hex));
	ca_sha256_hex((const uint8_t *)"abc", 3, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ca_sha256_hex((const uint8_t *)"", 0, hex);
	ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

/* --- ca/cert: profiles ------------------------------------------------------------------------ */

/* What every issued certificate must satisfy: validity, serial, and the info that came with it. */
static void check_common(const mbedtls_x509_crt *crt, const struct ca_cert_info *info,
			 unsigned days, int64_t now, const struct ca_key *subject)
{
	static const char upper[] = "0123456789ABCDEF";
	uint8_t spki[CA_SPKI_MAX];
	size_t spki_len = 0, i;
	char fp[65], serial[41], pin[CA_PIN_LEN];
	int64_t nb = unit_x509_time_to_unix(&crt->valid_from), na = unit_x509_time_to_unix(&crt->valid_to);

	ck_assert_msg(na - now >= (int64_t)days * 86400 - 60 && na - now <= (int64_t)days * 86400 + 60,
		      "not_after - now = %lld, want %u days", (long long)(na - now), days);
	ck_assert_msg(nb <= now && nb >= now - 3600, "not_before %lld, now %lld", (long long)nb,
		      (long long)now);
	ck_assert_int_eq(info->not_before, nb);
	ck_assert_int_eq(info->not_after, na);

	ck_assert_uint_eq(crt->serial.len, 16);
	ck_assert_msg((crt->serial.p[0] & 0x80) == 0, "serial is negative");
	ck_assert_int_ne(crt->serial.p[0], 0);
	for (i = 0; i < crt->serial.len; i++) {
		serial[2 * i] = upper[crt->serial.p[i] >> 4];
		serial[2 * i + 1] = upper[crt->serial.p[i] & 15];
	}
	serial[2 * i] = '\0';
	ck_assert_str_eq(info->serial_hex, serial);

	sha256_hex(crt->raw.p, crt->raw.len, fp);
	ck_assert_str_eq(info->fingerprint, fp);

	spki_of(subject, spki, &spki_len);
	ca_pin_from_spki(spki, spki_len, pin);
	ck_assert_str_eq(info->pin, pin);
	ck_assert_int_eq(info->is_ca, crt->ca_istrue);

	ck_assert_int_eq(crt->sig_md, MBEDTLS_MD_SHA256);
	ck_assert_int_eq(crt->sig_pk, MBEDTLS_PK_ECDSA);
}

START_TEST(test_issue_root)
{
	struct ca_key *key = NULL;
	struct ca_cert_info info;
	mbedtls_x509_crt crt;
	char *pem = NULL;
	int64_t now = (int64_t)time(NULL);
	uint32_t flags;

	ck_assert_int_eq(ca_key_generate(&key), HERR_OK);
	ck_assert_int_eq(unit_issue(CA_CERT_ROOT, "my root", NULL, 0, 7300, key, key, NULL, &pem,
				    &info), HERR_OK);
	ck_assert_ptr_nonnull(pem);
	ck_assert_ptr_nonnull(strstr(pem, "-----BEGIN CERTIFICATE-----"));
	parse_crt(pem, &crt);
	ck_assert_int_eq(crt.ca_istrue, 1);
	ck_assert_int_eq(crt.max_pathlen, 0); /* no pathLenConstraint: unlimited */
	ck_assert_uint_eq(crt.key_usage, MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN);
	ck_assert(crt.ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS);
	ck_assert(crt.ext_types & MBEDTLS_X509_EXT_KEY_USAGE);
	ck_assert(!(crt.ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE));
	ck_assert_int_eq(ext_critical(&crt, MBEDTLS_OID_BASIC_CONSTRAINTS,
				      MBEDTLS_OID_SIZE(MBEDTLS_OID_BASIC_CONSTRAINTS)), 1);
	ck_assert_int_eq(ext_critical(&crt, MBEDTLS_OID_KEY_USAGE,
				      MBEDTLS_OID_SIZE(MBEDTLS_OID_KEY_USAGE)), 1);
	/* Self-signed: issuer is subject. */
	ck_assert_uint_eq(crt.issuer_raw.len, crt.subject_raw.len);
	ck_assert_mem_eq(crt.issuer_raw.p, crt.subject_raw.p, crt.subject_raw.len);
	ck_assert_ptr_nonnull(strstr(info.subject, "CN=my root"));
	ck_assert_int_eq(info.is_ca, 1);
	check_common(&crt, &info, 7300, now, key);
	mbedtls_x509_crt_free(&crt);

	/* It trusts itself, and another root does not trust it. */
	flags = verify_flags(pem, NULL, pem, NULL);
	ck_assert_msg(flags == 0, "self-signed root does not verify: %08x", (unsigned)flags);
	ck_assert_uint_ne(verify_flags(pem, NULL, unit_pki.root_pem, NULL), 0);
	free(pem);
	ca_key_free(key);
}
END_TEST

START_TEST(test_issue_issuing)
{
	struct ca_key *key = NULL;
	struct ca_cert_info info;
	mbedtls_x509_crt crt, root;
	char *pem = NULL;
	int64_t now = (int64_t)time(NULL);

	ck_assert_int_eq(ca_key_generate(&key), HERR_OK);
	ck_assert_int_eq(unit_issue(CA_CERT_ISSUING, "my issuing", NULL, 0, 1825, key,
				    unit_pki.root_key, unit_pki.root_cert, &pem, &info), HERR_OK);
	parse_crt(pem, &crt);
	parse_crt(unit_pki.root_pem, &root);
	ck_assert_int_eq(crt.ca_istrue, 1);
	ck_assert_int_eq(crt.max_pathlen, 1); /* pathLenConstraint 0, stored + 1 */
	ck_assert_uint_eq(crt.key_usage, MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN);
	ck_assert(!(crt.ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE));
	ck_assert_int_eq(ext_critical(&crt, MBEDTLS_OID_BASIC_CONSTRAINTS,
				      MBEDTLS_OID_SIZE(MBEDTLS_OID_BASIC_CONSTRAINTS)), 1);
	ck_assert_uint_eq(crt.issuer_raw.len, root.subject_raw.len);
	ck_assert_mem_eq(crt.issuer_raw.p, root.subject_raw.p, root.subject_raw.len);
	ck_assert_int_eq(info.is_ca, 1);
	check_common(&crt, &info, 1825, now, key);
	ck_assert_uint_eq(verify_flags(pem, NULL, unit_pki.root_pem, NULL), 0);
	mbedtls_x509_crt_free(&root);
	mbedtls_x509_crt_free(&crt);
	free(pem);
	ca_key_free(key);
}
END_TEST

/* The endpoint's subjectAltName, read from the DER: the names in the order given, DNS names as
 * dNSName, IP literals as iPAddress of 4 or 16 bytes. */
static void check_endpoint_sans(const mbedtls_x509_crt *crt)
{
	static const unsigned char v4[] = { 127, 0, 0, 1 };
	static const unsigned char v6[] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	const mbedtls_x509_sequence *s;
	unsigned char *val = NULL, *p, *end;
	size_t len = 0, dns = 0;
	int critical = -1;

	/* What mbedTLS itself keeps: the dNSNames (and it does not mistake IPs for DNS names). */
	ck_assert(crt->ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME);
	for (s = &crt->subject_alt_names; s && s->buf.p; s = s->next) {
		if (s->buf.tag != (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2))
			continue;
		if (dns == 0) {
			ck_assert_uint_eq(s->buf.len, 9);
			ck_assert_mem_eq(s->buf.p, "localhost", 9);
		} else {
			ck_assert_uint_eq(s->buf.len, 14);
			ck_assert_mem_eq(s->buf.p, "hearth.example", 14);
		}
		dns++;
	}
	ck_assert_uint_eq(dns, 2);

	ck_assert_int_eq(unit_find_ext(&crt->v3_ext, MBEDTLS_OID_SUBJECT_ALT_NAME,
				  MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), &val, &len,
				  &critical), 0);
	ck_assert_int_eq(critical, 0); /* the subject is not empty */
	p = val;
	end = val + len;
	ck_assert_int_eq(mbedtls_asn1_get_tag(&p, end, &len,
					      MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE), 0);
	ck_assert(p + len == end);
	ck_assert_int_eq(mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2), 0);
	ck_assert_uint_eq(len, 9);
	ck_assert_mem_eq(p, "localhost", 9);
	p += len;
	ck_assert_int_eq(mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(p, v4, 4);
	p += len;
	ck_assert_int_eq(mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7), 0);
	ck_assert_uint_eq(len, 16);
	ck_assert_mem_eq(p, v6, 16);
	p += len;
	ck_assert_int_eq(mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2), 0);
	ck_assert_uint_eq(len, 14);
	ck_assert_mem_eq(p, "hearth.example", 14);
	p += len;
	ck_assert(p == end);
}

static const char *const endpoint_sans[] = { "localhost", "127.0.0.1", "::1", "hearth.example" };

START_TEST(test_issue_endpoint)
{
	struct ca_key *key = NULL;
	struct ca_cert_info info;
	mbedtls_x509_crt crt;
	char *pem = NULL;
	int64_t now = (int64_t)time(NULL);
	uint32_t flags;

	ck_assert_int_eq(ca_key_generate(&key), HERR_OK);
	ck_assert_int_eq(unit_issue(CA_CERT_ENDPOINT, "localhost", endpoint_sans, 4, 30, key,
				    unit_pki.issuing_key, unit_pki.issuing_cert, &pem, &info), HERR_OK);
	parse_crt(pem, &crt);
	ck_assert_int_eq(crt.ca_istrue, 0);
	ck_assert_uint_eq(crt.key_usage, MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
	ck_assert(crt.ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE);
	ck_assert_int_eq(mbedtls_x509_crt_check_extended_key_usage(&crt, MBEDTLS_OID_SERVER_AUTH,
			 MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)), 0);
	ck_assert_int_ne(mbedtls_x509_crt_check_extended_key_usage(&crt, MBEDTLS_OID_CLIENT_AUTH,
			 MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)), 0);
	check_endpoint_sans(&crt);
	ck_assert_int_eq(info.is_ca, 0);
	check_common(&crt, &info, 30, now, key);
	mbedtls_x509_crt_free(&crt);

	/* Chain: endpoint + issuing against root, and the name check goes by the SANs. */
	flags = verify_flags(pem, unit_pki.issuing_pem, unit_pki.root_pem, NULL);
	ck_assert_msg(flags == 0, "endpoint chain does not verify: %08x", (unsigned)flags);
	ck_assert_uint_eq(verify_flags(pem, unit_pki.issuing_pem, unit_pki.root_pem,
				       "hearth.example"), 0);
	ck_assert_uint_eq(verify_flags(pem, unit_pki.issuing_pem, unit_pki.root_pem, "localhost"), 0);
	ck_assert(verify_flags(pem, unit_pki.issuing_pem, unit_pki.root_pem, "evil.example") &
		  MBEDTLS_X509_BADCERT_CN_MISMATCH);
	/* Without the intermediate it does not chain. */
	ck_assert(verify_flags(pem, NULL, unit_pki.root_pem, NULL) & MBEDTLS_X509_BADCERT_NOT_TRUSTED);
	free(pem);
	ca_key_free(key);
}
END_TEST

START_TEST(test_issue_device)
{
	struct ca_key *key = NULL, *other_root_key = NULL;
	struct ca_cert_info info;
	mbedtls_x509_crt crt;
	char *pem = NULL, *other_root = NULL;
	int64_t now = (int64_t)time(NULL);
	uint32_t flags;

	ck_assert_int_eq(ca_key_generate(&key), HERR_OK);
	ck_assert_int_eq(unit_issue(CA_CERT_DEVICE, "dev-1", NULL, 0, 365, key, unit_pki.issuing_key,
				    unit_pki.issuing_cert, &pem, &info), HERR_OK);
	parse_crt(pem, &crt);
	ck_assert_int_eq(crt.ca_istrue, 0);
	ck_assert_uint_eq(crt.key_usage, MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
	ck_assert(crt.ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE);
	ck_assert_int_eq(mbedtls_x509_crt_check_extended_key_usage(&crt, MBEDTLS_OID_CLIENT_AUTH,
			 MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)), 0);
	ck_assert_int_ne(mbedtls_x509_crt_check_extended_key_usage(&crt, MBEDTLS_OID_SERVER_AUTH,
			 MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)), 0);
	ck_assert(!(crt.ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME));
	/* A device's subject is its id alone. */
	ck_assert_str_eq(info.subject, "CN=dev-1");
	ck_assert_int_eq(info.is_ca, 0);
	check_common(&crt, &info, 365, now, key);
	mbedtls_x509_crt_free(&crt);

	flags = verify_flags(pem, unit_pki.issuing_pem, unit_pki.root_pem, "dev-1");
	ck_assert_msg(flags == 0, "device chain does not verify: %08x", (unsigned)flags);
	ck_assert(verify_flags(pem, unit_pki.issuing_pem, unit_pki.root_pem, "dev-2") &
		  MBEDTLS_X509_BADCERT_CN_MISMATCH);
	/* The wrong root does not vouch for it. */
	ck_assert_int_eq(ca_key_generate(&other_root_key), HERR_OK);
	ck_assert_int_eq(unit_issue(CA_CERT_ROOT, "test root", NULL, 0, 3650, other_root_key,
				    other_root_key, NULL, &other_root, &info), HERR_OK);
	ck_assert(verify_flags(pem, unit_pki.issuing_pem, other_root, NULL) &
		  MBEDTLS_X509_BADCERT_NOT_TRUSTED);
	free(other_root);
	ca_key_free(other_root_key);
	free(pem);
	ca_key_free(key);
}
END_TEST

START_TEST(test_serials_differ)
{
	struct ca_cert_info a, b;
	char *pa = NULL, *pb = NULL;

	ck_assert_int_eq(unit_issue(CA_CERT_DEVICE, "dev-1", NULL, 0, 1, unit_pki.issuing_key,
				    unit_pki.issuing_key, unit_pki.issuing_cert, &pa, &a), HERR_OK);
	ck_assert_int_eq(unit_issue(CA_CERT_DEVICE, "dev-1", NULL, 0, 1, unit_pki.issuing_key,
				    unit_pki.issuing_key, unit_pki.issuing_cert, &pb, &b), HERR_OK);
	ck_assert_str_ne(a.serial_hex, b.serial_hex);
	ck_assert_str_ne(a.fingerprint, b.fingerprint);
	ck_assert_uint_eq(strlen(a.serial_hex), 32);
	free(pa);
	free(pb);
}
END_TEST

/* ca_cert_parse/ca_cert_get_info on the issued PEM agree with what ca_cert_issue reported. */
START_TEST(test_parse_info)
{
	struct ca_cert_info issued, parsed;
	struct ca_cert *cert = NULL;
	uint8_t a[CA_SPKI_MAX], b[CA_SPKI_MAX];
	size_t alen = 0, blen = 0;
	char *pem = NULL, path[4096];

	ck_assert_int_eq(unit_issue(CA_CERT_DEVICE, "dev-1", NULL, 0, 10, unit_pki.root_key,
				    unit_pki.issuing_key, unit_pki.issuing_cert, &pem, &issued),
			 HERR_OK);
	unit_at(path, sizeof(path), "dev.crt");
	write_file(path, pem, strlen(pem), 0644);
	ck_assert_int_eq(ca_cert_load(path, &cert), HERR_OK);
	ca_cert_get_info(cert, &parsed);
	ck_assert_str_eq(parsed.serial_hex, issued.serial_hex);
	ck_assert_str_eq(parsed.fingerprint, issued.fingerprint);
	ck_assert_str_eq(parsed.subject, issued.subject);
	ck_assert_str_eq(parsed.pin, issued.pin);
	ck_assert_int_eq(parsed.not_after, issued.not_after);
	ck_assert_int_eq(ca_cert_spki(cert, a, sizeof(a), &alen), HERR_OK);
	spki_of(unit_pki.root_key, b, &blen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_mem_eq(a, b, alen);
	ck_assert_int_eq(ca_cert_matches_key(cert, unit_pki.root_key), 1);
	ck_assert_int_eq(ca_cert_matches_key(cert, unit_pki.issuing_key), 0);
	ca_cert_free(cert);
	ca_cert_free(NULL);

	cert = (struct ca_cert *)1;
	ck_assert_int_ne(ca_cert_parse((const uint8_t *)"not a cert", 10, &cert), HERR_OK);
	ck_assert_ptr_null(cert);
	free(pem);
}
END_TEST

/* --- ca/cert: refusals ------------------------------------------------------------------------ */

static void assert_refused(enum ca_cert_kind kind, const char *cn, const char *const *sans,
			   size_t san_count, unsigned days, struct ca_key *issuer_key,
			   const struct ca_cert *issuer_cert, const char *what)
{
	char *pem = (char *)"sentinel";
	struct ca_cert_info info;
	enum herr rc;

	rc = unit_issue(kind, cn, sans, san_count, days, unit_pki.root_key, issuer_key, issuer_cert,
			&pem, &info);
	ck_assert_msg(rc == HERR_INVALID, "%s: got %s, want HERR_INVALID", what, herr_str(rc));
	ck_assert_msg(pem == NULL, "%s: *pem not reset", what);
}

START_TEST(test_refusals)
{
	static const char *const bad_san[] = { "ok.example", "bad,name" };
	static const char *const bad_sans[] = { "", ".lead", "trail.", "-dash", "a b", "x=y",
						"a\\b", "é.example" };
	static const char *const good_san[] = { "ok.example" };
	struct ca_key *root_key = unit_pki.root_key, *issuing_key = unit_pki.issuing_key;
	const struct ca_cert *root_cert = unit_pki.root_cert, *issuing_cert = unit_pki.issuing_cert;
	char *pem = NULL;
	struct ca_cert_info info;
	size_t i;

	assert_refused(CA_CERT_DEVICE, "bad id!", NULL, 0, 365, issuing_key, issuing_cert,
		       "device id with ' ' and '!'");
	assert_refused(CA_CERT_DEVICE, "", NULL, 0, 365, issuing_key, issuing_cert, "empty device id");
	assert_refused(CA_CERT_ENDPOINT, "ok.example", bad_san, 2, 30, issuing_key, issuing_cert,
		       "SAN with a comma");
	for (i = 0; i < sizeof(bad_sans) / sizeof(bad_sans[0]); i++)
		assert_refused(CA_CERT_ENDPOINT, "ok.example", &bad_sans[i], 1, 30, issuing_key,
			       issuing_cert, bad_sans[i]);
	assert_refused(CA_CERT_ENDPOINT, "ok.example", NULL, 0, 30, issuing_key, issuing_cert,
		       "endpoint without SANs");
	assert_refused(CA_CERT_ENDPOINT, "ok.example", good_san, CA_MAX_SANS + 1, 30, issuing_key,
		       issuing_cert, "too many SANs");
	assert_refused(CA_CERT_ISSUING, "issuing", NULL, 0, 30, root_key, NULL,
		       "issuing without issuer cert");
	assert_refused(CA_CERT_ENDPOINT, "ok.example", good_san, 1, 30, issuing_key, NULL,
		       "endpoint without issuer cert");
	assert_refused(CA_CERT_DEVICE, "dev-1", NULL, 0, 30, issuing_key, NULL,
		       "device without issuer cert");
	assert_refused(CA_CERT_ROOT, "root", NULL, 0, 30, root_key, root_cert,
		       "root with an issuer cert");
	assert_refused(CA_CERT_DEVICE, "dev-1", NULL, 0, 30, root_key, issuing_cert,
		       "issuer key not the issuer cert's");
	assert_refused(CA_CERT_ISSUING, "issuing", NULL, 0, 30, issuing_key, root_cert,
		       "issuing: issuer key not the root's");
	assert_refused(CA_CERT_DEVICE, "dev-1", NULL, 0, 0, issuing_key, issuing_cert, "days 0");
	assert_refused(CA_CERT_ROOT, "root", NULL, 0, 0, root_key, NULL, "root, days 0");
	assert_refused(CA_CERT_DEVICE, "dev-1", NULL, 0, 36501, issuing_key, issuing_cert,
		       "days beyond 100 years");
	assert_refused(CA_CERT_ROOT, "root,O=evil", NULL, 0, 30, root_key, NULL,
		       "CN with a DN separator");

	/* The control: one good SAN is enough. */
	ck_assert_int_eq(unit_issue(CA_CERT_ENDPOINT, "ok.example", good_san, 1, 30, root_key,
				    issuing_key, issuing_cert, &pem, &info), HERR_OK);
	free(pem);
}
END_TEST

START_TEST(test_valid_id)
{
	char id[80];

	ck_assert_int_eq(ca_valid_id("a"), 1);
	ck_assert_int_eq(ca_valid_id("A-z_0"), 1);
	memset(id, 'x', sizeof(id));
	id[64] = '\0';
	ck_assert_int_eq(ca_valid_id(id), 1);
	id[64] = 'x';
	id[65] = '\0';
	ck_assert_int_eq(ca_valid_id(id), 0);
	ck_assert_int_eq(ca_valid_id(""), 0);
	ck_assert_int_eq(ca_valid_id("a b"), 0);
	ck_assert_int_eq(ca_valid_id("a/b"), 0);
	ck_assert_int_eq(ca_valid_id("a.b"), 0);
	ck_assert_int_eq(ca_valid_id("é"), 0);
	ck_assert_int_eq(ca_valid_id("a\n"), 0);
}
END_TEST

static Suite *cert_suite(void)
{
	Suite *s = suite_create("cert");
	TCase *tk = tcase_create("key");
	TCase *tc = tcase_create("cert");

	unit_scratch_add(tk);
	unit_pki_add(tk);
	tcase_set_timeout(tk, 30);
	tcase_add_test(tk, test_key_roundtrip);
	tcase_add_test(tk, test_key_save_no_overwrite);
	tcase_add_test(tk, test_key_load_mode);
	tcase_add_test(tk, test_key_load_garbage);
	tcase_add_test(tk, test_key_load_wrong_curve);
	tcase_add_test(tk, test_key_sign);
	tcase_add_test(tk, test_pin);
	tcase_add_test(tk, test_sha256_hex);
	tcase_add_test(tk, test_mbedtls_fail_kinds);
	suite_add_tcase(s, tk);

	unit_scratch_add(tc);
	unit_pki_add(tc);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_issue_root);
	tcase_add_test(tc, test_issue_issuing);
	tcase_add_test(tc, test_issue_endpoint);
	tcase_add_test(tc, test_issue_device);
	tcase_add_test(tc, test_serials_differ);
	tcase_add_test(tc, test_parse_info);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_valid_id);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(cert_suite());
}
