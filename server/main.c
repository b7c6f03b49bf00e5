/* hearth: one binary. `hearth serve` is the daemon; the other subcommands are its tools. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "server/cli.h"

#define HEARTH_VERSION "0.1.0"

static const char usage[] =
	"hearth COMMAND [OPTIONS]\n"
	"\n"
	"  init    --data DIR [--name NAME]... [--endpoint-days N]\n"
	"          create a data directory with a new CA, endpoint certificate and database\n"
	"  serve   --data DIR [--name NAME]... [--SETTING VALUE]...\n"
	"          run the daemon (initialises DIR first if it is empty)\n"
	"  config  check|show|example    validate, show or document the settings of serve\n"
	"          (DIR/hearth.conf, HEARTH_* variables, flags)\n"
	"  device  add|revoke|list ...   manage devices and their certificates\n"
	"  client  add|revoke|list ...   integration clients (read the minimized telemetry stream)\n"
	"  token   add|list|revoke ...   REST API tokens (bearer, scoped read/operate/admin)\n"
	"  api     routes                the REST API's routes\n"
	"  model   set|show|list ...     device models and their minimization policies\n"
	"  telemetry query|dropped ...   the stored (minimized) telemetry; what was dropped\n"
	"  ca      show|crl|renew-endpoint ...   inspect the CA, write the CRL, renew the endpoint\n"
	"  manifest issue|upload|sign|verify ...   signed manifests (DSSE): issue, upload one signed elsewhere\n"
	"  pins    show|rotate|status|switch ...   the endpoint's pin set and its gated rotation\n"
	"  keys    show|rotate ...       the manifest-signing key and its rotation\n"
	"  firmware add|list ...         firmware releases (images per model)\n"
	"  rollout create|list|show|devices|widen|pause|resume|abort ...   offering a release to devices\n"
	"  backup  --data DIR --out FILE   a consistent copy of DIR (also while serve runs) in one file;\n"
	"          it holds the CA and signing private keys: keep it like them\n"
	"  restore --data DIR --from FILE  put a backup back into a new or empty DIR\n"
	"  bridge  status --data DIR     the northbound bridge: its broker, outbox and watermark\n"
	"  version\n"
	"\n"
	"DIR defaults to $HEARTH_DATA, then " CLI_DEFAULT_DATA ". `hearth COMMAND --help` for more.\n";

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "init", cmd_init }, { "serve", cmd_serve }, { "config", cmd_config },
	{ "device", cmd_device }, { "client", cmd_client }, { "model", cmd_model }, { "ca", cmd_ca },
	{ "telemetry", cmd_telemetry }, { "token", cmd_token }, { "api", cmd_api },
	{ "manifest", cmd_manifest }, { "pins", cmd_pins },
	{ "keys", cmd_keys }, { "firmware", cmd_firmware }, { "rollout", cmd_rollout },
	{ "backup", cmd_backup }, { "restore", cmd_restore }, { "bridge", cmd_bridge },
};

int main(int argc, char **argv)
{
	size_t i;

	/* Everything hearth creates is private unless it says otherwise. */
	umask(077);
	if (argc < 2) {
		fputs(usage, stderr);
		return CLI_USAGE;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("hearth %s\n", HEARTH_VERSION);
		return CLI_OK;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	fprintf(stderr, "hearth: unknown command '%s'\n\n%s", argv[1], usage);
	return CLI_USAGE;
}
