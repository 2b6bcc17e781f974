/* api_auth.c - REST routes for sessions, users and API tokens.
 *
 *   POST   /api/v1/sessions                    public: {"name","password"} -> token
 *   GET    /api/v1/sessions/current            viewer: who am I
 *   DELETE /api/v1/sessions/current            viewer: revoke the token of this request
 *   POST   /api/v1/sessions/current/password   viewer: change my own password
 *   GET    /api/v1/tokens                      viewer: my tokens (administrators: all, ?user=)
 *   POST   /api/v1/tokens                      viewer: new API token for me, shown once
 *   DELETE /api/v1/tokens/{id}                 viewer: revoke mine (administrators: any)
 *   GET    /api/v1/users, POST /api/v1/users   administrator
 *   GET    /api/v1/users/{id}, PATCH, DELETE   administrator
 *
 * Passwords are hashed before a write transaction begins (hashing is slow on
 * purpose and must not hold the write lock).  The last enabled administrator
 * cannot be demoted, disabled or deleted.  A password change or disabling
 * ends the user's sessions.
 *
 * Neighbours: api.c (dispatch, helpers), auth.c (hashes, tokens),
 * inventory.c (listing), events.c. */
#define LOG_MODULE "api"
#include <string.h>

#include "manager/api.h"
#include "manager/events.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define TOKEN_MAX_TTL_S ((long long) 10 * 366 * 24 * 3600)

static json_t *identity_json(const struct auth_identity *who)
{
    return json_pack("{s:s, s:s, s:s}", "id", who->user_id, "name", who->user_name, "role",
                     role_to_string(who->role));
}

static int user_event(struct store_txn *t, const char *verb, const char *id, const char *name,
                      const char *actor, const char *detail, struct error **errp)
{
    AUTOFREE char *type = xasprintf("user.%s", verb);
    AUTOFREE char *msg = detail ? xasprintf("user '%s' %s: %s", name, verb, detail)
                                : xasprintf("user '%s' %s", name, verb);
    struct event e = {
        .type = type, .object_type = "user", .object_id = id, .object_name = name,
        .user_name = actor, .message = msg,
    };
    return event_append(t, &e, errp) < 0 ? -1 : 0;
}

/* ---- sessions ----------------------------------------------------------- */

static int h_login(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const keys[] = { "name", "password", NULL };
    const json_t *body = api_body(c, errp);
    const char *name = NULL, *password = NULL;
    if (!body || api_query_check(c, NULL, errp) < 0 ||
        json_check_keys(body, keys, NULL, errp) < 0 ||
        json_get_string(body, "name", NULL, true, &name, errp) < 0 ||
        json_get_string(body, "password", NULL, true, &password, errp) < 0)
        return -1;
    struct auth_identity who;
    int64_t expires = 0;
    AUTOFREE char *tok = auth_login(c->m->store, name, password, c->m->session_ttl_ms, &who,
                                    &expires, errp);
    if (!tok) {
        LOG_RL(LOG_LEVEL_INFO, "login refused for '%s'", name);
        return -1;
    }
    LOG_INFO("user '%s' logged in", who.user_name);
    AUTOFREE char *exp = inv_time_format(expires);
    return api_reply(resp, 201, json_pack("{s:s, s:s, s:s, s:o}", "token", tok, "token_id",
                                          who.token_id, "expires_at", exp, "user",
                                          identity_json(&who)));
}

static int h_session_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    if (api_query_check(c, NULL, errp) < 0)
        return -1;
    return api_reply(resp, 200, json_pack("{s:o, s:{s:s, s:s}}", "user",
                                          identity_json(&c->who), "token", "id",
                                          c->who.token_id, "kind",
                                          token_kind_to_string(c->who.token_kind)));
}

