/* store: everything hearth keeps in its database, behind one interface. All SQL lives in the
 * backends (store_sqlite.c is the embedded default); no other module assumes a backend or that one
 * process owns the data. Strings in results are copied into fixed fields of bounded size. */
#ifndef HEARTH_STORE_H
#define HEARTH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"

struct store;

struct store_device {
	char id[65];
	char model[65];
	char status[16];          /* "active", "revoked", "decommissioned" */
	int64_t created_at;
	int64_t revoked_at;       /* when it stopped being active (revoked, then decommissioned); 0 if never */
	int64_t cert_not_after;   /* latest valid certificate's expiry; 0 if none */
	int64_t last_seen;        /* start of the (coarse) last-seen bucket; 0 if never seen */
};

/* Which devices a listing returns: NULL/0 fields do not filter. Ordered by id; after is the
 * cursor (the last id of the previous page), limit at most STORE_PAGE_MAX. */
#define STORE_PAGE_MAX 1000
struct store_device_filter {
	const char *model, *status, *tag;
	int64_t seen_since;       /* last seen at or after */
	const char *after;
	size_t limit;
};

/* An integration client: a certificate identity that is not a device (see 0004_clients.sql). */
struct store_client {
	char id[65];
	char role[16];            /* "integration" */
	char status[16];          /* "active", "revoked" */
	int64_t created_at;
	int64_t revoked_at;       /* 0 if never */
	int64_t cert_not_after;   /* latest valid certificate's expiry; 0 if none */
};

struct store_cert {
	const char *serial;       /* upper-case hex */
	const char *kind;         /* "root", "issuing", "endpoint", "device", "client" */
	const char *device_id;    /* only for kind "device" */
	const char *client_id;    /* only for kind "client" */
	const char *subject;
	const char *fingerprint;  /* hex SHA-256 of the DER */
	int64_t not_before, not_after;
	const char *pem;
};

/* Called once per row; a non-zero return stops the listing early (not an error). */
typedef int (*store_device_fn)(void *ctx, const struct store_device *device);
typedef int (*store_client_fn)(void *ctx, const struct store_client *client);
typedef int (*store_revoked_fn)(void *ctx, const char *serial, int64_t revoked_at);
/* status: "revoked" or "decommissioned" */
typedef int (*store_inactive_fn)(void *ctx, const char *id, const char *status);
typedef int (*store_id_fn)(void *ctx, const char *id);
typedef int (*store_retained_fn)(void *ctx, const char *topic, const uint8_t *payload, size_t len,
				 int qos);

/* Open (creating if needed) the embedded SQLite database at path and bring its schema up to date.
 * HERR_SCHEMA if the database was written by a newer hearth. */
enum herr store_open_sqlite(const char *path, struct store **out);
void store_close(struct store *st);

/* The schema version the database is at, and the newest one this binary knows. */
int store_schema_version(struct store *st);
int store_schema_latest(void);

/* Group several changes so they land together or not at all. */
enum herr store_begin(struct store *st);
enum herr store_commit(struct store *st);
void store_rollback(struct store *st);

/* Create the model if it does not exist yet (a model with no policy keeps nothing). */
enum herr store_model_ensure(struct store *st, const char *name, int64_t now);
/* Create the model or replace its policy (a validated policy JSON text). */
enum herr store_model_set_policy(struct store *st, const char *name, const char *policy, int64_t now);
/* The model's policy text as a new string (caller frees), NULL if it has none; HERR_NOTFOUND if
 * there is no such model. */
enum herr store_model_get_policy(struct store *st, const char *name, char **policy);
typedef int (*store_model_fn)(void *ctx, const char *name, int has_policy, int64_t devices);
enum herr store_model_list(struct store *st, store_model_fn fn, void *ctx);

/* HERR_EXISTS if a device or client with that id was ever added, HERR_INVALID if the model is
 * unknown. */
