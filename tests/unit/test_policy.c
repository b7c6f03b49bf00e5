/* Unit tests of server/policy: the shipped examples parse to what they say, every rule refuses with
 * a message naming the field, unknown and duplicate keys are refused, a sensitive field needs
 * sensitive_ok and a bucket of at least an hour, and hostile input (huge, deep, not JSON) is
 * refused cleanly with nothing left behind. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/policy.h"
#include "server/sensitive.h"
#include "tests/unit/unit.h"

static char why[256];
static struct policy pol;

static enum herr parse_text(const char *text, size_t len)
{
	why[0] = '\0';
	return policy_parse((const uint8_t *)text, len, &pol, why, sizeof(why));
}

static enum herr parse(const char *text)
{
	return parse_text(text, strlen(text));
}

/* {"policy":1,"fields":{"name": spec}} */
static enum herr parse_field(const char *name, const char *spec)
{
	char text[2048];
	int n = snprintf(text, sizeof(text), "{\"policy\":1,\"fields\":{\"%s\":%s}}", name, spec);

	ck_assert(n > 0 && (size_t)n < sizeof(text));
	return parse(text);
}

/* Refused as invalid, with a message starting with want; nothing is left in the policy. */
static void refused_msg(enum herr rc, const char *input, const char *want)
{
	static const struct policy zero;

	ck_assert_msg(rc == HERR_INVALID, "accepted (%d): %s", rc, input);
	ck_assert_msg(strncmp(why, want, strlen(want)) == 0, "why \"%s\", want \"%s...\" for %s", why,
		      want, input);
	ck_assert_mem_eq(&pol, &zero, sizeof(pol));
}

static void field_refused(const char *name, const char *spec, const char *want)
{
	refused_msg(parse_field(name, spec), spec, want);
}

static void refused(const char *text, const char *want)
{
	refused_msg(parse(text), text, want);
}

static const struct policy_field *field(const char *path)
{
	size_t i;

	for (i = 0; i < pol.count; i++)
		if (strcmp(pol.fields[i].path, path) == 0)
			return &pol.fields[i];
	ck_abort_msg("no field %s", path);
	return NULL;
}

static void parse_file(const char *path)
{
	uint8_t *data;
	size_t len;

	unit_read_file(path, POLICY_MAX_BYTES, &data, &len);
	ck_assert_msg(policy_parse(data, len, &pol, why, sizeof(why)) == HERR_OK, "%s: %s", path, why);
	free(data);
}

START_TEST(example_smart_heater)
{
	const struct policy_field *f;
	char kept[512];

	parse_file("schema/policies/smart-heater.json");
	ck_assert_uint_eq(pol.version, 1);
	ck_assert_uint_eq(pol.last_seen_bucket_s, 3600);
	ck_assert_uint_eq(pol.count, 5);
	f = field("temperature");
	ck_assert_int_eq(f->type, POLICY_NUMBER);
	ck_assert(f->round_step == 0.5);
	ck_assert(f->has_clamp && f->clamp_min == -40 && f->clamp_max == 85);
	ck_assert_int_eq(f->agg, POLICY_AGG_MEAN);
	ck_assert_uint_eq(f->bucket_s, 3600);
	ck_assert_uint_eq(f->retention_days, 365);
	f = field("setpoint");
	ck_assert(f->round_step == 0.5 && f->agg == POLICY_AGG_MEAN && f->bucket_s == 3600);
	/* Humidity follows the people: weekly only (tests/privacy/ measured hourly and daily leaks). */
	f = field("humidity");
	ck_assert(f->round_step == 5 && f->agg == POLICY_AGG_MEAN && f->bucket_s == 604800);
	f = field("error_code");
	ck_assert(f->type == POLICY_STRING && f->max_len == 32 && f->agg == POLICY_AGG_LAST);
	f = field("firmware");
	ck_assert(f->type == POLICY_STRING && f->agg == POLICY_AGG_LAST && f->bucket_s == 86400);
	/* A plain heater keeps nothing presence-revealing, not even coarsened. */
	ck_assert_uint_eq(policy_sensitive_kept(&pol, kept, sizeof(kept)), 0);
	ck_assert_str_eq(kept, "");
}
END_TEST

