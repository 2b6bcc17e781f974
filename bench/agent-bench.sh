#!/usr/bin/env bash
# agent-bench.sh - start latency and memory footprint of strata-agent, each
# printed beside a baseline measured in the same run.
#
#   bench/agent-bench.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# Needs BUILD_DIR/src/agent/strata-agent and BUILD_DIR/bench/qmp_baseline
# (a release build: meson setup BUILD_DIR -Dbuildtype=release), QEMU, curl,
# jq, and the test guest (tools/build-guest.sh build/guest; another place
# with STRATA_GUEST=DIR).
#
# What it does, in a private sandbox (state, run and image directories under
# one mktemp directory in ${TMPDIR:-/tmp}; agent started with --accel tcg):
#
# 1. Start latency.  One VM is defined (q35, 1 vCPU, 128 MiB, direct kernel
#    boot of the test guest, otherwise the agent's defaults).  Then, BENCH_RUNS
#    times (default 15), after one untimed warm-up round:
#      ours:     POST /v1/vms/<name>/start, timed by curl's %{time_total}
#                (request sent -> response received; the agent answers once
#                QEMU runs, with QMP negotiated and `cont` done), then
#                POST /v1/vms/<name>/destroy (not timed);
#      baseline: bench/qmp_baseline spawns QEMU directly with the very argv the
#                agent used (runtime.json "argv", socket and log paths moved
#                to a directory of its own) and times spawn -> QMP greeting ->
#                qmp_capabilities answered -> `cont` answered.
#    The two alternate, run by run, so both see the same host load.  Printed:
#    median, p90 and min of both, the baseline's phases, and the overhead
#    (ours - baseline: difference of the medians and median of the per-run
#    differences).  Target: median <= 50 ms.
# 2. Memory.  Agent VmRSS idle with no VM (read right after it starts, before
#    anything is defined) is the baseline.  BENCH_GUESTS (10) more VMs are
#    defined and started, at most BENCH_PARALLEL (4) booting at once (a VM
#    counts as booted when its console, GET /v1/vms/<name>/console?format=raw,
#    shows STRATA-GUEST-READY); after BENCH_IDLE_S (5) idle seconds the
#    agent's VmRSS and VmHWM (/proc/PID/status) are read.  Printed beside the
#    baseline, with the increment per guest and, for context, the sum of the
#    QEMU processes' VmRSS.  Target: agent VmRSS <= 16 MiB with 10 guests.
#
# The host's load average and the number of other QEMU processes (not ours)
# are printed too: latency figures are only comparable between runs on an
# otherwise idle host.  The final table gives PASS/MISS per target.  It is a
# report, not a test: the exit status is 0 unless the benchmark itself could
# not run.
#
# Environment: BENCH_RUNS, BENCH_GUESTS, BENCH_PARALLEL, BENCH_IDLE_S,
# BENCH_MEM_MIB (128), BENCH_KEEP=1 keeps the sandbox, STRATA_GUEST.
#
# Everything started here is stopped by PID at exit: the VMs are destroyed and
# undefined through the API, the agent gets SIGTERM, and any QEMU of this
# sandbox still alive (its command line names the sandbox) gets SIGKILL.
set -u
export LC_ALL=C

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$TOP/build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
GUEST=${STRATA_GUEST:-$TOP/build/guest}
RUNS=${BENCH_RUNS:-15}
GUESTS=${BENCH_GUESTS:-10}
PARALLEL=${BENCH_PARALLEL:-4}
IDLE_S=${BENCH_IDLE_S:-5}
MEM_MIB=${BENCH_MEM_MIB:-128}
TARGET_START_MS=50
TARGET_RSS_MIB=16

AGENT=$BUILD/src/agent/strata-agent
BASELINE=$BUILD/bench/qmp_baseline

die() { echo "agent-bench: error: $*" >&2; exit 1; }
say() { echo "agent-bench: $*" >&2; }

for p in "$AGENT" "$BASELINE"; do
    [ -x "$p" ] || die "'$p' not found: meson setup $BUILD -Dbuildtype=release && ninja -C $BUILD"
done
for p in curl jq qemu-system-x86_64; do
    command -v "$p" >/dev/null || die "'$p' is not installed"
done
[ -f "$GUEST/vmlinuz" ] && [ -f "$GUEST/initramfs.cpio.gz" ] \
    || die "test guest missing in '$GUEST': run tools/build-guest.sh build/guest"
