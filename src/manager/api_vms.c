/* api_vms.c - REST routes for VMs, templates and snapshots.
 *
 *   GET    /api/v1/vms, /api/v1/vms/{id}                      viewer
 *   POST   /api/v1/vms                                        operator: create / deploy (task)
 *   DELETE /api/v1/vms/{id}                                   operator: delete (task)
 *   POST   /api/v1/vms/{id}/{start,shutdown,destroy,reboot,
 *          suspend,resume,save,restore}                       operator (task)
 *   POST   /api/v1/vms/{id}/vcpus, .../memory                 operator (task)
 *   POST   /api/v1/vms/{id}/disks, DELETE .../disks/{disk}    operator (task)
 *   POST   /api/v1/vms/{id}/nics, DELETE .../nics/{nic}       operator (task)
 *   POST   /api/v1/vms/{id}/cdroms/{cd}/media                 operator (task)
 *   GET    /api/v1/vms/{id}/console                           viewer: serial console bytes
 *   GET    /api/v1/vms/{id}/snapshots                         viewer
 *   POST   /api/v1/vms/{id}/snapshots, .../{snap}/revert,
 *          DELETE .../snapshots/{snap}                        operator (task)
 *   POST   /api/v1/vms/{id}/clone, .../template               operator (task)
 *   GET    /api/v1/templates, /api/v1/templates/{id}          viewer
 *   DELETE /api/v1/templates/{id}, POST .../vm                operator (task)
 *
 * A route that starts a task checks what it can without the agent (names,
 * references, states recorded), records what must be reserved (the VM row,
 * volume names, MAC addresses) in one transaction, then submits the task
 * and answers 202 {"task": ...} (plus "vm" for a new VM).  A refused call
 * changes nothing.
 *
 * Neighbours: api.c (dispatch, helpers), vms.c (specs, task kinds),
 * inventory.c (kinds), agent_client.h (console, snapshot list). */
#define LOG_MODULE "api"
#include <string.h>

#include "manager/agent_client.h"
#include "manager/api.h"
#include "manager/vms.h"
#include "model/vm_def.h"
#include "storage/datastore.h"
#include "util/json_util.h"
#include "util/mem.h"

static int h_vm_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return api_list(c, resp, &inv_vms, errp);
}

static int h_vm_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return api_get(c, resp, &inv_vms, errp);
}

static int h_template_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return api_list(c, resp, &inv_templates, errp);
}

static int h_template_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return api_get(c, resp, &inv_templates, errp);
}

/* ---- helpers ------------------------------------------------------------ */

/* The body, or an empty object when the request has none. */
static const json_t *body_or_empty(const struct api_call *c)
{
    static json_t *empty;
    if (c->req->body)
        return c->req->body;
    if (!empty)
        empty = json_object();      /* never freed: one per process */
    return empty;
}

/* Submits task 'kind' on object 'otype'/'oid' and answers 202 with it
 * (and 'vm_id''s record when given). */
