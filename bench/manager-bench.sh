#!/usr/bin/env bash
# manager-bench.sh - REST latency of strata-manager with 10,000 VMs in the
# store, under concurrent load, printed beside the same server's latency for
# a trivial route measured in the same run.
#
#   bench/manager-bench.sh [BUILD_DIR]        (default BUILD_DIR: build)
#
# Needs BUILD_DIR/src/manager/strata-manager, BUILD_DIR/bench/mgr_seed and
# BUILD_DIR/bench/rest_load (a release build: meson setup BUILD_DIR
# -Dbuildtype=release), curl and jq.
#
# What it does, in a private sandbox (one mktemp directory in ${TMPDIR:-/tmp}):
#
# 1. Seeds a fresh database with bench/mgr_seed: through the manager's own
#    store API, in one transaction, a site, a cluster, 4 hosts and
#    BENCH_VMS (10000) VMs with realistic definitions (and stats for the
#    running two thirds).  Their ids go to a file.
# 2. Starts the manager on a unix socket with an admin password (hosts are
#    unreachable and the heartbeat interval is 1 h, so the monitor stays
#    quiet), logs in once and checks that GET /api/v1/vms counts them all.
# 3. For each load level in BENCH_CLIENTS ("1 4": that many client threads,
#    each with one keep-alive connection, sending as fast as answered),
#    bench/rest_load runs every route for BENCH_DURATION_S (3) seconds per
#    round, the routes taking turns, BENCH_ROUNDS (2) rounds after a 1 s
#    warm-up per route, and times every request:
#      version    GET /api/v1/version            the baseline: public, no store
#      session    GET /api/v1/sessions/current   authenticated, one small query
#      get        GET /api/v1/vms/{id}           a random one of the VMs, by id
#      list       GET /api/v1/vms                the default page (100)
#      list-1     GET /api/v1/vms?limit=1        the fixed cost of a list
#      list-1000  GET /api/v1/vms?limit=1000     the largest page
#      list-last  GET /api/v1/vms?offset=9900    the last default page
#    It prints requests/s, p50/p99/max latency, errors, response size, the
#    manager's CPU time per request, and p50/p99 as multiples of version's.
# 4. Memory: the manager's VmRSS right after start, after the first list, and
#    VmRSS/VmHWM after all the load.
#
# The host's load average and CPU count are printed: latency is only
# comparable between runs on an otherwise idle host, and the client threads
# share the CPUs with the manager.  It is a report, not a test: the exit
# status is 0 unless the benchmark could not run.
#
# Environment: BENCH_VMS, BENCH_CLIENTS, BENCH_DURATION_S, BENCH_ROUNDS,
# BENCH_WARMUP_S (1), BENCH_KEEP=1 keeps the sandbox.
#
# Everything started here is stopped by PID at exit (the manager gets
# SIGTERM, then SIGKILL after 10 s), also on failure or SIGTERM.
set -u
export LC_ALL=C

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$TOP/build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
VMS=${BENCH_VMS:-10000}
CLIENTS=${BENCH_CLIENTS:-1 4}
DURATION=${BENCH_DURATION_S:-3}
ROUNDS=${BENCH_ROUNDS:-2}
WARMUP=${BENCH_WARMUP_S:-1}
PASSWORD='manager-bench-password'

MANAGER=$BUILD/src/manager/strata-manager
SEED=$BUILD/bench/mgr_seed
LOAD=$BUILD/bench/rest_load

die() { echo "manager-bench: error: $*" >&2; exit 1; }
say() { echo "manager-bench: $*" >&2; }

for p in "$MANAGER" "$SEED" "$LOAD"; do
    [ -x "$p" ] || die "'$p' not found: meson setup $BUILD -Dbuildtype=release && ninja -C $BUILD"
done
for p in curl jq; do
    command -v "$p" >/dev/null || die "'$p' is not installed"
done
buildtype=$(jq -r '.[] | select(.name == "buildtype") | .value' \
            "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null || echo unknown)
[ "$buildtype" = release ] || say "warning: '$BUILD' is a '$buildtype' build, not release"

SB=$(mktemp -d "${TMPDIR:-/tmp}/strata-mgr-bench.XXXXXX") || die "cannot create the sandbox"
SOCK=$SB/manager.sock
MGR_PID=
BENCH_OK=0

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    if [ -n "$MGR_PID" ] && kill -0 "$MGR_PID" 2>/dev/null; then
        kill -TERM "$MGR_PID" 2>/dev/null
        for i in $(seq 1 100); do
            kill -0 "$MGR_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$MGR_PID" 2>/dev/null && kill -KILL "$MGR_PID" 2>/dev/null
        wait "$MGR_PID" 2>/dev/null
    fi
    [ "$BENCH_OK" = 1 ] || tail -20 "$SB/manager.log" 2>/dev/null | sed 's/^/manager.log: /' >&2
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
    local method=$1 path=$2 body=${3:-} out code auth=()
    [ -n "${TOKEN:-}" ] && auth=(-H "Authorization: Bearer $TOKEN")
    if [ -n "$body" ]; then
        out=$(curl -s --max-time 60 --unix-socket "$SOCK" -X "$method" "${auth[@]}" \
              -H 'Content-Type: application/json' --data-binary "$body" \
              -w '\n%{http_code}' "http://manager$path") || return 1
    else
        out=$(curl -s --max-time 60 --unix-socket "$SOCK" -X "$method" "${auth[@]}" \
              -w '\n%{http_code}' "http://manager$path") || return 1
    fi
    code=${out##*$'\n'}
    printf '%s' "${out%$'\n'*}"
    case $code in 2??) return 0 ;; *) echo "manager-bench: $method $path -> $code" >&2; return 1 ;; esac
}

