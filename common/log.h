/* log: leveled diagnostics to stderr, one line each, prefixed with level and the calling function.
 * Secrets (private keys, tokens) are never passed here. */
#ifndef HEARTH_LOG_H
#define HEARTH_LOG_H

enum log_level { LOG_LEVEL_ERR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Messages above this level are discarded. Default LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...)   log_msg(LOG_LEVEL_ERR, __func__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __func__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __func__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __func__, __VA_ARGS__)

#endif
