/* Unit tests of server/addrlimit: what counts as one address (IPv4, IPv4-mapped IPv6, an IPv6 /64),
 * both limits and "0 is no limit", that a refusal counts nothing, that an address leaves the table
 * with its last connection (and a handshake ended is not ended twice), and the log's rhythm. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include "server/addrlimit.h"
#include "tests/unit/unit.h"

static struct sockaddr_storage v4(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	a->sin6_family = AF_INET6;
	a->sin6_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
	return ss;
}

static enum addrlimit_verdict open_one(struct addrlimit *t, struct sockaddr_storage ss, size_t max_conn,
				       size_t max_hs, struct addrlimit_entry **e)
{
	socklen_t len = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);

	return addrlimit_open(t, (struct sockaddr *)&ss, len, max_conn, max_hs, e);
}

START_TEST(test_what_is_one_address)
{
	struct addrlimit *t = addrlimit_new();
	struct addrlimit_entry *a, *b, *c, *d, *e, *f;

	ck_assert_ptr_nonnull(t);
	/* The port never matters; an IPv4 address mapped into IPv6 is that IPv4 address. */
	ck_assert_int_eq(open_one(t, v4("192.0.2.7", 1000), 0, 0, &a), ADDRLIMIT_OK);
	ck_assert_int_eq(open_one(t, v4("192.0.2.7", 1001), 0, 0, &b), ADDRLIMIT_OK);
	ck_assert_int_eq(open_one(t, v6("::ffff:192.0.2.7", 1002), 0, 0, &c), ADDRLIMIT_OK);
	ck_assert_ptr_eq(a, b);
	ck_assert_ptr_eq(a, c);
	ck_assert_str_eq(addrlimit_name(a), "192.0.2.7");
	ck_assert_uint_eq(addrlimit_connections(a), 3);
	/* One IPv6 /64 is one address; the next /64 is another. */
	ck_assert_int_eq(open_one(t, v6("2001:db8:1:2::1", 1), 0, 0, &d), ADDRLIMIT_OK);
	ck_assert_int_eq(open_one(t, v6("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 1), 0, 0, &e), ADDRLIMIT_OK);
	ck_assert_int_eq(open_one(t, v6("2001:db8:1:3::1", 1), 0, 0, &f), ADDRLIMIT_OK);
	ck_assert_ptr_eq(d, e);
	ck_assert_ptr_ne(d, f);
	ck_assert_str_eq(addrlimit_name(d), "2001:db8:1:2::/64");
	ck_assert_uint_eq(addrlimit_addresses(t), 3);
	addrlimit_free(t);
}
END_TEST

START_TEST(test_limits)
{
	struct addrlimit *t = addrlimit_new();
	struct addrlimit_entry *e[4], *other, *refused;
	size_t i;

	ck_assert_ptr_nonnull(t);
	/* Two handshakes at a time, three connections. */
	ck_assert_int_eq(open_one(t, v4("10.0.0.1", 1), 3, 2, &e[0]), ADDRLIMIT_OK);
	ck_assert_int_eq(open_one(t, v4("10.0.0.1", 2), 3, 2, &e[1]), ADDRLIMIT_OK);
	ck_assert_int_eq(open_one(t, v4("10.0.0.1", 3), 3, 2, &refused), ADDRLIMIT_HANDSHAKES);
	ck_assert_ptr_eq(refused, e[0]); /* its entry, for the log */
	ck_assert_uint_eq(addrlimit_connections(e[0]), 2);
	ck_assert_uint_eq(addrlimit_handshakes(e[0]), 2);
	/* Another address is not affected. */
	ck_assert_int_eq(open_one(t, v4("10.0.0.2", 1), 3, 2, &other), ADDRLIMIT_OK);
	/* A finished handshake makes room for one more handshake, up to the connection limit. */
	addrlimit_handshake_done(t, e[0]);
	ck_assert_int_eq(open_one(t, v4("10.0.0.1", 4), 3, 2, &e[2]), ADDRLIMIT_OK);
	ck_assert_uint_eq(addrlimit_connections(e[0]), 3);
	addrlimit_handshake_done(t, e[1]);
	ck_assert_int_eq(open_one(t, v4("10.0.0.1", 5), 3, 2, &refused), ADDRLIMIT_CONNECTIONS);
	/* 0: no limit. */
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(open_one(t, v4("10.0.0.3", (unsigned)i), 0, 0, &e[3]), ADDRLIMIT_OK);
	ck_assert_uint_eq(addrlimit_connections(e[3]), 100);
	ck_assert_uint_eq(addrlimit_handshakes(e[3]), 100);
	addrlimit_free(t);
}
END_TEST

START_TEST(test_close)
{
	struct addrlimit *t = addrlimit_new();
	struct addrlimit_entry *a, *b;

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(open_one(t, v4("10.0.0.1", 1), 2, 1, &a), ADDRLIMIT_OK);
	ck_assert_int_eq(open_one(t, v4("10.0.0.1", 2), 2, 1, &b), ADDRLIMIT_HANDSHAKES);
	/* Closed in its handshake: both counts go down, and the address leaves the table. */
	addrlimit_close(t, a, 1);
	ck_assert_uint_eq(addrlimit_addresses(t), 0);
	ck_assert_int_eq(open_one(t, v4("10.0.0.1", 3), 2, 1, &a), ADDRLIMIT_OK);
	addrlimit_handshake_done(t, a);
	ck_assert_int_eq(open_one(t, v4("10.0.0.1", 4), 2, 1, &b), ADDRLIMIT_OK);
	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(addrlimit_handshakes(a), 1);
	/* Closed after its handshake: the handshake count stays as it is. */
	addrlimit_close(t, a, 0);
	ck_assert_uint_eq(addrlimit_connections(b), 1);
	ck_assert_uint_eq(addrlimit_handshakes(b), 1);
	addrlimit_close(t, b, 1);
	ck_assert_uint_eq(addrlimit_addresses(t), 0);
	addrlimit_close(t, NULL, 1);
	addrlimit_free(t);
	addrlimit_free(NULL);
}
END_TEST

START_TEST(test_log_rhythm)
{
	struct addrlimit *t = addrlimit_new();
	struct addrlimit_entry *e, *r;
	uint64_t since = 99;
	int i, logged = 0;

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(open_one(t, v4("10.0.0.9", 1), 1, 0, &e), ADDRLIMIT_OK);
	/* A burst of refusals: one line at its start... */
	for (i = 0; i < 500; i++) {
		ck_assert_int_eq(open_one(t, v4("10.0.0.9", 2), 1, 0, &r), ADDRLIMIT_CONNECTIONS);
		logged += addrlimit_refused(r, 1000 + (uint64_t)i, &since);
	}
	ck_assert_int_eq(logged, 1);
	/* ... and, while it goes on, one a minute with what was refused meanwhile. */
	ck_assert_int_eq(addrlimit_refused(e, 1000 + 59999, &since), 0);
	ck_assert_int_eq(addrlimit_refused(e, 1000 + 60000, &since), 1);
	ck_assert_uint_eq(since, 500);
	addrlimit_free(t);
}
END_TEST

static Suite *addrlimit_suite(void)
{
	Suite *s = suite_create("addrlimit");
	TCase *tc = tcase_create("addrlimit");

	tcase_add_test(tc, test_what_is_one_address);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_close);
	tcase_add_test(tc, test_log_rhythm);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(addrlimit_suite());
}
