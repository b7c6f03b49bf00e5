/* Unit tests of server/sensitive: every family under several spellings (case, separators, camelCase,
 * unit suffixes, paths), the names a heater vendor needs staying out of the catalogue, and the
 * normalisation's edges (empty, separators only, over-long names, non-ASCII bytes, no read past
 * len). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/sensitive.h"
#include "tests/unit/unit.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct named {
	const char *name;
	enum sensitive_family family;
} names[] = {
	/* motion */
	{ "motion", SENSITIVE_MOTION }, { "Motion", SENSITIVE_MOTION },
	{ "MotionDetected", SENSITIVE_MOTION }, { "motion_detected", SENSITIVE_MOTION },
	{ "MOTION-STATE", SENSITIVE_MOTION }, { "movement", SENSITIVE_MOTION },
	{ "pir", SENSITIVE_MOTION }, { "PIR_sensor", SENSITIVE_MOTION },
	{ "PIRs", SENSITIVE_MOTION }, { "pirTriggered", SENSITIVE_MOTION },
	{ "hall.motion", SENSITIVE_MOTION },
	/* occupancy */
	{ "occupancy", SENSITIVE_OCCUPANCY }, { "Occupied", SENSITIVE_OCCUPANCY },
	{ "room_occupants", SENSITIVE_OCCUPANCY }, { "presence", SENSITIVE_OCCUPANCY },
	{ "PresenceDetected", SENSITIVE_OCCUPANCY }, { "present", SENSITIVE_OCCUPANCY },
	{ "present_state", SENSITIVE_OCCUPANCY }, { "isPresent", SENSITIVE_OCCUPANCY },
	{ "people_count", SENSITIVE_OCCUPANCY }, { "persons", SENSITIVE_OCCUPANCY },
	{ "isHome", SENSITIVE_OCCUPANCY }, { "at_home", SENSITIVE_OCCUPANCY },
	{ "home", SENSITIVE_OCCUPANCY }, { "anyone_home", SENSITIVE_OCCUPANCY },
	{ "human", SENSITIVE_OCCUPANCY },
	/* contact */
	{ "door", SENSITIVE_CONTACT }, { "DoorOpen", SENSITIVE_CONTACT },
	{ "front_door_state", SENSITIVE_CONTACT }, { "window", SENSITIVE_CONTACT },
	{ "window_open_detection", SENSITIVE_CONTACT }, { "WindowOpen", SENSITIVE_CONTACT },
	{ "contact", SENSITIVE_CONTACT }, { "contact.state", SENSITIVE_CONTACT },
	{ "reed", SENSITIVE_CONTACT }, { "reed_switch", SENSITIVE_CONTACT },
	/* air quality */
	{ "co2", SENSITIVE_AIR_QUALITY }, { "CO2_ppm", SENSITIVE_AIR_QUALITY },
	{ "co2-PPM", SENSITIVE_AIR_QUALITY }, { "CO2PPM", SENSITIVE_AIR_QUALITY },
	{ "eco2", SENSITIVE_AIR_QUALITY }, { "eCO2", SENSITIVE_AIR_QUALITY },
	{ "voc", SENSITIVE_AIR_QUALITY }, { "voc_index", SENSITIVE_AIR_QUALITY },
	{ "VOCIndex", SENSITIVE_AIR_QUALITY }, { "tvoc_ppb", SENSITIVE_AIR_QUALITY },
	{ "iaq", SENSITIVE_AIR_QUALITY }, { "IAQ_accuracy", SENSITIVE_AIR_QUALITY },
	{ "aqi", SENSITIVE_AIR_QUALITY }, { "air_quality", SENSITIVE_AIR_QUALITY },
	{ "AirQuality", SENSITIVE_AIR_QUALITY }, { "pm2.5", SENSITIVE_AIR_QUALITY },
	{ "pm25", SENSITIVE_AIR_QUALITY }, { "PM10", SENSITIVE_AIR_QUALITY },
	{ "pm_1_0", SENSITIVE_AIR_QUALITY }, { "co_ppm", SENSITIVE_AIR_QUALITY },
	{ "nh3_ppm", SENSITIVE_AIR_QUALITY }, { "gas_resistance", SENSITIVE_AIR_QUALITY },
	/* sound */
	{ "sound", SENSITIVE_SOUND }, { "Sound_Level", SENSITIVE_SOUND },
	{ "noise", SENSITIVE_SOUND }, { "noise_dB", SENSITIVE_SOUND },
	{ "audio_level", SENSITIVE_SOUND }, { "loudness", SENSITIVE_SOUND },
	{ "Level_dB", SENSITIVE_SOUND }, { "level_dba", SENSITIVE_SOUND },
	{ "spl_dba", SENSITIVE_SOUND }, { "mic", SENSITIVE_SOUND },
	/* light */
	{ "light", SENSITIVE_LIGHT }, { "Light_Lux", SENSITIVE_LIGHT },
	{ "lux", SENSITIVE_LIGHT }, { "illuminance", SENSITIVE_LIGHT },
	{ "Illuminance_lx", SENSITIVE_LIGHT }, { "ambient_lx", SENSITIVE_LIGHT },
	{ "brightness", SENSITIVE_LIGHT }, { "luminosity", SENSITIVE_LIGHT },
	{ "ambientLight", SENSITIVE_LIGHT }, { "lamp", SENSITIVE_LIGHT },
	{ "lamp_state", SENSITIVE_LIGHT },
	/* power */
	{ "power", SENSITIVE_POWER }, { "power_w", SENSITIVE_POWER },
	{ "ActivePower", SENSITIVE_POWER }, { "current", SENSITIVE_POWER },
	{ "current_a", SENSITIVE_POWER }, { "load_current_ma", SENSITIVE_POWER },
	{ "amps", SENSITIVE_POWER }, { "amperage", SENSITIVE_POWER },
	{ "watts", SENSITIVE_POWER }, { "load", SENSITIVE_POWER },
	{ "load_w", SENSITIVE_POWER }, { "consumption", SENSITIVE_POWER },
	{ "energy_total_kwh", SENSITIVE_POWER }, { "kWh", SENSITIVE_POWER },
	{ "heater_kw", SENSITIVE_POWER }, { "heater_W", SENSITIVE_POWER },
	{ "kWh_total", SENSITIVE_POWER }, { "energy_today", SENSITIVE_POWER },
	/* radio */
	{ "rssi", SENSITIVE_RADIO }, { "wifi_rssi_dbm", SENSITIVE_RADIO },
	{ "RSSI", SENSITIVE_RADIO }, { "snr", SENSITIVE_RADIO },
	{ "linkquality", SENSITIVE_RADIO }, { "link_quality", SENSITIVE_RADIO },
	{ "lqi", SENSITIVE_RADIO }, { "wifi_scan", SENSITIVE_RADIO },
	{ "ssids", SENSITIVE_RADIO }, { "beacons", SENSITIVE_RADIO },
	{ "bt_devices", SENSITIVE_RADIO }, { "btdevices", SENSITIVE_RADIO },
	{ "noise_floor_dbm", SENSITIVE_RADIO }, { "signal_dbm", SENSITIVE_RADIO },
	{ "dBm", SENSITIVE_RADIO }, { "ble_rssi", SENSITIVE_RADIO },
	/* network id */
	{ "mac", SENSITIVE_NETWORK_ID }, { "MAC", SENSITIVE_NETWORK_ID },
	{ "mac_address", SENSITIVE_NETWORK_ID }, { "MACAddress", SENSITIVE_NETWORK_ID },
	{ "wifiMac", SENSITIVE_NETWORK_ID }, { "BSSID", SENSITIVE_NETWORK_ID },
	{ "ssid", SENSITIVE_NETWORK_ID }, { "wifi.ssid", SENSITIVE_NETWORK_ID },
	{ "ip", SENSITIVE_NETWORK_ID }, { "ip_address", SENSITIVE_NETWORK_ID },
	{ "IPv4", SENSITIVE_NETWORK_ID },
	/* location */
	{ "location", SENSITIVE_LOCATION }, { "lat", SENSITIVE_LOCATION },
	{ "gps.lat", SENSITIVE_LOCATION }, { "Latitude", SENSITIVE_LOCATION },
	{ "lon", SENSITIVE_LOCATION }, { "lng", SENSITIVE_LOCATION },
	{ "longitude", SENSITIVE_LOCATION }, { "gps", SENSITIVE_LOCATION },
	{ "GPSFix", SENSITIVE_LOCATION }, { "geo", SENSITIVE_LOCATION },
	{ "geo_hash", SENSITIVE_LOCATION }, { "altitude_m", SENSITIVE_LOCATION },
	{ "address", SENSITIVE_LOCATION }, { "pos.latLng", SENSITIVE_LOCATION },
	/* presence mode */
	{ "away", SENSITIVE_PRESENCE_MODE }, { "away_mode", SENSITIVE_PRESENCE_MODE },
	{ "AwayMode", SENSITIVE_PRESENCE_MODE }, { "away_temperature", SENSITIVE_PRESENCE_MODE },
	{ "eco", SENSITIVE_PRESENCE_MODE }, { "ECO", SENSITIVE_PRESENCE_MODE },
	{ "ecomode", SENSITIVE_PRESENCE_MODE }, { "EcoMode", SENSITIVE_PRESENCE_MODE },
	{ "eco_setpoint", SENSITIVE_PRESENCE_MODE }, { "holiday", SENSITIVE_PRESENCE_MODE },
	{ "holiday_mode", SENSITIVE_PRESENCE_MODE }, { "vacation", SENSITIVE_PRESENCE_MODE },
	{ "preset", SENSITIVE_PRESENCE_MODE }, { "preset_mode", SENSITIVE_PRESENCE_MODE },
	{ "occupancy_mode", SENSITIVE_PRESENCE_MODE }, { "absent", SENSITIVE_PRESENCE_MODE },
	{ "home_away", SENSITIVE_PRESENCE_MODE }, { "boost", SENSITIVE_PRESENCE_MODE },
	/* invisible characters and nested paths do not hide a name */
	{ "mo\xe2\x80\x8btion", SENSITIVE_MOTION },      /* U+200B inside */
	{ "co\xc2\xad" "2", SENSITIVE_AIR_QUALITY },     /* soft hyphen inside */
	{ "env.sensors[3].co2", SENSITIVE_AIR_QUALITY },
};

