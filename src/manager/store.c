/* store.c - the backend-neutral half of store.h: connection pool,
 * transactions, statement wrappers, counters and schema migrations.
 *
 * Pool: 'pool_size' connections opened at store_open(); store_begin() takes a
 * free one (waiting on a condition variable when all are in use) and
 * store_commit()/store_rollback() give it back.  A transaction therefore
 * owns its connection exclusively, so backends need no locking of their own.
 *
 * Migrations: store_open() creates the table schema_version if missing, then
 * applies each migration of schema.c newer than the recorded version, each in
 * its own write transaction that re-reads the version first (two managers
 * starting at once cannot apply one twice).
 *
 * Neighbours: store_backend.h (what a backend implements), store_sqlite.c,
 * schema.c (the migrations). */
#define LOG_MODULE "store"
#include "manager/store.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "manager/store_backend.h"
#include "util/log.h"

#define DEFAULT_POOL 4
#define DEFAULT_BUSY_MS 10000

struct store_conn {
    void *handle;
    bool busy;
};

struct store {
    const struct store_backend *be;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    struct store_conn *conns;
    size_t n_conns;
    unsigned version;
};

struct store_txn {
    struct store *store;
    struct store_conn *conn;
    enum store_mode mode;
};

struct store_stmt {
    struct store_txn *txn;
    void *handle;
};

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- transactions ------------------------------------------------------- */

static struct store_conn *conn_acquire(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    for (;;) {
        for (size_t i = 0; i < s->n_conns; i++)
            if (!s->conns[i].busy) {
                s->conns[i].busy = true;
                pthread_mutex_unlock(&s->lock);
                return &s->conns[i];
            }
        pthread_cond_wait(&s->freed, &s->lock);
    }
}

static void conn_release(struct store *s, struct store_conn *c)
{
    pthread_mutex_lock(&s->lock);
    c->busy = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

struct store_txn *store_begin(struct store *s, enum store_mode mode, struct error **errp)
{
    struct store_conn *c = conn_acquire(s);
    if (s->be->begin(c->handle, mode, errp) < 0) {
        conn_release(s, c);
        return NULL;
    }
    struct store_txn *t = xzalloc(sizeof *t);
    t->store = s;
    t->conn = c;
    t->mode = mode;
    return t;
}

int store_commit(struct store_txn *t, struct error **errp)
{
    if (!t)
        return error_set(errp, ERR_INTERNAL, "commit without a transaction");
    struct store *s = t->store;
    int r = s->be->commit(t->conn->handle, errp);
    if (r < 0)
        s->be->rollback(t->conn->handle);
    conn_release(s, t->conn);
    free(t);
    return r;
}

void store_rollback(struct store_txn *t)
{
    if (!t)
        return;
    t->store->be->rollback(t->conn->handle);
    conn_release(t->store, t->conn);
    free(t);
}

/* ---- statements --------------------------------------------------------- */

struct store_stmt *store_query(struct store_txn *t, const char *sql,
                               const struct store_val *args, size_t n_args,
                               struct error **errp)
{
    const struct store_backend *be = t->store->be;
    void *h = be->prepare(t->conn->handle, sql, errp);
    if (!h)
        return NULL;
    for (size_t i = 0; i < n_args; i++)
        if (be->bind(h, (int) i + 1, &args[i], errp) < 0) {
            be->finalize(h);
            return NULL;
        }
    struct store_stmt *st = xzalloc(sizeof *st);
    st->txn = t;
    st->handle = h;
    return st;
}

int store_step(struct store_stmt *st, struct error **errp)
{
    return st->txn->store->be->step(st->handle, errp);
}

void store_stmt_free(struct store_stmt *st)
{
    if (!st)
        return;
    st->txn->store->be->finalize(st->handle);
    free(st);
}

int store_columns(struct store_stmt *st)
{
    return st->txn->store->be->columns(st->handle);
}

const char *store_col_name(struct store_stmt *st, int col)
{
    return st->txn->store->be->col_name(st->handle, col);
}

bool store_col_is_null(struct store_stmt *st, int col)
{
    return st->txn->store->be->col_is_null(st->handle, col);
}

const char *store_col_text(struct store_stmt *st, int col)
{
    return st->txn->store->be->col_text(st->handle, col);
}

int64_t store_col_int(struct store_stmt *st, int col)
{
    return st->txn->store->be->col_int(st->handle, col);
}

int64_t store_exec(struct store_txn *t, const char *sql, const struct store_val *args,
                   size_t n_args, struct error **errp)
{
    AUTOSTMT struct store_stmt *st = store_query(t, sql, args, n_args, errp);
    if (!st)
        return -1;
    int r;
    while ((r = store_step(st, errp)) > 0)
        ;
    if (r < 0)
        return -1;
    return t->store->be->changes(t->conn->handle);
}

int store_query_int(struct store_txn *t, const char *sql, const struct store_val *args,
                    size_t n_args, int64_t *out, struct error **errp)
{
    AUTOSTMT struct store_stmt *st = store_query(t, sql, args, n_args, errp);
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r <= 0)
        return r;
    *out = store_col_int(st, 0);
    return 1;
}

