/* api_net.c - REST routes for NAT networks, DVSs and port groups, and the
 * list of networks VMs can join.
 *
 *   GET    /api/v1/nat-networks, /api/v1/nat-networks/{id}   viewer
 *   POST   /api/v1/nat-networks                              administrator -> 201
 *          {"name", "subnet"?, "hosts", "address"?, "dhcp_start"?, "dhcp_end"?,
 *           "lease_s"?, "mtu"?, "masquerade"?, "bridge"?}: PUT /v1/net/nat/{name}
 *           on every listed host, all or nothing
 *   DELETE /api/v1/nat-networks/{id}                         administrator -> 204
 *   GET    /api/v1/dvs, /api/v1/dvs/{id}                     viewer
 *   POST   /api/v1/dvs                                       administrator -> 201
 *          {"name", "hosts": [host | {"host", "uplink"}], "uplink"?, "mtu"?,
 *           "datapath"?, "vlans"?, "bridge"?}: PUT /v1/net/dvs/{name} on each host
 *   DELETE /api/v1/dvs/{id}                                  administrator (409 while
 *                                                            it has port groups)
 *   GET    /api/v1/dvs/{id}/portgroups                       viewer
 *   POST   /api/v1/dvs/{id}/portgroups                       administrator -> 201
 *          {"name", "vlan"?, "trunk"?, "bandwidth"?, ...}: PUT on every host of the DVS
 *   DELETE /api/v1/dvs/{id}/portgroups/{pg}                  administrator -> 204
 *   GET    /api/v1/networks [?type=nat|portgroup]            viewer: what VMs can join
 *
 * Bodies are checked with the agent's own parsers (net/net_config.h) before
 * any host is called; a host that refuses undoes the others (resources.h).
 *
 * Neighbours: api.c, resources.c (pushes, kinds, the monitor's re-push),
 * net/net_config.h, docs/network.md. */
#define LOG_MODULE "api"
#include "manager/api.h"

#include <string.h>

#include "manager/agent_client.h"
#include "manager/events.h"
#include "manager/resources.h"
#include "net/net_config.h"
#include "util/json_util.h"
#include "util/mem.h"

/* ---- shared ------------------------------------------------------------- */

static int record(struct store_txn *t, const char *type, const char *what, const char *id,
                  const char *name, const char *actor, const char *msg, struct error **errp)
{
    struct event e = {
        .type = type, .object_type = what, .object_id = id, .object_name = name,
        .user_name = actor, .message = msg,
    };
    return event_append(t, &e, errp) < 0 ? -1 : 0;
}

static int name_free(struct store_txn *t, const char *table, const char *what, const char *name,
                     struct error **errp)
{
    AUTOFREE char *sql = xasprintf("SELECT COUNT(*) FROM %s WHERE name = ?", table);
    int64_t n = 0;
    if (store_query_int(t, sql, STORE_ARGS(SV_TEXT(name)), &n, errp) < 0)
        return -1;
    if (n)
        return error_set_field(errp, ERR_CONFLICT, "name", "%s '%s' already exists", what,
                               name);
    return 0;
}

/* A new copy of 'body' without the keys the agent does not take. */
static json_t *agent_body(const json_t *body, const char *const *drop)
{
    json_t *b = json_deep_copy(body);
    for (const char *const *k = drop; *k; k++)
        json_object_del(b, *k);
    return b;
}

static struct res_push *pushes_for(char (*hosts)[UUID_STRLEN + 1], size_t n, const char *method,
                                   const char *path, const json_t *body)
{
    struct res_push *v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        memcpy(v[i].host_id, hosts[i], UUID_STRLEN + 1);
        v[i].method = xstrdup(method);
        v[i].path = xstrdup(path);
        v[i].body = body ? json_deep_copy(body) : NULL;
        v[i].get_path = xstrdup(path);
        v[i].ok_if_missing = !strcmp(method, "DELETE");
    }
    return v;
}

