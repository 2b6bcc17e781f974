/* test_api.c - the manager's REST API v1 over a unix socket, as a client
 * sees it: sessions, users, tokens, sites, clusters, hosts, tasks, events,
 * pagination and filters, input validation that changes nothing, and the
 * table-driven route x role check.
 *
 * Each test gets a fresh manager (temporary SQLite database, first
 * administrator 'admin') served by http_server on "<dir>/m.sock", plus three
 * API tokens made directly in the store for an administrator, an operator
 * and a viewer (cheaper than a login each).  A case that needs server-only
 * TLS (the public API on TCP) generates a PKI with tools/make-test-pki.sh. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/http_client.h"
#include "manager/api.h"
#include "manager/events.h"
#include "manager/tasks.h"
#include "util/command.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

#define ADMIN_PW "admin-password"

enum principal { P_NONE, P_VIEWER, P_OPERATOR, P_ADMIN, P__COUNT };

struct fixture {
    char *dir;
    char *sock;
    struct manager *m;
    struct http_server *server;
    struct http_client *client;
    char *tok[P__COUNT];
    char uid[P__COUNT][UUID_STRLEN + 1];
};

static char *make_token(struct manager *m, const char *user_id)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, &err);
    char *tok = auth_token_create(t, user_id, TOKEN_API, "test", 0, NULL, &err);
    assert_non_null(tok);
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
    return tok;
}

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof *f);
    char tmpl[] = "/tmp/strata-api-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    f->sock = xasprintf("%s/m.sock", f->dir);
    AUTOFREE char *db = xasprintf("%s/m.db", f->dir);
    struct error *err = NULL;
    struct manager_config mc = { .db = db, .admin_password = ADMIN_PW };
    f->m = manager_open(&mc, &err);
    assert_non_null(f->m);
    struct http_server_config sc = {
        .unix_path = f->sock, .routes = manager_api_routes(), .opaque = f->m,
        .max_body = API_MAX_BODY,
    };
    f->server = http_server_start(&sc, &err);
    assert_non_null(f->server);
    struct http_client_config cc = { .unix_path = f->sock };
    f->client = http_client_new(&cc, &err);
    assert_non_null(f->client);

    static const char *const names[] = { NULL, "vera", "otto", "ada" };
    static const enum role roles[] = { ROLE_NONE, ROLE_VIEWER, ROLE_OPERATOR,
                                       ROLE_ADMINISTRATOR };
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_WRITE, &err);
    for (int p = P_VIEWER; p < P__COUNT; p++) {
        AUTOFREE char *pw = xasprintf("%s-password", names[p]);
        assert_int_equal(auth_user_create(t, names[p], pw, roles[p], f->uid[p], &err), 0);
    }
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
    for (int p = P_VIEWER; p < P__COUNT; p++)
        f->tok[p] = make_token(f->m, f->uid[p]);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    http_client_free(f->client);
    manager_stop_waiters(f->m);
    http_server_stop(f->server);
    manager_close(f->m);
    rm_rf(f->dir, NULL);
    for (int p = 0; p < P__COUNT; p++)
        free(f->tok[p]);
    free(f->sock);
    free(f->dir);
    free(f);
    return 0;
}

/* One request as 'p' (or with 'token' when not NULL).  Returns the HTTP
 * status; '*reply' (optional) gets the body, '*code' (optional) the error
 * code or -1. */
static long call_tok(struct fixture *f, const char *token, const char *method,
                     const char *path, const char *body, json_t **reply, int *code)
{
    AUTOERROR struct error *err = NULL;
    assert_int_equal(http_client_set_bearer_token(f->client, token, &err), 0);
    long status = 0;
    AUTOFREE char *raw = NULL;
    size_t len = 0;
    int r = http_client_request_raw(f->client, method, path, body, body ? strlen(body) : 0,
                                    NULL, &status, &raw, &len, &err);
    if (code)
        *code = r < 0 && err ? (int) err->code : -1;
    if (r < 0 && status == 0)
        fail_msg("%s %s: %s", method, path, err->message);
    if (r < 0 && status >= 400) {
        /* The one error body: {"error": {"code", "message"}}. */
        assert_non_null(err);
        assert_non_null(err->message);
    }
    if (reply) {
        *reply = raw && len ? json_loadb(raw, len, 0, NULL) : NULL;
        if (r < 0)
            *reply = error_to_json(err);
    }
    return status;
}

static long call(struct fixture *f, enum principal p, const char *method, const char *path,
                 const char *body, json_t **reply)
{
    return call_tok(f, f->tok[p], method, path, body, reply, NULL);
}

static int64_t count(struct fixture *f, const char *sql)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_READ, &err);
    int64_t n = -1;
    assert_int_equal(store_query_int(t, sql, STORE_NO_ARGS, &n, &err), 1);
    return n;
}

static const char *jstr(const json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static json_int_t jint(const json_t *j, const char *key)
{
    return json_integer_value(json_object_get(j, key));
}

/* ---- cases -------------------------------------------------------------- */

static void test_version_public(void **state)
{
    struct fixture *f = *state;
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_NONE, "GET", "/api/v1/version", NULL, &r), 200);
    assert_string_equal(jstr(r, "service"), "strata-manager");
    assert_string_equal(jstr(r, "api"), "v1");
}

