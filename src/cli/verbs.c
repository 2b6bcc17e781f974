/* verbs.c - the verbs of `strata` and the REST request each one makes.
 *
 * One table lists every verb: its positional arguments, its options, and
 * either a *plan* function (pure: command line -> method, escaped path, JSON
 * body and how to show the answer, see 'struct cli_request') or a *run*
 * function (run.c) for verbs that make several calls.  Generic planners
 * (list, show, delete, VM action) read the verb's 'route', in which each
 * "{}" is replaced by the next positional argument, checked as a name (or a
 * UUID) and percent-escaped.  Values that go into a path are always checked
 * and escaped here, never concatenated raw.
 *
 * Neighbours: cli.h, args.c (parsing against this table), client.c
 * (carrying the plans out), run.c, format.c (the column types). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "http/http_client.h"
#include "util/json_util.h"
#include "util/mem.h"
#include "util/uuid.h"

/* ---- columns ------------------------------------------------------------- */

static const struct cli_col vm_cols[] = {
    { "NAME", "name", COL_TEXT }, { "STATE", "state", COL_TEXT },
    { "HOST", "host_name", COL_TEXT }, { "CLUSTER", "cluster_name", COL_TEXT },
    { "VCPUS", "definition.vcpus", COL_VM_VCPUS },
    { "MEMORY", "definition.memory", COL_VM_MEMORY }, { NULL, NULL, 0 },
};
static const struct cli_col vm_fields[] = {
    { "Name", "name", COL_TEXT }, { "UUID", "id", COL_TEXT }, { "State", "state", COL_TEXT },
    { "Reason", "reason", COL_TEXT }, { "Host", "host_name", COL_TEXT },
    { "Cluster", "cluster_name", COL_TEXT }, { "Template", "template_id", COL_TEXT },
    { "vCPUs", "definition.vcpus", COL_VM_VCPUS },
    { "Memory", "definition.memory", COL_VM_MEMORY }, { "HA", "ha", COL_BOOL },
    { "Created", "created_at", COL_TEXT }, { "Updated", "updated_at", COL_TEXT },
    { NULL, NULL, 0 },
};
static const struct cli_col snapshot_cols[] = {
    { "NAME", "name", COL_TEXT }, { "KIND", "kind", COL_TEXT },
    { "CREATED", "created_at", COL_TEXT }, { "CURRENT", "current", COL_BOOL },
    { "DESCRIPTION", "description", COL_TEXT }, { NULL, NULL, 0 },
};
static const struct cli_col template_cols[] = {
    { "NAME", "name", COL_TEXT }, { "CLUSTER", "cluster_name", COL_TEXT },
    { "DATASTORE", "datastore_name", COL_TEXT }, { "VMS", "vm_count", COL_TEXT },
    { "CREATED", "created_at", COL_TEXT }, { "DESCRIPTION", "description", COL_TEXT },
    { NULL, NULL, 0 },
};
static const struct cli_col template_fields[] = {
    { "Name", "name", COL_TEXT }, { "UUID", "id", COL_TEXT },
    { "Cluster", "cluster_name", COL_TEXT }, { "Datastore", "datastore_name", COL_TEXT },
    { "vCPUs", "definition.vcpus", COL_VM_VCPUS },
    { "Memory", "definition.memory", COL_VM_MEMORY }, { "VMs", "vm_count", COL_TEXT },
    { "Description", "description", COL_TEXT }, { "Created", "created_at", COL_TEXT },
    { NULL, NULL, 0 },
};
static const struct cli_col pool_cols[] = {
    { "NAME", "name", COL_TEXT }, { "KIND", "kind", COL_TEXT }, { "STATE", "state", COL_TEXT },
    { "CAPACITY", "capacity_bytes", COL_BYTES }, { "FREE", "free_bytes", COL_BYTES },
    { "PROVISIONED", "provisioned_bytes", COL_BYTES }, { "HOSTS", "hosts", COL_HOSTS },
    { NULL, NULL, 0 },
};
static const struct cli_col pool_fields[] = {
    { "Name", "name", COL_TEXT }, { "UUID", "id", COL_TEXT }, { "Kind", "kind", COL_TEXT },
    { "State", "state", COL_TEXT }, { "Capacity", "capacity_bytes", COL_BYTES },
    { "Free", "free_bytes", COL_BYTES }, { "Provisioned", "provisioned_bytes", COL_BYTES },
    { "Hosts", "hosts", COL_HOSTS }, { NULL, NULL, 0 },
};
static const struct cli_col vol_cols[] = {
    { "NAME", "name", COL_TEXT }, { "FORMAT", "format", COL_TEXT },
    { "PROVISIONING", "provisioning", COL_TEXT }, { "CAPACITY", "capacity", COL_BYTES },
    { "ALLOCATION", "allocation", COL_BYTES }, { "STATE", "state", COL_TEXT },
    { "BASE", "base", COL_TEXT }, { NULL, NULL, 0 },
};
static const struct cli_col net_cols[] = {
    { "NAME", "name", COL_TEXT }, { "TYPE", "type", COL_TEXT }, { "DVS", "dvs", COL_TEXT },
    { "VLAN", "vlan", COL_TEXT }, { "SUBNET", "subnet", COL_TEXT },
    { "HOSTS", "hosts", COL_HOSTS }, { NULL, NULL, 0 },
};
static const struct cli_col secgroup_cols[] = {
    { "NAME", "name", COL_TEXT }, { "DESCRIPTION", "description", COL_TEXT },
    { "CREATED", "created_at", COL_TEXT }, { NULL, NULL, 0 },
};
static const struct cli_col vlan_pool_cols[] = {
    { "NAME", "name", COL_TEXT }, { "RANGES", "ranges", COL_TEXT },
    { "DVS", "dvs_count", COL_TEXT }, { NULL, NULL, 0 },
};
static const struct cli_col host_cols[] = {
    { "NAME", "name", COL_TEXT }, { "STATE", "state", COL_TEXT },
    { "CLUSTER", "cluster_name", COL_TEXT }, { "ADDRESS", "address", COL_TEXT },
    { "PORT", "port", COL_TEXT }, { "LAST SEEN", "last_seen_at", COL_TEXT },
    { NULL, NULL, 0 },
};
static const struct cli_col host_fields[] = {
    { "Name", "name", COL_TEXT }, { "UUID", "id", COL_TEXT }, { "State", "state", COL_TEXT },
    { "Cluster", "cluster_name", COL_TEXT }, { "Address", "address", COL_TEXT },
    { "Port", "port", COL_TEXT }, { "Desired generation", "desired_generation", COL_TEXT },
    { "Applied generation", "applied_generation", COL_TEXT },
    { "Last seen", "last_seen_at", COL_TEXT }, { "Created", "created_at", COL_TEXT },
    { NULL, NULL, 0 },
};
static const struct cli_col cluster_cols[] = {
    { "NAME", "name", COL_TEXT }, { "SITE", "site_name", COL_TEXT },
    { "POLICY", "startup_policy", COL_TEXT }, { "OVERCOMMIT", "memory_overcommit", COL_BOOL },
    { "HOSTS", "host_count", COL_TEXT }, { "DESCRIPTION", "description", COL_TEXT },
    { NULL, NULL, 0 },
};
static const struct cli_col cluster_fields[] = {
    { "Name", "name", COL_TEXT }, { "UUID", "id", COL_TEXT }, { "Site", "site_name", COL_TEXT },
    { "Startup policy", "startup_policy", COL_TEXT },
    { "Memory overcommit", "memory_overcommit", COL_BOOL }, { "Hosts", "host_count", COL_TEXT },
    { "Description", "description", COL_TEXT }, { "Created", "created_at", COL_TEXT },
    { NULL, NULL, 0 },
};
static const struct cli_col site_cols[] = {
    { "NAME", "name", COL_TEXT }, { "CLUSTERS", "cluster_count", COL_TEXT },
    { "DESCRIPTION", "description", COL_TEXT }, { NULL, NULL, 0 },
};
static const struct cli_col task_cols[] = {
    { "ID", "id", COL_TEXT }, { "KIND", "kind", COL_TEXT }, { "STATE", "state", COL_TEXT },
    { "PROGRESS", "progress", COL_PERCENT }, { "OBJECT", "object_id", COL_TEXT },
    { "USER", "user_name", COL_TEXT }, { "CREATED", "created_at", COL_TEXT },
    { NULL, NULL, 0 },
};
static const struct cli_col task_fields[] = {
    { "ID", "id", COL_TEXT }, { "Kind", "kind", COL_TEXT }, { "State", "state", COL_TEXT },
    { "Progress", "progress", COL_PERCENT }, { "Object type", "object_type", COL_TEXT },
    { "Object", "object_id", COL_TEXT }, { "User", "user_name", COL_TEXT },
    { "Created", "created_at", COL_TEXT }, { "Started", "started_at", COL_TEXT },
    { "Finished", "finished_at", COL_TEXT }, { "Error", "error", COL_ERROR },
    { NULL, NULL, 0 },
};
static const struct cli_col user_cols[] = {
    { "NAME", "name", COL_TEXT }, { "ROLE", "role", COL_TEXT },
    { "ENABLED", "enabled", COL_BOOL }, { "CREATED", "created_at", COL_TEXT },
    { NULL, NULL, 0 },
};
static const struct cli_col token_cols[] = {
    { "ID", "id", COL_TEXT }, { "NAME", "name", COL_TEXT }, { "USER", "user_name", COL_TEXT },
    { "KIND", "kind", COL_TEXT }, { "EXPIRES", "expires_at", COL_TEXT },
    { "LAST USED", "last_used_at", COL_TEXT }, { NULL, NULL, 0 },
};
static const struct cli_col join_token_cols[] = {
    { "ID", "id", COL_TEXT }, { "CLUSTER", "cluster_name", COL_TEXT },
    { "CREATED BY", "created_by", COL_TEXT }, { "EXPIRES", "expires_at", COL_TEXT },
    { "USED", "used_at", COL_TEXT }, { NULL, NULL, 0 },
};

