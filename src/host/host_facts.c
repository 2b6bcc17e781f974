/* host_facts.c - collects the facts of host_facts.h from procfs, sysfs and
 * QEMU, decides the accelerator, and renders GET /v1/host.
 *
 * Reading order: small readers (rooted paths, "Key: N kB" files, CPU lists),
 * then one collector per source (cpuinfo, meminfo, NUMA nodes, huge pages,
 * KSM, QEMU), the accelerator decision (pure) and its probe shell, and last
 * the JSON rendering.  Every path goes through rooted() so the whole module
 * can be pointed at a fake tree.  The KVM probe itself lives in kvm_probe.c;
 * per-process and usage sampling live in proc.c and host_stats.c. */
#include "host/host_facts.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/command.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

#define PROC_FILE_MAX (16u << 20)
#define DEFAULT_QEMU "qemu-system-x86_64"
#define QEMU_RUN_TIMEOUT_MS 10000

/* ---- small readers ------------------------------------------------------ */

/* Returns a new string "<root><path>" ('path' is absolute). */
static char *rooted(const char *root, const char *path)
{
    if (!root || !*root || strcmp(root, "/") == 0)
        return xstrdup(path);
    size_t l = strlen(root);
    while (l > 1 && root[l - 1] == '/')
        l--;
    return xasprintf("%.*s%s", (int) l, root, path);
}

/* Returns the file's content with trailing white space removed, or NULL. */
static char *read_trimmed(const char *path)
{
    char *s = file_read_all(path, PROC_FILE_MAX, NULL, NULL);
    if (!s)
        return NULL;
    size_t l = strlen(s);
    while (l && isspace((unsigned char) s[l - 1]))
        s[--l] = '\0';
    return s;
}

static int read_ll(const char *path, long long *out)
{
    AUTOFREE char *s = read_trimmed(path);
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int read_u64(const char *path, uint64_t *out)
{
    long long v;
    if (read_ll(path, &v) < 0 || v < 0)
        return -1;
    *out = (uint64_t) v;
    return 0;
}

/* Finds "<key>: <N> kB" in a meminfo-style text (/proc/meminfo lines, or
 * "Node 0 MemTotal: ..." lines: the key is the word before the colon) and
 * stores N * 1024 (or N when there is no unit).  Returns 0 or -1 if absent. */
static int meminfo_get(const char *text, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        const char *colon = memchr(line, ':', eol ? (size_t) (eol - line) : strlen(line));
        if (colon && (size_t) (colon - line) >= kl && memcmp(colon - kl, key, kl) == 0
            && (colon - kl == line || colon[-(ptrdiff_t) kl - 1] == ' ')) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(colon + 1, &end, 10);
            if (errno || end == colon + 1)
                return -1;
            while (*end == ' ' || *end == '\t')
                end++;
            *out = strncmp(end, "kB", 2) == 0 ? v * 1024 : v;
            return 0;
        }
        line = eol ? eol + 1 : NULL;
    }
    return -1;
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;
    return x < y ? -1 : x > y;
}

int host_facts_parse_cpulist(const char *text, unsigned **cpus, size_t *n,
                             struct error **errp)
{
    *cpus = NULL;
    *n = 0;
    unsigned *v = NULL;
    size_t len = 0, cap = 0;
    const char *p = text;
    while (*p && *p != '\n') {
        char *end;
        errno = 0;
        unsigned long lo = strtoul(p, &end, 10), hi = lo;
        if (errno || end == p || lo > 1u << 20)
            goto bad;
        p = end;
        if (*p == '-') {
            hi = strtoul(p + 1, &end, 10);
            if (errno || end == p + 1 || hi < lo || hi > 1u << 20)
                goto bad;
            p = end;
        }
        for (unsigned long c = lo; c <= hi; c++) {
            if (len == cap) {
                cap = cap ? cap * 2 : 16;
                v = xrealloc(v, cap * sizeof *v);
            }
            v[len++] = (unsigned) c;
        }
        if (*p == ',')
            p++;
        else if (*p && *p != '\n')
            goto bad;
    }
    if (len)
        qsort(v, len, sizeof *v, cmp_unsigned);
    *cpus = v;
    *n = len;
    return 0;
bad:
    free(v);
    return error_set(errp, ERR_INVALID_ARG, "invalid CPU list '%.64s'", text);
}

bool host_facts_has_flag(char *const *flags, const char *flag)
{
    for (size_t i = 0; flags && flags[i]; i++)
        if (strcmp(flags[i], flag) == 0)
            return true;
    return false;
}

