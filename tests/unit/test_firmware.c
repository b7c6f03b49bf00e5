/* Unit tests of server/firmware (and the store's release and rollout tables) in a real data
 * directory: adding releases (and what is refused), rollout specs, the percent cohort's stable
 * buckets (computed here independently), the tick's offers as signed manifests in the store, its
 * per-call cap, the security-version and running-version filters, the automatic abort on failures
 * with its cancels, pause/resume/abort, list and tag cohorts, and what devices report. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <mbedtls/sha256.h>

#include "common/fsutil.h"
#include "ota/dsse.h"
#include "server/datadir.h"
#include "server/firmware.h"
#include "server/store.h"
#include "tests/unit/unit.h"

#define ACTOR "cli:test"
#define NOW 1900000000

static struct datadir *dd;

static void dd_setup(void)
{
	struct datadir_init_opts opts = { .actor = "test" };
	char dir[4096];
	int created = 0;

	unit_at(dir, sizeof(dir), "data");
	ck_assert_int_eq(datadir_init(dir, &opts, &created), HERR_OK);
	ck_assert_int_eq(datadir_open(dir, &dd), HERR_OK);
	ck_assert_int_eq(store_model_ensure(dd->store, "heater", NOW), HERR_OK);
	ck_assert_int_eq(store_model_ensure(dd->store, "lamp", NOW), HERR_OK);
}

static void dd_teardown(void)
{
	datadir_close(dd);
	dd = NULL;
}

/* --- helpers ------------------------------------------------------------------------------------ */

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[32];
	size_t i;

	ck_assert_int_eq(mbedtls_sha256_ret(data, len, d, 0), 0);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* An image written where callers write one (DIR/firmware), named name. */
static void stage(const char *name, const char *content, char *path, size_t size)
{
	char dir[PATH_MAX];

	ck_assert_int_eq(firmware_dir(dd, dir, sizeof(dir)), HERR_OK);
	unit_path(path, size, dir, name);
	ck_assert_int_eq(fs_write_file(path, content, strlen(content), 0644, 0), HERR_OK);
}

static enum herr add(const char *model, const char *version, int64_t security, struct firmware_release *out)
{
	char name[32], path[PATH_MAX], sha[65], image[128];
	static unsigned n;

	snprintf(image, sizeof(image), "image of %s %s", model, version);
	snprintf(name, sizeof(name), "upload-%u", n++);
	stage(name, image, path, sizeof(path));
	sha256_hex(image, strlen(image), sha);
	return firmware_release_add(dd, model, version, security, path, sha, strlen(image), ACTOR, out);
}

static void add_ok(const char *model, const char *version, int64_t security, struct firmware_release *out)
{
	ck_assert_int_eq(add(model, version, security, out), HERR_OK);
}

static void device_name(char *buf, size_t size, int i)
{
	snprintf(buf, size, "dev-%03d", i);
}

static void devices(const char *model, int from, int to)
{
	char id[32];
	int i;

	for (i = from; i < to; i++) {
		device_name(id, sizeof(id), i);
		ck_assert_int_eq(store_device_insert(dd->store, id, model, NOW), HERR_OK);
	}
}

static struct firmware_rollout create_percent(const char *release, unsigned percent, unsigned threshold)
{
	struct firmware_rollout_spec spec = { .release = release, .kind = FIRMWARE_COHORT_PERCENT,
					      .percent = percent, .failure_threshold = threshold };
	struct firmware_rollout r;
	const char *why = NULL;

	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_OK);
	return r;
}

static size_t tick(void)
{
	size_t n = 999;

	ck_assert_int_eq(firmware_rollout_tick(dd, NOW, &n), HERR_OK);
	return n;
}

/* A rollout's devices, collected. */
#define SEEN_MAX 512
struct seen {
	char ids[SEEN_MAX][65];
	char status[SEEN_MAX][16];
	int64_t version[SEEN_MAX];
	size_t n;
};

static int collect(void *ctx, const struct firmware_rollout_device *d)
{
	struct seen *s = ctx;

	ck_assert_uint_lt(s->n, SEEN_MAX);
	snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", d->device);
	snprintf(s->status[s->n], sizeof(s->status[0]), "%s", d->status);
	s->version[s->n] = d->manifest_version;
	s->n++;
	return 0;
}

static void offered(const char *rollout, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(firmware_rollout_devices(dd, rollout, collect, s), HERR_OK);
}

static int seen_has(const struct seen *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (strcmp(s->ids[i], id) == 0)
			return (int)i + 1;
	}
	return 0;
}

/* The bucket as the header defines it, computed here rather than trusting firmware_bucket. */
static unsigned bucket(const char *rollout, const char *device)
{
	unsigned char d[32];
	char text[160];

	snprintf(text, sizeof(text), "%s:%s", rollout, device);
	ck_assert_int_eq(mbedtls_sha256_ret((const unsigned char *)text, strlen(text), d, 0), 0);
	return (unsigned)(((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]) % 100);
}

/* The body of the newest firmware manifest addressed to device:<id> (NULL if none); *version. */
struct newest {
	json_t *body;
	int64_t version;
};

static int take_newest(void *ctx, const struct store_manifest *m)
{
	struct newest *n = ctx;
	json_t *env = json_loads(m->envelope, 0, NULL);
	const char *payload = json_string_value(json_object_get(env, "payload"));
	uint8_t *raw = NULL;
	size_t len = 0;

	ck_assert_ptr_nonnull(payload);
	ck_assert_int_eq(dsse_b64_decode(payload, strlen(payload), &raw, &len), HERR_OK);
	n->body = json_loadb((const char *)raw, len, 0, NULL);
	n->version = m->version;
	ck_assert_ptr_nonnull(n->body);
	free(raw);
	json_decref(env);
	return 1;
}

