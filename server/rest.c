/* The libmicrohttpd glue of the REST API: listening (HTTPS), reading bounded bodies, routing,
 * authentication and its rate limit, and writing answers. Resources are in rest_*.c. */
#include "server/rest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <mbedtls/sha256.h>
#include <microhttpd.h>

#include "ca/cert.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "server/net.h"
#include "server/rest_internal.h"
#include "server/store.h"

#define CONNECTIONS_MAX 128
#define CONNECTIONS_PER_ADDR 16
#define CONNECTION_TIMEOUT_S 10     /* idle or trickling (slowloris) connections go */
#define CONNECTION_MEMORY 65536     /* request line and headers must fit */
#define CERT_MAX 65536
/* Bad tokens: an address that sends more than this many in a window is refused for the rest of
 * it (429). The table is fixed-size; a busy slot is taken over by a newer address. */
#define AUTH_FAILS_MAX 10
#define AUTH_WINDOW_S 60
#define AUTH_SLOTS 256
#define METRICS_MAX 16384

struct auth_slot {
	char addr[64];
	unsigned fails;
	int64_t window_start;
	int reported;
};

struct rest {
	struct MHD_Daemon *daemon;
	struct datadir *dd;
	struct rest_hooks hooks;
	int plain;
	int listen_fd;               /* ours: kept across daemon restarts (certificate reload) */
	char *cert_pem, *key_pem, *trust_pem;
	size_t key_len;
	struct auth_slot slots[AUTH_SLOTS];
};

/* A request in progress: its body as it arrives (in memory), or, on a streaming route, the upload
 * being written to a file (authenticated before the first byte is read). */
struct pending {
	uint8_t *body;
	size_t len;
	int too_big;
	const struct route *route;   /* a streaming route, matched and authenticated */
	struct rest_upload up;
	mbedtls_sha256_context sha;
	int fd;                      /* the upload's file, or -1 */
	int failed;                  /* writing the upload failed */
	char actor[96], params[2][65];
};

/* DEVICE: no API token, but a device's client certificate (mTLS), checked against the store. */
enum scope_need { DEVICE = -2, PUBLIC = -1, NEED_READ = TOKEN_READ, NEED_OPERATE = TOKEN_OPERATE, NEED_ADMIN = TOKEN_ADMIN };

struct route {
	const char *method, *pattern;
	int need;                    /* enum scope_need */
	void (*fn)(struct rest_req *req);
	int stream;                  /* the body (application/octet-stream) goes to a file: rest_upload */
};

static void healthz(struct rest_req *req);
static void metrics(struct rest_req *req);

/* The routes: docs/openapi.yaml describes each (`hearth api routes` prints this table, and a test
 * compares the two). */
