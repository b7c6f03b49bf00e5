#include "server/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"

/* Not a setting (yet): what may wait to be sent to one connection before it counts as too slow. */
#define CONFIG_MAX_OUTPUT (4 * 1024 * 1024)

#define ENV_PREFIX "HEARTH_"
#define NAME_MAX_LEN 64 /* a key, a flag or a variable name, with its NUL */

enum setting_type { TYPE_STRING, TYPE_UNSIGNED, TYPE_ENUM };
/* The C type of the field a value lands in. */
enum setting_store { STORE_SIZE, STORE_UINT, STORE_INT, STORE_STRING };

struct setting {
	const char *key;
	const char *alias;            /* an older flag still accepted, or NULL */
	const char *arg;              /* the flag's value in --help */
	const char *help;             /* one line */
	enum setting_type type;
	enum setting_store store;
	size_t offset;                /* of the field in struct config */
	unsigned min, max;            /* TYPE_UNSIGNED */
	int auto_ok;                  /* TYPE_UNSIGNED into an int: "auto" is -1 */
	int empty_ok;                 /* TYPE_STRING: "" is a value (unset), written as `key =` */
	const char *const *names;     /* TYPE_ENUM: value i is names[i]; NULL-terminated */
	const char *def;              /* the default, written as in the file */
	int runtime;                  /* a SIGHUP may change it */
	const char *(*check)(const char *value); /* TYPE_STRING: NULL if fine, else why not */
	void (*apply)(const struct config *c);   /* makes it act beyond ep, if it does */
};

static const char *const log_levels[] = { "error", "warning", "info", "debug", NULL };
static const char *const no_yes[] = { "no", "yes", NULL };

static const char *check_host_port(const char *v);
static const char *check_api(const char *v);
static const char *check_host(const char *v);
static const char *check_abs_path(const char *v);
static const char *check_client_id(const char *v);
static const char *check_topic_prefix(const char *v);
static const char *check_records(const char *v);
static void apply_log_level(const struct config *c);

#define LIM(field) offsetof(struct config, ep.lim.field)
#define BRIDGE(field) offsetof(struct config, bridge.field)

_Static_assert(BRIDGE_TEXT_MAX == CONFIG_MAX_VALUE, "bridge text settings are config strings");