/* What a heater vendor legitimately needs, and names that merely look like catalogue words. */
static const char *const innocent[] = {
	"temperature", "temp", "Temperature_C", "setpoint", "target_temp", "targetTemperature",
	"humidity", "humidity_pct", "error_code", "errorCode", "ecode", "error", "firmware",
	"firmware_version", "uptime", "uptime_s", "current_temperature", "currentTemperature",
	"current_setpoint", "indoor_temperature", "outdoor_temp", "OutdoorTemp", "screed_temp",
	"valve_position", "valve_open_pct", "battery", "battery_level", "battery_v", "temp_a",
	"fan_rpm", "fan_rpm_10", "pressure_hpa", "flow_temp", "delta_t", "data", "child_lock",
	"clamp_max", "damper_position", "heat_flux", "daylight_saving", "cpu_load", "load_avg",
	"hmac", "cert_expiry", "presentValue", "present_value", "modbus_address", "geometry",
	"machine_hours", "payload_size", "download_count", "heap_allocation", "comfort_temp",
	"heating_demand", "schedule", "hvac_mode", "wifi_channel", "frost_protection",
	"heat_home", "max_concurrent", "timestamp", "contactor_state", "personal_mode",
	"version", "serial", "model", "battery_mA", "pH", "wifi_connected", "rpm", "db_size",
};

