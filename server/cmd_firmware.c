/* hearth firmware add|list: firmware releases; hearth rollout create|list|show|devices|widen|pause|
 * resume|abort: offering a release to a cohort of devices (server/firmware.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/cert.h"
#include "common/log.h"
#include "server/cli.h"
#include "server/datadir.h"
#include "server/firmware.h"

static const char firmware_usage[] =
	"hearth firmware add  --data DIR --model MODEL --version VERSION [--security-version N] --file PATH\n"
	"  add a release of MODEL from the image at PATH (copied into DIR/firmware); VERSION is the\n"
	"  vendor's ([A-Za-z0-9._+-]{1,64}, once per model); N is its security version (default 0): a\n"
	"  device that reports a higher one is never offered the release\n"
	"hearth firmware list --data DIR [--model MODEL]\n"
	"  releases, newest first\n";

static const char rollout_usage[] =
	"hearth rollout create  --data DIR --release ID (--percent N | --devices ID,ID,... | --tag TAG)\n"
	"                       [--failure-threshold PERCENT]\n"
	"  offer a release to N% of its model's active devices (a stable choice: widening only adds\n"
	"  devices), to listed devices, or to tagged ones; `hearth serve` sends the offers, at most\n"
	"  64 a second. It aborts the rollout once more than PERCENT (default 10) of the devices offered\n"
	"  so far failed or rolled back. One rollout per model is active or paused at a time.\n"
	"hearth rollout list    --data DIR\n"
	"hearth rollout show    --data DIR ID\n"
	"hearth rollout devices --data DIR ID\n"
	"  the devices offered so far and their status (offered, downloading, installed, failed,\n"
	"  rolled_back)\n"
	"hearth rollout widen   --data DIR ID --percent N\n"
	"hearth rollout pause   --data DIR ID     no new offers (offered devices go on)\n"
	"hearth rollout resume  --data DIR ID\n"
	"hearth rollout abort   --data DIR ID [--reason TEXT]\n"
	"  no new offers, and a cancel to every offered device that has not finished\n";

#define REASON_MAX 120

struct fw_args {
	const char *data, *model, *version, *file, *release, *devices, *tag, *reason, *id;
	unsigned security, percent, threshold;
	int has_percent, has_threshold;
};

static void format_time(int64_t t, char *buf, size_t size)
{
	struct tm tm;
	time_t tt = (time_t)t;

	snprintf(buf, size, "-");
	if (t && gmtime_r(&tt, &tm))
		strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static int valid_version(const char *v)
{
	size_t n = strnlen(v, FIRMWARE_VERSION_MAX + 1);

	return n >= 1 && n <= FIRMWARE_VERSION_MAX &&
	       strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-") == n;
}

static int valid_tag(const char *t)
{
	size_t n = strnlen(t, 65);

	return n >= 1 && n <= 64 &&
	       strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") == n;
}

static int valid_reason(const char *r)
{
	size_t i, n = strnlen(r, REASON_MAX + 1);

	if (n > REASON_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if ((unsigned char)r[i] < 0x20 || r[i] == 0x7f)
			return 0;
	}
	return 1;
}

/* Parse the options of both commands; ids: how many positional arguments (an id) are wanted (0 or
 * 1). Returns 0, -1 after --help, or CLI_USAGE. */
