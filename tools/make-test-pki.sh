#!/bin/sh
# make-test-pki.sh - generates a throw-away PKI for the HTTP/TLS tests.
#
# Usage: tools/make-test-pki.sh DIR [SERVER_CN]
#
# Creates DIR (mode 0700) and writes, with GnuTLS's certtool (ECDSA P-256 keys):
#   ca.pem ca-key.pem                   the test CA ("Strata Test CA")
#   server.pem server-key.pem           server cert signed by the CA: CN SERVER_CN
#                                       (default "localhost"), SAN DNS:localhost,
#                                       IP:127.0.0.1, key purpose tls_www_server
#   client.pem client-key.pem           client cert signed by the CA, CN
#                                       "strata-client", key purpose tls_www_client
#   other-client.pem other-client-key.pem  a second good client, CN "other-client"
#   foreign-ca.pem foreign-ca-key.pem   an unrelated CA
#   foreign-client.pem foreign-client-key.pem  client cert signed by the foreign CA
#   expired.pem expired-key.pem         client cert signed by the CA, expired in 2021
#   revoked.pem revoked-key.pem         client cert signed by the CA, listed in crl.pem
#   crl.pem                             CRL signed by the CA revoking revoked.pem
#
# The same layout is what the manager will produce at host join (its CA signs
# the agent and manager certificates); see docs/internals/http.md.  Nothing is
# passed through a shell: every value is quoted, and SERVER_CN is restricted to
# host-name characters because it is written into a certtool template.
set -eu

usage() {
    echo "usage: $0 DIR [SERVER_CN]" >&2
    exit 2
}

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
    usage
fi
dir=$1
cn=${2:-localhost}
[ -n "$dir" ] || usage

case "$cn" in
    ''|*[!A-Za-z0-9.-]*)
        echo "$0: server CN must be a host name ([A-Za-z0-9.-]), got '$cn'" >&2
        exit 2
        ;;
esac

command -v certtool >/dev/null 2>&1 || {
    echo "$0: certtool not found (install gnutls-bin)" >&2
    exit 1
}

# A relative DIR that starts with '-' must not look like an option.
case "$dir" in
    -*) dir="./$dir" ;;
esac

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"

tmpl="$dir/.template"
trap 'rm -f "$tmpl"' EXIT

# run_certtool: certtool with output only on failure.
run_certtool() {
    if ! out=$(certtool "$@" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "$0: certtool $1 failed" >&2
        exit 1
    fi
}

genkey() {
    run_certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile="$1"
}

# make_ca NAME CN
make_ca() {
    genkey "$dir/$1-key.pem"
    cat >"$tmpl" <<EOF
cn = "$2"
organization = "Strata test"
expiration_days = 3650
ca
cert_signing_key
crl_signing_key
EOF
    run_certtool --generate-self-signed --load-privkey="$dir/$1-key.pem" \
        --template="$tmpl" --outfile="$dir/$1.pem"
}

# make_cert NAME ISSUER TEMPLATE-BODY
make_cert() {
    genkey "$dir/$1-key.pem"
    printf '%s\n' "$3" >"$tmpl"
    run_certtool --generate-certificate --load-privkey="$dir/$1-key.pem" \
        --load-ca-certificate="$dir/$2.pem" --load-ca-privkey="$dir/$2-key.pem" \
        --template="$tmpl" --outfile="$dir/$1.pem"
}

client_template() {
    # $1 CN, $2 validity lines
    printf 'cn = "%s"\norganization = "Strata test"\n%s\ntls_www_client\nsigning_key\n' \
        "$1" "$2"
}

make_ca ca "Strata Test CA"
make_ca foreign-ca "Foreign Test CA"

make_cert server ca "$(printf 'cn = "%s"\norganization = "Strata test"\ndns_name = "localhost"\nip_address = "127.0.0.1"\nexpiration_days = 365\ntls_www_server\nsigning_key\nencryption_key\n' "$cn")"
make_cert client ca "$(client_template strata-client 'expiration_days = 365')"
make_cert other-client ca "$(client_template other-client 'expiration_days = 365')"
make_cert foreign-client foreign-ca "$(client_template strata-client 'expiration_days = 365')"
make_cert expired ca "$(client_template strata-client 'activation_date = "2020-01-01 00:00:00 UTC"
expiration_date = "2021-01-01 00:00:00 UTC"')"
make_cert revoked ca "$(client_template strata-client 'expiration_days = 365')"

printf 'crl_next_update = 365\ncrl_number = 1\n' >"$tmpl"
run_certtool --generate-crl --load-ca-privkey="$dir/ca-key.pem" \
    --load-ca-certificate="$dir/ca.pem" --load-certificate="$dir/revoked.pem" \
    --template="$tmpl" --outfile="$dir/crl.pem"

chmod 0644 "$dir"/*.pem
chmod 0600 "$dir"/*-key.pem
