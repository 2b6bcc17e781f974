/* test_task_engine.c - the task engine with scripted kinds of task: steps
 * in order with checkpoints, failure undone newest first, cancellation of a
 * queued and of a running task, one task at a time per object, 20 tasks at
 * once, and restart after a simulated kill -9 (rows left running): a
 * non-resumable kind is rolled back with its checkpoint, a resumable one
 * resumes at its first unfinished step, a queued one runs, an unknown kind
 * ends failed.  No task is left queued or running.
 *
 * Steps append "<kind>:<run|undo>:<step>" to a shared log, so the tests can
 * check order. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "manager/manager.h"
#include "manager/task_engine.h"
#include "manager/tasks.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

/* ---- scripted steps ----------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static char trace[8192];
static bool gate_open = true;       /* "wait" steps block while false */
static int waiting;                 /* how many are blocked on the gate */
static int active[8], max_active[8];   /* per object "o0".."o7" */

static void note(const struct task_ctx *c, const char *what, const char *step)
{
    pthread_mutex_lock(&lock);
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "%s%s:%s", n ? " " : "", what, step);
    pthread_mutex_unlock(&lock);
    (void) c;
}

static int obj_index(const struct task_ctx *c)
{
    return c->object_id && c->object_id[0] == 'o' ? (c->object_id[1] - '0') & 7 : -1;
}

static int run_a(struct task_ctx *c, struct error **errp)
{
    (void) errp;
    note(c, "run", "a");
    json_object_set_new(c->checkpoint, "a", json_string("made-a"));
    return 0;
}

static int run_b(struct task_ctx *c, struct error **errp)
{
    (void) errp;
    note(c, "run", "b");
    json_object_set_new(c->checkpoint, "b", json_integer(2));
    json_object_set_new(c->result, "answer", json_integer(42));
    return 0;
}

static int run_boom(struct task_ctx *c, struct error **errp)
{
    note(c, "run", "boom");
    return error_set(errp, ERR_IO, "boom");
}

static int run_wait(struct task_ctx *c, struct error **errp)
{
    (void) errp;
    int o = obj_index(c);
    pthread_mutex_lock(&lock);
    if (o >= 0 && ++active[o] > max_active[o])
        max_active[o] = active[o];
    waiting++;
    pthread_cond_broadcast(&cond);
    while (!gate_open)
        pthread_cond_wait(&cond, &lock);
    waiting--;
    if (o >= 0)
        active[o]--;
    pthread_mutex_unlock(&lock);
    note(c, "run", "wait");
    return 0;
}

static void undo_a(struct task_ctx *c)
{
    const char *v = json_string_value(json_object_get(c->checkpoint, "a"));
    note(c, "undo", v ? v : "a-without-checkpoint");
}

static void undo_b(struct task_ctx *c)
{
    note(c, "undo", "b");
}

static void undo_boom(struct task_ctx *c)
{
    note(c, "undo", "boom");
}

static const struct task_step_def ok_steps[] = {
    { "a", run_a, undo_a }, { "b", run_b, undo_b }, { NULL, NULL, NULL },
};
static const struct task_step_def fail_steps[] = {
    { "a", run_a, undo_a }, { "b", run_b, undo_b }, { "boom", run_boom, undo_boom },
    { NULL, NULL, NULL },
};
static const struct task_step_def wait_steps[] = {
    { "a", run_a, undo_a }, { "wait", run_wait, NULL }, { "b", run_b, undo_b },
    { NULL, NULL, NULL },
};
static const struct task_kind_def kind_ok = { "test.ok", ok_steps, false, NULL };
static const struct task_kind_def kind_fail = { "test.fail", fail_steps, false, NULL };
static const struct task_kind_def kind_wait = { "test.wait", wait_steps, false, NULL };
static const struct task_kind_def kind_resume = { "test.resume", ok_steps, true, NULL };
static const struct task_kind_def *const kinds[] = {
    &kind_ok, &kind_fail, &kind_wait, &kind_resume, NULL,
};

/* ---- fixture ------------------------------------------------------------ */

struct fixture {
    char *dir, *db;
    struct manager *m;
};

static struct manager *open_mgr(struct fixture *f, const struct task_kind_def *const *k)
{
    struct error *err = NULL;
    struct manager_config mc = { .db = f->db, .admin_password = "admin-password",
                                 .task_kinds = k, .task_workers = 4 };
    struct manager *m = manager_open(&mc, &err);
    if (!m)
        fail_msg("manager_open: %s", err->message);
    return m;
}

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof *f);
    char tmpl[] = "/tmp/strata-tasks-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    f->db = xasprintf("%s/m.db", f->dir);
    trace[0] = '\0';
    gate_open = true;
    waiting = 0;
    memset(active, 0, sizeof active);
    memset(max_active, 0, sizeof max_active);
    f->m = open_mgr(f, kinds);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pthread_mutex_lock(&lock);
    gate_open = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    manager_close(f->m);
    rm_rf(f->dir, NULL);
    free(f->db);
    free(f->dir);
    free(f);
    return 0;
}

