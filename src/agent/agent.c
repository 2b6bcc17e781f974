/* agent.c - the agent's VM registry, its on-disk records and recovery.
 *
 * Every VM the agent knows has a directory <state_dir>/vms/<name>/ holding
 *   def.json      the definition (canonical JSON, written atomically),
 *   runtime.json  state, QEMU PID and start time, the argv QEMU was started
 *                 with, the last exit reason, run-time additions (DIMMs,
 *                 hot-plugged devices) and the hibernation record,
 *   qemu.log      QEMU's stdout/stderr,  console.log  the serial console,
 *   save.img      the memory image of a hibernated VM.
 * Sockets live in <run_dir>/<name>/.  Because everything needed to find a
 * QEMU again is on disk, `kill -9` of the agent loses nothing: on start,
 * agent_recover() reloads each VM and reattaches to its QEMU when the PID is
 * alive, has the recorded start time and runs the recorded command line.
 *
 * Neighbours: monitor.c runs the QMP loop, lifecycle.c changes states,
 * api.c serves all of it. */
#define LOG_MODULE "agent"
#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/monitor.h"
#include "host/host_facts.h"
#include "host/proc.h"
#include "qmp/qmp.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

static const char *const vm_state_names[VM_STATE__COUNT] = {
    [VM_STATE_STOPPED] = "stopped",
    [VM_STATE_STARTING] = "starting",
    [VM_STATE_RUNNING] = "running",
    [VM_STATE_PAUSED] = "paused",
    [VM_STATE_SHUTTING_DOWN] = "shutting-down",
    [VM_STATE_SAVING] = "saving",
    [VM_STATE_SAVED] = "saved",
    [VM_STATE_RESTORING] = "restoring",
    [VM_STATE_UNREACHABLE] = "unreachable",
};

const char *vm_state_to_string(enum vm_state s)
{
    return (unsigned) s < VM_STATE__COUNT ? vm_state_names[s] : "unknown";
}

int vm_state_from_string(const char *s)
{
    for (int i = 0; s && i < VM_STATE__COUNT; i++)
        if (!strcmp(vm_state_names[i], s))
            return i;
    return -1;
}

bool vm_state_is_active(enum vm_state s)
{
    return s == VM_STATE_STARTING || s == VM_STATE_RUNNING || s == VM_STATE_PAUSED
        || s == VM_STATE_SHUTTING_DOWN || s == VM_STATE_SAVING || s == VM_STATE_RESTORING
        || s == VM_STATE_UNREACHABLE;
}

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

char *vm_path(const struct agent *a, const struct vm *vm, const char *file)
{
    if (!strcmp(file, "qmp.sock") || !strcmp(file, "qga.sock") || !strcmp(file, "serial.sock")
        || !strcmp(file, "vnc.sock") || !strcmp(file, "qemu.pid"))
        return xasprintf("%s/%s/%s", a->cfg.run_dir, vm->name, file);
    return xasprintf("%s/%s", vm->dir, file);
}

void agent_vm_limits(const struct agent *a, struct vm_def_limits *out)
{
    memset(out, 0, sizeof *out);
    out->allowed_roots = (const char *const *) a->roots;
}

