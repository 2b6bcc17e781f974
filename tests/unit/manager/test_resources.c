/* test_resources.c - the manager's storage and network inventory driving
 * agents: datastores, volumes (tasks), NAT networks, DVSs and port groups,
 * the host monitor's re-push (desired/applied generations, stats), host
 * deletion with certificate revocation and the CRL.
 *
 * Two hosts join as in test_hosts.c and are served by fake agents over
 * mutual TLS with exactly what the join answered.  A fake agent keeps the
 * objects it is given by their agent path ("/v1/net/nat/n1") and can be told
 * to refuse writes, which is how "all or nothing" is checked: a refusal on
 * the second host leaves nothing on the first and no row.
 *
 * Neighbours: src/manager/resources.c, api_storage.c, api_net.c, hosts.c;
 * tests/system/test-manager-resources.sh drives a real agent. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/http_client.h"
#include "manager/api.h"
#include "manager/ca.h"
#include "manager/hosts.h"
#include "manager/resources.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

/* ---- a fake agent ------------------------------------------------------- */

struct fake {
    pthread_mutex_t lock;
    json_t *objects;            /* agent path -> object */
    long long generation;
    bool refuse;                /* answer writes with 400 */
    int writes;
    struct http_server *server;
};

static json_t *error_body(const char *code, const char *msg)
{
    return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
}

static int refuse(struct http_response *resp, int status, const char *code)
{
    resp->status = status;
    resp->body = error_body(code, "refused by the fake agent");
    return 0;
}

static int h_host(const struct http_request *req, struct http_response *resp, void *opaque,
                  struct error **errp)
{
    (void) req, (void) opaque, (void) errp;
    resp->body = json_pack("{s:s, s:i}", "hostname", "fake", "cpus", 4);
    return 0;
}

static int h_stats(const struct http_request *req, struct http_response *resp, void *opaque,
                   struct error **errp)
{
    struct fake *fa = opaque;
    (void) req, (void) errp;
    pthread_mutex_lock(&fa->lock);
    resp->body = json_pack("{s:i, s:I, s:I}", "vms_running", 0, "mem_total", (json_int_t) 4096,
                           "applied_generation", (json_int_t) fa->generation);
    pthread_mutex_unlock(&fa->lock);
    return 0;
}

static int h_generation(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct fake *fa = opaque;
    (void) errp;
    pthread_mutex_lock(&fa->lock);
    fa->generation = json_integer_value(json_object_get(req->body, "generation"));
    resp->body = json_pack("{s:I}", "applied_generation", (json_int_t) fa->generation);
    pthread_mutex_unlock(&fa->lock);
    return 0;
}

static int h_get(const struct http_request *req, struct http_response *resp, void *opaque,
                 struct error **errp)
{
    struct fake *fa = opaque;
    (void) errp;
    pthread_mutex_lock(&fa->lock);
    json_t *o = json_object_get(fa->objects, req->path);
    if (o)
        resp->body = json_deep_copy(o);
    pthread_mutex_unlock(&fa->lock);
    return o ? 0 : refuse(resp, 404, "not-found");
}

static int h_delete(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    struct fake *fa = opaque;
    (void) errp;
    pthread_mutex_lock(&fa->lock);
    bool had = json_object_get(fa->objects, req->path) != NULL;
    bool no = fa->refuse;
    if (had && !no) {
        json_object_del(fa->objects, req->path);
        fa->writes++;
    }
    pthread_mutex_unlock(&fa->lock);
    if (no)
        return refuse(resp, 409, "bad-state");
    if (!had)
        return refuse(resp, 404, "not-found");
    resp->status = 204;
    return 0;
}

/* PUT of a named object (NAT network, DVS, port group). */
static int h_put(const struct http_request *req, struct http_response *resp, void *opaque,
                 struct error **errp)
{
    struct fake *fa = opaque;
    (void) errp;
    pthread_mutex_lock(&fa->lock);
    int status = 0;
    if (fa->refuse) {
        status = 400;
    } else if (req->n_params == 2) {     /* a port group: its DVS must be there */
        AUTOFREE char *dvs = xasprintf("/v1/net/dvs/%s", req->params[0]);
        if (!json_object_get(fa->objects, dvs))
            status = 404;
    }
    if (!status) {
        json_t *o = req->body ? json_deep_copy(req->body) : json_object();
        json_object_set_new(o, "name", json_string(req->params[req->n_params - 1]));
        status = json_object_get(fa->objects, req->path) ? 200 : 201;
        json_object_set_new(fa->objects, req->path, o);
        fa->writes++;
        resp->body = json_deep_copy(o);
    }
    pthread_mutex_unlock(&fa->lock);
    if (status >= 400)
        return refuse(resp, status, status == 404 ? "not-found" : "invalid-argument");
    resp->status = status;
    return 0;
}

static void list_under(struct fake *fa, const char *prefix, json_t *out)
{
    const char *k;
    json_t *v;
    size_t pl = strlen(prefix);
    json_object_foreach(fa->objects, k, v)
        if (!strncmp(k, prefix, pl) && !strchr(k + pl, '/'))
            json_array_append(out, v);
}

static int h_ds_list(const struct http_request *req, struct http_response *resp, void *opaque,
                     struct error **errp)
{
    struct fake *fa = opaque;
    (void) req, (void) errp;
    json_t *arr = json_array();
    pthread_mutex_lock(&fa->lock);
    list_under(fa, "/v1/datastores/", arr);
    pthread_mutex_unlock(&fa->lock);
    resp->body = json_pack("{s:o}", "datastores", arr);
    return 0;
}

