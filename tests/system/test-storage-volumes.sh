#!/usr/bin/env bash
# Datastores and volumes: capacity/provisioned reporting and the overcommit
# limit; thin, thick lazy-zeroed and thick eager-zeroed disks (the latter a
# job with progress); three linked clones of one base booting at the same
# time, the base refused deletion; a shared raw disk opened by two VMs while
# a normal one is refused to a second VM; online and offline growth; secure
# delete proven by reading the released file's blocks; images whose backing
# file leaves the datastore, or whose format is not the recorded one, refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/storage-lib.sh"
st_init

DS=$ST_DIR/ds1
mkdir -p "$DS"
check "register datastore ds1" ds_add ds1 "$DS"
api POST /v1/datastores "{\"name\": \"ds1\", \"path\": \"$ST_DIR/other\"}" >/dev/null
check "a second datastore of the same name is a conflict" [ "$(last_status)" = 409 ]
api POST /v1/datastores "{\"name\": \"inner\", \"path\": \"$DS/sub\"}" >/dev/null
check "a datastore inside another is refused" [ "$(last_status)" = 409 ]
body=$(api POST /v1/datastores '{"name": "x", "path": "/tmp/a/../b"}')
check "a path with '..' is refused naming the field" [ "$(echo "$body" | jq -r .error.field)" = path ]
body=$(api POST /v1/datastores '{"name": "x,y", "path": "/tmp/q"}')
check "a name with a comma is refused naming the field" [ "$(echo "$body" | jq -r .error.field)" = name ]
body=$(api POST /v1/datastores/ds1/volumes '{"name": "v", "capacity": 1048577}')
check "a capacity that is not a multiple of 512 is refused" [ "$(echo "$body" | jq -r .error.field)" = capacity ]
body=$(api POST /v1/datastores/ds1/volumes '{"name": "v", "capacity": 1048576, "colour": 1}')
check "unknown fields are refused" [ "$(last_status)" = 400 ]
body=$(api POST /v1/datastores/ds1/volumes '{"name": "huge", "capacity": 1125899906842624}')
check "more than 64 TiB is refused" [ "$(last_status)" = 400 ]
cap=$(api GET /v1/datastores/ds1 | jq .capacity)
big=$(( (cap * 4) / 512 * 512 ))
body=$(api POST /v1/datastores/ds1/volumes "{\"name\": \"over\", \"capacity\": $big}")
check "beyond capacity x overcommit is refused (no-space)" [ "$(echo "$body" | jq -r .error.code)" = no-space ]
check "nothing left behind by the refusal" [ ! -e "$DS/over.qcow2" ]

# Provisioning.
check "thin volume" vol_add ds1 thin "{\"capacity\": $((64 * MIB))}"
check "thick lazy-zeroed volume" vol_add ds1 lazy "{\"capacity\": $((64 * MIB)), \"provisioning\": \"thick-lazy\"}"
job=$(api POST /v1/datastores/ds1/volumes "{\"name\": \"eager\", \"capacity\": $((256 * MIB)), \"provisioning\": \"thick-eager\", \"format\": \"raw\"}")
check "thick eager-zeroed volume starts a job" [ "$(last_status)" = 202 ]
res=$(wait_job "$(echo "$job" | jq -r .id)" 60)
check "eager zeroing succeeded" job_ok "$res"
note "eager-zeroed 256 MiB: $(echo "$res" | jq .result.elapsed_ms) ms, $(echo "$res" | jq .result.mib_per_s | cut -c1-6) MiB/s"
alloc() { api GET "/v1/datastores/ds1/volumes/$1" | jq .allocated; }
check "thin allocates almost nothing" [ "$(alloc thin)" -lt $((2 * MIB)) ]
check "lazy reserves the whole disk" [ "$(alloc lazy)" -ge $((64 * MIB)) ]
check "eager allocates the whole disk" [ "$(alloc eager)" -ge $((256 * MIB)) ]
check "eager is ready" [ "$(api GET /v1/datastores/ds1/volumes/eager | jq -r .state)" = ready ]
prov=$(api GET /v1/datastores/ds1 | jq .provisioned)
check "provisioned is the sum of virtual sizes ($prov)" [ "$prov" = $(((64 + 64 + 256) * MIB)) ]
check "offline growth of the lazy volume" api_ok POST /v1/datastores/ds1/volumes/lazy/resize "{\"capacity\": $((96 * MIB))}"
check "grown lazy volume stays thick" [ "$(alloc lazy)" -ge $((96 * MIB)) ]

# Linked clones: three VMs boot one base at the same time.
check "base volume" vol_add ds1 base "{\"capacity\": $((64 * MIB))}"
qemu-io -f qcow2 -c "write -P 0x5a 0 1M" "$DS/base.qcow2" >/dev/null
sig=$(head -c $MIB /dev/zero | tr '\0' '\132' | md5sum | cut -d' ' -f1)
for i in 1 2 3; do
    t0=$(st_now_ms)
    check "linked clone c$i" vol_add ds1 c$i '{"base": "base"}'
    note "clone c$i created in $(( $(st_now_ms) - t0 )) ms (curl round trip included)"
