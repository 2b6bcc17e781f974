#!/usr/bin/env bash
# test-net-vlan.sh - the seed's DVS scenario across two hosts (tests/system/netbed.sh):
#   - guests on the same DVS and port-group VLAN on different hosts ping each other;
#   - a guest in another VLAN of the same DVS cannot reach them;
#   - when the uplink path does not carry the VLAN (the ToR drops it, or the
#     host's DVS VLAN pool leaves it out) they do not talk, and do again after;
#   - a trunk port: a guest's VLAN sub-interface reaches an access-VLAN guest;
#   - two OVS bridges (DVSs) on one host do not talk to each other;
#   - restarting the agent (kill -9) and ovs-vswitchd re-establishes ports and
#     flows without disturbing the running guests.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netbed.sh"

nb_init 2

for h in h1 h2; do
    check "$h joins DVS prod with uplink eth0" \
        nb_api_ok "$h" PUT /v1/net/dvs/prod '{"uplink": {"nics": ["eth0"]}}'
    check "$h port groups v100, v200, trunk" eval '
        nb_api_ok '"$h"' PUT /v1/net/dvs/prod/portgroups/v100 "{\"vlan\": 100}" &&
        nb_api_ok '"$h"' PUT /v1/net/dvs/prod/portgroups/v200 "{\"vlan\": 200}" &&
        nb_api_ok '"$h"' PUT /v1/net/dvs/prod/portgroups/trunk "{\"trunk\": \"100-199\"}"'
done
# A second DVS on h1 without uplink: a separate bridge.
check "h1 joins DVS lab (no uplink)" nb_api_ok h1 PUT /v1/net/dvs/lab '{}'
check "h1 lab port group v100" nb_api_ok h1 PUT /v1/net/dvs/lab/portgroups/v100 '{"vlan": 100}'

NET() { jq -cn --arg d "$1" --arg p "$2" '{dvs: $d, portgroup: $p}'; }
check "a1 on h1 prod/v100" nb_guest h1 a1 10.1.0.1/24 52:54:00:01:00:01 "$(NET prod v100)"
check "a2 on h2 prod/v100" nb_guest h2 a2 10.1.0.2/24 52:54:00:01:00:02 "$(NET prod v100)"
check "b2 on h2 prod/v200" nb_guest h2 b2 10.1.0.3/24 52:54:00:01:00:03 "$(NET prod v200)"
check "t1 on h1 prod/trunk" nb_guest h1 t1 none 52:54:00:01:00:04 "$(NET prod trunk)"
for g in "h1 a1" "h2 a2" "h2 b2" "h1 t1"; do
    set -- $g
    check "$2 up with qemu-ga" nb_wait_guest "$1" "$2" 90
done

check "ports listed with OpenFlow ports and zones" eval \
    'nb_api h1 GET /v1/net/ports | jq -e ".ports | length == 2 and all(.ofport > 1000 and .resolved)" >/dev/null'
check "tap of a1 is an access port of VLAN 100 on sd-prod" \
    eval '[ "$(nb_vsctl h1 get port t-a1 tag)" = 100 ] && [ "$(nb_vsctl h1 port-to-br t-a1)" = sd-prod ]'

# Same DVS, same VLAN, different hosts.
check "a1 (h1) pings a2 (h2) in VLAN 100" nb_ping h1 a1 10.1.0.2
check "a2 (h2) pings a1 (h1) in VLAN 100" nb_ping h2 a2 10.1.0.1
# Other VLAN: same subnet, no path.
check "b2 (VLAN 200) cannot reach a2 on its own host" eval '! nb_ping h2 b2 10.1.0.2 2'
check "b2 (VLAN 200) cannot reach a1 across hosts" eval '! nb_ping h2 b2 10.1.0.1 2'

# Trunk port: the guest tags VLAN 100 itself.
check "t1 creates eth0.100 with 10.1.0.4" nb_sh h1 t1 \
    'ip link add link eth0 name eth0.100 type vlan id 100 && ip addr add 10.1.0.4/24 dev eth0.100 && ip link set eth0.100 up'
check "t1's eth0.100 (trunk) reaches a2 (access VLAN 100, other host)" nb_ping h1 t1 10.1.0.2
check "t1's eth0.100 reaches a1 (same host)" nb_ping h1 t1 10.1.0.1
check "a VLAN outside the trunk range (200) is not carried" eval '
    nb_sh h1 t1 "ip link add link eth0 name eth0.200 type vlan id 200 && ip addr add 10.1.0.5/32 dev eth0.200 && ip link set eth0.200 up && ip route add 10.1.0.3/32 dev eth0.200" &&
    ! nb_ping h1 t1 10.1.0.3 2'

