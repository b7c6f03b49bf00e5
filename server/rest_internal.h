/* rest_internal: what the REST resource files (rest_*.c) share with the glue in rest.c. A handler
 * gets a parsed, authenticated request and answers it with one of the rest_reply_* calls; it never
 * sees libmicrohttpd. Private to server/rest*.c. */
#ifndef HEARTH_REST_INTERNAL_H
#define HEARTH_REST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "server/datadir.h"
#include "server/rest.h"
#include "server/token.h"

/* Request bodies larger than this are refused (413) before they are read. */
#define REST_BODY_MAX (64 * 1024)
#define REST_PAGE_DEFAULT 100

struct rest_req {
	const char *method;          /* "GET", "POST", ... */
	const char *path;
	const char *params[2];       /* the {…} parts of the route, in order; [A-Za-z0-9_-]{1,64} */
	const uint8_t *body;         /* NUL-terminated for convenience; body_len excludes the NUL */
	size_t body_len;
	char addr[64];               /* the client's address */
	char actor[96];              /* "api:<token name>", "device:<id>", or "anonymous" */
	char device[65];             /* on device routes: the id its client certificate proved */
	struct datadir *dd;          /* the REST thread's own handle */
	const struct rest_hooks *hooks;
	struct rest *rest;
	void *conn;                  /* libmicrohttpd's connection (for rest_query) */
	/* The answer, set by rest_reply_*. */
	unsigned status;
	char *out;                   /* malloc'd */
	size_t out_len;
	const char *out_type;
};

/* A query parameter (decoded), or NULL. */
const char *rest_query(struct rest_req *req, const char *key);

/* Answer with body (the reference is taken), JSON-encoded. */
void rest_reply_json(struct rest_req *req, unsigned status, json_t *body);
/* Answer with text (copied) of the given content type. */
void rest_reply_text(struct rest_req *req, unsigned status, const char *type, const char *text, size_t len);
/* {"error": {"code": code, "message": ...}}; the message must not carry internals or secrets. */
void rest_reply_error(struct rest_req *req, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* 500 for a store failure (logged, not shown). */
void rest_reply_internal(struct rest_req *req);

/* The body as a JSON object: 415 unless the content type is application/json, 400 for invalid
 * JSON, duplicate keys or a non-object. NULL if an error was answered. Caller decrefs. */
json_t *rest_body_object(struct rest_req *req);
/* 422 naming the first key of obj not in allowed (NULL-terminated); 0 if all are known. */
int rest_refuse_unknown(struct rest_req *req, json_t *obj, const char *const *allowed);
/* A query parameter that must be Unix seconds (digits only, at most REST_SECONDS_MAX). 0 if absent
 * or good (*out set only then), -1 if bad (400 answered). */
#define REST_SECONDS_MAX 253402300799LL /* 9999-12-31T23:59:59Z */
int rest_query_seconds(struct rest_req *req, const char *key, int64_t *out);
/* ?limit= (1..STORE_PAGE_MAX, default REST_PAGE_DEFAULT) and ?cursor= (an id, or absent). 400 and
 * -1 if either is bad. */
int rest_page(struct rest_req *req, size_t *limit, const char **cursor);

/* Audit a change made by this request (actor = token name, source = client address). */
enum herr rest_audit(struct rest_req *req, const char *action, const char *target, const char *detail);
/* Tell the endpoint (policy changed, device revoked). */
void rest_changed(struct rest_req *req);

/* Bad secrets (API or enrollment tokens) from one address are rate-limited: rest_throttled answers
 * 429 and returns 1 if req's address sent too many lately; rest_bad_secret counts one more. */
int rest_throttled(struct rest_req *req);
void rest_bad_secret(struct rest_req *req);

/* --- resources: one handler per route (the route table is in rest.c) --------------------------- */
void rest_devices_list(struct rest_req *req);
void rest_devices_create(struct rest_req *req);
void rest_device_get(struct rest_req *req);
void rest_device_patch(struct rest_req *req);
void rest_device_delete(struct rest_req *req);
void rest_device_revoke(struct rest_req *req);
void rest_device_certs(struct rest_req *req);
void rest_device_telemetry(struct rest_req *req);
void rest_telemetry_dropped(struct rest_req *req);
void rest_models_list(struct rest_req *req);
void rest_model_get(struct rest_req *req);
void rest_model_put(struct rest_req *req);
void rest_enroll_tokens_list(struct rest_req *req);
void rest_enroll_tokens_create(struct rest_req *req);
void rest_enroll_token_delete(struct rest_req *req);
void rest_enroll(struct rest_req *req);
void rest_ca_chain(struct rest_req *req);
void rest_ca_crl(struct rest_req *req);
void rest_ca_pins(struct rest_req *req);
void rest_audit_list(struct rest_req *req);
void rest_device_renew(struct rest_req *req);
void rest_pins_status(struct rest_req *req);
void rest_pins_rotate(struct rest_req *req);
void rest_pins_switch(struct rest_req *req);
void rest_device_manifest(struct rest_req *req);

#endif
