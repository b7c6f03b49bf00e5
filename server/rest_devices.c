/* REST devices: listing, adding (from a CSR), reading, tagging, revoking and decommissioning
 * devices, and listing their certificates. A change lands together with its audit entry (and a
 * revocation with the re-issued CRL) in one transaction, as the CLI does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/cert.h"
#include "ca/csr.h"
#include "common/rng.h"
#include "server/pki.h"
#include "server/rest_internal.h"
#include "server/store.h"

#define CERTS_MAX STORE_PAGE_MAX

static json_t *time_or_null(int64_t t)
{
	return t ? json_integer((json_int_t)t) : json_null();
}

struct json_list {
	json_t *items;
	size_t count, max;
	int failed;                  /* out of memory */
	int truncated;               /* more rows than max */
};

static int add_tag(void *ctx, const char *tag)
{
	struct json_list *l = ctx;

	if (json_array_append_new(l->items, json_string(tag)) != 0) {
		l->failed = 1;
		return 1;
	}
	return 0;
}

/* The device as the API shows it, with its tags. NULL if the store or memory failed. */
static json_t *device_json(struct store *st, const struct store_device *d)
{
	struct json_list tags = { .items = json_array() };
	struct store_device_firmware fw;

	if (!tags.items)
		return NULL;
	if (store_device_tags(st, d->id, add_tag, &tags) != HERR_OK || tags.failed ||
	    store_device_firmware(st, d->id, &fw) != HERR_OK) {
		json_decref(tags.items);
		return NULL;
	}
	/* firmware: what the device last reported on its status topic, or installed from a rollout. */
	return json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:{s:s?, s:I}}", "id", d->id, "model", d->model,
			 "status", d->status, "created_at", (json_int_t)d->created_at,
			 "revoked_at", time_or_null(d->revoked_at),
			 "cert_not_after", time_or_null(d->cert_not_after),
			 "last_seen", time_or_null(d->last_seen), "tags", tags.items, "firmware", "version",
			 fw.firmware_version[0] ? fw.firmware_version : NULL, "security_version",
			 (json_int_t)fw.security_version);
}

/* Answer 200 with the device id as it is now (after a change), or 404. */
static void reply_device(struct rest_req *req, unsigned status, const char *id)
{
	struct store_device d;
	enum herr rc = store_device_get(req->dd->store, id, &d);
	json_t *obj;

	if (rc == HERR_NOTFOUND) {
		rest_reply_error(req, 404, "not_found", "no device '%s'", id);
		return;
	}
	obj = rc == HERR_OK ? device_json(req->dd->store, &d) : NULL;
	if (!obj) {
		rest_reply_internal(req);
		return;
	}
	rest_reply_json(req, status, obj);
}

/* --- GET /api/v1/devices ------------------------------------------------------------------------ */

struct device_page {
	struct store_device *rows;
	size_t count, max;
};

static int collect_device(void *ctx, const struct store_device *d)
{
	struct device_page *p = ctx;

	if (p->count >= p->max)
		return 1;
	p->rows[p->count++] = *d;
	return 0;
}

static int count_device(void *ctx, const struct store_device *d)
{
	(void)d;
	(*(size_t *)ctx)++;
	return 1;
}

