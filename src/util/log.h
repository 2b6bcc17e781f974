/* log.h - leveled logging with a module tag per file.
 *
 * Each .c file that logs defines LOG_MODULE before including this header:
 *   #define LOG_MODULE "qmp"
 * Messages go to stderr (or a file set with log_set_file()) as one line:
 *   2026-11-22T01:02:03.456Z warn qmp: message
 * The level can be changed at run time (log_set_level), e.g. from the API.
 * LOG_RL_*() variants drop messages beyond 'burst' per 'interval' seconds per
 * call site, for use inside loops. */
#ifndef STRATA_LOG_H
#define STRATA_LOG_H

#include <stdbool.h>
#include <time.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_level_from_string(const char *s);   /* -1 if unknown */
const char *log_level_to_string(enum log_level level);
/* Appends to 'path' from now on; returns -1 on failure (logging unchanged). */
int log_set_file(const char *path);
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct log_ratelimit {
    time_t window_start;
    int count;
};
bool log_ratelimit_allow(struct log_ratelimit *rl, int burst, int interval_s);

#ifndef LOG_MODULE
#define LOG_MODULE "strata"
#endif
#define LOG_DEBUG(...) log_msg(LOG_LEVEL_DEBUG, LOG_MODULE, __VA_ARGS__)
#define LOG_INFO(...)  log_msg(LOG_LEVEL_INFO, LOG_MODULE, __VA_ARGS__)
#define LOG_WARN(...)  log_msg(LOG_LEVEL_WARN, LOG_MODULE, __VA_ARGS__)
#define LOG_ERROR(...) log_msg(LOG_LEVEL_ERROR, LOG_MODULE, __VA_ARGS__)
#define LOG_RL(level, ...)                                              \
    do {                                                                \
        static struct log_ratelimit rl_;                                \
        if (log_ratelimit_allow(&rl_, 5, 60))                           \
            log_msg(level, LOG_MODULE, __VA_ARGS__);                    \
    } while (0)
#define LOG_RL_WARN(...) LOG_RL(LOG_LEVEL_WARN, __VA_ARGS__)

#endif
