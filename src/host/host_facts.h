/* host_facts.h - what this KVM host is: CPU, NUMA, memory, huge pages, KSM,
 * kernel, QEMU and the accelerator VMs will get.
 *
 * host_facts_collect() reads procfs and sysfs below a configurable root (so
 * tests run against fake trees in tests/data/host/<case>/), runs
 * `qemu-system-x86_64 --version` and `-sandbox on,help` through the command
 * runner, and decides the accelerator with host_facts_probe_accel().  The
 * result is served as GET /v1/host (host_facts_to_json()) and turned into the
 * struct host_caps the argv builder needs (host_facts_to_caps()).
 *
 * Accelerator: KVM only when the CPU flags show vmx or svm AND /dev/kvm is
 * usable AND the probe guest of kvm_probe.c boots to long mode and takes an
 * interrupt; otherwise TCG.  The decision itself is the pure function
 * host_facts_decide_accel(), which also writes the one-line reason
 * ("tcg: cpu has no vmx/svm flag").  Missing optional sources (no NUMA
 * directory, no huge pages, no KSM, no QEMU) leave their fields empty; only an
 * unreadable /proc/cpuinfo or /proc/meminfo fails the collection.
 *
 * All sizes are bytes.  Counts of pages are pages. */
#ifndef STRATA_HOST_FACTS_H
#define STRATA_HOST_FACTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/kvm_probe.h"
#include "model/host_caps.h"
#include "util/error.h"

struct host_facts_opts {
    const char *sysroot;        /* prefix for /proc and /sys; NULL or "" = "/" */
    const char *qemu_binary;    /* name (searched in the runner's PATH) or path;
                                 * NULL = "qemu-system-x86_64" */
    const char *dev_kvm;        /* NULL = "/dev/kvm" */
    int kvm_probe_timeout_ms;   /* <= 0: KVM_PROBE_DEFAULT_TIMEOUT_MS */
    bool kvm_disabled;          /* configuration forces TCG */
    bool skip_qemu;             /* do not run QEMU (qemu fields stay empty) */
};

struct host_hugepages {
    uint64_t page_size;         /* bytes, e.g. 2097152 */
    uint64_t total;             /* nr_hugepages */
    uint64_t free;              /* free_hugepages */
};

struct host_numa_node {
    unsigned id;
    unsigned *cpus;             /* sorted logical CPU numbers */
    size_t n_cpus;
    uint64_t mem_total;         /* bytes, from nodeN/meminfo */
    uint64_t mem_free;
    struct host_hugepages *hugepages;   /* per node, sorted by page size */
    size_t n_hugepages;
};

/* KSM counters from /sys/kernel/mm/ksm; -1 where the file is absent. */
struct host_ksm {
    bool available;             /* the directory exists */
    long long run;              /* 0 stopped, 1 running, 2 unmerge */
    long long pages_shared;
    long long pages_sharing;
    long long pages_unshared;
    long long pages_volatile;
    long long full_scans;
    long long pages_to_scan;
    long long sleep_millisecs;
    long long merge_across_nodes;
};

struct host_qemu {
    char *binary;               /* absolute path, or NULL when not found */
    char *version;              /* "7.2.22", or NULL */
    unsigned version_code;      /* major * 1000000 + minor * 1000 + micro; 0 unknown */
    char *package;              /* "Debian 1:7.2+dfsg-7+deb12u18+b3", or NULL */
    bool sandbox;               /* built with seccomp: -sandbox is accepted */
    char *error;                /* why the facts above are missing, or NULL */
};

struct host_facts_accel {
    enum accel accel;
    char *reason;               /* "tcg: cpu has no vmx/svm flag" */
    const char *virt_flag;      /* "vmx", "svm" or NULL (static string) */
    char *dev_kvm_error;        /* why /dev/kvm is not usable; NULL if usable or unchecked */
    struct kvm_probe_result probe;
};

struct host_facts {
    char *hostname;
    char *kernel_release;

    char *cpu_vendor;           /* "GenuineIntel", "AuthenticAMD" */
    char *cpu_model_name;
    char **cpu_flags;           /* NULL-terminated, kernel order */
    unsigned sockets;
    unsigned cores_per_socket;
    unsigned threads_per_core;
    unsigned online_cpus;       /* logical CPUs online */

    struct host_numa_node *numa_nodes;  /* sorted by id; none on a non-NUMA kernel */
    size_t n_numa_nodes;

    uint64_t mem_total;         /* bytes, /proc/meminfo */
    uint64_t mem_free;
    uint64_t mem_available;

    struct host_hugepages *hugepages;   /* sorted by page size */
    size_t n_hugepages;

    struct host_ksm ksm;
    struct host_qemu qemu;
    struct host_facts_accel accel;
};

/* Returns new facts (caller frees with host_facts_free()), or NULL with an
 * error.  'opts' may be NULL.  Runs QEMU twice and, on a host with vmx/svm,
 * the KVM probe (at most kvm_probe_timeout_ms): call it off the request path. */
struct host_facts *host_facts_collect(const struct host_facts_opts *opts, struct error **errp);
void host_facts_free(struct host_facts *f);   /* Accepts NULL. */

/* Returns a new JSON object for GET /v1/host; the caller owns the reference. */
json_t *host_facts_to_json(const struct host_facts *f);

/* Fills 'caps'.  caps->qemu_binary is borrowed from 'f'; valid while 'f' lives. */
void host_facts_to_caps(const struct host_facts *f, struct host_caps *caps);

/* True if the NULL-terminated 'flags' contain 'flag'. */
bool host_facts_has_flag(char *const *flags, const char *flag);

/* ---- accelerator -------------------------------------------------------- */

struct host_accel_inputs {
    bool kvm_disabled;                      /* configuration forces TCG */
    const char *virt_flag;                  /* "vmx"/"svm" if the CPU has it, else NULL */
    const char *dev_kvm_error;              /* why /dev/kvm is unusable, NULL if usable */
    const struct kvm_probe_result *probe;   /* NULL = not run */
};

/* The decision, pure.  Sets '*reason' to a new one-line string beginning with
 * "kvm: " or "tcg: "; the caller frees it. */
enum accel host_facts_decide_accel(const struct host_accel_inputs *in, char **reason);

/* Gathers the inputs and decides: checks /dev/kvm and runs the probe only when
 * 'cpu_flags' has vmx or svm (and KVM is not disabled).  Fills '*out'; free
 * its members with host_facts_accel_clear().  'opts' may be NULL. */
void host_facts_probe_accel(const struct host_facts_opts *opts, char *const *cpu_flags,
                            struct host_facts_accel *out);
void host_facts_accel_clear(struct host_facts_accel *a);

/* ---- parsers, exposed for tests ----------------------------------------- */

/* Parses a kernel CPU list ("0-3,8-11", "" or "\n" for none) into a new sorted
 * array in '*cpus' (NULL when empty).  Returns 0, or -1 with ERR_INVALID_ARG. */
int host_facts_parse_cpulist(const char *text, unsigned **cpus, size_t *n,
                             struct error **errp);

/* Parses `qemu-system-x86_64 --version` output.  Sets '*version' and
 * '*package' (new strings; '*package' NULL when there is no "(...)") and
 * '*code'.  Returns 0, or -1 with ERR_QEMU when there is no version. */
int host_facts_parse_qemu_version(const char *text, char **version, unsigned *code,
                                  char **package, struct error **errp);

#endif