static int submit(struct api_call *c, struct http_response *resp, const char *kind,
                  const char *otype, const char *oid, const json_t *params, const char *vm_id,
                  struct error **errp)
{
    char tid[UUID_STRLEN + 1];
    if (task_engine_submit(c->m->tasks, kind, otype, oid, api_actor(c), params, tid, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    if (!t)
        return -1;
    json_t *task = inv_get(t, &inv_tasks, tid, errp);
    if (!task)
        return -1;
    json_t *out = json_pack("{s:o}", "task", task);
    if (vm_id) {
        AUTOERROR struct error *e = NULL;
        json_t *vm = inv_get(t, &inv_vms, vm_id, &e);
        if (vm)
            json_object_set_new(out, "vm", vm);
    }
    return api_reply(resp, 202, out);
}

/* Resolves path parameter 0 to a VM id and reads its name and state. */
static int vm_ref(struct api_call *c, char id[UUID_STRLEN + 1], char **name, char **state,
                  struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    if (!t || inv_resolve(t, &inv_vms, ref, NULL, id, errp) < 0)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(t, "SELECT name, state FROM vms WHERE id = ?",
                                                 STORE_ARGS(SV_TEXT(id)), errp);
    if (!st || store_step(st, errp) <= 0)
        return -1;
    if (name)
        *name = xstrdup(store_col_text(st, 0));
    if (state)
        *state = xstrdup(store_col_text(st, 1));
    return 0;
}

static bool state_in(const char *state, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(state, *set))
            return true;
    return false;
}

/* ---- create, delete ----------------------------------------------------- */

static int h_vm_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const json_t *body = api_body(c, errp);
    if (!body || api_query_check(c, NULL, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (!t || vm_prepare_create(t, body, api_actor(c), id, errp) < 0 ||
            manager_commit(c->m, steal_pointer(&t), errp) < 0)
            return -1;
    }
    AUTOJSON json_t *params = json_pack("{s:b}", "start",
                                        json_is_true(json_object_get(body, "start")));
    if (submit(c, resp, "vm.create", "vm", id, params, id, errp) < 0) {
        AUTOERROR struct error *e = NULL;
        vms_startup_sweep(c->m, &e);    /* the row has no task: remove it */
        return -1;
    }
    return 0;
}

static int h_vm_clone(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    const json_t *body = ref ? api_body(c, errp) : NULL;
    if (!body || api_query_check(c, NULL, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (!t || vm_prepare_clone(t, ref, body, api_actor(c), id, errp) < 0 ||
            manager_commit(c->m, steal_pointer(&t), errp) < 0)
            return -1;
    }
    AUTOJSON json_t *params = json_pack("{s:b}", "start",
                                        json_is_true(json_object_get(body, "start")));
    if (submit(c, resp, "vm.create", "vm", id, params, id, errp) < 0) {
        AUTOERROR struct error *e = NULL;
        vms_startup_sweep(c->m, &e);
        return -1;
    }
    return 0;
}

static int h_vm_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const allowed[] = { "keep_disks", NULL };
    if (api_query_check(c, allowed, errp) < 0)
        return -1;
    const char *keep = http_request_query(c->req, "keep_disks");
    if (keep && strcmp(keep, "true") && strcmp(keep, "false"))
        return error_set_field(errp, ERR_INVALID_ARG, "keep_disks",
                               "keep_disks must be true or false");
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL, *state = NULL;
    if (vm_ref(c, id, &name, &state, errp) < 0)
        return -1;
    static const char *const deletable[] = { "stopped", "crashed", "missing", NULL };
    if (!state_in(state, deletable))
        return error_set(errp, ERR_BAD_STATE, "VM '%s' is %s: stop it before deleting it", name,
                         state);
    AUTOJSON json_t *params = json_pack("{s:b}", "keep_disks", keep && !strcmp(keep, "true"));
    return submit(c, resp, "vm.delete", "vm", id, params, NULL, errp);
}

/* ---- operations --------------------------------------------------------- */

static int power(struct api_call *c, struct http_response *resp, const char *kind,
                 const char *const *keys, struct error **errp)
{
    const json_t *body = body_or_empty(c);
    static const char *const none[] = { NULL };
    if (api_query_check(c, NULL, errp) < 0 || json_check_keys(body, keys ? keys : none, "", errp) < 0)
        return -1;
    if (json_object_get(body, "timeout_s")) {
        unsigned long long tmo;
        if (json_get_uint(body, "timeout_s", "", false, 1, 3600, &tmo, errp) < 0)
            return -1;
    }
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL, *state = NULL;
    if (vm_ref(c, id, &name, &state, errp) < 0)
        return -1;
    if (!strcmp(state, "creating") || !strcmp(state, "missing"))
        return error_set(errp, ERR_BAD_STATE, "VM '%s' is %s", name, state);
    AUTOJSON json_t *params = json_pack("{s:O}", "body", (json_t *) body);
    return submit(c, resp, kind, "vm", id, params, NULL, errp);
}

static const char *const shutdown_keys[] = { "timeout_s", "mode", "force", NULL };
static const char *const reboot_keys[] = { "mode", NULL };

#define POWER_ROUTE(fn, kind, keys)                                                       \
    static int fn(struct api_call *c, struct http_response *resp, struct error **errp)  \
    {                                                                                    \
        return power(c, resp, kind, keys, errp);                                         \
    }
POWER_ROUTE(h_vm_start, "vm.start", NULL)
POWER_ROUTE(h_vm_shutdown, "vm.shutdown", shutdown_keys)
POWER_ROUTE(h_vm_destroy, "vm.destroy", NULL)
POWER_ROUTE(h_vm_reboot, "vm.reboot", reboot_keys)
POWER_ROUTE(h_vm_suspend, "vm.suspend", NULL)
POWER_ROUTE(h_vm_resume, "vm.resume", NULL)
POWER_ROUTE(h_vm_save, "vm.save", NULL)
POWER_ROUTE(h_vm_restore, "vm.restore", NULL)

static int set_number(struct api_call *c, struct http_response *resp, const char *kind,
                      const char *key, unsigned long long min, unsigned long long max,
                      struct error **errp)
{
    const json_t *body = api_body(c, errp);
    const char *const keys[] = { key, NULL };
    unsigned long long v = 0;
    if (!body || api_query_check(c, NULL, errp) < 0 || json_check_keys(body, keys, "", errp) < 0 ||
        json_get_uint(body, key, "", true, min, max, &v, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    if (vm_ref(c, id, NULL, NULL, errp) < 0)
        return -1;
    AUTOJSON json_t *params = json_pack("{s:I}", key, (json_int_t) v);
    return submit(c, resp, kind, "vm", id, params, NULL, errp);
}

static int h_vm_vcpus(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return set_number(c, resp, "vm.set-vcpus", "count", 1, 255, errp);
}

static int h_vm_memory(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return set_number(c, resp, "vm.set-memory", "mib", 16, 4194304, errp);
}

typedef int prepare_fn(struct store_txn *t, const char *vm_id, const json_t *body,
                       json_t **out, struct error **errp);

/* POST /api/v1/vms/{id}/disks and /nics: the device normalised and its
 * volume name or MAC address reserved in one transaction, then the task
 * with params {param: device}. */
static int attach(struct api_call *c, struct http_response *resp, prepare_fn *prepare,
                  const char *param, const char *kind, struct error **errp)
{
    const json_t *body = api_body(c, errp);
    if (!body || api_query_check(c, NULL, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    AUTOJSON json_t *dev = NULL;
    if (vm_ref(c, id, NULL, NULL, errp) < 0)
        return -1;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (!t || prepare(t, id, body, &dev, errp) < 0 ||
            manager_commit(c->m, steal_pointer(&t), errp) < 0)
            return -1;
    }
    AUTOJSON json_t *params = json_pack("{s:O}", param, dev);
    return submit(c, resp, kind, "vm", id, params, NULL, errp);
}

static int h_vm_disk_attach(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return attach(c, resp, vm_prepare_disk, "disk", "vm.attach-disk", errp);
}

/* Path parameter 1 must name an item of the VM's specification array 'what'. */
static int vm_item(struct api_call *c, const char *what, const char *field,
                   char id[UUID_STRLEN + 1], const char **item, struct error **errp)
{
    *item = c->req->params[1];
    if (!*item || vm_device_id_validate(*item, field, errp) < 0)
        return -1;
    if (vm_ref(c, id, NULL, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    AUTOJSON json_t *vm = t ? inv_get(t, &inv_vms, id, errp) : NULL;
    if (!vm)
        return -1;
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(json_object_get(vm, "definition"), what), i, x)
        if (!strcmp(json_string_value(json_object_get(x, "id")) ?: "", *item))
            return 0;
    return error_set_field(errp, ERR_NOT_FOUND, field, "VM has no %s '%s'", field, *item);
}

static int h_vm_disk_detach(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const allowed[] = { "delete_volume", NULL };
    char id[UUID_STRLEN + 1];
    const char *disk;
    if (api_query_check(c, allowed, errp) < 0 || vm_item(c, "disks", "disk", id, &disk, errp) < 0)
        return -1;
    const char *dv = http_request_query(c->req, "delete_volume");
    AUTOJSON json_t *params = json_pack("{s:s, s:b}", "disk_id", disk, "delete_volume",
                                        dv && !strcmp(dv, "true"));
    return submit(c, resp, "vm.detach-disk", "vm", id, params, NULL, errp);
}

static int h_vm_nic_attach(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return attach(c, resp, vm_prepare_nic, "nic", "vm.attach-nic", errp);
}

static int h_vm_nic_detach(struct api_call *c, struct http_response *resp, struct error **errp)
{
    char id[UUID_STRLEN + 1];
    const char *nic;
    if (api_query_check(c, NULL, errp) < 0 || vm_item(c, "nics", "nic", id, &nic, errp) < 0)
        return -1;
    AUTOJSON json_t *params = json_pack("{s:s}", "nic_id", nic);
    return submit(c, resp, "vm.detach-nic", "vm", id, params, NULL, errp);
}

static int h_vm_media(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const json_t *body = api_body(c, errp);
    static const char *const keys[] = { "path", NULL };
    if (!body || api_query_check(c, NULL, errp) < 0 || json_check_keys(body, keys, "", errp) < 0)
        return -1;
    const json_t *path = json_object_get(body, "path");
    if (!path || (!json_is_null(path) && !json_is_string(path)))
        return error_set_field(errp, ERR_INVALID_ARG, "path",
                               "path must be an ISO image path, or null to eject");
    if (json_is_string(path)) {
        const char *p = json_string_value(path);
        if (p[0] != '/' || strstr(p, "..") || strchr(p, ',') || strlen(p) > 4096)
            return error_set_field(errp, ERR_INVALID_ARG, "path",
                                   "path must be absolute, without '..' or ','");
    }
    char id[UUID_STRLEN + 1];
    const char *cd;
    if (vm_item(c, "cdroms", "cdrom", id, &cd, errp) < 0)
        return -1;
    AUTOJSON json_t *params = json_pack("{s:s, s:O}", "cdrom", cd, "path", (json_t *) path);
    return submit(c, resp, "vm.change-media", "vm", id, params, NULL, errp);
}

/* ---- console, snapshots ------------------------------------------------- */

/* Connects to the host of VM 'id'; '*name' gets the VM's name. */
static struct agent_conn *vm_host_conn(struct api_call *c, const char *id, struct error **errp)
{
    AUTOFREE char *host = NULL;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        AUTOSTMT struct store_stmt *st = t ? store_query(
            t, "SELECT host_id FROM vms WHERE id = ?", STORE_ARGS(SV_TEXT(id)), errp) : NULL;
        if (!st || store_step(st, errp) <= 0)
            return NULL;
        if (store_col_is_null(st, 0))
            return error_set(errp, ERR_BAD_STATE, "the VM is on no host yet"), NULL;
        host = xstrdup(store_col_text(st, 0));
    }
    return agent_connect(c->m, host, false, errp);
}

static int h_vm_console(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const allowed[] = { "offset", NULL };
    long long offset = 0;
    if (api_query_check(c, allowed, errp) < 0 ||
        api_query_int(c, "offset", 0, (1LL << 50), &offset, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL;
    if (vm_ref(c, id, &name, NULL, errp) < 0)
        return -1;
    AUTOAGENT struct agent_conn *a = vm_host_conn(c, id, errp);
    if (!a)
        return -1;
    AUTOFREE char *base = agent_path("/v1/vms/%s/console", name);
    AUTOFREE char *path = xasprintf("%s?offset=%lld", base, offset);
    AUTOJSON json_t *r = NULL;
    if (agent_call(a, "GET", path, NULL, NULL, &r, errp) < 0)
        return -1;
    const json_t *text = json_object_get(r, "data");
    if (!json_is_string(text))
        return error_set(errp, ERR_IO, "host '%s' answered no console text", a->host_name);
    return api_reply(resp, 200, json_pack("{s:O, s:O?, s:O?}", "text", text, "next",
                                          json_object_get(r, "next"), "size",
                                          json_object_get(r, "size")));
}

static int h_snap_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    if (api_query_check(c, NULL, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL;
    if (vm_ref(c, id, &name, NULL, errp) < 0)
        return -1;
    AUTOAGENT struct agent_conn *a = vm_host_conn(c, id, errp);
    if (!a)
        return -1;
    AUTOFREE char *path = agent_path("/v1/vms/%s/snapshots", name);
    json_t *r = NULL;
    if (agent_call(a, "GET", path, NULL, NULL, &r, errp) < 0)
        return -1;
    json_t *items = json_object_get(r, "snapshots");
    /* The manager's conventions on the agent's items: an ISO time, and
     * whether each is the current one (the agent names it by name). */
    const char *current = json_string_value(json_object_get(r, "current"));
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        json_t *ms = json_object_get(it, "created_ms");
        if (json_is_integer(ms)) {
            AUTOFREE char *iso = inv_time_format(json_integer_value(ms));
            json_object_set_new(it, "created_at", json_string(iso));
        }
        const char *sname = json_string_value(json_object_get(it, "name"));
        json_object_set_new(it, "current",
                            json_boolean(current && sname && !strcmp(current, sname)));
    }
    if (!items)
        json_object_set_new(r, "items", json_array());
    else
        json_object_set(r, "items", items);
    return api_reply(resp, 200, r);
}

static int h_snap_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const json_t *body = api_body(c, errp);
    static const char *const keys[] = { "name", "kind", "description", NULL };
    const char *name = NULL, *kind = "disk-only", *desc = NULL;
    if (!body || api_query_check(c, NULL, errp) < 0 || json_check_keys(body, keys, "", errp) < 0 ||
        json_get_string(body, "name", "", true, &name, errp) < 0 ||
        json_get_string(body, "kind", "", false, &kind, errp) < 0 ||
        json_get_string(body, "description", "", false, &desc, errp) < 0 ||
        storage_name_validate(name, "snapshot", "name", errp) < 0)
        return -1;
    if (strcmp(kind, "disk-only") && strcmp(kind, "consistent") && strcmp(kind, "memory"))
        return error_set_field(errp, ERR_INVALID_ARG, "kind",
                               "kind '%.20s' must be disk-only, consistent or memory", kind);
    if (desc && strlen(desc) > INV_DESCRIPTION_MAX)
        return error_set_field(errp, ERR_INVALID_ARG, "description", "description is too long");
    char id[UUID_STRLEN + 1];
    if (vm_ref(c, id, NULL, NULL, errp) < 0)
        return -1;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        int64_t n = 0;
        if (!t || store_query_int(t, "SELECT COUNT(*) FROM snapshots WHERE vm_id = ? AND name = ?",
                                  STORE_ARGS(SV_TEXT(id), SV_TEXT(name)), &n, errp) < 0)
            return -1;
        if (n)
            return error_set_field(errp, ERR_CONFLICT, "name", "the VM has a snapshot '%s'", name);
    }
    AUTOJSON json_t *params = json_pack("{s:s, s:s}", "name", name, "kind", kind);
    if (desc)
        json_object_set_new(params, "description", json_string(desc));
    return submit(c, resp, "vm.snapshot-create", "vm", id, params, NULL, errp);
}

static int snap_target(struct api_call *c, char id[UUID_STRLEN + 1], const char **snap,
                       struct error **errp)
{
    *snap = c->req->params[1];
    if (!*snap || storage_name_validate(*snap, "snapshot", "snapshot", errp) < 0)
        return -1;
    return vm_ref(c, id, NULL, NULL, errp);
}

static int h_snap_revert(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const json_t *body = body_or_empty(c);
    static const char *const keys[] = { "start", NULL };
    bool start = false;
    char id[UUID_STRLEN + 1];
    const char *snap;
    if (api_query_check(c, NULL, errp) < 0 || json_check_keys(body, keys, "", errp) < 0 ||
        json_get_bool(body, "start", "", false, &start, errp) < 0 ||
        snap_target(c, id, &snap, errp) < 0)
        return -1;
    AUTOJSON json_t *params = json_pack("{s:s}", "name", snap);
    if (json_object_get(body, "start"))
        json_object_set_new(params, "start", json_boolean(start));
    return submit(c, resp, "vm.snapshot-revert", "vm", id, params, NULL, errp);
}

static int h_snap_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    char id[UUID_STRLEN + 1];
    const char *snap;
    if (api_query_check(c, NULL, errp) < 0 || snap_target(c, id, &snap, errp) < 0)
        return -1;
    AUTOJSON json_t *params = json_pack("{s:s}", "name", snap);
    return submit(c, resp, "vm.snapshot-delete", "vm", id, params, NULL, errp);
}

/* ---- templates ---------------------------------------------------------- */

static int h_vm_to_template(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const json_t *body = body_or_empty(c);
    static const char *const keys[] = { "name", "description", NULL };
    const char *tname = NULL, *desc = NULL;
    if (api_query_check(c, NULL, errp) < 0 || json_check_keys(body, keys, "", errp) < 0 ||
        json_get_string(body, "name", "", false, &tname, errp) < 0 ||
        json_get_string(body, "description", "", false, &desc, errp) < 0 ||
        (tname && inv_name_validate(tname, "name", errp) < 0))
        return -1;
    if (desc && strlen(desc) > INV_DESCRIPTION_MAX)
        return error_set_field(errp, ERR_INVALID_ARG, "description", "description is too long");
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL, *state = NULL;
    if (vm_ref(c, id, &name, &state, errp) < 0)
        return -1;
    if (strcmp(state, "stopped"))
        return error_set(errp, ERR_BAD_STATE, "VM '%s' is %s: only a stopped VM becomes a "
                         "template", name, state);
    if (!tname)
        tname = name;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        int64_t n = 0, s = 0;
        if (!t || store_query_int(t, "SELECT COUNT(*) FROM templates WHERE name = ?",
                                  STORE_ARGS(SV_TEXT(tname)), &n, errp) < 0 ||
            store_query_int(t, "SELECT COUNT(*) FROM snapshots WHERE vm_id = ?",
                            STORE_ARGS(SV_TEXT(id)), &s, errp) < 0)
            return -1;
        if (n)
            return error_set_field(errp, ERR_CONFLICT, "name", "a template named '%s' exists",
                                   tname);
        if (s)
            return error_set(errp, ERR_BAD_STATE, "VM '%s' has snapshots: delete them first",
                             name);
    }
    char tid[UUID_STRLEN + 1];
    uuid_generate(tid);
    AUTOJSON json_t *params = json_pack("{s:s, s:s}", "template_id", tid, "name", tname);
    if (desc)
        json_object_set_new(params, "description", json_string(desc));
    return submit(c, resp, "vm.to-template", "vm", id, params, NULL, errp);
}

static int template_ref(struct api_call *c, char id[UUID_STRLEN + 1], char **name,
                        struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    if (!t || inv_resolve(t, &inv_templates, ref, NULL, id, errp) < 0)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(t, "SELECT name FROM templates WHERE id = ?",
                                                 STORE_ARGS(SV_TEXT(id)), errp);
    if (!st || store_step(st, errp) <= 0)
        return -1;
    *name = xstrdup(store_col_text(st, 0));
    return 0;
}

static int h_template_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL;
    if (api_query_check(c, NULL, errp) < 0 || template_ref(c, id, &name, errp) < 0)
        return -1;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        int64_t n = 0;
        if (!t || store_query_int(t, "SELECT COUNT(*) FROM vms WHERE template_id = ?",
                                  STORE_ARGS(SV_TEXT(id)), &n, errp) < 0)
            return -1;
        if (n)
            return error_set(errp, ERR_CONFLICT, "template '%s' has %lld VM(s) deployed from it",
                             name, (long long) n);
    }
    return submit(c, resp, "template.delete", "template", id, NULL, NULL, errp);
}

