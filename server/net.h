/* net: listening sockets from "HOST:PORT" specs ("[::1]:8883" for IPv6, port 0 for any free one),
 * shared by the MQTT endpoint and the REST API, and numeric names of addresses for the log. */
#ifndef HEARTH_NET_H
#define HEARTH_NET_H

#include <stddef.h>
#include <sys/socket.h>

#include "common/herr.h"

#define NET_NONBLOCK 1     /* the socket is non-blocking (the endpoint's epoll loop) */
#define NET_LOOPBACK 2     /* refuse (HERR_INVALID) unless the address is a loopback one */

/* Bind and listen on spec; *out is the socket. shown (may be NULL) gets the address as bound,
 * "127.0.0.1:43127" or "[::1]:8883". Errors are logged, naming what (e.g. "api"). */
enum herr net_listen(const char *what, const char *spec, int flags, int backlog, int *out, char *shown,
		     size_t shown_size);

/* "host:port" ("[host]:port" for IPv6) of a socket address, numeric; "?" if it has none. */
void net_addr_name(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

#endif
