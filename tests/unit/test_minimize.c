/* Unit tests of server/minimize: allowlisted fields are kept, rounded then clamped to exact
 * values; everything else is dropped and counted under its normalised name, sensitive ones counted
 * as such wherever they hide (nested, \u-escaped, other case, inside arrays); and the list
 * of bad input is each refused, with nothing kept, or minimized by a stated rule. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server/minimize.h"
#include "server/policy.h"
#include "server/sensitive.h"
#include "tests/unit/unit.h"

static const char test_policy[] =
	"{\"policy\":1,\"fields\":{"
	"\"temp\":{\"type\":\"number\",\"round\":0.5,\"clamp\":[-40,85],\"aggregate\":\"mean\","
	"\"bucket_s\":900,\"retention_days\":365},"
	"\"hum\":{\"type\":\"number\",\"round\":5,\"retention_days\":30},"
	"\"error_code\":{\"type\":\"string\",\"max_len\":8,\"aggregate\":\"last\",\"bucket_s\":3600,"
	"\"retention_days\":90},"
	"\"on\":{\"type\":\"bool\",\"aggregate\":\"count\",\"bucket_s\":3600,\"retention_days\":30},"
	"\"co2_ppm\":{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":3600,\"sensitive_ok\":true,"
	"\"retention_days\":30},"
	"\"env.hum\":{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":3600,\"retention_days\":30},"
	"\"big\":{\"type\":\"number\",\"retention_days\":1},"
	"\"fine\":{\"type\":\"number\",\"round\":0.25,\"retention_days\":1}}}";

static struct policy pol;
static struct minimize_result res;
static const char *why;

static void setup(void)
{
	char msg[256];

	ck_assert_msg(policy_parse((const uint8_t *)test_policy, sizeof(test_policy) - 1, &pol, msg,
				   sizeof(msg)) == HERR_OK, "%s", msg);
}

static enum herr apply_len(const struct policy *p, const char *payload, size_t len)
{
	enum herr rc;

	memset(&res, 0xa5, sizeof(res)); /* nothing of this may survive */
	why = "unset";
	rc = minimize_apply(p, (const uint8_t *)payload, len, &res, &why);
	if (rc == HERR_OK)
		ck_assert_ptr_null(why);
	else
		ck_assert_msg(why && why[0] && strcmp(why, "unset") != 0, "no why");
	return rc;
}

static enum herr apply(const struct policy *p, const char *payload)
{
	return apply_len(p, payload, strlen(payload));
}

static void ok(const char *payload)
{
	ck_assert_msg(apply(&pol, payload) == HERR_OK, "%s: %s", payload, why);
}

/* Refused with rc and a why containing reason; nothing kept, nothing counted. */
static void refused_len(const char *payload, size_t len, enum herr want, const char *reason)
{
	static const struct minimize_result zero;
	enum herr rc = apply_len(&pol, payload, len);

	ck_assert_msg(rc == want, "%.60s: rc %d, want %d (%s)", payload, rc, want, why ? why : "");
	ck_assert_msg(strstr(why, reason), "%.60s: why \"%s\" lacks \"%s\"", payload, why, reason);
	ck_assert_mem_eq(&res, &zero, sizeof(res));
}

static void refused(const char *payload, enum herr want, const char *reason)
{
	refused_len(payload, strlen(payload), want, reason);
}

static const struct minimize_value *kept(const char *path)
{
	size_t i;

	for (i = 0; i < res.count; i++)
		if (strcmp(pol.fields[res.values[i].field].path, path) == 0)
			return &res.values[i];
	return NULL;
}

static double number(const char *path)
{
	const struct minimize_value *v = kept(path);

	ck_assert_msg(v != NULL, "%s not kept", path);
	ck_assert_int_eq(v->type, POLICY_NUMBER);
	return v->number;
}

static int dropped(const char *name)
{
	size_t i;

	for (i = 0; i < res.dropped_names; i++)
		if (strcmp(res.dropped[i], name) == 0)
			return 1;
	return 0;
}

/* The normalised name of one payload key, as the catalogue makes it. */
static const char *norm(const char *key)
{
	static char buf[4][SENSITIVE_NAME_MAX];
	static int next;
	char *b = buf[next++ % 4];

	sensitive_normalise(key, strlen(key), b);
	return b;
}

