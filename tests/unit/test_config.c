/* Unit tests of server/config: the defaults are the endpoint's, every type and range is checked,
 * the file's syntax (comments, whitespace, unknown and duplicate keys, long lines) is enforced with
 * messages that name the line, flags beat the environment which beats the file, older flag names
 * still work, a SIGHUP reload copies only what may change at runtime, and `config example` is a
 * file that parses back to the defaults. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "server/config.h"
#include "server/endpoint.h"
#include "tests/unit/unit.h"

static char err[CONFIG_ERR_MAX];

/* Parse text over defaults as "t.conf"; returns what config_parse_file_text returned. */
static enum herr parse(struct config *c, const char *text)
{
	config_defaults(c);
	err[0] = '\0';
	return config_parse_file_text(c, "t.conf", text, strlen(text), err, sizeof(err));
}

static void assert_value(const struct config *c, enum config_key k, const char *want)
{
	char got[CONFIG_MAX_VALUE];

	config_value(c, k, got, sizeof(got));
	ck_assert_msg(strcmp(got, want) == 0, "%s: got '%s', want '%s'", config_key_name(k), got,
		      want);
}

/* text must be refused with exactly this message. */
static void assert_refused(const char *text, const char *message)
{
	struct config c;

	ck_assert_msg(parse(&c, text) != HERR_OK, "accepted: %s", text);
	ck_assert_msg(strcmp(err, message) == 0, "message '%s', want '%s'", err, message);
}

/* Every value and source of a and b are the same, and each points ep.mqtt_addr at itself. */
static void assert_same(const struct config *a, const struct config *b)
{
	char va[CONFIG_MAX_VALUE];
	int k;

	ck_assert_ptr_eq(a->ep.mqtt_addr, a->mqtt);
	ck_assert_ptr_eq(b->ep.mqtt_addr, b->mqtt);
	for (k = 0; k < CONFIG_COUNT; k++) {
		config_value(a, (enum config_key)k, va, sizeof(va));
		assert_value(b, (enum config_key)k, va);
		ck_assert_int_eq(a->source[k], b->source[k]);
	}
	ck_assert_uint_eq(a->ep.lim.max_output, b->ep.lim.max_output);
}

static void write_conf(const char *text)
{
	char path[4096];

	unit_at(path, sizeof(path), CONFIG_FILE);
	ck_assert_int_eq(fs_write_file(path, text, strlen(text), 0600, 0), HERR_OK);
}

START_TEST(test_defaults_are_the_endpoints)
{
	struct endpoint_config ep;
	struct config c;
	int k;

	config_defaults(&c);
	endpoint_default_config(&ep);
	ck_assert_str_eq(c.ep.mqtt_addr, ep.mqtt_addr);
	ck_assert_ptr_eq(c.ep.mqtt_addr, c.mqtt);
	ck_assert_uint_eq(c.ep.lim.max_packet, ep.lim.max_packet);
	ck_assert_uint_eq(c.ep.lim.max_connections, ep.lim.max_connections);
	ck_assert_uint_eq(c.ep.lim.max_connections_per_address, ep.lim.max_connections_per_address);
	ck_assert_uint_eq(c.ep.lim.max_handshakes_per_address, ep.lim.max_handshakes_per_address);
	ck_assert_uint_eq(c.ep.lim.max_inflight, ep.lim.max_inflight);
	ck_assert_uint_eq(c.ep.lim.max_subscriptions, ep.lim.max_subscriptions);
	ck_assert_uint_eq(c.ep.lim.max_queued, ep.lim.max_queued);
	ck_assert_uint_eq(c.ep.lim.max_output, ep.lim.max_output);
	ck_assert_uint_eq(c.ep.lim.handshake_timeout_ms, ep.lim.handshake_timeout_ms);
	ck_assert_uint_eq(c.ep.lim.connect_timeout_ms, ep.lim.connect_timeout_ms);
	ck_assert_int_eq(c.ep.lim.handshake_threads, ep.lim.handshake_threads);
	ck_assert_int_eq(c.log_level, 2 /* info */);
	for (k = 0; k < CONFIG_COUNT; k++)
		ck_assert_int_eq(c.source[k], CONFIG_FROM_DEFAULT);
	/* An empty file and a file of comments change nothing. */
	ck_assert_int_eq(parse(&c, ""), HERR_OK);
	ck_assert_int_eq(parse(&c, "# nothing\n\n   \n"), HERR_OK);
	for (k = 0; k < CONFIG_COUNT; k++)
		ck_assert_int_eq(c.source[k], CONFIG_FROM_DEFAULT);
}
END_TEST

/* Every default, written back as a file, is accepted: the table cannot hold a default that its own
 * checks refuse. */
