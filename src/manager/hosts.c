/* hosts.c - see hosts.h: join tokens, enrollment with a certificate from
 * the manager's CA, and the monitor that keeps in touch with every agent.
 *
 * The monitor speaks to agents through agent_client.h (mutual TLS: the
 * manager's client certificate, the CA pinned, the agent's certificate
 * checked for the host's name).  Every round checks all hosts at once, one
 * thread per host; each heartbeat records the agent's /v1/host/stats
 * (hosts.stats, stats_at) and its applied generation, refreshes datastore
 * usage, re-pushes the host's datastores and networks when it reconnects or
 * is behind its desired generation (resources.h), then lets the VM code
 * bring its records in line (vms_host_sync()).  No transaction is open
 * while an agent is called.
 *
 * Neighbours: ca.c, agent_client.c, resources.c, vms.c, inventory.c (kinds,
 * names), events.c, api_hosts.c (routes). */
#define LOG_MODULE "hosts"
#include "manager/hosts.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "http/http_client.h"
#include "manager/agent_client.h"
#include "manager/auth.h"
#include "manager/ca.h"
#include "manager/events.h"
#include "manager/inventory.h"
#include "manager/manager.h"
#include "manager/resources.h"
#include "manager/vms.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define MAX_ADDRESSES 16
#define CSR_MAX (16 * 1024)
#define MONITOR_CALL_MS 30000           /* heartbeat, re-push and VM sync, per request */

/* ---- join tokens -------------------------------------------------------- */

static bool join_token_is_valid(const char *s)
{
    if (!s || strlen(s) != 4 + 64 || strncmp(s, HOST_JOIN_PREFIX, 4) != 0)
        return false;
    for (const char *p = s + 4; *p; p++)
        if (!isdigit((unsigned char) *p) && (*p < 'a' || *p > 'f'))
            return false;
    return true;
}

char *host_join_token_create(struct store_txn *t, const char *cluster_id, int64_t expires_at,
                             const char *actor, char id_out[UUID_STRLEN + 1],
                             struct error **errp)
{
    AUTOFREE char *tok = auth_token_generate();     /* "stk_" + 64 hex */
    memcpy(tok, HOST_JOIN_PREFIX, 4);
    char hash[65], id[UUID_STRLEN + 1];
    auth_token_hash(tok, hash);
    uuid_generate(id);
    if (store_exec(t, "INSERT INTO join_tokens (id, token_hash, cluster_id, created_by, "
                      "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                   STORE_ARGS(SV_TEXT(id), SV_TEXT(hash), SV_TEXT(cluster_id), SV_TEXT(actor),
                              SV_INT(store_now_ms()), SV_INT(expires_at)), errp) < 0)
        return NULL;
    if (id_out)
        memcpy(id_out, id, sizeof id);
    return steal_pointer(&tok);
}

/* ---- enrollment --------------------------------------------------------- */

static bool is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static bool is_dns_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.')
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char) *p) && *p != '-' && *p != '.')
            return false;
    return true;
}

static int address_check(const char *a, const char *field, struct error **errp)
{
    if (!is_ip(a) && !is_dns_name(a))
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "'%s' is neither an IP address nor a host name", a);
    return 0;
}

/* Adds 'a' to the SAN lists (no duplicates). */
static void san_add(const char **dns, size_t *nd, const char **ips, size_t *ni, const char *a)
{
    const char **list = is_ip(a) ? ips : dns;
    size_t *n = is_ip(a) ? ni : nd;
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(list[i], a))
            return;
    list[(*n)++] = a;
}

