/* proc.h - what /proc says about one process: CPU time, RSS, start time and
 * command line.
 *
 * The agent samples its QEMU processes with proc_read_stat() for VM stats, and
 * after a restart it re-adopts a QEMU by PID only if proc_is_same() confirms
 * the PID still names the process it started: PIDs are reused, but (PID,
 * start time in clock ticks since boot, field 22 of /proc/<pid>/stat) is
 * unique for the life of the system.  Every function has an _at variant that
 * reads below a root directory instead of "/", for tests with fake trees. */
#ifndef STRATA_PROC_H
#define STRATA_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

struct proc_stat {
    pid_t pid;
    char comm[64];              /* field 2 without the parentheses */
    char state;                 /* field 3: 'R', 'S', 'Z', ... */
    pid_t ppid;                 /* field 4 */
    uint64_t utime_ticks;       /* field 14, clock ticks */
    uint64_t stime_ticks;       /* field 15 */
    uint64_t cpu_time_ns;       /* (utime + stime) in nanoseconds */
    long num_threads;           /* field 20 */
    uint64_t start_ticks;       /* field 22: start time, clock ticks after boot */
    uint64_t rss_bytes;         /* VmRSS of /proc/<pid>/status; 0 when absent */
};

/* Fills '*out' from /proc/<pid>/stat and /proc/<pid>/status.  Returns 0, or
 * -1 with ERR_NOT_FOUND when there is no such process (ERR_IO otherwise). */
int proc_read_stat(pid_t pid, struct proc_stat *out, struct error **errp);
int proc_read_stat_at(const char *root, pid_t pid, struct proc_stat *out,
                      struct error **errp);

/* Parses the text of a /proc/<pid>/stat file (the command name may contain
 * spaces and parentheses).  Fills everything but rss_bytes; pure. */
int proc_parse_stat(const char *text, struct proc_stat *out, struct error **errp);

/* Returns a new NULL-terminated argv (free with strv_free()) from
 * /proc/<pid>/cmdline, or NULL with an error as for proc_read_stat().  Kernel
 * threads and zombies give an empty vector. */
char **proc_read_cmdline(pid_t pid, struct error **errp);
char **proc_read_cmdline_at(const char *root, pid_t pid, struct error **errp);

/* True if 'pid' exists and started at 'start_ticks'. */
bool proc_is_same(pid_t pid, uint64_t start_ticks);
bool proc_is_same_at(const char *root, pid_t pid, uint64_t start_ticks);

#endif
