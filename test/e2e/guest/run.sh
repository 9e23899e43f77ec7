#!/usr/bin/env bash
# Boot the e2e guest once and run one host script inside it, as root.
#
#   bash test/e2e/guest/run.sh /abs/path/to/script.sh [ARGS...]
#
# The guest's root is the host's / (read-only, over 9p), so SCRIPT and
# everything it calls are the host's own files, seen at the same paths. The
# script's stdout+stderr stream to this process's stdout as the guest writes
# them; this process exits with the script's exit status.
#
# Inside the guest the script gets:
#   - root, a chroot of the host's / with fresh /proc /sys /dev, tmpfs on /tmp
#     and /run (so 'ip netns add' / 'ip netns exec' work), HOME=/tmp
#   - $E2E_OUT: a writable directory that IS a host directory (the run's
#     results dir, see E2E_OUT_DIR); files written there survive the guest
#   - $E2E_MODROOT: 'modprobe -d "$E2E_MODROOT" MOD' loads a guest module
#   - $E2E_REPO: the repository root; the working directory is $E2E_REPO
#   - modules loaded: ip_vs and every ip_vs_* scheduler, nf_conntrack,
#     nf_nat, nf_tables, dummy, ipip, veth, bridge (see init.sh)
#   - every E2E_* and RAVEL_* variable of this process's environment
#
# Environment:
#   E2E_TIMEOUT       whole run, seconds (default 1200): the guest is killed after
#   E2E_BOOT_TIMEOUT  seconds until the guest must have reached the job (default 300)
#   E2E_OUT_DIR       host results dir (default: a new test/e2e/.out/run.XXXXXX)
#   E2E_GUEST_MEM     guest memory, MiB (default 1536)
#   E2E_GUEST_CPUS    guest vCPUs (default 2)
#   E2E_GUEST_IMAGE   a directory from build.sh to use as is (default: run build.sh)
#   E2E_GUEST_BINDS   extra host paths under /tmp to expose in the guest (':'-separated)
#   E2E_GUEST_INIT    chroot (default): the initramfs stays PID 1 and runs the job in a
#                     chroot of the host's /; systemd: systemd is PID 1 over a writable
#                     overlay of E2E_GUEST_ROOT and runs the job as a unit once the system
#                     is up (see init.sh's boot_systemd); the host's / is at /host there
#   E2E_GUEST_ROOT    with E2E_GUEST_INIT=systemd: a host directory holding a root file
#                     system with systemd (e.g. the one packaging/debian-root.sh makes)
#   E2E_GUEST_NET     none (default): no network device at all; user: one NIC on
#                     QEMU's user-mode network, through which the guest reaches the
#                     host's 127.0.0.1 at 192.168.76.2 (test/e2e/run.sh sets it when a
#                     scenario needs the host's kube-apiserver); the guest's NIC is
#                     slirp0 (not eth0, see init.sh), 192.168.76.15/24, no default route
#
# Exit status: the script's; 124 if the run timed out; 125 if the guest died,
# never booted, or could not be started.
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

(($# >= 1)) || e2e_die "usage: $0 SCRIPT [ARGS...]"
SCRIPT=$(realpath -e "$1") || e2e_die "no such script: $1"
shift

TIMEOUT=${E2E_TIMEOUT:-1200}
BOOT_TIMEOUT=${E2E_BOOT_TIMEOUT:-300}
MEM=${E2E_GUEST_MEM:-1536}
CPUS=${E2E_GUEST_CPUS:-2}
NET=${E2E_GUEST_NET:-none}
INIT=${E2E_GUEST_INIT:-chroot}
case "$INIT" in
chroot) ;;
systemd)
	[[ -x ${E2E_GUEST_ROOT:-}/lib/systemd/systemd ]] ||
		e2e_die "E2E_GUEST_INIT=systemd needs E2E_GUEST_ROOT, a root with /lib/systemd/systemd (got '${E2E_GUEST_ROOT:-}')"
	E2E_GUEST_ROOT=$(realpath "$E2E_GUEST_ROOT")
	;;
*) e2e_die "E2E_GUEST_INIT must be chroot or systemd, not '$INIT'" ;;
esac

e2e_ensure_packages qemu-system-x86

