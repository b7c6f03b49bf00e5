/* Unit tests of server/backup: which paths a backup may hold; a backup restored into a new
 * directory gives back the same files (keys 0600) and a store without the backup's tables; a
 * restore that fails half-way leaves nothing; an older store is migrated as the restore opens it.
 * The backup file is looked at (and tampered with) with sqlite3 directly. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/fsutil.h"
#include "server/backup.h"
#include "server/datadir.h"
#include "server/migrations.h"
#include "server/store.h"
#include "tests/unit/unit.h"

static char src[4096], dst[4096], file[4096];

static void paths_setup(void)
{
	unit_at(src, sizeof(src), "src");
	unit_at(dst, sizeof(dst), "dst");
	unit_at(file, sizeof(file), "backup.db");
}

static void init_src(void)
{
	struct datadir_init_opts opts = { .actor = "test" };
	int created = 0;

	ck_assert_int_eq(datadir_init(src, &opts, &created), HERR_OK);
	ck_assert_int_eq(created, 1);
}

static int64_t sql_int(const char *db_path, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	sqlite3 *db = NULL;
	int64_t v;

	ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return v;
}

static void sql_exec(const char *db_path, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql, err ? err : "?");
	sqlite3_close(db);
}

static unsigned mode_at(const char *dir, const char *rel)
{
	char path[4096];
	struct stat st;

	unit_path(path, sizeof(path), dir, rel);
	ck_assert_msg(lstat(path, &st) == 0, "%s missing", path);
	return (unsigned)(st.st_mode & 07777);
}

static void same_file(const char *rel)
{
	uint8_t *a = NULL, *b = NULL;
	size_t la = 0, lb = 0;
	char pa[4096], pb[4096];

	unit_path(pa, sizeof(pa), src, rel);
	unit_path(pb, sizeof(pb), dst, rel);
	unit_read_file(pa, 1 << 20, &a, &la);
	unit_read_file(pb, 1 << 20, &b, &lb);
	ck_assert_msg(la == lb && memcmp(a, b, la) == 0, "%s differs", rel);
	free(a);
	free(b);
}

static int ok(const char *p)
{
	return backup_path_ok(p, strlen(p));
}

START_TEST(test_paths)
{
	ck_assert(ok("keys/issuing.key"));
	ck_assert(ok("certs/ca.pem"));
	ck_assert(ok("firmware/0123abcd.bin"));
	ck_assert(ok("firmware/sub/x.bin"));
	ck_assert(ok("hearth.conf"));
	ck_assert(ok("keys/..x"));
	ck_assert(!ok(""));
	ck_assert(!ok("hearth.db"));
	ck_assert(!ok("hearth.conf/x"));
	ck_assert(!ok("/etc/passwd"));
	ck_assert(!ok("/keys/x"));
	ck_assert(!ok("../x"));
	ck_assert(!ok("keys/../../x"));
	ck_assert(!ok("keys/.."));
	ck_assert(!ok("keys/./x"));
	ck_assert(!ok("keys/a/../b"));
	ck_assert(!ok("keys"));
	ck_assert(!ok("keys/"));
	ck_assert(!ok("keys//x"));
	ck_assert(!ok("keys/x/"));
	ck_assert(!ok("keysx/y"));
	ck_assert(!ok("other/x"));
	ck_assert(!ok("keys/a\nb"));
	ck_assert(!backup_path_ok("keys/a\0b", 8)); /* a NUL inside */
	{
		char longp[BACKUP_PATH_MAX + 2];

		memset(longp, 'a', sizeof(longp) - 1);
		memcpy(longp, "keys/", 5);
		longp[BACKUP_PATH_MAX] = '\0';
		ck_assert(ok(longp));
		longp[BACKUP_PATH_MAX] = 'a';
		longp[BACKUP_PATH_MAX + 1] = '\0';
		ck_assert(!ok(longp));
	}
}
END_TEST

