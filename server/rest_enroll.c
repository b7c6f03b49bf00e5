/* REST enroll: one-time enrollment tokens (made, listed and revoked by operators) and the public
 * enrollment itself, where a device trades a token and its CSR for a certificate, the CA chain,
 * the endpoint pins and the manifest trust anchor. Only a token's hash is stored; the token is
 * shown once, in the answer that creates it. A token is spent in the same transaction that issues
 * the certificate, by one conditional update, so a replay (even a concurrent one) never enrolls a
 * second device and a failed enrollment leaves the token unspent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/cert.h"
#include "ca/csr.h"
#include "common/log.h"
#include "common/rng.h"
#include "server/pins.h"
#include "server/pki.h"
#include "server/rest_internal.h"
#include "server/store.h"

/* A random device id: 16 bytes as hex. */
#define RANDOM_ID_BYTES 16

static const char *status_of(const struct store_enroll_token *t, int64_t now)
{
	if (t->used_at)
		return "used";
	if (t->revoked_at)
		return "revoked";
	if (t->expires_at <= now)
		return "expired";
	return "unused";
}

/* A time that may be unset (0) as a JSON integer or null. */
static json_t *time_or_null(int64_t t)
{
	return t ? json_integer((json_int_t)t) : json_null();
}

static json_t *text_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

/* --- operators: tokens ------------------------------------------------------------------------- */

struct token_page {
	json_t *items;
	int64_t now;
	size_t count;
	char last[sizeof(((struct store_enroll_token *)0)->id)];
	int failed;
};

static int add_token(void *ctx, const struct store_enroll_token *t)
{
	struct token_page *p = ctx;
	json_t *item;

	item = json_pack("{s:s, s:s, s:o, s:s, s:I, s:I, s:o, s:o, s:o, s:s}",
			 "id", t->id, "model", t->model, "device_id", text_or_null(t->device_id),
			 "created_by", t->created_by, "created_at", (json_int_t)t->created_at,
			 "expires_at", (json_int_t)t->expires_at, "used_at", time_or_null(t->used_at),
			 "used_by", text_or_null(t->used_by), "revoked_at", time_or_null(t->revoked_at),
			 "status", status_of(t, p->now));
	if (json_array_append_new(p->items, item) != 0) {
		p->failed = 1;
		return 1;
	}
	p->count++;
	snprintf(p->last, sizeof(p->last), "%s", t->id);
	return 0;
}

void rest_enroll_tokens_list(struct rest_req *req)
{
	struct token_page p = { .items = json_array(), .now = (int64_t)time(NULL) };
	const char *cursor;
	size_t limit;

	if (rest_page(req, &limit, &cursor) != 0) {
		json_decref(p.items);
		return;
	}
	if (!p.items || store_enroll_token_list(req->dd->store, cursor ? cursor : "", limit, add_token, &p) != HERR_OK ||
	    p.failed) {
		json_decref(p.items);
		rest_reply_internal(req);
		return;
	}
	/* A full page may have a next one (possibly empty); a short page is the last. */
	rest_reply_json(req, 200, json_pack("{s:o, s:o}", "items", p.items, "next_cursor",
					    p.count == limit ? json_string(p.last) : json_null()));
}

