#!/usr/bin/env bash
# strata-aio.sh - the all-in-one Strata on this machine (the README's main job):
# the manager on its embedded SQLite database, the local node agent joined to
# it with a one-time token (mutual TLS from then on), the agent's own Open
# vSwitch, a local datastore and the NAT network "default", and a demo VM
# made from the project's test guest, created and booted through the manager
# with the strata CLI.
#
#   tools/strata-aio.sh          install what is missing, build, start it all,
#                                boot the demo VM and show its console
#   tools/strata-aio.sh status   hosts, VMs and processes
#   tools/strata-aio.sh stop     shut the demo VM down, stop agent, manager, OVS
#   tools/strata-aio.sh clean    stop, and remove the VM, the NAT network and var/
#
# Everything lives under ./var in the checkout (database, certificates,
# sockets, OVS, images, logs).  Outside it: the Debian packages, and what a
# NAT network needs on the host (the bridge sn-default with 192.168.122.1/24,
# a dnsmasq for DHCP on it, the nftables table strata_nat_default and IPv4
# forwarding), removed again by 'clean'.  The CLI then works with
#   export STRATA_CONFIG=$PWD/var/cli.conf
#   build/src/cli/strata list
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
var=$top/var
msock=$var/manager.sock
strata=$top/build/src/cli/strata
export STRATA_CONFIG=$var/cli.conf
export OVS_RUNDIR=$var/ovs OVS_LOGDIR=$var/ovs OVS_DBDIR=$var/ovs
vm=demo

say() { printf '\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'strata-aio: %s\n' "$*" >&2; exit 1; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }
stop_pidfile() {
    local f=$1 i
    alive "$f" || { rm -f "$f"; return 0; }
    kill -TERM "$(cat "$f" 2>/dev/null)" 2>/dev/null || true
    for i in $(seq 1 100); do alive "$f" || break; sleep 0.1; done
    rm -f "$f"
}

stop_all() {
    if alive "$var/agent.pid" && alive "$var/manager.pid"; then
        say "shutting the demo VM down"
        "$strata" shutdown $vm --timeout 20 2>/dev/null || true
    fi
    say "stopping the agent, the manager and Open vSwitch"
    stop_pidfile "$var/agent.pid"
    stop_pidfile "$var/manager.pid"
    stop_pidfile "$var/ovs/ovs-vswitchd.pid"
    stop_pidfile "$var/ovs/ovsdb-server.pid"
}

case ${1:-up} in
status)
    for p in manager agent; do
        if alive "$var/$p.pid"; then echo "$p: running (pid $(cat "$var/$p.pid"))"; else echo "$p: not running"; fi
    done
    if alive "$var/manager.pid"; then
        "$strata" host-list || true
        "$strata" list --all || true
    fi
    exit 0 ;;
stop)
    stop_all
    exit 0 ;;
clean)
    if alive "$var/manager.pid" && alive "$var/agent.pid"; then
        say "removing the demo VM and the NAT network"
        "$strata" destroy $vm >/dev/null 2>&1 || true
        "$strata" undefine $vm >/dev/null 2>&1 || true
        "$strata" nat-delete default >/dev/null 2>&1 || true
    fi
    stop_all
    rm -rf "$var"
    exit 0 ;;
up) ;;
*) echo "usage: $0 [up|status|stop|clean]" >&2; exit 2 ;;
esac

say "installing missing Debian packages"
tools/install-deps.sh
say "building"
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/manager/strata-manager src/agent/strata-agent src/cli/strata >/dev/null
say "building the test guest (Debian kernel + busybox initramfs)"
tools/build-guest.sh build/guest >/dev/null
mkdir -p "$var/images" "$var/datastore" "$var/ovs" "$var/agent/state" "$var/agent/run" \
         "$var/agent/pki"
chmod 700 "$var"
cp -u build/guest/vmlinuz build/guest/initramfs.cpio.gz "$var/images/"

# 1. Open vSwitch for the agent, in var/ovs (user-space datapath).
if ! alive "$var/ovs/ovs-vswitchd.pid"; then
    say "starting Open vSwitch (private, in var/ovs)"
    [ -f "$var/ovs/conf.db" ] ||
        ovsdb-tool create "$var/ovs/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    alive "$var/ovs/ovsdb-server.pid" ||
        ovsdb-server "$var/ovs/conf.db" --remote="punix:$var/ovs/db.sock" \
            --pidfile="$var/ovs/ovsdb-server.pid" --unixctl="$var/ovs/ovsdb-server.ctl" \
            --log-file="$var/ovs/ovsdb-server.log" --detach --no-chdir -vconsole:off \
            >/dev/null 2>&1
    ovs-vsctl --db="unix:$var/ovs/db.sock" --no-wait init
    ovs-vswitchd "unix:$var/ovs/db.sock" --pidfile="$var/ovs/ovs-vswitchd.pid" \
        --unixctl="$var/ovs/ovs-vswitchd.ctl" --log-file="$var/ovs/ovs-vswitchd.log" \
        --detach --no-chdir -vconsole:off >/dev/null 2>&1