int agent_add_image_root(struct agent *a, const char *dir, struct error **errp)
{
    if (!path_is_clean(dir))
        return error_set_field(errp, ERR_INVALID_ARG, "path",
                               "image root '%s' must be a clean absolute path", dir);
    pthread_mutex_lock(&a->lock);
    int ret = 0;
    bool present = false;
    for (size_t i = 0; i < a->n_roots; i++)
        if (!strcmp(a->roots[i], dir))
            present = true;
    if (!present) {
        if (a->n_roots >= AGENT_MAX_ROOTS)
            ret = error_set(errp, ERR_NO_SPACE, "too many image roots (%d)", AGENT_MAX_ROOTS);
        else
            __atomic_store_n(&a->roots[a->n_roots++], xstrdup(dir), __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&a->lock);
    return ret;
}

int agent_modules_vm_prepare(struct agent *a, struct vm *vm, struct error **errp)
{
    for (const struct agent_module *const *m = agent_modules; *m; m++)
        if ((*m)->vm_prepare && (*m)->vm_prepare(a, vm, errp) < 0) {
            error_prefix(errp, "%s", (*m)->name);
            return -1;
        }
    return 0;
}

void agent_modules_vm_started(struct agent *a, struct vm *vm)
{
    for (const struct agent_module *const *m = agent_modules; *m; m++)
        if ((*m)->vm_started)
            (*m)->vm_started(a, vm);
}

void agent_modules_vm_stopped(struct agent *a, struct vm *vm)
{
    for (const struct agent_module *const *m = agent_modules; *m; m++)
        if ((*m)->vm_stopped)
            (*m)->vm_stopped(a, vm);
}

/* ---- VM objects ------------------------------------------------------- */

static struct vm *vm_new(struct agent *a, struct vm_def *def)
{
    struct vm *vm = xzalloc(sizeof *vm);
    vm->refs = 1;
    vm->name = xstrdup(def->name);
    vm->dir = xasprintf("%s/vms/%s", a->cfg.state_dir, def->name);
    pthread_mutex_init(&vm->lock, NULL);
    pthread_mutex_init(&vm->qga_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&vm->cond, &ca);
    pthread_condattr_destroy(&ca);
    vm->def = def;
    vm->state = VM_STATE_STOPPED;
    vm->balloon_actual_mib = -1;
    vm->vnc_display = -1;
    vm->job_progress = -1;
    vm->hotplug_extra = json_array();
    return vm;
}

static void vm_free(struct vm *vm)
{
    vm_def_free(vm->def);
    strv_free(vm->argv);
    strv_free(vm->deleted_devices);
    strv_free(vm->hotplug_ports);
    json_decref(vm->hotplug_extra);
    free(vm->exit_reason);
    free(vm->shutdown_reason);
    free(vm->job);
    vm_qmp_unref(vm->qmp);
    pthread_mutex_destroy(&vm->lock);
    pthread_mutex_destroy(&vm->qga_lock);
    pthread_cond_destroy(&vm->cond);
    free(vm->name);
    free(vm->dir);
    free(vm);
}

void vm_ref(struct agent *a, struct vm *vm)
{
    pthread_mutex_lock(&a->lock);
    vm->refs++;
    pthread_mutex_unlock(&a->lock);
}

void vm_unref(struct agent *a, struct vm *vm)
{
    if (!vm)
        return;
    pthread_mutex_lock(&a->lock);
    bool last = --vm->refs == 0;
    pthread_mutex_unlock(&a->lock);
    if (last)
        vm_free(vm);
}

struct vm *agent_vm_get(struct agent *a, const char *name, struct error **errp)
{
    struct vm *found = NULL;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n_vms; i++)
        if (!strcmp(a->vms[i]->name, name)) {
            found = a->vms[i];
            found->refs++;
            break;
        }
    pthread_mutex_unlock(&a->lock);
    if (!found)
        error_set_field(errp, ERR_NOT_FOUND, "name", "VM '%s' not found", name);
    return found;
}

struct vm **agent_vm_list(struct agent *a, size_t *n)
{
    pthread_mutex_lock(&a->lock);
    struct vm **list = xcalloc(a->n_vms + 1, sizeof *list);
    for (size_t i = 0; i < a->n_vms; i++) {
        list[i] = a->vms[i];
        list[i]->refs++;
    }
    *n = a->n_vms;
    pthread_mutex_unlock(&a->lock);
    return list;
}

void agent_vm_list_free(struct agent *a, struct vm **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vm_unref(a, list[i]);
    free(list);
}

static void registry_add(struct agent *a, struct vm *vm)
{
    a->vms = xrealloc(a->vms, (a->n_vms + 1) * sizeof *a->vms);
    a->vms[a->n_vms++] = vm;
}

/* ---- persistence ------------------------------------------------------- */

int vm_save_def(struct vm *vm, struct error **errp)
{
    AUTOJSON json_t *j = vm_def_to_json(vm->def);
    AUTOFREE char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    AUTOFREE char *path = xasprintf("%s/def.json", vm->dir);
    return file_write_atomic(path, text, strlen(text), 0600, errp);
}

static json_t *strv_to_json(char *const *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(arr, json_string(v[i]));
    return arr;
}

static char **strv_from_json(const json_t *arr)
{
    if (!json_is_array(arr))
        return NULL;
    size_t n = json_array_size(arr);
    char **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        v[i] = xstrdup(s ? s : "");
    }
    return v;
}

