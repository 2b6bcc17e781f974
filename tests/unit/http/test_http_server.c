/* test_http_server.c - the HTTP server on a unix socket, driven by http_client.
 *
 * Each test gets a server on "<tmpdir>/api.sock" with a small route table
 * (GET with parameters, POST with a body, a failing handler, a raw reply, a
 * slow handler) and a client connected to it.  The cases cover routing (404,
 * 405 with Allow), percent-decoded parameters and the refused ones ('/',
 * NUL, '..'), query strings, body rules (bad JSON, non-object, over the
 * limit, chunked), the error body round trip through the client, the socket
 * file (mode 0600, stale socket replaced, live one refused), configuration
 * checks and a graceful stop that lets a running request finish.  A few
 * cases speak raw HTTP over the socket to see headers and framing. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/http_client.h"
#include "http/http_server.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

#define MAX_BODY 4096

struct fixture {
    char *dir;
    char *sock;
    struct http_server *server;
    struct http_client *client;
};

/* ---- handlers ----------------------------------------------------------- */

static int h_get_vm(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    (void) opaque;
    (void) errp;
    const char *verbose = http_request_query(req, "verbose");
    const char *x = http_request_query(req, "x");
    resp->body = json_pack("{s:s, s:s*, s:s*, s:b}", "name", req->params[0], "verbose",
                           verbose, "x", x, "tls", req->peer_cn != NULL);
    return 0;
}

static int h_two_params(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    (void) opaque;
    (void) errp;
    assert_int_equal(req->n_params, 2);
    resp->body = json_pack("{s:s, s:s}", "a", req->params[0], "b", req->params[1]);
    return 0;
}

static int h_create_vm(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    (void) opaque;
    if (!req->body) {
        resp->body = json_pack("{s:b}", "empty", 1);
        return 0;
    }
    const char *name = NULL;
    if (json_get_string(req->body, "name", NULL, true, &name, errp) < 0)
        return -1;
    resp->status = 201;
    resp->body = json_pack("{s:O}", "got", req->body);
    return 0;
}

static int h_start_vm(const struct http_request *req, struct http_response *resp,
                      void *opaque, struct error **errp)
{
    (void) req;
    (void) resp;
    (void) opaque;
    (void) errp;
    return 0;   /* no body: 204 */
}

static int h_fail(const struct http_request *req, struct http_response *resp, void *opaque,
                  struct error **errp)
{
    (void) req;
    resp->body = json_object();   /* must be dropped by the server */
    (void) opaque;
    return error_set_field(errp, ERR_CONFLICT, "spec.name", "VM '%s' already exists", "web1");
}

static int h_fail_silently(const struct http_request *req, struct http_response *resp,
                           void *opaque, struct error **errp)
{
    (void) req;
    (void) resp;
    (void) opaque;
    (void) errp;
    return -1;
}

static int h_raw(const struct http_request *req, struct http_response *resp, void *opaque,
                 struct error **errp)
{
    (void) req;
    (void) opaque;
    (void) errp;
    resp->raw = xstrdup("hello\n");
    resp->raw_len = 6;
    resp->content_type = "text/plain; charset=utf-8";
    return 0;
}

static int h_slow(const struct http_request *req, struct http_response *resp, void *opaque,
                  struct error **errp)
{
    (void) req;
    (void) opaque;
    (void) errp;
    nanosleep(&(struct timespec) { 0, 300 * 1000 * 1000 }, NULL);
    resp->body = json_pack("{s:b}", "done", 1);
    return 0;
}

static const struct http_route routes[] = {
    { "GET", "/v1/vms/{name}", h_get_vm },
    { "DELETE", "/v1/vms/{name}", h_start_vm },
    { "POST", "/v1/vms", h_create_vm },
    { "GET", "/v1/vms", h_create_vm },
    { "POST", "/v1/vms/{name}/start", h_start_vm },
    { "GET", "/v1/a/{x}/b/{y}", h_two_params },
    { "GET", "/v1/fail", h_fail },
    { "GET", "/v1/fail-silently", h_fail_silently },
    { "GET", "/v1/raw", h_raw },
    { "GET", "/v1/slow", h_slow },
    { NULL, NULL, NULL },
};

