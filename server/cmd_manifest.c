/* hearth manifest issue|sign|verify: DSSE envelopes made with, and checked against, the data
 * directory's manifest-signing key. issue also records the manifest for delivery (the running
 * server publishes it to the devices it addresses); sign only prints one, so an operator (and a
 * test with the openssl CLI) can see what a device will. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ca/cert.h"
#include "ca/key.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "ota/dsse.h"
#include "server/cli.h"
#include "server/datadir.h"
#include "server/manifest.h"

static const char usage[] =
	"hearth manifest issue  --data DIR (--device ID | --model NAME) --type pins|firmware|keys\n"
	"                       [--fields FILE] [--days N]\n"
	"  sign and record a manifest: the type's own fields from FILE (a JSON object), and type,\n"
	"  device, version (the next of its type), issued and expires (in N days, default 30) set\n"
	"  here; the running server publishes it, retained, to every active device it addresses\n"
	"hearth manifest upload --data DIR --envelope FILE\n"
	"  record a manifest signed elsewhere (the offline ceremony, docs/manifests.md): it must verify\n"
	"  against the manifest key, not be expired, and carry a version above every one of its type\n"
	"hearth manifest sign   --data DIR --body FILE [--out FILE]\n"
	"  sign a JSON body (an object with \"type\": pins|firmware|keys, \"device\", \"version\" >= 1 and\n"
	"  \"expires\") with DIR/keys/manifest.key; prints the DSSE envelope (or writes it to FILE)\n"
	"hearth manifest verify --data DIR --envelope FILE [--threshold N]\n"
	"  verify an envelope against the manifest key; prints the body, or says why it is refused\n";

struct manifest_args {
	const char *data, *body, *out, *envelope, *device, *model, *type, *fields;
	unsigned threshold, days;
};

static int parse_args(const char *cmd, int argc, char **argv, struct manifest_args *a)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "body", required_argument, NULL, 'b' },
		{ "out", required_argument, NULL, 'o' },
		{ "envelope", required_argument, NULL, 'e' },
		{ "threshold", required_argument, NULL, 't' },
		{ "device", required_argument, NULL, 'D' },
		{ "model", required_argument, NULL, 'm' },
		{ "type", required_argument, NULL, 'T' },
		{ "fields", required_argument, NULL, 'f' },
		{ "days", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->threshold = 1;
	a->days = 30;
	optind = 0;
	while ((c = getopt_long(argc, argv, "d:b:o:e:t:D:m:T:f:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': a->device = optarg; break;
		case 'm': a->model = optarg; break;
		case 'T': a->type = optarg; break;
		case 'f': a->fields = optarg; break;
		case 'n':
			if (cli_parse_uint(optarg, 1, 3650, &a->days) != 0)
				return cli_usage(cmd, usage, "--days must be 1..3650");
			break;
		case 'd': a->data = optarg; break;
		case 'b': a->body = optarg; break;
		case 'o': a->out = optarg; break;
		case 'e': a->envelope = optarg; break;
		case 't':
			if (cli_parse_uint(optarg, 1, DSSE_SIGS_MAX, &a->threshold) != 0)
				return cli_usage(cmd, usage, "--threshold must be 1..%d", DSSE_SIGS_MAX);
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return cli_usage(cmd, usage, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage(cmd, usage, "unexpected argument '%s'", argv[optind]);
	a->data = cli_data_dir(a->data);
	return 0;
}

/* The fields every manifest body carries (DESIGN.md "Signed manifests"); why says what is wrong. */
static int body_check(const uint8_t *text, size_t len, char *why, size_t why_size)
{
	json_t *root, *type, *device, *version, *expires;
	const char *t;
	json_error_t err;
	int ok = 0;

	root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (!root) {
		snprintf(why, why_size, "not JSON (line %d: %s)", err.line, err.text);
		return 0;
	}
	type = json_object_get(root, "type");
	device = json_object_get(root, "device");
	version = json_object_get(root, "version");
	expires = json_object_get(root, "expires");
	t = json_string_value(type);
	if (!json_is_object(root))
		snprintf(why, why_size, "the body must be a JSON object");
	else if (!t || (strcmp(t, "pins") != 0 && strcmp(t, "firmware") != 0 && strcmp(t, "keys") != 0))
		snprintf(why, why_size, "\"type\" must be \"pins\", \"firmware\" or \"keys\"");
	else if (!json_is_string(device) || json_string_length(device) == 0)
		snprintf(why, why_size, "\"device\" must be a non-empty string (a device id, model or cohort)");
	else if (!json_is_integer(version) || json_integer_value(version) < 1)
		snprintf(why, why_size, "\"version\" must be an integer >= 1");
	else if (!json_is_integer(expires))
		snprintf(why, why_size, "\"expires\" must be an integer (Unix time)");
	else
		ok = 1;
	json_decref(root);
	return ok;
}

