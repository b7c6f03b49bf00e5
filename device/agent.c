/* hearth-agent: the reference device. It enrolls with a one-time token, then keeps an MQTT session
 * (libmosquitto over OpenSSL) on which it receives signed manifests, judges them with the trust
 * core (device/core.h: every decision is made there), applies them by saving its trust (saved
 * first, acknowledged after) and downloads firmware over HTTPS (device/https.h, mbedTLS). Both
 * transports check the endpoint's key against the pinned set during the handshake.
 *
 * Single-threaded: libmosquitto is driven by mosquitto_loop from the main loop; its callbacks only
 * record events and queue manifests, which the main loop handles one at a time. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>
#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/fsutil.h"
#include "common/rng.h"
#include "device/core.h"
#include "device/https.h"
#include "device/state.h"
#include "ota/dsse.h"

#define QUEUE_MAX 16                 /* manifests waiting to be handled */
#define OUTBOX_MAX 16                /* acks waiting for a connection */
#define KEYS_WALK_MAX 256            /* keys versions fetched to catch up, at most */
#define BACKOFF_MIN_S 1
#define BACKOFF_MAX_S 30
#define CONNECT_TIMEOUT_S 20         /* TCP + TLS + CONNACK */
#define DOWNLOAD_ATTEMPTS 3
#define SERVICE_EVERY_MS 500         /* MQTT kept alive this often during a download */
#define SETTLE_MS 200                /* quiet time before queued manifests are handled */
#define KEY_PEM_MAX 2048
#define CSR_PEM_MAX 4096
#define CERT_PEM_MAX (64 * 1024)
#define FW_PART "firmware.part"
#define FW_PART_SHA "firmware.part.sha256"
#define FW_IMAGE "firmware.bin"

static volatile sig_atomic_t stop_flag;
static int verbose;

/* --- output ------------------------------------------------------------------------------------ */

/* One line per event on stderr, "agent: ...", wording stable for scripts. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	flockfile(stderr);
	fputs("agent: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

static void debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void debug(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	flockfile(stderr);
	fputs("agent: debug: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

/* A message into a bounded buffer; cut short if it must be (messages only, never data). */
static void text_set(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void text_set(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* --- arguments --------------------------------------------------------------------------------- */

struct hostport {
	char host[256];
	char port[8];
	int port_num;
};

/* "host:port" or "[v6]:port". */
static int parse_hostport(const char *s, struct hostport *hp)
{
	const char *colon, *host = s;
	size_t host_len;
	char *end;
	long port;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -1;
		host = s + 1;
		host_len = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -1;
		host_len = (size_t)(colon - s);
	}
	if (host_len == 0 || host_len >= sizeof(hp->host))
		return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
		return -1;
	memcpy(hp->host, host, host_len);
	hp->host[host_len] = '\0';
	snprintf(hp->port, sizeof(hp->port), "%ld", port);
	hp->port_num = (int)port;
	return 0;
}

static int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s || s[0] == '+' || s[0] == ' ' || v < min || v > max)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static int valid_version_string(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > CORE_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._+-", c)))
			return 0;
	}
	return 1;
}

static int valid_id(const char *s, int empty_ok)
{
	size_t i, n = strlen(s);

	if (n > CORE_ID_MAX || (n == 0 && !empty_ok))
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

struct opts {
	const char *state, *api, *mqtt, *ca, *token, *model, *firmware_version, *type, *envelope;
	int64_t security_version, exit_after, keepalive;
	int fail_install;
};

static void usage(void)
{
	fputs("usage: hearth-agent enroll --state DIR --api HOST:PORT --ca CAFILE --token TOKEN\n"
	      "                           [--firmware-version V] [--security-version N] [--model NAME]\n"
	      "       hearth-agent run --state DIR --mqtt HOST:PORT --api HOST:PORT [--exit-after S]\n"
	      "                        [--fail-install] [--keepalive S] [--verbose]\n"
	      "       hearth-agent show --state DIR\n"
	      "       hearth-agent check --state DIR --type pins|keys|firmware --envelope FILE\n"
	      "                          (what the agent would decide of a manifest; nothing is changed)\n",
	      stderr);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->firmware_version = "1.0.0";
	o->keepalive = 60;
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--fail-install") == 0) {
			o->fail_install = 1;
			continue;
		}
		if (strcmp(a, "--verbose") == 0) {
			verbose = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "hearth-agent: %s needs a value\n", a);
			return -1;
		}
		i++;
		if (strcmp(a, "--state") == 0)
			o->state = v;
		else if (strcmp(a, "--api") == 0)
			o->api = v;
		else if (strcmp(a, "--mqtt") == 0)
			o->mqtt = v;
		else if (strcmp(a, "--ca") == 0)
			o->ca = v;
		else if (strcmp(a, "--token") == 0)
			o->token = v;
		else if (strcmp(a, "--model") == 0)
			o->model = v;
		else if (strcmp(a, "--type") == 0)
			o->type = v;
		else if (strcmp(a, "--envelope") == 0)
			o->envelope = v;
		else if (strcmp(a, "--firmware-version") == 0)
			o->firmware_version = v;
		else if (strcmp(a, "--security-version") == 0) {
			if (parse_int64(v, 0, INT32_MAX, &o->security_version) != 0) {
				fprintf(stderr, "hearth-agent: --security-version: a number 0..2147483647\n");
				return -1;
			}
		} else if (strcmp(a, "--exit-after") == 0) {
			if (parse_int64(v, 1, 86400 * 365, &o->exit_after) != 0) {
				fprintf(stderr, "hearth-agent: --exit-after: seconds >= 1\n");
				return -1;
			}
		} else if (strcmp(a, "--keepalive") == 0) {
			if (parse_int64(v, 5, 65535, &o->keepalive) != 0) {
				fprintf(stderr, "hearth-agent: --keepalive: seconds 5..65535\n");
				return -1;
			}
		} else {
			fprintf(stderr, "hearth-agent: unknown option %s\n", a);
			return -1;
		}
	}
	if (!o->state) {
		fprintf(stderr, "hearth-agent: --state DIR is required\n");
		return -1;
	}
	return 0;
}

/* The server's error message from an answer {"error": {"code", "message"}}, printable. */
static void server_message(const struct https_response *r, char *out, size_t size)
{
	json_t *root, *msg;
	const char *text = NULL;
	size_t i, o = 0;

	out[0] = '\0';
	if (!r->body || r->body_len == 0)
		return;
	root = json_loadb((const char *)r->body, r->body_len, 0, NULL);
	msg = root ? json_object_get(json_object_get(root, "error"), "message") : NULL;
	if (json_is_string(msg))
		text = json_string_value(msg);
	else if (!root)
		text = (const char *)r->body;
	for (i = 0; text && text[i] && o + 1 < size && i < 200; i++)
		out[o++] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : ' ';
	out[o] = '\0';
	json_decref(root);
}

/* --- enroll ------------------------------------------------------------------------------------ */

/* The device key: DIR/device.key if a previous attempt left one (the same CSR subject key, so a
 * lost answer costs nothing), else a new P-256 key saved 0600 before anything is sent. */