int vm_save_runtime_locked(struct vm *vm, struct error **errp)
{
    AUTOJSON json_t *j = json_pack("{s:s, s:I, s:I, s:b, s:o, s:I, s:i, s:O, s:b, s:I}",
                                   "state", vm_state_to_string(vm->state),
                                   "pid", (json_int_t) vm->pid,
                                   "pid_start", (json_int_t) vm->pid_start,
                                   "pid_is_child", vm->pid_is_child,
                                   "argv", strv_to_json(vm->argv),
                                   "mem_plugged_mib", (json_int_t) vm->mem_plugged_mib,
                                   "dimm_next", (int) vm->dimm_next,
                                   "hotplug_extra", vm->hotplug_extra,
                                   "saved_was_running", vm->saved_was_running,
                                   "started_at_ms", (json_int_t) vm->started_at_ms);
    if (vm->exit_reason)
        json_object_set_new(j, "exit_reason", json_string(vm->exit_reason));
    if (vm->shutdown_reason)
        json_object_set_new(j, "shutdown_reason", json_string(vm->shutdown_reason));
    json_object_set_new(j, "crashed", json_boolean(vm->crashed));
    if (vm->hotplug_ports)
        json_object_set_new(j, "hotplug_ports", strv_to_json(vm->hotplug_ports));
    AUTOFREE char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    AUTOFREE char *path = xasprintf("%s/runtime.json", vm->dir);
    /* Atomic but not fsync'd: it must survive the agent's death (the page
     * cache does), not the host's, whose crash ends the QEMU it describes. */
    return file_write_replace(path, text, strlen(text), 0600, errp);
}

void vm_set_state_locked(struct agent *a, struct vm *vm, enum vm_state s, const char *why)
{
    enum vm_state old = vm->state;
    vm->state = s;
    AUTOERROR struct error *err = NULL;
    if (!vm->deleted_undefined && vm_save_runtime_locked(vm, &err) < 0)
        LOG_ERROR("VM '%s': cannot record state '%s': %s", vm->name, vm_state_to_string(s),
                  err->message);
    pthread_cond_broadcast(&vm->cond);
    if (old != s) {
        LOG_INFO("VM '%s': %s -> %s%s%s", vm->name, vm_state_to_string(old),
                 vm_state_to_string(s), why ? ": " : "", why ? why : "");
        json_t *d = json_pack("{s:s, s:s}", "from", vm_state_to_string(old), "to",
                              vm_state_to_string(s));
        if (why)
            json_object_set_new(d, "reason", json_string(why));
        agent_event(a, vm->name, "state-changed", d);
    }
}

/* ---- job token ---------------------------------------------------------- */

int vm_job_begin(struct vm *vm, const char *job, int wait_ms, struct error **errp)
{
    pthread_mutex_lock(&vm->lock);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long) (wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (vm->busy) {
        if (pthread_cond_timedwait(&vm->cond, &vm->lock, &dl) == ETIMEDOUT && vm->busy) {
            int r = error_set(errp, ERR_BAD_STATE, "VM '%s' is busy with job '%s'", vm->name,
                              vm->job ? vm->job : "?");
            pthread_mutex_unlock(&vm->lock);
            return r;
        }
    }
    if (vm->deleted_undefined) {
        pthread_mutex_unlock(&vm->lock);
        return error_set(errp, ERR_NOT_FOUND, "VM '%s' not found", vm->name);
    }
    vm->busy = true;
    free(vm->job);
    vm->job = xstrdup(job);
    vm->job_progress = -1;
    pthread_mutex_unlock(&vm->lock);
    return 0;
}

void vm_job_end(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->busy = false;
    free(vm->job);
    vm->job = NULL;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
}

/* ---- events ------------------------------------------------------------- */

void agent_event(struct agent *a, const char *vm, const char *type, json_t *data)
{
    pthread_mutex_lock(&a->lock);
    struct agent_event *e = &a->events[a->next_event_seq % AGENT_EVENT_RING];
    free(e->vm);
    free(e->type);
    json_decref(e->data);
    e->seq = a->next_event_seq++;
    e->time_ms = wall_ms();
    e->vm = xstrdup(vm);
    e->type = xstrdup(type);
    e->data = data ? data : json_object();
    pthread_cond_broadcast(&a->events_cond);
    pthread_mutex_unlock(&a->lock);
}