static const struct setting settings[CONFIG_COUNT] = {
	[CONFIG_MQTT] = {
		"mqtt", NULL, "HOST:PORT",
		"where devices connect ([::1]:8883 for IPv6; port 0: any free one, logged)",
		TYPE_STRING, STORE_STRING, offsetof(struct config, mqtt), 0, 0, 0, 0, NULL,
		ENDPOINT_DEFAULT_MQTT, 0, check_host_port, NULL },
	[CONFIG_MAX_PACKET] = {
		"max_packet", NULL, "BYTES", "largest MQTT packet accepted, in bytes",
		TYPE_UNSIGNED, STORE_SIZE, LIM(max_packet), 16, 256 * 1024 * 1024, 0, 0, NULL,
		"262144", 1, NULL, NULL },
	[CONFIG_MAX_CONNECTIONS] = {
		"max_connections", NULL, "N", "device connections at once; more are refused",
		TYPE_UNSIGNED, STORE_SIZE, LIM(max_connections), 1, 1000000, 0, 0, NULL,
		"20000", 1, NULL, NULL },
	[CONFIG_MAX_CONNECTIONS_PER_ADDRESS] = {
		"max_connections_per_address", NULL, "N",
		"connections from one IPv4 address or IPv6 /64, handshakes included; more are refused, 0: no limit",
		TYPE_UNSIGNED, STORE_SIZE, LIM(max_connections_per_address), 0, 1000000, 0, 0, NULL,
		"1000", 1, NULL, NULL },
	[CONFIG_MAX_HANDSHAKES_PER_ADDRESS] = {
		"max_handshakes_per_address", NULL, "N",
		"unfinished TLS handshakes from one address; more are refused, 0: no limit",
		TYPE_UNSIGNED, STORE_SIZE, LIM(max_handshakes_per_address), 0, 1000000, 0, 0, NULL,
		"100", 1, NULL, NULL },
	[CONFIG_MAX_INFLIGHT] = {
		"max_inflight", NULL, "N", "QoS 1 messages to a device awaiting its PUBACK",
		TYPE_UNSIGNED, STORE_SIZE, LIM(max_inflight), 1, 65535, 0, 0, NULL,
		"32", 1, NULL, NULL },
	[CONFIG_MAX_SUBSCRIPTIONS] = {
		"max_subscriptions", NULL, "N", "topic filters per session",
		TYPE_UNSIGNED, STORE_SIZE, LIM(max_subscriptions), 1, 10000, 0, 0, NULL,
		"32", 1, NULL, NULL },
	[CONFIG_MAX_QUEUED] = {
		"max_queued", NULL, "N", "QoS 1 messages kept for an offline session",
		TYPE_UNSIGNED, STORE_SIZE, LIM(max_queued), 0, 1000000, 0, 0, NULL,
		"1000", 1, NULL, NULL },
	[CONFIG_HANDSHAKE_TIMEOUT_MS] = {
		"handshake_timeout_ms", "--handshake-timeout", "MS",
		"time a new connection has to complete its TLS handshake",
		TYPE_UNSIGNED, STORE_UINT, LIM(handshake_timeout_ms), 100, 600000, 0, 0, NULL,
		"10000", 1, NULL, NULL },
	[CONFIG_CONNECT_TIMEOUT_MS] = {
		"connect_timeout_ms", "--connect-timeout", "MS",
		"time from the end of the handshake to the device's CONNECT",
		TYPE_UNSIGNED, STORE_UINT, LIM(connect_timeout_ms), 100, 600000, 0, 0, NULL,
		"10000", 1, NULL, NULL },
	[CONFIG_HANDSHAKE_THREADS] = {
		"handshake_threads", NULL, "N",
		"TLS handshake threads (0: on the event loop; auto: one per core, at most 8; none with one core)",
		TYPE_UNSIGNED, STORE_INT, LIM(handshake_threads), 0, 64, 1, 0, NULL,
		"auto", 0, NULL, NULL },
	[CONFIG_LOG_LEVEL] = {
		"log_level", NULL, "LEVEL", "the least important messages logged",
		TYPE_ENUM, STORE_INT, offsetof(struct config, log_level), 0, 0, 0, 0, log_levels,
		"info", 1, NULL, apply_log_level },
	[CONFIG_API] = {
		"api", NULL, "HOST:PORT",
		"where the REST API listens (HTTPS; off: no API)",
		TYPE_STRING, STORE_STRING, offsetof(struct config, api), 0, 0, 0, 0, NULL,
		"127.0.0.1:8443", 0, check_api, NULL },
	[CONFIG_API_PLAIN] = {
		"api_plain", NULL, "no|yes",
		"serve the REST API as plain HTTP: refused unless api is a loopback address",
		TYPE_ENUM, STORE_INT, offsetof(struct config, api_plain), 0, 0, 0, 0, no_yes,
		"no", 0, NULL, NULL },
	[CONFIG_BRIDGE_HOST] = {
		"bridge_host", NULL, "HOST",
		"the MQTT broker the bridge publishes minimized records to (empty: no bridge)",
		TYPE_STRING, STORE_STRING, BRIDGE(host), 0, 0, 0, 1, NULL,
		"", 0, check_host, NULL },
	[CONFIG_BRIDGE_PORT] = {
		"bridge_port", NULL, "PORT", "the broker's port (auto: 8883 with TLS, 1883 without)",
		TYPE_UNSIGNED, STORE_INT, BRIDGE(port), 1, 65535, 1, 0, NULL,
		"auto", 0, NULL, NULL },
	[CONFIG_BRIDGE_TLS] = {
		"bridge_tls", NULL, "yes|no",
		"TLS to the broker; its certificate and host name are always verified",
		TYPE_ENUM, STORE_INT, BRIDGE(tls), 0, 0, 0, 0, no_yes,
		"yes", 0, NULL, NULL },
	[CONFIG_BRIDGE_CAFILE] = {
		"bridge_cafile", NULL, "FILE",
		"PEM CA certificates the broker's certificate must chain to (empty: the system's)",
		TYPE_STRING, STORE_STRING, BRIDGE(cafile), 0, 0, 0, 1, NULL,
		"", 0, check_abs_path, NULL },
	[CONFIG_BRIDGE_CERTFILE] = {
		"bridge_certfile", NULL, "FILE",
		"a client certificate (PEM) for brokers that require one; needs bridge_keyfile",
		TYPE_STRING, STORE_STRING, BRIDGE(certfile), 0, 0, 0, 1, NULL,
		"", 0, check_abs_path, NULL },
	[CONFIG_BRIDGE_KEYFILE] = {
		"bridge_keyfile", NULL, "FILE", "its private key (PEM, unencrypted, 0600)",
		TYPE_STRING, STORE_STRING, BRIDGE(keyfile), 0, 0, 0, 1, NULL,
		"", 0, check_abs_path, NULL },
	[CONFIG_BRIDGE_PASSWORD_FILE] = {
		"bridge_password_file", NULL, "FILE",
		"a 0600 file holding the broker username and password, one line each (empty: none)",
		TYPE_STRING, STORE_STRING, BRIDGE(password_file), 0, 0, 0, 1, NULL,
		"", 0, check_abs_path, NULL },
	[CONFIG_BRIDGE_CLIENT_ID] = {
		"bridge_client_id", NULL, "ID", "the bridge's MQTT client id (empty: hearth-<hostname>)",
		TYPE_STRING, STORE_STRING, BRIDGE(client_id), 0, 0, 0, 1, NULL,
		"", 0, check_client_id, NULL },
	[CONFIG_BRIDGE_PREFIX] = {
		"bridge_prefix", NULL, "PREFIX",
		"topic prefix: records on PREFIX<device>/telemetry, status on PREFIX<device>/status",
		TYPE_STRING, STORE_STRING, BRIDGE(prefix), 0, 0, 0, 0, NULL,
		"hearth/", 0, check_topic_prefix, NULL },
	[CONFIG_BRIDGE_QOS] = {
		"bridge_qos", NULL, "0|1",
		"QoS of the records (1: a record leaves the outbox when the broker acknowledged it)",
		TYPE_UNSIGNED, STORE_UINT, BRIDGE(qos), 0, 1, 0, 0, NULL,
		"1", 0, NULL, NULL },
	[CONFIG_BRIDGE_RECORDS] = {
		"bridge_records", NULL, "LIST",
		"what the bridge sends: telemetry (minimized records), status (device status), or both",
		TYPE_STRING, STORE_STRING, BRIDGE(records), 0, 0, 0, 0, NULL,
		"telemetry,status", 0, check_records, NULL },
	[CONFIG_BRIDGE_HA_DISCOVERY] = {
		"bridge_ha_discovery", NULL, "yes|no",
		"publish Home Assistant discovery configs for each device's kept fields",
		TYPE_ENUM, STORE_INT, BRIDGE(ha_discovery), 0, 0, 0, 0, no_yes,
		"yes", 0, NULL, NULL },
	[CONFIG_BRIDGE_HA_PREFIX] = {
		"bridge_ha_prefix", NULL, "PREFIX", "Home Assistant's discovery prefix",
		TYPE_STRING, STORE_STRING, BRIDGE(ha_prefix), 0, 0, 0, 0, NULL,
		"homeassistant/", 0, check_topic_prefix, NULL },
	[CONFIG_BRIDGE_OUTBOX_MAX_BYTES] = {
		"bridge_outbox_max_bytes", NULL, "BYTES",
		"records kept for the broker while it is away; the oldest are dropped (and counted) beyond",
		TYPE_UNSIGNED, STORE_SIZE, BRIDGE(outbox_max_bytes), 65536, 4294967295u, 0, 0, NULL,
		"67108864", 0, NULL, NULL },
	[CONFIG_BRIDGE_OUTBOX_MAX_AGE_S] = {
		"bridge_outbox_max_age_s", NULL, "SECONDS",
		"how long a record may wait for the broker before it is dropped (and counted)",
		TYPE_UNSIGNED, STORE_UINT, BRIDGE(outbox_max_age_s), 60, 31536000, 0, 0, NULL,
		"604800", 0, NULL, NULL },
};

