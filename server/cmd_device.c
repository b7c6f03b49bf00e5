/* hearth device add|revoke|list: devices and their certificates, from the host. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/cert.h"
#include "ca/csr.h"
#include "ca/key.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/rng.h"
#include "server/cli.h"
#include "server/datadir.h"
#include "server/pki.h"

static const char usage[] =
	"hearth device add    --data DIR [--id ID] --model MODEL (--csr FILE | --genkey) --out OUTDIR [--days N]\n"
	"hearth device revoke --data DIR --id ID\n"
	"hearth device decommission --data DIR --id ID\n"
	"  revokes the device and deletes everything stored about it (telemetry, last-seen, retained)\n"
	"hearth device list   --data DIR\n"
	"  --id ID      [A-Za-z0-9_-]{1,64}; opaque (no serial number, model or owner: it crosses the\n"
	"               wire in clear). Without --id a random one is made and printed.\n"
	"  --csr FILE   the device's PKCS#10 request (PEM or DER); only its public key is used\n"
	"  --genkey     make the key pair here and write OUTDIR/ID.key (0600): weaker than --csr, as\n"
	"               the private key exists outside the device\n"
	"  --out OUTDIR receives ID.crt and ca.pem (what the device needs to verify the endpoint)\n"
	"  --days N     certificate life (default 365)\n";

struct device_args {
	const char *data, *id, *model, *csr, *out;
	int genkey;
	unsigned days;
};

static int parse_args(int argc, char **argv, struct device_args *a)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "id", required_argument, NULL, 'i' },
		{ "model", required_argument, NULL, 'm' },
		{ "csr", required_argument, NULL, 'c' },
		{ "genkey", no_argument, NULL, 'g' },
		{ "out", required_argument, NULL, 'o' },
		{ "days", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;
	while ((c = getopt_long(argc, argv, "d:i:m:c:go:D:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 'i': a->id = optarg; break;
		case 'm': a->model = optarg; break;
		case 'c': a->csr = optarg; break;
		case 'g': a->genkey = 1; break;
		case 'o': a->out = optarg; break;
		case 'D':
			if (cli_parse_uint(optarg, 1, 3650, &a->days) != 0)
				return cli_usage("device", usage, "--days must be 1..3650");
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return cli_usage("device", usage, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage("device", usage, "unexpected argument '%s'", argv[optind]);
	a->data = cli_data_dir(a->data);
	return 0;
}

/* The public key to certify: from a checked CSR, or from a key pair made here (saved first, with
 * O_EXCL, so an existing key file is never replaced). */
static enum herr subject_key(const struct device_args *a, const char *id, struct ca_csr *csr,
			     char *keyfile, size_t keyfile_size)
{
	struct ca_key *key = NULL;
	uint8_t *data = NULL;
	char why[160] = "";
	size_t len = 0;
	enum herr rc;

	keyfile[0] = '\0';
	if (a->csr) {
		rc = fs_read_file(a->csr, CA_CSR_MAX, &data, &len);
		if (rc == HERR_TOOBIG) {
			log_err("%s: larger than %d bytes; not a CSR", a->csr, CA_CSR_MAX);
			return rc;
		}
		if (rc != HERR_OK) {
			log_err("%s: cannot read: %s", a->csr, herr_str(rc));
			return rc;
		}
		rc = ca_csr_check(data, len, csr, why, sizeof(why));
		free(data);
		if (rc != HERR_OK)
			log_err("%s: CSR refused: %s", a->csr, why);
		return rc;
	}
	memset(csr, 0, sizeof(*csr));
	rc = ca_key_generate(&key);
	if (rc == HERR_OK)
		rc = fs_path(keyfile, keyfile_size, "%s/%s.key", a->out, id);
	if (rc == HERR_OK) {
		rc = ca_key_save(key, keyfile);
		if (rc == HERR_EXISTS)
			log_err("%s already exists; not replacing a key", keyfile);
		if (rc != HERR_OK)
			keyfile[0] = '\0'; /* not ours to remove */
	}
	if (rc == HERR_OK)
		rc = ca_key_spki(key, csr->spki, sizeof(csr->spki), &csr->spki_len);
	if (rc == HERR_OK)
		snprintf(csr->key_desc, sizeof(csr->key_desc), "EC P-256");
	ca_key_free(key);
	return rc;
}

