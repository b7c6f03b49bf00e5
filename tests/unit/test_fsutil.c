/* Unit tests of common/fsutil: exact modes whatever the umask, no overwrite when exclusive, atomic
 * replacement otherwise, no temporary files left behind, bounded reads, private directories. */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "tests/unit/unit.h"

static unsigned mode_of(const char *path)
{
	struct stat st;

	ck_assert_int_eq(lstat(path, &st), 0);
	return (unsigned)(st.st_mode & 07777);
}

static void write_raw(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* The file's content, which must be text of less than 256 bytes. */
static void read_raw(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Assert that the test's directory holds exactly the names given (any order), nothing else: no
 * temporary files. */
static void assert_dir_holds(const char *const *names, size_t count)
{
	struct dirent *de;
	size_t seen = 0, i;
	DIR *d = opendir(unit_dir());

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		int known = 0;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		for (i = 0; i < count; i++)
			known |= strcmp(de->d_name, names[i]) == 0;
		ck_assert_msg(known, "unexpected entry '%s' left in %s", de->d_name, unit_dir());
		seen++;
	}
	closedir(d);
	ck_assert_uint_eq(seen, count);
}

START_TEST(test_write_mode_exact)
{
	static const struct { unsigned mode; mode_t mask; } cases[] = {
		{ 0600, 0 }, { 0644, 0 }, { 0644, 077 }, { 0600, 022 }, { 0640, 0 },
	};
	char path[4096], name[32];
	mode_t old = umask(0);
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		umask(cases[i].mask);
		snprintf(name, sizeof(name), "f%zu", i);
		unit_at(path, sizeof(path), name);
		ck_assert_int_eq(fs_write_file(path, "x", 1, cases[i].mode, 1), HERR_OK);
		ck_assert_msg(mode_of(path) == cases[i].mode, "case %zu: mode %04o, want %04o",
			      i, mode_of(path), cases[i].mode);
		/* The non-exclusive path (rename) must give the same exact mode. */
		ck_assert_int_eq(fs_write_file(path, "y", 1, cases[i].mode, 0), HERR_OK);
		ck_assert_uint_eq(mode_of(path), cases[i].mode);
	}
	umask(old);
}
END_TEST

START_TEST(test_write_content)
{
	static const uint8_t bin[] = { 0, 1, 2, 0xff, 0, 'a' };
	char path[4096];
	uint8_t *data = NULL;
	size_t len = 0;

	unit_at(path, sizeof(path), "bin");
	ck_assert_int_eq(fs_write_file(path, bin, sizeof(bin), 0600, 1), HERR_OK);
	ck_assert_int_eq(fs_read_file(path, 100, &data, &len), HERR_OK);
	ck_assert_uint_eq(len, sizeof(bin));
	ck_assert_mem_eq(data, bin, sizeof(bin));
	free(data);

	/* An empty file is a file. */
	unit_at(path, sizeof(path), "empty");
	ck_assert_int_eq(fs_write_file(path, "", 0, 0600, 1), HERR_OK);
	ck_assert_int_eq(fs_read_file(path, 100, &data, &len), HERR_OK);
	ck_assert_uint_eq(len, 0);
	ck_assert_ptr_nonnull(data);
	ck_assert_int_eq(data[0], 0);
	free(data);
}
END_TEST

START_TEST(test_write_exclusive_refuses)
{
	static const char *const left[] = { "key" };
	char path[4096], buf[256];

	unit_at(path, sizeof(path), "key");
	write_raw(path, "original");
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(fs_write_file(path, "replaced", 8, 0644, 1), HERR_EXISTS);
	read_raw(path, buf, sizeof(buf));
	ck_assert_str_eq(buf, "original");
	ck_assert_uint_eq(mode_of(path), 0600);
	assert_dir_holds(left, 1);
}
END_TEST

/* A symlink, even a dangling one, counts as existing: an exclusive write never goes through it. */
START_TEST(test_write_exclusive_symlink)
{
	static const char *const left[] = { "link" };
	char path[4096], target[4096];

	unit_at(path, sizeof(path), "link");
	unit_at(target, sizeof(target), "target");
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(fs_write_file(path, "x", 1, 0600, 1), HERR_EXISTS);
	ck_assert_int_eq(fs_exists(target), 0);
	assert_dir_holds(left, 1);
}
END_TEST

