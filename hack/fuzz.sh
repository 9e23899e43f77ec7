#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module, one after another, for FUZZTIME each (a
# duration or Nx, as go test -fuzztime takes it; default 30s). The targets are found afresh on
# every run, so a new FuzzXxx in any package is fuzzed without editing this file or the
# Makefile. It goes on after a failing target and exits 1 at the end if any failed.
#
# go test writes each input that fails to the package's testdata/fuzz/FuzzXxx/. Commit it
# there (with the fix): from then on plain go test runs it as a regression test.
#
#	make fuzz                 # 30s per target
#	make fuzz-long            # 10m per target
#	FUZZTIME=5s hack/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

# The packages whose test files (those go list selects for this platform) declare a Fuzz
# function. Only these are built and asked for their targets: `go test -list ./...` would
# compile every test binary and run every TestMain (kube's starts an API server).
listing=$($GO list -f '{{.ImportPath}} {{.Dir}}{{range .TestGoFiles}} {{.}}{{end}}{{range .XTestGoFiles}} {{.}}{{end}}' ./...)
pkgs=()
while read -r pkg dir files; do
	[ -n "$files" ] || continue
	# shellcheck disable=SC2086 # files is a list of names without spaces
	if (cd "$dir" && grep -q '^func Fuzz' $files); then
		pkgs+=("$pkg")
	fi
done <<<"$listing"

# The targets, as go test itself lists them.
targets=()
for pkg in ${pkgs[@]+"${pkgs[@]}"}; do
	names=$($GO test -list '^Fuzz' "$pkg")
	for name in $(grep '^Fuzz' <<<"$names" || true); do
		targets+=("$pkg $name")
	done
done
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

failed=()
for target in "${targets[@]}"; do
	read -r pkg name <<<"$target"
	echo "== fuzz $pkg $name for $FUZZTIME"
	if ! $GO test "$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME"; then
		failed+=("$target")
	fi
done

echo "== fuzz: ${#targets[@]} target(s), $FUZZTIME each, $((${#targets[@]} - ${#failed[@]})) passed"
if [ ${#failed[@]} -gt 0 ]; then
	printf '== fuzz: FAILED %s\n' "${failed[@]}"
	echo "== fuzz: the failing inputs are under each package's testdata/fuzz/; commit them with the fix" >&2
	exit 1
fi
