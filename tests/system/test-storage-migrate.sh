#!/usr/bin/env bash
# Storage migration.  Live: while the guest keeps writing, its disk is
# mirrored to another datastore (a shared one) and QEMU switches to the copy;
# the data written before and during the mirror reads back from the new
# datastore, also after a cold restart; the source is released and the
# volume record moves.  A cancelled live migration leaves the VM on its
# source.  Cold: a stopped VM's disk is copied back with progress.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/storage-lib.sh"
st_init

vm=mig1
mkdir -p "$ST_DIR/ds1" "$ST_DIR/ds2"
check "local datastore ds1" ds_add ds1 "$ST_DIR/ds1"
check "shared datastore ds2" ds_add ds2 "$ST_DIR/ds2" '{"type": "shared", "heartbeat_interval_s": 1}'
check "volume v0 (thin qcow2, 48 MiB)" vol_add ds1 v0 "{\"capacity\": $((48 * MIB))}"
disks=$(jq -n --arg d "$ST_DIR/ds1" '{disks: [{id: "d0", path: ($d + "/v0.qcow2"), format: "qcow2", cache: "none"}]}')
check "define" api_ok POST /v1/vms "$(guest_def $vm "$disks")"
check "start" api_ok POST /v1/vms/$vm/start
check "guest agent answers" wait_qga $vm 60
check "stage a 4 MiB pattern in guest RAM" gio $vm stage /tmp/p $((4 * MIB)) 7
for off in 0 4 8 12 16 20; do
    check "write the pattern at ${off}M before the move" gio $vm copy /tmp/p /dev/vda $((off * MIB)) $((4 * MIB))
done

# Heartbeat on the shared datastore, a fsync'd record per host.
sleep 1.5
hb=$(api GET /v1/datastores/ds2/heartbeats)
check "shared datastore has this host's heartbeat" [ "$(echo "$hb" | jq '.heartbeats | length')" = 1 ]
check "heartbeat is fresh" [ "$(echo "$hb" | jq '.heartbeats[0].age_ms < 3000')" = true ]

# Live, slowed down (3 MiB/s: ~16 s) so the guest writes while it runs.
job=$(api POST /v1/vms/$vm/disks/d0/migrate '{"datastore": "ds2", "speed": 3145728}')
check "live migration starts a job" [ "$(last_status)" = 202 ]
id=$(echo "$job" | jq -r .id)
during=0
for off in 32 36 40; do
    check "guest writes at ${off}M during the mirror" gio $vm copy /tmp/p /dev/vda $((off * MIB)) $((4 * MIB))
    [ "$(api GET /v1/jobs/$id | jq -r .state)" = running ] && during=$((during + 1))
done
check "those writes landed while the mirror ran ($during of 3)" [ "$during" -ge 2 ]
prog=$(api GET /v1/jobs/$id | jq .progress)
check "progress reported ($prog%)" [ "$prog" -ge 0 ]
res=$(wait_job "$id" 120)
check "live migration succeeded" job_ok "$res"
note "live move: $(echo "$res" | jq .result.elapsed_ms) ms at 3 MiB/s"
check "definition names the new datastore" [ "$(api GET /v1/vms/$vm | jq -r '.definition.disks[0].path')" = "$ST_DIR/ds2/v0.qcow2" ]
check "VM kept running" [ "$(vm_state $vm)" = running ]
check "source released" [ -z "$(ls "$ST_DIR/ds1" | grep '^v0\.')" ]
check "volume record moved to ds2" api_ok GET /v1/datastores/ds2/volumes/v0
api GET /v1/datastores/ds1/volumes/v0 >/dev/null
check "no record left in ds1" [ "$(last_status)" = 404 ]
for off in 0 4 8 12 16 20 32 36 40; do
    check "data at ${off}M intact after the switch" region_is $vm /dev/vda $((off * MIB)) $((4 * MIB)) 7
done
qpid=$(jq -r .pid "$ST_DIR/state/vms/$vm/runtime.json")
check "QEMU no longer holds the source open" sh -c "! ls -l /proc/$qpid/fd | grep -q '$ST_DIR/ds1/'"

# Cancel: the VM stays on its source.
job=$(api POST /v1/vms/$vm/disks/d0/migrate '{"datastore": "ds1", "speed": 262144}')
id=$(echo "$job" | jq -r .id)
sleep 1
check "cancel the second move" api_ok DELETE /v1/jobs/$id
res=$(wait_job "$id" 60)
check "job ended cancelled" [ "$(echo "$res" | jq -r .state)" = cancelled ]
check "still on ds2" [ "$(api GET /v1/vms/$vm | jq -r '.definition.disks[0].path')" = "$ST_DIR/ds2/v0.qcow2" ]
check "no target left in ds1" [ -z "$(ls "$ST_DIR/ds1" | grep '^v0\.')" ]
check "data intact after the cancel" region_is $vm /dev/vda $((36 * MIB)) $((4 * MIB)) 7

# Cold restart reads the new datastore; then a cold move back.
check "shutdown" api_ok POST /v1/vms/$vm/shutdown '{"timeout_s": 30}'
check "image in ds2 checks clean" img_check "$ST_DIR/ds2/v0.qcow2" qcow2
job=$(api POST /v1/vms/$vm/disks/d0/migrate '{"datastore": "ds1", "format": "raw"}')
check "cold migration starts a job" [ "$(last_status)" = 202 ]
res=$(wait_job "$(echo "$job" | jq -r .id)" 120)
check "cold migration succeeded" job_ok "$res"
check "cold result says not live" [ "$(echo "$res" | jq .result.live)" = false ]
check "definition names ds1 (raw)" [ "$(api GET /v1/vms/$vm | jq -r '.definition.disks[0].path + " " + .definition.disks[0].format')" = "$ST_DIR/ds1/v0.raw raw" ]
check "ds2 released" [ -z "$(ls "$ST_DIR/ds2" | grep '^v0\.')" ]
check "start on ds1" api_ok POST /v1/vms/$vm/start
check "guest agent answers" wait_qga $vm 60
for off in 0 20 40; do
    check "data at ${off}M intact after the cold move" region_is $vm /dev/vda $((off * MIB)) $((4 * MIB)) 7
done
check "destroy" api_ok POST /v1/vms/$vm/destroy

# A volume no VM uses moves cold between datastores; an attached one does not.
check "unattached volume loose" vol_add ds1 loose "{\"capacity\": $((16 * MIB)), \"provisioning\": \"thick-lazy\"}"
qemu-io -f qcow2 -c "write -P 0x33 0 2M" "$ST_DIR/ds1/loose.qcow2" >/dev/null
job=$(api POST /v1/datastores/ds1/volumes/loose/migrate '{"datastore": "ds2"}')
check "volume move starts a job" [ "$(last_status)" = 202 ]
check "volume moved" job_ok "$(wait_job "$(echo "$job" | jq -r .id)" 60)"
check "record in ds2, thick kept" [ "$(api GET /v1/datastores/ds2/volumes/loose | jq -r '.provisioning + " " + (.allocated >= 16777216 | tostring)')" = "thick-lazy true" ]
check "source gone" [ ! -e "$ST_DIR/ds1/loose.qcow2" ]
check "data moved" sh -c "qemu-io -r -f qcow2 -c 'read -P 0x33 0 2M' '$ST_DIR/ds2/loose.qcow2' | grep -q 'read 2097152'"
api POST /v1/datastores/ds1/volumes/v0/migrate '{"datastore": "ds2"}' >/dev/null
check "an attached volume is moved through its VM, not directly" [ "$(last_status)" = 409 ]