/* The hosts linked to object 'id' through 'sql' (one '?'). */
static size_t linked_hosts(struct store_txn *t, const char *sql, const char *id,
                           char (*hosts)[UUID_STRLEN + 1], struct error **errp)
{
    AUTOSTMT struct store_stmt *st = store_query(t, sql, STORE_ARGS(SV_TEXT(id)), errp);
    size_t n = 0;
    if (!st)
        return (size_t) -1;
    int r;
    while (n < RES_MAX_HOSTS && (r = store_step(st, errp)) > 0)
        snprintf(hosts[n++], UUID_STRLEN + 1, "%s", store_col_text(st, 0));
    return n;
}

static int add_host_names(struct store_txn *t, json_t *obj, const char *sql,
                          struct error **errp)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    AUTOSTMT struct store_stmt *st = store_query(t, sql, STORE_ARGS(SV_TEXT(id)), errp);
    if (!st)
        return -1;
    json_t *arr = json_array();
    int r;
    while ((r = store_step(st, errp)) > 0)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "host_id", store_col_text(st, 0),
                                             "host_name", store_col_text(st, 1)));
    json_object_set_new(obj, "hosts", arr);
    return r < 0 ? -1 : 0;
}

#define NAT_HOSTS_SQL                                                                   \
    "SELECT h.id, h.name FROM host_nat_networks hn JOIN hosts h ON h.id = hn.host_id "  \
    "WHERE hn.nat_id = ? ORDER BY h.name"
#define DVS_HOSTS_SQL                                                                   \
    "SELECT h.id, h.name FROM host_dvs hd JOIN hosts h ON h.id = hd.host_id "           \
    "WHERE hd.dvs_id = ? ORDER BY h.name"

typedef int decorate_fn(struct store_txn *t, json_t *obj, struct error **errp);

static int nat_decorate(struct store_txn *t, json_t *obj, struct error **errp)
{
    return add_host_names(t, obj, NAT_HOSTS_SQL, errp);
}

static int dvs_decorate(struct store_txn *t, json_t *obj, struct error **errp)
{
    return add_host_names(t, obj, DVS_HOSTS_SQL, errp);
}

static int list(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
                decorate_fn *fn, struct error **errp)
{
    struct inv_page p;
    if (api_page_parse(c, k, NULL, &p, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    AUTOJSON json_t *j = t ? inv_list(t, k, &p, errp) : NULL;
    if (!j)
        return -1;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(j, "items"), i, it)
        if (fn(t, it, errp) < 0)
            return -1;
    return api_reply(resp, 200, steal_pointer(&j));
}

static json_t *get_one(struct store_txn *t, const struct inv_kind *k, decorate_fn *fn,
                       const char *ref, struct error **errp)
{
    AUTOJSON json_t *j = inv_get(t, k, ref, errp);
    if (!j || fn(t, j, errp) < 0)
        return NULL;
    return steal_pointer(&j);
}

static int get(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
               decorate_fn *fn, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? get_one(t, k, fn, ref, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int reply_created(struct api_call *c, struct http_response *resp,
                         const struct inv_kind *k, decorate_fn *fn, const char *id,
                         struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? get_one(t, k, fn, id, errp) : NULL;
    return j ? api_reply(resp, 201, j) : -1;
}

/* Removes object 'ref' of kind 'k' from every host linked through
 * 'hosts_sql' (agent path from 'path_fmt' with its name), then its row. */
static int delete_pushed(struct api_call *c, const struct inv_kind *k, const char *ref,
                         const char *hosts_sql, const char *path_fmt, const char *pre_check_sql,
                         const char *pre_check_msg, struct error **errp)
{
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL;
    char (*hosts)[UUID_STRLEN + 1] = xcalloc(RES_MAX_HOSTS, sizeof *hosts);
    AUTOFREE void *hosts_mem = hosts;
    size_t n;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        if (!t || inv_resolve(t, k, ref, NULL, id, errp) < 0)
            return -1;
        AUTOFREE char *sql = xasprintf("SELECT name FROM %s WHERE id = ?", k->table);
        AUTOSTMT struct store_stmt *st = store_query(t, sql, STORE_ARGS(SV_TEXT(id)), errp);
        if (!st || store_step(st, errp) <= 0)
            return -1;
        name = xstrdup(store_col_text(st, 0));
        if (pre_check_sql) {
            int64_t used = 0;
            if (store_query_int(t, pre_check_sql, STORE_ARGS(SV_TEXT(id)), &used, errp) < 0)
                return -1;
            if (used)
                return error_set(errp, ERR_CONFLICT, "%s '%s' %s", k->what, name,
                                 pre_check_msg);
        }
        n = linked_hosts(t, hosts_sql, id, hosts, errp);
        if (n == (size_t) -1)
            return -1;
    }
    AUTOFREE char *path = agent_path(path_fmt, name);
    struct res_push *v = pushes_for(hosts, n, "DELETE", path, NULL);
    if (res_push_all(c->m, v, n, errp) < 0) {
        res_pushes_free(v, n);
        return error_prefix(errp, "removing %s '%s'", k->what, name), -1;
    }
    int ret = -1;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (t && res_bump_generation(t, hosts, n, errp) == 0 &&
            inv_delete(t, k, id, api_actor(c), errp) == 0 &&
            manager_commit(c->m, steal_pointer(&t), errp) == 0)
            ret = 0;
    }
    if (ret < 0)
        res_push_undo_all(c->m, v, n);
    res_pushes_free(v, n);
    return ret;
}

/* ---- NAT networks ------------------------------------------------------- */

static int h_nat_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return list(c, resp, &inv_nat_networks, nat_decorate, errp);
}

