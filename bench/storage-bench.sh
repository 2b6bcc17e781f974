#!/usr/bin/env bash
# storage-bench.sh - storage figures of strata-agent, each beside a baseline
# measured in the same run.
#
#   bench/storage-bench.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# Needs BUILD_DIR/src/agent/strata-agent (a release build: meson setup
# BUILD_DIR -Dbuildtype=release), QEMU, qemu-img, curl, jq, dd, and the test
# guest (tools/build-guest.sh build/guest; another place with STRATA_GUEST).
#
# In a private sandbox (mktemp -d in ${BENCH_DIR:-${TMPDIR:-/tmp}}; the
# datastore is a directory there, so the figures are those of that
# filesystem), with the agent started with --accel tcg:
#
# 1. Eager zeroing.  BENCH_RUNS (3) times, alternating:
#      ours:     POST .../volumes {raw, thick-eager, BENCH_SIZE_MIB (1024)} and
#                wait for its job; throughput from the job's own elapsed_ms
#                (qemu-img create + writing every byte with zeros + fdatasync)
#                and, for context, from the wall time including the API;
#      baseline: dd if=/dev/zero of=FILE bs=1M count=SIZE conv=fdatasync.
#    Target: ours >= 90% of dd (medians).
# 2. Secure wipe.  The eager volumes of step 1 are deleted with ?secure=true
#    (every allocated byte overwritten with zeros, fdatasync, then unlink);
#    baseline: dd conv=notrunc,fdatasync over an existing file of the same
#    size.  Target: ours >= 90% of dd (medians).
# 3. Linked clone creation.  One base volume, then BENCH_CLONES (15) clones,
#    each POST timed with curl's %{time_total} (request -> answer, the overlay
#    created and both records written durably); baseline: qemu-img create of
#    the same overlay alone.  Target: median <= 20 ms.
# 4. Guest pause during a live snapshot.  The test guest boots with a disk
#    in the datastore; BENCH_SNAPS (10) live disk-only snapshots are taken;
#    "switch_ms" is how long QEMU's transaction of blockdev-snapshot held the
#    guest's I/O (the VM's vCPUs keep running); printed with the whole API
#    call.  Target: switch median <= 100 ms.
#
# The final table gives PASS/MISS per target.  It is a report: exit status 0
# unless the benchmark could not run.  Everything started is stopped by PID;
# the sandbox is removed (BENCH_KEEP=1 keeps it).
set -u
export LC_ALL=C

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$TOP/build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
GUEST=${STRATA_GUEST:-$TOP/build/guest}
RUNS=${BENCH_RUNS:-3}
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
CLONES=${BENCH_CLONES:-15}
SNAPS=${BENCH_SNAPS:-10}
AGENT=$BUILD/src/agent/strata-agent

die() { echo "storage-bench: error: $*" >&2; exit 1; }
say() { echo "storage-bench: $*" >&2; }

[ -x "$AGENT" ] || die "'$AGENT' not found: meson setup $BUILD -Dbuildtype=release && ninja -C $BUILD"
for p in curl jq qemu-img qemu-system-x86_64 dd; do
    command -v "$p" >/dev/null || die "'$p' is not installed"
