/* net_apply.h - the engine that makes a host's Open vSwitch, flows, meters
 * and NAT services match the desired configuration.
 *
 * Every program runs through util/command.h with explicit addresses, so one
 * machine can hold several simulated hosts (tests/system/netbed.sh):
 *   ovs-vsctl --db=unix:<ovs_rundir>/db.sock ...
 *   ovs-ofctl -O OpenFlow14 ... unix:<ovs_rundir>/<bridge>.mgmt
 *   ip, nft, dnsmasq (in the agent's network namespace)
 *
 * An apply is idempotent and disturbs nothing that already matches: the
 * ovs-vsctl transaction comes from net_plan.c (empty when OVSDB matches),
 * flows go through one atomic "replace-flows" bundle (OVS changes only the
 * flows that differ), meters are modified in place.  The engine remembers
 * what it applied per bridge; net_engine_check() compares that with what
 * ovs-vswitchd holds (flow counts) so a restarted ovs-vswitchd is noticed and
 * re-programmed.  Not thread-safe: callers serialize (the agent's apply
 * lock). */
#ifndef STRATA_NET_APPLY_H
#define STRATA_NET_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "net/net_config.h"
#include "net/net_flows.h"
#include "util/error.h"

struct net_engine_config {
    const char *ovs_rundir;         /* OVS's run directory (db.sock, <br>.mgmt) */
    const char *run_dir;            /* flow files, dnsmasq pid and log files */
    const char *state_dir;          /* dnsmasq lease files */
    const char *auto_datapath;      /* "system"/"netdev", or NULL: detect */
    const char *ip_forward_path;    /* NULL: /proc/sys/net/ipv4/ip_forward (tests) */
};

struct net_engine;

struct net_engine *net_engine_new(const struct net_engine_config *c);
void net_engine_free(struct net_engine *e);     /* Accepts NULL.  Leaves services running. */

/* "system" when the openvswitch kernel module is loaded, else "netdev". */
const char *net_engine_auto_datapath(const struct net_engine *e);
const char *net_engine_db(const struct net_engine *e);      /* "unix:<rundir>/db.sock" */
bool net_engine_ovs_present(const struct net_engine *e);

/* Converges everything.  'managed' false and an empty configuration: does
 * nothing at all (a host that never configured networking leaves a shared
 * OVS alone).  'force' re-sends flows and meters even when the engine's
 * memory says they are in place. */
int net_engine_apply(struct net_engine *e, const struct net_config *cfg,
                     const struct net_port *ports, size_t n_ports, bool managed, bool force,
                     struct error **errp);

/* Returns 1 when OVS or a NAT service drifted from what was applied
 * (restarted ovs-vswitchd, deleted port, dead dnsmasq), 0 when in sync. */
int net_engine_check(struct net_engine *e, const struct net_config *cfg,
                     const struct net_port *ports, size_t n_ports, struct error **errp);

/* Stops the dnsmasq of every NAT network and removes its nftables table
 * (used by tests and when the agent forgets its configuration). */
void net_engine_stop_services(struct net_engine *e, const struct net_config *cfg);

#endif
