# netbed.sh - a multi-host test bed on one machine (sourced, bash, after lib.sh).
#
# nb_init N creates N simulated hosts h1..hN and a top-of-rack switch:
#
#   namespace snb<id>-tor   Linux bridge "tor0" (no VLAN filtering: tagged
#                           frames pass untouched), address 10.255.0.254/24
#   namespace snb<id>-hK    its own ovsdb-server + ovs-vswitchd (private run,
#                           log and db directories under $NB_DIR/hK/ovs), its
#                           own strata-agent (socket $NB_DIR/hK/agent.sock,
#                           OVS_RUNDIR pointing at that OVS), and links into
#                           the ToR:
#                             mgmt0  10.255.0.K/24, default route via .254
#                                    (management plane; never an OVS port)
#                             eth0 .. eth<NB_UPLINKS-1>  business uplinks,
#                                    no address (for a DVS uplink or bond);
#                                    ToR side: hKe0 ...
#
# Everything is named after one bed id and torn down by name and PID on exit
# (agents, QEMUs, dnsmasq, ovs-vswitchd, ovsdb-server: only processes whose
# PID files or command lines point into $NB_DIR, or that live in the bed's own
# namespaces); nothing is killed by pattern.  See docs/internals/test-bed.md.
#
# Settings (before nb_init): NB_UPLINKS (business uplinks per host, default 1),
# NB_MTU (MTU of every bed link, default 1500).
#
# Helpers:
#   nb_api HOST METHOD PATH [BODY]     lib.sh's api against HOST's agent
#   nb_api_ok HOST METHOD PATH [BODY]  same, true on 2xx (body in $API_BODY)
#   nb_vsctl HOST ARGS / nb_ofctl HOST ARGS / nb_appctl HOST ARGS
#   nb_exec HOST CMD... / nb_tor CMD...      run inside a namespace
#   nb_link HOST IDX up|down           the ToR side of HOST's uplink ethIDX
#   nb_tor_block_vlan HOST VID / nb_tor_unblock_vlan HOST VID
#                                      the ToR stops/starts carrying VLAN VID
#                                      on HOST's uplinks (nftables, bridge family)
#   nb_restart_agent HOST [SIGNAL]     stop (TERM or KILL) and start the agent
#                                      (with NB_AGENT_ARGS[HOST] added, e.g. a
#                                      --listen with the certificate a join gave)
#   nb_restart_vswitchd HOST           stop and start HOST's ovs-vswitchd
#   nb_guest HOST VM IP/PFX [EXTRA_JSON] [NIC_NETWORK_JSON]
#                                      define + start a test guest with one NIC
#   nb_sh HOST VM 'COMMAND' [TIMEOUT_S]   run a shell command in the guest over
#                                      qemu-ga (guest-exec); prints its output,
#                                      returns its exit status

NB_ID=
NB_DIR=
NB_HOSTS=()
NB_UPLINKS=${NB_UPLINKS:-1}
NB_MTU=${NB_MTU:-1500}
declare -A NB_AGENT_PID=()
declare -A NB_AGENT_ARGS=()

nb_ns() { echo "snb$NB_ID-$1"; }
nb_tor_ns() { echo "snb$NB_ID-tor"; }
nb_exec() { local h=$1; shift; ip netns exec "$(nb_ns "$h")" "$@"; }
nb_tor() { ip netns exec "$(nb_tor_ns)" "$@"; }
nb_ovsdir() { echo "$NB_DIR/$1/ovs"; }
nb_vsctl() { local h=$1; shift; ovs-vsctl --db="unix:$(nb_ovsdir "$h")/db.sock" --timeout=10 "$@"; }
nb_ofctl() {
    local h=$1 verb=$2 br=$3; shift 3
    ovs-ofctl -O OpenFlow14 "$verb" "unix:$(nb_ovsdir "$h")/$br.mgmt" "$@"
}
nb_appctl() { local h=$1; shift; ovs-appctl -t "$(nb_ovsdir "$h")/ovs-vswitchd.ctl" "$@"; }