static int device_key(const char *dir, mbedtls_pk_context *pk)
{
	char path[STATE_PATH_MAX];
	unsigned char pem[KEY_PEM_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	enum herr rc;
	int ret;

	if (state_path(path, sizeof(path), dir, STATE_KEY) != HERR_OK)
		return -1;
	rc = fs_read_secret(path, KEY_PEM_MAX, &data, &len);
	if (rc == HERR_OK) {
		ret = mbedtls_pk_parse_key(pk, data, len + 1, NULL, 0);
		mbedtls_platform_zeroize(data, len);
		free(data);
		if (ret != 0 || mbedtls_pk_get_type(pk) != MBEDTLS_PK_ECKEY ||
		    mbedtls_pk_ec(*pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
			say("enroll failed: %s is not a P-256 private key", path);
			return -1;
		}
		debug("reusing the key in %s", path);
		return 0;
	}
	if (rc != HERR_NOTFOUND) {
		say("enroll failed: cannot read %s: %s", path, herr_str(rc));
		return -1;
	}
	if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
	    mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), rng_callback, NULL) != 0 ||
	    mbedtls_pk_write_key_pem(pk, pem, sizeof(pem)) != 0) {
		say("enroll failed: cannot generate a P-256 key");
		return -1;
	}
	rc = fs_write_file(path, pem, strlen((char *)pem), 0600, 1);
	mbedtls_platform_zeroize(pem, sizeof(pem));
	if (rc != HERR_OK) {
		say("enroll failed: cannot save %s: %s", path, herr_str(rc));
		return -1;
	}
	return 0;
}

static int make_csr(mbedtls_pk_context *pk, char *pem, size_t size)
{
	mbedtls_x509write_csr csr;
	int ret;

	mbedtls_x509write_csr_init(&csr);
	mbedtls_x509write_csr_set_md_alg(&csr, MBEDTLS_MD_SHA256);
	mbedtls_x509write_csr_set_key(&csr, pk);
	ret = mbedtls_x509write_csr_set_subject_name(&csr, "CN=hearth-device");
	if (ret == 0)
		ret = mbedtls_x509write_csr_pem(&csr, (unsigned char *)pem, size, rng_callback, NULL);
	mbedtls_x509write_csr_free(&csr);
	return ret == 0 ? 0 : -1;
}

/* The certificate is for our key and chains to the CA chain it came with. */
static int check_certificate(const char *cert, const char *chain, mbedtls_pk_context *key, char *why, size_t why_size)
{
	mbedtls_x509_crt crt, ca;
	uint32_t flags = 0;
	int ok = -1;

	mbedtls_x509_crt_init(&crt);
	mbedtls_x509_crt_init(&ca);
	if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)cert, strlen(cert) + 1) != 0)
		snprintf(why, why_size, "the certificate does not parse");
	else if (mbedtls_x509_crt_parse(&ca, (const unsigned char *)chain, strlen(chain) + 1) != 0)
		snprintf(why, why_size, "the CA chain does not parse");
	else if (mbedtls_pk_check_pair(&crt.pk, key) != 0)
		snprintf(why, why_size, "the certificate is not for this device's key");
	else if (mbedtls_x509_crt_verify(&crt, &ca, NULL, NULL, &flags, NULL, NULL) != 0)
		snprintf(why, why_size, "the certificate does not chain to the CA chain (flags 0x%x)", (unsigned)flags);
	else
		ok = 0;
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&ca);
	return ok;
}

/* struct core_trust from the 201 answer. */
static int trust_from_answer(json_t *ans, const struct opts *o, struct core_trust *t, char *why, size_t why_size)
{
	json_t *id = json_object_get(ans, "device_id"), *model = json_object_get(ans, "model");
	json_t *pins = json_object_get(ans, "pins"), *keys = json_object_get(ans, "manifest_keys");
	json_t *kv = json_object_get(ans, "keys_version"), *v;
	size_t i;

	memset(t, 0, sizeof(*t));
	if (!json_is_string(id) || !valid_id(json_string_value(id), 0)) {
		snprintf(why, why_size, "no valid device_id");
		return -1;
	}
	snprintf(t->device_id, sizeof(t->device_id), "%s", json_string_value(id));
	if (json_is_string(model) && valid_id(json_string_value(model), 0)) {
		if (o->model && strcmp(o->model, json_string_value(model)) != 0) {
			snprintf(why, why_size, "the server says model '%s', not '%s'", json_string_value(model), o->model);
			return -1;
		}
		snprintf(t->model, sizeof(t->model), "%s", json_string_value(model));
	} else if (model && !json_is_null(model)) {
		snprintf(why, why_size, "a malformed model");
		return -1;
	} else if (o->model) {
		snprintf(t->model, sizeof(t->model), "%s", o->model);
	} else {
		say("warning: the enrollment answer names no model and --model was not given: manifests "
		    "addressed to a model will be refused");
	}
	if (!json_is_array(pins) || json_array_size(pins) < 1 || json_array_size(pins) > CORE_PINS_MAX) {
		snprintf(why, why_size, "pins must be 1..%d pins", CORE_PINS_MAX);
		return -1;
	}
	json_array_foreach(pins, i, v) {
		size_t j;

		if (!json_is_string(v) || !core_pin_valid(json_string_value(v))) {
			snprintf(why, why_size, "a malformed pin");
			return -1;
		}
		for (j = 0; j < t->pin_count; j++) {
			if (strcmp(t->pins[j], json_string_value(v)) == 0) {
				snprintf(why, why_size, "a pin is listed twice");
				return -1;
			}
		}
		snprintf(t->pins[t->pin_count++], CORE_PIN_LEN, "%s", json_string_value(v));
	}
	if (!json_is_array(keys) || json_array_size(keys) < 1 || json_array_size(keys) > CORE_KEYS_MAX) {
		snprintf(why, why_size, "manifest_keys must be 1..%d keys", CORE_KEYS_MAX);
		return -1;
	}
	json_array_foreach(keys, i, v) {
		json_t *keyid = json_object_get(v, "keyid"), *pem = json_object_get(v, "public_key");
		char got[DSSE_KEYID_LEN];

		if (!json_is_string(keyid) || !json_is_string(pem)) {
			snprintf(why, why_size, "a manifest key without keyid or public_key");
			return -1;
		}
		if (core_add_key(t, json_string_value(pem), json_string_length(pem), got) != HERR_OK) {
			snprintf(why, why_size, "manifest key %zu is not a P-256 public key", i);
			return -1;
		}
		if (strcmp(got, json_string_value(keyid)) != 0) {
			snprintf(why, why_size, "manifest key %zu: its keyid does not match the key", i);
			return -1;
		}
	}
	t->threshold = 1;
	if (json_is_integer(kv) && json_integer_value(kv) >= 0) {
		t->keys_version = (int64_t)json_integer_value(kv);
	} else if (kv) {
		snprintf(why, why_size, "a malformed keys_version");
		return -1;
	} else {
		say("warning: the enrollment answer has no keys_version; assuming 0");
	}
	snprintf(t->firmware_version, sizeof(t->firmware_version), "%s", o->firmware_version);
	t->security_version = o->security_version;
	return 0;
}

