/* Fuzz target for device/core and device/json. The first byte (mod 4) says what the rest is:
 *   0     JSON text: djson_parse, then every token is walked with every helper, and the helpers must
 *         agree with the tokens (each decoded key finds its own member, arrays iterate to their size);
 *   1     an envelope: core_check as each manifest type against a fixed trust, and core_peek_version;
 *   2, 3  a manifest body after one flags byte: signed here by the fuzz keys, then core_check'ed, so
 *         that mutations reach the checks behind the signature. Flags: bits 0-1 the type (pins, keys,
 *         firmware, pins), bit 2 key B signs too, bit 3 key A does not sign, bit 4 the device trusts
 *         A and B with threshold 2 (else A alone).
 * The keys are made from fixed scalars (SHA-256 of a label), so a run is reproducible and the seed
 * corpus (tests/fuzz/corpus/device_core) holds envelopes and keys manifests that really verify. Every
 * verdict is checked against what core.h promises; abort() is how a fuzzer reports. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include "device/core.h"
#include "device/json.h"
#include "ota/dsse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1700000000LL
#define FUZZ_TOKENS 512
#define URL_PREFIX "/api/v1/device/firmware/"

struct fuzz_key {
	mbedtls_pk_context pk;
	char pem[256];
	char keyid[DSSE_KEYID_LEN];
	char pin[CORE_PIN_LEN];
};

static struct fuzz_key key_a, key_b;
static struct core_trust trust_a, trust_ab;

/* Not random at all: the fuzz keys are public test keys and a run must be reproducible. */
static int fixed_rng(void *ctx, unsigned char *buf, size_t len)
{
	uint32_t *state = ctx;
	size_t i;

	for (i = 0; i < len; i++) {
		*state = *state * 1103515245u + 12345u;
		buf[i] = (unsigned char)(*state >> 16);
	}
	return 0;
}

static void key_make(struct fuzz_key *k, const char *label)
{
	uint8_t d[32], der[DSSE_SPKI_MAX];
	mbedtls_ecp_keypair *ec;
	uint32_t state = 1;
	int n;

	mbedtls_pk_init(&k->pk);
	if (mbedtls_sha256_ret((const uint8_t *)label, strlen(label), d, 0) != 0 ||
	    mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
		abort();
	ec = mbedtls_pk_ec(k->pk);
	if (mbedtls_ecp_read_key(MBEDTLS_ECP_DP_SECP256R1, ec, d, sizeof(d)) != 0 ||
	    mbedtls_ecp_mul(&ec->grp, &ec->Q, &ec->d, &ec->grp.G, fixed_rng, &state) != 0 ||
	    mbedtls_pk_write_pubkey_pem(&k->pk, (unsigned char *)k->pem, sizeof(k->pem)) != 0)
		abort();
	n = mbedtls_pk_write_pubkey_der(&k->pk, der, sizeof(der));
	if (n <= 0)
		abort();
	dsse_keyid(der + sizeof(der) - n, (size_t)n, k->keyid);
	core_pin_of(der + sizeof(der) - n, (size_t)n, k->pin);
}

static void trust_make(struct core_trust *t, int with_b)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->device_id, "dev-1", 6);
	memcpy(t->model, "m1", 3);
	if (core_add_key(t, key_a.pem, strlen(key_a.pem), NULL) != HERR_OK ||
	    (with_b && core_add_key(t, key_b.pem, strlen(key_b.pem), NULL) != HERR_OK))
		abort();
	t->threshold = with_b ? 2 : 1;
	memcpy(t->pins[0], key_b.pin, CORE_PIN_LEN);
	t->pin_count = 1;
	t->pins_version = 3;
	t->keys_version = 3;
	t->firmware_version_seen = 3;
	memcpy(t->firmware_version, "1.0.0", 6);
	t->security_version = 2;
}

static void setup(void)
{
	static int done;

	if (done)
		return;
	key_make(&key_a, "hearth fuzz_device_core key A");
	key_make(&key_b, "hearth fuzz_device_core key B");
	trust_make(&trust_a, 0);
	trust_make(&trust_ab, 1);
	done = 1;
}

