/* auth.c - see auth.h: roles, PBKDF2 password hashes, bearer tokens, and
 * the users/api_tokens rows behind them.
 *
 * Crypto comes from GnuTLS only: gnutls_pbkdf2 (PBKDF2-HMAC-SHA256),
 * gnutls_rnd(GNUTLS_RND_KEY) for salts and tokens, gnutls_hash_fast (SHA-256)
 * for stored token hashes, gnutls_memcmp for constant-time comparison.
 *
 * Neighbours: store.c (transactions), inventory.c (name rules), api_auth.c
 * (the REST routes for sessions, users and tokens). */
#define LOG_MODULE "auth"
#include "manager/auth.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/inventory.h"
#include "util/log.h"
#include "util/mem.h"

#define SALT_LEN 16
#define HASH_LEN 32
#define TOKEN_BYTES 32
#define HASH_SCHEME "pbkdf2-sha256"
/* last_used_at is refreshed at most this often (it costs a write). */
#define LAST_USED_GRANULARITY_MS (60 * 1000)

static const char *const role_names[] = {
    [ROLE_NONE] = "none",
    [ROLE_VIEWER] = "viewer",
    [ROLE_OPERATOR] = "operator",
    [ROLE_ADMINISTRATOR] = "administrator",
};

const char *role_to_string(enum role r)
{
    return (size_t) r < ARRAY_SIZE(role_names) ? role_names[r] : "none";
}

int role_from_string(const char *s)
{
    for (size_t i = ROLE_VIEWER; s && i < ARRAY_SIZE(role_names); i++)
        if (!strcmp(s, role_names[i]))
            return (int) i;
    return -1;
}

const char *token_kind_to_string(enum token_kind k)
{
    return k == TOKEN_SESSION ? "session" : "api";
}

/* ---- pure helpers ------------------------------------------------------- */

bool auth_memeq(const void *a, const void *b, size_t n)
{
    return gnutls_memcmp(a, b, n) == 0;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes exactly 'n' bytes of lowercase hex from 'in' (which must be 2n
 * characters long). */
static bool hex_decode(const char *in, size_t in_len, unsigned char *out, size_t n)
{
    if (in_len != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char) (hi << 4 | lo);
    }
    return true;
}

static void random_bytes(void *buf, size_t n)
{
    if (gnutls_rnd(GNUTLS_RND_KEY, buf, n) < 0) {
        LOG_ERROR("gnutls_rnd failed");
        abort();                /* no randomness: nothing safe to do */
    }
}

int auth_password_check(const char *pw, const char *field, struct error **errp)
{
    size_t n = pw ? strlen(pw) : 0;
    if (n < AUTH_PASSWORD_MIN)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "password must have at least %d characters", AUTH_PASSWORD_MIN);
    if (n > AUTH_PASSWORD_MAX)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "password must have at most %d characters", AUTH_PASSWORD_MAX);
    for (const char *p = pw; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "password must not contain control characters");
    return 0;
}

static int pbkdf2(const char *pw, const unsigned char *salt, unsigned iterations,
                  unsigned char out[HASH_LEN])
{
    gnutls_datum_t key = { (unsigned char *) pw, (unsigned) strlen(pw) };
    gnutls_datum_t s = { (unsigned char *) salt, SALT_LEN };
    return gnutls_pbkdf2(GNUTLS_MAC_SHA256, &key, &s, iterations, out, HASH_LEN);
}

char *auth_password_hash(const char *pw, unsigned iterations, struct error **errp)
{
    if (!iterations)
        iterations = AUTH_PBKDF2_ITERATIONS;
    if (iterations < AUTH_MIN_ITERATIONS)
        return error_set(errp, ERR_INVALID_ARG, "PBKDF2 needs at least %d iterations",
                         AUTH_MIN_ITERATIONS), NULL;
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    random_bytes(salt, sizeof salt);
    int r = pbkdf2(pw, salt, iterations, hash);
    if (r < 0)
        return error_set(errp, ERR_INTERNAL, "gnutls_pbkdf2: %s", gnutls_strerror(r)), NULL;
    char salt_hex[2 * SALT_LEN + 1], hash_hex[2 * HASH_LEN + 1];
    hex_encode(salt, sizeof salt, salt_hex);
    hex_encode(hash, sizeof hash, hash_hex);
    explicit_bzero(hash, sizeof hash);
    return xasprintf(HASH_SCHEME "$%u$%s$%s", iterations, salt_hex, hash_hex);
}

