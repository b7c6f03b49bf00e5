#include "device/https.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "common/fsutil.h"
#include "common/rng.h"

/* Largest DER SubjectPublicKeyInfo hashed for a pin (an RSA-4096 endpoint key fits). */
#define SPKI_BUF 1024
#define KEY_FILE_MAX (16 * 1024)
/* iPAddress in a GeneralName: context-specific, primitive, tag 7. */
#define SAN_IP_TAG (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7)

struct conn {
	mbedtls_net_context net;
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca, cert;
	mbedtls_pk_context key;
	const struct https_endpoint *ep;
	unsigned char ip[16];            /* the host as an address, when it is an IP literal */
	size_t ip_len;
	uint32_t chain_flags;            /* flags seen so far on the chain, above the leaf */
	char refused[160];               /* what the verify callback refused, if anything */
	int64_t deadline;                /* monotonic ms; 0: none */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tls_error(char *why, size_t why_size, const char *what, int ret)
{
	char text[128];

	mbedtls_strerror(ret, text, sizeof(text));
	snprintf(why, why_size, "%s: %s (-0x%04x)", what, text, (unsigned)-ret);
}

/* --- verification ------------------------------------------------------------------------------ */

static int san_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip, size_t len)
{
	const mbedtls_x509_sequence *cur;

	if (!(crt->ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME))
		return 0;
	for (cur = &crt->subject_alt_names; cur; cur = cur->next) {
		if (cur->buf.p && cur->buf.tag == SAN_IP_TAG && cur->buf.len == len && memcmp(cur->buf.p, ip, len) == 0)
			return 1;
	}
	return 0;
}

/* Called by mbedTLS for every certificate of the chain, the root first; the leaf (depth 0) last.
 * The leaf is judged only if everything else verified, as OpenSSL's preverify_ok does. */
static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct conn *c = ctx;
	unsigned char spki[SPKI_BUF];
	char pin[CORE_PIN_LEN];
	int n;

	if (depth != 0) {
		c->chain_flags |= *flags;
		return 0;
	}
	if (*flags != 0 || c->chain_flags != 0)
		return 0;
	if (c->ip_len && !san_has_ip(crt, c->ip, c->ip_len)) {
		snprintf(c->refused, sizeof(c->refused), "the endpoint certificate does not name %s", c->ep->host);
		*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
		return 0;
	}
	if (!c->ep->trust || c->ep->trust->pin_count == 0)
		return 0;
	/* mbedtls_pk_write_pubkey_der writes at the end of the buffer. */
	n = mbedtls_pk_write_pubkey_der(&crt->pk, spki, sizeof(spki));
	if (n <= 0) {
		snprintf(c->refused, sizeof(c->refused), "cannot encode the endpoint key");
		*flags |= MBEDTLS_X509_BADCERT_OTHER;
		return 0;
	}
	if (!core_pin_ok(c->ep->trust, spki + sizeof(spki) - n, (size_t)n)) {
		core_pin_of(spki + sizeof(spki) - n, (size_t)n, pin);
		snprintf(c->refused, sizeof(c->refused), "endpoint key not pinned: %s", pin);
		*flags |= MBEDTLS_X509_BADCERT_OTHER;
	}
	return 0;
}

/* --- transport --------------------------------------------------------------------------------- */

static enum herr tcp_connect(struct conn *c, char *why, size_t why_size)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, err = 0, gai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	gai = getaddrinfo(c->ep->host, c->ep->port, &hints, &res);
	if (gai != 0) {
		snprintf(why, why_size, "cannot resolve %s: %s", c->ep->host, gai_strerror(gai));
		return HERR_IO;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t len = sizeof(err);
		struct timeval tv = { HTTPS_IDLE_MS / 1000, 0 };

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			if (errno != EINPROGRESS) {
				err = errno;
				goto next;
			}
			p.fd = fd;
			p.events = POLLOUT;
			p.revents = 0;
			if (poll(&p, 1, HTTPS_IDLE_MS) != 1) {
				err = ETIMEDOUT;
				goto next;
			}
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
				if (err == 0)
					err = errno;
				goto next;
			}
		}
		/* Blocking from here: reads are bounded by poll in mbedtls_net_recv_timeout, writes by
		 * SO_SNDTIMEO. */
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
			err = errno;
			goto next;
		}
		c->net.fd = fd;
		freeaddrinfo(res);
		return HERR_OK;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	snprintf(why, why_size, "cannot connect to %s port %s: %s", c->ep->host, c->ep->port,
		 strerror(err ? err : ECONNREFUSED));
	return HERR_IO;
}

