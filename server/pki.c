#include "server/pki.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/crl.h"
#include "ca/key.h"
#include "common/fsutil.h"
#include "common/log.h"

/* How long a CRL stays valid; the daemon re-issues it well before then. */
#define CRL_VALID_S (7 * 86400)
#define BUNDLE_MAX 65536

struct issuer {
	struct ca_key *key;
	struct ca_cert *cert;
	char *pem;
};

static const char *issuer_pem(const struct issuer *is)
{
	return is->pem;
}

static enum herr issuer_load(const struct datadir *dd, struct issuer *is)
{
	char path[PATH_MAX];
	enum herr rc;

	memset(is, 0, sizeof(*is));
	rc = datadir_file(dd, DATADIR_ISSUING_KEY, path, sizeof(path));
	if (rc == HERR_OK)
		rc = ca_key_load(path, &is->key);
	if (rc == HERR_OK)
		rc = datadir_file(dd, DATADIR_ISSUING_CERT, path, sizeof(path));
	if (rc == HERR_OK) {
		uint8_t *pem = NULL;
		size_t len = 0;

		rc = fs_read_file(path, BUNDLE_MAX, &pem, &len);
		if (rc == HERR_OK)
			rc = ca_cert_parse(pem, len, &is->cert);
		is->pem = (char *)pem;
	}
	if (rc == HERR_OK && !ca_cert_matches_key(is->cert, is->key)) {
		log_err("%s/%s does not belong to %s", dd->path, DATADIR_ISSUING_CERT, DATADIR_ISSUING_KEY);
		rc = HERR_STATE;
	}
	return rc;
}

static void issuer_clear(struct issuer *is)
{
	ca_key_free(is->key);
	ca_cert_free(is->cert);
	free(is->pem);
	memset(is, 0, sizeof(*is));
}

/* Sign a client certificate (CN = id) for spki and record it as a certificate of the device or
 * client id (kind "device" or "client"), with an audit entry (source: where the request came from,
 * NULL for the host). */
static enum herr issue_recorded(struct datadir *dd, const char *id, const char *kind,
				const uint8_t *spki, size_t spki_len, unsigned days, const char *actor,
				const char *source, const char *action, char **pem, struct ca_cert_info *info)
{
	struct ca_cert_request req = {
		.kind = CA_CERT_DEVICE, .common_name = id, .days = days ? days : PKI_DEVICE_DAYS,
		.subject_spki = spki, .subject_spki_len = spki_len,
	};
	int is_device = strcmp(kind, "device") == 0;
	struct store_cert row;
	struct issuer is;
	enum herr rc;

	*pem = NULL;
	rc = issuer_load(dd, &is);
	if (rc == HERR_OK)
		rc = ca_cert_issue(&req, is.key, is.cert, pem, info);
	issuer_clear(&is);
	if (rc != HERR_OK)
		return rc;
	row = (struct store_cert){
		.serial = info->serial_hex, .kind = kind, .device_id = is_device ? id : NULL,
		.client_id = is_device ? NULL : id, .subject = info->subject,
		.fingerprint = info->fingerprint, .not_before = info->not_before,
		.not_after = info->not_after, .pem = *pem,
	};
	rc = store_cert_insert(dd->store, &row);
	if (rc == HERR_OK)
		rc = store_audit_from(dd->store, (int64_t)time(NULL), actor, source, action, id, info->serial_hex);
	if (rc != HERR_OK) {
		free(*pem);
		*pem = NULL;
	}
	return rc;
}

enum herr pki_issue_device(struct datadir *dd, const char *id, const char *model,
			   const uint8_t *spki, size_t spki_len, unsigned days, const char *actor,
			   const char *source, char **pem, struct ca_cert_info *info)
{
	int64_t now = (int64_t)time(NULL);
	enum herr rc;

	*pem = NULL;
	rc = store_model_ensure(dd->store, model, now);
	if (rc == HERR_OK)
		rc = store_device_insert(dd->store, id, model, now);
	if (rc == HERR_EXISTS)
		log_err("the id '%s' already exists (as a device or an integration client)", id);
	if (rc != HERR_OK)
		return rc;
	return issue_recorded(dd, id, "device", spki, spki_len, days, actor, source, "device.add", pem, info);
}

enum herr pki_issue_client(struct datadir *dd, const char *id, const char *role,
			   const uint8_t *spki, size_t spki_len, unsigned days, const char *actor,
			   const char *source, char **pem, struct ca_cert_info *info)
{
	enum herr rc;

	*pem = NULL;
	rc = store_client_insert(dd->store, id, role, (int64_t)time(NULL));
	if (rc == HERR_EXISTS)
		log_err("the id '%s' already exists (as a device or an integration client)", id);
	else if (rc == HERR_INVALID)
		log_err("unknown role '%s'", role);
	if (rc != HERR_OK)
		return rc;
	return issue_recorded(dd, id, "client", spki, spki_len, days, actor, source, "client.add", pem, info);
}

