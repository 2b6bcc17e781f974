/* test_qmp.c - unit tests of the QMP client (src/qmp/qmp.c) against the
 * scripted fake monitor (fake_monitor.c) and captured QEMU 7.2 replies
 * (tests/data/qmp).  Covers negotiation, id matching with interleaved events,
 * byte-by-byte splits, several objects per read, error replies, close with
 * pending commands, calls from a second thread, timeouts, fd passing, the
 * line-length limit, the schema check of every command Strata sends, and a
 * replay of every captured exchange (an unused data file fails the suite). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_monitor.h"
#include "qmp/qmp.h"
#include "util/json_util.h"
#include "util/mem.h"

/* Every QMP command the Strata code may send; each must exist in QEMU 7.2's
 * query-qmp-schema.  Add a command here before sending it anywhere. */
static const char *const strata_commands[] = {
    "qmp_capabilities", "query-status", "stop", "cont", "system_powerdown", "system_reset",
    "quit", "query-cpus-fast", "query-hotpluggable-cpus", "device_add", "device_del",
    "object-add", "object-del", "blockdev-add", "blockdev-del", "netdev_add", "netdev_del",
    "balloon", "query-balloon", "query-memory-devices", "query-memory-size-summary",
    "query-block", "query-blockstats", "blockdev-change-medium", "blockdev-remove-medium",
    "eject", "getfd", "closefd", "migrate", "migrate-set-capabilities",
    "migrate-set-parameters", "query-migrate", "migrate-incoming", "block_resize",
    "blockdev-snapshot-sync", "blockdev-snapshot", "block-commit", "block-stream",
    "blockdev-mirror", "block-job-complete", "block-job-cancel", "job-dismiss", "query-jobs",
    "query-named-block-nodes", "set_password", "query-vnc", "human-monitor-command",
    "qom-get", "qom-list", "query-chardev", "add-fd",
};

/* ---- recording callbacks ---- */

struct recorder {
    json_t *events;            /* array of event names */
    int closes;
    json_t *replies;           /* array of {"ret": ...} or {"error": "..."} */
};

static void rec_init(struct recorder *r)
{
    r->events = json_array();
    r->replies = json_array();
    r->closes = 0;
}

static void rec_done(struct recorder *r)
{
    json_decref(r->events);
    json_decref(r->replies);
}

static void on_event(const char *event, const json_t *data, double timestamp, void *opaque)
{
    struct recorder *r = opaque;
    (void) data;
    assert_true(timestamp >= 0);
    json_array_append_new(r->events, json_string(event));
}

static void on_close(void *opaque)
{
    struct recorder *r = opaque;
    r->closes++;
}

static void on_reply(const json_t *ret, const struct error *err, void *opaque)
{
    struct recorder *r = opaque;
    if (err) {
        assert_null(ret);
        assert_int_equal(err->code, ERR_QEMU);
        json_array_append_new(r->replies, json_pack("{ss}", "error", err->message));
    } else {
        assert_non_null(ret);
        json_array_append_new(r->replies, json_pack("{sO}", "ret", (json_t *) ret));
    }
}

static struct qmp_client *new_client(int fd, struct recorder *r)
{
    struct qmp_client *c = qmp_client_new(fd);
    qmp_client_set_callbacks(c, on_event, on_close, r);
    return c;
}

/* Runs the client on this thread until 'n' replies were recorded. */
static void run_until_replies(struct qmp_client *c, struct recorder *r, size_t n)
{
    for (int i = 0; i < 500 && json_array_size(r->replies) < n; i++) {
        struct pollfd pfd = { .fd = qmp_client_fd(c), .events = POLLIN };
        if (qmp_client_want_write(c))
            pfd.events |= POLLOUT;
        poll(&pfd, 1, 10);
        if (qmp_client_run(c) < 0)
            break;
    }
    assert_int_equal(json_array_size(r->replies), n);
}

static void assert_script_ok(struct fake_monitor *fm)
{
    AUTOFREE char *why = fake_monitor_finish(fm);
    if (why)
        fail_msg("fake monitor: %s", why);
}

/* ---- a loop on the test thread, woken through a pipe ---- */

struct loop {
    struct qmp_client *c;
    int wake[2];
    volatile int stop;         /* set by other threads, then woken */
};

static void loop_wake(void *opaque)
{
    struct loop *l = opaque;
    char b = 1;
    if (write(l->wake[1], &b, 1) < 0 && errno != EAGAIN)
        abort();
}

static void loop_init(struct loop *l, struct qmp_client *c)
{
    l->c = c;
    l->stop = 0;
    if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) < 0)
        abort();
    qmp_client_set_waker(c, loop_wake, l);
}

