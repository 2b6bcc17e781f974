/* test_auth.c - password hashes, tokens, login, authentication and the first
 * administrator, against a store in a temporary directory.
 *
 * The hash cases pin the encoding (scheme, iteration count >= 100k, 16-byte
 * salt, 32-byte hash), check that salts differ, that a tampered or weak
 * encoding never verifies, and the RFC 7914 PBKDF2-HMAC-SHA256 test vector
 * (so the construction is the standard one).  The token cases cover
 * expiry, revocation, disabled users, role changes and malformed headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gnutls/crypto.h>

#include "manager/auth.h"
#include "manager/manager.h"
#include "manager/tasks.h"
#include "util/fileutil.h"
#include "util/mem.h"

struct fixture {
    char *dir;
    struct store *store;
};

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof *f);
    char tmpl[] = "/tmp/strata-auth-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    AUTOFREE char *db = xasprintf("%s/m.db", f->dir);
    struct store_config cfg = { .url = db };
    struct error *err = NULL;
    f->store = store_open(&cfg, &err);
    assert_non_null(f->store);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->store);
    rm_rf(f->dir, NULL);
    free(f->dir);
    free(f);
    return 0;
}

static void test_roles(void **state)
{
    (void) state;
    assert_string_equal(role_to_string(ROLE_ADMINISTRATOR), "administrator");
    assert_int_equal(role_from_string("operator"), ROLE_OPERATOR);
    assert_int_equal(role_from_string("viewer"), ROLE_VIEWER);
    assert_int_equal(role_from_string("none"), -1);
    assert_int_equal(role_from_string("root"), -1);
    assert_int_equal(role_from_string(NULL), -1);
    assert_true(ROLE_VIEWER < ROLE_OPERATOR && ROLE_OPERATOR < ROLE_ADMINISTRATOR);
}

static void test_pbkdf2_vector(void **state)
{
    (void) state;
    /* RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64). */
    static const unsigned char want[16] = {
        0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f,
        0xec, 0x16, 0x91, 0xc2, 0x25, 0x44, 0xb6, 0x05,
    };
    unsigned char out[64];
    gnutls_datum_t key = { (unsigned char *) "passwd", 6 };
    gnutls_datum_t salt = { (unsigned char *) "salt", 4 };
    assert_int_equal(gnutls_pbkdf2(GNUTLS_MAC_SHA256, &key, &salt, 1, out, sizeof out), 0);
    assert_memory_equal(out, want, sizeof want);
}

