/* qmp.c - the asynchronous QMP client behind qmp.h.
 *
 * Reading: the loop thread (the one calling qmp_client_run) is the only
 * reader.  Bytes go into a growing buffer; each '\n' ends one JSON object
 * (QEMU writes "...}\r\n"), so partial reads and several objects per read are
 * the same case.  A line longer than the limit (16 MiB by default, which
 * query-qmp-schema's ~200 KB stays far below) closes the monitor: the stream
 * cannot be trusted after it.  Each object is a greeting ({"QMP": ...}), an
 * event ({"event": ...}) or a reply carrying the "id" we gave the command.
 *
 * Writing: commands are queued as complete lines {"execute", "arguments",
 * "id": "strata-<n>"} and written with non-blocking sendmsg() by whichever
 * thread holds the lock (the loop thread in qmp_client_run, a caller of
 * qmp_client_call right after queueing).  An fd for qmp_client_call_fd() is
 * dup()ed when queued and attached with SCM_RIGHTS to the sendmsg() that
 * carries the first byte of its command, which is how QEMU associates it with
 * getfd/add-fd.  Until the greeting is read and qmp_capabilities answered,
 * user commands wait in a 'held' queue (QEMU refuses them before negotiation).
 *
 * Locking: 'lock' guards the queues, the pending list and the state flags.
 * Callbacks run on the loop thread with the lock released, so they may call
 * qmp_client_send().  A synchronous caller waits on 'cond' for its 'struct
 * qmp_sync' (on its own stack); on timeout it unlinks itself, and a late
 * reply is dropped.
 *
 * Neighbours: qmp_sock.c (connect with retry), qga.c (the guest agent's
 * simpler, blocking protocol). */
#define LOG_MODULE "qmp"
#include "qmp/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qmp/qmp_sock.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define QMP_ID_PREFIX "strata-"
#define QMP_READ_CHUNK 65536
#define QMP_READS_PER_RUN 64

/* One queued command line. */
struct qmp_out {
    struct qmp_out *next;
    unsigned long long id;
    char *data;
    size_t len;
    size_t off;                /* bytes already written */
    int fd;                    /* our dup to send with the first byte, or -1 */
};

/* A synchronous caller's slot, on the caller's stack. */
struct qmp_sync {
    bool done;
    json_t *ret;               /* new reference on success */
    struct error *err;
};

/* A command whose reply we wait for. */
struct qmp_pending {
    struct qmp_pending *next;
    unsigned long long id;
    char *command;
    qmp_reply_cb *cb;          /* async completion, or NULL */
    void *opaque;
    struct qmp_sync *sync;     /* sync completion, or NULL */
    bool negotiation;          /* our own qmp_capabilities */
};

struct qmp_out_queue {
    struct qmp_out *head;
    struct qmp_out **tail;
};

struct qmp_client {
    int fd;
    pthread_mutex_t lock;
    pthread_cond_t cond;

    /* Loop thread only. */
    char *rbuf;
    size_t rlen;               /* bytes in rbuf */
    size_t rcap;
    size_t rscan;              /* bytes of rbuf already searched for '\n' */
    size_t max_line;
    json_t *greeting;
    qmp_event_cb *on_event;
    qmp_close_cb *on_close;
    void *cb_opaque;

    /* Under 'lock'. */
    struct qmp_out_queue out;  /* may be written now */
    struct qmp_out_queue held; /* waits for negotiation */
    struct qmp_pending *pending;
    unsigned long long next_id;
    bool greeted;
    bool ready;
    bool closed;
    int write_errno;           /* a sendmsg() failure the loop has to act on */
    void (*wake)(void *opaque);
    void *wake_opaque;
    pthread_t loop_thread;
    bool loop_thread_known;
};

static void queue_init(struct qmp_out_queue *q)
{
    q->head = NULL;
    q->tail = &q->head;
}

static void queue_push(struct qmp_out_queue *q, struct qmp_out *o)
{
    o->next = NULL;
    *q->tail = o;
    q->tail = &o->next;
}

static void out_free(struct qmp_out *o)
{
    if (!o)
        return;
    if (o->fd >= 0)
        close(o->fd);
    free(o->data);
    free(o);
}

static void queue_clear(struct qmp_out_queue *q)
{
    while (q->head) {
        struct qmp_out *o = q->head;
        q->head = o->next;
        out_free(o);
    }
    q->tail = &q->head;
}

