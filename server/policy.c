#include "server/policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "server/sensitive.h"

#define PATH_MAX_COMPONENTS 8
#define BUCKET_MIN_S 60
#define BUCKET_MAX_S (86400 * 7)
#define RETENTION_MAX_DAYS 3650
#define STRING_MAX_LEN 255
#define STRING_DEFAULT_LEN 64
#define LAST_SEEN_DEFAULT_S 3600
#define LAST_SEEN_MAX_S 86400
#define DESCRIPTION_MAX 4096
#define SHOW_MAX 64 /* of a name from the policy, in a message */

static const char *const type_names[] = {
	[POLICY_NUMBER] = "number", [POLICY_BOOL] = "bool", [POLICY_STRING] = "string",
};

static const char *const agg_names[] = {
	[POLICY_AGG_NONE] = "none", [POLICY_AGG_MEAN] = "mean", [POLICY_AGG_MIN] = "min",
	[POLICY_AGG_MAX] = "max",   [POLICY_AGG_LAST] = "last", [POLICY_AGG_COUNT] = "count",
};

static const char *const top_keys[] = { "policy", "description", "last_seen_bucket_s", "fields", NULL };
static const char *const field_keys[] = { "type", "round", "clamp", "aggregate", "bucket_s",
					  "retention_days", "max_len", "sensitive_ok", NULL };

struct parse {
	char *why;
	size_t why_size;
	char name[SHOW_MAX + 4]; /* the field being parsed, printable */
};

