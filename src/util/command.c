/* command.c - see command.h. */
#include "util/command.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/mem.h"

struct command {
    char **argv;
    size_t argc, argv_cap;
    char **env;
    size_t envc;
    int *keep_fds;
    size_t n_keep;
    char *output_file;
    unsigned long long as_limit;
    unsigned cpu_limit;
    int timeout_ms;
};

static command_dry_run_fn dry_run_fn;
static void *dry_run_opaque;

void command_set_dry_run(command_dry_run_fn fn, void *opaque)
{
    dry_run_fn = fn;
    dry_run_opaque = opaque;
}

struct command *command_new(const char *program)
{
    struct command *cmd = xzalloc(sizeof *cmd);
    cmd->argv_cap = 16;
    cmd->argv = xcalloc(cmd->argv_cap, sizeof *cmd->argv);
    cmd->env = xcalloc(4, sizeof *cmd->env);
    cmd->env[cmd->envc++] = xstrdup("LC_ALL=C");
    cmd->env[cmd->envc++] = xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    command_add_arg(cmd, program);
    return cmd;
}

void command_free(struct command *cmd)
{
    if (!cmd)
        return;
    for (size_t i = 0; i < cmd->argc; i++)
        free(cmd->argv[i]);
    free(cmd->argv);
    for (size_t i = 0; i < cmd->envc; i++)
        free(cmd->env[i]);
    free(cmd->env);
    free(cmd->keep_fds);
    free(cmd->output_file);
    free(cmd);
}

void command_add_arg(struct command *cmd, const char *arg)
{
    if (cmd->argc + 2 > cmd->argv_cap) {
        cmd->argv_cap *= 2;
        cmd->argv = xrealloc(cmd->argv, cmd->argv_cap * sizeof *cmd->argv);
    }
    cmd->argv[cmd->argc++] = xstrdup(arg);
    cmd->argv[cmd->argc] = NULL;
}

void command_add_argf(struct command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    AUTOFREE char *s = xvasprintf(fmt, ap);
    va_end(ap);
    command_add_arg(cmd, s);
}

void command_add_args(struct command *cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    const char *a;
    while ((a = va_arg(ap, const char *)))
        command_add_arg(cmd, a);
    va_end(ap);
}

void command_add_env(struct command *cmd, const char *name, const char *value)
{
    cmd->env = xrealloc(cmd->env, (cmd->envc + 2) * sizeof *cmd->env);
    cmd->env[cmd->envc++] = xasprintf("%s=%s", name, value);
    cmd->env[cmd->envc] = NULL;
}

void command_keep_fd(struct command *cmd, int fd)
{
    cmd->keep_fds = xrealloc(cmd->keep_fds, (cmd->n_keep + 1) * sizeof(int));
    cmd->keep_fds[cmd->n_keep++] = fd;
}

void command_set_output_file(struct command *cmd, const char *path)
{
    free(cmd->output_file);
    cmd->output_file = xstrdup(path);
}

void command_set_limits(struct command *cmd, unsigned long long as_bytes, unsigned cpu_s)
{
    cmd->as_limit = as_bytes;
    cmd->cpu_limit = cpu_s;
}

void command_set_timeout(struct command *cmd, int ms) { cmd->timeout_ms = ms; }

char *const *command_argv(const struct command *cmd) { return cmd->argv; }

char *command_to_string(const struct command *cmd)
{
    size_t cap = 64, len = 0;
    char *s = xmalloc(cap);
    s[0] = '\0';
    for (size_t i = 0; i < cmd->argc; i++) {
        const char *a = cmd->argv[i];
        bool quote = !*a || strpbrk(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") != NULL;
        size_t need = len + strlen(a) * 4 + 4;
        if (need > cap) {
            cap = need * 2;
            s = xrealloc(s, cap);
        }
        if (i)
            s[len++] = ' ';
        if (quote)
            s[len++] = '\'';
        for (const char *p = a; *p; p++) {
            if (*p == '\'' && quote) {
                memcpy(s + len, "'\\''", 4);
                len += 4;
            } else {
                s[len++] = *p;
            }
        }
        if (quote)
            s[len++] = '\'';
        s[len] = '\0';
    }
    return s;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *) a - *(const int *) b;
}