/* ---- helpers ------------------------------------------------------------- */

/* Word 'i' of the verb's synopsis, lower-cased unless an acronym: names the
 * argument in errors ("VM", "cluster", "snapshot"). */
static void arg_name(const struct cli_args *a, size_t i, char *out, size_t n)
{
    const char *s = a->verb->synopsis ? a->verb->synopsis : "";
    for (size_t k = 0; k < i && *s; k++) {
        s += strcspn(s, " ");
        s += strspn(s, " ");
    }
    while (*s == '[')
        s++;
    size_t len = strcspn(s, " ]");
    if (len == 0 || len >= n) {
        snprintf(out, n, "argument");
        return;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    if (len > 3 && strcmp(out, "CDROM"))
        for (char *p = out; *p; p++)
            *p = (char) (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
}

/* Replaces each "{}" in 'route' with the next positional argument (from
 * 'first'), checked as a name (or a UUID with 'uuid') and escaped. */
static char *fill_route(const struct cli_args *a, const char *route, size_t first, bool uuid,
                        struct error **errp)
{
    size_t cap = strlen(route) + 1, len = 0;
    char *out = xmalloc(cap);
    size_t k = first;
    for (const char *p = route; *p;) {
        if (p[0] == '{' && p[1] == '}') {
            char what[32];
            arg_name(a, k, what, sizeof what);
            const char *v = k < a->npos ? a->pos[k] : NULL;
            if ((uuid ? cli_check_uuid(v, what, errp) : cli_check_name(v, what, errp)) < 0) {
                free(out);
                return NULL;
            }
            AUTOFREE char *esc = http_client_escape(v);
            size_t n = strlen(esc);
            cap += n;
            out = xrealloc(out, cap);
            memcpy(out + len, esc, n);
            len += n;
            k++;
            p += 2;
            continue;
        }
        out[len++] = *p++;
    }
    out[len] = '\0';
    return out;
}

static char *label2(const struct cli_args *a)
{
    return a->npos ? xasprintf("%s %s", a->verb->name, a->pos[0]) : xstrdup(a->verb->name);
}

/* Appends "?k=v&..." for every valued option of the verb given (the
 * option's name with '-' as '_'), values escaped. */
static void add_query(const struct cli_args *a, char **path, const char *const *skip)
{
    for (size_t i = 0; i < a->nopts; i++) {
        if (!a->opts[i].value)
            continue;
        bool skipped = false;
        for (size_t s = 0; skip && skip[s]; s++)
            if (!strcmp(skip[s], a->opts[i].name))
                skipped = true;
        if (skipped)
            continue;
        AUTOFREE char *key = xstrdup(a->opts[i].name);
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        AUTOFREE char *v = http_client_escape(a->opts[i].value);
        char *np = xasprintf("%s%c%s=%s", *path, strchr(*path, '?') ? '&' : '?', key, v);
        free(*path);
        *path = np;
    }
}

static int check_limit(const struct cli_args *a, struct error **errp)
{
    unsigned long long n;
    const char *l = cli_opt(a, "limit");
    return l ? cli_parse_uint(l, 1, 1000, "--limit", &n, errp) : 0;
}

static int check_choice(const char *v, const char *opt, const char *const *choices,
                        struct error **errp)
{
    if (!v)
        return 0;
    for (size_t i = 0; choices[i]; i++)
        if (!strcmp(v, choices[i]))
            return 0;
    return error_set(errp, ERR_INVALID_ARG, "%s '%s' is not one of the accepted values", opt, v);
}

/* ---- generic planners ---------------------------------------------------- */

static int plan_list(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    if (check_limit(a, errp) < 0)
        return -1;
    rq->method = "GET";
    rq->kind = RQ_LIST;
    rq->cols = a->verb->cols;
    rq->path = fill_route(a, a->verb->route, 0, false, errp);
    if (!rq->path)
        return -1;
    add_query(a, &rq->path, NULL);
    rq->paged = !strchr(a->verb->route, '{') && !cli_opt(a, "limit");
    return 0;
}

static int plan_vm_list(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    if (plan_list(a, rq, errp) < 0)
        return -1;
    rq->only_active = !cli_flag(a, "all") && !cli_opt(a, "state");
    return 0;
}

static int plan_show(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    rq->method = "GET";
    rq->kind = RQ_SHOW;
    rq->cols = a->verb->cols;
    rq->path = fill_route(a, a->verb->route, 0, false, errp);
    return rq->path ? 0 : -1;
}

static int plan_show_uuid(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    rq->method = "GET";
    rq->kind = RQ_SHOW;
    rq->cols = a->verb->cols;
    rq->path = fill_route(a, a->verb->route, 0, true, errp);
    return rq->path ? 0 : -1;
}

/* DELETE answered 204 at once. */
static int plan_delete(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    bool uuid = strstr(a->verb->route, "tokens") != NULL;
    rq->method = "DELETE";
    rq->kind = RQ_WRITE;
    rq->path = fill_route(a, a->verb->route, 0, uuid, errp);
    if (!rq->path)
        return -1;
    rq->done = xasprintf("%s: deleted", a->pos[0]);
    return 0;
}

/* A POST or DELETE that answers 202 with a task; 'body' is taken. */
static int plan_task(const struct cli_args *a, struct cli_request *rq, const char *method,
                     const char *route, json_t *body, struct error **errp)
{
    rq->method = method;
    rq->kind = RQ_TASK;
    rq->body = body;
    rq->label = label2(a);
    rq->path = fill_route(a, route, 0, false, errp);
    return rq->path ? 0 : -1;
}

/* POST /api/v1/vms/{vm}/<route>: start, destroy, reboot, suspend, ... */
static int plan_vm_action(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    json_t *body = NULL;
    const char *t = cli_opt(a, "timeout");
    if (t) {
        unsigned long long s;
        if (cli_parse_uint(t, 1, 3600, "--timeout", &s, errp) < 0)
            return -1;
        body = json_pack("{s:I}", "timeout_s", (json_int_t) s);
    }
    AUTOFREE char *route = xasprintf("/api/v1/vms/{}/%s", a->verb->route);
    return plan_task(a, rq, "POST", route, body, errp);
}

/* DELETE answered 202 with a task (templates, disks, NICs, snapshots). */
static int plan_delete_task(const struct cli_args *a, struct cli_request *rq,
                            struct error **errp)
{
    return plan_task(a, rq, "DELETE", a->verb->route, NULL, errp);
}

/* ---- VMs ----------------------------------------------------------------- */

static int plan_setmem(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    unsigned long long mib;
    if (cli_parse_mib(a->pos[1], "memory size", &mib, errp) < 0)
        return -1;
    return plan_task(a, rq, "POST", "/api/v1/vms/{}/memory",
                     json_pack("{s:I}", "mib", (json_int_t) mib), errp);
}

static int plan_setvcpus(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    unsigned long long n;
    if (cli_parse_uint(a->pos[1], 1, 4096, "vCPU count", &n, errp) < 0)
        return -1;
    return plan_task(a, rq, "POST", "/api/v1/vms/{}/vcpus",
                     json_pack("{s:I}", "count", (json_int_t) n), errp);
}

static const char *const provisioning_values[] = {
    "thin", "thick-lazy", "thick-eager", "differencing", NULL,
};
static const char *const format_values[] = { "qcow2", "raw", NULL };

/* Sets "key" from a size string (bytes by default). */
static int set_size(json_t *o, const char *key, const char *v, const char *what,
                    struct error **errp)
{
    unsigned long long n;
    if (cli_parse_size(v, 1, what, &n, errp) < 0)
        return -1;
    if (n == 0)
        return error_set(errp, ERR_INVALID_ARG, "%s '%s' must be more than 0", what, v);
    if (n > (1ULL << 53))
        return error_set(errp, ERR_INVALID_ARG, "%s '%s' is too large", what, v);
    json_object_set_new(o, key, json_integer((json_int_t) n));
    return 0;
}

/* One disk key=value into the spec 'o'. */
static int disk_key(json_t *o, const char *key, const char *v, struct error **errp)
{
    static const char *const text_keys[] = {
        "datastore", "volume", "base", "id", "bus", "cache", "mode", "serial", NULL,
    };
    static const char *const flags[] = { "readonly", "shared", NULL };
    for (size_t i = 0; flags[i]; i++) {
        if (!strcmp(key, flags[i])) {
            if (v && strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "on") &&
                strcmp(v, "off"))
                return error_set(errp, ERR_INVALID_ARG, "disk '%s' must be on or off", key);
            json_object_set_new(o, key, json_boolean(!v || !strcmp(v, "true") ||
                                                     !strcmp(v, "on")));
            return 0;
        }
    }
    if (!v || !*v)
        return error_set(errp, ERR_INVALID_ARG, "disk '%s' needs a value", key);
    if (!strcmp(key, "size"))
        return set_size(o, "size", v, "disk size", errp);
    if (!strcmp(key, "format")) {
        if (check_choice(v, "disk format", format_values, errp) < 0)
            return -1;
        json_object_set_new(o, "format", json_string(v));
        return 0;
    }
    if (!strcmp(key, "provisioning") || !strcmp(key, "allocation")) {
        if (check_choice(v, "disk provisioning", provisioning_values, errp) < 0)
            return -1;
        json_object_set_new(o, "provisioning", json_string(v));
        return 0;
    }
    for (size_t i = 0; text_keys[i]; i++) {
        if (!strcmp(key, text_keys[i])) {
            if (cli_check_name(v, key, errp) < 0)
                return -1;
            json_object_set_new(o, key, json_string(v));
            return 0;
        }
    }
    return error_set(errp, ERR_INVALID_ARG,
                     "unknown disk key '%s' (datastore, size, volume, base, format, "
                     "provisioning, bus, cache, mode, serial, id, readonly, shared)", key);
}

/* Splits "k=v,k=v,flag" and calls 'fn' for each pair; duplicate keys refused. */
static int split_kv(const char *s, json_t *o,
                    int (*fn)(json_t *o, const char *k, const char *v, struct error **errp),
                    const char *what, struct error **errp)
{
    AUTOFREE char *copy = xstrdup(s);
    AUTOJSON json_t *seen = json_object();
    char *save = NULL;
    if (!*copy)
        return error_set(errp, ERR_INVALID_ARG, "%s: empty specification", what);
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        if (json_object_get(seen, tok))
            return error_set(errp, ERR_INVALID_ARG, "%s: '%s' given twice", what, tok);
        json_object_set_new(seen, tok, json_true());
        if (fn(o, tok, eq ? eq + 1 : NULL, errp) < 0)
            return -1;
    }
    return 0;
}

