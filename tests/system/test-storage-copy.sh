#!/usr/bin/env bash
# Full copies and in-place wipes of volumes on a real agent: a copy of a
# linked clone is standalone (its base's data flattened in, no backing
# file), keeps the source's settings or takes another format/provisioning,
# goes to another datastore with "source_datastore", is a job with progress,
# and refuses an unknown source, a taken name and a source a running VM
# uses; a copy whose qemu-img fails leaves no half volume (no record, no
# file).  A wipe zeroes a raw volume in place (same file, no byte of the old
# data left) and a qcow2 volume (recreated empty, still a valid image of the
# same size), and refuses a base with clones and a volume a running VM uses;
# a VM cannot start while its volume is being copied.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/storage-lib.sh"
st_init

DS=$ST_DIR/ds1
DS2=$ST_DIR/ds2
mkdir -p "$DS" "$DS2"
check "register datastores ds1 and ds2" ds_add ds1 "$DS"
ds_add ds2 "$DS2" >/dev/null

# qio ARGS...: qemu-io, quietly.
qio() { qemu-io "$@" >/dev/null; }

# copy DS BODY: starts a copy (202 + job); prints the job's id.
copy() { api POST "/v1/datastores/$1/volumes" "$2" | jq -r .id; }

# A base with a pattern, a linked clone writing over part of it.
check "base volume" vol_add ds1 base "{\"capacity\": $((64 * MIB))}"
qemu-io -f qcow2 -c "write -P 0x5a 0 2M" "$DS/base.qcow2" >/dev/null
check "linked clone" vol_add ds1 clone '{"base": "base"}'
qemu-io -f qcow2 -c "write -P 0x3c 1M 1M" "$DS/clone.qcow2" >/dev/null

# Refusals: nothing is created.
body=$(api POST /v1/datastores/ds1/volumes '{"name": "x", "source": "nope"}')
check "unknown source: 404 naming source" [ "$(last_status)/$(echo "$body" | jq -r .error.field)" = 404/source ]
body=$(api POST /v1/datastores/ds1/volumes '{"name": "base", "source": "clone"}')
check "taken name: 409 naming name" [ "$(last_status)/$(echo "$body" | jq -r .error.field)" = 409/name ]
body=$(api POST /v1/datastores/ds1/volumes '{"name": "x", "source": "clone", "capacity": 1048576}')
check "a copy takes no capacity (400)" [ "$(last_status)/$(echo "$body" | jq -r .error.field)" = 400/capacity ]
body=$(api POST /v1/datastores/ds1/volumes '{"name": "x", "source": "clone", "source_datastore": "zz"}')
check "unknown source datastore: 404" [ "$(last_status)/$(echo "$body" | jq -r .error.field)" = 404/source_datastore ]
body=$(api POST /v1/datastores/ds1/volumes '{"name": "x", "source": "clone", "format": "vmdk"}')
check "bad format: 400 naming format" [ "$(last_status)/$(echo "$body" | jq -r .error.field)" = 400/format ]
check "nothing left by the refusals" [ ! -e "$DS/x.qcow2" ] && [ ! -e "$DS/.strata/volumes/x.json" ]

# The copy of a linked clone is standalone and holds base + clone data.
id=$(copy ds1 '{"name": "full", "source": "clone"}')
check "copy answers 202 with a job" [ "$(last_status)" = 202 ]
res=$(wait_job "$id" 60)
check "copy succeeded" job_ok "$res"
check "the job reached 100%" [ "$(echo "$res" | jq .progress)" = 100 ]
v=$(api GET /v1/datastores/ds1/volumes/full)
check "copy is ready, thin qcow2 like its source" [ "$(echo "$v" | jq -r '[.state, .format, .provisioning] | join(" ")')" = "ready qcow2 thin" ]
check "copy has no base" [ "$(echo "$v" | jq -r '.base // "none"')" = none ]
check "copy has the source's capacity" [ "$(echo "$v" | jq .capacity)" = $((64 * MIB)) ]
info=$(qemu-img info -U -f qcow2 --output=json "$DS/full.qcow2")
check "copy's image has no backing file" [ "$(echo "$info" | jq -r '."backing-filename" // "none"')" = none ]
check "copy has the base's data" qio -f qcow2 -r -c "read -P 0x5a 0 1M" "$DS/full.qcow2"
check "copy has the clone's data" qio -f qcow2 -r -c "read -P 0x3c 1M 1M" "$DS/full.qcow2"
check "copy checks clean" img_check "$DS/full.qcow2" qcow2

# To another datastore, raw and thick.
id=$(copy ds2 '{"name": "raw1", "source": "clone", "source_datastore": "ds1", "format": "raw", "provisioning": "thick-eager"}')
res=$(wait_job "$id" 60)
check "copy to ds2 as raw thick-eager" job_ok "$res"
check "raw copy has the data" qio -f raw -r -c "read -P 0x3c 1M 1M" "$DS2/raw1.raw"
check "raw thick copy is allocated" [ "$(api GET /v1/datastores/ds2/volumes/raw1 | jq .allocated)" -ge $((64 * MIB)) ]
check "the result names source and target" [ "$(echo "$res" | jq -r '"\(.result.source_datastore)/\(.result.source) -> \(.result.datastore)/\(.result.volume)"')" = "ds1/clone -> ds2/raw1" ]
check "the source clone is untouched" [ "$(api GET /v1/datastores/ds1/volumes/clone | jq -r .state)" = ready ]

