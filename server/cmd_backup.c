/* hearth backup|restore: a data directory into one file while the server runs, and back. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/backup.h"
#include "server/cli.h"

static const char backup_usage[] =
	"hearth backup --data DIR --out FILE\n"
	"  a consistent copy of DIR, also while `hearth serve` runs: the database (a snapshot),\n"
	"  keys/, certs/, firmware/ and hearth.conf, in one new SQLite file (0600; an existing FILE\n"
	"  is never replaced). FILE HOLDS THE CA AND SIGNING PRIVATE KEYS: keep it like them\n"
	"  (0600, offline). Put it back with `hearth restore`.\n";

static const char restore_usage[] =
	"hearth restore --data DIR --from FILE\n"
	"  checks the backup FILE (integrity, format, paths) and restores it into DIR, which must not\n"
	"  exist or be empty (nothing is overwritten); the keys come back 0600. A backup made by an\n"
	"  older hearth is migrated as its store opens. Devices keep their certificates; API tokens\n"
	"  made before the backup work again.\n";

/* --data DIR and one FILE option (name: "out" or "from"); -1 after --help. */
static int parse_args(const char *cmd, const char *usage, const char *file_opt, int argc, char **argv,
		      const char **data, const char **file)
{
	const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ file_opt, required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*data = *file = NULL;
	optind = 0;
	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': *data = optarg; break;
		case 'f': *file = optarg; break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return cli_usage(cmd, usage, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage(cmd, usage, "unexpected argument '%s'", argv[optind]);
	if (!*file || !**file)
		return cli_usage(cmd, usage, "needs --%s FILE", file_opt);
	*data = cli_data_dir(*data);
	return 0;
}

static void format_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	snprintf(buf, size, "?");
	if (gmtime_r(&tt, &tm))
		strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

int cmd_backup(int argc, char **argv)
{
	struct backup_summary sum;
	const char *data, *file;
	char actor[96];
	int r;

	r = parse_args("backup", backup_usage, "out", argc, argv, &data, &file);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	cli_actor(actor, sizeof(actor));
	if (backup_create(data, file, actor, &sum) != HERR_OK) {
		fprintf(stderr, "hearth backup: no backup was made\n");
		return CLI_FAIL;
	}
	printf("backup of %s written to %s (0600): schema %d, %llu tables, %llu rows; %llu files, %llu bytes\n",
	       sum.source, sum.file, sum.schema_version, (unsigned long long)sum.tables,
	       (unsigned long long)sum.rows, (unsigned long long)sum.files, (unsigned long long)sum.bytes);
	printf("it holds the CA and signing private keys: keep it like them (0600, offline)\n");
	return CLI_OK;
}

int cmd_restore(int argc, char **argv)
{
	struct backup_summary sum;
	const char *data, *file;
	char actor[96], when[32];
	int r;

	r = parse_args("restore", restore_usage, "from", argc, argv, &data, &file);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	cli_actor(actor, sizeof(actor));
	if (backup_restore(file, data, actor, &sum) != HERR_OK) {
		fprintf(stderr, "hearth restore: %s was not restored\n", data);
		return CLI_FAIL;
	}
	format_time(sum.created_at, when, sizeof(when));
	printf("restored %s from %s (taken %s of %s): schema %d", data, sum.file, when, sum.source,
	       sum.schema_version);
	if (sum.schema_now != sum.schema_version)
		printf(", migrated to %d", sum.schema_now);
	printf(", %llu tables, %llu rows; %llu files, %llu bytes\n", (unsigned long long)sum.tables,
	       (unsigned long long)sum.rows, (unsigned long long)sum.files, (unsigned long long)sum.bytes);
	return CLI_OK;
}
