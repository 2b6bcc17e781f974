/* modules.c - the agent's modules, in the order their hooks run.
 *
 * Each module (jobs, storage, network ...) lives in its own files and is
 * plugged in here with one line; see struct agent_module in agent.h. */
#include "agent/agent.h"
#include "agent/jobs.h"
#include "agent/net_api.h"
#include "agent/storage_api.h"

static const struct agent_module jobs_module = {
    .name = "jobs",
    .routes = agent_job_routes,
    .fini = agent_jobs_drain,
};

const struct agent_module *const agent_modules[] = {
    &jobs_module,
    &storage_module,
    &net_module,
    NULL,
};
