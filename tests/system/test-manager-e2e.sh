#!/usr/bin/env bash
# test-manager-e2e.sh - end to end through the `strata` CLI, against a real
# manager and a real agent (joined with a one-time token, mutual TLS), with
# real guests under QEMU:
#   create a VM (a thin disk on a datastore), start it, see its console
#   marker; suspend (the guest's ticks stop) and resume (they go on);
#   snapshot create/list, shutdown, revert, delete; make it a template and
#   deploy three linked clones from it, booted at once; exit statuses for
#   not-found, conflicts and refused input; tear everything down and find
#   the datastore empty.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/mgr-lib.sh"

STRATA=$ST_BUILD/src/cli/strata
[ -x "$STRATA" ] || { echo "Bail out! $STRATA not built"; exit 1; }
mgr_init
export STRATA_URL="unix:$MSOCK" STRATA_TOKEN="$ATOK" STRATA_CONFIG="$MD/cli.conf"

# s ARGS...: the CLI; stdout to $MD/out, stderr to $MD/err; returns its status.
s() { "$STRATA" "$@" >"$MD/out" 2>"$MD/err"; }
sj() { "$STRATA" --json "$@" 2>"$MD/err"; }
vm_state() { sj dominfo "$1" | jq -r .state; }
ticks() { sj console "$1" | jq -r '.text' 2>/dev/null | grep -c STRATA-TICK; }
tick_count() { "$STRATA" console "$1" 2>/dev/null | grep -c STRATA-TICK; }

CMDLINE="console=ttyS0 quiet swiotlb=noforce strata.tick=1"

# 1. Create and start.
check "create a VM" s create --name vm1 --memory 256M --vcpus 1 \
    --disk datastore=ds1,size=64M,cache=writeback \
    --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$CMDLINE"
check "it is stopped on node1" [ "$(sj dominfo vm1 | jq -r '.state + "@" + .host_name')" = stopped@node1 ]
check "start it" s start vm1
check "its console shows the guest's ready marker" \
    s console vm1 --until STRATA-GUEST-READY --timeout 120
check "list shows it running" grep -q "vm1.*running" < <("$STRATA" list 2>&1)

# 2. Suspend and resume: the guest's once-a-second ticks stop, then go on.
s console vm1 --until STRATA-TICK --timeout 30
check "suspend" s suspend vm1
check "state paused" [ "$(vm_state vm1)" = paused ]
a=$(tick_count vm1); sleep 3; b=$(tick_count vm1)
check "no tick while paused ($a -> $b)" [ "$a" = "$b" ]
check "resume" s resume vm1
check "state running" [ "$(vm_state vm1)" = running ]
more_ticks() {
    local i
    for i in $(seq 1 50); do [ "$(tick_count vm1)" -gt "$b" ] && return 0; sleep 0.2; done
    return 1
}
check "ticks go on after resume" more_ticks

# 3. Snapshots.
check "snapshot-create-as (live)" s snapshot-create-as vm1 s1 --description "before"
check "snapshot-list shows it" grep -q s1 < <("$STRATA" snapshot-list vm1 2>&1)
check "shutdown" s shutdown vm1 --timeout 60
check "state stopped" [ "$(vm_state vm1)" = stopped ]
check "snapshot-revert" s snapshot-revert vm1 s1
check "the reverted snapshot is current" [ "$(sj snapshot-list vm1 | jq -r .current)" = s1 ]
check "a second snapshot with the same name: conflict (4)" \
    [ "$(s snapshot-create-as vm1 s1; echo $?)" = 4 ]
check "snapshot-delete" s snapshot-delete vm1 s1
check "snapshot-list is empty" [ "$(sj snapshot-list vm1 | jq -r '.items | length')" = 0 ]

# 4. Template and three linked clones, booted at once.
check "template-create" s template-create vm1 --name tpl1
check "the VM became the template" [ "$(sj template-list | jq -r '[.items[].name] | join(",")')" = tpl1 ]
check "the VM is gone" [ "$(s dominfo vm1; echo $?)" = 3 ]
for i in 1 2 3; do
    check "deploy lc$i --linked" s deploy tpl1 "lc$i" --linked --start
done
for i in 1 2 3; do
    check "lc$i boots" s console "lc$i" --until STRATA-GUEST-READY --timeout 180
done
n=$(sj list | jq -r '[.items[] | select(.state == "running" and (.name | startswith("lc")))] | length')
check "three clones running" [ "$n" = 3 ]
tid=$(sj template-info tpl1 | jq -r .id)
n=$(sj list --all | jq -r --arg t "$tid" '[.items[] | select(.template_id == $t)] | length')
check "the clones name their template" [ "$n" = 3 ]
vols=$(sj vol-list ds1 | jq -r '[.items[] | select(.base == "vm1-disk0")] | length')
check "their disks are overlays on the template's volume" [ "$vols" = 3 ]

# 5. Exit statuses.
check "dominfo of an unknown VM: not found (3)" [ "$(s dominfo nosuchvm; echo $?)" = 3 ]
check "deploy a taken name: conflict (4)" [ "$(s deploy tpl1 lc1 --linked; echo $?)" = 4 ]
check "template-delete with clones: conflict (4)" [ "$(s template-delete tpl1; echo $?)" = 4 ]
check "undefine a running VM: conflict (4)" [ "$(s undefine lc1; echo $?)" = 4 ]
check "create with 0 memory: refused (2)" [ "$(s create --name bad1 --memory 0 --disk datastore=ds1,size=1M; echo $?)" = 2 ]
check "create on an unknown datastore: refused" \
    [ "$(s create --name bad2 --memory 128M --disk datastore=nods,size=1M; echo $?)" -ne 0 ]
check "nothing recorded by the refused calls" [ "$(sj list --all | jq -r '[.items[] | select(.name | startswith("bad"))] | length')" = 0 ]

# 6. Tear down: the datastore ends empty.
for i in 1 2 3; do
    check "destroy lc$i" s destroy "lc$i"
    check "undefine lc$i" s undefine "lc$i"
done
check "template-delete" s template-delete tpl1
check "no VM left" [ "$(sj list --all | jq -r '.items | length')" = 0 ]
check "no volume left" [ "$(sj vol-list ds1 | jq -r '.items | length')" = 0 ]
check "no image file left" [ -z "$(ls "$MD/ds1" | grep -v '^\.')" ]
