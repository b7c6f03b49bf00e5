/* Fuzz target for server/ack: any bytes as a device's ack, and as its status. Beyond "no crash": an
 * accepted ack has a known type and status, a version >= 1, and NUL-terminated fields; a refused
 * one says why. An accepted status says a firmware version or a security version in range. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/ack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void status(const uint8_t *data, size_t size)
{
	struct ack_status st;
	const char *why = NULL;
	enum herr rc = ack_status_parse(data, size, &st, &why);

	if (rc == HERR_INVALID && !why)
		abort();
	if (rc != HERR_OK)
		return;
	if (!memchr(st.firmware, '\0', sizeof(st.firmware)) || (!st.firmware[0] && st.security_version < 0) ||
	    st.security_version < -1 || st.security_version > 2147483647)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ack a;
	const char *why = NULL;
	size_t i;
	int known = 0;

	status(data, size);
	if (ack_parse(data, size, &a, &why) != HERR_OK) {
		if (!why)
			abort();
		return 0;
	}
	if (why || a.version < 1 || memchr(a.type, '\0', sizeof(a.type)) == NULL ||
	    memchr(a.status, '\0', sizeof(a.status)) == NULL)
		abort();
	if (strcmp(a.type, "pins") != 0 && strcmp(a.type, "firmware") != 0 && strcmp(a.type, "keys") != 0)
		abort();
	for (i = 0; ack_statuses[i]; i++)
		known |= strcmp(a.status, ack_statuses[i]) == 0;
	if (!known)
		abort();
	return 0;
}