static enum herr sign_cb(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig, size_t size, size_t *sig_len)
{
	uint8_t hash[32], buf[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	uint32_t state = 7;
	size_t n = 0;

	if (mbedtls_sha256_ret(msg, len, hash, 0) != 0 ||
	    mbedtls_pk_sign(ctx, MBEDTLS_MD_SHA256, hash, sizeof(hash), buf, &n, fixed_rng, &state) != 0 || n > size)
		return HERR_CRYPTO;
	memcpy(sig, buf, n);
	*sig_len = n;
	return HERR_OK;
}

static void signer_of(struct fuzz_key *k, struct dsse_signer *s)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->keyid, k->keyid, sizeof(s->keyid));
	s->sign = sign_cb;
	s->ctx = &k->pk;
}

/* --- json --------------------------------------------------------------------------------------- */

static void walk_json(const uint8_t *data, size_t size)
{
	static struct djson_token tok[FUZZ_TOKENS];
	char buf[512], small[8];
	struct djson_doc d;
	struct djson_iter it;
	size_t i, j, k, m, e, n, len;
	enum herr rc;
	int64_t v;
	int b;

	rc = djson_parse(data, size, tok, FUZZ_TOKENS, &d, buf, sizeof(buf));
	if (memchr(buf, '\0', sizeof(buf)) == NULL)
		abort();
	if (rc != HERR_OK) {
		if ((rc != HERR_INVALID && rc != HERR_TOOBIG) || buf[0] == '\0' || d.count != 0)
			abort();
		return;
	}
	if (d.count == 0 || d.count > FUZZ_TOKENS || tok[0].next != d.count)
		abort();
	for (i = 0; i < d.count; i++) {
		const struct djson_token *t = &tok[i];

		if (t->start > t->end || t->end > size || t->next <= i || t->next > d.count)
			abort();
		switch (t->type) {
		case DJSON_OBJECT:
			for (k = i + 1, m = 0; m < t->size; m++, k = tok[k + 1].next) {
				if (k + 1 >= t->next || tok[k].type != DJSON_STRING)
					abort();
				/* keys are unique, so a key decoded finds its own member */
				rc = djson_string(&d, k, buf, sizeof(buf), &len);
				if (rc == HERR_OK && (djson_find(&d, i, buf, &j) != HERR_OK || j != k + 1))
					abort();
			}
			if (k != t->next)
				abort();
			break;
		case DJSON_ARRAY:
			djson_iter_init(&d, i, &it);
			for (n = 0, k = i + 1; djson_iter_next(&d, &it, &e); n++, k = tok[k].next)
				if (e != k || e >= t->next)
					abort();
			if (n != t->size || k != t->next)
				abort();
			break;
		case DJSON_STRING:
			rc = djson_string(&d, i, buf, sizeof(buf), &len);
			if (rc == HERR_OK && (strlen(buf) != len || !djson_string_is(&d, i, buf)))
				abort();
			if (rc == HERR_OK && len >= sizeof(small) && djson_string(&d, i, small, sizeof(small), NULL) != HERR_TOOBIG)
				abort();
			if (rc != HERR_OK && rc != HERR_INVALID && rc != HERR_TOOBIG)
				abort();
			break;
		case DJSON_NUMBER:
			rc = djson_int64(&d, i, &v);
			if (rc != HERR_OK && rc != HERR_INVALID && rc != HERR_TOOBIG)
				abort();
			break;
		case DJSON_TRUE:
		case DJSON_FALSE:
			if (djson_bool(&d, i, &b) != HERR_OK || b != (t->type == DJSON_TRUE))
				abort();
			break;
		case DJSON_NULL:
			if (djson_bool(&d, i, &b) != HERR_INVALID)
				abort();
			break;
		default:
			abort();
		}
		if (t->type != DJSON_OBJECT && t->type != DJSON_ARRAY && (t->size != 0 || t->next != i + 1))
			abort();
	}
}

/* --- core ----------------------------------------------------------------------------------------- */

