/* REST: firmware releases (uploaded as a stream, server/rest.c writes them to disk), rollouts and
 * their control, and the device's download with Range (server/firmware.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/cert.h"
#include "common/log.h"
#include "server/firmware.h"
#include "server/rest_internal.h"
#include "server/store.h"

static json_t *release_json(const struct firmware_release *r)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I}", "id", r->id, "model", r->model, "version",
			 r->version, "security_version", (json_int_t)r->security_version, "sha256", r->sha256,
			 "size", (json_int_t)r->size, "created_at", (json_int_t)r->created_at);
}

static json_t *rollout_json(const struct firmware_rollout *r)
{
	json_t *cohort = json_pack("{s:s}", "kind", r->cohort);

	if (strcmp(r->cohort, "percent") == 0)
		json_object_set_new(cohort, "percent", json_integer(r->percent));
	else if (strcmp(r->cohort, "tag") == 0)
		json_object_set_new(cohort, "tag", json_string(r->tag));
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s?, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}}", "id", r->id,
			 "release", r->release, "model", r->model, "state", r->state, "cohort", cohort,
			 "failure_threshold", (json_int_t)r->failure_threshold, "abort_reason",
			 r->abort_reason[0] ? r->abort_reason : NULL, "created_at", (json_int_t)r->created_at,
			 "updated_at", (json_int_t)r->updated_at, "devices", "offered", (json_int_t)r->offered,
			 "downloading", (json_int_t)r->downloading, "installed", (json_int_t)r->installed, "failed",
			 (json_int_t)r->failed, "rolled_back", (json_int_t)r->rolled_back);
}

/* --- releases ---------------------------------------------------------------------------------- */

static int model_known(struct rest_req *req, const char *name)
{
	char *policy = NULL;
	enum herr rc = store_model_get_policy(req->dd->store, name, &policy);

	free(policy);
	if (rc == HERR_NOTFOUND) {
		rest_reply_error(req, 404, "not_found", "no model '%s'", name);
		return 0;
	}
	if (rc != HERR_OK) {
		rest_reply_internal(req);
		return 0;
	}
	return 1;
}

static int add_release(void *ctx, const struct firmware_release *r)
{
	return json_array_append_new(ctx, release_json(r)) == 0 ? 0 : -1;
}

void rest_firmware_list(struct rest_req *req)
{
	json_t *items;

	if (!model_known(req, req->params[0]))
		return;
	items = json_array();
	if (!items || firmware_release_list(req->dd, req->params[0], add_release, items) != HERR_OK) {
		json_decref(items);
		rest_reply_internal(req);
		return;
	}
	rest_reply_json(req, 200, json_pack("{s:o}", "items", items));
}

/* POST /api/v1/models/{name}/firmware?version=V[&security_version=N][&sha256=HEX], the image as the
 * body (application/octet-stream). The glue already wrote and hashed it. */
void rest_firmware_upload(struct rest_req *req)
{
	const char *version = rest_query(req, "version"), *sv = rest_query(req, "security_version");
	const char *expect = rest_query(req, "sha256");
	struct firmware_release rel;
	int64_t security = 0;
	enum herr rc;

	if (!req->upload) {
		rest_reply_error(req, 400, "missing_body", "the image is the request body");
		return;
	}
	if (!version || !version[0]) {
		rest_reply_error(req, 422, "missing_field", "?version= (the firmware's version string) is required");
		return;
	}
	if (sv && (security = rest_parse_count(sv, INT32_MAX)) < 0) {
		rest_reply_error(req, 422, "invalid_field", "security_version must be an integer 0..2147483647");
		return;
	}
	if (expect && strcasecmp(expect, req->upload->sha256) != 0) {
		rest_reply_error(req, 422, "digest_mismatch", "the body's sha256 is %s, not the one given", req->upload->sha256);
		return;
	}
	rc = firmware_release_add(req->dd, req->params[0], version, security, req->upload->path, req->upload->sha256,
				  req->upload->size, req->actor, &rel);
	if (rc == HERR_NOTFOUND)
		rest_reply_error(req, 404, "not_found", "no model '%s'", req->params[0]);
	else if (rc == HERR_EXISTS)
		rest_reply_error(req, 409, "release_exists", "model '%s' already has a release '%s'", req->params[0], version);
	else if (rc == HERR_INVALID)
		rest_reply_error(req, 422, "invalid_field",
				 "version must match [A-Za-z0-9._+-]{1,64} and security_version be >= 0");
	else if (rc != HERR_OK)
		rest_reply_internal(req);
	else
		rest_reply_json(req, 201, release_json(&rel));
}

