/* test_http_tls.c - the HTTP server over TCP with mutual TLS.
 *
 * The group setup generates a throw-away PKI by running
 * tools/make-test-pki.sh (found through STRATA_SRCDIR, set by meson) into a
 * temporary directory, and starts a server on 127.0.0.1 port 0 with the CA
 * and the CRL.  The cases: the good client certificate works (and its CN
 * reaches the handler); no client certificate, one from a foreign CA, an
 * expired one and a revoked one are all refused before any handler runs;
 * plain HTTP on the TLS port gets no HTTP answer; the client's own checks
 * (pinned CA, server name) refuse a server they should not trust;
 * allowed_cn admits only that client; bad TLS configurations do not start.
 * The directory is removed by the group teardown. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/http_client.h"
#include "http/http_server.h"
#include "util/command.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

struct pki {
    char *dir;
    struct http_server *server;
    unsigned short port;
};

static atomic_int handler_calls;

static char *pki_file(const struct pki *p, const char *name)
{
    return xasprintf("%s/%s", p->dir, name);
}

static int h_whoami(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    (void) opaque;
    (void) errp;
    atomic_fetch_add(&handler_calls, 1);
    resp->body = json_pack("{s:s?}", "cn", req->peer_cn);
    return 0;
}

static int h_echo(const struct http_request *req, struct http_response *resp, void *opaque,
                  struct error **errp)
{
    (void) opaque;
    (void) errp;
    atomic_fetch_add(&handler_calls, 1);
    resp->body = req->body ? json_incref(req->body) : json_object();
    return 0;
}

static const struct http_route routes[] = {
    { "GET", "/v1/whoami", h_whoami },
    { "POST", "/v1/echo", h_echo },
    { NULL, NULL, NULL },
};

static struct http_server *start_server(struct pki *p, const char *crl, const char *allowed_cn,
                                        struct error **errp)
{
    AUTOFREE char *cert = pki_file(p, "server.pem");
    AUTOFREE char *key = pki_file(p, "server-key.pem");
    AUTOFREE char *ca = pki_file(p, "ca.pem");
    AUTOFREE char *crl_path = crl ? pki_file(p, crl) : NULL;
    struct http_tls_config tls = {
        .cert_file = cert,
        .key_file = key,
        .ca_file = ca,
        .crl_file = crl_path,
        .allowed_cn = allowed_cn,
    };
    struct http_server_config cfg = {
        .tcp_address = "127.0.0.1",
        .tcp_port = 0,
        .tls = &tls,
        .routes = routes,
    };
    return http_server_start(&cfg, errp);
}

static int group_setup(void **state)
{
    struct pki *p = xzalloc(sizeof *p);
    const char *tmp = getenv("TMPDIR");
    p->dir = xasprintf("%s/strata-pki-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(p->dir));

    const char *srcdir = getenv("STRATA_SRCDIR");
    assert_non_null(srcdir);
    AUTOFREE char *script = xasprintf("%s/tools/make-test-pki.sh", srcdir);
    AUTOFREE char *pkidir = pki_file(p, "pki");
    AUTOCOMMAND struct command *cmd = command_new(script);
    command_add_args(cmd, pkidir, "localhost", NULL);
    command_set_timeout(cmd, 60000);
    AUTOERROR struct error *err = NULL;
    if (command_run(cmd, NULL, NULL, NULL, &err) < 0)
        fail_msg("make-test-pki.sh failed: %s", err->message);
    free(p->dir);
    p->dir = steal_pointer(&pkidir);

    p->server = start_server(p, "crl.pem", NULL, &err);
    if (!p->server)
        fail_msg("cannot start TLS server: %s", err->message);
    p->port = http_server_port(p->server);
    assert_true(p->port > 0);
    *state = p;
    return 0;
}

static int group_teardown(void **state)
{
    struct pki *p = *state;
    http_server_stop(p->server);
    /* p->dir is "<tmp>/strata-pki-XXXXXX/pki": remove the parent. */
    char *slash = strrchr(p->dir, '/');
    *slash = '\0';
    AUTOERROR struct error *err = NULL;
    assert_int_equal(rm_rf(p->dir, &err), 0);
    free(p->dir);
    free(p);
    return 0;
}

