/* Unit tests of server/store through the SQLite backend: schema versions, WAL, constraints mapped to
 * the project's errors, devices and their certificates, revocation, CRL numbers, transactions and
 * the audit log, API and enrollment tokens, device queries and tags. The tests look at the database
 * file with sqlite3 directly where the store API has no way to show a fact (journal mode, row
 * counts, a newer schema). */
#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/fsutil.h"
#include "server/migrations.h"
#include "server/store.h"
#include "tests/unit/unit.h"

static char db_path[4096];
static struct store *st;

static const int64_t T0 = 1718000000; /* 2024-06-10 */

/* Each test: a new database in its own directory, opened. */
static void db_setup(void)
{
	unit_at(db_path, sizeof(db_path), "hearth.db");
	ck_assert_int_eq(store_open_sqlite(db_path, &st), HERR_OK);
	ck_assert_ptr_nonnull(st);
}

static void db_teardown(void)
{
	store_close(st);
	st = NULL;
}

/* One integer from a query run on a separate connection to the database file path. */
static int64_t sql_int_at(const char *path, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	sqlite3 *db = NULL;
	int64_t v;

	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK, "%s: %s", sql,
		      sqlite3_errmsg(db));
	ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return v;
}

/* The same on the test's database. */
static int64_t sql_int(const char *sql)
{
	return sql_int_at(db_path, sql);
}

/* 1 if a step of the query plan of sql, on the test's database, contains what. */
static int sql_int_plan(const char *sql, const char *what)
{
	sqlite3_stmt *stmt = NULL;
	sqlite3 *db = NULL;
	char q[512];
	int found = 0;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, q, -1, &stmt, NULL) == SQLITE_OK, "%s: %s", q, sqlite3_errmsg(db));
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(stmt, 3);

		found |= detail && strstr(detail, what) != NULL;
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return found;
}

static void sql_exec(const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;
	int rc;

	ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : "?");
	sqlite3_close(db);
}

static struct store_cert device_cert(const char *serial, const char *device, const char *fp,
				     int64_t not_after)
{
	struct store_cert c = {
		.serial = serial, .kind = "device", .device_id = device, .subject = "CN=x",
		.fingerprint = fp, .not_before = T0, .not_after = not_after,
		.pem = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
	};

	return c;
}

static void add_device(const char *id)
{
	ck_assert_int_eq(store_model_ensure(st, "m1", T0), HERR_OK);
	ck_assert_int_eq(store_device_insert(st, id, "m1", T0), HERR_OK);
}

START_TEST(test_schema_fresh_and_reopen)
{
	int v = store_schema_version(st);

	ck_assert_int_ge(store_schema_latest(), 1);
	ck_assert_int_eq(v, store_schema_latest());
	ck_assert_int_eq(sql_int("SELECT MAX(version) FROM schema_version"), v);
	/* Each migration recorded exactly once. */
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM schema_version"), v);
	store_close(st);
	st = NULL;
	ck_assert_int_eq(store_open_sqlite(db_path, &st), HERR_OK);
	ck_assert_int_eq(store_schema_version(st), v);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM schema_version"), v);
}
END_TEST

START_TEST(test_schema_newer_refused)
{
	struct store *other = (struct store *)1;

	store_close(st);
	st = NULL;
	sql_exec("INSERT INTO schema_version VALUES (999, 'future', 0)");
	ck_assert_int_eq(store_open_sqlite(db_path, &other), HERR_SCHEMA);
	ck_assert_ptr_null(other);
	/* Refusing changed nothing. */
	ck_assert_int_eq(sql_int("SELECT MAX(version) FROM schema_version"), 999);
}
END_TEST

START_TEST(test_not_a_database)
{
	char path[4096];
	struct store *other = (struct store *)1;

	ck_assert_int_eq(fs_path(path, sizeof(path), "%s.junk", db_path), HERR_OK);
	ck_assert_int_eq(fs_write_file(path, "this is not an SQLite database, not at all...\n", 47,
				       0600, 1), HERR_OK);
	ck_assert_int_ne(store_open_sqlite(path, &other), HERR_OK);
	ck_assert_ptr_null(other);
	ck_assert_int_eq(fs_path(path, sizeof(path), "%s.d/missing/hearth.db", db_path), HERR_OK);
	ck_assert_int_ne(store_open_sqlite(path, &other), HERR_OK);
	ck_assert_ptr_null(other);
}
END_TEST

START_TEST(test_wal)
{
	sqlite3_stmt *stmt = NULL;
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_device_unknown_model)
{
	struct store_device d;

	/* Foreign keys are on: a device of a model never ensured is invalid input, not a clash. */
	ck_assert_int_eq(store_device_insert(st, "dev-1", "no-such-model", T0), HERR_INVALID);
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_NOTFOUND);
}
END_TEST

START_TEST(test_device_insert_get)
{
	struct store_device d;

	ck_assert_int_eq(store_model_ensure(st, "m1", T0), HERR_OK);
	ck_assert_int_eq(store_model_ensure(st, "m1", T0 + 5), HERR_OK);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM models"), 1);
	ck_assert_int_eq(sql_int("SELECT created_at FROM models WHERE name = 'm1'"), T0);

	ck_assert_int_eq(store_device_insert(st, "dev-1", "m1", T0 + 10), HERR_OK);
	ck_assert_int_eq(store_device_insert(st, "dev-1", "m1", T0 + 11), HERR_EXISTS);

	memset(&d, 0x55, sizeof(d));
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_OK);
	ck_assert_str_eq(d.id, "dev-1");
	ck_assert_str_eq(d.model, "m1");
	ck_assert_str_eq(d.status, "active");
	ck_assert_int_eq(d.created_at, T0 + 10);
	ck_assert_int_eq(d.revoked_at, 0);
	ck_assert_int_eq(d.cert_not_after, 0);

	ck_assert_int_eq(store_device_get(st, "dev-2", &d), HERR_NOTFOUND);
	/* Ids are compared exactly. */
	ck_assert_int_eq(store_device_get(st, "DEV-1", &d), HERR_NOTFOUND);
}
END_TEST

START_TEST(test_cert_insert)
{
	struct store_cert c = device_cert("0A1B", "dev-1", "fp1", T0 + 1000);
	struct store_device d;

	add_device("dev-1");
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_OK);
	ck_assert_int_eq(d.cert_not_after, T0 + 1000);

	/* Same serial again: a clash. */
	c.fingerprint = "fp2";
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_EXISTS);
	/* Same fingerprint under another serial: a clash too. */
	c.serial = "0A1C";
	c.fingerprint = "fp1";
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_EXISTS);
	/* A certificate for a device that does not exist: a missing reference. */
	c = device_cert("0A1D", "ghost", "fp3", T0 + 1000);
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_INVALID);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM certificates"), 1);

	/* A later certificate moves the device's expiry forward. */
	c = device_cert("0A1E", "dev-1", "fp4", T0 + 5000);
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_OK);
	ck_assert_int_eq(d.cert_not_after, T0 + 5000);

	/* CA certificates carry no device. */
	c = device_cert("0B00", NULL, "fp5", T0 + 9000);
	c.kind = "root";
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);
}
END_TEST

/* Rows that break the schema's CHECK and NOT NULL rules are invalid input. HERR_EXISTS would tell
 * the caller "already there", which is false and leads to wrong messages. */
START_TEST(test_cert_insert_invalid_row)
{
	struct store_cert c;
	enum herr rc;

	add_device("dev-1");
	c = device_cert("0C01", NULL, "fpa", T0 + 1000); /* kind device without a device */
	rc = store_cert_insert(st, &c);
	ck_assert_msg(rc == HERR_INVALID, "device cert without device id: %s", herr_str(rc));
	c = device_cert("0C02", "dev-1", "fpb", T0 + 1000);
	c.kind = "bogus";
	rc = store_cert_insert(st, &c);
	ck_assert_msg(rc == HERR_INVALID, "unknown kind: %s", herr_str(rc));
	c = device_cert("0C03", "dev-1", "fpc", T0 + 1000);
	c.subject = NULL;
	rc = store_cert_insert(st, &c);
	ck_assert_msg(rc == HERR_INVALID, "NULL subject: %s", herr_str(rc));
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM certificates"), 0);
}
END_TEST

struct revoked_seen {
	char serials[8][41];
	int64_t at[8];
	int count;
};

static int collect_revoked(void *ctx, const char *serial, int64_t revoked_at)
{
	struct revoked_seen *r = ctx;

	ck_assert_int_lt(r->count, 8);
	snprintf(r->serials[r->count], sizeof(r->serials[0]), "%s", serial);
	r->at[r->count] = revoked_at;
	r->count++;
	return 0;
}

START_TEST(test_revoke)
{
	struct store_cert c;
	struct store_device d;
	struct revoked_seen seen;
	int64_t now = T0 + 100;
	int certs = -1;

	add_device("dev-1");
	add_device("dev-2");
	add_device("dev-3");
	c = device_cert("AA01", "dev-1", "fp1", now + 86400);
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);
	/* dev-2's certificate has already expired: revoking it must not put it on the CRL. */
	c = device_cert("BB02", "dev-2", "fp2", now - 10);
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);
	/* dev-3's is valid and stays so. */
	c = device_cert("CC03", "dev-3", "fp3", now + 86400);
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);

	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(store_cert_list_revoked(st, now, collect_revoked, &seen), HERR_OK);
	ck_assert_int_eq(seen.count, 0);

	ck_assert_int_eq(store_device_revoke(st, "dev-1", now, &certs), HERR_OK);
	ck_assert_int_eq(certs, 1);
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_OK);
	ck_assert_str_eq(d.status, "revoked");
	ck_assert_int_eq(d.revoked_at, now);
	ck_assert_int_eq(d.cert_not_after, 0); /* no valid certificate left */

	certs = -1;
	ck_assert_int_eq(store_device_revoke(st, "dev-1", now + 1, &certs), HERR_STATE);
	ck_assert_int_eq(certs, 0);
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_OK);
	ck_assert_int_eq(d.revoked_at, now); /* the first revocation stands */

	ck_assert_int_eq(store_device_revoke(st, "dev-2", now, &certs), HERR_OK);
	ck_assert_int_eq(certs, 1);

	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(store_cert_list_revoked(st, now, collect_revoked, &seen), HERR_OK);
	ck_assert_int_eq(seen.count, 1);
	ck_assert_str_eq(seen.serials[0], "AA01");
	ck_assert_int_eq(seen.at[0], now);

	/* Once AA01 has expired too, the CRL need not list it. */
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(store_cert_list_revoked(st, now + 86401, collect_revoked, &seen), HERR_OK);
	ck_assert_int_eq(seen.count, 0);

	ck_assert_int_eq(store_device_get(st, "dev-3", &d), HERR_OK);
	ck_assert_str_eq(d.status, "active");
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM certificates WHERE status = 'valid'"), 1);
}
END_TEST