/* Reads one column of task 'id' as a new string. */
static char *task_col(struct fixture *f, const char *id, const char *col)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_READ, &err);
    AUTOFREE char *sql = xasprintf("SELECT %s FROM tasks WHERE id = ?", col);
    AUTOSTMT struct store_stmt *st = store_query(t, sql, STORE_ARGS(SV_TEXT(id)), &err);
    assert_non_null(st);
    assert_int_equal(store_step(st, &err), 1);
    return xstrdup(store_col_text(st, 0));
}

static void assert_task(struct fixture *f, const char *id, const char *state)
{
    AUTOFREE char *s = task_col(f, id, "state");
    if (strcmp(s, state))
        fail_msg("task %s is %s, expected %s", id, s, state);
}

static void wait_waiting(int n)
{
    pthread_mutex_lock(&lock);
    while (waiting < n)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

static void gate(bool open)
{
    pthread_mutex_lock(&lock);
    gate_open = open;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static int64_t unfinished(struct fixture *f)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_READ, &err);
    int64_t n = -1;
    assert_int_equal(store_query_int(t, "SELECT COUNT(*) FROM tasks WHERE state IN "
                                        "('queued', 'running')", STORE_NO_ARGS, &n, &err), 1);
    return n;
}

/* ---- cases -------------------------------------------------------------- */

