#include "server/addrlimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"

/* While refusals from an address go on, at most one log line per this long. */
#define LOG_EVERY_MS 60000

struct addrlimit_entry {
	size_t connections;            /* open, handshakes included */
	size_t handshakes;             /* of those, with the handshake not yet ended */
	uint64_t logged_ms;            /* last refusal logged; 0: none yet */
	uint64_t unlogged;             /* refusals since */
	char name[INET6_ADDRSTRLEN + 4];
};

struct addrlimit {
	struct strmap *map;            /* name -> entry */
};

struct addrlimit *addrlimit_new(void)
{
	struct addrlimit *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->map = strmap_new();
	if (!t->map) {
		free(t);
		return NULL;
	}
	return t;
}

static int free_entry(void *ctx, const char *key, void *value)
{
	(void)ctx;
	(void)key;
	free(value);
	return 0;
}

void addrlimit_free(struct addrlimit *t)
{
	if (!t)
		return;
	strmap_each(t->map, free_entry, NULL);
	strmap_free(t->map);
	free(t);
}

/* The address as counted: IPv4 (also when mapped into IPv6), or the IPv6 /64; "?" for a socket
 * address of another family (all of those share one entry). */
static void name_of(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	snprintf(buf, size, "?");
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)size);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
		size_t n;

		if (IN6_IS_ADDR_V4MAPPED(&a)) {
			inet_ntop(AF_INET, &a.s6_addr[12], buf, (socklen_t)size);
			return;
		}
		memset(&a.s6_addr[8], 0, 8);
		if (!inet_ntop(AF_INET6, &a, buf, (socklen_t)size)) {
			snprintf(buf, size, "?");
			return;
		}
		n = strlen(buf);
		snprintf(buf + n, size - n, "/64");
	}
}

enum addrlimit_verdict addrlimit_open(struct addrlimit *t, const struct sockaddr *sa, socklen_t len,
				      size_t max_connections, size_t max_handshakes,
				      struct addrlimit_entry **out)
{
	struct addrlimit_entry *e;
	char name[sizeof(e->name)];

	*out = NULL;
	name_of(sa, len, name, sizeof(name));
	e = strmap_get(t->map, name);
	if (e) {
		*out = e; /* for addrlimit_refused and the log, if it is refused */
		if (max_connections && e->connections >= max_connections)
			return ADDRLIMIT_CONNECTIONS;
		if (max_handshakes && e->handshakes >= max_handshakes)
			return ADDRLIMIT_HANDSHAKES;
	} else {
		e = calloc(1, sizeof(*e));
		if (!e)
			return ADDRLIMIT_NOMEM;
		memcpy(e->name, name, sizeof(name));
		if (strmap_put(t->map, e->name, e, NULL) != HERR_OK) {
			free(e);
			return ADDRLIMIT_NOMEM;
		}
	}
	e->connections++;
	e->handshakes++;
	*out = e;
	return ADDRLIMIT_OK;
}

void addrlimit_handshake_done(struct addrlimit *t, struct addrlimit_entry *e)
{
	(void)t;
	if (e && e->handshakes > 0)
		e->handshakes--;
}

void addrlimit_close(struct addrlimit *t, struct addrlimit_entry *e, int in_handshake)
{
	if (!e)
		return;
	if (in_handshake && e->handshakes > 0)
		e->handshakes--;
	if (e->connections > 0)
		e->connections--;
	if (e->connections == 0) {
		strmap_del(t->map, e->name);
		free(e);
	}
}

const char *addrlimit_name(const struct addrlimit_entry *e)
{
	return e->name;
}

size_t addrlimit_connections(const struct addrlimit_entry *e)
{
	return e->connections;
}

size_t addrlimit_handshakes(const struct addrlimit_entry *e)
{
	return e->handshakes;
}

size_t addrlimit_addresses(const struct addrlimit *t)
{
	return strmap_count(t->map);
}

int addrlimit_refused(struct addrlimit_entry *e, uint64_t now_ms, uint64_t *since)
{
	if (e->logged_ms != 0 && now_ms - e->logged_ms < LOG_EVERY_MS) {
		e->unlogged++;
		return 0;
	}
	*since = e->unlogged;
	e->unlogged = 0;
	e->logged_ms = now_ms ? now_ms : 1;
	return 1;
}