/* A host name or an IP address (no port: bridge_port says it). */
static const char *check_host(const char *v)
{
	size_t i, n = strlen(v);

	if (n > 253)
		return "is too long for a host name";
	for (i = 0; i < n; i++) {
		char ch = v[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '-' || ch == ':'))
			return "is not a host name or IP address";
	}
	return NULL;
}

/* A file the server reads: absolute, so it does not depend on where serve was started. */
static const char *check_abs_path(const char *v)
{
	return v[0] == '\0' || v[0] == '/' ? NULL : "is not an absolute path";
}

static const char *check_client_id(const char *v)
{
	size_t i, n = strlen(v);

	if (n > 64)
		return "is longer than 64 bytes";
	for (i = 0; i < n; i++) {
		char ch = v[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '-' || ch == '_' || ch == ':'))
			return "may hold only letters, digits and . - _ :";
	}
	return NULL;
}

/* A topic prefix hearth appends to: no wildcard, not a $ topic, ending in '/'. */
static const char *check_topic_prefix(const char *v)
{
	size_t n = strlen(v);

	if (strpbrk(v, "+#"))
		return "holds a wildcard (+ or #)";
	if (v[0] == '$')
		return "starts with $ (the broker's own topics)";
	if (v[0] == '/')
		return "starts with /";
	if (n > 128)
		return "is longer than 128 bytes";
	if (n == 0 || v[n - 1] != '/')
		return "does not end with /";
	return NULL;
}

