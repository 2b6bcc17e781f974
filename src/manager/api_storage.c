/* api_storage.c - REST routes for datastores and volumes.
 *
 *   GET    /api/v1/datastores                       viewer: list (?name ?kind ?host)
 *   POST   /api/v1/datastores                       administrator: registered on every
 *                                                   listed host, all or nothing -> 201
 *   GET    /api/v1/datastores/{id}                  viewer
 *   DELETE /api/v1/datastores/{id}                  administrator -> 204 (409 while
 *                                                   disks, templates or volumes use it)
 *   GET    /api/v1/datastores/{id}/volumes          viewer: the agent's volumes
 *   POST   /api/v1/datastores/{id}/volumes          operator -> 202 {"task"} (create,
 *                                                   linked clone, or full copy "source")
 *   DELETE /api/v1/datastores/{id}/volumes/{vol}    operator -> 202 {"task"} (?secure=true)
 *   POST   .../volumes/{vol}/resize {"capacity"}    operator -> 202 {"task"}
 *   POST   .../volumes/{vol}/wipe                   operator -> 202 {"task"}
 *
 * Neighbours: api.c (dispatch, helpers), resources.c (the work). */
#define LOG_MODULE "api"
#include "manager/api.h"

#include <string.h>

#include "manager/resources.h"
#include "util/json_util.h"
#include "util/mem.h"

static int h_ds_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    struct inv_page p;
    if (api_page_parse(c, &inv_datastores, NULL, &p, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? res_datastore_list(t, &p, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int h_ds_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? res_datastore_get(t, ref, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int h_ds_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const json_t *body = api_body(c, errp);
    char id[UUID_STRLEN + 1];
    if (!body || api_query_check(c, NULL, errp) < 0 ||
        res_datastore_create(c->m, body, api_actor(c), id, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? res_datastore_get(t, id, errp) : NULL;
    return j ? api_reply(resp, 201, j) : -1;
}

static int h_ds_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0 ||
        res_datastore_delete(c->m, ref, api_actor(c), errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

static int h_vol_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    json_t *j = res_volume_list(c->m, ref, errp);
    return j ? api_reply(resp, 200, j) : -1;
}

/* 202 {"task": TASK} for the task just submitted. */
static int task_reply(struct api_call *c, struct http_response *resp, const char *task_id,
                      struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *task = t ? inv_get(t, &inv_tasks, task_id, errp) : NULL;
    if (!task)
        return -1;
    return api_reply(resp, 202, json_pack("{s:o}", "task", task));
}

static int vol_op(struct api_call *c, struct http_response *resp, enum res_volume_op op,
                  struct error **errp)
{
    static const char *const secure_only[] = { "secure", NULL };
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref)
        return -1;
    const char *vol = op == RES_VOL_CREATE ? NULL : c->req->params[1];
    const json_t *body = c->req->body;
    bool secure = false;
    if (op == RES_VOL_CREATE || op == RES_VOL_RESIZE) {
        body = api_body(c, errp);
        if (!body)
            return -1;
    }
    if (api_query_check(c, op == RES_VOL_DELETE ? secure_only : NULL, errp) < 0)
        return -1;
    if (op == RES_VOL_DELETE) {
        const char *s = http_request_query(c->req, "secure");
        if (s && strcmp(s, "true") && strcmp(s, "false"))
            return error_set_field(errp, ERR_INVALID_ARG, "secure",
                                   "secure must be true or false");
        secure = s && !strcmp(s, "true");
    }
    char task_id[UUID_STRLEN + 1];
    if (res_volume_submit(c->m, op, ref, vol, body, secure, api_actor(c), task_id, errp) < 0)
        return -1;
    return task_reply(c, resp, task_id, errp);
}

static int h_vol_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return vol_op(c, resp, RES_VOL_CREATE, errp);
}

static int h_vol_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return vol_op(c, resp, RES_VOL_DELETE, errp);
}

static int h_vol_resize(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return vol_op(c, resp, RES_VOL_RESIZE, errp);
}

static int h_vol_wipe(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return vol_op(c, resp, RES_VOL_WIPE, errp);
}

const struct api_route api_storage_routes[] = {
    { "GET", "/api/v1/datastores", API_VIEWER, h_ds_list },
    { "POST", "/api/v1/datastores", API_ADMIN, h_ds_create },
    { "GET", "/api/v1/datastores/{id}", API_VIEWER, h_ds_get },
    { "DELETE", "/api/v1/datastores/{id}", API_ADMIN, h_ds_delete },
    { "GET", "/api/v1/datastores/{id}/volumes", API_VIEWER, h_vol_list },
    { "POST", "/api/v1/datastores/{id}/volumes", API_OPERATOR, h_vol_create },
    { "DELETE", "/api/v1/datastores/{id}/volumes/{volume}", API_OPERATOR, h_vol_delete },
    { "POST", "/api/v1/datastores/{id}/volumes/{volume}/resize", API_OPERATOR, h_vol_resize },
    { "POST", "/api/v1/datastores/{id}/volumes/{volume}/wipe", API_OPERATOR, h_vol_wipe },
    { NULL, NULL, API_DENY, NULL },
};
