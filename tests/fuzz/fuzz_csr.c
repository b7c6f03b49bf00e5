/* Fuzz target for ca/csr: any bytes get a verdict, never a crash, a leak or a half-filled result. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca/csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ca_csr out;
	char why[128];
	enum herr rc;

	rc = ca_csr_check(data, size, &out, why, sizeof(why));
	/* The promises of csr.h, checked on every input; abort() is how a fuzzer reports. */
	if (memchr(why, '\0', sizeof(why)) == NULL)
		abort();
	if (rc == HERR_OK && (out.spki_len == 0 || out.spki_len > sizeof(out.spki) || why[0] != '\0'))
		abort();
	if (rc != HERR_OK && (out.spki_len != 0 || why[0] == '\0'))
		abort();
	return 0;
}
