/* http_server.c - the JSON-over-HTTP server of http_server.h, over libmicrohttpd.
 *
 * Listening: the socket is created here (a unix socket chmod 0600, or a TCP
 * socket that is only offered with TLS) and handed to MHD with
 * MHD_OPTION_LISTEN_SOCKET; MHD runs one thread per connection.
 *
 * TLS: MHD terminates TLS with the server certificate and asks for a client
 * certificate (MHD_OPTION_HTTPS_MEM_TRUST).  When MHD announces a new
 * connection (MHD_OPTION_NOTIFY_CONNECTION, before the handshake) we make the
 * certificate mandatory and install a per-session verify function, so the
 * handshake itself fails for a client without a certificate or with one that
 * does not verify against our own GnuTLS trust list (CA + optional CRL, key
 * purpose, expiry, optional allowed CN).  The verdict is cached per
 * connection; the request path re-checks it (and verifies itself if the hook
 * could not run, e.g. a resumed session) and answers 401/403 with the error
 * body, so no handler ever runs for an unverified peer.  With
 * tls->no_client_cert (server-only TLS) none of this runs: no client
 * certificate is asked for and the handlers authenticate requests.
 *
 * Requests: the access callback sees a request three ways: a first call with
 * the headers (peer check, declared size, routing, path parameters, query
 * string), calls with body chunks (stored up to max_body, then only counted
 * and dropped), and a final call that parses the body and runs the handler.
 * An error found in the headers is answered at once only when no body is in
 * flight ("Expect: 100-continue"), for an unauthenticated peer, or for a
 * declared body far over the limit; otherwise the body is drained (bounded)
 * first, so the client can read the answer and the connection stays usable.
 *
 * Neighbours: http_client.c speaks to this server; util/error.c gives the
 * error body and the status of each code. */
#define LOG_MODULE "http"
#include "http/http_server.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define DEFAULT_MAX_BODY ((size_t) 1024 * 1024)
/* After a body went over the limit we keep draining (not storing) this much
 * more so the 413 can still be delivered, then drop the connection. */
#define DISCARD_SLACK ((size_t) 1024 * 1024)
#define CONNECTION_LIMIT 256
#define CONNECTION_TIMEOUT_S 300
#define STOP_GRACE_MS 10000
#define MAX_PEER_CHAIN 8
#define PEM_MAX_SIZE ((size_t) 1024 * 1024)
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct http_server {
    struct MHD_Daemon *daemon;
    int listen_fd;
    char *unix_path;            /* set while we own the socket file */
    dev_t unix_dev;
    ino_t unix_ino;
    unsigned short port;
    size_t max_body;
    const struct http_route *routes;
    void *opaque;
    atomic_int in_flight;       /* requests between first call and completion */

    bool tls;
    bool verify_clients;        /* mutual TLS (else server-only TLS) */
    char *cert_pem, *key_pem, *ca_pem;   /* kept for MHD's lifetime */
    gnutls_x509_trust_list_t trust;      /* CA + CRL: client verification */
    char *allowed_cn;
};

/* ---- TLS peer verification ---------------------------------------------- */

/* Per-connection TLS state (MHD's "socket context").  GnuTLS's verify
 * function has no user pointer and MHD owns the session pointer, so the
 * states are also kept in a registry keyed by session. */
struct conn_state {
    struct conn_state *next, *prev;
    struct http_server *server;
    gnutls_session_t session;
    int verdict;                /* 0 not yet verified, 1 accepted, -1 refused */
    char *cn;
    struct error *err;          /* why it was refused */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn_state *registry;

static void registry_add(struct conn_state *cs)
{
    pthread_mutex_lock(&registry_lock);
    cs->prev = NULL;
    cs->next = registry;
    if (registry)
        registry->prev = cs;
    registry = cs;
    pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(struct conn_state *cs)
{
    pthread_mutex_lock(&registry_lock);
    if (cs->prev)
        cs->prev->next = cs->next;
    else if (registry == cs)
        registry = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
    cs->next = cs->prev = NULL;
    pthread_mutex_unlock(&registry_lock);
}

/* The state stays valid after the lock is dropped: only the connection's own
 * thread (which is the caller) frees it. */
static struct conn_state *registry_find(gnutls_session_t session)
{
    pthread_mutex_lock(&registry_lock);
    struct conn_state *cs = registry;
    while (cs && cs->session != session)
        cs = cs->next;
    pthread_mutex_unlock(&registry_lock);
    return cs;
}

static char *crt_common_name(gnutls_x509_crt_t crt)
{
    char buf[256];
    size_t size = sizeof buf;
    if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size) < 0)
        return NULL;
    buf[sizeof buf - 1] = '\0';
    return xstrdup(buf);
}

