/* hearth model set|show|list: device models and their minimization policies. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/cert.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "server/cli.h"
#include "server/datadir.h"
#include "server/policy.h"

static const char usage[] =
	"hearth model set  --data DIR --model NAME --policy FILE\n"
	"  validate FILE (JSON; schema/policy.schema.json, examples in schema/policies/) and make it\n"
	"  the model's minimization policy; an error names the bad field\n"
	"hearth model show --data DIR --model NAME\n"
	"hearth model list --data DIR\n";

struct model_args {
	const char *data, *model, *policy;
};

static int parse_args(int argc, char **argv, struct model_args *a)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "model", required_argument, NULL, 'm' },
		{ "policy", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;
	while ((c = getopt_long(argc, argv, "d:m:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 'm': a->model = optarg; break;
		case 'p': a->policy = optarg; break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return cli_usage("model", usage, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage("model", usage, "unexpected argument '%s'", argv[optind]);
	if (a->model && !ca_valid_id(a->model))
		return cli_usage("model", usage, "model '%.80s' must match [A-Za-z0-9_-]{1,64}", a->model);
	a->data = cli_data_dir(a->data);
	return 0;
}

static int model_set(int argc, char **argv)
{
	char why[256] = "", actor[96], kept[1024];
	struct datadir *dd = NULL;
	struct policy *pol = NULL;
	struct model_args a;
	uint8_t *text = NULL;
	size_t len = 0;
	int r, ret = CLI_FAIL;
	enum herr rc;

	r = parse_args(argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.model || !a.policy)
		return cli_usage("model set", usage, "needs --model and --policy");
	rc = fs_read_file(a.policy, POLICY_MAX_BYTES, &text, &len);
	if (rc != HERR_OK) {
		log_err("%s: %s", a.policy, rc == HERR_TOOBIG ? "larger than a policy may be" : herr_str(rc));
		return CLI_FAIL;
	}
	pol = calloc(1, sizeof(*pol));
	if (!pol)
		goto out;
	if (policy_parse(text, len, pol, why, sizeof(why)) != HERR_OK) {
		fprintf(stderr, "hearth model set: %s: %s\n", a.policy, why);
		goto out;
	}
	if (policy_sensitive_kept(pol, kept, sizeof(kept)) > 0)
		fprintf(stderr, "hearth model set: warning: this policy keeps presence-revealing fields "
			"(coarsened, as sensitive_ok says):\n%s", kept);
	cli_actor(actor, sizeof(actor));
	if (datadir_open(a.data, &dd) != HERR_OK)
		goto out;
	if (store_begin(dd->store) != HERR_OK)
		goto out;
	if (store_model_set_policy(dd->store, a.model, (const char *)text, (int64_t)time(NULL)) != HERR_OK ||
	    store_audit(dd->store, (int64_t)time(NULL), actor, "model.set", a.model, a.policy) != HERR_OK ||
	    store_commit(dd->store) != HERR_OK) {
		store_rollback(dd->store);
		goto out;
	}
	printf("model %s: policy set (%zu field%s kept)\n", a.model, pol->count, pol->count == 1 ? "" : "s");
	ret = CLI_OK;
out:
	free(pol);
	free(text);
	datadir_close(dd);
	return ret;
}

static int model_show(int argc, char **argv)
{
	struct datadir *dd = NULL;
	struct model_args a;
	char *policy = NULL;
	int r, ret = CLI_FAIL;
	enum herr rc;

	r = parse_args(argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.model)
		return cli_usage("model show", usage, "needs --model");
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	rc = store_model_get_policy(dd->store, a.model, &policy);
	if (rc == HERR_NOTFOUND) {
		log_err("no model '%s'", a.model);
	} else if (rc == HERR_OK) {
		if (policy)
			fputs(policy, stdout);
		else
			printf("model %s has no policy: only a coarse last-seen time is kept\n", a.model);
		ret = CLI_OK;
	}
	free(policy);
	datadir_close(dd);
	return ret;
}

static int print_model(void *ctx, const char *name, int has_policy, int64_t devices)
{
	(void)ctx;
	printf("%-24s %-8s %lld\n", name, has_policy ? "yes" : "no", (long long)devices);
	return 0;
}

static int model_list(int argc, char **argv)
{
	struct datadir *dd = NULL;
	struct model_args a;
	int r, ret = CLI_FAIL;

	r = parse_args(argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	printf("%-24s %-8s %s\n", "MODEL", "POLICY", "DEVICES");
	if (store_model_list(dd->store, print_model, NULL) == HERR_OK)
		ret = CLI_OK;
	datadir_close(dd);
	return ret;
}

int cmd_model(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "set", model_set },
		{ "show", model_show },
		{ "list", model_list },
	};

	return cli_dispatch("model", usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
