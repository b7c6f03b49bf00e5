/* Unit tests of server/bridge's settings (bridge_config.c): the records list, the port default,
 * the password file's format, and the start-up check that names the setting at fault (files that
 * cannot be read, secrets others may read, a certificate without its key, secrets without TLS).
 * The thread itself is exercised against a real broker by tests/integration/32-bridge.sh. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fsutil.h"
#include "server/bridge.h"
#include "server/config.h"
#include "tests/unit/unit.h"

static char err[CONFIG_ERR_MAX];

START_TEST(test_records)
{
	ck_assert_uint_eq(bridge_records_parse("telemetry,status"), BRIDGE_SEND_TELEMETRY | BRIDGE_SEND_STATUS);
	ck_assert_uint_eq(bridge_records_parse("status,telemetry"), BRIDGE_SEND_TELEMETRY | BRIDGE_SEND_STATUS);
	ck_assert_uint_eq(bridge_records_parse("telemetry"), BRIDGE_SEND_TELEMETRY);
	ck_assert_uint_eq(bridge_records_parse("status"), BRIDGE_SEND_STATUS);
	ck_assert_uint_eq(bridge_records_parse(""), 0);
	ck_assert_uint_eq(bridge_records_parse("telemetry,"), 0);
	ck_assert_uint_eq(bridge_records_parse(",status"), 0);
	ck_assert_uint_eq(bridge_records_parse("telemetry,telemetry"), 0);
	ck_assert_uint_eq(bridge_records_parse("telemetry, status"), 0);
	ck_assert_uint_eq(bridge_records_parse("raw"), 0);
	ck_assert_uint_eq(bridge_records_parse("Telemetry"), 0);
}
END_TEST

START_TEST(test_port)
{
	struct config c;

	config_defaults(&c);
	ck_assert(!bridge_enabled(&c.bridge)); /* off unless a host is set */
	ck_assert_int_eq(c.bridge.port, -1);
	ck_assert_int_eq(c.bridge.tls, 1);
	ck_assert_int_eq(bridge_port(&c.bridge), 8883);
	c.bridge.tls = 0;
	ck_assert_int_eq(bridge_port(&c.bridge), 1883);
	c.bridge.port = 1999;
	ck_assert_int_eq(bridge_port(&c.bridge), 1999);
}
END_TEST

static enum herr creds(const char *text, char *user, char *pass)
{
	char why[128];

	return bridge_parse_credentials((const uint8_t *)text, strlen(text), user, pass, why, sizeof(why));
}

START_TEST(test_credentials)
{
	static const char *const bad[] = {
		"", "user", "user\n", "\npass\n", "user\n\n", "user\npass\nmore\n", "user\npass\n\n",
		"us\ter\npass\n", "user\npa\x01ss\n", "user\r\n\r\n",
	};
	char user[BRIDGE_CRED_MAX], pass[BRIDGE_CRED_MAX], longname[300];
	size_t i;

	ck_assert_int_eq(creds("hearth\nsecret\n", user, pass), HERR_OK);
	ck_assert_str_eq(user, "hearth");
	ck_assert_str_eq(pass, "secret");
	ck_assert_int_eq(creds("hearth\nsecret", user, pass), HERR_OK);
	ck_assert_str_eq(pass, "secret");
	ck_assert_int_eq(creds("hearth\r\nse cret\r\n", user, pass), HERR_OK);
	ck_assert_str_eq(user, "hearth");
	ck_assert_str_eq(pass, "se cret");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(creds(bad[i], user, pass) == HERR_INVALID, "accepted [%s]", bad[i]);
		ck_assert_str_eq(user, "");
		ck_assert_str_eq(pass, "");
	}
	memset(longname, 'a', 256);
	snprintf(longname + 256, sizeof(longname) - 256, "\npass\n");
	ck_assert_int_eq(creds(longname, user, pass), HERR_INVALID);
	snprintf(longname + 255, sizeof(longname) - 255, "\npass\n");
	ck_assert_int_eq(creds(longname, user, pass), HERR_OK); /* 255 bytes is fine */
	ck_assert_uint_eq(strlen(user), 255);
}
END_TEST

/* dst (a BRIDGE_TEXT_MAX setting) = the formatted text, which must fit. */
static void setv(char *dst, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ck_assert_uint_lt(strlen(buf), BRIDGE_TEXT_MAX);
	memcpy(dst, buf, strlen(buf) + 1);
}

