/* hearth telemetry query|dropped: what hearth stored (minimized) and what it refused to store. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/cert.h"
#include "server/cli.h"
#include "server/datadir.h"

static const char usage[] =
	"hearth telemetry query   --data DIR --device ID [--from UNIX] [--to UNIX]\n"
	"  the stored, minimized series: one line per field and time bucket\n"
	"hearth telemetry dropped --data DIR\n"
	"  how often each field was dropped, per model (counts only; values are never kept)\n";

static int print_row(void *ctx, const struct store_row *r)
{
	char when[32] = "?";
	time_t t = (time_t)r->bucket_start;
	struct tm tm;

	(void)ctx;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (r->text)
		printf("%s %6us %-24s %-5s %s (n=%lld)\n", when, r->bucket_s, r->field, r->agg, r->text,
		       (long long)r->n);
	else
		printf("%s %6us %-24s %-5s %.6g (n=%lld)\n", when, r->bucket_s, r->field, r->agg, r->value,
		       (long long)r->n);
	return 0;
}

static int print_dropped(void *ctx, const char *model, const char *field, int sensitive, int64_t count)
{
	(void)ctx;
	printf("%-20s %-32s %-9s %lld\n", model, field, sensitive ? "yes" : "no", (long long)count);
	return 0;
}

int cmd_telemetry(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "device", required_argument, NULL, 'i' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data = NULL, *device = NULL, *sub;
	struct datadir *dd = NULL;
	int64_t from = 0, to = INT64_MAX;
	unsigned v;
	int c, ret = CLI_FAIL;
	enum herr rc;

	if (argc < 2)
		return cli_usage("telemetry", usage, "needs a subcommand");
	sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	argc--;
	argv++;
	optind = 0;
	while ((c = getopt_long(argc, argv, "d:i:f:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'i': device = optarg; break;
		case 'f':
		case 't':
			if (cli_parse_uint(optarg, 0, 4000000000u, &v) != 0)
				return cli_usage("telemetry", usage, "--from/--to are Unix seconds");
			if (c == 'f')
				from = v;
			else
				to = v;
			break;
		case 'h':
			fputs(usage, stdout);
			return CLI_OK;
		default:
			return cli_usage("telemetry", usage, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage("telemetry", usage, "unexpected argument '%s'", argv[optind]);
	if (strcmp(sub, "query") == 0 && (!device || !ca_valid_id(device)))
		return cli_usage("telemetry query", usage, "needs --device ID");
	if (strcmp(sub, "query") != 0 && strcmp(sub, "dropped") != 0)
		return cli_usage("telemetry", usage, "unknown subcommand '%s'", sub);
	if (datadir_open(cli_data_dir(data), &dd) != HERR_OK)
		return CLI_FAIL;
	if (strcmp(sub, "query") == 0) {
		rc = store_telemetry_query(dd->store, device, from, to, print_row, NULL);
	} else {
		printf("%-20s %-32s %-9s %s\n", "MODEL", "FIELD", "SENSITIVE", "DROPPED");
		rc = store_dropped_list(dd->store, print_dropped, NULL);
	}
	if (rc == HERR_OK)
		ret = CLI_OK;
	datadir_close(dd);
	return ret;
}
