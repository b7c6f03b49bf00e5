/* keys: rotating the manifest-signing key as TUF rotates its root. A "keys" manifest lists the new
 * signing key set and is signed by the old key *and* the new one, so a device that trusts the old
 * key can verify it and then trusts the new set; devices walk keys manifests version by version
 * (GET /api/v1/device/manifests/keys?version=N), so one offline across several rotations catches
 * up. After the manifest is recorded, DIR/keys/manifest.key is the new key and the old one is kept
 * as DIR/keys/manifest-retired-<keyid prefix>.key (retire it offline when every device moved on). */
#ifndef HEARTH_KEYS_H
#define HEARTH_KEYS_H

#include <stdint.h>

#include "common/herr.h"
#include "server/datadir.h"

#define KEYS_NEXT "keys/manifest-next.key"
/* Keys manifests must outlive any device's time offline: they expire after this. */
#define KEYS_MANIFEST_DAYS 3650

struct keys_rotated {
	int64_t version;
	char old_keyid[65], new_keyid[65];
};

enum herr keys_rotate(struct datadir *dd, const char *actor, struct keys_rotated *out);

#endif
