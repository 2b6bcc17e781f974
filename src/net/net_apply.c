/* net_apply.c - run the plan: ovs-vsctl, ovs-ofctl (meters, flows), ip, nft,
 * dnsmasq.  See net_apply.h.  Neighbours: net_plan.c (what ovs-vsctl does),
 * net_flows.c (flows and meters), nat.c (dnsmasq argv, nft script). */
#define LOG_MODULE "net"
#include "net/net_apply.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/nat.h"
#include "net/net_plan.h"
#include "util/command.h"
#include "util/fileutil.h"
#include "util/log.h"
#include "util/mem.h"

#define CMD_TIMEOUT_MS 20000

struct applied_bridge {
    char *name;
    char *flows;                    /* text last given to replace-flows */
    size_t n_flows;
    char *meters;                   /* meter specs, one per line */
};

struct applied_nat {
    char *name;
    char *nft;                      /* script last applied */
};

struct net_engine {
    char *ovs_rundir, *db, *run_dir, *state_dir;
    char *auto_dp;
    char *ip_forward;
    struct applied_bridge *br;
    size_t n_br;
    struct applied_nat *nat;
    size_t n_nat;
};

struct net_engine *net_engine_new(const struct net_engine_config *c)
{
    struct net_engine *e = xzalloc(sizeof(*e));
    e->ovs_rundir = xstrdup(c->ovs_rundir);
    e->db = xasprintf("unix:%s/db.sock", c->ovs_rundir);
    e->run_dir = xstrdup(c->run_dir);
    e->state_dir = xstrdup(c->state_dir);
    e->ip_forward = xstrdup(c->ip_forward_path ? c->ip_forward_path
                                               : "/proc/sys/net/ipv4/ip_forward");
    if (c->auto_datapath)
        e->auto_dp = xstrdup(c->auto_datapath);
    else
        e->auto_dp = xstrdup(access("/sys/module/openvswitch", F_OK) == 0 ? "system" : "netdev");
    return e;
}

static void forget_bridge(struct applied_bridge *b)
{
    free(b->name);
    free(b->flows);
    free(b->meters);
}

void net_engine_free(struct net_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_br; i++)
        forget_bridge(&e->br[i]);
    free(e->br);
    for (size_t i = 0; i < e->n_nat; i++) {
        free(e->nat[i].name);
        free(e->nat[i].nft);
    }
    free(e->nat);
    free(e->ovs_rundir);
    free(e->db);
    free(e->run_dir);
    free(e->state_dir);
    free(e->auto_dp);
    free(e->ip_forward);
    free(e);
}

const char *net_engine_auto_datapath(const struct net_engine *e)
{
    return e->auto_dp;
}

const char *net_engine_db(const struct net_engine *e)
{
    return e->db;
}

bool net_engine_ovs_present(const struct net_engine *e)
{
    AUTOFREE char *sock = xasprintf("%s/db.sock", e->ovs_rundir);
    return file_exists(sock);
}

static struct applied_bridge *applied(struct net_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_br; i++)
        if (!strcmp(e->br[i].name, name))
            return &e->br[i];
    e->br = xrealloc(e->br, (e->n_br + 1) * sizeof(*e->br));
    e->br[e->n_br] = (struct applied_bridge) { xstrdup(name), NULL, 0, NULL };
    return &e->br[e->n_br++];
}

static struct applied_nat *applied_nat(struct net_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_nat; i++)
        if (!strcmp(e->nat[i].name, name))
            return &e->nat[i];
    e->nat = xrealloc(e->nat, (e->n_nat + 1) * sizeof(*e->nat));
    e->nat[e->n_nat] = (struct applied_nat) { xstrdup(name), NULL };
    return &e->nat[e->n_nat++];
}

/* ---- commands ------------------------------------------------------------------ */

static struct command *vsctl(const struct net_engine *e)
{
    struct command *cmd = command_new("ovs-vsctl");
    command_add_argf(cmd, "--db=%s", e->db);
    command_add_arg(cmd, "--timeout=15");
    command_set_timeout(cmd, CMD_TIMEOUT_MS);
    return cmd;
}

