/* backup: a consistent copy of a data directory, taken while `hearth serve` may be running and
 * writing, and putting one back into a new directory.
 *
 * A backup is one SQLite file (0600), never written over an existing file:
 *   - the store, copied with SQLite's online backup API in one read transaction: a snapshot, and in
 *     WAL mode the copy never blocks the server's writes;
 *   - hearth_backup_meta(key TEXT PRIMARY KEY, value TEXT): format (BACKUP_FORMAT), created_at,
 *     schema_version, source (the directory's absolute path);
 *   - hearth_backup_files(path TEXT PRIMARY KEY, mode INTEGER, content BLOB): every regular file
 *     under keys/, certs/ and firmware/ (not files being written: firmware uploads, atomic-write
 *     temporaries) and hearth.conf, read after the snapshot: hearth writes a file before the row
 *     that names it, so whatever the snapshot refers to is there. Symlinks are refused, not followed.
 * It holds the CA and signing PRIVATE KEYS: it must be kept like them (0600, offline).
 *
 * The backup is of the embedded backend and is itself a SQLite file, so this module speaks SQLite
 * directly, as store_sqlite.c does; nothing else does. */
#ifndef HEARTH_BACKUP_H
#define HEARTH_BACKUP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"

#define BACKUP_FORMAT    1
/* The largest single file: SQLite's longest blob (SQLITE_MAX_LENGTH, 10^9 bytes, just under 1 GiB). */
#define BACKUP_FILE_MAX  1000000000ULL
#define BACKUP_FILES_MAX 100000
/* Bytes of a file's path relative to the data directory. */
#define BACKUP_PATH_MAX  255

/* What a backup holds: the store's tables (without the backup's own) and rows, the files. */
struct backup_summary {
	int64_t created_at;
	int schema_version;        /* the store's, as copied */
	int schema_now;            /* restore: after opening (migrations applied) */
	uint64_t tables, rows, files, bytes;
	char source[PATH_MAX];     /* the directory it was taken from */
	char file[PATH_MAX];       /* the backup file, as an absolute path */
};

/* Copy the initialised directory dir into a new backup file. HERR_EXISTS if file (or file.tmp, an
 * interrupted backup) is there. The copy is audited in dir's store as "backup.create" by actor,
 * unless its schema differs from this binary's (opening it would migrate it). */
enum herr backup_create(const char *dir, const char *file, const char *actor, struct backup_summary *sum);

/* Check the backup file (integrity, format, every path) and restore it into dir, which must not
 * exist or be an empty directory (HERR_STATE otherwise: nothing is overwritten). The store is
 * written last and then opened (applying migrations if the backup is older), and the restore
 * audited there as "backup.restore" by actor. On a failure before that, what was written is
 * removed again. */
enum herr backup_restore(const char *file, const char *dir, const char *actor, struct backup_summary *sum);

/* 1 if path (len bytes) may name a file in a backup: relative, at most BACKUP_PATH_MAX bytes, no
 * NUL or control character, no empty, "." or ".." component, and either exactly "hearth.conf" or
 * inside keys/, certs/ or firmware/. */
int backup_path_ok(const char *path, size_t len);

#endif