static int h_template_to_vm(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const json_t *body = body_or_empty(c);
    static const char *const keys[] = { "name", NULL };
    const char *vname = NULL;
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL;
    if (api_query_check(c, NULL, errp) < 0 || json_check_keys(body, keys, "", errp) < 0 ||
        json_get_string(body, "name", "", false, &vname, errp) < 0 ||
        (vname && (inv_name_validate(vname, "name", errp) < 0 ||
                   vm_name_validate(vname, "name", errp) < 0)) ||
        template_ref(c, id, &name, errp) < 0)
        return -1;
    if (!vname)
        vname = name;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        int64_t n = 0, v = 0;
        if (!t || store_query_int(t, "SELECT COUNT(*) FROM vms WHERE name = ?",
                                  STORE_ARGS(SV_TEXT(vname)), &n, errp) < 0 ||
            store_query_int(t, "SELECT COUNT(*) FROM vms WHERE template_id = ?",
                            STORE_ARGS(SV_TEXT(id)), &v, errp) < 0)
            return -1;
        if (n)
            return error_set_field(errp, ERR_CONFLICT, "name", "a VM named '%s' exists", vname);
        if (v)
            return error_set(errp, ERR_CONFLICT, "template '%s' has VMs deployed from it", name);
    }
    char vid[UUID_STRLEN + 1];
    uuid_generate(vid);
    AUTOJSON json_t *params = json_pack("{s:s, s:s}", "vm_id", vid, "name", vname);
    return submit(c, resp, "template.to-vm", "template", id, params, NULL, errp);
}