struct list_seen {
	char ids[8][65];
	int count, stop_after;
};

static int collect_device(void *ctx, const struct store_device *d)
{
	struct list_seen *l = ctx;

	ck_assert_int_lt(l->count, 8);
	snprintf(l->ids[l->count], sizeof(l->ids[0]), "%s", d->id);
	l->count++;
	return l->stop_after > 0 && l->count >= l->stop_after;
}

START_TEST(test_device_list)
{
	struct list_seen seen;

	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(store_device_list(st, collect_device, &seen), HERR_OK);
	ck_assert_int_eq(seen.count, 0);

	add_device("c-3");
	add_device("a-1");
	add_device("b-2");
	add_device("d-4");
	memset(&seen, 0, sizeof(seen));
	ck_assert_int_eq(store_device_list(st, collect_device, &seen), HERR_OK);
	ck_assert_int_eq(seen.count, 4);
	ck_assert_str_eq(seen.ids[0], "a-1");
	ck_assert_str_eq(seen.ids[1], "b-2");
	ck_assert_str_eq(seen.ids[2], "c-3");
	ck_assert_str_eq(seen.ids[3], "d-4");

	memset(&seen, 0, sizeof(seen));
	seen.stop_after = 2;
	ck_assert_int_eq(store_device_list(st, collect_device, &seen), HERR_OK);
	ck_assert_int_eq(seen.count, 2);
	ck_assert_str_eq(seen.ids[1], "b-2");
}
END_TEST

START_TEST(test_crl_numbers)
{
	uint64_t n = 0;

	ck_assert_int_eq(store_crl_next_number(st, &n), HERR_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(store_crl_next_number(st, &n), HERR_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(store_crl_next_number(st, &n), HERR_OK);
	ck_assert_uint_eq(n, 3);
	/* It survives a reopen. */
	store_close(st);
	st = NULL;
	ck_assert_int_eq(store_open_sqlite(db_path, &st), HERR_OK);
	ck_assert_int_eq(store_crl_next_number(st, &n), HERR_OK);
	ck_assert_uint_eq(n, 4);
}
END_TEST

START_TEST(test_transactions)
{
	struct store_device d;

	ck_assert_int_eq(store_model_ensure(st, "m1", T0), HERR_OK);

	ck_assert_int_eq(store_begin(st), HERR_OK);
	ck_assert_int_eq(store_device_insert(st, "gone", "m1", T0), HERR_OK);
	ck_assert_int_eq(store_device_get(st, "gone", &d), HERR_OK); /* visible inside */
	store_rollback(st);
	ck_assert_int_eq(store_device_get(st, "gone", &d), HERR_NOTFOUND);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM devices"), 0);

	ck_assert_int_eq(store_begin(st), HERR_OK);
	ck_assert_int_eq(store_device_insert(st, "kept", "m1", T0), HERR_OK);
	/* Not visible to another connection before the commit. */
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM devices"), 0);
	ck_assert_int_eq(store_commit(st), HERR_OK);
	ck_assert_int_eq(store_device_get(st, "kept", &d), HERR_OK);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM devices WHERE id = 'kept'"), 1);

	/* A rollback outside a transaction is harmless; a nested begin is refused. */
	store_rollback(st);
	ck_assert_int_eq(store_device_get(st, "kept", &d), HERR_OK);
	ck_assert_int_eq(store_begin(st), HERR_OK);
	ck_assert_int_ne(store_begin(st), HERR_OK);
	store_rollback(st);
}
END_TEST

START_TEST(test_audit)
{
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM audit_log"), 0);
	ck_assert_int_eq(store_audit(st, T0, "cli:alice", "device.add", "dev-1", "serial 0A"),
			 HERR_OK);
	ck_assert_int_eq(store_audit(st, T0 + 1, "cli:alice", "device.revoke", "dev-1", NULL),
			 HERR_OK);
	ck_assert_int_eq(store_audit(st, T0 + 2, "cli:bob", "ca.rotate", NULL, NULL), HERR_OK);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM audit_log"), 3);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM audit_log WHERE actor = 'cli:alice'"
				 " AND action = 'device.add' AND target = 'dev-1'"
				 " AND detail = 'serial 0A' AND at = 1718000000"), 1);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM audit_log WHERE detail IS NULL"), 2);

	/* An audit entry inside a rolled-back transaction goes with it. */
	ck_assert_int_eq(store_begin(st), HERR_OK);
	ck_assert_int_eq(store_audit(st, T0 + 3, "cli:bob", "device.add", "dev-9", NULL), HERR_OK);
	store_rollback(st);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM audit_log"), 3);
}
END_TEST


/* In place of the test's database, one made by an older hearth: the migrations up to version,
 * then the given rows. */
static void make_old_db(int version, const char *rows)
{
	sqlite3 *db = NULL;
	unsigned i;
	char *err = NULL;

	store_close(st);
	st = NULL;
	unlink(db_path);
	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
				      " name TEXT NOT NULL, applied_at INTEGER NOT NULL)", NULL, NULL, &err),
			 SQLITE_OK);
	for (i = 0; i < migration_count && migrations[i].version <= version; i++) {
		char ins[128];

		ck_assert_msg(sqlite3_exec(db, migrations[i].sql, NULL, NULL, &err) == SQLITE_OK, "%s", err);
		snprintf(ins, sizeof(ins), "INSERT INTO schema_version VALUES (%d, 'x', 0)", migrations[i].version);
		ck_assert_int_eq(sqlite3_exec(db, ins, NULL, NULL, &err), SQLITE_OK);
	}
	ck_assert_msg(sqlite3_exec(db, rows, NULL, NULL, &err) == SQLITE_OK, "%s", err);
	sqlite3_close(db);
}

/* One made by a hearth before integration clients (schema 3), with a device certificate in it. */
static void make_schema3_db(void)
{
	make_old_db(3, "INSERT INTO models (name, created_at) VALUES ('m1', 0);"
		    "INSERT INTO devices VALUES ('old-dev', 'm1', 'active', 0, NULL);"
		    "INSERT INTO certificates VALUES ('0A', 'device', 'old-dev', 'CN=old-dev',"
		    " 'fp-old', 0, 4000000000, 'valid', NULL, 'pem');");
}

/* A schema-3 database is brought to the current schema without losing the certificate, which
 * still admits. */
START_TEST(test_upgrade_keeps_certificates)
{
	char role[STORE_ROLE_MAX];

	make_schema3_db();
	ck_assert_int_eq(store_open_sqlite(db_path, &st), HERR_OK);
	ck_assert_int_eq(store_schema_version(st), store_schema_latest());
	ck_assert_int_ge(store_schema_latest(), 4);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM certificates WHERE serial = '0A' AND device_id = 'old-dev'"
				 " AND client_id IS NULL AND fingerprint = 'fp-old'"), 1);
	ck_assert_int_eq(store_identity_ok(st, "old-dev", "0A", role), HERR_OK);
	ck_assert_str_eq(role, "device");
	/* The indexes came back with the rebuilt table. */
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN"
				 " ('certificates_device', 'certificates_client', 'certificates_revoked')"), 3);
}
END_TEST

/* An outbox filled before bridge_state kept its totals (schema 12) is counted when migrated, and
 * the totals follow inserts and deletes from then on. */
START_TEST(test_upgrade_counts_outbox)
{
	struct store_bridge_state b;
	int64_t dropped = -1;

	make_old_db(12, "INSERT INTO bridge_outbox VALUES (1, 'd', 't', 'aaaa', 0, 4, 10, 99999999999);"
		    "INSERT INTO bridge_outbox VALUES (2, 'd', 't', 'bbbbbb', 0, 6, 11, 99999999999);"
		    "INSERT INTO bridge_outbox VALUES (3, 'd', 't', 'cc', 0, 2, 12, 99999999999);"
		    "UPDATE bridge_state SET next_seq = 4;");
	ck_assert_int_eq(store_open_sqlite(db_path, &st), HERR_OK);
	ck_assert_int_eq(store_bridge_state(st, &b), HERR_OK);
	ck_assert_int_eq(b.rows, 3);
	ck_assert_int_eq(b.bytes, 12);
	ck_assert_int_eq(b.oldest, 10);
	/* 12 bytes, at most 7 kept: the oldest two go (4 + 6), the newest stays. */
	ck_assert_int_eq(store_bridge_outbox_trim(st, 7, 0, 1000, &dropped), HERR_OK);
	ck_assert_int_eq(dropped, 2);
	ck_assert_int_eq(store_bridge_state(st, &b), HERR_OK);
	ck_assert_int_eq(b.rows, 1);
	ck_assert_int_eq(b.bytes, 2);
	ck_assert_int_eq(sql_int("SELECT seq FROM bridge_outbox"), 3);
}
END_TEST

/* Before migrating, the store copies the database as it was into backups/ next to it (0700; the
 * copy 0600, named after the old schema), and the copy holds the old schema and its rows. */
