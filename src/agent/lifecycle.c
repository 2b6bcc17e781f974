/* lifecycle.c - start, stop, reboot, pause, hibernate and restore VMs.
 *
 * Start: build the argv (qemu/qemu_argv.c), spawn QEMU paused (-S) in its own
 * session so it outlives the agent, record PID + start time + argv on disk,
 * connect QMP, hand the connection to the monitor loop, then `cont`.
 * Stop: graceful through the ACPI power button (system_powerdown) or the guest
 * agent (guest-shutdown), forced after a timeout; force is QMP `quit`, then
 * SIGTERM, then SIGKILL.  The monitor loop notices the exit and sets the final
 * state; these functions wait for it on vm->cond.
 * Hibernate: pause, open the save file ourselves, pass its descriptor with
 * getfd, `migrate fd:`, wait for completion, quit.  Restore: start QEMU with
 * the same argv plus run-time additions and `-incoming fd:N`.  No `exec:`
 * migration: that runs a shell. */
#define LOG_MODULE "lifecycle"
#include "agent/lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/guest.h"
#include "agent/monitor.h"
#include "host/proc.h"
#include "qemu/qemu_argv.h"
#include "qmp/qmp.h"
#include "util/command.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define QMP_TIMEOUT_MS 10000
#define START_TIMEOUT_MS 15000
#define SAVE_FD_NAME "strata-save"

static void taps_up(struct vm *vm);

int shutdown_mode_from_string(const char *s)
{
    if (!s || !strcmp(s, "auto"))
        return SHUTDOWN_AUTO;
    if (!strcmp(s, "acpi"))
        return SHUTDOWN_ACPI;
    if (!strcmp(s, "agent"))
        return SHUTDOWN_AGENT;
    return -1;
}

json_t *vm_qmp_call(struct vm *vm, const char *command, json_t *args, int timeout_ms,
                    struct error **errp)
{
    AUTOVMQMP struct vm_qmp *q = vm_qmp_acquire(vm, errp);
    if (!q) {
        json_decref(args);
        return NULL;
    }
    json_t *ret = qmp_client_call(q->client, command, args, timeout_ms, errp);
    if (!ret)
        error_prefix(errp, "VM '%s': %s", vm->name, command);
    return ret;
}

static bool pred_inactive(struct vm *vm, void *arg)
{
    (void) arg;
    return !vm_state_is_active(vm->state) || (vm->state == VM_STATE_SAVING && vm->pid == 0);
}

static bool pred_no_pid(struct vm *vm, void *arg)
{
    (void) arg;
    return vm->pid == 0;
}

/* Waits until the monitor has seen QEMU exit; true if it did in time. */
static bool wait_exit(struct vm *vm, int timeout_ms)
{
    pthread_mutex_lock(&vm->lock);
    bool ok = vm_wait_locked(vm, pred_no_pid, NULL, timeout_ms);
    pthread_mutex_unlock(&vm->lock);
    return ok;
}

static enum vm_state get_state(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    enum vm_state s = vm->state;
    pthread_mutex_unlock(&vm->lock);
    return s;
}

/* Kills the VM's QEMU (verified PID) with 'sig'. */
static void kill_qemu(struct vm *vm, int sig)
{
    pthread_mutex_lock(&vm->lock);
    pid_t pid = vm->pid;
    unsigned long long start = vm->pid_start;
    pthread_mutex_unlock(&vm->lock);
    struct proc_stat st;
    if (pid > 0 && proc_read_stat(pid, &st, NULL) == 0 && st.start_ticks == start)
        kill(pid, sig);
}

/* Stops QEMU for good: quit, SIGTERM, SIGKILL.  The job token is held. */
static int force_stop(struct vm *vm, struct error **errp)
{
    pthread_mutex_lock(&vm->lock);
    vm->shutdown_requested = true;
    pthread_mutex_unlock(&vm->lock);
    json_t *r = vm_qmp_call(vm, "quit", NULL, 3000, NULL);
    json_decref(r);
    if (wait_exit(vm, 5000))
        return 0;
    kill_qemu(vm, SIGTERM);
    if (wait_exit(vm, 5000))
        return 0;
    kill_qemu(vm, SIGKILL);
    if (wait_exit(vm, 5000))
        return 0;
    return error_set(errp, ERR_TIMEOUT, "QEMU of VM '%s' did not exit after SIGKILL", vm->name);
}

