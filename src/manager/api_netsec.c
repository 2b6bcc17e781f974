/* api_netsec.c - REST routes for security groups and VLAN pools, and the
 * upkeep of security groups' member addresses.
 *
 *   GET    /api/v1/security-groups, /api/v1/security-groups/{id}   viewer
 *   POST   /api/v1/security-groups {"name", "description"?, "rules"}   administrator -> 201
 *   PUT    /api/v1/security-groups/{id} {"description"?, "rules"}      administrator -> 200
 *   DELETE /api/v1/security-groups/{id}                                administrator -> 204
 *   GET    /api/v1/vlan-pools, /api/v1/vlan-pools/{id}                 viewer
 *   POST   /api/v1/vlan-pools {"name", "ranges": "100-199,300"}        administrator -> 201
 *   DELETE /api/v1/vlan-pools/{id}                                     administrator -> 204
 *
 * A security group is global: the manager pushes it (PUT
 * /v1/net/security-groups/{name}) to every connected host, all or nothing,
 * and a host that was away gets it at its re-push (resources.c).  Its
 * "remote_ips" - the bound addresses (network.ips) of every NIC in the
 * group, wherever its VM runs - is computed here from the VM
 * specifications, so a rule "from members of group app" holds across hosts;
 * secgroup_refresh() pushes it again when VMs with such NICs come and go.
 * Rules are checked with the agent's own parser (net_sg_from_json()).
 *
 * A VLAN pool is a set of VLAN ids ("100-199,300"); a DVS created with
 * "vlan_pool" carries exactly those VLANs on its uplinks, and its port
 * groups must use VLANs from it.
 *
 * Neighbours: api_net.c (DVSs use pools), resources.c (pushes, re-push),
 * vms.c (calls secgroup_refresh()), net/net_config.h. */
#define LOG_MODULE "api"
#include <string.h>

#include "manager/agent_client.h"
#include "manager/api.h"
#include "manager/events.h"
#include "manager/resources.h"
#include "net/net_config.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

static const struct inv_field sg_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "description", "description", INV_TEXT },
    { "rules", "rules", INV_JSON },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter sg_filters[] = {
    { "name", "name = ?", 1 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_security_groups = {
    "security group", "security_groups", sg_fields, sg_filters, "name", true,
};

static const struct inv_field vp_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "ranges", "ranges", INV_TEXT },
    { "(SELECT COUNT(*) FROM dvs d WHERE d.vlan_pool_id = vlan_pools.id)", "dvs_count", INV_INT },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter vp_filters[] = {
    { "name", "name = ?", 1 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_vlan_pools = {
    "VLAN pool", "vlan_pools", vp_fields, vp_filters, "name", true,
};

/* ---- VLAN ranges -------------------------------------------------------- */

int vlan_ranges_parse(const char *s, const char *field, bool set[4096], struct error **errp)
{
    memset(set, 0, 4096 * sizeof *set);
    if (!s || !*s || strlen(s) > 1024)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "VLAN ranges must be like \"100-199,300\"");
    int last = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p)
            goto bad;
        p = end;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p)
                goto bad;
            p = end;
        }
        if (a < 1 || b > 4094 || a > b)
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "VLAN range %ld-%ld is not within 1..4094 in order", a, b);
        if (a <= last)
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "VLAN ranges must ascend without overlapping (at %ld)", a);
        for (long v = a; v <= b; v++)
            set[v] = true;
        last = (int) b;
        if (*p == ',')
            p++;
        else if (*p)
            goto bad;
    }
    return 0;
bad:
    return error_set_field(errp, ERR_INVALID_ARG, field,
                           "VLAN ranges '%.40s' must be like \"100-199,300\"", s);
}

/* ---- security groups: member addresses and pushes ----------------------- */

