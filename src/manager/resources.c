/* resources.c - see resources.h: the kinds of datastores, NAT networks,
 * DVSs and port groups; pushing a change to several agents all or nothing;
 * datastores; the volume tasks; the host monitor's re-push of a host's
 * share (desired/applied generations) and datastore usage.
 *
 * What is stored to be pushed again:
 *   datastores.config         {"path", "overcommit_ratio"?, "heartbeat_interval_s"?}
 *   nat_networks.config       the agent body of PUT /v1/net/nat/{name} without "name"
 *   dvs.config                the agent body of PUT /v1/net/dvs/{name} without
 *                             "name" and "uplink"; host_dvs.uplink per host ({}: none)
 *   portgroups.config         the agent body of PUT .../portgroups/{pg} without "name"
 *
 * Neighbours: api_storage.c, api_net.c (routes), agent_client.h, hosts.c
 * (monitor), storage/datastore.h and storage/volume.h (the agent's own
 * validation, reused so bad input is refused before any host is called). */
#define LOG_MODULE "resources"
#include "manager/resources.h"

#include <string.h>

#include "manager/agent_client.h"
#include "manager/events.h"
#include "manager/manager.h"
#include "storage/datastore.h"
#include "storage/volume.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

/* ---- kinds -------------------------------------------------------------- */

static const struct inv_field datastore_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "kind", "kind", INV_TEXT },
    { "state", "state", INV_TEXT },
    { "capacity_bytes", "capacity_bytes", INV_INT },
    { "free_bytes", "free_bytes", INV_INT },
    { "provisioned_bytes", "provisioned_bytes", INV_INT },
    { "config", "config", INV_JSON },
    { "(SELECT COUNT(*) FROM disks d WHERE d.datastore_id = datastores.id)", "disk_count",
      INV_INT },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter datastore_filters[] = {
    { "name", "name = ?", 1 },
    { "kind", "kind = ?", 1 },
    { "host", "id IN (SELECT hd.datastore_id FROM host_datastores hd JOIN hosts h "
              "ON h.id = hd.host_id WHERE h.id = ? OR h.name = ?)", 2 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_datastores = {
    "datastore", "datastores", datastore_fields, datastore_filters, "name", true,
};

static const struct inv_field nat_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "subnet", "subnet", INV_TEXT },
    { "config", "config", INV_JSON },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter nat_filters[] = {
    { "name", "name = ?", 1 },
    { "host", "id IN (SELECT hn.nat_id FROM host_nat_networks hn JOIN hosts h "
              "ON h.id = hn.host_id WHERE h.id = ? OR h.name = ?)", 2 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_nat_networks = {
    "nat-network", "nat_networks", nat_fields, nat_filters, "name", true,
};

static const struct inv_field dvs_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "mtu", "mtu", INV_INT },
    { "config", "config", INV_JSON },
    { "(SELECT COUNT(*) FROM portgroups p WHERE p.dvs_id = dvs.id)", "portgroup_count",
      INV_INT },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter dvs_filters[] = {
    { "name", "name = ?", 1 },
    { "host", "id IN (SELECT hd.dvs_id FROM host_dvs hd JOIN hosts h "
              "ON h.id = hd.host_id WHERE h.id = ? OR h.name = ?)", 2 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_dvs = {
    "dvs", "dvs", dvs_fields, dvs_filters, "name", true,
};

static const struct inv_field portgroup_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "dvs_id", "dvs_id", INV_TEXT },
    { "(SELECT d.name FROM dvs d WHERE d.id = portgroups.dvs_id)", "dvs_name", INV_TEXT },
    { "vlan_mode", "vlan_mode", INV_TEXT },
    { "vlan_id", "vlan", INV_INT },
    { "trunk", "trunk", INV_TEXT },
    { "config", "config", INV_JSON },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter portgroup_filters[] = {
    { "dvs", "dvs_id = ?", 1 },         /* index 0: set from the path */
    { "name", "name = ?", 1 },
    { NULL, NULL, 0 },
};
/* Not by name: port group names are unique per DVS only. */
const struct inv_kind inv_portgroups = {
    "portgroup", "portgroups", portgroup_fields, portgroup_filters, "name", false,
};

/* ---- pushing ------------------------------------------------------------ */

void res_push_clear(struct res_push *p)
{
    free(p->method);
    free(p->path);
    json_decref(p->body);
    free(p->undo_method);
    free(p->undo_path);
    json_decref(p->undo_body);
    free(p->conflict_get);
    free(p->conflict_path);
    free(p->get_path);
    json_decref(p->reply);
    memset(p, 0, sizeof *p);
}

/* The agent's object at 'path': 1 and '*out' when there, 0 when not (404). */
static int agent_get_opt(struct agent_conn *a, const char *path, json_t **out,
                         struct error **errp)
{
    long status = 0;
    AUTOERROR struct error *err = NULL;
    if (agent_call(a, "GET", path, NULL, &status, out, &err) == 0)
        return 1;
    if (status == 404)
        return 0;
    error_propagate(errp, steal_pointer(&err));
    return -1;
}

static int push_one(struct manager *m, struct res_push *p, struct error **errp)
{
    AUTOAGENT struct agent_conn *a = agent_connect(m, p->host_id, false, errp);
    if (!a)
        return -1;
    if (p->get_path) {
        AUTOJSON json_t *old = NULL;
        int r = agent_get_opt(a, p->get_path, &old, errp);
        if (r < 0)
            return -1;
        free(p->undo_method);
        free(p->undo_path);
        json_decref(p->undo_body);
        p->undo_path = xstrdup(p->get_path);
        if (r) {
            json_object_del(old, "portgroups");     /* a DVS: its groups have their routes */
            p->undo_method = xstrdup("PUT");
            p->undo_body = steal_pointer(&old);
        } else {
            p->undo_method = xstrdup("DELETE");
            p->undo_body = NULL;
        }
    }
    long status = 0;
    AUTOERROR struct error *err = NULL;
    json_t *reply = NULL;
    if (agent_call(a, p->method, p->path, p->body, &status, &reply, &err) == 0) {
        p->done = true;
        p->reply = reply;
        return 0;
    }
    if (status == 404 && p->ok_if_missing)
        return 0;
    if (status == 409 && p->ok_if_conflict) {
        if (!p->conflict_get)
            return 0;
        /* Already there: the same object, or something else by that name? */
        AUTOJSON json_t *cur = NULL;
        AUTOERROR struct error *gerr = NULL;
        if (agent_get_opt(a, p->conflict_get, &cur, &gerr) == 1) {
            const char *path = json_string_value(json_object_get(cur, "path"));
            if (path && p->conflict_path && !strcmp(path, p->conflict_path)) {
                p->reply = json_incref(cur);
                return 0;
            }
        }
    }
    error_propagate(errp, steal_pointer(&err));
    return -1;
}

/* Undoes the pushes done in v[0..n), newest first (best effort). */
static void push_undo(struct manager *m, struct res_push *v, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        struct res_push *p = &v[i];
        if (!p->done || !p->undo_method)
            continue;
        AUTOERROR struct error *err = NULL;
        AUTOAGENT struct agent_conn *a = agent_connect(m, p->host_id, true, &err);
        long status = 0;
        if (!a || (agent_call(a, p->undo_method, p->undo_path, p->undo_body, &status, NULL,
                              &err) < 0 && status != 404))
            LOG_WARN("undoing %s %s: %s", p->method, p->path, err ? err->message : "?");
        p->done = false;
    }
}

int res_push_all(struct manager *m, struct res_push *v, size_t n, struct error **errp)
{
    for (size_t i = 0; i < n; i++)
        if (push_one(m, &v[i], errp) < 0) {
            push_undo(m, v, i);
            return -1;
        }
    return 0;
}

void res_push_undo_all(struct manager *m, struct res_push *v, size_t n)
{
    push_undo(m, v, n);
}

void res_pushes_free(struct res_push *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        res_push_clear(&v[i]);
    free(v);
}

int res_bump_generation(struct store_txn *t, char (*host_ids)[UUID_STRLEN + 1], size_t n,
                        struct error **errp)
{
    for (size_t i = 0; i < n; i++)
        if (store_exec(t, "UPDATE hosts SET desired_generation = desired_generation + 1, "
                          "updated_at = ? WHERE id = ?",
                       STORE_ARGS(SV_INT(store_now_ms()), SV_TEXT(host_ids[i])), errp) < 0)
            return -1;
    return 0;
}

int res_hosts_resolve(struct store_txn *t, const json_t *refs, const char *field,
                      bool objects, char (*ids)[UUID_STRLEN + 1], size_t max,
                      struct error **errp)
{
    if (!json_is_array(refs) || json_array_size(refs) == 0)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "'%s' must be a non-empty array of host ids or names", field);
    if (json_array_size(refs) > max)
        return error_set_field(errp, ERR_INVALID_ARG, field, "at most %zu hosts", max);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(refs); i++) {
        AUTOFREE char *f = json_path_index(field, i);
        const json_t *e = json_array_get(refs, i);
        const char *ref = json_string_value(e);
        if (!ref && objects && json_is_object(e))
            ref = json_string_value(json_object_get(e, "host"));
        if (!ref)
            return error_set_field(errp, ERR_INVALID_ARG, f, "'%s' must be a host id or name",
                                   f);
        if (!uuid_is_valid(ref) && inv_name_validate(ref, f, errp) < 0)
            return -1;
        if (inv_resolve(t, &inv_hosts, ref, f, ids[n], errp) < 0)
            return -1;
        for (size_t k = 0; k < n; k++)
            if (!strcmp(ids[k], ids[n]))
                return error_set_field(errp, ERR_INVALID_ARG, f, "host '%s' is listed twice",
                                       ref);
        n++;
    }
    return (int) n;
}

