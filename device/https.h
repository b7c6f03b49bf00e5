/* https: the agent's small HTTPS/1.1 client (mbedTLS, TLS 1.2), one request per connection.
 *
 * Verification is never optional: the server's chain must lead to the CA file given (nothing
 * else is trusted), and its certificate must name the host (a DNS name through mbedTLS; an IP
 * literal against the certificate's iPAddress entries, which mbedTLS 2.28 does not check itself).
 * When a trust with pins is given, the leaf's key must also be pinned (core_pin_ok), checked in
 * the handshake's verify callback, so nothing is sent to an unpinned endpoint; a refusal says
 * "endpoint key not pinned: <pin>".
 *
 * Everything is bounded: connect, each read (HTTPS_IDLE_MS) and the whole exchange of an answer
 * kept in memory (HTTPS_DEADLINE_MS), the header (HTTPS_HEADER_MAX), a body in memory
 * (HTTPS_BODY_MAX). Answers must carry a Content-Length; chunked ones are refused. A body can be
 * streamed to a sink (firmware) instead: then only the header has a deadline, and the body is
 * bounded by the sink's max. */
#ifndef HEARTH_DEVICE_HTTPS_H
#define HEARTH_DEVICE_HTTPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/herr.h"
#include "device/core.h"

#define HTTPS_IDLE_MS 10000
#define HTTPS_DEADLINE_MS 30000
#define HTTPS_HEADER_MAX (16 * 1024)
#define HTTPS_BODY_MAX (1024 * 1024)

struct https_endpoint {
	const char *host;                /* DNS name or IP literal (no brackets) */
	const char *port;
	const char *ca_file;             /* PEM: the only trust anchors */
	const char *cert_file;           /* client certificate (PEM), or NULL */
	const char *key_file;            /* its private key (PEM, 0600), or NULL */
	const struct core_trust *trust;  /* NULL or no pins: no pin check (enrollment only) */
};

struct https_response {
	int status;
	int has_length;
	uint64_t content_length;
	char content_type[128];
	char content_range[128];
	uint8_t *body;                   /* the body when kept in memory (NUL-terminated), else NULL */
	size_t body_len;
};

/* Where the body of a 200 or 206 answer goes instead of memory. */
struct https_sink {
	/* The header is in (status, lengths, Content-Range); nonzero aborts. */
	int (*begin)(void *ctx, const struct https_response *r);
	/* A piece of the body; nonzero aborts. */
	int (*data)(void *ctx, const uint8_t *p, size_t n);
	void *ctx;
	uint64_t max;                    /* a longer body is refused before begin */
};

struct https_request {
	const char *method;              /* "GET", "POST" */
	const char *path;                /* starting with '/' */
	const char *content_type;        /* or NULL */
	const char *range;               /* Range header value, or NULL */
	const void *body;
	size_t body_len;
	const struct https_sink *sink;   /* or NULL */
};

/* One request. HERR_OK once an answer (of any status) was read whole: *resp holds it (free with
 * https_response_free). Otherwise why says what failed (HERR_CRYPTO: TLS or verification, the pin
 * included; HERR_IO: network or timeout; HERR_INVALID: a malformed or unsupported answer;
 * HERR_TOOBIG: over a bound; HERR_STATE: the sink aborted). */
enum herr https_do(const struct https_endpoint *ep, const struct https_request *req, struct https_response *resp,
		   char *why, size_t why_size);
void https_response_free(struct https_response *r);

/* The status line and header fields of an answer (head: len bytes, without the final empty line;
 * untrusted): HTTP/1.x with a status 200..599, no folded headers or control characters,
 * Content-Length digits only (repeated only with the same value), no Transfer-Encoding but
 * identity, bounded Content-Type and Content-Range. *r must start zeroed. Pure: a fuzz target
 * (tests/fuzz/fuzz_agent.c) drives it. */
enum herr https_parse_head(const char *head, size_t len, struct https_response *r, char *why, size_t why_size);

#endif
