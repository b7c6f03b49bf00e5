/* Unit tests for ota/dsse: envelopes signed here with ca/key.h keys, then verified, mangled and
 * written by hand. Known answers (keyid, base64, PAE) come from outside this code: a keyid computed
 * with python's hashlib, RFC 4648's test vectors, the PAE as DSSE's specification spells it. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>

#include "common/rng.h"
#include "ota/dsse.h"
#include "tests/unit/unit.h"

#define TYPE DSSE_PAYLOAD_TYPE
#define BODY "{\"type\":\"pins\",\"device\":\"h1\",\"version\":1,\"expires\":1900000000}"
#define BODY2 "{\"type\":\"pins\",\"device\":\"h1\",\"version\":2,\"expires\":1900000000}"
#define ENV_TEXT_MAX (DSSE_ENVELOPE_MAX + 4096)

/* A P-256 SubjectPublicKeyInfo made once with openssl; its keyid computed with python:
 * hashlib.sha256(spki).hexdigest(). */
static const uint8_t fixed_spki[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
	0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
	0x42, 0x00, 0x04, 0xaa, 0xe6, 0x7f, 0x90, 0x47, 0xfd, 0x3c, 0x5a, 0x78,
	0x70, 0x91, 0xc8, 0xf9, 0x57, 0xaa, 0xfc, 0x78, 0xea, 0x77, 0x16, 0xc3,
	0xb2, 0x8f, 0x4a, 0xf3, 0x32, 0x8c, 0x39, 0x66, 0x31, 0xd0, 0x72, 0xb0,
	0x6a, 0x78, 0xf8, 0xe3, 0x5a, 0x15, 0x78, 0x4e, 0xf8, 0xf5, 0x37, 0x1f,
	0x28, 0xb0, 0x93, 0xe8, 0x3e, 0xd0, 0x49, 0x4a, 0x22, 0x4d, 0x10, 0x93,
	0xe0, 0x8b, 0x9d, 0x64, 0x7c, 0x76, 0xe9,
};
static const char fixed_keyid[] = "8cb6a9d1b8cafa4514690e00f5c953e3d61090f62bec7cdb0419ae885641245a";

/* Three signing keys, made once before the tests (which run in forked children). */
struct tkey {
	struct ca_key *key;
	struct dsse_key pub;
	char keyid[DSSE_KEYID_LEN];
};
static struct tkey ka, kb, kc;

static void tkey_make(struct tkey *k)
{
	ck_assert_int_eq(ca_key_generate(&k->key), HERR_OK);
	ck_assert_int_eq(ca_key_spki(k->key, k->pub.spki, sizeof(k->pub.spki), &k->pub.spki_len), HERR_OK);
	dsse_keyid(k->pub.spki, k->pub.spki_len, k->keyid);
}

static void keys_setup(void)
{
	tkey_make(&ka);
	tkey_make(&kb);
	tkey_make(&kc);
}

static void keys_teardown(void)
{
	ca_key_free(ka.key);
	ca_key_free(kb.key);
	ca_key_free(kc.key);
}

static enum herr sign_cb(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig, size_t size,
			 size_t *sig_len)
{
	return ca_key_sign(ctx, msg, len, sig, size, sig_len);
}

static struct dsse_signer signer_of(const struct tkey *k)
{
	struct dsse_signer s;

	memset(&s, 0, sizeof(s));
	memcpy(s.keyid, k->keyid, sizeof(s.keyid));
	s.sign = sign_cb;
	s.ctx = k->key;
	return s;
}

/* An envelope of body signed by the n keys in ks (caller frees). */
static char *sign_with(const char *body, const struct tkey *const *ks, size_t n, size_t *len)
{
	struct dsse_signer s[DSSE_SIGS_MAX];
	char *env = NULL;
	size_t i;

	ck_assert_uint_le(n, DSSE_SIGS_MAX);
	for (i = 0; i < n; i++)
		s[i] = signer_of(ks[i]);
	ck_assert_int_eq(dsse_sign((const uint8_t *)body, strlen(body), s, n, &env, len), HERR_OK);
	ck_assert_ptr_nonnull(env);
	ck_assert_uint_eq(strlen(env), *len);
	return env;
}

/* base64 of k's signature over the PAE of body, built here from the parts (caller frees). */
static char *sig_b64(const struct tkey *k, const char *body)
{
	uint8_t *pae = NULL, sig[DSSE_SIG_MAX];
	size_t pae_len = 0, sig_len = 0, n = 0;
	char *text = NULL;

	ck_assert_int_eq(dsse_pae((const uint8_t *)body, strlen(body), &pae, &pae_len), HERR_OK);
	ck_assert_int_eq(ca_key_sign(k->key, pae, pae_len, sig, sizeof(sig), &sig_len), HERR_OK);
	ck_assert_int_eq(dsse_b64_encode(sig, sig_len, &text, &n), HERR_OK);
	free(pae);
	return text;
}

