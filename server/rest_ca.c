/* REST ca: what relying parties need to trust hearth: the CA chain, the CRL (public, so anything
 * that checks a device certificate can fetch it) and the pins (endpoint key, manifest keys). */
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "server/pki.h"
#include "server/rest_internal.h"
#include "server/store.h"

#define PEM_TYPE "application/x-pem-file"
/* A CRL of CA_CRL_MAX_ENTRIES serials stays well under this. */
#define CRL_FILE_MAX (4 * 1024 * 1024)

void rest_ca_chain(struct rest_req *req)
{
	char *pem = NULL;
	size_t len = 0;

	if (pki_ca_bundle(req->dd, &pem, &len) != HERR_OK) {
		rest_reply_internal(req);
		return;
	}
	rest_reply_text(req, 200, PEM_TYPE, pem, len);
	free(pem);
}

/* No CRL yet (a data directory from before the CRL was written at init, or a deleted file): issue
 * one now, as the daemon would. */
static enum herr publish_crl(struct rest_req *req)
{
	enum herr rc = store_begin(req->dd->store);

	if (rc != HERR_OK)
		return rc;
	rc = pki_publish_crl(req->dd, NULL);
	if (rc == HERR_OK)
		rc = store_commit(req->dd->store);
	if (rc != HERR_OK)
		store_rollback(req->dd->store);
	return rc;
}

void rest_ca_crl(struct rest_req *req)
{
	char path[PATH_MAX];
	uint8_t *pem = NULL;
	size_t len = 0;
	enum herr rc;

	rc = datadir_file(req->dd, DATADIR_CRL, path, sizeof(path));
	if (rc == HERR_OK)
		rc = fs_read_file(path, CRL_FILE_MAX, &pem, &len);
	if (rc == HERR_NOTFOUND) {
		rc = publish_crl(req);
		if (rc == HERR_OK)
			rc = fs_read_file(path, CRL_FILE_MAX, &pem, &len);
	}
	if (rc != HERR_OK) {
		rest_reply_internal(req);
		return;
	}
	rest_reply_text(req, 200, PEM_TYPE, (const char *)pem, len);
	free(pem);
}

void rest_ca_pins(struct rest_req *req)
{
	struct pki_anchors a;

	if (pki_anchors(req->dd, &a) != HERR_OK) {
		rest_reply_internal(req);
		return;
	}
	rest_reply_json(req, 200, json_pack("{s:[s], s:[{s:s, s:s}]}", "endpoint_pins", a.endpoint_pin,
					    "manifest_keys", "keyid", a.manifest_keyid, "public_key",
					    a.manifest_public_pem));
	pki_anchors_clear(&a);
}
