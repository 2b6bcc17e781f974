/* api.c - the agent's HTTP API (the agent protocol, docs/agent-protocol.md).
 *
 * One route table served twice by http/http_server.c: on a root-only unix
 * socket for local tools, and on TCP with mutual TLS for the manager.  Each
 * handler validates its input (unknown body fields are refused, names are
 * checked before any lookup), calls one operation in lifecycle.c, hotplug.c
 * or guest.c and returns JSON.  Errors travel as 'struct error' and become
 * the one error body in the HTTP layer. */
#define LOG_MODULE "api"
#include "agent/api.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agent/guest.h"
#include "agent/hotplug.h"
#include "agent/lifecycle.h"
#include "host/host_facts.h"
#include "host/host_stats.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define CONSOLE_MAX (1 << 20)

static const char *const no_keys[] = { NULL };

/* Looks up the VM named by the first path parameter. */
static struct vm *req_vm(struct agent *a, const struct http_request *req, struct error **errp)
{
    if (vm_name_validate(req->params[0], "name", errp) < 0)
        return NULL;
    return agent_vm_get(a, req->params[0], errp);
}

static int body_keys(const struct http_request *req, const char *const *allowed,
                     struct error **errp)
{
    if (!req->body)
        return 0;
    return json_check_keys(req->body, allowed, "", errp);
}

static void reply(struct http_response *resp, int status, json_t *body)
{
    resp->status = status;
    resp->body = body;
}

/* ---- host ---------------------------------------------------------------- */

static int h_version(const struct http_request *req, struct http_response *resp, void *opaque,
                     struct error **errp)
{
    struct agent *a = opaque;
    (void) req;
    (void) errp;
    reply(resp, 200, json_pack("{s:s, s:s, s:s, s:I}", "service", "strata-agent", "version",
                               STRATA_VERSION, "api", "v1", "uptime_ms",
                               (json_int_t) (now_ms() - a->started_ms)));
    return 0;
}

static int h_host(const struct http_request *req, struct http_response *resp, void *opaque,
                  struct error **errp)
{
    struct agent *a = opaque;
    (void) req;
    (void) errp;
    /* Facts collected (and the accelerator probed) once at start-up. */
    reply(resp, 200, host_facts_to_json(a->facts));
    return 0;
}

/* ---- desired/applied generation ------------------------------------------
 * The manager pushes a host's datastores and networks, then records here the
 * generation they correspond to (PUT /v1/host/generation); GET
 * /v1/host/stats reports it as "applied_generation", so the manager sees
 * whether the host has converged.  Kept in <state_dir>/generation. */

static char *generation_path(const struct agent *a)
{
    return xasprintf("%s/generation", a->cfg.state_dir);
}

static long long generation_read(const struct agent *a)
{
    AUTOFREE char *path = generation_path(a);
    AUTOFREE char *text = file_read_all(path, 64, NULL, NULL);
    char *end = NULL;
    long long g = text ? strtoll(text, &end, 10) : 0;
    return text && end != text && g >= 0 ? g : 0;
}

static int h_host_generation(const struct http_request *req, struct http_response *resp,
                             void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "generation", NULL };
    unsigned long long g = 0;
    if (!req->body)
        return error_set(errp, ERR_INVALID_ARG, "a body {\"generation\": N} is required");
    if (json_check_keys(req->body, keys, "", errp) < 0 ||
        json_get_uint(req->body, "generation", "", true, 0, (1ULL << 62), &g, errp) < 0)
        return -1;
    AUTOFREE char *path = generation_path(a);
    AUTOFREE char *text = xasprintf("%llu\n", g);
    if (file_write_atomic(path, text, strlen(text), 0600, errp) < 0)
        return -1;
    reply(resp, 200, json_pack("{s:I}", "applied_generation", (json_int_t) g));
    return 0;
}