static void test_password_hash(void **state)
{
    (void) state;
    AUTOERROR struct error *err = NULL;
    AUTOFREE char *h1 = auth_password_hash("correct horse", 0, &err);
    AUTOFREE char *h2 = auth_password_hash("correct horse", 0, &err);
    assert_non_null(h1);
    assert_non_null(h2);
    /* pbkdf2-sha256$200000$<32 hex>$<64 hex> */
    unsigned iter = 0;
    char salt[64], hash[128];
    assert_int_equal(sscanf(h1, "pbkdf2-sha256$%u$%63[0-9a-f]$%127[0-9a-f]", &iter, salt, hash),
                     3);
    assert_true(iter >= 100000);
    assert_int_equal(iter, AUTH_PBKDF2_ITERATIONS);
    assert_int_equal(strlen(salt), 32);
    assert_int_equal(strlen(hash), 64);
    assert_string_not_equal(h1, h2);            /* per-hash random salt */
    assert_true(auth_password_verify("correct horse", h1));
    assert_true(auth_password_verify("correct horse", h2));
    assert_false(auth_password_verify("correct hors", h1));
    assert_false(auth_password_verify("correct horsE", h1));
    assert_false(auth_password_verify("", h1));
    assert_false(auth_password_verify(NULL, h1));

    /* Tampering: hash, salt, iterations, scheme, truncation. */
    AUTOFREE char *t = xstrdup(h1);
    t[strlen(t) - 1] = t[strlen(t) - 1] == '0' ? '1' : '0';
    assert_false(auth_password_verify("correct horse", t));
    char *p = strchr(strchr(strchr(t, '$') + 1, '$') + 1, '$');
    AUTOFREE char *weak = xasprintf("pbkdf2-sha256$1000$%s", strchr(strchr(h1, '$') + 1, '$') + 1);
    assert_false(auth_password_verify("correct horse", weak));
    *p = '\0';
    assert_false(auth_password_verify("correct horse", t));
    assert_false(auth_password_verify("correct horse", "plain"));
    assert_false(auth_password_verify("correct horse", "pbkdf2-sha256$200000$zz$zz"));
    assert_false(auth_password_verify("correct horse", NULL));
    AUTOFREE char *md5ish = xasprintf("pbkdf2-sha1%s", strchr(h1, '$'));
    assert_false(auth_password_verify("correct horse", md5ish));

    /* Too few iterations are refused when hashing. */
    assert_null(auth_password_hash("x", 1000, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
}

static void test_password_policy(void **state)
{
    (void) state;
    AUTOERROR struct error *err = NULL;
    assert_int_equal(auth_password_check("12345678", "password", &err), 0);
    assert_int_equal(auth_password_check("1234567", "password", &err), -1);
    assert_string_equal(err->field, "password");
    error_free(steal_pointer(&err));
    assert_int_equal(auth_password_check("abc\ndefgh", "password", &err), -1);
    error_free(steal_pointer(&err));
    assert_int_equal(auth_password_check(NULL, "password", &err), -1);
    error_free(steal_pointer(&err));
    AUTOFREE char *big = xzalloc(AUTH_PASSWORD_MAX + 2);
    memset(big, 'a', AUTH_PASSWORD_MAX + 1);
    assert_int_equal(auth_password_check(big, "password", &err), -1);
}

static void test_tokens_shape(void **state)
{
    (void) state;
    AUTOFREE char *a = auth_token_generate();
    AUTOFREE char *b = auth_token_generate();
    assert_int_equal(strlen(a), AUTH_TOKEN_LEN);
    assert_true(!strncmp(a, "stk_", 4));
    assert_true(auth_token_is_valid(a));
    assert_string_not_equal(a, b);
    char ha[65], hb[65], ha2[65];
    auth_token_hash(a, ha);
    auth_token_hash(b, hb);
    auth_token_hash(a, ha2);
    assert_string_equal(ha, ha2);
    assert_string_not_equal(ha, hb);
    assert_int_equal(strlen(ha), 64);
    assert_false(auth_token_is_valid("stk_xyz"));
    assert_false(auth_token_is_valid(NULL));
    AUTOFREE char *upper = xstrdup(a);
    upper[10] = 'G';
    assert_false(auth_token_is_valid(upper));
    assert_true(auth_memeq("abc", "abc", 3));
    assert_false(auth_memeq("abc", "abd", 3));
}

static void make_user(struct store *s, const char *name, const char *pw, enum role role,
                      char id[UUID_STRLEN + 1])
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, &err);
    assert_int_equal(auth_user_create(t, name, pw, role, id, &err), 0);
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
}

static void exec1(struct store *s, const char *sql, const char *arg)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, &err);
    assert_true(store_exec(t, sql, STORE_ARGS(SV_TEXT(arg)), &err) >= 0);
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
}