START_TEST(test_write_replace_atomic)
{
	static const char *const left[] = { "conf", "other" };
	char path[4096], other[4096], link[4096], buf[256];
	struct stat before, after;

	unit_at(path, sizeof(path), "conf");
	ck_assert_int_eq(fs_write_file(path, "old content", 11, 0644, 0), HERR_OK);
	ck_assert_int_eq(stat(path, &before), 0);
	ck_assert_int_eq(fs_write_file(path, "new", 3, 0600, 0), HERR_OK);
	ck_assert_int_eq(stat(path, &after), 0);
	read_raw(path, buf, sizeof(buf));
	ck_assert_str_eq(buf, "new");
	ck_assert_uint_eq(mode_of(path), 0600);
	/* A new inode renamed over the old one, not the old file truncated and rewritten in place. */
	ck_assert_msg(before.st_ino != after.st_ino, "file was rewritten in place");

	/* Replacing a symlink replaces the link, never the file it points to. */
	unit_at(other, sizeof(other), "other");
	write_raw(other, "untouched");
	unit_at(link, sizeof(link), "link");
	ck_assert_int_eq(symlink(other, link), 0);
	ck_assert_int_eq(fs_write_file(link, "via link", 8, 0644, 0), HERR_OK);
	read_raw(other, buf, sizeof(buf));
	ck_assert_str_eq(buf, "untouched");
	ck_assert_int_eq(unlink(link), 0);
	assert_dir_holds(left, 2);
}
END_TEST

START_TEST(test_write_failure_leaves_nothing)
{
	static const char *const left[] = { "subdir" };
	char path[4096];

	/* rename() onto a directory fails after the temporary file was written. */
	unit_at(path, sizeof(path), "subdir");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_ne(fs_write_file(path, "x", 1, 0600, 0), HERR_OK);
	assert_dir_holds(left, 1);

	/* Parent missing: nothing can be created anywhere. */
	unit_at(path, sizeof(path), "missing/file");
	ck_assert_int_eq(fs_write_file(path, "x", 1, 0600, 0), HERR_IO);
	ck_assert_int_eq(fs_write_file(path, "x", 1, 0600, 1), HERR_IO);
	assert_dir_holds(left, 1);

	/* Success leaves only the file. */
	unit_at(path, sizeof(path), "ok");
	ck_assert_int_eq(fs_write_file(path, "x", 1, 0600, 1), HERR_OK);
	unit_at(path, sizeof(path), "ok2");
	ck_assert_int_eq(fs_write_file(path, "x", 1, 0600, 0), HERR_OK);
	{
		static const char *const now[] = { "subdir", "ok", "ok2" };

		assert_dir_holds(now, 3);
	}
}
END_TEST

START_TEST(test_read_bounds)
{
	char path[4096], buf[64];
	uint8_t *data = (uint8_t *)"sentinel";
	size_t len = 99, i;

	unit_at(path, sizeof(path), "missing");
	ck_assert_int_eq(fs_read_file(path, 100, &data, &len), HERR_NOTFOUND);
	ck_assert_ptr_null(data);
	ck_assert_uint_eq(len, 0);

	for (i = 0; i < 32; i++)
		buf[i] = (char)('A' + i % 26);
	buf[32] = '\0';
	unit_at(path, sizeof(path), "f32");
	write_raw(path, buf);

	/* max + 1 bytes: too big, nothing handed back. */
	data = (uint8_t *)"sentinel";
	ck_assert_int_eq(fs_read_file(path, 31, &data, &len), HERR_TOOBIG);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(fs_read_file(path, 0, &data, &len), HERR_TOOBIG);

	/* Exactly max: fine, NUL-terminated, len without the NUL. */
	ck_assert_int_eq(fs_read_file(path, 32, &data, &len), HERR_OK);
	ck_assert_uint_eq(len, 32);
	ck_assert_int_eq(data[32], '\0');
	ck_assert_str_eq((char *)data, buf);
	free(data);
}
END_TEST

START_TEST(test_read_not_regular)
{
	uint8_t *data = (uint8_t *)"sentinel";
	size_t len = 99;

	ck_assert_int_ne(fs_read_file(unit_dir(), 1 << 20, &data, &len), HERR_OK);
	ck_assert_ptr_null(data);
	ck_assert_uint_eq(len, 0);
	/* A character device reads forever; the regular-file check must stop it first. */
	data = (uint8_t *)"sentinel";
	ck_assert_int_ne(fs_read_file("/dev/zero", 16, &data, &len), HERR_OK);
	ck_assert_ptr_null(data);
}
END_TEST

