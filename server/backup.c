#include "server/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "server/datadir.h"
#include "server/store.h"

#define CHUNK     (64 * 1024)   /* bytes copied at a time between a file and a blob */
#define DEPTH_MAX 8             /* directory levels below keys/, certs/, firmware/ */
#define BUSY_MS   5000
#define BUSY_TRIES 50           /* of 100 ms each, after the busy timeout, to start the copy */

static const char *const top_dirs[] = { "keys", "certs", "firmware" };

/* --- SQLite helpers ------------------------------------------------------------------------------ */

static enum herr sq_fail(const char *func, sqlite3 *db, const char *what)
{
	log_msg(LOG_LEVEL_ERR, func, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
	return HERR_STORE;
}

/* A connection with the settings every use here wants: extended codes, a busy timeout, and no
 * trust in what the schema says (a backup to restore is input). */
static enum herr open_db(const char *path, int flags, sqlite3 **out)
{
	sqlite3 *db = NULL;

	*out = NULL;
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		sq_fail(__func__, db, path);
		sqlite3_close(db);
		return HERR_STORE;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, BUSY_MS);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
	*out = db;
	return HERR_OK;
}

static enum herr exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_err("%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return HERR_STORE;
	}
	return HERR_OK;
}

/* The first column of the first row of sql (with key bound to ?1 if not NULL) as text into out.
 * HERR_NOTFOUND if there is no row; a failure says why into why. */
static enum herr query_text(sqlite3 *db, const char *sql, const char *key, char *out, size_t size,
			    char *why, size_t why_size)
{
	sqlite3_stmt *stmt = NULL;
	enum herr rc = HERR_STORE;
	int step;

	out[0] = '\0';
	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK ||
	    (key && sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC) != SQLITE_OK)) {
		snprintf(why, why_size, "%s", sqlite3_errmsg(db));
		goto out;
	}
	step = sqlite3_step(stmt);
	if (step == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(stmt, 0);

		snprintf(out, size, "%s", v ? (const char *)v : "");
		rc = HERR_OK;
	} else if (step == SQLITE_DONE) {
		rc = HERR_NOTFOUND;
	} else {
		snprintf(why, why_size, "%s", sqlite3_errmsg(db));
	}
out:
	sqlite3_finalize(stmt);
	return rc;
}

static enum herr query_int(sqlite3 *db, const char *sql, int64_t *v, char *why, size_t why_size)
{
	char text[32], *end;

	if (query_text(db, sql, NULL, text, sizeof(text), why, why_size) != HERR_OK)
		return HERR_STORE;
	errno = 0;
	*v = strtoll(text, &end, 10);
	if (errno || end == text || *end) {
		snprintf(why, why_size, "'%s' is not a number", text);
		return HERR_INVALID;
	}
	return HERR_OK;
}

/* The store's tables (not SQLite's, not the backup's own) and their rows. */
static enum herr count_rows(sqlite3 *db, struct backup_summary *sum)
{
	static const char sql[] = "SELECT name FROM sqlite_schema WHERE type = 'table'"
		" AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'hearth\\_backup\\_%' ESCAPE '\\'";
	sqlite3_stmt *stmt = NULL, *count = NULL;
	enum herr rc = HERR_OK;
	int step;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return sq_fail(__func__, db, "listing tables");
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		char *q = sqlite3_mprintf("SELECT COUNT(*) FROM \"%w\"", (const char *)sqlite3_column_text(stmt, 0));

		if (!q) {
			rc = HERR_NOMEM;
			break;
		}
		if (sqlite3_prepare_v2(db, q, -1, &count, NULL) != SQLITE_OK || sqlite3_step(count) != SQLITE_ROW) {
			rc = sq_fail(__func__, db, q);
			sqlite3_free(q);
			break;
		}
		sum->tables++;
		sum->rows += (uint64_t)sqlite3_column_int64(count, 0);
		sqlite3_finalize(count);
		count = NULL;
		sqlite3_free(q);
	}
	if (rc == HERR_OK && step != SQLITE_DONE)
		rc = sq_fail(__func__, db, "listing tables");
	sqlite3_finalize(count);
	sqlite3_finalize(stmt);
	return rc;
}

/* The whole of src's main database into dst's, in one step: one read transaction on src, so the
 * copy is a snapshot (a copy in several steps restarts whenever another process writes). */
static enum herr copy_db(sqlite3 *src, sqlite3 *dst, const char *what)
{
	sqlite3_backup *b;
	int rc, tries;

	b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b)
		return sq_fail(__func__, dst, what);
	for (tries = 0;; tries++) {
		rc = sqlite3_backup_step(b, -1);
		if (((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) && tries < BUSY_TRIES) {
			sqlite3_sleep(100);
			continue;
		}
		break;
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		log_err("%s: copying the database: %s (%s)", what, sqlite3_errstr(rc), sqlite3_errmsg(src));
		return HERR_STORE;
	}
	return HERR_OK;
}

/* --- files --------------------------------------------------------------------------------------- */