# A copy whose qemu-img fails leaves nothing behind.
check "volume to break" vol_add ds1 broken "{\"capacity\": $((8 * MIB))}"
truncate -s 100 "$DS/broken.qcow2"
id=$(copy ds1 '{"name": "fromb", "source": "broken"}')
res=$(wait_job "$id" 60)
check "copy of a broken image fails" [ "$(echo "$res" | jq -r .state)" = failed ]
check "no record left" [ "$(api GET /v1/datastores/ds1/volumes/fromb >/dev/null; last_status)" = 404 ]
check "no file left" [ -z "$(ls "$DS" | grep '^fromb\.')" ]

# Wipe in place: raw.
check "raw volume" vol_add ds1 r1 "{\"capacity\": $((8 * MIB)), \"format\": \"raw\", \"provisioning\": \"thick-lazy\"}"
qemu-io -f raw -c "write -P 0x77 0 4M" "$DS/r1.raw" >/dev/null
ino=$(stat -c %i "$DS/r1.raw")
job=$(api POST /v1/datastores/ds1/volumes/r1/wipe)
check "wipe answers 202 with a job" [ "$(last_status)" = 202 ]
res=$(wait_job "$(echo "$job" | jq -r .id)" 60)
check "wipe succeeded" job_ok "$res"
check "wipe reports what it wrote" [ "$(echo "$res" | jq .result.wiped_bytes)" -ge $((4 * MIB)) ]
check "same file" [ "$(stat -c %i "$DS/r1.raw")" = "$ino" ]
check "no byte of the old data left" [ "$(tr -d '\0' <"$DS/r1.raw" | wc -c)" = 0 ]
check "raw volume kept its size" [ "$(stat -c %s "$DS/r1.raw")" = $((8 * MIB)) ]
check "raw volume ready again" [ "$(api GET /v1/datastores/ds1/volumes/r1 | jq -r .state)" = ready ]

# Wipe in place: qcow2 (the copy made above).
res=$(wait_job "$(api POST /v1/datastores/ds1/volumes/full/wipe | jq -r .id)" 60)
check "qcow2 wipe succeeded" job_ok "$res"
check "qcow2 volume reads zeros" qio -f qcow2 -r -c "read -P 0 0 2M" "$DS/full.qcow2"
check "qcow2 volume is a valid image" img_check "$DS/full.qcow2" qcow2
check "qcow2 volume kept its capacity" [ "$(qemu-img info -U -f qcow2 --output=json "$DS/full.qcow2" | jq '."virtual-size"')" = $((64 * MIB)) ]
api POST /v1/datastores/ds1/volumes/base/wipe >/dev/null
check "a base with clones is not wiped (409)" [ "$(last_status)" = 409 ]
api POST /v1/datastores/ds1/volumes/nope/wipe >/dev/null
check "unknown volume: 404" [ "$(last_status)" = 404 ]
api POST /v1/datastores/ds1/volumes/r1/wipe '{"fast": true}' >/dev/null
check "unknown wipe field: 400" [ "$(last_status)" = 400 ]

# A running VM's volume is neither copied nor wiped.
check "volume for a VM" vol_add ds1 vmdisk "{\"capacity\": $((64 * MIB))}"
disks=$(jq -n --arg p "$DS/vmdisk.qcow2" '{disks: [{id: "d0", path: $p, format: "qcow2"}]}')
check "define VM cp1" api_ok POST /v1/vms "$(guest_def cp1 "$disks")"
check "start VM cp1" api_ok POST /v1/vms/cp1/start
body=$(api POST /v1/datastores/ds1/volumes '{"name": "x", "source": "vmdisk"}')
check "copying a running VM's volume: 409" [ "$(last_status)" = 409 ]
api POST /v1/datastores/ds1/volumes/vmdisk/wipe >/dev/null
check "wiping a running VM's volume: 409" [ "$(last_status)" = 409 ]
check "destroy VM cp1" api_ok POST /v1/vms/cp1/destroy
res=$(wait_job "$(copy ds1 '{"name": "vmcopy", "source": "vmdisk"}')" 60)
check "a stopped VM's volume is copied" job_ok "$res"

# While a copy reads a volume, its VM does not start and it does not change.
check "a bigger eager source" vol_add ds1 big "{\"capacity\": $((1024 * MIB)), \"provisioning\": \"thick-eager\", \"format\": \"raw\"}"
wait_job "$(echo "$API_BODY" | jq -r .id)" 120 >/dev/null
disks=$(jq -n --arg p "$DS/big.raw" '{disks: [{id: "d0", path: $p, format: "raw"}]}')
api_ok POST /v1/vms "$(guest_def cp2 "$disks")" >/dev/null
id=$(copy ds1 '{"name": "bigcopy", "source": "big", "provisioning": "thick-eager"}')
api POST /v1/vms/cp2/start >/dev/null
st1=$(last_status)
api POST /v1/datastores/ds1/volumes/big/resize "{\"capacity\": $((2048 * MIB))}" >/dev/null
st2=$(last_status)
res=$(wait_job "$id" 120)
if [ "$(echo "$res" | jq -r .state)" = succeeded ] && [ "$(echo "$res" | jq .result.elapsed_ms)" -lt 300 ]; then
    skip "copy too fast to observe the hold"
else
    check "the source's VM does not start during the copy (409)" [ "$st1" = 409 ]
    check "the source is not resized during the copy (409)" [ "$st2" = 409 ]
fi
check "the big copy succeeded" job_ok "$res"
check "after the copy the source's VM starts" api_ok POST /v1/vms/cp2/start
api POST /v1/vms/cp2/destroy >/dev/null
