/* run.c - the verbs of `strata` that make more than one request or read
 * local input: console (poll the serial console, --follow, --until TEXT),
 * event-list (--follow with the long poll), task-wait, login/logout (the
 * config file), user-create (a password never on the command line),
 * create (a JSON file and flags), version and help.
 *
 * Neighbours: cli.h, client.c (requests, task following), verbs.c (the
 * table that points here), config.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "http/http_client.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"
#include "util/uuid.h"

#ifndef STRATA_VERSION
#define STRATA_VERSION "unknown"
#endif

#define CONSOLE_POLL_MS 200
#define EVENT_WAIT_MS 30000
#define PASSWORD_MAX 1024

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- console ------------------------------------------------------------- */

bool cli_console_match(char **carry, const char *text, size_t n, const char *needle)
{
    size_t ulen = strlen(needle), cl = strlen(*carry);
    AUTOFREE char *hay = xmalloc(cl + n + 1);
    memcpy(hay, *carry, cl);
    if (n)
        memcpy(hay + cl, text, n);
    hay[cl + n] = '\0';
    if (ulen == 0 || memmem(hay, cl + n, needle, ulen))
        return true;
    size_t keep = cl + n < ulen - 1 ? cl + n : ulen - 1;
    free(*carry);
    *carry = xstrndup(hay + cl + n - keep, keep);
    return false;
}

int cli_run_console(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    const char *vm = a->pos[0];
    const char *until = cli_opt(a, "until");
    bool follow = cli_flag(a, "follow") || until;
    unsigned long long offset = 0, timeout_s = 0;
    if (cli_check_name(vm, "VM", errp) < 0 ||
        (cli_opt(a, "offset") &&
         cli_parse_uint(cli_opt(a, "offset"), 0, 1ULL << 53, "--offset", &offset, errp) < 0) ||
        (cli_opt(a, "timeout") &&
         cli_parse_uint(cli_opt(a, "timeout"), 1, 7 * 86400, "--timeout", &timeout_s,
                        errp) < 0))
        return -1;
    long long deadline = timeout_s ? now_ms() + (long long) timeout_s * 1000 : 0;
    AUTOFREE char *esc = http_client_escape(vm);
    AUTOFREE char *carry = xstrdup("");
    for (;;) {
        AUTOFREE char *path = xasprintf("/api/v1/vms/%s/console?offset=%llu", esc, offset);
        AUTOJSON json_t *r = NULL;
        if (cli_call(ctx, "GET", path, NULL, &r, errp) < 0)
            return -1;
        json_t *text = json_object_get(r, "text");
        const char *s = json_string_value(text);
        size_t n = s ? json_string_length(text) : 0;
        if (n) {
            fwrite(s, 1, n, ctx->out);
            fflush(ctx->out);
        }
        json_t *next = json_object_get(r, "next");
        if (json_is_integer(next) && json_integer_value(next) >= 0)
            offset = (unsigned long long) json_integer_value(next);
        else
            offset += n;
        if (until && cli_console_match(&carry, s, n, until))
            return 0;
        json_t *size = json_object_get(r, "size");
        bool more = n && json_is_integer(size) && json_integer_value(size) > (json_int_t) offset;
        if (!follow && !more)
            return 0;
        if (!follow)
            continue;           /* the answer was capped: read the rest */
        if (deadline && now_ms() >= deadline) {
            if (until)
                return error_set(errp, ERR_TIMEOUT,
                                 "'%s' did not appear on the console of VM '%s' within %llu s",
                                 until, vm, timeout_s);
            return 0;
        }
        if (!more)
            sleep_ms(CONSOLE_POLL_MS);
    }
}

/* ---- events -------------------------------------------------------------- */

static const struct cli_col event_cols[] = {
    { "SEQ", "seq", COL_TEXT }, { "TIME", "at", COL_TEXT },
    { "SEVERITY", "severity", COL_TEXT }, { "TYPE", "type", COL_TEXT },
    { "OBJECT", "object_name", COL_TEXT }, { "MESSAGE", "message", COL_TEXT },
    { NULL, NULL, 0 },
};