static int h_host_stats(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    (void) req;
    /* CPU use since the previous call (or the agent's start). */
    struct host_stats_sample cur;
    if (host_stats_sample(NULL, &cur, errp) < 0)
        return -1;
    pthread_mutex_lock(&a->lock);
    struct host_cpu_util util;
    bool have = a->stats_prev_valid && host_stats_cpu_util(&a->stats_prev.cpu, &cur.cpu, &util);
    a->stats_prev = cur;
    a->stats_prev_valid = true;
    pthread_mutex_unlock(&a->lock);
    json_t *j = host_stats_to_json(&cur, have ? &util : NULL);
    size_t n;
    struct vm **vms = agent_vm_list(a, &n);
    size_t running = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&vms[i]->lock);
        running += vm_state_is_active(vms[i]->state);
        pthread_mutex_unlock(&vms[i]->lock);
    }
    agent_vm_list_free(a, vms, n);
    json_object_set_new(j, "vms_defined", json_integer((json_int_t) n));
    json_object_set_new(j, "vms_running", json_integer((json_int_t) running));
    json_object_set_new(j, "applied_generation", json_integer((json_int_t) generation_read(a)));
    reply(resp, 200, j);
    return 0;
}

static int h_events(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    struct agent *a = opaque;
    const char *since = http_request_query(req, "since");
    const char *wait = http_request_query(req, "wait_ms");
    char *end;
    unsigned long long s = since ? strtoull(since, &end, 10) : 0;
    if (since && (*end || !*since))
        return error_set_field(errp, ERR_INVALID_ARG, "since", "since '%s' is not a number",
                               since);
    long w = wait ? strtol(wait, &end, 10) : 0;
    if (wait && (*end || w < 0 || w > 60000))
        return error_set_field(errp, ERR_INVALID_ARG, "wait_ms",
                               "wait_ms '%s' must be 0..60000", wait);
    reply(resp, 200, agent_events_since(a, s, (int) w));
    return 0;
}

/* ---- VMs ----------------------------------------------------------------- */

static int h_vm_list(const struct http_request *req, struct http_response *resp, void *opaque,
                     struct error **errp)
{
    struct agent *a = opaque;
    (void) req;
    (void) errp;
    size_t n;
    struct vm **vms = agent_vm_list(a, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, vm_to_json(vms[i], false));
    agent_vm_list_free(a, vms, n);
    reply(resp, 200, json_pack("{s:o}", "vms", arr));
    return 0;
}

static int h_vm_define(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    if (!req->body)
        return error_set(errp, ERR_INVALID_ARG, "a VM definition is required");
    struct vm_def_limits limits;
    agent_vm_limits(a, &limits);
    struct vm_def *def = vm_def_from_json(req->body, &limits, errp);
    if (!def)
        return -1;
    struct vm *vm = agent_vm_define(a, def, errp);
    if (!vm)
        return -1;
    reply(resp, 201, vm_to_json(vm, true));
    vm_unref(a, vm);
    return 0;
}

static int h_vm_get(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    struct agent *a = opaque;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    reply(resp, 200, vm_to_json(vm, true));
    vm_unref(a, vm);
    return 0;
}

