/* Unit tests of device/core and device/json: manifests really signed here (P-256 keys made with
 * mbedTLS, envelopes made by dsse_sign) and checked against a device's trust, then every way one can
 * be wrong; pins against a pin computed independently (mbedTLS sha256 and base64); the JSON reader
 * on hostile text. Inputs go in as exactly sized copies, so a read past the end is an ASan report. */
#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include "common/rng.h"
#include "device/core.h"
#include "device/json.h"
#include "ota/dsse.h"
#include "tests/unit/unit.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define NOW 1700000000LL
#define LATER (NOW + 86400)
#define TEXT_MAX 16384
#define SHA_HEX "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define FW_URL "/api/v1/device/firmware/0123456789abcdef0123456789abcdef"

/* Signing keys made once before the tests (which run in forked children). */
struct tkey {
	mbedtls_pk_context pk;
	struct dsse_key pub;
	char keyid[DSSE_KEYID_LEN];
	char pem[512];
	char pin[CORE_PIN_LEN];       /* computed here, not by core_pin_of */
};
static struct tkey tk[5];
#define KA (&tk[0])
#define KB (&tk[1])
#define KC (&tk[2])
#define KD (&tk[3])
#define KE (&tk[4])

static char why[256];

/* "sha256/" + base64(SHA-256(spki)), with mbedTLS's own base64. */
static void pin_independent(const uint8_t *spki, size_t len, char pin[CORE_PIN_LEN])
{
	uint8_t hash[32];
	size_t n = 0;

	ck_assert_int_eq(mbedtls_sha256_ret(spki, len, hash, 0), 0);
	memcpy(pin, "sha256/", 7);
	ck_assert_int_eq(mbedtls_base64_encode((unsigned char *)pin + 7, CORE_PIN_LEN - 7, &n, hash, sizeof(hash)),
			 0);
	ck_assert_uint_eq(n, 44);
	pin[7 + n] = '\0';
}

static void tkey_make(struct tkey *k, mbedtls_ecp_group_id grp)
{
	uint8_t der[512];
	int n;

	mbedtls_pk_init(&k->pk);
	ck_assert_int_eq(mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
	ck_assert_int_eq(mbedtls_ecp_gen_key(grp, mbedtls_pk_ec(k->pk), rng_callback, NULL), 0);
	n = mbedtls_pk_write_pubkey_der(&k->pk, der, sizeof(der));
	ck_assert_int_gt(n, 0);
	ck_assert_int_le(n, DSSE_SPKI_MAX);
	memcpy(k->pub.spki, der + sizeof(der) - (size_t)n, (size_t)n);
	k->pub.spki_len = (size_t)n;
	ck_assert_int_eq(mbedtls_pk_write_pubkey_pem(&k->pk, (unsigned char *)k->pem, sizeof(k->pem)), 0);
	dsse_keyid(k->pub.spki, k->pub.spki_len, k->keyid);
	pin_independent(k->pub.spki, k->pub.spki_len, k->pin);
}

static void keys_setup(void)
{
	size_t i;

	for (i = 0; i < N_ELEMS(tk); i++)
		tkey_make(&tk[i], MBEDTLS_ECP_DP_SECP256R1);
}

static void keys_teardown(void)
{
	size_t i;

	for (i = 0; i < N_ELEMS(tk); i++)
		mbedtls_pk_free(&tk[i].pk);
}

static enum herr sign_cb(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig, size_t size, size_t *sig_len)
{
	uint8_t hash[32], buf[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	size_t n = 0;

	if (mbedtls_sha256_ret(msg, len, hash, 0) != 0 ||
	    mbedtls_pk_sign(ctx, MBEDTLS_MD_SHA256, hash, sizeof(hash), buf, &n, rng_callback, NULL) != 0 ||
	    n > size)
		return HERR_CRYPTO;
	memcpy(sig, buf, n);
	*sig_len = n;
	return HERR_OK;
}

/* printf into a new buffer of TEXT_MAX bytes (caller frees). */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	char *buf = malloc(TEXT_MAX);
	va_list ap;
	int n;

	ck_assert_ptr_nonnull(buf);
	va_start(ap, f);
	n = vsnprintf(buf, TEXT_MAX, f, ap);
	va_end(ap);
	ck_assert(n >= 0 && n < TEXT_MAX);
	return buf;
}

/* An envelope of body signed by the n keys in ks (a key may come twice); caller frees. */
static char *sign_by(const char *body, const struct tkey *const *ks, size_t n, size_t *len)
{
	struct dsse_signer s[DSSE_SIGS_MAX];
	char *env = NULL;
	size_t i;

	ck_assert_uint_le(n, DSSE_SIGS_MAX);
	memset(s, 0, sizeof(s));
	for (i = 0; i < n; i++) {
		memcpy(s[i].keyid, ks[i]->keyid, sizeof(s[i].keyid));
		s[i].sign = sign_cb;
		s[i].ctx = (void *)&ks[i]->pk;
	}
	ck_assert_int_eq(dsse_sign((const uint8_t *)body, strlen(body), s, n, &env, len), HERR_OK);
	return env;
}

static char *sign1(const char *body, const struct tkey *k, size_t *len)
{
	const struct tkey *ks[] = { k };

	return sign_by(body, ks, 1, len);
}

/* A body: the common fields, then fields (a JSON member list, may be empty). Caller frees. */
static char *body_of(const char *type, const char *device, long long version, long long issued, long long expires,
		     const char *fields)
{
	return fmt("{\"type\":\"%s\",\"device\":\"%s\",\"version\":%lld,\"issued\":%lld,\"expires\":%lld%s%s}", type,
		   device, version, issued, expires, fields[0] ? "," : "", fields);
}

/* The device's trust: keys ks (threshold th), pinned to KE, last versions pins 3, keys 1, firmware 3,
 * security version 2. */
static void trust_init(struct core_trust *t, const struct tkey *const *ks, size_t n, unsigned th)
{
	char keyid[DSSE_KEYID_LEN];
	size_t i;

	memset(t, 0, sizeof(*t));
	snprintf(t->device_id, sizeof(t->device_id), "dev-1");
	snprintf(t->model, sizeof(t->model), "m1");
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(core_add_key(t, ks[i]->pem, strlen(ks[i]->pem), keyid), HERR_OK);
		ck_assert_str_eq(keyid, ks[i]->keyid);
	}
	t->threshold = th;
	memcpy(t->pins[0], KE->pin, CORE_PIN_LEN);
	t->pin_count = 1;
	t->pins_version = 3;
	t->keys_version = 1;
	t->firmware_version_seen = 3;
	snprintf(t->firmware_version, sizeof(t->firmware_version), "1.0.0");
	t->security_version = 2;
}

static void trust_of(struct core_trust *t, const struct tkey *k)
{
	const struct tkey *ks[] = { k };

	trust_init(t, ks, 1, 1);
}

/* core_check of an exactly sized copy of env (len bytes), at NOW. */
static enum herr check_n(const struct core_trust *t, const char *type, const char *env, size_t len,
			 struct core_trust *next, struct core_firmware *fw)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);
	enum herr rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, env, len);
	memset(why, 'x', sizeof(why));
	rc = core_check(t, type, copy, len, NOW, next, fw, why, sizeof(why));
	free(copy);
	ck_assert_ptr_nonnull(memchr(why, '\0', sizeof(why)));
	if (rc == HERR_OK)
		ck_assert_str_eq(why, "");
	else
		ck_assert_msg(why[0] != '\0', "a refusal without a reason");
	return rc;
}

static enum herr check(const struct core_trust *t, const char *type, const char *env, struct core_trust *next,
		       struct core_firmware *fw)
{
	return check_n(t, type, env, strlen(env), next, fw);
}

static void why_has(const char *part)
{
	ck_assert_msg(strstr(why, part) != NULL, "reason \"%s\" lacks \"%s\"", why, part);
}

/* body signed by k, checked as type against t; the result code. */
static enum herr check_body(const struct core_trust *t, const char *type, const char *body, const struct tkey *k,
			    struct core_trust *next, struct core_firmware *fw)
{
	size_t len = 0;
	char *env = sign1(body, k, &len);
	enum herr rc = check(t, type, env, next, fw);