static char *b64_of(const char *s)
{
	char *text = NULL;
	size_t n = 0;

	ck_assert_int_eq(dsse_b64_encode((const uint8_t *)s, strlen(s), &text, &n), HERR_OK);
	return text;
}

/* printf into a new buffer of ENV_TEXT_MAX bytes (caller frees). */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	char *buf = malloc(ENV_TEXT_MAX);
	va_list ap;
	int n;

	ck_assert_ptr_nonnull(buf);
	va_start(ap, f);
	n = vsnprintf(buf, ENV_TEXT_MAX, f, ap);
	va_end(ap);
	ck_assert(n >= 0 && n < ENV_TEXT_MAX);
	return buf;
}

/* An envelope with one signature, written by hand. */
static char *env1(const char *type, const char *payload, const char *keyid, const char *sig)
{
	return fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}",
		   type, payload, keyid, sig);
}

static char why[256];

/* dsse_verify of the text in an exactly sized copy (so a read past the end is an ASan report). */
static enum herr verify_n(const char *env, size_t len, const struct dsse_key *keys, size_t count,
			  size_t threshold, struct dsse_verified *v)
{
	static const struct dsse_verified zero;
	uint8_t *copy = malloc(len > 0 ? len : 1);
	enum herr rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, env, len);
	memset(why, 'x', sizeof(why));
	rc = dsse_verify(copy, len, keys, count, threshold, v, why, sizeof(why));
	free(copy);
	ck_assert_ptr_nonnull(memchr(why, '\0', sizeof(why)));
	if (rc == HERR_OK) {
		ck_assert_str_eq(why, "");
		ck_assert_ptr_nonnull(v->body);
		ck_assert_int_eq(v->body[v->body_len], '\0');
	} else {
		ck_assert_msg(why[0] != '\0', "a refusal without a reason");
		ck_assert_msg(memcmp(v, &zero, sizeof(zero)) == 0, "a refusal left a result behind");
	}
	return rc;
}

static enum herr verify(const char *env, const struct dsse_key *keys, size_t count, size_t threshold,
			struct dsse_verified *v)
{
	return verify_n(env, strlen(env), keys, count, threshold, v);
}

/* env must be refused against ka with threshold 1, with a reason that contains expect. */
static void refused(const char *env, const char *expect)
{
	struct dsse_verified v;

	ck_assert_int_ne(verify(env, &ka.pub, 1, 1, &v), HERR_OK);
	ck_assert_msg(strstr(why, expect) != NULL, "reason \"%s\" lacks \"%s\"", why, expect);
}

/* --- known answers ---------------------------------------------------------------------------- */

START_TEST(test_keyid_known_answer)
{
	char keyid[DSSE_KEYID_LEN], hex[CA_HEX256_LEN];

	dsse_keyid(fixed_spki, sizeof(fixed_spki), keyid);
	ck_assert_str_eq(keyid, fixed_keyid);
	/* and a generated key's id is what hearth ca show prints for it */
	ca_sha256_hex(ka.pub.spki, ka.pub.spki_len, hex);
	ck_assert_str_eq(ka.keyid, hex);
}
END_TEST

/* RFC 4648 section 10. */
static const char *const rfc4648[][2] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

START_TEST(test_b64_known_answers)
{
	uint8_t *bytes = NULL;
	char *text = NULL;
	size_t i, n = 0;

	for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		const char *plain = rfc4648[i][0], *coded = rfc4648[i][1];

		ck_assert_int_eq(dsse_b64_encode((const uint8_t *)plain, strlen(plain), &text, &n), HERR_OK);
		ck_assert_str_eq(text, coded);
		ck_assert_uint_eq(n, strlen(coded));
		free(text);
		ck_assert_int_eq(dsse_b64_decode(coded, strlen(coded), &bytes, &n), HERR_OK);
		ck_assert_uint_eq(n, strlen(plain));
		ck_assert_mem_eq(bytes, plain, n);
		ck_assert_int_eq(bytes[n], '\0');
		free(bytes);
	}
}
END_TEST

START_TEST(test_b64_all_bytes_round_trip)
{
	uint8_t all[256], *bytes = NULL;
	char *text = NULL;
	size_t i, len, n = 0, m = 0;

	for (i = 0; i < sizeof(all); i++)
		all[i] = (uint8_t)i;
	for (len = 0; len <= sizeof(all); len += 1 + len / 16) {
		ck_assert_int_eq(dsse_b64_encode(all + sizeof(all) - len, len, &text, &n), HERR_OK);
		ck_assert_uint_eq(n, (len + 2) / 3 * 4);
		ck_assert_int_eq(dsse_b64_decode(text, n, &bytes, &m), HERR_OK);
		ck_assert_uint_eq(m, len);
		if (len > 0)
			ck_assert_mem_eq(bytes, all + sizeof(all) - len, len);
		free(text);
		free(bytes);
	}
}
END_TEST

