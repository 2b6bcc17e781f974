/* cli.h - the `strata` command-line client: what its files share.
 *
 * A command runs in three stages, each in its own file:
 *   1. args.c parses the command line against the verb table (verbs.c) into
 *      a 'struct cli_args' — pure, so every refusal is unit-tested;
 *   2. a verb either *plans* one REST request (a pure function filling a
 *      'struct cli_request': method, escaped path, JSON body, how to show
 *      the answer), or *runs* itself when it needs several calls (login,
 *      console, event-list --follow, task-wait);
 *   3. client.c carries a plan out over src/http/http_client (unix socket or
 *      HTTPS with a pinned CA, bearer token), follows 202 tasks with a
 *      progress bar, and format.c turns JSON into tables and lines.
 * config.c reads the connection URL and the config file; main.c ties the
 * stages together and maps the final error to an exit status with
 * err_code_exit_code() (src/util/error.h: 2 usage, 3 not found, 4 conflict,
 * 5 unauthorized/forbidden, 1 other failures).
 *
 * Nothing here runs a shell or another program. */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "util/error.h"

struct cli_ctx;

/* ---- options and verbs (args.c, verbs.c) --------------------------------- */

enum cli_opt_kind { OPT_FLAG, OPT_VALUE, OPT_MULTI };

struct cli_optdef {
    const char *name;              /* without the leading "--" */
    enum cli_opt_kind kind;
};

#define CLI_MAX_POS 8
#define CLI_MAX_OPTS 64

/* One option as given.  Both strings are borrowed from argv (or the verb
 * table) and live as long as they do. */
struct cli_opt {
    const char *name;
    const char *value;             /* NULL for a flag */
};

struct cli_args {
    const struct cli_verb *verb;   /* NULL with --help and no verb */
    const char *pos[CLI_MAX_POS];
    size_t npos;
    struct cli_opt opts[CLI_MAX_OPTS];
    size_t nopts;
    /* Global options, accepted before or after the verb. */
    const char *connect;
    const char *ca;
    bool json;
    bool no_wait;
    bool help;
};

struct cli_request;

/* How a table column or a 'show' field reads its value from an object. */
enum cli_col_fmt {
    COL_TEXT,          /* strings as they are, numbers in decimal, null "-" */
    COL_BOOL,          /* yes / no */
    COL_BYTES,         /* an integer number of bytes, as 1.5G */
    COL_VM_MEMORY,     /* a VM definition's "memory": MiB integer or {"mib"} */
    COL_VM_VCPUS,      /* a VM definition's "vcpus": integer or {"count"} */
    COL_HOSTS,         /* an array of names or of {"host_name"|"name"} */
    COL_PERCENT,       /* an integer followed by % */
    COL_ERROR,         /* an error object's message: {"message"} or {"error": {"message"}} */
};

struct cli_col {
    const char *header;            /* NULL ends a list of columns */
    const char *key;               /* dotted path: "definition.memory" */
    enum cli_col_fmt fmt;
};

#define CLI_NEEDS_NO_AUTH 1u       /* version, login: no credentials needed */
#define CLI_NO_CONNECT 2u          /* never talks to the manager */

struct cli_verb {
    const char *name;
    const char *synopsis;          /* positional arguments, for help */
    unsigned min_pos, max_pos;
    const struct cli_optdef *opts; /* ends with { NULL } ; NULL for none */
    /* Exactly one of plan and run. */
    int (*plan)(const struct cli_args *a, struct cli_request *rq, struct error **errp);
    int (*run)(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);
    const char *route;             /* data for generic planners */
    const struct cli_col *cols;    /* table columns (lists) or fields (show) */
    const char *help;
    unsigned flags;
};

/* The verb table, sorted as `strata help` lists it; ends with { NULL }. */
extern const struct cli_verb cli_verbs[];
const struct cli_verb *cli_verb_find(const char *name);

/* Parses argv[1..argc-1].  A bad command line is ERR_INVALID_ARG (exit 2)
 * whose message says what is wrong; 'out' keeps borrowed pointers into argv. */
int cli_parse(int argc, char *const argv[], struct cli_args *out, struct error **errp);

