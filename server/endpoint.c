#include "server/endpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "server/acl.h"
#include "server/addrlimit.h"
#include "server/bridge.h"
#include "server/broker.h"
#include "server/config.h"
#include "server/feed.h"
#include "server/metrics.h"
#include "server/net.h"
#include "server/handshake.h"
#include "server/ingest.h"
#include "server/pki.h"
#include "server/rest.h"
#include "server/ticker.h"
#include "server/tls.h"

#define MAX_EVENTS 256
#define ACCEPT_BATCH 256
#define TICK_MS 250
#define REVOCATION_POLL_MS 1000
/* How often the endpoint certificate is checked for renewal (2/3 of its life) or replacement. */
#define CERT_CHECK_MS 5000
/* How often closed buckets are looked for: a record goes out at most this late. */
#define FEED_MS 1000
/* Heap that closed connections left behind goes back to the kernel (malloc_trim) once this many
 * fewer connections are open than at the peak since the last time: after a storm, not per close. */
#define TRIM_AFTER_CLOSES 256
/* ... and after fewer, once nothing has opened or closed for this long: what a lull left behind. */
#define TRIM_IDLE_MS 2000
/* Group commit lingers: a transaction with fewer than COMMIT_LINGER_MSGS messages stays open up to
 * COMMIT_LINGER_US after its first message, so that a lightly loaded server pays one commit (a WAL
 * write and fsync) for several messages instead of one each. It is committed at once when every
 * connection has a message in it: none of them may send more before its acknowledgement. The
 * PUBACKs wait as long. */
#define COMMIT_LINGER_US 1000
#define COMMIT_LINGER_MSGS 256
/* How long the loop lets another writer go first at most (let_writers_in). */
#define WRITER_WAIT_MS 250

struct endpoint {
	struct datadir *dd;
	struct config *conf;               /* what SIGHUP reloads */
	const struct endpoint_config *cfg; /* &conf->ep */
	int epfd, lfd, sigfd;
	struct conn_env env;
	struct conn *conns;
	struct endpoint_stats stats;
	int64_t revocations_since;
	uint64_t last_full_log;
	struct stat cert_st;     /* of the endpoint certificate file the TLS server was built from */
	struct hs_pool *pool;    /* handshake threads; NULL when handshakes run on the loop */
	struct ingest *ingest;
	struct feed *feed;
	size_t conn_peak;        /* most connections open since memory was last given back */
	uint64_t handshakes_at_trim; /* stats.handshakes then */
	size_t trim_open;            /* connections open and handshakes done at the last tick ... */
	uint64_t trim_handshakes;
	uint64_t trim_quiet_since;   /* ... and since when neither has changed */
	uint64_t memory_returns;     /* give_back_memory's count */
	struct rest *rest;
	struct ticker *ticker;        /* rollouts, on a thread of its own */
	struct bridge *bridge;        /* the northbound bridge, on a thread of its own; NULL when off */
	int manifests_failing;   /* delivery failed on its last try: logged once, then at recovery */
	int wakefd;              /* eventfd: the REST thread changed something the loop caches */
	int wake_pending;
	uint64_t commit_le[METRICS_COMMIT_BUCKETS], commit_count;
	double commit_sum;
	pthread_mutex_t snap_lock;
	struct metrics_snap snap;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
	return now_us() / 1000;
}

/* How much longer the open group commit may wait for more messages, in µs; 0: commit now. */
static uint64_t commit_wait_us(const struct endpoint *ep)
{
	const struct conn_env *env = &ep->env;
	uint64_t age;

	if (!env->batch_open || env->outage.on || env->batch_msgs >= COMMIT_LINGER_MSGS ||
	    env->ack_waiting >= env->count)
		return 0;
	age = now_us() - env->batch_opened_us;
	return age < COMMIT_LINGER_US ? COMMIT_LINGER_US - age : 0;
}

/* epoll_wait, for at most timeout_us (epoll_pwait2: a group commit's linger is below a millisecond;
 * where the kernel lacks it, the wait is not made at all and the batch is committed). */
