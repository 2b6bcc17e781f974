/* events.c - see events.h: appending to the event log.  Listing goes through
 * inventory.c's generic lister (kind 'inv_events', cursor "seq > ?"). */
#include "manager/events.h"

#include <string.h>

#include "util/json_util.h"
#include "util/mem.h"

int64_t event_append(struct store_txn *t, const struct event *e, struct error **errp)
{
    if (!e->type || !e->message)
        return error_set(errp, ERR_INTERNAL, "event without a type or message");
    int64_t seq = store_next_seq(t, "events", errp);
    if (seq < 0)
        return -1;
    AUTOFREE char *data = e->data ? json_to_string(e->data) : NULL;
    if (store_exec(t,
                   "INSERT INTO events (seq, at, type, severity, object_type, object_id, "
                   "object_name, task_id, user_name, message, data) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   STORE_ARGS(SV_INT(seq), SV_INT(store_now_ms()), SV_TEXT(e->type),
                              SV_TEXT(e->severity ? e->severity : "info"),
                              SV_TEXT(e->object_type), SV_TEXT(e->object_id),
                              SV_TEXT(e->object_name), SV_TEXT(e->task_id),
                              SV_TEXT(e->user_name), SV_TEXT(e->message), SV_TEXT(data)),
                   errp) < 0)
        return -1;
    return seq;
}

int64_t event_last_seq(struct store_txn *t, struct error **errp)
{
    int64_t v = 0;
    if (store_query_int(t, "SELECT COALESCE(MAX(seq), 0) FROM events", STORE_NO_ARGS, &v,
                        errp) < 0)
        return -1;
    return v;
}

int64_t history_prune(struct store *s, int64_t cutoff_ms, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, errp);
    if (!t)
        return -1;
    int64_t e = store_exec(t, "DELETE FROM events WHERE at < ?", STORE_ARGS(SV_INT(cutoff_ms)),
                           errp);
    if (e < 0)
        return -1;
    int64_t k = store_exec(t, "DELETE FROM tasks WHERE state IN ('succeeded', 'failed', "
                              "'cancelled') AND finished_at < ?",
                           STORE_ARGS(SV_INT(cutoff_ms)), errp);
    if (k < 0 || store_commit(steal_pointer(&t), errp) < 0)
        return -1;
    return e + k;
}