nb_api() {
    local h=$1; shift
    ST_SOCK=$NB_DIR/$h/agent.sock api "$@"
}
nb_api_ok() {
    local h=$1; shift
    ST_SOCK=$NB_DIR/$h/agent.sock api_ok "$@"
}

nb_bail() {
    echo "Bail out! $*"
    exit 1
}

# nb_init N: the whole bed; the test guest is copied to $NB_DIR/images.
nb_init() {
    local n=$1 i k
    for tool in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl ovs-appctl socat jq nft; do
        command -v "$tool" >/dev/null 2>&1 || nb_bail "netbed needs $tool (tools/install-deps.sh)"
    done
    [ -f "$ST_GUEST/vmlinuz" ] || nb_bail "test guest missing in $ST_GUEST (run tools/build-guest.sh)"
    NB_DIR=$(mktemp -d /tmp/nb.XXXXXX)
    # lib.sh's api and cleanup look at ST_DIR.
    ST_DIR=$NB_DIR
    ST_IMAGES=$NB_DIR/images
    mkdir -p "$ST_IMAGES"
    GUEST_KERNEL=$ST_IMAGES/vmlinuz
    GUEST_INITRD=$ST_IMAGES/initramfs.cpio.gz
    cp "$ST_GUEST/vmlinuz" "$GUEST_KERNEL"
    cp "$ST_GUEST/initramfs.cpio.gz" "$GUEST_INITRD"
    # A short id, unique among live beds (namespace names must be unique).
    NB_ID=$(printf '%x' $(( ($$ + RANDOM) % 65536 )))
    while [ -e "/run/netns/$(nb_tor_ns)" ]; do NB_ID=$(printf '%x' $((RANDOM % 65536))); done
    echo "$NB_ID" >"$NB_DIR/bed-id"
    trap nb_cleanup EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT

    ip netns add "$(nb_tor_ns)" || nb_bail "cannot create namespace $(nb_tor_ns)"
    nb_tor ip link set lo up
    nb_tor ip link add tor0 type bridge
    nb_tor ip link set tor0 mtu "$NB_MTU" up
    nb_tor ip address add 10.255.0.254/24 dev tor0
    for i in $(seq 1 "$n"); do
        local h=h$i ns
        ns=$(nb_ns "$h")
        NB_HOSTS+=("$h")
        ip netns add "$ns" || nb_bail "cannot create namespace $ns"
        nb_exec "$h" ip link set lo up
        # management link with the host's address
        ip link add "nbm$NB_ID$i" netns "$(nb_tor_ns)" type veth peer name mgmt0 netns "$ns"
        nb_tor ip link set "nbm$NB_ID$i" name "${h}m" mtu "$NB_MTU" master tor0 up
        nb_exec "$h" ip link set mgmt0 mtu "$NB_MTU" up
        nb_exec "$h" ip address add "10.255.0.$i/24" dev mgmt0
        nb_exec "$h" ip route add default via 10.255.0.254
        for k in $(seq 0 $((NB_UPLINKS - 1))); do
            ip link add "nbu$NB_ID$i$k" netns "$(nb_tor_ns)" type veth peer name "eth$k" netns "$ns"
            nb_tor ip link set "nbu$NB_ID$i$k" name "${h}e$k" mtu "$NB_MTU" master tor0 up
            nb_exec "$h" ip link set "eth$k" mtu "$NB_MTU" up
            # Business uplinks carry VM traffic only: no host IPv6 chatter.
            nb_exec "$h" sysctl -qw "net.ipv6.conf.eth$k.disable_ipv6=1"
        done
        nb_start_ovs "$h"
        mkdir -p "$NB_DIR/$h/state" "$NB_DIR/$h/run"
        nb_start_agent "$h"
    done
}