	free(env);
	return rc;
}

/* A pins body of version v listing pins (a JSON array's contents) with current. */
static char *pins_body(long long v, const char *pins, const char *current)
{
	char *fields = fmt("\"pins\":[%s],\"current\":\"%s\",\"next\":\"%s\"", pins, current, current);
	char *b = body_of("pins", "dev-1", v, NOW - 10, LATER, fields);

	free(fields);
	return b;
}

static char *three_pins(void)
{
	return fmt("\"%s\",\"%s\",\"%s\"", KA->pin, KB->pin, KC->pin);
}

/* {"keyid","public_key"} of k, the PEM's newlines escaped. */
static void key_entry(char *out, size_t size, const struct tkey *k, const char *keyid)
{
	size_t i, n = 0;
	int w;

	w = snprintf(out, size, "{\"keyid\":\"%s\",\"public_key\":\"", keyid ? keyid : k->keyid);
	ck_assert(w > 0 && (size_t)w < size);
	n = (size_t)w;
	for (i = 0; k->pem[i]; i++) {
		ck_assert_uint_lt(n + 4, size);
		if (k->pem[i] == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else {
			out[n++] = k->pem[i];
		}
	}
	ck_assert_uint_lt(n + 3, size);
	memcpy(out + n, "\"}", 3);
}

/* A keys body of version v announcing ks with threshold th. */
static char *keys_body(long long v, const struct tkey *const *ks, size_t n, long long th)
{
	char entries[4096], one[1024];
	char *fields, *b;
	size_t i;

	entries[0] = '\0';
	for (i = 0; i < n; i++) {
		key_entry(one, sizeof(one), ks[i], NULL);
		if (i > 0)
			strncat(entries, ",", sizeof(entries) - strlen(entries) - 1);
		ck_assert_uint_lt(strlen(entries) + strlen(one), sizeof(entries) - 1);
		strncat(entries, one, sizeof(entries) - strlen(entries) - 1);
	}
	fields = fmt("\"keys\":[%s],\"threshold\":%lld,\"replaces\":[\"x\"]", entries, th);
	b = body_of("keys", "*", v, NOW - 10, NOW + 10LL * 365 * 86400, fields);
	free(fields);
	return b;
}

/* A full firmware body of version v with the given security version, size and url. */
static char *fw_body(long long v, long long secver, long long size, const char *url)
{
	char *fields = fmt("\"model\":\"m1\",\"release\":\"0123456789abcdef0123456789abcdef\",\"rollout\":\"r-7\","
			   "\"firmware_version\":\"1.2.0+b3\",\"security_version\":%lld,\"sha256\":\"" SHA_HEX "\","
			   "\"size\":%lld,\"url\":\"%s\"", secver, size, url);
	char *b = body_of("firmware", "dev-1", v, NOW - 10, LATER, fields);

	free(fields);
	return b;
}

/* --- pins ------------------------------------------------------------------------------------- */

START_TEST(test_pin_of_matches_independent_pin)
{
	struct core_trust t;
	char pin[CORE_PIN_LEN];
	size_t i;

	for (i = 0; i < N_ELEMS(tk); i++) {
		core_pin_of(tk[i].pub.spki, tk[i].pub.spki_len, pin);
		ck_assert_str_eq(pin, tk[i].pin);
		ck_assert_uint_eq(strlen(pin), CORE_PIN_LEN - 1);
		ck_assert_int_eq(core_pin_valid(pin), 1);
	}
	trust_of(&t, KA);
	memcpy(t.pins[0], KB->pin, CORE_PIN_LEN);
	memcpy(t.pins[1], KC->pin, CORE_PIN_LEN);
	t.pin_count = 2;
	ck_assert_int_eq(core_pin_ok(&t, KB->pub.spki, KB->pub.spki_len), 1);
	ck_assert_int_eq(core_pin_ok(&t, KC->pub.spki, KC->pub.spki_len), 1);
	ck_assert_int_eq(core_pin_ok(&t, KA->pub.spki, KA->pub.spki_len), 0);
	/* one byte more or less is another key */
	ck_assert_int_eq(core_pin_ok(&t, KB->pub.spki, KB->pub.spki_len - 1), 0);
	ck_assert_int_eq(core_pin_ok(&t, NULL, 0), 0);
	/* pins past pin_count do not count; no pins pins nothing */
	t.pin_count = 1;
	ck_assert_int_eq(core_pin_ok(&t, KC->pub.spki, KC->pub.spki_len), 0);
	t.pin_count = 0;
	ck_assert_int_eq(core_pin_ok(&t, KB->pub.spki, KB->pub.spki_len), 0);
	t.pin_count = CORE_PINS_MAX + 1;
	ck_assert_int_eq(core_pin_ok(&t, KB->pub.spki, KB->pub.spki_len), 0);
}
END_TEST

START_TEST(test_pin_valid_refusals)
{
	char pin[CORE_PIN_LEN + 8];
	const char *good = KA->pin;

	ck_assert_int_eq(core_pin_valid(good), 1);
	ck_assert_int_eq(core_pin_valid(NULL), 0);
	ck_assert_int_eq(core_pin_valid(""), 0);
	ck_assert_int_eq(core_pin_valid("sha256/"), 0);
	snprintf(pin, sizeof(pin), "sha1/%.44s", good + 7);
	ck_assert_int_eq(core_pin_valid(pin), 0);
	snprintf(pin, sizeof(pin), "SHA256/%.44s", good + 7);
	ck_assert_int_eq(core_pin_valid(pin), 0);
	snprintf(pin, sizeof(pin), "%.51sA", good);       /* too long */
	ck_assert_int_eq(core_pin_valid(pin), 0);
	snprintf(pin, sizeof(pin), "%.50s", good);       /* no '=' */
	ck_assert_int_eq(core_pin_valid(pin), 0);
	snprintf(pin, sizeof(pin), "%.50sA", good);      /* not padded */
	ck_assert_int_eq(core_pin_valid(pin), 0);
	snprintf(pin, sizeof(pin), "%.51s", good);
	pin[10] = '-';                                   /* base64url is not base64 */
	ck_assert_int_eq(core_pin_valid(pin), 0);
	/* the padding bits of the last character must be zero: A..., then "B=" is not canonical */
	snprintf(pin, sizeof(pin), "sha256/%s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=");
	ck_assert_int_eq(core_pin_valid(pin), 0);
	snprintf(pin, sizeof(pin), "sha256/%s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=");
	ck_assert_int_eq(core_pin_valid(pin), 1);
}
END_TEST

/* --- keys of the trust ------------------------------------------------------------------------ */

START_TEST(test_add_key)
{
	struct tkey p384, *k384 = &p384;
	char keyid[DSSE_KEYID_LEN], *pem;
	struct core_trust t;

	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(core_add_key(&t, KA->pem, strlen(KA->pem), keyid), HERR_OK);
	ck_assert_str_eq(keyid, KA->keyid);
	ck_assert_uint_eq(t.key_count, 1);
	ck_assert_uint_eq(t.keys[0].spki_len, KA->pub.spki_len);
	ck_assert_mem_eq(t.keys[0].spki, KA->pub.spki, KA->pub.spki_len);
	/* the NUL counted is fine; the same key twice is not */
	ck_assert_int_eq(core_add_key(&t, KB->pem, strlen(KB->pem) + 1, NULL), HERR_OK);
	ck_assert_int_eq(core_add_key(&t, KA->pem, strlen(KA->pem), keyid), HERR_EXISTS);
	ck_assert_str_eq(keyid, "");
	/* not P-256, not a key, not only a key */
	tkey_make(k384, MBEDTLS_ECP_DP_SECP384R1);
	ck_assert_int_eq(core_add_key(&t, k384->pem, strlen(k384->pem), keyid), HERR_INVALID);
	mbedtls_pk_free(&k384->pk);
	ck_assert_int_eq(core_add_key(&t, "hello", 5, NULL), HERR_INVALID);
	ck_assert_int_eq(core_add_key(&t, "", 0, NULL), HERR_INVALID);
	pem = fmt("%sjunk\n", KC->pem);
	ck_assert_int_eq(core_add_key(&t, pem, strlen(pem), NULL), HERR_INVALID);
	free(pem);
	pem = fmt("junk\n%s", KC->pem);
	ck_assert_int_eq(core_add_key(&t, pem, strlen(pem), NULL), HERR_INVALID);
	free(pem);
	pem = fmt("%s", KC->pem);
	pem[40] ^= 1; /* another point, most likely not on the curve; never the same key */
	ck_assert_int_ne(core_add_key(&t, pem, strlen(pem), keyid), HERR_OK);
	free(pem);
	ck_assert_int_eq(core_add_key(&t, KC->pem, strlen(KC->pem) - 30, NULL), HERR_INVALID); /* cut */
	ck_assert_uint_eq(t.key_count, 2);
	/* up to CORE_KEYS_MAX */
	ck_assert_int_eq(core_add_key(&t, KC->pem, strlen(KC->pem), NULL), HERR_OK);
	ck_assert_int_eq(core_add_key(&t, KD->pem, strlen(KD->pem), NULL), HERR_OK);
	ck_assert_int_eq(core_add_key(&t, KE->pem, strlen(KE->pem), NULL), HERR_TOOBIG);
	ck_assert_uint_eq(t.key_count, CORE_KEYS_MAX);
}
END_TEST

/* --- pins manifests --------------------------------------------------------------------------- */

START_TEST(test_pins_accepted)
{
	struct core_trust t, next;
	char *pins = three_pins(), *b = pins_body(4, pins, KB->pin);

	trust_of(&t, KA);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_OK);
	ck_assert_uint_eq(next.pin_count, 3);
	ck_assert_str_eq(next.pins[0], KA->pin);
	ck_assert_str_eq(next.pins[1], KB->pin);
	ck_assert_str_eq(next.pins[2], KC->pin);
	ck_assert_str_eq(next.pins[3], "");
	ck_assert_int_eq(next.pins_version, 4);
	/* nothing else moves */
	ck_assert_int_eq(next.keys_version, t.keys_version);
	ck_assert_int_eq(next.firmware_version_seen, t.firmware_version_seen);
	ck_assert_uint_eq(next.key_count, 1);
	ck_assert_mem_eq(next.keys, t.keys, sizeof(t.keys));
	ck_assert_str_eq(next.device_id, "dev-1");
	/* the device now pins the new set */
	ck_assert_int_eq(core_pin_ok(&next, KC->pub.spki, KC->pub.spki_len), 1);
	ck_assert_int_eq(core_pin_ok(&next, KE->pub.spki, KE->pub.spki_len), 0);
	/* next may be the trust itself */
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &t, NULL), HERR_OK);
	ck_assert_int_eq(t.pins_version, 4);
	ck_assert_uint_eq(t.pin_count, 3);
	free(b);
	free(pins);
}
END_TEST