static json_t *newest_manifest(const char *device, int64_t *version)
{
	struct newest n = { NULL, 0 };
	char target[96];
	enum herr rc;

	snprintf(target, sizeof(target), "device:%s", device);
	rc = store_manifest_latest_target(dd->store, target, "firmware", take_newest, &n);
	ck_assert(rc == HERR_OK || rc == HERR_NOTFOUND);
	if (version)
		*version = n.version;
	return n.body;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	ck_assert_msg(v != NULL, "no string \"%s\"", key);
	return v;
}

static void ack(const char *device, int64_t version, const char *status)
{
	ck_assert_int_eq(store_manifest_ack(dd->store, device, "firmware", version, status, NOW + 1), HERR_OK);
}

static int audited(const char *action, const char *actor, const char *target, const char *detail_part);

/* Entries of a directory, but . and .. */
static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* --- releases ----------------------------------------------------------------------------------- */

START_TEST(test_release_add)
{
	struct firmware_release r, g;
	char path[PATH_MAX], sha[65], tmp[PATH_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	struct stat st;

	stage("upload", "the image", tmp, sizeof(tmp));
	sha256_hex("the image", 9, sha);
	ck_assert_int_eq(firmware_release_add(dd, "heater", "1.2.0+b7", 3, tmp, sha, 9, ACTOR, &r), HERR_OK);
	ck_assert_uint_eq(strlen(r.id), 32);
	ck_assert_str_eq(r.model, "heater");
	ck_assert_str_eq(r.version, "1.2.0+b7");
	ck_assert_int_eq(r.security_version, 3);
	ck_assert_str_eq(r.sha256, sha);
	ck_assert_uint_eq(r.size, 9);
	ck_assert_int_eq(fs_exists(tmp), 0);

	ck_assert_int_eq(firmware_release_path(dd, r.id, path, sizeof(path)), HERR_OK);
	ck_assert_ptr_nonnull(strstr(path, "/firmware/"));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	unit_read_file(path, 1024, &data, &len);
	ck_assert_uint_eq(len, 9);
	ck_assert_mem_eq(data, "the image", 9);
	free(data);
	unit_path(tmp, sizeof(tmp), dd->path, FIRMWARE_DIR);
	ck_assert_int_eq(stat(tmp, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);

	ck_assert_int_eq(firmware_release_get(dd, r.id, &g), HERR_OK);
	ck_assert_mem_eq(&g, &r, sizeof(r));
	ck_assert_int_eq(firmware_release_get(dd, "0123456789abcdef0123456789abcdef", &g), HERR_NOTFOUND);
	ck_assert_int_eq(firmware_release_get(dd, "../../etc/passwd", &g), HERR_NOTFOUND);
	ck_assert_int_eq(firmware_release_path(dd, "../x", path, sizeof(path)), HERR_INVALID);
	ck_assert(audited("firmware.add", ACTOR, r.id, "version 1.2.0+b7"));
	/* The same version of another model is another release. */
	add_ok("lamp", "1.2.0+b7", 0, &g);
}
END_TEST

static int count_release(void *ctx, const struct firmware_release *r)
{
	(void)r;
	(*(int *)ctx)++;
	return 0;
}

static int first_release(void *ctx, const struct firmware_release *r)
{
	snprintf(ctx, 65, "%s", r->version);
	return 1;
}

START_TEST(test_release_list)
{
	struct firmware_release r;
	char first[65] = "";
	int n = 0;

	add_ok("heater", "1.0", 0, &r);
	add_ok("heater", "1.1", 0, &r);
	add_ok("lamp", "7", 0, &r);
	ck_assert_int_eq(firmware_release_list(dd, NULL, count_release, &n), HERR_OK);
	ck_assert_int_eq(n, 3);
	n = 0;
	ck_assert_int_eq(firmware_release_list(dd, "heater", count_release, &n), HERR_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(firmware_release_list(dd, "heater", first_release, first), HERR_OK);
	ck_assert_str_eq(first, "1.1"); /* newest first */
}
END_TEST

START_TEST(test_release_refused)
{
	static const char *const bad_versions[] = { "", "1.0 beta", "../1", "1/2", "v1;rm", "é",
		"12345678901234567890123456789012345678901234567890123456789012345" };
	struct firmware_release r;
	char tmp[PATH_MAX], sha[65], other[65];
	size_t i;
	int n = 0;

	stage("upload", "the image", tmp, sizeof(tmp));
	sha256_hex("the image", 9, sha);
	sha256_hex("another image", 13, other);
	/* The file is not what the caller said: refused, left for the caller. */
	ck_assert_int_eq(firmware_release_add(dd, "heater", "1.0", 0, tmp, other, 9, ACTOR, &r), HERR_INVALID);
	ck_assert_int_eq(firmware_release_add(dd, "heater", "1.0", 0, tmp, sha, 8, ACTOR, &r), HERR_INVALID);
	ck_assert_int_eq(firmware_release_add(dd, "heater", "1.0", 0, tmp, sha, 10, ACTOR, &r), HERR_INVALID);
	ck_assert_int_eq(firmware_release_add(dd, "heater", "1.0", 0, tmp, "xyz", 9, ACTOR, &r), HERR_INVALID);
	ck_assert_int_eq(fs_exists(tmp), 1);
	/* Unknown model, bad versions, negative or too large security versions. */
	ck_assert_int_eq(firmware_release_add(dd, "toaster", "1.0", 0, tmp, sha, 9, ACTOR, &r), HERR_NOTFOUND);
	ck_assert_int_eq(firmware_release_add(dd, "../heater", "1.0", 0, tmp, sha, 9, ACTOR, &r), HERR_NOTFOUND);
	for (i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++)
		ck_assert_msg(firmware_release_add(dd, "heater", bad_versions[i], 0, tmp, sha, 9, ACTOR, &r) ==
			      HERR_INVALID, "version '%s' accepted", bad_versions[i]);
	ck_assert_int_eq(firmware_release_add(dd, "heater", "1.0", -1, tmp, sha, 9, ACTOR, &r), HERR_INVALID);
	ck_assert_int_eq(firmware_release_add(dd, "heater", "1.0", (int64_t)FIRMWARE_SECURITY_MAX + 1, tmp, sha, 9,
					      ACTOR, &r), HERR_INVALID);
	ck_assert_int_eq(fs_exists(tmp), 1);
	ck_assert_int_eq(firmware_release_list(dd, NULL, count_release, &n), HERR_OK);
	ck_assert_int_eq(n, 0);
	/* Upper case hex is the same digest. */
	for (i = 0; i < 64; i++)
		other[i] = (char)(sha[i] >= 'a' ? sha[i] - 'a' + 'A' : sha[i]);
	ck_assert_int_eq(firmware_release_add(dd, "heater", "1.0", 0, tmp, other, 9, ACTOR, &r), HERR_OK);
	ck_assert_str_eq(r.sha256, sha);
	/* A version once per model. */
	ck_assert_int_eq(add("heater", "1.0", 1, &r), HERR_EXISTS);
	n = 0;
	ck_assert_int_eq(firmware_release_list(dd, NULL, count_release, &n), HERR_OK);
	ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(test_stage)
{
	struct firmware_release r;
	char src[PATH_MAX], tmp[PATH_MAX], sha[65], want[65];
	uint64_t size = 0;
	struct stat st;
	int fd;

	unit_at(src, sizeof(src), "image.bin");
	ck_assert_int_eq(fs_write_file(src, "0123456789", 10, 0644, 0), HERR_OK);
	fd = open(src, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(firmware_stage(dd, fd, tmp, sizeof(tmp), sha, &size), HERR_OK);
	close(fd);
	sha256_hex("0123456789", 10, want);
	ck_assert_str_eq(sha, want);
	ck_assert_uint_eq(size, 10);
	ck_assert_int_eq(stat(tmp, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(firmware_release_add(dd, "heater", "2.0", 0, tmp, sha, size, ACTOR, &r), HERR_OK);
	ck_assert_int_eq(fs_exists(tmp), 0);

	/* An empty image is refused and leaves nothing behind. */
	ck_assert_int_eq(fs_write_file(src, "", 0, 0644, 0), HERR_OK);
	fd = open(src, O_RDONLY);
	ck_assert_int_eq(firmware_stage(dd, fd, tmp, sizeof(tmp), sha, &size), HERR_INVALID);
	close(fd);
	unit_path(src, sizeof(src), dd->path, FIRMWARE_DIR);
	ck_assert_int_eq(entries(src), 1); /* only the release's image */
}
END_TEST

/* --- rollouts: creation ------------------------------------------------------------------------- */

static int count_rollout(void *ctx, const struct firmware_rollout *r)
{
	(void)r;
	(*(int *)ctx)++;
	return 0;
}

START_TEST(test_rollout_create_refused)
{
	static const char *const other_model[] = { "dev-000", "lamp-1" };
	static const char *const unknown[] = { "dev-000", "nobody" };
	static const char *const bad_id[] = { "dev 0" };
	struct firmware_rollout_spec spec;
	struct firmware_release rel;
	struct firmware_rollout r;
	const char *why = NULL;
	int n = 0;

	devices("heater", 0, 3);
	ck_assert_int_eq(store_device_insert(dd->store, "lamp-1", "lamp", NOW), HERR_OK);
	add_ok("heater", "1.0", 0, &rel);

	spec = (struct firmware_rollout_spec){ .release = "0123456789abcdef0123456789abcdef",
					       .kind = FIRMWARE_COHORT_PERCENT, .percent = 10 };
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_NOTFOUND);
	spec.release = rel.id;
	spec.percent = 0;
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);
	ck_assert_ptr_nonnull(why);
	spec.percent = 101;
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);
	spec.percent = 10;
	spec.failure_threshold = 101;
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "threshold"));

	spec = (struct firmware_rollout_spec){ .release = rel.id, .kind = FIRMWARE_COHORT_LIST };
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);
	spec.devices = other_model;
	spec.device_count = 2;
	why = NULL;
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "model"));
	spec.devices = unknown;
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "does not exist"));
	spec.devices = bad_id;
	spec.device_count = 1;
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);
	spec.device_count = 1001;
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);

	spec = (struct firmware_rollout_spec){ .release = rel.id, .kind = FIRMWARE_COHORT_TAG, .tag = "" };
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);
	spec.tag = "beta group";
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);
	spec.tag = NULL;
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);
	spec = (struct firmware_rollout_spec){ .release = rel.id, .kind = (enum firmware_cohort)7, .percent = 5 };
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_INVALID);

	/* Nothing was recorded by the refusals. */
	ck_assert_int_eq(firmware_rollout_list(dd, count_rollout, &n), HERR_OK);
	ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(test_one_live_rollout_per_model)
{
	struct firmware_release rel, rel2, lamp;
	struct firmware_rollout a, b, c;
	struct firmware_rollout_spec spec;
	const char *why = NULL;
	int n = 0;

	add_ok("heater", "1.0", 0, &rel);
	add_ok("heater", "1.1", 0, &rel2);
	add_ok("lamp", "1.0", 0, &lamp);
	a = create_percent(rel.id, 10, 10);
	ck_assert_str_eq(a.state, "active");
	ck_assert_str_eq(a.cohort, "percent");
	ck_assert_str_eq(a.model, "heater");
	ck_assert_uint_eq(a.percent, 10);
	ck_assert(audited("rollout.create", ACTOR, a.id, rel.id));

	spec = (struct firmware_rollout_spec){ .release = rel2.id, .kind = FIRMWARE_COHORT_PERCENT, .percent = 5 };
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &b, &why), HERR_STATE);
	ck_assert_int_eq(firmware_rollout_pause(dd, a.id, ACTOR), HERR_OK);
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &b, &why), HERR_STATE);
	/* Another model is independent. */
	c = create_percent(lamp.id, 50, 10);
	ck_assert_str_eq(c.model, "lamp");
	/* Once aborted, the model is free again. */
	ck_assert_int_eq(firmware_rollout_abort(dd, a.id, ACTOR, "superseded"), HERR_OK);
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &b, &why), HERR_OK);
	ck_assert_int_eq(firmware_rollout_get(dd, a.id, &a), HERR_OK);
	ck_assert_str_eq(a.state, "aborted");
	ck_assert_str_eq(a.abort_reason, "superseded");
	ck_assert_int_eq(firmware_rollout_list(dd, count_rollout, &n), HERR_OK);
	ck_assert_int_eq(n, 3);
}
END_TEST

