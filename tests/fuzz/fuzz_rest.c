/* Fuzz target for server/rest_parse: the input is one HTTP request as a client would write it
 *   METHOD SP TARGET[?QUERY] [SP VERSION] LF   (Name: value LF)*   LF   BODY
 * cut up the way libmicrohttpd hands it to hearth (target, query values and headers percent-decoded
 * or taken as they are, the body as bytes), then given to every parser hearth applies to such a
 * request: route patterns, query numbers and cursors, Range, the bearer token, content types and
 * lengths, and every JSON body. Beyond "no crash": what a parser accepts obeys the rule it promises
 * (ids are ids, numbers in range and spelled in digits, ranges inside the file, strings without NUL
 * bytes), and every refusal carries a status, a code and a message. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ca/cert.h"
#include "server/rest_parse.h"
#include "server/token.h"

#define LINE_MAX_BYTES 8192
#define HEADERS_MAX 32
#define QUERY_MAX 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The shapes of the route table in server/rest.c (the patterns only; the matcher is generic). */
static const char *const patterns[] = {
	"/healthz", "/metrics", "/api/v1/devices", "/api/v1/devices/{id}", "/api/v1/devices/{id}/revoke",
	"/api/v1/devices/{id}/certificates", "/api/v1/devices/{id}/telemetry", "/api/v1/telemetry/dropped",
	"/api/v1/models/{name}", "/api/v1/enrollment-tokens/{id}", "/api/v1/enroll", "/api/v1/ca/crl",
	"/api/v1/device/manifests/{type}", "/api/v1/models/{name}/firmware", "/api/v1/firmware/{id}",
	"/api/v1/rollouts/{id}/devices", "/api/v1/device/firmware/{id}",
	/* Not routes of today, but what the matcher must handle: two ids, an id last, no slash. */
	"/api/v1/{a}/x/{b}", "/{a}{b}", "{a}",
};

static void check_fault(const struct rest_fault *f)
{
	if ((f->status != 400 && f->status != 422) || !f->code || !f->code[0] || !f->message[0] ||
	    !memchr(f->message, '\0', sizeof(f->message)))
		abort();
}

static int digits_only(const char *s)
{
	return s[0] && strspn(s, "0123456789") == strlen(s);
}

static int lower_hex(const char *s, size_t n)
{
	return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

/* A string a parser handed out: the JSON string at key, whole. */
static void check_whole(json_t *obj, const char *key, const char *s)
{
	json_t *v = json_object_get(obj, key);

	if (!s)
		return;
	if (!json_is_string(v) || json_string_value(v) != s || strlen(s) != json_string_length(v))
		abort();
}

static void check_id(json_t *obj, const char *key, const char *s)
{
	check_whole(obj, key, s);
	if (s && !ca_valid_id(s))
		abort();
}

static void route(const char *path)
{
	char params[REST_PARSE_PARAMS][REST_PARSE_PARAM_MAX], again[LINE_MAX_BYTES + 128];
	size_t i;

	for (i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		const char *p;
		size_t n = 0, np = 0;
		int m;

		memset(params, 0, sizeof(params));
		m = rest_parse_route(patterns[i], path, params);
		if (m == -1 && !strchr(patterns[i], '{'))
			abort();
		if (m != 1)
			continue;
		/* The pattern with its ids put back is the path. */
		for (p = patterns[i]; *p && n < sizeof(again) - 70;) {
			if (*p == '{') {
				if (np >= REST_PARSE_PARAMS || !ca_valid_id(params[np]))
					abort();
				n += (size_t)snprintf(again + n, sizeof(again) - n, "%s", params[np++]);
				p = strchr(p, '}') + 1;
			} else {
				again[n++] = *p++;
			}
		}
		again[n] = '\0';
		if (strcmp(again, path) != 0)
			abort();
	}
}

static void query_value(const char *v)
{
	int64_t s = -1, c = -1;
	size_t limit = 0;

	if (rest_parse_seconds(v, &s) == 0 &&
	    (!digits_only(v) || s < 0 || s > REST_PARSE_SECONDS_MAX || strtoll(v, NULL, 10) != s))
		abort();
	if (rest_parse_limit(v, 1000, &limit) == 0 && (!digits_only(v) || limit < 1 || limit > 1000))
		abort();
	if (rest_parse_audit_cursor(v, &c) == 0 && (!digits_only(v) || c < 1 || strtoll(v, NULL, 10) != c))
		abort();
	c = rest_parse_count(v, INT32_MAX);
	if (c >= 0 && (!digits_only(v) || c > INT32_MAX || strtoll(v, NULL, 10) != c))
		abort();
	if (c < -1)
		abort();
}

static void range(const char *h)
{
	static const uint64_t sizes[] = { 0, 1, 2, 1000, 1048576, UINT64_MAX / 4 };
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t from = 7, to = 7;
		int r = rest_parse_range(h, sizes[i], &from, &to);

		if (r < -1 || r > 1 || (r == 1 && (from > to || to >= sizes[i])) ||
		    (r != 1 && (from != 7 || to != 7)))
			abort();
		if (r != 0 && (!h || strncmp(h, "bytes=", 6) != 0))
			abort();
	}
}

