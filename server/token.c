#include "server/token.h"

#include <string.h>

#include "ca/key.h"
#include "common/rng.h"

static const char *const scope_names[] = { [TOKEN_READ] = "read", [TOKEN_OPERATE] = "operate",
					   [TOKEN_ADMIN] = "admin" };

int token_scope_parse(const char *name, enum token_scope *scope)
{
	size_t i;

	for (i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++) {
		if (strcmp(name, scope_names[i]) == 0) {
			*scope = (enum token_scope)i;
			return 0;
		}
	}
	return -1;
}

const char *token_scope_name(enum token_scope scope)
{
	return (size_t)scope < sizeof(scope_names) / sizeof(scope_names[0]) ? scope_names[scope] : "?";
}

static const char *prefix_of(enum token_kind kind)
{
	return kind == TOKEN_API ? "hth_" : "hte_";
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

enum herr token_make(enum token_kind kind, char *token, char *id, char *hash)
{
	unsigned char raw[TOKEN_ID_LEN / 2 + TOKEN_SECRET_LEN / 2];
	char secret[TOKEN_SECRET_LEN + 1];
	enum herr rc = rng_bytes(raw, sizeof(raw));

	if (rc != HERR_OK)
		return rc;
	to_hex(raw, TOKEN_ID_LEN / 2, id);
	to_hex(raw + TOKEN_ID_LEN / 2, TOKEN_SECRET_LEN / 2, secret);
	memcpy(token, prefix_of(kind), 4);
	memcpy(token + 4, id, TOKEN_ID_LEN);
	token[4 + TOKEN_ID_LEN] = '_';
	memcpy(token + 5 + TOKEN_ID_LEN, secret, TOKEN_SECRET_LEN + 1);
	ca_sha256_hex((const uint8_t *)token, strlen(token), hash);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(secret, sizeof(secret));
	return HERR_OK;
}

static int all_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	}
	return 1;
}

enum herr token_parse(enum token_kind kind, const char *token, size_t len, char *id, char *hash)
{
	if (len != TOKEN_MAX - 1 || memcmp(token, prefix_of(kind), 4) != 0 ||
	    token[4 + TOKEN_ID_LEN] != '_' || !all_hex(token + 4, TOKEN_ID_LEN) ||
	    !all_hex(token + 5 + TOKEN_ID_LEN, TOKEN_SECRET_LEN))
		return HERR_INVALID;
	memcpy(id, token + 4, TOKEN_ID_LEN);
	id[TOKEN_ID_LEN] = '\0';
	ca_sha256_hex((const uint8_t *)token, len, hash);
	return HERR_OK;
}

int token_hash_equal(const char *a, const char *b)
{
	unsigned char diff = 0;
	size_t i;

	/* Lengths are no secret; only then is the comparison constant-time. */
	if (strnlen(a, TOKEN_HASH_LEN) != TOKEN_HASH_LEN - 1 || strnlen(b, TOKEN_HASH_LEN) != TOKEN_HASH_LEN - 1)
		return 0;
	for (i = 0; i < TOKEN_HASH_LEN - 1; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}