static void assert_dropped(const char *name)
{
	char list[MINIMIZE_MAX_DROPPED * (POLICY_FIELD_MAX + 1)] = "";
	size_t i;

	for (i = 0; i < res.dropped_names; i++) {
		strncat(list, res.dropped[i], sizeof(list) - strlen(list) - 2);
		strncat(list, " ", sizeof(list) - strlen(list) - 1);
	}
	ck_assert_msg(dropped(name), "\"%s\" not among dropped: %s", name, list);
}

START_TEST(keeps_allowlisted_fields)
{
	const struct minimize_value *v;

	ok("{\"temp\": 21.26, \"hum\": 47.4, \"error_code\": \"E42\", \"on\": true, \"co2_ppm\": 812.3,"
	   " \"env\": {\"hum\": 51}, \"fine\": 0.4}");
	ck_assert_uint_eq(res.count, 7);
	ck_assert_uint_eq(res.dropped_count, 0);
	ck_assert_uint_eq(res.dropped_names, 0);
	ck_assert_int_eq(res.dropped_sensitive, 0);
	ck_assert(number("temp") == 21.5);
	ck_assert(number("hum") == 45);
	ck_assert(number("co2_ppm") == 812.3); /* sensitive_ok over an hour: kept as sent */
	ck_assert(number("env.hum") == 51);
	ck_assert(number("fine") == 0.5);
	v = kept("error_code");
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(v->type, POLICY_STRING);
	ck_assert_str_eq(v->text, "E42");
	v = kept("on");
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(v->type, POLICY_BOOL);
	ck_assert(v->number == 1);
	ok("{\"on\": false}");
	ck_assert(kept("on")->number == 0);
	/* Each value records the policy field it belongs to. */
	ck_assert_str_eq(pol.fields[kept("on")->field].path, "on");
}
END_TEST

START_TEST(round_then_clamp)
{
	static const struct {
		const char *field, *in;
		double want;
	} cases[] = {
		{ "temp", "21.24", 21.0 }, { "temp", "21.25", 21.5 }, { "temp", "21.26", 21.5 },
		{ "temp", "-3.3", -3.5 },  { "temp", "-3.2", -3.0 },  { "temp", "20", 20.0 },
		{ "temp", "100", 85 },     { "temp", "-50", -40 },    { "temp", "84.9", 85 },
		{ "temp", "85.2", 85 },    { "temp", "-40.3", -40 },  { "temp", "1e308", 85 },
		{ "temp", "-1e308", -40 }, { "temp", "1e-400", 0 },   { "temp", "-0.1", 0 },
		{ "hum", "2.4", 0 },       { "hum", "2.5", 5 },       { "hum", "-2.5", -5 },
		{ "hum", "47.5", 50 },     { "hum", "1e308", 1e308 }, { "fine", "0.125", 0.25 },
		{ "fine", "0.124", 0 },    { "fine", "-0.375", -0.5 },
		{ "hum", "2.4999999999999996", 0 }, { "fine", "0.12499999999999999", 0 },
		/* Past int64: still a number, as a double. */
		{ "big", "123456789012345678901234567890", 123456789012345678901234567890.0 },
		{ "big", "-9223372036854775809", -9223372036854775809.0 },
		{ "big", "1.7976931348623157e308", 1.7976931348623157e308 },
	};
	char payload[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(payload, sizeof(payload), "{\"%s\": %s}", cases[i].field, cases[i].in);
		ok(payload);
		ck_assert_uint_eq(res.count, 1);
		ck_assert_msg(number(cases[i].field) == cases[i].want, "%s: got %.17g, want %.17g",
			      payload, number(cases[i].field), cases[i].want);
	}
}
END_TEST

