#!/usr/bin/env bash
# Build (or reuse) the kernel + initramfs of the e2e QEMU guest.
#
#   bash test/e2e/guest/build.sh      -> prints the cache directory on stdout
#
# The machine's own kernel has no IPVS, dummy or ipip driver; a stock Debian
# kernel booted under QEMU's software emulation has them all as modules.
#
# Result, cached OUTSIDE the clone so that every checkout and every run on the
# same machine shares it:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/ravel/guest/<kver>-<hash>/{kernel,initrd.gz,kver}
# ('kernel' is the uncompressed vmlinux, booted through PVH; see below)
# where <hash> covers this script and init.sh: changing either rebuilds. A
# warm call only checks that directory and returns in well under a second
# (plus the apt-cache look-up of the kernel version).
#
# Environment:
#   E2E_KERNEL_VERSION  force a kernel ABI name, e.g. 6.1.0-56-amd64
#   E2E_GUEST_CACHE     cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/ravel/guest)
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

FALLBACK_KVER=6.1.0-56-amd64
CACHE_ROOT=${E2E_GUEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/ravel/guest}
INIT=$E2E_GUEST_DIR/init.sh

# Kernel modules the guest needs, as directories (every module under them)
# and as names. Their hard dependencies are added from modules.dep.
MODULE_DIRS=(
	kernel/net/netfilter      # nf_conntrack, nf_nat, nf_tables, xt_*, and ipvs/ (ip_vs + all schedulers)
	kernel/net/ipv4/netfilter # iptables (legacy) tables, nft IPv4 bits
	kernel/net/ipv6/netfilter
	kernel/net/bridge         # bridge + br_netfilter
	kernel/net/sched          # tc qdiscs/classifiers (netem etc.), for later scenarios
	kernel/net/9p             # 9pnet + 9pnet_virtio: the 9p transport
	kernel/fs/9p              # the 9p filesystem
	kernel/drivers/virtio     # virtio_pci and friends
)
MODULE_NAMES=(
	ipip tunnel4 ip_tunnel ip_gre gre fou ip6_tunnel tunnel6 sit
	dummy veth macvlan ipvlan vxlan tun 8021q
	virtio_net virtio_console virtio_rng
	# libcrc32c only softdepends on a crc32c implementation; pull the
	# generic one in explicitly (the guest loads it before libcrc32c).
	crc32c_generic libcrc32c
	overlay af_packet
)

# --- kernel version -----------------------------------------------------------
# The ABI name that Debian's linux-image-amd64 meta package depends on right
# now (the archive only keeps that one); fall back to the known-good one.
resolve_kver() {
	if [[ -n ${E2E_KERNEL_VERSION:-} ]]; then
		echo "$E2E_KERNEL_VERSION"
		return
	fi
	local v
	v=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n1)
	if [[ -z $v ]]; then
		# No apt lists yet (fresh machine): fetch them once and ask again.
		e2e_apt_get update >/dev/null 2>&1 || true
		v=$(apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n1)
	fi
	echo "${v:-$FALLBACK_KVER}"
}

