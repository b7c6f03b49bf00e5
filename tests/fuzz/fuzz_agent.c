/* Fuzz target for what the reference device reads besides manifests (device/core.c has its own
 * target): the first byte picks the parser, the rest is its input.
 *   0: an HTTPS answer's head (device/https.h https_parse_head): an accepted one has a status
 *      200..599 and NUL-terminated bounded fields.
 *   1: the trust file (device/state.h state_parse): an accepted one formats back into text that
 *      parses to the same trust (the file round-trips), and a refused one leaves *t zeroed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device/https.h"
#include "device/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void head(const uint8_t *data, size_t size)
{
	struct https_response r;
	char why[128];

	memset(&r, 0, sizeof(r));
	if (https_parse_head((const char *)data, size, &r, why, sizeof(why)) != HERR_OK) {
		if (!memchr(why, '\0', sizeof(why)))
			abort();
		return;
	}
	if (r.status < 200 || r.status > 599 || !memchr(r.content_type, '\0', sizeof(r.content_type)) ||
	    !memchr(r.content_range, '\0', sizeof(r.content_range)) || r.body)
		abort();
}

static void trust(const uint8_t *data, size_t size)
{
	static const struct core_trust zero;
	struct core_trust t, again;
	char why[128], *text = NULL;
	size_t len = 0;

	if (state_parse(data, size, &t, why, sizeof(why)) != HERR_OK) {
		if (memcmp(&t, &zero, sizeof(t)) != 0)
			abort();
		return;
	}
	if (state_format(&t, &text, &len) != HERR_OK)
		abort();
	if (state_parse((const uint8_t *)text, len, &again, why, sizeof(why)) != HERR_OK ||
	    memcmp(&t, &again, sizeof(t)) != 0)
		abort();
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		head(data + 1, size - 1);
	else
		trust(data + 1, size - 1);
	return 0;
}
