/* main.c - strata-agent: the node agent daemon (the seed's CNA).
 *
 * Start-up, in order: parse options; collect host facts and decide the
 * accelerator (KVM only when the CPU has vmx/svm and a probe VM runs); start
 * the QMP monitor loop; recover every stored VM, reattaching to the QEMUs that
 * still run; serve the API on the unix socket and, when configured, on TCP
 * with mutual TLS.  SIGTERM/SIGINT stop the agent and leave guests running:
 * the next agent reattaches to them.  See agent.h for the files in reading
 * order. */
#define LOG_MODULE "main"
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "agent/monitor.h"
#include "host/host_facts.h"
#include "http/http_server.h"
#include "util/fileutil.h"
#include "util/log.h"
#include "util/mem.h"

static void usage(FILE *out)
{
    fputs("Usage: strata-agent [OPTION]...\n"
          "Run the Strata node agent: QEMU virtual machines on this host, driven over an API.\n"
          "\n"
          "  --state-dir DIR         definitions and runtime records (/var/lib/strata/agent)\n"
          "  --run-dir DIR           QEMU sockets (/run/strata/agent)\n"
          "  --socket PATH           API unix socket, mode 0600 (/run/strata/agent.sock)\n"
          "  --image-root DIR        allowed directory for disks, ISOs, kernels; repeatable\n"
          "                          (/var/lib/strata/images)\n"
          "  --listen ADDR:PORT      also serve the API over TCP with mutual TLS\n"
          "  --tls-cert FILE --tls-key FILE --tls-ca FILE [--tls-crl FILE] [--tls-peer-cn CN]\n"
          "  --qemu PATH             QEMU binary (qemu-system-x86_64)\n"
          "  --accel tcg|kvm|auto    skip the accelerator probe (auto)\n"
          "  --shutdown-timeout S    default graceful shutdown timeout (60)\n"
          "  --log-level LEVEL       debug, info, warn, error (info)\n"
          "  --log-file FILE         log here instead of stderr\n"
          "  --help\n",
          out);
}

static void add_root(struct agent_config *cfg, const char *root)
{
    size_t n = strv_len(cfg->image_roots);
    cfg->image_roots = xrealloc(cfg->image_roots, (n + 2) * sizeof(char *));
    cfg->image_roots[n] = xstrdup(root);
    cfg->image_roots[n + 1] = NULL;
}

static int parse_listen(struct agent_config *cfg, const char *arg)
{
    const char *colon = strrchr(arg, ':');
    if (!colon || colon == arg)
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    cfg->tls_address = xstrndup(arg, (size_t) (colon - arg));
    cfg->tls_port = (unsigned short) port;
    return 0;
}