/* mbedtls_net_recv_timeout, with the read also bounded by the exchange's deadline. */
static int conn_recv(void *ctx, unsigned char *buf, size_t len, uint32_t timeout)
{
	struct conn *c = ctx;

	if (c->deadline) {
		int64_t left = c->deadline - now_ms();

		if (left <= 0)
			return MBEDTLS_ERR_SSL_TIMEOUT;
		if ((int64_t)timeout > left)
			timeout = (uint32_t)left;
	}
	return mbedtls_net_recv_timeout(&c->net, buf, len, timeout);
}

static int conn_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct conn *c = ctx;
	int ret;

	if (c->deadline && now_ms() >= c->deadline)
		return MBEDTLS_ERR_SSL_TIMEOUT;
	ret = mbedtls_net_send(&c->net, buf, len);
	/* The socket blocks: "would block" means SO_SNDTIMEO ran out with nothing taken. */
	return ret == MBEDTLS_ERR_SSL_WANT_WRITE ? MBEDTLS_ERR_NET_SEND_FAILED : ret;
}

static enum herr load_key(struct conn *c, const char *path, char *why, size_t why_size)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	enum herr rc;
	int ret;

	rc = fs_read_secret(path, KEY_FILE_MAX, &pem, &len);
	if (rc != HERR_OK) {
		snprintf(why, why_size, "cannot read the key %s: %s", path, herr_str(rc));
		return rc;
	}
	ret = mbedtls_pk_parse_key(&c->key, pem, len + 1, NULL, 0); /* PEM: the length counts the NUL */
	mbedtls_platform_zeroize(pem, len);
	free(pem);
	if (ret != 0) {
		tls_error(why, why_size, "cannot parse the key", ret);
		return HERR_CRYPTO;
	}
	return HERR_OK;
}

static enum herr tls_setup(struct conn *c, char *why, size_t why_size)
{
	const struct https_endpoint *ep = c->ep;
	int ret;

	ret = mbedtls_x509_crt_parse_file(&c->ca, ep->ca_file);
	if (ret != 0) {
		if (ret > 0)
			snprintf(why, why_size, "%s: %d certificate(s) could not be parsed", ep->ca_file, ret);
		else
			tls_error(why, why_size, ep->ca_file, ret);
		return HERR_CRYPTO;
	}
	if (ep->cert_file) {
		ret = mbedtls_x509_crt_parse_file(&c->cert, ep->cert_file);
		if (ret != 0) {
			tls_error(why, why_size, ep->cert_file, ret < 0 ? ret : MBEDTLS_ERR_X509_INVALID_FORMAT);
			return HERR_CRYPTO;
		}
		if (!ep->key_file || load_key(c, ep->key_file, why, why_size) != HERR_OK) {
			if (!ep->key_file)
				snprintf(why, why_size, "a client certificate needs its key");
			return HERR_CRYPTO;
		}
	}
	ret = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
					  MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret != 0) {
		tls_error(why, why_size, "TLS configuration", ret);
		return HERR_CRYPTO;
	}
	mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
	mbedtls_ssl_conf_rng(&c->conf, rng_callback, NULL);
	mbedtls_ssl_conf_verify(&c->conf, verify_cb, c);
	mbedtls_ssl_conf_read_timeout(&c->conf, HTTPS_IDLE_MS);
	if (ep->cert_file) {
		ret = mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, &c->key);
		if (ret != 0) {
			tls_error(why, why_size, "client certificate", ret);
			return HERR_CRYPTO;
		}
	}
	ret = mbedtls_ssl_setup(&c->ssl, &c->conf);
	if (ret != 0) {
		tls_error(why, why_size, "TLS setup", ret);
		return HERR_CRYPTO;
	}
	/* An IP literal is checked by verify_cb (mbedTLS 2.28 matches DNS names only) and sent as no
	 * SNI (RFC 6066 §3); a name is both SNI and checked by mbedTLS. */
	if (inet_pton(AF_INET, ep->host, c->ip) == 1)
		c->ip_len = 4;
	else if (inet_pton(AF_INET6, ep->host, c->ip) == 1)
		c->ip_len = 16;
	else if ((ret = mbedtls_ssl_set_hostname(&c->ssl, ep->host)) != 0) {
		tls_error(why, why_size, "host name", ret);
		return HERR_CRYPTO;
	}
	mbedtls_ssl_set_bio(&c->ssl, c, conn_send, NULL, conn_recv);
	return HERR_OK;
}

static enum herr handshake(struct conn *c, char *why, size_t why_size)
{
	int ret;

