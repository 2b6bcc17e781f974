#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages Strata builds and runs with.
# Only Debian's archive is used.  Safe to run again: installs what is missing.
set -eu
pkgs=(
    # build
    build-essential meson ninja-build pkg-config
    # libraries (see README: each dependency is chosen, not accumulated)
    libjansson-dev libmicrohttpd-dev libcurl4-gnutls-dev libsqlite3-dev libgnutls28-dev
    libcmocka-dev
    # the engine and the switch
    qemu-system-x86 qemu-utils openvswitch-switch
    # NAT networks: DHCP and masquerading (docs/network.md)
    dnsmasq-base nftables
    # test guest build (tools/build-guest.sh) and tests
    busybox-static cpio gzip qemu-guest-agent kmod gnutls-bin curl jq socat iproute2 procps
    python3
)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
