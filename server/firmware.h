/* firmware: releases per model and their rollouts (DESIGN.md "Signed manifests", issue 6).
 *
 * A release is an image file kept at DIR/firmware/<id>.bin (0600) with its sha256, size, the
 * vendor's version string and a monotonic security version. It is added from a file already on disk
 * (an upload streamed by REST, or the CLI's --file): firmware_release_add moves it into place.
 *
 * A rollout offers one release to a cohort of the release's model: a percent of its active devices
 * (each device falls in a stable bucket 0..99 = first 4 bytes of SHA-256("<rollout id>:<device id>")
 * mod 100, so widening 10% -> 50% only adds devices), an explicit list, or a tag. One rollout per
 * model is active or paused at a time. Offering a device means issuing it a signed "firmware"
 * manifest addressed to "device:<id>" with these fields (besides the common ones):
 *   {"model", "release", "rollout", "firmware_version", "security_version", "sha256", "size",
 *    "url": "/api/v1/device/firmware/<release id>"}
 * and recording the manifest's version in rollout_devices. A device is never offered a release whose
 * security version is below the one it reported (devices.security_version), nor the firmware
 * version it reports it already runs.
 *
 * The device answers on its ack topic; its status in the rollout is its last ack of the offered
 * manifest's version: offered (none yet), downloading, installed, failed, rolled_back (also
 * received/applied: treated as offered). "installed" also records the release's firmware and
 * security version as the device's.
 *
 * firmware_rollout_tick, run every second by `hearth serve`, moves active rollouts on: offers to
 * cohort devices not yet offered (at most FIRMWARE_OFFERS_PER_TICK per call, so a large fleet is
 * offered gradually and a failing release is stopped early), and aborts a rollout once its failures
 * (failed + rolled_back) exceed failure_threshold percent of the devices offered so far
 * (failures * 100 > threshold * offered). Aborting (by hand or automatically) sends every offered
 * device that has not finished (no installed/failed/rolled_back ack) a cancelling firmware manifest
 *   {"model", "rollout", "cancel": true}
 * so it does not start; pausing only stops new offers. */
#ifndef HEARTH_FIRMWARE_H
#define HEARTH_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "server/datadir.h"

#define FIRMWARE_DIR "firmware"                 /* under the data directory */
#define FIRMWARE_MAX_BYTES (512ULL * 1024 * 1024) /* largest image accepted */
#define FIRMWARE_VERSION_MAX 64                 /* bytes of a version string: [A-Za-z0-9._+-]{1,64} */
#define FIRMWARE_OFFERS_PER_TICK 64
#define FIRMWARE_THRESHOLD_DEFAULT 10           /* percent */
#define FIRMWARE_SECURITY_MAX 2147483647        /* largest security version (a 32-bit SQL INTEGER) */

struct firmware_release {
	char id[33];                   /* 32 hex, random */
	char model[65];
	char version[FIRMWARE_VERSION_MAX + 1];
	int64_t security_version;      /* >= 0 */
	char sha256[65];               /* lower-case hex */
	uint64_t size;
	int64_t created_at;
};

/* Add a release of model from the file at tmp_path (inside DIR/firmware, written by the caller;
 * renamed into place on success, left for the caller to delete otherwise). sha256/size: what the
 * caller computed while writing it (checked again here: HERR_INVALID if they do not match the
 * file). HERR_NOTFOUND: no such model; HERR_EXISTS: that model already has this version;
 * HERR_INVALID: a bad version string, a negative security version. Audited as actor. out: the
 * release. */
enum herr firmware_release_add(struct datadir *dd, const char *model, const char *version,
			       int64_t security_version, const char *tmp_path, const char *sha256,
			       uint64_t size, const char *actor, struct firmware_release *out);
/* A release by id (HERR_NOTFOUND). */
enum herr firmware_release_get(struct datadir *dd, const char *id, struct firmware_release *out);
/* Releases of model (all models if NULL), newest first. */
typedef int (*firmware_release_fn)(void *ctx, const struct firmware_release *r);
enum herr firmware_release_list(struct datadir *dd, const char *model, firmware_release_fn fn, void *ctx);
/* The image's path (DIR/firmware/<id>.bin) into buf. */
enum herr firmware_release_path(struct datadir *dd, const char *id, char *buf, size_t size);
/* DIR/firmware into buf, made (0700) if missing: where a caller writes an image before
 * firmware_release_add (on the same file system, so that moving it into place is a rename). */
