/* main.c - strata-manager: the management daemon (the seed's VRM).
 *
 * Start-up, in order: parse options; read the first administrator's
 * password (--admin-password-file, else the environment variable
 * STRATA_ADMIN_PASSWORD; only used when the store has no user); open the
 * store (SQLite, migrations), create that administrator if needed, resume or
 * roll back the tasks a previous run left unfinished, open (at first start:
 * create) the CA and start the host monitor (manager.c); serve the REST API v1 on
 * the unix socket and, when --listen is given, on TCP with server TLS (the
 * public API authenticates with bearer tokens, not client certificates).
 * SIGTERM/SIGINT stop it: long polls are woken, requests in progress finish,
 * the store is closed.  See docs/manager.md. */
#define LOG_MODULE "main"
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http_server.h"
#include "manager/api.h"
#include "manager/manager.h"
#include "util/fileutil.h"
#include "util/log.h"
#include "util/mem.h"

#define PASSWORD_FILE_MAX 4096

static void usage(FILE *out)
{
    fputs("Usage: strata-manager [OPTION]...\n"
          "Run the Strata manager: inventory, users and the REST API v1.\n"
          "\n"
          "  --db PATH                 SQLite database (/var/lib/strata/manager.db)\n"
          "  --socket PATH             API unix socket, mode 0600 (/run/strata/manager.sock)\n"
          "  --listen ADDR:PORT        also serve the API over TCP with TLS\n"
          "  --tls-cert FILE --tls-key FILE   the certificate and key for --listen\n"
          "  --admin-password-file FILE  password of the first administrator 'admin',\n"
          "                            used only when the database has no user yet\n"
          "                            (else: environment variable STRATA_ADMIN_PASSWORD)\n"
          "  --session-ttl SECONDS     lifetime of login sessions (43200)\n"
          "  --pki-dir DIR             the manager's CA and client certificate, made at\n"
          "                            first start (/var/lib/strata/pki)\n"
          "  --heartbeat-interval MS   how often every agent is checked (5000)\n"
          "  --history-days N          events and ended tasks kept this long (30)\n"
          "  --log-level LEVEL         debug, info, warn, error (info)\n"
          "  --log-file FILE           log here instead of stderr\n"
          "  --help\n",
          out);
}

static int parse_listen(const char *arg, char **addr, unsigned short *port)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535)
        return -1;
    size_t n = (size_t) (colon - arg);
    if (arg[0] == '[' && n >= 2 && arg[n - 1] == ']')
        *addr = xstrndup(arg + 1, n - 2);        /* [::1]:8443 */
    else
        *addr = xstrndup(arg, n);
    *port = (unsigned short) p;
    return 0;
}

/* Reads the password from 'path': the first line, without its newline. */
static char *read_password_file(const char *path, struct error **errp)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && (sb.st_mode & 0077))
        LOG_WARN("password file '%s' is readable by other users", path);
    char *text = file_read_all(path, PASSWORD_FILE_MAX, NULL, errp);
    if (!text)
        return NULL;
    text[strcspn(text, "\r\n")] = '\0';
    return text;
}

