/* api.h - the manager's REST API v1 (/api/v1/...): one route table in which
 * every route names the weakest role it admits, and the helpers handlers
 * share.
 *
 * Access is deny by default: a route whose access is API_DENY (the zero
 * value, i.e. a route someone forgot to classify) is refused with 403
 * before anything else.  API_PUBLIC routes run without credentials (login,
 * version).  For the others the dispatcher reads "Authorization: Bearer
 * <token>" (auth_authenticate()): no or a bad token is 401, a role weaker
 * than the route's is 403, both with the one error body, and the handler
 * never runs.
 *
 * Handlers live by resource: api_auth.c (sessions, users, tokens),
 * api_inventory.c (sites, clusters, hosts), api_hosts.c (join tokens, host
 * join), api_tasks.c (version, tasks, events), api_vms.c (VMs, templates,
 * snapshots), api_storage.c (datastores, volumes), api_net.c (DVSs, port
 * groups, NAT networks, security groups).  Each exports a table; api.c joins them.
 *
 * Neighbours: http/http_server.h (serves the table), manager.h (the opaque
 * context), auth.h, inventory.h; docs/api/openapi.yaml documents every route
 * and tests/unit/manager/test_api_spec.c checks the two agree. */
#ifndef STRATA_MANAGER_API_H
#define STRATA_MANAGER_API_H

#include <stdbool.h>

#include "http/http_server.h"
#include "manager/auth.h"
#include "manager/inventory.h"
#include "manager/manager.h"

#define API_MAX_BODY ((size_t) 256 * 1024)

enum api_access { API_DENY, API_PUBLIC, API_VIEWER, API_OPERATOR, API_ADMIN };

const char *api_access_to_string(enum api_access a);
/* The weakest role that passes 'a' (ROLE_NONE for API_PUBLIC and API_DENY). */
enum role api_access_role(enum api_access a);

/* One call, as a handler sees it. */
struct api_call {
    struct manager *m;
    const struct http_request *req;
    struct auth_identity who;       /* zeroed on public routes */
    bool authenticated;
};

typedef int api_handler(struct api_call *c, struct http_response *resp, struct error **errp);

struct api_route {
    const char *method;
    const char *pattern;
    enum api_access access;
    api_handler *handler;
};

/* The access decision for a call of 'r' by 'who' (NULL: no valid
 * credentials): 0 to go on, else ERR_FORBIDDEN for an unclassified route
 * (API_DENY or anything unknown) or too weak a role, ERR_UNAUTHORIZED when
 * credentials are needed and missing. */
int api_access_check(const struct api_route *r, const struct auth_identity *who,
                     struct error **errp);

/* Every route, terminated by { NULL }. */
const struct api_route *manager_api_table(void);
/* The same as http_server routes (same order), for http_server_config. */
const struct http_route *manager_api_routes(void);

extern const struct api_route api_auth_routes[], api_inventory_routes[], api_task_routes[],
    api_host_routes[], api_vm_routes[], api_storage_routes[], api_net_routes[],
    api_netsec_routes[];

/* ---- helpers for handlers ----------------------------------------------- */

/* The request's body, or ERR_INVALID_ARG when it has none. */
const json_t *api_body(const struct api_call *c, struct error **errp);
/* Fails naming the first query argument not in 'allowed' (NULL-terminated,
 * may be NULL for "none"). */
int api_query_check(const struct api_call *c, const char *const *allowed, struct error **errp);
/* Parses ?limit=&offset= and the filters of 'k' into 'p', refusing any other
 * query argument except those in 'extra' (NULL-terminated, may be NULL). */
int api_page_parse(const struct api_call *c, const struct inv_kind *k,
                   const char *const *extra, struct inv_page *p, struct error **errp);
/* Parses an unsigned integer query argument 'key' within [min, max];
 * leaves '*out' when absent. */
int api_query_int(const struct api_call *c, const char *key, long long min, long long max,
                  long long *out, struct error **errp);
/* Path parameter 'i' as an object reference: a UUID, or a name following
 * inv_name_validate(); ERR_INVALID_ARG naming 'field' otherwise. */
const char *api_ref(const struct api_call *c, size_t i, const char *field,
                    struct error **errp);
/* The generic list and get of kind 'k' (GET /api/v1/<kind>[/{id}]): page,
 * filters, one object by id or name. */
int api_list(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
             struct error **errp);
int api_get(struct api_call *c, struct http_response *resp, const struct inv_kind *k,
            struct error **errp);

/* The user name to record in events. */
static inline const char *api_actor(const struct api_call *c)
{
    return c->authenticated ? c->who.user_name : NULL;
}
/* Fills 'resp' with 'status' and 'body' (taken). */
static inline int api_reply(struct http_response *resp, int status, json_t *body)
{
    resp->status = status;
    resp->body = body;
    return 0;
}

#endif
