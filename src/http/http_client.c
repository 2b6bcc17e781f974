/* http_client.c - the libcurl client of http_client.h.
 *
 * One CURL easy handle per client: libcurl keeps the connection in the
 * handle's cache, so consecutive requests reuse it (keep-alive).  Options
 * that do not change (transport, TLS material, timeouts) are set once in
 * http_client_new(); each request sets the URL, method, body and headers.
 * The reply body is collected up to 'max_reply' bytes; a 4xx/5xx reply is
 * turned into a struct error from the server's error body (error_from_json),
 * which is how the manager and the CLI see an agent's or the manager's error
 * exactly as it was reported.
 *
 * Neighbours: http_server.c is the other end; util/error.c maps codes and
 * HTTP statuses. */
#define LOG_MODULE "http-client"
#include "http/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_TIMEOUT_MS 120000L
#define DEFAULT_MAX_REPLY ((size_t) 16 * 1024 * 1024)

struct http_client {
    CURL *curl;
    char *base_url;          /* "http://localhost" or "https://name:port" */
    char *target;            /* for messages: "'/run/strata.sock'" or "'host:port'" */
    char *connect_to;        /* CURLOPT_CONNECT_TO entry, or NULL */
    struct curl_slist *connect_to_list;
    char *unix_path, *ca_file, *cert_file, *key_file, *crl_file;
    char *auth_header;       /* "Authorization: Bearer ..." or NULL */
    size_t max_reply;
    unsigned long connects;  /* connections opened, summed over requests */
};

struct reply_buf {
    char *data;
    size_t len, cap, max;
    bool too_large;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

char *http_client_escape(const char *segment)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(segment);
    char *out = xmalloc(3 * len + 1);
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *) segment; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out[o++] = (char) ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return out;
}

/* "[::1]" for an IPv6 literal, the host itself otherwise. */
static char *url_host(const char *host)
{
    if (strchr(host, ':') && host[0] != '[')
        return xasprintf("[%s]", host);
    return xstrdup(host);
}

#define SETOPT(c, opt, val)                                             \
    do {                                                                \
        CURLcode rc_ = curl_easy_setopt((c), (opt), (val));             \
        if (rc_ != CURLE_OK) {                                          \
            error_set(errp, ERR_INTERNAL, "libcurl option %s: %s", #opt, \
                      curl_easy_strerror(rc_));                         \
            goto fail;                                                  \
        }                                                               \
    } while (0)

