/* qga.c - blocking guest-agent client; see qga.h for the protocol.
 *
 * Everything is poll() with a deadline on a non-blocking socket, so each call
 * honours its timeout whatever the agent does.  Unread bytes stay in 'buf'
 * between calls.  Two readers consume it: sync_wait() discards bytes up to a
 * 0xFF delimiter and tests the line after it (restarting at any later 0xFF
 * before the newline), and read_reply() takes '\n'-terminated lines, drops
 * anything before the first '{' and skips replies whose "id" is not the
 * command's.  Any timeout or oversized line clears 'synced', so the next call
 * resynchronises before it sends.
 *
 * Neighbours: qmp_sock.c (connect with retry, deadlines); qmp.c is the
 * monitor-side client. */
#define LOG_MODULE "qga"
#include "qmp/qga.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qmp/qmp_sock.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define QGA_READ_CHUNK 65536

struct qga_client {
    int fd;
    char *buf;                 /* bytes received, not consumed yet */
    size_t len;
    size_t cap;
    size_t max_line;
    unsigned long long next_id;
    bool synced;
    bool broken;               /* EOF or socket error: only free() is useful */
};

struct qga_client *qga_client_new(int fd)
{
    struct qga_client *c = xzalloc(sizeof *c);
    c->fd = fd;
    if (qmp_sock_set_nonblock(fd, true) < 0)
        LOG_WARN("cannot make guest agent socket %d non-blocking: %s", fd, strerror(errno));
    c->max_line = QGA_MAX_LINE_DEFAULT;
    c->next_id = 1;
    c->cap = QGA_READ_CHUNK;
    c->buf = xmalloc(c->cap);
    return c;
}

struct qga_client *qga_client_connect(const char *path, int timeout_ms, struct error **errp)
{
    int fd = qmp_sock_connect(path, timeout_ms, "guest agent", errp);
    if (fd < 0)
        return NULL;
    return qga_client_new(fd);
}

void qga_client_free(struct qga_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c);
}

void qga_client_set_max_line(struct qga_client *c, size_t max_line)
{
    c->max_line = max_line;
}

static void consume(struct qga_client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static int send_all(struct qga_client *c, const char *data, size_t len, long long deadline,
                    const char *command, struct error **errp)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            c->broken = true;
            return error_set_errno(errp, ERR_IO, errno,
                                   "cannot send '%s' to the guest agent", command);
        }
        struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
        int left = qmp_sock_left_ms(deadline);
        if (left == 0 || poll(&pfd, 1, left) == 0) {
            c->synced = false;
            return error_set(errp, ERR_TIMEOUT, "timed out sending '%s' to the guest agent",
                             command);
        }
    }
    return 0;
}

/* Waits for more bytes: 1 when some arrived, 0 when the deadline passed,
 * -1 on EOF or error (errp set). */
static int fill(struct qga_client *c, long long deadline, struct error **errp)
{
    for (;;) {
        if (c->cap - c->len < QGA_READ_CHUNK / 4) {
            c->cap = c->cap ? c->cap * 2 : QGA_READ_CHUNK;
            c->buf = xrealloc(c->buf, c->cap);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (n > 0) {
            c->len += (size_t) n;
            return 1;
        }
        if (n == 0) {
            c->broken = true;
            return error_set(errp, ERR_IO, "guest agent socket closed");
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            c->broken = true;
            return error_set_errno(errp, ERR_IO, errno, "cannot read from the guest agent");
        }
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        int left = qmp_sock_left_ms(deadline);
        if (left == 0)
            return 0;
        if (poll(&pfd, 1, left) == 0)
            return 0;
    }
}

static unsigned long long random_id(void)
{
    unsigned long long v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (unsigned long long) ts.tv_nsec * 2654435761u ^ (unsigned long long) getpid() << 32 ^
            (unsigned long long) ts.tv_sec;
    }
    v &= (1ull << 53) - 1;     /* exact in any JSON reader's double */
    return v ? v : 1;
}

/* Parses the JSON object in 'line' (len bytes), ignoring junk before its
 * first '{' and trailing whitespace.  Returns a new reference or NULL. */
