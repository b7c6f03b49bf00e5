/* store_sqlite: the embedded store backend (SQLite, WAL, foreign keys on, FULL sync so that what
 * was committed survives a crash or power loss). With backup.c (whose backup file is a SQLite
 * database), the only file that includes <sqlite3.h>. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "server/migrations.h"
#include "server/store.h"
#include "server/store_backend.h"

/* Prepared statements kept for reuse, keyed by the address of their SQL text (always a string
 * literal here): preparing costs more than running most of these statements. Room for every
 * statement in this file (about 120), with some to spare. */
#define STMT_CACHE 192

/* A busy database is tried again every millisecond for this many times (busy_wait). */
#define BUSY_TRIES 5000

struct sq {
	sqlite3 *db;
	int version;
	/* A transaction opened by sq_begin in which a statement failed (or that SQLite rolled back
	 * on its own after an I/O error, a full disk or no memory) is never committed: what its
	 * caller wrote before the failure would otherwise be kept without the rest. */
	int in_txn, txn_failed;
	/* The extended code of the last failure logged: the same failure again is logged only at
	 * debug level until a write succeeds, so a full disk is one line per outage, not per try. */
	int failing;
	struct {
		const char *sql;
		sqlite3_stmt *stmt;
		int busy;
	} cache[STMT_CACHE];
	/* Write intent (see store_writers_waiting): "<database>-writers", opened on first use;
	 * -1 before, -2 if it cannot be (fairness is then lost, nothing else). */
	char intent_path[PATH_MAX];
	int intent_fd;
};

/* Failures of the environment rather than of a statement: they come in bursts (a full disk, an
 * I/O error, no memory, a lock held too long) and end without anything here changing. */
static int outage(int code)
{
	switch (code & 0xff) {
	case SQLITE_FULL: case SQLITE_IOERR: case SQLITE_NOMEM: case SQLITE_BUSY: case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
		return 1;
	default:
		return 0;
	}
}

static enum herr sq_fail(const char *func, struct sq *s, const char *what)
{
	int code = s->db ? sqlite3_extended_errcode(s->db) : SQLITE_CANTOPEN;
	const char *msg = s->db ? sqlite3_errmsg(s->db) : "cannot open";

	if (s->in_txn)
		s->txn_failed = 1;
	if (!outage(code)) {
		log_msg(LOG_LEVEL_ERR, func, "%s: %s", what, msg);
		return HERR_STORE;
	}
	if (code == s->failing) {
		log_msg(LOG_LEVEL_DEBUG, func, "%s: %s (again)", what, msg);
		return HERR_STORE;
	}
	s->failing = code;
	log_msg(LOG_LEVEL_ERR, func, "%s: %s (not logged again until a write succeeds)", what, msg);
	return HERR_STORE;
}

/* A write reached the database: the next outage is news again. */
static void sq_wrote(struct sq *s)
{
	if (s->failing)
		log_info("the database takes writes again");
	s->failing = 0;
}

/* Finished with a statement: a cached one is reset for its next use, any other finalized. Both
 * repeat the outcome of its last step, so a failure no caller reported still spoils the open
 * transaction (a constraint violation does not: callers handle those). */
static void done(struct sq *s, sqlite3_stmt *stmt)
{
	int i, rc = SQLITE_OK, cached = 0;

	for (i = 0; i < STMT_CACHE && s->cache[i].sql; i++) {
		if (s->cache[i].stmt == stmt) {
			rc = sqlite3_reset(stmt);
			sqlite3_clear_bindings(stmt);
			s->cache[i].busy = 0;
			cached = 1;
			break;
		}
	}
	if (!cached)
		rc = sqlite3_finalize(stmt);
	if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_CONSTRAINT && s->in_txn)
		s->txn_failed = 1;
}

/* 0 if statements may run: not inside a transaction that failed or that SQLite rolled back. */
static int txn_spoiled(struct sq *s)
{
	if (!s->in_txn)
		return 0;
	if (!s->txn_failed && sqlite3_get_autocommit(s->db)) {
		/* Left alone, the statements after this would each commit on their own. (The error
		 * that made SQLite roll back was logged where it happened.) */
		log_debug("the transaction was rolled back by SQLite after an error; nothing more joins it");
		s->txn_failed = 1;
	}
	return s->txn_failed;
}

/* Prepare sql and bind arguments described by types: 's' text (NULL binds NULL), 'i' int64,
 * 'd' double. */
static enum herr prepare_v(struct sq *s, sqlite3_stmt **stmt, const char *sql, const char *types,
			   va_list ap)
{
	int i, rc;

	*stmt = NULL;
	if (txn_spoiled(s)) {
		log_debug("not run: the transaction failed already: %s", sql);
		return HERR_STORE;
	}
	for (i = 0; i < STMT_CACHE && s->cache[i].sql; i++) {
		if (s->cache[i].sql == sql && !s->cache[i].busy) {
			*stmt = s->cache[i].stmt;
			s->cache[i].busy = 1;
			break;
		}
	}
	if (!*stmt) {
		if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) != SQLITE_OK)
			return sq_fail(__func__, s, sql);
		if (i < STMT_CACHE && !s->cache[i].sql) {
			s->cache[i].sql = sql;
			s->cache[i].stmt = *stmt;
			s->cache[i].busy = 1;
		}
	}
	for (i = 0; types[i]; i++) {
		if (types[i] == 'd') {
			rc = sqlite3_bind_double(*stmt, i + 1, va_arg(ap, double));
		} else if (types[i] == 's') {
			const char *v = va_arg(ap, const char *);

			rc = v ? sqlite3_bind_text(*stmt, i + 1, v, -1, SQLITE_TRANSIENT)
			       : sqlite3_bind_null(*stmt, i + 1);
		} else {
			rc = sqlite3_bind_int64(*stmt, i + 1, va_arg(ap, int64_t));
		}
		if (rc != SQLITE_OK) {
			done(s, *stmt);
			*stmt = NULL;
			return sq_fail(__func__, s, "bind");
		}
	}
	return HERR_OK;
}

static enum herr prepare(struct sq *s, sqlite3_stmt **stmt, const char *sql, const char *types, ...)
{
	enum herr rc;
	va_list ap;

	va_start(ap, types);
	rc = prepare_v(s, stmt, sql, types, ap);
	va_end(ap);
	return rc;
}

/* Run a statement that returns no rows; *changes (may be NULL) gets the rows it changed.
 * A uniqueness violation is HERR_EXISTS; any other constraint violation is HERR_INVALID. */
static enum herr run(struct sq *s, int *changes, const char *sql, const char *types, ...)
{
	sqlite3_stmt *stmt;
	enum herr rc;
	va_list ap;
	int step;

	va_start(ap, types);
	rc = prepare_v(s, &stmt, sql, types, ap);
	va_end(ap);
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	if (step == SQLITE_DONE) {
		if (changes)
			*changes = sqlite3_changes(s->db);
		if (!s->in_txn && sqlite3_get_autocommit(s->db) && !sqlite3_stmt_readonly(stmt))
			sq_wrote(s);
	} else if (step == SQLITE_CONSTRAINT_UNIQUE || step == SQLITE_CONSTRAINT_PRIMARYKEY) {
		rc = HERR_EXISTS;
	} else if ((step & 0xff) == SQLITE_CONSTRAINT) {
		rc = HERR_INVALID; /* a missing referenced row, a CHECK or NOT NULL: bad input */
	} else {
		rc = sq_fail(__func__, s, sql);
	}
	done(s, stmt);
	return rc;
}

static void copy_text(char *dst, size_t size, sqlite3_stmt *stmt, int col)
{
	const unsigned char *v = sqlite3_column_text(stmt, col);

	snprintf(dst, size, "%s", v ? (const char *)v : "");
}

/* HERR_OK if sql (a string literal: a SELECT by one key) finds a row, HERR_NOTFOUND if not. */
static enum herr row_exists(struct sq *s, const char *sql, const char *key)
{
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, sql, "s", key);
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	rc = step == SQLITE_ROW ? HERR_OK : step == SQLITE_DONE ? HERR_NOTFOUND
				: sq_fail(__func__, s, sql);
	done(s, stmt);
	return rc;
}

/* After an UPDATE that changed nothing: HERR_STATE if the row is there (but not in a state the
 * update accepts), HERR_NOTFOUND if it is not. */
static enum herr state_or_notfound(struct sq *s, const char *sql, const char *key)
{
	enum herr rc = row_exists(s, sql, key);

	return rc == HERR_OK ? HERR_STATE : rc;
}

/* A page size as the listings take it: 0 (no limit asked) and anything larger become the most. */
static int64_t page_limit(size_t limit)
{
	return limit == 0 || limit > STORE_PAGE_MAX ? STORE_PAGE_MAX : (int64_t)limit;
}

static enum herr exec_script(struct sq *s, const char *sql)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_fail(__func__, s, strlen(sql) < 64 ? sql : "script"); /* migrations are long */
	return HERR_OK;
}

static int read_version(struct sq *s)
{
	sqlite3_stmt *stmt;
	int v = -1;

	if (prepare(s, &stmt, "SELECT COALESCE(MAX(version), 0) FROM schema_version", "") != HERR_OK)
		return -1;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int(stmt, 0);
	done(s, stmt);
	return v;
}

/* Before migrating a database, a copy of it as it is: DIR/backups/hearth-schema-<old>-<time>.db
 * (directory 0700, file 0600) next to the database. VACUUM INTO is a consistent snapshot. */
static enum herr backup_before_migrating(struct sq *s, const char *path, int latest)
{
	char dir[PATH_MAX] = "", file[PATH_MAX];
	const char *slash = strrchr(path, '/');
	sqlite3_stmt *stmt = NULL;
	enum herr rc;
	int fd;