/* The data directory's manifest key (NULL: not wanted) and its DER SubjectPublicKeyInfo. */
static int manifest_key(const char *data, struct ca_key **key, struct dsse_key *pub)
{
	struct datadir *dd = NULL;
	struct ca_key *k = NULL;
	char path[PATH_MAX];
	int ret = CLI_FAIL;

	if (datadir_open(data, &dd) != HERR_OK)
		return CLI_FAIL;
	if (datadir_file(dd, DATADIR_MANIFEST_KEY, path, sizeof(path)) != HERR_OK ||
	    ca_key_load(path, &k) != HERR_OK ||
	    ca_key_spki(k, pub->spki, sizeof(pub->spki), &pub->spki_len) != HERR_OK)
		goto out;
	if (key) {
		*key = k;
		k = NULL; /* ownership passed */
	}
	ret = CLI_OK;
out:
	ca_key_free(k);
	datadir_close(dd);
	return ret;
}

static int manifest_sign(int argc, char **argv)
{
	struct dsse_signer signer;
	struct manifest_args a;
	struct ca_key *key = NULL;
	struct dsse_key pub;
	uint8_t *body = NULL;
	char *env = NULL, why[256];
	size_t len = 0, env_len = 0;
	int r, ret = CLI_FAIL;
	enum herr rc;

	r = parse_args("manifest sign", argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.body)
		return cli_usage("manifest sign", usage, "needs --body FILE");
	rc = fs_read_file(a.body, DSSE_BODY_MAX, &body, &len);
	if (rc != HERR_OK) {
		if (rc == HERR_TOOBIG)
			fprintf(stderr, "hearth manifest sign: %s: over %d bytes, a body's limit\n", a.body,
				DSSE_BODY_MAX);
		else
			fprintf(stderr, "hearth manifest sign: %s: %s\n", a.body, herr_str(rc));
		return CLI_FAIL;
	}
	if (!body_check(body, len, why, sizeof(why))) {
		fprintf(stderr, "hearth manifest sign: %s: %s\n", a.body, why);
		goto out;
	}
	if (manifest_key(a.data, &key, &pub) != CLI_OK)
		goto out;
	if (manifest_signer(key, &signer) != HERR_OK || dsse_sign(body, len, &signer, 1, &env, &env_len) != HERR_OK) {
		fprintf(stderr, "hearth manifest sign: signing failed\n");
		goto out;
	}
	if (a.out) {
		/* The envelope and a newline (JSON whitespace), like the one printed. */
		env[env_len] = '\n';
		rc = fs_write_file(a.out, env, env_len + 1, 0644, 0);
		env[env_len] = '\0';
		if (rc != HERR_OK) {
			fprintf(stderr, "hearth manifest sign: %s: %s\n", a.out, herr_str(rc));
			goto out;
		}
		printf("manifest signed by keyid %s, written to %s\n", signer.keyid, a.out);
	} else {
		printf("%s\n", env);
	}
	ret = CLI_OK;
out:
	free(env);
	free(body);
	ca_key_free(key);
	return ret;
}