static int h_vm_undefine(const struct http_request *req, struct http_response *resp,
                         void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    if (vm_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    if (agent_vm_undefine(a, req->params[0], errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

/* Runs 'op' on the VM and answers with its new summary. */
#define VM_ACTION(fn, call)                                                          \
    static int fn(const struct http_request *req, struct http_response *resp,       \
                  void *opaque, struct error **errp)                                 \
    {                                                                                \
        struct agent *a = opaque;                                                    \
        if (body_keys(req, no_keys, errp) < 0)                                       \
            return -1;                                                               \
        struct vm *vm = req_vm(a, req, errp);                                        \
        if (!vm)                                                                     \
            return -1;                                                               \
        int r = call;                                                                \
        if (r == 0)                                                                  \
            reply(resp, 200, vm_to_json(vm, false));                                 \
        vm_unref(a, vm);                                                             \
        return r;                                                                    \
    }

VM_ACTION(h_vm_start, vm_start(a, vm, errp))
VM_ACTION(h_vm_destroy, vm_destroy(a, vm, errp))
VM_ACTION(h_vm_pause, vm_pause(a, vm, errp))
VM_ACTION(h_vm_resume, vm_resume(a, vm, errp))
VM_ACTION(h_vm_hibernate, vm_hibernate(a, vm, errp))
VM_ACTION(h_vm_restore, vm_restore(a, vm, errp))

static int h_vm_shutdown(const struct http_request *req, struct http_response *resp,
                         void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "mode", "timeout_s", "force", NULL };
    const char *mode = NULL;
    unsigned long long timeout = 0;
    bool force = true;
    if (body_keys(req, keys, errp) < 0
        || json_get_string(req->body, "mode", "", false, &mode, errp) < 0
        || json_get_uint(req->body, "timeout_s", "", false, 1, 3600, &timeout, errp) < 0
        || json_get_bool(req->body, "force", "", false, &force, errp) < 0)
        return -1;
    int m = shutdown_mode_from_string(mode);
    if (m < 0)
        return error_set_field(errp, ERR_INVALID_ARG, "mode",
                               "mode '%s' must be auto, acpi or agent", mode);
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    int r = vm_shutdown(a, vm, (enum shutdown_mode) m, (int) timeout, force, errp);
    if (r == 0)
        reply(resp, 200, vm_to_json(vm, false));
    vm_unref(a, vm);
    return r;
}

static int h_vm_reboot(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "mode", NULL };
    const char *mode = NULL;
    if (body_keys(req, keys, errp) < 0
        || json_get_string(req->body, "mode", "", false, &mode, errp) < 0)
        return -1;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    int r = vm_reboot(a, vm, mode, errp);
    if (r == 0)
        reply(resp, 200, vm_to_json(vm, false));
    vm_unref(a, vm);
    return r;
}

static int h_vm_vcpus(const struct http_request *req, struct http_response *resp,
                      void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "count", NULL };
    unsigned long long count = 0;
    if (body_keys(req, keys, errp) < 0
        || json_get_uint(req->body, "count", "", true, 1, VM_MAX_VCPUS, &count, errp) < 0)
        return -1;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    int r = vm_set_vcpus(a, vm, (unsigned) count, errp);
    if (r == 0)
        reply(resp, 200, vm_to_json(vm, false));
    vm_unref(a, vm);
    return r;
}

static int h_vm_memory(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "mib", NULL };
    unsigned long long mib = 0;
    if (body_keys(req, keys, errp) < 0
        || json_get_uint(req->body, "mib", "", true, 1, 4ULL << 20, &mib, errp) < 0)
        return -1;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    int r = vm_set_memory(a, vm, mib, errp);
    if (r == 0)
        reply(resp, 200, vm_to_json(vm, false));
    vm_unref(a, vm);
    return r;
}

static int h_vm_balloon(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "mib", NULL };
    unsigned long long mib = 0;
    if (body_keys(req, keys, errp) < 0
        || json_get_uint(req->body, "mib", "", true, 1, 4ULL << 20, &mib, errp) < 0)
        return -1;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    int r = vm_set_balloon(a, vm, mib, errp);
    if (r == 0)
        reply(resp, 200, vm_to_json(vm, true));
    vm_unref(a, vm);
    return r;
}

/* Attach: the body is the device object; answers with the VM's new view. */
static int attach_device(const struct http_request *req, struct http_response *resp,
                         struct agent *a, const char *what,
                         int (*attach)(struct agent *, struct vm *, const json_t *,
                                       struct error **),
                         struct error **errp)
{
    if (!req->body)
        return error_set(errp, ERR_INVALID_ARG, "a %s object is required", what);
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    int r = attach(a, vm, req->body, errp);
    if (r == 0)
        reply(resp, 200, vm_to_json(vm, true));
    vm_unref(a, vm);
    return r;
}

/* Detach: the device id is the second path parameter. */
static int detach_device(const struct http_request *req, struct http_response *resp,
                         struct agent *a,
                         int (*detach)(struct agent *, struct vm *, const char *,
                                       struct error **),
                         struct error **errp)
{
    if (vm_device_id_validate(req->params[1], "id", errp) < 0)
        return -1;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    int r = detach(a, vm, req->params[1], errp);
    if (r == 0)
        reply(resp, 200, vm_to_json(vm, true));
    vm_unref(a, vm);
    return r;
}

static int h_vm_attach_disk(const struct http_request *req, struct http_response *resp,
                            void *opaque, struct error **errp)
{
    return attach_device(req, resp, opaque, "disk", vm_attach_disk, errp);
}

static int h_vm_detach_disk(const struct http_request *req, struct http_response *resp,
                            void *opaque, struct error **errp)
{
    return detach_device(req, resp, opaque, vm_detach_disk, errp);
}

