# shellcheck shell=bash
# Host-side helpers shared by test/e2e/guest/build.sh, test/e2e/guest/run.sh
# and test/e2e/run.sh. Sourced, never executed.
#
# Nothing here may rely on anything installed by hand: CI runs on a fresh
# machine, so every host tool the bed needs is installed from Debian's
# packages on first use (quietly, and only when missing).

E2E_GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_DIR=$(cd "$E2E_GUEST_DIR/.." && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this
E2E_REPO=$(cd "$E2E_DIR/../.." && pwd)

e2e_log() { printf '[e2e] %s\n' "$*" >&2; }
e2e_die() { printf '[e2e] ERROR: %s\n' "$*" >&2; exit 1; }

# Debian packages the bed needs on the host. The guest's userland IS the
# host's / (shared read-only over 9p), so ipvsadm, iptables, iproute2, curl, capsh and setpriv
# must be installed on the host for scenarios to use them inside the guest.
E2E_HOST_PACKAGES=(qemu-system-x86 busybox-static cpio kmod xz-utils ipvsadm iptables nftables iproute2 curl libcap2-bin procps util-linux)

# e2e_apt_get ARGS...: apt-get, non-interactive and quiet, waiting for the
# dpkg lock instead of failing when another apt run (e.g. a CI step that
# installs something else) holds it.
e2e_apt_get() {
	DEBIAN_FRONTEND=noninteractive apt-get -q -y \
		-o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 "$@"
}

# e2e_ensure_packages [PKG...]: install the given (default: all) packages
# that are not installed yet. Idempotent and silent when nothing is missing.
e2e_ensure_packages() {
	local pkgs=("$@") missing=() p st
	((${#pkgs[@]})) || pkgs=("${E2E_HOST_PACKAGES[@]}")
	for p in "${pkgs[@]}"; do
		st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[[ $st == installed ]] || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) == 0 ]] || e2e_die "missing packages (${missing[*]}) and not root to install them"
	e2e_log "installing ${missing[*]} (apt-get)"
	# --no-install-recommends: qemu-system-x86 otherwise drags in the whole
	# GUI stack. A first try without 'apt-get update' is enough on a machine
	# with fresh lists; a fresh or stale machine needs the update.
	if ! e2e_apt_get install --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
		e2e_apt_get update >/dev/null 2>&1 || true
		e2e_apt_get install --no-install-recommends "${missing[@]}" >/dev/null ||
			e2e_die "apt-get install ${missing[*]} failed"
	fi
}

# e2e_go: the Go toolchain. /usr/local/go is where this project's machines
# keep Go 1.26; fall back to whatever 'go' is on PATH.
e2e_go() {
	if [[ -x /usr/local/go/bin/go ]]; then
		/usr/local/go/bin/go "$@"
	else
		command -v go >/dev/null || e2e_die "no Go toolchain (/usr/local/go/bin/go or go on PATH)"
		go "$@"
	fi
}

# e2e_guest_invisible PATH: true when PATH would NOT be visible in the guest
# through the read-only host root, because the guest puts its own tmpfs on
# /tmp, /run and /dev (and its own /proc, /sys).
e2e_guest_invisible() {
	case "$1" in
	/tmp | /tmp/* | /run | /run/* | /var/run | /var/run/* | /dev/* | /proc/* | /sys/*) return 0 ;;
	esac
	return 1
}
