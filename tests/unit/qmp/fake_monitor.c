/* fake_monitor.c - scripted stand-in for QEMU's QMP monitor; see
 * fake_monitor.h.  The data directory comes from QMP_DATA_DIR (set by
 * tests/unit/qmp/meson.build). */
#include "fake_monitor.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

#define FAKE_READ_TIMEOUT_MS 5000

enum step_kind { STEP_SEND, STEP_SEND_EVENTS, STEP_SEND_RAW, STEP_EXPECT, STEP_EXPECT_FD, STEP_SILENT,
                 STEP_WAIT, STEP_CLOSE };

struct step {
    enum step_kind kind;
    char *command;
    char *data;                /* file name, or raw text */
};

struct fake_monitor {
    int fd;
    struct step *steps;
    size_t n_steps;
    pthread_t thread;
    bool started;
    bool joined;
    char *failure;
    int received_fd;
    json_t *commands;          /* array of the commands received */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool released;
};

/* ---- data files ---- */

static pthread_mutex_t used_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *used_names;

static void mark_used(const char *name)
{
    pthread_mutex_lock(&used_lock);
    if (!used_names)
        used_names = json_object();
    json_object_set_new(used_names, name, json_true());
    pthread_mutex_unlock(&used_lock);
}

static char *data_read(const char *name)
{
    AUTOFREE char *path = xasprintf("%s/%s.jsonl", QMP_DATA_DIR, name);
    struct error *err = NULL;
    char *text = file_read_all(path, 64 << 20, NULL, &err);
    if (!text) {
        fprintf(stderr, "fake monitor: %s\n", err->message);
        abort();
    }
    mark_used(name);
    return text;
}

char *fake_data_load(const char *name, const char *id)
{
    char *text = data_read(name);
    if (!id)
        return text;
    size_t cap = strlen(text) + 256, len = 0;
    char *out = xmalloc(cap);
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t llen = nl ? (size_t) (nl - line) + 1 : strlen(line);
        json_t *obj = json_loadb(line, llen, 0, NULL);
        char *piece = NULL;
        if (obj && json_object_get(obj, "id")) {
            json_object_set_new(obj, "id", json_string(id));
            char *dump = json_dumps(obj, 0);
            piece = xasprintf("%s\r\n", dump);
            free(dump);
        }
        json_decref(obj);
        const char *src = piece ? piece : line;
        size_t slen = piece ? strlen(piece) : llen;
        if (len + slen + 1 > cap) {
            cap = (len + slen + 1) * 2;
            out = xrealloc(out, cap);
        }
        memcpy(out + len, src, slen);
        len += slen;
        free(piece);
        line += llen;
    }
    out[len] = '\0';
    free(text);
    return out;
}

json_t *fake_data_lines(const char *name)
{
    AUTOFREE char *text = data_read(name);
    json_t *arr = json_array();
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        size_t llen = nl ? (size_t) (nl - line) : strlen(line);
        json_t *obj = json_loadb(line, llen, 0, NULL);
        if (!obj) {
            fprintf(stderr, "fake monitor: %s.jsonl has a line that is not JSON\n", name);
            abort();
        }
        json_array_append_new(arr, obj);
    }
    return arr;
}

char **fake_data_unused(void)
{
    DIR *d = opendir(QMP_DATA_DIR);
    if (!d)
        abort();
    size_t n = 0;
    char **list = xcalloc(1, sizeof *list);
    struct dirent *de;
    pthread_mutex_lock(&used_lock);
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= 6 || strcmp(de->d_name + len - 6, ".jsonl"))
            continue;
        char *name = xstrndup(de->d_name, len - 6);
        if (used_names && json_object_get(used_names, name)) {
            free(name);
            continue;
        }
        list = xrealloc(list, (n + 2) * sizeof *list);
        list[n++] = name;
        list[n] = NULL;
    }
    pthread_mutex_unlock(&used_lock);
    closedir(d);
    return list;
}

/* ---- socket helpers ---- */

bool fake_write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t) n;
    }
    return true;
}

