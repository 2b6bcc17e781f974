/* test_net_golden.c - golden tests of the network library's builders.
 *
 * Every tests/data/net/<case>.json holds
 *   {"config": {...net configuration, as in net.json...},
 *    "auto_datapath": "netdev" | "system",                (optional, netdev)
 *    "ports": [{"vm", "nic", "tap", "mac", "index", "dvs", "portgroup" | "nat",
 *               "security_group", "ips"}],                (optional)
 *    "observed": [<ovs-vsctl list Bridge JSON>, <list Port JSON>]   (optional)}
 * and three expected files:
 *   <case>.flows  for each bridge, the OpenFlow table and meters (net_flows.c)
 *   <case>.vsctl  the ovs-vsctl arguments of the plan, one per line (net_plan.c)
 *   <case>.cmds   every command net_engine_apply() runs (argv, one line each),
 *                 recorded through the command runner's dry-run hook, with
 *                 the observed state above as the answer to the OVSDB query;
 *                 only for cases without NAT networks (dnsmasq is spawned,
 *                 not run) - "(nat: not run)" otherwise.
 * REGENERATE=1 rewrites the expected files.  A missing or unexpected file
 * fails the suite. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net_apply.h"
#include "net/net_config.h"
#include "net/net_flows.h"
#include "net/net_plan.h"
#include "util/command.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcmp(s + n - m, suffix);
}

static char *append(char *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *append(char *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    AUTOFREE char *add = xvasprintf(fmt, ap);
    va_end(ap);
    char *n = xasprintf("%s%s", s ? s : "", add);
    free(s);
    return n;
}

struct golden_case {
    struct net_config *cfg;
    const char *auto_dp;
    struct net_port *ports;
    size_t n_ports;
    char *observed;                 /* two lines of JSON */
};

static void case_clear(struct golden_case *c)
{
    for (size_t i = 0; i < c->n_ports; i++)
        net_port_clear(&c->ports[i]);
    free(c->ports);
    net_config_free(c->cfg);
    free(c->observed);
}

static const char empty_obs[] =
    "{\"data\":[],\"headings\":[\"name\",\"ports\",\"external_ids\"]}\n"
    "{\"data\":[],\"headings\":[\"_uuid\",\"name\",\"external_ids\"]}\n";

static int load_case(const json_t *j, struct golden_case *c, struct error **errp)
{
    static const char *const keys[] = { "config", "auto_datapath", "ports", "observed", NULL };
    static const char *const pkeys[] = { "vm", "nic", "tap", "mac", "index", "dvs", "portgroup",
                                         "nat", "security_group", "ips", NULL };
    memset(c, 0, sizeof(*c));
    if (json_check_keys(j, keys, "", errp) < 0)
        return -1;
    if (!(c->cfg = net_config_from_json(json_object_get(j, "config"), errp)))
        return -1;
    c->auto_dp = "netdev";
    if (json_get_string(j, "auto_datapath", "", false, &c->auto_dp, errp) < 0)
        return -1;
    const json_t *obs = json_object_get(j, "observed");
    if (obs) {
        AUTOFREE char *a = json_to_string(json_array_get(obs, 0));
        AUTOFREE char *b = json_to_string(json_array_get(obs, 1));
        c->observed = xasprintf("%s\n%s\n", a, b);
    } else {
        c->observed = xstrdup(empty_obs);
    }
    size_t i;
    json_t *p;
    json_t *ports = json_object_get(j, "ports");
    c->ports = xcalloc(json_array_size(ports) + 1, sizeof(*c->ports));
    json_array_foreach(ports, i, p) {
        AUTOFREE char *f = xasprintf("ports[%zu]", i);
        const char *vm, *nic, *tap, *mac, *dvs = NULL, *pg = NULL, *nat = NULL, *sg = NULL;
        unsigned long long idx;
        if (json_check_keys(p, pkeys, f, errp) < 0 ||
            json_get_string(p, "vm", f, true, &vm, errp) < 0 ||
            json_get_string(p, "nic", f, true, &nic, errp) < 0 ||
            json_get_string(p, "tap", f, true, &tap, errp) < 0 ||
            json_get_string(p, "mac", f, true, &mac, errp) < 0 ||
            json_get_uint(p, "index", f, true, 1, NET_MAX_PORTS, &idx, errp) < 0 ||
            json_get_string(p, "dvs", f, false, &dvs, errp) < 0 ||
            json_get_string(p, "portgroup", f, false, &pg, errp) < 0 ||
            json_get_string(p, "nat", f, false, &nat, errp) < 0 ||
            json_get_string(p, "security_group", f, false, &sg, errp) < 0)
            return -1;
        struct net_port *np = &c->ports[c->n_ports++];
        np->vm = xstrdup(vm);
        np->nic = xstrdup(nic);
        np->tap = xstrdup(tap);
        snprintf(np->mac, sizeof np->mac, "%s", mac);
        np->index = (unsigned) idx;
        if (dvs) {
            const struct net_dvs *d = net_config_dvs(c->cfg, dvs);
            if (!d || !(np->pg = net_dvs_portgroup(d, pg ? pg : "")))
                return error_set_field(errp, ERR_INVALID_ARG, f, "unknown DVS or port group");
            np->bridge = xstrdup(d->bridge);
            np->mtu = d->mtu;
        } else {
            const struct net_nat *n = nat ? net_config_nat(c->cfg, nat) : NULL;
            if (!n)
                return error_set_field(errp, ERR_INVALID_ARG, f, "unknown NAT network");
            np->bridge = xstrdup(n->bridge);
            np->mtu = n->mtu;
        }
        if (sg && !(np->sg = net_config_sg(c->cfg, sg)))
            return error_set_field(errp, ERR_INVALID_ARG, f, "unknown security group");
        const json_t *ips = json_object_get(p, "ips");
        np->ips = xcalloc(json_array_size(ips) + 1, sizeof(char *));
        size_t k;
        json_t *ip;
        json_array_foreach(ips, k, ip)
            np->ips[k] = xstrdup(json_string_value(ip));
    }
    return 0;
}