static void test_sessions(void **state)
{
    struct fixture *f = *state;
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_NONE, "POST", "/api/v1/sessions",
                          "{\"name\": \"admin\", \"password\": \"" ADMIN_PW "\"}", &r), 201);
    AUTOFREE char *tok = xstrdup(jstr(r, "token"));
    assert_true(auth_token_is_valid(tok));
    assert_string_equal(jstr(json_object_get(r, "user"), "role"), "administrator");
    assert_non_null(jstr(r, "expires_at"));
    json_decref(steal_pointer(&r));

    assert_int_equal(call_tok(f, tok, "GET", "/api/v1/sessions/current", NULL, &r, NULL), 200);
    assert_string_equal(jstr(json_object_get(r, "user"), "name"), "admin");
    assert_string_equal(jstr(json_object_get(r, "token"), "kind"), "session");
    json_decref(steal_pointer(&r));

    /* Wrong password, unknown user: 401, same body. */
    int code = 0;
    assert_int_equal(call_tok(f, NULL, "POST", "/api/v1/sessions",
                              "{\"name\": \"admin\", \"password\": \"nope-nope\"}", &r, &code),
                     401);
    assert_int_equal(code, ERR_UNAUTHORIZED);
    AUTOFREE char *b1 = json_to_string(r);
    json_decref(steal_pointer(&r));
    assert_int_equal(call_tok(f, NULL, "POST", "/api/v1/sessions",
                              "{\"name\": \"nobody\", \"password\": \"nope-nope\"}", &r, &code),
                     401);
    AUTOFREE char *b2 = json_to_string(r);
    json_decref(steal_pointer(&r));
    assert_string_equal(b1, b2);

    /* Bad requests. */
    assert_int_equal(call(f, P_NONE, "POST", "/api/v1/sessions", "{\"name\": \"admin\"}", NULL),
                     400);
    assert_int_equal(call(f, P_NONE, "POST", "/api/v1/sessions",
                          "{\"name\": \"admin\", \"password\": \"x\", \"otp\": 1}", NULL), 400);
    assert_int_equal(call(f, P_NONE, "POST", "/api/v1/sessions", "{\"name\": ", NULL), 400);
    assert_int_equal(call(f, P_NONE, "POST", "/api/v1/sessions", NULL, NULL), 400);

    /* Logout revokes exactly that token. */
    assert_int_equal(call_tok(f, tok, "DELETE", "/api/v1/sessions/current", NULL, NULL, NULL),
                     204);
    assert_int_equal(call_tok(f, tok, "GET", "/api/v1/sessions/current", NULL, NULL, &code),
                     401);
    assert_int_equal(code, ERR_UNAUTHORIZED);
    assert_int_equal(call(f, P_ADMIN, "GET", "/api/v1/sessions/current", NULL, NULL), 200);

    /* Garbage tokens. */
    assert_int_equal(call_tok(f, "stk_nothex", "GET", "/api/v1/sites", NULL, NULL, NULL), 401);
    assert_int_equal(call_tok(f, NULL, "GET", "/api/v1/sites", NULL, NULL, NULL), 401);
}

static void test_password_change(void **state)
{
    struct fixture *f = *state;
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_NONE, "POST", "/api/v1/sessions",
                          "{\"name\": \"vera\", \"password\": \"vera-password\"}", &r), 201);
    AUTOFREE char *tok = xstrdup(jstr(r, "token"));
    assert_int_equal(call_tok(f, tok, "POST", "/api/v1/sessions/current/password",
                              "{\"old_password\": \"wrong-one\", \"new_password\": "
                              "\"vera-new-password\"}", NULL, NULL), 400);
    assert_int_equal(call_tok(f, tok, "POST", "/api/v1/sessions/current/password",
                              "{\"old_password\": \"vera-password\", \"new_password\": \"short\"}",
                              NULL, NULL), 400);
    assert_int_equal(call_tok(f, tok, "POST", "/api/v1/sessions/current/password",
                              "{\"old_password\": \"vera-password\", \"new_password\": "
                              "\"vera-new-password\"}", NULL, NULL), 204);
    assert_int_equal(call(f, P_NONE, "POST", "/api/v1/sessions",
                          "{\"name\": \"vera\", \"password\": \"vera-password\"}", NULL), 401);
    assert_int_equal(call(f, P_NONE, "POST", "/api/v1/sessions",
                          "{\"name\": \"vera\", \"password\": \"vera-new-password\"}", NULL), 201);
    /* The session that made the change goes on. */
    assert_int_equal(call_tok(f, tok, "GET", "/api/v1/sessions/current", NULL, NULL, NULL), 200);
}

static void test_sites_crud(void **state)
{
    struct fixture *f = *state;
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/sites",
                          "{\"name\": \"dc1\", \"description\": \"first\"}", &r), 201);
    AUTOFREE char *id = xstrdup(jstr(r, "id"));
    assert_true(uuid_is_valid(id));
    assert_string_equal(jstr(r, "description"), "first");
    json_decref(steal_pointer(&r));

    AUTOFREE char *by_id = xasprintf("/api/v1/sites/%s", id);
    assert_int_equal(call(f, P_VIEWER, "GET", by_id, NULL, &r), 200);
    assert_string_equal(jstr(r, "name"), "dc1");
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/sites/dc1", NULL, &r), 200);
    assert_string_equal(jstr(r, "id"), id);
    json_decref(steal_pointer(&r));

    int code;
    assert_int_equal(call_tok(f, f->tok[P_ADMIN], "POST", "/api/v1/sites", "{\"name\": \"dc1\"}",
                              NULL, &code), 409);
    assert_int_equal(code, ERR_CONFLICT);

    assert_int_equal(call(f, P_ADMIN, "PATCH", "/api/v1/sites/dc1",
                          "{\"name\": \"dc-one\", \"description\": \"renamed\"}", &r), 200);
    assert_string_equal(jstr(r, "name"), "dc-one");
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/sites/dc1", NULL, NULL), 404);

    /* A site with a cluster cannot go. */
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/clusters",
                          "{\"name\": \"c1\", \"site\": \"dc-one\"}", NULL), 201);
    assert_int_equal(call_tok(f, f->tok[P_ADMIN], "DELETE", "/api/v1/sites/dc-one", NULL, NULL,
                              &code), 409);
    assert_int_equal(code, ERR_CONFLICT);
    assert_int_equal(call(f, P_ADMIN, "DELETE", "/api/v1/clusters/c1", NULL, NULL), 204);
    assert_int_equal(call(f, P_ADMIN, "DELETE", by_id, NULL, NULL), 204);
    assert_int_equal(call(f, P_ADMIN, "DELETE", by_id, NULL, NULL), 404);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sites"), 0);

    /* Every change is an event, with its author. */
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE type LIKE 'site.%' "
                              "AND user_name = 'ada'"), 3);
}

