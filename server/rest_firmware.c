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

#define LIST_DEVICES_MAX 1000

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

/* Digits only, at most max. -1 if text is not that. */
static int64_t parse_count(const char *text, int64_t max)
{
	int64_t v = 0;
	size_t i, n = strlen(text);

	if (n == 0 || n > 18 || strspn(text, "0123456789") != n)
		return -1;
	for (i = 0; i < n; i++)
		v = v * 10 + (text[i] - '0');
	return v <= max ? v : -1;
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
	if (sv && (security = parse_count(sv, INT32_MAX)) < 0) {
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
	static const char *const allowed[] = { "release", "percent", "devices", "tag", "failure_threshold", NULL };
	const char *ids[LIST_DEVICES_MAX];
	struct firmware_rollout_spec spec = { .failure_threshold = FIRMWARE_THRESHOLD_DEFAULT };
	struct firmware_rollout out;
	json_t *body = rest_body_object(req), *rel, *pct, *devs, *tag, *thr, *v;
	const char *why = NULL;
	size_t i, cohorts;
	enum herr rc;

	if (!body)
		return;
	if (rest_refuse_unknown(req, body, allowed) != 0)
		goto out;
	rel = json_object_get(body, "release");
	pct = json_object_get(body, "percent");
	devs = json_object_get(body, "devices");
	tag = json_object_get(body, "tag");
	thr = json_object_get(body, "failure_threshold");
	cohorts = (pct != NULL) + (devs != NULL) + (tag != NULL);
	if (!json_is_string(rel) || !ca_valid_id(json_string_value(rel))) {
		rest_reply_error(req, 422, "missing_field", "'release' (a release id) is required");
		goto out;
	}
	if (cohorts != 1) {
		rest_reply_error(req, 422, "invalid_cohort", "give exactly one of 'percent', 'devices' or 'tag'");
		goto out;
	}
	if (thr && (!json_is_integer(thr) || json_integer_value(thr) < 0 || json_integer_value(thr) > 100)) {
		rest_reply_error(req, 422, "invalid_field", "'failure_threshold' must be an integer percent 0..100");
		goto out;
	}
	if (thr)
		spec.failure_threshold = (unsigned)json_integer_value(thr);
	spec.release = json_string_value(rel);
	if (pct) {
		if (!json_is_integer(pct) || json_integer_value(pct) < 1 || json_integer_value(pct) > 100) {
			rest_reply_error(req, 422, "invalid_field", "'percent' must be an integer 1..100");
			goto out;
		}
		spec.kind = FIRMWARE_COHORT_PERCENT;
		spec.percent = (unsigned)json_integer_value(pct);
	} else if (devs) {
		if (!json_is_array(devs) || json_array_size(devs) == 0 || json_array_size(devs) > LIST_DEVICES_MAX) {
			rest_reply_error(req, 422, "invalid_field", "'devices' must be a list of 1..%d device ids",
					 LIST_DEVICES_MAX);
			goto out;
		}
		json_array_foreach(devs, i, v) {
			if (!json_is_string(v) || !ca_valid_id(json_string_value(v))) {
				rest_reply_error(req, 422, "invalid_field", "'devices'[%zu] is not a device id", i);
				goto out;
			}
			ids[i] = json_string_value(v);
		}
		spec.kind = FIRMWARE_COHORT_LIST;
		spec.devices = ids;
		spec.device_count = json_array_size(devs);
	} else {
		if (!json_is_string(tag) || json_string_length(tag) == 0 || json_string_length(tag) > 64) {
			rest_reply_error(req, 422, "invalid_field", "'tag' must be a string of 1..64 bytes");
			goto out;
		}
		spec.kind = FIRMWARE_COHORT_TAG;
		spec.tag = json_string_value(tag);
	}
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
	json_decref(body);
}

/* {"percent": N}: widen a percent rollout. */
void rest_rollout_patch(struct rest_req *req)
{
	static const char *const allowed[] = { "percent", NULL };
	json_t *body = rest_body_object(req), *pct;
	enum herr rc;

	if (!body)
		return;
	if (rest_refuse_unknown(req, body, allowed) != 0)
		goto out;
	pct = json_object_get(body, "percent");
	if (!json_is_integer(pct) || json_integer_value(pct) < 1 || json_integer_value(pct) > 100) {
		rest_reply_error(req, 422, "invalid_field", "'percent' must be an integer 1..100");
		goto out;
	}
	rc = firmware_rollout_widen(req->dd, req->params[0], (unsigned)json_integer_value(pct), req->actor);
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
	static const char *const allowed[] = { "reason", NULL };
	char reason[128] = "aborted by an operator";
	json_t *body = NULL, *r;

	if (req->body_len > 0) {
		body = rest_body_object(req);
		if (!body)
			return;
		if (rest_refuse_unknown(req, body, allowed) != 0)
			goto out;
		r = json_object_get(body, "reason");
		if (r && (!json_is_string(r) || json_string_length(r) > 100 ||
			  strspn(json_string_value(r), " !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "[]^_abcdefghijklmnopqrstuvwxyz{|}~") != json_string_length(r))) {
			rest_reply_error(req, 422, "invalid_field", "'reason' must be printable text of at most 100 bytes");
			goto out;
		}
		if (r)
			snprintf(reason, sizeof(reason), "%s", json_string_value(r));
	}
	state_change(req, firmware_rollout_abort(req->dd, req->params[0], req->actor, reason), "aborted");
out:
	json_decref(body);
}

/* --- the device's download -------------------------------------------------------------------- */

/* One range of "Range: bytes=..." over size bytes: 1 with [*from, *to] set, 0 to send it all
 * (no header, a form we do not serve such as several ranges, or one that is not valid: RFC 9110
 * says to ignore it), -1 if unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
	const char *dash;
	char a[24] = "", b[24] = "";
	size_t la, lb;
	int64_t x, y;

	if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	h += 6;
	dash = strchr(h, '-');
	if (!dash)
		return 0;
	la = (size_t)(dash - h);
	lb = strlen(dash + 1);
	if (la >= sizeof(a) || lb >= sizeof(b) || (la == 0 && lb == 0))
		return 0;
	memcpy(a, h, la);
	memcpy(b, dash + 1, lb);
	x = la ? parse_count(a, INT64_MAX / 2) : -1;
	y = lb ? parse_count(b, INT64_MAX / 2) : -1;
	if ((la && x < 0) || (lb && y < 0))
		return 0;
	if (la == 0) { /* the last y bytes */
		if (y == 0 || size == 0)
			return -1;
		*from = (uint64_t)y >= size ? 0 : size - (uint64_t)y;
		*to = size - 1;
		return 1;
	}
	if (lb && y < x)
		return 0;
	if ((uint64_t)x >= size)
		return -1;
	*from = (uint64_t)x;
	*to = lb && (uint64_t)y < size ? (uint64_t)y : size - 1;
	return 1;
}

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
	range = parse_range(rest_header(req, "Range"), (uint64_t)sb.st_size, &from, &to);
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
