/* Unit tests of server/rest_parse: route patterns and their ids, percent-decoding (%00 kept
 * literal), query numbers at and past their bounds, Range as RFC 9110 reads it, the bearer header,
 * content types and lengths, and the JSON bodies: accepted ones as they are, refused ones with the
 * status, code and message the API answers. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/rest_parse.h"
#include "tests/unit/unit.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define API_TOKEN "hth_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static json_t *object(const char *text)
{
	struct rest_fault f;
	json_t *o = rest_parse_object((const uint8_t *)text, strlen(text), &f);

	ck_assert_msg(o != NULL, "%s: %s", text, f.message);
	return o;
}

static void assert_fault(const struct rest_fault *f, unsigned status, const char *code, const char *message)
{
	ck_assert_uint_eq(f->status, status);
	ck_assert_str_eq(f->code, code);
	ck_assert_str_eq(f->message, message);
}

START_TEST(test_route)
{
	char p[REST_PARSE_PARAMS][REST_PARSE_PARAM_MAX];
	char long_id[80];

	ck_assert_int_eq(rest_parse_route("/api/v1/devices/{id}", "/api/v1/devices/dev-1", p), 1);
	ck_assert_str_eq(p[0], "dev-1");
	ck_assert_int_eq(rest_parse_route("/api/v1/models/{name}/firmware", "/api/v1/models/heater/firmware", p), 1);
	ck_assert_str_eq(p[0], "heater");
	ck_assert_int_eq(rest_parse_route("/api/v1/{a}/x/{b}", "/api/v1/one/x/two", p), 1);
	ck_assert_str_eq(p[1], "two");
	/* Other shapes, and a segment that is no id. */
	ck_assert_int_eq(rest_parse_route("/api/v1/devices/{id}", "/api/v1/devices", p), 0);
	ck_assert_int_eq(rest_parse_route("/api/v1/devices/{id}", "/api/v1/devices/a/b", p), 0);
	ck_assert_int_eq(rest_parse_route("/api/v1/devices", "/api/v1/devices/", p), 0);
	ck_assert_int_eq(rest_parse_route("/api/v1/devices/{id}", "/api/v1/devices/a.b", p), -1);
	ck_assert_int_eq(rest_parse_route("/api/v1/devices/{id}", "/api/v1/devices/x%00y", p), -1);
	ck_assert_int_eq(rest_parse_route("/api/v1/devices/{id}/revoke", "/api/v1/devices//revoke", p), -1);
	ck_assert_int_eq(rest_parse_route("/{id}/revoke", "/", p), 0);
	/* 64 characters are an id, 65 are not. */
	snprintf(long_id, sizeof(long_id), "%065d/revoke", 0);
	ck_assert_int_eq(rest_parse_route("{id}/revoke", long_id, p), -1);
	snprintf(long_id, sizeof(long_id), "%064d/revoke", 0);
	ck_assert_int_eq(rest_parse_route("{id}/revoke", long_id, p), 1);
	ck_assert_uint_eq(strlen(p[0]), 64);
}
END_TEST

START_TEST(test_unescape)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "abc", "abc" }, { "%41%62%2f", "Ab/" }, { "x%00y", "x%00y" }, { "%zz%4", "%zz%4" },
		{ "%", "%" }, { "100%25", "100%" }, { "%2500", "%00" },
	};
	char buf[32];
	size_t i;

	for (i = 0; i < N_ELEMS(cases); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		ck_assert_uint_eq(rest_parse_unescape(buf), strlen(cases[i].out));
		ck_assert_str_eq(buf, cases[i].out);
	}
}
END_TEST

