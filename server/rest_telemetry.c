/* REST telemetry: not built yet (each route answers 501). */
#include "server/rest_internal.h"

void rest_device_telemetry(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_telemetry_dropped(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}
