/* REST models: not built yet (each route answers 501). */
#include "server/rest_internal.h"

void rest_models_list(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_model_get(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_model_put(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}