/* Removes the not-yet-started command 'id' from 'q'; true if found. */
static bool queue_remove_unsent(struct qmp_out_queue *q, unsigned long long id)
{
    for (struct qmp_out **pp = &q->head; *pp; pp = &(*pp)->next) {
        struct qmp_out *o = *pp;
        if (o->id != id)
            continue;
        if (o->off > 0)
            return false;
        *pp = o->next;
        if (q->tail == &o->next)
            q->tail = pp;
        out_free(o);
        return true;
    }
    return false;
}

static void pending_free(struct qmp_pending *p)
{
    if (!p)
        return;
    free(p->command);
    free(p);
}

static struct qmp_pending *pending_take(struct qmp_client *c, unsigned long long id)
{
    for (struct qmp_pending **pp = &c->pending; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            struct qmp_pending *p = *pp;
            *pp = p->next;
            return p;
        }
    return NULL;
}

static void lock(const struct qmp_client *c)
{
    pthread_mutex_lock((pthread_mutex_t *) &c->lock);
}

static void unlock(const struct qmp_client *c)
{
    pthread_mutex_unlock((pthread_mutex_t *) &c->lock);
}

struct qmp_client *qmp_client_new(int fd)
{
    struct qmp_client *c = xzalloc(sizeof *c);
    c->fd = fd;
    if (qmp_sock_set_nonblock(fd, true) < 0)
        LOG_WARN("cannot make QMP socket %d non-blocking: %s", fd, strerror(errno));
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    c->max_line = QMP_MAX_LINE_DEFAULT;
    c->next_id = 1;
    c->rcap = QMP_READ_CHUNK;
    c->rbuf = xmalloc(c->rcap);
    queue_init(&c->out);
    queue_init(&c->held);
    return c;
}

struct qmp_client *qmp_client_connect(const char *path, int timeout_ms, struct error **errp)
{
    int fd = qmp_sock_connect(path, timeout_ms, "QMP", errp);
    if (fd < 0)
        return NULL;
    return qmp_client_new(fd);
}

void qmp_client_set_callbacks(struct qmp_client *c, qmp_event_cb *on_event,
                              qmp_close_cb *on_close, void *opaque)
{
    c->on_event = on_event;
    c->on_close = on_close;
    c->cb_opaque = opaque;
}

void qmp_client_set_waker(struct qmp_client *c, void (*wake)(void *opaque), void *opaque)
{
    lock(c);
    c->wake = wake;
    c->wake_opaque = opaque;
    unlock(c);
}

void qmp_client_set_max_line(struct qmp_client *c, size_t max_line)
{
    c->max_line = max_line;
}

int qmp_client_fd(const struct qmp_client *c)
{
    return c->fd;
}

const json_t *qmp_client_greeting(const struct qmp_client *c)
{
    return c->greeting;
}

bool qmp_client_ready(const struct qmp_client *c)
{
    lock(c);
    bool ready = c->ready && !c->closed;
    unlock(c);
    return ready;
}

bool qmp_client_closed(const struct qmp_client *c)
{
    lock(c);
    bool closed = c->closed;
    unlock(c);
    return closed;
}

bool qmp_client_want_write(const struct qmp_client *c)
{
    lock(c);
    /* A recorded write error also asks for a run(), which reports it. */
    bool want = !c->closed && (c->write_errno != 0 || c->out.head != NULL);
    unlock(c);
    return want;
}

/* Writes queued output until the socket would block.  Called with the lock
 * held.  A failure is recorded in 'write_errno' for the loop thread. */
static void flush_locked(struct qmp_client *c)
{
    while (c->out.head && !c->closed && c->write_errno == 0) {
        struct qmp_out *o = c->out.head;
        struct iovec iov = { o->data + o->off, o->len - o->off };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } control;
        if (o->fd >= 0) {
            memset(&control, 0, sizeof control);
            msg.msg_control = control.buf;
            msg.msg_controllen = sizeof control.buf;
            struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &o->fd, sizeof(int));
        }
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                c->write_errno = errno;
            return;
        }
        if (o->fd >= 0) {          /* it went with this first chunk */
            close(o->fd);
            o->fd = -1;
        }
        o->off += (size_t) n;
        if (o->off == o->len) {
            c->out.head = o->next;
            if (!c->out.head)
                c->out.tail = &c->out.head;
            out_free(o);
        }
    }
}