json_t *fake_read_command(int fd, int timeout_ms, int *got_fd, char **why)
{
    size_t cap = 256, len = 0;
    AUTOFREE char *buf = xmalloc(cap);
    *got_fd = -1;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr == 0) {
            *why = xasprintf("no command within %d ms (got %zu bytes)", timeout_ms, len);
            goto fail;
        }
        char c;
        struct iovec iov = { &c, 1 };
        union {
            char buf[CMSG_SPACE(sizeof(int) * 4)];
            struct cmsghdr align;
        } control;
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                              .msg_control = control.buf, .msg_controllen = sizeof control.buf };
        ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *why = xasprintf("EOF or error while reading a command (got %zu bytes)", len);
            goto fail;
        }
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            size_t nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int fds[4];
            memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
            for (size_t i = 0; i < nfds; i++) {
                if (len == 0 && *got_fd < 0 && i == 0) {
                    *got_fd = fds[i];
                    continue;
                }
                close(fds[i]);
                *why = xasprintf("an fd arrived with byte %zu of a command, not its first", len);
                goto fail;
            }
        }
        if (len + 1 >= cap)
            buf = xrealloc(buf, cap *= 2);
        buf[len++] = c;
        if (c == '\n')
            break;
    }
    json_t *cmd = json_loadb(buf, len, 0, NULL);
    if (!cmd || !json_is_object(cmd)) {
        json_decref(cmd);
        buf[len - 1] = '\0';
        *why = xasprintf("not a JSON object: %s", buf);
        goto fail;
    }
    return cmd;
fail:
    if (*got_fd >= 0)
        close(*got_fd);
    *got_fd = -1;
    return NULL;
}

/* ---- the script ---- */

struct fake_monitor *fake_monitor_new(int *client_fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    struct fake_monitor *fm = xzalloc(sizeof *fm);
    fm->fd = sv[0];
    fm->received_fd = -1;
    fm->commands = json_array();
    pthread_mutex_init(&fm->lock, NULL);
    pthread_cond_init(&fm->cond, NULL);
    *client_fd = sv[1];
    return fm;
}

static void add_step(struct fake_monitor *fm, enum step_kind kind, const char *command,
                     const char *data)
{
    fm->steps = xrealloc(fm->steps, (fm->n_steps + 1) * sizeof *fm->steps);
    fm->steps[fm->n_steps++] = (struct step) { kind, xstrdup(command), xstrdup(data) };
}

void fake_monitor_send(struct fake_monitor *fm, const char *name)
{
    add_step(fm, STEP_SEND, NULL, name);
}

void fake_monitor_send_events(struct fake_monitor *fm, const char *name)
{
    add_step(fm, STEP_SEND_EVENTS, NULL, name);
}

void fake_monitor_send_raw(struct fake_monitor *fm, const char *text)
{
    add_step(fm, STEP_SEND_RAW, NULL, text);
}

void fake_monitor_expect(struct fake_monitor *fm, const char *command, const char *reply)
{
    add_step(fm, STEP_EXPECT, command, reply);
}

void fake_monitor_expect_fd(struct fake_monitor *fm, const char *command, const char *reply)
{
    add_step(fm, STEP_EXPECT_FD, command, reply);
}

void fake_monitor_expect_silent(struct fake_monitor *fm, const char *command)
{
    add_step(fm, STEP_SILENT, command, NULL);
}

void fake_monitor_greet(struct fake_monitor *fm)
{
    fake_monitor_send(fm, "greeting");
    fake_monitor_expect(fm, "qmp_capabilities", "qmp_capabilities");
}

void fake_monitor_wait(struct fake_monitor *fm)
{
    add_step(fm, STEP_WAIT, NULL, NULL);
}

void fake_monitor_release(struct fake_monitor *fm)
{
    pthread_mutex_lock(&fm->lock);
    fm->released = true;
    pthread_cond_broadcast(&fm->cond);
    pthread_mutex_unlock(&fm->lock);
}

void fake_monitor_close(struct fake_monitor *fm)
{
    add_step(fm, STEP_CLOSE, NULL, NULL);
}