static void unlink_sockets(struct agent *a, struct vm *vm)
{
    static const char *const socks[] = { "qmp.sock", "qga.sock", "serial.sock", "vnc.sock" };
    for (size_t i = 0; i < ARRAY_SIZE(socks); i++) {
        AUTOFREE char *p = vm_path(a, vm, socks[i]);
        unlink(p);
    }
}

static bool tcp_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *) &sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Picks a loopback VNC display whose port (5900+N) and websocket port
 * (5700+N) are free and that no other VM of this agent holds. */
static int pick_vnc_display(struct agent *a, struct vm *self)
{
    size_t n;
    struct vm **vms = agent_vm_list(a, &n);
    int found = -1;
    for (int d = 0; d < 100 && found < 0; d++) {
        bool taken = false;
        for (size_t i = 0; i < n; i++)
            if (vms[i] != self && vms[i]->vnc_display == d && vm_state_is_active(vms[i]->state))
                taken = true;
        if (!taken && tcp_port_free(5900 + d) && tcp_port_free(5700 + d))
            found = d;
    }
    agent_vm_list_free(a, vms, n);
    return found;
}

/* Builds the argv for a fresh start. */
static char **build_argv(struct agent *a, struct vm *vm, struct error **errp)
{
    AUTOFREE char *qmp = vm_path(a, vm, "qmp.sock");
    AUTOFREE char *qga = vm_path(a, vm, "qga.sock");
    AUTOFREE char *ssock = vm_path(a, vm, "serial.sock");
    AUTOFREE char *slog = vm_path(a, vm, "console.log");
    AUTOFREE char *vnc = vm_path(a, vm, "vnc.sock");
    AUTOFREE char *pidf = vm_path(a, vm, "qemu.pid");
    struct qemu_runtime rt = {
        .qmp_socket = qmp, .qga_socket = qga, .serial_socket = ssock, .serial_log = slog,
        .vnc_socket = vnc, .vnc_display = -1, .pidfile = pidf, .incoming_fd = -1,
        .start_paused = true,
    };
    if (vm->def->vnc == VNC_LISTEN_LOOPBACK) {
        rt.vnc_display = pick_vnc_display(a, vm);
        if (rt.vnc_display < 0)
            return error_set(errp, ERR_NO_SPACE, "no free VNC display for VM '%s'", vm->name),
                   NULL;
    }
    pthread_mutex_lock(&vm->lock);
    vm->vnc_display = rt.vnc_display;
    char **argv = qemu_argv_build(vm->def, &a->caps, &rt, errp);
    pthread_mutex_unlock(&vm->lock);
    return argv;
}

/* Spawns QEMU with 'argv' (ownership taken), attaches the monitor and waits
 * until QMP answers.  On failure nothing is left running. */
static int spawn_and_attach(struct agent *a, struct vm *vm, char **argv, int keep_fd,
                            enum vm_state during, struct error **errp)
{
    AUTOFREE char *rundir = xasprintf("%s/%s", a->cfg.run_dir, vm->name);
    if (mkdir_p(rundir, 0700, errp) < 0) {
        strv_free(argv);
        return -1;
    }
    unlink_sockets(a, vm);
    AUTOFREE char *log = vm_path(a, vm, "qemu.log");
    AUTOCOMMAND struct command *cmd = command_new(argv[0]);
    for (size_t i = 1; argv[i]; i++)
        command_add_arg(cmd, argv[i]);
    command_set_output_file(cmd, log);
    if (keep_fd >= 0)
        command_keep_fd(cmd, keep_fd);

