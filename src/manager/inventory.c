/* inventory.c - see inventory.h: object kinds, the generic lister and
 * lookups, and the writes of sites, clusters and host maintenance.
 *
 * The lister builds "SELECT <fields> FROM <table> WHERE <filters> ORDER BY
 * <order> LIMIT ? OFFSET ?" and the matching COUNT(*) from the constant kind
 * tables below; filter values, limit and offset are bound.
 *
 * Neighbours: store.h (below), events.h (every write records one),
 * api_inventory.c and api_auth.c (callers). */
#define LOG_MODULE "inventory"
#include "manager/inventory.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "manager/events.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

/* ---- kinds -------------------------------------------------------------- */

static const struct inv_field site_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "description", "description", INV_TEXT },
    { "(SELECT COUNT(*) FROM clusters c WHERE c.site_id = sites.id)", "cluster_count", INV_INT },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter site_filters[] = {
    { "name", "name = ?", 1 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_sites = {
    "site", "sites", site_fields, site_filters, "name", true,
};

static const struct inv_field cluster_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "site_id", "site_id", INV_TEXT },
    { "(SELECT s.name FROM sites s WHERE s.id = clusters.site_id)", "site_name", INV_TEXT },
    { "description", "description", INV_TEXT },
    { "startup_policy", "startup_policy", INV_TEXT },
    { "memory_overcommit", "memory_overcommit", INV_BOOL },
    { "(SELECT COUNT(*) FROM hosts h WHERE h.cluster_id = clusters.id)", "host_count", INV_INT },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter cluster_filters[] = {
    { "name", "name = ?", 1 },
    { "site", "site_id IN (SELECT s.id FROM sites s WHERE s.id = ? OR s.name = ?)", 2 },
    { "startup_policy", "startup_policy = ?", 1 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_clusters = {
    "cluster", "clusters", cluster_fields, cluster_filters, "name", true,
};

static const struct inv_field host_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "cluster_id", "cluster_id", INV_TEXT },
    { "(SELECT c.name FROM clusters c WHERE c.id = hosts.cluster_id)", "cluster_name", INV_TEXT },
    { "address", "address", INV_TEXT },
    { "port", "port", INV_INT },
    { "state", "state", INV_TEXT },
    { "desired_generation", "desired_generation", INV_INT },
    { "applied_generation", "applied_generation", INV_INT },
    { "facts", "facts", INV_JSON },
    { "stats", "stats", INV_JSON },
    { "last_seen_at", "last_seen_at", INV_TIME },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter host_filters[] = {
    { "name", "name = ?", 1 },
    { "state", "state = ?", 1 },
    { "cluster", "cluster_id IN (SELECT c.id FROM clusters c WHERE c.id = ? OR c.name = ?)", 2 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_hosts = {
    "host", "hosts", host_fields, host_filters, "name", true,
};

static const struct inv_field vm_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "cluster_id", "cluster_id", INV_TEXT },
    { "(SELECT c.name FROM clusters c WHERE c.id = vms.cluster_id)", "cluster_name", INV_TEXT },
    { "host_id", "host_id", INV_TEXT },
    { "(SELECT h.name FROM hosts h WHERE h.id = vms.host_id)", "host_name", INV_TEXT },
    { "template_id", "template_id", INV_TEXT },
    { "state", "state", INV_TEXT },
    { "reason", "reason", INV_TEXT },
    { "definition", "definition", INV_JSON },
    { "ha", "ha", INV_BOOL },
    { "stats", "stats", INV_JSON },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter vm_filters[] = {
    { "name", "name = ?", 1 },
    { "state", "state = ?", 1 },
    { "host", "host_id IN (SELECT h.id FROM hosts h WHERE h.id = ? OR h.name = ?)", 2 },
    { "cluster", "cluster_id IN (SELECT c.id FROM clusters c WHERE c.id = ? OR c.name = ?)", 2 },
    { "template", "template_id IN (SELECT t.id FROM templates t WHERE t.id = ? OR t.name = ?)",
      2 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_vms = {
    "VM", "vms", vm_fields, vm_filters, "name", true,
};

static const struct inv_field template_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "description", "description", INV_TEXT },
    { "cluster_id", "cluster_id", INV_TEXT },
    { "(SELECT c.name FROM clusters c WHERE c.id = templates.cluster_id)", "cluster_name",
      INV_TEXT },
    { "datastore_id", "datastore_id", INV_TEXT },
    { "(SELECT d.name FROM datastores d WHERE d.id = templates.datastore_id)", "datastore_name",
      INV_TEXT },
    { "definition", "definition", INV_JSON },
    { "(SELECT COUNT(*) FROM vms v WHERE v.template_id = templates.id)", "vm_count", INV_INT },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter template_filters[] = {
    { "name", "name = ?", 1 },
    { "cluster", "cluster_id IN (SELECT c.id FROM clusters c WHERE c.id = ? OR c.name = ?)", 2 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_templates = {
    "template", "templates", template_fields, template_filters, "name", true,
};

static const struct inv_field snapshot_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "vm_id", "vm_id", INV_TEXT },
    { "parent_id", "parent_id", INV_TEXT },
    { "description", "description", INV_TEXT },
    { "kind", "kind", INV_TEXT },
    { "created_at", "created_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter snapshot_filters[] = {
    { "vm", "vm_id = ?", 1 },           /* index 0: set from the path */
    { "name", "name = ?", 1 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_snapshots = {
    "snapshot", "snapshots", snapshot_fields, snapshot_filters, "created_at, id", false,
};

static const struct inv_field user_fields[] = {
    { "id", "id", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "role", "role", INV_TEXT },
    { "enabled", "enabled", INV_BOOL },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter user_filters[] = {
    { "name", "name = ?", 1 },
    { "role", "role = ?", 1 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_users = {
    "user", "users", user_fields, user_filters, "name", true,
};

static const struct inv_field token_fields[] = {
    { "id", "id", INV_TEXT },
    { "user_id", "user_id", INV_TEXT },
    { "(SELECT u.name FROM users u WHERE u.id = api_tokens.user_id)", "user_name", INV_TEXT },
    { "kind", "kind", INV_TEXT },
    { "name", "name", INV_TEXT },
    { "created_at", "created_at", INV_TIME },
    { "expires_at", "expires_at", INV_TIME },
    { "last_used_at", "last_used_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter token_filters[] = {
    { "user", "user_id = ?", 1 },       /* index 0: forced to the caller for non-admins */
    { "kind", "kind = ?", 1 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_tokens = {
    "token", "api_tokens", token_fields, token_filters, "created_at, id", false,
};

static const struct inv_field task_fields[] = {
    { "id", "id", INV_TEXT },
    { "kind", "kind", INV_TEXT },
    { "state", "state", INV_TEXT },
    { "progress", "progress", INV_INT },
    { "object_type", "object_type", INV_TEXT },
    { "object_id", "object_id", INV_TEXT },
    { "user_name", "user_name", INV_TEXT },
    { "params", "params", INV_JSON },
    { "steps", "steps", INV_JSON },
    { "result", "result", INV_JSON },
    { "error", "error", INV_JSON },
    { "created_at", "created_at", INV_TIME },
    { "updated_at", "updated_at", INV_TIME },
    { "started_at", "started_at", INV_TIME },
    { "finished_at", "finished_at", INV_TIME },
    { NULL, NULL, 0 },
};
static const struct inv_filter task_filters[] = {
    { "state", "state = ?", 1 },
    { "kind", "kind = ?", 1 },
    { "object", "object_id = ?", 1 },
    { "user", "user_name = ?", 1 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_tasks = {
    "task", "tasks", task_fields, task_filters, "created_at DESC, id", false,
};

static const struct inv_field event_fields[] = {
    { "seq", "seq", INV_INT },
    { "at", "at", INV_TIME },
    { "type", "type", INV_TEXT },
    { "severity", "severity", INV_TEXT },
    { "object_type", "object_type", INV_TEXT },
    { "object_id", "object_id", INV_TEXT },
    { "object_name", "object_name", INV_TEXT },
    { "task_id", "task_id", INV_TEXT },
    { "user_name", "user_name", INV_TEXT },
    { "message", "message", INV_TEXT },
    { "data", "data", INV_JSON },
    { NULL, NULL, 0 },
};
static const struct inv_filter event_filters[] = {
    { "type", "type = ?", 1 },
    { "severity", "severity = ?", 1 },
    { "object", "(object_id = ? OR object_name = ?)", 2 },
    { "task", "task_id = ?", 1 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_events = {
    "event", "events", event_fields, event_filters, "seq", false,
};

static const struct inv_field join_token_fields[] = {
    { "id", "id", INV_TEXT },
    { "cluster_id", "cluster_id", INV_TEXT },
    { "(SELECT c.name FROM clusters c WHERE c.id = join_tokens.cluster_id)", "cluster_name",
      INV_TEXT },
    { "created_by", "created_by", INV_TEXT },
    { "created_at", "created_at", INV_TIME },
    { "expires_at", "expires_at", INV_TIME },
    { "used_at", "used_at", INV_TIME },
    { "host_id", "host_id", INV_TEXT },
    { NULL, NULL, 0 },
};
static const struct inv_filter join_token_filters[] = {
    { "cluster", "cluster_id IN (SELECT c.id FROM clusters c WHERE c.id = ? OR c.name = ?)", 2 },
    { NULL, NULL, 0 },
};
const struct inv_kind inv_join_tokens = {
    "join-token", "join_tokens", join_token_fields, join_token_filters, "created_at DESC, id",
    false,
};

/* ---- names and times ---------------------------------------------------- */

int inv_name_validate(const char *name, const char *field, struct error **errp)
{
    if (!name || !*name)
        return error_set_field(errp, ERR_INVALID_ARG, field, "name must not be empty");
    size_t n = strlen(name);
    if (n > INV_NAME_MAX)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "name is longer than %d characters", INV_NAME_MAX);
    if (!isalnum((unsigned char) name[0]))
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "name '%s' must start with a letter or a digit", name);
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char) *p) && *p != '.' && *p != '_' && *p != '-')
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "name '%s' may only contain letters, digits, '.', '_' "
                                   "and '-'", name);
    if (uuid_is_valid(name))
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "name '%s' must not have the form of a UUID", name);
    return 0;
}

char *inv_time_format(int64_t ms)
{
    time_t secs = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[40];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return xasprintf("%s.%03dZ", buf, (int) (ms % 1000));
}

static int text_check(const char *s, size_t max, const char *field, struct error **errp)
{
    if (strlen(s) > max)
        return error_set_field(errp, ERR_INVALID_ARG, field, "'%s' is longer than %zu bytes",
                               field, max);
    for (const char *p = s; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "'%s' must not contain control characters", field);
    return 0;
}

/* ---- generic reads ------------------------------------------------------ */

static json_t *row_to_json(struct store_stmt *st, const struct inv_kind *k)
{
    json_t *o = json_object();
    for (int i = 0; k->fields[i].column; i++) {
        const struct inv_field *f = &k->fields[i];
        json_t *v;
        if (store_col_is_null(st, i)) {
            v = json_null();
        } else {
            switch (f->type) {
            case INV_INT:
                v = json_integer((json_int_t) store_col_int(st, i));
                break;
            case INV_BOOL:
                v = json_boolean(store_col_int(st, i) != 0);
                break;
            case INV_TIME: {
                AUTOFREE char *s = inv_time_format(store_col_int(st, i));
                v = json_string(s);
                break;
            }
            case INV_JSON: {
                const char *s = store_col_text(st, i);
                v = json_loads(s, JSON_DECODE_ANY, NULL);
                if (!v)
                    v = json_string(s);
                break;
            }
            default:
                v = json_string(store_col_text(st, i));
                break;
            }
        }
        json_object_set_new(o, f->key, v ? v : json_null());
    }
    return o;
}

static char *select_list(const struct inv_kind *k)
{
    size_t len = 1;
    for (int i = 0; k->fields[i].column; i++)
        len += strlen(k->fields[i].column) + 2;
    char *s = xzalloc(len);
    for (int i = 0; k->fields[i].column; i++) {
        if (i)
            strcat(s, ", ");
        strcat(s, k->fields[i].column);
    }
    return s;
}

/* The page's statement and total for kind 'k'. */
static struct store_stmt *list_query(struct store_txn *t, const struct inv_kind *k,
                                     const struct inv_page *p, int64_t *limit_out,
                                     int64_t *offset_out, int64_t *total_out,
                                     struct error **errp)
{
    int64_t limit = p->limit > 0 ? p->limit : INV_DEFAULT_LIMIT;
    if (limit > INV_MAX_LIMIT)
        limit = INV_MAX_LIMIT;
    int64_t offset = p->offset > 0 ? p->offset : 0;

    struct store_val args[2 * INV_MAX_FILTERS + 3];
    size_t n = 0;
    AUTOFREE char *where = xstrdup("");
    for (int i = 0; i < INV_MAX_FILTERS && k->filters[i].param; i++) {
        if (!p->filters[i])
            continue;
        char *w = xasprintf("%s%s%s", where, *where ? " AND " : " WHERE ", k->filters[i].where);
        free(where);
        where = w;
        for (int b = 0; b < k->filters[i].n_binds; b++)
            args[n++] = SV_TEXT(p->filters[i]);
    }
    if (p->cursor_where) {
        char *w = xasprintf("%s%s%s", where, *where ? " AND " : " WHERE ", p->cursor_where);
        free(where);
        where = w;
        args[n++] = SV_INT(p->cursor);
    }

    AUTOFREE char *count_sql = xasprintf("SELECT COUNT(*) FROM %s%s", k->table, where);
    if (store_query_int(t, count_sql, args, n, total_out, errp) < 0)
        return NULL;
    AUTOFREE char *cols = select_list(k);
    AUTOFREE char *sql = xasprintf("SELECT %s FROM %s%s ORDER BY %s LIMIT ? OFFSET ?", cols,
                                   k->table, where, k->order_by);
    args[n++] = SV_INT(limit);
    args[n++] = SV_INT(offset);
    *limit_out = limit;
    *offset_out = offset;
    return store_query(t, sql, args, n, errp);
}

json_t *inv_list(struct store_txn *t, const struct inv_kind *k, const struct inv_page *p,
                 struct error **errp)
{
    int64_t limit, offset, total = 0;
    AUTOSTMT struct store_stmt *st = list_query(t, k, p, &limit, &offset, &total, errp);
    if (!st)
        return NULL;
    AUTOJSON json_t *items = json_array();
    int r;
    while ((r = store_step(st, errp)) > 0)
        json_array_append_new(items, row_to_json(st, k));
    if (r < 0)
        return NULL;
    return json_pack("{s:O, s:I, s:I, s:I}", "items", items, "total", (json_int_t) total,
                     "limit", (json_int_t) limit, "offset", (json_int_t) offset);
}

/* ---- lists as text ------------------------------------------------------ */

struct sbuf {
    char *s;
    size_t len, cap;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* 's' as a JSON string; false (nothing written) when it is not UTF-8. */
static bool sb_json_string(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) s[i] >= 0x80) {
            AUTOFREE char *copy = xstrdup(s);
            if (utf8_sanitize(copy, n))
                return false;
            break;
        }
    sb_put(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char) *p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_put(b, run, (size_t) (p - run));
        char esc[8];
        switch (c) {
        case '"': sb_str(b, "\\\""); break;
        case '\\': sb_str(b, "\\\\"); break;
        case '\n': sb_str(b, "\\n"); break;
        case '\t': sb_str(b, "\\t"); break;
        case '\r': sb_str(b, "\\r"); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_str(b, esc);
        }
        run = p + 1;
    }
    sb_str(b, run);
    sb_put(b, "\"", 1);
    return true;
}

/* One row as JSON text, as row_to_json() would serialise it: stored JSON
 * documents are spliced in as they are (the manager wrote them with
 * json_to_string(), so they are JSON), instead of being parsed and written
 * again - what makes long lists cheap. */
static void row_to_text(struct sbuf *b, struct store_stmt *st, const struct inv_kind *k)
{
    sb_put(b, "{", 1);
    for (int i = 0; k->fields[i].column; i++) {
        const struct inv_field *f = &k->fields[i];
        if (i)
            sb_put(b, ",", 1);
        sb_json_string(b, f->key);
        sb_put(b, ":", 1);
        if (store_col_is_null(st, i)) {
            sb_str(b, "null");
            continue;
        }
        char num[32];
        switch (f->type) {
        case INV_INT:
            snprintf(num, sizeof num, "%lld", (long long) store_col_int(st, i));
            sb_str(b, num);
            break;
        case INV_BOOL:
            sb_str(b, store_col_int(st, i) ? "true" : "false");
            break;
        case INV_TIME: {
            AUTOFREE char *s = inv_time_format(store_col_int(st, i));
            sb_json_string(b, s);
            break;
        }
        case INV_JSON: {
            const char *s = store_col_text(st, i);
            /* Documents are objects or arrays; anything else is not one of
             * ours and goes the slow way. */
            if ((s[0] == '{' || s[0] == '[') && s[strlen(s) - 1] == (s[0] == '{' ? '}' : ']')) {
                sb_str(b, s);
            } else {
                json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
                AUTOFREE char *txt = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
                json_decref(v);
                if (txt && *txt)
                    sb_str(b, txt);
                else if (!sb_json_string(b, s))
                    sb_str(b, "null");
            }
            break;
        }
        default:
            if (!sb_json_string(b, store_col_text(st, i)))
                sb_str(b, "null");
            break;
        }
    }
    sb_put(b, "}", 1);
}

char *inv_list_text(struct store_txn *t, const struct inv_kind *k, const struct inv_page *p,
                    size_t *len, struct error **errp)
{
    int64_t limit, offset, total = 0;
    AUTOSTMT struct store_stmt *st = list_query(t, k, p, &limit, &offset, &total, errp);
    if (!st)
        return NULL;
    struct sbuf b = { 0 };
    sb_str(&b, "{\"items\":[");
    int r, n = 0;
    while ((r = store_step(st, errp)) > 0) {
        if (n++)
            sb_put(&b, ",", 1);
        row_to_text(&b, st, k);
    }
    if (r < 0) {
        free(b.s);
        return NULL;
    }
    char tail[128];
    snprintf(tail, sizeof tail, "],\"total\":%lld,\"limit\":%lld,\"offset\":%lld}",
             (long long) total, (long long) limit, (long long) offset);
    sb_str(&b, tail);
    *len = b.len;
    return b.s;
}

/* The condition that finds 'ref' in 'k': by id, or by name for a non-UUID. */
static const char *ref_where(const struct inv_kind *k, const char *ref)
{
    return k->by_name && !uuid_is_valid(ref) ? "name = ?" : "id = ?";
}

static int ref_not_found(const struct inv_kind *k, const char *ref, const char *field,
                         struct error **errp)
{
    return error_set_field(errp, ERR_NOT_FOUND, field, "no %s '%s'", k->what, ref);
}

json_t *inv_get(struct store_txn *t, const struct inv_kind *k, const char *ref,
                struct error **errp)
{
    AUTOFREE char *cols = select_list(k);
    AUTOFREE char *sql = xasprintf("SELECT %s FROM %s WHERE %s", cols, k->table,
                                   ref_where(k, ref));
    AUTOSTMT struct store_stmt *st = store_query(t, sql, STORE_ARGS(SV_TEXT(ref)), errp);
    if (!st)
        return NULL;
    int r = store_step(st, errp);
    if (r < 0)
        return NULL;
    if (r == 0)
        return ref_not_found(k, ref, NULL, errp), NULL;
    return row_to_json(st, k);
}

int inv_resolve(struct store_txn *t, const struct inv_kind *k, const char *ref,
                const char *field, char id_out[UUID_STRLEN + 1], struct error **errp)
{
    AUTOFREE char *sql = xasprintf("SELECT id FROM %s WHERE %s", k->table, ref_where(k, ref));
    AUTOSTMT struct store_stmt *st = store_query(t, sql, STORE_ARGS(SV_TEXT(ref)), errp);
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r < 0)
        return -1;
    if (r == 0)
        return ref_not_found(k, ref, field, errp);
    snprintf(id_out, UUID_STRLEN + 1, "%s", store_col_text(st, 0));
    return 0;
}

/* Reads the 'name' of row 'id' into a new string (for messages and events). */
static char *row_name(struct store_txn *t, const struct inv_kind *k, const char *id)
{
    if (!k->by_name)
        return xstrdup(id);
    AUTOFREE char *sql = xasprintf("SELECT name FROM %s WHERE id = ?", k->table);
    AUTOSTMT struct store_stmt *st = store_query(t, sql, STORE_ARGS(SV_TEXT(id)), NULL);
    if (!st || store_step(st, NULL) <= 0)
        return xstrdup(id);
    return xstrdup(store_col_text(st, 0));
}

static int record(struct store_txn *t, const struct inv_kind *k, const char *verb,
                  const char *id, const char *name, const char *actor, struct error **errp)
{
    AUTOFREE char *type = xasprintf("%s.%s", k->what, verb);
    AUTOFREE char *msg = xasprintf("%s '%s' %s", k->what, name, verb);
    struct event e = {
        .type = type, .object_type = k->what, .object_id = id, .object_name = name,
        .user_name = actor, .message = msg,
    };
    return event_append(t, &e, errp) < 0 ? -1 : 0;
}

int inv_delete(struct store_txn *t, const struct inv_kind *k, const char *ref,
               const char *actor, struct error **errp)
{
    char id[UUID_STRLEN + 1];
    if (inv_resolve(t, k, ref, NULL, id, errp) < 0)
        return -1;
    AUTOFREE char *name = row_name(t, k, id);
    AUTOFREE char *sql = xasprintf("DELETE FROM %s WHERE id = ?", k->table);
    AUTOERROR struct error *err = NULL;
    if (store_exec(t, sql, STORE_ARGS(SV_TEXT(id)), &err) < 0) {
        if (err->code == ERR_CONFLICT)
            return error_set(errp, ERR_CONFLICT, "%s '%s' is still in use by other objects",
                             k->what, name);
        error_propagate(errp, steal_pointer(&err));
        return -1;
    }
    return record(t, k, "deleted", id, name, actor, errp);
}

/* ERR_CONFLICT if another row of 'k' than 'except_id' is called 'name'. */
static int name_free(struct store_txn *t, const struct inv_kind *k, const char *name,
                     const char *except_id, struct error **errp)
{
    AUTOFREE char *sql = xasprintf("SELECT COUNT(*) FROM %s WHERE name = ? AND id <> ?",
                                   k->table);
    int64_t n = 0;
    if (store_query_int(t, sql, STORE_ARGS(SV_TEXT(name), SV_TEXT(except_id ? except_id : "")),
                        &n, errp) < 0)
        return -1;
    if (n > 0)
        return error_set_field(errp, ERR_CONFLICT, "name", "%s '%s' already exists", k->what,
                               name);
    return 0;
}

/* ---- sites -------------------------------------------------------------- */

int inv_site_create(struct store_txn *t, const json_t *spec, const char *actor,
                    char id_out[UUID_STRLEN + 1], struct error **errp)
{
    static const char *const keys[] = { "name", "description", NULL };
    const char *name = NULL, *desc = "";
    if (json_check_keys(spec, keys, NULL, errp) < 0 ||
        json_get_string(spec, "name", NULL, true, &name, errp) < 0 ||
        json_get_string(spec, "description", NULL, false, &desc, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 ||
        text_check(desc, INV_DESCRIPTION_MAX, "description", errp) < 0 ||
        name_free(t, &inv_sites, name, NULL, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    int64_t now = store_now_ms();
    if (store_exec(t, "INSERT INTO sites (id, name, description, created_at, updated_at) "
                      "VALUES (?, ?, ?, ?, ?)",
                   STORE_ARGS(SV_TEXT(id), SV_TEXT(name), SV_TEXT(desc), SV_INT(now),
                              SV_INT(now)), errp) < 0 ||
        record(t, &inv_sites, "created", id, name, actor, errp) < 0)
        return -1;
    memcpy(id_out, id, sizeof id);
    return 0;
}

int inv_site_update(struct store_txn *t, const char *ref, const json_t *spec,
                    const char *actor, struct error **errp)
{
    static const char *const keys[] = { "name", "description", NULL };
    char id[UUID_STRLEN + 1];
    if (json_check_keys(spec, keys, NULL, errp) < 0 ||
        inv_resolve(t, &inv_sites, ref, NULL, id, errp) < 0)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT name, description FROM sites WHERE id = ?", STORE_ARGS(SV_TEXT(id)), errp);
    if (!st || store_step(st, errp) <= 0)
        return -1;
    AUTOFREE char *old_name = xstrdup(store_col_text(st, 0));
    AUTOFREE char *old_desc = xstrdup(store_col_text(st, 1));
    const char *name = old_name, *desc = old_desc;
    if (json_get_string(spec, "name", NULL, false, &name, errp) < 0 ||
        json_get_string(spec, "description", NULL, false, &desc, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 ||
        text_check(desc, INV_DESCRIPTION_MAX, "description", errp) < 0 ||
        name_free(t, &inv_sites, name, id, errp) < 0)
        return -1;
    if (store_exec(t, "UPDATE sites SET name = ?, description = ?, updated_at = ? WHERE id = ?",
                   STORE_ARGS(SV_TEXT(name), SV_TEXT(desc), SV_INT(store_now_ms()),
                              SV_TEXT(id)), errp) < 0)
        return -1;
    return record(t, &inv_sites, "updated", id, name, actor, errp);
}

/* ---- clusters ----------------------------------------------------------- */

static int policy_check(const char *policy, struct error **errp)
{
    if (strcmp(policy, "automatic") && strcmp(policy, "load-balancing"))
        return error_set_field(errp, ERR_INVALID_ARG, "startup_policy",
                               "startup_policy '%s' must be 'automatic' or 'load-balancing'",
                               policy);
    return 0;
}

int inv_cluster_create(struct store_txn *t, const json_t *spec, const char *actor,
                       char id_out[UUID_STRLEN + 1], struct error **errp)
{
    static const char *const keys[] = {
        "name", "site", "description", "startup_policy", "memory_overcommit", NULL,
    };
    const char *name = NULL, *site = NULL, *desc = "", *policy = "automatic";
    bool overcommit = false;
    char site_id[UUID_STRLEN + 1];
    if (json_check_keys(spec, keys, NULL, errp) < 0 ||
        json_get_string(spec, "name", NULL, true, &name, errp) < 0 ||
        json_get_string(spec, "site", NULL, true, &site, errp) < 0 ||
        json_get_string(spec, "description", NULL, false, &desc, errp) < 0 ||
        json_get_string(spec, "startup_policy", NULL, false, &policy, errp) < 0 ||
        json_get_bool(spec, "memory_overcommit", NULL, false, &overcommit, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 ||
        text_check(desc, INV_DESCRIPTION_MAX, "description", errp) < 0 ||
        policy_check(policy, errp) < 0 ||
        inv_resolve(t, &inv_sites, site, "site", site_id, errp) < 0 ||
        name_free(t, &inv_clusters, name, NULL, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    int64_t now = store_now_ms();
    if (store_exec(t, "INSERT INTO clusters (id, site_id, name, description, startup_policy, "
                      "memory_overcommit, created_at, updated_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   STORE_ARGS(SV_TEXT(id), SV_TEXT(site_id), SV_TEXT(name), SV_TEXT(desc),
                              SV_TEXT(policy), SV_BOOL(overcommit), SV_INT(now), SV_INT(now)),
                   errp) < 0 ||
        record(t, &inv_clusters, "created", id, name, actor, errp) < 0)
        return -1;
    memcpy(id_out, id, sizeof id);
    return 0;
}

int inv_cluster_update(struct store_txn *t, const char *ref, const json_t *spec,
                       const char *actor, struct error **errp)
{
    static const char *const keys[] = {
        "name", "description", "startup_policy", "memory_overcommit", NULL,
    };
    char id[UUID_STRLEN + 1];
    if (json_check_keys(spec, keys, NULL, errp) < 0 ||
        inv_resolve(t, &inv_clusters, ref, NULL, id, errp) < 0)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT name, description, startup_policy, memory_overcommit FROM clusters "
           "WHERE id = ?", STORE_ARGS(SV_TEXT(id)), errp);
    if (!st || store_step(st, errp) <= 0)
        return -1;
    AUTOFREE char *old_name = xstrdup(store_col_text(st, 0));
    AUTOFREE char *old_desc = xstrdup(store_col_text(st, 1));
    AUTOFREE char *old_policy = xstrdup(store_col_text(st, 2));
    bool overcommit = store_col_int(st, 3) != 0;
    const char *name = old_name, *desc = old_desc, *policy = old_policy;
    if (json_get_string(spec, "name", NULL, false, &name, errp) < 0 ||
        json_get_string(spec, "description", NULL, false, &desc, errp) < 0 ||
        json_get_string(spec, "startup_policy", NULL, false, &policy, errp) < 0 ||
        json_get_bool(spec, "memory_overcommit", NULL, false, &overcommit, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 ||
        text_check(desc, INV_DESCRIPTION_MAX, "description", errp) < 0 ||
        policy_check(policy, errp) < 0 ||
        name_free(t, &inv_clusters, name, id, errp) < 0)
        return -1;
    if (store_exec(t, "UPDATE clusters SET name = ?, description = ?, startup_policy = ?, "
                      "memory_overcommit = ?, updated_at = ? WHERE id = ?",
                   STORE_ARGS(SV_TEXT(name), SV_TEXT(desc), SV_TEXT(policy),
                              SV_BOOL(overcommit), SV_INT(store_now_ms()), SV_TEXT(id)),
                   errp) < 0)
        return -1;
    return record(t, &inv_clusters, "updated", id, name, actor, errp);
}

/* ---- hosts -------------------------------------------------------------- */

int inv_host_set_maintenance(struct store_txn *t, const char *ref, bool on, const char *actor,
                             struct error **errp)
{
    char id[UUID_STRLEN + 1];
    if (inv_resolve(t, &inv_hosts, ref, NULL, id, errp) < 0)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(t, "SELECT name, state FROM hosts WHERE id = ?",
                                                 STORE_ARGS(SV_TEXT(id)), errp);
    if (!st || store_step(st, errp) <= 0)
        return -1;
    AUTOFREE char *name = xstrdup(store_col_text(st, 0));
    bool in = !strcmp(store_col_text(st, 1), "maintenance");
    if (in == on)
        return 0;               /* already there: nothing changes */
    if (store_exec(t, "UPDATE hosts SET state = ?, desired_generation = desired_generation + 1, "
                      "updated_at = ? WHERE id = ?",
                   STORE_ARGS(SV_TEXT(on ? "maintenance" : "disconnected"),
                              SV_INT(store_now_ms()), SV_TEXT(id)), errp) < 0)
        return -1;
    AUTOFREE char *msg = xasprintf("host '%s' %s maintenance mode", name,
                                   on ? "entered" : "left");
    struct event e = {
        .type = "host.maintenance", .object_type = "host", .object_id = id,
        .object_name = name, .user_name = actor, .message = msg,
    };
    return event_append(t, &e, errp) < 0 ? -1 : 0;
}
