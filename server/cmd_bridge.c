/* hearth bridge status: where the northbound bridge sends (from the settings of serve, never a
 * password) and how far it got (from the store, as the running server last recorded it). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/bridge.h"
#include "server/cli.h"
#include "server/config.h"
#include "server/datadir.h"

static const char usage[] =
	"hearth bridge status --data DIR [--SETTING VALUE]...\n"
	"  the bridge's broker (host:port, TLS, client certificate and username set or not; never the\n"
	"  password), whether the server is connected to it, its outbox (records waiting, bytes, the\n"
	"  oldest's age, records dropped unsent) and its watermark; takes the setting flags of\n"
	"  hearth serve\n";

static void when(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "never");
}

static int status(int argc, char **argv)
{
	struct cli_args args = { 0 };
	struct store_bridge_state s;
	char err[CONFIG_ERR_MAX], t1[32], t2[32];
	struct datadir *dd = NULL;
	struct config cfg;
	const struct bridge_config *b = &cfg.bridge;
	const char *dir;
	int ret;
	enum herr rc;

	config_defaults(&cfg);
	ret = cli_parse_settings("bridge status", usage, argc, argv, &cfg, &args);
	if (ret != CLI_OK || args.help) {
		if (args.help)
			fputs(usage, stdout);
		return ret;
	}
	dir = cli_data_dir(args.data);
	if (config_load(&cfg, dir, err, sizeof(err)) != HERR_OK) {
		fprintf(stderr, "hearth bridge status: %s\n", err);
		return CLI_FAIL;
	}
	if (datadir_open(dir, &dd) != HERR_OK)
		return CLI_FAIL;
	rc = store_bridge_state(dd->store, &s);
	datadir_close(dd);
	if (rc != HERR_OK) {
		fprintf(stderr, "hearth bridge status: cannot read the bridge's state (%s)\n", herr_str(rc));
		return CLI_FAIL;
	}
	if (bridge_enabled(b))
		printf("target:     %s:%d (tls %s, client certificate %s, username %s)\n", b->host, bridge_port(b),
		       b->tls ? "yes" : "no", b->certfile[0] ? "yes" : "no", b->password_file[0] ? "yes" : "no");
	else
		printf("target:     none (bridge_host is not set: the bridge is off)\n");
	when(s.changed_at, t1, sizeof(t1));
	if (s.changed_at > 0)
		printf("broker:     %s since %s (as the server last recorded it)\n",
		       s.connected ? "connected" : "not connected", t1);
	else
		printf("broker:     never connected\n");
	when(s.oldest, t2, sizeof(t2));
	if (s.rows > 0)
		printf("outbox:     %lld record%s, %lld bytes, oldest queued %s (%lld s ago)\n", (long long)s.rows,
		       s.rows == 1 ? "" : "s", (long long)s.bytes, t2, (long long)((int64_t)time(NULL) - s.oldest));
	else
		printf("outbox:     0 records\n");
	printf("dropped:    %lld record%s (outbox full, too old, or past their retention)\n", (long long)s.dropped,
	       s.dropped == 1 ? "" : "s");
	when(s.until, t1, sizeof(t1));
	if (s.until > 0)
		printf("watermark:  records of buckets closed by %s are queued or sent\n", t1);
	else
		printf("watermark:  none (the bridge never ran)\n");
	return CLI_OK;
}

int cmd_bridge(int argc, char **argv)
{
	static const struct cli_subcommand table[] = { { "status", status } };

	return cli_dispatch("bridge", usage, table, sizeof(table) / sizeof(table[0]), argc, argv);
}