bool auth_password_verify(const char *pw, const char *encoded)
{
    if (!pw || !encoded)
        return false;
    size_t sl = strlen(HASH_SCHEME);
    if (strncmp(encoded, HASH_SCHEME "$", sl + 1) != 0)
        return false;
    const char *p = encoded + sl + 1;
    char *end = NULL;
    unsigned long iterations = strtoul(p, &end, 10);
    if (end == p || *end != '$' || iterations < AUTH_MIN_ITERATIONS || iterations > 100000000)
        return false;
    const char *salt_hex = end + 1;
    const char *dollar = strchr(salt_hex, '$');
    if (!dollar)
        return false;
    const char *hash_hex = dollar + 1;
    unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
    if (!hex_decode(salt_hex, (size_t) (dollar - salt_hex), salt, SALT_LEN) ||
        !hex_decode(hash_hex, strlen(hash_hex), want, HASH_LEN))
        return false;
    if (pbkdf2(pw, salt, (unsigned) iterations, got) < 0)
        return false;
    bool ok = auth_memeq(got, want, HASH_LEN);
    explicit_bzero(got, sizeof got);
    return ok;
}

char *auth_token_generate(void)
{
    unsigned char b[TOKEN_BYTES];
    random_bytes(b, sizeof b);
    char *tok = xmalloc(AUTH_TOKEN_LEN + 1);
    memcpy(tok, AUTH_TOKEN_PREFIX, 4);
    hex_encode(b, sizeof b, tok + 4);
    explicit_bzero(b, sizeof b);
    return tok;
}

bool auth_token_is_valid(const char *s)
{
    if (!s || strlen(s) != AUTH_TOKEN_LEN || strncmp(s, AUTH_TOKEN_PREFIX, 4) != 0)
        return false;
    for (const char *p = s + 4; *p; p++)
        if (hex_value(*p) < 0)
            return false;
    return true;
}

void auth_token_hash(const char *token, char out[65])
{
    unsigned char d[32];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, token, strlen(token), d) < 0)
        abort();
    hex_encode(d, sizeof d, out);
}

/* A hash to verify against when the user does not exist, so a login for an
 * unknown name costs the same as one for a known name. */
static char *dummy_hash;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void dummy_init(void)
{
    dummy_hash = auth_password_hash("strata-no-such-user", 0, NULL);
}

/* ---- users and tokens ---------------------------------------------------- */

int auth_user_create(struct store_txn *t, const char *name, const char *password,
                     enum role role, char id_out[UUID_STRLEN + 1], struct error **errp)
{
    if (auth_password_check(password, "password", errp) < 0)
        return -1;
    AUTOFREE char *hash = auth_password_hash(password, 0, errp);
    if (!hash)
        return -1;
    return auth_user_insert(t, name, hash, role, id_out, errp);
}

int auth_user_insert(struct store_txn *t, const char *name, const char *hash,
                     enum role role, char id_out[UUID_STRLEN + 1], struct error **errp)
{
    if (inv_name_validate(name, "name", errp) < 0)
        return -1;
    if (role < ROLE_VIEWER || role > ROLE_ADMINISTRATOR)
        return error_set_field(errp, ERR_INVALID_ARG, "role", "invalid role");
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    int64_t now = store_now_ms();
    int64_t r = store_exec(t,
                           "INSERT INTO users (id, name, role, password_hash, enabled, "
                           "created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?) "
                           "ON CONFLICT (name) DO NOTHING",
                           STORE_ARGS(SV_TEXT(id), SV_TEXT(name), SV_TEXT(role_to_string(role)),
                                      SV_TEXT(hash), SV_INT(now), SV_INT(now)),
                           errp);
    if (r < 0)
        return -1;
    if (r == 0)
        return error_set_field(errp, ERR_CONFLICT, "name", "user '%s' already exists", name);
    if (id_out)
        memcpy(id_out, id, sizeof id);
    return 0;
}

