#include "server/datadir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/cert.h"
#include "ca/key.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/rng.h"
#include "server/pki.h"

#define DB_STAGING "hearth.db.init"

enum herr datadir_file(const struct datadir *dd, const char *rel, char *buf, size_t size)
{
	return fs_path(buf, size, "%s/%s", dd->path, rel);
}

int datadir_is_initialised(const char *dir)
{
	char db[PATH_MAX];

	if (!fs_exists(dir))
		return 0;
	if (fs_path(db, sizeof(db), "%s/%s", dir, DATADIR_DB) != HERR_OK)
		return -1;
	if (fs_exists(db))
		return 1;
	return fs_dir_is_empty_but(dir, DATADIR_CONFIG) == 1 ? 0 : -1;
}

/* What one CA certificate of a new directory needs: made, saved, described for the store. */
struct made_cert {
	struct ca_key *key;
	struct ca_cert *cert;
	char *pem;
	struct ca_cert_info info;
};

static void made_cert_clear(struct made_cert *m)
{
	ca_key_free(m->key);
	ca_cert_free(m->cert);
	free(m->pem);
	memset(m, 0, sizeof(*m));
}

/* Generate a key, save it to keyfile (0600) and issue its certificate from issuer (NULL: self). */
static enum herr make_cert(const char *dir, const char *keyfile, struct ca_cert_request *req,
			   struct made_cert *issuer, struct made_cert *out)
{
	uint8_t spki[CA_SPKI_MAX];
	char path[PATH_MAX];
	enum herr rc;

	rc = ca_key_generate(&out->key);
	if (rc == HERR_OK)
		rc = fs_path(path, sizeof(path), "%s/%s", dir, keyfile);
	if (rc == HERR_OK)
		rc = ca_key_save(out->key, path);
	if (rc == HERR_OK)
		rc = ca_key_spki(out->key, spki, sizeof(spki), &req->subject_spki_len);
	if (rc != HERR_OK)
		return rc;
	req->subject_spki = spki;
	rc = ca_cert_issue(req, issuer ? issuer->key : out->key, issuer ? issuer->cert : NULL,
			   &out->pem, &out->info);
	req->subject_spki = NULL;
	if (rc != HERR_OK)
		return rc;
	return ca_cert_parse((const uint8_t *)out->pem, strlen(out->pem), &out->cert);
}

static enum herr write_text(const char *dir, const char *rel, const char *a, const char *b)
{
	char path[PATH_MAX];
	size_t la = strlen(a), lb = b ? strlen(b) : 0;
	enum herr rc;
	char *all;

	rc = fs_path(path, sizeof(path), "%s/%s", dir, rel);
	if (rc != HERR_OK)
		return rc;
	all = malloc(la + lb + 1);
	if (!all)
		return HERR_NOMEM;
	memcpy(all, a, la);
	if (b)
		memcpy(all + la, b, lb);
	rc = fs_write_file(path, all, la + lb, 0644, 1);
	free(all);
	if (rc != HERR_OK)
		log_err("%s: %s", path, herr_str(rc));
	return rc;
}

static enum herr record_cert(struct store *st, const char *kind, const struct made_cert *m)
{
	struct store_cert c = {
		.serial = m->info.serial_hex, .kind = kind, .device_id = NULL,
		.subject = m->info.subject, .fingerprint = m->info.fingerprint,
		.not_before = m->info.not_before, .not_after = m->info.not_after, .pem = m->pem,
	};

	return store_cert_insert(st, &c);
}

/* The database is made under a staging name and renamed last: a directory holding hearth.db is
 * always complete, and an interrupted init leaves no hearth.db (so the next attempt says so). */
static enum herr create_store(const char *dir, struct made_cert *root, struct made_cert *issuing,
			      struct made_cert *endpoint, const char *actor)
{
	char staging[PATH_MAX], final[PATH_MAX];
	struct datadir dd = { .store = NULL };
	enum herr rc;

	if (fs_path(staging, sizeof(staging), "%s/%s", dir, DB_STAGING) != HERR_OK ||
	    fs_path(final, sizeof(final), "%s/%s", dir, DATADIR_DB) != HERR_OK ||
	    fs_path(dd.path, sizeof(dd.path), "%s", dir) != HERR_OK)
		return HERR_TOOBIG;
	rc = store_open_sqlite(staging, &dd.store);
	if (rc != HERR_OK)
		return rc;
	rc = store_begin(dd.store);
	if (rc == HERR_OK)
		rc = record_cert(dd.store, "root", root);
	if (rc == HERR_OK)
		rc = record_cert(dd.store, "issuing", issuing);
	if (rc == HERR_OK)
		rc = record_cert(dd.store, "endpoint", endpoint);
	if (rc == HERR_OK)
		rc = pki_publish_crl(&dd, NULL);
	if (rc == HERR_OK)
		rc = store_audit(dd.store, (int64_t)time(NULL), actor, "datadir.init", dir, root->info.subject);
	if (rc == HERR_OK)
		rc = store_commit(dd.store);
	else
		store_rollback(dd.store);
	store_close(dd.store);
	if (rc == HERR_OK && rename(staging, final) != 0) {
		log_err("rename %s: %s", staging, strerror(errno));
		rc = HERR_IO;
	}
	return rc;
}

enum herr datadir_init(const char *dir, const struct datadir_init_opts *opts, int *created)
{
	static const char *const default_names[] = { "localhost", "127.0.0.1" };
	struct made_cert root = { 0 }, issuing = { 0 }, endpoint = { 0 };
	struct ca_key *manifest = NULL;
	char cn[64], tag_hex[9], path[PATH_MAX];
	unsigned char tag[4];
	const char *actor = opts->actor ? opts->actor : "unknown";
	struct ca_cert_request req;
	enum herr rc;
	int state;

