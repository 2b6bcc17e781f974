/* client.c - `strata` talking to the manager: the connection (unix socket or
 * HTTPS with the CA pinned, through src/http/http_client), login, carrying
 * out a planned request (lists fetched page by page, objects, writes) and
 * following a long operation's task to its end with a progress bar.
 *
 * The bar is redrawn with '\r' on stderr only when stderr is a terminal;
 * otherwise nothing is printed until the task ends, and then one final line
 * on stdout ("start web1 [####...] 100% succeeded").  The command's error,
 * and so its exit status, is the task's own error when it failed.
 *
 * Neighbours: cli.h, format.c (what is printed), verbs.c (the plans),
 * run.c (verbs that run themselves), main.c. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "http/http_client.h"
#include "util/json_util.h"
#include "util/mem.h"
#include "util/uuid.h"

#define PAGE_LIMIT 1000
#define BAR_WIDTH 30

void cli_request_clear(struct cli_request *rq)
{
    free(rq->path);
    json_decref(rq->body);
    free(rq->label);
    free(rq->done);
    memset(rq, 0, sizeof *rq);
}

int cli_connect(struct cli_ctx *ctx, struct error **errp)
{
    struct cli_url u;
    if (cli_url_parse(ctx->url, &u, errp) < 0)
        return -1;
    if (u.host && !ctx->ca) {
        cli_url_clear(&u);
        return error_set(errp, ERR_INVALID_ARG,
                         "connecting to '%s' needs the manager's CA: --ca FILE or STRATA_CA",
                         ctx->url);
    }
    struct http_client_config cfg = {
        .unix_path = u.unix_path, .host = u.host, .port = u.port,
        .ca_file = u.host ? ctx->ca : NULL,
        .timeout_ms = 120000,
        .max_reply = 64u << 20,
    };
    ctx->http = http_client_new(&cfg, errp);
    cli_url_clear(&u);
    if (!ctx->http)
        return -1;
    if (ctx->token && http_client_set_bearer_token(ctx->http, ctx->token, errp) < 0)
        return -1;
    return 0;
}

int cli_call(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
             json_t **reply, struct error **errp)
{
    if (reply)
        *reply = NULL;
    return http_client_request(ctx->http, method, path, body, NULL, reply, errp);
}

char *cli_login(struct cli_ctx *ctx, const char *user, const char *password, json_t **reply,
                struct error **errp)
{
    AUTOJSON json_t *body = json_pack("{s:s, s:s}", "name", user, "password", password);
    AUTOJSON json_t *r = NULL;
    if (cli_call(ctx, "POST", "/api/v1/sessions", body, &r, errp) < 0) {
        error_prefix(errp, "logging in as '%s'", user);
        return NULL;
    }
    const char *tok = json_string_value(json_object_get(r, "token"));
    if (!tok)
        return error_set(errp, ERR_INTERNAL, "the login answer carries no token"), NULL;
    char *t = xstrdup(tok);
    if (reply)
        *reply = steal_pointer(&r);
    return t;
}

void cli_print_json(struct cli_ctx *ctx, const json_t *j)
{
    json_dumpf(j, ctx->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', ctx->out);
    fflush(ctx->out);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int cli_task_follow(struct cli_ctx *ctx, const json_t *task, const char *label,
                    struct error **errp)
{
    const char *id = json_string_value(json_object_get(task, "id"));
    if (!id || !uuid_is_valid(id))
        return error_set(errp, ERR_INTERNAL, "the manager's answer carries no task id");
    AUTOFREE char *path = xasprintf("/api/v1/tasks/%s", id);
    AUTOFREE char *tid = xstrdup(id);
    AUTOFREE char *deflabel = NULL;
    if (!label) {
        const char *kind = json_string_value(json_object_get(task, "kind"));
        label = deflabel = xstrdup(kind ? kind : "task");
    }
    AUTOJSON json_t *cur = json_deep_copy(task);
    long delay = 100;
    bool drawn = false;
    for (;;) {
        const char *state = json_string_value(json_object_get(cur, "state"));
        if (cli_task_state_final(state))
            break;
        if (ctx->tty) {
            int pct = (int) json_integer_value(json_object_get(cur, "progress"));
            const char *step = cli_task_step(cur);
            AUTOFREE char *line = cli_progress_line(label, pct, step ? step : state, BAR_WIDTH);
            fprintf(stderr, "\r%s\033[K", line);
            fflush(stderr);
            drawn = true;
        }
        sleep_ms(delay);
        if (delay < 500)
            delay += 100;
        json_t *next = NULL;
        if (cli_call(ctx, "GET", path, NULL, &next, errp) < 0) {
            if (drawn)
                fputc('\n', stderr);
            error_prefix(errp, "following task '%s'", tid);
            return -1;
        }
        json_decref(cur);
        cur = next;
        if (!json_is_object(cur))
            return error_set(errp, ERR_INTERNAL, "task '%s': the manager answered no object",
                             tid);
    }
    if (drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    const char *state = json_string_value(json_object_get(cur, "state"));
    if (ctx->args && ctx->args->json) {
        cli_print_json(ctx, cur);
    } else {
        int pct = (int) json_integer_value(json_object_get(cur, "progress"));
        AUTOFREE char *line = cli_progress_line(label, pct, state, BAR_WIDTH);
        fprintf(ctx->out, "%s\n", line);
        fflush(ctx->out);
    }
    if (!strcmp(state, "succeeded"))
        return 0;
    if (!strcmp(state, "cancelled"))
        return error_set(errp, ERR_INTERNAL, "%s: task '%s' was cancelled", label, tid);
    struct error *e = error_from_json(json_object_get(cur, "error"));
    if (!e)
        e = error_from_json(cur);   /* tolerate {"error": {"code", "message"}} at the top */
    if (!e)
        return error_set(errp, ERR_INTERNAL, "%s: task '%s' failed", label, tid);
    error_propagate(errp, e);
    error_prefix(errp, "%s", label);
    return -1;
}