static int terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void check_one(const struct core_trust *t, const char *type, const uint8_t *env, size_t len)
{
	struct core_trust next;
	struct core_firmware fw;
	char why[200];
	const int64_t *was, *now;
	size_t i;
	enum herr rc;

	memset(why, 'x', sizeof(why));
	rc = core_check(t, type, env, len, FUZZ_NOW, &next, &fw, why, sizeof(why));
	if (!terminated(why, sizeof(why)))
		abort();
	if (rc != HERR_OK) {
		if ((rc != HERR_INVALID && rc != HERR_STATE && rc != HERR_CRYPTO && rc != HERR_NOMEM) || why[0] == '\0')
			abort();
		return;
	}
	if (why[0] != '\0' || next.key_count < 1 || next.key_count > CORE_KEYS_MAX || next.threshold < 1 ||
	    next.threshold > next.key_count || next.pin_count < 1 || next.pin_count > CORE_PINS_MAX ||
	    strcmp(next.device_id, t->device_id) != 0 || strcmp(next.model, t->model) != 0 ||
	    next.security_version != t->security_version)
		abort();
	for (i = 0; i < next.pin_count; i++)
		if (!core_pin_valid(next.pins[i]))
			abort();
	/* exactly the type's version moves, up (keys: by one) */
	switch (type[0]) {
	case 'p':
		was = &t->pins_version, now = &next.pins_version;
		if (next.keys_version != t->keys_version || next.firmware_version_seen != t->firmware_version_seen ||
		    memcmp(next.keys, t->keys, sizeof(t->keys)) != 0)
			abort();
		break;
	case 'k':
		was = &t->keys_version, now = &next.keys_version;
		if (next.keys_version != t->keys_version + 1 || next.pins_version != t->pins_version ||
		    memcmp(next.pins, t->pins, sizeof(t->pins)) != 0)
			abort();
		break;
	default:
		was = &t->firmware_version_seen, now = &next.firmware_version_seen;
		if (next.keys_version != t->keys_version || next.pins_version != t->pins_version ||
		    memcmp(next.keys, t->keys, sizeof(t->keys)) != 0)
			abort();
		if (!terminated(fw.rollout, sizeof(fw.rollout)) || fw.rollout[0] == '\0')
			abort();
		if (!fw.cancel && (fw.size < 1 || fw.size > CORE_IMAGE_MAX || strlen(fw.sha256) != 64 ||
				   fw.security_version < t->security_version || !terminated(fw.url, sizeof(fw.url)) ||
				   strncmp(fw.url, URL_PREFIX, strlen(URL_PREFIX)) != 0 || fw.release[0] == '\0' ||
				   fw.firmware_version[0] == '\0'))
			abort();
		break;
	}
	if (*now <= *was)
		abort();
}

static void check_envelope(const uint8_t *env, size_t len)
{
	int64_t v;

	check_one(&trust_a, "pins", env, len);
	check_one(&trust_a, "keys", env, len);
	check_one(&trust_a, "firmware", env, len);
	check_one(&trust_ab, "keys", env, len);
	if (core_peek_version(env, len, &v) != HERR_OK && v != 0)
		abort();
}

static void check_body(uint8_t flags, const uint8_t *body, size_t len)
{
	static const char *const types[] = { "pins", "keys", "firmware", "pins" };
	struct dsse_signer s[2];
	char *env = NULL;
	size_t n = 0, env_len = 0;

	if (!(flags & 8))
		signer_of(&key_a, &s[n++]);
	if (flags & 4)
		signer_of(&key_b, &s[n++]);
	if (n == 0 || dsse_sign(body, len, s, n, &env, &env_len) != HERR_OK)
		return; /* nobody signs, or over DSSE_BODY_MAX */
	check_one(flags & 16 ? &trust_ab : &trust_a, types[flags & 3], (const uint8_t *)env, env_len);
	free(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		walk_json(data + 1, size - 1);
		break;
	case 1:
		check_envelope(data + 1, size - 1);
		break;
	default:
		if (size >= 2)
			check_body(data[1], data + 2, size - 2);
		break;
	}
	return 0;
}