START_TEST(test_defaults_parse_back)
{
	char text[4096], value[CONFIG_MAX_VALUE];
	struct config c, d;
	size_t n = 0;
	int k;

	config_defaults(&d);
	for (k = 0; k < CONFIG_COUNT; k++) {
		config_value(&d, (enum config_key)k, value, sizeof(value));
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s = %s\n",
				      config_key_name((enum config_key)k), value);
	}
	ck_assert_msg(parse(&c, text) == HERR_OK, "%s", err);
	for (k = 0; k < CONFIG_COUNT; k++) {
		ck_assert_int_eq(c.source[k], CONFIG_FROM_FILE);
		ck_assert_uint_eq(c.line[k], (unsigned)k + 1);
		d.source[k] = CONFIG_FROM_FILE;
	}
	assert_same(&c, &d);
}
END_TEST

START_TEST(test_string)
{
	static const char *const good[] = {
		"0.0.0.0:8883", "127.0.0.1:0", "localhost:65535", "[::1]:8883", "[::]:1883",
		"::1:8883", "hearth.example.org:8883",
	};
	struct config c;
	char text[512], longv[300];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "mqtt = %s\n", good[i]);
		ck_assert_msg(parse(&c, text) == HERR_OK, "%s: %s", good[i], err);
		ck_assert_str_eq(c.ep.mqtt_addr, good[i]);
		ck_assert_ptr_eq(c.ep.mqtt_addr, c.mqtt);
	}
	assert_refused("mqtt = 8883\n", "t.conf:1: mqtt: 8883 is not HOST:PORT");
	assert_refused("mqtt = :8883\n", "t.conf:1: mqtt: ':8883' is not HOST:PORT");
	assert_refused("mqtt = host:\n", "t.conf:1: mqtt: 'host:' has no port 0..65535");
	assert_refused("mqtt = host:65536\n", "t.conf:1: mqtt: 'host:65536' has no port 0..65535");
	assert_refused("mqtt = host:http\n", "t.conf:1: mqtt: 'host:http' has no port 0..65535");
	assert_refused("mqtt = [::1:8883\n",
		       "t.conf:1: mqtt: '[::1:8883' is not HOST:PORT ([IPv6]:PORT needs both brackets "
		       "and an address)");
	assert_refused("mqtt = []:8883\n",
		       "t.conf:1: mqtt: '[]:8883' is not HOST:PORT ([IPv6]:PORT needs both brackets "
		       "and an address)");
	assert_refused("mqtt = a\tb:1\n", "t.conf:1: mqtt: 'a?b:1' holds a control character");
	assert_refused("mqtt =\n", "t.conf:1: mqtt: no value");
	/* 255 bytes fit, 256 do not. */
	memset(longv, 'h', sizeof(longv));
	memcpy(longv + 250, ":8883", 6);
	snprintf(text, sizeof(text), "mqtt = %s\n", longv);
	ck_assert_msg(parse(&c, text) == HERR_OK, "%s", err);
	ck_assert_uint_eq(strlen(c.ep.mqtt_addr), 255);
	memset(longv, 'h', sizeof(longv));
	memcpy(longv + 251, ":8883", 6);
	snprintf(text, sizeof(text), "mqtt = %s\n", longv);
	ck_assert_int_eq(parse(&c, text), HERR_INVALID);
	ck_assert_msg(strstr(err, "t.conf:1: mqtt: '") == err && strstr(err, "...' is too long (at most 255 bytes)"),
		      "%s", err);
}
END_TEST

/* Each unsigned setting: its bounds are accepted and land in the endpoint's limits; one past them
 * is refused with the range in the message. */
