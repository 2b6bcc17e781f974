#!/usr/bin/env bash
# Lifecycle of one real guest under QEMU/TCG through the agent API: boot to
# the ready marker, pause/resume (the guest's tick counter stops and goes on),
# hot-add a vCPU and 256 MiB seen inside the guest, hibernate and restore with
# the counter continuing, reboot, and a graceful ACPI shutdown within 10 s.
. "$(dirname "$0")/lib.sh"
st_init

vm=life1
def=$(guest_def $vm '{"boot": {"kernel": "'"$GUEST_KERNEL"'", "initrd": "'"$GUEST_INITRD"'", "cmdline": "console=ttyS0 quiet swiotlb=noforce strata.tick=1"}}')
check "define VM" api_ok POST /v1/vms "$def"
check "defined VM is stopped" [ "$(vm_state $vm)" = stopped ]

t0=$(st_now_ms)
check "start VM" api_ok POST /v1/vms/$vm/start
check "state running after start" [ "$(vm_state $vm)" = running ]
check "guest prints its ready marker" wait_console $vm 'STRATA-GUEST-READY' 60
note "boot to ready marker: $(( $(st_now_ms) - t0 )) ms"
check "guest reports 1 CPU" wait_console $vm 'STRATA-STAT cpus=1 ' 10

# Ticks: the last STRATA-TICK number on the console.
last_tick() { console $vm | grep -aoE 'STRATA-TICK [0-9]+' | tail -1 | awk '{print $2}'; }
check "guest ticks" wait_console $vm 'STRATA-TICK 2' 30

# Pause: no tick while paused; ticks resume afterwards.
check "pause" api_ok POST /v1/vms/$vm/pause
check "state paused" [ "$(vm_state $vm)" = paused ]
p1=$(last_tick); sleep 2.5; p2=$(last_tick)
check "no tick while paused ($p1 -> $p2)" [ "$p1" = "$p2" ]
check "resume" api_ok POST /v1/vms/$vm/resume
check "state running after resume" [ "$(vm_state $vm)" = running ]
check "ticks continue after resume" wait_console $vm "STRATA-TICK $((p2 + 2))\b" 20

# Hot-add a vCPU and 256 MiB (one DIMM); the guest's watcher onlines them.
mem_before=$(console $vm | grep -aoE 'memtotal_kb=[0-9]+' | tail -1 | cut -d= -f2)
check "hot-add a vCPU (count 2)" api_ok PUT /v1/vms/$vm/vcpus '{"count": 2}'
check "guest sees 2 CPUs" wait_console $vm 'STRATA-STAT cpus=2 ' 30
check "hot-add 256 MiB (memory 512)" api_ok PUT /v1/vms/$vm/memory '{"mib": 512}'
mem_ok() {
    local m
    m=$(console $vm | grep -aoE 'memtotal_kb=[0-9]+' | tail -1 | cut -d= -f2)
    [ -n "$m" ] && [ -n "$mem_before" ] && [ "$m" -ge $((mem_before + 250000)) ]
}
wait_mem() { local i; for i in $(seq 1 60); do mem_ok && return 0; sleep 0.5; done; return 1; }
check "guest MemTotal grew by ~256 MiB (from ${mem_before} kB)" wait_mem
check "definition records 2 vCPUs and 512 MiB" \
    [ "$(api GET /v1/vms/$vm | jq -c '[.definition.vcpus.count, .definition.memory.mib]')" = "[2,512]" ]

# Hibernate: memory to a file through an fd passed over QMP, QEMU exits.
before=$(last_tick)
check "hibernate" api_ok POST /v1/vms/$vm/hibernate
check "state saved" [ "$(vm_state $vm)" = saved ]
check "save file exists" [ -s "$ST_DIR/state/vms/$vm/save.img" ]
check "no QEMU while saved" [ "$(api GET /v1/vms/$vm | jq -r .pid)" = null ]
sleep 2
check "restore" api_ok POST /v1/vms/$vm/restore
check "state running after restore" [ "$(vm_state $vm)" = running ]
check "counter continues after restore" wait_console $vm "STRATA-TICK $((before + 2))\b" 30
ticks_after=$(console $vm | grep -aoE 'STRATA-TICK [0-9]+' | awk '{print $2}' | awk -v b="$before" '$1 > b' | head -1)
check "first tick after restore follows the last before ($before -> $ticks_after)" \
    [ -n "$ticks_after" ] && [ "$ticks_after" -le $((before + 3)) ]
check "restored guest still has 2 CPUs" wait_console $vm 'STRATA-STAT cpus=2 ' 5

# Stats.
stats=$(api GET /v1/vms/$vm/stats)
check "stats report CPU time and RSS" \
    [ "$(echo "$stats" | jq '(.cpu_time_ns > 0) and (.rss_bytes > 1000000)')" = true ]

# Graceful shutdown via ACPI within 10 s.
t0=$(st_now_ms)
check "ACPI shutdown" api_ok POST /v1/vms/$vm/shutdown '{"mode": "acpi", "timeout_s": 10, "force": false}'
el=$(( $(st_now_ms) - t0 ))
note "ACPI shutdown took $el ms"
check "ACPI shutdown within 10 s ($el ms)" [ "$el" -lt 10000 ]
check "state stopped" [ "$(vm_state $vm)" = stopped ]
check "exit reason names the guest shutdown" \
    sh -c "curl -s --unix-socket '$ST_SOCK' http://agent/v1/vms/$vm | jq -r .exit_reason | grep -q guest-shutdown"

# Start again (cold): hot-added vCPUs persisted in the definition.
check "cold start again" api_ok POST /v1/vms/$vm/start
two_ready() { [ "$(console $vm | grep -ac STRATA-GUEST-READY)" -ge 2 ]; }
wait_two_ready() { local i; for i in $(seq 1 120); do two_ready && return 0; sleep 0.5; done; return 1; }
check "ready marker again" wait_two_ready
check "force stop (destroy)" api_ok POST /v1/vms/$vm/destroy
check "stopped after destroy" [ "$(vm_state $vm)" = stopped ]
check "undefine" api_ok DELETE /v1/vms/$vm
check "VM directory removed" [ ! -e "$ST_DIR/state/vms/$vm" ]
api GET /v1/vms/$vm >/dev/null
check "undefined VM is 404" [ "$HTTP_STATUS" = 404 ]