START_TEST(test_addressed_by_id_model_or_star)
{
	static const char *const ok[] = { "dev-1", "m1", "*" };
	static const char *const bad[] = { "dev-2", "", "dev-1 ", "M1", "**", "dev" };
	char *fields = fmt("\"pins\":[\"%s\"],\"current\":\"%s\"", KA->pin, KA->pin), *b;
	struct core_trust t, next;
	size_t i;

	trust_of(&t, KA);
	for (i = 0; i < N_ELEMS(ok); i++) {
		b = body_of("pins", ok[i], 4, NOW, LATER, fields);
		ck_assert_msg(check_body(&t, "pins", b, KA, &next, NULL) == HERR_OK, "%s: %s", ok[i], why);
		free(b);
	}
	for (i = 0; i < N_ELEMS(bad); i++) {
		b = body_of("pins", bad[i], 4, NOW, LATER, fields);
		ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
		why_has("another device");
		free(b);
	}
	free(fields);
}
END_TEST

START_TEST(test_pins_refused)
{
	struct core_trust t, next;
	char *b, *five, bad_pin[CORE_PIN_LEN];

	trust_of(&t, KA);
	b = pins_body(4, "", KA->pin);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	why_has("empty pin set");
	free(b);

	/* a malformed pin: one character short */
	snprintf(bad_pin, sizeof(bad_pin), "%.49s=", KB->pin);
	five = fmt("\"%s\",\"%s\"", KA->pin, bad_pin);
	b = pins_body(4, five, KA->pin);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	why_has("pin 1 is malformed");
	free(b);
	free(five);

	five = fmt("\"%s\",42", KA->pin);
	b = pins_body(4, five, KA->pin);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	why_has("pin 1 is malformed");
	free(b);
	free(five);

	five = fmt("\"%s\",\"%s\",\"%s\"", KA->pin, KB->pin, KA->pin);
	b = pins_body(4, five, KA->pin);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	why_has("twice");
	free(b);
	free(five);

	five = fmt("\"%s\",\"%s\",\"%s\",\"%s\",\"%s\"", KA->pin, KB->pin, KC->pin, KD->pin, KE->pin);
	b = pins_body(4, five, KA->pin);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	why_has("more than 4 pins");
	free(b);
	free(five);

	/* current must be one of them */
	five = fmt("\"%s\",\"%s\"", KA->pin, KB->pin);
	b = pins_body(4, five, KC->pin);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	why_has("current");
	free(b);
	free(five);

	/* no current, pins not an array */
	b = body_of("pins", "dev-1", 4, NOW, LATER, "\"pins\":[]");
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	free(b);
	five = fmt("\"pins\":[\"%s\"]", KA->pin);
	b = body_of("pins", "dev-1", 4, NOW, LATER, five);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	why_has("current");
	free(b);
	free(five);
	five = fmt("\"pins\":\"%s\",\"current\":\"%s\"", KA->pin, KA->pin);
	b = body_of("pins", "dev-1", 4, NOW, LATER, five);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	why_has("\"pins\" is not an array");
	free(b);
	free(five);
}
END_TEST

/* --- the envelope ----------------------------------------------------------------------------- */

START_TEST(test_tampered_payload_refused)
{
	struct core_trust t, next;
	char *pins = three_pins(), *b = pins_body(4, pins, KA->pin), *env, *p;
	size_t len = 0;

	trust_of(&t, KA);
	env = sign1(b, KA, &len);
	ck_assert_int_eq(check(&t, "pins", env, &next, NULL), HERR_OK);
	/* change one base64 character of the payload (to another valid one) */
	p = strstr(env, "\"payload\":\"");
	ck_assert_ptr_nonnull(p);
	p += 11 + 20;
	*p = *p == 'A' ? 'B' : 'A';
	ck_assert_int_eq(check(&t, "pins", env, &next, NULL), HERR_CRYPTO);
	why_has("bad signature");
	free(env);
	free(b);
	free(pins);
}
END_TEST

START_TEST(test_wrong_payload_type_refused)
{
	struct core_trust t, next;
	char *pins = three_pins(), *b = pins_body(4, pins, KA->pin), *env, *p;
	size_t len = 0;

	trust_of(&t, KA);
	env = sign1(b, KA, &len);
	p = strstr(env, "manifest+json");
	ck_assert_ptr_nonnull(p);
	p[9] = 'x'; /* manifest+xson */
	ck_assert_int_eq(check(&t, "pins", env, &next, NULL), HERR_INVALID);
	why_has("payloadType");
	free(env);
	free(b);
	free(pins);
}
END_TEST

/* An envelope with one signature, written by hand: keyid says one key, sig is another's. */
static char *env_forged(const char *body, const struct tkey *named, const struct tkey *signer)
{
	uint8_t *pae = NULL, sig[DSSE_SIG_MAX];
	size_t pae_len = 0, sig_len = 0, n = 0;
	char *payload = NULL, *sig_text = NULL, *env;

	ck_assert_int_eq(dsse_pae((const uint8_t *)body, strlen(body), &pae, &pae_len), HERR_OK);
	ck_assert_int_eq(sign_cb((void *)&signer->pk, pae, pae_len, sig, sizeof(sig), &sig_len), HERR_OK);
	ck_assert_int_eq(dsse_b64_encode(sig, sig_len, &sig_text, &n), HERR_OK);
	ck_assert_int_eq(dsse_b64_encode((const uint8_t *)body, strlen(body), &payload, &n), HERR_OK);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}",
		  DSSE_PAYLOAD_TYPE, payload, named->keyid, sig_text);
	free(pae);
	free(payload);
	free(sig_text);
	return env;
}