void rest_devices_list(struct rest_req *req)
{
	static const char *const statuses[] = { "active", "revoked", "decommissioned", NULL };
	struct store_device_filter f = { 0 };
	struct device_page page = { 0 };
	json_t *items = NULL, *next = NULL;
	size_t limit, i, more = 0;
	const char *cursor;

	if (rest_page(req, &limit, &cursor) != 0 || rest_query_seconds(req, "seen_since", &f.seen_since) != 0)
		return;
	f.model = rest_query(req, "model");
	f.tag = rest_query(req, "tag");
	f.status = rest_query(req, "status");
	if (f.status) {
		for (i = 0; statuses[i] && strcmp(statuses[i], f.status) != 0; i++)
			;
		if (!statuses[i]) {
			rest_reply_error(req, 400, "invalid_query", "status must be active, revoked or decommissioned");
			return;
		}
	}
	f.after = cursor;
	/* One row past the page says whether there is a next one; the store caps a query at
	 * STORE_PAGE_MAX, so a full page of that size asks once more. Rows are collected before tags
	 * are read, so no store call runs inside another's iteration. */
	page.max = limit + 1;
	page.rows = calloc(page.max, sizeof(*page.rows));
	if (!page.rows)
		goto fail;
	f.limit = page.max <= STORE_PAGE_MAX ? page.max : STORE_PAGE_MAX;
	if (store_device_query(req->dd->store, &f, collect_device, &page) != HERR_OK)
		goto fail;
	if (page.count == limit && limit == STORE_PAGE_MAX) {
		f.after = page.rows[limit - 1].id;
		f.limit = 1;
		if (store_device_query(req->dd->store, &f, count_device, &more) != HERR_OK)
			goto fail;
	}
	if (page.count > limit) {
		page.count = limit;
		more = 1;
	}
	items = json_array();
	if (!items)
		goto fail;
	for (i = 0; i < page.count; i++) {
		if (json_array_append_new(items, device_json(req->dd->store, &page.rows[i])) != 0)
			goto fail;
	}
	next = more ? json_string(page.rows[page.count - 1].id) : json_null();
	rest_reply_json(req, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
	free(page.rows);
	return;
fail:
	json_decref(items);
	free(page.rows);
	rest_reply_internal(req);
}

/* --- POST /api/v1/devices ----------------------------------------------------------------------- */

void rest_devices_create(struct rest_req *req)
{
	const char *model, *csr_pem, *id;
	char id_buf[33], why[160] = "", *pem = NULL, *bundle = NULL;
	struct rest_device_new in;
	struct ca_cert_info info;
	struct rest_fault f;
	struct ca_csr csr;
	size_t bundle_len = 0;
	json_t *body;
	enum herr rc;

	body = rest_body_object(req);
	if (!body)
		return;
	if (rest_parse_device_new(body, &in, &f) != 0) {
		rest_reply_fault(req, &f);
		goto out;
	}
	model = in.model;
	csr_pem = in.csr;
	id = in.id;
	if (strlen(csr_pem) > CA_CSR_MAX ||
	    ca_csr_check((const uint8_t *)csr_pem, strlen(csr_pem), &csr, why, sizeof(why)) != HERR_OK) {
		rest_reply_error(req, 422, "invalid_csr", "the CSR is refused: %s",
				 why[0] ? why : "larger than a CSR can be");
		goto out;
	}
	if (!id) {
		unsigned char b[16];
		size_t i;

		if (rng_bytes(b, sizeof(b)) != HERR_OK) {
			rest_reply_internal(req);
			goto out;
		}
		for (i = 0; i < sizeof(b); i++)
			snprintf(id_buf + 2 * i, 3, "%02x", b[i]);
		id = id_buf;
	}
	if (store_begin(req->dd->store) != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}
	/* pki_issue_device writes the audit entry (device.add) in this transaction. */
	rc = pki_issue_device(req->dd, id, model, csr.spki, csr.spki_len, 0, req->actor, req->addr, &pem, &info);
	if (rc == HERR_OK)
		rc = pki_ca_bundle(req->dd, &bundle, &bundle_len);
	if (rc == HERR_OK)
		rc = store_commit(req->dd->store);
	if (rc != HERR_OK) {
		store_rollback(req->dd->store);
		if (rc == HERR_EXISTS)
			rest_reply_error(req, 409, "already_exists", "the id '%s' is already taken", id);
		else
			rest_reply_internal(req);
		goto out;
	}
	rest_reply_json(req, 201, json_pack("{s:s, s:s, s:s}", "id", id, "certificate", pem, "ca_chain", bundle));
out:
	free(pem);
	free(bundle);
	json_decref(body);
}

/* --- GET /api/v1/devices/{id} ------------------------------------------------------------------- */

void rest_device_get(struct rest_req *req)
{
	reply_device(req, 200, req->params[0]);
}

/* --- PATCH /api/v1/devices/{id} ----------------------------------------------------------------- */

void rest_device_patch(struct rest_req *req)
{
	const char *id = req->params[0], *model;
	struct rest_device_change in;
	struct rest_fault f;
	char *detail = NULL;
	json_t *body;
	enum herr rc;

	body = rest_body_object(req);
	if (!body)
		return;
	if (rest_parse_device_change(body, &in, &f) != 0) {
		rest_reply_fault(req, &f);
		goto out;
	}
	model = in.model;
	if (!in.has_tags && !model) { /* nothing to change */
		reply_device(req, 200, id);
		goto out;
	}
	/* The body was checked whole, so it is bounded and says exactly what changed. */
	detail = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!detail || store_begin(req->dd->store) != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}
	rc = in.has_tags ? store_device_set_tags(req->dd->store, id, in.tags, in.tag_count) : HERR_OK;
	if (rc == HERR_OK && model)
		rc = store_device_set_model(req->dd->store, id, model, (int64_t)time(NULL));
	if (rc == HERR_OK)
		rc = rest_audit(req, "device.patch", id, detail);
	if (rc == HERR_OK)
		rc = store_commit(req->dd->store);
	if (rc != HERR_OK) {
		store_rollback(req->dd->store);
		if (rc == HERR_NOTFOUND)
			rest_reply_error(req, 404, "not_found", "no device '%s'", id);
		else
			rest_reply_internal(req);
		goto out;
	}
	if (model)
		rest_changed(req); /* the endpoint caches which model (policy) a device has */
	reply_device(req, 200, id);
out:
	free(detail);
	json_decref(body);
}