enum herr store_device_insert(struct store *st, const char *id, const char *model, int64_t now);
enum herr store_device_get(struct store *st, const char *id, struct store_device *out);
/* Mark a device revoked and all its valid certificates with it; *certs counts those.
 * HERR_NOTFOUND for an unknown id, HERR_STATE if it is not active. */
enum herr store_device_revoke(struct store *st, const char *id, int64_t now, int *certs);
enum herr store_device_list(struct store *st, store_device_fn fn, void *ctx);
enum herr store_device_query(struct store *st, const struct store_device_filter *f, store_device_fn fn,
			     void *ctx);
/* A device's tags (sorted), and replacing them all; HERR_NOTFOUND for an unknown device. */
typedef int (*store_tag_fn)(void *ctx, const char *tag);
enum herr store_device_tags(struct store *st, const char *id, store_tag_fn fn, void *ctx);
enum herr store_device_set_tags(struct store *st, const char *id, const char *const *tags, size_t n);
/* Move a device to another model (created if needed); HERR_NOTFOUND for an unknown device. */
enum herr store_device_set_model(struct store *st, const char *id, const char *model, int64_t now);
/* A device's certificates, newest first. */
struct store_cert_row {
	const char *serial, *status, *fingerprint;
	int64_t not_before, not_after, revoked_at;
};
typedef int (*store_cert_row_fn)(void *ctx, const struct store_cert_row *c);
enum herr store_device_certs(struct store *st, const char *id, store_cert_row_fn fn, void *ctx);
/* Decommission: revoke the device's valid certificates (*certs counts them), mark it
 * decommissioned, and delete everything stored about it (telemetry, last-seen, tags, retained
 * messages, records waiting in the bridge's outbox). HERR_NOTFOUND for an unknown id, HERR_STATE if already decommissioned. */
enum herr store_device_decommission(struct store *st, const char *id, int64_t now, int *certs);

/* Integration clients. insert: HERR_EXISTS if a device or client holds the id, HERR_INVALID for
 * an unknown role. revoke: as store_device_revoke. */
enum herr store_client_insert(struct store *st, const char *id, const char *role, int64_t now);
enum herr store_client_revoke(struct store *st, const char *id, int64_t now, int *certs);
enum herr store_client_list(struct store *st, store_client_fn fn, void *ctx);

/* May this certificate connect? HERR_OK if serial is a valid certificate of the active device or
 * client id, and role (STORE_ROLE_MAX bytes) receives "device" or the client's role;
 * HERR_NOTFOUND if unknown; HERR_STATE if revoked or inactive. */
#define STORE_ROLE_MAX 16
enum herr store_identity_ok(struct store *st, const char *id, const char *serial, char *role);
/* Devices and clients that stopped being active at or after since (revocation, decommission). */
enum herr store_list_inactive_since(struct store *st, int64_t since, store_inactive_fn fn, void *ctx);

enum herr store_cert_insert(struct store *st, const struct store_cert *cert);
/* Revoked certificates not yet expired at now: what a CRL must list. */
enum herr store_cert_list_revoked(struct store *st, int64_t now, store_revoked_fn fn, void *ctx);

/* Take the next CRL number (monotonic, never reused). */
enum herr store_crl_next_number(struct store *st, uint64_t *number);

/* Retained messages: replace (len > 0) or delete (len == 0) one topic's, and read all back. */
enum herr store_retained_set(struct store *st, const char *topic, const uint8_t *payload, size_t len,
			     int qos, int64_t now);
enum herr store_retained_list(struct store *st, store_retained_fn fn, void *ctx);

/* Minimized telemetry (see schema/migrations/0003_telemetry.sql). */
struct store_sample {
	const char *device_id, *field;
	int64_t bucket_start;
	uint32_t bucket_s, retention_days;
	const char *agg;          /* "none", "mean", "min", "max", "last", "count" */
	int64_t n;                /* samples folded into value, >= 1: a mean's value is their sum */
	double value;
	const char *text;         /* strings; NULL for numbers */
};
/* Fold n kept values into their bucket's aggregate (insert or update); n < 1 is HERR_INVALID. */
enum herr store_telemetry_fold(struct store *st, const struct store_sample *s);
enum herr store_last_seen(struct store *st, const char *device_id, int64_t bucket_start);
enum herr store_dropped_add(struct store *st, const char *model, const char *field, int sensitive,
			    int64_t count);