static void test_clusters(void **state)
{
    struct fixture *f = *state;
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/sites", "{\"name\": \"dc1\"}", NULL), 201);
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/sites", "{\"name\": \"dc2\"}", NULL), 201);
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/clusters",
                          "{\"name\": \"gold\", \"site\": \"dc1\", \"startup_policy\": "
                          "\"load-balancing\", \"memory_overcommit\": true}", &r), 201);
    assert_string_equal(jstr(r, "startup_policy"), "load-balancing");
    assert_true(json_is_true(json_object_get(r, "memory_overcommit")));
    assert_string_equal(jstr(r, "site_name"), "dc1");
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/clusters",
                          "{\"name\": \"silver\", \"site\": \"dc2\"}", &r), 201);
    assert_string_equal(jstr(r, "startup_policy"), "automatic");
    assert_true(json_is_false(json_object_get(r, "memory_overcommit")));
    json_decref(steal_pointer(&r));

    /* Refused: bad policy, unknown site, wrong types. */
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/clusters",
                          "{\"name\": \"x\", \"site\": \"dc1\", \"startup_policy\": \"random\"}",
                          &r), 400);
    assert_string_equal(jstr(json_object_get(r, "error"), "field"), "startup_policy");
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/clusters",
                          "{\"name\": \"x\", \"site\": \"nowhere\"}", &r), 404);
    assert_string_equal(jstr(json_object_get(r, "error"), "field"), "site");
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/clusters",
                          "{\"name\": \"x\", \"site\": \"dc1\", \"memory_overcommit\": \"yes\"}",
                          NULL), 400);

    /* Filters. */
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/clusters?site=dc2", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 1);
    assert_string_equal(jstr(json_array_get(json_object_get(r, "items"), 0), "name"), "silver");
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/clusters?name=gold", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 1);
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/clusters?startup_policy=automatic", NULL,
                          &r), 200);
    assert_int_equal(jint(r, "total"), 1);
    json_decref(steal_pointer(&r));

    /* Update policies. */
    assert_int_equal(call(f, P_ADMIN, "PATCH", "/api/v1/clusters/silver",
                          "{\"memory_overcommit\": true, \"startup_policy\": \"load-balancing\"}",
                          &r), 200);
    assert_true(json_is_true(json_object_get(r, "memory_overcommit")));
    assert_string_equal(jstr(r, "startup_policy"), "load-balancing");
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_ADMIN, "PATCH", "/api/v1/clusters/silver",
                          "{\"site\": \"dc1\"}", NULL), 400);
    assert_int_equal(call(f, P_ADMIN, "PATCH", "/api/v1/clusters/silver", "{\"name\": \"gold\"}",
                          NULL), 409);
}

static void test_pagination(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 25; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"name\": \"site%02d\"}", i);
        assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/sites", body, NULL), 201);
    }
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/sites", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 25);
    assert_int_equal(json_array_size(json_object_get(r, "items")), 25);
    assert_int_equal(jint(r, "limit"), INV_DEFAULT_LIMIT);
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/sites?limit=10&offset=20", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 25);
    assert_int_equal(jint(r, "offset"), 20);
    json_t *items = json_object_get(r, "items");
    assert_int_equal(json_array_size(items), 5);
    assert_string_equal(jstr(json_array_get(items, 0), "name"), "site20");
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/sites?limit=10&offset=100", NULL, &r),
                     200);
    assert_int_equal(json_array_size(json_object_get(r, "items")), 0);
    assert_int_equal(jint(r, "total"), 25);
    json_decref(steal_pointer(&r));

    static const char *const bad[] = {
        "/api/v1/sites?limit=0", "/api/v1/sites?limit=1001", "/api/v1/sites?limit=ten",
        "/api/v1/sites?offset=-1", "/api/v1/sites?limit=", "/api/v1/sites?state=x",
        "/api/v1/sites?nmae=site01",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(call(f, P_VIEWER, "GET", bad[i], NULL, &r), 400);
        assert_non_null(jstr(json_object_get(r, "error"), "field"));
        json_decref(steal_pointer(&r));
    }
}

/* Malformed JSON, unknown fields, oversized bodies, invalid names: 4xx with
 * the one error body, and nothing changes. */