START_TEST(classify_families)
{
	size_t i;

	for (i = 0; i < N_ELEMS(names); i++) {
		enum sensitive_family got = sensitive_classify(names[i].name, strlen(names[i].name));

		ck_assert_msg(got == names[i].family, "'%s': %s, expected %s", names[i].name,
			      sensitive_family_name(got), sensitive_family_name(names[i].family));
	}
	ck_assert_uint_ge(N_ELEMS(names), 80);
}
END_TEST

START_TEST(classify_innocent)
{
	size_t i;

	for (i = 0; i < N_ELEMS(innocent); i++) {
		enum sensitive_family got = sensitive_classify(innocent[i], strlen(innocent[i]));

		ck_assert_msg(got == SENSITIVE_NONE, "'%s' classified %s", innocent[i],
			      sensitive_family_name(got));
	}
	ck_assert_uint_ge(N_ELEMS(innocent), 20);
}
END_TEST

/* Every family has at least three spellings in the table, so none is covered by one name only. */
START_TEST(every_family_tested)
{
	unsigned seen[SENSITIVE_PRESENCE_MODE + 1] = { 0 };
	size_t i;
	int f;

	for (i = 0; i < N_ELEMS(names); i++)
		seen[names[i].family]++;
	for (f = SENSITIVE_MOTION; f <= SENSITIVE_PRESENCE_MODE; f++)
		ck_assert_msg(seen[f] >= 3, "family %s has %u names", sensitive_family_name(f), seen[f]);
}
END_TEST