/* A client with 'cert' (a name in the PKI, or NULL for none), trusting
 * 'ca' (default "ca"), to 'host' checked as 'server_name'. */
static struct http_client *client_for(const struct pki *p, unsigned short port,
                                      const char *cert, const char *ca, const char *host,
                                      const char *server_name)
{
    AUTOFREE char *cert_path = cert ? xasprintf("%s/%s.pem", p->dir, cert) : NULL;
    AUTOFREE char *key_path = cert ? xasprintf("%s/%s-key.pem", p->dir, cert) : NULL;
    AUTOFREE char *ca_path = xasprintf("%s/%s.pem", p->dir, ca ? ca : "ca");
    struct http_client_config cfg = {
        .host = host ? host : "127.0.0.1",
        .port = port,
        .server_name = server_name,
        .ca_file = ca_path,
        .cert_file = cert_path,
        .key_file = key_path,
        .connect_timeout_ms = 5000,
        .timeout_ms = 10000,
    };
    AUTOERROR struct error *err = NULL;
    struct http_client *c = http_client_new(&cfg, &err);
    if (!c)
        fail_msg("http_client_new: %s", err->message);
    return c;
}

static void expect_refused(const struct pki *p, const char *cert)
{
    int before = atomic_load(&handler_calls);
    AUTOHTTPCLIENT struct http_client *c = client_for(p, p->port, cert, NULL, NULL, NULL);
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *reply = NULL;
    long status = -1;
    int r = http_client_request(c, "GET", "/v1/whoami", NULL, &status, &reply, &err);
    if (r == 0)
        fail_msg("client certificate '%s' was accepted", cert ? cert : "(none)");
    assert_null(reply);
    /* Either the handshake failed (no HTTP status) or the request path
     * refused it with 401/403; never a handler. */
    if (status != 0)
        assert_true(status == 401 || status == 403);
    else
        assert_int_equal(err->code, ERR_IO);
    assert_int_equal(atomic_load(&handler_calls), before);
}

static void test_good_client(void **state)
{
    struct pki *p = *state;
    AUTOHTTPCLIENT struct http_client *c = client_for(p, p->port, "client", NULL, NULL, NULL);
    for (int i = 0; i < 3; i++) {   /* the connection is reused */
        AUTOERROR struct error *err = NULL;
        AUTOJSON json_t *reply = NULL;
        long status = 0;
        assert_int_equal(http_client_request(c, "GET", "/v1/whoami", NULL, &status, &reply,
                                             &err), 0);
        assert_int_equal(status, 200);
        assert_string_equal(json_string_value(json_object_get(reply, "cn")), "strata-client");
    }
    assert_int_equal(http_client_connect_count(c), 1);
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *body = json_pack("{s:s}", "k", "v");
    AUTOJSON json_t *reply = NULL;
    assert_int_equal(http_client_request(c, "POST", "/v1/echo", body, NULL, &reply, &err), 0);
    assert_true(json_equal(body, reply));

    /* Errors come back as over the unix socket. */
    long status = 0;
    assert_int_equal(http_client_request(c, "GET", "/v1/nope", NULL, &status, NULL, &err), -1);
    assert_int_equal(status, 404);
    assert_int_equal(err->code, ERR_NOT_FOUND);
}

static void test_no_client_cert(void **state)
{
    expect_refused(*state, NULL);
}

static void test_foreign_ca(void **state)
{
    expect_refused(*state, "foreign-client");
}

static void test_expired(void **state)
{
    expect_refused(*state, "expired");
}

static void test_revoked(void **state)
{
    expect_refused(*state, "revoked");
}

static void test_plain_http_refused(void **state)
{
    struct pki *p = *state;
    int before = atomic_load(&handler_calls);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_port = htons(p->port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    static const char req[] = "GET /v1/whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
    char buf[4096] = "";
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, 3000) <= 0)
            break;
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t) n;
        if (len >= sizeof buf - 1)
            break;
    }
    buf[len] = '\0';
    close(fd);
    assert_null(strstr(buf, "HTTP/1."));
    assert_int_equal(atomic_load(&handler_calls), before);
}