KVER=$(resolve_kver)
HASH=$(cat "$INIT" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
OUT=$CACHE_ROOT/$KVER-$HASH

# Warm path: a complete build is marked by the 'kver' file, written last.
if [[ -s $OUT/kver && -s $OUT/kernel && -s $OUT/initrd.gz ]]; then
	e2e_log "guest: reusing $OUT"
	echo "$OUT"
	exit 0
fi

# --- cold path ----------------------------------------------------------------
e2e_ensure_packages
start=$SECONDS
mkdir -p "$CACHE_ROOT/debs"

# apt-get download writes into the current directory, and as root it warns
# that the _apt sandbox user cannot write there; harmless, silenced.
fetch_deb() {
	local pkg=linux-image-$1
	(cd "$CACHE_ROOT/debs" && e2e_apt_get download "$pkg" >/dev/null 2>&1) && return 0
	# Stale lists can name a .deb the mirror no longer has: refresh, retry.
	e2e_apt_get update >/dev/null 2>&1 || true
	(cd "$CACHE_ROOT/debs" && e2e_apt_get download "$pkg" >/dev/null 2>&1)
}
deb=$(ls -t "$CACHE_ROOT"/debs/linux-image-"$KVER"_*.deb 2>/dev/null | head -n1 || true)
if [[ -z $deb ]]; then
	e2e_log "guest: downloading linux-image-$KVER"
	fetch_deb "$KVER" || e2e_die "cannot download linux-image-$KVER (apt-get download)"
	deb=$(ls -t "$CACHE_ROOT"/debs/linux-image-"$KVER"_*.deb | head -n1)
fi
# Keep only the .deb in use; each is ~70 MB.
for d in "$CACHE_ROOT"/debs/linux-image-*.deb; do
	[[ $d == "$deb" ]] || rm -f "$d"
done

WORK=$(mktemp -d "$CACHE_ROOT/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

e2e_log "guest: unpacking $(basename "$deb")"
dpkg -x "$deb" "$WORK/pkg"
MODDIR=$WORK/pkg/lib/modules/$KVER
[[ -d $MODDIR ]] || e2e_die "$deb has no lib/modules/$KVER"
# The package ships no modules.dep (Debian generates it at install time):
# generate it for the unpacked tree, to compute dependency closures.
depmod -b "$WORK/pkg" "$KVER"

# --- module subset: the requested modules plus their hard dependencies --------
# modules.dep lines are "kernel/a/b.ko: kernel/c/d.ko ..." and already list the
# full transitive dependencies of each module.
{
	for d in "${MODULE_DIRS[@]}"; do
		[[ -d $MODDIR/$d ]] && (cd "$MODDIR" && find "$d" -name '*.ko*')
	done
	for n in "${MODULE_NAMES[@]}"; do
		# Names use '_' but files may use '-' (crc32c-intel.ko ...).
		f=$(awk -F: -v n="$n" '{
			b=$1; sub(/.*\//, "", b); sub(/\.ko.*/, "", b); gsub(/-/, "_", b)
			if (b == n) { print $1; exit }
		}' "$MODDIR/modules.dep")
		if [[ -n $f ]]; then
			echo "$f"
		elif ! grep -Eq "/${n}\.ko" "$MODDIR/modules.builtin"; then
			e2e_log "guest: warning: module $n is neither modular nor built in"
		fi
	done
} | sort -u >"$WORK/roots"
awk -F': *' 'NR==FNR { want[$1]=1; next }
	($1 in want) { print $1; n=split($2, deps, " "); for (i=1; i<=n; i++) print deps[i] }' \
	"$WORK/roots" "$MODDIR/modules.dep" | sort -u >"$WORK/modules"

# --- initramfs ----------------------------------------------------------------
ROOT=$WORK/initramfs
mkdir -p "$ROOT"/{bin,sbin,proc,sys,dev,newroot,hosttmp,lib/modules/"$KVER"}
(cd "$MODDIR" && xargs -a "$WORK/modules" cp --parents -t "$ROOT/lib/modules/$KVER")
cp "$MODDIR"/modules.{order,builtin,builtin.modinfo} "$ROOT/lib/modules/$KVER/"
depmod -b "$ROOT" "$KVER"

# A statically linked busybox: the initramfs has no libc. Debian's
# busybox-static installs it as /bin/busybox.
BUSYBOX=$(dpkg -L busybox-static | grep -E '/bin/busybox$' | head -n1)
[[ -n $BUSYBOX && -x $BUSYBOX ]] || e2e_die "busybox-static's binary not found"
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$ROOT/bin/busybox" --list); do
	[[ $applet == busybox ]] && continue
	ln -sf busybox "$ROOT/bin/$applet"
done
# modprobe is announced to the kernel as /sbin/modprobe (see init.sh).
ln -sf ../bin/busybox "$ROOT/sbin/modprobe"
install -m 0755 "$INIT" "$ROOT/init"
# The kernel opens /dev/console before running /init; without the node the
# first messages of init are lost (devtmpfs is only mounted by init itself).
mknod -m 600 "$ROOT/dev/console" c 5 1 2>/dev/null || true

(cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -6 >"$WORK/initrd.gz"

# --- kernel -----------------------------------------------------------------------
# The bzImage decompresses itself (xz) before starting, which under software
# emulation costs ~10 s of every boot. The kernel is built with CONFIG_PVH,
# so QEMU can boot the uncompressed ELF vmlinux directly through its PVH entry
# point: decompress it once here (what the kernel's scripts/extract-vmlinux
# does: find the compressed payload's magic inside the bzImage and unpack from
# there; xz complains about the trailing bytes after the payload, ignored).
# Anything unexpected falls back to the bzImage, which always boots.
BZ=$WORK/pkg/boot/vmlinuz-$KVER
cp "$BZ" "$WORK/kernel"
if grep -q '^CONFIG_PVH=y' "$WORK/pkg/boot/config-$KVER" 2>/dev/null; then
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$BZ" | head -n1 | cut -d: -f1 || true)
	if [[ -n $off ]]; then
		tail -c +"$((off + 1))" "$BZ" | xz -dc >"$WORK/vmlinux" 2>/dev/null || true
		if [[ $(head -c4 "$WORK/vmlinux" 2>/dev/null | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then
			mv "$WORK/vmlinux" "$WORK/kernel"
		else
			e2e_log "guest: warning: could not extract vmlinux; booting the bzImage (slower)"
		fi
	fi
fi

# Publish atomically: build next to the final place, then rename.
STAGE=$CACHE_ROOT/.stage-$KVER-$HASH-$$
rm -rf "$STAGE"
mkdir -p "$STAGE"
mv "$WORK/kernel" "$WORK/initrd.gz" "$STAGE/"
cp "$WORK/modules" "$STAGE/modules.list"
echo "$KVER" >"$STAGE/kver"
rm -rf "$OUT"
mv "$STAGE" "$OUT"

# Old builds (other hashes or kernels) are dead weight: keep the newest three.
ls -dt "$CACHE_ROOT"/*-amd64-* 2>/dev/null | tail -n +4 | xargs -r rm -rf

e2e_log "guest: built $OUT in $((SECONDS - start))s ($(wc -l <"$WORK/modules") modules, initrd $(du -h "$OUT/initrd.gz" | cut -f1))"
echo "$OUT"
