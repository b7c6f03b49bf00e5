/* fsutil: the few file operations everything else needs, done safely: bounded reads, atomic writes
 * with an explicit mode (written to a temporary file, fsynced, renamed), private directories. */
#ifndef HEARTH_FSUTIL_H
#define HEARTH_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "herr.h"

/* Read a whole regular file of at most max bytes into a new buffer (NUL-terminated for convenience;
 * *len excludes the NUL). HERR_TOOBIG if it is longer, HERR_NOTFOUND if it does not exist. */
enum herr fs_read_file(const char *path, size_t max, uint8_t **data, size_t *len);

/* fs_read_file for a file holding a secret: HERR_STATE if group or others may access it. */
enum herr fs_read_secret(const char *path, size_t max, uint8_t **data, size_t *len);

/* Write data to path atomically with the given mode. If exclusive, fail with HERR_EXISTS when path
 * already exists (so a key is never overwritten by accident). */
enum herr fs_write_file(const char *path, const void *data, size_t len, unsigned mode, int exclusive);

/* Create a directory with mode 0700, or make sure an existing one is a directory. *created tells
 * which (may be NULL). An existing directory keeps its mode; see fs_check_private_dir. */
enum herr fs_make_private_dir(const char *path, int *created);

/* HERR_OK if path is a directory that no one but its owner can read, write or enter. */
enum herr fs_check_private_dir(const char *path);

/* 1 if path exists (any type), 0 if not. */
int fs_exists(const char *path);

/* 1 if path is a directory with no entries, 0 if it has some, -1 if it cannot be read. */
int fs_dir_is_empty(const char *path);
/* The same, not counting an entry named except (may be NULL). */
int fs_dir_is_empty_but(const char *path, const char *except);

/* fsync a file (not following a symlink) or, with directory, a directory: HERR_IO (logged) if
 * either fails. */
enum herr fs_sync(const char *path, int directory);

/* snprintf into buf, HERR_TOOBIG if it did not fit. */
enum herr fs_path(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
