/* host_stats.h - host usage samples for the stats API: CPU time from
 * /proc/stat and memory from /proc/meminfo.
 *
 * A sample holds cumulative counters; utilisation is a property of two
 * samples, computed by the pure host_stats_cpu_util() (the caller keeps the
 * previous sample, e.g. the agent's stats loop).  Percentages are of the whole
 * host (all online CPUs = 100).  iowait counts as idle, as in top(1); guest
 * time is already inside user/nice and is not added again.  Steal is reported
 * separately: on a nested host it is the time the outer hypervisor took. */
#ifndef STRATA_HOST_STATS_H
#define STRATA_HOST_STATS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

/* The aggregate "cpu" line of /proc/stat, in clock ticks. */
struct host_cpu_times {
    uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
};

struct host_stats_sample {
    uint64_t mono_ns;           /* CLOCK_MONOTONIC when taken */
    struct host_cpu_times cpu;
    unsigned n_cpus;            /* "cpuN" lines */
    uint64_t mem_total;         /* bytes */
    uint64_t mem_free;
    uint64_t mem_available;
};

struct host_cpu_util {
    double busy_pct;            /* 100 - idle - iowait */
    double user_pct;            /* user + nice */
    double system_pct;          /* system + irq + softirq */
    double iowait_pct;
    double steal_pct;
    double idle_pct;
};

/* Reads <root>/proc/stat and <root>/proc/meminfo ('root' NULL = "/"). */
int host_stats_sample(const char *root, struct host_stats_sample *out, struct error **errp);

/* Parses the text of /proc/stat into out->cpu and out->n_cpus; pure. */
int host_stats_parse_proc_stat(const char *text, struct host_stats_sample *out,
                               struct error **errp);

/* Utilisation between 'prev' and 'cur'.  Returns false (and zeros) when no CPU
 * time passed between them; counters that went backwards count as zero. */
bool host_stats_cpu_util(const struct host_cpu_times *prev, const struct host_cpu_times *cur,
                         struct host_cpu_util *out);

/* Returns a new JSON object with the memory of 'cur' and, when 'util' is not
 * NULL, the CPU percentages; the caller owns the reference. */
json_t *host_stats_to_json(const struct host_stats_sample *cur,
                           const struct host_cpu_util *util);

#endif
