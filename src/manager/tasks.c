/* tasks.c - see tasks.h: task rows, their steps and progress, and the
 * start-up recovery that never leaves a task running.
 *
 * Neighbours: store.h, events.h (every state change is an event). */
#define LOG_MODULE "tasks"
#include "manager/tasks.h"

#include <string.h>

#include "manager/events.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

static const char *const state_names[] = {
    [TASK_QUEUED] = "queued",
    [TASK_RUNNING] = "running",
    [TASK_SUCCEEDED] = "succeeded",
    [TASK_FAILED] = "failed",
    [TASK_CANCELLED] = "cancelled",
};

const char *task_state_to_string(enum task_state s)
{
    return (size_t) s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

int task_state_from_string(const char *s)
{
    for (size_t i = 0; s && i < ARRAY_SIZE(state_names); i++)
        if (!strcmp(s, state_names[i]))
            return (int) i;
    return -1;
}

static int task_event(struct store_txn *t, const char *id, const char *kind, const char *state,
                      const char *user, const char *detail, struct error **errp)
{
    AUTOFREE char *type = xasprintf("task.%s", state);
    AUTOFREE char *msg = detail ? xasprintf("task %s (%s) %s: %s", id, kind, state, detail)
                                : xasprintf("task %s (%s) %s", id, kind, state);
    struct event e = {
        .type = type, .severity = !strcmp(state, "failed") ? "error" : "info",
        .object_type = "task", .object_id = id, .task_id = id, .user_name = user,
        .message = msg,
    };
    return event_append(t, &e, errp) < 0 ? -1 : 0;
}

int task_create(struct store_txn *t, const char *kind, const char *object_type,
                const char *object_id, const char *user_name, const json_t *params,
                const char *const *steps, char id_out[UUID_STRLEN + 1], struct error **errp)
{
    AUTOJSON json_t *s = json_array();
    for (const char *const *p = steps; p && *p; p++)
        json_array_append_new(s, json_pack("{s:s, s:s}", "name", *p, "state", "pending"));
    AUTOFREE char *steps_text = json_to_string(s);
    AUTOFREE char *params_text = params ? json_to_string(params) : xstrdup("{}");
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    int64_t now = store_now_ms();
    if (store_exec(t, "INSERT INTO tasks (id, kind, state, progress, object_type, object_id, "
                      "user_name, params, steps, created_at, updated_at) "
                      "VALUES (?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?)",
                   STORE_ARGS(SV_TEXT(id), SV_TEXT(kind), SV_TEXT(object_type),
                              SV_TEXT(object_id), SV_TEXT(user_name), SV_TEXT(params_text),
                              SV_TEXT(steps_text), SV_INT(now), SV_INT(now)), errp) < 0 ||
        task_event(t, id, kind, "queued", user_name, NULL, errp) < 0)
        return -1;
    memcpy(id_out, id, sizeof id);
    return 0;
}

/* Reads kind, state, user and steps of task 'id'. */
struct task_row {
    char *kind, *state, *user;
    json_t *steps;
};

static void task_row_clear(struct task_row *r)
{
    if (!r)
        return;
    free(r->kind);
    free(r->state);
    free(r->user);
    json_decref(r->steps);
}
#define AUTOTASKROW __attribute__((cleanup(task_row_clear)))

static int task_read(struct store_txn *t, const char *id, struct task_row *r,
                     struct error **errp)
{
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT kind, state, user_name, steps FROM tasks WHERE id = ?",
        STORE_ARGS(SV_TEXT(id)), errp);
    if (!st)
        return -1;
    int k = store_step(st, errp);
    if (k < 0)
        return -1;
    if (k == 0)
        return error_set(errp, ERR_NOT_FOUND, "no task '%s'", id);
    r->kind = xstrdup(store_col_text(st, 0));
    r->state = xstrdup(store_col_text(st, 1));
    r->user = xstrdup(store_col_text(st, 2));
    r->steps = json_loads(store_col_text(st, 3), 0, NULL);
    if (!json_is_array(r->steps)) {
        json_decref(r->steps);
        r->steps = json_array();
    }
    return 0;
}

static void step_set(json_t *steps, size_t i, const char *state)
{
    json_t *s = json_array_get(steps, i);
    if (s)
        json_object_set_new(s, "state", json_string(state));
}

int task_step(struct store_txn *t, const char *id, size_t index, int progress,
              struct error **errp)
{
    AUTOTASKROW struct task_row r = { 0 };
    if (task_read(t, id, &r, errp) < 0)
        return -1;
    int st = task_state_from_string(r.state);
    if (st != TASK_QUEUED && st != TASK_RUNNING)
        return error_set(errp, ERR_BAD_STATE, "task '%s' is %s", id, r.state);
    if (index >= json_array_size(r.steps))
        return error_set(errp, ERR_INTERNAL, "task '%s' has no step %zu", id, index);
    for (size_t i = 0; i < index; i++)
        step_set(r.steps, i, "done");
    step_set(r.steps, index, "running");
    AUTOFREE char *steps = json_to_string(r.steps);
    int64_t now = store_now_ms();
    if (progress < 0)
        progress = 0;
    if (progress > 100)
        progress = 100;
    if (store_exec(t, "UPDATE tasks SET state = 'running', progress = ?, steps = ?, "
                      "updated_at = ?, started_at = COALESCE(started_at, ?) WHERE id = ?",
                   STORE_ARGS(SV_INT(progress), SV_TEXT(steps), SV_INT(now), SV_INT(now),
                              SV_TEXT(id)), errp) < 0)
        return -1;
    if (st == TASK_QUEUED && task_event(t, id, r.kind, "running", r.user, NULL, errp) < 0)
        return -1;
    return 0;
}