buildtype=$(jq -r '.[] | select(.name == "buildtype") | .value' \
            "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null || echo unknown)
[ "$buildtype" = release ] || say "warning: '$BUILD' is a '$buildtype' build, not release"

SB=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX") || die "cannot create the sandbox"
SOCK=$SB/agent.sock
IMAGES=$SB/images
mkdir -p "$IMAGES" "$SB/state" "$SB/run" "$SB/base"
cp "$GUEST/vmlinuz" "$GUEST/initramfs.cpio.gz" "$IMAGES/" || die "cannot copy the test guest"
AGENT_PID=
BENCH_OK=0

# ---- sandbox and agent ------------------------------------------------------

# QEMU PIDs the agent recorded for this sandbox.
qemu_pids() {
    local f
    for f in "$SB"/state/vms/*/runtime.json; do
        [ -f "$f" ] && jq -r 'select(.pid > 0) | .pid' "$f"
    done
}

# ours PID: true if that process's command line names the sandbox.
ours() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$SB/"; }

cleanup() {
    local rc=$? vm pid
    trap - EXIT INT TERM
    if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
        for vm in $(api GET /v1/vms 2>/dev/null | jq -r '.vms[]?.name' 2>/dev/null); do
            api POST "/v1/vms/$vm/destroy" >/dev/null 2>&1
            api DELETE "/v1/vms/$vm" >/dev/null 2>&1
        done
        kill -TERM "$AGENT_PID" 2>/dev/null
        wait "$AGENT_PID" 2>/dev/null
    fi
    for pid in $(qemu_pids); do
        ours "$pid" && kill -KILL "$pid" 2>/dev/null
    done
    [ "$BENCH_OK" = 1 ] || tail -20 "$SB/agent.log" 2>/dev/null | sed 's/^/agent.log: /' >&2
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        say "sandbox kept: $SB"
    else
        rm -rf "$SB"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# api METHOD PATH [BODY]: prints the body; fails on a non-2xx status.
api() {
    local method=$1 path=$2 body=${3:-} out code
    if [ -n "$body" ]; then
        out=$(curl -s --max-time 120 --unix-socket "$SOCK" -X "$method" \
              -H 'Content-Type: application/json' --data-binary "$body" \
              -w '\n%{http_code}' "http://agent$path") || return 1
    else
        out=$(curl -s --max-time 120 --unix-socket "$SOCK" -X "$method" \
              -w '\n%{http_code}' "http://agent$path") || return 1
    fi
    code=${out##*$'\n'}
    printf '%s' "${out%$'\n'*}"
    case $code in 2??) return 0 ;; *) echo "agent-bench: $method $path -> $code" >&2; return 1 ;; esac
}

# timed_api METHOD PATH: prints curl's time_total in ms; fails on non-2xx.
timed_api() {
    local out code t
    out=$(curl -s -o "$SB/.timed_body" --max-time 120 --unix-socket "$SOCK" -X "$1" \
          -w '%{http_code} %{time_total}' "http://agent$2") || return 1
    code=${out% *}
    t=${out#* }
    case $code in
        2??) awk -v t="$t" 'BEGIN { printf "%.3f\n", t * 1000 }' ;;
        *) echo "agent-bench: $1 $2 -> $code $(cat "$SB/.timed_body")" >&2; return 1 ;;
    esac
}

start_agent() {
    "$AGENT" --state-dir "$SB/state" --run-dir "$SB/run" --socket "$SOCK" \
        --image-root "$IMAGES" --accel tcg --log-level info >>"$SB/agent.log" 2>&1 &
    AGENT_PID=$!
    local i
    for i in $(seq 1 200); do
        curl -s --unix-socket "$SOCK" http://agent/v1/version >/dev/null 2>&1 && return 0
        kill -0 "$AGENT_PID" 2>/dev/null || die "the agent exited at start"
        sleep 0.05
    done
    die "the agent did not answer"
}

# status_kib PID FIELD: a field of /proc/PID/status, in KiB.
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

define_vm() {
    local def
    def=$(jq -cn --arg name "$1" --arg k "$IMAGES/vmlinuz" --arg i "$IMAGES/initramfs.cpio.gz" \
          --argjson mib "$MEM_MIB" '{
            name: $name, machine: "q35",
            vcpus: {count: 1}, memory: {mib: $mib},
            boot: {kernel: $k, initrd: $i, cmdline: "console=ttyS0 quiet swiotlb=noforce"}
          }')
    api POST /v1/vms "$def" >/dev/null || die "cannot define VM '$1'"
}

# other_qemus: QEMU processes on the host that are not ours.
other_qemus() {
    local n=0 p
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = qemu-system-x86 ] || continue
        ours "${p#/proc/}" || n=$((n + 1))
    done
    echo "$n"
}
host_load() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg), $(other_qemus) other QEMU processes"; }

# ---- statistics --------------------------------------------------------------

# stats FILE: "median p90 min" of the numbers in FILE (nearest-rank p90).
stats() {
    sort -g "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan nan nan"; exit }
        med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        r = int(0.9 * NR); if (r < 0.9 * NR) r++
        printf "%.1f %.1f %.1f\n", med, v[r], v[1] }'
}

# ---- 1. start latency ---------------------------------------------------------

LOAD_BEFORE=$(host_load)
say "host: $LOAD_BEFORE"
start_agent
sleep 1
RSS0=$(status_kib "$AGENT_PID" VmRSS)
HWM0=$(status_kib "$AGENT_PID" VmHWM)
ANON0=$(status_kib "$AGENT_PID" RssAnon)

VM=bench-start
define_vm "$VM"
: >"$SB/ours.ms"
: >"$SB/base.ms"
: >"$SB/base.runs"
: >"$SB/diff.ms"
say "start latency: $RUNS runs (+1 warm-up) of agent start and QEMU-only baseline, alternating"
for i in $(seq 0 "$RUNS"); do
    t=$(timed_api POST "/v1/vms/$VM/start") || die "start of '$VM' failed"
    if [ "$i" = 0 ]; then
        # The exact argv the agent ran, its paths moved to the baseline's dir.
        jq -j --arg run "$SB/run/$VM/" --arg st "$SB/state/vms/$VM/" --arg b "$SB/base/" \
            '.argv[] | gsub($run; $b) | gsub($st; $b) | ., "\u0000"' \
            "$SB/state/vms/$VM/runtime.json" >"$SB/base.argv"
    fi
    api POST "/v1/vms/$VM/destroy" >/dev/null || die "destroy of '$VM' failed"
    mapfile -d '' QARGV <"$SB/base.argv"
    line=$("$BASELINE" --runs 1 --qmp "$SB/base/qmp.sock" --log "$SB/base/qemu.log" \
           -- "${QARGV[@]}") || die "baseline run $i failed (see $SB/base/qemu.log)"
    if [ "$i" -gt 0 ]; then
        echo "$t" >>"$SB/ours.ms"
        echo "$line" >>"$SB/base.runs"
        b=$(awk '{ print $10 }' <<<"$line")
        echo "$b" >>"$SB/base.ms"
        awk -v a="$t" -v b="$b" 'BEGIN { printf "%.3f\n", a - b }' >>"$SB/diff.ms"
        printf '  run %2d: ours %7.1f ms   baseline %7.1f ms\n' "$i" "$t" "$b" >&2
    fi
    sleep 0.2
done
read -r O_MED O_P90 O_MIN < <(stats "$SB/ours.ms")
read -r B_MED B_P90 B_MIN < <(stats "$SB/base.ms")
read -r D_MED D_P90 D_MIN < <(stats "$SB/diff.ms")
awk '{ print $4 }' "$SB/base.runs" >"$SB/base.sock.ms"
awk '{ print $6 }' "$SB/base.runs" >"$SB/base.greet.ms"
awk '{ print $8 }' "$SB/base.runs" >"$SB/base.ready.ms"
read -r S_MED _ _ < <(stats "$SB/base.sock.ms")
read -r G_MED _ _ < <(stats "$SB/base.greet.ms")
read -r R_MED _ _ < <(stats "$SB/base.ready.ms")
RSS1=$(status_kib "$AGENT_PID" VmRSS)

# ---- 2. memory with idle guests -------------------------------------------------

say "memory: starting $GUESTS guests ($MEM_MIB MiB each), at most $PARALLEL booting at once"
names=()
for i in $(seq 1 "$GUESTS"); do
    names+=("bench-g$i")
    define_vm "bench-g$i"
done
booting=()
next=0
ready=0
t_boot0=$(date +%s%3N)
while [ "$ready" -lt "$GUESTS" ]; do
    while [ "${#booting[@]}" -lt "$PARALLEL" ] && [ "$next" -lt "$GUESTS" ]; do
        vm=${names[$next]}
        api POST "/v1/vms/$vm/start" >/dev/null || die "start of '$vm' failed"
        booting+=("$vm:$(date +%s)")
        next=$((next + 1))
    done
    still=()
    for b in "${booting[@]}"; do
        vm=${b%%:*}
        if api GET "/v1/vms/$vm/console?format=raw" 2>/dev/null | grep -aq STRATA-GUEST-READY; then
            ready=$((ready + 1))
        elif [ $(( $(date +%s) - ${b##*:} )) -gt 180 ]; then
            die "'$vm' did not print STRATA-GUEST-READY within 180 s"
        else
            still+=("$b")
        fi
    done
    booting=("${still[@]}")
    sleep 0.2
done
say "$GUESTS guests ready after $(( $(date +%s%3N) - t_boot0 )) ms; idling ${IDLE_S} s"
sleep "$IDLE_S"
RSS10=$(status_kib "$AGENT_PID" VmRSS)
HWM10=$(status_kib "$AGENT_PID" VmHWM)
ANON10=$(status_kib "$AGENT_PID" RssAnon)
THREADS10=$(status_kib "$AGENT_PID" Threads)
LOAD_IDLE=$(host_load)
QEMU_KIB=0
NQEMU=0
for pid in $(qemu_pids); do
    ours "$pid" || continue
    QEMU_KIB=$((QEMU_KIB + $(status_kib "$pid" VmRSS)))
    NQEMU=$((NQEMU + 1))
done
[ "$NQEMU" = "$GUESTS" ] || say "warning: $NQEMU QEMU processes found, $GUESTS expected"

for vm in "${names[@]}"; do
    api POST "/v1/vms/$vm/destroy" >/dev/null || say "warning: destroy of '$vm' failed"
done

# ---- report ------------------------------------------------------------------------

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "PASS" : "MISS" }'; }
sub1() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f", a - b }'; }
sgn() { awk -v v="$1" 'BEGIN { printf "%+.1f", v }'; }
row3() { printf '  %-48s %8s %8s %8s\n' "$1" "$2" "$3" "$4"; }
row1() { printf '  %-48s %8s\n' "$1" "$2"; }
QEMU_AVG=$((QEMU_KIB / (NQEMU > 0 ? NQEMU : 1)))
PER_GUEST=$(awk -v a="$RSS10" -v b="$RSS0" -v n="$GUESTS" 'BEGIN { printf "%.0f", (a - b) / n }')
RSS10_MIB=$(mib "$RSS10")

echo
echo "== strata-agent benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs," \
     "$(qemu-system-x86_64 --version | head -1 | awk '{ print "QEMU " $4 }'), $buildtype build =="
echo "host at start:           $LOAD_BEFORE"
echo "host with guests idling: $LOAD_IDLE"
echo
echo "Start latency, ms: request -> QEMU running, QMP ready, cont answered"
echo "($RUNS runs each, alternating; q35, 1 vCPU, $MEM_MIB MiB, direct kernel boot, TCG)"
row3 "" median p90 min
row3 "ours: POST /v1/vms/NAME/start (curl)" "$O_MED" "$O_P90" "$O_MIN"
row3 "baseline: same argv, QEMU alone (qmp_baseline)" "$B_MED" "$B_P90" "$B_MIN"
row1 "  baseline spawn -> QMP socket accepts" "$S_MED"
row1 "  baseline spawn -> greeting read" "$G_MED"
row1 "  baseline spawn -> capabilities answered" "$R_MED"
row3 "overhead ours - baseline (of the statistics)" "$(sub1 "$O_MED" "$B_MED")" "$(sub1 "$O_P90" "$B_P90")" "$(sub1 "$O_MIN" "$B_MIN")"
row3 "overhead ours - baseline (per run, paired)" "$(sgn "$D_MED")" "$(sgn "$D_P90")" "$(sgn "$D_MIN")"
echo
echo "Agent memory, KiB (/proc/PID/status)"
row3 "" VmRSS VmHWM RssAnon
row3 "baseline: agent idle, 0 VMs" "$RSS0" "$HWM0" "$ANON0"
row3 "after the latency runs (1 VM, stopped)" "$RSS1" "" ""
row3 "ours: $GUESTS guests idle ${IDLE_S} s ($THREADS10 agent threads)" "$RSS10" "$HWM10" "$ANON10"
row3 "increment per guest" "$PER_GUEST" "" ""
row3 "context: sum of $NQEMU QEMU VmRSS" "$QEMU_KIB" "" ""
row3 "context: QEMU VmRSS per guest" "$QEMU_AVG" "" ""
echo
printf '  %-48s %12s %12s  %s\n' "Target" measured target result
printf '  %-48s %9s ms %9s ms  %s\n' "start -> running with QMP ready, median" "$O_MED" \
       "<= $TARGET_START_MS" "$(verdict "$O_MED" "$TARGET_START_MS")"
printf '  %-48s %8s MiB %8s MiB  %s\n' "agent VmRSS with $GUESTS idle guests" "$RSS10_MIB" \
       "<= $TARGET_RSS_MIB" "$(verdict "$RSS10_MIB" "$TARGET_RSS_MIB")"
BENCH_OK=1