static const struct route routes[] = {
	{ "GET", "/healthz", PUBLIC, healthz, 0 },
	{ "GET", "/metrics", NEED_READ, metrics, 0 },
	{ "GET", "/api/v1/devices", NEED_READ, rest_devices_list, 0 },
	{ "POST", "/api/v1/devices", NEED_OPERATE, rest_devices_create, 0 },
	{ "GET", "/api/v1/devices/{id}", NEED_READ, rest_device_get, 0 },
	{ "PATCH", "/api/v1/devices/{id}", NEED_OPERATE, rest_device_patch, 0 },
	{ "DELETE", "/api/v1/devices/{id}", NEED_ADMIN, rest_device_delete, 0 },
	{ "POST", "/api/v1/devices/{id}/revoke", NEED_OPERATE, rest_device_revoke, 0 },
	{ "GET", "/api/v1/devices/{id}/certificates", NEED_READ, rest_device_certs, 0 },
	{ "GET", "/api/v1/devices/{id}/telemetry", NEED_READ, rest_device_telemetry, 0 },
	{ "GET", "/api/v1/telemetry/dropped", NEED_READ, rest_telemetry_dropped, 0 },
	{ "GET", "/api/v1/models", NEED_READ, rest_models_list, 0 },
	{ "GET", "/api/v1/models/{name}", NEED_READ, rest_model_get, 0 },
	{ "PUT", "/api/v1/models/{name}", NEED_ADMIN, rest_model_put, 0 },
	{ "GET", "/api/v1/enrollment-tokens", NEED_READ, rest_enroll_tokens_list, 0 },
	{ "POST", "/api/v1/enrollment-tokens", NEED_OPERATE, rest_enroll_tokens_create, 0 },
	{ "DELETE", "/api/v1/enrollment-tokens/{id}", NEED_OPERATE, rest_enroll_token_delete, 0 },
	{ "POST", "/api/v1/enroll", PUBLIC, rest_enroll, 0 },
	{ "GET", "/api/v1/ca/chain", NEED_READ, rest_ca_chain, 0 },
	{ "GET", "/api/v1/ca/crl", PUBLIC, rest_ca_crl, 0 },
	{ "GET", "/api/v1/ca/pins", NEED_READ, rest_ca_pins, 0 },
	{ "GET", "/api/v1/audit", NEED_ADMIN, rest_audit_list, 0 },
	{ "GET", "/api/v1/pins", NEED_READ, rest_pins_status, 0 },
	{ "POST", "/api/v1/pins/rotate", NEED_ADMIN, rest_pins_rotate, 0 },
	{ "POST", "/api/v1/pins/switch", NEED_ADMIN, rest_pins_switch, 0 },
	{ "POST", "/api/v1/device/renew", DEVICE, rest_device_renew, 0 },
	{ "GET", "/api/v1/device/manifests/{type}", DEVICE, rest_device_manifest, 0 },
	{ "GET", "/api/v1/models/{name}/firmware", NEED_READ, rest_firmware_list, 0 },
	{ "POST", "/api/v1/models/{name}/firmware", NEED_ADMIN, rest_firmware_upload, 1 },
	{ "GET", "/api/v1/firmware/{id}", NEED_READ, rest_firmware_get, 0 },
	{ "GET", "/api/v1/rollouts", NEED_READ, rest_rollouts_list, 0 },
	{ "POST", "/api/v1/rollouts", NEED_OPERATE, rest_rollout_create, 0 },
	{ "GET", "/api/v1/rollouts/{id}", NEED_READ, rest_rollout_get, 0 },
	{ "PATCH", "/api/v1/rollouts/{id}", NEED_OPERATE, rest_rollout_patch, 0 },
	{ "GET", "/api/v1/rollouts/{id}/devices", NEED_READ, rest_rollout_devices, 0 },
	{ "POST", "/api/v1/rollouts/{id}/pause", NEED_OPERATE, rest_rollout_pause, 0 },
	{ "POST", "/api/v1/rollouts/{id}/resume", NEED_OPERATE, rest_rollout_resume, 0 },
	{ "POST", "/api/v1/rollouts/{id}/abort", NEED_OPERATE, rest_rollout_abort, 0 },
	{ "GET", "/api/v1/device/firmware/{id}", DEVICE, rest_device_firmware, 0 },
};

void rest_print_routes(FILE *out)
{
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		fprintf(out, "%s %s %s\n", routes[i].method, routes[i].pattern,
			routes[i].need == PUBLIC ? "public" : routes[i].need == DEVICE ? "device" :
			token_scope_name((enum token_scope)routes[i].need));
}

/* --- answers ---------------------------------------------------------------------------------- */

static void drop_file(struct rest_req *req)
{
	if (req->has_file)
		close(req->out_fd);
	req->has_file = 0;
	req->out_fd = -1;
	req->content_range[0] = '\0';
}

void rest_reply_text(struct rest_req *req, unsigned status, const char *type, const char *text, size_t len)
{
	drop_file(req);
	free(req->out);
	req->out = malloc(len + 1);
	req->out_len = 0;
	req->status = 500;
	req->out_type = "application/json";
	if (!req->out)
		return;
	memcpy(req->out, text, len);
	req->out[len] = '\0';
	req->out_len = len;
	req->status = status;
	req->out_type = type;
}

void rest_reply_file(struct rest_req *req, unsigned status, const char *type, int fd, uint64_t offset,
		     uint64_t len, const char *content_range)
{
	drop_file(req);
	free(req->out);
	req->out = NULL;
	req->out_len = 0;
	req->has_file = 1;
	req->out_fd = fd;
	req->out_offset = offset;
	req->out_file_len = len;
	req->status = status;
	req->out_type = type;
	snprintf(req->content_range, sizeof(req->content_range), "%s", content_range ? content_range : "");
}

