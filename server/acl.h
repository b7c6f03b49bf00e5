/* acl: who may touch which topic (DESIGN.md "Topic namespace and ACL"), by role.
 * - A device publishes only to hearth/v1/<its id>/{telemetry,ack,status} and subscribes only
 *   inside hearth/v1/<its id>/.
 * - An integration client publishes nothing and subscribes only to the minimized telemetry
 *   stream: hearth/v1/+/telemetry or hearth/v1/<a device id>/telemetry.
 * Pure functions over (role, id, topic bytes); topics and filters are assumed syntactically valid. */
#ifndef HEARTH_ACL_H
#define HEARTH_ACL_H

#include <stddef.h>
#include <stdint.h>

#define ACL_PREFIX "hearth/v1/"

enum acl_role { ACL_DEVICE, ACL_INTEGRATION };

/* "device" or "integration" (as the store records them); 0 on success, -1 if unknown. */
int acl_role_parse(const char *name, enum acl_role *role);
const char *acl_role_name(enum acl_role role);

int acl_may_publish(enum acl_role role, const char *id, const uint8_t *topic, size_t len);
int acl_may_subscribe(enum acl_role role, const char *id, const uint8_t *filter, size_t len);

/* If topic is inside some device's subtree, the id's length and start (into topic); else 0. */
size_t acl_topic_device(const uint8_t *topic, size_t len, const uint8_t **id);
/* 1 if topic is hearth/v1/<some id>/<leaf> (leaf: "telemetry", "ack", ...). */
int acl_is_leaf(const uint8_t *topic, size_t len, const char *leaf);
/* acl_is_leaf(topic, len, "telemetry") */
int acl_is_telemetry(const uint8_t *topic, size_t len);

#endif
