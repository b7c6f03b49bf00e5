/* dsse: DSSE envelopes signed with ECDSA P-256 over SHA-256 (see dsse.h). The envelope parser is a
 * flat scanner for the one shape an envelope has (no recursion, no general JSON): every field is a
 * span of the input, so what is compared, decoded and verified is exactly what was received. */
#include "ota/dsse.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include "common/log.h"

#define TYPE_LEN (sizeof(DSSE_PAYLOAD_TYPE) - 1)
#define B64_LEN(n) (4 * (((n) + 2) / 3))         /* base64 characters for n bytes, padded */
#define PAYLOAD_B64_MAX B64_LEN(DSSE_BODY_MAX)
#define SIG_B64_MAX B64_LEN(DSSE_SIG_MAX)
#define TYPE_FIELD_MAX 128  /* a payloadType longer than this is not worth comparing */
#define KEY_NAME_MAX 16     /* longest object key looked at ("payloadType" is 11) */
#define KEYID_HEX 64
#define PAE_HEAD_MAX 96     /* "DSSEv1 36 <type> <decimal> " */

/* A P-256 SubjectPublicKeyInfo in its usual DER form (id-ecPublicKey, named curve prime256v1,
 * uncompressed point) is this prefix and the point's 64 bytes; requiring that form gives each key
 * exactly one keyid. */
static const uint8_t p256_spki_prefix[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
	0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
};
#define P256_SPKI_LEN (sizeof(p256_spki_prefix) + 64)

struct span {
	const uint8_t *p;
	size_t len;
};

struct envelope {
	struct span type, payload;
	size_t sig_count;
	struct span keyid[DSSE_SIGS_MAX], sig[DSSE_SIGS_MAX];
};

struct cursor {
	const uint8_t *p;
	size_t len, pos;
	char *why;
	size_t why_size;
};

static enum herr crypto_fail(const char *func, const char *what, int ret)
{
	char text[128];

	mbedtls_strerror(ret, text, sizeof(text));
	log_msg(LOG_LEVEL_ERR, func, "%s: %s (-0x%04x)", what, text, (unsigned)-ret);
	return HERR_CRYPTO;
}

/* --- base64 ----------------------------------------------------------------------------------- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(uint8_t ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Writes exactly B64_LEN(len) characters to out, no NUL. */
static void b64_encode_into(const uint8_t *data, size_t len, char *out)
{
	size_t i, n = 0;
	uint32_t v;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
		out[n++] = b64_alphabet[v >> 18];
		out[n++] = b64_alphabet[(v >> 12) & 63];
		out[n++] = b64_alphabet[(v >> 6) & 63];
		out[n++] = b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)data[i] << 16;
		out[n++] = b64_alphabet[v >> 18];
		out[n++] = b64_alphabet[(v >> 12) & 63];
		out[n++] = '=';
		out[n++] = '=';
	} else if (len - i == 2) {
		v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
		out[n++] = b64_alphabet[v >> 18];
		out[n++] = b64_alphabet[(v >> 12) & 63];
		out[n++] = b64_alphabet[(v >> 6) & 63];
		out[n++] = '=';
	}
}

/* Strict: whole groups of four, '=' only as the padding of the last one, and the bits the padding
 * leaves over must be zero, so every byte string has exactly one accepted encoding. HERR_TOOBIG if
 * the result would be over size bytes. */