enum herr firmware_dir(struct datadir *dd, char *buf, size_t size);
/* Copy an image from fd (read to its end) into a new temporary file in DIR/firmware (0600),
 * hashing it on the way: its path into tmp, its SHA-256 (lower-case hex) and size. HERR_TOOBIG
 * past FIRMWARE_MAX_BYTES, HERR_INVALID if empty; on failure nothing is left behind. */
enum herr firmware_stage(struct datadir *dd, int fd, char *tmp, size_t tmp_size, char sha256[65],
			 uint64_t *size);
/* Whether device id was offered release id by some rollout that is not aborted (a device may
 * download only then: an abort also withdraws the image). */
enum herr firmware_device_may_download(struct datadir *dd, const char *device, const char *release, int *ok);

enum firmware_cohort { FIRMWARE_COHORT_PERCENT, FIRMWARE_COHORT_LIST, FIRMWARE_COHORT_TAG };

struct firmware_rollout_spec {
	const char *release;           /* a release id */
	enum firmware_cohort kind;
	unsigned percent;              /* PERCENT: 1..100 */
	const char *const *devices;    /* LIST: ids (1..1000), each of the release's model */
	size_t device_count;
	const char *tag;               /* TAG */
	unsigned failure_threshold;    /* percent 0..100 (0: abort at the first failure) */
};

struct firmware_rollout {
	char id[33];
	char release[33];
	char model[65];
	char state[16];                /* "active", "paused", "aborted" */
	char cohort[16];               /* "percent", "list", "tag" */
	unsigned percent;              /* PERCENT */
	char tag[65];                  /* TAG */
	unsigned failure_threshold;
	char abort_reason[128];        /* "" unless aborted */
	int64_t created_at, updated_at;
	/* Devices by status in this rollout. */
	size_t offered, downloading, installed, failed, rolled_back;
};

/* Create (state active; the first offers go out on the next tick). HERR_NOTFOUND: no such
 * release; HERR_STATE: the model has an active or paused rollout; HERR_INVALID: a bad spec (*why
 * says what: static text). Audited as actor. */
enum herr firmware_rollout_create(struct datadir *dd, const struct firmware_rollout_spec *spec,
				  const char *actor, struct firmware_rollout *out, const char **why);
enum herr firmware_rollout_get(struct datadir *dd, const char *id, struct firmware_rollout *out);
typedef int (*firmware_rollout_fn)(void *ctx, const struct firmware_rollout *r);
/* Newest first. */
enum herr firmware_rollout_list(struct datadir *dd, firmware_rollout_fn fn, void *ctx);
/* Per-device status in a rollout, by device id. */
struct firmware_rollout_device {
	const char *device;
	int64_t manifest_version;
	const char *status;            /* offered, downloading, installed, failed, rolled_back */
	int64_t at;                    /* when offered, or of the last ack */
};
typedef int (*firmware_rollout_device_fn)(void *ctx, const struct firmware_rollout_device *d);
enum herr firmware_rollout_devices(struct datadir *dd, const char *id, firmware_rollout_device_fn fn, void *ctx);

/* A device's bucket 0..99 in a percent rollout (see above); it is in the cohort when bucket <
 * percent. */
unsigned firmware_bucket(const char *rollout, const char *device);

/* Widen a percent rollout (HERR_INVALID if not a percent cohort or percent is not above the
 * current one, up to 100). */
enum herr firmware_rollout_widen(struct datadir *dd, const char *id, unsigned percent, const char *actor);
/* active -> paused, paused -> active, active|paused -> aborted (reason for the audit log and the
 * rollout). HERR_STATE if the rollout is not in a state that allows it; HERR_NOTFOUND. */
enum herr firmware_rollout_pause(struct datadir *dd, const char *id, const char *actor);
enum herr firmware_rollout_resume(struct datadir *dd, const char *id, const char *actor);
enum herr firmware_rollout_abort(struct datadir *dd, const char *id, const char *actor, const char *reason);

/* Move every active rollout on at now (see above). *offers: manifests issued (may be NULL). */
enum herr firmware_rollout_tick(struct datadir *dd, int64_t now, size_t *offers);

/* What a device reported of itself (status topic): HERR_NOTFOUND for an unknown device. */
enum herr firmware_device_report(struct datadir *dd, const char *device, const char *firmware_version,
				 int64_t security_version);

#endif