/* Runs in the child after fork: async-signal-safe calls only. */
static void child_exec(struct command *cmd, int out_fd, int err_fd, int report_fd)
{
    int nullfd = open("/dev/null", O_RDWR);
    if (nullfd < 0)
        goto fail;
    if (dup2(nullfd, 0) < 0 || dup2(out_fd >= 0 ? out_fd : nullfd, 1) < 0
        || dup2(err_fd >= 0 ? err_fd : nullfd, 2) < 0)
        goto fail;
    /* Close everything above 2 except the kept fds and the report pipe
     * ('cmd->keep_fds' was sorted, with the report fd merged in, before fork). */
    int lo = 3;
    for (size_t i = 0; i < cmd->n_keep; i++) {
        int k = cmd->keep_fds[i];
        if (k < lo)
            continue;
        if (k > lo)
            close_range((unsigned) lo, (unsigned) k - 1, 0);
        if (k != report_fd) {
            int fl = fcntl(k, F_GETFD);
            if (fl >= 0)
                fcntl(k, F_SETFD, fl & ~FD_CLOEXEC);
        }
        lo = k + 1;
    }
    close_range((unsigned) lo, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (cmd->as_limit) {
        struct rlimit rl = { cmd->as_limit, cmd->as_limit };
        setrlimit(RLIMIT_AS, &rl);
    }
    if (cmd->cpu_limit) {
        struct rlimit rl = { cmd->cpu_limit, cmd->cpu_limit };
        setrlimit(RLIMIT_CPU, &rl);
    }
    execve(cmd->argv[0][0] == '/' ? cmd->argv[0] : cmd->argv[0], cmd->argv, cmd->env);
    if (cmd->argv[0][0] != '/') {
        /* Search the fixed PATH ourselves (execvpe would read our environ). */
        static const char *const dirs[] = { "/usr/local/sbin/", "/usr/local/bin/", "/usr/sbin/",
                                            "/usr/bin/", "/sbin/", "/bin/" };
        char path[4096];
        for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
            size_t dl = strlen(dirs[i]), al = strlen(cmd->argv[0]);
            if (dl + al + 1 > sizeof path)
                continue;
            memcpy(path, dirs[i], dl);
            memcpy(path + dl, cmd->argv[0], al + 1);
            execve(path, cmd->argv, cmd->env);
        }
    }
fail:;
    int e = errno;
    if (write(report_fd, &e, sizeof e) < 0) {
        /* nothing to do */
    }
    _exit(127);
}