int host_enroll(struct manager *m, const json_t *body, json_t **reply, struct error **errp)
{
    static const char *const keys[] = {
        "token", "name", "address", "port", "addresses", "csr", NULL,
    };
    const char *tok = NULL, *name = NULL, *address = NULL, *csr = NULL;
    unsigned long long port = HOST_AGENT_PORT;
    if (json_check_keys(body, keys, NULL, errp) < 0 ||
        json_get_string(body, "token", NULL, true, &tok, errp) < 0 ||
        json_get_string(body, "name", NULL, true, &name, errp) < 0 ||
        json_get_string(body, "address", NULL, true, &address, errp) < 0 ||
        json_get_uint(body, "port", NULL, false, 1, 65535, &port, errp) < 0 ||
        json_get_string(body, "csr", NULL, false, &csr, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 ||
        address_check(address, "address", errp) < 0)
        return -1;
    if (csr && strlen(csr) > CSR_MAX)
        return error_set_field(errp, ERR_TOO_LARGE, "csr", "csr is larger than %d bytes",
                               CSR_MAX);
    const char *dns[MAX_ADDRESSES + 2], *ips[MAX_ADDRESSES + 2];
    size_t nd = 0, ni = 0;
    san_add(dns, &nd, ips, &ni, name);
    san_add(dns, &nd, ips, &ni, address);
    json_t *extra = json_object_get(body, "addresses");
    if (extra && !json_is_array(extra))
        return error_set_field(errp, ERR_INVALID_ARG, "addresses",
                               "'addresses' must be an array of strings");
    if (json_array_size(extra) > MAX_ADDRESSES)
        return error_set_field(errp, ERR_INVALID_ARG, "addresses",
                               "at most %d addresses", MAX_ADDRESSES);
    for (size_t i = 0; i < json_array_size(extra); i++) {
        AUTOFREE char *f = json_path_index("addresses", i);
        const char *a = json_string_value(json_array_get(extra, i));
        if (!a)
            return error_set_field(errp, ERR_INVALID_ARG, f, "'%s' must be a string", f);
        if (address_check(a, f, errp) < 0)
            return -1;
        san_add(dns, &nd, ips, &ni, a);
    }
    dns[nd] = NULL;
    ips[ni] = NULL;
    if (!join_token_is_valid(tok))
        return error_set(errp, ERR_UNAUTHORIZED, "malformed join token");
    if (!m->ca)
        return error_set(errp, ERR_UNSUPPORTED, "this manager has no certificate authority");

    char hash[65];
    auth_token_hash(tok, hash);
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    char tok_id[UUID_STRLEN + 1];
    AUTOFREE char *cluster_id = NULL;
    {
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT id, cluster_id, expires_at, used_at FROM join_tokens WHERE token_hash = ?",
            STORE_ARGS(SV_TEXT(hash)), errp);
        if (!st)
            return -1;
        int r = store_step(st, errp);
        if (r < 0)
            return -1;
        if (r == 0)
            return error_set(errp, ERR_UNAUTHORIZED, "unknown join token");
        if (!store_col_is_null(st, 3))
            return error_set(errp, ERR_UNAUTHORIZED, "join token has already been used");
        if (store_col_int(st, 2) <= store_now_ms())
            return error_set(errp, ERR_UNAUTHORIZED, "join token has expired");
        snprintf(tok_id, sizeof tok_id, "%s", store_col_text(st, 0));
        cluster_id = xstrdup(store_col_text(st, 1));
    }
    int64_t taken = 0;
    if (store_query_int(t, "SELECT COUNT(*) FROM hosts WHERE name = ?",
                        STORE_ARGS(SV_TEXT(name)), &taken, errp) < 0)
        return -1;
    if (taken)
        return error_set_field(errp, ERR_CONFLICT, "name", "host '%s' already exists", name);

    struct ca_request req = {
        .cn = name, .dns_names = dns, .ip_addresses = ips, .purpose = CA_SERVER,
        .csr_pem = csr,
    };
    struct ca_issued cert = { 0 };
    if (ca_issue(m->ca, &req, &cert, errp) < 0)
        return -1;
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    int64_t now = store_now_ms();
    AUTOFREE char *msg = xasprintf("host '%s' joined from %s", name, address);
    struct event e = {
        .type = "host.joined", .object_type = "host", .object_id = id, .object_name = name,
        .message = msg,
    };
    json_t *host = NULL;
    if (store_exec(t, "INSERT INTO hosts (id, name, cluster_id, address, port, state, "
                      "cert_serial, created_at, updated_at) "
                      "VALUES (?, ?, ?, ?, ?, 'disconnected', ?, ?, ?)",
                   STORE_ARGS(SV_TEXT(id), SV_TEXT(name), SV_TEXT(cluster_id),
                              SV_TEXT(address), SV_INT(port), SV_TEXT(cert.serial),
                              SV_INT(now), SV_INT(now)), errp) < 0 ||
        store_exec(t, "UPDATE join_tokens SET used_at = ?, host_id = ? WHERE id = ?",
                   STORE_ARGS(SV_INT(now), SV_TEXT(id), SV_TEXT(tok_id)), errp) < 0 ||
        event_append(t, &e, errp) < 0 ||
        !(host = inv_get(t, &inv_hosts, id, errp)) ||
        manager_commit(m, steal_pointer(&t), errp) < 0) {
        json_decref(host);
        ca_issued_clear(&cert);
        return -1;
    }
    LOG_INFO("host '%s' joined (%s port %llu), certificate %s", name, address, port,
             cert.serial);
    *reply = json_pack("{s:o, s:s, s:s, s:s?, s:s}", "host", host, "ca_pem",
                       ca_cert_pem(m->ca), "cert_pem", cert.cert_pem, "key_pem", cert.key_pem,
                       "manager_cn", CA_MANAGER_CN);
    ca_issued_clear(&cert);
    return 0;
}