done
[ -f "$GUEST/vmlinuz" ] || die "test guest missing in '$GUEST': run tools/build-guest.sh build/guest"
buildtype=$(jq -r '.[] | select(.name == "buildtype") | .value' \
    "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null)
[ "$buildtype" = release ] || say "warning: '$BUILD' is a '$buildtype' build, not release"

SB=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/strata-storage-bench.XXXXXX") || die "no sandbox"
SOCK=$SB/agent.sock
DS=$SB/ds
mkdir -p "$SB/state" "$SB/run" "$SB/images" "$DS"
cp "$GUEST/vmlinuz" "$GUEST/initramfs.cpio.gz" "$SB/images/"
AGENT_PID=

cleanup() {
    if [ -n "$AGENT_PID" ]; then
        api POST /v1/vms/bench1/destroy >/dev/null 2>&1
        kill -TERM "$AGENT_PID" 2>/dev/null
        wait "$AGENT_PID" 2>/dev/null
    fi
    local f pid
    for f in "$SB"/state/vms/*/runtime.json; do
        [ -f "$f" ] || continue
        pid=$(jq -r 'select(.pid > 0) | .pid' "$f")
        [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$SB/" \
            && kill -KILL "$pid" 2>/dev/null
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then say "sandbox kept: $SB"; else rm -rf "$SB"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

api() {   # api METHOD PATH [BODY]: body on stdout
    if [ -n "${3:-}" ]; then
        curl -s --max-time 300 --unix-socket "$SOCK" -X "$1" -H 'Content-Type: application/json' \
            --data-binary "$3" "http://agent$2"
    else
        curl -s --max-time 300 --unix-socket "$SOCK" -X "$1" "http://agent$2"
    fi
}
api_time() {   # api_time METHOD PATH BODY: curl's time_total in ms
    curl -s -o /dev/null --max-time 60 --unix-socket "$SOCK" -X "$1" \
        -H 'Content-Type: application/json' --data-binary "$3" -w '%{time_total}' \
        "http://agent$2" | awk '{ printf "%.2f", $1 * 1000 }'
}
wait_job() {
    local id=$1 j
    while :; do
        j=$(api GET "/v1/jobs/$id?wait_ms=10000")
        [ "$(echo "$j" | jq -r .state)" != running ] && { echo "$j"; return; }
    done
}
now_ns() { date +%s%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mibs() { awk -v mib="$1" -v ns="$2" 'BEGIN { printf "%.1f", mib / (ns / 1e9) }'; }

"$AGENT" --state-dir "$SB/state" --run-dir "$SB/run" --socket "$SOCK" \
    --image-root "$SB/images" --accel tcg --log-level warn >"$SB/agent.log" 2>&1 &
AGENT_PID=$!
for i in $(seq 1 200); do
    api GET /v1/version >/dev/null 2>&1 && break
    kill -0 "$AGENT_PID" 2>/dev/null || die "agent exited: $(tail -5 "$SB/agent.log")"
    sleep 0.05
done
api POST /v1/datastores "{\"name\": \"bench\", \"path\": \"$DS\", \"overcommit_ratio\": 100}" \
    | jq -e .uuid >/dev/null || die "cannot register the datastore"
say "sandbox $SB ($(df --output=fstype "$DS" | tail -1), $(df -h --output=avail "$DS" | tail -1 | tr -d ' ') free)"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg); CPUs: $(nproc)"

# ---- 1. eager zeroing -------------------------------------------------------
size=$((SIZE_MIB * 1048576))
: >"$SB/eager_ours" ; : >"$SB/eager_wall" ; : >"$SB/eager_dd"
for r in $(seq 1 "$RUNS"); do
    say "eager zeroing, run $r/$RUNS"
    t0=$(now_ns)
    dd if=/dev/zero of="$DS/dd$r.raw" bs=1M count="$SIZE_MIB" conv=fdatasync status=none
    t1=$(now_ns)
    mibs "$SIZE_MIB" $((t1 - t0)) >>"$SB/eager_dd"
    echo >>"$SB/eager_dd"
    t0=$(now_ns)
    job=$(api POST /v1/datastores/bench/volumes "{\"name\": \"eager$r\", \"capacity\": $size, \"format\": \"raw\", \"provisioning\": \"thick-eager\"}")
    res=$(wait_job "$(echo "$job" | jq -r .id)")
    t1=$(now_ns)
    [ "$(echo "$res" | jq -r .state)" = succeeded ] || die "eager creation failed: $res"
    echo "$res" | jq '.result.mib_per_s' >>"$SB/eager_ours"
    mibs "$SIZE_MIB" $((t1 - t0)) >>"$SB/eager_wall"
    echo >>"$SB/eager_wall"
done

# ---- 2. secure wipe ---------------------------------------------------------
: >"$SB/wipe_ours"; : >"$SB/wipe_dd"
for r in $(seq 1 "$RUNS"); do
    say "secure wipe, run $r/$RUNS"
    t0=$(now_ns)
    dd if=/dev/zero of="$DS/dd$r.raw" bs=1M count="$SIZE_MIB" conv=notrunc,fdatasync status=none
    t1=$(now_ns)
    mibs "$SIZE_MIB" $((t1 - t0)) >>"$SB/wipe_dd"
    echo >>"$SB/wipe_dd"
    rm -f "$DS/dd$r.raw"
    job=$(api DELETE "/v1/datastores/bench/volumes/eager$r?secure=true")
    res=$(wait_job "$(echo "$job" | jq -r .id)")
    [ "$(echo "$res" | jq -r .state)" = succeeded ] || die "secure delete failed: $res"
    echo "$res" | jq '.result.mib_per_s' >>"$SB/wipe_ours"
done

# ---- 3. linked clones --------------------------------------------------------
say "linked clones"
api POST /v1/datastores/bench/volumes '{"name": "base", "capacity": 1073741824}' | jq -e .uuid >/dev/null \
    || die "cannot create the base"
api POST /v1/datastores/bench/volumes '{"name": "warm", "base": "base"}' >/dev/null
: >"$SB/clone_ours"; : >"$SB/clone_img"
for i in $(seq 1 "$CLONES"); do
    api_time POST /v1/datastores/bench/volumes "{\"name\": \"c$i\", \"base\": \"base\"}" >>"$SB/clone_ours"
    echo >>"$SB/clone_ours"
    t0=$(now_ns)
    qemu-img create -q -f qcow2 -F qcow2 -b base.qcow2 "$DS/img$i.qcow2"
    t1=$(now_ns)
    awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f\n", ns / 1e6 }' >>"$SB/clone_img"
done

# ---- 4. live snapshot pause ---------------------------------------------------
say "live snapshots on a running guest"
api POST /v1/datastores/bench/volumes '{"name": "sv", "capacity": 268435456}' >/dev/null
def=$(jq -n --arg k "$SB/images/vmlinuz" --arg i "$SB/images/initramfs.cpio.gz" --arg d "$DS/sv.qcow2" '{
    name: "bench1", vcpus: {count: 1, max: 1, sockets: 1, cores: 1, threads: 1},
    memory: {mib: 256}, machine: "q35",
    boot: {kernel: $k, initrd: $i, cmdline: "console=ttyS0 quiet"},
    disks: [{id: "d0", path: $d, format: "qcow2", cache: "none"}]}')
api POST /v1/vms "$def" | jq -e .uuid >/dev/null || die "cannot define the VM"
api POST /v1/vms/bench1/start | jq -e '.state == "running"' >/dev/null || die "cannot start the VM"
for i in $(seq 1 120); do
    api GET "/v1/vms/bench1/console?format=raw" | grep -q STRATA-GUEST-READY && break
    sleep 0.5
done
: >"$SB/snap_switch"; : >"$SB/snap_api"
for i in $(seq 1 "$SNAPS"); do
    t0=$(now_ns)
    out=$(api POST /v1/vms/bench1/snapshots "{\"name\": \"s$i\"}")
    t1=$(now_ns)
    echo "$out" | jq -e .switch_ms >>"$SB/snap_switch" || die "snapshot failed: $out"
    awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f\n", ns / 1e6 }' >>"$SB/snap_api"
done

# ---- report --------------------------------------------------------------------
e_ours=$(median <"$SB/eager_ours"); e_wall=$(median <"$SB/eager_wall"); e_dd=$(median <"$SB/eager_dd")
w_ours=$(median <"$SB/wipe_ours"); w_dd=$(median <"$SB/wipe_dd")
c_ours=$(median <"$SB/clone_ours"); c_img=$(median <"$SB/clone_img")
s_sw=$(median <"$SB/snap_switch"); s_api=$(median <"$SB/snap_api")
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
ge() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "PASS" : "MISS" }'; }
le() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "PASS" : "MISS" }'; }
echo "== eager-zeroed ${SIZE_MIB} MiB volume (median of $RUNS)"
printf '   ours (job)        %8s MiB/s   (%s%% of dd)\n' "${e_ours%.*}" "$(pct "$e_ours" "$e_dd")"
printf '   ours (API, wall)  %8s MiB/s\n' "${e_wall%.*}"
printf '   dd conv=fdatasync %8s MiB/s\n' "${e_dd%.*}"
echo "== secure wipe of ${SIZE_MIB} MiB (median of $RUNS)"
printf '   ours (job)        %8s MiB/s   (%s%% of dd)\n' "${w_ours%.*}" "$(pct "$w_ours" "$w_dd")"
printf '   dd notrunc        %8s MiB/s\n' "${w_dd%.*}"
echo "== linked clone creation (median of $CLONES)"
printf '   ours (API)        %8s ms\n' "$c_ours"
printf '   qemu-img create   %8s ms\n' "$c_img"
echo "== live snapshot, running guest (median of $SNAPS)"
printf '   guest I/O paused  %8s ms   (QMP transaction)\n' "$s_sw"
printf '   whole API call    %8s ms\n' "$s_api"
echo "== targets"
printf '   %-44s %s\n' "eager zeroing >= 90% of dd" "$(ge "$(pct "$e_ours" "$e_dd")" 90)"
printf '   %-44s %s\n' "secure wipe >= 90% of dd" "$(ge "$(pct "$w_ours" "$w_dd")" 90)"
printf '   %-44s %s\n' "linked clone creation <= 20 ms" "$(le "$c_ours" 20)"
printf '   %-44s %s\n' "guest pause during a live snapshot <= 100 ms" "$(le "$s_sw" 100)"