START_TEST(test_b64_strict_refusals)
{
	static const char *const bad[] = {
		"Zg",        /* no padding */
		"Zg=",       /* short padding */
		"Zm9",       /* not a whole group */
		"Zh==",      /* bits left over by the padding are not zero */
		"Zm9=",      /* same, one pad */
		"Z===",      /* three pads */
		"====",
		"=Zg=",
		"Zg==Zg==",  /* padding before the end */
		"Zm 9v",     /* whitespace */
		"Zm9v\n",
		" Zm9v",
		"Zm9v-_==",  /* the URL alphabet */
		"Zm9v*A==",
	};
	uint8_t *bytes = (uint8_t *)"sentinel";
	size_t i, n = 99;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(dsse_b64_decode(bad[i], strlen(bad[i]), &bytes, &n) == HERR_INVALID,
			      "\"%s\" was accepted", bad[i]);
		ck_assert_ptr_null(bytes);
		ck_assert_uint_eq(n, 0);
	}
	/* a NUL inside */
	ck_assert_int_eq(dsse_b64_decode("Zm\0v", 4, &bytes, &n), HERR_INVALID);
}
END_TEST

START_TEST(test_pae_known_answer)
{
	static const char want[] = "DSSEv1 36 application/vnd.hearth.manifest+json 2 {}";
	static const char want_empty[] = "DSSEv1 36 application/vnd.hearth.manifest+json 0 ";
	uint8_t *pae = NULL;
	size_t len = 0;

	ck_assert_int_eq(dsse_pae((const uint8_t *)"{}", 2, &pae, &len), HERR_OK);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_mem_eq(pae, want, len);
	free(pae);
	ck_assert_int_eq(dsse_pae(NULL, 0, &pae, &len), HERR_OK);
	ck_assert_uint_eq(len, strlen(want_empty));
	ck_assert_mem_eq(pae, want_empty, len);
	free(pae);
}
END_TEST

/* --- signing and verifying -------------------------------------------------------------------- */

START_TEST(test_round_trip)
{
	const struct tkey *ks[] = { &ka };
	struct dsse_verified v;
	char *env;
	size_t len;

	env = sign_with(BODY, ks, 1, &len);
	ck_assert_int_eq(verify(env, &ka.pub, 1, 1, &v), HERR_OK);
	ck_assert_uint_eq(v.body_len, strlen(BODY));
	ck_assert_mem_eq(v.body, BODY, v.body_len);
	ck_assert_uint_eq(v.valid_keys, 1);
	ck_assert_str_eq(v.keyids[0], ka.keyid);
	dsse_verified_free(&v);
	ck_assert_ptr_null(v.body);
	/* threshold 0 means 1 */
	ck_assert_int_eq(verify(env, &ka.pub, 1, 0, &v), HERR_OK);
	dsse_verified_free(&v);
	/* why may be NULL */
	ck_assert_int_eq(dsse_verify((const uint8_t *)env, len, &ka.pub, 1, 1, &v, NULL, 0), HERR_OK);
	dsse_verified_free(&v);
	dsse_verified_free(NULL);
	free(env);
}
END_TEST

START_TEST(test_envelope_is_the_documented_json)
{
	const struct tkey *ks[] = { &ka, &kb };
	json_t *root, *sigs, *s;
	uint8_t *body = NULL;
	json_error_t err;
	size_t len, n = 0, i;
	char *env;

	env = sign_with(BODY, ks, 2, &len);
	root = json_loadb(env, len, JSON_REJECT_DUPLICATES, &err);
	ck_assert_msg(root != NULL, "jansson: %s", err.text);
	ck_assert_uint_eq(json_object_size(root), 3);
	ck_assert_str_eq(json_string_value(json_object_get(root, "payloadType")), TYPE);
	ck_assert_int_eq(dsse_b64_decode(json_string_value(json_object_get(root, "payload")),
					 json_string_length(json_object_get(root, "payload")), &body, &n), HERR_OK);
	ck_assert_uint_eq(n, strlen(BODY));
	ck_assert_mem_eq(body, BODY, n);
	free(body);
	sigs = json_object_get(root, "signatures");
	ck_assert_uint_eq(json_array_size(sigs), 2);
	for (i = 0; i < 2; i++) {
		s = json_array_get(sigs, i);
		ck_assert_uint_eq(json_object_size(s), 2);
		ck_assert_str_eq(json_string_value(json_object_get(s, "keyid")), ks[i]->keyid);
		ck_assert_ptr_nonnull(json_string_value(json_object_get(s, "sig")));
	}
	json_decref(root);
	free(env);
}
END_TEST

