/* jobs.c - asynchronous agent jobs: a table, one thread per running job,
 * progress, cancellation, long-poll waits.  See jobs.h. */
#define LOG_MODULE "jobs"
#include "agent/jobs.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/mem.h"
#include "util/uuid.h"

struct agent_job {
    struct agent *a;
    char id[UUID_STRLEN + 1];
    char *type, *target;
    enum job_state state;
    int progress;
    bool cancel;
    long long created_ms, ended_ms;
    struct error *error;
    json_t *result;
    agent_job_fn *fn;
    void *arg;
    void (*free_arg)(void *);
};

/* The agent's job table (a->jobs). */
struct agent_jobs {
    pthread_mutex_t lock;           /* guards everything here and each job's fields */
    pthread_cond_t cond;            /* broadcast when a job ends */
    struct agent_job **jobs;
    size_t n_jobs, n_running;
};

static struct agent_jobs *table(struct agent *a)
{
    pthread_mutex_lock(&a->lock);
    if (!a->jobs) {
        a->jobs = xzalloc(sizeof *a->jobs);
        pthread_mutex_init(&a->jobs->lock, NULL);
        pthread_cond_init(&a->jobs->cond, NULL);
    }
    struct agent_jobs *t = a->jobs;
    pthread_mutex_unlock(&a->lock);
    return t;
}

static const char *const state_names[] = { "running", "succeeded", "failed", "cancelled" };

const char *job_state_to_string(enum job_state s)
{
    return (unsigned) s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

static json_t *job_json_locked(const struct agent_job *j)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:I}", "id", j->id, "type", j->type,
                          "target", j->target, "state", job_state_to_string(j->state),
                          "progress", j->progress, "created_ms", (json_int_t) j->created_ms);
    if (j->state != JOB_RUNNING)
        json_object_set_new(o, "ended_ms", json_integer(j->ended_ms));
    if (j->error)
        json_object_set_new(o, "error", error_to_json(j->error));
    if (j->result)
        json_object_set(o, "result", j->result);
    return o;
}

static void job_free(struct agent_job *j)
{
    free(j->type);
    free(j->target);
    error_free(j->error);
    json_decref(j->result);
    free(j);
}

/* Drops the oldest finished jobs beyond AGENT_JOBS_KEPT (lock held). */
static void prune_locked(struct agent_jobs *T)
{
    size_t finished = T->n_jobs - T->n_running;
    for (size_t i = 0; i < T->n_jobs && finished > AGENT_JOBS_KEPT;) {
        if (T->jobs[i]->state != JOB_RUNNING) {
            job_free(T->jobs[i]);
            memmove(T->jobs + i, T->jobs + i + 1, (T->n_jobs - i - 1) * sizeof *T->jobs);
            T->n_jobs--;
            finished--;
        } else {
            i++;
        }
    }
}

static void *job_thread(void *opaque)
{
    struct agent_job *j = opaque;
    struct agent_jobs *T = table(j->a);
    struct error *err = NULL;
    int r = j->fn(j, j->arg, &err);
    if (j->free_arg)
        j->free_arg(j->arg);
    pthread_mutex_lock(&T->lock);
    j->ended_ms = wall_ms();
    if (r == 0) {
        j->state = JOB_SUCCEEDED;
        j->progress = 100;
        error_free(err);
    } else {
        j->state = j->cancel ? JOB_CANCELLED : JOB_FAILED;
        j->error = err ? err : xzalloc(sizeof *err);
        if (!j->error->message)
            j->error->message = xstrdup("job failed");
    }
    T->n_running--;
    /* Once unlocked, a finished job may be pruned: log from copies. */
    json_t *ev = job_json_locked(j);
    struct agent *a = j->a;
    AUTOFREE char *what = xasprintf("job %s (%s %s) %s%s%s", j->id, j->type, j->target,
                                    job_state_to_string(j->state), j->error ? ": " : "",
                                    j->error ? j->error->message : "");
    bool ok = j->state == JOB_SUCCEEDED;
    /* Published before the job counts as ended, so agent_jobs_drain() never
     * returns while this thread still uses the agent. */
    agent_event(a, NULL, "job", ev);
    pthread_cond_broadcast(&T->cond);
    pthread_mutex_unlock(&T->lock);
    if (ok)
        LOG_INFO("%s", what);
    else
        LOG_WARN("%s", what);
    return NULL;
}

json_t *agent_job_start(struct agent *a, const char *type, const char *target,
                        agent_job_fn *fn, void *arg, void (*free_arg)(void *),
                        struct error **errp)
{
    struct agent_job *j = xzalloc(sizeof *j);
    j->a = a;
    uuid_generate(j->id);
    j->type = xstrdup(type);
    j->target = xstrdup(target);
    j->state = JOB_RUNNING;
    j->created_ms = wall_ms();
    j->fn = fn;
    j->arg = arg;
    j->free_arg = free_arg;

    struct agent_jobs *T = table(a);
    pthread_mutex_lock(&T->lock);
    T->jobs = xrealloc(T->jobs, (T->n_jobs + 1) * sizeof *T->jobs);
    T->jobs[T->n_jobs++] = j;
    T->n_running++;
    prune_locked(T);
    json_t *summary = job_json_locked(j);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int r = pthread_create(&th, &attr, job_thread, j);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        T->n_jobs--;
        T->n_running--;
        pthread_mutex_unlock(&T->lock);
        json_decref(summary);
        if (free_arg)
            free_arg(arg);
        job_free(j);
        return error_set_errno(errp, ERR_INTERNAL, r, "cannot start a thread for job '%s'",
                               type), NULL;
    }
    pthread_mutex_unlock(&T->lock);
    LOG_INFO("job %s started: %s %s", j->id, type, target);
    agent_event(a, NULL, "job", json_deep_copy(summary));
    return summary;
}