# OVS of one host: a fresh database, ovsdb-server and ovs-vswitchd in the
# host's namespace, every file under $NB_DIR/HOST/ovs.
nb_start_ovs() {
    local h=$1 d
    d=$(nb_ovsdir "$h")
    mkdir -p "$d"
    [ -f "$d/conf.db" ] || ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema ||
        nb_bail "ovsdb-tool create failed"
    OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d nb_exec "$h" ovsdb-server "$d/conf.db" \
        --remote="punix:$d/db.sock" --pidfile="$d/ovsdb-server.pid" \
        --unixctl="$d/ovsdb-server.ctl" --log-file="$d/ovsdb-server.log" --detach --no-chdir \
        >/dev/null 2>&1 ||
        nb_bail "ovsdb-server of $h did not start"
    nb_vsctl "$h" --no-wait init
    nb_start_vswitchd "$h"
}

nb_start_vswitchd() {
    local h=$1 d i
    d=$(nb_ovsdir "$h")
    OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d nb_exec "$h" ovs-vswitchd "unix:$d/db.sock" \
        --pidfile="$d/ovs-vswitchd.pid" --unixctl="$d/ovs-vswitchd.ctl" \
        --log-file="$d/ovs-vswitchd.log" --detach --no-chdir >/dev/null 2>&1 ||
        nb_bail "ovs-vswitchd of $h did not start"
    for i in $(seq 1 100); do
        nb_appctl "$h" version >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    nb_bail "ovs-vswitchd of $h does not answer"
}

# Our PID from a pid file, only if that process names $NB_DIR in its command line.
nb_pid_of() {
    local f=$1 pid
    [ -f "$f" ] || return 1
    pid=$(cat "$f" 2>/dev/null) || return 1
    [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$NB_DIR/" || return 1
    echo "$pid"
}

nb_stop_pidfile() {
    local pid i
    pid=$(nb_pid_of "$1") || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 100); do
        proc_alive "$pid" || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null
}

nb_restart_vswitchd() {
    local h=$1
    nb_stop_pidfile "$(nb_ovsdir "$h")/ovs-vswitchd.pid"
    nb_start_vswitchd "$h"
}

nb_start_agent() {
    local h=$1 i extra=()
    # NB_AGENT_ARGS[HOST]: more options for that host's agent (no spaces in them).
    [ -n "${NB_AGENT_ARGS[$h]:-}" ] && read -ra extra <<<"${NB_AGENT_ARGS[$h]}"
    OVS_RUNDIR=$(nb_ovsdir "$h") ip netns exec "$(nb_ns "$h")" \
        "$ST_BUILD/src/agent/strata-agent" --state-dir "$NB_DIR/$h/state" \
        --run-dir "$NB_DIR/$h/run" --socket "$NB_DIR/$h/agent.sock" --image-root "$ST_IMAGES" \
        --accel "${ST_ACCEL:-tcg}" --shutdown-timeout 20 \
        --log-level "${STRATA_LOG_LEVEL:-info}" "${extra[@]}" >>"$NB_DIR/$h/agent.log" 2>&1 &
    NB_AGENT_PID[$h]=$!
    for i in $(seq 1 200); do
        if curl -s --unix-socket "$NB_DIR/$h/agent.sock" http://agent/v1/version >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "${NB_AGENT_PID[$h]}" 2>/dev/null || {
            tail -20 "$NB_DIR/$h/agent.log"
            nb_bail "agent of $h exited at start"
        }
        sleep 0.05
    done
    tail -20 "$NB_DIR/$h/agent.log"
    nb_bail "agent of $h did not answer"
}

