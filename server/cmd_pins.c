/* hearth pins show|rotate|status|switch: the endpoint's pin set and its readiness-gated rotation
 * (server/pins.h); hearth keys show|rotate: the manifest-signing key (server/keys.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/cli.h"
#include "server/datadir.h"
#include "server/keys.h"
#include "server/pki.h"
#include "server/pins.h"

static const char usage[] =
	"hearth pins show   --data DIR\n"
	"  the pins of the current, next and backup endpoint keys\n"
	"hearth pins rotate --data DIR\n"
	"  make the next and backup keys if missing and announce the pin set to every device\n"
	"hearth pins status --data DIR\n"
	"  how many active devices (seen in the last 30 days) acknowledged the newest pin set; the rest\n"
	"hearth pins switch --data DIR [--threshold PERCENT] [--force [--yes]] [--backup]\n"
	"  move the endpoint to the next key if at least PERCENT (default 100) of the active devices\n"
	"  acknowledged a pin set holding it; --force switches anyway after naming the devices it\n"
	"  strands and asking (--yes: without asking). Then a fresh next key is announced.\n"
	"  --backup: the emergency path when the next key is compromised or lost: move to the backup\n"
	"  key instead (DIR/keys/endpoint-backup.key, put back if it was kept offline); the next key\n"
	"  is discarded and fresh next and backup keys are announced.\n";

struct pins_args {
	const char *data;
	unsigned threshold;
	int force, yes, backup;
};

static int parse_args(const char *cmd, int argc, char **argv, struct pins_args *a)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "threshold", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "yes", no_argument, NULL, 'y' },
		{ "backup", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->threshold = 100;
	optind = 0;
	while ((c = getopt_long(argc, argv, "d:t:fybh", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 'f': a->force = 1; break;
		case 'y': a->yes = 1; break;
		case 'b': a->backup = 1; break;
		case 't':
			if (cli_parse_uint(optarg, 1, 100, &a->threshold) != 0)
				return cli_usage(cmd, usage, "--threshold must be 1..100 (percent)");
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return cli_usage(cmd, usage, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage(cmd, usage, "unexpected argument '%s'", argv[optind]);
	a->data = cli_data_dir(a->data);
	return 0;
}

/* Open DIR for a subcommand; a CLI code (CLI_OK with *dd set). */
static int open_dir(const char *cmd, int argc, char **argv, struct pins_args *a, struct datadir **dd)
{
	int r = parse_args(cmd, argc, argv, a);

	*dd = NULL;
	if (r != 0)
		return r < 0 ? -1 : r;
	return datadir_open(a->data, dd) == HERR_OK ? CLI_OK : CLI_FAIL;
}

static int pins_show(int argc, char **argv)
{
	struct pins_args a;
	struct datadir *dd;
	struct pins_set p;
	int r = open_dir("pins show", argc, argv, &a, &dd);

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	r = CLI_FAIL;
	if (pins_read(dd, &p) == HERR_OK) {
		printf("current %s\nnext    %s\nbackup  %s\n", p.current, p.next[0] ? p.next : "(none yet: pins rotate)",
		       p.backup[0] ? p.backup : "(none yet: pins rotate)");
		r = CLI_OK;
	}
	datadir_close(dd);
	return r;
}

static int pins_rotate(int argc, char **argv)
{
	struct pins_args a;
	struct datadir *dd;
	struct pins_set p;
	char actor[96];
	int64_t version = 0;
	int r = open_dir("pins rotate", argc, argv, &a, &dd);

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	cli_actor(actor, sizeof(actor));
	r = CLI_FAIL;
	if (pins_announce(dd, actor, &version) == HERR_OK && pins_read(dd, &p) == HERR_OK) {
		printf("pin set version %lld announced to every device: current %s, next %s, backup %s\n",
		       (long long)version, p.current, p.next, p.backup);
		printf("'hearth pins status' shows who acknowledged it; 'hearth pins switch' moves to the next key\n");
		r = CLI_OK;
	}
	datadir_close(dd);
	return r;
}

static int print_stranded(void *ctx, const char *id)
{
	(void)ctx;
	printf("  not acknowledged: %s\n", id);
	return 0;
}

