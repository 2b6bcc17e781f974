#!/usr/bin/env bash
# test-manager-api.sh - the real strata-manager daemon, driven with curl as an
# administrator would: first start (no password: refused; with a password
# file: the first administrator), login, a site and a cluster, 401/403 with
# the error body, kill -9 and restart (inventory and tokens survive, the
# password is not needed again), a real strata-agent joining with a one-time
# token and the certificate the manager's CA issues (mutual TLS, host
# 'connected' with its facts, 'disconnected' when the agent stops), the TLS
# listener with bearer tokens, and a clean SIGTERM stop.  Needs no guest.
source "$(dirname "$0")/lib.sh"

MGR=$ST_BUILD/src/manager/strata-manager
AGENT=$ST_BUILD/src/agent/strata-agent
AGENT_PID=
D=$(mktemp -d /tmp/st.XXXXXX)
SOCK=$D/manager.sock
LOG=$D/manager.log
MGR_PID=

cleanup() {
    local rc=$?
    if [ -n "$MGR_PID" ]; then
        kill -TERM "$MGR_PID" 2>/dev/null
        wait "$MGR_PID" 2>/dev/null
    fi
    if [ -n "$AGENT_PID" ]; then
        kill -TERM "$AGENT_PID" 2>/dev/null
        wait "$AGENT_PID" 2>/dev/null
    fi
    if grep -qE 'ERROR: (Address|Undefined)Sanitizer|runtime error:' "$LOG" 2>/dev/null; then
        fail "sanitizer report in the manager log"
        grep -A20 -E 'ERROR: (Address|Undefined)Sanitizer|runtime error:' "$LOG" | head -40
    fi
    if [ "${ST_KEEP:-0}" = 1 ]; then echo "# sandbox kept: $D"; else rm -rf "$D"; fi
    echo "# $ST_NAME: $ST_PASS passed, $ST_FAIL failed, $ST_SKIP skipped"
    [ "$ST_FAIL" -eq 0 ] && [ "$rc" -eq 0 ] && exit 0
    exit 1
}
trap cleanup EXIT

[ -x "$MGR" ] || { echo "Bail out! $MGR not built"; exit 1; }

# start_mgr [ARGS...]: start the manager on $D/manager.db and wait for it.
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