done
check "base became read-only" [ "$(api GET /v1/datastores/ds1/volumes/base | jq .readonly)" = true ]
check "clones are listed on the base" [ "$(api GET /v1/datastores/ds1/volumes/base | jq -r .clones)" = "'c1', 'c2', 'c3'" ]
body=$(api DELETE /v1/datastores/ds1/volumes/base)
check "deleting the base of clones is refused" [ "$(last_status)" = 409 ]
check "base file still there" [ -f "$DS/base.qcow2" ]
api PUT /v1/datastores/ds1/volumes/base '{"readonly": false}' >/dev/null
check "a base with clones stays read-only" [ "$(last_status)" = 409 ]
check "shared raw volume" vol_add ds1 sh "{\"capacity\": $((16 * MIB)), \"format\": \"raw\", \"provisioning\": \"thick-lazy\", \"type\": \"shared\", \"mode\": \"independent-persistent\"}"
body=$(api POST /v1/datastores/ds1/volumes '{"name": "sh2", "capacity": 16777216, "type": "shared"}')
check "a shared qcow2 thin volume is refused" [ "$(last_status)" = 400 ]
for i in 1 2 3; do
    disks=$(jq -n --arg d "$DS" --arg i $i '{disks: ([{id: "d0", path: ($d + "/c" + $i + ".qcow2"), format: "qcow2", cache: "writeback"}]
        + (if $i != "3" then [{id: "d1", path: ($d + "/sh.raw"), format: "raw", cache: "none", shared: true}] else [] end))}')
    check "define clone VM lc$i" api_ok POST /v1/vms "$(guest_def lc$i "$disks")"
done
t0=$(st_now_ms)
pids=()
for i in 1 2 3; do
    curl -s --max-time 60 --unix-socket "$ST_SOCK" -X POST http://agent/v1/vms/lc$i/start >"$ST_DIR/start$i.out" &
    pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3; do
    check "lc$i started" [ "$(jq -r .state "$ST_DIR/start$i.out")" = running ]
done
for i in 1 2 3; do
    check "lc$i guest agent answers" wait_qga lc$i 90
done
note "three clones booted to qemu-ga in $(( $(st_now_ms) - t0 )) ms"
for i in 1 2 3; do
    check "lc$i reads the base's data" [ "$(gio lc$i md5 /dev/vda 0 $MIB)" = "$sig" ]
    check "lc$i writes its own data" gio lc$i write /dev/vda $MIB $MIB $((40 + i))
done
for i in 1 2 3; do
    check "lc$i reads its own data" region_is lc$i /dev/vda $MIB $MIB $((40 + i))
done
check "the base is unchanged" sh -c "qemu-io -r -U -f qcow2 -c 'read -P 0 1M 1M' '$DS/base.qcow2' | grep -q 'read 1048576'"
check "lc1 writes the shared disk" gio lc1 write /dev/vdb 0 $MIB 50
check "lc2 reads lc1's write on the shared disk" region_is lc2 /dev/vdb 0 $MIB 50
body=$(api DELETE /v1/datastores/ds1/volumes/c1)
check "deleting an attached volume is refused" [ "$(last_status)" = 409 ]

# A normal volume is not opened by a second running VM; a base never writable.
check "define lc4 on lc1's clone" api_ok POST /v1/vms "$(guest_def lc4 "$(jq -n --arg d "$DS" '{disks: [{id: "d0", path: ($d + "/c1.qcow2"), format: "qcow2"}]}')")"
body=$(api POST /v1/vms/lc4/start)
check "a second VM on a normal volume is refused ($(echo "$body" | jq -r .error.code))" [ "$(last_status)" = 409 ]
check "define lc5 on the base itself" api_ok POST /v1/vms "$(guest_def lc5 "$(jq -n --arg d "$DS" '{disks: [{id: "d0", path: ($d + "/base.qcow2"), format: "qcow2"}]}')")"
body=$(api POST /v1/vms/lc5/start)
check "a read-only base is not opened writable" [ "$(last_status)" = 409 ]
check "neither refused VM runs" [ "$(vm_state lc4)$(vm_state lc5)" = stoppedstopped ]

# Online growth: the guest sees the new size.
check "grow lc1's disk online to 96 MiB" api_ok POST /v1/vms/lc1/disks/d0/resize "{\"capacity\": $((96 * MIB))}"
check "guest sees 96 MiB" wait_marker lc1 "STRATA-DISK-SIZE vda $((96 * 2048))" 20
check "clone record follows" [ "$(api GET /v1/datastores/ds1/volumes/c1 | jq .capacity)" = $((96 * MIB)) ]
body=$(api POST /v1/vms/lc1/disks/d0/resize "{\"capacity\": $((32 * MIB))}")
check "shrinking is refused" [ "$(last_status)" = 400 ]
for i in 1 2 3; do api POST /v1/vms/lc$i/destroy >/dev/null; done
check "clone VMs stopped" [ "$(vm_state lc1)$(vm_state lc2)$(vm_state lc3)" = stoppedstoppedstopped ]