static int h_ds_create(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    struct fake *fa = opaque;
    (void) errp;
    const char *name = json_string_value(json_object_get(req->body, "name"));
    AUTOFREE char *key = xasprintf("/v1/datastores/%s", name ? name : "");
    pthread_mutex_lock(&fa->lock);
    int status = fa->refuse ? 400 : json_object_get(fa->objects, key) ? 409 : 201;
    if (status == 201) {
        json_t *o = json_deep_copy(req->body);
        json_object_set_new(o, "capacity", json_integer(1000000));
        json_object_set_new(o, "free", json_integer(600000));
        json_object_set_new(o, "provisioned", json_integer(0));
        json_object_set_new(o, "available", json_true());
        json_object_set_new(fa->objects, key, o);
        fa->writes++;
        resp->body = json_deep_copy(o);
    }
    pthread_mutex_unlock(&fa->lock);
    if (status != 201)
        return refuse(resp, status, status == 409 ? "conflict" : "invalid-argument");
    resp->status = 201;
    return 0;
}

static int h_vol_list(const struct http_request *req, struct http_response *resp, void *opaque,
                      struct error **errp)
{
    struct fake *fa = opaque;
    (void) errp;
    AUTOFREE char *prefix = xasprintf("/v1/datastores/%s/volumes/", req->params[0]);
    json_t *arr = json_array();
    pthread_mutex_lock(&fa->lock);
    list_under(fa, prefix, arr);
    pthread_mutex_unlock(&fa->lock);
    resp->body = json_pack("{s:o}", "volumes", arr);
    return 0;
}

static json_t *job(const char *type)
{
    return json_pack("{s:s, s:s, s:s, s:i}", "id", "job-1", "type", type, "state", "running",
                     "progress", 0);
}

static int h_vol_create(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct fake *fa = opaque;
    (void) errp;
    const char *name = json_string_value(json_object_get(req->body, "name"));
    const char *source = json_string_value(json_object_get(req->body, "source"));
    AUTOFREE char *key = xasprintf("/v1/datastores/%s/volumes/%s", req->params[0], name);
    AUTOFREE char *src = xasprintf("/v1/datastores/%s/volumes/%s", req->params[0],
                                   source ? source : "");
    pthread_mutex_lock(&fa->lock);
    int status = json_object_get(fa->objects, key) ? 409
                 : source && !json_object_get(fa->objects, src) ? 404
                 : source ? 202 : 201;
    if (status < 300) {
        json_t *o = json_deep_copy(req->body);
        json_object_set_new(o, "state", json_string("ready"));
        json_object_set_new(fa->objects, key, o);
        fa->writes++;
        resp->body = status == 202 ? job("volume-copy") : json_deep_copy(o);
    }
    pthread_mutex_unlock(&fa->lock);
    if (status >= 300)
        return refuse(resp, status, status == 409 ? "conflict" : "not-found");
    resp->status = status;
    return 0;
}

static int h_vol_wipe(const struct http_request *req, struct http_response *resp, void *opaque,
                      struct error **errp)
{
    struct fake *fa = opaque;
    (void) errp;
    AUTOFREE char *key = xasprintf("/v1/datastores/%s/volumes/%s", req->params[0],
                                   req->params[1]);
    pthread_mutex_lock(&fa->lock);
    bool there = json_object_get(fa->objects, key) != NULL;
    fa->writes += there;
    pthread_mutex_unlock(&fa->lock);
    if (!there)
        return refuse(resp, 404, "not-found");
    resp->status = 202;
    resp->body = job("volume-wipe");
    return 0;
}

static int h_job(const struct http_request *req, struct http_response *resp, void *opaque,
                 struct error **errp)
{
    (void) opaque, (void) errp;
    resp->body = json_pack("{s:s, s:s, s:i, s:{s:b}}", "id", req->params[0], "state",
                           "succeeded", "progress", 100, "result", "done", 1);
    return 0;
}

static const struct http_route agent_routes[] = {
    { "GET", "/v1/host", h_host },
    { "GET", "/v1/host/stats", h_stats },
    { "PUT", "/v1/host/generation", h_generation },
    { "GET", "/v1/datastores", h_ds_list },
    { "POST", "/v1/datastores", h_ds_create },
    { "GET", "/v1/datastores/{datastore}", h_get },
    { "DELETE", "/v1/datastores/{datastore}", h_delete },
    { "GET", "/v1/datastores/{datastore}/volumes", h_vol_list },
    { "POST", "/v1/datastores/{datastore}/volumes", h_vol_create },
    { "GET", "/v1/datastores/{datastore}/volumes/{volume}", h_get },
    { "DELETE", "/v1/datastores/{datastore}/volumes/{volume}", h_delete },
    { "POST", "/v1/datastores/{datastore}/volumes/{volume}/wipe", h_vol_wipe },
    { "GET", "/v1/jobs/{id}", h_job },
    { "GET", "/v1/net/nat/{name}", h_get },
    { "PUT", "/v1/net/nat/{name}", h_put },
    { "DELETE", "/v1/net/nat/{name}", h_delete },
    { "GET", "/v1/net/dvs/{name}", h_get },
    { "PUT", "/v1/net/dvs/{name}", h_put },
    { "DELETE", "/v1/net/dvs/{name}", h_delete },
    { "GET", "/v1/net/dvs/{name}/portgroups/{portgroup}", h_get },
    { "PUT", "/v1/net/dvs/{name}/portgroups/{portgroup}", h_put },
    { "DELETE", "/v1/net/dvs/{name}/portgroups/{portgroup}", h_delete },
    { "GET", "/v1/net/security-groups/{name}", h_get },
    { "PUT", "/v1/net/security-groups/{name}", h_put },
    { "DELETE", "/v1/net/security-groups/{name}", h_delete },
    { NULL, NULL, NULL },
};

/* ---- fixture ------------------------------------------------------------ */

#define N_HOSTS 2

struct fixture {
    char *dir, *sock;
    struct manager *m;
    struct http_server *server;
    struct http_client *client;
    char *admin;
    struct fake agents[N_HOSTS];
    json_t *joined[N_HOSTS];
};