static int h_vm_attach_nic(const struct http_request *req, struct http_response *resp,
                           void *opaque, struct error **errp)
{
    return attach_device(req, resp, opaque, "NIC", vm_attach_nic, errp);
}

static int h_vm_detach_nic(const struct http_request *req, struct http_response *resp,
                           void *opaque, struct error **errp)
{
    return detach_device(req, resp, opaque, vm_detach_nic, errp);
}

static int h_vm_media(const struct http_request *req, struct http_response *resp,
                      void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "path", NULL };
    const char *path = NULL;
    bool eject = !strcmp(req->method, "DELETE");
    if (vm_device_id_validate(req->params[1], "id", errp) < 0 || body_keys(req, keys, errp) < 0
        || json_get_string(req->body, "path", "", !eject, &path, errp) < 0)
        return -1;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    int r = vm_change_media(a, vm, req->params[1], eject ? NULL : path, errp);
    if (r == 0)
        reply(resp, 200, vm_to_json(vm, true));
    vm_unref(a, vm);
    return r;
}

static int h_vm_console(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    const char *off = http_request_query(req, "offset");
    char *end;
    long long offset = off ? strtoll(off, &end, 10) : 0;
    if (off && (*end || !*off))
        return error_set_field(errp, ERR_INVALID_ARG, "offset", "offset '%s' is not a number",
                               off);
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    size_t len;
    long long next, size;
    char *text = vm_console_read(a, vm, offset, CONSOLE_MAX, &len, &next, &size, errp);
    vm_unref(a, vm);
    if (!text)
        return -1;
    const char *fmt = http_request_query(req, "format");
    if (fmt && !strcmp(fmt, "raw")) {
        resp->status = 200;
        resp->raw = text;
        resp->raw_len = len;
        resp->content_type = "text/plain; charset=utf-8";
        return 0;
    }
    /* A guest may print anything; JSON carries only UTF-8.  Bad bytes become
     * '?' one for one, so 'next' and 'size' stay byte offsets. */
    utf8_sanitize(text, len);
    json_t *data = json_stringn_nocheck(text, len);
    free(text);
    reply(resp, 200, json_pack("{s:o, s:I, s:I}", "data", data, "next", (json_int_t) next,
                               "size", (json_int_t) size));
    return 0;
}

static int h_vm_stats(const struct http_request *req, struct http_response *resp,
                      void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    json_t *j = vm_stats(a, vm, errp);
    vm_unref(a, vm);
    if (!j)
        return -1;
    reply(resp, 200, j);
    return 0;
}

static int h_vm_vnc(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    struct agent *a = opaque;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    json_t *j = vm_vnc_info(a, vm, errp);
    vm_unref(a, vm);
    if (!j)
        return -1;
    reply(resp, 200, j);
    return 0;
}

/* ---- guest tools --------------------------------------------------------- */

static int h_guest_ping(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    long long t0 = now_ms();
    json_t *r = guest_agent_call(a, vm, "guest-ping", NULL, 5000, errp);
    vm_unref(a, vm);
    if (!r)
        return -1;
    json_decref(r);
    reply(resp, 200, json_pack("{s:b, s:I}", "ok", 1, "latency_ms", (json_int_t) (now_ms() - t0)));
    return 0;
}

static int h_guest_interfaces(const struct http_request *req, struct http_response *resp,
                              void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    json_t *r = guest_interfaces(a, vm, errp);
    vm_unref(a, vm);
    if (!r)
        return -1;
    reply(resp, 200, json_pack("{s:o}", "interfaces", r));
    return 0;
}

static int h_guest_fsfreeze(const struct http_request *req, struct http_response *resp,
                            void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "op", NULL };
    const char *op = NULL;
    if (body_keys(req, keys, errp) < 0
        || json_get_string(req->body, "op", "", true, &op, errp) < 0)
        return -1;
    if (strcmp(op, "freeze") && strcmp(op, "thaw") && strcmp(op, "status"))
        return error_set_field(errp, ERR_INVALID_ARG, "op",
                               "op '%s' must be freeze, thaw or status", op);
    struct vm *vm = req_vm(a, req, errp);
    if (!vm)
        return -1;
    json_t *r = guest_fsfreeze(a, vm, op, errp);
    vm_unref(a, vm);
    if (!r)
        return -1;
    reply(resp, 200, r);
    return 0;
}