/* A new empty file only we can read; never one that was there (nor a symlink planted there). */
static enum herr create_private_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0) {
		if (errno == EEXIST) {
			log_err("%s already exists (left by an interrupted run? nothing uses it: remove it)", path);
			return HERR_EXISTS;
		}
		log_err("%s: %s", path, strerror(errno));
		return HERR_IO;
	}
	if (fchmod(fd, 0600) != 0) {
		log_err("%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return HERR_IO;
	}
	close(fd);
	return HERR_OK;
}

static enum herr fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (fs_path(dir, sizeof(dir), "%s", path) != HERR_OK)
		return HERR_TOOBIG;
	slash = strrchr(dir, '/');
	if (!slash)
		return fs_sync(".", 1);
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return fs_sync(dir, 1);
}

/* Move tmp to path, which must not exist: link() fails if it does, where rename() would replace it. */
static enum herr place(const char *tmp, const char *path)
{
	if (link(tmp, path) != 0) {
		int e = errno;

		log_err("%s: %s", path, e == EEXIST ? "appeared meanwhile; it is not replaced" : strerror(e));
		return e == EEXIST ? HERR_EXISTS : HERR_IO;
	}
	unlink(tmp);
	return fsync_parent(path);
}

static enum herr write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return HERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return HERR_OK;
}

int backup_path_ok(const char *path, size_t len)
{
	const char *p, *end = path + len;
	size_t i;

	if (len == 0 || len > BACKUP_PATH_MAX || strnlen(path, len + 1) != len)
		return 0;
	for (i = 0; i < len; i++) {
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
			return 0;
	}
	if (strcmp(path, DATADIR_CONFIG) == 0)
		return 1;
	for (i = 0; i < sizeof(top_dirs) / sizeof(top_dirs[0]); i++) {
		size_t n = strlen(top_dirs[i]);

		if (len > n + 1 && strncmp(path, top_dirs[i], n) == 0 && path[n] == '/')
			break;
	}
	if (i == sizeof(top_dirs) / sizeof(top_dirs[0]))
		return 0;
	/* Every component after the top directory: not empty, not "." or "..". */
	for (p = strchr(path, '/') + 1; p <= end; ) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t n = (size_t)((slash ? slash : end) - p);

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!slash)
			break;
		p = slash + 1;
	}
	return 1;
}

/* Files in the middle of being written are not part of the directory's state: fs_write_file's
 * temporaries (NAME.tmp.PID.HEX8) and firmware uploads and staging (.upload-*, .stage-*). */
static int is_temporary(const char *name)
{
	const char *p = name, *t;

	if (strncmp(name, ".upload-", 8) == 0 || strncmp(name, ".stage-", 7) == 0)
		return 1;
	while ((t = strstr(p, ".tmp.")) != NULL) {
		const char *q = t + 5;
		size_t digits = strspn(q, "0123456789");

		if (digits > 0 && q[digits] == '.' && strspn(q + digits + 1, "0123456789abcdef") == 8 &&
		    q[digits + 9] == '\0')
			return 1;
		p = t + 1;
	}
	return 0;
}

/* --- taking a backup ----------------------------------------------------------------------------- */

struct walk {
	const char *dir;          /* for messages */
	sqlite3 *db;
	struct backup_summary *sum;
	char rel[BACKUP_PATH_MAX + 2]; /* one more than allowed, to tell "too long" */
};

/* The open regular file fd (st: its fstat) into a new row of hearth_backup_files, a chunk at a
 * time through an incremental blob: bounded memory whatever the file's size. */
static enum herr add_file(struct walk *w, int fd, const struct stat *st)
{
	static const char sql[] = "INSERT INTO hearth_backup_files (path, mode, content) VALUES (?, ?, zeroblob(?))";
	uint64_t size = (uint64_t)st->st_size, off = 0;
	sqlite3_stmt *stmt = NULL;
	sqlite3_blob *blob = NULL;
	uint8_t buf[CHUNK];
	enum herr rc = HERR_OK;
	ssize_t n;