struct store_row {
	const char *device_id, *field, *agg, *text;
	int64_t bucket_start, n;
	uint32_t bucket_s;
	double value;             /* the aggregate: for mean already divided by n */
	int has_value;
	uint32_t retention_days;
};
typedef int (*store_row_fn)(void *ctx, const struct store_row *row);
enum herr store_telemetry_query(struct store *st, const char *device_id, int64_t from, int64_t to,
				store_row_fn fn, void *ctx);
typedef int (*store_dropped_fn)(void *ctx, const char *model, const char *field, int sensitive,
				int64_t count);
enum herr store_dropped_list(struct store *st, store_dropped_fn fn, void *ctx);
/* Rows of buckets that closed (bucket_start + bucket_s) in (after, until], by device, bucket and
 * field. Buckets are at most STORE_BUCKET_MAX_S long (the policy's limit). */
#define STORE_BUCKET_MAX_S (86400 * 7)
enum herr store_telemetry_closed(struct store *st, int64_t after, int64_t until, store_row_fn fn,
				 void *ctx);
/* Where the minimized feed got to (HERR_NOTFOUND before its first record), and moving it on. */
enum herr store_feed_get(struct store *st, int64_t *published_until);
enum herr store_feed_set(struct store *st, int64_t published_until);
/* The northbound bridge (schema/migrations/0008_bridge.sql, server/bridge.h). */
struct store_bridge_state {
	int64_t until;            /* records of buckets closed at or before this are queued; 0: never ran */
	int64_t dropped;          /* records that left the outbox unsent, ever */
	int64_t rows, bytes;      /* in the outbox now */
	int64_t oldest;           /* created_at of the oldest row; 0 if it is empty */
	int connected;            /* as the running server last recorded it */
	int64_t changed_at;       /* when that changed; 0: never */
};
enum herr store_bridge_state(struct store *st, struct store_bridge_state *out);
enum herr store_bridge_set_until(struct store *st, int64_t until);
enum herr store_bridge_set_connected(struct store *st, int connected, int64_t at);
/* Queue a record (payload: len bytes of UTF-8 text) under the next sequence number. */
struct store_bridge_record {
	const char *device_id, *topic, *payload;
	size_t len;
	int retain;
	int64_t created_at, expires_at;
};
enum herr store_bridge_outbox_add(struct store *st, const struct store_bridge_record *r);
/* Drop rows, oldest first, until the outbox holds at most max_bytes, none created before
 * min_created and none expired at now; they are added to the dropped count. *rows (may be NULL)
 * counts them. */
enum herr store_bridge_outbox_trim(struct store *st, int64_t max_bytes, int64_t min_created, int64_t now,
				   int64_t *rows);
/* Rows with seq > after, in seq order, at most limit. */
struct store_bridge_row {
	int64_t seq;
	const char *topic, *payload;
	size_t len;
	int retain;
};
typedef int (*store_bridge_row_fn)(void *ctx, const struct store_bridge_row *r);
enum herr store_bridge_outbox_list(struct store *st, int64_t after, size_t limit, store_bridge_row_fn fn,
				   void *ctx);
/* The broker acknowledged it (a row already gone is no error). */
enum herr store_bridge_outbox_delete(struct store *st, int64_t seq);
/* Retained topics hearth set on the broker, by device; kind is "status" or "config". */
enum herr store_bridge_topic_add(struct store *st, const char *topic, const char *device_id, const char *kind);
enum herr store_bridge_topic_delete(struct store *st, const char *topic);
typedef int (*store_bridge_topic_fn)(void *ctx, const char *topic, const char *kind);
enum herr store_bridge_topics(struct store *st, const char *device_id, store_bridge_topic_fn fn, void *ctx);
/* Delete telemetry past its retention at now, at most limit rows (negative: all); *deleted (may be
 * NULL) counts rows. Fewer than limit deleted means none is left. */
