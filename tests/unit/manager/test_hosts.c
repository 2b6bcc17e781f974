/* test_hosts.c - hosts joining with one-time tokens, and the monitor
 * reaching their agents over mutual TLS.
 *
 * A manager with a CA in a temporary directory serves the API on a unix
 * socket.  An administrator makes join tokens; a host joins with one (bad,
 * reused, expired tokens and a taken name are refused and change nothing);
 * a fake agent is then served by http_server with exactly what the join
 * answered (certificate, key, CA, the manager's CN as the only client), and
 * host_monitor_poll() must find it: 'connected', facts recorded, an event;
 * once it stops, 'disconnected' and an event; a host in maintenance keeps
 * that state.  A join with a CSR gets a certificate for the host's key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "http/http_client.h"
#include "manager/api.h"
#include "manager/ca.h"
#include "manager/hosts.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

struct fixture {
    char *dir, *sock;
    struct manager *m;
    struct http_server *server;
    struct http_client *client;
    char *admin;
};

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof *f);
    char tmpl[] = "/tmp/strata-hosts-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    f->sock = xasprintf("%s/m.sock", f->dir);
    AUTOFREE char *db = xasprintf("%s/m.db", f->dir);
    AUTOFREE char *pki = xasprintf("%s/pki", f->dir);
    struct error *err = NULL;
    struct manager_config mc = { .db = db, .admin_password = "admin-password", .pki_dir = pki };
    f->m = manager_open(&mc, &err);
    assert_non_null(f->m);
    struct http_server_config sc = { .unix_path = f->sock, .routes = manager_api_routes(),
                                     .opaque = f->m, .max_body = API_MAX_BODY };
    f->server = http_server_start(&sc, &err);
    assert_non_null(f->server);
    struct http_client_config cc = { .unix_path = f->sock };
    f->client = http_client_new(&cc, &err);
    assert_non_null(f->client);
    f->admin = auth_login(f->m->store, "admin", "admin-password", 0, NULL, NULL, &err);
    assert_non_null(f->admin);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    http_client_free(f->client);
    http_server_stop(f->server);
    manager_close(f->m);
    rm_rf(f->dir, NULL);
    free(f->admin);
    free(f->sock);
    free(f->dir);
    free(f);
    return 0;
}

static long call(struct fixture *f, const char *token, const char *method, const char *path,
                 json_t *body, json_t **reply)
{
    AUTOERROR struct error *err = NULL;
    assert_int_equal(http_client_set_bearer_token(f->client, token, &err), 0);
    long status = 0;
    json_t *r = NULL;
    if (http_client_request(f->client, method, path, body, &status, &r, &err) < 0)
        r = error_to_json(err);
    json_decref(body);
    if (reply)
        *reply = r;
    else
        json_decref(r);
    return status;
}

static int64_t count(struct fixture *f, const char *sql)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_READ, &err);
    int64_t n = -1;
    assert_int_equal(store_query_int(t, sql, STORE_NO_ARGS, &n, &err), 1);
    return n;
}

static void exec_sql(struct fixture *f, const char *sql, const char *arg)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_WRITE, &err);
    assert_true(store_exec(t, sql, STORE_ARGS(SV_TEXT(arg)), &err) >= 0);
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
}

static char *new_join_token(struct fixture *f, const char *cluster)
{
    json_t *r = NULL;
    json_t *body = cluster ? json_pack("{s:s}", "cluster", cluster) : NULL;
    assert_int_equal(call(f, f->admin, "POST", "/api/v1/join-tokens", body, &r), 201);
    char *tok = xstrdup(json_string_value(json_object_get(r, "token")));
    json_decref(r);
    assert_int_equal(strlen(tok), 68);
    assert_true(!strncmp(tok, "sjt_", 4));
    return tok;
}

/* ---- a fake agent ------------------------------------------------------- */

static int h_host(const struct http_request *req, struct http_response *resp, void *opaque,
                  struct error **errp)
{
    (void) opaque;
    (void) errp;
    resp->body = json_pack("{s:s, s:i, s:s}", "hostname", "node1", "cpus", 8, "seen_by",
                           req->peer_cn ? req->peer_cn : "");
    return 0;
}