	if (!backup_path_ok(w->rel, strlen(w->rel))) {
		log_err("%s/%s: a name a restore would refuse (longer than %d bytes, or control characters)", w->dir,
			w->rel, BACKUP_PATH_MAX);
		return HERR_INVALID;
	}
	if (size > BACKUP_FILE_MAX) {
		log_err("%s/%s: %llu bytes; a backup holds no single file over %llu", w->dir, w->rel,
			(unsigned long long)size, BACKUP_FILE_MAX);
		return HERR_TOOBIG;
	}
	if (w->sum->files >= BACKUP_FILES_MAX) {
		log_err("%s: more than %d files", w->dir, BACKUP_FILES_MAX);
		return HERR_TOOBIG;
	}
	if (sqlite3_prepare_v2(w->db, sql, -1, &stmt, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(stmt, 1, w->rel, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, 2, (int64_t)(st->st_mode & 07777)) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, 3, (int64_t)size) != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE) {
		rc = sq_fail(__func__, w->db, w->rel);
		goto out;
	}
	if (size > 0 && sqlite3_blob_open(w->db, "main", "hearth_backup_files", "content",
					  sqlite3_last_insert_rowid(w->db), 1, &blob) != SQLITE_OK) {
		rc = sq_fail(__func__, w->db, w->rel);
		goto out;
	}
	/* Exactly the size fstat gave, then nothing more: a file that changes while read is an error
	 * (hearth replaces files by rename, so the open one does not change). */
	for (;;) {
		size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;

		n = read(fd, buf, want ? want : 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_err("%s/%s: %s", w->dir, w->rel, strerror(errno));
			rc = HERR_IO;
			goto out;
		}
		if (want == 0 && n == 0)
			break;
		if (n == 0 || want == 0) {
			log_err("%s/%s changed size while it was read", w->dir, w->rel);
			rc = HERR_IO;
			goto out;
		}
		if (sqlite3_blob_write(blob, buf, (int)n, (int)off) != SQLITE_OK) {
			rc = sq_fail(__func__, w->db, w->rel);
			goto out;
		}
		off += (uint64_t)n;
	}
	w->sum->files++;
	w->sum->bytes += size;
out:
	explicit_bzero(buf, sizeof(buf)); /* it may have held a private key */
	sqlite3_blob_close(blob);
	sqlite3_finalize(stmt);
	return rc;
}

static enum herr walk_dir(struct walk *w, int dfd, int depth);

/* One entry name of the directory dfd, whose path is w->rel. */
static enum herr walk_entry(struct walk *w, int dfd, const char *name, int depth)
{
	struct stat st;
	enum herr rc;
	int fd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return HERR_OK; /* removed since it was listed */
		log_err("%s/%s: %s", w->dir, w->rel, strerror(errno));
		return HERR_IO;
	}
	if (S_ISLNK(st.st_mode))
		goto symlink;
	if (S_ISDIR(st.st_mode)) {
		if (depth >= DEPTH_MAX) {
			log_err("%s/%s: directories nested too deep (more than %d)", w->dir, w->rel, DEPTH_MAX);
			return HERR_INVALID;
		}
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			goto open_failed;
		return walk_dir(w, fd, depth + 1);
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("%s/%s is neither a regular file nor a directory; a backup holds only files", w->dir, w->rel);
		return HERR_INVALID;
	}
	/* O_NONBLOCK: should it have become a FIFO since fstatat, the open does not hang. */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		goto open_failed;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		log_err("%s/%s is not a regular file", w->dir, w->rel);
		close(fd);
		return HERR_INVALID;
	}
	rc = add_file(w, fd, &st);
	close(fd);
	return rc;
open_failed:
	if (errno == ENOENT)
		return HERR_OK;
	if (errno != ELOOP && errno != ENOTDIR) {
		log_err("%s/%s: %s", w->dir, w->rel, strerror(errno));
		return HERR_IO;
	}
symlink:
	log_err("%s/%s is a symbolic link; a backup follows none (put the file itself there)", w->dir, w->rel);
	return HERR_INVALID;
}

/* Every entry of the open directory dfd (closed here), whose path is w->rel. */
static enum herr walk_dir(struct walk *w, int dfd, int depth)
{
	size_t base = strlen(w->rel);
	enum herr rc = HERR_OK;
	struct dirent *de;
	DIR *d;

	d = fdopendir(dfd);
	if (!d) {
		log_err("%s/%s: %s", w->dir, w->rel, strerror(errno));
		close(dfd);
		return HERR_IO;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				log_err("%s/%s: %s", w->dir, w->rel, strerror(errno));
				rc = HERR_IO;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || is_temporary(de->d_name))
			continue;
		if (fs_path(w->rel + base, sizeof(w->rel) - base, "/%s", de->d_name) != HERR_OK ||
		    strlen(w->rel) > BACKUP_PATH_MAX) {
			w->rel[base] = '\0';
			log_err("%s/%s/%s: the path is longer than %d bytes", w->dir, w->rel, de->d_name,
				BACKUP_PATH_MAX);
			rc = HERR_TOOBIG;
			break;
		}
		rc = walk_entry(w, dirfd(d), de->d_name, depth);
		w->rel[base] = '\0';
		if (rc != HERR_OK)
			break;
	}
	closedir(d);
	return rc;
}

/* keys/, certs/ (required), firmware/ (if there) and hearth.conf (if there) of the directory dfd. */
static enum herr walk_data(struct walk *w, int dfd)
{
	struct stat st;
	enum herr rc;
	size_t i;