json_t *agent_events_since(struct agent *a, unsigned long long since, int wait_ms)
{
    pthread_mutex_lock(&a->lock);
    if (wait_ms > 0 && since >= a->next_event_seq) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += wait_ms / 1000;
        dl.tv_nsec += (long) (wait_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        while (since >= a->next_event_seq)
            if (pthread_cond_timedwait(&a->events_cond, &a->lock, &dl) == ETIMEDOUT)
                break;
    }
    unsigned long long first = a->next_event_seq > AGENT_EVENT_RING
                                   ? a->next_event_seq - AGENT_EVENT_RING : 0;
    if (since < first)
        since = first;
    json_t *arr = json_array();
    for (unsigned long long s = since; s < a->next_event_seq; s++) {
        struct agent_event *e = &a->events[s % AGENT_EVENT_RING];
        json_t *o = json_pack("{s:I, s:I, s:s, s:O}", "seq", (json_int_t) e->seq, "time_ms",
                              (json_int_t) e->time_ms, "type", e->type, "data", e->data);
        if (e->vm)
            json_object_set_new(o, "vm", json_string(e->vm));
        json_array_append_new(arr, o);
    }
    json_t *res = json_pack("{s:o, s:I, s:I}", "events", arr, "next",
                            (json_int_t) a->next_event_seq, "first", (json_int_t) first);
    pthread_mutex_unlock(&a->lock);
    return res;
}

/* ---- define / undefine ------------------------------------------------- */

struct vm *agent_vm_define(struct agent *a, struct vm_def *def, struct error **errp)
{
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n_vms; i++) {
        if (!strcmp(a->vms[i]->name, def->name)) {
            pthread_mutex_unlock(&a->lock);
            error_set_field(errp, ERR_CONFLICT, "name", "VM '%s' already exists", def->name);
            vm_def_free(def);
            return NULL;
        }
        if (!strcmp(a->vms[i]->def->uuid, def->uuid)) {
            pthread_mutex_unlock(&a->lock);
            error_set_field(errp, ERR_CONFLICT, "uuid", "UUID '%s' is already used by VM '%s'",
                            def->uuid, a->vms[i]->name);
            vm_def_free(def);
            return NULL;
        }
    }
    struct vm *vm = vm_new(a, def);
    /* Write the record before the VM becomes visible: a failure leaves nothing. */
    if (mkdir_p(vm->dir, 0700, errp) < 0 || vm_save_def(vm, errp) < 0
        || vm_save_runtime_locked(vm, errp) < 0) {
        pthread_mutex_unlock(&a->lock);
        rm_rf(vm->dir, NULL);
        vm_free(vm);
        return NULL;
    }
    registry_add(a, vm);
    vm->refs++;
    pthread_mutex_unlock(&a->lock);
    agent_event(a, vm->name, "defined", json_pack("{s:s}", "uuid", vm->def->uuid));
    LOG_INFO("VM '%s' defined (uuid %s)", vm->name, vm->def->uuid);
    return vm;
}

int agent_vm_undefine(struct agent *a, const char *name, struct error **errp)
{
    struct vm *vm = agent_vm_get(a, name, errp);
    if (!vm)
        return -1;
    int ret = -1;
    if (vm_job_begin(vm, "undefine", 5000, errp) < 0)
        goto out;
    pthread_mutex_lock(&vm->lock);
    if (vm_state_is_active(vm->state)) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is %s: stop it before undefining it", name,
                  vm_state_to_string(vm->state));
        pthread_mutex_unlock(&vm->lock);
        vm_job_end(vm);
        goto out;
    }
    vm->deleted_undefined = true;
    pthread_mutex_unlock(&vm->lock);

    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n_vms; i++)
        if (a->vms[i] == vm) {
            memmove(a->vms + i, a->vms + i + 1, (a->n_vms - i - 1) * sizeof *a->vms);
            a->n_vms--;
            vm->refs--;   /* the registry's reference */
            break;
        }
    pthread_mutex_unlock(&a->lock);
    char *rundir = xasprintf("%s/%s", a->cfg.run_dir, vm->name);
    rm_rf(rundir, NULL);
    free(rundir);
    ret = rm_rf(vm->dir, errp);
    vm_job_end(vm);
    agent_event(a, name, "undefined", NULL);
    LOG_INFO("VM '%s' undefined", name);
out:
    vm_unref(a, vm);
    return ret;
}

/* ---- JSON view ---------------------------------------------------------- */