static int parse_args(const char *cmd, const char *usage, int ids, int argc, char **argv, struct fw_args *a)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "model", required_argument, NULL, 'm' },
		{ "version", required_argument, NULL, 'v' },
		{ "security-version", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "release", required_argument, NULL, 'r' },
		{ "percent", required_argument, NULL, 'p' },
		{ "devices", required_argument, NULL, 'D' },
		{ "tag", required_argument, NULL, 't' },
		{ "failure-threshold", required_argument, NULL, 'T' },
		{ "reason", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->threshold = FIRMWARE_THRESHOLD_DEFAULT;
	optind = 0;
	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 'm': a->model = optarg; break;
		case 'v': a->version = optarg; break;
		case 'f': a->file = optarg; break;
		case 'r': a->release = optarg; break;
		case 'D': a->devices = optarg; break;
		case 't': a->tag = optarg; break;
		case 'R': a->reason = optarg; break;
		case 's':
			if (cli_parse_uint(optarg, 0, FIRMWARE_SECURITY_MAX, &a->security) != 0)
				return cli_usage(cmd, usage, "--security-version must be a whole number 0..%u",
						 (unsigned)FIRMWARE_SECURITY_MAX);
			break;
		case 'p':
			if (cli_parse_uint(optarg, 1, 100, &a->percent) != 0)
				return cli_usage(cmd, usage, "--percent must be 1..100");
			a->has_percent = 1;
			break;
		case 'T':
			if (cli_parse_uint(optarg, 0, 100, &a->threshold) != 0)
				return cli_usage(cmd, usage, "--failure-threshold must be 0..100 (percent)");
			a->has_threshold = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return cli_usage(cmd, usage, "unknown option");
		}
	}
	if (ids == 1 && optind < argc)
		a->id = argv[optind++];
	if (optind != argc)
		return cli_usage(cmd, usage, "unexpected argument '%s'", argv[optind]);
	if (ids == 1 && !a->id)
		return cli_usage(cmd, usage, "needs a rollout id");
	a->data = cli_data_dir(a->data);
	return 0;
}