/* Runs until 'stop' is set or the monitor closes; returns the last run(). */
static int loop_run(struct loop *l, int limit_ms)
{
    int rc = 0;
    for (int waited = 0; !__atomic_load_n(&l->stop, __ATOMIC_SEQ_CST) && waited < limit_ms;
         waited += 10) {
        struct pollfd pfd[2] = { { .fd = qmp_client_fd(l->c), .events = POLLIN },
                                 { .fd = l->wake[0], .events = POLLIN } };
        if (qmp_client_want_write(l->c))
            pfd[0].events |= POLLOUT;
        poll(pfd, 2, 10);
        char buf[64];
        while (read(l->wake[0], buf, sizeof buf) > 0)
            ;
        rc = qmp_client_run(l->c);
        if (rc < 0)
            break;
    }
    return rc;
}

static void loop_done(struct loop *l)
{
    close(l->wake[0]);
    close(l->wake[1]);
}

static void loop_stop(struct loop *l)
{
    __atomic_store_n(&l->stop, 1, __ATOMIC_SEQ_CST);
    loop_wake(l);
}

/* ---- tests ---- */

static void test_negotiation(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_greet(fm);
    fake_monitor_start(fm);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    assert_false(qmp_client_ready(c));
    assert_null(qmp_client_greeting(c));
    AUTOERROR struct error *err = NULL;
    assert_int_equal(qmp_client_wait_ready(c, 5000, &err), 0);
    assert_true(qmp_client_ready(c));
    assert_false(qmp_client_closed(c));
    const json_t *g = qmp_client_greeting(c);
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(json_object_get(json_object_get(g, "QMP"), "version"), "qemu"),
        "major")), 7);
    assert_script_ok(fm);
    const json_t *caps = fake_monitor_command(fm, 0);
    assert_string_equal(json_string_value(json_object_get(caps, "id")), "strata-1");
    assert_null(json_object_get(caps, "arguments"));
    assert_int_equal(json_array_size(r.events), 0);
    qmp_client_free(c);
    fake_monitor_free(fm);
    rec_done(&r);
}

static void test_commands_held_until_ready(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_wait(fm);
    fake_monitor_greet(fm);
    fake_monitor_expect(fm, "query-status", "query-status-prelaunch");
    fake_monitor_start(fm);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    qmp_client_send(c, "query-status", NULL, on_reply, &r);
    assert_int_equal(qmp_client_run(c), 0);
    fake_monitor_release(fm);
    run_until_replies(c, &r, 1);
    json_t *ret = json_object_get(json_array_get(r.replies, 0), "ret");
    assert_string_equal(json_string_value(json_object_get(ret, "status")), "prelaunch");
    assert_script_ok(fm);
    /* qmp_capabilities went first even though query-status was queued first. */
    assert_string_equal(json_string_value(json_object_get(fake_monitor_command(fm, 0),
                                                          "execute")), "qmp_capabilities");
    qmp_client_free(c);
    fake_monitor_free(fm);
    rec_done(&r);
}

static void test_reply_matching_with_events(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_greet(fm);
    fake_monitor_expect(fm, "cont", "cont");                  /* RESUME, then reply */
    fake_monitor_expect(fm, "stop", "stop");                  /* STOP, then reply */
    fake_monitor_expect(fm, "device_del", "device_del");      /* reply, DEVICE_DELETED */
    fake_monitor_expect(fm, "blockdev-create", "blockdev-create");
    /* Out of order: the replies to strata-7 and strata-6 swapped. */
    fake_monitor_expect_silent(fm, "query-status");
    fake_monitor_expect_silent(fm, "query-balloon");
    fake_monitor_send_raw(fm, "{\"return\": {\"actual\": 1}, \"id\": \"strata-7\"}\r\n"
                              "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
                              "\"event\": \"BALLOON_CHANGE\", \"data\": {\"actual\": 1}}\r\n"
                              "{\"return\": {\"status\": \"paused\", \"running\": false}, "
                              "\"id\": \"strata-6\"}\r\n"
                              "{\"return\": {}, \"id\": \"strata-999\"}\r\n");
    fake_monitor_expect(fm, "query-block", "query-block");
    fake_monitor_start(fm);

    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    assert_int_equal(qmp_client_wait_ready(c, 5000, NULL), 0);
    qmp_client_send(c, "cont", NULL, on_reply, &r);
    qmp_client_send(c, "stop", NULL, on_reply, &r);
    qmp_client_send(c, "device_del", json_pack("{ss}", "id", "qgaport"), on_reply, &r);
    qmp_client_send(c, "blockdev-create", json_pack("{ss}", "job-id", "create0"), on_reply, &r);
    qmp_client_send(c, "query-status", NULL, on_reply, &r);
    qmp_client_send(c, "query-balloon", NULL, on_reply, &r);
    qmp_client_send(c, "query-block", NULL, on_reply, &r);
    run_until_replies(c, &r, 7);
    for (int i = 0; i < 100 && json_array_size(r.events) < 9; i++) {
        struct pollfd pfd = { .fd = qmp_client_fd(c), .events = POLLIN };
        poll(&pfd, 1, 10);
        qmp_client_run(c);
    }
    assert_script_ok(fm);

    AUTOFREE char *events = json_to_string(r.events);
    assert_string_equal(events, "[\"RESUME\",\"STOP\",\"DEVICE_DELETED\","
                        "\"JOB_STATUS_CHANGE\",\"JOB_STATUS_CHANGE\",\"JOB_STATUS_CHANGE\","
                        "\"JOB_STATUS_CHANGE\",\"JOB_STATUS_CHANGE\",\"BALLOON_CHANGE\"]");
    /* Replies in completion order: cont, stop, device_del, blockdev-create,
     * query-balloon (strata-7) before query-status (strata-6), query-block. */
    json_t *bal = json_object_get(json_array_get(r.replies, 4), "ret");
    assert_int_equal(json_integer_value(json_object_get(bal, "actual")), 1);
    json_t *st = json_object_get(json_array_get(r.replies, 5), "ret");
    assert_string_equal(json_string_value(json_object_get(st, "status")), "paused");
    json_t *blk = json_object_get(json_array_get(r.replies, 6), "ret");
    assert_true(json_is_array(blk));
    assert_int_equal(json_array_size(blk), 2);
    /* Ids are strata-<n> in sending order, arguments passed through. */
    const json_t *dd = fake_monitor_command(fm, 3);
    assert_string_equal(json_string_value(json_object_get(dd, "id")), "strata-4");
    assert_string_equal(json_string_value(json_object_get(json_object_get(dd, "arguments"),
                                                          "id")), "qgaport");
    qmp_client_free(c);
    fake_monitor_free(fm);
    rec_done(&r);
}

