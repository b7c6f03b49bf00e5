/* Unit tests of server/ack: well-formed acks and every way one can be wrong. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "server/ack.h"
#include "tests/unit/unit.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static enum herr parse(const char *s, struct ack *a, const char **why)
{
	return ack_parse((const uint8_t *)s, strlen(s), a, why);
}

START_TEST(accepts)
{
	struct ack a;
	const char *why = "x";

	ck_assert_int_eq(parse("{\"type\": \"pins\", \"version\": 7, \"status\": \"applied\"}", &a, &why), HERR_OK);
	ck_assert_ptr_null(why);
	ck_assert_str_eq(a.type, "pins");
	ck_assert_int_eq(a.version, 7);
	ck_assert_str_eq(a.status, "applied");
	ck_assert_int_eq(parse("{\"status\":\"rolled_back\",\"version\":9007199254740991,\"type\":\"firmware\"}", &a,
			       &why), HERR_OK);
	ck_assert_int_eq(a.version, 9007199254740991LL);
	ck_assert_str_eq(a.status, "rolled_back");
}
END_TEST

START_TEST(refuses)
{
	static const char *const bad[] = {
		"", "null", "[]", "\"pins\"", "{}", "{\"type\":\"pins\",\"version\":1}",
		"{\"type\":\"pins\",\"version\":1,\"status\":\"applied\",\"extra\":1}",
		"{\"type\":\"pins\",\"type\":\"keys\",\"version\":1,\"status\":\"applied\"}",
		"{\"type\":\"PINS\",\"version\":1,\"status\":\"applied\"}",
		"{\"type\":\"secrets\",\"version\":1,\"status\":\"applied\"}",
		"{\"type\":\"pins\",\"version\":0,\"status\":\"applied\"}",
		"{\"type\":\"pins\",\"version\":-3,\"status\":\"applied\"}",
		"{\"type\":\"pins\",\"version\":1.5,\"status\":\"applied\"}",
		"{\"type\":\"pins\",\"version\":\"1\",\"status\":\"applied\"}",
		"{\"type\":\"pins\",\"version\":1e400,\"status\":\"applied\"}",
		"{\"type\":\"pins\",\"version\":1,\"status\":\"pwned\"}",
		"{\"type\":\"pins\",\"version\":1,\"status\":null}",
		"{\"type\":\"pins\",\"version\":1,\"status\":\"applied\"",
		"{\"type\":\"pi\\u0000ns\",\"version\":1,\"status\":\"applied\"}",
	};
	struct ack a;
	const char *why;
	size_t i;

	for (i = 0; i < N_ELEMS(bad); i++) {
		why = NULL;
		ck_assert_msg(parse(bad[i], &a, &why) == HERR_INVALID, "accepted: %s", bad[i]);
		ck_assert_ptr_nonnull(why);
	}
}
END_TEST

START_TEST(bounded)
{
	static char big[ACK_MAX_BYTES + 64];
	struct ack a;
	const char *why = NULL;
	int n;

	/* Valid JSON, but padded past the limit: refused before parsing. */
	n = snprintf(big, sizeof(big), "{\"type\":\"pins\",\"version\":1,\"status\":\"applied\"}");
	memset(big + n, ' ', sizeof(big) - (size_t)n - 1);
	ck_assert_int_eq(ack_parse((const uint8_t *)big, sizeof(big) - 1, &a, &why), HERR_INVALID);
	ck_assert_str_eq(why, "larger than 1 KiB");
	/* len, not a NUL, ends the input. */
	ck_assert_int_eq(ack_parse((const uint8_t *)big, (size_t)n - 1, &a, &why), HERR_INVALID);
}
END_TEST

static Suite *ack_suite(void)
{
	Suite *s = suite_create("ack");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, accepts);
	tcase_add_test(tc, refuses);
	tcase_add_test(tc, bounded);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(ack_suite());
}