static enum herr fail(struct parse *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum herr fail(struct parse *ps, const char *fmt, ...)
{
	va_list ap;

	if (ps->why && ps->why_size > 0) {
		va_start(ap, fmt);
		vsnprintf(ps->why, ps->why_size, fmt, ap);
		va_end(ap);
	}
	return HERR_INVALID;
}

/* A name from the policy, safe to print: printable ASCII, at most SHOW_MAX characters. */
static void show(const char *s, char *out, size_t size)
{
	size_t i, n = strlen(s);

	for (i = 0; i < n && i < SHOW_MAX && i + 4 <= size; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (n > SHOW_MAX && i + 4 <= size) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

static int one_of(const char *s, const char *const *names, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (names[i] && strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

static const char *unknown_key(json_t *obj, const char *const *known)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v) {
		for (i = 0; known[i] && strcmp(key, known[i]) != 0; i++)
			;
		if (!known[i])
			return key;
	}
	return NULL;
}

/* An integer lo..hi: 0 and *out set, -1 if v is no such integer. */
static int get_uint(json_t *v, long long lo, long long hi, uint32_t *out)
{
	json_int_t n;

	if (!json_is_integer(v))
		return -1;
	n = json_integer_value(v);
	if (n < lo || n > hi)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

int policy_valid_component(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n > POLICY_COMPONENT_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int valid_path(const char *path)
{
	const char *p = path, *dot;
	size_t parts = 0;

	if (strlen(path) >= POLICY_FIELD_MAX)
		return 0;
	for (;;) {
		dot = strchr(p, '.');
		if (!policy_valid_component(p, dot ? (size_t)(dot - p) : strlen(p)) ||
		    ++parts > PATH_MAX_COMPONENTS)
			return 0;
		if (!dot)
			return 1;
		p = dot + 1;
	}
}

/* The family of the first sensitive component of a dotted path, or SENSITIVE_NONE. */
static enum sensitive_family path_family(const char *path)
{
	const char *p = path, *dot;
	enum sensitive_family f;

	for (;;) {
		dot = strchr(p, '.');
		f = sensitive_classify(p, dot ? (size_t)(dot - p) : strlen(p));
		if (f != SENSITIVE_NONE || !dot)
			return f;
		p = dot + 1;
	}
}

static enum herr parse_field(struct parse *ps, const char *name, json_t *obj, struct policy_field *f)
{
	json_t *type, *round, *clamp, *agg, *bucket, *retention, *max_len, *ok;
	enum sensitive_family fam;
	const char *n = ps->name, *key;
	int i;

	memset(f, 0, sizeof(*f));
	if (!valid_path(name))
		return fail(ps, "fields.%s: a field name is a dotted path of 1..%d parts, each "
			    "[A-Za-z0-9_-]{1,%d}, at most %d characters", n, PATH_MAX_COMPONENTS,
			    POLICY_COMPONENT_MAX, POLICY_FIELD_MAX - 1);
	memcpy(f->path, name, strlen(name) + 1);
	if (!json_is_object(obj))
		return fail(ps, "fields.%s: must be an object", n);
	key = unknown_key(obj, field_keys);
	if (key) {
		char k[SHOW_MAX + 4];

		show(key, k, sizeof(k));
		return fail(ps, "fields.%s.%s: unknown key", n, k);
	}

	type = json_object_get(obj, "type");
	if (!type)
		return fail(ps, "fields.%s.type: required (number, bool or string)", n);
	i = json_is_string(type) ? one_of(json_string_value(type), type_names, 3) : -1;
	if (i < 0)
		return fail(ps, "fields.%s.type: must be number, bool or string", n);
	f->type = (enum policy_type)i;

	round = json_object_get(obj, "round");
	if (round) {
		if (f->type != POLICY_NUMBER)
			return fail(ps, "fields.%s.round: only for numbers", n);
		if (!json_is_number(round) || !(json_number_value(round) > 0) ||
		    !isfinite(json_number_value(round)))
			return fail(ps, "fields.%s.round: must be a positive number", n);
		f->round_step = json_number_value(round);
	}

	clamp = json_object_get(obj, "clamp");
	if (clamp) {
		if (f->type != POLICY_NUMBER)
			return fail(ps, "fields.%s.clamp: only for numbers", n);
		if (!json_is_array(clamp) || json_array_size(clamp) != 2 ||
		    !json_is_number(json_array_get(clamp, 0)) || !json_is_number(json_array_get(clamp, 1)) ||
		    !(json_number_value(json_array_get(clamp, 0)) < json_number_value(json_array_get(clamp, 1))))
			return fail(ps, "fields.%s.clamp: must be [min, max] with min < max", n);
		f->has_clamp = 1;
		f->clamp_min = json_number_value(json_array_get(clamp, 0));
		f->clamp_max = json_number_value(json_array_get(clamp, 1));
	}

	agg = json_object_get(obj, "aggregate");
	f->agg = POLICY_AGG_NONE;
	if (agg) {
		i = json_is_string(agg) ? one_of(json_string_value(agg), agg_names, 6) : -1;
		if (i < 0)
			return fail(ps, "fields.%s.aggregate: must be none, mean, min, max, last or count", n);
		f->agg = (enum policy_agg)i;
		if ((f->agg == POLICY_AGG_MEAN || f->agg == POLICY_AGG_MIN || f->agg == POLICY_AGG_MAX) &&
		    f->type != POLICY_NUMBER)
			return fail(ps, "fields.%s.aggregate: %s is only for numbers", n, agg_names[f->agg]);
	}

	bucket = json_object_get(obj, "bucket_s");
	if (f->agg == POLICY_AGG_NONE) {
		if (bucket)
			return fail(ps, "fields.%s.bucket_s: only with an aggregate", n);
	} else if (!bucket) {
		return fail(ps, "fields.%s.bucket_s: required with aggregate %s", n, agg_names[f->agg]);
	} else if (get_uint(bucket, BUCKET_MIN_S, BUCKET_MAX_S, &f->bucket_s) != 0) {
		return fail(ps, "fields.%s.bucket_s: must be an integer %d..%d", n, BUCKET_MIN_S,
			    BUCKET_MAX_S);
	}

	retention = json_object_get(obj, "retention_days");
	if (!retention)
		return fail(ps, "fields.%s.retention_days: required (1..%d)", n, RETENTION_MAX_DAYS);
	if (get_uint(retention, 1, RETENTION_MAX_DAYS, &f->retention_days) != 0)
		return fail(ps, "fields.%s.retention_days: must be an integer 1..%d", n,
			    RETENTION_MAX_DAYS);

	max_len = json_object_get(obj, "max_len");
	if (max_len) {
		uint32_t m;

		if (f->type != POLICY_STRING)
			return fail(ps, "fields.%s.max_len: only for strings", n);
		if (get_uint(max_len, 1, STRING_MAX_LEN, &m) != 0)
			return fail(ps, "fields.%s.max_len: must be an integer 1..%d", n, STRING_MAX_LEN);
		f->max_len = m;
	} else if (f->type == POLICY_STRING) {
		f->max_len = STRING_DEFAULT_LEN;
	}

	ok = json_object_get(obj, "sensitive_ok");
	if (ok) {
		if (!json_is_boolean(ok))
			return fail(ps, "fields.%s.sensitive_ok: must be true or false", n);
		f->sensitive_ok = json_is_true(ok);
	}

	/* Last, so that a sensitive field's other mistakes are reported first. */
	fam = path_family(f->path);
	if (fam != SENSITIVE_NONE &&
	    (!f->sensitive_ok || f->agg == POLICY_AGG_NONE || f->bucket_s < POLICY_SENSITIVE_MIN_BUCKET_S))
		return fail(ps, "fields.%s: sensitive (%s): needs sensitive_ok and a bucket of at least "
			    "%d s", n, sensitive_family_name(fam), POLICY_SENSITIVE_MIN_BUCKET_S);
	/* sensitive_ok on a field the catalogue does not know declares it sensitive: same rule. */
	if (f->sensitive_ok && (f->agg == POLICY_AGG_NONE || f->bucket_s < POLICY_SENSITIVE_MIN_BUCKET_S))
		return fail(ps, "fields.%s.sensitive_ok: needs an aggregate over a bucket of at least %d s",
			    n, POLICY_SENSITIVE_MIN_BUCKET_S);
	return HERR_OK;
}

static enum herr parse_root(struct parse *ps, json_t *root, struct policy *out)
{
	json_t *v, *fields, *field;
	const char *key;
	enum herr rc;

	if (!json_is_object(root))
		return fail(ps, "policy: must be a JSON object");
	key = unknown_key(root, top_keys);
	if (key) {
		show(key, ps->name, sizeof(ps->name));
		return fail(ps, "%s: unknown key", ps->name);
	}
	v = json_object_get(root, "policy");
	if (!v || !json_is_integer(v) || json_integer_value(v) != 1)
		return fail(ps, "policy: must be 1");
	out->version = 1;

	v = json_object_get(root, "description");
	if (v && (!json_is_string(v) || json_string_length(v) > DESCRIPTION_MAX))
		return fail(ps, "description: must be a string of at most %d bytes", DESCRIPTION_MAX);

	out->last_seen_bucket_s = LAST_SEEN_DEFAULT_S;
	v = json_object_get(root, "last_seen_bucket_s");
	if (v && get_uint(v, BUCKET_MIN_S, LAST_SEEN_MAX_S, &out->last_seen_bucket_s) != 0)
		return fail(ps, "last_seen_bucket_s: must be an integer %d..%d", BUCKET_MIN_S,
			    LAST_SEEN_MAX_S);

	fields = json_object_get(root, "fields");
	if (!fields || !json_is_object(fields))
		return fail(ps, "fields: required, an object of field name to rules");
	if (json_object_size(fields) > POLICY_MAX_FIELDS)
		return fail(ps, "fields: more than %d fields", POLICY_MAX_FIELDS);
	json_object_foreach(fields, key, field) {
		show(key, ps->name, sizeof(ps->name));
		rc = parse_field(ps, key, field, &out->fields[out->count]);
		if (rc != HERR_OK)
			return rc;
		out->count++;
	}
	return HERR_OK;
}

enum herr policy_parse(const uint8_t *json, size_t len, struct policy *out, char *why, size_t why_size)
{
	struct parse ps = { why, why_size, "" };
	json_error_t err;
	json_t *root;
	enum herr rc;

	memset(out, 0, sizeof(*out));
	if (why && why_size > 0)
		why[0] = '\0';
	if (len > POLICY_MAX_BYTES) {
		fail(&ps, "policy: larger than %d bytes", POLICY_MAX_BYTES);
		return HERR_TOOBIG;
	}
	/* jansson refuses duplicate keys (asked), NaN/Infinity, out-of-range numbers, invalid UTF-8,
	 * \u0000 and nesting beyond its own depth limit. */
	root = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		/* jansson quotes the input near the error: keep the message printable. */
		show(err.text, ps.name, sizeof(ps.name));
		return fail(&ps, "policy: not valid JSON: line %d, column %d: %s", err.line, err.column,
			    ps.name);
	}
	rc = parse_root(&ps, root, out);
	json_decref(root);
	if (rc != HERR_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

size_t policy_sensitive_kept(const struct policy *p, char *out, size_t size)
{
	enum sensitive_family fam;
	size_t i, used = 0, count = 0;
	int n;

	if (out && size > 0)
		out[0] = '\0';
	for (i = 0; i < p->count; i++) {
		const struct policy_field *f = &p->fields[i];

		if (!f->sensitive_ok)
			continue;
		fam = path_family(f->path);
		count++;
		if (!out || used >= size)
			continue;
		n = snprintf(out + used, size - used, "  %s (%s): %s per %u s, kept %u days\n", f->path,
			     fam != SENSITIVE_NONE ? sensitive_family_name(fam) : "declared sensitive",
			     agg_names[f->agg], (unsigned)f->bucket_s, (unsigned)f->retention_days);
		if (n > 0)
			used += (size_t)n;
	}
	return count;
}