/* Feeds 'text' to the client in two writes split at 'k'. */
static void feed_split(int qemu_fd, struct qmp_client *c, const char *text, size_t k)
{
    assert_true(fake_write_all(qemu_fd, text, k));
    assert_int_equal(qmp_client_run(c), 0);
    assert_true(fake_write_all(qemu_fd, text + k, strlen(text) - k));
    assert_int_equal(qmp_client_run(c), 0);
}

static json_t *expect_command(int qemu_fd, const char *name)
{
    int got_fd;
    char *why = NULL;
    json_t *cmd = fake_read_command(qemu_fd, 2000, &got_fd, &why);
    if (!cmd)
        fail_msg("%s", why);
    assert_int_equal(got_fd, -1);
    assert_string_equal(json_string_value(json_object_get(cmd, "execute")), name);
    return cmd;
}

static void test_split_at_every_byte(void **state)
{
    (void) state;
    AUTOFREE char *greeting = fake_data_load("greeting", NULL);
    AUTOFREE char *caps = fake_data_load("qmp_capabilities", "strata-1");
    AUTOFREE char *stop = fake_data_load("stop", "strata-2");   /* STOP event + reply */
    AUTOFREE char *tail = xasprintf("%s%s", caps, stop);

    for (size_t k = 0; k <= strlen(greeting); k++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct recorder r;
        rec_init(&r);
        struct qmp_client *c = new_client(sv[1], &r);
        feed_split(sv[0], c, greeting, k);
        json_decref(expect_command(sv[0], "qmp_capabilities"));
        assert_non_null(qmp_client_greeting(c));
        qmp_client_free(c);
        close(sv[0]);
        rec_done(&r);
    }
    for (size_t k = 0; k <= strlen(tail); k++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct recorder r;
        rec_init(&r);
        struct qmp_client *c = new_client(sv[1], &r);
        assert_true(fake_write_all(sv[0], greeting, strlen(greeting)));
        assert_int_equal(qmp_client_run(c), 0);
        json_decref(expect_command(sv[0], "qmp_capabilities"));
        /* Held until negotiation completes, but already waiting for its id. */
        qmp_client_send(c, "stop", NULL, on_reply, &r);
        feed_split(sv[0], c, tail, k);
        assert_true(qmp_client_ready(c));
        json_decref(expect_command(sv[0], "stop"));
        assert_int_equal(json_array_size(r.events), 1);
        assert_int_equal(json_array_size(r.replies), 1);
        assert_non_null(json_object_get(json_array_get(r.replies, 0), "ret"));
        qmp_client_free(c);
        close(sv[0]);
        rec_done(&r);
    }
}

