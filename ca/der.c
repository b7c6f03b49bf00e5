#include "ca/der.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/cipher.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509.h>

#include "common/log.h"

/* mbedTLS adds a low-level module's code (0x0002-0x007F) to a high-level one's; either part may say
 * that memory ran out. */
static int alloc_failed(int ret)
{
	int high = -ret & 0xFF80, low = -ret & 0x007F;

	return low == -MBEDTLS_ERR_MPI_ALLOC_FAILED || low == -MBEDTLS_ERR_ASN1_ALLOC_FAILED ||
	       high == -MBEDTLS_ERR_X509_ALLOC_FAILED || high == -MBEDTLS_ERR_PK_ALLOC_FAILED ||
	       high == -MBEDTLS_ERR_ECP_ALLOC_FAILED || high == -MBEDTLS_ERR_PEM_ALLOC_FAILED ||
	       high == -MBEDTLS_ERR_MD_ALLOC_FAILED || high == -MBEDTLS_ERR_CIPHER_ALLOC_FAILED;
}

enum herr ca_mbedtls_fail(const char *func, const char *what, int ret)
{
	char text[128];

	mbedtls_strerror(ret, text, sizeof(text));
	log_msg(LOG_LEVEL_ERR, func, "%s: %s (-0x%04x)", what, text, (unsigned)-ret);
	return ret < 0 && alloc_failed(ret) ? HERR_NOMEM : HERR_CRYPTO;
}

static void to_tm(int64_t t, struct tm *tm)
{
	time_t tt = (time_t)t;

	memset(tm, 0, sizeof(*tm));
	gmtime_r(&tt, tm);
}

void ca_time_string(int64_t t, char out[15])
{
	struct tm tm;

	to_tm(t, &tm);
	strftime(out, 15, "%Y%m%d%H%M%S", &tm);
}

int ca_der_write_header(unsigned char **p, unsigned char *start, size_t len, unsigned char tag)
{
	int ret, n = 0;

	MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_len(p, start, len));
	MBEDTLS_ASN1_CHK_ADD(n, mbedtls_asn1_write_tag(p, start, tag));
	return n;
}

int ca_der_write_time(unsigned char **p, unsigned char *start, int64_t t)
{
	char text[16];
	size_t n;
	int tag;
	struct tm tm;
	int ret, len = 0;

	to_tm(t, &tm);
	if (tm.tm_year + 1900 < 2050) {
		n = (size_t)snprintf(text, sizeof(text), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100,
				     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		tag = MBEDTLS_ASN1_UTC_TIME;
	} else {
		n = strftime(text, sizeof(text), "%Y%m%d%H%M%SZ", &tm);
		tag = MBEDTLS_ASN1_GENERALIZED_TIME;
	}
	if (n == 0)
		return MBEDTLS_ERR_ASN1_INVALID_DATA;
	ret = mbedtls_asn1_write_raw_buffer(p, start, (const unsigned char *)text, n);
	if (ret < 0)
		return ret;
	len += ret;
	ret = ca_der_write_header(p, start, (size_t)len, (unsigned char)tag);
	if (ret < 0)
		return ret;
	return len + ret;
}

int64_t ca_x509_time_to_unix(const mbedtls_x509_time *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = t->year - 1900;
	tm.tm_mon = t->mon - 1;
	tm.tm_mday = t->day;
	tm.tm_hour = t->hour;
	tm.tm_min = t->min;
	tm.tm_sec = t->sec;
	return (int64_t)timegm(&tm);
}

enum herr ca_serial_from_hex(const char *hex, mbedtls_mpi *serial)
{
	size_t i, n = strlen(hex);

	if (n == 0 || n > 40)
		return HERR_INVALID;
	for (i = 0; i < n; i++) {
		char c = hex[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return HERR_INVALID;
	}
	if (mbedtls_mpi_read_string(serial, 16, hex) != 0)
		return HERR_INVALID;
	return HERR_OK;
}
