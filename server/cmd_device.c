/* hearth device add|revoke|decommission|list and hearth client add|revoke|list: the identities
 * that connect (devices, integration clients) and their certificates, from the host. */
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
#include "server/acl.h"
#include "server/pki.h"

static const char client_usage[] =
	"hearth client add    --data DIR [--id ID] --role integration (--csr FILE | --genkey) --out OUTDIR [--days N]\n"
	"hearth client revoke --data DIR --id ID\n"
	"hearth client list   --data DIR\n"
	"  An integration client (Home Assistant, Node-RED, a script) connects to the MQTT endpoint\n"
	"  with its certificate and may only subscribe to hearth/v1/+/telemetry (or one device's\n"
	"  hearth/v1/ID/telemetry): it receives the minimized records, one per device and closed time\n"
	"  bucket, never a raw device payload. It cannot publish.\n"
	"  --id, --csr, --genkey, --out, --days as for 'hearth device add'\n";

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
	const char *data, *id, *model, *role, *csr, *out;
	int genkey;
	unsigned days;
};

static int parse_args(const char *cmd, const char *usage_text, int argc, char **argv,
		      struct device_args *a)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "id", required_argument, NULL, 'i' },
		{ "model", required_argument, NULL, 'm' },
		{ "role", required_argument, NULL, 'r' },
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
	while ((c = getopt_long(argc, argv, "d:i:m:r:c:go:D:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 'i': a->id = optarg; break;
		case 'm': a->model = optarg; break;
		case 'r': a->role = optarg; break;
		case 'c': a->csr = optarg; break;
		case 'g': a->genkey = 1; break;
		case 'o': a->out = optarg; break;
		case 'D':
			if (cli_parse_uint(optarg, 1, 3650, &a->days) != 0)
				return cli_usage(cmd, usage_text, "--days must be 1..3650");
			break;
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		default:
			return cli_usage(cmd, usage_text, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage(cmd, usage_text, "unexpected argument '%s'", argv[optind]);
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

/* Adding a device and adding an integration client differ only in what they belong to (a model,
 * a role) and how that is recorded. */
struct add_kind {
	const char *cmd, *usage, *noun, *group_opt;
	const char *(*group)(const struct device_args *a);
	int (*group_ok)(const char *group);
	enum herr (*issue)(struct datadir *dd, const char *id, const char *group, const uint8_t *spki,
			   size_t spki_len, unsigned days, const char *actor, const char *source, char **pem,
			   struct ca_cert_info *info);
};

static int add(const struct add_kind *k, int argc, char **argv)
{
	char id_buf[33], actor[96], keyfile[PATH_MAX], crt_path[PATH_MAX], ca_path[PATH_MAX];
	char name[80], *pem = NULL, *bundle = NULL;
	struct ca_cert_info info;
	struct datadir *dd = NULL;
	struct device_args a;
	struct ca_csr csr;
	size_t bundle_len = 0;
	const char *id, *group;
	int ret = CLI_FAIL, r, in_tx = 0;

	r = parse_args(k->cmd, k->usage, argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	group = k->group(&a);
	if (!group || !a.out || (!a.csr == !a.genkey))
		return cli_usage(k->cmd, k->usage, "needs %s, --out, and one of --csr or --genkey", k->group_opt);
	if (a.id && !ca_valid_id(a.id))
		return cli_usage(k->cmd, k->usage, "id '%.80s' must match [A-Za-z0-9_-]{1,64}", a.id);
	if (!k->group_ok(group))
		return cli_usage(k->cmd, k->usage, "%s '%.80s' is not valid", k->group_opt, group);
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
	if (k->issue(dd, id, group, csr.spki, csr.spki_len, a.days, actor, NULL, &pem, &info) != HERR_OK)
		goto out;
	if (pki_ca_bundle(dd, &bundle, &bundle_len) != HERR_OK)
		goto out;
	/* Files first, commit last: a failure anywhere leaves neither an identity without its files
	 * nor files for one that was never recorded. */
	snprintf(name, sizeof(name), "%s.crt", id);
	if (write_out(a.out, name, pem, strlen(pem), crt_path, sizeof(crt_path)) != HERR_OK ||
	    write_out(a.out, "ca.pem", bundle, bundle_len, ca_path, sizeof(ca_path)) != HERR_OK)
		goto out;
	if (store_commit(dd->store) != HERR_OK)
		goto out;
	in_tx = 0;
	printf("%s %s added (%s %s, %s key)\n", k->noun, id, k->group_opt + 2, group, csr.key_desc);
	printf("  certificate %s, serial %s, expires in %u days\n", crt_path, info.serial_hex,
	       a.days ? a.days : PKI_DEVICE_DAYS);
	printf("  CA bundle   %s\n", ca_path);
	if (keyfile[0])
		printf("  private key %s (made here: move it to the %s and delete this copy)\n", keyfile, k->noun);
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

static const char *model_of(const struct device_args *a)
{
	return a->model;
}

static const char *role_of(const struct device_args *a)
{
	return a->role;
}

static int model_ok(const char *model)
{
	return ca_valid_id(model);
}

/* A client's role is one a client can have: not "device". */
static int role_ok(const char *role)
{
	enum acl_role r;

	return acl_role_parse(role, &r) == 0 && r != ACL_DEVICE;
}

static int device_add(int argc, char **argv)
{
	static const struct add_kind k = { "device add", usage, "device", "--model", model_of, model_ok,
					   pki_issue_device };

	return add(&k, argc, argv);
}

static int client_add(int argc, char **argv)
{
	static const struct add_kind k = { "client add", client_usage, "client", "--role", role_of, role_ok,
					   pki_issue_client };

	return add(&k, argc, argv);
}

/* Revoke and decommission differ only in what the store does and what is said about it. */
struct device_end {
	const char *cmd, *usage, *noun, *action, *state_msg, *done_msg;
	enum herr (*run)(struct store *st, const char *id, int64_t now, int *certs);
};

static int device_end(const struct device_end *e, int argc, char **argv)
{
	struct datadir *dd = NULL;
	struct device_args a;
	char actor[96], detail[64];
	int ret = CLI_FAIL, r, certs = 0;
	enum herr rc;

	r = parse_args(e->cmd, e->usage, argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.id || !ca_valid_id(a.id))
		return cli_usage(e->cmd, e->usage, "needs --id ID ([A-Za-z0-9_-]{1,64})");
	cli_actor(actor, sizeof(actor));
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	if (store_begin(dd->store) != HERR_OK)
		goto out;
	rc = e->run(dd->store, a.id, (int64_t)time(NULL), &certs);
	if (rc == HERR_NOTFOUND || rc == HERR_STATE) {
		if (rc == HERR_NOTFOUND)
			log_err("no %s '%s'", e->noun, a.id);
		else
			log_err(e->state_msg, a.id);
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
		"device revoke", usage, "device", "device.revoke", "device '%s' is already revoked or decommissioned",
		"device %s revoked; %d certificate(s) added to the CRL (%s/%s)\n", store_device_revoke,
	};

	return device_end(&e, argc, argv);
}

static int device_decommission(int argc, char **argv)
{
	static const struct device_end e = {
		"device decommission", usage, "device", "device.decommission", "device '%s' is already decommissioned",
		"device %s decommissioned: %d certificate(s) revoked (CRL %s/%s), its stored data deleted\n",
		store_device_decommission,
	};

	return device_end(&e, argc, argv);
}

static int client_revoke(int argc, char **argv)
{
	static const struct device_end e = {
		"client revoke", client_usage, "client", "client.revoke", "client '%s' is already revoked",
		"client %s revoked; %d certificate(s) added to the CRL (%s/%s)\n", store_client_revoke,
	};

	return device_end(&e, argc, argv);
}

static void format_expiry(int64_t not_after, char *buf, size_t size)
{
	struct tm tm;
	time_t t = (time_t)not_after;

	snprintf(buf, size, "-");
	if (not_after && gmtime_r(&t, &tm))
		strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static int print_device(void *ctx, const struct store_device *d)
{
	char expires[32];

	(void)ctx;
	format_expiry(d->cert_not_after, expires, sizeof(expires));
	printf("%-34s %-20s %-10s %s\n", d->id, d->model, d->status, expires);
	return 0;
}

static int print_client(void *ctx, const struct store_client *k)
{
	char expires[32];

	(void)ctx;
	format_expiry(k->cert_not_after, expires, sizeof(expires));
	printf("%-34s %-20s %-10s %s\n", k->id, k->role, k->status, expires);
	return 0;
}

/* Listing devices and listing clients differ in the store call and the second column. */
static int list(const char *cmd, const char *usage_text, const char *column, int clients, int argc,
		char **argv)
{
	struct datadir *dd = NULL;
	struct device_args a;
	int r, ret = CLI_FAIL;
	enum herr rc;

	r = parse_args(cmd, usage_text, argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	printf("%-34s %-20s %-10s %s\n", "ID", column, "STATUS", "CERT EXPIRES");
	rc = clients ? store_client_list(dd->store, print_client, NULL)
		     : store_device_list(dd->store, print_device, NULL);
	if (rc == HERR_OK)
		ret = CLI_OK;
	datadir_close(dd);
	return ret;
}

static int device_list(int argc, char **argv)
{
	return list("device list", usage, "MODEL", 0, argc, argv);
}

static int client_list(int argc, char **argv)
{
	return list("client list", client_usage, "ROLE", 1, argc, argv);
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

int cmd_client(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "add", client_add },
		{ "revoke", client_revoke },
		{ "list", client_list },
	};

	return cli_dispatch("client", client_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
