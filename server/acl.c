#include "server/acl.h"

#include <string.h>

static const char *const role_names[] = { [ACL_DEVICE] = "device", [ACL_INTEGRATION] = "integration" };

int acl_role_parse(const char *name, enum acl_role *role)
{
	size_t i;

	for (i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
		if (strcmp(name, role_names[i]) == 0) {
			*role = (enum acl_role)i;
			return 0;
		}
	}
	return -1;
}

const char *acl_role_name(enum acl_role role)
{
	return (size_t)role < sizeof(role_names) / sizeof(role_names[0]) ? role_names[role] : "?";
}

/* Length of "hearth/v1/<id>/" if topic starts with it, else 0. */
static size_t subtree_prefix(const char *id, const uint8_t *topic, size_t len)
{
	size_t plen = strlen(ACL_PREFIX), ilen = strlen(id);

	if (len < plen + ilen + 1 || memcmp(topic, ACL_PREFIX, plen) != 0 ||
	    memcmp(topic + plen, id, ilen) != 0 || topic[plen + ilen] != '/')
		return 0;
	return plen + ilen + 1;
}

static int is_leaf(const uint8_t *p, size_t len, const char *leaf)
{
	return len == strlen(leaf) && memcmp(p, leaf, len) == 0;
}

int acl_may_publish(enum acl_role role, const char *id, const uint8_t *topic, size_t len)
{
	static const char *const leaves[] = { "telemetry", "ack", "status" };
	size_t i, p;

	if (role != ACL_DEVICE)
		return 0; /* integrations only read */
	p = subtree_prefix(id, topic, len);
	if (p == 0)
		return 0;
	for (i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		if (is_leaf(topic + p, len - p, leaves[i]))
			return 1;
	}
	return 0;
}

static int id_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-';
}

int acl_is_leaf(const uint8_t *topic, size_t len, const char *leaf)
{
	const uint8_t *id;
	size_t n = acl_topic_device(topic, len, &id), plen = strlen(ACL_PREFIX);

	return n != 0 && is_leaf(topic + plen + n + 1, len - plen - n - 1, leaf);
}

int acl_is_telemetry(const uint8_t *topic, size_t len)
{
	return acl_is_leaf(topic, len, "telemetry");
}

int acl_may_subscribe(enum acl_role role, const char *id, const uint8_t *filter, size_t len)
{
	const uint8_t *fid;
	size_t n, i;

	/* Devices: the prefix is compared byte for byte, so a wildcard in the id position
	 * ("hearth/v1/+/...") never equals a real id ([A-Za-z0-9_-]) and is refused; below it
	 * anything valid goes. */
	if (role == ACL_DEVICE)
		return subtree_prefix(id, filter, len) != 0;
	if (role != ACL_INTEGRATION || !acl_is_telemetry(filter, len))
		return 0;
	n = acl_topic_device(filter, len, &fid);
	if (n == 1 && fid[0] == '+')
		return 1;
	if (n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		if (!id_char(fid[i]))
			return 0;
	}
	return 1;
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