START_TEST(test_bad_signature_refused)
{
	struct core_trust t, next;
	char *pins = three_pins(), *b = pins_body(4, pins, KA->pin), *env;

	trust_of(&t, KA);
	/* the hand-made envelope is right when the key is */
	env = env_forged(b, KA, KA);
	ck_assert_int_eq(check(&t, "pins", env, &next, NULL), HERR_OK);
	free(env);
	env = env_forged(b, KA, KB);
	ck_assert_int_eq(check(&t, "pins", env, &next, NULL), HERR_CRYPTO);
	why_has("bad signature");
	free(env);
	free(b);
	free(pins);
}
END_TEST

START_TEST(test_unknown_key_only_refused)
{
	struct core_trust t, next;
	char *pins = three_pins(), *b = pins_body(4, pins, KA->pin);

	trust_of(&t, KA);
	ck_assert_int_eq(check_body(&t, "pins", b, KB, &next, NULL), HERR_CRYPTO);
	why_has("not enough trusted signatures");
	free(b);
	free(pins);
}
END_TEST

START_TEST(test_one_key_counts_once)
{
	const struct tkey *ab[] = { KA, KB }, *aa[] = { KA, KA }, *ac[] = { KA, KC }, *abc[] = { KC, KB, KA };
	struct core_trust t, next;
	char *pins = three_pins(), *b = pins_body(4, pins, KA->pin), *env;
	size_t len = 0;

	trust_init(&t, ab, 2, 2);
	env = sign_by(b, aa, 2, &len);
	ck_assert_int_eq(check(&t, "pins", env, &next, NULL), HERR_CRYPTO);
	why_has("not enough trusted signatures");
	free(env);
	env = sign_by(b, ac, 2, &len);
	ck_assert_int_eq(check(&t, "pins", env, &next, NULL), HERR_CRYPTO);
	why_has("not enough trusted signatures");
	free(env);
	env = sign_by(b, ab, 2, &len);
	ck_assert_int_eq(check(&t, "pins", env, &next, NULL), HERR_OK);
	free(env);
	/* an extra signature by an unknown key is ignored */
	env = sign_by(b, abc, 3, &len);
	ck_assert_int_eq(check(&t, "pins", env, &next, NULL), HERR_OK);
	free(env);
	free(b);
	free(pins);
}
END_TEST

START_TEST(test_every_truncation_refused)
{
	struct core_trust t, next;
	char *pins = three_pins(), *b = pins_body(4, pins, KA->pin), *env;
	size_t len = 0, n;
	int64_t v;

	trust_of(&t, KA);
	env = sign1(b, KA, &len);
	for (n = 0; n < len; n++) {
		ck_assert_int_ne(check_n(&t, "pins", env, n, &next, NULL), HERR_OK);
		(void)core_peek_version((const uint8_t *)env, n, &v);
	}
	ck_assert_int_eq(check_n(&t, "pins", env, len, &next, NULL), HERR_OK);
	free(env);
	free(b);
	free(pins);
}
END_TEST

/* --- the common fields ------------------------------------------------------------------------ */

START_TEST(test_expired_and_future_refused)
{
	struct core_trust t, next;
	char *fields = fmt("\"pins\":[\"%s\"],\"current\":\"%s\"", KA->pin, KA->pin), *b;

	trust_of(&t, KA);
	b = body_of("pins", "dev-1", 4, NOW - 100, NOW, fields);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	why_has("expired");
	free(b);
	b = body_of("pins", "dev-1", 4, NOW - 100, NOW + 1, fields);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_OK);
	free(b);
	b = body_of("pins", "dev-1", 4, NOW + CORE_SKEW_S, LATER, fields);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_OK);
	free(b);
	b = body_of("pins", "dev-1", 4, NOW + CORE_SKEW_S + 1, LATER, fields);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	why_has("future");
	free(b);
	free(fields);
}
END_TEST

START_TEST(test_replay_and_rollback_refused)
{
	struct core_trust t, next;
	char *fields = fmt("\"pins\":[\"%s\"],\"current\":\"%s\"", KA->pin, KA->pin), *b;

	trust_of(&t, KA);
	b = body_of("pins", "dev-1", 3, NOW, LATER, fields); /* the one applied last */
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_STATE);
	why_has("version 3 is not above 3");
	free(b);
	b = body_of("pins", "dev-1", 2, NOW, LATER, fields);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_STATE);
	why_has("rollback or replay");
	free(b);
	b = body_of("pins", "dev-1", 0, NOW, LATER, fields);
	ck_assert_int_ne(check_body(&t, "pins", b, KA, &next, NULL), HERR_OK);
	free(b);
	/* pins and firmware may skip versions (they count for the whole installation) */
	b = body_of("pins", "dev-1", 9, NOW, LATER, fields);
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_OK);
	ck_assert_int_eq(next.pins_version, 9);
	/* applied, the same manifest is a replay */
	ck_assert_int_eq(check_body(&next, "pins", b, KA, &t, NULL), HERR_STATE);
	free(b);
	free(fields);
}
END_TEST

START_TEST(test_wrong_type_refused)
{
	struct core_trust t, next;
	char *pins = three_pins(), *b = pins_body(4, pins, KA->pin);

	trust_of(&t, KA);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, NULL), HERR_INVALID);
	why_has("not a firmware manifest");
	t.keys_version = 3;
	ck_assert_int_eq(check_body(&t, "keys", b, KA, &next, NULL), HERR_INVALID);
	why_has("not a keys manifest");
	ck_assert_int_eq(check_body(&t, "secrets", b, KA, &next, NULL), HERR_INVALID);
	ck_assert_int_eq(check_body(&t, "PINS", b, KA, &next, NULL), HERR_INVALID);
	free(b);
	free(pins);
}
END_TEST

START_TEST(test_body_form)
{
	static const char *const bad[] = {
		"[]", "\"pins\"", "{}", "{\"type\":\"pins\"}",
		/* duplicate key, even signed */
		"{\"type\":\"pins\",\"type\":\"pins\",\"device\":\"dev-1\",\"version\":4,\"issued\":1,\"expires\":1900000000}",
		/* version not an integer */
		"{\"type\":\"pins\",\"device\":\"dev-1\",\"version\":4.0,\"issued\":1,\"expires\":1900000000}",
		"{\"type\":\"pins\",\"device\":\"dev-1\",\"version\":\"4\",\"issued\":1,\"expires\":1900000000}",
		"{\"type\":\"pins\",\"device\":\"dev-1\",\"version\":4e0,\"issued\":1,\"expires\":1900000000}",
		"{\"type\":\"pins\",\"device\":\"dev-1\",\"version\":99999999999999999999,\"issued\":1,\"expires\":1}",
		/* no issued, no expires */
		"{\"type\":\"pins\",\"device\":\"dev-1\",\"version\":4,\"expires\":1900000000}",
		"{\"type\":\"pins\",\"device\":\"dev-1\",\"version\":4,\"issued\":1}",
		/* trailing bytes after the body */
		"{\"type\":\"pins\",\"device\":\"dev-1\",\"version\":4,\"issued\":1,\"expires\":1900000000} x",
		/* device with a NUL */
		"{\"type\":\"pins\",\"device\":\"dev-1\\u0000\",\"version\":4,\"issued\":1,\"expires\":1900000000}",
	};
	struct core_trust t, next;
	char *fields, *b;
	size_t i;

	trust_of(&t, KA);
	for (i = 0; i < N_ELEMS(bad); i++)
		ck_assert_msg(check_body(&t, "pins", bad[i], KA, &next, NULL) == HERR_INVALID, "accepted %s", bad[i]);
	/* unknown fields, escapes and whitespace are fine */
	fields = fmt("\"pins\" : [ \"%s\" ] , \"cur\\u0072ent\":\"%s\",\"note\":{\"a\":[1,2.5,null,true]}",
		     KA->pin, KA->pin);
	b = body_of("pins", "dev\\u002d1", 4, NOW, LATER, fields);
	ck_assert_msg(check_body(&t, "pins", b, KA, &next, NULL) == HERR_OK, "%s", why);
	free(b);
	free(fields);
}
END_TEST