START_TEST(test_numbers)
{
	int64_t s = -1;
	size_t l = 0;

	ck_assert_int_eq(rest_parse_seconds("0", &s), 0);
	ck_assert_int_eq(s, 0);
	ck_assert_int_eq(rest_parse_seconds("253402300799", &s), 0);
	ck_assert_int_eq(s, REST_PARSE_SECONDS_MAX);
	ck_assert_int_eq(rest_parse_seconds("253402300800", &s), -1);
	ck_assert_int_eq(rest_parse_seconds("0000000000001", &s), -1); /* 13 digits */
	ck_assert_int_eq(rest_parse_seconds("", &s), -1);
	ck_assert_int_eq(rest_parse_seconds("-1", &s), -1);
	ck_assert_int_eq(rest_parse_seconds("1e3", &s), -1);
	ck_assert_int_eq(rest_parse_seconds(" 1", &s), -1);

	ck_assert_int_eq(rest_parse_limit("1", 1000, &l), 0);
	ck_assert_uint_eq(l, 1);
	ck_assert_int_eq(rest_parse_limit("1000", 1000, &l), 0);
	ck_assert_int_eq(rest_parse_limit("0001000", 1000, &l), 0);
	ck_assert_int_eq(rest_parse_limit("1001", 1000, &l), -1);
	ck_assert_int_eq(rest_parse_limit("0", 1000, &l), -1);
	ck_assert_int_eq(rest_parse_limit("00000001", 1000, &l), -1); /* 8 digits */
	ck_assert_int_eq(rest_parse_limit("+5", 1000, &l), -1);

	ck_assert_int_eq(rest_parse_audit_cursor("42", &s), 0);
	ck_assert_int_eq(s, 42);
	ck_assert_int_eq(rest_parse_audit_cursor("0", &s), -1);
	ck_assert_int_eq(rest_parse_audit_cursor("4x", &s), -1);

	ck_assert_int_eq(rest_parse_count("2147483647", INT32_MAX), INT32_MAX);
	ck_assert_int_eq(rest_parse_count("2147483648", INT32_MAX), -1);
	ck_assert_int_eq(rest_parse_count("1234567890123456789", INT64_MAX), -1); /* 19 digits */
	ck_assert_int_eq(rest_parse_count("", 10), -1);
}
END_TEST

START_TEST(test_range)
{
	uint64_t from = 0, to = 0;

	ck_assert_int_eq(rest_parse_range("bytes=0-499", 10000, &from, &to), 1);
	ck_assert_uint_eq(from, 0);
	ck_assert_uint_eq(to, 499);
	ck_assert_int_eq(rest_parse_range("bytes=9500-", 10000, &from, &to), 1);
	ck_assert_uint_eq(from, 9500);
	ck_assert_uint_eq(to, 9999);
	ck_assert_int_eq(rest_parse_range("bytes=-500", 10000, &from, &to), 1);
	ck_assert_uint_eq(from, 9500);
	ck_assert_int_eq(rest_parse_range("bytes=-20000", 10000, &from, &to), 1);
	ck_assert_uint_eq(from, 0);
	ck_assert_int_eq(rest_parse_range("bytes=100-200000", 10000, &from, &to), 1);
	ck_assert_uint_eq(to, 9999);
	/* Unsatisfiable: 416. */
	ck_assert_int_eq(rest_parse_range("bytes=10000-", 10000, &from, &to), -1);
	ck_assert_int_eq(rest_parse_range("bytes=-0", 10000, &from, &to), -1);
	ck_assert_int_eq(rest_parse_range("bytes=0-", 0, &from, &to), -1);
	/* Not one range we serve, or not valid: the whole image. */
	ck_assert_int_eq(rest_parse_range(NULL, 10000, &from, &to), 0);
	ck_assert_int_eq(rest_parse_range("bytes=0-1,5-9", 10000, &from, &to), 0);
	ck_assert_int_eq(rest_parse_range("bytes=5-2", 10000, &from, &to), 0);
	ck_assert_int_eq(rest_parse_range("bytes=-", 10000, &from, &to), 0);
	ck_assert_int_eq(rest_parse_range("bytes=a-b", 10000, &from, &to), 0);
	ck_assert_int_eq(rest_parse_range("items=0-1", 10000, &from, &to), 0);
	ck_assert_int_eq(rest_parse_range("bytes=99999999999999999999999-", 10000, &from, &to), 0);
}
END_TEST