	for (i = 0; i < sizeof(top_dirs) / sizeof(top_dirs[0]); i++) {
		snprintf(w->rel, sizeof(w->rel), "%s", top_dirs[i]);
		if (fstatat(dfd, top_dirs[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT && strcmp(top_dirs[i], "firmware") == 0)
				continue;
			log_err("%s/%s: %s", w->dir, top_dirs[i], strerror(errno));
			return HERR_IO;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
			log_err("%s/%s is not a directory", w->dir, top_dirs[i]);
			return HERR_INVALID;
		}
		rc = walk_entry(w, dfd, top_dirs[i], 0);
		if (rc != HERR_OK)
			return rc;
	}
	snprintf(w->rel, sizeof(w->rel), "%s", DATADIR_CONFIG);
	if (fstatat(dfd, DATADIR_CONFIG, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return HERR_OK;
		log_err("%s/%s: %s", w->dir, DATADIR_CONFIG, strerror(errno));
		return HERR_IO;
	}
	if (S_ISDIR(st.st_mode)) {
		log_err("%s/%s is a directory", w->dir, DATADIR_CONFIG);
		return HERR_INVALID;
	}
	return walk_entry(w, dfd, DATADIR_CONFIG, 0);
}

static enum herr add_meta(sqlite3 *db, const struct backup_summary *sum)
{
	static const char sql[] = "INSERT INTO hearth_backup_meta (key, value) VALUES"
				  " ('format', ?), ('created_at', ?), ('schema_version', ?), ('source', ?)";
	char format[16], created[32], schema[16];
	sqlite3_stmt *stmt = NULL;
	enum herr rc = HERR_OK;

	snprintf(format, sizeof(format), "%d", BACKUP_FORMAT);
	snprintf(created, sizeof(created), "%lld", (long long)sum->created_at);
	snprintf(schema, sizeof(schema), "%d", sum->schema_version);
	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(stmt, 1, format, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(stmt, 2, created, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(stmt, 3, schema, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(stmt, 4, sum->source, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(stmt) != SQLITE_DONE)
		rc = sq_fail(__func__, db, "backup meta");
	sqlite3_finalize(stmt);
	return rc;
}

/* Record the backup in the source directory's audit log. Only if its schema is this binary's:
 * opening an older store would migrate it, which a backup must not do behind anyone's back. */
static void audit_create(const char *dir, const char *actor, const struct backup_summary *sum)
{
	struct datadir *dd = NULL;
	char detail[128];
	enum herr rc;

	if (sum->schema_version != store_schema_latest()) {
		log_warn("%s is at schema %d, this hearth at %d: the backup is not recorded in its audit log "
			 "(that needs the store opened, which would migrate or refuse it)", dir, sum->schema_version,
			 store_schema_latest());
		return;
	}
	snprintf(detail, sizeof(detail), "schema %d, %llu rows, %llu files, %llu bytes", sum->schema_version,
		 (unsigned long long)sum->rows, (unsigned long long)sum->files, (unsigned long long)sum->bytes);
	rc = datadir_open(dir, &dd);
	if (rc == HERR_OK)
		rc = store_begin(dd->store);
	if (rc == HERR_OK) {
		rc = store_audit(dd->store, (int64_t)time(NULL), actor, "backup.create", sum->file, detail);
		if (rc == HERR_OK)
			rc = store_commit(dd->store);
		else
			store_rollback(dd->store);
	}
	datadir_close(dd);
	if (rc != HERR_OK)
		log_warn("the backup is made, but it could not be recorded in %s's audit log (%s)", dir,
			 herr_str(rc));
}

static void remove_sidecars(const char *db_path)
{
	static const char *const suffixes[] = { "-journal", "-wal", "-shm" };
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (fs_path(path, sizeof(path), "%s%s", db_path, suffixes[i]) == HERR_OK)
			unlink(path);
	}
}

enum herr backup_create(const char *dir, const char *file, const char *actor, struct backup_summary *sum)
{
	char db_path[PATH_MAX], tmp[PATH_MAX], why[256];
	struct walk w = { .dir = dir, .sum = sum };
	sqlite3 *src = NULL, *dst = NULL;
	int64_t version;
	int made_tmp = 0, dfd = -1;
	enum herr rc;

	memset(sum, 0, sizeof(*sum));
	if (datadir_is_initialised(dir) != 1) {
		log_err("%s holds no hearth database", dir);
		return HERR_NOTFOUND;
	}
	if (!realpath(dir, sum->source)) {
		log_err("%s: %s", dir, strerror(errno));
		return HERR_IO;
	}
	if (fs_path(db_path, sizeof(db_path), "%s/%s", dir, DATADIR_DB) != HERR_OK ||
	    fs_path(tmp, sizeof(tmp), "%s.tmp", file) != HERR_OK)
		return HERR_TOOBIG;
	if (fs_exists(file)) {
		log_err("%s already exists; a backup never replaces a file", file);
		return HERR_EXISTS;
	}
	sum->created_at = (int64_t)time(NULL);
	rc = create_private_file(tmp);
	if (rc != HERR_OK)
		return rc;
	made_tmp = 1;

	/* The snapshot. */
	if ((rc = open_db(db_path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, &src)) != HERR_OK ||
	    (rc = open_db(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, &dst)) != HERR_OK ||
	    (rc = copy_db(src, dst, db_path)) != HERR_OK)
		goto out;
	sqlite3_close(src);
	src = NULL;

	/* The copy keeps the store's WAL flag; a backup is one self-contained file. */
	if ((rc = exec(dst, "PRAGMA journal_mode = DELETE")) != HERR_OK)
		goto out;
	if (query_int(dst, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &version, why,
		      sizeof(why)) != HERR_OK) {
		log_err("%s: no schema version: %s", db_path, why);
		rc = HERR_SCHEMA;
		goto out;
	}
	sum->schema_version = (int)version;
	if ((rc = count_rows(dst, sum)) != HERR_OK)
		goto out;

	/* The files, after the snapshot, in the same transaction as the metadata. */
	if ((rc = exec(dst, "BEGIN;"
		       " CREATE TABLE hearth_backup_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
		       " CREATE TABLE hearth_backup_files (path TEXT PRIMARY KEY, mode INTEGER NOT NULL,"
		       " content BLOB NOT NULL)")) != HERR_OK)
		goto out;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		log_err("%s: %s", dir, strerror(errno));
		rc = HERR_IO;
		goto out;
	}
	w.db = dst;
	if ((rc = walk_data(&w, dfd)) != HERR_OK || (rc = add_meta(dst, sum)) != HERR_OK ||
	    (rc = exec(dst, "COMMIT")) != HERR_OK)
		goto out;
	if (sqlite3_close(dst) != SQLITE_OK) {
		rc = sq_fail(__func__, dst, tmp);
		goto out;
	}
	dst = NULL;
	if ((rc = fs_sync(tmp, 0)) != HERR_OK || (rc = place(tmp, file)) != HERR_OK)
		goto out;
	made_tmp = 0;
	if (!realpath(file, sum->file))
		snprintf(sum->file, sizeof(sum->file), "%s", file);
	audit_create(dir, actor, sum);
out:
	if (dfd >= 0)
		close(dfd);
	sqlite3_close(src);
	sqlite3_close(dst); /* rolls back what was not committed */
	if (made_tmp) {
		unlink(tmp);
		remove_sidecars(tmp);
	}
	return rc;
}

/* --- restoring ----------------------------------------------------------------------------------- */

/* What a restore made, in order, so that a failure removes it again (newest first). */
struct made {
	char *path;
	int is_dir;
};

struct restore {
	const char *dir;
	struct made *made;
	size_t n, cap;
	int dir_existed;
	mode_t dir_mode;           /* the existing empty directory's mode, put back on failure */
};

#define MADE_MAX (2 * BACKUP_FILES_MAX + 16)

static enum herr track(struct restore *r, const char *path, int is_dir)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		struct made *m;

		if (cap > MADE_MAX)
			cap = MADE_MAX;
		if (cap <= r->n)
			return HERR_TOOBIG;
		m = realloc(r->made, cap * sizeof(*m));
		if (!m)
			return HERR_NOMEM;
		r->made = m;
		r->cap = cap;
	}
	r->made[r->n].path = strdup(path);
	if (!r->made[r->n].path)
		return HERR_NOMEM;
	r->made[r->n++].is_dir = is_dir;
	return HERR_OK;
}

static void undo(struct restore *r)
{
	while (r->n > 0) {
		struct made *m = &r->made[--r->n];

		if (m->is_dir)
			rmdir(m->path);
		else
			unlink(m->path);
		free(m->path);
	}
	if (r->dir_existed)
		chmod(r->dir, r->dir_mode);
}

static void restore_free(struct restore *r)
{
	while (r->n > 0)
		free(r->made[--r->n].path);
	free(r->made);
	r->made = NULL;
	r->cap = 0;
}

/* dir/rel as a new directory (0700), or an existing one of ours. */
static enum herr make_dir(struct restore *r, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	if (fs_path(path, sizeof(path), "%s/%s", r->dir, rel) != HERR_OK)
		return HERR_TOOBIG;
	if (mkdir(path, 0700) == 0)
		return track(r, path, 1);
	if (errno == EEXIST && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return HERR_OK;
	log_err("mkdir %s: %s", path, errno == EEXIST ? "a file is in the way" : strerror(errno));
	return HERR_IO;
}

/* The mode a restored file gets: keys always 0600; others what was recorded, at most 0644 and at
 * least readable and writable by the owner. */
static mode_t restored_mode(const char *rel, int64_t recorded)
{
	if (strncmp(rel, "keys/", 5) == 0)
		return 0600;
	return (mode_t)(((unsigned)recorded & 0644) | 0600);
}

/* One row of hearth_backup_files into dir/rel, a chunk at a time. */
static enum herr write_file(struct restore *r, sqlite3 *bk, int64_t rowid, const char *rel, int64_t recorded)
{
	char path[PATH_MAX], sub[BACKUP_PATH_MAX + 1];
	mode_t mode = restored_mode(rel, recorded);
	sqlite3_blob *blob = NULL;
	enum herr rc = HERR_IO;
	uint8_t buf[CHUNK];
	int fd = -1, size, off;
	char *slash;

	/* Its directories first (keys/ and certs/ are there already). */
	snprintf(sub, sizeof(sub), "%s", rel);
	for (slash = strchr(sub, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		rc = make_dir(r, sub);
		*slash = '/';
		if (rc != HERR_OK)
			return rc;
	}
	if (fs_path(path, sizeof(path), "%s/%s", r->dir, rel) != HERR_OK)
		return HERR_TOOBIG;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		log_err("%s: %s", path, strerror(errno));
		return HERR_IO;
	}
	rc = track(r, path, 0);
	if (rc != HERR_OK) {
		close(fd);
		unlink(path);
		return rc;
	}
	rc = HERR_IO;
	if (fchmod(fd, mode) != 0)
		goto io;
	if (sqlite3_blob_open(bk, "main", "hearth_backup_files", "content", rowid, 0, &blob) != SQLITE_OK) {
		rc = sq_fail(__func__, bk, rel);
		goto out;
	}
	size = sqlite3_blob_bytes(blob);
	for (off = 0; off < size;) {
		int n = size - off < CHUNK ? size - off : CHUNK;

		if (sqlite3_blob_read(blob, buf, n, off) != SQLITE_OK) {
			rc = sq_fail(__func__, bk, rel);
			goto out;
		}
		if (write_all(fd, buf, (size_t)n) != HERR_OK)
			goto io;
		off += n;
	}
	if (fsync(fd) != 0)
		goto io;
	rc = HERR_OK;
	goto out;
io:
	log_err("%s: %s", path, strerror(errno));
out:
	explicit_bzero(buf, sizeof(buf));
	sqlite3_blob_close(blob);
	if (fd >= 0 && close(fd) != 0 && rc == HERR_OK) {
		log_err("%s: %s", path, strerror(errno));
		rc = HERR_IO;
	}
	return rc;
}

static enum herr write_files(struct restore *r, sqlite3 *bk)
{
	static const char sql[] = "SELECT rowid, path, mode FROM hearth_backup_files ORDER BY path";
	sqlite3_stmt *stmt = NULL;
	enum herr rc = HERR_OK;
	int step;

	if (sqlite3_prepare_v2(bk, sql, -1, &stmt, NULL) != SQLITE_OK)
		return sq_fail(__func__, bk, sql);
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *rel = (const char *)sqlite3_column_text(stmt, 1);

		/* Checked already; checked again where it is used. */
		if (!rel || !backup_path_ok(rel, (size_t)sqlite3_column_bytes(stmt, 1))) {
			rc = HERR_INVALID;
			break;
		}
		rc = write_file(r, bk, sqlite3_column_int64(stmt, 0), rel, sqlite3_column_int64(stmt, 2));
		if (rc != HERR_OK)
			break;
	}
	if (rc == HERR_OK && step != SQLITE_DONE)
		rc = sq_fail(__func__, bk, sql);
	sqlite3_finalize(stmt);
	return rc;
}

/* Is the file a backup this hearth can restore? Fills sum; says why not. */
static enum herr check_backup(sqlite3 *bk, const char *file, struct backup_summary *sum)
{
	static const char files_sql[] =
		"SELECT path, typeof(path), mode, typeof(mode), typeof(content), length(content), rowid"
		" FROM hearth_backup_files ORDER BY path";
	char value[PATH_MAX], why[256], prev[BACKUP_PATH_MAX + 1] = "";
	sqlite3_stmt *stmt = NULL;
	int64_t v;
	int step;