/* The value of option 'name' (the last one given), or NULL. */
const char *cli_opt(const struct cli_args *a, const char *name);
bool cli_flag(const struct cli_args *a, const char *name);
/* Iterates a repeatable option: returns the next value after '*iter'
 * (start with 0), or NULL when there are no more. */
const char *cli_opt_next(const struct cli_args *a, const char *name, size_t *iter);

/* Parses a size: digits with an optional K/M/G/T suffix (binary: K = 1024,
 * optionally followed by "B" or "iB"); without a suffix the number counts
 * 'unit' bytes.  'what' names the value in the error. */
int cli_parse_size(const char *s, unsigned long long unit, const char *what,
                   unsigned long long *out, struct error **errp);
/* A memory size in whole MiB (a bare number counts MiB). */
int cli_parse_mib(const char *s, const char *what, unsigned long long *out,
                  struct error **errp);
/* A plain non-negative integer within [min, max]. */
int cli_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                   const char *what, unsigned long long *out, struct error **errp);
/* Object references (names or UUIDs) put in a URL: 1..64 characters of
 * [A-Za-z0-9._-] starting with a letter or digit.  'what' names it. */
int cli_check_name(const char *s, const char *what, struct error **errp);
int cli_check_uuid(const char *s, const char *what, struct error **errp);

/* ---- requests (verbs.c plans them, client.c carries them out) ------------ */

enum cli_rq_kind {
    RQ_LIST,           /* GET a list: --json or a table of 'cols' */
    RQ_SHOW,           /* GET one object: --json or "Field: value" lines */
    RQ_TASK,           /* answered 202 {"task": ...}: follow it (or --no-wait) */
    RQ_WRITE,          /* an immediate write: print 'done' or 'print_key' */
};

struct cli_request {
    const char *method;            /* static */
    char *path;                    /* owned: escaped, with its query */
    json_t *body;                  /* owned, or NULL */
    enum cli_rq_kind kind;
    const struct cli_col *cols;    /* borrowed */
    bool paged;                    /* RQ_LIST: fetch every page with limit/offset */
    bool only_active;              /* RQ_LIST of VMs without --all */
    char *label;                   /* RQ_TASK: "start web1" */
    char *done;                    /* RQ_WRITE: message for the human output */
    const char *print_key;         /* RQ_WRITE: print this field of the answer alone */
};

void cli_request_clear(struct cli_request *rq);

/* ---- formatting (format.c), all pure ------------------------------------- */

/* Returns a new string: 'bytes' as "0", "512", "1.0K", "1.5G", ... */
char *cli_fmt_bytes(unsigned long long bytes);
/* Returns a new string: the value 'col' selects from 'obj' ("-" if none). */
char *cli_cell(const json_t *obj, const struct cli_col *col);
/* Returns a new string: a table with a header line and one line per item of
 * the array 'items', columns padded to their widest cell (the last column
 * is not padded); "No entries." style output is the caller's business. */
char *cli_table(const struct cli_col *cols, const json_t *items);
/* Returns a new string: "Header:  value" lines for the fields of 'obj'. */
char *cli_kv(const struct cli_col *cols, const json_t *obj);
/* Returns a new string: one progress line,
 *   "start web1 [########............]  40% copy-disk"
 * with 'pct' clamped to 0..100, a bar 'width' cells wide, and 'detail'
 * (the current step, or the final state) when not NULL. */
char *cli_progress_line(const char *label, int pct, const char *detail, int width);
/* The name of a task's running step (else of its last step not pending),
 * or NULL.  Borrowed from 'task'. */
const char *cli_task_step(const json_t *task);
/* Is a task state final (succeeded, failed, cancelled)? */
bool cli_task_state_final(const char *state);

/* ---- connection and config (config.c) ------------------------------------ */

#define CLI_DEFAULT_URL "unix:/run/strata/manager.sock"

struct cli_url {
    char *unix_path;               /* unix:/path */
    char *host;                    /* https://host:port (brackets removed) */
    unsigned short port;
};

