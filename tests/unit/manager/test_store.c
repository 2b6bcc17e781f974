/* test_store.c - the manager's store over SQLite: migrations, transactions,
 * bound values, error codes, counters, the connection pool.
 *
 * Each test gets a fresh directory with "<dir>/strata.db".  Migrations are
 * checked three ways: a fresh database reaches the latest version; a
 * database stopped at version 1 (store_config.migrate_to) with data in it is
 * upgraded and keeps the data; reopening an up-to-date database changes
 * nothing.  A database from a "newer manager" is refused. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "manager/store.h"
#include "util/fileutil.h"
#include "util/mem.h"
#include "util/uuid.h"

struct fixture {
    char *dir;
    char *db;
};

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof *f);
    char tmpl[] = "/tmp/strata-store-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    f->db = xasprintf("%s/strata.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rm_rf(f->dir, NULL);
    free(f->dir);
    free(f->db);
    free(f);
    return 0;
}

static struct store *open_db(const char *path, unsigned migrate_to)
{
    struct error *err = NULL;
    struct store_config cfg = { .url = path, .migrate_to = migrate_to };
    struct store *s = store_open(&cfg, &err);
    if (!s)
        fail_msg("store_open: %s", err->message);
    return s;
}

static int64_t count(struct store *s, const char *sql)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(s, STORE_READ, &err);
    assert_non_null(t);
    int64_t n = -1;
    assert_int_equal(store_query_int(t, sql, STORE_NO_ARGS, &n, &err), 1);
    return n;
}

static void insert_site(struct store *s, const char *name)
{
    AUTOERROR struct error *err = NULL;
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, &err);
    assert_non_null(t);
    assert_int_equal(store_exec(t, "INSERT INTO sites (id, name, created_at, updated_at) "
                                   "VALUES (?, ?, ?, ?)",
                                STORE_ARGS(SV_TEXT(id), SV_TEXT(name), SV_INT(1), SV_INT(2)),
                                &err), 1);
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
}

static void test_fresh(void **state)
{
    struct fixture *f = *state;
    AUTOSTORE struct store *s = open_db(f->db, 0);
    assert_true(store_schema_latest() >= 2);
    assert_int_equal(store_schema_version(s), store_schema_latest());
    assert_string_equal(store_backend_name(s), "sqlite");
    assert_int_equal(count(s, "SELECT COUNT(*) FROM schema_version"), store_schema_latest());
    /* Every inventory table of the issue exists. */
    static const char *const tables[] = {
        "sites", "clusters", "hosts", "datastores", "dvs", "portgroups", "vlan_pools",
        "security_groups", "templates", "vms", "disks", "snapshots", "tasks", "events",
        "users", "api_tokens", "join_tokens",
    };
    for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
        AUTOFREE char *sql = xasprintf("SELECT COUNT(*) FROM %s", tables[i]);
        assert_int_equal(count(s, sql), 0);
    }
    /* WAL journal. */
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(s, STORE_READ, &err);
    AUTOSTMT struct store_stmt *st = store_query(t, "PRAGMA journal_mode", STORE_NO_ARGS, &err);
    assert_non_null(st);
    assert_int_equal(store_step(st, &err), 1);
    assert_string_equal(store_col_text(st, 0), "wal");
}

static void test_upgrade_from_v1(void **state)
{
    struct fixture *f = *state;
    {
        AUTOSTORE struct store *s = open_db(f->db, 1);
        assert_int_equal(store_schema_version(s), 1);
        insert_site(s, "dc1");
        AUTOERROR struct error *err = NULL;
        AUTOTXN struct store_txn *t = store_begin(s, STORE_READ, &err);
        /* v2's table is not there yet. */
        assert_null(store_query(t, "SELECT COUNT(*) FROM join_tokens", STORE_NO_ARGS, &err));
        assert_non_null(err);
    }
    AUTOSTORE struct store *s = open_db(f->db, 0);
    assert_int_equal(store_schema_version(s), store_schema_latest());
    assert_int_equal(count(s, "SELECT COUNT(*) FROM sites WHERE name = 'dc1'"), 1);
    assert_int_equal(count(s, "SELECT COUNT(*) FROM join_tokens"), 0);
    assert_int_equal(count(s, "SELECT COUNT(*) FROM schema_version"), store_schema_latest());
}