static char *build_flows(const struct golden_case *c)
{
    char *out = NULL;
    for (size_t k = 0; k < c->cfg->n_dvs + c->cfg->n_nats; k++) {
        const char *br = k < c->cfg->n_dvs ? c->cfg->dvs[k].bridge
                                           : c->cfg->nats[k - c->cfg->n_dvs].bridge;
        struct net_flow_table t;
        net_flows_build(c->cfg, c->ports, c->n_ports, br, &t);
        AUTOFREE char *text = net_flow_table_text(&t);
        out = append(out, "# bridge %s: %zu flows\n%s# meters\n", br, t.n_flows, text);
        for (size_t m = 0; m < t.n_meters; m++) {
            AUTOFREE char *spec = net_meter_spec(&t.meters[m]);
            out = append(out, "%s\n", spec);
        }
        net_flow_table_clear(&t);
    }
    return out ? out : xstrdup("");
}

static char *build_plan(const struct golden_case *c, struct error **errp)
{
    struct net_observed obs;
    if (net_observed_parse(c->observed, &obs, errp) < 0)
        return NULL;
    AUTOSTRV char **plan = net_plan_build(c->cfg, c->auto_dp, c->ports, c->n_ports, &obs);
    net_observed_clear(&obs);
    char *out = xstrdup("");
    for (size_t i = 0; plan[i]; i++)
        out = append(out, "%s\n", plan[i]);
    if (!plan[0])
        out = append(out, "(nothing to do)\n");
    return out;
}

/* ---- engine, through the dry-run hook --------------------------------------- */

struct recorder {
    char *log;
    const char *observed;
    const char *tmp;
};

static int record(char *const *argv, char **out, void *opaque)
{
    struct recorder *r = opaque;
    char *line = NULL;
    for (size_t i = 0; argv[i]; i++) {
        const char *a = argv[i];
        AUTOFREE char *shown = NULL;
        const char *t = strstr(a, r->tmp);
        if (t)
            shown = xasprintf("%.*s<TMP>%s", (int) (t - a), a, t + strlen(r->tmp));
        line = append(line, "%s%s", i ? " " : "", shown ? shown : a);
    }
    r->log = append(r->log, "%s\n", line);
    bool list = false;
    for (size_t i = 0; argv[i]; i++)
        list |= !strcmp(argv[i], "Bridge");
    if (list)
        *out = xstrdup(r->observed);
    free(line);
    return 0;
}

static char *build_cmds(const struct golden_case *c, struct error **errp)
{
    if (c->cfg->n_nats)
        return xstrdup("(nat: not run)\n");
    char tmpl[] = "/tmp/strata-net-golden.XXXXXX";
    if (!mkdtemp(tmpl)) {
        error_set(errp, ERR_IO, "mkdtemp failed");
        return NULL;
    }
    AUTOFREE char *ovs = xasprintf("%s/ovs", tmpl);
    AUTOFREE char *run = xasprintf("%s/run", tmpl);
    AUTOFREE char *state = xasprintf("%s/state", tmpl);
    AUTOFREE char *sock = xasprintf("%s/db.sock", ovs);
    AUTOFREE char *fwd = xasprintf("%s/ip_forward", tmpl);
    mkdir_p(ovs, 0700, NULL);
    mkdir_p(state, 0700, NULL);
    file_write_replace(sock, "", 0, 0600, NULL);
    file_write_replace(fwd, "0\n", 2, 0600, NULL);
    struct net_engine_config ec = { ovs, run, state, c->auto_dp, fwd };
    struct net_engine *e = net_engine_new(&ec);
    struct recorder r = { xstrdup(""), c->observed, tmpl };
    command_set_dry_run(record, &r);
    int ret = net_engine_apply(e, c->cfg, c->ports, c->n_ports, true, false, errp);
    /* Applying again with nothing changed in the engine's memory sends
     * nothing to ovs-ofctl (only the OVSDB query and plan remain). */
    if (ret == 0) {
        r.log = append(r.log, "# again\n");
        ret = net_engine_apply(e, c->cfg, c->ports, c->n_ports, true, false, errp);
    }
    command_set_dry_run(NULL, NULL);
    net_engine_free(e);
    rm_rf(tmpl, NULL);
    if (ret < 0) {
        free(r.log);
        return NULL;
    }
    return r.log;
}

