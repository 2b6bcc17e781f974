/* api_vms.c - REST routes for VMs, templates and snapshots.
 *
 *   GET /api/v1/vms, /api/v1/vms/{id}                 viewer
 *   GET /api/v1/templates, /api/v1/templates/{id}     viewer
 *
 * Neighbours: api.c (dispatch, helpers), vms.c (specs, tasks),
 * inventory.c (kinds). */
#define LOG_MODULE "api"
#include "manager/api.h"
#include "manager/vms.h"
#include "util/json_util.h"
#include "util/mem.h"

static int list(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
                struct error **errp)
{
    struct inv_page p;
    if (api_page_parse(c, k, NULL, &p, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_list(t, k, &p, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int get(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
               struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_get(t, k, ref, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int h_vm_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return list(c, resp, &inv_vms, errp);
}

static int h_vm_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return get(c, resp, &inv_vms, errp);
}

static int h_template_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return list(c, resp, &inv_templates, errp);
}

static int h_template_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return get(c, resp, &inv_templates, errp);
}

const struct api_route api_vm_routes[] = {
    { "GET", "/api/v1/vms", API_VIEWER, h_vm_list },
    { "GET", "/api/v1/vms/{id}", API_VIEWER, h_vm_get },
    { "GET", "/api/v1/templates", API_VIEWER, h_template_list },
    { "GET", "/api/v1/templates/{id}", API_VIEWER, h_template_get },
    { NULL, NULL, API_DENY, NULL },
};
