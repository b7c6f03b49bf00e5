#include "server/minimize.h"

#include <math.h>
#include <string.h>

#include <jansson.h>

#include "server/sensitive.h"

/* JSON values (objects, arrays, scalars) a payload may hold; more is refused before parsing, so
 * jansson never allocates a tree larger than this. */
#define MINIMIZE_MAX_NODES 10000

/* The walk over one payload: the current raw path (matched against the policy) and its normalised
 * form (reported when dropped). */
struct walk {
	const struct policy *p;
	struct minimize_result *out;
	size_t nodes;
	char path[POLICY_FIELD_MAX];
	size_t path_len;
	int path_ok;                  /* the path is one a policy field could name */
	char norm[POLICY_FIELD_MAX];
	size_t norm_len;
};

/* Nesting depth and number of values by a scan of the bytes, strings skipped, so that a deep or
 * huge payload is refused before jansson builds anything. Exact for valid JSON; for anything else
 * jansson refuses it after. */
static enum herr prescan(const uint8_t *s, size_t len, const char **why)
{
	size_t i, depth = 0, nodes = 1;
	int in_string = 0;

	for (i = 0; i < len; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = 0;
			continue;
		}
		switch (s[i]) {
		case '"':
			in_string = 1;
			break;
		case '[':
		case '{':
			if (++depth > MINIMIZE_MAX_DEPTH) {
				*why = "nested deeper than 16 levels";
				return HERR_INVALID;
			}
			nodes++;
			break;
		case ']':
		case '}':
			if (depth > 0)
				depth--;
			break;
		case ',':
			nodes++;
			break;
		default:
			break;
		}
		if (nodes > MINIMIZE_MAX_NODES) {
			*why = "more than 10000 JSON values";
			return HERR_TOOBIG;
		}
	}
	return HERR_OK;
}

static const char *json_why(const json_error_t *err)
{
	switch (json_error_code(err)) {
	case json_error_duplicate_key:
		return "not valid JSON: a duplicate key";
	case json_error_numeric_overflow:
		return "not valid JSON: a number out of range";
	case json_error_premature_end_of_input:
		return "not valid JSON: truncated";
	case json_error_invalid_utf8:
		return "not valid JSON: invalid UTF-8";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "not valid JSON: a NUL character";
	case json_error_stack_overflow:
		return "not valid JSON: nested too deep";
	case json_error_out_of_memory:
		return "out of memory";
	default:
		return "not valid JSON (NaN and Infinity are not JSON either)";
	}
}


/* Append key to both paths; returns what to restore with pop(). */
static void push(struct walk *w, const char *key, size_t klen, size_t saved[2])
{
	char norm[SENSITIVE_NAME_MAX];
	size_t n, sep;

	saved[0] = w->path_len;
	saved[1] = w->norm_len;
	sep = w->path_len > 0;
	/* A key that no policy field could name (a '.', odd characters, too long) makes the whole
	 * subtree unmatchable, so "a.b" as one key never passes for {"a": {"b": ...}}. */
	if (w->path_ok && policy_valid_component(key, klen) && w->path_len + sep + klen < sizeof(w->path)) {
		if (sep)
			w->path[w->path_len++] = '.';
		memcpy(w->path + w->path_len, key, klen);
		w->path_len += klen;
		w->path[w->path_len] = '\0';
	} else {
		w->path_ok = 0;
	}
	n = sensitive_normalise(key, klen, norm);
	if (n == 0) {
		norm[0] = '_'; /* nothing left of the name: still a visible component */
		n = 1;
	}
	sep = w->norm_len > 0;
	if (w->norm_len + sep < sizeof(w->norm) - 1) {
		if (sep)
			w->norm[w->norm_len++] = '.';
		if (n > sizeof(w->norm) - 1 - w->norm_len)
			n = sizeof(w->norm) - 1 - w->norm_len; /* cut; the count is still exact */
		memcpy(w->norm + w->norm_len, norm, n);
		w->norm_len += n;
	}
	w->norm[w->norm_len] = '\0';
}

static void pop(struct walk *w, const size_t saved[2], int path_ok)
{
	w->path_len = saved[0];
	w->path[w->path_len] = '\0';
	w->norm_len = saved[1];
	w->norm[w->norm_len] = '\0';
	w->path_ok = path_ok;
}

static void drop(struct walk *w, int sensitive)
{
	struct minimize_result *out = w->out;
	size_t i;

	out->dropped_count++;
	if (sensitive)
		out->dropped_sensitive++;
	for (i = 0; i < out->dropped_names; i++)
		if (strcmp(out->dropped[i], w->norm) == 0)
			return;
	if (out->dropped_names < MINIMIZE_MAX_DROPPED)
		memcpy(out->dropped[out->dropped_names++], w->norm, w->norm_len + 1);
}

/* Whether anything inside an array (which is dropped whole) has a sensitive name: only for the
 * count of sensitive drops. Depth and size are already bounded by prescan(). */