START_TEST(test_unsigned_ranges)
{
	static const struct {
		const char *key;
		unsigned min, max;
		size_t off;
		int size;
	} cases[] = {
#define CASE(key, field, min, max) \
	{ key, min, max, offsetof(struct config, ep.lim.field), (int)sizeof(((struct config *)0)->ep.lim.field) }
		CASE("max_packet", max_packet, 16, 268435456),
		CASE("max_connections", max_connections, 1, 1000000),
		CASE("max_inflight", max_inflight, 1, 65535),
		CASE("max_subscriptions", max_subscriptions, 1, 10000),
		CASE("max_queued", max_queued, 0, 1000000),
		CASE("handshake_timeout_ms", handshake_timeout_ms, 100, 600000),
		CASE("connect_timeout_ms", connect_timeout_ms, 100, 600000),
		CASE("handshake_threads", handshake_threads, 0, 64),
#undef CASE
	};
	char text[128], want[256];
	struct config c;
	size_t i;
	int bound;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *more = strcmp(cases[i].key, "handshake_threads") == 0 ? ", or auto" : "";

		for (bound = 0; bound < 2; bound++) {
			unsigned v = bound ? cases[i].max : cases[i].min;
			const char *p = (const char *)&c + cases[i].off;
			unsigned long long got;

			snprintf(text, sizeof(text), "\n%s = %u\n", cases[i].key, v);
			ck_assert_msg(parse(&c, text) == HERR_OK, "%s", err);
			got = cases[i].size == sizeof(size_t) ? *(const size_t *)p :
			      cases[i].size == sizeof(unsigned) ? *(const unsigned *)p : 0;
			ck_assert_msg(got == v, "%s = %u landed as %llu", cases[i].key, v, got);
		}
		snprintf(text, sizeof(text), "\n%s = %u\n", cases[i].key, cases[i].max + 1);
		snprintf(want, sizeof(want), "t.conf:2: %s: %u is out of range (%u..%u%s)",
			 cases[i].key, cases[i].max + 1, cases[i].min, cases[i].max, more);
		assert_refused(text, want);
		if (cases[i].min > 0) {
			snprintf(text, sizeof(text), "\n%s = %u\n", cases[i].key, cases[i].min - 1);
			snprintf(want, sizeof(want), "t.conf:2: %s: %u is out of range (%u..%u%s)",
				 cases[i].key, cases[i].min - 1, cases[i].min, cases[i].max, more);
			assert_refused(text, want);
		}
	}
	/* The message of the design document, and numbers far beyond any integer type. */
	assert_refused("\n\n\n\n\n\n\n\n\n\n\nmax_packet = 99999999999\n",
		       "t.conf:12: max_packet: 99999999999 is out of range (16..268435456)");
	assert_refused("max_packet = 99999999999999999999999999999999999999999999999999999999999\n",
		       "t.conf:1: max_packet: 999999999999999999999999999999999999999999999999... is "
		       "out of range (16..268435456)");
	assert_refused("max_packet = -1\n", "t.conf:1: max_packet: '-1' is not a number");
	assert_refused("max_packet = +16\n", "t.conf:1: max_packet: '+16' is not a number");
	assert_refused("max_packet = 1 000\n", "t.conf:1: max_packet: '1 000' is not a number");
	assert_refused("max_packet = 0x10\n", "t.conf:1: max_packet: '0x10' is not a number");
	assert_refused("max_packet = 16k\n", "t.conf:1: max_packet: '16k' is not a number");
	assert_refused("max_packet = auto\n", "t.conf:1: max_packet: 'auto' is not a number");
	assert_refused("handshake_threads = many\n",
		       "t.conf:1: handshake_threads: 'many' is not a number (nor auto)");
	ck_assert_int_eq(parse(&c, "max_packet = 0000016\n"), HERR_OK);
	ck_assert_uint_eq(c.ep.lim.max_packet, 16);
	/* auto is -1 in the endpoint's terms, and shown as auto. */
	ck_assert_int_eq(parse(&c, "handshake_threads = 3\n"), HERR_OK);
	ck_assert_int_eq(c.ep.lim.handshake_threads, 3);
	ck_assert_int_eq(parse(&c, "handshake_threads = auto\n"), HERR_OK);
	ck_assert_int_eq(c.ep.lim.handshake_threads, -1);
	assert_value(&c, CONFIG_HANDSHAKE_THREADS, "auto");
}
END_TEST

START_TEST(test_enum)
{
	static const char *const levels[] = { "error", "warning", "info", "debug" };
	char text[64];
	struct config c;
	int i;

	for (i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "log_level = %s", levels[i]);
		ck_assert_msg(parse(&c, text) == HERR_OK, "%s", err);
		ck_assert_int_eq(c.log_level, i);
		assert_value(&c, CONFIG_LOG_LEVEL, levels[i]);
	}
	assert_refused("log_level = verbose\n",
		       "t.conf:1: log_level: 'verbose' is not one of error, warning, info, debug");
	assert_refused("log_level = DEBUG\n",
		       "t.conf:1: log_level: 'DEBUG' is not one of error, warning, info, debug");
	assert_refused("log_level = info debug\n",
		       "t.conf:1: log_level: 'info debug' is not one of error, warning, info, debug");
	assert_refused("log_level = 3\n",
		       "t.conf:1: log_level: 3 is not one of error, warning, info, debug");
}
END_TEST