static int cmd_enroll(const struct opts *o)
{
	struct hostport api;
	struct https_endpoint ep;
	struct https_request req;
	struct https_response resp = { 0 };
	struct core_trust t;
	mbedtls_pk_context pk;
	json_t *body = NULL, *ans = NULL, *cert, *chain;
	char csr[CSR_PEM_MAX], why[256] = "", path[STATE_PATH_MAX], msg[256], *text = NULL;
	int created = 0, rc = 1;
	enum herr hr;

	mbedtls_pk_init(&pk);
	if (!o->api || !o->ca || !o->token) {
		fprintf(stderr, "hearth-agent enroll: --api, --ca and --token are required\n");
		return 2;
	}
	if (parse_hostport(o->api, &api) != 0) {
		fprintf(stderr, "hearth-agent enroll: --api: HOST:PORT expected\n");
		return 2;
	}
	if (!valid_version_string(o->firmware_version) || (o->model && !valid_id(o->model, 0))) {
		fprintf(stderr, "hearth-agent enroll: a bad --firmware-version or --model\n");
		return 2;
	}
	hr = fs_make_private_dir(o->state, &created);
	if (hr == HERR_OK)
		hr = fs_check_private_dir(o->state);
	if (hr != HERR_OK) {
		say("enroll failed: %s is not a private directory (0700): %s", o->state,
		    hr == HERR_STATE ? "others may access it" : herr_str(hr));
		return 1;
	}
	if (state_path(path, sizeof(path), o->state, STATE_TRUST) != HERR_OK || fs_exists(path)) {
		say("enroll failed: %s is already enrolled (%s exists)", o->state, path);
		return 1;
	}
	if (device_key(o->state, &pk) != 0)
		goto out;
	if (make_csr(&pk, csr, sizeof(csr)) != 0) {
		say("enroll failed: cannot make a CSR");
		goto out;
	}
	body = json_pack("{s:s, s:s}", "token", o->token, "csr", csr);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text) {
		say("enroll failed: out of memory");
		goto out;
	}
	memset(&ep, 0, sizeof(ep));
	ep.host = api.host;
	ep.port = api.port;
	ep.ca_file = o->ca;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/api/v1/enroll";
	req.content_type = "application/json";
	req.body = text;
	req.body_len = strlen(text);
	hr = https_do(&ep, &req, &resp, why, sizeof(why));
	if (hr != HERR_OK) {
		say("enroll failed: %s", why);
		goto out;
	}
	if (resp.status != 201) {
		server_message(&resp, msg, sizeof(msg));
		say("enroll failed: HTTP %d: %s", resp.status, msg[0] ? msg : "(no message)");
		goto out;
	}
	ans = json_loadb((const char *)resp.body, resp.body_len, JSON_REJECT_DUPLICATES, NULL);
	cert = json_object_get(ans, "certificate");
	chain = json_object_get(ans, "ca_chain");
	if (!json_is_object(ans) || !json_is_string(cert) || !json_is_string(chain) ||
	    json_string_length(cert) > CERT_PEM_MAX || json_string_length(chain) > CERT_PEM_MAX) {
		say("enroll failed: the answer lacks a certificate or CA chain");
		goto out;
	}
	if (trust_from_answer(ans, o, &t, why, sizeof(why)) != 0 ||
	    check_certificate(json_string_value(cert), json_string_value(chain), &pk, why, sizeof(why)) != 0) {
		say("enroll failed: the answer is not usable: %s", why);
		goto out;
	}
	/* The trust file last: its presence means "enrolled". */
	if (state_write(o->state, STATE_CERT, json_string_value(cert), json_string_length(cert), 0644) != HERR_OK ||
	    state_write(o->state, STATE_CA, json_string_value(chain), json_string_length(chain), 0644) != HERR_OK ||
	    state_save(o->state, &t) != HERR_OK) {
		say("enroll failed: cannot save the state in %s", o->state);
		goto out;
	}
	say("enrolled %s (model %s, %zu pin(s), %zu manifest key(s), keys v%" PRId64 ")", t.device_id,
	    t.model[0] ? t.model : "unknown", t.pin_count, t.key_count, t.keys_version);
	printf("%s\n", t.device_id);
	rc = 0;
out:
	if (text) {
		mbedtls_platform_zeroize(text, strlen(text)); /* it holds the token */
		free(text);
	}
	json_decref(body);
	json_decref(ans);
	https_response_free(&resp);
	mbedtls_pk_free(&pk);
	return rc;
}

/* --- show -------------------------------------------------------------------------------------- */

static int cmd_show(const struct opts *o)
{
	struct core_trust t;
	char why[256] = "", keyid[DSSE_KEYID_LEN];
	size_t i;

	if (state_load(o->state, &t, why, sizeof(why)) != HERR_OK) {
		say("cannot load the trust: %s", why);
		return 1;
	}
	printf("id %s\n", t.device_id);
	printf("model %s\n", t.model);
	for (i = 0; i < t.pin_count; i++)
		printf("pin %s\n", t.pins[i]);
	for (i = 0; i < t.key_count; i++) {
		dsse_keyid(t.keys[i].spki, t.keys[i].spki_len, keyid);
		printf("keyid %s\n", keyid);
	}
	printf("threshold %u\n", t.threshold);
	printf("pins_version %" PRId64 "\n", t.pins_version);
	printf("keys_version %" PRId64 "\n", t.keys_version);
	printf("firmware_version_seen %" PRId64 "\n", t.firmware_version_seen);
	printf("firmware_version %s\n", t.firmware_version);
	printf("security_version %" PRId64 "\n", t.security_version);
	return 0;
}

/* check: core_check on a manifest from a file, against the trust in DIR, as the running agent
 * would decide it (the state is not changed). Prints "accepted" or "rejected: <why>". */
static int cmd_check(const struct opts *o)
{
	struct core_trust t, next;
	struct core_firmware fw;
	char why[256] = "";
	uint8_t *env = NULL;
	size_t len = 0;
	FILE *f;
	enum herr rc;

	if (!o->type || !o->envelope) {
		say("check needs --type and --envelope");
		return 2;
	}
	if (state_load(o->state, &t, why, sizeof(why)) != HERR_OK) {
		say("cannot load the trust: %s", why);
		return 2;
	}
	f = fopen(o->envelope, "rb");
	if (!f) {
		say("cannot open %s: %s", o->envelope, strerror(errno));
		return 2;
	}
	env = malloc(DSSE_ENVELOPE_MAX + 1);
	if (env)
		len = fread(env, 1, DSSE_ENVELOPE_MAX + 1, f);
	fclose(f);
	if (!env || len > DSSE_ENVELOPE_MAX) {
		free(env);
		say("%s: larger than %d bytes", o->envelope, DSSE_ENVELOPE_MAX);
		return 2;
	}
	rc = core_check(&t, o->type, env, len, (int64_t)time(NULL), &next, &fw, why, sizeof(why));
	free(env);
	if (rc != HERR_OK) {
		printf("rejected: %s\n", why);
		return 1;
	}
	printf("accepted\n");
	return 0;
}

