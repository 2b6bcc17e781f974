/* net_config.h - the desired network configuration of one host, as data.
 *
 * What an administrator (or the manager) asks of a host's network: the
 * distributed virtual switches it joins (one Open vSwitch bridge each, with an
 * uplink NIC or bond, an MTU and a VLAN pool) and their port groups (VLAN,
 * bandwidth limits, priority, broadcast suppression, DHCP isolation, IP-MAC
 * binding); security groups (stateful rule sets); host-local NAT networks;
 * the roles of the host's NICs (management, storage, business planes).
 *
 * Pure: parse and validate JSON (errors name the JSON field), serialize, look
 * up.  No I/O.  net_flows.c turns it (plus the plugged VM ports) into
 * OpenFlow rules, net_plan.c into ovs-vsctl commands, nat.c into dnsmasq and
 * nftables settings.  The JSON forms are documented in docs/network.md. */
#ifndef STRATA_NET_CONFIG_H
#define STRATA_NET_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

#define NET_MAX_DVS 64
#define NET_MAX_PORTGROUPS 256      /* per DVS */
#define NET_MAX_SGS 256
#define NET_MAX_SG_RULES 128        /* per group */
#define NET_MAX_SG_REMOTE_IPS 256   /* per group */
#define NET_MAX_NATS 16
#define NET_MAX_UPLINK_NICS 8
#define NET_MTU_MIN 1280
#define NET_MTU_MAX 9216

/* A set of VLAN ids 1..4094 (bit 0 and 4095 are never set). */
struct vlan_set {
    uint64_t bits[64];
};
bool vlan_set_has(const struct vlan_set *s, unsigned vid);
bool vlan_set_is_empty(const struct vlan_set *s);
/* Parses "100-200,300": ids 1..4094, ascending or not, overlaps allowed. */
int vlan_set_parse(const char *text, struct vlan_set *out, const char *field,
                   struct error **errp);
/* Returns a new canonical string ("100-200,300"); "" for the empty set. */
char *vlan_set_format(const struct vlan_set *s);

/* IPv4 helpers (host byte order). */
int ipv4_parse(const char *text, uint32_t *out);                /* 0 or -1 */
/* "a.b.c.d/n" or "a.b.c.d" (= /32); host bits must be zero. */
int ipv4_cidr_parse(const char *text, uint32_t *addr, unsigned *prefix, const char *field,
                    struct error **errp);
void ipv4_format(uint32_t a, char buf[16]);

enum net_datapath { NET_DP_AUTO, NET_DP_SYSTEM, NET_DP_NETDEV, NET_DP__COUNT };
enum net_bond_mode { NET_BOND_ACTIVE_BACKUP, NET_BOND_BALANCE_SLB, NET_BOND_BALANCE_TCP,
                     NET_BOND__COUNT };
enum net_lacp { NET_LACP_OFF, NET_LACP_ACTIVE, NET_LACP_PASSIVE, NET_LACP__COUNT };
enum net_priority { NET_PRIO_NORMAL, NET_PRIO_LOW, NET_PRIO_HIGH, NET_PRIO__COUNT };
enum sg_direction { SG_INGRESS, SG_EGRESS, SG_DIR__COUNT };
enum sg_protocol { SG_PROTO_ANY, SG_PROTO_TCP, SG_PROTO_UDP, SG_PROTO_ICMP, SG_PROTO__COUNT };
const char *net_datapath_to_string(enum net_datapath v);
const char *net_bond_mode_to_string(enum net_bond_mode v);
const char *net_lacp_to_string(enum net_lacp v);
const char *net_priority_to_string(enum net_priority v);
const char *sg_direction_to_string(enum sg_direction v);
const char *sg_protocol_to_string(enum sg_protocol v);

/* A rate limit; rate_kbps 0 = none.  Units are OpenFlow meter units:
 * kilobits (1000 bits) per second, burst in kilobits. */
struct net_rate {
    unsigned long long rate_kbps, burst_kbit;
};

struct net_portgroup {
    char *name;
    unsigned vlan;                  /* access VLAN 1..4094; 0: untagged (or trunk) */
    bool trunk;                     /* trunk port: 'trunk_vlans' tagged by the guest */
    struct vlan_set trunk_vlans;
    struct net_rate bw_in;          /* towards the VM */
    struct net_rate bw_out;         /* from the VM */
    enum net_priority priority;
    unsigned long long bcast_pps;   /* broadcast/multicast packets per second; 0: off */
    unsigned long long bcast_burst; /* packets */
    bool dhcp_isolation;            /* DHCP server replies from VM ports dropped */
    bool ip_mac_binding;            /* a port sends only from its MAC and bound IPs */
};

