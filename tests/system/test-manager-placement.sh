#!/usr/bin/env bash
# test-manager-placement.sh - initial placement across two real hosts: two
# agents joined to one manager (each its own state, sockets and certificate;
# both on this machine, so they report the same CPUs and memory), a
# datastore on each alone and a shared one on both.  VMs go where their
# datastores are; commitments fill a host (no memory overcommit: a second VM
# of 55 % of the host's memory goes to the other host, a third fits nowhere
# and the refusal gives each host's reason); the least-loaded policy picks
# the host with less committed; a host in maintenance takes nothing; a
# pinned host must still pass the filters.  No guest is started.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mgr-lib.sh"

mgr_init

# A second host, node2, joined like the first.
A2_PID=
cleanup2() { [ -n "$A2_PID" ] && { kill -TERM "$A2_PID" 2>/dev/null; wait "$A2_PID" 2>/dev/null; }; }
trap 'cleanup2; mgr_cleanup' EXIT
mkdir -p "$MD/agent2/pki" "$MD/agent2/state" "$MD/agent2/run" "$MD/ds2" "$MD/ds3"
jtok=$(mapi "$ATOK" POST /api/v1/join-tokens '{"cluster": "c1"}' | jq -r .token)
while :; do
    p2=$(shuf -i 20000-60000 -n 1)
    [ -z "$(ss -ltnH "sport = :$p2")" ] && [ "$p2" != "$MAPORT" ] && break
done
mapi "" POST /api/v1/hosts "{\"token\": \"$jtok\", \"name\": \"node2\", \"address\": \"127.0.0.1\", \"port\": $p2}" >"$MD/joined2.json"
check "node2 joins" [ "$(mstatus)" = 201 ]
jq -r .cert_pem "$MD/joined2.json" >"$MD/agent2/pki/agent.pem"
jq -r .key_pem "$MD/joined2.json" >"$MD/agent2/pki/agent-key.pem"
jq -r .ca_pem "$MD/joined2.json" >"$MD/agent2/pki/ca.pem"
chmod 600 "$MD/agent2/pki/agent-key.pem"
"$AGENT_BIN" --state-dir "$MD/agent2/state" --run-dir "$MD/agent2/run" \
    --socket "$MD/agent2/agent.sock" --image-root "$MD/images" --accel "${ST_ACCEL:-tcg}" \
    --listen "127.0.0.1:$p2" --tls-cert "$MD/agent2/pki/agent.pem" \
    --tls-key "$MD/agent2/pki/agent-key.pem" --tls-ca "$MD/agent2/pki/ca.pem" \
    --tls-peer-cn strata-manager >>"$MD/agent2.log" 2>&1 &
