/* qmp_baseline.c - the baseline of bench/agent-bench.sh: how long QEMU
 * itself takes from spawn to "running with QMP ready", with no agent.
 *
 *   qmp_baseline [--runs N] --qmp PATH [--log FILE] -- QEMU-ARGV...
 *
 * For each run: spawn QEMU-ARGV (which must create its QMP server socket at
 * PATH and start paused with -S) the way the agent does (util/command.c:
 * fork, new session, clean environment, output to FILE), connect to PATH,
 * read the greeting, negotiate capabilities, send `cont` and wait for its
 * reply (qmp/qmp.c, no loop thread).  Then `quit` and reap (not timed).
 *
 * The socket is found with inotify on its directory (a connect is tried on
 * every change there, and at least every 1 ms), so the figures are a tight
 * lower bound of what QEMU allows without burning the CPU QEMU needs; the
 * agent's own connect helper (qmp_sock_connect) retries every 5 ms.
 *
 * Output, one line per run, times in ms since just before fork():
 *   run <i> sock <ms> greeting <ms> ready <ms> cont <ms>
 * Exit status 0, or 1 if a run failed (message on stderr). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qmp/qmp.h"
#include "util/command.h"
#include "util/error.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define STEP_TIMEOUT_MS 20000

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* Connects to 'path', trying again on each inotify event in 'inotify_fd' (an
 * inotify descriptor watching the socket's directory) and at least every
 * 1 ms; gives up when '*pid' exits (then reaped: '*pid' becomes 0) or after
 * STEP_TIMEOUT_MS. */
static int connect_fast(const char *path, int inotify_fd, pid_t *pid, struct error **errp)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sun.sun_path)
        return error_set(errp, ERR_INVALID_ARG, "QMP socket path '%s' is too long", path);
    strcpy(sun.sun_path, path);
    double deadline = now_ms() + STEP_TIMEOUT_MS;
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return error_set_errno(errp, ERR_IO, errno, "cannot create a socket");
        if (connect(fd, (struct sockaddr *) &sun, sizeof sun) == 0)
            return fd;
        int err = errno;
        close(fd);
        if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN && err != EINTR)
            return error_set_errno(errp, ERR_IO, err, "cannot connect to '%s'", path);
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;   /* reaped */
            return error_set(errp, ERR_QEMU, "QEMU exited before its QMP socket appeared");
        }
        if (now_ms() > deadline)
            return error_set(errp, ERR_TIMEOUT, "QMP socket '%s' did not appear", path);
        struct pollfd pfd = { .fd = inotify_fd, .events = POLLIN };
        if (poll(&pfd, 1, 1) > 0) {
            char buf[4096];
            while (read(inotify_fd, buf, sizeof buf) > 0)
                ;
        }
    }
}

/* Runs the client until the greeting is read ('*t_greeting') and then until
 * capabilities are negotiated ('*t_ready'). */
static int wait_greeting_ready(struct qmp_client *c, double *t_greeting, double *t_ready,
                               struct error **errp)
{
    double deadline = now_ms() + STEP_TIMEOUT_MS;
    *t_greeting = 0;
    for (;;) {
        if (*t_greeting == 0 && qmp_client_greeting(c))
            *t_greeting = now_ms();
        if (qmp_client_ready(c)) {
            *t_ready = now_ms();
            if (*t_greeting == 0)
                *t_greeting = *t_ready;
            return 0;
        }
        if (qmp_client_closed(c))
            return error_set(errp, ERR_QEMU, "monitor closed before negotiation completed");
        double left = deadline - now_ms();
        if (left <= 0)
            return error_set(errp, ERR_TIMEOUT, "QMP negotiation did not complete");
        struct pollfd pfd = { .fd = qmp_client_fd(c), .events = POLLIN };
        if (qmp_client_want_write(c))
            pfd.events |= POLLOUT;
        poll(&pfd, 1, (int) left + 1);
        qmp_client_run(c);
    }
}

/* Waits up to 5 s for 'pid' to exit, then kills it; 'pid' <= 0: already reaped. */
static void reap(pid_t pid)
{
    if (pid <= 0)
        return;
    for (int i = 0; i < 250; i++) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return;
        usleep(20 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int one_run(int i, char **qemu_argv, const char *qmp_path, const char *log_path)
{
    AUTOCOMMAND struct command *cmd = command_new(qemu_argv[0]);
    for (size_t k = 1; qemu_argv[k]; k++)
        command_add_arg(cmd, qemu_argv[k]);
    if (log_path)
        command_set_output_file(cmd, log_path);
    unlink(qmp_path);

    AUTOERROR struct error *err = NULL;
    struct qmp_client *c = NULL;
    /* Watch the socket's directory before QEMU can create the socket. */
    AUTOCLOSE int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    AUTOFREE char *dir = xstrdup(qmp_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (ifd < 0 || inotify_add_watch(ifd, slash ? dir : ".", IN_CREATE | IN_ATTRIB) < 0) {
        fprintf(stderr, "qmp_baseline: cannot watch '%s': %s\n", dir, strerror(errno));
        return -1;
    }
    double t0 = now_ms();
    pid_t pid = command_spawn(cmd, &err);
    if (pid < 0) {
        fprintf(stderr, "qmp_baseline: %s\n", err->message);
        return -1;
    }
    int ret = -1;
    double t_sock = 0, t_greeting = 0, t_ready = 0, t_cont = 0;
    int fd = connect_fast(qmp_path, ifd, &pid, &err);
    if (fd < 0)
        goto out;
    t_sock = now_ms();
    c = qmp_client_new(fd);
    if (wait_greeting_ready(c, &t_greeting, &t_ready, &err) < 0)
        goto out;
    {
        AUTOJSON json_t *r = qmp_client_execute(c, "cont", NULL, STEP_TIMEOUT_MS, &err);
        if (!r)
            goto out;
    }
    t_cont = now_ms();
    printf("run %d sock %.3f greeting %.3f ready %.3f cont %.3f\n", i, t_sock - t0,
           t_greeting - t0, t_ready - t0, t_cont - t0);
    fflush(stdout);
    ret = 0;
out:
    if (ret < 0)
        fprintf(stderr, "qmp_baseline: run %d: %s\n", i, err ? err->message : "failed");
    if (c) {
        AUTOERROR struct error *qerr = NULL;
        json_decref(qmp_client_execute(c, "quit", NULL, 3000, &qerr));
        qmp_client_free(c);
    }
    if (ret < 0 && pid > 0)
        kill(pid, SIGKILL);
    reap(pid);
    unlink(qmp_path);
    return ret;
}

static void usage(FILE *out)
{
    fputs("Usage: qmp_baseline [--runs N] --qmp PATH [--log FILE] -- QEMU-ARGV...\n"
          "Time QEMU from spawn to QMP greeting, capabilities and `cont` answered.\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "runs", required_argument, NULL, 'n' },
        { "qmp", required_argument, NULL, 'q' },
        { "log", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int runs = 1;
    const char *qmp_path = NULL, *log_path = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            runs = atoi(optarg);
            break;
        case 'q':
            qmp_path = optarg;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!qmp_path || runs < 1 || optind >= argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_LEVEL_ERROR);   /* `quit` closing the monitor is expected */
    for (int i = 1; i <= runs; i++)
        if (one_run(i, argv + optind, qmp_path, log_path) < 0)
            return 1;
    return 0;
}
