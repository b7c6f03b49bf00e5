/* hadisc: Home Assistant discovery configs (see hadisc.h). */
#include "server/hadisc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define ID_MAX 64
#define PART_MAX 32
#define PARTS_MAX 8
#define WORDS_MAX 16
#define WORD_MAX 24
#define TOPIC_MAX 512

static int safe_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
	       ch == '-';
}

int hadisc_id_ok(const char *id)
{
	size_t n = 0;

	for (; id[n]; n++)
		if (!safe_char(id[n]) || n >= ID_MAX)
			return 0;
	return n > 0;
}

int hadisc_path_ok(const char *path)
{
	size_t part = 0, parts = 1, i;

	for (i = 0; path[i]; i++) {
		if (path[i] == '.') {
			if (part == 0 || ++parts > PARTS_MAX)
				return 0;
			part = 0;
		} else if (!safe_char(path[i]) || ++part > PART_MAX) {
			return 0;
		}
	}
	return part > 0;
}

/* --- classes ----------------------------------------------------------------------------------- */

/* The words of a name: lower-cased runs of letters and digits, split at any other byte and where a
 * lower-case letter or digit is followed by an upper-case one (camelCase). */
struct words {
	char w[WORDS_MAX][WORD_MAX];
	size_t n;
};

static void split_words(const char *name, struct words *out)
{
	size_t len = 0, i;

	out->n = 0;
	for (i = 0;; i++) {
		char ch = name[i];
		int alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
		int hump = i > 0 && ch >= 'A' && ch <= 'Z' &&
			   ((name[i - 1] >= 'a' && name[i - 1] <= 'z') || (name[i - 1] >= '0' && name[i - 1] <= '9'));

		if ((!alnum || hump) && len > 0) {
			out->w[out->n][len] = '\0';
			if (++out->n == WORDS_MAX)
				return;
			len = 0;
		}
		if (!ch)
			return;
		if (alnum && len + 1 < WORD_MAX)
			out->w[out->n][len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
	}
}

/* 1 if one of the words is one of list ("a|b|c"). */
static int has_word(const struct words *w, const char *list)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		const char *p = list;
		size_t n = strlen(w->w[i]);

		while (*p) {
			size_t m = strcspn(p, "|");

			if (m == n && memcmp(p, w->w[i], n) == 0)
				return 1;
			p += m + (p[m] == '|');
		}
	}
	return 0;
}

/* First match wins: "current_temperature" is a temperature, "energy_total_kwh" energy (not
 * power), "battery_v" a voltage (the voltage row comes before the battery row). */
static const struct {
	const char *words;
	const char *device_class, *unit;
	const char *also;          /* with one of these words as well: this unit instead */
	const char *also_unit;
} classes[] = {
	{ "temperature|temp|tmp|setpoint", "temperature", "°C", "f|fahrenheit", "°F" },
	{ "humidity|hum|rh", "humidity", "%", NULL, NULL },
	{ "pressure|hpa", "pressure", "hPa", "kpa", "kPa" },
	{ "voltage|volt|volts|v|mv", "voltage", "V", "mv", "mV" },
	{ "battery|batt", "battery", "%", NULL, NULL },
	{ "current|amps|ampere|a|ma", "current", "A", "ma", "mA" },
	{ "energy|kwh|wh", "energy", "kWh", "wh", "Wh" },
	{ "power|watts|watt|w|kw", "power", "W", "kw", "kW" },
	{ "co2", "carbon_dioxide", "ppm", NULL, NULL },
	{ "illuminance|lux|lx", "illuminance", "lx", NULL, NULL },
	{ "rssi|dbm", "signal_strength", "dBm", NULL, NULL },
	{ "frequency|hz", "frequency", "Hz", NULL, NULL },
};

void hadisc_classify(const struct policy_field *f, struct hadisc_class *out)
{
	const char *last = strrchr(f->path, '.');
	struct words w;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (f->agg == POLICY_AGG_COUNT) {
		out->state_class = "measurement"; /* how many values the bucket saw */
		return;
	}
	if (f->type != POLICY_NUMBER)
		return;
	out->state_class = "measurement";
	split_words(last ? last + 1 : f->path, &w);
	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (!has_word(&w, classes[i].words))
			continue;
		out->device_class = classes[i].device_class;
		out->unit = classes[i].also && has_word(&w, classes[i].also) ? classes[i].also_unit
									   : classes[i].unit;
		if (strcmp(out->device_class, "energy") == 0) {
			/* A meter reading grows; a mean or minimum of one is no energy figure. */
			if (f->agg == POLICY_AGG_LAST || f->agg == POLICY_AGG_MAX || f->agg == POLICY_AGG_NONE)
				out->state_class = "total_increasing";
			else
				out->device_class = NULL;
		}
		return;
	}
}

/* --- configs ----------------------------------------------------------------------------------- */

