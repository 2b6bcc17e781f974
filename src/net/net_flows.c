/* net_flows.c - the OpenFlow pipeline of a Strata bridge; see net_flows.h for
 * the tables.  Pure: the output is text for ovs-ofctl, pinned by the golden
 * files in tests/data/net/. */
#include "net/net_flows.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

enum {
    T_CLASSIFY = 0,
    T_PORT_SEC = 10,
    T_BCAST = 20,
    T_RATE_OUT = 25,
    T_SG_OUT = 30,
    T_SG_OUT_CT = 31,
    T_TO_VM = 40,
    T_SG_IN = 45,
    T_SG_IN_CT = 46,
};

void net_port_clear(struct net_port *p)
{
    if (!p)
        return;
    free(p->vm);
    free(p->nic);
    free(p->tap);
    free(p->bridge);
    strv_free(p->ips);
    memset(p, 0, sizeof(*p));
}

void net_flow_table_clear(struct net_flow_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_flows; i++)
        free(t->flows[i]);
    free(t->flows);
    free(t->meters);
    memset(t, 0, sizeof(*t));
}

static void add(struct net_flow_table *t, int table, int prio, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(struct net_flow_table *t, int table, int prio, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    AUTOFREE char *rest = xvasprintf(fmt, ap);
    va_end(ap);
    t->flows = xrealloc(t->flows, (t->n_flows + 1) * sizeof(char *));
    t->flows[t->n_flows++] = xasprintf("cookie=%s,table=%d,priority=%d,%s", NET_FLOW_COOKIE,
                                       table, prio, rest);
}

static void add_meter(struct net_flow_table *t, unsigned id, bool pktps,
                      unsigned long long rate, unsigned long long burst)
{
    t->meters = xrealloc(t->meters, (t->n_meters + 1) * sizeof(*t->meters));
    t->meters[t->n_meters++] = (struct net_meter) { id, pktps, rate, burst };
}

char *net_meter_spec(const struct net_meter *m)
{
    return xasprintf("meter=%u,%s,burst,band=type=drop,rate=%llu,burst_size=%llu", m->id,
                     m->pktps ? "pktps" : "kbps", m->rate, m->burst);
}

char *net_flow_table_text(const struct net_flow_table *t)
{
    size_t len = 1;
    for (size_t i = 0; i < t->n_flows; i++)
        len += strlen(t->flows[i]) + 1;
    char *s = xmalloc(len), *p = s;
    for (size_t i = 0; i < t->n_flows; i++) {
        size_t n = strlen(t->flows[i]);
        memcpy(p, t->flows[i], n);
        p[n] = '\n';
        p += n + 1;
    }
    *p = '\0';
    return s;
}

size_t net_port_range_masks(unsigned lo, unsigned hi, unsigned val[32], unsigned mask[32])
{
    size_t n = 0;
    while (lo <= hi && n < 32) {
        /* The largest aligned block starting at 'lo' that fits in lo..hi. */
        unsigned size = 1;
        while (size < 65536 && (lo & (size * 2 - 1)) == 0 && lo + size * 2 - 1 <= hi)
            size *= 2;
        val[n] = lo;
        mask[n] = 0xffff & ~(size - 1);
        n++;
        if (lo + size - 1 >= hi)
            break;
        lo += size;
    }
    return n;
}

/* ---- security group rules ---------------------------------------------------- */

/* "nw_dst=10.0.0.0/24," (egress) or "nw_src=..." (ingress); "" for 0/0. */
static char *remote_match(bool egress, const char *cidr)
{
    if (!strcmp(cidr, "0.0.0.0/0"))
        return xstrdup("");
    return xasprintf("%s=%s,", egress ? "nw_dst" : "nw_src", cidr);
}

/* The remote addresses a rule allows, as CIDR strings (NULL-terminated). */
static char **rule_remotes(const struct net_sg_rule *r, const struct net_config *cfg,
                           const struct net_port *ports, size_t n_ports)
{
    size_t n = 0;
    char **v = xcalloc(1, sizeof(char *));
#define PUSH(s)                                              \
    do {                                                     \
        v = xrealloc(v, (n + 2) * sizeof(char *));           \
        v[n++] = (s);                                        \
        v[n] = NULL;                                         \
    } while (0)
    if (!r->remote_group) {
        char a[16];
        ipv4_format(r->remote_addr, a);
        PUSH(xasprintf("%s/%u", a, r->remote_prefix));
        return v;
    }
    for (size_t i = 0; i < n_ports; i++) {
        if (!ports[i].sg || strcmp(ports[i].sg->name, r->remote_group))
            continue;
        for (size_t k = 0; ports[i].ips && ports[i].ips[k]; k++) {
            bool dup = false;
            for (size_t m = 0; m < n; m++)
                if (!strncmp(v[m], ports[i].ips[k], strlen(ports[i].ips[k])) &&
                    !strcmp(v[m] + strlen(ports[i].ips[k]), "/32"))
                    dup = true;
            if (!dup)
                PUSH(xasprintf("%s/32", ports[i].ips[k]));
        }
    }
    const struct net_sg *g = net_config_sg(cfg, r->remote_group);
    for (size_t k = 0; g && g->remote_ips && g->remote_ips[k]; k++)
        PUSH(strchr(g->remote_ips[k], '/') ? xstrdup(g->remote_ips[k])
                                            : xasprintf("%s/32", g->remote_ips[k]));
#undef PUSH
    return v;
}

static const char *proto_match(enum sg_protocol p)
{
    switch (p) {
    case SG_PROTO_TCP: return "tcp";
    case SG_PROTO_UDP: return "udp";
    case SG_PROTO_ICMP: return "icmp";
    default: return "ip";
    }
}

/* One flow per (remote, port block) of each rule of 'dir'; returns how many
 * rules of that direction the group has. */
static size_t add_rules(struct net_flow_table *t, const struct net_config *cfg,
                        const struct net_port *ports, size_t n_ports, const struct net_port *p,
                        enum sg_direction dir, unsigned ofport)
{
    bool egress = dir == SG_EGRESS;
    size_t count = 0;
    for (size_t r = 0; r < p->sg->n_rules; r++) {
        const struct net_sg_rule *rule = &p->sg->rules[r];
        if (rule->direction != dir)
            continue;
        count++;
        AUTOSTRV char **remotes = rule_remotes(rule, cfg, ports, n_ports);
        unsigned val[32], mask[32];
        size_t nb = 0;
        if (rule->port_min)
            nb = net_port_range_masks(rule->port_min, rule->port_max, val, mask);
        for (size_t k = 0; remotes[k]; k++) {
            AUTOFREE char *rm = remote_match(egress, remotes[k]);
            for (size_t b = 0; b < (nb ? nb : 1); b++) {
                AUTOFREE char *tp = !nb ? xstrdup("")
                                  : mask[b] == 0xffff ? xasprintf("tp_dst=%u,", val[b])
                                                      : xasprintf("tp_dst=0x%x/0x%x,", val[b],
                                                                  mask[b]);
                if (egress)
                    add(t, T_SG_OUT_CT, 100,
                        "ct_state=+new+trk,%s,in_port=%u,%s%sactions=ct(commit,zone=%u),"
                        "goto_table:%d",
                        proto_match(rule->protocol), ofport, rm, tp, p->index, T_TO_VM);
                else
                    add(t, T_SG_IN_CT, 100,
                        "ct_state=+new+trk,%s,reg7=%u,%s%sactions=ct(commit,zone=%u),NORMAL",
                        proto_match(rule->protocol), p->index, rm, tp, p->index);
            }
        }
    }
    return count;
}

/* ---- the pipeline ---------------------------------------------------------------- */

static void port_flows(struct net_flow_table *t, const struct net_config *cfg,
                       const struct net_port *ports, size_t n_ports, const struct net_port *p)
{
    static const struct net_portgroup none = { 0 };
    const struct net_portgroup *pg = p->pg ? p->pg : &none;
    unsigned of = NET_OFPORT_BASE + p->index;
    unsigned m_in = 4 * p->index + 1, m_out = 4 * p->index + 2, m_bc = 4 * p->index + 3;

    add(t, T_CLASSIFY, 100, "in_port=%u,actions=goto_table:%d", of, T_PORT_SEC);

    /* 10: port security */
    if (pg->dhcp_isolation) {
        add(t, T_PORT_SEC, 300, "udp,in_port=%u,tp_src=67,actions=drop", of);
        add(t, T_PORT_SEC, 300, "udp6,in_port=%u,tp_src=547,actions=drop", of);
    }
    if (pg->ip_mac_binding) {
        if (p->ips && p->ips[0]) {
            for (size_t i = 0; p->ips[i]; i++) {
                add(t, T_PORT_SEC, 200,
                    "arp,in_port=%u,dl_src=%s,arp_spa=%s,arp_sha=%s,actions=goto_table:%d", of,
                    p->mac, p->ips[i], p->mac, T_BCAST);
                add(t, T_PORT_SEC, 200, "ip,in_port=%u,dl_src=%s,nw_src=%s,actions=goto_table:%d",
                    of, p->mac, p->ips[i], T_BCAST);
            }
        } else {
            add(t, T_PORT_SEC, 200, "arp,in_port=%u,dl_src=%s,arp_sha=%s,actions=goto_table:%d",
                of, p->mac, p->mac, T_BCAST);
            add(t, T_PORT_SEC, 200, "ip,in_port=%u,dl_src=%s,actions=goto_table:%d", of, p->mac,
                T_BCAST);
        }
        /* A DHCP client has no address yet. */
        add(t, T_PORT_SEC, 200,
            "udp,in_port=%u,dl_src=%s,nw_src=0.0.0.0,tp_src=68,tp_dst=67,actions=goto_table:%d",
            of, p->mac, T_BCAST);
        add(t, T_PORT_SEC, 100, "in_port=%u,actions=drop", of);
    } else {
        add(t, T_PORT_SEC, 100, "in_port=%u,actions=goto_table:%d", of, T_BCAST);
    }

    /* 20: broadcast suppression */
    if (pg->bcast_pps) {
        add_meter(t, m_bc, true, pg->bcast_pps, pg->bcast_burst);
        add(t, T_BCAST, 100,
            "in_port=%u,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=meter:%u,"
            "goto_table:%d", of, m_bc, T_RATE_OUT);
    }

    /* 25: outbound bandwidth and priority */
    if (pg->bw_out.rate_kbps || pg->priority != NET_PRIO_NORMAL) {
        AUTOFREE char *meter = NULL, *queue = NULL;
        if (pg->bw_out.rate_kbps) {
            add_meter(t, m_out, false, pg->bw_out.rate_kbps, pg->bw_out.burst_kbit);
            meter = xasprintf("meter:%u,", m_out);
        }
        if (pg->priority != NET_PRIO_NORMAL)
            queue = xasprintf("set_queue:%d,", pg->priority == NET_PRIO_LOW ? 1 : 2);
        add(t, T_RATE_OUT, 100, "in_port=%u,actions=%s%sgoto_table:%d", of, meter ? meter : "",
            queue ? queue : "", T_SG_OUT);
    }

    /* 30/31: egress security group */
    if (p->sg) {
        add(t, T_SG_OUT, 100, "ip,in_port=%u,actions=ct(table=%d,zone=%u)", of, T_SG_OUT_CT,
            p->index);
        add(t, T_SG_OUT_CT, 150,
            "ct_state=+new+trk,udp,in_port=%u,tp_src=68,tp_dst=67,actions=goto_table:%d", of,
            T_TO_VM);
        if (add_rules(t, cfg, ports, n_ports, p, SG_EGRESS, of) == 0)
            add(t, T_SG_OUT_CT, 100,
                "ct_state=+new+trk,ip,in_port=%u,actions=ct(commit,zone=%u),goto_table:%d", of,
                p->index, T_TO_VM);
    }

    /* 40: towards the VM */
    if (p->sg || pg->bw_in.rate_kbps) {
        AUTOFREE char *meter = NULL;
        if (pg->bw_in.rate_kbps) {
            add_meter(t, m_in, false, pg->bw_in.rate_kbps, pg->bw_in.burst_kbit);
            meter = xasprintf("meter:%u,", m_in);
        }
        add(t, T_TO_VM, 100, "dl_dst=%s,actions=%sload:%u->NXM_NX_REG7[],goto_table:%d",
            p->mac, meter ? meter : "", p->index, T_SG_IN);
    }

    /* 45/46: ingress security group */
    if (p->sg) {
        add(t, T_SG_IN, 100, "ip,reg7=%u,actions=ct(table=%d,zone=%u)", p->index, T_SG_IN_CT,
            p->index);
        add_rules(t, cfg, ports, n_ports, p, SG_INGRESS, of);
    }
}

void net_flows_build(const struct net_config *cfg, const struct net_port *ports, size_t n_ports,
                     const char *bridge, struct net_flow_table *out)
{
    memset(out, 0, sizeof(*out));
    bool any_sg = false;
    for (size_t i = 0; i < n_ports; i++) {
        if (strcmp(ports[i].bridge, bridge))
            continue;
        port_flows(out, cfg, ports, n_ports, &ports[i]);
        any_sg |= ports[i].sg != NULL;
    }
    /* Defaults: each table passes what no port-specific flow took. */
    add(out, T_CLASSIFY, 0, "actions=goto_table:%d", T_TO_VM);
    add(out, T_BCAST, 0, "actions=goto_table:%d", T_RATE_OUT);
    add(out, T_RATE_OUT, 0, "actions=goto_table:%d", T_SG_OUT);
    add(out, T_SG_OUT, 0, "actions=goto_table:%d", T_TO_VM);
    add(out, T_TO_VM, 0, "actions=NORMAL");
    add(out, T_SG_IN, 0, "actions=NORMAL");
    if (any_sg) {
        add(out, T_SG_OUT_CT, 300, "ct_state=+inv+trk,actions=drop");
        add(out, T_SG_OUT_CT, 200, "ct_state=-new+est+trk,actions=goto_table:%d", T_TO_VM);
        add(out, T_SG_OUT_CT, 200, "ct_state=+rel+trk,actions=goto_table:%d", T_TO_VM);
        add(out, T_SG_OUT_CT, 0, "actions=drop");
        add(out, T_SG_IN_CT, 300, "ct_state=+inv+trk,actions=drop");
        add(out, T_SG_IN_CT, 200, "ct_state=-new+est+trk,actions=NORMAL");
        add(out, T_SG_IN_CT, 200, "ct_state=+rel+trk,actions=NORMAL");
        /* DHCP replies to a client that has no address yet. */
        add(out, T_SG_IN_CT, 150, "ct_state=+trk,udp,tp_src=67,tp_dst=68,actions=NORMAL");
        add(out, T_SG_IN_CT, 0, "actions=drop");
    }
}
