#include "ca/key.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "ca/der.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/rng.h"

/* A PEM P-256 private key is about 230 bytes; the bound only stops a wrong file being slurped. */
#define KEY_FILE_MAX 8192

struct ca_key {
	mbedtls_pk_context pk;
};

mbedtls_pk_context *ca_key_pk(const struct ca_key *key)
{
	/* mbedTLS takes non-const contexts even for read-only use. */
	return (mbedtls_pk_context *)&key->pk;
}

static struct ca_key *key_new(void)
{
	struct ca_key *key = calloc(1, sizeof(*key));

	if (key)
		mbedtls_pk_init(&key->pk);
	return key;
}

void ca_key_free(struct ca_key *key)
{
	if (!key)
		return;
	mbedtls_pk_free(&key->pk); /* zeroizes the private scalar */
	free(key);
}

static int is_p256(const mbedtls_pk_context *pk)
{
	return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
	       mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

enum herr ca_key_generate(struct ca_key **out)
{
	struct ca_key *key;
	enum herr rc;
	int ret;

	*out = NULL;
	key = key_new();
	if (!key)
		return HERR_NOMEM;
	ret = mbedtls_pk_setup(&key->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (ret != 0) {
		rc = ca_mbedtls_fail(__func__, "pk setup", ret);
		goto fail;
	}
	ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key->pk), rng_callback, NULL);
	if (ret != 0) {
		rc = ca_mbedtls_fail(__func__, "P-256 key generation", ret);
		goto fail;
	}
	*out = key;
	return HERR_OK;
fail:
	ca_key_free(key);
	return rc;
}

enum herr ca_key_load(const char *path, struct ca_key **out)
{
	struct ca_key *key = NULL;
	uint8_t *pem = NULL;
	size_t len = 0;
	enum herr rc;
	int ret;

	*out = NULL;
	rc = fs_read_secret(path, KEY_FILE_MAX, &pem, &len);
	if (rc != HERR_OK) {
		log_err("%s: cannot read private key: %s", path, herr_str(rc));
		return rc;
	}
	key = key_new();
	if (!key) {
		rc = HERR_NOMEM;
		goto out;
	}
	/* mbedTLS wants the PEM's terminating NUL counted. */
	ret = mbedtls_pk_parse_key(&key->pk, pem, len + 1, NULL, 0);
	if (ret != 0) {
		rc = ca_mbedtls_fail(__func__, path, ret);
		goto out;
	}
	if (!is_p256(&key->pk)) {
		log_err("%s: not an EC P-256 key", path);
		rc = HERR_INVALID;
		goto out;
	}
	*out = key;
	key = NULL; /* ownership passed */
	rc = HERR_OK;
out:
	mbedtls_platform_zeroize(pem, len);
	free(pem);
	ca_key_free(key);
	return rc;
}

enum herr ca_key_save(const struct ca_key *key, const char *path)
{
	unsigned char pem[1024];
	enum herr rc;
	int ret;

	ret = mbedtls_pk_write_key_pem(ca_key_pk(key), pem, sizeof(pem));
	if (ret != 0)
		return ca_mbedtls_fail(__func__, "write key", ret);
	rc = fs_write_file(path, pem, strlen((char *)pem), 0600, 1);
	mbedtls_platform_zeroize(pem, sizeof(pem));
	if (rc != HERR_OK)
		log_err("%s: cannot write private key: %s", path, herr_str(rc));
	return rc;
}

enum herr ca_key_spki(const struct ca_key *key, uint8_t *buf, size_t size, size_t *len)
{
	int ret;

	/* mbedTLS writes at the end of the buffer. */
	ret = mbedtls_pk_write_pubkey_der(ca_key_pk(key), buf, size);
	if (ret < 0)
		return ca_mbedtls_fail(__func__, "write public key", ret);
	memmove(buf, buf + size - (size_t)ret, (size_t)ret);
	*len = (size_t)ret;
	return HERR_OK;
}

enum herr ca_key_public_pem(const struct ca_key *key, char **pem)
{
	unsigned char buf[CA_SPKI_MAX * 2];
	int ret;

	*pem = NULL;
	ret = mbedtls_pk_write_pubkey_pem(ca_key_pk(key), buf, sizeof(buf));
	if (ret != 0)
		return ca_mbedtls_fail(__func__, "write public key", ret);
	*pem = strdup((char *)buf);
	return *pem ? HERR_OK : HERR_NOMEM;
}

enum herr ca_key_sign(struct ca_key *key, const uint8_t *msg, size_t len,
		      uint8_t *sig, size_t size, size_t *sig_len)
{
	unsigned char hash[32];
	int ret;

	if (size < CA_SIG_MAX)
		return HERR_TOOBIG;
	ret = mbedtls_sha256_ret(msg, len, hash, 0);
	if (ret != 0)
		return ca_mbedtls_fail(__func__, "sha256", ret);
	ret = mbedtls_pk_sign(&key->pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, sig_len,
			      rng_callback, NULL);
	if (ret != 0)
		return ca_mbedtls_fail(__func__, "ECDSA sign", ret);
	return HERR_OK;
}

void ca_pin_from_spki(const uint8_t *spki, size_t len, char pin[CA_PIN_LEN])
{
	unsigned char hash[32];
	size_t olen = 0;

	mbedtls_sha256_ret(spki, len, hash, 0);
	memcpy(pin, "sha256/", 7);
	/* 32 bytes are 44 base64 characters; CA_PIN_LEN leaves room for them and the NUL. */
	if (mbedtls_base64_encode((unsigned char *)pin + 7, CA_PIN_LEN - 7, &olen, hash, sizeof(hash)) != 0)
		pin[0] = '\0';
}

void ca_sha256_hex(const uint8_t *data, size_t len, char hex[CA_HEX256_LEN])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char hash[32];
	size_t i;

	mbedtls_sha256_ret(data, len, hash, 0);
	for (i = 0; i < sizeof(hash); i++) {
		hex[2 * i] = digits[hash[i] >> 4];
		hex[2 * i + 1] = digits[hash[i] & 15];
	}
	hex[64] = '\0';
}