static void object_id(const char *path, char *buf)
{
	size_t i;

	for (i = 0; path[i]; i++)
		buf[i] = path[i] == '.' ? '_' : path[i];
	buf[i] = '\0';
}

enum herr hadisc_topic(const struct hadisc_topics *t, const char *id, const char *path, char *buf,
		       size_t size)
{
	char obj[POLICY_FIELD_MAX];
	int n;

	if (!hadisc_id_ok(id) || !hadisc_path_ok(path))
		return HERR_INVALID;
	object_id(path, obj);
	n = snprintf(buf, size, "%ssensor/hearth_%s/%s/config", t->ha_prefix, id, obj);
	return n >= 0 && (size_t)n < size ? HERR_OK : HERR_TOOBIG;
}

enum herr hadisc_config(const struct hadisc_topics *t, const struct hadisc_device *d,
			const struct policy_field *f, char **json)
{
	char unique[ID_MAX + POLICY_FIELD_MAX + 16], ident[ID_MAX + 16], state[TOPIC_MAX],
		avail[TOPIC_MAX], tmpl[4 * POLICY_FIELD_MAX + 128];
	struct hadisc_class cls;
	json_t *obj = NULL, *dev = NULL;
	enum herr rc = HERR_NOMEM;

	*json = NULL;
	if (!hadisc_id_ok(d->id) || !hadisc_path_ok(f->path))
		return HERR_INVALID;
	/* The id holds no '.', so "hearth.<id>.<path>" names one device's one field. */
	snprintf(unique, sizeof(unique), "hearth.%s.%s", d->id, f->path);
	snprintf(ident, sizeof(ident), "hearth_%s", d->id);
	if ((size_t)snprintf(state, sizeof(state), "%s%s/telemetry", t->prefix, d->id) >= sizeof(state) ||
	    (size_t)snprintf(avail, sizeof(avail), "%savailability", t->prefix) >= sizeof(avail))
		return HERR_TOOBIG;
	/* The path is [A-Za-z0-9_.-]: safe inside single quotes. */
	snprintf(tmpl, sizeof(tmpl),
		 "{{ value_json['values']['%s']['value'] if '%s' in value_json['values'] else this.state }}",
		 f->path, f->path);
	hadisc_classify(f, &cls);
	dev = json_pack("{s:[s], s:s, s:s, s:s}", "identifiers", ident, "name", d->id, "model",
			d->model ? d->model : "", "manufacturer", "hearth");
	if (!dev)
		goto out;
	if (d->sw_version && d->sw_version[0] &&
	    json_object_set_new(dev, "sw_version", json_string(d->sw_version)) != 0)
		goto out;
	obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "name", f->path, "unique_id", unique, "state_topic",
			state, "value_template", tmpl, "availability_topic", avail, "device", dev);
	if (!obj)
		goto out;
	if ((cls.device_class && json_object_set_new(obj, "device_class", json_string(cls.device_class)) != 0) ||
	    (cls.unit && json_object_set_new(obj, "unit_of_measurement", json_string(cls.unit)) != 0) ||
	    (cls.state_class && json_object_set_new(obj, "state_class", json_string(cls.state_class)) != 0))
		goto out;
	*json = json_dumps(obj, JSON_COMPACT);
	rc = *json ? HERR_OK : HERR_NOMEM;
out:
	json_decref(dev);
	json_decref(obj);
	return rc;
}

enum herr hadisc_configs(const struct hadisc_topics *t, const struct hadisc_device *d,
			 const struct policy *p, hadisc_fn fn, void *ctx, size_t *skipped)
{
	char topics[POLICY_MAX_FIELDS][POLICY_FIELD_MAX], topic[TOPIC_MAX], *json;
	size_t i, j, used = 0, skip = 0;
	enum herr rc = HERR_OK;

	if (skipped)
		*skipped = 0;
	if (!hadisc_id_ok(d->id))
		return HERR_INVALID;
	for (i = 0; i < p->count && i < POLICY_MAX_FIELDS; i++) {
		const struct policy_field *f = &p->fields[i];
		char obj[POLICY_FIELD_MAX];

		if (!hadisc_path_ok(f->path)) {
			skip++;
			continue;
		}
		object_id(f->path, obj);
		for (j = 0; j < used && strcmp(topics[j], obj) != 0; j++)
			;
		if (j < used) {
			skip++;
			continue;
		}
		memcpy(topics[used++], obj, strlen(obj) + 1);
		rc = hadisc_topic(t, d->id, f->path, topic, sizeof(topic));
		if (rc == HERR_OK)
			rc = hadisc_config(t, d, f, &json);
		if (rc == HERR_TOOBIG || rc == HERR_INVALID) {
			skip++;
			rc = HERR_OK;
			continue;
		}
		if (rc != HERR_OK)
			break;
		j = (size_t)fn(ctx, topic, json);
		free(json);
		if (j != 0)
			break;
	}
	if (skipped)
		*skipped = skip;
	return rc;
}