START_TEST(test_private_dir)
{
	char path[4096], file[4096];
	int created = -1;
	mode_t old = umask(0);

	unit_at(path, sizeof(path), "priv");
	ck_assert_int_eq(fs_make_private_dir(path, &created), HERR_OK);
	ck_assert_int_eq(created, 1);
	ck_assert_uint_eq(mode_of(path), 0700);
	ck_assert_int_eq(fs_check_private_dir(path), HERR_OK);

	created = -1;
	ck_assert_int_eq(fs_make_private_dir(path, &created), HERR_OK);
	ck_assert_int_eq(created, 0);
	ck_assert_int_eq(fs_make_private_dir(path, NULL), HERR_OK);

	/* An existing directory keeps its mode; fs_check_private_dir is what objects to it. */
	ck_assert_int_eq(chmod(path, 0755), 0);
	created = -1;
	ck_assert_int_eq(fs_make_private_dir(path, &created), HERR_OK);
	ck_assert_int_eq(created, 0);
	ck_assert_uint_eq(mode_of(path), 0755);
	ck_assert_int_eq(fs_check_private_dir(path), HERR_STATE);
	ck_assert_int_eq(chmod(path, 0710), 0);
	ck_assert_int_eq(fs_check_private_dir(path), HERR_STATE);
	ck_assert_int_eq(chmod(path, 0701), 0);
	ck_assert_int_eq(fs_check_private_dir(path), HERR_STATE);
	ck_assert_int_eq(chmod(path, 0700), 0);
	ck_assert_int_eq(fs_check_private_dir(path), HERR_OK);

	/* A regular file in the way is refused by both. */
	unit_at(file, sizeof(file), "plain");
	write_raw(file, "x");
	created = -1;
	ck_assert_int_ne(fs_make_private_dir(file, &created), HERR_OK);
	ck_assert_int_eq(created, 0);
	ck_assert_int_ne(fs_check_private_dir(file), HERR_OK);

	unit_at(path, sizeof(path), "nope");
	ck_assert_int_eq(fs_check_private_dir(path), HERR_NOTFOUND);
	umask(old);
}
END_TEST

START_TEST(test_dir_is_empty)
{
	char path[4096];

	ck_assert_int_eq(fs_dir_is_empty(unit_dir()), 1);
	unit_at(path, sizeof(path), ".hidden");
	write_raw(path, "");
	ck_assert_int_eq(fs_dir_is_empty(unit_dir()), 0);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(fs_dir_is_empty(unit_dir()), 1);
	unit_at(path, sizeof(path), "sub");
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(fs_dir_is_empty(unit_dir()), 0);
	ck_assert_int_eq(fs_dir_is_empty(path), 1);
	unit_at(path, sizeof(path), "missing");
	ck_assert_int_eq(fs_dir_is_empty(path), -1);
}
END_TEST

START_TEST(test_exists)
{
	char path[4096], link[4096];

	unit_at(path, sizeof(path), "f");
	ck_assert_int_eq(fs_exists(path), 0);
	write_raw(path, "");
	ck_assert_int_eq(fs_exists(path), 1);
	ck_assert_int_eq(fs_exists(unit_dir()), 1);
	unit_at(link, sizeof(link), "dangling");
	unit_at(path, sizeof(path), "nowhere");
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_int_eq(fs_exists(link), 1);
}
END_TEST

START_TEST(test_path)
{
	char buf[8];

	ck_assert_int_eq(fs_path(buf, sizeof(buf), "%s/%d", "ab", 1234), HERR_OK); /* 7 + NUL */
	ck_assert_str_eq(buf, "ab/1234");
	ck_assert_int_eq(fs_path(buf, sizeof(buf), "%s/%d", "ab", 12345), HERR_TOOBIG);
	ck_assert_int_eq(fs_path(buf, sizeof(buf), "%s", "a very long path indeed"), HERR_TOOBIG);
	ck_assert_int_eq(fs_path(buf, 1, "%s", ""), HERR_OK);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(fs_path(buf, 1, "%s", "a"), HERR_TOOBIG);
}
END_TEST

/* A path that fits but whose temporary name would not: refused, nothing written. */
START_TEST(test_write_path_too_long)
{
	char path[4096];
	size_t n;

	n = (size_t)snprintf(path, sizeof(path), "%s/", unit_dir());
	memset(path + n, 'a', sizeof(path) - n - 1);
	path[sizeof(path) - 1 - 4] = '\0'; /* 4091 chars: fits PATH_MAX, ".tmp.<pid>" does not */
	ck_assert_int_eq(fs_write_file(path, "x", 1, 0600, 0), HERR_TOOBIG);
	ck_assert_int_eq(fs_dir_is_empty(unit_dir()), 1);
}
END_TEST

static Suite *fsutil_suite(void)
{
	Suite *s = suite_create("fsutil");
	TCase *tc = tcase_create("fs");

	unit_scratch_add(tc);
	tcase_add_test(tc, test_write_mode_exact);
	tcase_add_test(tc, test_write_content);
	tcase_add_test(tc, test_write_exclusive_refuses);
	tcase_add_test(tc, test_write_exclusive_symlink);
	tcase_add_test(tc, test_write_replace_atomic);
	tcase_add_test(tc, test_write_failure_leaves_nothing);
	tcase_add_test(tc, test_read_bounds);
	tcase_add_test(tc, test_read_not_regular);
	tcase_add_test(tc, test_private_dir);
	tcase_add_test(tc, test_dir_is_empty);
	tcase_add_test(tc, test_exists);
	tcase_add_test(tc, test_path);
	tcase_add_test(tc, test_write_path_too_long);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(fsutil_suite());
}
