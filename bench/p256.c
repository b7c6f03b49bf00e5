/* p256: the ceiling mbedTLS's P-256 arithmetic puts on full mTLS handshakes. It times the
 * elliptic-curve work a TLS 1.2 ECDHE-ECDSA server does in one handshake with a client
 * certificate (an ephemeral key and the shared secret, one ECDSA signature over ServerKeyExchange,
 * two ECDSA verifications: the client certificate's signature and CertificateVerify), on one thread
 * and on several at once, with the mbedTLS the system has. Everything else in a handshake
 * (hashing, AES, parsing, system calls) is left out, so a server can only come close to it.
 * A benchmark tool, not part of hearth; one "result key=value..." line goes to stdout. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/version.h>

#define MAX_THREADS 16
#define MAX_SECONDS 60
#define NS_PER_S 1000000000ull
#define HASH_LEN 32
/* Operations between two looks at the clock: a look costs nothing next to a scalar multiplication. */
#define CLOCK_EVERY 4

/* The peer's side, made once: what a handshake verifies, and the point the client would send. */
struct fixture {
	mbedtls_ecp_keypair server;     /* the endpoint key: signs ServerKeyExchange */
	mbedtls_ecp_keypair ca;         /* the issuing CA: signed the client certificate */
	mbedtls_ecp_keypair client;     /* the device key: signs CertificateVerify */
	mbedtls_ecp_point client_ephemeral;
	unsigned char cert_hash[HASH_LEN], cert_sig[MBEDTLS_ECDSA_MAX_LEN];
	size_t cert_sig_len;
	unsigned char cv_hash[HASH_LEN], cv_sig[MBEDTLS_ECDSA_MAX_LEN];
	size_t cv_sig_len;
};

enum op { OP_HANDSHAKE, OP_ECDHE, OP_SIGN, OP_VERIFY };

static const char *const op_names[] = {
	[OP_HANDSHAKE] = "one handshake's EC work", [OP_ECDHE] = "ECDHE key + shared secret",
	[OP_SIGN] = "ECDSA sign", [OP_VERIFY] = "ECDSA verify",
};

/* One thread's own copies: mbedTLS caches per-group tables lazily, so nothing is shared. */
struct worker {
	const struct fixture *fx;
	enum op op;
	uint64_t seconds_ns;
	pthread_t thread;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ecdsa_context server, ca;
	unsigned long count;
	uint64_t elapsed_ns;
	int ret;                        /* first mbedTLS error, 0 if none */
	const char *what;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void report(const char *what, int ret)
{
	char buf[128];

	mbedtls_strerror(ret, buf, sizeof(buf));
	fprintf(stderr, "p256: %s: %s (-0x%04x)\n", what, buf, (unsigned)-ret);
}

/* A keypair's copy with its own group, as a freshly parsed certificate or key would have; dst is
 * initialised and empty. */
static int keypair_copy(mbedtls_ecdsa_context *dst, const mbedtls_ecp_keypair *src)
{
	int ret;

	if ((ret = mbedtls_ecp_group_load(&dst->grp, MBEDTLS_ECP_DP_SECP256R1)) != 0 ||
	    (ret = mbedtls_mpi_copy(&dst->d, &src->d)) != 0 ||
	    (ret = mbedtls_ecp_copy(&dst->Q, &src->Q)) != 0)
		return ret;
	return 0;
}

/* ECDHE as the TLS layer does it: a group set up for this handshake, a new key, the secret. */
static int do_ecdhe(struct worker *w)
{
	mbedtls_ecp_group grp;
	mbedtls_ecp_point q;
	mbedtls_mpi d, z;
	int ret;

	mbedtls_ecp_group_init(&grp);
	mbedtls_ecp_point_init(&q);
	mbedtls_mpi_init(&d);
	mbedtls_mpi_init(&z);
	if ((ret = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1)) == 0 &&
	    (ret = mbedtls_ecdh_gen_public(&grp, &d, &q, mbedtls_ctr_drbg_random, &w->drbg)) == 0)
		ret = mbedtls_ecdh_compute_shared(&grp, &z, &w->fx->client_ephemeral, &d,
						  mbedtls_ctr_drbg_random, &w->drbg);
	mbedtls_mpi_free(&z);
	mbedtls_mpi_free(&d);
	mbedtls_ecp_point_free(&q);
	mbedtls_ecp_group_free(&grp);
	if (ret != 0)
		w->what = "ECDHE";
	return ret;
}

