#!/usr/bin/env bash
# test-net-security.sh - port security across two hosts (tests/system/netbed.sh):
#   - IP-MAC binding: a guest that changes its IP or its MAC is cut off, and
#     comes back when it restores them;
#   - DHCP isolation: a guest running a DHCP server on an isolated port group
#     hands out no lease; with isolation off the same server does;
#   - security groups (stateful, OVS conntrack): inbound TCP on an allowed
#     port connects, another port does not, replies to the guest's own
#     outbound connections pass; a rule added later takes effect at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netbed.sh"

nb_init 2

PG='{"vlan": 30, "ip_mac_binding": true, "dhcp_isolation": true}'
SG='{"rules": [{"direction": "ingress", "protocol": "tcp", "port_min": 80},
               {"direction": "ingress", "protocol": "icmp"}]}'
for h in h1 h2; do
    check "$h: DVS prod, port group secure (binding + DHCP isolation), group web" eval '
        nb_api_ok '"$h"' PUT /v1/net/dvs/prod "{\"uplink\": {\"nics\": [\"eth0\"]}}" &&
        nb_api_ok '"$h"' PUT /v1/net/dvs/prod/portgroups/secure "$PG" &&
        nb_api_ok '"$h"' PUT /v1/net/security-groups/web "$SG"'
