/* net_plan.c - desired bridges/ports vs OVSDB -> one ovs-vsctl transaction.
 * See net_plan.h.  Pure; pinned by tests/data/net/ golden cases. */
#include "net/net_plan.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_util.h"
#include "util/mem.h"

/* ---- observed state --------------------------------------------------------- */

void net_observed_clear(struct net_observed *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_bridges; i++) {
        free(o->bridges[i].name);
        free(o->bridges[i].dvs);
        free(o->bridges[i].nat);
        free(o->bridges[i].cfg);
    }
    free(o->bridges);
    for (size_t i = 0; i < o->n_ports; i++) {
        free(o->ports[i].name);
        free(o->ports[i].bridge);
        free(o->ports[i].vm);
        free(o->ports[i].uplink);
        free(o->ports[i].cfg);
    }
    free(o->ports);
    memset(o, 0, sizeof(*o));
}

/* Value of 'key' in an OVSDB JSON map ["map", [[k, v], ...]], or NULL. */
static char *map_get(const json_t *map, const char *key)
{
    const json_t *pairs = json_array_get(map, 1);
    size_t i;
    json_t *p;
    json_array_foreach(pairs, i, p) {
        const char *k = json_string_value(json_array_get(p, 0));
        const char *v = json_string_value(json_array_get(p, 1));
        if (k && v && !strcmp(k, key))
            return xstrdup(v);
    }
    return NULL;
}

/* Calls 'fn' for each UUID of an OVSDB set or single ["uuid", "..."]. */
static void each_uuid(const json_t *v, void (*fn)(const char *, void *), void *opaque)
{
    const char *tag = json_string_value(json_array_get(v, 0));
    if (tag && !strcmp(tag, "uuid")) {
        fn(json_string_value(json_array_get(v, 1)), opaque);
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_array_get(v, 1), i, e)
        fn(json_string_value(json_array_get(e, 1)), opaque);
}

struct uuid_owner {
    char **uuids;       /* port uuid -> bridge name */
    char **bridges;
    size_t n;
    const char *bridge;
};

static void note_uuid(const char *uuid, void *opaque)
{
    struct uuid_owner *u = opaque;
    if (!uuid)
        return;
    u->uuids = xrealloc(u->uuids, (u->n + 1) * sizeof(char *));
    u->bridges = xrealloc(u->bridges, (u->n + 1) * sizeof(char *));
    u->uuids[u->n] = xstrdup(uuid);
    u->bridges[u->n] = xstrdup(u->bridge);
    u->n++;
}

int net_observed_parse(const char *text, struct net_observed *out, struct error **errp)
{
    memset(out, 0, sizeof(*out));
    const char *nl = strchr(text, '\n');
    if (!nl) {
        return error_set(errp, ERR_INTERNAL, "unexpected ovs-vsctl output: one line");
    }
    AUTOJSON json_t *br = json_from_string(text, (size_t) (nl - text), errp);
    if (!br)
        return -1;
    AUTOJSON json_t *po = json_from_string(nl + 1, strlen(nl + 1), errp);
    if (!po)
        return -1;
    struct uuid_owner own = { 0 };
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(br, "data"), i, row) {
        const char *name = json_string_value(json_array_get(row, 0));
        if (!name)
            continue;
        const json_t *ext = json_array_get(row, 2);
        out->bridges = xrealloc(out->bridges, (out->n_bridges + 1) * sizeof(*out->bridges));
        out->bridges[out->n_bridges++] = (struct net_obs_bridge) {
            xstrdup(name), map_get(ext, "strata-dvs"), map_get(ext, "strata-nat"),
            map_get(ext, "strata-cfg")
        };
        own.bridge = name;
        each_uuid(json_array_get(row, 1), note_uuid, &own);
    }
    json_array_foreach(json_object_get(po, "data"), i, row) {
        const char *uuid = json_string_value(json_array_get(json_array_get(row, 0), 1));
        const char *name = json_string_value(json_array_get(row, 1));
        if (!uuid || !name)
            continue;
        const json_t *ext = json_array_get(row, 2);
        const char *bridge = NULL;
        for (size_t k = 0; k < own.n; k++)
            if (!strcmp(own.uuids[k], uuid))
                bridge = own.bridges[k];
        out->ports = xrealloc(out->ports, (out->n_ports + 1) * sizeof(*out->ports));
        out->ports[out->n_ports++] = (struct net_obs_port) {
            xstrdup(name), xstrdup(bridge), map_get(ext, "strata-vm"),
            map_get(ext, "strata-uplink"), map_get(ext, "strata-cfg")
        };
    }
    for (size_t k = 0; k < own.n; k++) {
        free(own.uuids[k]);
        free(own.bridges[k]);
    }
    free(own.uuids);
    free(own.bridges);
    return 0;
}

