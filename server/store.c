#include "server/store.h"

#include <stdlib.h>
#include <string.h>

#include "server/migrations.h"
#include "server/store_backend.h"

struct store {
	const struct store_backend *be;
	void *impl;
};

enum herr store_wrap(const struct store_backend *be, void *impl, struct store **out)
{
	struct store *st = calloc(1, sizeof(*st));

	*out = NULL;
	if (!st) {
		be->close(impl);
		return HERR_NOMEM;
	}
	st->be = be;
	st->impl = impl;
	*out = st;
	return HERR_OK;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	st->be->close(st->impl);
	free(st);
}

int store_schema_latest(void)
{
	return migration_count > 0 ? migrations[migration_count - 1].version : 0;
}

int store_schema_version(struct store *st)
{
	return st->be->schema_version(st->impl);
}

enum herr store_begin(struct store *st)
{
	return st->be->begin(st->impl);
}

enum herr store_commit(struct store *st)
{
	return st->be->commit(st->impl);
}

void store_rollback(struct store *st)
{
	st->be->rollback(st->impl);
}

enum herr store_model_ensure(struct store *st, const char *name, int64_t now)
{
	return st->be->model_ensure(st->impl, name, now);
}

enum herr store_model_set_policy(struct store *st, const char *name, const char *policy, int64_t now)
{
	return st->be->model_set_policy(st->impl, name, policy, now);
}

enum herr store_model_get_policy(struct store *st, const char *name, char **policy)
{
	return st->be->model_get_policy(st->impl, name, policy);
}

enum herr store_model_list(struct store *st, store_model_fn fn, void *ctx)
{
	return st->be->model_list(st->impl, fn, ctx);
}

enum herr store_device_insert(struct store *st, const char *id, const char *model, int64_t now)
{
	return st->be->device_insert(st->impl, id, model, now);
}

enum herr store_device_get(struct store *st, const char *id, struct store_device *out)
{
	return st->be->device_get(st->impl, id, out);
}

enum herr store_device_revoke(struct store *st, const char *id, int64_t now, int *certs)
{
	return st->be->device_revoke(st->impl, id, now, certs);
}

enum herr store_device_list(struct store *st, store_device_fn fn, void *ctx)
{
	return st->be->device_list(st->impl, fn, ctx);
}

enum herr store_device_query(struct store *st, const struct store_device_filter *f, store_device_fn fn,
			     void *ctx)
{
	return st->be->device_query(st->impl, f, fn, ctx);
}

enum herr store_device_tags(struct store *st, const char *id, store_tag_fn fn, void *ctx)
{
	return st->be->device_tags(st->impl, id, fn, ctx);
}

enum herr store_device_set_tags(struct store *st, const char *id, const char *const *tags, size_t n)
{
	return st->be->device_set_tags(st->impl, id, tags, n);
}

enum herr store_device_set_model(struct store *st, const char *id, const char *model, int64_t now)
{
	return st->be->device_set_model(st->impl, id, model, now);
}

enum herr store_device_certs(struct store *st, const char *id, store_cert_row_fn fn, void *ctx)
{
	return st->be->device_certs(st->impl, id, fn, ctx);
}

enum herr store_client_insert(struct store *st, const char *id, const char *role, int64_t now)
{
	return st->be->client_insert(st->impl, id, role, now);
}

enum herr store_client_revoke(struct store *st, const char *id, int64_t now, int *certs)
{
	return st->be->client_revoke(st->impl, id, now, certs);
}

enum herr store_client_list(struct store *st, store_client_fn fn, void *ctx)
{
	return st->be->client_list(st->impl, fn, ctx);
}

enum herr store_identity_ok(struct store *st, const char *id, const char *serial, char *role)
{
	return st->be->identity_ok(st->impl, id, serial, role);
}

enum herr store_list_inactive_since(struct store *st, int64_t since, store_inactive_fn fn, void *ctx)
{
	return st->be->list_inactive_since(st->impl, since, fn, ctx);
}

enum herr store_retained_set(struct store *st, const char *topic, const uint8_t *payload, size_t len,
			     int qos, int64_t now)
{
	return st->be->retained_set(st->impl, topic, payload, len, qos, now);
}

