/* net_flows.h - OpenFlow rules and meters of one bridge, computed from the
 * configuration and the VM ports plugged on it.  Pure: no I/O.
 *
 * Forwarding stays with OVS's NORMAL action (MAC learning, access/trunk VLAN
 * tagging on the ports, bonds); the tables below only filter, meter and
 * track connections before NORMAL:
 *
 *   0  classify: from a VM port -> 10; anything else (uplink, host) -> 40
 *   10 port security: DHCP isolation (drop DHCP server replies from the VM),
 *      IP-MAC binding (only the bound MAC, IPs and ARP; DHCP client allowed)
 *   20 broadcast suppression: broadcast/multicast from the VM -> pktps meter
 *   25 outbound bandwidth (kbps meter) and priority (set_queue)
 *   30 egress security group: IP from the VM -> conntrack in the port's zone
 *   31   established/related pass, new connections matching an egress rule
 *        (or any, if the group has none) are committed, the rest dropped
 *   40 to a VM (by destination MAC): inbound bandwidth meter; reg7 := zone
 *   45 ingress security group: IP -> conntrack in the destination port's zone
 *   46   established/related and DHCP replies pass, new connections matching
 *        an ingress rule are committed, the rest dropped (default deny)
 *
 * Port 'index' i (1..NET_MAX_PORTS) gives the OpenFlow port NET_OFPORT_BASE+i
 * (set with ofport_request), conntrack zone i and meters 4i+1 (in), 4i+2
 * (out), 4i+3 (broadcast).  Every flow carries cookie NET_FLOW_COOKIE. */
#ifndef STRATA_NET_FLOWS_H
#define STRATA_NET_FLOWS_H

#include <stdbool.h>
#include <stddef.h>

#include "net/net_config.h"

#define NET_MAX_PORTS 16000
#define NET_OFPORT_BASE 1000
#define NET_FLOW_COOKIE "0x5354"

/* A VM NIC plugged into a bridge.  Strings are owned; 'pg' and 'sg' are
 * borrowed from the configuration the port was resolved against. */
struct net_port {
    char *vm, *nic, *tap;
    char mac[18];
    unsigned index;
    char *bridge;
    const struct net_portgroup *pg;   /* NULL on a NAT network: untagged, no filters */
    const struct net_sg *sg;          /* NULL: no security group */
    char **ips;                       /* bound IPv4 addresses, NULL-terminated */
    unsigned mtu;
};
void net_port_clear(struct net_port *p);

struct net_meter {
    unsigned id;
    bool pktps;                       /* packets/s; else kilobits/s */
    unsigned long long rate, burst;
};

struct net_flow_table {
    char **flows;                     /* ovs-ofctl flow syntax, one per entry */
    size_t n_flows;
    struct net_meter *meters;
    size_t n_meters;
};
void net_flow_table_clear(struct net_flow_table *t);
/* Returns a new string: the flows, one per line, for ovs-ofctl replace-flows. */
char *net_flow_table_text(const struct net_flow_table *t);
/* Returns a new string: the ovs-ofctl meter spec
 * "meter=N,kbps,burst,band=type=drop,rate=R,burst_size=B". */
char *net_meter_spec(const struct net_meter *m);

/* Builds the table of 'bridge'.  'ports' lists every plugged port of the host
 * (those of other bridges count as members of their security groups). */
void net_flows_build(const struct net_config *cfg, const struct net_port *ports, size_t n_ports,
                     const char *bridge, struct net_flow_table *out);

/* Splits the port range lo..hi (1..65535) into value/mask pairs; returns how
 * many were written to 'val'/'mask' (at most 32). */
size_t net_port_range_masks(unsigned lo, unsigned hi, unsigned val[32], unsigned mask[32]);

#endif