static void test_login_and_authenticate(void **state)
{
    struct fixture *f = *state;
    char id[UUID_STRLEN + 1];
    make_user(f->store, "alice", "alice-password", ROLE_OPERATOR, id);
    AUTOERROR struct error *err = NULL;

    /* Duplicate name and bad names. */
    {
        AUTOTXN struct store_txn *t = store_begin(f->store, STORE_WRITE, &err);
        assert_int_equal(auth_user_create(t, "alice", "whatever-pw", ROLE_VIEWER, NULL, &err),
                         -1);
        assert_int_equal(err->code, ERR_CONFLICT);
        error_free(steal_pointer(&err));
        assert_int_equal(auth_user_create(t, "bad name", "whatever-pw", ROLE_VIEWER, NULL,
                                          &err), -1);
        assert_int_equal(err->code, ERR_INVALID_ARG);
        error_free(steal_pointer(&err));
    }

    struct auth_identity who;
    int64_t exp = 0;
    AUTOFREE char *tok = auth_login(f->store, "alice", "alice-password", 0, &who, &exp, &err);
    assert_non_null(tok);
    assert_string_equal(who.user_name, "alice");
    assert_string_equal(who.user_id, id);
    assert_int_equal(who.role, ROLE_OPERATOR);
    assert_int_equal(who.token_kind, TOKEN_SESSION);
    assert_true(exp > store_now_ms() + AUTH_SESSION_TTL_MS - 60000);

    /* The store holds only the hash. */
    char hash[65];
    auth_token_hash(tok, hash);
    {
        AUTOTXN struct store_txn *t = store_begin(f->store, STORE_READ, &err);
        int64_t n = 0;
        assert_int_equal(store_query_int(t, "SELECT COUNT(*) FROM api_tokens WHERE token_hash = ?",
                                         STORE_ARGS(SV_TEXT(hash)), &n, &err), 1);
        assert_int_equal(n, 1);
        assert_int_equal(store_query_int(t, "SELECT COUNT(*) FROM api_tokens WHERE token_hash = ?",
                                         STORE_ARGS(SV_TEXT(tok)), &n, &err), 1);
        assert_int_equal(n, 0);
    }

    AUTOFREE char *hdr = xasprintf("Bearer %s", tok);
    struct auth_identity w2;
    assert_int_equal(auth_authenticate(f->store, hdr, &w2, &err), 0);
    assert_string_equal(w2.user_name, "alice");
    assert_int_equal(w2.role, ROLE_OPERATOR);
    AUTOFREE char *lower = xasprintf("bearer %s", tok);
    assert_int_equal(auth_authenticate(f->store, lower, &w2, &err), 0);

    /* Wrong password, unknown user: the same error. */
    assert_null(auth_login(f->store, "alice", "wrong-password", 0, NULL, NULL, &err));
    assert_int_equal(err->code, ERR_UNAUTHORIZED);
    AUTOFREE char *msg1 = xstrdup(err->message);
    error_free(steal_pointer(&err));
    assert_null(auth_login(f->store, "mallory", "alice-password", 0, NULL, NULL, &err));
    assert_int_equal(err->code, ERR_UNAUTHORIZED);
    assert_string_equal(err->message, msg1);
    error_free(steal_pointer(&err));

    /* Malformed headers. */
    static const char *const bad[] = {
        NULL, "", "Basic YWxpY2U6eA==", "Bearer", "Bearer ", "Bearer stk_123",
        "Bearer stk_0000000000000000000000000000000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(auth_authenticate(f->store, bad[i], &w2, &err), -1);
        assert_int_equal(err->code, ERR_UNAUTHORIZED);
        error_free(steal_pointer(&err));
    }

    /* Role change applies at once. */
    exec1(f->store, "UPDATE users SET role = 'viewer' WHERE id = ?", id);
    assert_int_equal(auth_authenticate(f->store, hdr, &w2, &err), 0);
    assert_int_equal(w2.role, ROLE_VIEWER);

    /* Disabled user: refused, and cannot log in. */
    exec1(f->store, "UPDATE users SET enabled = 0 WHERE id = ?", id);
    assert_int_equal(auth_authenticate(f->store, hdr, &w2, &err), -1);
    assert_int_equal(err->code, ERR_UNAUTHORIZED);
    error_free(steal_pointer(&err));
    assert_null(auth_login(f->store, "alice", "alice-password", 0, NULL, NULL, &err));
    error_free(steal_pointer(&err));
    exec1(f->store, "UPDATE users SET enabled = 1 WHERE id = ?", id);

    /* Expired. */
    exec1(f->store, "UPDATE api_tokens SET expires_at = 1 WHERE id = ?", who.token_id);
    assert_int_equal(auth_authenticate(f->store, hdr, &w2, &err), -1);
    assert_int_equal(err->code, ERR_UNAUTHORIZED);
    assert_non_null(strstr(err->message, "expired"));
    error_free(steal_pointer(&err));

    /* API token: no expiry; revoked. */
    char tid[UUID_STRLEN + 1];
    AUTOFREE char *api = NULL;
    {
        AUTOTXN struct store_txn *t = store_begin(f->store, STORE_WRITE, &err);
        api = auth_token_create(t, id, TOKEN_API, "ci", 0, tid, &err);
        assert_non_null(api);
        assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
    }
    AUTOFREE char *hdr2 = xasprintf("Bearer %s", api);
    assert_int_equal(auth_authenticate(f->store, hdr2, &w2, &err), 0);
    assert_int_equal(w2.token_kind, TOKEN_API);
    assert_string_equal(w2.token_id, tid);
    {
        AUTOTXN struct store_txn *t = store_begin(f->store, STORE_WRITE, &err);
        char other[UUID_STRLEN + 1];
        uuid_generate(other);
        assert_int_equal(auth_token_revoke(t, tid, other, &err), -1);   /* not theirs */
        assert_int_equal(err->code, ERR_NOT_FOUND);
        error_free(steal_pointer(&err));
        assert_int_equal(auth_token_revoke(t, tid, id, &err), 0);
        assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
    }
    assert_int_equal(auth_authenticate(f->store, hdr2, &w2, &err), -1);
    assert_int_equal(err->code, ERR_UNAUTHORIZED);
    error_free(steal_pointer(&err));

    /* Deleting the user deletes its tokens. */
    AUTOFREE char *tok3 = auth_login(f->store, "alice", "alice-password", 0, NULL, NULL, &err);
    assert_non_null(tok3);
    exec1(f->store, "DELETE FROM users WHERE id = ?", id);
    AUTOFREE char *hdr3 = xasprintf("Bearer %s", tok3);
    assert_int_equal(auth_authenticate(f->store, hdr3, &w2, &err), -1);
    {
        AUTOTXN struct store_txn *t = store_begin(f->store, STORE_READ, &err);
        int64_t n = -1;
        assert_int_equal(store_query_int(t, "SELECT COUNT(*) FROM api_tokens", STORE_NO_ARGS,
                                         &n, &err), 1);
        assert_int_equal(n, 0);
    }
}

