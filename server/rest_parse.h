/* rest_parse: everything hearth reads out of a REST request, as pure functions over its text:
 * route patterns and their {id} segments, percent-decoding, query numbers and cursors, the bearer
 * token, Range, content types and lengths, and each JSON body's shape. No libmicrohttpd and no
 * store: the glue (rest.c) and the handlers (rest_*.c) call these and answer what they say, and
 * tests/fuzz/fuzz_rest.c drives each of them. A refusal comes back as a rest_fault, worded as the
 * API answers it; strings handed out point into the caller's JSON and never hold a NUL byte. */
#ifndef HEARTH_REST_PARSE_H
#define HEARTH_REST_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "server/token.h"

#define REST_PARSE_BODY_MAX (64 * 1024)          /* a JSON body (rest_internal.h: REST_BODY_MAX) */
#define REST_PARSE_UPLOAD_MAX (512ULL * 1024 * 1024) /* a streamed upload */
#define REST_PARSE_SECONDS_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */
#define REST_PARSE_PARAMS 2                      /* {…} segments in a route pattern */
#define REST_PARSE_PARAM_MAX 65                  /* one of them, with its NUL */
#define REST_PARSE_TAGS_MAX 32                   /* tags on a device */
#define REST_PARSE_TAG_LEN_MAX 64
#define REST_PARSE_ROLLOUT_DEVICES_MAX 1000      /* devices named by a list rollout */
#define REST_PARSE_REASON_MAX 100                /* an abort's reason, in bytes */

/* A refusal: the HTTP status, the error code and the message of the JSON error body. */
struct rest_fault {
	unsigned status;
	const char *code;            /* static text */
	char message[512];
};

/* --- the request line and headers --------------------------------------------------------------- */

/* Match path against pattern; {x} takes one segment, which must be an id ([A-Za-z0-9_-]{1,64}).
 * 1 on a match (params filled), 0 if the shapes differ, -1 if a {x} segment is not an id. */
int rest_parse_route(const char *pattern, const char *path, char params[REST_PARSE_PARAMS][REST_PARSE_PARAM_MAX]);

/* Percent-decoding in place; returns the new length. %00 stays as it is written (a NUL would cut
 * the string short and let "/devices/x%00y" reach device x), and so do malformed escapes. */
size_t rest_parse_unescape(char *s);

/* Unix seconds in a query value: digits only, at most REST_PARSE_SECONDS_MAX. 0 with *out, or -1. */
int rest_parse_seconds(const char *v, int64_t *out);
/* ?limit=: digits only, 1..max. 0 with *out, or -1. */
int rest_parse_limit(const char *v, size_t max, size_t *out);
/* The audit log's cursor: the decimal id (>= 1) of the last entry of the previous page. */
int rest_parse_audit_cursor(const char *v, int64_t *out);
/* Digits only (at most 18), at most max: the value, or -1. */
int64_t rest_parse_count(const char *text, int64_t max);

/* One range of "Range: bytes=..." over size bytes: 1 with [*from, *to] set, 0 to send it all (no
 * header, several ranges, or one that is not valid: RFC 9110 says to ignore it), -1 if
 * unsatisfiable. */
int rest_parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to);

/* The Authorization header: absent or not "Bearer ..." (NONE), a bearer that is not an API token's
 * shape (BAD), or one that is: its id and hash are set (OK). */
enum rest_bearer { REST_BEARER_NONE, REST_BEARER_BAD, REST_BEARER_OK };
enum rest_bearer rest_parse_bearer(const char *header, char id[TOKEN_ID_LEN + 1], char hash[TOKEN_HASH_LEN]);

/* Content types: application/json (parameters allowed), application/octet-stream. */
int rest_parse_is_json(const char *content_type);
int rest_parse_is_octet_stream(const char *content_type);
/* A Content-Length that announces more than a JSON body may hold (NULL: not announced). */
int rest_parse_body_too_big(const char *content_length);
/* An upload's Content-Length: 0 with *out (1 byte .. REST_PARSE_UPLOAD_MAX), 411 if absent, 413 if
 * not such a number. */
