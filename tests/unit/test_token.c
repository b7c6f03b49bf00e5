/* Unit tests of server/token: the shape of made tokens, that parse accepts exactly that shape (and
 * nothing near it: other prefix, length, alphabet, a NUL inside), the hash against known answers
 * computed elsewhere (Python's hashlib), constant-time comparison, and scope names. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "server/token.h"
#include "tests/unit/unit.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Two well-formed tokens and the hex SHA-256 of each, from
 * python3 -c "import hashlib; print(hashlib.sha256(b'...').hexdigest())". */
#define API_TOKEN "hth_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define API_HASH "55f38d72272a4f72b89d88f3220e120db470b30f7b470a72f83de1218720e48f"
#define ENROLL_TOKEN "hte_fedcba9876543210_ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define ENROLL_HASH "b0d772e82dda5ad62031f430ad58d135b3e5436a2c41116f96b3db6a6769627b"

static int lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0')
			return 0;
	}
	return 1;
}

static enum herr parse(enum token_kind kind, const char *token, size_t len)
{
	char id[TOKEN_ID_LEN + 1], hash[TOKEN_HASH_LEN];

	return token_parse(kind, token, len, id, hash);
}

START_TEST(test_make_shape)
{
	static const struct {
		enum token_kind kind;
		const char *prefix;
	} kinds[] = { { TOKEN_API, "hth_" }, { TOKEN_ENROLL, "hte_" } };
	char token[TOKEN_MAX], id[TOKEN_ID_LEN + 1], hash[TOKEN_HASH_LEN];
	size_t i;

	ck_assert_int_eq(TOKEN_MAX, 4 + 16 + 1 + 64 + 1);
	for (i = 0; i < N_ELEMS(kinds); i++) {
		memset(token, 'X', sizeof(token));
		memset(id, 'X', sizeof(id));
		memset(hash, 'X', sizeof(hash));
		ck_assert_int_eq(token_make(kinds[i].kind, token, id, hash), HERR_OK);
		ck_assert_uint_eq(strlen(token), TOKEN_MAX - 1);
		ck_assert_mem_eq(token, kinds[i].prefix, 4);
		ck_assert_uint_eq(strlen(id), TOKEN_ID_LEN);
		ck_assert_msg(lower_hex(id, TOKEN_ID_LEN), "id %s", id);
		ck_assert_mem_eq(token + 4, id, TOKEN_ID_LEN);
		ck_assert_int_eq(token[4 + TOKEN_ID_LEN], '_');
		ck_assert_msg(lower_hex(token + 5 + TOKEN_ID_LEN, TOKEN_SECRET_LEN), "secret of %s", token);
		ck_assert_uint_eq(strlen(hash), TOKEN_HASH_LEN - 1);
		ck_assert_msg(lower_hex(hash, TOKEN_HASH_LEN - 1), "hash %s", hash);
	}
}
END_TEST

START_TEST(test_make_differs)
{
	char a[TOKEN_MAX], b[TOKEN_MAX], ida[TOKEN_ID_LEN + 1], idb[TOKEN_ID_LEN + 1];
	char ha[TOKEN_HASH_LEN], hb[TOKEN_HASH_LEN];

	ck_assert_int_eq(token_make(TOKEN_API, a, ida, ha), HERR_OK);
	ck_assert_int_eq(token_make(TOKEN_API, b, idb, hb), HERR_OK);
	ck_assert_str_ne(ida, idb);
	ck_assert_int_ne(memcmp(a + 5 + TOKEN_ID_LEN, b + 5 + TOKEN_ID_LEN, TOKEN_SECRET_LEN), 0);
	ck_assert_str_ne(ha, hb);
	ck_assert_int_eq(token_hash_equal(ha, hb), 0);
}
END_TEST