static int has_sensitive_key(json_t *v, unsigned depth)
{
	const char *key;
	json_t *child;
	size_t i;

	if (depth > MINIMIZE_MAX_DEPTH)
		return 0;
	if (json_is_object(v)) {
		json_object_foreach(v, key, child) {
			if (sensitive_classify(key, strlen(key)) != SENSITIVE_NONE ||
			    has_sensitive_key(child, depth + 1))
				return 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
			if (has_sensitive_key(child, depth + 1))
				return 1;
	}
	return 0;
}

static const struct policy_field *find_field(const struct policy *p, const char *path, size_t *index)
{
	size_t i;

	if (!p)
		return NULL;
	for (i = 0; i < p->count; i++) {
		if (strcmp(p->fields[i].path, path) == 0) {
			*index = i;
			return &p->fields[i];
		}
	}
	return NULL;
}

/* round() without libm, for |q| < 2^53: halves go away from zero. q - t is exact there, so
 * 0.49999999999999994 stays 0 (q + 0.5 would make it 1). */
static double round_half_away(double q)
{
	double t = (double)(int64_t)q;

	if (q - t >= 0.5)
		t += 1;
	else if (q - t <= -0.5)
		t -= 1;
	return t;
}

/* Round to the nearest multiple of step, then clamp. 0 and *v set, or -1 to drop. */
static int transform(const struct policy_field *f, double *v)
{
	double x = *v, q;

	if (!isfinite(x))
		return -1;
	if (f->round_step > 0) {
		q = x / f->round_step;
		/* Beyond 2^53 every double is already an integer multiple, and an infinite quotient
		 * (a tiny step) cannot be rounded: keep x as it is. */
		if (isfinite(q) && fabs(q) < 9007199254740992.0)
			x = round_half_away(q) * f->round_step;
		if (!isfinite(x))
			return -1;
	}
	if (f->has_clamp) {
		if (x < f->clamp_min)
			x = f->clamp_min;
		if (x > f->clamp_max)
			x = f->clamp_max;
	}
	*v = x;
	return 0;
}

/* Keep a scalar at w->path if the policy allows it: 0 if kept, -1 to drop. */
static int keep(struct walk *w, json_t *v, int sensitive)
{
	struct minimize_result *out = w->out;
	const struct policy_field *f;
	struct minimize_value *val;
	size_t index = 0;
	double x;

	if (!w->path_ok || !(f = find_field(w->p, w->path, &index)))
		return -1;
	/* The parser refuses these; a policy built some other way gets the same rule here. */
	if (sensitive && (!f->sensitive_ok || f->agg == POLICY_AGG_NONE ||
			  f->bucket_s < POLICY_SENSITIVE_MIN_BUCKET_S))
		return -1;
	if (out->count >= POLICY_MAX_FIELDS)
		return -1;
	val = &out->values[out->count];
	switch (f->type) {
	case POLICY_NUMBER:
		if (!json_is_number(v))
			return -1; /* "21.5" is not 21.5: a device that sends strings is told so */
		x = json_number_value(v);
		if (transform(f, &x) != 0)
			return -1;
		val->number = x;
		break;
	case POLICY_BOOL:
		if (!json_is_boolean(v))
			return -1;
		val->number = json_is_true(v) ? 1 : 0;
		break;
	case POLICY_STRING:
		if (!json_is_string(v) || json_string_length(v) > f->max_len ||
		    json_string_length(v) >= sizeof(val->text))
			return -1;
		memcpy(val->text, json_string_value(v), json_string_length(v) + 1);
		break;
	default:
		return -1;
	}
	val->field = index;
	val->type = f->type;
	out->count++;
	return 0;
}

static enum herr walk_object(struct walk *w, json_t *obj, unsigned depth, int sensitive,
			     const char **why)
{
	const char *key;
	json_t *v;
	size_t saved[2];
	int path_ok, sens;
	enum herr rc;

	json_object_foreach(obj, key, v) {
		if (++w->nodes > MINIMIZE_MAX_NODES) {
			*why = "more than 10000 JSON values";
			return HERR_TOOBIG;
		}
		path_ok = w->path_ok;
		push(w, key, strlen(key), saved);
		sens = sensitive || sensitive_classify(key, strlen(key)) != SENSITIVE_NONE;
		if (json_is_object(v) && json_object_size(v) > 0) {
			if (depth + 1 > MINIMIZE_MAX_DEPTH) {
				*why = "nested deeper than 16 levels";
				return HERR_INVALID;
			}
			rc = walk_object(w, v, depth + 1, sens, why);
			if (rc != HERR_OK)
				return rc;
		} else if (json_is_array(v)) {
			/* Never kept nor walked for values: one drop under the array's name. */
			drop(w, sens || has_sensitive_key(v, depth + 1));
		} else if (keep(w, v, sens) != 0) {
			drop(w, sens); /* including null and {} */
		}
		pop(w, saved, path_ok);
	}
	return HERR_OK;
}

enum herr minimize_apply(const struct policy *p, const uint8_t *payload, size_t len,
			 struct minimize_result *out, const char **why)
{
	static const char *unused;
	struct walk w;
	json_error_t err;
	json_t *root = NULL;
	enum herr rc;

	if (!why)
		why = &unused;
	*why = NULL;
	memset(out, 0, sizeof(*out));
	if (len > MINIMIZE_MAX_PAYLOAD) {
		*why = "larger than 65536 bytes";
		return HERR_TOOBIG;
	}
	rc = prescan(payload, len, why);
	if (rc != HERR_OK)
		return rc;
	/* Every number is a double (an integer too large for int64 is not an error); duplicate keys,
	 * NaN/Infinity, numbers beyond a double's range, bad UTF-8 and \u0000 are refused. */
	root = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL |
			  JSON_DECODE_ANY, &err);
	if (!root) {
		*why = json_why(&err);
		/* Out of memory is the server's trouble, not the payload's: it must not be dropped as invalid. */
		return json_error_code(&err) == json_error_out_of_memory ? HERR_NOMEM : HERR_INVALID;
	}
	if (!json_is_object(root)) {
		*why = "not a JSON object";
		rc = HERR_INVALID;
		goto out;
	}
	memset(&w, 0, sizeof(w));
	w.p = p;
	w.out = out;
	w.path_ok = 1;
	rc = walk_object(&w, root, 1, 0, why);
out:
	json_decref(root);
	if (rc != HERR_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}
