#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

/* Atomic: set by the event loop on SIGHUP, read by every thread. */
static int max_level = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
	__atomic_store_n(&max_level, (int)level, __ATOMIC_RELAXED);
}

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char stamp[32] = "";
	struct tm tm;
	time_t now;
	va_list ap;

	if ((int)level > __atomic_load_n(&max_level, __ATOMIC_RELAXED))
		return;
	now = time(NULL);
	if (gmtime_r(&now, &tm))
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* One fprintf per part keeps this simple; stderr is unbuffered so lines from one thread stay whole
	 * enough for a CLI. The daemon will get a line buffer when it grows threads. */
	flockfile(stderr);
	fprintf(stderr, "%s hearth %s: ", stamp, names[level]);
	if (level == LOG_LEVEL_DEBUG || level == LOG_LEVEL_ERR)
		fprintf(stderr, "%s: ", func);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}