enum herr store_telemetry_expire(struct store *st, int64_t now, int64_t limit, int64_t *deleted);
/* Fold the write-ahead log back into the database and empty it, so no file keeps superseded
 * versions of rows (partial aggregates). Backends without such a log do nothing. */
enum herr store_checkpoint(struct store *st);
/* Give back the memory the backend caches for this handle (SQLite's page cache); it fills again as
 * it is used. For a handle that goes quiet after a burst (server/handshake.c). */
void store_release_memory(struct store *st);
/* 1 while another handle on the same database (any thread or process) waits in store_begin for
 * the write lock. A caller that writes back to back (the endpoint's group commit) lets it in
 * before it begins again: SQLite's lock is not fair, and a revocation must not starve. */
int store_writers_waiting(struct store *st);
/* Device id -> model name (into model, 65 bytes). */
enum herr store_device_model(struct store *st, const char *id, char *model);

/* REST API tokens (schema/migrations/0005_api.sql). Text fields are copied; hash is hex SHA-256. */
struct store_api_token {
	char id[17];
	char name[65];
	char hash[65];
	char scope[16];
	int64_t created_at, expires_at, last_used_at, revoked_at; /* 0: never / not set */
};
typedef int (*store_api_token_fn)(void *ctx, const struct store_api_token *t);
/* HERR_EXISTS if the name (or id) is taken. expires_at 0: does not expire. */
enum herr store_api_token_insert(struct store *st, const struct store_api_token *t);
enum herr store_api_token_get(struct store *st, const char *id, struct store_api_token *out);
enum herr store_api_token_touch(struct store *st, const char *id, int64_t now);
enum herr store_api_token_list(struct store *st, store_api_token_fn fn, void *ctx);
/* HERR_NOTFOUND for an unknown name, HERR_STATE if already revoked. */
enum herr store_api_token_revoke(struct store *st, const char *name, int64_t now);

/* Enrollment tokens. */
struct store_enroll_token {
	char id[17];
	char hash[65];
	char model[65];
	char device_id[65];       /* "" if any id may enroll */
	char created_by[96];
	char used_by[65];
	int64_t created_at, expires_at, used_at, revoked_at; /* 0: not set */
};
typedef int (*store_enroll_token_fn)(void *ctx, const struct store_enroll_token *t);
/* HERR_INVALID if the model does not exist. */
enum herr store_enroll_token_insert(struct store *st, const struct store_enroll_token *t);
enum herr store_enroll_token_get(struct store *st, const char *id, struct store_enroll_token *out);
/* Spend the token for device_id: HERR_OK exactly once for an unused, unrevoked token not expired
 * at now; HERR_STATE otherwise (used, revoked, expired), HERR_NOTFOUND if there is none. */
enum herr store_enroll_token_use(struct store *st, const char *id, const char *device_id, int64_t now);
/* By id, those after the cursor after ("" for the first page), at most limit. */
enum herr store_enroll_token_list(struct store *st, const char *after, size_t limit,
				  store_enroll_token_fn fn, void *ctx);
/* HERR_NOTFOUND, or HERR_STATE if already used or revoked. */
enum herr store_enroll_token_revoke(struct store *st, const char *id, int64_t now);

/* Signed manifests (schema/migrations/0006_manifests.sql). target is "device:<id>",
 * "model:<name>" or "all"; type "pins", "firmware" or "keys". */
struct store_manifest {
	int64_t seq, version, issued_at, expires_at;
	const char *target, *type, *envelope;
};
typedef int (*store_manifest_fn)(void *ctx, const struct store_manifest *m);
/* The next version of type (one counter per type for the whole installation). */
enum herr store_manifest_next_version(struct store *st, const char *type, int64_t *version);
/* Record a manifest (m->seq is ignored and set). HERR_EXISTS if its type and version exist. */
enum herr store_manifest_insert(struct store *st, struct store_manifest *m);
/* Manifests with seq > after, in order, at most limit. */
enum herr store_manifest_list_since(struct store *st, int64_t after, size_t limit, store_manifest_fn fn,
				    void *ctx);