char *auth_token_create(struct store_txn *t, const char *user_id, enum token_kind kind,
                        const char *name, int64_t expires_at, char id_out[UUID_STRLEN + 1],
                        struct error **errp)
{
    AUTOFREE char *tok = auth_token_generate();
    char hash[65], id[UUID_STRLEN + 1];
    auth_token_hash(tok, hash);
    uuid_generate(id);
    if (store_exec(t,
                   "INSERT INTO api_tokens (id, user_id, kind, name, token_hash, created_at, "
                   "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   STORE_ARGS(SV_TEXT(id), SV_TEXT(user_id), SV_TEXT(token_kind_to_string(kind)),
                              SV_TEXT(name ? name : ""), SV_TEXT(hash),
                              SV_INT(store_now_ms()),
                              expires_at ? SV_INT(expires_at) : SV_NULL),
                   errp) < 0)
        return NULL;
    if (id_out)
        memcpy(id_out, id, sizeof id);
    return steal_pointer(&tok);
}

static void identity_fill(struct auth_identity *who, const char *id, const char *name,
                          const char *role)
{
    memset(who, 0, sizeof *who);
    snprintf(who->user_id, sizeof who->user_id, "%s", id);
    snprintf(who->user_name, sizeof who->user_name, "%s", name);
    int r = role_from_string(role);
    who->role = r < 0 ? ROLE_NONE : (enum role) r;
}

char *auth_login(struct store *s, const char *name, const char *password, int64_t ttl_ms,
                 struct auth_identity *who, int64_t *expires_at, struct error **errp)
{
    pthread_once(&dummy_once, dummy_init);
    char id[UUID_STRLEN + 1] = "";
    AUTOFREE char *hash = NULL, *role = NULL;
    bool enabled = false;
    {
        AUTOTXN struct store_txn *t = store_begin(s, STORE_READ, errp);
        if (!t)
            return NULL;
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT id, password_hash, role, enabled FROM users WHERE name = ?",
            STORE_ARGS(SV_TEXT(name ? name : "")), errp);
        if (!st)
            return NULL;
        int r = store_step(st, errp);
        if (r < 0)
            return NULL;
        if (r > 0) {
            snprintf(id, sizeof id, "%s", store_col_text(st, 0));
            hash = xstrdup(store_col_text(st, 1));
            role = xstrdup(store_col_text(st, 2));
            enabled = store_col_int(st, 3) != 0;
        }
    }
    /* Hashing happens outside the transaction: it is slow on purpose. */
    bool ok = auth_password_verify(password ? password : "", hash ? hash : dummy_hash);
    if (!ok || !hash || !enabled)
        return error_set(errp, ERR_UNAUTHORIZED, "invalid user name or password"), NULL;

    int64_t exp = store_now_ms() + (ttl_ms > 0 ? ttl_ms : AUTH_SESSION_TTL_MS);
    AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, errp);
    char tok_id[UUID_STRLEN + 1];
    AUTOFREE char *tok = t ? auth_token_create(t, id, TOKEN_SESSION, "login", exp, tok_id, errp)
                           : NULL;
    if (!tok)
        return NULL;
    /* Expired sessions are swept as new ones are made. */
    if (store_exec(t, "DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < ?",
                   STORE_ARGS(SV_INT(store_now_ms())), errp) < 0 ||
        store_commit(steal_pointer(&t), errp) < 0)
        return NULL;
    if (who) {
        identity_fill(who, id, name, role);
        memcpy(who->token_id, tok_id, sizeof tok_id);
        who->token_kind = TOKEN_SESSION;
    }
    if (expires_at)
        *expires_at = exp;
    return steal_pointer(&tok);
}

int auth_authenticate(struct store *s, const char *authorization, struct auth_identity *who,
                      struct error **errp)
{
    if (!authorization || !*authorization)
        return error_set(errp, ERR_UNAUTHORIZED,
                         "authentication required: send 'Authorization: Bearer <token>'");
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return error_set(errp, ERR_UNAUTHORIZED,
                         "unsupported authorization scheme: use 'Bearer <token>'");
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    if (!auth_token_is_valid(tok))
        return error_set(errp, ERR_UNAUTHORIZED, "malformed bearer token");
    char hash[65];
    auth_token_hash(tok, hash);