/* The addresses bound to NICs in group 'name' across every VM (new array). */
static json_t *member_ips(struct store_txn *t, const char *name, struct error **errp)
{
    json_t *ips = json_array();
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT definition FROM vms WHERE definition LIKE ?",
        STORE_ARGS(SV_TEXT("%security_group%")), errp);
    if (!st) {
        json_decref(ips);
        return NULL;
    }
    int r;
    while ((r = store_step(st, errp)) > 0) {
        AUTOJSON json_t *spec = json_loads(store_col_text(st, 0), 0, NULL);
        size_t i, k;
        const json_t *n, *ip;
        json_array_foreach(json_object_get(spec, "nics"), i, n) {
            const json_t *net = json_object_get(n, "network");
            const char *g = json_string_value(json_object_get(net, "security_group"));
            if (!g || strcmp(g, name))
                continue;
            json_array_foreach(json_object_get(net, "ips"), k, ip) {
                bool dup = false;
                size_t x;
                const json_t *have;
                json_array_foreach(ips, x, have)
                    dup |= json_equal(have, ip);
                if (!dup && json_is_string(ip))
                    json_array_append(ips, (json_t *) ip);
            }
        }
    }
    if (r < 0) {
        json_decref(ips);
        return NULL;
    }
    return ips;
}

json_t *secgroup_agent_body(struct store_txn *t, const char *name, const char *rules_text,
                            struct error **errp)
{
    json_t *rules = rules_text ? json_loads(rules_text, 0, NULL) : NULL;
    json_t *ips = member_ips(t, name, errp);
    if (!ips) {
        json_decref(rules);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "rules", rules ? rules : json_array(), "remote_ips", ips);
}

/* Every host (connected: pushed now; the others at their re-push). */
static int all_hosts(struct store_txn *t, char (*hosts)[UUID_STRLEN + 1], size_t *n,
                     struct error **errp)
{
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT id FROM hosts WHERE state = 'connected' ORDER BY name", STORE_NO_ARGS, errp);
    if (!st)
        return -1;
    int r;
    *n = 0;
    while (*n < RES_MAX_HOSTS && (r = store_step(st, errp)) > 0)
        snprintf(hosts[(*n)++], UUID_STRLEN + 1, "%s", store_col_text(st, 0));
    return 0;
}

static struct res_push *sg_pushes(char (*hosts)[UUID_STRLEN + 1], size_t n, const char *method,
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

void secgroup_refresh(struct manager *m, const char *name)
{
    AUTOERROR struct error *err = NULL;
    char (*hosts)[UUID_STRLEN + 1] = xcalloc(RES_MAX_HOSTS, sizeof *hosts);
    AUTOFREE void *hosts_mem = hosts;
    size_t n = 0;
    AUTOJSON json_t *body = NULL;
    AUTOFREE char *path = NULL;
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, &err);
        AUTOSTMT struct store_stmt *st = t ? store_query(
            t, "SELECT rules FROM security_groups WHERE name = ?", STORE_ARGS(SV_TEXT(name)),
            &err) : NULL;
        if (!st)
            goto fail;
        int r = store_step(st, &err);
        if (r <= 0) {
            if (r < 0)
                goto fail;
            return;     /* not a group of the inventory: the agent's own business */
        }
        body = secgroup_agent_body(t, name, store_col_text(st, 0), &err);
        if (!body || all_hosts(t, hosts, &n, &err) < 0)
            goto fail;
    }
    path = agent_path("/v1/net/security-groups/%s", name);
    for (size_t i = 0; i < n; i++) {
        AUTOERROR struct error *e = NULL;
        AUTOAGENT struct agent_conn *a = agent_connect(m, hosts[i], false, &e);
        if (!a || agent_call(a, "PUT", path, body, NULL, NULL, &e) < 0)
            LOG_RL_WARN("security group '%s': cannot update a host: %s", name, e->message);
    }
    return;
fail:
    LOG_RL_WARN("security group '%s': %s", name, err->message);
}

/* ---- routes ------------------------------------------------------------- */

static int h_sg_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return api_list(c, resp, &inv_security_groups, errp);
}

static int h_sg_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return api_get(c, resp, &inv_security_groups, errp);
}