START_TEST(test_trust_form)
{
	struct core_trust t, next;
	char *pins = three_pins(), *b = pins_body(4, pins, KA->pin);

	trust_of(&t, KA);
	t.key_count = 0;
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	trust_of(&t, KA);
	t.threshold = 2;
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	trust_of(&t, KA);
	t.keys[0].spki[30] ^= 0xff;
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_INVALID);
	/* a threshold of 0 counts as 1, as in dsse_verify */
	trust_of(&t, KA);
	t.threshold = 0;
	ck_assert_int_eq(check_body(&t, "pins", b, KA, &next, NULL), HERR_OK);
	ck_assert_int_eq(core_check(&t, "pins", NULL, 0, NOW, &next, NULL, NULL, 0), HERR_INVALID);
	free(b);
	free(pins);
}
END_TEST

/* --- keys manifests --------------------------------------------------------------------------- */

START_TEST(test_keys_walk)
{
	const struct tkey *ab[] = { KA, KB }, *bc[] = { KB, KC }, *cd[] = { KC, KD }, *ac[] = { KA, KC };
	const struct tkey *b1[] = { KB }, *c1[] = { KC }, *d1[] = { KD };
	struct core_trust t, next;
	char *v1 = keys_body(1, b1, 1, 1), *v2 = keys_body(2, c1, 1, 1), *v3 = keys_body(3, d1, 1, 1);
	char *e1, *e2, *e3, *skip, *pins = three_pins(), *pb = pins_body(4, pins, KA->pin);
	size_t len = 0;

	trust_of(&t, KA);
	t.keys_version = 0;
	e1 = sign_by(v1, ab, 2, &len);
	e2 = sign_by(v2, bc, 2, &len);
	e3 = sign_by(v3, cd, 2, &len);
	/* out of order: a skip (even signed by a key trusted now); one not signed by one is not even read */
	ck_assert_int_eq(check(&t, "keys", e2, &next, NULL), HERR_CRYPTO);
	skip = sign_by(v2, ac, 2, &len);
	ck_assert_int_eq(check(&t, "keys", skip, &next, NULL), HERR_INVALID);
	why_has("skips from 0 to 2");
	free(skip);
	ck_assert_int_eq(check(&t, "keys", e1, &next, NULL), HERR_OK);
	ck_assert_int_eq(next.keys_version, 1);
	ck_assert_uint_eq(next.key_count, 1);
	ck_assert_uint_eq(next.threshold, 1);
	ck_assert_mem_eq(next.keys[0].spki, KB->pub.spki, KB->pub.spki_len);
	ck_assert_int_eq(next.pins_version, t.pins_version);
	t = next;
	/* ka is no longer trusted */
	ck_assert_int_eq(check_body(&t, "pins", pb, KA, &next, NULL), HERR_CRYPTO);
	ck_assert_int_eq(check_body(&t, "pins", pb, KB, &next, NULL), HERR_OK);
	ck_assert_int_eq(check(&t, "keys", e1, &next, NULL), HERR_STATE); /* kb signed it too: a replay */
	ck_assert_int_eq(check(&t, "keys", e2, &next, NULL), HERR_OK);
	t = next;
	ck_assert_int_eq(check(&t, "keys", e2, &next, NULL), HERR_STATE);
	why_has("not above");
	ck_assert_int_eq(check(&t, "keys", e3, &next, NULL), HERR_OK);
	t = next;
	ck_assert_int_eq(t.keys_version, 3);
	ck_assert_uint_eq(t.key_count, 1);
	ck_assert_mem_eq(t.keys[0].spki, KD->pub.spki, KD->pub.spki_len);
	ck_assert_int_eq(check_body(&t, "pins", pb, KD, &next, NULL), HERR_OK);
	ck_assert_int_eq(check_body(&t, "pins", pb, KC, &next, NULL), HERR_CRYPTO);
	free(e1);
	free(e2);
	free(e3);
	free(v1);
	free(v2);
	free(v3);
	free(pb);
	free(pins);
}
END_TEST

START_TEST(test_keys_two_announced_threshold_two)
{
	const struct tkey *abc[] = { KA, KB, KC }, *bc[] = { KB, KC }, *ab[] = { KA, KB };
	struct core_trust t, next;
	char *v = keys_body(2, bc, 2, 2), *pins = three_pins(), *pb = pins_body(4, pins, KA->pin), *env;
	size_t len = 0;

	trust_of(&t, KA);
	env = sign_by(v, abc, 3, &len);
	ck_assert_int_eq(check(&t, "keys", env, &next, NULL), HERR_OK);
	free(env);
	ck_assert_uint_eq(next.key_count, 2);
	ck_assert_uint_eq(next.threshold, 2);
	/* one of the two announced did not sign */
	env = sign_by(v, ab, 2, &len);
	ck_assert_int_eq(check(&t, "keys", env, &next, NULL), HERR_CRYPTO);
	why_has("every announced key");
	free(env);
	free(v);
	free(pb);
	free(pins);
}
END_TEST

START_TEST(test_keys_skip_refused)
{
	const struct tkey *ab[] = { KA, KB }, *b1[] = { KB };
	struct core_trust t, next;
	char *v = keys_body(3, b1, 1, 1), *env;
	size_t len = 0;

	trust_of(&t, KA); /* keys_version 1 */
	env = sign_by(v, ab, 2, &len);
	ck_assert_int_eq(check(&t, "keys", env, &next, NULL), HERR_INVALID);
	ck_assert_str_eq(why, "keys version skips from 1 to 3");
	free(env);
	free(v);
}
END_TEST

START_TEST(test_keys_not_signed_by_announced_refused)
{
	const struct tkey *b1[] = { KB };
	struct core_trust t, next;
	char *v = keys_body(2, b1, 1, 1);

	trust_of(&t, KA);
	ck_assert_int_eq(check_body(&t, "keys", v, KA, &next, NULL), HERR_CRYPTO);
	why_has("not signed by every announced key");
	/* signed by the announced key alone: not by a key trusted now */
	ck_assert_int_eq(check_body(&t, "keys", v, KB, &next, NULL), HERR_CRYPTO);
	why_has("not enough trusted signatures");
	free(v);
}
END_TEST

START_TEST(test_keys_refused)
{
	const struct tkey *ab[] = { KA, KB }, *b1[] = { KB }, *bb[] = { KB, KB };
	const struct tkey *five[] = { KA, KB, KC, KD, KE };
	struct core_trust t, next;
	char one[1024], *fields, *v, *env;
	size_t len = 0;

	trust_of(&t, KA);
	/* threshold 0, above the count, not an integer */
	v = keys_body(2, b1, 1, 0);
	env = sign_by(v, ab, 2, &len);
	ck_assert_int_eq(check(&t, "keys", env, &next, NULL), HERR_INVALID);
	why_has("threshold");
	free(env);
	free(v);
	v = keys_body(2, b1, 1, 2);
	env = sign_by(v, ab, 2, &len);
	ck_assert_int_eq(check(&t, "keys", env, &next, NULL), HERR_INVALID);
	why_has("threshold");
	free(env);
	free(v);
	/* the same key twice */
	v = keys_body(2, bb, 2, 1);
	env = sign_by(v, ab, 2, &len);
	ck_assert_int_eq(check(&t, "keys", env, &next, NULL), HERR_INVALID);
	why_has("twice");
	free(env);
	free(v);
	/* more than CORE_KEYS_MAX */
	v = keys_body(2, five, 5, 1);
	env = sign_by(v, five, 5, &len);
	ck_assert_int_eq(check(&t, "keys", env, &next, NULL), HERR_INVALID);
	why_has("more than");
	free(env);
	free(v);
	/* none */
	v = body_of("keys", "*", 2, NOW, LATER, "\"keys\":[],\"threshold\":1");
	ck_assert_int_eq(check_body(&t, "keys", v, KA, &next, NULL), HERR_INVALID);
	why_has("empty key set");
	free(v);
	/* a keyid that is not the key's */
	key_entry(one, sizeof(one), KB, KC->keyid);
	fields = fmt("\"keys\":[%s],\"threshold\":1", one);
	v = body_of("keys", "*", 2, NOW, LATER, fields);
	env = sign_by(v, ab, 2, &len);
	ck_assert_int_eq(check(&t, "keys", env, &next, NULL), HERR_INVALID);
	why_has("does not match");
	free(env);
	free(v);
	free(fields);
	/* not a key */
	fields = fmt("\"keys\":[{\"keyid\":\"%s\",\"public_key\":\"nope\"}],\"threshold\":1", KB->keyid);
	v = body_of("keys", "*", 2, NOW, LATER, fields);
	env = sign_by(v, ab, 2, &len);
	ck_assert_int_eq(check(&t, "keys", env, &next, NULL), HERR_INVALID);
	why_has("not a P-256 public key");
	free(env);
	free(v);
	free(fields);
}
END_TEST