/* A header's value; NULL: the header is absent. */
static void header(const char *value)
{
	char id[TOKEN_ID_LEN + 1], hash[TOKEN_HASH_LEN];
	uint64_t n = 0;
	unsigned u;

	if (!value) {
		if (rest_parse_bearer(NULL, id, hash) != REST_BEARER_NONE || rest_parse_is_json(NULL) ||
		    rest_parse_is_octet_stream(NULL) || rest_parse_body_too_big(NULL) ||
		    rest_parse_upload_length(NULL, &n) != 411)
			abort();
		range(NULL);
		return;
	}
	switch (rest_parse_bearer(value, id, hash)) {
	case REST_BEARER_OK:
		if (strncasecmp(value, "bearer ", 7) != 0 || !lower_hex(id, TOKEN_ID_LEN) ||
		    !lower_hex(hash, TOKEN_HASH_LEN - 1))
			abort();
		break;
	case REST_BEARER_BAD:
		if (strncasecmp(value, "bearer ", 7) != 0)
			abort();
		break;
	case REST_BEARER_NONE:
		if (strncasecmp(value, "bearer ", 7) == 0)
			abort();
		break;
	default:
		abort();
	}
	if (rest_parse_is_json(value) && strncasecmp(value, "application/json", 16) != 0)
		abort();
	if (rest_parse_is_octet_stream(value) && strncasecmp(value, "application/octet-stream", 24) != 0)
		abort();
	(void)rest_parse_body_too_big(value);
	u = rest_parse_upload_length(value, &n);
	if ((u == 0 && (n < 1 || n > REST_PARSE_UPLOAD_MAX || !digits_only(value))) || (u != 0 && u != 413))
		abort();
	range(value);
	query_value(value);
}

static void renew_and_enroll(json_t *obj)
{
	char id[TOKEN_ID_LEN + 1], hash[TOKEN_HASH_LEN];
	struct rest_enroll_request e;
	struct rest_fault f = { 0 };
	const char *csr;
	size_t len;

	if (rest_parse_enroll(obj, &e, &f) != 0) {
		check_fault(&f);
	} else {
		if (!e.token || !e.csr || e.token_len != json_string_length(json_object_get(obj, "token")))
			abort();
		if (token_parse(TOKEN_ENROLL, e.token, e.token_len, id, hash) == HERR_OK &&
		    (memcmp(e.token, "hte_", 4) != 0 || !lower_hex(id, TOKEN_ID_LEN)))
			abort();
	}
	memset(&f, 0, sizeof(f));
	if (rest_parse_renew(obj, &csr, &len, &f) != 0)
		check_fault(&f);
	else if (!csr || len != json_string_length(json_object_get(obj, "csr")))
		abort();
}

static void devices(json_t *obj)
{
	struct rest_device_change ch;
	struct rest_device_new dn;
	struct rest_fault f = { 0 };
	size_t i;

	if (rest_parse_device_new(obj, &dn, &f) != 0) {
		check_fault(&f);
	} else {
		if (!dn.model || !dn.csr)
			abort();
		check_id(obj, "model", dn.model);
		check_whole(obj, "csr", dn.csr);
		check_id(obj, "id", dn.id);
	}
	memset(&f, 0, sizeof(f));
	if (rest_parse_device_change(obj, &ch, &f) != 0) {
		check_fault(&f);
		return;
	}
	check_id(obj, "model", ch.model);
	if (ch.has_tags != (json_object_get(obj, "tags") != NULL) || ch.tag_count > REST_PARSE_TAGS_MAX ||
	    ch.tag_count != json_array_size(json_object_get(obj, "tags")))
		abort();
	for (i = 0; i < ch.tag_count; i++) {
		json_t *tag = json_array_get(json_object_get(obj, "tags"), i);
		size_t n = strlen(ch.tags[i]);

		if (n < 1 || n > REST_PARSE_TAG_LEN_MAX || n != json_string_length(tag) ||
		    ch.tags[i] != json_string_value(tag))
			abort();
	}
}

static void tokens(json_t *obj)
{
	struct rest_enroll_token_new t;
	struct rest_fault f = { 0 };

	if (rest_parse_enroll_token_new(obj, &t, &f) != 0) {
		check_fault(&f);
		return;
	}
	if (!t.model || t.ttl_s < REST_PARSE_TTL_MIN_S || t.ttl_s > REST_PARSE_TTL_MAX_S)
		abort();
	check_id(obj, "model", t.model);
	check_id(obj, "device_id", t.device_id);
}

