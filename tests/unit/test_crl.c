/* Unit tests of ca/crl: CRLs written here must parse with mbedTLS, carry what was asked for, and
 * verify under the issuing CA's key. openssl's view of them is checked in tests/integration. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "ca/cert.h"
#include "ca/crl.h"
#include "ca/der.h"
#include "ca/key.h"
#include "tests/unit/unit.h"

/* Skip one TLV of any tag at *p; 0 on success. */
static int skip_tlv(unsigned char **p, const unsigned char *end)
{
	size_t len;

	if (end - *p < 1)
		return -1;
	(*p)++;
	if (mbedtls_asn1_get_len(p, end, &len) != 0)
		return -1;
	*p += len;
	return 0;
}

/* Issue a CRL from the test PKI and parse it; the caller frees crl. */
static void issue_and_parse(const struct ca_crl_entry *entries, size_t count, uint64_t number,
			    int64_t this_update, int64_t next_update, mbedtls_x509_crl *crl)
{
	char *pem = NULL;
	int ret;

	ck_assert_int_eq(ca_crl_issue(unit_pki.issuing_key, unit_pki.issuing_cert, entries, count,
				      number, this_update, next_update, &pem), HERR_OK);
	ck_assert_ptr_nonnull(pem);
	ck_assert_ptr_nonnull(strstr(pem, "-----BEGIN X509 CRL-----\n"));
	mbedtls_x509_crl_init(crl);
	ret = mbedtls_x509_crl_parse(crl, (const unsigned char *)pem, strlen(pem) + 1);
	ck_assert_msg(ret == 0, "mbedtls_x509_crl_parse: -0x%04x", (unsigned)-ret);
	free(pem);
}

static int sig_verifies(const mbedtls_x509_crl *crl, const struct ca_cert *signer)
{
	unsigned char hash[32];

	ck_assert_int_eq(mbedtls_sha256_ret(crl->tbs.p, crl->tbs.len, hash, 0), 0);
	return mbedtls_pk_verify((mbedtls_pk_context *)&ca_cert_crt(signer)->pk, MBEDTLS_MD_SHA256,
				 hash, sizeof(hash), crl->sig.p, crl->sig.len) == 0;
}

static uint64_t crl_number_of(const mbedtls_x509_crl *crl)
{
	unsigned char *val = NULL, *p, *end;
	size_t val_len = 0, len, i;
	uint64_t n = 0;
	int critical = -1;

	ck_assert_int_eq(unit_find_ext(&crl->crl_ext, MBEDTLS_OID_CRL_NUMBER,
				  MBEDTLS_OID_SIZE(MBEDTLS_OID_CRL_NUMBER), &val, &val_len, &critical), 0);
	ck_assert_int_eq(critical, 0);
	p = val;
	end = val + val_len;
	ck_assert_int_eq(mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_INTEGER), 0);
	ck_assert(p + len == end);
	ck_assert_uint_ge(len, 1);
	ck_assert_uint_le(len, 9);
	ck_assert_msg((p[0] & 0x80) == 0, "CRL number encoded as negative");
	if (len > 1)
		ck_assert_msg(!(p[0] == 0 && (p[1] & 0x80) == 0), "CRL number not minimally encoded");
	for (i = 0; i < len; i++)
		n = (n << 8) | p[i];
	return n;
}

/* The CRL's authorityKeyIdentifier must be the issuing certificate's subjectKeyIdentifier, or
 * relying parties that match on it (openssl does) will not find the CRL's issuer. */
