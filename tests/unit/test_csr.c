/* Unit tests for ca/csr: requests are made here with mbedTLS's own CSR writer, then mangled. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "ca/csr.h"
#include "common/rng.h"
#include "tests/unit/unit.h"

#define BUF_SIZE 8192
#define SUBJECT  "CN=hearth-test"
#define PEM_CSR_BEGIN "-----BEGIN CERTIFICATE REQUEST-----\n"
#define PEM_CSR_END   "-----END CERTIFICATE REQUEST-----\n"

/* BasicConstraints values, as the extnValue of a requested extension. */
static const unsigned char bc_ca_true[] = { 0x30, 0x03, 0x01, 0x01, 0xff };
static const unsigned char bc_ca_false_explicit[] = { 0x30, 0x03, 0x01, 0x01, 0x00 };
static const unsigned char bc_ca_false_default[] = { 0x30, 0x00 };
static const unsigned char bc_truncated[] = { 0x30, 0x05, 0x01, 0x01, 0xff };

struct req {
	mbedtls_md_type_t md;
	const unsigned char *ext;   /* basicConstraints value to request, or NULL */
	size_t ext_len;
};

static const struct req plain_req = { MBEDTLS_MD_SHA256, NULL, 0 };

static void gen_ec(mbedtls_pk_context *pk, mbedtls_ecp_group_id grp)
{
	mbedtls_pk_init(pk);
	ck_assert_int_eq(mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
	ck_assert_int_eq(mbedtls_ecp_gen_key(grp, mbedtls_pk_ec(*pk), rng_callback, NULL), 0);
}

static void gen_rsa(mbedtls_pk_context *pk, unsigned bits)
{
	mbedtls_pk_init(pk);
	ck_assert_int_eq(mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
	ck_assert_int_eq(mbedtls_rsa_gen_key(mbedtls_pk_rsa(*pk), rng_callback, NULL, bits, 65537), 0);
}

/* A CSR for pk as PEM (*len without the NUL) or DER (moved to the start of buf). */
static void make_csr(mbedtls_pk_context *pk, const struct req *r, int der,
		     unsigned char *buf, size_t size, size_t *len)
{
	mbedtls_x509write_csr w;
	int ret;

	mbedtls_x509write_csr_init(&w);
	mbedtls_x509write_csr_set_md_alg(&w, r->md);
	mbedtls_x509write_csr_set_key(&w, pk);
	ck_assert_int_eq(mbedtls_x509write_csr_set_subject_name(&w, SUBJECT), 0);
	if (r->ext)
		ck_assert_int_eq(mbedtls_x509write_csr_set_extension(&w, MBEDTLS_OID_BASIC_CONSTRAINTS,
			MBEDTLS_OID_SIZE(MBEDTLS_OID_BASIC_CONSTRAINTS), r->ext, r->ext_len), 0);
	if (der) {
		ret = mbedtls_x509write_csr_der(&w, buf, size, rng_callback, NULL);
		ck_assert_int_gt(ret, 0);
		memmove(buf, buf + size - (size_t)ret, (size_t)ret);
		*len = (size_t)ret;
	} else {
		ck_assert_int_eq(mbedtls_x509write_csr_pem(&w, buf, size, rng_callback, NULL), 0);
		*len = strlen((char *)buf);
	}
	mbedtls_x509write_csr_free(&w);
}

static void pem_wrap(const unsigned char *der, size_t der_len, unsigned char *buf, size_t size,
		     size_t *len)
{
	size_t olen = 0;

	ck_assert_int_eq(mbedtls_pem_write_buffer(PEM_CSR_BEGIN, PEM_CSR_END, der, der_len,
						  buf, size, &olen), 0);
	*len = strlen((char *)buf);
}

/* Exactly len bytes on the heap, no NUL after them, so ASan catches a read past the end. */
static unsigned char *dup_exact(const unsigned char *data, size_t len)
{
	unsigned char *p = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, data, len);
	return p;
}

static void assert_accepted(const unsigned char *data, size_t len, mbedtls_pk_context *pk,
			    const char *key_desc)
{
	unsigned char spki[BUF_SIZE];
	unsigned char *exact = dup_exact(data, len);
	struct ca_csr out;
	char why[256];
	enum herr rc;
	int n;

	memset(why, 'x', sizeof(why));
	rc = ca_csr_check(exact, len, &out, why, sizeof(why));
	free(exact);
	ck_assert_msg(rc == HERR_OK, "refused (%d): %s", rc, why);
	ck_assert_str_eq(why, "");
	ck_assert_str_eq(out.key_desc, key_desc);
	n = mbedtls_pk_write_pubkey_der(pk, spki, sizeof(spki));
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(out.spki_len, (size_t)n);
	ck_assert_mem_eq(out.spki, spki + sizeof(spki) - (size_t)n, (size_t)n);
}

/* Checks the error, that why says something (containing needle if given) and out is zeroed. */
static void assert_refused(const unsigned char *data, size_t len, enum herr want,
			   const char *needle)
{
	unsigned char *exact = dup_exact(data, len);
	struct ca_csr out;
	char why[256];
	enum herr rc;

	memset(&out, 0xa5, sizeof(out));
	memset(why, 'x', sizeof(why));
	rc = ca_csr_check(exact, len, &out, why, sizeof(why));
	free(exact);
	ck_assert_msg(rc == want, "got %d, want %d (why: %.200s)", rc, want, why);
	ck_assert_msg(memchr(why, '\0', sizeof(why)) != NULL, "why is not NUL-terminated");
	ck_assert_msg(why[0] != '\0', "why is empty");
	ck_assert_msg(strchr(why, '\n') == NULL, "why is not one line: %s", why);
	if (needle)
		ck_assert_msg(strstr(why, needle) != NULL, "why \"%s\" lacks \"%s\"", why, needle);
	ck_assert_uint_eq(out.spki_len, 0);
	ck_assert_int_eq(out.key_desc[0], '\0');
	ck_assert_int_eq(out.spki[0], 0);
}

START_TEST(test_p256_pem_accepted)
{
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &plain_req, 0, buf, sizeof(buf), &len);
	assert_accepted(buf, len, &pk, "EC P-256");
	/* With the NUL a C string would carry, too. */
	assert_accepted(buf, len + 1, &pk, "EC P-256");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_p256_der_accepted)
{
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &plain_req, 1, buf, sizeof(buf), &len);
	assert_accepted(buf, len, &pk, "EC P-256");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_new_csr_pem_label_accepted)
{
	unsigned char der[BUF_SIZE], buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t der_len, olen = 0;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &plain_req, 1, der, sizeof(der), &der_len);
	ck_assert_int_eq(mbedtls_pem_write_buffer("-----BEGIN NEW CERTIFICATE REQUEST-----\n",
						  "-----END NEW CERTIFICATE REQUEST-----\n",
						  der, der_len, buf, sizeof(buf), &olen), 0);
	assert_accepted(buf, strlen((char *)buf), &pk, "EC P-256");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_size_limit_exact_accepted)
{
	unsigned char buf[CA_CSR_MAX];
	mbedtls_pk_context pk;
	size_t len;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &plain_req, 0, buf, sizeof(buf), &len);
	/* Text after the PEM block is allowed, so padding reaches the bound exactly. */
	memset(buf + len, '\n', sizeof(buf) - len);
	assert_accepted(buf, sizeof(buf), &pk, "EC P-256");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_oversize_refused)
{
	unsigned char *buf = malloc(CA_CSR_MAX + 1);
	mbedtls_pk_context pk;
	size_t len;

	ck_assert_ptr_nonnull(buf);
	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &plain_req, 0, buf, CA_CSR_MAX + 1, &len);
	memset(buf + len, '\n', CA_CSR_MAX + 1 - len);
	assert_refused(buf, CA_CSR_MAX + 1, HERR_TOOBIG, "too large");
	free(buf);
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_p384_refused)
{
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP384R1);
	make_csr(&pk, &plain_req, 0, buf, sizeof(buf), &len);
	assert_refused(buf, len, HERR_INVALID, "secp384r1");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_rsa1024_refused)
{
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_rsa(&pk, 1024);
	make_csr(&pk, &plain_req, 0, buf, sizeof(buf), &len);
	assert_refused(buf, len, HERR_INVALID, "1024 bits is too short");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_rsa2048_accepted)
{
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_rsa(&pk, 2048);
	make_csr(&pk, &plain_req, 0, buf, sizeof(buf), &len);
	assert_accepted(buf, len, &pk, "RSA 2048");
	make_csr(&pk, &plain_req, 1, buf, sizeof(buf), &len);
	assert_accepted(buf, len, &pk, "RSA 2048");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_sha1_refused)
{
	static const struct req sha1_req = { MBEDTLS_MD_SHA1, NULL, 0 };
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &sha1_req, 0, buf, sizeof(buf), &len);
	assert_refused(buf, len, HERR_INVALID, "SHA1");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_bad_signature_refused)
{
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &plain_req, 1, buf, sizeof(buf), &len);
	/* The last byte is the last byte of the ECDSA s value: the structure stays valid. */
	buf[len - 1] ^= 0x01;
	assert_refused(buf, len, HERR_INVALID, "CSR signature does not verify");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_altered_request_info_refused)
{
	unsigned char der[BUF_SIZE], buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t der_len, len;
	unsigned char *cn;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &plain_req, 1, der, sizeof(der), &der_len);
	cn = memmem(der, der_len, "hearth-test", strlen("hearth-test"));
	ck_assert_ptr_nonnull(cn);
	cn[0] = 'H';
	assert_refused(der, der_len, HERR_INVALID, "CSR signature does not verify");
	pem_wrap(der, der_len, buf, sizeof(buf), &len);
	assert_refused(buf, len, HERR_INVALID, "CSR signature does not verify");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_ca_true_refused)
{
	static const struct req ca_req = { MBEDTLS_MD_SHA256, bc_ca_true, sizeof(bc_ca_true) };
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &ca_req, 0, buf, sizeof(buf), &len);
	assert_refused(buf, len, HERR_INVALID,
		       "CSR asks to be a certificate authority (basicConstraints CA:TRUE)");
	make_csr(&pk, &ca_req, 1, buf, sizeof(buf), &len);
	assert_refused(buf, len, HERR_INVALID, "CA:TRUE");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_ca_false_accepted)
{
	static const struct req explicit_req = {
		MBEDTLS_MD_SHA256, bc_ca_false_explicit, sizeof(bc_ca_false_explicit)
	};
	static const struct req default_req = {
		MBEDTLS_MD_SHA256, bc_ca_false_default, sizeof(bc_ca_false_default)
	};
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &explicit_req, 0, buf, sizeof(buf), &len);
	assert_accepted(buf, len, &pk, "EC P-256");
	make_csr(&pk, &default_req, 0, buf, sizeof(buf), &len);
	assert_accepted(buf, len, &pk, "EC P-256");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_malformed_basic_constraints_refused)
{
	static const struct req bad_req = { MBEDTLS_MD_SHA256, bc_truncated, sizeof(bc_truncated) };
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	/* Correctly signed, so only the walk over the attributes can catch it. */
	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &bad_req, 0, buf, sizeof(buf), &len);
	assert_refused(buf, len, HERR_INVALID, "basicConstraints is malformed");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_garbage_refused)
{
	static const char text[] = "hello, I am definitely a certificate request";
	static const unsigned char binary[] = { 0x30, 0x82, 0xff, 0xff, 0x02, 0x01, 0x00, 0x13 };
	static const char bad_base64[] = PEM_CSR_BEGIN "!!!! not base64 !!!!\n" PEM_CSR_END;

	assert_refused((const unsigned char *)text, strlen(text), HERR_INVALID, "neither a PEM nor a DER");
	assert_refused(binary, sizeof(binary), HERR_INVALID, "does not parse");
	assert_refused((const unsigned char *)bad_base64, strlen(bad_base64), HERR_INVALID,
		       "does not parse");
}
END_TEST