static void rollouts(json_t *obj)
{
	static struct rest_rollout_new r;
	char reason[REST_PARSE_REASON_MAX + 1] = "unchanged";
	struct rest_fault f = { 0 };
	unsigned pct = 0;
	size_t i;

	if (rest_parse_rollout_new(obj, 50, &r, &f) != 0) {
		check_fault(&f);
	} else {
		check_id(obj, "release", r.release);
		if (!r.release || r.failure_threshold > 100)
			abort();
		switch (r.kind) {
		case REST_COHORT_PERCENT:
			if (r.percent < 1 || r.percent > 100)
				abort();
			break;
		case REST_COHORT_LIST:
			if (r.device_count < 1 || r.device_count > REST_PARSE_ROLLOUT_DEVICES_MAX)
				abort();
			for (i = 0; i < r.device_count; i++)
				if (!ca_valid_id(r.devices[i]))
					abort();
			break;
		case REST_COHORT_TAG:
			check_whole(obj, "tag", r.tag);
			if (!r.tag || !r.tag[0] || strlen(r.tag) > 64)
				abort();
			break;
		default:
			abort();
		}
	}
	memset(&f, 0, sizeof(f));
	if (rest_parse_rollout_widen(obj, &pct, &f) != 0)
		check_fault(&f);
	else if (pct < 1 || pct > 100)
		abort();
	memset(&f, 0, sizeof(f));
	if (rest_parse_rollout_abort(obj, reason, &f) != 0) {
		check_fault(&f);
	} else {
		if (!memchr(reason, '\0', sizeof(reason)))
			abort();
		for (i = 0; reason[i]; i++)
			if (reason[i] < 0x20 || reason[i] > 0x7e || strchr("\"\\`", reason[i]))
				abort();
	}
}

static void pins(json_t *obj)
{
	struct rest_pins_switch sw = { .threshold = 100 };
	struct rest_fault f = { 0 };

	if (rest_parse_pins_switch(obj, &sw, &f) != 0)
		check_fault(&f);
	else if (sw.threshold < 1 || sw.threshold > 100 || (sw.force != 0 && sw.force != 1) ||
		 (sw.backup != 0 && sw.backup != 1))
		abort();
}

static void body(const uint8_t *b, size_t len)
{
	static const char *const none[] = { NULL };
	struct rest_fault f = { 0 };
	json_t *obj = rest_parse_object(b, len, &f);

	if (!obj) {
		check_fault(&f);
		return;
	}
	if (!json_is_object(obj))
		abort();
	memset(&f, 0, sizeof(f));
	if (rest_parse_known_keys(obj, none, &f) != 0)
		check_fault(&f);
	else if (json_object_size(obj) != 0)
		abort();
	renew_and_enroll(obj);
	devices(obj);
	tokens(obj);
	rollouts(obj);
	pins(obj);
	json_decref(obj);
}

/* The next line of the head (without LF or CR LF), NUL-terminated into line; NULL at the end. */
static const uint8_t *next_line(const uint8_t *p, const uint8_t *end, char *line)
{
	const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
	size_t n = (size_t)((nl ? nl : end) - p);

	if (n >= LINE_MAX_BYTES)
		n = LINE_MAX_BYTES - 1;
	memcpy(line, p, n);
	line[n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[n - 1] = '\0';
	return nl ? nl + 1 : end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[LINE_MAX_BYTES], copy[LINE_MAX_BYTES];
	const uint8_t *p = data, *end = data + size;
	char *target, *query, *sp, *pair, *next;
	size_t n, decoded, pairs = 0, headers = 0;

	/* The request line: the target's path, then its query. */
	p = next_line(p, end, line);
	target = strchr(line, ' ');
	if (target) {
		target++;
		sp = strchr(target, ' ');
		if (sp)
			*sp = '\0';
		query = strchr(target, '?');
		if (query)
			*query++ = '\0';
		snprintf(copy, sizeof(copy), "%s", target);
		n = strlen(copy);
		decoded = rest_parse_unescape(copy);
		if (decoded != strlen(copy) || decoded > n ||
		    (!strchr(target, '%') && strcmp(copy, target) != 0))
			abort();
		route(copy);
		route(target);
		for (pair = query; pair && pairs < QUERY_MAX; pair = next, pairs++) {
			char *eq;

			next = strchr(pair, '&');
			if (next)
				*next++ = '\0';
			eq = strchr(pair, '=');
			if (eq) {
				*eq++ = '\0';
				rest_parse_unescape(eq);
				query_value(eq);
			}
			rest_parse_unescape(pair);
			query_value(pair);
		}
	}
	/* Headers up to the empty line; then the body. */
	while (p < end && headers++ < HEADERS_MAX) {
		char *colon;

		p = next_line(p, end, line);
		if (!line[0])
			break;
		colon = strchr(line, ':');
		if (!colon)
			continue;
		colon++;
		colon += strspn(colon, " \t");
		header(colon);
	}
	header(NULL);
	body(p, (size_t)(end - p));
	return 0;
}
