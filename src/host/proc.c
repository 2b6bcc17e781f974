/* proc.c - reads /proc/<pid>/{stat,status,cmdline}; see proc.h.
 *
 * /proc/<pid>/stat is parsed from the last ')' on, because the command name
 * in field 2 is chosen by the process and may hold spaces and parentheses.
 * CPU time is converted with sysconf(_SC_CLK_TCK); the raw tick counts are
 * kept as well since the start time is used as an identity, not a duration. */
#include "host/proc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fileutil.h"
#include "util/mem.h"

#define PROC_STAT_MAX (64u << 10)
#define PROC_CMDLINE_MAX (8u << 20)

static char *pid_path(const char *root, pid_t pid, const char *file)
{
    if (!root || !*root || strcmp(root, "/") == 0)
        root = "";
    size_t l = strlen(root);
    while (l > 0 && root[l - 1] == '/')
        l--;
    return xasprintf("%.*s/proc/%ld/%s", (int) l, root, (long) pid, file);
}

/* Reads a /proc file of 'pid', mapping "gone" to ERR_NOT_FOUND. */
static char *read_pid_file(const char *root, pid_t pid, const char *file, size_t max,
                           size_t *len, struct error **errp)
{
    if (pid <= 0)
        return error_set(errp, ERR_INVALID_ARG, "invalid PID %ld", (long) pid), NULL;
    AUTOFREE char *path = pid_path(root, pid, file);
    struct error *err = NULL;
    char *s = file_read_all(path, max, len, &err);
    if (!s) {
        /* ESRCH: the process exited between open() and read(). */
        if (err->code == ERR_NOT_FOUND || strstr(err->message, strerror(ESRCH))) {
            error_free(err);
            return error_set(errp, ERR_NOT_FOUND, "process %ld does not exist", (long) pid),
                   NULL;
        }
        error_propagate(errp, err);
    }
    return s;
}

int proc_parse_stat(const char *text, struct proc_stat *out, struct error **errp)
{
    memset(out, 0, sizeof *out);
    const char *open = strchr(text, '(');
    const char *close = strrchr(text, ')');
    if (!open || !close || close < open)
        return error_set(errp, ERR_IO, "malformed process stat '%.80s'", text);
    out->pid = (pid_t) strtol(text, NULL, 10);
    size_t cl = (size_t) (close - open - 1);
    if (cl >= sizeof out->comm)
        cl = sizeof out->comm - 1;
    memcpy(out->comm, open + 1, cl);
    out->comm[cl] = '\0';

    /* Fields 3.. after the ')'; field[k] is stat field k. */
    unsigned long long field[23] = { 0 };
    const char *p = close + 1;
    while (*p == ' ')
        p++;
    if (!*p)
        return error_set(errp, ERR_IO, "malformed process stat '%.80s'", text);
    out->state = *p++;
    for (int k = 4; k <= 22; k++) {
        char *end;
        errno = 0;
        /* ppid and a few others can be negative (tty_nr, cutime); read as signed. */
        long long v = strtoll(p, &end, 10);
        if (end == p || errno)
            return error_set(errp, ERR_IO, "malformed field %d in process stat '%.80s'", k,
                             text);
        field[k] = (unsigned long long) v;
        p = end;
    }
    out->ppid = (pid_t) field[4];
    out->utime_ticks = field[14];
    out->stime_ticks = field[15];
    out->num_threads = (long) field[20];
    out->start_ticks = field[22];
    long tck = sysconf(_SC_CLK_TCK);
    if (tck <= 0)
        tck = 100;
    uint64_t ticks = out->utime_ticks + out->stime_ticks;
    out->cpu_time_ns = ticks / (uint64_t) tck * 1000000000ull
                       + ticks % (uint64_t) tck * 1000000000ull / (uint64_t) tck;
    return 0;
}

int proc_read_stat_at(const char *root, pid_t pid, struct proc_stat *out,
                      struct error **errp)
{
    AUTOFREE char *stat = read_pid_file(root, pid, "stat", PROC_STAT_MAX, NULL, errp);
    if (!stat || proc_parse_stat(stat, out, errp) < 0)
        return -1;
    AUTOFREE char *status = read_pid_file(root, pid, "status", PROC_STAT_MAX, NULL, errp);
    if (!status)
        return -1;
    const char *rss = strstr(status, "\nVmRSS:");
    if (rss) {
        unsigned long long kb = strtoull(rss + 7, NULL, 10);
        out->rss_bytes = kb * 1024;
    }
    return 0;
}

int proc_read_stat(pid_t pid, struct proc_stat *out, struct error **errp)
{
    return proc_read_stat_at(NULL, pid, out, errp);
}

char **proc_read_cmdline_at(const char *root, pid_t pid, struct error **errp)
{
    size_t len = 0;
    AUTOFREE char *buf = read_pid_file(root, pid, "cmdline", PROC_CMDLINE_MAX, &len, errp);
    if (!buf)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\0')
            n++;
    if (len && buf[len - 1] != '\0')
        n++;   /* a rewritten command line may lack the final NUL */
    char **argv = xcalloc(n + 1, sizeof *argv);
    size_t k = 0;
    for (size_t i = 0; i < len && k < n;) {
        size_t l = strnlen(buf + i, len - i);
        argv[k++] = xstrndup(buf + i, l);
        i += l + 1;
    }
    argv[k] = NULL;
    return argv;
}

char **proc_read_cmdline(pid_t pid, struct error **errp)
{
    return proc_read_cmdline_at(NULL, pid, errp);
}

bool proc_is_same_at(const char *root, pid_t pid, uint64_t start_ticks)
{
    AUTOFREE char *stat = read_pid_file(root, pid, "stat", PROC_STAT_MAX, NULL, NULL);
    struct proc_stat st;
    return stat && proc_parse_stat(stat, &st, NULL) == 0 && st.pid == pid
           && st.start_ticks == start_ticks;
}

bool proc_is_same(pid_t pid, uint64_t start_ticks)
{
    return proc_is_same_at(NULL, pid, start_ticks);
}