static void test_bad_input_changes_nothing(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/sites", "{\"name\": \"dc1\"}", NULL), 201);
    int64_t sites = count(f, "SELECT COUNT(*) FROM sites");
    int64_t events = count(f, "SELECT COUNT(*) FROM events");
    int64_t users = count(f, "SELECT COUNT(*) FROM users");
    /* A valid document, only too large. */
    const char *head = "{\"name\": \"big\", \"description\": \"";
    size_t big_len = API_MAX_BODY + 100;
    AUTOFREE char *big = xzalloc(big_len + 1);
    memset(big, 'a', big_len);
    memcpy(big, head, strlen(head));
    memcpy(big + big_len - 2, "\"}", 2);
    struct {
        const char *method, *path, *body;
        long status;
    } cases[] = {
        { "POST", "/api/v1/sites", "{\"name\": \"x\"", 400 },
        { "POST", "/api/v1/sites", "[1, 2]", 400 },
        { "POST", "/api/v1/sites", "\"dc9\"", 400 },
        { "POST", "/api/v1/sites", "{\"name\": \"x\", \"name\": \"y\"}", 400 },
        { "POST", "/api/v1/sites", "{\"name\": \"x\", \"color\": \"red\"}", 400 },
        { "POST", "/api/v1/sites", "{\"name\": \"bad name\"}", 400 },
        { "POST", "/api/v1/sites", "{\"name\": \"-dash\"}", 400 },
        { "POST", "/api/v1/sites", "{\"name\": \"\"}", 400 },
        { "POST", "/api/v1/sites", "{\"name\": 12}", 400 },
        { "POST", "/api/v1/sites", "{\"name\": \"a/b\"}", 400 },
        { "POST", "/api/v1/sites", "{\"name\": \"0123456789012345678901234567890123456789"
                                   "012345678901234567890123\"}", 400 },
        { "POST", "/api/v1/sites", "{\"name\": \"123e4567-e89b-12d3-a456-426614174000\"}", 400 },
        { "POST", "/api/v1/sites", "{\"name\": \"ok\", \"description\": \"a\\u0001b\"}", 400 },
        { "POST", "/api/v1/sites", big, 413 },
        { "POST", "/api/v1/sites", NULL, 400 },
        { "PATCH", "/api/v1/sites/dc1", "{\"name\": \"bad name\"}", 400 },
        { "PATCH", "/api/v1/sites/dc1", "{\"id\": \"x\"}", 400 },
        { "PATCH", "/api/v1/sites/bad%20name", "{}", 400 },
        { "GET", "/api/v1/sites/bad%20name", NULL, 400 },
        { "DELETE", "/api/v1/sites/bad%2Fname", NULL, 400 },
        { "DELETE", "/api/v1/sites/..", NULL, 400 },
        { "POST", "/api/v1/users", "{\"name\": \"u1\", \"password\": \"short\", \"role\": "
                                   "\"viewer\"}", 400 },
        { "POST", "/api/v1/users", "{\"name\": \"u1\", \"password\": \"long-enough\", \"role\": "
                                   "\"root\"}", 400 },
        { "POST", "/api/v1/users", "{\"name\": \"u 1\", \"password\": \"long-enough\", "
                                   "\"role\": \"viewer\"}", 400 },
        { "POST", "/api/v1/users", "{\"name\": \"u1\", \"password\": \"long-enough\", "
                                   "\"role\": \"viewer\", \"admin\": true}", 400 },
        { "PUT", "/api/v1/sites", "{}", 405 },
        { "GET", "/api/v1/nothing", NULL, 404 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        AUTOJSON json_t *r = NULL;
        long st = call(f, P_ADMIN, cases[i].method, cases[i].path, cases[i].body, &r);
        if (st != cases[i].status)
            fail_msg("case %zu %s %s: status %ld, wanted %ld", i, cases[i].method,
                     cases[i].path, st, cases[i].status);
        json_t *e = json_object_get(r, "error");
        assert_non_null(jstr(e, "code"));
        assert_non_null(jstr(e, "message"));
    }
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sites"), sites);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events"), events);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM users"), users);
}