static long call(struct fixture *f, const char *method, const char *path, json_t *body,
                 json_t **reply)
{
    AUTOERROR struct error *err = NULL;
    assert_int_equal(http_client_set_bearer_token(f->client, f->admin, &err), 0);
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

static void start_agent(struct fixture *f, int i)
{
    const json_t *joined = f->joined[i];
    AUTOFREE char *cert = xasprintf("%s/agent%d.pem", f->dir, i);
    AUTOFREE char *key = xasprintf("%s/agent%d-key.pem", f->dir, i);
    AUTOFREE char *ca = xasprintf("%s/agent%d-ca.pem", f->dir, i);
    const char *c = json_string_value(json_object_get(joined, "cert_pem"));
    const char *k = json_string_value(json_object_get(joined, "key_pem"));
    const char *a = json_string_value(json_object_get(joined, "ca_pem"));
    assert_int_equal(file_write_atomic(cert, c, strlen(c), 0600, NULL), 0);
    assert_int_equal(file_write_atomic(key, k, strlen(k), 0600, NULL), 0);
    assert_int_equal(file_write_atomic(ca, a, strlen(a), 0600, NULL), 0);
    struct http_tls_config tls = {
        .cert_file = cert, .key_file = key, .ca_file = ca,
        .allowed_cn = json_string_value(json_object_get(joined, "manager_cn")),
    };
    struct http_server_config sc = { .tcp_address = "127.0.0.1", .tls = &tls,
                                     .routes = agent_routes, .opaque = &f->agents[i] };
    struct error *err = NULL;
    f->agents[i].server = http_server_start(&sc, &err);
    if (!f->agents[i].server)
        fail_msg("fake agent: %s", err->message);
    AUTOFREE char *port = xasprintf("%u", http_server_port(f->agents[i].server));
    AUTOFREE char *sql = xasprintf("UPDATE hosts SET port = CAST(? AS INTEGER) "
                                   "WHERE name = 'node%d'", i + 1);
    exec_sql(f, sql, port);
}

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof *f);
    char tmpl[] = "/tmp/strata-res-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    f->sock = xasprintf("%s/m.sock", f->dir);
    AUTOFREE char *db = xasprintf("%s/m.db", f->dir);
    AUTOFREE char *pki = xasprintf("%s/pki", f->dir);
    struct error *err = NULL;
    struct manager_config mc = { .db = db, .admin_password = "admin-password", .pki_dir = pki,
                                 .task_kinds = manager_task_kinds() };
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
    for (int i = 0; i < N_HOSTS; i++) {
        pthread_mutex_init(&f->agents[i].lock, NULL);
        f->agents[i].objects = json_object();
        json_t *r = NULL;
        assert_int_equal(call(f, "POST", "/api/v1/join-tokens", NULL, &r), 201);
        AUTOFREE char *tok = xstrdup(json_string_value(json_object_get(r, "token")));
        json_decref(r);
        AUTOFREE char *name = xasprintf("node%d", i + 1);
        assert_int_equal(call(f, "POST", "/api/v1/hosts",
                              json_pack("{s:s, s:s, s:s}", "token", tok, "name", name,
                                        "address", "127.0.0.1"), &f->joined[i]), 201);
        start_agent(f, i);
    }
    assert_int_equal(host_monitor_poll(f->m, &err), N_HOSTS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    task_engine_wait_idle(f->m->tasks, 10000);
    http_client_free(f->client);
    http_server_stop(f->server);
    for (int i = 0; i < N_HOSTS; i++) {
        http_server_stop(f->agents[i].server);
        json_decref(f->agents[i].objects);
        json_decref(f->joined[i]);
        pthread_mutex_destroy(&f->agents[i].lock);
    }
    manager_close(f->m);
    rm_rf(f->dir, NULL);
    free(f->admin);
    free(f->sock);
    free(f->dir);
    free(f);
    return 0;
}

static bool agent_has(struct fixture *f, int i, const char *path)
{
    pthread_mutex_lock(&f->agents[i].lock);
    bool has = json_object_get(f->agents[i].objects, path) != NULL;
    pthread_mutex_unlock(&f->agents[i].lock);
    return has;
}

/* A copy of what fake agent 'i' holds at 'path' (NULL if nothing). */
static json_t *agent_object(struct fixture *f, int i, const char *path)
{
    pthread_mutex_lock(&f->agents[i].lock);
    json_t *o = json_deep_copy(json_object_get(f->agents[i].objects, path));
    pthread_mutex_unlock(&f->agents[i].lock);
    return o;
}

