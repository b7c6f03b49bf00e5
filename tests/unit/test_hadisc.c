/* Unit tests of server/hadisc: the discovery config of a kept field has what Home Assistant needs
 * (name, unique_id, state_topic, value_template, device.identifiers), a unit and device class where
 * the name says one, and nothing else; topics and templates take only safe ids and field names; a
 * policy's configs cover exactly the fields it keeps, once each. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server/hadisc.h"
#include "server/policy.h"
#include "tests/unit/unit.h"

static const struct hadisc_topics topics = { .ha_prefix = "homeassistant/", .prefix = "hearth/" };
static const struct hadisc_device dev = { .id = "h1", .model = "heater", .sw_version = "1.2.3" };

static void parse_policy(const char *text, struct policy *p)
{
	char why[256];

	ck_assert_msg(policy_parse((const uint8_t *)text, strlen(text), p, why, sizeof(why)) == HERR_OK, "%s",
		      why);
}

static struct policy_field field(const char *path, enum policy_type type, enum policy_agg agg)
{
	struct policy_field f;

	memset(&f, 0, sizeof(f));
	snprintf(f.path, sizeof(f.path), "%s", path);
	f.type = type;
	f.agg = agg;
	f.bucket_s = agg == POLICY_AGG_NONE ? 0 : 3600;
	f.retention_days = 30;
	return f;
}

static json_t *config_of(const struct policy_field *f)
{
	json_error_t jerr;
	char *text = NULL;
	json_t *j;

	ck_assert_int_eq(hadisc_config(&topics, &dev, f, &text), HERR_OK);
	j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	ck_assert_msg(j != NULL, "not JSON: %s", text);
	free(text);
	return j;
}

static const char *str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

START_TEST(test_config_has_what_home_assistant_needs)
{
	struct policy_field f = field("temperature", POLICY_NUMBER, POLICY_AGG_MEAN);
	json_t *j = config_of(&f), *d, *ids;

	ck_assert_str_eq(str(j, "name"), "temperature");
	ck_assert_str_eq(str(j, "unique_id"), "hearth.h1.temperature");
	ck_assert_str_eq(str(j, "state_topic"), "hearth/h1/telemetry");
	ck_assert_str_eq(str(j, "availability_topic"), "hearth/availability");
	ck_assert_str_eq(str(j, "value_template"),
			 "{{ value_json['values']['temperature']['value'] if 'temperature' in value_json['values'] "
			 "else this.state }}");
	ck_assert_str_eq(str(j, "device_class"), "temperature");
	ck_assert_str_eq(str(j, "unit_of_measurement"), "°C");
	ck_assert_str_eq(str(j, "state_class"), "measurement");
	d = json_object_get(j, "device");
	ck_assert_ptr_nonnull(d);
	ids = json_object_get(d, "identifiers");
	ck_assert_int_eq((int)json_array_size(ids), 1);
	ck_assert_str_eq(json_string_value(json_array_get(ids, 0)), "hearth_h1");
	ck_assert_str_eq(str(d, "name"), "h1");
	ck_assert_str_eq(str(d, "model"), "heater");
	ck_assert_str_eq(str(d, "manufacturer"), "hearth");
	ck_assert_str_eq(str(d, "sw_version"), "1.2.3");
	ck_assert_int_eq((int)json_object_size(j), 9);
	json_decref(j);
}
END_TEST

START_TEST(test_no_class_for_strings_and_unknown_names)
{
	struct policy_field s = field("error_code", POLICY_STRING, POLICY_AGG_LAST);
	struct policy_field n = field("valve_position", POLICY_NUMBER, POLICY_AGG_MEAN);
	struct policy_field b = field("heating", POLICY_BOOL, POLICY_AGG_LAST);
	struct hadisc_device nofw = { .id = "h1", .model = "heater", .sw_version = "" };
	json_t *j = config_of(&s);
	char *text;

	ck_assert_ptr_null(json_object_get(j, "device_class"));
	ck_assert_ptr_null(json_object_get(j, "unit_of_measurement"));
	ck_assert_ptr_null(json_object_get(j, "state_class"));
	json_decref(j);
	j = config_of(&n);
	ck_assert_ptr_null(json_object_get(j, "device_class"));
	ck_assert_ptr_null(json_object_get(j, "unit_of_measurement"));
	ck_assert_str_eq(str(j, "state_class"), "measurement");
	json_decref(j);
	j = config_of(&b);
	ck_assert_ptr_null(json_object_get(j, "state_class"));
	json_decref(j);
	/* No firmware reported: no sw_version. */
	ck_assert_int_eq(hadisc_config(&topics, &nofw, &n, &text), HERR_OK);
	ck_assert_ptr_null(strstr(text, "sw_version"));
	free(text);
}
END_TEST