/* ---- fixture ------------------------------------------------------------ */

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof *f);
    const char *tmp = getenv("TMPDIR");
    f->dir = xasprintf("%s/strata-http-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    f->sock = xasprintf("%s/api.sock", f->dir);

    struct http_server_config cfg = {
        .unix_path = f->sock,
        .max_body = MAX_BODY,
        .routes = routes,
    };
    AUTOERROR struct error *err = NULL;
    f->server = http_server_start(&cfg, &err);
    assert_null(err);
    assert_non_null(f->server);

    struct http_client_config ccfg = { .unix_path = f->sock, .timeout_ms = 10000 };
    f->client = http_client_new(&ccfg, &err);
    assert_null(err);
    assert_non_null(f->client);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    http_client_free(f->client);
    http_server_stop(f->server);
    AUTOERROR struct error *err = NULL;
    assert_int_equal(rm_rf(f->dir, &err), 0);
    free(f->sock);
    free(f->dir);
    free(f);
    return 0;
}

/* Sends 'method' 'path' with a raw body; returns the status; '*reply' gets the
 * reply (parsed as JSON, even for errors: the raw call returns no body on
 * error, so errors are re-read from '*errp'). */
static long call(struct fixture *f, const char *method, const char *path, const char *body,
                 json_t **reply, struct error **errp)
{
    long status = 0;
    if (body) {
        AUTOFREE char *out = NULL;
        size_t len = 0;
        if (http_client_request_raw(f->client, method, path, body, strlen(body), NULL, &status,
                                    &out, &len, errp) == 0 && reply)
            *reply = len ? json_loads(out, 0, NULL) : NULL;
    } else {
        http_client_request(f->client, method, path, NULL, &status, reply, errp);
    }
    return status;
}

/* Speaks raw bytes to the unix socket; returns what came back until the
 * server closed or went quiet for 'quiet_ms'. */
static char *raw_exchange(const char *sock, const char *req, size_t req_len, int quiet_ms)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    size_t off = 0;
    while (off < req_len) {
        ssize_t n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;   /* the server may close early: read what it said */
        off += (size_t) n;
    }
    size_t cap = 65536, len = 0;
    char *out = xmalloc(cap);
    for (;;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, quiet_ms) <= 0)
            break;
        ssize_t n = recv(fd, out + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t) n;
        if (len + 1 >= cap)
            break;
    }
    out[len] = '\0';
    close(fd);
    return out;
}

/* ---- tests -------------------------------------------------------------- */

static void test_get_with_param(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *reply = NULL;
    assert_int_equal(call(f, "GET", "/v1/vms/web1", NULL, &reply, &err), 200);
    assert_null(err);
    assert_string_equal(json_string_value(json_object_get(reply, "name")), "web1");
    assert_true(json_is_false(json_object_get(reply, "tls")));
    assert_null(json_object_get(reply, "verbose"));
}

static void test_two_params(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *reply = NULL;
    assert_int_equal(call(f, "GET", "/v1/a/one/b/two%21", NULL, &reply, &err), 200);
    assert_string_equal(json_string_value(json_object_get(reply, "a")), "one");
    assert_string_equal(json_string_value(json_object_get(reply, "b")), "two!");
}

static void test_percent_encoded_param(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *reply = NULL;
    assert_int_equal(call(f, "GET", "/v1/vms/web%201%C3%A9+x", NULL, &reply, &err), 200);
    assert_string_equal(json_string_value(json_object_get(reply, "name")), "web 1\xc3\xa9+x");

    AUTOFREE char *esc = http_client_escape("a b/c?d%");
    assert_string_equal(esc, "a%20b%2Fc%3Fd%25");
}

static void expect_error(struct fixture *f, const char *method, const char *path,
                         const char *body, long want_status, enum err_code want_code,
                         const char *want_field, const char *want_text)
{
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *reply = NULL;
    long status = call(f, method, path, body, &reply, &err);
    assert_int_equal(status, want_status);
    assert_null(reply);
    assert_non_null(err);
    assert_int_equal(err->code, want_code);
    if (want_field)
        assert_string_equal(err->field, want_field);
    if (want_text && !strstr(err->message, want_text))
        fail_msg("error '%s' does not mention '%s'", err->message, want_text);
}