A2_PID=$!
check "node2 connected" host_state_is node2 connected
check "ds2 on node2 alone" [ "$(mapi "$ATOK" POST /api/v1/datastores \
    "{\"name\": \"ds2\", \"type\": \"local\", \"path\": \"$MD/ds2\", \"hosts\": [\"node2\"]}" >/dev/null; mstatus)" = 201 ]
check "ds3 shared by both" [ "$(mapi "$ATOK" POST /api/v1/datastores \
    "{\"name\": \"ds3\", \"type\": \"shared\", \"path\": \"$MD/ds3\", \"hosts\": [\"node1\", \"node2\"]}" >/dev/null; mstatus)" = 201 ]
has_stats() {
    local i
    for i in $(seq 1 50); do
        [ "$(mapi "$ATOK" GET '/api/v1/hosts?state=connected' |
             jq '[.items[] | select(.stats.memory.total_bytes > 0)] | length')" = 2 ] && return 0
        sleep 0.1
    done
    return 1
}
check "both hosts have statistics" has_stats

# create NAME DATASTORE [EXTRA_JSON]: prints the final task state; the task
# object goes to $MD/task.json.
create() {
    local body tid
    body=$(vm_spec "$1" "$(jq -n --arg ds "$2" --argjson x "${3:-{\}}" \
        '{disks: [{datastore: $ds, size: 1048576, cache: "writeback"}]} + $x')")
    tid=$(mapi "$ATOK" POST /api/v1/vms "$body" | jq -r .task.id)
    task_wait "$tid" >/dev/null
    mapi "$ATOK" GET "/api/v1/tasks/$tid" >"$MD/task.json"
    jq -r .state "$MD/task.json"
}
host_of() { mapi "$ATOK" GET "/api/v1/vms/$1" | jq -r .host_name; }

# 1. Storage decides.
check "a VM on ds2 is created" [ "$(create a1 ds2)" = succeeded ]
check "on node2, the only host with ds2" [ "$(host_of a1)" = node2 ]
check "a VM on ds1 is created" [ "$(create a2 ds1)" = succeeded ]
check "on node1" [ "$(host_of a2)" = node1 ]
check "the agent of node2 has a1 and not a2" \
    [ "$(curl -s --unix-socket "$MD/agent2/agent.sock" http://agent/v1/vms | jq -r '[.vms[].name] | join(",")')" = a1 ]

# 2. Pinned host: still filtered.
check "a VM on ds1 pinned to node2: refused" [ "$(create a3 ds1 '{"host": "node2"}')" = failed ]
check "the reason names the datastore" \
    grep -q "node2: datastore .* not reachable" <(jq -r .error.message "$MD/task.json")
check "a VM on ds3 pinned to node2" [ "$(create a4 ds3 '{"host": "node2"}')" = succeeded ]
check "is on node2" [ "$(host_of a4)" = node2 ]

# 3. Commitments: 55 % of a host's memory each, no overcommit.
total=$(mapi "$ATOK" GET /api/v1/hosts/node1 | jq -r '.stats.memory.total_bytes')
big=$(( total / 1048576 * 55 / 100 ))
echo "# host memory $(( total / 1048576 )) MiB, VMs of $big MiB"
check "big1 fits" [ "$(create big1 ds3 "{\"memory\": $big}")" = succeeded ]
first=$(host_of big1)
check "big2 fits" [ "$(create big2 ds3 "{\"memory\": $big}")" = succeeded ]
second=$(host_of big2)
check "big2 went to the other host ($first, $second)" [ "$first" != "$second" ]
check "big3 fits nowhere" [ "$(create big3 ds3 "{\"memory\": $big}")" = failed ]
check "the refusal gives each host's reason" \
    [ "$(jq -r .error.message "$MD/task.json" | grep -oE 'node[12]: [0-9]+ MiB' | wc -l)" = 2 ]
check "and leaves no VM" [ "$(mapi "$ATOK" GET /api/v1/vms?name=big3 | jq -r .total)" = 0 ]
tid=$(mapi "$ATOK" DELETE /api/v1/vms/big2 | jq -r .task.id)
check "delete big2" [ "$(task_wait "$tid")" = succeeded ]

# 4. Least loaded: the host without big1's commitment.
check "cluster policy load-balancing" [ "$(mapi "$ATOK" PATCH /api/v1/clusters/c1 \
    '{"startup_policy": "load-balancing"}' >/dev/null; mstatus)" = 200 ]
for i in 1 2 3; do
    check "small$i is created" [ "$(create "small$i" ds3)" = succeeded ]
    check "on the host without big1" [ "$(host_of "small$i")" != "$first" ]
done

# 5. Maintenance: everything goes to the other host.
check "node2 in maintenance" [ "$(mapi "$ATOK" POST /api/v1/hosts/node2/maintenance >/dev/null; mstatus)" = 200 ]
check "m1 is created" [ "$(create m1 ds3)" = succeeded ]
check "on node1" [ "$(host_of m1)" = node1 ]
check "a VM on ds2 (node2 only): refused" [ "$(create m2 ds2)" = failed ]
check "the reason is node2's maintenance" grep -q "node2: maintenance" <(jq -r .error.message "$MD/task.json")