	while ((ret = mbedtls_ssl_handshake(&c->ssl)) != 0) {
		if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		if (c->refused[0]) {
			snprintf(why, why_size, "%s", c->refused);
		} else if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
			char info[256];
			size_t n;

			mbedtls_x509_crt_verify_info(info, sizeof(info), "", mbedtls_ssl_get_verify_result(&c->ssl));
			n = strlen(info);
			while (n > 0 && info[n - 1] == '\n')
				info[--n] = '\0';
			for (size_t i = 0; i < n; i++)
				if (info[i] == '\n')
					info[i] = ';';
			snprintf(why, why_size, "endpoint certificate refused: %s", info);
		} else {
			tls_error(why, why_size, "TLS handshake", ret);
		}
		return HERR_CRYPTO;
	}
	return HERR_OK;
}

static enum herr write_all(struct conn *c, const void *data, size_t len, char *why, size_t why_size)
{
	const unsigned char *p = data;

	while (len > 0) {
		int ret = mbedtls_ssl_write(&c->ssl, p, len);

		if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		if (ret <= 0) {
			tls_error(why, why_size, "send", ret);
			return HERR_IO;
		}
		p += ret;
		len -= (size_t)ret;
	}
	return HERR_OK;
}

/* Up to len bytes; 0 at the end of the stream. */
static enum herr read_some(struct conn *c, unsigned char *buf, size_t len, size_t *got, char *why, size_t why_size)
{
	int ret;

	for (;;) {
		ret = mbedtls_ssl_read(&c->ssl, buf, len);
		if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		break;
	}
	if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_NET_CONN_RESET) {
		*got = 0;
		return HERR_OK;
	}
	if (ret == MBEDTLS_ERR_SSL_TIMEOUT) {
		snprintf(why, why_size, "timed out waiting for the server");
		return HERR_IO;
	}
	if (ret < 0) {
		tls_error(why, why_size, "receive", ret);
		return HERR_IO;
	}
	*got = (size_t)ret;
	return HERR_OK;
}

/* --- HTTP -------------------------------------------------------------------------------------- */