done
check "an unknown security group on a NIC fails the start" eval '
    nb_api_ok h1 POST /v1/vms "$(guest_def bad "$(jq -cn "{nics: [{id: \"n0\", mac: \"52:54:00:03:00:99\", tap: \"t-bad\",
        network: {dvs: \"prod\", portgroup: \"secure\", security_group: \"nope\"}}]}")")" &&
    ! nb_api_ok h1 POST /v1/vms/bad/start && [ "$(last_status)" = 404 ] &&
    nb_api_ok h1 DELETE /v1/vms/bad'

check "s1 on h1: secure, bound to 10.3.0.1, group web" nb_guest h1 s1 10.3.0.1/24 52:54:00:03:00:01 \
    '{"dvs": "prod", "portgroup": "secure", "security_group": "web", "ips": ["10.3.0.1"]}'
check "c2 on h2: secure, bound to 10.3.0.2, no group" nb_guest h2 c2 10.3.0.2/24 52:54:00:03:00:02 \
    '{"dvs": "prod", "portgroup": "secure", "ips": ["10.3.0.2"]}'
check "s1 up" nb_wait_guest h1 s1 90
check "c2 up" nb_wait_guest h2 c2 90

# ---- IP-MAC binding
check "c2 pings s1 (bound addresses; ICMP allowed by group web)" nb_ping h2 c2 10.3.0.1
check "c2 takes another IP (10.3.0.9)" nb_sh h2 c2 \
    'ip addr del 10.3.0.2/24 dev eth0; ip addr add 10.3.0.9/24 dev eth0; ip neigh flush dev eth0 2>/dev/null; true'
check "spoofed IP: c2 is cut off" eval '! nb_ping h2 c2 10.3.0.1 2'
check "c2 restores its IP" nb_sh h2 c2 'ip addr del 10.3.0.9/24 dev eth0; ip addr add 10.3.0.2/24 dev eth0'
check "c2 pings s1 again" nb_ping h2 c2 10.3.0.1
check "c2 changes its MAC" nb_sh h2 c2 \
    'ip link set eth0 down; ip link set eth0 address 52:54:00:03:00:66; ip link set eth0 up;
     ip addr add 10.3.0.2/24 dev eth0 2>/dev/null; ip neigh flush dev eth0 2>/dev/null; true'
check "spoofed MAC: c2 is cut off" eval '! nb_ping h2 c2 10.3.0.1 2'
check "c2 restores its MAC" nb_sh h2 c2 \
    'ip link set eth0 down; ip link set eth0 address 52:54:00:03:00:02; ip link set eth0 up;
     ip addr add 10.3.0.2/24 dev eth0 2>/dev/null; true'
check "c2 pings s1 again" nb_ping h2 c2 10.3.0.1 5
drops() {
    nb_ofctl h2 dump-flows sd-prod "table=10,in_port=1001" |
        grep "priority=100,in_port=1001 actions=drop" | sed -n "s/.*n_packets=\([0-9]*\),.*/\1/p"
}
check "ARP claiming s1's address from c2 is dropped (binding drop counter grows)" eval '
    before=$(drops)
    nb_sh h2 c2 "ip addr add 10.3.0.1/32 dev eth0; arping -c 3 -w 4 -U -s 10.3.0.1 -I eth0 10.3.0.1;
        ip addr del 10.3.0.1/32 dev eth0" >/dev/null 2>&1
    after=$(drops); note "binding drops: ${before:-?} -> ${after:-?}"
    [ "${after:-0}" -ge $(( ${before:-0} + 3 )) ]'

# ---- DHCP isolation
check "s1 runs a DHCP server (udhcpd, 10.3.0.100-110)" nb_sh h1 s1 '
    printf "start 10.3.0.100\nend 10.3.0.110\ninterface eth0\nlease_file /tmp/udhcpd.leases\nopt subnet 255.255.255.0\n" >/tmp/udhcpd.conf
    touch /tmp/udhcpd.leases; udhcpd -I 10.3.0.1 /tmp/udhcpd.conf'
dhcp_try() { nb_sh h2 c2 'udhcpc -i eth0 -n -q -t 3 -T 2 -s /bin/true 2>&1' 30; }
out=$(dhcp_try)
check "isolation on: c2 gets no lease from s1" eval '! grep -q "lease of" <<<"$out"'
note "udhcpc: $(tr '\n' ' ' <<<"$out" | cut -c1-160)"
check "port group secure without DHCP isolation" nb_api_ok h1 PUT /v1/net/dvs/prod/portgroups/secure \
    '{"vlan": 30, "ip_mac_binding": true, "dhcp_isolation": false}'
out=$(dhcp_try)
check "isolation off: the same server hands c2 a lease" grep -q "lease of 10.3.0.1[01][0-9]* obtained" <<<"$out"
note "udhcpc: $(tr '\n' ' ' <<<"$out" | cut -c1-160)"
check "port group secure with DHCP isolation again" nb_api_ok h1 PUT /v1/net/dvs/prod/portgroups/secure "$PG"

# ---- security group web on s1: ingress tcp/80 and icmp only
check "s1 serves HTTP on 80 and 8080, c2 on 8081" eval '
    nb_sh h1 s1 "mkdir -p /tmp/www && echo hello-s1 >/tmp/www/index.html && httpd -p 80 -h /tmp/www && httpd -p 8080 -h /tmp/www" &&
    nb_sh h2 c2 "mkdir -p /tmp/www && echo hello-c2 >/tmp/www/index.html && httpd -p 8081 -h /tmp/www"'
fetch() { nb_sh "$1" "$2" "timeout 6 wget -q -O - http://$3/ 2>/dev/null" 20; }
check "inbound TCP to an allowed port (80) connects" eval '[ "$(fetch h2 c2 10.3.0.1:80)" = hello-s1 ]'
check "inbound TCP to another port (8080) is refused" eval '[ -z "$(fetch h2 c2 10.3.0.1:8080)" ]'
check "s1's own outbound connection (to c2:8081): the replies pass" \
    eval '[ "$(fetch h1 s1 10.3.0.2:8081)" = hello-c2 ]'
check "s1 itself still answers on 8080 locally (the group filters the wire only)" \
    eval '[ "$(fetch h1 s1 127.0.0.1:8080)" = hello-s1 ]'
check "conntrack zone of s1's port holds the connections" eval \
    'nb_appctl h1 dpctl/dump-conntrack | grep -q "zone=1,"'
check "group web gains ingress tcp/8080" nb_api_ok h1 PUT /v1/net/security-groups/web \
    '{"rules": [{"direction": "ingress", "protocol": "tcp", "port_min": 80},
                {"direction": "ingress", "protocol": "tcp", "port_min": 8080, "port_max": 8080},
                {"direction": "ingress", "protocol": "icmp"}]}'
check "inbound TCP to 8080 now connects" eval '[ "$(fetch h2 c2 10.3.0.1:8080)" = hello-s1 ]'
check "a group with a remote CIDR: only c2's /32 may reach 80" nb_api_ok h1 PUT /v1/net/security-groups/web \
    '{"rules": [{"direction": "ingress", "protocol": "tcp", "port_min": 80, "remote_cidr": "10.3.0.7/32"},
                {"direction": "ingress", "protocol": "icmp"}]}'
check "c2 (10.3.0.2) is not 10.3.0.7: refused on 80" eval '[ -z "$(fetch h2 c2 10.3.0.1:80)" ]'
check "deleting a group in use is refused (409)" eval \
    '! nb_api_ok h1 DELETE /v1/net/security-groups/web && [ "$(last_status)" = 409 ]'
