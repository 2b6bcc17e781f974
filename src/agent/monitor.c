/* monitor.c - the agent's QMP event loop and QEMU exit handling.
 *
 * One thread.  Each iteration it polls the QMP socket of every attached VM
 * and a wake-up pipe (written when a job thread queues a command or a VM is
 * attached), runs the clients, and checks VMs whose monitor has closed: once
 * their QEMU process is really gone (reaped if it is our child, otherwise no
 * longer the same PID and start time) the VM becomes stopped (crashed, if
 * nobody asked for it) with
 * its exit reason.  Events are turned into state changes here:
 *   STOP -> paused, RESUME -> running, SHUTDOWN -> shutting-down (reason kept),
 *   DEVICE_DELETED -> recorded for detach waits, BALLOON_CHANGE -> actual size.
 * Every QEMU event is also published on the agent's event stream.
 *
 * Threads: the loop never waits on anything but poll(); it takes vm->lock for
 * short updates only. */
#define LOG_MODULE "monitor"
#include "agent/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host/proc.h"
#include "qmp/qmp.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define EXIT_WAIT_KILL_MS 15000

struct mon_entry {
    struct monitor *m;
    struct vm *vm;                  /* reference held */
    struct vm_qmp *q;               /* reference held */
    bool ready_seen;
    bool closed;
    long long closed_at;
    int exit_status;                /* -1 unknown */
};

struct monitor {
    struct agent *a;
    pthread_t thread;
    int wake_pipe[2];
    pthread_mutex_t lock;           /* guards 'entries' and 'stopping' */
    struct mon_entry **entries;
    size_t n_entries;
    bool stopping;
};

/* ---- vm_qmp references -------------------------------------------------- */

static struct vm_qmp *vm_qmp_new(struct qmp_client *c)
{
    struct vm_qmp *q = xzalloc(sizeof *q);
    q->client = c;
    q->refs = 1;
    return q;
}

static struct vm_qmp *vm_qmp_ref(struct vm_qmp *q)
{
    __atomic_add_fetch(&q->refs, 1, __ATOMIC_SEQ_CST);
    return q;
}

void vm_qmp_unref(struct vm_qmp *q)
{
    if (q && __atomic_sub_fetch(&q->refs, 1, __ATOMIC_SEQ_CST) == 0) {
        qmp_client_free(q->client);
        free(q);
    }
}

struct vm_qmp *vm_qmp_acquire(struct vm *vm, struct error **errp)
{
    pthread_mutex_lock(&vm->lock);
    struct vm_qmp *q = vm->qmp && !vm->qmp_closed ? vm_qmp_ref(vm->qmp) : NULL;
    pthread_mutex_unlock(&vm->lock);
    if (!q)
        error_set(errp, ERR_BAD_STATE, "VM '%s' is not running", vm->name);
    return q;
}

bool vm_wait_locked(struct vm *vm, bool (*pred)(struct vm *vm, void *arg), void *arg,
                    int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    while (!pred(vm, arg))
        if (pthread_cond_timedwait(&vm->cond, &vm->lock, &dl) == ETIMEDOUT)
            return pred(vm, arg);
    return true;
}

/* ---- event handling (loop thread) --------------------------------------- */

static void set_state_if(struct agent *a, struct vm *vm, enum vm_state from, enum vm_state to,
                         const char *why)
{
    if (vm->state == from)
        vm_set_state_locked(a, vm, to, why);
}

static void on_status_reply(const json_t *ret, const struct error *err, void *opaque)
{
    struct mon_entry *e = opaque;
    if (err || !ret)
        return;
    const char *status = json_string_value(json_object_get(ret, "status"));
    struct vm *vm = e->vm;
    pthread_mutex_lock(&vm->lock);
    if (status && !strcmp(status, "running"))
        set_state_if(e->m->a, vm, VM_STATE_PAUSED, VM_STATE_RUNNING, "query-status");
    else if (status && (!strcmp(status, "paused") || !strcmp(status, "prelaunch")
                        || !strcmp(status, "postmigrate")))
        set_state_if(e->m->a, vm, VM_STATE_RUNNING, VM_STATE_PAUSED, "query-status");
    pthread_mutex_unlock(&vm->lock);
}