/* ---- host links shown with an object ------------------------------------ */

/* Adds "hosts": [{host_id, host_name, <extra>}] to 'obj' from 'sql' (one
 * '?' = the object's id; columns host_id, host_name[, extra]). */
static int add_hosts(struct store_txn *t, json_t *obj, const char *sql, const char *extra_key,
                     bool extra_json, struct error **errp)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    AUTOSTMT struct store_stmt *st = store_query(t, sql, STORE_ARGS(SV_TEXT(id)), errp);
    if (!st)
        return -1;
    json_t *arr = json_array();
    int r;
    while ((r = store_step(st, errp)) > 0) {
        json_t *h = json_pack("{s:s, s:s}", "host_id", store_col_text(st, 0), "host_name",
                              store_col_text(st, 1));
        if (extra_key) {
            const char *v = store_col_text(st, 2);
            json_t *jv = NULL;
            if (v && extra_json)
                jv = json_loads(v, 0, NULL);
            json_object_set_new(h, extra_key, jv ? jv : v ? json_string(v) : json_null());
        }
        json_array_append_new(arr, h);
    }
    json_object_set_new(obj, "hosts", arr);
    return r < 0 ? -1 : 0;
}

#define DS_HOSTS_SQL                                                                    \
    "SELECT h.id, h.name, hd.path FROM host_datastores hd JOIN hosts h ON h.id = hd.host_id " \
    "WHERE hd.datastore_id = ? ORDER BY h.name"

