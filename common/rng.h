/* rng: the operating system's CSPRNG (getrandom), as plain bytes and as an mbedTLS-style f_rng
 * callback. No user-space generator state means nothing to reseed and nothing to share after fork. */
#ifndef HEARTH_RNG_H
#define HEARTH_RNG_H

#include <stddef.h>

#include "herr.h"

/* Fill buf with len random bytes. Fails only if the kernel refuses. */
enum herr rng_bytes(void *buf, size_t len);

/* Same, with the signature mbedTLS expects of f_rng (returns 0 or a negative value); ctx unused. */
int rng_callback(void *ctx, unsigned char *buf, size_t len);

#endif