START_TEST(test_upgrade_backs_up_first)
{
	char backups[4096], copy[4096 + 256] = "";
	struct dirent *de;
	struct stat sb;
	int found = 0;
	DIR *d;

	make_schema3_db();
	ck_assert_int_eq(store_open_sqlite(db_path, &st), HERR_OK);
	ck_assert_int_eq(store_schema_version(st), store_schema_latest());
	unit_at(backups, sizeof(backups), "backups");
	ck_assert_int_eq(lstat(backups, &sb), 0);
	ck_assert(S_ISDIR(sb.st_mode));
	ck_assert_uint_eq(sb.st_mode & 07777, 0700);
	d = opendir(backups);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		found++;
		ck_assert_msg(strncmp(de->d_name, "hearth-schema-3-", 16) == 0, "%s", de->d_name);
		snprintf(copy, sizeof(copy), "%s/%s", backups, de->d_name);
	}
	closedir(d);
	ck_assert_int_eq(found, 1);
	ck_assert_int_eq(lstat(copy, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);
	ck_assert_int_eq(sql_int_at(copy, "SELECT MAX(version) FROM schema_version"), 3);
	ck_assert_int_eq(sql_int_at(copy, "SELECT COUNT(*) FROM certificates WHERE serial = '0A'"), 1);
	ck_assert_int_eq(sql_int_at(copy, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'clients'"), 0);

	/* Opened again: nothing to migrate, no second copy. */
	store_close(st);
	ck_assert_int_eq(store_open_sqlite(db_path, &st), HERR_OK);
	found = 0;
	d = opendir(backups);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		found += de->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(found, 1);
}
END_TEST

/* No copy, no migration: with backups/ in the way (a file), the old database is refused and stays
 * exactly at its schema. */
START_TEST(test_upgrade_refused_without_backup)
{
	char backups[4096];
	struct store *other = (struct store *)1;

	make_schema3_db();
	unit_at(backups, sizeof(backups), "backups");
	ck_assert_int_eq(fs_write_file(backups, "in the way\n", 11, 0600, 1), HERR_OK);
	ck_assert_int_ne(store_open_sqlite(db_path, &other), HERR_OK);
	ck_assert_ptr_null(other);
	ck_assert_int_eq(sql_int("SELECT MAX(version) FROM schema_version"), 3);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM sqlite_master WHERE name = 'clients'"), 0);

	/* Once the way is clear, it migrates (after its copy). */
	unlink(backups);
	ck_assert_int_eq(store_open_sqlite(db_path, &st), HERR_OK);
	ck_assert_int_eq(store_schema_version(st), store_schema_latest());
}
END_TEST

/* A new database has nothing to lose: no copy is made. */
START_TEST(test_new_database_not_backed_up)
{
	char backups[4096];

	store_close(st);
	ck_assert_int_eq(store_open_sqlite(db_path, &st), HERR_OK);
	unit_at(backups, sizeof(backups), "backups");
	ck_assert(!fs_exists(backups));
}
END_TEST

struct id_seen {
	char ids[4][65];
	int count;
};

static int collect_id(void *ctx, const char *id, const char *status)
{
	struct id_seen *seen = ctx;

	ck_assert_str_eq(status, "revoked");
	ck_assert_int_lt(seen->count, 4);
	snprintf(seen->ids[seen->count++], sizeof(seen->ids[0]), "%s", id);
	return 0;
}

/* Clients and devices share one id namespace; a client's certificate admits it with its role;
 * revoking it shows in the inactive list and refuses the certificate. */
START_TEST(test_clients)
{
	struct store_cert c = {
		.serial = "C1", .kind = "client", .client_id = "ha", .subject = "CN=ha",
		.fingerprint = "fpc1", .not_before = T0, .not_after = T0 + 86400, .pem = "pem",
	};
	struct store_cert d = device_cert("D1", "dev-1", "fpd1", T0 + 86400);
	char role[STORE_ROLE_MAX];
	struct id_seen seen = { 0 };
	int certs = -1;

	add_device("dev-1");
	ck_assert_int_eq(store_client_insert(st, "ha", "integration", T0), HERR_OK);
	ck_assert_int_eq(store_client_insert(st, "ha", "integration", T0), HERR_EXISTS);
	ck_assert_int_eq(store_client_insert(st, "dev-1", "integration", T0), HERR_EXISTS);
	ck_assert_int_eq(store_device_insert(st, "ha", "m1", T0), HERR_EXISTS);
	ck_assert_int_eq(store_client_insert(st, "x", "admin", T0), HERR_INVALID);
	ck_assert_int_eq(store_client_insert(st, "y", "device", T0), HERR_INVALID);
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);
	ck_assert_int_eq(store_cert_insert(st, &d), HERR_OK);
	/* A client certificate names its client, and only that. */
	c.serial = "C2"; c.fingerprint = "fpc2"; c.client_id = NULL;
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_INVALID);
	c.client_id = "ha"; c.device_id = "dev-1";
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_INVALID);

	ck_assert_int_eq(store_identity_ok(st, "ha", "C1", role), HERR_OK);
	ck_assert_str_eq(role, "integration");
	ck_assert_int_eq(store_identity_ok(st, "dev-1", "D1", role), HERR_OK);
	ck_assert_str_eq(role, "device");
	/* A certificate admits only the identity it was issued to. */
	ck_assert_int_eq(store_identity_ok(st, "dev-1", "C1", role), HERR_NOTFOUND);
	ck_assert_int_eq(store_identity_ok(st, "ha", "D1", role), HERR_NOTFOUND);
	ck_assert_int_eq(store_identity_ok(st, "nobody", "C1", role), HERR_NOTFOUND);

	ck_assert_int_eq(store_client_revoke(st, "ha", T0 + 50, &certs), HERR_OK);
	ck_assert_int_eq(certs, 1);
	ck_assert_int_eq(store_client_revoke(st, "ha", T0 + 60, &certs), HERR_STATE);
	ck_assert_int_eq(store_client_revoke(st, "nobody", T0 + 60, &certs), HERR_NOTFOUND);
	ck_assert_int_eq(store_identity_ok(st, "ha", "C1", role), HERR_STATE);
	ck_assert_int_eq(store_list_inactive_since(st, T0 + 50, collect_id, &seen), HERR_OK);
	ck_assert_int_eq(seen.count, 1);
	ck_assert_str_eq(seen.ids[0], "ha");
	seen.count = 0;
	ck_assert_int_eq(store_list_inactive_since(st, T0 + 51, collect_id, &seen), HERR_OK);
	ck_assert_int_eq(seen.count, 0);
	/* The endpoint asks this every second: both halves search an index of the revoked rows. */
	ck_assert_int_eq(sql_int_plan("SELECT id, status FROM devices WHERE status <> 'active' AND revoked_at >= 1",
				      "SEARCH devices USING INDEX devices_revoked"), 1);
	ck_assert_int_eq(sql_int_plan("SELECT id, status FROM clients WHERE status <> 'active' AND revoked_at >= 1",
				      "SEARCH clients USING INDEX clients_revoked"), 1);
	/* The revoked client certificate is on the CRL like a device's. */
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM certificates WHERE serial = 'C1' AND status = 'revoked'"), 1);
}
END_TEST

struct closed_seen {
	char rows[16][96];
	int count;
};

static int collect_closed(void *ctx, const struct store_row *r)
{
	struct closed_seen *c = ctx;

	ck_assert_int_lt(c->count, 16);
	snprintf(c->rows[c->count++], sizeof(c->rows[0]), "%s %s %lld/%u %s=%g n=%lld", r->device_id, r->field,
		 (long long)r->bucket_start, r->bucket_s, r->agg, r->value, (long long)r->n);
	return 0;
}

static void fold(const char *dev, const char *field, int64_t start, uint32_t bucket, const char *agg,
		 double v)
{
	struct store_sample s = { .device_id = dev, .field = field, .bucket_start = start, .bucket_s = bucket,
				  .retention_days = 30, .agg = agg, .n = 1, .value = v };

	ck_assert_int_eq(store_telemetry_fold(st, &s), HERR_OK);
}

/* The devices a manifest goes to, as one line of ids. */
static int join_id(void *ctx, const char *id)
{
	char *line = ctx;
	size_t n = strlen(line);

	snprintf(line + n, 256 - n, "%s%s", n ? " " : "", id);
	return 0;
}

static const char *targets(const char *target)
{
	static char line[256];

	line[0] = '\0';
	ck_assert_int_eq(store_manifest_devices(st, target, join_id, line), HERR_OK);
	return line;
}

/* A manifest's target: every active device, a model's, or one device; anything else, nobody. */
START_TEST(test_manifest_devices)
{
	int certs = 0;

	add_device("b");
	add_device("a");
	add_device("c");
	ck_assert_int_eq(store_model_ensure(st, "m2", T0), HERR_OK);
	ck_assert_int_eq(store_device_insert(st, "d", "m2", T0), HERR_OK);
	ck_assert_int_eq(store_device_revoke(st, "c", T0 + 1, &certs), HERR_OK);

	ck_assert_str_eq(targets("all"), "a b d");
	ck_assert_str_eq(targets("model:m1"), "a b");
	ck_assert_str_eq(targets("model:m2"), "d");
	ck_assert_str_eq(targets("device:b"), "b");
	ck_assert_str_eq(targets("device:c"), "");       /* revoked */
	ck_assert_str_eq(targets("device:zz"), "");
	ck_assert_str_eq(targets("model:"), "");
	ck_assert_str_eq(targets("device:"), "");
	ck_assert_str_eq(targets("All"), "");
	ck_assert_str_eq(targets("b"), "");
	ck_assert_str_eq(targets(""), "");
}
END_TEST

/* Retention: a row goes once its bucket ended retention_days ago, each row by its own bucket and
 * retention; the DELETE finds them with the expiry index, not by reading the table. */
