#!/usr/bin/env bash
# test-manager-net.sh - the manager's network inventory over real agents and
# real Open vSwitch, packets on the wire.  Two namespace-hosts of the test bed
# (netbed.sh: each its own OVS and agent, a Linux bridge as the top-of-rack
# switch); the manager runs in the ToR's namespace and reaches the agents on
# their management addresses over mutual TLS, after they joined with
# one-time tokens.  Through the manager only:
#   a DVS with each host's uplink and a VLAN pool, a port group on VLAN 100,
#   a security group whose rule admits its own members; two VMs (one per
#   host, placed by their datastores) on that port group, in that group:
#   they ping each other across the hosts - which needs the manager to have
#   pushed each VM's address to the other host (remote_ips); the rule
#   removed: no more pings; a NAT network with DHCP: a third VM gets a lease.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/netbed.sh"

nb_init 2

MD=$NB_DIR/mgr
MSOCK=$MD/manager.sock
MGR_PID=
mkdir -p "$MD" "$NB_DIR/ds1" "$NB_DIR/ds2"
mgr_stop() { [ -n "$MGR_PID" ] && { kill -TERM "$MGR_PID" 2>/dev/null; wait "$MGR_PID" 2>/dev/null; }; MGR_PID=; }
trap 'mgr_stop; nb_cleanup' EXIT
STRATA_ADMIN_PASSWORD=test-admin-password nb_tor "$ST_BUILD/src/manager/strata-manager" \
    --db "$MD/manager.db" --socket "$MSOCK" --pki-dir "$MD/pki" --heartbeat-interval 500 \
    >>"$MD/manager.log" 2>&1 &
MGR_PID=$!
for _ in $(seq 1 200); do
    curl -s --unix-socket "$MSOCK" http://m/api/v1/version >/dev/null 2>&1 && break
    sleep 0.05
done
mapi() {    # mapi METHOD PATH [BODY]: as the administrator; status in $MD/status
    local args=(-s -o "$MD/body" -w '%{http_code}' --unix-socket "$MSOCK" -X "$1")
    [ -n "${TOK:-}" ] && args+=(-H "Authorization: Bearer $TOK")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}" "http://m$2" >"$MD/status"
    cat "$MD/body"
}
ok_status() { case $(cat "$MD/status") in 2*) return 0 ;; esac; echo "# $(cat "$MD/status") $(cat "$MD/body")"; return 1; }
task_ok() {  # task_ok METHOD PATH [BODY]: a task route; true when it succeeded
    local tid st i
    tid=$(mapi "$@" | jq -r '.task.id // empty')
    [ -n "$tid" ] || { echo "# $(cat "$MD/status") $(cat "$MD/body")"; return 1; }
    for i in $(seq 1 1200); do
        st=$(mapi GET "/api/v1/tasks/$tid" | jq -r .state)
        case $st in
        succeeded) return 0 ;;
        failed|cancelled) echo "# task $st: $(jq -c .error "$MD/body")"; return 1 ;;
        esac
        sleep 0.1
    done
    return 1
}
TOK=$(mapi POST /api/v1/sessions '{"name": "admin", "password": "test-admin-password"}' | jq -r .token)
check "manager up in the ToR namespace, logged in" [ -n "$TOK" ] && [ "$TOK" != null ]
mapi POST /api/v1/sites '{"name": "dc1"}' >/dev/null
mapi POST /api/v1/clusters '{"name": "c1", "site": "dc1"}' >/dev/null

# Each host joins; its agent restarts with the certificate, listening on mgmt0.
for i in 1 2; do
    jtok=$(mapi POST /api/v1/join-tokens '{"cluster": "c1"}' | jq -r .token)
    mapi POST /api/v1/hosts "{\"token\": \"$jtok\", \"name\": \"node$i\", \"address\": \"10.255.0.$i\", \"port\": 16509}" \
        >"$NB_DIR/h$i/joined.json"
    check "node$i joins" ok_status
    for f in cert_pem:agent.pem key_pem:agent-key.pem ca_pem:ca.pem; do
        jq -r ".${f%%:*}" "$NB_DIR/h$i/joined.json" >"$NB_DIR/h$i/${f#*:}"
    done
    chmod 600 "$NB_DIR/h$i/agent-key.pem"
    NB_AGENT_ARGS[h$i]="--listen 10.255.0.$i:16509 --tls-cert $NB_DIR/h$i/agent.pem --tls-key $NB_DIR/h$i/agent-key.pem --tls-ca $NB_DIR/h$i/ca.pem --tls-peer-cn strata-manager"
    nb_restart_agent "h$i"
done
connected() {
    local i
    for i in $(seq 1 100); do
        [ "$(mapi GET '/api/v1/hosts?state=connected' | jq -r .total)" = 2 ] && return 0
        sleep 0.1
    done
    return 1
}
check "both hosts connected over mutual TLS" connected
mapi POST /api/v1/datastores "{\"name\": \"ds1\", \"type\": \"local\", \"path\": \"$NB_DIR/ds1\", \"hosts\": [\"node1\"]}" >/dev/null
check "ds1 on node1" ok_status
mapi POST /api/v1/datastores "{\"name\": \"ds2\", \"type\": \"local\", \"path\": \"$NB_DIR/ds2\", \"hosts\": [\"node2\"]}" >/dev/null
check "ds2 on node2" ok_status