static int h_nat_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return get(c, resp, &inv_nat_networks, nat_decorate, errp);
}

static int h_nat_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const drop[] = { "hosts", NULL };
    static const char *const no_name[] = { "name", NULL };
    const json_t *body = api_body(c, errp);
    const char *name = NULL;
    if (!body || api_query_check(c, NULL, errp) < 0 ||
        json_get_string(body, "name", NULL, true, &name, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 || net_name_validate(name, "name", errp) < 0)
        return -1;
    AUTOJSON json_t *ab = agent_body(body, drop);
    struct net_nat nat;
    if (net_nat_from_json(ab, name, "", &nat, errp) < 0)
        return -1;
    AUTOJSON json_t *canon = net_nat_to_json(&nat);
    net_nat_clear(&nat);
    if (!json_object_get(body, "hosts"))
        return error_set_field(errp, ERR_INVALID_ARG, "hosts", "missing field 'hosts'");
    char (*hosts)[UUID_STRLEN + 1] = xcalloc(RES_MAX_HOSTS, sizeof *hosts);
    AUTOFREE void *hosts_mem = hosts;
    int n;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        if (!t || name_free(t, "nat_networks", "NAT network", name, errp) < 0)
            return -1;
        n = res_hosts_resolve(t, json_object_get(body, "hosts"), "hosts", false, hosts,
                              RES_MAX_HOSTS, errp);
        if (n < 0)
            return -1;
    }
    AUTOFREE char *path = agent_path("/v1/net/nat/%s", name);
    struct res_push *v = pushes_for(hosts, (size_t) n, "PUT", path, ab);
    if (res_push_all(c->m, v, (size_t) n, errp) < 0) {
        res_pushes_free(v, (size_t) n);
        return error_prefix(errp, "NAT network '%s'", name), -1;
    }
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    int64_t now = store_now_ms();
    AUTOJSON json_t *cfg = agent_body(ab, no_name);
    AUTOFREE char *cfg_text = json_to_string(cfg);
    AUTOFREE char *msg = xasprintf("NAT network '%s' created on %d host(s)", name, n);
    int ret = -1;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (!t ||
            store_exec(t, "INSERT INTO nat_networks (id, name, subnet, config, created_at, "
                          "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                       STORE_ARGS(SV_TEXT(id), SV_TEXT(name),
                                  SV_TEXT(json_string_value(json_object_get(canon, "subnet"))),
                                  SV_TEXT(cfg_text), SV_INT(now), SV_INT(now)), errp) < 0)
            goto out;
        for (int i = 0; i < n; i++)
            if (store_exec(t, "INSERT INTO host_nat_networks (host_id, nat_id) VALUES (?, ?)",
                           STORE_ARGS(SV_TEXT(hosts[i]), SV_TEXT(id)), errp) < 0)
                goto out;
        if (res_bump_generation(t, hosts, (size_t) n, errp) < 0 ||
            record(t, "nat-network.created", "nat-network", id, name, api_actor(c), msg,
                   errp) < 0 ||
            manager_commit(c->m, steal_pointer(&t), errp) < 0)
            goto out;
        ret = 0;
    }