START_TEST(test_empty_and_largest_body)
{
	const struct tkey *ks[] = { &ka };
	struct dsse_signer s = signer_of(&ka);
	struct dsse_verified v;
	char *env = NULL, *big;
	size_t len = 0;

	ck_assert_int_eq(dsse_sign(NULL, 0, &s, 1, &env, &len), HERR_OK);
	ck_assert_int_eq(verify(env, &ka.pub, 1, 1, &v), HERR_OK);
	ck_assert_uint_eq(v.body_len, 0);
	dsse_verified_free(&v);
	free(env);

	big = malloc(DSSE_BODY_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', DSSE_BODY_MAX);
	big[DSSE_BODY_MAX] = '\0';
	env = sign_with(big, ks, 1, &len);
	ck_assert_uint_le(len, DSSE_ENVELOPE_MAX);
	ck_assert_int_eq(verify(env, &ka.pub, 1, 1, &v), HERR_OK);
	ck_assert_uint_eq(v.body_len, DSSE_BODY_MAX);
	dsse_verified_free(&v);
	free(env);
	/* one byte more is refused by the signer */
	big[DSSE_BODY_MAX] = 'a';
	big[DSSE_BODY_MAX + 1] = '\0';
	ck_assert_int_eq(dsse_sign((const uint8_t *)big, DSSE_BODY_MAX + 1, &s, 1, &env, &len), HERR_TOOBIG);
	ck_assert_ptr_null(env);
	free(big);
}
END_TEST

START_TEST(test_sign_refuses_bad_arguments)
{
	struct dsse_signer s[DSSE_SIGS_MAX + 1];
	char *env = NULL;
	size_t i, len = 0;

	for (i = 0; i < DSSE_SIGS_MAX + 1; i++)
		s[i] = signer_of(&ka);
	ck_assert_int_eq(dsse_sign((const uint8_t *)"{}", 2, s, 0, &env, &len), HERR_INVALID);
	ck_assert_int_eq(dsse_sign((const uint8_t *)"{}", 2, s, DSSE_SIGS_MAX + 1, &env, &len), HERR_INVALID);
	s[0].keyid[3] = 'X';
	ck_assert_int_eq(dsse_sign((const uint8_t *)"{}", 2, s, 1, &env, &len), HERR_INVALID);
	ck_assert_ptr_null(env);
	ck_assert_int_eq(dsse_sign((const uint8_t *)"{}", 2, s + 1, DSSE_SIGS_MAX, &env, &len), HERR_OK);
	free(env);
}
END_TEST

START_TEST(test_tampered_payload_refused)
{
	char *p2 = b64_of(BODY2), *sig = sig_b64(&ka, BODY), *env;

	env = env1(TYPE, p2, ka.keyid, sig);
	refused(env, "does not verify");
	free(env);
	free(sig);
	free(p2);
}
END_TEST

START_TEST(test_tampered_sig_refused)
{
	char *p = b64_of(BODY), *sig = sig_b64(&ka, BODY), *sig2 = sig_b64(&ka, BODY2), *env;
	struct dsse_verified v;
	size_t i;

	/* a good signature over another body */
	env = env1(TYPE, p, ka.keyid, sig2);
	refused(env, "does not verify");
	free(env);
	/* every character of the signature changed in turn */
	for (i = 0; sig[i] != '\0' && sig[i] != '='; i++) {
		char was = sig[i];

		sig[i] = was == 'A' ? 'B' : 'A';
		env = env1(TYPE, p, ka.keyid, sig);
		ck_assert_msg(verify(env, &ka.pub, 1, 1, &v) != HERR_OK, "changed sig[%zu] accepted", i);
		free(env);
		sig[i] = was;
	}
	env = env1(TYPE, p, ka.keyid, sig);
	ck_assert_int_eq(verify(env, &ka.pub, 1, 1, &v), HERR_OK);
	dsse_verified_free(&v);
	free(env);
	free(sig2);
	free(sig);
	free(p);
}
END_TEST

START_TEST(test_wrong_payload_type_refused)
{
	char *p = b64_of(BODY), *sig = sig_b64(&ka, BODY), *env;

	env = env1("application/json", p, ka.keyid, sig);
	refused(env, "payloadType");
	free(env);
	env = env1(TYPE " ", p, ka.keyid, sig);
	refused(env, "payloadType");
	free(env);
	env = env1("application/vnd.hearth.manifest+JSON", p, ka.keyid, sig);
	refused(env, "payloadType");
	free(env);
	free(sig);
	free(p);
}
END_TEST

START_TEST(test_unknown_key_only_refused)
{
	const struct tkey *ks[] = { &kb };
	struct dsse_verified v;
	char *env;
	size_t len;

	env = sign_with(BODY, ks, 1, &len);
	ck_assert_int_eq(verify(env, &ka.pub, 1, 1, &v), HERR_INVALID);
	ck_assert_str_eq(why, "0 distinct trusted keys signed; 1 needed");
	/* and no trusted keys at all */
	ck_assert_int_eq(verify(env, NULL, 0, 1, &v), HERR_INVALID);
	free(env);
}
END_TEST

START_TEST(test_same_key_twice_counts_once)
{
	const struct tkey *ks[] = { &ka, &ka };
	struct dsse_key trusted[2] = { ka.pub, kb.pub };
	struct dsse_verified v;
	char *env;
	size_t len;

	env = sign_with(BODY, ks, 2, &len);
	ck_assert_int_eq(verify(env, trusted, 2, 2, &v), HERR_INVALID);
	ck_assert_str_eq(why, "1 distinct trusted key signed; 2 needed");
	ck_assert_int_eq(verify(env, trusted, 2, 1, &v), HERR_OK);
	ck_assert_uint_eq(v.valid_keys, 1);
	dsse_verified_free(&v);
	/* the same key trusted twice is still one key */
	trusted[1] = ka.pub;
	ck_assert_int_eq(verify(env, trusted, 2, 2, &v), HERR_INVALID);
	free(env);
}
END_TEST

START_TEST(test_two_keys_meet_threshold_two)
{
	const struct tkey *ks[] = { &ka, &kb };
	struct dsse_key trusted[3] = { kc.pub, kb.pub, ka.pub };
	struct dsse_verified v;
	char *env;
	size_t len;

	env = sign_with(BODY, ks, 2, &len);
	ck_assert_int_eq(verify(env, trusted, 3, 2, &v), HERR_OK);
	ck_assert_uint_eq(v.valid_keys, 2);
	ck_assert_str_eq(v.keyids[0], ka.keyid);
	ck_assert_str_eq(v.keyids[1], kb.keyid);
	dsse_verified_free(&v);
	ck_assert_int_eq(verify(env, trusted, 3, 3, &v), HERR_INVALID);
	/* with only one of them trusted, threshold 2 is not met */
	ck_assert_int_eq(verify(env, trusted, 2, 2, &v), HERR_INVALID);
	free(env);
}
END_TEST

START_TEST(test_bad_signature_of_trusted_key_fails_all)
{
	char *p = b64_of(BODY), *sa = sig_b64(&ka, BODY), *sb = sig_b64(&kb, BODY2), *sc = sig_b64(&kc, BODY);
	struct dsse_key trusted[3] = { ka.pub, kb.pub, kc.pub };
	struct dsse_verified v;
	char *env;

	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"},"
		  "{\"keyid\":\"%s\",\"sig\":\"%s\"},{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", TYPE, p, ka.keyid, sa,
		  kb.keyid, sb, kc.keyid, sc);
	ck_assert_int_eq(verify(env, trusted, 3, 2, &v), HERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "signature 1"));
	ck_assert_ptr_nonnull(strstr(why, "does not verify"));
	/* the same bad signature by a key nobody trusts is ignored */
	trusted[1] = trusted[2];
	ck_assert_int_eq(verify(env, trusted, 2, 2, &v), HERR_OK);
	ck_assert_uint_eq(v.valid_keys, 2);
	dsse_verified_free(&v);
	free(env);
	free(sc);
	free(sb);
	free(sa);
	free(p);
}
END_TEST

