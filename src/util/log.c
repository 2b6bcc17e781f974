/* log.c - see log.h. */
#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static _Atomic int cur_level = LOG_LEVEL_INFO;
static FILE *log_file;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level) { cur_level = level; }
enum log_level log_get_level(void) { return (enum log_level) cur_level; }

int log_level_from_string(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, level_names[i]))
            return i;
    return -1;
}

const char *log_level_to_string(enum log_level level)
{
    return (unsigned) level < 4 ? level_names[level] : "info";
}

int log_set_file(const char *path)
{
    FILE *f = fopen(path, "ae");
    if (!f)
        return -1;
    setvbuf(f, NULL, _IOLBF, 0);
    pthread_mutex_lock(&log_lock);
    if (log_file)
        fclose(log_file);
    log_file = f;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    if ((int) level < cur_level)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&log_lock);
    FILE *out = log_file ? log_file : stderr;
    fprintf(out, "%s.%03ldZ %s %s: %s\n", ts, (long) tv.tv_usec / 1000,
            log_level_to_string(level), module, msg);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

bool log_ratelimit_allow(struct log_ratelimit *rl, int burst, int interval_s)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&log_lock);
    if (now - rl->window_start >= interval_s) {
        rl->window_start = now;
        rl->count = 0;
    }
    bool ok = rl->count++ < burst;
    pthread_mutex_unlock(&log_lock);
    return ok;
}
