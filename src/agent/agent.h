/* agent.h - the node agent's shared context and its VM objects.
 *
 * One 'struct agent' per process, passed explicitly (no globals): the
 * configuration, the host's capabilities, the registry of VMs and the monitor
 * loop that watches their QMP sockets.  Each 'struct vm' is reference counted
 * and carries:
 *   - its definition (replaced only by the job holder),
 *   - its runtime state (written by the monitor loop and by the job holder
 *     under 'vm->lock', which is never held while waiting on QMP, qemu-ga or a
 *     child process),
 *   - a job token: one operation per VM at a time (vm_job_begin/vm_job_end).
 * Locking order and rules: docs/internals/locking.md.
 *
 * Files (reading order): main.c (options, start-up) -> agent.c (registry,
 * persistence, recovery) -> monitor.c (QMP event loop, process reaping) ->
 * lifecycle.c (start, stop, pause, hibernate ...) -> hotplug.c (online changes)
 * -> guest.c (console, stats, guest agent) -> api.c (the HTTP routes). */
#ifndef STRATA_AGENT_H
#define STRATA_AGENT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "host/host_stats.h"
#include "model/host_caps.h"
#include "model/vm_def.h"
#include "util/error.h"

struct qmp_client;
struct http_route;
struct agent;
struct host_facts;
struct agent_jobs;
struct storage;
struct netmgr;
struct monitor;
struct vm_qmp;

enum vm_state {
    VM_STATE_STOPPED,     /* defined, no QEMU */
    VM_STATE_STARTING,
    VM_STATE_RUNNING,
    VM_STATE_PAUSED,
    VM_STATE_SHUTTING_DOWN,
    VM_STATE_SAVING,      /* hibernating: memory going to the save file */
    VM_STATE_SAVED,       /* hibernated: no QEMU, memory in the save file */
    VM_STATE_RESTORING,
    VM_STATE_UNREACHABLE, /* a QEMU runs but its monitor does not answer */
    VM_STATE__COUNT
};
const char *vm_state_to_string(enum vm_state s);
int vm_state_from_string(const char *s);
/* True for the states in which a QEMU process exists. */
bool vm_state_is_active(enum vm_state s);

struct vm {
    int refs;                       /* under agent->lock */
    char *name;                     /* immutable */
    char *dir;                      /* <state_dir>/vms/<name>; immutable */

    pthread_mutex_t qga_lock;       /* one qemu-ga conversation at a time */
    pthread_mutex_t lock;           /* guards everything below */
    pthread_cond_t cond;            /* broadcast on every runtime change */
    struct vm_def *def;
    enum vm_state state;
    pid_t pid;                      /* 0 when no QEMU */
    unsigned long long pid_start;   /* /proc/<pid>/stat start time, ticks */
    bool pid_is_child;              /* spawned by this agent process */
    char **argv;                    /* argv QEMU was started with */
    struct vm_qmp *qmp;             /* live monitor connection (monitor.h), or NULL */
    char *exit_reason;              /* why QEMU last stopped */
    char *shutdown_reason;          /* "reason" of the last SHUTDOWN event */
    bool shutdown_requested;        /* by us: graceful or forced stop */
    bool crashed;                   /* last stop was not asked for (see exit_reason) */
    bool deleted_undefined;         /* undefined: ignore further events */
    unsigned long long mem_plugged_mib;   /* DIMM memory added at run time */
    unsigned dimm_next;             /* next DIMM index */
    long long balloon_actual_mib;   /* from BALLOON_CHANGE, -1 unknown */
    char **deleted_devices;         /* DEVICE_DELETED ids seen, for detach waits */
    bool qmp_closed;                /* monitor gone; process exit pending */
    json_t *hotplug_extra;          /* argv added at run time (restore needs it) */
    char **hotplug_ports;           /* q35 spare port -> device id ("" free) */
    bool saved_was_running;         /* hibernated while running */
    int job_progress;               /* 0..100, -1 when not measurable */
    bool busy;                      /* job token held */
    char *job;                      /* name of the running job */
    long long started_at_ms;        /* wall clock of the last start */
    int vnc_display;                /* loopback VNC display in use, -1 none */
};

struct agent_config {
    char *state_dir;                /* persistent: definitions, runtime records */
    char *run_dir;                  /* sockets, pid files */
    char *unix_socket;              /* API socket */
    char *tls_address;              /* NULL: no TCP listener */
    unsigned short tls_port;
    char *tls_cert, *tls_key, *tls_ca, *tls_crl, *tls_allowed_cn;
    char **image_roots;             /* allowed roots for disks, ISOs, kernels */
    char *qemu_binary;
    char *force_accel;              /* "tcg"/"kvm" to skip the probe, or NULL */
    int shutdown_timeout_s;         /* default for graceful shutdown */
};

struct agent_event {
    unsigned long long seq;
    long long time_ms;
    char *vm;                       /* may be NULL (host events) */
    char *type;                     /* "state-changed", "qemu-event", ... */
    json_t *data;
};

#define AGENT_EVENT_RING 1024
#define AGENT_MAX_ROOTS 64