json_t *cli_disk_spec(const char *s, struct error **errp)
{
    AUTOJSON json_t *o = json_object();
    if (split_kv(s, o, disk_key, "--disk", errp) < 0)
        return NULL;
    return steal_pointer(&o);
}

static int nic_key(json_t *o, const char *key, const char *v, struct error **errp)
{
    if (!v || !*v)
        return error_set(errp, ERR_INVALID_ARG, "NIC '%s' needs a value", key);
    json_t *net = json_object_get(o, "network");
    if (!strcmp(key, "nat") || !strcmp(key, "dvs") || !strcmp(key, "portgroup")) {
        if (cli_check_name(v, key, errp) < 0)
            return -1;
        if (!net)
            json_object_set_new(o, "network", net = json_object());
        json_object_set_new(net, key, json_string(v));
        return 0;
    }
    if (!strcmp(key, "id") || !strcmp(key, "model")) {
        if (cli_check_name(v, key, errp) < 0)
            return -1;
        json_object_set_new(o, key, json_string(v));
        return 0;
    }
    if (!strcmp(key, "mac")) {
        bool ok = strlen(v) == 17;
        for (size_t i = 0; ok && i < 17; i++)
            ok = i % 3 == 2 ? v[i] == ':' : strchr("0123456789abcdefABCDEF", v[i]) != NULL;
        if (!ok)
            return error_set(errp, ERR_INVALID_ARG, "NIC mac '%s' is not a MAC address", v);
        json_object_set_new(o, key, json_string(v));
        return 0;
    }
    return error_set(errp, ERR_INVALID_ARG,
                     "unknown NIC key '%s' (nat, dvs, portgroup, mac, model, id)", key);
}

json_t *cli_nic_spec(const char *s, struct error **errp)
{
    AUTOJSON json_t *o = json_object();
    if (split_kv(s, o, nic_key, "--nic", errp) < 0)
        return NULL;
    json_t *net = json_object_get(o, "network");
    if (json_object_get(net, "nat") && json_object_get(net, "dvs"))
        return error_set(errp, ERR_INVALID_ARG, "--nic: 'nat' and 'dvs' exclude each other"),
               NULL;
    if (json_object_get(net, "dvs") && !json_object_get(net, "portgroup"))
        return error_set(errp, ERR_INVALID_ARG, "--nic: 'dvs' needs 'portgroup'"), NULL;
    if (json_object_get(net, "portgroup") && !json_object_get(net, "dvs"))
        return error_set(errp, ERR_INVALID_ARG, "--nic: 'portgroup' needs 'dvs'"), NULL;
    return steal_pointer(&o);
}

static int plan_attach_disk(const struct cli_args *a, struct cli_request *rq,
                            struct error **errp)
{
    static const char *const keys[] = {
        "datastore", "size", "volume", "base", "format", "provisioning", "allocation", "bus",
        "cache", "id", NULL,
    };
    AUTOJSON json_t *o = json_object();
    for (size_t i = 0; keys[i]; i++) {
        const char *v = cli_opt(a, keys[i]);
        if (v && disk_key(o, keys[i], v, errp) < 0)
            return -1;
    }
    if (cli_flag(a, "readonly"))
        json_object_set_new(o, "readonly", json_true());
    if (cli_flag(a, "shared"))
        json_object_set_new(o, "shared", json_true());
    if (!json_object_get(o, "datastore"))
        return error_set(errp, ERR_INVALID_ARG, "attach-disk: --datastore is required");
    int n = !!json_object_get(o, "size") + !!json_object_get(o, "volume") +
            !!json_object_get(o, "base");
    if (n != 1)
        return error_set(errp, ERR_INVALID_ARG,
                         "attach-disk: give exactly one of --size, --volume and --base");
    return plan_task(a, rq, "POST", "/api/v1/vms/{}/disks", steal_pointer(&o), errp);
}

