/* token: the bearer secrets of the REST API (API tokens) and of enrollment (one-time enrollment
 * tokens). A token reads "<prefix>_<id>_<secret>": "hth" for API tokens, "hte" for enrollment
 * tokens; the id (16 hex digits) names its row, the secret (64 hex digits, 256 bits from the
 * kernel CSPRNG) is what makes it a secret. The store keeps only the hex SHA-256 of the whole
 * token, compared in constant time; the token itself is shown once and never logged.
 * Pure apart from token_make's randomness. */
#ifndef HEARTH_TOKEN_H
#define HEARTH_TOKEN_H

#include <stddef.h>

#include "common/herr.h"

enum token_kind { TOKEN_API, TOKEN_ENROLL };

#define TOKEN_ID_LEN 16
#define TOKEN_SECRET_LEN 64
/* "hth_" + id + "_" + secret + NUL */
#define TOKEN_MAX (4 + TOKEN_ID_LEN + 1 + TOKEN_SECRET_LEN + 1)
#define TOKEN_HASH_LEN 65

/* What an API token may do; each scope includes the ones before it. */
enum token_scope { TOKEN_READ, TOKEN_OPERATE, TOKEN_ADMIN };
/* "read", "operate", "admin": 0, or -1 if unknown. */
int token_scope_parse(const char *name, enum token_scope *scope);
const char *token_scope_name(enum token_scope scope);

/* A new token of kind into token (TOKEN_MAX), its id (TOKEN_ID_LEN + 1) and its hash
 * (TOKEN_HASH_LEN). */
enum herr token_make(enum token_kind kind, char *token, char *id, char *hash);

/* Check the shape of a presented token (len bytes, not NUL-terminated) and give its id and hash.
 * HERR_INVALID if it is not a token of kind (prefix, lengths, alphabet). */
enum herr token_parse(enum token_kind kind, const char *token, size_t len, char *id, char *hash);

/* 1 if the two hex hashes (64 digits each; anything else is unequal) are equal, in time independent
 * of where they differ. */
int token_hash_equal(const char *a, const char *b);

#endif
