#!/usr/bin/env bash
# test-net-bond.sh - uplink bonds and jumbo frames across two hosts
# (tests/system/netbed.sh with two business uplinks per host, MTU 9000):
#   - h1's DVS uplink is an active-backup bond of eth0 and eth1; when the
#     active member's cable is pulled (the switch side goes down) traffic keeps
#     flowing over the other member, and again when it comes back;
#   - the DVS MTU 9000 reaches bridges, uplinks and taps: 8000-byte pings
#     between guests on different hosts pass unfragmented;
#   - the bond's mode can change in place (balance-slb) without re-creating it.
. "$(dirname "$0")/lib.sh"
NB_UPLINKS=2
NB_MTU=9000
. "$(dirname "$0")/netbed.sh"

nb_init 2

check "h1: DVS prod, MTU 9000, active-backup bond of eth0+eth1" nb_api_ok h1 PUT /v1/net/dvs/prod \
    '{"mtu": 9000, "uplink": {"nics": ["eth0", "eth1"], "bond": "bond0", "mode": "active-backup", "lacp": "off"}}'
check "h2: DVS prod, MTU 9000, uplink eth0" nb_api_ok h2 PUT /v1/net/dvs/prod \
    '{"mtu": 9000, "uplink": {"nics": ["eth0"]}}'
for h in h1 h2; do
    check "$h: port group v50" nb_api_ok $h PUT /v1/net/dvs/prod/portgroups/v50 '{"vlan": 50}'
done
check "bond0 is an active-backup bond of eth0 and eth1" eval '
    s=$(nb_appctl h1 bond/show bond0) && grep -q "bond_mode: active-backup" <<<"$s" &&
    grep -q "member eth0" <<<"$s" && grep -q "member eth1" <<<"$s"'
check "MTU 9000 on h1's bridge and bond members" eval '
    [ "$(nb_vsctl h1 get interface sd-prod mtu)" = 9000 ] && [ "$(nb_vsctl h1 get interface eth1 mtu)" = 9000 ]'

check "j1 on h1" nb_guest h1 j1 10.5.0.1/24 52:54:00:06:00:01 '{"dvs": "prod", "portgroup": "v50"}'
check "j2 on h2" nb_guest h2 j2 10.5.0.2/24 52:54:00:06:00:02 '{"dvs": "prod", "portgroup": "v50"}'
check "j1 up" nb_wait_guest h1 j1 90
check "j2 up" nb_wait_guest h2 j2 90
check "taps have MTU 9000" eval '[ "$(nb_exec h1 cat /sys/class/net/t-j1/mtu)" = 9000 ]'
check "guests raise their MTU to 9000" eval '
    nb_sh h1 j1 "ip link set eth0 mtu 9000" && nb_sh h2 j2 "ip link set eth0 mtu 9000"'
check "j1 pings j2 across the bond" nb_ping h1 j1 10.5.0.2
check "8000-byte pings pass (jumbo frames end to end)" \
    eval 'nb_sh h1 j1 "ping -c 3 -W 2 -s 8000 10.5.0.2" >/dev/null'

nb_appctl h1 bond/show bond0 | sed 's/^/#   /'
act=$(nb_appctl h1 bond/show bond0 | awk '/^member /{m=$2; sub(":","",m)} /active member/ && !/mac/{print m}' | head -1)
[ -n "$act" ] || act=$(nb_appctl h1 bond/show bond0 | grep -o "active member mac.*(eth[0-9])" | grep -o "eth[0-9]")
note "active member: ${act:-unknown}"
check "one member is active" eval '[ -n "$act" ]'
idx=${act#eth}
other=eth$((1 - ${idx:-0}))

# Pings every 0.1 s for 8 s while the active member's cable is pulled after 2 s.
nb_sh h1 j1 'ping -q -i 0.1 -c 80 -W 1 10.5.0.2 2>&1 | grep "packet loss"' 40 >"$NB_DIR/ping.out" 2>&1 &
pinger=$!
sleep 2
nb_link h1 "${idx:-0}" down
note "switch side of h1 $act down"
wait "$pinger"
loss=$(sed -n 's/.* \([0-9]*\)% packet loss.*/\1/p' "$NB_DIR/ping.out")
note "pings during the failover: $(cat "$NB_DIR/ping.out")"
check "traffic kept flowing through the failover (loss ${loss:-?}% <= 20%)" \
    eval '[ -n "$loss" ] && [ "$loss" -le 20 ]'
check "the other member ($other) is now active" eval \
    'nb_appctl h1 bond/show bond0 | grep -A2 "^member $other" | grep -q "active member"'
check "j1 pings j2 on the backup member" nb_ping h1 j1 10.5.0.2
nb_link h1 "${idx:-0}" up
sleep 1
check "member $act back: still flowing" nb_ping h1 j1 10.5.0.2
check "bond mode changed in place to balance-slb" eval '
    before=$(nb_vsctl h1 get port bond0 _uuid) &&
    nb_api_ok h1 PUT /v1/net/dvs/prod "{\"mtu\": 9000, \"uplink\": {\"nics\": [\"eth0\", \"eth1\"], \"bond\": \"bond0\", \"mode\": \"balance-slb\"}}" &&
    [ "$(nb_vsctl h1 get port bond0 bond_mode)" = balance-slb ] &&
    [ "$(nb_vsctl h1 get port bond0 _uuid)" = "$before" ]'
check "j1 pings j2 with balance-slb" nb_ping h1 j1 10.5.0.2
check "balance-tcp without LACP is refused" eval '
    ! nb_api_ok h1 PUT /v1/net/dvs/prod "{\"uplink\": {\"nics\": [\"eth0\", \"eth1\"], \"mode\": \"balance-tcp\"}}" &&
    [ "$(last_status)" = 400 ]'
