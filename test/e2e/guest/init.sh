#!/bin/sh
# /init of the e2e guest's initramfs: PID 1, run by busybox sh.
#
# The initramfs holds only busybox and a subset of the kernel's modules. The
# guest's userland is the HOST's own / shared read-only over virtio-9p (tag
# "hostroot"); we chroot into it, so every host binary (ipvsadm, iptables, ip,
# bash, the ravel binary, Go test tools) runs unchanged inside the guest.
#
# Contract with test/e2e/guest/run.sh, through the writable 9p share "e2eout"
# (a host directory):
#   job.sh     written by the host: what to run (sourced by bash in the chroot)
#   binds      optional, written by the host: host paths under /tmp to expose
#   started    written here once the chroot is ready (boot watchdog)
#   output.log the job's stdout+stderr (the host tails it live)
#   exit-code  the job's exit status, written last
# This process stays PID 1 in the initramfs root for the whole run: the
# kernel's module autoloader (call_usermodehelper) runs in PID 1's root, so it
# finds busybox modprobe and the module tree HERE, not in the chroot.

PATH=/bin:/sbin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Whatever goes wrong below, make the failure visible on the serial console
# (the host keeps it as console.log) and power off: a hung guest would only
# show up as the host's timeout.
exec >/dev/console 2>&1 </dev/null

say() { echo "e2e-init: $*"; }
die() {
	say "FATAL: $*"
	[ -d /newroot/run/e2e-out ] && echo "e2e-init: FATAL: $*" >>/newroot/run/e2e-out/output.log
	sync
	poweroff -f
	sleep 5
}

# The kernel runs this path to autoload modules (e.g. the nf_tables pieces
# that iptables-nft asks for by name). It is executed in PID 1's root, i.e.
# this initramfs, where busybox modprobe and /lib/modules live.
echo /sbin/modprobe >/proc/sys/kernel/modprobe

load() {
	# busybox modprobe follows modules.dep but not softdeps; callers order
	# the list so that soft dependencies come first.
	for m in "$@"; do
		modprobe "$m" 2>/dev/null || say "warning: modprobe $m failed"
	done
}

