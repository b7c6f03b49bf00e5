#include "server/cli.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string.h>
#include <unistd.h>

#include "server/config.h"

const char *cli_data_dir(const char *flag)
{
	const char *env;

	if (flag && *flag)
		return flag;
	env = getenv("HEARTH_DATA");
	if (env && *env)
		return env;
	return CLI_DEFAULT_DATA;
}

void cli_actor(char *buf, size_t size)
{
	struct passwd *pw = getpwuid(geteuid());

	if (pw && pw->pw_name)
		snprintf(buf, size, "cli:%s", pw->pw_name);
	else
		snprintf(buf, size, "cli:uid%lu", (unsigned long)geteuid());
}

int cli_usage(const char *cmd, const char *usage, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hearth %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s", usage);
	return CLI_USAGE;
}

int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int cli_parse_settings(const char *cmd, const char *usage, int argc, char **argv,
		       struct config *cfg, struct cli_args *a)
{
	char name[64], err[CONFIG_ERR_MAX];
	int i;

	a->data = NULL;
	a->name_count = 0;
	a->help = 0;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq = NULL, *value;
		size_t len;

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			a->help = 1;
			return CLI_OK;
		}
		if (strcmp(arg, "-d") == 0 || strcmp(arg, "-n") == 0 || strcmp(arg, "-m") == 0) {
			snprintf(name, sizeof(name), "%s", arg[1] == 'd' ? "--data" :
				 arg[1] == 'n' ? "--name" : "--mqtt");
		} else if (strncmp(arg, "--", 2) == 0 && arg[2] != '\0') {
			eq = strchr(arg, '=');
			len = eq ? (size_t)(eq - arg) : strlen(arg);
			if (len >= sizeof(name))
				return cli_usage(cmd, usage, "unknown option '%.64s'", arg);
			memcpy(name, arg, len);
			name[len] = '\0';
		} else if (arg[0] == '-') {
			return cli_usage(cmd, usage, "unknown option '%s'", arg);
		} else {
			return cli_usage(cmd, usage, "unexpected argument '%s'", arg);
		}
		value = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
		if (!eq && value)
			i++;
		if (strcmp(name, "--data") == 0 || (strcmp(name, "--name") == 0 && a->names)) {
			if (!value)
				return cli_usage(cmd, usage, "%s needs a value", name);
			if (name[2] == 'd')
				a->data = value;
			else if (a->name_count == a->max_names)
				return cli_usage(cmd, usage, "at most %zu --name options", a->max_names);
			else
				a->names[a->name_count++] = value;
			continue;
		}
		/* An unknown flag is named as such even when no value follows it. */
		switch (cfg ? config_apply_flag(cfg, name, value ? value : "", err, sizeof(err)) :
			      HERR_NOTFOUND) {
		case HERR_OK:
			break;
		case HERR_NOTFOUND:
			return cli_usage(cmd, usage, "unknown option '%s'", name);
		default:
			if (!value)
				return cli_usage(cmd, usage, "%s needs a value", name);
			return cli_usage(cmd, usage, "%s", err);
		}
	}
	return CLI_OK;
}

int cli_dispatch(const char *cmd, const char *usage, const struct cli_subcommand *table, size_t n,
		 int argc, char **argv)
{
	size_t i;

	if (argc < 2)
		return cli_usage(cmd, usage, "needs a subcommand");
	for (i = 0; i < n; i++) {
		if (strcmp(argv[1], table[i].name) == 0)
			return table[i].run(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	return cli_usage(cmd, usage, "unknown subcommand '%s'", argv[1]);
}
