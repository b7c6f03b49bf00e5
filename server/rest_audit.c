/* REST audit: the audit log, newest first, a page at a time. */
#include <stdint.h>
#include <stdio.h>

#include "server/rest_internal.h"
#include "server/store.h"

struct audit_page {
	json_t *items;
	size_t count, max;
	int64_t last_id;             /* of the last row kept */
	int more;                    /* a row past the page was seen */
	int failed;                  /* out of memory */
};

static json_t *text_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static int add_entry(void *ctx, const struct store_audit_row *r)
{
	struct audit_page *p = ctx;

	if (p->count >= p->max) {
		p->more = 1;
		return 1;
	}
	if (json_array_append_new(p->items, json_pack("{s:I, s:I, s:s, s:o, s:s, s:o, s:o}",
						      "id", (json_int_t)r->id, "at", (json_int_t)r->at,
						      "actor", r->actor, "source", text_or_null(r->source),
						      "action", r->action, "target", text_or_null(r->target),
						      "detail", text_or_null(r->detail))) != 0) {
		p->failed = 1;
		return 1;
	}
	p->count++;
	p->last_id = r->id;
	return 0;
}

static int saw_entry(void *ctx, const struct store_audit_row *r)
{
	(void)r;
	*(int *)ctx = 1;
	return 1;
}

/* The cursor is the id of the last entry of the previous page, in decimal. -1 (400 answered) if it
 * is not one. */
static int parse_cursor(struct rest_req *req, const char *cursor, int64_t *before)
{
	*before = 0;
	if (!cursor || rest_parse_audit_cursor(cursor, before) == 0)
		return 0;
	rest_reply_error(req, 400, "invalid_cursor", "cursor is not one this API gave out");
	return -1;
}

void rest_audit_list(struct rest_req *req)
{
	struct audit_page p = { 0 };
	const char *cursor;
	int64_t before;
	size_t limit;
	char next[24];

	if (rest_page(req, &limit, &cursor) != 0 || parse_cursor(req, cursor, &before) != 0)
		return;
	p.items = json_array();
	p.max = limit;
	/* One row past the page says whether there is a next one; the store caps a query at
	 * STORE_PAGE_MAX, so a full page of that size asks once more. */
	if (!p.items ||
	    store_audit_list(req->dd->store, before, limit < STORE_PAGE_MAX ? limit + 1 : limit, add_entry,
			     &p) != HERR_OK ||
	    p.failed ||
	    (p.count == STORE_PAGE_MAX && !p.more &&
	     store_audit_list(req->dd->store, p.last_id, 1, saw_entry, &p.more) != HERR_OK)) {
		json_decref(p.items);
		rest_reply_internal(req);
		return;
	}
	snprintf(next, sizeof(next), "%lld", (long long)p.last_id);
	rest_reply_json(req, 200, json_pack("{s:o, s:o}", "items", p.items,
					    "next_cursor", p.more ? json_string(next) : json_null()));
}
