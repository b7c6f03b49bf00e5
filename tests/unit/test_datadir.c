/* Unit tests of server/datadir and server/pki: a new data directory is private and complete, a
 * second init changes nothing, foreign directories are refused, and a device certificate issued
 * and then revoked ends up on the published CRL (which mbedTLS then enforces). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/bignum.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "ca/cert.h"
#include "ca/key.h"
#include "common/fsutil.h"
#include "server/datadir.h"
#include "server/pki.h"
#include "server/store.h"
#include "tests/unit/unit.h"

static char dir[4096]; /* the data directory: "data" in the test's own directory, not yet there */

static void dir_setup(void)
{
	unit_path(dir, sizeof(dir), unit_dir(), "data");
}

static void in_dir(char *buf, size_t size, const char *rel)
{
	unit_path(buf, size, dir, rel);
}

static unsigned mode_of(const char *rel)
{
	char path[4096];
	struct stat st;

	in_dir(path, sizeof(path), rel);
	ck_assert_msg(lstat(path, &st) == 0, "%s missing", rel);
	return (unsigned)(st.st_mode & 07777);
}

static void init_dir(void)
{
	struct datadir_init_opts opts = { .actor = "test" };
	int created = -1;

	ck_assert_int_eq(datadir_init(dir, &opts, &created), HERR_OK);
	ck_assert_int_eq(created, 1);
}

static void read_rel(const char *rel, uint8_t **data, size_t *len)
{
	char path[4096];

	in_dir(path, sizeof(path), rel);
	unit_read_file(path, 1 << 20, data, len);
}

START_TEST(test_init_fresh)
{
	static const char *const keys[] = { DATADIR_ROOT_KEY, DATADIR_ISSUING_KEY,
					    DATADIR_ENDPOINT_KEY, DATADIR_MANIFEST_KEY };
	static const char *const certs[] = { DATADIR_ROOT_CERT, DATADIR_ISSUING_CERT,
					     DATADIR_ENDPOINT_CERT, DATADIR_CA_BUNDLE, DATADIR_CRL };
	mode_t old = umask(0); /* the modes must not depend on the caller's umask */
	struct ca_key *key = NULL;
	char path[4096];
	size_t i;

	ck_assert_int_eq(datadir_is_initialised(dir), 0);
	init_dir();
	umask(old);
	ck_assert_int_eq(datadir_is_initialised(dir), 1);
	ck_assert_uint_eq(mode_of("."), 0700);
	ck_assert_uint_eq(mode_of("keys"), 0700);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		ck_assert_msg(mode_of(keys[i]) == 0600, "%s: mode %04o", keys[i], mode_of(keys[i]));
		in_dir(path, sizeof(path), keys[i]);
		ck_assert_int_eq(ca_key_load(path, &key), HERR_OK);
		ca_key_free(key);
		key = NULL;
	}
	/* Certificates and the CRL are public (mode_of fails on a missing file). */
	ck_assert_uint_eq(mode_of("certs"), 0700);
	for (i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
		ck_assert_msg(mode_of(certs[i]) == 0644, "%s: mode %04o", certs[i], mode_of(certs[i]));
	/* Staging leftovers would make the next run think the directory is foreign. */
	in_dir(path, sizeof(path), "hearth.db.init");
	ck_assert_int_eq(fs_exists(path), 0);
}
END_TEST

/* The files of a new directory chain up: endpoint (+ issuing) verifies against the bundle devices
 * get, with the default names, and the issuing certificate belongs to the issuing key. */