unsigned rest_parse_upload_length(const char *content_length, uint64_t *out);

/* --- JSON bodies -------------------------------------------------------------------------------- */

/* The body as a JSON object (no duplicate keys), or NULL with a 400 fault. Caller decrefs. */
json_t *rest_parse_object(const uint8_t *body, size_t len, struct rest_fault *f);
/* 0 if every key of obj is in allowed (NULL-terminated), else -1 with a 422 fault naming one. */
int rest_parse_known_keys(json_t *obj, const char *const *allowed, struct rest_fault *f);

/* POST /api/v1/devices {"model", "csr", "id"?} (the CSR itself is ca_csr_check's). */
struct rest_device_new {
	const char *model, *csr, *id;    /* id NULL: a random one */
};
int rest_parse_device_new(json_t *body, struct rest_device_new *out, struct rest_fault *f);

/* PATCH /api/v1/devices/{id} {"tags"?: [...], "model"?}. */
struct rest_device_change {
	const char *model;               /* NULL: unchanged */
	int has_tags;                    /* 0: unchanged; else tags replace the device's */
	const char *tags[REST_PARSE_TAGS_MAX];
	size_t tag_count;
};
int rest_parse_device_change(json_t *body, struct rest_device_change *out, struct rest_fault *f);

/* POST /api/v1/enrollment-tokens {"model", "device_id"?, "ttl_s"?}. */
#define REST_PARSE_TTL_MIN_S 60
#define REST_PARSE_TTL_MAX_S (30 * 86400)
#define REST_PARSE_TTL_DEFAULT_S 86400
struct rest_enroll_token_new {
	const char *model, *device_id;   /* device_id NULL: any */
	int64_t ttl_s;
};
int rest_parse_enroll_token_new(json_t *body, struct rest_enroll_token_new *out, struct rest_fault *f);

/* POST /api/v1/enroll {"token", "csr"}: both strings (token_parse and ca_csr_check judge them). */
struct rest_enroll_request {
	const char *token, *csr;
	size_t token_len, csr_len;
};
int rest_parse_enroll(json_t *body, struct rest_enroll_request *out, struct rest_fault *f);

/* POST /api/v1/device/renew {"csr"}. */
int rest_parse_renew(json_t *body, const char **csr, size_t *csr_len, struct rest_fault *f);

/* POST /api/v1/rollouts {"release", exactly one of "percent" | "devices" | "tag",
 * "failure_threshold"?}. */
enum rest_cohort { REST_COHORT_PERCENT, REST_COHORT_LIST, REST_COHORT_TAG };
struct rest_rollout_new {
	const char *release;
	enum rest_cohort kind;
	unsigned percent;                /* PERCENT: 1..100 */
	const char *devices[REST_PARSE_ROLLOUT_DEVICES_MAX];
	size_t device_count;             /* LIST: 1..REST_PARSE_ROLLOUT_DEVICES_MAX */
	const char *tag;                 /* TAG: 1..64 bytes */
	unsigned failure_threshold;      /* 0..100; default_threshold when not given */
};
int rest_parse_rollout_new(json_t *body, unsigned default_threshold, struct rest_rollout_new *out,
			   struct rest_fault *f);
/* PATCH /api/v1/rollouts/{id} {"percent"}. */
int rest_parse_rollout_widen(json_t *body, unsigned *percent, struct rest_fault *f);
/* POST /api/v1/rollouts/{id}/abort {"reason"?}: printable ASCII, at most REST_PARSE_REASON_MAX
 * bytes, copied into reason (left as it is when not given). */
int rest_parse_rollout_abort(json_t *body, char reason[REST_PARSE_REASON_MAX + 1], struct rest_fault *f);

/* POST /api/v1/pins/switch {"threshold"?: 1..100, "force"?: bool, "to"?: "next"|"backup"}; the
 * fields not given are left as they are. */
struct rest_pins_switch {
	int64_t threshold;
	int force, backup;
};
int rest_parse_pins_switch(json_t *body, struct rest_pins_switch *out, struct rest_fault *f);

#endif
