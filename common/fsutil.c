#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "rng.h"

static enum herr read_file(const char *path, size_t max, int secret, uint8_t **data, size_t *len)
{
	enum herr rc = HERR_IO;
	uint8_t *buf = NULL;
	struct stat st;
	size_t got = 0;
	int fd;

	*data = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return HERR_NOTFOUND;
		log_err("%s: %s", path, strerror(errno));
		return HERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		log_err("%s: not a regular file", path);
		rc = HERR_INVALID;
		goto out;
	}
	/* Checked on the open file, not the path, so the answer is about what we actually read. */
	if (secret && (st.st_mode & 077) != 0) {
		log_err("%s: accessible to other users (mode %03o); expected 0600", path,
			(unsigned)(st.st_mode & 0777));
		rc = HERR_STATE;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = HERR_TOOBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = HERR_NOMEM;
		goto out;
	}
	/* Read up to max+1 so a file that grows while we read is still caught by the bound. */
	while (got <= (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size + 1 - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > (size_t)st.st_size) {
		rc = HERR_TOOBIG;
		goto out;
	}
	buf[got] = '\0';
	*data = buf;
	buf = NULL; /* ownership passed */
	*len = got;
	rc = HERR_OK;
out:
	free(buf);
	close(fd);
	return rc;
}

enum herr fs_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
	return read_file(path, max, 0, data, len);
}

enum herr fs_read_secret(const char *path, size_t max, uint8_t **data, size_t *len)
{
	return read_file(path, max, 1, data, len);
}

static enum herr fsync_parent(const char *path)
{
	char copy[4096];
	int fd;

	if (fs_path(copy, sizeof(copy), "%s", path) != HERR_OK)
		return HERR_TOOBIG;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return HERR_IO;
	(void)fsync(fd);
	close(fd);
	return HERR_OK;
}

enum herr fs_write_file(const char *path, const void *data, size_t len, unsigned mode, int exclusive)
{
	const uint8_t *p = data;
	enum herr rc = HERR_IO;
	unsigned nonce = 0;
	char tmp[4096];
	int fd;

	if (exclusive && fs_exists(path))
		return HERR_EXISTS;
	/* pid and a random part: neither another process nor another thread picks the same name. */
	if (rng_bytes(&nonce, sizeof(nonce)) != HERR_OK)
		return HERR_IO;
	if (fs_path(tmp, sizeof(tmp), "%s.tmp.%ld.%08x", path, (long)getpid(), nonce) != HERR_OK)
		return HERR_TOOBIG;
	/* O_EXCL on the temporary name: never follow a planted symlink. The mode is exact from birth,
	 * so a private key is never readable by others, not even for an instant. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
	if (fd < 0) {
		log_err("%s: %s", tmp, strerror(errno));
		return HERR_IO;
	}
	if (fchmod(fd, (mode_t)mode) != 0)
		goto fail;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (exclusive) {
		/* link() fails if path appeared meanwhile; rename() would replace it. */
		if (link(tmp, path) != 0) {
			rc = errno == EEXIST ? HERR_EXISTS : HERR_IO;
			goto fail;
		}
		unlink(tmp);
	} else if (rename(tmp, path) != 0) {
		goto fail;
	}
	fsync_parent(path);
	return HERR_OK;
fail:
	if (rc == HERR_IO)
		log_err("%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

enum herr fs_make_private_dir(const char *path, int *created)
{
	struct stat st;

	if (created)
		*created = 0;
	if (mkdir(path, 0700) == 0) {
		if (created)
			*created = 1;
		return HERR_OK;
	}
	if (errno != EEXIST) {
		log_err("mkdir %s: %s", path, strerror(errno));
		return HERR_IO;
	}
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		log_err("%s exists and is not a directory", path);
		return HERR_INVALID;
	}
	return HERR_OK;
}

enum herr fs_check_private_dir(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errno == ENOENT ? HERR_NOTFOUND : HERR_IO;
	if (!S_ISDIR(st.st_mode))
		return HERR_INVALID;
	if ((st.st_mode & 077) != 0)
		return HERR_STATE;
	return HERR_OK;
}

int fs_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int fs_dir_is_empty(const char *path)
{
	return fs_dir_is_empty_but(path, NULL);
}

int fs_dir_is_empty_but(const char *path, const char *except)
{
	struct dirent *de;
	int empty = 1;
	DIR *d;

	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    !(except && strcmp(de->d_name, except) == 0)) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

enum herr fs_path(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return HERR_TOOBIG;
	return HERR_OK;
}

enum herr fs_sync(const char *path, int directory)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : O_NOFOLLOW));

	if (fd < 0 || fsync(fd) != 0) {
		log_err("fsync %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return HERR_IO;
	}
	close(fd);
	return HERR_OK;
}
