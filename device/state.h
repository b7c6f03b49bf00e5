/* state: the reference agent's state directory and its trust file.
 *
 * DIR (0700) holds device.key (0600, PEM), device.crt, ca.pem (the CA chain the device verifies
 * the endpoint against), trust (struct core_trust, below), and while a firmware image is being
 * fetched firmware.part and firmware.part.sha256; an installed image is firmware.bin.
 *
 * The trust file is line-based text, one "name value" per line, '\n'-terminated:
 *
 *     hearth-agent-trust 1
 *     id <device id>
 *     model <model>                  ("model" alone: none known)
 *     threshold <n>
 *     key <base64 of the DER SubjectPublicKeyInfo of a manifest key>     (1..CORE_KEYS_MAX)
 *     pin sha256/<base64>                                                (1..CORE_PINS_MAX)
 *     pins_version <n>
 *     keys_version <n>
 *     firmware_version_seen <n>
 *     firmware_version <version>     ("firmware_version" alone: unknown)
 *     security_version <n>
 *
 * Loading is strict: the header first, every other line exactly once (key and pin once per
 * entry, no duplicates), nothing unknown, numbers in decimal without sign, bounded counts, keys
 * that are P-256 (core_add_key), well-formed pins, 1 <= threshold <= keys. Saving is atomic
 * (temporary file 0600, fsync, rename, fsync of DIR), so a crash leaves the old trust or the new
 * one, never a mix. */
#ifndef HEARTH_DEVICE_STATE_H
#define HEARTH_DEVICE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "device/core.h"

#define STATE_TRUST "trust"
#define STATE_KEY "device.key"
#define STATE_CERT "device.crt"
#define STATE_CA "ca.pem"
#define STATE_TRUST_MAX (16 * 1024)  /* bytes of trust file accepted */
#define STATE_PATH_MAX 4096

/* The trust file's text for t (a new NUL-terminated buffer, caller frees). HERR_INVALID if t
 * would not load back (bad id, counts out of range, ...). */
enum herr state_format(const struct core_trust *t, char **text, size_t *len);
/* Parse a trust file's text (untrusted, len bytes) into *t. HERR_INVALID with why on anything
 * but a well-formed file; *t is then zeroed. */
enum herr state_parse(const uint8_t *text, size_t len, struct core_trust *t, char *why, size_t why_size);

/* Load DIR/trust (HERR_NOTFOUND: not enrolled) / save it atomically. */
enum herr state_load(const char *dir, struct core_trust *t, char *why, size_t why_size);
enum herr state_save(const char *dir, const struct core_trust *t);

/* DIR/name into buf. HERR_TOOBIG if it does not fit. */
enum herr state_path(char *buf, size_t size, const char *dir, const char *name);
/* Read DIR/name (at most max bytes; a new NUL-terminated buffer). */
enum herr state_read(const char *dir, const char *name, size_t max, uint8_t **data, size_t *len);
/* Write DIR/name atomically with mode. */
enum herr state_write(const char *dir, const char *name, const void *data, size_t len, unsigned mode);
/* Remove DIR/name; a missing file is not an error. */
enum herr state_remove(const char *dir, const char *name);

#endif
