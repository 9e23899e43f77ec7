#!/usr/bin/env bash
# stages.sh: run make targets one after the other, stop at the first that fails, and print how
# long each took (also when one failed), so a CI log ends with where its time went.
#
#   hack/stages.sh TARGET...        (make test runs: deps kapi build unit e2e)
#
# MAKE and MAKEFLAGS come from the calling make, so -j, -s and variables pass through.
set -uo pipefail
make=${MAKE:-make}
names=() secs=() results=()
rc=0
for target in "$@"; do
	t0=$SECONDS
	"$make" --no-print-directory "$target"
	rc=$?
	names+=("$target") secs+=($((SECONDS - t0)))
	if ((rc != 0)); then results+=("FAILED (exit $rc)"); break; fi
	results+=(ok)
done
total=0
echo
echo "stage times:"
for i in "${!names[@]}"; do
	printf '  %-8s %6ss  %s\n' "${names[$i]}" "${secs[$i]}" "${results[$i]}"
	total=$((total + secs[i]))
done
printf '  %-8s %6ss\n' total "$total"
exit "$rc"