	if (!slash)
		rc = fs_path(dir, sizeof(dir), "backups");
	else
		rc = fs_path(dir, sizeof(dir), "%.*s/backups", (int)(slash - path), path);
	if (rc == HERR_OK)
		rc = fs_path(file, sizeof(file), "%s/hearth-schema-%d-%lld.db", dir, s->version,
			     (long long)time(NULL));
	if (rc == HERR_OK)
		rc = fs_make_private_dir(dir, NULL);
	if (rc != HERR_OK)
		goto fail;
	/* Made here, empty and 0600, so the copy is never readable by others; VACUUM INTO fills an
	 * empty file. */
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0) {
		log_err("%s: %s", file, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(file);
		}
		rc = HERR_IO;
		goto fail;
	}
	close(fd);
	if (sqlite3_prepare_v2(s->db, "VACUUM INTO ?", -1, &stmt, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(stmt, 1, file, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_DONE) {
		rc = sq_fail(__func__, s, file);
		sqlite3_finalize(stmt);
		unlink(file);
		goto fail;
	}
	sqlite3_finalize(stmt);
	if ((rc = fs_sync(file, 0)) != HERR_OK || (rc = fs_sync(dir, 1)) != HERR_OK) {
		unlink(file);
		goto fail;
	}
	log_info("%s: schema %d copied to %s before migrating to schema %d", path, s->version, file, latest);
	return HERR_OK;
fail:
	log_err("%s: no copy of the database could be made before migrating it from schema %d to %d, so it "
		"is not migrated (free space and the permissions of %s?)", path, s->version, latest, dir);
	return rc == HERR_OK ? HERR_IO : rc;
}

/* Apply, each in its own transaction, the compiled-in migrations newer than the database. */
static enum herr migrate(struct sq *s, const char *path)
{
	int latest = migration_count ? migrations[migration_count - 1].version : 0;
	int had_schema;
	unsigned i;

	if (exec_script(s, "CREATE TABLE IF NOT EXISTS schema_version ("
			   " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
	    != HERR_OK)
		return HERR_STORE;
	s->version = read_version(s);
	if (s->version < 0)
		return HERR_STORE;
	had_schema = s->version > 0; /* a new database is created, not "migrated" */
	if (s->version > latest) {
		log_err("%s: database schema version %d is newer than this hearth understands (%d); "
			"run the newer hearth, or restore a backup made by this one",
			path, s->version, latest);
		return HERR_SCHEMA;
	}
	/* Losing data silently is worse than not starting: no copy, no migration. A new database
	 * (version 0) has nothing to lose. */
	if (had_schema && s->version < latest && backup_before_migrating(s, path, latest) != HERR_OK)
		return HERR_IO;
	for (i = 0; i < migration_count; i++) {
		const struct migration *m = &migrations[i];

		if (m->version <= s->version)
			continue;
		if (exec_script(s, "BEGIN IMMEDIATE") != HERR_OK)
			return HERR_STORE;
		if (exec_script(s, m->sql) != HERR_OK ||
		    run(s, NULL, "INSERT INTO schema_version (version, name, applied_at)"
			" VALUES (?, ?, ?)", "isi", (int64_t)m->version, m->name, (int64_t)time(NULL)) != HERR_OK) {
			log_err("%s: migration %s failed; the database is unchanged", path, m->name);
			exec_script(s, "ROLLBACK");
			return HERR_SCHEMA;
		}
		if (exec_script(s, "COMMIT") != HERR_OK)
			return HERR_STORE;
		if (had_schema)
			log_info("database migrated to schema %d (%s)", m->version, m->name);
		s->version = m->version;
	}
	return HERR_OK;
}

static void sq_close(void *impl)
{
	struct sq *s = impl;
	int i;

	if (!s)
		return;
	for (i = 0; i < STMT_CACHE && s->cache[i].sql; i++)
		sqlite3_finalize(s->cache[i].stmt);
	sqlite3_close(s->db);
	if (s->intent_fd >= 0)
		close(s->intent_fd);
	free(s);
}

static int sq_schema_version(void *impl)
{
	return ((struct sq *)impl)->version;
}

/* SQLite's own busy handler sleeps longer and longer (up to 100 ms) between tries, so a writer
 * waiting for the endpoint's back-to-back group commits would almost never find the lock free.
 * Every handle tries every millisecond instead, for up to 5 s. */
static int busy_wait(void *arg, int count)
{
	(void)arg;
	if (count >= BUSY_TRIES)
		return 0;
	(void)usleep(1000);
	return 1;
}

static int intent_fd(struct sq *s)
{
	if (s->intent_fd == -1) {
		s->intent_fd = open(s->intent_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (s->intent_fd < 0) {
			log_debug("%s: %s; writers are not announced", s->intent_path, strerror(errno));
			s->intent_fd = -2;
		}
	}
	return s->intent_fd;
}

/* A shared lock on the intent file's first byte says "this handle waits to begin a write
 * transaction". Open-file-description locks: they also tell apart threads of one process. */
static void announce(struct sq *s, int waiting)
{
	struct flock fl = { .l_type = waiting ? F_RDLCK : F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	int fd = intent_fd(s);

	if (fd >= 0)
		(void)fcntl(fd, F_OFD_SETLK, &fl);
}

static int sq_writers_waiting(void *impl)
{
	struct sq *s = impl;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	int fd = intent_fd(s);

	return fd >= 0 && fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

static enum herr sq_begin(void *impl)
{
	struct sq *s = impl;
	enum herr rc;

	if (!s->in_txn && !sqlite3_get_autocommit(s->db)) {
		/* One is open that nobody here began or still holds (a ROLLBACK that failed during an
		 * outage): ended now, or no transaction could ever begin on this handle again. */
		log_warn("a transaction left open after an error is rolled back");
		(void)exec_script(s, "ROLLBACK");
	}
	announce(s, 1);
	rc = exec_script(s, "BEGIN IMMEDIATE");
	announce(s, 0);
	if (rc == HERR_OK) {
		s->in_txn = 1;
		s->txn_failed = 0;
	}
	return rc;
}

static void sq_rollback(void *impl)
{
	struct sq *s = impl;

	s->in_txn = s->txn_failed = 0;
	if (!sqlite3_get_autocommit(s->db))
		exec_script(s, "ROLLBACK");
}

/* A transaction that cannot be committed is rolled back here: none stays open after a failure. */
static enum herr sq_commit(void *impl)
{
	struct sq *s = impl;
	enum herr rc;

	if (txn_spoiled(s)) {
		log_debug("a statement of this transaction failed: rolled back, not committed");
		sq_rollback(s);
		return HERR_STORE;
	}
	rc = exec_script(s, "COMMIT");
	if (rc != HERR_OK) {
		sq_rollback(s);
		return rc;
	}
	s->in_txn = 0;
	sq_wrote(s);
	return HERR_OK;
}

static enum herr sq_model_ensure(void *impl, const char *name, int64_t now)
{
	return run(impl, NULL, "INSERT INTO models (name, created_at) VALUES (?, ?)"
		   " ON CONFLICT (name) DO NOTHING", "si", name, now);
}

static enum herr sq_model_set_policy(void *impl, const char *name, const char *policy, int64_t now)
{
	return run(impl, NULL, "INSERT INTO models (name, policy, created_at) VALUES (?, ?, ?)"
		   " ON CONFLICT (name) DO UPDATE SET policy = excluded.policy", "ssi", name, policy, now);
}

static enum herr sq_model_get_policy(void *impl, const char *name, char **policy)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	*policy = NULL;
	rc = prepare(s, &stmt, "SELECT policy FROM models WHERE name = ?", "s", name);
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(stmt, 0);

		if (v) {
			*policy = strdup((const char *)v);
			if (!*policy)
				rc = HERR_NOMEM;
		}
	} else if (step == SQLITE_DONE) {
		rc = HERR_NOTFOUND;
	} else {
		rc = sq_fail(__func__, s, "model");
	}
	done(s, stmt);
	return rc;
}

static enum herr sq_model_list(void *impl, store_model_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT m.name, m.policy IS NOT NULL,"
		     " (SELECT COUNT(*) FROM devices d WHERE d.model = m.name) FROM models m ORDER BY m.name", "");
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (fn(ctx, (const char *)sqlite3_column_text(stmt, 0), sqlite3_column_int(stmt, 1),
		       sqlite3_column_int64(stmt, 2)) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "models");
	done(s, stmt);
	return rc;
}

/* Device and client ids share one namespace: each insert refuses an id the other table holds. */
static enum herr sq_device_insert(void *impl, const char *id, const char *model, int64_t now)
{
	int changed = 0;
	enum herr rc = run(impl, &changed, "INSERT INTO devices (id, model, status, created_at)"
			   " SELECT ?1, ?2, 'active', ?3 WHERE NOT EXISTS (SELECT 1 FROM clients WHERE id = ?1)",
			   "ssi", id, model, now);

	return rc == HERR_OK && changed == 0 ? HERR_EXISTS : rc;
}

static enum herr sq_client_insert(void *impl, const char *id, const char *role, int64_t now)
{
	int changed = 0;
	enum herr rc = run(impl, &changed, "INSERT INTO clients (id, role, status, created_at)"
			   " SELECT ?1, ?2, 'active', ?3 WHERE NOT EXISTS (SELECT 1 FROM devices WHERE id = ?1)",
			   "ssi", id, role, now);

	return rc == HERR_OK && changed == 0 ? HERR_EXISTS : rc;
}

static enum herr sq_client_revoke(void *impl, const char *id, int64_t now, int *certs)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int changed = 0, step;

	*certs = 0;
	rc = run(impl, &changed, "UPDATE clients SET status = 'revoked', revoked_at = ?"
		 " WHERE id = ? AND status = 'active'", "is", now, id);
	if (rc != HERR_OK)
		return rc;
	if (changed == 0) {
		rc = prepare(s, &stmt, "SELECT 1 FROM clients WHERE id = ?", "s", id);
		if (rc != HERR_OK)
			return rc;
		step = sqlite3_step(stmt);
		rc = step == SQLITE_ROW ? HERR_STATE : step == SQLITE_DONE ? HERR_NOTFOUND
					  : sq_fail(__func__, s, "client");
		done(s, stmt);
		return rc;
	}
	return run(impl, certs, "UPDATE certificates SET status = 'revoked', revoked_at = ?"
		   " WHERE client_id = ? AND status = 'valid'", "is", now, id);
}

static enum herr sq_client_list(void *impl, store_client_fn fn, void *ctx)
{
	struct sq *s = impl;
	struct store_client k;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT k.id, k.role, k.status, k.created_at, COALESCE(k.revoked_at, 0),"
		     " COALESCE((SELECT MAX(c.not_after) FROM certificates c"
		     "  WHERE c.client_id = k.id AND c.status = 'valid'), 0)"
		     " FROM clients k ORDER BY k.id", "");
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		memset(&k, 0, sizeof(k));
		copy_text(k.id, sizeof(k.id), stmt, 0);
		copy_text(k.role, sizeof(k.role), stmt, 1);
		copy_text(k.status, sizeof(k.status), stmt, 2);
		k.created_at = sqlite3_column_int64(stmt, 3);
		k.revoked_at = sqlite3_column_int64(stmt, 4);
		k.cert_not_after = sqlite3_column_int64(stmt, 5);
		if (fn(ctx, &k) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "clients");
	done(s, stmt);
	return rc;
}

