/* hearth serve: the daemon. Initialises an empty data directory, opens it, and runs the MQTT
 * endpoint until SIGINT/SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "ca/cert.h"
#include "common/log.h"
#include "server/cli.h"
#include "server/datadir.h"
#include "server/endpoint.h"

static const char usage[] =
	"hearth serve --data DIR [--mqtt HOST:PORT] [--name NAME]... [limits]\n"
	"  --mqtt HOST:PORT          where devices connect (default " ENDPOINT_DEFAULT_MQTT ";\n"
	"                            port 0 picks a free one, logged at start)\n"
	"  --name NAME               endpoint name, used only when DIR is initialised here\n"
	"  --max-packet BYTES        largest MQTT packet accepted (default 262144)\n"
	"  --max-connections N       (default 20000)\n"
	"  --max-inflight N          QoS 1 messages to a device awaiting PUBACK (default 32)\n"
	"  --max-subscriptions N     per session (default 32)\n"
	"  --max-queued N            QoS 1 messages kept for an offline session (default 1000)\n"
	"  --handshake-timeout MS    (default 10000)\n"
	"  --connect-timeout MS      after the handshake, for CONNECT (default 10000)\n"
	"  --handshake-threads N     threads for TLS handshakes; 0 = on the event loop\n"
	"                            (default: one per core beyond the first, at most 8)\n"
	"  An empty or missing DIR is initialised first (see hearth init --help).\n";

struct size_opt {
	const char *name;
	size_t *value;
	unsigned min, max;
};

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "mqtt", required_argument, NULL, 'm' },
		{ "max-packet", required_argument, NULL, 1 },
		{ "max-connections", required_argument, NULL, 2 },
		{ "max-inflight", required_argument, NULL, 3 },
		{ "max-subscriptions", required_argument, NULL, 4 },
		{ "max-queued", required_argument, NULL, 5 },
		{ "handshake-timeout", required_argument, NULL, 6 },
		{ "connect-timeout", required_argument, NULL, 7 },
		{ "handshake-threads", required_argument, NULL, 8 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *names[CA_MAX_SANS];
	struct endpoint_config cfg;
	struct datadir *dd = NULL;
	const char *dir, *data = NULL;
	size_t count = 0;
	unsigned v;
	sigset_t set;
	int c, ret;

	endpoint_default_config(&cfg);
	const struct size_opt sizes[] = {
		[1] = { "--max-packet", &cfg.lim.max_packet, 16, 256 * 1024 * 1024 },
		[2] = { "--max-connections", &cfg.lim.max_connections, 1, 1000000 },
		[3] = { "--max-inflight", &cfg.lim.max_inflight, 1, 65535 },
		[4] = { "--max-subscriptions", &cfg.lim.max_subscriptions, 1, 10000 },
		[5] = { "--max-queued", &cfg.lim.max_queued, 0, 1000000 },
	};

	optind = 0;
	while ((c = getopt_long(argc, argv, "d:n:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			data = optarg;
			break;
		case 'n':
			if (count == CA_MAX_SANS)
				return cli_usage("serve", usage, "at most %d --name options", CA_MAX_SANS);
			names[count++] = optarg;
			break;
		case 'm':
			cfg.mqtt_addr = optarg;
			break;
		case 1: case 2: case 3: case 4: case 5:
			if (cli_parse_uint(optarg, sizes[c].min, sizes[c].max, &v) != 0)
				return cli_usage("serve", usage, "%s must be %u..%u", sizes[c].name,
						 sizes[c].min, sizes[c].max);
			*sizes[c].value = v;
			break;
		case 6: case 7:
			if (cli_parse_uint(optarg, 100, 600000, &v) != 0)
				return cli_usage("serve", usage, "timeouts are 100..600000 ms");
			if (c == 6)
				cfg.lim.handshake_timeout_ms = v;
			else
				cfg.lim.connect_timeout_ms = v;
			break;
		case 8:
			if (cli_parse_uint(optarg, 0, 64, &v) != 0)
				return cli_usage("serve", usage, "--handshake-threads must be 0..64");
			cfg.lim.handshake_threads = (int)v;
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

	/* Block the stop signals before anything starts so none is lost; the endpoint takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (datadir_is_initialised(dir) == 0 && cli_init_datadir(dir, names, count, 0) != CLI_OK)
		return CLI_FAIL;
	if (datadir_open(dir, &dd) != HERR_OK)
		return CLI_FAIL;
	log_info("serving %s (schema %d)", dir, store_schema_version(dd->store));
	fflush(stdout);
	ret = endpoint_run(dd, &cfg) == HERR_OK ? CLI_OK : CLI_FAIL;
	datadir_close(dd);
	return ret;
}