START_TEST(test_whitespace_and_key_order_accepted)
{
	char *p = b64_of(BODY), *sig = sig_b64(&ka, BODY), *env;
	struct dsse_verified v;

	env = fmt(" \t\r\n{ \"signatures\" :\n [ { \"sig\" : \"%s\" ,\n \"keyid\" : \"%s\" } ] ,\r\n"
		  "\t\"payload\":\"%s\" , \"payloadType\"\t:\t\"%s\"\n}\n\n", sig, ka.keyid, p, TYPE);
	ck_assert_int_eq(verify(env, &ka.pub, 1, 1, &v), HERR_OK);
	ck_assert_mem_eq(v.body, BODY, v.body_len);
	dsse_verified_free(&v);
	free(env);
	free(sig);
	free(p);
}
END_TEST

/* --- refusals of malformed envelopes ---------------------------------------------------------- */

START_TEST(test_duplicate_keys_refused)
{
	char *p = b64_of(BODY), *sig = sig_b64(&ka, BODY), *env;

	env = fmt("{\"payloadType\":\"%s\",\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":"
		  "[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", TYPE, TYPE, p, ka.keyid, sig);
	refused(env, "duplicate key \"payloadType\"");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"payload\":\"%s\",\"signatures\":"
		  "[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", TYPE, p, p, ka.keyid, sig);
	refused(env, "duplicate key \"payload\"");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}],"
		  "\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", TYPE, p, ka.keyid, sig, ka.keyid, sig);
	refused(env, "duplicate key \"signatures\"");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"keyid\":\"%s\","
		  "\"sig\":\"%s\"}]}", TYPE, p, ka.keyid, ka.keyid, sig);
	refused(env, "duplicate key \"keyid\"");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\","
		  "\"sig\":\"%s\"}]}", TYPE, p, ka.keyid, sig, sig);
	refused(env, "duplicate key \"sig\"");
	free(env);
	free(sig);
	free(p);
}
END_TEST