static void test_several_objects_in_one_read(void **state)
{
    (void) state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(sv[1], &r);
    qmp_client_send(c, "query-status", NULL, on_reply, &r);
    qmp_client_send(c, "query-block", NULL, on_reply, &r);
    AUTOFREE char *greeting = fake_data_load("greeting", NULL);
    assert_true(fake_write_all(sv[0], greeting, strlen(greeting)));
    assert_int_equal(qmp_client_run(c), 0);
    json_decref(expect_command(sv[0], "qmp_capabilities"));
    AUTOFREE char *caps = fake_data_load("qmp_capabilities", "strata-1");
    AUTOFREE char *cont = fake_data_load("cont", "strata-99");
    AUTOFREE char *status = fake_data_load("query-status-running", "strata-2");
    AUTOFREE char *block = fake_data_load("query-block", "strata-3");
    AUTOFREE char *all = xasprintf("%s%s%s%s", caps, cont, status, block);
    /* The commands go out with this run; the answers are already waiting. */
    assert_true(fake_write_all(sv[0], all, strlen(all)));
    assert_int_equal(qmp_client_run(c), 0);
    assert_true(qmp_client_ready(c));
    assert_int_equal(json_array_size(r.events), 1);
    assert_int_equal(json_array_size(r.replies), 2);
    json_decref(expect_command(sv[0], "query-status"));
    json_decref(expect_command(sv[0], "query-block"));
    qmp_client_free(c);
    close(sv[0]);
    rec_done(&r);
}

static void test_error_reply(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_greet(fm);
    fake_monitor_expect(fm, "no-such-command", "error-command-not-found");
    fake_monitor_expect(fm, "device_del", "error-device-not-found");
    fake_monitor_start(fm);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    assert_int_equal(qmp_client_wait_ready(c, 5000, NULL), 0);
    AUTOERROR struct error *err = NULL;
    assert_null(qmp_client_execute(c, "no-such-command", NULL, 5000, &err));
    assert_non_null(err);
    assert_int_equal(err->code, ERR_QEMU);
    assert_string_equal(err->message,
                        "CommandNotFound: The command no-such-command has not been found");
    qmp_client_send(c, "device_del", json_pack("{ss}", "id", "no-such-device"), on_reply, &r);
    run_until_replies(c, &r, 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.replies, 0),
                                                          "error")),
                        "DeviceNotFound: Device 'no-such-device' not found");
    assert_script_ok(fm);
    qmp_client_free(c);
    fake_monitor_free(fm);
    rec_done(&r);
}

struct caller {
    struct qmp_client *c;
    struct loop *loop;
    const char *command;
    int timeout_ms;
    int calls;
    int fd;                    /* for qmp_client_call_fd, or -1 */
    json_t *last;
    struct error *err;
    int ok;
    int timeouts;
    pthread_t thread;
};

static void *caller_main(void *opaque)
{
    struct caller *k = opaque;
    for (int i = 0; i < k->calls; i++) {
        struct error *err = NULL;
        json_t *ret = k->fd >= 0
            ? qmp_client_call_fd(k->c, k->command, json_pack("{ss}", "fdname", "fd0"), k->fd,
                                 k->timeout_ms, &err)
            : qmp_client_call(k->c, k->command, NULL, k->timeout_ms, &err);
        if (ret) {
            k->ok++;
            json_decref(k->last);
            k->last = ret;
        } else {
            if (err->code == ERR_TIMEOUT)
                k->timeouts++;
            error_free(k->err);
            k->err = err;
        }
    }
    loop_stop(k->loop);
    return NULL;
}

static void caller_start(struct caller *k, struct qmp_client *c, struct loop *l,
                         const char *command, int calls, int timeout_ms)
{
    *k = (struct caller) { .c = c, .loop = l, .command = command, .calls = calls,
                           .timeout_ms = timeout_ms, .fd = -1 };
    assert_int_equal(pthread_create(&k->thread, NULL, caller_main, k), 0);
}

static void caller_join(struct caller *k)
{
    pthread_join(k->thread, NULL);
}

static void caller_done(struct caller *k)
{
    json_decref(k->last);
    error_free(k->err);
}

static void test_close_fails_pending(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_greet(fm);
    fake_monitor_expect_silent(fm, "query-status");
    fake_monitor_expect_silent(fm, "stop");
    fake_monitor_expect_silent(fm, "query-balloon");
    fake_monitor_close(fm);
    fake_monitor_start(fm);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    assert_int_equal(qmp_client_wait_ready(c, 5000, NULL), 0);
    qmp_client_send(c, "query-status", NULL, on_reply, &r);
    qmp_client_send(c, "stop", NULL, on_reply, &r);
    struct loop l;
    loop_init(&l, c);
    struct caller k;
    caller_start(&k, c, &l, "query-balloon", 1, 5000);
    assert_int_equal(loop_run(&l, 5000), -1);
    caller_join(&k);
    assert_true(qmp_client_closed(c));
    assert_false(qmp_client_ready(c));
    assert_int_equal(r.closes, 1);
    assert_int_equal(json_array_size(r.replies), 2);
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(r.replies, i),
                                                              "error")), "monitor closed");
    assert_int_equal(k.ok, 0);
    assert_int_equal(k.err->code, ERR_QEMU);
    assert_string_equal(k.err->message, "monitor closed");
    /* After the close: run keeps failing, new commands fail at once. */
    assert_int_equal(qmp_client_run(c), -1);
    caller_done(&k);
    caller_start(&k, c, &l, "query-status", 1, 5000);
    caller_join(&k);
    assert_int_equal(k.err->code, ERR_QEMU);
    assert_string_equal(k.err->message, "monitor closed");
    qmp_client_send(c, "cont", NULL, on_reply, &r);
    assert_int_equal(json_array_size(r.replies), 3);
    assert_int_equal(r.closes, 1);
    assert_script_ok(fm);
    caller_done(&k);
    loop_done(&l);
    qmp_client_free(c);
    fake_monitor_free(fm);
    rec_done(&r);
}