static char *event_query(const struct cli_args *a, long long since, int limit, int wait_ms)
{
    static const char *const keys[] = { "type", "severity", "object", "task", NULL };
    char *q = xasprintf("/api/v1/events?since=%lld&limit=%d", since, limit);
    if (wait_ms) {
        char *n = xasprintf("%s&wait_ms=%d", q, wait_ms);
        free(q);
        q = n;
    }
    for (size_t i = 0; keys[i]; i++) {
        const char *v = cli_opt(a, keys[i]);
        if (!v)
            continue;
        AUTOFREE char *e = http_client_escape(v);
        char *n = xasprintf("%s&%s=%s", q, keys[i], e);
        free(q);
        q = n;
    }
    return q;
}

static void event_line(struct cli_ctx *ctx, const json_t *ev)
{
    if (ctx->args->json) {
        json_dumpf(ev, ctx->out, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', ctx->out);
    } else {
        for (size_t c = 0; event_cols[c].header; c++) {
            AUTOFREE char *t = cli_cell(ev, &event_cols[c]);
            fprintf(ctx->out, "%s%s", c ? "  " : "", t);
        }
        fputc('\n', ctx->out);
    }
    fflush(ctx->out);
}

int cli_run_event_list(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    unsigned long long limit = 20, since_opt = 0;
    bool have_since = cli_opt(a, "since") != NULL;
    if ((cli_opt(a, "limit") &&
         cli_parse_uint(cli_opt(a, "limit"), 1, 1000, "--limit", &limit, errp) < 0) ||
        (have_since &&
         cli_parse_uint(cli_opt(a, "since"), 0, 1ULL << 62, "--since", &since_opt, errp) < 0) ||
        (cli_opt(a, "task") && cli_check_uuid(cli_opt(a, "task"), "--task", errp) < 0))
        return -1;
    bool filtered = cli_opt(a, "type") || cli_opt(a, "severity") || cli_opt(a, "object") ||
                    cli_opt(a, "task");
    long long since = (long long) since_opt, last = 0;
    if (!have_since) {
        /* The newest sequence number, to start near the end. */
        AUTOFREE char *q = event_query(a, 0, 1, 0);
        AUTOJSON json_t *r = NULL;
        if (cli_call(ctx, "GET", q, NULL, &r, errp) < 0)
            return -1;
        last = json_integer_value(json_object_get(r, "last"));
        since = filtered || last < (long long) limit ? 0 : last - (long long) limit;
    }
    /* Page forward to the end, keeping the newest 'limit' events (all of
     * them with --since). */
    AUTOJSON json_t *items = json_array();
    for (;;) {
        AUTOFREE char *q = event_query(a, since, 1000, 0);
        AUTOJSON json_t *r = NULL;
        if (cli_call(ctx, "GET", q, NULL, &r, errp) < 0)
            return -1;
        json_t *page = json_object_get(r, "items");
        json_array_extend(items, page);
        if (have_since) {
            while (json_array_size(items) > limit)
                json_array_remove(items, json_array_size(items) - 1);
        } else {
            while (json_array_size(items) > limit)
                json_array_remove(items, 0);
        }
        long long next = json_integer_value(json_object_get(r, "next"));
        last = json_integer_value(json_object_get(r, "last"));
        if (next > since)
            since = next;
        if (json_array_size(page) < 1000 || (have_since && json_array_size(items) >= limit))
            break;
    }
    size_t n_items = json_array_size(items);
    if (n_items)
        since = json_integer_value(json_object_get(json_array_get(items, n_items - 1), "seq"));
    if (!cli_flag(a, "follow")) {
        if (ctx->args->json) {
            AUTOJSON json_t *out = json_pack("{s:O, s:I, s:I}", "items", items, "next",
                                             (json_int_t) since, "last", (json_int_t) last);
            cli_print_json(ctx, out);
        } else {
            AUTOFREE char *t = cli_table(event_cols, items);
            fputs(t, ctx->out);
        }
        return 0;
    }
    size_t i;
    json_t *ev;
    json_array_foreach(items, i, ev)
        event_line(ctx, ev);
    for (;;) {
        AUTOFREE char *q = event_query(a, since, 1000, EVENT_WAIT_MS);
        AUTOJSON json_t *r = NULL;
        if (cli_call(ctx, "GET", q, NULL, &r, errp) < 0)
            return -1;
        json_array_foreach(json_object_get(r, "items"), i, ev)
            event_line(ctx, ev);
        long long next = json_integer_value(json_object_get(r, "next"));
        if (next > since)
            since = next;
    }
}

/* ---- tasks --------------------------------------------------------------- */

int cli_run_task_wait(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    if (cli_check_uuid(a->pos[0], "task id", errp) < 0)
        return -1;
    AUTOFREE char *path = xasprintf("/api/v1/tasks/%s", a->pos[0]);
    AUTOJSON json_t *task = NULL;
    if (cli_call(ctx, "GET", path, NULL, &task, errp) < 0)
        return -1;
    return cli_task_follow(ctx, task, NULL, errp);
}

/* ---- passwords ----------------------------------------------------------- */

static char *chomp(char *s)
{
    s[strcspn(s, "\r\n")] = '\0';
    return s;
}

static char *prompt_tty(const char *prompt, struct error **errp)
{
    FILE *tty = fopen("/dev/tty", "r+e");
    if (!tty)
        return error_set(errp, ERR_INVALID_ARG, "no password given and no terminal to ask "
                         "for one (--password-stdin or --password-file)"), NULL;
    struct termios old, quiet;
    bool restore = tcgetattr(fileno(tty), &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t) ECHO;
        tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
    }
    fputs(prompt, tty);
    fflush(tty);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, tty);
    if (restore)
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    if (n < 0) {
        free(line);
        return error_set(errp, ERR_INVALID_ARG, "no password given"), NULL;
    }
    return chomp(line);
}

