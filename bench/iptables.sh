#!/usr/bin/env bash
# bench/iptables.sh: what ravel's iptables Apply costs for 5,000 realserver rules (500 services
# x 10 local endpoints), against plain `iptables-restore --noflush` of the same batch, in the
# same run on the same machine, for each iptables backend installed (nf_tables, legacy).
#
# Usage: bench/iptables.sh [iterations]   (root: it makes throwaway network namespaces)
#
# It runs the testing.B benchmarks of netops/iptables (see bench_test.go there):
#   BenchmarkFull            Apply into an empty table vs plain iptables-restore, alternated;
#                            medians and their ratio (goal: ratio <= 1.2)
#   BenchmarkApplyOneEndpoint one endpoint goes away / comes back: read, diff, rewrite 1 chain
#   BenchmarkApplyNoop        a periodic resync that finds nothing to do: read and diff only
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20}"
if [ "$(id -u)" != 0 ]; then
	echo "bench/iptables.sh: needs root (network namespaces)" >&2
	exit 2
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
cmd=(go test ./netops/iptables -run '^$' -bench 'Full|OneEndpoint|Noop' -benchtime "${n}x")
echo "# ${cmd[*]}"
echo "# $(iptables -V), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"${cmd[@]}" >"$out" 2>&1 || true
grep -E '^(Benchmark|ok|FAIL|---|\s+\S+_test.go)' "$out" || true
grep -q '^ok' "$out" || { echo "bench/iptables.sh: benchmarks failed" >&2; cat "$out" >&2; exit 1; }
awk -v n="$n" '
function metric(unit,   i) { for (i = 3; i < NF; i++) if ($(i+1) == unit) return $i; return "" }
/^Benchmark/ {
	split($1, p, "[/-]"); name = p[1]; mode = p[2]; modes[mode] = 1
	if (name == "BenchmarkFull") {
		apply[mode] = metric("apply-ms"); restore[mode] = metric("restore-ms"); ratio[mode] = metric("ratio")
		amin[mode] = metric("apply-min-ms"); rmin[mode] = metric("restore-min-ms"); ratiomin[mode] = metric("ratio-min")
	}
	if (name == "BenchmarkApplyOneEndpoint") one[mode] = metric("apply-ms")
	if (name == "BenchmarkApplyNoop") noop[mode] = metric("apply-ms")
}
END {
	split("nft legacy", order, " ")
	for (k = 1; k <= 2; k++) {
		m = order[k]
		if (!(m in modes)) { printf "\niptables %s: not measured (not installed?)\n", m; continue }
		printf "\niptables %s: 5000 endpoints (500 services x 10), %d runs each  median / fastest\n", m, n
		printf "  ravel Apply into an empty table:     %8.1f ms  %8.1f ms\n", apply[m], amin[m]
		printf "  plain iptables-restore --noflush:    %8.1f ms  %8.1f ms\n", restore[m], rmin[m]
		printf "  ratio Apply / restore:               %8.2f     %8.2f      (goal <= 1.2)\n", ratio[m], ratiomin[m]
		printf "  one-endpoint change (Apply):         %8.1f ms (median)\n", one[m]
		printf "  resync with nothing to change:       %8.1f ms (median)\n", noop[m]
	}
}' "$out"