static void test_users(void **state)
{
    struct fixture *f = *state;
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/users",
                          "{\"name\": \"bob\", \"password\": \"bob-password\", \"role\": "
                          "\"operator\"}", &r), 201);
    assert_string_equal(jstr(r, "role"), "operator");
    assert_null(json_object_get(r, "password_hash"));
    assert_null(json_object_get(r, "password"));
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/users",
                          "{\"name\": \"bob\", \"password\": \"bob-password\", \"role\": "
                          "\"viewer\"}", NULL), 409);

    assert_int_equal(call(f, P_ADMIN, "GET", "/api/v1/users?role=operator", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 2);     /* otto, bob */
    AUTOFREE char *text = json_to_string(r);
    assert_null(strstr(text, "pbkdf2"));
    json_decref(steal_pointer(&r));

    /* bob logs in, is demoted, then disabled: his session ends. */
    assert_int_equal(call(f, P_NONE, "POST", "/api/v1/sessions",
                          "{\"name\": \"bob\", \"password\": \"bob-password\"}", &r), 201);
    AUTOFREE char *bob = xstrdup(jstr(r, "token"));
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_ADMIN, "PATCH", "/api/v1/users/bob", "{\"role\": \"viewer\"}", &r),
                     200);
    assert_string_equal(jstr(r, "role"), "viewer");
    json_decref(steal_pointer(&r));
    int code;
    assert_int_equal(call_tok(f, bob, "POST", "/api/v1/sites", "{\"name\": \"x\"}", NULL, &code),
                     403);
    assert_int_equal(code, ERR_FORBIDDEN);
    assert_int_equal(call(f, P_ADMIN, "PATCH", "/api/v1/users/bob", "{\"enabled\": false}", &r),
                     200);
    assert_true(json_is_false(json_object_get(r, "enabled")));
    json_decref(steal_pointer(&r));
    assert_int_equal(call_tok(f, bob, "GET", "/api/v1/sites", NULL, NULL, NULL), 401);
    assert_int_equal(call(f, P_ADMIN, "PATCH", "/api/v1/users/bob", "{\"enabled\": true}", NULL),
                     200);
    assert_int_equal(call_tok(f, bob, "GET", "/api/v1/sites", NULL, NULL, NULL), 401);

    /* Password reset by an administrator. */
    assert_int_equal(call(f, P_ADMIN, "PATCH", "/api/v1/users/bob",
                          "{\"password\": \"bob-second-password\"}", NULL), 200);
    assert_int_equal(call(f, P_NONE, "POST", "/api/v1/sessions",
                          "{\"name\": \"bob\", \"password\": \"bob-second-password\"}", NULL), 201);

    /* The last administrators cannot all go. */
    assert_int_equal(call(f, P_ADMIN, "PATCH", "/api/v1/users/admin", "{\"role\": \"viewer\"}",
                          NULL), 200);
    assert_int_equal(call_tok(f, f->tok[P_ADMIN], "PATCH", "/api/v1/users/ada",
                              "{\"enabled\": false}", NULL, &code), 409);
    assert_int_equal(code, ERR_BAD_STATE);
    assert_int_equal(call(f, P_ADMIN, "PATCH", "/api/v1/users/ada", "{\"role\": \"operator\"}",
                          NULL), 409);
    assert_int_equal(call(f, P_ADMIN, "DELETE", "/api/v1/users/ada", NULL, NULL), 409);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM users WHERE role = 'administrator' "
                              "AND enabled = 1"), 1);

    assert_int_equal(call(f, P_ADMIN, "DELETE", "/api/v1/users/bob", NULL, NULL), 204);
    assert_int_equal(call(f, P_ADMIN, "GET", "/api/v1/users/bob", NULL, NULL), 404);
    /* created, role, disabled, enabled, password, admin demoted, deleted */
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE type LIKE 'user.%'"), 7);
}

static void test_tokens(void **state)
{
    struct fixture *f = *state;
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_VIEWER, "POST", "/api/v1/tokens",
                          "{\"name\": \"ci\", \"expires_in_s\": 3600}", &r), 201);
    AUTOFREE char *tok = xstrdup(jstr(r, "token"));
    AUTOFREE char *id = xstrdup(jstr(r, "id"));
    assert_string_equal(jstr(r, "kind"), "api");
    assert_non_null(jstr(r, "expires_at"));
    json_decref(steal_pointer(&r));
    assert_int_equal(call_tok(f, tok, "GET", "/api/v1/sessions/current", NULL, &r, NULL), 200);
    assert_string_equal(jstr(json_object_get(r, "user"), "name"), "vera");
    json_decref(steal_pointer(&r));

    /* The viewer sees only her own tokens; the administrator all, or by user. */
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/tokens", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 2);
    AUTOFREE char *text = json_to_string(r);
    assert_null(strstr(text, tok));        /* never shown again */
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/tokens?user=ada", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 2);   /* the filter is forced to her */
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_ADMIN, "GET", "/api/v1/tokens", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 4);
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_ADMIN, "GET", "/api/v1/tokens?user=vera", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 2);
    json_decref(steal_pointer(&r));

    assert_int_equal(call(f, P_VIEWER, "POST", "/api/v1/tokens",
                          "{\"name\": \"x\", \"expires_in_s\": 1}", NULL), 400);
    assert_int_equal(call(f, P_VIEWER, "POST", "/api/v1/tokens", "{}", NULL), 400);

    /* Someone else's token is not found for an operator; the owner revokes. */
    AUTOFREE char *path = xasprintf("/api/v1/tokens/%s", id);
    assert_int_equal(call(f, P_OPERATOR, "DELETE", path, NULL, NULL), 404);
    assert_int_equal(call(f, P_VIEWER, "DELETE", path, NULL, NULL), 204);
    assert_int_equal(call_tok(f, tok, "GET", "/api/v1/sites", NULL, NULL, NULL), 401);
    assert_int_equal(call(f, P_VIEWER, "DELETE", "/api/v1/tokens/not-a-uuid", NULL, NULL), 400);
}

static void add_host(struct fixture *f, const char *name, const char *cluster_id,
                     const char *hstate)
{
    AUTOERROR struct error *err = NULL;
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_WRITE, &err);
    assert_int_equal(store_exec(t, "INSERT INTO hosts (id, name, cluster_id, address, port, "
                                   "state, facts, created_at, updated_at) "
                                   "VALUES (?, ?, ?, '192.0.2.1', 16509, ?, ?, 0, 0)",
                                STORE_ARGS(SV_TEXT(id), SV_TEXT(name), SV_TEXT(cluster_id),
                                           SV_TEXT(hstate), SV_TEXT("{\"cpus\": 8}")), &err),
                     1);
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
}