START_TEST(test_unknown_and_missing_keys_refused)
{
	char *p = b64_of(BODY), *sig = sig_b64(&ka, BODY), *env;

	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}],"
		  "\"extra\":\"x\"}", TYPE, p, ka.keyid, sig);
	refused(env, "unknown key \"extra\"");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\","
		  "\"x\":\"\"}]}", TYPE, p, ka.keyid, sig);
	refused(env, "unknown key \"x\" in signature 0");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}],"
		  "\"averyveryverylongkeyname\":1}", TYPE, p, ka.keyid, sig);
	refused(env, "a key is longer than");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", TYPE, ka.keyid, sig);
	refused(env, "no payload");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\"}]}", TYPE, p, ka.keyid);
	refused(env, "signature 0 has no sig");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{}]}", TYPE, p);
	refused(env, "has no keyid");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[]}", TYPE, p);
	refused(env, "signatures is empty");
	free(env);
	refused("{}", "no payloadType");
	free(sig);
	free(p);
}
END_TEST

START_TEST(test_trailing_bytes_refused)
{
	const struct tkey *ks[] = { &ka };
	static const char *const tails[] = { "x", "{}", "\n}", "\0", ",", " \n\t0" };
	struct dsse_verified v;
	size_t len, i, n;
	char *env, *bad;

	env = sign_with(BODY, ks, 1, &len);
	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		n = i == 3 ? 1 : strlen(tails[i]);
		bad = malloc(len + n);
		ck_assert_ptr_nonnull(bad);
		memcpy(bad, env, len);
		memcpy(bad + len, tails[i], n);
		ck_assert_msg(verify_n(bad, len + n, &ka.pub, 1, 1, &v) != HERR_OK, "tail %zu accepted", i);
		free(bad);
	}
	free(env);
}
END_TEST

START_TEST(test_every_truncation_refused)
{
	const struct tkey *ks[] = { &ka, &kb };
	struct dsse_key trusted[2] = { ka.pub, kb.pub };
	struct dsse_verified v;
	size_t len, i;
	char *env;

	env = sign_with(BODY, ks, 2, &len);
	for (i = 0; i < len; i++)
		ck_assert_msg(verify_n(env, i, trusted, 2, 1, &v) != HERR_OK, "prefix of %zu bytes accepted", i);
	ck_assert_int_eq(verify_n(env, len, trusted, 2, 2, &v), HERR_OK);
	dsse_verified_free(&v);
	free(env);
}
END_TEST

START_TEST(test_syntax_refused)
{
	char *p = b64_of(BODY), *sig = sig_b64(&ka, BODY), *env, *nul;
	struct dsse_verified v;
	size_t len;

	/* escapes, even ones that would decode to the right text */
	env = env1("application\\/vnd.hearth.manifest+json", p, ka.keyid, sig);
	refused(env, "escape");
	free(env);
	/* nesting where a string or an object belongs */
	env = fmt("{\"payloadType\":{\"a\":\"%s\"},\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\","
		  "\"sig\":\"%s\"}]}", TYPE, p, ka.keyid, sig);
	refused(env, "payloadType must be a string");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[[{\"keyid\":\"%s\","
		  "\"sig\":\"%s\"}]]}", TYPE, p, ka.keyid, sig);
	refused(env, "signature 0 must be an object");
	free(env);
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":{\"keyid\":\"%s\","
		  "\"sig\":\"%s\"}}", TYPE, p, ka.keyid, sig);
	refused(env, "signatures must be an array");
	free(env);
	/* a trailing comma, a missing colon, single quotes, a top-level array */
	env = fmt("{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\","
		  "\"sig\":\"%s\"},]}", TYPE, p, ka.keyid, sig);
	refused(env, "signature 1 must be an object");
	free(env);
	env = fmt("{\"payloadType\" \"%s\"}", TYPE);
	refused(env, "expected ':'");
	free(env);
	refused("{'payloadType':1}", "a key must be a string");
	refused("[]", "expected '{'");
	refused("", "empty");
	/* a NUL byte, inside a string and between tokens */
	env = env1(TYPE, p, ka.keyid, sig);
	len = strlen(env);
	nul = strstr(env, "payload\"");
	ck_assert_ptr_nonnull(nul);
	nul[3] = '\0';
	ck_assert_int_eq(verify_n(env, len, &ka.pub, 1, 1, &v), HERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "NUL"));
	free(env);
	/* control and non-ASCII bytes in a string */
	env = env1("application/vnd.hearth.manifest+json\t", p, ka.keyid, sig);
	refused(env, "control or non-ASCII");
	free(env);
	env = env1("application/vnd.hearth.manifest+jsön", p, ka.keyid, sig);
	refused(env, "control or non-ASCII");
	free(env);
	/* payload and sig that are not strict base64 */
	env = env1(TYPE, "eyJ9", ka.keyid, sig);
	refused(env, "does not verify");
	free(env);
	env = env1(TYPE, "eyJ", ka.keyid, sig);
	refused(env, "payload is not strict base64");
	free(env);
	env = env1(TYPE, p, ka.keyid, "MEUC");
	refused(env, "does not verify");
	free(env);
	env = env1(TYPE, p, ka.keyid, "MEUC=");
	refused(env, "sig of signature 0 is not strict base64");
	free(env);
	env = env1(TYPE, p, ka.keyid, "");
	refused(env, "sig of signature 0 is empty");
	free(env);
	free(sig);
	free(p);
}
END_TEST

