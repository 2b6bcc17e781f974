#!/usr/bin/env bash
# test-manager-resources.sh - the manager's storage inventory driving a real
# agent joined over mutual TLS (mgr-lib.sh): datastores registered on the
# agent through the manager (refused input and an agent's refusal record
# nothing), usage reported back by the heartbeat, volumes as tasks (create,
# full copy with progress, wipe, resize, secure delete), a datastore in use
# refused deletion, desired/applied generations converging and an agent
# that lost its datastore record getting it back when it reconnects, the
# networks list, and a deleted host's certificate in the CRL.  NAT networks
# and DVSs are pushed the same way; their pushes are tested against a fake
# agent in tests/unit/manager/test_resources.c (a real NAT network needs the
# network test bed).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mgr-lib.sh"
MIB=1048576
mgr_init
ok "manager and agent up, datastore ds1 registered through the manager"

# aapi METHOD PATH [BODY]: the agent's own API on its unix socket.
aapi() {
    local args=(-s --unix-socket "$MD/agent/agent.sock" -X "$1")
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    curl "${args[@]}" "http://agent$2"
}
# qio ARGS...: qemu-io, quietly.
qio() { qemu-io "$@" >/dev/null; }
# submit METHOD PATH [BODY]: a 202 task's id.
submit() { mapi "$ATOK" "$@" | jq -r .task.id; }

ds=$(mapi "$ATOK" GET /api/v1/datastores/ds1)
check "datastore ds1 is local on node1 at its path" [ "$(echo "$ds" | jq -r '"\(.kind) \(.hosts[0].host_name) \(.path)"')" = "local node1 $MD/ds1" ]
check "the agent has ds1" [ "$(aapi GET /v1/datastores/ds1 | jq -r .path)" = "$MD/ds1" ]
check "capacity recorded from the agent" [ "$(echo "$ds" | jq .capacity_bytes)" -gt 0 ]

# Refused: nothing recorded.
mkdir -p "$MD/ds2"
body=$(mapi "$ATOK" POST /api/v1/datastores "{\"name\": \"bad\", \"path\": \"$MD/missing\", \"hosts\": [\"node1\"]}")
check "a directory the host lacks is refused by the agent (4xx)" [ "$(mstatus)" = 400 ]
body=$(mapi "$ATOK" POST /api/v1/datastores "{\"name\": \"bad\", \"path\": \"$MD/ds2\", \"hosts\": [\"nodeX\"]}")
check "an unknown host: 404 naming hosts[0]" [ "$(mstatus)/$(echo "$body" | jq -r .error.field)" = "404/hosts[0]" ]
body=$(mapi "$ATOK" POST /api/v1/datastores "{\"name\": \"bad\", \"path\": \"$MD/ds1/inner\", \"hosts\": [\"node1\"]}")
check "a path inside another datastore: 409 from the agent" [ "$(mstatus)" = 409 ]
check "nothing recorded by the refusals" [ "$(mapi "$ATOK" GET /api/v1/datastores | jq .total)" = 1 ]

# A second datastore, shared.
mapi "$ATOK" POST /api/v1/datastores "{\"name\": \"ds2\", \"type\": \"shared\", \"path\": \"$MD/ds2\", \"hosts\": [\"node1\"]}" >/dev/null
check "shared datastore ds2 (201)" [ "$(mstatus)" = 201 ]