START_TEST(test_init_chain)
{
	mbedtls_x509_crt chain, trust;
	struct ca_cert *issuing = NULL;
	struct ca_key *issuing_key = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	uint32_t flags = 0;
	char path[4096];

	init_dir();
	mbedtls_x509_crt_init(&chain);
	mbedtls_x509_crt_init(&trust);
	read_rel(DATADIR_ENDPOINT_CERT, &data, &len);
	ck_assert_int_eq(mbedtls_x509_crt_parse(&chain, data, len + 1), 0);
	ck_assert_ptr_nonnull(chain.next); /* endpoint.crt carries the issuing CA after the leaf */
	free(data);
	read_rel(DATADIR_CA_BUNDLE, &data, &len);
	ck_assert_int_eq(mbedtls_x509_crt_parse(&trust, data, len + 1), 0);
	free(data);
	ck_assert_int_eq(mbedtls_x509_crt_verify(&chain, &trust, NULL, "localhost", &flags, NULL,
						 NULL), 0);
	ck_assert_uint_eq(flags, 0);
	mbedtls_x509_crt_free(&trust);
	mbedtls_x509_crt_free(&chain);

	in_dir(path, sizeof(path), DATADIR_ISSUING_CERT);
	ck_assert_int_eq(ca_cert_load(path, &issuing), HERR_OK);
	in_dir(path, sizeof(path), DATADIR_ISSUING_KEY);
	ck_assert_int_eq(ca_key_load(path, &issuing_key), HERR_OK);
	ck_assert_int_eq(ca_cert_matches_key(issuing, issuing_key), 1);
	ca_key_free(issuing_key);
	ca_cert_free(issuing);
}
END_TEST