static int describe_status(unsigned status, struct error **errp)
{
    if (status & GNUTLS_CERT_REVOKED)
        return error_set(errp, ERR_UNAUTHORIZED, "client certificate has been revoked");
    if (status & GNUTLS_CERT_EXPIRED)
        return error_set(errp, ERR_UNAUTHORIZED, "client certificate has expired");
    if (status & GNUTLS_CERT_NOT_ACTIVATED)
        return error_set(errp, ERR_UNAUTHORIZED, "client certificate is not yet valid");
    if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
        return error_set(errp, ERR_UNAUTHORIZED,
                         "client certificate is not signed by a trusted CA");
    if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
        return error_set(errp, ERR_UNAUTHORIZED,
                         "client certificate is not valid for TLS client authentication");
    gnutls_datum_t out = { NULL, 0 };
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) < 0)
        return error_set(errp, ERR_UNAUTHORIZED,
                         "client certificate rejected (status 0x%x)", status);
    error_set(errp, ERR_UNAUTHORIZED, "client certificate rejected: %s", (char *) out.data);
    gnutls_free(out.data);
    return -1;
}

/* Verifies the peer of 'session' against the server's trust list (CA, CRL,
 * validity period, key purpose) and allowed CN.  On success '*cn_out' gets a
 * new string with the client's CN (or NULL if it has none). */
static int verify_peer(const struct http_server *s, gnutls_session_t session, char **cn_out,
                       struct error **errp)
{
    if (gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_X509)
        return error_set(errp, ERR_UNAUTHORIZED, "an X.509 client certificate is required");
    unsigned n = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(session, &n);
    if (!raw || n == 0)
        return error_set(errp, ERR_UNAUTHORIZED, "a client certificate is required");
    if (n > MAX_PEER_CHAIN)
        return error_set(errp, ERR_UNAUTHORIZED,
                         "client certificate chain is too long (%u certificates)", n);

    gnutls_x509_crt_t crts[MAX_PEER_CHAIN] = { NULL };
    int ret = -1;
    for (unsigned i = 0; i < n; i++) {
        if (gnutls_x509_crt_init(&crts[i]) < 0 ||
            gnutls_x509_crt_import(crts[i], &raw[i], GNUTLS_X509_FMT_DER) < 0) {
            error_set(errp, ERR_UNAUTHORIZED, "client certificate cannot be parsed");
            goto cleanup;
        }
    }

    gnutls_typed_vdata_st purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID,
        .data = (unsigned char *) GNUTLS_KP_TLS_WWW_CLIENT,
    };
    unsigned status = 0;
    int r = gnutls_x509_trust_list_verify_crt2(s->trust, crts, n, &purpose, 1, 0, &status, NULL);
    if (r < 0) {
        error_set(errp, ERR_UNAUTHORIZED, "cannot verify client certificate: %s",
                  gnutls_strerror(r));
        goto cleanup;
    }
    if (status) {
        describe_status(status, errp);
        goto cleanup;
    }
    /* The trust list checks the validity period too; this is belt and braces
     * for the leaf in case verification flags ever change. */
    time_t now = time(NULL);
    if (gnutls_x509_crt_get_expiration_time(crts[0]) < now) {
        error_set(errp, ERR_UNAUTHORIZED, "client certificate has expired");
        goto cleanup;
    }

    char *cn = crt_common_name(crts[0]);
    if (s->allowed_cn && (!cn || strcmp(cn, s->allowed_cn) != 0)) {
        error_set(errp, ERR_FORBIDDEN, "client certificate CN '%s' is not allowed",
                  cn ? cn : "");
        free(cn);
        goto cleanup;
    }
    *cn_out = cn;
    ret = 0;

cleanup:
    for (unsigned i = 0; i < n; i++)
        if (crts[i])
            gnutls_x509_crt_deinit(crts[i]);
    return ret;
}

/* Runs verify_peer() once per connection and caches the verdict. */
static void conn_state_verify(struct conn_state *cs, gnutls_session_t session)
{
    if (cs->verdict != 0)
        return;
    char *cn = NULL;
    struct error *err = NULL;
    if (verify_peer(cs->server, session, &cn, &err) < 0) {
        cs->verdict = -1;
        cs->err = err;
        LOG_RL(LOG_LEVEL_INFO, "refused TLS client: %s", err->message);
    } else {
        cs->verdict = 1;
        cs->cn = cn;
        LOG_DEBUG("TLS client '%s' accepted", cn ? cn : "");
    }
}