START_TEST(test_telemetry_expire)
{
	const int64_t H = 3600, D = 86400, B = (T0 / H) * H;
	struct store_sample s = { .device_id = "a", .field = "temp", .bucket_start = B, .bucket_s = H,
				  .retention_days = 2, .agg = "mean", .n = 1, .value = 1 };
	int64_t deleted = -1;

	add_device("a");
	ck_assert_int_eq(store_telemetry_fold(st, &s), HERR_OK);     /* ends B + H, goes at B + H + 2 D */
	s.field = "hum";
	s.retention_days = 7;
	ck_assert_int_eq(store_telemetry_fold(st, &s), HERR_OK);     /* goes at B + H + 7 D */
	s.field = "week";
	s.bucket_s = 7 * D;
	s.bucket_start = B - 7 * D;
	s.retention_days = 2;
	ck_assert_int_eq(store_telemetry_fold(st, &s), HERR_OK);     /* ends B, goes at B + 2 D */

	ck_assert_int_eq(store_telemetry_expire(st, B + 2 * D - 1, -1, &deleted), HERR_OK);
	ck_assert_int_eq(deleted, 0);
	ck_assert_int_eq(store_telemetry_expire(st, B + 2 * D, -1, &deleted), HERR_OK);
	ck_assert_int_eq(deleted, 1);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM telemetry WHERE field = 'week'"), 0);
	ck_assert_int_eq(store_telemetry_expire(st, B + H + 2 * D - 1, -1, &deleted), HERR_OK);
	ck_assert_int_eq(deleted, 0);
	ck_assert_int_eq(store_telemetry_expire(st, B + H + 2 * D, -1, &deleted), HERR_OK);
	ck_assert_int_eq(deleted, 1);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM telemetry WHERE field = 'hum'"), 1);
	/* At most limit rows at a time (the ticker deletes in chunks). */
	s.bucket_start = B;
	s.bucket_s = H;
	s.retention_days = 7;
	s.field = "f1";
	ck_assert_int_eq(store_telemetry_fold(st, &s), HERR_OK);
	s.field = "f2";
	ck_assert_int_eq(store_telemetry_fold(st, &s), HERR_OK);
	ck_assert_int_eq(store_telemetry_expire(st, B + H + 7 * D, 2, &deleted), HERR_OK);
	ck_assert_int_eq(deleted, 2);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM telemetry"), 1);
	ck_assert_int_eq(store_telemetry_expire(st, B + H + 7 * D, 2, &deleted), HERR_OK);
	ck_assert_int_eq(deleted, 1);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM telemetry"), 0);

	/* The statement as sq_telemetry_expire writes it: SQLite uses the index only for the same
	 * expression; without it the subquery would scan the table. */
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM pragma_index_list('telemetry')"
				 " WHERE name = 'telemetry_expiry'"), 1);
	ck_assert_int_eq(sql_int_plan("DELETE FROM telemetry WHERE rowid IN (SELECT rowid FROM telemetry"
				      " WHERE bucket_start + bucket_s + retention_days * 86400 <= 1 LIMIT 5)",
				      "SEARCH telemetry USING INDEX telemetry_expiry"), 1);
}
END_TEST

/* The feed asks for buckets that closed in a window: (after, until], by device, bucket, field. */
START_TEST(test_telemetry_closed)
{
	const int64_t H = 3600, B = (T0 / H) * H; /* an hour boundary */
	struct closed_seen c = { 0 };
	int64_t until = -1;

	add_device("a");
	add_device("b");
	fold("b", "temp", B, H, "mean", 20);
	fold("b", "temp", B, H, "mean", 22);
	fold("a", "temp", B, H, "max", 5);
	fold("a", "hum", B, H, "mean", 40);
	fold("a", "temp", B + H, H, "max", 7);        /* the next hour: still open at B + H */
	fold("a", "week", B - 86400 * 6, 86400 * 7, "mean", 1); /* a long bucket ending at B + 86400 */

	ck_assert_int_eq(store_telemetry_closed(st, B, B + H - 1, collect_closed, &c), HERR_OK);
	ck_assert_int_eq(c.count, 0);
	ck_assert_int_eq(store_telemetry_closed(st, B + H - 1, B + H, collect_closed, &c), HERR_OK);
	ck_assert_int_eq(c.count, 3);
	ck_assert_str_eq(c.rows[0], "a hum 1717999200/3600 mean=40 n=1");
	ck_assert_str_eq(c.rows[1], "a temp 1717999200/3600 max=5 n=1");
	ck_assert_str_eq(c.rows[2], "b temp 1717999200/3600 mean=21 n=2");
	/* Each bucket is in exactly one window. */
	c.count = 0;
	ck_assert_int_eq(store_telemetry_closed(st, B + H, B + 2 * H, collect_closed, &c), HERR_OK);
	ck_assert_int_eq(c.count, 1);
	ck_assert_str_eq(c.rows[0], "a temp 1718002800/3600 max=7 n=1");
	c.count = 0;
	ck_assert_int_eq(store_telemetry_closed(st, B + 86400 - 1, B + 86400, collect_closed, &c), HERR_OK);
	ck_assert_int_eq(c.count, 1);
	ck_assert_str_eq(c.rows[0], "a week 1717480800/604800 mean=1 n=1");

	ck_assert_int_eq(store_feed_get(st, &until), HERR_NOTFOUND);
	ck_assert_int_eq(store_feed_set(st, B), HERR_OK);
	ck_assert_int_eq(store_feed_set(st, B + H), HERR_OK);
	ck_assert_int_eq(store_feed_get(st, &until), HERR_OK);
	ck_assert_int_eq(until, B + H);
}
END_TEST

/* --- REST administration: API tokens, enrollment tokens, device queries, tags, the audit log ---- */

/* What a listing handed its callback, one line per row (whatever the row type). */
struct lines {
	char v[16][128];
	int count, stop_after;
};

static int add_line(struct lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int add_line(struct lines *l, const char *fmt, ...)
{
	va_list ap;

	ck_assert_int_lt(l->count, 16);
	va_start(ap, fmt);
	vsnprintf(l->v[l->count++], sizeof(l->v[0]), fmt, ap);
	va_end(ap);
	return l->stop_after > 0 && l->count >= l->stop_after;
}

static int line_device(void *ctx, const struct store_device *d)
{
	return add_line(ctx, "%s", d->id);
}

static int line_tag(void *ctx, const char *tag)
{
	return add_line(ctx, "%s", tag);
}

static int line_cert(void *ctx, const struct store_cert_row *c)
{
	return add_line(ctx, "%s %s %s %lld-%lld %lld", c->serial, c->status, c->fingerprint,
			(long long)c->not_before, (long long)c->not_after, (long long)c->revoked_at);
}

static int line_api_token(void *ctx, const struct store_api_token *t)
{
	return add_line(ctx, "%s %s %s", t->name, t->id, t->scope);
}

static int line_enroll_token(void *ctx, const struct store_enroll_token *t)
{
	return add_line(ctx, "%s", t->id);
}

static int line_audit(void *ctx, const struct store_audit_row *r)
{
	return add_line(ctx, "%lld %lld %s %s %s %s %s", (long long)r->id, (long long)r->at, r->actor,
			r->source ? r->source : "-", r->action, r->target ? r->target : "-",
			r->detail ? r->detail : "-");
}

static struct store_api_token api_token(const char *id, const char *name, const char *scope)
{
	struct store_api_token t;

	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", id);
	snprintf(t.name, sizeof(t.name), "%s", name);
	snprintf(t.hash, sizeof(t.hash), "%064d", 7);
	snprintf(t.scope, sizeof(t.scope), "%s", scope);
	t.created_at = T0;
	return t;
}

static struct store_enroll_token enroll_token(const char *id, const char *model, int64_t expires_at)
{
	struct store_enroll_token t;

	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", id);
	snprintf(t.hash, sizeof(t.hash), "%064d", 9);
	snprintf(t.model, sizeof(t.model), "%s", model);
	snprintf(t.created_by, sizeof(t.created_by), "token:ops");
	t.created_at = T0;
	t.expires_at = expires_at;
	return t;
}

START_TEST(test_api_token_insert_get)
{
	struct store_api_token t = api_token("00112233445566aa", "ops", "operate"), got;

	t.expires_at = T0 + 86400;
	ck_assert_int_eq(store_api_token_insert(st, &t), HERR_OK);
	memset(&got, 0x55, sizeof(got));
	ck_assert_int_eq(store_api_token_get(st, "00112233445566aa", &got), HERR_OK);
	ck_assert_str_eq(got.id, "00112233445566aa");
	ck_assert_str_eq(got.name, "ops");
	ck_assert_str_eq(got.hash, t.hash);
	ck_assert_str_eq(got.scope, "operate");
	ck_assert_int_eq(got.created_at, T0);
	ck_assert_int_eq(got.expires_at, T0 + 86400);
	ck_assert_int_eq(got.last_used_at, 0);
	ck_assert_int_eq(got.revoked_at, 0);
	ck_assert_int_eq(store_api_token_get(st, "00112233445566ab", &got), HERR_NOTFOUND);

	/* A token that does not expire is NULL in the table, 0 in the struct. */
	t = api_token("00112233445566bb", "reader", "read");
	ck_assert_int_eq(store_api_token_insert(st, &t), HERR_OK);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM api_tokens WHERE name = 'reader'"
				 " AND expires_at IS NULL AND last_used_at IS NULL AND revoked_at IS NULL"), 1);
	ck_assert_int_eq(store_api_token_get(st, "00112233445566bb", &got), HERR_OK);
	ck_assert_int_eq(got.expires_at, 0);

	/* The name is taken (under another id); the id is taken (under another name). */
	t = api_token("00112233445566cc", "ops", "admin");
	ck_assert_int_eq(store_api_token_insert(st, &t), HERR_EXISTS);
	t = api_token("00112233445566aa", "other", "admin");
	ck_assert_int_eq(store_api_token_insert(st, &t), HERR_EXISTS);
	/* A scope the schema does not know is bad input. */
	t = api_token("00112233445566dd", "root", "superuser");
	ck_assert_int_eq(store_api_token_insert(st, &t), HERR_INVALID);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM api_tokens"), 2);
}
END_TEST