static void on_event(const char *event, const json_t *data, double timestamp, void *opaque)
{
    struct mon_entry *e = opaque;
    struct agent *a = e->m->a;
    struct vm *vm = e->vm;
    (void) timestamp;

    pthread_mutex_lock(&vm->lock);
    if (!strcmp(event, "STOP")) {
        set_state_if(a, vm, VM_STATE_RUNNING, VM_STATE_PAUSED, "paused");
    } else if (!strcmp(event, "RESUME")) {
        set_state_if(a, vm, VM_STATE_PAUSED, VM_STATE_RUNNING, "resumed");
    } else if (!strcmp(event, "SHUTDOWN")) {
        const char *reason = json_string_value(json_object_get(data, "reason"));
        free(vm->shutdown_reason);
        vm->shutdown_reason = xstrdup(reason ? reason : "unknown");
        if (vm->state == VM_STATE_RUNNING || vm->state == VM_STATE_PAUSED)
            vm_set_state_locked(a, vm, VM_STATE_SHUTTING_DOWN, vm->shutdown_reason);
        else
            vm_save_runtime_locked(vm, NULL);
    } else if (!strcmp(event, "DEVICE_DELETED")) {
        const char *dev = json_string_value(json_object_get(data, "device"));
        if (dev) {
            size_t n = strv_len(vm->deleted_devices);
            vm->deleted_devices = xrealloc(vm->deleted_devices, (n + 2) * sizeof(char *));
            vm->deleted_devices[n] = xstrdup(dev);
            vm->deleted_devices[n + 1] = NULL;
        }
    } else if (!strcmp(event, "BALLOON_CHANGE")) {
        json_int_t actual = json_integer_value(json_object_get(data, "actual"));
        vm->balloon_actual_mib = actual / (1024 * 1024);
    }
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);

    json_t *d = json_pack("{s:s}", "event", event);
    if (data)
        json_object_set(d, "data", (json_t *) data);
    agent_event(a, vm->name, "qemu-event", d);
}

static void on_close(void *opaque)
{
    struct mon_entry *e = opaque;
    e->closed = true;
    e->closed_at = now_ms();
    pthread_mutex_lock(&e->vm->lock);
    e->vm->qmp_closed = true;
    pthread_cond_broadcast(&e->vm->cond);
    pthread_mutex_unlock(&e->vm->lock);
    LOG_DEBUG("VM '%s': monitor closed", e->vm->name);
}

/* True once the QEMU process of a closed entry is gone (reaped if ours). */
static bool process_gone(struct mon_entry *e)
{
    struct vm *vm = e->vm;
    pthread_mutex_lock(&vm->lock);
    pid_t pid = vm->pid;
    bool child = vm->pid_is_child;
    unsigned long long start = vm->pid_start;
    pthread_mutex_unlock(&vm->lock);
    if (pid <= 0)
        return true;
    if (child) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            e->exit_status = status;
            return true;
        }
        return r < 0;   /* ECHILD: already reaped elsewhere */
    }
    struct proc_stat st;
    if (proc_read_stat(pid, &st, NULL) < 0 || st.start_ticks != start || st.state == 'Z')
        return true;
    return false;
}