/* ---- driver ----------------------------------------------------------------- */

static int tap_n, failures;

static void tap(bool ok, const char *what)
{
    printf("%sok %d - %s\n", ok ? "" : "not ", ++tap_n, what);
    if (!ok)
        failures++;
}

static void report_diff(const char *name, const char *want, const char *got)
{
    int line = 1;
    for (;;) {
        size_t wl = strcspn(want, "\n"), gl = strcspn(got, "\n");
        if (wl != gl || strncmp(want, got, wl)) {
            fprintf(stderr, "FAIL %s: line %d differs\n  expected: %.*s\n  got:      %.*s\n",
                    name, line, (int) wl, want, (int) gl, got);
            return;
        }
        if (!want[wl] || !got[gl])
            break;
        want += wl + 1;
        got += gl + 1;
        line++;
    }
    fprintf(stderr, "FAIL %s: length differs at line %d\n", name, line);
}

static void compare(const char *dir, const char *stem, const char *ext, const char *got,
                    bool regen)
{
    AUTOFREE char *path = xasprintf("%s/%s.%s", dir, stem, ext);
    AUTOFREE char *name = xasprintf("%s.%s", stem, ext);
    if (regen) {
        AUTOERROR struct error *err = NULL;
        bool ok = file_write_replace(path, got, strlen(got), 0644, &err) == 0;
        if (!ok)
            fprintf(stderr, "FAIL %s: %s\n", name, err->message);
        tap(ok, name);
        return;
    }
    AUTOFREE char *want = file_read_all(path, 1 << 22, NULL, NULL);
    if (!want) {
        fprintf(stderr, "FAIL %s: missing (REGENERATE=1 writes it)\n", name);
        tap(false, name);
        return;
    }
    bool ok = !strcmp(want, got);
    if (!ok)
        report_diff(name, want, got);
    tap(ok, name);
}

int main(void)
{
    const char *src = getenv("STRATA_SRCDIR");
    bool regen = getenv("REGENERATE") && !strcmp(getenv("REGENERATE"), "1");
    if (!src) {
        fprintf(stderr, "STRATA_SRCDIR is not set\n");
        return 1;
    }
    AUTOFREE char *dir = xasprintf("%s/tests/data/net", src);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        names = xrealloc(names, (n + 2) * sizeof(*names));
        names[n++] = xstrdup(de->d_name);
        names[n] = NULL;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    static const char *const outs[] = { ".flows", ".vsctl", ".cmds" };
    for (size_t i = 0; i < n; i++) {
        const char *f = names[i];
        bool is_out = false;
        for (size_t k = 0; k < 3; k++)
            if (has_suffix(f, outs[k])) {
                is_out = true;
                AUTOFREE char *stem = xstrndup(f, strlen(f) - strlen(outs[k]));
                AUTOFREE char *jp = xasprintf("%s/%s.json", dir, stem);
                if (!file_exists(jp)) {
                    fprintf(stderr, "FAIL %s: no %s.json beside it\n", f, stem);
                    tap(false, f);
                }
            }
        if (is_out)
            continue;
        if (!has_suffix(f, ".json")) {
            fprintf(stderr, "FAIL %s: unexpected file in tests/data/net\n", f);
            tap(false, f);
            continue;
        }
        AUTOFREE char *stem = xstrndup(f, strlen(f) - 5);
        AUTOFREE char *path = xasprintf("%s/%s", dir, f);
        AUTOFREE char *text = file_read_all(path, 1 << 20, NULL, NULL);
        AUTOERROR struct error *err = NULL;
        AUTOJSON json_t *j = text ? json_from_string(text, strlen(text), &err) : NULL;
        struct golden_case c;
        if (!j || load_case(j, &c, &err) < 0) {
            fprintf(stderr, "FAIL %s: %s%s%s\n", f, err && err->field ? err->field : "",
                    err && err->field ? ": " : "", err ? err->message : "unreadable");
            tap(false, f);
            if (j)
                case_clear(&c);
            continue;
        }
        AUTOFREE char *flows = build_flows(&c);
        compare(dir, stem, "flows", flows, regen);
        AUTOFREE char *plan = build_plan(&c, &err);
        if (!plan) {
            fprintf(stderr, "FAIL %s.vsctl: %s\n", stem, err->message);
            tap(false, stem);
        } else {
            compare(dir, stem, "vsctl", plan, regen);
        }
        error_free(err);
        err = NULL;
        AUTOFREE char *cmds = build_cmds(&c, &err);
        if (!cmds) {
            fprintf(stderr, "FAIL %s.cmds: %s\n", stem, err->message);
            tap(false, stem);
        } else {
            compare(dir, stem, "cmds", cmds, regen);
        }
        case_clear(&c);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    printf("1..%d\n", tap_n);
    return failures ? 1 : 0;
}