static const char *check_records(const char *v)
{
	return bridge_records_parse(v) ? NULL : "is not telemetry, status or telemetry,status";
}

static const char *check_api(const char *v)
{
	return strcmp(v, "off") == 0 ? NULL : check_host_port(v);
}

static void apply_log_level(const struct config *c)
{
	log_set_level((enum log_level)c->log_level);
}

/* HOST:PORT as the endpoint's listener takes it: a host (an IPv6 address may be in brackets) and a
 * numeric port. Whether the host resolves is learnt when the server starts. */
static const char *check_host_port(const char *v)
{
	const char *colon = strrchr(v, ':'), *p;
	size_t hlen;
	unsigned port = 0;

	if (!colon || colon == v)
		return "is not HOST:PORT";
	hlen = (size_t)(colon - v);
	if (v[0] == '[' && (hlen < 3 || v[hlen - 1] != ']'))
		return "is not HOST:PORT ([IPv6]:PORT needs both brackets and an address)";
	if (colon[1] == '\0' || strlen(colon + 1) > 5)
		return "has no port 0..65535";
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return "has no port 0..65535";
		port = port * 10 + (unsigned)(*p - '0');
	}
	return port > 65535 ? "has no port 0..65535" : NULL;
}

/* --- values ----------------------------------------------------------------------------------- */

static void *field(struct config *c, const struct setting *s)
{
	return (char *)c + s->offset;
}

static const void *cfield(const struct config *c, const struct setting *s)
{
	return (const char *)c + s->offset;
}

/* After any whole-struct copy: ep.mqtt_addr must point into its own struct. */
static void copy_config(struct config *dst, const struct config *src)
{
	memcpy(dst, src, sizeof(*dst));
	dst->ep.mqtt_addr = dst->mqtt;
}

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* A value for a message: digits as they are, anything else quoted; non-printing bytes become '?';
 * cut at 48 bytes so a message always fits. */
static void shown(char *buf, size_t size, const char *v, size_t len)
{
	size_t i, n = 0, cut = len > 48 ? 48 : len;
	int digits = len > 0;

	for (i = 0; i < len; i++)
		digits &= v[i] >= '0' && v[i] <= '9';
	if (size < 2) {
		if (size == 1)
			buf[0] = '\0';
		return;
	}
	if (!digits)
		buf[n++] = '\'';
	for (i = 0; i < cut && n + 5 < size; i++)
		buf[n++] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
	if (cut < len && n + 5 < size) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	if (!digits && n + 1 < size)
		buf[n++] = '\'';
	buf[n] = '\0';
}

/* Check (v, len) for setting s; if it is good and src is not below the value's current source,
 * store it. 0, or -1 with why set to the problem (without the key: the caller says where). */
static int set_value(struct config *c, enum config_key k, const char *v, size_t len,
		     enum config_source src, unsigned line, char *why, size_t whylen)
{
	const struct setting *s = &settings[k];
	char text[64];
	long long num = 0;
	size_t i;

