#include "herr.h"

#include <stdarg.h>
#include <stdio.h>

const char *herr_str(enum herr e)
{
	switch (e) {
	case HERR_OK: return "success";
	case HERR_NOMEM: return "out of memory";
	case HERR_IO: return "input/output error";
	case HERR_INVALID: return "invalid input";
	case HERR_TOOBIG: return "input too large";
	case HERR_EXISTS: return "already exists";
	case HERR_NOTFOUND: return "not found";
	case HERR_CRYPTO: return "cryptographic failure";
	case HERR_STORE: return "database failure";
	case HERR_SCHEMA: return "database schema mismatch";
	case HERR_STATE: return "not possible in the current state";
	}
	return "unknown error";
}

enum herr herr_why(char *why, size_t why_size, enum herr rc, const char *fmt, ...)
{
	va_list ap;

	if (why && why_size > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_size, fmt, ap);
		va_end(ap);
	}
	return rc;
}