static void set_refuse(struct fixture *f, int i, bool on)
{
    pthread_mutex_lock(&f->agents[i].lock);
    f->agents[i].refuse = on;
    pthread_mutex_unlock(&f->agents[i].lock);
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Submits through 'method path body' (202), waits and returns the task's
 * final state (the task in '*task' when wanted). */
static const char *run_task(struct fixture *f, const char *method, const char *path,
                            json_t *body, json_t **task)
{
    json_t *r = NULL;
    long st = call(f, method, path, body, &r);
    if (st != 202) {
        AUTOFREE char *txt = json_to_string(r);
        fail_msg("%s %s: %ld %s", method, path, st, txt);
    }
    AUTOFREE char *tpath = xasprintf("/api/v1/tasks/%s", jstr(json_object_get(r, "task"), "id"));
    json_decref(r);
    assert_true(task_engine_wait_idle(f->m->tasks, 10000));
    json_t *t = NULL;
    assert_int_equal(call(f, "GET", tpath, NULL, &t), 200);
    static char state[16];
    snprintf(state, sizeof state, "%s", jstr(t, "state"));
    if (task)
        *task = t;
    else
        json_decref(t);
    return state;
}

/* ---- cases -------------------------------------------------------------- */

static void test_datastores(void **state)
{
    struct fixture *f = *state;
    int64_t gen0 = count(f, "SELECT SUM(desired_generation) FROM hosts");
    /* Refused input changes nothing and calls no agent. */
    struct { json_t *body; long status; const char *field; } bad[] = {
        { json_pack("{}"), 400, "name" },
        { json_pack("{s:s, s:s, s:[s]}", "name", "ds1", "path", "relative", "hosts", "node1"),
          400, "path" },
        { json_pack("{s:s, s:s, s:s, s:[s,s]}", "name", "ds1", "type", "local", "path", "/srv/x",
                    "hosts", "node1", "node2"), 400, "hosts" },
        { json_pack("{s:s, s:s, s:[s]}", "name", "ds1", "path", "/srv/x", "hosts", "node9"), 404,
          "hosts[0]" },
        { json_pack("{s:s, s:s, s:[]}", "name", "ds1", "path", "/srv/x", "hosts"), 400, "hosts" },
        { json_pack("{s:s, s:s, s:[s], s:b}", "name", "ds1", "path", "/srv/x", "hosts", "node1",
                    "extra", 1), 400, "extra" },
        { json_pack("{s:s, s:s, s:[s]}", "name", "d.s", "path", "/srv/x", "hosts", "node1"), 400,
          "name" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *r = NULL;
        assert_int_equal(call(f, "POST", "/api/v1/datastores", bad[i].body, &r), bad[i].status);
        assert_string_equal(jstr(json_object_get(r, "error"), "field"), bad[i].field);
        json_decref(r);
    }
    assert_int_equal(f->agents[0].writes + f->agents[1].writes, 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM datastores"), 0);

    /* All or nothing: the second host refuses, the first is undone. */
    set_refuse(f, 1, true);
    assert_int_equal(call(f, "POST", "/api/v1/datastores",
                          json_pack("{s:s, s:s, s:s, s:[s,s]}", "name", "shared1", "type",
                                    "shared", "path", "/srv/shared1", "hosts", "node1", "node2"),
                          NULL), 400);
    assert_false(agent_has(f, 0, "/v1/datastores/shared1"));
    assert_int_equal(f->agents[0].writes, 2);           /* created, then removed */
    assert_int_equal(count(f, "SELECT COUNT(*) FROM datastores"), 0);
    assert_int_equal(count(f, "SELECT SUM(desired_generation) FROM hosts"), gen0);
    set_refuse(f, 1, false);

    json_t *ds = NULL;
    assert_int_equal(call(f, "POST", "/api/v1/datastores",
                          json_pack("{s:s, s:s, s:s, s:[s,s], s:f}", "name", "shared1", "type",
                                    "shared", "path", "/srv/shared1", "hosts", "node1", "node2",
                                    "overcommit_ratio", 2.0), &ds), 201);
    assert_string_equal(jstr(ds, "kind"), "shared");
    assert_string_equal(jstr(ds, "path"), "/srv/shared1");
    assert_int_equal(json_integer_value(json_object_get(ds, "capacity_bytes")), 1000000);
    assert_int_equal(json_array_size(json_object_get(ds, "hosts")), 2);
    json_decref(ds);
    assert_true(agent_has(f, 0, "/v1/datastores/shared1"));
    assert_true(agent_has(f, 1, "/v1/datastores/shared1"));
    assert_int_equal(count(f, "SELECT SUM(desired_generation) FROM hosts"), gen0 + 2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE type = 'datastore.created'"), 1);
    assert_int_equal(call(f, "POST", "/api/v1/datastores",
                          json_pack("{s:s, s:s, s:[s]}", "name", "shared1", "path", "/srv/o",
                                    "hosts", "node1"), NULL), 409);
    json_t *l = NULL;
    assert_int_equal(call(f, "GET", "/api/v1/datastores?host=node2", NULL, &l), 200);
    assert_int_equal(json_integer_value(json_object_get(l, "total")), 1);
    json_decref(l);
    assert_int_equal(call(f, "GET", "/api/v1/datastores?kind=local", NULL, &l), 200);
    assert_int_equal(json_integer_value(json_object_get(l, "total")), 0);
    json_decref(l);
    assert_int_equal(call(f, "GET", "/api/v1/datastores?bogus=1", NULL, NULL), 400);

    /* A datastore an agent already has at the same path is adopted, not undone. */
    pthread_mutex_lock(&f->agents[0].lock);
    json_object_set_new(f->agents[0].objects, "/v1/datastores/local1",
                        json_pack("{s:s, s:s}", "name", "local1", "path", "/srv/local1"));
    pthread_mutex_unlock(&f->agents[0].lock);
    assert_int_equal(call(f, "POST", "/api/v1/datastores",
                          json_pack("{s:s, s:s, s:[s]}", "name", "local1", "path", "/srv/local1",
                                    "hosts", "node1"), NULL), 201);
    /* ... but not one at another path. */
    pthread_mutex_lock(&f->agents[1].lock);
    json_object_set_new(f->agents[1].objects, "/v1/datastores/local2",
                        json_pack("{s:s, s:s}", "name", "local2", "path", "/srv/elsewhere"));
    pthread_mutex_unlock(&f->agents[1].lock);
    assert_int_equal(call(f, "POST", "/api/v1/datastores",
                          json_pack("{s:s, s:s, s:[s]}", "name", "local2", "path", "/srv/local2",
                                    "hosts", "node2"), NULL), 409);

    /* Delete: 409 while a disk uses it; then from every host. */
    exec_sql(f, "INSERT INTO disks (id, name, datastore_id, size_bytes, created_at, updated_at) "
                "SELECT 'd1', 'd1', id, 1, 0, 0 FROM datastores WHERE name = ?", "shared1");
    assert_int_equal(call(f, "DELETE", "/api/v1/datastores/shared1", NULL, NULL), 409);
    exec_sql(f, "DELETE FROM disks WHERE id = ?", "d1");
    set_refuse(f, 1, true);             /* node2 still holds volumes */
    assert_int_equal(call(f, "DELETE", "/api/v1/datastores/shared1", NULL, NULL), 409);
    assert_true(agent_has(f, 0, "/v1/datastores/shared1"));     /* put back */
    assert_int_equal(count(f, "SELECT COUNT(*) FROM datastores WHERE name = 'shared1'"), 1);
    set_refuse(f, 1, false);
    assert_int_equal(call(f, "DELETE", "/api/v1/datastores/shared1", NULL, NULL), 204);
    assert_false(agent_has(f, 0, "/v1/datastores/shared1"));
    assert_false(agent_has(f, 1, "/v1/datastores/shared1"));
    assert_int_equal(count(f, "SELECT COUNT(*) FROM host_datastores"), 1);
    assert_int_equal(call(f, "GET", "/api/v1/datastores/shared1", NULL, NULL), 404);
}

static void test_volumes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(call(f, "POST", "/api/v1/datastores",
                          json_pack("{s:s, s:s, s:[s]}", "name", "ds1", "path", "/srv/ds1",
                                    "hosts", "node2"), NULL), 201);
    json_t *task = NULL;
    assert_string_equal(run_task(f, "POST", "/api/v1/datastores/ds1/volumes",
                                 json_pack("{s:s, s:I}", "name", "v1", "capacity",
                                           (json_int_t) 1 << 30), &task), "succeeded");
    assert_string_equal(jstr(task, "kind"), "volume.create");
    assert_string_equal(jstr(task, "object_id"), "ds1/v1");
    assert_string_equal(jstr(json_object_get(json_object_get(task, "result"), "volume"),
                             "name"), "v1");
    json_decref(task);
    assert_true(agent_has(f, 1, "/v1/datastores/ds1/volumes/v1"));

    /* Refused at once, before any task. */
    int64_t tasks = count(f, "SELECT COUNT(*) FROM tasks");
    struct { const char *method, *path; json_t *body; long status; const char *field; } bad[] = {
        { "POST", "/api/v1/datastores/ds1/volumes",
          json_pack("{s:s, s:I}", "name", "v1", "capacity", (json_int_t) 1 << 30), 409, "name" },
        { "POST", "/api/v1/datastores/ds1/volumes",
          json_pack("{s:s, s:I, s:s}", "name", "v2", "capacity", (json_int_t) 1 << 30, "format",
                    "vmdk"), 400, "format" },
        { "POST", "/api/v1/datastores/ds1/volumes", json_pack("{s:s}", "name", "v2"), 400,
          "capacity" },
        { "POST", "/api/v1/datastores/ds1/volumes",
          json_pack("{s:s, s:s}", "name", "c1", "source", "nope"), 404, "source" },
        { "POST", "/api/v1/datastores/ds1/volumes",
          json_pack("{s:s, s:s, s:I}", "name", "c1", "source", "v1", "capacity", 1), 400,
          "capacity" },
        { "POST", "/api/v1/datastores/ds1/volumes",
          json_pack("{s:s, s:s, s:s}", "name", "c1", "source", "v1", "source_datastore", "zz"),
          404, "source_datastore" },
        { "POST", "/api/v1/datastores/nope/volumes",
          json_pack("{s:s, s:I}", "name", "v2", "capacity", (json_int_t) 1 << 30), 404, NULL },
        { "POST", "/api/v1/datastores/ds1/volumes/v1/resize", json_pack("{s:i}", "capacity", 7),
          400, "capacity" },
        { "POST", "/api/v1/datastores/ds1/volumes/nope/wipe", NULL, 404, "volume" },
        { "DELETE", "/api/v1/datastores/ds1/volumes/v1?secure=maybe", NULL, 400, "secure" },
        { "POST", "/api/v1/datastores/ds1/volumes/v1/wipe", json_pack("{s:b}", "all", 1), 400,
          NULL },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        json_t *r = NULL;
        long st = call(f, bad[i].method, bad[i].path, bad[i].body, &r);
        if (st != bad[i].status)
            fail_msg("%s %s: %ld, wanted %ld", bad[i].method, bad[i].path, st, bad[i].status);
        if (bad[i].field)
            assert_string_equal(jstr(json_object_get(r, "error"), "field"), bad[i].field);
        json_decref(r);
    }
    assert_int_equal(count(f, "SELECT COUNT(*) FROM tasks"), tasks);

    /* A full copy (an agent job followed to its end), a wipe, a delete. */
    assert_string_equal(run_task(f, "POST", "/api/v1/datastores/ds1/volumes",
                                 json_pack("{s:s, s:s}", "name", "c1", "source", "v1"), &task),
                        "succeeded");
    assert_int_equal(json_integer_value(json_object_get(task, "progress")), 100);
    json_decref(task);
    assert_true(agent_has(f, 1, "/v1/datastores/ds1/volumes/c1"));
    assert_string_equal(run_task(f, "POST", "/api/v1/datastores/ds1/volumes/c1/wipe", NULL,
                                 &task), "succeeded");
    assert_true(json_is_true(json_object_get(
        json_object_get(json_object_get(task, "result"), "job"), "done")));
    json_decref(task);
    json_t *l = NULL;
    assert_int_equal(call(f, "GET", "/api/v1/datastores/ds1/volumes", NULL, &l), 200);
    assert_int_equal(json_integer_value(json_object_get(l, "total")), 2);
    json_decref(l);
    assert_string_equal(run_task(f, "DELETE", "/api/v1/datastores/ds1/volumes/c1", NULL, NULL),
                        "succeeded");
    assert_false(agent_has(f, 1, "/v1/datastores/ds1/volumes/c1"));

    /* No connected host with the datastore: 409 at once. */
    exec_sql(f, "UPDATE hosts SET state = 'disconnected' WHERE name = ?", "node2");
    assert_int_equal(call(f, "GET", "/api/v1/datastores/ds1/volumes", NULL, NULL), 409);
    assert_int_equal(call(f, "POST", "/api/v1/datastores/ds1/volumes/v1/wipe", NULL, NULL), 409);
}

static void test_networks(void **state)
{
    struct fixture *f = *state;
    json_t *r = NULL;
    /* Checked with the agent's own parser first. */
    assert_int_equal(call(f, "POST", "/api/v1/nat-networks",
                          json_pack("{s:s, s:s, s:[s]}", "name", "n1", "subnet", "10.0.0.0/33",
                                    "hosts", "node1"), &r), 400);
    assert_string_equal(jstr(json_object_get(r, "error"), "field"), "subnet");
    json_decref(r);
    assert_int_equal(call(f, "POST", "/api/v1/nat-networks",
                          json_pack("{s:s, s:s}", "name", "n1", "subnet", "10.9.0.0/24"), &r),
                     400);
    assert_string_equal(jstr(json_object_get(r, "error"), "field"), "hosts");
    json_decref(r);
    set_refuse(f, 1, true);
    assert_int_equal(call(f, "POST", "/api/v1/nat-networks",
                          json_pack("{s:s, s:s, s:[s,s]}", "name", "n1", "subnet", "10.9.0.0/24",
                                    "hosts", "node1", "node2"), NULL), 400);
    assert_false(agent_has(f, 0, "/v1/net/nat/n1"));
    set_refuse(f, 1, false);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM nat_networks"), 0);

    assert_int_equal(call(f, "POST", "/api/v1/nat-networks",
                          json_pack("{s:s, s:s, s:[s,s]}", "name", "n1", "subnet", "10.9.0.0/24",
                                    "hosts", "node1", "node2"), &r), 201);
    assert_string_equal(jstr(r, "subnet"), "10.9.0.0/24");
    assert_int_equal(json_array_size(json_object_get(r, "hosts")), 2);
    json_decref(r);
    assert_true(agent_has(f, 0, "/v1/net/nat/n1") && agent_has(f, 1, "/v1/net/nat/n1"));

    /* A DVS with one uplink per host, and a port group on it. */
    assert_int_equal(call(f, "POST", "/api/v1/dvs",
                          json_pack("{s:s, s:i, s:[{s:s, s:{s:[s]}}, s]}", "name", "prod",
                                    "mtu", 9000, "hosts", "host", "node1", "uplink", "nics",
                                    "eth1", "node2"), &r), 201);
    assert_int_equal(json_integer_value(json_object_get(r, "mtu")), 9000);
    json_decref(r);
    assert_true(agent_has(f, 0, "/v1/net/dvs/prod") && agent_has(f, 1, "/v1/net/dvs/prod"));
    assert_int_equal(call(f, "POST", "/api/v1/dvs/prod/portgroups",
                          json_pack("{s:s, s:i}", "name", "v100", "vlan", 5000), &r), 400);
    assert_string_equal(jstr(json_object_get(r, "error"), "field"), "vlan");
    json_decref(r);
    assert_int_equal(call(f, "POST", "/api/v1/dvs/prod/portgroups",
                          json_pack("{s:s, s:i}", "name", "v100", "vlan", 100), &r), 201);
    assert_string_equal(jstr(r, "vlan_mode"), "access");
    json_decref(r);
    assert_true(agent_has(f, 1, "/v1/net/dvs/prod/portgroups/v100"));
    assert_int_equal(call(f, "POST", "/api/v1/dvs/prod/portgroups",
                          json_pack("{s:s, s:i}", "name", "v100", "vlan", 100), NULL), 409);

    assert_int_equal(call(f, "GET", "/api/v1/networks", NULL, &r), 200);
    assert_int_equal(json_integer_value(json_object_get(r, "total")), 2);
    json_t *nat = json_array_get(json_object_get(r, "items"), 0);
    json_t *pg = json_array_get(json_object_get(r, "items"), 1);
    assert_string_equal(jstr(nat, "type"), "nat");
    assert_string_equal(jstr(pg, "type"), "portgroup");
    assert_string_equal(jstr(pg, "dvs"), "prod");
    assert_int_equal(json_integer_value(json_object_get(pg, "vlan")), 100);
    assert_int_equal(json_array_size(json_object_get(pg, "hosts")), 2);
    json_decref(r);
    assert_int_equal(call(f, "GET", "/api/v1/networks?type=dvs", NULL, NULL), 400);

    assert_int_equal(call(f, "DELETE", "/api/v1/dvs/prod", NULL, NULL), 409);
    assert_int_equal(call(f, "DELETE", "/api/v1/dvs/prod/portgroups/v100", NULL, NULL), 204);
    assert_false(agent_has(f, 0, "/v1/net/dvs/prod/portgroups/v100"));
    assert_int_equal(call(f, "DELETE", "/api/v1/dvs/prod", NULL, NULL), 204);
    assert_false(agent_has(f, 1, "/v1/net/dvs/prod"));
    /* A host refusing a delete: the others get it back. */
    set_refuse(f, 1, true);
    assert_int_equal(call(f, "DELETE", "/api/v1/nat-networks/n1", NULL, NULL), 409);
    assert_true(agent_has(f, 0, "/v1/net/nat/n1"));
    set_refuse(f, 1, false);
    assert_int_equal(call(f, "DELETE", "/api/v1/nat-networks/n1", NULL, NULL), 204);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM host_nat_networks"), 0);
}

/* An agent that lost its configuration (or a host that was away when the
 * change was made) gets everything again at its next heartbeat. */
static void test_resync(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(call(f, "POST", "/api/v1/datastores",
                          json_pack("{s:s, s:s, s:[s]}", "name", "ds1", "path", "/srv/ds1",
                                    "hosts", "node1"), NULL), 201);
    assert_int_equal(call(f, "POST", "/api/v1/nat-networks",
                          json_pack("{s:s, s:[s]}", "name", "n1", "hosts", "node1"), NULL), 201);
    assert_int_equal(call(f, "POST", "/api/v1/dvs",
                          json_pack("{s:s, s:[s]}", "name", "sw", "hosts", "node1"), NULL), 201);
    assert_int_equal(call(f, "POST", "/api/v1/dvs/sw/portgroups",
                          json_pack("{s:s, s:s}", "name", "tr", "trunk", "100-110"), NULL), 201);
    int64_t desired = count(f, "SELECT desired_generation FROM hosts WHERE name = 'node1'");
    assert_int_equal(desired, 4);
    AUTOERROR struct error *err = NULL;
    assert_int_equal(host_monitor_poll(f->m, &err), N_HOSTS);
    assert_int_equal(f->agents[0].generation, desired);
    assert_int_equal(count(f, "SELECT applied_generation FROM hosts WHERE name = 'node1'"),
                     desired);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM hosts WHERE stats IS NOT NULL "
                              "AND stats_at IS NOT NULL"), N_HOSTS);

    /* The agent restarts empty. */
    http_server_stop(f->agents[0].server);
    pthread_mutex_lock(&f->agents[0].lock);
    json_object_clear(f->agents[0].objects);
    f->agents[0].generation = 0;
    pthread_mutex_unlock(&f->agents[0].lock);
    assert_int_equal(host_monitor_poll(f->m, &err), N_HOSTS - 1);
    start_agent(f, 0);
    assert_int_equal(host_monitor_poll(f->m, &err), N_HOSTS);
    assert_true(agent_has(f, 0, "/v1/datastores/ds1"));
    assert_true(agent_has(f, 0, "/v1/net/nat/n1"));
    assert_true(agent_has(f, 0, "/v1/net/dvs/sw"));
    assert_true(agent_has(f, 0, "/v1/net/dvs/sw/portgroups/tr"));
    assert_int_equal(f->agents[0].generation, desired);
    json_t *h = NULL;
    assert_int_equal(call(f, "GET", "/api/v1/hosts/node1", NULL, &h), 200);
    assert_int_equal(json_integer_value(json_object_get(h, "applied_generation")), desired);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(h, "stats"),
                                                        "mem_total")), 4096);
    json_decref(h);
    /* Steady: nothing is pushed again. */
    int writes = f->agents[0].writes;
    assert_int_equal(host_monitor_poll(f->m, &err), N_HOSTS);
    assert_int_equal(f->agents[0].writes, writes);
}