# Secure delete: the released blocks hold none of the data.
check "raw volume for secrets" vol_add ds1 secret "{\"capacity\": $((16 * MIB)), \"format\": \"raw\"}"
yes STRATA-SECRET-PATTERN | head -c $((12 * MIB)) | dd of="$DS/secret.raw" bs=1M conv=notrunc,fsync status=none
exec 7<"$DS/secret.raw"
held=/proc/$$/fd/7
check "the pattern is on disk before" [ "$(dd if=$held bs=1M iflag=direct status=none | grep -ac STRATA-SECRET)" -gt 0 ]
job=$(api DELETE "/v1/datastores/ds1/volumes/secret?secure=true")
check "secure delete starts a job" [ "$(last_status)" = 202 ]
res=$(wait_job "$(echo "$job" | jq -r .id)" 60)
check "secure delete succeeded" job_ok "$res"
note "wiped $(echo "$res" | jq .result.wiped_bytes) bytes at $(echo "$res" | jq .result.mib_per_s | cut -c1-6) MiB/s"
check "wiped every written byte" [ "$(echo "$res" | jq .result.wiped_bytes)" -ge $((12 * MIB)) ]
check "file released" [ ! -e "$DS/secret.raw" ]
check "record gone" sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --unix-socket '$ST_SOCK' http://a/v1/datastores/ds1/volumes/secret) = 404 ]"
check "released blocks hold no pattern (read from disk, O_DIRECT)" \
    [ "$(dd if=$held bs=1M iflag=direct status=none | grep -ac STRATA-SECRET)" = 0 ]
check "released blocks are zeros" [ "$(dd if=$held bs=1M iflag=direct status=none | tr -d '\0' | wc -c)" = 0 ]
exec 7<&-
check "normal delete" api_ok DELETE /v1/datastores/ds1/volumes/thin
check "thin volume's file gone" [ ! -e "$DS/thin.qcow2" ]

# Image safety: a backing file outside the datastore, a wrong format.
head -c $MIB /dev/zero >"$ST_DIR/outside.raw"
qemu-img create -q -f qcow2 -F raw -b "$ST_DIR/outside.raw" "$DS/evil.qcow2"
body=$(api POST /v1/datastores/ds1/volumes '{"name": "evil", "format": "qcow2", "import": true}')
check "importing a qcow2 backed by a host file outside is refused (400)" [ "$(last_status)" = 400 ]
check "the refusal names the outside file" sh -c "echo '$body' | jq -r .error.message | grep -q 'outside the datastore'"
check "define a VM using that image directly" api_ok POST /v1/vms "$(guest_def evil "$(jq -n --arg d "$DS" '{disks: [{id: "d0", path: ($d + "/evil.qcow2"), format: "qcow2"}]}')")"
body=$(api POST /v1/vms/evil/start)
check "starting it is refused before QEMU opens it" [ "$(last_status)" = 400 ]
check "the refusal names the disk field" [ "$(echo "$body" | jq -r .error.field)" = "disks[0].path" ]
check "no QEMU was started" [ "$(vm_state evil)" = stopped ]
ln -s /etc/hostname "$DS/link.raw"
api POST /v1/datastores/ds1/volumes '{"name": "link", "format": "raw", "import": true}' >/dev/null
check "a symlink out of the datastore is refused" [ "$(last_status)" = 400 ]
qemu-img create -q -f qcow2 "$DS/fake.raw" 1M
api POST /v1/datastores/ds1/volumes '{"name": "fake", "format": "raw", "import": true}' >/dev/null
check "a qcow2 imported as raw is refused" [ "$(last_status)" = 400 ]
qemu-img create -q -f raw "$DS/plain.qcow2" 1M
api POST /v1/datastores/ds1/volumes '{"name": "plain", "format": "qcow2", "import": true}' >/dev/null
check "a raw file imported as qcow2 is refused" [ "$(last_status)" = 400 ]
qemu-img create -q -f qcow2 "$DS/good.qcow2" 8M
check "a clean qcow2 imports" vol_add ds1 good '{"format": "qcow2", "import": true}'
check "imported capacity read from the image" [ "$(api GET /v1/datastores/ds1/volumes/good | jq .capacity)" = $((8 * MIB)) ]

# Records survive an agent restart.
st_stop_agent TERM
st_start_agent
check "datastore kept across restarts" [ "$(api GET /v1/datastores | jq '.datastores | length')" = 1 ]
check "volumes kept across restarts" [ "$(api GET /v1/datastores/ds1/volumes | jq '.volumes | length')" -ge 7 ]
check "VMs with datastore disks recovered" [ "$(vm_state lc1)" = stopped ]
