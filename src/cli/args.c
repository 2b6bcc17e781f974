/* args.c - the command line of `strata`, parsed against the verb table.
 *
 *   strata [GLOBAL OPTIONS] VERB [ARGS] [OPTIONS]
 *
 * Global options (--connect URL, --ca FILE, --json, --no-wait, --help) are
 * accepted anywhere; a verb's own options follow the verb, as "--name VALUE"
 * or "--name=VALUE"; "--" ends the options.  Everything here is pure: it
 * reads argv and the verb table (verbs.c) and fills a 'struct cli_args'
 * that borrows argv's strings.  Also the small value parsers the verbs use:
 * sizes, integers, names and UUIDs.
 *
 * Neighbours: cli.h (the types), verbs.c (the table), main.c (the caller). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/mem.h"
#include "util/uuid.h"

static const struct cli_optdef global_opts[] = {
    { "connect", OPT_VALUE }, { "ca", OPT_VALUE }, { "json", OPT_FLAG },
    { "no-wait", OPT_FLAG }, { "help", OPT_FLAG }, { NULL, 0 },
};

static const struct cli_optdef *optdef_find(const struct cli_optdef *defs, const char *name,
                                            size_t len)
{
    for (size_t i = 0; defs && defs[i].name; i++)
        if (strlen(defs[i].name) == len && !strncmp(defs[i].name, name, len))
            return &defs[i];
    return NULL;
}

static int set_global(struct cli_args *out, const char *name, const char *value)
{
    if (!strcmp(name, "connect"))
        out->connect = value;
    else if (!strcmp(name, "ca"))
        out->ca = value;
    else if (!strcmp(name, "json"))
        out->json = true;
    else if (!strcmp(name, "no-wait"))
        out->no_wait = true;
    else
        out->help = true;
    return 0;
}

int cli_parse(int argc, char *const argv[], struct cli_args *out, struct error **errp)
{
    memset(out, 0, sizeof *out);
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && !strcmp(arg, "--")) {
            options_done = true;
            continue;
        }
        if (!options_done && !strcmp(arg, "-h")) {
            out->help = true;
            continue;
        }
        if (options_done || arg[0] != '-' || arg[1] == '\0') {
            if (!out->verb) {
                out->verb = cli_verb_find(arg);
                if (!out->verb)
                    return error_set(errp, ERR_INVALID_ARG,
                                     "unknown command '%s' (see 'strata help')", arg);
                continue;
            }
            if (out->npos >= out->verb->max_pos || out->npos >= CLI_MAX_POS)
                return error_set(errp, ERR_INVALID_ARG, "%s: unexpected argument '%s'",
                                 out->verb->name, arg);
            out->pos[out->npos++] = arg;
            continue;
        }
        if (arg[1] != '-')
            return error_set(errp, ERR_INVALID_ARG, "unknown option '%s'", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t) (eq - name) : strlen(name);
        const struct cli_optdef *d = optdef_find(global_opts, name, len);
        bool global = d != NULL;
        if (!d && out->verb)
            d = optdef_find(out->verb->opts, name, len);
        if (!d) {
            if (out->verb)
                return error_set(errp, ERR_INVALID_ARG, "%s: unknown option '--%.*s'",
                                 out->verb->name, (int) len, name);
            return error_set(errp, ERR_INVALID_ARG, "unknown option '--%.*s'", (int) len, name);
        }
        const char *value = NULL;
        if (d->kind == OPT_FLAG) {
            if (eq)
                return error_set(errp, ERR_INVALID_ARG, "option '--%s' takes no value",
                                 d->name);
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return error_set(errp, ERR_INVALID_ARG, "option '--%s' needs a value", d->name);
            value = argv[++i];
        }
        if (d->kind != OPT_FLAG && !*value)
            return error_set(errp, ERR_INVALID_ARG, "option '--%s' has an empty value",
                             d->name);
        if (global) {
            set_global(out, d->name, value);
            continue;
        }
        if (d->kind != OPT_MULTI && cli_opt(out, d->name))
            return error_set(errp, ERR_INVALID_ARG, "%s: option '--%s' given twice",
                             out->verb->name, d->name);
        if (d->kind == OPT_FLAG && cli_flag(out, d->name))
            return error_set(errp, ERR_INVALID_ARG, "%s: option '--%s' given twice",
                             out->verb->name, d->name);
        if (out->nopts >= CLI_MAX_OPTS)
            return error_set(errp, ERR_INVALID_ARG, "too many options");
        out->opts[out->nopts].name = d->name;
        out->opts[out->nopts].value = value;
        out->nopts++;
    }
    if (out->help)
        return 0;
    if (!out->verb)
        return error_set(errp, ERR_INVALID_ARG, "no command given (see 'strata help')");
    if (out->npos < out->verb->min_pos) {
        if (out->verb->synopsis && *out->verb->synopsis)
            return error_set(errp, ERR_INVALID_ARG, "%s: missing arguments (usage: strata %s %s)",
                             out->verb->name, out->verb->name, out->verb->synopsis);
        return error_set(errp, ERR_INVALID_ARG, "%s: missing arguments", out->verb->name);
    }
    return 0;
}

const char *cli_opt(const struct cli_args *a, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->nopts; i++)
        if (!strcmp(a->opts[i].name, name) && a->opts[i].value)
            v = a->opts[i].value;
    return v;
}

bool cli_flag(const struct cli_args *a, const char *name)
{
    for (size_t i = 0; i < a->nopts; i++)
        if (!strcmp(a->opts[i].name, name))
            return true;
    return false;
}

const char *cli_opt_next(const struct cli_args *a, const char *name, size_t *iter)
{
    for (size_t i = *iter; i < a->nopts; i++) {
        if (!strcmp(a->opts[i].name, name)) {
            *iter = i + 1;
            return a->opts[i].value;
        }
    }
    *iter = a->nopts;
    return NULL;
}

/* ---- values -------------------------------------------------------------- */