START_TEST(test_comments_and_whitespace)
{
	static const char text[] =
		"\xef\xbb\xbf# hearth.conf\r\n"
		"\r\n"
		"   # an indented comment = with an equals sign\n"
		"\t max_packet\t=\t1024 \t\r\n"
		"max_inflight=7\n"
		"#max_queued = 5\n"
		"   \t  \n"
		"mqtt = [::1]:1883   \n"
		"log_level = debug"; /* no newline at the end */
	struct config c;

	ck_assert_msg(parse(&c, text) == HERR_OK, "%s", err);
	ck_assert_uint_eq(c.ep.lim.max_packet, 1024);
	ck_assert_uint_eq(c.line[CONFIG_MAX_PACKET], 4);
	ck_assert_uint_eq(c.ep.lim.max_inflight, 7);
	ck_assert_uint_eq(c.line[CONFIG_MAX_INFLIGHT], 5);
	ck_assert_uint_eq(c.ep.lim.max_queued, 1000);
	ck_assert_int_eq(c.source[CONFIG_MAX_QUEUED], CONFIG_FROM_DEFAULT);
	ck_assert_str_eq(c.ep.mqtt_addr, "[::1]:1883");
	ck_assert_int_eq(c.log_level, 3);
	ck_assert_uint_eq(c.line[CONFIG_LOG_LEVEL], 9);
	/* A comment is a whole line: '#' after a value is part of the value. */
	assert_refused("max_packet = 1024 # bytes\n",
		       "t.conf:1: max_packet: '1024 # bytes' is not a number");
	assert_refused("\n\nmax_packet 1024\n", "t.conf:3: 'max_packet 1024' is not key = value");
	assert_refused("= 1024\n", "t.conf:1: no key before '='");
	assert_refused("max_packet =\n", "t.conf:1: max_packet: no value");
	assert_refused("max_packet = \t \n", "t.conf:1: max_packet: no value");
	/* The key is exact: no case folding, no dashes, no spaces inside. */
	assert_refused("Max_Packet = 16\n", "t.conf:1: unknown key 'Max_Packet'");
	assert_refused("max-packet = 16\n", "t.conf:1: unknown key 'max-packet'");
	assert_refused("max packet = 16\n", "t.conf:1: unknown key 'max packet'");
	/* The first '=' splits; a value may not hold another. */
	assert_refused("max_packet = = 16\n", "t.conf:1: max_packet: '= 16' is not a number");
}
END_TEST

START_TEST(test_unknown_key)
{
	assert_refused("max_packet = 16\n# ok\nmax_pakcet = 17\n", "t.conf:3: unknown key 'max_pakcet'");
	/* What the message repeats of the input is printable and bounded. */
	assert_refused("\x01\x02\x1b[31m = 1\n", "t.conf:1: unknown key '???[31m'");
}
END_TEST

START_TEST(test_duplicate_key)
{
	assert_refused("max_packet = 16\n\nmax_inflight = 2\nmax_packet = 16\n",
		       "t.conf:4: max_packet: already set on line 1");
	/* Even when the first value was itself bad it is the first error that is told. */
	assert_refused("log_level = loud\nlog_level = loud\n",
		       "t.conf:1: log_level: 'loud' is not one of error, warning, info, debug");
}
END_TEST

START_TEST(test_long_lines_and_files)
{
	char *text = malloc(CONFIG_MAX_FILE + 2);
	struct config c, before;
	size_t n;

	ck_assert_ptr_nonnull(text);
	/* A line of exactly CONFIG_MAX_LINE bytes (a comment) is fine; one more byte is not. */
	memset(text, ' ', CONFIG_MAX_LINE + 20);
	memcpy(text, "max_packet = 16\n#", 17);
	text[16 + CONFIG_MAX_LINE] = '\n';
	memcpy(text + 17 + CONFIG_MAX_LINE, "max_inflight = 3\n", 18);
	config_defaults(&c);
	ck_assert_msg(config_parse_file_text(&c, "t.conf", text, strlen(text), err, sizeof(err)) ==
		      HERR_OK, "%s", err);
	ck_assert_uint_eq(c.ep.lim.max_inflight, 3);
	ck_assert_uint_eq(c.line[CONFIG_MAX_INFLIGHT], 3);
	memset(text, ' ', CONFIG_MAX_LINE + 20);
	memcpy(text, "max_packet = 16\n#", 17);
	text[17 + CONFIG_MAX_LINE] = '\n';
	text[18 + CONFIG_MAX_LINE] = '\0';
	config_defaults(&c);
	before = c;
	ck_assert_int_eq(config_parse_file_text(&c, "t.conf", text, strlen(text), err, sizeof(err)),
			 HERR_TOOBIG);
	ck_assert_str_eq(err, "t.conf:2: line longer than 4096 bytes");
	/* The last line, without a newline, is measured too. */
	text[17 + CONFIG_MAX_LINE] = '\0';
	ck_assert_int_eq(config_parse_file_text(&c, "t.conf", text, strlen(text), err, sizeof(err)),
			 HERR_TOOBIG);
	ck_assert_str_eq(err, "t.conf:2: line longer than 4096 bytes");
	/* A failed parse changes nothing, not even what came before the bad line. */
	ck_assert_uint_eq(c.ep.lim.max_packet, before.ep.lim.max_packet);
	ck_assert_int_eq(c.source[CONFIG_MAX_PACKET], CONFIG_FROM_DEFAULT);

	/* A file of exactly CONFIG_MAX_FILE bytes of comments is fine; one byte more is not. */
	for (n = 0; n < CONFIG_MAX_FILE; n += 64) {
		memset(text + n, '#', 63);
		text[n + 63] = '\n';
	}
	ck_assert_int_eq(config_parse_file_text(&c, "t.conf", text, CONFIG_MAX_FILE, err,
						sizeof(err)), HERR_OK);
	text[CONFIG_MAX_FILE] = '#';
	ck_assert_int_eq(config_parse_file_text(&c, "t.conf", text, CONFIG_MAX_FILE + 1, err,
						sizeof(err)), HERR_TOOBIG);
	ck_assert_str_eq(err, "t.conf: larger than 65536 bytes");
	/* A NUL byte means this is not the text file it should be. */
	ck_assert_int_eq(config_parse_file_text(&c, "t.conf", "max_packet = 16\n\0\n", 18, err,
						sizeof(err)), HERR_INVALID);
	ck_assert_str_eq(err, "t.conf:2: a NUL byte (not a text file?)");
	free(text);
}
END_TEST