struct net_dvs {
    char *name;
    char *bridge;                   /* OVS bridge name, <= 15 bytes */
    unsigned mtu;
    enum net_datapath datapath;
    char **uplink_nics;             /* NULL-terminated; empty: no uplink */
    char *bond;                     /* bond port name when more than one NIC */
    enum net_bond_mode bond_mode;
    enum net_lacp lacp;
    bool has_vlan_pool;             /* false: the uplink carries every VLAN */
    struct vlan_set vlan_pool;
    struct net_portgroup *pgs;
    size_t n_pgs;
};

struct net_sg_rule {
    enum sg_direction direction;
    enum sg_protocol protocol;
    unsigned port_min, port_max;    /* tcp/udp; 0/0: any port */
    uint32_t remote_addr;           /* remote CIDR (default 0.0.0.0/0) ... */
    unsigned remote_prefix;
    char *remote_group;             /* ... or the members of this group */
};

struct net_sg {
    char *name;
    struct net_sg_rule *rules;
    size_t n_rules;
    char **remote_ips;              /* members on other hosts: CIDRs, NULL-terminated */
};

struct net_nat {
    char *name;
    char *bridge;
    uint32_t subnet;                /* network address */
    unsigned prefix;                /* 8..30 */
    uint32_t address;               /* the host's address on it (gateway, DHCP server) */
    uint32_t dhcp_start, dhcp_end;
    unsigned lease_s;
    unsigned mtu;
    bool masquerade;
};

enum net_plane { NET_PLANE_MANAGEMENT, NET_PLANE_STORAGE, NET_PLANE_BUSINESS, NET_PLANE__COUNT };
const char *net_plane_to_string(enum net_plane p);

struct net_config {
    struct net_dvs *dvs;
    size_t n_dvs;
    struct net_sg *sgs;
    size_t n_sgs;
    struct net_nat *nats;
    size_t n_nats;
    char **planes[NET_PLANE__COUNT];   /* NIC names per plane, NULL-terminated */
};

/* Object names: [A-Za-z0-9][A-Za-z0-9_.-]{0,31} (shared with vm_def.c). */
int net_name_validate(const char *name, const char *field, struct error **errp);
/* Linux interface names: [A-Za-z0-9_.-]{1,15}, not "." / "..". */
int net_ifname_validate(const char *name, const char *field, struct error **errp);

/* Parsers: 'name' is the object's name (from the URL); 'field' prefixes error
 * fields ("" for a request body).  Unknown keys are refused.  Each returns 0
 * and fills '*out' (cleared on failure), or -1. */
int net_dvs_from_json(const json_t *j, const char *name, const char *field, bool with_pgs,
                      struct net_dvs *out, struct error **errp);
int net_portgroup_from_json(const json_t *j, const char *name, const char *field,
                            struct net_portgroup *out, struct error **errp);
int net_sg_from_json(const json_t *j, const char *name, const char *field, struct net_sg *out,
                     struct error **errp);
int net_nat_from_json(const json_t *j, const char *name, const char *field, struct net_nat *out,
                      struct error **errp);
/* {"management": [...], "storage": [...], "business": [...]} (keys optional). */
int net_planes_from_json(const json_t *j, const char *field, char **out[NET_PLANE__COUNT],
                         struct error **errp);

/* Serializers: canonical JSON (every field spelled out); new references. */
json_t *net_dvs_to_json(const struct net_dvs *d, bool with_pgs);
json_t *net_portgroup_to_json(const struct net_portgroup *pg);
json_t *net_sg_to_json(const struct net_sg *sg);
json_t *net_nat_to_json(const struct net_nat *n);
json_t *net_planes_to_json(char **const planes[NET_PLANE__COUNT]);

/* The whole configuration: {"dvs": [...], "security_groups": [...], "nat": [...],
 * "planes": {...}}.  Cross-checks names (unique bridges, NICs used by one
 * uplink only, remote groups that exist). */
struct net_config *net_config_from_json(const json_t *j, struct error **errp);
json_t *net_config_to_json(const struct net_config *c);
struct net_config *net_config_new(void);
struct net_config *net_config_copy(const struct net_config *c);
/* Checks the cross-object rules; used after every change. */
int net_config_check(const struct net_config *c, struct error **errp);
void net_config_free(struct net_config *c);   /* Accepts NULL. */

void net_dvs_clear(struct net_dvs *d);
void net_portgroup_clear(struct net_portgroup *pg);
void net_sg_clear(struct net_sg *sg);
void net_nat_clear(struct net_nat *n);

/* Lookups; borrowed pointers or NULL. */
struct net_dvs *net_config_dvs(const struct net_config *c, const char *name);
struct net_portgroup *net_dvs_portgroup(const struct net_dvs *d, const char *name);
struct net_sg *net_config_sg(const struct net_config *c, const char *name);
struct net_nat *net_config_nat(const struct net_config *c, const char *name);

#endif