static void test_hosts(void **state)
{
    struct fixture *f = *state;
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/sites", "{\"name\": \"dc1\"}", NULL), 201);
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/clusters",
                          "{\"name\": \"c1\", \"site\": \"dc1\"}", &r), 201);
    AUTOFREE char *cid = xstrdup(jstr(r, "id"));
    json_decref(steal_pointer(&r));
    add_host(f, "node1", cid, "connected");
    add_host(f, "node2", cid, "disconnected");
    add_host(f, "node3", NULL, "connected");

    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/hosts", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 3);
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/hosts?cluster=c1&state=connected", NULL,
                          &r), 200);
    assert_int_equal(jint(r, "total"), 1);
    json_t *h = json_array_get(json_object_get(r, "items"), 0);
    assert_string_equal(jstr(h, "name"), "node1");
    assert_string_equal(jstr(h, "cluster_name"), "c1");
    assert_int_equal(jint(json_object_get(h, "facts"), "cpus"), 8);
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/clusters/c1", NULL, &r), 200);
    assert_int_equal(jint(r, "host_count"), 2);
    json_decref(steal_pointer(&r));

    /* Maintenance: operators may; it bumps the desired generation. */
    assert_int_equal(call(f, P_VIEWER, "POST", "/api/v1/hosts/node1/maintenance", NULL, NULL),
                     403);
    assert_int_equal(call(f, P_OPERATOR, "POST", "/api/v1/hosts/node1/maintenance", NULL, &r),
                     200);
    assert_string_equal(jstr(r, "state"), "maintenance");
    assert_int_equal(jint(r, "desired_generation"), 1);
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_OPERATOR, "POST", "/api/v1/hosts/node1/maintenance", NULL, &r),
                     200);
    assert_int_equal(jint(r, "desired_generation"), 1);     /* idempotent */
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_OPERATOR, "DELETE", "/api/v1/hosts/node1/maintenance", NULL, &r),
                     200);
    assert_string_equal(jstr(r, "state"), "disconnected");
    assert_int_equal(jint(r, "desired_generation"), 2);
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_OPERATOR, "POST", "/api/v1/hosts/nodeX/maintenance", NULL, NULL),
                     404);
    assert_int_equal(call(f, P_OPERATOR, "POST", "/api/v1/hosts/node1/maintenance",
                          "{\"evacuate\": true}", NULL), 400);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE type = 'host.maintenance'"), 2);

    /* A cluster with hosts cannot be deleted. */
    assert_int_equal(call(f, P_ADMIN, "DELETE", "/api/v1/clusters/c1", NULL, NULL), 409);
}

static void test_tasks_api(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    char a[UUID_STRLEN + 1], b[UUID_STRLEN + 1];
    {
        static const char *const steps[] = { "one", "two", NULL };
        AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_WRITE, &err);
        assert_int_equal(task_create(t, "vm.start", "vm", "web1", "otto", NULL, steps, a, &err),
                         0);
        assert_int_equal(task_create(t, "vm.stop", "vm", "web2", "ada", NULL, NULL, b, &err), 0);
        assert_int_equal(task_step(t, a, 1, 50, &err), 0);
        assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
    }
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/tasks", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 2);
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/tasks?state=running", NULL, &r), 200);
    assert_int_equal(jint(r, "total"), 1);
    json_t *t0 = json_array_get(json_object_get(r, "items"), 0);
    assert_string_equal(jstr(t0, "id"), a);
    assert_int_equal(jint(t0, "progress"), 50);
    assert_string_equal(jstr(json_array_get(json_object_get(t0, "steps"), 1), "state"),
                        "running");
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/tasks?object=web2&kind=vm.stop", NULL,
                          &r), 200);
    assert_int_equal(jint(r, "total"), 1);
    json_decref(steal_pointer(&r));
    AUTOFREE char *path = xasprintf("/api/v1/tasks/%s", b);
    assert_int_equal(call(f, P_VIEWER, "GET", path, NULL, &r), 200);
    assert_string_equal(jstr(r, "state"), "queued");
    assert_string_equal(jstr(r, "user_name"), "ada");
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/tasks/web1", NULL, NULL), 400);
    char other[UUID_STRLEN + 1];
    uuid_generate(other);
    AUTOFREE char *missing = xasprintf("/api/v1/tasks/%s", other);
    assert_int_equal(call(f, P_VIEWER, "GET", missing, NULL, NULL), 404);
}

/* A writer that creates a site after a delay, for the long poll. */
struct delayed {
    struct fixture *f;
    int delay_ms;
};

static void *delayed_writer(void *arg)
{
    struct delayed *d = arg;
    nanosleep(&(struct timespec) { d->delay_ms / 1000, (d->delay_ms % 1000) * 1000000L }, NULL);
    struct error *err = NULL;
    struct store_txn *t = store_begin(d->f->m->store, STORE_WRITE, &err);
    char id[UUID_STRLEN + 1];
    json_t *spec = json_pack("{s:s}", "name", "late-site");
    if (!t || inv_site_create(t, spec, "test", id, &err) < 0 ||
        manager_commit(d->f->m, t, &err) < 0)
        abort();
    json_decref(spec);
    return NULL;
}