    pid_t pid = command_spawn(cmd, errp);
    if (pid < 0) {
        strv_free(argv);
        return -1;
    }
    pthread_mutex_lock(&vm->lock);
    strv_free(vm->argv);
    vm->argv = argv;
    vm->pid = pid;
    vm->pid_start = 0;   /* read below, once QEMU is past execve */
    vm->pid_is_child = true;
    vm->shutdown_requested = false;
    vm->crashed = false;
    free(vm->shutdown_reason);
    vm->shutdown_reason = NULL;
    strv_free(vm->deleted_devices);
    vm->deleted_devices = NULL;
    vm->started_at_ms = wall_ms();
    vm_set_state_locked(a, vm, during, NULL);
    pthread_mutex_unlock(&vm->lock);

    AUTOFREE char *qmp_path = vm_path(a, vm, "qmp.sock");
    struct qmp_client *c = NULL;
    long long deadline = now_ms() + START_TIMEOUT_MS;
    AUTOERROR struct error *cerr = NULL;
    while (!c) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            AUTOFREE char *text = file_read_all(log, 1 << 20, NULL, NULL);
            const char *tail = "";
            if (text) {
                size_t n = strlen(text);
                while (n && text[n - 1] == '\n')
                    text[--n] = '\0';
                char *nl = strrchr(text, '\n');
                tail = nl ? nl + 1 : text;
            }
            pthread_mutex_lock(&vm->lock);
            vm->pid = 0;
            free(vm->exit_reason);
            vm->exit_reason = xasprintf("QEMU failed to start: %s", tail);
            vm_set_state_locked(a, vm, VM_STATE_STOPPED, vm->exit_reason);
            pthread_mutex_unlock(&vm->lock);
            return error_set(errp, ERR_QEMU, "QEMU for VM '%s' exited at start: %s", vm->name,
                             tail);
        }
        error_free(cerr);
        cerr = NULL;
        /* One attempt, then 1 ms: QEMU's socket appears ~18 ms after spawn. */
        c = qmp_client_connect(qmp_path, 0, &cerr);
        if (!c && now_ms() <= deadline) {
            struct timespec ms1 = { 0, 1000000L };
            nanosleep(&ms1, NULL);
        }
        if (!c && now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            pthread_mutex_lock(&vm->lock);
            vm->pid = 0;
            vm_set_state_locked(a, vm, VM_STATE_STOPPED, "QMP socket never appeared");
            pthread_mutex_unlock(&vm->lock);
            return error_set(errp, ERR_TIMEOUT, "VM '%s': QMP socket did not appear: %s",
                             vm->name, cerr ? cerr->message : "");
        }
    }
    struct proc_stat st = { 0 };
    proc_read_stat(pid, &st, NULL);
    pthread_mutex_lock(&vm->lock);
    vm->pid_start = st.start_ticks;
    vm_save_runtime_locked(vm, NULL);
    pthread_mutex_unlock(&vm->lock);
    monitor_attach(a->monitor, vm, c);
    return 0;
}

int vm_start(struct agent *a, struct vm *vm, struct error **errp)
{
    if (get_state(vm) == VM_STATE_SAVED)
        return vm_restore(a, vm, errp);
    if (vm_job_begin(vm, "start", 5000, errp) < 0)
        return -1;
    int ret = -1;
    enum vm_state s = get_state(vm);
    if (vm_state_is_active(s)) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is already %s", vm->name, vm_state_to_string(s));
        goto out;
    }
    if (s == VM_STATE_SAVED) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is hibernated: restore it", vm->name);
        goto out;
    }
    if (agent_modules_vm_prepare(a, vm, errp) < 0)
        goto out;
    char **argv = build_argv(a, vm, errp);
    if (!argv)
        goto out;
    pthread_mutex_lock(&vm->lock);
    json_array_clear(vm->hotplug_extra);
    vm->mem_plugged_mib = 0;
    vm->dimm_next = 0;
    strv_free(vm->hotplug_ports);
    vm->hotplug_ports = NULL;
    pthread_mutex_unlock(&vm->lock);
    if (spawn_and_attach(a, vm, argv, -1, VM_STATE_STARTING, errp) < 0)
        goto out;
    json_t *r = vm_qmp_call(vm, "cont", NULL, START_TIMEOUT_MS, errp);
    if (!r) {
        error_prefix(errp, "starting VM '%s'", vm->name);
        force_stop(vm, NULL);
        goto out;
    }
    json_decref(r);
    /* After cont's reply: QEMU has finished creating its taps by then. */
    taps_up(vm);
    pthread_mutex_lock(&vm->lock);
    free(vm->exit_reason);
    vm->exit_reason = NULL;
    if (vm->state == VM_STATE_STARTING)
        vm_set_state_locked(a, vm, VM_STATE_RUNNING, "started");
    pthread_mutex_unlock(&vm->lock);
    agent_modules_vm_started(a, vm);
    ret = 0;