static void check_aki(const mbedtls_x509_crl *crl)
{
	const mbedtls_x509_crt *crt = ca_cert_crt(unit_pki.issuing_cert);
	unsigned char *aki, *ski, *p, *end;
	size_t aki_len, ski_len, len, ski_id_len;
	int critical = -1;

	ck_assert_int_eq(unit_find_ext(&crt->v3_ext, MBEDTLS_OID_SUBJECT_KEY_IDENTIFIER,
				  MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_KEY_IDENTIFIER), &ski, &ski_len,
				  &critical), 0);
	p = ski;
	ck_assert_int_eq(mbedtls_asn1_get_tag(&p, ski + ski_len, &ski_id_len,
					      MBEDTLS_ASN1_OCTET_STRING), 0);
	ski = p;

	ck_assert_int_eq(unit_find_ext(&crl->crl_ext, MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER,
				  MBEDTLS_OID_SIZE(MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER), &aki,
				  &aki_len, &critical), 0);
	ck_assert_int_eq(critical, 0);
	p = aki;
	end = aki + aki_len;
	ck_assert_int_eq(mbedtls_asn1_get_tag(&p, end, &len,
					      MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE), 0);
	ck_assert(p + len == end);
	ck_assert_int_eq(mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 0), 0);
	ck_assert(p + len == end);
	ck_assert_uint_eq(len, ski_id_len);
	ck_assert_mem_eq(p, ski, len);
}

