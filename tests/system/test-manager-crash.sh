#!/usr/bin/env bash
# test-manager-crash.sh - kill -9 of the manager in the middle of 20
# concurrent tasks, and reconciliation with the agent after a restart.
#
# 20 tasks are submitted at once - 14 VM creations (half with eager-zeroed
# disks, whose zeroing is an agent job), 3 starts and 3 snapshots of VMs made
# before - and the manager is killed with SIGKILL while they run.  After a
# restart every task has ended - succeeded, or failed with its steps undone -
# and the inventory matches what the agent has: the same VMs (by uuid) in the
# same states, exactly the volumes of the recorded disks in the datastore,
# a snapshot exactly where its task succeeded.  Then, with the manager
# stopped, the agent is changed behind its back (a VM started, one
# undefined, one defined directly); the restarted manager reports the new
# state, marks the vanished VM missing and adopts the unknown one, once.
# Last, the agent stops: its VMs become 'unknown' until it is back.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mgr-lib.sh"

mgr_init

# agent_api METHOD PATH [BODY]: the agent's own unix socket (not the manager).
agent_api() {
    local args=(-s --unix-socket "$MD/agent/agent.sock" -X "$1")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}" "http://agent$2"
}

# 0. Six VMs made beforehand: three to start and three to snapshot in the batch.
for p in p1 p2 p3 p4 p5 p6; do
    tid=$(mapi "$ATOK" POST /api/v1/vms "$(vm_spec "$p")" | jq -r .task.id)
    [ "$(task_wait "$tid")" = succeeded ] || { echo "Bail out! cannot create $p"; exit 1; }
done

# 1. Twenty tasks at once - fourteen creations (half with eager-zeroed disks,
# whose zeroing is an agent job), three starts, three snapshots - and the
# manager killed while they run.
: >"$MD/tasks"
pids=()
post_task() {   # post_task PATH BODY: the task id into $MD/tasks
    curl -s --unix-socket "$MSOCK" -H "Authorization: Bearer $ATOK" \
        -H 'Content-Type: application/json' --data-binary "$2" "http://m$1" |
        jq -r .task.id >>"$MD/tasks"
}
for p in p1 p2 p3; do post_task "/api/v1/vms/$p/start" '{}' & pids+=($!); done
for p in p4 p5 p6; do post_task "/api/v1/vms/$p/snapshots" '{"name": "snap1"}' & pids+=($!); done
for i in $(seq 1 14); do
    if [ $((i % 2)) = 0 ]; then
        extra='{"disks": [{"datastore": "ds1", "size": 201326592, "provisioning": "thick-eager", "cache": "writeback"}]}'
    else
        extra='{}'
    fi
    post_task /api/v1/vms "$(vm_spec "c$i" "$extra")" &
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
mapi "$ATOK" GET '/api/v1/tasks?limit=100' |
    jq --rawfile ids "$MD/tasks" '{items: [.items[] | select(.id as $i | $ids | contains($i))]}' \
    >"$MD/tasks.json"
check "the 20 tasks are on record" [ "$(jq '.items | length' "$MD/tasks.json")" = 20 ]
for k in vm.create vm.start vm.snapshot-create; do
    echo "# $k: $(jq -r --arg k "$k" '[.items[] | select(.kind == $k) | .state] | group_by(.) | map("\(length) \(.[0])") | join(", ")' "$MD/tasks.json")"
done
ended=$(jq '[.items[] | select(.state == "succeeded" or .state == "failed")] | length' "$MD/tasks.json")
check "every task succeeded or failed" [ "$ended" = 20 ]
ok_n=$(jq '[.items[] | select(.kind == "vm.create" and .state == "succeeded")] | length' "$MD/tasks.json")
ok_n=$((ok_n + 6))      # and the six made before
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
creating=$(mapi "$ATOK" GET '/api/v1/vms?state=creating' | jq -r .total)
check "no VM left creating" [ "$creating" = 0 ]
same_states() {     # the manager's state of every VM = the agent's
    local i a b
    for i in $(seq 1 50); do
        a=$(mapi "$ATOK" GET '/api/v1/vms?limit=100' | jq -cS '[.items[] | {(.id): .state}] | add')
        b=$(agent_api GET /v1/vms | jq -cS '[.vms[] | {(.uuid | ascii_downcase): .state}] | add')
        [ "$a" = "$b" ] && return 0
        sleep 0.2
    done
    echo "# manager $a"; echo "# agent   $b"
    return 1
}
check "every VM's state is the agent's" same_states
started=$(jq '[.items[] | select(.kind == "vm.start" and .state == "succeeded")] | length' "$MD/tasks.json")
running=$(agent_api GET /v1/vms | jq '[.vms[] | select(.state == "running")] | length')
check "the starts that succeeded left their VMs running ($started)" [ "$running" = "$started" ]
snaps_ok() {        # manager's snapshot rows = the agent's snapshots, per VM
    local p m a
    for p in p4 p5 p6; do
        m=$(mapi "$ATOK" GET "/api/v1/tasks?object=$(mapi "$ATOK" GET /api/v1/vms/$p | jq -r .id)&kind=vm.snapshot-create" |
            jq -r '.items[0].state')
        a=$(agent_api GET "/v1/vms/$p/snapshots" | jq -r '[.snapshots[].name] | join(",")')
        if [ "$m" = succeeded ]; then [ "$a" = snap1 ] || { echo "# $p: $m but agent has '$a'"; return 1; }
        else [ -z "$a" ] || { echo "# $p: $m but agent has '$a'"; return 1; }; fi
    done
}
check "a snapshot exists on the agent exactly when its task succeeded" snaps_ok
mgr_vols=$(mapi "$ATOK" GET '/api/v1/vms?limit=100' | jq -r '[.items[].definition.disks[].volume] | sort | join(",")')
agent_vols=$(agent_api GET /v1/datastores/ds1/volumes | jq -r '[.volumes[].name] | sort | join(",")')
check "the datastore holds exactly the recorded volumes" [ "$mgr_vols" = "$agent_vols" ]
files=$(cd "$MD/ds1" && ls | grep -cE '^[^.]+\.qcow2$')   # volume roots (deltas are <vol>.<id>.qcow2)
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