START_TEST(test_keyid_form_refused)
{
	char *p = b64_of(BODY), *sig = sig_b64(&ka, BODY), *env, upper[DSSE_KEYID_LEN];
	size_t i;

	for (i = 0; i < DSSE_KEYID_LEN; i++)
		upper[i] = (ka.keyid[i] >= 'a' && ka.keyid[i] <= 'f') ? (char)(ka.keyid[i] - 32) : ka.keyid[i];
	env = env1(TYPE, p, upper, sig);
	refused(env, "not 64 lower-case hex digits");
	free(env);
	env = env1(TYPE, p, "abc", sig);
	refused(env, "not 64 lower-case hex digits");
	free(env);
	env = env1(TYPE, p, "", sig);
	refused(env, "not 64 lower-case hex digits");
	free(env);
	free(sig);
	free(p);
}
END_TEST

START_TEST(test_overlong_fields_refused)
{
	char *p = b64_of(BODY), *sig = sig_b64(&ka, BODY), *env, *big, *bigb64;
	char type[200], keyid[DSSE_KEYID_LEN + 1], longsig[200];
	struct dsse_verified v;
	size_t n, len;

	memset(type, 'a', 129);
	type[129] = '\0';
	env = env1(type, p, ka.keyid, sig);
	refused(env, "payloadType is longer than 128 bytes");
	free(env);
	snprintf(keyid, sizeof(keyid), "%s0", ka.keyid);
	env = env1(TYPE, p, keyid, sig);
	refused(env, "keyid is longer than 64 bytes");
	free(env);
	/* 84 bytes of base64 padding-free text: 112 characters, over the 108 of 80 bytes */
	memset(longsig, 'A', 112);
	longsig[112] = '\0';
	env = env1(TYPE, p, ka.keyid, longsig);
	refused(env, "sig is longer than 108 bytes");
	free(env);
	/* 81 bytes fit in 108 characters but not in a signature */
	memset(longsig, 'A', 108);
	longsig[108] = '\0';
	env = env1(TYPE, p, ka.keyid, longsig);
	refused(env, "sig of signature 0 is over 80 bytes");
	free(env);
	/* a payload one byte over DSSE_BODY_MAX, and one whose text is longer still */
	big = malloc(DSSE_BODY_MAX + 4);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', DSSE_BODY_MAX + 3);
	big[DSSE_BODY_MAX + 1] = '\0';
	bigb64 = b64_of(big);
	env = env1(TYPE, bigb64, ka.keyid, sig);
	ck_assert_int_eq(verify(env, &ka.pub, 1, 1, &v), HERR_TOOBIG);
	ck_assert_ptr_nonnull(strstr(why, "payload is over"));
	free(env);
	free(bigb64);
	big[DSSE_BODY_MAX + 1] = 'a';
	big[DSSE_BODY_MAX + 3] = '\0';
	bigb64 = b64_of(big);
	env = env1(TYPE, bigb64, ka.keyid, sig);
	ck_assert_int_eq(verify(env, &ka.pub, 1, 1, &v), HERR_TOOBIG);
	ck_assert_ptr_nonnull(strstr(why, "payload is longer"));
	free(env);
	free(bigb64);
	free(big);
	/* a whole envelope over DSSE_ENVELOPE_MAX, even if only whitespace makes it so */
	env = env1(TYPE, p, ka.keyid, sig);
	len = strlen(env);
	big = malloc(DSSE_ENVELOPE_MAX + 1);
	ck_assert_ptr_nonnull(big);
	memcpy(big, env, len);
	for (n = len; n < DSSE_ENVELOPE_MAX + 1; n++)
		big[n] = ' ';
	ck_assert_int_eq(verify_n(big, DSSE_ENVELOPE_MAX, &ka.pub, 1, 1, &v), HERR_OK);
	dsse_verified_free(&v);
	ck_assert_int_eq(verify_n(big, DSSE_ENVELOPE_MAX + 1, &ka.pub, 1, 1, &v), HERR_TOOBIG);
	free(big);
	free(env);
	free(sig);
	free(p);
}
END_TEST

START_TEST(test_signature_count_bounded)
{
	const struct tkey *ks[DSSE_SIGS_MAX];
	char *p = b64_of(BODY), *sig = sig_b64(&ka, BODY), *env, *more;
	struct dsse_verified v;
	size_t i, len;

	for (i = 0; i < DSSE_SIGS_MAX; i++)
		ks[i] = &ka;
	env = sign_with(BODY, ks, DSSE_SIGS_MAX, &len);
	ck_assert_int_eq(verify(env, &ka.pub, 1, 1, &v), HERR_OK);
	ck_assert_uint_eq(v.valid_keys, 1);
	dsse_verified_free(&v);
	/* one more, by hand */
	ck_assert_str_eq(env + len - 2, "]}");
	env[len - 2] = '\0';
	more = fmt("%s,{\"keyid\":\"%s\",\"sig\":\"%s\"}]}", env, ka.keyid, sig);
	ck_assert_int_eq(verify(more, &ka.pub, 1, 1, &v), HERR_TOOBIG);
	ck_assert_str_eq(why, "more than 8 signatures");
	free(more);
	free(env);
	free(sig);
	free(p);
}
END_TEST