/* What the CRL says of its issuer, times, number, signature and extensions, whatever its entries. */
static void check_common(const mbedtls_x509_crl *crl, uint64_t number, int64_t this_update,
			 int64_t next_update)
{
	static const unsigned char outer_alg[] = {
		MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, 10, MBEDTLS_ASN1_OID, 8,
		0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, /* 1.2.840.10045.4.3.2 */
	};
	const mbedtls_x509_crt *issuer = ca_cert_crt(unit_pki.issuing_cert);

	ck_assert_int_eq(crl->version, 2);
	ck_assert_uint_eq(crl->issuer_raw.len, issuer->subject_raw.len);
	ck_assert_mem_eq(crl->issuer_raw.p, issuer->subject_raw.p, issuer->subject_raw.len);
	ck_assert_int_eq(ca_x509_time_to_unix(&crl->this_update), this_update);
	ck_assert_int_eq(ca_x509_time_to_unix(&crl->next_update), next_update);
	ck_assert_int_eq(crl->sig_md, MBEDTLS_MD_SHA256);
	ck_assert_int_eq(crl->sig_pk, MBEDTLS_PK_ECDSA);
	/* ecdsa-with-SHA256 has no parameters at all (RFC 5758), in both places. */
	ck_assert_uint_eq(crl->sig_oid.len, MBEDTLS_OID_SIZE(MBEDTLS_OID_ECDSA_SHA256));
	ck_assert_mem_eq(crl->sig_oid.p, MBEDTLS_OID_ECDSA_SHA256, crl->sig_oid.len);
	ck_assert(crl->sig_oid.p[crl->sig_oid.len] == (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
	/* mbedTLS 2.28 does not keep the outer signatureAlgorithm; it follows the TBS directly. */
	ck_assert_uint_ge(crl->raw.len - (size_t)(crl->tbs.p - crl->raw.p) - crl->tbs.len,
			  sizeof(outer_alg) + 1);
	ck_assert_mem_eq(crl->tbs.p + crl->tbs.len, outer_alg, sizeof(outer_alg));
	ck_assert(crl->tbs.p[crl->tbs.len + sizeof(outer_alg)] == MBEDTLS_ASN1_BIT_STRING);
	ck_assert_uint_eq(crl_number_of(crl), number);
	check_aki(crl);
	ck_assert_msg(sig_verifies(crl, unit_pki.issuing_cert), "signature does not verify");
	ck_assert_msg(!sig_verifies(crl, unit_pki.root_cert), "signature verifies under the wrong key");
}

/* The tag that follows nextUpdate in the TBS: revokedCertificates (SEQUENCE) or crlExtensions
 * ([0]); RFC 5280 wants the list absent rather than empty when nothing is revoked. */
static unsigned char tag_after_next_update(const mbedtls_x509_crl *crl)
{
	unsigned char *p = crl->tbs.p, *end = crl->tbs.p + crl->tbs.len;
	size_t len;
	int i;

	ck_assert_int_eq(mbedtls_asn1_get_tag(&p, end, &len,
					      MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE), 0);
	/* version, signature, issuer, thisUpdate, nextUpdate */
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(skip_tlv(&p, end), 0);
	ck_assert(p < end);
	return *p;
}

static void check_entries(const mbedtls_x509_crl *crl, const struct ca_crl_entry *entries,
			  size_t count)
{
	const mbedtls_x509_crl_entry *e = &crl->entry;
	mbedtls_mpi want, got;
	size_t i;

	mbedtls_mpi_init(&want);
	mbedtls_mpi_init(&got);
	for (i = 0; i < count; i++, e = e->next) {
		ck_assert_ptr_nonnull(e);
		ck_assert_uint_gt(e->raw.len, 0);
		/* DER INTEGER: positive, so a leading 0x00 wherever the top bit is set. */
		ck_assert_uint_gt(e->serial.len, 0);
		ck_assert_msg((e->serial.p[0] & 0x80) == 0, "entry %zu: negative serial", i);
		ck_assert_int_eq(ca_serial_from_hex(entries[i].serial_hex, &want), HERR_OK);
		ck_assert_int_eq(mbedtls_mpi_read_binary(&got, e->serial.p, e->serial.len), 0);
		ck_assert_msg(mbedtls_mpi_cmp_mpi(&want, &got) == 0, "entry %zu: serial differs", i);
		ck_assert_int_eq(ca_x509_time_to_unix(&e->revocation_date), entries[i].revoked_at);
	}
	/* mbedTLS keeps an empty head entry for a CRL without any. */
	if (count == 0)
		ck_assert_uint_eq(e->raw.len, 0);
	else
		ck_assert_ptr_null(e);
	mbedtls_mpi_free(&want);
	mbedtls_mpi_free(&got);
}

static const int64_t this_2024 = 1718000000;                 /* 2024-06-10, UTCTime */
static const int64_t next_2024 = 1718000000 + 7 * 86400;

START_TEST(test_empty)
{
	mbedtls_x509_crl crl;

	issue_and_parse(NULL, 0, 1, this_2024, next_2024, &crl);
	check_common(&crl, 1, this_2024, next_2024);
	check_entries(&crl, NULL, 0);
	ck_assert_uint_eq(tag_after_next_update(&crl),
			  MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0);
	mbedtls_x509_crl_free(&crl);
}
END_TEST

START_TEST(test_one)
{
	static const struct ca_crl_entry entries[] = {
		{ "1A2B3C4D5E6F", 1717990000 },
	};
	mbedtls_x509_crl crl;

	issue_and_parse(entries, 1, 2, this_2024, next_2024, &crl);
	check_common(&crl, 2, this_2024, next_2024);
	check_entries(&crl, entries, 1);
	ck_assert_uint_eq(tag_after_next_update(&crl),
			  MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
	mbedtls_x509_crl_free(&crl);
}
END_TEST

START_TEST(test_three)
{
	/* Lower case, a top bit set (needs a 0x00 pad), the 40-digit maximum, and a date past 2049
	 * (GeneralizedTime); listed in the caller's order. */
	static const struct ca_crl_entry entries[] = {
		{ "0abcdef0123", 1717900000 },
		{ "80", 1717950000 },
		{ "FFEEDDCCBBAA99887766554433221100FFEEDDCC", 2556144000 }, /* 2051-01-01 */
	};
	const int64_t next = 2556144000 + 86400;
	mbedtls_x509_crl crl;

	issue_and_parse(entries, 3, UINT64_MAX, this_2024, next, &crl);
	check_common(&crl, UINT64_MAX, this_2024, next);
	check_entries(&crl, entries, 3);
	mbedtls_x509_crl_free(&crl);
}
END_TEST

START_TEST(test_crl_numbers)
{
	static const uint64_t numbers[] = { 0, 127, 128, 255, 256, 0x7fffffffffffffffULL,
					    0x8000000000000000ULL };
	mbedtls_x509_crl crl;
	size_t i;

	for (i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		issue_and_parse(NULL, 0, numbers[i], this_2024, next_2024, &crl);
		ck_assert_uint_eq(crl_number_of(&crl), numbers[i]);
		mbedtls_x509_crl_free(&crl);
	}
}
END_TEST

/* Enough entries that every length in the CRL takes three bytes, all of the largest size, so the
 * buffer bound is exercised where it is tightest. */
START_TEST(test_many)
{
	const size_t count = 5000;
	struct ca_crl_entry *entries;
	char (*serials)[41];
	mbedtls_x509_crl crl;
	size_t i;

	entries = calloc(count, sizeof(*entries));
	serials = calloc(count, sizeof(*serials));
	ck_assert_ptr_nonnull(entries);
	ck_assert_ptr_nonnull(serials);
	for (i = 0; i < count; i++) {
		snprintf(serials[i], sizeof(serials[i]), "F%039zx", i);
		entries[i].serial_hex = serials[i];
		entries[i].revoked_at = 2556144000 + (int64_t)i;
	}
	issue_and_parse(entries, count, 42, this_2024, next_2024, &crl);
	ck_assert_uint_gt(crl.raw.len, 65536);
	check_common(&crl, 42, this_2024, next_2024);
	check_entries(&crl, entries, count);
	mbedtls_x509_crl_free(&crl);
	free(serials);
	free(entries);
}
END_TEST

START_TEST(test_bad_serial)
{
	static const char *const bad[] = {
		"", "XYZ", "12 34", "-1", "0x12", "12345678901234567890123456789012345678901",
	};
	struct ca_crl_entry entries[2] = { { "01", 1717900000 }, { NULL, 1717900000 } };
	char untouched = 0;
	char *pem = &untouched;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		entries[1].serial_hex = bad[i];
		pem = &untouched;
		ck_assert_int_eq(ca_crl_issue(unit_pki.issuing_key, unit_pki.issuing_cert, entries, 2,
					      1, this_2024, next_2024, &pem), HERR_INVALID);
		ck_assert_ptr_null(pem);
	}
	entries[1].serial_hex = NULL;
	pem = &untouched;
	ck_assert_int_eq(ca_crl_issue(unit_pki.issuing_key, unit_pki.issuing_cert, entries, 2, 1,
				      this_2024, next_2024, &pem), HERR_INVALID);
	ck_assert_ptr_null(pem);
}
END_TEST

START_TEST(test_too_many)
{
	static const struct ca_crl_entry one = { "01", 1717900000 };
	char *pem = NULL;

	/* The count is refused before the array is looked at: one real entry behind a huge count. */
	ck_assert_int_eq(ca_crl_issue(unit_pki.issuing_key, unit_pki.issuing_cert, &one,
				      CA_CRL_MAX_ENTRIES + 1, 1, this_2024, next_2024, &pem),
			 HERR_TOOBIG);
	ck_assert_ptr_null(pem);
	ck_assert_int_eq(ca_crl_issue(unit_pki.issuing_key, unit_pki.issuing_cert, NULL, SIZE_MAX, 1,
				      this_2024, next_2024, &pem), HERR_TOOBIG);
	ck_assert_ptr_null(pem);
}
END_TEST

START_TEST(test_bad_args)
{
	char *pem = NULL;

	/* next before this */
	ck_assert_int_eq(ca_crl_issue(unit_pki.issuing_key, unit_pki.issuing_cert, NULL, 0, 1,
				      next_2024, this_2024, &pem), HERR_INVALID);
	ck_assert_ptr_null(pem);
	/* entries promised but missing */
	ck_assert_int_eq(ca_crl_issue(unit_pki.issuing_key, unit_pki.issuing_cert, NULL, 1, 1,
				      this_2024, next_2024, &pem), HERR_INVALID);
	ck_assert_ptr_null(pem);
	/* a key that is not the certificate's */
	ck_assert_int_eq(ca_crl_issue(unit_pki.root_key, unit_pki.issuing_cert, NULL, 0, 1,
				      this_2024, next_2024, &pem), HERR_INVALID);
	ck_assert_ptr_null(pem);
}
END_TEST

static Suite *crl_suite(void)
{
	Suite *s = suite_create("crl");
	TCase *tc = tcase_create("issue");

	unit_pki_add(tc);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_one);
	tcase_add_test(tc, test_three);
	tcase_add_test(tc, test_crl_numbers);
	tcase_add_test(tc, test_many);
	tcase_add_test(tc, test_bad_serial);
	tcase_add_test(tc, test_too_many);
	tcase_add_test(tc, test_bad_args);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(crl_suite());
}
