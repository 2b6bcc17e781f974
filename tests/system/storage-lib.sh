# storage-lib.sh - helpers shared by the storage system tests (sourced after
# lib.sh).  Guest disk I/O goes through tests/system/storage-guest-io.py,
# which speaks to qemu-ga on the VM's qga socket (see that file for why).
GIO="python3 $ST_TOP/tests/system/storage-guest-io.py"
MIB=1048576

# gio VM OP ARGS...: guest disk I/O through qemu-ga (storage-guest-io.py).
gio() {
    local vm=$1
    shift
    $GIO "$ST_DIR/run/$vm/qga.sock" "$@"
}

# wait_qga VM TIMEOUT_S: true once the guest agent answers.
wait_qga() {
    local vm=$1 t=$2 i
    for i in $(seq 1 "$t"); do
        gio "$vm" ping 2>/dev/null && return 0
        sleep 1
    done
    echo "# $vm: qemu-ga does not answer"
    return 1
}

# pmd5 SIZE SEED: md5 of the test pattern (seed 0: zeros).
pmd5() { $GIO pattern-md5 "$1" "$2"; }

# region_is VM DEV OFFSET SIZE SEED: the guest reads the pattern there.
region_is() {
    local got want
    got=$(gio "$1" md5 "$2" "$3" "$4") || return 1
    want=$(pmd5 "$4" "$5")
    [ "$got" = "$want" ] || { echo "# $1 $2@$3: md5 $got, want $want (seed $5)"; return 1; }
}

# wait_job ID TIMEOUT_S: waits for an agent job to end; prints its JSON.
wait_job() {
    local id=$1 t=${2:-120} i j
    for i in $(seq 1 $(((t + 9) / 10))); do
        j=$(api GET "/v1/jobs/$id?wait_ms=10000")
        [ "$(echo "$j" | jq -r .state)" != running ] && { echo "$j"; return 0; }
    done
    echo "$j"
}

# job_ok JSON: the job succeeded.
job_ok() { [ "$(echo "$1" | jq -r .state)" = succeeded ] || { echo "# job: $1"; return 1; }; }

# ds_add NAME DIR [EXTRA_JSON]: registers a datastore.
ds_add() {
    local body
    body=$(jq -n --arg n "$1" --arg p "$2" --argjson x "${3:-{\}}" '{name: $n, path: $p} + $x')
    api_ok POST /v1/datastores "$body"
}

# vol_add DS NAME JSON: creates a volume (201, or 202 + job for eager).
vol_add() {
    local body
    body=$(jq -n --arg n "$2" --argjson x "$3" '{name: $n} + $x')
    api_ok POST "/v1/datastores/$1/volumes" "$body"
}

# img_check FILE FMT: qemu-img check reports no errors.
img_check() {
    local out
    out=$(qemu-img check -U -f "$2" --output=json "$1" 2>&1) || { echo "# $1: $out"; return 1; }
    [ "$(echo "$out" | jq '(.["check-errors"] // 0) + (.corruptions // 0)')" = 0 ] ||
        { echo "# $1: $out"; return 1; }
}

# chain_clean VM DISK: every layer of the disk's chain checks clean.
chain_clean() {
    local f fmt ok=0
    while read -r f fmt; do
        img_check "$f" "$fmt" || ok=1
    done < <(api GET "/v1/vms/$1/storage" |
             jq -r --arg d "$2" '.disks[] | select(.id == $d) | .chain[] | "\(.file) \(.format)"')
    return $ok
}

# readies VM: how many times the guest has booted (console markers).
readies() { console "$1" | grep -ac STRATA-GUEST-READY; }