out:
    vm_job_end(vm);
    return ret;
}

static int require_active(struct vm *vm, struct error **errp)
{
    enum vm_state s = get_state(vm);
    if (s != VM_STATE_RUNNING && s != VM_STATE_PAUSED && s != VM_STATE_SHUTTING_DOWN)
        return error_set(errp, ERR_BAD_STATE, "VM '%s' is %s, not running", vm->name,
                         vm_state_to_string(s));
    return 0;
}

int vm_shutdown(struct agent *a, struct vm *vm, enum shutdown_mode mode, int timeout_s,
                bool force, struct error **errp)
{
    if (vm_job_begin(vm, "shutdown", 5000, errp) < 0)
        return -1;
    int ret = -1;
    if (require_active(vm, errp) < 0)
        goto out;
    if (timeout_s <= 0)
        timeout_s = a->cfg.shutdown_timeout_s;
    bool use_agent = false;
    if (mode == SHUTDOWN_AGENT || (mode == SHUTDOWN_AUTO && vm->def->guest_agent)) {
        use_agent = guest_agent_available(a, vm, mode == SHUTDOWN_AGENT ? 3000 : 1000);
        if (!use_agent && mode == SHUTDOWN_AGENT) {
            error_set(errp, ERR_BAD_STATE, "the guest agent of VM '%s' does not answer",
                      vm->name);
            goto out;
        }
    }
    pthread_mutex_lock(&vm->lock);
    vm->shutdown_requested = true;
    pthread_mutex_unlock(&vm->lock);
    if (use_agent) {
        AUTOERROR struct error *gerr = NULL;
        if (guest_agent_send(a, vm, "guest-shutdown", json_pack("{s:s}", "mode", "powerdown"),
                             3000, &gerr) < 0) {
            LOG_WARN("VM '%s': %s; using ACPI", vm->name, gerr->message);
            use_agent = false;
        }
    }
    if (!use_agent) {
        json_t *r = vm_qmp_call(vm, "system_powerdown", NULL, QMP_TIMEOUT_MS, errp);
        if (!r)
            goto out;
        json_decref(r);
    }
    pthread_mutex_lock(&vm->lock);
    bool done = vm_wait_locked(vm, pred_inactive, NULL, timeout_s * 1000);
    pthread_mutex_unlock(&vm->lock);
    if (done) {
        ret = 0;
    } else if (force) {
        LOG_WARN("VM '%s' did not power off within %d s; forcing it off", vm->name, timeout_s);
        ret = force_stop(vm, errp);
    } else {
        pthread_mutex_lock(&vm->lock);
        vm->shutdown_requested = false;
        pthread_mutex_unlock(&vm->lock);
        error_set(errp, ERR_TIMEOUT, "VM '%s' did not power off within %d s", vm->name,
                  timeout_s);
    }
out:
    vm_job_end(vm);
    return ret;
}

