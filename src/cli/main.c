/* main.c - `strata`, the command-line client of strata-manager.
 *
 * Parses the command line (args.c), resolves where to connect and with
 * which credentials, runs the verb (a plan carried out by client.c, or a
 * run function from run.c), and exits with the status of the error table in
 * src/util/error.h (err_code_exit_code(): 0 success, 1 failure, 2 usage or
 * refused input, 3 not found, 4 conflict or bad state, 5 unauthorized or
 * forbidden).  Errors are printed once, here: "strata: error: ...".
 *
 * Precedence: --connect > STRATA_URL > url= in the config file > the
 * default unix:/run/strata/manager.sock; --ca > STRATA_CA > ca=;
 * credentials: STRATA_TOKEN > STRATA_USER + STRATA_PASSWORD (a session for
 * this invocation only, ended before exit) > token= from the config file.
 *
 * Neighbours: cli.h and every file it lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "http/http_client.h"
#include "util/mem.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int report(struct error *err)
{
    int code = err_code_exit_code(err->code);
    if (err->field)
        fprintf(stderr, "strata: error: %s (field '%s')\n", err->message, err->field);
    else
        fprintf(stderr, "strata: error: %s\n", err->message);
    if (err->code == ERR_UNAUTHORIZED)
        fprintf(stderr, "strata: hint: set STRATA_TOKEN, or STRATA_USER and STRATA_PASSWORD, "
                        "or run 'strata login'\n");
    return code;
}

static int run(struct cli_ctx *ctx, const struct cli_args *a, struct error **errp)
{
    const struct cli_verb *v = a->verb;
    if (v->flags & CLI_NO_CONNECT)
        return v->run(ctx, a, errp);

    struct cli_config cfg = { 0 };
    ctx->config_path = cli_config_path();
    if (cli_config_load(ctx->config_path, &cfg, errp) < 0)
        return -1;
    const char *url = a->connect ? a->connect : env("STRATA_URL");
    const char *ca = a->ca ? a->ca : env("STRATA_CA");
    ctx->url = xstrdup(url ? url : cfg.url ? cfg.url : CLI_DEFAULT_URL);
    ctx->ca = xstrdup(ca ? ca : cfg.ca);
    const char *user = env("STRATA_USER"), *pw = env("STRATA_PASSWORD");
    if (env("STRATA_TOKEN"))
        ctx->token = xstrdup(env("STRATA_TOKEN"));
    else if (!(user && pw))
        ctx->token = xstrdup(cfg.token);
    cli_config_clear(&cfg);
    if (cli_connect(ctx, errp) < 0)
        return -1;
    if (!(v->flags & CLI_NEEDS_NO_AUTH) && !ctx->token) {
        if (!(user && pw))
            return error_set(errp, ERR_UNAUTHORIZED, "not logged in to %s", ctx->url);
        ctx->token = cli_login(ctx, user, pw, NULL, errp);
        if (!ctx->token || http_client_set_bearer_token(ctx->http, ctx->token, errp) < 0)
            return -1;
        ctx->session_login = true;
    }
    if (v->run)
        return v->run(ctx, a, errp);
    struct cli_request rq = { 0 };
    int rc = v->plan(a, &rq, errp);
    if (rc == 0)
        rc = cli_execute(ctx, &rq, errp);
    cli_request_clear(&rq);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli_args a;
    AUTOERROR struct error *err = NULL;
    if (cli_parse(argc, argv, &a, &err) < 0) {
        int code = report(err);
        if (a.verb)
            cli_usage(stderr, a.verb);
        return code;
    }
    if (a.help) {
        cli_usage(stdout, a.verb);
        return 0;
    }
    struct cli_ctx ctx = {
        .args = &a, .out = stdout, .tty = isatty(STDERR_FILENO),
    };
    int rc = run(&ctx, &a, &err);
    if (ctx.session_login) {
        /* End the session this invocation opened; a failure here changes nothing. */
        AUTOERROR struct error *e2 = NULL;
        cli_call(&ctx, "DELETE", "/api/v1/sessions/current", NULL, NULL, &e2);
    }
    fflush(stdout);
    int code = rc < 0 ? report(err) : 0;
    http_client_free(ctx.http);
    free(ctx.url);
    free(ctx.ca);
    free(ctx.token);
    free(ctx.config_path);
    return code;
}