START_TEST(test_init_twice)
{
	struct datadir_init_opts opts = { .actor = "test" };
	struct stat before, after;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	char path[4096];
	int created = -1;

	init_dir();
	in_dir(path, sizeof(path), DATADIR_ROOT_KEY);
	ck_assert_int_eq(stat(path, &before), 0);
	read_rel(DATADIR_ROOT_KEY, &a, &alen);
	ck_assert_int_eq(datadir_init(dir, &opts, &created), HERR_OK);
	ck_assert_int_eq(created, 0);
	ck_assert_int_eq(stat(path, &after), 0);
	read_rel(DATADIR_ROOT_KEY, &b, &blen);
	ck_assert_int_eq(before.st_ino, after.st_ino);
	ck_assert_int_eq(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
	ck_assert_int_eq(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
	ck_assert_uint_eq(alen, blen);
	ck_assert_mem_eq(a, b, alen);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_init_foreign_dir)
{
	struct datadir_init_opts opts = { .actor = "test" };
	char path[4096];
	uint8_t *data = NULL;
	size_t len = 0;
	int created = -1;

	ck_assert_int_eq(mkdir(dir, 0700), 0);
	in_dir(path, sizeof(path), "notes.txt");
	ck_assert_int_eq(fs_write_file(path, "mine", 4, 0644, 1), HERR_OK);
	ck_assert_int_eq(datadir_is_initialised(dir), -1);
	ck_assert_int_eq(datadir_init(dir, &opts, &created), HERR_STATE);
	ck_assert_int_eq(created, 0);
	/* Nothing was added or changed. */
	in_dir(path, sizeof(path), "keys");
	ck_assert_int_eq(fs_exists(path), 0);
	read_rel("notes.txt", &data, &len);
	ck_assert_str_eq((char *)data, "mine");
	free(data);
}
END_TEST

/* An existing empty directory may be initialised, and is made private even if it was not. */
START_TEST(test_init_existing_empty_dir)
{
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	init_dir();
	ck_assert_uint_eq(mode_of("."), 0700);
}
END_TEST

START_TEST(test_init_names)
{
	static const char *const names[] = { "hub.example", "10.0.0.7" };
	struct datadir_init_opts opts = { .names = names, .name_count = 2, .endpoint_days = 2,
					  .actor = "test" };
	mbedtls_x509_crt crt;
	uint8_t *data = NULL;
	size_t len = 0;
	uint32_t flags = 0;
	int created = -1;
	int64_t na;

	ck_assert_int_eq(datadir_init(dir, &opts, &created), HERR_OK);
	ck_assert_int_eq(created, 1);
	read_rel(DATADIR_ENDPOINT_CERT, &data, &len);
	mbedtls_x509_crt_init(&crt);
	ck_assert_int_eq(mbedtls_x509_crt_parse(&crt, data, len + 1), 0);
	free(data);
	/* Name check against the leaf alone: trust the issuing CA that follows it in the file. */
	ck_assert_int_eq(mbedtls_x509_crt_verify(&crt, crt.next, NULL, "hub.example", &flags, NULL,
						 NULL), 0);
	flags = 0;
	ck_assert_int_ne(mbedtls_x509_crt_verify(&crt, crt.next, NULL, "localhost", &flags, NULL,
						 NULL), 0);
	ck_assert(flags & MBEDTLS_X509_BADCERT_CN_MISMATCH);
	na = unit_x509_time_to_unix(&crt.valid_to);
	ck_assert_int_le(llabs(na - ((int64_t)time(NULL) + 2 * 86400)), 60);
	mbedtls_x509_crt_free(&crt);
}
END_TEST

START_TEST(test_open)
{
	struct datadir *dd = (struct datadir *)1;
	char path[4096];

	ck_assert_int_eq(datadir_open(dir, &dd), HERR_NOTFOUND); /* not there yet */
	ck_assert_ptr_null(dd);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(datadir_open(dir, &dd), HERR_NOTFOUND); /* empty */
	ck_assert_ptr_null(dd);
	ck_assert_int_eq(rmdir(dir), 0);

	init_dir();
	ck_assert_int_eq(datadir_open(dir, &dd), HERR_OK);
	ck_assert_ptr_nonnull(dd);
	ck_assert_ptr_nonnull(dd->store);
	ck_assert_str_eq(dd->path, dir);
	ck_assert_int_eq(store_schema_version(dd->store), store_schema_latest());
	ck_assert_int_eq(datadir_file(dd, DATADIR_CRL, path, sizeof(path)), HERR_OK);
	ck_assert_str_eq(path + strlen(dir), "/certs/crl.pem");
	datadir_close(dd);
	datadir_close(NULL);

	ck_assert_int_eq(chmod(dir, 0755), 0);
	dd = (struct datadir *)1;
	ck_assert_int_eq(datadir_open(dir, &dd), HERR_STATE);
	ck_assert_ptr_null(dd);
	ck_assert_int_eq(chmod(dir, 0700), 0);
}
END_TEST

static int crl_lists(const mbedtls_x509_crl *crl, const char *serial_hex)
{
	const mbedtls_x509_crl_entry *e;
	mbedtls_mpi want, got;
	int found = 0;

	mbedtls_mpi_init(&want);
	mbedtls_mpi_init(&got);
	ck_assert_int_eq(mbedtls_mpi_read_string(&want, 16, serial_hex), 0);
	for (e = &crl->entry; e && e->raw.len > 0; e = e->next) {
		ck_assert_int_eq(mbedtls_mpi_read_binary(&got, e->serial.p, e->serial.len), 0);
		if (mbedtls_mpi_cmp_mpi(&want, &got) == 0)
			found++;
	}
	mbedtls_mpi_free(&got);
	mbedtls_mpi_free(&want);
	return found;
}

static void parse_crl_file(mbedtls_x509_crl *crl)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int ret;

	read_rel(DATADIR_CRL, &data, &len);
	mbedtls_x509_crl_init(crl);
	ret = mbedtls_x509_crl_parse(crl, data, len + 1);
	ck_assert_msg(ret == 0, "mbedtls_x509_crl_parse: -0x%04x", (unsigned)-ret);
	free(data);
}

/* Verify the device certificate against the directory's CA bundle, with the CRL if given. */
static uint32_t device_verify_flags(const char *pem, mbedtls_x509_crl *crl)
{
	mbedtls_x509_crt leaf, trust;
	uint8_t *data = NULL;
	size_t len = 0;
	uint32_t flags = 0;

	mbedtls_x509_crt_init(&leaf);
	mbedtls_x509_crt_init(&trust);
	ck_assert_int_eq(mbedtls_x509_crt_parse(&leaf, (const unsigned char *)pem, strlen(pem) + 1), 0);
	read_rel(DATADIR_CA_BUNDLE, &data, &len);
	ck_assert_int_eq(mbedtls_x509_crt_parse(&trust, data, len + 1), 0);
	free(data);
	(void)mbedtls_x509_crt_verify(&leaf, &trust, crl, NULL, &flags, NULL, NULL);
	mbedtls_x509_crt_free(&trust);
	mbedtls_x509_crt_free(&leaf);
	return flags;
}

START_TEST(test_issue_revoke_publish)
{
	struct datadir *dd = NULL;
	struct ca_key *dev_key = NULL;
	struct ca_cert_info info, info2;
	struct store_device d;
	mbedtls_x509_crl crl;
	uint8_t spki[CA_SPKI_MAX];
	size_t spki_len = 0;
	char *pem = NULL, *pem2 = NULL, *crl_pem = NULL;
	int certs = -1;

	init_dir();
	ck_assert_int_eq(datadir_open(dir, &dd), HERR_OK);

	/* The CRL made at init is there and empty. */
	parse_crl_file(&crl);
	ck_assert_uint_eq(crl.entry.raw.len, 0);
	mbedtls_x509_crl_free(&crl);

	ck_assert_int_eq(ca_key_generate(&dev_key), HERR_OK);
	ck_assert_int_eq(ca_key_spki(dev_key, spki, sizeof(spki), &spki_len), HERR_OK);
	ck_assert_int_eq(store_begin(dd->store), HERR_OK);
	ck_assert_int_eq(pki_issue_device(dd, "dev-1", "sensor-v1", spki, spki_len, 0, "test", NULL, &pem,
					  &info), HERR_OK);
	ck_assert_int_eq(store_commit(dd->store), HERR_OK);
	ck_assert_ptr_nonnull(pem);
	ck_assert_str_eq(info.subject, "CN=dev-1");
	ck_assert_int_eq(store_device_get(dd->store, "dev-1", &d), HERR_OK);
	ck_assert_str_eq(d.model, "sensor-v1");
	ck_assert_int_eq(d.cert_not_after, info.not_after);
	ck_assert_uint_eq(device_verify_flags(pem, NULL), 0);

	/* The same id twice is refused, and nothing is issued. */
	ck_assert_int_eq(store_begin(dd->store), HERR_OK);
	ck_assert_int_eq(pki_issue_device(dd, "dev-1", "sensor-v1", spki, spki_len, 0, "test", NULL, &pem2,
					  &info2), HERR_EXISTS);
	ck_assert_ptr_null(pem2);
	store_rollback(dd->store);

	ck_assert_int_eq(store_begin(dd->store), HERR_OK);
	ck_assert_int_eq(store_device_revoke(dd->store, "dev-1", (int64_t)time(NULL), &certs),
			 HERR_OK);
	ck_assert_int_eq(certs, 1);
	ck_assert_int_eq(pki_publish_crl(dd, &crl_pem), HERR_OK);
	ck_assert_int_eq(store_commit(dd->store), HERR_OK);
	ck_assert_ptr_nonnull(crl_pem);
	ck_assert_uint_eq(mode_of(DATADIR_CRL), 0644);

	parse_crl_file(&crl);
	ck_assert_int_eq(crl_lists(&crl, info.serial_hex), 1);
	/* The returned PEM is what was written. */
	{
		uint8_t *data = NULL;
		size_t len = 0;

		read_rel(DATADIR_CRL, &data, &len);
		ck_assert_uint_eq(len, strlen(crl_pem));
		ck_assert_mem_eq(data, crl_pem, len);
		free(data);
	}
	/* mbedTLS, given the CRL, now rejects the device's certificate. */
	ck_assert(device_verify_flags(pem, &crl) & MBEDTLS_X509_BADCERT_REVOKED);
	mbedtls_x509_crl_free(&crl);

	free(crl_pem);
	free(pem);
	ca_key_free(dev_key);
	datadir_close(dd);
}
END_TEST

/* The anchors a device gets at enrollment: computed here independently with mbedTLS from the files
 * (the endpoint's public key from its certificate, the manifest key's from its private key). */
START_TEST(test_anchors)
{
	struct pki_anchors a;
	struct datadir *dd = NULL;
	struct ca_key *mkey = NULL;
	struct ca_cert *ecert = NULL;
	mbedtls_pk_context pub;
	uint8_t spki[256];
	size_t spki_len = 0;
	char path[4096], pin[CA_PIN_LEN], keyid[CA_HEX256_LEN];
	unsigned char der[256];
	int n;

	init_dir();
	ck_assert_int_eq(datadir_open(dir, &dd), HERR_OK);
	memset(&a, 0, sizeof(a));
	ck_assert_int_eq(pki_anchors(dd, &a), HERR_OK);

	in_dir(path, sizeof(path), DATADIR_ENDPOINT_CERT);
	ck_assert_int_eq(ca_cert_load(path, &ecert), HERR_OK);
	ck_assert_int_eq(ca_cert_spki(ecert, spki, sizeof(spki), &spki_len), HERR_OK);
	ca_pin_from_spki(spki, spki_len, pin);
	ck_assert_str_eq(a.endpoint_pin, pin);
	ck_assert_int_eq(strncmp(a.endpoint_pin, "sha256/", 7), 0);

	in_dir(path, sizeof(path), DATADIR_MANIFEST_KEY);
	ck_assert_int_eq(ca_key_load(path, &mkey), HERR_OK);
	ck_assert_int_eq(ca_key_spki(mkey, spki, sizeof(spki), &spki_len), HERR_OK);
	ca_sha256_hex(spki, spki_len, keyid);
	ck_assert_str_eq(a.manifest_keyid, keyid);
	/* The PEM is that very key: parsed back, it has the same SubjectPublicKeyInfo. */
	ck_assert_ptr_nonnull(a.manifest_public_pem);
	ck_assert_int_eq(strncmp(a.manifest_public_pem, "-----BEGIN PUBLIC KEY-----\n", 27), 0);
	mbedtls_pk_init(&pub);
	ck_assert_int_eq(mbedtls_pk_parse_public_key(&pub, (const unsigned char *)a.manifest_public_pem,
						     strlen(a.manifest_public_pem) + 1), 0);
	n = mbedtls_pk_write_pubkey_der(&pub, der, sizeof(der));
	ck_assert_int_eq(n, (int)spki_len);
	ck_assert_int_eq(memcmp(der + sizeof(der) - n, spki, spki_len), 0);
	mbedtls_pk_free(&pub);

	pki_anchors_clear(&a);
	ck_assert_ptr_null(a.manifest_public_pem);
	pki_anchors_clear(&a);
	ca_key_free(mkey);
	ca_cert_free(ecert);
	datadir_close(dd);
}
END_TEST

static Suite *datadir_suite(void)
{
	Suite *s = suite_create("datadir");
	TCase *tc = tcase_create("datadir");

	unit_scratch_add(tc);
	tcase_add_checked_fixture(tc, dir_setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_init_fresh);
	tcase_add_test(tc, test_init_chain);
	tcase_add_test(tc, test_init_twice);
	tcase_add_test(tc, test_init_foreign_dir);
	tcase_add_test(tc, test_init_existing_empty_dir);
	tcase_add_test(tc, test_init_names);
	tcase_add_test(tc, test_open);
	tcase_add_test(tc, test_issue_revoke_publish);
	tcase_add_test(tc, test_anchors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(datadir_suite());
}
