#!/usr/bin/env bash
# Snapshot chains on a real guest: the guest writes known data, snapshots S1
# (consistent) and S2 are taken live, more data is written; after a power-off
# the VM is reverted to S1 and reads exactly S1's data; S1 and S2 are deleted
# (S1 by a live merge) and the latest data reads back; qemu-img check is
# clean throughout.  A snapshot with memory is reverted and the guest resumes
# without rebooting.  Independent disks are left out of snapshots; an
# independent-nonpersistent disk loses its writes at power-off.  A merge
# interrupted by an agent crash is resumed at the next start.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/storage-lib.sh"
st_init

vm=snap1
DS=$ST_DIR/ds1
mkdir -p "$DS"
check "register datastore ds1" ds_add ds1 "$DS"
check "thin qcow2 volume v0" vol_add ds1 v0 "{\"capacity\": $((64 * MIB))}"
check "independent-persistent volume ind" vol_add ds1 ind \
    "{\"capacity\": $((16 * MIB)), \"mode\": \"independent-persistent\"}"
check "independent-nonpersistent volume np" vol_add ds1 np \
    "{\"capacity\": $((16 * MIB)), \"mode\": \"independent-nonpersistent\", \"format\": \"raw\"}"
disks=$(jq -n --arg d "$DS" '{disks: [
    {id: "d0", path: ($d + "/v0.qcow2"), format: "qcow2", cache: "writeback"},
    {id: "d1", path: ($d + "/ind.qcow2"), format: "qcow2", cache: "writeback"},
    {id: "d2", path: ($d + "/np.raw"), format: "raw", cache: "writeback"}]}')
check "define VM with three disks" api_ok POST /v1/vms "$(guest_def $vm "$disks")"
check "start" api_ok POST /v1/vms/$vm/start
check "guest sees vda vdb vdc" wait_marker $vm 'STRATA-DISKS vda vdb vdc' 60
check "guest agent answers" wait_qga $vm 60
check "nonpersistent disk runs on a throw-away overlay" \
    [ "$(api GET /v1/vms/$vm | jq -r '.definition.disks[2].path')" = "$DS/np.nonpersistent.qcow2" ]

check "write A at 0" gio $vm write /dev/vda 0 $MIB 1
check "write to the nonpersistent disk" gio $vm write /dev/vdc 0 $MIB 21
check "write to the independent disk" gio $vm write /dev/vdb 0 $MIB 31
s1=$(api POST /v1/vms/$vm/snapshots '{"name": "S1", "kind": "consistent", "description": "after A"}')
check "live consistent snapshot S1" [ "$(last_status)" = 201 ]
check "S1 covers only the dependent disk" [ "$(echo "$s1" | jq -c '[.disks[].id]')" = '["d0"]' ]
note "S1 switch (guest I/O pause): $(echo "$s1" | jq .switch_ms) ms"
check "write B at 1M" gio $vm write /dev/vda $MIB $MIB 2
check "live snapshot S2" api_ok POST /v1/vms/$vm/snapshots '{"name": "S2"}'
check "write C at 2M" gio $vm write /dev/vda $((2 * MIB)) $MIB 3
check "definition names the new active layer" \
    [ "$(api GET /v1/vms/$vm | jq -r '.definition.disks[0].path')" != "$DS/v0.qcow2" ]
check "chain has three layers" [ "$(api GET /v1/vms/$vm/storage | jq '.disks[0].chain | length')" = 3 ]
check "every layer checks clean (live)" chain_clean $vm d0
api POST /v1/vms/$vm/snapshots '{"name": "S1"}' >/dev/null
check "a duplicate snapshot name is a conflict" [ "$(last_status)" = 409 ]
api POST /v1/vms/$vm/snapshots '{"name": "../x"}' >/dev/null
check "a bad snapshot name is refused" [ "$(last_status)" = 400 ]
list=$(api GET /v1/vms/$vm/snapshots)
check "list: S1 -> S2, current S2" [ "$(echo "$list" | jq -c '[.current, .tree[0].name, .tree[0].children[0].name]')" = '["S2","S1","S2"]' ]
check "list shows time, kind and size" [ "$(echo "$list" | jq '[.snapshots[] | select(.created_ms > 0 and .kind != null and .size > 0)] | length')" = 2 ]
api POST /v1/vms/$vm/snapshots/S1/revert >/dev/null
check "revert while running is refused" [ "$(last_status)" = 409 ]

check "shutdown" api_ok POST /v1/vms/$vm/shutdown '{"timeout_s": 30}'
check "nonpersistent overlay dropped at power-off" [ ! -e "$DS/np.nonpersistent.qcow2" ]
check "definition points back at the nonpersistent volume" \
    [ "$(api GET /v1/vms/$vm | jq -r '.definition.disks[2].path')" = "$DS/np.raw" ]