START_TEST(type_mismatches_are_dropped)
{
	char name[POLICY_FIELD_MAX];

	ok("{\"temp\": \"21.5\", \"hum\": true, \"error_code\": 42, \"on\": \"true\", \"co2_ppm\": null,"
	   " \"env\": {\"hum\": \"x\"}, \"big\": {}, \"fine\": 1}");
	ck_assert_uint_eq(res.count, 1);
	ck_assert(number("fine") == 1);
	ck_assert_uint_eq(res.dropped_count, 7);
	ck_assert_uint_eq(res.dropped_names, 7);
	ck_assert_int_eq(res.dropped_sensitive, 1); /* co2_ppm, even though the policy keeps it */
	assert_dropped(norm("temp"));
	assert_dropped(norm("hum"));
	assert_dropped(norm("error_code"));
	assert_dropped(norm("on"));
	assert_dropped("co2");
	assert_dropped(norm("big"));
	snprintf(name, sizeof(name), "%s.%s", norm("env"), norm("hum"));
	assert_dropped(name);
	/* A string longer than max_len is dropped, not cut; max_len itself is fine. */
	ok("{\"error_code\": \"E12345678\"}");
	ck_assert_uint_eq(res.count, 0);
	ck_assert_uint_eq(res.dropped_count, 1);
	ok("{\"error_code\": \"E1234567\"}");
	ck_assert_uint_eq(res.count, 1);
	ck_assert_str_eq(kept("error_code")->text, "E1234567");
	/* max_len counts bytes: four 2-byte characters fit in 8. */
	ok("{\"error_code\": \"\\u00e9\\u00e9\\u00e9\\u00e9\"}");
	ck_assert_uint_eq(res.count, 1);
	ck_assert_str_eq(kept("error_code")->text, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
}
END_TEST

START_TEST(unknown_and_nested_sensitive)
{
	ok("{\"temp\": 20, \"Motion\": 1, \"env\": {\"Motion\": true, \"CO2\": 400, \"hum\": 40, "
	   "\"uptime\": 3}, \"rssi\": -60, \"uptime\": 5}");
	ck_assert_uint_eq(res.count, 2);
	ck_assert(number("temp") == 20);
	ck_assert(number("env.hum") == 40);
	ck_assert_uint_eq(res.dropped_count, 6);
	ck_assert_int_eq(res.dropped_sensitive, 4);
	assert_dropped("motion");
	assert_dropped("env.motion");
	assert_dropped("env.co2");
	assert_dropped(norm("rssi"));
	assert_dropped(norm("uptime"));
	/* Everything under a sensitive object is sensitive. */
	ok("{\"presence\": {\"room1\": 1, \"room2\": {\"x\": 0}}}");
	ck_assert_uint_eq(res.dropped_count, 2);
	ck_assert_int_eq(res.dropped_sensitive, 2);
}
END_TEST

START_TEST(escaped_and_cased_names)
{
	struct policy heater;
	uint8_t *text;
	size_t len;
	char msg[256];

	/* \u escapes are decoded before matching: this is the policy's own co2_ppm, kept. */
	ok("{\"\\u0063o2_ppm\": 500}");
	ck_assert(number("co2_ppm") == 500);
	ck_assert_uint_eq(res.dropped_count, 0);
	/* "CO2": not a policy field, and sensitive. */
	ok("{\"\\u0043O2\": 400}");
	ck_assert_uint_eq(res.count, 0);
	ck_assert_uint_eq(res.dropped_count, 1);
	ck_assert_int_eq(res.dropped_sensitive, 1);
	assert_dropped("co2");
	/* Matching a policy is exact: another case is another field, dropped; still sensitive. */
	ok("{\"CO2_PPM\": 400, \"TEMP\": 20, \"\\u004dotion\": 1, \"mOtIoN\": 2}");
	ck_assert_uint_eq(res.count, 0);
	ck_assert_uint_eq(res.dropped_count, 4);
	ck_assert_int_eq(res.dropped_sensitive, 3);
	ck_assert_uint_eq(res.dropped_names, 3);
	assert_dropped("co2");
	assert_dropped("motion");
	assert_dropped(norm("TEMP"));
	/* Under the heater example, the sentinel CO2 of the issue never survives. */
	unit_read_file("schema/policies/smart-heater.json", POLICY_MAX_BYTES, &text, &len);
	ck_assert_msg(policy_parse(text, len, &heater, msg, sizeof(msg)) == HERR_OK, "%s", msg);
	free(text);
	ck_assert_int_eq(apply(&heater, "{\"co2_ppm\": 987654, \"Motion\": \"SENTINEL-7f3a\", "
			       "\"temperature\": 20.3, \"setpoint\": 21.2}"), HERR_OK);
	ck_assert_uint_eq(res.count, 2);
	ck_assert_uint_eq(res.dropped_count, 2);
	ck_assert_int_eq(res.dropped_sensitive, 2);
}
END_TEST

static char *repeat(const char *head, const char *unit, size_t times, const char *tail, size_t *len)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail), i;
	char *p = malloc(hl + ul * times + tl + 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, head, hl);
	for (i = 0; i < times; i++)
		memcpy(p + hl + i * ul, unit, ul);
	memcpy(p + hl + ul * times, tail, tl + 1);
	*len = hl + ul * times + tl;
	return p;
}

