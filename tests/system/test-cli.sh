#!/usr/bin/env bash
# test-cli.sh - the `strata` command-line client against the real
# strata-manager daemon (no agent, no guest): version without credentials,
# credentials from the environment (STRATA_TOKEN; STRATA_USER +
# STRATA_PASSWORD with a session that ends with the command) and from the
# config file written by `strata login` (mode 0600), sites, clusters, users,
# join and API tokens, hosts, tasks (a VM create that fails for want of a
# host: the progress line and the task's exit status), events (also
# --follow), `list --all` on an empty inventory, tables and --json, the
# exit statuses (2 usage, 3 not found, 4 conflict, 5 unauthorized or
# forbidden, 1 failure), logout, and HTTPS with a pinned CA.
source "$(dirname "$0")/lib.sh"

MGR=$ST_BUILD/src/manager/strata-manager
CLI=$ST_BUILD/src/cli/strata
D=$(mktemp -d /tmp/st.XXXXXX)
SOCK=$D/manager.sock
LOG=$D/manager.log
MGR_PID=
FOLLOW_PID=
PW=cli-admin-password

cleanup() {
    local rc=$?
    if [ -n "$FOLLOW_PID" ]; then
        kill -TERM "$FOLLOW_PID" 2>/dev/null
        wait "$FOLLOW_PID" 2>/dev/null
    fi
    if [ -n "$MGR_PID" ]; then
        kill -TERM "$MGR_PID" 2>/dev/null
        wait "$MGR_PID" 2>/dev/null
    fi
    if grep -qE 'ERROR: (Address|Undefined|Leak)Sanitizer|runtime error:' "$LOG" "$D"/err.* \
            2>/dev/null; then
        fail "sanitizer report in the manager log or a CLI's stderr"
        grep -h -A20 -E 'ERROR: (Address|Undefined|Leak)Sanitizer|runtime error:' \
            "$LOG" "$D"/err.* 2>/dev/null | head -40
    fi
    if [ "${ST_KEEP:-0}" = 1 ]; then echo "# sandbox kept: $D"; else rm -rf "$D"; fi
    echo "# $ST_NAME: $ST_PASS passed, $ST_FAIL failed, $ST_SKIP skipped"
    [ "$ST_FAIL" -eq 0 ] && [ "$rc" -eq 0 ] && exit 0
    exit 1
}
trap cleanup EXIT

[ -x "$MGR" ] || { echo "Bail out! $MGR not built"; exit 1; }
[ -x "$CLI" ] || { echo "Bail out! $CLI not built"; exit 1; }

start_mgr() {
    "$MGR" --db "$D/manager.db" --socket "$SOCK" --pki-dir "$D/mgr-pki" \
        --heartbeat-interval 300 --log-level info "$@" >>"$LOG" 2>&1 &
    MGR_PID=$!
    local i
    for i in $(seq 1 200); do
        if curl -s --unix-socket "$SOCK" http://m/api/v1/version >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$MGR_PID" 2>/dev/null || { MGR_PID=; return 1; }
        sleep 0.05
    done
    return 1
}

# The CLI sees only what we give it: no credentials or URL from the caller.
unset STRATA_TOKEN STRATA_USER STRATA_PASSWORD STRATA_CA XDG_CONFIG_HOME
export STRATA_URL=unix:$SOCK STRATA_CONFIG=$D/home/config
N=0
# cli ARGS...: runs strata; stdout in $D/out, stderr in $D/err.N (kept for the
# sanitizer check) and $D/err; the exit status in $RC.
cli() {
    N=$((N + 1))
    "$CLI" "$@" >"$D/out" 2>"$D/err.$N"
    RC=$?
    cp "$D/err.$N" "$D/err"
    return 0
}
out() { cat "$D/out"; }
# expect_rc DESC CODE ARGS...: one assertion on the exit status of strata ARGS.
expect_rc() {
    local desc=$1 want=$2
    shift 2
    cli "$@"
    if [ "$RC" = "$want" ]; then ok "$desc (exit $want)"; else
        fail "$desc: exit $RC, wanted $want"
        sed 's/^/#   /' "$D/err" | head -5
    fi
}

printf '%s\n' "$PW" >"$D/admin.pw"
chmod 600 "$D/admin.pw"
if start_mgr --admin-password-file "$D/admin.pw"; then ok "manager starts"; else
    echo "Bail out! manager did not start"; tail -20 "$LOG"; exit 1
fi

