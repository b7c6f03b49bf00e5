/* hadisc: Home Assistant MQTT discovery for the bridge (bridge.h). From a device, its model's
 * policy and the bridge's topics, the retained config messages that make each field the policy
 * keeps a Home Assistant sensor, with a unit and device class where the field's name says one
 * (temperature °C, humidity %, power W, energy kWh, ...). Pure: no I/O, no clock.
 *
 *   topic:   <ha_prefix>sensor/hearth_<id>/<field, '.' as '_'>/config
 *   payload: {"name":"temperature","unique_id":"hearth.<id>.temperature",
 *             "state_topic":"<prefix><id>/telemetry","value_template":"...",
 *             "availability_topic":"<prefix>availability",
 *             "device":{"identifiers":["hearth_<id>"],"name":"<id>","model":"<model>",
 *                       "manufacturer":"hearth"},
 *             "device_class":"temperature","unit_of_measurement":"°C","state_class":"measurement"}
 *
 * Only fields a policy keeps get a config, so a field the policy drops (every sensitive field it
 * does not coarsen) never appears. A record holds only the fields of one bucket size, so the
 * template keeps the sensor's state when a record does not hold its field. Ids and field names
 * go into topics and templates only when they are made of [A-Za-z0-9_-] (and '.' between a
 * path's parts): nothing can break out of the template's quotes or add a topic level. */
#ifndef HEARTH_HADISC_H
#define HEARTH_HADISC_H

#include <stddef.h>

#include "common/herr.h"
#include "server/policy.h"

/* The topics the configs point at. */
struct hadisc_topics {
	const char *ha_prefix;     /* Home Assistant's discovery prefix, ending in '/' */
	const char *prefix;        /* the bridge's: records on <prefix><id>/telemetry */
};

struct hadisc_device {
	const char *id, *model;
	const char *sw_version;    /* the firmware it reported; NULL or "" if none */
};

/* What Home Assistant is told a field is; NULL members are left out. */
struct hadisc_class {
	const char *device_class, *unit, *state_class;
};

/* The class of a kept field, from its name (its last part) and type: a small table. Numbers and
 * counts are "measurement"s (a cumulative energy figure kept as last or max: "total_increasing");
 * strings and booleans have no class. */
void hadisc_classify(const struct policy_field *f, struct hadisc_class *out);

/* 1 if id is [A-Za-z0-9_-]{1,64}; 1 if path is 1..8 such parts ({1,32}) joined by '.'. */
int hadisc_id_ok(const char *id);
int hadisc_path_ok(const char *path);

/* The config topic of field path of device id into buf. HERR_INVALID if either is not safe,
 * HERR_TOOBIG if it does not fit. */
enum herr hadisc_topic(const struct hadisc_topics *t, const char *id, const char *path, char *buf,
		       size_t size);

/* The config JSON of one field (a new string, the caller frees it). HERR_INVALID if the id or
 * the field's path is not safe. */
enum herr hadisc_config(const struct hadisc_topics *t, const struct hadisc_device *d,
			const struct policy_field *f, char **json);

/* Every config of a device, fn(ctx, topic, json) in the policy's order; a non-zero return stops
 * (and is no error). Fields whose path is not safe, or whose topic repeats an earlier field's
 * ("a.b" and "a_b"), are skipped and counted in *skipped (may be NULL). HERR_INVALID if the id
 * is not safe, HERR_NOMEM. */
typedef int (*hadisc_fn)(void *ctx, const char *topic, const char *json);
enum herr hadisc_configs(const struct hadisc_topics *t, const struct hadisc_device *d,
			 const struct policy *p, hadisc_fn fn, void *ctx, size_t *skipped);

#endif