/* Status, printed; CLI_OK and *st filled, or a CLI code. */
static int show_status(struct datadir *dd, struct pins_status *st)
{
	enum herr rc = pins_status(dd, (int64_t)time(NULL), st, print_stranded, NULL);

	if (rc == HERR_NOTFOUND) {
		fprintf(stderr, "hearth pins: no pin set was announced yet ('hearth pins rotate')\n");
		return CLI_FAIL;
	}
	if (rc != HERR_OK)
		return CLI_FAIL;
	printf("pin set version %lld: %zu of %zu active devices acknowledged it (%.0f %%)\n", (long long)st->version,
	       st->acked, st->active, st->active ? 100.0 * (double)st->acked / (double)st->active : 100.0);
	return CLI_OK;
}

static int pins_status_cmd(int argc, char **argv)
{
	struct pins_status st;
	struct pins_args a;
	struct datadir *dd;
	int r = open_dir("pins status", argc, argv, &a, &dd);

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	r = show_status(dd, &st);
	datadir_close(dd);
	return r;
}

static int pins_switch_cmd(int argc, char **argv)
{
	struct pins_status st;
	struct pins_args a;
	struct datadir *dd;
	char actor[96], answer[16];
	int64_t version = 0;
	int r = open_dir("pins switch", argc, argv, &a, &dd);

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	cli_actor(actor, sizeof(actor));
	r = show_status(dd, &st);
	if (r != CLI_OK)
		goto out;
	r = CLI_FAIL;
	if ((uint64_t)st.acked * 100 < (uint64_t)a.threshold * st.active) {
		if (!a.force) {
			fprintf(stderr, "hearth pins switch: refused: %zu device(s) above would be stranded (the "
				"threshold is %u %%); wait for them, or --force\n", st.active - st.acked, a.threshold);
			goto out;
		}
		if (!a.yes) {
			if (!isatty(STDIN_FILENO)) {
				fprintf(stderr, "hearth pins switch: --force strands the devices above; confirm with --yes\n");
				goto out;
			}
			printf("switching strands the %zu device(s) above; type 'switch' to go on: ", st.active - st.acked);
			fflush(stdout);
			if (!fgets(answer, sizeof(answer), stdin) || strcmp(answer, "switch\n") != 0) {
				fprintf(stderr, "hearth pins switch: not switched\n");
				goto out;
			}
		}
	}
	if ((a.backup ? pins_switch_backup(dd, actor, &version) : pins_switch(dd, actor, &version)) != HERR_OK)
		goto out;
	printf("switched: the endpoint serves its former %s key; pin set version %lld announced with a "
	       "fresh next key%s\n", a.backup ? "backup" : "next", (long long)version,
	       a.backup ? " and a fresh backup (the old next key was discarded)" : "");
	r = CLI_OK;
out:
	datadir_close(dd);
	return r;
}

int cmd_pins(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "show", pins_show },
		{ "rotate", pins_rotate },
		{ "status", pins_status_cmd },
		{ "switch", pins_switch_cmd },
	};

	return cli_dispatch("pins", usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}

static const char keys_usage[] =
	"hearth keys show   --data DIR\n"
	"  the keyid of the manifest-signing key\n"
	"hearth keys rotate --data DIR\n"
	"  make a new signing key and announce it in a keys manifest signed by the old key and the new\n"
	"  one; devices walk keys manifests version by version. The old key is kept as\n"
	"  DIR/keys/manifest-retired-<keyid>.key: move it offline once every device moved on.\n";

static int keys_show(int argc, char **argv)
{
	struct pins_args a;
	struct datadir *dd;
	struct pki_anchors anchors;
	int r = open_dir("keys show", argc, argv, &a, &dd);

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	memset(&anchors, 0, sizeof(anchors));
	r = CLI_FAIL;
	if (pki_anchors(dd, &anchors) == HERR_OK) {
		printf("manifest signing key: keyid %s\n%s", anchors.manifest_keyid, anchors.manifest_public_pem);
		r = CLI_OK;
	}
	pki_anchors_clear(&anchors);
	datadir_close(dd);
	return r;
}

static int keys_rotate_cmd(int argc, char **argv)
{
	struct keys_rotated done;
	struct pins_args a;
	struct datadir *dd;
	char actor[96];
	int r = open_dir("keys rotate", argc, argv, &a, &dd);

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	cli_actor(actor, sizeof(actor));
	r = CLI_FAIL;
	if (keys_rotate(dd, actor, &done) == HERR_OK) {
		printf("keys manifest version %lld announced, signed by %s (old) and %s (new); the new key signs "
		       "from now on\n", (long long)done.version, done.old_keyid, done.new_keyid);
		r = CLI_OK;
	}
	datadir_close(dd);
	return r;
}

int cmd_keys(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "show", keys_show },
		{ "rotate", keys_rotate_cmd },
	};

	return cli_dispatch("keys", keys_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
