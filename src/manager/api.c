/* api.c - the manager's route table and its access check (see api.h), and
 * the query/body helpers every handler uses.
 *
 * The tables of api_auth.c, api_inventory.c, api_hosts.c and api_tasks.c are
 * joined once into 'table' (struct api_route) and a parallel 'http_table' (struct
 * http_route) whose every handler is dispatch(): the HTTP server tells the
 * handler which route matched (req->route), whose index in 'http_table' is
 * the index of the api_route with its access rule and real handler.
 *
 * Neighbours: http/http_server.c (calls dispatch()), auth.c (tokens),
 * api_*.c (the handlers). */
#define LOG_MODULE "api"
#include "manager/api.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

static const char *const access_names[] = {
    [API_DENY] = "deny",
    [API_PUBLIC] = "public",
    [API_VIEWER] = "viewer",
    [API_OPERATOR] = "operator",
    [API_ADMIN] = "administrator",
};

const char *api_access_to_string(enum api_access a)
{
    return (size_t) a < ARRAY_SIZE(access_names) ? access_names[a] : "deny";
}

enum role api_access_role(enum api_access a)
{
    switch (a) {
    case API_VIEWER: return ROLE_VIEWER;
    case API_OPERATOR: return ROLE_OPERATOR;
    case API_ADMIN: return ROLE_ADMINISTRATOR;
    default: return ROLE_NONE;
    }
}

/* ---- the table ---------------------------------------------------------- */

static struct api_route *table;
static struct http_route *http_table;
static size_t n_routes;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static int dispatch(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp);

static void build_table(void)
{
    const struct api_route *const parts[] = {
        api_task_routes, api_auth_routes, api_inventory_routes, api_host_routes,
        api_vm_routes, api_storage_routes, api_net_routes, api_netsec_routes,
    };
    size_t n = 0;
    for (size_t p = 0; p < ARRAY_SIZE(parts); p++)
        for (const struct api_route *r = parts[p]; r->method; r++)
            n++;
    table = xcalloc(n + 1, sizeof *table);
    http_table = xcalloc(n + 1, sizeof *http_table);
    size_t k = 0;
    for (size_t p = 0; p < ARRAY_SIZE(parts); p++)
        for (const struct api_route *r = parts[p]; r->method; r++, k++) {
            table[k] = *r;
            http_table[k] = (struct http_route) { r->method, r->pattern, dispatch };
        }
    n_routes = n;
}

const struct api_route *manager_api_table(void)
{
    pthread_once(&table_once, build_table);
    return table;
}

const struct http_route *manager_api_routes(void)
{
    pthread_once(&table_once, build_table);
    return http_table;
}

int api_access_check(const struct api_route *r, const struct auth_identity *who,
                     struct error **errp)
{
    switch (r->access) {
    case API_PUBLIC:
        return 0;
    case API_VIEWER:
    case API_OPERATOR:
    case API_ADMIN:
        if (!who)
            return error_set(errp, ERR_UNAUTHORIZED,
                             "authentication required: send 'Authorization: Bearer <token>'");
        if (who->role < api_access_role(r->access))
            return error_set(errp, ERR_FORBIDDEN, "%s %s needs the %s role; user '%s' is %s",
                             r->method, r->pattern, api_access_to_string(r->access),
                             who->user_name, role_to_string(who->role));
        return 0;
    default:
        /* Deny by default: a route nobody classified is never served. */
        return error_set(errp, ERR_FORBIDDEN, "%s %s has no access rule and is refused",
                         r->method, r->pattern);
    }
}