static int h_stats(const struct http_request *req, struct http_response *resp, void *opaque,
                   struct error **errp)
{
    (void) req;
    (void) opaque;
    (void) errp;
    resp->body = json_pack("{s:i}", "vms_running", 0);
    return 0;
}

static const struct http_route agent_routes[] = {
    { "GET", "/v1/host", h_host },
    { "GET", "/v1/host/stats", h_stats },
    { NULL, NULL, NULL },
};

/* Serves the agent with what the join answered, as the agent would run:
 * --tls-cert/--tls-key/--tls-ca/--tls-peer-cn. */
static struct http_server *fake_agent(struct fixture *f, const json_t *joined,
                                      const char *key_pem)
{
    AUTOFREE char *cert = xasprintf("%s/agent.pem", f->dir);
    AUTOFREE char *key = xasprintf("%s/agent-key.pem", f->dir);
    AUTOFREE char *ca = xasprintf("%s/agent-ca.pem", f->dir);
    const char *c = json_string_value(json_object_get(joined, "cert_pem"));
    const char *k = key_pem ? key_pem : json_string_value(json_object_get(joined, "key_pem"));
    const char *a = json_string_value(json_object_get(joined, "ca_pem"));
    assert_non_null(c);
    assert_non_null(k);
    assert_non_null(a);
    assert_int_equal(file_write_atomic(cert, c, strlen(c), 0600, NULL), 0);
    assert_int_equal(file_write_atomic(key, k, strlen(k), 0600, NULL), 0);
    assert_int_equal(file_write_atomic(ca, a, strlen(a), 0600, NULL), 0);
    struct http_tls_config tls = {
        .cert_file = cert, .key_file = key, .ca_file = ca,
        .allowed_cn = json_string_value(json_object_get(joined, "manager_cn")),
    };
    struct http_server_config sc = { .tcp_address = "127.0.0.1", .tls = &tls,
                                     .routes = agent_routes };
    struct error *err = NULL;
    struct http_server *s = http_server_start(&sc, &err);
    if (!s)
        fail_msg("fake agent: %s", err->message);
    return s;
}

static const char *host_state(struct fixture *f, const char *name, json_t **hold)
{
    AUTOFREE char *path = xasprintf("/api/v1/hosts/%s", name);
    assert_int_equal(call(f, f->admin, "GET", path, NULL, hold), 200);
    return json_string_value(json_object_get(*hold, "state"));
}

/* ---- cases -------------------------------------------------------------- */

