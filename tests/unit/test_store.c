/* Unit tests of server/store through the SQLite backend: schema versions, WAL, constraints mapped to
 * the project's errors, devices and their certificates, revocation, CRL numbers, transactions and
 * the audit log. The tests look at the database file with sqlite3 directly where the store API has
 * no way to show a fact (journal mode, row counts, a newer schema). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* One integer from a query run on a separate connection to the same file. */
static int64_t sql_int(const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	sqlite3 *db = NULL;
	int64_t v;

	ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK, "%s: %s", sql,
		      sqlite3_errmsg(db));
	ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return v;
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


/* A database made by a hearth before integration clients (schema 3), with a device certificate in
 * it, is brought to the current schema without losing the certificate, which still admits. */
START_TEST(test_upgrade_keeps_certificates)
{
	char role[STORE_ROLE_MAX];
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
	for (i = 0; i < migration_count && migrations[i].version <= 3; i++) {
		char ins[128];

		ck_assert_msg(sqlite3_exec(db, migrations[i].sql, NULL, NULL, &err) == SQLITE_OK, "%s", err);
		snprintf(ins, sizeof(ins), "INSERT INTO schema_version VALUES (%d, 'x', 0)", migrations[i].version);
		ck_assert_int_eq(sqlite3_exec(db, ins, NULL, NULL, &err), SQLITE_OK);
	}
	ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO models (name, created_at) VALUES ('m1', 0);"
				      "INSERT INTO devices VALUES ('old-dev', 'm1', 'active', 0, NULL);"
				      "INSERT INTO certificates VALUES ('0A', 'device', 'old-dev', 'CN=old-dev',"
				      " 'fp-old', 0, 4000000000, 'valid', NULL, 'pem');", NULL, NULL, &err),
			 SQLITE_OK);
	sqlite3_close(db);

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
				  .retention_days = 30, .agg = agg, .value = v };

	ck_assert_int_eq(store_telemetry_fold(st, &s), HERR_OK);
}

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
	tcase_add_test(tc, test_clients);
	tcase_add_test(tc, test_telemetry_closed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(store_suite());
}
