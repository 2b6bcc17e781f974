/* test_qemu_smoke.c - the QMP and guest-agent clients against the real
 * programs (meson suite 'qemu', not 'unit': it spawns processes).
 *
 * Spawns qemu-system-x86_64 with -S (TCG, -nodefaults, 32 MiB, no guest),
 * runs the client's loop on a thread of its own as the agent does, and from
 * the test thread: query-status, cont and stop with their RESUME/STOP events,
 * getfd with a temp file's fd passed by SCM_RIGHTS, then `migrate fd:` into
 * it (the file must start with QEMU's "QEVM" magic: the fd really arrived),
 * and quit.  Then runs the host's qemu-ga in unix-listen mode and does
 * guest-ping and guest-info through qga.c.  Exits 77 (skipped) when a
 * program is missing.  Every process is killed by its PID at the end. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qmp/qga.h"
#include "qmp/qmp.h"
#include "util/command.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failed = 1;                                                          \
            goto out;                                                            \
        }                                                                        \
    } while (0)

static int failed;

struct loop {
    struct qmp_client *c;
    int wake[2];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t *events;            /* names, under 'lock' */
    volatile int stop;
};

static void wake(void *opaque)
{
    struct loop *l = opaque;
    char b = 1;
    if (write(l->wake[1], &b, 1) < 0 && errno != EAGAIN)
        abort();
}

