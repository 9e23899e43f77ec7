#!/usr/bin/env bash
# bench/scale.sh: ravel against `ipvsadm -R` on the real kernel, at scale, in one boot of the
# QEMU e2e guest (stock Debian kernel; see test/e2e/README.md).
#
# Usage: bench/scale.sh [VIPS [PORTS [DESTS [RUNS [SMALL]]]]]
#        (default 100 100 20 3 100: 10,000 services × 20 destinations, three runs of each,
#        and the one-weight edit again at 100 services)
#
# In that one boot (bench/scale-guest.sh): `ipvsadm -R` of the set RUNS times; ravel from an
# empty kernel RUNS times; the tables compared (`ipvsadm -Sn`, sorted); one weight edited at
# VIPS × PORTS services and at SMALL services; a restart adopting the whole table; ravel's
# peak RSS; a kill -9 halfway through a plan from empty, then a start. It prints each figure
# and the ratios the project's goals are stated in, and exits non-zero only when ravel's table
# differs from ipvsadm's, after the first start or after the kill (or something fails), never
# on a time. Times under emulation are 10–50× a real machine's: read the ratios, which come from
# the same boot. About 40 minutes at the default size on a 2-core machine; try 10 100 20 first.
#
# Environment: RAVEL_BENCH_PROFILE=1 (CPU profiles of the last start from empty and of the
# restart, ravel run --cpu-profile, in $RAVEL_BENCH_DIR/guest), RAVEL_BENCH_DIR (default
# /var/tmp/ravel-bench-scale: the guest cannot see /tmp), E2E_GUEST_MEM (MiB, default 3072
# here).
set -euo pipefail
cd "$(dirname "$0")/.."
VIPS=${1:-100} PORTS=${2:-100} DESTS=${3:-20} RUNS=${4:-3} SMALL=${5:-100}
DIR=${RAVEL_BENCH_DIR:-/var/tmp/ravel-bench-scale}
export PATH=/usr/local/go/bin:$PATH
if [[ $(id -u) != 0 ]]; then
	echo "bench/scale.sh: needs root (QEMU, the guest's namespaces)" >&2
	exit 2
fi
make --no-print-directory build >/dev/null
mkdir -p "$DIR"
cp bin/ravel "$DIR/ravel"
services=$((VIPS * PORTS))
# The guest's run: generous, a little more than the figures above suggest per service.
export E2E_TIMEOUT=$((600 + services * RUNS * 2 / 10 + services / 10))
export E2E_GUEST_MEM=${E2E_GUEST_MEM:-3072} E2E_OUT_DIR=$DIR/guest
echo "bench/scale.sh: $services services × $DESTS destinations, $RUNS runs each (guest limit ${E2E_TIMEOUT}s)"
bash test/e2e/guest/run.sh "$PWD/bench/scale-guest.sh" "$DIR/ravel" "$VIPS" "$PORTS" "$DESTS" "$RUNS" "$SMALL" | tee "$DIR/output.log"

# --- the table --------------------------------------------------------------------------------
vals() { awk -v k="$1" '$1 == "RESULT" && $2 == k { print $3 }' "$DIR/output.log"; }
best() { vals "$1" | sort -g | head -n1; }
list() { vals "$1" | paste -sd' ' | sed 's/ /, /g'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
load=$(cut -d' ' -f1-3 /proc/loadavg)
cat <<TABLE

| what ($services services × $DESTS destinations, one guest boot) | figure |
| --- | --- |
| \`ipvsadm -R\` of the same set (s) | $(list ipvsadm_restore_s) |
| ravel from empty: process start → first sync done (s) | $(list ravel_empty_ready_s) |
| … of which the plan's apply (s) | $(list ravel_empty_plan_s) |
| … and before the plan: start-up, read, desired, diff (s) | $(list ravel_empty_before_plan_s) |
| \`ravel config validate\` of the file (s) | $(vals validate_s) |
| one weight edited: the edited file in place → "config reloaded", $services services (s) | $(vals edit_big_s) (the reload itself $(vals edit_big_took_s)) |
| the same edit, $SMALL services (s) | $(vals edit_small_s) (the reload itself $(vals edit_small_took_s)) |
| restart adopting the table: start → ready (s) | $(vals restart_ready_s), plan ops $(vals restart_plan_ops) |
| peak RSS, from empty / restart (MiB) | $(awk -v a="$(vals ravel_empty_vmhwm_kib)" -v b="$(vals restart_vmhwm_kib)" 'BEGIN { printf "%.0f / %.0f", a / 1024, b / 1024 }') |
| tables equal (\`ipvsadm -Sn\`, sorted) | yes, $(vals table_lines) lines |
| kill -9 halfway through a plan from empty, then a start: destinations in the kernel at the kill; start → ready (s) | $(vals killed_dests_held) of $((services * DESTS)); $(vals after_kill_ready_s), the table then equal to ipvsadm's |

Ratios (goals from issue 13): ravel from empty / best ipvsadm -R = $(ratio "$(best ravel_empty_ready_s)" "$(best ipvsadm_restore_s)") (goal ≤ 0.8);
edit at $services / edit at $SMALL = $(ratio "$(vals edit_big_s)" "$(vals edit_small_s)") (goal ≤ 2);
restart / best from empty = $(ratio "$(vals restart_ready_s)" "$(best ravel_empty_ready_s)") (goal ≤ 0.5).
Host load average at the end: $load.
TABLE