START_TEST(test_headers)
{
	char id[TOKEN_ID_LEN + 1], hash[TOKEN_HASH_LEN];
	uint64_t n = 0;

	ck_assert_int_eq(rest_parse_bearer("Bearer " API_TOKEN, id, hash), REST_BEARER_OK);
	ck_assert_str_eq(id, "0123456789abcdef");
	ck_assert_int_eq(rest_parse_bearer("bearer " API_TOKEN, id, hash), REST_BEARER_OK);
	ck_assert_int_eq(rest_parse_bearer("Bearer  " API_TOKEN, id, hash), REST_BEARER_BAD);
	ck_assert_int_eq(rest_parse_bearer("Bearer hte_0123456789abcdef_0123456789abcdef0123456789abcdef"
					   "0123456789abcdef0123456789abcdef", id, hash), REST_BEARER_BAD);
	ck_assert_int_eq(rest_parse_bearer("Basic dXNlcjpwYXNz", id, hash), REST_BEARER_NONE);
	ck_assert_int_eq(rest_parse_bearer(NULL, id, hash), REST_BEARER_NONE);

	ck_assert(rest_parse_is_json("application/json"));
	ck_assert(rest_parse_is_json("Application/JSON; charset=utf-8"));
	ck_assert(!rest_parse_is_json("application/jsonp"));
	ck_assert(!rest_parse_is_json("text/json"));
	ck_assert(!rest_parse_is_json(NULL));
	ck_assert(rest_parse_is_octet_stream("application/octet-stream"));
	ck_assert(rest_parse_is_octet_stream("application/octet-stream;x=1"));
	ck_assert(!rest_parse_is_octet_stream("application/octet-streams"));

	ck_assert(!rest_parse_body_too_big(NULL));
	ck_assert(!rest_parse_body_too_big("65536"));
	ck_assert(rest_parse_body_too_big("65537"));
	ck_assert(rest_parse_body_too_big("0000000001")); /* 10 digits */
	ck_assert_uint_eq(rest_parse_upload_length("536870912", &n), 0);
	ck_assert_uint_eq(n, 536870912);
	ck_assert_uint_eq(rest_parse_upload_length("536870913", &n), 413);
	ck_assert_uint_eq(rest_parse_upload_length("0", &n), 413);
	ck_assert_uint_eq(rest_parse_upload_length("12 ", &n), 413);
	ck_assert_uint_eq(rest_parse_upload_length(NULL, &n), 411);
}
END_TEST

START_TEST(test_object)
{
	struct rest_fault f;
	static const char *const allowed[] = { "a", "b", NULL };
	json_t *o;

	ck_assert_ptr_null(rest_parse_object((const uint8_t *)"[1]", 3, &f));
	assert_fault(&f, 400, "invalid_json", "the body must be a JSON object");
	ck_assert_ptr_null(rest_parse_object((const uint8_t *)"{\"a\":1,\"a\":2}", 13, &f));
	ck_assert_uint_eq(f.status, 400);
	ck_assert_ptr_null(rest_parse_object((const uint8_t *)"{\"a\":\"x\\u0000\"}", 15, &f));
	ck_assert_ptr_null(rest_parse_object((const uint8_t *)"", 0, &f));
	o = object("{\"a\": 1, \"b\": 2}");
	ck_assert_int_eq(rest_parse_known_keys(o, allowed, &f), 0);
	json_decref(o);
	o = object("{\"a\": 1, \"admin\": true}");
	ck_assert_int_eq(rest_parse_known_keys(o, allowed, &f), -1);
	assert_fault(&f, 422, "unknown_field", "unknown field 'admin'");
	json_decref(o);
}
END_TEST

