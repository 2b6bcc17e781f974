#!/usr/bin/env bash
# Build the Strata test guest (kernel + busybox initramfs with qemu-ga) from
# Debian packages.
#
#   tools/build-guest.sh OUTDIR
#
# Writes OUTDIR/vmlinuz, OUTDIR/initramfs.cpio.gz and OUTDIR/guest.env
# (KERNEL=, INITRD=, KVER= lines, absolute paths, not shell-quoted: the
# script only accepts OUTDIR paths made of [A-Za-z0-9._/+,:@%=-]).
# OUTDIR/vmlinuz is the kernel's uncompressed ELF image, which QEMU boots
# through PVH (-kernel takes it like a bzImage); see STRATA_GUEST_PVH.
# Does nothing when OUTDIR/.stamp matches the candidate package versions and
# the hashes of this script and tools/guest/init (set STRATA_GUEST_FORCE=1 to
# rebuild anyway). See tools/guest/README.md.
#
# Environment:
#   STRATA_GUEST_KERNEL_META  kernel meta package (default linux-image-amd64;
#                             the cloud flavour has no AHCI driver)
#   STRATA_GUEST_PVH=0        ship the compressed bzImage as OUTDIR/vmlinuz
#                             instead of the ELF (slower: the guest then
#                             spends ~4 s under TCG unpacking an XZ kernel)
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

KERNEL_META=${STRATA_GUEST_KERNEL_META:-linux-image-amd64}
pkg_re='^[a-z0-9][a-z0-9.+-]+$'
[[ $KERNEL_META =~ $pkg_re ]] || die "bad STRATA_GUEST_KERNEL_META: $KERNEL_META"
PVH=${STRATA_GUEST_PVH:-1}
[[ $PVH == [01] ]] || die "STRATA_GUEST_PVH must be 0 or 1: $PVH"

# Modules /init loads, in this order; their dependencies are added before
# them automatically. Missing or built-in ones are skipped.
MODULES=(
	virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
	virtio_mmio virtio_blk failover net_failover virtio_net virtio_balloon
	virtio_console 8021q
	button evdev # ACPI power button -> /dev/input/event* for busybox acpid
	virtio_mem   # virtio-mem memory hotplug (optional)
	virtio_scsi  # virtio-scsi-pci controllers: scsi-cd
	cdrom sr_mod # CD-ROM drives (/dev/srN); /init sets autoclose=0 lockdoor=0
	# Last: /init loads these two with async_probe=1, and every insmod after
	# them would wait for their port probes (~0.6 s under TCG).
	ata_piix     # the pc machine's PIIX IDE controller: ide-cd on bus ide.N
	ahci         # q35's built-in AHCI controller: ide-cd on bus ide.N
)

for tool in apt-get apt-cache dpkg-deb ldd cpio gzip sha256sum find sort awk cp od dd; do
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
pvh=$PVH
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
# qemu-ga's guest-shutdown runs "/sbin/shutdown -P|-H|-r +0 MESSAGE", which
# busybox does not have: a small stand-in powers off, halts or reboots.
mkdir -p "$R/sbin"
cat >"$R/sbin/shutdown" <<'EOF'
#!/bin/sh
# /sbin/shutdown for qemu-ga (guest-shutdown): -r reboot, -H halt, else power off.
action=poweroff
for a in "$@"; do
	case $a in
	-r) action=reboot ;;
	-H) action=halt ;;
	esac
done
echo "STRATA-SHUTDOWN $action" >/dev/console 2>/dev/null
sync
exec "$action" -f
EOF
chmod 0755 "$R/sbin/shutdown"

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

