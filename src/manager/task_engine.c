/* task_engine.c - see task_engine.h: worker threads that run persistent
 * tasks step by step, undo on failure or cancellation, and resume or roll
 * back after a restart.
 *
 * In memory the engine keeps one 'job' per task it owns (queued or
 * running), in submission order; a worker takes the first job that is not
 * running and whose object no running job holds.  Everything a restart must
 * know is written first to the store through tasks.c: the step about to run,
 * the steps done, the checkpoint, the final state.  No lock is held while a
 * step runs.
 *
 * Neighbours: tasks.c (the rows), manager.c (start/stop), api_tasks.c
 * (cancel). */
#define LOG_MODULE "tasks"
#include "manager/task_engine.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "manager/manager.h"
#include "manager/tasks.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define DEFAULT_WORKERS 4

struct job {
    struct job *next;
    char id[UUID_STRLEN + 1];
    const struct task_kind_def *kind;
    char *object_type, *object_id;
    json_t *params, *checkpoint;
    size_t start_step;
    bool rollback;              /* recovery: undo steps [0, rollback_from] and fail */
    size_t rollback_from;
    bool running, cancel;
};

struct task_engine {
    struct manager *m;
    const struct task_kind_def *const *kinds;
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* a job was added or finished, or stopping */
    struct job *jobs;
    pthread_t *threads;
    unsigned n_threads;
    bool stopping;
};

static void job_free(struct job *j)
{
    if (!j)
        return;
    free(j->object_type);
    free(j->object_id);
    json_decref(j->params);
    json_decref(j->checkpoint);
    free(j);
}

static const struct task_kind_def *kind_find(const struct task_engine *e, const char *kind)
{
    for (const struct task_kind_def *const *k = e->kinds; k && *k; k++)
        if (kind && !strcmp((*k)->kind, kind))
            return *k;
    return NULL;
}

static size_t kind_steps(const struct task_kind_def *k)
{
    size_t n = 0;
    while (k->steps[n].name)
        n++;
    return n;
}

static bool same_object(const struct job *a, const struct job *b)
{
    return a->object_type && a->object_id && b->object_type && b->object_id &&
           !strcmp(a->object_type, b->object_type) && !strcmp(a->object_id, b->object_id);
}

/* ---- persistence helpers ------------------------------------------------ */

/* Runs one write with its own transaction; logs (once) what it could not
 * record, since a worker has nobody to return the error to. */
static int persist_step(struct task_engine *e, const struct job *j, size_t i, int progress,
                        struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(e->m->store, STORE_WRITE, errp);
    if (!t || task_step(t, j->id, i, progress, errp) < 0)
        return -1;
    return manager_commit(e->m, steal_pointer(&t), errp);
}

void task_progress(struct task_ctx *c, int percent)
{
    if (!c->n_steps)
        return;
    percent = percent < 0 ? 0 : percent > 100 ? 100 : percent;
    int overall = (int) ((c->step_index * 100 + (size_t) percent) / c->n_steps);
    if (overall >= 100)
        overall = 99;           /* 100 only when the task has succeeded */
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, &err);
    if (!t || store_exec(t, "UPDATE tasks SET progress = ? WHERE id = ? AND state = 'running' "
                            "AND progress < ?",
                         STORE_ARGS(SV_INT(overall), SV_TEXT(c->task_id), SV_INT(overall)),
                         &err) < 0 ||
        manager_commit(c->m, steal_pointer(&t), &err) < 0)
        LOG_RL_WARN("task %s: cannot record progress: %s", c->task_id, err->message);
}

static int persist_done(struct task_engine *e, const struct job *j, size_t i,
                        const char *state, const json_t *checkpoint, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(e->m->store, STORE_WRITE, errp);
    if (!t || task_step_set(t, j->id, i, state, errp) < 0 ||
        (checkpoint && task_checkpoint_save(t, j->id, checkpoint, errp) < 0))
        return -1;
    return manager_commit(e->m, steal_pointer(&t), errp);
}

