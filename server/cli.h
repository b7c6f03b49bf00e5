/* cli: the `hearth` command line. main.c dispatches to one cmd_* function per subcommand; this
 * header also holds what the subcommands share (exit codes, --data default, argument checks). */
#ifndef HEARTH_CLI_H
#define HEARTH_CLI_H

#include <stddef.h>

#define CLI_OK    0
#define CLI_FAIL  1   /* the operation failed; the message said why */
#define CLI_USAGE 2   /* the command line was wrong */

#define CLI_DEFAULT_DATA "/var/lib/hearth"

/* The data directory: the --data flag if given, else $HEARTH_DATA, else CLI_DEFAULT_DATA. */
const char *cli_data_dir(const char *flag);

/* Who is acting, for the audit log: "cli:<user name>". */
void cli_actor(char *buf, size_t size);

/* Print "hearth CMD: message" and the usage text to stderr; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A whole decimal number in [min, max]; 0 on success, -1 otherwise. */
int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/* Initialise dir (or say it already is); shared by `init` and `serve`. Returns a CLI_ code. */
int cli_init_datadir(const char *dir, const char *const *names, size_t count, unsigned days);

int cmd_init(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_device(int argc, char **argv);
int cmd_ca(int argc, char **argv);

#endif