START_TEST(test_failed_parse_changes_nothing)
{
	struct config c, before;

	ck_assert_int_eq(parse(&c, "max_packet = 1000\nmqtt = 10.0.0.1:1\n"), HERR_OK);
	config_defaults(&before);
	ck_assert_int_eq(config_parse_file_text(&before, "t.conf", "max_packet = 1000\nmqtt = 10.0.0.1:1\n",
						36, err, sizeof(err)), HERR_OK);
	ck_assert_int_ne(config_parse_file_text(&c, "u.conf",
						"max_inflight = 9\nmqtt = 10.0.0.2:2\nlog_level = x\n",
						48, err, sizeof(err)), HERR_OK);
	ck_assert_str_eq(err, "u.conf:3: log_level: 'x' is not one of error, warning, info, debug");
	assert_same(&c, &before);
	ck_assert_str_eq(c.ep.mqtt_addr, "10.0.0.1:1");
}
END_TEST

START_TEST(test_flags_and_aliases)
{
	struct config c;

	config_defaults(&c);
	ck_assert_int_eq(config_apply_flag(&c, "--max-packet", "4096", err, sizeof(err)), HERR_OK);
	ck_assert_uint_eq(c.ep.lim.max_packet, 4096);
	ck_assert_int_eq(c.source[CONFIG_MAX_PACKET], CONFIG_FROM_FLAG);
	/* The old names of cmd_serve and the names derived from the keys both work. */
	ck_assert_int_eq(config_apply_flag(&c, "--handshake-timeout", "200", err, sizeof(err)), HERR_OK);
	ck_assert_uint_eq(c.ep.lim.handshake_timeout_ms, 200);
	ck_assert_int_eq(config_apply_flag(&c, "--handshake-timeout-ms", "300", err, sizeof(err)), HERR_OK);
	ck_assert_uint_eq(c.ep.lim.handshake_timeout_ms, 300);
	ck_assert_int_eq(config_apply_flag(&c, "--connect-timeout", "400", err, sizeof(err)), HERR_OK);
	ck_assert_uint_eq(c.ep.lim.connect_timeout_ms, 400);
	ck_assert_int_eq(config_apply_flag(&c, "--connect-timeout-ms", "500", err, sizeof(err)), HERR_OK);
	ck_assert_uint_eq(c.ep.lim.connect_timeout_ms, 500);
	ck_assert_int_eq(config_apply_flag(&c, "--mqtt", "127.0.0.1:0", err, sizeof(err)), HERR_OK);
	ck_assert_str_eq(c.ep.mqtt_addr, "127.0.0.1:0");
	ck_assert_int_eq(config_apply_flag(&c, "--max-connections", "5", err, sizeof(err)), HERR_OK);
	ck_assert_int_eq(config_apply_flag(&c, "--max-inflight", "6", err, sizeof(err)), HERR_OK);
	ck_assert_int_eq(config_apply_flag(&c, "--max-subscriptions", "7", err, sizeof(err)), HERR_OK);
	ck_assert_int_eq(config_apply_flag(&c, "--max-queued", "0", err, sizeof(err)), HERR_OK);
	ck_assert_int_eq(config_apply_flag(&c, "--handshake-threads", "0", err, sizeof(err)), HERR_OK);
	ck_assert_int_eq(config_apply_flag(&c, "--log-level", "error", err, sizeof(err)), HERR_OK);
	ck_assert_uint_eq(c.ep.lim.max_connections, 5);
	ck_assert_uint_eq(c.ep.lim.max_inflight, 6);
	ck_assert_uint_eq(c.ep.lim.max_subscriptions, 7);
	ck_assert_uint_eq(c.ep.lim.max_queued, 0);
	ck_assert_int_eq(c.ep.lim.handshake_threads, 0);
	ck_assert_int_eq(c.log_level, 0);
	/* A later flag wins over an earlier one. */
	ck_assert_int_eq(config_apply_flag(&c, "--max-packet", "8192", err, sizeof(err)), HERR_OK);
	ck_assert_uint_eq(c.ep.lim.max_packet, 8192);
	/* Not flags: keys as written in the file, other spellings, the bare name. */
	ck_assert_int_eq(config_apply_flag(&c, "--max_packet", "16", err, sizeof(err)), HERR_NOTFOUND);
	ck_assert_int_eq(config_apply_flag(&c, "max-packet", "16", err, sizeof(err)), HERR_NOTFOUND);
	ck_assert_int_eq(config_apply_flag(&c, "--max-packets", "16", err, sizeof(err)), HERR_NOTFOUND);
	ck_assert_int_eq(config_apply_flag(&c, "--data", "x", err, sizeof(err)), HERR_NOTFOUND);
	/* A bad value names the flag as it was given, and changes nothing. */
	ck_assert_int_eq(config_apply_flag(&c, "--handshake-timeout", "99", err, sizeof(err)), HERR_INVALID);
	ck_assert_str_eq(err, "--handshake-timeout: 99 is out of range (100..600000)");
	ck_assert_uint_eq(c.ep.lim.handshake_timeout_ms, 300);
	ck_assert_int_eq(config_apply_flag(&c, "--mqtt", "nowhere", err, sizeof(err)), HERR_INVALID);
	ck_assert_str_eq(err, "--mqtt: 'nowhere' is not HOST:PORT");
	ck_assert_str_eq(c.ep.mqtt_addr, "127.0.0.1:0");
}
END_TEST