# The network, through the manager.
mapi POST /api/v1/vlan-pools '{"name": "pool", "ranges": "100-199"}' >/dev/null
check "VLAN pool 100-199" ok_status
mapi POST /api/v1/dvs '{"name": "prod", "vlan_pool": "pool", "hosts": [
    {"host": "node1", "uplink": {"nics": ["eth0"]}}, {"host": "node2", "uplink": {"nics": ["eth0"]}}]}' >/dev/null
check "DVS prod on both hosts, uplink eth0" ok_status
check "its bridge exists on node1's OVS" nb_vsctl h1 br-exists sd-prod
check "and on node2's" nb_vsctl h2 br-exists sd-prod
mapi POST /api/v1/dvs/prod/portgroups '{"name": "v300", "vlan": 300}' >/dev/null
check "a port group outside the pool: 400" [ "$(cat "$MD/status")" = 400 ]
mapi POST /api/v1/dvs/prod/portgroups '{"name": "v100", "vlan": 100}' >/dev/null
check "port group v100 (VLAN 100)" ok_status
mapi POST /api/v1/security-groups '{"name": "web", "rules": [
    {"direction": "ingress", "protocol": "icmp", "remote_group": "web"}]}' >/dev/null
check "security group web: ICMP from its own members" ok_status

# Two VMs, one per host (their datastores decide), in the group.
vm() {  # vm NAME DATASTORE IP
    jq -n --arg n "$1" --arg ds "$2" --arg ip "$3" --arg k "$GUEST_KERNEL" --arg i "$GUEST_INITRD" '{
        name: $n, memory: 192, vcpus: 1, start: true,
        boot: {kernel: $k, initrd: $i,
               cmdline: ("console=ttyS0 quiet swiotlb=noforce strata.dhcp=0 strata.ip=eth0:" + $ip + "/24")},
        disks: [{datastore: $ds, size: 16777216, cache: "writeback"}],
        nics: [{network: {dvs: "prod", portgroup: "v100", security_group: "web", ips: [$ip]}}]}'
}
check "VM a (ds1) created and started" task_ok POST /api/v1/vms "$(vm a ds1 10.100.0.1)"
check "VM b (ds2) created and started" task_ok POST /api/v1/vms "$(vm b ds2 10.100.0.2)"
check "a is on node1, b on node2" \
    [ "$(mapi GET /api/v1/vms | jq -r '[.items[] | .name + "@" + .host_name] | sort | join(",")')" = "a@node1,b@node2" ]
check "a boots" nb_wait_guest h1 a 120
check "b boots" nb_wait_guest h2 b 120
remote_ips() { nb_api h2 GET /v1/net/security-groups/web | jq -r '.remote_ips | sort | join(",")'; }
check "node2's copy of the group lists both members" [ "$(remote_ips)" = "10.100.0.1,10.100.0.2" ]
check "a pings b across the hosts (VLAN 100, group web)" nb_ping h1 a 10.100.0.2
check "b pings a" nb_ping h2 b 10.100.0.1
mapi PUT /api/v1/security-groups/web '{"rules": []}' >/dev/null
check "the rule removed through the manager" ok_status
check "no more pings" eval '! nb_ping h1 a 10.100.0.2 2'
mapi PUT /api/v1/security-groups/web '{"rules": [{"direction": "ingress", "protocol": "icmp", "remote_group": "web"}]}' >/dev/null
check "the rule back: pings again" nb_ping h1 a 10.100.0.2
mapi DELETE /api/v1/security-groups/web >/dev/null
check "a group in use is not deleted (409)" [ "$(cat "$MD/status")" = 409 ]

# A NAT network on node2, and a VM on it with DHCP.
mapi POST /api/v1/nat-networks '{"name": "natnet", "subnet": "10.77.0.0/24", "hosts": ["node2"]}' >/dev/null
check "NAT network natnet on node2" ok_status
body=$(jq -n --arg k "$GUEST_KERNEL" --arg i "$GUEST_INITRD" '{
    name: "c", memory: 192, vcpus: 1, start: true,
    boot: {kernel: $k, initrd: $i, cmdline: "console=ttyS0 quiet swiotlb=noforce"},
    disks: [{datastore: "ds2", size: 16777216, cache: "writeback"}],
    nics: [{network: {nat: "natnet"}}]}')
check "VM c on natnet created and started" task_ok POST /api/v1/vms "$body"
lease() {
    local i
    for i in $(seq 1 150); do
        nb_api h2 GET /v1/net/nat/natnet/leases | jq -e '.leases | length > 0' >/dev/null && return 0
        sleep 0.2
    done
    return 1
}
check "c got a DHCP lease from natnet" lease
check "c reaches its gateway" nb_ping h2 c 10.77.0.1
mapi GET /api/v1/networks >/dev/null
check "net-list shows the NAT network and the port group" \
    [ "$(jq -r '[.items[] | .type + ":" + .name] | sort | join(",")' "$MD/body")" = "nat:natnet,portgroup:v100" ]

# Teardown through the manager.
for v in a b c; do
    check "destroy $v" task_ok POST "/api/v1/vms/$v/destroy"
    check "delete $v" task_ok DELETE "/api/v1/vms/$v"
done
mapi DELETE /api/v1/security-groups/web >/dev/null
check "the group, unused now, is deleted" ok_status
check "and gone from node1" [ "$(nb_api h1 GET /v1/net/security-groups/web >/dev/null; last_status)" = 404 ]
if grep -qE 'ERROR: (Address|Undefined)Sanitizer|runtime error:' "$MD/manager.log"; then
    fail "sanitizer report in the manager log"
fi
