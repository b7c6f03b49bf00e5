#include "server/handshake.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "server/store.h"

#define WORKER_TICK_MS 250
/* A worker finishes what it started before it starts more: at most this many of its handshakes
 * past their ClientHello at once (the costly part begins there: a few ms of P-256 each). In a
 * reconnect storm the others wait, unread, in their sockets, in order of arrival, instead of all
 * being started together and all running out of time half done. Waiting costs nothing; the
 * handshake timeout still closes those that wait too long. A client that answers nothing after
 * its ClientHello holds a place until that timeout: the per-address bound (addrlimit.h) keeps
 * one address from holding many. */
#define STARTED_MAX 128
/* Memory goes back after a burst of at least this many handshakes, once the thread is idle; after
 * fewer, once it has been idle this long (the tail of a burst that a lull cut in two). */
#define TRIM_AFTER_HANDSHAKES 256
#define TRIM_IDLE_MS 2000

struct done;

struct job {
	struct job *next, *prev;
	int fd;
	void *tag;
	struct done *done;         /* its result, allocated with it: finishing never fails */
	struct tls_conn *tls;
	uint64_t deadline;
	int started;               /* past its ClientHello: counted in the worker's nstarted */
	int parked;                /* on the worker's waiting queue, its socket not watched */
	struct job *qnext, *qprev; /* that queue */
	char addr[80];
};

struct done {
	struct done *next;
	struct hs_result r;
};

struct worker {
	struct hs_pool *pool;
	pthread_t thread;
	int started;
	int epfd, wakefd;
	pthread_mutex_t lock;      /* guards incoming */
	struct job *incoming;      /* submitted, not yet picked up (LIFO is fine: all are new) */
	struct job *active;        /* owned by the worker thread alone */
	struct job *qhead, *qtail; /* parked: ClientHello waiting for a place (FIFO) */
	size_t nstarted;
	struct tls_server *tls;    /* the worker's own; rebuilt on reload */
	unsigned generation;
	struct store *store;       /* the worker's own handle, for the identity check */
	size_t finished;           /* handshakes ended since memory was last given back */
	uint64_t last_finish;      /* now_ms() when the last one ended */
};

struct hs_pool {
	struct hs_config cfg;
	struct worker *workers;
	unsigned next;
	int donefd;
	pthread_mutex_t lock;      /* guards done, tickets_src */
	struct done *done, *done_tail;
	struct tls_server *tickets_src;
	size_t pending;            /* atomic */
	uint64_t memory_returns;   /* atomic */
	unsigned generation;       /* atomic */
	int stop;                  /* atomic */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void wake(int fd)
{
	uint64_t one = 1;

	(void)!write(fd, &one, sizeof(one));
}

static void drain(int fd)
{
	uint64_t v;

	(void)!read(fd, &v, sizeof(v));
}

static enum herr build_tls(struct hs_pool *p, struct worker *w)
{
	struct tls_server *srv = NULL, *src;
	enum herr rc;

	rc = tls_server_new(p->cfg.chain, p->cfg.key, p->cfg.ca, p->cfg.identity, w->store, &srv);
	if (rc != HERR_OK)
		return rc;
	pthread_mutex_lock(&p->lock);
	src = p->tickets_src;
	if (src)
		tls_server_ref(src);
	pthread_mutex_unlock(&p->lock);
	if (src) {
		tls_server_share_tickets(src, srv);
		tls_server_unref(src);
	}
	tls_server_unref(w->tls);
	w->tls = srv;
	return HERR_OK;
}

/* Wait for a place: the socket is not watched (only a hang-up or error still wakes us). */
static void park(struct worker *w, struct job *j)
{
	struct epoll_event ev = { .events = 0, .data.ptr = j };

	epoll_ctl(w->epfd, EPOLL_CTL_MOD, j->fd, &ev);
	j->parked = 1;
	j->qnext = NULL;
	j->qprev = w->qtail;
	if (w->qtail)
		w->qtail->qnext = j;
	else
		w->qhead = j;
	w->qtail = j;
}

static void unpark(struct worker *w, struct job *j)
{
	if (j->qprev)
		j->qprev->qnext = j->qnext;
	else
		w->qhead = j->qnext;
	if (j->qnext)
		j->qnext->qprev = j->qprev;
	else
		w->qtail = j->qprev;
	j->qnext = j->qprev = NULL;
	j->parked = 0;
}

/* Report a job as done: admitted (tls handed over) or refused (everything closed here). */
static void finish(struct worker *w, struct job *j, const char *error, int timed_out)
{
	struct hs_pool *p = w->pool;
	struct done *d = j->done;

	w->finished++;
	w->last_finish = now_ms();
	if (j->parked)
		unpark(w, j);
	if (j->started)
		w->nstarted--;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, j->fd, NULL);
	if (j->prev)
		j->prev->next = j->next;
	else
		w->active = j->next;
	if (j->next)
		j->next->prev = j->prev;
	/* Copied before anything is freed: error may point into the TLS context. */
	snprintf(d->r.addr, sizeof(d->r.addr), "%s", j->addr);
	snprintf(d->r.error, sizeof(d->r.error), "%s", error ? error : "");
	d->r.timed_out = timed_out;
	if (error) {
		close(j->fd);
		tls_conn_free(j->tls);
		j->fd = -1;
		j->tls = NULL;
	}
	d->r.fd = j->fd;
	d->r.tag = j->tag;
	d->r.tls = j->tls; /* ownership passed */
	pthread_mutex_lock(&p->lock);
	if (p->done_tail)
		p->done_tail->next = d;
	else
		p->done = d;
	p->done_tail = d;
	pthread_mutex_unlock(&p->lock);
	wake(p->donefd);
	free(j);
}

