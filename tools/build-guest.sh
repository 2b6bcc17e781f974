#!/usr/bin/env bash
# Build the Strata test guest (kernel + busybox initramfs with qemu-ga) from
# Debian packages.
#
#   tools/build-guest.sh OUTDIR
#
# Writes OUTDIR/vmlinuz, OUTDIR/initramfs.cpio.gz and OUTDIR/guest.env
# (KERNEL=, INITRD=, KVER= lines, absolute paths, not shell-quoted: the
# script only accepts OUTDIR paths made of [A-Za-z0-9._/+,:@%=-]).
# Does nothing when OUTDIR/.stamp matches the candidate package versions and
# the hashes of this script and tools/guest/init (set STRATA_GUEST_FORCE=1 to
# rebuild anyway). See tools/guest/README.md.
#
# Environment:
#   STRATA_GUEST_KERNEL_META  kernel meta package (default linux-image-cloud-amd64)
#   STRATA_GUEST_FORCE=1      rebuild even if up to date
set -euo pipefail
umask 022
export LC_ALL=C

prog=${0##*/}
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}
log() { printf '%s: %s\n' "$prog" "$*" >&2; }

if [[ $# -ne 1 || -z $1 || $1 == -* ]]; then
	printf 'usage: %s OUTDIR\n' "$prog" >&2
	exit 2
fi

safe_path_re='^[A-Za-z0-9._/+,:@%=-]+$'
[[ $1 =~ $safe_path_re ]] || die "OUTDIR may only contain [A-Za-z0-9._/+,:@%=-]: $1"
mkdir -p -- "$1"
OUTDIR=$(cd -- "$1" && pwd -P)
[[ $OUTDIR =~ $safe_path_re ]] || die "resolved OUTDIR has unsupported characters: $OUTDIR"

SCRIPT_PATH=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)/${BASH_SOURCE[0]##*/}
INIT_SRC=$(dirname -- "$SCRIPT_PATH")/guest/init
[[ -f $INIT_SRC ]] || die "missing $INIT_SRC"

KERNEL_META=${STRATA_GUEST_KERNEL_META:-linux-image-cloud-amd64}
pkg_re='^[a-z0-9][a-z0-9.+-]+$'
[[ $KERNEL_META =~ $pkg_re ]] || die "bad STRATA_GUEST_KERNEL_META: $KERNEL_META"

# Modules /init loads, in this order; their dependencies are added before
# them automatically. Missing or built-in ones are skipped.
MODULES=(
	virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
	virtio_mmio virtio_blk failover net_failover virtio_net virtio_balloon
	virtio_console 8021q
	button evdev # ACPI power button -> /dev/input/event* for busybox acpid
	virtio_mem   # virtio-mem memory hotplug (optional)
)

for tool in apt-get apt-cache dpkg-deb ldd cpio gzip sha256sum find sort awk cp; do
	command -v "$tool" >/dev/null 2>&1 || die "needs '$tool' on the host"
done

# One build at a time per OUTDIR.
exec 9>"$OUTDIR/.build.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi

# ---------------------------------------------------------------- versions
kernel_pkg_of_meta() {
	apt-cache depends "$KERNEL_META" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ && !n { print $2; n = 1 }'
}
candidates() { # prints "package version" for each argument, one apt-cache call
	apt-cache policy "$@" 2>/dev/null |
		awk '/^[^ \t].*:$/ { p = substr($0, 1, length($0) - 1) }
		     $1 == "Candidate:" && p != "" { print p, $2; p = "" }'
}

KPKG=$(kernel_pkg_of_meta || true)
if [[ -z $KPKG ]]; then
	[[ $EUID -eq 0 ]] || die "apt-cache knows no $KERNEL_META; run 'apt-get update' as root"
	log "apt lists do not know $KERNEL_META; running apt-get update"
	apt-get update -qq
	KPKG=$(kernel_pkg_of_meta || true)
	[[ -n $KPKG ]] || die "cannot resolve the kernel package of $KERNEL_META"
fi
[[ $KPKG =~ $pkg_re ]] || die "unexpected kernel package name: $KPKG"
KVER=${KPKG#linux-image-}

declare -A VER
while read -r p v; do
	VER[$p]=$v
done < <(candidates "$KPKG" busybox-static qemu-guest-agent || true)
for p in "$KPKG" busybox-static qemu-guest-agent; do
	v=${VER[$p]:-}
	[[ -n $v && $v != "(none)" ]] || die "no installable version of $p"
	[[ $v =~ ^[A-Za-z0-9.+:~-]+$ ]] || die "unexpected version string for $p: $v"
	VER[$p]=$v
done

sha() { sha256sum -- "$1" | awk '{ print $1 }'; }
STAMP="format=1
kernel=$KPKG=${VER[$KPKG]}
busybox-static=${VER[busybox-static]}
qemu-guest-agent=${VER[qemu-guest-agent]}
modules=${MODULES[*]}
init=$(sha "$INIT_SRC")
script=$(sha "$SCRIPT_PATH")"

if [[ ${STRATA_GUEST_FORCE:-0} != 1 && -f $OUTDIR/.stamp && -f $OUTDIR/vmlinuz &&
	-f $OUTDIR/initramfs.cpio.gz && -f $OUTDIR/guest.env ]] &&
	[[ $(<"$OUTDIR/.stamp") == "$STAMP" ]]; then
	log "up to date: $OUTDIR ($KPKG ${VER[$KPKG]})"
	exit 0
fi

# ---------------------------------------------------------------- download
WORK=$(mktemp -d -- "$OUTDIR/.build.XXXXXX")
cleanup() { rm -rf -- "$WORK"; }
trap cleanup EXIT
mkdir -- "$WORK/debs" "$WORK/x" "$WORK/root"

log "downloading $KPKG=${VER[$KPKG]} busybox-static=${VER[busybox-static]} qemu-guest-agent=${VER[qemu-guest-agent]}"
apt_opts=(-q)
# apt's _apt user cannot write into our 0700 temp dir; download as root.
[[ $EUID -ne 0 ]] || apt_opts+=(-o APT::Sandbox::User=root)
(
	cd -- "$WORK/debs"
	apt-get "${apt_opts[@]}" download \
		"$KPKG=${VER[$KPKG]}" \
		"busybox-static=${VER[busybox-static]}" \
		"qemu-guest-agent=${VER[qemu-guest-agent]}" >/dev/null
)

for deb in "$WORK"/debs/*.deb; do
	name=$(dpkg-deb -f "$deb" Package)
	case $name in
	"$KPKG") dest=kernel ;;
	busybox-static) dest=busybox ;;
	qemu-guest-agent) dest=qga ;;
	*) continue ;;
	esac
	dpkg-deb -x "$deb" "$WORK/x/$dest"
done
for d in kernel busybox qga; do
	[[ -d $WORK/x/$d ]] || die "download of the $d package failed"
done

R=$WORK/root
K=$WORK/x/kernel
MODDIR=$K/lib/modules/$KVER
[[ -f $K/boot/vmlinuz-$KVER ]] || die "no boot/vmlinuz-$KVER in $KPKG"
[[ -d $MODDIR ]] || die "no lib/modules/$KVER in $KPKG"

mkdir -p -- "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,mnt,var/log} \
	"$R/lib/modules/strata" "$R/etc/strata" "$R/usr/share/udhcpc" "$R/etc/acpi/PWRF"
chmod 1777 "$R/tmp"
ln -s ../run "$R/var/run"

# ---------------------------------------------------------------- busybox + init
install -m 0755 -- "$WORK/x/busybox/bin/busybox" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
install -m 0755 -- "$INIT_SRC" "$R/init"
# /dev/console in the archive gives /init a console from the first instruction.
mknod -m 0600 "$R/dev/console" c 5 1 2>/dev/null || log "note: cannot mknod dev/console (not root); /init reopens it"

# ---------------------------------------------------------------- modules
declare -A MODFILE=() # module name -> path in the package
while IFS= read -r -d '' f; do
	b=${f##*/}
	b=${b%%.ko*}
	MODFILE[${b//-/_}]=$f
done < <(find "$MODDIR" -type f -name '*.ko*' -print0)

BUILTIN=" "
if [[ -f $MODDIR/modules.builtin ]]; then
	while IFS= read -r line; do
		b=${line##*/}
		b=${b%%.ko*}
		BUILTIN+="${b//-/_} "
	done <"$MODDIR/modules.builtin"
fi

# Decompress (if needed) into $WORK/mod/<name>.ko.
mkdir -- "$WORK/mod"
unpack_module() {
	local src=$1 dst=$2
	case $src in
	*.ko) cp -- "$src" "$dst" ;;
	*.ko.xz) xz -dc -- "$src" >"$dst" ;;
	*.ko.zst) zstd -q -dc -- "$src" >"$dst" ;;
	*.ko.gz) gzip -dc -- "$src" >"$dst" ;;
	*) die "unknown module format: $src" ;;
	esac
}
module_deps() { # the depends= field of .modinfo, comma separated
	tr '\0' '\n' <"$1" | awk 'index($0, "depends=") == 1 && !n { print substr($0, 9); n = 1 }'
}