int vm_destroy(struct agent *a, struct vm *vm, struct error **errp)
{
    if (vm_job_begin(vm, "destroy", 5000, errp) < 0)
        return -1;
    int ret = -1;
    if (!vm_state_is_active(get_state(vm))) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is not running", vm->name);
        goto out;
    }
    if (get_state(vm) == VM_STATE_UNREACHABLE) {
        /* No monitor to watch it: kill the verified PID and poll until gone. */
        kill_qemu(vm, SIGKILL);
        pthread_mutex_lock(&vm->lock);
        pid_t pid = vm->pid;
        unsigned long long start = vm->pid_start;
        pthread_mutex_unlock(&vm->lock);
        for (int i = 0; i < 100 && proc_is_same(pid, start); i++)
            usleep(50000);
        if (proc_is_same(pid, start)) {
            error_set(errp, ERR_TIMEOUT, "QEMU pid %d of VM '%s' survived SIGKILL", (int) pid,
                      vm->name);
            goto out;
        }
        pthread_mutex_lock(&vm->lock);
        vm->pid = 0;
        free(vm->exit_reason);
        vm->exit_reason = xstrdup("killed by the agent (its monitor did not answer)");
        vm_set_state_locked(a, vm, VM_STATE_STOPPED, vm->exit_reason);
        pthread_mutex_unlock(&vm->lock);
        ret = 0;
        goto out;
    }
    pthread_mutex_lock(&vm->lock);
    bool has_pid = vm->pid > 0;
    pthread_mutex_unlock(&vm->lock);
    if (!has_pid) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' has no QEMU process", vm->name);
        goto out;
    }
    ret = force_stop(vm, errp);
out:
    vm_job_end(vm);
    return ret;
}

int vm_reboot(struct agent *a, struct vm *vm, const char *mode, struct error **errp)
{
    if (mode && strcmp(mode, "auto") && strcmp(mode, "agent") && strcmp(mode, "reset"))
        return error_set_field(errp, ERR_INVALID_ARG, "mode",
                               "mode '%s' must be auto, agent or reset", mode);
    if (vm_job_begin(vm, "reboot", 5000, errp) < 0)
        return -1;
    int ret = -1;
    if (require_active(vm, errp) < 0)
        goto out;
    bool agent_ok = (!mode || strcmp(mode, "reset")) && vm->def->guest_agent
                    && guest_agent_available(a, vm, 1000);
    if (mode && !strcmp(mode, "agent") && !agent_ok) {
        error_set(errp, ERR_BAD_STATE, "the guest agent of VM '%s' does not answer", vm->name);
        goto out;
    }
    if (agent_ok) {
        AUTOERROR struct error *gerr = NULL;
        if (guest_agent_send(a, vm, "guest-shutdown", json_pack("{s:s}", "mode", "reboot"), 3000,
                             &gerr) == 0) {
            ret = 0;
            goto out;
        }
        LOG_WARN("VM '%s': %s; resetting instead", vm->name, gerr->message);
    }
    json_t *r = vm_qmp_call(vm, "system_reset", NULL, QMP_TIMEOUT_MS, errp);
    if (r) {
        json_decref(r);
        ret = 0;
    }
out:
    vm_job_end(vm);
    return ret;
}

static int pause_resume(struct agent *a, struct vm *vm, bool pause, struct error **errp)
{
    if (vm_job_begin(vm, pause ? "pause" : "resume", 5000, errp) < 0)
        return -1;
    int ret = -1;
    enum vm_state s = get_state(vm);
    if (s != (pause ? VM_STATE_RUNNING : VM_STATE_PAUSED)) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is %s", vm->name, vm_state_to_string(s));
        goto out;
    }
    json_t *r = vm_qmp_call(vm, pause ? "stop" : "cont", NULL, QMP_TIMEOUT_MS, errp);
    if (!r)
        goto out;
    json_decref(r);
    pthread_mutex_lock(&vm->lock);
    if (vm->state == (pause ? VM_STATE_RUNNING : VM_STATE_PAUSED))
        vm_set_state_locked(a, vm, pause ? VM_STATE_PAUSED : VM_STATE_RUNNING,
                            pause ? "paused" : "resumed");
    pthread_mutex_unlock(&vm->lock);
    ret = 0;
out:
    vm_job_end(vm);
    return ret;
}

