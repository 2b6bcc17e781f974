/* test_ca.c - the manager's certificate authority, checked by the same TLS
 * stack the agent serves with (http_server, mutual TLS) and the manager
 * calls with (http_client).
 *
 * Cases: first open creates the CA and the manager's client certificate
 * (modes 0700/0600), reopening loads the same ones, an incomplete CA is
 * refused; an agent certificate issued for "node1" serves mutual TLS to the
 * manager's client certificate, with the agent's allowed CN; a client of
 * another CA, a wrong CN, a server certificate used as a client and a
 * revoked certificate (ca_crl) are refused; a CSR is signed with the
 * manager's names, not the request's; bad input is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "http/http_client.h"
#include "http/http_server.h"
#include "manager/ca.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

struct fixture {
    char *dir;
    struct ca *ca;
};

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof *f);
    char tmpl[] = "/tmp/strata-ca-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    AUTOFREE char *pki = xasprintf("%s/pki", f->dir);
    struct error *err = NULL;
    f->ca = ca_open(pki, &err);
    if (!f->ca)
        fail_msg("ca_open: %s", err->message);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ca_free(f->ca);
    rm_rf(f->dir, NULL);
    free(f->dir);
    free(f);
    return 0;
}

static char *write_tmp(struct fixture *f, const char *name, const char *content)
{
    char *path = xasprintf("%s/%s", f->dir, name);
    assert_int_equal(file_write_atomic(path, content, strlen(content), 0600, NULL), 0);
    return path;
}

static int h_whoami(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    (void) opaque;
    (void) errp;
    resp->body = json_pack("{s:s?}", "cn", req->peer_cn);
    return 0;
}

static const struct http_route routes[] = {
    { "GET", "/v1/whoami", h_whoami },
    { NULL, NULL, NULL },
};

/* Starts an mTLS server on 127.0.0.1 with 'cert'/'key', trusting 'ca'. */
static struct http_server *serve(const char *cert, const char *key, const char *ca,
                                 const char *crl)
{
    struct http_tls_config tls = {
        .cert_file = cert, .key_file = key, .ca_file = ca, .crl_file = crl,
        .allowed_cn = CA_MANAGER_CN,
    };
    struct http_server_config sc = { .tcp_address = "127.0.0.1", .tls = &tls, .routes = routes };
    struct error *err = NULL;
    struct http_server *s = http_server_start(&sc, &err);
    if (!s)
        fail_msg("http_server_start: %s", err->message);
    return s;
}

/* One GET /v1/whoami as the client 'cert'/'key'; returns 0 and the CN seen,
 * or -1. */
static int call(struct http_server *s, const char *server_name, const char *ca,
                const char *cert, const char *key, char **cn)
{
    struct http_client_config cc = {
        .host = "127.0.0.1", .port = http_server_port(s), .server_name = server_name,
        .ca_file = ca, .cert_file = cert, .key_file = key, .timeout_ms = 5000,
    };
    AUTOERROR struct error *err = NULL;
    AUTOHTTPCLIENT struct http_client *c = http_client_new(&cc, &err);
    assert_non_null(c);
    AUTOJSON json_t *r = NULL;
    if (http_client_request(c, "GET", "/v1/whoami", NULL, NULL, &r, &err) < 0)
        return -1;
    if (cn)
        *cn = xstrdup(json_string_value(json_object_get(r, "cn")));
    return 0;
}

