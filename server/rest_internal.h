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
#include "server/rest_parse.h"
#include "server/token.h"

/* Request bodies larger than this are refused (413) before they are read. */
#define REST_BODY_MAX REST_PARSE_BODY_MAX
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
	/* On a streaming route (a firmware upload): the body, already on disk. */
	const struct rest_upload *upload;
	/* The answer, set by rest_reply_*. */
	unsigned status;
	char *out;                   /* malloc'd */
	size_t out_len;
	const char *out_type;
	int has_file;                /* rest_reply_file: out_fd from out_offset, out_file_len bytes */
	int out_fd;
	uint64_t out_offset, out_file_len;
	char content_range[96];      /* "" or the Content-Range header of a 206/416 */
};

/* A streamed upload: written to a 0600 file in DIR/firmware as it arrives, hashed on the way. The
 * glue deletes the file after the handler unless the handler moved it (rename). */
#define REST_UPLOAD_MAX REST_PARSE_UPLOAD_MAX
struct rest_upload {
	char path[4096];
	uint64_t size;
	char sha256[65];             /* lower-case hex of what was received */
};

/* A request header, or NULL. */
const char *rest_header(struct rest_req *req, const char *name);
/* A query parameter (decoded), or NULL. */
const char *rest_query(struct rest_req *req, const char *key);

/* Answer with body (the reference is taken), JSON-encoded. */
void rest_reply_json(struct rest_req *req, unsigned status, json_t *body);
/* Answer with text (copied) of the given content type. */
void rest_reply_text(struct rest_req *req, unsigned status, const char *type, const char *text, size_t len);
/* {"error": {"code": code, "message": ...}}; the message must not carry internals or secrets. */
void rest_reply_error(struct rest_req *req, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Answer with len bytes of the open file fd from offset (the glue closes fd). content_range: the
 * Content-Range header for 206/416, or NULL. */
void rest_reply_file(struct rest_req *req, unsigned status, const char *type, int fd, uint64_t offset,
		     uint64_t len, const char *content_range);
/* 500 for a store failure (logged, not shown). */
void rest_reply_internal(struct rest_req *req);
/* Answer what a rest_parse_* function refused. */
void rest_reply_fault(struct rest_req *req, const struct rest_fault *f);

/* The body as a JSON object: 415 unless the content type is application/json, 400 for invalid
 * JSON, duplicate keys or a non-object. NULL if an error was answered. Caller decrefs. */
json_t *rest_body_object(struct rest_req *req);
/* 422 naming the first key of obj not in allowed (NULL-terminated); 0 if all are known. */
int rest_refuse_unknown(struct rest_req *req, json_t *obj, const char *const *allowed);
/* A query parameter that must be Unix seconds (digits only, at most REST_SECONDS_MAX). 0 if absent
 * or good (*out set only then), -1 if bad (400 answered). */
#define REST_SECONDS_MAX REST_PARSE_SECONDS_MAX
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
void rest_firmware_list(struct rest_req *req);
void rest_firmware_upload(struct rest_req *req);
void rest_firmware_get(struct rest_req *req);
void rest_rollouts_list(struct rest_req *req);
void rest_rollout_create(struct rest_req *req);
void rest_rollout_get(struct rest_req *req);
void rest_rollout_patch(struct rest_req *req);
void rest_rollout_devices(struct rest_req *req);
void rest_rollout_pause(struct rest_req *req);
void rest_rollout_resume(struct rest_req *req);
void rest_rollout_abort(struct rest_req *req);
void rest_device_firmware(struct rest_req *req);

#endif