nb_stop_agent() {
    local h=$1 sig=${2:-TERM} pid=${NB_AGENT_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    NB_AGENT_PID[$h]=
}

nb_restart_agent() {
    nb_stop_agent "$1" "${2:-TERM}"
    nb_start_agent "$1"
}

nb_link() {   # nb_link HOST IDX up|down
    nb_tor ip link set "${1}e$2" "$3"
}

nb_tor_block_vlan() {   # the ToR drops VLAN VID to and from HOST's uplinks
    local h=$1 vid=$2
    nb_tor nft list table bridge nbtor >/dev/null 2>&1 ||
        nb_tor nft -f - <<EOF
table bridge nbtor {
    chain forward { type filter hook forward priority 0; policy accept; }
}
EOF
    nb_tor nft add rule bridge nbtor forward iifname "${h}e*" vlan id "$vid" drop comment "\"$h-$vid\""
    nb_tor nft add rule bridge nbtor forward oifname "${h}e*" vlan id "$vid" drop comment "\"$h-$vid\""
}

nb_tor_unblock_vlan() {
    local h=$1 vid=$2 handle
    for handle in $(nb_tor nft -a list chain bridge nbtor forward 2>/dev/null |
        awk -v c="\"$h-$vid\"" '$0 ~ c { print $NF }'); do
        nb_tor nft delete rule bridge nbtor forward handle "$handle"
    done
}

# QEMU PIDs recorded by HOST's agent (checked against $NB_DIR in nb_cleanup).
nb_qemu_pids() {
    local f
    for f in "$NB_DIR/$1"/state/vms/*/runtime.json; do
        [ -f "$f" ] || continue
        jq -r 'select(.pid > 0) | .pid' "$f"
    done
}

nb_cleanup() {
    local rc=$? h pid f ns
    for h in "${NB_HOSTS[@]}"; do
        nb_stop_agent "$h" TERM
    done
    for h in "${NB_HOSTS[@]}"; do
        for pid in $(nb_qemu_pids "$h"); do
            if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$NB_DIR/"; then
                kill -KILL "$pid" 2>/dev/null
            fi
        done
        for f in "$NB_DIR/$h"/run/net/nat-*.pid; do
            [ -f "$f" ] && nb_stop_pidfile "$f"
        done
        nb_stop_pidfile "$(nb_ovsdir "$h")/ovs-vswitchd.pid"
        nb_stop_pidfile "$(nb_ovsdir "$h")/ovsdb-server.pid"
    done
    # Sanitizer reports of the agents (ASan/UBSan builds) fail the test.
    for h in "${NB_HOSTS[@]}"; do
        if grep -qE 'ERROR: (Address|Undefined)Sanitizer|runtime error:' "$NB_DIR/$h/agent.log" 2>/dev/null; then
            fail "agent of $h: sanitizer report"
            grep -A12 -E 'ERROR: (Address|Undefined)Sanitizer|runtime error:' "$NB_DIR/$h/agent.log" |
                head -30 | sed 's/^/#   /'
        fi
    done
    # Anything still running inside the bed's own namespaces is ours.
    for ns in $(ip netns list 2>/dev/null | awk -v p="snb$NB_ID-" 'index($1, p) == 1 { print $1 }'); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
        ip netns del "$ns" 2>/dev/null
    done
    if [ "${ST_KEEP:-0}" = 1 ]; then
        echo "# bed kept: $NB_DIR"
    else
        rm -rf "$NB_DIR"
    fi
    echo "# $ST_NAME: $ST_PASS passed, $ST_FAIL failed, $ST_SKIP skipped"
    [ "$ST_FAIL" -eq 0 ] && [ "$rc" -eq 0 ] && exit 0
    exit 1
}

# ---- guests -------------------------------------------------------------------

# nb_guest HOST VM IP/PFX MAC NETWORK_JSON [EXTRA_DEF_JSON] [EXTRA_CMDLINE]
# Defines and starts a test guest with NIC nic0 (tap t-VM) on NETWORK_JSON
# (the NIC's "network" object), static address IP/PFX on eth0 ("dhcp": DHCP,
# "none": no address).
nb_guest() {
    local h=$1 vm=$2 ip=$3 mac=$4 net=$5 extra=${6:-'{}'} more=${7:-} cmdline nic def
    cmdline="console=ttyS0 quiet swiotlb=noforce strata.hostname=$vm"
    if [ "$ip" = dhcp ]; then
        :
    elif [ "$ip" = none ]; then
        cmdline="$cmdline strata.dhcp=0"
    else
        cmdline="$cmdline strata.dhcp=0 strata.ip=eth0:$ip"
    fi
    [ -n "$more" ] && cmdline="$cmdline $more"
    nic=$(jq -n --arg mac "$mac" --arg tap "t-$vm" --argjson net "$net" \
        '{id: "nic0", mac: $mac, tap: $tap, network: $net}')
    def=$(guest_def "$vm" "$(jq -n --arg c "$cmdline" --argjson nic "$nic" --argjson x "$extra" \
        --arg k "$GUEST_KERNEL" --arg i "$GUEST_INITRD" \
        '{memory: {mib: 192}, vcpus: 1, nics: [$nic],
          boot: {kernel: $k, initrd: $i, cmdline: $c}} + $x')")
    nb_api_ok "$h" POST /v1/vms "$def" || return 1
    nb_api_ok "$h" POST "/v1/vms/$vm/start" || return 1
}

# nb_wait_guest HOST VM TIMEOUT_S: READY and qemu-ga up.
nb_wait_guest() {
    local h=$1 vm=$2 t=${3:-60}
    ST_SOCK=$NB_DIR/$h/agent.sock wait_console "$vm" 'STRATA-QGA' "$t"
}

nb_console() { ST_SOCK=$NB_DIR/$1/agent.sock console "$2"; }

# nb_sh HOST VM 'COMMAND' [TIMEOUT_S]: guest-exec over the VM's qemu-ga socket
# (the agent only connects to it during its own calls).
nb_sh() {
    local h=$1 vm=$2 cmd=$3 t=${4:-30} sock id line pid st i
    sock=$NB_DIR/$h/run/$vm/qga.sock
    [ -S "$sock" ] || { echo "# no qga socket $sock" >&2; return 125; }
    coproc NBQGA { socat - "UNIX-CONNECT:$sock" 2>/dev/null; }
    local in=${NBQGA[1]} out=${NBQGA[0]} qpid=$NBQGA_PID
    id=$((RANDOM * 32768 + RANDOM))
    printf '{"execute":"guest-sync-delimited","arguments":{"id":%d}}\n' "$id" >&"$in"
    st=1
    for i in $(seq 1 50); do
        IFS= read -r -t 2 line <&"$out" || break
        line=${line//$'\xff'/}
        if [ "$(jq -r '.return // empty' <<<"$line" 2>/dev/null)" = "$id" ]; then st=0; break; fi
    done
    if [ "$st" != 0 ]; then
        kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null
        echo "# qemu-ga of $vm does not answer" >&2
        return 125
    fi
    jq -cn --arg c "$cmd" '{execute: "guest-exec",
        arguments: {path: "/bin/sh", arg: ["-c", $c], "capture-output": true}}' >&"$in"
    IFS= read -r -t 10 line <&"$out"
    pid=$(jq -r '.return.pid // empty' <<<"$line" 2>/dev/null)
    if [ -z "$pid" ]; then
        kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null
        echo "# guest-exec failed: $line" >&2
        return 125
    fi
    st=125
    for i in $(seq 1 $((t * 10))); do
        printf '{"execute":"guest-exec-status","arguments":{"pid":%d}}\n' "$pid" >&"$in"
        IFS= read -r -t 10 line <&"$out" || break
        if [ "$(jq -r '.return.exited' <<<"$line" 2>/dev/null)" = true ]; then
            jq -r '.return["out-data"] // empty' <<<"$line" | base64 -d 2>/dev/null
            jq -r '.return["err-data"] // empty' <<<"$line" | base64 -d 2>/dev/null >&2
            st=$(jq -r '.return.exitcode // 125' <<<"$line")
            break
        fi
        sleep 0.1
    done
    kill "$qpid" 2>/dev/null
    wait "$qpid" 2>/dev/null
    return "$st"
}

# nb_ping HOST VM DEST [COUNT]: true if at least one reply (busybox ping).
nb_ping() {
    local n=${4:-3}
    nb_sh "$1" "$2" "ping -c $n -W 2 -w $((n + 3)) $3" 30 >/dev/null 2>&1
}

# nb_ping_loss HOST VM DEST COUNT: prints the percentage of lost pings.
nb_ping_loss() {
    nb_sh "$1" "$2" "ping -c $4 -i 0.2 -W 1 $3 2>&1 | sed -n 's/.* \\([0-9]*\\)% packet loss.*/\\1/p'" 60
}