static void assert_normal(const char *name, size_t len, const char *want)
{
	char out[SENSITIVE_NAME_MAX];
	size_t n;

	memset(out, 'X', sizeof(out));
	n = sensitive_normalise(name, len, out);
	ck_assert_msg(n == strlen(want) && strcmp(out, want) == 0, "normalise('%.*s') = '%s', expected '%s'",
		      (int)len, name ? name : "", out, want);
}

#define NORMAL(name, want) assert_normal(name, strlen(name), want)

START_TEST(normalise_suffixes)
{
	NORMAL("CO2_ppm", "co2");
	NORMAL("co2-PPM", "co2");
	NORMAL("CO2PPM", "co2");
	NORMAL("co2_level_ppm", "co2");
	NORMAL("co2levelppm", "co2");
	NORMAL("Motion-Detected", "motion");
	NORMAL("MotionDetected", "motion");
	NORMAL("motiondetected", "motion");
	NORMAL("Light_Lux", "light");
	NORMAL("wifi_rssi_dbm", "wifirssi");
	NORMAL("voc_index", "voc");
	NORMAL("noise_dBA", "noise");
	NORMAL("energy_total_kWh", "energytotal");
	NORMAL("power_W", "power");
	NORMAL("LoadW", "load");
	NORMAL("current_mA", "current");
	NORMAL("door_state", "door");
	NORMAL("people_count", "people");
	NORMAL("humidity_percent", "humidity");
	NORMAL("x_value_value_raw", "x");
	NORMAL("gps.lat", "gpslat");
	NORMAL("pm2.5", "pm25");
	/* Nothing is stripped down to nothing. */
	NORMAL("ppm", "ppm");
	NORMAL("level_ppm", "level");
	NORMAL("value", "value");
	NORMAL("_w", "w");
	/* Short or ambiguous suffixes go only as a word of their own. */
	NORMAL("flow", "flow");
	NORMAL("data", "data");
	NORMAL("draw", "draw");
	NORMAL("power_draw", "powerdraw");
	NORMAL("mongodb", "mongodb");
	NORMAL("heat_flux", "heatflux");
	NORMAL("influx", "influx");
	NORMAL("account", "account");
	NORMAL("estate", "estate");
	NORMAL("temp_a", "temp");
	/* Units keep their own capitals: "dB", "kWh", "mA" are one word, not a hump. */
	NORMAL("Level_dB", "level");
	NORMAL("rssi_dBm", "rssi");
	NORMAL("energy_kWh", "energy");
	NORMAL("current_mA", "current");
	NORMAL("eCO2", "eco2");
	/* camelCase only splits words; it never changes the letters. */
	NORMAL("BSSIDValue", "bssid");
	NORMAL("setPoint", "setpoint");
}
END_TEST