out:
    if (ret < 0)
        res_push_undo_all(c->m, v, (size_t) n);
    res_pushes_free(v, (size_t) n);
    return ret < 0 ? -1 : reply_created(c, resp, &inv_nat_networks, nat_decorate, id, errp);
}

static int h_nat_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0 ||
        delete_pushed(c, &inv_nat_networks, ref,
                      "SELECT host_id FROM host_nat_networks WHERE nat_id = ? ORDER BY host_id",
                      "/v1/net/nat/%s", NULL, NULL, errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

/* ---- DVSs --------------------------------------------------------------- */

static int h_dvs_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return list(c, resp, &inv_dvs, dvs_decorate, errp);
}

static int h_dvs_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return get(c, resp, &inv_dvs, dvs_decorate, errp);
}

static int h_dvs_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const drop[] = { "hosts", "uplink", "vlan_pool", NULL };
    static const char *const no_name[] = { "name", NULL };
    static const char *const host_keys[] = { "host", "uplink", NULL };
    const json_t *body = api_body(c, errp);
    const char *name = NULL, *pool = NULL;
    if (!body || api_query_check(c, NULL, errp) < 0 ||
        json_get_string(body, "name", NULL, true, &name, errp) < 0 ||
        json_get_string(body, "vlan_pool", NULL, false, &pool, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 || net_name_validate(name, "name", errp) < 0)
        return -1;
    json_t *refs = json_object_get(body, "hosts");
    if (!refs)
        return error_set_field(errp, ERR_INVALID_ARG, "hosts", "missing field 'hosts'");
    AUTOJSON json_t *common = agent_body(body, drop);
    /* A VLAN pool: the uplinks carry exactly its VLANs. */
    char pool_id[UUID_STRLEN + 1] = "";
    if (pool) {
        if (json_object_get(body, "vlans"))
            return error_set_field(errp, ERR_INVALID_ARG, "vlans",
                                   "give either 'vlans' or 'vlan_pool'");
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        if (!t || inv_resolve(t, &inv_vlan_pools, pool, "vlan_pool", pool_id, errp) < 0)
            return -1;
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT ranges FROM vlan_pools WHERE id = ?", STORE_ARGS(SV_TEXT(pool_id)), errp);
        if (!st || store_step(st, errp) <= 0)
            return -1;
        json_object_set_new(common, "vlans", json_string(store_col_text(st, 0)));
    }
    json_t *dflt_uplink = json_object_get(body, "uplink");
    /* Each host's body, checked by the agent's parser. */
    AUTOJSON json_t *bodies = json_array();
    for (size_t i = 0; json_is_array(refs) && i < json_array_size(refs); i++) {
        json_t *e = json_array_get(refs, i);
        AUTOFREE char *f = json_path_index("hosts", i);
        json_t *up = dflt_uplink;
        if (json_is_object(e)) {
            if (json_check_keys(e, host_keys, f, errp) < 0)
                return -1;
            if (json_object_get(e, "uplink"))
                up = json_object_get(e, "uplink");
        }
        json_t *b = json_deep_copy(common);
        if (up)
            json_object_set(b, "uplink", up);
        json_array_append_new(bodies, b);
        struct net_dvs d;
        AUTOERROR struct error *err = NULL;
        if (net_dvs_from_json(b, name, "", false, &d, &err) < 0) {
            /* A per-host uplink names its place in 'hosts'. */
            if (up != dflt_uplink && err->field && !strncmp(err->field, "uplink", 6)) {
                AUTOFREE char *nf = xasprintf("%s.%s", f, err->field);
                free(err->field);
                err->field = steal_pointer(&nf);
            }
            error_propagate(errp, steal_pointer(&err));
            return -1;
        }
        net_dvs_clear(&d);
    }
    char (*hosts)[UUID_STRLEN + 1] = xcalloc(RES_MAX_HOSTS, sizeof *hosts);
    AUTOFREE void *hosts_mem = hosts;
    int n;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        if (!t || name_free(t, "dvs", "DVS", name, errp) < 0)
            return -1;
        n = res_hosts_resolve(t, refs, "hosts", true, hosts, RES_MAX_HOSTS, errp);
        if (n < 0)
            return -1;
    }
    AUTOFREE char *path = agent_path("/v1/net/dvs/%s", name);
    struct res_push *v = pushes_for(hosts, (size_t) n, "PUT", path, NULL);
    for (int i = 0; i < n; i++)
        v[i].body = json_incref(json_array_get(bodies, (size_t) i));
    if (res_push_all(c->m, v, (size_t) n, errp) < 0) {
        res_pushes_free(v, (size_t) n);
        return error_prefix(errp, "DVS '%s'", name), -1;
    }
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    int64_t now = store_now_ms();
    AUTOJSON json_t *cfg = agent_body(common, no_name);
    AUTOFREE char *cfg_text = json_to_string(cfg);
    unsigned long long mtu = 1500;
    json_get_uint(common, "mtu", NULL, false, 0, 65535, &mtu, NULL);
    AUTOFREE char *msg = xasprintf("DVS '%s' created on %d host(s)", name, n);
    int ret = -1;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (!t ||
            store_exec(t, "INSERT INTO dvs (id, name, mtu, vlan_pool_id, config, created_at, "
                          "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       STORE_ARGS(SV_TEXT(id), SV_TEXT(name), SV_INT(mtu),
                                  SV_TEXT(pool_id[0] ? pool_id : NULL), SV_TEXT(cfg_text),
                                  SV_INT(now), SV_INT(now)), errp) < 0)
            goto out;
        for (int i = 0; i < n; i++) {
            json_t *up = json_object_get(json_array_get(bodies, (size_t) i), "uplink");
            AUTOFREE char *up_text = up ? json_to_string(up) : xstrdup("{}");
            if (store_exec(t, "INSERT INTO host_dvs (host_id, dvs_id, uplink) VALUES (?, ?, ?)",
                           STORE_ARGS(SV_TEXT(hosts[i]), SV_TEXT(id), SV_TEXT(up_text)),
                           errp) < 0)
                goto out;
        }
        if (res_bump_generation(t, hosts, (size_t) n, errp) < 0 ||
            record(t, "dvs.created", "dvs", id, name, api_actor(c), msg, errp) < 0 ||
            manager_commit(c->m, steal_pointer(&t), errp) < 0)
            goto out;
        ret = 0;
    }