static int wait_events(int epfd, struct epoll_event *events, int max, uint64_t timeout_us)
{
	struct timespec ts = { .tv_sec = (time_t)(timeout_us / 1000000), .tv_nsec = (long)(timeout_us % 1000000) * 1000 };
	int n;

	if (timeout_us == 0 || timeout_us % 1000 == 0)
		return epoll_wait(epfd, events, max, (int)(timeout_us / 1000));
	n = epoll_pwait2(epfd, events, max, &ts, NULL);
	if (n < 0 && errno == ENOSYS)
		n = epoll_wait(epfd, events, max, 0);
	return n;
}

void endpoint_default_config(struct endpoint_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mqtt_addr = ENDPOINT_DEFAULT_MQTT;
	cfg->lim.max_packet = 256 * 1024;
	cfg->lim.max_connections = 20000;
	cfg->lim.max_connections_per_address = 1000;
	cfg->lim.max_handshakes_per_address = 100;
	cfg->lim.max_inflight = 32;
	cfg->lim.max_subscriptions = 32;
	cfg->lim.max_queued = 1000;
	cfg->lim.max_output = 4 * 1024 * 1024;
	cfg->lim.handshake_timeout_ms = 10000;
	cfg->lim.connect_timeout_ms = 10000;
	cfg->lim.handshake_threads = -1;
}

/* Admit a device or client whose certificate is recorded and valid, and who is active: asked at
 * the end of every handshake, so a revocation from any process or node counts at once. */
static const char *identity_check(void *ctx, struct tls_peer *peer)
{
	char role[STORE_ROLE_MAX];

	switch (store_identity_ok(ctx, peer->id, peer->serial, role)) {
	case HERR_OK:
		return acl_role_parse(role, &peer->role) == 0 ? NULL : "unknown role";
	case HERR_NOTFOUND:
		return "unknown device or certificate";
	case HERR_STATE:
		return "device or certificate revoked";
	default:
		return "device registry unavailable";
	}
}

static enum herr listen_on(const char *spec, int *out)
{
	char shown[300];
	enum herr rc = net_listen("mqtt", spec, NET_NONBLOCK, 1024, out, shown, sizeof(shown));

	/* Tests bind port 0 and read the real port from this line. */
	if (rc == HERR_OK)
		log_info("MQTT endpoint listening on %s", shown);
	return rc;
}

/* A connection refused because its address is at a per-address limit: counted, and logged at the
 * start of a burst (then once a minute while it lasts), never once per connection. */
static void refuse_address(struct endpoint *ep, struct addrlimit_entry *e, enum addrlimit_verdict why,
			   uint64_t now)
{
	uint64_t since = 0;
	char more[64] = "";

	ep->stats.refused_address++;
	if (!addrlimit_refused(e, now, &since))
		return;
	if (since)
		snprintf(more, sizeof(more), "; %llu refused since the last such line", (unsigned long long)since);
	log_warn("%s: refusing new connections from this address: %zu open, %zu of them in the TLS handshake "
		 "(%s = %zu)%s", addrlimit_name(e), addrlimit_connections(e), addrlimit_handshakes(e),
		 why == ADDRLIMIT_CONNECTIONS ? "max_connections_per_address" : "max_handshakes_per_address",
		 why == ADDRLIMIT_CONNECTIONS ? ep->cfg->lim.max_connections_per_address :
						ep->cfg->lim.max_handshakes_per_address, more);
}