static void step(struct worker *w, struct job *j)
{
	struct epoll_event ev = { .data.ptr = j };
	enum tls_io io;

	if (!j->started && w->nstarted >= STARTED_MAX) {
		if (!j->parked)
			park(w, j);
		return;
	}
	io = tls_conn_handshake(j->tls);
	if (!j->started && tls_conn_hello_done(j->tls)) {
		j->started = 1;
		w->nstarted++;
	}
	if (io == TLS_WANT_READ || io == TLS_WANT_WRITE) {
		ev.events = io == TLS_WANT_READ ? EPOLLIN : EPOLLIN | EPOLLOUT;
		epoll_ctl(w->epfd, EPOLL_CTL_MOD, j->fd, &ev);
		return;
	}
	finish(w, j, io == TLS_OK ? NULL : tls_conn_error(j->tls), 0);
}

/* Take over newly submitted sockets: a TLS context from this worker's server, and a first step
 * (the ClientHello is often already there). */
static void adopt(struct worker *w)
{
	struct job *j, *next;

	pthread_mutex_lock(&w->lock);
	j = w->incoming;
	w->incoming = NULL;
	pthread_mutex_unlock(&w->lock);
	for (; j; j = next) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = j };

		next = j->next;
		j->prev = NULL;
		j->next = w->active;
		if (w->active)
			w->active->prev = j;
		w->active = j;
		if (tls_conn_new(w->tls, j->fd, &j->tls) != HERR_OK ||
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, j->fd, &ev) != 0) {
			finish(w, j, "cannot start the TLS handshake", 0);
			continue;
		}
		tls_conn_set_identity_ctx(j->tls, w->store);
		step(w, j);
	}
}

/* A burst of handshakes is over: the identity checks' page cache and the heap they and the TLS
 * contexts left free go back to the kernel (malloc_trim covers every thread's arena). A storm
 * would otherwise leave the server megabytes bigger for good (docs/performance.md). */
static void give_back_memory(struct worker *w)
{
	store_release_memory(w->store);
	(void)malloc_trim(0);
	w->finished = 0;
	__atomic_add_fetch(&w->pool->memory_returns, 1, __ATOMIC_RELAXED);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct hs_pool *p = w->pool;
	struct epoll_event evs[64];

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		int i, n = epoll_wait(w->epfd, evs, 64, WORKER_TICK_MS);
		unsigned gen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
		uint64_t now;
		struct job *j, *next;

		if (gen != w->generation) {
			if (build_tls(p, w) != HERR_OK)
				log_err("handshake worker: the new endpoint certificate could not be loaded");
			w->generation = gen;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == w) {
				drain(w->wakefd);
				adopt(w);
				continue;
			}
			j = evs[i].data.ptr;
			if (!j->parked)
				step(w, j);
			else if (evs[i].events & (EPOLLHUP | EPOLLERR))
				finish(w, j, "peer closed during the handshake", 0);
		}
		now = now_ms();
		for (j = w->active; j; j = next) {
			next = j->next;
			if (now >= j->deadline)
				finish(w, j, "TLS handshake timed out", 1);
		}
		/* Places freed by finished handshakes go to the longest waiting, in order. */
		while (w->nstarted < STARTED_MAX && (j = w->qhead) != NULL) {
			unpark(w, j);
			step(w, j);
		}
		if (!w->active && w->finished > 0 &&
		    (w->finished >= TRIM_AFTER_HANDSHAKES || now >= w->last_finish + TRIM_IDLE_MS))
			give_back_memory(w);
	}
	return NULL;
}