# status_kib PID FIELD: a field of /proc/PID/status, in KiB.
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
host_load() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"; }

# ---- 1. seed ---------------------------------------------------------------------

LOAD_BEFORE=$(host_load)
say "host: $LOAD_BEFORE"
say "seeding $VMS VMs"
SEED_MSG=$("$SEED" "$SB/manager.db" "$VMS" "$SB/ids" 2>&1) || die "seeding failed: $SEED_MSG"
say "$SEED_MSG"
DB_KIB=$(( $(stat -c %s "$SB/manager.db") / 1024 ))

# ---- 2. manager ------------------------------------------------------------------

STRATA_ADMIN_PASSWORD=$PASSWORD "$MANAGER" --db "$SB/manager.db" --socket "$SOCK" \
    --pki-dir "$SB/pki" --heartbeat-interval 3600000 --log-level warn \
    >>"$SB/manager.log" 2>&1 &
MGR_PID=$!
for i in $(seq 1 200); do
    curl -s --unix-socket "$SOCK" http://manager/api/v1/version >/dev/null 2>&1 && break
    kill -0 "$MGR_PID" 2>/dev/null || die "the manager exited at start"
    [ "$i" = 200 ] && die "the manager did not answer"
    sleep 0.05
done
sleep 1
RSS_START=$(status_kib "$MGR_PID" VmRSS)
VERSION=$(api GET /api/v1/version | jq -c .) || die "GET /api/v1/version failed"
TOKEN=$(api POST /api/v1/sessions "{\"name\": \"admin\", \"password\": \"$PASSWORD\"}" \
        | jq -r .token) || die "login failed"
[ -n "$TOKEN" ] && [ "$TOKEN" != null ] || die "login gave no token"
total=$(api GET /api/v1/vms | jq -r .total) || die "GET /api/v1/vms failed"
[ "$total" = "$VMS" ] || die "GET /api/v1/vms counts $total VMs, $VMS seeded"
RSS_LIST=$(status_kib "$MGR_PID" VmRSS)
say "manager up (pid $MGR_PID), $total VMs listed; VmRSS $RSS_START KiB"

# ---- 3. load ------------------------------------------------------------------------

ROUTES=(
    "version=/api/v1/version"
    "session=/api/v1/sessions/current"
    "get=/api/v1/vms/{id}"
    "list=/api/v1/vms"
    "list-1=/api/v1/vms?limit=1"
    "list-1000=/api/v1/vms?limit=1000"
    "list-last=/api/v1/vms?offset=$((VMS > 100 ? VMS - 100 : 0))"
)
: >"$SB/report"
for c in $CLIENTS; do
    say "load: $c clients, ${#ROUTES[@]} routes x $ROUNDS rounds x $DURATION s (+${WARMUP} s warm-up each)"
    load_during=$(host_load)
    "$LOAD" --socket "$SOCK" --token "$TOKEN" --clients "$c" --duration "$DURATION" \
        --rounds "$ROUNDS" --warmup "$WARMUP" --ids "$SB/ids" --pid "$MGR_PID" \
        "${ROUTES[@]}" >"$SB/load.$c" 2>"$SB/load.$c.err" \
        || { cat "$SB/load.$c.err" >&2; die "rest_load failed with $c clients"; }
    { echo "host before this level: $load_during; after: $(host_load)"
      cat "$SB/load.$c"; echo; } >>"$SB/report"
    [ -s "$SB/load.$c.err" ] && sed 's/^/  /' "$SB/load.$c.err" >>"$SB/report"
done
RSS_END=$(status_kib "$MGR_PID" VmRSS)
HWM_END=$(status_kib "$MGR_PID" VmHWM)
THREADS=$(status_kib "$MGR_PID" Threads)

# ---- report --------------------------------------------------------------------------

echo
echo "== strata-manager REST benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $buildtype build =="
echo "store: $VMS VMs, 4 hosts, 1 cluster (SQLite, $DB_KIB KiB); $SEED_MSG"
echo "manager: $(jq -r '"version " + (.version // "?")' <<<"$VERSION"), pid $MGR_PID, unix socket"
echo "host at start: $LOAD_BEFORE"
echo
echo "Latency per request, ms (client side: request sent -> whole response read),"
echo "the baseline 'version' measured by the same clients in the same run:"
cat "$SB/report"
echo "Manager memory, KiB (/proc/PID/status)"
printf '  %-44s %8s\n' "VmRSS after start ($VMS VMs in the store)" "$RSS_START"
printf '  %-44s %8s\n' "VmRSS after the first GET /api/v1/vms" "$RSS_LIST"
printf '  %-44s %8s\n' "VmRSS after the load ($THREADS threads)" "$RSS_END"
printf '  %-44s %8s\n' "VmHWM after the load" "$HWM_END"
BENCH_OK=1