static int manifest_verify(int argc, char **argv)
{
	struct dsse_verified v;
	struct manifest_args a;
	struct dsse_key pub;
	uint8_t *env = NULL;
	char why[256];
	size_t len = 0, i;
	int r, ret = CLI_FAIL;
	enum herr rc;

	memset(&v, 0, sizeof(v));
	r = parse_args("manifest verify", argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.envelope)
		return cli_usage("manifest verify", usage, "needs --envelope FILE");
	rc = fs_read_file(a.envelope, DSSE_ENVELOPE_MAX, &env, &len);
	if (rc != HERR_OK) {
		if (rc == HERR_TOOBIG)
			fprintf(stderr, "hearth manifest verify: %s: over %d bytes, an envelope's limit\n",
				a.envelope, DSSE_ENVELOPE_MAX);
		else
			fprintf(stderr, "hearth manifest verify: %s: %s\n", a.envelope, herr_str(rc));
		return CLI_FAIL;
	}
	if (manifest_key(a.data, NULL, &pub) != CLI_OK)
		goto out;
	rc = dsse_verify(env, len, &pub, 1, a.threshold, &v, why, sizeof(why));
	if (rc != HERR_OK) {
		fprintf(stderr, "hearth manifest verify: %s: refused: %s\n", a.envelope, why);
		goto out;
	}
	for (i = 0; i < v.valid_keys; i++)
		fprintf(stderr, "hearth manifest verify: good signature by keyid %s\n", v.keyids[i]);
	/* The body exactly as signed, nothing added, so it can be compared byte for byte. */
	if (fwrite(v.body, 1, v.body_len, stdout) != v.body_len || fflush(stdout) != 0) {
		log_err("cannot write the body");
		goto out;
	}
	ret = CLI_OK;
out:
	dsse_verified_free(&v);
	free(env);
	return ret;
}

static int issue_cmd(int argc, char **argv)
{
	struct manifest_issued done;
	struct store_device dev;
	struct manifest_args a;
	struct datadir *dd = NULL;
	json_t *fields = NULL;
	json_error_t err;
	char target[80], actor[96], *policy = NULL;
	int r, ret = CLI_FAIL;

	r = parse_args("manifest issue", argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.type || (strcmp(a.type, "pins") != 0 && strcmp(a.type, "firmware") != 0 && strcmp(a.type, "keys") != 0))
		return cli_usage("manifest issue", usage, "--type must be pins, firmware or keys");
	if (!a.device == !a.model)
		return cli_usage("manifest issue", usage, "needs one of --device ID or --model NAME");
	if (!ca_valid_id(a.device ? a.device : a.model))
		return cli_usage("manifest issue", usage, "the id or model must match [A-Za-z0-9_-]{1,64}");
	snprintf(target, sizeof(target), "%s:%s", a.device ? "device" : "model", a.device ? a.device : a.model);
	cli_actor(actor, sizeof(actor));
	if (a.fields) {
		fields = json_load_file(a.fields, JSON_REJECT_DUPLICATES, &err);
		if (!json_is_object(fields)) {
			fprintf(stderr, "hearth manifest issue: %s: not a JSON object (%s)\n", a.fields, err.text);
			goto out;
		}
	}
	if (datadir_open(a.data, &dd) != HERR_OK)
		goto out;
	if (a.device) {
		if (store_device_get(dd->store, a.device, &dev) != HERR_OK || strcmp(dev.status, "active") != 0) {
			fprintf(stderr, "hearth manifest issue: no active device '%s'\n", a.device);
			goto out;
		}
	} else if (store_model_get_policy(dd->store, a.model, &policy) == HERR_NOTFOUND) {
		fprintf(stderr, "hearth manifest issue: no model '%s'\n", a.model);
		goto out;
	}
	if (manifest_issue(dd, target, a.type, fields, a.days, actor, 0, &done) != HERR_OK)
		goto out;
	printf("manifest %s version %lld for %s issued (keyid %s); a running server delivers it within a "
	       "second\n", a.type, (long long)done.version, target, done.keyid);
	ret = CLI_OK;
out:
	free(policy);
	json_decref(fields);
	datadir_close(dd);
	return ret;
}

/* Where an uploaded manifest goes, from its body's "device": "*" is everyone, else a device id, else
 * a model. 0, or -1 after saying why. */
static int upload_target(struct datadir *dd, const char *device, char *target, size_t size)
{
	struct store_device dev;
	char *policy = NULL;

	if (strcmp(device, "*") == 0) {
		snprintf(target, size, "all");
		return 0;
	}
	if (!ca_valid_id(device)) {
		fprintf(stderr, "hearth manifest upload: \"device\" is neither \"*\", an id nor a model\n");
		return -1;
	}
	if (store_device_get(dd->store, device, &dev) == HERR_OK) {
		snprintf(target, size, "device:%s", device);
		return 0;
	}
	if (store_model_get_policy(dd->store, device, &policy) == HERR_OK) {
		free(policy);
		snprintf(target, size, "model:%s", device);
		return 0;
	}
	fprintf(stderr, "hearth manifest upload: no device or model '%s'\n", device);
	return -1;
}