/* --- rollouts: the tick ------------------------------------------------------------------------- */

static size_t tick_until_quiet(void)
{
	size_t total = 0, n;
	int rounds = 0;

	while ((n = tick()) > 0) {
		total += n;
		ck_assert_int_lt(++rounds, 100);
	}
	return total;
}

START_TEST(test_percent_stable_and_widen)
{
	struct firmware_release rel;
	struct firmware_rollout r;
	struct seen s10, s50;
	char id[32];
	size_t want10 = 0, want50 = 0;
	int i;

	devices("heater", 0, 200);
	devices("lamp", 200, 210);
	add_ok("heater", "2.0", 0, &rel);
	r = create_percent(rel.id, 10, 100);
	tick_until_quiet();
	offered(r.id, &s10);
	for (i = 0; i < 210; i++) {
		device_name(id, sizeof(id), i);
		ck_assert_uint_eq(firmware_bucket(r.id, id), bucket(r.id, id));
		if (i < 200 && bucket(r.id, id) < 10)
			want10++;
		if (i < 200 && bucket(r.id, id) < 50)
			want50++;
		/* In the cohort exactly when the bucket says so; never another model's device. */
		ck_assert_int_eq(seen_has(&s10, id) != 0, i < 200 && bucket(r.id, id) < 10);
	}
	ck_assert_uint_gt(want10, 0);
	ck_assert_uint_eq(s10.n, want10);

	/* Widening adds devices and keeps the ones offered (with their manifests). */
	ck_assert_int_eq(firmware_rollout_widen(dd, r.id, 5, ACTOR), HERR_INVALID);
	ck_assert_int_eq(firmware_rollout_widen(dd, r.id, 10, ACTOR), HERR_INVALID);
	ck_assert_int_eq(firmware_rollout_widen(dd, r.id, 101, ACTOR), HERR_INVALID);
	ck_assert_int_eq(firmware_rollout_widen(dd, "0123456789abcdef0123456789abcdef", 50, ACTOR), HERR_NOTFOUND);
	ck_assert_int_eq(firmware_rollout_widen(dd, r.id, 50, ACTOR), HERR_OK);
	ck_assert(audited("rollout.widen", ACTOR, r.id, "10% -> 50%"));
	tick_until_quiet();
	offered(r.id, &s50);
	ck_assert_uint_eq(s50.n, want50);
	for (i = 0; i < (int)s10.n; i++) {
		int at = seen_has(&s50, s10.ids[i]);

		ck_assert_int_ne(at, 0);
		ck_assert_int_eq(s50.version[at - 1], s10.version[i]);
	}
	for (i = 0; i < (int)s50.n; i++)
		ck_assert_uint_lt(bucket(r.id, s50.ids[i]), 50);
	ck_assert_int_eq(firmware_rollout_get(dd, r.id, &r), HERR_OK);
	ck_assert_uint_eq(r.percent, 50);
	ck_assert_uint_eq(r.offered, want50);
	/* Another rollout id puts the devices in other buckets. */
	device_name(id, sizeof(id), 0);
	for (i = 1; i < 200 && bucket(r.id, id) == bucket("ffffffffffffffffffffffffffffffff", id); i++)
		device_name(id, sizeof(id), i);
	ck_assert_int_lt(i, 200);
}
END_TEST