static void test_events(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/sites", "{\"name\": \"dc1\"}", NULL), 201);
    assert_int_equal(call(f, P_ADMIN, "POST", "/api/v1/clusters",
                          "{\"name\": \"c1\", \"site\": \"dc1\"}", NULL), 201);
    AUTOJSON json_t *r = NULL;
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/events", NULL, &r), 200);
    json_int_t last = jint(r, "last");
    assert_true(last >= 2);
    assert_int_equal(jint(r, "next"), last);
    json_t *items = json_object_get(r, "items");
    assert_string_equal(jstr(json_array_get(items, json_array_size(items) - 1), "type"),
                        "cluster.created");
    json_decref(steal_pointer(&r));

    /* Cursor and filters. */
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/events?since=0&limit=1", NULL, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r, "items")), 1);
    assert_int_equal(jint(r, "next"), 1);
    json_decref(steal_pointer(&r));
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/events?type=site.created&object=dc1", NULL,
                          &r), 200);
    assert_int_equal(jint(r, "total"), 1);
    json_decref(steal_pointer(&r));

    /* Nothing new: the poll waits (about) wait_ms and answers empty. */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/events?since=%lld&wait_ms=300", (long long) last);
    int64_t t0 = store_now_ms();
    assert_int_equal(call(f, P_VIEWER, "GET", path, NULL, &r), 200);
    int64_t waited = store_now_ms() - t0;
    assert_true(waited >= 250);
    assert_int_equal(json_array_size(json_object_get(r, "items")), 0);
    assert_int_equal(jint(r, "next"), last);
    json_decref(steal_pointer(&r));

    /* A change during the poll answers it at once. */
    pthread_t th;
    struct delayed d = { f, 200 };
    assert_int_equal(pthread_create(&th, NULL, delayed_writer, &d), 0);
    snprintf(path, sizeof path, "/api/v1/events?since=%lld&wait_ms=20000", (long long) last);
    t0 = store_now_ms();
    assert_int_equal(call(f, P_VIEWER, "GET", path, NULL, &r), 200);
    waited = store_now_ms() - t0;
    pthread_join(th, NULL);
    assert_true(waited < 10000);
    items = json_object_get(r, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(jstr(json_array_get(items, 0), "object_name"), "late-site");
    assert_int_equal(jint(r, "next"), last + 1);
    json_decref(steal_pointer(&r));

    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/events?wait_ms=60001", NULL, NULL), 400);
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/events?since=-1", NULL, NULL), 400);
    assert_int_equal(call(f, P_VIEWER, "GET", "/api/v1/events?offset=3", NULL, NULL), 400);
}

/* Every route x {unauthenticated, viewer, operator, administrator}: a call
 * under the route's role is refused (401 without credentials, 403 with too
 * weak a role) before its handler runs; one at or above it is not. */
static void test_route_role_table(void **state)
{
    struct fixture *f = *state;
    static const enum role role_of[] = { ROLE_NONE, ROLE_VIEWER, ROLE_OPERATOR,
                                         ROLE_ADMINISTRATOR };
    size_t n = 0, refused = 0, allowed = 0;
    for (const struct api_route *r = manager_api_table(); r->method; r++, n++) {
        assert_true(r->access != API_DENY);     /* every route is classified */
        assert_true(!strncmp(r->pattern, "/api/v1/", 8));
        /* Parameters become a fresh UUID: allowed calls answer 404/400, never
         * touching the objects of other cases. */
        char uuid[UUID_STRLEN + 1];
        uuid_generate(uuid);
        char path[256] = "";
        for (const char *p = r->pattern; *p;) {
            if (*p == '{') {
                strcat(path, uuid);
                p = strchr(p, '}') + 1;
            } else {
                strncat(path, p, 1);
                p++;
            }
        }
        const char *body = strcmp(r->method, "GET") && strcmp(r->method, "DELETE") ? "{}" : NULL;
        for (int p = P_NONE; p < P__COUNT; p++) {
            /* A fresh token per call: DELETE /sessions/current revokes it. */
            AUTOFREE char *tok = p == P_NONE ? NULL : make_token(f->m, f->uid[p]);
            int code = -1;
            AUTOJSON json_t *reply = NULL;
            long st = call_tok(f, tok, r->method, path, body, &reply, &code);
            bool should_pass = r->access == API_PUBLIC ||
                               (p != P_NONE && role_of[p] >= api_access_role(r->access));
            if (should_pass) {
                if (st == 401 || st == 403)
                    fail_msg("%s %s as %s: refused (%ld), should pass", r->method, r->pattern,
                             role_to_string(role_of[p]), st);
                allowed++;
            } else {
                long want = p == P_NONE ? 401 : 403;
                if (st != want)
                    fail_msg("%s %s as %s: %ld, wanted %ld", r->method, r->pattern,
                             role_to_string(role_of[p]), st, want);
                assert_int_equal(code, p == P_NONE ? ERR_UNAUTHORIZED : ERR_FORBIDDEN);
                assert_non_null(jstr(json_object_get(reply, "error"), "message"));
                refused++;
            }
        }
    }
    assert_true(n >= 30);
    assert_true(refused > 0 && allowed > 0);
    /* The refused calls changed nothing. */
    assert_int_equal(count(f, "SELECT COUNT(*) FROM sites"), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM users"), 4);
}

/* Retention: old events and ended tasks go, recent ones and unfinished
 * tasks stay; sequence numbers are not reused. */
static void test_history_prune(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    {
        AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_WRITE, &err);
        for (int i = 0; i < 3; i++) {
            struct event e = { .type = "site.created", .message = "old" };
            assert_true(event_append(t, &e, &err) > 0);
        }
        assert_true(store_exec(t, "UPDATE events SET at = 1000", STORE_NO_ARGS, &err) >= 0);
        struct event e = { .type = "site.created", .message = "new" };
        assert_true(event_append(t, &e, &err) > 0);
        assert_true(store_exec(t, "INSERT INTO tasks (id, kind, state, created_at, updated_at, "
                                  "finished_at) VALUES ('t-old', 'x', 'succeeded', 0, 0, 1000), "
                                  "('t-run', 'x', 'running', 0, 0, NULL), "
                                  "('t-new', 'x', 'failed', 0, 0, 9000000000000)",
                               STORE_NO_ARGS, &err) >= 0);
        assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
    }
    int64_t last = count(f, "SELECT MAX(seq) FROM events");
    assert_int_equal(history_prune(f->m->store, 5000, &err), 4);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE message = 'old'"), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE message = 'new'"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM tasks WHERE id IN ('t-run', 't-new')"), 2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM tasks WHERE id = 't-old'"), 0);
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_WRITE, &err);
    struct event e = { .type = "site.created", .message = "after" };
    assert_true(event_append(t, &e, &err) > last);
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
}