static void accept_all(struct endpoint *ep, uint64_t now)
{
	int i;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct addrlimit_entry *slot = NULL;
		enum addrlimit_verdict verdict;
		struct conn *c = NULL;
		char addr[80];
		int one = 1;
		int fd = accept4(ep->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		if (ep->env.count + (ep->pool ? hs_pool_pending(ep->pool) : 0) >= ep->cfg->lim.max_connections) {
			ep->stats.refused_connections++;
			if (now - ep->last_full_log > 10000) {
				log_warn("connection limit (%zu) reached; refusing new connections",
					 ep->cfg->lim.max_connections);
				ep->last_full_log = now;
			}
			close(fd);
			continue;
		}
		/* Before any TLS work: a refused connection costs an accept and a close. */
		verdict = addrlimit_open(ep->env.addrs, (struct sockaddr *)&ss, sl, ep->cfg->lim.max_connections_per_address,
					 ep->cfg->lim.max_handshakes_per_address, &slot);
		if (verdict != ADDRLIMIT_OK) {
			if (verdict != ADDRLIMIT_NOMEM)
				refuse_address(ep, slot, verdict, now);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		net_addr_name((struct sockaddr *)&ss, sl, addr, sizeof(addr));
		ep->stats.accepted++;
		if (ep->pool) {
			/* It owns fd now, even on failure; the slot comes back with the result. */
			if (hs_pool_submit(ep->pool, fd, addr, slot) != HERR_OK)
				addrlimit_close(ep->env.addrs, slot, 1);
			continue;
		}
		if (conn_new(&ep->env, fd, addr, now, &c) != HERR_OK) {
			close(fd);
			addrlimit_close(ep->env.addrs, slot, 1);
			continue;
		}
		conn_set_address(c, slot, 1);
		conn_link(&ep->conns, c);
	}
}

/* Connections whose handshake a handshake thread finished: admitted ones join the loop. */
static void collect_handshakes(struct endpoint *ep, uint64_t now)
{
	struct hs_result r[64];
	size_t i, n = hs_pool_collect(ep->pool, r, 64);

	for (i = 0; i < n; i++) {
		struct conn *c = NULL;

		addrlimit_handshake_done(ep->env.addrs, r[i].tag);
		if (!r[i].tls) {
			if (r[i].timed_out)
				ep->stats.closed_timeout++;
			else
				ep->stats.refused_handshake++;
			log_info("%s: closed: %s", r[i].addr, r[i].error);
			addrlimit_close(ep->env.addrs, r[i].tag, 0);
			continue;
		}
		if (conn_adopt(&ep->env, r[i].fd, r[i].tls, r[i].addr, now, &c) != HERR_OK) {
			close(r[i].fd);
			tls_conn_free(r[i].tls);
			addrlimit_close(ep->env.addrs, r[i].tag, 0);
			continue;
		}
		conn_set_address(c, r[i].tag, 0);
		conn_link(&ep->conns, c);
	}
}

/* Group commit: everything this turn's messages wrote is committed at once, then their
 * acknowledgements go out. */
static void commit_batch(struct endpoint *ep)
{
	int ok;

	struct timespec t0, t1;
	double s;
	size_t i;

	if (!ep->env.batch_open)
		return;
	ep->env.batch_open = 0;
	ep->env.batch_msgs = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* The turn's telemetry, merged per row in memory, is written now, inside the transaction. */
	ok = ingest_flush(ep->ingest) == HERR_OK && store_commit(ep->dd->store) == HERR_OK;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	for (i = 0; i < METRICS_COMMIT_BUCKETS; i++) {
		if (s <= metrics_commit_bounds[i])
			ep->commit_le[i]++;
	}
	ep->commit_count++;
	ep->commit_sum += s;
	if (!ok) {
		ingest_discard(ep->ingest);
		store_rollback(ep->dd->store);
		/* Within a store outage only its start and its end are logged (by conn.c). */
		if (!ep->env.outage.on)
			log_err("group commit failed; the messages of this turn are not acknowledged");
	}
	conn_batch_done(&ep->env, ok);
}

/* Another writer (the REST API, the rollout ticker, the bridge, a CLI command) waits for the write
 * lock: the loop begins no transaction until it has it, for at most WRITER_WAIT_MS. Under steady
 * publishing the group commits are back to back and it would otherwise wait out its busy timeout. */
static void let_writers_in(struct endpoint *ep)
{
	int i;

	for (i = 0; i < WRITER_WAIT_MS && store_writers_waiting(ep->dd->store); i++)
		(void)usleep(1000);
}

/* glibc keeps freed heap for reuse; after many connections closed, most of it is free pages
 * between live chunks, which malloc_trim returns (docs/performance.md). */
static void give_back_memory(struct endpoint *ep, uint64_t now)
{
	size_t open = ep->env.count;
	uint64_t churn = ep->stats.handshakes - ep->handshakes_at_trim;
	int waiting = ep->pool && hs_pool_pending(ep->pool) > 0, burst, lull;

	if (open > ep->conn_peak)
		ep->conn_peak = open;
	if (open != ep->trim_open || ep->stats.handshakes != ep->trim_handshakes) {
		ep->trim_open = open;
		ep->trim_handshakes = ep->stats.handshakes;
		ep->trim_quiet_since = now;
	}
	/* After a storm, or after many connections came and went a few at a time (once no handshake
	 * is waiting), or after any churn at all once nothing has changed for TRIM_IDLE_MS: the
	 * loop's page cache too, which CONNECTs and sessions filled. */
	burst = ep->conn_peak - open >= TRIM_AFTER_CLOSES || (churn >= TRIM_AFTER_CLOSES && !waiting);
	lull = (churn > 0 || ep->conn_peak > open) && !waiting && now >= ep->trim_quiet_since + TRIM_IDLE_MS;
	if (!burst && !lull)
		return;
	store_release_memory(ep->dd->store);
	(void)malloc_trim(0);
	ep->conn_peak = open;
	ep->handshakes_at_trim = ep->stats.handshakes;
	ep->memory_returns++;
}

static void reap(struct endpoint *ep)
{
	struct conn *c = ep->env.dead, *next;

	ep->env.dead = NULL;
	for (; c; c = next) {
		next = conn_dead_next(c);
		conn_unlink(&ep->conns, c);
		conn_free(c);
	}
}

static int kick_revoked(void *ctx, const char *id, const char *status)
{
	struct endpoint *ep = ctx;

	if (broker_kick(ep->env.broker, id, "device revoked"))
		ep->stats.closed_revoked++;
	/* Decommissioned: nothing about the device may stay behind, in the store or in memory. */
	if (strcmp(status, "decommissioned") == 0) {
		size_t n = broker_forget(ep->env.broker, id);

		if (n > 0)
			log_info("%s: decommissioned; its %zu retained message(s) dropped from memory", id, n);
	}
	return 0;
}

/* --- manifests: each new one (from any process: the CLI, REST) is published, retained, on
 * hearth/v1/<id>/manifest/<type> of every active device it addresses, in one transaction with the
 * delivery cursor: a crash repeats a delivery (retained: harmless), never skips one. */
#define MANIFESTS_PER_POLL 16

struct manifest_copy {
	int64_t seq;
	char target[80], type[16];
	char *envelope;
};

struct manifest_batch {
	struct manifest_copy m[MANIFESTS_PER_POLL];
	size_t count;
};

static int copy_manifest(void *ctx, const struct store_manifest *m)
{
	struct manifest_batch *b = ctx;
	struct manifest_copy *c = &b->m[b->count];

	c->seq = m->seq;
	snprintf(c->target, sizeof(c->target), "%s", m->target);
	snprintf(c->type, sizeof(c->type), "%s", m->type);
	c->envelope = strdup(m->envelope);
	if (!c->envelope)
		return 1;
	b->count++;
	return b->count == MANIFESTS_PER_POLL;
}

struct delivery {
	struct endpoint *ep;
	const struct manifest_copy *m;
	size_t devices;
	int failed;
};

static int deliver_to(void *ctx, const char *id)
{
	struct delivery *d = ctx;
	char topic[160];

	if ((size_t)snprintf(topic, sizeof(topic), ACL_PREFIX "%s/manifest/%s", id, d->m->type) >= sizeof(topic))
		return 0;
	if (broker_publish(d->ep->env.broker, topic, (const uint8_t *)d->m->envelope, strlen(d->m->envelope),
			   1, 1) != HERR_OK) {
		d->failed = 1;
		return 1;
	}
	d->devices++;
	return 0;
}

static void deliver_manifests(struct endpoint *ep)
{
	struct manifest_batch batch;
	struct store *st = ep->dd->store;
	int64_t after = 0;
	size_t i;

	batch.count = 0;
	if (store_manifest_delivered(st, &after) != HERR_OK ||
	    store_manifest_list_since(st, after, MANIFESTS_PER_POLL, copy_manifest, &batch) != HERR_OK)
		goto out;
	for (i = 0; i < batch.count; i++) {
		struct delivery d = { .ep = ep, .m = &batch.m[i] };

		if (store_begin(st) != HERR_OK)
			break;
		if (store_manifest_devices(st, d.m->target, deliver_to, &d) != HERR_OK || d.failed ||
		    store_manifest_set_delivered(st, d.m->seq) != HERR_OK || store_commit(st) != HERR_OK) {
			store_rollback(st);
			/* Retried every second: a store outage would otherwise write this line as often. */
			if (!ep->manifests_failing)
				log_err("manifest %lld (%s for %s) not delivered; retrying every %d ms, logged again "
					"when it is delivered", (long long)d.m->seq, d.m->type, d.m->target,
					REVOCATION_POLL_MS);
			ep->manifests_failing = 1;
			break;
		}
		log_info("manifest %s for %s published to %zu device(s)%s", d.m->type, d.m->target, d.devices,
			 ep->manifests_failing ? " after failed tries" : "");
		ep->manifests_failing = 0;
	}
out:
	for (i = 0; i < batch.count; i++)
		free(batch.m[i].envelope);
}

static void poll_revocations(struct endpoint *ep)
{
	int64_t now = (int64_t)time(NULL);

	/* Overlap the window by a few seconds: kicking twice is harmless, missing one is not. */
	if (store_list_inactive_since(ep->dd->store, ep->revocations_since, kick_revoked, ep) == HERR_OK)
		ep->revocations_since = now - 3;
}

/* Build a TLS server from the files as they are now and make it the one new handshakes use.
 * Live connections keep the one they started with (it is reference-counted). */
static enum herr load_tls(struct endpoint *ep)
{
	char chain[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	struct tls_server *srv = NULL;
	struct stat st;
	enum herr rc;

	if ((rc = datadir_file(ep->dd, DATADIR_ENDPOINT_CERT, chain, sizeof(chain))) != HERR_OK ||
	    (rc = datadir_file(ep->dd, DATADIR_ENDPOINT_KEY, key, sizeof(key))) != HERR_OK ||
	    (rc = datadir_file(ep->dd, DATADIR_ISSUING_CERT, ca, sizeof(ca))) != HERR_OK)
		return rc;
	if (stat(chain, &st) != 0)
		return HERR_IO;
	rc = tls_server_new(chain, key, ca, identity_check, ep->dd->store, &srv);
	if (rc != HERR_OK)
		return rc;
	if (ep->env.tls) {
		/* Tickets issued under the old certificate stay valid: a renewal is no reconnect storm. */
		tls_server_share_tickets(ep->env.tls, srv);
		tls_server_unref(ep->env.tls);
		log_info("endpoint certificate reloaded; new handshakes use it, live connections stay");
	}
	ep->env.tls = srv;
	ep->cert_st = st;
	if (ep->pool)
		hs_pool_reload(ep->pool, srv);
	if (ep->rest)
		(void)rest_reload(ep->rest);
	return HERR_OK;
}

/* Renew the endpoint certificate at 2/3 of its life, and pick up a certificate replaced by
 * anyone (`hearth ca renew-endpoint`, another node): the file is the source of truth. */
static void check_certificate(struct endpoint *ep)
{
	char chain[PATH_MAX];
	struct ca_cert_info info;
	struct stat st;

	if (pki_endpoint_due(ep->dd, (int64_t)time(NULL))) {
		if (pki_renew_endpoint(ep->dd, "endpoint", &info) == HERR_OK)
			log_info("endpoint certificate renewed: serial %s, valid until %lld", info.serial_hex,
				 (long long)info.not_after);
	}
	if (datadir_file(ep->dd, DATADIR_ENDPOINT_CERT, chain, sizeof(chain)) != HERR_OK ||
	    stat(chain, &st) != 0)
		return;
	if (st.st_ino != ep->cert_st.st_ino || st.st_mtim.tv_sec != ep->cert_st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != ep->cert_st.st_mtim.tv_nsec || st.st_size != ep->cert_st.st_size) {
		if (load_tls(ep) != HERR_OK)
			log_err("the new endpoint certificate could not be loaded; keeping the old one");
	}
}

static enum herr start_handshake_threads(struct endpoint *ep)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ep->pool };
	struct hs_config hc = { .identity = identity_check, .timeout_ms = ep->cfg->lim.handshake_timeout_ms,
				.tickets_from = ep->env.tls };
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int n = ep->cfg->lim.handshake_threads;
	enum herr rc;

	/* Default: a thread per core (at most 8). A full handshake is milliseconds of elliptic-curve
	 * arithmetic, a routed message microseconds: in a reconnect storm the handshakes need every
	 * core, and the loop, which never blocks, still gets its share from the scheduler. */
	if (n < 0)
		n = cores > 1 ? (int)(cores < 8 ? cores : 8) : 0;
	if (n == 0) {
		log_info("TLS handshakes run on the event loop");
		return HERR_OK;
	}
	hc.threads = (unsigned)n;
	if ((rc = datadir_file(ep->dd, DATADIR_ENDPOINT_CERT, hc.chain, sizeof(hc.chain))) != HERR_OK ||
	    (rc = datadir_file(ep->dd, DATADIR_ENDPOINT_KEY, hc.key, sizeof(hc.key))) != HERR_OK ||
	    (rc = datadir_file(ep->dd, DATADIR_ISSUING_CERT, hc.ca, sizeof(hc.ca))) != HERR_OK ||
	    (rc = datadir_file(ep->dd, DATADIR_DB, hc.db, sizeof(hc.db))) != HERR_OK)
		return rc;
	rc = hs_pool_new(&hc, &ep->pool);
	if (rc != HERR_OK)
		return rc;
	if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, hs_pool_fd(ep->pool), &ev) != 0)
		return HERR_IO;
	log_info("TLS handshakes run on %d thread%s", n, n == 1 ? "" : "s");
	return HERR_OK;
}