out:
    if (ret < 0)
        res_push_undo_all(c->m, v, (size_t) n);
    res_pushes_free(v, (size_t) n);
    return ret < 0 ? -1 : reply_created(c, resp, &inv_dvs, dvs_decorate, id, errp);
}

static int h_dvs_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0 ||
        delete_pushed(c, &inv_dvs, ref,
                      "SELECT host_id FROM host_dvs WHERE dvs_id = ? ORDER BY host_id",
                      "/v1/net/dvs/%s", "SELECT COUNT(*) FROM portgroups WHERE dvs_id = ?",
                      "still has port groups: delete them first", errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

/* ---- port groups -------------------------------------------------------- */

static int pg_decorate(struct store_txn *t, json_t *obj, struct error **errp)
{
    (void) t, (void) obj, (void) errp;
    return 0;
}

static int dvs_of_path(struct api_call *c, struct store_txn *t, char id[UUID_STRLEN + 1],
                       char **name, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || inv_resolve(t, &inv_dvs, ref, NULL, id, errp) < 0)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(t, "SELECT name FROM dvs WHERE id = ?",
                                                 STORE_ARGS(SV_TEXT(id)), errp);
    if (!st || store_step(st, errp) <= 0)
        return -1;
    *name = xstrdup(store_col_text(st, 0));
    return 0;
}

static int h_pg_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    struct inv_page p;
    if (api_page_parse(c, &inv_portgroups, NULL, &p, errp) < 0)
        return -1;
    if (http_request_query(c->req, "dvs"))
        return error_set_field(errp, ERR_INVALID_ARG, "dvs", "the DVS is in the path");
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL;
    if (!t || dvs_of_path(c, t, id, &name, errp) < 0)
        return -1;
    p.filters[0] = id;
    json_t *j = inv_list(t, &inv_portgroups, &p, errp);
    return j ? api_reply(resp, 200, j) : -1;
}