START_TEST(test_empty_refused)
{
	static const unsigned char one[1] = { 0 };
	struct ca_csr out;
	char why[64];

	assert_refused(one, 0, HERR_INVALID, "empty");
	ck_assert_int_eq(ca_csr_check(NULL, 0, &out, why, sizeof(why)), HERR_INVALID);
	ck_assert_str_eq(why, "CSR is empty");
}
END_TEST

START_TEST(test_truncated_refused)
{
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &plain_req, 0, buf, sizeof(buf), &len);
	assert_refused(buf, len / 2, HERR_INVALID, "does not parse");
	make_csr(&pk, &plain_req, 1, buf, sizeof(buf), &len);
	assert_refused(buf, len - 1, HERR_INVALID, "does not parse");
	assert_refused(buf, len / 2, HERR_INVALID, "does not parse");
	assert_refused(buf, 1, HERR_INVALID, "does not parse");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_trailing_der_refused)
{
	unsigned char buf[BUF_SIZE];
	mbedtls_pk_context pk;
	size_t len;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_csr(&pk, &plain_req, 1, buf, sizeof(buf), &len);
	buf[len] = 0x00;
	assert_refused(buf, len + 1, HERR_INVALID, "does not parse");
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_certificate_refused)
{
	unsigned char buf[BUF_SIZE];
	mbedtls_x509write_cert w;
	mbedtls_pk_context pk;
	mbedtls_mpi serial;
	int ret;

	gen_ec(&pk, MBEDTLS_ECP_DP_SECP256R1);
	mbedtls_mpi_init(&serial);
	ck_assert_int_eq(mbedtls_mpi_lset(&serial, 1), 0);
	mbedtls_x509write_crt_init(&w);
	mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&w, &pk);
	mbedtls_x509write_crt_set_issuer_key(&w, &pk);
	ck_assert_int_eq(mbedtls_x509write_crt_set_subject_name(&w, SUBJECT), 0);
	ck_assert_int_eq(mbedtls_x509write_crt_set_issuer_name(&w, SUBJECT), 0);
	ck_assert_int_eq(mbedtls_x509write_crt_set_serial(&w, &serial), 0);
	ck_assert_int_eq(mbedtls_x509write_crt_set_validity(&w, "20240101000000", "20340101000000"), 0);

	ck_assert_int_eq(mbedtls_x509write_crt_pem(&w, buf, sizeof(buf), rng_callback, NULL), 0);
	assert_refused(buf, strlen((char *)buf), HERR_INVALID, "\"CERTIFICATE\" is not a certificate request");

	ret = mbedtls_x509write_crt_der(&w, buf, sizeof(buf), rng_callback, NULL);
	ck_assert_int_gt(ret, 0);
	assert_refused(buf + sizeof(buf) - (size_t)ret, (size_t)ret, HERR_INVALID, "does not parse");

	mbedtls_x509write_crt_free(&w);
	mbedtls_mpi_free(&serial);
	mbedtls_pk_free(&pk);
}
END_TEST