static int ds_decorate(struct store_txn *t, json_t *ds, struct error **errp)
{
    json_t *cfg = json_object_get(ds, "config");
    json_t *path = json_object_get(cfg, "path");
    json_object_set(ds, "path", path ? path : json_null());
    json_t *r = json_object_get(cfg, "overcommit_ratio");
    if (r)
        json_object_set(ds, "overcommit_ratio", r);
    return add_hosts(t, ds, DS_HOSTS_SQL, "path", false, errp);
}

json_t *res_datastore_get(struct store_txn *t, const char *ref, struct error **errp)
{
    AUTOJSON json_t *j = inv_get(t, &inv_datastores, ref, errp);
    if (!j || ds_decorate(t, j, errp) < 0)
        return NULL;
    return steal_pointer(&j);
}

json_t *res_datastore_list(struct store_txn *t, const struct inv_page *p, struct error **errp)
{
    AUTOJSON json_t *j = inv_list(t, &inv_datastores, p, errp);
    if (!j)
        return NULL;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(j, "items"), i, it)
        if (ds_decorate(t, it, errp) < 0)
            return NULL;
    return steal_pointer(&j);
}

/* ---- datastores --------------------------------------------------------- */

static json_int_t jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

int res_datastore_create(struct manager *m, const json_t *spec, const char *actor,
                         char id_out[UUID_STRLEN + 1], struct error **errp)
{
    static const char *const keys[] = { "name", "type", "path", "hosts", "overcommit_ratio",
                                        "heartbeat_interval_s", NULL };
    if (json_check_keys(spec, keys, NULL, errp) < 0)
        return -1;
    /* The agent's body, checked as the agent will check it. */
    AUTOJSON json_t *body = json_deep_copy(spec);
    json_object_del(body, "hosts");
    struct datastore *ds = datastore_from_json(body, false, errp);
    if (!ds)
        return -1;
    AUTOFREE char *name = xstrdup(ds->name);
    AUTOFREE char *path = xstrdup(ds->path);
    bool local = ds->type == DATASTORE_LOCAL;
    const char *type = datastore_type_to_string(ds->type);
    datastore_free(ds);
    if (inv_name_validate(name, "name", errp) < 0)
        return -1;
    json_object_set_new(body, "path", json_string(path));
    json_object_set_new(body, "type", json_string(type));

    char (*hosts)[UUID_STRLEN + 1] = xcalloc(RES_MAX_HOSTS, sizeof *hosts);
    AUTOFREE void *hosts_mem = hosts;
    int n;
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
        if (!t)
            return -1;
        int64_t taken = 0;
        if (store_query_int(t, "SELECT COUNT(*) FROM datastores WHERE name = ?",
                            STORE_ARGS(SV_TEXT(name)), &taken, errp) < 0)
            return -1;
        if (taken)
            return error_set_field(errp, ERR_CONFLICT, "name", "datastore '%s' already exists",
                                   name);
        n = res_hosts_resolve(t, json_object_get(spec, "hosts"), "hosts", false, hosts,
                              RES_MAX_HOSTS, errp);
        if (n < 0)
            return -1;
    }
    if (local && n > 1)
        return error_set_field(errp, ERR_INVALID_ARG, "hosts",
                               "a local datastore belongs to one host; use type 'shared' "
                               "for a directory several hosts mount");

    struct res_push *v = xcalloc((size_t) n, sizeof *v);
    for (int i = 0; i < n; i++) {
        struct res_push *p = &v[i];
        memcpy(p->host_id, hosts[i], sizeof p->host_id);
        p->method = xstrdup("POST");
        p->path = xstrdup("/v1/datastores");
        p->body = json_incref(body);
        p->ok_if_conflict = true;
        p->conflict_get = agent_path("/v1/datastores/%s", name);
        p->conflict_path = xstrdup(path);
        p->undo_method = xstrdup("DELETE");
        p->undo_path = agent_path("/v1/datastores/%s", name);
    }
    if (res_push_all(m, v, (size_t) n, errp) < 0) {
        res_pushes_free(v, (size_t) n);
        return error_prefix(errp, "registering datastore '%s'", name), -1;
    }
    json_t *first = v[0].reply;
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    int64_t now = store_now_ms();
    AUTOJSON json_t *cfg = json_pack("{s:s}", "path", path);
    json_t *r = json_object_get(spec, "overcommit_ratio");
    if (r)
        json_object_set(cfg, "overcommit_ratio", r);
    r = json_object_get(spec, "heartbeat_interval_s");
    if (r)
        json_object_set(cfg, "heartbeat_interval_s", r);
    AUTOFREE char *cfg_text = json_to_string(cfg);
    AUTOFREE char *msg = xasprintf("datastore '%s' created on %d host(s)", name, n);
    struct event e = {
        .type = "datastore.created", .object_type = "datastore", .object_id = id,
        .object_name = name, .user_name = actor, .message = msg,
    };
    int ret = -1;
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, errp);
        if (!t ||
            store_exec(t, "INSERT INTO datastores (id, name, kind, state, capacity_bytes, "
                          "free_bytes, provisioned_bytes, config, created_at, updated_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       STORE_ARGS(SV_TEXT(id), SV_TEXT(name), SV_TEXT(type),
                                  SV_TEXT(json_is_false(json_object_get(first, "available"))
                                              ? "unavailable" : "available"),
                                  SV_INT(jint(first, "capacity")), SV_INT(jint(first, "free")),
                                  SV_INT(jint(first, "provisioned")), SV_TEXT(cfg_text),
                                  SV_INT(now), SV_INT(now)), errp) < 0)
            goto out;
        for (int i = 0; i < n; i++)
            if (store_exec(t, "INSERT INTO host_datastores (host_id, datastore_id, path) "
                              "VALUES (?, ?, ?)",
                           STORE_ARGS(SV_TEXT(hosts[i]), SV_TEXT(id), SV_TEXT(path)), errp) < 0)
                goto out;
        if (res_bump_generation(t, hosts, (size_t) n, errp) < 0 || event_append(t, &e, errp) < 0 ||
            manager_commit(m, steal_pointer(&t), errp) < 0)
            goto out;
        ret = 0;
    }
