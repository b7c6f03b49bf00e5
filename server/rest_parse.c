#include "server/rest_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ca/cert.h"

static int fault(struct rest_fault *f, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fault(struct rest_fault *f, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;

	f->status = status;
	f->code = code;
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* --- the request line and headers --------------------------------------------------------------- */

int rest_parse_route(const char *pattern, const char *path, char params[REST_PARSE_PARAMS][REST_PARSE_PARAM_MAX])
{
	size_t np = 0;
	int bad = 0;

	while (*pattern && *path) {
		if (*pattern == '{') {
			const char *end = strchr(pattern, '}');
			size_t n = strcspn(path, "/");

			if (!end)
				return 0;
			if (np < REST_PARSE_PARAMS && n >= 1 && n < REST_PARSE_PARAM_MAX) {
				memcpy(params[np], path, n);
				params[np][n] = '\0';
				if (!ca_valid_id(params[np]))
					bad = 1;
			} else {
				bad = 1;
			}
			np++;
			pattern = end + 1;
			path += n;
			continue;
		}
		if (*pattern != *path)
			return 0;
		pattern++;
		path++;
	}
	if (*pattern || *path)
		return 0;
	return bad ? -1 : 1;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t rest_parse_unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		int hi, lo;

		if (r[0] == '%' && (hi = hex_digit(r[1])) >= 0 && (lo = hex_digit(r[2])) >= 0 && (hi | lo) != 0) {
			*w++ = (char)(hi * 16 + lo);
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

int rest_parse_seconds(const char *v, int64_t *out)
{
	int64_t n = 0;
	size_t i;

	for (i = 0; v[i] && i < 12; i++) {
		if (v[i] < '0' || v[i] > '9')
			break;
		n = n * 10 + (v[i] - '0');
	}
	if (i == 0 || v[i] != '\0' || n > REST_PARSE_SECONDS_MAX)
		return -1;
	*out = n;
	return 0;
}

int rest_parse_limit(const char *v, size_t max, size_t *out)
{
	unsigned long n = 0;
	size_t i;

	if (v[0] == '\0' || strlen(v) > 7)
		return -1;
	for (i = 0; v[i]; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (unsigned long)(v[i] - '0');
	}
	if (n < 1 || n > max)
		return -1;
	*out = n;
	return 0;
}

int rest_parse_audit_cursor(const char *v, int64_t *out)
{
	int64_t n = 0;
	size_t i;

	for (i = 0; v[i] && i < 18; i++) {
		if (v[i] < '0' || v[i] > '9')
			break;
		n = n * 10 + (v[i] - '0');
	}
	if (i == 0 || v[i] != '\0' || n < 1)
		return -1;
	*out = n;
	return 0;
}

int64_t rest_parse_count(const char *text, int64_t max)
{
	int64_t v = 0;
	size_t i, n = strlen(text);

	if (n == 0 || n > 18 || strspn(text, "0123456789") != n)
		return -1;
	for (i = 0; i < n; i++)
		v = v * 10 + (text[i] - '0');
	return v <= max ? v : -1;
}

int rest_parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
	const char *dash;
	char a[24] = "", b[24] = "";
	size_t la, lb;
	int64_t x, y;

	if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	h += 6;
	dash = strchr(h, '-');
	if (!dash)
		return 0;
	la = (size_t)(dash - h);
	lb = strlen(dash + 1);
	if (la >= sizeof(a) || lb >= sizeof(b) || (la == 0 && lb == 0))
		return 0;
	memcpy(a, h, la);
	memcpy(b, dash + 1, lb);
	x = la ? rest_parse_count(a, INT64_MAX / 2) : -1;
	y = lb ? rest_parse_count(b, INT64_MAX / 2) : -1;
	if ((la && x < 0) || (lb && y < 0))
		return 0;
	if (la == 0) { /* the last y bytes */
		if (y == 0 || size == 0)
			return -1;
		*from = (uint64_t)y >= size ? 0 : size - (uint64_t)y;
		*to = size - 1;
		return 1;
	}
	if (lb && y < x)
		return 0;
	if ((uint64_t)x >= size)
		return -1;
	*from = (uint64_t)x;
	*to = lb && (uint64_t)y < size ? (uint64_t)y : size - 1;
	return 1;
}

enum rest_bearer rest_parse_bearer(const char *header, char id[TOKEN_ID_LEN + 1], char hash[TOKEN_HASH_LEN])
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return REST_BEARER_NONE;
	header += 7;
	return token_parse(TOKEN_API, header, strlen(header), id, hash) == HERR_OK ? REST_BEARER_OK :
										    REST_BEARER_BAD;
}

int rest_parse_is_json(const char *type)
{
	size_t n = type ? strcspn(type, "; ") : 0;

	return type && n == strlen("application/json") && strncasecmp(type, "application/json", n) == 0;
}

int rest_parse_is_octet_stream(const char *type)
{
	return type && strncasecmp(type, "application/octet-stream", 24) == 0 && (type[24] == '\0' || type[24] == ';');
}

int rest_parse_body_too_big(const char *cl)
{
	return cl && (strlen(cl) > 9 || strtoul(cl, NULL, 10) > REST_PARSE_BODY_MAX);
}

unsigned rest_parse_upload_length(const char *cl, uint64_t *out)
{
	unsigned long long n;

	if (!cl)
		return 411;
	if (strspn(cl, "0123456789") != strlen(cl) || strlen(cl) > 12)
		return 413;
	n = strtoull(cl, NULL, 10);
	if (n > REST_PARSE_UPLOAD_MAX || n == 0)
		return 413;
	*out = n;
	return 0;
}

/* --- JSON bodies -------------------------------------------------------------------------------- */

json_t *rest_parse_object(const uint8_t *body, size_t len, struct rest_fault *f)
{
	json_error_t err;
	json_t *obj = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &err);

	if (!obj) {
		fault(f, 400, "invalid_json", "the body is not valid JSON: %s (at byte %d)", err.text, err.position);
		return NULL;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		fault(f, 400, "invalid_json", "the body must be a JSON object");
		return NULL;
	}
	return obj;
}

int rest_parse_known_keys(json_t *obj, const char *const *allowed, struct rest_fault *f)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		size_t i;

		(void)v;
		for (i = 0; allowed[i] && strcmp(allowed[i], key) != 0; i++)
			;
		if (!allowed[i])
			return fault(f, 422, "unknown_field", "unknown field '%.64s'", key);
	}
	return 0;
}