void rest_firmware_get(struct rest_req *req)
{
	struct firmware_release rel;
	enum herr rc = firmware_release_get(req->dd, req->params[0], &rel);

	if (rc == HERR_NOTFOUND)
		rest_reply_error(req, 404, "not_found", "no release '%s'", req->params[0]);
	else if (rc != HERR_OK)
		rest_reply_internal(req);
	else
		rest_reply_json(req, 200, release_json(&rel));
}

/* --- rollouts ---------------------------------------------------------------------------------- */

static int add_rollout(void *ctx, const struct firmware_rollout *r)
{
	return json_array_append_new(ctx, rollout_json(r)) == 0 ? 0 : -1;
}

void rest_rollouts_list(struct rest_req *req)
{
	json_t *items = json_array();

	if (!items || firmware_rollout_list(req->dd, add_rollout, items) != HERR_OK) {
		json_decref(items);
		rest_reply_internal(req);
		return;
	}
	rest_reply_json(req, 200, json_pack("{s:o}", "items", items));
}

/* The rollout of the path, answered; or 404/500. */
static void reply_rollout(struct rest_req *req, unsigned status)
{
	struct firmware_rollout r;
	enum herr rc = firmware_rollout_get(req->dd, req->params[0], &r);

	if (rc == HERR_NOTFOUND)
		rest_reply_error(req, 404, "not_found", "no rollout '%s'", req->params[0]);
	else if (rc != HERR_OK)
		rest_reply_internal(req);
	else
		rest_reply_json(req, status, rollout_json(&r));
}

void rest_rollout_get(struct rest_req *req)
{
	reply_rollout(req, 200);
}

/* {"release": ID, exactly one of "percent": 1..100 | "devices": [ids] | "tag": T,
 *  "failure_threshold": 0..100 (default FIRMWARE_THRESHOLD_DEFAULT)} */
void rest_rollout_create(struct rest_req *req)
{
	static const enum firmware_cohort kinds[] = { [REST_COHORT_PERCENT] = FIRMWARE_COHORT_PERCENT,
						      [REST_COHORT_LIST] = FIRMWARE_COHORT_LIST,
						      [REST_COHORT_TAG] = FIRMWARE_COHORT_TAG };
	struct firmware_rollout_spec spec = { 0 };
	struct firmware_rollout out;
	struct rest_rollout_new *in = NULL;
	struct rest_fault f;
	json_t *body = rest_body_object(req);
	const char *why = NULL;
	enum herr rc;

	if (!body)
		return;
	/* Room for a thousand device ids: not on the REST thread's stack. */
	in = malloc(sizeof(*in));
	if (!in) {
		rest_reply_internal(req);
		goto out;
	}
	if (rest_parse_rollout_new(body, FIRMWARE_THRESHOLD_DEFAULT, in, &f) != 0) {
		rest_reply_fault(req, &f);
		goto out;
	}
	spec.release = in->release;
	spec.kind = kinds[in->kind];
	spec.percent = in->percent;
	spec.devices = in->devices;
	spec.device_count = in->device_count;
	spec.tag = in->tag;
	spec.failure_threshold = in->failure_threshold;
	rc = firmware_rollout_create(req->dd, &spec, req->actor, &out, &why);
	if (rc == HERR_NOTFOUND)
		rest_reply_error(req, 404, "not_found", "no release '%s'", spec.release);
	else if (rc == HERR_STATE)
		rest_reply_error(req, 409, "rollout_active", "the model already has an active or paused rollout");
	else if (rc == HERR_INVALID)
		rest_reply_error(req, 422, "invalid_cohort", "%s", why ? why : "the rollout is not valid");
	else if (rc != HERR_OK)
		rest_reply_internal(req);
	else
		rest_reply_json(req, 201, rollout_json(&out));
out:
	free(in);
	json_decref(body);
}

/* {"percent": N}: widen a percent rollout. */
void rest_rollout_patch(struct rest_req *req)
{
	json_t *body = rest_body_object(req);
	struct rest_fault f;
	unsigned percent;
	enum herr rc;

	if (!body)
		return;
	if (rest_parse_rollout_widen(body, &percent, &f) != 0) {
		rest_reply_fault(req, &f);
		goto out;
	}
	rc = firmware_rollout_widen(req->dd, req->params[0], percent, req->actor);
	if (rc == HERR_NOTFOUND)
		rest_reply_error(req, 404, "not_found", "no rollout '%s'", req->params[0]);
	else if (rc == HERR_INVALID || rc == HERR_STATE)
		rest_reply_error(req, 409, "not_widened",
				 "only an active or paused percent rollout widens, and only to a larger percent");
	else if (rc != HERR_OK)
		rest_reply_internal(req);
	else
		reply_rollout(req, 200);
out:
	json_decref(body);
}

