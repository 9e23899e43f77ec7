#!/usr/bin/env bash
# packaging/test.sh (make package-test): build the .deb and .rpm twice (two versions) and check
# them as an operator's machine sees them:
#   - the .deb's files, modes and conffiles (dpkg-deb), the unit's ExecStart on /usr/bin;
#   - dpkg installs it in a throwaway Debian 12 root (debootstrap minbase + systemd, cached),
#     the installed binary validates the installed config there, systemd-analyze verify
#     accepts the installed unit in that root (its dependencies included: /bin/kill is
#     procps'); the config is edited, the next version is installed over it (an upgrade),
#     and the edit is kept;
#   - the .rpm's file list and config files, read by rpm itself.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
ok() { echo "package-test: ok: $*"; }

v1=0.0.1 v2=0.0.2
make --no-print-directory package PKG_VERSION=$v1 >/dev/null
mkdir -p /var/tmp/ravel-package-test && work=$(mktemp -d /var/tmp/ravel-package-test/run.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp dist/ravel_${v1}-1_amd64.deb dist/ravel-${v1}-1.x86_64.rpm "$work/"
make --no-print-directory package PKG_VERSION=$v2 >/dev/null
deb1=$work/ravel_${v1}-1_amd64.deb deb2=dist/ravel_${v2}-1_amd64.deb rpm1=$work/ravel-${v1}-1.x86_64.rpm

# --- the .deb as an archive -----------------------------------------------------------
want=(./usr/bin/ravel ./lib/systemd/system/ravel.service ./etc/ravel/ravel.yaml
	./usr/lib/sysctl.d/60-ravel.conf ./usr/lib/modules-load.d/ravel.conf
	./usr/share/bash-completion/completions/ravel ./usr/share/zsh/vendor-completions/_ravel
	./usr/share/fish/vendor_completions.d/ravel.fish ./usr/share/man/man1/ravel.1.gz
	./usr/share/man/man1/ravel-config-validate.1.gz)
list=$(dpkg-deb -c "$deb1")
for f in "${want[@]}"; do grep -qE " $f\$" <<<"$list" || fail "$deb1 lacks $f"; done
grep -qE '^-rwxr-xr-x .* \./usr/bin/ravel$' <<<"$list" || fail "/usr/bin/ravel is not 0755: $(grep usr/bin/ravel <<<"$list")"
ok "the .deb holds the binary, unit, config, sysctl.d, modules-load.d, completions and man pages"
[[ $(dpkg-deb -f "$deb1" Version) == "$v1-1" ]] || fail "version $(dpkg-deb -f "$deb1" Version), want $v1-1"
dpkg-deb -f "$deb1" Depends | grep -qw procps || fail "Depends: $(dpkg-deb -f "$deb1" Depends), want procps (the unit's /bin/kill)"
dpkg-deb -e "$deb1" "$work/control"
grep -qx /etc/ravel/ravel.yaml "$work/control/conffiles" || fail "conffiles: $(cat "$work/control/conffiles")"
ok "/etc/ravel/ravel.yaml is a conffile"

# --- install and upgrade in a throwaway Debian root -------------------------------------
# A Debian 12 minbase root with systemd, made once by debootstrap and cached (packaging/
# debian-root.sh); each run works on a copy.
base=$(bash packaging/debian-root.sh | tail -n1)
root=$work/root
cp -a "$base" "$root"
cp "$deb1" "$deb2" "$root/tmp/"
in_root() { chroot "$root" "$@"; }
in_root dpkg -i "/tmp/${deb1##*/}" >/dev/null
in_root dpkg -s ravel | grep -qx "Version: $v1-1" || fail "dpkg -s after install: $(in_root dpkg -s ravel)"
grep -q '^ExecStart=/usr/bin/ravel run' "$root/lib/systemd/system/ravel.service" || fail "the installed unit does not run /usr/bin/ravel"
in_root ravel config validate /etc/ravel/ravel.yaml >/dev/null || fail "the installed config does not validate"
zcat "$root/usr/share/man/man1/ravel-config-validate.1.gz" | grep -q '^\.TH' || fail "the man page is not roff"
ok "installed by dpkg in a Debian root: ravel validates /etc/ravel/ravel.yaml there"
out=$(systemd-analyze verify --root="$root" /lib/systemd/system/ravel.service 2>&1) || fail "systemd-analyze verify: $out"
ok "systemd-analyze verify accepts the installed unit in that root"
sed -i 's/^resync: .*/resync: 17s/' "$root/etc/ravel/ravel.yaml"
grep -q '^resync: 17s' "$root/etc/ravel/ravel.yaml" || echo 'resync: 17s' >>"$root/etc/ravel/ravel.yaml"
edited=$(sha256sum <"$root/etc/ravel/ravel.yaml")
in_root dpkg -i "/tmp/${deb2##*/}" >/dev/null </dev/null
in_root dpkg -s ravel | grep -qx "Version: $v2-1" || fail "dpkg -s after the upgrade: $(in_root dpkg -s ravel | grep Version)"
[[ $(sha256sum <"$root/etc/ravel/ravel.yaml") == "$edited" ]] || fail "the upgrade replaced the edited /etc/ravel/ravel.yaml"
in_root ravel config validate /etc/ravel/ravel.yaml >/dev/null || fail "the kept config does not validate"
ok "upgrade $v1 -> $v2 kept the edited config"

# --- the .rpm, read by rpm ---------------------------------------------------------------
rl=$(rpm -qlp "$rpm1" 2>/dev/null)
for f in "${want[@]}"; do grep -qx "${f#.}" <<<"$rl" || fail "$rpm1 lacks ${f#.}"; done
rpm -qp --configfiles "$rpm1" 2>/dev/null | grep -qx /etc/ravel/ravel.yaml || fail "the rpm's config files: $(rpm -qp --configfiles "$rpm1")"
rpm -qp --qf '%{VERSION}-%{RELEASE}\n' "$rpm1" 2>/dev/null | grep -qx "$v1-1" || fail "rpm version"
rpm -qpR "$rpm1" 2>/dev/null | grep -qw procps-ng || fail "the rpm's requirements lack procps-ng: $(rpm -qpR "$rpm1")"
ok "the .rpm holds the same files, /etc/ravel/ravel.yaml as a config file"