/* Builds the command line and registers the pending entry.  Called with the
 * lock held; returns the id.  Takes ownership of 'args' and 'fd'. */
static unsigned long long enqueue_locked(struct qmp_client *c, const char *command, json_t *args,
                                         int fd, qmp_reply_cb *cb, void *opaque,
                                         struct qmp_sync *sync, bool negotiation)
{
    unsigned long long id = c->next_id++;
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, QMP_ID_PREFIX "%llu", id);

    AUTOJSON json_t *msg = json_object();
    json_object_set_new(msg, "execute", json_string(command));
    if (args)
        json_object_set_new(msg, "arguments", args);
    json_object_set_new(msg, "id", json_string(idbuf));
    char *text = json_dumps(msg, JSON_COMPACT);
    if (!text)
        abort();

    struct qmp_out *o = xzalloc(sizeof *o);
    o->id = id;
    o->len = strlen(text) + 1;
    o->data = xmalloc(o->len);
    memcpy(o->data, text, o->len - 1);
    o->data[o->len - 1] = '\n';
    o->fd = fd;
    free(text);

    struct qmp_pending *p = xzalloc(sizeof *p);
    p->id = id;
    p->command = xstrdup(command);
    p->cb = cb;
    p->opaque = opaque;
    p->sync = sync;
    p->negotiation = negotiation;
    p->next = c->pending;
    c->pending = p;

    LOG_DEBUG("queued '%s' as id %s%s", command, idbuf, fd >= 0 ? " with an fd" : "");
    queue_push(c->ready || negotiation ? &c->out : &c->held, o);
    return id;
}

/* Fails every pending command and marks the client closed; runs the async
 * callbacks and, if 'notify', the close callback.  Loop thread only. */
static void close_monitor(struct qmp_client *c, const char *reason, bool notify)
{
    lock(c);
    if (c->closed) {
        unlock(c);
        return;
    }
    c->closed = true;
    queue_clear(&c->out);
    queue_clear(&c->held);
    struct qmp_pending *list = c->pending;
    c->pending = NULL;
    /* Complete the synchronous callers now; keep the async ones for below. */
    struct qmp_pending *async = NULL;
    while (list) {
        struct qmp_pending *p = list;
        list = p->next;
        if (p->sync) {
            if (reason)
                error_set(&p->sync->err, ERR_QEMU, "monitor closed: %s", reason);
            else
                error_set(&p->sync->err, ERR_QEMU, "monitor closed");
            p->sync->done = true;
            pending_free(p);
        } else {
            p->next = async;
            async = p;
        }
    }
    pthread_cond_broadcast(&c->cond);
    unlock(c);

    if (reason)
        LOG_WARN("QMP monitor on fd %d closed: %s", c->fd, reason);
    else
        LOG_DEBUG("QMP monitor on fd %d closed", c->fd);
    while (async) {
        struct qmp_pending *p = async;
        async = p->next;
        if (p->cb) {
            AUTOERROR struct error *err = NULL;
            if (reason)
                error_set(&err, ERR_QEMU, "monitor closed: %s", reason);
            else
                error_set(&err, ERR_QEMU, "monitor closed");
            p->cb(NULL, err, p->opaque);
        }
        pending_free(p);
    }
    if (notify && c->on_close)
        c->on_close(c->cb_opaque);
}

static void handle_greeting(struct qmp_client *c, json_t *obj)
{
    lock(c);
    if (c->greeted) {
        unlock(c);
        LOG_RL_WARN("QMP monitor on fd %d sent a second greeting; ignored", c->fd);
        return;
    }
    c->greeted = true;
    enqueue_locked(c, "qmp_capabilities", NULL, -1, NULL, NULL, NULL, true);
    unlock(c);
    c->greeting = json_incref(obj);
}

static void handle_event(struct qmp_client *c, json_t *obj)
{
    const char *name = json_string_value(json_object_get(obj, "event"));
    if (!name) {
        LOG_RL_WARN("QMP monitor on fd %d sent an event without a name; ignored", c->fd);
        return;
    }
    json_t *ts = json_object_get(obj, "timestamp");
    double timestamp = (double) json_integer_value(json_object_get(ts, "seconds")) +
                       (double) json_integer_value(json_object_get(ts, "microseconds")) / 1e6;
    LOG_DEBUG("event %s", name);
    if (c->on_event)
        c->on_event(name, json_object_get(obj, "data"), timestamp, c->cb_opaque);
}

