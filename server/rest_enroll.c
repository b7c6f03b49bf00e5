/* REST enroll: not built yet (each route answers 501). */
#include "server/rest_internal.h"

void rest_enroll_tokens_list(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_enroll_tokens_create(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_enroll_token_delete(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_enroll(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}
