# lib.sh - shared helpers for Strata's system tests (sourced, bash).
#
# A system test starts a real strata-agent in a private sandbox (state, run
# and image directories under one temp dir), drives it through its API with
# curl over the unix socket, boots the project's test guest under QEMU and
# checks what the guest prints on its serial console.  Everything it starts is
# stopped by PID on exit; nothing is killed by name pattern.
#
# Each assertion is one line "ok - ..." / "not ok - ..." (TAP-like); the
# runner (tests/run-all.sh) counts them.  Variables a test may read:
#   ST_DIR     the sandbox            ST_SOCK   the agent's API socket
#   ST_IMAGES  an allowed image root  GUEST_KERNEL / GUEST_INITRD  the test guest
#   HTTP_STATUS  status of the last api call not made in a subshell (else: last_status)

set -u

ST_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ST_BUILD=${STRATA_BUILD:-$ST_TOP/build}
ST_GUEST=${STRATA_GUEST:-$ST_TOP/build/guest}
ST_PASS=0
ST_FAIL=0
ST_SKIP=0
ST_AGENT_PID=
ST_AGENT_EXTRA=()
ST_NAME=$(basename "$0" .sh)

ok()   { ST_PASS=$((ST_PASS + 1)); echo "ok - $ST_NAME: $*"; }
fail() { ST_FAIL=$((ST_FAIL + 1)); echo "not ok - $ST_NAME: $*"; }
skip() { ST_SKIP=$((ST_SKIP + 1)); echo "ok - $ST_NAME: $* # SKIP"; }
note() { echo "# $*"; }

# check DESCRIPTION COMMAND...: one assertion from a command's exit status.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else fail "$desc"; fi
}

st_now_ms() { date +%s%3N; }

# proc_alive PID: the process exists and is not a zombie.
proc_alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# st_init: create the sandbox and start the agent.
st_init() {
    ST_DIR=$(mktemp -d /tmp/st.XXXXXX)
    ST_SOCK=$ST_DIR/agent.sock
    ST_IMAGES=$ST_DIR/images
    mkdir -p "$ST_IMAGES" "$ST_DIR/state" "$ST_DIR/run"
    GUEST_KERNEL=$ST_IMAGES/vmlinuz
    GUEST_INITRD=$ST_IMAGES/initramfs.cpio.gz
    if [ ! -f "$ST_GUEST/vmlinuz" ]; then
        echo "Bail out! test guest missing in $ST_GUEST (run tools/build-guest.sh)"
        exit 1
    fi
    cp "$ST_GUEST/vmlinuz" "$GUEST_KERNEL"
    cp "$ST_GUEST/initramfs.cpio.gz" "$GUEST_INITRD"
    trap st_cleanup EXIT
    st_start_agent
}

st_start_agent() {
    "$ST_BUILD/src/agent/strata-agent" --state-dir "$ST_DIR/state" --run-dir "$ST_DIR/run" \
        --socket "$ST_SOCK" --image-root "$ST_IMAGES" --accel "${ST_ACCEL:-tcg}" \
        --shutdown-timeout 20 --log-level "${STRATA_LOG_LEVEL:-info}" "${ST_AGENT_EXTRA[@]}" \
        >>"$ST_DIR/agent.log" 2>&1 &
    ST_AGENT_PID=$!
    local i
    for i in $(seq 1 200); do
        if curl -s --unix-socket "$ST_SOCK" http://agent/v1/version >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$ST_AGENT_PID" 2>/dev/null; then
            echo "Bail out! agent exited at start:"; tail -20 "$ST_DIR/agent.log"
            exit 1
        fi
        sleep 0.05
    done
    echo "Bail out! agent did not answer"; tail -20 "$ST_DIR/agent.log"
    exit 1
}

# st_stop_agent [SIGNAL]: stop the agent we started (default TERM) and wait.
st_stop_agent() {
    local sig=${1:-TERM}
    [ -n "$ST_AGENT_PID" ] || return 0
    kill -"$sig" "$ST_AGENT_PID" 2>/dev/null
    wait "$ST_AGENT_PID" 2>/dev/null
    ST_AGENT_PID=
}

