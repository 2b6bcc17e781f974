/* api_inventory.c - REST routes for sites, clusters and hosts.
 *
 *   GET    /api/v1/sites, /api/v1/clusters, /api/v1/hosts       viewer: lists
 *   GET    /api/v1/{sites,clusters,hosts}/{id}                  viewer: one, by id or name
 *   POST   /api/v1/sites, /api/v1/clusters                      administrator
 *   PATCH  /api/v1/sites/{id}, /api/v1/clusters/{id}            administrator
 *   DELETE /api/v1/sites/{id}, /api/v1/clusters/{id}            administrator
 *   POST   /api/v1/hosts/{id}/maintenance                       operator: enter
 *   DELETE /api/v1/hosts/{id}/maintenance                       operator: leave
 *
 * Hosts are added by joining (a later route, with the one-time token).
 * Every write runs in one transaction with its event and answers the object
 * as it now is; a refused write changes nothing.
 *
 * Neighbours: api.c (dispatch, helpers), inventory.c (validation and SQL). */
#define LOG_MODULE "api"
#include "manager/api.h"
#include "util/json_util.h"
#include "util/mem.h"

typedef int create_fn(struct store_txn *t, const json_t *spec, const char *actor,
                      char id_out[UUID_STRLEN + 1], struct error **errp);
typedef int update_fn(struct store_txn *t, const char *ref, const json_t *spec,
                      const char *actor, struct error **errp);

static int create(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
                  create_fn *fn, struct error **errp)
{
    const json_t *body = api_body(c, errp);
    if (!body || api_query_check(c, NULL, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t || fn(t, body, api_actor(c), id, errp) < 0)
        return -1;
    AUTOJSON json_t *j = inv_get(t, k, id, errp);
    if (!j || manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    return api_reply(resp, 201, steal_pointer(&j));
}

static int update(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
                  update_fn *fn, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    const json_t *body = ref ? api_body(c, errp) : NULL;
    if (!body || api_query_check(c, NULL, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t || inv_resolve(t, k, ref, NULL, id, errp) < 0 ||
        fn(t, id, body, api_actor(c), errp) < 0)
        return -1;
    AUTOJSON json_t *j = inv_get(t, k, id, errp);
    if (!j || manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    return api_reply(resp, 200, steal_pointer(&j));
}

static int delete(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
                  struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t || inv_delete(t, k, ref, api_actor(c), errp) < 0 ||
        manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

#define KIND_HANDLERS(kind, K)                                                          \
    static int h_##kind##_list(struct api_call *c, struct http_response *resp,          \
                               struct error **errp)                                      \
    {                                                                                    \
        return api_list(c, resp, &K, errp);                                              \
    }                                                                                    \
    static int h_##kind##_get(struct api_call *c, struct http_response *resp,           \
                              struct error **errp)                                       \
    {                                                                                    \
        return api_get(c, resp, &K, errp);                                               \
    }

#define KIND_WRITERS(kind, K)                                                           \
    static int h_##kind##_create(struct api_call *c, struct http_response *resp,        \
                                 struct error **errp)                                    \
    {                                                                                    \
        return create(c, resp, &K, inv_##kind##_create, errp);                           \
    }                                                                                    \
    static int h_##kind##_update(struct api_call *c, struct http_response *resp,        \
                                 struct error **errp)                                    \
    {                                                                                    \
        return update(c, resp, &K, inv_##kind##_update, errp);                           \
    }                                                                                    \
    static int h_##kind##_delete(struct api_call *c, struct http_response *resp,        \
                                 struct error **errp)                                    \
    {                                                                                    \
        return delete(c, resp, &K, errp);                                                \
    }

KIND_HANDLERS(site, inv_sites)
KIND_WRITERS(site, inv_sites)
KIND_HANDLERS(cluster, inv_clusters)
KIND_WRITERS(cluster, inv_clusters)
KIND_HANDLERS(host, inv_hosts)

static int maintenance(struct api_call *c, struct http_response *resp, bool on,
                       struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    if (c->req->body && json_object_size(c->req->body) > 0)
        return error_set(errp, ERR_INVALID_ARG, "this request takes no body fields");
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t || inv_host_set_maintenance(t, ref, on, api_actor(c), errp) < 0)
        return -1;
    AUTOJSON json_t *j = inv_get(t, &inv_hosts, ref, errp);
    if (!j || manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    return api_reply(resp, 200, steal_pointer(&j));
}

static int h_host_maintenance_enter(struct api_call *c, struct http_response *resp,
                                    struct error **errp)
{
    return maintenance(c, resp, true, errp);
}

static int h_host_maintenance_leave(struct api_call *c, struct http_response *resp,
                                    struct error **errp)
{
    return maintenance(c, resp, false, errp);
}

const struct api_route api_inventory_routes[] = {
    { "GET", "/api/v1/sites", API_VIEWER, h_site_list },
    { "POST", "/api/v1/sites", API_ADMIN, h_site_create },
    { "GET", "/api/v1/sites/{id}", API_VIEWER, h_site_get },
    { "PATCH", "/api/v1/sites/{id}", API_ADMIN, h_site_update },
    { "DELETE", "/api/v1/sites/{id}", API_ADMIN, h_site_delete },
    { "GET", "/api/v1/clusters", API_VIEWER, h_cluster_list },
    { "POST", "/api/v1/clusters", API_ADMIN, h_cluster_create },
    { "GET", "/api/v1/clusters/{id}", API_VIEWER, h_cluster_get },
    { "PATCH", "/api/v1/clusters/{id}", API_ADMIN, h_cluster_update },
    { "DELETE", "/api/v1/clusters/{id}", API_ADMIN, h_cluster_delete },
    { "GET", "/api/v1/hosts", API_VIEWER, h_host_list },
    { "GET", "/api/v1/hosts/{id}", API_VIEWER, h_host_get },
    { "POST", "/api/v1/hosts/{id}/maintenance", API_OPERATOR, h_host_maintenance_enter },
    { "DELETE", "/api/v1/hosts/{id}/maintenance", API_OPERATOR, h_host_maintenance_leave },
    { NULL, NULL, API_DENY, NULL },
};