START_TEST(test_api_token_touch_revoke)
{
	struct store_api_token t = api_token("aaaaaaaaaaaaaaaa", "ops", "admin"), got;

	ck_assert_int_eq(store_api_token_insert(st, &t), HERR_OK);
	ck_assert_int_eq(store_api_token_touch(st, "aaaaaaaaaaaaaaaa", T0 + 10), HERR_OK);
	ck_assert_int_eq(store_api_token_get(st, "aaaaaaaaaaaaaaaa", &got), HERR_OK);
	ck_assert_int_eq(got.last_used_at, T0 + 10);
	ck_assert_int_eq(store_api_token_touch(st, "aaaaaaaaaaaaaaaa", T0 + 20), HERR_OK);
	ck_assert_int_eq(store_api_token_get(st, "aaaaaaaaaaaaaaaa", &got), HERR_OK);
	ck_assert_int_eq(got.last_used_at, T0 + 20);
	/* A request that finishes late does not move the time back. */
	ck_assert_int_eq(store_api_token_touch(st, "aaaaaaaaaaaaaaaa", T0 + 15), HERR_OK);
	ck_assert_int_eq(store_api_token_get(st, "aaaaaaaaaaaaaaaa", &got), HERR_OK);
	ck_assert_int_eq(got.last_used_at, T0 + 20);
	ck_assert_int_eq(store_api_token_touch(st, "bbbbbbbbbbbbbbbb", T0 + 20), HERR_NOTFOUND);

	/* Revocation goes by name. */
	ck_assert_int_eq(store_api_token_revoke(st, "aaaaaaaaaaaaaaaa", T0 + 30), HERR_NOTFOUND);
	ck_assert_int_eq(store_api_token_revoke(st, "ops", T0 + 30), HERR_OK);
	ck_assert_int_eq(store_api_token_get(st, "aaaaaaaaaaaaaaaa", &got), HERR_OK);
	ck_assert_int_eq(got.revoked_at, T0 + 30);
	ck_assert_int_eq(store_api_token_revoke(st, "ops", T0 + 40), HERR_STATE);
	ck_assert_int_eq(store_api_token_get(st, "aaaaaaaaaaaaaaaa", &got), HERR_OK);
	ck_assert_int_eq(got.revoked_at, T0 + 30); /* the first revocation stands */
	ck_assert_int_eq(store_api_token_revoke(st, "nobody", T0 + 40), HERR_NOTFOUND);
}
END_TEST

START_TEST(test_api_token_list)
{
	static const char *const names[][3] = {
		{ "cccccccccccccccc", "carol", "read" },
		{ "aaaaaaaaaaaaaaaa", "alice", "admin" },
		{ "bbbbbbbbbbbbbbbb", "bob", "operate" },
	};
	struct lines l = { .count = 0 };
	size_t i;

	ck_assert_int_eq(store_api_token_list(st, line_api_token, &l), HERR_OK);
	ck_assert_int_eq(l.count, 0);
	for (i = 0; i < 3; i++) {
		struct store_api_token t = api_token(names[i][0], names[i][1], names[i][2]);

		ck_assert_int_eq(store_api_token_insert(st, &t), HERR_OK);
	}
	ck_assert_int_eq(store_api_token_revoke(st, "bob", T0 + 1), HERR_OK);
	/* Revoked tokens are listed too: they are history. */
	ck_assert_int_eq(store_api_token_list(st, line_api_token, &l), HERR_OK);
	ck_assert_int_eq(l.count, 3);
	ck_assert_str_eq(l.v[0], "alice aaaaaaaaaaaaaaaa admin");
	ck_assert_str_eq(l.v[1], "bob bbbbbbbbbbbbbbbb operate");
	ck_assert_str_eq(l.v[2], "carol cccccccccccccccc read");
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	ck_assert_int_eq(store_api_token_list(st, line_api_token, &l), HERR_OK);
	ck_assert_int_eq(l.count, 1);
}
END_TEST

START_TEST(test_enroll_token_use_once)
{
	struct store_enroll_token t = enroll_token("e000000000000001", "m1", T0 + 3600), got;

	ck_assert_int_eq(store_model_ensure(st, "m1", T0), HERR_OK);
	ck_assert_int_eq(store_enroll_token_insert(st, &t), HERR_OK);
	memset(&got, 0x55, sizeof(got));
	ck_assert_int_eq(store_enroll_token_get(st, "e000000000000001", &got), HERR_OK);
	ck_assert_str_eq(got.id, "e000000000000001");
	ck_assert_str_eq(got.hash, t.hash);
	ck_assert_str_eq(got.model, "m1");
	ck_assert_str_eq(got.device_id, "");
	ck_assert_str_eq(got.created_by, "token:ops");
	ck_assert_str_eq(got.used_by, "");
	ck_assert_int_eq(got.created_at, T0);
	ck_assert_int_eq(got.expires_at, T0 + 3600);
	ck_assert_int_eq(got.used_at, 0);
	ck_assert_int_eq(got.revoked_at, 0);
	/* "Any device" is NULL in the table, not "". */
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM enrollment_tokens WHERE device_id IS NULL"
				 " AND used_by IS NULL AND used_at IS NULL AND revoked_at IS NULL"), 1);

	ck_assert_int_eq(store_enroll_token_use(st, "e000000000000001", "dev-1", T0 + 10), HERR_OK);
	ck_assert_int_eq(store_enroll_token_get(st, "e000000000000001", &got), HERR_OK);
	ck_assert_int_eq(got.used_at, T0 + 10);
	ck_assert_str_eq(got.used_by, "dev-1");
	/* Spent: not again, neither for another device nor for the same one. */
	ck_assert_int_eq(store_enroll_token_use(st, "e000000000000001", "dev-2", T0 + 11), HERR_STATE);
	ck_assert_int_eq(store_enroll_token_use(st, "e000000000000001", "dev-1", T0 + 11), HERR_STATE);
	ck_assert_int_eq(store_enroll_token_get(st, "e000000000000001", &got), HERR_OK);
	ck_assert_int_eq(got.used_at, T0 + 10);
	ck_assert_str_eq(got.used_by, "dev-1");
	/* A used token cannot be revoked any more. */
	ck_assert_int_eq(store_enroll_token_revoke(st, "e000000000000001", T0 + 12), HERR_STATE);
	ck_assert_int_eq(store_enroll_token_get(st, "e000000000000001", &got), HERR_OK);
	ck_assert_int_eq(got.revoked_at, 0);
}
END_TEST

START_TEST(test_enroll_token_refused)
{
	struct store_enroll_token t, got;

	ck_assert_int_eq(store_model_ensure(st, "m1", T0), HERR_OK);
	/* A model that does not exist is bad input, and nothing is stored. */
	t = enroll_token("e000000000000009", "no-such-model", T0 + 3600);
	ck_assert_int_eq(store_enroll_token_insert(st, &t), HERR_INVALID);
	ck_assert_int_eq(store_enroll_token_get(st, "e000000000000009", &got), HERR_NOTFOUND);

	t = enroll_token("e000000000000001", "m1", T0 + 3600);
	ck_assert_int_eq(store_enroll_token_insert(st, &t), HERR_OK);
	ck_assert_int_eq(store_enroll_token_insert(st, &t), HERR_EXISTS);

	/* Expired: at expires_at it no longer works. */
	ck_assert_int_eq(store_enroll_token_use(st, "e000000000000001", "dev-1", T0 + 3600), HERR_STATE);
	ck_assert_int_eq(store_enroll_token_use(st, "e000000000000001", "dev-1", T0 + 7200), HERR_STATE);
	ck_assert_int_eq(store_enroll_token_get(st, "e000000000000001", &got), HERR_OK);
	ck_assert_int_eq(got.used_at, 0);
	ck_assert_str_eq(got.used_by, "");

	/* Revoked. */
	t = enroll_token("e000000000000002", "m1", T0 + 3600);
	ck_assert_int_eq(store_enroll_token_insert(st, &t), HERR_OK);
	ck_assert_int_eq(store_enroll_token_revoke(st, "e000000000000002", T0 + 5), HERR_OK);
	ck_assert_int_eq(store_enroll_token_revoke(st, "e000000000000002", T0 + 6), HERR_STATE);
	ck_assert_int_eq(store_enroll_token_get(st, "e000000000000002", &got), HERR_OK);
	ck_assert_int_eq(got.revoked_at, T0 + 5);
	ck_assert_int_eq(store_enroll_token_use(st, "e000000000000002", "dev-1", T0 + 10), HERR_STATE);
	ck_assert_int_eq(store_enroll_token_get(st, "e000000000000002", &got), HERR_OK);
	ck_assert_int_eq(got.used_at, 0);

	/* Unknown. */
	ck_assert_int_eq(store_enroll_token_use(st, "e00000000000000f", "dev-1", T0 + 10), HERR_NOTFOUND);
	ck_assert_int_eq(store_enroll_token_revoke(st, "e00000000000000f", T0 + 10), HERR_NOTFOUND);
	ck_assert_int_eq(store_enroll_token_get(st, "e00000000000000f", &got), HERR_NOTFOUND);

	/* A token bound to a device id is not spent by another id, and then still works for its own. */
	t = enroll_token("e000000000000003", "m1", T0 + 3600);
	snprintf(t.device_id, sizeof(t.device_id), "dev-7");
	ck_assert_int_eq(store_enroll_token_insert(st, &t), HERR_OK);
	ck_assert_int_eq(store_enroll_token_get(st, "e000000000000003", &got), HERR_OK);
	ck_assert_str_eq(got.device_id, "dev-7");
	ck_assert_int_eq(store_enroll_token_use(st, "e000000000000003", "dev-8", T0 + 10), HERR_STATE);
	ck_assert_int_eq(store_enroll_token_use(st, "e000000000000003", "dev-7", T0 + 10), HERR_OK);
	ck_assert_int_eq(store_enroll_token_get(st, "e000000000000003", &got), HERR_OK);
	ck_assert_str_eq(got.used_by, "dev-7");
}
END_TEST