/* --- trusted keys ----------------------------------------------------------------------------- */

/* The DER SubjectPublicKeyInfo of a fresh key on curve grp. */
static void ec_spki(mbedtls_ecp_group_id grp, struct dsse_key *out)
{
	mbedtls_pk_context pk;
	uint8_t buf[512];
	int ret;

	mbedtls_pk_init(&pk);
	ck_assert_int_eq(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
	ck_assert_int_eq(mbedtls_ecp_gen_key(grp, mbedtls_pk_ec(pk), rng_callback, NULL), 0);
	ret = mbedtls_pk_write_pubkey_der(&pk, buf, sizeof(buf));
	ck_assert_int_gt(ret, 0);
	ck_assert_int_le(ret, DSSE_SPKI_MAX);
	memcpy(out->spki, buf + sizeof(buf) - (size_t)ret, (size_t)ret);
	out->spki_len = (size_t)ret;
	mbedtls_pk_free(&pk);
}

START_TEST(test_non_p256_trusted_key_is_an_error)
{
	const struct tkey *ks[] = { &ka };
	struct dsse_key trusted[2] = { ka.pub };
	struct dsse_verified v;
	char *env;
	size_t len;

	env = sign_with(BODY, ks, 1, &len);
	ec_spki(MBEDTLS_ECP_DP_SECP384R1, &trusted[1]);
	ck_assert_int_eq(verify(env, trusted, 2, 1, &v), HERR_INVALID);
	ck_assert_str_eq(why, "trusted key 1 is not an EC P-256 key");
	/* whatever the envelope */
	ck_assert_int_eq(verify("x", trusted, 2, 1, &v), HERR_INVALID);
	ck_assert_str_eq(why, "trusted key 1 is not an EC P-256 key");
	/* a P-256 key with a byte after its SubjectPublicKeyInfo, garbage, nothing */
	trusted[1] = ka.pub;
	trusted[1].spki[trusted[1].spki_len++] = 0;
	ck_assert_int_eq(verify(env, trusted, 2, 1, &v), HERR_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "trusted key 1"));
	memset(trusted[1].spki, 0x30, sizeof(trusted[1].spki));
	ck_assert_int_eq(verify(env, trusted, 2, 1, &v), HERR_INVALID);
	trusted[1].spki_len = 0;
	ck_assert_int_eq(verify(env, trusted, 2, 1, &v), HERR_INVALID);
	trusted[1].spki_len = DSSE_SPKI_MAX + 1;
	ck_assert_int_eq(verify(env, trusted, 2, 1, &v), HERR_INVALID);
	/* a fresh P-256 key made by mbedTLS directly is fine */
	ec_spki(MBEDTLS_ECP_DP_SECP256R1, &trusted[1]);
	ck_assert_int_eq(verify(env, trusted, 2, 1, &v), HERR_OK);
	dsse_verified_free(&v);
	free(env);
}
END_TEST

static Suite *dsse_suite(void)
{
	Suite *s = suite_create("dsse");
	TCase *tc = tcase_create("dsse");

	tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_keyid_known_answer);
	tcase_add_test(tc, test_b64_known_answers);
	tcase_add_test(tc, test_b64_all_bytes_round_trip);
	tcase_add_test(tc, test_b64_strict_refusals);
	tcase_add_test(tc, test_pae_known_answer);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_envelope_is_the_documented_json);
	tcase_add_test(tc, test_empty_and_largest_body);
	tcase_add_test(tc, test_sign_refuses_bad_arguments);
	tcase_add_test(tc, test_tampered_payload_refused);
	tcase_add_test(tc, test_tampered_sig_refused);
	tcase_add_test(tc, test_wrong_payload_type_refused);
	tcase_add_test(tc, test_unknown_key_only_refused);
	tcase_add_test(tc, test_same_key_twice_counts_once);
	tcase_add_test(tc, test_two_keys_meet_threshold_two);
	tcase_add_test(tc, test_bad_signature_of_trusted_key_fails_all);
	tcase_add_test(tc, test_whitespace_and_key_order_accepted);
	tcase_add_test(tc, test_duplicate_keys_refused);
	tcase_add_test(tc, test_unknown_and_missing_keys_refused);
	tcase_add_test(tc, test_trailing_bytes_refused);
	tcase_add_test(tc, test_every_truncation_refused);
	tcase_add_test(tc, test_syntax_refused);
	tcase_add_test(tc, test_keyid_form_refused);
	tcase_add_test(tc, test_overlong_fields_refused);
	tcase_add_test(tc, test_signature_count_bounded);
	tcase_add_test(tc, test_non_p256_trusted_key_is_an_error);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(dsse_suite());
}