out:
    if (ret < 0)
        res_push_undo_all(m, v, (size_t) n);
    else
        memcpy(id_out, id, sizeof id);
    res_pushes_free(v, (size_t) n);
    return ret;
}

/* The agent body that registers datastore row 'name' again (undo of a delete,
 * re-push); new reference. */
static json_t *ds_agent_body(const char *name, const char *kind, const char *cfg_text)
{
    json_t *cfg = cfg_text ? json_loads(cfg_text, 0, NULL) : NULL;
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        cfg = json_object();
    }
    json_object_set_new(cfg, "name", json_string(name));
    json_object_set_new(cfg, "type", json_string(kind));
    return cfg;
}

int res_datastore_delete(struct manager *m, const char *ref, const char *actor,
                         struct error **errp)
{
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL;
    AUTOJSON json_t *body = NULL;
    char (*hosts)[UUID_STRLEN + 1] = xcalloc(RES_MAX_HOSTS, sizeof *hosts);
    AUTOFREE void *hosts_mem = hosts;
    size_t n = 0;
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
        if (!t || inv_resolve(t, &inv_datastores, ref, NULL, id, errp) < 0)
            return -1;
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT name, kind, config, "
               "(SELECT COUNT(*) FROM disks d WHERE d.datastore_id = datastores.id), "
               "(SELECT COUNT(*) FROM templates p WHERE p.datastore_id = datastores.id) "
               "FROM datastores WHERE id = ?", STORE_ARGS(SV_TEXT(id)), errp);
        if (!st || store_step(st, errp) <= 0)
            return -1;
        name = xstrdup(store_col_text(st, 0));
        body = ds_agent_body(name, store_col_text(st, 1), store_col_text(st, 2));
        if (store_col_int(st, 3) || store_col_int(st, 4))
            return error_set(errp, ERR_CONFLICT,
                             "datastore '%s' is still used by %lld disk(s) and %lld template(s)",
                             name, (long long) store_col_int(st, 3),
                             (long long) store_col_int(st, 4));
        AUTOSTMT struct store_stmt *hs = store_query(
            t, "SELECT host_id FROM host_datastores WHERE datastore_id = ? ORDER BY host_id",
            STORE_ARGS(SV_TEXT(id)), errp);
        if (!hs)
            return -1;
        int r;
        while (n < RES_MAX_HOSTS && (r = store_step(hs, errp)) > 0)
            snprintf(hosts[n++], UUID_STRLEN + 1, "%s", store_col_text(hs, 0));
    }
    struct res_push *v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        struct res_push *p = &v[i];
        memcpy(p->host_id, hosts[i], sizeof p->host_id);
        p->method = xstrdup("DELETE");
        p->path = agent_path("/v1/datastores/%s", name);
        p->ok_if_missing = true;
        p->undo_method = xstrdup("POST");
        p->undo_path = xstrdup("/v1/datastores");
        p->undo_body = json_incref(body);
    }
    if (res_push_all(m, v, n, errp) < 0) {
        res_pushes_free(v, n);
        return error_prefix(errp, "removing datastore '%s'", name), -1;
    }
    int ret = -1;
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, errp);
        if (t && res_bump_generation(t, hosts, n, errp) == 0 &&
            inv_delete(t, &inv_datastores, id, actor, errp) == 0 &&
            manager_commit(m, steal_pointer(&t), errp) == 0)
            ret = 0;
    }
    if (ret < 0)
        res_push_undo_all(m, v, n);
    res_pushes_free(v, n);
    return ret;
}

/* A connected host that has datastore 'ds_id' (and 'ds2_id' when not NULL). */
static int pick_host(struct manager *m, const char *ds_id, const char *ds2_id,
                     char host_out[UUID_STRLEN + 1], struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
    /* Without a second datastore, the first stands in for it. */
    AUTOSTMT struct store_stmt *st = t ? store_query(
        t, "SELECT h.id FROM host_datastores hd JOIN hosts h ON h.id = hd.host_id "
           "WHERE hd.datastore_id = ? AND h.state = 'connected' AND h.id IN "
           "(SELECT x.host_id FROM host_datastores x WHERE x.datastore_id = ?) "
           "ORDER BY h.name LIMIT 1",
        STORE_ARGS(SV_TEXT(ds_id), SV_TEXT(ds2_id ? ds2_id : ds_id)), errp) : NULL;
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r < 0)
        return -1;
    if (r == 0)
        return error_set(errp, ERR_BAD_STATE, "no connected host has %s", ds2_id
                         ? "both datastores" : "this datastore");
    snprintf(host_out, UUID_STRLEN + 1, "%s", store_col_text(st, 0));
    return 0;
}

/* Resolves datastore 'ref' ('field' for the error) to its id and name. */
static int ds_resolve(struct manager *m, const char *ref, const char *field,
                      char id[UUID_STRLEN + 1], char **name, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
    if (!t || inv_resolve(t, &inv_datastores, ref, field, id, errp) < 0)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(t, "SELECT name FROM datastores WHERE id = ?",
                                                 STORE_ARGS(SV_TEXT(id)), errp);
    if (!st || store_step(st, errp) <= 0)
        return -1;
    *name = xstrdup(store_col_text(st, 0));
    return 0;
}