static struct command *ofctl(const struct net_engine *e, const char *verb, const char *bridge)
{
    struct command *cmd = command_new("ovs-ofctl");
    command_add_args(cmd, "-O", "OpenFlow14", NULL);
    if (!strcmp(verb, "replace-flows"))
        command_add_arg(cmd, "--bundle");
    command_add_arg(cmd, verb);
    command_add_argf(cmd, "unix:%s/%s.mgmt", e->ovs_rundir, bridge);
    command_set_timeout(cmd, CMD_TIMEOUT_MS);
    return cmd;
}

static int observe(struct net_engine *e, struct net_observed *obs, struct error **errp)
{
    AUTOCOMMAND struct command *cmd = vsctl(e);
    command_add_args(cmd, "--format=json", "--columns=name,ports,external_ids", "list",
                     "Bridge", "--", "--columns=_uuid,name,external_ids", "list", "Port", NULL);
    AUTOFREE char *out = NULL;
    if (command_run(cmd, NULL, &out, NULL, errp) < 0)
        return -1;
    return net_observed_parse(out ? out : "", obs, errp);
}

/* Ids of the meters a bridge holds ("meter=N ..." lines of dump-meters). */
static int meter_ids(struct net_engine *e, const char *bridge, unsigned **ids, size_t *n,
                     struct error **errp)
{
    *ids = NULL;
    *n = 0;
    AUTOCOMMAND struct command *cmd = ofctl(e, "dump-meters", bridge);
    AUTOFREE char *out = NULL;
    if (command_run(cmd, NULL, &out, NULL, errp) < 0)
        return -1;
    for (const char *p = out; p && (p = strstr(p, "meter=")); p += 6) {
        if (p != out && p[-1] != '\n' && p[-1] != ' ')
            continue;
        unsigned id = (unsigned) strtoul(p + 6, NULL, 10);
        if (!id)
            continue;
        *ids = xrealloc(*ids, (*n + 1) * sizeof(unsigned));
        (*ids)[(*n)++] = id;
    }
    return 0;
}

