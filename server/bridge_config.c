/* bridge_config: the bridge's settings, checked before the server starts (see bridge.h). No
 * libmosquitto here, so the configuration code and its fuzz target can use it. */
#include "server/bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"

#define CRED_FILE_MAX 4096

int bridge_enabled(const struct bridge_config *c)
{
	return c->host[0] != '\0';
}

int bridge_port(const struct bridge_config *c)
{
	if (c->port > 0)
		return c->port;
	return c->tls ? 8883 : 1883;
}

unsigned bridge_records_parse(const char *text)
{
	static const struct {
		const char *name;
		unsigned bit;
	} kinds[] = { { "telemetry", BRIDGE_SEND_TELEMETRY }, { "status", BRIDGE_SEND_STATUS } };
	unsigned bits = 0;
	const char *p = text;

	for (;;) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (strlen(kinds[i].name) == n && memcmp(kinds[i].name, p, n) == 0)
				break;
		if (i == sizeof(kinds) / sizeof(kinds[0]) || (bits & kinds[i].bit))
			return 0; /* unknown, or named twice */
		bits |= kinds[i].bit;
		if (p[n] == '\0')
			return bits;
		p += n + 1;
	}
}

/* One line of a password file: [start, end) without its line end; 1..255 bytes, no control
 * characters (a stray byte would otherwise go to the broker as part of the secret). */
static int cred_line(const uint8_t *start, size_t n, char *out)
{
	size_t i;

	if (n > 0 && start[n - 1] == '\r')
		n--;
	if (n == 0 || n >= BRIDGE_CRED_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (start[i] < 0x20 || start[i] == 0x7f)
			return -1;
	memcpy(out, start, n);
	out[n] = '\0';
	return 0;
}

enum herr bridge_parse_credentials(const uint8_t *text, size_t len, char *user, char *pass, char *why,
				   size_t whylen)
{
	const uint8_t *nl, *second, *end;

	user[0] = pass[0] = '\0';
	nl = memchr(text, '\n', len);
	if (!nl)
		return herr_why(why, whylen, HERR_INVALID, "needs two lines: username, then password");
	if (cred_line(text, (size_t)(nl - text), user) != 0)
		return herr_why(why, whylen, HERR_INVALID,
				"line 1: the username must be 1..255 bytes without control characters");
	second = nl + 1;
	end = memchr(second, '\n', len - (size_t)(second - text));
	if (end && (size_t)(end + 1 - text) != len) {
		memset(user, 0, BRIDGE_CRED_MAX);
		return herr_why(why, whylen, HERR_INVALID, "more than two lines");
	}
	if (cred_line(second, (size_t)((end ? end : text + len) - second), pass) != 0) {
		memset(user, 0, BRIDGE_CRED_MAX);
		return herr_why(why, whylen, HERR_INVALID,
				"line 2: the password must be 1..255 bytes without control characters");
	}
	return HERR_OK;
}

/* The file at path (setting key) can be opened for reading. */
static enum herr readable(const char *key, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot read %s (%s)", key, path, strerror(errno));
		return HERR_INVALID;
	}
	close(fd);
	return HERR_OK;
}

/* A secret file: readable, and no one but its owner may read it. */
static enum herr private_file(const char *key, const char *path, uint8_t **data, size_t *len, char *err,
			      size_t errlen)
{
	enum herr rc = fs_read_secret(path, CRED_FILE_MAX, data, len);

	if (rc == HERR_STATE)
		snprintf(err, errlen, "%s: %s may be read by others (chmod 600 it)", key, path);
	else if (rc == HERR_TOOBIG)
		snprintf(err, errlen, "%s: %s is larger than %d bytes", key, path, CRED_FILE_MAX);
	else if (rc != HERR_OK)
		snprintf(err, errlen, "%s: cannot read %s (%s)", key, path, herr_str(rc));
	return rc == HERR_OK ? HERR_OK : HERR_INVALID;
}

enum herr bridge_check(const struct bridge_config *c, char *err, size_t errlen)
{
	char user[BRIDGE_CRED_MAX], pass[BRIDGE_CRED_MAX], why[128];
	uint8_t *data = NULL;
	size_t len = 0;
	enum herr rc;

	if (!bridge_enabled(c))
		return HERR_OK;
	if (!bridge_records_parse(c->records)) {
		snprintf(err, errlen, "bridge_records: '%s' is not telemetry, status or telemetry,status",
			 c->records);
		return HERR_INVALID;
	}
	if (!c->tls && (c->cafile[0] || c->certfile[0] || c->keyfile[0])) {
		snprintf(err, errlen, "%s is set but bridge_tls = no",
			 c->cafile[0] ? "bridge_cafile" : c->certfile[0] ? "bridge_certfile" : "bridge_keyfile");
		return HERR_INVALID;
	}
	if (!c->tls && c->password_file[0]) {
		snprintf(err, errlen, "bridge_password_file is set but bridge_tls = no: the password would "
			 "cross the network in clear");
		return HERR_INVALID;
	}
	if (c->certfile[0] && !c->keyfile[0]) {
		snprintf(err, errlen, "bridge_certfile is set without bridge_keyfile");
		return HERR_INVALID;
	}
	if (c->keyfile[0] && !c->certfile[0]) {
		snprintf(err, errlen, "bridge_keyfile is set without bridge_certfile");
		return HERR_INVALID;
	}
	if (c->cafile[0] && readable("bridge_cafile", c->cafile, err, errlen) != HERR_OK)
		return HERR_INVALID;
	if (c->certfile[0] && readable("bridge_certfile", c->certfile, err, errlen) != HERR_OK)
		return HERR_INVALID;
	if (c->keyfile[0]) {
		rc = private_file("bridge_keyfile", c->keyfile, &data, &len, err, errlen);
		if (data) {
			explicit_bzero(data, len);
			free(data);
		}
		if (rc != HERR_OK)
			return rc;
	}
	if (c->password_file[0]) {
		rc = private_file("bridge_password_file", c->password_file, &data, &len, err, errlen);
		if (rc != HERR_OK)
			return rc;
		rc = bridge_parse_credentials(data, len, user, pass, why, sizeof(why));
		explicit_bzero(data, len);
		free(data);
		explicit_bzero(user, sizeof(user));
		explicit_bzero(pass, sizeof(pass));
		if (rc != HERR_OK) {
			snprintf(err, errlen, "bridge_password_file: %s: %s", c->password_file, why);
			return HERR_INVALID;
		}
	}
	return HERR_OK;
}