/* GnuTLS calls this during the handshake once the client certificate has
 * arrived; non-zero aborts the handshake with a fatal alert. */
static int handshake_verify(gnutls_session_t session)
{
    struct conn_state *cs = registry_find(session);
    if (!cs)
        return GNUTLS_E_CERTIFICATE_ERROR;
    conn_state_verify(cs, session);
    return cs->verdict > 0 ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *s = cls;
    if (!s->verify_clients)
        return;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        struct conn_state *cs = xzalloc(sizeof *cs);
        cs->server = s;
        if (ci && ci->tls_session) {
            cs->session = ci->tls_session;
            gnutls_certificate_server_set_request(cs->session, GNUTLS_CERT_REQUIRE);
            gnutls_session_set_verify_function(cs->session, handshake_verify);
            registry_add(cs);
        }
        *socket_context = cs;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        struct conn_state *cs = *socket_context;
        if (!cs)
            return;
        if (cs->session)
            registry_remove(cs);
        free(cs->cn);
        error_free(cs->err);
        free(cs);
        *socket_context = NULL;
    }
}

/* Request path check.  Returns 0 and sets '*cn' (borrowed, may be NULL), or
 * -1 with the reason for refusing the peer. */
static int check_peer(struct MHD_Connection *conn, const char **cn, struct error **errp)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return error_set(errp, ERR_UNAUTHORIZED, "TLS session unavailable");
    gnutls_session_t session = ci->tls_session;
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_state *cs = sc ? sc->socket_context : NULL;
    if (!cs)
        return error_set(errp, ERR_INTERNAL, "TLS connection state missing");
    conn_state_verify(cs, session);   /* no-op if the handshake hook ran */
    if (cs->verdict < 0) {
        struct error *e = cs->err;
        if (!e)
            return error_set(errp, ERR_UNAUTHORIZED, "client certificate refused");
        return error_set_field(errp, e->code, e->field, "%s", e->message);
    }
    *cn = cs->cn;
    return 0;
}

/* ---- routing ------------------------------------------------------------ */

struct span {
    const char *p;
    size_t len;
};

/* Matches 'path' against 'pattern' segment by segment; a "{name}" segment
 * matches any non-empty segment, whose raw text goes to 'params'. */
static bool route_match(const char *pattern, const char *path, struct span *params, size_t *n)
{
    *n = 0;
    if (*pattern != '/' || *path != '/')
        return false;
    const char *p = pattern + 1, *q = path + 1;
    for (;;) {
        size_t plen = strcspn(p, "/"), qlen = strcspn(q, "/");
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (qlen == 0 || *n >= HTTP_MAX_PATH_PARAMS)
                return false;
            params[(*n)++] = (struct span) { q, qlen };
        } else if (plen != qlen || memcmp(p, q, plen) != 0) {
            return false;
        }
        p += plen;
        q += qlen;
        if (!*p || !*q)
            return !*p && !*q;
        p++;
        q++;
    }
}