static enum herr b64_decode_into(const uint8_t *text, size_t len, uint8_t *out, size_t size,
				 size_t *out_len)
{
	size_t i, k, m, n = 0, pad = 0;
	unsigned v[4];
	int x;

	*out_len = 0;
	if (len % 4 != 0)
		return HERR_INVALID;
	if (len > 0 && text[len - 1] == '=') {
		pad = 1;
		if (text[len - 2] == '=')
			pad = 2;
	}
	if (len / 4 * 3 - pad > size)
		return HERR_TOOBIG;
	for (i = 0; i < len; i += 4) {
		m = i + 4 == len ? 4 - pad : 4;
		for (k = 0; k < 4; k++) {
			v[k] = 0;
			if (k < m) {
				x = b64_value(text[i + k]);
				if (x < 0)
					return HERR_INVALID;
				v[k] = (unsigned)x;
			}
		}
		if ((m == 2 && (v[1] & 15) != 0) || (m == 3 && (v[2] & 3) != 0))
			return HERR_INVALID;
		out[n++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (m > 2)
			out[n++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
		if (m > 3)
			out[n++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
	}
	*out_len = n;
	return HERR_OK;
}

enum herr dsse_b64_encode(const uint8_t *data, size_t len, char **out, size_t *out_len)
{
	size_t n;
	char *buf;

	*out = NULL;
	*out_len = 0;
	if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
		return HERR_TOOBIG;
	if (!data && len > 0)
		return HERR_INVALID;
	n = B64_LEN(len);
	buf = malloc(n + 1);
	if (!buf)
		return HERR_NOMEM;
	b64_encode_into(data, len, buf);
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return HERR_OK;
}

enum herr dsse_b64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
	size_t max = len / 4 * 3, n = 0;
	uint8_t *buf;
	enum herr rc;

	*out = NULL;
	*out_len = 0;
	if (!text && len > 0)
		return HERR_INVALID;
	buf = malloc(max + 1);
	if (!buf)
		return HERR_NOMEM;
	rc = b64_decode_into((const uint8_t *)text, len, buf, max, &n);
	if (rc != HERR_OK) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return HERR_OK;
}

/* --- keys and the PAE ------------------------------------------------------------------------- */

static void hex32(const uint8_t hash[32], char hex[DSSE_KEYID_LEN])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[hash[i] >> 4];
		hex[2 * i + 1] = digits[hash[i] & 15];
	}
	hex[KEYID_HEX] = '\0';
}

void dsse_keyid(const uint8_t *spki, size_t len, char keyid[DSSE_KEYID_LEN])
{
	uint8_t hash[32];
	int ret;

	ret = mbedtls_sha256_ret(spki, len, hash, 0);
	if (ret != 0) {
		crypto_fail(__func__, "sha256", ret);
		keyid[0] = '\0'; /* matches no keyid */
		return;
	}
	hex32(hash, keyid);
}