static void file_at(char *path, size_t size, const char *name, const char *text, unsigned mode)
{
	unit_at(path, size, name);
	ck_assert_int_eq(fs_write_file(path, text, strlen(text), mode, 0), HERR_OK);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static struct config on(void)
{
	struct config c;

	config_defaults(&c);
	setv(c.bridge.host, "broker.example");
	return c;
}

static void check_fails(const struct config *c, const char *message)
{
	err[0] = '\0';
	ck_assert_int_eq(bridge_check(&c->bridge, err, sizeof(err)), HERR_INVALID);
	ck_assert_msg(strstr(err, message), "message '%s', want '%s'", err, message);
}

START_TEST(test_check)
{
	char ca[4096], crt[4096], key[4096], openkey[4096], pw[4096], openpw[4096], badpw[4096];
	struct config c;

	file_at(ca, sizeof(ca), "ca.pem", "not checked here\n", 0644);
	file_at(crt, sizeof(crt), "client.crt", "x\n", 0644);
	file_at(key, sizeof(key), "client.key", "x\n", 0600);
	file_at(openkey, sizeof(openkey), "open.key", "x\n", 0640);
	file_at(pw, sizeof(pw), "pw", "hearth\nsecret\n", 0600);
	file_at(openpw, sizeof(openpw), "openpw", "hearth\nsecret\n", 0604);
	file_at(badpw, sizeof(badpw), "badpw", "hearth\n", 0600);

	/* Off: nothing is checked. */
	config_defaults(&c);
	setv(c.bridge.certfile, "/nowhere");
	ck_assert_int_eq(bridge_check(&c.bridge, err, sizeof(err)), HERR_OK);

	c = on();
	ck_assert_int_eq(bridge_check(&c.bridge, err, sizeof(err)), HERR_OK);
	setv(c.bridge.cafile, "%s", ca);
	setv(c.bridge.certfile, "%s", crt);
	setv(c.bridge.keyfile, "%s", key);
	setv(c.bridge.password_file, "%s", pw);
	ck_assert_msg(bridge_check(&c.bridge, err, sizeof(err)) == HERR_OK, "%s", err);

	c.bridge.keyfile[0] = '\0';
	check_fails(&c, "bridge_certfile is set without bridge_keyfile");
	setv(c.bridge.keyfile, "%s", key);
	c.bridge.certfile[0] = '\0';
	check_fails(&c, "bridge_keyfile is set without bridge_certfile");
	setv(c.bridge.certfile, "%s", crt);

	setv(c.bridge.keyfile, "%s", openkey);
	check_fails(&c, "bridge_keyfile: ");
	check_fails(&c, "may be read by others");
	setv(c.bridge.keyfile, "%s", key);

	setv(c.bridge.password_file, "%s", openpw);
	check_fails(&c, "bridge_password_file: ");
	setv(c.bridge.password_file, "%s", badpw);
	check_fails(&c, "line 2: the password");
	ck_assert_ptr_null(strstr(err, "secret"));
	setv(c.bridge.password_file, "%s/none", unit_dir());
	check_fails(&c, "bridge_password_file: cannot read");
	setv(c.bridge.password_file, "%s", pw);

	setv(c.bridge.cafile, "%s/none.pem", unit_dir());
	check_fails(&c, "bridge_cafile: cannot read");
	setv(c.bridge.cafile, "%s", ca);

	/* Without TLS: no TLS files, and no password to cross the network in clear. */
	c.bridge.tls = 0;
	check_fails(&c, "bridge_cafile is set but bridge_tls = no");
	c.bridge.cafile[0] = c.bridge.certfile[0] = c.bridge.keyfile[0] = '\0';
	check_fails(&c, "bridge_password_file is set but bridge_tls = no");
	c.bridge.password_file[0] = '\0';
	ck_assert_int_eq(bridge_check(&c.bridge, err, sizeof(err)), HERR_OK);
}
END_TEST

/* The settings come through config.c's table like every other: file, environment, flag. */
START_TEST(test_settings)
{
	struct config c;

	config_defaults(&c);
	ck_assert_str_eq(c.bridge.host, "");
	ck_assert_str_eq(c.bridge.prefix, "hearth/");
	ck_assert_str_eq(c.bridge.ha_prefix, "homeassistant/");
	ck_assert_str_eq(c.bridge.records, "telemetry,status");
	ck_assert_uint_eq(c.bridge.qos, 1);
	ck_assert_int_eq(c.bridge.ha_discovery, 1);
	ck_assert_uint_eq(c.bridge.outbox_max_bytes, 64u * 1024 * 1024);
	ck_assert_uint_eq(c.bridge.outbox_max_age_s, 7u * 86400);
	ck_assert_int_eq(config_parse_file_text(&c, "t.conf",
						"bridge_host = mqtt.lan\nbridge_port = 8884\nbridge_qos = 0\n"
						"bridge_prefix = home/hearth/\nbridge_client_id =\n",
						strlen("bridge_host = mqtt.lan\nbridge_port = 8884\nbridge_qos = 0\n"
						       "bridge_prefix = home/hearth/\nbridge_client_id =\n"),
						err, sizeof(err)),
			 HERR_OK);
	ck_assert_str_eq(c.bridge.host, "mqtt.lan");
	ck_assert_int_eq(c.bridge.port, 8884);
	ck_assert_uint_eq(c.bridge.qos, 0);
	ck_assert_str_eq(c.bridge.prefix, "home/hearth/");
	ck_assert_int_eq(config_apply_flag(&c, "--bridge-prefix", "hearth", err, sizeof(err)), HERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "does not end with /"));
	ck_assert_int_eq(config_apply_flag(&c, "--bridge-prefix", "$SYS/", err, sizeof(err)), HERR_INVALID);
	ck_assert_int_eq(config_apply_flag(&c, "--bridge-ha-prefix", "ha/+/", err, sizeof(err)), HERR_INVALID);
	ck_assert_int_eq(config_apply_flag(&c, "--bridge-host", "mqtt.lan/x", err, sizeof(err)), HERR_INVALID);
	ck_assert_int_eq(config_apply_flag(&c, "--bridge-cafile", "relative.pem", err, sizeof(err)), HERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "is not an absolute path"));
	ck_assert_int_eq(config_apply_flag(&c, "--bridge-qos", "2", err, sizeof(err)), HERR_INVALID);
	ck_assert_int_eq(config_apply_flag(&c, "--bridge-client-id", "a b", err, sizeof(err)), HERR_INVALID);
	ck_assert_int_eq(config_apply_flag(&c, "--bridge-host", "", err, sizeof(err)), HERR_OK);
	ck_assert(!bridge_enabled(&c.bridge));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bridge");
	TCase *tc = tcase_create("settings");

	unit_scratch_add(tc);
	tcase_add_test(tc, test_records);
	tcase_add_test(tc, test_port);
	tcase_add_test(tc, test_credentials);
	tcase_add_test(tc, test_check);
	tcase_add_test(tc, test_settings);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
