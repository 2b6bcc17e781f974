/* config.c - where `strata` connects and with which credentials.
 *
 * The connection URL is "unix:/path/to/manager.sock" (the default,
 * unix:/run/strata/manager.sock) or "https://host:port" (the CA given with
 * --ca / STRATA_CA / ca=, pinned: the system store is never used).  The
 * config file, ${STRATA_CONFIG:-$XDG_CONFIG_HOME/strata/config or
 * ~/.config/strata/config}, holds "url=", "token=" and "ca=" lines; `strata
 * login` writes it mode 0600 (directory 0700), atomically.  Parsing and
 * formatting are pure; load/save are the only I/O here.
 *
 * Neighbours: cli.h, main.c (precedence of options, environment and file),
 * run.c (login/logout write the file). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "util/fileutil.h"
#include "util/mem.h"

#define CONFIG_MAX_SIZE (64 * 1024)

void cli_url_clear(struct cli_url *u)
{
    free(u->unix_path);
    free(u->host);
    memset(u, 0, sizeof *u);
}

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char) *s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

int cli_url_parse(const char *url, struct cli_url *out, struct error **errp)
{
    memset(out, 0, sizeof *out);
    if (!url || has_ctl(url))
        return error_set(errp, ERR_INVALID_ARG, "connection URL is not valid");
    if (!strncmp(url, "unix:", 5)) {
        const char *p = url + 5;
        if (!strncmp(p, "//", 2))
            p += 2;             /* unix:///run/x.sock */
        if (p[0] != '/' || p[1] == '\0')
            return error_set(errp, ERR_INVALID_ARG,
                             "connection URL '%s': a unix socket needs an absolute path "
                             "(unix:/run/strata/manager.sock)", url);
        out->unix_path = xstrdup(p);
        return 0;
    }
    if (strncmp(url, "https://", 8))
        return error_set(errp, ERR_INVALID_ARG,
                         "connection URL '%s' must start with 'unix:' or 'https://'", url);
    const char *h = url + 8;
    const char *end;
    const char *rest;
    if (*h == '[') {
        end = strchr(h, ']');
        if (!end || end == h + 1)
            return error_set(errp, ERR_INVALID_ARG, "connection URL '%s': bad IPv6 address",
                             url);
        out->host = xstrndup(h + 1, (size_t) (end - h - 1));
        rest = end + 1;
    } else {
        end = h + strcspn(h, ":/");
        if (end == h) {
            return error_set(errp, ERR_INVALID_ARG, "connection URL '%s' has no host", url);
        }
        out->host = xstrndup(h, (size_t) (end - h));
        rest = end;
    }
    out->port = 443;
    if (*rest == ':') {
        AUTOFREE char *port = xstrndup(rest + 1, strcspn(rest + 1, "/"));
        unsigned long long p;
        if (cli_parse_uint(port, 1, 65535, "port", &p, errp) < 0) {
            error_prefix(errp, "connection URL '%s'", url);
            cli_url_clear(out);
            return -1;
        }
        out->port = (unsigned short) p;
        rest += 1 + strlen(port);
    }
    if (*rest && strcmp(rest, "/")) {
        cli_url_clear(out);
        return error_set(errp, ERR_INVALID_ARG,
                         "connection URL '%s' must not have a path (the API is under /api/v1)",
                         url);
    }
    return 0;
}

void cli_config_clear(struct cli_config *cfg)
{
    free(cfg->url);
    free(cfg->token);
    free(cfg->ca);
    memset(cfg, 0, sizeof *cfg);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int cli_config_parse(const char *text, struct cli_config *cfg, struct error **errp)
{
    AUTOFREE char *copy = xstrdup(text);
    unsigned lineno = 0;
    char *p = copy;
    while (p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        char *line = trim(p);
        p = nl ? nl + 1 : NULL;
        if (!*line || *line == '#')
            continue;
        char *eq = strchr(line, '=');
        if (!eq)
            return error_set(errp, ERR_INVALID_ARG, "config line %u: expected key=value",
                             lineno);
        *eq = '\0';
        char *key = trim(line), *value = trim(eq + 1);
        char **slot = !strcmp(key, "url") ? &cfg->url
                    : !strcmp(key, "token") ? &cfg->token
                    : !strcmp(key, "ca") ? &cfg->ca : NULL;
        if (!slot)
            return error_set(errp, ERR_INVALID_ARG,
                             "config line %u: unknown key '%s' (url, token, ca)", lineno, key);
        if (has_ctl(value))
            return error_set(errp, ERR_INVALID_ARG, "config line %u: control character in "
                             "the value of '%s'", lineno, key);
        free(*slot);
        *slot = *value ? xstrdup(value) : NULL;
    }
    return 0;
}

char *cli_config_format(const struct cli_config *cfg)
{
    return xasprintf("# strata CLI configuration, written by 'strata login'\n%s%s%s%s%s%s%s%s%s",
                     cfg->url ? "url=" : "", cfg->url ? cfg->url : "", cfg->url ? "\n" : "",
                     cfg->token ? "token=" : "", cfg->token ? cfg->token : "",
                     cfg->token ? "\n" : "",
                     cfg->ca ? "ca=" : "", cfg->ca ? cfg->ca : "", cfg->ca ? "\n" : "");
}

char *cli_config_path(void)
{
    const char *p = getenv("STRATA_CONFIG");
    if (p && *p)
        return xstrdup(p);
    p = getenv("XDG_CONFIG_HOME");
    if (p && *p == '/')
        return xasprintf("%s/strata/config", p);
    p = getenv("HOME");
    if (p && *p == '/')
        return xasprintf("%s/.config/strata/config", p);
    return NULL;
}

int cli_config_load(const char *path, struct cli_config *cfg, struct error **errp)
{
    memset(cfg, 0, sizeof *cfg);
    if (!path || !file_exists(path))
        return 0;
    AUTOERROR struct error *err = NULL;
    AUTOFREE char *text = file_read_all(path, CONFIG_MAX_SIZE, NULL, &err);
    if (!text) {
        if (err && err->code == ERR_NOT_FOUND)
            return 0;
        error_propagate(errp, steal_pointer(&err));
        error_prefix(errp, "reading the config file '%s'", path);
        return -1;
    }
    if (cli_config_parse(text, cfg, errp) < 0) {
        error_prefix(errp, "config file '%s'", path);
        cli_config_clear(cfg);
        return -1;
    }
    return 0;
}

int cli_config_save(const char *path, const struct cli_config *cfg, struct error **errp)
{
    AUTOFREE char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir_p(dir, 0700, errp) < 0)
            return -1;
    }
    AUTOFREE char *text = cli_config_format(cfg);
    if (file_write_atomic(path, text, strlen(text), 0600, errp) < 0) {
        error_prefix(errp, "writing the config file '%s'", path);
        return -1;
    }
    /* A stale "<path>.tmp" could have kept a wider mode: make sure. */
    if (chmod(path, 0600) < 0)
        return error_set_errno(errp, ERR_IO, errno, "chmod '%s'", path);
    return 0;
}
