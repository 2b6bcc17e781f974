#!/usr/bin/env bash
# test-manager-crash.sh - kill -9 of the manager in the middle of 20
# concurrent tasks, and reconciliation with the agent after a restart.
#
# 20 VM creations are submitted at once (ten with eager-zeroed disks, whose
# zeroing is an agent job, ten thin), and the manager is killed with SIGKILL
# while they run.  After a restart every task has ended - succeeded, or
# failed with its steps undone - and the inventory matches what the agent
# has: the same VMs (by uuid), and exactly the volumes of the recorded disks
# in the datastore.  Then, with the manager stopped, the agent is changed
# behind its back (a VM started, one undefined, one defined directly); the
# restarted manager reports the new state, marks the vanished VM missing and
# adopts the unknown one, once.  Last, the agent stops: its VMs become
# 'unknown' until it is back.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mgr-lib.sh"

mgr_init

# agent_api METHOD PATH [BODY]: the agent's own unix socket (not the manager).
agent_api() {
    local args=(-s --unix-socket "$MD/agent/agent.sock" -X "$1")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}" "http://agent$2"
}

# 1. Twenty creations at once, the manager killed while they run.
: >"$MD/tasks"
pids=()
for i in $(seq 1 20); do
    if [ $((i % 2)) = 0 ]; then
        extra='{"disks": [{"datastore": "ds1", "size": 201326592, "provisioning": "thick-eager", "cache": "writeback"}]}'
    else
        extra='{}'
    fi
    ( curl -s --unix-socket "$MSOCK" -H "Authorization: Bearer $ATOK" \
          -H 'Content-Type: application/json' --data-binary "$(vm_spec "c$i" "$extra")" \
          http://m/api/v1/vms | jq -r .task.id >>"$MD/tasks" ) &
    pids+=($!)
done
wait "${pids[@]}"
check "20 tasks accepted" [ "$(grep -c . "$MD/tasks")" = 20 ]
sleep 0.3
running=$(mapi "$ATOK" GET '/api/v1/tasks?state=running' | jq -r .total)
queued=$(mapi "$ATOK" GET '/api/v1/tasks?state=queued' | jq -r .total)
echo "# at the kill: $running running, $queued queued"
check "tasks were still under way at the kill" [ $((running + queued)) -gt 0 ]
mgr_kill9
check "manager restarts after kill -9" mgr_start

# 2. Every task ends.
all_ended() {
    local i left
    for i in $(seq 1 600); do
        left=$(mapi "$ATOK" GET '/api/v1/tasks?state=running' | jq -r .total)
        left=$((left + $(mapi "$ATOK" GET '/api/v1/tasks?state=queued' | jq -r .total)))
        [ "$left" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}
check "no task is left queued or running" all_ended
mapi "$ATOK" GET '/api/v1/tasks?kind=vm.create&limit=100' >"$MD/tasks.json"
ok_n=$(jq '[.items[] | select(.state == "succeeded")] | length' "$MD/tasks.json")
failed_n=$(jq '[.items[] | select(.state == "failed")] | length' "$MD/tasks.json")
echo "# after the restart: $ok_n succeeded, $failed_n failed"
check "every task succeeded or failed" [ $((ok_n + failed_n)) = 20 ]
bad=$(jq '[.items[] | select(.state == "failed") | select(.error.message | test("interrupted") | not)] | length' "$MD/tasks.json")
check "failed tasks failed because the manager stopped" [ "$bad" = 0 ]
undone=$(jq '[.items[] | select(.state == "failed") | .steps[] | select(.state == "done")] | length' "$MD/tasks.json")
check "failed tasks have no step left done (all undone)" [ "$undone" = 0 ]

# 3. The inventory matches the agent.
mgr_vms=$(mapi "$ATOK" GET '/api/v1/vms?limit=100' | jq -r '[.items[].id] | sort | join(",")')
agent_vms=$(agent_api GET /v1/vms | jq -r '[.vms[].uuid | ascii_downcase] | sort | join(",")')
check "the manager's VMs are exactly the agent's" [ "$mgr_vms" = "$agent_vms" ]
n_mgr=$(mapi "$ATOK" GET '/api/v1/vms?limit=100' | jq -r .total)
check "as many VMs as succeeded creations" [ "$n_mgr" = "$ok_n" ]
states=$(mapi "$ATOK" GET '/api/v1/vms?limit=100' | jq -r '[.items[].state] | unique | join(",")')
check "every created VM is stopped (none left creating)" [ "$states" = stopped ] || [ "$n_mgr" = 0 ]
mgr_vols=$(mapi "$ATOK" GET '/api/v1/vms?limit=100' | jq -r '[.items[].definition.disks[].volume] | sort | join(",")')
agent_vols=$(agent_api GET /v1/datastores/ds1/volumes | jq -r '[.volumes[].name] | sort | join(",")')
check "the datastore holds exactly the recorded volumes" [ "$mgr_vols" = "$agent_vols" ]
files=$(cd "$MD/ds1" && ls | grep -c '\.qcow2$')
check "no stray image file ($files files)" [ "$files" = "$ok_n" ]

# 4. Reconciliation: the agent changes while the manager is down.
first=$(mapi "$ATOK" GET '/api/v1/vms?limit=100' | jq -r '.items[0].name')
second=$(mapi "$ATOK" GET '/api/v1/vms?limit=100' | jq -r '.items[1].name')
kill -TERM "$MGR_PID"; wait "$MGR_PID" 2>/dev/null; MGR_PID=
agent_api POST "/v1/vms/$first/start" >/dev/null
agent_api DELETE "/v1/vms/$second" >/dev/null
agent_api POST /v1/vms "$(jq -n --arg k "$GUEST_KERNEL" --arg i "$GUEST_INITRD" \
    '{name: "stray", memory: 128, boot: {kernel: $k, initrd: $i, cmdline: "console=ttyS0"}}')" >/dev/null
check "manager restarts" mgr_start
state_is() {
    local i
    for i in $(seq 1 100); do
        [ "$(mapi "$ATOK" GET "/api/v1/vms/$1" | jq -r .state)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
check "a VM started behind the manager's back is seen running" state_is "$first" running
check "a VM the agent no longer has is marked missing" state_is "$second" missing
check "a VM only the agent knew is adopted" state_is stray stopped
sleep 1.5   # a few more heartbeats: nothing is duplicated
n=$(mapi "$ATOK" GET '/api/v1/vms?name=stray' | jq -r .total)
check "adopted once" [ "$n" = 1 ]
ev=$(mapi "$ATOK" GET '/api/v1/events?type=vm.adopted' | jq -r .total)
check "adoption is an event" [ "$ev" = 1 ]
# 5. The agent goes away: its VMs are unknown; it comes back: they are what
# it reports (the running one still runs: QEMU outlives its agent).
kill -TERM "$MAGENT_PID"; wait "$MAGENT_PID" 2>/dev/null; MAGENT_PID=
check "host disconnected when its agent stops" host_state_is node1 disconnected
check "its running VM is unknown" state_is "$first" unknown
check "with the reason" [ "$(mapi "$ATOK" GET "/api/v1/vms/$first" | jq -r .reason)" = "host 'node1' does not answer" ]
check "operations on it are refused while the host is away" \
    [ "$(task_wait "$(mapi "$ATOK" POST "/api/v1/vms/$first/suspend" | jq -r .task.id)")" = failed ]
mgr_start_agent
check "host connected again" host_state_is node1 connected
check "the VM is running again in the records" state_is "$first" running
check "destroy through the manager" \
    [ "$(task_wait "$(mapi "$ATOK" POST "/api/v1/vms/$first/destroy" | jq -r .task.id)")" = succeeded ]
