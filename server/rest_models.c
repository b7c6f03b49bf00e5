/* REST models: device models and their minimization policies. A policy is validated by
 * policy_parse exactly as `hearth model set` does, stored as the operator wrote it, and applies to
 * the next message the running endpoint ingests. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/policy.h"
#include "server/rest_internal.h"
#include "server/store.h"

/* One line of policy_sensitive_kept's text is a field path and a few words. */
#define WARNING_LINE_MAX 256

struct model_list {
	json_t *items;
	int failed;
};

static int add_model(void *ctx, const char *name, int has_policy, int64_t devices)
{
	struct model_list *l = ctx;

	if (json_array_append_new(l->items, json_pack("{s:s, s:b, s:I}", "name", name, "has_policy",
						      has_policy, "devices", (json_int_t)devices)) != 0)
		l->failed = 1;
	return l->failed;
}

void rest_models_list(struct rest_req *req)
{
	struct model_list l = { .items = json_array() };

	if (!l.items || store_model_list(req->dd->store, add_model, &l) != HERR_OK || l.failed) {
		json_decref(l.items);
		rest_reply_internal(req);
		return;
	}
	rest_reply_json(req, 200, json_pack("{s:o}", "items", l.items));
}

/* The stored policy text as a JSON value: the object, or null when the model has none. */
static json_t *policy_value(const char *text)
{
	if (!text)
		return json_null();
	return json_loads(text, JSON_REJECT_DUPLICATES, NULL);
}

void rest_model_get(struct rest_req *req)
{
	const char *name = req->params[0];
	char *text = NULL;
	json_t *policy;
	enum herr rc;

	rc = store_model_get_policy(req->dd->store, name, &text);
	if (rc == HERR_NOTFOUND) {
		rest_reply_error(req, 404, "not_found", "no model '%s'", name);
		return;
	}
	if (rc != HERR_OK) {
		rest_reply_internal(req);
		return;
	}
	policy = policy_value(text);
	free(text);
	if (!policy) {
		rest_reply_internal(req);
		return;
	}
	rest_reply_json(req, 200, json_pack("{s:s, s:o}", "name", name, "policy", policy));
}

/* policy_sensitive_kept's lines ("  path (family): ...\n"), one string each. */
static json_t *warnings_of(const struct policy *pol)
{
	size_t size = POLICY_MAX_FIELDS * WARNING_LINE_MAX;
	char *text = malloc(size), *line, *end;
	json_t *list = json_array();

	if (!text || !list)
		goto fail;
	policy_sensitive_kept(pol, text, size);
	for (line = text; *line; line = end) {
		end = line + strcspn(line, "\n");
		if (*end)
			*end++ = '\0';
		line += strspn(line, " ");
		if (*line && json_array_append_new(list, json_string(line)) != 0)
			goto fail;
	}
	free(text);
	return list;
fail:
	free(text);
	json_decref(list);
	return NULL;
}

void rest_model_put(struct rest_req *req)
{
	const char *name = req->params[0];
	struct policy *pol = NULL;
	json_t *doc, *warnings = NULL;
	char why[256] = "", detail[64];
	int64_t now = (int64_t)time(NULL);

	/* The content type, well-formed JSON and an object: the glue's checks. */
	doc = rest_body_object(req);
	if (!doc)
		return;
	/* The text is stored as sent and read back with strlen. */
	if (memchr(req->body, '\0', req->body_len)) {
		rest_reply_error(req, 400, "invalid_json", "the body must not hold a NUL byte");
		goto out;
	}
	pol = calloc(1, sizeof(*pol));
	if (!pol) {
		rest_reply_internal(req);
		goto out;
	}
	if (policy_parse(req->body, req->body_len, pol, why, sizeof(why)) != HERR_OK) {
		rest_reply_error(req, 422, "invalid_policy", "%s", why);
		goto out;
	}
	warnings = warnings_of(pol);
	if (!warnings) {
		rest_reply_internal(req);
		goto out;
	}
	snprintf(detail, sizeof(detail), "%zu field%s kept", pol->count, pol->count == 1 ? "" : "s");
	if (store_begin(req->dd->store) != HERR_OK) {
		rest_reply_internal(req);
		goto out;
	}
	if (store_model_set_policy(req->dd->store, name, (const char *)req->body, now) != HERR_OK ||
	    rest_audit(req, "model.set_policy", name, detail) != HERR_OK ||
	    store_commit(req->dd->store) != HERR_OK) {
		store_rollback(req->dd->store);
		rest_reply_internal(req);
		goto out;
	}
	rest_changed(req);
	rest_reply_json(req, 200, json_pack("{s:s, s:O, s:O}", "name", name, "policy", doc,
					    "warnings", warnings));
out:
	json_decref(warnings);
	json_decref(doc);
	free(pol);
}
