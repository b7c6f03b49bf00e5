#include "server/ack.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

const char *const ack_statuses[] = { "received", "applied", "rejected", "downloading", "installed", "failed",
				     "rolled_back", NULL };

static const char *const ack_types[] = { "pins", "firmware", "keys", NULL };

static int one_of(const char *s, const char *const *list)
{
	size_t i;

	for (i = 0; list[i]; i++) {
		if (strcmp(s, list[i]) == 0)
			return 1;
	}
	return 0;
}

/* The payload as JSON; NULL with *rc HERR_NOMEM if memory ran out (not the sender's fault). */
static json_t *load(const uint8_t *payload, size_t len, enum herr *rc)
{
	json_error_t err;
	json_t *root = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, &err);

	if (!root && json_error_code(&err) == json_error_out_of_memory)
		*rc = HERR_NOMEM;
	return root;
}

enum herr ack_parse(const uint8_t *payload, size_t len, struct ack *out, const char **why)
{
	json_t *root = NULL, *type, *version, *status;
	enum herr rc = HERR_INVALID;

	memset(out, 0, sizeof(*out));
	*why = "not a JSON object";
	if (len > ACK_MAX_BYTES) {
		*why = "larger than 1 KiB";
		return HERR_INVALID;
	}
	root = load(payload, len, &rc);
	if (!json_is_object(root))
		goto out;
	type = json_object_get(root, "type");
	version = json_object_get(root, "version");
	status = json_object_get(root, "status");
	if (json_object_size(root) != 3 || !type || !version || !status) {
		*why = "needs exactly type, version and status";
		goto out;
	}
	if (!json_is_string(type) || !one_of(json_string_value(type), ack_types)) {
		*why = "type is not pins, firmware or keys";
		goto out;
	}
	if (!json_is_integer(version) || json_integer_value(version) < 1) {
		*why = "version is not an integer >= 1";
		goto out;
	}
	if (!json_is_string(status) || !one_of(json_string_value(status), ack_statuses)) {
		*why = "status is not one hearth knows";
		goto out;
	}
	snprintf(out->type, sizeof(out->type), "%s", json_string_value(type));
	snprintf(out->status, sizeof(out->status), "%s", json_string_value(status));
	out->version = (int64_t)json_integer_value(version);
	*why = NULL;
	rc = HERR_OK;
out:
	json_decref(root);
	return rc;
}

static int version_text(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-") == n;
}

enum herr ack_status_parse(const uint8_t *payload, size_t len, struct ack_status *out, const char **why)
{
	json_t *root, *fw, *sv;
	enum herr rc = HERR_INVALID;

	memset(out, 0, sizeof(*out));
	out->security_version = -1;
	*why = "not a JSON object";
	if (len > ACK_MAX_BYTES) {
		*why = "larger than 1 KiB";
		return HERR_INVALID;
	}
	root = load(payload, len, &rc);
	if (!json_is_object(root))
		goto out;
	fw = json_object_get(root, "firmware");
	sv = json_object_get(root, "security_version");
	if (fw && (!json_is_string(fw) || !version_text(json_string_value(fw)))) {
		*why = "firmware is not a version string";
		goto out;
	}
	if (sv && (!json_is_integer(sv) || json_integer_value(sv) < 0 || json_integer_value(sv) > 2147483647)) {
		*why = "security_version is not an integer 0..2147483647";
		goto out;
	}
	if (fw)
		snprintf(out->firmware, sizeof(out->firmware), "%s", json_string_value(fw));
	if (sv)
		out->security_version = (int64_t)json_integer_value(sv);
	*why = NULL;
	rc = fw || sv ? HERR_OK : HERR_NOTFOUND;
out:
	json_decref(root);
	return rc;
}