	*created = 0;
	for (size_t i = 0; i < opts->name_count; i++) {
		if (!ca_valid_san(opts->names[i])) {
			log_err("endpoint name '%.80s' is neither a DNS name nor an IP address", opts->names[i]);
			return HERR_INVALID;
		}
	}
	if (opts->name_count > CA_MAX_SANS) {
		log_err("at most %d endpoint names", CA_MAX_SANS);
		return HERR_INVALID;
	}
	state = datadir_is_initialised(dir);
	if (state == 1)
		return HERR_OK;
	if (state < 0) {
		log_err("%s is not empty but holds no hearth database (an interrupted init, or another "
			"program's files); refusing to initialise over it", dir);
		return HERR_STATE;
	}
	rc = fs_make_private_dir(dir, NULL);
	if (rc != HERR_OK)
		return rc;
	if (chmod(dir, 0700) != 0) {
		log_err("chmod %s: %s", dir, strerror(errno));
		return HERR_IO;
	}
	if (fs_path(path, sizeof(path), "%s/keys", dir) != HERR_OK ||
	    fs_make_private_dir(path, NULL) != HERR_OK ||
	    fs_path(path, sizeof(path), "%s/certs", dir) != HERR_OK ||
	    fs_make_private_dir(path, NULL) != HERR_OK)
		return HERR_IO;

	/* A random tag in the CA names tells one installation's CA from another's in a trust store. */
	rc = rng_bytes(tag, sizeof(tag));
	if (rc != HERR_OK)
		return rc;
	snprintf(tag_hex, sizeof(tag_hex), "%02x%02x%02x%02x", tag[0], tag[1], tag[2], tag[3]);

	memset(&req, 0, sizeof(req));
	req.kind = CA_CERT_ROOT;
	req.common_name = cn;
	req.days = DATADIR_ROOT_DAYS;
	snprintf(cn, sizeof(cn), "hearth root CA %s", tag_hex);
	rc = make_cert(dir, DATADIR_ROOT_KEY, &req, NULL, &root);
	if (rc != HERR_OK)
		goto out;

	req.kind = CA_CERT_ISSUING;
	req.days = DATADIR_ISSUING_DAYS;
	snprintf(cn, sizeof(cn), "hearth issuing CA %s", tag_hex);
	rc = make_cert(dir, DATADIR_ISSUING_KEY, &req, &root, &issuing);
	if (rc != HERR_OK)
		goto out;

	req.kind = CA_CERT_ENDPOINT;
	req.sans = opts->name_count ? opts->names : default_names;
	req.san_count = opts->name_count ? opts->name_count : 2;
	req.common_name = req.sans[0];
	req.days = opts->endpoint_days ? opts->endpoint_days : DATADIR_ENDPOINT_DAYS;
	rc = make_cert(dir, DATADIR_ENDPOINT_KEY, &req, &issuing, &endpoint);
	if (rc != HERR_OK)
		goto out;

	rc = ca_key_generate(&manifest);
	if (rc == HERR_OK)
		rc = fs_path(path, sizeof(path), "%s/%s", dir, DATADIR_MANIFEST_KEY);
	if (rc == HERR_OK)
		rc = ca_key_save(manifest, path);
	if (rc != HERR_OK)
		goto out;

	if ((rc = write_text(dir, DATADIR_ROOT_CERT, root.pem, NULL)) != HERR_OK ||
	    (rc = write_text(dir, DATADIR_ISSUING_CERT, issuing.pem, NULL)) != HERR_OK ||
	    (rc = write_text(dir, DATADIR_ENDPOINT_CERT, endpoint.pem, issuing.pem)) != HERR_OK ||
	    (rc = write_text(dir, DATADIR_CA_BUNDLE, issuing.pem, root.pem)) != HERR_OK)
		goto out;
	rc = create_store(dir, &root, &issuing, &endpoint, actor);
	if (rc == HERR_OK)
		*created = 1;
out:
	if (rc != HERR_OK)
		log_err("initialising %s failed (%s); remove the partial directory and try again",
			dir, herr_str(rc));
	ca_key_free(manifest);
	made_cert_clear(&endpoint);
	made_cert_clear(&issuing);
	made_cert_clear(&root);
	return rc;
}

enum herr datadir_open(const char *dir, struct datadir **out)
{
	struct datadir *dd;
	char db[PATH_MAX];
	enum herr rc;

	*out = NULL;
	rc = fs_check_private_dir(dir);
	if (rc == HERR_NOTFOUND) {
		log_err("%s does not exist; create it with: hearth init --data %s", dir, dir);
		return rc;
	}
	if (rc == HERR_STATE) {
		log_err("%s is accessible to other users; it holds private keys: chmod 700 %s", dir, dir);
		return rc;
	}
	if (rc != HERR_OK) {
		log_err("%s: not a usable directory", dir);
		return rc;
	}
	if (datadir_is_initialised(dir) != 1) {
		log_err("%s holds no hearth database; create one with: hearth init --data %s", dir, dir);
		return HERR_NOTFOUND;
	}
	dd = calloc(1, sizeof(*dd));
	if (!dd)
		return HERR_NOMEM;
	if (fs_path(dd->path, sizeof(dd->path), "%s", dir) != HERR_OK ||
	    fs_path(db, sizeof(db), "%s/%s", dir, DATADIR_DB) != HERR_OK) {
		free(dd);
		return HERR_TOOBIG;
	}
	rc = store_open_sqlite(db, &dd->store);
	if (rc != HERR_OK) {
		free(dd);
		return rc;
	}
	*out = dd;
	return HERR_OK;
}

void datadir_close(struct datadir *dd)
{
	if (!dd)
		return;
	store_close(dd->store);
	free(dd);
}
