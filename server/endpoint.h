/* endpoint: the MQTT-over-TLS listener and its event loop (epoll, non-blocking sockets, one
 * thread). It accepts connections, drives them (conn.c), enforces deadlines, closes the live
 * connection of a device revoked from anywhere (it watches the store), and stops cleanly on
 * SIGINT/SIGTERM. */
#ifndef HEARTH_ENDPOINT_H
#define HEARTH_ENDPOINT_H

#include "common/herr.h"
#include "server/conn.h"
#include "server/datadir.h"

#define ENDPOINT_DEFAULT_MQTT "127.0.0.1:8883"

struct endpoint_config {
	const char *mqtt_addr;        /* HOST:PORT; IPv6 as [::1]:8883 */
	struct endpoint_limits lim;
};

void endpoint_default_config(struct endpoint_config *cfg);

struct config;

/* Serve with cfg->ep until SIGINT or SIGTERM (which the caller has blocked). SIGHUP re-reads the
 * configuration (config_reload) and the endpoint certificate. */
enum herr endpoint_run(struct datadir *dd, struct config *cfg);

#endif
