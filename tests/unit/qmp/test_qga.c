/* test_qga.c - unit tests of the guest-agent client (src/qmp/qga.c) against
 * a fake qemu-ga listening on a unix socket, as QEMU's chardev does.  The
 * fake strips 0xFF bytes (noting that a sync was preceded by one), parses
 * each request line and lets the test's handler answer: junk before the
 * delimiter, stale delimited replies, stale ids, stray bytes, silence. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "qmp/qga.h"
#include "util/json_util.h"
#include "util/mem.h"

struct fake_qga;
typedef void fake_handler(struct fake_qga *fq, const char *command, const json_t *req);

struct fake_qga {
    char dir[64];
    char path[128];
    int listen_fd;
    int conn;
    pthread_t thread;
    fake_handler *handler;
    int syncs;                 /* guest-sync-delimited requests seen */
    int syncs_without_ff;      /* ... not preceded by a 0xFF byte */
    int requests;              /* other requests */
    bool close_at_once;
    json_t *log;               /* every request */
};

static void fq_write(struct fake_qga *fq, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fq->conn, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t) n;
    }
}

static void fq_print(struct fake_qga *fq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fq_print(struct fake_qga *fq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    AUTOFREE char *s = xvasprintf(fmt, ap);
    va_end(ap);
    fq_write(fq, s, strlen(s));
}

static void *fake_qga_main(void *opaque)
{
    struct fake_qga *fq = opaque;
    fq->conn = accept4(fq->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fq->conn < 0)
        return NULL;
    if (fq->close_at_once) {
        close(fq->conn);
        fq->conn = -1;
        return NULL;
    }
    char line[4096];
    size_t len = 0;
    bool saw_ff = false;
    for (;;) {
        char c;
        ssize_t n = recv(fq->conn, &c, 1, 0);
        if (n <= 0)
            break;
        if ((unsigned char) c == 0xff) {
            saw_ff = true;
            len = 0;             /* like qemu-ga: the parser starts over */
            continue;
        }
        if (c != '\n') {
            if (len < sizeof line - 1)
                line[len++] = c;
            continue;
        }
        json_t *req = json_loadb(line, len, 0, NULL);
        len = 0;
        const char *cmd = json_string_value(json_object_get(req, "execute"));
        if (!cmd) {
            fq_print(fq, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse "
                         "error\"}}\n");
            json_decref(req);
            continue;
        }
        json_array_append(fq->log, req);
        if (!strcmp(cmd, "guest-sync-delimited")) {
            fq->syncs++;
            if (!saw_ff)
                fq->syncs_without_ff++;
        } else {
            fq->requests++;
        }
        saw_ff = false;
        fq->handler(fq, cmd, req);
        json_decref(req);
    }
    close(fq->conn);
    fq->conn = -1;
    return NULL;
}

static struct fake_qga *fake_qga_start(fake_handler *handler, bool close_at_once)
{
    struct fake_qga *fq = xzalloc(sizeof *fq);
    strcpy(fq->dir, "/tmp/strata-qga-test.XXXXXX");
    assert_non_null(mkdtemp(fq->dir));
    snprintf(fq->path, sizeof fq->path, "%s/qga.sock", fq->dir);
    fq->handler = handler;
    fq->close_at_once = close_at_once;
    fq->log = json_array();
    fq->conn = -1;
    fq->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, fq->path);
    assert_int_equal(bind(fq->listen_fd, (struct sockaddr *) &sun, sizeof sun), 0);
    assert_int_equal(listen(fq->listen_fd, 1), 0);
    assert_int_equal(pthread_create(&fq->thread, NULL, fake_qga_main, fq), 0);
    return fq;
}

/* Call after freeing the client (the fake ends at EOF). */
static void fake_qga_stop(struct fake_qga *fq)
{
    pthread_join(fq->thread, NULL);
    close(fq->listen_fd);
    unlink(fq->path);
    rmdir(fq->dir);
    json_decref(fq->log);
    free(fq);
}

static long long sync_id(const json_t *req)
{
    return json_integer_value(json_object_get(json_object_get(req, "arguments"), "id"));
}

static const char *req_id(const json_t *req)
{
    return json_string_value(json_object_get(req, "id"));
}

/* Junk before the delimiter, stale delimited replies, stray bytes before
 * replies, stale ids: none of it may shift a reply. */