enum herr store_retained_list(struct store *st, store_retained_fn fn, void *ctx)
{
	return st->be->retained_list(st->impl, fn, ctx);
}

enum herr store_device_decommission(struct store *st, const char *id, int64_t now, int *certs)
{
	return st->be->device_decommission(st->impl, id, now, certs);
}

enum herr store_cert_insert(struct store *st, const struct store_cert *cert)
{
	return st->be->cert_insert(st->impl, cert);
}

enum herr store_cert_list_revoked(struct store *st, int64_t now, store_revoked_fn fn, void *ctx)
{
	return st->be->cert_list_revoked(st->impl, now, fn, ctx);
}

enum herr store_crl_next_number(struct store *st, uint64_t *number)
{
	return st->be->crl_next_number(st->impl, number);
}

enum herr store_audit(struct store *st, int64_t at, const char *actor, const char *action,
		      const char *target, const char *detail)
{
	return store_audit_from(st, at, actor, NULL, action, target, detail);
}

enum herr store_audit_from(struct store *st, int64_t at, const char *actor, const char *source,
			   const char *action, const char *target, const char *detail)
{
	return st->be->audit_from(st->impl, at, actor, source, action, target, detail);
}

enum herr store_audit_list(struct store *st, int64_t before, size_t limit, store_audit_fn fn, void *ctx)
{
	return st->be->audit_list(st->impl, before, limit, fn, ctx);
}

enum herr store_telemetry_fold(struct store *st, const struct store_sample *s)
{
	if (s->n < 1)
		return HERR_INVALID;
	return st->be->telemetry_fold(st->impl, s);
}

enum herr store_last_seen(struct store *st, const char *device_id, int64_t bucket_start)
{
	return st->be->last_seen(st->impl, device_id, bucket_start);
}

enum herr store_dropped_add(struct store *st, const char *model, const char *field, int sensitive,
			    int64_t count)
{
	return st->be->dropped_add(st->impl, model, field, sensitive, count);
}

enum herr store_telemetry_query(struct store *st, const char *device_id, int64_t from, int64_t to,
				store_row_fn fn, void *ctx)
{
	return st->be->telemetry_query(st->impl, device_id, from, to, fn, ctx);
}

enum herr store_dropped_list(struct store *st, store_dropped_fn fn, void *ctx)
{
	return st->be->dropped_list(st->impl, fn, ctx);
}

enum herr store_device_model(struct store *st, const char *id, char *model)
{
	struct store_device d;
	enum herr rc = store_device_get(st, id, &d);

	if (rc == HERR_OK)
		memcpy(model, d.model, sizeof(d.model));
	return rc;
}

enum herr store_telemetry_closed(struct store *st, int64_t after, int64_t until, store_row_fn fn,
				 void *ctx)
{
	return st->be->telemetry_closed(st->impl, after, until, fn, ctx);
}

enum herr store_feed_get(struct store *st, int64_t *published_until)
{
	return st->be->feed_get(st->impl, published_until);
}

enum herr store_feed_set(struct store *st, int64_t published_until)
{
	return st->be->feed_set(st->impl, published_until);
}

enum herr store_bridge_state(struct store *st, struct store_bridge_state *out)
{
	return st->be->bridge_state(st->impl, out);
}

enum herr store_bridge_set_until(struct store *st, int64_t until)
{
	return st->be->bridge_set_until(st->impl, until);
}

enum herr store_bridge_set_connected(struct store *st, int connected, int64_t at)
{
	return st->be->bridge_set_connected(st->impl, connected, at);
}

enum herr store_bridge_outbox_add(struct store *st, const struct store_bridge_record *r)
{
	return st->be->bridge_outbox_add(st->impl, r);
}

enum herr store_bridge_outbox_trim(struct store *st, int64_t max_bytes, int64_t min_created, int64_t now,
				   int64_t *rows)
{
	return st->be->bridge_outbox_trim(st->impl, max_bytes, min_created, now, rows);
}