ORDER=()
declare -A SEEN=()
visit() {
	local m=${1//-/_} dep deps
	[[ $m =~ ^[A-Za-z0-9_]+$ ]] || die "unexpected module name: $m"
	[[ -z ${SEEN[$m]:-} ]] || return 0
	SEEN[$m]=1
	if [[ -z ${MODFILE[$m]:-} ]]; then
		if [[ $BUILTIN == *" $m "* ]]; then
			log "module $m: built into the kernel"
		else
			log "warning: module $m: not in $KPKG, skipped"
		fi
		return 0
	fi
	unpack_module "${MODFILE[$m]}" "$WORK/mod/$m.ko"
	deps=$(module_deps "$WORK/mod/$m.ko")
	local IFS=,
	for dep in $deps; do
		[[ -n $dep ]] && visit "$dep"
	done
	ORDER+=("$m")
}
for m in "${MODULES[@]}"; do
	visit "$m"
done
for m in "${ORDER[@]}"; do
	install -m 0644 -- "$WORK/mod/$m.ko" "$R/lib/modules/strata/$m.ko"
done
printf '%s\n' "${ORDER[@]}" >"$R/etc/strata/modules"
log "modules (load order): ${ORDER[*]}"

# ---------------------------------------------------------------- qemu-ga
QGA=$WORK/x/qga/usr/sbin/qemu-ga
[[ -x $QGA ]] || die "qemu-ga not found in qemu-guest-agent package"
install -m 0755 -- "$QGA" "$R/usr/sbin/qemu-ga"

ldd_paths() { # absolute paths ldd resolves, one per line; fails on "not found"
	local out
	out=$(ldd "$1") || return 1
	if grep -q 'not found' <<<"$out"; then
		return 1
	fi
	awk '{ for (i = 1; i <= NF; i++) if (substr($i, 1, 1) == "/") { print $i; break } }' <<<"$out"
}
if ! LIBS=$(ldd_paths "$QGA"); then
	[[ $EUID -eq 0 ]] || die "qemu-ga's libraries are missing on the host; install qemu-guest-agent"
	log "host lacks qemu-ga's libraries; installing qemu-guest-agent"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-guest-agent >/dev/null
	LIBS=$(ldd_paths "$QGA") || die "ldd still reports missing libraries for qemu-ga"
fi
nlibs=0
while IFS= read -r lib; do
	[[ -n $lib ]] || continue
	[[ $lib =~ $safe_path_re ]] || die "unexpected library path: $lib"
	mkdir -p -- "$R${lib%/*}"
	cp -L -- "$lib" "$R$lib"
	nlibs=$((nlibs + 1))
done <<<"$LIBS"
log "qemu-ga: copied $nlibs libraries (incl. the dynamic loader) from the host"

# ---------------------------------------------------------------- config files
cat >"$R/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
# busybox acpid: ACPI power button (button/power PWRF 00000080)
echo "STRATA-POWEROFF" >/dev/console 2>/dev/null
[ -z "$STRATA_ALSO_TTYS0" ] || echo "STRATA-POWEROFF" >/dev/ttyS0 2>/dev/null
sync
poweroff -f
EOF
chmod 0755 "$R/etc/acpi/PWRF/00000080"
# Action map busybox acpid reads: event name -> file under /etc/acpi.
printf '%s\n' 'PWRF PWRF/00000080' >"$R/etc/acpid.conf"

cat >"$R/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# udhcpc event script for the Strata test guest.
[ -n "$1" ] || exit 1
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface" 2>/dev/null
	ip link set dev "$interface" up
	;;
bound | renew)
	if [ -n "$mask" ]; then
		cidr="$ip/$mask"
	else
		cidr="$ip/24"
	fi
	ip -4 addr flush dev "$interface" 2>/dev/null
	ip addr add "$cidr" ${broadcast:+broadcast "$broadcast"} dev "$interface"
	if [ -n "$router" ]; then
		while ip route del default dev "$interface" 2>/dev/null; do :; done
		for r in $router; do
			ip route add default via "$r" dev "$interface" && break
		done
	fi
	: >/etc/resolv.conf.tmp
	[ -n "$domain" ] && echo "search $domain" >>/etc/resolv.conf.tmp
	for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf.tmp; done
	mv /etc/resolv.conf.tmp /etc/resolv.conf
	echo "STRATA-NET $interface $ip" >/dev/console
	[ -z "$STRATA_ALSO_TTYS0" ] || echo "STRATA-NET $interface $ip" >/dev/ttyS0 2>/dev/null
	;;
