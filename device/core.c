/* core: the reference device's trust decisions (see core.h). The envelope is verified by ota/dsse
 * before a byte of the body is parsed; the body is read with device/json, and *next is built in a
 * copy that reaches the caller only when every check passed. */
#include "device/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include "device/json.h"

#define BODY_TOKENS 256         /* values in a manifest body (a keys manifest of 4 keys needs ~30) */
#define PEM_MAX 1024            /* a P-256 public key is ~180 bytes of PEM */
#define PEM_BEGIN "-----BEGIN PUBLIC KEY-----"
#define PEM_END "-----END PUBLIC KEY-----"
#define PIN_PREFIX "sha256/"
#define PIN_PREFIX_LEN (sizeof(PIN_PREFIX) - 1)
#define PIN_B64_LEN 44          /* base64 of 32 bytes, with its one '=' */
#define URL_PREFIX "/api/v1/device/firmware/"
#define WHY_INNER 160           /* what dsse_verify said, quoted in our why */

/* One manifest being checked: where its answers go. */
struct check {
	const struct core_trust *t;
	struct djson_doc doc;
	char *why;
	size_t why_size;
};

/* --- keys and pins ---------------------------------------------------------------------------- */

/* Whether der is a P-256 SubjectPublicKeyInfo in exactly the DER mbedTLS (and openssl) write for it,
 * which is the one form dsse_verify accepts and the one a keyid names. */
