/* Fuzz target for ota/dsse: any bytes as an envelope, verified against one fixed trusted P-256 key
 * with threshold 1, get a verdict and never a crash, a leak or a half-filled result. The seed
 * corpus (tests/fuzz/corpus/dsse) holds envelopes really signed by this key's private half (since
 * discarded), so mutations reach the signature checks. The same bytes also go through the strict
 * base64 decoder (whatever it accepts re-encodes to exactly the input) and the encoder. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ota/dsse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* DER SubjectPublicKeyInfo of the corpus key (openssl pkey -pubout -outform der). */
static const uint8_t trusted_spki[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
	0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
	0x42, 0x00, 0x04, 0xaa, 0xe6, 0x7f, 0x90, 0x47, 0xfd, 0x3c, 0x5a, 0x78,
	0x70, 0x91, 0xc8, 0xf9, 0x57, 0xaa, 0xfc, 0x78, 0xea, 0x77, 0x16, 0xc3,
	0xb2, 0x8f, 0x4a, 0xf3, 0x32, 0x8c, 0x39, 0x66, 0x31, 0xd0, 0x72, 0xb0,
	0x6a, 0x78, 0xf8, 0xe3, 0x5a, 0x15, 0x78, 0x4e, 0xf8, 0xf5, 0x37, 0x1f,
	0x28, 0xb0, 0x93, 0xe8, 0x3e, 0xd0, 0x49, 0x4a, 0x22, 0x4d, 0x10, 0x93,
	0xe0, 0x8b, 0x9d, 0x64, 0x7c, 0x76, 0xe9,
};
/* Its keyid: sha256 of the bytes above. */
static const char trusted_keyid[] = "8cb6a9d1b8cafa4514690e00f5c953e3d61090f62bec7cdb0419ae885641245a";

static void check_verify(const uint8_t *data, size_t size, const struct dsse_key *key)
{
	static const struct dsse_verified zero;
	struct dsse_verified v;
	char why[160];
	enum herr rc;

	memset(why, 'x', sizeof(why));
	rc = dsse_verify(data, size, key, 1, 1, &v, why, sizeof(why));
	/* The promises of dsse.h, checked on every input; abort() is how a fuzzer reports. */
	if (memchr(why, '\0', sizeof(why)) == NULL)
		abort();
	if (rc != HERR_OK) {
		if ((rc != HERR_INVALID && rc != HERR_TOOBIG && rc != HERR_NOMEM) || why[0] == '\0' ||
		    memcmp(&v, &zero, sizeof(v)) != 0)
			abort();
		return;
	}
	if (why[0] != '\0' || !v.body || v.body_len > DSSE_BODY_MAX || v.body[v.body_len] != '\0' ||
	    v.valid_keys != 1 || strcmp(v.keyids[0], trusted_keyid) != 0 || v.keyids[1][0] != '\0')
		abort();
	dsse_verified_free(&v);
	if (v.body || v.body_len)
		abort();
}

static void check_base64(const uint8_t *data, size_t size)
{
	uint8_t *bytes = NULL;
	size_t n = 0, m = 0;
	char *text = NULL;

	if (dsse_b64_decode((const char *)data, size, &bytes, &n) == HERR_OK) {
		if (bytes[n] != '\0' || n > size / 4 * 3)
			abort();
		if (dsse_b64_encode(bytes, n, &text, &m) != HERR_OK || m != size || memcmp(text, data, size) != 0)
			abort();
		free(text);
		free(bytes);
	} else if (bytes || n) {
		abort();
	}
	if (dsse_b64_encode(data, size, &text, &m) != HERR_OK || text[m] != '\0')
		abort();
	if (dsse_b64_decode(text, m, &bytes, &n) != HERR_OK || n != size || memcmp(bytes, data, size) != 0)
		abort();
	free(text);
	free(bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dsse_key key;

	if (key.spki_len == 0) {
		memcpy(key.spki, trusted_spki, sizeof(trusted_spki));
		key.spki_len = sizeof(trusted_spki);
	}
	check_verify(data, size, &key);
	check_base64(data, size);
	return 0;
}