int main(int argc, char **argv)
{
    AUTOFREE char *db = xstrdup("/var/lib/strata/manager.db");
    AUTOFREE char *sock = xstrdup("/run/strata/manager.sock");
    AUTOFREE char *pki = xstrdup("/var/lib/strata/pki");
    long heartbeat_ms = 5000, history_days = 30;
    AUTOFREE char *listen_addr = NULL, *tls_cert = NULL, *tls_key = NULL, *pw_file = NULL;
    unsigned short listen_port = 0;
    long long session_ttl = 0;
    enum { O_DB = 256, O_SOCK, O_LISTEN, O_CERT, O_KEY, O_PWFILE, O_TTL, O_PKI, O_HEARTBEAT,
           O_HISTORY, O_LEVEL, O_LOGFILE, O_HELP };
    static const struct option opts[] = {
        { "db", required_argument, NULL, O_DB },
        { "socket", required_argument, NULL, O_SOCK },
        { "listen", required_argument, NULL, O_LISTEN },
        { "tls-cert", required_argument, NULL, O_CERT },
        { "tls-key", required_argument, NULL, O_KEY },
        { "admin-password-file", required_argument, NULL, O_PWFILE },
        { "session-ttl", required_argument, NULL, O_TTL },
        { "pki-dir", required_argument, NULL, O_PKI },
        { "heartbeat-interval", required_argument, NULL, O_HEARTBEAT },
        { "history-days", required_argument, NULL, O_HISTORY },
        { "log-level", required_argument, NULL, O_LEVEL },
        { "log-file", required_argument, NULL, O_LOGFILE },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_DB: free(db); db = xstrdup(optarg); break;
        case O_SOCK: free(sock); sock = xstrdup(optarg); break;
        case O_LISTEN:
            free(listen_addr);
            listen_addr = NULL;
            if (parse_listen(optarg, &listen_addr, &listen_port) < 0) {
                fprintf(stderr, "strata-manager: --listen '%s' must be ADDRESS:PORT\n", optarg);
                return 2;
            }
            break;
        case O_CERT: free(tls_cert); tls_cert = xstrdup(optarg); break;
        case O_KEY: free(tls_key); tls_key = xstrdup(optarg); break;
        case O_PWFILE: free(pw_file); pw_file = xstrdup(optarg); break;
        case O_PKI: free(pki); pki = xstrdup(optarg); break;
        case O_HEARTBEAT: {
            char *end;
            heartbeat_ms = strtol(optarg, &end, 10);
            if (!*optarg || *end || heartbeat_ms < 100 || heartbeat_ms > 3600000) {
                fprintf(stderr, "strata-manager: --heartbeat-interval '%s' must be 100..3600000 "
                                "ms\n", optarg);
                return 2;
            }
            break;
        }
        case O_HISTORY: {
            char *end;
            history_days = strtol(optarg, &end, 10);
            if (!*optarg || *end || history_days < 1 || history_days > 3650) {
                fprintf(stderr, "strata-manager: --history-days '%s' must be 1..3650\n", optarg);
                return 2;
            }
            break;
        }
        case O_TTL: {
            char *end;
            session_ttl = strtoll(optarg, &end, 10);
            if (!*optarg || *end || session_ttl < 60 || session_ttl > 30LL * 24 * 3600) {
                fprintf(stderr, "strata-manager: --session-ttl '%s' must be 60..2592000 "
                                "seconds\n", optarg);
                return 2;
            }
            break;
        }
        case O_LEVEL: {
            int l = log_level_from_string(optarg);
            if (l < 0) {
                fprintf(stderr, "strata-manager: --log-level '%s' is not a level\n", optarg);
                return 2;
            }
            log_set_level((enum log_level) l);
            break;
        }
        case O_LOGFILE:
            if (log_set_file(optarg) < 0) {
                fprintf(stderr, "strata-manager: cannot open log file '%s'\n", optarg);
                return 1;
            }
            break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (listen_addr && (!tls_cert || !tls_key)) {
        fprintf(stderr, "strata-manager: --listen needs --tls-cert and --tls-key "
                        "(the manager never serves plain TCP)\n");
        return 2;
    }

    AUTOERROR struct error *err = NULL;
    AUTOFREE char *password = NULL;
    if (pw_file) {
        password = read_password_file(pw_file, &err);
        if (!password) {
            LOG_ERROR("%s", err->message);
            return 1;
        }
    } else if (getenv("STRATA_ADMIN_PASSWORD")) {
        password = xstrdup(getenv("STRATA_ADMIN_PASSWORD"));
        unsetenv("STRATA_ADMIN_PASSWORD");     /* not inherited by anything we run */
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct manager_config mc = {
        .db = db, .admin_password = password, .session_ttl_ms = session_ttl * 1000,
        .pki_dir = pki, .monitor_interval_ms = (int) heartbeat_ms,
        .history_days = (int) history_days,
        .task_kinds = manager_task_kinds(),
    };
    struct manager *m = manager_open(&mc, &err);
    if (password) {
        explicit_bzero(password, strlen(password));
    }
    if (!m) {
        LOG_ERROR("%s", err->message);
        return 1;
    }

    struct http_server_config local = {
        .unix_path = sock, .routes = manager_api_routes(), .opaque = m,
        .max_body = API_MAX_BODY,
    };
    struct http_server *srv_local = http_server_start(&local, &err);
    if (!srv_local) {
        LOG_ERROR("cannot serve on '%s': %s", sock, err->message);
        manager_close(m);
        return 1;
    }
    struct http_server *srv_tls = NULL;
    if (listen_addr) {
        struct http_tls_config tls = {
            .cert_file = tls_cert, .key_file = tls_key, .no_client_cert = true,
        };
        struct http_server_config remote = {
            .tcp_address = listen_addr, .tcp_port = listen_port, .tls = &tls,
            .routes = manager_api_routes(), .opaque = m, .max_body = API_MAX_BODY,
        };
        srv_tls = http_server_start(&remote, &err);
        if (!srv_tls) {
            LOG_ERROR("cannot serve on %s:%u: %s", listen_addr, listen_port, err->message);
            http_server_stop(srv_local);
            manager_close(m);
            return 1;
        }
        LOG_INFO("serving the API with TLS on %s:%u", listen_addr, http_server_port(srv_tls));
    }
    LOG_INFO("strata-manager %s ready on '%s' (pid %d)", STRATA_VERSION, sock, (int) getpid());

    int sig = 0;
    while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
        LOG_INFO("SIGHUP ignored");
    LOG_INFO("signal %d: stopping", sig);
    manager_stop_waiters(m);
    http_server_stop(srv_tls);
    http_server_stop(srv_local);
    manager_close(m);
    return 0;
}