START_TEST(test_devices)
{
	struct rest_device_change ch;
	struct rest_device_new dn;
	struct rest_fault f;
	json_t *o;

	o = object("{\"model\": \"heater\", \"csr\": \"PEM\"}");
	ck_assert_int_eq(rest_parse_device_new(o, &dn, &f), 0);
	ck_assert_str_eq(dn.model, "heater");
	ck_assert_ptr_null(dn.id);
	json_decref(o);
	o = object("{\"model\": \"heater\"}");
	ck_assert_int_eq(rest_parse_device_new(o, &dn, &f), -1);
	assert_fault(&f, 422, "invalid_field", "'csr' is required");
	json_decref(o);
	o = object("{\"model\": \"heat er\", \"csr\": \"x\"}");
	ck_assert_int_eq(rest_parse_device_new(o, &dn, &f), -1);
	assert_fault(&f, 422, "invalid_field", "'model' must match [A-Za-z0-9_-]{1,64}");
	json_decref(o);
	o = object("{\"model\": \"h\", \"csr\": 1}");
	ck_assert_int_eq(rest_parse_device_new(o, &dn, &f), -1);
	assert_fault(&f, 422, "invalid_field", "'csr' must be a string");
	json_decref(o);

	o = object("{\"tags\": [\"kitchen\", \"floor:1\"]}");
	ck_assert_int_eq(rest_parse_device_change(o, &ch, &f), 0);
	ck_assert(ch.has_tags);
	ck_assert_uint_eq(ch.tag_count, 2);
	ck_assert_str_eq(ch.tags[1], "floor:1");
	ck_assert_ptr_null(ch.model);
	json_decref(o);
	o = object("{\"tags\": []}");
	ck_assert_int_eq(rest_parse_device_change(o, &ch, &f), 0);
	ck_assert(ch.has_tags);
	ck_assert_uint_eq(ch.tag_count, 0);
	json_decref(o);
	o = object("{}");
	ck_assert_int_eq(rest_parse_device_change(o, &ch, &f), 0);
	ck_assert(!ch.has_tags);
	json_decref(o);
	o = object("{\"tags\": [\"ok\", \"not ok\"]}");
	ck_assert_int_eq(rest_parse_device_change(o, &ch, &f), -1);
	assert_fault(&f, 422, "invalid_field", "tags[1] must match [A-Za-z0-9_.:-]{1,64}");
	json_decref(o);
	o = object("{\"tags\": [\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
		   "\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\"]}");
	ck_assert_int_eq(rest_parse_device_change(o, &ch, &f), -1);
	assert_fault(&f, 422, "invalid_field", "'tags' must be an array of at most 32 strings");
	json_decref(o);
}
END_TEST

START_TEST(test_enrollment)
{
	struct rest_enroll_token_new t;
	struct rest_enroll_request e;
	struct rest_fault f;
	const char *csr;
	size_t len;
	json_t *o;

	o = object("{\"model\": \"heater\", \"ttl_s\": 60}");
	ck_assert_int_eq(rest_parse_enroll_token_new(o, &t, &f), 0);
	ck_assert_int_eq(t.ttl_s, 60);
	ck_assert_ptr_null(t.device_id);
	json_decref(o);
	o = object("{\"model\": \"heater\"}");
	ck_assert_int_eq(rest_parse_enroll_token_new(o, &t, &f), 0);
	ck_assert_int_eq(t.ttl_s, REST_PARSE_TTL_DEFAULT_S);
	json_decref(o);
	o = object("{\"model\": \"heater\", \"ttl_s\": 2592001}");
	ck_assert_int_eq(rest_parse_enroll_token_new(o, &t, &f), -1);
	assert_fault(&f, 422, "invalid_field", "'ttl_s' must be an integer 60..2592000 (seconds)");
	json_decref(o);
	o = object("{\"device_id\": \"d1\"}");
	ck_assert_int_eq(rest_parse_enroll_token_new(o, &t, &f), -1);
	assert_fault(&f, 422, "missing_field", "'model' is required");
	json_decref(o);

	o = object("{\"token\": \"hte_x\", \"csr\": \"PEM\"}");
	ck_assert_int_eq(rest_parse_enroll(o, &e, &f), 0);
	ck_assert_uint_eq(e.token_len, 5);
	ck_assert_uint_eq(e.csr_len, 3);
	json_decref(o);
	o = object("{\"token\": \"hte_x\"}");
	ck_assert_int_eq(rest_parse_enroll(o, &e, &f), -1);
	assert_fault(&f, 422, "missing_field", "'token' and 'csr' are required strings");
	json_decref(o);

	o = object("{\"csr\": \"PEM\"}");
	ck_assert_int_eq(rest_parse_renew(o, &csr, &len, &f), 0);
	ck_assert_uint_eq(len, 3);
	json_decref(o);
	o = object("{\"csr\": null}");
	ck_assert_int_eq(rest_parse_renew(o, &csr, &len, &f), -1);
	assert_fault(&f, 422, "invalid_field", "csr: a PEM certificate request (string) is required");
	json_decref(o);
}
END_TEST