/* ---- revocation --------------------------------------------------------- */

char *host_crl_make(struct manager *m, struct error **errp)
{
    if (!m->ca)
        return error_set(errp, ERR_UNSUPPORTED, "this manager has no certificate authority"),
               NULL;
    char **serials = xcalloc(1, sizeof *serials);
    size_t n = 0;
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
        AUTOSTMT struct store_stmt *st = t ? store_query(
            t, "SELECT serial FROM revoked_certs ORDER BY revoked_at, serial", STORE_NO_ARGS,
            errp) : NULL;
        int r = st ? 0 : -1;
        while (st && (r = store_step(st, errp)) > 0) {
            serials = xrealloc(serials, (n + 2) * sizeof *serials);
            serials[n++] = xstrdup(store_col_text(st, 0));
            serials[n] = NULL;
        }
        if (r < 0) {
            strv_free(serials);
            return NULL;
        }
    }
    char *crl = ca_crl(m->ca, (const char *const *) serials, 0, errp);
    strv_free(serials);
    return crl;
}

int host_crl_write(struct manager *m, struct error **errp)
{
    AUTOFREE char *crl = host_crl_make(m, errp);
    if (!crl)
        return -1;
    return file_write_atomic(ca_crl_file(m->ca), crl, strlen(crl), 0644, errp);
}

/* ---- monitoring --------------------------------------------------------- */

struct host_row {
    char id[UUID_STRLEN + 1];
    char *name, *address, *state;
    long port;
    bool has_facts;
    int64_t desired;
};

static void host_rows_free(struct host_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].name);
        free(rows[i].address);
        free(rows[i].state);
    }
    free(rows);
}

static struct host_row *hosts_read(struct manager *m, size_t *n, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
    AUTOSTMT struct store_stmt *st = t ? store_query(
        t, "SELECT id, name, address, port, state, facts IS NOT NULL, desired_generation "
           "FROM hosts ORDER BY name",
        STORE_NO_ARGS, errp) : NULL;
    if (!st)
        return NULL;
    struct host_row *rows = NULL;
    size_t count = 0;
    int r;
    while ((r = store_step(st, errp)) > 0) {
        rows = xrealloc(rows, (count + 1) * sizeof *rows);
        struct host_row *h = &rows[count++];
        snprintf(h->id, sizeof h->id, "%s", store_col_text(st, 0));
        h->name = xstrdup(store_col_text(st, 1));
        h->address = xstrdup(store_col_text(st, 2));
        h->port = (long) store_col_int(st, 3);
        h->state = xstrdup(store_col_text(st, 4));
        h->has_facts = store_col_int(st, 5) != 0;
        h->desired = store_col_int(st, 6);
    }
    if (r < 0) {
        host_rows_free(rows, count);
        return NULL;
    }
    *n = count;
    return rows ? rows : xzalloc(sizeof *rows);
}

/* The heartbeat: the agent's statistics ('*stats') and, when wanted, its
 * facts ('*facts'); new references. */
static int agent_check(struct agent_conn *a, bool want_facts, json_t **stats, json_t **facts,
                       struct error **errp)
{
    if (agent_call(a, "GET", "/v1/host/stats", NULL, NULL, stats, errp) < 0)
        return -1;
    if (want_facts && agent_call(a, "GET", "/v1/host", NULL, NULL, facts, errp) < 0)
        return -1;
    return 0;
}

