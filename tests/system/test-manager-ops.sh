#!/usr/bin/env bash
# test-manager-ops.sh - VM operations through the manager and the CLI, each
# seen from inside the guest or on the host: hot-add of a vCPU and of memory,
# a disk made and attached live (and detached, its volume deleted), a NIC
# attached and detached, CD-ROM media, hibernate (save) and restore, reboot;
# a full clone of a stopped VM that boots from its own copy; VM -> template
# -> VM; placement refusing a host in maintenance; statistics and events.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mgr-lib.sh"

STRATA=$ST_BUILD/src/cli/strata
[ -x "$STRATA" ] || { echo "Bail out! $STRATA not built"; exit 1; }
mgr_init
export STRATA_URL="unix:$MSOCK" STRATA_TOKEN="$ATOK" STRATA_CONFIG="$MD/cli.conf"
s() { "$STRATA" "$@" >"$MD/out" 2>"$MD/err"; }
sj() { "$STRATA" --json "$@" 2>"$MD/err"; }
ajson() { curl -s --unix-socket "$MD/agent/agent.sock" "http://agent$1"; }
# seen VM TEXT [TIMEOUT]: the console shows TEXT after what was there before
# the last mark_console.
mark_console() { MARK=$(mapi "$ATOK" GET "/api/v1/vms/$1/console" | jq -r .next); }
seen() {
    local i
    for i in $(seq 1 $(( ${3:-40} * 5 ))); do
        "$STRATA" console "$1" --offset "$MARK" 2>/dev/null | grep -qF "$2" && return 0
        sleep 0.2
    done
    return 1
}

# A VM with room to grow: 1 of 2 vCPUs, 256 of 512 MiB, an empty CD drive.
: >"$MD/empty.iso"
dd if=/dev/zero of="$MD/images/tools.iso" bs=1k count=64 status=none
spec=$(vm_spec ops1 '{"vcpus": {"count": 1, "max": 2}, "memory": {"mib": 256, "max_mib": 512, "slots": 2},
                      "cdroms": [{"id": "cd0", "path": null}], "start": true}')
tid=$(mapi "$ATOK" POST /api/v1/vms "$spec" | jq -r .task.id)
check "create and start ops1" [ "$(task_wait "$tid")" = succeeded ]
check "ops1 boots" s console ops1 --until STRATA-GUEST-READY --timeout 120

# vCPU and memory.
mark_console ops1
check "setvcpus 2" s setvcpus ops1 2
check "the guest sees 2 CPUs" seen ops1 "STRATA-STAT cpus=2 "
check "the specification says 2" [ "$(sj dominfo ops1 | jq -r .definition.vcpus.count)" = 2 ]
check "setmem 384M" s setmem ops1 384M
check "the agent's definition has 384 MiB" \
    [ "$(ajson /v1/vms/ops1 | jq -r '.definition.memory.mib')" = 384 ]
check "the specification says 384" [ "$(sj dominfo ops1 | jq -r .definition.memory.mib)" = 384 ]
check "setvcpus beyond the maximum: refused" [ "$(s setvcpus ops1 3; echo $?)" -ne 0 ]

# A disk: a new 32 MiB volume attached live, seen by the guest, detached.
mark_console ops1
check "attach-disk (new volume)" s attach-disk ops1 --datastore ds1 --size 32M --id data1 \
    --cache writeback
check "the guest sees vdb" seen ops1 "STRATA-DISKS vda vdb"
check "the volume exists" [ -f "$MD/ds1/ops1-data1.qcow2" ]
check "the specification lists it" [ "$(sj dominfo ops1 | jq -r '[.definition.disks[].id] | join(",")')" = disk0,data1 ]
mark_console ops1
tid=$(mapi "$ATOK" DELETE '/api/v1/vms/ops1/disks/data1?delete_volume=true' | jq -r .task.id)
check "detach the disk, deleting its volume" [ "$(task_wait "$tid")" = succeeded ]
check "the guest no longer sees it" seen ops1 "STRATA-DISKS vda"
check "the volume is deleted" [ ! -e "$MD/ds1/ops1-data1.qcow2" ]
check "detach an unknown disk: not found (3)" [ "$(s detach-disk ops1 nope; echo $?)" = 3 ]
check "detach-disk through the CLI (volume kept)" s attach-disk ops1 --datastore ds1 --size 1M --id data2
check "detach-disk" s detach-disk ops1 data2
check "its volume is kept" [ -f "$MD/ds1/ops1-data2.qcow2" ]

# A NIC (no network: QEMU makes the tap), attached and detached live.
r=$(mapi "$ATOK" POST /api/v1/vms/ops1/nics '{"id": "nic9"}')
check "attach a NIC" [ "$(task_wait "$(echo "$r" | jq -r .task.id)")" = succeeded ]
mac=$(sj dominfo ops1 | jq -r '.definition.nics[0].mac')
check "it got a MAC address of ours" [ "${mac:0:9}" = 52:54:00: ]
tap=$(ajson /v1/vms/ops1 | jq -r '.definition.nics[0].tap')
check "its tap $tap is on the host" ip link show "$tap"
check "the same MAC for another VM: conflict" \
    [ "$(mapi "$ATOK" POST /api/v1/vms "$(vm_spec other "{\"nics\": [{\"mac\": \"$mac\"}]}")" >/dev/null; mstatus)" = 409 ]
check "detach-interface" s detach-interface ops1 nic9
check "the tap is gone" [ -z "$(ip -o link show "$tap" 2>/dev/null)" ]