enum herr store_bridge_outbox_list(struct store *st, int64_t after, size_t limit, store_bridge_row_fn fn,
				   void *ctx)
{
	return st->be->bridge_outbox_list(st->impl, after, limit, fn, ctx);
}

enum herr store_bridge_outbox_delete(struct store *st, int64_t seq)
{
	return st->be->bridge_outbox_delete(st->impl, seq);
}

enum herr store_bridge_topic_add(struct store *st, const char *topic, const char *device_id, const char *kind)
{
	return st->be->bridge_topic_add(st->impl, topic, device_id, kind);
}

enum herr store_bridge_topic_delete(struct store *st, const char *topic)
{
	return st->be->bridge_topic_delete(st->impl, topic);
}

enum herr store_bridge_topics(struct store *st, const char *device_id, store_bridge_topic_fn fn, void *ctx)
{
	return st->be->bridge_topics(st->impl, device_id, fn, ctx);
}

enum herr store_telemetry_expire(struct store *st, int64_t now, int64_t limit, int64_t *deleted)
{
	return st->be->telemetry_expire(st->impl, now, limit, deleted);
}

int store_writers_waiting(struct store *st)
{
	return st->be->writers_waiting ? st->be->writers_waiting(st->impl) : 0;
}

void store_release_memory(struct store *st)
{
	if (st->be->release_memory)
		st->be->release_memory(st->impl);
}

enum herr store_checkpoint(struct store *st)
{
	return st->be->checkpoint ? st->be->checkpoint(st->impl) : HERR_OK;
}

enum herr store_api_token_insert(struct store *st, const struct store_api_token *t)
{
	return st->be->api_token_insert(st->impl, t);
}

enum herr store_api_token_get(struct store *st, const char *id, struct store_api_token *out)
{
	return st->be->api_token_get(st->impl, id, out);
}

enum herr store_api_token_touch(struct store *st, const char *id, int64_t now)
{
	return st->be->api_token_touch(st->impl, id, now);
}

enum herr store_api_token_list(struct store *st, store_api_token_fn fn, void *ctx)
{
	return st->be->api_token_list(st->impl, fn, ctx);
}

enum herr store_api_token_revoke(struct store *st, const char *name, int64_t now)
{
	return st->be->api_token_revoke(st->impl, name, now);
}

enum herr store_enroll_token_insert(struct store *st, const struct store_enroll_token *t)
{
	return st->be->enroll_token_insert(st->impl, t);
}

enum herr store_enroll_token_get(struct store *st, const char *id, struct store_enroll_token *out)
{
	return st->be->enroll_token_get(st->impl, id, out);
}

enum herr store_enroll_token_use(struct store *st, const char *id, const char *device_id, int64_t now)
{
	return st->be->enroll_token_use(st->impl, id, device_id, now);
}

enum herr store_enroll_token_list(struct store *st, const char *after, size_t limit,
				  store_enroll_token_fn fn, void *ctx)
{
	return st->be->enroll_token_list(st->impl, after, limit, fn, ctx);
}

enum herr store_enroll_token_revoke(struct store *st, const char *id, int64_t now)
{
	return st->be->enroll_token_revoke(st->impl, id, now);
}

enum herr store_manifest_next_version(struct store *st, const char *type, int64_t *version)
{
	return st->be->manifest_next_version(st->impl, type, version);
}

enum herr store_manifest_insert(struct store *st, struct store_manifest *m)
{
	return st->be->manifest_insert(st->impl, m);
}

enum herr store_manifest_list_since(struct store *st, int64_t after, size_t limit, store_manifest_fn fn,
				    void *ctx)
{
	return st->be->manifest_list_since(st->impl, after, limit, fn, ctx);
}

enum herr store_manifest_delivered(struct store *st, int64_t *seq)
{
	return st->be->manifest_delivered(st->impl, seq);
}

enum herr store_manifest_set_delivered(struct store *st, int64_t seq)
{
	return st->be->manifest_set_delivered(st->impl, seq);
}

enum herr store_manifest_for_device(struct store *st, const char *id, const char *type, int64_t version,
				    store_manifest_fn fn, void *ctx)
{
	return st->be->manifest_for_device(st->impl, id, type, version, fn, ctx);
}