/* --- run: state -------------------------------------------------------------------------------- */

enum link { LINK_DOWN, LINK_CONNECTING, LINK_UP };

struct queued {
	char type[16];
	uint8_t *payload;
	size_t len;
};

struct agent {
	const char *dir;
	struct hostport mqtt, api;
	int keepalive, fail_install;
	int64_t deadline_ms;             /* --exit-after; 0: none */
	struct core_trust trust;
	char ca[STATE_PATH_MAX], cert[STATE_PATH_MAX], key[STATE_PATH_MAX];
	struct mosquitto *mosq;
	enum link link;
	int64_t connect_started_ms, next_attempt_ms;
	int backoff_s;
	char refused[200];               /* why the last TLS handshake was refused, if it was */
	char topic_status[128], topic_ack[128], topic_manifests[128], manifest_prefix[128];
	struct queued queue[QUEUE_MAX];
	size_t q_count;                  /* in arrival order */
	int64_t last_message_ms;
	char outbox[OUTBOX_MAX][128];
	size_t outbox_count;
	int64_t last_service_ms;
};

static int stopping(const struct agent *a)
{
	return stop_flag || (a->deadline_ms && mono_ms() >= a->deadline_ms);
}

static int64_t *applied_version(struct core_trust *t, const char *type)
{
	if (strcmp(type, "pins") == 0)
		return &t->pins_version;
	if (strcmp(type, "keys") == 0)
		return &t->keys_version;
	return &t->firmware_version_seen;
}

/* --- run: MQTT out ----------------------------------------------------------------------------- */

static void publish_status(struct agent *a)
{
	char msg[256];
	int n, rc;

	/* An unknown version is left out: the server refuses an empty one. */
	if (a->trust.firmware_version[0])
		n = snprintf(msg, sizeof(msg),
			     "{\"online\":true,\"firmware\":\"%s\",\"security_version\":%" PRId64 "}",
			     a->trust.firmware_version, a->trust.security_version);
	else
		n = snprintf(msg, sizeof(msg), "{\"online\":true,\"security_version\":%" PRId64 "}",
			     a->trust.security_version);
	if (n < 0 || (size_t)n >= sizeof(msg) || a->link != LINK_UP)
		return;
	rc = mosquitto_publish(a->mosq, NULL, a->topic_status, n, msg, 1, true);
	if (rc != MOSQ_ERR_SUCCESS)
		debug("status not published: %s", mosquitto_strerror(rc));
}

/* An ack goes out now, or with the next connection. */
static void ack(struct agent *a, const char *type, int64_t version, const char *status)
{
	char msg[128];
	int n;

	n = snprintf(msg, sizeof(msg), "{\"type\":\"%s\",\"version\":%" PRId64 ",\"status\":\"%s\"}", type, version,
		     status);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	if (a->link == LINK_UP && mosquitto_publish(a->mosq, NULL, a->topic_ack, n, msg, 1, false) == MOSQ_ERR_SUCCESS)
		return;
	if (a->outbox_count == OUTBOX_MAX) {
		say("ack dropped (outbox full): %s", msg);
		return;
	}
	memcpy(a->outbox[a->outbox_count++], msg, (size_t)n + 1);
}

static void flush_outbox(struct agent *a)
{
	size_t i, kept = 0;

	for (i = 0; i < a->outbox_count; i++) {
		if (mosquitto_publish(a->mosq, NULL, a->topic_ack, (int)strlen(a->outbox[i]), a->outbox[i], 1, false) !=
		    MOSQ_ERR_SUCCESS)
			memmove(a->outbox[kept++], a->outbox[i], sizeof(a->outbox[i]));
	}
	a->outbox_count = kept;
}

/* --- run: MQTT link ---------------------------------------------------------------------------- */

static void went_down(struct agent *a, const char *why)
{
	int64_t now = mono_ms();

	if (a->link == LINK_DOWN)
		return;
	if (a->link == LINK_CONNECTING)
		say("connect failed: %s", a->refused[0] ? a->refused : why);
	else
		say("connection lost: %s", why);
	a->link = LINK_DOWN;
	a->next_attempt_ms = now + (int64_t)a->backoff_s * 1000;
	debug("reconnecting in %d s", a->backoff_s);
	a->backoff_s = a->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : a->backoff_s * 2;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct agent *a = obj;

	(void)mosq;
	if (rc != 0) {
		snprintf(a->refused, sizeof(a->refused), "refused by the server: %s", mosquitto_connack_string(rc));
		went_down(a, a->refused);
		mosquitto_disconnect(a->mosq);
		return;
	}
	a->link = LINK_UP;
	a->backoff_s = BACKOFF_MIN_S;
	say("connected");
	rc = mosquitto_subscribe(a->mosq, NULL, a->topic_manifests, 1);
	if (rc != MOSQ_ERR_SUCCESS)
		say("subscribe failed: %s", mosquitto_strerror(rc));
	publish_status(a);
	flush_outbox(a);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
	struct agent *a = obj;

	(void)mosq;
	went_down(a, rc == 0 ? "disconnected" : mosquitto_strerror(rc));
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m)
{
	struct agent *a = obj;
	size_t prefix = strlen(a->manifest_prefix);
	const char *type;
	struct queued *q;

	(void)mosq;
	if (strncmp(m->topic, a->manifest_prefix, prefix) != 0)
		return;
	type = m->topic + prefix;
	if (strcmp(type, "pins") != 0 && strcmp(type, "keys") != 0 && strcmp(type, "firmware") != 0) {
		debug("ignoring %s", m->topic);
		return;
	}
	if (m->payloadlen <= 0)
		return; /* a cleared retained message */
	if ((size_t)m->payloadlen > DSSE_ENVELOPE_MAX) {
		say("%s rejected: envelope of %d bytes, over %d", type, m->payloadlen, DSSE_ENVELOPE_MAX);
		return;
	}
	if (a->q_count == QUEUE_MAX) {
		say("%s dropped: %d manifests already waiting", type, QUEUE_MAX);
		return;
	}
	a->last_message_ms = mono_ms();
	q = &a->queue[a->q_count];
	q->payload = malloc((size_t)m->payloadlen);
	if (!q->payload) {
		say("%s dropped: out of memory", type);
		return;
	}
	memcpy(q->payload, m->payload, (size_t)m->payloadlen);
	q->len = (size_t)m->payloadlen;
	snprintf(q->type, sizeof(q->type), "%s", type);
	a->q_count++;
}

/* The pin check, in the handshake: OpenSSL has verified the chain and the host name (preverify_ok);
 * the leaf's key must also be in the pin set the device holds now. */
