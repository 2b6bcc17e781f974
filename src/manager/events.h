/* events.h - the manager's event log: one row per state change or task step,
 * numbered by a sequence that only grows.
 *
 * Writers append events inside the transaction that makes the change, so an
 * event exists exactly when its change was committed.  Readers page through
 * them with a cursor ("since" = the last sequence number seen) and may wait
 * for new ones (manager_wait_change(), long poll); the sequence numbers let a
 * client resume after a disconnect without losing or repeating one.
 *
 * Types are "<object>.<verb>": "site.created", "cluster.updated",
 * "user.deleted", "host.maintenance", "task.failed", ...
 *
 * Neighbours: store.h, inventory.c/api_*.c/tasks.c (writers), api_tasks.c
 * (the GET /api/v1/events route), manager.c (wake-ups). */
#ifndef STRATA_MANAGER_EVENTS_H
#define STRATA_MANAGER_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "manager/store.h"
#include "util/error.h"

struct event {
    const char *type;           /* required: "site.created" */
    const char *severity;       /* "info" (default), "warning", "error" */
    const char *object_type;    /* "site" */
    const char *object_id;
    const char *object_name;
    const char *task_id;
    const char *user_name;      /* who caused it; NULL for the manager itself */
    const char *message;        /* required: one line for people */
    const json_t *data;         /* optional details (borrowed) */
};

/* Appends 'e' inside the write transaction 't'.  Returns its sequence
 * number (> 0) or -1. */
int64_t event_append(struct store_txn *t, const struct event *e, struct error **errp);

/* Retention: deletes the events older than 'cutoff_ms' and the tasks that
 * ended before it (never a queued or running one).  Sequence numbers are
 * not reused (they come from the table 'sequences').  Returns how many rows
 * went, or -1. */
int64_t history_prune(struct store *s, int64_t cutoff_ms, struct error **errp);

/* The newest sequence number (0 when there is none). */
int64_t event_last_seq(struct store_txn *t, struct error **errp);

#endif