static int p256_spki_ok(const uint8_t *der, size_t len)
{
	uint8_t out[DSSE_SPKI_MAX];
	mbedtls_pk_context pk;
	int n, ok = 0;

	if (!der || len == 0 || len > DSSE_SPKI_MAX)
		return 0;
	mbedtls_pk_init(&pk);
	if (mbedtls_pk_parse_public_key(&pk, der, len) != 0 || mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_pk_ec(pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1)
		goto out;
	/* mbedtls_pk_write_pubkey_der writes at the end of the buffer. */
	n = mbedtls_pk_write_pubkey_der(&pk, out, sizeof(out));
	ok = n > 0 && (size_t)n == len && memcmp(out + sizeof(out) - len, der, len) == 0;
out:
	mbedtls_pk_free(&pk);
	return ok;
}

void core_pin_of(const uint8_t *spki, size_t len, char pin[CORE_PIN_LEN])
{
	uint8_t hash[32];
	char *b64 = NULL;
	size_t n = 0;

	pin[0] = '\0'; /* matches no pin */
	if (!spki || len == 0 || mbedtls_sha256_ret(spki, len, hash, 0) != 0)
		return;
	if (dsse_b64_encode(hash, sizeof(hash), &b64, &n) == HERR_OK && n == PIN_B64_LEN)
		snprintf(pin, CORE_PIN_LEN, PIN_PREFIX "%s", b64);
	free(b64);
}

static int b64_char(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int core_pin_valid(const char *text)
{
	size_t i;
	int v = 0;

	if (!text || strnlen(text, CORE_PIN_LEN) != CORE_PIN_LEN - 1 ||
	    memcmp(text, PIN_PREFIX, PIN_PREFIX_LEN) != 0 || text[CORE_PIN_LEN - 2] != '=')
		return 0;
	for (i = PIN_PREFIX_LEN; i < CORE_PIN_LEN - 2; i++) {
		v = b64_char(text[i]);
		if (v < 0)
			return 0;
	}
	/* 32 bytes leave the last character 2 bits of padding: zero in the one canonical encoding, so
	 * equal keys have equal pins as strings. */
	return (v & 3) == 0;
}

int core_pin_ok(const struct core_trust *t, const uint8_t *spki, size_t len)
{
	char pin[CORE_PIN_LEN];
	size_t i;

	if (!t || t->pin_count == 0 || t->pin_count > CORE_PINS_MAX)
		return 0;
	core_pin_of(spki, len, pin);
	if (pin[0] == '\0')
		return 0;
	for (i = 0; i < t->pin_count; i++)
		if (core_pin_valid(t->pins[i]) && strcmp(t->pins[i], pin) == 0)
			return 1;
	return 0;
}

/* Only whitespace in s[0..len). */
static int all_space(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return 0;
	return 1;
}

enum herr core_add_key(struct core_trust *t, const char *pem, size_t len, char keyid[DSSE_KEYID_LEN])
{
	mbedtls_pem_context ctx;
	char text[PEM_MAX + 1];
	struct dsse_key *k;
	const uint8_t *der;
	size_t used = 0, der_len, i;
	enum herr rc = HERR_INVALID;

	if (keyid)
		keyid[0] = '\0';
	if (!t || !pem)
		return HERR_INVALID;
	if (t->key_count >= CORE_KEYS_MAX)
		return HERR_TOOBIG;
	if (len > 0 && pem[len - 1] == '\0')
		len--; /* a C string with its NUL counted is fine */
	if (len < sizeof(PEM_BEGIN) - 1 || len > PEM_MAX || memchr(pem, '\0', len) ||
	    memcmp(pem, PEM_BEGIN, sizeof(PEM_BEGIN) - 1) != 0)
		return HERR_INVALID;
	memcpy(text, pem, len);
	text[len] = '\0';
	mbedtls_pem_init(&ctx);
	/* One PUBLIC KEY block and nothing but whitespace after it. */
	if (mbedtls_pem_read_buffer(&ctx, PEM_BEGIN, PEM_END, (const unsigned char *)text, NULL, 0, &used) != 0 ||
	    used > len || !all_space(text + used, len - used))
		goto out;
	der = ctx.buf;
	der_len = ctx.buflen;
	if (!p256_spki_ok(der, der_len))
		goto out;
	for (i = 0; i < t->key_count; i++) {
		if (t->keys[i].spki_len == der_len && memcmp(t->keys[i].spki, der, der_len) == 0) {
			rc = HERR_EXISTS;
			goto out;
		}
	}
	k = &t->keys[t->key_count++];
	memset(k, 0, sizeof(*k));
	memcpy(k->spki, der, der_len);
	k->spki_len = der_len;
	if (keyid)
		dsse_keyid(k->spki, k->spki_len, keyid);
	rc = HERR_OK;
out:
	mbedtls_pem_free(&ctx);
	return rc;
}

/* --- the envelope ----------------------------------------------------------------------------- */

static enum herr trust_ok(const struct core_trust *t, char *why, size_t why_size)
{
	size_t i;

	if (t->key_count == 0 || t->key_count > CORE_KEYS_MAX)
		return herr_why(why, why_size, HERR_INVALID, "the device trusts %zu manifest keys (1..%d)",
			      t->key_count, CORE_KEYS_MAX);
	if (t->threshold > t->key_count)
		return herr_why(why, why_size, HERR_INVALID, "the device's threshold %u is above its %zu keys",
			      t->threshold, t->key_count);
	for (i = 0; i < t->key_count; i++)
		if (!p256_spki_ok(t->keys[i].spki, t->keys[i].spki_len))
			return herr_why(why, why_size, HERR_INVALID, "trusted key %zu is not a P-256 key", i);
	return HERR_OK;
}

/* dsse_verify refused envelope with inner: say whether it was malformed (HERR_INVALID), signed by too
 * few trusted keys or badly signed (HERR_CRYPTO). dsse_verify's answer is the verdict; this only
 * names it, from a parse of the envelope's shape and the keyids its signatures claim. */
static enum herr explain(const struct core_trust *t, size_t threshold, const uint8_t *env, size_t len,
			 struct djson_token *tok, const char *inner, char *why, size_t why_size)
{
	char keyid[DSSE_KEYID_LEN], trusted[CORE_KEYS_MAX][DSSE_KEYID_LEN];
	size_t type, sigs, sig, id, x, i, named = 0;
	unsigned seen = 0;
	struct djson_iter it;
	struct djson_doc d;

	if (djson_parse(env, len, tok, BODY_TOKENS, &d, NULL, 0) != HERR_OK || d.tok[0].type != DJSON_OBJECT ||
	    d.tok[0].size != 3 || djson_find(&d, 0, "payloadType", &type) != HERR_OK ||
	    djson_find(&d, 0, "payload", &x) != HERR_OK || djson_find(&d, 0, "signatures", &sigs) != HERR_OK ||
	    d.tok[sigs].type != DJSON_ARRAY)
		return herr_why(why, why_size, HERR_INVALID, "malformed envelope: %s", inner);
	if (!djson_string_is(&d, type, DSSE_PAYLOAD_TYPE))
		return herr_why(why, why_size, HERR_INVALID, "wrong payloadType: %s", inner);
	for (i = 0; i < t->key_count; i++)
		dsse_keyid(t->keys[i].spki, t->keys[i].spki_len, trusted[i]);
	djson_iter_init(&d, sigs, &it);
	while (djson_iter_next(&d, &it, &sig)) {
		if (d.tok[sig].type != DJSON_OBJECT || d.tok[sig].size != 2 || djson_find(&d, sig, "sig", &x) != HERR_OK ||
		    djson_find(&d, sig, "keyid", &id) != HERR_OK)
			return herr_why(why, why_size, HERR_INVALID, "malformed envelope: %s", inner);
		if (djson_string(&d, id, keyid, sizeof(keyid), NULL) != HERR_OK)
			continue;
		for (i = 0; i < t->key_count; i++)
			if (strcmp(keyid, trusted[i]) == 0)
				seen |= 1u << i;
	}
	for (i = 0; i < t->key_count; i++)
		named += (seen >> i) & 1;
	if (named < threshold)
		return herr_why(why, why_size, HERR_CRYPTO, "not enough trusted signatures: %s", inner);
	return herr_why(why, why_size, HERR_CRYPTO, "bad signature: %s", inner);
}

/* --- the body --------------------------------------------------------------------------------- */

/* Member name of the body, of type, into *idx. */
static enum herr member(struct check *c, size_t obj, const char *name, enum djson_type type, size_t *idx)
{
	static const char *const kinds[] = { "?", "an object", "an array", "a string", "a number",
					     "a boolean", "a boolean", "null" };

	if (djson_find(&c->doc, obj, name, idx) != HERR_OK)
		return herr_why(c->why, c->why_size, HERR_INVALID, "no \"%s\"", name);
	if (c->doc.tok[*idx].type != type)
		return herr_why(c->why, c->why_size, HERR_INVALID, "\"%s\" is not %s", name, kinds[type]);
	return HERR_OK;
}

static enum herr member_string(struct check *c, size_t obj, const char *name, char *buf, size_t size)
{
	enum herr rc;
	size_t i;

	if ((rc = member(c, obj, name, DJSON_STRING, &i)) != HERR_OK)
		return rc;
	rc = djson_string(&c->doc, i, buf, size, NULL);
	if (rc == HERR_TOOBIG)
		return herr_why(c->why, c->why_size, HERR_INVALID, "\"%s\" is longer than %zu bytes", name, size - 1);
	if (rc != HERR_OK)
		return herr_why(c->why, c->why_size, HERR_INVALID, "\"%s\" holds a NUL", name);
	return HERR_OK;
}

static enum herr member_int(struct check *c, size_t obj, const char *name, int64_t *v)
{
	enum herr rc;
	size_t i;

	if ((rc = member(c, obj, name, DJSON_NUMBER, &i)) != HERR_OK)
		return rc;
	if (djson_int64(&c->doc, i, v) != HERR_OK)
		return herr_why(c->why, c->why_size, HERR_INVALID, "\"%s\" is not an integer in range", name);
	return HERR_OK;
}

/* [A-Za-z0-9._+-]{1,64}: release and rollout ids, version strings. */
static int is_name(const char *s)
{
	size_t i, n = strnlen(s, CORE_ID_MAX + 1);

	if (n == 0 || n > CORE_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '+' || ch == '-'))
			return 0;
	}
	return 1;
}