static void test_join_tokens(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(call(f, f->admin, "POST", "/api/v1/sites", json_pack("{s:s}", "name",
                                                                          "dc1"), NULL), 201);
    assert_int_equal(call(f, f->admin, "POST", "/api/v1/clusters",
                          json_pack("{s:s, s:s}", "name", "c1", "site", "dc1"), NULL), 201);
    AUTOFREE char *t1 = new_join_token(f, "c1");
    AUTOFREE char *t2 = new_join_token(f, NULL);
    json_t *r = NULL;
    assert_int_equal(call(f, f->admin, "GET", "/api/v1/join-tokens", NULL, &r), 200);
    assert_int_equal(json_integer_value(json_object_get(r, "total")), 2);
    AUTOFREE char *text = json_to_string(r);
    assert_null(strstr(text, t1 + 4));     /* secrets are never listed */
    json_decref(r);
    assert_int_equal(call(f, f->admin, "GET", "/api/v1/join-tokens?cluster=c1", NULL, &r), 200);
    assert_int_equal(json_integer_value(json_object_get(r, "total")), 1);
    AUTOFREE char *id = xstrdup(json_string_value(
        json_object_get(json_array_get(json_object_get(r, "items"), 0), "id")));
    json_decref(r);
    assert_int_equal(call(f, f->admin, "POST", "/api/v1/join-tokens",
                          json_pack("{s:s}", "cluster", "nope"), NULL), 404);
    assert_int_equal(call(f, f->admin, "POST", "/api/v1/join-tokens",
                          json_pack("{s:i}", "expires_in_s", 5), NULL), 400);

    /* Joins: refused ones change nothing. */
    json_t *bad[] = {
        json_pack("{s:s, s:s, s:s}", "token", "sjt_nope", "name", "node1", "address",
                  "127.0.0.1"),
        json_pack("{s:s, s:s, s:s}", "token",
                  "sjt_0000000000000000000000000000000000000000000000000000000000000000", "name",
                  "node1", "address", "127.0.0.1"),
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts", bad[i], NULL), 401);
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s}", "token", t1, "name", "bad name",
                                    "address", "127.0.0.1"), NULL), 400);
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s}", "token", t1, "name", "node1",
                                    "address", "no spaces please"), NULL), 400);
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s, s:b}", "token", t1, "name", "node1",
                                    "address", "127.0.0.1", "trusted", 1), NULL), 400);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM hosts"), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM join_tokens WHERE used_at IS NOT NULL"), 0);

    /* A good join; the token then is spent. */
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s, s:i}", "token", t1, "name", "node1",
                                    "address", "127.0.0.1", "port", 4000), &r), 201);
    json_t *host = json_object_get(r, "host");
    assert_string_equal(json_string_value(json_object_get(host, "state")), "disconnected");
    assert_string_equal(json_string_value(json_object_get(host, "cluster_name")), "c1");
    assert_int_equal(json_integer_value(json_object_get(host, "port")), 4000);
    assert_non_null(strstr(json_string_value(json_object_get(r, "key_pem")), "PRIVATE KEY"));
    assert_string_equal(json_string_value(json_object_get(r, "manager_cn")), CA_MANAGER_CN);
    json_decref(r);
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s}", "token", t1, "name", "node9",
                                    "address", "127.0.0.1"), NULL), 401);
    /* A taken name: refused, the token stays good. */
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s}", "token", t2, "name", "node1",
                                    "address", "127.0.0.2"), NULL), 409);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM join_tokens WHERE used_at IS NULL"), 1);
    /* Expired. */
    exec_sql(f, "UPDATE join_tokens SET expires_at = 1 WHERE used_at IS NULL AND ? IS NOT NULL",
             "x");
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s}", "token", t2, "name", "node2",
                                    "address", "127.0.0.2"), NULL), 401);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM hosts"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE type = 'host.joined'"), 1);

    AUTOFREE char *path = xasprintf("/api/v1/join-tokens/%s", id);
    assert_int_equal(call(f, f->admin, "DELETE", path, NULL, NULL), 204);
    assert_int_equal(call(f, f->admin, "DELETE", path, NULL, NULL), 404);
    assert_int_equal(call(f, f->admin, "DELETE", "/api/v1/hosts/node1", NULL, NULL), 204);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM hosts"), 0);
}