static int dispatch(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    if (!req->route || req->route < http_table || req->route >= http_table + n_routes)
        return error_set(errp, ERR_INTERNAL, "request matched no manager route");
    const struct api_route *r = &table[req->route - http_table];
    struct api_call c = { .m = opaque, .req = req };
    bool needs_user = r->access == API_VIEWER || r->access == API_OPERATOR ||
                      r->access == API_ADMIN;
    if (needs_user) {
        if (auth_authenticate(c.m->store, http_request_header(req, "Authorization"), &c.who,
                              errp) < 0)
            return -1;
        c.authenticated = true;
    }
    if (api_access_check(r, c.authenticated ? &c.who : NULL, errp) < 0) {
        if (c.authenticated)
            LOG_RL(LOG_LEVEL_INFO, "%s %s refused to %s '%s'", req->method, req->path,
                   role_to_string(c.who.role), c.who.user_name);
        return -1;
    }
    return r->handler(&c, resp, errp);
}

/* ---- helpers ------------------------------------------------------------ */

const json_t *api_body(const struct api_call *c, struct error **errp)
{
    if (!c->req->body)
        return error_set(errp, ERR_INVALID_ARG, "this request needs a JSON object body"), NULL;
    return c->req->body;
}

static bool in_list(const char *key, const char *const *list)
{
    for (const char *const *p = list; p && *p; p++)
        if (!strcmp(*p, key))
            return true;
    return false;
}

int api_query_check(const struct api_call *c, const char *const *allowed, struct error **errp)
{
    const char *key;
    for (size_t i = 0; (key = http_request_query_key(c->req, i)); i++)
        if (!in_list(key, allowed))
            return error_set_field(errp, ERR_INVALID_ARG, key, "unknown query parameter '%s'",
                                   key);
    return 0;
}

int api_query_int(const struct api_call *c, const char *key, long long min, long long max,
                  long long *out, struct error **errp)
{
    const char *v = http_request_query(c->req, key);
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max)
        return error_set_field(errp, ERR_INVALID_ARG, key,
                               "query parameter '%s' must be an integer from %lld to %lld",
                               key, min, max);
    *out = n;
    return 0;
}

int api_page_parse(const struct api_call *c, const struct inv_kind *k,
                   const char *const *extra, struct inv_page *p, struct error **errp)
{
    memset(p, 0, sizeof *p);
    const char *key;
    for (size_t i = 0; (key = http_request_query_key(c->req, i)); i++) {
        if (!strcmp(key, "limit") || !strcmp(key, "offset") || in_list(key, extra))
            continue;
        bool known = false;
        for (int f = 0; f < INV_MAX_FILTERS && k->filters[f].param; f++)
            if (!strcmp(k->filters[f].param, key))
                known = true;
        if (!known)
            return error_set_field(errp, ERR_INVALID_ARG, key,
                                   "unknown query parameter '%s' for %ss", key, k->what);
    }
    long long limit = INV_DEFAULT_LIMIT, offset = 0;
    if (api_query_int(c, "limit", 1, INV_MAX_LIMIT, &limit, errp) < 0 ||
        api_query_int(c, "offset", 0, (long long) 1 << 40, &offset, errp) < 0)
        return -1;
    p->limit = limit;
    p->offset = offset;
    for (int f = 0; f < INV_MAX_FILTERS && k->filters[f].param; f++)
        p->filters[f] = http_request_query(c->req, k->filters[f].param);
    return 0;
}

const char *api_ref(const struct api_call *c, size_t i, const char *field,
                    struct error **errp)
{
    const char *v = i < c->req->n_params ? c->req->params[i] : NULL;
    if (!v)
        return error_set(errp, ERR_INTERNAL, "route has no path parameter %zu", i), NULL;
    if (uuid_is_valid(v))
        return v;
    if (inv_name_validate(v, field, errp) < 0)
        return NULL;
    return v;
}

int api_list(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
             struct error **errp)
{
    struct inv_page p;
    if (api_page_parse(c, k, NULL, &p, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    size_t len = 0;
    char *text = t ? inv_list_text(t, k, &p, &len, errp) : NULL;
    if (!text)
        return -1;
    resp->status = 200;
    resp->raw = text;
    resp->raw_len = len;
    resp->content_type = "application/json";
    return 0;
}

int api_get(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
            struct error **errp)
{
    const char *ref = api_ref(c, 0, "id", errp);
    if (!ref || api_query_check(c, NULL, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_get(t, k, ref, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}
