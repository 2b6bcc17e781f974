/* agent_client.h - the manager calling a host's agent.
 *
 * Every call goes over mutual TLS, exactly as the host monitor's heartbeat:
 * the manager's client certificate, the CA pinned, and the agent's
 * certificate checked for the host's *name* while connecting to its
 * recorded address and port.  No store transaction may be open while an
 * agent is called (calls can take seconds).
 *
 *     AUTOAGENT struct agent_conn *a = agent_connect(m, host_id, errp);
 *     if (!a || agent_call(a, "POST", "/v1/vms", def, NULL, &reply, errp) < 0)
 *         return -1;
 *
 * Long agent operations answer 202 with an agent job ({"id", "state",
 * "progress", ...}); agent_call_wait() follows such a job to its end
 * (long polls on GET /v1/jobs/{id}), reporting its progress through a
 * callback (the task engine's task_progress()), and turns a failed job into
 * the job's error.
 *
 * Neighbours: hosts.c (the monitor uses the same connection settings),
 * ca.h (certificates), http/http_client.h; the VM and resource code calls
 * agents through this. */
#ifndef STRATA_MANAGER_AGENT_CLIENT_H
#define STRATA_MANAGER_AGENT_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"
#include "util/uuid.h"

struct manager;

#define AGENT_CALL_CONNECT_MS 2000
#define AGENT_CALL_TIMEOUT_MS 120000

struct agent_conn {
    struct http_client *http;
    char host_id[UUID_STRLEN + 1];
    char *host_name;
    char *state;            /* the host's state when connected: "connected", ... */
};

/* Connects to the agent of host 'host_id' (an id, not a name).  Refuses a
 * host in 'disconnected' state unless 'any_state' (ERR_BAD_STATE naming the
 * host).  Returns a new connection (no network traffic happens yet). */
struct agent_conn *agent_connect(struct manager *m, const char *host_id, bool any_state,
                                 struct error **errp);
/* The same with a whole-request timeout of 'timeout_ms' (the heartbeat's,
 * so that an agent that accepts connections but never answers does not hold
 * a monitoring round for AGENT_CALL_TIMEOUT_MS). */
struct agent_conn *agent_connect_timeout(struct manager *m, const char *host_id, bool any_state,
                                         long timeout_ms, struct error **errp);
void agent_conn_free(struct agent_conn *a);     /* Accepts NULL. */
static inline void autoagent_impl(struct agent_conn **a) { agent_conn_free(*a); }
#define AUTOAGENT __attribute__((cleanup(autoagent_impl)))

/* One request; as http_client_request() ('status' and 'reply' optional).
 * The error message is prefixed with the host's name. */
int agent_call(struct agent_conn *a, const char *method, const char *path, const json_t *body,
               long *status, json_t **reply, struct error **errp);

/* Called at every poll of an agent job with its progress; returning false
 * asks the agent to cancel the job (DELETE /v1/jobs/{id}) - the wait goes
 * on until the job has ended, and a cancelled job is an error. */
typedef bool agent_progress_fn(int percent, void *opaque);

/* As agent_call(); when the agent answers 202 with a job, waits for the job
 * to end, calling 'progress' (optional) as it advances.  '*reply' receives
 * the immediate reply, or for a job the job's "result" (or the job itself
 * when it has none).  A failed or cancelled job is an error. */
int agent_call_wait(struct agent_conn *a, const char *method, const char *path,
                    const json_t *body, agent_progress_fn *progress, void *opaque,
                    json_t **reply, struct error **errp);

/* Follows agent job 'job_id' to its end (as above). */
int agent_job_wait(struct agent_conn *a, const char *job_id, agent_progress_fn *progress,
                   void *opaque, json_t **result, struct error **errp);

/* Returns a new path: 'fmt' with every %s argument percent-escaped as one
 * path segment ("/v1/vms/%s/start").  Only %s is supported. */
char *agent_path(const char *fmt, ...);

#endif
