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
	char stamp[32] = "", line[1024];
	struct tm tm;
	int n, m;
	time_t now;
	va_list ap;

	if ((int)level > __atomic_load_n(&max_level, __ATOMIC_RELAXED))
		return;
	now = time(NULL);
	if (gmtime_r(&now, &tm))
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* A line is formatted first and written with one write(2): whole, even with several threads
	 * (or processes) sharing stderr, and one syscall, not three. A longer line goes in parts. */
	n = snprintf(line, sizeof(line), "%s hearth %s: ", stamp, names[level]);
	if (n >= 0 && (size_t)n < sizeof(line) && (level == LOG_LEVEL_DEBUG || level == LOG_LEVEL_ERR))
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%s: ", func);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > 0 && m >= 0 && (size_t)n + (size_t)m + 1 < sizeof(line)) {
		line[n + m] = '\n';
		fwrite(line, 1, (size_t)n + (size_t)m + 1, stderr);
		return;
	}
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
