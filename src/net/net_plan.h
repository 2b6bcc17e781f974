/* net_plan.h - from desired bridges and ports plus what OVSDB holds now, the
 * one ovs-vsctl transaction that converges them.  Pure: no I/O.
 *
 * Everything Strata creates in OVSDB is marked in external_ids:
 *   bridge  strata-dvs=<dvs> or strata-nat=<nat>, strata-cfg=<fingerprint>
 *   port    strata-uplink=<owner> (uplink NIC or bond) or strata-vm=<vm> +
 *           strata-nic=<id> (VM taps), strata-cfg=<fingerprint>
 * The fingerprint is every setting the plan writes, so an object whose
 * fingerprint matches is left alone: re-applying an unchanged configuration
 * (agent restart, periodic check) issues no command and disturbs nothing.
 * Objects without a strata-* mark are never touched; marked ones nobody wants
 * any more are deleted. */
#ifndef STRATA_NET_PLAN_H
#define STRATA_NET_PLAN_H

#include <stddef.h>

#include "net/net_config.h"
#include "net/net_flows.h"
#include "util/error.h"

struct net_obs_bridge {
    char *name;
    char *dvs, *nat, *cfg;          /* external_ids, NULL when absent */
};

struct net_obs_port {
    char *name;
    char *bridge;                   /* NULL: in no bridge */
    char *vm, *uplink, *cfg;        /* external_ids */
};

struct net_observed {
    struct net_obs_bridge *bridges;
    size_t n_bridges;
    struct net_obs_port *ports;
    size_t n_ports;
};

/* Parses the output of
 *   ovs-vsctl --format=json --columns=name,ports,external_ids list Bridge
 *             -- --columns=_uuid,name,external_ids list Port
 * (two JSON objects, one per line). */
int net_observed_parse(const char *text, struct net_observed *out, struct error **errp);
void net_observed_clear(struct net_observed *o);

/* Returns the ovs-vsctl arguments (NULL-terminated, new; free with strv_free)
 * that make OVSDB match the configuration and 'ports'; an empty vector when
 * nothing differs.  'auto_datapath' ("system" or "netdev") is used for DVSs
 * and NAT networks whose datapath is "auto". */
char **net_plan_build(const struct net_config *cfg, const char *auto_datapath,
                      const struct net_port *ports, size_t n_ports,
                      const struct net_observed *obs);

/* The datapath_type a DVS or NAT network gets. */
const char *net_datapath_type(enum net_datapath dp, const char *auto_datapath);

#endif