/* How far the endpoint published (a seq), and moving it on. */
enum herr store_manifest_delivered(struct store *st, int64_t *seq);
enum herr store_manifest_set_delivered(struct store *st, int64_t seq);
/* The manifest of type for device id (addressed to it, its model or all) with that version, or
 * the newest if version is 0, into fn once; HERR_NOTFOUND if none. */
enum herr store_manifest_for_device(struct store *st, const char *id, const char *type, int64_t version,
				    store_manifest_fn fn, void *ctx);
/* The newest manifest of type addressed exactly to target ("all", ...), into fn once; HERR_NOTFOUND
 * if none. */
enum herr store_manifest_latest_target(struct store *st, const char *target, const char *type,
				       store_manifest_fn fn, void *ctx);
/* Active devices last seen at or after seen_since, each with whether it acknowledged ("applied") a
 * manifest of type with a version >= version. */
typedef int (*store_ready_fn)(void *ctx, const char *id, int acked);
enum herr store_manifest_readiness(struct store *st, const char *type, int64_t version, int64_t seen_since,
				   store_ready_fn fn, void *ctx);
/* A device's acknowledgement of a manifest (the last status per device, type and version wins). */
enum herr store_manifest_ack(struct store *st, const char *id, const char *type, int64_t version,
			     const char *status, int64_t at);
/* The active devices addressed by a model target, or the one of a device target (for delivery). */
enum herr store_manifest_devices(struct store *st, const char *target, store_id_fn fn, void *ctx);

/* What a device reported of itself: firmware_version (NULL: unchanged) and security_version (the
 * largest ever reported or installed is kept: it never goes down, so -1 leaves it). Opens no
 * transaction (the broker calls it inside its group commit). HERR_NOTFOUND for an unknown device. */
enum herr store_device_report(struct store *st, const char *id, const char *firmware_version,
			      int64_t security_version, int64_t now);
/* The same as read back ("" and 0 if it never reported; reported_at is the start of the UTC day). */
struct store_device_firmware {
	char firmware_version[65];
	int64_t security_version, reported_at;
};
enum herr store_device_firmware(struct store *st, const char *id, struct store_device_firmware *out);

/* Firmware releases and rollouts (schema/migrations/0007_firmware.sql; the rules are in
 * server/firmware.h). */
struct store_release {
	char id[33];
	char model[65];
	char version[65];
	char sha256[65];
	int64_t security_version, size, created_at;
};
typedef int (*store_release_fn)(void *ctx, const struct store_release *r);
/* HERR_NOTFOUND if the model does not exist; HERR_EXISTS if it has a release of that version. */
enum herr store_release_insert(struct store *st, const struct store_release *r);
enum herr store_release_get(struct store *st, const char *id, struct store_release *out);
/* The releases of model (every model if NULL), newest first. */
enum herr store_release_list(struct store *st, const char *model, store_release_fn fn, void *ctx);

/* A rollout. The device counts are filled when reading, by status: a device's status is its ack of
 * the manifest version it was offered when that says downloading, installed, failed or
 * rolled_back, and "offered" otherwise (no ack yet, received, applied, ...). */
struct store_rollout {
	char id[33];
	char release[33];
	char model[65];
	char state[16];           /* "active", "paused", "aborted" */
	char cohort[16];          /* "percent", "list", "tag" */
	char tag[65];             /* "" unless a tag cohort */
	char abort_reason[128];   /* "" unless aborted */
	int64_t percent;          /* 0 unless a percent cohort */
	int64_t failure_threshold, created_at, updated_at;
	int64_t offered, downloading, installed, failed, rolled_back;
};
typedef int (*store_rollout_fn)(void *ctx, const struct store_rollout *r);
/* Record a rollout (state, cohort and its parameters from r; counts ignored). HERR_NOTFOUND if the
 * release does not exist, HERR_STATE if r->model has an active or paused rollout. */
