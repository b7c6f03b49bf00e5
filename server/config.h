/* config: the settings of `hearth serve`. One const table (config.c) gives each its key in
 * DIR/hearth.conf, its --flag and HEARTH_* variable, type and range, default, help, and whether a
 * SIGHUP may change it. A value comes from the first of: flag, environment, file, default. The file
 * parser is a pure function over (text, length); every error names where and what ("hearth.conf:12:
 * max_packet: 99999999999 is out of range (16..268435456)"), and a failed call changes nothing. */
#ifndef HEARTH_CONFIG_H
#define HEARTH_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/herr.h"
#include "server/bridge.h"
#include "server/endpoint.h"

#define CONFIG_FILE      "hearth.conf"   /* in the data directory */
#define CONFIG_MAX_LINE  4096            /* bytes, without the newline */
#define CONFIG_MAX_FILE  (64 * 1024)
#define CONFIG_MAX_VALUE 256             /* a string value, with its NUL */
#define CONFIG_ERR_MAX   512             /* any message, whatever the input (a long path is cut) */

/* The settings, in table order. */
enum config_key {
	CONFIG_MQTT,
	CONFIG_MAX_PACKET,
	CONFIG_MAX_CONNECTIONS,
	CONFIG_MAX_CONNECTIONS_PER_ADDRESS,
	CONFIG_MAX_HANDSHAKES_PER_ADDRESS,
	CONFIG_MAX_INFLIGHT,
	CONFIG_MAX_SUBSCRIPTIONS,
	CONFIG_MAX_QUEUED,
	CONFIG_HANDSHAKE_TIMEOUT_MS,
	CONFIG_CONNECT_TIMEOUT_MS,
	CONFIG_HANDSHAKE_THREADS,
	CONFIG_LOG_LEVEL,
	CONFIG_API,
	CONFIG_API_PLAIN,
	CONFIG_BRIDGE_HOST,
	CONFIG_BRIDGE_PORT,
	CONFIG_BRIDGE_TLS,
	CONFIG_BRIDGE_CAFILE,
	CONFIG_BRIDGE_CERTFILE,
	CONFIG_BRIDGE_KEYFILE,
	CONFIG_BRIDGE_PASSWORD_FILE,
	CONFIG_BRIDGE_CLIENT_ID,
	CONFIG_BRIDGE_PREFIX,
	CONFIG_BRIDGE_QOS,
	CONFIG_BRIDGE_RECORDS,
	CONFIG_BRIDGE_HA_DISCOVERY,
	CONFIG_BRIDGE_HA_PREFIX,
	CONFIG_BRIDGE_OUTBOX_MAX_BYTES,
	CONFIG_BRIDGE_OUTBOX_MAX_AGE_S,
	CONFIG_COUNT
};
#define CONFIG_BIT(key) ((uint32_t)1 << (key))

/* Where a value came from, in rising precedence: a source never overrides a higher one. */
enum config_source { CONFIG_FROM_DEFAULT, CONFIG_FROM_FILE, CONFIG_FROM_ENV, CONFIG_FROM_FLAG };

struct config {
	struct endpoint_config ep;       /* what endpoint_run takes; ep.mqtt_addr points at mqtt */
	char mqtt[CONFIG_MAX_VALUE];
	int log_level;                   /* enum log_level */
	char api[CONFIG_MAX_VALUE];      /* the REST API's HOST:PORT, or "off" */
	int api_plain;                   /* 1: plain HTTP (loopback only) */
	struct bridge_config bridge;     /* the northbound bridge (bridge.h); off unless a host is set */
	enum config_source source[CONFIG_COUNT];
	unsigned line[CONFIG_COUNT];     /* the file line of a value from the file */
};

/* Every setting at its default. Call this first: the other functions expect a struct it made (and
 * keep ep.mqtt_addr pointing into the struct, so copy one only through these functions). */
void config_defaults(struct config *c);

/* Apply a config file's text; name is for messages only. HERR_INVALID or HERR_TOOBIG with err set
 * to "name:LINE: problem" (or "name: problem"), and c unchanged, on any error: an unknown key, a bad
 * value, a key given twice, a line over CONFIG_MAX_LINE, a text over CONFIG_MAX_FILE. */
enum herr config_parse_file_text(struct config *c, const char *name, const char *text, size_t len,
				 char *err, size_t errlen);

/* DIR/hearth.conf (a missing file is no error), then the HEARTH_* environment variables (an empty
 * one counts as unset). Errors as above; an environment error names the variable. HEARTH_*
 * variables that name no setting (other than HEARTH_DATA) are logged as warnings. */
enum herr config_load(struct config *c, const char *data_dir, char *err, size_t errlen);

/* One --flag VALUE of the command line ("--max-packet", or an alias such as
 * "--handshake-timeout"). HERR_NOTFOUND if flag names no setting; HERR_INVALID with err set if the
 * value is bad. */
enum herr config_apply_flag(struct config *c, const char *flag, const char *value, char *err,
			    size_t errlen);

/* Make the settings that act outside ep take effect (log_level). */
void config_apply(const struct config *c);

/* SIGHUP: load DIR/hearth.conf and the environment again, under the flags live was started with,
 * and copy into live the settings SIGHUP may change (and apply them); *changed gets CONFIG_BIT of
 * each of those whose value changed. A changed setting that needs a restart is left as it is, and
 * logged as such; every change is logged. On error (err set) live is unchanged and *changed = 0. */
enum herr config_reload(struct config *live, const char *data_dir, uint32_t *changed, char *err,
			size_t errlen);

/* The key of a setting ("max_packet"), and its current value as text ("262144"). */
const char *config_key_name(enum config_key key);
void config_value(const struct config *c, enum config_key key, char *buf, size_t size);

/* hearth config show: every setting, its value and where that came from. */
void config_print(const struct config *c, FILE *out);

/* hearth config example: a complete hearth.conf, every setting commented out at its default with
 * its help, so the documentation cannot drift from the table. */
void config_example(FILE *out);

/* The settings' flags for a --help text, one per line. */
void config_usage(FILE *out);

#endif
