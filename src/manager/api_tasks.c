/* api_tasks.c - REST routes for the manager's version, tasks and events.
 *
 *   GET /api/v1/version        public: service name, version, API level
 *   GET /api/v1/tasks          viewer: list (?state= ?kind= ?object= ?user=)
 *   GET /api/v1/tasks/{id}     viewer
 *   POST /api/v1/tasks/{id}/cancel  operator: a queued task ends now, a
 *                              running one after its current step (undone)
 *   GET /api/v1/events         viewer: events after ?since=SEQ, oldest first;
 *                              with ?wait_ms=M (<= 60000) waits for the first
 *                              new matching event (long poll)
 *
 * Neighbours: api.c (dispatch, helpers), inventory.c (the lister), manager.c
 * (change notification for the long poll). */
#define LOG_MODULE "api"
#include <string.h>

#include "manager/api.h"
#include "manager/events.h"
#include "util/json_util.h"
#include "util/mem.h"

#define EVENTS_MAX_WAIT_MS 60000

static int h_version(struct api_call *c, struct http_response *resp, struct error **errp)
{
    if (api_query_check(c, NULL, errp) < 0)
        return -1;
    return api_reply(resp, 200, json_pack("{s:s, s:s, s:s}", "service", "strata-manager",
                                          "version", STRATA_VERSION, "api", "v1"));
}

static int h_task_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    struct inv_page p;
    if (api_page_parse(c, &inv_tasks, NULL, &p, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_list(t, &inv_tasks, &p, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int h_task_get(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *id = c->req->params[0];
    if (api_query_check(c, NULL, errp) < 0)
        return -1;
    if (!uuid_is_valid(id))
        return error_set_field(errp, ERR_INVALID_ARG, "id", "task id '%s' is not a UUID", id);
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_get(t, &inv_tasks, id, errp) : NULL;
    return j ? api_reply(resp, 200, j) : -1;
}

static int h_task_cancel(struct api_call *c, struct http_response *resp, struct error **errp)
{
    const char *id = c->req->params[0];
    if (api_query_check(c, NULL, errp) < 0)
        return -1;
    if (!uuid_is_valid(id))
        return error_set_field(errp, ERR_INVALID_ARG, "id", "task id '%s' is not a UUID", id);
    if (c->req->body && json_object_size(c->req->body) > 0)
        return error_set(errp, ERR_INVALID_ARG, "this request takes no body fields");
    if (task_engine_cancel(c->m->tasks, id, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    json_t *j = t ? inv_get(t, &inv_tasks, id, errp) : NULL;
    return j ? api_reply(resp, 202, j) : -1;
}

static int h_event_list(struct api_call *c, struct http_response *resp, struct error **errp)
{
    static const char *const extra[] = { "since", "wait_ms", NULL };
    struct inv_page p;
    long long since = 0, wait_ms = 0;
    if (api_page_parse(c, &inv_events, extra, &p, errp) < 0 ||
        api_query_int(c, "since", 0, INT64_MAX, &since, errp) < 0 ||
        api_query_int(c, "wait_ms", 0, EVENTS_MAX_WAIT_MS, &wait_ms, errp) < 0)
        return -1;
    if (http_request_query(c->req, "offset"))
        return error_set_field(errp, ERR_INVALID_ARG, "offset",
                               "events are paged with 'since', not 'offset'");
    p.cursor_where = "seq > ?";
    p.cursor = since;
    int64_t deadline = store_now_ms() + wait_ms;
    for (;;) {
        uint64_t gen = manager_change_gen(c->m);
        AUTOJSON json_t *j = NULL;
        int64_t last = 0;
        {
            AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
            if (!t || !(j = inv_list(t, &inv_events, &p, errp)) ||
                (last = event_last_seq(t, errp)) < 0)
                return -1;
        }
        json_t *items = json_object_get(j, "items");
        size_t n = json_array_size(items);
        if (n > 0 || store_now_ms() >= deadline ||
            !manager_wait_change(c->m, gen, deadline)) {
            int64_t next = n ? (int64_t) json_integer_value(
                                   json_object_get(json_array_get(items, n - 1), "seq"))
                             : since;
            json_object_del(j, "offset");
            json_object_set_new(j, "next", json_integer((json_int_t) next));
            json_object_set_new(j, "last", json_integer((json_int_t) last));
            return api_reply(resp, 200, steal_pointer(&j));
        }
    }
}

const struct api_route api_task_routes[] = {
    { "GET", "/api/v1/version", API_PUBLIC, h_version },
    { "GET", "/api/v1/tasks", API_VIEWER, h_task_list },
    { "GET", "/api/v1/tasks/{id}", API_VIEWER, h_task_get },
    { "POST", "/api/v1/tasks/{id}/cancel", API_OPERATOR, h_task_cancel },
    { "GET", "/api/v1/events", API_VIEWER, h_event_list },
    { NULL, NULL, API_DENY, NULL },
};