    int64_t now = store_now_ms(), last_used = 0;
    bool touch = false;
    {
        AUTOTXN struct store_txn *t = store_begin(s, STORE_READ, errp);
        if (!t)
            return -1;
        AUTOSTMT struct store_stmt *st = store_query(
            t,
            "SELECT t.id, t.kind, t.expires_at, t.last_used_at, u.id, u.name, u.role, "
            "u.enabled FROM api_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.token_hash = ?",
            STORE_ARGS(SV_TEXT(hash)), errp);
        if (!st)
            return -1;
        int r = store_step(st, errp);
        if (r < 0)
            return -1;
        if (r == 0)
            return error_set(errp, ERR_UNAUTHORIZED, "unknown or revoked token");
        if (!store_col_is_null(st, 2) && store_col_int(st, 2) <= now)
            return error_set(errp, ERR_UNAUTHORIZED, "token has expired");
        if (!store_col_int(st, 7))
            return error_set(errp, ERR_UNAUTHORIZED, "user '%s' is disabled",
                             store_col_text(st, 5));
        identity_fill(who, store_col_text(st, 4), store_col_text(st, 5),
                      store_col_text(st, 6));
        snprintf(who->token_id, sizeof who->token_id, "%s", store_col_text(st, 0));
        who->token_kind = !strcmp(store_col_text(st, 1), "session") ? TOKEN_SESSION : TOKEN_API;
        last_used = store_col_int(st, 3);
        touch = store_col_is_null(st, 3) || now - last_used >= LAST_USED_GRANULARITY_MS;
    }
    if (who->role == ROLE_NONE)
        return error_set(errp, ERR_UNAUTHORIZED, "user '%s' has no valid role",
                         who->user_name);
    if (touch) {
        /* Best effort: a busy store must not fail the request. */
        struct error *e = NULL;
        struct store_txn *t = store_begin(s, STORE_WRITE, &e);
        if (t && store_exec(t, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                            STORE_ARGS(SV_INT(now), SV_TEXT(who->token_id)), &e) >= 0)
            store_commit(t, &e);
        else
            store_rollback(t);
        if (e)
            LOG_RL_WARN("cannot record token use: %s", e->message);
        error_free(e);
    }
    return 0;
}

int auth_token_revoke(struct store_txn *t, const char *token_id, const char *user_id,
                      struct error **errp)
{
    int64_t r = user_id
        ? store_exec(t, "DELETE FROM api_tokens WHERE id = ? AND user_id = ?",
                     STORE_ARGS(SV_TEXT(token_id), SV_TEXT(user_id)), errp)
        : store_exec(t, "DELETE FROM api_tokens WHERE id = ?", STORE_ARGS(SV_TEXT(token_id)),
                     errp);
    if (r < 0)
        return -1;
    if (r == 0)
        return error_set(errp, ERR_NOT_FOUND, "no token '%s'", token_id);
    return 0;
}

int64_t auth_count_admins(struct store_txn *t, const char *except_id, struct error **errp)
{
    int64_t n = 0;
    if (store_query_int(t,
                        "SELECT COUNT(*) FROM users WHERE role = 'administrator' AND enabled = 1 "
                        "AND id <> ?",
                        STORE_ARGS(SV_TEXT(except_id ? except_id : "")), &n, errp) < 0)
        return -1;
    return n;
}

int auth_bootstrap_admin(struct store *s, const char *password, bool *created,
                         struct error **errp)
{
    if (created)
        *created = false;
    AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, errp);
    if (!t)
        return -1;
    int64_t n = 0;
    if (store_query_int(t, "SELECT COUNT(*) FROM users", STORE_NO_ARGS, &n, errp) < 0)
        return -1;
    if (n > 0)
        return 0;
    if (!password)
        return error_set(errp, ERR_INVALID_ARG,
                         "the store has no user yet: give the first administrator's password "
                         "with --admin-password-file or STRATA_ADMIN_PASSWORD");
    if (auth_password_check(password, NULL, errp) < 0) {
        error_prefix(errp, "first administrator");
        return -1;
    }
    if (auth_user_create(t, AUTH_ADMIN_NAME, password, ROLE_ADMINISTRATOR, NULL, errp) < 0 ||
        store_commit(steal_pointer(&t), errp) < 0)
        return -1;
    LOG_INFO("created the first administrator '%s'", AUTH_ADMIN_NAME);
    if (created)
        *created = true;
    return 0;
}
