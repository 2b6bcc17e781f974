/* store_backend.h - the contract a database backend implements for store.c.
 *
 * store.c owns the pool, the transactions and the migrations; a backend only
 * knows one connection at a time.  Every callback is called by one thread at
 * a time for a given connection.  SQL handed to prepare() is portable SQL
 * with '?' placeholders (see store.h); a backend rewrites it if its dialect
 * differs.  Failures set 'errp' with the code mapping described in store.h.
 *
 * Neighbours: store.c (the only caller), store_sqlite.c (the SQLite backend). */
#ifndef STRATA_MANAGER_STORE_BACKEND_H
#define STRATA_MANAGER_STORE_BACKEND_H

#include "manager/store.h"

struct store_backend {
    const char *name;
    /* Returns a new connection to 'target' (the URL without its scheme). */
    void *(*connect)(const char *target, unsigned busy_timeout_ms, struct error **errp);
    void (*disconnect)(void *conn);                     /* Accepts NULL. */
    int (*begin)(void *conn, enum store_mode mode, struct error **errp);
    int (*commit)(void *conn, struct error **errp);
    void (*rollback)(void *conn);                       /* Never fails visibly. */
    /* Returns a new prepared statement, freed with finalize(). */
    void *(*prepare)(void *conn, const char *sql, struct error **errp);
    /* 'idx' counts from 1. */
    int (*bind)(void *stmt, int idx, const struct store_val *v, struct error **errp);
    int (*step)(void *stmt, struct error **errp);      /* 1 row, 0 done, -1 error */
    int64_t (*changes)(void *conn);                    /* rows changed by the last step */
    void (*finalize)(void *stmt);                      /* Accepts NULL. */
    int (*columns)(void *stmt);
    const char *(*col_name)(void *stmt, int col);
    bool (*col_is_null)(void *stmt, int col);
    const char *(*col_text)(void *stmt, int col);
    int64_t (*col_int)(void *stmt, int col);
};

extern const struct store_backend store_sqlite_backend;

/* One migration: 'stmts' (NULL-terminated) run in one transaction. */
struct store_migration {
    unsigned version;
    const char *description;
    const char *const *stmts;
};

/* The migrations, in version order, terminated by { 0 }. */
extern const struct store_migration store_migrations[];

#endif