static int record(struct manager *m, const struct host_row *h, bool up, const json_t *facts,
                  const json_t *stats, const char *why, struct error **errp)
{
    AUTOFREE char *facts_text = facts ? json_to_string(facts) : NULL;
    AUTOFREE char *stats_text = stats ? json_to_string(stats) : NULL;
    json_t *applied = json_object_get(stats, "applied_generation");
    int64_t now = store_now_ms();
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    /* The state as it is now, not as the round read it: an administrator may
     * have put the host in maintenance meanwhile, which a heartbeat must not
     * undo. */
    AUTOFREE char *cur = NULL;
    {
        AUTOSTMT struct store_stmt *st = store_query(t, "SELECT state FROM hosts WHERE id = ?",
                                                     STORE_ARGS(SV_TEXT(h->id)), errp);
        if (!st)
            return -1;
        int r = store_step(st, errp);
        if (r <= 0)
            return r;           /* deleted meanwhile */
        cur = xstrdup(store_col_text(st, 0));
    }
    bool maint = !strcmp(cur, "maintenance");
    const char *state = maint ? "maintenance" : up ? "connected" : "disconnected";
    bool changed = !maint && strcmp(state, cur) != 0;
    if (up) {
        if (store_exec(t, "UPDATE hosts SET state = ?, last_seen_at = ?, "
                          "facts = COALESCE(?, facts), stats = ?, stats_at = ?, "
                          "applied_generation = COALESCE(?, applied_generation), "
                          "updated_at = ? WHERE id = ?",
                       STORE_ARGS(SV_TEXT(state), SV_INT(now), SV_TEXT(facts_text),
                                  SV_TEXT(stats_text), SV_INT(now),
                                  json_is_integer(applied) ? SV_INT(json_integer_value(applied))
                                                           : SV_NULL,
                                  SV_INT(now), SV_TEXT(h->id)), errp) < 0)
            return -1;
    } else if (changed) {
        if (store_exec(t, "UPDATE hosts SET state = ?, updated_at = ? WHERE id = ?",
                       STORE_ARGS(SV_TEXT(state), SV_INT(now), SV_TEXT(h->id)), errp) < 0)
            return -1;
    }
    if (changed) {
        AUTOFREE char *type = xasprintf("host.%s", state);
        AUTOFREE char *msg = why ? xasprintf("host '%s' %s: %s", h->name, state, why)
                                 : xasprintf("host '%s' %s", h->name, state);
        struct event e = {
            .type = type, .severity = up ? "info" : "warning", .object_type = "host",
            .object_id = h->id, .object_name = h->name, .message = msg,
        };
        if (event_append(t, &e, errp) < 0)
            return -1;
    }
    /* The VMs of a host that does not answer are in an unknown state until
     * it does (then vms_host_sync() records what its agent reports). */
    int64_t unknown = 0;
    if (!up && (unknown = vms_mark_unknown(t, h->id, h->name, errp)) < 0)
        return -1;
    /* Only state changes wake the event long polls. */
    return changed || unknown ? manager_commit(m, steal_pointer(&t), errp)
                              : store_commit(steal_pointer(&t), errp);
}

/* One host's heartbeat, on its own thread: the call, the record, then (when
 * it answered) datastore usage, the re-push of its share when it
 * reconnected or is behind the desired generation, and the VM sync. */
struct poll_job {
    struct manager *m;
    const struct host_row *h;
    pthread_t thread;
    bool started, up;
};

static void *poll_host(void *arg)
{
    struct poll_job *j = arg;
    struct manager *m = j->m;
    const struct host_row *h = j->h;
    bool reconnected = !strcmp(h->state, "disconnected") || !h->has_facts;
    bool want_facts = reconnected || strcmp(h->state, "connected") != 0;
    AUTOJSON json_t *facts = NULL, *stats = NULL;
    AUTOERROR struct error *err = NULL;
    /* A bounded wait: a hung agent must not hold the monitor's round. */
    AUTOAGENT struct agent_conn *a =
        agent_connect_timeout(m, h->id, true, MONITOR_CALL_MS, &err);
    bool up = a && agent_check(a, want_facts, &stats, &facts, &err) == 0;
    if (!up)
        LOG_RL(LOG_LEVEL_INFO, "host '%s' (%s:%ld) not reachable: %s", h->name, h->address,
               h->port, err->message);
    AUTOERROR struct error *werr = NULL;
    if (record(m, h, up, facts, stats, up ? NULL : err->message, &werr) < 0) {
        LOG_RL_WARN("cannot record the state of host '%s': %s", h->name, werr->message);
        up = false;
    }
    j->up = up;
    if (!up)
        return NULL;
    res_host_usage(m, a);
    json_t *applied = json_object_get(stats, "applied_generation");
    int64_t have = json_is_integer(applied) ? json_integer_value(applied) : -1;
    if (reconnected || have < h->desired) {
        AUTOERROR struct error *rerr = NULL;
        if (res_host_resync(m, a, h->desired, &rerr) < 0)
            LOG_RL_WARN("host '%s': re-applying its datastores and networks: %s", h->name,
                        rerr->message);
        else
            LOG_INFO("host '%s': datastores and networks applied (generation %lld)", h->name,
                     (long long) h->desired);
    }
    vms_host_sync(m, h->id, a, reconnected);
    return NULL;
}

