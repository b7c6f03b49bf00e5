/* hearth config check|show|example: the settings of hearth serve (server/config.h), validated,
 * shown with where each came from, and documented. */
#include <stdio.h>
#include <string.h>

#include "server/cli.h"
#include "server/config.h"

static const char usage[] =
	"hearth config check --data DIR\n"
	"  validate DIR/" CONFIG_FILE " and the HEARTH_* environment variables; a problem is named by\n"
	"  file and line, or by variable, and exits 1; the bridge's files are checked too\n"
	"hearth config show --data DIR [--SETTING VALUE]...\n"
	"  every setting's effective value and where it came from (default, file, env, flag);\n"
	"  takes the setting flags of hearth serve\n"
	"hearth config example\n"
	"  a complete, commented " CONFIG_FILE " with every setting at its default\n";

static int check(int argc, char **argv)
{
	struct cli_args args = { 0 };
	char err[CONFIG_ERR_MAX];
	struct config cfg;
	size_t from_file = 0, from_env = 0;
	int k, ret;

	config_defaults(&cfg);
	/* No setting flags: this checks what a plain `hearth serve` would read. */
	ret = cli_parse_settings("config check", usage, argc, argv, NULL, &args);
	if (ret != CLI_OK || args.help) {
		if (args.help)
			fputs(usage, stdout);
		return ret;
	}
	if (config_load(&cfg, cli_data_dir(args.data), err, sizeof(err)) != HERR_OK ||
	    bridge_check(&cfg.bridge, err, sizeof(err)) != HERR_OK) {
		fprintf(stderr, "%s\n", err);
		return CLI_FAIL;
	}
	for (k = 0; k < CONFIG_COUNT; k++) {
		from_file += cfg.source[k] == CONFIG_FROM_FILE;
		from_env += cfg.source[k] == CONFIG_FROM_ENV;
	}
	printf("%s/%s: OK (%zu setting%s)\n", cli_data_dir(args.data), CONFIG_FILE, from_file,
	       from_file == 1 ? "" : "s");
	if (from_env)
		printf("environment: OK (%zu setting%s)\n", from_env, from_env == 1 ? "" : "s");
	return CLI_OK;
}

static int show(int argc, char **argv)
{
	struct cli_args args = { 0 };
	char err[CONFIG_ERR_MAX];
	struct config cfg;
	int ret;

	config_defaults(&cfg);
	ret = cli_parse_settings("config show", usage, argc, argv, &cfg, &args);
	if (ret != CLI_OK || args.help) {
		if (args.help)
			fputs(usage, stdout);
		return ret;
	}
	if (config_load(&cfg, cli_data_dir(args.data), err, sizeof(err)) != HERR_OK) {
		fprintf(stderr, "%s\n", err);
		return CLI_FAIL;
	}
	printf("# %s/%s\n", cli_data_dir(args.data), CONFIG_FILE);
	config_print(&cfg, stdout);
	return CLI_OK;
}

int cmd_config(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("config", usage, "which: check, show or example?");
	if (strcmp(argv[1], "check") == 0)
		return check(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return show(argc - 1, argv + 1);
	if (strcmp(argv[1], "example") == 0) {
		if (argc > 2 && strcmp(argv[2], "--help") != 0 && strcmp(argv[2], "-h") != 0)
			return cli_usage("config", usage, "unexpected argument '%s'", argv[2]);
		if (argc > 2)
			fputs(usage, stdout);
		else
			config_example(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	return cli_usage("config", usage, "unknown subcommand '%s'", argv[1]);
}