# The physical path stops carrying VLAN 100 towards h2.
nb_tor_block_vlan h2 100
check "ToR drops VLAN 100 to h2: a1 and a2 no longer talk" eval '! nb_ping h1 a1 10.1.0.2 2'
nb_tor_unblock_vlan h2 100
check "ToR carries VLAN 100 again: a1 pings a2" nb_ping h1 a1 10.1.0.2
# The host's DVS VLAN pool leaves VLAN 100 out of its uplink.
check "h2's DVS pool narrowed to VLAN 200" \
    nb_api_ok h2 PUT /v1/net/dvs/prod '{"uplink": {"nics": ["eth0"]}, "vlans": "200"}'
check "h2's uplink trunks are 0 and 200" eval '[ "$(nb_vsctl h2 get port eth0 trunks)" = "[0, 200]" ]'
check "uplink without VLAN 100: a1 and a2 no longer talk" eval '! nb_ping h1 a1 10.1.0.2 2'
check "h2's DVS pool back to 1-4094" \
    nb_api_ok h2 PUT /v1/net/dvs/prod '{"uplink": {"nics": ["eth0"]}, "vlans": "1-4094"}'
check "a1 pings a2 again" nb_ping h1 a1 10.1.0.2

# Two bridges on one host do not talk: move a1's NIC to DVS lab (hot-unplug +
# hot-plug), same VLAN number, same subnet.  The guest names the new NIC eth0
# again and its /init puts the static address back on it.
W1() { ST_SOCK=$NB_DIR/h1/agent.sock wait_marker a1 "$1" 30; }
check "a1's NIC moves to DVS lab (detach + attach)" eval '
    nb_api_ok h1 DELETE /v1/vms/a1/nics/nic0 && W1 "STRATA-NICS" &&
    nb_api_ok h1 POST /v1/vms/a1/nics "$(jq -cn --argjson n "$(NET lab v100)" \
        "{id: \"nic1\", mac: \"52:54:00:01:00:11\", tap: \"t-a1b\", network: \$n}")" &&
    W1 "STRATA-NICS eth0"'
check "a1's new tap is on sd-lab" eval '[ "$(nb_vsctl h1 port-to-br t-a1b)" = sd-lab ]'
check "a1 on sd-lab cannot reach t1 on sd-prod (same host, same VLAN id)" \
    eval '! nb_ping h1 a1 10.1.0.4 2'
check "a1 on sd-lab cannot reach a2 either" eval '! nb_ping h1 a1 10.1.0.2 2'
check "old tap t-a1 left OVS" eval '! nb_vsctl h1 port-to-br t-a1 2>/dev/null'
check "a1's NIC back on prod/v100" eval '
    nb_api_ok h1 DELETE /v1/vms/a1/nics/nic1 && W1 "STRATA-NICS" &&
    nb_api_ok h1 POST /v1/vms/a1/nics "$(jq -cn --argjson n "$(NET prod v100)" \
        "{id: \"nic2\", mac: \"52:54:00:01:00:12\", tap: \"t-a1c\", network: \$n}")" &&
    W1 "STRATA-NICS eth0"'
check "a1 (hot-plugged NIC) pings a2" nb_ping h1 a1 10.1.0.2 5

# Idempotent apply: agent killed and restarted, then ovs-vswitchd restarted.
flows_before=$(nb_ofctl h1 dump-flows sd-prod --no-stats | sort | md5sum)
nb_restart_agent h1 KILL
check "after an agent kill -9 + restart the flows are unchanged" \
    eval '[ "$(nb_ofctl h1 dump-flows sd-prod --no-stats | sort | md5sum)" = "$flows_before" ]'
check "a1 still pings a2 after the agent restart" nb_ping h1 a1 10.1.0.2
check "agent reports the plugged port again" eval \
    'nb_api h1 GET /v1/net/ports | jq -e "[.ports[] | select(.vm == \"a1\")] | length == 1" >/dev/null'
nb_restart_vswitchd h2
ok "ovs-vswitchd of h2 restarted"
restored() {
    local i
    for i in $(seq 1 40); do
        [ "$(nb_ofctl h2 dump-aggregate sd-prod 2>/dev/null | sed -n 's/.*flow_count=\([0-9]*\).*/\1/p')" -gt 6 ] 2>/dev/null && return 0
        sleep 0.25
    done
    return 1
}
check "the agent re-programs h2's flows after the ovs-vswitchd restart" restored
check "a1 pings a2 after h2's ovs-vswitchd restart" nb_ping h1 a1 10.1.0.2 5
check "b2 still cannot reach a2 (VLANs re-applied)" eval '! nb_ping h2 b2 10.1.0.2 2'
check "a2 kept running through it" eval '[ "$(nb_api h2 GET /v1/vms/a2 | jq -r .state)" = running ]'