/* ---- the plan ------------------------------------------------------------------ */

struct args {
    char **v;
    size_t n;
};

static void arg(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg(struct args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    a->v = xrealloc(a->v, (a->n + 2) * sizeof(char *));
    a->v[a->n++] = xvasprintf(fmt, ap);
    a->v[a->n] = NULL;
    va_end(ap);
}

const char *net_datapath_type(enum net_datapath dp, const char *auto_datapath)
{
    return dp == NET_DP_SYSTEM ? "system" : dp == NET_DP_NETDEV ? "netdev" : auto_datapath;
}

static const struct net_obs_bridge *obs_bridge(const struct net_observed *o, const char *name)
{
    for (size_t i = 0; i < o->n_bridges; i++)
        if (!strcmp(o->bridges[i].name, name))
            return &o->bridges[i];
    return NULL;
}

static const struct net_obs_port *obs_port(const struct net_observed *o, const char *name)
{
    for (size_t i = 0; i < o->n_ports; i++)
        if (!strcmp(o->ports[i].name, name))
            return &o->ports[i];
    return NULL;
}

static bool streq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* A desired bridge: a DVS or a NAT network. */
struct want_bridge {
    const char *name, *kind, *owner, *dp;
    unsigned mtu;
    const struct net_dvs *dvs;        /* NULL for NAT */
};

static size_t want_bridges(const struct net_config *cfg, const char *auto_dp,
                           struct want_bridge *out)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_dvs; i++)
        out[n++] = (struct want_bridge) { cfg->dvs[i].bridge, "dvs", cfg->dvs[i].name,
                                          net_datapath_type(cfg->dvs[i].datapath, auto_dp),
                                          cfg->dvs[i].mtu, &cfg->dvs[i] };
    for (size_t i = 0; i < cfg->n_nats; i++)
        out[n++] = (struct want_bridge) { cfg->nats[i].bridge, "nat", cfg->nats[i].name,
                                          auto_dp, cfg->nats[i].mtu, NULL };
    return n;
}

static char *bridge_fp(const struct want_bridge *w)
{
    return xasprintf("dp=%s;mtu=%u", w->dp, w->mtu);
}

static bool dvs_wants_qos(const struct net_dvs *d)
{
    for (size_t i = 0; i < d->n_pgs; i++)
        if (d->pgs[i].priority != NET_PRIO_NORMAL)
            return true;
    return false;
}

/* Uplink port name, membership part and full fingerprint. */
static const char *uplink_name(const struct net_dvs *d)
{
    return d->bond ? d->bond : d->uplink_nics[0];
}

static char *uplink_members(const struct net_dvs *d)
{
    char *s = xasprintf("port=%s;nics=", uplink_name(d));
    for (size_t i = 0; d->uplink_nics[i]; i++) {
        char *n = xasprintf("%s%s%s", s, i ? "+" : "", d->uplink_nics[i]);
        free(s);
        s = n;
    }
    return s;
}

static char *uplink_trunks(const struct net_dvs *d)
{
    if (!d->has_vlan_pool)
        return NULL;
    AUTOFREE char *pool = vlan_set_format(&d->vlan_pool);
    return xasprintf("0%s%s", *pool ? "," : "", pool);
}

static char *uplink_fp(const struct net_dvs *d)
{
    AUTOFREE char *m = uplink_members(d);
    AUTOFREE char *t = uplink_trunks(d);
    return xasprintf("%s|mode=%s;lacp=%s;trunks=%s;mtu=%u;qos=%d", m,
                     d->bond ? net_bond_mode_to_string(d->bond_mode) : "-",
                     d->bond ? net_lacp_to_string(d->lacp) : "-", t ? t : "all", d->mtu,
                     dvs_wants_qos(d));
}

