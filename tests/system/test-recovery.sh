#!/usr/bin/env bash
# Agent crash recovery: with two guests running, kill -9 the agent; the guests
# keep running; a new agent reattaches to both (PID + command line verified),
# reports them running, follows their events and shuts them down through the
# API.  A guest whose QEMU dies while the agent is down is reported with its
# exit reason.
. "$(dirname "$0")/lib.sh"
st_init

for vm in rec1 rec2 rec3; do
    extra='{}'
    # rec2 also shows VNC on loopback with a websocket listener.
    [ $vm = rec2 ] && extra='{"vnc": {"listen": "loopback", "websocket": true}}'
    check "define $vm" api_ok POST /v1/vms "$(guest_def $vm "$extra")"
    check "start $vm" api_ok POST /v1/vms/$vm/start
done
vnc=$(api GET /v1/vms/rec2/vnc)
vport=$(echo "$vnc" | jq -r .port)
check "rec2 VNC on 127.0.0.1 ($vnc)" [ "$(echo "$vnc" | jq -r .host)" = 127.0.0.1 ]
banner=$(timeout 5 socat -u "TCP:127.0.0.1:$vport" - 2>/dev/null | head -c 12)
check "rec2 VNC port speaks RFB ($banner)" [ "${banner:0:4}" = "RFB " ]
ws=$(printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n' \
     | timeout 5 socat - "TCP:127.0.0.1:$((vport - 200))" 2>/dev/null | head -1 | tr -d '\r')
check "rec2 VNC websocket port upgrades ($ws)" sh -c "echo '$ws' | grep -q ' 101 '"
for vm in rec1 rec2 rec3; do
    check "$vm ready" wait_console $vm 'STRATA-GUEST-READY' 90
done
pid1=$(api GET /v1/vms/rec1 | jq -r .pid)
pid2=$(api GET /v1/vms/rec2 | jq -r .pid)
pid3=$(api GET /v1/vms/rec3 | jq -r .pid)

st_stop_agent KILL
check "rec1 QEMU survives kill -9 of the agent" proc_alive "$pid1"
check "rec2 QEMU survives kill -9 of the agent" proc_alive "$pid2"
# rec3's QEMU dies while no agent watches it.
kill -TERM "$pid3"
for i in $(seq 1 50); do proc_alive "$pid3" || break; sleep 0.1; done

st_start_agent
check "rec1 reported running after restart" wait_state rec1 running 10
check "rec2 reported running after restart" wait_state rec2 running 10
check "rec1 same PID" [ "$(api GET /v1/vms/rec1 | jq -r .pid)" = "$pid1" ]
check "rec2 same PID" [ "$(api GET /v1/vms/rec2 | jq -r .pid)" = "$pid2" ]
check "rec3 (QEMU died while the agent was down) reported stopped" [ "$(vm_state rec3)" = stopped ]
check "rec3 marked crashed (nobody asked it to stop)" [ "$(api GET /v1/vms/rec3 | jq -r .crashed)" = true ]
reason=$(api GET /v1/vms/rec3 | jq -r .exit_reason)
note "rec3 exit reason: $reason"
check "rec3 exit reason explains it" sh -c "echo '$reason' | grep -q 'while the agent was down'"

# Events still flow after reattach: pause/resume through QMP.
check "pause reattached rec1" api_ok POST /v1/vms/rec1/pause
check "rec1 paused" [ "$(vm_state rec1)" = paused ]
check "resume reattached rec1" api_ok POST /v1/vms/rec1/resume
ev=$(api GET '/v1/events?since=0')
check "STOP and RESUME events seen after reattach" \
    [ "$(echo "$ev" | jq '[.events[] | select(.vm == "rec1" and .type == "qemu-event") | .data.event] | (index("STOP") != null and index("RESUME") != null)')" = true ]

check "graceful shutdown of rec1 through the API" \
    api_ok POST /v1/vms/rec1/shutdown '{"mode": "acpi", "timeout_s": 20, "force": false}'
check "graceful shutdown of rec2 through the API" \
    api_ok POST /v1/vms/rec2/shutdown '{"mode": "acpi", "timeout_s": 20, "force": false}'
check "rec1 stopped" [ "$(vm_state rec1)" = stopped ]
check "rec2 stopped" [ "$(vm_state rec2)" = stopped ]
check "rec1 QEMU gone" eval '! proc_alive $pid1'
check "rec2 QEMU gone" eval '! proc_alive $pid2'
check "rec3 can start again" api_ok POST /v1/vms/rec3/start
check "rec3 ready again" wait_console rec3 'STRATA-GUEST-READY' 90
check "destroy rec3" api_ok POST /v1/vms/rec3/destroy
