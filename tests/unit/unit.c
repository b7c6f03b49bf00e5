/* Helpers shared by the Check unit tests; see unit.h. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/asn1.h>

#include "common/fsutil.h"
#include "tests/unit/unit.h"

/* Removal refuses anything outside this, whatever a bug hands it. */
#define SCRATCH_PREFIX "/tmp/hearth-"

static char scratch_root[256]; /* made in the runner process, before the tests fork */
static char scratch_dir[4096]; /* made in each test's child */

struct unit_pki unit_pki;

int unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* --- scratch directories ---------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "unit: cannot remove %s: %s\n", path, strerror(errno));
	return 0; /* go on: remove what can be removed */
}

/* Depth first, not following symlinks nor leaving the file system, at most 16 descriptors open. */
static void remove_tree(const char *path)
{
	if (strncmp(path, SCRATCH_PREFIX, strlen(SCRATCH_PREFIX)) != 0 || strstr(path, "/..")) {
		fprintf(stderr, "unit: not removing %s: not a scratch directory\n", path);
		return;
	}
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void scratch_root_setup(void)
{
	int n = snprintf(scratch_root, sizeof(scratch_root), SCRATCH_PREFIX "%s-XXXXXX",
			 program_invocation_short_name);

	ck_assert_msg(n > 0 && (size_t)n < sizeof(scratch_root), "program name too long");
	ck_assert_msg(mkdtemp(scratch_root) != NULL, "mkdtemp %s: %s", scratch_root,
		      strerror(errno));
}

static void scratch_root_teardown(void)
{
	if (scratch_root[0] != '\0')
		remove_tree(scratch_root);
	scratch_root[0] = '\0';
}

static void scratch_dir_setup(void)
{
	unit_path(scratch_dir, sizeof(scratch_dir), scratch_root, "t-XXXXXX");
	ck_assert_msg(mkdtemp(scratch_dir) != NULL, "mkdtemp %s: %s", scratch_dir, strerror(errno));
}

void unit_scratch_add(TCase *tc)
{
	tcase_add_unchecked_fixture(tc, scratch_root_setup, scratch_root_teardown);
	tcase_add_checked_fixture(tc, scratch_dir_setup, NULL);
}

const char *unit_dir(void)
{
	ck_assert_msg(scratch_dir[0] != '\0', "no scratch directory: unit_scratch_add not called");
	return scratch_dir;
}

void unit_path(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	ck_assert_msg(n >= 0 && (size_t)n < size, "path %s/%s does not fit in %zu bytes", dir, name,
		      size);
}

void unit_at(char *buf, size_t size, const char *name)
{
	unit_path(buf, size, unit_dir(), name);
}

/* --- files ------------------------------------------------------------------------------------ */

void unit_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
	enum herr rc = fs_read_file(path, max, data, len);

	ck_assert_msg(rc == HERR_OK, "reading %s: %s", path, herr_str(rc));
}

/* --- test PKI --------------------------------------------------------------------------------- */

enum herr unit_issue(enum ca_cert_kind kind, const char *cn, const char *const *sans,
		     size_t san_count, unsigned days, const struct ca_key *subject,
		     struct ca_key *issuer_key, const struct ca_cert *issuer_cert, char **pem,
		     struct ca_cert_info *info)
{
	struct ca_cert_request req;
	uint8_t spki[CA_SPKI_MAX];
	size_t spki_len = 0;

	ck_assert_int_eq(ca_key_spki(subject, spki, sizeof(spki), &spki_len), HERR_OK);
	ck_assert_uint_gt(spki_len, 0);
	memset(&req, 0, sizeof(req));
	req.kind = kind;
	req.common_name = cn;
	req.sans = sans;
	req.san_count = san_count;
	req.days = days;
	req.subject_spki = spki;
	req.subject_spki_len = spki_len;
	return ca_cert_issue(&req, issuer_key, issuer_cert, pem, info);
}

void unit_pki_make(struct unit_pki *pki)
{
	struct ca_cert_info info;

	memset(pki, 0, sizeof(*pki));
	ck_assert_int_eq(ca_key_generate(&pki->root_key), HERR_OK);
	ck_assert_int_eq(ca_key_generate(&pki->issuing_key), HERR_OK);
	ck_assert_int_eq(unit_issue(CA_CERT_ROOT, "test root", NULL, 0, 3650, pki->root_key,
				    pki->root_key, NULL, &pki->root_pem, &info), HERR_OK);
	ck_assert_int_eq(ca_cert_parse((const uint8_t *)pki->root_pem, strlen(pki->root_pem),
				       &pki->root_cert), HERR_OK);
	ck_assert_int_eq(unit_issue(CA_CERT_ISSUING, "test issuing", NULL, 0, 1825,
				    pki->issuing_key, pki->root_key, pki->root_cert,
				    &pki->issuing_pem, &info), HERR_OK);
	ck_assert_int_eq(ca_cert_parse((const uint8_t *)pki->issuing_pem, strlen(pki->issuing_pem),
				       &pki->issuing_cert), HERR_OK);
}

void unit_pki_free(struct unit_pki *pki)
{
	free(pki->issuing_pem);
	free(pki->root_pem);
	ca_cert_free(pki->issuing_cert);
	ca_cert_free(pki->root_cert);
	ca_key_free(pki->issuing_key);
	ca_key_free(pki->root_key);
	memset(pki, 0, sizeof(*pki));
}

static void pki_setup(void)
{
	unit_pki_make(&unit_pki);
}

static void pki_teardown(void)
{
	unit_pki_free(&unit_pki);
}

void unit_pki_add(TCase *tc)
{
	tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
}

/* --- X.509 ------------------------------------------------------------------------------------ */

int unit_find_ext(const mbedtls_x509_buf *exts, const char *oid, size_t oid_len,
		  unsigned char **val, size_t *val_len, int *critical)
{
	unsigned char *p = exts->p, *end = exts->p + exts->len;
	size_t len;

	if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
		return -1;
	end = p + len;
	while (p < end) {
		unsigned char *ext_end, *id;
		size_t id_len;

		if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
			return -1;
		ext_end = p + len;
		if (mbedtls_asn1_get_tag(&p, ext_end, &id_len, MBEDTLS_ASN1_OID))
			return -1;
		id = p;
		p += id_len;
		*critical = 0;
		if (p < ext_end && *p == MBEDTLS_ASN1_BOOLEAN &&
		    mbedtls_asn1_get_bool(&p, ext_end, critical) != 0)
			return -1;
		if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0)
			return -1;
		if (id_len == oid_len && memcmp(id, oid, oid_len) == 0) {
			*val = p;
			*val_len = len;
			return 0;
		}
		p = ext_end;
	}
	return -1;
}

/* Days from civil (H. Hinnant's algorithm), not timegm: ca/der uses timegm, so this is a second
 * opinion rather than a copy of what it checks. */
int64_t unit_x509_time_to_unix(const mbedtls_x509_time *t)
{
	int64_t y = t->year - (t->mon <= 2), era, yoe, doy, doe;

	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (t->mon + (t->mon > 2 ? -3 : 9)) + 2) / 5 + t->day - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + doe - 719468) * 86400 + t->hour * 3600 + t->min * 60 + t->sec;
}