/* Deny by default: the access check itself, for a route nobody classified. */
static void test_access_check(void **state)
{
    (void) state;
    struct auth_identity admin = { .role = ROLE_ADMINISTRATOR };
    struct auth_identity viewer = { .role = ROLE_VIEWER };
    struct api_route deny = { "GET", "/api/v1/x", API_DENY, NULL };
    struct api_route ops = { "GET", "/api/v1/x", API_OPERATOR, NULL };
    struct api_route pub = { "GET", "/api/v1/x", API_PUBLIC, NULL };
    AUTOERROR struct error *err = NULL;
    assert_int_equal(api_access_check(&deny, &admin, &err), -1);
    assert_int_equal(err->code, ERR_FORBIDDEN);
    error_free(steal_pointer(&err));
    assert_int_equal(api_access_check(&deny, NULL, &err), -1);
    assert_int_equal(err->code, ERR_FORBIDDEN);
    error_free(steal_pointer(&err));
    assert_int_equal(api_access_check(&ops, NULL, &err), -1);
    assert_int_equal(err->code, ERR_UNAUTHORIZED);
    error_free(steal_pointer(&err));
    assert_int_equal(api_access_check(&ops, &viewer, &err), -1);
    assert_int_equal(err->code, ERR_FORBIDDEN);
    error_free(steal_pointer(&err));
    assert_int_equal(api_access_check(&ops, &admin, &err), 0);
    assert_int_equal(api_access_check(&pub, NULL, &err), 0);
    struct api_route bogus = { "GET", "/api/v1/x", (enum api_access) 42, NULL };
    assert_int_equal(api_access_check(&bogus, &admin, &err), -1);
    assert_int_equal(err->code, ERR_FORBIDDEN);
}

/* The public API over TCP: server-only TLS, bearer tokens, no client
 * certificate. */
static void test_tls_server_only(void **state)
{
    struct fixture *f = *state;
    const char *src = getenv("STRATA_SRCDIR");
    assert_non_null(src);
    AUTOFREE char *script = xasprintf("%s/tools/make-test-pki.sh", src);
    AUTOFREE char *pki = xasprintf("%s/pki", f->dir);
    AUTOERROR struct error *err = NULL;
    AUTOCOMMAND struct command *cmd = command_new("/bin/sh");
    command_add_args(cmd, script, pki, NULL);
    if (command_run(cmd, NULL, NULL, NULL, &err) < 0)
        fail_msg("make-test-pki.sh: %s", err->message);
    AUTOFREE char *cert = xasprintf("%s/server.pem", pki);
    AUTOFREE char *key = xasprintf("%s/server-key.pem", pki);
    AUTOFREE char *ca = xasprintf("%s/ca.pem", pki);
    struct http_tls_config tls = { .cert_file = cert, .key_file = key, .no_client_cert = true };
    struct http_server_config sc = {
        .tcp_address = "127.0.0.1", .tls = &tls, .routes = manager_api_routes(),
        .opaque = f->m, .max_body = API_MAX_BODY,
    };
    struct http_server *srv = http_server_start(&sc, &err);
    assert_non_null(srv);
    struct http_client_config cc = {
        .host = "127.0.0.1", .port = http_server_port(srv), .server_name = "localhost",
        .ca_file = ca,
    };
    AUTOHTTPCLIENT struct http_client *c = http_client_new(&cc, &err);
    assert_non_null(c);
    long st = 0;
    AUTOJSON json_t *r = NULL;
    assert_int_equal(http_client_request(c, "GET", "/api/v1/sites", NULL, &st, &r, &err), -1);
    assert_int_equal(st, 401);
    error_free(steal_pointer(&err));
    assert_int_equal(http_client_set_bearer_token(c, f->tok[P_VIEWER], &err), 0);
    assert_int_equal(http_client_request(c, "GET", "/api/v1/sites", NULL, &st, &r, &err), 0);
    assert_int_equal(st, 200);
    assert_int_equal(jint(r, "total"), 0);
    json_decref(steal_pointer(&r));
    AUTOJSON json_t *site = json_pack("{s:s}", "name", "x");
    assert_int_equal(http_client_request(c, "POST", "/api/v1/sites", site, &st, &r, &err), -1);
    assert_int_equal(st, 403);
    error_free(steal_pointer(&err));
    assert_int_equal(http_client_set_bearer_token(c, "bad token", &err), -1);
    error_free(steal_pointer(&err));
    http_server_stop(srv);

    /* Without no_client_cert, a CA stays mandatory. */
    struct http_tls_config mtls = { .cert_file = cert, .key_file = key };
    sc.tls = &mtls;
    assert_null(http_server_start(&sc, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_version_public),
        T(test_sessions),
        T(test_password_change),
        T(test_sites_crud),
        T(test_clusters),
        T(test_pagination),
        T(test_bad_input_changes_nothing),
        T(test_users),
        T(test_tokens),
        T(test_hosts),
        T(test_tasks_api),
        T(test_events),
        T(test_route_role_table),
        cmocka_unit_test(test_access_check),
        T(test_history_prune),
        T(test_tls_server_only),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