/* Returns our numeric id from a reply's "id", or 0 if it is not one of ours. */
static unsigned long long reply_id(const json_t *obj)
{
    const char *s = json_string_value(json_object_get(obj, "id"));
    size_t plen = strlen(QMP_ID_PREFIX);
    if (!s || strncmp(s, QMP_ID_PREFIX, plen) || !s[plen])
        return 0;
    char *end;
    errno = 0;
    unsigned long long id = strtoull(s + plen, &end, 10);
    if (errno || *end || s[plen] < '0' || s[plen] > '9')
        return 0;
    return id;
}

/* Builds ERR_QEMU "<class>: <desc>" from an error reply. */
static struct error *reply_error(const json_t *obj)
{
    json_t *e = json_object_get(obj, "error");
    const char *cls = json_string_value(json_object_get(e, "class"));
    const char *desc = json_string_value(json_object_get(e, "desc"));
    struct error *err = NULL;
    error_set(&err, ERR_QEMU, "%s: %s", cls ? cls : "GenericError",
              desc ? desc : "(no description)");
    return err;
}

/* Returns false if the reply closed the monitor. */
static bool handle_reply(struct qmp_client *c, json_t *obj)
{
    unsigned long long id = reply_id(obj);
    json_t *ret = json_object_get(obj, "return");
    bool is_error = json_object_get(obj, "error") != NULL;

    lock(c);
    struct qmp_pending *p = id ? pending_take(c, id) : NULL;
    if (!p) {
        unlock(c);
        if (is_error) {
            AUTOERROR struct error *err = reply_error(obj);
            LOG_RL_WARN("QMP monitor on fd %d: error reply to no pending command: %s", c->fd,
                        err->message);
        } else {
            LOG_DEBUG("dropping a reply to no pending command (late or foreign id)");
        }
        return true;
    }

    if (p->negotiation) {
        if (is_error) {
            unlock(c);
            AUTOERROR struct error *err = reply_error(obj);
            AUTOFREE char *reason = xasprintf("qmp_capabilities failed: %s", err->message);
            pending_free(p);
            close_monitor(c, reason, true);
            return false;
        }
        c->ready = true;
        if (c->held.head) {
            *c->out.tail = c->held.head;
            c->out.tail = c->held.tail;
            queue_init(&c->held);
        }
        unlock(c);
        pending_free(p);
        LOG_DEBUG("QMP monitor on fd %d ready", c->fd);
        return true;
    }

    if (p->sync) {
        if (is_error)
            p->sync->err = reply_error(obj);
        else
            p->sync->ret = json_incref(ret ? ret : json_null());
        p->sync->done = true;
        pthread_cond_broadcast(&c->cond);
        unlock(c);
        pending_free(p);
        return true;
    }
    unlock(c);

    if (p->cb) {
        AUTOERROR struct error *err = is_error ? reply_error(obj) : NULL;
        p->cb(err ? NULL : (ret ? ret : json_null()), err, p->opaque);
    }
    pending_free(p);
    return true;
}

/* Handles one line (without its '\n'); returns false if the monitor closed. */
static bool handle_line(struct qmp_client *c, const char *line, size_t len)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (len == 0)
        return true;
    json_error_t jerr;
    AUTOJSON json_t *obj = json_loadb(line, len, 0, &jerr);
    if (!obj || !json_is_object(obj)) {
        LOG_RL_WARN("QMP monitor on fd %d sent a line that is not a JSON object "
                    "(%zu bytes); ignored", c->fd, len);
        return true;
    }
    if (json_object_get(obj, "QMP")) {
        handle_greeting(c, obj);
        return true;
    }
    if (json_object_get(obj, "event")) {
        handle_event(c, obj);
        return !qmp_client_closed(c);
    }
    if (json_object_get(obj, "return") || json_object_get(obj, "error"))
        return handle_reply(c, obj) && !qmp_client_closed(c);
    LOG_RL_WARN("QMP monitor on fd %d sent an object that is neither greeting, event nor "
                "reply; ignored", c->fd);
    return true;
}

