#include "server/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

void net_addr_name(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	char host[64], port[16];

	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, size, "?");
	else
		snprintf(buf, size, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

enum herr net_listen(const char *what, const char *spec, int flags, int backlog, int *out, char *shown,
		     size_t shown_size)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const char *colon = strrchr(spec, ':');
	size_t hlen;
	int fd = -1, one = 1, err;

	*out = -1;
	if (!colon || colon == spec || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port)) {
		log_err("%s: '%s' is not HOST:PORT", what, spec);
		return HERR_INVALID;
	}
	hlen = (size_t)(colon - spec);
	if (spec[0] == '[' && hlen >= 2 && spec[hlen - 1] == ']') {
		spec++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		log_err("%s: '%s': host name too long", what, spec);
		return HERR_INVALID;
	}
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	err = getaddrinfo(host, port, &hints, &res);
	if (err != 0) {
		log_err("%s: %s:%s: %s", what, host, port, gai_strerror(err));
		return HERR_INVALID;
	}
	if ((flags & NET_LOOPBACK) && !is_loopback(res->ai_addr)) {
		log_err("%s: %s is not a loopback address", what, host);
		freeaddrinfo(res);
		return HERR_INVALID;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | ((flags & NET_NONBLOCK) ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, backlog) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		log_err("%s: cannot listen on %s:%s: %s", what, host, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return HERR_IO;
	}
	freeaddrinfo(res);
	if (shown)
		net_addr_name((struct sockaddr *)&ss, sl, shown, shown_size);
	*out = fd;
	return HERR_OK;
}
