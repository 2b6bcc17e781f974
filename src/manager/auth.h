/* auth.h - users, roles, password hashes and bearer tokens of the manager.
 *
 * Roles, weakest first: viewer (reads everything but users), operator
 * (viewer + day-to-day operations), administrator (everything, users
 * included).  Each API route names the weakest role it admits (api.c).
 *
 * Passwords are stored as "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>":
 * PBKDF2-HMAC-SHA256 (GnuTLS) with a random 16-byte salt per hash and
 * AUTH_PBKDF2_ITERATIONS rounds; verification recomputes with the stored
 * parameters and compares in constant time.  A login for a user that does
 * not exist still pays for one hash, so timing does not tell names apart.
 *
 * Tokens are "stk_" followed by 64 hex digits (32 random bytes).  The store
 * keeps only their SHA-256 (a token has the entropy of a key, so a fast hash
 * is enough), with a kind: 'session' (made by login, expires) or 'api' (made
 * on request, optional expiry).  A token is refused once expired, once
 * revoked (row deleted), or when its user is disabled or deleted; the user's
 * current role is used, so a role change applies at once.
 *
 * Neighbours: store.h (tables users, api_tokens), api_auth.c (the REST
 * routes), manager.c (first administrator at start-up). */
#ifndef STRATA_MANAGER_AUTH_H
#define STRATA_MANAGER_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "manager/store.h"
#include "util/error.h"
#include "util/uuid.h"

#define AUTH_PBKDF2_ITERATIONS 200000
#define AUTH_MIN_ITERATIONS 100000
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024
#define AUTH_TOKEN_PREFIX "stk_"
#define AUTH_TOKEN_LEN (4 + 64)
#define AUTH_SESSION_TTL_MS ((int64_t) 12 * 3600 * 1000)
#define AUTH_ADMIN_NAME "admin"

enum role { ROLE_NONE, ROLE_VIEWER, ROLE_OPERATOR, ROLE_ADMINISTRATOR };

const char *role_to_string(enum role r);
int role_from_string(const char *s);        /* -1 if unknown (ROLE_NONE included) */

enum token_kind { TOKEN_SESSION, TOKEN_API };
const char *token_kind_to_string(enum token_kind k);

/* ---- pure helpers ------------------------------------------------------- */

/* Fails with ERR_INVALID_ARG (naming 'field') unless 'pw' has
 * AUTH_PASSWORD_MIN..AUTH_PASSWORD_MAX bytes and no control characters. */
int auth_password_check(const char *pw, const char *field, struct error **errp);
/* Returns a new encoded hash of 'pw' with 'iterations' rounds (at least
 * AUTH_MIN_ITERATIONS; 0 means AUTH_PBKDF2_ITERATIONS). */
char *auth_password_hash(const char *pw, unsigned iterations, struct error **errp);
/* True if 'pw' matches 'encoded'; false for a malformed or weak encoding. */
bool auth_password_verify(const char *pw, const char *encoded);
/* Returns a new random token. */
char *auth_token_generate(void);
/* True if 's' has the shape of a token. */
bool auth_token_is_valid(const char *s);
/* Writes the hex SHA-256 of 'token' to 'out'. */
void auth_token_hash(const char *token, char out[65]);
/* Constant-time comparison of two equal-length buffers. */
bool auth_memeq(const void *a, const void *b, size_t n);

/* ---- users and tokens in the store -------------------------------------- */

/* Who made a request: filled by auth_authenticate(). */
struct auth_identity {
    char user_id[UUID_STRLEN + 1];
    char user_name[128];
    enum role role;
    char token_id[UUID_STRLEN + 1];
    enum token_kind token_kind;
};

/* Creates a user inside 't' from a hash made by auth_password_hash() (hash
 * before beginning the transaction: it is slow on purpose); 'id_out'
 * (optional) receives its id.  ERR_CONFLICT if the name is taken. */
int auth_user_insert(struct store_txn *t, const char *name, const char *password_hash,
                     enum role role, char id_out[UUID_STRLEN + 1], struct error **errp);
/* Same, checking and hashing 'password' itself (start-up and tests). */
int auth_user_create(struct store_txn *t, const char *name, const char *password,
                     enum role role, char id_out[UUID_STRLEN + 1], struct error **errp);

/* Creates a token for 'user_id' inside 't'.  'expires_at' is ms since the
 * epoch, 0 for never.  Returns a new token string (shown once; the caller
 * frees it) and fills 'id_out' (optional). */
char *auth_token_create(struct store_txn *t, const char *user_id, enum token_kind kind,
                        const char *name, int64_t expires_at, char id_out[UUID_STRLEN + 1],
                        struct error **errp);

/* Checks 'name'/'password' and, when they match an enabled user, creates a
 * session token valid for 'ttl_ms' (0: AUTH_SESSION_TTL_MS).  Returns a new
 * token; 'who' (optional) and '*expires_at' (optional) are filled.  Any
 * mismatch is the same ERR_UNAUTHORIZED. */
char *auth_login(struct store *s, const char *name, const char *password, int64_t ttl_ms,
                 struct auth_identity *who, int64_t *expires_at, struct error **errp);

/* Resolves an "Authorization: Bearer <token>" header value (NULL when the
 * request had none) into 'who'.  ERR_UNAUTHORIZED when missing, malformed,
 * unknown, expired, or the user is disabled. */
int auth_authenticate(struct store *s, const char *authorization, struct auth_identity *who,
                      struct error **errp);

/* Deletes token 'token_id'; with 'user_id' set only if it belongs to that
 * user.  ERR_NOT_FOUND if there was none. */
int auth_token_revoke(struct store_txn *t, const char *token_id, const char *user_id,
                      struct error **errp);

/* Creates the administrator AUTH_ADMIN_NAME with 'password' when the store has
 * no user at all; does nothing (returns 0) otherwise.  ERR_INVALID_ARG when a
 * user is needed and 'password' is NULL or too weak.  '*created' (optional)
 * tells whether a user was made. */
int auth_bootstrap_admin(struct store *s, const char *password, bool *created,
                         struct error **errp);

/* Counts enabled administrators other than 'except_id' (may be NULL). */
int64_t auth_count_admins(struct store_txn *t, const char *except_id, struct error **errp);

#endif