/* The password from --password-file, --password-stdin, the environment
 * variable 'env' (may be NULL) or the terminal, in that order. */
static char *read_password(const struct cli_args *a, const char *env, const char *prompt,
                           bool confirm, struct error **errp)
{
    const char *file = cli_opt(a, "password-file");
    char *pw = NULL;
    if (file && cli_flag(a, "password-stdin"))
        return error_set(errp, ERR_INVALID_ARG, "--password-file and --password-stdin "
                         "exclude each other"), NULL;
    if (file) {
        pw = file_read_all(file, PASSWORD_MAX + 2, NULL, errp);
        if (!pw)
            return error_prefix(errp, "reading the password"), NULL;
        chomp(pw);
    } else if (cli_flag(a, "password-stdin")) {
        size_t cap = 0;
        if (getline(&pw, &cap, stdin) < 0) {
            free(pw);
            return error_set(errp, ERR_INVALID_ARG, "no password on standard input"), NULL;
        }
        chomp(pw);
    } else if (env && getenv(env)) {
        pw = xstrdup(getenv(env));
    } else {
        pw = prompt_tty(prompt, errp);
        if (pw && confirm) {
            AUTOFREE char *again = prompt_tty("Again: ", errp);
            if (!again || strcmp(again, pw)) {
                free(pw);
                return again ? error_set(errp, ERR_INVALID_ARG, "the passwords differ"), NULL
                             : NULL;
            }
        }
    }
    if (pw && !*pw) {
        free(pw);
        return error_set(errp, ERR_INVALID_ARG, "the password is empty"), NULL;
    }
    return pw;
}

/* ---- login, logout ------------------------------------------------------- */

