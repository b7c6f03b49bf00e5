/* hearth token add|list|revoke: the REST API's bearer tokens, from the host; and hearth api
 * routes, the route table. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ca/cert.h"
#include "common/log.h"
#include "server/cli.h"
#include "server/datadir.h"
#include "server/rest.h"
#include "server/token.h"

static const char usage[] =
	"hearth token add    --data DIR --name NAME --scope read|operate|admin [--days N]\n"
	"  prints the new token alone on its last line: it is shown once, hearth keeps only its hash\n"
	"hearth token list   --data DIR\n"
	"hearth token revoke --data DIR --name NAME\n"
	"  read: look at everything; operate: also devices, enrollment tokens, revocation;\n"
	"  admin: also policies, decommissioning and the audit log. --days N: expires (default: never)\n";

int cli_token_create(struct datadir *dd, const char *name, const char *scope, unsigned days,
		     const char *actor, char *token)
{
	struct store_api_token t;
	enum token_scope s;
	int64_t now = (int64_t)time(NULL);
	enum herr rc;

	memset(&t, 0, sizeof(t));
	if (token_scope_parse(scope, &s) != 0) {
		log_err("scope '%s' is not read, operate or admin", scope);
		return CLI_USAGE;
	}
	if (token_make(TOKEN_API, token, t.id, t.hash) != HERR_OK)
		return CLI_FAIL;
	snprintf(t.name, sizeof(t.name), "%s", name);
	snprintf(t.scope, sizeof(t.scope), "%s", token_scope_name(s));
	t.created_at = now;
	t.expires_at = days ? now + (int64_t)days * 86400 : 0;
	if (store_begin(dd->store) != HERR_OK)
		goto fail;
	rc = store_api_token_insert(dd->store, &t);
	if (rc == HERR_EXISTS)
		log_err("a token named '%s' already exists", name);
	if (rc != HERR_OK || store_audit(dd->store, now, actor, "token.add", name, t.scope) != HERR_OK ||
	    store_commit(dd->store) != HERR_OK) {
		store_rollback(dd->store);
		goto fail;
	}
	return CLI_OK;
fail:
	memset(token, 0, TOKEN_MAX);
	return CLI_FAIL;
}

struct token_args {
	const char *data, *name, *scope;
	unsigned days;
};

static int parse_args(const char *cmd, int argc, char **argv, struct token_args *a)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "scope", required_argument, NULL, 's' },
		{ "days", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;
	while ((c = getopt_long(argc, argv, "d:n:s:D:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 'n': a->name = optarg; break;
		case 's': a->scope = optarg; break;
		case 'D':
			if (cli_parse_uint(optarg, 1, 3650, &a->days) != 0)
				return cli_usage(cmd, usage, "--days must be 1..3650");
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
	if (a->name && !ca_valid_id(a->name))
		return cli_usage(cmd, usage, "--name must match [A-Za-z0-9_-]{1,64}");
	a->data = cli_data_dir(a->data);
	return 0;
}

static int token_add(int argc, char **argv)
{
	char actor[96], token[TOKEN_MAX];
	struct datadir *dd = NULL;
	struct token_args a;
	int r;

	r = parse_args("token add", argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.name || !a.scope)
		return cli_usage("token add", usage, "needs --name and --scope");
	cli_actor(actor, sizeof(actor));
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	r = cli_token_create(dd, a.name, a.scope, a.days, actor, token);
	datadir_close(dd);
	if (r != CLI_OK)
		return r;
	printf("API token '%s' (scope %s) made; shown once, hearth keeps only its hash:\n%s\n", a.name, a.scope,
	       token);
	memset(token, 0, sizeof(token));
	return CLI_OK;
}

static void format_time(int64_t t, char *buf, size_t size)
{
	struct tm tm;
	time_t tt = (time_t)t;

	snprintf(buf, size, "-");
	if (t && gmtime_r(&tt, &tm))
		strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static int print_token(void *ctx, const struct store_api_token *t)
{
	char expires[32], used[32];

	(void)ctx;
	format_time(t->expires_at, expires, sizeof(expires));
	format_time(t->last_used_at, used, sizeof(used));
	printf("%-24s %-8s %-8s %-21s %s\n", t->name, t->scope, t->revoked_at ? "revoked" : "active", expires,
	       used);
	return 0;
}

static int token_list(int argc, char **argv)
{
	struct datadir *dd = NULL;
	struct token_args a;
	int r, ret = CLI_FAIL;

	r = parse_args("token list", argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	printf("%-24s %-8s %-8s %-21s %s\n", "NAME", "SCOPE", "STATUS", "EXPIRES", "LAST USED");
	if (store_api_token_list(dd->store, print_token, NULL) == HERR_OK)
		ret = CLI_OK;
	datadir_close(dd);
	return ret;
}

static int token_revoke(int argc, char **argv)
{
	struct datadir *dd = NULL;
	struct token_args a;
	char actor[96];
	int r, ret = CLI_FAIL;
	int64_t now = (int64_t)time(NULL);
	enum herr rc;

	r = parse_args("token revoke", argc, argv, &a);
	if (r != 0)
		return r < 0 ? CLI_OK : r;
	if (!a.name)
		return cli_usage("token revoke", usage, "needs --name");
	cli_actor(actor, sizeof(actor));
	if (datadir_open(a.data, &dd) != HERR_OK)
		return CLI_FAIL;
	if (store_begin(dd->store) != HERR_OK)
		goto out;
	rc = store_api_token_revoke(dd->store, a.name, now);
	if (rc == HERR_NOTFOUND)
		log_err("no token named '%s'", a.name);
	else if (rc == HERR_STATE)
		log_err("the token '%s' is already revoked", a.name);
	if (rc != HERR_OK || store_audit(dd->store, now, actor, "token.revoke", a.name, NULL) != HERR_OK ||
	    store_commit(dd->store) != HERR_OK) {
		store_rollback(dd->store);
		goto out;
	}
	printf("token '%s' revoked\n", a.name);
	ret = CLI_OK;
out:
	datadir_close(dd);
	return ret;
}

int cmd_token(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "add", token_add },
		{ "list", token_list },
		{ "revoke", token_revoke },
	};

	return cli_dispatch("token", usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}

static int api_routes(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	rest_print_routes(stdout);
	return CLI_OK;
}

int cmd_api(int argc, char **argv)
{
	static const char api_usage[] = "hearth api routes\n  every REST route: METHOD PATH SCOPE\n";
	static const struct cli_subcommand subs[] = {
		{ "routes", api_routes },
	};

	return cli_dispatch("api", api_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