static int do_sign(struct worker *w)
{
	unsigned char hash[HASH_LEN], sig[MBEDTLS_ECDSA_MAX_LEN];
	size_t len = 0;
	int ret;

	/* A new message each time, as each handshake's randoms and key differ. */
	if ((ret = mbedtls_ctr_drbg_random(&w->drbg, hash, sizeof(hash))) == 0)
		ret = mbedtls_ecdsa_write_signature(&w->server, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, &len,
						    mbedtls_ctr_drbg_random, &w->drbg);
	if (ret != 0)
		w->what = "ECDSA sign";
	return ret;
}

/* The client certificate's signature, with the CA key the server holds for its whole life. */
static int do_verify_cert(struct worker *w)
{
	int ret = mbedtls_ecdsa_read_signature(&w->ca, w->fx->cert_hash, HASH_LEN, w->fx->cert_sig,
					       w->fx->cert_sig_len);

	if (ret != 0)
		w->what = "ECDSA verify (certificate)";
	return ret;
}

/* CertificateVerify, with the public key of a certificate parsed in this handshake. */
static int do_verify_cv(struct worker *w)
{
	mbedtls_ecdsa_context client;
	int ret;

	mbedtls_ecdsa_init(&client);
	if ((ret = mbedtls_ecp_group_load(&client.grp, MBEDTLS_ECP_DP_SECP256R1)) == 0 &&
	    (ret = mbedtls_ecp_copy(&client.Q, &w->fx->client.Q)) == 0)
		ret = mbedtls_ecdsa_read_signature(&client, w->fx->cv_hash, HASH_LEN, w->fx->cv_sig,
						   w->fx->cv_sig_len);
	mbedtls_ecdsa_free(&client);
	if (ret != 0)
		w->what = "ECDSA verify (CertificateVerify)";
	return ret;
}

static int do_op(struct worker *w)
{
	int ret;

	switch (w->op) {
	case OP_ECDHE:
		return do_ecdhe(w);
	case OP_SIGN:
		return do_sign(w);
	case OP_VERIFY:
		return do_verify_cv(w);
	case OP_HANDSHAKE:
		if ((ret = do_ecdhe(w)) != 0 || (ret = do_sign(w)) != 0 || (ret = do_verify_cert(w)) != 0)
			return ret;
		return do_verify_cv(w);
	}
	return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint64_t start = now_ns(), end = start + w->seconds_ns, now = start;

	/* Bounded by time, and by count as well should the clock misbehave. */
	while (now < end && w->count < 100000000ul) {
		int i;

		for (i = 0; i < CLOCK_EVERY; i++) {
			if ((w->ret = do_op(w)) != 0)
				goto out;
			w->count++;
		}
		now = now_ns();
	}
out:
	w->elapsed_ns = now_ns() - start;
	return NULL;
}

static int worker_setup(struct worker *w, const struct fixture *fx, unsigned id)
{
	char pers[32];
	int ret;

	memset(w, 0, sizeof(*w));
	w->fx = fx;
	mbedtls_entropy_init(&w->entropy);
	mbedtls_ctr_drbg_init(&w->drbg);
	mbedtls_ecdsa_init(&w->server);
	mbedtls_ecdsa_init(&w->ca);
	snprintf(pers, sizeof(pers), "hearth-p256-%u", id);
	if ((ret = mbedtls_ctr_drbg_seed(&w->drbg, mbedtls_entropy_func, &w->entropy, (const unsigned char *)pers,
					 strlen(pers))) != 0) {
		report("random generator", ret);
		return -1;
	}
	if ((ret = keypair_copy(&w->server, &fx->server)) != 0 || (ret = keypair_copy(&w->ca, &fx->ca)) != 0) {
		report("key copy", ret);
		return -1;
	}
	return 0;
}