/* A JSON string that C can hold as it is: no NUL byte inside (it would cut it short). */
static const char *whole_string(json_t *v)
{
	return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) ? json_string_value(v) :
											   NULL;
}

/* obj[key] as a string: 0 and *out (NULL if absent and optional), or -1 with a 422 fault. */
static int string_field(json_t *obj, const char *key, int required, const char **out, struct rest_fault *f)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v && !required)
		return 0;
	if (!v || !whole_string(v))
		return fault(f, 422, "invalid_field", "'%s' %s", key, v ? "must be a string" : "is required");
	*out = json_string_value(v);
	return 0;
}

/* An id-shaped field (device id, model name): [A-Za-z0-9_-]{1,64}. */
static int id_field(json_t *obj, const char *key, int required, const char **out, struct rest_fault *f)
{
	if (string_field(obj, key, required, out, f) != 0)
		return -1;
	if (*out && !ca_valid_id(*out))
		return fault(f, 422, "invalid_field", "'%s' must match [A-Za-z0-9_-]{1,64}", key);
	return 0;
}

static int valid_tag(const char *t)
{
	size_t n = strlen(t);

	return n >= 1 && n <= REST_PARSE_TAG_LEN_MAX &&
	       strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") == n;
}

int rest_parse_device_new(json_t *body, struct rest_device_new *out, struct rest_fault *f)
{
	static const char *const allowed[] = { "model", "csr", "id", NULL };

	memset(out, 0, sizeof(*out));
	if (rest_parse_known_keys(body, allowed, f) != 0 || id_field(body, "model", 1, &out->model, f) != 0 ||
	    string_field(body, "csr", 1, &out->csr, f) != 0 || id_field(body, "id", 0, &out->id, f) != 0)
		return -1;
	return 0;
}