# CD-ROM media.
check "change-media (insert)" s change-media ops1 cd0 "$MD/images/tools.iso"
check "the agent's drive has it" [ "$(ajson /v1/vms/ops1 | jq -r '.definition.cdroms[0].path')" = "$MD/images/tools.iso" ]
check "change-media --eject" s change-media ops1 cd0 --eject
check "the drive is empty" [ "$(ajson /v1/vms/ops1 | jq -r '.definition.cdroms[0].path')" = null ]

# Hibernate and restore; reboot.
check "save (hibernate)" s save ops1
check "state saved, no QEMU" [ "$(sj dominfo ops1 | jq -r .state)" = saved ]
mark_console ops1
check "restore" s restore ops1
check "state running" [ "$(sj dominfo ops1 | jq -r .state)" = running ]
check "the guest goes on where it was (no new boot)" \
    [ "$("$STRATA" console ops1 --offset "$MARK" | grep -c 'Linux version')" = 0 ]
mark_console ops1
check "reboot" s reboot ops1
check "the guest boots again" seen ops1 STRATA-GUEST-READY 90

# Statistics come with the heartbeats.
has_stats() {
    local i
    for i in $(seq 1 50); do
        [ "$(sj dominfo ops1 | jq -r '.stats.cpu_time_ns // 0')" -gt 0 ] && return 0
        sleep 0.2
    done
    return 1
}
check "the VM's statistics are recorded" has_stats
check "the host's statistics are recorded" [ "$(sj host-info node1 | jq -r '.stats.online_cpus // 0')" -gt 0 ]

# Full clone of a stopped VM: its own copy, boots.
check "shutdown" s shutdown ops1 --timeout 60
check "clone ops1 cl1 --start" s clone ops1 cl1 --start
check "the clone's disk is a standalone copy" \
    [ "$(qemu-img info -U -f qcow2 --output=json "$MD/ds1/cl1-disk0.qcow2" | jq -r '."backing-filename" // "none"')" = none ]
check "cl1 boots" s console cl1 --until STRATA-GUEST-READY --timeout 120
check "clone of a running VM: refused (4)" [ "$(s clone cl1 cl2; echo $?)" = 4 ]
check "destroy cl1" s destroy cl1
check "undefine cl1" s undefine cl1

# VM -> template -> VM.
check "template-create" s template-create ops1 --name t-ops
check "the template's volume is read-only" \
    [ "$(ajson /v1/datastores/ds1/volumes/ops1-disk0 | jq -r .readonly)" = true ]
check "template-to-vm" s template-to-vm t-ops --name ops1
check "ops1 is back, stopped, on node1" [ "$(sj dominfo ops1 | jq -r '.state + "@" + .host_name')" = stopped@node1 ]
check "its volume is writable again" \
    [ "$(ajson /v1/datastores/ds1/volumes/ops1-disk0 | jq -r .readonly)" = false ]
check "no template left" [ "$(sj template-list | jq -r '.items | length')" = 0 ]

# Placement: a host in maintenance takes no VM, and the error says why.
check "host-maintenance node1" s host-maintenance node1
out=$("$STRATA" create --name nope --memory 128M --disk datastore=ds1,size=1M 2>&1)
check "no host fits: the task fails naming node1's state" grep -q "node1: maintenance" <<<"$out"
check "and leaves nothing" [ "$(sj list --all | jq -r '[.items[].name] | join(",")')" = ops1 ]
check "host-maintenance node1 off" s host-maintenance node1 off
check "node1 connected again" host_state_is node1 connected

# Cancelling a creation while its eager-zeroed 4 GiB disk is being written:
# the agent's job is cancelled too, everything is undone.
spec=$(vm_spec big1 '{"disks": [{"datastore": "ds1", "size": 4294967296, "provisioning": "thick-eager", "cache": "writeback"}]}')
tid=$(mapi "$ATOK" POST /api/v1/vms "$spec" | jq -r .task.id)
zeroing() {
    local i
    for i in $(seq 1 100); do
        [ "$(mapi "$ATOK" GET "/api/v1/tasks/$tid" | jq -r '.steps[1].state')" = running ] &&
            [ -f "$MD/ds1/big1-disk0.qcow2" ] && return 0
        sleep 0.05
    done
    return 1
}
check "the 4 GiB disk is being zeroed" zeroing
t0=$(date +%s%N)
check "task-cancel" s task-cancel "$tid"
check "the task ends cancelled" [ "$(task_wait "$tid" 60)" = cancelled ]
t1=$(date +%s%N)
echo "# cancelled in $(( (t1 - t0) / 1000000 )) ms"
check "without waiting for the zeroing to finish (< 5 s)" [ $(( (t1 - t0) / 1000000 )) -lt 5000 ]
check "the VM is gone" [ "$(s dominfo big1; echo $?)" = 3 ]
check "its volume is gone" [ ! -e "$MD/ds1/big1-disk0.qcow2" ]
check "the agent's job was cancelled" \
    [ "$(ajson /v1/jobs | jq -r '[.jobs[] | select(.target == "ds1/big1-disk0") | .state] | join(",")')" = cancelled ]

# Events for what happened.
for t in vm.created vm.running vm.paused vm.saved vm.deleted template.created; do
    n=$(mapi "$ATOK" GET "/api/v1/events?type=$t" | jq -r .total)
    [ "$t" = vm.paused ] && continue
    check "events of type $t ($n)" [ "$n" -gt 0 ]
done
check "undefine ops1" s undefine ops1
check "vol-delete of the kept volume" s vol-delete ds1 ops1-data2
check "datastore empty" [ -z "$(ls "$MD/ds1" | grep -v '^\.')" ]