static void test_bad_params(void **state)
{
    struct fixture *f = *state;
    expect_error(f, "GET", "/v1/vms/a%2Fb", NULL, 400, ERR_INVALID_ARG, "name", "'/'");
    expect_error(f, "GET", "/v1/vms/a%2fb", NULL, 400, ERR_INVALID_ARG, "name", "'/'");
    expect_error(f, "GET", "/v1/vms/a%00b", NULL, 400, ERR_INVALID_ARG, "name", "NUL");
    expect_error(f, "GET", "/v1/vms/%2E%2E", NULL, 400, ERR_INVALID_ARG, "name", "'..'");
    expect_error(f, "GET", "/v1/vms/..", NULL, 400, ERR_INVALID_ARG, "name", "'..'");
    expect_error(f, "GET", "/v1/vms/a%zzb", NULL, 400, ERR_INVALID_ARG, "name", "percent");
    expect_error(f, "GET", "/v1/vms/a%2", NULL, 400, ERR_INVALID_ARG, "name", "percent");
    expect_error(f, "GET", "/v1/a/x%2Fy/b/z", NULL, 400, ERR_INVALID_ARG, "x", NULL);
    expect_error(f, "GET", "/v1/a/x/b/z%00", NULL, 400, ERR_INVALID_ARG, "y", NULL);
}

static void test_query(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *reply = NULL;
    assert_int_equal(call(f, "GET", "/v1/vms/web1?verbose=yes&x=a%26b%3Dc", NULL, &reply, &err),
                     200);
    assert_null(err);
    assert_string_equal(json_string_value(json_object_get(reply, "verbose")), "yes");
    assert_string_equal(json_string_value(json_object_get(reply, "x")), "a&b=c");
    json_decref(reply);
    reply = NULL;

    /* A key without '=' has an empty value; '+' is a space in a query. */
    assert_int_equal(call(f, "GET", "/v1/vms/web1?verbose&x=a+b%2Bc", NULL, &reply, &err), 200);
    assert_string_equal(json_string_value(json_object_get(reply, "verbose")), "");
    assert_string_equal(json_string_value(json_object_get(reply, "x")), "a b+c");

    expect_error(f, "GET", "/v1/vms/web1?x=%00", NULL, 400, ERR_INVALID_ARG, NULL, "query");
    expect_error(f, "GET", "/v1/vms/web1?x=%G1", NULL, 400, ERR_INVALID_ARG, NULL, "query");
}

static void test_post_body(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *body = json_pack("{s:s, s:i}", "name", "web2", "vcpus", 2);
    AUTOJSON json_t *reply = NULL;
    long status = 0;
    assert_int_equal(http_client_request(f->client, "POST", "/v1/vms", body, &status, &reply,
                                         &err), 0);
    assert_null(err);
    assert_int_equal(status, 201);
    assert_true(json_equal(json_object_get(reply, "got"), body));
    json_decref(reply);
    reply = NULL;

    /* No body at all: the handler sees NULL. */
    assert_int_equal(http_client_request(f->client, "POST", "/v1/vms", NULL, &status, &reply,
                                         &err), 0);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(reply, "empty")));
    json_decref(reply);
    reply = NULL;

    /* A handler's own validation error comes back with its field. */
    AUTOJSON json_t *bad = json_pack("{s:i}", "name", 3);
    assert_int_equal(http_client_request(f->client, "POST", "/v1/vms", bad, &status, &reply,
                                         &err), -1);
    assert_int_equal(status, 400);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    assert_string_equal(err->field, "name");
    assert_null(reply);
}

static void test_no_content(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    json_t *reply = (json_t *) 1;
    long status = 0;
    assert_int_equal(http_client_request(f->client, "POST", "/v1/vms/web1/start", NULL, &status,
                                         &reply, &err), 0);
    assert_int_equal(status, 204);
    assert_null(reply);
    assert_int_equal(http_client_request(f->client, "DELETE", "/v1/vms/web1", NULL, &status,
                                         NULL, &err), 0);
    assert_int_equal(status, 204);
}