static enum herr write_out(const char *dir, const char *name, const char *text, size_t len,
			   char *path, size_t size)
{
	enum herr rc = fs_path(path, size, "%s/%s", dir, name);

	if (rc == HERR_OK)
		rc = fs_write_file(path, text, len, 0644, 0);
	if (rc != HERR_OK)
		log_err("%s: cannot write: %s", path, herr_str(rc));
	return rc;
}

static int device_add(int argc, char **argv)
{
	char id_buf[33], actor[96], keyfile[PATH_MAX], crt_path[PATH_MAX], ca_path[PATH_MAX];
	char name[80], *pem = NULL, *bundle = NULL;
	struct ca_cert_info info;
	struct datadir *dd = NULL;
	struct device_args a;
	struct ca_csr csr;
	size_t bundle_len = 0;
	const char *id;
	int ret = CLI_FAIL, r, in_tx = 0;

	r = parse_args(argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.model || !a.out || (!a.csr == !a.genkey))
		return cli_usage("device add", usage, "needs --model, --out, and one of --csr or --genkey");
	if (a.id && !ca_valid_id(a.id))
		return cli_usage("device add", usage, "device id '%.80s' must match [A-Za-z0-9_-]{1,64}", a.id);
	if (!ca_valid_id(a.model))
		return cli_usage("device add", usage, "model '%.80s' must match [A-Za-z0-9_-]{1,64}", a.model);
	id = a.id;
	if (!id) {
		unsigned char b[16];
		size_t i;

		if (rng_bytes(b, sizeof(b)) != HERR_OK)
			return CLI_FAIL;
		for (i = 0; i < sizeof(b); i++)
			snprintf(id_buf + 2 * i, 3, "%02x", b[i]);
		id = id_buf;
	}
	cli_actor(actor, sizeof(actor));
	keyfile[0] = crt_path[0] = ca_path[0] = '\0';

	if (datadir_open(a.data, &dd) != HERR_OK)
		goto out;
	if (fs_make_private_dir(a.out, NULL) != HERR_OK)
		goto out;
	if (subject_key(&a, id, &csr, keyfile, sizeof(keyfile)) != HERR_OK)
		goto out;
	if (store_begin(dd->store) != HERR_OK)
		goto out;
	in_tx = 1;
	if (pki_issue_device(dd, id, a.model, csr.spki, csr.spki_len, a.days, actor, &pem, &info) != HERR_OK)
		goto out;
	if (pki_ca_bundle(dd, &bundle, &bundle_len) != HERR_OK)
		goto out;
	/* Files first, commit last: a failure anywhere leaves neither a device without its files nor
	 * files for a device that was never recorded. */
	snprintf(name, sizeof(name), "%s.crt", id);
	if (write_out(a.out, name, pem, strlen(pem), crt_path, sizeof(crt_path)) != HERR_OK ||
	    write_out(a.out, "ca.pem", bundle, bundle_len, ca_path, sizeof(ca_path)) != HERR_OK)
		goto out;
	if (store_commit(dd->store) != HERR_OK)
		goto out;
	in_tx = 0;
	printf("device %s added (model %s, %s key)\n", id, a.model, csr.key_desc);
	printf("  certificate %s, serial %s, expires in %u days\n", crt_path, info.serial_hex,
	       a.days ? a.days : PKI_DEVICE_DAYS);
	printf("  CA bundle   %s\n", ca_path);
	if (keyfile[0])
		printf("  private key %s (made here: move it to the device and delete this copy)\n", keyfile);
	ret = CLI_OK;
out:
	if (in_tx) {
		store_rollback(dd->store);
		if (crt_path[0])
			unlink(crt_path);
	}
	if (ret != CLI_OK && keyfile[0])
		unlink(keyfile);
	free(pem);
	free(bundle);
	datadir_close(dd);
	return ret;
}

