/* http_server.h - the JSON-over-HTTP server shared by the agent and the manager.
 *
 * A thin layer over libmicrohttpd.  A server listens on exactly one of:
 *   - a unix socket (mode 0600, root only: filesystem permissions are the
 *     authentication), or
 *   - TCP with mutual TLS (GnuTLS): the server presents its certificate and
 *     requires a client certificate signed by the configured CA; a connection
 *     without one, or with a foreign, expired or revoked one (CRL), is refused
 *     before any handler runs.  Plain TCP is not offered.  A server may
 *     instead offer server-only TLS (http_tls_config.no_client_cert) when its
 *     handlers authenticate each request themselves.
 * Requests are dispatched through a route table ("GET /v1/vms/{name}"); path
 * parameters are extracted; request bodies are limited in size and must be
 * JSON objects; every failure is answered with the one error body of
 * error_to_json() and the HTTP status of its code.  Handlers run on server
 * threads (thread per connection) and may block.
 *
 * Routing: the first route in table order whose pattern matches the path
 * wins; a path that matches only under other methods is answered 405 (code
 * "invalid-argument", with an Allow header), one that matches nothing 404.
 * A decoded path parameter containing '/' or NUL, or equal to "." or "..",
 * is refused with 400 naming the parameter.  See docs/internals/http.md. */
#ifndef STRATA_HTTP_SERVER_H
#define STRATA_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

#define HTTP_MAX_PATH_PARAMS 4

struct http_request {
    const char *method;               /* "GET", "POST", ... */
    const char *path;                 /* "/v1/vms/web1" (no query string) */
    const char *params[HTTP_MAX_PATH_PARAMS];  /* values of {...} in the route, decoded */
    size_t n_params;
    json_t *body;                     /* parsed body object, or NULL if none; borrowed */
    const char *peer_cn;              /* TLS: the client certificate's CN; else NULL */
    void *conn;                       /* opaque (for http_request_query) */
    const struct http_route *route;   /* the matched route (borrowed from the table) */
};

/* Returns a query-string argument or NULL. */
const char *http_request_query(const struct http_request *req, const char *key);
/* Returns the key of the i-th query-string argument (in order, from 0), or
 * NULL past the last; lets a handler refuse arguments it does not know. */
const char *http_request_query_key(const struct http_request *req, size_t i);
/* Returns the value of request header 'name' (case-insensitive), or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);

struct http_response {
    int status;                       /* 200 if left 0 and no error */
    json_t *body;                     /* owned; NULL for no body (204) */
    const char *content_type;         /* default "application/json"; for raw,
                                         "application/octet-stream" */
    char *raw;                        /* owned; non-JSON body (e.g. console text); wins over body */
    size_t raw_len;
};

/* A handler fills 'resp' and returns 0, or returns -1 with 'errp' set; the
 * server then answers with the error body. */
typedef int http_handler(const struct http_request *req, struct http_response *resp,
                         void *opaque, struct error **errp);

struct http_route {
    const char *method;
    const char *pattern;              /* "/v1/vms/{name}/start" */
    http_handler *handler;
};

struct http_tls_config {
    const char *cert_file;            /* PEM: this server's certificate */
    const char *key_file;             /* PEM: its private key */
    const char *ca_file;              /* PEM: CA that signs acceptable client certs */
    const char *crl_file;             /* optional PEM CRL */
    const char *allowed_cn;           /* optional: only this client CN is accepted */
    bool no_client_cert;              /* server TLS only: no client certificate is asked
                                         for and 'ca_file', 'crl_file', 'allowed_cn' are
                                         unused; the handlers authenticate (the manager's
                                         public API, with bearer tokens) */
};

struct http_server_config {
    const char *unix_path;            /* either this ... */
    const char *tcp_address;          /* ... or this ("127.0.0.1") with 'tcp_port' and 'tls' */
    unsigned short tcp_port;          /* 0 picks a free port: see http_server_port() */
    const struct http_tls_config *tls;
    size_t max_body;                  /* default 1 MiB */
    const struct http_route *routes;  /* terminated by a {NULL} entry; borrowed */
    void *opaque;                     /* passed to handlers */
};

struct http_server;

struct http_server *http_server_start(const struct http_server_config *cfg,
                                      struct error **errp);
unsigned short http_server_port(const struct http_server *s);
void http_server_stop(struct http_server *s);   /* Accepts NULL. */

#endif