int vm_pause(struct agent *a, struct vm *vm, struct error **errp)
{
    return pause_resume(a, vm, true, errp);
}

int vm_resume(struct agent *a, struct vm *vm, struct error **errp)
{
    return pause_resume(a, vm, false, errp);
}

/* Polls query-migrate until it completes; updates the job progress. */
static int wait_migration(struct vm *vm, struct error **errp)
{
    for (;;) {
        json_t *r = vm_qmp_call(vm, "query-migrate", NULL, QMP_TIMEOUT_MS, errp);
        if (!r)
            return -1;
        const char *st = json_string_value(json_object_get(r, "status"));
        json_t *ram = json_object_get(r, "ram");
        json_int_t total = json_integer_value(json_object_get(ram, "total"));
        json_int_t done = json_integer_value(json_object_get(ram, "transferred"));
        if (total > 0) {
            pthread_mutex_lock(&vm->lock);
            vm->job_progress = (int) (done * 100 / total > 99 ? 99 : done * 100 / total);
            pthread_mutex_unlock(&vm->lock);
        }
        if (st && !strcmp(st, "completed")) {
            json_decref(r);
            return 0;
        }
        if (st && (!strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
            const char *desc = json_string_value(json_object_get(r, "error-desc"));
            int ret = error_set(errp, ERR_QEMU, "saving VM '%s' failed: %s", vm->name,
                                desc ? desc : st);
            json_decref(r);
            return ret;
        }
        json_decref(r);
        usleep(20000);
    }
}

/* The id or node-name a "-blockdev/-device/-netdev/-object <json>" argument
 * defines, or NULL. */
static char *arg_object_id(const char *opt, const char *value)
{
    if (strcmp(opt, "-blockdev") && strcmp(opt, "-device") && strcmp(opt, "-netdev")
        && strcmp(opt, "-object"))
        return NULL;
    json_t *j = json_loads(value, 0, NULL);
    if (!j)
        return NULL;
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!id)
        id = json_string_value(json_object_get(j, "node-name"));
    char *r = xstrdup(id);
    json_decref(j);
    return r;
}

static bool removed(const json_t *extra, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(extra, i, e) {
        const char *r = json_string_value(json_object_get(e, "remove"));
        if (r && id && !strcmp(r, id))
            return true;
    }
    return false;
}

/* The argv to restore with: the running argv without a previous -incoming and
 * without boot-time devices removed live, plus everything hot-plugged since,
 * then -incoming on the save file. */
static char **restore_argv(struct vm *vm, int fd)
{
    size_t n = strv_len(vm->argv), cap = n + 3;
    size_t i;
    json_t *e;
    json_array_foreach(vm->hotplug_extra, i, e)
        cap += json_array_size(json_object_get(e, "args"));
    char **out = xcalloc(cap, sizeof *out);
    size_t k = 0;
    for (i = 0; i < n; i++) {
        if (!strcmp(vm->argv[i], "-incoming") && i + 1 < n) {
            i++;
            continue;
        }
        if (i + 1 < n) {
            AUTOFREE char *id = arg_object_id(vm->argv[i], vm->argv[i + 1]);
            if (id && removed(vm->hotplug_extra, id)) {
                i++;
                continue;
            }
        }
        out[k++] = xstrdup(vm->argv[i]);
    }
    json_array_foreach(vm->hotplug_extra, i, e) {
        size_t j;
        json_t *a;
        json_array_foreach(json_object_get(e, "args"), j, a)
            out[k++] = xstrdup(json_string_value(a));
    }
    out[k++] = xstrdup("-incoming");
    out[k++] = xasprintf("fd:%d", fd);
    return out;
}