const struct api_route api_vm_routes[] = {
    { "GET", "/api/v1/vms", API_VIEWER, h_vm_list },
    { "POST", "/api/v1/vms", API_OPERATOR, h_vm_create },
    { "GET", "/api/v1/vms/{id}", API_VIEWER, h_vm_get },
    { "DELETE", "/api/v1/vms/{id}", API_OPERATOR, h_vm_delete },
    { "POST", "/api/v1/vms/{id}/start", API_OPERATOR, h_vm_start },
    { "POST", "/api/v1/vms/{id}/shutdown", API_OPERATOR, h_vm_shutdown },
    { "POST", "/api/v1/vms/{id}/destroy", API_OPERATOR, h_vm_destroy },
    { "POST", "/api/v1/vms/{id}/reboot", API_OPERATOR, h_vm_reboot },
    { "POST", "/api/v1/vms/{id}/suspend", API_OPERATOR, h_vm_suspend },
    { "POST", "/api/v1/vms/{id}/resume", API_OPERATOR, h_vm_resume },
    { "POST", "/api/v1/vms/{id}/save", API_OPERATOR, h_vm_save },
    { "POST", "/api/v1/vms/{id}/restore", API_OPERATOR, h_vm_restore },
    { "POST", "/api/v1/vms/{id}/vcpus", API_OPERATOR, h_vm_vcpus },
    { "POST", "/api/v1/vms/{id}/memory", API_OPERATOR, h_vm_memory },
    { "POST", "/api/v1/vms/{id}/disks", API_OPERATOR, h_vm_disk_attach },
    { "DELETE", "/api/v1/vms/{id}/disks/{disk}", API_OPERATOR, h_vm_disk_detach },
    { "POST", "/api/v1/vms/{id}/nics", API_OPERATOR, h_vm_nic_attach },
    { "DELETE", "/api/v1/vms/{id}/nics/{nic}", API_OPERATOR, h_vm_nic_detach },
    { "POST", "/api/v1/vms/{id}/cdroms/{cdrom}/media", API_OPERATOR, h_vm_media },
    { "GET", "/api/v1/vms/{id}/console", API_VIEWER, h_vm_console },
    { "GET", "/api/v1/vms/{id}/snapshots", API_VIEWER, h_snap_list },
    { "POST", "/api/v1/vms/{id}/snapshots", API_OPERATOR, h_snap_create },
    { "POST", "/api/v1/vms/{id}/snapshots/{snapshot}/revert", API_OPERATOR, h_snap_revert },
    { "DELETE", "/api/v1/vms/{id}/snapshots/{snapshot}", API_OPERATOR, h_snap_delete },
    { "POST", "/api/v1/vms/{id}/clone", API_OPERATOR, h_vm_clone },
    { "POST", "/api/v1/vms/{id}/template", API_OPERATOR, h_vm_to_template },
    { "GET", "/api/v1/templates", API_VIEWER, h_template_list },
    { "GET", "/api/v1/templates/{id}", API_VIEWER, h_template_get },
    { "DELETE", "/api/v1/templates/{id}", API_OPERATOR, h_template_delete },
    { "POST", "/api/v1/templates/{id}/vm", API_OPERATOR, h_template_to_vm },
    { NULL, NULL, API_DENY, NULL },
};