static void worker_free(struct worker *w)
{
	mbedtls_ecdsa_free(&w->server);
	mbedtls_ecdsa_free(&w->ca);
	mbedtls_ctr_drbg_free(&w->drbg);
	mbedtls_entropy_free(&w->entropy);
}

/* Operations per second over nthreads threads running op for seconds_ns; -1 on an error. */
static double measure(struct worker *ws, unsigned nthreads, enum op op, uint64_t seconds_ns)
{
	double rate = 0;
	unsigned i, started = 0;
	int failed = 0;

	for (i = 0; i < nthreads; i++) {
		ws[i].op = op;
		ws[i].seconds_ns = seconds_ns;
		ws[i].count = 0;
		ws[i].ret = 0;
		ws[i].what = NULL;
	}
	if (nthreads == 1) {
		worker_run(&ws[0]);
		started = 1;
	} else {
		for (i = 0; i < nthreads; i++) {
			if (pthread_create(&ws[i].thread, NULL, worker_run, &ws[i]) != 0) {
				fprintf(stderr, "p256: cannot start thread %u\n", i + 1);
				failed = 1;
				break;
			}
			started++;
		}
		for (i = 0; i < started; i++)
			pthread_join(ws[i].thread, NULL);
	}
	for (i = 0; i < started; i++) {
		if (ws[i].ret != 0) {
			report(ws[i].what ? ws[i].what : op_names[op], ws[i].ret);
			failed = 1;
		} else if (ws[i].elapsed_ns > 0) {
			rate += (double)ws[i].count * (double)NS_PER_S / (double)ws[i].elapsed_ns;
		}
	}
	return failed ? -1 : rate;
}

static int fixture_setup(struct fixture *fx)
{
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ecdsa_context signer;
	mbedtls_ecp_group grp;
	mbedtls_mpi d;
	const char *what = "random generator";
	int ret;

	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ecdsa_init(&signer);
	mbedtls_ecp_group_init(&grp);
	mbedtls_mpi_init(&d);
	if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
					 (const unsigned char *)"hearth-p256", 11)) != 0)
		goto out;
	what = "key generation";
	if ((ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &fx->server, mbedtls_ctr_drbg_random, &drbg)) != 0 ||
	    (ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &fx->ca, mbedtls_ctr_drbg_random, &drbg)) != 0 ||
	    (ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, &fx->client, mbedtls_ctr_drbg_random, &drbg)) != 0 ||
	    (ret = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1)) != 0 ||
	    (ret = mbedtls_ecdh_gen_public(&grp, &d, &fx->client_ephemeral, mbedtls_ctr_drbg_random, &drbg)) != 0 ||
	    (ret = mbedtls_ctr_drbg_random(&drbg, fx->cert_hash, HASH_LEN)) != 0 ||
	    (ret = mbedtls_ctr_drbg_random(&drbg, fx->cv_hash, HASH_LEN)) != 0)
		goto out;
	what = "signing the fixture";
	if ((ret = mbedtls_ecdsa_from_keypair(&signer, &fx->ca)) != 0 ||
	    (ret = mbedtls_ecdsa_write_signature(&signer, MBEDTLS_MD_SHA256, fx->cert_hash, HASH_LEN, fx->cert_sig,
						 &fx->cert_sig_len, mbedtls_ctr_drbg_random, &drbg)) != 0)
		goto out;
	mbedtls_ecdsa_free(&signer);
	mbedtls_ecdsa_init(&signer);
	if ((ret = mbedtls_ecdsa_from_keypair(&signer, &fx->client)) != 0 ||
	    (ret = mbedtls_ecdsa_write_signature(&signer, MBEDTLS_MD_SHA256, fx->cv_hash, HASH_LEN, fx->cv_sig,
						 &fx->cv_sig_len, mbedtls_ctr_drbg_random, &drbg)) != 0)
		goto out;