# 1. No credentials needed for the version; needed for everything else.
expect_rc "version without credentials" 0 version
check "version names client and server" grep -q 'strata-manager 0.1' "$D/out"
cli version --json
check "version --json is the API's JSON" [ "$(jq -r .service "$D/out")" = strata-manager ]
expect_rc "no credentials: unauthorized" 5 site-list
check "the message says how to log in" grep -q 'strata login' "$D/err"

# 2. Credentials from the environment: a session per invocation, ended after.
sessions() {
    STRATA_USER=admin STRATA_PASSWORD=$PW "$CLI" token-list --json |
        jq '[.items[] | select(.kind == "session")] | length'
}
STRATA_USER=admin STRATA_PASSWORD=$PW expect_rc "STRATA_USER + STRATA_PASSWORD" 0 site-list
check "site-list table header" grep -q '^NAME  *CLUSTERS  *DESCRIPTION' "$D/out"
# token-list, inside sessions(), runs in its own session: it sees exactly one.
check "the per-invocation session was ended (only the listing's own remains)" \
    [ "$(sessions)" = 1 ]
STRATA_USER=admin STRATA_PASSWORD=wrong-password expect_rc "wrong password: unauthorized" 5 \
    site-list

# 3. strata login writes the config file (0600) and later commands use it.
printf '%s\n' "$PW" | "$CLI" login admin --password-stdin >"$D/out" 2>"$D/err.login"
check "login --password-stdin succeeds" [ $? -eq 0 ]
check "config file written" [ -f "$D/home/config" ]
check "config file mode 0600" [ "$(stat -c %a "$D/home/config")" = 600 ]
check "config has url= and token=" grep -q "^url=unix:$SOCK\$" "$D/home/config"
check "config token has the stk_ form" grep -qE '^token=stk_[0-9a-f]{64}$' "$D/home/config"
check "login output does not show the token" [ -z "$(grep -o 'stk_[0-9a-f]*' "$D/out")" ]
STRATA_PASSWORD=$PW expect_rc "login with STRATA_PASSWORD and USER argument" 0 login admin

# 4. Sites and clusters: tables and --json; conflict; not found.
expect_rc "site-create dc1" 0 site-create dc1 --description lab
expect_rc "cluster-create c1" 0 cluster-create c1 --site dc1 --startup-policy load-balancing
expect_rc "cluster-create c1 again: conflict" 4 cluster-create c1 --site dc1
check "the conflict message names the cluster" grep -q "c1" "$D/err"
expect_rc "cluster-create in a missing site: not found" 3 cluster-create c2 --site nosite
expect_rc "cluster-list" 0 cluster-list
check "cluster-list table: header" grep -qE '^NAME +SITE +POLICY' "$D/out"
check "cluster-list table: row" grep -qE '^c1 +dc1 +load-balancing +no +0' "$D/out"
expect_rc "cluster-list --json" 0 cluster-list --json
check "--json: total 1, name c1" [ "$(jq -r '"\(.total) \(.items[0].name)"' "$D/out")" = "1 c1" ]
cli --json cluster-info c1
check "cluster-info --json (global option before the verb)" \
    [ "$(jq -r .site_name "$D/out")" = dc1 ]
cli cluster-info c1
check "cluster-info fields" grep -qE '^Startup policy: +load-balancing' "$D/out"
expect_rc "site-delete with clusters: conflict" 4 site-delete dc1

# 5. Exit statuses of the CLI's own refusals and of lookups.
expect_rc "dominfo nosuchvm: not found" 3 dominfo nosuchvm
check "not-found message names the VM" grep -q nosuchvm "$D/err"
expect_rc "unknown verb: usage" 2 frobnicate
expect_rc "missing argument: usage" 2 setmem web1
expect_rc "bad size: usage" 2 setmem web1 lots
expect_rc "unknown option: usage" 2 list --bogus
expect_rc "invalid name refused before any request: usage" 2 dominfo 'bad/name'
expect_rc "task-info with a non-UUID: usage" 2 task-info nope
expect_rc "task-info of an unknown task: not found" 3 task-info 6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c
expect_rc "console of an unknown VM: not found" 3 console nosuchvm
STRATA_TOKEN=stk_0000000000000000000000000000000000000000000000000000000000000000 \
    expect_rc "bad token: unauthorized" 5 list --all
expect_rc "manager not reachable: failure" 1 --connect "unix:$D/none.sock" site-list