static char *play_step(struct fake_monitor *fm, const struct step *st)
{
    switch (st->kind) {
    case STEP_SEND: {
        AUTOFREE char *text = fake_data_load(st->data, NULL);
        return fake_write_all(fm->fd, text, strlen(text)) ? NULL
               : xasprintf("cannot send '%s'", st->data);
    }
    case STEP_SEND_EVENTS: {
        AUTOJSON json_t *lines = fake_data_lines(st->data);
        size_t i;
        json_t *obj;
        json_array_foreach(lines, i, obj) {
            if (!json_object_get(obj, "event"))
                continue;
            AUTOFREE char *dump = json_dumps(obj, 0);
            AUTOFREE char *line = xasprintf("%s\r\n", dump);
            if (!fake_write_all(fm->fd, line, strlen(line)))
                return xasprintf("cannot send the events of '%s'", st->data);
        }
        return NULL;
    }
    case STEP_SEND_RAW:
        return fake_write_all(fm->fd, st->data, strlen(st->data)) ? NULL
               : xstrdup("cannot send raw text");
    case STEP_EXPECT:
    case STEP_EXPECT_FD:
    case STEP_SILENT: {
        int got_fd = -1;
        char *why = NULL;
        json_t *cmd = fake_read_command(fm->fd, FAKE_READ_TIMEOUT_MS, &got_fd, &why);
        if (!cmd) {
            char *msg = xasprintf("expecting '%s': %s", st->command, why ? why : "");
            free(why);
            return msg;
        }
        json_array_append_new(fm->commands, cmd);
        const char *name = json_string_value(json_object_get(cmd, "execute"));
        const char *id = json_string_value(json_object_get(cmd, "id"));
        if (!name || strcmp(name, st->command)) {
            if (got_fd >= 0)
                close(got_fd);
            return xasprintf("expected command '%s', got '%s'", st->command,
                             name ? name : "(none)");
        }
        if (st->kind == STEP_EXPECT_FD) {
            if (got_fd < 0)
                return xasprintf("command '%s' came without an fd on its first byte", name);
            if (fm->received_fd >= 0)
                close(fm->received_fd);
            fm->received_fd = got_fd;
        } else if (got_fd >= 0) {
            close(got_fd);
            return xasprintf("command '%s' came with an unexpected fd", name);
        }
        if (st->kind == STEP_SILENT)
            return NULL;
        if (!id)
            return xasprintf("command '%s' has no id", name);
        AUTOFREE char *text = fake_data_load(st->data, id);
        return fake_write_all(fm->fd, text, strlen(text)) ? NULL
               : xasprintf("cannot send the reply to '%s'", name);
    }
    case STEP_WAIT:
        pthread_mutex_lock(&fm->lock);
        while (!fm->released)
            pthread_cond_wait(&fm->cond, &fm->lock);
        fm->released = false;
        pthread_mutex_unlock(&fm->lock);
        return NULL;
    case STEP_CLOSE:
        shutdown(fm->fd, SHUT_RDWR);
        return NULL;
    }
    return NULL;
}

static void *script_thread(void *opaque)
{
    struct fake_monitor *fm = opaque;
    for (size_t i = 0; i < fm->n_steps; i++) {
        char *why = play_step(fm, &fm->steps[i]);
        if (why) {
            fm->failure = xasprintf("step %zu: %s", i + 1, why);
            free(why);
            shutdown(fm->fd, SHUT_RDWR);
            break;
        }
    }
    return NULL;
}

void fake_monitor_start(struct fake_monitor *fm)
{
    fm->started = true;
    if (pthread_create(&fm->thread, NULL, script_thread, fm))
        abort();
}

char *fake_monitor_finish(struct fake_monitor *fm)
{
    if (fm->started && !fm->joined) {
        pthread_join(fm->thread, NULL);
        fm->joined = true;
    }
    return xstrdup(fm->failure);
}

int fake_monitor_received_fd(const struct fake_monitor *fm)
{
    return fm->received_fd;
}

const json_t *fake_monitor_command(const struct fake_monitor *fm, size_t n)
{
    return json_array_get(fm->commands, n);
}

void fake_monitor_free(struct fake_monitor *fm)
{
    if (!fm)
        return;
    if (fm->started && !fm->joined) {
        shutdown(fm->fd, SHUT_RDWR);
        fake_monitor_release(fm);
        pthread_join(fm->thread, NULL);
    }
    close(fm->fd);
    if (fm->received_fd >= 0)
        close(fm->received_fd);
    for (size_t i = 0; i < fm->n_steps; i++) {
        free(fm->steps[i].command);
        free(fm->steps[i].data);
    }
    free(fm->steps);
    free(fm->failure);
    json_decref(fm->commands);
    pthread_cond_destroy(&fm->cond);
    pthread_mutex_destroy(&fm->lock);
    free(fm);
}