struct revoked_list {
	struct ca_crl_entry *entries;
	size_t count, cap;
	enum herr rc;
};

static int collect_revoked(void *ctx, const char *serial, int64_t revoked_at)
{
	struct revoked_list *l = ctx;
	char *copy;

	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct ca_crl_entry *grown;

		if (cap > CA_CRL_MAX_ENTRIES) {
			l->rc = HERR_TOOBIG;
			return 1;
		}
		grown = realloc(l->entries, cap * sizeof(*grown));
		if (!grown) {
			l->rc = HERR_NOMEM;
			return 1;
		}
		l->entries = grown;
		l->cap = cap;
	}
	copy = strdup(serial);
	if (!copy) {
		l->rc = HERR_NOMEM;
		return 1;
	}
	l->entries[l->count].serial_hex = copy;
	l->entries[l->count].revoked_at = revoked_at;
	l->count++;
	return 0;
}

enum herr pki_publish_crl(struct datadir *dd, char **pem_out)
{
	struct revoked_list list = { .rc = HERR_OK };
	int64_t now = (int64_t)time(NULL);
	char path[PATH_MAX], *pem = NULL;
	uint64_t number = 0;
	struct issuer is = { 0 };
	enum herr rc;
	size_t i;

	if (pem_out)
		*pem_out = NULL;
	rc = store_cert_list_revoked(dd->store, now, collect_revoked, &list);
	if (rc == HERR_OK)
		rc = list.rc;
	if (rc == HERR_OK)
		rc = store_crl_next_number(dd->store, &number);
	if (rc == HERR_OK)
		rc = issuer_load(dd, &is);
	if (rc == HERR_OK)
		rc = ca_crl_issue(is.key, is.cert, list.entries, list.count, number, now,
				  now + CRL_VALID_S, &pem);
	if (rc == HERR_OK)
		rc = datadir_file(dd, DATADIR_CRL, path, sizeof(path));
	if (rc == HERR_OK)
		rc = fs_write_file(path, pem, strlen(pem), 0644, 0);
	if (rc == HERR_OK && pem_out) {
		*pem_out = pem;
		pem = NULL; /* ownership passed */
	}
	if (rc != HERR_OK)
		log_err("cannot publish the CRL: %s", herr_str(rc));
	free(pem);
	issuer_clear(&is);
	for (i = 0; i < list.count; i++)
		free((char *)list.entries[i].serial_hex);
	free(list.entries);
	return rc;
}

enum herr pki_ca_bundle(const struct datadir *dd, char **pem, size_t *len)
{
	char path[PATH_MAX];
	uint8_t *data = NULL;
	enum herr rc;

	*pem = NULL;
	rc = datadir_file(dd, DATADIR_CA_BUNDLE, path, sizeof(path));
	if (rc == HERR_OK)
		rc = fs_read_file(path, BUNDLE_MAX, &data, len);
	if (rc != HERR_OK) {
		log_err("%s: %s", path, herr_str(rc));
		return rc;
	}
	*pem = (char *)data;
	return HERR_OK;
}

static enum herr load_endpoint(const struct datadir *dd, struct ca_cert **cert)
{
	char path[PATH_MAX];
	enum herr rc = datadir_file(dd, DATADIR_ENDPOINT_CERT, path, sizeof(path));

	return rc == HERR_OK ? ca_cert_load(path, cert) : rc;
}

int pki_endpoint_due(const struct datadir *dd, int64_t now)
{
	struct ca_cert_info info;
	struct ca_cert *cert = NULL;
	enum herr rc = load_endpoint(dd, &cert);

	/* A certificate that cannot be read is replaced; running out of memory reading it is no
	 * reason to, and the question comes again on the next check. */
	if (rc != HERR_OK)
		return rc != HERR_NOMEM;
	ca_cert_get_info(cert, &info);
	ca_cert_free(cert);
	return now >= info.not_before + (info.not_after - info.not_before) * 2 / 3;
}

/* A new endpoint certificate with the old one's names: for its key (rekey = 0) or for the key now in
 * DIR/keys/endpoint.key (rekey = 1, a pin rotation's switch). */
static enum herr reissue_endpoint(struct datadir *dd, const char *actor, int rekey, struct ca_cert_info *info)
{
	char path[PATH_MAX], *pem = NULL, *chain = NULL;
	struct ca_cert *old = NULL;
	struct ca_key *key = NULL;
	struct store_cert row;
	struct issuer is = { 0 };
	uint8_t spki[CA_SPKI_MAX];
	size_t lp, li, spki_len = 0;
	enum herr rc;

