/* bridge: the northbound bridge. hearth publishes what it stored, never a raw device payload, into
 * an existing MQTT broker (the home lab's Mosquitto beside Home Assistant, a vendor's EMQX or
 * HiveMQ) with libmosquitto, on a thread of its own with its own store handle, so the device
 * endpoint never waits for that broker:
 *
 *   <prefix><id>/telemetry  the minimized record of each closed bucket (record.h), QoS bridge_qos
 *   <prefix><id>/status     retained: what the store knows of the device (status, model, firmware
 *                           and security version, certificate expiry, coarse last-seen bucket)
 *   <prefix>availability    retained: "online" while the bridge is connected, else "offline"
 *   <ha_prefix>sensor/...   retained Home Assistant discovery configs (hadisc.h)
 *
 * Records go through an outbox in the store, bounded by size and age (oldest dropped first, and
 * counted); a row leaves it only when the broker acknowledged it (PUBACK; with QoS 0, once sent).
 * After a reconnect everything unacknowledged is sent again, oldest first. Retained state is kept
 * in memory and sent again after every reconnect; the retained topics hearth set are recorded in
 * the store so that they can be cleared (device decommissioned or revoked, field no longer kept). */
#ifndef HEARTH_BRIDGE_H
#define HEARTH_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"

#define BRIDGE_TEXT_MAX 256     /* a text setting, with its NUL (CONFIG_MAX_VALUE) */

/* bridge_records, as bits. */
#define BRIDGE_SEND_TELEMETRY 1u
#define BRIDGE_SEND_STATUS    2u

/* The settings (config.h's table fills them; "" is unset). */
struct bridge_config {
	char host[BRIDGE_TEXT_MAX];     /* "": the bridge is off */
	int port;                       /* -1: 8883 with TLS, 1883 without */
	int tls;                        /* 1: TLS; the broker's certificate and name are always verified */
	char cafile[BRIDGE_TEXT_MAX];   /* "": the system's trusted CAs */
	char certfile[BRIDGE_TEXT_MAX], keyfile[BRIDGE_TEXT_MAX]; /* a client certificate, or both "" */
	char password_file[BRIDGE_TEXT_MAX]; /* "username\npassword\n", 0600; "" for none */
	char client_id[BRIDGE_TEXT_MAX];     /* "": hearth-<hostname> */
	char prefix[BRIDGE_TEXT_MAX];
	unsigned qos;                   /* 0 or 1 */
	char records[BRIDGE_TEXT_MAX];  /* "telemetry,status" or one of them */
	int ha_discovery;
	char ha_prefix[BRIDGE_TEXT_MAX];
	size_t outbox_max_bytes;
	unsigned outbox_max_age_s;
};

/* 1 if the settings switch the bridge on (a host is set). */
int bridge_enabled(const struct bridge_config *c);

/* The bits of a records setting ("telemetry,status"); 0 if it is not a valid list. */
unsigned bridge_records_parse(const char *text);

/* The port the settings connect to (the default for TLS or plain when port is -1). */
int bridge_port(const struct bridge_config *c);

/* Check what the settings need before the server starts: the combination (a client certificate
 * needs its key, TLS files need TLS), the files (readable; the key and the password file private,
 * the password file "username\npassword\n"). HERR_INVALID with err naming the setting. Nothing
 * is checked when the bridge is off. */
enum herr bridge_check(const struct bridge_config *c, char *err, size_t errlen);

/* The username and password of a password file's text: "username\npassword\n" (the last newline
 * optional, "\r\n" accepted), each 1..255 bytes without control characters. Pure; user and pass
 * receive NUL-terminated copies (256 bytes each). HERR_INVALID with why set on anything else. */
#define BRIDGE_CRED_MAX 256
enum herr bridge_parse_credentials(const uint8_t *text, size_t len, char *user, char *pass, char *why,
				   size_t whylen);

/* What /metrics shows of the bridge; read at any time from any thread. */
struct bridge_stats {
	int enabled, connected;
	uint64_t records_sent, outbox_rows, dropped, reconnects;
};

struct bridge;

/* Start the bridge thread on data directory dir with c (copied; bridge_check passed). */
enum herr bridge_start(const char *dir, const struct bridge_config *c, struct bridge **out);
/* Everything received before now is in the store (the endpoint calls this after each group
 * commit): the bridge reads buckets that closed by then, and never later ones. b may be NULL. */
void bridge_stored_until(struct bridge *b, int64_t now);
/* The counters; zeros when b is NULL. */
void bridge_stats(struct bridge *b, struct bridge_stats *out);
/* Say "offline", disconnect, stop the thread (within a few seconds) and free; b may be NULL. */
void bridge_stop(struct bridge *b);

#endif
