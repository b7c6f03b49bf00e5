/* store_backend: the table of operations a store backend implements (private to the store files).
 * store.c dispatches through it, so a PostgreSQL backend is one more table, not a change of API. */
#ifndef HEARTH_STORE_BACKEND_H
#define HEARTH_STORE_BACKEND_H

#include "server/store.h"

struct store_backend {
	const char *name;
	void (*close)(void *impl);
	int (*schema_version)(void *impl);
	enum herr (*begin)(void *impl);
	enum herr (*commit)(void *impl);
	void (*rollback)(void *impl);
	enum herr (*model_ensure)(void *impl, const char *name, int64_t now);
	enum herr (*model_set_policy)(void *impl, const char *name, const char *policy, int64_t now);
	enum herr (*model_get_policy)(void *impl, const char *name, char **policy);
	enum herr (*model_list)(void *impl, store_model_fn fn, void *ctx);
	enum herr (*device_insert)(void *impl, const char *id, const char *model, int64_t now);
	enum herr (*device_get)(void *impl, const char *id, struct store_device *out);
	enum herr (*device_revoke)(void *impl, const char *id, int64_t now, int *certs);
	enum herr (*device_list)(void *impl, store_device_fn fn, void *ctx);
	enum herr (*device_query)(void *impl, const struct store_device_filter *f, store_device_fn fn,
				  void *ctx);
	enum herr (*device_tags)(void *impl, const char *id, store_tag_fn fn, void *ctx);
	enum herr (*device_set_tags)(void *impl, const char *id, const char *const *tags, size_t n);
	enum herr (*device_set_model)(void *impl, const char *id, const char *model, int64_t now);
	enum herr (*device_certs)(void *impl, const char *id, store_cert_row_fn fn, void *ctx);
	enum herr (*device_decommission)(void *impl, const char *id, int64_t now, int *certs);
	enum herr (*client_insert)(void *impl, const char *id, const char *role, int64_t now);
	enum herr (*client_revoke)(void *impl, const char *id, int64_t now, int *certs);
	enum herr (*client_list)(void *impl, store_client_fn fn, void *ctx);
	enum herr (*identity_ok)(void *impl, const char *id, const char *serial, char *role);
	enum herr (*list_inactive_since)(void *impl, int64_t since, store_inactive_fn fn, void *ctx);
	enum herr (*cert_insert)(void *impl, const struct store_cert *cert);
	enum herr (*cert_list_revoked)(void *impl, int64_t now, store_revoked_fn fn, void *ctx);
	enum herr (*crl_next_number)(void *impl, uint64_t *number);
	enum herr (*retained_set)(void *impl, const char *topic, const uint8_t *payload, size_t len,
				  int qos, int64_t now);
	enum herr (*retained_list)(void *impl, store_retained_fn fn, void *ctx);
	enum herr (*telemetry_fold)(void *impl, const struct store_sample *s);
	enum herr (*last_seen)(void *impl, const char *device_id, int64_t bucket_start);
	enum herr (*dropped_add)(void *impl, const char *model, const char *field, int sensitive,
				 int64_t count);
	enum herr (*telemetry_query)(void *impl, const char *device_id, int64_t from, int64_t to,
				     store_row_fn fn, void *ctx);
	enum herr (*dropped_list)(void *impl, store_dropped_fn fn, void *ctx);
	enum herr (*telemetry_closed)(void *impl, int64_t after, int64_t until, store_row_fn fn,
				      void *ctx);
	enum herr (*feed_get)(void *impl, int64_t *published_until);
	enum herr (*feed_set)(void *impl, int64_t published_until);
	enum herr (*bridge_state)(void *impl, struct store_bridge_state *out);
	enum herr (*bridge_set_until)(void *impl, int64_t until);
	enum herr (*bridge_set_connected)(void *impl, int connected, int64_t at);
	enum herr (*bridge_outbox_add)(void *impl, const struct store_bridge_record *r);
	enum herr (*bridge_outbox_trim)(void *impl, int64_t max_bytes, int64_t min_created, int64_t now,
					int64_t *rows);
	enum herr (*bridge_outbox_list)(void *impl, int64_t after, size_t limit, store_bridge_row_fn fn,
					void *ctx);
	enum herr (*bridge_outbox_delete)(void *impl, int64_t seq);
	enum herr (*bridge_topic_add)(void *impl, const char *topic, const char *device_id, const char *kind);
	enum herr (*bridge_topic_delete)(void *impl, const char *topic);
	enum herr (*bridge_topics)(void *impl, const char *device_id, store_bridge_topic_fn fn, void *ctx);
	enum herr (*manifest_next_version)(void *impl, const char *type, int64_t *version);
	enum herr (*manifest_insert)(void *impl, struct store_manifest *m);
	enum herr (*manifest_list_since)(void *impl, int64_t after, size_t limit, store_manifest_fn fn,
					 void *ctx);
	enum herr (*manifest_delivered)(void *impl, int64_t *seq);
	enum herr (*manifest_set_delivered)(void *impl, int64_t seq);
	enum herr (*manifest_for_device)(void *impl, const char *id, const char *type, int64_t version,
					 store_manifest_fn fn, void *ctx);
	enum herr (*manifest_latest_target)(void *impl, const char *target, const char *type,
					    store_manifest_fn fn, void *ctx);
	enum herr (*manifest_readiness)(void *impl, const char *type, int64_t version, int64_t seen_since,
					store_ready_fn fn, void *ctx);
	enum herr (*manifest_ack)(void *impl, const char *id, const char *type, int64_t version,
				  const char *status, int64_t at);
	enum herr (*manifest_devices)(void *impl, const char *target, store_id_fn fn, void *ctx);
	enum herr (*telemetry_expire)(void *impl, int64_t now, int64_t limit, int64_t *deleted);
	enum herr (*checkpoint)(void *impl);
	void (*release_memory)(void *impl);
	int (*writers_waiting)(void *impl);
	enum herr (*audit_from)(void *impl, int64_t at, const char *actor, const char *source,
				const char *action, const char *target, const char *detail);
	enum herr (*audit_list)(void *impl, int64_t before, size_t limit, store_audit_fn fn, void *ctx);
	enum herr (*api_token_insert)(void *impl, const struct store_api_token *t);
	enum herr (*api_token_get)(void *impl, const char *id, struct store_api_token *out);
	enum herr (*api_token_touch)(void *impl, const char *id, int64_t now);
	enum herr (*api_token_list)(void *impl, store_api_token_fn fn, void *ctx);
	enum herr (*api_token_revoke)(void *impl, const char *name, int64_t now);
	enum herr (*enroll_token_insert)(void *impl, const struct store_enroll_token *t);
	enum herr (*enroll_token_get)(void *impl, const char *id, struct store_enroll_token *out);
	enum herr (*enroll_token_use)(void *impl, const char *id, const char *device_id, int64_t now);
	enum herr (*enroll_token_list)(void *impl, const char *after, size_t limit,
				       store_enroll_token_fn fn, void *ctx);
	enum herr (*enroll_token_revoke)(void *impl, const char *id, int64_t now);
	enum herr (*device_report)(void *impl, const char *id, const char *firmware_version,
				   int64_t security_version, int64_t now);
	enum herr (*device_firmware)(void *impl, const char *id, struct store_device_firmware *out);
	enum herr (*release_insert)(void *impl, const struct store_release *r);
	enum herr (*release_get)(void *impl, const char *id, struct store_release *out);
	enum herr (*release_list)(void *impl, const char *model, store_release_fn fn, void *ctx);
	enum herr (*release_offered)(void *impl, const char *device, const char *release, int *offered);
	enum herr (*rollout_insert)(void *impl, const struct store_rollout *r);
	enum herr (*rollout_member_add)(void *impl, const char *rollout, const char *device);
	enum herr (*rollout_get)(void *impl, const char *id, struct store_rollout *out);
	enum herr (*rollout_list)(void *impl, const char *state, store_rollout_fn fn, void *ctx);
	enum herr (*rollout_set_state)(void *impl, const char *id, const char *from, const char *to,
				       const char *reason, int64_t now);
	enum herr (*rollout_widen)(void *impl, const char *id, int64_t percent, int64_t now);
	enum herr (*rollout_devices)(void *impl, const char *id, const char *after, size_t limit,
				     store_rollout_device_fn fn, void *ctx);
	enum herr (*rollout_candidates)(void *impl, const char *id, const char *after, size_t limit,
					store_id_fn fn, void *ctx);
	enum herr (*rollout_offer)(void *impl, const char *rollout, const char *device,
				   int64_t manifest_version, int64_t now);
	enum herr (*rollout_installs_pending)(void *impl, size_t limit, store_rollout_install_fn fn,
					      void *ctx);
	enum herr (*rollout_install_recorded)(void *impl, const char *rollout, const char *device,
					      int64_t now);
};

/* Wrap an opened backend instance in a store; on failure closes impl. */
enum herr store_wrap(const struct store_backend *be, void *impl, struct store **out);

#endif