	rc = load_endpoint(dd, &old);
	if (rc == HERR_OK)
		rc = issuer_load(dd, &is);
	if (rc == HERR_OK && rekey) {
		if ((rc = datadir_file(dd, DATADIR_ENDPOINT_KEY, path, sizeof(path))) == HERR_OK &&
		    (rc = ca_key_load(path, &key)) == HERR_OK)
			rc = ca_key_spki(key, spki, sizeof(spki), &spki_len);
		ca_key_free(key);
	}
	if (rc == HERR_OK)
		rc = ca_cert_renew_endpoint(old, rekey ? spki : NULL, spki_len, is.key, is.cert,
					    DATADIR_ENDPOINT_DAYS, &pem, info);
	if (rc != HERR_OK)
		goto out;
	/* The file holds the leaf and the issuing CA, as at init. */
	lp = strlen(pem);
	li = strlen(issuer_pem(&is));
	chain = malloc(lp + li + 1);
	if (!chain) {
		rc = HERR_NOMEM;
		goto out;
	}
	memcpy(chain, pem, lp);
	memcpy(chain + lp, issuer_pem(&is), li + 1);
	row = (struct store_cert){
		.serial = info->serial_hex, .kind = "endpoint", .subject = info->subject,
		.fingerprint = info->fingerprint, .not_before = info->not_before,
		.not_after = info->not_after, .pem = pem,
	};
	rc = store_begin(dd->store);
	if (rc != HERR_OK)
		goto out;
	if ((rc = store_cert_insert(dd->store, &row)) != HERR_OK ||
	    (rc = store_audit(dd->store, (int64_t)time(NULL), actor, rekey ? "endpoint.rekey" : "endpoint.renew",
			      info->serial_hex, info->subject)) != HERR_OK ||
	    (rc = datadir_file(dd, DATADIR_ENDPOINT_CERT, path, sizeof(path))) != HERR_OK ||
	    (rc = fs_write_file(path, chain, lp + li, 0644, 0)) != HERR_OK) {
		store_rollback(dd->store);
		goto out;
	}
	rc = store_commit(dd->store);
out:
	if (rc != HERR_OK)
		log_err("endpoint certificate renewal failed: %s", herr_str(rc));
	free(chain);
	free(pem);
	ca_cert_free(old);
	issuer_clear(&is);
	return rc;
}

enum herr pki_renew_endpoint(struct datadir *dd, const char *actor, struct ca_cert_info *info)
{
	return reissue_endpoint(dd, actor, 0, info);
}

enum herr pki_rekey_endpoint(struct datadir *dd, const char *actor, struct ca_cert_info *info)
{
	return reissue_endpoint(dd, actor, 1, info);
}

enum herr pki_anchors(const struct datadir *dd, struct pki_anchors *out)
{
	struct ca_cert_info info;
	struct ca_cert *endpoint = NULL;
	struct ca_key *manifest = NULL;
	uint8_t spki[CA_SPKI_MAX];
	char path[PATH_MAX];
	size_t len = 0;
	enum herr rc;

	memset(out, 0, sizeof(*out));
	/* The endpoint's pin comes from its certificate: the same public key, without reading the
	 * private one. */
	rc = load_endpoint(dd, &endpoint);
	if (rc != HERR_OK)
		goto out;
	ca_cert_get_info(endpoint, &info);
	memcpy(out->endpoint_pin, info.pin, sizeof(out->endpoint_pin));
	if ((rc = datadir_file(dd, DATADIR_MANIFEST_KEY, path, sizeof(path))) != HERR_OK ||
	    (rc = ca_key_load(path, &manifest)) != HERR_OK ||
	    (rc = ca_key_spki(manifest, spki, sizeof(spki), &len)) != HERR_OK ||
	    (rc = ca_key_public_pem(manifest, &out->manifest_public_pem)) != HERR_OK)
		goto out;
	ca_sha256_hex(spki, len, out->manifest_keyid);
	if (out->endpoint_pin[0] == '\0')
		rc = HERR_CRYPTO;
out:
	if (rc != HERR_OK) {
		log_err("cannot read the trust anchors (endpoint pin, manifest key): %s", herr_str(rc));
		pki_anchors_clear(out);
	}
	ca_key_free(manifest);
	ca_cert_free(endpoint);
	return rc;
}

void pki_anchors_clear(struct pki_anchors *a)
{
	free(a->manifest_public_pem);
	memset(a, 0, sizeof(*a));
}

enum herr pki_renew_device(struct datadir *dd, const char *id, const uint8_t *spki, size_t spki_len,
			   unsigned days, const char *actor, const char *source, char **pem,
			   struct ca_cert_info *info)
{
	struct store_device d;
	enum herr rc;

	*pem = NULL;
	rc = store_device_get(dd->store, id, &d);
	if (rc != HERR_OK)
		return rc;
	if (strcmp(d.status, "active") != 0)
		return HERR_STATE;
	return issue_recorded(dd, id, "device", spki, spki_len, days, actor, source, "device.renew", pem, info);
}