	shown(text, sizeof(text), v, len);
	if (len == 0 && !(s->type == TYPE_STRING && s->empty_ok)) {
		snprintf(why, whylen, "no value");
		return -1;
	}
	switch (s->type) {
	case TYPE_STRING:
		if (len >= CONFIG_MAX_VALUE) {
			snprintf(why, whylen, "%s is too long (at most %d bytes)", text,
				 CONFIG_MAX_VALUE - 1);
			return -1;
		}
		for (i = 0; i < len; i++) {
			if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
				snprintf(why, whylen, "%s holds a control character", text);
				return -1;
			}
		}
		break;
	case TYPE_UNSIGNED: {
		int over = 0;

		if (s->auto_ok && len == 4 && memcmp(v, "auto", 4) == 0) {
			num = -1;
			break;
		}
		for (i = 0; i < len; i++) {
			if (v[i] < '0' || v[i] > '9') {
				snprintf(why, whylen, "%s is not a number%s", text,
					 s->auto_ok ? " (nor auto)" : "");
				return -1;
			}
			if (!over)
				num = num * 10 + (v[i] - '0');
			over |= num > (long long)s->max;
		}
		if (over || num < (long long)s->min) {
			snprintf(why, whylen, "%s is out of range (%u..%u%s)", text, s->min, s->max,
				 s->auto_ok ? ", or auto" : "");
			return -1;
		}
		break;
	}
	case TYPE_ENUM:
		for (num = 0; s->names[num]; num++)
			if (strlen(s->names[num]) == len && memcmp(s->names[num], v, len) == 0)
				break;
		if (!s->names[num]) {
			int n = snprintf(why, whylen, "%s is not one of", text);

			for (i = 0; s->names[i] && n > 0 && (size_t)n < whylen; i++)
				n += snprintf(why + n, whylen - (size_t)n, "%s %s", i ? "," : "",
					      s->names[i]);
			return -1;
		}
		break;
	}
	if (s->type == TYPE_STRING && s->check) {
		char copy[CONFIG_MAX_VALUE];
		const char *problem;

		memcpy(copy, v, len);
		copy[len] = '\0';
		problem = s->check(copy);
		if (problem) {
			snprintf(why, whylen, "%s %s", text, problem);
			return -1;
		}
	}
	/* Checked whatever its source, stored only if nothing more important set it. */
	if (src < c->source[k])
		return 0;
	switch (s->store) {
	case STORE_SIZE: *(size_t *)field(c, s) = (size_t)num; break;
	case STORE_UINT: *(unsigned *)field(c, s) = (unsigned)num; break;
	case STORE_INT: *(int *)field(c, s) = (int)num; break;
	case STORE_STRING:
		memcpy(field(c, s), v, len);
		((char *)field(c, s))[len] = '\0';
		break;
	}
	c->source[k] = src;
	c->line[k] = line;
	return 0;
}

static const char *enum_name(const struct setting *s, int v)
{
	int i;

	for (i = 0; s->names[i]; i++)
		if (i == v)
			return s->names[i];
	return "?";
}

const char *config_key_name(enum config_key key)
{
	return (unsigned)key < CONFIG_COUNT ? settings[key].key : "?";
}

void config_value(const struct config *c, enum config_key key, char *buf, size_t size)
{
	const struct setting *s;
	const void *p;
	int v;

	if (size == 0)
		return;
	buf[0] = '\0';
	if ((unsigned)key >= CONFIG_COUNT)
		return;
	s = &settings[key];
	p = cfield(c, s);
	switch (s->store) {
	case STORE_SIZE:
		snprintf(buf, size, "%zu", *(const size_t *)p);
		break;
	case STORE_UINT:
		snprintf(buf, size, "%u", *(const unsigned *)p);
		break;
	case STORE_INT:
		v = *(const int *)p;
		if (s->type == TYPE_ENUM)
			snprintf(buf, size, "%s", enum_name(s, v));
		else if (v < 0)
			snprintf(buf, size, "auto");
		else
			snprintf(buf, size, "%d", v);
		break;
	case STORE_STRING:
		snprintf(buf, size, "%s", (const char *)p);
		break;
	}
}

/* --- the file --------------------------------------------------------------------------------- */

static int find_key(const char *key, size_t len)
{
	int k;

	for (k = 0; k < CONFIG_COUNT; k++)
		if (strlen(settings[k].key) == len && memcmp(settings[k].key, key, len) == 0)
			return k;
	return -1;
}

static void trim(const char **p, size_t *len)
{
	while (*len > 0 && is_space(**p)) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*p)[*len - 1]))
		(*len)--;
}

