/* Unit tests of common/log: each line whole, in one write when it fits the line buffer and in parts
 * (nothing cut) when it does not; the level filter; the function name on errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/unit/unit.h"

/* Run fn with stderr sent to a file; what it wrote, NUL-terminated, into buf. */
static size_t captured(void (*fn)(void), char *buf, size_t size)
{
	char path[512];
	FILE *f;
	size_t n;
	int saved;

	unit_path(path, sizeof(path), unit_dir(), "stderr");
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_ptr_nonnull(freopen(path, "w", stderr));
	setvbuf(stderr, NULL, _IONBF, 0);
	fn();
	fflush(stderr);
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

static void log_short(void)
{
	log_set_level(LOG_LEVEL_INFO);
	log_info("device %s connected", "d-1");
	log_debug("not shown at info");
	log_err("disk %d", 7);
}

START_TEST(test_lines)
{
	char out[4096];

	captured(log_short, out, sizeof(out));
	ck_assert_ptr_nonnull(strstr(out, " hearth info: device d-1 connected\n"));
	ck_assert_ptr_null(strstr(out, "not shown"));
	/* Errors name the function that logged them. */
	ck_assert_ptr_nonnull(strstr(out, " hearth error: log_short: disk 7\n"));
	/* Two lines, each whole. */
	ck_assert_ptr_nonnull(strchr(out, '\n'));
	ck_assert_ptr_nonnull(strchr(strchr(out, '\n') + 1, '\n'));
	ck_assert_ptr_null(strchr(strchr(strchr(out, '\n') + 1, '\n') + 1, '\n'));
}
END_TEST

static char long_text[3000];

static void log_long(void)
{
	log_warn("%s", long_text);
	log_info("after");
}

/* Longer than the line buffer: written in parts, all of it, then the next line. */
START_TEST(test_long_line_whole)
{
	static char out[8192];
	const char *p;

	memset(long_text, 'x', sizeof(long_text) - 2);
	long_text[sizeof(long_text) - 2] = 'y';
	long_text[sizeof(long_text) - 1] = '\0';
	captured(log_long, out, sizeof(out));
	p = strstr(out, " hearth warning: ");
	ck_assert_ptr_nonnull(p);
	p += strlen(" hearth warning: ");
	ck_assert_int_eq(strncmp(p, long_text, strlen(long_text)), 0);
	ck_assert_int_eq(p[strlen(long_text)], '\n');
	ck_assert_ptr_nonnull(strstr(p, " hearth info: after\n"));
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("lines");

	unit_scratch_add(tc);
	tcase_add_test(tc, test_lines);
	tcase_add_test(tc, test_long_line_whole);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(log_suite());
}