	why[0] = '\0';
	if (query_text(bk, "PRAGMA integrity_check", NULL, value, sizeof(value), why, sizeof(why)) != HERR_OK)
		goto bad;
	if (strcmp(value, "ok") != 0) {
		snprintf(why, sizeof(why), "integrity check: %.200s", value);
		goto bad;
	}
	if (query_text(bk, "SELECT value FROM hearth_backup_meta WHERE key = ?", "format", value, sizeof(value),
		       why, sizeof(why)) != HERR_OK) {
		snprintf(why, sizeof(why), "it has no backup format (not made by hearth backup)");
		goto bad;
	}
	if (strcmp(value, "1") != 0) {
		snprintf(why, sizeof(why), "format %.32s; this hearth reads format %d", value, BACKUP_FORMAT);
		goto bad;
	}
	if (query_text(bk, "SELECT value FROM hearth_backup_meta WHERE key = ?", "created_at", value,
		       sizeof(value), why, sizeof(why)) != HERR_OK) {
		snprintf(why, sizeof(why), "no created_at");
		goto bad;
	}
	sum->created_at = strtoll(value, NULL, 10);
	if (query_text(bk, "SELECT value FROM hearth_backup_meta WHERE key = ?", "source", sum->source,
		       sizeof(sum->source), why, sizeof(why)) != HERR_OK)
		snprintf(sum->source, sizeof(sum->source), "?");
	if (query_int(bk, "SELECT value FROM hearth_backup_meta WHERE key = 'schema_version'", &v, why,
		      sizeof(why)) != HERR_OK) {
		snprintf(why, sizeof(why), "no schema_version");
		goto bad;
	}
	sum->schema_version = (int)v;
	if (query_int(bk, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &v, why, sizeof(why)) != HERR_OK)
		goto bad;
	if (v != sum->schema_version || v < 1) {
		snprintf(why, sizeof(why), "its store is at schema %lld, its metadata says %d", (long long)v,
			 sum->schema_version);
		goto bad;
	}
	if (v > store_schema_latest()) {
		log_err("%s: made at schema %lld, newer than this hearth understands (%d); restore it with "
			"the newer hearth", file, (long long)v, store_schema_latest());
		return HERR_SCHEMA;
	}