void agent_job_progress(struct agent_job *job, int percent)
{
    struct agent_jobs *T = table(job->a);
    pthread_mutex_lock(&T->lock);
    job->progress = percent < 0 ? 0 : percent > 100 ? 100 : percent;
    pthread_mutex_unlock(&T->lock);
}

bool agent_job_cancelled(const struct agent_job *job)
{
    struct agent_jobs *T = table(job->a);
    pthread_mutex_lock(&T->lock);
    bool c = job->cancel;
    pthread_mutex_unlock(&T->lock);
    return c;
}

void agent_job_set_result(struct agent_job *job, json_t *result)
{
    struct agent_jobs *T = table(job->a);
    pthread_mutex_lock(&T->lock);
    json_decref(job->result);
    job->result = result;
    pthread_mutex_unlock(&T->lock);
}

struct agent *agent_job_agent(const struct agent_job *job)
{
    return job->a;
}

static struct agent_job *find_locked(struct agent_jobs *T, const char *id)
{
    for (size_t i = 0; i < T->n_jobs; i++)
        if (!strcmp(T->jobs[i]->id, id))
            return T->jobs[i];
    return NULL;
}

json_t *agent_jobs_list(struct agent *a)
{
    struct agent_jobs *T = table(a);
    json_t *arr = json_array();
    pthread_mutex_lock(&T->lock);
    for (size_t i = 0; i < T->n_jobs; i++)
        json_array_append_new(arr, job_json_locked(T->jobs[i]));
    pthread_mutex_unlock(&T->lock);
    return arr;
}

json_t *agent_job_get(struct agent *a, const char *id, int wait_ms, struct error **errp)
{
    struct agent_jobs *T = table(a);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long) (wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&T->lock);
    struct agent_job *j = find_locked(T, id);
    while (j && j->state == JOB_RUNNING && wait_ms > 0) {
        if (pthread_cond_timedwait(&T->cond, &T->lock, &dl) == ETIMEDOUT)
            break;
        j = find_locked(T, id);
    }
    json_t *r = j ? job_json_locked(j) : NULL;
    pthread_mutex_unlock(&T->lock);
    if (!r)
        error_set_field(errp, ERR_NOT_FOUND, "id", "job '%s' not found", id);
    return r;
}

int agent_job_cancel(struct agent *a, const char *id, struct error **errp)
{
    struct agent_jobs *T = table(a);
    pthread_mutex_lock(&T->lock);
    struct agent_job *j = find_locked(T, id);
    int r = 0;
    if (!j)
        r = error_set_field(errp, ERR_NOT_FOUND, "id", "job '%s' not found", id);
    else if (j->state != JOB_RUNNING)
        r = error_set(errp, ERR_BAD_STATE, "job '%s' has already %s", id,
                      job_state_to_string(j->state));
    else
        j->cancel = true;
    pthread_mutex_unlock(&T->lock);
    return r;
}

void agent_jobs_drain(struct agent *a)
{
    struct agent_jobs *T = table(a);
    pthread_mutex_lock(&T->lock);
    for (size_t i = 0; i < T->n_jobs; i++)
        if (T->jobs[i]->state == JOB_RUNNING)
            T->jobs[i]->cancel = true;
    while (T->n_running > 0)
        pthread_cond_wait(&T->cond, &T->lock);
    for (size_t i = 0; i < T->n_jobs; i++)
        job_free(T->jobs[i]);
    free(T->jobs);
    T->jobs = NULL;
    T->n_jobs = 0;
    pthread_mutex_unlock(&T->lock);
    pthread_mutex_lock(&a->lock);
    a->jobs = NULL;
    pthread_mutex_unlock(&a->lock);
    pthread_mutex_destroy(&T->lock);
    pthread_cond_destroy(&T->cond);
    free(T);
}


/* ---- routes ------------------------------------------------------------- */

static int h_jobs(const struct http_request *req, struct http_response *resp, void *opaque,
                  struct error **errp)
{
    (void) req;
    (void) errp;
    resp->status = 200;
    resp->body = json_pack("{s:o}", "jobs", agent_jobs_list(opaque));
    return 0;
}

static int h_job(const struct http_request *req, struct http_response *resp, void *opaque,
                 struct error **errp)
{
    const char *w = http_request_query(req, "wait_ms");
    char *end;
    long wait = w ? strtol(w, &end, 10) : 0;
    if (w && (*end || !*w || wait < 0 || wait > 60000))
        return error_set_field(errp, ERR_INVALID_ARG, "wait_ms", "wait_ms '%s' must be 0..60000",
                               w);
    if (!uuid_is_valid(req->params[0]))
        return error_set_field(errp, ERR_INVALID_ARG, "id", "job id '%s' is not a UUID",
                               req->params[0]);
    json_t *j = agent_job_get(opaque, req->params[0], (int) wait, errp);
    if (!j)
        return -1;
    resp->status = 200;
    resp->body = j;
    return 0;
}

static int h_job_cancel(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    if (!uuid_is_valid(req->params[0]))
        return error_set_field(errp, ERR_INVALID_ARG, "id", "job id '%s' is not a UUID",
                               req->params[0]);
    if (agent_job_cancel(opaque, req->params[0], errp) < 0)
        return -1;
    resp->status = 202;
    resp->body = agent_job_get(opaque, req->params[0], 0, NULL);
    return 0;
}

const struct http_route agent_job_routes[] = {
    { "GET", "/v1/jobs", h_jobs },
    { "GET", "/v1/jobs/{id}", h_job },
    { "DELETE", "/v1/jobs/{id}", h_job_cancel },
    { NULL, NULL, NULL },
};