/* --- firmware manifests ----------------------------------------------------------------------- */

START_TEST(test_firmware_accepted)
{
	struct core_trust t, next;
	struct core_firmware fw;
	char *b = fw_body(4, 2, 123456, FW_URL);

	trust_of(&t, KA);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_OK);
	ck_assert_int_eq(fw.cancel, 0);
	ck_assert_str_eq(fw.release, "0123456789abcdef0123456789abcdef");
	ck_assert_str_eq(fw.rollout, "r-7");
	ck_assert_str_eq(fw.firmware_version, "1.2.0+b3");
	ck_assert_int_eq(fw.security_version, 2);
	ck_assert_str_eq(fw.sha256, SHA_HEX);
	ck_assert_uint_eq(fw.size, 123456);
	ck_assert_str_eq(fw.url, FW_URL);
	ck_assert_int_eq(next.firmware_version_seen, 4);
	/* only that moves: installing sets firmware and security version later */
	ck_assert_str_eq(next.firmware_version, "1.0.0");
	ck_assert_int_eq(next.security_version, 2);
	ck_assert_int_eq(next.pins_version, t.pins_version);
	ck_assert_int_eq(next.keys_version, t.keys_version);
	free(b);
	/* a higher security version, the largest image; and fw may be NULL */
	b = fw_body(5, 7, (long long)CORE_IMAGE_MAX, FW_URL);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_OK);
	ck_assert_uint_eq(fw.size, CORE_IMAGE_MAX);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, NULL), HERR_OK);
	free(b);
}
END_TEST

START_TEST(test_firmware_refused)
{
	static const char *const bad_urls[] = {
		"/api/v1/device/firmware/", "/api/v1/device/firmware/../../admin", "/api/v1/device/firmware/a//b",
		"/api/v1/device/firmware/a/", "/api/v1/device/firmware/./a", "/api/v1/device/firmwarex",
		"https://evil/api/v1/device/firmware/a", "/api/v1/device/firmware/a?b=c", "/api/v1/device/firmware/a b",
		"/api/v1/device/firmware/a%2f", "/API/v1/device/firmware/a",
	};
	struct core_trust t, next;
	struct core_firmware fw;
	char url[CORE_URL_MAX + 2], *b, *fields;
	size_t i;

	trust_of(&t, KA);
	b = fw_body(4, 1, 100, FW_URL);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	why_has("rollback");
	free(b);
	b = fw_body(3, 2, 100, FW_URL);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_STATE);
	free(b);
	b = fw_body(4, 2, 0, FW_URL);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	why_has("size");
	free(b);
	b = fw_body(4, 2, (long long)CORE_IMAGE_MAX + 1, FW_URL);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	free(b);
	for (i = 0; i < N_ELEMS(bad_urls); i++) {
		b = fw_body(4, 2, 100, bad_urls[i]);
		ck_assert_msg(check_body(&t, "firmware", b, KA, &next, &fw) == HERR_INVALID, "accepted %s", bad_urls[i]);
		free(b);
	}
	/* the longest url is fine, one more is not */
	memset(url, 'a', sizeof(url));
	memcpy(url, FW_URL, strlen(FW_URL));
	url[CORE_URL_MAX] = '\0';
	b = fw_body(4, 2, 100, url);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_OK);
	free(b);
	url[CORE_URL_MAX] = 'a';
	url[CORE_URL_MAX + 1] = '\0';
	b = fw_body(4, 2, 100, url);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	free(b);
	/* another model, an upper-case hash, a bad version string */
	fields = fmt("\"model\":\"m2\",\"release\":\"r\",\"rollout\":\"r\",\"firmware_version\":\"1\","
		     "\"security_version\":2,\"sha256\":\"" SHA_HEX "\",\"size\":1,\"url\":\"" FW_URL "\"");
	b = body_of("firmware", "*", 4, NOW, LATER, fields);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	why_has("another model");
	free(b);
	free(fields);
	fields = fmt("\"model\":\"m1\",\"release\":\"r\",\"rollout\":\"r\",\"firmware_version\":\"1\","
		     "\"security_version\":2,\"sha256\":\"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\","
		     "\"size\":1,\"url\":\"" FW_URL "\"");
	b = body_of("firmware", "*", 4, NOW, LATER, fields);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	why_has("sha256");
	free(b);
	free(fields);
	fields = fmt("\"model\":\"m1\",\"release\":\"r\",\"rollout\":\"r\",\"firmware_version\":\"1 0\","
		     "\"security_version\":2,\"sha256\":\"" SHA_HEX "\",\"size\":1,\"url\":\"" FW_URL "\"");
	b = body_of("firmware", "*", 4, NOW, LATER, fields);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	why_has("firmware_version");
	free(b);
	free(fields);
	fields = fmt("\"model\":\"m1\",\"release\":\"r\",\"rollout\":\"r\",\"firmware_version\":\"1\","
		     "\"security_version\":2,\"sha256\":\"" SHA_HEX "\",\"size\":1");
	b = body_of("firmware", "*", 4, NOW, LATER, fields);
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	free(b);
	free(fields);
}
END_TEST

START_TEST(test_firmware_cancel)
{
	struct core_trust t, next;
	struct core_firmware fw;
	char *b;

	trust_of(&t, KA);
	b = body_of("firmware", "dev-1", 6, NOW, LATER, "\"cancel\":true,\"model\":\"m1\",\"rollout\":\"r-7\"");
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_OK);
	ck_assert_int_eq(fw.cancel, 1);
	ck_assert_str_eq(fw.rollout, "r-7");
	ck_assert_str_eq(fw.url, "");
	ck_assert_int_eq(next.firmware_version_seen, 6);
	free(b);
	b = body_of("firmware", "dev-1", 6, NOW, LATER, "\"cancel\":false,\"model\":\"m1\",\"rollout\":\"r-7\"");
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	why_has("cancel");
	free(b);
	b = body_of("firmware", "dev-1", 6, NOW, LATER, "\"cancel\":1,\"model\":\"m1\",\"rollout\":\"r-7\"");
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	free(b);
	b = body_of("firmware", "dev-1", 6, NOW, LATER, "\"cancel\":true,\"model\":\"m2\",\"rollout\":\"r-7\"");
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	free(b);
	b = body_of("firmware", "dev-1", 6, NOW, LATER, "\"cancel\":true,\"model\":\"m1\"");
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_INVALID);
	why_has("rollout");
	free(b);
	/* an old cancel is as much a replay as an old offer */
	b = body_of("firmware", "dev-1", 3, NOW, LATER, "\"cancel\":true,\"model\":\"m1\",\"rollout\":\"r-7\"");
	ck_assert_int_eq(check_body(&t, "firmware", b, KA, &next, &fw), HERR_STATE);
	free(b);
}
END_TEST

/* --- core_peek_version ------------------------------------------------------------------------ */

static enum herr peek(const char *env, int64_t *version)
{
	size_t len = strlen(env);
	uint8_t *copy = malloc(len > 0 ? len : 1);
	enum herr rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, env, len);
	rc = core_peek_version(copy, len, version);
	free(copy);
	return rc;
}