static void test_reopen_idempotent(void **state)
{
    struct fixture *f = *state;
    {
        AUTOSTORE struct store *s = open_db(f->db, 0);
        insert_site(s, "dc1");
    }
    for (int i = 0; i < 3; i++) {
        AUTOSTORE struct store *s = open_db(f->db, 0);
        assert_int_equal(store_schema_version(s), store_schema_latest());
        assert_int_equal(count(s, "SELECT COUNT(*) FROM schema_version"),
                         store_schema_latest());
        assert_int_equal(count(s, "SELECT COUNT(*) FROM sites"), 1);
    }
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    {
        AUTOSTORE struct store *s = open_db(f->db, 0);
        AUTOERROR struct error *err = NULL;
        AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, &err);
        assert_int_equal(store_exec(t, "INSERT INTO schema_version VALUES (?, 'future', 0)",
                                    STORE_ARGS(SV_INT(store_schema_latest() + 1)), &err), 1);
        assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
    }
    AUTOERROR struct error *err = NULL;
    struct store_config cfg = { .url = f->db };
    assert_null(store_open(&cfg, &err));
    assert_non_null(err);
    assert_int_equal(err->code, ERR_UNSUPPORTED);
    assert_non_null(strstr(err->message, "newer"));
}

static void test_url_forms(void **state)
{
    struct fixture *f = *state;
    AUTOFREE char *url = xasprintf("sqlite:%s", f->db);
    AUTOSTORE struct store *s = open_db(url, 0);
    assert_true(file_exists(f->db));
    AUTOERROR struct error *err = NULL;
    struct store_config pg = { .url = "postgresql://localhost/strata" };
    assert_null(store_open(&pg, &err));
    assert_int_equal(err->code, ERR_UNSUPPORTED);
    error_free(steal_pointer(&err));
    struct store_config empty = { .url = "sqlite:" };
    assert_null(store_open(&empty, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(steal_pointer(&err));
    AUTOSTORE struct store *mem = open_db(":memory:", 0);
    insert_site(mem, "x");
    assert_int_equal(count(mem, "SELECT COUNT(*) FROM sites"), 1);
}

static void test_rollback_and_autotxn(void **state)
{
    struct fixture *f = *state;
    AUTOSTORE struct store *s = open_db(f->db, 0);
    AUTOERROR struct error *err = NULL;
    {
        struct store_txn *t = store_begin(s, STORE_WRITE, &err);
        assert_int_equal(store_exec(t, "INSERT INTO sites (id, name, created_at, updated_at) "
                                       "VALUES ('a', 'a', 0, 0)", STORE_NO_ARGS, &err), 1);
        store_rollback(t);
    }
    {
        AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, &err);
        assert_int_equal(store_exec(t, "INSERT INTO sites (id, name, created_at, updated_at) "
                                       "VALUES ('b', 'b', 0, 0)", STORE_NO_ARGS, &err), 1);
        /* leaves scope without commit */
    }
    assert_int_equal(count(s, "SELECT COUNT(*) FROM sites"), 0);
    store_rollback(NULL);
}

static void test_values_and_errors(void **state)
{
    struct fixture *f = *state;
    AUTOSTORE struct store *s = open_db(f->db, 0);
    insert_site(s, "dc1");
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, &err);

    /* Values are bound, never spliced: a quote is just a character. */
    const char *evil = "x'); DROP TABLE sites; --";
    assert_int_equal(store_exec(t, "INSERT INTO sites (id, name, description, created_at, "
                                   "updated_at) VALUES (?, ?, ?, ?, ?)",
                                STORE_ARGS(SV_TEXT("id2"), SV_TEXT(evil), SV_TEXT("d"), SV_INT(INT64_MAX),
                                           SV_INT(-5)), &err), 1);
    AUTOSTMT struct store_stmt *st = store_query(t, "SELECT name, created_at, updated_at, "
                                                    "NULL AS empty_col FROM sites WHERE id = ?",
                                                 STORE_ARGS(SV_TEXT("id2")), &err);
    assert_non_null(st);
    assert_int_equal(store_columns(st), 4);
    assert_int_equal(store_step(st, &err), 1);
    assert_string_equal(store_col_text(st, 0), evil);
    assert_true(store_col_int(st, 1) == INT64_MAX);
    assert_int_equal(store_col_int(st, 2), -5);
    assert_true(store_col_is_null(st, 3));
    assert_null(store_col_text(st, 3));
    assert_string_equal(store_col_name(st, 3), "empty_col");
    assert_int_equal(store_step(st, &err), 0);

    /* Unique violation: conflict. */
    assert_int_equal(store_exec(t, "INSERT INTO sites (id, name, created_at, updated_at) "
                                   "VALUES ('id3', 'dc1', 0, 0)", STORE_NO_ARGS, &err), -1);
    assert_int_equal(err->code, ERR_CONFLICT);
    error_free(steal_pointer(&err));
    /* Foreign key to nothing: conflict. */
    assert_int_equal(store_exec(t, "INSERT INTO clusters (id, site_id, name, created_at, "
                                   "updated_at) VALUES ('c', 'no-such-site', 'c', 0, 0)",
                                STORE_NO_ARGS, &err), -1);
    assert_int_equal(err->code, ERR_CONFLICT);
    error_free(steal_pointer(&err));
    /* CHECK violation: invalid argument. */
    assert_int_equal(store_exec(t, "INSERT INTO users (id, name, role, password_hash, "
                                   "created_at, updated_at) VALUES ('u', 'u', 'god', 'x', 0, 0)",
                                STORE_NO_ARGS, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(steal_pointer(&err));
    /* Bad SQL, two statements. */
    assert_null(store_query(t, "SELEKT 1", STORE_NO_ARGS, &err));
    assert_non_null(err);
    error_free(steal_pointer(&err));
    assert_null(store_query(t, "SELECT 1; SELECT 2", STORE_NO_ARGS, &err));
    assert_int_equal(err->code, ERR_INTERNAL);
    error_free(steal_pointer(&err));
    /* A referenced site cannot go. */
    assert_int_equal(store_exec(t, "INSERT INTO clusters (id, site_id, name, created_at, "
                                   "updated_at) VALUES ('c', 'id2', 'c', 0, 0)",
                                STORE_NO_ARGS, &err), 1);
    assert_int_equal(store_exec(t, "DELETE FROM sites WHERE id = 'id2'", STORE_NO_ARGS, &err),
                     -1);
    assert_int_equal(err->code, ERR_CONFLICT);
    error_free(steal_pointer(&err));
    /* Changes count. */
    assert_int_equal(store_exec(t, "UPDATE sites SET description = ?",
                                STORE_ARGS(SV_TEXT("z")), &err), 2);
    int64_t v = 7;
    assert_int_equal(store_query_int(t, "SELECT 1 FROM sites WHERE 0", STORE_NO_ARGS, &v, &err),
                     0);
    assert_int_equal(v, 7);
}

static void test_sequences(void **state)
{
    struct fixture *f = *state;
    AUTOSTORE struct store *s = open_db(f->db, 0);
    AUTOERROR struct error *err = NULL;
    {
        AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, &err);
        assert_int_equal(store_next_seq(t, "events", &err), 1);
        assert_int_equal(store_next_seq(t, "events", &err), 2);
        assert_int_equal(store_next_seq(t, "other", &err), 1);
        assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
    }
    {
        AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, &err);
        assert_int_equal(store_next_seq(t, "events", &err), 3);
        /* rolled back: 3 is handed out again */
    }
    AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, &err);
    assert_int_equal(store_next_seq(t, "events", &err), 3);
    AUTOTXN struct store_txn *r = NULL;
    store_rollback(steal_pointer(&t));
    r = store_begin(s, STORE_READ, &err);
    assert_int_equal(store_next_seq(r, "events", &err), -1);
    assert_int_equal(err->code, ERR_INTERNAL);
}