static int verify_pinned(int preverify_ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct agent *a = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
	unsigned char *der = NULL;
	char pin[CORE_PIN_LEN];
	EVP_PKEY *pk;
	int n, ok;

	if (!a)
		return 0;
	if (!preverify_ok) {
		int err = X509_STORE_CTX_get_error(x);

		snprintf(a->refused, sizeof(a->refused), "endpoint certificate refused (depth %d): %s",
			 X509_STORE_CTX_get_error_depth(x), X509_verify_cert_error_string(err));
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(x) != 0)
		return 1;
	pk = X509_get0_pubkey(X509_STORE_CTX_get_current_cert(x));
	n = pk ? i2d_PUBKEY(pk, &der) : -1;
	if (n <= 0) {
		snprintf(a->refused, sizeof(a->refused), "cannot encode the endpoint key");
		return 0;
	}
	ok = core_pin_ok(&a->trust, der, (size_t)n);
	if (!ok) {
		core_pin_of(der, (size_t)n, pin);
		say("endpoint key not pinned: %s", pin);
		snprintf(a->refused, sizeof(a->refused), "endpoint key not pinned: %s", pin);
	}
	OPENSSL_free(der);
	return ok;
}

static SSL_CTX *make_ssl_ctx(struct agent *a)
{
	X509_VERIFY_PARAM *param;
	unsigned char addr[16];
	uint8_t *key_pem = NULL;
	size_t key_len = 0;
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;
	SSL_CTX *ctx;
	enum herr rc;
	int ip;

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_load_verify_locations(ctx, a->ca, NULL) != 1) {
		say("cannot load the CA chain %s", a->ca);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, a->cert) != 1) {
		say("cannot load the device certificate %s", a->cert);
		goto fail;
	}
	/* Read here so that a key others can read is refused, as everywhere else. */
	rc = fs_read_secret(a->key, KEY_PEM_MAX, &key_pem, &key_len);
	if (rc != HERR_OK) {
		say("cannot read the device key %s: %s", a->key,
		    rc == HERR_STATE ? "others may read it (mode must be 0600)" : herr_str(rc));
		goto fail;
	}
	bio = BIO_new_mem_buf(key_pem, (int)key_len);
	key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	mbedtls_platform_zeroize(key_pem, key_len);
	free(key_pem);
	if (!key || SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		say("the device key %s does not fit the certificate", a->key);
		EVP_PKEY_free(key);
		goto fail;
	}
	EVP_PKEY_free(key);
	param = SSL_CTX_get0_param(ctx);
	ip = inet_pton(AF_INET, a->mqtt.host, addr) == 1 || inet_pton(AF_INET6, a->mqtt.host, addr) == 1;
	if ((ip ? X509_VERIFY_PARAM_set1_ip_asc(param, a->mqtt.host) : X509_VERIFY_PARAM_set1_host(param, a->mqtt.host, 0)) != 1) {
		say("cannot check the endpoint name %s", a->mqtt.host);
		goto fail;
	}
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_pinned);
	SSL_CTX_set_app_data(ctx, a);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static void start_connect(struct agent *a)
{
	int rc;

	a->refused[0] = '\0';
	a->link = LINK_CONNECTING;
	a->connect_started_ms = mono_ms();
	rc = mosquitto_connect_async(a->mosq, a->mqtt.host, a->mqtt.port_num, a->keepalive);
	if (rc != MOSQ_ERR_SUCCESS)
		went_down(a, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
}

/* libmosquitto 2.0.11 does not notice that an asynchronous TCP connect under TLS failed (it retries
 * the handshake on the dead socket): a socket that is done connecting but has no peer failed. */
static int tcp_connect_failed(struct agent *a, char *why, size_t why_size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), err_len;
	struct pollfd p;
	int fd = mosquitto_socket(a->mosq), err = 0;

	if (fd < 0)
		return 0;
	p.fd = fd;
	p.events = POLLOUT;
	p.revents = 0;
	if (poll(&p, 1, 0) != 1 || getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		return 0; /* still connecting, or connected */
	err_len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0 || err == 0)
		err = ECONNREFUSED; /* the error was taken by a failed write: the usual one */
	text_set(why, why_size, "%s", strerror(err));
	return 1;
}