static bool has_id(const unsigned *ids, size_t n, unsigned id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static char *meters_text(const struct net_flow_table *t)
{
    char *s = xstrdup("");
    for (size_t i = 0; i < t->n_meters; i++) {
        AUTOFREE char *m = net_meter_spec(&t->meters[i]);
        char *n = xasprintf("%s%s\n", s, m);
        free(s);
        s = n;
    }
    return s;
}

static bool same(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* Meters (add or modify) before flows that use them, stale ones after. */
static int apply_bridge_flows(struct net_engine *e, const char *bridge,
                              const struct net_flow_table *t, bool force, struct error **errp)
{
    struct applied_bridge *ab = applied(e, bridge);
    AUTOFREE char *flows = net_flow_table_text(t);
    AUTOFREE char *meters = meters_text(t);
    bool meters_changed = force || !same(ab->meters, meters);
    bool flows_changed = force || !same(ab->flows, flows);
    if (!meters_changed && !flows_changed)
        return 0;
    AUTOFREE unsigned *ids = NULL;
    size_t n_ids = 0;
    if (meters_changed) {
        if (meter_ids(e, bridge, &ids, &n_ids, errp) < 0)
            return -1;
        for (size_t i = 0; i < t->n_meters; i++) {
            AUTOFREE char *spec = net_meter_spec(&t->meters[i]);
            bool exists = has_id(ids, n_ids, t->meters[i].id);
            AUTOCOMMAND struct command *cmd = ofctl(e, exists ? "mod-meter" : "add-meter",
                                                    bridge);
            command_add_arg(cmd, spec);
            if (command_run(cmd, NULL, NULL, NULL, errp) < 0)
                return -1;
        }
    }
    if (flows_changed) {
        AUTOFREE char *path = xasprintf("%s/%s.flows", e->run_dir, bridge);
        if (file_write_atomic(path, flows, strlen(flows), 0600, errp) < 0)
            return -1;
        AUTOCOMMAND struct command *cmd = ofctl(e, "replace-flows", bridge);
        command_add_arg(cmd, path);
        if (command_run(cmd, NULL, NULL, NULL, errp) < 0)
            return -1;
    }
    if (meters_changed) {
        for (size_t i = 0; i < n_ids; i++) {
            bool wanted = false;
            for (size_t k = 0; k < t->n_meters; k++)
                wanted |= t->meters[k].id == ids[i];
            if (wanted)
                continue;
            AUTOCOMMAND struct command *cmd = ofctl(e, "del-meter", bridge);
            command_add_argf(cmd, "meter=%u", ids[i]);
            if (command_run(cmd, NULL, NULL, NULL, errp) < 0)
                return -1;
        }
    }
    free(ab->flows);
    ab->flows = steal_pointer(&flows);
    ab->n_flows = t->n_flows;
    free(ab->meters);
    ab->meters = steal_pointer(&meters);
    return 0;
}

/* ---- NAT services ------------------------------------------------------------------ */

/* PID in 'pidfile' if that process runs with 'marker' in its command line. */
static pid_t our_pid(const char *pidfile, const char *marker, char **cmdline_out)
{
    AUTOFREE char *text = file_read_all(pidfile, 64, NULL, NULL);
    if (!text)
        return 0;
    long pid = strtol(text, NULL, 10);
    if (pid <= 1)
        return 0;
    AUTOFREE char *path = xasprintf("/proc/%ld/cmdline", pid);
    size_t len = 0;
    char *cl = file_read_all(path, 1 << 16, &len, NULL);
    if (!cl)
        return 0;
    /* NUL-separated -> '\n'-separated for comparison. */
    for (size_t i = 0; i < len; i++)
        if (!cl[i])
            cl[i] = '\n';
    bool ours = strstr(cl, marker) != NULL;
    if (ours && cmdline_out)
        *cmdline_out = cl;
    else
        free(cl);
    return ours ? (pid_t) pid : 0;
}

static void stop_pid(pid_t pid)
{
    if (pid <= 1)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return;
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
}

static char *argv_joined(char *const *argv)
{
    char *s = xstrdup("");
    for (size_t i = 0; argv[i]; i++) {
        char *n = xasprintf("%s%s\n", s, argv[i]);
        free(s);
        s = n;
    }
    return s;
}

static int ensure_dnsmasq(struct net_engine *e, const struct net_nat *n, struct error **errp)
{
    AUTOSTRV char **argv = net_nat_dnsmasq_argv(n, e->run_dir, e->state_dir);
    AUTOFREE char *pidfile = net_nat_pid_path(e->run_dir, n);
    AUTOFREE char *marker = xasprintf("--pid-file=%s\n", pidfile);
    AUTOFREE char *cl = NULL;
    pid_t pid = our_pid(pidfile, marker, &cl);
    AUTOFREE char *want = argv_joined(argv);
    /* /proc cmdline holds argv[0] as given ("dnsmasq"). */
    if (pid && same(cl, want))
        return 0;
    if (pid) {
        LOG_INFO("NAT network '%s': restarting dnsmasq (settings changed)", n->name);
        stop_pid(pid);
    }
    unlink(pidfile);
    AUTOCOMMAND struct command *cmd = command_new(argv[0]);
    for (size_t i = 1; argv[i]; i++)
        command_add_arg(cmd, argv[i]);
    AUTOFREE char *log = net_nat_log_path(e->run_dir, n);
    command_set_output_file(cmd, log);
    pid_t child = command_spawn(cmd, errp);
    if (child < 0)
        return -1;
    /* dnsmasq writes its pid file once it has bound its sockets. */
    for (int i = 0; i < 100; i++) {
        if (our_pid(pidfile, marker, NULL) == child)
            return 0;
        if (kill(child, 0) < 0 && errno == ESRCH)
            break;
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    AUTOFREE char *tail = file_read_all(log, 1 << 20, NULL, NULL);
    const char *last = tail ? tail : "";
    size_t len = strlen(last);
    while (len && last[len - 1] == '\n')
        len--;
    const char *nl = last;
    for (size_t i = 0; i < len; i++)
        if (last[i] == '\n')
            nl = last + i + 1;
    return error_set(errp, ERR_IO, "dnsmasq for NAT network '%s' did not start: %.*s", n->name,
                     (int) (last + len - nl), nl);
}

static int run_ip(struct error **errp, ...) __attribute__((sentinel));
static int run_ip(struct error **errp, ...)
{
    AUTOCOMMAND struct command *cmd = command_new("ip");
    va_list ap;
    va_start(ap, errp);
    for (const char *a = va_arg(ap, const char *); a; a = va_arg(ap, const char *))
        command_add_arg(cmd, a);
    va_end(ap);
    command_set_timeout(cmd, CMD_TIMEOUT_MS);
    return command_run(cmd, NULL, NULL, NULL, errp);
}

static int apply_nat(struct net_engine *e, const struct net_nat *n, bool force,
                     struct error **errp)
{
    char addr[16];
    ipv4_format(n->address, addr);
    AUTOFREE char *cidr = xasprintf("%s/%u", addr, n->prefix);
    if (run_ip(errp, "address", "replace", cidr, "dev", n->bridge, NULL) < 0 ||
        run_ip(errp, "link", "set", "dev", n->bridge, "up", NULL) < 0)
        return -1;
    if (n->masquerade) {
        AUTOFREE char *fwd = file_read_all(e->ip_forward, 16, NULL, NULL);
        if (!fwd || fwd[0] != '1') {
            FILE *f = fopen(e->ip_forward, "w");
            bool ok = f && fputs("1\n", f) >= 0;
            if (f && fclose(f) != 0)
                ok = false;
            if (!ok)
                return error_set_errno(errp, ERR_IO, errno, "cannot enable IPv4 forwarding");
            LOG_INFO("NAT network '%s': IPv4 forwarding enabled", n->name);
        }
    }
    struct applied_nat *an = applied_nat(e, n->name);
    AUTOFREE char *script = net_nat_nft_script(n);
    if (force || !same(an->nft, script)) {
        AUTOFREE char *path = xasprintf("%s/nat-%s.nft", e->run_dir, n->name);
        if (file_write_atomic(path, script, strlen(script), 0600, errp) < 0)
            return -1;
        AUTOCOMMAND struct command *cmd = command_new("nft");
        command_add_args(cmd, "-f", path, NULL);
        command_set_timeout(cmd, CMD_TIMEOUT_MS);
        if (command_run(cmd, NULL, NULL, NULL, errp) < 0)
            return -1;
        free(an->nft);
        an->nft = steal_pointer(&script);
    }
    return ensure_dnsmasq(e, n, errp);
}

static void drop_nft(const char *name)
{
    AUTOFREE char *t = net_nat_nft_table(name);
    AUTOCOMMAND struct command *cmd = command_new("nft");
    command_add_args(cmd, "delete", "table", "ip", t, NULL);
    int status;
    command_run(cmd, &status, NULL, NULL, NULL);
}

/* dnsmasq and nft of NAT networks that are no longer configured. */
static void stop_stale_nats(struct net_engine *e, const struct net_config *cfg)
{
    DIR *d = opendir(e->run_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "nat-", 4) || len < 9 || strcmp(de->d_name + len - 4, ".pid"))
            continue;
        AUTOFREE char *name = xstrndup(de->d_name + 4, len - 8);
        if (net_config_nat(cfg, name))
            continue;
        AUTOFREE char *pidfile = xasprintf("%s/%s", e->run_dir, de->d_name);
        AUTOFREE char *marker = xasprintf("--pid-file=%s\n", pidfile);
        pid_t pid = our_pid(pidfile, marker, NULL);
        if (pid)
            stop_pid(pid);
        unlink(pidfile);
        drop_nft(name);
        for (size_t i = 0; i < e->n_nat; i++)
            if (!strcmp(e->nat[i].name, name)) {
                free(e->nat[i].nft);
                e->nat[i].nft = NULL;
            }
        AUTOFREE char *lease = xasprintf("%s/nat-%s.leases", e->state_dir, name);
        unlink(lease);
        LOG_INFO("NAT network '%s' removed: dnsmasq stopped, nftables table dropped", name);
    }
    closedir(d);
}

void net_engine_stop_services(struct net_engine *e, const struct net_config *cfg)
{
    for (size_t i = 0; i < cfg->n_nats; i++) {
        AUTOFREE char *pidfile = net_nat_pid_path(e->run_dir, &cfg->nats[i]);
        AUTOFREE char *marker = xasprintf("--pid-file=%s\n", pidfile);
        pid_t pid = our_pid(pidfile, marker, NULL);
        if (pid)
            stop_pid(pid);
        unlink(pidfile);
        drop_nft(cfg->nats[i].name);
    }
}

/* ---- apply / check ------------------------------------------------------------------- */

static bool config_empty(const struct net_config *cfg)
{
    return !cfg->n_dvs && !cfg->n_nats;
}

int net_engine_apply(struct net_engine *e, const struct net_config *cfg,
                     const struct net_port *ports, size_t n_ports, bool managed, bool force,
                     struct error **errp)
{
    if (!managed && config_empty(cfg))
        return 0;
    if (mkdir_p(e->run_dir, 0700, errp) < 0)
        return -1;
    stop_stale_nats(e, cfg);
    if (!net_engine_ovs_present(e)) {
        if (config_empty(cfg))
            return 0;
        return error_set(errp, ERR_UNSUPPORTED,
                         "Open vSwitch is not running: no database socket in '%s'",
                         e->ovs_rundir);
    }
    struct net_observed obs;
    if (observe(e, &obs, errp) < 0)
        return -1;
    AUTOSTRV char **plan = net_plan_build(cfg, e->auto_dp, ports, n_ports, &obs);
    net_observed_clear(&obs);
    if (plan[0]) {
        AUTOCOMMAND struct command *cmd = vsctl(e);
        for (size_t i = 0; plan[i]; i++)
            command_add_arg(cmd, plan[i]);
        AUTOFREE char *err = NULL;
        if (command_run(cmd, NULL, NULL, &err, errp) < 0)
            return -1;
        if (err && *err)
            LOG_DEBUG("ovs-vsctl: %s", err);
    }
    /* Forget bridges that are gone. */
    for (size_t i = 0; i < e->n_br;) {
        bool keep = false;
        for (size_t k = 0; k < cfg->n_dvs; k++)
            keep |= !strcmp(cfg->dvs[k].bridge, e->br[i].name);
        for (size_t k = 0; k < cfg->n_nats; k++)
            keep |= !strcmp(cfg->nats[k].bridge, e->br[i].name);
        if (keep) {
            i++;
            continue;
        }
        forget_bridge(&e->br[i]);
        memmove(&e->br[i], &e->br[i + 1], (e->n_br - i - 1) * sizeof(*e->br));
        e->n_br--;
    }
    for (size_t k = 0; k < cfg->n_dvs + cfg->n_nats; k++) {
        const char *br = k < cfg->n_dvs ? cfg->dvs[k].bridge : cfg->nats[k - cfg->n_dvs].bridge;
        struct net_flow_table t;
        net_flows_build(cfg, ports, n_ports, br, &t);
        int r = apply_bridge_flows(e, br, &t, force, errp);
        net_flow_table_clear(&t);
        if (r < 0) {
            error_prefix(errp, "bridge '%s'", br);
            return -1;
        }
    }
    for (size_t k = 0; k < cfg->n_nats; k++)
        if (apply_nat(e, &cfg->nats[k], force, errp) < 0) {
            error_prefix(errp, "NAT network '%s'", cfg->nats[k].name);
            return -1;
        }
    return 0;
}

static long long flow_count(struct net_engine *e, const char *bridge)
{
    AUTOCOMMAND struct command *cmd = ofctl(e, "dump-aggregate", bridge);
    AUTOFREE char *out = NULL;
    if (command_run(cmd, NULL, &out, NULL, NULL) < 0 || !out)
        return -1;
    const char *p = strstr(out, "flow_count=");
    return p ? strtoll(p + 11, NULL, 10) : -1;
}

int net_engine_check(struct net_engine *e, const struct net_config *cfg,
                     const struct net_port *ports, size_t n_ports, struct error **errp)
{
    if (config_empty(cfg))
        return 0;
    if (!net_engine_ovs_present(e))
        return error_set(errp, ERR_UNSUPPORTED,
                         "Open vSwitch is not running: no database socket in '%s'",
                         e->ovs_rundir);
    struct net_observed obs;
    if (observe(e, &obs, errp) < 0)
        return -1;
    AUTOSTRV char **plan = net_plan_build(cfg, e->auto_dp, ports, n_ports, &obs);
    net_observed_clear(&obs);
    if (plan[0])
        return 1;
    for (size_t k = 0; k < cfg->n_dvs + cfg->n_nats; k++) {
        const char *br = k < cfg->n_dvs ? cfg->dvs[k].bridge : cfg->nats[k - cfg->n_dvs].bridge;
        struct applied_bridge *ab = applied(e, br);
        if (!ab->flows || flow_count(e, br) != (long long) ab->n_flows)
            return 1;
    }
    for (size_t k = 0; k < cfg->n_nats; k++) {
        AUTOFREE char *pidfile = net_nat_pid_path(e->run_dir, &cfg->nats[k]);
        AUTOFREE char *marker = xasprintf("--pid-file=%s\n", pidfile);
        if (!our_pid(pidfile, marker, NULL))
            return 1;
    }
    return 0;
}
