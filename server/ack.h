/* ack: a device's answer to a manifest, published on hearth/v1/<id>/ack:
 *   {"type": "pins", "version": 7, "status": "applied"}
 * Parsed strictly (bounded; exactly these keys, no duplicates) and recorded per device, type and
 * version by the broker, inside the endpoint's group commit. A malformed ack is counted, not an
 * error: the device still gets its PUBACK (a resend would be just as malformed). */
#ifndef HEARTH_ACK_H
#define HEARTH_ACK_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"

#define ACK_MAX_BYTES 1024

struct ack {
	char type[16];      /* "pins", "firmware", "keys" */
	int64_t version;    /* >= 1 */
	char status[24];    /* one of ack_statuses */
};

/* NULL-terminated: what a device may say of a manifest. */
extern const char *const ack_statuses[];

/* HERR_INVALID with *why (static text) for anything but a well-formed ack; HERR_NOMEM if memory ran
 * out while parsing. */
enum herr ack_parse(const uint8_t *payload, size_t len, struct ack *out, const char **why);

/* A device's status (hearth/v1/<id>/status) as far as hearth reads it: a JSON object of at most
 * ACK_MAX_BYTES that may say "firmware" (the version it runs: [A-Za-z0-9._+-]{1,64}) and
 * "security_version" (0..2147483647); other keys are the device's own business. HERR_OK if it said
 * either (firmware "" / security_version -1 for what it did not say), HERR_NOTFOUND if it said
 * neither, HERR_INVALID with *why if it is not such an object or a value is malformed, HERR_NOMEM
 * if memory ran out while parsing. */
struct ack_status {
	char firmware[65];
	int64_t security_version;
};
enum herr ack_status_parse(const uint8_t *payload, size_t len, struct ack_status *out, const char **why);

#endif
