/* json: a small strict JSON reader for the device (device/core.c), bounded in every dimension so that
 * it builds and behaves the same on an ESP32: no allocation, no recursion beyond DJSON_DEPTH_MAX.
 *
 * djson_parse checks a whole buffer against RFC 8259 and lays it out as a flat array of tokens in
 * document order (the caller's array, of the caller's size). It refuses what a lenient parser would
 * guess at: trailing bytes, a duplicate key in any object (keys compared decoded, so "a" and
 * "\u0061" are the same key), bad escapes, unpaired surrogates, control bytes or invalid UTF-8 in a
 * string, leading zeros, a NUL byte anywhere. Prefix djson_, not json_: jansson is linked into the
 * same library on the server and owns json_ / JSON_. */
#ifndef HEARTH_DEVICE_JSON_H
#define HEARTH_DEVICE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"

#define DJSON_DEPTH_MAX 8            /* objects and arrays nested in each other */

enum djson_type {
	DJSON_OBJECT = 1,
	DJSON_ARRAY,
	DJSON_STRING,
	DJSON_NUMBER,
	DJSON_TRUE,
	DJSON_FALSE,
	DJSON_NULL,
};

/* One value (or object key). Byte offsets into the text: a string's [start, end) is what lies
 * between its quotes, undecoded; any other token's is its whole text. size: an object's member count
 * or an array's element count (0 otherwise). next: the index of the first token after this one and
 * everything inside it; an object's members are key, value, key, value, ... from index + 1. */
struct djson_token {
	enum djson_type type;
	size_t start, end;
	size_t size;
	size_t next;
};

/* A parsed document: token 0 is the top-level value. */
struct djson_doc {
	const uint8_t *text;
	size_t len;
	const struct djson_token *tok;
	size_t count;
};

/* Parse text (len bytes, untrusted) into tok (max tokens). HERR_OK: doc describes it. HERR_TOOBIG:
 * more than max tokens or deeper than DJSON_DEPTH_MAX; HERR_INVALID: not strict JSON. why (may be
 * NULL) says what and where. Never reads outside text or writes outside tok[0..max). */
enum herr djson_parse(const uint8_t *text, size_t len, struct djson_token *tok, size_t max,
		      struct djson_doc *doc, char *why, size_t why_size);

/* The value of member key (UTF-8, NUL-terminated) of the object at index obj into *val. HERR_NOTFOUND
 * if it has no such member, HERR_INVALID if obj is not an object. */
enum herr djson_find(const struct djson_doc *doc, size_t obj, const char *key, size_t *val);

/* The string at index i, decoded, NUL-terminated into buf (size bytes); *len (may be NULL) its length.
 * HERR_INVALID: not a string, or it holds U+0000 (it would not survive as a C string); HERR_TOOBIG:
 * it does not fit. */
enum herr djson_string(const struct djson_doc *doc, size_t i, char *buf, size_t size, size_t *len);

/* 1 if the token at index i is a string whose decoded text is exactly s (NUL-terminated). */
int djson_string_is(const struct djson_doc *doc, size_t i, const char *s);

/* The number at index i as an integer: only -?[0-9]+ (no fraction, no exponent), within int64_t.
 * HERR_INVALID otherwise (HERR_TOOBIG if out of range). */
enum herr djson_int64(const struct djson_doc *doc, size_t i, int64_t *v);

/* true or false at index i into *v (1 or 0); HERR_INVALID for anything else. */
enum herr djson_bool(const struct djson_doc *doc, size_t i, int *v);

/* The elements of an array in order:
 *     struct djson_iter it;
 *     size_t e;
 *     djson_iter_init(doc, arr, &it);
 *     while (djson_iter_next(doc, &it, &e)) ...
 * Not an array (or an index out of range): no elements. */
struct djson_iter {
	size_t next, left;
};
void djson_iter_init(const struct djson_doc *doc, size_t arr, struct djson_iter *it);
int djson_iter_next(const struct djson_doc *doc, struct djson_iter *it, size_t *elem);

#endif
