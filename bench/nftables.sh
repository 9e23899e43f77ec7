#!/usr/bin/env bash
# bench/nftables.sh: what ravel's nftables backend costs for 5,000 realserver endpoints (500
# services x 10 local endpoints, the set of bench/iptables.sh), against plain `nft -f` of the
# same objects, in the same run on the same machine; and a one-endpoint change beside the
# iptables backend's (nf_tables and legacy), measured in the same run.
#
# Usage: bench/nftables.sh [iterations]   (root: it makes throwaway network namespaces; needs nft)
#
# It runs the testing.B benchmarks of netops/nftables (bench_test.go there):
#   BenchmarkKernelFull         Apply into an empty namespace vs plain nft -f, alternated;
#                               medians, fastest runs and their ratios (goal: ratio <= 1.1)
#   BenchmarkKernelOneEndpoint  one endpoint goes away / comes back: one partial transaction
#   BenchmarkKernelResync       the resync timer's read of the table and full rewrite
# and BenchmarkApplyOneEndpoint of netops/iptables for the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-15}"
if [ "$(id -u)" != 0 ]; then
	echo "bench/nftables.sh: needs root (network namespaces)" >&2
	exit 2
fi
command -v nft >/dev/null || { echo "bench/nftables.sh: needs nft (apt-get install nftables)" >&2; exit 2; }
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
echo "# $(nft --version), $(iptables -V), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for cmd in "go test ./netops/nftables -run ^\$ -bench Kernel -benchtime ${n}x" \
	"go test ./netops/iptables -run ^\$ -bench OneEndpoint -benchtime ${n}x"; do
	echo "# $cmd"
	$cmd >>"$out" 2>&1 || { echo "bench/nftables.sh: benchmarks failed" >&2; cat "$out" >&2; exit 1; }
done
grep -E '^Benchmark' "$out"
awk -v n="$n" '
function metric(unit,   i) { for (i = 3; i < NF; i++) if ($(i+1) == unit) return $i; return "" }
/^BenchmarkKernelFull/ { apply = metric("apply-ms"); nftf = metric("nft-f-ms"); ratio = metric("ratio")
	amin = metric("apply-min-ms"); nmin = metric("nft-f-min-ms"); rmin = metric("ratio-min") }
/^BenchmarkKernelOneEndpoint/ { one = metric("apply-ms"); ops = metric("nft-ops") }
/^BenchmarkKernelResync/ { resync = metric("resync-ms") }
/^BenchmarkApplyOneEndpoint\/nft/ { iptnft = metric("apply-ms") }
/^BenchmarkApplyOneEndpoint\/legacy/ { iptleg = metric("apply-ms") }
END {
	printf "\nnftables: 5000 endpoints (500 services x 10), %d runs each   median / fastest\n", n
	printf "  ravel Apply into an empty table:     %8.1f ms  %8.1f ms\n", apply, amin
	printf "  plain nft -f of the same objects:    %8.1f ms  %8.1f ms\n", nftf, nmin
	printf "  ratio Apply / nft -f:                %8.2f     %8.2f      (goal <= 1.1)\n", ratio, rmin
	printf "  one-endpoint change (Apply):         %8.1f ms  (%d nft commands in the transaction)\n", one, ops
	printf "  resync (read, full rewrite):         %8.1f ms\n", resync
	printf "  iptables one-endpoint change:        %8.1f ms (nf_tables), %.1f ms (legacy)\n", iptnft, iptleg
}' "$out"