START_TEST(test_classes)
{
	static const struct {
		const char *path;
		enum policy_agg agg;
		const char *device_class, *unit, *state_class;
	} cases[] = {
		{ "temp", POLICY_AGG_MEAN, "temperature", "°C", "measurement" },
		{ "indoor_temperature", POLICY_AGG_MAX, "temperature", "°C", "measurement" },
		{ "current_temperature", POLICY_AGG_MEAN, "temperature", "°C", "measurement" },
		{ "setpoint", POLICY_AGG_MEAN, "temperature", "°C", "measurement" },
		{ "outdoorTempF", POLICY_AGG_MEAN, "temperature", "°F", "measurement" },
		{ "env.humidity", POLICY_AGG_MEAN, "humidity", "%", "measurement" },
		{ "env.hum", POLICY_AGG_MEAN, "humidity", "%", "measurement" },
		{ "pressure_hpa", POLICY_AGG_MEAN, "pressure", "hPa", "measurement" },
		{ "battery_v", POLICY_AGG_MIN, "voltage", "V", "measurement" },
		{ "battery_level", POLICY_AGG_LAST, "battery", "%", "measurement" },
		{ "power_w", POLICY_AGG_MEAN, "power", "W", "measurement" },
		{ "load_kw", POLICY_AGG_MEAN, "power", "kW", "measurement" },
		{ "energy_total_kwh", POLICY_AGG_LAST, "energy", "kWh", "total_increasing" },
		{ "energy_total_kwh", POLICY_AGG_MEAN, NULL, "kWh", "measurement" },
		{ "co2_ppm", POLICY_AGG_MEAN, "carbon_dioxide", "ppm", "measurement" },
		{ "Light_Lux", POLICY_AGG_MEAN, "illuminance", "lx", "measurement" },
		{ "wifi_rssi_dbm", POLICY_AGG_MEAN, "signal_strength", "dBm", "measurement" },
		{ "fan_rpm", POLICY_AGG_MEAN, NULL, NULL, "measurement" },
		{ "screed_temp", POLICY_AGG_MEAN, "temperature", "°C", "measurement" },
		{ "door_count", POLICY_AGG_COUNT, NULL, NULL, "measurement" },
	};
	struct hadisc_class c;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_field f = field(cases[i].path, POLICY_NUMBER, cases[i].agg);

		hadisc_classify(&f, &c);
		ck_assert_msg((c.device_class == NULL) == (cases[i].device_class == NULL) &&
				      (!c.device_class || strcmp(c.device_class, cases[i].device_class) == 0),
			      "%s: class %s", cases[i].path, c.device_class ? c.device_class : "none");
		ck_assert_msg((c.unit == NULL) == (cases[i].unit == NULL) &&
				      (!c.unit || strcmp(c.unit, cases[i].unit) == 0),
			      "%s: unit %s", cases[i].path, c.unit ? c.unit : "none");
		ck_assert_msg(c.state_class && strcmp(c.state_class, cases[i].state_class) == 0, "%s: state %s",
			      cases[i].path, c.state_class ? c.state_class : "none");
	}
}
END_TEST

START_TEST(test_topics)
{
	char buf[512];

	ck_assert_int_eq(hadisc_topic(&topics, "h1", "temperature", buf, sizeof(buf)), HERR_OK);
	ck_assert_str_eq(buf, "homeassistant/sensor/hearth_h1/temperature/config");
	ck_assert_int_eq(hadisc_topic(&topics, "h-1_x", "env.hum", buf, sizeof(buf)), HERR_OK);
	ck_assert_str_eq(buf, "homeassistant/sensor/hearth_h-1_x/env_hum/config");
	ck_assert_int_eq(hadisc_topic(&topics, "h1", "temperature", buf, 20), HERR_TOOBIG);
}
END_TEST

