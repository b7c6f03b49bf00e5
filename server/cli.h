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

struct cli_subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
};

/* Run the subcommand argv[1] of cmd from table (argv shifted so the subcommand is argv[0]);
 * --help prints usage; anything else is a usage error. */
int cli_dispatch(const char *cmd, const char *usage, const struct cli_subcommand *table, size_t n,
		 int argc, char **argv);

/* A whole decimal number in [min, max]; 0 on success, -1 otherwise. */
int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/* Initialise dir (or say it already is); shared by `init` and `serve`. Returns a CLI_ code. */
int cli_init_datadir(const char *dir, const char *const *names, size_t count, unsigned days, int token_file);

/* The command line of a command that runs with the settings (serve, config show). */
struct config;
struct cli_args {
	const char *data;          /* --data DIR, or NULL */
	const char **names;        /* where --name values go; NULL: --name is refused */
	size_t max_names, name_count;
	int help;                  /* -h or --help was given */
};

/* Parse --data DIR, --name NAME (if a->names), -h/--help, and every setting's flag (into cfg if
 * not NULL, as "--flag VALUE" or "--flag=VALUE"); -d, -n and -m stand for --data, --name and
 * --mqtt. Returns
 * CLI_OK, or CLI_USAGE after saying why (cmd and usage as for cli_usage). */
int cli_parse_settings(const char *cmd, const char *usage, int argc, char **argv,
		       struct config *cfg, struct cli_args *a);

/* Make an API token named name with scope ("read", "operate", "admin"), expiring in days (0:
 * never), audited as actor; the token goes into token (TOKEN_MAX bytes). Returns a CLI_ code. */
struct datadir;
int cli_token_create(struct datadir *dd, const char *name, const char *scope, unsigned days,
		     const char *actor, char *token);

int cmd_init(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_api(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_device(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_telemetry(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_manifest(int argc, char **argv);
int cmd_pins(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_firmware(int argc, char **argv);
int cmd_rollout(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_bridge(int argc, char **argv);

#endif