START_TEST(test_rollouts)
{
	static struct rest_rollout_new r;
	char reason[REST_PARSE_REASON_MAX + 1] = "default";
	struct rest_fault f;
	unsigned pct;
	json_t *o;

	o = object("{\"release\": \"r1\", \"devices\": [\"a\", \"b\"]}");
	ck_assert_int_eq(rest_parse_rollout_new(o, 25, &r, &f), 0);
	ck_assert_int_eq(r.kind, REST_COHORT_LIST);
	ck_assert_uint_eq(r.device_count, 2);
	ck_assert_str_eq(r.devices[1], "b");
	ck_assert_uint_eq(r.failure_threshold, 25);
	json_decref(o);
	o = object("{\"release\": \"r1\", \"tag\": \"beta\", \"failure_threshold\": 0}");
	ck_assert_int_eq(rest_parse_rollout_new(o, 25, &r, &f), 0);
	ck_assert_int_eq(r.kind, REST_COHORT_TAG);
	ck_assert_uint_eq(r.failure_threshold, 0);
	json_decref(o);
	o = object("{\"release\": \"r1\", \"percent\": 10, \"tag\": \"beta\"}");
	ck_assert_int_eq(rest_parse_rollout_new(o, 25, &r, &f), -1);
	assert_fault(&f, 422, "invalid_cohort", "give exactly one of 'percent', 'devices' or 'tag'");
	json_decref(o);
	o = object("{\"percent\": 10}");
	ck_assert_int_eq(rest_parse_rollout_new(o, 25, &r, &f), -1);
	assert_fault(&f, 422, "missing_field", "'release' (a release id) is required");
	ck_assert_int_eq(rest_parse_rollout_widen(o, &pct, &f), 0);
	ck_assert_uint_eq(pct, 10);
	json_decref(o);
	o = object("{\"percent\": 101}");
	ck_assert_int_eq(rest_parse_rollout_widen(o, &pct, &f), -1);
	assert_fault(&f, 422, "invalid_field", "'percent' must be an integer 1..100");
	json_decref(o);

	o = object("{}");
	ck_assert_int_eq(rest_parse_rollout_abort(o, reason, &f), 0);
	ck_assert_str_eq(reason, "default");
	json_decref(o);
	o = object("{\"reason\": \"boot loop on 1.2.3 (see #42)\"}");
	ck_assert_int_eq(rest_parse_rollout_abort(o, reason, &f), 0);
	ck_assert_str_eq(reason, "boot loop on 1.2.3 (see #42)");
	json_decref(o);
	o = object("{\"reason\": \"a \\\"quote\\\"\"}");
	ck_assert_int_eq(rest_parse_rollout_abort(o, reason, &f), -1);
	assert_fault(&f, 422, "invalid_field", "'reason' must be printable text of at most 100 bytes");
	json_decref(o);
}
END_TEST

START_TEST(test_pins_switch)
{
	struct rest_pins_switch sw = { .threshold = 100 };
	struct rest_fault f;
	json_t *o;

	o = object("{\"threshold\": 80, \"force\": true, \"to\": \"backup\"}");
	ck_assert_int_eq(rest_parse_pins_switch(o, &sw, &f), 0);
	ck_assert_int_eq(sw.threshold, 80);
	ck_assert_int_eq(sw.force, 1);
	ck_assert_int_eq(sw.backup, 1);
	json_decref(o);
	o = object("{\"to\": \"sideways\"}");
	ck_assert_int_eq(rest_parse_pins_switch(o, &sw, &f), -1);
	assert_fault(&f, 422, "invalid_field", "to: \"next\" or \"backup\"");
	json_decref(o);
	o = object("{\"threshold\": 0}");
	ck_assert_int_eq(rest_parse_pins_switch(o, &sw, &f), -1);
	assert_fault(&f, 422, "invalid_field", "threshold: an integer percent 1..100");
	json_decref(o);
}
END_TEST

static Suite *rest_parse_suite(void)
{
	Suite *s = suite_create("rest_parse");
	TCase *tc = tcase_create("rest_parse");

	tcase_add_test(tc, test_route);
	tcase_add_test(tc, test_unescape);
	tcase_add_test(tc, test_numbers);
	tcase_add_test(tc, test_range);
	tcase_add_test(tc, test_headers);
	tcase_add_test(tc, test_object);
	tcase_add_test(tc, test_devices);
	tcase_add_test(tc, test_enrollment);
	tcase_add_test(tc, test_rollouts);
	tcase_add_test(tc, test_pins_switch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(rest_parse_suite());
}