static void test_call_from_second_thread(void **state)
{
    (void) state;
    enum { CALLS = 25 };
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_greet(fm);
    for (int i = 0; i < CALLS; i++) {
        if (i % 5 == 0)
            fake_monitor_send_events(fm, "stop");
        fake_monitor_expect(fm, "query-status", i % 2 ? "query-status-paused"
                                                      : "query-status-running");
        if (i % 5 == 0)
            fake_monitor_send_events(fm, "cont");
    }
    fake_monitor_start(fm);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    struct loop l;
    loop_init(&l, c);
    struct caller k;
    /* The caller starts before negotiation: its first command is held. */
    caller_start(&k, c, &l, "query-status", CALLS, 5000);
    assert_int_equal(loop_run(&l, 10000), 0);
    caller_join(&k);
    if (k.err)
        fail_msg("call failed: %s", k.err->message);
    assert_int_equal(k.ok, CALLS);
    assert_string_equal(json_string_value(json_object_get(k.last, "status")), "running");
    assert_script_ok(fm);
    l.stop = 0;
    for (int i = 0; i < 50 && json_array_size(r.events) < 10; i++)
        loop_run(&l, 10);
    assert_int_equal(json_array_size(r.events), 10);
    caller_done(&k);
    loop_done(&l);
    qmp_client_free(c);
    fake_monitor_free(fm);
    rec_done(&r);
}

static void test_timeout_then_late_reply(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_greet(fm);
    fake_monitor_expect_silent(fm, "query-status");
    fake_monitor_wait(fm);
    fake_monitor_send_raw(fm, "{\"return\": {\"status\": \"late\"}, \"id\": \"strata-2\"}\r\n");
    fake_monitor_expect(fm, "query-status", "query-status-running");
    fake_monitor_start(fm);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    assert_int_equal(qmp_client_wait_ready(c, 5000, NULL), 0);
    struct loop l;
    loop_init(&l, c);
    struct caller k;
    caller_start(&k, c, &l, "query-status", 1, 100);
    loop_run(&l, 5000);
    caller_join(&k);
    assert_int_equal(k.timeouts, 1);
    assert_string_equal(k.err->message, "QMP command 'query-status' got no reply within 100 ms");
    caller_done(&k);
    fake_monitor_release(fm);
    l.stop = 0;
    caller_start(&k, c, &l, "query-status", 1, 5000);
    assert_int_equal(loop_run(&l, 5000), 0);
    caller_join(&k);
    assert_int_equal(k.ok, 1);
    assert_string_equal(json_string_value(json_object_get(k.last, "status")), "running");
    assert_script_ok(fm);
    caller_done(&k);
    loop_done(&l);
    qmp_client_free(c);
    fake_monitor_free(fm);
    rec_done(&r);
}

static int count_open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

static void test_fd_passing(void **state)
{
    (void) state;
    char path[] = "/tmp/strata-qmp-test-fd.XXXXXX";
    int file = mkstemp(path);
    assert_true(file >= 0);
    unlink(path);
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_greet(fm);
    fake_monitor_expect(fm, "query-status", "query-status-running");
    fake_monitor_expect_fd(fm, "getfd", "getfd");
    fake_monitor_expect(fm, "closefd", "closefd");
    fake_monitor_start(fm);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    assert_int_equal(qmp_client_wait_ready(c, 5000, NULL), 0);
    struct loop l;
    loop_init(&l, c);
    int fds_before = count_open_fds();
    qmp_client_send(c, "query-status", NULL, on_reply, &r);
    struct caller k;
    k = (struct caller) { .c = c, .loop = &l, .command = "getfd", .calls = 1,
                          .timeout_ms = 5000, .fd = file };
    assert_int_equal(pthread_create(&k.thread, NULL, caller_main, &k), 0);
    int rc = loop_run(&l, 5000);
    caller_join(&k);
    if (k.err) {
        AUTOFREE char *why = fake_monitor_finish(fm);
        fail_msg("getfd failed: %s (fake monitor: %s)", k.err->message, why ? why : "ok");
    }
    assert_int_equal(rc, 0);
    assert_int_equal(k.ok, 1);
    AUTOERROR struct error *err = NULL;
    json_decref(qmp_client_execute(c, "closefd", json_pack("{ss}", "fdname", "fd0"), 5000,
                                   &err));
    assert_null(err);
    assert_script_ok(fm);

    struct stat a, b;
    assert_int_equal(fstat(file, &a), 0);       /* still ours: borrowed */
    assert_int_equal(fstat(fake_monitor_received_fd(fm), &b), 0);
    assert_int_equal(a.st_dev, b.st_dev);
    assert_int_equal(a.st_ino, b.st_ino);
    const json_t *getfd = fake_monitor_command(fm, 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(getfd, "arguments"),
                                                          "fdname")), "fd0");
    /* The client's dup was closed once sent; the fake holds one copy. */
    assert_int_equal(count_open_fds(), fds_before + 1);

    assert_null(qmp_client_call_fd(c, "getfd", NULL, -1, 100, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    caller_done(&k);
    loop_done(&l);
    qmp_client_free(c);
    fake_monitor_free(fm);
    close(file);
    rec_done(&r);
}

struct writer {
    int fd;
    size_t len;
    pthread_t thread;
};

static void *writer_main(void *opaque)
{
    struct writer *w = opaque;
    char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    chunk[0] = '"';
    size_t left = w->len;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        if (!fake_write_all(w->fd, chunk, n))
            break;                /* the client gave up: expected */
        chunk[0] = 'x';
        left -= n;
    }
    return NULL;
}