static void on_event(const char *event, const json_t *data, double ts, void *opaque)
{
    struct loop *l = opaque;
    (void) data;
    (void) ts;
    pthread_mutex_lock(&l->lock);
    json_array_append_new(l->events, json_string(event));
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static void *loop_main(void *opaque)
{
    struct loop *l = opaque;
    while (!__atomic_load_n(&l->stop, __ATOMIC_SEQ_CST)) {
        struct pollfd pfd[2] = { { .fd = qmp_client_fd(l->c), .events = POLLIN },
                                 { .fd = l->wake[0], .events = POLLIN } };
        if (qmp_client_want_write(l->c))
            pfd[0].events |= POLLOUT;
        poll(pfd, 2, 100);
        char buf[64];
        while (read(l->wake[0], buf, sizeof buf) > 0)
            ;
        if (qmp_client_run(l->c) < 0)
            break;
    }
    return NULL;
}

/* Waits until event 'name' was seen; true if it came within 5 s. */
static bool wait_event(struct loop *l, const char *name)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    bool found = false;
    pthread_mutex_lock(&l->lock);
    while (!found) {
        size_t i;
        json_t *e;
        json_array_foreach(l->events, i, e)
            if (!strcmp(json_string_value(e), name))
                found = true;
        if (!found && pthread_cond_timedwait(&l->cond, &l->lock, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&l->lock);
    return found;
}

static bool have_program(const char *name)
{
    const char *dirs[] = { "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin" };
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        AUTOFREE char *p = xasprintf("%s/%s", dirs[i], name);
        if (access(p, X_OK) == 0)
            return true;
    }
    return false;
}

static void stop_process(pid_t pid)
{
    if (pid <= 0)
        return;
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(20 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static const char *status_of(json_t *ret)
{
    return json_string_value(json_object_get(ret, "status"));
}

static void test_qemu(const char *dir)
{
    AUTOFREE char *qmp_path = xasprintf("%s/qmp.sock", dir);
    AUTOFREE char *log_path = xasprintf("%s/qemu.log", dir);
    AUTOFREE char *mig_path = xasprintf("%s/state.bin", dir);
    AUTOCOMMAND struct command *cmd = command_new("qemu-system-x86_64");
    command_add_args(cmd, "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
                     "-machine", "pc", "-m", "32", "-chardev", NULL);
    command_add_argf(cmd, "socket,id=mon0,path=%s,server=on,wait=off", qmp_path);
    command_add_args(cmd, "-mon", "chardev=mon0,mode=control", NULL);
    command_set_output_file(cmd, log_path);
    AUTOERROR struct error *err = NULL;
    pid_t pid = command_spawn(cmd, &err);
    struct loop l = { .c = NULL };
    int file = -1;
    pthread_mutex_init(&l.lock, NULL);
    pthread_cond_init(&l.cond, NULL);
    l.events = json_array();
    l.wake[0] = l.wake[1] = -1;
    bool loop_started = false;
    CHECK(pid > 0);

    l.c = qmp_client_connect(qmp_path, 5000, &err);
    CHECK(l.c);
    CHECK(pipe2(l.wake, O_CLOEXEC | O_NONBLOCK) == 0);
    qmp_client_set_callbacks(l.c, on_event, NULL, &l);
    qmp_client_set_waker(l.c, wake, &l);
    CHECK(pthread_create(&l.thread, NULL, loop_main, &l) == 0);
    loop_started = true;

    {
        AUTOJSON json_t *st = qmp_client_call(l.c, "query-status", NULL, 5000, &err);
        CHECK(st && !strcmp(status_of(st), "prelaunch"));
    }
    {
        AUTOJSON json_t *r = qmp_client_call(l.c, "cont", NULL, 5000, &err);
        CHECK(r && wait_event(&l, "RESUME"));
        AUTOJSON json_t *st = qmp_client_call(l.c, "query-status", NULL, 5000, &err);
        CHECK(st && !strcmp(status_of(st), "running"));
    }
    {
        AUTOJSON json_t *r = qmp_client_call(l.c, "stop", NULL, 5000, &err);
        CHECK(r && wait_event(&l, "STOP"));
        AUTOJSON json_t *st = qmp_client_call(l.c, "query-status", NULL, 5000, &err);
        CHECK(st && !strcmp(status_of(st), "paused"));
    }
    {
        AUTOJSON json_t *bad = qmp_client_call(l.c, "no-such-command", NULL, 5000, &err);
        CHECK(!bad && err->code == ERR_QEMU && strstr(err->message, "CommandNotFound: "));
        error_free(err);
        err = NULL;
    }
    {
        file = open(mig_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CHECK(file >= 0);
        AUTOJSON json_t *r = qmp_client_call_fd(l.c, "getfd", json_pack("{ss}", "fdname", "mig"),
                                                file, 5000, &err);
        CHECK(r);
        AUTOJSON json_t *m = qmp_client_call(l.c, "migrate", json_pack("{ss}", "uri", "fd:mig"),
                                             5000, &err);
        CHECK(m);
        AUTOFREE char *status = NULL;
        for (int i = 0; i < 250; i++) {
            AUTOJSON json_t *q = qmp_client_call(l.c, "query-migrate", NULL, 5000, &err);
            CHECK(q);
            free(status);
            status = xstrdup(status_of(q));
            if (status && (!strcmp(status, "completed") || !strcmp(status, "failed")))
                break;
            usleep(20 * 1000);
        }
        if (!status || strcmp(status, "completed"))
            fprintf(stderr, "migration status: %s\n", status ? status : "(none)");
        CHECK(status && !strcmp(status, "completed"));
        size_t len = 0;
        AUTOFREE char *data = file_read_all(mig_path, 256 << 20, &len, &err);
        CHECK(data && len > 4 && !memcmp(data, "QEVM", 4));
    }
    {
        AUTOJSON json_t *r = qmp_client_call(l.c, "quit", NULL, 5000, &err);
        CHECK(r && wait_event(&l, "SHUTDOWN"));
    }
out:
    if (err) {
        fprintf(stderr, "error: %s\n", err->message);
        failed = 1;
    }
    if (loop_started) {
        __atomic_store_n(&l.stop, 1, __ATOMIC_SEQ_CST);
        wake(&l);
        pthread_join(l.thread, NULL);
    }
    qmp_client_free(l.c);
    if (l.wake[0] >= 0) {
        close(l.wake[0]);
        close(l.wake[1]);
    }
    if (file >= 0)
        close(file);
    stop_process(pid);
    json_decref(l.events);
    pthread_cond_destroy(&l.cond);
    pthread_mutex_destroy(&l.lock);
    if (failed) {
        AUTOFREE char *log = file_read_all(log_path, 1 << 20, NULL, NULL);
        fprintf(stderr, "QEMU's output:\n%s\n", log ? log : "(none)");
    }
}

static void test_qemu_ga(const char *dir)
{
    AUTOFREE char *sock = xasprintf("%s/qga.sock", dir);
    AUTOFREE char *state = xasprintf("%s/qga-state", dir);
    AUTOFREE char *log_path = xasprintf("%s/qga.log", dir);
    AUTOERROR struct error *err = NULL;
    struct qga_client *c = NULL;
    pid_t pid = -1;
    AUTOCOMMAND struct command *cmd = command_new("qemu-ga");
    CHECK(mkdir_p(state, 0700, &err) == 0);
    command_add_args(cmd, "-m", "unix-listen", "-p", sock, "-t", state, "-l", log_path, NULL);
    pid = command_spawn(cmd, &err);
    CHECK(pid > 0);
    c = qga_client_connect(sock, 5000, &err);
    CHECK(c);
    {
        AUTOJSON json_t *ping = qga_call(c, "guest-ping", NULL, 5000, &err);
        CHECK(ping && json_is_object(ping));
        AUTOJSON json_t *info = qga_call(c, "guest-info", NULL, 5000, &err);
        CHECK(info && json_string_value(json_object_get(info, "version")));
        AUTOJSON json_t *bad = qga_call(c, "no-such-command", NULL, 5000, &err);
        CHECK(!bad && err->code == ERR_QEMU && strstr(err->message, "CommandNotFound: "));
        error_free(err);
        err = NULL;
        /* A fresh sync mid-session still lines up. */
        CHECK(qga_sync(c, 5000, &err) == 0);
        AUTOJSON json_t *again = qga_call(c, "guest-ping", NULL, 5000, &err);
        CHECK(again);
    }
out:
    if (err) {
        fprintf(stderr, "error: %s\n", err->message);
        failed = 1;
    }
    qga_client_free(c);
    if (pid > 0) {
        kill(pid, SIGTERM);
        stop_process(pid);
    }
}

int main(void)
{
    if (!have_program("qemu-system-x86_64") || !have_program("qemu-ga")) {
        fprintf(stderr, "qemu-system-x86_64 or qemu-ga not installed: skipped\n");
        return 77;
    }
    char dir[] = "/tmp/strata-qmp-smoke.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    test_qemu(dir);
    test_qemu_ga(dir);
    rm_rf(dir, NULL);
    printf("%s\n", failed ? "FAIL" : "PASS");
    return failed;
}