static void test_success(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    char id[UUID_STRLEN + 1];
    AUTOJSON json_t *params = json_pack("{s:s}", "x", "y");
    assert_int_equal(task_engine_submit(f->m->tasks, "test.ok", "vm", "o1", "ada", params, id,
                                        &err), 0);
    assert_true(task_engine_wait_idle(f->m->tasks, 10000));
    assert_string_equal(trace, "run:a run:b");
    assert_task(f, id, "succeeded");
    AUTOFREE char *steps = task_col(f, id, "steps");
    assert_string_equal(steps, "[{\"name\":\"a\",\"state\":\"done\"},"
                               "{\"name\":\"b\",\"state\":\"done\"}]");
    AUTOFREE char *cp = task_col(f, id, "checkpoint");
    assert_string_equal(cp, "{\"a\":\"made-a\",\"b\":2}");
    AUTOFREE char *res = task_col(f, id, "result");
    assert_string_equal(res, "{\"answer\":42}");
    AUTOFREE char *pr = task_col(f, id, "params");
    assert_string_equal(pr, "{\"x\":\"y\"}");
    AUTOFREE char *prog = task_col(f, id, "progress");
    assert_string_equal(prog, "100");

    assert_int_equal(task_engine_submit(f->m->tasks, "test.nothing", NULL, NULL, NULL, NULL, id,
                                        &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
}

static void test_failure_undone(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    char id[UUID_STRLEN + 1];
    assert_int_equal(task_engine_submit(f->m->tasks, "test.fail", "vm", "o1", NULL, NULL, id,
                                        &err), 0);
    assert_true(task_engine_wait_idle(f->m->tasks, 10000));
    /* The failing step is cleaned up too, then the others newest first. */
    assert_string_equal(trace, "run:a run:b run:boom undo:boom undo:b undo:made-a");
    assert_task(f, id, "failed");
    AUTOFREE char *steps = task_col(f, id, "steps");
    assert_string_equal(steps, "[{\"name\":\"a\",\"state\":\"undone\"},"
                               "{\"name\":\"b\",\"state\":\"undone\"},"
                               "{\"name\":\"boom\",\"state\":\"failed\"}]");
    AUTOFREE char *e = task_col(f, id, "error");
    assert_non_null(strstr(e, "step 'boom': boom"));
    assert_non_null(strstr(e, "io-error"));
    /* Cancelling an ended task: bad state. */
    assert_int_equal(task_engine_cancel(f->m->tasks, id, &err), -1);
    assert_int_equal(err->code, ERR_BAD_STATE);
    error_free(steal_pointer(&err));
    char other[UUID_STRLEN + 1];
    uuid_generate(other);
    assert_int_equal(task_engine_cancel(f->m->tasks, other, &err), -1);
    assert_int_equal(err->code, ERR_NOT_FOUND);
}

static void test_cancel(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    char running[UUID_STRLEN + 1], queued[UUID_STRLEN + 1];
    gate(false);
    assert_int_equal(task_engine_submit(f->m->tasks, "test.wait", "vm", "o2", NULL, NULL,
                                        running, &err), 0);
    wait_waiting(1);
    /* Same object: waits queued behind the first. */
    assert_int_equal(task_engine_submit(f->m->tasks, "test.ok", "vm", "o2", NULL, NULL, queued,
                                        &err), 0);
    nanosleep(&(struct timespec) { 0, 100 * 1000 * 1000 }, NULL);
    assert_task(f, queued, "queued");
    assert_int_equal(task_engine_cancel(f->m->tasks, queued, &err), 0);
    assert_task(f, queued, "cancelled");
    /* The running one stops after its current step and undoes step a. */
    assert_int_equal(task_engine_cancel(f->m->tasks, running, &err), 0);
    gate(true);
    assert_true(task_engine_wait_idle(f->m->tasks, 10000));
    assert_task(f, running, "cancelled");
    assert_string_equal(trace, "run:a run:wait undo:made-a");
    AUTOFREE char *steps = task_col(f, running, "steps");
    assert_string_equal(steps, "[{\"name\":\"a\",\"state\":\"undone\"},"
                               "{\"name\":\"wait\",\"state\":\"undone\"},"
                               "{\"name\":\"b\",\"state\":\"pending\"}]");
}

static void test_concurrency(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    enum { N = 20 };
    char ids[N][UUID_STRLEN + 1];
    gate(false);
    /* 15 tasks on 3 objects (o3..o5), 5 with no object. */
    for (int i = 0; i < N; i++) {
        char obj[4] = { 'o', (char) ('3' + i % 3), 0, 0 };
        assert_int_equal(task_engine_submit(f->m->tasks, "test.wait", i < 15 ? "vm" : NULL,
                                            i < 15 ? obj : NULL, NULL, NULL, ids[i], &err), 0);
    }
    wait_waiting(4);        /* four workers busy */
    gate(true);
    assert_true(task_engine_wait_idle(f->m->tasks, 30000));
    for (int i = 0; i < N; i++)
        assert_task(f, ids[i], "succeeded");
    for (int o = 3; o <= 5; o++)
        assert_int_equal(max_active[o], 1);     /* never two at once on one object */
    assert_int_equal(unfinished(f), 0);
}

/* Writes rows as a manager killed in the middle would have left them. */
static void plant(struct fixture *f, const char *kind, const char *const *steps,
                  int running_step, bool first_done, char id[UUID_STRLEN + 1])
{
    AUTOERROR struct error *err = NULL;
    /* Recovery takes tasks in creation order (milliseconds): keep them apart. */
    nanosleep(&(struct timespec) { 0, 5 * 1000 * 1000 }, NULL);
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_WRITE, &err);
    /* One object for all: they run one after the other, in order. */
    assert_int_equal(task_create(t, kind, "vm", "o6", NULL, NULL, steps, id, &err), 0);
    if (running_step >= 0) {
        assert_int_equal(task_step(t, id, (size_t) running_step, 50, &err), 0);
        if (!first_done)
            assert_int_equal(task_step_set(t, id, 0, "running", &err), 0);
        AUTOJSON json_t *cp = json_pack("{s:s}", "a", "planted-a");
        assert_int_equal(task_checkpoint_save(t, id, cp, &err), 0);
    }
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
}

static void test_restart(void **state)
{
    struct fixture *f = *state;
    static const char *const two[] = { "a", "b", NULL };
    char rb[UUID_STRLEN + 1], rs[UUID_STRLEN + 1], q[UUID_STRLEN + 1], unk[UUID_STRLEN + 1],
        mid[UUID_STRLEN + 1];
    /* Plant rows without an engine that knows them: restart the manager
     * with no kinds first, so nothing runs them. */
    manager_close(f->m);
    f->m = open_mgr(f, NULL);
    plant(f, "test.ok", two, 1, true, rb);        /* a done, b running: roll back */
    plant(f, "test.ok", two, 0, false, mid);      /* killed inside step a */
    plant(f, "test.resume", two, 1, true, rs);    /* resumable: go on with b */
    plant(f, "test.ok", two, -1, false, q);       /* never started */
    plant(f, "test.gone", two, 0, false, unk);    /* a kind this build lacks */
    manager_close(f->m);

    f->m = open_mgr(f, kinds);
    assert_true(task_engine_wait_idle(f->m->tasks, 10000));
    assert_int_equal(unfinished(f), 0);

    assert_task(f, rb, "failed");
    AUTOFREE char *e = task_col(f, rb, "error");
    assert_non_null(strstr(e, "interrupted"));
    AUTOFREE char *steps = task_col(f, rb, "steps");
    assert_string_equal(steps, "[{\"name\":\"a\",\"state\":\"undone\"},"
                               "{\"name\":\"b\",\"state\":\"undone\"}]");
    assert_task(f, mid, "failed");
    assert_task(f, rs, "succeeded");
    assert_task(f, q, "succeeded");
    assert_task(f, unk, "failed");
    /* In creation order: rb undoes b then a (with the checkpoint), mid undoes
     * a, the resumed task runs only b, the queued one runs a and b. */
    assert_string_equal(trace, "undo:b undo:planted-a undo:planted-a run:b run:a run:b");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_success),
        T(test_failure_undone),
        T(test_cancel),
        T(test_concurrency),
        T(test_restart),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