/* QEMU creates missing taps DOWN: bring the VM's taps up. */
static void taps_up(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    size_t n = vm->def->n_nics;
    char **taps = xcalloc(n + 1, sizeof *taps);
    for (size_t i = 0; i < n; i++)
        taps[i] = xstrdup(vm->def->nics[i].tap);
    pthread_mutex_unlock(&vm->lock);
    for (size_t i = 0; i < n; i++) {
        AUTOCOMMAND struct command *cmd = command_new("ip");
        command_add_args(cmd, "link", "set", "dev", taps[i], "up", NULL);
        AUTOERROR struct error *err = NULL;
        if (command_run(cmd, NULL, NULL, NULL, &err) < 0)
            LOG_WARN("VM '%s': cannot bring tap '%s' up: %s", vm->name, taps[i], err->message);
    }
    strv_free(taps);
}

int vm_hibernate(struct agent *a, struct vm *vm, struct error **errp)
{
    if (vm_job_begin(vm, "hibernate", 5000, errp) < 0)
        return -1;
    int ret = -1;
    AUTOFREE char *path = vm_path(a, vm, "save.img");
    AUTOFREE char *tmp = vm_path(a, vm, "save.img.part");
    AUTOCLOSE int fd = -1;
    enum vm_state s = get_state(vm);
    if (s != VM_STATE_RUNNING && s != VM_STATE_PAUSED) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is %s, not running", vm->name,
                  vm_state_to_string(s));
        goto out;
    }
    bool was_running = s == VM_STATE_RUNNING;
    if (was_running) {
        json_t *r = vm_qmp_call(vm, "stop", NULL, QMP_TIMEOUT_MS, errp);
        if (!r)
            goto out;
        json_decref(r);
    }
    pthread_mutex_lock(&vm->lock);
    vm_set_state_locked(a, vm, VM_STATE_SAVING, NULL);
    pthread_mutex_unlock(&vm->lock);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        error_set_errno(errp, ERR_IO, errno, "cannot create '%s'", tmp);
        goto undo;
    }
    {
        AUTOVMQMP struct vm_qmp *q = vm_qmp_acquire(vm, errp);
        if (!q)
            goto undo;
        json_t *r = qmp_client_call_fd(q->client, "getfd",
                                       json_pack("{s:s}", "fdname", SAVE_FD_NAME), fd,
                                       QMP_TIMEOUT_MS, errp);
        if (!r)
            goto undo;
        json_decref(r);
    }
    json_t *r = vm_qmp_call(vm, "migrate", json_pack("{s:s}", "uri", "fd:" SAVE_FD_NAME),
                            QMP_TIMEOUT_MS, errp);
    if (!r)
        goto undo;
    json_decref(r);
    if (wait_migration(vm, errp) < 0)
        goto undo;
    if (fsync(fd) < 0) {
        error_set_errno(errp, ERR_IO, errno, "cannot sync '%s'", tmp);
        goto undo;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) < 0) {
        error_set_errno(errp, ERR_IO, errno, "cannot rename '%s'", tmp);
        goto undo;
    }
    pthread_mutex_lock(&vm->lock);
    vm->saved_was_running = was_running;
    vm->shutdown_requested = true;
    vm_save_runtime_locked(vm, NULL);
    pthread_mutex_unlock(&vm->lock);
    json_decref(vm_qmp_call(vm, "quit", NULL, 3000, NULL));
    if (!wait_exit(vm, 10000)) {
        kill_qemu(vm, SIGKILL);
        wait_exit(vm, 5000);
    }
    pthread_mutex_lock(&vm->lock);
    vm->job_progress = 100;
    free(vm->exit_reason);
    vm->exit_reason = xstrdup("hibernated");
    vm_set_state_locked(a, vm, VM_STATE_SAVED, "memory saved to disk");
    pthread_mutex_unlock(&vm->lock);
    ret = 0;
    goto out;

undo:
    /* Leave the VM as it was: still running (or paused). */
    unlink(tmp);
    pthread_mutex_lock(&vm->lock);
    if (vm->state == VM_STATE_SAVING && vm->pid > 0)
        vm_set_state_locked(a, vm, VM_STATE_PAUSED, "hibernate failed");
    pthread_mutex_unlock(&vm->lock);
    if (was_running && get_state(vm) == VM_STATE_PAUSED) {
        json_t *c = vm_qmp_call(vm, "cont", NULL, QMP_TIMEOUT_MS, NULL);
        json_decref(c);
        pthread_mutex_lock(&vm->lock);
        if (vm->state == VM_STATE_PAUSED)
            vm_set_state_locked(a, vm, VM_STATE_RUNNING, "hibernate failed");
        pthread_mutex_unlock(&vm->lock);
    }
