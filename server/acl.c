#include "server/acl.h"

#include <string.h>

/* Length of "hearth/v1/<id>/" if topic starts with it, else 0. */
static size_t subtree_prefix(const char *id, const uint8_t *topic, size_t len)
{
	size_t plen = strlen(ACL_PREFIX), ilen = strlen(id);

	if (len < plen + ilen + 1 || memcmp(topic, ACL_PREFIX, plen) != 0 ||
	    memcmp(topic + plen, id, ilen) != 0 || topic[plen + ilen] != '/')
		return 0;
	return plen + ilen + 1;
}

int acl_may_publish(const char *id, const uint8_t *topic, size_t len)
{
	static const char *const leaves[] = { "telemetry", "ack", "status" };
	size_t i, p = subtree_prefix(id, topic, len);

	if (p == 0)
		return 0;
	for (i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		if (len - p == strlen(leaves[i]) && memcmp(topic + p, leaves[i], len - p) == 0)
			return 1;
	}
	return 0;
}

int acl_may_subscribe(const char *id, const uint8_t *filter, size_t len)
{
	/* The prefix is compared byte for byte, so a wildcard in the id position ("hearth/v1/+/...")
	 * never equals a real id ([A-Za-z0-9_-]) and is refused; below it anything valid goes. */
	return subtree_prefix(id, filter, len) != 0;
}

size_t acl_topic_device(const uint8_t *topic, size_t len, const uint8_t **id)
{
	size_t plen = strlen(ACL_PREFIX), i;

	*id = NULL;
	if (len <= plen || memcmp(topic, ACL_PREFIX, plen) != 0)
		return 0;
	for (i = plen; i < len && topic[i] != '/'; i++)
		;
	if (i == plen || i == len)
		return 0;
	*id = topic + plen;
	return i - plen;
}