# Volumes as tasks.
t=$(submit POST /api/v1/datastores/ds1/volumes "{\"name\": \"v1\", \"capacity\": $((64 * MIB))}")
check "volume create is a task that succeeds" [ "$(task_wait "$t")" = succeeded ]
qemu-io -f qcow2 -c "write -P 0x42 0 1M" "$MD/ds1/v1.qcow2" >/dev/null
body=$(mapi "$ATOK" POST /api/v1/datastores/ds1/volumes "{\"name\": \"v1\", \"capacity\": $((64 * MIB))}")
check "a taken volume name: 409 at once" [ "$(mstatus)/$(echo "$body" | jq -r .error.field)" = 409/name ]
body=$(mapi "$ATOK" POST /api/v1/datastores/ds1/volumes '{"name": "c1", "source": "nope"}')
check "an unknown source: 404 at once" [ "$(mstatus)/$(echo "$body" | jq -r .error.field)" = 404/source ]
t=$(submit POST /api/v1/datastores/ds2/volumes '{"name": "c1", "source": "v1", "source_datastore": "ds1", "format": "raw"}')
check "full copy to another datastore succeeds" [ "$(task_wait "$t")" = succeeded ]
task=$(mapi "$ATOK" GET "/api/v1/tasks/$t")
check "the copy task ends at 100%" [ "$(echo "$task" | jq .progress)" = 100 ]
check "the copy task's result is the new volume" [ "$(echo "$task" | jq -r .result.volume.format)" = raw ]
check "the copy holds the data" qio -f raw -r -c "read -P 0x42 0 1M" "$MD/ds2/c1.raw"
t=$(submit POST /api/v1/datastores/ds2/volumes/c1/wipe)
check "wipe task succeeds" [ "$(task_wait "$t")" = succeeded ]
check "the wiped volume holds no data" [ "$(tr -d '\0' <"$MD/ds2/c1.raw" | wc -c)" = 0 ]
t=$(submit POST /api/v1/datastores/ds1/volumes/v1/resize "{\"capacity\": $((128 * MIB))}")
check "resize task succeeds" [ "$(task_wait "$t")" = succeeded ]
check "the volume grew" [ "$(aapi GET /v1/datastores/ds1/volumes/v1 | jq .capacity)" = $((128 * MIB)) ]
vols=$(mapi "$ATOK" GET /api/v1/datastores/ds1/volumes)
check "volumes listed through the manager" [ "$(echo "$vols" | jq -r '.items[0].name')" = v1 ]
mapi "$ATOK" DELETE /api/v1/datastores/ds1 >/dev/null
check "a datastore with volumes is not deleted (409)" [ "$(mstatus)" = 409 ]
check "... and stays on the agent" [ "$(aapi GET /v1/datastores/ds1 | jq -r .name)" = ds1 ]
t=$(submit DELETE "/api/v1/datastores/ds2/volumes/c1?secure=true")
check "secure delete task succeeds" [ "$(task_wait "$t")" = succeeded ]
check "the file is gone" [ ! -e "$MD/ds2/c1.raw" ]
check "the task's result carries the wipe" [ "$(mapi "$ATOK" GET "/api/v1/tasks/$t" | jq .result.job.wiped_bytes)" -ge 0 ]

# Generations: the host converges; an agent that lost a datastore gets it back.
conv() {
    local i h
    for i in $(seq 1 100); do
        h=$(mapi "$ATOK" GET /api/v1/hosts/node1)
        [ "$(echo "$h" | jq '.applied_generation == .desired_generation and .desired_generation > 0')" = true ] && return 0
        sleep 0.1
    done
    echo "# $(echo "$h" | jq -c '{desired_generation, applied_generation}')"
    return 1
}
check "applied generation reaches the desired one" conv
check "the agent reports it" [ "$(aapi GET /v1/host/stats | jq .applied_generation)" = "$(mapi "$ATOK" GET /api/v1/hosts/node1 | jq .desired_generation)" ]
check "host stats recorded from the heartbeat" [ "$(mapi "$ATOK" GET /api/v1/hosts/node1 | jq '.stats | has("vms_running")')" = true ]
kill -TERM "$MAGENT_PID"; wait "$MAGENT_PID" 2>/dev/null; MAGENT_PID=
check "agent stopped: host disconnected" host_state_is node1 disconnected
rm -f "$MD/agent/state/storage/datastores/ds2.json" "$MD/agent/state/generation"
mgr_start_agent
check "agent back: connected" host_state_is node1 connected
back() {
    local i
    for i in $(seq 1 50); do
        [ "$(aapi GET /v1/datastores/ds2 | jq -r .name)" = ds2 ] && return 0
        sleep 0.1
    done
    return 1
}
check "the manager pushed ds2 again" back
check "and converged again" conv

n=$(mapi "$ATOK" GET /api/v1/networks | jq .total)
check "the networks list answers (no networks yet)" [ "$n" = 0 ]

# Datastore delete, then host delete and the CRL.
mapi "$ATOK" DELETE /api/v1/datastores/ds2 >/dev/null
check "empty datastore ds2 deleted (204)" [ "$(mstatus)" = 204 ]
check "... from the agent too" [ "$(aapi GET /v1/datastores/ds2 | jq -r .error.code)" = not-found ]
serial=$(openssl x509 -noout -serial -in "$MD/agent/pki/agent.pem" | cut -d= -f2 | tr 'A-F' 'a-f')
mapi "$ATOK" DELETE /api/v1/hosts/node1 >/dev/null
check "host deleted (204; its datastore links go with it)" [ "$(mstatus)" = 204 ]
crl=$(mapi "$ATOK" GET /api/v1/ca/crl)
check "CRL served as PEM" grep -q "BEGIN X509 CRL" <<<"$crl"
# crl_lists SERIAL: the CRL names the serial (hex, any case, leading zeros aside).
crl_lists() {
    local want s
    want=$(echo "$1" | tr 'A-F' 'a-f' | sed 's/^0*//')
    for s in $(openssl crl -noout -text <<<"$crl" | awk '/Serial Number:/ {print $3}'); do
        [ "$(echo "$s" | tr 'A-F' 'a-f' | tr -d : | sed 's/^0*//')" = "$want" ] && return 0
    done
    echo "# CRL: $(openssl crl -noout -text <<<"$crl" | grep -i serial | tr '\n' ' ') want $want"
    return 1
}
check "the deleted host's certificate is revoked in the CRL" crl_lists "$serial"