START_TEST(arrays_are_dropped_whole)
{
	char *p;
	size_t n;

	ok("{\"temp\": [20, 21], \"events\": [{\"motion\": 1}, {\"motion\": 0}], \"list\": [1, 2, 3],"
	   " \"deep\": [[[{\"x\": {\"CO2\": 1}}]]], \"hum\": 40, \"empty\": []}");
	ck_assert_uint_eq(res.count, 1);
	ck_assert(number("hum") == 40);
	ck_assert_uint_eq(res.dropped_count, 5); /* one per array, whatever it holds */
	ck_assert_int_eq(res.dropped_sensitive, 2);
	assert_dropped(norm("temp"));
	assert_dropped(norm("events"));
	assert_dropped(norm("list"));
	assert_dropped(norm("deep"));
	/* 9000 values in one array: within bounds, one drop. */
	p = repeat("{\"hum\": 5, \"a\": [0", ",0", 8999, "]}", &n);
	ck_assert_msg(apply_len(&pol, p, n) == HERR_OK, "%s", why);
	ck_assert_uint_eq(res.count, 1);
	ck_assert_uint_eq(res.dropped_count, 1);
	free(p);
}
END_TEST

START_TEST(dropped_names_normalised_and_distinct)
{
	char payload[4096], want[POLICY_FIELD_MAX + 8], key[256];
	size_t n, i;

	ok("{\"a\": {\"x\": 1}, \"A\": {\"x\": 2}, \"Motion_Detected\": 1, \"motion-detected\": 2}");
	ck_assert_uint_eq(res.dropped_count, 4);
	ck_assert_uint_eq(res.dropped_names, 2);
	ck_assert_int_eq(res.dropped_sensitive, 2);
	snprintf(want, sizeof(want), "%s.%s", norm("a"), norm("x"));
	assert_dropped(want);
	assert_dropped(norm("motion-detected"));

	/* More distinct names than reported: all counted, MINIMIZE_MAX_DROPPED named, each once. */
	n = (size_t)snprintf(payload, sizeof(payload), "{");
	for (i = 0; i < 100; i++)
		n += (size_t)snprintf(payload + n, sizeof(payload) - n, "%s\"k%zu\": 1", i ? "," : "", i);
	n += (size_t)snprintf(payload + n, sizeof(payload) - n, "}");
	ck_assert_uint_lt(n, sizeof(payload));
	ok(payload);
	ck_assert_uint_eq(res.dropped_count, 100);
	ck_assert_uint_eq(res.dropped_names, MINIMIZE_MAX_DROPPED);
	for (i = 0; i < res.dropped_names; i++)
		for (n = i + 1; n < res.dropped_names; n++)
			ck_assert_str_ne(res.dropped[i], res.dropped[n]);

	/* A key with a dot is one odd name, never the policy's env.hum; so is any key a policy
	 * could not name, and what is beneath it. */
	ok("{\"env.hum\": 5, \"e nv\": {\"hum\": 1}, \"env\": {\"h.um\": 2}}");
	ck_assert_uint_eq(res.count, 0);
	ck_assert_uint_eq(res.dropped_count, 3);
	/* A name with nothing left after normalising is shown as "_". */
	ok("{\"__\": 1}");
	ck_assert_uint_eq(res.dropped_count, 1);
	assert_dropped("_");
	/* A long key: its name is cut to what a field path holds, still counted. */
	memset(key, 'q', 200);
	key[200] = '\0';
	snprintf(payload, sizeof(payload), "{\"x\": {\"%s\": 1}}", key);
	ok(payload);
	ck_assert_uint_eq(res.dropped_count, 1);
	ck_assert_uint_eq(res.dropped_names, 1);
	ck_assert_uint_lt(strlen(res.dropped[0]), POLICY_FIELD_MAX);
	ck_assert(strncmp(res.dropped[0], "x.qqqq", 6) == 0);
}
END_TEST