static pid_t do_fork(struct command *cmd, int out_fd, int err_fd, bool new_session,
                     struct error **errp)
{
    int rp[2];
    if (pipe2(rp, O_CLOEXEC) < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot create pipe");
    command_keep_fd(cmd, rp[1]);
    qsort(cmd->keep_fds, cmd->n_keep, sizeof(int), cmp_int);
    pid_t pid = fork();
    if (pid < 0) {
        close(rp[0]);
        close(rp[1]);
        return error_set_errno(errp, ERR_IO, errno, "cannot fork for '%s'", cmd->argv[0]);
    }
    if (pid == 0) {
        close(rp[0]);
        if (new_session)
            setsid();
        child_exec(cmd, out_fd, err_fd, rp[1]);
    }
    close(rp[1]);
    /* Forget the report fd again so the command can be run twice. */
    for (size_t i = 0; i < cmd->n_keep; i++)
        if (cmd->keep_fds[i] == rp[1]) {
            memmove(cmd->keep_fds + i, cmd->keep_fds + i + 1,
                    (cmd->n_keep - i - 1) * sizeof(int));
            cmd->n_keep--;
            break;
        }
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(rp[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(rp[0]);
    if (n == sizeof child_errno) {
        waitpid(pid, NULL, 0);
        return error_set_errno(errp, ERR_IO, child_errno, "cannot execute '%s'", cmd->argv[0]);
    }
    return pid;
}

pid_t command_spawn(struct command *cmd, struct error **errp)
{
    int out = -1;
    if (cmd->output_file) {
        out = open(cmd->output_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (out < 0)
            return error_set_errno(errp, ERR_IO, errno, "cannot open '%s'", cmd->output_file);
    }
    pid_t pid = do_fork(cmd, out, out, true, errp);
    if (out >= 0)
        close(out);
    return pid;
}

struct growbuf {
    char *data;
    size_t len, cap;
};

static void growbuf_read(struct growbuf *b, int fd, bool *open_)
{
    if (b->cap - b->len < 4096) {
        b->cap = b->cap ? b->cap * 2 : 8192;
        b->data = xrealloc(b->data, b->cap);
    }
    ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
    if (n > 0)
        b->len += (size_t) n;
    else if (n == 0 || (errno != EINTR && errno != EAGAIN))
        *open_ = false;
    if (b->data)
        b->data[b->len] = '\0';
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int command_run(struct command *cmd, int *exit_status, char **out, char **err_out,
                struct error **errp)
{
    if (dry_run_fn) {
        char *o = NULL;
        int st = dry_run_fn(cmd->argv, &o, dry_run_opaque);
        if (out)
            *out = o ? o : xstrdup("");
        else
            free(o);
        if (err_out)
            *err_out = xstrdup("");
        if (exit_status) {
            *exit_status = st;
            return 0;
        }
        if (st != 0)
            return error_set(errp, ERR_IO, "'%s' failed with exit status %d", cmd->argv[0], st);
        return 0;
    }

    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot create pipe");
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]);
        close(po[1]);
        return error_set_errno(errp, ERR_IO, errno, "cannot create pipe");
    }
    pid_t pid = do_fork(cmd, po[1], pe[1], false, errp);
    close(po[1]);
    close(pe[1]);
    if (pid < 0) {
        close(po[0]);
        close(pe[0]);
        return -1;
    }
    struct growbuf bo = { 0 }, be = { 0 };
    bool oo = true, eo = true, timed_out = false;
    long long deadline = cmd->timeout_ms > 0 ? now_ms() + cmd->timeout_ms : 0;
    while (oo || eo) {
        struct pollfd pfd[2] = { { oo ? po[0] : -1, POLLIN, 0 }, { eo ? pe[0] : -1, POLLIN, 0 } };
        int wait = -1;
        if (deadline) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                kill(pid, SIGKILL);
                timed_out = true;
                break;
            }
            wait = (int) left;
        }
        int r = poll(pfd, 2, wait);
        if (r < 0 && errno != EINTR)
            break;
        if (pfd[0].revents)
            growbuf_read(&bo, po[0], &oo);
        if (pfd[1].revents)
            growbuf_read(&be, pe[0], &eo);
    }
    close(po[0]);
    close(pe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char *so = bo.data ? bo.data : xstrdup("");
    char *se = be.data ? be.data : xstrdup("");
    int ret = 0;
    if (timed_out) {
        ret = error_set(errp, ERR_TIMEOUT, "'%s' timed out after %d ms", cmd->argv[0],
                        cmd->timeout_ms);
    } else if (exit_status) {
        *exit_status = code;
    } else if (code != 0) {
        size_t l = strlen(se);
        while (l && (se[l - 1] == '\n' || se[l - 1] == '\r'))
            se[--l] = '\0';
        for (char *p = se; *p; p++)
            if (*p == '\n')
                *p = ' ';
        ret = error_set(errp, ERR_IO, "'%s' failed with exit status %d: %s", cmd->argv[0],
                        code, se);
    }
    if (out)
        *out = so;
    else
        free(so);
    if (err_out)
        *err_out = se;
    else
        free(se);
    return ret;
}