/* A part of the agent beyond VM lifecycle (jobs, storage, network), plugged
 * in through agent_modules[] (modules.c).  Every callback may be NULL.
 *   pre_recover at start-up, before stored VMs are loaded (e.g. add image
 *               roots their definitions need)
 *   init        at start-up, after VMs are recovered, before the API serves
 *   fini        at shutdown, after the API stopped (guests keep running)
 *   vm_prepare  on a job thread before QEMU is spawned for a start or a
 *               restore (e.g. create a throw-away overlay, plug nothing yet);
 *               failing it fails the start
 *   vm_started  on a job thread once QEMU runs (e.g. plug taps into OVS)
 *   vm_stopped  on the monitor loop once QEMU is gone: must not block
 *               (e.g. unplug ports, drop throw-away overlays)
 *   nic_plug    on a job thread before a NIC is hot-added to a running VM
 *               (its tap does not exist yet); failing it refuses the attach
 *   nic_unplug  on a job thread after a NIC left a running VM, or when an
 *               attach failed after nic_plug */
struct agent_module {
    const char *name;
    const struct http_route *routes;        /* NULL-terminated, or NULL */
    int (*pre_recover)(struct agent *a, struct error **errp);
    int (*init)(struct agent *a, struct error **errp);
    void (*fini)(struct agent *a);
    int (*vm_prepare)(struct agent *a, struct vm *vm, struct error **errp);
    void (*vm_started)(struct agent *a, struct vm *vm);
    void (*vm_stopped)(struct agent *a, struct vm *vm);
    int (*nic_plug)(struct agent *a, struct vm *vm, const struct vm_nic *nic,
                    struct error **errp);
    void (*nic_unplug)(struct agent *a, struct vm *vm, const char *nic_id);
};
/* NULL-terminated; modules.c. */
extern const struct agent_module *const agent_modules[];

struct agent {
    struct agent_config cfg;
    struct host_caps caps;          /* borrows from 'facts' */
    struct host_facts *facts;       /* collected at start-up */

    pthread_mutex_t lock;           /* guards 'vms', 'n_vms' and the event ring */
    pthread_cond_t events_cond;
    struct vm **vms;
    size_t n_vms;
    struct agent_event events[AGENT_EVENT_RING];
    unsigned long long next_event_seq;

    struct monitor *monitor;
    long long started_ms;
    struct agent_jobs *jobs;        /* jobs.c */
    struct storage *storage;        /* storage module state, or NULL */
    struct netmgr *net;             /* network module state, or NULL */
    /* Allowed image roots: the configured ones plus what modules add (e.g.
     * datastore directories).  Append-only, NULL-terminated; readers need no
     * lock. */
    char *roots[AGENT_MAX_ROOTS + 1];
    size_t n_roots;                 /* under 'lock' */
    struct host_stats_sample stats_prev;    /* under 'lock' */
    bool stats_prev_valid;
};

/* agent.c */
struct agent *agent_new(const struct agent_config *cfg, struct error **errp);
void agent_free(struct agent *a);
/* Loads every stored VM and reattaches to running QEMUs. */
int agent_recover(struct agent *a, struct error **errp);
void agent_vm_limits(const struct agent *a, struct vm_def_limits *out);
/* Adds an allowed image root (a clean absolute directory); no-op if present. */
int agent_add_image_root(struct agent *a, const char *dir, struct error **errp);
/* Runs a hook of every module. */
int agent_modules_vm_prepare(struct agent *a, struct vm *vm, struct error **errp);
void agent_modules_vm_started(struct agent *a, struct vm *vm);
void agent_modules_vm_stopped(struct agent *a, struct vm *vm);

/* Returns a new reference or NULL (ERR_NOT_FOUND naming the VM). */
struct vm *agent_vm_get(struct agent *a, const char *name, struct error **errp);
void vm_ref(struct agent *a, struct vm *vm);
void vm_unref(struct agent *a, struct vm *vm);
/* Returns new references to every VM; '*n' set; free with agent_vm_list_free. */
struct vm **agent_vm_list(struct agent *a, size_t *n);
void agent_vm_list_free(struct agent *a, struct vm **list, size_t n);

/* Defines a new VM from a parsed definition.  Takes ownership of 'def'. */
struct vm *agent_vm_define(struct agent *a, struct vm_def *def, struct error **errp);
/* Removes a stopped VM and its files. */
int agent_vm_undefine(struct agent *a, const char *name, struct error **errp);

/* Persists the VM's runtime record (state, pid, argv, reasons).  Call with
 * vm->lock held. */
int vm_save_runtime_locked(struct vm *vm, struct error **errp);
int vm_save_def(struct vm *vm, struct error **errp);
/* Sets the state (vm->lock held), persists, broadcasts and records an event. */
void vm_set_state_locked(struct agent *a, struct vm *vm, enum vm_state s, const char *why);

/* Job token: waits up to 'wait_ms' for the VM to be free. */
int vm_job_begin(struct vm *vm, const char *job, int wait_ms, struct error **errp);
void vm_job_end(struct vm *vm);

/* Paths inside the VM's run/state directories; new strings. */
char *vm_path(const struct agent *a, const struct vm *vm, const char *file);

/* Events: appended to a ring; readers long-poll with agent_events_since(). */
void agent_event(struct agent *a, const char *vm, const char *type, json_t *data);
json_t *agent_events_since(struct agent *a, unsigned long long since, int wait_ms);

/* VM summary for the API (state, pid, reasons, definition when 'full'). */
json_t *vm_to_json(struct vm *vm, bool full);

long long now_ms(void);       /* CLOCK_MONOTONIC */
long long wall_ms(void);      /* CLOCK_REALTIME */

#endif
