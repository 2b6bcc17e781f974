/* error.c - see error.h. */
#include "util/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/mem.h"

static const struct {
    const char *name;
    int http;
    int exit_code;   /* CLI: 2 usage, 3 not found, 4 conflict/state, 1 failure */
} err_table[ERR__COUNT] = {
    [ERR_INTERNAL]     = { "internal-error",   500, 1 },
    [ERR_INVALID_ARG]  = { "invalid-argument", 400, 2 },
    [ERR_NOT_FOUND]    = { "not-found",        404, 3 },
    [ERR_CONFLICT]     = { "conflict",         409, 4 },
    [ERR_BAD_STATE]    = { "bad-state",        409, 4 },
    [ERR_IO]           = { "io-error",         500, 1 },
    [ERR_QEMU]         = { "qemu-error",       500, 1 },
    [ERR_TIMEOUT]      = { "timeout",          504, 1 },
    [ERR_UNAUTHORIZED] = { "unauthorized",     401, 5 },
    [ERR_FORBIDDEN]    = { "forbidden",        403, 5 },
    [ERR_UNSUPPORTED]  = { "unsupported",      501, 1 },
    [ERR_NO_SPACE]     = { "no-space",         507, 1 },
    [ERR_TOO_LARGE]    = { "too-large",        413, 2 },
};

static int error_vset(struct error **errp, enum err_code code, const char *field,
                      const char *suffix, const char *fmt, va_list ap)
{
    if (!errp || *errp)
        return -1;
    struct error *e = xzalloc(sizeof *e);
    e->code = code;
    e->field = xstrdup(field);
    char *msg = xvasprintf(fmt, ap);
    if (suffix) {
        e->message = xasprintf("%s: %s", msg, suffix);
        free(msg);
    } else {
        e->message = msg;
    }
    *errp = e;
    return -1;
}

int error_set(struct error **errp, enum err_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(errp, code, NULL, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

int error_set_field(struct error **errp, enum err_code code, const char *field,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(errp, code, field, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

int error_set_errno(struct error **errp, enum err_code code, int errnum,
                    const char *fmt, ...)
{
    char buf[256];
    const char *s = strerror_r(errnum, buf, sizeof buf);
    va_list ap;
    va_start(ap, fmt);
    error_vset(errp, code, NULL, s, fmt, ap);
    va_end(ap);
    return -1;
}

void error_prefix(struct error **errp, const char *fmt, ...)
{
    if (!errp || !*errp)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *ctx = xvasprintf(fmt, ap);
    va_end(ap);
    char *m = xasprintf("%s: %s", ctx, (*errp)->message);
    free(ctx);
    free((*errp)->message);
    (*errp)->message = m;
}

void error_propagate(struct error **dst, struct error *src)
{
    if (dst && !*dst)
        *dst = src;
    else
        error_free(src);
}

void error_free(struct error *err)
{
    if (!err)
        return;
    free(err->field);
    free(err->message);
    free(err);
}

const char *err_code_to_string(enum err_code code)
{
    return (unsigned) code < ERR__COUNT ? err_table[code].name : "internal-error";
}

int err_code_from_string(const char *s)
{
    for (int i = 0; s && i < ERR__COUNT; i++)
        if (!strcmp(err_table[i].name, s))
            return i;
    return -1;
}

int err_code_http_status(enum err_code code)
{
    return (unsigned) code < ERR__COUNT ? err_table[code].http : 500;
}

int err_code_exit_code(enum err_code code)
{
    return (unsigned) code < ERR__COUNT ? err_table[code].exit_code : 1;
}

enum err_code err_code_from_http_status(int status)
{
    for (int i = 0; i < ERR__COUNT; i++)
        if (err_table[i].http == status)
            return (enum err_code) i;
    return ERR_INTERNAL;
}

json_t *error_to_json(const struct error *err)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(err_code_to_string(err->code)));
    json_object_set_new(e, "message", json_string(err->message ? err->message : ""));
    if (err->field)
        json_object_set_new(e, "field", json_string(err->field));
    json_t *body = json_object();
    json_object_set_new(body, "error", e);
    return body;
}

struct error *error_from_json(const json_t *body)
{
    json_t *e = json_object_get(body, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!code || !msg)
        return NULL;
    int c = err_code_from_string(code);
    struct error *err = xzalloc(sizeof *err);
    err->code = c < 0 ? ERR_INTERNAL : (enum err_code) c;
    err->message = xstrdup(msg);
    err->field = xstrdup(json_string_value(json_object_get(e, "field")));
    return err;
}