/* ---- /proc/cpuinfo ------------------------------------------------------ */

static char **split_words(const char *s)
{
    size_t cap = 64, n = 0;
    char **v = xcalloc(cap, sizeof *v);
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        const char *w = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (n + 2 > cap) {
            cap *= 2;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[n++] = xstrndup(w, (size_t) (s - w));
    }
    v[n] = NULL;
    return v;
}

static int parse_cpuinfo(const char *text, const char *path, struct host_facts *f,
                         unsigned *n_processors, struct error **errp)
{
    unsigned procs = 0, cores = 0, siblings = 0;
    long *phys = NULL;
    size_t n_phys = 0;
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t) (eol - line) : strlen(line);
        AUTOFREE char *l = xstrndup(line, ll);
        line = eol ? eol + 1 : NULL;
        char *colon = strchr(l, ':');
        if (!colon)
            continue;
        char *ke = colon;
        while (ke > l && isspace((unsigned char) ke[-1]))
            ke--;
        *ke = '\0';
        const char *val = colon + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        if (strcmp(l, "processor") == 0) {
            procs++;
        } else if (strcmp(l, "vendor_id") == 0 && !f->cpu_vendor) {
            f->cpu_vendor = xstrdup(val);
        } else if (strcmp(l, "model name") == 0 && !f->cpu_model_name) {
            f->cpu_model_name = xstrdup(val);
        } else if (strcmp(l, "flags") == 0 && !f->cpu_flags) {
            f->cpu_flags = split_words(val);
        } else if (strcmp(l, "cpu cores") == 0 && !cores) {
            cores = (unsigned) strtoul(val, NULL, 10);
        } else if (strcmp(l, "siblings") == 0 && !siblings) {
            siblings = (unsigned) strtoul(val, NULL, 10);
        } else if (strcmp(l, "physical id") == 0) {
            long id = strtol(val, NULL, 10);
            bool seen = false;
            for (size_t i = 0; i < n_phys && !seen; i++)
                seen = phys[i] == id;
            if (!seen) {
                phys = xrealloc(phys, (n_phys + 1) * sizeof *phys);
                phys[n_phys++] = id;
            }
        }
    }
    free(phys);
    if (!procs)
        return error_set(errp, ERR_IO, "no processor entries in '%s'", path);
    if (!f->cpu_flags)
        f->cpu_flags = xcalloc(1, sizeof *f->cpu_flags);
    f->sockets = n_phys ? (unsigned) n_phys : 1;
    f->cores_per_socket = cores ? cores : procs / f->sockets;
    if (!f->cores_per_socket)
        f->cores_per_socket = 1;
    f->threads_per_core = cores && siblings >= cores ? siblings / cores : 1;
    *n_processors = procs;
    return 0;
}

static int collect_cpu(const char *root, struct host_facts *f, struct error **errp)
{
    AUTOFREE char *path = rooted(root, "/proc/cpuinfo");
    AUTOFREE char *text = file_read_all(path, PROC_FILE_MAX, NULL, errp);
    if (!text)
        return -1;
    unsigned procs = 0;
    if (parse_cpuinfo(text, path, f, &procs, errp) < 0)
        return -1;
    AUTOFREE char *opath = rooted(root, "/sys/devices/system/cpu/online");
    AUTOFREE char *online = read_trimmed(opath);
    AUTOFREE unsigned *cpus = NULL;
    size_t n = 0;
    if (online && host_facts_parse_cpulist(online, &cpus, &n, NULL) == 0 && n)
        f->online_cpus = (unsigned) n;
    else
        f->online_cpus = procs;
    return 0;
}

/* ---- memory, huge pages, NUMA, KSM ------------------------------------- */

static int collect_meminfo(const char *root, struct host_facts *f, struct error **errp)
{
    AUTOFREE char *path = rooted(root, "/proc/meminfo");
    AUTOFREE char *text = file_read_all(path, PROC_FILE_MAX, NULL, errp);
    if (!text)
        return -1;
    if (meminfo_get(text, "MemTotal", &f->mem_total) < 0)
        return error_set(errp, ERR_IO, "no MemTotal in '%s'", path);
    meminfo_get(text, "MemFree", &f->mem_free);
    if (meminfo_get(text, "MemAvailable", &f->mem_available) < 0)
        f->mem_available = f->mem_free;
    return 0;
}

