/* Fuzz target for server/minimize and server/policy. The first byte picks a policy (the shipped
 * heater examples, the documentation's example, one with nested and string fields, or none) and
 * the rest is a telemetry payload; the whole input is also tried as a policy. Beyond "no crash": a
 * refusal leaves nothing behind; what is kept belongs to a policy field of the right type, is
 * finite, rounded within its clamp, and never a sensitive field without sensitive_ok over an hour;
 * dropped names are distinct, bounded and normalised; an accepted policy obeys its own rules. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/minimize.h"
#include "server/policy.h"
#include "server/sensitive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fields of schema/policies/ (descriptions left out: they are prose). */
static const char *const policy_texts[] = {
	/* smart-heater.json */
	"{\"policy\":1,\"last_seen_bucket_s\":3600,\"fields\":{"
	"\"temperature\":{\"type\":\"number\",\"round\":0.5,\"clamp\":[-40,85],\"aggregate\":\"mean\","
	"\"bucket_s\":3600,\"retention_days\":365},"
	"\"setpoint\":{\"type\":\"number\",\"round\":0.5,\"clamp\":[5,35],\"aggregate\":\"mean\","
	"\"bucket_s\":3600,\"retention_days\":365},"
	"\"humidity\":{\"type\":\"number\",\"round\":5,\"clamp\":[0,100],\"aggregate\":\"mean\","
	"\"bucket_s\":3600,\"retention_days\":365},"
	"\"error_code\":{\"type\":\"string\",\"max_len\":32,\"aggregate\":\"last\",\"bucket_s\":3600,"
	"\"retention_days\":90},"
	"\"firmware\":{\"type\":\"string\",\"max_len\":32,\"aggregate\":\"last\",\"bucket_s\":86400,"
	"\"retention_days\":90}}}",
	/* smart-heater-presence.json */
	"{\"policy\":1,\"last_seen_bucket_s\":3600,\"fields\":{"
	"\"temperature\":{\"type\":\"number\",\"round\":0.5,\"clamp\":[-40,85],\"aggregate\":\"mean\","
	"\"bucket_s\":86400,\"retention_days\":365},"
	"\"setpoint\":{\"type\":\"number\",\"round\":0.5,\"clamp\":[5,35],\"aggregate\":\"mean\","
	"\"bucket_s\":86400,\"sensitive_ok\":true,\"retention_days\":365},"
	"\"humidity\":{\"type\":\"number\",\"round\":5,\"clamp\":[0,100],\"aggregate\":\"mean\","
	"\"bucket_s\":3600,\"retention_days\":365},"
	"\"error_code\":{\"type\":\"string\",\"max_len\":32,\"aggregate\":\"last\",\"bucket_s\":3600,"
	"\"retention_days\":90},"
	"\"firmware\":{\"type\":\"string\",\"max_len\":32,\"aggregate\":\"last\",\"bucket_s\":86400,"
	"\"retention_days\":90}}}",
	/* docs/minimization.md */
	"{\"policy\":1,\"last_seen_bucket_s\":3600,\"fields\":{"
	"\"temp\":{\"type\":\"number\",\"round\":0.5,\"clamp\":[-40,85],\"aggregate\":\"mean\","
	"\"bucket_s\":900,\"retention_days\":365},"
	"\"error_code\":{\"type\":\"string\",\"max_len\":32,\"aggregate\":\"last\",\"bucket_s\":3600,"
	"\"retention_days\":90},"
	"\"co2_ppm\":{\"type\":\"number\",\"aggregate\":\"mean\",\"bucket_s\":3600,\"sensitive_ok\":true,"
	"\"retention_days\":30}}}",
	/* nested paths, bools, a tiny step, no clamp */
	"{\"policy\":1,\"fields\":{"
	"\"env.hum\":{\"type\":\"number\",\"round\":1e-300,\"retention_days\":1},"
	"\"env.deep.a.b\":{\"type\":\"number\",\"round\":3,\"clamp\":[-1,1],\"retention_days\":1},"
	"\"on\":{\"type\":\"bool\",\"aggregate\":\"count\",\"bucket_s\":60,\"retention_days\":1},"
	"\"s\":{\"type\":\"string\",\"max_len\":1,\"retention_days\":1},"
	"\"room.Motion\":{\"type\":\"bool\",\"aggregate\":\"count\",\"bucket_s\":86400,"
	"\"sensitive_ok\":true,\"retention_days\":1}}}",
};
#define POLICY_COUNT (sizeof(policy_texts) / sizeof(policy_texts[0]))

static int is_sensitive(const char *path)
{
	const char *p = path, *dot;

	for (;;) {
		dot = strchr(p, '.');
		if (sensitive_classify(p, dot ? (size_t)(dot - p) : strlen(p)) != SENSITIVE_NONE)
			return 1;
		if (!dot)
			return 0;
		p = dot + 1;
	}
}

static int coarse(const struct policy_field *f)
{
	return f->sensitive_ok && f->agg != POLICY_AGG_NONE &&
	       f->bucket_s >= POLICY_SENSITIVE_MIN_BUCKET_S;
}

