# mgr-lib.sh - a manager and a joined agent for system tests (sourced after
# lib.sh): the manager on its own SQLite database and unix socket, a site, a
# cluster, one agent joined with a one-time token (mutual TLS on loopback),
# a local datastore registered through the manager, and the test guest's
# kernel and initramfs in the agent's image root.
#
#   source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/mgr-lib.sh"
#   mgr_init                      # sets MD, MSOCK, ATOK, GUEST_KERNEL, GUEST_INITRD
#   mapi "$ATOK" GET /api/v1/vms  # body on stdout, status in $(mstatus)
#   task_wait TASK_ID             # prints the final state
#
# Everything is cleaned up by PID and by the sandbox path at exit.

MGR_BIN=$ST_BUILD/src/manager/strata-manager
AGENT_BIN=$ST_BUILD/src/agent/strata-agent
MD=
MSOCK=
MGR_PID=
MAGENT_PID=
MAPORT=

mgr_cleanup() {
    local rc=$?
    [ -n "$MGR_PID" ] && { kill -TERM "$MGR_PID" 2>/dev/null; wait "$MGR_PID" 2>/dev/null; }
    [ -n "$MAGENT_PID" ] && { kill -TERM "$MAGENT_PID" 2>/dev/null; wait "$MAGENT_PID" 2>/dev/null; }
    local f pid
    for f in "$MD"/agent/state/vms/*/runtime.json; do
        [ -f "$f" ] || continue
        pid=$(jq -r 'select(.pid > 0) | .pid' "$f")
        [ -n "$pid" ] || continue
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$MD/"; then
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    local log
    for log in "$MD/manager.log" "$MD/agent.log"; do
        if grep -qE 'ERROR: (Address|Undefined)Sanitizer|runtime error:' "$log" 2>/dev/null; then
            fail "sanitizer report in $(basename "$log")"
            grep -A20 -E 'ERROR: (Address|Undefined)Sanitizer|runtime error:' "$log" | head -40
        fi
    done
    if [ "${ST_KEEP:-0}" = 1 ]; then echo "# sandbox kept: $MD"; else rm -rf "$MD"; fi
    echo "# $ST_NAME: $ST_PASS passed, $ST_FAIL failed, $ST_SKIP skipped"
    [ "$ST_FAIL" -eq 0 ] && [ "$rc" -eq 0 ] && exit 0
    exit 1
}

# mapi TOKEN METHOD PATH [BODY]: prints the body; the status goes to $MD/status.
mapi() {
    local tok=$1 method=$2 path=$3 body=${4:-}
    local args=(-s -o "$MD/body" -w '%{http_code}' --unix-socket "$MSOCK" -X "$method")
    [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    curl "${args[@]}" "http://m$path" >"$MD/status"
    cat "$MD/body"
}
mstatus() { cat "$MD/status"; }

# mgr_start [ARGS...]: start the manager and wait until it answers.
mgr_start() {
    STRATA_ADMIN_PASSWORD=test-admin-password \
        "$MGR_BIN" --db "$MD/manager.db" --socket "$MSOCK" --pki-dir "$MD/mgr-pki" \
        --heartbeat-interval "${MGR_HEARTBEAT_MS:-500}" --log-level info "$@" \
        >>"$MD/manager.log" 2>&1 &
    MGR_PID=$!
    local i
    for i in $(seq 1 200); do
        curl -s --unix-socket "$MSOCK" http://m/api/v1/version >/dev/null 2>&1 && return 0
        kill -0 "$MGR_PID" 2>/dev/null || { MGR_PID=; return 1; }
        sleep 0.05
    done
    return 1
}

# mgr_kill9: kill -9 the manager (test of crash recovery).
mgr_kill9() {
    kill -KILL "$MGR_PID" 2>/dev/null
    wait "$MGR_PID" 2>/dev/null
    MGR_PID=
}

mgr_start_agent() {
    "$AGENT_BIN" --state-dir "$MD/agent/state" --run-dir "$MD/agent/run" \
        --socket "$MD/agent/agent.sock" --image-root "$MD/images" --accel "${ST_ACCEL:-tcg}" \
        --listen "127.0.0.1:$MAPORT" --shutdown-timeout 20 \
        --tls-cert "$MD/agent/pki/agent.pem" --tls-key "$MD/agent/pki/agent-key.pem" \
        --tls-ca "$MD/agent/pki/ca.pem" --tls-peer-cn strata-manager \
        --log-level "${STRATA_LOG_LEVEL:-info}" >>"$MD/agent.log" 2>&1 &
    MAGENT_PID=$!
}

# host_state_is NAME STATE: waits up to 10 s for the host's state.
host_state_is() {
    local i st
    for i in $(seq 1 100); do
        st=$(mapi "$ATOK" GET "/api/v1/hosts/$1" | jq -r .state)
        [ "$st" = "$2" ] && return 0
        sleep 0.1
    done
    echo "# host $1 is $st"
    return 1
}

mgr_init() {
    MD=$(mktemp -d /tmp/stm.XXXXXX)
    MSOCK=$MD/manager.sock
    trap mgr_cleanup EXIT
    mkdir -p "$MD/images" "$MD/ds1" "$MD/agent/pki" "$MD/agent/state" "$MD/agent/run"
    if [ ! -f "$ST_GUEST/vmlinuz" ]; then
        echo "Bail out! test guest missing in $ST_GUEST (run tools/build-guest.sh)"
        exit 1
    fi
    GUEST_KERNEL=$MD/images/vmlinuz
    GUEST_INITRD=$MD/images/initramfs.cpio.gz
    cp "$ST_GUEST/vmlinuz" "$GUEST_KERNEL"
    cp "$ST_GUEST/initramfs.cpio.gz" "$GUEST_INITRD"
    mgr_start || { echo "Bail out! manager did not start"; tail -20 "$MD/manager.log"; exit 1; }
    ATOK=$(mapi "" POST /api/v1/sessions '{"name": "admin", "password": "test-admin-password"}' |
           jq -r .token)
    mapi "$ATOK" POST /api/v1/sites '{"name": "dc1"}' >/dev/null
    mapi "$ATOK" POST /api/v1/clusters '{"name": "c1", "site": "dc1"}' >/dev/null
    local jtok p
    jtok=$(mapi "$ATOK" POST /api/v1/join-tokens '{"cluster": "c1"}' | jq -r .token)
    while :; do
        p=$(shuf -i 20000-60000 -n 1)
        [ -z "$(ss -ltnH "sport = :$p")" ] && break
    done
    MAPORT=$p
    # The host joins as an installer would: `strata host-join` writes the
    # agent's certificate, key and CA.
    "$ST_BUILD/src/cli/strata" --connect "unix:$MSOCK" host-join node1 --token "$jtok" \
        --address 127.0.0.1 --port "$MAPORT" --dir "$MD/agent/pki" >"$MD/joined.txt" 2>&1 ||
        { echo "Bail out! join failed: $(cat "$MD/joined.txt")"; exit 1; }
    [ "$(stat -c %a "$MD/agent/pki/agent-key.pem")" = 600 ] ||
        { echo "Bail out! the agent key is not 0600"; exit 1; }
    mgr_start_agent
    host_state_is node1 connected || { echo "Bail out! agent not connected"; tail -20 "$MD/manager.log"; exit 1; }
    mapi "$ATOK" POST /api/v1/datastores \
        "{\"name\": \"ds1\", \"type\": \"local\", \"path\": \"$MD/ds1\", \"hosts\": [\"node1\"]}" >"$MD/ds.json"
    [ "$(mstatus)" = 201 ] || { echo "Bail out! datastore: $(cat "$MD/ds.json")"; exit 1; }
}

# task_wait ID [TIMEOUT_S]: waits for the task to end; prints its state.
task_wait() {
    local id=$1 tmo=${2:-120} i st
    for i in $(seq 1 $((tmo * 10))); do
        st=$(mapi "$ATOK" GET "/api/v1/tasks/$id" | jq -r .state)
        case $st in succeeded|failed|cancelled) echo "$st"; return 0 ;; esac
        sleep 0.1
    done
    echo "$st"
    return 1
}

# vm_spec NAME [EXTRA_JSON]: a test-guest VM for the manager (direct kernel
# boot, one 64 MiB thin disk on ds1), merged with EXTRA_JSON.
vm_spec() {
    local name=$1 extra=${2:-'{}'}
    jq -n --arg name "$name" --arg k "$GUEST_KERNEL" --arg i "$GUEST_INITRD" \
        --argjson extra "$extra" '{
          name: $name, vcpus: 1, memory: 256,
          boot: {kernel: $k, initrd: $i, cmdline: "console=ttyS0 quiet swiotlb=noforce"},
          disks: [{datastore: "ds1", size: 67108864, cache: "writeback"}]
        } + $extra'
}

# console_has VM TEXT [TIMEOUT_S]: the VM's serial console (through the
# manager) shows TEXT.
console_has() {
    local vm=$1 text=$2 tmo=${3:-60} i
    for i in $(seq 1 $((tmo * 5))); do
        mapi "$ATOK" GET "/api/v1/vms/$vm/console" | jq -r .text | grep -qF "$text" && return 0
        sleep 0.2
    done
    return 1
}