START_TEST(test_precedence)
{
	struct config c;

	/* The file sets four settings; the environment three of them; flags two of those. */
	write_conf("max_packet = 1001\nmax_inflight = 11\nmax_queued = 21\nlog_level = warning\n");
	setenv("HEARTH_MAX_PACKET", "1002", 1);
	setenv("HEARTH_MAX_INFLIGHT", "12", 1);
	setenv("HEARTH_LOG_LEVEL", "debug", 1);
	setenv("HEARTH_MAX_SUBSCRIPTIONS", "", 1); /* empty: unset */

	/* Flags first, as hearth serve does (it needs --data before it can read the file)... */
	config_defaults(&c);
	ck_assert_int_eq(config_apply_flag(&c, "--max-packet", "1003", err, sizeof(err)), HERR_OK);
	ck_assert_int_eq(config_apply_flag(&c, "--log-level", "error", err, sizeof(err)), HERR_OK);
	ck_assert_msg(config_load(&c, unit_dir(), err, sizeof(err)) == HERR_OK, "%s", err);
	ck_assert_uint_eq(c.ep.lim.max_packet, 1003);
	ck_assert_int_eq(c.source[CONFIG_MAX_PACKET], CONFIG_FROM_FLAG);
	ck_assert_int_eq(c.log_level, 0);
	ck_assert_int_eq(c.source[CONFIG_LOG_LEVEL], CONFIG_FROM_FLAG);
	ck_assert_uint_eq(c.ep.lim.max_inflight, 12);
	ck_assert_int_eq(c.source[CONFIG_MAX_INFLIGHT], CONFIG_FROM_ENV);
	ck_assert_uint_eq(c.ep.lim.max_queued, 21);
	ck_assert_int_eq(c.source[CONFIG_MAX_QUEUED], CONFIG_FROM_FILE);
	ck_assert_uint_eq(c.line[CONFIG_MAX_QUEUED], 3);
	ck_assert_uint_eq(c.ep.lim.max_subscriptions, 32);
	ck_assert_int_eq(c.source[CONFIG_MAX_SUBSCRIPTIONS], CONFIG_FROM_DEFAULT);

	/* ...or after: the order of the calls does not matter, the source does. */
	ck_assert_int_eq(config_apply_flag(&c, "--max-inflight", "13", err, sizeof(err)), HERR_OK);
	ck_assert_uint_eq(c.ep.lim.max_inflight, 13);
	ck_assert_msg(config_load(&c, unit_dir(), err, sizeof(err)) == HERR_OK, "%s", err);
	ck_assert_uint_eq(c.ep.lim.max_inflight, 13);
	ck_assert_uint_eq(c.ep.lim.max_packet, 1003);

	/* Without flags, the environment beats the file. */
	config_defaults(&c);
	ck_assert_msg(config_load(&c, unit_dir(), err, sizeof(err)) == HERR_OK, "%s", err);
	ck_assert_uint_eq(c.ep.lim.max_packet, 1002);
	ck_assert_int_eq(c.log_level, 3);
	ck_assert_uint_eq(c.ep.lim.max_queued, 21);
}
END_TEST

