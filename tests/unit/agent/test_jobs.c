/* test_jobs.c - the agent's asynchronous jobs: success with progress and a
 * result, failure carrying its error, cancellation, long-poll waits, unknown
 * ids, and the events each job publishes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "agent/jobs.h"
#include "util/mem.h"

static struct agent *new_agent(void)
{
    struct agent *a = xzalloc(sizeof *a);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->events_cond, NULL);
    return a;
}

static void free_agent(struct agent *a)
{
    agent_jobs_drain(a);
    for (size_t i = 0; i < AGENT_EVENT_RING; i++) {
        free(a->events[i].vm);
        free(a->events[i].type);
        json_decref(a->events[i].data);
    }
    free(a);
}

static int work_ok(struct agent_job *job, void *arg, struct error **errp)
{
    (void) errp;
    int *steps = arg;
    for (int i = 1; i <= *steps; i++) {
        agent_job_progress(job, i * 100 / *steps);
        usleep(2000);
    }
    agent_job_set_result(job, json_pack("{s:i}", "steps", *steps));
    return 0;
}

static int work_fail(struct agent_job *job, void *arg, struct error **errp)
{
    (void) job;
    (void) arg;
    return error_set(errp, ERR_NO_SPACE, "datastore 'ds1' is full");
}

static int work_until_cancelled(struct agent_job *job, void *arg, struct error **errp)
{
    (void) arg;
    for (int i = 0; i < 5000; i++) {
        if (agent_job_cancelled(job))
            return error_set(errp, ERR_BAD_STATE, "cancelled at step %d", i);
        usleep(1000);
    }
    return 0;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void test_success(void **state)
{
    (void) state;
    struct agent *a = new_agent();
    int steps = 10;
    json_t *j = agent_job_start(a, "volume-create", "ds1/a.qcow2", work_ok, &steps, NULL, NULL);
    assert_non_null(j);
    assert_string_equal(str(j, "state"), "running");
    char id[64];
    snprintf(id, sizeof id, "%s", str(j, "id"));
    json_decref(j);
    j = agent_job_get(a, id, 10000, NULL);
    assert_string_equal(str(j, "state"), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(j, "progress")), 100);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "result"), "steps")), 10);
    json_decref(j);
    json_t *ev = agent_events_since(a, 0, 0);
    assert_int_equal(json_array_size(json_object_get(ev, "events")), 2);   /* started, ended */
    json_decref(ev);
    free_agent(a);
}

static void test_failure_and_cancel(void **state)
{
    (void) state;
    struct agent *a = new_agent();
    json_t *j = agent_job_start(a, "volume-create", "ds1/b.qcow2", work_fail, NULL, NULL, NULL);
    char id[64];
    snprintf(id, sizeof id, "%s", str(j, "id"));
    json_decref(j);
    j = agent_job_get(a, id, 10000, NULL);
    assert_string_equal(str(j, "state"), "failed");
    assert_string_equal(str(json_object_get(json_object_get(j, "error"), "error"), "code"),
                        "no-space");
    json_decref(j);
    struct error *err = NULL;
    assert_int_equal(agent_job_cancel(a, id, &err), -1);   /* already ended */
    assert_int_equal(err->code, ERR_BAD_STATE);
    error_free(err);

    j = agent_job_start(a, "volume-wipe", "ds1/c.raw", work_until_cancelled, NULL, NULL, NULL);
    snprintf(id, sizeof id, "%s", str(j, "id"));
    json_decref(j);
    j = agent_job_get(a, id, 20, NULL);   /* still running after a short wait */
    assert_string_equal(str(j, "state"), "running");
    json_decref(j);
    assert_int_equal(agent_job_cancel(a, id, NULL), 0);
    j = agent_job_get(a, id, 10000, NULL);
    assert_string_equal(str(j, "state"), "cancelled");
    json_decref(j);

    err = NULL;
    assert_null(agent_job_get(a, "00000000-0000-4000-8000-000000000000", 0, &err));
    assert_int_equal(err->code, ERR_NOT_FOUND);
    error_free(err);
    json_t *list = agent_jobs_list(a);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    free_agent(a);
}

static void free_counter(void *p)
{
    (*(int *) p)++;
}

static int work_noop(struct agent_job *job, void *arg, struct error **errp)
{
    (void) job;
    (void) arg;
    (void) errp;
    return 0;
}

static void test_arg_freed_and_pruned(void **state)
{
    (void) state;
    struct agent *a = new_agent();
    int freed = 0;
    for (int i = 0; i < AGENT_JOBS_KEPT + 20; i++) {
        json_t *j = agent_job_start(a, "noop", "x", work_noop, &freed, free_counter, NULL);
        json_t *done = agent_job_get(a, str(j, "id"), 10000, NULL);
        json_decref(done);
        json_decref(j);
    }
    assert_int_equal(freed, AGENT_JOBS_KEPT + 20);
    json_t *list = agent_jobs_list(a);
    assert_true(json_array_size(list) <= AGENT_JOBS_KEPT + 1);
    json_decref(list);
    free_agent(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_failure_and_cancel),
        cmocka_unit_test(test_arg_freed_and_pruned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
