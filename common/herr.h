/* herr: the project's one error enum. 0 is success; every fallible function returns one of these
 * and hands results back through pointer arguments. Library codes (mbedTLS, SQLite, ...) are
 * converted where the library is called, and logged there. */
#ifndef HEARTH_HERR_H
#define HEARTH_HERR_H

#include <stddef.h>

enum herr {
	HERR_OK = 0,
	HERR_NOMEM,     /* allocation failed */
	HERR_IO,        /* a file or socket operation failed */
	HERR_INVALID,   /* input is malformed or breaks a rule */
	HERR_TOOBIG,    /* input exceeds a hard bound */
	HERR_EXISTS,    /* the thing to create is already there */
	HERR_NOTFOUND,  /* the thing asked for is not there */
	HERR_CRYPTO,    /* a cryptographic operation failed */
	HERR_STORE,     /* the database failed */
	HERR_SCHEMA,    /* the database schema is newer than this binary or damaged */
	HERR_STATE,     /* the operation does not fit the current state */
};

/* A short, static, human-readable name of the error. */
const char *herr_str(enum herr e);

/* Say why into why (why_size bytes, always NUL-terminated one line; why may be NULL) and return
 * rc: how every bounded parser reports a refusal. */
enum herr herr_why(char *why, size_t why_size, enum herr rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