START_TEST(bad_input)
{
	refused("", HERR_INVALID, "not valid JSON");
	refused("hello", HERR_INVALID, "not valid JSON");
	refused("{\"temp\": 2", HERR_INVALID, "truncated");
	refused("{\"temp\": 20, \"env\": {\"hum\"", HERR_INVALID, "not valid JSON");
	refused("{\"temp\": 1, \"temp\": 2}", HERR_INVALID, "duplicate");
	refused("{\"env\": {\"hum\": 1, \"hum\": 2}}", HERR_INVALID, "duplicate");
	refused("{\"temp\": 1e400}", HERR_INVALID, "out of range");
	refused("{\"temp\": -1e400}", HERR_INVALID, "out of range");
	refused("{\"x\": 1" "000000000000000000000000000000000000000000000000000000000000000000000000"
		"000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
		"000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
		"000000000000000000000000000000000000000000000000000000000000000000000000000000000000}",
		HERR_INVALID, "out of range");
	refused("{\"temp\": NaN}", HERR_INVALID, "not valid JSON");
	refused("{\"temp\": nan}", HERR_INVALID, "not valid JSON");
	refused("{\"temp\": Infinity}", HERR_INVALID, "not valid JSON");
	refused("{\"temp\": -Infinity}", HERR_INVALID, "not valid JSON");
	refused("{\"temp\": 0x10}", HERR_INVALID, "not valid JSON");
	refused("[1]", HERR_INVALID, "not a JSON object");
	refused("42", HERR_INVALID, "not a JSON object");
	refused("\"temp\"", HERR_INVALID, "not a JSON object");
	refused("null", HERR_INVALID, "not a JSON object");
	refused("{} {}", HERR_INVALID, "not valid JSON");
	refused("{\"a\": \"x\\u0000y\"}", HERR_INVALID, "NUL");
	refused("{\"a\\u0000\": 1}", HERR_INVALID, "NUL");
	refused_len("{\"a\": 1,\0 \"b\": 2}", 17, HERR_INVALID, "not valid JSON");
	refused("{\"a\": \"\xff\xfe\"}", HERR_INVALID, "UTF-8");
	refused("{\"\xc3\": 1}", HERR_INVALID, "UTF-8");
	/* why may be NULL */
	ck_assert_int_eq(minimize_apply(&pol, (const uint8_t *)"x", 1, &res, NULL), HERR_INVALID);
}
END_TEST

START_TEST(deep_and_huge)
{
	json_error_t err;
	char *p, *q;
	size_t n, m;

	/* 100,000 deep: larger than a payload may be, refused before any parsing. */
	p = repeat("", "[", 100000, "", &n);
	q = repeat(p, "]", 100000, "", &m);
	refused_len(q, m, HERR_TOOBIG, "larger than");
	/* jansson alone refuses it too, at its own depth limit, without exhausting the stack. */
	ck_assert_ptr_null(json_loadb(q, m, 0, &err));
	ck_assert_int_eq(json_error_code(&err), json_error_stack_overflow);
	free(p);
	free(q);
	/* 30,000 deep (within the size bound): refused by the byte scan. */
	p = repeat("{\"a\":", "[", 30000, "", &n);
	refused_len(p, n, HERR_INVALID, "nested deeper than 16");
	free(p);
	/* Objects: 16 levels are walked, 17 refused. */
	q = repeat("", "{\"a\":", MINIMIZE_MAX_DEPTH - 1, "{\"x\":1}", &m);
	p = repeat(q, "}", MINIMIZE_MAX_DEPTH - 1, "", &n);
	ck_assert_msg(apply_len(&pol, p, n) == HERR_OK, "%s", why);
	ck_assert_uint_eq(res.dropped_count, 1);
	free(q);
	q = repeat("", "a.", MINIMIZE_MAX_DEPTH - 1, "x", &m);
	assert_dropped(q);
	free(q);
	free(p);
	q = repeat("", "{\"a\":", MINIMIZE_MAX_DEPTH, "{\"x\":1}", &m);
	p = repeat(q, "}", MINIMIZE_MAX_DEPTH, "", &n);
	refused_len(p, n, HERR_INVALID, "nested deeper than 16");
	free(q);
	free(p);
	/* Brackets inside strings are text, not nesting. */
	ok("{\"s\": \"[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{\", \"t\": \"\\\"[[[[[[[[[[[[[[[[[[[[[\"}");
	ck_assert_uint_eq(res.dropped_count, 2);

	/* 100,000 elements: too large. 20,000: within the bytes, beyond the 10,000 values. */
	p = repeat("{\"a\": [0", ",0", 99999, "]}", &n);
	refused_len(p, n, HERR_TOOBIG, "larger than");
	free(p);
	p = repeat("{\"a\": [0", ",0", 19999, "]}", &n);
	refused_len(p, n, HERR_TOOBIG, "more than 10000 JSON values");
	free(p);
	p = repeat("{\"a\": [", "{},", 9999, "{}]}", &n);
	refused_len(p, n, HERR_TOOBIG, "more than 10000 JSON values");
	free(p);

	/* The size bound itself: MINIMIZE_MAX_PAYLOAD bytes are fine, one more is not. */
	p = repeat("{\"temp\": 20}", " ", MINIMIZE_MAX_PAYLOAD - 12, "", &n);
	ck_assert_uint_eq(n, MINIMIZE_MAX_PAYLOAD);
	ck_assert_msg(apply_len(&pol, p, n) == HERR_OK, "%s", why);
	ck_assert(number("temp") == 20);
	free(p);
	p = repeat("{\"temp\": 20}", " ", MINIMIZE_MAX_PAYLOAD - 11, "", &n);
	refused_len(p, n, HERR_TOOBIG, "larger than");
	free(p);
}
END_TEST

