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

# 0. Refused input: 4xx with the one error body naming the field; nothing
# recorded, nothing on the agent, no volume.
bad_create() {    # bad_create WANT_STATUS WANT_FIELD BODY
    local body
    body=$(mapi "$ATOK" POST /api/v1/vms "$3")
    [ "$(mstatus)" = "$1" ] || { echo "# status $(mstatus): $body"; return 1; }
    [ -n "$(echo "$body" | jq -r '.error.message // empty')" ] || { echo "# no error body: $body"; return 1; }
    [ -z "$2" ] || [ "$(echo "$body" | jq -r .error.field)" = "$2" ] || { echo "# field: $body"; return 1; }
}
good=$(vm_spec okname)
check "malformed JSON: 400" bad_create 400 "" '{"name": "x", '
check "not an object: 400" bad_create 400 "" '[1, 2]'
check "unknown field: 400 naming it" bad_create 400 colour "$(echo "$good" | jq '. + {colour: "red"}')"
check "unknown disk field: 400 naming it" bad_create 400 "disks[0].speed" \
    "$(echo "$good" | jq '.disks[0].speed = 1')"
check "name with ..: 400" bad_create 400 name "$(echo "$good" | jq '.name = "a..b"')"
check "name with a comma: 400" bad_create 400 name "$(echo "$good" | jq '.name = "a,b"')"
check "name with a slash: 400" bad_create 400 name "$(echo "$good" | jq '.name = "../etc"')"
check "0 vCPUs: 400" bad_create 400 vcpus "$(echo "$good" | jq '.vcpus = 0')"
check "memory as a string: 400" bad_create 400 memory "$(echo "$good" | jq '.memory = "256"')"
check "kernel path with ..: 400" bad_create 400 boot.kernel \
    "$(echo "$good" | jq '.boot.kernel = "/var/../etc/passwd"')"
check "disk with size and volume: 400" bad_create 400 "disks[0]" \
    "$(echo "$good" | jq '.disks[0].volume = "v1"')"
check "unknown datastore: 404 naming it" bad_create 404 "disks[0].datastore" \
    "$(echo "$good" | jq '.disks[0].datastore = "nods"')"
check "multicast MAC: 400" bad_create 400 "nics[0].mac" \
    "$(echo "$good" | jq '.nics = [{mac: "01:00:5e:00:00:01"}]')"
check "NIC network name with a comma: 400" bad_create 400 "nics[0].network.nat" \
    "$(echo "$good" | jq '.nics = [{network: {nat: "a,b"}}]')"
check "unknown cluster: 404" bad_create 404 cluster "$(echo "$good" | jq '.cluster = "noc"')"
check "unknown template: 404" bad_create 404 template "$(echo "$good" | jq '{name: "t1", template: "nosuch"}')"
{ printf '{"name": "'; head -c 300000 /dev/zero | tr '\0' a; printf '"}'; } >"$MD/big.json"
check "a 300 KB body: 413" bad_create 413 "" "@$MD/big.json"
check "no token: 401" [ "$(mapi "" POST /api/v1/vms "$good" >/dev/null; mstatus)" = 401 ]
check "nothing recorded" [ "$(mapi "$ATOK" GET /api/v1/vms | jq -r .total)" = 0 ]
check "no task made" [ "$(mapi "$ATOK" GET /api/v1/tasks | jq -r .total)" = 0 ]
check "nothing on the agent" \
    [ "$(curl -s --unix-socket "$MD/agent/agent.sock" http://agent/v1/vms | jq '.vms | length')" = 0 ]
check "no volume" [ -z "$(ls "$MD/ds1" | grep -v '^\.')" ]

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
check "the list marks it current, with its time" \
    [ "$(sj snapshot-list vm1 | jq -r '.items[0] | "\(.current) \(.created_at | test("^20[0-9-]+T"))"')" = "true true" ]
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
check "snapshot with a bad name: refused (2)" [ "$(s snapshot-create-as lc1 'a b'; echo $?)" = 2 ]
code=$(mapi "$ATOK" POST /api/v1/vms/lc1/memory '{"mib": "512"}' | jq -r .error.field)
check "setmem with a string: 400 naming mib" [ "$(mstatus)/$code" = 400/mib ]
code=$(mapi "$ATOK" POST /api/v1/vms/lc1/disks '{"datastore": "ds1", "size": 1048576, "x": 1}' | jq -r .error.field)
check "attach-disk with an unknown field: 400 naming it" [ "$(mstatus)/$code" = "400/disks[0].x" ]
code=$(mapi "$ATOK" POST /api/v1/vms/lc1/shutdown '{"timeout_s": 0}' | jq -r .error.field)
check "shutdown with timeout 0: 400" [ "$(mstatus)/$code" = 400/timeout_s ]

# 6. Tear down: the datastore ends empty.
for i in 1 2 3; do
    check "destroy lc$i" s destroy "lc$i"
    check "undefine lc$i" s undefine "lc$i"
done
check "template-delete" s template-delete tpl1
check "no VM left" [ "$(sj list --all | jq -r '.items | length')" = 0 ]
check "no volume left" [ "$(sj vol-list ds1 | jq -r '.items | length')" = 0 ]
check "no image file left" [ -z "$(ls "$MD/ds1" | grep -v '^\.')" ]