START_TEST(normalise_edges)
{
	char big[1000], out[SENSITIVE_NAME_MAX];
	size_t i;

	assert_normal("", 0, "");
	assert_normal(NULL, 0, "");
	NORMAL("___--.. \t/[]", "");
	NORMAL("\xe6\xb8\xa9\xe5\xba\xa6", "");                 /* CJK: nothing ASCII */
	NORMAL("Temp\xc3\xa9rature", "temprature");             /* é dropped, no split */
	NORMAL("a\x01" "b", "ab");
	assert_normal("a\0b", 3, "ab");                          /* NUL is a separator */

	/* Cut at SENSITIVE_NAME_MAX - 1 letters, separators not counted. */
	memset(big, 'x', sizeof(big));
	ck_assert_uint_eq(sensitive_normalise(big, sizeof(big), out), SENSITIVE_NAME_MAX - 1);
	ck_assert_uint_eq(strlen(out), SENSITIVE_NAME_MAX - 1);
	for (i = 0; i < sizeof(big); i++)
		big[i] = i % 2 ? '_' : 'Y';
	ck_assert_uint_eq(sensitive_normalise(big, sizeof(big), out), SENSITIVE_NAME_MAX - 1);
	for (i = 0; i < SENSITIVE_NAME_MAX - 1; i++)
		ck_assert_int_eq(out[i], 'y');
	/* What falls beyond the cut is not seen: a suffix there is neither stripped nor matched. */
	memset(big, 'z', sizeof(big));
	memcpy(big + sizeof(big) - 8, "_co2_ppm", 8);
	ck_assert_uint_eq(sensitive_normalise(big, sizeof(big), out), SENSITIVE_NAME_MAX - 1);
	ck_assert_int_eq(sensitive_classify(big, sizeof(big)), SENSITIVE_NONE);
	/* ... what lies within it is. */
	memcpy(big, "co2_", 4);
	ck_assert_int_eq(sensitive_classify(big, sizeof(big)), SENSITIVE_AIR_QUALITY);
}
END_TEST

/* len is the whole name: bytes after it are never read, even without a NUL. Under ASan a read
 * past the exact-size allocation fails the test. */
START_TEST(normalise_bounded_by_len)
{
	static const char text[] = "co2_ppm_motion";
	char out[SENSITIVE_NAME_MAX];
	char *exact = malloc(7);

	ck_assert_ptr_nonnull(exact);
	memcpy(exact, text, 7);
	ck_assert_uint_eq(sensitive_normalise(exact, 7, out), 3);
	ck_assert_str_eq(out, "co2");
	ck_assert_int_eq(sensitive_classify(exact, 7), SENSITIVE_AIR_QUALITY);
	ck_assert_int_eq(sensitive_classify(exact, 2), SENSITIVE_AIR_QUALITY);   /* "co" */
	ck_assert_int_eq(sensitive_classify(exact, 0), SENSITIVE_NONE);
	free(exact);
	ck_assert_int_eq(sensitive_classify(text, 2), SENSITIVE_AIR_QUALITY);
	ck_assert_int_eq(sensitive_classify(text, strlen(text)), SENSITIVE_MOTION);
}
END_TEST

/* Arbitrary bytes: the output is always lower-case letters and digits, NUL-terminated, shorter
 * than SENSITIVE_NAME_MAX, and normalising it again changes nothing. */
