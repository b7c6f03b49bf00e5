/* ticker: background work once a second on its own thread (see ticker.h). */
#include "server/ticker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "server/datadir.h"
#include "server/firmware.h"
#include "server/store.h"

#define PERIOD_S 1
/* Retention deletes this many rows per statement, each its own transaction, so the endpoint's group
 * commits wait for one chunk at most; and this many chunks per tick, so that rollouts are not held
 * up by a large expiry either. */
#define RETENTION_CHUNK 1000
#define RETENTION_CHUNKS_PER_TICK 50

struct ticker {
	struct datadir *dd;
	void (*wake)(void *ctx);
	void *ctx;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;                    /* under lock; retention reads it atomically */
	enum herr last;              /* the last tick's result: a failure is logged once, not every second */
	int64_t retention_hour;      /* the hour of the last expiry (time / 3600); 0 before the first */
	int expiring;                /* an expiry is under way: more chunks next tick */
	int64_t expired;             /* rows it deleted so far */
};

/* Telemetry past its retention goes when the hour changes (buckets close on the hour at the
 * earliest) and once at start, a chunk at a time; then the WAL is emptied, so that no file keeps
 * the partial aggregates of buckets that have closed. */
static void retention(struct ticker *t, int64_t now)
{
	int64_t n = 0;
	int i;

	if (!t->expiring) {
		if (now / 3600 == t->retention_hour)
			return;
		t->retention_hour = now / 3600;
		t->expiring = 1;
		t->expired = 0;
	}
	for (i = 0; i < RETENTION_CHUNKS_PER_TICK && !__atomic_load_n(&t->stop, __ATOMIC_RELAXED); i++) {
		/* In a transaction of its own: store_begin announces the writer, so the endpoint's
		 * back-to-back group commits let it in (store_writers_waiting). */
		enum herr rc = store_begin(t->dd->store);

		if (rc == HERR_OK && (rc = store_telemetry_expire(t->dd->store, now, RETENTION_CHUNK, &n)) == HERR_OK)
			rc = store_commit(t->dd->store);
		if (rc != HERR_OK) {
			store_rollback(t->dd->store);
			log_err("retention: expired telemetry could not be deleted (%s); will retry next hour",
				herr_str(rc));
			t->expiring = 0;
			return;
		}
		t->expired += n;
		if (n < RETENTION_CHUNK)
			break;
	}
	if (n == RETENTION_CHUNK || __atomic_load_n(&t->stop, __ATOMIC_RELAXED))
		return; /* more next tick (stopping: at the next start) */
	t->expiring = 0;
	if (t->expired > 0)
		log_info("retention: %lld telemetry rows past their retention deleted", (long long)t->expired);
	(void)store_checkpoint(t->dd->store);
}

static void tick(struct ticker *t)
{
	int64_t now = (int64_t)time(NULL);
	size_t offers = 0;
	enum herr rc = firmware_rollout_tick(t->dd, now, &offers);

	if (rc != HERR_OK && rc != t->last)
		log_err("rollouts: a tick failed (%s); retrying every second", herr_str(rc));
	else if (rc == HERR_OK && t->last != HERR_OK)
		log_info("rollouts: ticking again");
	t->last = rc;
	if (offers > 0 && t->wake)
		t->wake(t->ctx);
	retention(t, now);
}

static void *run(void *arg)
{
	struct ticker *t = arg;
	struct timespec until;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		pthread_mutex_unlock(&t->lock);
		tick(t);
		pthread_mutex_lock(&t->lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += PERIOD_S;
		while (!t->stop && pthread_cond_timedwait(&t->cond, &t->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

enum herr ticker_start(const char *dir, void (*wake)(void *ctx), void *ctx, struct ticker **out)
{
	struct ticker *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;
	enum herr rc;

	*out = NULL;
	if (!t)
		return HERR_NOMEM;
	rc = datadir_open(dir, &t->dd);
	if (rc != HERR_OK) {
		free(t);
		return rc;
	}
	t->wake = wake;
	t->ctx = ctx;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t->thread, NULL, run, t) != 0) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		datadir_close(t->dd);
		free(t);
		return HERR_NOMEM;
	}
	*out = t;
	return HERR_OK;
}

void ticker_stop(struct ticker *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	__atomic_store_n(&t->stop, 1, __ATOMIC_RELAXED); /* retention reads it between chunks */
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	datadir_close(t->dd);
	free(t);
}