/* The settings of the uplink port (for creation or in-place update). */
static void uplink_settings(struct args *a, const struct net_dvs *d, const char *fp)
{
    const char *name = uplink_name(d);
    AUTOFREE char *t = uplink_trunks(d);
    arg(a, "--");
    arg(a, "set");
    arg(a, "port");
    arg(a, "%s", name);
    if (t) {
        arg(a, "vlan_mode=trunk");
        arg(a, "trunks=%s", t);
    } else {
        arg(a, "trunks=[]");
    }
    if (d->bond) {
        arg(a, "bond_mode=%s", net_bond_mode_to_string(d->bond_mode));
        arg(a, "lacp=%s", net_lacp_to_string(d->lacp));
        arg(a, "other_config:bond-detect-mode=carrier");
        arg(a, "other_config:lacp-time=fast");
        arg(a, "bond_updelay=0");
        arg(a, "bond_downdelay=0");
    }
    arg(a, "external_ids:strata-uplink=%s", d->name);
    arg(a, "external_ids:strata-cfg=%s", fp);
    if (dvs_wants_qos(d)) {
        /* Three queues: 0 normal (default), 1 low, 2 high (htb priority 0 wins). */
        arg(a, "qos=@q");
        arg(a, "--");
        arg(a, "--id=@q");
        arg(a, "create");
        arg(a, "qos");
        arg(a, "type=linux-htb");
        arg(a, "other_config:max-rate=10000000000");
        arg(a, "queues:0=@q0");
        arg(a, "queues:1=@q1");
        arg(a, "queues:2=@q2");
        static const char *const prio[] = { "1", "2", "0" };
        for (int q = 0; q < 3; q++) {
            arg(a, "--");
            arg(a, "--id=@q%d", q);
            arg(a, "create");
            arg(a, "queue");
            arg(a, "other_config:priority=%s", prio[q]);
        }
    } else {
        arg(a, "qos=[]");
    }
    for (size_t i = 0; d->uplink_nics[i]; i++) {
        arg(a, "--");
        arg(a, "set");
        arg(a, "interface");
        arg(a, "%s", d->uplink_nics[i]);
        arg(a, "mtu_request=%u", d->mtu);
    }
}

static char *port_vlan_desc(const struct net_port *p)
{
    if (!p->pg || (!p->pg->vlan && !p->pg->trunk))
        return xstrdup("untagged");
    if (p->pg->vlan)
        return xasprintf("access:%u", p->pg->vlan);
    AUTOFREE char *t = vlan_set_format(&p->pg->trunk_vlans);
    return xasprintf("trunk:%s", t);
}

static char *port_fp(const struct net_port *p)
{
    AUTOFREE char *v = port_vlan_desc(p);
    return xasprintf("of=%u;mtu=%u;vlan=%s", NET_OFPORT_BASE + p->index, p->mtu, v);
}

static void port_settings(struct args *a, const struct net_port *p, const char *fp)
{
    arg(a, "--");
    arg(a, "set");
    arg(a, "port");
    arg(a, "%s", p->tap);
    if (p->pg && p->pg->trunk) {
        AUTOFREE char *t = vlan_set_format(&p->pg->trunk_vlans);
        arg(a, "vlan_mode=trunk");
        arg(a, "tag=[]");
        arg(a, "trunks=%s", t);
    } else {
        arg(a, "vlan_mode=access");
        if (p->pg && p->pg->vlan)
            arg(a, "tag=%u", p->pg->vlan);
        else
            arg(a, "tag=[]");
        arg(a, "trunks=[]");
    }
    arg(a, "external_ids:strata-vm=%s", p->vm);
    arg(a, "external_ids:strata-nic=%s", p->nic);
    arg(a, "external_ids:strata-cfg=%s", fp);
    arg(a, "--");
    arg(a, "set");
    arg(a, "interface");
    arg(a, "%s", p->tap);
    arg(a, "ofport_request=%u", NET_OFPORT_BASE + p->index);
    arg(a, "mtu_request=%u", p->mtu);
}

static bool port_wanted_on(const struct net_port *ports, size_t n, const char *name,
                           const char *bridge)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ports[i].tap, name))
            return streq(ports[i].bridge, bridge);
    return false;
}