/* "+c.status": without statistics SQLite would pick certificates_revoked (status, not_after) and
 * scan every valid certificate of the fleet for each device; the unary + keeps it on
 * certificates_device (a device has a handful). */
#define DEVICE_COLUMNS \
	"d.id, d.model, d.status, d.created_at, COALESCE(d.revoked_at, 0)," \
	" COALESCE((SELECT MAX(c.not_after) FROM certificates c" \
	"  WHERE c.device_id = d.id AND +c.status = 'valid'), 0)," \
	" COALESCE((SELECT l.bucket_start FROM last_seen l WHERE l.device_id = d.id), 0)"

static void read_device(sqlite3_stmt *stmt, struct store_device *d)
{
	memset(d, 0, sizeof(*d));
	copy_text(d->id, sizeof(d->id), stmt, 0);
	copy_text(d->model, sizeof(d->model), stmt, 1);
	copy_text(d->status, sizeof(d->status), stmt, 2);
	d->created_at = sqlite3_column_int64(stmt, 3);
	d->revoked_at = sqlite3_column_int64(stmt, 4);
	d->cert_not_after = sqlite3_column_int64(stmt, 5);
	d->last_seen = sqlite3_column_int64(stmt, 6);
}

static enum herr emit_devices(struct sq *s, sqlite3_stmt *stmt, store_device_fn fn, void *ctx)
{
	struct store_device d;
	enum herr rc = HERR_OK;
	int step;

	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		read_device(stmt, &d);
		if (fn(ctx, &d) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "devices");
	done(s, stmt);
	return rc;
}

static enum herr sq_device_get(void *impl, const char *id, struct store_device *out)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT " DEVICE_COLUMNS " FROM devices d WHERE d.id = ?", "s", id);
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		read_device(stmt, out);
	else if (step == SQLITE_DONE)
		rc = HERR_NOTFOUND;
	else
		rc = sq_fail(__func__, s, "device");
	done(s, stmt);
	return rc;
}

static enum herr sq_device_revoke(void *impl, const char *id, int64_t now, int *certs)
{
	enum herr rc;
	int changed = 0;

	*certs = 0;
	rc = run(impl, &changed, "UPDATE devices SET status = 'revoked', revoked_at = ?"
		 " WHERE id = ? AND status = 'active'", "is", now, id);
	if (rc != HERR_OK)
		return rc;
	if (changed == 0) {
		struct store_device d;

		rc = sq_device_get(impl, id, &d);
		return rc == HERR_OK ? HERR_STATE : rc;
	}
	return run(impl, certs, "UPDATE certificates SET status = 'revoked', revoked_at = ?"
		   " WHERE device_id = ? AND +status = 'valid'", "is", now, id);
}

static enum herr sq_device_decommission(void *impl, const char *id, int64_t now, int *certs)
{
	struct store_device d;
	char prefix[96];
	enum herr rc;

	*certs = 0;
	rc = sq_device_get(impl, id, &d);
	if (rc != HERR_OK)
		return rc;
	if (strcmp(d.status, "decommissioned") == 0)
		return HERR_STATE;
	/* A prefix compare, not LIKE: '_' in an id is a LIKE wildcard. */
	snprintf(prefix, sizeof(prefix), "hearth/v1/%s/", id);
	if ((rc = run(impl, certs, "UPDATE certificates SET status = 'revoked', revoked_at = ?"
		      " WHERE device_id = ? AND +status = 'valid'", "is", now, id)) != HERR_OK ||
	    (rc = run(impl, NULL, "UPDATE devices SET status = 'decommissioned',"
		      " revoked_at = ? WHERE id = ?", "is", now, id)) != HERR_OK ||
	    (rc = run(impl, NULL, "DELETE FROM telemetry WHERE device_id = ?", "s", id)) != HERR_OK ||
	    (rc = run(impl, NULL, "DELETE FROM last_seen WHERE device_id = ?", "s", id)) != HERR_OK ||
	    (rc = run(impl, NULL, "DELETE FROM device_tags WHERE device_id = ?", "s", id)) != HERR_OK ||
	    (rc = run(impl, NULL, "DELETE FROM bridge_outbox WHERE device_id = ?", "s", id)) != HERR_OK)
		return rc;
	return run(impl, NULL, "DELETE FROM retained WHERE substr(topic, 1, length(?)) = ?", "ss",
		   prefix, prefix);
}

static enum herr sq_device_list(void *impl, store_device_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	rc = prepare(s, &stmt, "SELECT " DEVICE_COLUMNS " FROM devices d ORDER BY d.id", "");
	return rc == HERR_OK ? emit_devices(s, stmt, fn, ctx) : rc;
}

/* One statement for every combination of filters: a NULL (or 0) parameter switches its test off. */
static enum herr sq_device_query(void *impl, const struct store_device_filter *f, store_device_fn fn,
				 void *ctx)
{
	static const struct store_device_filter all;
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	if (!f)
		f = &all;
	rc = prepare(s, &stmt, "SELECT " DEVICE_COLUMNS " FROM devices d"
		     " WHERE (?1 IS NULL OR d.model = ?1) AND (?2 IS NULL OR d.status = ?2)"
		     " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM device_tags t"
		     "  WHERE t.device_id = d.id AND t.tag = ?3))"
		     " AND (?4 = 0 OR EXISTS (SELECT 1 FROM last_seen l"
		     "  WHERE l.device_id = d.id AND l.bucket_start >= ?4))"
		     " AND (?5 IS NULL OR d.id > ?5)"
		     " ORDER BY d.id LIMIT ?6", "sssisi", f->model, f->status, f->tag, f->seen_since,
		     f->after, page_limit(f->limit));
	return rc == HERR_OK ? emit_devices(s, stmt, fn, ctx) : rc;
}

/* Sorted; a device without tags gives one row with a NULL tag, an unknown device none. */
static enum herr sq_device_tags(void *impl, const char *id, store_tag_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step, rows = 0;

	rc = prepare(s, &stmt, "SELECT t.tag FROM devices d LEFT JOIN device_tags t ON t.device_id = d.id"
		     " WHERE d.id = ? ORDER BY t.tag", "s", id);
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		rows++;
		if (sqlite3_column_type(stmt, 0) == SQLITE_NULL)
			continue;
		if (fn(ctx, (const char *)sqlite3_column_text(stmt, 0)) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "device_tags");
	else if (rows == 0)
		rc = HERR_NOTFOUND;
	done(s, stmt);
	return rc;
}

static enum herr sq_device_set_tags(void *impl, const char *id, const char *const *tags, size_t n)
{
	struct sq *s = impl;
	enum herr rc;
	size_t i;

	/* Devices are never deleted, so the check can come before the changes. */
	rc = row_exists(s, "SELECT 1 FROM devices WHERE id = ?", id);
	if (rc != HERR_OK)
		return rc;
	/* A savepoint, so that the tags are replaced whole or not at all, whether the caller has a
	 * transaction open or not. The first statement inside writes, so the write lock is taken
	 * (waiting if busy) before anything is read. */
	rc = exec_script(s, "SAVEPOINT set_tags");
	if (rc != HERR_OK)
		return rc;
	rc = run(s, NULL, "DELETE FROM device_tags WHERE device_id = ?", "s", id);
	for (i = 0; i < n && rc == HERR_OK; i++)
		rc = run(s, NULL, "INSERT INTO device_tags (device_id, tag) VALUES (?, ?)"
			 " ON CONFLICT (device_id, tag) DO NOTHING", "ss", id, tags[i]);
	if (rc != HERR_OK)
		exec_script(s, "ROLLBACK TO set_tags");
	if (exec_script(s, "RELEASE set_tags") != HERR_OK && rc == HERR_OK)
		rc = HERR_STORE;
	return rc;
}

static enum herr sq_device_set_model(void *impl, const char *id, const char *model, int64_t now)
{
	enum herr rc;
	int changed = 0;

	/* The model is made only for a device that exists: a mistyped id leaves no stray model. */
	rc = run(impl, NULL, "INSERT INTO models (name, created_at) SELECT ?1, ?2"
		 " WHERE EXISTS (SELECT 1 FROM devices WHERE id = ?3) ON CONFLICT (name) DO NOTHING",
		 "sis", model, now, id);
	if (rc != HERR_OK)
		return rc;
	rc = run(impl, &changed, "UPDATE devices SET model = ? WHERE id = ?", "ss", model, id);
	return rc == HERR_OK && changed == 0 ? HERR_NOTFOUND : rc;
}

/* Newest first; as with the tags, an unknown device is HERR_NOTFOUND rather than no rows. */
static enum herr sq_device_certs(void *impl, const char *id, store_cert_row_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step, rows = 0;

	rc = prepare(s, &stmt, "SELECT c.serial, c.status, c.fingerprint, c.not_before, c.not_after,"
		     " COALESCE(c.revoked_at, 0) FROM devices d LEFT JOIN certificates c ON c.device_id = d.id"
		     " WHERE d.id = ? ORDER BY c.not_before DESC, c.serial", "s", id);
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_cert_row c = {
			.serial = (const char *)sqlite3_column_text(stmt, 0),
			.status = (const char *)sqlite3_column_text(stmt, 1),
			.fingerprint = (const char *)sqlite3_column_text(stmt, 2),
			.not_before = sqlite3_column_int64(stmt, 3),
			.not_after = sqlite3_column_int64(stmt, 4),
			.revoked_at = sqlite3_column_int64(stmt, 5),
		};

		rows++;
		if (!c.serial) /* the device has no certificate */
			continue;
		if (fn(ctx, &c) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "certificates");
	else if (rows == 0)
		rc = HERR_NOTFOUND;
	done(s, stmt);
	return rc;
}