static enum herr member_name(struct check *c, const char *name, char buf[CORE_ID_MAX + 1])
{
	enum herr rc = member_string(c, 0, name, buf, CORE_ID_MAX + 1);

	if (rc == HERR_OK && !is_name(buf))
		return herr_why(c->why, c->why_size, HERR_INVALID, "\"%s\" is not 1..%d of [A-Za-z0-9._+-]", name,
			      CORE_ID_MAX);
	return rc;
}

static int is_sha256_hex(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

/* A path under URL_PREFIX of [A-Za-z0-9/_.-] with no empty, "." or ".." segment: it is joined to the
 * server's address as it is. */
static int url_ok(const char *url)
{
	size_t i, seg = 1, n = strnlen(url, CORE_URL_MAX + 1);
	char ch;

	if (n > CORE_URL_MAX || n <= sizeof(URL_PREFIX) - 1 || memcmp(url, URL_PREFIX, sizeof(URL_PREFIX) - 1) != 0)
		return 0;
	for (i = 1; i <= n; i++) {
		ch = url[i];
		if (ch == '/' || ch == '\0') {
			if (i == seg || (i - seg == 1 && url[seg] == '.') ||
			    (i - seg == 2 && url[seg] == '.' && url[seg + 1] == '.'))
				return 0;
			seg = i + 1;
		} else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			     ch == '_' || ch == '.' || ch == '-')) {
			return 0;
		}
	}
	return 1;
}