static void junk_handler(struct fake_qga *fq, const char *cmd, const json_t *req)
{
    if (!strcmp(cmd, "guest-sync-delimited")) {
        fq_print(fq, "garbage{\"return\": %lld}\n", sync_id(req));
        fq_print(fq, "\xff{\"return\": 7}\n");
        fq_print(fq, "\x01\x02\xffjunk\xff{\"return\": %lld}\n", sync_id(req));
    } else if (!strcmp(cmd, "guest-ping")) {
        fq_print(fq, "\x07{\"return\": {}, \"id\": \"strata-old\"}\n");
        fq_print(fq, "{\"return\": {\"stale\": true}}\n");
        fq_print(fq, "\xff{\"return\": {}, \"id\": \"%s\"}\n", req_id(req));
    } else if (!strcmp(cmd, "guest-info")) {
        /* Split in two writes around a pause. */
        fq_print(fq, "{\"return\": {\"version\": ");
        usleep(20 * 1000);
        fq_print(fq, "\"7.2.22\"}, \"id\": \"%s\"}\r\n", req_id(req));
    } else if (!strcmp(cmd, "guest-shutdown")) {
        /* no reply on success */
    } else {
        fq_print(fq, "{\"id\": \"%s\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
                     "\"The command %s has not been found\"}}\n", req_id(req), cmd);
    }
}

static void test_qga_sync_and_calls(void **state)
{
    (void) state;
    struct fake_qga *fq = fake_qga_start(junk_handler, false);
    AUTOERROR struct error *err = NULL;
    struct qga_client *c = qga_client_connect(fq->path, 2000, &err);
    assert_non_null(c);

    AUTOJSON json_t *ping = qga_call(c, "guest-ping", NULL, 2000, &err);
    if (!ping)
        fail_msg("%s", err->message);
    assert_true(json_is_object(ping));
    assert_int_equal(json_object_size(ping), 0);

    AUTOJSON json_t *info = qga_call(c, "guest-info", NULL, 2000, &err);
    assert_non_null(info);
    assert_string_equal(json_string_value(json_object_get(info, "version")), "7.2.22");

    assert_null(qga_call(c, "nope", json_pack("{si}", "x", 1), 2000, &err));
    assert_int_equal(err->code, ERR_QEMU);
    assert_string_equal(err->message, "CommandNotFound: The command nope has not been found");
    error_free(err);
    err = NULL;

    assert_int_equal(qga_call_no_reply(c, "guest-shutdown", json_pack("{ss}", "mode",
                                                                       "powerdown"),
                                       2000, &err), 0);
    AUTOJSON json_t *ping2 = qga_call(c, "guest-ping", NULL, 2000, &err);
    assert_non_null(ping2);

    qga_client_free(c);
    assert_int_equal(fq->syncs, 1);
    assert_int_equal(fq->syncs_without_ff, 0);
    assert_int_equal(fq->requests, 5);
    /* Arguments and ids as sent. */
    json_t *nope = json_array_get(fq->log, 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(nope, "arguments"),
                                                        "x")), 1);
    assert_string_equal(req_id(json_array_get(fq->log, 1)), "strata-1");
    assert_true(sync_id(json_array_get(fq->log, 0)) > 0);
    fake_qga_stop(fq);
}

/* The first guest-ping is answered late, just before the next sync reply. */
static void late_handler(struct fake_qga *fq, const char *cmd, const json_t *req)
{
    static char pending_id[32];
    if (!strcmp(cmd, "guest-sync-delimited")) {
        if (pending_id[0]) {
            fq_print(fq, "{\"return\": {\"late\": true}, \"id\": \"%s\"}\n", pending_id);
            pending_id[0] = '\0';
        }
        fq_print(fq, "\xff{\"return\": %lld}\n", sync_id(req));
    } else if (fq->requests == 1) {
        snprintf(pending_id, sizeof pending_id, "%s", req_id(req));
    } else {
        fq_print(fq, "{\"return\": {\"n\": %d}, \"id\": \"%s\"}\n", fq->requests, req_id(req));
    }
}

static void test_qga_timeout_then_resync(void **state)
{
    (void) state;
    struct fake_qga *fq = fake_qga_start(late_handler, false);
    AUTOERROR struct error *err = NULL;
    struct qga_client *c = qga_client_connect(fq->path, 2000, &err);
    assert_non_null(c);
    assert_null(qga_call(c, "guest-ping", NULL, 200, &err));
    assert_int_equal(err->code, ERR_TIMEOUT);
    assert_string_equal(err->message, "guest agent command 'guest-ping' got no reply within "
                        "200 ms");
    error_free(err);
    err = NULL;
    AUTOJSON json_t *ret = qga_call(c, "guest-ping", NULL, 2000, &err);
    if (!ret)
        fail_msg("%s", err->message);
    assert_int_equal(json_integer_value(json_object_get(ret, "n")), 2);
    qga_client_free(c);
    assert_int_equal(fq->syncs, 2);
    fake_qga_stop(fq);
}

