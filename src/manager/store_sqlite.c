/* store_sqlite.c - the SQLite backend of the manager's store (store_backend.h).
 *
 * Each connection is opened in SQLite's multi-thread mode (no per-connection
 * mutex: store.c hands a connection to one transaction at a time) with:
 *   journal_mode=WAL    readers never wait for the writer;
 *   synchronous=FULL    a commit is on disk when it returns (tasks and
 *                       inventory survive kill -9 and power loss);
 *   foreign_keys=ON     REFERENCES clauses are enforced;
 *   busy_timeout        a second writer waits instead of failing.
 * Write transactions are BEGIN IMMEDIATE so they take the write lock up front
 * and never fail half-way with SQLITE_BUSY when upgrading a read lock.
 * Portable SQL with '?' placeholders is SQLite's own dialect: no rewriting.
 *
 * Neighbours: store.c (the only caller), store_backend.h (the contract). */
#define LOG_MODULE "sqlite"
#include <sqlite3.h>
#include <string.h>

#include "manager/store_backend.h"
#include "util/log.h"

static int sql_error(sqlite3 *db, int rc, const char *what, struct error **errp)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_CHECK || rc == SQLITE_CONSTRAINT_NOTNULL)
            return error_set(errp, ERR_INVALID_ARG, "%s: %s", what, msg);
        return error_set(errp, ERR_CONFLICT, "%s: %s", what, msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return error_set(errp, ERR_TIMEOUT, "%s: database is busy: %s", what, msg);
    case SQLITE_FULL:
        return error_set(errp, ERR_NO_SPACE, "%s: %s", what, msg);
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        return error_set(errp, ERR_INTERNAL, "%s: %s", what, msg);
    default:
        return error_set(errp, ERR_IO, "%s: %s", what, msg);
    }
}

static int exec_simple(sqlite3 *db, const char *sql, struct error **errp)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    sqlite3_free(msg);
    if (rc != SQLITE_OK)
        return sql_error(db, rc, sql, errp);
    return 0;
}

static void *sq_connect(const char *target, unsigned busy_timeout_ms, struct error **errp)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(target, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
    if (rc != SQLITE_OK) {
        sql_error(db, rc, "open", errp);
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, (int) busy_timeout_ms);
    if (exec_simple(db, "PRAGMA journal_mode=WAL", errp) < 0 ||
        exec_simple(db, "PRAGMA synchronous=FULL", errp) < 0 ||
        exec_simple(db, "PRAGMA foreign_keys=ON", errp) < 0) {
        sqlite3_close_v2(db);
        return NULL;
    }
    return db;
}

static void sq_disconnect(void *conn)
{
    if (conn)
        sqlite3_close_v2(conn);
}

static int sq_begin(void *conn, enum store_mode mode, struct error **errp)
{
    return exec_simple(conn, mode == STORE_WRITE ? "BEGIN IMMEDIATE" : "BEGIN", errp);
}

static int sq_commit(void *conn, struct error **errp)
{
    return exec_simple(conn, "COMMIT", errp);
}

static void sq_rollback(void *conn)
{
    if (!sqlite3_get_autocommit(conn)) {
        char *msg = NULL;
        if (sqlite3_exec(conn, "ROLLBACK", NULL, NULL, &msg) != SQLITE_OK)
            LOG_WARN("rollback failed: %s", msg ? msg : "?");
        sqlite3_free(msg);
    }
}

static void *sq_prepare(void *conn, const char *sql, struct error **errp)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(conn, sql, -1, &st, &tail);
    if (rc != SQLITE_OK) {
        sql_error(conn, rc, "prepare", errp);
        return NULL;
    }
    if (!st) {
        error_set(errp, ERR_INTERNAL, "prepare: empty SQL statement");
        return NULL;
    }
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == ';'))
        tail++;
    if (tail && *tail) {
        sqlite3_finalize(st);
        error_set(errp, ERR_INTERNAL, "prepare: more than one SQL statement");
        return NULL;
    }
    return st;
}

static int sq_bind(void *stmt, int idx, const struct store_val *v, struct error **errp)
{
    int rc;
    switch (v->type) {
    case STORE_TEXT:
        rc = v->s ? sqlite3_bind_text(stmt, idx, v->s, -1, SQLITE_TRANSIENT)
                  : sqlite3_bind_null(stmt, idx);
        break;
    case STORE_INT:
        rc = sqlite3_bind_int64(stmt, idx, v->i);
        break;
    default:
        rc = sqlite3_bind_null(stmt, idx);
        break;
    }
    if (rc != SQLITE_OK)
        return sql_error(sqlite3_db_handle(stmt), rc, "bind", errp);
    return 0;
}

static int sq_step(void *stmt, struct error **errp)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return sql_error(sqlite3_db_handle(stmt), rc, "statement", errp);
}

static int64_t sq_changes(void *conn)
{
    return sqlite3_changes64(conn);
}

static void sq_finalize(void *stmt)
{
    sqlite3_finalize(stmt);
}

static int sq_columns(void *stmt)
{
    return sqlite3_column_count(stmt);
}

static const char *sq_col_name(void *stmt, int col)
{
    return sqlite3_column_name(stmt, col);
}

static bool sq_col_is_null(void *stmt, int col)
{
    return sqlite3_column_type(stmt, col) == SQLITE_NULL;
}

static const char *sq_col_text(void *stmt, int col)
{
    return (const char *) sqlite3_column_text(stmt, col);
}

static int64_t sq_col_int(void *stmt, int col)
{
    return sqlite3_column_int64(stmt, col);
}

const struct store_backend store_sqlite_backend = {
    .name = "sqlite",
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .prepare = sq_prepare,
    .bind = sq_bind,
    .step = sq_step,
    .changes = sq_changes,
    .finalize = sq_finalize,
    .columns = sq_columns,
    .col_name = sq_col_name,
    .col_is_null = sq_col_is_null,
    .col_text = sq_col_text,
    .col_int = sq_col_int,
};