static void persist_finish(struct task_engine *e, const struct job *j, enum task_state state,
                           const json_t *result, const struct error *why)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(e->m->store, STORE_WRITE, &err);
    if (!t || task_finish(t, j->id, state, result, why, &err) < 0 ||
        manager_commit(e->m, steal_pointer(&t), &err) < 0)
        LOG_ERROR("task %s: cannot record its end (%s): %s", j->id,
                  task_state_to_string(state), err->message);
}

/* ---- running ------------------------------------------------------------ */

/* Undoes steps from..0 (newest first).  Step 'failed_step' (if < SIZE_MAX)
 * is recorded 'failed', the others 'undone'. */
static void undo_steps(struct task_engine *e, struct job *j, struct task_ctx *c, size_t from,
                       size_t failed_step)
{
    for (size_t i = from + 1; i-- > 0;) {
        const struct task_step_def *s = &j->kind->steps[i];
        if (s->undo) {
            LOG_INFO("task %s (%s): undoing step '%s'", j->id, j->kind->kind, s->name);
            s->undo(c);
        }
        AUTOERROR struct error *err = NULL;
        if (persist_done(e, j, i, i == failed_step ? "failed" : "undone", c->checkpoint,
                         &err) < 0)
            LOG_ERROR("task %s: cannot record the undo of step '%s': %s", j->id, s->name,
                      err->message);
    }
}

static bool cancel_requested(struct task_engine *e, struct job *j)
{
    pthread_mutex_lock(&e->lock);
    bool c = j->cancel;
    pthread_mutex_unlock(&e->lock);
    return c;
}

bool task_cancel_requested(struct task_ctx *c)
{
    return c->engine && c->job && cancel_requested(c->engine, c->job);
}

static void execute(struct task_engine *e, struct job *j)
{
    AUTOJSON json_t *result = json_object();
    struct task_ctx c = {
        .m = e->m, .task_id = j->id, .object_type = j->object_type,
        .object_id = j->object_id, .params = j->params, .checkpoint = j->checkpoint,
        .result = result, .opaque = j->kind->opaque,
    };
    size_t n = kind_steps(j->kind);

    if (j->rollback) {
        LOG_WARN("task %s (%s) was interrupted by a restart: rolling it back", j->id,
                 j->kind->kind);
        undo_steps(e, j, &c, j->rollback_from, SIZE_MAX);
        AUTOERROR struct error *why = NULL;
        error_set(&why, ERR_INTERNAL, "interrupted: the manager stopped while the task was "
                                      "unfinished; its steps were undone");
        persist_finish(e, j, TASK_FAILED, NULL, why);
        return;
    }

    c.n_steps = n;
    c.engine = e;
    c.job = j;
    for (size_t i = j->start_step; i < n; i++) {
        const struct task_step_def *s = &j->kind->steps[i];
        AUTOERROR struct error *err = NULL;
        c.step_index = i;
        if (cancel_requested(e, j)) {
            if (i > 0)
                undo_steps(e, j, &c, i - 1, SIZE_MAX);
            persist_finish(e, j, TASK_CANCELLED, NULL, NULL);
            return;
        }
        if (persist_step(e, j, i, (int) (i * 100 / n), &err) < 0 ||
            s->run(&c, &err) < 0) {
            if (!err)
                error_set(&err, ERR_INTERNAL, "step '%s' failed without an error", s->name);
            error_prefix(&err, "step '%s'", s->name);
            LOG_WARN("task %s (%s): %s", j->id, j->kind->kind, err->message);
            undo_steps(e, j, &c, i, i);
            /* A step that gave up because the task was cancelled: cancelled. */
            bool cancelled = cancel_requested(e, j);
            persist_finish(e, j, cancelled ? TASK_CANCELLED : TASK_FAILED, NULL,
                           cancelled ? NULL : err);
            return;
        }
        if (persist_done(e, j, i, "done", c.checkpoint, &err) < 0) {
            LOG_ERROR("task %s: cannot record step '%s': %s", j->id, s->name, err->message);
            undo_steps(e, j, &c, i, SIZE_MAX);
            persist_finish(e, j, TASK_FAILED, NULL, err);
            return;
        }
    }
    persist_finish(e, j, TASK_SUCCEEDED, result, NULL);
}

