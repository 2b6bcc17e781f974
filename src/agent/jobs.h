/* jobs.h - asynchronous agent jobs with progress.
 *
 * Long operations that are not VM power actions (creating an eager-zeroed
 * disk, wiping one, copying an image, merging a snapshot chain) run as jobs:
 * the API call returns 202 with the job at once; the job runs on its own
 * thread and reports progress; clients follow it with GET /v1/jobs/{id}
 * (optionally long-polling with wait_ms) or the event stream ("job" events),
 * and may ask it to stop with DELETE /v1/jobs/{id}.
 *
 * Jobs live in memory (the last AGENT_JOBS_KEPT are kept once finished).  A
 * job interrupted by an agent crash is not resumed by this module: each
 * operation that must survive one records its own intent on disk (e.g. a
 * snapshot chain marked "merging") and finishes or rolls back when the agent
 * starts again.  The manager turns agent jobs into its persistent tasks. */
#ifndef STRATA_AGENT_JOBS_H
#define STRATA_AGENT_JOBS_H

#include <jansson.h>
#include <stdbool.h>

#include "agent/agent.h"
#include "http/http_server.h"

#define AGENT_JOBS_KEPT 256

enum job_state { JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED };
const char *job_state_to_string(enum job_state s);

struct agent_job;

/* The work: runs on the job's thread; returns 0, or -1 with 'errp' set.  It
 * calls agent_job_progress() as it goes and checks agent_job_cancelled(). */
typedef int agent_job_fn(struct agent_job *job, void *arg, struct error **errp);

/* Starts 'fn(arg)' as a job of 'type' ("volume-create") on 'target' (what it
 * acts on, e.g. "ds1/disk0.qcow2").  'free_arg' (may be NULL) releases 'arg'
 * when the job ends.  Returns the job's JSON summary (new reference). */
json_t *agent_job_start(struct agent *a, const char *type, const char *target,
                        agent_job_fn *fn, void *arg, void (*free_arg)(void *),
                        struct error **errp);

/* From inside a job. */
void agent_job_progress(struct agent_job *job, int percent);   /* 0..100 */
bool agent_job_cancelled(const struct agent_job *job);
/* Attaches a result object shown when the job has succeeded.  Takes ownership. */
void agent_job_set_result(struct agent_job *job, json_t *result);
struct agent *agent_job_agent(const struct agent_job *job);

/* Lookups for the API; new references. */
json_t *agent_jobs_list(struct agent *a);
json_t *agent_job_get(struct agent *a, const char *id, int wait_ms, struct error **errp);
int agent_job_cancel(struct agent *a, const char *id, struct error **errp);
/* Waits for every running job to end (agent shutdown). */
void agent_jobs_drain(struct agent *a);

extern const struct http_route agent_job_routes[];

#endif
