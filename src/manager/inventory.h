/* inventory.h - the manager's objects as rows: names, listing with filters
 * and pagination, lookup by id or name, and the writes of sites and clusters.
 *
 * Each kind of object is described once by a 'struct inv_kind': its table,
 * the columns shown (with their JSON key and type: a column not listed, such
 * as users.password_hash, is never shown), the list filters it accepts and
 * its order.  inv_list() and inv_get() work for every kind from that
 * description alone; SQL is assembled only from these constant tables and
 * every value is bound.
 *
 * Names: 1..63 characters from [A-Za-z0-9._-], starting with a letter or
 * digit, and never shaped like a UUID, so a path segment is an id when it is
 * a UUID and a name otherwise ("GET /api/v1/sites/dc1").
 *
 * Writes record an event in the same transaction (events.h), naming 'actor'
 * (the user), so every state change is in the event stream.
 *
 * Neighbours: store.h (below), events.h, api_inventory.c (the REST routes),
 * schema.c (the tables). */
#ifndef STRATA_MANAGER_INVENTORY_H
#define STRATA_MANAGER_INVENTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "manager/store.h"
#include "util/error.h"
#include "util/uuid.h"

#define INV_NAME_MAX 63
#define INV_DESCRIPTION_MAX 1024
#define INV_MAX_FILTERS 8
#define INV_DEFAULT_LIMIT 100
#define INV_MAX_LIMIT 1000

/* Fails with ERR_INVALID_ARG naming 'field' unless 'name' follows the rules above. */
int inv_name_validate(const char *name, const char *field, struct error **errp);
/* Returns a new string "2026-11-22T01:02:03.456Z" for 'ms' since the epoch. */
char *inv_time_format(int64_t ms);

enum inv_type {
    INV_TEXT,
    INV_INT,
    INV_BOOL,       /* INTEGER 0/1 shown as false/true */
    INV_TIME,       /* BIGINT ms shown as an ISO 8601 string */
    INV_JSON,       /* TEXT holding a JSON document, shown as that document */
};

struct inv_field {
    const char *column;     /* SQL column (or expression) */
    const char *key;        /* JSON key */
    enum inv_type type;
};

struct inv_filter {
    const char *param;      /* query parameter: "name", "state", "cluster" */
    const char *where;      /* SQL condition with 'n_binds' '?' each bound to the value */
    int n_binds;
};

struct inv_kind {
    const char *what;                   /* "site": for messages and events */
    const char *table;
    const struct inv_field *fields;     /* the first is the id; ends with { NULL } */
    const struct inv_filter *filters;   /* ends with { NULL } */
    const char *order_by;
    bool by_name;                       /* has a unique 'name' to look up by */
};

extern const struct inv_kind inv_sites, inv_clusters, inv_hosts, inv_users, inv_tokens,
    inv_tasks, inv_events, inv_join_tokens, inv_vms, inv_templates, inv_snapshots;

/* A list request: window and filter values (index = position in
 * kind->filters; NULL = not filtered). */
struct inv_page {
    int64_t limit;                      /* 0: INV_DEFAULT_LIMIT */
    int64_t offset;
    const char *filters[INV_MAX_FILTERS];
    const char *cursor_where;           /* optional extra condition with one '?' ... */
    int64_t cursor;                     /* ... bound to this ("seq > ?") */
};

/* Returns a new {"items": [...], "total": N, "limit": L, "offset": O}. */
json_t *inv_list(struct store_txn *t, const struct inv_kind *k, const struct inv_page *p,
                 struct error **errp);
/* The same page as JSON text (a new buffer, '*len' bytes): stored JSON
 * documents are spliced in as they are rather than parsed and serialised
 * again.  What the list routes answer. */
char *inv_list_text(struct store_txn *t, const struct inv_kind *k, const struct inv_page *p,
                    size_t *len, struct error **errp);
/* Returns a new JSON object for the row whose id (or name) is 'ref';
 * ERR_NOT_FOUND naming the kind otherwise. */
json_t *inv_get(struct store_txn *t, const struct inv_kind *k, const char *ref,
                struct error **errp);
/* Resolves 'ref' (id or name) to the row's id.  'field' names the input
 * for the error (NULL for a path parameter). */
int inv_resolve(struct store_txn *t, const struct inv_kind *k, const char *ref,
                const char *field, char id_out[UUID_STRLEN + 1], struct error **errp);
/* Deletes the row named by 'ref'; ERR_CONFLICT when other objects still
 * refer to it.  Records "<what>.deleted". */
int inv_delete(struct store_txn *t, const struct inv_kind *k, const char *ref,
               const char *actor, struct error **errp);

/* Creates a site from {"name", "description"?}; 'id_out' receives its id. */
int inv_site_create(struct store_txn *t, const json_t *spec, const char *actor,
                    char id_out[UUID_STRLEN + 1], struct error **errp);
/* Updates a site from {"name"?, "description"?}. */
int inv_site_update(struct store_txn *t, const char *ref, const json_t *spec,
                    const char *actor, struct error **errp);
/* Creates a cluster from {"name", "site", "description"?, "startup_policy"?,
 * "memory_overcommit"?} ('site' is an id or a name). */
int inv_cluster_create(struct store_txn *t, const json_t *spec, const char *actor,
                       char id_out[UUID_STRLEN + 1], struct error **errp);
/* Updates a cluster from {"name"?, "description"?, "startup_policy"?,
 * "memory_overcommit"?}. */
int inv_cluster_update(struct store_txn *t, const char *ref, const json_t *spec,
                       const char *actor, struct error **errp);

/* Puts a host in maintenance mode or takes it out (back to 'disconnected'
 * until its agent is heard from), bumping its desired generation. */
int inv_host_set_maintenance(struct store_txn *t, const char *ref, bool on, const char *actor,
                             struct error **errp);

#endif