/* Security groups go to every host with their members' addresses; VLAN
 * pools bound what a DVS carries and what its port groups use. */
static void test_secgroups_vlan_pools(void **state)
{
    struct fixture *f = *state;
    json_t *r = NULL;
    /* Rules checked by the agent's parser; a remote group must exist. */
    assert_int_equal(call(f, "POST", "/api/v1/security-groups",
                          json_pack("{s:s, s:[{s:s, s:s}]}", "name", "web", "rules", "direction",
                                    "sideways", "protocol", "tcp"), &r), 400);
    assert_string_equal(jstr(json_object_get(r, "error"), "field"), "rules[0].direction");
    json_decref(r);
    assert_int_equal(call(f, "POST", "/api/v1/security-groups",
                          json_pack("{s:s, s:[{s:s, s:s}]}", "name", "web", "rules", "direction",
                                    "ingress", "remote_group", "app"), &r), 404);
    assert_string_equal(jstr(json_object_get(r, "error"), "field"), "rules[0].remote_group");
    json_decref(r);
    /* All or nothing across the hosts. */
    set_refuse(f, 1, true);
    assert_int_equal(call(f, "POST", "/api/v1/security-groups",
                          json_pack("{s:s, s:[]}", "name", "app", "rules"), NULL), 400);
    assert_false(agent_has(f, 0, "/v1/net/security-groups/app"));
    set_refuse(f, 1, false);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM security_groups"), 0);
    assert_int_equal(call(f, "POST", "/api/v1/security-groups",
                          json_pack("{s:s, s:[]}", "name", "app", "rules"), NULL), 201);
    assert_int_equal(call(f, "POST", "/api/v1/security-groups",
                          json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "name", "web", "rules",
                                    "direction", "ingress", "protocol", "tcp", "port_min", 5432,
                                    "remote_group", "app"), &r), 201);
    json_decref(r);
    assert_true(agent_has(f, 0, "/v1/net/security-groups/web") &&
                agent_has(f, 1, "/v1/net/security-groups/web"));
    assert_int_equal(call(f, "POST", "/api/v1/security-groups",
                          json_pack("{s:s, s:[]}", "name", "app", "rules"), NULL), 409);
    /* Members' addresses: a VM with a NIC in 'app' bound to 10.1.2.3. */
    exec_sql(f, "INSERT INTO vms (id, name, definition, created_at, updated_at) VALUES "
                "('vmx', 'vmx', ?, 0, 0)",
             "{\"name\":\"vmx\",\"nics\":[{\"id\":\"nic0\",\"mac\":\"52:54:00:00:00:01\","
             "\"network\":{\"dvs\":\"d\",\"portgroup\":\"p\",\"security_group\":\"app\","
             "\"ips\":[\"10.1.2.3\"]}}]}");
    secgroup_refresh(f->m, "app");
    json_t *o = agent_object(f, 1, "/v1/net/security-groups/app");
    assert_non_null(o);
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "remote_ips"), 0)),
                        "10.1.2.3");
    json_decref(o);
    /* In use by a VM's NIC, or named by another group's rule: not deleted. */
    assert_int_equal(call(f, "DELETE", "/api/v1/security-groups/app", NULL, NULL), 409);
    exec_sql(f, "DELETE FROM vms WHERE id = ?", "vmx");
    assert_int_equal(call(f, "DELETE", "/api/v1/security-groups/app", NULL, NULL), 409);
    assert_int_equal(call(f, "PUT", "/api/v1/security-groups/web",
                          json_pack("{s:[]}", "rules"), NULL), 200);
    o = agent_object(f, 0, "/v1/net/security-groups/web");
    assert_int_equal(json_array_size(json_object_get(o, "rules")), 0);
    json_decref(o);
    assert_int_equal(call(f, "DELETE", "/api/v1/security-groups/app", NULL, NULL), 204);
    assert_false(agent_has(f, 0, "/v1/net/security-groups/app"));

    /* VLAN pools. */
    static const char *const bad[] = { "0-10", "10-5", "100,50", "1-4095", "a", "1,,2", "" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(call(f, "POST", "/api/v1/vlan-pools",
                              json_pack("{s:s, s:s}", "name", "p1", "ranges", bad[i]), &r), 400);
        assert_string_equal(jstr(json_object_get(r, "error"), "field"), "ranges");
        json_decref(r);
    }
    assert_int_equal(call(f, "POST", "/api/v1/vlan-pools",
                          json_pack("{s:s, s:s}", "name", "p1", "ranges", "100-199,300"), NULL),
                     201);
    assert_int_equal(call(f, "POST", "/api/v1/dvs",
                          json_pack("{s:s, s:s, s:[s]}", "name", "sw", "vlan_pool", "nopool",
                                    "hosts", "node1"), &r), 404);
    assert_string_equal(jstr(json_object_get(r, "error"), "field"), "vlan_pool");
    json_decref(r);
    assert_int_equal(call(f, "POST", "/api/v1/dvs",
                          json_pack("{s:s, s:s, s:[s]}", "name", "sw", "vlan_pool", "p1",
                                    "hosts", "node1"), NULL), 201);
    o = agent_object(f, 0, "/v1/net/dvs/sw");
    assert_string_equal(json_string_value(json_object_get(o, "vlans")), "100-199,300");
    json_decref(o);
    assert_int_equal(call(f, "POST", "/api/v1/dvs/sw/portgroups",
                          json_pack("{s:s, s:i}", "name", "v250", "vlan", 250), &r), 400);
    assert_string_equal(jstr(json_object_get(r, "error"), "field"), "vlan");
    json_decref(r);
    assert_int_equal(call(f, "POST", "/api/v1/dvs/sw/portgroups",
                          json_pack("{s:s, s:s}", "name", "tr", "trunk", "150-250"), &r), 400);
    assert_string_equal(jstr(json_object_get(r, "error"), "field"), "trunk");
    json_decref(r);
    assert_int_equal(call(f, "POST", "/api/v1/dvs/sw/portgroups",
                          json_pack("{s:s, s:i}", "name", "v300", "vlan", 300), NULL), 201);
    assert_int_equal(call(f, "DELETE", "/api/v1/vlan-pools/p1", NULL, NULL), 409);
    assert_int_equal(call(f, "GET", "/api/v1/vlan-pools/p1", NULL, &r), 200);
    assert_int_equal(json_integer_value(json_object_get(r, "dvs_count")), 1);
    json_decref(r);
}