static int safe_header_value(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

static enum herr build_request(const struct https_endpoint *ep, const struct https_request *req, char *buf,
			       size_t size, size_t *len)
{
	const char *lb = strchr(ep->host, ':') ? "[" : "", *rb = lb[0] ? "]" : "";
	int n;

	if (!req->method || !req->path || req->path[0] != '/' || !safe_header_value(req->method) ||
	    !safe_header_value(req->path) || strchr(req->path, ' ') ||
	    (req->content_type && !safe_header_value(req->content_type)) ||
	    (req->range && !safe_header_value(req->range)) || !safe_header_value(ep->host))
		return HERR_INVALID;
	n = snprintf(buf, size,
		     "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: hearth-agent\r\nAccept: */*\r\n"
		     "Connection: close\r\n%s%s%s%s%s%s",
		     req->method, req->path, lb, ep->host, rb, ep->port,
		     req->content_type ? "Content-Type: " : "", req->content_type ? req->content_type : "",
		     req->content_type ? "\r\n" : "", req->range ? "Range: " : "", req->range ? req->range : "",
		     req->range ? "\r\n" : "");
	if (n < 0 || (size_t)n >= size)
		return HERR_TOOBIG;
	if (req->body || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
		int m = snprintf(buf + n, size - (size_t)n, "Content-Length: %zu\r\n", req->body_len);

		if (m < 0 || (size_t)m >= size - (size_t)n)
			return HERR_TOOBIG;
		n += m;
	}
	if ((size_t)n + 2 >= size)
		return HERR_TOOBIG;
	memcpy(buf + n, "\r\n", 3);
	*len = (size_t)n + 2;
	return HERR_OK;
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

static int copy_value(char *dst, size_t size, const char *v, size_t len)
{
	if (len >= size)
		return -1;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

enum herr https_parse_head(const char *head, size_t len, struct https_response *r, char *why, size_t why_size)
{
	const char *p = head, *end = head + len, *eol;
	size_t i;

	eol = memchr(p, '\r', (size_t)(end - p));
	if (!eol)
		eol = end;
	if (eol - p < 12 || (memcmp(p, "HTTP/1.1 ", 9) != 0 && memcmp(p, "HTTP/1.0 ", 9) != 0)) {
		snprintf(why, why_size, "not an HTTP/1.x answer");
		return HERR_INVALID;
	}
	for (i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9') {
			snprintf(why, why_size, "a malformed status line");
			return HERR_INVALID;
		}
	}
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (r->status < 200 || r->status > 599 || (eol - p > 12 && p[12] != ' ')) {
		snprintf(why, why_size, "an unexpected status line");
		return HERR_INVALID;
	}
	p = eol;
	while (p < end) {
		const char *name, *colon, *value;
		size_t name_len, value_len;

		if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
			snprintf(why, why_size, "a malformed header");
			return HERR_INVALID;
		}
		p += 2;
		eol = memchr(p, '\r', (size_t)(end - p));
		if (!eol)
			eol = end;
		if (p == eol || *p == ' ' || *p == '\t') {
			snprintf(why, why_size, "a malformed or folded header");
			return HERR_INVALID;
		}
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon) {
			snprintf(why, why_size, "a header without ':'");
			return HERR_INVALID;
		}
		for (const char *q = p; q < eol; q++) {
			if ((unsigned char)*q < 0x20 && *q != '\t') {
				snprintf(why, why_size, "a control character in a header");
				return HERR_INVALID;
			}
		}
		name = p;
		name_len = (size_t)(colon - p);
		value = colon + 1;
		value_len = (size_t)(eol - value);
		trim(&value, &value_len);
		if (name_len == 14 && strncasecmp(name, "Content-Length", 14) == 0) {
			uint64_t v = 0;

			if (value_len == 0 || value_len > 15) {
				snprintf(why, why_size, "a bad Content-Length");
				return HERR_INVALID;
			}
			for (i = 0; i < value_len; i++) {
				if (value[i] < '0' || value[i] > '9') {
					snprintf(why, why_size, "a bad Content-Length");
					return HERR_INVALID;
				}
				v = v * 10 + (uint64_t)(value[i] - '0');
			}
			if (r->has_length && r->content_length != v) {
				snprintf(why, why_size, "conflicting Content-Length headers");
				return HERR_INVALID;
			}
			r->has_length = 1;
			r->content_length = v;
		} else if (name_len == 17 && strncasecmp(name, "Transfer-Encoding", 17) == 0) {
			if (!(value_len == 8 && strncasecmp(value, "identity", 8) == 0)) {
				snprintf(why, why_size, "chunked (Transfer-Encoding) answers are not supported");
				return HERR_INVALID;
			}
		} else if (name_len == 12 && strncasecmp(name, "Content-Type", 12) == 0) {
			if (copy_value(r->content_type, sizeof(r->content_type), value, value_len) != 0) {
				snprintf(why, why_size, "Content-Type too long");
				return HERR_INVALID;
			}
		} else if (name_len == 13 && strncasecmp(name, "Content-Range", 13) == 0) {
			if (copy_value(r->content_range, sizeof(r->content_range), value, value_len) != 0) {
				snprintf(why, why_size, "Content-Range too long");
				return HERR_INVALID;
			}
		}
		p = eol;
	}
	return HERR_OK;
}

/* Read the header (bounded); bytes read past it stay in buf[*head_len + 4 .. *got). */
static enum herr read_head(struct conn *c, char *buf, size_t size, size_t *head_len, size_t *got, char *why,
			   size_t why_size)
{
	size_t have = 0, n;
	enum herr rc;

	for (;;) {
		char *end;

		if (have == size) {
			snprintf(why, why_size, "answer header longer than %zu bytes", size);
			return HERR_TOOBIG;
		}
		rc = read_some(c, (unsigned char *)buf + have, size - have, &n, why, why_size);
		if (rc != HERR_OK)
			return rc;
		if (n == 0) {
			snprintf(why, why_size, "the server closed the connection before answering");
			return HERR_IO;
		}
		have += n;
		end = memmem(buf, have, "\r\n\r\n", 4);
		if (end) {
			*head_len = (size_t)(end - buf);
			*got = have;
			return HERR_OK;
		}
	}
}

