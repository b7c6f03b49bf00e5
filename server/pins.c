#include "server/pins.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "ota/dsse.h"
#include "server/manifest.h"
#include "server/pki.h"

static enum herr pin_of(struct datadir *dd, const char *rel, char pin[CA_PIN_LEN])
{
	char path[PATH_MAX];
	struct ca_key *key = NULL;
	uint8_t spki[CA_SPKI_MAX];
	size_t len = 0;
	enum herr rc;

	pin[0] = '\0';
	if ((rc = datadir_file(dd, rel, path, sizeof(path))) != HERR_OK)
		return rc;
	if (access(path, F_OK) != 0)
		return HERR_OK; /* not made yet */
	if ((rc = ca_key_load(path, &key)) == HERR_OK && (rc = ca_key_spki(key, spki, sizeof(spki), &len)) == HERR_OK)
		ca_pin_from_spki(spki, len, pin);
	ca_key_free(key);
	return rc;
}

enum herr pins_read(struct datadir *dd, struct pins_set *out)
{
	enum herr rc;

	memset(out, 0, sizeof(*out));
	if ((rc = pin_of(dd, DATADIR_ENDPOINT_KEY, out->current)) != HERR_OK ||
	    (rc = pin_of(dd, PINS_NEXT_KEY, out->next)) != HERR_OK)
		return rc;
	return pin_of(dd, PINS_BACKUP_KEY, out->backup);
}

static enum herr make_key_if_missing(struct datadir *dd, const char *rel)
{
	char path[PATH_MAX];
	struct ca_key *key = NULL;
	enum herr rc;

	if ((rc = datadir_file(dd, rel, path, sizeof(path))) != HERR_OK || access(path, F_OK) == 0)
		return rc;
	rc = ca_key_generate(&key);
	if (rc == HERR_OK)
		rc = ca_key_save(key, path);
	ca_key_free(key);
	if (rc == HERR_OK)
		log_info("made %s", rel);
	return rc;
}

enum herr pins_announce(struct datadir *dd, const char *actor, int64_t *version)
{
	struct manifest_issued done;
	struct pins_set p;
	json_t *fields;
	enum herr rc;

	*version = 0;
	if ((rc = make_key_if_missing(dd, PINS_NEXT_KEY)) != HERR_OK ||
	    (rc = make_key_if_missing(dd, PINS_BACKUP_KEY)) != HERR_OK || (rc = pins_read(dd, &p)) != HERR_OK)
		return rc;
	fields = json_pack("{s:[s,s,s], s:s, s:s, s:s}", "pins", p.current, p.next, p.backup, "current", p.current,
			   "next", p.next, "backup", p.backup);
	if (!fields)
		return HERR_NOMEM;
	rc = manifest_issue(dd, "all", "pins", fields, 0, actor, 0, &done);
	json_decref(fields);
	if (rc == HERR_OK)
		*version = done.version;
	return rc;
}

/* The newest pin set sent to everyone: its version and its "next" pin. */
struct latest {
	int64_t version;
	char next[CA_PIN_LEN], backup[CA_PIN_LEN];
};

static int take_latest(void *ctx, const struct store_manifest *m)
{
	struct latest *l = ctx;
	json_t *env = json_loads(m->envelope, 0, NULL), *body = NULL;
	const char *payload = json_string_value(json_object_get(env, "payload"));
	uint8_t *raw = NULL;
	size_t raw_len = 0;

	l->version = m->version;
	/* Our own envelope from our own store: its payload is the body we signed. */
	if (payload && dsse_b64_decode(payload, strlen(payload), &raw, &raw_len) == HERR_OK)
		body = json_loadb((const char *)raw, raw_len, 0, NULL);
	snprintf(l->next, sizeof(l->next), "%s", json_string_value(json_object_get(body, "next")) ?
		 json_string_value(json_object_get(body, "next")) : "");
	snprintf(l->backup, sizeof(l->backup), "%s", json_string_value(json_object_get(body, "backup")) ?
		 json_string_value(json_object_get(body, "backup")) : "");
	json_decref(body);
	json_decref(env);
	free(raw);
	return 1;
}

struct count {
	struct pins_status *st;
	pins_stranded_fn fn;
	void *ctx;
};

