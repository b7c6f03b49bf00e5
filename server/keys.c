#include "server/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ca/key.h"
#include "common/log.h"
#include "ota/dsse.h"
#include "server/manifest.h"

/* A key's keyid, as its manifest signatures name it. */
static enum herr keyid_of(struct ca_key *key, char keyid[65])
{
	struct dsse_signer s;
	enum herr rc = manifest_signer(key, &s);

	if (rc == HERR_OK)
		memcpy(keyid, s.keyid, sizeof(s.keyid));
	return rc;
}

enum herr keys_rotate(struct datadir *dd, const char *actor, struct keys_rotated *out)
{
	char cur[PATH_MAX], next[PATH_MAX], retired[PATH_MAX], rel[64], *pem = NULL;
	struct ca_key *old = NULL, *fresh = NULL;
	struct manifest_issued done;
	json_t *fields = NULL;
	enum herr rc;

	memset(out, 0, sizeof(*out));
	if ((rc = datadir_file(dd, DATADIR_MANIFEST_KEY, cur, sizeof(cur))) != HERR_OK ||
	    (rc = datadir_file(dd, KEYS_NEXT, next, sizeof(next))) != HERR_OK ||
	    (rc = ca_key_load(cur, &old)) != HERR_OK || (rc = keyid_of(old, out->old_keyid)) != HERR_OK)
		goto out;
	/* A rotation interrupted after the key was made resumes with that key. */
	if (access(next, F_OK) == 0) {
		rc = ca_key_load(next, &fresh);
	} else {
		rc = ca_key_generate(&fresh);
		if (rc == HERR_OK)
			rc = ca_key_save(fresh, next);
	}
	if (rc != HERR_OK || (rc = keyid_of(fresh, out->new_keyid)) != HERR_OK ||
	    (rc = ca_key_public_pem(fresh, &pem)) != HERR_OK)
		goto out;
	fields = json_pack("{s:[{s:s, s:s}], s:i, s:[s]}", "keys", "keyid", out->new_keyid, "public_key", pem,
			   "threshold", 1, "replaces", out->old_keyid);
	if (!fields) {
		rc = HERR_NOMEM;
		goto out;
	}
	rc = manifest_issue_cosigned(dd, "all", "keys", fields, KEYS_MANIFEST_DAYS, actor, 0, fresh, &done);
	if (rc != HERR_OK)
		goto out;
	out->version = done.version;
	/* Recorded (signed by both): from now on the new key signs. */
	snprintf(rel, sizeof(rel), "keys/manifest-retired-%.16s.key", out->old_keyid);
	if ((rc = datadir_file(dd, rel, retired, sizeof(retired))) != HERR_OK || rename(cur, retired) != 0 ||
	    rename(next, cur) != 0) {
		log_err("the keys manifest was recorded but the key files could not be moved: move %s to %s "
			"and %s to %s by hand", cur, retired, next, cur);
		rc = HERR_IO;
	}
out:
	free(pem);
	json_decref(fields);
	ca_key_free(old);
	ca_key_free(fresh);
	return rc;
}
