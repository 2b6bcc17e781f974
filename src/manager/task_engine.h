/* task_engine.h - runs the manager's persistent tasks (tasks.h) on worker
 * threads, step by step, with undo.
 *
 * A kind of task is a list of steps; each step has run() and optionally
 * undo().  The engine records before each step that it is running and after
 * it what it left in the task's checkpoint (a JSON object the steps fill,
 * e.g. the path of a disk they created), each in its own committed
 * transaction, so a restart knows exactly where every task stood.
 *
 * Failure: when run() fails, the engine calls undo() of that step and of
 * every step done before it, newest first, marks them 'undone' and ends the
 * task 'failed' with run()'s error ("failed with cleanup").  Cancellation
 * (task_engine_cancel()) ends a queued task at once and a running one between
 * steps, the same way, as 'cancelled'.
 *
 * Restart (task_engine_start()): every task a previous process left queued
 * or running is either resumed, when its kind is 'resumable' (from its first
 * step not done; run() must then be idempotent), or rolled back like a failure
 * (undo() of the steps done or running), ending 'failed' with "interrupted".
 * A task of a kind this build does not know is ended 'failed' at once.  So
 * no task is ever left running.  undo() must tolerate a step that did not
 * finish (the crash may have come in the middle of it).
 *
 * One task at a time per object: a task waits (queued) while another task on
 * the same object_type/object_id runs.
 *
 * Neighbours: tasks.h (rows), manager.c (owns the engine), api_tasks.c
 * (cancel route); the kinds come from the modules that define operations. */
#ifndef STRATA_MANAGER_TASK_ENGINE_H
#define STRATA_MANAGER_TASK_ENGINE_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"
#include "util/uuid.h"

struct manager;
struct task_engine;

/* What a step sees.  Borrowed for the duration of the call. */
struct task_ctx {
    struct manager *m;
    const char *task_id;
    const char *object_type, *object_id;
    const json_t *params;
    json_t *checkpoint;     /* read-write: persisted after every successful step */
    json_t *result;         /* read-write: the task's result on success (starts {}) */
    void *opaque;           /* the kind's */
    size_t step_index, n_steps;     /* the step running, of how many */
    struct task_engine *engine;     /* private: for task_cancel_requested() */
    void *job;
};

/* Records how far the running step is (0..100); the task's progress is
 * the steps done plus this fraction of the current one.  Best effort (a
 * failure to record is logged), never moves the progress backwards. */
void task_progress(struct task_ctx *c, int percent);
/* True once the task was asked to stop (POST /api/v1/tasks/{id}/cancel): a
 * step waiting on something long (an agent job) may give up early; the
 * engine then undoes it and the steps before, as after any cancellation. */
bool task_cancel_requested(struct task_ctx *c);

struct task_step_def {
    const char *name;
    int (*run)(struct task_ctx *c, struct error **errp);
    void (*undo)(struct task_ctx *c);       /* optional; best effort, idempotent */
};

struct task_kind_def {
    const char *kind;                       /* "vm.start" */
    const struct task_step_def *steps;      /* ends with { NULL } */
    bool resumable;                         /* after a restart: resume, not roll back */
    void *opaque;
};

/* Starts 'workers' threads (0: 4) running tasks of 'kinds' (NULL-terminated,
 * borrowed for the engine's life) and recovers the tasks a previous process
 * left unfinished.  Returns a new engine. */
struct task_engine *task_engine_start(struct manager *m, const struct task_kind_def *const *kinds,
                                      unsigned workers, struct error **errp);
/* Stops taking tasks, lets running ones finish, joins the workers.  Tasks
 * still queued stay queued in the store (resumed at the next start).
 * Accepts NULL. */
void task_engine_stop(struct task_engine *e);

/* Records a queued task of 'kind' (params borrowed) and hands it to the
 * workers.  'id_out' receives its id.  ERR_INVALID_ARG for an unknown kind. */
int task_engine_submit(struct task_engine *e, const char *kind, const char *object_type,
                       const char *object_id, const char *user_name, const json_t *params,
                       char id_out[UUID_STRLEN + 1], struct error **errp);

/* Asks task 'id' to stop: a queued task ends cancelled now, a running one
 * after its current step (undoing what it did).  ERR_NOT_FOUND if unknown,
 * ERR_BAD_STATE if it has already ended. */
int task_engine_cancel(struct task_engine *e, const char *id, struct error **errp);

/* Waits until no task is queued or running in this engine or 'timeout_ms'
 * passes; true if idle.  For tests and shutdown. */
bool task_engine_wait_idle(struct task_engine *e, int timeout_ms);

#endif