static void test_host_delete(void **state)
{
    struct fixture *f = *state;
    exec_sql(f, "INSERT INTO vms (id, name, host_id, definition, created_at, updated_at) "
                "SELECT 'vm1', 'vm1', id, '{}', 0, 0 FROM hosts WHERE name = ?", "node1");
    json_t *r = NULL;
    assert_int_equal(call(f, "DELETE", "/api/v1/hosts/node1", NULL, &r), 409);
    assert_non_null(strstr(jstr(json_object_get(r, "error"), "message"), "VM"));
    json_decref(r);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM revoked_certs"), 0);
    exec_sql(f, "DELETE FROM vms WHERE id = ?", "vm1");
    assert_int_equal(call(f, "DELETE", "/api/v1/hosts/node1", NULL, NULL), 204);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM revoked_certs WHERE host_name = 'node1'"), 1);

    AUTOERROR struct error *err = NULL;
    assert_int_equal(http_client_set_bearer_token(f->client, f->admin, &err), 0);
    long status = 0;
    AUTOFREE char *crl = NULL;
    size_t len = 0;
    assert_int_equal(http_client_request_raw(f->client, "GET", "/api/v1/ca/crl", NULL, 0, NULL,
                                             &status, &crl, &len, &err), 0);
    assert_int_equal(status, 200);
    assert_non_null(strstr(crl, "BEGIN X509 CRL"));

    /* node1 joins again and gets a new certificate; whoever still serves
     * the old, revoked one at its address is refused by the manager. */
    json_t *r2 = NULL;
    assert_int_equal(call(f, "POST", "/api/v1/join-tokens", NULL, &r2), 201);
    AUTOFREE char *tok = xstrdup(json_string_value(json_object_get(r2, "token")));
    json_decref(r2);
    json_t *rejoined = NULL;
    assert_int_equal(call(f, "POST", "/api/v1/hosts",
                          json_pack("{s:s, s:s, s:s}", "token", tok, "name", "node1",
                                    "address", "127.0.0.1"), &rejoined), 201);
    http_server_stop(f->agents[0].server);
    start_agent(f, 0);                  /* the old certificate, revoked */
    assert_int_equal(host_monitor_poll(f->m, &err), N_HOSTS - 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM hosts WHERE name = 'node1' AND "
                              "state = 'connected'"), 0);
    http_server_stop(f->agents[0].server);
    json_decref(f->joined[0]);
    f->joined[0] = rejoined;            /* the new one */
    start_agent(f, 0);
    assert_int_equal(host_monitor_poll(f->m, &err), N_HOSTS);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM hosts WHERE name = 'node1' AND "
                              "state = 'connected'"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_datastores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_networks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secgroups_vlan_pools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_delete, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
