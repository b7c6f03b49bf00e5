#include "rng.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"

enum herr rng_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("getrandom: %s", strerror(errno));
			return HERR_CRYPTO;
		}
		p += n;
		len -= (size_t)n;
	}
	return HERR_OK;
}

int rng_callback(void *ctx, unsigned char *buf, size_t len)
{
	(void)ctx;
	return rng_bytes(buf, len) == HERR_OK ? 0 : -1;
}