/* Is a VM shown by `list` without --all?  Stopped and hibernated are not. */
static bool vm_active(const json_t *vm)
{
    const char *st = json_string_value(json_object_get(vm, "state"));
    return !st || (strcmp(st, "stopped") && strcmp(st, "hibernated"));
}

static int execute_list(struct cli_ctx *ctx, struct cli_request *rq, struct error **errp)
{
    AUTOJSON json_t *first = NULL;
    json_t *items = NULL;
    size_t offset = 0;
    for (;;) {
        AUTOFREE char *path = rq->paged
            ? xasprintf("%s%climit=%d&offset=%zu", rq->path, strchr(rq->path, '?') ? '&' : '?',
                        PAGE_LIMIT, offset)
            : xstrdup(rq->path);
        AUTOJSON json_t *r = NULL;
        if (cli_call(ctx, "GET", path, NULL, &r, errp) < 0)
            return -1;
        json_t *page = json_is_array(r) ? r : json_object_get(r, "items");
        if (!json_is_array(page))
            return error_set(errp, ERR_INTERNAL, "'%s': the answer has no 'items' list",
                             rq->path);
        if (!first) {
            first = json_incref(r);
            items = page;
        } else {
            json_array_extend(items, page);
        }
        offset += json_array_size(page);
        json_t *total = json_object_get(r, "total");
        if (!rq->paged || json_array_size(page) == 0 || !json_is_integer(total) ||
            offset >= (size_t) json_integer_value(total))
            break;
    }
    if (rq->only_active) {
        json_t *kept = json_array();
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
            if (vm_active(it))
                json_array_append(kept, it);
        if (json_is_object(first)) {
            json_object_set_new(first, "items", kept);
            json_object_set_new(first, "total", json_integer((json_int_t) json_array_size(kept)));
            items = kept;
        } else {
            json_decref(first);
            first = items = kept;
        }
    }
    if (ctx->args->json) {
        cli_print_json(ctx, first);
        return 0;
    }
    AUTOFREE char *t = cli_table(rq->cols, items);
    fputs(t, ctx->out);
    return 0;
}

static void print_steps(struct cli_ctx *ctx, const json_t *steps)
{
    if (!json_is_array(steps) || json_array_size(steps) == 0)
        return;
    static const struct cli_col cols[] = {
        { "STEP", "name", COL_TEXT }, { "STATE", "state", COL_TEXT }, { NULL, NULL, 0 },
    };
    AUTOFREE char *t = cli_table(cols, steps);
    fprintf(ctx->out, "\n%s", t);
}

int cli_execute(struct cli_ctx *ctx, struct cli_request *rq, struct error **errp)
{
    switch (rq->kind) {
    case RQ_LIST:
        return execute_list(ctx, rq, errp);
    case RQ_SHOW: {
        AUTOJSON json_t *r = NULL;
        if (cli_call(ctx, "GET", rq->path, NULL, &r, errp) < 0)
            return -1;
        if (ctx->args->json || !rq->cols) {
            cli_print_json(ctx, r);
            return 0;
        }
        AUTOFREE char *t = cli_kv(rq->cols, r);
        fputs(t, ctx->out);
        print_steps(ctx, json_object_get(r, "steps"));
        return 0;
    }
    case RQ_TASK: {
        AUTOJSON json_t *r = NULL;
        if (cli_call(ctx, rq->method, rq->path, rq->body, &r, errp) < 0)
            return -1;
        json_t *task = json_object_get(r, "task");
        if (!json_is_object(task) && json_is_string(json_object_get(r, "state")))
            task = r;
        if (!json_is_object(task)) {
            /* Done at once (some routes answer 200/204 when nothing is left to do). */
            if (ctx->args->json && r)
                cli_print_json(ctx, r);
            else if (!ctx->args->json)
                fprintf(ctx->out, "%s: done\n", rq->label ? rq->label : rq->path);
            return 0;
        }
        if (ctx->args->no_wait) {
            if (ctx->args->json)
                cli_print_json(ctx, r);
            else
                fprintf(ctx->out, "%s\n", json_string_value(json_object_get(task, "id")));
            return 0;
        }
        return cli_task_follow(ctx, task, rq->label, errp);
    }
    case RQ_WRITE: {
        AUTOJSON json_t *r = NULL;
        if (cli_call(ctx, rq->method, rq->path, rq->body, &r, errp) < 0)
            return -1;
        if (ctx->args->json) {
            if (r)
                cli_print_json(ctx, r);
        } else if (rq->print_key && json_is_string(json_object_get(r, rq->print_key))) {
            fprintf(ctx->out, "%s\n", json_string_value(json_object_get(r, rq->print_key)));
        } else if (rq->done) {
            fprintf(ctx->out, "%s\n", rq->done);
        }
        return 0;
    }
    }
    return error_set(errp, ERR_INTERNAL, "unknown request kind");
}
