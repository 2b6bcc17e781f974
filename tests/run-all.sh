#!/usr/bin/env bash
# run-all.sh - the whole Strata test suite, as CI and the README run it.
#
#   1. builds two trees: build/ (debugoptimized) and build-asan/
#      (AddressSanitizer + UndefinedBehaviorSanitizer);
#   2. builds the test guest (tools/build-guest.sh) into build/guest;
#   3. runs the unit and golden tests (cmocka, TAP) under the sanitizers;
#   4. runs the system tests (tests/system/test-*.sh: real QEMU guests under
#      the sanitizer-built agent), at most two at a time so that no more than
#      four guests boot at once on a two-core machine.
# The last line is "N passed, N failed, N skipped" (individual assertions).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
log_dir=$top/build/test-logs
jobs=${STRATA_TEST_JOBS:-2}

say() { printf '== %s\n' "$*"; }

setup() {   # setup DIR [meson options...]
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
    fi
    ninja -C "$dir" >"$dir.ninja.log" 2>&1 || { tail -50 "$dir.ninja.log"; return 1; }
}

pass=0 fail=0 skipped=0
say "installing missing Debian packages (tools/install-deps.sh)"
tools/install-deps.sh >"$top/build-deps.log" 2>&1 || { tail -20 "$top/build-deps.log"; echo "0 passed, 1 failed"; exit 1; }
say "building build/ and build-asan/"
setup build || { echo "0 passed, 1 failed"; exit 1; }
setup build-asan -Db_sanitize=address,undefined -Db_lundef=false || { echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$log_dir"
rm -f "$log_dir"/*.log

say "building the test guest"
if ! tools/build-guest.sh build/guest >"$log_dir/guest-build.log" 2>&1; then
    tail -30 "$log_dir/guest-build.log"
    echo "0 passed, 1 failed"
    exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CMOCKA_MESSAGE_OUTPUT=TAP

say "unit and golden tests (sanitizers)"
meson test -C build-asan --no-rebuild --print-errorlogs --suite unit --suite golden \
    >"$log_dir/meson-test.log" 2>&1
# Count TAP subtests (every cmocka case and golden case), from meson's lines:
#   " 3/14 strata:golden / argv-golden  OK  0.01s  25 subtests passed"
#   " 5/14 strata:unit / util  FAIL  0.1s  9/10 subtests passed"
read -r u_ok u_fail u_skip < <(awk '
    /^ *[0-9]+\/[0-9]+ / {
        status = ""; for (i = 1; i <= NF; i++) if ($i ~ /^(OK|FAIL|SKIP|TIMEOUT|ERROR|UNEXPECTEDPASS|EXPECTEDFAIL)$/) status = $i
        k = -1; m = -1
        if (match($0, /[0-9]+\/[0-9]+ subtests passed/)) { split(substr($0, RSTART), a, /[\/ ]/); k = a[1]; m = a[2] }
        else if (match($0, /[0-9]+ subtests passed/)) { split(substr($0, RSTART), a, / /); k = a[1]; m = a[1] }
        if (status == "OK" || status == "EXPECTEDFAIL") { ok += (k >= 0 ? k : 1) }
        else if (status == "SKIP") { sk += 1 }
        else if (status != "") { if (k >= 0) { ok += k; f += (m - k > 0 ? m - k : 1) } else f += 1 }
    }
    END { printf "%d %d %d\n", ok, f, sk }' "$log_dir/meson-test.log")
u_to=0
if ! grep -qE '^ *[0-9]+/[0-9]+ ' "$log_dir/meson-test.log"; then
    u_fail=$((u_fail + 1))   # meson itself failed
    tail -20 "$log_dir/meson-test.log"
fi
pass=$((pass + u_ok)); fail=$((fail + u_fail)); skipped=$((skipped + u_skip))
grep -E '^ *[0-9]+/[0-9]+ ' "$log_dir/meson-test.log" | sed 's/^/   /'
if [ "$u_fail" -ne 0 ]; then
    sed -n '/^Summary of Failures/,$p' "$log_dir/meson-test.log" | head -40
fi
say "unit+golden: $u_ok ok, $u_fail failed, $u_skip skipped"

say "system tests (real guests)"
export STRATA_BUILD=$top/build-asan STRATA_GUEST=$top/build/guest
# Leak checking is off for the daemons: they are stopped with SIGKILL on purpose.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0
tests=$(ls tests/system/test-*.sh 2>/dev/null)
if [ -n "${STRATA_SYSTEM_TESTS:-}" ]; then tests=$STRATA_SYSTEM_TESTS; fi
run_one() {
    local t=$1 name
    name=$(basename "$t" .sh)
    local t0=$(date +%s)
    timeout 900 bash "$t" >"$log_dir/$name.log" 2>&1
    local rc=$?
    echo "$rc $(( $(date +%s) - t0 ))" >"$log_dir/$name.rc"
}
running=0
for t in $tests; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
for t in $tests; do
    name=$(basename "$t" .sh)
    read -r rc secs <"$log_dir/$name.rc"
    p=$(grep -c '^ok - ' "$log_dir/$name.log" | tr -d ' ')
    s=$(grep -c '^ok - .*# SKIP' "$log_dir/$name.log" | tr -d ' ')
    f=$(grep -c '^not ok - ' "$log_dir/$name.log" | tr -d ' ')
    p=$((p - s))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1   # died without a failed assertion (bail out, timeout, crash)
        echo "not ok - $name exited with status $rc" >>"$log_dir/$name.log"
    fi
    pass=$((pass + p)); fail=$((fail + f)); skipped=$((skipped + s))
    printf '   %-28s %3d ok %3d failed %3d skipped  (%ss)\n' "$name" "$p" "$f" "$s" "$secs"
    if [ "$f" -ne 0 ]; then
        grep -E '^(not ok|Bail out)' "$log_dir/$name.log" | head -20 | sed 's/^/      /'
        grep -B2 -A8 -E 'ERROR: (Address|Undefined)Sanitizer|runtime error:' \
            "$log_dir/$name.log" 2>/dev/null | head -30 | sed 's/^/      /'
    fi
done
# Sanitizer reports from the agents the system tests ran.
if grep -lE 'ERROR: AddressSanitizer|runtime error:' /tmp/st.*/agent.log 2>/dev/null; then
    fail=$((fail + 1))
fi
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