/* Splits the buffer into lines and handles them; returns false if the
 * monitor closed. */
static bool process_input(struct qmp_client *c)
{
    size_t start = 0;
    for (;;) {
        char *nl = memchr(c->rbuf + c->rscan, '\n', c->rlen - c->rscan);
        if (!nl) {
            c->rscan = c->rlen;
            break;
        }
        size_t end = (size_t) (nl - c->rbuf);
        c->rscan = end + 1;
        if (end - start > c->max_line) {
            AUTOFREE char *reason = xasprintf("QMP line of %zu bytes exceeds the limit of %zu "
                                              "bytes", end - start, c->max_line);
            close_monitor(c, reason, true);
            return false;
        }
        if (!handle_line(c, c->rbuf + start, end - start))
            return false;
        start = end + 1;
    }
    if (start > 0) {
        memmove(c->rbuf, c->rbuf + start, c->rlen - start);
        c->rlen -= start;
        c->rscan -= start;
    }
    if (c->rlen > c->max_line) {
        AUTOFREE char *reason = xasprintf("QMP line exceeds the limit of %zu bytes",
                                          c->max_line);
        close_monitor(c, reason, true);
        return false;
    }
    return true;
}

int qmp_client_run(struct qmp_client *c)
{
    lock(c);
    if (c->closed) {
        unlock(c);
        return -1;
    }
    c->loop_thread = pthread_self();
    c->loop_thread_known = true;
    unlock(c);

    for (int i = 0; i < QMP_READS_PER_RUN; i++) {
        if (c->rcap - c->rlen < QMP_READ_CHUNK / 4) {
            c->rcap = c->rcap ? c->rcap * 2 : QMP_READ_CHUNK;
            c->rbuf = xrealloc(c->rbuf, c->rcap);
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
        if (n > 0) {
            c->rlen += (size_t) n;
            if (!process_input(c))
                return -1;
            continue;
        }
        if (n == 0) {
            close_monitor(c, NULL, true);
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        AUTOFREE char *reason = xasprintf("read failed: %s", strerror(errno));
        close_monitor(c, reason, true);
        return -1;
    }

    lock(c);
    flush_locked(c);
    int werr = c->write_errno;
    unlock(c);
    if (werr) {
        AUTOFREE char *reason = xasprintf("write failed: %s", strerror(werr));
        close_monitor(c, reason, true);
        return -1;
    }
    return 0;
}

void qmp_client_send(struct qmp_client *c, const char *command, json_t *args,
                     qmp_reply_cb *cb, void *opaque)
{
    lock(c);
    if (c->closed) {
        unlock(c);
        json_decref(args);
        if (cb) {
            AUTOERROR struct error *err = NULL;
            error_set(&err, ERR_QEMU, "monitor closed");
            cb(NULL, err, opaque);
        }
        return;
    }
    enqueue_locked(c, command, args, -1, cb, opaque, NULL, false);
    flush_locked(c);
    unlock(c);
}

static json_t *call_common(struct qmp_client *c, const char *command, json_t *args, int fd,
                           int timeout_ms, struct error **errp)
{
    int dupfd = -1;
    if (fd >= 0) {
        dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dupfd < 0) {
            json_decref(args);
            return error_set_errno(errp, ERR_IO, errno,
                                   "cannot duplicate fd %d for QMP command '%s'", fd,
                                   command), NULL;
        }
    }

    struct qmp_sync sync = { 0 };
    lock(c);
    if (c->loop_thread_known && pthread_equal(c->loop_thread, pthread_self())) {
        unlock(c);
        json_decref(args);
        if (dupfd >= 0)
            close(dupfd);
        return error_set(errp, ERR_INTERNAL, "QMP command '%s' called synchronously from the "
                         "monitor's loop thread", command), NULL;
    }
    if (c->closed) {
        unlock(c);
        json_decref(args);
        if (dupfd >= 0)
            close(dupfd);
        return error_set(errp, ERR_QEMU, "monitor closed"), NULL;
    }
    unsigned long long id = enqueue_locked(c, command, args, dupfd, NULL, NULL, &sync, false);
    flush_locked(c);
    void (*wake)(void *) = c->wake;
    void *wake_opaque = c->wake_opaque;
    unlock(c);
    if (wake)
        wake(wake_opaque);

    int wait_ms = timeout_ms > 0 ? timeout_ms : 0;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    long long nsec = deadline.tv_nsec + (long long) (wait_ms % 1000) * 1000000;
    deadline.tv_sec += wait_ms / 1000 + nsec / 1000000000;
    deadline.tv_nsec = nsec % 1000000000;

    lock(c);
    while (!sync.done) {
        int rc = pthread_cond_timedwait(&c->cond, &c->lock, &deadline);
        if (rc == ETIMEDOUT && !sync.done) {
            struct qmp_pending *p = pending_take(c, id);
            if (p) {
                /* Unsent: drop it.  Sent: QEMU still runs it; forget the reply. */
                if (!queue_remove_unsent(&c->out, id))
                    queue_remove_unsent(&c->held, id);
                pending_free(p);
            }
            unlock(c);
            return error_set(errp, ERR_TIMEOUT, "QMP command '%s' got no reply within %d ms",
                             command, timeout_ms), NULL;
        }
    }
    unlock(c);
    if (sync.err) {
        error_propagate(errp, sync.err);
        return NULL;
    }
    return sync.ret;
}

json_t *qmp_client_call(struct qmp_client *c, const char *command, json_t *args,
                        int timeout_ms, struct error **errp)
{
    return call_common(c, command, args, -1, timeout_ms, errp);
}

json_t *qmp_client_call_fd(struct qmp_client *c, const char *command, json_t *args,
                           int fd, int timeout_ms, struct error **errp)
{
    if (fd < 0) {
        json_decref(args);
        return error_set(errp, ERR_INVALID_ARG, "QMP command '%s' needs an fd, got %d",
                         command, fd), NULL;
    }
    return call_common(c, command, args, fd, timeout_ms, errp);
}

/* Polls the socket and runs the client once; returns -1 once closed. */
static int run_once(struct qmp_client *c, int wait_ms)
{
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
    if (qmp_client_want_write(c))
        pfd.events |= POLLOUT;
    int n = poll(&pfd, 1, wait_ms);
    if (n < 0 && errno != EINTR)
        LOG_RL_WARN("poll on QMP socket %d failed: %s", c->fd, strerror(errno));
    return qmp_client_run(c);
}

int qmp_client_wait_ready(struct qmp_client *c, int timeout_ms, struct error **errp)
{
    long long deadline = qmp_sock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (qmp_client_ready(c))
            return 0;
        if (qmp_client_closed(c))
            return error_set(errp, ERR_QEMU, "monitor closed before negotiation completed");
        int left = qmp_sock_left_ms(deadline);
        if (left == 0)
            return error_set(errp, ERR_TIMEOUT, "QMP negotiation did not complete within %d ms",
                             timeout_ms);
        run_once(c, left);
    }
}