	if (sqlite3_prepare_v2(bk, files_sql, -1, &stmt, NULL) != SQLITE_OK) {
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(bk));
		goto bad;
	}
	while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *path = (const char *)sqlite3_column_text(stmt, 0);
		size_t len = (size_t)sqlite3_column_bytes(stmt, 0);
		int64_t mode = sqlite3_column_int64(stmt, 2), bytes = sqlite3_column_int64(stmt, 5);

		if (!path || strcmp((const char *)sqlite3_column_text(stmt, 1), "text") != 0 ||
		    !backup_path_ok(path, len)) {
			snprintf(why, sizeof(why), "a file's path is not one a backup may hold: '%.*s'",
				 (int)(len < 100 ? len : 100), path ? path : "");
			goto bad_stmt;
		}
		if (strcmp(path, prev) == 0) {
			snprintf(why, sizeof(why), "'%s' is there twice", path);
			goto bad_stmt;
		}
		if (strcmp((const char *)sqlite3_column_text(stmt, 3), "integer") != 0 || mode < 0 || mode > 07777 ||
		    strcmp((const char *)sqlite3_column_text(stmt, 4), "blob") != 0) {
			snprintf(why, sizeof(why), "'%s' has no mode or no content", path);
			goto bad_stmt;
		}
		if ((uint64_t)bytes > BACKUP_FILE_MAX || sum->files >= BACKUP_FILES_MAX) {
			snprintf(why, sizeof(why), "too large ('%s', or more than %d files)", path, BACKUP_FILES_MAX);
			goto bad_stmt;
		}
		snprintf(prev, sizeof(prev), "%s", path);
		sum->files++;
		sum->bytes += (uint64_t)bytes;
	}
	if (step != SQLITE_DONE) {
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(bk));
		goto bad_stmt;
	}
	sqlite3_finalize(stmt);
	if (count_rows(bk, sum) != HERR_OK) {
		snprintf(why, sizeof(why), "its tables cannot be read");
		goto bad;
	}
	return HERR_OK;