static void test_not_found(void **state)
{
    struct fixture *f = *state;
    expect_error(f, "GET", "/v1/nope", NULL, 404, ERR_NOT_FOUND, NULL, "/v1/nope");
    expect_error(f, "GET", "/v1/vms/web1/start/x", NULL, 404, ERR_NOT_FOUND, NULL, NULL);
    expect_error(f, "GET", "/v1/vms/", NULL, 404, ERR_NOT_FOUND, NULL, NULL);
    expect_error(f, "GET", "/v1//x", NULL, 404, ERR_NOT_FOUND, NULL, NULL);
    expect_error(f, "GET", "/", NULL, 404, ERR_NOT_FOUND, NULL, NULL);
    /* A 404 with a body drains the body and keeps the connection usable. */
    unsigned long conns = http_client_connect_count(f->client);
    expect_error(f, "POST", "/v1/nope", "{\"a\": 1}", 404, ERR_NOT_FOUND, NULL, NULL);
    test_get_with_param(state);
    assert_int_equal(http_client_connect_count(f->client), conns);
}

static void test_method_not_allowed(void **state)
{
    struct fixture *f = *state;
    expect_error(f, "PUT", "/v1/vms", NULL, 405, ERR_INVALID_ARG, NULL, "GET");
    expect_error(f, "GET", "/v1/vms/web1/start", NULL, 405, ERR_INVALID_ARG, NULL, "POST");

    /* The error body and the Allow header, as seen on the wire. */
    static const char req[] = "PATCH /v1/vms/web1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    AUTOFREE char *out = raw_exchange(f->sock, req, sizeof req - 1, 2000);
    assert_non_null(strstr(out, "HTTP/1.1 405"));
    assert_non_null(strstr(out, "Allow: GET, DELETE"));
    assert_non_null(strstr(out, "application/json"));
    assert_non_null(strstr(out, "{\"error\":{\"code\":\"invalid-argument\""));
}

static void test_bad_json(void **state)
{
    struct fixture *f = *state;
    expect_error(f, "POST", "/v1/vms", "{\"name\": ", 400, ERR_INVALID_ARG, NULL,
                 "malformed JSON");
    expect_error(f, "POST", "/v1/vms", "{\"a\": 1, \"a\": 2}", 400, ERR_INVALID_ARG, NULL, NULL);

    /* The body on the wire is the one error body. */
    static const char req[] = "POST /v1/vms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              "Content-Length: 3\r\n\r\nxyz";
    AUTOFREE char *out = raw_exchange(f->sock, req, sizeof req - 1, 2000);
    assert_non_null(strstr(out, "HTTP/1.1 400"));
    char *body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    AUTOJSON json_t *j = json_loads(body + 4, 0, NULL);
    assert_non_null(j);
    AUTOERROR struct error *e = error_from_json(j);
    assert_non_null(e);
    assert_int_equal(e->code, ERR_INVALID_ARG);
}

static void test_non_object_body(void **state)
{
    struct fixture *f = *state;
    expect_error(f, "POST", "/v1/vms", "[1, 2]", 400, ERR_INVALID_ARG, NULL,
                 "must be a JSON object, not an array");
    expect_error(f, "POST", "/v1/vms", "\"web1\"", 400, ERR_INVALID_ARG, NULL, "not a string");
    expect_error(f, "POST", "/v1/vms", "42", 400, ERR_INVALID_ARG, NULL, "not a number");
    expect_error(f, "POST", "/v1/vms", "null", 400, ERR_INVALID_ARG, NULL, "not null");
}

static void test_oversize(void **state)
{
    struct fixture *f = *state;
    /* Just under the limit works. */
    AUTOFREE char *ok = xmalloc(MAX_BODY + 1);
    memset(ok, ' ', MAX_BODY);
    memcpy(ok, "{\"name\":\"big\"}", 14);
    ok[MAX_BODY] = '\0';
    AUTOERROR struct error *err = NULL;
    assert_int_equal(call(f, "POST", "/v1/vms", ok, NULL, &err), 201);
    assert_null(err);

    /* One byte more, then far more (libcurl sends "Expect: 100-continue"). */
    size_t sizes[] = { MAX_BODY + 1, 64 * 1024, 3 * 1024 * 1024 };
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        AUTOFREE char *big = xmalloc(sizes[i] + 1);
        memset(big, ' ', sizes[i]);
        big[0] = '{';
        big[sizes[i] - 1] = '}';
        big[sizes[i]] = '\0';
        expect_error(f, "POST", "/v1/vms", big, 413, ERR_TOO_LARGE, NULL, "4096");
    }
    test_get_with_param(state);   /* the client recovers */
}