START_TEST(test_tick_cap_and_manifests)
{
	struct firmware_release rel;
	struct firmware_rollout r;
	struct seen s;
	size_t i;

	devices("heater", 0, 100);
	add_ok("heater", "3.1.4", 7, &rel);
	r = create_percent(rel.id, 100, 10);
	ck_assert_uint_eq(tick(), FIRMWARE_OFFERS_PER_TICK);
	offered(r.id, &s);
	ck_assert_uint_eq(s.n, FIRMWARE_OFFERS_PER_TICK);
	for (i = 0; i < s.n; i++) {
		char url[96];
		int64_t version = 0;
		json_t *body = newest_manifest(s.ids[i], &version);

		ck_assert_ptr_nonnull(body);
		ck_assert_int_eq(version, s.version[i]);
		ck_assert_str_eq(s.status[i], "offered");
		ck_assert_str_eq(jstr(body, "type"), "firmware");
		ck_assert_str_eq(jstr(body, "device"), s.ids[i]);
		ck_assert_str_eq(jstr(body, "model"), "heater");
		ck_assert_str_eq(jstr(body, "release"), rel.id);
		ck_assert_str_eq(jstr(body, "rollout"), r.id);
		ck_assert_str_eq(jstr(body, "firmware_version"), "3.1.4");
		ck_assert_str_eq(jstr(body, "sha256"), rel.sha256);
		ck_assert_int_eq(json_integer_value(json_object_get(body, "security_version")), 7);
		ck_assert_int_eq(json_integer_value(json_object_get(body, "size")), (json_int_t)rel.size);
		snprintf(url, sizeof(url), "/api/v1/device/firmware/%s", rel.id);
		ck_assert_str_eq(jstr(body, "url"), url);
		ck_assert_ptr_null(json_object_get(body, "cancel"));
		json_decref(body);
	}
	ck_assert_uint_eq(tick(), 100 - FIRMWARE_OFFERS_PER_TICK);
	ck_assert_uint_eq(tick(), 0);
	offered(r.id, &s);
	ck_assert_uint_eq(s.n, 100);
	ck_assert(audited("manifest.issue", "system", "device:dev-000", "firmware"));
}
END_TEST