static enum herr sq_identity_ok(void *impl, const char *id, const char *serial, char *role)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT 'device', d.status = 'active' AND c.status = 'valid' FROM certificates c"
		     " JOIN devices d ON d.id = c.device_id WHERE c.serial = ?1 AND c.device_id = ?2"
		     " UNION ALL"
		     " SELECT k.role, k.status = 'active' AND c.status = 'valid' FROM certificates c"
		     " JOIN clients k ON k.id = c.client_id WHERE c.serial = ?1 AND c.client_id = ?2",
		     "ss", serial, id);
	if (rc != HERR_OK)
		return rc;
	role[0] = '\0';
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW) {
		copy_text(role, STORE_ROLE_MAX, stmt, 0);
		rc = sqlite3_column_int(stmt, 1) ? HERR_OK : HERR_STATE;
	} else if (step == SQLITE_DONE) {
		rc = HERR_NOTFOUND;
	} else {
		rc = sq_fail(__func__, s, "certificate");
	}
	done(s, stmt);
	return rc;
}

static enum herr sq_list_inactive_since(void *impl, int64_t since, store_inactive_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	/* A decommissioned device keeps its revoked_at (or gets it then), so it shows up too. */
	rc = prepare(s, &stmt, "SELECT id, status FROM devices WHERE status <> 'active' AND revoked_at >= ?1"
		     " UNION ALL SELECT id, status FROM clients WHERE status <> 'active' AND revoked_at >= ?1",
		     "i", since);
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (fn(ctx, (const char *)sqlite3_column_text(stmt, 0),
		       (const char *)sqlite3_column_text(stmt, 1)) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "devices");
	done(s, stmt);
	return rc;
}

static enum herr sq_retained_set(void *impl, const char *topic, const uint8_t *payload, size_t len,
				 int qos, int64_t now)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	if (len == 0)
		return run(s, NULL, "DELETE FROM retained WHERE topic = ?", "s", topic);
	rc = prepare(s, &stmt, "INSERT INTO retained (topic, payload, qos, updated_at) VALUES (?, ?, ?, ?)"
		     " ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos,"
		     " updated_at = excluded.updated_at", "s", topic);
	if (rc != HERR_OK)
		return rc;
	if (sqlite3_bind_blob64(stmt, 2, payload, len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(stmt, 3, qos) != SQLITE_OK || sqlite3_bind_int64(stmt, 4, now) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_DONE)
		rc = sq_fail(__func__, s, "retained");
	done(s, stmt);
	return rc;
}

static enum herr sq_retained_list(void *impl, store_retained_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT topic, payload, qos FROM retained ORDER BY topic", "");
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(stmt, 1);
		size_t n = (size_t)sqlite3_column_bytes(stmt, 1);

		if (fn(ctx, (const char *)sqlite3_column_text(stmt, 0), p, n, sqlite3_column_int(stmt, 2)) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "retained");
	done(s, stmt);
	return rc;
}

static enum herr sq_cert_insert(void *impl, const struct store_cert *c)
{
	return run(impl, NULL, "INSERT INTO certificates (serial, kind, device_id, client_id, subject,"
		   " fingerprint, not_before, not_after, status, pem) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'valid', ?)",
		   "ssssssiis", c->serial, c->kind, c->device_id, c->client_id, c->subject, c->fingerprint,
		   c->not_before, c->not_after, c->pem);
}

static enum herr sq_cert_list_revoked(void *impl, int64_t now, store_revoked_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT serial, revoked_at FROM certificates"
		     " WHERE status = 'revoked' AND not_after >= ? ORDER BY revoked_at, serial", "i", now);
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (fn(ctx, (const char *)sqlite3_column_text(stmt, 0), sqlite3_column_int64(stmt, 1)) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "revoked certificates");
	done(s, stmt);
	return rc;
}

static enum herr sq_crl_next_number(void *impl, uint64_t *number)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	rc = run(s, NULL, "UPDATE crl_state SET number = number + 1 WHERE id = 1", "");
	if (rc != HERR_OK)
		return rc;
	rc = prepare(s, &stmt, "SELECT number FROM crl_state WHERE id = 1", "");
	if (rc != HERR_OK)
		return rc;
	if (sqlite3_step(stmt) == SQLITE_ROW)
		*number = (uint64_t)sqlite3_column_int64(stmt, 0);
	else
		rc = sq_fail(__func__, s, "crl_state");
	done(s, stmt);
	return rc;
}

static enum herr sq_audit_from(void *impl, int64_t at, const char *actor, const char *source,
			       const char *action, const char *target, const char *detail)
{
	return run(impl, NULL, "INSERT INTO audit_log (at, actor, source, action, target, detail)"
		   " VALUES (?, ?, ?, ?, ?, ?)", "isssss", at, actor, source, action, target, detail);
}

static enum herr sq_audit_list(void *impl, int64_t before, size_t limit, store_audit_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT id, at, actor, source, action, target, detail FROM audit_log"
		     " WHERE (?1 = 0 OR id < ?1) ORDER BY id DESC LIMIT ?2", "ii", before, page_limit(limit));
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_audit_row r = {
			.id = sqlite3_column_int64(stmt, 0),
			.at = sqlite3_column_int64(stmt, 1),
			.actor = (const char *)sqlite3_column_text(stmt, 2),
			.source = (const char *)sqlite3_column_text(stmt, 3),
			.action = (const char *)sqlite3_column_text(stmt, 4),
			.target = (const char *)sqlite3_column_text(stmt, 5),
			.detail = (const char *)sqlite3_column_text(stmt, 6),
		};

		if (fn(ctx, &r) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "audit_log");
	done(s, stmt);
	return rc;
}

/* API tokens. Unset times are NULL in the table and 0 in the struct. */
#define API_TOKEN_COLUMNS \
	"id, name, hash, scope, created_at, COALESCE(expires_at, 0), COALESCE(last_used_at, 0)," \
	" COALESCE(revoked_at, 0)"

static void read_api_token(sqlite3_stmt *stmt, struct store_api_token *t)
{
	memset(t, 0, sizeof(*t));
	copy_text(t->id, sizeof(t->id), stmt, 0);
	copy_text(t->name, sizeof(t->name), stmt, 1);
	copy_text(t->hash, sizeof(t->hash), stmt, 2);
	copy_text(t->scope, sizeof(t->scope), stmt, 3);
	t->created_at = sqlite3_column_int64(stmt, 4);
	t->expires_at = sqlite3_column_int64(stmt, 5);
	t->last_used_at = sqlite3_column_int64(stmt, 6);
	t->revoked_at = sqlite3_column_int64(stmt, 7);
}

static enum herr sq_api_token_insert(void *impl, const struct store_api_token *t)
{
	return run(impl, NULL, "INSERT INTO api_tokens (id, name, hash, scope, created_at, expires_at,"
		   " last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULLIF(?, 0), NULLIF(?, 0), NULLIF(?, 0))",
		   "ssssiiii", t->id, t->name, t->hash, t->scope, t->created_at, t->expires_at,
		   t->last_used_at, t->revoked_at);
}

static enum herr sq_api_token_get(void *impl, const char *id, struct store_api_token *out)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT " API_TOKEN_COLUMNS " FROM api_tokens WHERE id = ?", "s", id);
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		read_api_token(stmt, out);
	else if (step == SQLITE_DONE)
		rc = HERR_NOTFOUND;
	else
		rc = sq_fail(__func__, s, "api_tokens");
	done(s, stmt);
	return rc;
}

static enum herr sq_api_token_touch(void *impl, const char *id, int64_t now)
{
	int changed = 0;
	/* Requests finish in any order: the time only moves forward. */
	enum herr rc = run(impl, &changed, "UPDATE api_tokens SET last_used_at ="
			   " MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?", "is", now, id);

	return rc == HERR_OK && changed == 0 ? HERR_NOTFOUND : rc;
}

static enum herr sq_api_token_list(void *impl, store_api_token_fn fn, void *ctx)
{
	struct sq *s = impl;
	struct store_api_token t;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT " API_TOKEN_COLUMNS " FROM api_tokens ORDER BY name", "");
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		read_api_token(stmt, &t);
		if (fn(ctx, &t) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "api_tokens");
	done(s, stmt);
	return rc;
}

static enum herr sq_api_token_revoke(void *impl, const char *name, int64_t now)
{
	int changed = 0;
	enum herr rc = run(impl, &changed, "UPDATE api_tokens SET revoked_at = ?"
			   " WHERE name = ? AND revoked_at IS NULL", "is", now, name);

	if (rc == HERR_OK && changed == 0)
		rc = state_or_notfound(impl, "SELECT 1 FROM api_tokens WHERE name = ?", name);
	return rc;
}

/* Enrollment tokens. Unset times are NULL in the table and 0 in the struct, unset texts NULL and "". */
#define ENROLL_TOKEN_COLUMNS \
	"id, hash, model, COALESCE(device_id, ''), created_by, COALESCE(used_by, ''), created_at," \
	" expires_at, COALESCE(used_at, 0), COALESCE(revoked_at, 0)"

static void read_enroll_token(sqlite3_stmt *stmt, struct store_enroll_token *t)
{
	memset(t, 0, sizeof(*t));
	copy_text(t->id, sizeof(t->id), stmt, 0);
	copy_text(t->hash, sizeof(t->hash), stmt, 1);
	copy_text(t->model, sizeof(t->model), stmt, 2);
	copy_text(t->device_id, sizeof(t->device_id), stmt, 3);
	copy_text(t->created_by, sizeof(t->created_by), stmt, 4);
	copy_text(t->used_by, sizeof(t->used_by), stmt, 5);
	t->created_at = sqlite3_column_int64(stmt, 6);
	t->expires_at = sqlite3_column_int64(stmt, 7);
	t->used_at = sqlite3_column_int64(stmt, 8);
	t->revoked_at = sqlite3_column_int64(stmt, 9);
}

static enum herr sq_enroll_token_insert(void *impl, const struct store_enroll_token *t)
{
	return run(impl, NULL, "INSERT INTO enrollment_tokens (id, hash, model, device_id, created_by,"
		   " created_at, expires_at, used_at, used_by, revoked_at)"
		   " VALUES (?, ?, ?, NULLIF(?, ''), ?, ?, ?, NULLIF(?, 0), NULLIF(?, ''), NULLIF(?, 0))",
		   "sssssiiisi", t->id, t->hash, t->model, t->device_id, t->created_by, t->created_at,
		   t->expires_at, t->used_at, t->used_by, t->revoked_at);
}

static enum herr sq_enroll_token_get(void *impl, const char *id, struct store_enroll_token *out)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT " ENROLL_TOKEN_COLUMNS " FROM enrollment_tokens WHERE id = ?", "s", id);
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		read_enroll_token(stmt, out);
	else if (step == SQLITE_DONE)
		rc = HERR_NOTFOUND;
	else
		rc = sq_fail(__func__, s, "enrollment_tokens");
	done(s, stmt);
	return rc;
}