int main(int argc, char **argv)
{
    struct agent_config cfg = {
        .state_dir = xstrdup("/var/lib/strata/agent"),
        .run_dir = xstrdup("/run/strata/agent"),
        .unix_socket = xstrdup("/run/strata/agent.sock"),
        .qemu_binary = xstrdup("qemu-system-x86_64"),
        .shutdown_timeout_s = 60,
    };
    enum { O_STATE = 256, O_RUN, O_SOCK, O_ROOT, O_LISTEN, O_CERT, O_KEY, O_CA, O_CRL, O_CN,
           O_QEMU, O_ACCEL, O_TIMEOUT, O_LEVEL, O_LOGFILE, O_HELP };
    static const struct option opts[] = {
        { "state-dir", required_argument, NULL, O_STATE },
        { "run-dir", required_argument, NULL, O_RUN },
        { "socket", required_argument, NULL, O_SOCK },
        { "image-root", required_argument, NULL, O_ROOT },
        { "listen", required_argument, NULL, O_LISTEN },
        { "tls-cert", required_argument, NULL, O_CERT },
        { "tls-key", required_argument, NULL, O_KEY },
        { "tls-ca", required_argument, NULL, O_CA },
        { "tls-crl", required_argument, NULL, O_CRL },
        { "tls-peer-cn", required_argument, NULL, O_CN },
        { "qemu", required_argument, NULL, O_QEMU },
        { "accel", required_argument, NULL, O_ACCEL },
        { "shutdown-timeout", required_argument, NULL, O_TIMEOUT },
        { "log-level", required_argument, NULL, O_LEVEL },
        { "log-file", required_argument, NULL, O_LOGFILE },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_STATE: free(cfg.state_dir); cfg.state_dir = xstrdup(optarg); break;
        case O_RUN: free(cfg.run_dir); cfg.run_dir = xstrdup(optarg); break;
        case O_SOCK: free(cfg.unix_socket); cfg.unix_socket = xstrdup(optarg); break;
        case O_ROOT:
            if (!path_is_clean(optarg)) {
                fprintf(stderr, "strata-agent: --image-root '%s' must be a clean absolute path\n",
                        optarg);
                return 2;
            }
            add_root(&cfg, optarg);
            break;
        case O_LISTEN:
            if (parse_listen(&cfg, optarg) < 0) {
                fprintf(stderr, "strata-agent: --listen '%s' must be ADDRESS:PORT\n", optarg);
                return 2;
            }
            break;
        case O_CERT: cfg.tls_cert = xstrdup(optarg); break;
        case O_KEY: cfg.tls_key = xstrdup(optarg); break;
        case O_CA: cfg.tls_ca = xstrdup(optarg); break;
        case O_CRL: cfg.tls_crl = xstrdup(optarg); break;
        case O_CN: cfg.tls_allowed_cn = xstrdup(optarg); break;
        case O_QEMU: free(cfg.qemu_binary); cfg.qemu_binary = xstrdup(optarg); break;
        case O_ACCEL:
            if (strcmp(optarg, "tcg") && strcmp(optarg, "kvm") && strcmp(optarg, "auto")) {
                fprintf(stderr, "strata-agent: --accel '%s' must be tcg, kvm or auto\n", optarg);
                return 2;
            }
            cfg.force_accel = strcmp(optarg, "auto") ? xstrdup(optarg) : NULL;
            break;
        case O_TIMEOUT: cfg.shutdown_timeout_s = atoi(optarg); break;
        case O_LEVEL: {
            int l = log_level_from_string(optarg);
            if (l < 0) {
                fprintf(stderr, "strata-agent: --log-level '%s' is not a level\n", optarg);
                return 2;
            }
            log_set_level((enum log_level) l);
            break;
        }
        case O_LOGFILE:
            if (log_set_file(optarg) < 0) {
                fprintf(stderr, "strata-agent: cannot open log file '%s'\n", optarg);
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
    if (!cfg.image_roots)
        add_root(&cfg, "/var/lib/strata/images");
    if (cfg.tls_address && (!cfg.tls_cert || !cfg.tls_key || !cfg.tls_ca)) {
        fprintf(stderr, "strata-agent: --listen needs --tls-cert, --tls-key and --tls-ca "
                        "(the agent never serves plain TCP)\n");
        return 2;
    }
    if (cfg.shutdown_timeout_s <= 0)
        cfg.shutdown_timeout_s = 60;

    /* Signals are handled by sigwait() in this thread only. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    AUTOERROR struct error *err = NULL;
    struct agent *a = agent_new(&cfg, &err);
    if (!a) {
        LOG_ERROR("%s", err->message);
        return 1;
    }
    struct host_facts_opts fo = { .qemu_binary = cfg.qemu_binary };
    fo.kvm_disabled = cfg.force_accel && !strcmp(cfg.force_accel, "tcg");
    a->facts = host_facts_collect(&fo, &err);
    if (!a->facts) {
        LOG_ERROR("cannot collect host facts: %s", err->message);
        return 1;
    }
    host_facts_to_caps(a->facts, &a->caps);
    if (cfg.force_accel && !strcmp(cfg.force_accel, "kvm"))
        a->caps.accel = ACCEL_KVM;
    if (!a->caps.qemu_binary) {
        LOG_ERROR("QEMU not usable: %s", a->facts->qemu.error ? a->facts->qemu.error : "not found");
        return 1;
    }
    LOG_INFO("accelerator %s (%s); QEMU %s", accel_to_string(a->caps.accel),
             a->facts->accel.reason ? a->facts->accel.reason : "", a->facts->qemu.version);

    for (const struct agent_module *const *m = agent_modules; *m; m++)
        if ((*m)->pre_recover && (*m)->pre_recover(a, &err) < 0) {
            LOG_ERROR("module %s: %s", (*m)->name, err->message);
            return 1;
        }
    if (!monitor_start(a, &err) || agent_recover(a, &err) < 0) {
        LOG_ERROR("%s", err->message);
        return 1;
    }
    for (const struct agent_module *const *m = agent_modules; *m; m++)
        if ((*m)->init && (*m)->init(a, &err) < 0) {
            LOG_ERROR("module %s: %s", (*m)->name, err->message);
            return 1;
        }

    struct http_server_config local = {
        .unix_path = cfg.unix_socket, .routes = agent_api_routes(), .opaque = a,
    };
    struct http_server *srv_local = http_server_start(&local, &err);
    if (!srv_local) {
        LOG_ERROR("cannot serve on '%s': %s", cfg.unix_socket, err->message);
        return 1;
    }
    struct http_server *srv_tls = NULL;
    struct http_tls_config tls = {
        .cert_file = cfg.tls_cert, .key_file = cfg.tls_key, .ca_file = cfg.tls_ca,
        .crl_file = cfg.tls_crl, .allowed_cn = cfg.tls_allowed_cn,
    };
    if (cfg.tls_address) {
        struct http_server_config remote = {
            .tcp_address = cfg.tls_address, .tcp_port = cfg.tls_port, .tls = &tls,
            .routes = agent_api_routes(), .opaque = a,
        };
        srv_tls = http_server_start(&remote, &err);
        if (!srv_tls) {
            LOG_ERROR("cannot serve on %s:%u: %s", cfg.tls_address, cfg.tls_port, err->message);
            http_server_stop(srv_local);
            return 1;
        }
        LOG_INFO("serving mutual-TLS API on %s:%u", cfg.tls_address, http_server_port(srv_tls));
    }
    LOG_INFO("strata-agent %s ready on %s (pid %d)", STRATA_VERSION, cfg.unix_socket,
             (int) getpid());

    int sig = 0;
    while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
        LOG_INFO("SIGHUP ignored");
    LOG_INFO("signal %d: stopping; running guests keep running", sig);
    http_server_stop(srv_tls);
    http_server_stop(srv_local);
    for (const struct agent_module *const *m = agent_modules; *m; m++)
        if ((*m)->fini)
            (*m)->fini(a);
    monitor_stop(a->monitor);
    a->monitor = NULL;
    agent_free(a);
    unlink(cfg.unix_socket);
    free(cfg.state_dir);
    free(cfg.run_dir);
    free(cfg.unix_socket);
    free(cfg.qemu_binary);
    free(cfg.force_accel);
    free(cfg.tls_address);
    free(cfg.tls_cert);
    free(cfg.tls_key);
    free(cfg.tls_ca);
    free(cfg.tls_crl);
    free(cfg.tls_allowed_cn);
    strv_free(cfg.image_roots);
    return 0;
}