static json_t *parse_object(const char *line, size_t len)
{
    const char *brace = memchr(line, '{', len);
    if (!brace)
        return NULL;
    len -= (size_t) (brace - line);
    while (len && (brace[len - 1] == '\r' || brace[len - 1] == ' ' || brace[len - 1] == '\t'))
        len--;
    json_t *obj = json_loadb(brace, len, 0, NULL);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* Consumes input until the delimited reply carrying 'id'. */
static int sync_wait(struct qga_client *c, unsigned long long id, long long deadline,
                     int timeout_ms, struct error **errp)
{
    for (;;) {
        char *ff = memchr(c->buf, 0xff, c->len);
        if (!ff) {
            c->len = 0;              /* all junk */
        } else {
            consume(c, (size_t) (ff - c->buf));
            char *nl = memchr(c->buf, '\n', c->len);
            if (nl) {
                const char *last = memrchr(c->buf, 0xff, (size_t) (nl - c->buf));
                size_t start = (size_t) (last - c->buf) + 1;
                AUTOJSON json_t *obj = parse_object(c->buf + start, (size_t) (nl - c->buf) - start);
                consume(c, (size_t) (nl - c->buf) + 1);
                json_t *ret = json_object_get(obj, "return");
                if (json_is_integer(ret) && (unsigned long long) json_integer_value(ret) == id) {
                    c->synced = true;
                    return 0;
                }
                LOG_DEBUG("skipping a stale delimited line while synchronising");
                continue;
            }
            if (c->len > c->max_line)
                c->len = 0;          /* a delimiter followed by junk: drop it */
        }
        int r = fill(c, deadline, errp);
        if (r < 0)
            return -1;
        if (r == 0)
            return error_set(errp, ERR_TIMEOUT, "guest agent did not answer "
                             "guest-sync-delimited within %d ms", timeout_ms);
    }
}

static int sync_until(struct qga_client *c, long long deadline, int timeout_ms,
                      struct error **errp)
{
    if (c->broken)
        return error_set(errp, ERR_IO, "guest agent socket closed");
    c->synced = false;
    unsigned long long id = random_id();
    char msg[128];
    /* The leading 0xFF makes the agent drop any partial input it holds. */
    int n = snprintf(msg, sizeof msg,
                     "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%llu}}\n",
                     id);
    if (send_all(c, msg, (size_t) n, deadline, "guest-sync-delimited", errp) < 0)
        return -1;
    return sync_wait(c, id, deadline, timeout_ms, errp);
}

int qga_sync(struct qga_client *c, int timeout_ms, struct error **errp)
{
    return sync_until(c, qmp_sock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0), timeout_ms, errp);
}

/* Sends 'command' with id "strata-<n>"; stores the id string in 'idbuf'. */
static int send_command(struct qga_client *c, const char *command, json_t *args,
                        long long deadline, int timeout_ms, char idbuf[32],
                        struct error **errp)
{
    AUTOJSON json_t *msg = json_object();
    json_object_set_new(msg, "execute", json_string(command));
    if (args)
        json_object_set_new(msg, "arguments", args);
    if (c->broken)
        return error_set(errp, ERR_IO, "guest agent socket closed");
    if (!c->synced && sync_until(c, deadline, timeout_ms, errp) < 0)
        return -1;
    snprintf(idbuf, 32, "strata-%llu", c->next_id++);
    json_object_set_new(msg, "id", json_string(idbuf));
    AUTOFREE char *text = json_dumps(msg, JSON_COMPACT);
    if (!text)
        abort();
    size_t len = strlen(text);
    AUTOFREE char *line = xmalloc(len + 1);
    memcpy(line, text, len);
    line[len] = '\n';
    return send_all(c, line, len + 1, deadline, command, errp);
}

/* Reads lines until the reply whose "id" is 'id'. */
static json_t *read_reply(struct qga_client *c, const char *command, const char *id,
                          long long deadline, int timeout_ms, struct error **errp)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl && (size_t) (nl - c->buf) > c->max_line) {
            consume(c, (size_t) (nl - c->buf) + 1);
            c->synced = false;
            return error_set(errp, ERR_TOO_LARGE, "guest agent reply to '%s' exceeds %zu bytes",
                             command, c->max_line), NULL;
        }
        if (nl) {
            AUTOJSON json_t *obj = parse_object(c->buf, (size_t) (nl - c->buf));
            consume(c, (size_t) (nl - c->buf) + 1);
            const char *rid = json_string_value(json_object_get(obj, "id"));
            if (!obj || !rid || strcmp(rid, id)) {
                LOG_DEBUG("skipping a guest agent line that is not the reply to '%s'", command);
                continue;
            }
            json_t *err = json_object_get(obj, "error");
            if (err) {
                const char *cls = json_string_value(json_object_get(err, "class"));
                const char *desc = json_string_value(json_object_get(err, "desc"));
                return error_set(errp, ERR_QEMU, "%s: %s", cls ? cls : "GenericError",
                                 desc ? desc : "(no description)"), NULL;
            }
            json_t *ret = json_object_get(obj, "return");
            return json_incref(ret ? ret : json_null());
        }
        if (c->len > c->max_line) {
            c->len = 0;
            c->synced = false;
            return error_set(errp, ERR_TOO_LARGE, "guest agent reply to '%s' exceeds %zu bytes",
                             command, c->max_line), NULL;
        }
        int r = fill(c, deadline, errp);
        if (r < 0)
            return NULL;
        if (r == 0) {
            c->synced = false;
            return error_set(errp, ERR_TIMEOUT, "guest agent command '%s' got no reply within "
                             "%d ms", command, timeout_ms), NULL;
        }
    }
}

json_t *qga_call(struct qga_client *c, const char *command, json_t *args, int timeout_ms,
                 struct error **errp)
{
    long long deadline = qmp_sock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    char id[32];
    if (send_command(c, command, args, deadline, timeout_ms, id, errp) < 0)
        return NULL;
    return read_reply(c, command, id, deadline, timeout_ms, errp);
}

int qga_call_no_reply(struct qga_client *c, const char *command, json_t *args, int timeout_ms,
                      struct error **errp)
{
    long long deadline = qmp_sock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    char id[32];
    return send_command(c, command, args, deadline, timeout_ms, id, errp);
}
