/* hearth serve: the daemon. For now it owns start-up (initialising an empty data directory, opening
 * the store) and clean shutdown on SIGINT/SIGTERM; the MQTT endpoint and REST API attach here. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "ca/cert.h"
#include "common/log.h"
#include "server/cli.h"
#include "server/datadir.h"

static const char usage[] =
	"hearth serve --data DIR [--name NAME]...\n"
	"  An empty or missing DIR is initialised first (see hearth init --help for --name).\n";

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *names[CA_MAX_SANS];
	struct datadir *dd = NULL;
	const char *dir, *data = NULL;
	size_t count = 0;
	sigset_t set;
	int c, sig = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "d:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			data = optarg;
			break;
		case 'n':
			if (count == CA_MAX_SANS)
				return cli_usage("serve", usage, "at most %d --name options", CA_MAX_SANS);
			names[count++] = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return CLI_OK;
		default:
			return cli_usage("serve", usage, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage("serve", usage, "unexpected argument '%s'", argv[optind]);
	dir = cli_data_dir(data);

	/* Block the stop signals before anything starts so none is lost; sigwait takes them below. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (datadir_is_initialised(dir) == 0 && cli_init_datadir(dir, names, count, 0) != CLI_OK)
		return CLI_FAIL;
	if (datadir_open(dir, &dd) != HERR_OK)
		return CLI_FAIL;
	log_info("serving %s (schema %d); the MQTT endpoint and REST API are not built yet",
		 dir, store_schema_version(dd->store));
	fflush(stdout);
	if (sigwait(&set, &sig) == 0)
		log_info("signal %d: shutting down", sig);
	datadir_close(dd);
	return CLI_OK;
}