START_TEST(test_security_and_running_version)
{
	struct store_device_firmware f;
	struct firmware_release rel;
	struct firmware_rollout r;
	struct seen s;
	int ok = -1;

	devices("heater", 0, 4);
	add_ok("heater", "5.0", 3, &rel);
	ck_assert_int_eq(firmware_device_report(dd, "dev-000", "4.9", 4), HERR_OK);   /* newer security */
	ck_assert_int_eq(firmware_device_report(dd, "dev-001", "5.0", 3), HERR_OK);   /* runs it already */
	ck_assert_int_eq(firmware_device_report(dd, "dev-002", "4.0", 3), HERR_OK);   /* offered */
	/* dev-003 never reported: security 0, offered. */
	/* Security never goes down; a NULL version leaves the version. */
	ck_assert_int_eq(firmware_device_report(dd, "dev-000", NULL, 1), HERR_OK);
	ck_assert_int_eq(store_device_firmware(dd->store, "dev-000", &f), HERR_OK);
	ck_assert_str_eq(f.firmware_version, "4.9");
	ck_assert_int_eq(f.security_version, 4);
	ck_assert_int_gt(f.reported_at, 0);
	ck_assert_int_eq(firmware_device_report(dd, "nobody", "1", 1), HERR_NOTFOUND);
	ck_assert_int_eq(firmware_device_report(dd, "dev-000", "bad version", 1), HERR_INVALID);
	ck_assert_int_eq(firmware_device_report(dd, "dev-000", "1", -1), HERR_INVALID);

	r = create_percent(rel.id, 100, 10);
	tick_until_quiet();
	offered(r.id, &s);
	ck_assert_uint_eq(s.n, 2);
	ck_assert(!seen_has(&s, "dev-000"));
	ck_assert(!seen_has(&s, "dev-001"));
	ck_assert(seen_has(&s, "dev-002"));
	ck_assert(seen_has(&s, "dev-003"));
	ck_assert_ptr_null(newest_manifest("dev-000", NULL));

	ck_assert_int_eq(firmware_device_may_download(dd, "dev-002", rel.id, &ok), HERR_OK);
	ck_assert_int_eq(ok, 1);
	ck_assert_int_eq(firmware_device_may_download(dd, "dev-000", rel.id, &ok), HERR_OK);
	ck_assert_int_eq(ok, 0);
	ck_assert_int_eq(firmware_device_may_download(dd, "dev-002", "0123456789abcdef0123456789abcdef", &ok),
			 HERR_OK);
	ck_assert_int_eq(ok, 0);

	/* A device that reports a newer security version later is not offered by a widened cohort
	 * either: the broker-side report, in a transaction as the broker does it. */
	ck_assert_int_eq(store_begin(dd->store), HERR_OK);
	ck_assert_int_eq(store_device_report(dd->store, "dev-001", "4.0", 9, NOW), HERR_OK);
	ck_assert_int_eq(store_device_report(dd->store, "nobody", "4.0", 9, NOW), HERR_NOTFOUND);
	ck_assert_int_eq(store_commit(dd->store), HERR_OK);
	ck_assert_uint_eq(tick(), 0);
}
END_TEST

