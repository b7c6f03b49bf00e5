#include "device/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "ota/dsse.h"

#define HEADER "hearth-agent-trust 1"
#define LINE_MAX_BYTES 512

/* --- values ------------------------------------------------------------------------------------ */

static int valid_chars(const char *s, size_t max, int empty_ok, const char *extra)
{
	size_t i, n = strlen(s);

	if (n > max || (n == 0 && !empty_ok))
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || (c != '\0' && strchr(extra, c))))
			return 0;
	}
	return 1;
}

static int valid_id(const char *s, int empty_ok)
{
	return valid_chars(s, CORE_ID_MAX, empty_ok, "");
}

static int valid_version_text(const char *s)
{
	return valid_chars(s, CORE_ID_MAX, 1, ".+");
}

/* Decimal, 1..18 digits, no sign, no leading zero: always fits an int64_t. */
static int parse_number(const char *s, int64_t *out)
{
	size_t i, n = strlen(s);
	int64_t v = 0;

	if (n == 0 || n > 18 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* A PEM SubjectPublicKeyInfo from its DER (64-character lines), for core_add_key. */
static enum herr spki_pem(const uint8_t *der, size_t len, char **pem, size_t *pem_len)
{
	static const char head[] = "-----BEGIN PUBLIC KEY-----\n", tail[] = "-----END PUBLIC KEY-----\n";
	char *b64 = NULL, *out;
	size_t b64_len = 0, i, o = 0, cap;
	enum herr rc;

	rc = dsse_b64_encode(der, len, &b64, &b64_len);
	if (rc != HERR_OK)
		return rc;
	cap = sizeof(head) + b64_len + b64_len / 64 + 2 + sizeof(tail);
	out = malloc(cap);
	if (!out) {
		free(b64);
		return HERR_NOMEM;
	}
	memcpy(out, head, sizeof(head) - 1);
	o = sizeof(head) - 1;
	for (i = 0; i < b64_len; i += 64) {
		size_t n = b64_len - i < 64 ? b64_len - i : 64;

		memcpy(out + o, b64 + i, n);
		o += n;
		out[o++] = '\n';
	}
	memcpy(out + o, tail, sizeof(tail));
	o += sizeof(tail) - 1;
	free(b64);
	*pem = out;
	*pem_len = o;
	return HERR_OK;
}

/* --- format ------------------------------------------------------------------------------------ */

struct text {
	char *p;
	size_t len, cap;
	int overflow;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->cap - t->len) {
		t->overflow = 1;
		return;
	}
	t->len += (size_t)n;
}

static void put_text(struct text *t, const char *name, const char *value)
{
	if (value[0])
		put(t, "%s %s\n", name, value);
	else
		put(t, "%s\n", name);
}

enum herr state_format(const struct core_trust *t, char **text, size_t *len)
{
	struct text out = { 0 };
	size_t i;

	*text = NULL;
	*len = 0;
	if (!valid_id(t->device_id, 0) || !valid_id(t->model, 1) || !valid_version_text(t->firmware_version) ||
	    t->key_count < 1 || t->key_count > CORE_KEYS_MAX || t->pin_count < 1 || t->pin_count > CORE_PINS_MAX ||
	    t->threshold < 1 || t->threshold > t->key_count || t->pins_version < 0 || t->keys_version < 0 ||
	    t->firmware_version_seen < 0 || t->security_version < 0)
		return HERR_INVALID;
	/* What state_parse would refuse is never written. */
	for (i = 0; i < t->pin_count; i++) {
		size_t j;

		if (!core_pin_valid(t->pins[i]))
			return HERR_INVALID;
		for (j = 0; j < i; j++)
			if (strcmp(t->pins[i], t->pins[j]) == 0)
				return HERR_INVALID;
	}
	for (i = 0; i < t->key_count; i++) {
		size_t j;

		for (j = 0; j < i; j++)
			if (t->keys[i].spki_len == t->keys[j].spki_len &&
			    memcmp(t->keys[i].spki, t->keys[j].spki, t->keys[i].spki_len) == 0)
				return HERR_INVALID;
	}
	out.cap = STATE_TRUST_MAX;
	out.p = malloc(out.cap);
	if (!out.p)
		return HERR_NOMEM;
	put(&out, "%s\n", HEADER);
	put_text(&out, "id", t->device_id);
	put_text(&out, "model", t->model);
	put(&out, "threshold %u\n", t->threshold);
	for (i = 0; i < t->key_count; i++) {
		char *b64 = NULL;
		size_t b64_len = 0;

		if (t->keys[i].spki_len == 0 || t->keys[i].spki_len > DSSE_SPKI_MAX ||
		    dsse_b64_encode(t->keys[i].spki, t->keys[i].spki_len, &b64, &b64_len) != HERR_OK) {
			free(out.p);
			return HERR_INVALID;
		}
		put(&out, "key %s\n", b64);
		free(b64);
	}
	for (i = 0; i < t->pin_count; i++)
		put(&out, "pin %s\n", t->pins[i]);
	put(&out, "pins_version %lld\n", (long long)t->pins_version);
	put(&out, "keys_version %lld\n", (long long)t->keys_version);
	put(&out, "firmware_version_seen %lld\n", (long long)t->firmware_version_seen);
	put_text(&out, "firmware_version", t->firmware_version);
	put(&out, "security_version %lld\n", (long long)t->security_version);
	if (out.overflow) {
		free(out.p);
		return HERR_TOOBIG;
	}
	*text = out.p;
	*len = out.len;
	return HERR_OK;
}

/* --- parse ------------------------------------------------------------------------------------- */

enum field {
	F_ID, F_MODEL, F_THRESHOLD, F_PINS_VERSION, F_KEYS_VERSION, F_FW_SEEN, F_FW_VERSION, F_SECURITY,
	F_COUNT
};

static const char *const field_names[F_COUNT] = {
	"id", "model", "threshold", "pins_version", "keys_version", "firmware_version_seen",
	"firmware_version", "security_version",
};

static enum herr add_key_line(struct core_trust *t, const char *value, char *why, size_t why_size)
{
	uint8_t *der = NULL;
	char *pem = NULL;
	size_t der_len = 0, pem_len = 0, i;
	enum herr rc;

	if (t->key_count >= CORE_KEYS_MAX) {
		snprintf(why, why_size, "more than %d keys", CORE_KEYS_MAX);
		return HERR_INVALID;
	}
	rc = dsse_b64_decode(value, strlen(value), &der, &der_len);
	if (rc != HERR_OK || der_len == 0 || der_len > DSSE_SPKI_MAX) {
		snprintf(why, why_size, "a key is not base64 of a DER P-256 public key");
		free(der);
		return HERR_INVALID;
	}
	for (i = 0; i < t->key_count; i++) {
		if (t->keys[i].spki_len == der_len && memcmp(t->keys[i].spki, der, der_len) == 0) {
			snprintf(why, why_size, "a key is listed twice");
			free(der);
			return HERR_INVALID;
		}
	}
	rc = spki_pem(der, der_len, &pem, &pem_len);
	free(der);
	if (rc != HERR_OK)
		return rc;
	rc = core_add_key(t, pem, pem_len, NULL);
	free(pem);
	if (rc != HERR_OK) {
		snprintf(why, why_size, "a key is not a P-256 public key");
		return HERR_INVALID;
	}
	return HERR_OK;
}

static enum herr add_pin_line(struct core_trust *t, const char *value, char *why, size_t why_size)
{
	size_t i;

	if (t->pin_count >= CORE_PINS_MAX) {
		snprintf(why, why_size, "more than %d pins", CORE_PINS_MAX);
		return HERR_INVALID;
	}
	if (!core_pin_valid(value)) {
		snprintf(why, why_size, "a malformed pin");
		return HERR_INVALID;
	}
	for (i = 0; i < t->pin_count; i++) {
		if (strcmp(t->pins[i], value) == 0) {
			snprintf(why, why_size, "a pin is listed twice");
			return HERR_INVALID;
		}
	}
	snprintf(t->pins[t->pin_count++], CORE_PIN_LEN, "%s", value);
	return HERR_OK;
}

static enum herr set_field(struct core_trust *t, enum field f, const char *value, char *why, size_t why_size)
{
	int64_t n = 0;

	switch (f) {
	case F_ID:
		if (!valid_id(value, 0))
			goto bad;
		snprintf(t->device_id, sizeof(t->device_id), "%s", value);
		return HERR_OK;
	case F_MODEL:
		if (!valid_id(value, 1))
			goto bad;
		snprintf(t->model, sizeof(t->model), "%s", value);
		return HERR_OK;
	case F_FW_VERSION:
		if (!valid_version_text(value))
			goto bad;
		snprintf(t->firmware_version, sizeof(t->firmware_version), "%s", value);
		return HERR_OK;
	default:
		break;
	}
	if (parse_number(value, &n) != 0)
		goto bad;
	switch (f) {
	case F_THRESHOLD:
		if (n < 1 || n > CORE_KEYS_MAX)
			goto bad;
		t->threshold = (unsigned)n;
		break;
	case F_PINS_VERSION:
		t->pins_version = n;
		break;
	case F_KEYS_VERSION:
		t->keys_version = n;
		break;
	case F_FW_SEEN:
		t->firmware_version_seen = n;
		break;
	case F_SECURITY:
		t->security_version = n;
		break;
	default:
		goto bad;
	}
	return HERR_OK;
bad:
	snprintf(why, why_size, "bad value for '%s'", field_names[f]);
	return HERR_INVALID;
}

static enum herr parse_line(struct core_trust *t, const char *line, int seen[F_COUNT], char *why, size_t why_size)
{
	char name[32];
	const char *sp = strchr(line, ' '), *value;
	size_t name_len;
	int f;

	if (sp) {
		name_len = (size_t)(sp - line);
		value = sp + 1;
		if (value[0] == '\0') {
			snprintf(why, why_size, "a line ends with a space");
			return HERR_INVALID;
		}
	} else {
		name_len = strlen(line);
		value = "";
	}
	if (name_len == 0 || name_len >= sizeof(name)) {
		snprintf(why, why_size, "a malformed line");
		return HERR_INVALID;
	}
	memcpy(name, line, name_len);
	name[name_len] = '\0';
	if (strcmp(name, "key") == 0)
		return add_key_line(t, value, why, why_size);
	if (strcmp(name, "pin") == 0)
		return add_pin_line(t, value, why, why_size);
	for (f = 0; f < F_COUNT; f++)
		if (strcmp(name, field_names[f]) == 0)
			break;
	if (f == F_COUNT) {
		snprintf(why, why_size, "unknown line '%.31s'", name);
		return HERR_INVALID;
	}
	if (seen[f]) {
		snprintf(why, why_size, "'%s' appears twice", name);
		return HERR_INVALID;
	}
	seen[f] = 1;
	return set_field(t, (enum field)f, value, why, why_size);
}

enum herr state_parse(const uint8_t *text, size_t len, struct core_trust *t, char *why, size_t why_size)
{
	int seen[F_COUNT] = { 0 };
	char line[LINE_MAX_BYTES], reason[160] = "";
	size_t pos = 0, lineno = 0;
	enum herr rc = HERR_INVALID;
	int f;

	memset(t, 0, sizeof(*t));
	if (len > STATE_TRUST_MAX) {
		snprintf(why, why_size, "longer than %d bytes", STATE_TRUST_MAX);
		return HERR_INVALID;
	}
	if (len == 0 || text[len - 1] != '\n') {
		snprintf(why, why_size, "empty or not ending with a newline");
		return HERR_INVALID;
	}
	while (pos < len) {
		const uint8_t *nl = memchr(text + pos, '\n', len - pos);
		size_t n = (size_t)(nl - (text + pos)), i;

		lineno++;
		if (n == 0 || n >= sizeof(line)) {
			snprintf(why, why_size, "line %zu: empty or too long", lineno);
			goto fail;
		}
		for (i = 0; i < n; i++) {
			if (text[pos + i] < 0x20 || text[pos + i] > 0x7e) {
				snprintf(why, why_size, "line %zu: a control or non-ASCII byte", lineno);
				goto fail;
			}
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if (lineno == 1) {
			if (strcmp(line, HEADER) != 0) {
				snprintf(why, why_size, "not a trust file (expected '%s' first)", HEADER);
				goto fail;
			}
			continue;
		}
		if (parse_line(t, line, seen, reason, sizeof(reason)) != HERR_OK) {
			snprintf(why, why_size, "line %zu: %s", lineno, reason);
			goto fail;
		}
	}
	for (f = 0; f < F_COUNT; f++) {
		if (!seen[f]) {
			snprintf(why, why_size, "'%s' is missing", field_names[f]);
			goto fail;
		}
	}
	if (t->key_count < 1 || t->pin_count < 1) {
		snprintf(why, why_size, "at least one key and one pin are needed");
		goto fail;
	}
	if (t->threshold > t->key_count) {
		snprintf(why, why_size, "threshold %u is above the %zu keys", t->threshold, t->key_count);
		goto fail;
	}
	return HERR_OK;
fail:
	memset(t, 0, sizeof(*t));
	return rc;
}

/* --- files ------------------------------------------------------------------------------------- */

enum herr state_path(char *buf, size_t size, const char *dir, const char *name)
{
	return fs_path(buf, size, "%s/%s", dir, name);
}

enum herr state_read(const char *dir, const char *name, size_t max, uint8_t **data, size_t *len)
{
	char path[STATE_PATH_MAX];

	*data = NULL;
	*len = 0;
	if (state_path(path, sizeof(path), dir, name) != HERR_OK)
		return HERR_TOOBIG;
	return fs_read_file(path, max, data, len);
}

enum herr state_write(const char *dir, const char *name, const void *data, size_t len, unsigned mode)
{
	char path[STATE_PATH_MAX];

	if (state_path(path, sizeof(path), dir, name) != HERR_OK)
		return HERR_TOOBIG;
	return fs_write_file(path, data, len, mode, 0);
}

enum herr state_remove(const char *dir, const char *name)
{
	char path[STATE_PATH_MAX];

	if (state_path(path, sizeof(path), dir, name) != HERR_OK)
		return HERR_TOOBIG;
	if (unlink(path) != 0 && errno != ENOENT) {
		log_err("%s: %s", path, strerror(errno));
		return HERR_IO;
	}
	return HERR_OK;
}

enum herr state_load(const char *dir, struct core_trust *t, char *why, size_t why_size)
{
	uint8_t *text = NULL;
	size_t len = 0;
	enum herr rc;

	memset(t, 0, sizeof(*t));
	rc = state_read(dir, STATE_TRUST, STATE_TRUST_MAX, &text, &len);
	if (rc == HERR_TOOBIG)
		snprintf(why, why_size, "%s/%s is longer than %d bytes", dir, STATE_TRUST, STATE_TRUST_MAX);
	else if (rc == HERR_NOTFOUND)
		snprintf(why, why_size, "%s/%s does not exist (not enrolled?)", dir, STATE_TRUST);
	else if (rc != HERR_OK)
		snprintf(why, why_size, "cannot read %s/%s: %s", dir, STATE_TRUST, herr_str(rc));
	if (rc != HERR_OK)
		return rc;
	rc = state_parse(text, len, t, why, why_size);
	free(text);
	return rc;
}

enum herr state_save(const char *dir, const struct core_trust *t)
{
	char *text = NULL;
	size_t len = 0;
	enum herr rc;

	rc = state_format(t, &text, &len);
	if (rc != HERR_OK) {
		log_err("trust not saved: %s", herr_str(rc));
		return rc;
	}
	rc = state_write(dir, STATE_TRUST, text, len, 0600);
	free(text);
	return rc;
}