# The modules every scenario may use, loaded up front.
load_scenario_modules() {
	# crc32c_generic first: libcrc32c (a hard dependency of nf_conntrack, hence of
	# ip_vs) only has a *soft* dependency on the crc32c implementation and fails
	# to load without one; busybox modprobe ignores softdeps.
	load crc32c_generic libcrc32c nf_conntrack nf_nat nf_tables nft_compat nft_chain_nat
	# IPVS and every scheduler, so a scenario can use any of them without the
	# kernel autoloading (it would, but preloading makes failures obvious here).
	load ip_vs
	for f in "/lib/modules/$(uname -r)"/kernel/net/netfilter/ipvs/ip_vs_*.ko*; do
		[ -e "$f" ] || continue
		m=${f##*/}
		load "${m%%.ko*}"
	done
	load xt_ipvs xt_statistic xt_comment xt_mark xt_multiport xt_conntrack xt_MASQUERADE xt_addrtype
	# Links: dummy for VIPs, ipip (tunl0 in every namespace) for IPIP
	# forwarding, veth + bridge for the namespace topologies.
	load dummy ipip veth bridge
}

# --- 1. Reach the host's root filesystem -------------------------------------
# virtio_pci drives the virtio devices qemu exposes; 9pnet_virtio is the 9p
# transport over virtio; 9p is the filesystem. virtio_rng feeds the guest's
# entropy pool from the host so that getrandom() never blocks a Go binary.
load virtio_pci virtio_rng 9pnet_virtio 9p

# Kernel command line settings from run.sh.
E2E_IP= E2E_INIT=chroot E2E_LOWER= E2E_OUTPATH=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	e2e_ip=*) E2E_IP=${arg#e2e_ip=} ;;
	e2e_init=*) E2E_INIT=${arg#e2e_init=} ;;
	e2e_lower=*) E2E_LOWER=${arg#e2e_lower=} ;;
	e2e_outpath=*) E2E_OUTPATH=${arg#e2e_outpath=} ;;
	esac
done

# --- 1b. systemd as PID 1 (e2e_init=systemd) -------------------------------------
# For the scenarios that need a real service manager (test/e2e/run.sh runs them in
# a boot of their own): the root is a Debian root of the host's (e2e_lower=, e.g.
# packaging/debian-root.sh's debootstrap) under a writable tmpfs overlay, and
# systemd becomes PID 1 through switch_root. In it:
#   /host          the host's / (read-only): its tools, through 'chroot /host CMD'
#   the repository and the other paths in 'binds', bound at their own paths
#   $E2E_OUTPATH   the results share, at its host path (E2E_OUT)
#   e2e-job.service runs job.sh once the system is up, writes exit-code and
#                  powers off.
# The module tree goes into the overlay: PID 1's root (where the kernel's
# autoloader and systemd-modules-load look) no longer has this initramfs.
boot_systemd() {
	[ -n "$E2E_LOWER" ] || die "e2e_init=systemd needs e2e_lower=PATH (a root with systemd)"
	[ -n "$E2E_OUTPATH" ] || die "e2e_init=systemd needs e2e_outpath=PATH"
	load overlay
	mkdir -p /hostroot /ovl
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /hostroot ||
		die "cannot mount the host root (9p tag hostroot)"
	[ -x "/hostroot$E2E_LOWER/lib/systemd/systemd" ] || die "no systemd in $E2E_LOWER"
	mount -t tmpfs -o mode=0755 tmpfs /ovl
	mkdir -p /ovl/upper /ovl/work
	mount -t overlay overlay -o "lowerdir=/hostroot$E2E_LOWER,upperdir=/ovl/upper,workdir=/ovl/work" /newroot ||
		die "cannot mount the overlay on $E2E_LOWER"
	mkdir -p /newroot/host
	mount --move /hostroot /newroot/host
	# The binds first, the results share last: it often lies inside the repository.
	if [ -f "/newroot/host$E2E_OUTPATH/binds" ]; then
		while read -r p; do
			[ -n "$p" ] || continue
			mkdir -p "/newroot$p" && mount --bind "/newroot/host$p" "/newroot$p" || say "warning: cannot bind $p"
		done <"/newroot/host$E2E_OUTPATH/binds"
	fi
	mkdir -p "/newroot$E2E_OUTPATH"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 e2eout "/newroot$E2E_OUTPATH" ||
		die "cannot mount the results share (9p tag e2eout)"
	OUT=/newroot$E2E_OUTPATH
	[ -f "$OUT/job.sh" ] || die "no job.sh on the results share"
	mkdir -p /newroot/lib/modules
	cp -a "/lib/modules/$(uname -r)" /newroot/lib/modules/
	load_scenario_modules
	mkdir -p /newroot/usr/local/sbin
	cat >/newroot/usr/local/sbin/e2e-job <<-EOF
		#!/bin/sh
		# Written by the e2e initramfs (test/e2e/guest/init.sh): runs the host's job under systemd.
		: >$E2E_OUTPATH/started
		env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
			HOME=/root TERM=dumb LANG=C.UTF-8 E2E_OUT=$E2E_OUTPATH E2E_MODROOT=/ \\
			E2E_IN_GUEST=1 E2E_GUEST_INIT=systemd \\
			/bin/bash $E2E_OUTPATH/job.sh >>$E2E_OUTPATH/output.log 2>&1 </dev/null
		rc=\$?
		echo "\$rc" >$E2E_OUTPATH/exit-code.tmp && mv $E2E_OUTPATH/exit-code.tmp $E2E_OUTPATH/exit-code
		sync
		systemctl poweroff --force --force
	EOF
	chmod 0755 /newroot/usr/local/sbin/e2e-job
	cat >/newroot/etc/systemd/system/e2e-job.service <<-EOF
		[Unit]
		Description=e2e scenarios (test/e2e/guest/init.sh)
		After=multi-user.target
		[Service]
		Type=exec
		ExecStart=/usr/local/sbin/e2e-job
		StandardOutput=journal+console
		[Install]
		WantedBy=multi-user.target
	EOF
	mkdir -p /newroot/etc/systemd/system/multi-user.target.wants
	ln -s /etc/systemd/system/e2e-job.service /newroot/etc/systemd/system/multi-user.target.wants/
	# The guest's name, and no login prompt on the console the host reads.
	echo ravel-e2e-guest >/newroot/etc/hostname
	ln -sf /dev/null /newroot/etc/systemd/system/serial-getty@ttyS0.service
	ln -sf /dev/null /newroot/etc/systemd/system/getty@tty1.service
	# Static device nodes for modules; none is needed here, and it failed (leaving the system
	# "degraded" for no reason of the scenarios') in a root without kmod.
	ln -sf /dev/null /newroot/etc/systemd/system/kmod-static-nodes.service
	say "switching to systemd on $E2E_LOWER"
	exec switch_root /newroot /lib/systemd/systemd
}

[ "$E2E_INIT" = systemd ] && boot_systemd

mkdir -p /newroot /hosttmp
# msize: 9p's message size; the small default makes every read tiny and slow
# under emulation, 512 KiB cuts round trips (512000 is the most the virtio transport takes). cache=loose lets the guest cache
# pages and metadata of the (read-only, unchanging during the run) host root:
# process start-up, which is dominated by reading binaries and libraries, gets
# several times faster. The writable share below stays uncached so the host
# sees every write at once.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /newroot ||
	die "cannot mount the host root (9p tag hostroot)"
[ -x /newroot/bin/sh ] || die "host root mounted but has no /bin/sh"

# The guest gets its own tmpfs on /tmp (below), which hides the host's /tmp.
# Keep a handle on the host's /tmp first so that paths listed in 'binds' (a
# checkout under /tmp, say) can be exposed again at their own path.
mount --bind /newroot/tmp /hosttmp

# --- 2. Fresh kernel filesystems and writable scratch in the chroot ---------
# Through 9p we would see the HOST's /proc, /sys and /dev: mount the guest's.
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
# /tmp: scratch for scenarios. /run: 'ip netns add' needs a writable
# /run/netns (it bind-mounts namespace files there), and pid/lock files go
# here. Debian's /var/run is a symlink to /run; if a host has a real
# directory there, give it a tmpfs too.
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
if [ -d /newroot/var/run ] && [ ! -L /newroot/var/run ]; then
	mount -t tmpfs -o mode=0755 tmpfs /newroot/var/run
fi
# Some tools (iproute2 'ip netns', mount propagation in 'ip netns exec')
# expect / to be a shared mount point; the 9p root is a mount point, make it
# shared so namespaces created under /run/netns stay visible.
mount --make-rshared /newroot 2>/dev/null || true
# cgroup2, for tools that look at it; harmless if unused.
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null || true

# --- 3. The writable results share ------------------------------------------
mkdir -p /newroot/run/e2e-out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 e2eout /newroot/run/e2e-out ||
	die "cannot mount the results share (9p tag e2eout)"
OUT=/newroot/run/e2e-out
[ -f "$OUT/job.sh" ] || die "no job.sh on the results share"

# Host paths under /tmp that the job needs (see run.sh): bind them back.
if [ -f "$OUT/binds" ]; then
	while read -r p; do
		[ -n "$p" ] || continue
		case "$p" in /tmp/*) ;; *) say "warning: ignoring bind $p (not under /tmp)"; continue ;; esac
		if [ -e "/hosttmp/${p#/tmp/}" ]; then
			if ! { mkdir -p "/newroot$p" && mount --bind "/hosttmp/${p#/tmp/}" "/newroot$p"; }; then
				say "warning: cannot bind $p"
			fi
		else
			say "warning: $p does not exist on the host"
		fi
	done <"$OUT/binds"
fi

# The module tree for kmod's modprobe inside the chroot: the host has no
# /lib/modules/<guest kernel> (and / is read-only), so expose ours under
# /run/e2e-modroot; 'modprobe -d /run/e2e-modroot MOD' then works there.
mkdir -p /newroot/run/e2e-modroot/lib/modules
mount --bind /lib/modules /newroot/run/e2e-modroot/lib/modules

# --- 4. Kernel modules the scenarios need (see load_scenario_modules) -------
load_scenario_modules

ip link set lo up
hostname ravel-e2e-guest

# --- 4b. Optional network to the host -------------------------------------------
# Only when run.sh gave the guest a NIC (E2E_GUEST_NET=user: QEMU's user-mode
# network, for scenarios that follow the kube-apiserver on the host's loopback):
# e2e_ip=ADDR/PREFIX on the kernel command line. No default route: the slirp
# subnet (the host's loopback at its .2) is all the guest needs and can reach.
# Scenario namespaces get there through test/e2e/lib-kube.sh's kube_link.
# The NIC is renamed from eth0 to slirp0: on this 6.1 kernel 'ip link add eth0
# netns NS type veth ...' (lib.sh's mk_link) looks the name up in the CALLER's
# namespace and fails with "File exists" when the root namespace has an eth0.
if [ -n "$E2E_IP" ]; then
	load virtio_net
	if ip link set eth0 name slirp0 && ip link set slirp0 up && ip addr add "$E2E_IP" dev slirp0; then
		say "slirp0 $E2E_IP"
	else
		say "warning: cannot configure the NIC (eth0 -> slirp0) with $E2E_IP"
	fi
fi

: >"$OUT/started"
say "chroot ready, running job"

# --- 5. Run the job -----------------------------------------------------------
# A clean environment: HOME is read-only in the guest, so point it at /tmp.
chroot /newroot /usr/bin/env -i \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/tmp TERM=dumb LANG=C.UTF-8 \
	E2E_OUT=/run/e2e-out E2E_MODROOT=/run/e2e-modroot E2E_IN_GUEST=1 \
	/bin/bash /run/e2e-out/job.sh >>"$OUT/output.log" 2>&1 </dev/null
rc=$?
say "job exited with $rc"
# exit-code is written last, through a rename, so the host never reads a
# partial file; its presence means "the job finished".
echo "$rc" >"$OUT/exit-code.tmp" && mv "$OUT/exit-code.tmp" "$OUT/exit-code"
sync
poweroff -f