/* Returns a new string with the name of the 'index'th "{name}" of 'pattern'. */
static char *pattern_param_name(const char *pattern, size_t index)
{
    const char *p = pattern;
    for (size_t i = 0; (p = strchr(p, '{')); i++, p++) {
        if (i == index) {
            size_t len = strcspn(p + 1, "}");
            return xstrndup(p + 1, len);
        }
    }
    return xstrdup("param");
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes 'len' bytes of 's' into a new string; '*has_nul' tells if
 * the result contains NUL (it is then truncated there).  Returns NULL on a
 * malformed escape. */
static char *percent_decode(const char *s, size_t len, bool *has_nul)
{
    char *out = xmalloc(len + 1);
    size_t o = 0;
    *has_nul = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            c = (char) (hi * 16 + lo);
            i += 2;
        }
        if (c == '\0')
            *has_nul = true;
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

/* Validates the route table: every pattern absolute, "{...}" only as whole
 * segments, at most HTTP_MAX_PATH_PARAMS of them. */
static int routes_check(const struct http_route *routes, struct error **errp)
{
    if (!routes)
        return error_set(errp, ERR_INVALID_ARG, "HTTP server needs a route table");
    for (const struct http_route *r = routes; r->method; r++) {
        if (!r->pattern || r->pattern[0] != '/' || !r->handler)
            return error_set(errp, ERR_INVALID_ARG, "invalid route '%s %s'", r->method,
                             r->pattern ? r->pattern : "(null)");
        size_t params = 0;
        const char *seg = r->pattern + 1;
        for (;;) {
            size_t len = strcspn(seg, "/");
            const char *open = memchr(seg, '{', len), *close = memchr(seg, '}', len);
            if (open || close) {
                if (open != seg || close != seg + len - 1 || len < 3)
                    return error_set(errp, ERR_INVALID_ARG,
                                     "route '%s %s': a parameter must be a whole segment",
                                     r->method, r->pattern);
                params++;
            }
            if (!seg[len])
                break;
            seg += len + 1;
        }
        if (params > HTTP_MAX_PATH_PARAMS)
            return error_set(errp, ERR_INVALID_ARG, "route '%s %s' has more than %d parameters",
                             r->method, r->pattern, HTTP_MAX_PATH_PARAMS);
    }
    return 0;
}

/* ---- requests ----------------------------------------------------------- */

struct query_arg {
    char *key, *value;
};

struct request_state {
    struct http_server *server;
    struct MHD_Connection *conn;
    const struct http_route *route;
    char *params[HTTP_MAX_PATH_PARAMS];
    size_t n_params;
    struct query_arg *query;
    size_t n_query, query_cap;
    struct error *err;          /* answered at the final call */
    char *allow;                /* Allow header for a 405 */
    const char *peer_cn;        /* borrowed from the connection state */
    char *body;
    size_t body_len, body_cap;
    size_t received;            /* all body bytes seen, stored or not */
    bool too_large;
    bool counted;               /* counted in server->in_flight */
    bool answered;              /* a response was queued at the first call */
};

static void request_state_free(struct request_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_params; i++)
        free(st->params[i]);
    for (size_t i = 0; i < st->n_query; i++) {
        free(st->query[i].key);
        free(st->query[i].value);
    }
    free(st->query);
    error_free(st->err);
    free(st->allow);
    free(st->body);
    free(st);
}

const char *http_request_query_key(const struct http_request *req, size_t i)
{
    const struct request_state *st = req->conn;
    return st && i < st->n_query ? st->query[i].key : NULL;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    const struct request_state *st = req->conn;
    if (!st || !st->conn)
        return NULL;
    return MHD_lookup_connection_value(st->conn, MHD_HEADER_KIND, name);
}

const char *http_request_query(const struct http_request *req, const char *key)
{
    const struct request_state *st = req->conn;
    if (!st || !key)
        return NULL;
    for (size_t i = 0; i < st->n_query; i++)
        if (!strcmp(st->query[i].key, key))
            return st->query[i].value;
    return NULL;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct request_state *st = cls;
    (void) kind;
    if (st->err)
        return MHD_NO;
    bool nul_k = false, nul_v = false;
    char *k = percent_decode(key, strlen(key), &nul_k);
    char *v = value ? percent_decode(value, strlen(value), &nul_v) : xstrdup("");
    if (!k || !v || nul_k || nul_v) {
        free(k);
        free(v);
        error_set(&st->err, ERR_INVALID_ARG, "malformed query string");
        return MHD_NO;
    }
    if (st->n_query == st->query_cap) {
        st->query_cap = st->query_cap ? 2 * st->query_cap : 4;
        st->query = xrealloc(st->query, st->query_cap * sizeof *st->query);
    }
    st->query[st->n_query++] = (struct query_arg) { k, v };
    return MHD_YES;
}

/* Finds the route for 'method' 'path' and decodes its parameters, or sets
 * st->err (404, 405 with st->allow, 400 for a bad parameter). */
static void request_route(struct request_state *st, const char *method, const char *path)
{
    struct span spans[HTTP_MAX_PATH_PARAMS];
    size_t n = 0;
    const struct http_route *found = NULL;
    size_t allow_len = 0;
    for (const struct http_route *r = st->server->routes; r->method; r++) {
        if (!route_match(r->pattern, path, spans, &n))
            continue;
        if (!strcmp(r->method, method)) {
            found = r;
            break;
        }
        /* Remember the methods this path does accept, for Allow. */
        char *a = st->allow ? xasprintf("%s, %s", st->allow, r->method) : xstrdup(r->method);
        free(st->allow);
        st->allow = a;
        allow_len++;
    }
    if (!found) {
        if (allow_len)
            error_set(&st->err, ERR_INVALID_ARG, "method %s is not allowed on '%s' (allowed: %s)",
                      method, path, st->allow);
        else
            error_set(&st->err, ERR_NOT_FOUND, "no such path '%s'", path);
        return;
    }
    free(st->allow);
    st->allow = NULL;
    /* route_match() of the found route is the last one that ran: spans hold it. */
    st->route = found;
    for (size_t i = 0; i < n; i++) {
        bool has_nul = false;
        char *v = percent_decode(spans[i].p, spans[i].len, &has_nul);
        AUTOFREE char *name = pattern_param_name(found->pattern, i);
        if (!v) {
            error_set_field(&st->err, ERR_INVALID_ARG, name,
                            "path parameter '%s' has a malformed percent-escape", name);
            return;
        }
        if (has_nul || strchr(v, '/') || !strcmp(v, ".") || !strcmp(v, "..")) {
            free(v);
            error_set_field(&st->err, ERR_INVALID_ARG, name,
                            "path parameter '%s' must not contain '/' or NUL, nor be '.' or '..'",
                            name);
            return;
        }
        st->params[st->n_params++] = v;
    }
}