static void oversized(size_t limit, size_t line_len, bool newline)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(sv[1], &r);
    if (limit)
        qmp_client_set_max_line(c, limit);
    AUTOFREE char *greeting = fake_data_load("greeting", NULL);
    AUTOFREE char *caps = fake_data_load("qmp_capabilities", "strata-1");
    assert_true(fake_write_all(sv[0], greeting, strlen(greeting)));
    assert_int_equal(qmp_client_run(c), 0);
    json_decref(expect_command(sv[0], "qmp_capabilities"));
    assert_true(fake_write_all(sv[0], caps, strlen(caps)));
    assert_int_equal(qmp_client_run(c), 0);
    assert_true(qmp_client_ready(c));
    qmp_client_send(c, "query-qmp-schema", NULL, on_reply, &r);
    json_decref(expect_command(sv[0], "query-qmp-schema"));

    struct writer w = { .fd = sv[0], .len = line_len };
    bool threaded = line_len > 65536;
    if (threaded) {
        assert_int_equal(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    } else {
        /* One write, newline included: the complete-line check. */
        AUTOFREE char *line = xmalloc(line_len + 1);
        memset(line, 'x', line_len);
        line[line_len] = '\n';
        assert_true(fake_write_all(sv[0], line, line_len + (newline ? 1 : 0)));
    }
    int rc = 0;
    for (int i = 0; i < 20000 && rc == 0; i++) {
        struct pollfd pfd = { .fd = sv[1], .events = POLLIN };
        poll(&pfd, 1, 10);
        rc = qmp_client_run(c);
    }
    assert_int_equal(rc, -1);
    shutdown(sv[0], SHUT_RDWR);
    if (threaded)
        pthread_join(w.thread, NULL);
    assert_true(qmp_client_closed(c));
    assert_int_equal(r.closes, 1);
    assert_int_equal(json_array_size(r.replies), 1);
    const char *msg = json_string_value(json_object_get(json_array_get(r.replies, 0), "error"));
    assert_non_null(strstr(msg, "monitor closed: QMP line"));
    assert_non_null(strstr(msg, "exceeds the limit of"));
    qmp_client_free(c);
    close(sv[0]);
    rec_done(&r);
}

static void test_oversized_line_refused(void **state)
{
    (void) state;
    oversized(4096, 5000, false);   /* no newline yet: refused while buffering */
    oversized(4096, 4097, true);    /* a complete line one byte too long */
    oversized(0, QMP_MAX_LINE_DEFAULT + 1, false);
}

static void test_line_at_the_limit_accepted(void **state)
{
    (void) state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(sv[1], &r);
    AUTOFREE char *greeting = fake_data_load("greeting", NULL);
    /* The limit counts the bytes before '\n' ("...}\r"). */
    qmp_client_set_max_line(c, strlen(greeting) - 1);
    /* Sent in two halves: the partial line is also within the limit. */
    feed_split(sv[0], c, greeting, strlen(greeting) - 1);
    assert_false(qmp_client_closed(c));
    assert_non_null(qmp_client_greeting(c));
    json_decref(expect_command(sv[0], "qmp_capabilities"));
    qmp_client_free(c);
    close(sv[0]);
    rec_done(&r);
}

static void test_call_from_loop_thread_refused(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_greet(fm);
    fake_monitor_start(fm);
    struct qmp_client *c = qmp_client_new(fd);
    assert_int_equal(qmp_client_wait_ready(c, 5000, NULL), 0);
    AUTOERROR struct error *err = NULL;
    assert_null(qmp_client_call(c, "query-status", NULL, 100, &err));
    assert_int_equal(err->code, ERR_INTERNAL);
    assert_script_ok(fm);
    qmp_client_free(c);
    fake_monitor_free(fm);
}

