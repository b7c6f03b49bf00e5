/* acl: which topics a device may touch (DESIGN.md "Topic namespace and ACL"). A device publishes
 * only to hearth/v1/<its id>/{telemetry,ack,status} and subscribes only inside hearth/v1/<its id>/.
 * Pure functions over (id, topic bytes); topics and filters are assumed syntactically valid. */
#ifndef HEARTH_ACL_H
#define HEARTH_ACL_H

#include <stddef.h>
#include <stdint.h>

#define ACL_PREFIX "hearth/v1/"

int acl_may_publish(const char *id, const uint8_t *topic, size_t len);
int acl_may_subscribe(const char *id, const uint8_t *filter, size_t len);

/* If topic is inside some device's subtree, the id's length and start (into topic); else 0. */
size_t acl_topic_device(const uint8_t *topic, size_t len, const uint8_t **id);

#endif