START_TEST(test_peek_version)
{
	const struct tkey *b1[] = { KB };
	char *v = keys_body(7, b1, 1, 1), *env;
	size_t len = 0;
	int64_t version = -1;

	/* signed by nobody the device trusts: peek does not care */
	env = sign1(v, KC, &len);
	ck_assert_int_eq(core_peek_version((const uint8_t *)env, len, &version), HERR_OK);
	ck_assert_int_eq(version, 7);
	free(env);
	ck_assert_int_eq(peek("{}", &version), HERR_INVALID);
	ck_assert_int_eq(peek("", &version), HERR_INVALID);
	ck_assert_int_eq(peek("{\"payload\":\"e30=\"}", &version), HERR_INVALID); /* {} */
	ck_assert_int_eq(peek("{\"payload\":\"eyJ2ZXJzaW9uIjo1fQ==\"}", &version), HERR_OK); /* {"version":5} */
	ck_assert_int_eq(version, 5);
	ck_assert_int_eq(peek("{\"payload\":\"eyJ2ZXJzaW9uIjo1LjV9\"}", &version), HERR_INVALID); /* 5.5 */
	ck_assert_int_eq(peek("{\"payload\":\"not base64\"}", &version), HERR_INVALID);
	ck_assert_int_eq(peek("{\"payload\":5}", &version), HERR_INVALID);
	ck_assert_int_eq(core_peek_version((const uint8_t *)"{}", 2, NULL), HERR_INVALID);
	free(v);
}
END_TEST

/* --- device/json ------------------------------------------------------------------------------ */

static struct djson_token toks[256];
static struct djson_doc jdoc;

/* djson_parse of an exactly sized copy of text, with max tokens. */
static enum herr jparse_max(const char *text, size_t len, size_t max)
{
	static uint8_t *copy;
	enum herr rc;

	free(copy); /* the last document's text lives until the next parse */
	copy = malloc(len > 0 ? len : 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, len);
	memset(why, 'x', sizeof(why));
	rc = djson_parse(copy, len, toks, max, &jdoc, why, sizeof(why));
	ck_assert_ptr_nonnull(memchr(why, '\0', sizeof(why)));
	if (rc != HERR_OK) {
		ck_assert_msg(why[0] != '\0', "a refusal without a reason");
		ck_assert_uint_eq(jdoc.count, 0);
	}
	return rc;
}

static enum herr jparse(const char *text)
{
	return jparse_max(text, strlen(text), N_ELEMS(toks));
}

START_TEST(test_json_accepts)
{
	static const char *const good[] = {
		"{}", "[]", "0", "-0", "1.5e+10", "-12.0E-3", "\"\"", "true", "false", "null", " \t\r\n{ } ",
		"{\"a\":[1,{\"b\":null}],\"c\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}",
		"\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "[[[[[[[[]]]]]]]]",
		"{\"a\":1,\"A\":2,\"a \":3}",
	};
	size_t i;

	for (i = 0; i < N_ELEMS(good); i++)
		ck_assert_msg(jparse(good[i]) == HERR_OK, "refused %s: %s", good[i], why);
}
END_TEST

START_TEST(test_json_refuses)
{
	static const char *const bad[] = {
		"", " ", "{", "}", "[", "[1,]", "{\"a\":1,}", "{,}", "[,1]", "{\"a\"}", "{\"a\":}", "{a:1}",
		"{'a':1}", "01", "-01", "00", "1.", ".5", "-", "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "tru",
		"nul", "True", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"",
		"\"\\ud800\\u0041\"", "\"a\tb\"", "\"a\nb\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"",
		"\"\xf4\x90\x80\x80\"", "\"\xff\"", "\"\xc3\"", "\"\x80\"", "{} {}", "{}x", "[1] 2", "1 2",
		"{\"a\":1 \"b\":2}", "[1 2]", "\"\\'\"",
	};
	size_t i;

	for (i = 0; i < N_ELEMS(bad); i++)
		ck_assert_msg(jparse(bad[i]) != HERR_OK, "accepted %s", bad[i]);
	/* a NUL in the middle */
	ck_assert_int_ne(jparse_max("\"a\0b\"", 5, N_ELEMS(toks)), HERR_OK);
	ck_assert_int_ne(jparse_max("{}\0", 3, N_ELEMS(toks)), HERR_OK);
}
END_TEST

START_TEST(test_json_duplicate_keys)
{
	static const char *const bad[] = {
		"{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":1,\"\\u0061\":2}", "{\"\\/\":1,\"/\":2}",
		"{\"x\":{\"k\":[1,{\"z\":1}],\"k\":2}}", "[{\"q\":1},{\"q\":1,\"q\":1}]",
		"{\"\xc3\xa9\":1,\"\\u00e9\":2}", "{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}",
	};
	size_t i;

	for (i = 0; i < N_ELEMS(bad); i++) {
		ck_assert_msg(jparse(bad[i]) == HERR_INVALID, "accepted %s", bad[i]);
		why_has("duplicate key");
	}
	/* the same key in different objects is fine */
	ck_assert_int_eq(jparse("{\"a\":{\"a\":{\"a\":1}},\"b\":[{\"a\":1},{\"a\":2}]}"), HERR_OK);
}
END_TEST

START_TEST(test_json_depth_and_count)
{
	char deep[64];
	size_t i;

	/* 8 levels are fine, 9 are not, whatever the kind */
	for (i = 0; i < 8; i++) {
		deep[i] = '[';
		deep[8 + i] = ']';
	}
	deep[16] = '\0';
	ck_assert_int_eq(jparse(deep), HERR_OK);
	ck_assert_int_eq(jparse("[{\"a\":[{\"a\":[{\"a\":[{\"a\":1}]}]}]}]"), HERR_OK);
	ck_assert_int_eq(jparse("[[[[[[[[[]]]]]]]]]"), HERR_TOOBIG);
	why_has("deeper");
	ck_assert_int_eq(jparse("{\"a\":[{\"a\":[{\"a\":[{\"a\":[{}]}]}]}]}"), HERR_TOOBIG);
	for (i = 0; i < 60; i++)
		deep[i] = '[';
	deep[60] = '\0';
	ck_assert_int_eq(jparse(deep), HERR_TOOBIG);
	/* token bound */
	ck_assert_int_eq(jparse_max("[1,2,3]", 7, 4), HERR_OK);
	ck_assert_uint_eq(jdoc.count, 4);
	ck_assert_int_eq(jparse_max("[1,2,3]", 7, 3), HERR_TOOBIG);
	ck_assert_int_eq(jparse_max("{\"a\":1}", 7, 2), HERR_TOOBIG);
	ck_assert_int_eq(jparse_max("1", 1, 0), HERR_TOOBIG);
	ck_assert_int_eq(djson_parse((const uint8_t *)"1", 1, NULL, 4, &jdoc, NULL, 0), HERR_TOOBIG);
}
END_TEST

START_TEST(test_json_every_truncation_refused)
{
	const char *doc = "{\"type\" : \"keys\", \"n\": [1, -2.5e3, true, false, null, {\"x\": \"\\u00e9\\ud83d\\ude00\"}], "
			  "\"s\":\"h\xc3\xa9\"}";
	size_t n, len = strlen(doc);

	ck_assert_int_eq(jparse(doc), HERR_OK);
	for (n = 0; n < len; n++)
		ck_assert_msg(jparse_max(doc, n, N_ELEMS(toks)) != HERR_OK, "accepted the first %zu bytes", n);
}
END_TEST