# mapi TOKEN METHOD PATH [BODY]: prints the body; the status goes to $D/status.
mapi() {
    local tok=$1 method=$2 path=$3 body=${4:-}
    local args=(-s -o "$D/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$method")
    [ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    curl "${args[@]}" "http://m$path" >"$D/status"
    cat "$D/body"
}
status() { cat "$D/status"; }

# 1. An empty store and no password: refused, with a message that says how.
"$MGR" --db "$D/manager.db" --socket "$SOCK" --pki-dir "$D/mgr-pki" >"$D/first.log" 2>&1
rc=$?
check "start without an administrator password fails" [ "$rc" -ne 0 ]
check "the message names STRATA_ADMIN_PASSWORD" grep -q STRATA_ADMIN_PASSWORD "$D/first.log"

# 2. First start with a password file.
printf 'first-admin-password\n' >"$D/admin.pw"
chmod 600 "$D/admin.pw"
if start_mgr --admin-password-file "$D/admin.pw"; then ok "manager starts"; else
    echo "Bail out! manager did not start"; tail -20 "$LOG"; exit 1
fi
check "socket is mode 0600" [ "$(stat -c %a "$SOCK")" = 600 ]
TOK=$(mapi "" POST /api/v1/sessions '{"name": "admin", "password": "first-admin-password"}' |
      jq -r .token)
check "admin logs in (201)" [ "$(status)" = 201 ]
is_token() { [[ $1 =~ ^stk_[0-9a-f]{64}$ ]]; }
check "token has the stk_ form" is_token "$TOK"

mapi "$TOK" POST /api/v1/sites '{"name": "dc1", "description": "lab"}' >/dev/null
check "site created (201)" [ "$(status)" = 201 ]
mapi "$TOK" POST /api/v1/clusters '{"name": "c1", "site": "dc1", "startup_policy": "load-balancing"}' >/dev/null
check "cluster created (201)" [ "$(status)" = 201 ]
mapi "$TOK" POST /api/v1/users '{"name": "vera", "password": "vera-password", "role": "viewer"}' >/dev/null
check "viewer created (201)" [ "$(status)" = 201 ]
VTOK=$(mapi "" POST /api/v1/sessions '{"name": "vera", "password": "vera-password"}' | jq -r .token)

code=$(mapi "" GET /api/v1/sites | jq -r .error.code)
check "no token: 401 unauthorized with the error body" [ "$(status)/$code" = 401/unauthorized ]
code=$(mapi "$VTOK" POST /api/v1/sites '{"name": "dc2"}' | jq -r .error.code)
check "viewer creating a site: 403 forbidden" [ "$(status)/$code" = 403/forbidden ]
field=$(mapi "$TOK" POST /api/v1/sites '{"name": "dc2", "colour": "red"}' | jq -r .error.field)
check "unknown field: 400 naming it" [ "$(status)/$field" = 400/colour ]
mapi "$TOK" POST /api/v1/sites '{"name": ' >/dev/null
check "malformed JSON: 400" [ "$(status)" = 400 ]
n=$(mapi "$VTOK" GET "/api/v1/sites?limit=1" | jq -r .total)
check "viewer lists sites (total 1)" [ "$n" = 1 ]

# 3. kill -9 and restart without the password: everything is still there.
kill -KILL "$MGR_PID"
wait "$MGR_PID" 2>/dev/null
MGR_PID=
if start_mgr; then ok "restart after kill -9 (no password needed)"; else
    echo "Bail out! manager did not restart"; tail -20 "$LOG"; exit 1
fi
pol=$(mapi "$VTOK" GET /api/v1/clusters/c1 | jq -r .startup_policy)
check "cluster and its policy survived, old token still valid" [ "$pol" = load-balancing ]
n=$(mapi "$TOK" GET "/api/v1/events?type=site.created" | jq -r .total)
check "events survived" [ "$n" = 1 ]
mapi "$TOK" DELETE /api/v1/sessions/current >/dev/null
check "logout (204)" [ "$(status)" = 204 ]
mapi "$TOK" GET /api/v1/sites >/dev/null
check "logged-out token refused (401)" [ "$(status)" = 401 ]

# 4. A real agent joins with a one-time token.
wait_host_state() {
    local want=$1 i st
    for i in $(seq 1 100); do
        st=$(mapi "$VTOK" GET /api/v1/hosts/node1 | jq -r .state)
        [ "$st" = "$want" ] && return 0
        sleep 0.1
    done
    echo "# host state: $st"
    return 1
}
ATOK=$(mapi "" POST /api/v1/sessions '{"name": "admin", "password": "first-admin-password"}' |
       jq -r .token)
JTOK=$(mapi "$ATOK" POST /api/v1/join-tokens '{"cluster": "c1"}' | jq -r .token)
check "join token made (201)" [ "$(status)" = 201 ]
# A port nobody listens on, for the agent's mutual-TLS API.
free_port() {
    local p
    while :; do
        p=$(shuf -i 20000-60000 -n 1)
        [ -z "$(ss -ltnH "sport = :$p")" ] && { echo "$p"; return; }
    done
}
APORT=$(free_port)
mapi "" POST /api/v1/hosts "{\"token\": \"$JTOK\", \"name\": \"node1\", \"address\": \"127.0.0.1\", \"port\": $APORT}" >"$D/joined.json"
check "host joins with the token (201)" [ "$(status)" = 201 ]
mapi "" POST /api/v1/hosts "{\"token\": \"$JTOK\", \"name\": \"node2\", \"address\": \"127.0.0.1\"}" >/dev/null
check "the token works once (401)" [ "$(status)" = 401 ]
mkdir -p "$D/agent/pki" "$D/agent/state" "$D/agent/run" "$D/agent/images"
jq -r .cert_pem "$D/joined.json" >"$D/agent/pki/agent.pem"
jq -r .key_pem "$D/joined.json" >"$D/agent/pki/agent-key.pem"
jq -r .ca_pem "$D/joined.json" >"$D/agent/pki/ca.pem"
chmod 600 "$D/agent/pki/agent-key.pem"
if [ -x "$AGENT" ]; then
    "$AGENT" --state-dir "$D/agent/state" --run-dir "$D/agent/run" --socket "$D/agent/agent.sock" \
        --image-root "$D/agent/images" --accel tcg --listen "127.0.0.1:$APORT" \
        --tls-cert "$D/agent/pki/agent.pem" --tls-key "$D/agent/pki/agent-key.pem" \
        --tls-ca "$D/agent/pki/ca.pem" --tls-peer-cn "$(jq -r .manager_cn "$D/joined.json")" \
        >>"$D/agent.log" 2>&1 &
    AGENT_PID=$!
    check "manager reaches the agent over mutual TLS: connected" wait_host_state connected
    cpus=$(mapi "$VTOK" GET /api/v1/hosts/node1 | jq -r '.facts | has("cpu")')
    check "host facts recorded from the agent" [ "$cpus" = true ]
    cl=$(mapi "$VTOK" GET "/api/v1/hosts?cluster=c1&state=connected" | jq -r .total)
    check "host is in the token's cluster" [ "$cl" = 1 ]
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null
    AGENT_PID=
    check "agent stopped: disconnected" wait_host_state disconnected
    n=$(mapi "$VTOK" GET "/api/v1/events?object=node1&type=host.disconnected" | jq -r .total)
    check "disconnection is an event" [ "$n" = 1 ]
else
    skip "host join with a real agent ($AGENT not built)"
fi

# 5. The public API on TCP: server TLS and bearer tokens.
kill -TERM "$MGR_PID"
wait "$MGR_PID" 2>/dev/null
MGR_PID=
if "$ST_TOP/tools/make-test-pki.sh" "$D/pki" >/dev/null 2>&1; then
    start_mgr --listen 127.0.0.1:0 --tls-cert "$D/pki/server.pem" --tls-key "$D/pki/server-key.pem"
    port=$(sed -n 's/.*serving the API with TLS on 127.0.0.1:\([0-9]*\).*/\1/p' "$LOG" | tail -1)
    v=$(curl -s --cacert "$D/pki/ca.pem" "https://127.0.0.1:$port/api/v1/version" | jq -r .service)
    check "TLS: version over HTTPS" [ "$v" = strata-manager ]
    n=$(curl -s --cacert "$D/pki/ca.pem" -H "Authorization: Bearer $VTOK" \
        "https://127.0.0.1:$port/api/v1/clusters" | jq -r .total)
    check "TLS: bearer token works without a client certificate" [ "$n" = 1 ]
    st=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D/pki/ca.pem" \
         "https://127.0.0.1:$port/api/v1/clusters")
    check "TLS: no token, 401" [ "$st" = 401 ]
    st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/v1/version")
    check "TLS: plain HTTP gets no API answer" [ "$st" != 200 ]
else
    skip "TLS listener (certtool missing)"
fi

# 6. SIGTERM: clean stop, socket removed.
kill -TERM "$MGR_PID"
wait "$MGR_PID"
rc=$?
MGR_PID=
check "SIGTERM stops with status 0" [ "$rc" -eq 0 ]
check "socket removed" [ ! -e "$SOCK" ]