START_TEST(example_smart_heater_presence)
{
	char kept[512];

	parse_file("schema/policies/smart-heater-presence.json");
	ck_assert_uint_eq(pol.count, 5);
	/* The setpoint follows presence: weekly, and declared so; temperature and humidity too. */
	ck_assert_uint_eq(field("setpoint")->bucket_s, 604800);
	ck_assert(field("setpoint")->sensitive_ok);
	ck_assert_uint_eq(field("temperature")->bucket_s, 604800);
	ck_assert_uint_eq(field("humidity")->bucket_s, 604800);
	ck_assert_uint_eq(policy_sensitive_kept(&pol, kept, sizeof(kept)), 1);
	ck_assert_msg(strstr(kept, "setpoint") && strstr(kept, "604800"), "%s", kept);
}
END_TEST

START_TEST(example_from_the_docs)
{
	static const char text[] =
		"{ \"policy\": 1, \"last_seen_bucket_s\": 3600,\n"
		"  \"fields\": { \"temp\": {\"type\": \"number\", \"round\": 0.5, \"clamp\": [-40, 85], "
		"\"aggregate\": \"mean\", \"bucket_s\": 900, \"retention_days\": 365},\n"
		"  \"error_code\": {\"type\": \"string\", \"max_len\": 32, \"aggregate\": \"last\", "
		"\"bucket_s\": 3600, \"retention_days\": 90},\n"
		"  \"co2_ppm\": {\"type\": \"number\", \"aggregate\": \"mean\", \"bucket_s\": 3600, "
		"\"sensitive_ok\": true, \"retention_days\": 30} } }";
	char kept[512], small[8];

	ck_assert_msg(parse(text) == HERR_OK, "%s", why);
	ck_assert_uint_eq(pol.count, 3);
	ck_assert_uint_eq(field("temp")->bucket_s, 900);
	ck_assert(field("co2_ppm")->sensitive_ok);
	ck_assert(!field("temp")->sensitive_ok);
	ck_assert_uint_eq(policy_sensitive_kept(&pol, kept, sizeof(kept)), 1);
	ck_assert_msg(strstr(kept, "co2_ppm (") && strstr(kept, sensitive_family_name(SENSITIVE_AIR_QUALITY)),
		      "%s", kept);
	/* A short buffer is cut, still terminated, and the count is the same. */
	ck_assert_uint_eq(policy_sensitive_kept(&pol, small, sizeof(small)), 1);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_uint_eq(policy_sensitive_kept(&pol, NULL, 0), 1);
}
END_TEST

START_TEST(defaults)
{
	ck_assert_msg(parse("{\"policy\":1,\"fields\":{\"s\":{\"type\":\"string\",\"retention_days\":1},"
			    "\"b\":{\"type\":\"bool\",\"retention_days\":3650}}}") == HERR_OK, "%s", why);
	ck_assert_uint_eq(pol.last_seen_bucket_s, 3600);
	ck_assert_uint_eq(field("s")->max_len, 64);
	ck_assert_int_eq(field("s")->agg, POLICY_AGG_NONE);
	ck_assert_uint_eq(field("s")->bucket_s, 0);
	ck_assert_int_eq(field("b")->type, POLICY_BOOL);
	ck_assert(!field("b")->has_clamp && field("b")->round_step == 0);
	/* No fields at all: a model that stores only the coarse last-seen time. */
	ck_assert_msg(parse("{\"policy\":1,\"fields\":{},\"last_seen_bucket_s\":86400}") == HERR_OK, "%s",
		      why);
	ck_assert_uint_eq(pol.count, 0);
	ck_assert_uint_eq(pol.last_seen_bucket_s, 86400);
	ck_assert_int_eq(parse("{\"policy\":1,\"fields\":{},\"description\":\"x\"}"), HERR_OK);
}
END_TEST

START_TEST(top_level_rules)
{
	refused("[]", "policy: must be a JSON object");
	refused("{\"fields\":{}}", "policy: must be 1");
	refused("{\"policy\":2,\"fields\":{}}", "policy: must be 1");
	refused("{\"policy\":1.0,\"fields\":{}}", "policy: must be 1");
	refused("{\"policy\":\"1\",\"fields\":{}}", "policy: must be 1");
	refused("{\"policy\":1,\"fields\":{},\"colour\":1}", "colour: unknown key");
	refused("{\"policy\":1}", "fields: required");
	refused("{\"policy\":1,\"fields\":[]}", "fields: required");
	refused("{\"policy\":1,\"fields\":{},\"description\":5}", "description: must be a string");
	refused("{\"policy\":1,\"fields\":{},\"last_seen_bucket_s\":59}", "last_seen_bucket_s: must be");
	refused("{\"policy\":1,\"fields\":{},\"last_seen_bucket_s\":86401}", "last_seen_bucket_s: must be");
	refused("{\"policy\":1,\"fields\":{},\"last_seen_bucket_s\":\"3600\"}",
		"last_seen_bucket_s: must be");
	refused("{\"policy\":1,\"fields\":{\"temp\":5}}", "fields.temp: must be an object");
}
END_TEST