/* One UPDATE that tests and spends, so two enrollments racing for a token cannot both win. A token
 * bound to a device id spends only for that id. */
static enum herr sq_enroll_token_use(void *impl, const char *id, const char *device_id, int64_t now)
{
	int changed = 0;
	enum herr rc = run(impl, &changed, "UPDATE enrollment_tokens SET used_at = ?2, used_by = ?3"
			   " WHERE id = ?1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?2"
			   " AND (device_id IS NULL OR device_id = ?3)", "sis", id, now, device_id);

	if (rc == HERR_OK && changed == 0)
		rc = state_or_notfound(impl, "SELECT 1 FROM enrollment_tokens WHERE id = ?", id);
	return rc;
}

static enum herr sq_enroll_token_list(void *impl, const char *after, size_t limit,
				      store_enroll_token_fn fn, void *ctx)
{
	struct sq *s = impl;
	struct store_enroll_token t;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT " ENROLL_TOKEN_COLUMNS " FROM enrollment_tokens"
		     " WHERE id > ? ORDER BY id LIMIT ?", "si", after ? after : "", page_limit(limit));
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		read_enroll_token(stmt, &t);
		if (fn(ctx, &t) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "enrollment_tokens");
	done(s, stmt);
	return rc;
}

static enum herr sq_enroll_token_revoke(void *impl, const char *id, int64_t now)
{
	int changed = 0;
	enum herr rc = run(impl, &changed, "UPDATE enrollment_tokens SET revoked_at = ?"
			   " WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL", "is", now, id);

	if (rc == HERR_OK && changed == 0)
		rc = state_or_notfound(impl, "SELECT 1 FROM enrollment_tokens WHERE id = ?", id);
	return rc;
}

static enum herr sq_telemetry_fold(void *impl, const struct store_sample *x)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	/* The bucket's aggregate so far, folded in SQL: only the aggregate is ever written. */
	rc = prepare(s, &stmt, "INSERT INTO telemetry (device_id, field, bucket_start, bucket_s, agg, n, value,"
		     " text, retention_days) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
		     " ON CONFLICT (device_id, field, bucket_start) DO UPDATE SET n = n + excluded.n,"
		     " value = CASE agg WHEN 'mean' THEN value + excluded.value"
		     "  WHEN 'min' THEN MIN(value, excluded.value) WHEN 'max' THEN MAX(value, excluded.value)"
		     "  ELSE excluded.value END, text = excluded.text",
		     "ssiisidsi", x->device_id, x->field, x->bucket_start, (int64_t)x->bucket_s, x->agg,
		     x->n, x->value, x->text, (int64_t)x->retention_days);
	if (rc != HERR_OK)
		return rc;
	if (x->text || strcmp(x->agg, "count") == 0)
		sqlite3_bind_null(stmt, 7);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		rc = sq_fail(__func__, s, "telemetry");
	done(s, stmt);
	return rc;
}

static enum herr sq_last_seen(void *impl, const char *device_id, int64_t bucket_start)
{
	return run(impl, NULL, "INSERT INTO last_seen (device_id, bucket_start) VALUES (?, ?)"
		   " ON CONFLICT (device_id) DO UPDATE SET bucket_start = MAX(bucket_start, excluded.bucket_start)",
		   "si", device_id, bucket_start);
}

static enum herr sq_dropped_add(void *impl, const char *model, const char *field, int sensitive,
				int64_t count)
{
	return run(impl, NULL, "INSERT INTO dropped_fields (model, field, sensitive, count) VALUES (?, ?, ?, ?)"
		   " ON CONFLICT (model, field) DO UPDATE SET count = count + excluded.count,"
		   " sensitive = MAX(sensitive, excluded.sensitive)",
		   "ssii", model, field, (int64_t)sensitive, count);
}

/* The columns emit_rows reads, in its order; an aggregate's value is final (mean divided by n). */
#define ROW_COLUMNS \
	"device_id, field, agg, text, bucket_start, n, bucket_s," \
	" CASE agg WHEN 'mean' THEN value / n WHEN 'count' THEN n ELSE value END, retention_days"

static enum herr emit_rows(struct sq *s, sqlite3_stmt *stmt, store_row_fn fn, void *ctx)
{
	enum herr rc = HERR_OK;
	int step;

	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_row r = {
			.device_id = (const char *)sqlite3_column_text(stmt, 0),
			.field = (const char *)sqlite3_column_text(stmt, 1),
			.agg = (const char *)sqlite3_column_text(stmt, 2),
			.text = (const char *)sqlite3_column_text(stmt, 3),
			.bucket_start = sqlite3_column_int64(stmt, 4),
			.n = sqlite3_column_int64(stmt, 5),
			.bucket_s = (uint32_t)sqlite3_column_int64(stmt, 6),
			.value = sqlite3_column_double(stmt, 7),
			.has_value = sqlite3_column_type(stmt, 7) != SQLITE_NULL,
			.retention_days = (uint32_t)sqlite3_column_int64(stmt, 8),
		};

		if (fn(ctx, &r) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "telemetry");
	done(s, stmt);
	return rc;
}

static enum herr sq_telemetry_query(void *impl, const char *device_id, int64_t from, int64_t to,
				    store_row_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	rc = prepare(s, &stmt, "SELECT " ROW_COLUMNS " FROM telemetry"
		     " WHERE device_id = ? AND bucket_start >= ? AND bucket_start < ?"
		     " ORDER BY bucket_start, field", "sii", device_id, from, to);
	return rc == HERR_OK ? emit_rows(s, stmt, fn, ctx) : rc;
}

static enum herr sq_telemetry_closed(void *impl, int64_t after, int64_t until, store_row_fn fn,
				     void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	/* The bucket_start bound lets the index narrow the scan to the window. */
	rc = prepare(s, &stmt, "SELECT " ROW_COLUMNS " FROM telemetry"
		     " WHERE bucket_start >= ?1 - ?3 AND bucket_start + bucket_s > ?1"
		     " AND bucket_start + bucket_s <= ?2"
		     " ORDER BY device_id, bucket_start, bucket_s, field", "iii", after, until,
		     (int64_t)STORE_BUCKET_MAX_S);
	return rc == HERR_OK ? emit_rows(s, stmt, fn, ctx) : rc;
}

static enum herr sq_feed_get(void *impl, int64_t *published_until)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT published_until FROM feed_state WHERE id = 1", "");
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		*published_until = sqlite3_column_int64(stmt, 0);
	rc = step == SQLITE_ROW ? HERR_OK : step == SQLITE_DONE ? HERR_NOTFOUND
				: sq_fail(__func__, s, "feed_state");
	done(s, stmt);
	return rc;
}

static enum herr sq_feed_set(void *impl, int64_t published_until)
{
	return run(impl, NULL, "INSERT INTO feed_state (id, published_until) VALUES (1, ?)"
		   " ON CONFLICT (id) DO UPDATE SET published_until = excluded.published_until",
		   "i", published_until);
}

/* --- the bridge --------------------------------------------------------------------------------- */

static enum herr sq_bridge_state(void *impl, struct store_bridge_state *out)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	memset(out, 0, sizeof(*out));
	rc = prepare(s, &stmt, "SELECT b.until, b.dropped, b.connected, b.changed_at, b.outbox_rows,"
		     " b.outbox_bytes, (SELECT COALESCE(MIN(created_at), 0) FROM bridge_outbox)"
		     " FROM bridge_state b WHERE b.id = 1", "");
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW) {
		out->until = sqlite3_column_int64(stmt, 0);
		out->dropped = sqlite3_column_int64(stmt, 1);
		out->connected = sqlite3_column_int(stmt, 2);
		out->changed_at = sqlite3_column_int64(stmt, 3);
		out->rows = sqlite3_column_int64(stmt, 4);
		out->bytes = sqlite3_column_int64(stmt, 5);
		out->oldest = sqlite3_column_int64(stmt, 6);
	} else {
		rc = step == SQLITE_DONE ? HERR_SCHEMA : sq_fail(__func__, s, "bridge_state");
	}
	done(s, stmt);
	return rc;
}

static enum herr sq_bridge_set_until(void *impl, int64_t until)
{
	return run(impl, NULL, "UPDATE bridge_state SET until = ? WHERE id = 1", "i", until);
}

static enum herr sq_bridge_set_connected(void *impl, int connected, int64_t at)
{
	return run(impl, NULL, "UPDATE bridge_state SET connected = ?, changed_at = ? WHERE id = 1", "ii",
		   (int64_t)connected, at);
}

static enum herr sq_bridge_outbox_add(void *impl, const struct store_bridge_record *r)
{
	enum herr rc;

	/* The sequence comes from bridge_state, so a number is never used twice, even once the
	 * outbox ran empty. */
	rc = run(impl, NULL, "INSERT INTO bridge_outbox (seq, device_id, topic, payload, retain, bytes,"
		 " created_at, expires_at) SELECT next_seq, ?, ?, ?, ?, ?, ?, ? FROM bridge_state WHERE id = 1",
		 "sssiiii", r->device_id, r->topic, r->payload, (int64_t)(r->retain != 0), (int64_t)r->len,
		 r->created_at, r->expires_at);
	if (rc != HERR_OK)
		return rc;
	return run(impl, NULL, "UPDATE bridge_state SET next_seq = next_seq + 1 WHERE id = 1", "");
}

/* The single integer a prepared one-row statement yields. */
static enum herr one_int(struct sq *s, sqlite3_stmt *stmt, int64_t *out, const char *what)
{
	enum herr rc = HERR_OK;
	int step = sqlite3_step(stmt);

	if (step == SQLITE_ROW)
		*out = sqlite3_column_int64(stmt, 0);
	else
		rc = sq_fail(__func__, s, what);
	done(s, stmt);
	return rc;
}

/* The newest row that has to go, oldest first, so that at most max_bytes are left: reads only the
 * rows that go (0: none has to). */
static enum herr outbox_cut(struct sq *s, int64_t excess, int64_t *cut)
{
	sqlite3_stmt *stmt;
	int64_t freed = 0;
	enum herr rc;
	int step = SQLITE_DONE;

	*cut = 0;
	if (excess <= 0)
		return HERR_OK;
	rc = prepare(s, &stmt, "SELECT seq, bytes FROM bridge_outbox ORDER BY seq", "");
	if (rc != HERR_OK)
		return rc;
	while (freed < excess && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
		*cut = sqlite3_column_int64(stmt, 0);
		freed += sqlite3_column_int64(stmt, 1);
	}
	if (freed < excess && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "bridge_outbox");
	done(s, stmt);
	return rc;
}