json_t *res_volume_list(struct manager *m, const char *ref, struct error **errp)
{
    char id[UUID_STRLEN + 1], host[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL;
    if (ds_resolve(m, ref, NULL, id, &name, errp) < 0 || pick_host(m, id, NULL, host, errp) < 0)
        return NULL;
    AUTOAGENT struct agent_conn *a = agent_connect(m, host, false, errp);
    AUTOFREE char *path = agent_path("/v1/datastores/%s/volumes", name);
    AUTOJSON json_t *reply = NULL;
    if (!a || agent_call(a, "GET", path, NULL, NULL, &reply, errp) < 0)
        return NULL;
    json_t *items = json_object_get(reply, "volumes");
    if (!json_is_array(items))
        return error_set(errp, ERR_IO, "host '%s' answered no volume list", a->host_name), NULL;
    return json_pack("{s:O, s:I}", "items", items, "total",
                     (json_int_t) json_array_size(items));
}

/* ---- volume tasks ------------------------------------------------------- */

/* Progress of an agent job into the task's; false once the task is being
 * cancelled, which cancels the agent job too. */
static bool on_progress(int pct, void *opaque)
{
    task_progress(opaque, pct);
    return !task_cancel_requested(opaque);
}

static const char *param(const struct task_ctx *c, const char *key)
{
    return json_string_value(json_object_get(c->params, key));
}

/* Connects to the host the step runs on: the checkpoint's, else a connected
 * host with the datastore(s) (recorded in the checkpoint). */
static struct agent_conn *task_agent(struct task_ctx *c, struct error **errp)
{
    const char *host = json_string_value(json_object_get(c->checkpoint, "host_id"));
    char id[UUID_STRLEN + 1];
    if (!host) {
        if (pick_host(c->m, param(c, "datastore_id"), param(c, "source_datastore_id"), id,
                      errp) < 0)
            return NULL;
        json_object_set_new(c->checkpoint, "host_id", json_string(id));
        host = id;
    }
    return agent_connect(c->m, host, false, errp);
}

static int vol_get_into_result(struct task_ctx *c, struct agent_conn *a, struct error **errp)
{
    AUTOFREE char *path = agent_path("/v1/datastores/%s/volumes/%s", param(c, "datastore"),
                                     param(c, "volume"));
    json_t *vol = NULL;
    if (agent_call(a, "GET", path, NULL, NULL, &vol, errp) < 0)
        return -1;
    json_object_set_new(c->result, "volume", vol);
    return 0;
}

static int step_vol_create(struct task_ctx *c, struct error **errp)
{
    AUTOAGENT struct agent_conn *a = task_agent(c, errp);
    AUTOFREE char *path = agent_path("/v1/datastores/%s/volumes", param(c, "datastore"));
    AUTOJSON json_t *reply = NULL;
    if (!a || agent_call_wait(a, "POST", path, json_object_get(c->params, "body"), on_progress,
                              c, &reply, errp) < 0)
        return -1;
    json_object_set_new(c->checkpoint, "created", json_true());
    if (json_is_object(reply) && !json_object_get(reply, "name"))
        json_object_set(c->result, "job", reply);
    json_object_set_new(c->result, "host_id", json_string(a->host_id));
    AUTOERROR struct error *err = NULL;
    if (vol_get_into_result(c, a, &err) < 0)
        LOG_WARN("volume '%s': reading it back: %s", param(c, "volume"), err->message);
    return 0;
}

static void undo_vol_create(struct task_ctx *c)
{
    if (!json_is_true(json_object_get(c->checkpoint, "created")))
        return;
    AUTOERROR struct error *err = NULL;
    AUTOAGENT struct agent_conn *a = task_agent(c, &err);
    AUTOFREE char *path = agent_path("/v1/datastores/%s/volumes/%s", param(c, "datastore"),
                                     param(c, "volume"));
    long status = 0;
    if (!a || (agent_call(a, "DELETE", path, NULL, &status, NULL, &err) < 0 && status != 404))
        LOG_WARN("undoing volume '%s': %s", param(c, "volume"), err ? err->message : "?");
}

static int step_vol_delete(struct task_ctx *c, struct error **errp)
{
    AUTOAGENT struct agent_conn *a = task_agent(c, errp);
    bool secure = json_is_true(json_object_get(c->params, "secure"));
    AUTOFREE char *base = agent_path("/v1/datastores/%s/volumes/%s", param(c, "datastore"),
                                     param(c, "volume"));
    AUTOFREE char *path = xasprintf("%s%s", base, secure ? "?secure=true" : "");
    AUTOJSON json_t *reply = NULL;
    if (!a || agent_call_wait(a, "DELETE", path, NULL, on_progress, c, &reply, errp) < 0)
        return -1;
    if (json_is_object(reply))
        json_object_set(c->result, "job", reply);
    return 0;
}

static int step_vol_resize(struct task_ctx *c, struct error **errp)
{
    AUTOAGENT struct agent_conn *a = task_agent(c, errp);
    AUTOFREE char *path = agent_path("/v1/datastores/%s/volumes/%s/resize",
                                     param(c, "datastore"), param(c, "volume"));
    json_t *reply = NULL;
    if (!a || agent_call_wait(a, "POST", path, json_object_get(c->params, "body"), on_progress,
                              c, &reply, errp) < 0)
        return -1;
    json_object_set_new(c->result, "volume", reply ? reply : json_null());
    return 0;
}

static int step_vol_wipe(struct task_ctx *c, struct error **errp)
{
    AUTOAGENT struct agent_conn *a = task_agent(c, errp);
    AUTOFREE char *path = agent_path("/v1/datastores/%s/volumes/%s/wipe", param(c, "datastore"),
                                     param(c, "volume"));
    AUTOJSON json_t *reply = NULL;
    if (!a || agent_call_wait(a, "POST", path, NULL, on_progress, c, &reply, errp) < 0)
        return -1;
    if (json_is_object(reply))
        json_object_set(c->result, "job", reply);
    return 0;
}

static const struct task_step_def vol_create_steps[] = {
    { "create-volume", step_vol_create, undo_vol_create },
    { NULL, NULL, NULL },
};
static const struct task_step_def vol_delete_steps[] = {
    { "delete-volume", step_vol_delete, NULL },
    { NULL, NULL, NULL },
};
static const struct task_step_def vol_resize_steps[] = {
    { "resize-volume", step_vol_resize, NULL },
    { NULL, NULL, NULL },
};
static const struct task_step_def vol_wipe_steps[] = {
    { "wipe-volume", step_vol_wipe, NULL },
    { NULL, NULL, NULL },
};
static const struct task_kind_def vol_create_kind = { "volume.create", vol_create_steps, false,
                                                      NULL };
static const struct task_kind_def vol_delete_kind = { "volume.delete", vol_delete_steps, false,
                                                      NULL };
static const struct task_kind_def vol_resize_kind = { "volume.resize", vol_resize_steps, false,
                                                      NULL };
static const struct task_kind_def vol_wipe_kind = { "volume.wipe", vol_wipe_steps, false, NULL };

const struct task_kind_def *const resource_task_kinds[] = {
    &vol_create_kind, &vol_delete_kind, &vol_resize_kind, &vol_wipe_kind, NULL,
};

/* Checks a volume create body as the agent will; with "source" (a full
 * copy) only the fields a copy takes. */
static int vol_create_check(const json_t *body, const char **name, const char **source,
                            const char **source_ds, struct error **errp)
{
    if (!json_is_object(body))
        return error_set(errp, ERR_INVALID_ARG, "a volume object is required");
    if (!json_object_get(body, "source")) {
        bool import = false;
        struct volume *v = volume_from_request(body, &import, errp);
        if (!v)
            return -1;
        volume_free(v);
        *source = *source_ds = NULL;
        return json_get_string(body, "name", NULL, true, name, errp);
    }
    static const char *const keys[] = { "name", "source", "source_datastore", "format",
                                        "provisioning", "type", "mode", NULL };
    if (json_check_keys(body, keys, NULL, errp) < 0 ||
        json_get_string(body, "name", NULL, true, name, errp) < 0 ||
        json_get_string(body, "source", NULL, true, source, errp) < 0 ||
        json_get_string(body, "source_datastore", NULL, false, source_ds, errp) < 0 ||
        storage_name_validate(*name, "volume", "name", errp) < 0 ||
        storage_name_validate(*source, "volume", "source", errp) < 0)
        return -1;
    /* The enums, through the agent's parser with a stand-in capacity. */
    AUTOJSON json_t *probe = json_pack("{s:s, s:I}", "name", *name, "capacity",
                                       (json_int_t) VOLUME_MIN_CAPACITY);
    static const char *const enums[] = { "format", "provisioning", "mode" };
    for (size_t i = 0; i < ARRAY_SIZE(enums); i++) {
        json_t *e = json_object_get(body, enums[i]);
        if (e)
            json_object_set(probe, enums[i], e);
    }
    bool import = false;
    struct volume *v = volume_from_request(probe, &import, errp);
    if (!v)
        return -1;
    volume_free(v);
    const char *type = NULL;
    if (json_get_string(body, "type", NULL, false, &type, errp) < 0)
        return -1;
    if (type && volume_type_from_string(type) < 0)
        return error_set_field(errp, ERR_INVALID_ARG, "type", "type '%.40s' must be normal or "
                               "shared", type);
    if (*source_ds && storage_name_validate(*source_ds, "datastore", "source_datastore",
                                            errp) < 0)
        return -1;
    return 0;
}

/* 1 when the agent has volume 'vol' in datastore 'ds', 0 when not. */
static int agent_has_volume(struct agent_conn *a, const char *ds, const char *vol,
                            struct error **errp)
{
    AUTOFREE char *path = agent_path("/v1/datastores/%s/volumes/%s", ds, vol);
    AUTOJSON json_t *j = NULL;
    return agent_get_opt(a, path, &j, errp);
}

int res_volume_submit(struct manager *m, enum res_volume_op op, const char *ds_ref,
                      const char *vol, const json_t *body, bool secure, const char *actor,
                      char task_id[UUID_STRLEN + 1], struct error **errp)
{
    static const char *const kinds[] = { "volume.create", "volume.delete", "volume.resize",
                                         "volume.wipe" };
    const char *name = vol, *source = NULL, *source_ds = NULL;
    AUTOJSON json_t *agent_body = NULL;
    switch (op) {
    case RES_VOL_CREATE:
        if (vol_create_check(body, &name, &source, &source_ds, errp) < 0)
            return -1;
        agent_body = json_deep_copy(body);
        break;
    case RES_VOL_RESIZE: {
        static const char *const keys[] = { "capacity", NULL };
        unsigned long long cap = 0;
        if (!body)
            return error_set(errp, ERR_INVALID_ARG, "this request needs a JSON object body");
        if (json_check_keys(body, keys, NULL, errp) < 0 ||
            json_get_uint(body, "capacity", NULL, true, VOLUME_MIN_CAPACITY, VOLUME_MAX_CAPACITY,
                          &cap, errp) < 0)
            return -1;
        if (cap % 512)
            return error_set_field(errp, ERR_INVALID_ARG, "capacity",
                                   "capacity %llu is not a multiple of 512", cap);
        agent_body = json_deep_copy(body);
        break;
    }
    case RES_VOL_WIPE:
    case RES_VOL_DELETE:
        if (body && json_object_size(body) > 0)
            return error_set(errp, ERR_INVALID_ARG, "this request takes no body fields");
        break;
    }
    if (op != RES_VOL_CREATE && storage_name_validate(name, "volume", "volume", errp) < 0)
        return -1;
    char ds_id[UUID_STRLEN + 1], src_id[UUID_STRLEN + 1], host[UUID_STRLEN + 1];
    AUTOFREE char *ds_name = NULL, *src_name = NULL;
    if (ds_resolve(m, ds_ref, NULL, ds_id, &ds_name, errp) < 0 ||
        (source_ds && ds_resolve(m, source_ds, "source_datastore", src_id, &src_name, errp) < 0)
        || pick_host(m, ds_id, source_ds ? src_id : NULL, host, errp) < 0)
        return -1;
    if (src_name)       /* the agent knows the datastore by the manager's name */
        json_object_set_new(agent_body, "source_datastore", json_string(src_name));
    /* Refuse what would fail at once, before a task exists. */
    {
        AUTOAGENT struct agent_conn *a = agent_connect(m, host, false, errp);
        if (!a)
            return -1;
        int has = agent_has_volume(a, ds_name, name, errp);
        if (has < 0)
            return -1;
        if (op == RES_VOL_CREATE && has)
            return error_set_field(errp, ERR_CONFLICT, "name",
                                   "volume '%s' already exists in datastore '%s'", name,
                                   ds_name);
        if (op != RES_VOL_CREATE && !has)
            return error_set_field(errp, ERR_NOT_FOUND, "volume",
                                   "datastore '%s' has no volume '%s'", ds_name, name);
        if (source) {
            has = agent_has_volume(a, src_name ? src_name : ds_name, source, errp);
            if (has < 0)
                return -1;
            if (!has)
                return error_set_field(errp, ERR_NOT_FOUND, "source",
                                       "datastore '%s' has no volume '%s'",
                                       src_name ? src_name : ds_name, source);
        }
    }
    AUTOJSON json_t *params = json_pack("{s:s, s:s, s:s, s:b}", "datastore_id", ds_id,
                                        "datastore", ds_name, "volume", name, "secure", secure);
    if (agent_body)
        json_object_set(params, "body", agent_body);
    if (src_name)
        json_object_set_new(params, "source_datastore_id", json_string(src_id));
    AUTOFREE char *object = xasprintf("%s/%s", ds_name, name);
    return task_engine_submit(m->tasks, kinds[op], "volume", object, actor, params, task_id,
                              errp);
}

/* ---- the host monitor's re-push ----------------------------------------- */

struct share_item {
    char *method, *path, *conflict_get, *conflict_path;
    json_t *body;
};

static void share_free(struct share_item *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].method);
        free(v[i].path);
        free(v[i].conflict_get);
        free(v[i].conflict_path);
        json_decref(v[i].body);
    }
    free(v);
}