/* type, device, version (above last; exactly last + 1 if exact), expires, issued. */
static enum herr check_common(struct check *c, const char *type, int64_t now, int64_t last, int exact,
			      int64_t *version)
{
	char device[CORE_ID_MAX + 1];
	int64_t expires, issued, limit;
	enum herr rc;
	size_t i;

	if (c->doc.tok[0].type != DJSON_OBJECT)
		return herr_why(c->why, c->why_size, HERR_INVALID, "body is not a JSON object");
	if ((rc = member(c, 0, "type", DJSON_STRING, &i)) != HERR_OK)
		return rc;
	if (!djson_string_is(&c->doc, i, type))
		return herr_why(c->why, c->why_size, HERR_INVALID, "not a %s manifest", type);
	if ((rc = member_string(c, 0, "device", device, sizeof(device))) != HERR_OK)
		return rc;
	if (device[0] == '\0' || !(strcmp(device, "*") == 0 || strcmp(device, c->t->device_id) == 0 ||
	      (c->t->model[0] != '\0' && strcmp(device, c->t->model) == 0)))
		return herr_why(c->why, c->why_size, HERR_INVALID, "addressed to another device");
	if ((rc = member_int(c, 0, "version", version)) != HERR_OK)
		return rc;
	if (*version < 1)
		return herr_why(c->why, c->why_size, HERR_INVALID, "version %lld is below 1", (long long)*version);
	if (*version <= last)
		return herr_why(c->why, c->why_size, HERR_STATE, "version %lld is not above %lld (rollback or replay)",
			      (long long)*version, (long long)last);
	/* last < *version <= INT64_MAX, so last + 1 does not overflow. */
	if (exact && *version != last + 1)
		return herr_why(c->why, c->why_size, HERR_INVALID, "%s version skips from %lld to %lld", type,
			      (long long)last, (long long)*version);
	if ((rc = member_int(c, 0, "expires", &expires)) != HERR_OK)
		return rc;
	if (expires <= now)
		return herr_why(c->why, c->why_size, HERR_INVALID, "expired (at %lld, now %lld)", (long long)expires,
			      (long long)now);
	if ((rc = member_int(c, 0, "issued", &issued)) != HERR_OK)
		return rc;
	limit = now > INT64_MAX - CORE_SKEW_S ? INT64_MAX : now + CORE_SKEW_S;
	if (issued > limit)
		return herr_why(c->why, c->why_size, HERR_INVALID, "issued %lld s in the future",
			      (long long)(issued - now));
	return HERR_OK;
}

static enum herr check_pins(struct check *c, struct core_trust *n)
{
	char pins[CORE_PINS_MAX][CORE_PIN_LEN], current[CORE_PIN_LEN];
	struct djson_iter it;
	size_t arr, e, k = 0, i;
	enum herr rc;

