/* host_stats.c - samples /proc/stat and /proc/meminfo; see host_stats.h.
 *
 * The parsing is pure and the arithmetic on two samples is pure; only
 * host_stats_sample() touches the file system. */
#include "host/host_stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/fileutil.h"
#include "util/mem.h"

#define STAT_FILE_MAX (16u << 20)

int host_stats_parse_proc_stat(const char *text, struct host_stats_sample *out,
                               struct error **errp)
{
    bool have_cpu = false;
    out->n_cpus = 0;
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        if (strncmp(line, "cpu ", 4) == 0) {
            unsigned long long v[8] = { 0 };
            int n = sscanf(line + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                           &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
            if (n < 4)
                return error_set(errp, ERR_IO, "malformed cpu line in /proc/stat");
            out->cpu = (struct host_cpu_times) { v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7] };
            have_cpu = true;
        } else if (strncmp(line, "cpu", 3) == 0 && line[3] >= '0' && line[3] <= '9') {
            out->n_cpus++;
        }
        line = eol ? eol + 1 : NULL;
    }
    if (!have_cpu)
        return error_set(errp, ERR_IO, "no cpu line in /proc/stat");
    return 0;
}

/* "Key:   N kB" at the start of a line of /proc/meminfo, in bytes. */
static uint64_t meminfo_bytes(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            return strtoull(line + kl + 1, NULL, 10) * 1024;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return 0;
}

static char *rooted(const char *root, const char *path)
{
    if (!root || !*root || strcmp(root, "/") == 0)
        return xstrdup(path);
    size_t l = strlen(root);
    while (l > 1 && root[l - 1] == '/')
        l--;
    return xasprintf("%.*s%s", (int) l, root, path);
}

int host_stats_sample(const char *root, struct host_stats_sample *out, struct error **errp)
{
    memset(out, 0, sizeof *out);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    out->mono_ns = (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;

    AUTOFREE char *stat_path = rooted(root, "/proc/stat");
    AUTOFREE char *stat = file_read_all(stat_path, STAT_FILE_MAX, NULL, errp);
    if (!stat || host_stats_parse_proc_stat(stat, out, errp) < 0)
        return -1;
    AUTOFREE char *mi_path = rooted(root, "/proc/meminfo");
    AUTOFREE char *mi = file_read_all(mi_path, STAT_FILE_MAX, NULL, errp);
    if (!mi)
        return -1;
    out->mem_total = meminfo_bytes(mi, "MemTotal");
    out->mem_free = meminfo_bytes(mi, "MemFree");
    out->mem_available = strstr(mi, "\nMemAvailable:") ? meminfo_bytes(mi, "MemAvailable")
                                                       : out->mem_free;
    return 0;
}

static uint64_t delta(uint64_t a, uint64_t b)
{
    return b > a ? b - a : 0;
}

bool host_stats_cpu_util(const struct host_cpu_times *prev, const struct host_cpu_times *cur,
                         struct host_cpu_util *out)
{
    memset(out, 0, sizeof *out);
    uint64_t user = delta(prev->user, cur->user) + delta(prev->nice, cur->nice);
    uint64_t sys = delta(prev->system, cur->system) + delta(prev->irq, cur->irq)
                   + delta(prev->softirq, cur->softirq);
    uint64_t idle = delta(prev->idle, cur->idle);
    uint64_t iowait = delta(prev->iowait, cur->iowait);
    uint64_t steal = delta(prev->steal, cur->steal);
    uint64_t total = user + sys + idle + iowait + steal;
    if (!total)
        return false;
    double t = (double) total;
    out->user_pct = 100.0 * (double) user / t;
    out->system_pct = 100.0 * (double) sys / t;
    out->iowait_pct = 100.0 * (double) iowait / t;
    out->steal_pct = 100.0 * (double) steal / t;
    out->idle_pct = 100.0 * (double) idle / t;
    out->busy_pct = 100.0 * (double) (user + sys + steal) / t;
    return true;
}

json_t *host_stats_to_json(const struct host_stats_sample *cur,
                           const struct host_cpu_util *util)
{
    json_t *o = json_pack("{s:I, s:{s:I, s:I, s:I}}", "online_cpus", (json_int_t) cur->n_cpus,
                          "memory", "total_bytes", (json_int_t) cur->mem_total,
                          "free_bytes", (json_int_t) cur->mem_free,
                          "available_bytes", (json_int_t) cur->mem_available);
    if (util)
        json_object_set_new(o, "cpu", json_pack("{s:f, s:f, s:f, s:f, s:f, s:f}",
                                                "busy_pct", util->busy_pct,
                                                "user_pct", util->user_pct,
                                                "system_pct", util->system_pct,
                                                "iowait_pct", util->iowait_pct,
                                                "steal_pct", util->steal_pct,
                                                "idle_pct", util->idle_pct));
    return o;
}