struct device_rows {
	json_t *items;
};

static int add_device(void *ctx, const struct firmware_rollout_device *d)
{
	struct device_rows *rows = ctx;

	return json_array_append_new(rows->items, json_pack("{s:s, s:I, s:s, s:I}", "device", d->device,
			"manifest_version", (json_int_t)d->manifest_version, "status", d->status, "at",
			(json_int_t)d->at)) == 0 ? 0 : -1;
}

void rest_rollout_devices(struct rest_req *req)
{
	struct firmware_rollout r;
	struct device_rows rows = { .items = json_array() };
	enum herr rc = firmware_rollout_get(req->dd, req->params[0], &r);

	if (rc == HERR_OK && rows.items)
		rc = firmware_rollout_devices(req->dd, req->params[0], add_device, &rows);
	if (rc == HERR_NOTFOUND)
		rest_reply_error(req, 404, "not_found", "no rollout '%s'", req->params[0]);
	else if (rc != HERR_OK || !rows.items)
		rest_reply_internal(req);
	else {
		rest_reply_json(req, 200, json_pack("{s:o}", "items", rows.items));
		return;
	}
	json_decref(rows.items);
}

static void state_change(struct rest_req *req, enum herr rc, const char *what)
{
	if (rc == HERR_NOTFOUND)
		rest_reply_error(req, 404, "not_found", "no rollout '%s'", req->params[0]);
	else if (rc == HERR_STATE)
		rest_reply_error(req, 409, "invalid_state", "the rollout cannot be %s in its state", what);
	else if (rc != HERR_OK)
		rest_reply_internal(req);
	else
		reply_rollout(req, 200);
}

void rest_rollout_pause(struct rest_req *req)
{
	state_change(req, firmware_rollout_pause(req->dd, req->params[0], req->actor), "paused");
}

void rest_rollout_resume(struct rest_req *req)
{
	state_change(req, firmware_rollout_resume(req->dd, req->params[0], req->actor), "resumed");
}

/* An optional body {"reason": "..."} (up to 100 bytes). */
void rest_rollout_abort(struct rest_req *req)
{
	char reason[REST_PARSE_REASON_MAX + 1] = "aborted by an operator";
	struct rest_fault f;
	json_t *body = NULL;

	if (req->body_len > 0) {
		body = rest_body_object(req);
		if (!body)
			return;
		if (rest_parse_rollout_abort(body, reason, &f) != 0) {
			rest_reply_fault(req, &f);
			goto out;
		}
	}
	state_change(req, firmware_rollout_abort(req->dd, req->params[0], req->actor, reason), "aborted");
out:
	json_decref(body);
}

/* --- the device's download -------------------------------------------------------------------- */

/* GET /api/v1/device/firmware/{release}: the image, to a device the release was offered to; a
 * single byte range (Range: bytes=A-B, A- or -N) resumes an interrupted download. */
void rest_device_firmware(struct rest_req *req)
{
	char path[PATH_MAX], cr[96];
	uint64_t from = 0, to = 0;
	struct stat sb;
	int ok = 0, fd, range;
	enum herr rc = firmware_device_may_download(req->dd, req->device, req->params[0], &ok);

	if (rc != HERR_OK && rc != HERR_NOTFOUND) {
		rest_reply_internal(req);
		return;
	}
	if (rc == HERR_NOTFOUND || !ok) {
		rest_reply_error(req, 404, "not_found", "no release '%s' was offered to this device", req->params[0]);
		return;
	}
	if (firmware_release_path(req->dd, req->params[0], path, sizeof(path)) != HERR_OK ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_err("REST: release %s: image missing: %s", req->params[0], strerror(errno));
		rest_reply_internal(req);
		return;
	}
	if (fstat(fd, &sb) != 0) {
		close(fd);
		rest_reply_internal(req);
		return;
	}
	range = rest_parse_range(rest_header(req, "Range"), (uint64_t)sb.st_size, &from, &to);
	if (range < 0) {
		close(fd);
		snprintf(cr, sizeof(cr), "bytes */%" PRIu64, (uint64_t)sb.st_size);
		rest_reply_error(req, 416, "range_not_satisfiable", "the image has %" PRIu64 " bytes",
				 (uint64_t)sb.st_size);
		snprintf(req->content_range, sizeof(req->content_range), "%s", cr);
		return;
	}
	if (range == 0) {
		rest_reply_file(req, 200, "application/octet-stream", fd, 0, (uint64_t)sb.st_size, NULL);
		return;
	}
	snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, from, to, (uint64_t)sb.st_size);
	rest_reply_file(req, 206, "application/octet-stream", fd, from, to - from + 1, cr);
}
