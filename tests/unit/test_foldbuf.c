/* Unit tests of server/foldbuf: the group commit's telemetry writes, merged in memory. The reference
 * is a second store written sample by sample through the store API; both databases are then read
 * back with sqlite3 and must hold the same rows, byte for byte. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "server/foldbuf.h"
#include "server/store.h"
#include "tests/unit/unit.h"

static const int64_t T0 = 1718000000;

struct db {
	char path[4096];
	struct store *st;
};

static void db_open(struct db *d, const char *name)
{
	unit_at(d->path, sizeof(d->path), name);
	ck_assert_int_eq(store_open_sqlite(d->path, &d->st), HERR_OK);
	ck_assert_int_eq(store_model_ensure(d->st, "m1", T0), HERR_OK);
}

static void add_devices(struct db *d, int count)
{
	char id[16];
	int i;

	for (i = 0; i < count; i++) {
		snprintf(id, sizeof(id), "dev%d", i);
		ck_assert_int_eq(store_device_insert(d->st, id, "m1", T0), HERR_OK);
	}
}

/* Every row of the tables the buffer writes, as text, in key order. Caller frees. */
static char *dump(const char *path)
{
	static const char *const q[] = {
		"SELECT device_id, field, bucket_start, bucket_s, agg, n, quote(value), quote(text),"
		" retention_days FROM telemetry ORDER BY device_id, field, bucket_start",
		"SELECT device_id, bucket_start FROM last_seen ORDER BY device_id",
		"SELECT model, field, sensitive, count FROM dropped_fields ORDER BY model, field",
	};
	size_t len = 0, cap = 4096, i;
	char *out = malloc(cap);
	sqlite3 *db = NULL;

	ck_assert_ptr_nonnull(out);
	out[0] = '\0';
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		sqlite3_stmt *stmt = NULL;

		ck_assert_msg(sqlite3_prepare_v2(db, q[i], -1, &stmt, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
		while (sqlite3_step(stmt) == SQLITE_ROW) {
			int c;

			for (c = 0; c < sqlite3_column_count(stmt); c++) {
				const char *v = (const char *)sqlite3_column_text(stmt, c);
				size_t n = strlen(v ? v : "NULL") + 2;

				while (len + n + 1 > cap) {
					cap *= 2;
					out = realloc(out, cap);
					ck_assert_ptr_nonnull(out);
				}
				len += (size_t)snprintf(out + len, cap - len, "%s%c", v ? v : "NULL",
							c + 1 == sqlite3_column_count(stmt) ? '\n' : '|');
			}
		}
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
	return out;
}

/* Both databases hold the same rows (and the reference holds expect, or a fair amount without
 * one); then everything is closed. */
static void same_rows(struct db *ref, struct db *buf, struct foldbuf *fb, const char *expect)
{
	char *a = dump(ref->path), *b = dump(buf->path);

	if (expect)
		ck_assert_ptr_nonnull(strstr(a, expect));
	else
		ck_assert_uint_gt(strlen(a), 1000);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	foldbuf_free(fb);
	store_close(ref->st);
	store_close(buf->st);
}

static uint32_t rng = 12345;

static uint32_t next(void)
{
	rng = rng * 1103515245u + 12345u;
	return (rng >> 16) & 0x7fff;
}

/* A field and the aggregate its policy gives it. */
static const struct {
	const char *field, *agg;
	int text;
} fields[] = {
	{ "temperature", "mean", 0 }, { "humidity", "min", 0 }, { "power.w", "max", 0 },
	{ "mode", "last", 1 },        { "state", "last", 0 },   { "events", "count", 0 },
};

/* The same random stream of samples, sightings and drops into the reference store one by one and
 * into the buffer, which is flushed at random moments inside one transaction: the rows must match. */
START_TEST(test_same_rows_as_one_by_one)
{
	struct db ref, buf;
	struct foldbuf *fb = NULL;
	char id[16], text[16];
	int i;

	db_open(&ref, "ref.db");
	db_open(&buf, "buf.db");
	add_devices(&ref, 7);
	add_devices(&buf, 7);
	ck_assert_int_eq(foldbuf_new(buf.st, &fb), HERR_OK);
	ck_assert_int_eq(store_begin(ref.st), HERR_OK);
	ck_assert_int_eq(store_begin(buf.st), HERR_OK);
	for (i = 0; i < 20000; i++) {
		uint32_t what = next() % 10;

		snprintf(id, sizeof(id), "dev%u", next() % 7);
		if (what < 7) {
			size_t f = next() % (sizeof(fields) / sizeof(fields[0]));
			int64_t bucket = 300;
			struct store_sample s = {
				.device_id = id, .field = fields[f].field, .bucket_s = (uint32_t)bucket,
				.bucket_start = T0 - T0 % bucket + (int64_t)(next() % 4) * bucket,
				.retention_days = 30, .agg = fields[f].agg, .n = 1,
				/* Quarters, small: sums are exact in either order. */
				.value = (double)((int)(next() % 400) - 200) / 4.0,
			};

			if (fields[f].text) {
				snprintf(text, sizeof(text), "mode-%u", next() % 5);
				s.text = text;
			}
			ck_assert_int_eq(store_telemetry_fold(ref.st, &s), HERR_OK);
			ck_assert_int_eq(foldbuf_sample(fb, &s), HERR_OK);
		} else if (what < 9) {
			int64_t bucket = T0 - T0 % 3600 + (int64_t)(next() % 3) * 3600;

			ck_assert_int_eq(store_last_seen(ref.st, id, bucket), HERR_OK);
			ck_assert_int_eq(foldbuf_seen(fb, id, bucket), HERR_OK);
		} else {
			char name[16];
			int sensitive = next() % 5 == 0;

			snprintf(name, sizeof(name), "gps.%u", next() % 3);
			ck_assert_int_eq(store_dropped_add(ref.st, "m1", name, sensitive, 1), HERR_OK);
			ck_assert_int_eq(foldbuf_dropped(fb, "m1", name, sensitive, 1), HERR_OK);
		}
		if (next() % 500 == 0)
			ck_assert_int_eq(foldbuf_flush(fb), HERR_OK);
	}
	ck_assert_uint_gt(foldbuf_held(fb), 0);
	ck_assert_int_eq(foldbuf_flush(fb), HERR_OK);
	ck_assert_uint_eq(foldbuf_held(fb), 0);
	/* Merged: far fewer writes than samples. */
	ck_assert_uint_lt(foldbuf_stats(fb)->rows_written, 20000 / 3);
	ck_assert_int_eq(store_commit(ref.st), HERR_OK);
	ck_assert_int_eq(store_commit(buf.st), HERR_OK);
	same_rows(&ref, &buf, fb, NULL);
}
END_TEST

/* More distinct rows than the buffer holds: it writes itself out early, and nothing is lost. */
START_TEST(test_full_buffer_writes_early)
{
	struct db d;
	struct foldbuf *fb = NULL;
	int i, rows = FOLDBUF_ROWS * 3 + 7;

	db_open(&d, "full.db");
	add_devices(&d, 1);
	ck_assert_int_eq(foldbuf_new(d.st, &fb), HERR_OK);
	ck_assert_int_eq(store_begin(d.st), HERR_OK);
	for (i = 0; i < rows; i++) {
		struct store_sample s = { .device_id = "dev0", .field = "t", .bucket_start = T0 + i * 60,
					  .bucket_s = 60, .retention_days = 1, .agg = "mean", .n = 1, .value = 1 };

		ck_assert_int_eq(foldbuf_sample(fb, &s), HERR_OK);
		ck_assert_uint_le(foldbuf_held(fb), FOLDBUF_ROWS);
	}
	ck_assert_uint_eq(foldbuf_stats(fb)->flushes, 3);
	ck_assert_int_eq(foldbuf_flush(fb), HERR_OK);
	ck_assert_int_eq(store_commit(d.st), HERR_OK);
	store_close(d.st);
	{
		sqlite3 *db = NULL;
		sqlite3_stmt *stmt = NULL;

		ck_assert_int_eq(sqlite3_open_v2(d.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT COUNT(*), SUM(n) FROM telemetry", -1, &stmt, NULL),
				 SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
		ck_assert_int_eq(sqlite3_column_int(stmt, 0), rows);
		ck_assert_int_eq(sqlite3_column_int(stmt, 1), rows);
		sqlite3_finalize(stmt);
		sqlite3_close(db);
	}
	foldbuf_free(fb);
}
END_TEST

/* A name too long to hold is written at once, after what is held: "last" still means last. */
START_TEST(test_long_names_keep_order)
{
	struct db ref, buf;
	struct foldbuf *fb = NULL;
	char longf[300];
	int i;

	memset(longf, 'x', sizeof(longf) - 1);
	longf[sizeof(longf) - 1] = '\0';
	db_open(&ref, "ref.db");
	db_open(&buf, "buf.db");
	add_devices(&ref, 1);
	add_devices(&buf, 1);
	ck_assert_int_eq(foldbuf_new(buf.st, &fb), HERR_OK);
	for (i = 0; i < 6; i++) {
		struct store_sample s = { .device_id = "dev0", .field = i % 2 ? longf : "short", .bucket_start = T0,
					  .bucket_s = 60, .retention_days = 1, .agg = "last", .n = 1, .value = i };

		ck_assert_int_eq(store_telemetry_fold(ref.st, &s), HERR_OK);
		ck_assert_int_eq(foldbuf_sample(fb, &s), HERR_OK);
		ck_assert_int_eq(store_dropped_add(ref.st, "m1", longf, 1, 2), HERR_OK);
		ck_assert_int_eq(foldbuf_dropped(fb, "m1", longf, 1, 2), HERR_OK);
	}
	ck_assert_int_eq(foldbuf_flush(fb), HERR_OK);
	same_rows(&ref, &buf, fb, "|last|3|5.0|NULL|");
}
END_TEST

START_TEST(test_refusals_and_discard)
{
	struct db d;
	struct foldbuf *fb = NULL;
	struct store_sample s = { .device_id = "dev0", .field = "t", .bucket_start = T0, .bucket_s = 60,
				  .retention_days = 1, .agg = "mean", .n = 0, .value = 1 };
	char *rows;

	db_open(&d, "r.db");
	add_devices(&d, 1);
	ck_assert_int_eq(foldbuf_new(d.st, &fb), HERR_OK);
	/* A sample of no values is refused by both. */
	ck_assert_int_eq(foldbuf_sample(fb, &s), HERR_INVALID);
	ck_assert_int_eq(store_telemetry_fold(d.st, &s), HERR_INVALID);
	/* Discarded rows are never written. */
	s.n = 1;
	ck_assert_int_eq(foldbuf_sample(fb, &s), HERR_OK);
	ck_assert_int_eq(foldbuf_seen(fb, "dev0", T0), HERR_OK);
	ck_assert_uint_eq(foldbuf_held(fb), 2);
	foldbuf_discard(fb);
	ck_assert_uint_eq(foldbuf_held(fb), 0);
	ck_assert_int_eq(foldbuf_flush(fb), HERR_OK);
	rows = dump(d.path);
	ck_assert_str_eq(rows, "");
	free(rows);
	/* A device the store does not know: the flush fails, and the buffer is empty after it. */
	s.device_id = "nobody";
	ck_assert_int_eq(foldbuf_sample(fb, &s), HERR_OK);
	ck_assert_int_ne(foldbuf_flush(fb), HERR_OK);
	ck_assert_uint_eq(foldbuf_held(fb), 0);
	foldbuf_free(fb);
	store_close(d.st);
}
END_TEST

static Suite *foldbuf_suite(void)
{
	Suite *s = suite_create("foldbuf");
	TCase *tc = tcase_create("foldbuf");

	unit_scratch_add(tc);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_same_rows_as_one_by_one);
	tcase_add_test(tc, test_full_buffer_writes_early);
	tcase_add_test(tc, test_long_names_keep_order);
	tcase_add_test(tc, test_refusals_and_discard);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(foldbuf_suite());
}
