/* host_nics.h - the host's network interfaces, as the network planes see them.
 *
 * net_host_nics_parse() turns the JSON of `ip -j -d address show` into a
 * list of {"name", "mac", "mtu", "state", "kind", "addresses", "master"};
 * 'kind' is "physical" (a device behind it: parentbus in ip's output), the
 * link kind ip reports ("veth", "bond", "bridge", "vlan", "openvswitch",
 * "tun" ...) or "other".  The loopback and tun/tap devices (VM ports and the
 * user-space datapath's internal ports) are left out.  Pure;
 * net_host_nics_list() runs ip through the command runner. */
#ifndef STRATA_HOST_NICS_H
#define STRATA_HOST_NICS_H

#include <jansson.h>

#include "util/error.h"

json_t *net_host_nics_parse(const char *ip_json, struct error **errp);
json_t *net_host_nics_list(struct error **errp);

#endif