/* One line (no newline). 0, or -1 with why set to "problem" or "key: problem". */
static int parse_line(struct config *c, const char *p, size_t len, unsigned lineno,
		      unsigned seen[CONFIG_COUNT], char *why, size_t whylen)
{
	const char *eq, *key, *val;
	size_t klen, vlen;
	char text[64], problem[CONFIG_ERR_MAX / 2];
	int k;

	trim(&p, &len);
	if (len == 0 || p[0] == '#')
		return 0;
	eq = memchr(p, '=', len);
	if (!eq) {
		shown(text, sizeof(text), p, len);
		snprintf(why, whylen, "%s is not key = value", text);
		return -1;
	}
	key = p;
	klen = (size_t)(eq - p);
	val = eq + 1;
	vlen = len - klen - 1;
	trim(&key, &klen);
	trim(&val, &vlen);
	if (klen == 0) {
		snprintf(why, whylen, "no key before '='");
		return -1;
	}
	k = find_key(key, klen);
	if (k < 0) {
		shown(text, sizeof(text), key, klen);
		snprintf(why, whylen, "unknown key %s", text);
		return -1;
	}
	if (seen[k]) {
		snprintf(why, whylen, "%s: already set on line %u", settings[k].key, seen[k]);
		return -1;
	}
	seen[k] = lineno;
	if (set_value(c, (enum config_key)k, val, vlen, CONFIG_FROM_FILE, lineno, problem,
		      sizeof(problem)) != 0) {
		snprintf(why, whylen, "%s: %s", settings[k].key, problem);
		return -1;
	}
	return 0;
}

enum herr config_parse_file_text(struct config *c, const char *name, const char *text, size_t len,
				 char *err, size_t errlen)
{
	unsigned seen[CONFIG_COUNT] = { 0 };
	char why[CONFIG_ERR_MAX];
	struct config tmp;
	unsigned lineno = 0;
	size_t pos = 0;

	if (len > CONFIG_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %d bytes", name, CONFIG_MAX_FILE);
		return HERR_TOOBIG;
	}
	copy_config(&tmp, c);
	/* A byte order mark some editors write is not part of the first key. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;

		lineno++;
		if (n > CONFIG_MAX_LINE) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", name, lineno,
				 CONFIG_MAX_LINE);
			return HERR_TOOBIG;
		}
		if (memchr(line, '\0', n)) {
			snprintf(err, errlen, "%s:%u: a NUL byte (not a text file?)", name, lineno);
			return HERR_INVALID;
		}
		if (parse_line(&tmp, line, n, lineno, seen, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
			return HERR_INVALID;
		}
		pos += n + (nl != NULL);
	}
	copy_config(c, &tmp);
	return HERR_OK;
}

/* --- defaults, environment, flags ------------------------------------------------------------- */

void config_defaults(struct config *c)
{
	char why[CONFIG_ERR_MAX];
	int k;

	memset(c, 0, sizeof(*c));
	c->ep.mqtt_addr = c->mqtt;
	c->ep.lim.max_output = CONFIG_MAX_OUTPUT;
	/* The table's defaults are text, so they pass the same checks as the file (a unit test
	 * asserts that each does). */
	for (k = 0; k < CONFIG_COUNT; k++)
		set_value(c, (enum config_key)k, settings[k].def, strlen(settings[k].def),
			  CONFIG_FROM_DEFAULT, 0, why, sizeof(why));
}

static void env_name(const struct setting *s, char *buf, size_t size)
{
	size_t i, n = strlen(ENV_PREFIX);

	snprintf(buf, size, "%s", ENV_PREFIX);
	for (i = 0; s->key[i] && n + 1 < size; i++)
		buf[n++] = s->key[i] >= 'a' && s->key[i] <= 'z' ? (char)(s->key[i] - 'a' + 'A') : s->key[i];
	buf[n] = '\0';
}

static void flag_name(const struct setting *s, char *buf, size_t size)
{
	size_t i, n = 2;

	snprintf(buf, size, "--");
	for (i = 0; s->key[i] && n + 1 < size; i++)
		buf[n++] = s->key[i] == '_' ? '-' : s->key[i];
	buf[n] = '\0';
}

static enum herr apply_env(struct config *c, char *err, size_t errlen)
{
	char name[NAME_MAX_LEN], why[CONFIG_ERR_MAX / 2];
	const char *v;
	int k;

	for (k = 0; k < CONFIG_COUNT; k++) {
		env_name(&settings[k], name, sizeof(name));
		v = getenv(name);
		if (!v || !*v)
			continue;
		if (set_value(c, (enum config_key)k, v, strlen(v), CONFIG_FROM_ENV, 0, why,
			      sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: %s", name, why);
			return HERR_INVALID;
		}
	}
	return HERR_OK;
}

/* A misspelt variable would otherwise be silently ignored. */
static void warn_unknown_env(void)
{
	char name[NAME_MAX_LEN];
	char **e;
	int k, known;

	for (e = environ; e && *e; e++) {
		size_t len = strcspn(*e, "=");

		if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
			continue;
		known = len == strlen("HEARTH_DATA") && strncmp(*e, "HEARTH_DATA", len) == 0;
		for (k = 0; k < CONFIG_COUNT && !known; k++) {
			env_name(&settings[k], name, sizeof(name));
			known = strlen(name) == len && strncmp(*e, name, len) == 0;
		}
		if (!known)
			log_warn("%.*s names no setting and is ignored (hearth config example lists them)",
				 (int)(len > 64 ? 64 : len), *e);
	}
}

static enum herr load(struct config *c, const char *data_dir, int warn, char *err, size_t errlen)
{
	char path[4096];
	struct config tmp;
	uint8_t *data = NULL;
	size_t len = 0;
	enum herr rc;

	if (fs_path(path, sizeof(path), "%s/%s", data_dir, CONFIG_FILE) != HERR_OK) {
		snprintf(err, errlen, "%s: path too long", data_dir);
		return HERR_TOOBIG;
	}
	copy_config(&tmp, c);
	rc = fs_read_file(path, CONFIG_MAX_FILE, &data, &len);
	if (rc == HERR_OK) {
		rc = config_parse_file_text(&tmp, path, (const char *)data, len, err, errlen);
		free(data);
		if (rc != HERR_OK)
			return rc;
	} else if (rc == HERR_TOOBIG) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CONFIG_MAX_FILE);
		return rc;
	} else if (rc != HERR_NOTFOUND) {
		snprintf(err, errlen, "%s: cannot read it (%s)", path, herr_str(rc));
		return rc;
	}
	if (warn)
		warn_unknown_env();
	rc = apply_env(&tmp, err, errlen);
	if (rc != HERR_OK)
		return rc;
	copy_config(c, &tmp);
	return HERR_OK;
}