START_TEST(no_policy_keeps_nothing)
{
	ck_assert_int_eq(apply(NULL, "{\"temp\": 20, \"env\": {\"hum\": 1}, \"Motion\": 1, \"a\": [1]}"),
			 HERR_OK);
	ck_assert_uint_eq(res.count, 0);
	ck_assert_uint_eq(res.dropped_count, 4);
	ck_assert_int_eq(res.dropped_sensitive, 1);
	ck_assert_int_eq(apply(NULL, "{}"), HERR_OK);
	ck_assert_uint_eq(res.dropped_count, 0);
	ck_assert_int_eq(apply(NULL, "[]"), HERR_INVALID);
}
END_TEST

/* A policy made some other way than policy_parse() still cannot keep a sensitive field unless it
 * is marked and coarse. */
START_TEST(hand_made_policy)
{
	struct policy p;

	memset(&p, 0, sizeof(p));
	p.version = 1;
	p.count = 1;
	snprintf(p.fields[0].path, sizeof(p.fields[0].path), "Motion");
	p.fields[0].type = POLICY_NUMBER;
	p.fields[0].retention_days = 1;
	ck_assert_int_eq(apply(&p, "{\"Motion\": 1}"), HERR_OK);
	ck_assert_uint_eq(res.count, 0);
	ck_assert_int_eq(res.dropped_sensitive, 1);
	p.fields[0].sensitive_ok = 1;
	ck_assert_int_eq(apply(&p, "{\"Motion\": 1}"), HERR_OK);
	ck_assert_uint_eq(res.count, 0);
	p.fields[0].agg = POLICY_AGG_MEAN;
	p.fields[0].bucket_s = 900;
	ck_assert_int_eq(apply(&p, "{\"Motion\": 1}"), HERR_OK);
	ck_assert_uint_eq(res.count, 0);
	p.fields[0].bucket_s = 3600;
	ck_assert_int_eq(apply(&p, "{\"Motion\": 1}"), HERR_OK);
	ck_assert_uint_eq(res.count, 1);
	ck_assert_uint_eq(res.dropped_count, 0);
}
END_TEST

static Suite *minimize_suite(void)
{
	Suite *s = suite_create("minimize");
	TCase *tc = tcase_create("keep");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, keeps_allowlisted_fields);
	tcase_add_test(tc, round_then_clamp);
	tcase_add_test(tc, type_mismatches_are_dropped);
	tcase_add_test(tc, no_policy_keeps_nothing);
	tcase_add_test(tc, hand_made_policy);
	suite_add_tcase(s, tc);
	tc = tcase_create("drop");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, unknown_and_nested_sensitive);
	tcase_add_test(tc, escaped_and_cased_names);
	tcase_add_test(tc, arrays_are_dropped_whole);
	tcase_add_test(tc, dropped_names_normalised_and_distinct);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, bad_input);
	tcase_add_test(tc, deep_and_huge);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(minimize_suite());
}