json_t *vm_to_json(struct vm *vm, bool full)
{
    pthread_mutex_lock(&vm->lock);
    json_t *j = json_pack("{s:s, s:s, s:s}", "name", vm->name, "uuid", vm->def->uuid, "state",
                          vm_state_to_string(vm->state));
    json_object_set_new(j, "pid", vm->pid ? json_integer(vm->pid) : json_null());
    json_object_set_new(j, "vcpus", json_integer(vm->def->vcpus));
    json_object_set_new(j, "memory_mib", json_integer((json_int_t) vm->def->mem_mib));
    json_object_set_new(j, "exit_reason", vm->exit_reason ? json_string(vm->exit_reason)
                                                          : json_null());
    json_object_set_new(j, "crashed", json_boolean(vm->crashed));
    if (vm->busy)
        json_object_set_new(j, "job", json_pack("{s:s, s:i}", "name", vm->job ? vm->job : "",
                                                "progress", vm->job_progress));
    if (full) {
        json_object_set_new(j, "definition", vm_def_to_json(vm->def));
        if (vm->balloon_actual_mib >= 0)
            json_object_set_new(j, "balloon_actual_mib", json_integer(vm->balloon_actual_mib));
        json_object_set_new(j, "started_at_ms", json_integer(vm->started_at_ms));
    }
    pthread_mutex_unlock(&vm->lock);
    return j;
}

/* ---- start-up and recovery ---------------------------------------------- */

struct agent *agent_new(const struct agent_config *cfg, struct error **errp)
{
    struct agent *a = xzalloc(sizeof *a);
    a->cfg = *cfg;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->events_cond, NULL);
    a->started_ms = now_ms();
    for (size_t i = 0; cfg->image_roots && cfg->image_roots[i]; i++)
        if (agent_add_image_root(a, cfg->image_roots[i], errp) < 0) {
            free(a);
            return NULL;
        }
    AUTOFREE char *vmsdir = xasprintf("%s/vms", cfg->state_dir);
    if (mkdir_p(vmsdir, 0700, errp) < 0 || mkdir_p(cfg->run_dir, 0700, errp) < 0) {
        free(a);
        return NULL;
    }
    return a;
}

void agent_free(struct agent *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_vms; i++)
        vm_unref(a, a->vms[i]);
    free(a->vms);
    for (size_t i = 0; i < AGENT_EVENT_RING; i++) {
        free(a->events[i].vm);
        free(a->events[i].type);
        json_decref(a->events[i].data);
    }
    host_facts_free(a->facts);
    for (size_t i = 0; i < a->n_roots; i++)
        free(a->roots[i]);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->events_cond);
    free(a);
}

/* Last non-empty line of qemu.log, e.g. "terminating on signal 9 from pid ...". */
static char *qemu_log_tail(struct agent *a, struct vm *vm)
{
    AUTOFREE char *path = vm_path(a, vm, "qemu.log");
    AUTOFREE char *text = file_read_all(path, 1 << 20, NULL, NULL);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    char *nl = strrchr(text, '\n');
    return n ? xstrdup(nl ? nl + 1 : text) : NULL;
}

/* True if 'pid' is the QEMU we started: same start time and command line. */
static bool pid_matches(pid_t pid, unsigned long long start, char *const *argv)
{
    struct proc_stat st;
    if (pid <= 0 || proc_read_stat(pid, &st, NULL) < 0 || st.start_ticks != start)
        return false;
    AUTOSTRV char **cmd = proc_read_cmdline(pid, NULL);
    if (!cmd || strv_len(cmd) != strv_len(argv))
        return false;
    for (size_t i = 0; argv[i]; i++)
        if (strcmp(cmd[i], argv[i]))
            return false;
    return true;
}