int cli_parse_size(const char *s, unsigned long long unit, const char *what,
                   unsigned long long *out, struct error **errp)
{
    const char *p = s;
    if (!p || !isdigit((unsigned char) *p))
        return error_set(errp, ERR_INVALID_ARG,
                         "%s '%s' is not a size (digits with an optional K, M, G or T)", what,
                         s ? s : "");
    errno = 0;
    char *end;
    unsigned long long n = strtoull(p, &end, 10);
    if (errno == ERANGE)
        return error_set(errp, ERR_INVALID_ARG, "%s '%s' is too large", what, s);
    unsigned long long mul = unit;
    if (*end) {
        switch (toupper((unsigned char) *end)) {
        case 'B': mul = 1; break;
        case 'K': mul = 1ULL << 10; break;
        case 'M': mul = 1ULL << 20; break;
        case 'G': mul = 1ULL << 30; break;
        case 'T': mul = 1ULL << 40; break;
        default:
            return error_set(errp, ERR_INVALID_ARG,
                             "%s '%s' has an unknown unit (use K, M, G or T)", what, s);
        }
        const char *rest = end + 1;
        if (mul != 1 && (!strcmp(rest, "iB") || !strcmp(rest, "B") || !strcmp(rest, "ib") ||
                         !strcmp(rest, "b")))
            rest += strlen(rest);
        if (*rest)
            return error_set(errp, ERR_INVALID_ARG,
                             "%s '%s' has an unknown unit (use K, M, G or T)", what, s);
    }
    if (mul && n > ~0ULL / mul)
        return error_set(errp, ERR_INVALID_ARG, "%s '%s' is too large", what, s);
    *out = n * mul;
    return 0;
}

int cli_parse_mib(const char *s, const char *what, unsigned long long *out,
                  struct error **errp)
{
    unsigned long long bytes;
    if (cli_parse_size(s, 1ULL << 20, what, &bytes, errp) < 0)
        return -1;
    if (bytes % (1ULL << 20))
        return error_set(errp, ERR_INVALID_ARG, "%s '%s' is not a whole number of MiB", what, s);
    if (bytes == 0)
        return error_set(errp, ERR_INVALID_ARG, "%s '%s' must be more than 0", what, s);
    *out = bytes >> 20;
    return 0;
}

int cli_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                   const char *what, unsigned long long *out, struct error **errp)
{
    if (!s || !isdigit((unsigned char) *s))
        return error_set(errp, ERR_INVALID_ARG, "%s '%s' is not a number", what, s ? s : "");
    errno = 0;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (*end)
        return error_set(errp, ERR_INVALID_ARG, "%s '%s' is not a number", what, s);
    if (errno == ERANGE || n < min || n > max)
        return error_set(errp, ERR_INVALID_ARG, "%s '%s' must be %llu..%llu", what, s, min, max);
    *out = n;
    return 0;
}

int cli_check_name(const char *s, const char *what, struct error **errp)
{
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 1 && n <= 64 && isalnum((unsigned char) s[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char) s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-';
    if (ok && strstr(s, ".."))
        ok = false;
    if (!ok)
        return error_set(errp, ERR_INVALID_ARG,
                         "%s '%s' is not a valid name (1-64 of A-Z a-z 0-9 . _ -, "
                         "starting with a letter or digit)", what, s ? s : "");
    return 0;
}

int cli_check_uuid(const char *s, const char *what, struct error **errp)
{
    if (!s || !uuid_is_valid(s))
        return error_set(errp, ERR_INVALID_ARG, "%s '%s' is not a UUID", what, s ? s : "");
    return 0;
}