START_TEST(normalise_any_bytes)
{
	uint32_t x = 0x9e3779b9u;
	char in[300], out[SENSITIVE_NAME_MAX], again[SENSITIVE_NAME_MAX];
	size_t round, i, n, len;
	int ok;

	for (round = 0; round < 5000; round++) {
		len = round % sizeof(in);
		for (i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			/* Mostly name-like bytes, some separators and high bytes. */
			in[i] = x % 4 == 0 ? (char)(x >> 8) : "abcdeopmwlxyz_AOPMW2.-"[(x >> 8) % 22];
		}
		/* Check's asserts are slow in a loop this long: collect, then assert. */
		n = sensitive_normalise(in, len, out);
		ok = n < SENSITIVE_NAME_MAX && strlen(out) == n;
		for (i = 0; ok && i < n; i++)
			ok = (out[i] >= 'a' && out[i] <= 'z') || (out[i] >= '0' && out[i] <= '9');
		memcpy(again, out, sizeof(again));
		ok = ok && sensitive_normalise(again, n, out) == n && strcmp(out, again) == 0;
		ck_assert_msg(ok, "round %zu: '%s' then '%s'", round, again, out);
		(void)sensitive_classify(in, len);
	}
}
END_TEST

START_TEST(family_names)
{
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_NONE), "none");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_MOTION), "motion");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_OCCUPANCY), "occupancy");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_CONTACT), "contact");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_AIR_QUALITY), "air quality");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_SOUND), "sound");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_LIGHT), "light");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_POWER), "power");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_RADIO), "radio");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_NETWORK_ID), "network id");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_LOCATION), "location");
	ck_assert_str_eq(sensitive_family_name(SENSITIVE_PRESENCE_MODE), "presence mode");
	ck_assert_str_eq(sensitive_family_name((enum sensitive_family)99), "unknown");
}
END_TEST

/* The memo in front of the catalogue: thousands of names (far more than its slots, so every slot
 * is overwritten many times), names that differ in one byte or only in length, and names past
 * the memo's length limit all classify as they did the first time. */
START_TEST(classify_memo_is_transparent)
{
	static const char *const known[] = {
		"motion", "Motion", "motioN", "CO2_ppm", "co2", "temperature", "temp",
		"occupancy", "door_open", "rssi", "ssid", "setpoint",
		"a_rather_long_field_name_for_motion_sensor_readings_that_is_long",
	};
	enum sensitive_family first[1000];
	char name[64];
	size_t i, round;

	ck_assert_int_eq(sensitive_classify("motion", 6), SENSITIVE_MOTION);
	ck_assert_int_eq(sensitive_classify("motionX", 6), SENSITIVE_MOTION);   /* length counts */
	ck_assert_int_eq(sensitive_classify("motion", 5), SENSITIVE_NONE);      /* "motio" */
	for (round = 0; round < 3; round++) {
		for (i = 0; i < 1000; i++) {
			int n = snprintf(name, sizeof(name), i % 3 ? "field_%zu_temp" : "motion_%zu", i);

			if (round == 0)
				first[i] = sensitive_classify(name, (size_t)n);
			else
				ck_assert_int_eq(sensitive_classify(name, (size_t)n), first[i]);
		}
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ck_assert_int_eq(sensitive_classify(known[i], strlen(known[i])),
					 sensitive_classify(known[i], strlen(known[i])));
	}
	ck_assert_int_eq(first[0], SENSITIVE_MOTION);
	ck_assert_int_eq(first[1], SENSITIVE_NONE);
	ck_assert_int_eq(sensitive_classify("CO2_ppm", 7), SENSITIVE_AIR_QUALITY);
	ck_assert_int_eq(sensitive_classify(known[12], strlen(known[12])), SENSITIVE_MOTION);
}
END_TEST

static Suite *sensitive_suite(void)
{
	Suite *s = suite_create("sensitive");
	TCase *tc = tcase_create("classify");

	tcase_add_test(tc, classify_families);
	tcase_add_test(tc, classify_innocent);
	tcase_add_test(tc, every_family_tested);
	tcase_add_test(tc, family_names);
	tcase_add_test(tc, classify_memo_is_transparent);
	suite_add_tcase(s, tc);

	tc = tcase_create("normalise");
	tcase_add_test(tc, normalise_suffixes);
	tcase_add_test(tc, normalise_edges);
	tcase_add_test(tc, normalise_bounded_by_len);
	tcase_add_test(tc, normalise_any_bytes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(sensitive_suite());
}