bad_stmt:
	sqlite3_finalize(stmt);
bad:
	log_err("%s is not a usable hearth backup: %s", file, why[0] ? why : "unreadable");
	return HERR_INVALID;
}

/* dir may be restored into: it does not exist (made here, 0700), or is an empty directory. */
static enum herr prepare_dir(struct restore *r)
{
	struct stat st;

	if (stat(r->dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode) || fs_dir_is_empty(r->dir) != 1) {
			log_err("%s is not an empty directory: restore writes only into a new or empty one, and "
				"nothing there was changed", r->dir);
			return HERR_STATE;
		}
		r->dir_existed = 1;
		r->dir_mode = st.st_mode & 07777;
		return HERR_OK;
	}
	if (errno != ENOENT) {
		log_err("%s: %s", r->dir, strerror(errno));
		return HERR_IO;
	}
	return HERR_OK;
}

/* The store: the backup without its own two tables, rebuilt (VACUUM) so that not a page of the
 * files (private keys) is left in it, written under a staging name and moved into place last. */
static enum herr write_store(struct restore *r, sqlite3 *bk)
{
	char tmp[PATH_MAX], final[PATH_MAX], why[256];
	sqlite3 *dst = NULL;
	int64_t left;
	enum herr rc;

	if (fs_path(tmp, sizeof(tmp), "%s/%s.restore", r->dir, DATADIR_DB) != HERR_OK ||
	    fs_path(final, sizeof(final), "%s/%s", r->dir, DATADIR_DB) != HERR_OK)
		return HERR_TOOBIG;
	if ((rc = create_private_file(tmp)) != HERR_OK)
		return rc;
	if ((rc = track(r, tmp, 0)) != HERR_OK) {
		unlink(tmp);
		return rc;
	}
	/* No rollback journal on disk: it would hold the dropped pages, keys among them. */
	if ((rc = open_db(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, &dst)) != HERR_OK ||
	    (rc = copy_db(bk, dst, tmp)) != HERR_OK ||
	    (rc = exec(dst, "PRAGMA journal_mode = MEMORY; PRAGMA secure_delete = ON;"
		       " DROP TABLE hearth_backup_files; DROP TABLE hearth_backup_meta; VACUUM")) != HERR_OK)
		goto out;
	if (query_int(dst, "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'hearth\\_backup\\_%' ESCAPE '\\'",
		      &left, why, sizeof(why)) != HERR_OK || left != 0) {
		log_err("%s: the backup's own tables are still there", tmp);
		rc = HERR_STORE;
		goto out;
	}
	if (sqlite3_close(dst) != SQLITE_OK) {
		rc = sq_fail(__func__, dst, tmp);
		goto out;
	}
	dst = NULL;
	if ((rc = fs_sync(tmp, 0)) != HERR_OK)
		goto out;
	/* link(), not rename(): nothing that appeared there meanwhile is replaced. */
	if (link(tmp, final) != 0) {
		log_err("%s: %s", final, strerror(errno));
		rc = HERR_IO;
		goto out;
	}
	if ((rc = track(r, final, 0)) != HERR_OK) {
		unlink(final);
		goto out;
	}
	unlink(tmp); /* stays tracked: unlinking it again on failure is harmless */
out:
	sqlite3_close(dst);
	remove_sidecars(tmp);
	return rc;
}