static void test_open_and_reopen(void **state)
{
    struct fixture *f = *state;
    struct stat sb;
    assert_int_equal(stat(ca_dir(f->ca), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    AUTOFREE char *key = xasprintf("%s/ca-key.pem", ca_dir(f->ca));
    assert_int_equal(stat(key, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(ca_client_key_file(f->ca), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_non_null(strstr(ca_cert_pem(f->ca), "BEGIN CERTIFICATE"));
    AUTOFREE char *client1 = file_read_all(ca_client_cert_file(f->ca), 1 << 16, NULL, NULL);

    AUTOERROR struct error *err = NULL;
    struct ca *again = ca_open(ca_dir(f->ca), &err);
    assert_non_null(again);
    assert_string_equal(ca_cert_pem(again), ca_cert_pem(f->ca));
    AUTOFREE char *client2 = file_read_all(ca_client_cert_file(again), 1 << 16, NULL, NULL);
    assert_string_equal(client1, client2);
    ca_free(again);

    /* The manager's certificate says who it is and what it is for. */
    gnutls_x509_crt_t crt;
    gnutls_datum_t d = { (unsigned char *) client1, (unsigned) strlen(client1) };
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
    char buf[128];
    size_t n = sizeof buf;
    assert_int_equal(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf,
                                                   &n), 0);
    assert_string_equal(buf, CA_MANAGER_CN);
    n = sizeof buf;
    assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 0, buf, &n, NULL), 0);
    assert_string_equal(buf, GNUTLS_KP_TLS_WWW_CLIENT);
    gnutls_x509_crt_deinit(crt);

    /* A CA without its key is refused, not silently replaced. */
    assert_int_equal(unlink(key), 0);
    assert_null(ca_open(ca_dir(f->ca), &err));
    assert_int_equal(err->code, ERR_CONFLICT);
}

static void test_agent_certificate(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    static const char *const dns[] = { "node1", NULL };
    static const char *const ips[] = { "127.0.0.1", "::1", NULL };
    struct ca_request req = { .cn = "node1", .dns_names = dns, .ip_addresses = ips,
                              .purpose = CA_SERVER };
    struct ca_issued agent = { 0 };
    assert_int_equal(ca_issue(f->ca, &req, &agent, &err), 0);
    assert_int_equal(strlen(agent.serial), CA_SERIAL_HEX);
    assert_true(agent.not_after_ms > 0);
    AUTOFREE char *cert = write_tmp(f, "agent.pem", agent.cert_pem);
    AUTOFREE char *key = write_tmp(f, "agent-key.pem", agent.key_pem);
    struct http_server *s = serve(cert, key, ca_cert_file(f->ca), NULL);

    /* The manager's client certificate gets in; the agent's name is checked. */
    AUTOFREE char *cn = NULL;
    assert_int_equal(call(s, "node1", ca_cert_file(f->ca), ca_client_cert_file(f->ca),
                          ca_client_key_file(f->ca), &cn), 0);
    assert_string_equal(cn, CA_MANAGER_CN);
    assert_int_equal(call(s, "node2", ca_cert_file(f->ca), ca_client_cert_file(f->ca),
                          ca_client_key_file(f->ca), NULL), -1);

    /* Another CA's client, even named strata-manager: refused. */
    AUTOFREE char *other_dir = xasprintf("%s/other", f->dir);
    struct ca *other = ca_open(other_dir, &err);
    assert_non_null(other);
    assert_int_equal(call(s, "node1", ca_cert_file(f->ca), ca_client_cert_file(other),
                          ca_client_key_file(other), NULL), -1);
    ca_free(other);

    /* Our CA, wrong CN: refused by the agent's allowed CN. */
    struct ca_request creq = { .cn = "someone", .purpose = CA_CLIENT };
    struct ca_issued someone = { 0 };
    assert_int_equal(ca_issue(f->ca, &creq, &someone, &err), 0);
    AUTOFREE char *sc = write_tmp(f, "someone.pem", someone.cert_pem);
    AUTOFREE char *sk = write_tmp(f, "someone-key.pem", someone.key_pem);
    assert_int_equal(call(s, "node1", ca_cert_file(f->ca), sc, sk, NULL), -1);

    /* An agent (server) certificate cannot act as a client. */
    assert_int_equal(call(s, "node1", ca_cert_file(f->ca), cert, key, NULL), -1);
    http_server_stop(s);

    /* Revocation: a second manager-named client certificate, revoked. */
    struct ca_request mreq = { .cn = CA_MANAGER_CN, .purpose = CA_CLIENT };
    struct ca_issued stolen = { 0 };
    assert_int_equal(ca_issue(f->ca, &mreq, &stolen, &err), 0);
    AUTOFREE char *tc = write_tmp(f, "stolen.pem", stolen.cert_pem);
    AUTOFREE char *tk = write_tmp(f, "stolen-key.pem", stolen.key_pem);
    const char *const revoked[] = { stolen.serial, someone.serial, NULL };
    AUTOFREE char *crl_pem = ca_crl(f->ca, revoked, 0, &err);
    assert_non_null(crl_pem);
    AUTOFREE char *crl = write_tmp(f, "crl.pem", crl_pem);
    s = serve(cert, key, ca_cert_file(f->ca), crl);
    assert_int_equal(call(s, "node1", ca_cert_file(f->ca), tc, tk, NULL), -1);
    assert_int_equal(call(s, "node1", ca_cert_file(f->ca), ca_client_cert_file(f->ca),
                          ca_client_key_file(f->ca), NULL), 0);
    http_server_stop(s);

    const char *const bad_serial[] = { "xyz", NULL };
    assert_null(ca_crl(f->ca, bad_serial, 0, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    ca_issued_clear(&agent);
    ca_issued_clear(&someone);
    ca_issued_clear(&stolen);
}

/* Makes a key and a CSR naming itself "evil" with its own SAN. */
static void make_csr(char **key_pem, char **csr_pem)
{
    gnutls_x509_privkey_t key;
    gnutls_x509_crq_t crq;
    assert_int_equal(gnutls_x509_privkey_init(&key), 0);
    assert_int_equal(gnutls_x509_privkey_generate(
                         key, GNUTLS_PK_ECDSA,
                         GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0);
    assert_int_equal(gnutls_x509_crq_init(&crq), 0);
    assert_int_equal(gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, "evil",
                                                   4), 0);
    assert_int_equal(gnutls_x509_crq_set_subject_alt_name(crq, GNUTLS_SAN_DNSNAME, "evil", 4,
                                                          GNUTLS_FSAN_APPEND), 0);
    assert_int_equal(gnutls_x509_crq_set_key(crq, key), 0);
    assert_int_equal(gnutls_x509_crq_sign2(crq, key, GNUTLS_DIG_SHA256, 0), 0);
    gnutls_datum_t d;
    assert_int_equal(gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &d), 0);
    *csr_pem = xstrndup((char *) d.data, d.size);
    gnutls_free(d.data);
    assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d), 0);
    *key_pem = xstrndup((char *) d.data, d.size);
    gnutls_free(d.data);
    gnutls_x509_crq_deinit(crq);
    gnutls_x509_privkey_deinit(key);
}

static void test_csr(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    AUTOFREE char *key_pem = NULL, *csr_pem = NULL;
    make_csr(&key_pem, &csr_pem);
    static const char *const ips[] = { "127.0.0.1", NULL };
    struct ca_request req = { .cn = "node2", .ip_addresses = ips, .purpose = CA_SERVER,
                              .csr_pem = csr_pem };
    struct ca_issued out = { 0 };
    assert_int_equal(ca_issue(f->ca, &req, &out, &err), 0);
    assert_null(out.key_pem);              /* the key never left the host */
    AUTOFREE char *cert = write_tmp(f, "node2.pem", out.cert_pem);
    AUTOFREE char *key = write_tmp(f, "node2-key.pem", key_pem);
    struct http_server *s = serve(cert, key, ca_cert_file(f->ca), NULL);
    /* The manager's names count, not the request's. */
    assert_int_equal(call(s, "127.0.0.1", ca_cert_file(f->ca), ca_client_cert_file(f->ca),
                          ca_client_key_file(f->ca), NULL), 0);
    assert_int_equal(call(s, "evil", ca_cert_file(f->ca), ca_client_cert_file(f->ca),
                          ca_client_key_file(f->ca), NULL), -1);
    http_server_stop(s);
    gnutls_x509_crt_t crt;
    gnutls_datum_t d = { (unsigned char *) out.cert_pem, (unsigned) strlen(out.cert_pem) };
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
    char buf[128];
    size_t n = sizeof buf;
    assert_int_equal(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf,
                                                   &n), 0);
    assert_string_equal(buf, "node2");
    gnutls_x509_crt_deinit(crt);
    ca_issued_clear(&out);

    /* A tampered request, garbage, a bad address, no name. */
    AUTOFREE char *tampered = xstrdup(csr_pem);
    char *mid = tampered + strlen(tampered) / 2;
    *mid = *mid == 'A' ? 'B' : 'A';
    req.csr_pem = tampered;
    assert_int_equal(ca_issue(f->ca, &req, &out, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(steal_pointer(&err));
    req.csr_pem = "not a request";
    assert_int_equal(ca_issue(f->ca, &req, &out, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(steal_pointer(&err));
    static const char *const bad_ips[] = { "300.1.1.1", NULL };
    struct ca_request bad = { .cn = "x", .ip_addresses = bad_ips };
    assert_int_equal(ca_issue(f->ca, &bad, &out, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(steal_pointer(&err));
    struct ca_request noname = { .cn = "" };
    assert_int_equal(ca_issue(f->ca, &noname, &out, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csr, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