static enum MHD_Result queue_text(struct MHD_Connection *conn, int status, char *text,
                                  size_t len, const char *content_type, const char *allow)
{
    struct MHD_Response *r =
        text ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned) status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result queue_json(struct MHD_Connection *conn, int status, const json_t *body,
                                  const char *content_type, const char *allow)
{
    /* Keys in the order the handler built them (jansson keeps insertion
     * order): sorting every object of a large list costs more than the
     * rest of the serialisation. */
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        text = xstrdup("null");
    return queue_text(conn, status, text, strlen(text),
                      content_type ? content_type : "application/json", allow);
}

/* Answers with the one error body; this is where a request's error is
 * finally consumed, so it is logged here. */
static enum MHD_Result queue_error(struct MHD_Connection *conn, const char *method,
                                   const char *path, const struct error *err, int status,
                                   const char *allow)
{
    if (!status)
        status = err_code_http_status(err->code);
    if (status >= 500)
        LOG_WARN("%s %s: %d %s", method, path, status, err->message);
    else
        LOG_DEBUG("%s %s: %d %s", method, path, status, err->message);
    AUTOJSON json_t *body = error_to_json(err);
    return queue_json(conn, status, body, NULL, allow);
}

static enum MHD_Result run_handler(struct request_state *st, struct MHD_Connection *conn,
                                   const char *method, const char *path)
{
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *body = NULL;
    if (st->body_len) {
        json_error_t je;
        body = json_loadb(st->body, st->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        if (!body) {
            error_set(&err, ERR_INVALID_ARG,
                      "request body is malformed JSON at line %d column %d: %s", je.line,
                      je.column, je.text);
            return queue_error(conn, method, path, err, 0, NULL);
        }
        if (!json_is_object(body)) {
            static const char *const type_names[] = {
                [JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array",
                [JSON_STRING] = "a string", [JSON_INTEGER] = "a number",
                [JSON_REAL] = "a number", [JSON_TRUE] = "a boolean",
                [JSON_FALSE] = "a boolean", [JSON_NULL] = "null",
            };
            error_set(&err, ERR_INVALID_ARG, "request body must be a JSON object, not %s",
                      type_names[json_typeof(body)]);
            return queue_error(conn, method, path, err, 0, NULL);
        }
    }
    free(st->body);
    st->body = NULL;

    struct http_request req = {
        .method = method,
        .path = path,
        .n_params = st->n_params,
        .body = body,
        .peer_cn = st->peer_cn,
        .conn = st,
        .route = st->route,
    };
    for (size_t i = 0; i < st->n_params; i++)
        req.params[i] = st->params[i];
    struct http_response resp = { 0 };

    int r = st->route->handler(&req, &resp, st->server->opaque, &err);
    if (r < 0) {
        json_decref(resp.body);
        free(resp.raw);
        if (!err)
            error_set(&err, ERR_INTERNAL, "handler for '%s %s' failed without an error",
                      st->route->method, st->route->pattern);
        return queue_error(conn, method, path, err, 0, NULL);
    }

    int status = resp.status;
    if (resp.raw) {
        json_decref(resp.body);
        return queue_text(conn, status ? status : 200, resp.raw, resp.raw_len,
                          resp.content_type ? resp.content_type : "application/octet-stream",
                          NULL);
    }
    if (resp.body) {
        enum MHD_Result ret = queue_json(conn, status ? status : 200, resp.body,
                                         resp.content_type, NULL);
        json_decref(resp.body);
        return ret;
    }
    return queue_text(conn, status ? status : 204, NULL, 0, NULL, NULL);
}

/* First call for a request: authentication, declared size, route. */
static enum MHD_Result request_begin(struct http_server *s, struct MHD_Connection *conn,
                                     const char *method, const char *path, void **con_cls)
{
    struct request_state *st = xzalloc(sizeof *st);
    st->server = s;
    st->conn = conn;
    *con_cls = st;
    st->counted = true;
    atomic_fetch_add(&s->in_flight, 1);

    AUTOERROR struct error *err = NULL;
    if (s->verify_clients && check_peer(conn, &st->peer_cn, &err) < 0) {
        st->answered = true;
        return queue_error(conn, method, path, err, 0, NULL);
    }

    /* With "Expect: 100-continue" the client waits for our go-ahead, so an
     * error can be answered now without a body in flight; otherwise a body
     * of reasonable size is drained first so the client reads the answer. */
    const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_EXPECT);
    bool waits = expect && strcasestr(expect, "100-continue");
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        errno = 0;
        char *end = NULL;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || n > s->max_body) {
            if (waits || errno || end == cl || n > s->max_body + DISCARD_SLACK) {
                error_set(&err, ERR_TOO_LARGE, "request body is larger than %zu bytes",
                          s->max_body);
                st->answered = true;
                return queue_error(conn, method, path, err, 0, NULL);
            }
            st->too_large = true;
        } else {
            st->body_cap = (size_t) n + 1;
            st->body = xmalloc(st->body_cap);
        }
    }

    request_route(st, method, path);
    if (!st->err)
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_query, st);
    if (st->err && waits) {
        st->answered = true;
        return queue_error(conn, method, path, st->err, st->allow ? 405 : 0, st->allow);
    }
    return MHD_YES;
}