static int cmp_hugepages(const void *a, const void *b)
{
    uint64_t x = ((const struct host_hugepages *) a)->page_size;
    uint64_t y = ((const struct host_hugepages *) b)->page_size;
    return x < y ? -1 : x > y;
}

/* Reads the hugepages-<N>kB subdirectories of 'dir' (an absolute path). */
static void collect_hugepages(const char *dir, struct host_hugepages **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long long kb;
        char tail[4];
        if (sscanf(e->d_name, "hugepages-%llukB%3s", &kb, tail) != 1)
            continue;
        struct host_hugepages hp = { .page_size = kb * 1024 };
        AUTOFREE char *nr = xasprintf("%s/%s/nr_hugepages", dir, e->d_name);
        AUTOFREE char *fr = xasprintf("%s/%s/free_hugepages", dir, e->d_name);
        read_u64(nr, &hp.total);
        read_u64(fr, &hp.free);
        *out = xrealloc(*out, (*n_out + 1) * sizeof **out);
        (*out)[(*n_out)++] = hp;
    }
    closedir(d);
    if (*n_out > 1)
        qsort(*out, *n_out, sizeof **out, cmp_hugepages);
}

static int cmp_node(const void *a, const void *b)
{
    unsigned x = ((const struct host_numa_node *) a)->id;
    unsigned y = ((const struct host_numa_node *) b)->id;
    return x < y ? -1 : x > y;
}

static int collect_numa(const char *root, struct host_facts *f, struct error **errp)
{
    AUTOFREE char *base = rooted(root, "/sys/devices/system/node");
    DIR *d = opendir(base);
    if (!d)
        return 0;   /* a kernel without NUMA: no nodes */
    struct dirent *e;
    int ret = 0;
    while ((e = readdir(d))) {
        unsigned id;
        char tail[2];
        if (strncmp(e->d_name, "node", 4) != 0 || !isdigit((unsigned char) e->d_name[4])
            || sscanf(e->d_name + 4, "%u%1s", &id, tail) != 1)
            continue;
        f->numa_nodes = xrealloc(f->numa_nodes, (f->n_numa_nodes + 1) * sizeof *f->numa_nodes);
        struct host_numa_node *node = &f->numa_nodes[f->n_numa_nodes++];
        memset(node, 0, sizeof *node);
        node->id = id;
        AUTOFREE char *cl_path = xasprintf("%s/%s/cpulist", base, e->d_name);
        AUTOFREE char *cl = read_trimmed(cl_path);
        if (cl && host_facts_parse_cpulist(cl, &node->cpus, &node->n_cpus, errp) < 0) {
            error_prefix(errp, "reading '%s'", cl_path);
            ret = -1;
            break;
        }
        AUTOFREE char *mi_path = xasprintf("%s/%s/meminfo", base, e->d_name);
        AUTOFREE char *mi = file_read_all(mi_path, PROC_FILE_MAX, NULL, NULL);
        if (mi) {
            meminfo_get(mi, "MemTotal", &node->mem_total);
            meminfo_get(mi, "MemFree", &node->mem_free);
        }
        AUTOFREE char *hp_dir = xasprintf("%s/%s/hugepages", base, e->d_name);
        collect_hugepages(hp_dir, &node->hugepages, &node->n_hugepages);
    }
    closedir(d);
    if (f->n_numa_nodes > 1)
        qsort(f->numa_nodes, f->n_numa_nodes, sizeof *f->numa_nodes, cmp_node);
    return ret;
}

static const struct {
    const char *file;
    size_t offset;
} ksm_files[] = {
    { "run", offsetof(struct host_ksm, run) },
    { "pages_shared", offsetof(struct host_ksm, pages_shared) },
    { "pages_sharing", offsetof(struct host_ksm, pages_sharing) },
    { "pages_unshared", offsetof(struct host_ksm, pages_unshared) },
    { "pages_volatile", offsetof(struct host_ksm, pages_volatile) },
    { "full_scans", offsetof(struct host_ksm, full_scans) },
    { "pages_to_scan", offsetof(struct host_ksm, pages_to_scan) },
    { "sleep_millisecs", offsetof(struct host_ksm, sleep_millisecs) },
    { "merge_across_nodes", offsetof(struct host_ksm, merge_across_nodes) },
};