static void test_bad_negotiation_closes(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_send(fm, "greeting");
    fake_monitor_expect(fm, "qmp_capabilities", "error-command-not-found");
    fake_monitor_start(fm);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    qmp_client_send(c, "query-status", NULL, on_reply, &r);
    AUTOERROR struct error *err = NULL;
    assert_int_equal(qmp_client_wait_ready(c, 5000, &err), -1);
    assert_int_equal(err->code, ERR_QEMU);
    assert_int_equal(r.closes, 1);
    const char *msg = json_string_value(json_object_get(json_array_get(r.replies, 0), "error"));
    assert_string_equal(msg, "monitor closed: qmp_capabilities failed: CommandNotFound: "
                        "The command no-such-command has not been found");
    assert_script_ok(fm);
    qmp_client_free(c);
    fake_monitor_free(fm);
    rec_done(&r);
}

static void test_free_fails_async_pending(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    qmp_client_send(c, "query-status", NULL, on_reply, &r);
    qmp_client_free(c);
    assert_int_equal(json_array_size(r.replies), 1);
    assert_int_equal(r.closes, 0);
    qmp_client_free(NULL);
    fake_monitor_free(fm);
    rec_done(&r);
}

struct late_listener {
    char path[108];
    pthread_t thread;
};

static void *late_listen(void *opaque)
{
    struct late_listener *ll = opaque;
    usleep(50 * 1000);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, ll->path);
    if (bind(s, (struct sockaddr *) &sun, sizeof sun) < 0 || listen(s, 1) < 0)
        abort();
    int a = accept(s, NULL, NULL);
    AUTOFREE char *greeting = fake_data_load("greeting", NULL);
    fake_write_all(a, greeting, strlen(greeting));
    close(a);
    close(s);
    return NULL;
}