/* REST thread: wake the loop, which then forgets cached policies and polls revocations. */
static void rest_changed(void *ctx)
{
	struct endpoint *ep = ctx;
	uint64_t one = 1;

	if (write(ep->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("could not wake the event loop: %s", strerror(errno));
}

static void on_wake(struct endpoint *ep)
{
	uint64_t n;

	while (read(ep->wakefd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		;
	ingest_forget(ep->ingest);
	/* The store is looked at after this turn's group commit: nothing may join that transaction. */
	ep->wake_pending = 1;
}

static void snapshot_metrics(struct endpoint *ep)
{
	pthread_mutex_lock(&ep->snap_lock);
	ep->snap.ep = ep->stats;
	ep->snap.broker = *broker_stats(ep->env.broker);
	ep->snap.ingest = *ingest_stats(ep->ingest);
	ep->snap.connections = ep->env.count;
	ep->snap.store_outage = ep->env.outage.on;
	ep->snap.outage_unacked = ep->env.outage.unacked;
	memcpy(ep->snap.commit_le, ep->commit_le, sizeof(ep->commit_le));
	ep->snap.commit_count = ep->commit_count;
	ep->snap.commit_sum = ep->commit_sum;
	bridge_stats(ep->bridge, &ep->snap.bridge);
	ep->snap.memory_returns[0] = ep->memory_returns;
	ep->snap.memory_returns[1] = ep->pool ? hs_pool_memory_returns(ep->pool) : 0;
	pthread_mutex_unlock(&ep->snap_lock);
}

/* Called on the REST thread: the last snapshot, in Prometheus text format. */
static size_t render_metrics(void *ctx, char *buf, size_t size)
{
	struct endpoint *ep = ctx;
	struct metrics_snap snap;

	pthread_mutex_lock(&ep->snap_lock);
	snap = ep->snap;
	pthread_mutex_unlock(&ep->snap_lock);
	return metrics_render(&snap, buf, size);
}

static enum herr start_rest(struct endpoint *ep)
{
	struct rest_hooks hooks = { .ctx = ep, .changed = rest_changed, .metrics = render_metrics };

	if (strcmp(ep->conf->api, "off") == 0) {
		log_info("REST API off (api = off)");
		return HERR_OK;
	}
	snapshot_metrics(ep);
	return rest_start(ep->dd->path, ep->conf->api, ep->conf->api_plain, &hooks, &ep->rest);
}

static enum herr setup(struct endpoint *ep)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct rlimit rl;
	sigset_t set;
	enum herr rc;

	/* Every connection is a descriptor: use all the kernel allows us. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (pki_endpoint_due(ep->dd, (int64_t)time(NULL)))
		check_certificate(ep);
	rc = load_tls(ep);
	if (rc != HERR_OK)
		return rc;
	ep->env.addrs = addrlimit_new();
	if (!ep->env.addrs)
		return HERR_NOMEM;
	rc = broker_new(&(struct broker_limits){
				.max_subscriptions = ep->cfg->lim.max_subscriptions,
				.max_inflight = ep->cfg->lim.max_inflight,
				.max_queued = ep->cfg->lim.max_queued,
				.max_retained = BROKER_MAX_RETAINED,
			}, &conn_broker_sink, ep->dd->store, &ep->env.broker);
	if (rc != HERR_OK)
		return rc;
	rc = ingest_new(ep->dd->store, &ep->ingest);
	if (rc != HERR_OK)
		return rc;
	broker_set_ingest(ep->env.broker, ep->ingest);
	rc = feed_new(ep->dd->store, ep->env.broker, (int64_t)time(NULL), &ep->feed);
	if (rc != HERR_OK)
		return rc;
	ep->env.store = ep->dd->store;
	ep->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ep->epfd < 0)
		return HERR_IO;
	ep->env.epfd = ep->epfd;
	rc = listen_on(ep->cfg->mqtt_addr, &ep->lfd);
	if (rc != HERR_OK)
		return rc;
	ev.data.ptr = &ep->lfd;
	if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->lfd, &ev) != 0)
		return HERR_IO;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	ep->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (ep->sigfd < 0)
		return HERR_IO;
	ev.data.ptr = &ep->sigfd;
	if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->sigfd, &ev) != 0)
		return HERR_IO;
	ep->revocations_since = (int64_t)time(NULL) - 3;
	ep->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ev.data.ptr = &ep->wakefd;
	if (ep->wakefd < 0 || epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->wakefd, &ev) != 0)
		return HERR_IO;
	rc = start_handshake_threads(ep);
	if (rc != HERR_OK)
		return rc;
	rc = start_rest(ep);
	if (rc != HERR_OK)
		return rc;
	rc = ticker_start(ep->dd->path, rest_changed, ep, &ep->ticker);
	if (rc != HERR_OK || !bridge_enabled(&ep->conf->bridge))
		return rc;
	rc = bridge_start(ep->dd->path, &ep->conf->bridge, &ep->bridge);
	if (rc != HERR_OK)
		log_err("bridge: cannot start (%s)", herr_str(rc));
	return rc;
}

/* SIGHUP: the configuration file and environment again (limits change for new checks at once),
 * and the endpoint certificate. */
static void reload(struct endpoint *ep)
{
	char err[CONFIG_ERR_MAX];
	uint32_t changed = 0;

	log_info("SIGHUP: reloading the configuration and the endpoint certificate");
	if (config_reload(ep->conf, ep->dd->path, &changed, err, sizeof(err)) != HERR_OK)
		log_err("configuration not reloaded; nothing changed: %s", err);
	else if (changed != 0)
		broker_set_limits(ep->env.broker, &(struct broker_limits){
					  .max_subscriptions = ep->cfg->lim.max_subscriptions,
					  .max_inflight = ep->cfg->lim.max_inflight,
					  .max_queued = ep->cfg->lim.max_queued,
					  .max_retained = BROKER_MAX_RETAINED,
				  });
	if (ep->pool)
		hs_pool_set_timeout(ep->pool, ep->cfg->lim.handshake_timeout_ms);
	if (ep->ingest)
		ingest_forget(ep->ingest);
	check_certificate(ep);
}

/* 1 when a stop signal arrived. */
static int on_signal(struct endpoint *ep)
{
	struct signalfd_siginfo si;
	int stop = 0;

	while (read(ep->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(ep);
			continue;
		}
		log_info("signal %u: shutting down", si.ssi_signo);
		stop = 1;
	}
	return stop;
}

static void loop(struct endpoint *ep)
{
	struct epoll_event events[MAX_EVENTS];
	uint64_t next_tick = 0, next_poll = 0, next_cert = now_ms() + CERT_CHECK_MS;
	uint64_t next_feed = 0;
	int stop = 0;

	while (!stop) {
		int i, n = wait_events(ep->epfd, events, MAX_EVENTS,
				       ep->env.ready ? 0 : ep->env.batch_open ? commit_wait_us(ep) : TICK_MS * 1000);
		uint64_t now = now_ms();
		struct conn *ready = conn_take_ready(&ep->env), *r, *next;

		if (n < 0 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			break;
		}
		/* First those that used up their read budget last turn (next is saved first: the call
		 * may queue the connection again). */
		for (r = ready; r; r = next) {
			next = conn_ready_next(r);
			conn_on_event(r, EPOLLIN, now);
		}
		for (i = 0; i < n; i++) {
			void *p = events[i].data.ptr;

			if (p == &ep->lfd)
				accept_all(ep, now);
			else if (p == &ep->sigfd)
				stop |= on_signal(ep);
			else if (p == &ep->pool)
				collect_handshakes(ep, now);
			else if (p == &ep->wakefd)
				on_wake(ep);
			else
				conn_on_event(p, events[i].events, now);
		}
		/* The periodic work below runs outside the batch's transaction, so it waits for none. */
		if (!stop && !ep->env.ready && !ep->wake_pending && now < next_tick && now < next_poll &&
		    now < next_cert && now < next_feed &&
		    commit_wait_us(ep) > 0)
			continue;
		commit_batch(ep);
		let_writers_in(ep);
		/* Every message received so far is stored: the bridge may read buckets closed by now. */
		bridge_stored_until(ep->bridge, (int64_t)time(NULL));
		reap(ep);
		if (ep->wake_pending) {
			ep->wake_pending = 0;
			next_poll = 0;
		}
		if (now >= next_tick) {
			struct conn *c;

			for (c = ep->conns; c; c = conn_next(c))
				conn_on_tick(c, now);
			reap(ep);
			snapshot_metrics(ep);
			give_back_memory(ep, now);
			next_tick = now + TICK_MS;
		}
		if (now >= next_poll) {
			poll_revocations(ep);
			deliver_manifests(ep);
			reap(ep);
			next_poll = now + REVOCATION_POLL_MS;
		}
		if (now >= next_cert) {
			check_certificate(ep);
			next_cert = now + CERT_CHECK_MS;
		}
		if (now >= next_feed) {
			/* After this turn's group commit: every message received so far is stored. */
			size_t records = 0;

			if (feed_run(ep->feed, (int64_t)time(NULL), &records) == HERR_OK)
				ep->stats.feed_records += records;
			next_feed = now + FEED_MS;
		}
	}
}

enum herr endpoint_run(struct datadir *dd, struct config *conf)
{
	struct endpoint ep;
	struct conn *c;
	enum herr rc;

	memset(&ep, 0, sizeof(ep));
	ep.dd = dd;
	ep.conf = conf;
	ep.cfg = &conf->ep;
	ep.epfd = ep.lfd = ep.sigfd = ep.wakefd = -1;
	pthread_mutex_init(&ep.snap_lock, NULL);
	ep.env.lim = &conf->ep.lim;
	ep.env.stats = &ep.stats;
	rc = setup(&ep);
	if (rc == HERR_OK)
		loop(&ep);
	rest_stop(ep.rest); /* first: its hooks point into ep */
	ticker_stop(ep.ticker);
	bridge_stop(ep.bridge);
	hs_pool_free(ep.pool);
	commit_batch(&ep);
	for (c = ep.conns; c; c = conn_next(c))
		conn_close(c, "server shutting down");
	reap(&ep);
	if (rc == HERR_OK)
		log_info("stopped: %llu connections accepted, %llu handshakes (%llu resumed), %llu refused in "
			 "the handshake", (unsigned long long)ep.stats.accepted,
			 (unsigned long long)ep.stats.handshakes, (unsigned long long)ep.stats.resumed,
			 (unsigned long long)ep.stats.refused_handshake);
	broker_free(ep.env.broker);
	addrlimit_free(ep.env.addrs); /* after every connection and handshake is gone */
	feed_free(ep.feed);
	ingest_free(ep.ingest);
	tls_server_unref(ep.env.tls);
	if (ep.sigfd >= 0)
		close(ep.sigfd);
	if (ep.wakefd >= 0)
		close(ep.wakefd);
	pthread_mutex_destroy(&ep.snap_lock);
	if (ep.lfd >= 0)
		close(ep.lfd);
	if (ep.epfd >= 0)
		close(ep.epfd);
	return rc;
}
