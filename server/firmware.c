/* firmware: releases (an image file and its row, moved into place together) and rollouts (offers
 * as signed firmware manifests, moved on by a tick). The rules are in firmware.h; the store holds
 * the state, so every process (CLI, REST, serve) sees the same rollouts. */
#include "server/firmware.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <mbedtls/sha256.h>

#include "ca/cert.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/rng.h"
#include "server/manifest.h"

#define VERSION_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-"
#define TAG_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"
#define TAG_MAX 64
#define LIST_MAX 1000          /* devices in a list cohort */
#define PAGE 256               /* ids read from the store before acting on them */
/* Offers are signed in transactions of at most this many: each holds the write lock, and the
 * endpoint's group commits wait behind it, for a few signatures rather than a tick's worth. */
#define OFFERS_PER_TXN 8
#define INSTALLS_PER_TICK 256
#define TICK_ROLLOUTS_MAX 4096 /* active rollouts a tick looks at (at most one per model) */
#define SYSTEM_ACTOR "system"

/* --- small helpers ------------------------------------------------------------------------------ */

static int valid_chars(const char *s, size_t max, const char *chars)
{
	size_t n = s ? strnlen(s, max + 1) : 0;

	return n >= 1 && n <= max && strspn(s, chars) == n;
}

static int valid_version(const char *v)
{
	return valid_chars(v, FIRMWARE_VERSION_MAX, VERSION_CHARS);
}