static enum herr sq_bridge_outbox_trim(void *impl, int64_t max_bytes, int64_t min_created, int64_t now,
				       int64_t *rows)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	int64_t bytes = 0, cut = 0;
	int aged = 0, over = 0;
	enum herr rc;

	if (rows)
		*rows = 0;
	rc = run(s, &aged, "DELETE FROM bridge_outbox WHERE created_at < ? OR expires_at <= ?", "ii",
		 min_created, now);
	/* The byte total is kept by triggers (migration 0013). */
	if (rc == HERR_OK)
		rc = prepare(s, &stmt, "SELECT outbox_bytes FROM bridge_state WHERE id = 1", "");
	if (rc == HERR_OK)
		rc = one_int(s, stmt, &bytes, "bridge_state");
	if (rc == HERR_OK)
		rc = outbox_cut(s, bytes - max_bytes, &cut);
	if (rc == HERR_OK && cut > 0)
		rc = run(s, &over, "DELETE FROM bridge_outbox WHERE seq <= ?", "i", cut);
	if (rc == HERR_OK && aged + over > 0)
		rc = run(s, NULL, "UPDATE bridge_state SET dropped = dropped + ? WHERE id = 1", "i",
			 (int64_t)aged + over);
	if (rc == HERR_OK && rows)
		*rows = (int64_t)aged + over;
	return rc;
}

static enum herr sq_bridge_outbox_list(void *impl, int64_t after, size_t limit, store_bridge_row_fn fn,
				       void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT seq, topic, payload, retain FROM bridge_outbox WHERE seq > ?"
		     " ORDER BY seq LIMIT ?", "ii", after, page_limit(limit));
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_bridge_row r = {
			.seq = sqlite3_column_int64(stmt, 0),
			.topic = (const char *)sqlite3_column_text(stmt, 1),
			.payload = (const char *)sqlite3_column_text(stmt, 2),
			.len = (size_t)sqlite3_column_bytes(stmt, 2),
			.retain = sqlite3_column_int(stmt, 3),
		};

		if (!r.topic || !r.payload)
			continue;
		if (fn(ctx, &r) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "bridge_outbox");
	done(s, stmt);
	return rc;
}

static enum herr sq_bridge_outbox_delete(void *impl, int64_t seq)
{
	return run(impl, NULL, "DELETE FROM bridge_outbox WHERE seq = ?", "i", seq);
}

static enum herr sq_bridge_topic_add(void *impl, const char *topic, const char *device_id, const char *kind)
{
	return run(impl, NULL, "INSERT INTO bridge_topics (topic, device_id, kind) VALUES (?, ?, ?)"
		   " ON CONFLICT (topic) DO UPDATE SET device_id = excluded.device_id, kind = excluded.kind",
		   "sss", topic, device_id, kind);
}

static enum herr sq_bridge_topic_delete(void *impl, const char *topic)
{
	return run(impl, NULL, "DELETE FROM bridge_topics WHERE topic = ?", "s", topic);
}

static enum herr sq_bridge_topics(void *impl, const char *device_id, store_bridge_topic_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT topic, kind FROM bridge_topics WHERE device_id = ? ORDER BY topic",
		     "s", device_id);
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (fn(ctx, (const char *)sqlite3_column_text(stmt, 0),
		       (const char *)sqlite3_column_text(stmt, 1)) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "bridge_topics");
	done(s, stmt);
	return rc;
}

static enum herr sq_dropped_list(void *impl, store_dropped_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT model, field, sensitive, count FROM dropped_fields"
		     " ORDER BY model, count DESC, field", "");
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (fn(ctx, (const char *)sqlite3_column_text(stmt, 0), (const char *)sqlite3_column_text(stmt, 1),
		       sqlite3_column_int(stmt, 2), sqlite3_column_int64(stmt, 3)) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "dropped_fields");
	done(s, stmt);
	return rc;
}

static enum herr sq_telemetry_expire(void *impl, int64_t now, int64_t limit, int64_t *deleted)
{
	int changes = 0;
	/* The condition exactly as the telemetry_expiry index has it (migration 0010). */
	enum herr rc = run(impl, &changes, "DELETE FROM telemetry WHERE rowid IN (SELECT rowid FROM telemetry"
			   " WHERE bucket_start + bucket_s + retention_days * 86400 <= ? LIMIT ?)", "ii", now, limit);

	if (deleted)
		*deleted = changes;
	return rc;
}

static void sq_release_memory(void *impl)
{
	struct sq *s = impl;

	(void)sqlite3_db_release_memory(s->db);
}

static enum herr sq_checkpoint(void *impl)
{
	struct sq *s = impl;
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

	/* Busy (a reader in another process) is not a failure: the next one will do. */
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return sq_fail(__func__, s, "checkpoint");
	return HERR_OK;
}

/* --- manifests ---------------------------------------------------------------------------------- */

static enum herr sq_manifest_next_version(void *impl, const char *type, int64_t *version)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	rc = prepare(s, &stmt, "SELECT COALESCE(MAX(version), 0) + 1 FROM manifests WHERE type = ?", "s", type);
	return rc == HERR_OK ? one_int(s, stmt, version, "manifests") : rc;
}

static enum herr sq_manifest_insert(void *impl, struct store_manifest *m)
{
	struct sq *s = impl;
	enum herr rc = run(s, NULL, "INSERT INTO manifests (target, type, version, issued_at, expires_at, envelope)"
			   " VALUES (?, ?, ?, ?, ?, ?)", "ssiiis", m->target, m->type, m->version, m->issued_at,
			   m->expires_at, m->envelope);

	if (rc == HERR_OK)
		m->seq = (int64_t)sqlite3_last_insert_rowid(s->db);
	return rc;
}

static enum herr emit_manifests(struct sq *s, sqlite3_stmt *stmt, store_manifest_fn fn, void *ctx, int *any)
{
	enum herr rc = HERR_OK;
	int step;

	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_manifest m = {
			.seq = sqlite3_column_int64(stmt, 0),
			.target = (const char *)sqlite3_column_text(stmt, 1),
			.type = (const char *)sqlite3_column_text(stmt, 2),
			.version = sqlite3_column_int64(stmt, 3),
			.issued_at = sqlite3_column_int64(stmt, 4),
			.expires_at = sqlite3_column_int64(stmt, 5),
			.envelope = (const char *)sqlite3_column_text(stmt, 6),
		};

		if (any)
			*any = 1;
		if (fn(ctx, &m) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "manifests");
	done(s, stmt);
	return rc;
}

#define MANIFEST_COLUMNS "seq, target, type, version, issued_at, expires_at, envelope"

static enum herr sq_manifest_list_since(void *impl, int64_t after, size_t limit, store_manifest_fn fn,
					void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	rc = prepare(s, &stmt, "SELECT " MANIFEST_COLUMNS " FROM manifests WHERE seq > ? ORDER BY seq LIMIT ?",
		     "ii", after, (int64_t)limit);
	return rc == HERR_OK ? emit_manifests(s, stmt, fn, ctx, NULL) : rc;
}

static enum herr sq_manifest_delivered(void *impl, int64_t *seq)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	rc = prepare(s, &stmt, "SELECT seq FROM manifest_delivery WHERE id = 1", "");
	return rc == HERR_OK ? one_int(s, stmt, seq, "manifest_delivery") : rc;
}

static enum herr sq_manifest_set_delivered(void *impl, int64_t seq)
{
	return run(impl, NULL, "UPDATE manifest_delivery SET seq = ? WHERE id = 1", "i", seq);
}

static enum herr sq_manifest_for_device(void *impl, const char *id, const char *type, int64_t version,
					store_manifest_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int any = 0;

	rc = prepare(s, &stmt, "SELECT " MANIFEST_COLUMNS " FROM manifests WHERE type = ?2 AND"
		     " (target = 'all' OR target = 'device:' || ?1"
		     "  OR target = 'model:' || (SELECT model FROM devices WHERE id = ?1))"
		     " AND (?3 = 0 OR version = ?3) ORDER BY version DESC LIMIT 1", "ssi", id, type, version);
	if (rc == HERR_OK)
		rc = emit_manifests(s, stmt, fn, ctx, &any);
	return rc == HERR_OK && !any ? HERR_NOTFOUND : rc;
}

static enum herr sq_manifest_latest_target(void *impl, const char *target, const char *type,
					   store_manifest_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int any = 0;

	rc = prepare(s, &stmt, "SELECT " MANIFEST_COLUMNS " FROM manifests WHERE target = ? AND type = ?"
		     " ORDER BY version DESC LIMIT 1", "ss", target, type);
	if (rc == HERR_OK)
		rc = emit_manifests(s, stmt, fn, ctx, &any);
	return rc == HERR_OK && !any ? HERR_NOTFOUND : rc;
}

static enum herr sq_manifest_readiness(void *impl, const char *type, int64_t version, int64_t seen_since,
				       store_ready_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT d.id, EXISTS (SELECT 1 FROM manifest_acks a WHERE a.device_id = d.id"
		     "  AND a.type = ?1 AND a.version >= ?2 AND a.status = 'applied')"
		     " FROM devices d JOIN last_seen l ON l.device_id = d.id"
		     " WHERE d.status = 'active' AND l.bucket_start >= ?3 ORDER BY d.id", "sii", type, version,
		     seen_since);
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (fn(ctx, (const char *)sqlite3_column_text(stmt, 0), sqlite3_column_int(stmt, 1)) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "devices");
	done(s, stmt);
	return rc;
}

static enum herr sq_manifest_ack(void *impl, const char *id, const char *type, int64_t version,
				 const char *status, int64_t at)
{
	return run(impl, NULL, "INSERT INTO manifest_acks (device_id, type, version, status, at)"
		   " VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id, type, version)"
		   " DO UPDATE SET status = excluded.status, at = excluded.at", "ssisi", id, type, version, status, at);
}