void rest_enroll_tokens_create(struct rest_req *req)
{
	struct rest_enroll_token_new in;
	struct store_enroll_token t;
	struct store_device dev;
	struct rest_fault f;
	const char *model, *device_id;
	char token[TOKEN_MAX], detail[160], *policy = NULL;
	int64_t now = (int64_t)time(NULL), ttl;
	json_t *body;
	enum herr rc;

	memset(&t, 0, sizeof(t));
	body = rest_body_object(req);
	if (!body)
		return;
	if (rest_parse_enroll_token_new(body, &in, &f) != 0) {
		rest_reply_fault(req, &f);
		goto out;
	}
	model = in.model;
	device_id = in.device_id;
	ttl = in.ttl_s;
	rc = store_model_get_policy(req->dd->store, model, &policy);
	free(policy);
	if (rc == HERR_NOTFOUND) {
		rest_reply_error(req, 422, "unknown_model", "no model '%s'; set its policy first", model);
		goto out;
	}
	if (rc != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}
	if (device_id) {
		rc = store_device_get(req->dd->store, device_id, &dev);
		if (rc == HERR_OK) {
			rest_reply_error(req, 409, "device_exists", "a device '%s' already exists", device_id);
			goto out;
		}
		if (rc != HERR_NOTFOUND) {
			rest_reply_internal(req);
			goto out;
		}
	}

	if (token_make(TOKEN_ENROLL, token, t.id, t.hash) != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}
	snprintf(t.model, sizeof(t.model), "%s", model);
	snprintf(t.device_id, sizeof(t.device_id), "%s", device_id ? device_id : "");
	snprintf(t.created_by, sizeof(t.created_by), "%s", req->actor);
	t.created_at = now;
	t.expires_at = now + ttl;
	snprintf(detail, sizeof(detail), "model %s, device %s, ttl %lld s", model, device_id ? device_id : "any",
		 (long long)ttl);
	if (store_begin(req->dd->store) != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}
	rc = store_enroll_token_insert(req->dd->store, &t);
	if (rc == HERR_OK)
		rc = rest_audit(req, "enrollment_token.create", t.id, detail);
	if (rc == HERR_OK)
		rc = store_commit(req->dd->store);
	if (rc != HERR_OK) {
		store_rollback(req->dd->store);
		if (rc == HERR_INVALID) /* the model went away since we looked */
			rest_reply_error(req, 422, "unknown_model", "no model '%s'; set its policy first", model);
		else
			rest_reply_internal(req);
		goto out;
	}
	rest_reply_json(req, 201, json_pack("{s:s, s:s, s:s, s:o, s:I}", "id", t.id, "token", token,
					    "model", t.model, "device_id", text_or_null(t.device_id),
					    "expires_at", (json_int_t)t.expires_at));
out:
	explicit_bzero(token, sizeof(token));
	json_decref(body);
}

void rest_enroll_token_delete(struct rest_req *req)
{
	const char *id = req->params[0];
	enum herr rc;

	if (store_begin(req->dd->store) != HERR_OK) {
		rest_reply_internal(req);
		return;
	}
	rc = store_enroll_token_revoke(req->dd->store, id, (int64_t)time(NULL));
	if (rc == HERR_OK)
		rc = rest_audit(req, "enrollment_token.revoke", id, NULL);
	if (rc == HERR_OK)
		rc = store_commit(req->dd->store);
	if (rc != HERR_OK) {
		store_rollback(req->dd->store);
		if (rc == HERR_NOTFOUND)
			rest_reply_error(req, 404, "not_found", "no enrollment token '%s'", id);
		else if (rc == HERR_STATE)
			rest_reply_error(req, 409, "conflict", "enrollment token '%s' is already used or revoked", id);
		else
			rest_reply_internal(req);
		return;
	}
	rest_reply_json(req, 200, json_pack("{s:s, s:s}", "id", id, "status", "revoked"));
}

/* --- devices: enrollment ----------------------------------------------------------------------- */

static void bad_token(struct rest_req *req)
{
	rest_bad_secret(req);
	rest_reply_error(req, 401, "unauthorized", "the enrollment token is not valid");
}

/* A genuine token that can no longer enroll: said, and audited in its own transaction. */
static void refused(struct rest_req *req, const char *token_id)
{
	(void)rest_audit(req, "enroll.refused", token_id, "used, revoked or expired");
	rest_reply_error(req, 401, "unauthorized", "the enrollment token is used, revoked or expired");
}

static enum herr random_id(char id[2 * RANDOM_ID_BYTES + 1])
{
	unsigned char b[RANDOM_ID_BYTES];
	size_t i;

	if (rng_bytes(b, sizeof(b)) != HERR_OK)
		return HERR_IO;
	for (i = 0; i < sizeof(b); i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
	return HERR_OK;
}

static int take_version(void *ctx, const struct store_manifest *m)
{
	*(int64_t *)ctx = m->version;
	return 0;
}

/* What the device takes home: its certificate and what it is to trust. The pins are every key of
 * the endpoint's pin set on disk (current, and next and backup once a rotation announced them), so
 * that a device enrolled in the middle of a rotation survives its switch; keys_version is the newest
 * signing-key rotation, where the device's walk of keys manifests starts. */
static json_t *enrolled(struct rest_req *req, const char *id, const char *model, const char *cert,
			const char *chain, const struct pki_anchors *a)
{
	struct pins_set set;
	int64_t keys_version = 0;
	json_t *pins = json_array();
	enum herr rc;

	if (pins_read(req->dd, &set) == HERR_OK) {
		const char *each[3] = { set.current, set.next, set.backup };
		size_t i;

		for (i = 0; i < 3; i++)
			if (each[i][0])
				json_array_append_new(pins, json_string(each[i]));
	}
	if (json_array_size(pins) == 0)
		json_array_append_new(pins, json_string(a->endpoint_pin));
	rc = store_manifest_latest_target(req->dd->store, "all", "keys", take_version, &keys_version);
	if (rc != HERR_OK && rc != HERR_NOTFOUND)
		log_warn("enroll: the newest keys manifest could not be read; keys_version 0");
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:[{s:s, s:s}], s:I}", "device_id", id, "model", model,
			 "certificate", cert, "ca_chain", chain, "pins", pins, "manifest_keys", "keyid",
			 a->manifest_keyid, "public_key", a->manifest_public_pem, "keys_version",
			 (json_int_t)keys_version);
}

