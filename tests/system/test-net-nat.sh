#!/usr/bin/env bash
# test-net-nat.sh - the host-local NAT network (like libvirt's "default") and
# the host-level network API on one simulated host (tests/system/netbed.sh):
#   - a guest on the NAT network gets an address from dnsmasq with no
#     configuration, the lease is visible through the API, the guest reaches
#     the host and, masqueraded, the outside (the bed's switch, which has no
#     route back to the NAT subnet);
#   - restarting the agent keeps dnsmasq (same PID) and the guest's traffic;
#   - host NICs are reported and the management/storage/business planes
#     assigned; unknown NICs are refused;
#   - MAC addresses handed out by the host never collide.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netbed.sh"

nb_init 1

check "NAT network default (192.168.122.0/24)" nb_api_ok h1 PUT /v1/net/nat/default \
    '{"subnet": "192.168.122.0/24", "lease_s": 600}'
check "its bridge carries the host address 192.168.122.1" eval \
    'nb_exec h1 ip -o -4 addr show dev sn-default | grep -q "inet 192.168.122.1/24"'
check "dnsmasq runs for it" eval 'nb_pid_of "$NB_DIR/h1/run/net/nat-default.pid" >/dev/null'
check "nftables masquerades the subnet" eval \
    'nb_exec h1 nft list table ip strata_nat_default | grep -q "ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 masquerade"'
check "IPv4 forwarding is on in the host" eval '[ "$(nb_exec h1 cat /proc/sys/net/ipv4/ip_forward)" = 1 ]'

check "n1 on the NAT network, DHCP" nb_guest h1 n1 dhcp 52:54:00:05:00:01 '{"nat": "default"}'
check "n1 gets an address from the NAT network's DHCP" \
    eval 'ST_SOCK=$NB_DIR/h1/agent.sock wait_console n1 "STRATA-NET eth0 192\.168\.122\." 90'
addr=$(ST_SOCK=$NB_DIR/h1/agent.sock last_marker n1 "STRATA-NET eth0" | awk '{print $3}')
note "n1 got $addr"
check "the lease is visible through the API" eval \
    'nb_api h1 GET /v1/net/nat/default/leases | jq -e --arg ip "$addr" ".leases | any(.mac == \"52:54:00:05:00:01\" and .ip == \$ip)" >/dev/null'
check "n1 up with qemu-ga" nb_wait_guest h1 n1 60
check "n1 reaches the host (192.168.122.1)" nb_ping h1 n1 192.168.122.1
check "n1 has a default route through the host" eval \
    'nb_sh h1 n1 "ip route" | grep -q "default via 192.168.122.1"'
check "n1 reaches the outside (the switch, 10.255.0.254) through masquerading" nb_ping h1 n1 10.255.0.254
check "deleting the NAT network in use is refused (409)" eval \
    '! nb_api_ok h1 DELETE /v1/net/nat/default && [ "$(last_status)" = 409 ]'

pid_before=$(nb_pid_of "$NB_DIR/h1/run/net/nat-default.pid")
nb_restart_agent h1 KILL
check "after an agent kill -9 + restart dnsmasq is the same process" \
    eval '[ "$(nb_pid_of "$NB_DIR/h1/run/net/nat-default.pid")" = "$pid_before" ]'
check "n1 still reaches the outside" nb_ping h1 n1 10.255.0.254

# ---- host NICs and planes
nics=$(nb_api h1 GET /v1/net/host-nics)
check "host NICs: mgmt0 with its address, eth0" eval '
    jq -e ".nics | any(.name == \"mgmt0\" and (.addresses | index(\"10.255.0.1/24\")))" <<<"$nics" >/dev/null &&
    jq -e ".nics | any(.name == \"eth0\" and .kind == \"veth\")" <<<"$nics" >/dev/null'
check "VM taps are not host NICs" eval '! jq -e ".nics | any(.name == \"t-n1\")" <<<"$nics" >/dev/null'
check "planes: management mgmt0, business eth0" nb_api_ok h1 PUT /v1/net/planes \
    '{"management": ["mgmt0"], "business": ["eth0"]}'
check "host NICs show their roles" eval '
    nb_api h1 GET /v1/net/host-nics | jq -e "(.nics[] | select(.name == \"mgmt0\") | .roles) == [\"management\"] and
        (.nics[] | select(.name == \"eth0\") | .roles) == [\"business\"]" >/dev/null'
check "an unknown NIC in a plane is refused (404, field storage[0])" eval '
    ! nb_api_ok h1 PUT /v1/net/planes "{\"storage\": [\"eth9\"]}" && [ "$(last_status)" = 404 ] &&
    [ "$(nb_api h1 PUT /v1/net/planes "{\"storage\": [\"eth9\"]}" | jq -r .error.field)" = "storage[0]" ]'
check "planes kept after a failed change" eval \
    '[ "$(nb_api h1 GET /v1/net/planes | jq -cS .)" = "{\"business\":[\"eth0\"],\"management\":[\"mgmt0\"],\"storage\":[]}" ]'

# ---- MACs
m1=$(nb_api h1 POST /v1/net/macs '{"count": 50}' | jq -r '.macs[]')
m2=$(nb_api h1 POST /v1/net/macs '{"count": 50}' | jq -r '.macs[]')
check "100 MACs handed out, all distinct" eval '[ "$(printf "%s\n%s\n" "$m1" "$m2" | sort -u | wc -l)" = 100 ]'
check "none equals a MAC defined on the host" eval '! printf "%s\n%s\n" "$m1" "$m2" | grep -qx 52:54:00:05:00:01'
check "all unicast with the default prefix" eval '! printf "%s\n%s\n" "$m1" "$m2" | grep -qv "^52:54:00:"'
check "a multicast prefix is refused" eval \
    '! nb_api_ok h1 POST /v1/net/macs "{\"prefix\": \"01:00:5e\"}" && [ "$(last_status)" = 400 ]'