static int plan_attach_interface(const struct cli_args *a, struct cli_request *rq,
                                 struct error **errp)
{
    static const char *const keys[] = { "nat", "dvs", "portgroup", "mac", "model", "id", NULL };
    AUTOJSON json_t *o = json_object();
    for (size_t i = 0; keys[i]; i++) {
        const char *v = cli_opt(a, keys[i]);
        if (v && nic_key(o, keys[i], v, errp) < 0)
            return -1;
    }
    json_t *net = json_object_get(o, "network");
    if (!net)
        return error_set(errp, ERR_INVALID_ARG,
                         "attach-interface: give --nat NAME or --dvs NAME --portgroup NAME");
    if (json_object_get(net, "nat") && json_object_get(net, "dvs"))
        return error_set(errp, ERR_INVALID_ARG, "attach-interface: --nat and --dvs exclude "
                         "each other");
    if (!!json_object_get(net, "dvs") != !!json_object_get(net, "portgroup"))
        return error_set(errp, ERR_INVALID_ARG,
                         "attach-interface: --dvs and --portgroup go together");
    return plan_task(a, rq, "POST", "/api/v1/vms/{}/nics", steal_pointer(&o), errp);
}

static bool path_ok(const char *p)
{
    if (!p || p[0] != '/')
        return false;
    for (; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int plan_change_media(const struct cli_args *a, struct cli_request *rq,
                             struct error **errp)
{
    bool eject = cli_flag(a, "eject");
    const char *path = a->npos > 2 ? a->pos[2] : NULL;
    if (eject == (path != NULL))
        return error_set(errp, ERR_INVALID_ARG, "change-media: give either a PATH or --eject");
    if (path && !path_ok(path))
        return error_set(errp, ERR_INVALID_ARG, "change-media: '%s' is not an absolute path",
                         path);
    json_t *body = json_object();
    json_object_set_new(body, "path", path ? json_string(path) : json_null());
    return plan_task(a, rq, "POST", "/api/v1/vms/{}/cdroms/{}/media", body, errp);
}

static const char *const snapshot_kinds[] = { "disk-only", "consistent", "memory", NULL };

static int plan_snapshot_create(const struct cli_args *a, struct cli_request *rq,
                                struct error **errp)
{
    const char *name = a->npos > 1 ? a->pos[1] : NULL;
    const char *opt = cli_opt(a, "name");
    if (name && opt)
        return error_set(errp, ERR_INVALID_ARG, "snapshot-create-as: the name is given twice");
    name = name ? name : opt;
    if (!name)
        return error_set(errp, ERR_INVALID_ARG, "snapshot-create-as: a snapshot NAME is needed");
    if (cli_check_name(name, "snapshot", errp) < 0 ||
        check_choice(cli_opt(a, "kind"), "--kind", snapshot_kinds, errp) < 0)
        return -1;
    json_t *body = json_pack("{s:s}", "name", name);
    if (cli_opt(a, "kind"))
        json_object_set_new(body, "kind", json_string(cli_opt(a, "kind")));
    if (cli_opt(a, "description"))
        json_object_set_new(body, "description", json_string(cli_opt(a, "description")));
    return plan_task(a, rq, "POST", "/api/v1/vms/{}/snapshots", body, errp);
}

static int plan_snapshot_revert(const struct cli_args *a, struct cli_request *rq,
                                struct error **errp)
{
    json_t *body = json_object();
    if (cli_flag(a, "start"))
        json_object_set_new(body, "start", json_true());
    return plan_task(a, rq, "POST", "/api/v1/vms/{}/snapshots/{}/revert", body, errp);
}

static int plan_undefine(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    return plan_task(a, rq, "DELETE",
                     cli_flag(a, "keep-disks") ? "/api/v1/vms/{}?keep_disks=true"
                                               : "/api/v1/vms/{}", NULL, errp);
}

static int plan_clone(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    if (cli_check_name(a->pos[1], "new VM name", errp) < 0)
        return -1;
    json_t *body = json_pack("{s:s}", "name", a->pos[1]);
    if (cli_flag(a, "start"))
        json_object_set_new(body, "start", json_true());
    return plan_task(a, rq, "POST", "/api/v1/vms/{}/clone", body, errp);
}

static int plan_template_create(const struct cli_args *a, struct cli_request *rq,
                                struct error **errp)
{
    json_t *body = json_object();
    const char *name = cli_opt(a, "name");
    if (name) {
        if (cli_check_name(name, "template", errp) < 0) {
            json_decref(body);
            return -1;
        }
        json_object_set_new(body, "name", json_string(name));
    }
    if (cli_opt(a, "description"))
        json_object_set_new(body, "description", json_string(cli_opt(a, "description")));
    return plan_task(a, rq, "POST", "/api/v1/vms/{}/template", body, errp);
}

static int plan_template_to_vm(const struct cli_args *a, struct cli_request *rq,
                               struct error **errp)
{
    json_t *body = json_object();
    const char *name = cli_opt(a, "name");
    if (name) {
        if (cli_check_name(name, "VM", errp) < 0) {
            json_decref(body);
            return -1;
        }
        json_object_set_new(body, "name", json_string(name));
    }
    return plan_task(a, rq, "POST", "/api/v1/templates/{}/vm", body, errp);
}

static int plan_deploy(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    bool linked = cli_flag(a, "linked"), full = cli_flag(a, "full");
    if (linked && full)
        return error_set(errp, ERR_INVALID_ARG, "deploy: --linked and --full exclude each other");
    if (cli_check_name(a->pos[0], "template", errp) < 0 ||
        cli_check_name(a->pos[1], "VM", errp) < 0)
        return -1;
    json_t *body = json_pack("{s:s, s:s}", "name", a->pos[1], "template", a->pos[0]);
    if (linked || full)
        json_object_set_new(body, "clone", json_string(linked ? "linked" : "full"));
    static const char *const refs[] = { "cluster", "host", NULL };
    for (size_t i = 0; refs[i]; i++) {
        const char *v = cli_opt(a, refs[i]);
        if (v && cli_check_name(v, refs[i], errp) < 0) {
            json_decref(body);
            return -1;
        }
        if (v)
            json_object_set_new(body, refs[i], json_string(v));
    }
    if (cli_flag(a, "start"))
        json_object_set_new(body, "start", json_true());
    rq->method = "POST";
    rq->kind = RQ_TASK;
    rq->body = body;
    rq->label = xasprintf("deploy %s", a->pos[1]);
    rq->path = xstrdup("/api/v1/vms");
    return 0;
}

json_t *cli_vm_spec(const struct cli_args *a, const json_t *base, struct error **errp)
{
    AUTOJSON json_t *o = base ? json_deep_copy(base) : json_object();
    if (!json_is_object(o))
        return error_set(errp, ERR_INVALID_ARG, "create: the VM file must hold a JSON object"),
               NULL;
    const char *v;
    static const char *const refs[] = { "name", "cluster", "host", NULL };
    for (size_t i = 0; refs[i]; i++) {
        if ((v = cli_opt(a, refs[i]))) {
            if (cli_check_name(v, refs[i], errp) < 0)
                return NULL;
            json_object_set_new(o, refs[i], json_string(v));
        }
    }
    if ((v = cli_opt(a, "description")))
        json_object_set_new(o, "description", json_string(v));
    if ((v = cli_opt(a, "machine")))
        json_object_set_new(o, "machine", json_string(v));
    if ((v = cli_opt(a, "memory"))) {
        unsigned long long mib;
        if (cli_parse_mib(v, "--memory", &mib, errp) < 0)
            return NULL;
        json_object_set_new(o, "memory", json_integer((json_int_t) mib));
    }
    if ((v = cli_opt(a, "vcpus"))) {
        unsigned long long n;
        if (cli_parse_uint(v, 1, 4096, "--vcpus", &n, errp) < 0)
            return NULL;
        json_object_set_new(o, "vcpus", json_integer((json_int_t) n));
    }
    size_t it = 0;
    while ((v = cli_opt_next(a, "disk", &it))) {
        json_t *d = cli_disk_spec(v, errp);
        if (!d)
            return NULL;
        json_t *arr = json_object_get(o, "disks");
        if (!json_is_array(arr))
            json_object_set_new(o, "disks", arr = json_array());
        json_array_append_new(arr, d);
    }
    it = 0;
    while ((v = cli_opt_next(a, "nic", &it))) {
        json_t *n = cli_nic_spec(v, errp);
        if (!n)
            return NULL;
        json_t *arr = json_object_get(o, "nics");
        if (!json_is_array(arr))
            json_object_set_new(o, "nics", arr = json_array());
        json_array_append_new(arr, n);
    }
    it = 0;
    while ((v = cli_opt_next(a, "cdrom", &it))) {
        json_t *arr = json_object_get(o, "cdroms");
        if (!json_is_array(arr))
            json_object_set_new(o, "cdroms", arr = json_array());
        AUTOFREE char *id = xasprintf("cd%zu", json_array_size(arr));
        if (!strcmp(v, "empty")) {
            json_array_append_new(arr, json_pack("{s:s, s:n}", "id", id, "path"));
        } else if (path_ok(v)) {
            json_array_append_new(arr, json_pack("{s:s, s:s}", "id", id, "path", v));
        } else {
            return error_set(errp, ERR_INVALID_ARG,
                             "--cdrom '%s' is not an absolute path (or 'empty')", v), NULL;
        }
    }
    static const char *const boot_keys[] = { "kernel", "initrd", "cmdline", NULL };
    for (size_t i = 0; boot_keys[i]; i++) {
        if (!(v = cli_opt(a, boot_keys[i])))
            continue;
        if (i < 2 && !path_ok(v))
            return error_set(errp, ERR_INVALID_ARG, "--%s '%s' is not an absolute path",
                             boot_keys[i], v), NULL;
        json_t *boot = json_object_get(o, "boot");
        if (!json_is_object(boot))
            json_object_set_new(o, "boot", boot = json_object());
        json_object_del(boot, "order");
        json_object_set_new(boot, boot_keys[i], json_string(v));
    }
    json_t *boot = json_object_get(o, "boot");
    if (json_is_object(boot) && !json_object_get(boot, "kernel") &&
        (json_object_get(boot, "initrd") || json_object_get(boot, "cmdline")))
        return error_set(errp, ERR_INVALID_ARG, "--initrd and --cmdline need --kernel"), NULL;
    if (cli_flag(a, "start"))
        json_object_set_new(o, "start", json_true());
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!name)
        return error_set(errp, ERR_INVALID_ARG,
                         "create: the VM needs a name (--name, or \"name\" in the file)"), NULL;
    if (cli_check_name(name, "VM", errp) < 0)
        return NULL;
    return steal_pointer(&o);
}

/* ---- storage ------------------------------------------------------------- */

static int plan_vol_create(const struct cli_args *a, struct cli_request *rq,
                           struct error **errp)
{
    if (cli_check_name(a->pos[1], "volume", errp) < 0)
        return -1;
    AUTOJSON json_t *o = json_pack("{s:s}", "name", a->pos[1]);
    if (set_size(o, "capacity", a->pos[2], "volume size", errp) < 0)
        return -1;
    const char *alloc = cli_opt(a, "allocation"), *prov = cli_opt(a, "provisioning");
    if (alloc && prov)
        return error_set(errp, ERR_INVALID_ARG,
                         "vol-create-as: --allocation and --provisioning are the same option");
    prov = prov ? prov : alloc;
    if (check_choice(prov, "--allocation", provisioning_values, errp) < 0 ||
        check_choice(cli_opt(a, "format"), "--format", format_values, errp) < 0)
        return -1;
    if (prov)
        json_object_set_new(o, "provisioning", json_string(prov));
    if (cli_opt(a, "format"))
        json_object_set_new(o, "format", json_string(cli_opt(a, "format")));
    static const char *const text[] = { "type", "mode", "base", NULL };
    for (size_t i = 0; text[i]; i++) {
        const char *v = cli_opt(a, text[i]);
        if (v && cli_check_name(v, text[i], errp) < 0)
            return -1;
        if (v)
            json_object_set_new(o, text[i], json_string(v));
    }
    if (plan_task(a, rq, "POST", "/api/v1/datastores/{}/volumes", steal_pointer(&o), errp) < 0)
        return -1;
    free(rq->label);
    rq->label = xasprintf("vol-create-as %s", a->pos[1]);
    return 0;
}

static int plan_vol_delete(const struct cli_args *a, struct cli_request *rq,
                           struct error **errp)
{
    if (plan_task(a, rq, "DELETE",
                  cli_flag(a, "secure") ? "/api/v1/datastores/{}/volumes/{}?secure=true"
                                        : "/api/v1/datastores/{}/volumes/{}", NULL, errp) < 0)
        return -1;
    free(rq->label);
    rq->label = xasprintf("vol-delete %s", a->pos[1]);
    return 0;
}

static int plan_vol_wipe(const struct cli_args *a, struct cli_request *rq, struct error **errp)
{
    if (plan_task(a, rq, "POST", "/api/v1/datastores/{}/volumes/{}/wipe", NULL, errp) < 0)
        return -1;
    free(rq->label);
    rq->label = xasprintf("vol-wipe %s", a->pos[1]);
    return 0;
}

static int plan_vol_resize(const struct cli_args *a, struct cli_request *rq,
                           struct error **errp)
{
    AUTOJSON json_t *o = json_object();
    if (set_size(o, "capacity", a->pos[2], "volume size", errp) < 0 ||
        plan_task(a, rq, "POST", "/api/v1/datastores/{}/volumes/{}/resize", steal_pointer(&o),
                  errp) < 0)
        return -1;
    free(rq->label);
    rq->label = xasprintf("vol-resize %s", a->pos[1]);
    return 0;
}

/* ---- hosts, clusters, sites, users, tokens, tasks ------------------------ */

static int plan_host_maintenance(const struct cli_args *a, struct cli_request *rq,
                                 struct error **errp)
{
    const char *mode = a->npos > 1 ? a->pos[1] : "on";
    bool on = !strcmp(mode, "on") || !strcmp(mode, "enter");
    if (!on && strcmp(mode, "off") && strcmp(mode, "leave"))
        return error_set(errp, ERR_INVALID_ARG, "host-maintenance: '%s' must be on or off",
                         mode);
    rq->method = on ? "POST" : "DELETE";
    rq->kind = RQ_WRITE;
    rq->path = fill_route(a, "/api/v1/hosts/{}/maintenance", 0, false, errp);
    if (!rq->path)
        return -1;
    rq->done = xasprintf("host '%s' %s maintenance mode", a->pos[0], on ? "is in" : "left");
    return 0;
}

static int ttl_opt(const struct cli_args *a, json_t *body, struct error **errp)
{
    const char *v = cli_opt(a, "expires");
    unsigned long long s;
    if (!v)
        return 0;
    if (cli_parse_uint(v, 60, 10ULL * 366 * 24 * 3600, "--expires (seconds)", &s, errp) < 0)
        return -1;
    json_object_set_new(body, "expires_in_s", json_integer((json_int_t) s));
    return 0;
}

static int plan_join_token_create(const struct cli_args *a, struct cli_request *rq,
                                  struct error **errp)
{
    AUTOJSON json_t *body = json_object();
    const char *cl = cli_opt(a, "cluster");
    if (cl && cli_check_name(cl, "cluster", errp) < 0)
        return -1;
    if (cl)
        json_object_set_new(body, "cluster", json_string(cl));
    if (ttl_opt(a, body, errp) < 0)
        return -1;
    rq->method = "POST";
    rq->kind = RQ_WRITE;
    rq->path = xstrdup("/api/v1/join-tokens");
    rq->body = steal_pointer(&body);
    rq->print_key = "token";
    return 0;
}

static int plan_token_create(const struct cli_args *a, struct cli_request *rq,
                             struct error **errp)
{
    if (cli_check_name(a->pos[0], "token name", errp) < 0)
        return -1;
    AUTOJSON json_t *body = json_pack("{s:s}", "name", a->pos[0]);
    if (ttl_opt(a, body, errp) < 0)
        return -1;
    rq->method = "POST";
    rq->kind = RQ_WRITE;
    rq->path = xstrdup("/api/v1/tokens");
    rq->body = steal_pointer(&body);
    rq->print_key = "token";
    return 0;
}

static const char *const policies[] = { "automatic", "load-balancing", NULL };

static int plan_cluster_create(const struct cli_args *a, struct cli_request *rq,
                               struct error **errp)
{
    const char *site = cli_opt(a, "site");
    if (cli_check_name(a->pos[0], "cluster", errp) < 0)
        return -1;
    if (!site)
        return error_set(errp, ERR_INVALID_ARG, "cluster-create: --site is required");
    if (cli_check_name(site, "site", errp) < 0 ||
        check_choice(cli_opt(a, "startup-policy"), "--startup-policy", policies, errp) < 0)
        return -1;
    json_t *body = json_pack("{s:s, s:s}", "name", a->pos[0], "site", site);
    if (cli_opt(a, "description"))
        json_object_set_new(body, "description", json_string(cli_opt(a, "description")));
    if (cli_opt(a, "startup-policy"))
        json_object_set_new(body, "startup_policy", json_string(cli_opt(a, "startup-policy")));
    if (cli_flag(a, "memory-overcommit"))
        json_object_set_new(body, "memory_overcommit", json_true());
    rq->method = "POST";
    rq->kind = RQ_WRITE;
    rq->path = xstrdup("/api/v1/clusters");
    rq->body = body;
    rq->done = xasprintf("cluster '%s' created", a->pos[0]);
    return 0;
}

/* The --host options as a JSON array of names (at least one). */
static json_t *host_list(const struct cli_args *a, const char *verb, struct error **errp)
{
    json_t *hosts = json_array();
    size_t it = 0;
    const char *h;
    while ((h = cli_opt_next(a, "host", &it))) {
        if (cli_check_name(h, "host", errp) < 0) {
            json_decref(hosts);
            return NULL;
        }
        json_array_append_new(hosts, json_string(h));
    }
    if (!json_array_size(hosts)) {
        json_decref(hosts);
        return error_set(errp, ERR_INVALID_ARG, "%s: at least one --host is required", verb),
               NULL;
    }
    return hosts;
}

static int plan_pool_create(const struct cli_args *a, struct cli_request *rq,
                            struct error **errp)
{
    static const char *const types[] = { "local", "shared", NULL };
    const char *path = cli_opt(a, "path"), *type = cli_opt(a, "type");
    if (cli_check_name(a->pos[0], "datastore", errp) < 0 ||
        check_choice(type, "--type", types, errp) < 0)
        return -1;
    if (!path || path[0] != '/')
        return error_set(errp, ERR_INVALID_ARG, "pool-create: --path must be an absolute "
                         "directory");
    json_t *hosts = host_list(a, "pool-create", errp);
    if (!hosts)
        return -1;
    json_t *body = json_pack("{s:s, s:s, s:s, s:o}", "name", a->pos[0], "path", path, "type",
                             type ? type : "local", "hosts", hosts);
    if (cli_opt(a, "overcommit-ratio")) {
        char *end;
        double r = strtod(cli_opt(a, "overcommit-ratio"), &end);
        if (*end || r < 1.0 || r > 100.0) {
            json_decref(body);
            return error_set(errp, ERR_INVALID_ARG, "--overcommit-ratio must be a number "
                             "from 1 to 100");
        }
        json_object_set_new(body, "overcommit_ratio", json_real(r));
    }
    rq->method = "POST";
    rq->kind = RQ_WRITE;
    rq->path = xstrdup("/api/v1/datastores");
    rq->body = body;
    rq->done = xasprintf("datastore '%s' created", a->pos[0]);
    return 0;
}

static int plan_nat_create(const struct cli_args *a, struct cli_request *rq,
                           struct error **errp)
{
    const char *subnet = cli_opt(a, "subnet");
    if (cli_check_name(a->pos[0], "NAT network", errp) < 0)
        return -1;
    json_t *hosts = host_list(a, "nat-create", errp);
    if (!hosts)
        return -1;
    json_t *body = json_pack("{s:s, s:o}", "name", a->pos[0], "hosts", hosts);
    if (subnet)
        json_object_set_new(body, "subnet", json_string(subnet));
    rq->method = "POST";
    rq->kind = RQ_WRITE;
    rq->path = xstrdup("/api/v1/nat-networks");
    rq->body = body;
    rq->done = xasprintf("NAT network '%s' created", a->pos[0]);
    return 0;
}

static int plan_site_create(const struct cli_args *a, struct cli_request *rq,
                            struct error **errp)
{
    if (cli_check_name(a->pos[0], "site", errp) < 0)
        return -1;
    json_t *body = json_pack("{s:s}", "name", a->pos[0]);
    if (cli_opt(a, "description"))
        json_object_set_new(body, "description", json_string(cli_opt(a, "description")));
    rq->method = "POST";
    rq->kind = RQ_WRITE;
    rq->path = xstrdup("/api/v1/sites");
    rq->body = body;
    rq->done = xasprintf("site '%s' created", a->pos[0]);
    return 0;
}

static int plan_task_cancel(const struct cli_args *a, struct cli_request *rq,
                            struct error **errp)
{
    rq->method = "POST";
    rq->kind = RQ_WRITE;
    rq->path = fill_route(a, "/api/v1/tasks/{}/cancel", 0, true, errp);
    if (!rq->path)
        return -1;
    rq->done = xasprintf("task '%s': cancel requested", a->pos[0]);
    return 0;
}

static const char *const roles[] = { "viewer", "operator", "administrator", NULL };

static int plan_user_update(const struct cli_args *a, struct cli_request *rq,
                            struct error **errp)
{
    bool en = cli_flag(a, "enable"), dis = cli_flag(a, "disable");
    if (en && dis)
        return error_set(errp, ERR_INVALID_ARG, "user-update: --enable and --disable exclude "
                         "each other");
    if (check_choice(cli_opt(a, "role"), "--role", roles, errp) < 0)
        return -1;
    json_t *body = json_object();
    if (cli_opt(a, "role"))
        json_object_set_new(body, "role", json_string(cli_opt(a, "role")));
    if (en || dis)
        json_object_set_new(body, "enabled", json_boolean(en));
    if (json_object_size(body) == 0) {
        json_decref(body);
        return error_set(errp, ERR_INVALID_ARG, "user-update: nothing to change "
                         "(--role, --enable, --disable)");
    }
    rq->method = "PATCH";
    rq->kind = RQ_WRITE;
    rq->body = body;
    rq->path = fill_route(a, "/api/v1/users/{}", 0, false, errp);
    if (!rq->path)
        return -1;
    rq->done = xasprintf("user '%s' updated", a->pos[0]);
    return 0;
}

/* ---- the table ----------------------------------------------------------- */

#define O_END { NULL, 0 }
#define F(n) { n, OPT_FLAG }
#define V(n) { n, OPT_VALUE }
#define M(n) { n, OPT_MULTI }

static const struct cli_optdef no_opts[] = { O_END };
static const struct cli_optdef list_opts[] = {
    F("all"), V("state"), V("host"), V("cluster"), V("template"), V("name"), V("limit"), O_END,
};
static const struct cli_optdef shutdown_opts[] = { V("timeout"), O_END };
static const struct cli_optdef attach_disk_opts[] = {
    V("datastore"), V("size"), V("volume"), V("base"), V("format"), V("provisioning"),
    V("allocation"), V("bus"), V("cache"), V("id"), F("readonly"), F("shared"), O_END,
};
static const struct cli_optdef attach_nic_opts[] = {
    V("nat"), V("dvs"), V("portgroup"), V("mac"), V("model"), V("id"), O_END,
};
static const struct cli_optdef media_opts[] = { F("eject"), O_END };
static const struct cli_optdef snap_create_opts[] = {
    V("name"), V("description"), V("kind"), O_END,
};
static const struct cli_optdef start_opts[] = { F("start"), O_END };
static const struct cli_optdef undefine_opts[] = { F("keep-disks"), O_END };
static const struct cli_optdef console_opts[] = {
    F("follow"), V("until"), V("timeout"), V("offset"), O_END,
};
static const struct cli_optdef create_opts[] = {
    V("name"), V("memory"), V("vcpus"), M("disk"), M("nic"), M("cdrom"), V("kernel"),
    V("initrd"), V("cmdline"), V("cluster"), V("host"), V("description"), V("machine"),
    F("start"), O_END,
};
static const struct cli_optdef template_create_opts[] = { V("name"), V("description"), O_END };
static const struct cli_optdef name_opts[] = { V("name"), O_END };
static const struct cli_optdef deploy_opts[] = {
    F("linked"), F("full"), V("cluster"), V("host"), F("start"), O_END,
};
static const struct cli_optdef vol_create_opts[] = {
    V("format"), V("allocation"), V("provisioning"), V("type"), V("mode"), V("base"), O_END,
};
static const struct cli_optdef secure_opts[] = { F("secure"), O_END };
static const struct cli_optdef limit_opts[] = { V("limit"), O_END };
static const struct cli_optdef host_list_opts[] = {
    V("cluster"), V("state"), V("name"), V("limit"), O_END,
};
static const struct cli_optdef cluster_list_opts[] = {
    V("site"), V("startup-policy"), V("name"), V("limit"), O_END,
};
static const struct cli_optdef cluster_create_opts[] = {
    V("site"), V("description"), V("startup-policy"), F("memory-overcommit"), O_END,
};
static const struct cli_optdef description_opts[] = { V("description"), O_END };
static const struct cli_optdef pool_create_opts[] = {
    V("path"), V("type"), M("host"), V("overcommit-ratio"), O_END,
};
static const struct cli_optdef nat_create_opts[] = { V("subnet"), M("host"), O_END };
static const struct cli_optdef host_join_opts[] = {
    V("token"), V("address"), V("port"), V("dir"), O_END,
};
static const struct cli_optdef join_token_opts[] = { V("cluster"), V("expires"), O_END };
static const struct cli_optdef expires_opts[] = { V("expires"), O_END };
static const struct cli_optdef task_list_opts[] = {
    V("state"), V("kind"), V("object"), V("user"), V("limit"), O_END,
};
static const struct cli_optdef event_opts[] = {
    V("since"), V("type"), V("severity"), V("object"), V("task"), V("limit"), F("follow"),
    O_END,
};
static const struct cli_optdef user_list_opts[] = { V("role"), V("name"), V("limit"), O_END };
static const struct cli_optdef user_create_opts[] = {
    V("role"), F("password-stdin"), V("password-file"), O_END,
};
static const struct cli_optdef user_update_opts[] = {
    V("role"), F("enable"), F("disable"), O_END,
};
static const struct cli_optdef login_opts[] = { F("password-stdin"), V("password-file"), O_END };
static const struct cli_optdef token_list_opts[] = { V("user"), V("kind"), V("limit"), O_END };

#define VM_ACTION(verb, help) \
    { verb, "VM", 1, 1, no_opts, plan_vm_action, NULL, verb, NULL, help, 0 }

const struct cli_verb cli_verbs[] = {
    /* VMs */
    { "list", "", 0, 0, list_opts, plan_vm_list, NULL, "/api/v1/vms", vm_cols,
      "list VMs (running ones; --all for every VM)", 0 },
    { "dominfo", "VM", 1, 1, no_opts, plan_show, NULL, "/api/v1/vms/{}", vm_fields,
      "show a VM", 0 },
    { "create", "[FILE]", 0, 1, create_opts, NULL, cli_run_create, NULL, NULL,
      "create a VM from a JSON file and/or flags", 0 },
    VM_ACTION("start", "start a VM"),
    { "shutdown", "VM", 1, 1, shutdown_opts, plan_vm_action, NULL, "shutdown", NULL,
      "shut a VM down through its guest (--timeout S)", 0 },
    VM_ACTION("destroy", "power a VM off at once"),
    VM_ACTION("reboot", "reboot a VM"),
    VM_ACTION("suspend", "pause a VM"),
    VM_ACTION("resume", "resume a paused VM"),
    VM_ACTION("save", "hibernate a VM to disk"),
    VM_ACTION("restore", "resume a hibernated VM"),
    { "setmem", "VM SIZE", 2, 2, no_opts, plan_setmem, NULL, NULL, NULL,
      "set a VM's memory (512M, 2G; a bare number counts MiB)", 0 },
    { "setvcpus", "VM COUNT", 2, 2, no_opts, plan_setvcpus, NULL, NULL, NULL,
      "set a VM's number of vCPUs", 0 },
    { "attach-disk", "VM", 1, 1, attach_disk_opts, plan_attach_disk, NULL, NULL, NULL,
      "add a disk: --datastore DS (--size SIZE | --volume VOL | --base VOL)", 0 },
    { "detach-disk", "VM DISK", 2, 2, no_opts, plan_delete_task, NULL, "/api/v1/vms/{}/disks/{}",
      NULL, "remove a disk", 0 },
    { "attach-interface", "VM", 1, 1, attach_nic_opts, plan_attach_interface, NULL, NULL, NULL,
      "add a NIC: --nat NAME | --dvs NAME --portgroup NAME", 0 },
    { "detach-interface", "VM NIC", 2, 2, no_opts, plan_delete_task, NULL,
      "/api/v1/vms/{}/nics/{}", NULL, "remove a NIC", 0 },
    { "change-media", "VM CDROM [PATH]", 2, 3, media_opts, plan_change_media, NULL, NULL, NULL,
      "insert PATH in a CD-ROM drive, or --eject", 0 },
    { "snapshot-create-as", "VM [NAME]", 1, 2, snap_create_opts, plan_snapshot_create, NULL,
      NULL, NULL, "take a snapshot (--kind disk-only|consistent|memory)", 0 },
    { "snapshot-list", "VM", 1, 1, no_opts, plan_list, NULL, "/api/v1/vms/{}/snapshots",
      snapshot_cols, "list a VM's snapshots", 0 },
    { "snapshot-revert", "VM SNAPSHOT", 2, 2, start_opts, plan_snapshot_revert, NULL, NULL,
      NULL, "go back to a snapshot (--start to run it after)", 0 },
    { "snapshot-delete", "VM SNAPSHOT", 2, 2, no_opts, plan_delete_task, NULL,
      "/api/v1/vms/{}/snapshots/{}", NULL, "delete a snapshot", 0 },
    { "undefine", "VM", 1, 1, undefine_opts, plan_undefine, NULL, NULL, NULL,
      "delete a VM (its disks too unless --keep-disks)", 0 },
    { "console", "VM", 1, 1, console_opts, NULL, cli_run_console, NULL, NULL,
      "print the serial console (--follow, --until TEXT, --timeout S)", 0 },
    { "clone", "VM NAME", 2, 2, start_opts, plan_clone, NULL, NULL, NULL,
      "full copy of a stopped VM", 0 },
    /* templates */
    { "template-list", "", 0, 0, limit_opts, plan_list, NULL, "/api/v1/templates",
      template_cols, "list templates", 0 },
    { "template-info", "TEMPLATE", 1, 1, no_opts, plan_show, NULL, "/api/v1/templates/{}",
      template_fields, "show a template", 0 },
    { "template-create", "VM", 1, 1, template_create_opts, plan_template_create, NULL, NULL,
      NULL, "turn a stopped VM into a template (--name, --description)", 0 },
    { "template-delete", "TEMPLATE", 1, 1, no_opts, plan_delete_task, NULL,
      "/api/v1/templates/{}", NULL, "delete a template", 0 },
    { "template-to-vm", "TEMPLATE", 1, 1, name_opts, plan_template_to_vm, NULL, NULL, NULL,
      "turn a template back into a VM", 0 },
    { "deploy", "TEMPLATE NAME", 2, 2, deploy_opts, plan_deploy, NULL, NULL, NULL,
      "a new VM from a template (--linked or --full clone)", 0 },
    /* storage and network */
    { "pool-list", "", 0, 0, limit_opts, plan_list, NULL, "/api/v1/datastores", pool_cols,
      "list datastores", 0 },
    { "pool-info", "POOL", 1, 1, no_opts, plan_show, NULL, "/api/v1/datastores/{}",
      pool_fields, "show a datastore", 0 },
    { "pool-create", "NAME", 1, 1, pool_create_opts, plan_pool_create, NULL, NULL, NULL,
      "register a datastore on hosts (--path DIR --host H [--host H2] [--type shared])", 0 },
    { "pool-delete", "POOL", 1, 1, no_opts, plan_delete, NULL, "/api/v1/datastores/{}", NULL,
      "forget a datastore (its files stay)", 0 },
    { "vol-list", "POOL", 1, 1, no_opts, plan_list, NULL, "/api/v1/datastores/{}/volumes",
      vol_cols, "list a datastore's volumes", 0 },
    { "vol-create-as", "POOL NAME SIZE", 3, 3, vol_create_opts, plan_vol_create, NULL, NULL,
      NULL, "create a volume (--format qcow2|raw, --allocation thin|thick-lazy|thick-eager)",
      0 },
    { "vol-delete", "POOL VOLUME", 2, 2, secure_opts, plan_vol_delete, NULL, NULL, NULL,
      "delete a volume (--secure overwrites it first)", 0 },
    { "vol-wipe", "POOL VOLUME", 2, 2, no_opts, plan_vol_wipe, NULL, NULL, NULL,
      "overwrite a volume's content with zeros", 0 },
    { "vol-resize", "POOL VOLUME SIZE", 3, 3, no_opts, plan_vol_resize, NULL, NULL, NULL,
      "grow a volume", 0 },
    { "net-list", "", 0, 0, no_opts, plan_list, NULL, "/api/v1/networks", net_cols,
      "list networks (NAT networks and port groups)", 0 },
    { "nat-create", "NAME", 1, 1, nat_create_opts, plan_nat_create, NULL, NULL, NULL,
      "a NAT network (DHCP, masquerade) on hosts (--subnet CIDR --host H ...)", 0 },
    { "nat-delete", "NAT", 1, 1, no_opts, plan_delete, NULL, "/api/v1/nat-networks/{}", NULL,
      "remove a NAT network from its hosts", 0 },
    { "secgroup-list", "", 0, 0, limit_opts, plan_list, NULL, "/api/v1/security-groups",
      secgroup_cols, "list security groups", 0 },
    { "vlan-pool-list", "", 0, 0, limit_opts, plan_list, NULL, "/api/v1/vlan-pools",
      vlan_pool_cols, "list VLAN pools", 0 },
    /* hosts and inventory */
    { "host-list", "", 0, 0, host_list_opts, plan_list, NULL, "/api/v1/hosts", host_cols,
      "list hosts", 0 },
    { "host-info", "HOST", 1, 1, no_opts, plan_show, NULL, "/api/v1/hosts/{}", host_fields,
      "show a host", 0 },
    { "host-maintenance", "HOST [on|off]", 1, 2, no_opts, plan_host_maintenance, NULL, NULL,
      NULL, "enter (on, the default) or leave (off) maintenance mode", 0 },
    { "host-delete", "HOST", 1, 1, no_opts, plan_delete, NULL, "/api/v1/hosts/{}", NULL,
      "forget a host", 0 },
    { "join-token-create", "", 0, 0, join_token_opts, plan_join_token_create, NULL, NULL, NULL,
      "make a one-time host join token (--cluster, --expires S); prints it", 0 },
    { "join-token-list", "", 0, 0, limit_opts, plan_list, NULL, "/api/v1/join-tokens",
      join_token_cols, "list join tokens", 0 },
    { "join-token-delete", "ID", 1, 1, no_opts, plan_delete, NULL, "/api/v1/join-tokens/{}",
      NULL, "revoke a join token", 0 },
    { "cluster-list", "", 0, 0, cluster_list_opts, plan_list, NULL, "/api/v1/clusters",
      cluster_cols, "list clusters", 0 },
    { "cluster-info", "CLUSTER", 1, 1, no_opts, plan_show, NULL, "/api/v1/clusters/{}",
      cluster_fields, "show a cluster", 0 },
    { "cluster-create", "NAME", 1, 1, cluster_create_opts, plan_cluster_create, NULL, NULL,
      NULL, "create a cluster (--site SITE)", 0 },
    { "cluster-delete", "CLUSTER", 1, 1, no_opts, plan_delete, NULL, "/api/v1/clusters/{}",
      NULL, "delete an empty cluster", 0 },
    { "site-list", "", 0, 0, limit_opts, plan_list, NULL, "/api/v1/sites", site_cols,
      "list sites", 0 },
    { "site-create", "NAME", 1, 1, description_opts, plan_site_create, NULL, NULL, NULL,
      "create a site", 0 },
    { "site-delete", "SITE", 1, 1, no_opts, plan_delete, NULL, "/api/v1/sites/{}", NULL,
      "delete a site without clusters", 0 },
    /* tasks and events */
    { "task-list", "", 0, 0, task_list_opts, plan_list, NULL, "/api/v1/tasks", task_cols,
      "list tasks", 0 },
    { "task-info", "ID", 1, 1, no_opts, plan_show_uuid, NULL, "/api/v1/tasks/{}", task_fields,
      "show a task and its steps", 0 },
    { "task-wait", "ID", 1, 1, no_opts, NULL, cli_run_task_wait, NULL, NULL,
      "follow a task to its end", 0 },
    { "task-cancel", "ID", 1, 1, no_opts, plan_task_cancel, NULL, NULL, NULL,
      "cancel a task", 0 },
    { "event-list", "", 0, 0, event_opts, NULL, cli_run_event_list, NULL, NULL,
      "recent events (--follow waits for new ones)", 0 },
    /* users and credentials */
    { "user-list", "", 0, 0, user_list_opts, plan_list, NULL, "/api/v1/users", user_cols,
      "list users", 0 },
    { "user-create", "NAME", 1, 1, user_create_opts, NULL, cli_run_user_create, NULL, NULL,
      "create a user (--role; password from --password-stdin, --password-file or a prompt)",
      0 },
    { "user-update", "USER", 1, 1, user_update_opts, plan_user_update, NULL, NULL, NULL,
      "change a user's role, enable or disable it", 0 },
    { "user-delete", "USER", 1, 1, no_opts, plan_delete, NULL, "/api/v1/users/{}", NULL,
      "delete a user", 0 },
    { "login", "[USER]", 0, 1, login_opts, NULL, cli_run_login, NULL, NULL,
      "log in and save the session token in the config file", CLI_NEEDS_NO_AUTH },
    { "logout", "", 0, 0, no_opts, NULL, cli_run_logout, NULL, NULL,
      "end the session and forget its token", CLI_NEEDS_NO_AUTH },
    { "token-create", "NAME", 1, 1, expires_opts, plan_token_create, NULL, NULL, NULL,
      "make an API token (--expires S); prints it once", 0 },
    { "token-list", "", 0, 0, token_list_opts, plan_list, NULL, "/api/v1/tokens", token_cols,
      "list API tokens and sessions", 0 },
    { "token-delete", "ID", 1, 1, no_opts, plan_delete, NULL, "/api/v1/tokens/{}", NULL,
      "revoke a token", 0 },
    { "host-join", "NAME", 1, 1, host_join_opts, NULL, cli_run_host_join, NULL, NULL,
      "join this host with a one-time token (--token T --address A [--port P] [--dir DIR]): "
      "writes the agent's certificate, key and CA", CLI_NEEDS_NO_AUTH },
    { "version", "", 0, 0, no_opts, NULL, cli_run_version, NULL, NULL,
      "the client's and the manager's versions", CLI_NEEDS_NO_AUTH },
    { "help", "[VERB]", 0, 1, no_opts, NULL, cli_run_help, NULL, NULL,
      "this list, or one verb's usage", CLI_NEEDS_NO_AUTH | CLI_NO_CONNECT },
    { NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0 },
};

const struct cli_verb *cli_verb_find(const char *name)
{
    for (size_t i = 0; cli_verbs[i].name; i++)
        if (!strcmp(cli_verbs[i].name, name))
            return &cli_verbs[i];
    return NULL;
}

void cli_usage(FILE *f, const struct cli_verb *v)
{
    if (!v) {
        fprintf(f, "usage: strata [--connect URL] [--ca FILE] [--json] [--no-wait] VERB [ARGS]\n"
                   "\nverbs:\n");
        for (size_t i = 0; cli_verbs[i].name; i++)
            fprintf(f, "  %-20s %s\n", cli_verbs[i].name, cli_verbs[i].help);
        fprintf(f, "\n'strata help VERB' shows a verb's options.  Connection: --connect or "
                   "STRATA_URL\n(default " CLI_DEFAULT_URL "); credentials: "
                   "STRATA_TOKEN, STRATA_USER +\nSTRATA_PASSWORD, or 'strata login'.\n");
        return;
    }
    fprintf(f, "usage: strata %s%s%s", v->name, v->synopsis && *v->synopsis ? " " : "",
            v->synopsis ? v->synopsis : "");
    for (size_t i = 0; v->opts && v->opts[i].name; i++)
        fprintf(f, " [--%s%s]", v->opts[i].name,
                v->opts[i].kind == OPT_FLAG ? "" : v->opts[i].kind == OPT_MULTI ? " VALUE..."
                                                                                : " VALUE");
    fprintf(f, "\n  %s\n", v->help);
}