static struct job *next_job(struct task_engine *e)
{
    for (struct job *j = e->jobs; j; j = j->next) {
        if (j->running)
            continue;
        bool busy = false;
        for (struct job *o = e->jobs; o && !busy; o = o->next)
            busy = o != j && o->running && same_object(o, j);
        if (!busy)
            return j;
    }
    return NULL;
}

static void remove_job(struct task_engine *e, struct job *j)
{
    for (struct job **p = &e->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            return;
        }
}

static void *worker_main(void *arg)
{
    struct task_engine *e = arg;
    pthread_mutex_lock(&e->lock);
    while (!e->stopping) {
        struct job *j = next_job(e);
        if (!j) {
            pthread_cond_wait(&e->cond, &e->lock);
            continue;
        }
        j->running = true;
        pthread_mutex_unlock(&e->lock);
        execute(e, j);
        pthread_mutex_lock(&e->lock);
        remove_job(e, j);
        job_free(j);
        pthread_cond_broadcast(&e->cond);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

static void enqueue(struct task_engine *e, struct job *j)
{
    pthread_mutex_lock(&e->lock);
    struct job **p = &e->jobs;
    while (*p)
        p = &(*p)->next;
    *p = j;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* ---- public ------------------------------------------------------------- */

int task_engine_submit(struct task_engine *e, const char *kind, const char *object_type,
                       const char *object_id, const char *user_name, const json_t *params,
                       char id_out[UUID_STRLEN + 1], struct error **errp)
{
    const struct task_kind_def *k = kind_find(e, kind);
    if (!k)
        return error_set(errp, ERR_INVALID_ARG, "no task kind '%s'", kind ? kind : "");
    size_t n = kind_steps(k);
    const char **names = xcalloc(n + 1, sizeof *names);
    for (size_t i = 0; i < n; i++)
        names[i] = k->steps[i].name;
    char id[UUID_STRLEN + 1];
    AUTOTXN struct store_txn *t = store_begin(e->m->store, STORE_WRITE, errp);
    int r = t ? task_create(t, kind, object_type, object_id, user_name, params, names, id, errp)
              : -1;
    free(names);
    if (r < 0 || manager_commit(e->m, steal_pointer(&t), errp) < 0)
        return -1;
    struct job *j = xzalloc(sizeof *j);
    memcpy(j->id, id, sizeof id);
    j->kind = k;
    j->object_type = xstrdup(object_type);
    j->object_id = xstrdup(object_id);
    j->params = params ? json_deep_copy(params) : json_object();
    j->checkpoint = json_object();
    enqueue(e, j);
    if (id_out)
        memcpy(id_out, id, sizeof id);
    return 0;
}

int task_engine_cancel(struct task_engine *e, const char *id, struct error **errp)
{
    pthread_mutex_lock(&e->lock);
    struct job *j = e->jobs;
    while (j && strcmp(j->id, id))
        j = j->next;
    if (j && j->running) {
        j->cancel = true;
        pthread_mutex_unlock(&e->lock);
        return 0;
    }
    if (j) {
        remove_job(e, j);
        pthread_cond_broadcast(&e->cond);
    }
    pthread_mutex_unlock(&e->lock);
    if (j) {
        persist_finish(e, j, TASK_CANCELLED, NULL, NULL);
        job_free(j);
        return 0;
    }
    /* Not ours: tell finished from unknown. */
    AUTOTXN struct store_txn *t = store_begin(e->m->store, STORE_READ, errp);
    AUTOSTMT struct store_stmt *st = t ? store_query(t, "SELECT state FROM tasks WHERE id = ?",
                                                     STORE_ARGS(SV_TEXT(id)), errp) : NULL;
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r < 0)
        return -1;
    if (r == 0)
        return error_set(errp, ERR_NOT_FOUND, "no task '%s'", id);
    return error_set(errp, ERR_BAD_STATE, "task '%s' is %s and cannot be cancelled", id,
                     store_col_text(st, 0));
}

bool task_engine_wait_idle(struct task_engine *e, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->lock);
    while (e->jobs)
        if (pthread_cond_timedwait(&e->cond, &e->lock, &deadline) != 0)
            break;
    bool idle = e->jobs == NULL;
    pthread_mutex_unlock(&e->lock);
    return idle;
}

static bool kind_known(const char *kind, void *opaque)
{
    return kind_find(opaque, kind) != NULL;
}

/* Queues every unfinished task of a known kind, to resume or roll back. */
static int recover(struct task_engine *e, struct error **errp)
{
    struct job *found = NULL, **tail = &found;
    {
        AUTOTXN struct store_txn *t = store_begin(e->m->store, STORE_READ, errp);
        AUTOSTMT struct store_stmt *st = t ? store_query(
            t, "SELECT id, kind, state, object_type, object_id, params, checkpoint, steps "
               "FROM tasks WHERE state IN ('queued', 'running') ORDER BY created_at",
            STORE_NO_ARGS, errp) : NULL;
        if (!st)
            return -1;
        int r;
        while ((r = store_step(st, errp)) > 0) {
            const struct task_kind_def *k = kind_find(e, store_col_text(st, 1));
            if (!k)
                continue;
            struct job *j = xzalloc(sizeof *j);
            snprintf(j->id, sizeof j->id, "%s", store_col_text(st, 0));
            j->kind = k;
            j->object_type = xstrdup(store_col_text(st, 3));
            j->object_id = xstrdup(store_col_text(st, 4));
            j->params = json_loads(store_col_text(st, 5), 0, NULL);
            j->checkpoint = json_loads(store_col_text(st, 6), 0, NULL);
            if (!json_is_object(j->params)) {
                json_decref(j->params);
                j->params = json_object();
            }
            if (!json_is_object(j->checkpoint)) {
                json_decref(j->checkpoint);
                j->checkpoint = json_object();
            }
            AUTOJSON json_t *steps = json_loads(store_col_text(st, 7), 0, NULL);
            size_t n = kind_steps(k), first_not_done = 0, last_touched = SIZE_MAX;
            for (size_t i = 0; i < n; i++) {
                const char *s = json_string_value(
                    json_object_get(json_array_get(steps, i), "state"));
                bool done = s && !strcmp(s, "done");
                if (done && first_not_done == i)
                    first_not_done = i + 1;
                if (s && (done || !strcmp(s, "running")))
                    last_touched = i;
            }
            bool started = strcmp(store_col_text(st, 2), "queued") != 0;
            if (started && !k->resumable) {
                j->rollback = true;
                j->rollback_from = last_touched;    /* SIZE_MAX: nothing to undo */
            } else {
                j->start_step = started ? first_not_done : 0;
            }
            *tail = j;
            tail = &j->next;
        }
        if (r < 0) {
            for (struct job *j = found, *next; j; j = next) {
                next = j->next;
                job_free(j);
            }
            return -1;
        }
    }
    for (struct job *j = found, *next; j; j = next) {
        next = j->next;
        j->next = NULL;
        LOG_INFO("task %s (%s) from a previous run: %s", j->id, j->kind->kind,
                 j->rollback ? "rolling back" : "resuming");
        enqueue(e, j);
    }
    if (tasks_recover(e->m->store, kind_known, e, errp) < 0)
        return -1;
    return 0;
}

struct task_engine *task_engine_start(struct manager *m, const struct task_kind_def *const *kinds,
                                      unsigned workers, struct error **errp)
{
    struct task_engine *e = xzalloc(sizeof *e);
    e->m = m;
    e->kinds = kinds;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    /* Recovery first, so the workers find the recovered jobs in order. */
    if (recover(e, errp) < 0) {
        task_engine_stop(e);
        return NULL;
    }
    e->n_threads = workers ? workers : DEFAULT_WORKERS;
    e->threads = xcalloc(e->n_threads, sizeof *e->threads);
    for (unsigned i = 0; i < e->n_threads; i++)
        if (pthread_create(&e->threads[i], NULL, worker_main, e) != 0) {
            e->n_threads = i;
            error_set(errp, ERR_INTERNAL, "cannot start task worker threads");
            task_engine_stop(e);
            return NULL;
        }
    return e;
}

void task_engine_stop(struct task_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    for (unsigned i = 0; i < e->n_threads; i++)
        pthread_join(e->threads[i], NULL);
    for (struct job *j = e->jobs, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    free(e->threads);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e);
}
