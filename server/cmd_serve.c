/* hearth serve: the daemon. Takes its settings (server/config.h) from flags, the environment and
 * DIR/hearth.conf, initialises an empty data directory, opens it, and runs the MQTT endpoint until
 * SIGINT/SIGTERM. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "ca/cert.h"
#include "common/log.h"
#include "server/cli.h"
#include "server/config.h"
#include "server/datadir.h"
#include "server/endpoint.h"

#define USAGE_HEAD \
	"hearth serve --data DIR [--name NAME]... [--SETTING VALUE]...\n" \
	"  --name NAME                  endpoint name, used only when DIR is initialised here\n" \
	"  An empty or missing DIR is initialised first (see hearth init --help).\n"

static const char usage[] = USAGE_HEAD "  `hearth serve --help` lists the settings.\n";

/* Each TLS connection holds two ~16.7 KB record buffers (mbedTLS 2.28 allocates them at setup
 * and keeps them for the connection's life). Served from mmap, only the pages a connection's
 * records actually touch become resident (one or two for an idle device instead of all ten),
 * glibc need not zero them, and they go back to the kernel the moment the connection closes,
 * so a handshake storm leaves no heap behind (docs/performance.md has the measurements). */
#define MMAP_THRESHOLD (16 * 1024)

static const char settings_usage[] =
	"\n"
	"Settings. Each is also a line `key = value` in DIR/" CONFIG_FILE " (key: the flag without\n"
	"'--', '-' as '_') and an environment variable HEARTH_KEY (the key in upper case); a flag\n"
	"beats the environment, which beats the file. `hearth config check` validates them.\n";

int cmd_serve(int argc, char **argv)
{
	const char *names[CA_MAX_SANS];
	struct cli_args args = { .names = names, .max_names = CA_MAX_SANS };
	char err[CONFIG_ERR_MAX];
	struct config cfg;
	struct datadir *dd = NULL;
	const char *dir;
	sigset_t set;
	int ret;

	config_defaults(&cfg);
	ret = cli_parse_settings("serve", usage, argc, argv, &cfg, &args);
	if (ret != CLI_OK)
		return ret;
	if (args.help) {
		fputs(USAGE_HEAD, stdout);
		fputs(settings_usage, stdout);
		config_usage(stdout);
		return CLI_OK;
	}
	dir = cli_data_dir(args.data);
	/* Before anything is created or started: a bad setting stops the server here, by name. */
	if (config_load(&cfg, dir, err, sizeof(err)) != HERR_OK ||
	    bridge_check(&cfg.bridge, err, sizeof(err)) != HERR_OK) {
		fprintf(stderr, "hearth serve: %s\n", err);
		return CLI_FAIL;
	}
	config_apply(&cfg);
	/* Best effort: glibc's own defaults are kept if it refuses. */
	(void)mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);

	/* Block the stop signals before anything starts so none is lost; the endpoint takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (datadir_is_initialised(dir) == 0 && cli_init_datadir(dir, names, args.name_count, 0, 1) != CLI_OK)
		return CLI_FAIL;
	if (datadir_open(dir, &dd) != HERR_OK)
		return CLI_FAIL;
	log_info("serving %s (schema %d)", dir, store_schema_version(dd->store));
	fflush(stdout);
	ret = endpoint_run(dd, &cfg) == HERR_OK ? CLI_OK : CLI_FAIL;
	datadir_close(dd);
	return ret;
}