/* Checks 'rules' with the agent's parser; remote groups must exist. */
static int sg_check(struct store_txn *t, const char *name, const json_t *rules,
                    struct error **errp)
{
    if (!json_is_array(rules))
        return error_set_field(errp, ERR_INVALID_ARG, "rules", "rules must be an array");
    AUTOJSON json_t *b = json_pack("{s:O}", "rules", (json_t *) rules);
    struct net_sg sg;
    if (net_sg_from_json(b, name, "", &sg, errp) < 0)
        return -1;
    int ret = 0;
    for (size_t i = 0; i < sg.n_rules && ret == 0; i++) {
        const char *g = sg.rules[i].remote_group;
        int64_t n = 0;
        if (!g || !strcmp(g, name))
            continue;
        if (store_query_int(t, "SELECT COUNT(*) FROM security_groups WHERE name = ?",
                            STORE_ARGS(SV_TEXT(g)), &n, errp) < 0)
            ret = -1;
        else if (!n) {
            AUTOFREE char *f = xasprintf("rules[%zu].remote_group", i);
            ret = error_set_field(errp, ERR_NOT_FOUND, f, "security group '%s' does not exist",
                                  g);
        }
    }
    net_sg_clear(&sg);
    return ret;
}

/* Pushes group 'name' with 'rules' to every connected host, then runs
 * 'record' in a write transaction; undoes the pushes when that fails. */
static int sg_write(struct api_call *c, const char *name, const json_t *rules,
                    int (*record)(struct store_txn *t, void *arg, struct error **errp),
                    void *arg, struct error **errp)
{
    char (*hosts)[UUID_STRLEN + 1] = xcalloc(RES_MAX_HOSTS, sizeof *hosts);
    AUTOFREE void *hosts_mem = hosts;
    size_t n = 0;
    AUTOJSON json_t *body = NULL;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        AUTOFREE char *text = json_to_string(rules);
        if (!t || !(body = secgroup_agent_body(t, name, text, errp)) ||
            all_hosts(t, hosts, &n, errp) < 0)
            return -1;
    }
    AUTOFREE char *path = agent_path("/v1/net/security-groups/%s", name);
    struct res_push *v = sg_pushes(hosts, n, "PUT", path, body);
    if (res_push_all(c->m, v, n, errp) < 0) {
        res_pushes_free(v, n);
        return error_prefix(errp, "security group '%s'", name), -1;
    }
    int ret = -1;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (t && record(t, arg, errp) == 0 && res_bump_generation(t, hosts, n, errp) == 0 &&
            manager_commit(c->m, steal_pointer(&t), errp) == 0)
            ret = 0;
    }
    if (ret < 0)
        res_push_undo_all(c->m, v, n);
    res_pushes_free(v, n);
    return ret;
}

struct sg_rec {
    const char *id, *name, *desc, *actor;
    const json_t *rules;
    bool create;
};

static int sg_record(struct store_txn *t, void *arg, struct error **errp)
{
    struct sg_rec *r = arg;
    AUTOFREE char *text = json_to_string(r->rules);
    int64_t now = store_now_ms();
    if (r->create) {
        if (store_exec(t, "INSERT INTO security_groups (id, name, description, rules, created_at, "
                          "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                       STORE_ARGS(SV_TEXT(r->id), SV_TEXT(r->name), SV_TEXT(r->desc ?: ""),
                                  SV_TEXT(text), SV_INT(now), SV_INT(now)), errp) < 0)
            return -1;
    } else if (store_exec(t, "UPDATE security_groups SET rules = ?, description = "
                             "COALESCE(?, description), updated_at = ? WHERE id = ?",
                          STORE_ARGS(SV_TEXT(text), SV_TEXT(r->desc), SV_INT(now),
                                     SV_TEXT(r->id)), errp) < 0) {
        return -1;
    }
    AUTOFREE char *msg = xasprintf("security group '%s' %s", r->name,
                                   r->create ? "created" : "updated");
    struct event e = {
        .type = r->create ? "security-group.created" : "security-group.updated",
        .object_type = "security-group", .object_id = r->id, .object_name = r->name,
        .user_name = r->actor, .message = msg,
    };
    return event_append(t, &e, errp) < 0 ? -1 : 0;
}

