#!/usr/bin/env bash
# Online changes and guest tools on one running guest, each checked from
# inside the guest (its serial console) or through the guest agent:
# attach/detach a disk and a NIC, insert/eject CD media, balloon target,
# guest-agent ping, interfaces and fsfreeze status, VNC on a unix socket,
# stats counters, and a graceful shutdown through the guest agent.
. "$(dirname "$0")/lib.sh"
st_init

vm=dev1
tag=$(printf '%04x' $((RANDOM % 65536)))
tap0=st${tag}n0
tap1=st${tag}n1
qemu-img create -f qcow2 "$ST_IMAGES/data1.qcow2" 64M >/dev/null
qemu-img create -f raw "$ST_IMAGES/disc.iso" 1M >/dev/null
extra=$(jq -n --arg k "$GUEST_KERNEL" --arg i "$GUEST_INITRD" --arg t "$tap0" '{
    boot: {kernel: $k, initrd: $i,
           cmdline: "console=ttyS0 quiet swiotlb=noforce strata.ip=eth0:10.99.0.5/24 strata.ip=eth1:10.99.1.5/24"},
    nics: [{id: "nic0", mac: "52:54:00:99:00:05", model: "virtio", tap: $t}],
    cdroms: [{id: "cd0", path: null}],
    vnc: {listen: "unix"}}')
check "define VM with a NIC, an empty CD-ROM and VNC" api_ok POST /v1/vms "$(guest_def $vm "$extra")"
check "start" api_ok POST /v1/vms/$vm/start
check "ready marker" wait_console $vm 'STRATA-GUEST-READY' 60
check "guest sees its boot NIC" wait_marker $vm 'STRATA-NICS eth0' 10
check "boot tap is up on the host" sh -c "ip link show $tap0 | grep -q 'state UP\|,UP'"

# Disk hot-plug.
check "guest starts with no disk" wait_marker $vm 'STRATA-DISKS' 5
check "attach a qcow2 disk live" api_ok POST /v1/vms/$vm/disks \
    '{"id": "data1", "path": "'"$ST_IMAGES"'/data1.qcow2", "format": "qcow2", "cache": "writeback"}'
check "guest sees the new disk (vda)" wait_marker $vm 'STRATA-DISKS vda' 20
check "definition lists the disk" [ "$(api GET /v1/vms/$vm | jq '[.definition.disks[].id] | index("data1") != null')" = true ]
api POST /v1/vms/$vm/disks '{"id": "data1", "path": "'"$ST_IMAGES"'/data1.qcow2", "format": "qcow2"}' >/dev/null
check "attaching a second disk with the same id is a conflict" [ "$(last_status)" = 409 ]
api POST /v1/vms/$vm/disks '{"id": "evil", "path": "/etc/passwd", "format": "raw"}' >/dev/null
check "a disk outside the image roots is refused" [ "$(last_status)" = 400 ]
check "detach the disk live" api_ok DELETE /v1/vms/$vm/disks/data1
check "guest no longer sees it" wait_marker $vm 'STRATA-DISKS' 20
check "definition no longer lists it" [ "$(api GET /v1/vms/$vm | jq '.definition.disks | length')" = 0 ]
check "image file is kept" [ -f "$ST_IMAGES/data1.qcow2" ]

# NIC hot-plug (QEMU creates the tap; the agent brings it up).
check "attach a NIC live" api_ok POST /v1/vms/$vm/nics \
    '{"id": "nic1", "mac": "52:54:00:99:01:05", "model": "virtio", "tap": "'"$tap1"'"}'
check "guest sees the new NIC" wait_marker $vm 'STRATA-NICS eth0 eth1' 20
check "new tap exists and is up" sh -c "ip link show $tap1 | grep -q ',UP'"
check "detach the NIC live" api_ok DELETE /v1/vms/$vm/nics/nic1
check "guest no longer sees it" wait_marker $vm 'STRATA-NICS eth0' 20

# CD-ROM media.
check "insert an ISO" api_ok PUT /v1/vms/$vm/cdroms/cd0/media '{"path": "'"$ST_IMAGES"'/disc.iso"}'
check "guest sees the medium (2048 sectors)" wait_marker $vm 'STRATA-CD sr0 2048' 20
check "definition records the medium" [ "$(api GET /v1/vms/$vm | jq -r '.definition.cdroms[0].path')" = "$ST_IMAGES/disc.iso" ]
check "eject" api_ok DELETE /v1/vms/$vm/cdroms/cd0/media
check "guest sees the drive empty" wait_marker $vm 'STRATA-CD sr0 0' 20