static void test_oversize_chunked(void **state)
{
    struct fixture *f = *state;
    /* No Content-Length: the limit is found while the body arrives; the
     * server stops storing it, drains a bounded amount and answers 413. */
    size_t chunk = 1024, n_chunks = 8;
    AUTOFREE char *req = xmalloc(256 + n_chunks * (chunk + 16));
    size_t len = (size_t) sprintf(req, "POST /v1/vms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n");
    for (size_t i = 0; i < n_chunks; i++) {
        len += (size_t) sprintf(req + len, "%zx\r\n", chunk);
        memset(req + len, ' ', chunk);
        len += chunk;
        len += (size_t) sprintf(req + len, "\r\n");
    }
    len += (size_t) sprintf(req + len, "0\r\n\r\n");
    AUTOFREE char *out = raw_exchange(f->sock, req, len, 3000);
    assert_non_null(strstr(out, "HTTP/1.1 413"));
    assert_non_null(strstr(out, "\"too-large\""));

    /* A chunked body within the limit is accepted. */
    static const char small[] = "POST /v1/vms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"
                                "7\r\n{\"name\"\r\n8\r\n:\"chunk\"\r\n1\r\n}\r\n0\r\n\r\n";
    AUTOFREE char *out2 = raw_exchange(f->sock, small, sizeof small - 1, 3000);
    assert_non_null(strstr(out2, "HTTP/1.1 201"));
    assert_non_null(strstr(out2, "\"chunk\""));
}

static void test_expect_continue(void **state)
{
    struct fixture *f = *state;
    /* A client that waits for "100 Continue" gets the 413 (or 404) at once
     * and never has to send the body. */
    static const char big[] = "POST /v1/vms HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n"
                              "Expect: 100-continue\r\n\r\n";
    AUTOFREE char *out = raw_exchange(f->sock, big, sizeof big - 1, 2000);
    assert_null(strstr(out, "100 Continue"));
    assert_non_null(strstr(out, "HTTP/1.1 413"));
    assert_non_null(strstr(out, "\"too-large\""));

    static const char nope[] = "POST /v1/nope HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                               "Expect: 100-continue\r\n\r\n";
    AUTOFREE char *out2 = raw_exchange(f->sock, nope, sizeof nope - 1, 2000);
    assert_null(strstr(out2, "100 Continue"));
    assert_non_null(strstr(out2, "HTTP/1.1 404"));

    /* Within the limit the server says "100 Continue" and takes the body. */
    static const char ok[] = "POST /v1/vms HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n"
                             "Connection: close\r\nExpect: 100-continue\r\n\r\n"
                             "{\"name\":\"e\"}";
    AUTOFREE char *out3 = raw_exchange(f->sock, ok, sizeof ok - 1, 2000);
    assert_non_null(strstr(out3, "HTTP/1.1 201"));
}