START_TEST(field_rules)
{
	field_refused("temp", "{\"retention_days\":30}", "fields.temp.type: required");
	field_refused("temp", "{\"type\":\"float\",\"retention_days\":30}", "fields.temp.type: must be");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"rounding\":1}",
		      "fields.temp.rounding: unknown key");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"round\":0}",
		      "fields.temp.round: must be a positive number");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"round\":-0.5}",
		      "fields.temp.round: must be a positive number");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"round\":\"0.5\"}",
		      "fields.temp.round: must be a positive number");
	field_refused("code", "{\"type\":\"string\",\"retention_days\":30,\"round\":1}",
		      "fields.code.round: only for numbers");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"clamp\":[5,5]}",
		      "fields.temp.clamp: must be [min, max] with min < max");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"clamp\":[10,0]}",
		      "fields.temp.clamp: must be [min, max]");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"clamp\":[1]}",
		      "fields.temp.clamp: must be [min, max]");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"clamp\":[1,2,3]}",
		      "fields.temp.clamp: must be [min, max]");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"clamp\":[1,\"2\"]}",
		      "fields.temp.clamp: must be [min, max]");
	field_refused("on", "{\"type\":\"bool\",\"retention_days\":30,\"clamp\":[0,1]}",
		      "fields.on.clamp: only for numbers");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"aggregate\":\"avg\"}",
		      "fields.temp.aggregate: must be none, mean, min, max, last or count");
	field_refused("code", "{\"type\":\"string\",\"retention_days\":30,\"aggregate\":\"mean\",\"bucket_s\":3600}",
		      "fields.code.aggregate: mean is only for numbers");
	field_refused("on", "{\"type\":\"bool\",\"retention_days\":30,\"aggregate\":\"max\",\"bucket_s\":3600}",
		      "fields.on.aggregate: max is only for numbers");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"aggregate\":\"mean\"}",
		      "fields.temp.bucket_s: required with aggregate mean");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"aggregate\":\"mean\",\"bucket_s\":59}",
		      "fields.temp.bucket_s: must be an integer 60..604800");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"aggregate\":\"mean\",\"bucket_s\":604801}",
		      "fields.temp.bucket_s: must be an integer");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"aggregate\":\"mean\",\"bucket_s\":3600.0}",
		      "fields.temp.bucket_s: must be an integer");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"bucket_s\":3600}",
		      "fields.temp.bucket_s: only with an aggregate");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"aggregate\":\"none\",\"bucket_s\":3600}",
		      "fields.temp.bucket_s: only with an aggregate");
	field_refused("temp", "{\"type\":\"number\"}", "fields.temp.retention_days: required");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":0}",
		      "fields.temp.retention_days: must be an integer 1..3650");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":3651}",
		      "fields.temp.retention_days: must be");
	field_refused("code", "{\"type\":\"string\",\"retention_days\":30,\"max_len\":0}",
		      "fields.code.max_len: must be an integer 1..255");
	field_refused("code", "{\"type\":\"string\",\"retention_days\":30,\"max_len\":256}",
		      "fields.code.max_len: must be");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"max_len\":8}",
		      "fields.temp.max_len: only for strings");
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"sensitive_ok\":1}",
		      "fields.temp.sensitive_ok: must be true or false");
	/* sensitive_ok declares a field sensitive, even one the catalogue does not know. */
	field_refused("temp", "{\"type\":\"number\",\"retention_days\":30,\"sensitive_ok\":true,"
		      "\"aggregate\":\"mean\",\"bucket_s\":900}",
		      "fields.temp.sensitive_ok: needs an aggregate over a bucket of at least 3600 s");

	/* The edges that are fine. */
	ck_assert_int_eq(parse_field("code", "{\"type\":\"string\",\"retention_days\":1,\"max_len\":255,"
				     "\"aggregate\":\"count\",\"bucket_s\":60}"), HERR_OK);
	ck_assert_int_eq(parse_field("on", "{\"type\":\"bool\",\"retention_days\":3650,"
				     "\"aggregate\":\"last\",\"bucket_s\":604800}"), HERR_OK);
	ck_assert_int_eq(parse_field("t", "{\"type\":\"number\",\"retention_days\":1,\"round\":1e-9,"
				     "\"clamp\":[-1e300,1e300]}"), HERR_OK);
}
END_TEST