# ---------------------------------------------------------------- kernel image
# With PVH, OUTDIR/vmlinuz is the uncompressed ELF vmlinux taken out of the
# bzImage. QEMU's -kernel loads an ELF that carries the Xen PVH entry note
# straight into guest RAM, so the guest skips the self-decompression (the
# generic kernel is XZ-compressed: ~4 s under TCG).
u32_at() { od -An -tu4 -j "$2" -N4 -- "$1" | tr -d ' \n'; }
extract_vmlinux() { # bzImage -> ELF; returns non-zero if it cannot
	local img=$1 out=$2 sects off len start want magic
	local -a dec
	[[ $(od -An -c -j $((0x202)) -N4 -- "$img" | tr -d ' \n') == HdrS ]] || return 1
	sects=$(od -An -tu1 -j $((0x1f1)) -N1 -- "$img" | tr -d ' \n')
	[[ $sects == 0 ]] && sects=4
	off=$(u32_at "$img" $((0x248)))  # payload_offset, from the protected-mode code
	len=$(u32_at "$img" $((0x24c)))  # payload_length, incl. a 4-byte size trailer
	[[ $sects =~ ^[0-9]+$ && $off =~ ^[0-9]+$ && $len =~ ^[0-9]+$ && $len -gt 4 ]] || return 1
	start=$(((sects + 1) * 512 + off))
	want=$(u32_at "$img" $((start + len - 4))) # uncompressed size
	magic=$(od -An -tx1 -j "$start" -N6 -- "$img" | tr -d ' \n')
	case $magic in
	fd377a585a00) dec=(xz -dc) ;;
	1f8b*) dec=(gzip -dc) ;;
	28b52ffd*) dec=(zstd -q -dc) ;;
	02214c18*) dec=(lz4 -q -dc) ;;
	*) return 1 ;;
	esac
	command -v "${dec[0]}" >/dev/null 2>&1 || return 1
	dd if="$img" iflag=skip_bytes,count_bytes skip="$start" count=$((len - 4)) \
		bs=1M status=none | "${dec[@]}" >"$out" || return 1
	[[ $(stat -c %s -- "$out") == "$want" ]] || return 1
	[[ $(od -An -tx1 -N4 -- "$out" | tr -d ' \n') == 7f454c46 ]] || return 1
}
KFORMAT=bzImage
if [[ $PVH == 1 ]]; then
	if ! grep -qx 'CONFIG_PVH=y' "$K/boot/config-$KVER" 2>/dev/null; then
		log "warning: $KPKG lacks CONFIG_PVH=y; shipping the bzImage"
	elif extract_vmlinux "$K/boot/vmlinuz-$KVER" "$WORK/vmlinuz"; then
		KFORMAT="ELF (PVH)"
	else
		log "warning: cannot extract vmlinux from the bzImage; shipping the bzImage"
	fi
fi
[[ $KFORMAT != bzImage ]] || cp -- "$K/boot/vmlinuz-$KVER" "$WORK/vmlinuz"

# ---------------------------------------------------------------- archive
find "$R" -exec touch -h -d @0 -- {} + 2>/dev/null || true
(
	cd -- "$R"
	find . -mindepth 1 -printf '%P\n' | sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible
) | gzip -9 -n >"$WORK/initramfs.cpio.gz"

mv -f -- "$WORK/vmlinuz" "$OUTDIR/vmlinuz"
mv -f -- "$WORK/initramfs.cpio.gz" "$OUTDIR/initramfs.cpio.gz"
printf 'KERNEL=%s\nINITRD=%s\nKVER=%s\n' \
	"$OUTDIR/vmlinuz" "$OUTDIR/initramfs.cpio.gz" "$KVER" >"$WORK/guest.env"
mv -f -- "$WORK/guest.env" "$OUTDIR/guest.env"
printf '%s\n' "$STAMP" >"$WORK/stamp"
mv -f -- "$WORK/stamp" "$OUTDIR/.stamp"

log "built $OUTDIR/vmlinuz ($KFORMAT, $(stat -c %s -- "$OUTDIR/vmlinuz") bytes) and $OUTDIR/initramfs.cpio.gz ($(stat -c %s -- "$OUTDIR/initramfs.cpio.gz") bytes), kernel $KVER"