/* Parses "unix:/abs/path" or "https://host[:port][/]" (IPv6 as [addr]). */
int cli_url_parse(const char *url, struct cli_url *out, struct error **errp);
void cli_url_clear(struct cli_url *u);

struct cli_config {
    char *url;
    char *token;
    char *ca;
};

/* Parses the config file's "key=value" lines (url, token, ca; blank lines
 * and lines starting with '#' ignored).  An unknown key or a line without
 * '=' is ERR_INVALID_ARG naming the line. */
int cli_config_parse(const char *text, struct cli_config *cfg, struct error **errp);
/* Returns a new string: the file's text for 'cfg' (unset keys left out). */
char *cli_config_format(const struct cli_config *cfg);
void cli_config_clear(struct cli_config *cfg);
/* Returns a new string: $STRATA_CONFIG, else $XDG_CONFIG_HOME/strata/config,
 * else $HOME/.config/strata/config; NULL if none can be made. */
char *cli_config_path(void);
/* Loads 'path'; a missing file is an empty config. */
int cli_config_load(const char *path, struct cli_config *cfg, struct error **errp);
/* Writes 'path' (mode 0600, its directory made 0700) atomically. */
int cli_config_save(const char *path, const struct cli_config *cfg, struct error **errp);

/* ---- the session with the manager (client.c) ----------------------------- */

struct cli_ctx {
    struct http_client *http;
    const struct cli_args *args;
    char *url;                     /* resolved connection URL */
    char *ca;                      /* resolved CA file, or NULL */
    char *token;                   /* the bearer token in use, or NULL */
    char *config_path;
    bool session_login;            /* we logged in from STRATA_USER: log out at exit */
    bool tty;                      /* stderr is a terminal: redraw the bar */
    FILE *out;
};

/* Opens the connection for 'url' (and 'ca' for HTTPS). */
int cli_connect(struct cli_ctx *ctx, struct error **errp);
/* One request; '*reply' (optional) gets the body or NULL. */
int cli_call(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
             json_t **reply, struct error **errp);
/* Logs in: returns a new token string. */
char *cli_login(struct cli_ctx *ctx, const char *user, const char *password,
                json_t **reply, struct error **errp);
/* Carries out a planned request and prints its result. */
int cli_execute(struct cli_ctx *ctx, struct cli_request *rq, struct error **errp);
/* Follows a task (the object GET /api/v1/tasks/{id} returns) to its end,
 * drawing the bar; prints the final line (or the task as JSON with --json).
 * Returns 0 if it succeeded, else -1 with the task's own error. */
int cli_task_follow(struct cli_ctx *ctx, const json_t *task, const char *label,
                    struct error **errp);
/* Prints 'j' as indented JSON on ctx->out. */
void cli_print_json(struct cli_ctx *ctx, const json_t *j);

/* console --until: does 'needle' appear in the text read so far?  '*carry'
 * (a new string, start with "") keeps the last strlen(needle) - 1 bytes of
 * earlier reads so that a needle split across two reads is found; the
 * text may hold NUL bytes.  Pure. */
bool cli_console_match(char **carry, const char *text, size_t n, const char *needle);

/* Verbs that run themselves (run.c). */
int cli_run_console(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);
int cli_run_event_list(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);
int cli_run_task_wait(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);
int cli_run_login(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);
int cli_run_logout(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);
int cli_run_version(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);
int cli_run_host_join(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);
int cli_run_user_create(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);
int cli_run_create(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);
int cli_run_help(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp);

/* Builds the body of `strata create` from an optional JSON file's content
 * ('base', borrowed, may be NULL) and the flags: pure, for the tests.
 * Returns a new reference. */
json_t *cli_vm_spec(const struct cli_args *a, const json_t *base, struct error **errp);
/* Parses "key=value,key=value,flag" (--disk, --nic) into a disk or NIC spec
 * object; returns a new reference. */
json_t *cli_disk_spec(const char *s, struct error **errp);
json_t *cli_nic_spec(const char *s, struct error **errp);

/* Prints the usage of one verb (or of all with NULL) on 'f'. */
void cli_usage(FILE *f, const struct cli_verb *v);

#endif