if [[ -n ${E2E_GUEST_IMAGE:-} ]]; then
	IMAGE=$E2E_GUEST_IMAGE
else
	IMAGE=$(bash "$E2E_GUEST_DIR/build.sh")
fi
[[ -s $IMAGE/kernel && -s $IMAGE/initrd.gz ]] || e2e_die "no guest image in '$IMAGE'"

if [[ -n ${E2E_OUT_DIR:-} ]]; then
	OUT=$E2E_OUT_DIR
	mkdir -p "$OUT"
else
	mkdir -p "$E2E_DIR/.out"
	# Keep the ten newest results of standalone runs.
	ls -dt "$E2E_DIR"/.out/run.* 2>/dev/null | tail -n +10 | xargs -r rm -rf || true # none yet: ls fails
	OUT=$(mktemp -d "$E2E_DIR/.out/run.XXXXXX")
fi
OUT=$(realpath "$OUT")
rm -f "$OUT"/{job.sh,binds,started,output.log,exit-code,exit-code.tmp,console.log}

# --- paths the guest cannot see ------------------------------------------------
# The guest mounts its own tmpfs on /tmp and /run: a host path there is hidden
# unless init.sh binds it back from the host's /tmp (only /tmp is possible).
# Under systemd the root is another file system: every path the job needs is bound in.
binds=()
need_path() {
	local p=$1
	if [[ $INIT == systemd ]]; then
		binds+=("$p")
		return 0
	fi
	e2e_guest_invisible "$p" || return 0
	case "$p" in
	/tmp/*) binds+=("$p") ;;
	*) e2e_die "$p is under /run, /dev, /proc or /sys, which the guest cannot see; move it (e.g. under /var/tmp)" ;;
	esac
}
need_path "$E2E_REPO"
need_path "$(dirname "$SCRIPT")"
IFS=: read -r -a extra <<<"${E2E_GUEST_BINDS:-}"
for p in "${extra[@]}"; do [[ -n $p ]] && need_path "$(realpath -m "$p")"; done
if ((${#binds[@]})); then printf '%s\n' "${binds[@]}" >"$OUT/binds"; fi

# --- the job: what bash runs in the guest's chroot ------------------------------
{
	echo "# generated by test/e2e/guest/run.sh"
	# Forward E2E_* and RAVEL_* settings, except those the guest defines.
	while IFS= read -r name; do
		case "$name" in E2E_OUT | E2E_MODROOT | E2E_IN_GUEST | E2E_REPO) continue ;; esac
		printf 'export %s=%q\n' "$name" "${!name}"
	done < <(compgen -e | grep -E '^(E2E|RAVEL)_' || true)
	printf 'export E2E_REPO=%q\n' "$E2E_REPO"
	printf 'cd %q\n' "$E2E_REPO"
	# A script without its exec bit still runs, through bash.
	if [[ -x $SCRIPT ]]; then printf 'exec %q' "$SCRIPT"; else printf 'exec bash %q' "$SCRIPT"; fi
	for a in "$@"; do printf ' %q' "$a"; done
	echo
} >"$OUT/job.sh"
: >"$OUT/output.log"

# --- boot ---------------------------------------------------------------------
# -accel tcg,thread=multi: software emulation, one host thread per vCPU. This
#   machine's /dev/kvm is a paravirtual KVM that QEMU cannot use (MSR
#   assertion with -cpu host/max, or a hang in the boot ROM).
# -cpu max: all the features TCG emulates (incl. RDRAND for the entropy pool).
# -display none -monitor none -serial file:...: no terminal involvement at all
#   (CI has no stdin); the kernel console and init's messages go to
#   console.log, the job's output comes through the 9p share instead.
# -nic none: the guest needs no network to the outside, and must not have one.
#   Except with E2E_GUEST_NET=user (see nic below): scenarios that follow a
#   real kube-apiserver reach the one run.sh starts on the host's loopback.
# -no-reboot + panic=-1: a kernel panic (e.g. init dying) ends QEMU at once
#   instead of rebooting in a loop until the timeout.
# hostroot: the host's / read-only; multidevs=remap because / spans several
#   host filesystems whose inode numbers would otherwise collide in the guest.
# e2eout: the writable results directory.
# mitigations=off: speculative-execution mitigations only cost time here.
# E2E_GUEST_NET=user: QEMU's user-mode network (slirp, no privileges, nothing
# changes on the host). slirp maps its "host" address to the host's 127.0.0.1,
# where run.sh's kube-apiserver listens. The subnet is moved off slirp's default
# 10.0.2.0/24, which lib.sh's topo_ipip/topo_nat use for their second segment,
# so that an address in a scenario never means two things. The guest's address
# goes to init.sh on the kernel command line (e2e_ip=); it gets no default
# route, so the slirp subnet, i.e. the host's loopback, is all it can reach.
# ipv6=off: no router advertisements, no addresses the scenarios did not make.
append="console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off"
case "$NET" in
none) nic=(-nic none) ;;
user)
	nic=(-nic "user,model=virtio-net-pci,net=192.168.76.0/24,host=192.168.76.2,ipv6=off")
	append+=" e2e_ip=192.168.76.15/24"
	;;
*) e2e_die "E2E_GUEST_NET must be none or user, not '$NET'" ;;
esac
if [[ $INIT == systemd ]]; then
	append+=" e2e_init=systemd e2e_lower=$E2E_GUEST_ROOT e2e_outpath=$OUT"
fi

# shellcheck disable=SC2054 # commas are qemu's option syntax
qemu=(
	qemu-system-x86_64
	-accel tcg,thread=multi -cpu max -m "$MEM" -smp "$CPUS"
	-no-reboot -display none -monitor none -parallel none
	-serial "file:$OUT/console.log" "${nic[@]}"
	-kernel "$IMAGE/kernel" -initrd "$IMAGE/initrd.gz"
	-append "$append"
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$OUT,mount_tag=e2eout,security_model=none"
	-device virtio-rng-pci
)

QPID='' TPID=''
cleanup() {
	if [[ -n $QPID ]]; then kill "$QPID" 2>/dev/null || true; fi
	if [[ -n $TPID ]]; then kill "$TPID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'e2e_log "guest: interrupted"; exit 130' INT TERM

t0=$SECONDS
"${qemu[@]}" </dev/null >"$OUT/qemu.log" 2>&1 &
QPID=$!
# Stream the job's output. --pid: tail exits once QEMU is gone, after a last
# read that finds nothing new, so no trailing line is lost.
tail -n +1 -F --pid="$QPID" "$OUT/output.log" 2>/dev/null &
TPID=$!

reason=
booted=
while kill -0 "$QPID" 2>/dev/null; do
	if [[ -z $booted && -e $OUT/started ]]; then
		booted=$((SECONDS - t0))
		e2e_log "guest: booted, job started after ${booted}s"
	fi
	if [[ -z $booted ]] && ((SECONDS - t0 > BOOT_TIMEOUT)); then
		reason="the guest did not reach the job within ${BOOT_TIMEOUT}s (E2E_BOOT_TIMEOUT)"
		kill "$QPID" 2>/dev/null || true
		break
	fi
	if ((SECONDS - t0 > TIMEOUT)); then
		reason="timed out after ${TIMEOUT}s (E2E_TIMEOUT); guest killed"
		kill "$QPID" 2>/dev/null || true
		break
	fi
	sleep 0.5
done
qrc=0
wait "$QPID" || qrc=$?
QPID=''
wait "$TPID" 2>/dev/null || true
TPID=''

if [[ -s $OUT/exit-code ]]; then
	rc=$(<"$OUT/exit-code")
	e2e_log "guest: job exited $rc; guest ran $((SECONDS - t0))s (results in $OUT)"
	exit "$rc"
fi

[[ -n $reason ]] || reason="the guest stopped (qemu exit $qrc) before the job finished: kernel panic or init failure?"
e2e_log "guest: FAILED: $reason"
e2e_log "guest: last lines of the guest console ($OUT/console.log):"
tail -n 40 "$OUT/console.log" >&2 2>/dev/null || true
if [[ -s $OUT/qemu.log ]]; then
	e2e_log "guest: qemu said:"
	tail -n 20 "$OUT/qemu.log" >&2
fi
case "$reason" in timed*) exit 124 ;; *) exit 125 ;; esac
