#include "server/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/key.h"
#include "common/log.h"

static enum herr sign_with_key(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig, size_t size,
			       size_t *sig_len)
{
	return ca_key_sign(ctx, msg, len, sig, size, sig_len);
}

static const char *device_field(const char *target)
{
	const char *colon = strchr(target, ':');

	return colon ? colon + 1 : "*";
}

static json_t *make_body(const json_t *fields, const char *target, const char *type, int64_t version,
			 int64_t now, unsigned days)
{
	static const char *const common[] = { "type", "device", "version", "issued", "expires", NULL };
	json_t *body;
	size_t i;

	for (i = 0; fields && common[i]; i++) {
		if (json_object_get(fields, common[i])) {
			log_err("manifest: \"%s\" is set by hearth, not by the fields given", common[i]);
			return NULL;
		}
	}
	body = fields ? json_deep_copy(fields) : json_object();
	if (!body || json_object_set_new(body, "type", json_string(type)) != 0 ||
	    json_object_set_new(body, "device", json_string(device_field(target))) != 0 ||
	    json_object_set_new(body, "version", json_integer(version)) != 0 ||
	    json_object_set_new(body, "issued", json_integer(now)) != 0 ||
	    json_object_set_new(body, "expires", json_integer(now + (int64_t)days * 86400)) != 0) {
		json_decref(body);
		return NULL;
	}
	return body;
}

enum herr manifest_issue(struct datadir *dd, const char *target, const char *type, const json_t *fields,
			 unsigned days, const char *actor, int in_tx, struct manifest_issued *out)
{
	return manifest_issue_cosigned(dd, target, type, fields, days, actor, in_tx, NULL, out);
}

enum herr manifest_signer(struct ca_key *key, struct dsse_signer *signer)
{
	uint8_t spki[DSSE_SPKI_MAX];
	size_t spki_len = 0;
	enum herr rc = ca_key_spki(key, spki, sizeof(spki), &spki_len);

	memset(signer, 0, sizeof(*signer));
	if (rc != HERR_OK)
		return rc;
	dsse_keyid(spki, spki_len, signer->keyid);
	signer->sign = sign_with_key;
	signer->ctx = key;
	return HERR_OK;
}

enum herr manifest_issue_cosigned(struct datadir *dd, const char *target, const char *type,
				  const json_t *fields, unsigned days, const char *actor, int in_tx,
				  struct ca_key *extra, struct manifest_issued *out)
{
	struct dsse_signer signers[2];
	struct store_manifest m;
	struct ca_key *key = NULL;
	char path[PATH_MAX], detail[96], *text = NULL, *env = NULL;
	size_t env_len = 0;
	int64_t now = (int64_t)time(NULL);
	json_t *body = NULL;
	int began = 0;
	enum herr rc;

	memset(out, 0, sizeof(*out));
	if (fields && !json_is_object(fields))
		return HERR_INVALID;
	if (days == 0)
		days = MANIFEST_DAYS_DEFAULT;
	if ((rc = datadir_file(dd, DATADIR_MANIFEST_KEY, path, sizeof(path))) != HERR_OK ||
	    (rc = ca_key_load(path, &key)) != HERR_OK || (rc = manifest_signer(key, &signers[0])) != HERR_OK ||
	    (extra && (rc = manifest_signer(extra, &signers[1])) != HERR_OK))
		goto out;
	if (!in_tx) {
		if ((rc = store_begin(dd->store)) != HERR_OK)
			goto out;
		began = 1;
	}
	if ((rc = store_manifest_next_version(dd->store, type, &out->version)) != HERR_OK)
		goto out;
	body = make_body(fields, target, type, out->version, now, days);
	text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (!text) {
		rc = body ? HERR_NOMEM : HERR_INVALID;
		goto out;
	}
	if ((rc = dsse_sign((const uint8_t *)text, strlen(text), signers, extra ? 2 : 1, &env, &env_len)) != HERR_OK)
		goto out;
	m = (struct store_manifest){ .target = target, .type = type, .version = out->version, .issued_at = now,
				     .expires_at = now + (int64_t)days * 86400, .envelope = env };
	snprintf(detail, sizeof(detail), "%s version %lld", type, (long long)out->version);
	if ((rc = store_manifest_insert(dd->store, &m)) != HERR_OK ||
	    (rc = store_audit(dd->store, now, actor, "manifest.issue", target, detail)) != HERR_OK)
		goto out;
	if (began) {
		if ((rc = store_commit(dd->store)) != HERR_OK)
			goto out;
		began = 0;
	}
	out->seq = m.seq;
	memcpy(out->keyid, signers[0].keyid, sizeof(out->keyid));
out:
	if (began)
		store_rollback(dd->store);
	free(env);
	free(text);
	json_decref(body);
	ca_key_free(key);
	return rc;
}