static void test_connect(void **state)
{
    (void) state;
    char dir[] = "/tmp/strata-qmp-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct late_listener ll;
    snprintf(ll.path, sizeof ll.path, "%s/qmp.sock", dir);
    assert_int_equal(pthread_create(&ll.thread, NULL, late_listen, &ll), 0);
    AUTOERROR struct error *err = NULL;
    struct qmp_client *c = qmp_client_connect(ll.path, 5000, &err);
    assert_non_null(c);
    pthread_join(ll.thread, NULL);
    struct recorder r;
    rec_init(&r);
    qmp_client_set_callbacks(c, on_event, on_close, &r);
    /* Greeting, then EOF: never ready. */
    assert_int_equal(qmp_client_wait_ready(c, 5000, &err), -1);
    assert_non_null(qmp_client_greeting(c));
    assert_int_equal(r.closes, 1);
    qmp_client_free(c);
    error_free(err);
    err = NULL;

    assert_null(qmp_client_connect(ll.path, 30, &err));
    assert_int_equal(err->code, ERR_TIMEOUT);
    error_free(err);
    err = NULL;
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    assert_null(qmp_client_connect(longpath, 30, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    unlink(ll.path);
    rmdir(dir);
    rec_done(&r);
}

static void test_schema_has_every_command(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_greet(fm);
    fake_monitor_expect(fm, "query-qmp-schema", "query-qmp-schema");
    fake_monitor_start(fm);
    struct qmp_client *c = qmp_client_new(fd);
    assert_int_equal(qmp_client_wait_ready(c, 5000, NULL), 0);
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *schema = qmp_client_execute(c, "query-qmp-schema", NULL, 5000, &err);
    assert_null(err);
    assert_true(json_is_array(schema));
    assert_true(json_array_size(schema) > 1000);
    int missing = 0;
    for (size_t i = 0; i < ARRAY_SIZE(strata_commands); i++) {
        bool found = false;
        size_t j;
        json_t *entity;
        json_array_foreach(schema, j, entity) {
            if (!strcmp(json_string_value(json_object_get(entity, "meta-type")), "command") &&
                !strcmp(json_string_value(json_object_get(entity, "name")),
                        strata_commands[i])) {
                found = true;
                break;
            }
        }
        if (!found) {
            print_error("QMP command '%s' is not in QEMU 7.2's schema\n", strata_commands[i]);
            missing++;
        }
    }
    assert_int_equal(missing, 0);
    assert_script_ok(fm);
    qmp_client_free(c);
    fake_monitor_free(fm);
}

/* Every captured exchange, replayed: the command, the file, and whether the
 * reply is an error. */
static const struct {
    const char *file;
    const char *command;
} replays[] = {
    { "query-status-prelaunch", "query-status" },
    { "query-cpus-fast", "query-cpus-fast" },
    { "query-hotpluggable-cpus", "query-hotpluggable-cpus" },
    { "query-memory-devices", "query-memory-devices" },
    { "query-memory-size-summary", "query-memory-size-summary" },
    { "query-balloon", "query-balloon" },
    { "query-block", "query-block" },
    { "query-blockstats", "query-blockstats" },
    { "query-named-block-nodes", "query-named-block-nodes" },
    { "query-chardev", "query-chardev" },
    { "error-command-not-found", "no-such-command" },
    { "error-device-not-found", "device_del" },
    { "error-generic", "blockdev-add" },
    { "getfd", "getfd" },
    { "closefd", "closefd" },
    { "device_del", "device_del" },
    { "blockdev-create", "blockdev-create" },
    { "query-jobs", "query-jobs" },
    { "job-dismiss", "job-dismiss" },
    { "blockdev-add", "blockdev-add" },
    { "blockdev-backup", "blockdev-backup" },
    { "blockdev-del", "blockdev-del" },
    { "cont", "cont" },
    { "query-status-running", "query-status" },
    { "stop", "stop" },
    { "query-status-paused", "query-status" },
    { "cont-again", "cont" },
    { "system_reset", "system_reset" },
    { "system_powerdown", "system_powerdown" },
};

static void test_replay_captured(void **state)
{
    (void) state;
    int fd;
    struct fake_monitor *fm = fake_monitor_new(&fd);
    fake_monitor_greet(fm);
    for (size_t i = 0; i < ARRAY_SIZE(replays); i++)
        fake_monitor_expect(fm, replays[i].command, replays[i].file);
    fake_monitor_close(fm);         /* QEMU exits after the guest's SHUTDOWN */
    fake_monitor_start(fm);
    struct recorder r;
    rec_init(&r);
    struct qmp_client *c = new_client(fd, &r);
    assert_int_equal(qmp_client_wait_ready(c, 5000, NULL), 0);
    for (size_t i = 0; i < ARRAY_SIZE(replays); i++) {
        AUTOJSON json_t *lines = fake_data_lines(replays[i].file);
        AUTOJSON json_t *want_events = json_array();
        json_t *reply = NULL;
        size_t j;
        json_t *obj;
        json_array_foreach(lines, j, obj) {
            if (json_object_get(obj, "event"))
                json_array_append(want_events, json_object_get(obj, "event"));
            else
                reply = obj;
        }
        assert_non_null(reply);
        json_array_clear(r.events);
        AUTOERROR struct error *err = NULL;
        AUTOJSON json_t *ret = qmp_client_execute(c, replays[i].command, NULL, 5000, &err);
        for (int k = 0; k < 200 && json_array_size(r.events) < json_array_size(want_events);
             k++) {
            struct pollfd pfd = { .fd = qmp_client_fd(c), .events = POLLIN };
            poll(&pfd, 1, 10);
            qmp_client_run(c);
        }
        if (json_object_get(reply, "error")) {
            assert_null(ret);
            assert_int_equal(err->code, ERR_QEMU);
        } else {
            if (err)
                fail_msg("%s: %s", replays[i].file, err->message);
            assert_true(json_equal(ret, json_object_get(reply, "return")));
        }
        assert_true(json_equal(r.events, want_events));
    }
    for (int k = 0; k < 200 && !qmp_client_closed(c); k++) {
        struct pollfd pfd = { .fd = qmp_client_fd(c), .events = POLLIN };
        poll(&pfd, 1, 10);
        qmp_client_run(c);
    }
    assert_true(qmp_client_closed(c));
    assert_int_equal(r.closes, 1);
    assert_script_ok(fm);
    qmp_client_free(c);
    fake_monitor_free(fm);
    rec_done(&r);
}

/* Runs last: a data file no test reads is dead weight or a forgotten test. */
static void test_every_data_file_used(void **state)
{
    (void) state;
    AUTOSTRV char **unused = fake_data_unused();
    for (char **u = unused; *u; u++)
        print_error("tests/data/qmp/%s.jsonl is not used by any test\n", *u);
    assert_int_equal(strv_len(unused), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiation),
        cmocka_unit_test(test_commands_held_until_ready),
        cmocka_unit_test(test_reply_matching_with_events),
        cmocka_unit_test(test_split_at_every_byte),
        cmocka_unit_test(test_several_objects_in_one_read),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_close_fails_pending),
        cmocka_unit_test(test_call_from_second_thread),
        cmocka_unit_test(test_timeout_then_late_reply),
        cmocka_unit_test(test_fd_passing),
        cmocka_unit_test(test_oversized_line_refused),
        cmocka_unit_test(test_line_at_the_limit_accepted),
        cmocka_unit_test(test_call_from_loop_thread_refused),
        cmocka_unit_test(test_bad_negotiation_closes),
        cmocka_unit_test(test_free_fails_async_pending),
        cmocka_unit_test(test_connect),
        cmocka_unit_test(test_schema_has_every_command),
        cmocka_unit_test(test_replay_captured),
        cmocka_unit_test(test_every_data_file_used),
    };
    return cmocka_run_group_tests_name("qmp", tests, NULL, NULL);
}