static int h_pg_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const no_name[] = { "name", NULL };
    const json_t *body = api_body(c, errp);
    const char *name = NULL;
    if (!body || api_query_check(c, NULL, errp) < 0 ||
        json_get_string(body, "name", NULL, true, &name, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 || net_name_validate(name, "name", errp) < 0)
        return -1;
    struct net_portgroup pg;
    if (net_portgroup_from_json(body, name, "", &pg, errp) < 0)
        return -1;
    AUTOJSON json_t *canon = net_portgroup_to_json(&pg);
    net_portgroup_clear(&pg);
    char dvs_id[UUID_STRLEN + 1];
    AUTOFREE char *dvs = NULL;
    char (*hosts)[UUID_STRLEN + 1] = xcalloc(RES_MAX_HOSTS, sizeof *hosts);
    AUTOFREE void *hosts_mem = hosts;
    size_t n;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        if (!t || dvs_of_path(c, t, dvs_id, &dvs, errp) < 0)
            return -1;
        int64_t taken = 0;
        if (store_query_int(t, "SELECT COUNT(*) FROM portgroups WHERE dvs_id = ? AND name = ?",
                            STORE_ARGS(SV_TEXT(dvs_id), SV_TEXT(name)), &taken, errp) < 0)
            return -1;
        if (taken)
            return error_set_field(errp, ERR_CONFLICT, "name",
                                   "DVS '%s' already has a port group '%s'", dvs, name);
        /* With a VLAN pool on the DVS, the port group's VLANs come from it. */
        AUTOSTMT struct store_stmt *ps = store_query(
            t, "SELECT v.name, v.ranges FROM dvs d JOIN vlan_pools v ON v.id = d.vlan_pool_id "
               "WHERE d.id = ?", STORE_ARGS(SV_TEXT(dvs_id)), errp);
        int r;
        if (!ps || (r = store_step(ps, errp)) < 0)
            return -1;
        if (r > 0) {
            bool in_pool[4096], want[4096];
            AUTOERROR struct error *perr = NULL;
            if (vlan_ranges_parse(store_col_text(ps, 1), "ranges", in_pool, &perr) < 0)
                return error_set(errp, ERR_INTERNAL, "VLAN pool '%s' is unreadable",
                                 store_col_text(ps, 0));
            json_t *vlan = json_object_get(canon, "vlan");
            const char *trunk = json_string_value(json_object_get(canon, "trunk"));
            if (json_is_integer(vlan) && json_integer_value(vlan) > 0 &&
                json_integer_value(vlan) < 4096 && !in_pool[json_integer_value(vlan)])
                return error_set_field(errp, ERR_INVALID_ARG, "vlan",
                                       "VLAN %lld is not in the DVS's VLAN pool '%s' (%s)",
                                       (long long) json_integer_value(vlan),
                                       store_col_text(ps, 0), store_col_text(ps, 1));
            if (trunk && vlan_ranges_parse(trunk, "trunk", want, &perr) == 0)
                for (int v = 1; v < 4095; v++)
                    if (want[v] && !in_pool[v])
                        return error_set_field(errp, ERR_INVALID_ARG, "trunk",
                                               "VLAN %d of the trunk is not in the DVS's VLAN "
                                               "pool '%s' (%s)", v, store_col_text(ps, 0),
                                               store_col_text(ps, 1));
        }
        n = linked_hosts(t, "SELECT host_id FROM host_dvs WHERE dvs_id = ? ORDER BY host_id",
                         dvs_id, hosts, errp);
        if (n == (size_t) -1)
            return -1;
    }
    AUTOFREE char *path = agent_path("/v1/net/dvs/%s/portgroups/%s", dvs, name);
    struct res_push *v = pushes_for(hosts, n, "PUT", path, body);
    if (res_push_all(c->m, v, n, errp) < 0) {
        res_pushes_free(v, n);
        return error_prefix(errp, "port group '%s' of DVS '%s'", name, dvs), -1;
    }
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    int64_t now = store_now_ms();
    AUTOJSON json_t *cfg = agent_body(body, no_name);
    AUTOFREE char *cfg_text = json_to_string(cfg);
    json_t *vlan = json_object_get(canon, "vlan");
    const char *trunk = json_string_value(json_object_get(canon, "trunk"));
    const char *mode = json_is_integer(vlan) ? "access" : trunk ? "trunk" : "none";
    AUTOFREE char *msg = xasprintf("port group '%s' of DVS '%s' created on %zu host(s)", name,
                                   dvs, n);
    int ret = -1;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (!t ||
            store_exec(t, "INSERT INTO portgroups (id, dvs_id, name, vlan_mode, vlan_id, trunk, "
                          "config, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       STORE_ARGS(SV_TEXT(id), SV_TEXT(dvs_id), SV_TEXT(name), SV_TEXT(mode),
                                  json_is_integer(vlan) ? SV_INT(json_integer_value(vlan))
                                                        : SV_NULL,
                                  SV_TEXT(trunk), SV_TEXT(cfg_text), SV_INT(now), SV_INT(now)),
                       errp) < 0 ||
            res_bump_generation(t, hosts, n, errp) < 0 ||
            record(t, "portgroup.created", "portgroup", id, name, api_actor(c), msg, errp) < 0 ||
            manager_commit(c->m, steal_pointer(&t), errp) < 0)
            goto out;
        ret = 0;
    }
