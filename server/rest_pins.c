/* REST: the endpoint's pin set and its readiness-gated rotation (server/pins.h), as the CLI's
 * `hearth pins` does it. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/pins.h"
#include "server/rest_internal.h"

struct stranded {
	json_t *ids;
	size_t max;
};

static int add_stranded(void *ctx, const char *id)
{
	struct stranded *s = ctx;

	if (json_array_size(s->ids) < s->max)
		json_array_append_new(s->ids, json_string(id));
	return 0;
}

/* The status as JSON (not_acknowledged: at most 1000 ids), or NULL after answering. */
static json_t *status_json(struct rest_req *req, struct pins_status *st)
{
	struct stranded s = { .ids = json_array(), .max = 1000 };
	struct pins_set p;
	enum herr rc;

	if (!s.ids) {
		rest_reply_internal(req);
		return NULL;
	}
	rc = pins_status(req->dd, (int64_t)time(NULL), st, add_stranded, &s);
	if (rc == HERR_NOTFOUND) {
		json_decref(s.ids);
		rest_reply_error(req, 404, "not_found", "no pin set was announced yet (POST /api/v1/pins/rotate)");
		return NULL;
	}
	if (rc != HERR_OK || pins_read(req->dd, &p) != HERR_OK) {
		json_decref(s.ids);
		rest_reply_internal(req);
		return NULL;
	}
	return json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:o}", "version", (json_int_t)st->version, "current",
			 p.current, "next", p.next, "backup", p.backup, "active", (json_int_t)st->active, "acknowledged",
			 (json_int_t)st->acked, "not_acknowledged", s.ids);
}

void rest_pins_status(struct rest_req *req)
{
	struct pins_status st;
	json_t *body = status_json(req, &st);

	if (body)
		rest_reply_json(req, 200, body);
}

void rest_pins_rotate(struct rest_req *req)
{
	struct pins_status st;
	int64_t version = 0;
	json_t *body;

	if (pins_announce(req->dd, req->actor, &version) != HERR_OK) {
		rest_reply_internal(req);
		return;
	}
	rest_changed(req);
	body = status_json(req, &st);
	if (body)
		rest_reply_json(req, 201, body);
}

/* POST /api/v1/pins/switch {"threshold"?: percent, "force"?: bool, "to"?: "next"|"backup"}: as
 * `hearth pins switch [--backup]`; with force the answer names the devices it stranded. */
void rest_pins_switch(struct rest_req *req)
{
	struct rest_pins_switch sw = { .threshold = 100 };
	struct pins_status st;
	struct rest_fault f;
	json_t *in = NULL, *before = NULL, *after = NULL;
	json_int_t threshold;
	int force, backup;
	int64_t version = 0;

	if (req->body_len > 0) {
		in = rest_body_object(req);
		if (!in)
			return;
		if (rest_parse_pins_switch(in, &sw, &f) != 0) {
			rest_reply_fault(req, &f);
			goto out;
		}
	}
	threshold = (json_int_t)sw.threshold;
	force = sw.force;
	backup = sw.backup;
	before = status_json(req, &st);
	if (!before)
		goto out;
	if ((json_int_t)st.acked * 100 < threshold * (json_int_t)st.active && !force) {
		rest_reply_json(req, 409, json_pack("{s:{s:s, s:s}, s:O}", "error", "code", "not_ready", "message",
						    "devices that have not acknowledged the pin set would be stranded",
						    "status", before));
		goto out;
	}
	if ((backup ? pins_switch_backup(req->dd, req->actor, &version) : pins_switch(req->dd, req->actor, &version)) !=
	    HERR_OK) {
		rest_reply_error(req, 409, "not_announced", "the %s key is not on disk or was not announced in the "
				 "newest pin set (POST /api/v1/pins/rotate first)", backup ? "backup" : "next");
		goto out;
	}
	rest_changed(req);
	after = status_json(req, &st);
	if (after)
		rest_reply_json(req, 200, json_pack("{s:O, s:O}", "stranded", json_object_get(before, "not_acknowledged"),
						    "status", after));
out:
	json_decref(after);
	json_decref(before);
	json_decref(in);
}