START_TEST(test_statuses_and_installs)
{
	struct store_device_firmware f;
	struct firmware_release rel;
	struct firmware_rollout r;
	struct seen s;
	int i;

	devices("heater", 0, 6);
	ck_assert_int_eq(firmware_device_report(dd, "dev-000", "0.9", 1), HERR_OK);
	add_ok("heater", "1.0", 2, &rel);
	r = create_percent(rel.id, 100, 100);
	ck_assert_uint_eq(tick(), 6);
	offered(r.id, &s);
	ack(s.ids[0], s.version[0], "installed");
	ack(s.ids[1], s.version[1], "downloading");
	ack(s.ids[2], s.version[2], "failed");
	ack(s.ids[3], s.version[3], "rolled_back");
	ack(s.ids[4], s.version[4], "received");
	/* An ack of another version is not this offer's. */
	ack(s.ids[5], s.version[5] + 1000, "installed");
	ck_assert_int_eq(firmware_rollout_get(dd, r.id, &r), HERR_OK);
	ck_assert_uint_eq(r.offered, 2);
	ck_assert_uint_eq(r.downloading, 1);
	ck_assert_uint_eq(r.installed, 1);
	ck_assert_uint_eq(r.failed, 1);
	ck_assert_uint_eq(r.rolled_back, 1);
	offered(r.id, &s);
	ck_assert_str_eq(s.status[0], "installed");
	ck_assert_str_eq(s.status[1], "downloading");
	ck_assert_str_eq(s.status[2], "failed");
	ck_assert_str_eq(s.status[3], "rolled_back");
	ck_assert_str_eq(s.status[4], "offered");
	ck_assert_str_eq(s.status[5], "offered");

	/* The tick records the installation as the device's firmware (security only up). */
	ck_assert_uint_eq(tick(), 0);
	ck_assert_int_eq(store_device_firmware(dd->store, s.ids[0], &f), HERR_OK);
	ck_assert_str_eq(f.firmware_version, "1.0");
	ck_assert_int_eq(f.security_version, 2);
	for (i = 1; i < 6; i++) {
		ck_assert_int_eq(store_device_firmware(dd->store, s.ids[i], &f), HERR_OK);
		ck_assert_str_ne(f.firmware_version, "1.0");
	}
	/* Recorded once: a later report of the device stands. */
	ck_assert_int_eq(firmware_device_report(dd, s.ids[0], "0.9", 0), HERR_OK);
	ck_assert_uint_eq(tick(), 0);
	ck_assert_int_eq(store_device_firmware(dd->store, s.ids[0], &f), HERR_OK);
	ck_assert_str_eq(f.firmware_version, "0.9");
	ck_assert_int_eq(f.security_version, 2);
}
END_TEST

/* The tick's lists start empty and grow (an idle tick allocates nothing for them): more installations
 * than one tick records, and more live rollouts than the lists' first 16, are all handled. */
START_TEST(test_tick_lists_grow)
{
	struct store_device_firmware f;
	struct firmware_release rel;
	struct firmware_rollout r;
	struct seen s;
	char model[16];
	size_t i, recorded = 0;

	devices("heater", 0, 300);
	add_ok("heater", "2.0", 1, &rel);
	r = create_percent(rel.id, 100, 100);
	ck_assert_uint_eq(tick_until_quiet(), 300);
	offered(r.id, &s);
	ck_assert_uint_eq(s.n, 300);
	for (i = 0; i < s.n; i++)
		ack(s.ids[i], s.version[i], "installed");
	ck_assert_uint_eq(tick(), 0);
	for (i = 0; i < s.n; i++) {
		ck_assert_int_eq(store_device_firmware(dd->store, s.ids[i], &f), HERR_OK);
		recorded += strcmp(f.firmware_version, "2.0") == 0;
	}
	ck_assert_uint_gt(recorded, 16);
	ck_assert_uint_eq(tick(), 0);
	for (i = 0; i < s.n; i++) {
		ck_assert_int_eq(store_device_firmware(dd->store, s.ids[i], &f), HERR_OK);
		ck_assert_str_eq(f.firmware_version, "2.0");
	}

	/* Twenty models with a live rollout each, two devices each: one tick offers all forty. */
	for (i = 0; i < 20; i++) {
		snprintf(model, sizeof(model), "m%02zu", i);
		ck_assert_int_eq(store_model_ensure(dd->store, model, NOW), HERR_OK);
		devices(model, 1000 + 2 * (int)i, 1002 + 2 * (int)i);
		add_ok(model, "1.0", 1, &rel);
		(void)create_percent(rel.id, 100, 100);
	}
	ck_assert_uint_eq(tick(), 40);
	ck_assert_uint_eq(tick(), 0);
}
END_TEST