/* Stores (or, once over the limit or after an error, only counts) a chunk. */
static enum MHD_Result request_data(struct request_state *st, const char *data, size_t len)
{
    size_t max = st->server->max_body;
    st->received += len;
    if (st->received > max + DISCARD_SLACK)
        return MHD_NO;          /* drop the connection: no 413 is worth this much */
    if (st->err || st->too_large)
        return MHD_YES;
    if (st->received > max) {
        st->too_large = true;
        free(st->body);
        st->body = NULL;
        st->body_len = st->body_cap = 0;
        return MHD_YES;
    }
    if (st->body_len + len + 1 > st->body_cap) {
        size_t cap = st->body_cap ? st->body_cap : 4096;
        while (cap < st->body_len + len + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        st->body = xrealloc(st->body, cap);
        st->body_cap = cap;
    }
    memcpy(st->body + st->body_len, data, len);
    st->body_len += len;
    st->body[st->body_len] = '\0';
    return MHD_YES;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    struct http_server *s = cls;
    struct request_state *st = *con_cls;
    (void) version;

    if (!st)
        return request_begin(s, conn, method, url, con_cls);
    if (st->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t len = *upload_data_size;
        *upload_data_size = 0;
        return request_data(st, upload_data, len);
    }
    if (st->err) {
        int status = st->allow ? 405 : 0;
        return queue_error(conn, method, url, st->err, status, st->allow);
    }
    if (st->too_large) {
        AUTOERROR struct error *err = NULL;
        error_set(&err, ERR_TOO_LARGE, "request body is larger than %zu bytes", s->max_body);
        return queue_error(conn, method, url, err, 0, NULL);
    }
    return run_handler(st, conn, method, url);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct request_state *st = *con_cls;
    (void) conn;
    (void) toe;
    if (!st)
        return;
    if (st->counted)
        atomic_fetch_sub(&s->in_flight, 1);
    request_state_free(st);
    *con_cls = NULL;
}

/* MHD must not decode the path: a "%2F" inside a parameter would become a
 * separator.  Paths and query arguments are decoded here instead. */
static size_t unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    (void) cls;
    (void) conn;
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    char *msg = xvasprintf(fmt, ap);
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    LOG_DEBUG("libmicrohttpd: %s", msg);
    free(msg);
}

/* ---- listening sockets -------------------------------------------------- */

static int steal_fd(int *fd)
{
    int f = *fd;
    *fd = -1;
    return f;
}

