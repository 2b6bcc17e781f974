#!/usr/bin/env bash
# The agent's TCP API is mutual TLS only: a client with a certificate from the
# manager's CA (here a test CA) is served; no certificate, a foreign CA's,
# an expired or a revoked certificate, another CN than the allowed one, and
# plain HTTP are all refused.  The unix socket is root-only (0600).
. "$(dirname "$0")/lib.sh"
st_init
st_stop_agent
pki=$ST_DIR/pki
"$ST_TOP/tools/make-test-pki.sh" "$pki" localhost >/dev/null 2>&1
check "test PKI generated" [ -f "$pki/client.pem" ]

ST_AGENT_EXTRA=(--listen 127.0.0.1:0 --tls-cert "$pki/server.pem" --tls-key "$pki/server-key.pem"
                --tls-ca "$pki/ca.pem" --tls-crl "$pki/crl.pem" --tls-peer-cn strata-client)
st_start_agent
port=$(grep -oE 'mutual-TLS API on 127\.0\.0\.1:[0-9]+' "$ST_DIR/agent.log" | tail -1 | cut -d: -f2)
check "agent listens on a TLS port ($port)" [ -n "$port" ]

tls() {   # tls CERT_BASENAME: prints the HTTP status of GET /v1/version
    local args=(-s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$pki/ca.pem")
    [ -n "$1" ] && args+=(--cert "$pki/$1.pem" --key "$pki/$1-key.pem")
    curl "${args[@]}" "https://localhost:$port/v1/version" 2>/dev/null
}
check "the manager's certificate is served (200)" [ "$(tls client)" = 200 ]
r=$(tls ""); check "no client certificate is refused ($r)" [ "$r" != 200 ]
r=$(tls foreign-client); check "a foreign CA's certificate is refused ($r)" [ "$r" != 200 ]
r=$(tls expired); check "an expired certificate is refused ($r)" [ "$r" != 200 ]
r=$(tls revoked); check "a revoked certificate is refused ($r)" [ "$r" != 200 ]
r=$(tls other-client); check "a good certificate with another CN is refused ($r)" [ "$r" != 200 ]
r=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/v1/version" 2>/dev/null)
check "plain HTTP on the TLS port gets no API answer ($r)" [ "$r" != 200 ]
body=$(curl -s --max-time 10 --cacert "$pki/ca.pem" --cert "$pki/client.pem" \
       --key "$pki/client-key.pem" "https://localhost:$port/v1/vms")
check "the VM list is served over mutual TLS" [ "$(echo "$body" | jq -r '.vms | type')" = array ]
check "the unix socket is mode 0600" [ "$(stat -c %a "$ST_SOCK")" = 600 ]
