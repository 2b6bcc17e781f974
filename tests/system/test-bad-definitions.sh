#!/usr/bin/env bash
# Bad VM definitions and bad requests through the agent API: each is refused
# with a 400 and the one error body naming the offending field; afterwards no
# VM is defined, no file was written and no QEMU was started.  (The same rules
# are unit-tested in tests/unit/model; this proves the API path end to end.)
. "$(dirname "$0")/lib.sh"
ST_ACCEL=auto   # the real accelerator decision (no guest boots here)
st_init

I=$ST_IMAGES
K=$GUEST_KERNEL
N=$GUEST_INITRD
base='{"name":"bad","memory":256,"vcpus":1,"boot":{"kernel":"'$K'","initrd":"'$N'"}}'
# with JQ_EXPR: the base definition changed by a jq expression.
with() { echo "$base" | jq -c "$1"; }

# expected-field <TAB> definition
cases=$(cat <<EOF
name	$(with '.name = "../etc"')
name	$(with '.name = "a,b"')
name	$(with '.name = "a=b"')
name	$(with '.name = "'"$(printf 'x%.0s' $(seq 1 80))"'"')
name	$(with 'del(.name)')
uuid	$(with '.uuid = "not-a-uuid"')
bogus	$(with '.bogus = 1')
memory	$(with '.memory = -256')
memory	$(with '.memory = 1152921504606846976')
memory	$(with '.memory = 0')
vcpus	$(with '.vcpus = 0')
vcpus	$(with '.vcpus = 100000')
vcpus.max	$(with '.vcpus = {"count": 4, "max": 2, "sockets": 2, "cores": 1, "threads": 1}')
vcpus	$(with '.vcpus = {"count": 1, "max": 4, "sockets": 3, "cores": 1, "threads": 1}')
vcpus.bogus	$(with '.vcpus = {"count": 1, "bogus": 2}')
boot.kernel	$(with '.boot.kernel = "'$I'/../../../etc/passwd"')
boot.kernel	$(with '.boot.kernel = "/etc/passwd"')
boot.kernel	$(with '.boot.kernel = "relative/vmlinuz"')
boot.cmdline	$(with '.boot.cmdline = "console=ttyS0\u0001"')
disks[0].path	$(with '.disks = [{"id":"disk0","path":"'$I'/../x.qcow2","format":"qcow2"}]')
disks[0].path	$(with '.disks = [{"id":"disk0","path":"/var/tmp/x.qcow2","format":"qcow2"}]')
disks[0].path	$(with '.disks = [{"id":"disk0","path":"'$I'/a,b.qcow2","format":"qcow2"}]')
disks[0].path	$(with '.disks = [{"id":"disk0","path":"'$I'/a=b.qcow2","format":"qcow2"}]')
disks[0].format	$(with '.disks = [{"id":"disk0","path":"'$I'/a.qcow2"}]')
disks[0].format	$(with '.disks = [{"id":"disk0","path":"'$I'/a.img","format":"vmdk"}]')
disks[0].id	$(with '.disks = [{"id":"disk,0","path":"'$I'/a.img","format":"raw"}]')
disks[0].shared	$(with '.disks = [{"id":"disk0","path":"'$I'/a.qcow2","format":"qcow2","shared":true}]')
disks[0].bogus	$(with '.disks = [{"id":"disk0","path":"'$I'/a.img","format":"raw","bogus":true}]')
disks[1].id	$(with '.disks = [{"id":"d","path":"'$I'/a.img","format":"raw"},{"id":"d","path":"'$I'/b.img","format":"raw"}]')
nics[1].mac	$(with '.nics = [{"id":"n0","mac":"52:54:00:00:00:01","tap":"t0"},{"id":"n1","mac":"52:54:00:00:00:01","tap":"t1"}]')
nics[0].mac	$(with '.nics = [{"id":"n0","mac":"01:00:5e:00:00:01","tap":"t0"}]')
nics[0].mac	$(with '.nics = [{"id":"n0","mac":"zz:54:00:00:00:01","tap":"t0"}]')
nics[0].tap	$(with '.nics = [{"id":"n0","mac":"52:54:00:00:00:01","tap":"tap,vhost=on"}]')
nics[0].tap	$(with '.nics = [{"id":"n0","mac":"52:54:00:00:00:01","tap":"averyveryverylongtapname"}]')
machine	$(with '.machine = "q35,accel=kvm"')
cpu.model	$(with '.cpu = {"model": "host,+vmx"}')
cdroms[0].path	$(with '.cdroms = [{"id":"cd0","path":"/etc/shadow"}]')
EOF
)