/* Let libmosquitto read and write once; notices a dead link. */
static void service(struct agent *a, int timeout_ms)
{
	int rc;

	if (a->link == LINK_DOWN)
		return;
	if (a->link == LINK_CONNECTING && mono_ms() - a->connect_started_ms > CONNECT_TIMEOUT_S * 1000) {
		snprintf(a->refused, sizeof(a->refused), "no answer within %d s", CONNECT_TIMEOUT_S);
		went_down(a, a->refused);
		mosquitto_disconnect(a->mosq);
		return;
	}
	if (a->link == LINK_CONNECTING && tcp_connect_failed(a, a->refused, sizeof(a->refused))) {
		went_down(a, a->refused);
		mosquitto_disconnect(a->mosq);
		return;
	}
	rc = mosquitto_loop(a->mosq, timeout_ms, 1);
	if (rc != MOSQ_ERR_SUCCESS)
		went_down(a, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
	a->last_service_ms = mono_ms();
}

/* Wait up to ms, keeping MQTT alive and watching for a stop. */
static void pause_ms(struct agent *a, int64_t ms)
{
	int64_t until = mono_ms() + ms;

	while (!stopping(a) && mono_ms() < until) {
		if (a->link == LINK_DOWN) {
			struct timespec ts = { 0, 100 * 1000000L };

			nanosleep(&ts, NULL);
		} else {
			service(a, 100);
		}
	}
}

/* --- run: applying manifests ------------------------------------------------------------------- */

/* Save next as the trust, then make it the live one. Nothing is acknowledged unless saved. */
static int persist(struct agent *a, const struct core_trust *next)
{
	if (state_save(a->dir, next) != HERR_OK) {
		say("cannot save the trust in %s", a->dir);
		return -1;
	}
	a->trust = *next;
	return 0;
}

static void apply(struct agent *a, const char *type, int64_t version, const struct core_trust *next)
{
	if (persist(a, next) != 0) {
		say("%s v%" PRId64 " not applied: the trust could not be saved", type, version);
		return;
	}
	say("%s v%" PRId64 " applied", type, version);
	ack(a, type, version, "applied");
}

static void reject(struct agent *a, const char *type, int64_t version, const char *why)
{
	say("%s v%" PRId64 " rejected: %s", type, version, why);
	ack(a, type, version, "rejected");
}

static struct https_endpoint api_endpoint(const struct agent *a)
{
	struct https_endpoint ep = {
		.host = a->api.host, .port = a->api.port, .ca_file = a->ca, .cert_file = a->cert,
		.key_file = a->key, .trust = &a->trust,
	};

	return ep;
}

/* GET a manifest version over HTTPS (the device's certificate, the pin checked). */
static int fetch_manifest(struct agent *a, const char *type, int64_t version, struct https_response *resp,
			  char *why, size_t why_size)
{
	struct https_endpoint ep = api_endpoint(a);
	struct https_request req = { .method = "GET" };
	char path[128], msg[160];

	snprintf(path, sizeof(path), "/api/v1/device/manifests/%s?version=%" PRId64, type, version);
	req.path = path;
	if (https_do(&ep, &req, resp, why, why_size) != HERR_OK) {
		if (strncmp(why, "endpoint key not pinned", 23) == 0)
			say("%s", why);
		return -1;
	}
	if (resp->status != 200) {
		server_message(resp, msg, sizeof(msg));
		snprintf(why, why_size, "HTTP %d: %s", resp->status, msg[0] ? msg : "(no message)");
		https_response_free(resp);
		return -1;
	}
	return 0;
}

/* Keys versions are applied one by one: fetch and apply each one between the last applied and
 * target (excluded). 0 when caught up. */
static int walk_keys(struct agent *a, int64_t target)
{
	char why[256], fetch_why[256];
	int64_t n;

	if (target - a->trust.keys_version - 1 > KEYS_WALK_MAX) {
		snprintf(why, sizeof(why), "%" PRId64 " versions behind, more than %d to walk",
			 target - a->trust.keys_version - 1, KEYS_WALK_MAX);
		reject(a, "keys", target, why);
		return -1;
	}
	for (n = a->trust.keys_version + 1; n < target && !stopping(a); n++) {
		struct https_response resp;
		struct core_trust next;
		struct core_firmware fw;

		debug("fetching keys v%" PRId64 " to reach v%" PRId64, n, target);
		if (fetch_manifest(a, "keys", n, &resp, fetch_why, sizeof(fetch_why)) != 0) {
			text_set(why, sizeof(why), "cannot fetch v%" PRId64 ": %s", n, fetch_why);
			reject(a, "keys", target, why);
			return -1;
		}
		if (core_check(&a->trust, "keys", resp.body, resp.body_len, (int64_t)time(NULL), &next, &fw, why,
			       sizeof(why)) != HERR_OK) {
			https_response_free(&resp);
			reject(a, "keys", n, why);
			snprintf(why, sizeof(why), "cannot walk past v%" PRId64, n);
			reject(a, "keys", target, why);
			return -1;
		}
		https_response_free(&resp);
		apply(a, "keys", n, &next);
		if (a->trust.keys_version != n)
			return -1; /* not saved */
	}
	return stopping(a) ? -1 : 0;
}

/* --- run: firmware ----------------------------------------------------------------------------- */

enum dl_result { DL_OK, DL_FAILED, DL_STOPPED, DL_SUPERSEDED };

struct download {
	struct agent *a;
	const struct core_firmware *fw;
	int fd;
	uint64_t offset;                 /* bytes already in firmware.part */
	int aborted;                     /* DL_STOPPED or DL_SUPERSEDED when the sink gave up */
	char why[160];
};

static int firmware_waiting(const struct agent *a)
{
	size_t i;

	for (i = 0; i < a->q_count; i++)
		if (strcmp(a->queue[i].type, "firmware") == 0)
			return 1;
	return 0;
}

/* "bytes A-B/T" */
static int parse_content_range(const char *s, uint64_t *first, uint64_t *last, uint64_t *total)
{
	unsigned long long f, l, t;
	int used = 0;

	if (sscanf(s, "bytes %llu-%llu/%llu%n", &f, &l, &t, &used) != 3 || s[used] != '\0' || f > l || l >= t)
		return -1;
	*first = f;
	*last = l;
	*total = t;
	return 0;
}

static int dl_begin(void *ctx, const struct https_response *r)
{
	struct download *d = ctx;
	uint64_t size = d->fw->size, first, last, total;

	if (r->status == 206) {
		if (parse_content_range(r->content_range, &first, &last, &total) != 0 || first != d->offset ||
		    last != size - 1 || total != size || r->content_length != size - d->offset) {
			text_set(d->why, sizeof(d->why), "a partial answer for another range (%s)", r->content_range);
			return 1;
		}
	} else {
		if (r->content_length != size) {
			snprintf(d->why, sizeof(d->why), "the server sends %llu bytes, the manifest says %llu",
				 (unsigned long long)r->content_length, (unsigned long long)size);
			return 1;
		}
		d->offset = 0; /* the whole image again */
	}
	if (ftruncate(d->fd, (off_t)d->offset) != 0 || lseek(d->fd, (off_t)d->offset, SEEK_SET) < 0) {
		snprintf(d->why, sizeof(d->why), "%s: %s", FW_PART, strerror(errno));
		return 1;
	}
	return 0;
}

static int dl_data(void *ctx, const uint8_t *p, size_t n)
{
	struct download *d = ctx;
	struct agent *a = d->a;

	while (n > 0) {
		ssize_t w = write(d->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(d->why, sizeof(d->why), "%s: %s", FW_PART, strerror(errno));
			return 1;
		}
		p += w;
		n -= (size_t)w;
	}
	if (mono_ms() - a->last_service_ms >= SERVICE_EVERY_MS) {
		service(a, 0);
		a->last_service_ms = mono_ms();
	}
	if (stopping(a)) {
		d->aborted = DL_STOPPED;
		return 1;
	}
	if (firmware_waiting(a)) {
		d->aborted = DL_SUPERSEDED;
		return 1;
	}
	return 0;
}

static void drop_partial(struct agent *a)
{
	(void)state_remove(a->dir, FW_PART);
	(void)state_remove(a->dir, FW_PART_SHA);
}

/* Where to resume: the bytes already in firmware.part if they are of this image (same sha256),
 * else 0 with the part file started afresh. */
static int prepare_partial(struct agent *a, const struct core_firmware *fw, uint64_t *offset)
{
	char path[STATE_PATH_MAX];
	uint8_t *sha = NULL;
	size_t len = 0;
	struct stat st;

	*offset = 0;
	if (state_read(a->dir, FW_PART_SHA, 128, &sha, &len) == HERR_OK && len == 64 &&
	    memcmp(sha, fw->sha256, 64) == 0 && state_path(path, sizeof(path), a->dir, FW_PART) == HERR_OK &&
	    lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= fw->size) {
		free(sha);
		*offset = (uint64_t)st.st_size;
		return 0;
	}
	free(sha);
	drop_partial(a);
	return state_write(a->dir, FW_PART_SHA, fw->sha256, 64, 0600) == HERR_OK ? 0 : -1;
}

static enum dl_result download_once(struct agent *a, const struct core_firmware *fw, char *why, size_t why_size,
				    int *permanent)
{
	struct https_endpoint ep = api_endpoint(a);
	struct https_request req = { .method = "GET", .path = fw->url };
	struct https_response resp;
	struct download d = { .a = a, .fw = fw, .fd = -1 };
	struct https_sink sink = { .begin = dl_begin, .data = dl_data, .ctx = &d, .max = fw->size };
	char path[STATE_PATH_MAX], range[48], msg[160];
	enum herr rc;

	*permanent = 0;
	if (prepare_partial(a, fw, &d.offset) != 0 || state_path(path, sizeof(path), a->dir, FW_PART) != HERR_OK) {
		snprintf(why, why_size, "cannot prepare %s", FW_PART);
		*permanent = 1;
		return DL_FAILED;
	}
	if (d.offset == fw->size)
		return DL_OK; /* all there already; verified next */
	d.fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d.fd < 0) {
		text_set(why, why_size, "%s: %s", path, strerror(errno));
		*permanent = 1;
		return DL_FAILED;
	}
	if (d.offset > 0) {
		snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)d.offset);
		req.range = range;
		debug("resuming the download at byte %llu", (unsigned long long)d.offset);
	}
	req.sink = &sink;
	rc = https_do(&ep, &req, &resp, why, why_size);
	if (rc == HERR_OK && (resp.status == 200 || resp.status == 206) && fsync(d.fd) != 0) {
		text_set(why, why_size, "%s: %s", path, strerror(errno));
		rc = HERR_IO;
	}
	close(d.fd);
	if (rc == HERR_STATE && d.aborted) {
		https_response_free(&resp);
		return (enum dl_result)d.aborted;
	}
	if (rc == HERR_STATE && d.why[0])
		snprintf(why, why_size, "%s", d.why);
	if (rc != HERR_OK) {
		if (strncmp(why, "endpoint key not pinned", 23) == 0)
			say("%s", why);
		*permanent = rc == HERR_CRYPTO; /* a refused endpoint is not refused by chance */
		return DL_FAILED;
	}
	if (resp.status == 200 || resp.status == 206) {
		https_response_free(&resp);
		return DL_OK;
	}
	if (resp.status == 416) {
		/* Our part is not a prefix the server agrees with: start again from nothing. */
		drop_partial(a);
		snprintf(why, why_size, "HTTP 416: the server refused the range; starting again");
		https_response_free(&resp);
		return DL_FAILED;
	}
	server_message(&resp, msg, sizeof(msg));
	snprintf(why, why_size, "HTTP %d: %s", resp.status, msg[0] ? msg : "(no message)");
	*permanent = resp.status >= 400 && resp.status < 500 && resp.status != 408 && resp.status != 429;
	https_response_free(&resp);
	return DL_FAILED;
}

