/* agent_client.c - see agent_client.h: calls from the manager to an agent
 * over mutual TLS, and following agent jobs to their end. */
#define LOG_MODULE "agents"
#include "manager/agent_client.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "http/http_client.h"
#include "manager/ca.h"
#include "manager/manager.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define JOB_POLL_MS 1000

struct agent_conn *agent_connect(struct manager *m, const char *host_id, bool any_state,
                                 struct error **errp)
{
    return agent_connect_timeout(m, host_id, any_state, AGENT_CALL_TIMEOUT_MS, errp);
}

struct agent_conn *agent_connect_timeout(struct manager *m, const char *host_id, bool any_state,
                                         long timeout_ms, struct error **errp)
{
    if (!m->ca)
        return error_set(errp, ERR_UNSUPPORTED, "this manager has no certificate authority"),
               NULL;
    AUTOFREE char *name = NULL, *address = NULL, *state = NULL;
    long port = 0;
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
        AUTOSTMT struct store_stmt *st = t ? store_query(
            t, "SELECT name, address, port, state FROM hosts WHERE id = ?",
            STORE_ARGS(SV_TEXT(host_id)), errp) : NULL;
        if (!st)
            return NULL;
        int r = store_step(st, errp);
        if (r < 0)
            return NULL;
        if (r == 0)
            return error_set(errp, ERR_NOT_FOUND, "host '%s' does not exist", host_id), NULL;
        name = xstrdup(store_col_text(st, 0));
        address = xstrdup(store_col_text(st, 1));
        port = (long) store_col_int(st, 2);
        state = xstrdup(store_col_text(st, 3));
    }
    if (!any_state && !strcmp(state, "disconnected"))
        return error_set(errp, ERR_BAD_STATE, "host '%s' is disconnected", name), NULL;
    struct http_client_config cc = {
        .host = address, .port = (unsigned short) port, .server_name = name,
        .ca_file = ca_cert_file(m->ca), .cert_file = ca_client_cert_file(m->ca),
        .key_file = ca_client_key_file(m->ca),
        .crl_file = access(ca_crl_file(m->ca), R_OK) == 0 ? ca_crl_file(m->ca) : NULL,
        .connect_timeout_ms = AGENT_CALL_CONNECT_MS,
        .timeout_ms = timeout_ms > 0 ? timeout_ms : AGENT_CALL_TIMEOUT_MS,
    };
    struct http_client *c = http_client_new(&cc, errp);
    if (!c)
        return NULL;
    struct agent_conn *a = xzalloc(sizeof *a);
    a->http = c;
    snprintf(a->host_id, sizeof a->host_id, "%s", host_id);
    a->host_name = steal_pointer(&name);
    a->state = steal_pointer(&state);
    return a;
}

void agent_conn_free(struct agent_conn *a)
{
    if (!a)
        return;
    http_client_free(a->http);
    free(a->host_name);
    free(a->state);
    free(a);
}

int agent_call(struct agent_conn *a, const char *method, const char *path, const json_t *body,
               long *status, json_t **reply, struct error **errp)
{
    if (http_client_request(a->http, method, path, body, status, reply, errp) < 0) {
        error_prefix(errp, "host '%s'", a->host_name);
        return -1;
    }
    return 0;
}

int agent_job_wait(struct agent_conn *a, const char *job_id, agent_progress_fn *progress,
                   void *opaque, json_t **result, struct error **errp)
{
    AUTOFREE char *path = agent_path("/v1/jobs/%s", job_id);
    AUTOFREE char *poll = xasprintf("%s?wait_ms=%d", path, JOB_POLL_MS);
    bool cancelling = false;
    for (;;) {
        AUTOJSON json_t *job = NULL;
        if (agent_call(a, "GET", poll, NULL, NULL, &job, errp) < 0)
            return -1;
        const char *state = json_string_value(json_object_get(job, "state"));
        int pct = (int) json_integer_value(json_object_get(job, "progress"));
        if (progress && !progress(pct, opaque) && !cancelling &&
            state && !strcmp(state, "running")) {
            AUTOERROR struct error *cerr = NULL;
            if (agent_call(a, "DELETE", path, NULL, NULL, NULL, &cerr) < 0)
                LOG_WARN("host '%s': cannot cancel job %s: %s", a->host_name, job_id,
                         cerr->message);
            cancelling = true;
        }
        if (!state)
            return error_set(errp, ERR_IO, "host '%s': job '%s' has no state", a->host_name,
                             job_id);
        if (!strcmp(state, "running"))
            continue;
        if (!strcmp(state, "succeeded")) {
            if (result) {
                json_t *r = json_object_get(job, "result");
                *result = json_incref(r ? r : job);
            }
            return 0;
        }
        struct error *je = error_from_json(json_object_get(job, "error"));
        if (je) {
            if (errp && !*errp)
                *errp = je;
            else
                error_free(je);
            error_prefix(errp, "host '%s'", a->host_name);
            return -1;
        }
        return error_set(errp, ERR_IO, "host '%s': job '%s' ended %s", a->host_name, job_id,
                         state);
    }
}

int agent_call_wait(struct agent_conn *a, const char *method, const char *path,
                    const json_t *body, agent_progress_fn *progress, void *opaque,
                    json_t **reply, struct error **errp)
{
    long status = 0;
    AUTOJSON json_t *r = NULL;
    if (agent_call(a, method, path, body, &status, &r, errp) < 0)
        return -1;
    const char *job = json_string_value(json_object_get(r, "id"));
    if (status == 202 && job && json_object_get(r, "progress")) {
        AUTOFREE char *id = xstrdup(job);
        return agent_job_wait(a, id, progress, opaque, reply, errp);
    }
    if (reply)
        *reply = steal_pointer(&r);
    return 0;
}

char *agent_path(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t cap = strlen(fmt) + 1, len = 0;
    char *out = xmalloc(cap);
    for (const char *p = fmt; *p; p++) {
        const char *piece;
        AUTOFREE char *esc = NULL;
        char one[2] = { *p, 0 };
        if (p[0] == '%' && p[1] == 's') {
            esc = http_client_escape(va_arg(ap, const char *));
            piece = esc;
            p++;
        } else {
            piece = one;
        }
        size_t n = strlen(piece);
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            out = xrealloc(out, cap);
        }
        memcpy(out + len, piece, n);
        len += n;
    }
    out[len] = 0;
    va_end(ap);
    return out;
}
