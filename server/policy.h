/* policy: a model's minimization policy, parsed and validated from JSON (schema in
 * schema/policy.schema.json, examples in schema/policies/). A policy is an allowlist of fields;
 * each kept field has a type and transforms (round to a step, clamp to a range, aggregate over a
 * time bucket), and a retention. Pure: parsing takes bytes and returns a policy or a message that
 * names the bad field. */
#ifndef HEARTH_POLICY_H
#define HEARTH_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"

#define POLICY_MAX_FIELDS 64
#define POLICY_FIELD_MAX 128      /* a field path, "a.b.c" */
#define POLICY_MAX_BYTES (64 * 1024)
/* A sensitive field may be kept only if aggregated over at least this, and marked sensitive_ok. */
#define POLICY_SENSITIVE_MIN_BUCKET_S 3600

enum policy_type { POLICY_NUMBER, POLICY_BOOL, POLICY_STRING };
enum policy_agg { POLICY_AGG_NONE, POLICY_AGG_MEAN, POLICY_AGG_MIN, POLICY_AGG_MAX, POLICY_AGG_LAST,
		  POLICY_AGG_COUNT };

struct policy_field {
	char path[POLICY_FIELD_MAX];  /* dotted path into the telemetry object, e.g. "temp" or "env.hum" */
	enum policy_type type;
	double round_step;            /* 0 = no rounding (numbers) */
	int has_clamp;
	double clamp_min, clamp_max;
	enum policy_agg agg;
	uint32_t bucket_s;            /* aggregation bucket; > 0 when agg != NONE */
	uint32_t retention_days;      /* > 0 */
	int sensitive_ok;             /* the operator accepts a coarse sensitive field */
	size_t max_len;               /* strings: longer values are dropped */
};

struct policy {
	unsigned version;             /* the policy format version: 1 */
	uint32_t last_seen_bucket_s;  /* how coarse the stored last-seen time is */
	size_t count;
	struct policy_field fields[POLICY_MAX_FIELDS];
};

/* A field path is 1..8 dotted components, each [A-Za-z0-9_-]{1,POLICY_COMPONENT_MAX}. */
#define POLICY_COMPONENT_MAX 32
int policy_valid_component(const char *s, size_t n);

/* Parse and validate. On failure why names the field and the problem, e.g.
 * "fields.co2_ppm: sensitive (air quality): needs sensitive_ok and a bucket of at least 3600 s". */
enum herr policy_parse(const uint8_t *json, size_t len, struct policy *out, char *why, size_t why_size);

/* The sensitive fields a policy keeps (with sensitive_ok), one per line, for the CLI's warning;
 * returns how many. */
size_t policy_sensitive_kept(const struct policy *p, char *out, size_t size);

#endif
