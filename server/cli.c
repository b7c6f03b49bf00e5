#include "server/cli.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