enum herr store_manifest_ack(struct store *st, const char *id, const char *type, int64_t version,
			     const char *status, int64_t at)
{
	return st->be->manifest_ack(st->impl, id, type, version, status, at);
}

enum herr store_manifest_devices(struct store *st, const char *target, store_id_fn fn, void *ctx)
{
	return st->be->manifest_devices(st->impl, target, fn, ctx);
}

enum herr store_manifest_latest_target(struct store *st, const char *target, const char *type,
				       store_manifest_fn fn, void *ctx)
{
	return st->be->manifest_latest_target(st->impl, target, type, fn, ctx);
}

enum herr store_manifest_readiness(struct store *st, const char *type, int64_t version, int64_t seen_since,
				   store_ready_fn fn, void *ctx)
{
	return st->be->manifest_readiness(st->impl, type, version, seen_since, fn, ctx);
}

enum herr store_device_report(struct store *st, const char *id, const char *firmware_version,
			      int64_t security_version, int64_t now)
{
	/* When a device reported is kept to the day: a status report comes with every connection, and
	 * its exact time would say when someone came home (last_seen is coarse for the same reason). */
	return st->be->device_report(st->impl, id, firmware_version, security_version, now - now % 86400);
}

enum herr store_device_firmware(struct store *st, const char *id, struct store_device_firmware *out)
{
	return st->be->device_firmware(st->impl, id, out);
}

enum herr store_release_insert(struct store *st, const struct store_release *r)
{
	return st->be->release_insert(st->impl, r);
}

enum herr store_release_get(struct store *st, const char *id, struct store_release *out)
{
	return st->be->release_get(st->impl, id, out);
}

enum herr store_release_list(struct store *st, const char *model, store_release_fn fn, void *ctx)
{
	return st->be->release_list(st->impl, model, fn, ctx);
}

enum herr store_release_offered(struct store *st, const char *device, const char *release, int *offered)
{
	return st->be->release_offered(st->impl, device, release, offered);
}

enum herr store_rollout_insert(struct store *st, const struct store_rollout *r)
{
	return st->be->rollout_insert(st->impl, r);
}

enum herr store_rollout_member_add(struct store *st, const char *rollout, const char *device)
{
	return st->be->rollout_member_add(st->impl, rollout, device);
}

enum herr store_rollout_get(struct store *st, const char *id, struct store_rollout *out)
{
	return st->be->rollout_get(st->impl, id, out);
}

enum herr store_rollout_list(struct store *st, const char *state, store_rollout_fn fn, void *ctx)
{
	return st->be->rollout_list(st->impl, state, fn, ctx);
}

enum herr store_rollout_set_state(struct store *st, const char *id, const char *from, const char *to,
				  const char *reason, int64_t now)
{
	return st->be->rollout_set_state(st->impl, id, from, to, reason, now);
}

enum herr store_rollout_widen(struct store *st, const char *id, int64_t percent, int64_t now)
{
	return st->be->rollout_widen(st->impl, id, percent, now);
}

enum herr store_rollout_devices(struct store *st, const char *id, const char *after, size_t limit,
				store_rollout_device_fn fn, void *ctx)
{
	return st->be->rollout_devices(st->impl, id, after, limit, fn, ctx);
}

enum herr store_rollout_candidates(struct store *st, const char *id, const char *after, size_t limit,
				   store_id_fn fn, void *ctx)
{
	return st->be->rollout_candidates(st->impl, id, after, limit, fn, ctx);
}

enum herr store_rollout_offer(struct store *st, const char *rollout, const char *device,
			      int64_t manifest_version, int64_t now)
{
	return st->be->rollout_offer(st->impl, rollout, device, manifest_version, now);
}

enum herr store_rollout_installs_pending(struct store *st, size_t limit, store_rollout_install_fn fn,
					 void *ctx)
{
	return st->be->rollout_installs_pending(st->impl, limit, fn, ctx);
}

enum herr store_rollout_install_recorded(struct store *st, const char *rollout, const char *device,
					 int64_t now)
{
	return st->be->rollout_install_recorded(st->impl, rollout, device, now);
}