START_TEST(test_failure_threshold_abort)
{
	struct firmware_release rel;
	struct firmware_rollout r;
	struct seen s;
	size_t i;

	devices("heater", 0, 10);
	add_ok("heater", "1.0", 0, &rel);
	r = create_percent(rel.id, 100, 20);
	ck_assert_uint_eq(tick(), 10);
	offered(r.id, &s);
	ck_assert_uint_eq(s.n, 10);
	ack(s.ids[0], s.version[0], "failed");
	ack(s.ids[1], s.version[1], "rolled_back");
	ack(s.ids[2], s.version[2], "installed");
	ack(s.ids[3], s.version[3], "downloading");
	/* 2 of 10 is not above 20 %. */
	ck_assert_uint_eq(tick(), 0);
	ck_assert_int_eq(firmware_rollout_get(dd, r.id, &r), HERR_OK);
	ck_assert_str_eq(r.state, "active");
	/* 3 of 10 is: aborted, and the 6 unfinished (offered or downloading) get a cancel. */
	ack(s.ids[4], s.version[4], "failed");
	ck_assert_uint_eq(tick(), 6);
	ck_assert_int_eq(firmware_rollout_get(dd, r.id, &r), HERR_OK);
	ck_assert_str_eq(r.state, "aborted");
	ck_assert_str_eq(r.abort_reason, "failure threshold: 3 of 10 failed > 20%");
	ck_assert(audited("rollout.abort", "system", r.id, "failure threshold: 3 of 10 failed > 20%"));
	for (i = 0; i < s.n; i++) {
		int64_t version = 0;
		json_t *body = newest_manifest(s.ids[i], &version);
		int finished = i == 0 || i == 1 || i == 2 || i == 4;

		ck_assert_ptr_nonnull(body);
		if (finished) {
			ck_assert_int_eq(version, s.version[i]);
			ck_assert_ptr_null(json_object_get(body, "cancel"));
		} else {
			ck_assert_int_gt(version, s.version[i]);
			ck_assert(json_is_true(json_object_get(body, "cancel")));
			ck_assert_str_eq(jstr(body, "rollout"), r.id);
			ck_assert_str_eq(jstr(body, "model"), "heater");
			ck_assert_ptr_null(json_object_get(body, "release"));
		}
		json_decref(body);
	}
	/* Nothing more happens to it. */
	ck_assert_uint_eq(tick(), 0);
	ck_assert_int_eq(firmware_rollout_resume(dd, r.id, ACTOR), HERR_STATE);
	ck_assert_int_eq(firmware_rollout_abort(dd, r.id, ACTOR, NULL), HERR_STATE);
}
END_TEST

START_TEST(test_threshold_zero)
{
	struct firmware_release rel;
	struct firmware_rollout r;
	struct seen s;

	devices("heater", 0, 3);
	add_ok("heater", "1.0", 0, &rel);
	r = create_percent(rel.id, 100, 0);
	ck_assert_uint_eq(tick(), 3);
	offered(r.id, &s);
	ack(s.ids[0], s.version[0], "installed");
	ck_assert_uint_eq(tick(), 0); /* no failure: nothing to evaluate */
	ack(s.ids[1], s.version[1], "failed");
	ck_assert_uint_eq(tick(), 1); /* the one unfinished device's cancel */
	ck_assert_int_eq(firmware_rollout_get(dd, r.id, &r), HERR_OK);
	ck_assert_str_eq(r.state, "aborted");
}
END_TEST

START_TEST(test_pause_resume_abort)
{
	struct firmware_release rel;
	struct firmware_rollout r;
	struct seen s;

	devices("heater", 0, 100);
	add_ok("heater", "1.0", 0, &rel);
	r = create_percent(rel.id, 100, 10);
	ck_assert_uint_eq(tick(), FIRMWARE_OFFERS_PER_TICK);
	ck_assert_int_eq(firmware_rollout_pause(dd, r.id, ACTOR), HERR_OK);
	ck_assert(audited("rollout.pause", ACTOR, r.id, NULL));
	ck_assert_int_eq(firmware_rollout_pause(dd, r.id, ACTOR), HERR_STATE);
	ck_assert_uint_eq(tick(), 0);
	ck_assert_uint_eq(tick(), 0);
	offered(r.id, &s);
	ck_assert_uint_eq(s.n, FIRMWARE_OFFERS_PER_TICK);
	ck_assert_int_eq(firmware_rollout_resume(dd, r.id, ACTOR), HERR_OK);
	ck_assert(audited("rollout.resume", ACTOR, r.id, NULL));
	ck_assert_int_eq(firmware_rollout_resume(dd, r.id, ACTOR), HERR_STATE);
	ck_assert_uint_eq(tick(), 100 - FIRMWARE_OFFERS_PER_TICK);
	ck_assert_int_eq(firmware_rollout_pause(dd, "0123456789abcdef0123456789abcdef", ACTOR), HERR_NOTFOUND);
	ck_assert_int_eq(firmware_rollout_resume(dd, "nonsense", ACTOR), HERR_NOTFOUND);
	ck_assert_int_eq(firmware_rollout_abort(dd, "0123456789abcdef0123456789abcdef", ACTOR, NULL), HERR_NOTFOUND);

	/* A paused rollout can be aborted; every device (none finished) gets a cancel. */
	ck_assert_int_eq(firmware_rollout_pause(dd, r.id, ACTOR), HERR_OK);
	ck_assert_int_eq(firmware_rollout_abort(dd, r.id, ACTOR, NULL), HERR_OK);
	ck_assert_int_eq(firmware_rollout_get(dd, r.id, &r), HERR_OK);
	ck_assert_str_eq(r.state, "aborted");
	ck_assert_str_eq(r.abort_reason, "aborted by " ACTOR);
	ck_assert(audited("rollout.abort", ACTOR, r.id, "100 device(s) sent a cancel"));
	ck_assert_int_eq(firmware_rollout_pause(dd, r.id, ACTOR), HERR_STATE);
	ck_assert_int_eq(firmware_rollout_widen(dd, r.id, 100, ACTOR), HERR_STATE);
}
END_TEST