	if ((rc = member(c, 0, "pins", DJSON_ARRAY, &arr)) != HERR_OK)
		return rc;
	if (c->doc.tok[arr].size == 0)
		return herr_why(c->why, c->why_size, HERR_INVALID, "empty pin set");
	if (c->doc.tok[arr].size > CORE_PINS_MAX)
		return herr_why(c->why, c->why_size, HERR_INVALID, "more than %d pins", CORE_PINS_MAX);
	djson_iter_init(&c->doc, arr, &it);
	while (djson_iter_next(&c->doc, &it, &e)) {
		if (djson_string(&c->doc, e, pins[k], CORE_PIN_LEN, NULL) != HERR_OK || !core_pin_valid(pins[k]))
			return herr_why(c->why, c->why_size, HERR_INVALID, "pin %zu is malformed", k);
		for (i = 0; i < k; i++)
			if (strcmp(pins[i], pins[k]) == 0)
				return herr_why(c->why, c->why_size, HERR_INVALID, "pin %zu is listed twice", k);
		k++;
	}
	if (member_string(c, 0, "current", current, sizeof(current)) != HERR_OK || !core_pin_valid(current))
		return herr_why(c->why, c->why_size, HERR_INVALID, "\"current\" is not a pin");
	for (i = 0; i < k; i++)
		if (strcmp(pins[i], current) == 0)
			break;
	if (i == k)
		return herr_why(c->why, c->why_size, HERR_INVALID, "\"current\" is not in the pin set");
	memset(n->pins, 0, sizeof(n->pins));
	memcpy(n->pins, pins, k * sizeof(pins[0]));
	n->pin_count = k;
	return HERR_OK;
}

/* The announced keys into *ann and "threshold" into *threshold. */
static enum herr announced_keys(struct check *c, struct core_trust *ann, unsigned *threshold)
{
	char keyid[DSSE_KEYID_LEN], got[DSSE_KEYID_LEN];
	char *pem = NULL;
	struct djson_iter it;
	size_t arr, e, i, pem_len = 0, k = 0;
	int64_t th;
	enum herr rc;

	if ((rc = member(c, 0, "keys", DJSON_ARRAY, &arr)) != HERR_OK)
		return rc;
	if (c->doc.tok[arr].size == 0)
		return herr_why(c->why, c->why_size, HERR_INVALID, "empty key set");
	if (c->doc.tok[arr].size > CORE_KEYS_MAX)
		return herr_why(c->why, c->why_size, HERR_INVALID, "more than %d keys", CORE_KEYS_MAX);
	pem = malloc(PEM_MAX + 1);
	if (!pem)
		return herr_why(c->why, c->why_size, HERR_NOMEM, "out of memory");
	djson_iter_init(&c->doc, arr, &it);
	while (djson_iter_next(&c->doc, &it, &e)) {
		if (c->doc.tok[e].type != DJSON_OBJECT) {
			rc = herr_why(c->why, c->why_size, HERR_INVALID, "key %zu is not an object", k);
			goto out;
		}
		if (djson_find(&c->doc, e, "keyid", &i) != HERR_OK ||
		    djson_string(&c->doc, i, keyid, sizeof(keyid), NULL) != HERR_OK) {
			rc = herr_why(c->why, c->why_size, HERR_INVALID, "key %zu has no keyid", k);
			goto out;
		}
		if (djson_find(&c->doc, e, "public_key", &i) != HERR_OK ||
		    djson_string(&c->doc, i, pem, PEM_MAX + 1, &pem_len) != HERR_OK) {
			rc = herr_why(c->why, c->why_size, HERR_INVALID, "key %zu has no public_key", k);
			goto out;
		}
		rc = core_add_key(ann, pem, pem_len, got);
		if (rc == HERR_EXISTS) {
			rc = herr_why(c->why, c->why_size, HERR_INVALID, "key %zu is announced twice", k);
			goto out;
		}
		if (rc != HERR_OK) {
			rc = herr_why(c->why, c->why_size, HERR_INVALID, "key %zu is not a P-256 public key", k);
			goto out;
		}
		if (strcmp(keyid, got) != 0) {
			rc = herr_why(c->why, c->why_size, HERR_INVALID, "keyid of key %zu does not match its key", k);
			goto out;
		}
		k++;
	}
	if ((rc = member_int(c, 0, "threshold", &th)) != HERR_OK)
		goto out;
	if (th < 1 || (uint64_t)th > ann->key_count) {
		rc = herr_why(c->why, c->why_size, HERR_INVALID, "threshold %lld is not 1..%zu", (long long)th,
			    ann->key_count);
		goto out;
	}
	*threshold = (unsigned)th;
	rc = HERR_OK;
out:
	free(pem);
	return rc;
}

static enum herr check_keys(struct check *c, const uint8_t *env, size_t len, struct core_trust *n)
{
	char inner[WHY_INNER];
	struct dsse_verified v;
	struct core_trust ann;
	unsigned threshold = 0;
	enum herr rc;