static enum herr sq_manifest_devices(void *impl, const char *target, store_id_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	/* One statement per kind of target, each answered by an index: the endpoint runs this on its
	 * event loop for every manifest, and a rollout issues device manifests by the dozen each
	 * second. (One statement for all three read the whole table each time.) */
	if (strncmp(target, "device:", 7) == 0)
		rc = prepare(s, &stmt, "SELECT id FROM devices WHERE id = ? AND status = 'active'", "s", target + 7);
	else if (strncmp(target, "model:", 6) == 0)
		rc = prepare(s, &stmt, "SELECT id FROM devices WHERE model = ? AND status = 'active' ORDER BY id", "s",
			     target + 6);
	else if (strcmp(target, "all") == 0)
		rc = prepare(s, &stmt, "SELECT id FROM devices WHERE status = 'active' ORDER BY id", "");
	else
		return HERR_OK; /* no such target: nobody */
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (fn(ctx, (const char *)sqlite3_column_text(stmt, 0)) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "devices");
	done(s, stmt);
	return rc;
}

/* --- firmware releases and rollouts ------------------------------------------------------------- */

static enum herr sq_device_report(void *impl, const char *id, const char *firmware_version,
				  int64_t security_version, int64_t now)
{
	int changed = 0;
	enum herr rc = run(impl, &changed, "UPDATE devices SET firmware_version = COALESCE(?1, firmware_version),"
			   " security_version = MAX(security_version, ?2), reported_at = ?3 WHERE id = ?4",
			   "siis", firmware_version, security_version, now, id);

	return rc == HERR_OK && changed == 0 ? HERR_NOTFOUND : rc;
}

static enum herr sq_device_firmware(void *impl, const char *id, struct store_device_firmware *out)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	memset(out, 0, sizeof(*out));
	rc = prepare(s, &stmt, "SELECT firmware_version, security_version, COALESCE(reported_at, 0)"
		     " FROM devices WHERE id = ?", "s", id);
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW) {
		copy_text(out->firmware_version, sizeof(out->firmware_version), stmt, 0);
		out->security_version = sqlite3_column_int64(stmt, 1);
		out->reported_at = sqlite3_column_int64(stmt, 2);
	} else {
		rc = step == SQLITE_DONE ? HERR_NOTFOUND : sq_fail(__func__, s, "devices");
	}
	done(s, stmt);
	return rc;
}

#define RELEASE_COLUMNS "id, model, version, sha256, security_version, size, created_at"

static void read_release(sqlite3_stmt *stmt, struct store_release *r)
{
	memset(r, 0, sizeof(*r));
	copy_text(r->id, sizeof(r->id), stmt, 0);
	copy_text(r->model, sizeof(r->model), stmt, 1);
	copy_text(r->version, sizeof(r->version), stmt, 2);
	copy_text(r->sha256, sizeof(r->sha256), stmt, 3);
	r->security_version = sqlite3_column_int64(stmt, 4);
	r->size = sqlite3_column_int64(stmt, 5);
	r->created_at = sqlite3_column_int64(stmt, 6);
}

static enum herr sq_release_insert(void *impl, const struct store_release *r)
{
	enum herr rc = row_exists(impl, "SELECT 1 FROM models WHERE name = ?", r->model);

	if (rc != HERR_OK)
		return rc;
	return run(impl, NULL, "INSERT INTO firmware_releases (id, model, version, security_version, sha256,"
		   " size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", "sssisii", r->id, r->model, r->version,
		   r->security_version, r->sha256, r->size, r->created_at);
}

static enum herr sq_release_get(void *impl, const char *id, struct store_release *out)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT " RELEASE_COLUMNS " FROM firmware_releases WHERE id = ?", "s", id);
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		read_release(stmt, out);
	else
		rc = step == SQLITE_DONE ? HERR_NOTFOUND : sq_fail(__func__, s, "firmware_releases");
	done(s, stmt);
	return rc;
}

static enum herr sq_release_list(void *impl, const char *model, store_release_fn fn, void *ctx)
{
	struct sq *s = impl;
	struct store_release r;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT " RELEASE_COLUMNS " FROM firmware_releases WHERE (?1 IS NULL OR model = ?1)"
		     " ORDER BY created_at DESC, rowid DESC", "s", model);
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		read_release(stmt, &r);
		if (fn(ctx, &r) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "firmware_releases");
	done(s, stmt);
	return rc;
}

static enum herr sq_release_offered(void *impl, const char *device, const char *release, int *offered)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	int64_t v = 0;
	enum herr rc;

	*offered = 0;
	rc = prepare(s, &stmt, "SELECT EXISTS (SELECT 1 FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id"
		     " WHERE rd.device_id = ? AND r.release_id = ? AND r.state <> 'aborted')", "ss", device, release);
	if (rc == HERR_OK && (rc = one_int(s, stmt, &v, "rollout_devices")) == HERR_OK)
		*offered = v != 0;
	return rc;
}

/* A rollout device's status: its ack of the offered version when that is one of these, else
 * "offered". The same rule in SQL (for the counts) and in C (for the listing). */
#define ACK_FINAL_STATUSES "('downloading', 'installed', 'failed', 'rolled_back')"
#define RD_STATUS \
	"COALESCE((SELECT a.status FROM manifest_acks a WHERE a.device_id = rd.device_id" \
	" AND a.type = 'firmware' AND a.version = rd.manifest_version" \
	" AND a.status IN " ACK_FINAL_STATUSES "), 'offered')"
#define RD_COUNT(status) \
	" (SELECT COUNT(*) FROM rollout_devices rd WHERE rd.rollout_id = r.id AND " RD_STATUS " = '" status "')"

static const char *rollout_status(const unsigned char *ack)
{
	static const char *const known[] = { "downloading", "installed", "failed", "rolled_back" };
	size_t i;

	for (i = 0; ack && i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp((const char *)ack, known[i]) == 0)
			return known[i];
	}
	return "offered";
}

#define ROLLOUT_COLUMNS \
	"r.id, r.release_id, r.model, r.state, r.cohort, COALESCE(r.tag, ''), COALESCE(r.abort_reason, '')," \
	" COALESCE(r.percent, 0), r.failure_threshold, r.created_at, r.updated_at," \
	RD_COUNT("offered") "," RD_COUNT("downloading") "," RD_COUNT("installed") "," RD_COUNT("failed") "," \
	RD_COUNT("rolled_back")

static void read_rollout(sqlite3_stmt *stmt, struct store_rollout *r)
{
	memset(r, 0, sizeof(*r));
	copy_text(r->id, sizeof(r->id), stmt, 0);
	copy_text(r->release, sizeof(r->release), stmt, 1);
	copy_text(r->model, sizeof(r->model), stmt, 2);
	copy_text(r->state, sizeof(r->state), stmt, 3);
	copy_text(r->cohort, sizeof(r->cohort), stmt, 4);
	copy_text(r->tag, sizeof(r->tag), stmt, 5);
	copy_text(r->abort_reason, sizeof(r->abort_reason), stmt, 6);
	r->percent = sqlite3_column_int64(stmt, 7);
	r->failure_threshold = sqlite3_column_int64(stmt, 8);
	r->created_at = sqlite3_column_int64(stmt, 9);
	r->updated_at = sqlite3_column_int64(stmt, 10);
	r->offered = sqlite3_column_int64(stmt, 11);
	r->downloading = sqlite3_column_int64(stmt, 12);
	r->installed = sqlite3_column_int64(stmt, 13);
	r->failed = sqlite3_column_int64(stmt, 14);
	r->rolled_back = sqlite3_column_int64(stmt, 15);
}

/* The model is the release's, taken in the statement; the unique index on live rollouts per model
 * turns a second one into a uniqueness violation. */
static enum herr sq_rollout_insert(void *impl, const struct store_rollout *r)
{
	int changed = 0;
	enum herr rc = run(impl, &changed, "INSERT INTO rollouts (id, release_id, model, state, cohort, percent, tag,"
			   " failure_threshold, created_at, updated_at)"
			   " SELECT ?1, f.id, f.model, ?3, ?4, NULLIF(?5, 0), NULLIF(?6, ''), ?7, ?8, ?8"
			   " FROM firmware_releases f WHERE f.id = ?2",
			   "ssssisii", r->id, r->release, r->state, r->cohort, r->percent, r->tag,
			   r->failure_threshold, r->created_at);

	if (rc == HERR_EXISTS)
		return HERR_STATE;
	return rc == HERR_OK && changed == 0 ? HERR_NOTFOUND : rc;
}

static enum herr sq_rollout_member_add(void *impl, const char *rollout, const char *device)
{
	return run(impl, NULL, "INSERT INTO rollout_members (rollout_id, device_id) VALUES (?, ?)"
		   " ON CONFLICT (rollout_id, device_id) DO NOTHING", "ss", rollout, device);
}

static enum herr sq_rollout_get(void *impl, const char *id, struct store_rollout *out)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT " ROLLOUT_COLUMNS " FROM rollouts r WHERE r.id = ?", "s", id);
	if (rc != HERR_OK)
		return rc;
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW)
		read_rollout(stmt, out);
	else
		rc = step == SQLITE_DONE ? HERR_NOTFOUND : sq_fail(__func__, s, "rollouts");
	done(s, stmt);
	return rc;
}

static enum herr sq_rollout_list(void *impl, const char *state, store_rollout_fn fn, void *ctx)
{
	struct sq *s = impl;
	struct store_rollout r;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT " ROLLOUT_COLUMNS " FROM rollouts r WHERE (?1 IS NULL OR r.state = ?1)"
		     " ORDER BY r.created_at DESC, r.rowid DESC", "s", state);
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		read_rollout(stmt, &r);
		if (fn(ctx, &r) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "rollouts");
	done(s, stmt);
	return rc;
}

static enum herr sq_rollout_set_state(void *impl, const char *id, const char *from, const char *to,
				      const char *reason, int64_t now)
{
	int changed = 0;
	enum herr rc = run(impl, &changed, "UPDATE rollouts SET state = ?3, abort_reason = ?4, updated_at = ?5"
			   " WHERE id = ?1 AND instr('|' || ?2 || '|', '|' || state || '|') > 0",
			   "ssssi", id, from, to, reason, now);

	if (rc == HERR_OK && changed == 0)
		rc = state_or_notfound(impl, "SELECT 1 FROM rollouts WHERE id = ?", id);
	return rc;
}

static enum herr sq_rollout_widen(void *impl, const char *id, int64_t percent, int64_t now)
{
	struct store_rollout r;
	int changed = 0;
	enum herr rc = run(impl, &changed, "UPDATE rollouts SET percent = ?2, updated_at = ?3"
			   " WHERE id = ?1 AND cohort = 'percent' AND state <> 'aborted' AND percent < ?2 AND ?2 <= 100",
			   "sii", id, percent, now);

