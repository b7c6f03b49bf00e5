/* hearth ca show|crl: look at the CA and publish its CRL. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/cert.h"
#include "ca/key.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "server/cli.h"
#include "server/datadir.h"
#include "server/pki.h"

static const char usage[] =
	"hearth ca show --data DIR\n"
	"  subjects, expiry, SHA-256 fingerprints, the endpoint key's pin, the manifest key id\n"
	"hearth ca crl  --data DIR --out FILE\n"
	"  issue a fresh CRL (signed by the issuing CA) and write it to FILE as PEM\n"
	"hearth ca renew-endpoint --data DIR\n"
	"  issue a new endpoint certificate now (same key and names); a running server picks it up\n"
	"  within seconds (or at once on SIGHUP) without dropping connections\n";

static int parse_args(int argc, char **argv, const char **data, const char **out)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*data = *out = NULL;
	optind = 0;
	while ((c = getopt_long(argc, argv, "d:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': *data = optarg; break;
		case 'o': *out = optarg; break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return cli_usage("ca", usage, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage("ca", usage, "unexpected argument '%s'", argv[optind]);
	*data = cli_data_dir(*data);
	return 0;
}

static void print_time(const char *label, int64_t t)
{
	char text[32] = "?";
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm))
		strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("  %-12s %s\n", label, text);
}

static enum herr show_cert(const struct datadir *dd, const char *title, const char *rel, int pin)
{
	struct ca_cert_info info;
	struct ca_cert *cert = NULL;
	char path[PATH_MAX];
	enum herr rc;

	rc = datadir_file(dd, rel, path, sizeof(path));
	if (rc == HERR_OK)
		rc = ca_cert_load(path, &cert);
	if (rc != HERR_OK)
		return rc;
	ca_cert_get_info(cert, &info);
	printf("%s (%s)\n", title, path);
	printf("  %-12s %s\n", "subject", info.subject);
	printf("  %-12s %s\n", "serial", info.serial_hex);
	print_time("not before", info.not_before);
	print_time("not after", info.not_after);
	printf("  %-12s %s\n", "sha256", info.fingerprint);
	if (pin)
		printf("  %-12s %s\n", "pin", info.pin);
	ca_cert_free(cert);
	return HERR_OK;
}

static int ca_show(int argc, char **argv)
{
	uint8_t spki[CA_SPKI_MAX];
	char path[PATH_MAX], keyid[CA_HEX256_LEN];
	struct ca_key *key = NULL;
	struct datadir *dd = NULL;
	const char *data, *out;
	size_t len = 0;
	int r, ret = CLI_FAIL;

	r = parse_args(argc, argv, &data, &out);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (datadir_open(data, &dd) != HERR_OK)
		return CLI_FAIL;
	if (show_cert(dd, "root CA", DATADIR_ROOT_CERT, 0) != HERR_OK ||
	    show_cert(dd, "issuing CA", DATADIR_ISSUING_CERT, 0) != HERR_OK ||
	    show_cert(dd, "endpoint", DATADIR_ENDPOINT_CERT, 1) != HERR_OK)
		goto out;
	/* The manifest key id is what DSSE signatures name (hex SHA-256 of the SPKI). */
	if (datadir_file(dd, DATADIR_MANIFEST_KEY, path, sizeof(path)) != HERR_OK ||
	    ca_key_load(path, &key) != HERR_OK ||
	    ca_key_spki(key, spki, sizeof(spki), &len) != HERR_OK)
		goto out;
	ca_sha256_hex(spki, len, keyid);
	printf("manifest signing key (%s)\n  %-12s %s\n", path, "keyid", keyid);
	ret = CLI_OK;
out:
	ca_key_free(key);
	datadir_close(dd);
	return ret;
}

static int ca_crl(int argc, char **argv)
{
	struct datadir *dd = NULL;
	const char *data, *out;
	char actor[96], *pem = NULL;
	int r, ret = CLI_FAIL;

	r = parse_args(argc, argv, &data, &out);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!out)
		return cli_usage("ca crl", usage, "needs --out FILE");
	cli_actor(actor, sizeof(actor));
	if (datadir_open(data, &dd) != HERR_OK)
		return CLI_FAIL;
	if (store_begin(dd->store) != HERR_OK)
		goto out;
	if (pki_publish_crl(dd, &pem) != HERR_OK ||
	    store_audit(dd->store, (int64_t)time(NULL), actor, "crl.issue", out, NULL) != HERR_OK ||
	    fs_write_file(out, pem, strlen(pem), 0644, 0) != HERR_OK) {
		log_err("%s: CRL not written", out);
		store_rollback(dd->store);
		goto out;
	}
	if (store_commit(dd->store) != HERR_OK)
		goto out;
	printf("CRL written to %s\n", out);
	ret = CLI_OK;
out:
	free(pem);
	datadir_close(dd);
	return ret;
}

static int ca_renew_endpoint(int argc, char **argv)
{
	struct ca_cert_info info;
	struct datadir *dd = NULL;
	const char *data, *out;
	char actor[96];
	int r, ret = CLI_FAIL;

	r = parse_args(argc, argv, &data, &out);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	cli_actor(actor, sizeof(actor));
	if (datadir_open(data, &dd) != HERR_OK)
		return CLI_FAIL;
	if (pki_renew_endpoint(dd, actor, &info) == HERR_OK) {
		printf("endpoint certificate renewed: serial %s\n", info.serial_hex);
		print_time("not after", info.not_after);
		ret = CLI_OK;
	}
	datadir_close(dd);
	return ret;
}

int cmd_ca(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "show", ca_show },
		{ "crl", ca_crl },
		{ "renew-endpoint", ca_renew_endpoint },
	};

	return cli_dispatch("ca", usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