int cli_run_login(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    const char *user = a->npos ? a->pos[0] : getenv("STRATA_USER");
    if (!user || !*user)
        return error_set(errp, ERR_INVALID_ARG, "login: give a USER (or set STRATA_USER)");
    if (cli_check_name(user, "user", errp) < 0)
        return -1;
    if (!ctx->config_path)
        return error_set(errp, ERR_INVALID_ARG, "login: no config file path (set STRATA_CONFIG "
                         "or HOME)");
    AUTOFREE char *prompt = xasprintf("Password for '%s': ", user);
    AUTOFREE char *pw = read_password(a, "STRATA_PASSWORD", prompt, false, errp);
    if (!pw)
        return -1;
    AUTOJSON json_t *reply = NULL;
    AUTOFREE char *tok = cli_login(ctx, user, pw, &reply, errp);
    if (!tok)
        return -1;
    struct cli_config cfg = { .url = ctx->url, .token = tok, .ca = ctx->ca };
    if (cli_config_save(ctx->config_path, &cfg, errp) < 0)
        return -1;
    if (ctx->args->json) {
        json_object_del(reply, "token");   /* the secret stays in the file */
        cli_print_json(ctx, reply);
    } else {
        const char *role = json_string_value(json_object_get(json_object_get(reply, "user"),
                                                             "role"));
        fprintf(ctx->out, "logged in as '%s' (%s) to %s; session saved in %s\n", user,
                role ? role : "?", ctx->url, ctx->config_path);
    }
    return 0;
}

int cli_run_logout(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    (void) a;
    struct cli_config cfg = { 0 };
    if (ctx->config_path && cli_config_load(ctx->config_path, &cfg, errp) < 0)
        return -1;
    if (!ctx->token) {
        cli_config_clear(&cfg);
        fprintf(ctx->out, "not logged in\n");
        return 0;
    }
    AUTOERROR struct error *err = NULL;
    if (cli_call(ctx, "DELETE", "/api/v1/sessions/current", NULL, NULL, &err) < 0 &&
        err->code != ERR_UNAUTHORIZED) {
        cli_config_clear(&cfg);
        error_propagate(errp, steal_pointer(&err));
        return -1;
    }
    int rc = 0;
    if (cfg.token && !strcmp(cfg.token, ctx->token)) {
        free(cfg.token);
        cfg.token = NULL;
        rc = cli_config_save(ctx->config_path, &cfg, errp);
    }
    cli_config_clear(&cfg);
    if (rc == 0)
        fprintf(ctx->out, "logged out\n");
    return rc;
}

/* ---- users --------------------------------------------------------------- */

int cli_run_user_create(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    static const char *const roles[] = { "viewer", "operator", "administrator", NULL };
    const char *role = cli_opt(a, "role");
    if (cli_check_name(a->pos[0], "user", errp) < 0)
        return -1;
    if (!role)
        return error_set(errp, ERR_INVALID_ARG,
                         "user-create: --role viewer|operator|administrator is required");
    bool known = false;
    for (size_t i = 0; roles[i]; i++)
        known |= !strcmp(roles[i], role);
    if (!known)
        return error_set(errp, ERR_INVALID_ARG,
                         "--role '%s' must be viewer, operator or administrator", role);
    AUTOFREE char *prompt = xasprintf("Password for the new user '%s': ", a->pos[0]);
    AUTOFREE char *pw = read_password(a, NULL, prompt, true, errp);
    if (!pw)
        return -1;
    struct cli_request rq = {
        .method = "POST", .kind = RQ_WRITE, .path = xstrdup("/api/v1/users"),
        .body = json_pack("{s:s, s:s, s:s}", "name", a->pos[0], "password", pw, "role", role),
        .done = xasprintf("user '%s' created (%s)", a->pos[0], role),
    };
    int rc = cli_execute(ctx, &rq, errp);
    cli_request_clear(&rq);
    return rc;
}

/* ---- create -------------------------------------------------------------- */

int cli_run_create(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    AUTOJSON json_t *base = NULL;
    if (a->npos) {
        AUTOFREE char *text = file_read_all(a->pos[0], 1 << 20, NULL, errp);
        if (!text) {
            error_prefix(errp, "create");
            if (*errp && (*errp)->code == ERR_NOT_FOUND)
                (*errp)->code = ERR_INVALID_ARG;   /* a missing input file is a usage error */
            return -1;
        }
        base = json_from_string(text, strlen(text), errp);
        if (!base) {
            error_prefix(errp, "create: '%s'", a->pos[0]);
            return -1;
        }
    }
    json_t *spec = cli_vm_spec(a, base, errp);
    if (!spec)
        return -1;
    struct cli_request rq = {
        .method = "POST", .kind = RQ_TASK, .path = xstrdup("/api/v1/vms"), .body = spec,
        .label = xasprintf("create %s", json_string_value(json_object_get(spec, "name"))),
    };
    int rc = cli_execute(ctx, &rq, errp);
    cli_request_clear(&rq);
    return rc;
}