static void recover_vm(struct agent *a, struct vm *vm, const json_t *rt)
{
    int st = vm_state_from_string(json_string_value(json_object_get(rt, "state")));
    pid_t pid = (pid_t) json_integer_value(json_object_get(rt, "pid"));
    unsigned long long start = (unsigned long long) json_integer_value(json_object_get(rt, "pid_start"));
    vm->argv = strv_from_json(json_object_get(rt, "argv"));
    vm->exit_reason = xstrdup(json_string_value(json_object_get(rt, "exit_reason")));
    vm->shutdown_reason = xstrdup(json_string_value(json_object_get(rt, "shutdown_reason")));
    vm->mem_plugged_mib = (unsigned long long) json_integer_value(json_object_get(rt, "mem_plugged_mib"));
    vm->dimm_next = (unsigned) json_integer_value(json_object_get(rt, "dimm_next"));
    vm->saved_was_running = json_is_true(json_object_get(rt, "saved_was_running"));
    vm->crashed = json_is_true(json_object_get(rt, "crashed"));
    vm->started_at_ms = json_integer_value(json_object_get(rt, "started_at_ms"));
    json_t *extra = json_object_get(rt, "hotplug_extra");
    if (json_is_array(extra)) {
        json_decref(vm->hotplug_extra);
        vm->hotplug_extra = json_incref(extra);
    }
    vm->hotplug_ports = strv_from_json(json_object_get(rt, "hotplug_ports"));

    if (st < 0 || !vm_state_is_active((enum vm_state) st)) {
        vm->state = st < 0 ? VM_STATE_STOPPED : (enum vm_state) st;
        return;
    }
    if (vm->argv && pid_matches(pid, start, vm->argv)) {
        AUTOERROR struct error *err = NULL;
        AUTOFREE char *qmp_path = vm_path(a, vm, "qmp.sock");
        struct qmp_client *c = qmp_client_connect(qmp_path, 2000, &err);
        if (c) {
            vm->pid = pid;
            vm->pid_start = start;
            vm->pid_is_child = false;
            /* Provisional; the monitor loop corrects it from query-status. */
            vm->state = st == VM_STATE_PAUSED ? VM_STATE_PAUSED : VM_STATE_RUNNING;
            monitor_attach(a->monitor, vm, c);
            LOG_INFO("VM '%s': reattached to QEMU pid %d", vm->name, (int) pid);
            pthread_mutex_lock(&vm->lock);
            vm_save_runtime_locked(vm, NULL);
            pthread_mutex_unlock(&vm->lock);
            agent_event(a, vm->name, "reattached", json_pack("{s:i}", "pid", (int) pid));
            return;
        }
        LOG_ERROR("VM '%s': QEMU pid %d is alive but its monitor does not answer: %s",
                  vm->name, (int) pid, err->message);
        free(vm->exit_reason);
        vm->exit_reason = xasprintf("monitor unreachable after agent restart: %s", err->message);
        vm->state = VM_STATE_UNREACHABLE;
        vm->pid = pid;   /* still shown so an administrator can act on it */
        return;
    }
    AUTOFREE char *tail = qemu_log_tail(a, vm);
    free(vm->exit_reason);
    vm->exit_reason = tail ? xasprintf("QEMU exited while the agent was down (last log line: %s)",
                                       tail)
                           : xstrdup("QEMU exited while the agent was down");
    vm->state = VM_STATE_STOPPED;
    vm->crashed = !vm->shutdown_reason && st != VM_STATE_SHUTTING_DOWN && st != VM_STATE_SAVING;
    vm->pid = 0;
    LOG_WARN("VM '%s': %s", vm->name, vm->exit_reason);
    pthread_mutex_lock(&vm->lock);
    vm_save_runtime_locked(vm, NULL);
    pthread_mutex_unlock(&vm->lock);
    agent_event(a, vm->name, "exited-while-down",
                json_pack("{s:s}", "exit_reason", vm->exit_reason));
}

int agent_recover(struct agent *a, struct error **errp)
{
    AUTOFREE char *vmsdir = xasprintf("%s/vms", a->cfg.state_dir);
    DIR *d = opendir(vmsdir);
    if (!d)
        return error_set_errno(errp, ERR_IO, errno, "cannot list '%s'", vmsdir);
    struct vm_def_limits limits;
    agent_vm_limits(a, &limits);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        AUTOFREE char *defpath = xasprintf("%s/%s/def.json", vmsdir, de->d_name);
        AUTOFREE char *rtpath = xasprintf("%s/%s/runtime.json", vmsdir, de->d_name);
        AUTOERROR struct error *err = NULL;
        AUTOFREE char *text = file_read_all(defpath, 1 << 20, NULL, &err);
        AUTOJSON json_t *j = text ? json_from_string(text, strlen(text), &err) : NULL;
        struct vm_def *def = j ? vm_def_from_json(j, &limits, &err) : NULL;
        if (!def) {
            LOG_ERROR("skipping stored VM '%s': %s", de->d_name, err->message);
            continue;
        }
        if (strcmp(def->name, de->d_name)) {
            LOG_ERROR("skipping stored VM '%s': its definition names '%s'", de->d_name,
                      def->name);
            vm_def_free(def);
            continue;
        }
        struct vm *vm = vm_new(a, def);
        AUTOFREE char *rtext = file_read_all(rtpath, 4 << 20, NULL, NULL);
        AUTOJSON json_t *rt = rtext ? json_loads(rtext, 0, NULL) : NULL;
        pthread_mutex_lock(&a->lock);
        registry_add(a, vm);
        pthread_mutex_unlock(&a->lock);
        if (rt)
            recover_vm(a, vm, rt);
    }
    closedir(d);
    LOG_INFO("recovered %zu VM(s)", a->n_vms);
    return 0;
}
