/* net_api.h - the agent's network module: the host's part of the distributed
 * virtual switches, port groups, security groups, NAT networks and network
 * planes, behind /v1/net (docs/network.md).
 *
 * Plugged in through agent_modules[] (modules.c).  State: the desired
 * configuration (src/net/net_config.h) and the VM NICs plugged now, in
 * <state-dir>/net.json; every change is applied at once through the engine
 * (src/net/net_apply.h) and re-checked by a worker thread every few seconds,
 * so a restarted agent or ovs-vswitchd converges again without touching
 * running guests.  Hooks: vm_prepare plugs a VM's NICs (their OVS ports and
 * flows exist before QEMU creates the taps; an unknown DVS/port group/group
 * fails the start), vm_stopped unplugs them (deferred to the worker: the
 * monitor loop must not block), nic_plug/nic_unplug follow NIC hot-plug.
 * Open vSwitch is reached through $OVS_RUNDIR (default /var/run/openvswitch). */
#ifndef STRATA_NET_API_H
#define STRATA_NET_API_H

#include "agent/agent.h"

extern const struct agent_module net_module;

#endif
