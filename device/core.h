/* core: the reference device's trust decisions, with no I/O. Built from mbedTLS, ota/dsse.c and
 * device/json.c only (no jansson, no libmosquitto, no files, no clock): the same code would build
 * for an ESP32 under ESP-IDF, where the agent's transport would be esp-mqtt and esp_http_client.
 *
 * What a device trusts (struct core_trust) is decided here and nowhere else:
 *   - the endpoint: its key's pin ("sha256/<base64 of SHA-256 of the DER SubjectPublicKeyInfo>")
 *     must be in the pin set; the agent asks core_pin_ok during every TLS handshake;
 *   - manifests: DSSE envelopes (ota/dsse.h) signed by threshold distinct keys of the trusted
 *     manifest-key set, of the expected type, addressed to this device ("device" = its id, its
 *     model or "*"), not expired at now, with a version above the last applied of that type.
 *
 * Per type (docs/manifests.md):
 *   pins:     {"pins": [1..CORE_PINS_MAX well-formed pins], "current": one of them, ...}. An empty
 *             or malformed set is refused (it would lock the device out for good).
 *   keys:     {"keys": [{"keyid", "public_key" (PEM SPKI, P-256)}], "threshold": n, ...}; version
 *             must be exactly the last applied + 1 (a skip is refused: the device fetches each
 *             version in turn), signed by threshold keys it trusts now *and* by every key announced
 *             (keyid must match the key). Afterwards it trusts exactly the announced set.
 *   firmware: {"model" = the device's model, "release", "rollout", "firmware_version",
 *             "security_version" >= the device's, "sha256" (64 hex), "size" (1..CORE_IMAGE_MAX),
 *             "url" (a path starting with "/api/v1/device/firmware/")}, or a cancel
 *             {"model", "rollout", "cancel": true}.
 * A manifest is only checked here; the caller applies it (core_check fills *next, the trust as it
 * will be once applied; the caller persists it, then acknowledges). */
#ifndef HEARTH_DEVICE_CORE_H
#define HEARTH_DEVICE_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "ota/dsse.h"

#define CORE_ID_MAX 64
#define CORE_KEYS_MAX 4
#define CORE_PINS_MAX 4
#define CORE_PIN_LEN 52              /* "sha256/" + 44 base64 + NUL */
#define CORE_IMAGE_MAX (512ULL * 1024 * 1024)
#define CORE_URL_MAX 160
#define CORE_SKEW_S 300              /* "issued" may be this far in the device's future */

struct core_trust {
	char device_id[CORE_ID_MAX + 1];
	char model[CORE_ID_MAX + 1];
	struct dsse_key keys[CORE_KEYS_MAX];
	size_t key_count;
	unsigned threshold;              /* >= 1 */
	char pins[CORE_PINS_MAX][CORE_PIN_LEN];
	size_t pin_count;
	int64_t pins_version, keys_version, firmware_version_seen; /* last applied manifest versions */
	char firmware_version[CORE_ID_MAX + 1]; /* what runs now ("" if unknown) */
	int64_t security_version;
};

/* What a firmware manifest asks for. */
struct core_firmware {
	int cancel;                      /* 1: a cancel; only model and rollout are set */
	char release[CORE_ID_MAX + 1];
	char rollout[CORE_ID_MAX + 1];
	char firmware_version[CORE_ID_MAX + 1];
	int64_t security_version;
	char sha256[65];
	uint64_t size;
	char url[CORE_URL_MAX + 1];
};

/* The pin of a DER SubjectPublicKeyInfo. */
void core_pin_of(const uint8_t *spki, size_t len, char pin[CORE_PIN_LEN]);
/* 1 if that key is pinned by t (and t has at least one pin), else 0. */
int core_pin_ok(const struct core_trust *t, const uint8_t *spki, size_t len);
/* 1 if text is a well-formed pin ("sha256/" + 43 base64 characters + "="). */
int core_pin_valid(const char *text);

/* Add a trusted manifest key from its PEM SubjectPublicKeyInfo (P-256 only); keyid (may be NULL)
 * gets its id. HERR_INVALID if it is not a P-256 public key, HERR_TOOBIG past CORE_KEYS_MAX. */
enum herr core_add_key(struct core_trust *t, const char *pem, size_t len, char keyid[DSSE_KEYID_LEN]);
/* Also (device/core.c): HERR_EXISTS if t already trusts that key. The PEM is one PUBLIC KEY block
 * (whitespace after it is fine; len may count a final NUL) whose DER is the usual form (named curve,
 * uncompressed point), the one form dsse_verify accepts and a keyid names. */

/* Check envelope (untrusted, len bytes) as a manifest of type ("pins", "keys", "firmware") for
 * trust t at now (Unix seconds). HERR_OK: *next is t as it will be once the manifest is applied
 * (for firmware only firmware_version_seen moves; installing sets firmware_version and
 * security_version later) and, for firmware, *fw says what to fetch. Otherwise (HERR_INVALID,
 * HERR_STATE for a version at or below the last, HERR_CRYPTO for a signature problem) why says what
 * was refused, and *next and *fw are not to be used. Never reads out of bounds, whatever the
 * input. */
enum herr core_check(const struct core_trust *t, const char *type, const uint8_t *envelope, size_t len,
		     int64_t now, struct core_trust *next, struct core_firmware *fw, char *why, size_t why_size);
/* Also (device/core.c), so that a caller can act on the code alone:
 *   - HERR_STATE only ever means "at or below the last applied" (nothing to do). A keys version that
 *     skips is HERR_INVALID (why says "skips"): fetch the ones between (core_peek_version).
 *   - HERR_CRYPTO: fewer than threshold distinct trusted keys signed, a signature naming a trusted key
 *     does not verify, or (keys) an announced key did not sign. A malformed envelope or a wrong
 *     payloadType is HERR_INVALID.
 *   - A firmware security_version below t->security_version is HERR_INVALID ("rollback").
 *   - t->threshold 0 counts as 1, as in dsse_verify; a t with no keys, a threshold above its key
 *     count or a key that is not P-256 is HERR_INVALID whatever the envelope.
 *   - "issued" is required; fields not named above are ignored (also inside a keys entry); the url
 *     may not have an empty, "." or ".." segment; next may be t itself; fw may be NULL. */

/* The version of a manifest of any type *without* trusting it (the agent uses it to see that a
 * keys manifest skips versions and fetch the ones between). HERR_INVALID if it has none. */
enum herr core_peek_version(const uint8_t *envelope, size_t len, int64_t *version);

#endif