esac
exit 0
EOF
chmod 0755 "$R/usr/share/udhcpc/default.script"

printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
printf '%s\n' 'root:x:0:' >"$R/etc/group"
printf '%s\n' '127.0.0.1 localhost' >"$R/etc/hosts"

# ---------------------------------------------------------------- archive
find "$R" -exec touch -h -d @0 -- {} + 2>/dev/null || true
(
	cd -- "$R"
	find . -mindepth 1 -printf '%P\n' | sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible
) | gzip -9 -n >"$WORK/initramfs.cpio.gz"
cp -- "$K/boot/vmlinuz-$KVER" "$WORK/vmlinuz"

mv -f -- "$WORK/vmlinuz" "$OUTDIR/vmlinuz"
mv -f -- "$WORK/initramfs.cpio.gz" "$OUTDIR/initramfs.cpio.gz"
printf 'KERNEL=%s\nINITRD=%s\nKVER=%s\n' \
	"$OUTDIR/vmlinuz" "$OUTDIR/initramfs.cpio.gz" "$KVER" >"$WORK/guest.env"
mv -f -- "$WORK/guest.env" "$OUTDIR/guest.env"
printf '%s\n' "$STAMP" >"$WORK/stamp"
mv -f -- "$WORK/stamp" "$OUTDIR/.stamp"

log "built $OUTDIR/vmlinuz and $OUTDIR/initramfs.cpio.gz ($(stat -c %s -- "$OUTDIR/initramfs.cpio.gz") bytes), kernel $KVER"