static void share_add(struct share_item **v, size_t *n, const char *method, char *path,
                      json_t *body)
{
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = (struct share_item) { xstrdup(method), path, NULL, NULL, body };
}

static json_t *config_object(const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    return j;
}

/* What host 'host_id' should have, as agent calls in order. */
static struct share_item *host_share(struct manager *m, const char *host_id, size_t *n,
                                     struct error **errp)
{
    struct share_item *v = NULL;
    *n = 0;
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
    if (!t)
        return NULL;
    int r;
    {
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT d.name, d.kind, d.config FROM host_datastores hd "
               "JOIN datastores d ON d.id = hd.datastore_id WHERE hd.host_id = ? ORDER BY d.name",
            STORE_ARGS(SV_TEXT(host_id)), errp);
        if (!st)
            goto fail;
        while ((r = store_step(st, errp)) > 0) {
            json_t *b = ds_agent_body(store_col_text(st, 0), store_col_text(st, 1),
                                      store_col_text(st, 2));
            share_add(&v, n, "POST", xstrdup("/v1/datastores"), b);
            v[*n - 1].conflict_get = agent_path("/v1/datastores/%s", store_col_text(st, 0));
            const char *p = json_string_value(json_object_get(b, "path"));
            v[*n - 1].conflict_path = xstrdup(p ? p : "");
        }
        if (r < 0)
            goto fail;
    }
    {
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT n.name, n.config FROM host_nat_networks hn "
               "JOIN nat_networks n ON n.id = hn.nat_id WHERE hn.host_id = ? ORDER BY n.name",
            STORE_ARGS(SV_TEXT(host_id)), errp);
        if (!st)
            goto fail;
        while ((r = store_step(st, errp)) > 0)
            share_add(&v, n, "PUT", agent_path("/v1/net/nat/%s", store_col_text(st, 0)),
                      config_object(store_col_text(st, 1)));
        if (r < 0)
            goto fail;
    }
    {
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT d.id, d.name, d.config, hd.uplink FROM host_dvs hd "
               "JOIN dvs d ON d.id = hd.dvs_id WHERE hd.host_id = ? ORDER BY d.name",
            STORE_ARGS(SV_TEXT(host_id)), errp);
        if (!st)
            goto fail;
        while ((r = store_step(st, errp)) > 0) {
            json_t *b = config_object(store_col_text(st, 2));
            json_t *up = config_object(store_col_text(st, 3));
            if (json_object_size(up))
                json_object_set_new(b, "uplink", up);
            else
                json_decref(up);
            const char *dvs = store_col_text(st, 1);
            share_add(&v, n, "PUT", agent_path("/v1/net/dvs/%s", dvs), b);
            AUTOSTMT struct store_stmt *pg = store_query(
                t, "SELECT name, config FROM portgroups WHERE dvs_id = ? ORDER BY name",
                STORE_ARGS(SV_TEXT(store_col_text(st, 0))), errp);
            if (!pg)
                goto fail;
            while ((r = store_step(pg, errp)) > 0)
                share_add(&v, n, "PUT",
                          agent_path("/v1/net/dvs/%s/portgroups/%s", dvs, store_col_text(pg, 0)),
                          config_object(store_col_text(pg, 1)));
            if (r < 0)
                goto fail;
        }
        if (r < 0)
            goto fail;
    }
    {
        /* Security groups are global: every host has them all. */
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT name, rules FROM security_groups ORDER BY name", STORE_NO_ARGS, errp);
        if (!st)
            goto fail;
        while ((r = store_step(st, errp)) > 0) {
            json_t *b = secgroup_agent_body(t, store_col_text(st, 0), store_col_text(st, 1),
                                            errp);
            if (!b)
                goto fail;
            share_add(&v, n, "PUT",
                      agent_path("/v1/net/security-groups/%s", store_col_text(st, 0)), b);
        }
        if (r < 0)
            goto fail;
    }
    return v ? v : xzalloc(sizeof *v);
