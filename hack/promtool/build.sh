#!/usr/bin/env bash
# build.sh: build (or reuse) Prometheus's promtool, which `go test ./deploy` runs on
# deploy/prometheus/alerts.yaml (promtool check rules: Prometheus's own rule checker).
#
# Built with `go install` from the Go module proxy and cached outside the clone, keyed by
# version, so a fresh clone on the same machine reuses it.
#
# Usage: build.sh [--cached]   (--cached: don't build; exit 3 if it is not cached)
# Prints the path of the promtool binary on its last line of stdout.
set -euo pipefail
PROMTOOL_VERSION=v0.316.0 # the Go module version of Prometheus v3.16.0
dir=${PROMTOOL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ravel/promtool/$PROMTOOL_VERSION}
bin=$dir/promtool

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
if [ "${1:-}" = "--cached" ]; then
  echo "promtool $PROMTOOL_VERSION is not in $dir; run hack/promtool/build.sh" >&2
  exit 3
fi
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
tmp=$(mktemp -d "$(dirname "$dir")/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "building promtool $PROMTOOL_VERSION into $dir" >&2
(cd "$tmp" && CGO_ENABLED=0 GOWORK=off GOFLAGS= GOBIN="$tmp/bin" go install -trimpath -ldflags "-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION")
rm -rf "$dir"
mv "$tmp/bin" "$dir"
echo "$bin"