/* ---- version, help ------------------------------------------------------- */

int cli_run_version(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    AUTOJSON json_t *r = NULL;
    if (!a->json)
        fprintf(ctx->out, "client: strata %s\n", STRATA_VERSION);
    if (cli_call(ctx, "GET", "/api/v1/version", NULL, &r, errp) < 0)
        return -1;
    if (a->json) {
        json_object_set_new(r, "client_version", json_string(STRATA_VERSION));
        cli_print_json(ctx, r);
        return 0;
    }
    fprintf(ctx->out, "server: %s %s (API %s) at %s\n",
            json_string_value(json_object_get(r, "service")) ?: "?",
            json_string_value(json_object_get(r, "version")) ?: "?",
            json_string_value(json_object_get(r, "api")) ?: "?", ctx->url);
    return 0;
}

/* host-join NAME --token T --address A [--port P] [--dir DIR]: joins this
 * host and writes what its agent needs to DIR (default "."): agent.pem,
 * agent-key.pem (0600), ca.pem; prints the agent's TLS options.  The join
 * token is the credential: no login needed. */
int cli_run_host_join(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    const char *token = cli_opt(a, "token"), *address = cli_opt(a, "address");
    const char *dir = cli_opt(a, "dir") ? cli_opt(a, "dir") : ".";
    unsigned long long port = 16509;
    if (!token || !address)
        return error_set(errp, ERR_INVALID_ARG, "host-join: --token and --address are required");
    if (cli_check_name(a->pos[0], "host", errp) < 0 ||
        (cli_opt(a, "port") &&
         cli_parse_uint(cli_opt(a, "port"), 1, 65535, "--port", &port, errp) < 0) ||
        mkdir_p(dir, 0700, errp) < 0)
        return -1;
    AUTOJSON json_t *body = json_pack("{s:s, s:s, s:s, s:I}", "token", token, "name", a->pos[0],
                                      "address", address, "port", (json_int_t) port);
    AUTOJSON json_t *r = NULL;
    if (cli_call(ctx, "POST", "/api/v1/hosts", body, &r, errp) < 0)
        return -1;
    static const struct { const char *key, *file; int mode; } files[] = {
        { "cert_pem", "agent.pem", 0644 },
        { "key_pem", "agent-key.pem", 0600 },
        { "ca_pem", "ca.pem", 0644 },
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        const char *pem = json_string_value(json_object_get(r, files[i].key));
        if (!pem)
            return error_set(errp, ERR_IO, "the manager's answer has no %s", files[i].key);
        AUTOFREE char *path = xasprintf("%s/%s", dir, files[i].file);
        if (file_write_atomic(path, pem, strlen(pem), files[i].mode, errp) < 0)
            return -1;
    }
    if (a->json) {
        json_object_del(r, "key_pem");      /* written to the file, not printed */
        cli_print_json(ctx, r);
        return 0;
    }
    fprintf(ctx->out, "host '%s' joined; start its agent with:\n"
            "  --listen %s:%llu --tls-cert %s/agent.pem --tls-key %s/agent-key.pem"
            " --tls-ca %s/ca.pem --tls-peer-cn %s\n",
            a->pos[0], address, port, dir, dir, dir,
            json_string_value(json_object_get(r, "manager_cn")) ?: "strata-manager");
    return 0;
}

int cli_run_help(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    if (a->npos) {
        const struct cli_verb *v = cli_verb_find(a->pos[0]);
        if (!v)
            return error_set(errp, ERR_INVALID_ARG, "unknown command '%s'", a->pos[0]);
        cli_usage(ctx->out, v);
        return 0;
    }
    cli_usage(ctx->out, NULL);
    return 0;
}
