/* datadir: hearth's data directory, the one place its state lives. It owns the layout (below),
 * creates a new directory with a fresh CA, and opens an existing one.
 *
 *   DIR/            0700
 *     hearth.conf   optional settings (config.h)
 *     hearth.db     the store (SQLite, WAL)
 *     keys/         0700; root.key issuing.key endpoint.key manifest.key, each 0600 PEM
 *     certs/        root.crt issuing.crt endpoint.crt (+ issuing), ca.pem (trust bundle for
 *                   devices: issuing + root), crl.pem
 */
#ifndef HEARTH_DATADIR_H
#define HEARTH_DATADIR_H

#include <limits.h>
#include <stddef.h>

#include "common/herr.h"
#include "server/store.h"

#define DATADIR_DB            "hearth.db"
#define DATADIR_CONFIG        "hearth.conf" /* optional; may be there before init (a container volume) */
#define DATADIR_ROOT_KEY      "keys/root.key"
#define DATADIR_ISSUING_KEY   "keys/issuing.key"
#define DATADIR_ENDPOINT_KEY  "keys/endpoint.key"
#define DATADIR_MANIFEST_KEY  "keys/manifest.key"
#define DATADIR_ROOT_CERT     "certs/root.crt"
#define DATADIR_ISSUING_CERT  "certs/issuing.crt"
#define DATADIR_ENDPOINT_CERT "certs/endpoint.crt"
#define DATADIR_CA_BUNDLE     "certs/ca.pem"
#define DATADIR_CRL           "certs/crl.pem"
/* Written only when `hearth serve` initialised the directory itself (first start in a container):
 * the first admin token, 0600, for the operator to read once and delete. */
#define DATADIR_ADMIN_TOKEN   "admin-token"

#define DATADIR_ROOT_DAYS     (20 * 365)
#define DATADIR_ISSUING_DAYS  (5 * 365)
#define DATADIR_ENDPOINT_DAYS 30

struct datadir {
	char path[PATH_MAX];
	struct store *store;
};

struct datadir_init_opts {
	const char *const *names;  /* endpoint SANs; NULL/0 means "localhost" and 127.0.0.1 */
	size_t name_count;
	unsigned endpoint_days;    /* 0 means DATADIR_ENDPOINT_DAYS */
	const char *actor;         /* who, for the audit log */
};

/* Create and populate dir. If it already holds a hearth database, change nothing and set
 * *created = 0. A non-empty directory without one is refused (nothing is overwritten). */
enum herr datadir_init(const char *dir, const struct datadir_init_opts *opts, int *created);

/* 1 if dir holds a hearth database, 0 if it is missing or empty (may be initialised), -1 if it is
 * something else. */
int datadir_is_initialised(const char *dir);

/* Open an initialised directory: checks its permissions and opens the store. */
enum herr datadir_open(const char *dir, struct datadir **out);
void datadir_close(struct datadir *dd);

/* DIR/rel into buf. */
enum herr datadir_file(const struct datadir *dd, const char *rel, char *buf, size_t size);

#endif