out:
    if (ret < 0)
        res_push_undo_all(c->m, v, n);
    res_pushes_free(v, n);
    return ret < 0 ? -1 : reply_created(c, resp, &inv_portgroups, pg_decorate, id, errp);
}

static int h_pg_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    if (api_query_check(c, NULL, errp) < 0)
        return -1;
    const char *pg = c->req->params[1];
    if (inv_name_validate(pg, "portgroup", errp) < 0)
        return -1;
    char dvs_id[UUID_STRLEN + 1], pg_id[UUID_STRLEN + 1];
    AUTOFREE char *dvs = NULL;
    char (*hosts)[UUID_STRLEN + 1] = xcalloc(RES_MAX_HOSTS, sizeof *hosts);
    AUTOFREE void *hosts_mem = hosts;
    size_t n;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        if (!t || dvs_of_path(c, t, dvs_id, &dvs, errp) < 0)
            return -1;
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT id FROM portgroups WHERE dvs_id = ? AND name = ?",
            STORE_ARGS(SV_TEXT(dvs_id), SV_TEXT(pg)), errp);
        if (!st)
            return -1;
        int r = store_step(st, errp);
        if (r < 0)
            return -1;
        if (r == 0)
            return error_set_field(errp, ERR_NOT_FOUND, "portgroup",
                                   "DVS '%s' has no port group '%s'", dvs, pg);
        snprintf(pg_id, sizeof pg_id, "%s", store_col_text(st, 0));
        n = linked_hosts(t, "SELECT host_id FROM host_dvs WHERE dvs_id = ? ORDER BY host_id",
                         dvs_id, hosts, errp);
        if (n == (size_t) -1)
            return -1;
    }
    AUTOFREE char *path = agent_path("/v1/net/dvs/%s/portgroups/%s", dvs, pg);
    struct res_push *v = pushes_for(hosts, n, "DELETE", path, NULL);
    if (res_push_all(c->m, v, n, errp) < 0) {
        res_pushes_free(v, n);
        return error_prefix(errp, "removing port group '%s' of DVS '%s'", pg, dvs), -1;
    }
    int ret = -1;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (t && res_bump_generation(t, hosts, n, errp) == 0 &&
            inv_delete(t, &inv_portgroups, pg_id, api_actor(c), errp) == 0 &&
            manager_commit(c->m, steal_pointer(&t), errp) == 0)
            ret = 0;
    }
    if (ret < 0)
        res_push_undo_all(c->m, v, n);
    res_pushes_free(v, n);
    if (ret < 0)
        return -1;
    resp->status = 204;
    return 0;
}

/* ---- networks ----------------------------------------------------------- */