struct http_client *http_client_new(const struct http_client_config *cfg, struct error **errp)
{
    if (!!cfg->unix_path == !!cfg->host)
        return error_set(errp, ERR_INVALID_ARG,
                         "HTTP client needs exactly one of a unix socket path and a host"),
               NULL;
    if (cfg->host && !cfg->ca_file)
        return error_set(errp, ERR_INVALID_ARG,
                         "HTTPS to '%s' needs the CA that signs the server's certificate",
                         cfg->host), NULL;
    if (cfg->host && cfg->port == 0)
        return error_set(errp, ERR_INVALID_ARG, "HTTPS to '%s' needs a port", cfg->host), NULL;
    if (!!cfg->cert_file != !!cfg->key_file)
        return error_set(errp, ERR_INVALID_ARG,
                         "a client certificate needs its private key and vice versa"), NULL;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK)
        return error_set(errp, ERR_INTERNAL, "curl_global_init: %s",
                         curl_easy_strerror(curl_init_result)), NULL;

    struct http_client *c = xzalloc(sizeof *c);
    c->max_reply = cfg->max_reply ? cfg->max_reply : DEFAULT_MAX_REPLY;
    c->curl = curl_easy_init();
    if (!c->curl) {
        error_set(errp, ERR_INTERNAL, "curl_easy_init failed");
        goto fail;
    }
    CURL *h = c->curl;
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS,
           cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS);
    SETOPT(h, CURLOPT_TIMEOUT_MS, cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS);
    SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(h, CURLOPT_PATH_AS_IS, 1L);             /* paths are sent as given */
    SETOPT(h, CURLOPT_PROXY, "");                 /* never through a proxy */
    SETOPT(h, CURLOPT_NOPROXY, "*");
    SETOPT(h, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
    SETOPT(h, CURLOPT_ACCEPT_ENCODING, NULL);

    if (cfg->unix_path) {
        c->unix_path = xstrdup(cfg->unix_path);
        c->base_url = xstrdup("http://localhost");
        c->target = xasprintf("'%s'", cfg->unix_path);
        SETOPT(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
        SETOPT(h, CURLOPT_PROTOCOLS_STR, "http");
    } else {
        const char *name = cfg->server_name ? cfg->server_name : cfg->host;
        AUTOFREE char *uname = url_host(name);
        AUTOFREE char *uhost = url_host(cfg->host);
        c->base_url = xasprintf("https://%s:%u", uname, (unsigned) cfg->port);
        c->target = xasprintf("'%s:%u'", cfg->host, (unsigned) cfg->port);
        if (strcmp(name, cfg->host) != 0) {
            /* Connect to 'host' but verify (and send SNI for) 'server_name'. */
            c->connect_to = xasprintf("%s:%u:%s:%u", uname, (unsigned) cfg->port, uhost,
                                      (unsigned) cfg->port);
            c->connect_to_list = curl_slist_append(NULL, c->connect_to);
            SETOPT(h, CURLOPT_CONNECT_TO, c->connect_to_list);
        }
        c->ca_file = xstrdup(cfg->ca_file);
        SETOPT(h, CURLOPT_PROTOCOLS_STR, "https");
        SETOPT(h, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
        SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
        SETOPT(h, CURLOPT_CAINFO, c->ca_file);
        SETOPT(h, CURLOPT_CAPATH, NULL);          /* the CA is pinned: no system store */
        if (cfg->crl_file) {                      /* revoked server certificates */
            c->crl_file = xstrdup(cfg->crl_file);
            SETOPT(h, CURLOPT_CRLFILE, c->crl_file);
        }
        if (cfg->cert_file) {
            c->cert_file = xstrdup(cfg->cert_file);
            c->key_file = xstrdup(cfg->key_file);
            SETOPT(h, CURLOPT_SSLCERT, c->cert_file);
            SETOPT(h, CURLOPT_SSLCERTTYPE, "PEM");
            SETOPT(h, CURLOPT_SSLKEY, c->key_file);
            SETOPT(h, CURLOPT_SSLKEYTYPE, "PEM");
        }
    }
    if (cfg->bearer_token && http_client_set_bearer_token(c, cfg->bearer_token, errp) < 0)
        goto fail;
    return c;

fail:
    http_client_free(c);
    return NULL;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->connect_to_list);
    free(c->connect_to);
    free(c->base_url);
    free(c->target);
    free(c->unix_path);
    free(c->ca_file);
    free(c->crl_file);
    free(c->cert_file);
    free(c->key_file);
    if (c->auth_header) {
        explicit_bzero(c->auth_header, strlen(c->auth_header));
        free(c->auth_header);
    }
    free(c);
}

int http_client_set_bearer_token(struct http_client *c, const char *token,
                                 struct error **errp)
{
    if (token) {
        if (!*token)
            return error_set(errp, ERR_INVALID_ARG, "bearer token is empty");
        for (const char *p = token; *p; p++)
            if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f)
                return error_set(errp, ERR_INVALID_ARG,
                                 "bearer token contains a character not allowed in a header");
    }
    if (c->auth_header) {
        explicit_bzero(c->auth_header, strlen(c->auth_header));
        free(c->auth_header);
    }
    c->auth_header = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
    return 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct reply_buf *b = opaque;
    size_t len = size * nmemb;
    if (b->len + len > b->max) {
        b->too_large = true;
        return 0;               /* makes libcurl fail with CURLE_WRITE_ERROR */
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

static bool path_is_valid(const char *path)
{
    if (!path || path[0] != '/')
        return false;
    for (const unsigned char *p = (const unsigned char *) path; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

/* Turns a 4xx/5xx reply into an error: the server's error body if it is
 * one, else the code of the status. */
static int reply_error(const struct http_client *c, const char *method, const char *path,
                       long status, const struct reply_buf *b, struct error **errp)
{
    if (b->len) {
        AUTOJSON json_t *j = json_loadb(b->data, b->len, 0, NULL);
        struct error *e = j ? error_from_json(j) : NULL;
        if (e) {
            error_propagate(errp, e);
            return -1;
        }
    }
    return error_set(errp, err_code_from_http_status((int) status),
                     "%s %s on %s: HTTP status %ld", method, path, c->target, status);
}

int http_client_request_raw(struct http_client *c, const char *method, const char *path,
                            const char *body, size_t body_len, const char *content_type,
                            long *status, char **reply, size_t *reply_len,
                            struct error **errp)
{
    if (status)
        *status = 0;
    if (reply)
        *reply = NULL;
    if (reply_len)
        *reply_len = 0;
    if (!method || !*method || strpbrk(method, " \r\n\t"))
        return error_set(errp, ERR_INVALID_ARG, "invalid HTTP method '%s'",
                         method ? method : "");
    if (!path_is_valid(path))
        return error_set(errp, ERR_INVALID_ARG,
                         "invalid request path '%s': must start with '/' and be escaped",
                         path ? path : "");

    CURL *h = c->curl;
    AUTOFREE char *url = xasprintf("%s%s", c->base_url, path);
    AUTOFREE char *ct = xasprintf("Content-Type: %s",
                                  content_type ? content_type : "application/json");
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    if (body)
        headers = curl_slist_append(headers, ct);
    if (c->auth_header)
        headers = curl_slist_append(headers, c->auth_header);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct reply_buf b = { .max = c->max_reply };
    int ret = -1;

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    } else if (body || strcmp(method, "GET") != 0) {
        /* POSTFIELDS makes libcurl send the body; CUSTOMREQUEST the method.
         * Without a body, POST/PUT still send "Content-Length: 0". */
        if (body || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
            !strcmp(method, "PATCH")) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (body ? body_len : 0));
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        } else {
            curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        }
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    }

    CURLcode rc = curl_easy_perform(h);
    long new_conns = 0;
    if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &new_conns) == CURLE_OK && new_conns > 0)
        c->connects += (unsigned long) new_conns;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(headers);

    if (rc != CURLE_OK) {
        const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
        if (b.too_large)
            error_set(errp, ERR_TOO_LARGE, "%s %s on %s: reply is larger than %zu bytes",
                      method, path, c->target, c->max_reply);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            error_set(errp, ERR_TIMEOUT, "%s %s on %s: %s", method, path, c->target, why);
        else
            error_set(errp, ERR_IO, "%s %s on %s: %s", method, path, c->target, why);
        goto cleanup;
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (status)
        *status = code;
    if (code >= 400) {
        reply_error(c, method, path, code, &b, errp);
        goto cleanup;
    }
    if (reply) {
        *reply = b.data ? b.data : xstrdup("");
        b.data = NULL;
    }
    if (reply_len)
        *reply_len = b.len;
    ret = 0;

cleanup:
    free(b.data);
    return ret;
}

unsigned long http_client_connect_count(const struct http_client *c)
{
    return c->connects;
}

int http_client_request(struct http_client *c, const char *method, const char *path,
                        const json_t *body, long *status, json_t **reply,
                        struct error **errp)
{
    if (reply)
        *reply = NULL;
    AUTOFREE char *text = body ? json_to_string(body) : NULL;
    AUTOFREE char *out = NULL;
    size_t out_len = 0;
    if (http_client_request_raw(c, method, path, text, text ? strlen(text) : 0, NULL, status,
                                &out, &out_len, errp) < 0)
        return -1;
    if (!reply || out_len == 0)
        return 0;
    AUTOERROR struct error *err = NULL;
    json_t *j = json_from_string(out, out_len, &err);
    if (!j)
        return error_set(errp, ERR_IO, "%s %s on %s: malformed JSON reply: %s", method, path,
                         c->target, err->message);
    *reply = j;
    return 0;
}