int rest_parse_device_change(json_t *body, struct rest_device_change *out, struct rest_fault *f)
{
	static const char *const allowed[] = { "tags", "model", NULL };
	json_t *tags, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (rest_parse_known_keys(body, allowed, f) != 0 || id_field(body, "model", 0, &out->model, f) != 0)
		return -1;
	tags = json_object_get(body, "tags");
	if (!tags)
		return 0;
	if (!json_is_array(tags) || json_array_size(tags) > REST_PARSE_TAGS_MAX)
		return fault(f, 422, "invalid_field", "'tags' must be an array of at most %d strings",
			     REST_PARSE_TAGS_MAX);
	json_array_foreach(tags, i, v) {
		const char *t = whole_string(v);

		if (!t || !valid_tag(t))
			return fault(f, 422, "invalid_field", "tags[%zu] must match [A-Za-z0-9_.:-]{1,%d}", i,
				     REST_PARSE_TAG_LEN_MAX);
		out->tags[out->tag_count++] = t;
	}
	out->has_tags = 1;
	return 0;
}

/* An id member of an enrollment-token request: 0 and *out (NULL if absent and optional), or -1. */
static int id_member(json_t *obj, const char *key, int required, const char **out, struct rest_fault *f)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v && !required)
		return 0;
	if (!v)
		return fault(f, 422, "missing_field", "'%s' is required", key);
	if (!whole_string(v) || !ca_valid_id(json_string_value(v)))
		return fault(f, 422, "invalid_field", "'%s' must be a string matching [A-Za-z0-9_-]{1,64}", key);
	*out = json_string_value(v);
	return 0;
}

int rest_parse_enroll_token_new(json_t *body, struct rest_enroll_token_new *out, struct rest_fault *f)
{
	static const char *const allowed[] = { "model", "device_id", "ttl_s", NULL };
	json_t *v;

	memset(out, 0, sizeof(*out));
	out->ttl_s = REST_PARSE_TTL_DEFAULT_S;
	if (rest_parse_known_keys(body, allowed, f) != 0 || id_member(body, "model", 1, &out->model, f) != 0 ||
	    id_member(body, "device_id", 0, &out->device_id, f) != 0)
		return -1;
	v = json_object_get(body, "ttl_s");
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < REST_PARSE_TTL_MIN_S ||
	    json_integer_value(v) > REST_PARSE_TTL_MAX_S)
		return fault(f, 422, "invalid_field", "'ttl_s' must be an integer %d..%d (seconds)",
			     REST_PARSE_TTL_MIN_S, REST_PARSE_TTL_MAX_S);
	out->ttl_s = (int64_t)json_integer_value(v);
	return 0;
}

int rest_parse_enroll(json_t *body, struct rest_enroll_request *out, struct rest_fault *f)
{
	static const char *const allowed[] = { "token", "csr", NULL };
	json_t *tok, *pem;

	memset(out, 0, sizeof(*out));
	if (rest_parse_known_keys(body, allowed, f) != 0)
		return -1;
	tok = json_object_get(body, "token");
	pem = json_object_get(body, "csr");
	if (!json_is_string(tok) || !json_is_string(pem))
		return fault(f, 422, "missing_field", "'token' and 'csr' are required strings");
	out->token = json_string_value(tok);
	out->token_len = json_string_length(tok);
	out->csr = json_string_value(pem);
	out->csr_len = json_string_length(pem);
	return 0;
}

int rest_parse_renew(json_t *body, const char **csr, size_t *csr_len, struct rest_fault *f)
{
	static const char *const allowed[] = { "csr", NULL };
	json_t *v;

	*csr = NULL;
	*csr_len = 0;
	if (rest_parse_known_keys(body, allowed, f) != 0)
		return -1;
	v = json_object_get(body, "csr");
	if (!json_is_string(v))
		return fault(f, 422, "invalid_field", "csr: a PEM certificate request (string) is required");
	*csr = json_string_value(v);
	*csr_len = json_string_length(v);
	return 0;
}

static int percent_value(json_t *v, unsigned *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100)
		return -1;
	*out = (unsigned)json_integer_value(v);
	return 0;
}

