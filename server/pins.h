/* pins: the endpoint's pin set and its rotation, gated on the fleet's readiness (DESIGN.md
 * "Signed manifests", issue 6). Three P-256 keys in DIR/keys: endpoint.key (the one served),
 * endpoint-next.key (announced long before it is used) and endpoint-backup.key (announced; an
 * operator may move it offline for a disaster). A pin is "sha256/<base64>" of a key's DER
 * SubjectPublicKeyInfo. The pin set goes to every device as a signed "pins" manifest:
 *   {"pins": [current, next, backup], "current": ..., "next": ..., "backup": ..., + the common fields}
 * The endpoint moves to the next key only when enough active devices acknowledged a pin set that
 * holds it; afterwards a fresh next key is made and announced, and the old key leaves the set. */
#ifndef HEARTH_PINS_H
#define HEARTH_PINS_H

#include <stddef.h>
#include <stdint.h>

#include "ca/key.h"
#include "common/herr.h"
#include "server/datadir.h"

#define PINS_NEXT_KEY    "keys/endpoint-next.key"
#define PINS_BACKUP_KEY  "keys/endpoint-backup.key"
#define PINS_RETIRED_KEY "keys/endpoint-retired.key"
/* Devices count for readiness if they were seen this recently. */
#define PINS_SEEN_DAYS 30

struct pins_set {
	char current[CA_PIN_LEN], next[CA_PIN_LEN], backup[CA_PIN_LEN]; /* "" if that key is missing */
};

/* The pins of the keys as they are on disk. */
enum herr pins_read(struct datadir *dd, struct pins_set *out);

/* Make the next and backup keys if they are missing (0600), and announce the pin set to every
 * device ("all"). *version: the pins manifest's version. */
enum herr pins_announce(struct datadir *dd, const char *actor, int64_t *version);

/* Readiness of the newest announced pin set (*version; HERR_NOTFOUND if none was announced):
 * how many active devices seen in the last PINS_SEEN_DAYS there are and how many acknowledged it
 * ("applied"); fn (may be NULL) gets each that did not. */
struct pins_status {
	int64_t version;
	char next[CA_PIN_LEN];     /* the next pin that set announced */
	char backup[CA_PIN_LEN];   /* and its backup pin */
	size_t active, acked;
};
typedef int (*pins_stranded_fn)(void *ctx, const char *id);
enum herr pins_status(struct datadir *dd, int64_t now, struct pins_status *out, pins_stranded_fn fn, void *ctx);

/* Move the endpoint to the next key: the current key becomes endpoint-retired.key, the next one
 * endpoint.key, a certificate for it (same names) is issued and written (a running server picks it
 * up within seconds, live connections stay), a fresh next key is made, and the new pin set is
 * announced. HERR_STATE if the newest announced set does not hold the next key (announce first).
 * The readiness gate is the caller's. */
enum herr pins_switch(struct datadir *dd, const char *actor, int64_t *version);
/* The emergency path (the next key is compromised or lost): the same to the backup key, which must
 * be on disk again as PINS_BACKUP_KEY if it was kept offline; the next key is deleted, and a fresh
 * next and backup key are made and announced. Devices that applied the set holding the backup
 * keep talking to the endpoint. HERR_STATE as above. */
enum herr pins_switch_backup(struct datadir *dd, const char *actor, int64_t *version);

#endif
