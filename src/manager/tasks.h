/* tasks.h - persistent tasks: every long operation of the manager is a row
 * with a kind, the object it acts on, named steps, progress and a final
 * state, so its outcome survives the manager.
 *
 * States: queued -> running -> succeeded | failed | cancelled.  Each step is
 * {"name", "state": "pending|running|done|failed|undone"} in the task's
 * 'steps' array.  Every state change records an event ("task.<state>").
 *
 * After a crash (kill -9) of the manager, tasks_recover() runs at start-up
 * before anything else: a task left queued or running is never left so; it
 * ends 'failed' with an error saying it was interrupted, and its running
 * step is marked 'failed' (the engine that runs steps undoes what a
 * step had done before marking it; see docs/manager.md).
 *
 * Neighbours: store.h, events.h, manager.c (calls tasks_recover()),
 * api_tasks.c (GET /api/v1/tasks). */
#ifndef STRATA_MANAGER_TASKS_H
#define STRATA_MANAGER_TASKS_H

#include <jansson.h>
#include <stdbool.h>

#include "manager/store.h"
#include "util/error.h"
#include "util/uuid.h"

enum task_state { TASK_QUEUED, TASK_RUNNING, TASK_SUCCEEDED, TASK_FAILED, TASK_CANCELLED };

const char *task_state_to_string(enum task_state s);
int task_state_from_string(const char *s);     /* -1 if unknown */

/* Creates a queued task with the NULL-terminated step names 'steps' (may be
 * NULL).  'params' is borrowed.  'id_out' receives its id. */
int task_create(struct store_txn *t, const char *kind, const char *object_type,
                const char *object_id, const char *user_name, const json_t *params,
                const char *const *steps, char id_out[UUID_STRLEN + 1], struct error **errp);

/* Marks step 'index' running (and the task running, and earlier steps done)
 * and sets the progress (0..100). */
int task_step(struct store_txn *t, const char *id, size_t index, int progress,
              struct error **errp);

/* Ends the task: 'state' is TASK_SUCCEEDED, TASK_FAILED or TASK_CANCELLED;
 * 'result' (borrowed, optional) on success, 'err' (borrowed) otherwise.  A
 * task that already ended is ERR_BAD_STATE. */
int task_finish(struct store_txn *t, const char *id, enum task_state state,
                const json_t *result, const struct error *err, struct error **errp);

/* Sets the state of step 'index' ("done", "undone", ...) without touching
 * the task's state. */
int task_step_set(struct store_txn *t, const char *id, size_t index, const char *state,
                  struct error **errp);

/* Saves 'checkpoint' (borrowed; what completed steps recorded). */
int task_checkpoint_save(struct store_txn *t, const char *id, const json_t *checkpoint,
                         struct error **errp);

/* Ends every task left queued or running by a previous manager process as
 * failed, except those for which 'keep' (optional) returns true (the task
 * engine resumes or rolls those back itself).  Returns how many were
 * ended, or -1. */
int64_t tasks_recover(struct store *s, bool (*keep)(const char *kind, void *opaque),
                      void *opaque, struct error **errp);

#endif