const char *rest_header(struct rest_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

void rest_reply_json(struct rest_req *req, unsigned status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;

	json_decref(body);
	drop_file(req);
	if (!text) {
		rest_reply_text(req, 500, "application/json",
				"{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}", 56);
		return;
	}
	free(req->out);
	req->out = text;
	req->out_len = strlen(text);
	req->status = status;
	req->out_type = "application/json";
}

void rest_reply_error(struct rest_req *req, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rest_reply_json(req, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

void rest_reply_internal(struct rest_req *req)
{
	rest_reply_error(req, 500, "internal", "the request could not be completed; see the server log");
}

void rest_reply_fault(struct rest_req *req, const struct rest_fault *f)
{
	rest_reply_error(req, f->status, f->code, "%s", f->message);
}

const char *rest_query(struct rest_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

json_t *rest_body_object(struct rest_req *req)
{
	struct rest_fault f;
	json_t *obj;

	if (!rest_parse_is_json(rest_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))) {
		rest_reply_error(req, 415, "unsupported_media_type", "the body must be application/json");
		return NULL;
	}
	obj = rest_parse_object(req->body, req->body_len, &f);
	if (!obj)
		rest_reply_fault(req, &f);
	return obj;
}

int rest_refuse_unknown(struct rest_req *req, json_t *obj, const char *const *allowed)
{
	struct rest_fault f;

	if (rest_parse_known_keys(obj, allowed, &f) == 0)
		return 0;
	rest_reply_fault(req, &f);
	return -1;
}

int rest_query_seconds(struct rest_req *req, const char *key, int64_t *out)
{
	const char *v = rest_query(req, key);

	if (!v || rest_parse_seconds(v, out) == 0)
		return 0;
	rest_reply_error(req, 400, "invalid_query", "%s must be a whole number, digits only", key);
	return -1;
}

int rest_page(struct rest_req *req, size_t *limit, const char **cursor)
{
	const char *l = rest_query(req, "limit"), *c = rest_query(req, "cursor");

	*limit = REST_PAGE_DEFAULT;
	*cursor = NULL;
	if (l && rest_parse_limit(l, STORE_PAGE_MAX, limit) != 0) {
		rest_reply_error(req, 400, "invalid_limit", "limit must be an integer 1..%d", STORE_PAGE_MAX);
		return -1;
	}
	if (c) {
		if (!ca_valid_id(c)) {
			rest_reply_error(req, 400, "invalid_cursor", "cursor is not one this API gave out");
			return -1;
		}
		*cursor = c;
	}
	return 0;
}

enum herr rest_audit(struct rest_req *req, const char *action, const char *target, const char *detail)
{
	return store_audit_from(req->dd->store, (int64_t)time(NULL), req->actor, req->addr, action, target,
				detail);
}

void rest_changed(struct rest_req *req)
{
	if (req->hooks->changed)
		req->hooks->changed(req->hooks->ctx);
}

/* --- built-in routes -------------------------------------------------------------------------- */

static void healthz(struct rest_req *req)
{
	rest_reply_text(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void metrics(struct rest_req *req)
{
	char *buf = malloc(METRICS_MAX);
	size_t n = 0;

	if (!buf) {
		rest_reply_internal(req);
		return;
	}
	if (req->hooks->metrics)
		n = req->hooks->metrics(req->hooks->ctx, buf, METRICS_MAX);
	rest_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", buf, n);
	free(buf);
}

/* --- routing and authentication ---------------------------------------------------------------- */

static struct auth_slot *slot_of(struct rest *r, const char *addr)
{
	uint32_t h = 2166136261u;
	const char *p;

	for (p = addr; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return &r->slots[h % AUTH_SLOTS];
}

/* 1 if addr sent too many bad tokens lately. */
static int auth_blocked(struct rest *r, const char *addr, int64_t now)
{
	struct auth_slot *s = slot_of(r, addr);

	return strcmp(s->addr, addr) == 0 && now - s->window_start < AUTH_WINDOW_S && s->fails >= AUTH_FAILS_MAX;
}

int rest_throttled(struct rest_req *req)
{
	if (!auth_blocked(req->rest, req->addr, (int64_t)time(NULL)))
		return 0;
	rest_reply_error(req, 429, "too_many_requests", "too many bad tokens from this address; try again later");
	return 1;
}

static void auth_failed(struct rest *r, struct rest_req *req, int64_t now);

void rest_bad_secret(struct rest_req *req)
{
	auth_failed(req->rest, req, (int64_t)time(NULL));
}

static void auth_failed(struct rest *r, struct rest_req *req, int64_t now)
{
	struct auth_slot *s = slot_of(r, req->addr);

	if (strcmp(s->addr, req->addr) != 0 || now - s->window_start >= AUTH_WINDOW_S) {
		snprintf(s->addr, sizeof(s->addr), "%s", req->addr);
		s->fails = 0;
		s->window_start = now;
		s->reported = 0;
	}
	s->fails++;
	/* The block lasts the whole window from the failure that started it, however long the
	 * failures before it were spread over. */
	if (s->fails == AUTH_FAILS_MAX)
		s->window_start = now;
	if (s->fails >= AUTH_FAILS_MAX && !s->reported) {
		/* One audit entry and one log line per window, not one per attempt. */
		s->reported = 1;
		log_warn("REST: %s sent %u bad tokens; refused for %d s", req->addr, s->fails, AUTH_WINDOW_S);
		(void)store_audit_from(req->dd->store, now, "anonymous", req->addr, "api.rate_limited",
				       NULL, "too many bad tokens");
	}
}

/* Who is asking: 0 if the token is good and allows need (req->actor set); else an error was
 * answered. */
static int authenticate(struct rest *r, struct rest_req *req, int need)
{
	const char *h = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	char id[TOKEN_ID_LEN + 1], hash[TOKEN_HASH_LEN];
	enum rest_bearer bearer;
	struct store_api_token t;
	enum token_scope scope;
	int64_t now = (int64_t)time(NULL);
	enum herr rc;

	if (rest_throttled(req))
		return -1;
	bearer = rest_parse_bearer(h, id, hash);
	if (bearer == REST_BEARER_NONE) {
		rest_reply_error(req, 401, "unauthorized", "an API token is required (Authorization: Bearer ...)");
		return -1;
	}
	if (bearer != REST_BEARER_OK) {
		auth_failed(r, req, now);
		rest_reply_error(req, 401, "unauthorized", "the API token is not valid");
		return -1;
	}
	rc = store_api_token_get(req->dd->store, id, &t);
	if (rc != HERR_OK && rc != HERR_NOTFOUND) {
		rest_reply_internal(req);
		return -1;
	}
	if (rc == HERR_NOTFOUND || !token_hash_equal(hash, t.hash) || t.revoked_at != 0 ||
	    (t.expires_at != 0 && t.expires_at <= now) || token_scope_parse(t.scope, &scope) != 0) {
		auth_failed(r, req, now);
		rest_reply_error(req, 401, "unauthorized", "the API token is not valid (unknown, revoked or expired)");
		return -1;
	}
	snprintf(req->actor, sizeof(req->actor), "api:%s", t.name);
	if ((int)scope < need) {
		rest_reply_error(req, 403, "forbidden", "this needs the '%s' scope; the token has '%s'",
				 token_scope_name((enum token_scope)need), t.scope);
		return -1;
	}
	/* last_used_at to the minute is enough, and spares a write per request. */
	if (now - t.last_used_at >= 60)
		(void)store_api_token_touch(req->dd->store, id, now);
	return 0;
}

/* The device behind the connection's client certificate: the chain verified by GnuTLS against
 * hearth's issuing CA (for client authentication, at the current time), then the certificate
 * checked against the store like an MQTT handshake (recorded, valid, device active). 0 with
 * req->device set, or an error answered. */
static int authenticate_device(struct rest *r, struct rest_req *req)
{
	gnutls_typed_vdata_st purpose = { .type = GNUTLS_DT_KEY_PURPOSE_OID,
					  .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT };
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *chain;
	gnutls_x509_crt_t crt = NULL;
	unsigned char serial[32];
	char role[STORE_ROLE_MAX], hex[CA_SERIAL_HEX_LEN];
	size_t cn_len = sizeof(req->device), serial_len = sizeof(serial);
	unsigned n = 0, status = 1;
	int ok = 0;

	if (r->plain) {
		rest_reply_error(req, 401, "unauthorized", "a device certificate needs HTTPS");
		return -1;
	}
	ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	chain = ci && ci->tls_session ? gnutls_certificate_get_peers(ci->tls_session, &n) : NULL;
	if (chain && n > 0 &&
	    gnutls_certificate_verify_peers(ci->tls_session, &purpose, 1, &status) == GNUTLS_E_SUCCESS &&
	    status == 0 && gnutls_x509_crt_init(&crt) == GNUTLS_E_SUCCESS &&
	    gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS &&
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, req->device, &cn_len) == 0 &&
	    cn_len < sizeof(req->device) && ca_valid_id(req->device) &&
	    gnutls_x509_crt_get_serial(crt, serial, &serial_len) == 0) {
		ca_serial_hex(serial, serial_len, hex);
		ok = store_identity_ok(req->dd->store, req->device, hex, role) == HERR_OK &&
		     strcmp(role, "device") == 0;
	}
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (!ok) {
		req->device[0] = '\0';
		rest_reply_error(req, 401, "unauthorized", "a valid client certificate of an active device is required");
		return -1;
	}
	snprintf(req->actor, sizeof(req->actor), "device:%s", req->device);
	return 0;
}

/* The route for req (params filled), or NULL with an error answered (404, 405, 400). */
static const struct route *lookup(struct rest_req *req, char params[2][65])
{
	int allowed_other_method = 0, bad_param = 0;
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		int m = rest_parse_route(routes[i].pattern, req->path, params);

		if (m == 0)
			continue;
		if (m < 0) {
			bad_param = 1;
			continue;
		}
		if (strcmp(routes[i].method, req->method) != 0) {
			allowed_other_method = 1;
			continue;
		}
		req->params[0] = params[0];
		req->params[1] = params[1];
		return &routes[i];
	}
	if (bad_param)
		rest_reply_error(req, 400, "invalid_id", "an id in the path must match [A-Za-z0-9_-]{1,64}");
	else if (allowed_other_method)
		rest_reply_error(req, 405, "method_not_allowed", "%s is not allowed here", req->method);
	else
		rest_reply_error(req, 404, "not_found", "no such resource");
	return NULL;
}

/* 0 if the caller may use rt (req->actor set), else an error was answered. */
static int admit(struct rest *r, struct rest_req *req, const struct route *rt)
{
	if (rt->need == DEVICE)
		return authenticate_device(r, req);
	if (rt->need != PUBLIC)
		return authenticate(r, req, rt->need);
	return 0;
}

static void dispatch(struct rest *r, struct rest_req *req)
{
	char params[2][65];
	const struct route *rt = lookup(req, params);

	if (!rt || admit(r, req, rt) != 0)
		return;
	if (rt->stream) { /* reached only without a body: the upload path handles the others */
		rest_reply_error(req, 415, "unsupported_media_type", "the body must be application/octet-stream");
		return;
	}
	rt->fn(req);
}

static void client_addr(struct MHD_Connection *conn, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	socklen_t sl = sizeof(struct sockaddr_in6);

	snprintf(buf, size, "?");
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		sl = sizeof(struct sockaddr_in);
	if (getnameinfo(ci->client_addr, sl, buf, (socklen_t)size, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(buf, size, "?");
}

static enum MHD_Result send_answer(struct MHD_Connection *conn, struct rest_req *req)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (req->has_file) {
		resp = MHD_create_response_from_fd_at_offset64(req->out_file_len, req->out_fd, req->out_offset);
		if (!resp)
			return MHD_NO;
		req->has_file = 0; /* the response closes it */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	} else {
		resp = MHD_create_response_from_buffer(req->out_len, req->out, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			return MHD_NO;
		req->out = NULL; /* ownership passed */
	}
	if (req->content_range[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, req->content_range);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->out_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (req->status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (req->status == 429)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "60");
	ret = MHD_queue_response(conn, req->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* An answer before the body was read (it is then not read at all). */
static enum MHD_Result early_error(struct rest *r, struct MHD_Connection *conn, const char *method,
				   const char *url, unsigned status, const char *code, const char *msg)
{
	struct rest_req req = { .method = method, .path = url, .conn = conn, .dd = r->dd, .hooks = &r->hooks,
				.rest = r, .out_fd = -1 };
	enum MHD_Result ret;

	rest_reply_error(&req, status, code, "%s", msg);
	if (!req.out)
		return MHD_NO;
	ret = send_answer(conn, &req);
	free(req.out);
	return ret;
}

static void request_init(struct rest *r, struct rest_req *req, struct MHD_Connection *conn, const char *url,
			 const char *method)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->path = url;
	req->body = (const uint8_t *)"";
	req->conn = conn;
	req->dd = r->dd;
	req->hooks = &r->hooks;
	req->rest = r;
	req->out_fd = -1;
	snprintf(req->actor, sizeof(req->actor), "anonymous");
	client_addr(conn, req->addr, sizeof(req->addr));
}

static enum MHD_Result answer(struct MHD_Connection *conn, struct rest_req *req)
{
	enum MHD_Result ret;

	if (!req->out && !req->has_file)
		rest_reply_internal(req);
	if (!req->out && !req->has_file)
		return MHD_NO;
	ret = send_answer(conn, req);
	free(req->out);
	drop_file(req);
	return ret;
}

/* The headers of a request to a streaming route: who asks is checked before a byte of the body is
 * read, then the body's file is opened. 0, or an answer was made (*ret). */
static int upload_begin(struct rest *r, struct MHD_Connection *conn, struct pending *p, struct rest_req *req,
			enum MHD_Result *ret)
{
	const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char dir[PATH_MAX];
	uint64_t length = 0;
	unsigned refused;

	if (admit(r, req, p->route) != 0)
		goto answered;
	if (!rest_parse_is_octet_stream(type)) {
		rest_reply_error(req, 415, "unsupported_media_type", "the body must be application/octet-stream");
		goto answered;
	}
	if ((refused = rest_parse_upload_length(cl, &length)) != 0) {
		rest_reply_error(req, refused, refused == 413 ? "too_large" : "length_required",
				 "an upload needs a Content-Length of 1 byte to 512 MiB");
		goto answered;
	}
	if (datadir_file(r->dd, "firmware", dir, sizeof(dir)) != HERR_OK ||
	    (mkdir(dir, 0700) != 0 && errno != EEXIST) ||
	    (size_t)snprintf(p->up.path, sizeof(p->up.path), "%s/.upload-XXXXXX", dir) >= sizeof(p->up.path) ||
	    (p->fd = mkostemp(p->up.path, O_CLOEXEC)) < 0) {
		log_err("REST: no file for an upload in %s: %s", dir, strerror(errno));
		p->up.path[0] = '\0';
		rest_reply_internal(req);
		goto answered;
	}
	(void)fchmod(p->fd, 0600);
	mbedtls_sha256_init(&p->sha);
	if (mbedtls_sha256_starts_ret(&p->sha, 0) != 0)
		p->failed = 1;
	snprintf(p->actor, sizeof(p->actor), "%s", req->actor);
	return 0;
answered:
	*ret = answer(conn, req);
	return -1;
}

static void upload_chunk(struct pending *p, const char *data, size_t len)
{
	size_t off = 0;

	if (p->failed || p->too_big)
		return;
	if (p->up.size + len > REST_UPLOAD_MAX) {
		p->too_big = 1;
		return;
	}
	if (mbedtls_sha256_update_ret(&p->sha, (const unsigned char *)data, len) != 0)
		p->failed = 1;
	while (!p->failed && off < len) {
		ssize_t n = write(p->fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_err("REST: writing an upload failed: %s", n < 0 ? strerror(errno) : "no progress");
			p->failed = 1;
			break;
		}
		off += (size_t)n;
	}
	p->up.size += len;
}

/* The whole upload arrived: to the handler with the file closed and its hash. */
static enum MHD_Result upload_end(struct rest *r, struct MHD_Connection *conn, struct pending *p,
				  struct rest_req *req)
{
	unsigned char digest[32];
	size_t i;

	req->params[0] = p->params[0];
	req->params[1] = p->params[1];
	snprintf(req->actor, sizeof(req->actor), "%s", p->actor);
	if (p->too_big) {
		rest_reply_error(req, 413, "too_large", "the upload is larger than 512 MiB");
	} else if (p->failed || mbedtls_sha256_finish_ret(&p->sha, digest) != 0 || fsync(p->fd) != 0) {
		rest_reply_error(req, 507, "insufficient_storage", "the upload could not be stored");
	} else {
		for (i = 0; i < sizeof(digest); i++)
			snprintf(p->up.sha256 + 2 * i, 3, "%02x", digest[i]);
		close(p->fd);
		p->fd = -1;
		req->upload = &p->up;
		p->route->fn(req);
	}
	(void)r;
	return answer(conn, req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct rest *r = cls;
	struct pending *p = *con_cls;
	struct rest_req req;
	enum MHD_Result ret;

	(void)version;
	if (!p) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
		char params[2][65];
		const struct route *rt;

		p = calloc(1, sizeof(*p));
		if (!p)
			return MHD_NO;
		p->fd = -1;
		*con_cls = p;
		/* A streaming route with a body: matched and authenticated now. */
		request_init(r, &req, conn, url, method);
		rt = (cl || te) ? lookup(&req, params) : NULL;
		free(req.out);
		req.out = NULL;
		if (rt && rt->stream) {
			p->route = rt;
			memcpy(p->params, params, sizeof(params));
			req.params[0] = p->params[0];
			req.params[1] = p->params[1];
			if (upload_begin(r, conn, p, &req, &ret) != 0)
				return ret;
			return MHD_YES;
		}
		if (rest_parse_body_too_big(cl))
			return early_error(r, conn, method, url, 413, "too_large", "the body is larger than 64 KiB");
		return MHD_YES;
	}
	if (p->route) {
		if (*upload_data_size > 0) {
			upload_chunk(p, upload_data, *upload_data_size);
			*upload_data_size = 0;
			return MHD_YES;
		}
		request_init(r, &req, conn, url, method);
		return upload_end(r, conn, p, &req);
	}
	if (*upload_data_size > 0) {
		if (!p->too_big && p->len + *upload_data_size <= REST_BODY_MAX) {
			uint8_t *grown = realloc(p->body, p->len + *upload_data_size + 1);

			if (!grown)
				return MHD_NO;
			p->body = grown;
			memcpy(p->body + p->len, upload_data, *upload_data_size);
			p->len += *upload_data_size;
			p->body[p->len] = '\0';
		} else {
			p->too_big = 1; /* chunked: no Content-Length said so beforehand */
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (p->too_big)
		return early_error(r, conn, method, url, 413, "too_large", "the body is larger than 64 KiB");

	request_init(r, &req, conn, url, method);
	if (p->body)
		req.body = p->body;
	req.body_len = p->len;
	dispatch(r, &req);
	return answer(conn, &req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct pending *p = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (p) {
		if (p->fd >= 0)
			close(p->fd);
		if (p->route)
			mbedtls_sha256_free(&p->sha);
		if (p->up.path[0])
			(void)unlink(p->up.path); /* not taken by the handler (it renames what it keeps) */
		free(p->body);
		free(p);
		*con_cls = NULL;
	}
}

/* Percent-decoding of the path and the query values, in place (rest_parse_unescape: the literal
 * "%00" then fails every id check and matches no filter). */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return rest_parse_unescape(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_info("REST: %s", msg);
}

/* --- listening -------------------------------------------------------------------------------- */

static enum herr open_listener(const char *spec, int plain, int *out)
{
	char shown[300];
	enum herr rc = net_listen(plain ? "api_plain (plain HTTP is only allowed on a loopback address)" : "api",
				  spec, plain ? NET_LOOPBACK : 0, 128, out, shown, sizeof(shown));

	/* Tests bind port 0 and read the real port from this line. */
	if (rc == HERR_OK)
		log_info("REST API listening on %s://%s", plain ? "http" : "https", shown);
	return rc;
}

static void free_keys(struct rest *r)
{
	if (r->key_pem) {
		memset(r->key_pem, 0, r->key_len);
		free(r->key_pem);
	}
	free(r->cert_pem);
	free(r->trust_pem);
	r->key_pem = r->cert_pem = r->trust_pem = NULL;
	r->key_len = 0;
}

/* The endpoint's certificate chain and key, as the files are now. */
static enum herr load_keys(struct rest *r)
{
	char path[PATH_MAX];
	uint8_t *cert = NULL, *key = NULL, *trust = NULL;
	size_t cert_len = 0, key_len = 0, trust_len = 0;
	enum herr rc;

	if ((rc = datadir_file(r->dd, DATADIR_ENDPOINT_CERT, path, sizeof(path))) != HERR_OK ||
	    (rc = fs_read_file(path, CERT_MAX, &cert, &cert_len)) != HERR_OK)
		return rc;
	/* Device certificates chain to the issuing CA: the only anchor for client certificates. */
	if ((rc = datadir_file(r->dd, DATADIR_ISSUING_CERT, path, sizeof(path))) != HERR_OK ||
	    (rc = fs_read_file(path, CERT_MAX, &trust, &trust_len)) != HERR_OK) {
		free(cert);
		return rc;
	}
	if ((rc = datadir_file(r->dd, DATADIR_ENDPOINT_KEY, path, sizeof(path))) != HERR_OK ||
	    (rc = fs_read_secret(path, CERT_MAX, &key, &key_len)) != HERR_OK) {
		free(cert);
		free(trust);
		return rc;
	}
	free_keys(r);
	r->cert_pem = (char *)cert;
	r->trust_pem = (char *)trust;
	r->key_pem = (char *)key;
	r->key_len = key_len;
	return HERR_OK;
}

static enum herr start_daemon(struct rest *r)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;

	if (!r->plain)
		flags |= MHD_USE_TLS;
	r->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, r,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, r,
		MHD_OPTION_LISTEN_SOCKET, r->listen_fd,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, r,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, r,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CONNECTIONS_PER_ADDR,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
		r->plain ? MHD_OPTION_END : MHD_OPTION_HTTPS_MEM_CERT, r->cert_pem,
		MHD_OPTION_HTTPS_MEM_KEY, r->key_pem,
		/* Asks for (does not require) a client certificate: devices present theirs, operators
		 * use tokens. */
		MHD_OPTION_HTTPS_MEM_TRUST, r->trust_pem,
		MHD_OPTION_HTTPS_PRIORITIES, "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE",
		MHD_OPTION_END);
	if (!r->daemon) {
		log_err("REST API could not start (TLS setup or listener)");
		return HERR_IO;
	}
	return HERR_OK;
}

enum herr rest_start(const char *data_dir, const char *addr, int plain, const struct rest_hooks *hooks,
		     struct rest **out)
{
	struct rest *r;
	enum herr rc;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return HERR_NOMEM;
	r->listen_fd = -1;
	r->plain = plain;
	r->hooks = *hooks;
	rc = datadir_open(data_dir, &r->dd);
	if (rc == HERR_OK && !plain)
		rc = load_keys(r);
	if (rc == HERR_OK)
		rc = open_listener(addr, plain, &r->listen_fd);
	if (rc == HERR_OK)
		rc = start_daemon(r);
	if (rc != HERR_OK) {
		rest_stop(r);
		return rc;
	}
	if (plain)
		log_warn("REST API serves plain HTTP (api_plain = yes): API tokens cross the loopback in clear");
	*out = r;
	return HERR_OK;
}

enum herr rest_reload(struct rest *r)
{
	enum herr rc;

	if (!r || r->plain)
		return HERR_OK;
	/* The socket stays ours and listening while the daemon is replaced: clients queue. Stopping
	 * the daemon waits for its thread, so no handler runs while the keys change. */
	if (r->daemon) {
		MHD_quiesce_daemon(r->daemon);
		MHD_stop_daemon(r->daemon);
		r->daemon = NULL;
	}
	rc = load_keys(r);
	if (rc != HERR_OK)
		log_err("REST API: the new endpoint certificate could not be read; keeping the old one");
	rc = start_daemon(r);
	if (rc == HERR_OK)
		log_info("REST API serves the renewed endpoint certificate");
	return rc;
}

void rest_stop(struct rest *r)
{
	if (!r)
		return;
	if (r->daemon) {
		MHD_quiesce_daemon(r->daemon); /* the listening socket is ours to close */
		MHD_stop_daemon(r->daemon);
	}
	if (r->listen_fd >= 0)
		close(r->listen_fd);
	free_keys(r);
	datadir_close(r->dd);
	free(r);
}