out:
    vm_job_end(vm);
    return ret;
}

static bool pred_not_inmigrate(struct vm *vm, void *arg)
{
    (void) vm;
    (void) arg;
    return false;
}

int vm_restore(struct agent *a, struct vm *vm, struct error **errp)
{
    if (vm_job_begin(vm, "restore", 5000, errp) < 0)
        return -1;
    int ret = -1;
    AUTOFREE char *path = vm_path(a, vm, "save.img");
    AUTOCLOSE int fd = -1;
    if (get_state(vm) != VM_STATE_SAVED) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is %s, not hibernated", vm->name,
                  vm_state_to_string(get_state(vm)));
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error_set_errno(errp, ERR_IO, errno, "cannot open the save file '%s'", path);
        goto out;
    }
    if (agent_modules_vm_prepare(a, vm, errp) < 0)
        goto out;
    pthread_mutex_lock(&vm->lock);
    char **argv = restore_argv(vm, fd);
    bool was_running = vm->saved_was_running;
    pthread_mutex_unlock(&vm->lock);
    if (spawn_and_attach(a, vm, argv, fd, VM_STATE_RESTORING, errp) < 0) {
        pthread_mutex_lock(&vm->lock);
        if (vm->state == VM_STATE_STOPPED)
            vm_set_state_locked(a, vm, VM_STATE_SAVED, "restore failed; the save file is kept");
        pthread_mutex_unlock(&vm->lock);
        goto out;
    }
    close(fd);
    fd = -1;
    /* Incoming migration runs until the status leaves "inmigrate". */
    long long deadline = now_ms() + 120000;
    for (;;) {
        json_t *r = vm_qmp_call(vm, "query-status", NULL, QMP_TIMEOUT_MS, errp);
        if (!r)
            goto fail;
        const char *st = json_string_value(json_object_get(r, "status"));
        bool in = st && !strcmp(st, "inmigrate");
        bool bad = st && (!strcmp(st, "internal-error") || !strcmp(st, "io-error")
                          || !strcmp(st, "shutdown"));
        AUTOFREE char *st_copy = xstrdup(st);
        json_decref(r);
        if (bad) {
            error_set(errp, ERR_QEMU, "restoring VM '%s' failed: QEMU status '%s'", vm->name,
                      st_copy);
            goto fail;
        }
        if (!in)
            break;
        if (now_ms() > deadline) {
            error_set(errp, ERR_TIMEOUT, "restoring VM '%s' did not finish", vm->name);
            goto fail;
        }
        pthread_mutex_lock(&vm->lock);
        vm_wait_locked(vm, pred_not_inmigrate, NULL, 20);
        pthread_mutex_unlock(&vm->lock);
    }
    taps_up(vm);
    if (was_running) {
        json_t *r = vm_qmp_call(vm, "cont", NULL, QMP_TIMEOUT_MS, errp);
        if (!r)
            goto fail;
        json_decref(r);
    }
    pthread_mutex_lock(&vm->lock);
    json_array_clear(vm->hotplug_extra);   /* now part of vm->argv */
    free(vm->exit_reason);
    vm->exit_reason = NULL;
    vm_set_state_locked(a, vm, was_running ? VM_STATE_RUNNING : VM_STATE_PAUSED, "restored");
    pthread_mutex_unlock(&vm->lock);
    agent_modules_vm_started(a, vm);
    unlink(path);
    ret = 0;
    goto out;
fail:
    force_stop(vm, NULL);
    pthread_mutex_lock(&vm->lock);
    vm_set_state_locked(a, vm, VM_STATE_SAVED, "restore failed; the save file is kept");
    pthread_mutex_unlock(&vm->lock);
out:
    vm_job_end(vm);
    return ret;
}