static int count_device(void *ctx, const char *id, int acked)
{
	struct count *c = ctx;

	c->st->active++;
	if (acked)
		c->st->acked++;
	else if (c->fn)
		return c->fn(c->ctx, id);
	return 0;
}

enum herr pins_status(struct datadir *dd, int64_t now, struct pins_status *out, pins_stranded_fn fn, void *ctx)
{
	struct latest l = { 0 };
	struct count c = { .st = out, .fn = fn, .ctx = ctx };
	enum herr rc;

	memset(out, 0, sizeof(*out));
	rc = store_manifest_latest_target(dd->store, "all", "pins", take_latest, &l);
	if (rc != HERR_OK)
		return rc;
	out->version = l.version;
	memcpy(out->next, l.next, sizeof(out->next));
	memcpy(out->backup, l.backup, sizeof(out->backup));
	return store_manifest_readiness(dd->store, "pins", l.version, now - (int64_t)PINS_SEEN_DAYS * 86400,
					count_device, &c);
}

static enum herr move(struct datadir *dd, const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];
	enum herr rc;

	if ((rc = datadir_file(dd, from, a, sizeof(a))) != HERR_OK || (rc = datadir_file(dd, to, b, sizeof(b))) != HERR_OK)
		return rc;
	if (rename(a, b) != 0) {
		log_err("cannot move %s to %s", from, to);
		return HERR_IO;
	}
	return HERR_OK;
}

/* Move the endpoint to the key in file to_rel (next or backup), announced as announced. */
static enum herr switch_to(struct datadir *dd, const char *to_rel, int backup, const char *actor, int64_t *version)
{
	struct ca_cert_info info;
	struct pins_status st;
	struct pins_set p;
	char path[PATH_MAX];
	const char *want, *said;
	enum herr rc;

	*version = 0;
	if ((rc = pins_read(dd, &p)) != HERR_OK)
		return rc;
	rc = pins_status(dd, 0, &st, NULL, NULL);
	want = backup ? p.backup : p.next;
	said = backup ? st.backup : st.next;
	if (rc == HERR_NOTFOUND || (rc == HERR_OK && (!want[0] || strcmp(said, want) != 0))) {
		log_err("the %s key is not on disk or was not announced in the newest pin set: %s",
			backup ? "backup" : "next", backup ? "put the backup key back as " PINS_BACKUP_KEY :
			"run 'hearth pins rotate' first");
		return HERR_STATE;
	}
	if (rc != HERR_OK)
		return rc;
	/* The key first, then the certificate: the server reloads when the certificate file changes. */
	if ((rc = move(dd, DATADIR_ENDPOINT_KEY, PINS_RETIRED_KEY)) != HERR_OK)
		return rc;
	if ((rc = move(dd, to_rel, DATADIR_ENDPOINT_KEY)) != HERR_OK) {
		(void)move(dd, PINS_RETIRED_KEY, DATADIR_ENDPOINT_KEY);
		return rc;
	}
	if ((rc = pki_rekey_endpoint(dd, actor, &info)) != HERR_OK) {
		(void)move(dd, DATADIR_ENDPOINT_KEY, to_rel);
		(void)move(dd, PINS_RETIRED_KEY, DATADIR_ENDPOINT_KEY);
		return rc;
	}
	log_info("endpoint moved to its %s key (certificate serial %s)", backup ? "backup" : "next", info.serial_hex);
	/* The emergency path: the next key is no longer trusted, so it goes; announcing makes a fresh
	 * next and backup. */
	if (backup && datadir_file(dd, PINS_NEXT_KEY, path, sizeof(path)) == HERR_OK && unlink(path) == 0)
		log_warn("the next key was discarded: a fresh one is announced");
	/* A fresh next key, and the set without the old key. */
	return pins_announce(dd, actor, version);
}

enum herr pins_switch(struct datadir *dd, const char *actor, int64_t *version)
{
	return switch_to(dd, PINS_NEXT_KEY, 0, actor, version);
}

enum herr pins_switch_backup(struct datadir *dd, const char *actor, int64_t *version)
{
	return switch_to(dd, PINS_BACKUP_KEY, 1, actor, version);
}