static void test_monitor(void **state)
{
    struct fixture *f = *state;
    AUTOFREE char *tok = new_join_token(f, NULL);
    json_t *joined = NULL;
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s, s:[s]}", "token", tok, "name", "node1",
                                    "address", "127.0.0.1", "addresses", "node1.lab"),
                          &joined), 201);
    struct http_server *agent = fake_agent(f, joined, NULL);
    AUTOFREE char *port = xasprintf("%u", http_server_port(agent));
    exec_sql(f, "UPDATE hosts SET port = CAST(? AS INTEGER)", port);

    AUTOERROR struct error *err = NULL;
    assert_int_equal(host_monitor_poll(f->m, &err), 1);
    json_t *h = NULL;
    assert_string_equal(host_state(f, "node1", &h), "connected");
    json_t *facts = json_object_get(h, "facts");
    assert_int_equal(json_integer_value(json_object_get(facts, "cpus")), 8);
    assert_string_equal(json_string_value(json_object_get(facts, "seen_by")), CA_MANAGER_CN);
    assert_true(json_is_string(json_object_get(h, "last_seen_at")));
    json_decref(h);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE type = 'host.connected'"), 1);
    assert_int_equal(host_monitor_poll(f->m, &err), 1);     /* no new event when steady */
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE type = 'host.connected'"), 1);

    /* The agent goes away. */
    http_server_stop(agent);
    assert_int_equal(host_monitor_poll(f->m, &err), 0);
    assert_string_equal(host_state(f, "node1", &h), "disconnected");
    json_decref(h);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE type = 'host.disconnected' "
                              "AND severity = 'warning'"), 1);

    /* Maintenance is kept whatever the heartbeat says. */
    assert_int_equal(call(f, f->admin, "POST", "/api/v1/hosts/node1/maintenance", NULL, NULL),
                     200);
    agent = fake_agent(f, joined, NULL);
    AUTOFREE char *port2 = xasprintf("%u", http_server_port(agent));
    exec_sql(f, "UPDATE hosts SET port = CAST(? AS INTEGER)", port2);
    assert_int_equal(host_monitor_poll(f->m, &err), 1);
    assert_string_equal(host_state(f, "node1", &h), "maintenance");
    json_decref(h);
    assert_int_equal(call(f, f->admin, "DELETE", "/api/v1/hosts/node1/maintenance", NULL, NULL),
                     200);
    assert_int_equal(host_monitor_poll(f->m, &err), 1);
    assert_string_equal(host_state(f, "node1", &h), "connected");
    json_decref(h);
    http_server_stop(agent);

    /* An agent presenting a certificate for another name is not this host. */
    AUTOFREE char *tok2 = new_join_token(f, NULL);
    json_t *other = NULL;
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s}", "token", tok2, "name", "node2",
                                    "address", "127.0.0.1"), &other), 201);
    agent = fake_agent(f, joined, NULL);               /* node1's certificate */
    AUTOFREE char *port3 = xasprintf("%u", http_server_port(agent));
    exec_sql(f, "UPDATE hosts SET port = CAST(? AS INTEGER) WHERE name = 'node2'", port3);
    exec_sql(f, "UPDATE hosts SET port = 1 WHERE name = ?", "node1");
    assert_int_equal(host_monitor_poll(f->m, &err), 0);
    assert_string_equal(host_state(f, "node2", &h), "disconnected");
    json_decref(h);
    http_server_stop(agent);
    json_decref(other);
    json_decref(joined);
}

static void test_join_with_csr(void **state)
{
    struct fixture *f = *state;
    gnutls_x509_privkey_t key;
    gnutls_x509_crq_t crq;
    assert_int_equal(gnutls_x509_privkey_init(&key), 0);
    assert_int_equal(gnutls_x509_privkey_generate(
                         key, GNUTLS_PK_ECDSA,
                         GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0);
    assert_int_equal(gnutls_x509_crq_init(&crq), 0);
    assert_int_equal(gnutls_x509_crq_set_key(crq, key), 0);
    assert_int_equal(gnutls_x509_crq_sign2(crq, key, GNUTLS_DIG_SHA256, 0), 0);
    gnutls_datum_t d;
    assert_int_equal(gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &d), 0);
    AUTOFREE char *csr = xstrndup((char *) d.data, d.size);
    gnutls_free(d.data);
    assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d), 0);
    AUTOFREE char *key_pem = xstrndup((char *) d.data, d.size);
    gnutls_free(d.data);
    gnutls_x509_crq_deinit(crq);
    gnutls_x509_privkey_deinit(key);

    AUTOFREE char *tok = new_join_token(f, NULL);
    json_t *joined = NULL;
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s, s:s}", "token", tok, "name", "node3",
                                    "address", "127.0.0.1", "csr", csr), &joined), 201);
    assert_true(json_is_null(json_object_get(joined, "key_pem")));
    struct http_server *agent = fake_agent(f, joined, key_pem);
    AUTOFREE char *port = xasprintf("%u", http_server_port(agent));
    exec_sql(f, "UPDATE hosts SET port = CAST(? AS INTEGER)", port);
    AUTOERROR struct error *err = NULL;
    assert_int_equal(host_monitor_poll(f->m, &err), 1);
    http_server_stop(agent);
    json_decref(joined);

    AUTOFREE char *tok2 = new_join_token(f, NULL);
    assert_int_equal(call(f, NULL, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s, s:s}", "token", tok2, "name", "node4",
                                    "address", "127.0.0.1", "csr", "garbage"), NULL), 400);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM join_tokens WHERE used_at IS NULL"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_join_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_with_csr, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