check "layers check clean (stopped)" chain_clean $vm d0
check "revert to S1 and start" api_ok POST /v1/vms/$vm/snapshots/S1/revert '{"start": true}'
check "guest agent answers after the revert" wait_qga $vm 60
check "reads A at 0 (S1's data)" region_is $vm /dev/vda 0 $MIB 1
check "reads zeros at 1M (B came after S1)" region_is $vm /dev/vda $MIB $MIB 0
check "reads zeros at 2M (C came after S1)" region_is $vm /dev/vda $((2 * MIB)) $MIB 0
check "nonpersistent disk lost its writes" region_is $vm /dev/vdc 0 $MIB 0
check "independent disk kept its writes" region_is $vm /dev/vdb 0 $MIB 31
check "write D at 3M" gio $vm write /dev/vda $((3 * MIB)) $MIB 4
check "current is S1" [ "$(api GET /v1/vms/$vm/snapshots | jq -r .current)" = S1 ]

job=$(api DELETE /v1/vms/$vm/snapshots/S2)
check "delete S2 starts a job" [ "$(last_status)" = 202 ]
check "S2 deleted" job_ok "$(wait_job "$(echo "$job" | jq -r .id)" 60)"
job=$(api DELETE /v1/vms/$vm/snapshots/S1)
check "delete S1 (live merge) starts a job" [ "$(last_status)" = 202 ]
check "S1 merged" job_ok "$(wait_job "$(echo "$job" | jq -r .id)" 60)"
check "no snapshots left" [ "$(api GET /v1/vms/$vm/snapshots | jq '.snapshots | length')" = 0 ]
check "chain is one layer" [ "$(api GET /v1/vms/$vm/storage | jq '.disks[0].chain | length')" = 1 ]
check "A still reads back" region_is $vm /dev/vda 0 $MIB 1
check "D still reads back" region_is $vm /dev/vda $((3 * MIB)) $MIB 4
check "merged layer checks clean" chain_clean $vm d0
check "volume v0 has one file left" [ "$(api GET /v1/datastores/ds1/volumes/v0 | jq .files)" = 1 ]

# With memory: the guest resumes where it was, without booting.
boots=$(readies $vm)
m1=$(api POST /v1/vms/$vm/snapshots '{"name": "M1", "kind": "memory"}')
check "snapshot with memory" [ "$(echo "$m1" | jq -r .kind)" = memory ]
check "write E at 0 after M1" gio $vm write /dev/vda 0 $MIB 5
check "force off" api_ok POST /v1/vms/$vm/destroy
check "revert to M1 (resumes from memory)" api_ok POST /v1/vms/$vm/snapshots/M1/revert
check "running again" [ "$(vm_state $vm)" = running ]
check "guest agent answers" wait_qga $vm 30
check "A is back at 0" region_is $vm /dev/vda 0 $MIB 1
check "the guest did not boot again" [ "$(readies $vm)" = "$boots" ]
job=$(api DELETE /v1/vms/$vm/snapshots/M1)
check "M1 deleted" job_ok "$(wait_job "$(echo "$job" | jq -r .id)" 60)"

# A merge interrupted by an agent crash is resumed at the next start.
check "shutdown" api_ok POST /v1/vms/$vm/shutdown '{"timeout_s": 30}'
check "offline snapshot S3" api_ok POST /v1/vms/$vm/snapshots '{"name": "S3"}'
id=$(api GET /v1/vms/$vm/snapshots | jq -r '.snapshots[0].id')
st_stop_agent KILL
rec=$ST_DIR/state/vms/$vm/snapshots.json
jq --arg id "$id" '.pending = {op: "delete", id: $id} | .snapshots[0].state = "merging"' "$rec" >"$rec.new" &&
    mv "$rec.new" "$rec"
st_start_agent
ev=""
for i in $(seq 1 50); do
    ev=$(api GET '/v1/events?since=0' | jq -c '[.events[] | select(.type == "snapshot-deleted" and .data.resumed)] | length')
    [ "$ev" = 1 ] && break
    sleep 0.2
done
check "interrupted merge resumed after restart" [ "$ev" = 1 ]
check "no snapshot left after the resumed merge" [ "$(api GET /v1/vms/$vm/snapshots | jq '.snapshots | length')" = 0 ]
check "chain checks clean" chain_clean $vm d0
check "start again" api_ok POST /v1/vms/$vm/start
check "guest agent answers" wait_qga $vm 60
check "D reads back after everything" region_is $vm /dev/vda $((3 * MIB)) $MIB 4
check "destroy" api_ok POST /v1/vms/$vm/destroy
