/* REST devices: not built yet (each route answers 501). */
#include "server/rest_internal.h"

void rest_devices_list(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_devices_create(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_device_get(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_device_patch(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_device_delete(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_device_revoke(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}

void rest_device_certs(struct rest_req *req)
{
	rest_reply_error(req, 501, "not_implemented", "not built yet");
}