int host_monitor_poll(struct manager *m, struct error **errp)
{
    if (!m->ca)
        return error_set(errp, ERR_UNSUPPORTED, "this manager has no certificate authority");
    size_t n = 0;
    struct host_row *rows = hosts_read(m, &n, errp);
    if (!rows)
        return -1;
    /* Every host at once (one thread each), so a slow host delays no other. */
    struct poll_job *jobs = xcalloc(n + 1, sizeof *jobs);
    for (size_t i = 0; i < n; i++) {
        jobs[i] = (struct poll_job) { .m = m, .h = &rows[i] };
        jobs[i].started = pthread_create(&jobs[i].thread, NULL, poll_host, &jobs[i]) == 0;
        if (!jobs[i].started)
            poll_host(&jobs[i]);
    }
    int reached = 0;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].started)
            pthread_join(jobs[i].thread, NULL);
        reached += jobs[i].up;
    }
    free(jobs);
    host_rows_free(rows, n);
    return reached;
}

struct host_monitor {
    struct manager *m;
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
};

static void *monitor_main(void *arg)
{
    struct host_monitor *hm = arg;
    int64_t pruned_at = 0;
    pthread_mutex_lock(&hm->lock);
    while (!hm->stopping) {
        pthread_mutex_unlock(&hm->lock);
        AUTOERROR struct error *err = NULL;
        if (host_monitor_poll(hm->m, &err) < 0)
            LOG_RL_WARN("host monitor: %s", err->message);
        /* Retention of events and ended tasks, at start and hourly. */
        int64_t now = store_now_ms();
        if (now - pruned_at >= 3600000) {
            AUTOERROR struct error *perr = NULL;
            int64_t n = history_prune(hm->m->store, now - hm->m->history_ms, &perr);
            if (n < 0)
                LOG_RL_WARN("pruning the history: %s", perr->message);
            else if (n > 0)
                LOG_INFO("pruned %lld events and ended tasks older than %lld days",
                         (long long) n, (long long) (hm->m->history_ms / 86400000));
            pruned_at = now;
        }
        pthread_mutex_lock(&hm->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += hm->interval_ms / 1000;
        ts.tv_nsec += (long) (hm->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!hm->stopping && pthread_cond_timedwait(&hm->cond, &hm->lock, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&hm->lock);
    return NULL;
}

struct host_monitor *host_monitor_start(struct manager *m, int interval_ms,
                                        struct error **errp)
{
    struct host_monitor *hm = xzalloc(sizeof *hm);
    hm->m = m;
    hm->interval_ms = interval_ms > 0 ? interval_ms : 5000;
    pthread_mutex_init(&hm->lock, NULL);
    pthread_cond_init(&hm->cond, NULL);
    if (pthread_create(&hm->thread, NULL, monitor_main, hm) != 0) {
        pthread_cond_destroy(&hm->cond);
        pthread_mutex_destroy(&hm->lock);
        free(hm);
        return error_set(errp, ERR_INTERNAL, "cannot start the host monitor"), NULL;
    }
    return hm;
}

void host_monitor_stop(struct host_monitor *hm)
{
    if (!hm)
        return;
    pthread_mutex_lock(&hm->lock);
    hm->stopping = true;
    pthread_cond_broadcast(&hm->cond);
    pthread_mutex_unlock(&hm->lock);
    pthread_join(hm->thread, NULL);
    pthread_cond_destroy(&hm->cond);
    pthread_mutex_destroy(&hm->lock);
    free(hm);
}
