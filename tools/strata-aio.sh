#!/usr/bin/env bash
# strata-aio.sh - the all-in-one Strata on this machine (the README's main job).
#
#   tools/strata-aio.sh          install what is missing, build, start the node
#                                agent, define the demo VM from the project's
#                                test guest, boot it and show its console
#   tools/strata-aio.sh status   agent and VM state
#   tools/strata-aio.sh stop     shut the demo VM down and stop the agent
#
# Everything lives under ./var in the checkout (state, sockets, images, logs),
# so nothing outside it is touched besides the Debian packages.  The agent's
# API is on the unix socket var/agent.sock:
#   curl -s --unix-socket var/agent.sock http://agent/v1/vms | jq .
# (The manager and the strata CLI come with the manager issue; this script
# will then start the manager too and join the local agent to it.)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
var=$top/var
sock=$var/agent.sock
pidfile=$var/agent.pid
vm=demo

say() { printf '\033[1m== %s\033[0m\n' "$*"; }
api() {   # api METHOD PATH [BODY]
    if [ $# -ge 3 ]; then
        curl -sS --unix-socket "$sock" -X "$1" -H 'Content-Type: application/json' \
             --data-binary "$3" "http://agent$2"
    else
        curl -sS --unix-socket "$sock" -X "$1" "http://agent$2"
    fi
}
agent_running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case ${1:-up} in
status)
    if agent_running; then
        echo "agent: running (pid $(cat "$pidfile")), socket $sock"
        api GET /v1/vms | jq -r '.vms[] | "\(.name)\t\(.state)\tpid \(.pid)"'
    else
        echo "agent: not running"
    fi
    exit 0 ;;
stop)
    if agent_running; then
        say "shutting the demo VM down"
        api POST /v1/vms/$vm/shutdown '{"timeout_s": 20}' >/dev/null 2>&1 || true
        say "stopping the agent"
        kill "$(cat "$pidfile")"
        rm -f "$pidfile"
    fi
    exit 0 ;;
up) ;;
*) echo "usage: $0 [up|status|stop]" >&2; exit 2 ;;
esac

say "installing missing Debian packages"
tools/install-deps.sh
say "building"
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build src/agent/strata-agent >/dev/null
say "building the test guest (Debian kernel + busybox initramfs)"
tools/build-guest.sh build/guest >/dev/null
mkdir -p "$var/state" "$var/run" "$var/images"
cp -u build/guest/vmlinuz build/guest/initramfs.cpio.gz "$var/images/"

if ! agent_running; then
    say "starting strata-agent"
    build/src/agent/strata-agent --state-dir "$var/state" --run-dir "$var/run" \
        --socket "$sock" --image-root "$var/images" --log-file "$var/agent.log" \
        </dev/null >/dev/null 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
        api GET /v1/version >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
api GET /v1/host | jq -r '"host \(.hostname): \(.cpu.model_name // .cpu_model_name // "cpu"), accelerator \(.accel.accel // .accel) (\(.accel.reason // ""))"' 2>/dev/null || true

if [ "$(api GET /v1/vms/$vm | jq -r '.error.code // empty')" = not-found ]; then
    say "defining the demo VM"
    def=$(jq -n --arg k "$var/images/vmlinuz" --arg i "$var/images/initramfs.cpio.gz" '{
        name: "demo",
        vcpus: {count: 1, max: 4, sockets: 4, cores: 1, threads: 1},
        memory: {mib: 256, max_mib: 1024, slots: 4},
        machine: "q35",
        boot: {kernel: $k, initrd: $i, cmdline: "console=ttyS0 quiet swiotlb=noforce"},
        vnc: {listen: "unix"},
        guest_agent: true }')
    api POST /v1/vms "$def" | jq -c '{name, uuid, state}'
fi
state=$(api GET /v1/vms/$vm | jq -r .state)
if [ "$state" != running ]; then
    say "booting the demo VM"
    api POST /v1/vms/$vm/start | jq -c '{name, state, pid}'
fi
say "console of the demo VM (serial, via GET /v1/vms/demo/console)"
for _ in $(seq 1 150); do
    api GET "/v1/vms/$vm/console?format=raw" | grep -q STRATA-GUEST-READY && break
    sleep 0.2
done
api GET "/v1/vms/$vm/console?format=raw" | tail -20
echo
say "the demo VM runs; try:"
cat <<EOF
  curl -s --unix-socket var/agent.sock http://agent/v1/vms | jq .
  curl -s --unix-socket var/agent.sock -X PUT -d '{"count": 2}' http://agent/v1/vms/demo/vcpus | jq .
  curl -s --unix-socket var/agent.sock http://agent/v1/vms/demo/guest/ping | jq .
  curl -s --unix-socket var/agent.sock http://agent/v1/vms/demo/stats | jq .
  tools/strata-aio.sh status | stop
EOF