static int listen_unix(struct http_server *s, const char *path, struct error **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path)
        return error_set(errp, ERR_INVALID_ARG, "unix socket path '%s' is too long", path);
    strcpy(sa.sun_path, path);

    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode))
            return error_set(errp, ERR_CONFLICT, "'%s' exists and is not a socket", path);
        AUTOCLOSE int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return error_set_errno(errp, ERR_IO, errno, "cannot create unix socket");
        if (connect(probe, (struct sockaddr *) &sa, sizeof sa) == 0)
            return error_set(errp, ERR_CONFLICT, "'%s' is in use by a running server", path);
        if (unlink(path) < 0 && errno != ENOENT)
            return error_set_errno(errp, ERR_IO, errno, "cannot remove stale socket '%s'", path);
        LOG_INFO("removed stale socket '%s'", path);
    }

    AUTOCLOSE int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot create unix socket");
    /* Linux creates the socket file with the socket inode's mode (less the
     * umask): restrict it before bind so it is never reachable by others. */
    if (fchmod(fd, 0600) < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot restrict unix socket");
    if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot bind unix socket '%s'", path);
    if (chmod(path, 0600) < 0 || stat(path, &sb) < 0) {
        int e = errno;
        unlink(path);
        return error_set_errno(errp, ERR_IO, e, "cannot set mode of '%s'", path);
    }
    if (listen(fd, 128) < 0) {
        int e = errno;
        unlink(path);
        return error_set_errno(errp, ERR_IO, e, "cannot listen on '%s'", path);
    }
    s->unix_path = xstrdup(path);
    s->unix_dev = sb.st_dev;
    s->unix_ino = sb.st_ino;
    s->listen_fd = steal_fd(&fd);
    return 0;
}

static int listen_tcp(struct http_server *s, const char *address, unsigned short port,
                      struct error **errp)
{
    char port_str[16];
    snprintf(port_str, sizeof port_str, "%u", (unsigned) port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    };
    struct addrinfo *res = NULL;
    int r = getaddrinfo(address, port_str, &hints, &res);
    if (r != 0)
        return error_set(errp, ERR_INVALID_ARG, "cannot resolve listen address '%s': %s",
                         address, gai_strerror(r));
    AUTOCLOSE int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0) {
        freeaddrinfo(res);
        return error_set_errno(errp, ERR_IO, errno, "cannot create TCP socket");
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        int e = errno;
        freeaddrinfo(res);
        return error_set_errno(errp, ERR_IO, e, "cannot bind to '%s' port %u", address,
                               (unsigned) port);
    }
    freeaddrinfo(res);
    if (listen(fd, 128) < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot listen on '%s' port %u", address,
                               (unsigned) port);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *) &ss, &sl) < 0)
        return error_set_errno(errp, ERR_IO, errno, "getsockname");
    if (ss.ss_family == AF_INET)
        s->port = ntohs(((struct sockaddr_in *) &ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
        s->port = ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
    s->listen_fd = steal_fd(&fd);
    return 0;
}

/* ---- TLS material ------------------------------------------------------- */

static int tls_load(struct http_server *s, const struct http_tls_config *tls,
                    struct error **errp)
{
    if (!tls->cert_file || !tls->key_file || (!tls->ca_file && !tls->no_client_cert))
        return error_set(errp, ERR_INVALID_ARG,
                         "TLS needs a certificate, a private key and a CA file");
    if (!(s->cert_pem = file_read_all(tls->cert_file, PEM_MAX_SIZE, NULL, errp)) ||
        !(s->key_pem = file_read_all(tls->key_file, PEM_MAX_SIZE, NULL, errp)))
        return -1;
    if (tls->no_client_cert) {
        s->tls = true;
        return 0;
    }
    if (!(s->ca_pem = file_read_all(tls->ca_file, PEM_MAX_SIZE, NULL, errp)))
        return -1;

    int r = gnutls_x509_trust_list_init(&s->trust, 0);
    if (r < 0)
        return error_set(errp, ERR_INTERNAL, "gnutls_x509_trust_list_init: %s",
                         gnutls_strerror(r));
    r = gnutls_x509_trust_list_add_trust_file(s->trust, tls->ca_file, NULL,
                                              GNUTLS_X509_FMT_PEM, 0, 0);
    if (r <= 0)
        return error_set(errp, ERR_INVALID_ARG, "no CA certificate in '%s'%s%s", tls->ca_file,
                         r < 0 ? ": " : "", r < 0 ? gnutls_strerror(r) : "");
    if (tls->crl_file) {
        r = gnutls_x509_trust_list_add_trust_file(s->trust, NULL, tls->crl_file,
                                                  GNUTLS_X509_FMT_PEM,
                                                  GNUTLS_TL_VERIFY_CRL |
                                                  GNUTLS_TL_FAIL_ON_INVALID_CRL, 0);
        if (r <= 0)
            return error_set(errp, ERR_INVALID_ARG,
                             "no CRL signed by the CA in '%s'%s%s", tls->crl_file,
                             r < 0 ? ": " : "", r < 0 ? gnutls_strerror(r) : "");
    }
    s->allowed_cn = xstrdup(tls->allowed_cn);
    s->tls = true;
    s->verify_clients = true;
    return 0;
}

/* ---- start / stop ------------------------------------------------------- */

struct http_server *http_server_start(const struct http_server_config *cfg,
                                      struct error **errp)
{
    if (!!cfg->unix_path == !!cfg->tcp_address)
        return error_set(errp, ERR_INVALID_ARG,
                         "HTTP server needs exactly one of a unix socket path and a TCP address"),
               NULL;
    if (cfg->tcp_address && !cfg->tls)
        return error_set(errp, ERR_INVALID_ARG,
                         "refusing to listen on TCP '%s' without TLS", cfg->tcp_address),
               NULL;
    if (cfg->unix_path && cfg->tls)
        return error_set(errp, ERR_INVALID_ARG, "TLS is not offered on unix sockets"), NULL;
    if (routes_check(cfg->routes, errp) < 0)
        return NULL;

    struct http_server *s = xzalloc(sizeof *s);
    s->listen_fd = -1;
    s->routes = cfg->routes;
    s->opaque = cfg->opaque;
    s->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    atomic_init(&s->in_flight, 0);

    if (cfg->tls && tls_load(s, cfg->tls, errp) < 0)
        goto fail;
    if (cfg->unix_path ? listen_unix(s, cfg->unix_path, errp)
                       : listen_tcp(s, cfg->tcp_address, cfg->tcp_port, errp))
        goto fail;

    struct MHD_OptionItem opts[16];
    size_t n = 0;
#define OPT(o, v, p) (opts[n++] = (struct MHD_OptionItem) { (o), (intptr_t) (v), (p) })
    OPT(MHD_OPTION_LISTEN_SOCKET, s->listen_fd, NULL);
    OPT(MHD_OPTION_NOTIFY_COMPLETED, request_completed, s);
    OPT(MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s);
    OPT(MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL);
    OPT(MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL);
    OPT(MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT, NULL);
    OPT(MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S, NULL);
    if (s->tls) {
        OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem);
        OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem);
        if (s->verify_clients)
            OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0, s->ca_pem);
        OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, (void *) TLS_PRIORITIES);
    }
    OPT(MHD_OPTION_END, 0, NULL);
