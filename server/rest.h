/* rest: the administration API of `hearth serve`: HTTPS (libmicrohttpd with GnuTLS, the endpoint's
 * certificate from hearth's CA, TLS 1.2+), JSON in and out (jansson), under /api/v1/ plus /healthz
 * and /metrics. Bearer API tokens with scopes (server/token.h) guard every route but enrollment,
 * the CRL and /healthz. It runs on libmicrohttpd's own thread with its own data-directory handle
 * (its own store connection); what it changes reaches the endpoint through the store and the
 * changed() hook. <microhttpd.h> is included by rest.c only; each resource lives in a rest_*.c. */
#ifndef HEARTH_REST_H
#define HEARTH_REST_H

#include <stddef.h>
#include <stdio.h>

#include "common/herr.h"

#define REST_DEFAULT_ADDR "127.0.0.1:8443"

struct rest;

struct rest_hooks {
	void *ctx;
	/* Something the endpoint caches changed (a policy, a revocation): look again now. Called on
	 * the REST thread; must not block. */
	void (*changed)(void *ctx);
	/* Write the endpoint's metrics (Prometheus text format) into buf; returns the length (less
	 * than size). Called on the REST thread. */
	size_t (*metrics)(void *ctx, char *buf, size_t size);
};

/* Listen on addr (HOST:PORT; port 0 picks a free one, logged). plain: HTTP instead of HTTPS,
 * refused unless the host is a loopback address. */
enum herr rest_start(const char *data_dir, const char *addr, int plain, const struct rest_hooks *hooks,
		     struct rest **out);
void rest_stop(struct rest *r);

/* "METHOD PATTERN SCOPE" per route, one a line (`hearth api routes`; docs/openapi.yaml must agree). */
void rest_print_routes(FILE *out);

/* The endpoint certificate file changed (renewal): new connections get the new one. */
enum herr rest_reload(struct rest *r);

#endif