/* What make made, parse takes back: the same id and the same hash. */
START_TEST(test_parse_made)
{
	static const enum token_kind kinds[] = { TOKEN_API, TOKEN_ENROLL };
	char token[TOKEN_MAX], id[TOKEN_ID_LEN + 1], hash[TOKEN_HASH_LEN];
	char pid[TOKEN_ID_LEN + 1], phash[TOKEN_HASH_LEN];
	size_t i;

	for (i = 0; i < N_ELEMS(kinds); i++) {
		ck_assert_int_eq(token_make(kinds[i], token, id, hash), HERR_OK);
		memset(pid, 'X', sizeof(pid));
		memset(phash, 'X', sizeof(phash));
		ck_assert_int_eq(token_parse(kinds[i], token, strlen(token), pid, phash), HERR_OK);
		ck_assert_str_eq(pid, id);
		ck_assert_str_eq(phash, hash);
		ck_assert_int_eq(token_hash_equal(phash, hash), 1);
	}
}
END_TEST

START_TEST(test_parse_known_answers)
{
	char id[TOKEN_ID_LEN + 1], hash[TOKEN_HASH_LEN];
	char buf[TOKEN_MAX + 8];

	ck_assert_int_eq(token_parse(TOKEN_API, API_TOKEN, strlen(API_TOKEN), id, hash), HERR_OK);
	ck_assert_str_eq(id, "0123456789abcdef");
	ck_assert_str_eq(hash, API_HASH);
	ck_assert_int_eq(token_parse(TOKEN_ENROLL, ENROLL_TOKEN, strlen(ENROLL_TOKEN), id, hash), HERR_OK);
	ck_assert_str_eq(id, "fedcba9876543210");
	ck_assert_str_eq(hash, ENROLL_HASH);

	/* The token need not be NUL-terminated: len says where it ends (a header value in a buffer). */
	memcpy(buf, API_TOKEN, TOKEN_MAX - 1);
	memcpy(buf + TOKEN_MAX - 1, "\r\nHost:", 8);
	ck_assert_int_eq(token_parse(TOKEN_API, buf, TOKEN_MAX - 1, id, hash), HERR_OK);
	ck_assert_str_eq(hash, API_HASH);
}
END_TEST

START_TEST(test_parse_refuses)
{
	char t[TOKEN_MAX + 1];
	size_t n = strlen(API_TOKEN);

	ck_assert_uint_eq(n, TOKEN_MAX - 1);
	/* The other kind: an API token does not enroll, an enrollment token does not authenticate. */
	ck_assert_int_eq(parse(TOKEN_ENROLL, API_TOKEN, n), HERR_INVALID);
	ck_assert_int_eq(parse(TOKEN_API, ENROLL_TOKEN, n), HERR_INVALID);
	/* Other prefixes. */
	memcpy(t, API_TOKEN, n + 1);
	memcpy(t, "htx_", 4);
	ck_assert_int_eq(parse(TOKEN_API, t, n), HERR_INVALID);
	memcpy(t, "HTH_", 4);
	ck_assert_int_eq(parse(TOKEN_API, t, n), HERR_INVALID);
	memcpy(t, "hth-", 4);
	ck_assert_int_eq(parse(TOKEN_API, t, n), HERR_INVALID);
	/* Lengths: nothing, the prefix alone, one short, one long. */
	ck_assert_int_eq(parse(TOKEN_API, "", 0), HERR_INVALID);
	ck_assert_int_eq(parse(TOKEN_API, "hth_", 4), HERR_INVALID);
	ck_assert_int_eq(parse(TOKEN_API, API_TOKEN, n - 1), HERR_INVALID);
	memcpy(t, API_TOKEN, n);
	t[n] = 'a';
	ck_assert_int_eq(parse(TOKEN_API, t, n + 1), HERR_INVALID);
	/* The id one longer and the secret one shorter: same length, separator in the wrong place. */
	memcpy(t, API_TOKEN, n + 1);
	memmove(t + 4 + TOKEN_ID_LEN + 1, t + 4 + TOKEN_ID_LEN, n - 4 - TOKEN_ID_LEN - 1);
	t[4 + TOKEN_ID_LEN] = 'a';
	ck_assert_int_eq(parse(TOKEN_API, t, n), HERR_INVALID);
	/* No separator. */
	memcpy(t, API_TOKEN, n + 1);
	t[4 + TOKEN_ID_LEN] = 'a';
	ck_assert_int_eq(parse(TOKEN_API, t, n), HERR_INVALID);
}
END_TEST