START_TEST(field_names)
{
	static const char *const bad[] = {
		"", "a..b", ".a", "a.", "a b", "t\\u00e9mp", "a/b", "a.b.c.d.e.f.g.h.i",
		"abcdefghijklmnopqrstuvwxyz0123456", /* 33 */
	};
	static const char *const good[] = {
		"a", "A-b_9", "a.b.c.d.e.f.g.h", "abcdefghijklmnopqrstuvwxyz012345", "env.Hum",
	};
	const char *spec = "{\"type\":\"number\",\"retention_days\":30}";
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse_field(bad[i], spec) == HERR_INVALID, "accepted %s", bad[i]);
		ck_assert_msg(strncmp(why, "fields.", 7) == 0 && strstr(why, "a dotted path"), "%s", why);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(parse_field(good[i], spec) == HERR_OK, "%s: %s", good[i], why);
		ck_assert_str_eq(pol.fields[0].path, good[i]);
	}
	/* Four components of 32 make 131 characters: more than a path holds. */
	ck_assert_int_eq(parse_field("abcdefghijklmnopqrstuvwxyz012345.abcdefghijklmnopqrstuvwxyz012345."
				     "abcdefghijklmnopqrstuvwxyz012345.abcdefghijklmnopqrstuvwxyz012345",
				     spec), HERR_INVALID);
	/* A control character in a name is not printed as is. */
	ck_assert_int_eq(parse_field("a\\u0001b", spec), HERR_INVALID);
	ck_assert_msg(strncmp(why, "fields.a?b:", 11) == 0, "%s", why);
}
END_TEST

START_TEST(too_many_fields)
{
	char text[8192];
	size_t n;
	int i;

	for (int count = POLICY_MAX_FIELDS; count <= POLICY_MAX_FIELDS + 1; count++) {
		n = (size_t)snprintf(text, sizeof(text), "{\"policy\":1,\"fields\":{");
		for (i = 0; i < count; i++)
			n += (size_t)snprintf(text + n, sizeof(text) - n,
					      "%s\"f%d\":{\"type\":\"bool\",\"retention_days\":1}",
					      i ? "," : "", i);
		n += (size_t)snprintf(text + n, sizeof(text) - n, "}}");
		ck_assert_uint_lt(n, sizeof(text));
		if (count == POLICY_MAX_FIELDS) {
			ck_assert_msg(parse(text) == HERR_OK, "%s", why);
			ck_assert_uint_eq(pol.count, POLICY_MAX_FIELDS);
		} else {
			refused(text, "fields: more than 64 fields");
		}
	}
}
END_TEST

START_TEST(duplicate_keys)
{
	refused("{\"policy\":1,\"policy\":1,\"fields\":{}}", "policy: not valid JSON");
	ck_assert_msg(strstr(why, "duplicate"), "%s", why);
	refused("{\"policy\":1,\"fields\":{\"t\":{\"type\":\"bool\",\"retention_days\":1},"
		"\"t\":{\"type\":\"bool\",\"retention_days\":1}}}", "policy: not valid JSON");
	ck_assert_msg(strstr(why, "duplicate") && strstr(why, "t"), "%s", why);
	refused("{\"policy\":1,\"fields\":{\"t\":{\"type\":\"bool\",\"type\":\"bool\",\"retention_days\":1}}}",
		"policy: not valid JSON");
	/* Names differing in case are different fields. */
	ck_assert_int_eq(parse("{\"policy\":1,\"fields\":{\"t\":{\"type\":\"bool\",\"retention_days\":1},"
			       "\"T\":{\"type\":\"bool\",\"retention_days\":1}}}"), HERR_OK);
}
END_TEST

