/* hearth init: create a data directory. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "ca/cert.h"
#include "common/fsutil.h"
#include "server/cli.h"
#include "server/datadir.h"
#include "server/token.h"

static const char usage[] =
	"hearth init --data DIR [--name NAME]... [--endpoint-days N]\n"
	"  --name NAME          DNS name or IP address devices use to reach this server; repeat for\n"
	"                       more (default: localhost and 127.0.0.1). The first is the subject CN.\n"
	"  --endpoint-days N    life of the endpoint certificate (default 30, at most 397)\n";

/* The first admin API token: there is no default credential, so a new directory gets one, shown
 * once; to_file: also kept in DIR/admin-token (0600) for an unattended first start (a container's
 * log may be gone when someone looks). */
static int first_token(const char *dir, const char *actor, int to_file)
{
	char token[TOKEN_MAX], path[PATH_MAX];
	struct datadir *dd = NULL;
	int r;

	if (datadir_open(dir, &dd) != HERR_OK)
		return CLI_FAIL;
	r = cli_token_create(dd, "admin", "admin", 0, actor, token);
	datadir_close(dd);
	if (r != CLI_OK)
		return r;
	if (to_file) {
		size_t n = strlen(token);

		token[n] = '\n';
		if (fs_path(path, sizeof(path), "%s/%s", dir, DATADIR_ADMIN_TOKEN) != HERR_OK ||
		    fs_write_file(path, token, n + 1, 0600, 1) != HERR_OK) {
			fprintf(stderr, "hearth: the first admin token could not be written to %s/%s\n", dir,
				DATADIR_ADMIN_TOKEN);
			memset(token, 0, sizeof(token));
			return CLI_FAIL;
		}
		token[n] = '\0';
		printf("first admin API token (named 'admin'; also in %s, 0600: delete it once read; hearth keeps only "
		       "its hash):\n%s\n", path, token);
	} else {
		printf("first admin API token (named 'admin'; shown once, hearth keeps only its hash):\n%s\n", token);
	}
	fflush(stdout);
	memset(token, 0, sizeof(token));
	return CLI_OK;
}

/* Shared with `hearth serve`, which initialises an empty directory before it starts. */
int cli_init_datadir(const char *dir, const char *const *names, size_t count, unsigned days, int token_file)
{
	char actor[96];
	struct datadir_init_opts opts = {
		.names = names, .name_count = count, .endpoint_days = days, .actor = actor,
	};
	int created = 0;

	cli_actor(actor, sizeof(actor));
	if (datadir_init(dir, &opts, &created) != HERR_OK)
		return CLI_FAIL;
	if (!created) {
		printf("%s is already initialised; nothing changed\n", dir);
		return CLI_OK;
	}
	printf("initialised %s: new root and issuing CA, endpoint certificate, manifest key, database\n", dir);
	return first_token(dir, actor, token_file);
}

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "endpoint-days", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *names[CA_MAX_SANS];
	const char *data = NULL;
	unsigned days = 0;
	size_t count = 0;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "d:n:e:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			data = optarg;
			break;
		case 'n':
			if (count == CA_MAX_SANS)
				return cli_usage("init", usage, "at most %d --name options", CA_MAX_SANS);
			names[count++] = optarg;
			break;
		case 'e':
			/* 397 days is the CA/Browser Forum ceiling; hearth's point is short lives. */
			if (cli_parse_uint(optarg, 1, 397, &days) != 0)
				return cli_usage("init", usage, "--endpoint-days must be 1..397");
			break;
		case 'h':
			fputs(usage, stdout);
			return CLI_OK;
		default:
			return cli_usage("init", usage, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage("init", usage, "unexpected argument '%s'", argv[optind]);
	return cli_init_datadir(cli_data_dir(data), names, count, days, 0);
}