out:
	if (ret != 0)
		report(what, ret);
	mbedtls_mpi_free(&d);
	mbedtls_ecp_group_free(&grp);
	mbedtls_ecdsa_free(&signer);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return ret == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const char usage[] = "p256 [--seconds S] [--threads N]\n"
				    "  S seconds for each measurement (default 3), N threads at most (default 2)\n";
	struct fixture fx;
	struct worker ws[MAX_THREADS];
	unsigned long seconds = 3, threads = 2, v;
	double single_op[OP_VERIFY + 1] = { 0 }, rate1, raten = -1;
	char version[32];
	unsigned i, ready = 0;
	int a, rc = 1;

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--seconds") == 0 && a + 1 < argc &&
		    parse_ulong(argv[a + 1], 1, MAX_SECONDS, &v) == 0) {
			seconds = v;
			a++;
		} else if (strcmp(argv[a], "--threads") == 0 && a + 1 < argc &&
			   parse_ulong(argv[a + 1], 1, MAX_THREADS, &v) == 0) {
			threads = v;
			a++;
		} else {
			fputs(usage, strcmp(argv[a], "--help") == 0 ? stdout : stderr);
			return strcmp(argv[a], "--help") == 0 ? 0 : 2;
		}
	}
	memset(&fx, 0, sizeof(fx));
	mbedtls_ecp_keypair_init(&fx.server);
	mbedtls_ecp_keypair_init(&fx.ca);
	mbedtls_ecp_keypair_init(&fx.client);
	mbedtls_ecp_point_init(&fx.client_ephemeral);
	if (fixture_setup(&fx) != 0)
		goto out;
	for (i = 0; i < threads; i++, ready++) {
		if (worker_setup(&ws[i], &fx, i) != 0) {
			worker_free(&ws[i]);
			goto out;
		}
	}
	mbedtls_version_get_string(version);
	printf("p256: mbedTLS %s, secp256r1, one thread per core at most\n", version);
	/* The parts first, briefly, so the sum can be checked against the whole. */
	for (i = OP_ECDHE; i <= OP_VERIFY; i++) {
		double r = measure(ws, 1, (enum op)i, seconds * NS_PER_S / 3);

		if (r <= 0)
			goto out;
		single_op[i] = 1000.0 / r;
		printf("  %-28s %7.3f ms\n", op_names[i], single_op[i]);
	}
	rate1 = measure(ws, 1, OP_HANDSHAKE, seconds * NS_PER_S);
	if (rate1 <= 0)
		goto out;
	printf("  %-28s %7.3f ms (1 ECDHE, 1 sign, 2 verifies)\n", op_names[OP_HANDSHAKE], 1000.0 / rate1);
	if (threads > 1) {
		raten = measure(ws, (unsigned)threads, OP_HANDSHAKE, seconds * NS_PER_S);
		if (raten <= 0)
			goto out;
	}
	printf("handshakes/s the arithmetic allows: %.1f on 1 thread", rate1);
	if (threads > 1)
		printf(", %.1f on %lu threads", raten, threads);
	printf("\nresult threads1=%.1f threadsn=%.1f nthreads=%lu ecdhe_ms=%.3f sign_ms=%.3f verify_ms=%.3f "
	       "handshake_ms=%.3f mbedtls=%s\n", rate1, threads > 1 ? raten : rate1, threads, single_op[OP_ECDHE],
	       single_op[OP_SIGN], single_op[OP_VERIFY], 1000.0 / rate1, version);
	rc = 0;
out:
	for (i = 0; i < ready; i++)
		worker_free(&ws[i]);
	mbedtls_ecp_point_free(&fx.client_ephemeral);
	mbedtls_ecp_keypair_free(&fx.client);
	mbedtls_ecp_keypair_free(&fx.ca);
	mbedtls_ecp_keypair_free(&fx.server);
	return rc;
}