	memset(&ann, 0, sizeof(ann));
	if ((rc = announced_keys(c, &ann, &threshold)) != HERR_OK)
		return rc;
	/* Every announced key must have signed: a device never trusts a key that has not shown it holds
	 * the private half, and the walk to the next version will need one of them. */
	rc = dsse_verify(env, len, ann.keys, ann.key_count, ann.key_count, &v, inner, sizeof(inner));
	if (rc == HERR_NOMEM)
		return herr_why(c->why, c->why_size, rc, "out of memory");
	if (rc != HERR_OK)
		return herr_why(c->why, c->why_size, HERR_CRYPTO, "not signed by every announced key: %s", inner);
	dsse_verified_free(&v);
	memcpy(n->keys, ann.keys, sizeof(n->keys));
	n->key_count = ann.key_count;
	n->threshold = threshold;
	return HERR_OK;
}

static enum herr check_firmware(struct check *c, struct core_firmware *fw)
{
	char model[CORE_ID_MAX + 1];
	int64_t size;
	enum herr rc;
	size_t i;
	int cancel = 0;

	if (djson_find(&c->doc, 0, "cancel", &i) == HERR_OK &&
	    (djson_bool(&c->doc, i, &cancel) != HERR_OK || !cancel))
		return herr_why(c->why, c->why_size, HERR_INVALID, "\"cancel\" is there but not true");
	if ((rc = member_string(c, 0, "model", model, sizeof(model))) != HERR_OK)
		return rc;
	if (model[0] == '\0' || strcmp(model, c->t->model) != 0)
		return herr_why(c->why, c->why_size, HERR_INVALID, "firmware for another model");
	if ((rc = member_name(c, "rollout", fw->rollout)) != HERR_OK)
		return rc;
	if (cancel) {
		fw->cancel = 1;
		return HERR_OK;
	}
	if ((rc = member_name(c, "release", fw->release)) != HERR_OK ||
	    (rc = member_name(c, "firmware_version", fw->firmware_version)) != HERR_OK ||
	    (rc = member_int(c, 0, "security_version", &fw->security_version)) != HERR_OK)
		return rc;
	if (fw->security_version < 0)
		return herr_why(c->why, c->why_size, HERR_INVALID, "security version %lld is negative",
			      (long long)fw->security_version);
	if (fw->security_version < c->t->security_version)
		return herr_why(c->why, c->why_size, HERR_INVALID, "security version %lld is below the device's %lld "
			      "(rollback)", (long long)fw->security_version, (long long)c->t->security_version);
	if ((rc = member_string(c, 0, "sha256", fw->sha256, sizeof(fw->sha256))) != HERR_OK)
		return rc;
	if (!is_sha256_hex(fw->sha256))
		return herr_why(c->why, c->why_size, HERR_INVALID, "\"sha256\" is not 64 lower-case hex digits");
	if ((rc = member_int(c, 0, "size", &size)) != HERR_OK)
		return rc;
	if (size < 1 || (uint64_t)size > CORE_IMAGE_MAX)
		return herr_why(c->why, c->why_size, HERR_INVALID, "size %lld is not 1..%llu", (long long)size,
			      (unsigned long long)CORE_IMAGE_MAX);
	fw->size = (uint64_t)size;
	if ((rc = member_string(c, 0, "url", fw->url, sizeof(fw->url))) != HERR_OK)
		return rc;
	if (!url_ok(fw->url))
		return herr_why(c->why, c->why_size, HERR_INVALID, "\"url\" is not a firmware path of this server");
	return HERR_OK;
}