static int manifest_upload(int argc, char **argv)
{
	struct dsse_verified v;
	struct store_manifest m;
	struct manifest_args a;
	struct dsse_key pub;
	struct datadir *dd = NULL;
	json_t *body = NULL;
	uint8_t *env = NULL;
	char why[256], target[80], actor[96], detail[96];
	const char *type;
	size_t len = 0;
	int64_t now = (int64_t)time(NULL), version, next = 0;
	int r, ret = CLI_FAIL, in_tx = 0;

	memset(&v, 0, sizeof(v));
	r = parse_args("manifest upload", argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.envelope)
		return cli_usage("manifest upload", usage, "needs --envelope FILE");
	if (fs_read_file(a.envelope, DSSE_ENVELOPE_MAX, &env, &len) != HERR_OK) {
		fprintf(stderr, "hearth manifest upload: %s: cannot read (at most %d bytes)\n", a.envelope,
			DSSE_ENVELOPE_MAX);
		return CLI_FAIL;
	}
	while (len > 0 && (env[len - 1] == '\n' || env[len - 1] == ' '))
		env[--len] = '\0';
	if (manifest_key(a.data, NULL, &pub) != CLI_OK)
		goto out;
	if (dsse_verify(env, len, &pub, 1, 1, &v, why, sizeof(why)) != HERR_OK) {
		fprintf(stderr, "hearth manifest upload: %s: refused: %s\n", a.envelope, why);
		goto out;
	}
	if (!body_check(v.body, v.body_len, why, sizeof(why))) {
		fprintf(stderr, "hearth manifest upload: %s: refused: %s\n", a.envelope, why);
		goto out;
	}
	body = json_loadb((const char *)v.body, v.body_len, JSON_REJECT_DUPLICATES, NULL);
	type = json_string_value(json_object_get(body, "type"));
	version = json_integer_value(json_object_get(body, "version"));
	if (json_integer_value(json_object_get(body, "expires")) <= now) {
		fprintf(stderr, "hearth manifest upload: %s: refused: expired\n", a.envelope);
		goto out;
	}
	cli_actor(actor, sizeof(actor));
	if (datadir_open(a.data, &dd) != HERR_OK ||
	    upload_target(dd, json_string_value(json_object_get(body, "device")), target, sizeof(target)) != 0)
		goto out;
	if (store_begin(dd->store) != HERR_OK)
		goto out;
	in_tx = 1;
	if (store_manifest_next_version(dd->store, type, &next) != HERR_OK)
		goto out;
	if (version < next) {
		fprintf(stderr, "hearth manifest upload: %s: refused: version %lld is not above the last %s "
			"manifest's (%lld): versions only grow\n", a.envelope, (long long)version, type,
			(long long)(next - 1));
		goto out;
	}
	m = (struct store_manifest){ .target = target, .type = type, .version = version, .issued_at = now,
				     .expires_at = json_integer_value(json_object_get(body, "expires")),
				     .envelope = (const char *)env };
	snprintf(detail, sizeof(detail), "%s version %lld, signed elsewhere", type, (long long)version);
	if (store_manifest_insert(dd->store, &m) != HERR_OK ||
	    store_audit(dd->store, now, actor, "manifest.upload", target, detail) != HERR_OK ||
	    store_commit(dd->store) != HERR_OK)
		goto out;
	in_tx = 0;
	printf("manifest %s version %lld for %s recorded; a running server delivers it within a second\n", type,
	       (long long)version, target);
	ret = CLI_OK;
out:
	if (in_tx)
		store_rollback(dd->store);
	json_decref(body);
	dsse_verified_free(&v);
	free(env);
	datadir_close(dd);
	return ret;
}

int cmd_manifest(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "issue", issue_cmd },
		{ "upload", manifest_upload },
		{ "sign", manifest_sign },
		{ "verify", manifest_verify },
	};

	return cli_dispatch("manifest", usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