/* 32 lower-case hex digits: the form of release and rollout ids (never a path component else). */
static int valid_hex_id(const char *id)
{
	return valid_chars(id, 32, "0123456789abcdef") && strlen(id) == 32;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static enum herr random_id(char id[33])
{
	unsigned char b[16];
	enum herr rc = rng_bytes(b, sizeof(b));

	if (rc == HERR_OK)
		hex(b, sizeof(b), id);
	return rc;
}

/* A caller's SHA-256 (64 hex digits, either case) in lower case; 0 if it is not one. */
static int normal_sha256(const char *in, char out[65])
{
	size_t i;

	if (!valid_chars(in, 64, "0123456789abcdefABCDEF") || strlen(in) != 64)
		return 0;
	for (i = 0; i < 64; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'F') ? (char)(in[i] - 'A' + 'a') : in[i];
	out[64] = '\0';
	return 1;
}

static void copy_release(const struct store_release *s, struct firmware_release *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", s->id);
	snprintf(r->model, sizeof(r->model), "%s", s->model);
	snprintf(r->version, sizeof(r->version), "%s", s->version);
	snprintf(r->sha256, sizeof(r->sha256), "%s", s->sha256);
	r->security_version = s->security_version;
	r->size = (uint64_t)s->size;
	r->created_at = s->created_at;
}

static void copy_rollout(const struct store_rollout *s, struct firmware_rollout *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", s->id);
	snprintf(r->release, sizeof(r->release), "%s", s->release);
	snprintf(r->model, sizeof(r->model), "%s", s->model);
	snprintf(r->state, sizeof(r->state), "%s", s->state);
	snprintf(r->cohort, sizeof(r->cohort), "%s", s->cohort);
	snprintf(r->tag, sizeof(r->tag), "%s", s->tag);
	snprintf(r->abort_reason, sizeof(r->abort_reason), "%s", s->abort_reason);
	r->percent = (unsigned)s->percent;
	r->failure_threshold = (unsigned)s->failure_threshold;
	r->created_at = s->created_at;
	r->updated_at = s->updated_at;
	r->offered = (size_t)s->offered;
	r->downloading = (size_t)s->downloading;
	r->installed = (size_t)s->installed;
	r->failed = (size_t)s->failed;
	r->rolled_back = (size_t)s->rolled_back;
}

/* Ids read from a store listing before anything is written: a page at a time. */
struct id_page {
	char ids[PAGE][65];
	size_t n;
};

static int take_id(void *ctx, const char *id)
{
	struct id_page *p = ctx;

	if (p->n == PAGE)
		return 1;
	snprintf(p->ids[p->n++], sizeof(p->ids[0]), "%s", id);
	return 0;
}

/* --- releases ----------------------------------------------------------------------------------- */

enum herr firmware_dir(struct datadir *dd, char *buf, size_t size)
{
	enum herr rc = datadir_file(dd, FIRMWARE_DIR, buf, size);

	return rc == HERR_OK ? fs_make_private_dir(buf, NULL) : rc;
}

enum herr firmware_release_path(struct datadir *dd, const char *id, char *buf, size_t size)
{
	char rel[64];

	if (!valid_hex_id(id))
		return HERR_INVALID;
	snprintf(rel, sizeof(rel), "%s/%s.bin", FIRMWARE_DIR, id);
	return datadir_file(dd, rel, buf, size);
}

/* SHA-256 of what fd holds from where it is to its end, which must be exactly size bytes. */
static enum herr hash_fd(int fd, uint64_t size, char out[65])
{
	mbedtls_sha256_context sha;
	unsigned char buf[64 * 1024], digest[32];
	uint64_t total = 0;
	enum herr rc = HERR_OK;
	ssize_t n;

	mbedtls_sha256_init(&sha);
	if (mbedtls_sha256_starts_ret(&sha, 0) != 0) {
		rc = HERR_CRYPTO;
		goto out;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		total += (uint64_t)n;
		if (total > size) {
			rc = HERR_INVALID;
			goto out;
		}
		if (mbedtls_sha256_update_ret(&sha, buf, (size_t)n) != 0) {
			rc = HERR_CRYPTO;
			goto out;
		}
	}
	if (n < 0) {
		log_err("reading the image: %s", strerror(errno));
		rc = HERR_IO;
	} else if (total != size) {
		rc = HERR_INVALID;
	} else if (mbedtls_sha256_finish_ret(&sha, digest) != 0) {
		rc = HERR_CRYPTO;
	} else {
		hex(digest, sizeof(digest), out);
	}
out:
	mbedtls_sha256_free(&sha);
	return rc;
}

enum herr firmware_stage(struct datadir *dd, int fd, char *tmp, size_t tmp_size, char sha256[65],
			 uint64_t *size)
{
	mbedtls_sha256_context sha;
	unsigned char buf[64 * 1024], digest[32];
	char dir[PATH_MAX];
	uint64_t total = 0;
	int out_fd = -1;
	enum herr rc;
	ssize_t n;

	*size = 0;
	sha256[0] = '\0';
	mbedtls_sha256_init(&sha);
	if ((rc = firmware_dir(dd, dir, sizeof(dir))) != HERR_OK ||
	    (rc = fs_path(tmp, tmp_size, "%s/.stage-XXXXXX", dir)) != HERR_OK)
		goto out;
	out_fd = mkostemp(tmp, O_CLOEXEC); /* 0600 */
	if (out_fd < 0) {
		log_err("%s: %s", tmp, strerror(errno));
		tmp[0] = '\0';
		rc = HERR_IO;
		goto out;
	}
	if (mbedtls_sha256_starts_ret(&sha, 0) != 0) {
		rc = HERR_CRYPTO;
		goto out;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		total += (uint64_t)n;
		if (total > FIRMWARE_MAX_BYTES) {
			rc = HERR_TOOBIG;
			goto out;
		}
		if (mbedtls_sha256_update_ret(&sha, buf, (size_t)n) != 0) {
			rc = HERR_CRYPTO;
			goto out;
		}
		if (write(out_fd, buf, (size_t)n) != n) {
			log_err("%s: %s", tmp, strerror(errno));
			rc = HERR_IO;
			goto out;
		}
	}
	if (n < 0) {
		log_err("reading the image: %s", strerror(errno));
		rc = HERR_IO;
	} else if (total == 0) {
		rc = HERR_INVALID;
	} else if (mbedtls_sha256_finish_ret(&sha, digest) != 0) {
		rc = HERR_CRYPTO;
	} else if (fsync(out_fd) != 0) {
		log_err("%s: %s", tmp, strerror(errno));
		rc = HERR_IO;
	} else {
		hex(digest, sizeof(digest), sha256);
		*size = total;
	}
out:
	mbedtls_sha256_free(&sha);
	if (out_fd >= 0 && close(out_fd) != 0 && rc == HERR_OK)
		rc = HERR_IO;
	if (rc != HERR_OK && out_fd >= 0) {
		unlink(tmp);
		tmp[0] = '\0';
	}
	return rc;
}

static enum herr fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	enum herr rc = HERR_OK;

	if (fd < 0 || fsync(fd) != 0) {
		log_err("%s: %s", dir, strerror(errno));
		rc = HERR_IO;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

enum herr firmware_release_add(struct datadir *dd, const char *model, const char *version,
			       int64_t security_version, const char *tmp_path, const char *sha256,
			       uint64_t size, const char *actor, struct firmware_release *out)
{
	char want[65], got[65], dir[PATH_MAX], dest[PATH_MAX], detail[256];
	struct store_release r;
	struct stat st, moved_st;
	int64_t now = (int64_t)time(NULL);
	int fd = -1, began = 0, moved = 0;
	enum herr rc;

	memset(out, 0, sizeof(*out));
	if (!model || !ca_valid_id(model))
		return HERR_NOTFOUND;
	if (!valid_version(version) || security_version < 0 || security_version > FIRMWARE_SECURITY_MAX ||
	    !sha256 || !normal_sha256(sha256, want) || size == 0 || size > FIRMWARE_MAX_BYTES || !tmp_path)
		return HERR_INVALID;
	/* The file is checked through the descriptor, and the one renamed must be the one checked. */
	fd = open(tmp_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		log_err("%s: %s", tmp_path, strerror(errno));
		return HERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
		rc = HERR_INVALID;
		goto out;
	}
	if ((rc = hash_fd(fd, size, got)) != HERR_OK)
		goto out;
	if (strcmp(got, want) != 0) {
		rc = HERR_INVALID;
		goto out;
	}
	if (fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
		log_err("%s: %s", tmp_path, strerror(errno));
		rc = HERR_IO;
		goto out;
	}
	memset(&r, 0, sizeof(r));
	if ((rc = random_id(r.id)) != HERR_OK || (rc = firmware_dir(dd, dir, sizeof(dir))) != HERR_OK ||
	    (rc = firmware_release_path(dd, r.id, dest, sizeof(dest))) != HERR_OK)
		goto out;
	snprintf(r.model, sizeof(r.model), "%s", model);
	snprintf(r.version, sizeof(r.version), "%s", version);
	memcpy(r.sha256, got, sizeof(r.sha256));
	r.security_version = security_version;
	r.size = (int64_t)size;
	r.created_at = now;
	snprintf(detail, sizeof(detail), "model %s version %s security %lld size %llu sha256 %s", model, version,
		 (long long)security_version, (unsigned long long)size, got);
	if ((rc = store_begin(dd->store)) != HERR_OK)
		goto out;
	began = 1;
	if ((rc = store_release_insert(dd->store, &r)) != HERR_OK ||
	    (rc = store_audit(dd->store, now, actor, "firmware.add", r.id, detail)) != HERR_OK)
		goto out;
	/* The file before the commit: a row never names a missing image. */
	if (rename(tmp_path, dest) != 0) {
		log_err("cannot move %s to %s: %s", tmp_path, dest, strerror(errno));
		rc = HERR_IO;
		goto out;
	}
	moved = 1;
	if (stat(dest, &moved_st) != 0 || moved_st.st_dev != st.st_dev || moved_st.st_ino != st.st_ino) {
		log_err("%s was replaced while it was being checked", tmp_path);
		rc = HERR_STATE;
		goto out;
	}
	if ((rc = fsync_dir(dir)) != HERR_OK || (rc = store_commit(dd->store)) != HERR_OK)
		goto out;
	began = 0;
	copy_release(&r, out);
out:
	if (rc != HERR_OK && moved && rename(dest, tmp_path) != 0)
		log_err("cannot move %s back to %s: %s", dest, tmp_path, strerror(errno));
	if (began)
		store_rollback(dd->store);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* As firmware_rollout_get, id may point into out. */
enum herr firmware_release_get(struct datadir *dd, const char *id, struct firmware_release *out)
{
	struct store_release r;
	enum herr rc = !id || !valid_hex_id(id) ? HERR_NOTFOUND : store_release_get(dd->store, id, &r);

	if (rc == HERR_OK)
		copy_release(&r, out);
	else
		memset(out, 0, sizeof(*out));
	return rc;
}

struct release_each {
	firmware_release_fn fn;
	void *ctx;
};

static int release_each(void *ctx, const struct store_release *s)
{
	struct release_each *e = ctx;
	struct firmware_release r;

	copy_release(s, &r);
	return e->fn(e->ctx, &r);
}

enum herr firmware_release_list(struct datadir *dd, const char *model, firmware_release_fn fn, void *ctx)
{
	struct release_each e = { fn, ctx };

	return store_release_list(dd->store, model, release_each, &e);
}

enum herr firmware_device_may_download(struct datadir *dd, const char *device, const char *release, int *ok)
{
	*ok = 0;
	if (!device || !release || !ca_valid_id(device) || !valid_hex_id(release))
		return HERR_OK;
	return store_release_offered(dd->store, device, release, ok);
}

enum herr firmware_device_report(struct datadir *dd, const char *device, const char *firmware_version,
				 int64_t security_version)
{
	if (!device || !ca_valid_id(device))
		return HERR_NOTFOUND;
	if ((firmware_version && !valid_version(firmware_version)) || security_version < 0 ||
	    security_version > FIRMWARE_SECURITY_MAX)
		return HERR_INVALID;
	return store_device_report(dd->store, device, firmware_version, security_version, (int64_t)time(NULL));
}

/* --- rollouts ----------------------------------------------------------------------------------- */

unsigned firmware_bucket(const char *rollout, const char *device)
{
	unsigned char digest[32];
	char text[160];
	int n = snprintf(text, sizeof(text), "%s:%s", rollout, device);

	if (n < 0 || (size_t)n >= sizeof(text))
		return 100; /* ids are far shorter: such a device is in no cohort */
	mbedtls_sha256_ret((const unsigned char *)text, (size_t)n, digest, 0);
	return (unsigned)((((uint32_t)digest[0] << 24) | ((uint32_t)digest[1] << 16) | ((uint32_t)digest[2] << 8) |
			   (uint32_t)digest[3]) % 100);
}

static enum herr check_spec(const struct firmware_rollout_spec *spec, const char **why)
{
	size_t i;

	if (!spec->release) {
		*why = "a release is needed";
		return HERR_INVALID;
	}
	if (spec->failure_threshold > 100) {
		*why = "the failure threshold must be 0..100 (percent)";
		return HERR_INVALID;
	}
	switch (spec->kind) {
	case FIRMWARE_COHORT_PERCENT:
		if (spec->percent < 1 || spec->percent > 100) {
			*why = "the percent must be 1..100";
			return HERR_INVALID;
		}
		return HERR_OK;
	case FIRMWARE_COHORT_LIST:
		if (!spec->devices || spec->device_count < 1 || spec->device_count > LIST_MAX) {
			*why = "the device list must hold 1..1000 ids";
			return HERR_INVALID;
		}
		for (i = 0; i < spec->device_count; i++) {
			if (!spec->devices[i] || !ca_valid_id(spec->devices[i])) {
				*why = "a device id in the list is not [A-Za-z0-9_-]{1,64}";
				return HERR_INVALID;
			}
		}
		return HERR_OK;
	case FIRMWARE_COHORT_TAG:
		if (!valid_chars(spec->tag, TAG_MAX, TAG_CHARS)) {
			*why = "the tag must match [A-Za-z0-9_.:-]{1,64}";
			return HERR_INVALID;
		}
		return HERR_OK;
	}
	*why = "the cohort must be a percent, a device list or a tag";
	return HERR_INVALID;
}

static const char *cohort_name(enum firmware_cohort kind)
{
	return kind == FIRMWARE_COHORT_PERCENT ? "percent" : kind == FIRMWARE_COHORT_LIST ? "list" : "tag";
}

enum herr firmware_rollout_create(struct datadir *dd, const struct firmware_rollout_spec *spec,
				  const char *actor, struct firmware_rollout *out, const char **why)
{
	const char *why_ignored;
	struct store_release rel;
	struct store_device dev;
	struct store_rollout r;
	char detail[256];
	int64_t now = (int64_t)time(NULL);
	int began = 0;
	enum herr rc;
	size_t i;

	if (!why)
		why = &why_ignored;
	*why = NULL;
	memset(out, 0, sizeof(*out));
	if ((rc = check_spec(spec, why)) != HERR_OK)
		return rc;
	if (!valid_hex_id(spec->release))
		return HERR_NOTFOUND;
	memset(&r, 0, sizeof(r));
	if ((rc = random_id(r.id)) != HERR_OK)
		return rc;
	snprintf(r.release, sizeof(r.release), "%s", spec->release);
	snprintf(r.state, sizeof(r.state), "active");
	snprintf(r.cohort, sizeof(r.cohort), "%s", cohort_name(spec->kind));
	if (spec->kind == FIRMWARE_COHORT_PERCENT)
		r.percent = spec->percent;
	if (spec->kind == FIRMWARE_COHORT_TAG)
		snprintf(r.tag, sizeof(r.tag), "%s", spec->tag);
	r.failure_threshold = spec->failure_threshold;
	r.created_at = r.updated_at = now;

	if ((rc = store_begin(dd->store)) != HERR_OK)
		return rc;
	began = 1;
	if ((rc = store_release_get(dd->store, spec->release, &rel)) != HERR_OK)
		goto out;
	snprintf(r.model, sizeof(r.model), "%s", rel.model);
	for (i = 0; spec->kind == FIRMWARE_COHORT_LIST && i < spec->device_count; i++) {
		rc = store_device_get(dd->store, spec->devices[i], &dev);
		if (rc == HERR_NOTFOUND || (rc == HERR_OK && strcmp(dev.model, rel.model) != 0)) {
			*why = rc == HERR_NOTFOUND ? "a device in the list does not exist"
						   : "a device in the list is not of the release's model";
			rc = HERR_INVALID;
		}
		if (rc != HERR_OK)
			goto out;
	}
	if ((rc = store_rollout_insert(dd->store, &r)) != HERR_OK)
		goto out;
	for (i = 0; spec->kind == FIRMWARE_COHORT_LIST && i < spec->device_count; i++) {
		if ((rc = store_rollout_member_add(dd->store, r.id, spec->devices[i])) != HERR_OK)
			goto out;
	}
	if (spec->kind == FIRMWARE_COHORT_PERCENT)
		snprintf(detail, sizeof(detail), "release %s (%s %s), %u%% of the devices, failure threshold %u%%",
			 rel.id, rel.model, rel.version, spec->percent, spec->failure_threshold);
	else if (spec->kind == FIRMWARE_COHORT_LIST)
		snprintf(detail, sizeof(detail), "release %s (%s %s), %zu listed devices, failure threshold %u%%",
			 rel.id, rel.model, rel.version, spec->device_count, spec->failure_threshold);
	else
		snprintf(detail, sizeof(detail), "release %s (%s %s), devices tagged %s, failure threshold %u%%",
			 rel.id, rel.model, rel.version, spec->tag, spec->failure_threshold);
	if ((rc = store_audit(dd->store, now, actor, "rollout.create", r.id, detail)) != HERR_OK ||
	    (rc = store_rollout_get(dd->store, r.id, &r)) != HERR_OK || (rc = store_commit(dd->store)) != HERR_OK)
		goto out;
	began = 0;
	copy_rollout(&r, out);
out:
	if (began)
		store_rollback(dd->store);
	return rc;
}

/* id may point into out (refreshing a rollout read before): out is written only at the end. */
enum herr firmware_rollout_get(struct datadir *dd, const char *id, struct firmware_rollout *out)
{
	struct store_rollout r;
	enum herr rc = !id || !valid_hex_id(id) ? HERR_NOTFOUND : store_rollout_get(dd->store, id, &r);

	if (rc == HERR_OK)
		copy_rollout(&r, out);
	else
		memset(out, 0, sizeof(*out));
	return rc;
}

struct rollout_each {
	firmware_rollout_fn fn;
	void *ctx;
};

static int rollout_each(void *ctx, const struct store_rollout *s)
{
	struct rollout_each *e = ctx;
	struct firmware_rollout r;

	copy_rollout(s, &r);
	return e->fn(e->ctx, &r);
}

enum herr firmware_rollout_list(struct datadir *dd, firmware_rollout_fn fn, void *ctx)
{
	struct rollout_each e = { fn, ctx };

	return store_rollout_list(dd->store, NULL, rollout_each, &e);
}

/* Pages through a rollout's devices; stopped: the caller's function asked to stop. */
struct device_each {
	firmware_rollout_device_fn fn;
	void *ctx;
	char last[65];
	size_t rows;
	int stopped;
};

static int device_each(void *ctx, const struct store_rollout_device *s)
{
	struct device_each *e = ctx;
	struct firmware_rollout_device d = { .device = s->device, .manifest_version = s->manifest_version,
					     .status = s->status, .at = s->at };

	e->rows++;
	snprintf(e->last, sizeof(e->last), "%s", s->device);
	if (e->fn(e->ctx, &d) != 0) {
		e->stopped = 1;
		return 1;
	}
	return 0;
}

enum herr firmware_rollout_devices(struct datadir *dd, const char *id, firmware_rollout_device_fn fn, void *ctx)
{
	struct device_each e = { .fn = fn, .ctx = ctx };
	struct store_rollout r;
	enum herr rc;

	if (!id || !valid_hex_id(id))
		return HERR_NOTFOUND;
	if ((rc = store_rollout_get(dd->store, id, &r)) != HERR_OK)
		return rc;
	do {
		e.rows = 0;
		rc = store_rollout_devices(dd->store, id, e.last, STORE_PAGE_MAX, device_each, &e);
	} while (rc == HERR_OK && !e.stopped && e.rows == STORE_PAGE_MAX);
	return rc;
}

/* Offered devices that did not finish (no installed, failed or rolled_back ack), a page at a time. */
struct unfinished {
	struct id_page page;
	char last[65];
	size_t rows;
};

static int take_unfinished(void *ctx, const struct store_rollout_device *d)
{
	struct unfinished *u = ctx;

	u->rows++;
	snprintf(u->last, sizeof(u->last), "%s", d->device);
	if (strcmp(d->status, "offered") == 0 || strcmp(d->status, "downloading") == 0)
		return take_id(&u->page, d->device);
	return 0;
}

static enum herr issue_cancel(struct datadir *dd, const struct store_rollout *r, const char *device,
			      const char *actor)
{
	struct manifest_issued done;
	char target[80];
	json_t *fields = json_pack("{s:s, s:s, s:b}", "model", r->model, "rollout", r->id, "cancel", 1);
	enum herr rc;

	if (!fields)
		return HERR_NOMEM;
	snprintf(target, sizeof(target), "device:%s", device);
	rc = manifest_issue(dd, target, "firmware", fields, MANIFEST_DAYS_DEFAULT, actor, 1, &done);
	json_decref(fields);
	return rc;
}

/* Inside a transaction: mark r aborted and send its unfinished devices a cancel. *issued counts
 * the manifests. */
static enum herr abort_in_tx(struct datadir *dd, const struct store_rollout *r, const char *actor,
			     const char *reason, int64_t now, size_t *issued)
{
	struct unfinished u;
	char detail[256];
	size_t i, cancelled = 0;
	enum herr rc;

	if ((rc = store_rollout_set_state(dd->store, r->id, "active|paused", "aborted", reason, now)) != HERR_OK)
		return rc;
	memset(&u, 0, sizeof(u));
	do {
		u.page.n = 0;
		u.rows = 0;
		/* Pages of at most PAGE rows, so every unfinished one of a page fits. */
		if ((rc = store_rollout_devices(dd->store, r->id, u.last, PAGE, take_unfinished, &u)) != HERR_OK)
			return rc;
		for (i = 0; i < u.page.n; i++) {
			if ((rc = issue_cancel(dd, r, u.page.ids[i], actor)) != HERR_OK)
				return rc;
			cancelled++;
		}
	} while (u.rows == PAGE);
	if (issued)
		*issued += cancelled;
	snprintf(detail, sizeof(detail), "%s; %zu device(s) sent a cancel", reason, cancelled);
	return store_audit(dd->store, now, actor, "rollout.abort", r->id, detail);
}

enum herr firmware_rollout_abort(struct datadir *dd, const char *id, const char *actor, const char *reason)
{
	struct store_rollout r;
	char why[128];
	enum herr rc;

	if (!id || !valid_hex_id(id))
		return HERR_NOTFOUND;
	if (reason && *reason)
		snprintf(why, sizeof(why), "%s", reason);
	else
		snprintf(why, sizeof(why), "aborted by %s", actor);
	if ((rc = store_begin(dd->store)) != HERR_OK)
		return rc;
	rc = store_rollout_get(dd->store, id, &r);
	if (rc == HERR_OK && strcmp(r.state, "aborted") == 0)
		rc = HERR_STATE;
	if (rc == HERR_OK)
		rc = abort_in_tx(dd, &r, actor, why, (int64_t)time(NULL), NULL);
	if (rc == HERR_OK)
		rc = store_commit(dd->store);
	if (rc != HERR_OK)
		store_rollback(dd->store);
	return rc;
}

/* pause and resume: one state to another, audited. */
static enum herr move_state(struct datadir *dd, const char *id, const char *from, const char *to,
			    const char *actor, const char *action)
{
	int64_t now = (int64_t)time(NULL);
	enum herr rc;

	if (!id || !valid_hex_id(id))
		return HERR_NOTFOUND;
	if ((rc = store_begin(dd->store)) != HERR_OK)
		return rc;
	if ((rc = store_rollout_set_state(dd->store, id, from, to, NULL, now)) == HERR_OK &&
	    (rc = store_audit(dd->store, now, actor, action, id, NULL)) == HERR_OK)
		rc = store_commit(dd->store);
	if (rc != HERR_OK)
		store_rollback(dd->store);
	return rc;
}

enum herr firmware_rollout_pause(struct datadir *dd, const char *id, const char *actor)
{
	return move_state(dd, id, "active", "paused", actor, "rollout.pause");
}

enum herr firmware_rollout_resume(struct datadir *dd, const char *id, const char *actor)
{
	return move_state(dd, id, "paused", "active", actor, "rollout.resume");
}

enum herr firmware_rollout_widen(struct datadir *dd, const char *id, unsigned percent, const char *actor)
{
	struct store_rollout r;
	char detail[64];
	int64_t now = (int64_t)time(NULL);
	enum herr rc;

	if (!id || !valid_hex_id(id))
		return HERR_NOTFOUND;
	if (percent < 1 || percent > 100)
		return HERR_INVALID;
	if ((rc = store_begin(dd->store)) != HERR_OK)
		return rc;
	if ((rc = store_rollout_get(dd->store, id, &r)) == HERR_OK &&
	    (rc = store_rollout_widen(dd->store, id, percent, now)) == HERR_OK) {
		snprintf(detail, sizeof(detail), "%lld%% -> %u%%", (long long)r.percent, percent);
		rc = store_audit(dd->store, now, actor, "rollout.widen", id, detail);
	}
	if (rc == HERR_OK)
		rc = store_commit(dd->store);
	if (rc != HERR_OK)
		store_rollback(dd->store);
	return rc;
}

/* --- the tick ----------------------------------------------------------------------------------- */

static enum herr offer(struct datadir *dd, const struct store_rollout *r, const struct store_release *rel,
		       const char *device, int64_t now)
{
	struct manifest_issued done;
	char target[80], url[96];
	json_t *fields;
	enum herr rc;

	snprintf(target, sizeof(target), "device:%s", device);
	snprintf(url, sizeof(url), "/api/v1/device/firmware/%s", rel->id);
	fields = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:s}", "model", rel->model, "release", rel->id,
			   "rollout", r->id, "firmware_version", rel->version, "security_version",
			   (json_int_t)rel->security_version, "sha256", rel->sha256, "size", (json_int_t)rel->size,
			   "url", url);
	if (!fields)
		return HERR_NOMEM;
	rc = manifest_issue(dd, target, "firmware", fields, MANIFEST_DAYS_DEFAULT, SYSTEM_ACTOR, 1, &done);
	json_decref(fields);
	return rc == HERR_OK ? store_rollout_offer(dd->store, r->id, device, done.version, now) : rc;
}

/* One transaction of an active rollout's tick: the failure check, then at most OFFERS_PER_TXN
 * offers (and no more than *budget) from the candidates after `after`, which moves on past those
 * looked at. *more is set if it stopped at that cap rather than for want of candidates. */
static enum herr step_rollout(struct datadir *dd, const char *id, int64_t now, size_t *budget, size_t *issued,
			      char after[65], int *more)
{
	struct store_release rel;
	struct store_rollout r;
	struct id_page page;
	char reason[128];
	int64_t offered, failures;
	size_t i, made = 0, cancelled = 0, cap = *budget < OFFERS_PER_TXN ? *budget : OFFERS_PER_TXN;
	enum herr rc;

	*more = 0;
	if ((rc = store_begin(dd->store)) != HERR_OK)
		return rc;
	if ((rc = store_rollout_get(dd->store, id, &r)) != HERR_OK)
		goto out;
	if (strcmp(r.state, "active") != 0) /* changed since it was listed */
		goto out;
	offered = r.offered + r.downloading + r.installed + r.failed + r.rolled_back;
	failures = r.failed + r.rolled_back;
	if (failures >= 1 && failures * 100 > r.failure_threshold * offered) {
		snprintf(reason, sizeof(reason), "failure threshold: %lld of %lld failed > %lld%%", (long long)failures,
			 (long long)offered, (long long)r.failure_threshold);
		log_warn("rollout %s aborted: %s", r.id, reason);
		rc = abort_in_tx(dd, &r, SYSTEM_ACTOR, reason, now, &cancelled);
		goto out;
	}
	if (*budget == 0 || (rc = store_release_get(dd->store, r.release, &rel)) != HERR_OK)
		goto out;
	while (made < cap) {
		page.n = 0;
		if ((rc = store_rollout_candidates(dd->store, r.id, after, PAGE, take_id, &page)) != HERR_OK)
			goto out;
		for (i = 0; i < page.n && made < cap; i++) {
			snprintf(after, 65, "%s", page.ids[i]);
			if (strcmp(r.cohort, "percent") == 0 && firmware_bucket(r.id, page.ids[i]) >= (unsigned)r.percent)
				continue;
			if ((rc = offer(dd, &r, &rel, page.ids[i], now)) != HERR_OK)
				goto out;
			made++;
		}
		if (made == cap)
			*more = 1;
		else if (page.n < PAGE)
			break;
	}
out:
	if (rc == HERR_OK && (rc = store_commit(dd->store)) == HERR_OK) {
		*issued += made + cancelled;
		*budget -= made;
	} else {
		store_rollback(dd->store);
	}
	return rc;
}

/* items (each size bytes, *cap of them) with room for more: 16 at first, then twice as many, up
 * to max, so that an idle server's tick, which finds nothing, allocates nothing. NULL when out of
 * memory (items is left as it was); the caller checks max. */
static void *tick_grow(void *items, size_t *cap, size_t size, size_t max)
{
	size_t want = *cap ? *cap * 2 : 16;
	void *p;

	if (want > max)
		want = max;
	if (!(p = realloc(items, want * size)))
		return NULL;
	*cap = want;
	return p;
}

struct install_row {
	char rollout[33], device[65], version[FIRMWARE_VERSION_MAX + 1];
	int64_t security_version;
};

struct install_page {
	struct install_row *rows;
	size_t n, cap;
	int nomem;
};

static int take_install(void *ctx, const struct store_rollout_install *i)
{
	struct install_page *p = ctx;

	if (p->n == INSTALLS_PER_TICK)
		return 1;
	if (p->n == p->cap) {
		struct install_row *rows = tick_grow(p->rows, &p->cap, sizeof(*rows), INSTALLS_PER_TICK);

		if (!rows) {
			p->nomem = 1;
			return 1;
		}
		p->rows = rows;
	}
	snprintf(p->rows[p->n].rollout, sizeof(p->rows[0].rollout), "%s", i->rollout);
	snprintf(p->rows[p->n].device, sizeof(p->rows[0].device), "%s", i->device);
	snprintf(p->rows[p->n].version, sizeof(p->rows[0].version), "%s", i->version);
	p->rows[p->n].security_version = i->security_version;
	p->n++;
	return 0;
}

/* An "installed" ack makes the release's version and security version the device's. */
static enum herr record_installs(struct datadir *dd, int64_t now)
{
	struct install_page page = { 0 }, *p = &page;
	enum herr rc;
	size_t i;

	/* Nearly every second there is nothing to record: find that out without taking the write
	 * lock, which the endpoint's group commits would wait for. */
	rc = store_rollout_installs_pending(dd->store, 1, take_install, p);
	if (rc == HERR_OK && p->nomem)
		rc = HERR_NOMEM;
	if (rc != HERR_OK || p->n == 0)
		goto out;
	p->n = 0;
	if ((rc = store_begin(dd->store)) != HERR_OK)
		goto out;
	rc = store_rollout_installs_pending(dd->store, INSTALLS_PER_TICK, take_install, p);
	if (rc == HERR_OK && p->nomem)
		rc = HERR_NOMEM;
	for (i = 0; rc == HERR_OK && i < p->n; i++) {
		rc = store_device_report(dd->store, p->rows[i].device, p->rows[i].version,
					 p->rows[i].security_version, now);
		if (rc == HERR_OK)
			rc = store_rollout_install_recorded(dd->store, p->rows[i].rollout, p->rows[i].device, now);
	}
	if (rc == HERR_OK)
		rc = store_commit(dd->store);
	if (rc != HERR_OK)
		store_rollback(dd->store);
out:
	free(p->rows);
	return rc;
}

struct active_list {
	char (*ids)[33];
	size_t n, cap;
	int nomem;
};

static int take_active(void *ctx, const struct store_rollout *r)
{
	struct active_list *l = ctx;

	if (l->n == TICK_ROLLOUTS_MAX)
		return 1;
	if (l->n == l->cap) {
		char (*ids)[33] = tick_grow(l->ids, &l->cap, sizeof(ids[0]), TICK_ROLLOUTS_MAX);

		if (!ids) {
			l->nomem = 1;
			return 1;
		}
		l->ids = ids;
	}
	snprintf(l->ids[l->n++], sizeof(l->ids[0]), "%s", r->id);
	return 0;
}

enum herr firmware_rollout_tick(struct datadir *dd, int64_t now, size_t *offers)
{
	struct active_list l = { 0 };
	size_t budget = FIRMWARE_OFFERS_PER_TICK, issued = 0, i;
	enum herr rc, first;

	if (offers)
		*offers = 0;
	first = record_installs(dd, now);
	rc = store_rollout_list(dd->store, "active", take_active, &l);
	if (rc == HERR_OK && l.nomem)
		rc = HERR_NOMEM;
	if (first == HERR_OK)
		first = rc;
	/* Oldest first: an older rollout is not starved by a newer one. One failing rollout does not
	 * hold up the others. */
	for (i = l.n; rc == HERR_OK && i > 0; i--) {
		char after[65] = "";
		enum herr one;
		int more;

		do
			one = step_rollout(dd, l.ids[i - 1], now, &budget, &issued, after, &more);
		while (one == HERR_OK && more && budget > 0);

		if (one != HERR_OK) {
			log_debug("rollout %s: %s", l.ids[i - 1], herr_str(one)); /* the caller reports the tick */
			if (first == HERR_OK)
				first = one;
		}
	}
	free(l.ids);
	if (offers)
		*offers = issued;
	return first;
}