static int is_keyid(const uint8_t *s, size_t len)
{
	size_t i;

	if (len != KEYID_HEX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* "DSSEv1 <len(type)> <type> <len(body)> " into head; its length. */
static size_t pae_head(size_t body_len, char head[PAE_HEAD_MAX])
{
	int n = snprintf(head, PAE_HEAD_MAX, "DSSEv1 %zu %s %zu ", TYPE_LEN, DSSE_PAYLOAD_TYPE, body_len);

	/* Cannot fail or be cut: the type is a constant and a size_t has at most 20 digits. */
	return n > 0 && n < PAE_HEAD_MAX ? (size_t)n : 0;
}

enum herr dsse_pae(const uint8_t *body, size_t len, uint8_t **pae, size_t *pae_len)
{
	char head[PAE_HEAD_MAX];
	size_t head_len;
	uint8_t *buf;

	*pae = NULL;
	*pae_len = 0;
	if (len > DSSE_BODY_MAX)
		return HERR_TOOBIG;
	if (!body && len > 0)
		return HERR_INVALID;
	head_len = pae_head(len, head);
	if (head_len == 0)
		return HERR_INVALID;
	buf = malloc(head_len + len);
	if (!buf)
		return HERR_NOMEM;
	memcpy(buf, head, head_len);
	if (len > 0)
		memcpy(buf + head_len, body, len);
	*pae = buf;
	*pae_len = head_len + len;
	return HERR_OK;
}

/* SHA-256 of the PAE of body, without building it. */
static enum herr pae_hash(const uint8_t *body, size_t len, uint8_t hash[32])
{
	mbedtls_sha256_context ctx;
	char head[PAE_HEAD_MAX];
	size_t head_len = pae_head(len, head);
	int ret;

	if (head_len == 0)
		return HERR_INVALID;
	mbedtls_sha256_init(&ctx);
	ret = mbedtls_sha256_starts_ret(&ctx, 0);
	if (ret == 0)
		ret = mbedtls_sha256_update_ret(&ctx, (const uint8_t *)head, head_len);
	if (ret == 0 && len > 0)
		ret = mbedtls_sha256_update_ret(&ctx, body, len);
	if (ret == 0)
		ret = mbedtls_sha256_finish_ret(&ctx, hash);
	mbedtls_sha256_free(&ctx);
	return ret == 0 ? HERR_OK : crypto_fail(__func__, "sha256", ret);
}

/* Trusted key i into pk (initialised by the caller, freed by the caller whatever happens). */
static enum herr load_key(const struct dsse_key *k, size_t i, mbedtls_pk_context *pk, char *why,
			  size_t why_size)
{
	int ret;

	if (k->spki_len == 0 || k->spki_len > DSSE_SPKI_MAX)
		return herr_why(why, why_size, HERR_INVALID, "trusted key %zu: SubjectPublicKeyInfo of %zu bytes "
			      "(1..%d)", i, k->spki_len, DSSE_SPKI_MAX);
	ret = mbedtls_pk_parse_public_key(pk, k->spki, k->spki_len);
	if (ret != 0)
		return herr_why(why, why_size, HERR_INVALID, "trusted key %zu does not parse (-0x%04x)", i,
			      (unsigned)-ret);
	if (mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY ||
	    mbedtls_pk_ec(*pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1)
		return herr_why(why, why_size, HERR_INVALID, "trusted key %zu is not an EC P-256 key", i);
	if (k->spki_len != P256_SPKI_LEN || memcmp(k->spki, p256_spki_prefix, sizeof(p256_spki_prefix)) != 0)
		return herr_why(why, why_size, HERR_INVALID, "trusted key %zu is not in the usual DER form "
			      "(named curve, uncompressed point)", i);
	return HERR_OK;
}

/* Index of the trusted key whose keyid is the 64 hex digits at id, or count if there is none. */
static size_t find_key(const struct dsse_key *keys, size_t count, const uint8_t *id)
{
	char keyid[DSSE_KEYID_LEN];
	size_t i;

	for (i = 0; i < count; i++) {
		dsse_keyid(keys[i].spki, keys[i].spki_len, keyid);
		if (memcmp(keyid, id, KEYID_HEX) == 0)
			return i;
	}
	return count;
}

/* --- the envelope parser ---------------------------------------------------------------------- */

static void skip_ws(struct cursor *c)
{
	while (c->pos < c->len && (c->p[c->pos] == ' ' || c->p[c->pos] == '\t' || c->p[c->pos] == '\n' ||
				   c->p[c->pos] == '\r'))
		c->pos++;
}

/* The next byte after whitespace (not consumed), or -1 at the end. */
static int peek(struct cursor *c)
{
	skip_ws(c);
	return c->pos < c->len ? c->p[c->pos] : -1;
}

static enum herr expect(struct cursor *c, char ch, const char *where)
{
	int got = peek(c);

	if (got == ch) {
		c->pos++;
		return HERR_OK;
	}
	if (got < 0)
		return herr_why(c->why, c->why_size, HERR_INVALID, "envelope ends early: expected '%c' %s", ch,
			      where);
	return herr_why(c->why, c->why_size, HERR_INVALID, "expected '%c' %s at byte %zu", ch, where, c->pos);
}

/* A string token of at most max bytes into s. No field of an envelope needs an escape (base64, hex
 * digits, the payload type and the key names are plain ASCII), so a backslash is refused rather
 * than decoded, as are control and non-ASCII bytes: the bytes kept are the bytes received. */
static enum herr get_string(struct cursor *c, size_t max, const char *what, struct span *s)
{
	size_t start, i;
	int got = peek(c);

	if (got < 0)
		return herr_why(c->why, c->why_size, HERR_INVALID, "envelope ends early: expected %s", what);
	if (got != '"')
		return herr_why(c->why, c->why_size, HERR_INVALID, "%s must be a string (byte %zu)", what, c->pos);
	start = ++c->pos;
	for (i = start; i < c->len; i++) {
		uint8_t b = c->p[i];

		if (b == '"') {
			s->p = c->p + start;
			s->len = i - start;
			c->pos = i + 1;
			return HERR_OK;
		}
		if (i - start >= max)
			return herr_why(c->why, c->why_size, HERR_TOOBIG, "%s is longer than %zu bytes", what, max);
		if (b == '\\')
			return herr_why(c->why, c->why_size, HERR_INVALID, "%s has an escape sequence (byte %zu); "
				      "an envelope needs none", what, i);
		if (b < 0x20 || b > 0x7e)
			return herr_why(c->why, c->why_size, HERR_INVALID, "%s has a control or non-ASCII byte "
				      "(byte %zu)", what, i);
	}
	return herr_why(c->why, c->why_size, HERR_INVALID, "envelope ends inside %s", what);
}

static int span_is(const struct span *s, const char *text)
{
	return s->len == strlen(text) && memcmp(s->p, text, s->len) == 0;
}

/* After an object member: ',' (another follows: 1) or the closing ch (0); -1 and why otherwise. */
static int next_member(struct cursor *c, char close, const char *where, enum herr *rc)
{
	int got = peek(c);

	if (got == ',' || got == close) {
		c->pos++;
		return got == ',';
	}
	if (got < 0)
		*rc = herr_why(c->why, c->why_size, HERR_INVALID, "envelope ends early: expected ',' or '%c' %s",
			     close, where);
	else
		*rc = herr_why(c->why, c->why_size, HERR_INVALID, "expected ',' or '%c' %s at byte %zu", close,
			     where, c->pos);
	return -1;
}

/* {"keyid": "...", "sig": "..."}, each key exactly once. n names it in messages. */
static enum herr get_signature(struct cursor *c, size_t n, struct span *keyid, struct span *sig)
{
	int seen_keyid = 0, seen_sig = 0, more;
	enum herr rc = HERR_OK;
	struct span name;
	char where[48];

	snprintf(where, sizeof(where), "in signature %zu", n);
	if (peek(c) != '{' && peek(c) >= 0)
		return herr_why(c->why, c->why_size, HERR_INVALID, "signature %zu must be an object (byte %zu)",
			      n, c->pos);
	if ((rc = expect(c, '{', where)) != HERR_OK)
		return rc;
	if (peek(c) == '}') {
		c->pos++;
	} else {
		do {
			if ((rc = get_string(c, KEY_NAME_MAX, "a key", &name)) != HERR_OK ||
			    (rc = expect(c, ':', where)) != HERR_OK)
				return rc;
			if (span_is(&name, "keyid")) {
				if (seen_keyid++)
					return herr_why(c->why, c->why_size, HERR_INVALID, "duplicate key \"keyid\" %s",
						      where);
				rc = get_string(c, KEYID_HEX, "keyid", keyid);
			} else if (span_is(&name, "sig")) {
				if (seen_sig++)
					return herr_why(c->why, c->why_size, HERR_INVALID, "duplicate key \"sig\" %s",
						      where);
				rc = get_string(c, SIG_B64_MAX, "sig", sig);
			} else {
				return herr_why(c->why, c->why_size, HERR_INVALID, "unknown key \"%.*s\" %s",
					      (int)name.len, (const char *)name.p, where);
			}
			if (rc != HERR_OK)
				return rc;
			more = next_member(c, '}', where, &rc);
			if (more < 0)
				return rc;
		} while (more);
	}
	if (!seen_keyid || !seen_sig)
		return herr_why(c->why, c->why_size, HERR_INVALID, "signature %zu has no %s", n,
			      seen_keyid ? "sig" : "keyid");
	return HERR_OK;
}

static enum herr get_signatures(struct cursor *c, struct envelope *env)
{
	enum herr rc = HERR_OK;
	int more;

	if (peek(c) != '[' && peek(c) >= 0)
		return herr_why(c->why, c->why_size, HERR_INVALID, "signatures must be an array (byte %zu)",
			      c->pos);
	if ((rc = expect(c, '[', "to open signatures")) != HERR_OK)
		return rc;
	if (peek(c) == ']')
		return herr_why(c->why, c->why_size, HERR_INVALID, "signatures is empty");
	do {
		if (env->sig_count == DSSE_SIGS_MAX)
			return herr_why(c->why, c->why_size, HERR_TOOBIG, "more than %d signatures", DSSE_SIGS_MAX);
		rc = get_signature(c, env->sig_count, &env->keyid[env->sig_count], &env->sig[env->sig_count]);
		if (rc != HERR_OK)
			return rc;
		env->sig_count++;
		more = next_member(c, ']', "in signatures", &rc);
		if (more < 0)
			return rc;
	} while (more);
	return HERR_OK;
}

/* The whole input as {"payloadType": "...", "payload": "...", "signatures": [...]}, each key
 * exactly once, in any order, with JSON whitespace between tokens and nothing after. */
static enum herr parse_envelope(const uint8_t *p, size_t len, struct envelope *env, char *why,
				size_t why_size)
{
	struct cursor c = { p, len, 0, why, why_size };
	int seen_type = 0, seen_payload = 0, seen_sigs = 0, more;
	const uint8_t *nul;
	enum herr rc = HERR_OK;
	struct span name;

	memset(env, 0, sizeof(*env));
	if (len == 0)
		return herr_why(why, why_size, HERR_INVALID, "envelope is empty");
	if (len > DSSE_ENVELOPE_MAX)
		return herr_why(why, why_size, HERR_TOOBIG, "envelope is over %d bytes", DSSE_ENVELOPE_MAX);
	nul = memchr(p, '\0', len);
	if (nul)
		return herr_why(why, why_size, HERR_INVALID, "NUL byte at byte %zu", (size_t)(nul - p));
	if ((rc = expect(&c, '{', "at the start of the envelope")) != HERR_OK)
		return rc;
	if (peek(&c) == '}') {
		c.pos++;
	} else {
		do {
			if ((rc = get_string(&c, KEY_NAME_MAX, "a key", &name)) != HERR_OK ||
			    (rc = expect(&c, ':', "in the envelope")) != HERR_OK)
				return rc;
			if (span_is(&name, "payloadType")) {
				if (seen_type++)
					return herr_why(why, why_size, HERR_INVALID, "duplicate key \"payloadType\"");
				rc = get_string(&c, TYPE_FIELD_MAX, "payloadType", &env->type);
			} else if (span_is(&name, "payload")) {
				if (seen_payload++)
					return herr_why(why, why_size, HERR_INVALID, "duplicate key \"payload\"");
				rc = get_string(&c, PAYLOAD_B64_MAX, "payload", &env->payload);
			} else if (span_is(&name, "signatures")) {
				if (seen_sigs++)
					return herr_why(why, why_size, HERR_INVALID, "duplicate key \"signatures\"");
				rc = get_signatures(&c, env);
			} else {
				return herr_why(why, why_size, HERR_INVALID, "unknown key \"%.*s\" in the envelope",
					      (int)name.len, (const char *)name.p);
			}
			if (rc != HERR_OK)
				return rc;
			more = next_member(&c, '}', "in the envelope", &rc);
			if (more < 0)
				return rc;
		} while (more);
	}
	if (!seen_type || !seen_payload || !seen_sigs)
		return herr_why(why, why_size, HERR_INVALID, "envelope has no %s",
			      !seen_type ? "payloadType" : !seen_payload ? "payload" : "signatures");
	skip_ws(&c);
	if (c.pos != len)
		return herr_why(why, why_size, HERR_INVALID, "trailing bytes after the envelope (byte %zu)", c.pos);
	return HERR_OK;
}

/* --- sign and verify -------------------------------------------------------------------------- */

struct text {
	char *p;
	size_t pos, size;
};

static void put(struct text *t, const char *s, size_t n)
{
	/* The size is computed for the worst case first; this only guards that sum. */
	if (t->pos > t->size || n > t->size - t->pos) {
		t->pos = t->size + 1;
		return;
	}
	memcpy(t->p + t->pos, s, n);
	t->pos += n;
}

static void put_str(struct text *t, const char *s)
{
	put(t, s, strlen(s));
}

static void put_b64(struct text *t, const uint8_t *data, size_t len)
{
	if (t->pos > t->size || B64_LEN(len) > t->size - t->pos) {
		t->pos = t->size + 1;
		return;
	}
	b64_encode_into(data, len, t->p + t->pos);
	t->pos += B64_LEN(len);
}

enum herr dsse_sign(const uint8_t *body, size_t len, const struct dsse_signer *signers, size_t count,
		    char **envelope, size_t *envelope_len)
{
	uint8_t sig[DSSE_SIGS_MAX][DSSE_SIG_MAX];
	size_t sig_len[DSSE_SIGS_MAX], i, pae_len = 0;
	struct text t = { NULL, 0, 0 };
	uint8_t *pae = NULL;
	enum herr rc;

	*envelope = NULL;
	*envelope_len = 0;
	if (len > DSSE_BODY_MAX)
		return HERR_TOOBIG;
	if ((!body && len > 0) || !signers || count < 1 || count > DSSE_SIGS_MAX) {
		log_err("no body or not 1..%d signers", DSSE_SIGS_MAX);
		return HERR_INVALID;
	}
	for (i = 0; i < count; i++) {
		if (!signers[i].sign ||
		    !is_keyid((const uint8_t *)signers[i].keyid, strnlen(signers[i].keyid, DSSE_KEYID_LEN))) {
			log_err("signer %zu has no sign function or no valid keyid", i);
			return HERR_INVALID;
		}
	}
	rc = dsse_pae(body, len, &pae, &pae_len);
	if (rc != HERR_OK)
		return rc;
	for (i = 0; i < count; i++) {
		sig_len[i] = 0;
		rc = signers[i].sign(signers[i].ctx, pae, pae_len, sig[i], DSSE_SIG_MAX, &sig_len[i]);
		if (rc != HERR_OK)
			goto out;
		if (sig_len[i] == 0 || sig_len[i] > DSSE_SIG_MAX) {
			log_err("signer %zu returned a signature of %zu bytes", i, sig_len[i]);
			rc = HERR_CRYPTO;
			goto out;
		}
	}
	t.size = 64 + TYPE_LEN + B64_LEN(len) + count * (32 + KEYID_HEX + SIG_B64_MAX);
	t.p = malloc(t.size + 1);
	if (!t.p) {
		rc = HERR_NOMEM;
		goto out;
	}
	put_str(&t, "{\"payloadType\":\"" DSSE_PAYLOAD_TYPE "\",\"payload\":\"");
	put_b64(&t, body, len);
	put_str(&t, "\",\"signatures\":[");
	for (i = 0; i < count; i++) {
		put_str(&t, i > 0 ? ",{\"keyid\":\"" : "{\"keyid\":\"");
		put(&t, signers[i].keyid, KEYID_HEX);
		put_str(&t, "\",\"sig\":\"");
		put_b64(&t, sig[i], sig_len[i]);
		put_str(&t, "\"}");
	}
	put_str(&t, "]}");
	if (t.pos > t.size) {
		log_err("envelope size miscomputed");
		free(t.p);
		rc = HERR_TOOBIG;
		goto out;
	}
	t.p[t.pos] = '\0';
	*envelope = t.p;
	*envelope_len = t.pos;
	rc = HERR_OK;
out:
	free(pae);
	return rc;
}

void dsse_verified_free(struct dsse_verified *v)
{
	if (!v)
		return;
	free(v->body);
	memset(v, 0, sizeof(*v));
}

/* The form of every signature, trusted key or not: what is malformed does not depend on the keys. */
static enum herr check_form(const struct envelope *env, uint8_t sig[][DSSE_SIG_MAX], size_t *sig_len,
			    char *why, size_t why_size)
{
	enum herr rc;
	size_t i;

	if (env->type.len != TYPE_LEN || memcmp(env->type.p, DSSE_PAYLOAD_TYPE, TYPE_LEN) != 0)
		return herr_why(why, why_size, HERR_INVALID, "payloadType \"%.*s\" is not " DSSE_PAYLOAD_TYPE,
			      (int)env->type.len, (const char *)env->type.p);
	for (i = 0; i < env->sig_count; i++) {
		if (!is_keyid(env->keyid[i].p, env->keyid[i].len))
			return herr_why(why, why_size, HERR_INVALID, "keyid of signature %zu is not 64 lower-case "
				      "hex digits", i);
		rc = b64_decode_into(env->sig[i].p, env->sig[i].len, sig[i], DSSE_SIG_MAX, &sig_len[i]);
		if (rc == HERR_TOOBIG)
			return herr_why(why, why_size, rc, "sig of signature %zu is over %d bytes", i, DSSE_SIG_MAX);
		if (rc != HERR_OK)
			return herr_why(why, why_size, rc, "sig of signature %zu is not strict base64", i);
		if (sig_len[i] == 0)
			return herr_why(why, why_size, HERR_INVALID, "sig of signature %zu is empty", i);
	}
	return HERR_OK;
}

enum herr dsse_verify(const uint8_t *envelope, size_t len, const struct dsse_key *keys, size_t count,
		      size_t threshold, struct dsse_verified *out, char *why, size_t why_size)
{
	uint8_t sig[DSSE_SIGS_MAX][DSSE_SIG_MAX], hash[32];
	size_t sig_len[DSSE_SIGS_MAX], i, j, k;
	struct dsse_verified v;
	mbedtls_pk_context pk;
	struct envelope env;
	enum herr rc;
	int ret;

	memset(out, 0, sizeof(*out));
	memset(&v, 0, sizeof(v));
	if (why && why_size > 0)
		why[0] = '\0';
	if (threshold == 0)
		threshold = 1;
	if (!keys && count > 0)
		return herr_why(why, why_size, HERR_INVALID, "no trusted keys given");
	/* A wrong trust list is an error whatever the envelope. */
	for (i = 0; i < count; i++) {
		mbedtls_pk_init(&pk);
		rc = load_key(&keys[i], i, &pk, why, why_size);
		mbedtls_pk_free(&pk);
		if (rc != HERR_OK)
			return rc;
	}
	if (!envelope && len > 0)
		return herr_why(why, why_size, HERR_INVALID, "no envelope");
	rc = parse_envelope(envelope, len, &env, why, why_size);
	if (rc != HERR_OK)
		return rc;
	rc = check_form(&env, sig, sig_len, why, why_size);
	if (rc != HERR_OK)
		return rc;
	v.body = malloc(env.payload.len / 4 * 3 + 1);
	if (!v.body)
		return herr_why(why, why_size, HERR_NOMEM, "out of memory");
	rc = b64_decode_into(env.payload.p, env.payload.len, v.body, DSSE_BODY_MAX, &v.body_len);
	if (rc != HERR_OK) {
		if (rc == HERR_TOOBIG)
			herr_why(why, why_size, rc, "payload is over %d bytes", DSSE_BODY_MAX);
		else
			herr_why(why, why_size, rc, "payload is not strict base64");
		goto fail;
	}
	v.body[v.body_len] = '\0';
	rc = pae_hash(v.body, v.body_len, hash);
	if (rc != HERR_OK) {
		herr_why(why, why_size, rc, "cannot hash the PAE");
		goto fail;
	}
	for (i = 0; i < env.sig_count; i++) {
		k = find_key(keys, count, env.keyid[i].p);
		if (k == count)
			continue; /* not a key we trust: it counts for nothing */
		mbedtls_pk_init(&pk);
		rc = load_key(&keys[k], k, &pk, why, why_size);
		ret = rc == HERR_OK ? mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig[i],
							sig_len[i]) : 0;
		mbedtls_pk_free(&pk);
		if (rc != HERR_OK)
			goto fail;
		if (ret != 0) {
			rc = herr_why(why, why_size, HERR_INVALID, "signature %zu by trusted key %.16s... does not "
				    "verify", i, (const char *)env.keyid[i].p);
			goto fail;
		}
		for (j = 0; j < v.valid_keys; j++)
			if (memcmp(v.keyids[j], env.keyid[i].p, KEYID_HEX) == 0)
				break;
		if (j == v.valid_keys) {
			memcpy(v.keyids[j], env.keyid[i].p, KEYID_HEX);
			v.keyids[j][KEYID_HEX] = '\0';
			v.valid_keys++;
		}
	}
	if (v.valid_keys < threshold) {
		rc = herr_why(why, why_size, HERR_INVALID, "%zu distinct trusted key%s signed; %zu needed",
			    v.valid_keys, v.valid_keys == 1 ? "" : "s", threshold);
		goto fail;
	}
	*out = v;
	return HERR_OK;
fail:
	dsse_verified_free(&v);
	return rc;
}