enum herr config_load(struct config *c, const char *data_dir, char *err, size_t errlen)
{
	return load(c, data_dir, 1, err, errlen);
}

enum herr config_apply_flag(struct config *c, const char *flag, const char *value, char *err,
			    size_t errlen)
{
	char name[NAME_MAX_LEN], why[CONFIG_ERR_MAX / 2];
	int k;

	for (k = 0; k < CONFIG_COUNT; k++) {
		flag_name(&settings[k], name, sizeof(name));
		if (strcmp(flag, name) == 0 || (settings[k].alias && strcmp(flag, settings[k].alias) == 0))
			break;
	}
	if (k == CONFIG_COUNT)
		return HERR_NOTFOUND;
	if (set_value(c, (enum config_key)k, value, strlen(value), CONFIG_FROM_FLAG, 0, why,
		      sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", flag, why);
		return HERR_INVALID;
	}
	return HERR_OK;
}

void config_apply(const struct config *c)
{
	int k;

	for (k = 0; k < CONFIG_COUNT; k++)
		if (settings[k].apply)
			settings[k].apply(c);
}

/* --- SIGHUP ----------------------------------------------------------------------------------- */

static void copy_value(struct config *dst, const struct config *src, enum config_key k)
{
	const struct setting *s = &settings[k];
	size_t size = s->store == STORE_SIZE ? sizeof(size_t) :
		      s->store == STORE_UINT ? sizeof(unsigned) :
		      s->store == STORE_INT ? sizeof(int) : CONFIG_MAX_VALUE;

	memcpy(field(dst, s), cfield(src, s), size);
	dst->source[k] = src->source[k];
	dst->line[k] = src->line[k];
}

enum herr config_reload(struct config *live, const char *data_dir, uint32_t *changed, char *err,
			size_t errlen)
{
	char was[CONFIG_MAX_VALUE], now[CONFIG_MAX_VALUE];
	struct config fresh;
	enum herr rc;
	int k;

	*changed = 0;
	config_defaults(&fresh);
	/* The command line cannot have changed: its values stand. */
	for (k = 0; k < CONFIG_COUNT; k++)
		if (live->source[k] == CONFIG_FROM_FLAG)
			copy_value(&fresh, live, (enum config_key)k);
	rc = load(&fresh, data_dir, 0, err, errlen);
	if (rc != HERR_OK)
		return rc;
	for (k = 0; k < CONFIG_COUNT; k++) {
		const struct setting *s = &settings[k];

		config_value(live, (enum config_key)k, was, sizeof(was));
		config_value(&fresh, (enum config_key)k, now, sizeof(now));
		if (strcmp(was, now) == 0)
			continue;
		if (!s->runtime) {
			log_warn("configuration: %s = %s takes a restart; still %s", s->key, now, was);
			continue;
		}
		log_info("configuration: %s = %s (was %s)", s->key, now, was);
		copy_value(live, &fresh, (enum config_key)k);
		*changed |= CONFIG_BIT(k);
		if (s->apply)
			s->apply(live);
	}
	return HERR_OK;
}

/* --- printing --------------------------------------------------------------------------------- */

static void range_text(const struct setting *s, char *buf, size_t size)
{
	size_t i;
	int n;

	buf[0] = '\0';
	if (s->type == TYPE_UNSIGNED) {
		snprintf(buf, size, "%u..%u%s", s->min, s->max, s->auto_ok ? " or auto" : "");
	} else if (s->type == TYPE_ENUM) {
		for (i = 0, n = 0; s->names[i] && n >= 0 && (size_t)n < size; i++)
			n += snprintf(buf + n, size - (size_t)n, "%s%s", i ? " | " : "", s->names[i]);
	}
}

void config_print(const struct config *c, FILE *out)
{
	char value[CONFIG_MAX_VALUE], name[NAME_MAX_LEN], from[NAME_MAX_LEN + 32];
	int k;

	fprintf(out, "%-22s %-24s %s\n", "KEY", "VALUE", "FROM");
	for (k = 0; k < CONFIG_COUNT; k++) {
		config_value(c, (enum config_key)k, value, sizeof(value));
		switch (c->source[k]) {
		case CONFIG_FROM_DEFAULT:
			snprintf(from, sizeof(from), "default");
			break;
		case CONFIG_FROM_FILE:
			snprintf(from, sizeof(from), "file %s, line %u", CONFIG_FILE, c->line[k]);
			break;
		case CONFIG_FROM_ENV:
			env_name(&settings[k], name, sizeof(name));
			snprintf(from, sizeof(from), "env %s", name);
			break;
		case CONFIG_FROM_FLAG:
			flag_name(&settings[k], name, sizeof(name));
			snprintf(from, sizeof(from), "flag %s", name);
			break;
		}
		/* An empty value shows as "", so the columns stay columns. */
		fprintf(out, "%-22s %-24s %s\n", settings[k].key, value[0] ? value : "\"\"", from);
	}
}

void config_example(FILE *out)
{
	char range[128], flag[NAME_MAX_LEN], env[NAME_MAX_LEN];
	int k;

	fputs("# hearth.conf: the settings of `hearth serve`, read from its data directory when it starts\n"
	      "# and again on SIGHUP (which applies the settings marked so; the others take a restart).\n"
	      "# Written by `hearth config example`; check a file with `hearth config check`.\n"
	      "#\n"
	      "# A line is `key = value`, or a comment starting with '#' (only whole lines are comments).\n"
	      "# A setting left out keeps its default, shown below. Each can also be given as --flag or\n"
	      "# as a HEARTH_* environment variable: a flag beats the environment, which beats this file.\n",
	      out);
	for (k = 0; k < CONFIG_COUNT; k++) {
		const struct setting *s = &settings[k];

		range_text(s, range, sizeof(range));
		flag_name(s, flag, sizeof(flag));
		env_name(s, env, sizeof(env));
		fprintf(out, "\n# %s: %s", s->key, s->help);
		if (range[0])
			fprintf(out, " (%s)", range);
		fprintf(out, ".\n# %s%s%s, %s; %s.\n#%s = %s\n", flag, s->alias ? " or " : "",
			s->alias ? s->alias : "", env,
			s->runtime ? "SIGHUP applies a change" : "a change takes a restart", s->key,
			s->def);
	}
}

void config_usage(FILE *out)
{
	char range[128], flag[NAME_MAX_LEN * 2];
	int k;

	for (k = 0; k < CONFIG_COUNT; k++) {
		const struct setting *s = &settings[k];
		size_t n;

		range_text(s, range, sizeof(range));
		flag_name(s, flag, sizeof(flag));
		n = strlen(flag);
		snprintf(flag + n, sizeof(flag) - n, " %s", s->arg);
		fprintf(out, "  %-28s %s\n  %-28s (", flag, s->help, "");
		if (range[0])
			fprintf(out, "%s; ", range);
		fprintf(out, "default %s", s->def[0] ? s->def : "empty");
		if (s->alias)
			fprintf(out, "; also %s", s->alias);
		fputs(")\n", out);
	}
}