int64_t store_next_seq(struct store_txn *t, const char *name, struct error **errp)
{
    if (t->mode != STORE_WRITE)
        return error_set(errp, ERR_INTERNAL, "counter '%s' taken outside a write transaction",
                         name);
    if (store_exec(t,
                   "INSERT INTO sequences (name, value) VALUES (?, 1) "
                   "ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1",
                   STORE_ARGS(SV_TEXT(name)), errp) < 0)
        return -1;
    int64_t v = 0;
    int r = store_query_int(t, "SELECT value FROM sequences WHERE name = ?",
                            STORE_ARGS(SV_TEXT(name)), &v, errp);
    if (r < 0)
        return -1;
    if (r == 0)
        return error_set(errp, ERR_INTERNAL, "counter '%s' vanished", name);
    return v;
}

/* ---- migrations --------------------------------------------------------- */

unsigned store_schema_latest(void)
{
    unsigned v = 0;
    for (const struct store_migration *m = store_migrations; m->version; m++)
        v = m->version;
    return v;
}

unsigned store_schema_version(struct store *s)
{
    return s->version;
}

const char *store_backend_name(const struct store *s)
{
    return s->be->name;
}

static int read_version(struct store_txn *t, unsigned *out, struct error **errp)
{
    int64_t v = 0;
    int r = store_query_int(t, "SELECT COALESCE(MAX(version), 0) FROM schema_version",
                            STORE_NO_ARGS, &v, errp);
    if (r < 0)
        return -1;
    *out = (unsigned) v;
    return 0;
}

static int migrate(struct store *s, unsigned target, struct error **errp)
{
    {
        AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, errp);
        if (!t ||
            store_exec(t,
                       "CREATE TABLE IF NOT EXISTS schema_version ("
                       " version INTEGER PRIMARY KEY,"
                       " description TEXT NOT NULL,"
                       " applied_at BIGINT NOT NULL)",
                       STORE_NO_ARGS, errp) < 0 ||
            read_version(t, &s->version, errp) < 0 ||
            store_commit(steal_pointer(&t), errp) < 0)
            return -1;
    }
    unsigned latest = store_schema_latest();
    if (s->version > latest)
        return error_set(errp, ERR_UNSUPPORTED,
                         "database schema version %u is newer than this manager's (%u)",
                         s->version, latest);
    for (const struct store_migration *m = store_migrations; m->version; m++) {
        if (m->version <= s->version)
            continue;
        if (target && m->version > target)
            break;
        AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, errp);
        unsigned now = 0;
        if (!t || read_version(t, &now, errp) < 0)
            return -1;
        if (now >= m->version) {        /* another manager got there first */
            s->version = now;
            continue;
        }
        for (const char *const *sql = m->stmts; *sql; sql++)
            if (store_exec(t, *sql, STORE_NO_ARGS, errp) < 0) {
                error_prefix(errp, "schema migration %u (%s)", m->version, m->description);
                return -1;
            }
        if (store_exec(t,
                       "INSERT INTO schema_version (version, description, applied_at) "
                       "VALUES (?, ?, ?)",
                       STORE_ARGS(SV_INT(m->version), SV_TEXT(m->description),
                                  SV_INT(store_now_ms())),
                       errp) < 0 ||
            store_commit(steal_pointer(&t), errp) < 0) {
            error_prefix(errp, "schema migration %u (%s)", m->version, m->description);
            return -1;
        }
        LOG_INFO("applied schema migration %u: %s", m->version, m->description);
        s->version = m->version;
    }
    return 0;
}

/* ---- open / close ------------------------------------------------------- */

struct store *store_open(const struct store_config *cfg, struct error **errp)
{
    if (!cfg->url || !*cfg->url)
        return error_set(errp, ERR_INVALID_ARG, "no database given"), NULL;
    const struct store_backend *be = &store_sqlite_backend;
    const char *target = cfg->url;
    if (!strncmp(target, "sqlite:", 7))
        target += 7;
    else if (strstr(target, "://"))
        return error_set(errp, ERR_UNSUPPORTED, "database URL '%s' names no known backend "
                         "(only 'sqlite:PATH' is built in)", cfg->url), NULL;
    if (!*target)
        return error_set(errp, ERR_INVALID_ARG, "database URL '%s' has no path", cfg->url),
               NULL;

    struct store *s = xzalloc(sizeof *s);
    s->be = be;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    s->n_conns = cfg->pool_size ? cfg->pool_size : DEFAULT_POOL;
    if (!strcmp(target, ":memory:"))
        s->n_conns = 1;         /* each connection would get its own database */
    s->conns = xcalloc(s->n_conns, sizeof *s->conns);
    unsigned busy = cfg->busy_timeout_ms ? cfg->busy_timeout_ms : DEFAULT_BUSY_MS;
    /* The first connection alone switches the database to WAL and creates
     * it, before the others open it. */
    for (size_t i = 0; i < s->n_conns; i++) {
        s->conns[i].handle = be->connect(target, busy, errp);
        if (!s->conns[i].handle) {
            error_prefix(errp, "opening database '%s'", target);
            store_close(s);
            return NULL;
        }
    }
    if (migrate(s, cfg->migrate_to, errp) < 0) {
        error_prefix(errp, "database '%s'", target);
        store_close(s);
        return NULL;
    }
    return s;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_conns; i++)
        s->be->disconnect(s->conns[i].handle);
    free(s->conns);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