START_TEST(test_json_tokens)
{
	const char *doc = "{\"a\": [1, {\"b\": 2}, \"x\"], \"c\": true}";
	struct djson_iter it;
	size_t v, e, seen = 0;

	ck_assert_int_eq(jparse(doc), HERR_OK);
	/* {, "a", [, 1, {, "b", 2, "x", "c", true */
	ck_assert_uint_eq(jdoc.count, 10);
	ck_assert_int_eq(toks[0].type, DJSON_OBJECT);
	ck_assert_uint_eq(toks[0].size, 2);
	ck_assert_uint_eq(toks[0].start, 0);
	ck_assert_uint_eq(toks[0].end, strlen(doc));
	ck_assert_uint_eq(toks[0].next, 10);
	ck_assert_int_eq(toks[1].type, DJSON_STRING);
	ck_assert_uint_eq(toks[1].start, 2);
	ck_assert_uint_eq(toks[1].end, 3);
	ck_assert_int_eq(toks[2].type, DJSON_ARRAY);
	ck_assert_uint_eq(toks[2].size, 3);
	ck_assert_uint_eq(toks[2].next, 8);
	ck_assert_int_eq(toks[4].type, DJSON_OBJECT);
	ck_assert_uint_eq(toks[4].next, 7);
	ck_assert_int_eq(djson_find(&jdoc, 0, "c", &v), HERR_OK);
	ck_assert_uint_eq(v, 9);
	ck_assert_int_eq(djson_find(&jdoc, 0, "b", &v), HERR_NOTFOUND); /* not a member of the top */
	ck_assert_int_eq(djson_find(&jdoc, 2, "a", &v), HERR_INVALID);  /* not an object */
	ck_assert_int_eq(djson_find(&jdoc, 99, "a", &v), HERR_INVALID);
	djson_iter_init(&jdoc, 2, &it);
	while (djson_iter_next(&jdoc, &it, &e)) {
		static const size_t want[] = { 3, 4, 7 };

		ck_assert_uint_lt(seen, 3);
		ck_assert_uint_eq(e, want[seen]);
		seen++;
	}
	ck_assert_uint_eq(seen, 3);
	djson_iter_init(&jdoc, 0, &it); /* not an array: nothing */
	ck_assert_int_eq(djson_iter_next(&jdoc, &it, &e), 0);
}
END_TEST

START_TEST(test_json_values)
{
	const char *doc = "{\"s\":\"a\\u00e9\\ud83d\\ude00\\n\",\"z\":\"a\\u0000b\",\"i\":9223372036854775807,"
			  "\"m\":-9223372036854775808,\"o\":9223372036854775808,\"u\":-9223372036854775809,"
			  "\"f\":1.0,\"e\":1e3,\"t\":true,\"n\":null,\"neg0\":-0,\"k\\u00e9y\":1}";
	char buf[16];
	size_t v, len = 0;
	int64_t x = 0;
	int b = -1;

	ck_assert_int_eq(jparse(doc), HERR_OK);
	ck_assert_int_eq(djson_find(&jdoc, 0, "s", &v), HERR_OK);
	ck_assert_int_eq(djson_string(&jdoc, v, buf, sizeof(buf), &len), HERR_OK);
	ck_assert_str_eq(buf, "a\xc3\xa9\xf0\x9f\x98\x80\n");
	ck_assert_uint_eq(len, 8);
	ck_assert_int_eq(djson_string_is(&jdoc, v, "a\xc3\xa9\xf0\x9f\x98\x80\n"), 1);
	ck_assert_int_eq(djson_string_is(&jdoc, v, "a\xc3\xa9\xf0\x9f\x98\x80"), 0);
	ck_assert_int_eq(djson_string(&jdoc, v, buf, 9, &len), HERR_OK);
	ck_assert_int_eq(djson_string(&jdoc, v, buf, 8, &len), HERR_TOOBIG);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(djson_string(&jdoc, v, buf, 0, &len), HERR_TOOBIG);
	ck_assert_int_eq(djson_find(&jdoc, 0, "z", &v), HERR_OK);
	ck_assert_int_eq(djson_string(&jdoc, v, buf, sizeof(buf), &len), HERR_INVALID);
	ck_assert_int_eq(djson_find(&jdoc, 0, "i", &v), HERR_OK);
	ck_assert_int_eq(djson_int64(&jdoc, v, &x), HERR_OK);
	ck_assert_int_eq(x, INT64_MAX);
	ck_assert_int_eq(djson_string(&jdoc, v, buf, sizeof(buf), &len), HERR_INVALID);
	ck_assert_int_eq(djson_find(&jdoc, 0, "m", &v), HERR_OK);
	ck_assert_int_eq(djson_int64(&jdoc, v, &x), HERR_OK);
	ck_assert_int_eq(x, INT64_MIN);
	ck_assert_int_eq(djson_find(&jdoc, 0, "o", &v), HERR_OK);
	ck_assert_int_eq(djson_int64(&jdoc, v, &x), HERR_TOOBIG);
	ck_assert_int_eq(djson_find(&jdoc, 0, "u", &v), HERR_OK);
	ck_assert_int_eq(djson_int64(&jdoc, v, &x), HERR_TOOBIG);
	ck_assert_int_eq(djson_find(&jdoc, 0, "f", &v), HERR_OK);
	ck_assert_int_eq(djson_int64(&jdoc, v, &x), HERR_INVALID);
	ck_assert_int_eq(djson_find(&jdoc, 0, "e", &v), HERR_OK);
	ck_assert_int_eq(djson_int64(&jdoc, v, &x), HERR_INVALID);
	ck_assert_int_eq(djson_find(&jdoc, 0, "neg0", &v), HERR_OK);
	ck_assert_int_eq(djson_int64(&jdoc, v, &x), HERR_OK);
	ck_assert_int_eq(x, 0);
	ck_assert_int_eq(djson_find(&jdoc, 0, "t", &v), HERR_OK);
	ck_assert_int_eq(djson_bool(&jdoc, v, &b), HERR_OK);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(djson_int64(&jdoc, v, &x), HERR_INVALID);
	ck_assert_int_eq(djson_find(&jdoc, 0, "n", &v), HERR_OK);
	ck_assert_int_eq(djson_bool(&jdoc, v, &b), HERR_INVALID);
	/* keys are found decoded */
	ck_assert_int_eq(djson_find(&jdoc, 0, "k\xc3\xa9y", &v), HERR_OK);
	ck_assert_int_eq(djson_find(&jdoc, 0, "k\\u00e9y", &v), HERR_NOTFOUND);
}
END_TEST

static Suite *device_core_suite(void)
{
	Suite *s = suite_create("device_core");
	TCase *tc = tcase_create("core");
	TCase *tj = tcase_create("json");

	tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pin_of_matches_independent_pin);
	tcase_add_test(tc, test_pin_valid_refusals);
	tcase_add_test(tc, test_add_key);
	tcase_add_test(tc, test_pins_accepted);
	tcase_add_test(tc, test_addressed_by_id_model_or_star);
	tcase_add_test(tc, test_pins_refused);
	tcase_add_test(tc, test_tampered_payload_refused);
	tcase_add_test(tc, test_wrong_payload_type_refused);
	tcase_add_test(tc, test_bad_signature_refused);
	tcase_add_test(tc, test_unknown_key_only_refused);
	tcase_add_test(tc, test_one_key_counts_once);
	tcase_add_test(tc, test_every_truncation_refused);
	tcase_add_test(tc, test_expired_and_future_refused);
	tcase_add_test(tc, test_replay_and_rollback_refused);
	tcase_add_test(tc, test_wrong_type_refused);
	tcase_add_test(tc, test_body_form);
	tcase_add_test(tc, test_trust_form);
	tcase_add_test(tc, test_keys_walk);
	tcase_add_test(tc, test_keys_two_announced_threshold_two);
	tcase_add_test(tc, test_keys_skip_refused);
	tcase_add_test(tc, test_keys_not_signed_by_announced_refused);
	tcase_add_test(tc, test_keys_refused);
	tcase_add_test(tc, test_firmware_accepted);
	tcase_add_test(tc, test_firmware_refused);
	tcase_add_test(tc, test_firmware_cancel);
	tcase_add_test(tc, test_peek_version);
	suite_add_tcase(s, tc);
	tcase_add_test(tj, test_json_accepts);
	tcase_add_test(tj, test_json_refuses);
	tcase_add_test(tj, test_json_duplicate_keys);
	tcase_add_test(tj, test_json_depth_and_count);
	tcase_add_test(tj, test_json_every_truncation_refused);
	tcase_add_test(tj, test_json_tokens);
	tcase_add_test(tj, test_json_values);
	suite_add_tcase(s, tj);
	return s;
}

int main(void)
{
	return unit_run(device_core_suite());
}