START_TEST(test_enroll_token_list)
{
	static const char *const ids[] = { "e000000000000004", "e000000000000001", "e000000000000005",
					   "e000000000000003", "e000000000000002" };
	struct lines l = { .count = 0 };
	size_t i;

	ck_assert_int_eq(store_model_ensure(st, "m1", T0), HERR_OK);
	for (i = 0; i < 5; i++) {
		struct store_enroll_token t = enroll_token(ids[i], "m1", T0 + 3600);

		ck_assert_int_eq(store_enroll_token_insert(st, &t), HERR_OK);
	}
	ck_assert_int_eq(store_enroll_token_list(st, "", 2, line_enroll_token, &l), HERR_OK);
	ck_assert_int_eq(l.count, 2);
	ck_assert_str_eq(l.v[0], "e000000000000001");
	ck_assert_str_eq(l.v[1], "e000000000000002");
	ck_assert_int_eq(store_enroll_token_list(st, l.v[1], 2, line_enroll_token, &l), HERR_OK);
	ck_assert_int_eq(l.count, 4);
	ck_assert_str_eq(l.v[2], "e000000000000003");
	ck_assert_str_eq(l.v[3], "e000000000000004");
	ck_assert_int_eq(store_enroll_token_list(st, l.v[3], 2, line_enroll_token, &l), HERR_OK);
	ck_assert_int_eq(l.count, 5);
	ck_assert_str_eq(l.v[4], "e000000000000005");
	ck_assert_int_eq(store_enroll_token_list(st, l.v[4], 2, line_enroll_token, &l), HERR_OK);
	ck_assert_int_eq(l.count, 5);
	/* NULL is the first page too; the cursor need not be an id that exists. */
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(store_enroll_token_list(st, NULL, 10, line_enroll_token, &l), HERR_OK);
	ck_assert_int_eq(l.count, 5);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(store_enroll_token_list(st, "e0000000000000025", 10, line_enroll_token, &l), HERR_OK);
	ck_assert_int_eq(l.count, 3);
	ck_assert_str_eq(l.v[0], "e000000000000003");
}
END_TEST

/* Devices for the query tests: a-1 (m1, tags red blue, seen T0+100), b-2 (m2, red, seen T0+50),
 * c-3 (m1, revoked, never seen), d-4 (m2, no tags, seen T0+200). */
static void query_fixture(void)
{
	static const char *const red_blue[] = { "red", "blue" }, *const red[] = { "red" };
	int certs;

	add_device("c-3");
	add_device("a-1");
	ck_assert_int_eq(store_model_ensure(st, "m2", T0), HERR_OK);
	ck_assert_int_eq(store_device_insert(st, "b-2", "m2", T0), HERR_OK);
	ck_assert_int_eq(store_device_insert(st, "d-4", "m2", T0), HERR_OK);
	ck_assert_int_eq(store_device_revoke(st, "c-3", T0 + 1, &certs), HERR_OK);
	ck_assert_int_eq(store_device_set_tags(st, "a-1", red_blue, 2), HERR_OK);
	ck_assert_int_eq(store_device_set_tags(st, "b-2", red, 1), HERR_OK);
	ck_assert_int_eq(store_last_seen(st, "a-1", T0 + 100), HERR_OK);
	ck_assert_int_eq(store_last_seen(st, "b-2", T0 + 50), HERR_OK);
	ck_assert_int_eq(store_last_seen(st, "d-4", T0 + 200), HERR_OK);
}

/* The ids a query returns, joined by spaces. */
static const char *query(const struct store_device_filter *f)
{
	static char out[256];
	struct lines l = { .count = 0 };
	size_t off = 0;
	int i;

	ck_assert_int_eq(store_device_query(st, f, line_device, &l), HERR_OK);
	out[0] = '\0';
	for (i = 0; i < l.count; i++)
		off += (size_t)snprintf(out + off, sizeof(out) - off, "%s%s", i ? " " : "", l.v[i]);
	return out;
}

static int count_device(void *ctx, const struct store_device *d)
{
	(void)d;
	(*(int *)ctx)++;
	return 0;
}

static int count_query(const struct store_device_filter *f)
{
	int n = 0;

	ck_assert_int_eq(store_device_query(st, f, count_device, &n), HERR_OK);
	return n;
}

START_TEST(test_device_query_filters)
{
	struct store_device_filter f = { .model = NULL };

	ck_assert_str_eq(query(&f), "");
	query_fixture();
	ck_assert_str_eq(query(&f), "a-1 b-2 c-3 d-4");
	ck_assert_str_eq(query(NULL), "a-1 b-2 c-3 d-4");
	f.model = "m1";
	ck_assert_str_eq(query(&f), "a-1 c-3");
	f.model = "m3";
	ck_assert_str_eq(query(&f), "");
	f.model = NULL;
	f.status = "active";
	ck_assert_str_eq(query(&f), "a-1 b-2 d-4");
	f.status = "revoked";
	ck_assert_str_eq(query(&f), "c-3");
	f.status = NULL;
	f.tag = "red";
	ck_assert_str_eq(query(&f), "a-1 b-2");
	f.tag = "blue";
	ck_assert_str_eq(query(&f), "a-1");
	f.tag = "green";
	ck_assert_str_eq(query(&f), "");
	f.tag = NULL;
	f.seen_since = T0 + 100; /* at or after */
	ck_assert_str_eq(query(&f), "a-1 d-4");
	f.seen_since = T0 + 201;
	ck_assert_str_eq(query(&f), "");
	/* Filters combine. */
	f.seen_since = T0 + 50;
	f.tag = "red";
	ck_assert_str_eq(query(&f), "a-1 b-2");
	f.model = "m2";
	ck_assert_str_eq(query(&f), "b-2");
	f.status = "revoked";
	ck_assert_str_eq(query(&f), "");
	/* Input that looks like SQL is only a value. */
	memset(&f, 0, sizeof(f));
	f.model = "m1' OR '1'='1";
	ck_assert_str_eq(query(&f), "");
}
END_TEST

START_TEST(test_device_query_pages)
{
	struct store_device_filter f = { .limit = 2 };
	char after[65];
	int i;

	query_fixture();
	ck_assert_str_eq(query(&f), "a-1 b-2");
	f.after = "b-2";
	ck_assert_str_eq(query(&f), "c-3 d-4");
	f.after = "d-4";
	ck_assert_str_eq(query(&f), "");
	/* The cursor need not be a device; "" is the first page. */
	f.after = "b";
	ck_assert_str_eq(query(&f), "b-2 c-3");
	f.after = "";
	ck_assert_str_eq(query(&f), "a-1 b-2");
	/* With a filter, pages follow the filtered order. */
	f.after = "a-1";
	f.status = "active";
	ck_assert_str_eq(query(&f), "b-2 d-4");

	/* No limit and too large a limit both mean a page of STORE_PAGE_MAX. */
	ck_assert_int_eq(store_begin(st), HERR_OK);
	for (i = 0; i < STORE_PAGE_MAX + 5; i++) {
		snprintf(after, sizeof(after), "z-%04d", i);
		ck_assert_int_eq(store_device_insert(st, after, "m1", T0), HERR_OK);
	}
	ck_assert_int_eq(store_commit(st), HERR_OK);
	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM devices"), STORE_PAGE_MAX + 9);
	f.after = "z-";
	ck_assert_int_eq(count_query(&f), STORE_PAGE_MAX);
	f.limit = STORE_PAGE_MAX + 1;
	ck_assert_int_eq(count_query(&f), STORE_PAGE_MAX);
	f.after = "z-0999";
	ck_assert_int_eq(count_query(&f), 5);
}
END_TEST

START_TEST(test_device_tags)
{
	static const char *const first[] = { "kitchen", "beta", "upstairs" };
	static const char *const second[] = { "garage", "beta", "garage" }; /* a repeat is one tag */
	static const char *const broken[] = { "attic", NULL };
	struct store_device_filter f = { .tag = "beta" };
	struct lines l = { .count = 0 };

	add_device("dev-1");
	ck_assert_int_eq(store_device_tags(st, "dev-1", line_tag, &l), HERR_OK);
	ck_assert_int_eq(l.count, 0);
	ck_assert_int_eq(store_device_set_tags(st, "dev-1", first, 3), HERR_OK);
	ck_assert_int_eq(store_device_tags(st, "dev-1", line_tag, &l), HERR_OK);
	ck_assert_int_eq(l.count, 3);
	ck_assert_str_eq(l.v[0], "beta"); /* sorted */
	ck_assert_str_eq(l.v[1], "kitchen");
	ck_assert_str_eq(l.v[2], "upstairs");

	/* Setting replaces them all. */
	ck_assert_int_eq(store_device_set_tags(st, "dev-1", second, 3), HERR_OK);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(store_device_tags(st, "dev-1", line_tag, &l), HERR_OK);
	ck_assert_int_eq(l.count, 2);
	ck_assert_str_eq(l.v[0], "beta");
	ck_assert_str_eq(l.v[1], "garage");
	ck_assert_str_eq(query(&f), "dev-1");
	f.tag = "kitchen";
	ck_assert_str_eq(query(&f), "");

	/* A change that fails half-way changes nothing. */
	ck_assert_int_eq(store_device_set_tags(st, "dev-1", broken, 2), HERR_INVALID);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM device_tags"), 2);
	/* Inside the caller's transaction, the caller's rollback undoes it. */
	ck_assert_int_eq(store_begin(st), HERR_OK);
	ck_assert_int_eq(store_device_set_tags(st, "dev-1", broken, 1), HERR_OK);
	store_rollback(st);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM device_tags WHERE tag IN ('beta', 'garage')"), 2);

	/* None at all. */
	ck_assert_int_eq(store_device_set_tags(st, "dev-1", NULL, 0), HERR_OK);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(store_device_tags(st, "dev-1", line_tag, &l), HERR_OK);
	ck_assert_int_eq(l.count, 0);

	ck_assert_int_eq(store_device_tags(st, "ghost", line_tag, &l), HERR_NOTFOUND);
	ck_assert_int_eq(store_device_set_tags(st, "ghost", first, 3), HERR_NOTFOUND);
	ck_assert_int_eq(store_device_set_tags(st, "ghost", NULL, 0), HERR_NOTFOUND);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM device_tags"), 0);

	/* Decommissioning deletes them with everything else stored about the device. */
	{
		int certs = -1;

		ck_assert_int_eq(store_device_set_tags(st, "dev-1", first, 3), HERR_OK);
		ck_assert_int_eq(store_device_decommission(st, "dev-1", T0 + 10, &certs), HERR_OK);
		ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM device_tags"), 0);
	}
}
END_TEST