fi

# 2. The manager, on SQLite.  The first administrator's password is made
# once and kept in var/admin-password (mode 0600).
if [ ! -f "$var/admin-password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$var/admin-password")
fi
if ! alive "$var/manager.pid"; then
    say "starting strata-manager (SQLite: var/manager.db)"
    build/src/manager/strata-manager --db "$var/manager.db" --socket "$msock" \
        --pki-dir "$var/pki" --admin-password-file "$var/admin-password" \
        --log-file "$var/manager.log" </dev/null >/dev/null 2>&1 &
    echo $! >"$var/manager.pid"
    for _ in $(seq 1 100); do
        curl -s --unix-socket "$msock" http://m/api/v1/version >/dev/null 2>&1 && break
        alive "$var/manager.pid" || die "the manager did not start: see var/manager.log"
        sleep 0.1
    done
fi
"$strata" --connect "unix:$msock" login admin --password-file "$var/admin-password" >/dev/null
"$strata" site-list --json | jq -e '.items | any(.name == "local")' >/dev/null ||
    "$strata" site-create local >/dev/null
"$strata" cluster-list --json | jq -e '.items | any(.name == "default")' >/dev/null ||
    "$strata" cluster-create default --site local >/dev/null

# 3. The local agent joins with a one-time token; the manager's CA issues its
# certificate, and from then on they speak mutual TLS on 127.0.0.1.
host=$(hostname -s | tr -c 'A-Za-z0-9._\n-' '-' | cut -c1-63)
[ -n "$host" ] || host=node1
if [ ! -f "$var/agent/pki/agent.pem" ]; then
    say "joining the local agent as host '$host'"
    port=16509
    while [ -n "$(ss -ltnH "sport = :$port")" ]; do port=$((port + 1)); done
    echo "$port" >"$var/agent/port"
    jtok=$("$strata" join-token-create --cluster default)
    "$strata" host-join "$host" --token "$jtok" --address 127.0.0.1 --port "$port" \
        --dir "$var/agent/pki" >/dev/null
fi
if ! alive "$var/agent.pid"; then
    say "starting strata-agent (mutual TLS on 127.0.0.1:$(cat "$var/agent/port"))"
    build/src/agent/strata-agent --state-dir "$var/agent/state" --run-dir "$var/agent/run" \
        --socket "$var/agent.sock" --image-root "$var/images" \
        --listen "127.0.0.1:$(cat "$var/agent/port")" \
        --tls-cert "$var/agent/pki/agent.pem" --tls-key "$var/agent/pki/agent-key.pem" \
        --tls-ca "$var/agent/pki/ca.pem" --tls-peer-cn strata-manager \
        --log-file "$var/agent.log" </dev/null >/dev/null 2>&1 &
    echo $! >"$var/agent.pid"
fi
for _ in $(seq 1 100); do
    [ "$("$strata" host-info "$host" --json | jq -r .state)" = connected ] && break
    alive "$var/agent.pid" || die "the agent stopped: see var/agent.log"
    sleep 0.2
done
"$strata" host-list

# 4. A datastore and the NAT network, pushed to the host by the manager.
if ! "$strata" pool-info local >/dev/null 2>&1; then
    say "datastore 'local' (var/datastore)"
    "$strata" pool-create local --path "$var/datastore" --host "$host"
fi
if ! "$strata" net-list --json | jq -e '.items | any(.name == "default")' >/dev/null; then
    say "NAT network 'default' (192.168.122.0/24, DHCP, masquerade)"
    "$strata" nat-create default --subnet 192.168.122.0/24 --host "$host"
fi

# 5. The demo VM, through the manager.
if ! "$strata" dominfo $vm >/dev/null 2>&1; then
    say "creating the demo VM (a thin 1 GiB disk on 'local', a NIC on 'default')"
    "$strata" create --name $vm --memory 256M --vcpus 1 \
        --disk datastore=local,size=1G,cache=writeback --nic nat=default \
        --kernel "$var/images/vmlinuz" --initrd "$var/images/initramfs.cpio.gz" \
        --cmdline "console=ttyS0 quiet swiotlb=noforce"
fi
if [ "$("$strata" dominfo $vm --json | jq -r .state)" != running ]; then
    say "booting the demo VM"
    "$strata" start $vm
fi
say "console of the demo VM (strata console demo)"
"$strata" console $vm --until STRATA-NET --timeout 120 >/dev/null ||
    "$strata" console $vm --until STRATA-GUEST-READY --timeout 60 >/dev/null || true
"$strata" console $vm | tail -15
echo
say "the demo VM runs; try:"
cat <<EOF
  export STRATA_CONFIG=$STRATA_CONFIG
  build/src/cli/strata list
  build/src/cli/strata dominfo demo
  build/src/cli/strata snapshot-create-as demo first
  build/src/cli/strata event-list
  build/src/cli/strata console demo --follow
  tools/strata-aio.sh status | stop | clean
(administrator 'admin', password in var/admin-password)
EOF