/* Options that only some subcommands take: a usage error naming the first one given elsewhere. */
static int refuse_others(const char *cmd, const char *usage, const struct fw_args *a, const char *allowed)
{
	const struct {
		const char *name;
		int given;
	} opts[] = {
		{ "--model", a->model != NULL }, { "--version", a->version != NULL },
		{ "--security-version", a->security != 0 }, { "--file", a->file != NULL },
		{ "--release", a->release != NULL }, { "--percent", a->has_percent },
		{ "--devices", a->devices != NULL }, { "--tag", a->tag != NULL },
		{ "--failure-threshold", a->has_threshold }, { "--reason", a->reason != NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (opts[i].given && !strstr(allowed, opts[i].name))
			return cli_usage(cmd, usage, "%s does not apply here", opts[i].name);
	}
	return 0;
}

/* --- hearth firmware ---------------------------------------------------------------------------- */

static int firmware_add(int argc, char **argv)
{
	static const char cmd[] = "firmware add";
	struct firmware_release rel;
	struct datadir *dd = NULL;
	struct fw_args a;
	char actor[96], tmp[PATH_MAX] = "", sha256[65];
	uint64_t size = 0;
	int r, fd = -1, ret = CLI_FAIL;
	enum herr rc;

	r = parse_args(cmd, firmware_usage, 0, argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if ((r = refuse_others(cmd, firmware_usage, &a, "--model --version --security-version --file")) != 0)
		return r;
	if (!a.model || !a.version || !a.file)
		return cli_usage(cmd, firmware_usage, "needs --model, --version and --file");
	if (!ca_valid_id(a.model))
		return cli_usage(cmd, firmware_usage, "--model '%.80s' must match [A-Za-z0-9_-]{1,64}", a.model);
	if (!valid_version(a.version))
		return cli_usage(cmd, firmware_usage, "--version '%.80s' must match [A-Za-z0-9._+-]{1,64}", a.version);
	fd = open(a.file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "hearth %s: cannot open %s: %s\n", cmd, a.file, strerror(errno));
		return CLI_FAIL;
	}
	cli_actor(actor, sizeof(actor));
	if (datadir_open(a.data, &dd) != HERR_OK)
		goto out;
	rc = firmware_stage(dd, fd, tmp, sizeof(tmp), sha256, &size);
	if (rc == HERR_TOOBIG || rc == HERR_INVALID) {
		fprintf(stderr, "hearth %s: %s is %s\n", cmd, a.file,
			rc == HERR_TOOBIG ? "larger than the largest image accepted (512 MiB)" : "empty");
		goto out;
	}
	if (rc != HERR_OK)
		goto out;
	rc = firmware_release_add(dd, a.model, a.version, a.security, tmp, sha256, size, actor, &rel);
	if (rc == HERR_NOTFOUND)
		fprintf(stderr, "hearth %s: no model '%s' (models come with their first device or 'hearth model "
			"set')\n", cmd, a.model);
	else if (rc == HERR_EXISTS)
		fprintf(stderr, "hearth %s: model '%s' already has a release '%s'\n", cmd, a.model, a.version);
	else if (rc == HERR_INVALID || rc == HERR_STATE)
		fprintf(stderr, "hearth %s: the copy of %s changed while it was checked; not added\n", cmd, a.file);
	if (rc != HERR_OK)
		goto out;
	tmp[0] = '\0'; /* moved into place */
	printf("firmware release %s added: model %s, version %s, security version %lld\n", rel.id, rel.model,
	       rel.version, (long long)rel.security_version);
	printf("  sha256 %s\n  size   %llu bytes\n", rel.sha256, (unsigned long long)rel.size);
	ret = CLI_OK;
out:
	if (tmp[0])
		unlink(tmp);
	close(fd);
	datadir_close(dd);
	return ret;
}

static int print_release(void *ctx, const struct firmware_release *r)
{
	char created[32];

	(void)ctx;
	format_time(r->created_at, created, sizeof(created));
	printf("%-32s %-16s %-20s %8lld %12llu %-20s %s\n", r->id, r->model, r->version,
	       (long long)r->security_version, (unsigned long long)r->size, created, r->sha256);
	return 0;
}

static int firmware_list(int argc, char **argv)
{
	static const char cmd[] = "firmware list";
	struct datadir *dd = NULL;
	struct fw_args a;
	int r, ret = CLI_FAIL;

	r = parse_args(cmd, firmware_usage, 0, argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if ((r = refuse_others(cmd, firmware_usage, &a, "--model")) != 0)
		return r;
	if (a.model && !ca_valid_id(a.model))
		return cli_usage(cmd, firmware_usage, "--model '%.80s' must match [A-Za-z0-9_-]{1,64}", a.model);
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	printf("%-32s %-16s %-20s %8s %12s %-20s %s\n", "ID", "MODEL", "VERSION", "SECURITY", "SIZE", "CREATED",
	       "SHA256");
	if (firmware_release_list(dd, a.model, print_release, NULL) == HERR_OK)
		ret = CLI_OK;
	datadir_close(dd);
	return ret;
}

int cmd_firmware(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "add", firmware_add },
		{ "list", firmware_list },
	};

	return cli_dispatch("firmware", firmware_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}

/* --- hearth rollout ----------------------------------------------------------------------------- */

#define LIST_MAX 1000

/* Split "a,b,c" (copied into buf) into ids; a usage error for an empty or bad item. */
static int split_devices(const char *cmd, const char *list, char *buf, size_t size, const char **ids,
			 size_t *n)
{
	char *p, *comma;

	*n = 0;
	if (strlen(list) >= size)
		return cli_usage(cmd, rollout_usage, "--devices is too long (at most %d ids)", LIST_MAX);
	snprintf(buf, size, "%s", list);
	for (p = buf; p; p = comma ? comma + 1 : NULL) {
		comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		if (!ca_valid_id(p))
			return cli_usage(cmd, rollout_usage, "--devices: '%.80s' is not a device id "
					 "([A-Za-z0-9_-]{1,64})", p);
		if (*n == LIST_MAX)
			return cli_usage(cmd, rollout_usage, "--devices: at most %d ids", LIST_MAX);
		ids[(*n)++] = p;
	}
	return 0;
}

static const char *cohort_text(const struct firmware_rollout *r, char *buf, size_t size)
{
	if (strcmp(r->cohort, "percent") == 0)
		snprintf(buf, size, "%u%%", r->percent);
	else if (strcmp(r->cohort, "tag") == 0)
		snprintf(buf, size, "tag %s", r->tag);
	else
		snprintf(buf, size, "list");
	return buf;
}

struct live_find {
	const char *model;
	char id[33];
};

static int find_live(void *ctx, const struct firmware_rollout *r)
{
	struct live_find *f = ctx;

	if (strcmp(r->model, f->model) == 0 && strcmp(r->state, "aborted") != 0) {
		snprintf(f->id, sizeof(f->id), "%s", r->id);
		return 1;
	}
	return 0;
}

static int rollout_create(int argc, char **argv)
{
	static const char cmd[] = "rollout create";
	static char buf[LIST_MAX * 66];
	static const char *ids[LIST_MAX];
	struct firmware_rollout_spec spec;
	struct firmware_rollout out;
	struct firmware_release rel;
	struct datadir *dd = NULL;
	struct fw_args a;
	const char *why = NULL;
	char actor[96], cohort[96];
	int r, ret = CLI_FAIL;
	enum herr rc;

	r = parse_args(cmd, rollout_usage, 0, argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if ((r = refuse_others(cmd, rollout_usage, &a, "--release --percent --devices --tag --failure-threshold")) != 0)
		return r;
	if (!a.release)
		return cli_usage(cmd, rollout_usage, "needs --release ID");
	if (a.has_percent + (a.devices != NULL) + (a.tag != NULL) != 1)
		return cli_usage(cmd, rollout_usage, "needs exactly one of --percent, --devices and --tag");
	memset(&spec, 0, sizeof(spec));
	spec.release = a.release;
	spec.failure_threshold = a.threshold;
	if (a.has_percent) {
		spec.kind = FIRMWARE_COHORT_PERCENT;
		spec.percent = a.percent;
	} else if (a.devices) {
		spec.kind = FIRMWARE_COHORT_LIST;
		if ((r = split_devices(cmd, a.devices, buf, sizeof(buf), ids, &spec.device_count)) != 0)
			return r;
		spec.devices = ids;
	} else {
		if (!valid_tag(a.tag))
			return cli_usage(cmd, rollout_usage, "--tag '%.80s' must match [A-Za-z0-9_.:-]{1,64}", a.tag);
		spec.kind = FIRMWARE_COHORT_TAG;
		spec.tag = a.tag;
	}
	cli_actor(actor, sizeof(actor));
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	rc = firmware_rollout_create(dd, &spec, actor, &out, &why);
	if (rc == HERR_NOTFOUND) {
		fprintf(stderr, "hearth %s: no release '%.80s' ('hearth firmware list' shows them)\n", cmd, a.release);
	} else if (rc == HERR_INVALID) {
		fprintf(stderr, "hearth %s: %s\n", cmd, why ? why : "invalid rollout");
	} else if (rc == HERR_STATE) {
		struct live_find f = { .model = "" };

		if (firmware_release_get(dd, a.release, &rel) == HERR_OK) {
			f.model = rel.model;
			(void)firmware_rollout_list(dd, find_live, &f);
		}
		fprintf(stderr, "hearth %s: model '%s' already has an active or paused rollout%s%s; abort it first\n",
			cmd, f.model, f.id[0] ? " " : "", f.id);
	}
	if (rc != HERR_OK)
		goto out;
	if (firmware_release_get(dd, out.release, &rel) != HERR_OK)
		memset(&rel, 0, sizeof(rel));
	printf("rollout %s created: release %s (model %s, version %s) to %s, failure threshold %u%%\n", out.id,
	       out.release, out.model, rel.version, cohort_text(&out, cohort, sizeof(cohort)), out.failure_threshold);
	printf("'hearth serve' sends the offers; 'hearth rollout show %s' follows it\n", out.id);
	ret = CLI_OK;
out:
	datadir_close(dd);
	return ret;
}

static int print_rollout(void *ctx, const struct firmware_rollout *r)
{
	char cohort[96];

	(void)ctx;
	printf("%-32s %-8s %-16s %-16s %7zu %11zu %9zu %6zu %11zu\n", r->id, r->state, r->model,
	       cohort_text(r, cohort, sizeof(cohort)), r->offered, r->downloading, r->installed, r->failed,
	       r->rolled_back);
	return 0;
}

static int rollout_list(int argc, char **argv)
{
	static const char cmd[] = "rollout list";
	struct datadir *dd = NULL;
	struct fw_args a;
	int r, ret = CLI_FAIL;

	r = parse_args(cmd, rollout_usage, 0, argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if ((r = refuse_others(cmd, rollout_usage, &a, "")) != 0)
		return r;
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	printf("%-32s %-8s %-16s %-16s %7s %11s %9s %6s %11s\n", "ID", "STATE", "MODEL", "COHORT", "OFFERED",
	       "DOWNLOADING", "INSTALLED", "FAILED", "ROLLED_BACK");
	if (firmware_rollout_list(dd, print_rollout, NULL) == HERR_OK)
		ret = CLI_OK;
	datadir_close(dd);
	return ret;
}

/* Open DIR for a subcommand on one rollout (no options but --data, and those in allowed). */
static int open_one(const char *cmd, const char *allowed, int argc, char **argv, struct fw_args *a,
		    struct datadir **dd)
{
	int r = parse_args(cmd, rollout_usage, 1, argc, argv, a);

	*dd = NULL;
	if (r != 0)
		return r < 0 ? -1 : r;
	if ((r = refuse_others(cmd, rollout_usage, a, allowed)) != 0)
		return r;
	return datadir_open(a->data, dd) == HERR_OK ? CLI_OK : CLI_FAIL;
}

static void no_rollout(const char *cmd, const char *id)
{
	fprintf(stderr, "hearth %s: no rollout '%.80s' ('hearth rollout list' shows them)\n", cmd, id);
}

static int rollout_show(int argc, char **argv)
{
	static const char cmd[] = "rollout show";
	struct firmware_rollout ro;
	struct firmware_release rel;
	struct datadir *dd;
	struct fw_args a;
	char cohort[96], created[32], updated[32];
	int r = open_one(cmd, "", argc, argv, &a, &dd);
	enum herr rc;

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	r = CLI_FAIL;
	rc = firmware_rollout_get(dd, a.id, &ro);
	if (rc == HERR_NOTFOUND)
		no_rollout(cmd, a.id);
	if (rc != HERR_OK)
		goto out;
	if (firmware_release_get(dd, ro.release, &rel) != HERR_OK)
		memset(&rel, 0, sizeof(rel));
	format_time(ro.created_at, created, sizeof(created));
	format_time(ro.updated_at, updated, sizeof(updated));
	printf("rollout           %s\nstate             %s\n", ro.id, ro.state);
	if (ro.abort_reason[0])
		printf("abort reason      %s\n", ro.abort_reason);
	printf("release           %s (model %s, version %s, security version %lld)\n", ro.release, ro.model,
	       rel.version, (long long)rel.security_version);
	printf("cohort            %s\nfailure threshold %u%%\ncreated           %s\nupdated           %s\n",
	       cohort_text(&ro, cohort, sizeof(cohort)), ro.failure_threshold, created, updated);
	printf("devices           %zu offered, %zu downloading, %zu installed, %zu failed, %zu rolled back\n",
	       ro.offered, ro.downloading, ro.installed, ro.failed, ro.rolled_back);
	r = CLI_OK;
out:
	datadir_close(dd);
	return r;
}

static int print_device(void *ctx, const struct firmware_rollout_device *d)
{
	char at[32];

	(void)ctx;
	format_time(d->at, at, sizeof(at));
	printf("%-40s %-12s %9lld %s\n", d->device, d->status, (long long)d->manifest_version, at);
	return 0;
}

static int rollout_devices(int argc, char **argv)
{
	static const char cmd[] = "rollout devices";
	struct datadir *dd;
	struct fw_args a;
	int r = open_one(cmd, "", argc, argv, &a, &dd);
	enum herr rc;

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	printf("%-40s %-12s %9s %s\n", "DEVICE", "STATUS", "MANIFEST", "SINCE");
	rc = firmware_rollout_devices(dd, a.id, print_device, NULL);
	if (rc == HERR_NOTFOUND)
		no_rollout(cmd, a.id);
	datadir_close(dd);
	return rc == HERR_OK ? CLI_OK : CLI_FAIL;
}

/* What a refused state change says, given the rollout's state now. */
static void say_state(const char *cmd, struct datadir *dd, const char *id, const char *wanted)
{
	struct firmware_rollout ro;

	if (firmware_rollout_get(dd, id, &ro) == HERR_OK)
		fprintf(stderr, "hearth %s: rollout %s is %s, not %s\n", cmd, id, ro.state, wanted);
	else
		fprintf(stderr, "hearth %s: rollout %s is not %s\n", cmd, id, wanted);
}

static int rollout_widen(int argc, char **argv)
{
	static const char cmd[] = "rollout widen";
	struct firmware_rollout ro;
	struct datadir *dd;
	struct fw_args a;
	char actor[96];
	int r = open_one(cmd, "--percent", argc, argv, &a, &dd);
	enum herr rc;

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	r = CLI_FAIL;
	if (!a.has_percent) {
		r = cli_usage(cmd, rollout_usage, "needs --percent N");
		goto out;
	}
	cli_actor(actor, sizeof(actor));
	rc = firmware_rollout_get(dd, a.id, &ro);
	if (rc == HERR_OK)
		rc = firmware_rollout_widen(dd, a.id, a.percent, actor);
	if (rc == HERR_NOTFOUND)
		no_rollout(cmd, a.id);
	else if (rc == HERR_STATE)
		fprintf(stderr, "hearth %s: rollout %s is aborted\n", cmd, a.id);
	else if (rc == HERR_INVALID && strcmp(ro.cohort, "percent") != 0)
		fprintf(stderr, "hearth %s: rollout %s offers to a %s, not a percent of the devices\n", cmd, a.id,
			strcmp(ro.cohort, "tag") == 0 ? "tag" : "device list");
	else if (rc == HERR_INVALID)
		fprintf(stderr, "hearth %s: rollout %s is at %u%% already: widening needs a larger percent\n", cmd,
			a.id, ro.percent);
	if (rc != HERR_OK)
		goto out;
	printf("rollout %s widened from %u%% to %u%%\n", a.id, ro.percent, a.percent);
	r = CLI_OK;
out:
	datadir_close(dd);
	return r;
}

/* pause and resume: one state change each, from the state named. */
static int rollout_move(int argc, char **argv, const char *cmd, int pause)
{
	struct datadir *dd;
	struct fw_args a;
	char actor[96];
	int r = open_one(cmd, "", argc, argv, &a, &dd);
	enum herr rc;

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	cli_actor(actor, sizeof(actor));
	rc = pause ? firmware_rollout_pause(dd, a.id, actor) : firmware_rollout_resume(dd, a.id, actor);
	if (rc == HERR_NOTFOUND)
		no_rollout(cmd, a.id);
	else if (rc == HERR_STATE)
		say_state(cmd, dd, a.id, pause ? "active" : "paused");
	else if (rc == HERR_OK)
		printf(pause ? "rollout %s paused: no new offers until 'hearth rollout resume'\n" :
			       "rollout %s resumed\n", a.id);
	datadir_close(dd);
	return rc == HERR_OK ? CLI_OK : CLI_FAIL;
}

static int rollout_pause(int argc, char **argv)
{
	return rollout_move(argc, argv, "rollout pause", 1);
}

static int rollout_resume(int argc, char **argv)
{
	return rollout_move(argc, argv, "rollout resume", 0);
}

static int rollout_abort(int argc, char **argv)
{
	static const char cmd[] = "rollout abort";
	struct firmware_rollout ro;
	struct datadir *dd;
	struct fw_args a;
	char actor[96];
	int r = open_one(cmd, "--reason", argc, argv, &a, &dd);
	enum herr rc;

	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	if (a.reason && !valid_reason(a.reason)) {
		datadir_close(dd);
		return cli_usage(cmd, rollout_usage, "--reason must be at most %d printable characters", REASON_MAX);
	}
	cli_actor(actor, sizeof(actor));
	rc = firmware_rollout_abort(dd, a.id, actor, a.reason);
	if (rc == HERR_NOTFOUND)
		no_rollout(cmd, a.id);
	else if (rc == HERR_STATE)
		fprintf(stderr, "hearth %s: rollout %s is already aborted\n", cmd, a.id);
	if (rc == HERR_OK && firmware_rollout_get(dd, a.id, &ro) == HERR_OK)
		printf("rollout %s aborted (%s); devices that had not finished are sent a cancel\n", a.id,
		       ro.abort_reason);
	datadir_close(dd);
	return rc == HERR_OK ? CLI_OK : CLI_FAIL;
}

int cmd_rollout(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "create", rollout_create },
		{ "list", rollout_list },
		{ "show", rollout_show },
		{ "devices", rollout_devices },
		{ "widen", rollout_widen },
		{ "pause", rollout_pause },
		{ "resume", rollout_resume },
		{ "abort", rollout_abort },
	};

	return cli_dispatch("rollout", rollout_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