static int h_log_level(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    (void) opaque;
    static const char *const keys[] = { "level", NULL };
    const char *level = NULL;
    if (body_keys(req, keys, errp) < 0
        || json_get_string(req->body, "level", "", true, &level, errp) < 0)
        return -1;
    int l = log_level_from_string(level);
    if (l < 0)
        return error_set_field(errp, ERR_INVALID_ARG, "level",
                               "level '%s' must be debug, info, warn or error", level);
    log_set_level((enum log_level) l);
    reply(resp, 200, json_pack("{s:s}", "level", level));
    return 0;
}

/* Keep in step with docs/api/openapi.yaml (tests/unit/agent checks it). */
static const struct http_route core_routes[] = {
    { "GET", "/v1/version", h_version },
    { "GET", "/v1/host", h_host },
    { "GET", "/v1/host/stats", h_host_stats },
    { "PUT", "/v1/host/generation", h_host_generation },
    { "GET", "/v1/events", h_events },
    { "PUT", "/v1/log-level", h_log_level },
    { "GET", "/v1/vms", h_vm_list },
    { "POST", "/v1/vms", h_vm_define },
    { "GET", "/v1/vms/{name}", h_vm_get },
    { "DELETE", "/v1/vms/{name}", h_vm_undefine },
    { "POST", "/v1/vms/{name}/start", h_vm_start },
    { "POST", "/v1/vms/{name}/shutdown", h_vm_shutdown },
    { "POST", "/v1/vms/{name}/destroy", h_vm_destroy },
    { "POST", "/v1/vms/{name}/reboot", h_vm_reboot },
    { "POST", "/v1/vms/{name}/pause", h_vm_pause },
    { "POST", "/v1/vms/{name}/resume", h_vm_resume },
    { "POST", "/v1/vms/{name}/hibernate", h_vm_hibernate },
    { "POST", "/v1/vms/{name}/restore", h_vm_restore },
    { "PUT", "/v1/vms/{name}/vcpus", h_vm_vcpus },
    { "PUT", "/v1/vms/{name}/memory", h_vm_memory },
    { "PUT", "/v1/vms/{name}/balloon", h_vm_balloon },
    { "POST", "/v1/vms/{name}/disks", h_vm_attach_disk },
    { "DELETE", "/v1/vms/{name}/disks/{id}", h_vm_detach_disk },
    { "POST", "/v1/vms/{name}/nics", h_vm_attach_nic },
    { "DELETE", "/v1/vms/{name}/nics/{id}", h_vm_detach_nic },
    { "PUT", "/v1/vms/{name}/cdroms/{id}/media", h_vm_media },
    { "DELETE", "/v1/vms/{name}/cdroms/{id}/media", h_vm_media },
    { "GET", "/v1/vms/{name}/console", h_vm_console },
    { "GET", "/v1/vms/{name}/stats", h_vm_stats },
    { "GET", "/v1/vms/{name}/vnc", h_vm_vnc },
    { "GET", "/v1/vms/{name}/guest/ping", h_guest_ping },
    { "GET", "/v1/vms/{name}/guest/interfaces", h_guest_interfaces },
    { "POST", "/v1/vms/{name}/guest/fsfreeze", h_guest_fsfreeze },
    { NULL, NULL, NULL },
};

static struct http_route *all_routes;
static pthread_once_t all_routes_once = PTHREAD_ONCE_INIT;

/* The core routes followed by every module's. */
static void build_routes(void)
{
    size_t n = ARRAY_SIZE(core_routes) - 1;
    for (const struct agent_module *const *m = agent_modules; *m; m++)
        for (const struct http_route *r = (*m)->routes; r && r->method; r++)
            n++;
    all_routes = xcalloc(n + 1, sizeof *all_routes);
    size_t k = 0;
    for (size_t i = 0; core_routes[i].method; i++)
        all_routes[k++] = core_routes[i];
    for (const struct agent_module *const *m = agent_modules; *m; m++)
        for (const struct http_route *r = (*m)->routes; r && r->method; r++)
            all_routes[k++] = *r;
}

const struct http_route *agent_api_routes(void)
{
    pthread_once(&all_routes_once, build_routes);
    return all_routes;
}