char **net_plan_build(const struct net_config *cfg, const char *auto_datapath,
                      const struct net_port *ports, size_t n_ports,
                      const struct net_observed *obs)
{
    struct args a = { xcalloc(1, sizeof(char *)), 0 };
    struct want_bridge *want = xcalloc(cfg->n_dvs + cfg->n_nats + 1, sizeof(*want));
    size_t n_want = want_bridges(cfg, auto_datapath, want);

    /* 1. VM ports nobody wants (or wanted on another bridge). */
    for (size_t i = 0; i < obs->n_ports; i++) {
        const struct net_obs_port *o = &obs->ports[i];
        if (!o->vm || port_wanted_on(ports, n_ports, o->name, o->bridge))
            continue;
        arg(&a, "--");
        arg(&a, "--if-exists");
        arg(&a, "del-port");
        arg(&a, "%s", o->name);
    }
    /* 2. Uplinks that changed membership or whose DVS is gone. */
    for (size_t i = 0; i < obs->n_ports; i++) {
        const struct net_obs_port *o = &obs->ports[i];
        if (!o->uplink)
            continue;
        const struct net_dvs *d = net_config_dvs(cfg, o->uplink);
        bool keep = false;
        if (d && d->uplink_nics[0] && !strcmp(uplink_name(d), o->name) &&
            streq(o->bridge, d->bridge) && o->cfg) {
            AUTOFREE char *m = uplink_members(d);
            const char *bar = strchr(o->cfg, '|');
            keep = bar && (size_t) (bar - o->cfg) == strlen(m) &&
                   !strncmp(o->cfg, m, strlen(m));
        }
        if (!keep) {
            arg(&a, "--");
            arg(&a, "--if-exists");
            arg(&a, "del-port");
            arg(&a, "%s", o->name);
        }
    }
    /* 3. Strata bridges nobody wants. */
    for (size_t i = 0; i < obs->n_bridges; i++) {
        const struct net_obs_bridge *o = &obs->bridges[i];
        if (!o->dvs && !o->nat)
            continue;
        bool wanted = false;
        for (size_t k = 0; k < n_want; k++)
            if (!strcmp(want[k].name, o->name))
                wanted = true;
        if (!wanted) {
            arg(&a, "--");
            arg(&a, "--if-exists");
            arg(&a, "del-br");
            arg(&a, "%s", o->name);
        }
    }
    /* 4. Bridges, 5. uplinks. */
    for (size_t k = 0; k < n_want; k++) {
        const struct want_bridge *w = &want[k];
        const struct net_obs_bridge *o = obs_bridge(obs, w->name);
        AUTOFREE char *fp = bridge_fp(w);
        const char *owner = !o ? NULL : !strcmp(w->kind, "dvs") ? o->dvs : o->nat;
        if (!o || !streq(owner, w->owner) || !streq(o->cfg, fp)) {
            arg(&a, "--");
            arg(&a, "--may-exist");
            arg(&a, "add-br");
            arg(&a, "%s", w->name);
            arg(&a, "--");
            arg(&a, "set");
            arg(&a, "bridge");
            arg(&a, "%s", w->name);
            arg(&a, "datapath_type=%s", w->dp);
            arg(&a, "fail_mode=secure");
            arg(&a, "protocols=OpenFlow10,OpenFlow13,OpenFlow14");
            arg(&a, "external_ids:strata-%s=%s", w->kind, w->owner);
            arg(&a, "external_ids:strata-cfg=%s", fp);
            arg(&a, "--");
            arg(&a, "set");
            arg(&a, "interface");
            arg(&a, "%s", w->name);
            arg(&a, "mtu_request=%u", w->mtu);
        }
        const struct net_dvs *d = w->dvs;
        if (!d || !d->uplink_nics[0])
            continue;
        AUTOFREE char *ufp = uplink_fp(d);
        const struct net_obs_port *up = obs_port(obs, uplink_name(d));
        bool kept = false;
        if (up && up->uplink && streq(up->bridge, d->bridge) && up->cfg) {
            AUTOFREE char *m = uplink_members(d);
            const char *bar = strchr(up->cfg, '|');
            kept = bar && (size_t) (bar - up->cfg) == strlen(m) &&
                   !strncmp(up->cfg, m, strlen(m));
        }
        if (kept && streq(up->cfg, ufp))
            continue;
        if (!kept) {
            /* A NIC that is a port somewhere else (not ours) is moved. */
            for (size_t i = 0; d->uplink_nics[i]; i++) {
                const struct net_obs_port *x = obs_port(obs, d->uplink_nics[i]);
                if (x && !x->uplink) {
                    arg(&a, "--");
                    arg(&a, "--if-exists");
                    arg(&a, "del-port");
                    arg(&a, "%s", x->name);
                }
            }
            arg(&a, "--");
            if (d->bond) {
                arg(&a, "add-bond");
                arg(&a, "%s", d->bridge);
                arg(&a, "%s", d->bond);
                for (size_t i = 0; d->uplink_nics[i]; i++)
                    arg(&a, "%s", d->uplink_nics[i]);
            } else {
                arg(&a, "add-port");
                arg(&a, "%s", d->bridge);
                arg(&a, "%s", d->uplink_nics[0]);
            }
        }
        uplink_settings(&a, d, ufp);
    }
    /* 6. VM ports. */
    for (size_t i = 0; i < n_ports; i++) {
        const struct net_port *p = &ports[i];
        const struct net_obs_port *o = obs_port(obs, p->tap);
        AUTOFREE char *fp = port_fp(p);
        if (o && streq(o->bridge, p->bridge) && streq(o->vm, p->vm) && streq(o->cfg, fp))
            continue;
        if (o && !streq(o->bridge, p->bridge) && !o->vm) {
            /* An unmarked port of that name elsewhere: move it. */
            arg(&a, "--");
            arg(&a, "--if-exists");
            arg(&a, "del-port");
            arg(&a, "%s", p->tap);
        }
        arg(&a, "--");
        arg(&a, "--may-exist");
        arg(&a, "add-port");
        arg(&a, "%s", p->bridge);
        arg(&a, "%s", p->tap);
        port_settings(&a, p, fp);
    }
    free(want);
    return a.v;
}