static void test_endless_chunked_is_cut(void **state)
{
    struct fixture *f = *state;
    /* A body that never ends is not drained for ever: past the limit plus a
     * bounded slack the server drops the connection. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->sock);
    assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    static const char head[] = "POST /v1/vms HTTP/1.1\r\nHost: x\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(send(fd, head, sizeof head - 1, MSG_NOSIGNAL), (ssize_t) sizeof head - 1);
    char chunk[8192 + 16];
    int hl = sprintf(chunk, "%x\r\n", 8192);
    memset(chunk + hl, ' ', 8192);
    memcpy(chunk + hl + 8192, "\r\n", 2);
    size_t total = 0;
    bool cut = false;
    while (total < 64u * 1024 * 1024) {
        ssize_t n = send(fd, chunk, (size_t) hl + 8194, MSG_NOSIGNAL);
        if (n < 0) {
            cut = true;
            break;
        }
        total += (size_t) n;
    }
    close(fd);
    assert_true(cut);
    assert_true(total < 8u * 1024 * 1024);
}

static void test_handler_error(void **state)
{
    struct fixture *f = *state;
    expect_error(f, "GET", "/v1/fail", NULL, 409, ERR_CONFLICT, "spec.name",
                 "VM 'web1' already exists");
    expect_error(f, "GET", "/v1/fail-silently", NULL, 500, ERR_INTERNAL, NULL,
                 "without an error");
}

static void test_raw_reply(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    AUTOFREE char *out = NULL;
    size_t len = 0;
    long status = 0;
    assert_int_equal(http_client_request_raw(f->client, "GET", "/v1/raw", NULL, 0, NULL, &status,
                                             &out, &len, &err), 0);
    assert_int_equal(status, 200);
    assert_int_equal(len, 6);
    assert_string_equal(out, "hello\n");

    /* A JSON request on a non-JSON reply is an error, not a crash. */
    json_t *reply = NULL;
    assert_int_equal(http_client_request(f->client, "GET", "/v1/raw", NULL, &status, &reply,
                                         &err), -1);
    assert_int_equal(err->code, ERR_IO);
    assert_null(reply);
}

static void test_keepalive_many(void **state)
{
    struct fixture *f = *state;
    unsigned long before = http_client_connect_count(f->client);
    for (int i = 0; i < 200; i++) {
        AUTOERROR struct error *err = NULL;
        AUTOJSON json_t *reply = NULL;
        AUTOFREE char *path = xasprintf("/v1/vms/vm%d", i);
        assert_int_equal(call(f, "GET", path, NULL, &reply, &err), 200);
        assert_int_equal(atoi(json_string_value(json_object_get(reply, "name")) + 2), i);
    }
    /* One connection, reused: at most one new one (if there was none yet). */
    assert_true(http_client_connect_count(f->client) - before <= 1);
    assert_int_equal(http_client_connect_count(f->client), 1);
}