static void test_bootstrap(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    bool created = true;
    assert_int_equal(auth_bootstrap_admin(f->store, NULL, &created, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    assert_non_null(strstr(err->message, "STRATA_ADMIN_PASSWORD"));
    error_free(steal_pointer(&err));
    assert_int_equal(auth_bootstrap_admin(f->store, "short", &created, &err), -1);
    error_free(steal_pointer(&err));
    assert_int_equal(auth_bootstrap_admin(f->store, "first-admin-pw", &created, &err), 0);
    assert_true(created);
    assert_int_equal(auth_bootstrap_admin(f->store, "another-password", &created, &err), 0);
    assert_false(created);
    assert_int_equal(auth_bootstrap_admin(f->store, NULL, &created, &err), 0);
    struct auth_identity who;
    AUTOFREE char *tok = auth_login(f->store, "admin", "first-admin-pw", 0, &who, NULL, &err);
    assert_non_null(tok);
    assert_int_equal(who.role, ROLE_ADMINISTRATOR);
    AUTOTXN struct store_txn *t = store_begin(f->store, STORE_READ, &err);
    assert_int_equal(auth_count_admins(t, NULL, &err), 1);
    assert_int_equal(auth_count_admins(t, who.user_id, &err), 0);
}

/* Tasks share this fixture: creation, steps, end, and recovery. */
static void test_tasks(void **state)
{
    struct fixture *f = *state;
    AUTOERROR struct error *err = NULL;
    static const char *const steps[] = { "prepare", "copy", "start", NULL };
    char a[UUID_STRLEN + 1], b[UUID_STRLEN + 1], c[UUID_STRLEN + 1];
    {
        AUTOTXN struct store_txn *t = store_begin(f->store, STORE_WRITE, &err);
        assert_int_equal(task_create(t, "vm.create", "vm", "x", "alice", NULL, steps, a, &err),
                         0);
        assert_int_equal(task_create(t, "vm.start", "vm", "x", "alice", NULL, steps, b, &err),
                         0);
        assert_int_equal(task_create(t, "vm.stop", "vm", "x", NULL, NULL, NULL, c, &err), 0);
        assert_int_equal(task_step(t, a, 1, 40, &err), 0);
        assert_int_equal(task_step(t, a, 7, 40, &err), -1);
        error_free(steal_pointer(&err));
        assert_int_equal(task_step(t, b, 0, 5, &err), 0);
        assert_int_equal(task_finish(t, b, TASK_SUCCEEDED, NULL, NULL, &err), 0);
        assert_int_equal(task_finish(t, b, TASK_FAILED, NULL, NULL, &err), -1);
        assert_int_equal(err->code, ERR_BAD_STATE);
        error_free(steal_pointer(&err));
        assert_int_equal(task_finish(t, b, TASK_RUNNING, NULL, NULL, &err), -1);
        error_free(steal_pointer(&err));
        assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
    }
    /* 'a' is running at step 1, 'c' queued: a restart ends both failed. */
    assert_int_equal(tasks_recover(f->store, NULL, NULL, &err), 2);
    assert_int_equal(tasks_recover(f->store, NULL, NULL, &err), 0);
    AUTOTXN struct store_txn *t = store_begin(f->store, STORE_READ, &err);
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT state, steps, error, progress, finished_at FROM tasks WHERE id = ?",
        STORE_ARGS(SV_TEXT(a)), &err);
    assert_int_equal(store_step(st, &err), 1);
    assert_string_equal(store_col_text(st, 0), "failed");
    assert_string_equal(store_col_text(st, 1),
                        "[{\"name\":\"prepare\",\"state\":\"done\"},"
                        "{\"name\":\"copy\",\"state\":\"failed\"},"
                        "{\"name\":\"start\",\"state\":\"pending\"}]");
    assert_non_null(strstr(store_col_text(st, 2), "interrupted"));
    assert_int_equal(store_col_int(st, 3), 40);
    assert_false(store_col_is_null(st, 4));
    store_stmt_free(steal_pointer(&st));
    int64_t n = 0;
    assert_int_equal(store_query_int(t, "SELECT COUNT(*) FROM tasks WHERE state IN "
                                        "('queued', 'running')", STORE_NO_ARGS, &n, &err), 1);
    assert_int_equal(n, 0);
    assert_int_equal(store_query_int(t, "SELECT progress FROM tasks WHERE id = ?",
                                     STORE_ARGS(SV_TEXT(b)), &n, &err), 1);
    assert_int_equal(n, 100);
    /* Each state change is an event. */
    assert_int_equal(store_query_int(t, "SELECT COUNT(*) FROM events WHERE type = 'task.failed'",
                                     STORE_NO_ARGS, &n, &err), 1);
    assert_int_equal(n, 2);
    assert_int_equal(store_query_int(t, "SELECT COUNT(*) FROM events WHERE task_id = ?",
                                     STORE_ARGS(SV_TEXT(b)), &n, &err), 1);
    assert_int_equal(n, 3);   /* queued, running, succeeded */
}

/* manager_open() ends unfinished tasks of a previous run and refuses an
 * empty store without an administrator password. */
static void test_manager_open(void **state)
{
    struct fixture *f = *state;
    AUTOFREE char *db = xasprintf("%s/mgr.db", f->dir);
    AUTOERROR struct error *err = NULL;
    struct manager_config mc = { .db = db };
    assert_null(manager_open(&mc, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(steal_pointer(&err));
    mc.admin_password = "admin-password";
    struct manager *m = manager_open(&mc, &err);
    assert_non_null(m);
    char id[UUID_STRLEN + 1];
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, &err);
        assert_int_equal(task_create(t, "x", NULL, NULL, NULL, NULL, NULL, id, &err), 0);
        uint64_t g = manager_change_gen(m);
        assert_int_equal(manager_commit(m, steal_pointer(&t), &err), 0);
        assert_true(manager_change_gen(m) == g + 1);
        /* Already changed: no wait. */
        assert_true(manager_wait_change(m, g, store_now_ms() + 10000));
    }
    manager_close(m);
    mc.admin_password = NULL;       /* users exist now */
    m = manager_open(&mc, &err);
    assert_non_null(m);
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, &err);
    int64_t n = 0;
    assert_int_equal(store_query_int(t, "SELECT COUNT(*) FROM tasks WHERE state = 'failed'",
                                     STORE_NO_ARGS, &n, &err), 1);
    assert_int_equal(n, 1);
    store_rollback(steal_pointer(&t));
    manager_stop_waiters(m);
    assert_false(manager_wait_change(m, manager_change_gen(m), store_now_ms() + 10000));
    manager_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_pbkdf2_vector),
        cmocka_unit_test(test_password_hash),
        cmocka_unit_test(test_password_policy),
        cmocka_unit_test(test_tokens_shape),
        cmocka_unit_test_setup_teardown(test_login_and_authenticate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manager_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