enum herr store_rollout_insert(struct store *st, const struct store_rollout *r);
/* Add a device to a list cohort (a second time changes nothing). */
enum herr store_rollout_member_add(struct store *st, const char *rollout, const char *device);
enum herr store_rollout_get(struct store *st, const char *id, struct store_rollout *out);
/* Rollouts in state (every state if NULL), newest first. */
enum herr store_rollout_list(struct store *st, const char *state, store_rollout_fn fn, void *ctx);
/* Move a rollout from state from (one of several: "active|paused") to state to, with the reason
 * (may be NULL) as its abort reason. HERR_NOTFOUND, or HERR_STATE if it is not in from. */
enum herr store_rollout_set_state(struct store *st, const char *id, const char *from, const char *to,
				  const char *reason, int64_t now);
/* A percent cohort's new percent; HERR_NOTFOUND, HERR_STATE if aborted, HERR_INVALID if not a
 * percent cohort or not above the current percent (up to 100). */
enum herr store_rollout_widen(struct store *st, const char *id, int64_t percent, int64_t now);
/* The devices a rollout offered its release to, by device id after the cursor after ("" for the
 * first), at most limit: status as above (static text), at when that ack came or else when
 * offered. */
struct store_rollout_device {
	const char *device, *status;
	int64_t manifest_version, offered_at, at;
};
typedef int (*store_rollout_device_fn)(void *ctx, const struct store_rollout_device *d);
enum herr store_rollout_devices(struct store *st, const char *id, const char *after, size_t limit,
				store_rollout_device_fn fn, void *ctx);
/* Devices a rollout may offer to next, by id after the cursor after ("" for the first), at most
 * limit: active, of its model, in its list or tag cohort (a percent cohort's bucket is the
 * caller's to test), not yet offered by it, reporting a security version at or below the
 * release's and a firmware version other than the release's. */
enum herr store_rollout_candidates(struct store *st, const char *id, const char *after, size_t limit,
				   store_id_fn fn, void *ctx);
/* Record that rollout offered its release to device with the manifest of that version. */
enum herr store_rollout_offer(struct store *st, const char *rollout, const char *device,
			      int64_t manifest_version, int64_t now);
/* Offered devices (of any rollout) that acknowledged "installed" and were not yet recorded, at
 * most limit; and recording one (once). */
struct store_rollout_install {
	const char *rollout, *device, *version;
	int64_t security_version;
};
typedef int (*store_rollout_install_fn)(void *ctx, const struct store_rollout_install *i);
enum herr store_rollout_installs_pending(struct store *st, size_t limit, store_rollout_install_fn fn,
					 void *ctx);
enum herr store_rollout_install_recorded(struct store *st, const char *rollout, const char *device,
					 int64_t now);
/* Whether some rollout that is not aborted offered release to device. */
enum herr store_release_offered(struct store *st, const char *device, const char *release, int *offered);

/* Append to the audit log: who did what to which thing, when. detail may be NULL. */
enum herr store_audit(struct store *st, int64_t at, const char *actor, const char *action,
		      const char *target, const char *detail);
/* The same, with where the request came from (an address; NULL for the host's CLI). */
enum herr store_audit_from(struct store *st, int64_t at, const char *actor, const char *source,
			   const char *action, const char *target, const char *detail);
/* Newest first: entries with id < before (0: from the newest), at most limit. */
struct store_audit_row {
	int64_t id, at;
	const char *actor, *source, *action, *target, *detail; /* source, target, detail may be NULL */
};
typedef int (*store_audit_fn)(void *ctx, const struct store_audit_row *r);
enum herr store_audit_list(struct store *st, int64_t before, size_t limit, store_audit_fn fn, void *ctx);

#endif