START_TEST(test_device_set_model)
{
	struct store_device d;

	add_device("dev-1");
	ck_assert_int_eq(store_device_set_model(st, "dev-1", "m2", T0 + 5), HERR_OK);
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_OK);
	ck_assert_str_eq(d.model, "m2");
	ck_assert_int_eq(sql_int("SELECT created_at FROM models WHERE name = 'm2'"), T0 + 5);
	/* Back to a model that exists: it is left as it was. */
	ck_assert_int_eq(store_device_set_model(st, "dev-1", "m1", T0 + 6), HERR_OK);
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_OK);
	ck_assert_str_eq(d.model, "m1");
	ck_assert_int_eq(sql_int("SELECT created_at FROM models WHERE name = 'm1'"), T0);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM models"), 2);
	/* An unknown device leaves no model behind. */
	ck_assert_int_eq(store_device_set_model(st, "ghost", "m3", T0 + 7), HERR_NOTFOUND);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM models WHERE name = 'm3'"), 0);
}
END_TEST

START_TEST(test_device_certs)
{
	struct store_cert c;
	struct lines l = { .count = 0 };
	int certs;

	add_device("dev-1");
	add_device("dev-2");
	ck_assert_int_eq(store_device_certs(st, "dev-1", line_cert, &l), HERR_OK);
	ck_assert_int_eq(l.count, 0);
	ck_assert_int_eq(store_device_certs(st, "ghost", line_cert, &l), HERR_NOTFOUND);

	c = device_cert("0B", "dev-1", "fp-b", T0 + 1000);
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);
	c = device_cert("0C", "dev-1", "fp-c", T0 + 3000);
	c.not_before = T0 + 2000;
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);
	c = device_cert("0A", "dev-1", "fp-a", T0 + 1000); /* same not_before as 0B */
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);
	c = device_cert("0D", "dev-2", "fp-d", T0 + 9000); /* another device's */
	c.not_before = T0 + 5000;
	ck_assert_int_eq(store_cert_insert(st, &c), HERR_OK);
	ck_assert_int_eq(store_device_revoke(st, "dev-1", T0 + 2500, &certs), HERR_OK);

	ck_assert_int_eq(store_device_certs(st, "dev-1", line_cert, &l), HERR_OK);
	ck_assert_int_eq(l.count, 3);
	ck_assert_str_eq(l.v[0], "0C revoked fp-c 1718002000-1718003000 1718002500");
	ck_assert_str_eq(l.v[1], "0A revoked fp-a 1718000000-1718001000 1718002500");
	ck_assert_str_eq(l.v[2], "0B revoked fp-b 1718000000-1718001000 1718002500");
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(store_device_certs(st, "dev-2", line_cert, &l), HERR_OK);
	ck_assert_int_eq(l.count, 1);
	ck_assert_str_eq(l.v[0], "0D valid fp-d 1718005000-1718009000 0");
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	ck_assert_int_eq(store_device_certs(st, "dev-1", line_cert, &l), HERR_OK);
	ck_assert_int_eq(l.count, 1);
}
END_TEST

static int check_last_seen(void *ctx, const struct store_device *d)
{
	(void)ctx;
	ck_assert_int_eq(d->last_seen, strcmp(d->id, "a-1") == 0 ? T0 + 100 : strcmp(d->id, "b-2") == 0
				       ? T0 + 50 : strcmp(d->id, "d-4") == 0 ? T0 + 200 : 0);
	return 0;
}

START_TEST(test_device_last_seen)
{
	struct store_device d;
	int certs;

	add_device("dev-1");
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_OK);
	ck_assert_int_eq(d.last_seen, 0);
	ck_assert_int_eq(store_last_seen(st, "dev-1", T0 + 60), HERR_OK);
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_OK);
	ck_assert_int_eq(d.last_seen, T0 + 60);
	/* Decommissioning forgets it. */
	ck_assert_int_eq(store_device_decommission(st, "dev-1", T0 + 70, &certs), HERR_OK);
	ck_assert_int_eq(store_device_get(st, "dev-1", &d), HERR_OK);
	ck_assert_int_eq(d.last_seen, 0);

	query_fixture();
	ck_assert_int_eq(store_device_list(st, check_last_seen, NULL), HERR_OK);
	ck_assert_int_eq(store_device_query(st, NULL, check_last_seen, NULL), HERR_OK);
}
END_TEST

/* A transaction in which a statement failed (here SQLite runs out of memory) is never committed,
 * and nothing more joins it: the endpoint's group commit stores a turn's messages whole or not at
 * all. The next transaction works again. */
START_TEST(test_failed_statement_spoils_transaction)
{
	add_device("dev-1");
	add_device("dev-2");
	ck_assert_int_eq(store_begin(st), HERR_OK);
	ck_assert_int_eq(store_last_seen(st, "dev-1", T0), HERR_OK);
	sqlite3_hard_heap_limit64(1); /* below what SQLite holds already: every allocation fails */
	ck_assert_int_eq(store_dropped_add(st, "m1", "co2", 1, 1), HERR_STORE);
	sqlite3_hard_heap_limit64(0);
	ck_assert_int_eq(store_model_ensure(st, "m2", T0), HERR_STORE);
	ck_assert_int_eq(store_commit(st), HERR_STORE);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM last_seen"), 0);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM dropped_fields"), 0);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM models WHERE name = 'm2'"), 0);

	ck_assert_int_eq(store_begin(st), HERR_OK);
	ck_assert_int_eq(store_last_seen(st, "dev-2", T0), HERR_OK);
	ck_assert_int_eq(store_dropped_add(st, "m1", "co2", 1, 1), HERR_OK);
	ck_assert_int_eq(store_commit(st), HERR_OK);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM last_seen"), 1);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM dropped_fields"), 1);
}
END_TEST

START_TEST(test_audit_list)
{
	struct lines l = { .count = 0 };
	int64_t id;

	ck_assert_int_eq(store_audit_list(st, 0, 10, line_audit, &l), HERR_OK);
	ck_assert_int_eq(l.count, 0);
	ck_assert_int_eq(store_audit(st, T0, "cli:alice", "device.add", "dev-1", "serial 0A"), HERR_OK);
	ck_assert_int_eq(store_audit_from(st, T0 + 1, "token:ops", "192.0.2.7", "device.revoke", "dev-1",
					  NULL), HERR_OK);
	ck_assert_int_eq(store_audit_from(st, T0 + 2, "token:ops", "2001:db8::1", "token.create", NULL,
					  "scope read"), HERR_OK);
	ck_assert_int_eq(store_audit_from(st, T0 + 3, "cli:bob", NULL, "ca.rotate", NULL, NULL), HERR_OK);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM audit_log WHERE source IS NULL"), 2);

	ck_assert_int_eq(store_audit_list(st, 0, 10, line_audit, &l), HERR_OK);
	ck_assert_int_eq(l.count, 4);
	ck_assert_str_eq(l.v[0], "4 1718000003 cli:bob - ca.rotate - -");
	ck_assert_str_eq(l.v[1], "3 1718000002 token:ops 2001:db8::1 token.create - scope read");
	ck_assert_str_eq(l.v[2], "2 1718000001 token:ops 192.0.2.7 device.revoke dev-1 -");
	ck_assert_str_eq(l.v[3], "1 1718000000 cli:alice - device.add dev-1 serial 0A");

	/* Pages: ids below the cursor, newest first. */
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(store_audit_list(st, 0, 3, line_audit, &l), HERR_OK);
	ck_assert_int_eq(l.count, 3);
	id = strtoll(l.v[2], NULL, 10); /* the last of the page */
	ck_assert_int_eq(id, 2);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(store_audit_list(st, id, 3, line_audit, &l), HERR_OK);
	ck_assert_int_eq(l.count, 1);
	ck_assert_str_eq(l.v[0], "1 1718000000 cli:alice - device.add dev-1 serial 0A");
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(store_audit_list(st, 1, 3, line_audit, &l), HERR_OK);
	ck_assert_int_eq(l.count, 0);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(store_audit_list(st, 4, 2, line_audit, &l), HERR_OK);
	ck_assert_int_eq(l.count, 2);
	ck_assert_str_eq(l.v[1], "2 1718000001 token:ops 192.0.2.7 device.revoke dev-1 -");
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	ck_assert_int_eq(store_audit_list(st, 0, 10, line_audit, &l), HERR_OK);
	ck_assert_int_eq(l.count, 1);
}
END_TEST

/* --- the bridge's outbox and retained topics --------------------------------------------------- */

static int64_t outbox_add(const char *device, const char *payload, int64_t created, int64_t expires)
{
	struct store_bridge_record r = { .device_id = device, .topic = "hearth/x/telemetry", .payload = payload,
					 .len = strlen(payload), .retain = 0, .created_at = created,
					 .expires_at = expires };

	ck_assert_int_eq(store_bridge_outbox_add(st, &r), HERR_OK);
	return sql_int("SELECT MAX(seq) FROM bridge_outbox");
}

struct seqs {
	int64_t seq[16];
	char payload[16][32];
	size_t n;
};

static int collect_seq(void *ctx, const struct store_bridge_row *r)
{
	struct seqs *q = ctx;

	ck_assert_uint_lt(q->n, 16);
	ck_assert_uint_eq(r->len, strlen(r->payload));
	q->seq[q->n] = r->seq;
	snprintf(q->payload[q->n++], sizeof(q->payload[0]), "%s", r->payload);
	return 0;
}

/* The outbox totals bridge_state keeps are those of the rows. */
static void assert_outbox_totals(void)
{
	struct store_bridge_state b;

	ck_assert_int_eq(store_bridge_state(st, &b), HERR_OK);
	ck_assert_int_eq(b.rows, sql_int("SELECT COUNT(*) FROM bridge_outbox"));
	ck_assert_int_eq(b.bytes, sql_int("SELECT COALESCE(SUM(bytes), 0) FROM bridge_outbox"));
}