static void test_client_checks(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    long status = 1;
    assert_int_equal(http_client_request(f->client, "GET", "v1/vms", NULL, &status, NULL, &err),
                     -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    assert_int_equal(status, 0);
    error_free(err);
    err = NULL;
    assert_int_equal(http_client_request(f->client, "GET", "/v1/vms/a b", NULL, NULL, NULL,
                                         &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    err = NULL;

    struct http_client_config both = { .unix_path = f->sock, .host = "h" };
    assert_null(http_client_new(&both, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    err = NULL;
    struct http_client_config no_ca = { .host = "127.0.0.1", .port = 1 };
    assert_null(http_client_new(&no_ca, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    err = NULL;

    /* Nothing listening: ERR_IO, no status. */
    AUTOFREE char *nowhere = xasprintf("%s/none.sock", f->dir);
    struct http_client_config cfg = { .unix_path = nowhere };
    AUTOHTTPCLIENT struct http_client *c = http_client_new(&cfg, &err);
    assert_non_null(c);
    assert_int_equal(http_client_request(c, "GET", "/v1/vms", NULL, &status, NULL, &err), -1);
    assert_int_equal(err->code, ERR_IO);
    assert_int_equal(status, 0);
}

static void test_socket_mode(void **state)
{
    struct fixture *f = *state;
    struct stat sb;
    assert_int_equal(lstat(f->sock, &sb), 0);
    assert_true(S_ISSOCK(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0600);
}

static void test_socket_file_rules(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;

    /* A live socket is not stolen. */
    struct http_server_config cfg = { .unix_path = f->sock, .routes = routes };
    assert_null(http_server_start(&cfg, &err));
    assert_int_equal(err->code, ERR_CONFLICT);
    error_free(err);
    err = NULL;

    /* A regular file is not removed. */
    AUTOFREE char *file = xasprintf("%s/file", f->dir);
    assert_int_equal(file_write_atomic(file, "x", 1, 0600, &err), 0);
    cfg.unix_path = file;
    assert_null(http_server_start(&cfg, &err));
    assert_int_equal(err->code, ERR_CONFLICT);
    assert_true(file_exists(file));
    error_free(err);
    err = NULL;

    /* A stale socket (nobody listening) is replaced. */
    AUTOFREE char *stale = xasprintf("%s/stale.sock", f->dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", stale);
    assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    close(fd);
    cfg.unix_path = stale;
    struct http_server *s = http_server_start(&cfg, &err);
    assert_null(err);
    assert_non_null(s);
    struct http_client_config ccfg = { .unix_path = stale };
    AUTOHTTPCLIENT struct http_client *c = http_client_new(&ccfg, &err);
    long status = 0;
    assert_int_equal(http_client_request(c, "GET", "/v1/vms/x", NULL, &status, NULL, &err), 0);
    assert_int_equal(status, 200);
    http_server_stop(s);
    assert_false(file_exists(stale));   /* removed at stop */
}

static void test_config_checks(void **state)
{
    (void) state;
    AUTOERROR struct error *err = NULL;
    struct http_server_config tcp = { .tcp_address = "127.0.0.1", .routes = routes };
    assert_null(http_server_start(&tcp, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    assert_non_null(strstr(err->message, "without TLS"));
    error_free(err);
    err = NULL;

    struct http_server_config none = { .routes = routes };
    assert_null(http_server_start(&none, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    err = NULL;

    static const struct http_route bad_routes[] = {
        { "GET", "/v1/vms/x{name}", h_get_vm },
        { NULL, NULL, NULL },
    };
    struct http_server_config bad = { .unix_path = "/nonexistent/x.sock", .routes = bad_routes };
    assert_null(http_server_start(&bad, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    err = NULL;

    static const struct http_route many[] = {
        { "GET", "/{a}/{b}/{c}/{d}/{e}", h_get_vm },
        { NULL, NULL, NULL },
    };
    bad.routes = many;
    assert_null(http_server_start(&bad, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    err = NULL;

    struct http_server_config unbindable = { .unix_path = "/nonexistent/x.sock",
                                             .routes = routes };
    assert_null(http_server_start(&unbindable, &err));
    assert_int_equal(err->code, ERR_IO);
}

struct slow_call {
    const char *sock;
    long status;
    int ret;
};

static void *slow_thread(void *arg)
{
    struct slow_call *sc = arg;
    struct http_client_config cfg = { .unix_path = sc->sock };
    AUTOERROR struct error *err = NULL;
    AUTOHTTPCLIENT struct http_client *c = http_client_new(&cfg, &err);
    sc->ret = http_client_request(c, "GET", "/v1/slow", NULL, &sc->status, NULL, &err);
    return NULL;
}

static void test_graceful_stop(void **state)
{
    struct fixture *f = *state;
    struct slow_call sc = { .sock = f->sock, .ret = -2 };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_thread, &sc), 0);
    nanosleep(&(struct timespec) { 0, 100 * 1000 * 1000 }, NULL);
    /* An idle keep-alive connection must not hold the stop up. */
    test_get_with_param(state);
    http_server_stop(f->server);
    f->server = NULL;
    pthread_join(t, NULL);
    assert_int_equal(sc.ret, 0);
    assert_int_equal(sc.status, 200);
    assert_false(file_exists(f->sock));

    AUTOERROR struct error *err = NULL;
    assert_int_equal(http_client_request(f->client, "GET", "/v1/vms/x", NULL, NULL, NULL, &err),
                     -1);
    assert_int_equal(err->code, ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_get_with_param),
        T(test_two_params),
        T(test_percent_encoded_param),
        T(test_bad_params),
        T(test_query),
        T(test_post_body),
        T(test_no_content),
        T(test_not_found),
        T(test_method_not_allowed),
        T(test_bad_json),
        T(test_non_object_body),
        T(test_oversize),
        T(test_oversize_chunked),
        T(test_expect_continue),
        T(test_endless_chunked_is_cut),
        T(test_handler_error),
        T(test_raw_reply),
        T(test_keepalive_many),
        T(test_client_checks),
        T(test_socket_mode),
        T(test_socket_file_rules),
        T(test_config_checks),
        T(test_graceful_stop),
#undef T
    };
    return cmocka_run_group_tests_name("http_server", tests, NULL, NULL);
}