/* firmware.part has the size and sha256 the manifest says. */
static int verify_image(struct agent *a, const struct core_firmware *fw, char *why, size_t why_size)
{
	char path[STATE_PATH_MAX], hex[65];
	unsigned char buf[64 * 1024], digest[32];
	mbedtls_sha256_context sha;
	uint64_t total = 0;
	size_t i;
	int fd;

	if (state_path(path, sizeof(path), a->dir, FW_PART) != HERR_OK)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		text_set(why, why_size, "%s: %s", path, strerror(errno));
		return -1;
	}
	mbedtls_sha256_init(&sha);
	mbedtls_sha256_starts_ret(&sha, 0);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			text_set(why, why_size, "%s: %s", path, strerror(errno));
			close(fd);
			mbedtls_sha256_free(&sha);
			return -1;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > fw->size)
			break;
		mbedtls_sha256_update_ret(&sha, buf, (size_t)n);
	}
	close(fd);
	mbedtls_sha256_finish_ret(&sha, digest);
	mbedtls_sha256_free(&sha);
	if (total != fw->size) {
		snprintf(why, why_size, "size mismatch: %llu bytes, the manifest says %llu", (unsigned long long)total,
			 (unsigned long long)fw->size);
		return -1;
	}
	for (i = 0; i < sizeof(digest); i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	if (strcmp(hex, fw->sha256) != 0) {
		snprintf(why, why_size, "sha256 mismatch: got %s", hex);
		return -1;
	}
	return 0;
}

static void firmware_failed(struct agent *a, int64_t version, const struct core_trust *next, const char *why)
{
	/* Seen, so the retained manifest does not start it over; the server decides what comes next. */
	if (persist(a, next) != 0)
		say("firmware v%" PRId64 ": the trust could not be saved", version);
	say("firmware v%" PRId64 " failed: %s", version, why);
	ack(a, "firmware", version, "failed");
}

static void install(struct agent *a, int64_t version, struct core_trust *next, const struct core_firmware *fw)
{
	char from[STATE_PATH_MAX], to[STATE_PATH_MAX], dir_path[STATE_PATH_MAX];
	int dfd;

	if (state_path(from, sizeof(from), a->dir, FW_PART) != HERR_OK ||
	    state_path(to, sizeof(to), a->dir, FW_IMAGE) != HERR_OK || rename(from, to) != 0) {
		drop_partial(a);
		firmware_failed(a, version, next, "cannot install the image");
		return;
	}
	snprintf(dir_path, sizeof(dir_path), "%s", a->dir);
	dfd = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	(void)state_remove(a->dir, FW_PART_SHA);
	snprintf(next->firmware_version, sizeof(next->firmware_version), "%s", fw->firmware_version);
	next->security_version = fw->security_version;
	if (persist(a, next) != 0) {
		say("firmware v%" PRId64 " failed: installed but the trust could not be saved", version);
		ack(a, "firmware", version, "failed");
		return;
	}
	publish_status(a);
	say("firmware v%" PRId64 " installed %s", version, fw->firmware_version);
	ack(a, "firmware", version, "installed");
}

static void handle_firmware(struct agent *a, int64_t version, struct core_trust *next, const struct core_firmware *fw)
{
	char why[256] = "";
	enum dl_result r = DL_FAILED;
	int attempt, permanent = 0;

	if (fw->cancel) {
		drop_partial(a);
		apply(a, "firmware", version, next);
		return;
	}
	/* Nothing is saved until the end: a download cut by a restart starts again from the retained
	 * manifest and resumes from firmware.part. */
	say("firmware v%" PRId64 " downloading %s (%llu bytes)", version, fw->firmware_version,
	    (unsigned long long)fw->size);
	ack(a, "firmware", version, "downloading");
	for (attempt = 1; attempt <= DOWNLOAD_ATTEMPTS; attempt++) {
		r = download_once(a, fw, why, sizeof(why), &permanent);
		if (r != DL_FAILED || permanent || attempt == DOWNLOAD_ATTEMPTS)
			break;
		debug("download attempt %d failed: %s", attempt, why);
		pause_ms(a, (int64_t)attempt * 1000);
		if (stopping(a))
			return;
	}
	if (r == DL_STOPPED)
		return;
	if (r == DL_SUPERSEDED) {
		say("firmware v%" PRId64 " download left for a newer firmware manifest", version);
		return;
	}
	if (r == DL_FAILED) {
		firmware_failed(a, version, next, why);
		return;
	}
	if (verify_image(a, fw, why, sizeof(why)) != 0) {
		drop_partial(a);
		firmware_failed(a, version, next, why);
		return;
	}
	if (a->fail_install) {
		drop_partial(a);
		firmware_failed(a, version, next, "simulated install failure (--fail-install)");
		return;
	}
	install(a, version, next, fw);
}

static void handle_manifest(struct agent *a, const char *type, const uint8_t *p, size_t len)
{
	struct core_trust next;
	struct core_firmware fw;
	char why[256] = "";
	int64_t version = 0, last = *applied_version(&a->trust, type);

	if (core_peek_version(p, len, &version) != HERR_OK) {
		say("%s rejected: no version to be read", type);
		return;
	}
	if (version <= last) {
		/* The retained manifest comes again on every connection. */
		if (version == last)
			debug("%s v%" PRId64 " already applied", type, version);
		else
			say("%s v%" PRId64 " ignored: v%" PRId64 " is applied", type, version, last);
		return;
	}
	if (strcmp(type, "keys") == 0 && version > last + 1 && walk_keys(a, version) != 0)
		return;
	if (core_check(&a->trust, type, p, len, (int64_t)time(NULL), &next, &fw, why, sizeof(why)) != HERR_OK) {
		reject(a, type, version, why);
		return;
	}
	if (strcmp(type, "firmware") == 0)
		handle_firmware(a, version, &next, &fw);
	else
		apply(a, type, version, &next);
}