# QEMU PIDs recorded by our agent (only processes of this sandbox).
st_qemu_pids() {
    local f
    for f in "$ST_DIR"/state/vms/*/runtime.json; do
        [ -f "$f" ] || continue
        jq -r 'select(.pid > 0) | .pid' "$f"
    done
}

st_cleanup() {
    local rc=$?
    st_stop_agent TERM
    local pid
    for pid in $(st_qemu_pids); do
        # Only a QEMU whose command line names our sandbox.
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$ST_DIR/"; then
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    if [ "${ST_KEEP:-0}" = 1 ]; then
        echo "# sandbox kept: $ST_DIR"
    else
        rm -rf "$ST_DIR"
    fi
    echo "# $ST_NAME: $ST_PASS passed, $ST_FAIL failed, $ST_SKIP skipped"
    [ "$ST_FAIL" -eq 0 ] && [ "$rc" -eq 0 ] && exit 0
    exit 1
}

# api METHOD PATH [BODY]: prints the response body; sets HTTP_STATUS.
api() {
    local method=$1 path=$2 body=${3:-}
    local out
    if [ -n "$body" ]; then
        # Through a file: bodies may be larger than an argument can be.
        printf '%s' "$body" >"$ST_DIR/.body"
        out=$(curl -s --max-time 120 --unix-socket "$ST_SOCK" -X "$method" \
              -H 'Content-Type: application/json' --data-binary "@$ST_DIR/.body" \
              -w '\n%{http_code}' "http://agent$path")
    else
        out=$(curl -s --max-time 120 --unix-socket "$ST_SOCK" -X "$method" \
              -w '\n%{http_code}' "http://agent$path")
    fi
    HTTP_STATUS=${out##*$'\n'}
    # Also on disk: api is often called inside $(...), a subshell.
    echo "$HTTP_STATUS" >"$ST_DIR/.http_status"
    printf '%s' "${out%$'\n'*}"
}

# The status of the last api call, even one made in a subshell.
last_status() { cat "$ST_DIR/.http_status"; }

# api_ok METHOD PATH [BODY]: like api but true only for a 2xx status.
api_ok() {
    API_BODY=$(api "$@")
    HTTP_STATUS=$(last_status)
    case $HTTP_STATUS in
        2??) return 0 ;;
        *) echo "# $1 $2 -> $HTTP_STATUS $API_BODY"; return 1 ;;
    esac
}

vm_state() { api GET "/v1/vms/$1" | jq -r .state; }

# wait_state VM STATE TIMEOUT_S
wait_state() {
    local vm=$1 want=$2 t=$3 i
    for i in $(seq 1 $((t * 10))); do
        [ "$(vm_state "$vm")" = "$want" ] && return 0
        sleep 0.1
    done
    echo "# $vm: state $(vm_state "$vm"), wanted $want"
    return 1
}

# console VM: the whole serial console log so far.
console() { api GET "/v1/vms/$1/console?format=raw"; }

# wait_console VM PATTERN TIMEOUT_S: true once PATTERN (grep -E) shows up.
wait_console() {
    local vm=$1 pat=$2 t=$3 i
    for i in $(seq 1 $((t * 5))); do
        console "$vm" | grep -qE "$pat" && return 0
        sleep 0.2
    done
    echo "# $vm: console has no '$pat'; last lines:"
    console "$vm" | tail -5 | sed 's/^/#   /'
    return 1
}

# last_marker VM PREFIX: the latest console line starting with PREFIX.
last_marker() {
    console "$1" | tr -d '\r' | grep -a "^$2" | tail -1
}

# wait_marker VM LINE TIMEOUT_S: true once the latest line starting like
# LINE's first word is exactly LINE (state markers: STRATA-DISKS, -NICS, -CD).
wait_marker() {
    local vm=$1 want=$2 t=$3 i
    for i in $(seq 1 $((t * 5))); do
        [ "$(last_marker "$vm" "${want%% *}")" = "$want" ] && return 0
        sleep 0.2
    done
    echo "# $vm: latest ${want%% *} line is '$(last_marker "$vm" "${want%% *}")', wanted '$want'"
    return 1
}

# guest_def NAME [EXTRA_JSON]: a test-guest definition (direct kernel boot),
# merged with EXTRA_JSON (jq object addition, shallow).
guest_def() {
    local name=$1 extra=${2:-'{}'}
    jq -n --arg name "$name" --arg k "$GUEST_KERNEL" --arg i "$GUEST_INITRD" \
        --argjson extra "$extra" '{
          name: $name,
          vcpus: {count: 1, max: 4, sockets: 4, cores: 1, threads: 1},
          memory: {mib: 256, max_mib: 1024, slots: 4},
          machine: "q35",
          boot: {kernel: $k, initrd: $i, cmdline: "console=ttyS0 quiet swiotlb=noforce"},
          guest_agent: true
        } + $extra'
}