static int h_session_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    if (api_query_check(c, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t || auth_token_revoke(t, c->who.token_id, NULL, errp) < 0 ||
        manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

static int h_password_change(struct api_call *c, struct http_response *resp,
                             struct error **errp)
{
    static const char *const keys[] = { "old_password", "new_password", NULL };
    const json_t *body = api_body(c, errp);
    const char *old_pw = NULL, *new_pw = NULL;
    if (!body || api_query_check(c, NULL, errp) < 0 ||
        json_check_keys(body, keys, NULL, errp) < 0 ||
        json_get_string(body, "old_password", NULL, true, &old_pw, errp) < 0 ||
        json_get_string(body, "new_password", NULL, true, &new_pw, errp) < 0 ||
        auth_password_check(new_pw, "new_password", errp) < 0)
        return -1;
    AUTOFREE char *stored = NULL;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        AUTOSTMT struct store_stmt *st = t ? store_query(
            t, "SELECT password_hash FROM users WHERE id = ?",
            STORE_ARGS(SV_TEXT(c->who.user_id)), errp) : NULL;
        if (!st || store_step(st, errp) <= 0)
            return error_set(errp, ERR_NOT_FOUND, "no user '%s'", c->who.user_name);
        stored = xstrdup(store_col_text(st, 0));
    }
    if (!auth_password_verify(old_pw, stored))
        return error_set_field(errp, ERR_INVALID_ARG, "old_password",
                               "the current password is not correct");
    AUTOFREE char *hash = auth_password_hash(new_pw, 0, errp);
    if (!hash)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t ||
        store_exec(t, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
                   STORE_ARGS(SV_TEXT(hash), SV_INT(store_now_ms()), SV_TEXT(c->who.user_id)),
                   errp) < 0 ||
        /* Other sessions end; the one that made the change goes on. */
        store_exec(t, "DELETE FROM api_tokens WHERE user_id = ? AND kind = 'session' AND id <> ?",
                   STORE_ARGS(SV_TEXT(c->who.user_id), SV_TEXT(c->who.token_id)), errp) < 0 ||
        user_event(t, "updated", c->who.user_id, c->who.user_name, c->who.user_name,
                   "password changed", errp) < 0 ||
        manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

/* ---- tokens ------------------------------------------------------------- */

static int h_token_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    struct inv_page p;
    if (api_page_parse(c, &inv_tokens, NULL, &p, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    if (!t)
        return -1;
    char uid[UUID_STRLEN + 1];
    if (c->who.role != ROLE_ADMINISTRATOR) {
        p.filters[0] = c->who.user_id;      /* only one's own */
    } else if (p.filters[0]) {
        if (inv_resolve(t, &inv_users, p.filters[0], "user", uid, errp) < 0)
            return -1;
        p.filters[0] = uid;
    }
    json_t *j = inv_list(t, &inv_tokens, &p, errp);
    return j ? api_reply(resp, 200, j) : -1;
}

static int h_token_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const keys[] = { "name", "expires_in_s", NULL };
    const json_t *body = api_body(c, errp);
    const char *name = NULL;
    unsigned long long ttl = 0;
    if (!body || api_query_check(c, NULL, errp) < 0 ||
        json_check_keys(body, keys, NULL, errp) < 0 ||
        json_get_string(body, "name", NULL, true, &name, errp) < 0 ||
        json_get_uint(body, "expires_in_s", NULL, false, 60, TOKEN_MAX_TTL_S, &ttl, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0)
        return -1;
    int64_t expires = ttl ? store_now_ms() + (int64_t) ttl * 1000 : 0;
    char id[UUID_STRLEN + 1];
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    AUTOFREE char *tok = t ? auth_token_create(t, c->who.user_id, TOKEN_API, name, expires, id,
                                               errp) : NULL;
    if (!tok)
        return -1;
    AUTOJSON json_t *j = inv_get(t, &inv_tokens, id, errp);
    if (!j || manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    json_object_set_new(j, "token", json_string(tok));
    return api_reply(resp, 201, steal_pointer(&j));
}

static int h_token_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *id = c->req->params[0];
    if (api_query_check(c, NULL, errp) < 0)
        return -1;
    if (!uuid_is_valid(id))
        return error_set_field(errp, ERR_INVALID_ARG, "id", "token id '%s' is not a UUID", id);
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    const char *owner = c->who.role == ROLE_ADMINISTRATOR ? NULL : c->who.user_id;
    if (!t || auth_token_revoke(t, id, owner, errp) < 0 ||
        manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

/* ---- users -------------------------------------------------------------- */

static int h_user_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    struct inv_page p;
    if (api_page_parse(c, &inv_users, NULL, &p, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_list(t, &inv_users, &p, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int h_user_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_get(t, &inv_users, ref, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int role_arg(const json_t *body, bool required, enum role *out, struct error **errp)
{
    const char *s = NULL;
    if (json_get_string(body, "role", NULL, required, &s, errp) < 0)
        return -1;
    if (!s)
        return 0;
    int r = role_from_string(s);
    if (r < 0)
        return error_set_field(errp, ERR_INVALID_ARG, "role",
                               "role '%s' must be administrator, operator or viewer", s);
    *out = (enum role) r;
    return 0;
}

static int h_user_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const keys[] = { "name", "password", "role", NULL };
    const json_t *body = api_body(c, errp);
    const char *name = NULL, *password = NULL;
    enum role role = ROLE_VIEWER;
    if (!body || api_query_check(c, NULL, errp) < 0 ||
        json_check_keys(body, keys, NULL, errp) < 0 ||
        json_get_string(body, "name", NULL, true, &name, errp) < 0 ||
        json_get_string(body, "password", NULL, true, &password, errp) < 0 ||
        role_arg(body, true, &role, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 ||
        auth_password_check(password, "password", errp) < 0)
        return -1;
    AUTOFREE char *hash = auth_password_hash(password, 0, errp);
    if (!hash)
        return -1;
    char id[UUID_STRLEN + 1];
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t || auth_user_insert(t, name, hash, role, id, errp) < 0 ||
        user_event(t, "created", id, name, api_actor(c), role_to_string(role), errp) < 0)
        return -1;
    AUTOJSON json_t *j = inv_get(t, &inv_users, id, errp);
    if (!j || manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    return api_reply(resp, 201, steal_pointer(&j));
}

static int h_user_update(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const keys[] = { "password", "role", "enabled", NULL };
    const char *ref = api_ref(c, 0, "id", errp);
    const json_t *body = ref ? api_body(c, errp) : NULL;
    const char *password = NULL;
    enum role role = ROLE_NONE;
    bool enabled = true, has_enabled = json_object_get(body, "enabled") != NULL;
    if (!body || api_query_check(c, NULL, errp) < 0 ||
        json_check_keys(body, keys, NULL, errp) < 0 ||
        json_get_string(body, "password", NULL, false, &password, errp) < 0 ||
        role_arg(body, false, &role, errp) < 0 ||
        json_get_bool(body, "enabled", NULL, false, &enabled, errp) < 0 ||
        (password && auth_password_check(password, "password", errp) < 0))
        return -1;
    AUTOFREE char *hash = password ? auth_password_hash(password, 0, errp) : NULL;
    if (password && !hash)
        return -1;

    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    char id[UUID_STRLEN + 1];
    if (!t || inv_resolve(t, &inv_users, ref, NULL, id, errp) < 0)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT name, role, enabled FROM users WHERE id = ?", STORE_ARGS(SV_TEXT(id)), errp);
    if (!st || store_step(st, errp) <= 0)
        return -1;
    AUTOFREE char *name = xstrdup(store_col_text(st, 0));
    int old_role = role_from_string(store_col_text(st, 1));
    bool old_enabled = store_col_int(st, 2) != 0;
    store_stmt_free(steal_pointer(&st));
    if (role == ROLE_NONE)
        role = old_role < 0 ? ROLE_VIEWER : (enum role) old_role;
    if (!has_enabled)
        enabled = old_enabled;

    bool was_admin = old_role == ROLE_ADMINISTRATOR && old_enabled;
    bool is_admin = role == ROLE_ADMINISTRATOR && enabled;
    if (was_admin && !is_admin) {
        int64_t others = auth_count_admins(t, id, errp);
        if (others < 0)
            return -1;
        if (others == 0)
            return error_set(errp, ERR_BAD_STATE,
                             "user '%s' is the last enabled administrator", name);
    }
    if (store_exec(t, "UPDATE users SET role = ?, enabled = ?, "
                      "password_hash = COALESCE(?, password_hash), updated_at = ? WHERE id = ?",
                   STORE_ARGS(SV_TEXT(role_to_string(role)), SV_BOOL(enabled), SV_TEXT(hash),
                              SV_INT(store_now_ms()), SV_TEXT(id)), errp) < 0)
        return -1;
    if ((hash || !enabled) &&
        store_exec(t, "DELETE FROM api_tokens WHERE user_id = ? AND kind = 'session'",
                   STORE_ARGS(SV_TEXT(id)), errp) < 0)
        return -1;
    if (user_event(t, "updated", id, name, api_actor(c), NULL, errp) < 0)
        return -1;
    AUTOJSON json_t *j = inv_get(t, &inv_users, id, errp);
    if (!j || manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    return api_reply(resp, 200, steal_pointer(&j));
}

static int h_user_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    char id[UUID_STRLEN + 1];
    if (!t || inv_resolve(t, &inv_users, ref, NULL, id, errp) < 0)
        return -1;
    int64_t admins_without = auth_count_admins(t, id, errp), admins_all;
    if (admins_without < 0 || (admins_all = auth_count_admins(t, NULL, errp)) < 0)
        return -1;
    if (admins_all > 0 && admins_without == 0)
        return error_set(errp, ERR_BAD_STATE, "user '%s' is the last enabled administrator",
                         ref);
    if (inv_delete(t, &inv_users, id, api_actor(c), errp) < 0 ||
        manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

const struct api_route api_auth_routes[] = {
    { "POST", "/api/v1/sessions", API_PUBLIC, h_login },
    { "GET", "/api/v1/sessions/current", API_VIEWER, h_session_get },
    { "DELETE", "/api/v1/sessions/current", API_VIEWER, h_session_delete },
    { "POST", "/api/v1/sessions/current/password", API_VIEWER, h_password_change },
    { "GET", "/api/v1/tokens", API_VIEWER, h_token_list },
    { "POST", "/api/v1/tokens", API_VIEWER, h_token_create },
    { "DELETE", "/api/v1/tokens/{id}", API_VIEWER, h_token_delete },
    { "GET", "/api/v1/users", API_ADMIN, h_user_list },
    { "POST", "/api/v1/users", API_ADMIN, h_user_create },
    { "GET", "/api/v1/users/{id}", API_ADMIN, h_user_get },
    { "PATCH", "/api/v1/users/{id}", API_ADMIN, h_user_update },
    { "DELETE", "/api/v1/users/{id}", API_ADMIN, h_user_delete },
    { NULL, NULL, API_DENY, NULL },
};