enum herr hs_pool_new(const struct hs_config *cfg, struct hs_pool **out)
{
	struct hs_pool *p;
	enum herr rc = HERR_OK;
	unsigned i;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return HERR_NOMEM;
	p->cfg = *cfg;
	pthread_mutex_init(&p->lock, NULL);
	p->donefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->workers = calloc(cfg->threads, sizeof(*p->workers));
	if (p->donefd < 0 || !p->workers) {
		hs_pool_free(p);
		return HERR_NOMEM;
	}
	if (cfg->tickets_from) {
		tls_server_ref(cfg->tickets_from);
		p->tickets_src = cfg->tickets_from;
	}
	/* Everything a worker needs is made here, so a bad certificate or database fails start-up. */
	for (i = 0; i < cfg->threads && rc == HERR_OK; i++) {
		struct worker *w = &p->workers[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

		w->pool = p;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		pthread_mutex_init(&w->lock, NULL);
		if (w->epfd < 0 || w->wakefd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) != 0) {
			rc = HERR_IO;
			break;
		}
		rc = store_open_sqlite(cfg->db, &w->store);
		if (rc == HERR_OK)
			rc = build_tls(p, w);
		if (rc == HERR_OK && pthread_create(&w->thread, NULL, worker_main, w) != 0)
			rc = HERR_NOMEM;
		if (rc == HERR_OK)
			w->started = 1;
	}
	if (rc != HERR_OK) {
		log_err("handshake threads could not start: %s", herr_str(rc));
		hs_pool_free(p);
		return rc;
	}
	*out = p;
	return HERR_OK;
}

void hs_pool_free(struct hs_pool *p)
{
	struct done *d, *dn;
	unsigned i;

	if (!p)
		return;
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	for (i = 0; p->workers && i < p->cfg.threads; i++) {
		struct worker *w = &p->workers[i];
		struct job *j, *next;

		if (w->started) {
			wake(w->wakefd);
			pthread_join(w->thread, NULL);
		}
		for (j = w->active; j; j = next) {
			next = j->next;
			close(j->fd);
			tls_conn_free(j->tls);
			free(j->done);
			free(j);
		}
		for (j = w->incoming; j; j = next) {
			next = j->next;
			close(j->fd);
			free(j->done);
			free(j);
		}
		tls_server_unref(w->tls);
		store_close(w->store);
		if (w->epfd >= 0)
			close(w->epfd);
		if (w->wakefd >= 0)
			close(w->wakefd);
		pthread_mutex_destroy(&w->lock);
	}
	for (d = p->done; d; d = dn) {
		dn = d->next;
		if (d->r.fd >= 0)
			close(d->r.fd);
		tls_conn_free(d->r.tls);
		free(d);
	}
	tls_server_unref(p->tickets_src);
	if (p->donefd >= 0)
		close(p->donefd);
	pthread_mutex_destroy(&p->lock);
	free(p->workers);
	free(p);
}

int hs_pool_fd(const struct hs_pool *p)
{
	return p->donefd;
}

enum herr hs_pool_submit(struct hs_pool *p, int fd, const char *addr, void *tag)
{
	struct job *j = calloc(1, sizeof(*j));
	struct worker *w;

	if (j)
		j->done = calloc(1, sizeof(*j->done));
	if (!j || !j->done) {
		free(j);
		close(fd);
		return HERR_NOMEM;
	}
	j->fd = fd;
	j->tag = tag;
	j->deadline = now_ms() + __atomic_load_n(&p->cfg.timeout_ms, __ATOMIC_RELAXED);
	snprintf(j->addr, sizeof(j->addr), "%s", addr);
	/* Round robin: handshakes cost about the same, so this spreads the load evenly. */
	w = &p->workers[p->next++ % p->cfg.threads];
	__atomic_add_fetch(&p->pending, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&w->lock);
	j->next = w->incoming;
	w->incoming = j;
	pthread_mutex_unlock(&w->lock);
	wake(w->wakefd);
	return HERR_OK;
}

size_t hs_pool_collect(struct hs_pool *p, struct hs_result *out, size_t max)
{
	struct done *d;
	size_t n = 0;

	drain(p->donefd);
	pthread_mutex_lock(&p->lock);
	while (n < max && (d = p->done) != NULL) {
		p->done = d->next;
		if (!p->done)
			p->done_tail = NULL;
		out[n++] = d->r;
		free(d);
	}
	if (p->done)
		wake(p->donefd); /* more than max waiting: come back */
	pthread_mutex_unlock(&p->lock);
	__atomic_sub_fetch(&p->pending, n, __ATOMIC_RELAXED);
	return n;
}

uint64_t hs_pool_memory_returns(const struct hs_pool *p)
{
	return __atomic_load_n(&p->memory_returns, __ATOMIC_RELAXED);
}

void hs_pool_set_timeout(struct hs_pool *p, unsigned timeout_ms)
{
	__atomic_store_n(&p->cfg.timeout_ms, timeout_ms, __ATOMIC_RELAXED);
}

size_t hs_pool_pending(const struct hs_pool *p)
{
	return __atomic_load_n(&p->pending, __ATOMIC_RELAXED);
}

void hs_pool_reload(struct hs_pool *p, struct tls_server *tickets_from)
{
	unsigned i;

	pthread_mutex_lock(&p->lock);
	if (tickets_from)
		tls_server_ref(tickets_from);
	tls_server_unref(p->tickets_src);
	p->tickets_src = tickets_from;
	pthread_mutex_unlock(&p->lock);
	__atomic_add_fetch(&p->generation, 1, __ATOMIC_ACQ_REL);
	for (i = 0; i < p->cfg.threads; i++)
		wake(p->workers[i].wakefd);
}