START_TEST(test_load_errors)
{
	char want[4200], path[4096], *big;
	struct config c, before;

	/* No file: the defaults (and the environment). */
	config_defaults(&c);
	setenv("HEARTH_MAX_QUEUED", "7", 1);
	ck_assert_msg(config_load(&c, unit_dir(), err, sizeof(err)) == HERR_OK, "%s", err);
	ck_assert_uint_eq(c.ep.lim.max_queued, 7);
	ck_assert_int_eq(c.source[CONFIG_MAX_PACKET], CONFIG_FROM_DEFAULT);

	/* A bad file is named with its path and line. */
	write_conf("# x\nmax_queued = 5\nmqtt = nowhere\n");
	config_defaults(&c);
	before = c;
	ck_assert_int_eq(config_load(&c, unit_dir(), err, sizeof(err)), HERR_INVALID);
	unit_at(path, sizeof(path), CONFIG_FILE);
	snprintf(want, sizeof(want), "%s:3: mqtt: 'nowhere' is not HOST:PORT", path);
	ck_assert_str_eq(err, want);
	ck_assert_uint_eq(c.ep.lim.max_queued, before.ep.lim.max_queued);

	/* A bad variable is named, and the file's values are not half applied. */
	write_conf("max_queued = 5\n");
	setenv("HEARTH_MAX_CONNECTIONS", "lots", 1);
	config_defaults(&c);
	ck_assert_int_eq(config_load(&c, unit_dir(), err, sizeof(err)), HERR_INVALID);
	ck_assert_str_eq(err, "HEARTH_MAX_CONNECTIONS: 'lots' is not a number");
	ck_assert_uint_eq(c.ep.lim.max_queued, 1000);
	ck_assert_int_eq(c.source[CONFIG_MAX_QUEUED], CONFIG_FROM_DEFAULT);
	setenv("HEARTH_MAX_CONNECTIONS", "0", 1);
	ck_assert_int_eq(config_load(&c, unit_dir(), err, sizeof(err)), HERR_INVALID);
	ck_assert_str_eq(err, "HEARTH_MAX_CONNECTIONS: 0 is out of range (1..1000000)");
	unsetenv("HEARTH_MAX_CONNECTIONS");

	/* A file over the bound is refused before it is parsed. */
	big = malloc(CONFIG_MAX_FILE + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, '#', CONFIG_MAX_FILE + 1);
	ck_assert_int_eq(fs_write_file(path, big, CONFIG_MAX_FILE + 1, 0600, 0), HERR_OK);
	free(big);
	ck_assert_int_eq(config_load(&c, unit_dir(), err, sizeof(err)), HERR_TOOBIG);
	snprintf(want, sizeof(want), "%s: larger than 65536 bytes", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_reload_copies_runtime_keys_only)
{
	struct config live, before;
	uint32_t changed = 0xffffffff;
	char path[4096], want[4200];

	write_conf("max_packet = 1000\nmqtt = 127.0.0.1:1\nhandshake_threads = 2\nmax_inflight = 3\n");
	setenv("HEARTH_MAX_QUEUED", "50", 1);
	config_defaults(&live);
	ck_assert_int_eq(config_apply_flag(&live, "--max-subscriptions", "9", err, sizeof(err)), HERR_OK);
	ck_assert_msg(config_load(&live, unit_dir(), err, sizeof(err)) == HERR_OK, "%s", err);

	/* Nothing changed: nothing to do. */
	ck_assert_msg(config_reload(&live, unit_dir(), &changed, err, sizeof(err)) == HERR_OK, "%s", err);
	ck_assert_uint_eq(changed, 0);

	/* Every kind of change at once. */
	write_conf("max_packet = 2000\n"            /* runtime: copied */
		   "mqtt = 127.0.0.1:2\n"           /* needs a restart: left */
		   "handshake_threads = 4\n"        /* needs a restart: left */
		   "max_subscriptions = 99\n"       /* under a flag: left */
		   "max_queued = 60\n"              /* under the environment: left */
		   "log_level = debug\n"            /* runtime, applied */
		   "connect_timeout_ms = 10000\n"); /* the default again: no change */
	/* max_inflight is gone from the file: back to its default. */
	before = live;
	ck_assert_msg(config_reload(&live, unit_dir(), &changed, err, sizeof(err)) == HERR_OK, "%s", err);
	ck_assert_uint_eq(changed, CONFIG_BIT(CONFIG_MAX_PACKET) | CONFIG_BIT(CONFIG_LOG_LEVEL) |
				   CONFIG_BIT(CONFIG_MAX_INFLIGHT));
	ck_assert_uint_eq(live.ep.lim.max_packet, 2000);
	ck_assert_int_eq(live.log_level, 3);
	ck_assert_uint_eq(live.ep.lim.max_inflight, 32);
	ck_assert_int_eq(live.source[CONFIG_MAX_INFLIGHT], CONFIG_FROM_DEFAULT);
	ck_assert_str_eq(live.ep.mqtt_addr, "127.0.0.1:1");
	ck_assert_ptr_eq(live.ep.mqtt_addr, live.mqtt);
	ck_assert_int_eq(live.ep.lim.handshake_threads, 2);
	ck_assert_uint_eq(live.ep.lim.max_subscriptions, 9);
	ck_assert_int_eq(live.source[CONFIG_MAX_SUBSCRIPTIONS], CONFIG_FROM_FLAG);
	ck_assert_uint_eq(live.ep.lim.max_queued, 50);
	ck_assert_uint_eq(live.ep.lim.connect_timeout_ms, before.ep.lim.connect_timeout_ms);
	ck_assert_uint_eq(live.ep.lim.max_output, before.ep.lim.max_output);

	/* A bad file changes nothing and says where. */
	write_conf("max_packet = 3000\nmax_connections = none\n");
	before = live;
	changed = 0xffffffff;
	ck_assert_int_eq(config_reload(&live, unit_dir(), &changed, err, sizeof(err)), HERR_INVALID);
	unit_at(path, sizeof(path), CONFIG_FILE);
	snprintf(want, sizeof(want), "%s:2: max_connections: 'none' is not a number", path);
	ck_assert_str_eq(err, want);
	ck_assert_uint_eq(changed, 0);
	ck_assert_uint_eq(live.ep.lim.max_packet, 2000);
	ck_assert_mem_eq(&live.ep.lim, &before.ep.lim, sizeof(live.ep.lim));
}
END_TEST

/* Read all a FILE * function printed. */
static char *capture(void (*fn)(FILE *))
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	ck_assert_ptr_nonnull(f);
	fn(f);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

static void print_test_config(FILE *f);
static struct config shown_config;

static void print_test_config(FILE *f)
{
	config_print(&shown_config, f);
}

START_TEST(test_example_parses_back)
{
	char *text = capture(config_example), *p, *line;
	struct config c, d;
	size_t settings = 0;
	int k;

	/* As printed: all comments. */
	ck_assert_msg(parse(&c, text) == HERR_OK, "%s", err);
	for (k = 0; k < CONFIG_COUNT; k++) {
		ck_assert_int_eq(c.source[k], CONFIG_FROM_DEFAULT);
		ck_assert_msg(strstr(text, config_key_name((enum config_key)k)), "%s not documented",
			      config_key_name((enum config_key)k));
	}
	/* Uncomment every "#key = value": each setting, once, at its default. */
	for (line = text; (p = strstr(line, "\n#")) != NULL; line = p + 1) {
		size_t n = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz_");

		if (n > 0 && strncmp(p + 2 + n, " = ", 3) == 0) {
			memmove(p + 1, p + 2, strlen(p + 2) + 1);
			settings++;
		}
	}
	ck_assert_uint_eq(settings, CONFIG_COUNT);
	ck_assert_msg(parse(&c, text) == HERR_OK, "%s", err);
	config_defaults(&d);
	for (k = 0; k < CONFIG_COUNT; k++) {
		ck_assert_int_eq(c.source[k], CONFIG_FROM_FILE);
		d.source[k] = CONFIG_FROM_FILE;
	}
	assert_same(&c, &d);
	free(text);
}
END_TEST

START_TEST(test_print_sources)
{
	char *text;

	ck_assert_int_eq(parse(&shown_config, "\nmax_packet = 1000\n"), HERR_OK);
	setenv("HEARTH_MAX_INFLIGHT", "64", 1);
	ck_assert_int_eq(config_load(&shown_config, unit_dir(), err, sizeof(err)), HERR_OK);
	ck_assert_int_eq(config_apply_flag(&shown_config, "--connect-timeout", "200", err, sizeof(err)),
			 HERR_OK);
	text = capture(print_test_config);
	ck_assert_msg(strstr(text, "max_packet             1000                     file hearth.conf, line 2\n"),
		      "%s", text);
	ck_assert_msg(strstr(text, "max_inflight           64                       env HEARTH_MAX_INFLIGHT\n"),
		      "%s", text);
	ck_assert_msg(strstr(text, "connect_timeout_ms     200                      flag --connect-timeout-ms\n"),
		      "%s", text);
	ck_assert_msg(strstr(text, "mqtt                   127.0.0.1:8883           default\n"), "%s", text);
	free(text);
}
END_TEST

START_TEST(test_usage_lists_every_flag)
{
	char *text = capture(config_usage);
	static const char *const flags[] = {
		"--mqtt HOST:PORT", "--max-packet BYTES", "--max-connections N", "--max-inflight N",
		"--max-subscriptions N", "--max-queued N", "--handshake-timeout-ms MS",
		"also --handshake-timeout", "--connect-timeout-ms MS", "also --connect-timeout",
		"--handshake-threads N", "--log-level LEVEL",
	};
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		ck_assert_msg(strstr(text, flags[i]), "%s missing from:\n%s", flags[i], text);
	free(text);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	unit_scratch_add(tc);
	tcase_add_test(tc, test_defaults_are_the_endpoints);
	tcase_add_test(tc, test_defaults_parse_back);
	tcase_add_test(tc, test_string);
	tcase_add_test(tc, test_unsigned_ranges);
	tcase_add_test(tc, test_enum);
	tcase_add_test(tc, test_comments_and_whitespace);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_duplicate_key);
	tcase_add_test(tc, test_long_lines_and_files);
	tcase_add_test(tc, test_failed_parse_changes_nothing);
	tcase_add_test(tc, test_flags_and_aliases);
	tcase_add_test(tc, test_precedence);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_reload_copies_runtime_keys_only);
	tcase_add_test(tc, test_example_parses_back);
	tcase_add_test(tc, test_print_sources);
	tcase_add_test(tc, test_usage_lists_every_flag);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(config_suite());
}