	if (rc != HERR_OK || changed != 0)
		return rc;
	rc = sq_rollout_get(impl, id, &r);
	if (rc != HERR_OK)
		return rc;
	return strcmp(r.state, "aborted") == 0 ? HERR_STATE : HERR_INVALID;
}

static enum herr sq_rollout_devices(void *impl, const char *id, const char *after, size_t limit,
				    store_rollout_device_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT rd.device_id, rd.manifest_version, rd.offered_at, a.status, a.at"
		     " FROM rollout_devices rd LEFT JOIN manifest_acks a ON a.device_id = rd.device_id"
		     "  AND a.type = 'firmware' AND a.version = rd.manifest_version"
		     " WHERE rd.rollout_id = ? AND rd.device_id > ? ORDER BY rd.device_id LIMIT ?", "ssi", id,
		     after ? after : "", page_limit(limit));
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_rollout_device d = {
			.device = (const char *)sqlite3_column_text(stmt, 0),
			.manifest_version = sqlite3_column_int64(stmt, 1),
			.offered_at = sqlite3_column_int64(stmt, 2),
			.status = rollout_status(sqlite3_column_text(stmt, 3)),
		};

		d.at = sqlite3_column_type(stmt, 4) == SQLITE_NULL ? d.offered_at : sqlite3_column_int64(stmt, 4);
		if (fn(ctx, &d) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "rollout_devices");
	done(s, stmt);
	return rc;
}

static enum herr emit_ids(struct sq *s, sqlite3_stmt *stmt, store_id_fn fn, void *ctx, const char *what)
{
	enum herr rc = HERR_OK;
	int step;

	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (fn(ctx, (const char *)sqlite3_column_text(stmt, 0)) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, what);
	done(s, stmt);
	return rc;
}

static enum herr sq_rollout_candidates(void *impl, const char *id, const char *after, size_t limit,
				       store_id_fn fn, void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;

	rc = prepare(s, &stmt, "SELECT d.id FROM rollouts r JOIN firmware_releases f ON f.id = r.release_id"
		     " JOIN devices d ON d.model = r.model"
		     " WHERE r.id = ?1 AND d.status = 'active' AND d.id > ?2"
		     " AND d.security_version <= f.security_version"
		     " AND (d.firmware_version IS NULL OR d.firmware_version <> f.version)"
		     " AND NOT EXISTS (SELECT 1 FROM rollout_devices rd WHERE rd.rollout_id = r.id AND rd.device_id = d.id)"
		     " AND (r.cohort = 'percent'"
		     "  OR (r.cohort = 'tag' AND EXISTS (SELECT 1 FROM device_tags t WHERE t.device_id = d.id AND t.tag = r.tag))"
		     "  OR (r.cohort = 'list' AND EXISTS (SELECT 1 FROM rollout_members m"
		     "   WHERE m.rollout_id = r.id AND m.device_id = d.id)))"
		     " ORDER BY d.id LIMIT ?3", "ssi", id, after ? after : "", page_limit(limit));
	return rc == HERR_OK ? emit_ids(s, stmt, fn, ctx, "devices") : rc;
}

static enum herr sq_rollout_offer(void *impl, const char *rollout, const char *device,
				  int64_t manifest_version, int64_t now)
{
	return run(impl, NULL, "INSERT INTO rollout_devices (rollout_id, device_id, manifest_version, offered_at)"
		   " VALUES (?, ?, ?, ?)", "ssii", rollout, device, manifest_version, now);
}

/* Only live rollouts are looked at: a device of an aborted one that installed anyway says so on its
 * status topic. */
static enum herr sq_rollout_installs_pending(void *impl, size_t limit, store_rollout_install_fn fn,
					     void *ctx)
{
	struct sq *s = impl;
	sqlite3_stmt *stmt;
	enum herr rc;
	int step;

	rc = prepare(s, &stmt, "SELECT rd.rollout_id, rd.device_id, f.version, f.security_version"
		     " FROM rollouts r JOIN firmware_releases f ON f.id = r.release_id"
		     " JOIN rollout_devices rd ON rd.rollout_id = r.id"
		     " JOIN manifest_acks a ON a.device_id = rd.device_id AND a.type = 'firmware'"
		     "  AND a.version = rd.manifest_version"
		     " WHERE r.state <> 'aborted' AND rd.installed_at IS NULL AND a.status = 'installed'"
		     " ORDER BY a.at, rd.device_id LIMIT ?", "i", page_limit(limit));
	if (rc != HERR_OK)
		return rc;
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_rollout_install i = {
			.rollout = (const char *)sqlite3_column_text(stmt, 0),
			.device = (const char *)sqlite3_column_text(stmt, 1),
			.version = (const char *)sqlite3_column_text(stmt, 2),
			.security_version = sqlite3_column_int64(stmt, 3),
		};

		if (fn(ctx, &i) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = sq_fail(__func__, s, "rollout_devices");
	done(s, stmt);
	return rc;
}

static enum herr sq_rollout_install_recorded(void *impl, const char *rollout, const char *device,
					     int64_t now)
{
	int changed = 0;
	enum herr rc = run(impl, &changed, "UPDATE rollout_devices SET installed_at = ?3"
			   " WHERE rollout_id = ?1 AND device_id = ?2 AND installed_at IS NULL",
			   "ssi", rollout, device, now);

	if (rc == HERR_OK && changed == 0)
		rc = HERR_NOTFOUND;
	return rc;
}

static const struct store_backend sqlite_backend = {
	.name = "sqlite",
	.close = sq_close,
	.schema_version = sq_schema_version,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.model_ensure = sq_model_ensure,
	.model_set_policy = sq_model_set_policy,
	.model_get_policy = sq_model_get_policy,
	.model_list = sq_model_list,
	.device_insert = sq_device_insert,
	.device_get = sq_device_get,
	.device_revoke = sq_device_revoke,
	.device_list = sq_device_list,
	.device_query = sq_device_query,
	.device_tags = sq_device_tags,
	.device_set_tags = sq_device_set_tags,
	.device_set_model = sq_device_set_model,
	.device_certs = sq_device_certs,
	.device_decommission = sq_device_decommission,
	.client_insert = sq_client_insert,
	.client_revoke = sq_client_revoke,
	.client_list = sq_client_list,
	.identity_ok = sq_identity_ok,
	.list_inactive_since = sq_list_inactive_since,
	.cert_insert = sq_cert_insert,
	.cert_list_revoked = sq_cert_list_revoked,
	.crl_next_number = sq_crl_next_number,
	.retained_set = sq_retained_set,
	.retained_list = sq_retained_list,
	.telemetry_fold = sq_telemetry_fold,
	.last_seen = sq_last_seen,
	.dropped_add = sq_dropped_add,
	.telemetry_query = sq_telemetry_query,
	.dropped_list = sq_dropped_list,
	.telemetry_closed = sq_telemetry_closed,
	.feed_get = sq_feed_get,
	.feed_set = sq_feed_set,
	.bridge_state = sq_bridge_state,
	.bridge_set_until = sq_bridge_set_until,
	.bridge_set_connected = sq_bridge_set_connected,
	.bridge_outbox_add = sq_bridge_outbox_add,
	.bridge_outbox_trim = sq_bridge_outbox_trim,
	.bridge_outbox_list = sq_bridge_outbox_list,
	.bridge_outbox_delete = sq_bridge_outbox_delete,
	.bridge_topic_add = sq_bridge_topic_add,
	.bridge_topic_delete = sq_bridge_topic_delete,
	.bridge_topics = sq_bridge_topics,
	.manifest_next_version = sq_manifest_next_version,
	.manifest_insert = sq_manifest_insert,
	.manifest_list_since = sq_manifest_list_since,
	.manifest_delivered = sq_manifest_delivered,
	.manifest_set_delivered = sq_manifest_set_delivered,
	.manifest_for_device = sq_manifest_for_device,
	.manifest_latest_target = sq_manifest_latest_target,
	.manifest_readiness = sq_manifest_readiness,
	.manifest_ack = sq_manifest_ack,
	.manifest_devices = sq_manifest_devices,
	.telemetry_expire = sq_telemetry_expire,
	.checkpoint = sq_checkpoint,
	.release_memory = sq_release_memory,
	.writers_waiting = sq_writers_waiting,
	.audit_from = sq_audit_from,
	.audit_list = sq_audit_list,
	.api_token_insert = sq_api_token_insert,
	.api_token_get = sq_api_token_get,
	.api_token_touch = sq_api_token_touch,
	.api_token_list = sq_api_token_list,
	.api_token_revoke = sq_api_token_revoke,
	.enroll_token_insert = sq_enroll_token_insert,
	.enroll_token_get = sq_enroll_token_get,
	.enroll_token_use = sq_enroll_token_use,
	.enroll_token_list = sq_enroll_token_list,
	.enroll_token_revoke = sq_enroll_token_revoke,
	.device_report = sq_device_report,
	.device_firmware = sq_device_firmware,
	.release_insert = sq_release_insert,
	.release_get = sq_release_get,
	.release_list = sq_release_list,
	.release_offered = sq_release_offered,
	.rollout_insert = sq_rollout_insert,
	.rollout_member_add = sq_rollout_member_add,
	.rollout_get = sq_rollout_get,
	.rollout_list = sq_rollout_list,
	.rollout_set_state = sq_rollout_set_state,
	.rollout_widen = sq_rollout_widen,
	.rollout_devices = sq_rollout_devices,
	.rollout_candidates = sq_rollout_candidates,
	.rollout_offer = sq_rollout_offer,
	.rollout_installs_pending = sq_rollout_installs_pending,
	.rollout_install_recorded = sq_rollout_install_recorded,
};

enum herr store_open_sqlite(const char *path, struct store **out)
{
	struct sq *s;
	enum herr rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return HERR_NOMEM;
	s->intent_fd = -1;
	if ((size_t)snprintf(s->intent_path, sizeof(s->intent_path), "%s-writers", path) >= sizeof(s->intent_path))
		s->intent_fd = -2;
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		rc = sq_fail(__func__, s, path);
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_handler(s->db, busy_wait, NULL);
	rc = exec_script(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			 " PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF;");
	if (rc != HERR_OK)
		goto fail;
	rc = migrate(s, path);
	if (rc != HERR_OK)
		goto fail;
	return store_wrap(&sqlite_backend, s, out);
fail:
	sq_close(s);
	return rc;
}