fail:
    share_free(v, *n);
    return NULL;
}

int res_host_resync(struct manager *m, struct agent_conn *a, int64_t desired,
                    struct error **errp)
{
    size_t n = 0;
    struct share_item *v = host_share(m, a->host_id, &n, errp);
    if (!v)
        return -1;
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        long status = 0;
        AUTOERROR struct error *err = NULL;
        if (agent_call(a, v[i].method, v[i].path, v[i].body, &status, NULL, &err) == 0)
            continue;
        if (status == 409 && v[i].conflict_get) {
            AUTOJSON json_t *cur = NULL;
            if (agent_get_opt(a, v[i].conflict_get, &cur, NULL) == 1 &&
                !strcmp(json_string_value(json_object_get(cur, "path")) ?: "",
                        v[i].conflict_path))
                continue;
        }
        if (ret == 0) {
            error_propagate(errp, steal_pointer(&err));
            ret = -1;
        }
    }
    share_free(v, n);
    if (ret < 0)
        return -1;
    AUTOJSON json_t *gen = json_pack("{s:I}", "generation", (json_int_t) desired);
    if (agent_call(a, "PUT", "/v1/host/generation", gen, NULL, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, errp);
    if (!t || store_exec(t, "UPDATE hosts SET applied_generation = ? WHERE id = ? "
                            "AND applied_generation < ?",
                         STORE_ARGS(SV_INT(desired), SV_TEXT(a->host_id), SV_INT(desired)),
                         errp) < 0)
        return -1;
    return store_commit(steal_pointer(&t), errp);
}