int rest_parse_rollout_new(json_t *body, unsigned default_threshold, struct rest_rollout_new *out,
			   struct rest_fault *f)
{
	static const char *const allowed[] = { "release", "percent", "devices", "tag", "failure_threshold", NULL };
	json_t *rel, *pct, *devs, *tag, *thr, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->failure_threshold = default_threshold;
	if (rest_parse_known_keys(body, allowed, f) != 0)
		return -1;
	rel = json_object_get(body, "release");
	pct = json_object_get(body, "percent");
	devs = json_object_get(body, "devices");
	tag = json_object_get(body, "tag");
	thr = json_object_get(body, "failure_threshold");
	if (!whole_string(rel) || !ca_valid_id(json_string_value(rel)))
		return fault(f, 422, "missing_field", "'release' (a release id) is required");
	if ((pct != NULL) + (devs != NULL) + (tag != NULL) != 1)
		return fault(f, 422, "invalid_cohort", "give exactly one of 'percent', 'devices' or 'tag'");
	if (thr && (!json_is_integer(thr) || json_integer_value(thr) < 0 || json_integer_value(thr) > 100))
		return fault(f, 422, "invalid_field", "'failure_threshold' must be an integer percent 0..100");
	if (thr)
		out->failure_threshold = (unsigned)json_integer_value(thr);
	out->release = json_string_value(rel);
	if (pct) {
		if (percent_value(pct, &out->percent) != 0)
			return fault(f, 422, "invalid_field", "'percent' must be an integer 1..100");
		out->kind = REST_COHORT_PERCENT;
	} else if (devs) {
		if (!json_is_array(devs) || json_array_size(devs) == 0 ||
		    json_array_size(devs) > REST_PARSE_ROLLOUT_DEVICES_MAX)
			return fault(f, 422, "invalid_field", "'devices' must be a list of 1..%d device ids",
				     REST_PARSE_ROLLOUT_DEVICES_MAX);
		json_array_foreach(devs, i, v) {
			if (!whole_string(v) || !ca_valid_id(json_string_value(v)))
				return fault(f, 422, "invalid_field", "'devices'[%zu] is not a device id", i);
			out->devices[i] = json_string_value(v);
		}
		out->kind = REST_COHORT_LIST;
		out->device_count = json_array_size(devs);
	} else {
		if (!whole_string(tag) || json_string_length(tag) == 0 || json_string_length(tag) > 64)
			return fault(f, 422, "invalid_field", "'tag' must be a string of 1..64 bytes");
		out->kind = REST_COHORT_TAG;
		out->tag = json_string_value(tag);
	}
	return 0;
}

int rest_parse_rollout_widen(json_t *body, unsigned *percent, struct rest_fault *f)
{
	static const char *const allowed[] = { "percent", NULL };

	*percent = 0;
	if (rest_parse_known_keys(body, allowed, f) != 0)
		return -1;
	if (percent_value(json_object_get(body, "percent"), percent) != 0)
		return fault(f, 422, "invalid_field", "'percent' must be an integer 1..100");
	return 0;
}

int rest_parse_rollout_abort(json_t *body, char reason[REST_PARSE_REASON_MAX + 1], struct rest_fault *f)
{
	static const char *const allowed[] = { "reason", NULL };
	json_t *r;

	if (rest_parse_known_keys(body, allowed, f) != 0)
		return -1;
	r = json_object_get(body, "reason");
	if (!r)
		return 0;
	if (!json_is_string(r) || json_string_length(r) > REST_PARSE_REASON_MAX ||
	    strspn(json_string_value(r), " !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "[]^_abcdefghijklmnopqrstuvwxyz{|}~") != json_string_length(r))
		return fault(f, 422, "invalid_field", "'reason' must be printable text of at most 100 bytes");
	memcpy(reason, json_string_value(r), json_string_length(r) + 1);
	return 0;
}

int rest_parse_pins_switch(json_t *body, struct rest_pins_switch *out, struct rest_fault *f)
{
	static const char *const allowed[] = { "threshold", "force", "to", NULL };
	const char *to;
	json_t *v;

	if (rest_parse_known_keys(body, allowed, f) != 0)
		return -1;
	if ((v = json_object_get(body, "threshold")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100)
			return fault(f, 422, "invalid_field", "threshold: an integer percent 1..100");
		out->threshold = (int64_t)json_integer_value(v);
	}
	if ((v = json_object_get(body, "force")) != NULL) {
		if (!json_is_boolean(v))
			return fault(f, 422, "invalid_field", "force: true or false");
		out->force = json_is_true(v);
	}
	if ((v = json_object_get(body, "to")) != NULL) {
		to = whole_string(v);
		if (!to || (strcmp(to, "next") != 0 && strcmp(to, "backup") != 0))
			return fault(f, 422, "invalid_field", "to: \"next\" or \"backup\"");
		out->backup = strcmp(to, "backup") == 0;
	}
	return 0;
}
