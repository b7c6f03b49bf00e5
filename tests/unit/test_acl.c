/* Unit tests of server/acl: what a device and an integration client may publish and subscribe to,
 * including the tricks (wildcards in the id position, another device's subtree, a prefix of the
 * own id, `$` topics, leaves that merely end in "telemetry"). */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "server/acl.h"
#include "tests/unit/unit.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct acl_case {
	enum acl_role role;
	const char *topic;
	int allowed;
};

static int pub(enum acl_role role, const char *topic)
{
	return acl_may_publish(role, "dev1", (const uint8_t *)topic, strlen(topic));
}

static int sub(enum acl_role role, const char *filter)
{
	return acl_may_subscribe(role, "dev1", (const uint8_t *)filter, strlen(filter));
}

START_TEST(publish_rules)
{
	static const struct acl_case cases[] = {
		{ ACL_DEVICE, "hearth/v1/dev1/telemetry", 1 },
		{ ACL_DEVICE, "hearth/v1/dev1/ack", 1 },
		{ ACL_DEVICE, "hearth/v1/dev1/status", 1 },
		{ ACL_DEVICE, "hearth/v1/dev1/manifest/pins", 0 },
		{ ACL_DEVICE, "hearth/v1/dev1/telemetry/x", 0 },
		{ ACL_DEVICE, "hearth/v1/dev1/telemetryx", 0 },
		{ ACL_DEVICE, "hearth/v1/dev2/telemetry", 0 },
		{ ACL_DEVICE, "hearth/v1/dev/telemetry", 0 },
		{ ACL_DEVICE, "hearth/v1/dev1", 0 },
		{ ACL_DEVICE, "other/dev1/telemetry", 0 },
		/* An integration reads; it never publishes, not even into "its own" subtree. */
		{ ACL_INTEGRATION, "hearth/v1/dev1/telemetry", 0 },
		{ ACL_INTEGRATION, "hearth/v1/dev1/status", 0 },
		{ ACL_INTEGRATION, "hearth/v1/dev2/telemetry", 0 },
		{ ACL_INTEGRATION, "anything", 0 },
	};
	size_t i;

	for (i = 0; i < N_ELEMS(cases); i++)
		ck_assert_msg(pub(cases[i].role, cases[i].topic) == cases[i].allowed, "%s publish %s: expected %d",
			      acl_role_name(cases[i].role), cases[i].topic, cases[i].allowed);
}
END_TEST

START_TEST(subscribe_rules)
{
	static const struct acl_case cases[] = {
		{ ACL_DEVICE, "hearth/v1/dev1/manifest/#", 1 },
		{ ACL_DEVICE, "hearth/v1/dev1/#", 1 },
		{ ACL_DEVICE, "hearth/v1/dev1/+", 1 },
		{ ACL_DEVICE, "hearth/v1/+/telemetry", 0 },
		{ ACL_DEVICE, "hearth/v1/#", 0 },
		{ ACL_DEVICE, "hearth/v1/dev2/#", 0 },
		{ ACL_DEVICE, "#", 0 },
		{ ACL_INTEGRATION, "hearth/v1/+/telemetry", 1 },
		{ ACL_INTEGRATION, "hearth/v1/dev2/telemetry", 1 },
		{ ACL_INTEGRATION, "hearth/v1/A_b-9/telemetry", 1 },
		{ ACL_INTEGRATION, "hearth/v1/#", 0 },
		{ ACL_INTEGRATION, "hearth/v1/+/#", 0 },
		{ ACL_INTEGRATION, "hearth/v1/+/+", 0 },
		{ ACL_INTEGRATION, "hearth/v1/+/status", 0 },
		{ ACL_INTEGRATION, "hearth/v1/+/manifest/#", 0 },
		{ ACL_INTEGRATION, "hearth/v1/dev2/ack", 0 },
		{ ACL_INTEGRATION, "hearth/v1/+/telemetry/#", 0 },
		{ ACL_INTEGRATION, "hearth/v1/#/telemetry", 0 },
		{ ACL_INTEGRATION, "hearth/v1/a+b/telemetry", 0 },
		{ ACL_INTEGRATION, "hearth/v1/++/telemetry", 0 },
		{ ACL_INTEGRATION, "hearth/v1//telemetry", 0 },
		{ ACL_INTEGRATION, "hearth/v1/+/telemetryx", 0 },
		{ ACL_INTEGRATION, "+/v1/+/telemetry", 0 },
		{ ACL_INTEGRATION, "$SYS/#", 0 },
		{ ACL_INTEGRATION, "#", 0 },
		{ ACL_INTEGRATION,
		  "hearth/v1/0123456789012345678901234567890123456789012345678901234567890123x/telemetry", 0 },
		{ ACL_INTEGRATION,
		  "hearth/v1/0123456789012345678901234567890123456789012345678901234567890123/telemetry", 1 },
	};
	size_t i;

	for (i = 0; i < N_ELEMS(cases); i++)
		ck_assert_msg(sub(cases[i].role, cases[i].topic) == cases[i].allowed, "%s subscribe %s: expected %d",
			      acl_role_name(cases[i].role), cases[i].topic, cases[i].allowed);
}
END_TEST

START_TEST(telemetry_topics)
{
	ck_assert_int_eq(acl_is_telemetry((const uint8_t *)"hearth/v1/x/telemetry", 21), 1);
	ck_assert_int_eq(acl_is_telemetry((const uint8_t *)"hearth/v1/x/telemetry/", 22), 0);
	ck_assert_int_eq(acl_is_telemetry((const uint8_t *)"hearth/v1/x/status", 18), 0);
	ck_assert_int_eq(acl_is_telemetry((const uint8_t *)"hearth/v1/telemetry", 19), 0);
	ck_assert_int_eq(acl_is_telemetry((const uint8_t *)"x/v1/x/telemetry", 16), 0);
	/* Bounded by len, not by a NUL. */
	ck_assert_int_eq(acl_is_telemetry((const uint8_t *)"hearth/v1/x/telemetry", 20), 0);
}
END_TEST

START_TEST(role_names)
{
	enum acl_role r = ACL_DEVICE;

	ck_assert_int_eq(acl_role_parse("integration", &r), 0);
	ck_assert_int_eq(r, ACL_INTEGRATION);
	ck_assert_int_eq(acl_role_parse("device", &r), 0);
	ck_assert_int_eq(r, ACL_DEVICE);
	ck_assert_int_eq(acl_role_parse("admin", &r), -1);
	ck_assert_int_eq(acl_role_parse("Integration", &r), -1);
	ck_assert_int_eq(acl_role_parse("", &r), -1);
	ck_assert_str_eq(acl_role_name(ACL_INTEGRATION), "integration");
	ck_assert_str_eq(acl_role_name((enum acl_role)7), "?");
}
END_TEST

static Suite *acl_suite(void)
{
	Suite *s = suite_create("acl");
	TCase *tc = tcase_create("rules");

	tcase_add_test(tc, publish_rules);
	tcase_add_test(tc, subscribe_rules);
	tcase_add_test(tc, telemetry_topics);
	tcase_add_test(tc, role_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(acl_suite());
}
