#!/usr/bin/env bash
# build.sh: build (or reuse) kube-apiserver and etcd for the integration tests.
#
# The binaries come from the Go module proxy through this scratch module (go.mod pins
# k8s.io/kubernetes v1.37.2; etcd v3.7.0 is chosen by MVS from it). They are cached outside the
# clone, keyed by version, so a fresh clone on the same machine reuses them: a cold build takes
# about 11 minutes on 2 cores, a warm one (GOCACHE kept) about 20 s.
#
# Usage: build.sh [--cached]
#   --cached  don't build: exit 3 if the binaries aren't cached already.
# KAPI_BIN overrides the cache directory.
#
# Prints the directory holding the binaries on its last line of stdout. Concurrent runs (several
# test packages at once) are serialized with flock, so only one of them builds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KAPI_VERSION=v1.37.2
KAPI_BIN=${KAPI_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/ravel/kapi/$KAPI_VERSION-r1}

cached() {
  [ -x "$KAPI_BIN/kube-apiserver" ] && [ -x "$KAPI_BIN/etcd" ] &&
    [ "$("$KAPI_BIN/kube-apiserver" --version 2>/dev/null)" = "Kubernetes $KAPI_VERSION" ]
}

if cached; then
  echo "$KAPI_BIN"
  exit 0
fi
if [ "${1:-}" = "--cached" ]; then
  echo "kube-apiserver $KAPI_VERSION and etcd are not in $KAPI_BIN; run hack/kapi/build.sh (make kapi)" >&2
  exit 3
fi

mkdir -p "$(dirname "$KAPI_BIN")"
exec 9>"$KAPI_BIN.lock"
if ! flock -n 9; then
  echo "another build.sh is building into $KAPI_BIN; waiting for it" >&2
  flock 9
fi
if cached; then # built by the run we waited for
  echo "$KAPI_BIN"
  exit 0
fi

tmp=$(mktemp -d "$(dirname "$KAPI_BIN")/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$here"
# go.sum is complete: never let the build rewrite go.mod/go.sum, and ignore any go.work.
export CGO_ENABLED=0 GOFLAGS=-mod=readonly GOWORK=off
# -X flags make `kube-apiserver --version` report the real version instead of v0.0.0.
LD="-s -w -X k8s.io/component-base/version.gitVersion=$KAPI_VERSION -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean"
echo "building kube-apiserver $KAPI_VERSION (about 11 minutes cold) into $KAPI_BIN" >&2
go build -trimpath -ldflags "$LD" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
rm -rf "$KAPI_BIN"
mv "$tmp" "$KAPI_BIN"
trap - EXIT
echo "$KAPI_BIN"