START_TEST(test_list_cohort)
{
	static const char *const listed[] = { "dev-002", "dev-005", "dev-007", "dev-005" };
	struct firmware_rollout_spec spec;
	struct firmware_release rel;
	struct firmware_rollout r;
	const char *why = NULL;
	struct seen s;
	size_t i;

	devices("heater", 0, 10);
	add_ok("heater", "1.0", 0, &rel);
	/* A device named twice is one member. */
	spec = (struct firmware_rollout_spec){ .release = rel.id, .kind = FIRMWARE_COHORT_LIST, .devices = listed,
					       .device_count = 4, .failure_threshold = 10 };
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_OK);
	ck_assert_str_eq(r.cohort, "list");
	ck_assert_int_eq(firmware_rollout_widen(dd, r.id, 50, ACTOR), HERR_INVALID);
	ck_assert_uint_eq(tick(), 3);
	offered(r.id, &s);
	ck_assert_uint_eq(s.n, 3);
	for (i = 0; i < 3; i++)
		ck_assert(seen_has(&s, listed[i]));
	ck_assert_uint_eq(tick(), 0);
}
END_TEST

START_TEST(test_tag_cohort)
{
	static const char *const beta[] = { "beta" };
	static const char *const other[] = { "alpha", "beta-x" };
	struct firmware_rollout_spec spec;
	struct firmware_release rel;
	struct firmware_rollout r;
	const char *why = NULL;
	struct seen s;

	devices("heater", 0, 10);
	ck_assert_int_eq(store_device_insert(dd->store, "lamp-1", "lamp", NOW), HERR_OK);
	ck_assert_int_eq(store_device_set_tags(dd->store, "dev-001", beta, 1), HERR_OK);
	ck_assert_int_eq(store_device_set_tags(dd->store, "dev-008", beta, 1), HERR_OK);
	ck_assert_int_eq(store_device_set_tags(dd->store, "dev-003", other, 2), HERR_OK);
	ck_assert_int_eq(store_device_set_tags(dd->store, "lamp-1", beta, 1), HERR_OK);
	add_ok("heater", "1.0", 0, &rel);
	spec = (struct firmware_rollout_spec){ .release = rel.id, .kind = FIRMWARE_COHORT_TAG, .tag = "beta",
					       .failure_threshold = 10 };
	ck_assert_int_eq(firmware_rollout_create(dd, &spec, ACTOR, &r, &why), HERR_OK);
	ck_assert_str_eq(r.cohort, "tag");
	ck_assert_str_eq(r.tag, "beta");
	ck_assert_uint_eq(tick(), 2);
	offered(r.id, &s);
	ck_assert_uint_eq(s.n, 2);
	ck_assert(seen_has(&s, "dev-001"));
	ck_assert(seen_has(&s, "dev-008"));
	/* A device tagged later joins on the next tick. */
	ck_assert_int_eq(store_device_set_tags(dd->store, "dev-004", beta, 1), HERR_OK);
	ck_assert_uint_eq(tick(), 1);
	ck_assert_uint_eq(tick(), 0);
}
END_TEST

/* A revoked device is not offered anything. */
START_TEST(test_inactive_not_offered)
{
	struct firmware_release rel;
	struct firmware_rollout r;
	int certs = 0;

	devices("heater", 0, 3);
	ck_assert_int_eq(store_device_revoke(dd->store, "dev-001", NOW, &certs), HERR_OK);
	add_ok("heater", "1.0", 0, &rel);
	r = create_percent(rel.id, 100, 10);
	ck_assert_uint_eq(tick(), 2);
	ck_assert_ptr_null(newest_manifest("dev-001", NULL));
	(void)r;
}
END_TEST

/* --- audit -------------------------------------------------------------------------------------- */

struct audit_find {
	const char *action, *actor, *target, *detail;
	int found;
};

static int find_audit(void *ctx, const struct store_audit_row *row)
{
	struct audit_find *f = ctx;

	if (strcmp(row->action, f->action) == 0 && strcmp(row->actor, f->actor) == 0 &&
	    (!f->target || (row->target && strcmp(row->target, f->target) == 0)) &&
	    (!f->detail || (row->detail && strstr(row->detail, f->detail)))) {
		f->found = 1;
		return 1;
	}
	return 0;
}

static int audited(const char *action, const char *actor, const char *target, const char *detail_part)
{
	struct audit_find f = { action, actor, target, detail_part, 0 };

	ck_assert_int_eq(store_audit_list(dd->store, 0, STORE_PAGE_MAX, find_audit, &f), HERR_OK);
	return f.found;
}

static Suite *firmware_suite(void)
{
	Suite *s = suite_create("firmware");
	TCase *tc = tcase_create("firmware");

	unit_scratch_add(tc);
	tcase_add_checked_fixture(tc, dd_setup, dd_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_release_add);
	tcase_add_test(tc, test_release_list);
	tcase_add_test(tc, test_release_refused);
	tcase_add_test(tc, test_stage);
	tcase_add_test(tc, test_rollout_create_refused);
	tcase_add_test(tc, test_one_live_rollout_per_model);
	tcase_add_test(tc, test_percent_stable_and_widen);
	tcase_add_test(tc, test_tick_cap_and_manifests);
	tcase_add_test(tc, test_security_and_running_version);
	tcase_add_test(tc, test_statuses_and_installs);
	tcase_add_test(tc, test_tick_lists_grow);
	tcase_add_test(tc, test_failure_threshold_abort);
	tcase_add_test(tc, test_threshold_zero);
	tcase_add_test(tc, test_pause_resume_abort);
	tcase_add_test(tc, test_list_cohort);
	tcase_add_test(tc, test_tag_cohort);
	tcase_add_test(tc, test_inactive_not_offered);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(firmware_suite());
}
