/* manager.c - see manager.h: start-up (store, first administrator, task
 * engine with recovery, CA, host monitor) and the change notification behind
 * the event long poll. */
#define LOG_MODULE "manager"
#include "manager/manager.h"

#include <errno.h>
#include <time.h>

#include "manager/auth.h"
#include "manager/ca.h"
#include "manager/hosts.h"
#include "manager/vms.h"
#include "util/log.h"
#include "util/mem.h"

struct manager *manager_open(const struct manager_config *cfg, struct error **errp)
{
    struct store_config sc = { .url = cfg->db, .pool_size = cfg->pool_size };
    struct store *s = store_open(&sc, errp);
    if (!s)
        return NULL;
    struct manager *m = xzalloc(sizeof *m);
    m->store = s;
    m->session_ttl_ms = cfg->session_ttl_ms > 0 ? cfg->session_ttl_ms : AUTH_SESSION_TTL_MS;
    m->started_ms = store_now_ms();
    m->history_ms = (int64_t) (cfg->history_days > 0 ? cfg->history_days : 30) * 86400000;
    pthread_mutex_init(&m->change_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&m->change_cond, &ca);
    pthread_condattr_destroy(&ca);

    /* The CA before the task engine: tasks resumed or rolled back at start
     * call agents. */
    if (auth_bootstrap_admin(s, cfg->admin_password, NULL, errp) < 0 ||
        (cfg->pki_dir && !(m->ca = ca_open(cfg->pki_dir, errp))) ||
        !(m->tasks = task_engine_start(m, cfg->task_kinds, cfg->task_workers, errp)) ||
        (m->ca && cfg->monitor_interval_ms > 0 &&
         !(m->monitor = host_monitor_start(m, cfg->monitor_interval_ms, errp)))) {
        manager_close(m);
        return NULL;
    }
    AUTOERROR struct error *cerr = NULL;
    if (m->ca && host_crl_write(m, &cerr) < 0)
        LOG_WARN("cannot write the CRL of revoked agent certificates: %s", cerr->message);
    AUTOERROR struct error *serr = NULL;
    if (vms_startup_sweep(m, &serr) < 0)
        LOG_WARN("cannot sweep VM records: %s", serr->message);
    LOG_INFO("store '%s' (%s) at schema version %u", cfg->db, store_backend_name(s),
             store_schema_version(s));
    return m;
}

void manager_close(struct manager *m)
{
    if (!m)
        return;
    host_monitor_stop(m->monitor);
    task_engine_stop(m->tasks);
    ca_free(m->ca);
    store_close(m->store);
    pthread_cond_destroy(&m->change_cond);
    pthread_mutex_destroy(&m->change_lock);
    free(m);
}

int manager_commit(struct manager *m, struct store_txn *t, struct error **errp)
{
    if (store_commit(t, errp) < 0)
        return -1;
    pthread_mutex_lock(&m->change_lock);
    m->change_gen++;
    pthread_cond_broadcast(&m->change_cond);
    pthread_mutex_unlock(&m->change_lock);
    return 0;
}

uint64_t manager_change_gen(struct manager *m)
{
    pthread_mutex_lock(&m->change_lock);
    uint64_t g = m->change_gen;
    pthread_mutex_unlock(&m->change_lock);
    return g;
}

bool manager_wait_change(struct manager *m, uint64_t gen, int64_t deadline_ms)
{
    struct timespec ts = {
        .tv_sec = (time_t) (deadline_ms / 1000),
        .tv_nsec = (long) (deadline_ms % 1000) * 1000000L,
    };
    pthread_mutex_lock(&m->change_lock);
    while (m->change_gen == gen && !m->stopping) {
        if (pthread_cond_timedwait(&m->change_cond, &m->change_lock, &ts) == ETIMEDOUT)
            break;
    }
    bool go_on = !m->stopping;
    pthread_mutex_unlock(&m->change_lock);
    return go_on;
}

void manager_stop_waiters(struct manager *m)
{
    pthread_mutex_lock(&m->change_lock);
    m->stopping = true;
    pthread_cond_broadcast(&m->change_cond);
    pthread_mutex_unlock(&m->change_lock);
}