static int h_sg_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const keys[] = { "name", "description", "rules", NULL };
    const json_t *body = api_body(c, errp);
    const char *name = NULL, *desc = NULL;
    if (!body || api_query_check(c, NULL, errp) < 0 || json_check_keys(body, keys, "", errp) < 0 ||
        json_get_string(body, "name", "", true, &name, errp) < 0 ||
        json_get_string(body, "description", "", false, &desc, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 || net_name_validate(name, "name", errp) < 0)
        return -1;
    if (desc && strlen(desc) > INV_DESCRIPTION_MAX)
        return error_set_field(errp, ERR_INVALID_ARG, "description", "description is too long");
    const json_t *rules = json_object_get(body, "rules");
    AUTOJSON json_t *empty = json_array();
    if (!rules)
        rules = empty;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        int64_t n = 0;
        if (!t || sg_check(t, name, rules, errp) < 0 ||
            store_query_int(t, "SELECT COUNT(*) FROM security_groups WHERE name = ?",
                            STORE_ARGS(SV_TEXT(name)), &n, errp) < 0)
            return -1;
        if (n)
            return error_set_field(errp, ERR_CONFLICT, "name",
                                   "security group '%s' already exists", name);
    }
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    struct sg_rec r = { id, name, desc, api_actor(c), rules, true };
    if (sg_write(c, name, rules, sg_record, &r, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_get(t, &inv_security_groups, id, errp) : NULL;
    return j ? api_reply(resp, 201, j) : -1;
}

static int h_sg_update(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const keys[] = { "description", "rules", NULL };
    const char *ref = api_ref(c, 0, "id", errp);
    const json_t *body = ref ? api_body(c, errp) : NULL;
    const char *desc = NULL;
    if (!body || api_query_check(c, NULL, errp) < 0 || json_check_keys(body, keys, "", errp) < 0 ||
        json_get_string(body, "description", "", false, &desc, errp) < 0)
        return -1;
    const json_t *rules = json_object_get(body, "rules");
    if (!rules)
        return error_set_field(errp, ERR_INVALID_ARG, "rules", "missing field 'rules'");
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        if (!t || inv_resolve(t, &inv_security_groups, ref, NULL, id, errp) < 0)
            return -1;
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT name FROM security_groups WHERE id = ?", STORE_ARGS(SV_TEXT(id)), errp);
        if (!st || store_step(st, errp) <= 0)
            return -1;
        name = xstrdup(store_col_text(st, 0));
        if (sg_check(t, name, rules, errp) < 0)
            return -1;
    }
    struct sg_rec r = { id, name, desc, api_actor(c), rules, false };
    if (sg_write(c, name, rules, sg_record, &r, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_get(t, &inv_security_groups, id, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int h_sg_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    AUTOFREE char *name = NULL;
    char (*hosts)[UUID_STRLEN + 1] = xcalloc(RES_MAX_HOSTS, sizeof *hosts);
    AUTOFREE void *hosts_mem = hosts;
    size_t n = 0;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        if (!t || inv_resolve(t, &inv_security_groups, ref, NULL, id, errp) < 0)
            return -1;
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT name FROM security_groups WHERE id = ?", STORE_ARGS(SV_TEXT(id)), errp);
        if (!st || store_step(st, errp) <= 0)
            return -1;
        name = xstrdup(store_col_text(st, 0));
        /* In use by a VM's NIC, or named by another group's rule: refused. */
        AUTOFREE char *pat = xasprintf("%%\"security_group\":\"%s\"%%", name);
        AUTOFREE char *rpat = xasprintf("%%\"remote_group\":\"%s\"%%", name);
        int64_t used = 0, named = 0;
        if (store_query_int(t, "SELECT COUNT(*) FROM vms WHERE definition LIKE ?",
                            STORE_ARGS(SV_TEXT(pat)), &used, errp) < 0 ||
            store_query_int(t, "SELECT COUNT(*) FROM security_groups WHERE rules LIKE ? AND "
                               "id <> ?", STORE_ARGS(SV_TEXT(rpat), SV_TEXT(id)), &named,
                            errp) < 0)
            return -1;
        if (used)
            return error_set(errp, ERR_CONFLICT, "security group '%s' is used by %lld VM(s)",
                             name, (long long) used);
        if (named)
            return error_set(errp, ERR_CONFLICT, "security group '%s' is named by another "
                             "group's rules", name);
        if (all_hosts(t, hosts, &n, errp) < 0)
            return -1;
    }
    AUTOFREE char *path = agent_path("/v1/net/security-groups/%s", name);
    struct res_push *v = sg_pushes(hosts, n, "DELETE", path, NULL);
    if (res_push_all(c->m, v, n, errp) < 0) {
        res_pushes_free(v, n);
        return error_prefix(errp, "removing security group '%s'", name), -1;
    }
    int ret = -1;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (t && res_bump_generation(t, hosts, n, errp) == 0 &&
            inv_delete(t, &inv_security_groups, id, api_actor(c), errp) == 0 &&
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

static int h_vp_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return api_list(c, resp, &inv_vlan_pools, errp);
}

static int h_vp_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    return api_get(c, resp, &inv_vlan_pools, errp);
}

static int h_vp_create(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const keys[] = { "name", "ranges", NULL };
    const json_t *body = api_body(c, errp);
    const char *name = NULL, *ranges = NULL;
    bool set[4096];
    if (!body || api_query_check(c, NULL, errp) < 0 || json_check_keys(body, keys, "", errp) < 0 ||
        json_get_string(body, "name", "", true, &name, errp) < 0 ||
        json_get_string(body, "ranges", "", true, &ranges, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 ||
        vlan_ranges_parse(ranges, "ranges", set, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    int64_t now = store_now_ms();
    AUTOFREE char *msg = xasprintf("VLAN pool '%s' (%s) created", name, ranges);
    struct event e = {
        .type = "vlan-pool.created", .object_type = "vlan-pool", .object_id = id,
        .object_name = name, .user_name = api_actor(c), .message = msg,
    };
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    if (store_exec(t, "INSERT INTO vlan_pools (id, name, ranges, created_at, updated_at) "
                      "VALUES (?, ?, ?, ?, ?)",
                   STORE_ARGS(SV_TEXT(id), SV_TEXT(name), SV_TEXT(ranges), SV_INT(now),
                              SV_INT(now)), errp) < 0) {
        if (*errp && (*errp)->code == ERR_CONFLICT) {
            error_free(steal_pointer(errp));
            return error_set_field(errp, ERR_CONFLICT, "name", "VLAN pool '%s' already exists",
                                   name);
        }
        return -1;
    }
    AUTOJSON json_t *j = NULL;
    if (event_append(t, &e, errp) < 0 || !(j = inv_get(t, &inv_vlan_pools, id, errp)) ||
        manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    return api_reply(resp, 201, steal_pointer(&j));
}

static int h_vp_delete(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t || inv_delete(t, &inv_vlan_pools, ref, api_actor(c), errp) < 0 ||
        manager_commit(c->m, steal_pointer(&t), errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

const struct api_route api_netsec_routes[] = {
    { "GET", "/api/v1/security-groups", API_VIEWER, h_sg_list },
    { "POST", "/api/v1/security-groups", API_ADMIN, h_sg_create },
    { "GET", "/api/v1/security-groups/{id}", API_VIEWER, h_sg_get },
    { "PUT", "/api/v1/security-groups/{id}", API_ADMIN, h_sg_update },
    { "DELETE", "/api/v1/security-groups/{id}", API_ADMIN, h_sg_delete },
    { "GET", "/api/v1/vlan-pools", API_VIEWER, h_vp_list },
    { "POST", "/api/v1/vlan-pools", API_ADMIN, h_vp_create },
    { "GET", "/api/v1/vlan-pools/{id}", API_VIEWER, h_vp_get },
    { "DELETE", "/api/v1/vlan-pools/{id}", API_ADMIN, h_vp_delete },
    { NULL, NULL, API_DENY, NULL },
};
