/* manager.h - the manager's context: its store and what the API handlers
 * share, passed explicitly (no globals).
 *
 * manager_open() does the start-up that must precede serving: open the store
 * (migrations), create the first administrator when there is no user yet,
 * start the task engine, which resumes or rolls back the tasks a previous
 * process left unfinished (task_engine.h), open (or create) the CA and start
 * the host monitor (hosts.h).
 *
 * Change notification: every write made through manager_commit() bumps a
 * generation counter and wakes the threads in manager_wait_change(), which
 * is how the event stream's long poll learns of new events without holding
 * a database connection while it waits.
 *
 * Neighbours: main.c (creates it from options), api.c (routes get it as
 * their opaque pointer), store.h, auth.h, tasks.h. */
#ifndef STRATA_MANAGER_MANAGER_H
#define STRATA_MANAGER_MANAGER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "manager/store.h"
#include "manager/task_engine.h"
#include "util/error.h"

struct manager_config {
    const char *db;                 /* store URL or SQLite path */
    const char *admin_password;     /* first administrator, used only on an empty store */
    int64_t session_ttl_ms;         /* 0: AUTH_SESSION_TTL_MS */
    unsigned pool_size;             /* store connections; 0: default */
    const struct task_kind_def *const *task_kinds;  /* NULL-terminated; borrowed */
    unsigned task_workers;          /* 0: default */
    const char *pki_dir;            /* the CA (ca.h); NULL: no CA, hosts cannot join */
    int monitor_interval_ms;        /* host heartbeats; 0: no monitor thread */
    int history_days;               /* events and ended tasks kept; 0: 30 */
};

struct manager {
    struct store *store;
    struct task_engine *tasks;
    struct ca *ca;                  /* NULL without a PKI directory */
    struct host_monitor *monitor;
    int64_t session_ttl_ms;
    int64_t history_ms;             /* retention of events and ended tasks */
    int64_t started_ms;
    pthread_mutex_t change_lock;
    pthread_cond_t change_cond;
    uint64_t change_gen;
    bool stopping;                  /* manager_stop_waiters() was called */
};

/* Every kind of task this build runs (kinds.c), NULL-terminated. */
const struct task_kind_def *const *manager_task_kinds(void);

/* Returns a new manager; free it with manager_close(). */
struct manager *manager_open(const struct manager_config *cfg, struct error **errp);
/* Stops the host monitor and the task engine (running tasks finish), then
 * closes the CA and the store.  Accepts NULL. */
void manager_close(struct manager *m);

/* Commits 't' (and frees it, as store_commit()) and wakes the waiters. */
int manager_commit(struct manager *m, struct store_txn *t, struct error **errp);
/* The current change generation. */
uint64_t manager_change_gen(struct manager *m);
/* Waits until the generation differs from 'gen' or 'deadline_ms'
 * (CLOCK_REALTIME ms, as store_now_ms()) passes.  Returns false once the
 * manager is stopping (waiters should answer at once). */
bool manager_wait_change(struct manager *m, uint64_t gen, int64_t deadline_ms);
/* Wakes every waiter for good, before the HTTP servers stop. */
void manager_stop_waiters(struct manager *m);

#endif