struct execute_result {
    bool done;
    json_t *ret;
    struct error *err;
};

static void execute_done(const json_t *ret, const struct error *err, void *opaque)
{
    struct execute_result *r = opaque;
    r->done = true;
    if (err)
        error_set(&r->err, err->code, "%s", err->message);
    else
        r->ret = json_incref((json_t *) ret);
}

json_t *qmp_client_execute(struct qmp_client *c, const char *command, json_t *args,
                           int timeout_ms, struct error **errp)
{
    struct execute_result *r = xzalloc(sizeof *r);
    qmp_client_send(c, command, args, execute_done, r);
    long long deadline = qmp_sock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    while (!r->done) {
        int left = qmp_sock_left_ms(deadline);
        if (left == 0) {
            /* Detach 'r' from the pending entry; a late reply is dropped. */
            lock(c);
            for (struct qmp_pending *p = c->pending; p; p = p->next)
                if (p->opaque == r && p->cb == execute_done) {
                    p->cb = NULL;
                    p->opaque = NULL;
                }
            unlock(c);
            free(r);
            return error_set(errp, ERR_TIMEOUT, "QMP command '%s' got no reply within %d ms",
                             command, timeout_ms), NULL;
        }
        run_once(c, left);
    }
    json_t *ret = r->ret;
    if (r->err)
        error_propagate(errp, r->err);
    free(r);
    return ret;
}

void qmp_client_free(struct qmp_client *c)
{
    if (!c)
        return;
    close_monitor(c, NULL, false);
    if (c->fd >= 0)
        close(c->fd);
    json_decref(c->greeting);
    free(c->rbuf);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