START_TEST(sensitive_fields)
{
	char want[128];

	snprintf(want, sizeof(want), "fields.co2_ppm: sensitive (%s): needs sensitive_ok and a bucket "
		 "of at least 3600 s", sensitive_family_name(SENSITIVE_AIR_QUALITY));
	field_refused("co2_ppm", "{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":3600,"
		      "\"retention_days\":30}", want);
	ck_assert_str_eq(why, want);
	ck_assert_msg(parse_field("co2_ppm", "{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":3600,"
				  "\"sensitive_ok\":true,\"retention_days\":30}") == HERR_OK, "%s", why);
	field_refused("co2_ppm", "{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":900,"
		      "\"sensitive_ok\":true,\"retention_days\":30}", want);
	field_refused("co2_ppm", "{\"type\":\"number\",\"sensitive_ok\":true,\"retention_days\":30}", want);
	field_refused("co2_ppm", "{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":86400,"
		      "\"sensitive_ok\":false,\"retention_days\":30}", want);
	/* Any component of the path, any case. */
	snprintf(want, sizeof(want), "fields.room.Motion: sensitive (%s)",
		 sensitive_family_name(SENSITIVE_MOTION));
	field_refused("room.Motion", "{\"type\":\"bool\",\"aggregate\":\"count\",\"bucket_s\":3600,"
		      "\"retention_days\":30}", want);
	snprintf(want, sizeof(want), "fields.Motion.count: sensitive (%s)",
		 sensitive_family_name(SENSITIVE_MOTION));
	field_refused("Motion.count", "{\"type\":\"number\",\"aggregate\":\"max\",\"bucket_s\":3600,"
		      "\"retention_days\":30}", want);
	ck_assert_int_eq(parse_field("room.Motion", "{\"type\":\"bool\",\"aggregate\":\"count\","
				     "\"bucket_s\":86400,\"sensitive_ok\":true,\"retention_days\":30}"),
			 HERR_OK);
	/* Its other mistakes are reported first. */
	field_refused("co2_ppm", "{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":900,"
		      "\"retention_days\":0}", "fields.co2_ppm.retention_days: must be");
}
END_TEST

START_TEST(hostile_input)
{
	static const struct policy zero;
	static const char nul[] = "{\"policy\":1,\0\"fields\":{}}";
	char *big;
	size_t n;

	refused("", "policy: not valid JSON");
	refused("policy", "policy: not valid JSON");
	refused("{\"policy\":1,\"fields\":{", "policy: not valid JSON");
	refused("{\"policy\":1,\"fields\":{\"t\":{\"type\":\"number\",\"round\":NaN,\"retention_days\":1}}}",
		"policy: not valid JSON");
	refused("{\"policy\":1,\"fields\":{\"t\":{\"type\":\"number\",\"round\":1e400,\"retention_days\":1}}}",
		"policy: not valid JSON");
	refused("{\"policy\":1,\"fields\":{\"t\":{\"type\":\"number\",\"retention_days\":99999999999999999999}}}",
		"policy: not valid JSON");
	refused_msg(parse_text(nul, sizeof(nul) - 1), "NUL", "policy: not valid JSON");
	refused("{\"policy\":1,\"fields\":{}} {}", "policy: not valid JSON");

	/* Deeper than jansson's own limit (2048) but within the size bound: refused, no crash. */
	n = 60000;
	big = malloc(POLICY_MAX_BYTES + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, '[', n);
	refused_msg(parse_text(big, n), "60000 [", "policy: not valid JSON");
	/* Larger than a policy may be. */
	memset(big, ' ', POLICY_MAX_BYTES + 1);
	memcpy(big, "{\"policy\":1,\"fields\":{}}", 24);
	ck_assert_int_eq(parse_text(big, POLICY_MAX_BYTES + 1), HERR_TOOBIG);
	ck_assert_mem_eq(&pol, &zero, sizeof(pol));
	ck_assert_int_eq(parse_text(big, POLICY_MAX_BYTES), HERR_OK);
	free(big);
	/* why may be NULL, or small. */
	ck_assert_int_eq(policy_parse((const uint8_t *)"x", 1, &pol, NULL, 0), HERR_INVALID);
	ck_assert_int_eq(policy_parse((const uint8_t *)"x", 1, &pol, why, 4), HERR_INVALID);
	ck_assert_str_eq(why, "pol");
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("examples");

	tcase_add_test(tc, example_smart_heater);
	tcase_add_test(tc, example_smart_heater_presence);
	tcase_add_test(tc, example_from_the_docs);
	tcase_add_test(tc, defaults);
	suite_add_tcase(s, tc);
	tc = tcase_create("rules");
	tcase_add_test(tc, top_level_rules);
	tcase_add_test(tc, field_rules);
	tcase_add_test(tc, field_names);
	tcase_add_test(tc, too_many_fields);
	tcase_add_test(tc, duplicate_keys);
	tcase_add_test(tc, sensitive_fields);
	tcase_add_test(tc, hostile_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(policy_suite());
}