# Balloon: the guest's MemTotal drops.
memtotal() { console $vm | grep -aoE 'memtotal_kb=[0-9]+' | tail -1 | cut -d= -f2; }
m0=$(memtotal)
check "balloon to 160 MiB" api_ok PUT /v1/vms/$vm/balloon '{"mib": 160}'
shrunk() { local m; m=$(memtotal); [ -n "$m" ] && [ "$m" -lt $((m0 - 60000)) ]; }
wait_shrunk() { local i; for i in $(seq 1 40); do shrunk && return 0; sleep 0.5; done; return 1; }
check "guest MemTotal dropped (from $m0 kB)" wait_shrunk
check "balloon back to 256 MiB" api_ok PUT /v1/vms/$vm/balloon '{"mib": 256}'
api PUT /v1/vms/$vm/balloon '{"mib": 4096}' >/dev/null
check "a balloon above the VM's memory is refused" [ "$(last_status)" = 400 ]

# Guest agent.
check "guest agent ping" api_ok GET /v1/vms/$vm/guest/ping
ifs=$(api GET /v1/vms/$vm/guest/interfaces)
check "guest agent reports eth0 with 10.99.0.5" \
    [ "$(echo "$ifs" | jq '[.interfaces[] | select(.name == "eth0") | .addresses[].address] | index("10.99.0.5") != null')" = true ]
check "guest agent reports eth0's MAC" \
    [ "$(echo "$ifs" | jq -r '.interfaces[] | select(.name == "eth0") | .mac')" = 52:54:00:99:00:05 ]
fs=$(api POST /v1/vms/$vm/guest/fsfreeze '{"op": "status"}')
check "fsfreeze status answers ($fs)" [ "$(echo "$fs" | jq -r .status)" = thawed ]

# VNC on a unix socket speaks RFB.
vnc=$(api GET /v1/vms/$vm/vnc | jq -r .unix)
banner=$(timeout 5 socat -u "UNIX-CONNECT:$vnc" - 2>/dev/null | head -c 12)
check "VNC socket answers with an RFB banner ($banner)" [ "${banner:0:4}" = "RFB " ]

# Stats: the guest's own traffic (ARP/IPv6 from eth0) shows on the tap.
st=$(api GET /v1/vms/$vm/stats)
check "stats list the NIC with counters" [ "$(echo "$st" | jq '[.net[] | select(.id == "nic0")] | length')" = 1 ]
check "stats report CPU time" [ "$(echo "$st" | jq '.cpu_time_ns > 0')" = true ]

# Reboot through the guest agent, then a hard reset: the guest boots again.
readies() { console $vm | grep -ac STRATA-GUEST-READY; }
wait_readies() { local i; for i in $(seq 1 120); do [ "$(readies)" -ge "$1" ] && return 0; sleep 0.5; done; return 1; }
check "reboot through the guest agent" api_ok POST /v1/vms/$vm/reboot '{"mode": "agent"}'
check "guest comes back (second ready marker)" wait_readies 2
check "guest ran its own shutdown -r" wait_console $vm 'STRATA-SHUTDOWN reboot' 5
check "reset" api_ok POST /v1/vms/$vm/reboot '{"mode": "reset"}'
check "guest comes back after the reset (third ready marker)" wait_readies 3
check "still running, same QEMU" [ "$(vm_state $vm)" = running ]
check "guest agent answers again" sh -c "for i in \$(seq 1 60); do curl -sf --unix-socket '$ST_SOCK' http://agent/v1/vms/$vm/guest/ping >/dev/null && exit 0; sleep 0.5; done; exit 1"
ev=$(api GET '/v1/events?since=0')
check "RESET events published" [ "$(echo "$ev" | jq '[.events[] | select(.vm == "'$vm'" and .data.event == "RESET")] | length >= 1')" = true ]

# Graceful shutdown through the guest agent.
check "shutdown through the guest agent" api_ok POST /v1/vms/$vm/shutdown '{"mode": "agent", "timeout_s": 20, "force": false}'
check "stopped" [ "$(vm_state $vm)" = stopped ]
check "not marked crashed" [ "$(api GET /v1/vms/$vm | jq -r .crashed)" = false ]
check "boot tap removed with QEMU" sh -c "! ip link show $tap0 >/dev/null 2>&1"
check "offline: change vCPUs of the stopped VM" api_ok PUT /v1/vms/$vm/vcpus '{"count": 3}'
check "offline change recorded" [ "$(api GET /v1/vms/$vm | jq .definition.vcpus.count)" = 3 ]
api PUT /v1/vms/$vm/vcpus '{"count": 9}' >/dev/null
check "more vCPUs than the maximum is refused" [ "$(last_status)" = 400 ]
