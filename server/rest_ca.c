/* REST ca: not built yet (each route answers 501). */
#include "server/rest_internal.h"

void rest_ca_chain(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_ca_crl(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_ca_pins(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}