# 6. An empty inventory.
expect_rc "list --all on an empty inventory" 0 list --all
check "list --all: the header alone" [ "$(out | wc -l)" = 1 ]
check "list --all: header columns" grep -qE '^NAME +STATE +HOST +CLUSTER' "$D/out"
cli list --all --json
check "list --all --json: total 0" [ "$(jq -r '"\(.total) \(.items | length)"' "$D/out")" = "0 0" ]
expect_rc "host-list" 0 host-list
check "host-list header" grep -qE '^NAME +STATE +CLUSTER +ADDRESS' "$D/out"
cli host-list --json
check "host-list --json: no hosts" [ "$(jq -r .total "$D/out")" = 0 ]
expect_rc "host-info of an unknown host: not found" 3 host-info node9
expect_rc "template-list" 0 template-list

# 7. Users and roles.
printf 'vera-password\n' | "$CLI" user-create vera --role viewer --password-stdin \
    >"$D/out" 2>"$D/err.vera"
check "user-create vera (viewer)" [ $? -eq 0 ]
printf 'vera-password\n' >"$D/vera.pw"
expect_rc "user-create with --password-file" 0 user-create otto --role operator \
    --password-file "$D/vera.pw"
expect_rc "user-create without --role: usage" 2 user-create nobody --password-file "$D/vera.pw"
expect_rc "user-create of an existing user: conflict" 4 user-create vera --role viewer \
    --password-file "$D/vera.pw"
cli user-list
check "user-list shows vera as viewer" grep -qE '^vera +viewer +yes' "$D/out"
cli user-list --json
check "user-list --json: 3 users" [ "$(jq -r .total "$D/out")" = 3 ]
STRATA_USER=vera STRATA_PASSWORD=vera-password expect_rc "viewer lists clusters" 0 cluster-list
STRATA_USER=vera STRATA_PASSWORD=vera-password expect_rc "viewer creating a site: forbidden" \
    5 site-create dc9
STRATA_USER=vera STRATA_PASSWORD=vera-password expect_rc "viewer listing users: forbidden" \
    5 user-list
expect_rc "user-update otto --disable" 0 user-update otto --disable
STRATA_USER=otto STRATA_PASSWORD=vera-password expect_rc "disabled user: unauthorized" 5 \
    site-list
expect_rc "user-delete vera" 0 user-delete vera
cli user-list
check "vera is gone" [ -z "$(grep '^vera ' "$D/out")" ]
expect_rc "user-delete vera again: not found" 3 user-delete vera

# 8. Join tokens and API tokens.
expect_rc "join-token-create --cluster c1" 0 join-token-create --cluster c1 --expires 600
check "join-token-create prints the token alone" grep -qE '^sjt_[0-9a-f]+$' "$D/out"
cli join-token-list --json
check "join-token-list: one token for c1" [ "$(jq -r '.items[0].cluster_name' "$D/out")" = c1 ]
expect_rc "join-token-create for a missing cluster: not found" 3 join-token-create --cluster c9
expect_rc "token-create ci" 0 token-create ci
API_TOKEN=$(out)
is_api_token() { [[ $1 =~ ^stk_[0-9a-f]{64}$ ]]; }
check "token-create prints an stk_ token" is_api_token "$API_TOKEN"
STRATA_TOKEN=$API_TOKEN expect_rc "STRATA_TOKEN works" 0 cluster-list
check "STRATA_TOKEN: same table" grep -qE '^c1 ' "$D/out"

# 9. Tasks: with no host in c1, a VM create is accepted (202) and its task
# fails at placement; the CLI follows it and exits with the task's error.
expect_rc "create --no-wait prints the task id" 0 create --name t1 --memory 64M --cluster c1 \
    --no-wait
