/* http_client.h - a small JSON-over-HTTP client (libcurl) for Strata's servers.
 *
 * Used by the manager to call agents, by the CLI, and by tests and
 * benchmarks.  A client talks to one server, either over a unix socket or
 * over HTTPS with mutual TLS:
 *   - the server certificate must chain to 'ca_file' and only to it (the
 *     system CA store is never consulted: the CA is pinned);
 *   - it must carry 'server_name' (default: 'host') in its subjectAltName (DNS
 *     or IP), which is how agent certificates issued at host join are named;
 *   - the client presents 'cert_file'/'key_file' when given.
 * The connection is kept alive and reused between requests.
 *
 * Errors: transport failures are ERR_IO (ERR_TIMEOUT for timeouts); an HTTP
 * 4xx/5xx answer becomes '*errp' from the server's one error body
 * (error_from_json()), so its code, message and field arrive unchanged; a
 * non-standard error body falls back to the code of the HTTP status.
 *
 * Thread safety: one client per thread.  A client must not be used by two
 * threads at the same time; different clients are independent. */
#ifndef STRATA_HTTP_CLIENT_H
#define STRATA_HTTP_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "util/error.h"

struct http_client_config {
    const char *unix_path;        /* either a unix socket ... */
    const char *host;             /* ... or HTTPS to this address or name */
    unsigned short port;
    const char *server_name;      /* name the server certificate must carry; default 'host' */
    const char *ca_file;          /* PEM: the only CA trusted for the server (required for HTTPS) */
    const char *cert_file;        /* PEM: this client's certificate (optional) */
    const char *key_file;         /* PEM: its private key (with cert_file) */
    const char *crl_file;         /* PEM CRL of the CA: server certificates it revokes are refused (optional) */
    long connect_timeout_ms;      /* 0: 10 s */
    long timeout_ms;              /* whole request; 0: 120 s */
    size_t max_reply;             /* reply body limit; 0: 16 MiB */
    const char *bearer_token;     /* sent as "Authorization: Bearer ..." (optional) */
};

struct http_client;

/* The strings of 'cfg' are copied. */
struct http_client *http_client_new(const struct http_client_config *cfg, struct error **errp);
void http_client_free(struct http_client *c);   /* Accepts NULL. */
static inline void autohttpclient_impl(struct http_client **c) { http_client_free(*c); }
#define AUTOHTTPCLIENT __attribute__((cleanup(autohttpclient_impl)))

/* Sends 'method' 'path' ("/v1/vms/web1?x=1", already escaped: see
 * http_client_escape()) with 'body' (borrowed; NULL for none) as JSON.
 * '*status' (optional) receives the HTTP status whenever a reply arrived,
 * even on error.  On success returns 0 and '*reply' (optional) receives a
 * new reference to the reply body, or NULL when the reply has no body.  On
 * failure returns -1, sets '*errp' and leaves '*reply' NULL. */
int http_client_request(struct http_client *c, const char *method, const char *path,
                        const json_t *body, long *status, json_t **reply,
                        struct error **errp);

/* Same with a raw request body ('body_len' bytes, NULL for none, sent with
 * 'content_type', default "application/json") and a raw reply: '*reply'
 * (optional) receives a new NUL-terminated buffer (the caller frees it) and
 * '*reply_len' (optional) its length. */
int http_client_request_raw(struct http_client *c, const char *method, const char *path,
                            const char *body, size_t body_len, const char *content_type,
                            long *status, char **reply, size_t *reply_len,
                            struct error **errp);

/* Sets (or with NULL clears) the bearer token sent with every later request.
 * Fails with ERR_INVALID_ARG for a token with characters not allowed in a
 * header (control characters, spaces). */
int http_client_set_bearer_token(struct http_client *c, const char *token,
                                 struct error **errp);

/* Number of connections the client has opened so far (1 after any number of
 * requests when keep-alive works); for tests and benchmarks. */
unsigned long http_client_connect_count(const struct http_client *c);

/* Returns a new string: 'segment' percent-encoded for use as one path
 * segment or query value (everything but A-Z a-z 0-9 - . _ ~ is escaped). */
char *http_client_escape(const char *segment);

#endif