START_TEST(test_why_is_bounded)
{
	static const char text[] = "garbage";
	struct ca_csr out;
	char why[8];

	memset(why, 'x', sizeof(why));
	ck_assert_int_eq(ca_csr_check((const unsigned char *)text, strlen(text), &out, why, sizeof(why)),
			 HERR_INVALID);
	ck_assert_uint_eq(strlen(why), sizeof(why) - 1);
	/* No room for a reason at all is allowed too. */
	ck_assert_int_eq(ca_csr_check((const unsigned char *)text, strlen(text), &out, NULL, 0),
			 HERR_INVALID);
}
END_TEST

static Suite *csr_suite(void)
{
	Suite *s = suite_create("csr");
	TCase *tc = tcase_create("core");
	TCase *rsa = tcase_create("rsa");

	tcase_add_test(tc, test_p256_pem_accepted);
	tcase_add_test(tc, test_p256_der_accepted);
	tcase_add_test(tc, test_new_csr_pem_label_accepted);
	tcase_add_test(tc, test_size_limit_exact_accepted);
	tcase_add_test(tc, test_oversize_refused);
	tcase_add_test(tc, test_p384_refused);
	tcase_add_test(tc, test_sha1_refused);
	tcase_add_test(tc, test_bad_signature_refused);
	tcase_add_test(tc, test_altered_request_info_refused);
	tcase_add_test(tc, test_ca_true_refused);
	tcase_add_test(tc, test_ca_false_accepted);
	tcase_add_test(tc, test_malformed_basic_constraints_refused);
	tcase_add_test(tc, test_garbage_refused);
	tcase_add_test(tc, test_empty_refused);
	tcase_add_test(tc, test_truncated_refused);
	tcase_add_test(tc, test_trailing_der_refused);
	tcase_add_test(tc, test_certificate_refused);
	tcase_add_test(tc, test_why_is_bounded);
	suite_add_tcase(s, tc);

	/* RSA key generation is slow, more so under sanitizers; Check's default is 4 s. */
	tcase_set_timeout(rsa, 120);
	tcase_add_test(rsa, test_rsa1024_refused);
	tcase_add_test(rsa, test_rsa2048_accepted);
	suite_add_tcase(s, rsa);
	return s;
}

int main(void)
{
	return unit_run(csr_suite());
}