void res_host_usage(struct manager *m, struct agent_conn *a)
{
    AUTOERROR struct error *err = NULL;
    int64_t linked = 0;
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, &err);
        if (!t || store_query_int(t, "SELECT COUNT(*) FROM host_datastores WHERE host_id = ?",
                                  STORE_ARGS(SV_TEXT(a->host_id)), &linked, &err) < 0) {
            LOG_RL_WARN("datastore usage of host '%s': %s", a->host_name, err->message);
            return;
        }
    }
    if (!linked)
        return;
    AUTOJSON json_t *reply = NULL;
    if (agent_call(a, "GET", "/v1/datastores", NULL, NULL, &reply, &err) < 0) {
        LOG_RL_WARN("datastore usage of host '%s': %s", a->host_name, err->message);
        return;
    }
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, &err);
    if (!t) {
        LOG_RL_WARN("datastore usage of host '%s': %s", a->host_name, err->message);
        return;
    }
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(reply, "datastores"), i, d) {
        const char *name = json_string_value(json_object_get(d, "name"));
        bool avail = json_is_true(json_object_get(d, "available"));
        if (!name)
            continue;
        int64_t cap = jint(d, "capacity"), fr = jint(d, "free"), prov = jint(d, "provisioned");
        const char *state = avail ? "available" : "unavailable";
        if (store_exec(t, "UPDATE datastores SET capacity_bytes = ?, free_bytes = ?, "
                          "provisioned_bytes = ?, state = ?, updated_at = ? WHERE name = ? "
                          "AND id IN (SELECT datastore_id FROM host_datastores WHERE host_id = ?) "
                          "AND (capacity_bytes <> ? OR free_bytes <> ? OR provisioned_bytes <> ? "
                          "OR state <> ?)",
                       STORE_ARGS(SV_INT(cap), SV_INT(fr), SV_INT(prov), SV_TEXT(state),
                                  SV_INT(store_now_ms()), SV_TEXT(name), SV_TEXT(a->host_id),
                                  SV_INT(cap), SV_INT(fr), SV_INT(prov), SV_TEXT(state)),
                       &err) < 0) {
            LOG_RL_WARN("datastore usage of host '%s': %s", a->host_name, err->message);
            return;
        }
    }
    if (store_commit(steal_pointer(&t), &err) < 0)
        LOG_RL_WARN("datastore usage of host '%s': %s", a->host_name, err->message);
}