int task_finish(struct store_txn *t, const char *id, enum task_state state,
                const json_t *result, const struct error *err, struct error **errp)
{
    if (state != TASK_SUCCEEDED && state != TASK_FAILED && state != TASK_CANCELLED)
        return error_set(errp, ERR_INTERNAL, "task '%s' cannot end %s", id,
                         task_state_to_string(state));
    AUTOTASKROW struct task_row r = { 0 };
    if (task_read(t, id, &r, errp) < 0)
        return -1;
    int st = task_state_from_string(r.state);
    if (st != TASK_QUEUED && st != TASK_RUNNING)
        return error_set(errp, ERR_BAD_STATE, "task '%s' has already ended %s", id, r.state);
    for (size_t i = 0; i < json_array_size(r.steps); i++) {
        const char *s = json_string_value(json_object_get(json_array_get(r.steps, i), "state"));
        if (state == TASK_SUCCEEDED)
            step_set(r.steps, i, "done");
        else if (s && !strcmp(s, "running"))
            step_set(r.steps, i, "failed");
    }
    AUTOFREE char *steps = json_to_string(r.steps);
    AUTOFREE char *result_text = result ? json_to_string(result) : NULL;
    AUTOJSON json_t *ej = err ? error_to_json(err) : NULL;
    AUTOFREE char *err_text = ej ? json_to_string(json_object_get(ej, "error")) : NULL;
    int64_t now = store_now_ms();
    if (store_exec(t, "UPDATE tasks SET state = ?, progress = COALESCE(?, progress), steps = ?, "
                      "result = ?, "
                      "error = ?, updated_at = ?, finished_at = ? WHERE id = ?",
                   STORE_ARGS(SV_TEXT(task_state_to_string(state)),
                              state == TASK_SUCCEEDED ? SV_INT(100) : SV_NULL, SV_TEXT(steps),
                              SV_TEXT(result_text), SV_TEXT(err_text), SV_INT(now),
                              SV_INT(now), SV_TEXT(id)), errp) < 0)
        return -1;
    return task_event(t, id, r.kind, task_state_to_string(state), r.user,
                      err ? err->message : NULL, errp);
}

int task_step_set(struct store_txn *t, const char *id, size_t index, const char *state,
                  struct error **errp)
{
    AUTOTASKROW struct task_row r = { 0 };
    if (task_read(t, id, &r, errp) < 0)
        return -1;
    if (index >= json_array_size(r.steps))
        return error_set(errp, ERR_INTERNAL, "task '%s' has no step %zu", id, index);
    step_set(r.steps, index, state);
    AUTOFREE char *steps = json_to_string(r.steps);
    return store_exec(t, "UPDATE tasks SET steps = ?, updated_at = ? WHERE id = ?",
                      STORE_ARGS(SV_TEXT(steps), SV_INT(store_now_ms()), SV_TEXT(id)),
                      errp) < 0 ? -1 : 0;
}

int task_checkpoint_save(struct store_txn *t, const char *id, const json_t *checkpoint,
                         struct error **errp)
{
    AUTOFREE char *text = json_to_string(checkpoint);
    return store_exec(t, "UPDATE tasks SET checkpoint = ?, updated_at = ? WHERE id = ?",
                      STORE_ARGS(SV_TEXT(text), SV_INT(store_now_ms()), SV_TEXT(id)),
                      errp) < 0 ? -1 : 0;
}

int64_t tasks_recover(struct store *s, bool (*keep)(const char *kind, void *opaque),
                      void *opaque, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, errp);
    if (!t)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT id, kind FROM tasks WHERE state IN ('queued', 'running') ORDER BY created_at",
        STORE_NO_ARGS, errp);
    if (!st)
        return -1;
    AUTOSTRV char **ids = NULL;
    size_t n = 0;
    int r;
    while ((r = store_step(st, errp)) > 0) {
        if (keep && keep(store_col_text(st, 1), opaque))
            continue;
        ids = xrealloc(ids, (n + 2) * sizeof *ids);
        ids[n++] = xstrdup(store_col_text(st, 0));
        ids[n] = NULL;
    }
    store_stmt_free(steal_pointer(&st));
    if (r < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        AUTOERROR struct error *why = NULL;
        error_set(&why, ERR_INTERNAL,
                  "interrupted: the manager stopped while the task was unfinished");
        if (task_finish(t, ids[i], TASK_FAILED, NULL, why, errp) < 0)
            return -1;
    }
    if (store_commit(steal_pointer(&t), errp) < 0)
        return -1;
    if (n)
        LOG_WARN("%zu unfinished task(s) from a previous run marked failed", n);
    return (int64_t) n;
}