static void collect_ksm(const char *root, struct host_ksm *ksm)
{
    AUTOFREE char *dir = rooted(root, "/sys/kernel/mm/ksm");
    DIR *d = opendir(dir);
    ksm->available = d != NULL;
    if (d)
        closedir(d);
    for (size_t i = 0; i < ARRAY_SIZE(ksm_files); i++) {
        long long *field = (long long *) ((char *) ksm + ksm_files[i].offset);
        AUTOFREE char *path = xasprintf("%s/%s", dir, ksm_files[i].file);
        if (!ksm->available || read_ll(path, field) < 0)
            *field = -1;
    }
}

/* ---- QEMU --------------------------------------------------------------- */

int host_facts_parse_qemu_version(const char *text, char **version, unsigned *code,
                                  char **package, struct error **errp)
{
    *version = NULL;
    *package = NULL;
    *code = 0;
    const char *v = strstr(text, "version ");
    unsigned maj = 0, min = 0, mic = 0;
    int consumed = 0;
    if (!v || sscanf(v + 8, "%u.%u%n", &maj, &min, &consumed) != 2)
        return error_set(errp, ERR_QEMU, "no QEMU version in '%.80s'", text);
    const char *p = v + 8 + consumed;
    if (*p == '.') {
        int more = 0;
        if (sscanf(p + 1, "%u%n", &mic, &more) == 1)
            p += 1 + more;
    }
    if (maj > 999 || min > 999 || mic > 999)
        return error_set(errp, ERR_QEMU, "QEMU version out of range in '%.80s'", text);
    *version = xstrndup(v + 8, (size_t) (p - (v + 8)));
    *code = maj * 1000000 + min * 1000 + mic;
    const char *eol = strchr(p, '\n');
    const char *open = strchr(p, '(');
    if (open && (!eol || open < eol)) {
        const char *close = strchr(open, ')');
        if (close && (!eol || close < eol))
            *package = xstrndup(open + 1, (size_t) (close - open - 1));
    }
    return 0;
}

