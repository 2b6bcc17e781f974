#!/usr/bin/env bash
# A datastore that fills up: on a small loop-mounted ext4 datastore a thin
# disk outgrows the free space while the guest writes; the guest pauses
# (werror=enospc) instead of seeing an I/O error, the agent raises a
# "storage-full" event naming the datastore, and once space is freed a
# resume lets the guest's write finish; the data reads back and the image
# checks clean.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/storage-lib.sh"

LOOP=
MNT=
enospc_cleanup() {
    local rc=$?
    st_stop_agent KILL
    local pid
    for pid in $(st_qemu_pids); do
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$ST_DIR/"; then
            kill -KILL "$pid" 2>/dev/null
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        fi
    done
    [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
    [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
    (exit $rc)
    st_cleanup
}
st_init
trap enospc_cleanup EXIT

vm=full1
MNT=$ST_DIR/small
mkdir -p "$MNT"
truncate -s 40M "$ST_DIR/small.img"
mkfs.ext4 -q -m 0 "$ST_DIR/small.img"
LOOP=$(losetup --find --show "$ST_DIR/small.img") || { echo "Bail out! no loop device"; exit 1; }
mount "$LOOP" "$MNT" || { echo "Bail out! cannot mount $LOOP"; MNT=; exit 1; }
check "small datastore on a loop-mounted ext4" ds_add small "$MNT" '{"overcommit_ratio": 10}'
check "thin volume larger than the datastore" vol_add small v0 "{\"capacity\": $((128 * MIB))}"
disks=$(jq -n --arg d "$MNT" '{disks: [{id: "d0", path: ($d + "/v0.qcow2"), format: "qcow2", cache: "none"}]}')
check "define" api_ok POST /v1/vms "$(guest_def $vm "$disks")"
check "start" api_ok POST /v1/vms/$vm/start
check "guest agent answers" wait_qga $vm 60
check "stage a 4 MiB pattern in guest RAM" gio $vm stage /tmp/p $((4 * MIB)) 9

# Leave about 1.5 MiB free: a 4 MiB write cannot fit.
avail=$(df --output=avail -B1 "$MNT" | tail -1)
fallocate -l $((avail - 3 * MIB / 2)) "$MNT/ballast"
note "free before the write: $(df --output=avail -B1 "$MNT" | tail -1) bytes"
since=$(api GET '/v1/events?since=0' | jq .next)
pid=$(gio $vm start-copy /tmp/p /dev/vda 0 $((4 * MIB)))
check "guest write started (pid $pid)" [ -n "$pid" ]
check "guest pauses when the datastore is full" wait_state $vm paused 60
ev=""
for i in $(seq 1 50); do
    ev=$(api GET "/v1/events?since=$since" | jq -c '[.events[] | select(.type == "storage-full" and .vm == "'$vm'")][0] // empty')
    [ -n "$ev" ] && break
    sleep 0.2
done
check "storage-full event raised" [ -n "$ev" ]
check "event names the datastore" [ "$(echo "$ev" | jq -r .data.datastore)" = small ]
check "event names the disk" [ "$(echo "$ev" | jq -r .data.disk)" = d0 ]
note "event: $(echo "$ev" | jq -r .data.message)"
qev=$(api GET "/v1/events?since=$since" | jq '[.events[] | select(.type == "qemu-event" and .data.event == "BLOCK_IO_ERROR" and .data.data.nospace)] | length')
check "QEMU reported BLOCK_IO_ERROR with nospace" [ "$qev" -ge 1 ]
sleep 1
check "still paused, not crashed" [ "$(vm_state $vm)" = paused ]

rm -f "$MNT/ballast"
check "resume after freeing space" api_ok POST /v1/vms/$vm/resume
check "running again" [ "$(vm_state $vm)" = running ]
check "the guest's write completes without error" gio $vm wait "$pid" 60
check "data reads back intact" region_is $vm /dev/vda 0 $((4 * MIB)) 9
check "shutdown" api_ok POST /v1/vms/$vm/shutdown '{"timeout_s": 30}'
check "image checks clean" img_check "$MNT/v0.qcow2" qcow2
check "start again" api_ok POST /v1/vms/$vm/start
check "guest agent answers" wait_qga $vm 60
check "data still intact after a cold start" region_is $vm /dev/vda 0 $((4 * MIB)) 9
check "destroy" api_ok POST /v1/vms/$vm/destroy