static enum herr read_body(struct conn *c, const struct https_request *req, struct https_response *r,
			   const uint8_t *extra, size_t extra_len, char *why, size_t why_size)
{
	const struct https_sink *sink = req->sink;
	int streamed = sink && (r->status == 200 || r->status == 206);
	unsigned char chunk[16 * 1024];
	uint64_t left;
	size_t n;
	enum herr rc;

	if (r->status == 204 || r->status == 304 || strcmp(req->method, "HEAD") == 0)
		return HERR_OK;
	if (!r->has_length) {
		snprintf(why, why_size, "answer %d without a Content-Length", r->status);
		return HERR_INVALID;
	}
	left = r->content_length;
	if (extra_len > left) {
		snprintf(why, why_size, "more bytes than the Content-Length");
		return HERR_INVALID;
	}
	if (streamed) {
		if (r->content_length > sink->max) {
			snprintf(why, why_size, "answer of %llu bytes, more than the %llu expected",
				 (unsigned long long)r->content_length, (unsigned long long)sink->max);
			return HERR_TOOBIG;
		}
		/* The body has no deadline of its own: a large image takes its time, each read is bounded. */
		c->deadline = 0;
		if (sink->begin(sink->ctx, r) != 0 || (extra_len && sink->data(sink->ctx, extra, extra_len) != 0)) {
			snprintf(why, why_size, "download abandoned");
			return HERR_STATE;
		}
		left -= extra_len;
		while (left > 0) {
			rc = read_some(c, chunk, left < sizeof(chunk) ? (size_t)left : sizeof(chunk), &n, why, why_size);
			if (rc != HERR_OK)
				return rc;
			if (n == 0) {
				snprintf(why, why_size, "the connection closed %llu bytes before the end",
					 (unsigned long long)left);
				return HERR_IO;
			}
			if (sink->data(sink->ctx, chunk, n) != 0) {
				snprintf(why, why_size, "download abandoned");
				return HERR_STATE;
			}
			left -= n;
		}
		return HERR_OK;
	}
	if (r->content_length > HTTPS_BODY_MAX) {
		snprintf(why, why_size, "answer of %llu bytes, over the %d byte bound",
			 (unsigned long long)r->content_length, HTTPS_BODY_MAX);
		return HERR_TOOBIG;
	}
	r->body = malloc((size_t)r->content_length + 1);
	if (!r->body) {
		snprintf(why, why_size, "out of memory");
		return HERR_NOMEM;
	}
	memcpy(r->body, extra, extra_len);
	r->body_len = extra_len;
	while (r->body_len < r->content_length) {
		rc = read_some(c, r->body + r->body_len, (size_t)r->content_length - r->body_len, &n, why, why_size);
		if (rc != HERR_OK)
			return rc;
		if (n == 0) {
			snprintf(why, why_size, "the connection closed before the end of the answer");
			return HERR_IO;
		}
		r->body_len += n;
	}
	r->body[r->body_len] = '\0';
	return HERR_OK;
}

enum herr https_do(const struct https_endpoint *ep, const struct https_request *req, struct https_response *resp,
		   char *why, size_t why_size)
{
	char *head = NULL, request[1024];
	size_t request_len = 0, head_len = 0, got = 0;
	struct conn *c;
	enum herr rc;

	memset(resp, 0, sizeof(*resp));
	why[0] = '\0';
	c = calloc(1, sizeof(*c));
	head = malloc(HTTPS_HEADER_MAX + 1);
	if (!c || !head) {
		free(c);
		free(head);
		snprintf(why, why_size, "out of memory");
		return HERR_NOMEM;
	}
	c->ep = ep;
	mbedtls_net_init(&c->net);
	mbedtls_ssl_init(&c->ssl);
	mbedtls_ssl_config_init(&c->conf);
	mbedtls_x509_crt_init(&c->ca);
	mbedtls_x509_crt_init(&c->cert);
	mbedtls_pk_init(&c->key);
	c->deadline = now_ms() + HTTPS_DEADLINE_MS;

	rc = build_request(ep, req, request, sizeof(request), &request_len);
	if (rc != HERR_OK) {
		snprintf(why, why_size, "a request that cannot be sent (bad path or header)");
		goto out;
	}
	rc = tls_setup(c, why, why_size);
	if (rc == HERR_OK)
		rc = tcp_connect(c, why, why_size);
	if (rc == HERR_OK)
		rc = handshake(c, why, why_size);
	if (rc == HERR_OK)
		rc = write_all(c, request, request_len, why, why_size);
	if (rc == HERR_OK && req->body_len)
		rc = write_all(c, req->body, req->body_len, why, why_size);
	if (rc == HERR_OK)
		rc = read_head(c, head, HTTPS_HEADER_MAX, &head_len, &got, why, why_size);
	if (rc == HERR_OK)
		rc = https_parse_head(head, head_len, resp, why, why_size);
	if (rc == HERR_OK)
		rc = read_body(c, req, resp, (const uint8_t *)head + head_len + 4, got - head_len - 4, why, why_size);
	if (rc == HERR_OK)
		(void)mbedtls_ssl_close_notify(&c->ssl);
out:
	if (rc != HERR_OK)
		https_response_free(resp);
	mbedtls_net_free(&c->net);
	mbedtls_ssl_free(&c->ssl);
	mbedtls_ssl_config_free(&c->conf);
	mbedtls_x509_crt_free(&c->ca);
	mbedtls_x509_crt_free(&c->cert);
	mbedtls_pk_free(&c->key);
	free(c);
	free(head);
	return rc;
}

void https_response_free(struct https_response *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}