/* --- revoke and decommission -------------------------------------------------------------------- */

/* Revoking and decommissioning differ only in what the store does and what is said about it. */
struct device_end {
	const char *action, *status, *state_msg;
	enum herr (*run)(struct store *st, const char *id, int64_t now, int *certs);
};

static void device_end(struct rest_req *req, const struct device_end *e)
{
	const char *id = req->params[0];
	char detail[64];
	int certs = 0;
	enum herr rc;

	if (store_begin(req->dd->store) != HERR_OK) {
		rest_reply_internal(req);
		return;
	}
	rc = e->run(req->dd->store, id, (int64_t)time(NULL), &certs);
	snprintf(detail, sizeof(detail), "%d certificate(s) revoked", certs);
	/* The CRL is re-issued in the same transaction: a revocation is never recorded without it. */
	if (rc == HERR_OK)
		rc = rest_audit(req, e->action, id, detail);
	if (rc == HERR_OK)
		rc = pki_publish_crl(req->dd, NULL);
	if (rc == HERR_OK)
		rc = store_commit(req->dd->store);
	if (rc != HERR_OK) {
		store_rollback(req->dd->store);
		if (rc == HERR_NOTFOUND)
			rest_reply_error(req, 404, "not_found", "no device '%s'", id);
		else if (rc == HERR_STATE)
			rest_reply_error(req, 409, "wrong_state", e->state_msg, id);
		else
			rest_reply_internal(req);
		return;
	}
	/* The endpoint closes the device's live connection now, not at its next poll. */
	rest_changed(req);
	rest_reply_json(req, 200, json_pack("{s:s, s:s, s:i}", "id", id, "status", e->status,
					    "certificates_revoked", certs));
}

void rest_device_delete(struct rest_req *req)
{
	static const struct device_end e = {
		"device.decommission", "decommissioned", "device '%s' is already decommissioned",
		store_device_decommission,
	};

	device_end(req, &e);
}

void rest_device_revoke(struct rest_req *req)
{
	static const struct device_end e = {
		"device.revoke", "revoked", "device '%s' is not active (already revoked or decommissioned)",
		store_device_revoke,
	};

	device_end(req, &e);
}

/* --- GET /api/v1/devices/{id}/certificates ------------------------------------------------------ */

static int add_cert(void *ctx, const struct store_cert_row *c)
{
	struct json_list *l = ctx;

	if (l->count >= l->max) {
		l->truncated = 1;
		return 1;
	}
	if (json_array_append_new(l->items, json_pack("{s:s, s:s, s:s, s:I, s:I, s:o}", "serial", c->serial,
						      "status", c->status, "fingerprint", c->fingerprint,
						      "not_before", (json_int_t)c->not_before,
						      "not_after", (json_int_t)c->not_after,
						      "revoked_at", time_or_null(c->revoked_at))) != 0) {
		l->failed = 1;
		return 1;
	}
	l->count++;
	return 0;
}

void rest_device_certs(struct rest_req *req)
{
	struct json_list l = { .items = json_array(), .max = CERTS_MAX };
	json_t *body;
	enum herr rc;

	if (!l.items) {
		rest_reply_internal(req);
		return;
	}
	rc = store_device_certs(req->dd->store, req->params[0], add_cert, &l);
	if (rc == HERR_NOTFOUND) {
		json_decref(l.items);
		rest_reply_error(req, 404, "not_found", "no device '%s'", req->params[0]);
		return;
	}
	if (rc != HERR_OK || l.failed) {
		json_decref(l.items);
		rest_reply_internal(req);
		return;
	}
	body = json_pack("{s:o}", "items", l.items);
	/* Only said when it happens: a device has a handful of certificates. */
	if (body && l.truncated && json_object_set_new(body, "truncated", json_true()) != 0) {
		json_decref(body);
		body = NULL;
	}
	rest_reply_json(req, 200, body);
}