/* Returns a new absolute path for 'name', searched like the command runner. */
static char *find_program(const char *name)
{
    if (strchr(name, '/'))
        return xstrdup(name);
    static const char *const dirs[] = { "/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                        "/usr/bin", "/sbin", "/bin" };
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        char *p = xasprintf("%s/%s", dirs[i], name);
        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

static void collect_qemu(const struct host_facts_opts *opts, struct host_qemu *q)
{
    const char *name = opts->qemu_binary ? opts->qemu_binary : DEFAULT_QEMU;
    q->binary = find_program(name);
    if (!q->binary) {
        q->error = xasprintf("'%s' not found in PATH", name);
        return;
    }
    AUTOERROR struct error *err = NULL;
    AUTOCOMMAND struct command *ver = command_new(q->binary);
    command_add_arg(ver, "--version");
    command_set_timeout(ver, QEMU_RUN_TIMEOUT_MS);
    AUTOFREE char *out = NULL;
    if (command_run(ver, NULL, &out, NULL, &err) < 0
        || host_facts_parse_qemu_version(out, &q->version, &q->version_code, &q->package,
                                         &err) < 0) {
        q->error = xstrdup(err->message);
        return;
    }
    /* A QEMU built with seccomp knows the "sandbox" option group and prints its
     * help; one without it says "-sandbox support is not enabled".  Both exit
     * non-zero, and neither starts a machine. */
    AUTOCOMMAND struct command *sb = command_new(q->binary);
    command_add_args(sb, "-sandbox", "on,help", NULL);
    command_set_timeout(sb, QEMU_RUN_TIMEOUT_MS);
    AUTOFREE char *sb_out = NULL;
    AUTOFREE char *sb_err = NULL;
    int status;
    if (command_run(sb, &status, &sb_out, &sb_err, &err) < 0) {
        q->error = xstrdup(err->message);
        return;
    }
    q->sandbox = strstr(sb_out, "sandbox options") || strstr(sb_err, "sandbox options");
}

/* ---- accelerator -------------------------------------------------------- */

enum accel host_facts_decide_accel(const struct host_accel_inputs *in, char **reason)
{
    const struct kvm_probe_result *p = in->probe;
    if (in->kvm_disabled) {
        *reason = xstrdup("tcg: kvm disabled by configuration");
        return ACCEL_TCG;
    }
    if (!in->virt_flag) {
        *reason = xstrdup("tcg: cpu has no vmx/svm flag");
        return ACCEL_TCG;
    }
    if (in->dev_kvm_error) {
        *reason = xasprintf("tcg: kvm device not usable: %s", in->dev_kvm_error);
        return ACCEL_TCG;
    }
    if (!p || p->status == KVM_PROBE_NOT_RUN) {
        *reason = xstrdup("tcg: kvm probe not run");
        return ACCEL_TCG;
    }
    switch (p->status) {
    case KVM_PROBE_PASSED:
        *reason = xasprintf("kvm: cpu has %s, kvm device usable, probe guest reached long "
                            "mode and took an interrupt in %u ms", in->virt_flag,
                            p->duration_ms);
        return ACCEL_KVM;
    case KVM_PROBE_FAILED:
        *reason = xasprintf("tcg: kvm probe guest failed after stage '%s': %s",
                            kvm_probe_stage_to_string(p->stage), p->detail);
        return ACCEL_TCG;
    case KVM_PROBE_TIMED_OUT:
        *reason = xasprintf("tcg: kvm probe %s (last stage '%s')", p->detail,
                            kvm_probe_stage_to_string(p->stage));
        return ACCEL_TCG;
    case KVM_PROBE_ERROR:
    default:
        *reason = xasprintf("tcg: kvm probe could not run: %s", p->detail);
        return ACCEL_TCG;
    }
}

void host_facts_probe_accel(const struct host_facts_opts *opts, char *const *cpu_flags,
                            struct host_facts_accel *out)
{
    static const struct host_facts_opts defaults;
    if (!opts)
        opts = &defaults;
    memset(out, 0, sizeof *out);
    out->virt_flag = host_facts_has_flag(cpu_flags, "vmx")   ? "vmx"
                     : host_facts_has_flag(cpu_flags, "svm") ? "svm"
                                                             : NULL;
    struct host_accel_inputs in = { .kvm_disabled = opts->kvm_disabled,
                                    .virt_flag = out->virt_flag };
    if (!opts->kvm_disabled && out->virt_flag) {
        AUTOERROR struct error *err = NULL;
        if (kvm_probe_check_dev(opts->dev_kvm, &err) < 0) {
            out->dev_kvm_error = xstrdup(err->message);
            in.dev_kvm_error = out->dev_kvm_error;
        } else {
            kvm_probe_run(opts->dev_kvm, KVM_PROBE_GUEST_STANDARD, opts->kvm_probe_timeout_ms,
                          &out->probe);
            in.probe = &out->probe;
        }
    }
    out->accel = host_facts_decide_accel(&in, &out->reason);
}

void host_facts_accel_clear(struct host_facts_accel *a)
{
    free(a->reason);
    free(a->dev_kvm_error);
    memset(a, 0, sizeof *a);
}

/* ---- collect / free ----------------------------------------------------- */

struct host_facts *host_facts_collect(const struct host_facts_opts *opts, struct error **errp)
{
    static const struct host_facts_opts defaults;
    if (!opts)
        opts = &defaults;
    const char *root = opts->sysroot;
    struct host_facts *f = xzalloc(sizeof *f);
    if (collect_cpu(root, f, errp) < 0 || collect_meminfo(root, f, errp) < 0
        || collect_numa(root, f, errp) < 0) {
        host_facts_free(f);
        return NULL;
    }
    AUTOFREE char *hn = rooted(root, "/proc/sys/kernel/hostname");
    AUTOFREE char *rel = rooted(root, "/proc/sys/kernel/osrelease");
    AUTOFREE char *hp = rooted(root, "/sys/kernel/mm/hugepages");
    f->hostname = read_trimmed(hn);
    f->kernel_release = read_trimmed(rel);
    collect_hugepages(hp, &f->hugepages, &f->n_hugepages);
    collect_ksm(root, &f->ksm);
    if (!opts->skip_qemu)
        collect_qemu(opts, &f->qemu);
    host_facts_probe_accel(opts, f->cpu_flags, &f->accel);
    return f;
}

void host_facts_free(struct host_facts *f)
{
    if (!f)
        return;
    free(f->hostname);
    free(f->kernel_release);
    free(f->cpu_vendor);
    free(f->cpu_model_name);
    strv_free(f->cpu_flags);
    for (size_t i = 0; i < f->n_numa_nodes; i++) {
        free(f->numa_nodes[i].cpus);
        free(f->numa_nodes[i].hugepages);
    }
    free(f->numa_nodes);
    free(f->hugepages);
    free(f->qemu.binary);
    free(f->qemu.version);
    free(f->qemu.package);
    free(f->qemu.error);
    host_facts_accel_clear(&f->accel);
    free(f);
}

void host_facts_to_caps(const struct host_facts *f, struct host_caps *caps)
{
    caps->accel = f->accel.accel;
    caps->qemu_binary = f->qemu.binary;
    caps->qemu_version = f->qemu.version_code;
    caps->sandbox = f->qemu.sandbox;
}

/* ---- JSON --------------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *u64_json(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t) v);
}

static json_t *hugepages_json(const struct host_hugepages *hp, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:o, s:o, s:o}",
                                           "page_size_bytes", u64_json(hp[i].page_size),
                                           "total", u64_json(hp[i].total),
                                           "free", u64_json(hp[i].free)));
    return a;
}

static json_t *numa_json(const struct host_facts *f)
{
    json_t *a = json_array();
    for (size_t i = 0; i < f->n_numa_nodes; i++) {
        const struct host_numa_node *n = &f->numa_nodes[i];
        json_t *cpus = json_array();
        for (size_t c = 0; c < n->n_cpus; c++)
            json_array_append_new(cpus, json_integer(n->cpus[c]));
        json_array_append_new(a, json_pack("{s:I, s:o, s:o, s:o, s:o}",
                                           "id", (json_int_t) n->id, "cpus", cpus,
                                           "memory_total_bytes", u64_json(n->mem_total),
                                           "memory_free_bytes", u64_json(n->mem_free),
                                           "hugepages",
                                           hugepages_json(n->hugepages, n->n_hugepages)));
    }
    return a;
}

static json_t *ksm_json(const struct host_ksm *ksm)
{
    json_t *o = json_object();
    json_object_set_new(o, "available", json_boolean(ksm->available));
    for (size_t i = 0; i < ARRAY_SIZE(ksm_files); i++) {
        long long v = *(const long long *) ((const char *) ksm + ksm_files[i].offset);
        if (v >= 0)
            json_object_set_new(o, ksm_files[i].file, json_integer(v));
    }
    return o;
}

static json_t *qemu_json(const struct host_qemu *q)
{
    json_t *o = json_pack("{s:o, s:o, s:I, s:o, s:b}", "binary", str_or_null(q->binary),
                          "version", str_or_null(q->version),
                          "version_code", (json_int_t) q->version_code,
                          "package", str_or_null(q->package), "sandbox", q->sandbox);
    if (q->error)
        json_object_set_new(o, "error", json_string(q->error));
    return o;
}

static json_t *accel_json(const struct host_facts_accel *a)
{
    json_t *probe = json_pack("{s:s, s:s, s:I}",
                              "status", kvm_probe_status_to_string(a->probe.status),
                              "stage", kvm_probe_stage_to_string(a->probe.stage),
                              "duration_ms", (json_int_t) a->probe.duration_ms);
    if (a->probe.detail[0])
        json_object_set_new(probe, "detail", json_string(a->probe.detail));
    json_t *o = json_pack("{s:s, s:o, s:o, s:o}", "accel", accel_to_string(a->accel),
                          "reason", str_or_null(a->reason),
                          "virt_flag", str_or_null(a->virt_flag), "kvm_probe", probe);
    if (a->dev_kvm_error)
        json_object_set_new(o, "kvm_device_error", json_string(a->dev_kvm_error));
    return o;
}

json_t *host_facts_to_json(const struct host_facts *f)
{
    json_t *flags = json_array();
    for (size_t i = 0; f->cpu_flags && f->cpu_flags[i]; i++)
        json_array_append_new(flags, json_string(f->cpu_flags[i]));
    json_t *cpu = json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:o}",
                            "vendor", str_or_null(f->cpu_vendor),
                            "model_name", str_or_null(f->cpu_model_name),
                            "sockets", (json_int_t) f->sockets,
                            "cores_per_socket", (json_int_t) f->cores_per_socket,
                            "threads_per_core", (json_int_t) f->threads_per_core,
                            "online_cpus", (json_int_t) f->online_cpus, "flags", flags);
    json_t *mem = json_pack("{s:o, s:o, s:o}", "total_bytes", u64_json(f->mem_total),
                            "free_bytes", u64_json(f->mem_free),
                            "available_bytes", u64_json(f->mem_available));
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                     "hostname", str_or_null(f->hostname),
                     "kernel_release", str_or_null(f->kernel_release), "cpu", cpu,
                     "memory", mem, "numa_nodes", numa_json(f),
                     "hugepages", hugepages_json(f->hugepages, f->n_hugepages),
                     "ksm", ksm_json(&f->ksm), "qemu", qemu_json(&f->qemu),
                     "accel", accel_json(&f->accel));
}