/* Anything that could add a topic level, a wildcard, or leave the template's quotes is refused. */
START_TEST(test_unsafe_names_refused)
{
	static const char *const bad_ids[] = { "", "a/b", "a+b", "a#", "a'b", "a b", "a.b", "a}}",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 65 */ };
	static const char *const bad_paths[] = { "", ".", "a.", ".a", "a..b", "a/b", "a'b", "a b", "a}}",
		"a+", "#", "x\xc3\xa9", "a.b.c.d.e.f.g.h.i", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 33 */ };
	struct policy_field f = field("temperature", POLICY_NUMBER, POLICY_AGG_MEAN);
	char buf[512], *text = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		struct hadisc_device d = { .id = bad_ids[i], .model = "m" };

		ck_assert_msg(!hadisc_id_ok(bad_ids[i]), "id '%s'", bad_ids[i]);
		ck_assert_int_eq(hadisc_topic(&topics, bad_ids[i], "temperature", buf, sizeof(buf)), HERR_INVALID);
		ck_assert_int_eq(hadisc_config(&topics, &d, &f, &text), HERR_INVALID);
		ck_assert_ptr_null(text);
	}
	for (i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		struct policy_field g = field("x", POLICY_NUMBER, POLICY_AGG_MEAN);

		snprintf(g.path, sizeof(g.path), "%s", bad_paths[i]);
		ck_assert_msg(!hadisc_path_ok(bad_paths[i]), "path '%s'", bad_paths[i]);
		ck_assert_int_eq(hadisc_topic(&topics, "h1", bad_paths[i], buf, sizeof(buf)), HERR_INVALID);
		ck_assert_int_eq(hadisc_config(&topics, &dev, &g, &text), HERR_INVALID);
	}
	ck_assert(hadisc_path_ok("a.b.c.d.e.f.g.h"));
	ck_assert(hadisc_path_ok("A-z_09"));
	ck_assert(hadisc_id_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}
END_TEST

struct seen {
	char topics[16][256];
	size_t n;
};

static int collect(void *ctx, const char *topic, const char *json)
{
	struct seen *s = ctx;

	ck_assert_uint_lt(s->n, 16);
	snprintf(s->topics[s->n++], sizeof(s->topics[0]), "%s", topic);
	ck_assert_ptr_nonnull(strstr(json, "\"unique_id\""));
	return 0;
}

/* The example heater policy (what 17-integrations and 32-bridge use) and one with a sensitive
 * field: configs for exactly the kept fields. */
START_TEST(test_policy_configs)
{
	static const char heater[] =
		"{\"policy\":1,\"fields\":{"
		"\"temperature\":{\"type\":\"number\",\"round\":0.5,\"aggregate\":\"mean\",\"bucket_s\":3600,"
		"\"retention_days\":365},"
		"\"env.hum\":{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":3600,\"retention_days\":30},"
		"\"env_hum\":{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":3600,\"retention_days\":30},"
		"\"co2_ppm\":{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":3600,\"sensitive_ok\":true,"
		"\"retention_days\":30},"
		"\"error_code\":{\"type\":\"string\",\"aggregate\":\"last\",\"bucket_s\":3600,\"retention_days\":90}}}";
	struct policy p;
	struct seen s = { .n = 0 };
	size_t skipped = 99;
	struct hadisc_device bad = { .id = "a/b", .model = "m" };

	parse_policy(heater, &p);
	ck_assert_int_eq(hadisc_configs(&topics, &dev, &p, collect, &s, &skipped), HERR_OK);
	ck_assert_uint_eq(s.n, 4);
	ck_assert_uint_eq(skipped, 1); /* env_hum: the same topic as env.hum */
	ck_assert_str_eq(s.topics[0], "homeassistant/sensor/hearth_h1/temperature/config");
	ck_assert_str_eq(s.topics[1], "homeassistant/sensor/hearth_h1/env_hum/config");
	ck_assert_str_eq(s.topics[2], "homeassistant/sensor/hearth_h1/co2_ppm/config");
	ck_assert_str_eq(s.topics[3], "homeassistant/sensor/hearth_h1/error_code/config");
	ck_assert_int_eq(hadisc_configs(&topics, &bad, &p, collect, &s, &skipped), HERR_INVALID);
	/* A policy that keeps nothing gets no config. */
	parse_policy("{\"policy\":1,\"fields\":{}}", &p);
	s.n = 0;
	ck_assert_int_eq(hadisc_configs(&topics, &dev, &p, collect, &s, &skipped), HERR_OK);
	ck_assert_uint_eq(s.n, 0);
}
END_TEST

static int stop_at_first(void *ctx, const char *topic, const char *json)
{
	(void)topic;
	(void)json;
	++*(int *)ctx;
	return 1;
}

START_TEST(test_callback_stops)
{
	struct policy p;
	int calls = 0;

	parse_policy("{\"policy\":1,\"fields\":{\"a\":{\"type\":\"number\",\"retention_days\":1},"
		     "\"b\":{\"type\":\"number\",\"retention_days\":1}}}", &p);
	ck_assert_int_eq(hadisc_configs(&topics, &dev, &p, stop_at_first, &calls, NULL), HERR_OK);
	ck_assert_int_eq(calls, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hadisc");
	TCase *tc = tcase_create("hadisc");

	tcase_add_test(tc, test_config_has_what_home_assistant_needs);
	tcase_add_test(tc, test_no_class_for_strings_and_unknown_names);
	tcase_add_test(tc, test_classes);
	tcase_add_test(tc, test_topics);
	tcase_add_test(tc, test_unsafe_names_refused);
	tcase_add_test(tc, test_policy_configs);
	tcase_add_test(tc, test_callback_stops);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