/* Threads hammer a pool of two connections with write transactions; every
 * increment must land exactly once. */
struct worker {
    struct store *s;
    int n;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        struct error *err = NULL;
        struct store_txn *t = store_begin(w->s, i % 3 ? STORE_WRITE : STORE_READ, &err);
        if (!t) {
            error_free(err);
            return (void *) 1;
        }
        if (i % 3) {
            if (store_next_seq(t, "hits", &err) < 0 || store_commit(t, &err) < 0) {
                error_free(err);
                return (void *) 1;
            }
        } else {
            int64_t v;
            if (store_query_int(t, "SELECT COUNT(*) FROM sequences", STORE_NO_ARGS, &v,
                                &err) < 0) {
                error_free(err);
                store_rollback(t);
                return (void *) 1;
            }
            store_rollback(t);
        }
    }
    return NULL;
}

static void test_pool_threads(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    struct store_config cfg = { .url = f->db, .pool_size = 2 };
    AUTOSTORE struct store *s = store_open(&cfg, &err);
    assert_non_null(s);
    enum { THREADS = 6, N = 30 };
    pthread_t th[THREADS];
    struct worker w = { s, N };
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w), 0);
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    int writes = 0;
    for (int i = 0; i < N; i++)
        writes += (i % 3) != 0;
    assert_int_equal(count(s, "SELECT value FROM sequences WHERE name = 'hits'"),
                     THREADS * writes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_and_autotxn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