/* One byte changed at each position of the id and of the secret, to a byte not in the alphabet:
 * non-hex letters, upper-case hex, a NUL (len counts bytes, so the NUL is inside), a separator. */
START_TEST(test_parse_alphabet)
{
	static const char bad[] = { 'g', 'z', 'A', 'F', '\0', '_', ' ', '-', '\xff' };
	char t[TOKEN_MAX];
	size_t n = TOKEN_MAX - 1, pos, b;

	for (pos = 4; pos < n; pos++) {
		if (pos == 4 + TOKEN_ID_LEN)
			continue; /* the separator */
		for (b = 0; b < N_ELEMS(bad); b++) {
			memcpy(t, API_TOKEN, sizeof(t));
			t[pos] = bad[b];
			ck_assert_msg(parse(TOKEN_API, t, n) == HERR_INVALID, "byte 0x%02x at %zu accepted",
				      (unsigned char)bad[b], pos);
		}
	}
	/* A hex letter in each place is fine: the test above is not refusing every change. */
	memcpy(t, API_TOKEN, sizeof(t));
	t[4] = 'f';
	t[n - 1] = 'a';
	ck_assert_int_eq(parse(TOKEN_API, t, n), HERR_OK);
}
END_TEST

START_TEST(test_hash_equal)
{
	char h[TOKEN_HASH_LEN];

	ck_assert_int_eq(token_hash_equal(API_HASH, API_HASH), 1);
	ck_assert_int_eq(token_hash_equal(API_HASH, ENROLL_HASH), 0);
	memcpy(h, API_HASH, sizeof(h));
	ck_assert_int_eq(token_hash_equal(API_HASH, h), 1);
	h[0] = '0';
	ck_assert_int_eq(token_hash_equal(API_HASH, h), 0);
	memcpy(h, API_HASH, sizeof(h));
	h[TOKEN_HASH_LEN - 2] = 'e'; /* the last digit (was 'f') */
	ck_assert_int_eq(token_hash_equal(API_HASH, h), 0);
	ck_assert_int_eq(token_hash_equal(h, API_HASH), 0);
}
END_TEST

START_TEST(test_scope)
{
	static const char *const unknown[] = { "", "Read", "ADMIN", "adm", "admin ", " read", "write",
					       "operator" };
	static const struct {
		const char *name;
		enum token_scope scope;
	} known[] = { { "read", TOKEN_READ }, { "operate", TOKEN_OPERATE }, { "admin", TOKEN_ADMIN } };
	enum token_scope scope;
	size_t i;

	/* Each scope includes the ones before it: callers compare with >=. */
	ck_assert_int_lt(TOKEN_READ, TOKEN_OPERATE);
	ck_assert_int_lt(TOKEN_OPERATE, TOKEN_ADMIN);
	for (i = 0; i < N_ELEMS(known); i++) {
		scope = (enum token_scope)-1;
		ck_assert_int_eq(token_scope_parse(known[i].name, &scope), 0);
		ck_assert_int_eq(scope, known[i].scope);
		ck_assert_str_eq(token_scope_name(known[i].scope), known[i].name);
	}
	for (i = 0; i < N_ELEMS(unknown); i++)
		ck_assert_msg(token_scope_parse(unknown[i], &scope) == -1, "\"%s\" accepted", unknown[i]);
	ck_assert_str_eq(token_scope_name((enum token_scope)3), "?");
	ck_assert_str_eq(token_scope_name((enum token_scope)-1), "?");
}
END_TEST

static Suite *token_suite(void)
{
	Suite *s = suite_create("token");
	TCase *tc = tcase_create("token");

	tcase_add_test(tc, test_make_shape);
	tcase_add_test(tc, test_make_differs);
	tcase_add_test(tc, test_parse_made);
	tcase_add_test(tc, test_parse_known_answers);
	tcase_add_test(tc, test_parse_refuses);
	tcase_add_test(tc, test_parse_alphabet);
	tcase_add_test(tc, test_hash_equal);
	tcase_add_test(tc, test_scope);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(token_suite());
}