n=0
while IFS=$'\t' read -r field body; do
    [ -n "$field" ] || continue
    n=$((n + 1))
    out=$(api POST /v1/vms "$body"); HTTP_STATUS=$(last_status)
    got=$(echo "$out" | jq -r '.error.field // empty' 2>/dev/null)
    code=$(echo "$out" | jq -r '.error.code // empty' 2>/dev/null)
    msg=$(echo "$out" | jq -r '.error.message // empty' 2>/dev/null)
    if [ "$HTTP_STATUS" = 400 ] && [ "$code" = invalid-argument ] && [ "$got" = "$field" ] \
       && [ -n "$msg" ]; then
        ok "case $n refused naming '$field': $msg"
    else
        fail "case $n wanted 400 naming '$field', got $HTTP_STATUS field '$got': $out"
    fi
done <<<"$cases"
check "at least 25 bad definitions tried ($n)" [ "$n" -ge 25 ]

# Malformed requests get the same error body.
api POST /v1/vms '{"name": ' >/dev/null
check "malformed JSON is 400" [ "$HTTP_STATUS" = 400 ]
api POST /v1/vms '[1,2]' >/dev/null
check "non-object body is 400" [ "$HTTP_STATUS" = 400 ]
big=$(head -c 2000000 /dev/zero | tr '\0' 'a')
api POST /v1/vms "{\"name\": \"$big\"}" >/dev/null
check "oversized body is 413" [ "$HTTP_STATUS" = 413 ]
api POST '/v1/vms/..%2Fetc/start' >/dev/null
check "encoded slash in a name is refused (got $HTTP_STATUS)" \
    [ "$HTTP_STATUS" = 400 ] || [ "$HTTP_STATUS" = 404 ]
api POST '/v1/vms/a%2Cb/start' >/dev/null
check "comma in a name in the path is 400" [ "$HTTP_STATUS" = 400 ]
api PUT /v1/vms/nosuch/vcpus '{"count": 2, "extra": 1}' >/dev/null
check "unknown body field on an action is 400" [ "$HTTP_STATUS" = 400 ]

# Host facts: this machine's /dev/kvm (paravirtual, no vmx/svm) is not used.
host=$(api GET /v1/host)
check "host facts report the accelerator decision" [ "$(echo "$host" | jq -r '.accel.accel')" != null ]
if grep -qwE 'vmx|svm' /proc/cpuinfo; then
    note "CPU has vmx/svm: accelerator $(echo "$host" | jq -c .accel)"
else
    check "no vmx/svm: TCG, with the reason" [ "$(echo "$host" | jq -r '.accel.reason')" = "tcg: cpu has no vmx/svm flag" ]
fi
check "host facts list CPUs and memory" [ "$(echo "$host" | jq '.cpu.online_cpus > 0 and .memory.total_bytes > 0')" = true ]
hs=$(api GET /v1/host/stats); hs=$(api GET /v1/host/stats)
check "host stats report CPU use and VM counts" [ "$(echo "$hs" | jq 'has("vms_defined") and has("vms_running")')" = true ]

# Nothing was defined, written or started.
check "no VM defined" [ "$(api GET /v1/vms | jq '.vms | length')" = 0 ]
check "no VM directory written" [ -z "$(ls -A "$ST_DIR/state/vms")" ]
# (run/ may hold module state such as run/net; no VM may have a directory.)
check "no VM run directory written" [ -z "$(ls -A "$ST_DIR/run" | grep -vx net)" ]
qemus=$(pgrep -f -- "$ST_DIR/" | while read -r p; do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = qemu-system-x86 ] && echo "$p"; done)
check "no QEMU started" [ -z "$qemus" ]

# A good definition still works afterwards.
check "a good definition is accepted" api_ok POST /v1/vms "$base"
check "and can be undefined" api_ok DELETE /v1/vms/bad
