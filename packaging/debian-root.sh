#!/usr/bin/env bash
# debian-root.sh: a Debian 12 (bookworm) root for the package test and for the e2e guest that
# boots systemd (test/e2e/scenarios/90-systemd-unit.sh), made once with `debootstrap
# --variant=minbase --include=systemd,procps,iptables,kmod` from deb.debian.org and cached outside
# the clone (about 250 MB; 1.5 minutes to make here). procps is the package's dependency (the
# unit's /bin/kill); iptables and kmod are what it recommends (a realserver runs iptables, the
# unit runs modprobe). Prints its path on the last line of stdout.
set -euo pipefail
dir=${RAVEL_DEBIAN_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/ravel/debian-root/bookworm-minbase-systemd-procps-iptables-kmod-r2}
if [ -e "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if [ -e "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi
rm -rf "$dir.tmp"
echo "debootstrap: a Debian 12 minbase root with systemd into $dir" >&2
debootstrap --variant=minbase --include=systemd,procps,iptables,kmod bookworm "$dir.tmp" http://deb.debian.org/debian >&2
touch "$dir.tmp/.complete"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$dir"