static void check_policy(const struct policy *p)
{
	size_t i, j;

	if (p->version != 1 || p->count > POLICY_MAX_FIELDS || p->last_seen_bucket_s < 60 ||
	    p->last_seen_bucket_s > 86400)
		abort();
	for (i = 0; i < p->count; i++) {
		const struct policy_field *f = &p->fields[i];

		if (strnlen(f->path, POLICY_FIELD_MAX) >= POLICY_FIELD_MAX || f->path[0] == '\0')
			abort();
		if (is_sensitive(f->path) && !coarse(f))
			abort();
		if (f->retention_days < 1 || f->retention_days > 3650)
			abort();
		if ((f->agg == POLICY_AGG_NONE) != (f->bucket_s == 0))
			abort();
		if (f->type != POLICY_NUMBER && (f->round_step != 0 || f->has_clamp))
			abort();
		if (f->round_step < 0 || (f->has_clamp && !(f->clamp_min < f->clamp_max)))
			abort();
		if ((f->type == POLICY_STRING) != (f->max_len > 0) || f->max_len > 255)
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(p->fields[j].path, f->path) == 0)
				abort();
	}
}

static void check_result(const struct policy *p, enum herr rc, const struct minimize_result *r,
			 const char *why)
{
	static const struct minimize_result zero;
	size_t i, j;

	if (rc != HERR_OK) {
		if ((rc != HERR_INVALID && rc != HERR_TOOBIG && rc != HERR_NOMEM) || !why || !why[0] ||
		    memcmp(r, &zero, sizeof(zero)) != 0)
			abort();
		return;
	}
	if (why || r->count > (p ? p->count : 0) || r->dropped_names > MINIMIZE_MAX_DROPPED ||
	    r->dropped_names > r->dropped_count || (size_t)r->dropped_sensitive > r->dropped_count ||
	    r->dropped_sensitive < 0)
		abort();
	for (i = 0; i < r->count; i++) {
		const struct minimize_value *v = &r->values[i];
		const struct policy_field *f;

		if (!p || v->field >= p->count)
			abort();
		f = &p->fields[v->field];
		if (v->type != f->type || (is_sensitive(f->path) && !coarse(f)))
			abort();
		for (j = 0; j < i; j++)
			if (r->values[j].field == v->field)
				abort();
		switch (v->type) {
		case POLICY_NUMBER:
			if (!isfinite(v->number))
				abort();
			if (f->has_clamp && (v->number < f->clamp_min || v->number > f->clamp_max))
				abort();
			break;
		case POLICY_BOOL:
			if (v->number != 0 && v->number != 1)
				abort();
			break;
		case POLICY_STRING:
			if (strnlen(v->text, sizeof(v->text)) > f->max_len)
				abort();
			break;
		default:
			abort();
		}
	}
	for (i = 0; i < r->dropped_names; i++) {
		const char *n = r->dropped[i];
		size_t len = strnlen(n, POLICY_FIELD_MAX);

		if (len == 0 || len >= POLICY_FIELD_MAX)
			abort();
		for (j = 0; j < len; j++)
			if (!((n[j] >= 'a' && n[j] <= 'z') || (n[j] >= '0' && n[j] <= '9') || n[j] == '.' ||
			      n[j] == '_'))
				abort();
		for (j = 0; j < i; j++)
			if (strcmp(r->dropped[j], n) == 0)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy policies[POLICY_COUNT], own;
	static struct minimize_result res;
	static int ready;
	const struct policy *p = NULL;
	const char *why;
	char msg[256];
	enum herr rc;
	size_t i;

	if (!ready) {
		for (i = 0; i < POLICY_COUNT; i++) {
			if (policy_parse((const uint8_t *)policy_texts[i], strlen(policy_texts[i]),
					 &policies[i], msg, sizeof(msg)) != HERR_OK)
				abort();
			check_policy(&policies[i]);
		}
		ready = 1;
	}
	if (size < 1)
		return 0;
	if (data[0] % (POLICY_COUNT + 1) < POLICY_COUNT)
		p = &policies[data[0] % (POLICY_COUNT + 1)];
	rc = minimize_apply(p, data + 1, size - 1, &res, &why);
	check_result(p, rc, &res, why);

	/* The input as a policy: refused with a message, or one that keeps its own promises; then
	 * applied to the payload as well. */
	msg[0] = '\0';
	rc = policy_parse(data, size, &own, msg, sizeof(msg));
	if (rc != HERR_OK) {
		static const struct policy zero;

		if ((rc != HERR_INVALID && rc != HERR_TOOBIG) || msg[0] == '\0' ||
		    memcmp(&own, &zero, sizeof(zero)) != 0)
			abort();
		return 0;
	}
	check_policy(&own);
	policy_sensitive_kept(&own, msg, sizeof(msg));
	rc = minimize_apply(&own, data + 1, size - 1, &res, &why);
	check_result(&own, rc, &res, why);
	rc = minimize_apply(&own, data, size, &res, &why);
	check_result(&own, rc, &res, why);
	return 0;
}