#undef OPT

    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ITC | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (s->tls)
        flags |= MHD_USE_TLS;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, s,
                                 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->daemon) {
        error_set(errp, ERR_IO, "cannot start the HTTP server on %s%s%s",
                  cfg->unix_path ? "'" : "", cfg->unix_path ? cfg->unix_path : cfg->tcp_address,
                  cfg->unix_path ? "'" : "");
        goto fail;
    }
    if (s->unix_path)
        LOG_INFO("listening on '%s'", s->unix_path);
    else
        LOG_INFO("listening on '%s' port %u (%s)", cfg->tcp_address, (unsigned) s->port,
                 s->verify_clients ? "mutual TLS" : "server TLS");
    return s;

fail:
    http_server_stop(s);
    return NULL;
}

unsigned short http_server_port(const struct http_server *s)
{
    return s ? s->port : 0;
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    if (s->daemon) {
        /* Stop accepting, let requests in progress finish (bounded), then
         * close idle keep-alive connections and join their threads. */
        MHD_socket fd = MHD_quiesce_daemon(s->daemon);
        for (int waited = 0; atomic_load(&s->in_flight) > 0 && waited < STOP_GRACE_MS;
             waited += 10)
            nanosleep(&(struct timespec) { 0, 10 * 1000 * 1000 }, NULL);
        MHD_stop_daemon(s->daemon);
        if (fd == MHD_INVALID_SOCKET)
            s->listen_fd = -1;  /* MHD closed it */
    }
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->unix_path) {
        struct stat sb;
        /* Only remove the socket file if it is still ours. */
        if (lstat(s->unix_path, &sb) == 0 && sb.st_dev == s->unix_dev &&
            sb.st_ino == s->unix_ino)
            unlink(s->unix_path);
        free(s->unix_path);
    }
    if (s->trust)
        gnutls_x509_trust_list_deinit(s->trust, 1);
    free(s->cert_pem);
    if (s->key_pem) {
        explicit_bzero(s->key_pem, strlen(s->key_pem));
        free(s->key_pem);
    }
    free(s->ca_pem);
    free(s->allowed_cn);
    free(s);
}