static json_t *host_names(struct store_txn *t, const char *sql, const char *id,
                          struct error **errp)
{
    AUTOSTMT struct store_stmt *st = store_query(t, sql, STORE_ARGS(SV_TEXT(id)), errp);
    if (!st)
        return NULL;
    json_t *arr = json_array();
    int r;
    while ((r = store_step(st, errp)) > 0)
        json_array_append_new(arr, json_string(store_col_text(st, 1)));
    if (r < 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static int h_networks(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const allowed[] = { "type", "limit", "offset", NULL };
    long long limit = INV_DEFAULT_LIMIT, offset = 0;
    if (api_query_check(c, allowed, errp) < 0 ||
        api_query_int(c, "limit", 1, INV_MAX_LIMIT, &limit, errp) < 0 ||
        api_query_int(c, "offset", 0, INT64_MAX / 2, &offset, errp) < 0)
        return -1;
    const char *type = http_request_query(c->req, "type");
    if (type && strcmp(type, "nat") && strcmp(type, "portgroup"))
        return error_set_field(errp, ERR_INVALID_ARG, "type", "type must be nat or portgroup");
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    if (!t)
        return -1;
    AUTOJSON json_t *items = json_array();
    int r;
    if (!type || !strcmp(type, "nat")) {
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT id, name, subnet FROM nat_networks ORDER BY name", STORE_NO_ARGS, errp);
        if (!st)
            return -1;
        while ((r = store_step(st, errp)) > 0) {
            json_t *hosts = host_names(t, NAT_HOSTS_SQL, store_col_text(st, 0), errp);
            if (!hosts)
                return -1;
            json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", "nat",
                                                   "id", store_col_text(st, 0), "name",
                                                   store_col_text(st, 1), "subnet",
                                                   store_col_text(st, 2), "hosts", hosts));
        }
        if (r < 0)
            return -1;
    }
    if (!type || !strcmp(type, "portgroup")) {
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT p.id, p.name, d.name, p.vlan_id, p.trunk, d.id FROM portgroups p "
               "JOIN dvs d ON d.id = p.dvs_id ORDER BY d.name, p.name", STORE_NO_ARGS, errp);
        if (!st)
            return -1;
        while ((r = store_step(st, errp)) > 0) {
            json_t *hosts = host_names(t, DVS_HOSTS_SQL, store_col_text(st, 5), errp);
            if (!hosts)
                return -1;
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", "portgroup", "id",
                                  store_col_text(st, 0), "name", store_col_text(st, 1), "dvs",
                                  store_col_text(st, 2), "hosts", hosts);
            json_object_set_new(o, "vlan", store_col_is_null(st, 3)
                                               ? json_null()
                                               : json_integer(store_col_int(st, 3)));
            json_object_set_new(o, "trunk", store_col_is_null(st, 4)
                                                ? json_null()
                                                : json_string(store_col_text(st, 4)));
            json_array_append_new(items, o);
        }
        if (r < 0)
            return -1;
    }
    /* NAT networks then port groups, one page of the two lists together. */
    size_t total = json_array_size(items);
    json_t *page = json_array();
    for (size_t i = (size_t) offset; i < total && json_array_size(page) < (size_t) limit; i++)
        json_array_append(page, json_array_get(items, i));
    return api_reply(resp, 200, json_pack("{s:o, s:I, s:I, s:I}", "items", page, "total",
                                          (json_int_t) total, "limit", (json_int_t) limit,
                                          "offset", (json_int_t) offset));
}

const struct api_route api_net_routes[] = {
    { "GET", "/api/v1/nat-networks", API_VIEWER, h_nat_list },
    { "POST", "/api/v1/nat-networks", API_ADMIN, h_nat_create },
    { "GET", "/api/v1/nat-networks/{id}", API_VIEWER, h_nat_get },
    { "DELETE", "/api/v1/nat-networks/{id}", API_ADMIN, h_nat_delete },
    { "GET", "/api/v1/dvs", API_VIEWER, h_dvs_list },
    { "POST", "/api/v1/dvs", API_ADMIN, h_dvs_create },
    { "GET", "/api/v1/dvs/{id}", API_VIEWER, h_dvs_get },
    { "DELETE", "/api/v1/dvs/{id}", API_ADMIN, h_dvs_delete },
    { "GET", "/api/v1/dvs/{id}/portgroups", API_VIEWER, h_pg_list },
    { "POST", "/api/v1/dvs/{id}/portgroups", API_ADMIN, h_pg_create },
    { "DELETE", "/api/v1/dvs/{id}/portgroups/{portgroup}", API_ADMIN, h_pg_delete },
    { "GET", "/api/v1/networks", API_VIEWER, h_networks },
    { NULL, NULL, API_DENY, NULL },
};
