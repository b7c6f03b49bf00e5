/* minimize: applies a policy to one telemetry payload (JSON) and says what may be kept: only
 * allowlisted, non-sensitive (or sensitive_ok) fields, rounded and clamped, as numbers, booleans
 * or bounded strings. Everything else is counted as dropped, by normalised field name, never by
 * value. Pure over (bytes, policy); the raw payload is not kept anywhere. */
#ifndef HEARTH_MINIMIZE_H
#define HEARTH_MINIMIZE_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "server/policy.h"

#define MINIMIZE_MAX_PAYLOAD (64 * 1024)
#define MINIMIZE_MAX_DEPTH 16      /* deeper nesting is refused, not walked */
#define MINIMIZE_MAX_DROPPED 64    /* distinct dropped names reported per message */

struct minimize_value {
	size_t field;                  /* index into policy->fields */
	enum policy_type type;
	double number;                 /* NUMBER (after round/clamp) and BOOL (0/1) */
	char text[256];                /* STRING */
};

struct minimize_result {
	size_t count;
	struct minimize_value values[POLICY_MAX_FIELDS];
	size_t dropped_count;          /* fields dropped (all, including beyond the list below) */
	size_t dropped_names;
	char dropped[MINIMIZE_MAX_DROPPED][POLICY_FIELD_MAX]; /* normalised dotted names, distinct */
	int dropped_sensitive;         /* how many of the dropped were in the sensitive catalogue */
};

/* HERR_INVALID for a payload that is not a JSON object (non-JSON, truncated, duplicate keys,
 * NaN/Infinity, too deep): nothing is kept and why says what. HERR_NOMEM if memory ran out while
 * parsing. A policy of NULL keeps nothing. */
enum herr minimize_apply(const struct policy *p, const uint8_t *payload, size_t len,
			 struct minimize_result *out, const char **why);

#endif
