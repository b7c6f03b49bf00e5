/* REST routes a device calls about itself, authenticated by its client certificate (mTLS), not by
 * an API token: renewing its certificate, and fetching its latest manifest of a type (for devices
 * that poll instead of keeping an MQTT subscription). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/csr.h"
#include "common/log.h"
#include "server/pki.h"
#include "server/rest_internal.h"

/* A device renews at most this often: a stolen certificate cannot be used to mint a stream of
 * fresh ones. */
#define RENEW_MIN_INTERVAL_S 3600

static int newest_cert(void *ctx, const struct store_cert_row *c)
{
	int64_t *newest = ctx;

	if (c->not_before > *newest)
		*newest = c->not_before;
	return 0;
}

/* POST /api/v1/device/renew {"csr": "<PEM>"}: a new certificate for the same id (the key may be new
 * or the same). The current certificate stays valid until it expires or is revoked, so a device
 * that loses the answer can ask again later. */
void rest_device_renew(struct rest_req *req)
{
	struct ca_cert_info info;
	struct ca_csr csr;
	char why[160] = "", *pem = NULL, *bundle = NULL;
	size_t bundle_len = 0;
	int64_t now = (int64_t)time(NULL), newest = 0;
	struct rest_fault f;
	const char *text;
	size_t text_len;
	json_t *body;
	enum herr rc;

	body = rest_body_object(req);
	if (!body)
		return;
	if (rest_parse_renew(body, &text, &text_len, &f) != 0) {
		rest_reply_fault(req, &f);
		goto out;
	}
	if (ca_csr_check((const uint8_t *)text, text_len, &csr, why, sizeof(why)) != HERR_OK) {
		rest_reply_error(req, 422, "invalid_csr", "csr refused: %s", why);
		goto out;
	}
	if (store_device_certs(req->dd->store, req->device, newest_cert, &newest) != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}
	if (now - newest < RENEW_MIN_INTERVAL_S) {
		rest_reply_error(req, 409, "too_soon", "this device got a certificate less than %d s ago",
				 RENEW_MIN_INTERVAL_S);
		goto out;
	}
	if (store_begin(req->dd->store) != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}
	rc = pki_renew_device(req->dd, req->device, csr.spki, csr.spki_len, 0, req->actor, req->addr, &pem,
			      &info);
	if (rc == HERR_OK)
		rc = pki_ca_bundle(req->dd, &bundle, &bundle_len);
	if (rc != HERR_OK || store_commit(req->dd->store) != HERR_OK) {
		store_rollback(req->dd->store);
		rest_reply_internal(req);
		goto out;
	}
	log_info("REST: device %s renewed its certificate (serial %s)", req->device, info.serial_hex);
	rest_reply_json(req, 201, json_pack("{s:s, s:s, s:s, s:s#, s:I}", "device_id", req->device,
					    "serial", info.serial_hex, "certificate", pem, "ca_chain", bundle,
					    (int)bundle_len, "not_after", (json_int_t)info.not_after));
out:
	free(pem);
	free(bundle);
	json_decref(body);
}

static int copy_envelope(void *ctx, const struct store_manifest *m)
{
	char **out = ctx;

	*out = strdup(m->envelope);
	return 1;
}

/* GET /api/v1/device/manifests/{type}[?version=N]: the envelope as it was signed (the device
 * verifies it); the newest, or version N (a device walks keys manifests one version at a time). */
void rest_device_manifest(struct rest_req *req)
{
	static const char *const types[] = { "pins", "firmware", "keys" };
	char *envelope = NULL;
	int64_t version = 0;
	enum herr rc;
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]) && strcmp(req->params[0], types[i]) != 0; i++)
		;
	if (i == sizeof(types) / sizeof(types[0])) {
		rest_reply_error(req, 404, "not_found", "manifest types are pins, firmware and keys");
		return;
	}
	if (rest_query_seconds(req, "version", &version) != 0)
		return;
	rc = store_manifest_for_device(req->dd->store, req->device, types[i], version, copy_envelope, &envelope);
	if (rc == HERR_NOTFOUND)
		rest_reply_error(req, 404, "not_found", version ? "no %s manifest of that version for this device" :
				 "no %s manifest for this device yet", types[i]);
	else if (rc != HERR_OK || !envelope)
		rest_reply_internal(req);
	else
		rest_reply_text(req, 200, "application/json", envelope, strlen(envelope));
	free(envelope);
}