/* Revoke and decommission differ only in what the store does and what is said about it. */
struct device_end {
	const char *cmd, *action, *state_msg, *done_msg;
	enum herr (*run)(struct store *st, const char *id, int64_t now, int *certs);
};

static int device_end(const struct device_end *e, int argc, char **argv)
{
	struct datadir *dd = NULL;
	struct device_args a;
	char actor[96], detail[64];
	int ret = CLI_FAIL, r, certs = 0;
	enum herr rc;

	r = parse_args(argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.id || !ca_valid_id(a.id))
		return cli_usage(e->cmd, usage, "needs --id ID ([A-Za-z0-9_-]{1,64})");
	cli_actor(actor, sizeof(actor));
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	if (store_begin(dd->store) != HERR_OK)
		goto out;
	rc = e->run(dd->store, a.id, (int64_t)time(NULL), &certs);
	if (rc == HERR_NOTFOUND || rc == HERR_STATE) {
		log_err(rc == HERR_NOTFOUND ? "no device '%s'" : e->state_msg, a.id);
		goto out;
	}
	snprintf(detail, sizeof(detail), "%d certificate(s) revoked", certs);
	/* The CRL is re-issued in the same transaction: a revocation is never recorded without it. */
	if (rc != HERR_OK ||
	    store_audit(dd->store, (int64_t)time(NULL), actor, e->action, a.id, detail) != HERR_OK ||
	    pki_publish_crl(dd, NULL) != HERR_OK ||
	    store_commit(dd->store) != HERR_OK)
		goto out;
	printf(e->done_msg, a.id, certs, dd->path, DATADIR_CRL);
	ret = CLI_OK;
out:
	if (ret != CLI_OK)
		store_rollback(dd->store);
	datadir_close(dd);
	return ret;
}

static int device_revoke(int argc, char **argv)
{
	static const struct device_end e = {
		"device revoke", "device.revoke", "device '%s' is already revoked or decommissioned",
		"device %s revoked; %d certificate(s) added to the CRL (%s/%s)\n", store_device_revoke,
	};

	return device_end(&e, argc, argv);
}

static int device_decommission(int argc, char **argv)
{
	static const struct device_end e = {
		"device decommission", "device.decommission", "device '%s' is already decommissioned",
		"device %s decommissioned: %d certificate(s) revoked (CRL %s/%s), its stored data deleted\n",
		store_device_decommission,
	};

	return device_end(&e, argc, argv);
}

static int print_device(void *ctx, const struct store_device *d)
{
	char expires[32] = "-";
	struct tm tm;
	time_t t = (time_t)d->cert_not_after;

	(void)ctx;
	if (d->cert_not_after && gmtime_r(&t, &tm))
		strftime(expires, sizeof(expires), "%Y-%m-%d %H:%M:%SZ", &tm);
	printf("%-34s %-20s %-10s %s\n", d->id, d->model, d->status, expires);
	return 0;
}

static int device_list(int argc, char **argv)
{
	struct datadir *dd = NULL;
	struct device_args a;
	int r, ret = CLI_FAIL;

	r = parse_args(argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	printf("%-34s %-20s %-10s %s\n", "ID", "MODEL", "STATUS", "CERT EXPIRES");
	if (store_device_list(dd->store, print_device, NULL) == HERR_OK)
		ret = CLI_OK;
	datadir_close(dd);
	return ret;
}

int cmd_device(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "add", device_add },
		{ "revoke", device_revoke },
		{ "list", device_list },
		{ "decommission", device_decommission },
	};

	return cli_dispatch("device", usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
