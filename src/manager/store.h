/* store.h - the manager's database, behind a backend-neutral interface.
 *
 * Everything the manager knows (inventory, users, tokens, tasks, events) lives
 * in one relational store.  Callers speak portable SQL only: '?' placeholders
 * numbered left to right, BIGINT/INTEGER/TEXT columns, no backend functions,
 * "INSERT ... ON CONFLICT (...) DO ...", LIMIT/OFFSET.  A backend turns that
 * into its own dialect (the SQLite one in store_sqlite.c uses it as is; a
 * PostgreSQL backend will rewrite '?' to $1..$n), so callers never change when
 * a backend is added.  Values are never spliced into SQL: they are bound.
 *
 * Work happens in transactions.  store_begin() takes a connection from the
 * store's small pool (waiting if all are busy) and opens a read or write
 * transaction; store_commit() or store_rollback() ends it and gives the
 * connection back.  Write transactions are serialised by the backend (SQLite:
 * BEGIN IMMEDIATE, WAL journal, so readers go on while one writer writes).
 * A transaction belongs to one thread at a time.
 *
 * Schema: numbered migrations (schema.c) are applied at open, each in its
 * own transaction, and the applied numbers recorded in the table
 * schema_version.  Opening a database written by a newer manager fails.
 *
 * Errors: a unique or foreign-key violation is ERR_CONFLICT, a CHECK
 * violation ERR_INVALID_ARG, a busy database past the timeout ERR_TIMEOUT, a
 * full disk ERR_NO_SPACE, anything else ERR_IO; the message names the SQL
 * error.  Callers validate input first, so these are a last line of defence.
 *
 * Neighbours: store_backend.h (the contract a backend implements),
 * store_sqlite.c (the SQLite backend), schema.c (the migrations),
 * inventory.c/auth.c/tasks.c/events.c (the callers). */
#ifndef STRATA_MANAGER_STORE_H
#define STRATA_MANAGER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/mem.h"

struct store;
struct store_txn;
struct store_stmt;

struct store_config {
    const char *url;            /* "sqlite:PATH" or a plain PATH (SQLite) */
    unsigned pool_size;         /* connections; 0: 4 */
    unsigned busy_timeout_ms;   /* wait for another writer; 0: 10000 */
    unsigned migrate_to;        /* tests: stop after this schema version; 0: latest */
};

/* Opens (creating if needed) the database and brings its schema up to date.
 * Returns a new store; the caller frees it with store_close(). */
struct store *store_open(const struct store_config *cfg, struct error **errp);
/* Closes every connection.  Every transaction must have ended.  Accepts NULL. */
void store_close(struct store *s);
static inline void autostore_impl(struct store **s) { store_close(*s); }
#define AUTOSTORE __attribute__((cleanup(autostore_impl)))

/* The schema version the database is at, and the newest this build knows. */
unsigned store_schema_version(struct store *s);
unsigned store_schema_latest(void);
/* "sqlite" (for logs and the version route). */
const char *store_backend_name(const struct store *s);

enum store_mode { STORE_READ, STORE_WRITE };

/* Returns a new transaction; end it with store_commit() or store_rollback(). */
struct store_txn *store_begin(struct store *s, enum store_mode mode, struct error **errp);
/* Commits and frees 't' (also on failure, after rolling back). */
int store_commit(struct store_txn *t, struct error **errp);
/* Rolls back and frees 't'.  Accepts NULL. */
void store_rollback(struct store_txn *t);
static inline void autotxn_impl(struct store_txn **t) { store_rollback(*t); }
/* A transaction still open when the variable leaves scope is rolled back;
 * store_commit(steal_pointer(&t), errp) hands it over. */
#define AUTOTXN __attribute__((cleanup(autotxn_impl)))

/* ---- values and statements ---------------------------------------------- */

enum store_type { STORE_NULL, STORE_TEXT, STORE_INT };

/* A bound value.  Text is borrowed for the duration of the call. */
struct store_val {
    enum store_type type;
    const char *s;
    int64_t i;
};
#define SV_NULL ((struct store_val) { .type = STORE_NULL })
/* NULL text binds SQL NULL. */
#define SV_TEXT(x) ((struct store_val) { .type = STORE_TEXT, .s = (x) })
#define SV_INT(x) ((struct store_val) { .type = STORE_INT, .i = (int64_t) (x) })
#define SV_BOOL(x) SV_INT((x) ? 1 : 0)
/* STORE_ARGS(SV_TEXT(a), SV_INT(b)) expands to "array, count". */
#define STORE_ARGS(...)                                                         \
    (const struct store_val[]) { __VA_ARGS__ },                                 \
    sizeof((const struct store_val[]) { __VA_ARGS__ }) / sizeof(struct store_val)
#define STORE_NO_ARGS NULL, 0

/* Runs one statement with 'args' bound to its '?' placeholders and no rows
 * wanted.  Returns the number of rows changed (>= 0) or -1. */
int64_t store_exec(struct store_txn *t, const char *sql, const struct store_val *args,
                   size_t n_args, struct error **errp);

/* Prepares 'sql' and binds 'args'.  Returns a new statement positioned before
 * its first row; the caller frees it with store_stmt_free() before the
 * transaction ends. */
struct store_stmt *store_query(struct store_txn *t, const char *sql,
                               const struct store_val *args, size_t n_args,
                               struct error **errp);
/* Advances to the next row: 1 a row is there, 0 no more rows, -1 error. */
int store_step(struct store_stmt *st, struct error **errp);
void store_stmt_free(struct store_stmt *st);   /* Accepts NULL. */
static inline void autostmt_impl(struct store_stmt **st) { store_stmt_free(*st); }
#define AUTOSTMT __attribute__((cleanup(autostmt_impl)))

/* Columns of the current row, numbered from 0.  Text is borrowed until the
 * next store_step(); SQL NULL reads as NULL text, 0, and is_null true. */
int store_columns(struct store_stmt *st);
const char *store_col_name(struct store_stmt *st, int col);
bool store_col_is_null(struct store_stmt *st, int col);
const char *store_col_text(struct store_stmt *st, int col);
int64_t store_col_int(struct store_stmt *st, int col);

/* Runs a query expected to return at most one row with one integer column.
 * Returns 1 and sets '*out' when a row came, 0 when none, -1 on error. */
int store_query_int(struct store_txn *t, const char *sql, const struct store_val *args,
                    size_t n_args, int64_t *out, struct error **errp);

/* Returns the next value of the named counter (1, 2, ...), in this write
 * transaction; counters are rows of the table 'sequences'. */
int64_t store_next_seq(struct store_txn *t, const char *name, struct error **errp);

/* The time, in milliseconds since the epoch, stored in *_at columns. */
int64_t store_now_ms(void);

#endif