/* fsync every directory the restore made, and the one that holds dir. */
static enum herr sync_dirs(struct restore *r)
{
	enum herr rc = HERR_OK;
	size_t i;

	for (i = r->n; i > 0; i--) {
		if (r->made[i - 1].is_dir && fs_sync(r->made[i - 1].path, 1) != HERR_OK)
			rc = HERR_IO;
	}
	if (fs_sync(r->dir, 1) != HERR_OK || fsync_parent(r->dir) != HERR_OK)
		rc = HERR_IO;
	return rc;
}

static enum herr audit_restore(struct datadir *dd, const char *actor, const struct backup_summary *sum)
{
	char detail[PATH_MAX + 96];
	enum herr rc;

	snprintf(detail, sizeof(detail), "from %s, made %lld at schema %d, %llu files", sum->source,
		 (long long)sum->created_at, sum->schema_version, (unsigned long long)sum->files);
	rc = store_begin(dd->store);
	if (rc != HERR_OK)
		return rc;
	rc = store_audit(dd->store, (int64_t)time(NULL), actor, "backup.restore", sum->file, detail);
	if (rc == HERR_OK)
		rc = store_commit(dd->store);
	else
		store_rollback(dd->store);
	return rc;
}

enum herr backup_restore(const char *file, const char *dir, const char *actor, struct backup_summary *sum)
{
	struct restore r = { .dir = dir };
	struct datadir *dd = NULL;
	sqlite3 *bk = NULL;
	enum herr rc;

	memset(sum, 0, sizeof(*sum));
	if ((rc = prepare_dir(&r)) != HERR_OK)
		return rc;
	if (!realpath(file, sum->file)) {
		log_err("%s: %s", file, strerror(errno));
		return errno == ENOENT ? HERR_NOTFOUND : HERR_IO;
	}
	if ((rc = open_db(sum->file, SQLITE_OPEN_READONLY, &bk)) != HERR_OK)
		return rc;
	if ((rc = check_backup(bk, file, sum)) != HERR_OK)
		goto out;

	if (r.dir_existed) {
		if (chmod(dir, 0700) != 0) {
			log_err("chmod %s: %s", dir, strerror(errno));
			rc = HERR_IO;
			goto out;
		}
	} else if (mkdir(dir, 0700) != 0) {
		log_err("mkdir %s: %s", dir, strerror(errno));
		rc = HERR_IO;
		goto out;
	} else if ((rc = track(&r, dir, 1)) != HERR_OK) {
		rmdir(dir);
		goto out;
	}
	/* As datadir_init makes them; files; the store last, so a directory holding hearth.db is whole. */
	if ((rc = make_dir(&r, "keys")) != HERR_OK || (rc = make_dir(&r, "certs")) != HERR_OK ||
	    (rc = write_files(&r, bk)) != HERR_OK || (rc = write_store(&r, bk)) != HERR_OK ||
	    (rc = sync_dirs(&r)) != HERR_OK)
		goto out;
	sqlite3_close(bk);
	bk = NULL;

	/* From here on the files stay: opening the store may have added to them (migrations, their
	 * backup), so a failure is for someone to look at, not to sweep away. */
	restore_free(&r);
	r.dir_existed = 0;
	rc = datadir_open(dir, &dd);
	if (rc != HERR_OK) {
		log_err("%s was restored but its store does not open (above); remove it and try again", dir);
		goto out;
	}
	sum->schema_now = store_schema_version(dd->store);
	rc = audit_restore(dd, actor, sum);
	if (rc != HERR_OK)
		log_warn("%s is restored, but the restore could not be recorded in its audit log (%s)", dir,
			 herr_str(rc));
	rc = HERR_OK;
out:
	datadir_close(dd);
	sqlite3_close(bk);
	if (rc != HERR_OK && (r.n > 0 || r.dir_existed)) {
		if (r.n > 0)
			log_err("nothing of the backup was left in %s", dir);
		undo(&r);
	}
	restore_free(&r);
	return rc;
}