static void silent_handler(struct fake_qga *fq, const char *cmd, const json_t *req)
{
    (void) fq;
    (void) cmd;
    (void) req;
}

static void test_qga_no_agent(void **state)
{
    (void) state;
    struct fake_qga *fq = fake_qga_start(silent_handler, false);
    AUTOERROR struct error *err = NULL;
    struct qga_client *c = qga_client_connect(fq->path, 2000, &err);
    assert_non_null(c);
    assert_int_equal(qga_sync(c, 100, &err), -1);
    assert_int_equal(err->code, ERR_TIMEOUT);
    assert_string_equal(err->message, "guest agent did not answer guest-sync-delimited within "
                        "100 ms");
    error_free(err);
    err = NULL;
    assert_null(qga_call(c, "guest-ping", NULL, 100, &err));
    assert_int_equal(err->code, ERR_TIMEOUT);
    qga_client_free(c);
    assert_int_equal(fq->syncs, 2);
    assert_int_equal(fq->requests, 0);
    fake_qga_stop(fq);
}

static void test_qga_connection_closed(void **state)
{
    (void) state;
    struct fake_qga *fq = fake_qga_start(silent_handler, true);
    AUTOERROR struct error *err = NULL;
    struct qga_client *c = qga_client_connect(fq->path, 2000, &err);
    assert_non_null(c);
    pthread_join(fq->thread, NULL);
    assert_null(qga_call(c, "guest-ping", NULL, 1000, &err));
    assert_int_equal(err->code, ERR_IO);
    error_free(err);
    err = NULL;
    assert_null(qga_call(c, "guest-ping", NULL, 1000, &err));
    assert_int_equal(err->code, ERR_IO);
    qga_client_free(c);
    close(fq->listen_fd);
    unlink(fq->path);
    rmdir(fq->dir);
    json_decref(fq->log);
    free(fq);
}

static void big_handler(struct fake_qga *fq, const char *cmd, const json_t *req)
{
    if (!strcmp(cmd, "guest-sync-delimited")) {
        fq_print(fq, "\xff{\"return\": %lld}\n", sync_id(req));
    } else if (fq->requests == 1) {
        AUTOFREE char *big = xmalloc(3000);
        memset(big, 'x', 2999);
        big[2999] = '\0';
        fq_print(fq, "{\"return\": \"%s\", \"id\": \"%s\"}\n", big, req_id(req));
    } else {
        fq_print(fq, "{\"return\": {}, \"id\": \"%s\"}\n", req_id(req));
    }
}

static void test_qga_oversized_reply(void **state)
{
    (void) state;
    struct fake_qga *fq = fake_qga_start(big_handler, false);
    AUTOERROR struct error *err = NULL;
    struct qga_client *c = qga_client_connect(fq->path, 2000, &err);
    assert_non_null(c);
    qga_client_set_max_line(c, 1024);
    assert_null(qga_call(c, "guest-file-read", NULL, 2000, &err));
    assert_int_equal(err->code, ERR_TOO_LARGE);
    error_free(err);
    err = NULL;
    AUTOJSON json_t *ret = qga_call(c, "guest-ping", NULL, 2000, &err);
    if (!ret)
        fail_msg("%s", err->message);
    qga_client_free(c);
    assert_int_equal(fq->syncs, 2);
    fake_qga_stop(fq);
}

static void test_qga_connect_errors(void **state)
{
    (void) state;
    AUTOERROR struct error *err = NULL;
    assert_null(qga_client_connect("/nonexistent/strata/qga.sock", 30, &err));
    assert_int_equal(err->code, ERR_TIMEOUT);
    qga_client_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qga_sync_and_calls),
        cmocka_unit_test(test_qga_timeout_then_resync),
        cmocka_unit_test(test_qga_no_agent),
        cmocka_unit_test(test_qga_connection_closed),
        cmocka_unit_test(test_qga_oversized_reply),
        cmocka_unit_test(test_qga_connect_errors),
    };
    return cmocka_run_group_tests_name("qga", tests, NULL, NULL);
}
