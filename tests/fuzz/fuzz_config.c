/* Fuzz target for server/config's file parser: the input is a hearth.conf. Beyond "no crash": a
 * refused text leaves the config exactly as it was and says where ("fuzz.conf:LINE: ..." or
 * "fuzz.conf: ..."); an accepted one, written back as `key = value` lines, parses again to the same
 * values, and those lines twice over are refused as duplicate keys (unless there are none). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_or_abort(const struct config *a, const struct config *b)
{
	char va[CONFIG_MAX_VALUE], vb[CONFIG_MAX_VALUE];
	int k;

	if (a->ep.mqtt_addr != a->mqtt || b->ep.mqtt_addr != b->mqtt)
		abort();
	for (k = 0; k < CONFIG_COUNT; k++) {
		config_value(a, (enum config_key)k, va, sizeof(va));
		config_value(b, (enum config_key)k, vb, sizeof(vb));
		if (strcmp(va, vb) != 0)
			abort();
	}
	if (memcmp(&a->ep.lim, &b->ep.lim, sizeof(a->ep.lim)) != 0 || a->log_level != b->log_level)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[2 * CONFIG_COUNT * (64 + CONFIG_MAX_VALUE)];
	char err[CONFIG_ERR_MAX], value[CONFIG_MAX_VALUE];
	struct config c, before, again;
	size_t n = 0, set = 0;
	enum herr rc;
	int k;

	config_defaults(&c);
	config_defaults(&before);
	err[0] = '\0';
	rc = config_parse_file_text(&c, "fuzz.conf", (const char *)data, size, err, sizeof(err));
	if (rc != HERR_OK) {
		if ((rc != HERR_INVALID && rc != HERR_TOOBIG) || strncmp(err, "fuzz.conf:", 10) != 0 ||
		    strlen(err) >= sizeof(err) - 1)
			abort();
		same_or_abort(&c, &before);
		for (k = 0; k < CONFIG_COUNT; k++)
			if (c.source[k] != CONFIG_FROM_DEFAULT)
				abort();
		return 0;
	}
	for (k = 0; k < CONFIG_COUNT; k++) {
		if (c.source[k] == CONFIG_FROM_DEFAULT)
			continue;
		if (c.source[k] != CONFIG_FROM_FILE || c.line[k] == 0)
			abort();
		config_value(&c, (enum config_key)k, value, sizeof(value));
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s = %s\n",
				      config_key_name((enum config_key)k), value);
		set++;
	}
	if (n >= sizeof(text) / 2)
		abort();
	config_defaults(&again);
	if (config_parse_file_text(&again, "again.conf", text, n, err, sizeof(err)) != HERR_OK)
		abort();
	same_or_abort(&c, &again);
	/* The text twice in one file: every key set twice, refused unless there was none. */
	memcpy(text + n, text, n);
	config_defaults(&again);
	rc = config_parse_file_text(&again, "again.conf", text, 2 * n, err, sizeof(err));
	if ((rc == HERR_OK) != (set == 0) || (rc != HERR_OK && !strstr(err, ": already set on line ")))
		abort();
	return 0;
}