/* Keys first: the retained manifests arrive together on connecting, and one signed by a new key
 * must not be judged before the keys manifest that makes the device trust that key. Then pins,
 * then firmware; in arrival order within a type. */
static size_t next_queued(const struct agent *a)
{
	static const char *const order[] = { "keys", "pins" };
	size_t i, k;

	for (k = 0; k < sizeof(order) / sizeof(order[0]); k++)
		for (i = 0; i < a->q_count; i++)
			if (strcmp(a->queue[i].type, order[k]) == 0)
				return i;
	return 0;
}

static void handle_queue(struct agent *a)
{
	while (a->q_count > 0 && !stopping(a)) {
		size_t i = next_queued(a);
		struct queued q = a->queue[i];

		memmove(&a->queue[i], &a->queue[i + 1], (a->q_count - i - 1) * sizeof(a->queue[0]));
		a->q_count--;
		handle_manifest(a, q.type, q.payload, q.len);
		free(q.payload);
	}
}

/* --- run --------------------------------------------------------------------------------------- */

static int agent_init(struct agent *a, const struct opts *o)
{
	char why[256] = "";
	enum herr rc;
	SSL_CTX *ctx;
	int n;

	a->dir = o->state;
	a->keepalive = (int)o->keepalive;
	a->fail_install = o->fail_install;
	a->backoff_s = BACKOFF_MIN_S;
	if (o->exit_after)
		a->deadline_ms = mono_ms() + o->exit_after * 1000;
	if (!o->mqtt || !o->api || parse_hostport(o->mqtt, &a->mqtt) != 0 || parse_hostport(o->api, &a->api) != 0) {
		fprintf(stderr, "hearth-agent run: --mqtt HOST:PORT and --api HOST:PORT are required\n");
		return 2;
	}
	rc = fs_check_private_dir(o->state);
	if (rc != HERR_OK) {
		say("%s is not a private state directory (it must exist, mode 0700): %s", o->state,
		    rc == HERR_STATE ? "others may access it" : herr_str(rc));
		return 1;
	}
	if (state_load(o->state, &a->trust, why, sizeof(why)) != HERR_OK) {
		say("cannot load the trust: %s", why);
		return 1;
	}
	if (state_path(a->ca, sizeof(a->ca), a->dir, STATE_CA) != HERR_OK ||
	    state_path(a->cert, sizeof(a->cert), a->dir, STATE_CERT) != HERR_OK ||
	    state_path(a->key, sizeof(a->key), a->dir, STATE_KEY) != HERR_OK)
		return 1;
	n = snprintf(a->topic_status, sizeof(a->topic_status), "hearth/v1/%s/status", a->trust.device_id);
	n |= snprintf(a->topic_ack, sizeof(a->topic_ack), "hearth/v1/%s/ack", a->trust.device_id);
	n |= snprintf(a->topic_manifests, sizeof(a->topic_manifests), "hearth/v1/%s/manifest/+", a->trust.device_id);
	n |= snprintf(a->manifest_prefix, sizeof(a->manifest_prefix), "hearth/v1/%s/manifest/", a->trust.device_id);
	if (n < 0)
		return 1;

	mosquitto_lib_init();
	a->mosq = mosquitto_new(a->trust.device_id, true, a);
	if (!a->mosq) {
		say("cannot create the MQTT client");
		return 1;
	}
	ctx = make_ssl_ctx(a);
	if (!ctx)
		return 1;
	/* Our SSL_CTX as it is: libmosquitto's defaults would replace the verify callback. */
	if (mosquitto_int_option(a->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311) != MOSQ_ERR_SUCCESS ||
	    mosquitto_void_option(a->mosq, MOSQ_OPT_SSL_CTX, ctx) != MOSQ_ERR_SUCCESS ||
	    mosquitto_int_option(a->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0) != MOSQ_ERR_SUCCESS ||
	    mosquitto_will_set(a->mosq, a->topic_status, 16, "{\"online\":false}", 1, true) != MOSQ_ERR_SUCCESS) {
		SSL_CTX_free(ctx);
		say("cannot configure the MQTT client");
		return 1;
	}
	SSL_CTX_free(ctx); /* libmosquitto holds its own reference */
	mosquitto_connect_callback_set(a->mosq, on_connect);
	mosquitto_disconnect_callback_set(a->mosq, on_disconnect);
	mosquitto_message_callback_set(a->mosq, on_message);
	return 0;
}

static void agent_close(struct agent *a)
{
	int64_t until;

	if (a->mosq && a->link == LINK_UP) {
		/* A clean goodbye: the will is for deaths, this says so on purpose. */
		(void)mosquitto_publish(a->mosq, NULL, a->topic_status, 16, "{\"online\":false}", 1, true);
		until = mono_ms() + 1000;
		while (mono_ms() < until && mosquitto_want_write(a->mosq) &&
		       mosquitto_loop(a->mosq, 50, 1) == MOSQ_ERR_SUCCESS)
			;
		a->link = LINK_DOWN; /* a goodbye, not a loss */
		mosquitto_disconnect(a->mosq);
		(void)mosquitto_loop(a->mosq, 50, 1);
	}
	while (a->q_count > 0)
		free(a->queue[--a->q_count].payload);
	mosquitto_destroy(a->mosq);
	mosquitto_lib_cleanup();
}

static int cmd_run(const struct opts *o)
{
	struct agent *a;
	int rc;

	a = calloc(1, sizeof(*a));
	if (!a)
		return 1;
	rc = agent_init(a, o);
	if (rc != 0) {
		if (a->mosq)
			mosquitto_destroy(a->mosq);
		free(a);
		return rc;
	}
	say("starting as %s (firmware %s, security version %" PRId64 ")", a->trust.device_id,
	    a->trust.firmware_version[0] ? a->trust.firmware_version : "unknown", a->trust.security_version);
	while (!stopping(a)) {
		if (a->link == LINK_DOWN) {
			if (mono_ms() >= a->next_attempt_ms)
				start_connect(a);
			else
				pause_ms(a, 100);
			continue;
		}
		service(a, 100);
		/* Once the burst of retained manifests after a (re)connection is in, so that they are
		 * taken in a sensible order (next_queued). */
		if (a->q_count == QUEUE_MAX || mono_ms() - a->last_message_ms >= SETTLE_MS)
			handle_queue(a);
	}
	say("stopping");
	agent_close(a);
	free(a);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;

	if (argc < 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage();
		return 0;
	}
	if (parse_opts(argc, argv, &o) != 0) {
		usage();
		return 2;
	}
	install_signals();
	if (strcmp(argv[1], "enroll") == 0)
		return cmd_enroll(&o);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(&o);
	if (strcmp(argv[1], "show") == 0)
		return cmd_show(&o);
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(&o);
	usage();
	return 2;
}