enum herr core_check(const struct core_trust *t, const char *type, const uint8_t *envelope, size_t len,
		     int64_t now, struct core_trust *next, struct core_firmware *fw, char *why, size_t why_size)
{
	struct check c = { t, { NULL, 0, NULL, 0 }, why, why_size };
	struct djson_token *tok = NULL;
	struct dsse_verified v;
	struct core_firmware f;
	struct core_trust n;
	char inner[WHY_INNER];
	size_t threshold;
	int64_t version = 0, last;
	enum herr rc;

	memset(&v, 0, sizeof(v));
	memset(&f, 0, sizeof(f));
	if (why && why_size > 0)
		why[0] = '\0';
	if (fw)
		memset(fw, 0, sizeof(*fw));
	if (!t || !type || !next || (!envelope && len > 0))
		return herr_why(why, why_size, HERR_INVALID, "missing argument");
	if (strcmp(type, "pins") == 0)
		last = t->pins_version;
	else if (strcmp(type, "keys") == 0)
		last = t->keys_version;
	else if (strcmp(type, "firmware") == 0)
		last = t->firmware_version_seen;
	else
		return herr_why(why, why_size, HERR_INVALID, "unknown manifest type");
	if ((rc = trust_ok(t, why, why_size)) != HERR_OK)
		return rc;
	if (len > DSSE_ENVELOPE_MAX)
		return herr_why(why, why_size, HERR_INVALID, "envelope is over %d bytes", DSSE_ENVELOPE_MAX);
	tok = malloc(BODY_TOKENS * sizeof(*tok));
	if (!tok)
		return herr_why(why, why_size, HERR_NOMEM, "out of memory");
	/* Verify first: nothing of the body is looked at before its signatures are. */
	threshold = t->threshold > 0 ? t->threshold : 1;
	rc = dsse_verify(envelope, len, t->keys, t->key_count, threshold, &v, inner, sizeof(inner));
	if (rc == HERR_NOMEM) {
		herr_why(why, why_size, rc, "out of memory");
		goto out;
	}
	if (rc != HERR_OK) {
		rc = explain(t, threshold, envelope, len, tok, inner, why, why_size);
		goto out;
	}
	rc = djson_parse(v.body, v.body_len, tok, BODY_TOKENS, &c.doc, inner, sizeof(inner));
	if (rc != HERR_OK) {
		rc = herr_why(why, why_size, HERR_INVALID, "body is not strict JSON: %s", inner);
		goto out;
	}
	n = *t;
	if ((rc = check_common(&c, type, now, last, type[0] == 'k', &version)) != HERR_OK)
		goto out;
	switch (type[0]) {
	case 'p':
		rc = check_pins(&c, &n);
		n.pins_version = version;
		break;
	case 'k':
		rc = check_keys(&c, envelope, len, &n);
		n.keys_version = version;
		break;
	default:
		rc = check_firmware(&c, &f);
		n.firmware_version_seen = version;
		break;
	}
	if (rc != HERR_OK)
		goto out;
	*next = n;
	if (fw)
		*fw = f;
out:
	dsse_verified_free(&v);
	free(tok);
	return rc;
}

enum herr core_peek_version(const uint8_t *envelope, size_t len, int64_t *version)
{
	struct djson_token *tok = NULL;
	uint8_t *body = NULL;
	char *payload = NULL;
	size_t i, plen = 0, body_len = 0;
	struct djson_doc d;
	enum herr rc = HERR_INVALID;

	if (version)
		*version = 0;
	if (!version || !envelope || len == 0 || len > DSSE_ENVELOPE_MAX)
		return HERR_INVALID;
	tok = malloc(BODY_TOKENS * sizeof(*tok));
	if (!tok)
		return HERR_NOMEM;
	if (djson_parse(envelope, len, tok, BODY_TOKENS, &d, NULL, 0) != HERR_OK ||
	    djson_find(&d, 0, "payload", &i) != HERR_OK || d.tok[i].type != DJSON_STRING)
		goto out;
	plen = d.tok[i].end - d.tok[i].start + 1; /* decoding never lengthens a JSON string */
	payload = malloc(plen);
	if (!payload) {
		rc = HERR_NOMEM;
		goto out;
	}
	if (djson_string(&d, i, payload, plen, &plen) != HERR_OK)
		goto out;
	rc = dsse_b64_decode(payload, plen, &body, &body_len);
	if (rc != HERR_OK) {
		rc = rc == HERR_NOMEM ? rc : HERR_INVALID;
		goto out;
	}
	rc = HERR_INVALID;
	/* The envelope's tokens are done with; the body's take their place. */
	if (body_len > DSSE_BODY_MAX || djson_parse(body, body_len, tok, BODY_TOKENS, &d, NULL, 0) != HERR_OK ||
	    djson_find(&d, 0, "version", &i) != HERR_OK || djson_int64(&d, i, version) != HERR_OK)
		goto out;
	rc = HERR_OK;
out:
	free(body);
	free(payload);
	free(tok);
	return rc;
}