TASK=$(out)
is_uuid() { [[ $1 =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]; }
check "the task id is a UUID" is_uuid "$TASK"
cli task-wait "$TASK"
check "task-wait exits with the task's error (bad-state: 4)" [ "$RC" = 4 ]
check "task-wait prints one final line" [ "$(out | wc -l)" = 1 ]
check "the final line has the bar and the state" grep -qE '\[[#.]+\] +[0-9]+% failed$' "$D/out"
check "the error is the task's" grep -q "step 'place'" "$D/err"
check "no carriage return when not a terminal" [ -z "$(cat "$D/out" "$D/err" | tr -cd '\r')" ]
expect_rc "create (followed) fails like its task" 4 create --name t2 --memory 64M --cluster c1
check "create's final line is labelled" grep -qE '^create t2 \[' "$D/out"
cli create --name t3 --memory 64M --cluster c1 --json
check "create --json prints the final task" [ "$(jq -r .state "$D/out")" = failed ]
expect_rc "create without a name: usage" 2 create --memory 64M
printf '{"name": "t4", "memory": 64, "cluster": "c1"}' >"$D/vm.json"
expect_rc "create from a JSON file follows its task" 4 create "$D/vm.json"
expect_rc "create from a missing file: usage" 2 create "$D/none.json"
expect_rc "task-list" 0 task-list
check "task-list shows vm.create tasks" grep -qE ' vm\.create +failed ' "$D/out"
cli task-list --json --kind vm.create
check "task-list --json --kind: 4 tasks" [ "$(jq -r .total "$D/out")" = 4 ]
expect_rc "task-info" 0 task-info "$TASK"
check "task-info shows the state and the step table" \
    bash -c "grep -qE '^State: +failed' '$D/out' && grep -qE '^place +failed' '$D/out'"
check "task-info shows the error message" grep -qE "^Error: +step 'place'" "$D/out"
expect_rc "task-cancel of a finished task: bad state" 4 task-cancel "$TASK"

# 10. Events, and --follow with the long poll.
expect_rc "event-list" 0 event-list
check "event-list: the latest 20 events under a header" [ "$(out | wc -l)" = 21 ]
check "event-list: newest last (the failed tasks)" bash -c "tail -1 '$D/out' | grep -q task.failed"
cli event-list --type cluster.created
check "event-list --type cluster.created" grep -qE ' cluster\.created +c1 ' "$D/out"
cli event-list --json --type site.created
check "event-list --json --type" [ "$(jq -r '[.items[].type] | unique | join(",")' "$D/out")" = \
    site.created ]
cli event-list --limit 3 --json
check "event-list --limit 3" [ "$(jq -r '.items | length' "$D/out")" = 3 ]
"$CLI" event-list --follow --type site.created >"$D/follow.out" 2>"$D/err.follow" &
FOLLOW_PID=$!
sleep 0.5
cli site-create dc-follow
seen=false
for i in $(seq 1 50); do
    grep -q 'dc-follow' "$D/follow.out" && { seen=true; break; }
    sleep 0.1
done
check "event-list --follow prints a new event" $seen
check "event-list --follow printed the earlier one first" grep -q "site 'dc1' created" \
    "$D/follow.out"
kill -TERM "$FOLLOW_PID" 2>/dev/null
wait "$FOLLOW_PID" 2>/dev/null
FOLLOW_PID=

# 11. --connect beats STRATA_URL; logout forgets the token.
STRATA_URL=unix:$D/none.sock expect_rc "--connect overrides STRATA_URL" 0 \
    --connect "unix:$SOCK" site-list
expect_rc "bad URL: usage" 2 --connect "http://127.0.0.1:1" site-list
expect_rc "logout" 0 logout
check "the config keeps the URL, not the token" \
    bash -c "grep -q '^url=' '$D/home/config' && ! grep -q '^token=' '$D/home/config'"
expect_rc "after logout: unauthorized" 5 site-list

# 12. HTTPS with the CA pinned.
kill -TERM "$MGR_PID"
wait "$MGR_PID" 2>/dev/null
MGR_PID=
if "$ST_TOP/tools/make-test-pki.sh" "$D/pki" >/dev/null 2>&1; then
    start_mgr --listen 127.0.0.1:0 --tls-cert "$D/pki/server.pem" --tls-key "$D/pki/server-key.pem"
    port=$(sed -n 's/.*serving the API with TLS on 127.0.0.1:\([0-9]*\).*/\1/p' "$LOG" | tail -1)
    URL=https://127.0.0.1:$port
    expect_rc "https: version with --ca" 0 --connect "$URL" --ca "$D/pki/ca.pem" version
    STRATA_CA=$D/pki/ca.pem STRATA_TOKEN=$API_TOKEN expect_rc "https: STRATA_CA and a token" 0 \
        --connect "$URL" cluster-list
    check "https: the cluster is listed" grep -qE '^c1 ' "$D/out"
    expect_rc "https without a CA: usage" 2 --connect "$URL" version
    expect_rc "https with another CA: failure" 1 --connect "$URL" --ca "$D/mgr-pki/ca.pem" version
else
    skip "HTTPS (certtool missing)"
fi
