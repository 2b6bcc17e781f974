/* api_hosts.c - REST routes for joining hosts.
 *
 *   GET    /api/v1/join-tokens          administrator: tokens (never their secret)
 *   POST   /api/v1/join-tokens          administrator: {"cluster"?, "expires_in_s"?}
 *                                       -> a one-time token, shown once
 *   DELETE /api/v1/join-tokens/{id}     administrator
 *   POST   /api/v1/hosts                public, authenticated by the one-time join
 *                                       token in the body: the host joins and gets
 *                                       its agent certificate (hosts.h)
 *   DELETE /api/v1/hosts/{id}           administrator: forget a host (409 while it has
 *                                       VMs); its certificate is revoked
 *   GET    /api/v1/ca/crl               viewer: the CRL (PEM) for the agents' --tls-crl
 *
 * Neighbours: api.c (dispatch, helpers), hosts.c (join), inventory.c. */
#define LOG_MODULE "api"
#include "manager/api.h"

#include <string.h>

#include "manager/ca.h"
#include "manager/hosts.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

static int h_join_token_list(struct api_call *c, struct http_response *resp,
                             struct error **errp)
{
    struct inv_page p;
    if (api_page_parse(c, &inv_join_tokens, NULL, &p, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_list(t, &inv_join_tokens, &p, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int h_join_token_create(struct api_call *c, struct http_response *resp,
                               struct error **errp)
{
    static const char *const keys[] = { "cluster", "expires_in_s", NULL };
    const json_t *body = c->req->body;
    const char *cluster = NULL;
    unsigned long long ttl = HOST_JOIN_TTL_S;
    if (api_query_check(c, NULL, errp) < 0 ||
        (body && (json_check_keys(body, keys, NULL, errp) < 0 ||
                  json_get_string(body, "cluster", NULL, false, &cluster, errp) < 0 ||
                  json_get_uint(body, "expires_in_s", NULL, false, 60, HOST_JOIN_MAX_TTL_S,
                                &ttl, errp) < 0)))
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    char cluster_id[UUID_STRLEN + 1], id[UUID_STRLEN + 1];
    if (cluster && inv_resolve(t, &inv_clusters, cluster, "cluster", cluster_id, errp) < 0)
        return -1;
    AUTOFREE char *tok = host_join_token_create(t, cluster ? cluster_id : NULL,
                                                store_now_ms() + (int64_t) ttl * 1000,
                                                api_actor(c), id, errp);
    if (!tok)
        return -1;
    AUTOJSON json_t *j = inv_get(t, &inv_join_tokens, id, errp);
    if (!j || manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    json_object_set_new(j, "token", json_string(tok));
    return api_reply(resp, 201, steal_pointer(&j));
}

static int h_join_token_delete(struct api_call *c, struct http_response *resp,
                               struct error **errp)
{
    const char *id = c->req->params[0];
    if (api_query_check(c, NULL, errp) < 0)
        return -1;
    if (!uuid_is_valid(id))
        return error_set_field(errp, ERR_INVALID_ARG, "id", "join token id '%s' is not a UUID",
                               id);
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t || inv_delete(t, &inv_join_tokens, id, api_actor(c), errp) < 0 ||
        manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

static int h_host_join(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const json_t *body = api_body(c, errp);
    json_t *reply = NULL;
    if (!body || api_query_check(c, NULL, errp) < 0 || host_enroll(c->m, body, &reply, errp) < 0)
        return -1;
    return api_reply(resp, 201, reply);
}

/* Forgets a host: refused while VMs are recorded on it; its agent
 * certificate is revoked (listed in the CRL) in the same transaction. */
static int h_host_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    char id[UUID_STRLEN + 1];
    if (!t || inv_resolve(t, &inv_hosts, ref, NULL, id, errp) < 0)
        return -1;
    AUTOFREE char *name = NULL, *serial = NULL;
    {
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT name, cert_serial, (SELECT COUNT(*) FROM vms v WHERE v.host_id = hosts.id) "
               "FROM hosts WHERE id = ?", STORE_ARGS(SV_TEXT(id)), errp);
        if (!st || store_step(st, errp) <= 0)
            return -1;
        name = xstrdup(store_col_text(st, 0));
        serial = store_col_is_null(st, 1) ? NULL : xstrdup(store_col_text(st, 1));
        if (store_col_int(st, 2) > 0)
            return error_set(errp, ERR_CONFLICT,
                             "host '%s' still has %lld VM(s): move or delete them first", name,
                             (long long) store_col_int(st, 2));
    }
    if (serial && store_exec(t, "INSERT INTO revoked_certs (serial, host_name, revoked_at) "
                                "VALUES (?, ?, ?) ON CONFLICT (serial) DO NOTHING",
                             STORE_ARGS(SV_TEXT(serial), SV_TEXT(name),
                                        SV_INT(store_now_ms())), errp) < 0)
        return -1;
    if (inv_delete(t, &inv_hosts, id, api_actor(c), errp) < 0 ||
        manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    AUTOERROR struct error *cerr = NULL;
    if (serial && host_crl_write(c->m, &cerr) < 0)
        LOG_WARN("host '%s' deleted, but the CRL could not be written: %s", name,
                 cerr->message);
    resp->status = 204;
    return 0;
}

/* The CRL of the agent certificates of deleted hosts (PEM), for the agents'
 * --tls-crl.  Made afresh on every call (valid 30 days). */
static int h_ca_crl(struct api_call *c, struct http_response *resp, struct error **errp)
{
    if (api_query_check(c, NULL, errp) < 0)
        return -1;
    char *crl = host_crl_make(c->m, errp);
    if (!crl)
        return -1;
    resp->status = 200;
    resp->content_type = "application/x-pem-file";
    resp->raw_len = strlen(crl);
    resp->raw = crl;
    return 0;
}

const struct api_route api_host_routes[] = {
    { "GET", "/api/v1/join-tokens", API_ADMIN, h_join_token_list },
    { "POST", "/api/v1/join-tokens", API_ADMIN, h_join_token_create },
    { "DELETE", "/api/v1/join-tokens/{id}", API_ADMIN, h_join_token_delete },
    { "POST", "/api/v1/hosts", API_PUBLIC, h_host_join },
    { "DELETE", "/api/v1/hosts/{id}", API_ADMIN, h_host_delete },
    { "GET", "/api/v1/ca/crl", API_VIEWER, h_ca_crl },
    { NULL, NULL, API_DENY, NULL },
};
