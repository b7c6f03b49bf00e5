/* allocfail: an LD_PRELOAD shim that makes malloc, calloc and realloc fail (NULL, errno ENOMEM)
 * in a running process, on command, for tests/integration/36-alloc-fail.sh. The test writes one
 * rule into the file named by ALLOCFAIL_CTL, which the shim reads again at most every 20 ms:
 *
 *     off                                   fail nothing (also: no file, or no ALLOCFAIL_CTL)
 *     every=N [min=BYTES] [thread=WHICH]    fail every Nth allocation of at least BYTES (1 if not
 *                                           given) made on WHICH thread: main (the process's
 *                                           first: hearth's event loop), other, or any (default)
 *
 * Each failure is counted; the count is kept, as decimal text, in ALLOCFAIL_CTL.count. The shim
 * allocates nothing itself and calls only system calls while it decides, so it can sit under any
 * allocation of any thread. Test code only: never linked into hearth. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* glibc's own allocator, under the names it exports for this purpose. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

#define RELOAD_NS (20 * 1000 * 1000L)
#define CTL_MAX 200

enum which { THREAD_ANY, THREAD_MAIN, THREAD_OTHER };

static struct {
	unsigned long every;     /* 0: off */
	size_t min;
	enum which thread;
} rule;
static char ctl_path[4096];
static int count_fd = -1;
static long next_reload_ns;
static int reloading;
static unsigned long eligible, failed;
static __thread int my_tid __attribute__((tls_model("initial-exec")));

static long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* The unsigned decimal number at *p (advanced past it); 0 if there is none. */
static unsigned long number(const char **p)
{
	unsigned long v = 0;

	while (**p >= '0' && **p <= '9') {
		v = v * 10 + (unsigned long)(**p - '0');
		(*p)++;
	}
	return v;
}

static void parse(const char *s)
{
	unsigned long every = 0;
	size_t min = 1;
	enum which thread = THREAD_ANY;

	while (*s) {
		if (strncmp(s, "every=", 6) == 0) {
			s += 6;
			every = number(&s);
		} else if (strncmp(s, "min=", 4) == 0) {
			s += 4;
			min = number(&s);
		} else if (strncmp(s, "thread=main", 11) == 0) {
			s += 11;
			thread = THREAD_MAIN;
		} else if (strncmp(s, "thread=other", 12) == 0) {
			s += 12;
			thread = THREAD_OTHER;
		} else if (strncmp(s, "thread=any", 10) == 0) {
			s += 10;
			thread = THREAD_ANY;
		} else {
			s++; /* "off", separators, anything unknown */
		}
	}
	__atomic_store_n(&rule.min, min, __ATOMIC_RELAXED);
	__atomic_store_n(&rule.thread, thread, __ATOMIC_RELAXED);
	__atomic_store_n(&rule.every, every, __ATOMIC_RELEASE);
}

/* Read the rule again if it is time; one thread at a time, the others go on with the old one. */
static void maybe_reload(void)
{
	long now = mono_ns();
	char buf[CTL_MAX + 1];
	ssize_t n;
	int fd;

	if (!ctl_path[0] || now < __atomic_load_n(&next_reload_ns, __ATOMIC_RELAXED))
		return;
	if (__atomic_exchange_n(&reloading, 1, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&next_reload_ns, now + RELOAD_NS, __ATOMIC_RELAXED);
	fd = open(ctl_path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, CTL_MAX) : 0;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	parse(buf);
	__atomic_store_n(&reloading, 0, __ATOMIC_RELEASE);
}

static void write_count(unsigned long v)
{
	char text[24];
	int i = (int)sizeof(text);

	text[--i] = '\n';
	do {
		text[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	if (count_fd >= 0 && pwrite(count_fd, text + i, sizeof(text) - (size_t)i, 0) < 0)
		return; /* the count is a diagnostic only */
}

/* 1 if this allocation of size bytes is to fail. */
static int should_fail(size_t size)
{
	unsigned long every, n;
	enum which thread;

	maybe_reload();
	every = __atomic_load_n(&rule.every, __ATOMIC_ACQUIRE);
	if (every == 0 || size < __atomic_load_n(&rule.min, __ATOMIC_RELAXED))
		return 0;
	thread = __atomic_load_n(&rule.thread, __ATOMIC_RELAXED);
	if (thread != THREAD_ANY) {
		int is_main;

		if (!my_tid)
			my_tid = (int)syscall(SYS_gettid);
		is_main = my_tid == (int)getpid();
		if (is_main != (thread == THREAD_MAIN))
			return 0;
	}
	n = __atomic_add_fetch(&eligible, 1, __ATOMIC_RELAXED);
	if (n % every != 0)
		return 0;
	write_count(__atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED));
	errno = ENOMEM;
	return 1;
}

__attribute__((constructor)) static void allocfail_init(void)
{
	const char *ctl = getenv("ALLOCFAIL_CTL");
	char path[sizeof(ctl_path) + 8];
	size_t len;

	if (!ctl || (len = strlen(ctl)) == 0 || len >= sizeof(ctl_path))
		return;
	memcpy(ctl_path, ctl, len + 1);
	memcpy(path, ctl, len);
	memcpy(path + len, ".count", sizeof(".count"));
	count_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	write_count(0);
}

void *malloc(size_t size)
{
	return should_fail(size) ? NULL : __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	return should_fail(n * size) ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	/* realloc(p, 0) frees: never refused. */
	return size && should_fail(size) ? NULL : __libc_realloc(p, size);
}