static char *describe_status(int status)
{
    if (status < 0)
        return xstrdup("exit status unknown");
    if (WIFEXITED(status))
        return xasprintf("exit status %d", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return xasprintf("killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    return xstrdup("exit status unknown");
}

static void finalize_exit(struct monitor *m, struct mon_entry *e)
{
    struct vm *vm = e->vm;
    AUTOFREE char *st = describe_status(e->exit_status);
    pthread_mutex_lock(&vm->lock);
    free(vm->exit_reason);
    bool clean = vm->shutdown_requested || vm->shutdown_reason;
    if (vm->shutdown_reason)
        vm->exit_reason = xasprintf("shutdown (%s), %s", vm->shutdown_reason, st);
    else if (vm->shutdown_requested)
        vm->exit_reason = xasprintf("stopped by the agent, %s", st);
    else
        vm->exit_reason = xasprintf("QEMU exited unexpectedly, %s", st);
    vm->pid = 0;
    vm->pid_start = 0;
    vm->shutdown_requested = false;
    if (vm->qmp == e->q) {
        vm->qmp = NULL;
        vm_qmp_unref(e->q);   /* vm->qmp's reference */
    }
    vm->qmp_closed = false;
    vm->crashed = !clean;
    enum vm_state next = VM_STATE_STOPPED;
    if (vm->state == VM_STATE_SAVING || vm->state == VM_STATE_SAVED) {
        vm_save_runtime_locked(vm, NULL);   /* the hibernate job decides */
        pthread_cond_broadcast(&vm->cond);
    } else {
        vm_set_state_locked(m->a, vm, next, vm->exit_reason);
    }
    pthread_mutex_unlock(&vm->lock);
    agent_modules_vm_stopped(m->a, vm);
    if (!clean)
        LOG_WARN("VM '%s': %s", vm->name, vm->exit_reason);
    agent_event(m->a, vm->name, "exited", json_pack("{s:s}", "exit_reason", vm->exit_reason));
}

static void entry_free(struct monitor *m, struct mon_entry *e)
{
    vm_qmp_unref(e->q);
    vm_unref(m->a, e->vm);
    free(e);
}

/* Kills a QEMU whose monitor closed long ago but which does not exit. */
static void kill_stuck(struct mon_entry *e)
{
    struct vm *vm = e->vm;
    pthread_mutex_lock(&vm->lock);
    pid_t pid = vm->pid;
    pthread_mutex_unlock(&vm->lock);
    if (pid > 0) {
        LOG_WARN("VM '%s': QEMU pid %d did not exit after its monitor closed; killing it",
                 vm->name, (int) pid);
        kill(pid, SIGKILL);
    }
}

static void *monitor_main(void *opaque)
{
    struct monitor *m = opaque;
    struct pollfd *pfds = NULL;
    struct mon_entry **snap = NULL;
    size_t cap = 0;

    for (;;) {
        pthread_mutex_lock(&m->lock);
        if (m->stopping) {
            pthread_mutex_unlock(&m->lock);
            break;
        }
        size_t n = m->n_entries;
        if (n + 1 > cap) {
            cap = (n + 1) * 2;
            pfds = xrealloc(pfds, cap * sizeof *pfds);
            snap = xrealloc(snap, cap * sizeof *snap);
        }
        if (n)
            memcpy(snap, m->entries, n * sizeof *snap);
        pthread_mutex_unlock(&m->lock);

        pfds[0] = (struct pollfd) { m->wake_pipe[0], POLLIN, 0 };
        int timeout = 100;
        for (size_t i = 0; i < n; i++) {
            struct mon_entry *e = snap[i];
            if (e->closed) {
                /* QEMU closes its monitor just before it exits: look again soon. */
                timeout = 5;
                pfds[i + 1] = (struct pollfd) { -1, 0, 0 };
                continue;
            }
            short ev = POLLIN;
            if (qmp_client_want_write(e->q->client))
                ev |= POLLOUT;
            pfds[i + 1] = (struct pollfd) { qmp_client_fd(e->q->client), ev, 0 };
        }
        int r = poll(pfds, n + 1, timeout);
        if (r < 0 && errno != EINTR) {
            LOG_ERROR("poll failed: %s", strerror(errno));
            usleep(100000);
        }
        if (pfds[0].revents & POLLIN) {
            char buf[256];
            while (read(m->wake_pipe[0], buf, sizeof buf) > 0)
                ;
        }
        for (size_t i = 0; i < n; i++) {
            struct mon_entry *e = snap[i];
            if (!e->closed) {
                qmp_client_run(e->q->client);
                if (!e->ready_seen && qmp_client_ready(e->q->client)) {
                    e->ready_seen = true;
                    qmp_client_send(e->q->client, "query-status", NULL, on_status_reply, e);
                    qmp_client_run(e->q->client);
                }
            }
            if (e->closed && process_gone(e)) {
                finalize_exit(m, e);
                pthread_mutex_lock(&m->lock);
                for (size_t k = 0; k < m->n_entries; k++)
                    if (m->entries[k] == e) {
                        memmove(m->entries + k, m->entries + k + 1,
                                (m->n_entries - k - 1) * sizeof *m->entries);
                        m->n_entries--;
                        break;
                    }
                pthread_mutex_unlock(&m->lock);
                entry_free(m, e);
            } else if (e->closed && now_ms() - e->closed_at > EXIT_WAIT_KILL_MS) {
                kill_stuck(e);
                e->closed_at = now_ms();
            }
        }
    }
    free(pfds);
    free(snap);
    return NULL;
}

static void waker(void *opaque)
{
    monitor_wake(opaque);
}

void monitor_wake(struct monitor *m)
{
    if (write(m->wake_pipe[1], "x", 1) < 0) {
        /* Pipe full: the loop is already due to wake. */
    }
}

void monitor_attach(struct monitor *m, struct vm *vm, struct qmp_client *client)
{
    struct mon_entry *e = xzalloc(sizeof *e);
    e->m = m;
    e->exit_status = -1;
    vm_ref(m->a, vm);
    e->vm = vm;
    e->q = vm_qmp_new(client);                 /* the loop's reference */
    qmp_client_set_callbacks(client, on_event, on_close, e);
    qmp_client_set_waker(client, waker, m);

    pthread_mutex_lock(&vm->lock);
    vm_qmp_unref(vm->qmp);
    vm->qmp = vm_qmp_ref(e->q);                /* vm->qmp's reference */
    vm->qmp_closed = false;
    pthread_mutex_unlock(&vm->lock);

    pthread_mutex_lock(&m->lock);
    m->entries = xrealloc(m->entries, (m->n_entries + 1) * sizeof *m->entries);
    m->entries[m->n_entries++] = e;
    pthread_mutex_unlock(&m->lock);
    monitor_wake(m);
}

struct monitor *monitor_start(struct agent *a, struct error **errp)
{
    struct monitor *m = xzalloc(sizeof *m);
    m->a = a;
    pthread_mutex_init(&m->lock, NULL);
    if (pipe2(m->wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        error_set_errno(errp, ERR_IO, errno, "cannot create the monitor's wake-up pipe");
        free(m);
        return NULL;
    }
    int r = pthread_create(&m->thread, NULL, monitor_main, m);
    if (r != 0) {
        close(m->wake_pipe[0]);
        close(m->wake_pipe[1]);
        free(m);
        error_set_errno(errp, ERR_INTERNAL, r, "cannot start the monitor thread");
        return NULL;
    }
    a->monitor = m;
    return m;
}

void monitor_stop(struct monitor *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_mutex_unlock(&m->lock);
    monitor_wake(m);
    pthread_join(m->thread, NULL);
    for (size_t i = 0; i < m->n_entries; i++)
        entry_free(m, m->entries[i]);
    free(m->entries);
    close(m->wake_pipe[0]);
    close(m->wake_pipe[1]);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
