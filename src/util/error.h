/* error.h - errors reported once, where detected, and carried up as values.
 *
 * A function that can fail takes 'struct error **errp' last and returns -1 (or
 * NULL) after calling error_set(); callers either pass the error up untouched or
 * add context with error_prefix() ("starting VM 'web1': ...").  Nobody logs an
 * error they pass up; whoever finally consumes it (the REST layer, the CLI, a
 * task) reports it once.  'errp' may be NULL when the caller does not care.
 *
 * One table maps each code to its name, an HTTP status and a CLI exit code;
 * error_to_json() builds the single REST error body:
 *   {"error": {"code": "invalid-argument", "message": "...", "field": "..."}} */
#ifndef STRATA_ERROR_H
#define STRATA_ERROR_H

#include <jansson.h>

enum err_code {
    ERR_INTERNAL,       /* a bug or an unexpected system failure */
    ERR_INVALID_ARG,    /* bad input: names the field */
    ERR_NOT_FOUND,
    ERR_CONFLICT,       /* already exists / duplicate */
    ERR_BAD_STATE,      /* operation not valid in the object's current state */
    ERR_IO,             /* file system or socket failure */
    ERR_QEMU,           /* QEMU or qemu-img reported a failure */
    ERR_TIMEOUT,
    ERR_UNAUTHORIZED,   /* no or bad credentials */
    ERR_FORBIDDEN,      /* authenticated but not allowed */
    ERR_UNSUPPORTED,    /* the host or build cannot do this */
    ERR_NO_SPACE,
    ERR_TOO_LARGE,      /* request body or value over a limit */
    ERR__COUNT
};

struct error {
    enum err_code code;
    char *field;        /* JSON path of the offending input field, or NULL */
    char *message;
};

/* Sets '*errp' (when errp is not NULL and *errp is still NULL) and returns -1. */
int error_set(struct error **errp, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, naming the input field the error is about. */
int error_set_field(struct error **errp, enum err_code code, const char *field,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Same with strerror(errnum) appended as ": <text>". */
int error_set_errno(struct error **errp, enum err_code code, int errnum,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Prepends "<context>: " to the message of '*errp' if set. */
void error_prefix(struct error **errp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Moves 'src' into '*dst' (if *dst unset), else frees it. */
void error_propagate(struct error **dst, struct error *src);
void error_free(struct error *err);  /* Accepts NULL. */
static inline void autoerror_impl(struct error **e) { error_free(*e); }
#define AUTOERROR __attribute__((cleanup(autoerror_impl)))

const char *err_code_to_string(enum err_code code);
int err_code_from_string(const char *s);   /* -1 if unknown */
int err_code_http_status(enum err_code code);
int err_code_exit_code(enum err_code code);
enum err_code err_code_from_http_status(int status);

/* Returns a new JSON body {"error": {...}}; the caller owns the reference. */
json_t *error_to_json(const struct error *err);
/* Parses a body made by error_to_json(); returns NULL if it is not one. */
struct error *error_from_json(const json_t *body);

#endif