static void test_client_pins_ca(void **state)
{
    struct pki *p = *state;
    /* Trusting only the foreign CA, the client refuses our server. */
    AUTOHTTPCLIENT struct http_client *c = client_for(p, p->port, "client", "foreign-ca", NULL,
                                                      NULL);
    AUTOERROR struct error *err = NULL;
    long status = -1;
    assert_int_equal(http_client_request(c, "GET", "/v1/whoami", NULL, &status, NULL, &err), -1);
    assert_int_equal(status, 0);
    assert_int_equal(err->code, ERR_IO);
}

static void test_client_checks_server_name(void **state)
{
    struct pki *p = *state;
    AUTOERROR struct error *err = NULL;
    long status = 0;

    /* Connecting to 127.0.0.1 but checking the name "localhost" (in the SAN). */
    AUTOHTTPCLIENT struct http_client *ok = client_for(p, p->port, "client", NULL, NULL,
                                                       "localhost");
    assert_int_equal(http_client_request(ok, "GET", "/v1/whoami", NULL, &status, NULL, &err), 0);
    assert_int_equal(status, 200);

    /* A name the certificate does not carry is refused. */
    AUTOHTTPCLIENT struct http_client *bad = client_for(p, p->port, "client", NULL, NULL,
                                                        "agent7.example");
    assert_int_equal(http_client_request(bad, "GET", "/v1/whoami", NULL, &status, NULL, &err),
                     -1);
    assert_int_equal(err->code, ERR_IO);
    assert_int_equal(status, 0);
}

static void test_allowed_cn(void **state)
{
    struct pki *p = *state;
    AUTOERROR struct error *err = NULL;
    struct pki only = *p;
    only.server = start_server(p, NULL, "other-client", &err);
    assert_non_null(only.server);
    only.port = http_server_port(only.server);

    AUTOHTTPCLIENT struct http_client *good = client_for(p, only.port, "other-client", NULL,
                                                         NULL, NULL);
    AUTOJSON json_t *reply = NULL;
    assert_int_equal(http_client_request(good, "GET", "/v1/whoami", NULL, NULL, &reply, &err), 0);
    assert_string_equal(json_string_value(json_object_get(reply, "cn")), "other-client");

    expect_refused(&only, "client");
    /* Without a CRL configured, the revoked certificate is only refused by
     * its CN here; the CRL case is test_revoked. */
    expect_refused(&only, "revoked");
    http_server_stop(only.server);
}

static void test_bad_tls_config(void **state)
{
    struct pki *p = *state;
    AUTOERROR struct error *err = NULL;

    /* A "CRL" that is not one (or not signed by the CA) is refused. */
    assert_null(start_server(p, "ca.pem", NULL, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    err = NULL;

    AUTOFREE char *cert = pki_file(p, "server.pem");
    struct http_tls_config no_ca = { .cert_file = cert, .key_file = cert };
    struct http_server_config cfg = { .tcp_address = "127.0.0.1", .tls = &no_ca,
                                      .routes = routes };
    assert_null(http_server_start(&cfg, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    err = NULL;

    /* A key that does not parse: MHD refuses to start. */
    AUTOFREE char *ca = pki_file(p, "ca.pem");
    struct http_tls_config bad_key = { .cert_file = cert, .key_file = ca, .ca_file = ca };
    cfg.tls = &bad_key;
    assert_null(http_server_start(&cfg, &err));
    assert_non_null(err);
    error_free(err);
    err = NULL;

    struct http_tls_config missing = { .cert_file = "/nonexistent.pem", .key_file = cert,
                                       .ca_file = ca };
    cfg.tls = &missing;
    assert_null(http_server_start(&cfg, &err));
    assert_non_null(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_client),
        cmocka_unit_test(test_no_client_cert),
        cmocka_unit_test(test_foreign_ca),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_revoked),
        cmocka_unit_test(test_plain_http_refused),
        cmocka_unit_test(test_client_pins_ca),
        cmocka_unit_test(test_client_checks_server_name),
        cmocka_unit_test(test_allowed_cn),
        cmocka_unit_test(test_bad_tls_config),
    };
    return cmocka_run_group_tests_name("http_tls", tests, group_setup, group_teardown);
}