START_TEST(test_round_trip)
{
	static const char *const files[] = { DATADIR_ROOT_KEY, DATADIR_ISSUING_KEY, DATADIR_ENDPOINT_KEY,
					     DATADIR_MANIFEST_KEY, DATADIR_ROOT_CERT, DATADIR_ISSUING_CERT,
					     DATADIR_ENDPOINT_CERT, DATADIR_CA_BUNDLE, DATADIR_CRL };
	struct backup_summary sum;
	char path[4096], db[4096];
	struct stat st;
	size_t i;

	init_src();
	unit_path(path, sizeof(path), src, "firmware");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	unit_path(path, sizeof(path), src, "firmware/abc.bin");
	ck_assert_int_eq(fs_write_file(path, "image", 5, 0600, 1), HERR_OK);
	unit_path(path, sizeof(path), src, "firmware/.upload-XYZ");
	ck_assert_int_eq(fs_write_file(path, "partial", 7, 0600, 1), HERR_OK);
	unit_path(path, sizeof(path), src, "certs/ca.pem.tmp.1234.0badcafe");
	ck_assert_int_eq(fs_write_file(path, "half", 4, 0600, 1), HERR_OK);

	ck_assert_int_eq(backup_create(src, file, "test", &sum), HERR_OK);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(sum.files, 10); /* 4 keys, 5 certificates, 1 image; no temporaries */
	ck_assert_int_eq(sum.schema_version, store_schema_latest());
	ck_assert_uint_gt(sum.rows, 0);
	ck_assert_int_eq(sql_int(file, "SELECT COUNT(*) FROM hearth_backup_files WHERE path LIKE '%.upload-%'"
				 " OR path LIKE '%.tmp.%'"), 0);
	unit_path(db, sizeof(db), src, DATADIR_DB);
	ck_assert_int_eq(sql_int(db, "SELECT COUNT(*) FROM audit_log WHERE action = 'backup.create'"), 1);
	/* Never over an existing file. */
	ck_assert_int_eq(backup_create(src, file, "test", &sum), HERR_EXISTS);

	ck_assert_int_eq(backup_restore(file, dst, "test", &sum), HERR_OK);
	ck_assert_uint_eq(sum.files, 10);
	ck_assert_uint_eq(mode_at(dst, "."), 0700);
	ck_assert_uint_eq(mode_at(dst, "keys"), 0700);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		same_file(files[i]);
	same_file("firmware/abc.bin");
	ck_assert_uint_eq(mode_at(dst, DATADIR_ISSUING_KEY), 0600);
	ck_assert_uint_eq(mode_at(dst, DATADIR_CA_BUNDLE), 0644);
	ck_assert_uint_eq(mode_at(dst, "firmware/abc.bin"), 0600);
	unit_path(path, sizeof(path), dst, "firmware/.upload-XYZ");
	ck_assert(!fs_exists(path));
	unit_path(db, sizeof(db), dst, DATADIR_DB);
	ck_assert_int_eq(sql_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'hearth_backup%'"), 0);
	ck_assert_int_eq(sql_int(db, "SELECT COUNT(*) FROM audit_log WHERE action = 'backup.restore'"), 1);
	ck_assert_int_eq(sql_int(db, "SELECT COUNT(*) FROM audit_log WHERE action = 'datadir.init'"), 1);
	unit_path(path, sizeof(path), dst, DATADIR_DB ".restore");
	ck_assert(!fs_exists(path));
	/* Not into a directory that holds something. */
	ck_assert_int_eq(backup_restore(file, dst, "test", &sum), HERR_STATE);
}
END_TEST

/* A backup whose files cannot all be written (keys/a is a file, keys/a/b needs it as a directory)
 * fails half-way; what was written is gone, the directory too. */
START_TEST(test_restore_fails_cleanly)
{
	struct backup_summary sum;

	init_src();
	ck_assert_int_eq(backup_create(src, file, "test", &sum), HERR_OK);
	sql_exec(file, "INSERT INTO hearth_backup_files VALUES ('keys/a', 384, X'41'), ('keys/a/b', 384, X'42')");
	ck_assert_int_ne(backup_restore(file, dst, "test", &sum), HERR_OK);
	ck_assert(!fs_exists(dst));

	/* An empty directory given stays, empty, with its mode. */
	ck_assert_int_eq(mkdir(dst, 0750), 0);
	ck_assert_int_ne(backup_restore(file, dst, "test", &sum), HERR_OK);
	ck_assert_int_eq(fs_dir_is_empty(dst), 1);
	ck_assert_uint_eq(mode_at(dst, "."), 0750);
}
END_TEST

/* hearth_backup_files rebuilt without its constraints, as a hand-made file may have it. */
#define UNCHECKED "CREATE TABLE f2 AS SELECT * FROM hearth_backup_files; DROP TABLE hearth_backup_files;" \
		  " ALTER TABLE f2 RENAME TO hearth_backup_files; "

/* Refused before anything is written: another format, a path outside, no content, a mode that is
 * not a number, the same path twice, a newer schema. */
START_TEST(test_restore_refusals)
{
	static const char *const tamper[] = {
		"UPDATE hearth_backup_meta SET value = '2' WHERE key = 'format'",
		"INSERT INTO hearth_backup_files VALUES ('../x', 420, X'41')",
		"INSERT INTO hearth_backup_files VALUES ('/tmp/x', 420, X'41')",
		"INSERT INTO hearth_backup_files VALUES ('hearth.db', 420, X'41')",
		UNCHECKED "INSERT INTO hearth_backup_files VALUES ('certs/x', 420, NULL)",
		UNCHECKED "INSERT INTO hearth_backup_files VALUES ('certs/x', 'rw', X'41')",
		UNCHECKED "INSERT INTO hearth_backup_files SELECT * FROM hearth_backup_files WHERE path = 'certs/ca.pem'",
		"INSERT INTO schema_version VALUES (999, 'future', 0);"
		" UPDATE hearth_backup_meta SET value = '999' WHERE key = 'schema_version'",
	};
	struct backup_summary sum;
	char copy[4096 + 8];
	size_t i;

	init_src();
	ck_assert_int_eq(backup_create(src, file, "test", &sum), HERR_OK);
	for (i = 0; i < sizeof(tamper) / sizeof(tamper[0]); i++) {
		uint8_t *data = NULL;
		size_t len = 0;

		snprintf(copy, sizeof(copy), "%s.%zu", file, i);
		unit_read_file(file, 64 << 20, &data, &len);
		ck_assert_int_eq(fs_write_file(copy, data, len, 0600, 1), HERR_OK);
		free(data);
		sql_exec(copy, tamper[i]);
		ck_assert_msg(backup_restore(copy, dst, "test", &sum) != HERR_OK, "accepted: %s", tamper[i]);
		ck_assert_msg(!fs_exists(dst), "left %s: %s", dst, tamper[i]);
	}
}
END_TEST

/* A backup of a store at schema 3 comes back migrated (with the copy the store makes first). */
START_TEST(test_restore_older_schema)
{
	struct backup_summary sum;
	char db[4096], backups[4096];
	sqlite3 *h = NULL;
	unsigned i;

	init_src();
	unit_path(db, sizeof(db), src, DATADIR_DB);
	ck_assert_int_eq(unlink(db), 0);
	ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
				      " name TEXT NOT NULL, applied_at INTEGER NOT NULL)", NULL, NULL, NULL), SQLITE_OK);
	for (i = 0; i < migration_count && migrations[i].version <= 3; i++) {
		char ins[128];

		ck_assert_int_eq(sqlite3_exec(h, migrations[i].sql, NULL, NULL, NULL), SQLITE_OK);
		snprintf(ins, sizeof(ins), "INSERT INTO schema_version VALUES (%d, 'x', 0)", migrations[i].version);
		ck_assert_int_eq(sqlite3_exec(h, ins, NULL, NULL, NULL), SQLITE_OK);
	}
	ck_assert_int_eq(sqlite3_exec(h, "INSERT INTO models (name, created_at) VALUES ('m1', 0);"
				      "INSERT INTO devices VALUES ('old-dev', 'm1', 'active', 0, NULL)", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(h);

	/* Backing it up does not migrate it (nor audit there). */
	ck_assert_int_eq(backup_create(src, file, "test", &sum), HERR_OK);
	ck_assert_int_eq(sum.schema_version, 3);
	ck_assert_int_eq(sql_int(db, "SELECT MAX(version) FROM schema_version"), 3);

	ck_assert_int_eq(backup_restore(file, dst, "test", &sum), HERR_OK);
	ck_assert_int_eq(sum.schema_version, 3);
	ck_assert_int_eq(sum.schema_now, store_schema_latest());
	unit_path(db, sizeof(db), dst, DATADIR_DB);
	ck_assert_int_eq(sql_int(db, "SELECT MAX(version) FROM schema_version"), store_schema_latest());
	ck_assert_int_eq(sql_int(db, "SELECT COUNT(*) FROM devices WHERE id = 'old-dev'"), 1);
	unit_path(backups, sizeof(backups), dst, "backups");
	ck_assert_int_eq(fs_dir_is_empty(backups), 0);
}
END_TEST

static Suite *backup_suite(void)
{
	Suite *s = suite_create("backup");
	TCase *tc = tcase_create("backup");

	unit_scratch_add(tc);
	tcase_add_checked_fixture(tc, paths_setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_paths);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_restore_fails_cleanly);
	tcase_add_test(tc, test_restore_refusals);
	tcase_add_test(tc, test_restore_older_schema);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(backup_suite());
}