START_TEST(test_bridge_outbox)
{
	struct store_bridge_state b;
	struct seqs q = { .n = 0 };
	int64_t s1, s2, s3, s4, dropped = -1;
	int certs;

	ck_assert_int_eq(store_bridge_state(st, &b), HERR_OK);
	ck_assert_int_eq(b.until, 0);
	ck_assert_int_eq(b.rows, 0);
	ck_assert_int_eq(b.connected, 0);
	add_device("dev-1");
	add_device("dev-2");
	s1 = outbox_add("dev-1", "one", T0, T0 + 86400);
	s2 = outbox_add("dev-2", "two", T0 + 1, T0 + 86400);
	ck_assert_int_gt(s2, s1);
	ck_assert_int_eq(store_bridge_outbox_list(st, 0, 10, collect_seq, &q), HERR_OK);
	ck_assert_uint_eq(q.n, 2);
	ck_assert_str_eq(q.payload[0], "one");
	ck_assert_str_eq(q.payload[1], "two");
	q.n = 0;
	ck_assert_int_eq(store_bridge_outbox_list(st, s1, 10, collect_seq, &q), HERR_OK);
	ck_assert_uint_eq(q.n, 1);
	ck_assert_int_eq(q.seq[0], s2);
	/* Acknowledged rows go; a sequence number is never used again, even once the outbox is empty,
	 * so a sender's cursor stays valid. */
	ck_assert_int_eq(store_bridge_outbox_delete(st, s1), HERR_OK);
	ck_assert_int_eq(store_bridge_outbox_delete(st, s2), HERR_OK);
	ck_assert_int_eq(store_bridge_outbox_delete(st, s2), HERR_OK);
	s3 = outbox_add("dev-1", "three", T0 + 2, T0 + 86400);
	ck_assert_int_gt(s3, s2);
	ck_assert_int_eq(store_bridge_state(st, &b), HERR_OK);
	ck_assert_int_eq(b.rows, 1);
	ck_assert_int_eq(b.bytes, 5);
	ck_assert_int_eq(b.oldest, T0 + 2);
	/* Decommissioning a device deletes its waiting records too. */
	s4 = outbox_add("dev-2", "four", T0 + 3, T0 + 86400);
	ck_assert_int_eq(store_device_decommission(st, "dev-2", T0 + 4, &certs), HERR_OK);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM bridge_outbox WHERE device_id = 'dev-2'"), 0);
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM bridge_outbox"), 1);
	assert_outbox_totals();
	(void)s4;
	/* Trim: nothing over the bounds, nothing goes. */
	ck_assert_int_eq(store_bridge_outbox_trim(st, 1000, T0, T0 + 10, &dropped), HERR_OK);
	ck_assert_int_eq(dropped, 0);
	ck_assert_int_eq(store_bridge_state(st, &b), HERR_OK);
	ck_assert_int_eq(b.dropped, 0);
}
END_TEST

START_TEST(test_bridge_outbox_trim)
{
	struct store_bridge_state b;
	struct seqs q = { .n = 0 };
	int64_t dropped = -1;
	int i;

	add_device("dev-1");
	/* Ten rows of 10 bytes, one a second. */
	for (i = 0; i < 10; i++) {
		char p[16];

		snprintf(p, sizeof(p), "payload-%02d", i);
		outbox_add("dev-1", p, T0 + i, i == 7 ? T0 + 100 : T0 + 86400);
	}
	/* By size: at most 55 bytes are kept, the newest; the five oldest go, counted. */
	ck_assert_int_eq(store_bridge_outbox_trim(st, 55, T0 - 1, T0 + 50, &dropped), HERR_OK);
	ck_assert_int_eq(dropped, 5);
	assert_outbox_totals();
	/* At the bound exactly, nothing more goes. */
	ck_assert_int_eq(store_bridge_outbox_trim(st, 50, T0 - 1, T0 + 50, &dropped), HERR_OK);
	ck_assert_int_eq(dropped, 0);
	ck_assert_int_eq(store_bridge_outbox_list(st, 0, 16, collect_seq, &q), HERR_OK);
	ck_assert_uint_eq(q.n, 5);
	ck_assert_str_eq(q.payload[0], "payload-05");
	ck_assert_str_eq(q.payload[4], "payload-09");
	/* By age: created before T0 + 6 goes. */
	ck_assert_int_eq(store_bridge_outbox_trim(st, 1000, T0 + 6, T0 + 50, &dropped), HERR_OK);
	ck_assert_int_eq(dropped, 1);
	assert_outbox_totals();
	/* By retention: row 7 expires at T0 + 100. */
	ck_assert_int_eq(store_bridge_outbox_trim(st, 1000, T0, T0 + 100, &dropped), HERR_OK);
	ck_assert_int_eq(dropped, 1);
	q.n = 0;
	ck_assert_int_eq(store_bridge_outbox_list(st, 0, 16, collect_seq, &q), HERR_OK);
	ck_assert_uint_eq(q.n, 3);
	ck_assert_str_eq(q.payload[0], "payload-06");
	ck_assert_str_eq(q.payload[1], "payload-08");
	ck_assert_int_eq(store_bridge_state(st, &b), HERR_OK);
	ck_assert_int_eq(b.dropped, 7);
	ck_assert_int_eq(b.rows, 3);
	ck_assert_int_eq(b.bytes, 30);
	/* Smaller than any row: all go. */
	ck_assert_int_eq(store_bridge_outbox_trim(st, 5, T0, T0 + 100, &dropped), HERR_OK);
	ck_assert_int_eq(dropped, 3);
	assert_outbox_totals();
	ck_assert_int_eq(sql_int("SELECT COUNT(*) FROM bridge_outbox"), 0);
	/* The watermark and the connection state. */
	ck_assert_int_eq(store_bridge_set_until(st, T0 + 3600), HERR_OK);
	ck_assert_int_eq(store_bridge_set_connected(st, 1, T0 + 5), HERR_OK);
	ck_assert_int_eq(store_bridge_state(st, &b), HERR_OK);
	ck_assert_int_eq(b.until, T0 + 3600);
	ck_assert_int_eq(b.connected, 1);
	ck_assert_int_eq(b.changed_at, T0 + 5);
}
END_TEST

struct topic_list {
	char line[8][128];
	size_t n;
};

static int collect_topic(void *ctx, const char *topic, const char *kind)
{
	struct topic_list *l = ctx;

	ck_assert_uint_lt(l->n, 8);
	snprintf(l->line[l->n++], sizeof(l->line[0]), "%s %s", kind, topic);
	return 0;
}

START_TEST(test_bridge_topics)
{
	struct topic_list l = { .n = 0 };
	int certs;

	add_device("dev-1");
	add_device("dev-2");
	ck_assert_int_eq(store_bridge_topic_add(st, "ha/sensor/hearth_dev-1/t/config", "dev-1", "config"), HERR_OK);
	ck_assert_int_eq(store_bridge_topic_add(st, "ha/sensor/hearth_dev-1/t/config", "dev-1", "config"), HERR_OK);
	ck_assert_int_eq(store_bridge_topic_add(st, "hearth/dev-1/status", "dev-1", "status"), HERR_OK);
	ck_assert_int_eq(store_bridge_topic_add(st, "hearth/dev-2/status", "dev-2", "status"), HERR_OK);
	ck_assert_int_eq(store_bridge_topic_add(st, "x", "dev-2", "other"), HERR_INVALID);
	ck_assert_int_eq(store_bridge_topics(st, "dev-1", collect_topic, &l), HERR_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.line[0], "config ha/sensor/hearth_dev-1/t/config");
	ck_assert_str_eq(l.line[1], "status hearth/dev-1/status");
	/* Decommissioning keeps them: the bridge still has to clear them at the broker. */
	ck_assert_int_eq(store_device_decommission(st, "dev-1", T0, &certs), HERR_OK);
	l.n = 0;
	ck_assert_int_eq(store_bridge_topics(st, "dev-1", collect_topic, &l), HERR_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(store_bridge_topic_delete(st, "hearth/dev-1/status"), HERR_OK);
	l.n = 0;
	ck_assert_int_eq(store_bridge_topics(st, "dev-1", collect_topic, &l), HERR_OK);
	ck_assert_uint_eq(l.n, 1);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("sqlite");

	unit_scratch_add(tc);
	tcase_add_checked_fixture(tc, db_setup, db_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_schema_fresh_and_reopen);
	tcase_add_test(tc, test_schema_newer_refused);
	tcase_add_test(tc, test_not_a_database);
	tcase_add_test(tc, test_wal);
	tcase_add_test(tc, test_device_unknown_model);
	tcase_add_test(tc, test_device_insert_get);
	tcase_add_test(tc, test_cert_insert);
	tcase_add_test(tc, test_cert_insert_invalid_row);
	tcase_add_test(tc, test_revoke);
	tcase_add_test(tc, test_device_list);
	tcase_add_test(tc, test_crl_numbers);
	tcase_add_test(tc, test_transactions);
	tcase_add_test(tc, test_audit);
	tcase_add_test(tc, test_upgrade_keeps_certificates);
	tcase_add_test(tc, test_upgrade_counts_outbox);
	tcase_add_test(tc, test_upgrade_backs_up_first);
	tcase_add_test(tc, test_upgrade_refused_without_backup);
	tcase_add_test(tc, test_new_database_not_backed_up);
	tcase_add_test(tc, test_clients);
	tcase_add_test(tc, test_telemetry_closed);
	tcase_add_test(tc, test_telemetry_expire);
	tcase_add_test(tc, test_manifest_devices);
	tcase_add_test(tc, test_api_token_insert_get);
	tcase_add_test(tc, test_api_token_touch_revoke);
	tcase_add_test(tc, test_api_token_list);
	tcase_add_test(tc, test_enroll_token_use_once);
	tcase_add_test(tc, test_enroll_token_refused);
	tcase_add_test(tc, test_enroll_token_list);
	tcase_add_test(tc, test_device_query_filters);
	tcase_add_test(tc, test_device_query_pages);
	tcase_add_test(tc, test_device_tags);
	tcase_add_test(tc, test_device_set_model);
	tcase_add_test(tc, test_device_certs);
	tcase_add_test(tc, test_device_last_seen);
	tcase_add_test(tc, test_failed_statement_spoils_transaction);
	tcase_add_test(tc, test_audit_list);
	tcase_add_test(tc, test_bridge_outbox);
	tcase_add_test(tc, test_bridge_outbox_trim);
	tcase_add_test(tc, test_bridge_topics);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(store_suite());
}