void rest_enroll(struct rest_req *req)
{
	char tok_id[TOKEN_ID_LEN + 1], tok_hash[TOKEN_HASH_LEN], why[256] = "";
	char id[65], detail[256], *cert = NULL, *chain = NULL;
	struct pki_anchors anchors = { 0 };
	struct store_enroll_token t;
	struct ca_cert_info info;
	struct ca_csr *csr = NULL;
	int64_t now = (int64_t)time(NULL);
	struct rest_enroll_request in;
	struct rest_fault f;
	size_t chain_len = 0;
	json_t *body;
	enum herr rc;

	if (rest_throttled(req))
		return;
	body = rest_body_object(req);
	if (!body)
		return;
	if (rest_parse_enroll(body, &in, &f) != 0) {
		rest_reply_fault(req, &f);
		goto out;
	}

	/* The token first: nothing else is looked at for someone who does not hold one. */
	if (token_parse(TOKEN_ENROLL, in.token, in.token_len, tok_id, tok_hash) != HERR_OK) {
		bad_token(req);
		goto out;
	}
	rc = store_enroll_token_get(req->dd->store, tok_id, &t);
	if (rc != HERR_OK && rc != HERR_NOTFOUND) {
		rest_reply_internal(req);
		goto out;
	}
	if (rc == HERR_NOTFOUND || !token_hash_equal(tok_hash, t.hash)) {
		bad_token(req);
		goto out;
	}
	/* From here on the request holds a genuine token: the audit log names it as the actor. */
	snprintf(req->actor, sizeof(req->actor), "enroll:%s", t.id);
	if (strcmp(status_of(&t, now), "unused") != 0) {
		refused(req, t.id);
		goto out;
	}

	csr = calloc(1, sizeof(*csr));
	if (!csr) {
		rest_reply_internal(req);
		goto out;
	}
	rc = ca_csr_check((const uint8_t *)in.csr, in.csr_len, csr, why, sizeof(why));
	if (rc == HERR_NOMEM) {
		rest_reply_internal(req);
		goto out;
	}
	if (rc != HERR_OK) {
		rest_reply_error(req, 422, "invalid_csr", "%s", why);
		goto out;
	}
	if (t.device_id[0])
		snprintf(id, sizeof(id), "%s", t.device_id);
	else if (random_id(id) != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}
	/* What the answer needs besides the certificate, before anything is spent. */
	if (pki_ca_bundle(req->dd, &chain, &chain_len) != HERR_OK || pki_anchors(req->dd, &anchors) != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}

	if (store_begin(req->dd->store) != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}
	rc = store_enroll_token_use(req->dd->store, t.id, id, now);
	if (rc == HERR_STATE || rc == HERR_NOTFOUND) {
		/* Another enrollment won the race (or the token changed since it was read). */
		store_rollback(req->dd->store);
		refused(req, t.id);
		goto out;
	}
	if (rc == HERR_OK)
		rc = pki_issue_device(req->dd, id, t.model, csr->spki, csr->spki_len, 0, req->actor, req->addr,
				      &cert, &info);
	if (rc == HERR_OK) {
		snprintf(detail, sizeof(detail), "token %s, model %s, serial %s, %s key", t.id, t.model,
			 info.serial_hex, csr->key_desc);
		rc = rest_audit(req, "device.enroll", id, detail);
	}
	if (rc == HERR_OK)
		rc = store_commit(req->dd->store);
	if (rc != HERR_OK) {
		store_rollback(req->dd->store);
		if (rc == HERR_EXISTS)
			rest_reply_error(req, 409, "device_exists", "the id '%s' is already taken", id);
		else
			rest_reply_internal(req);
		goto out;
	}
	rest_reply_json(req, 201, enrolled(req, id, t.model, cert, chain, &anchors));
out:
	pki_anchors_clear(&anchors);
	free(cert);
	free(chain);
	free(csr);
	json_decref(body);
}
