#!/usr/bin/env bash
# 29-director-scale-small: bench/scale.sh's path at a small scale, as a correctness check on the
# real kernel: 10 VIPs × 10 ports × 5 destinations (100 services) programmed by `ipvsadm -R`
# and by ravel from an empty kernel must give the same table (`ipvsadm -Sn`, sorted); a weight
# edited in the file reaches the kernel; a restart adopts the table with an empty plan; after a
# kill -9 during a plan from empty (at this size the plan is often done by then: bench/scale.sh
# kills one halfway at 10,000 services), a start converges to the same table.
# (bench/scale-guest.sh does the work and fails on a table that differs.)
. "$(dirname "$0")/../lib.sh"
need_ravel

out=$SCENARIO_DIR/scale.out
if bash "$E2E_REPO/bench/scale-guest.sh" "$RAVEL_BIN" 10 10 5 1 0 >"$out" 2>"$SCENARIO_DIR/scale.err"; then
	pass "ravel's table equals ipvsadm -R's: $(awk '$2 == "table_lines" { print $3 }' "$out") lines; the edited weight is in the kernel"
else
	fail "bench/scale-guest.sh failed: $(tail -n 12 "$SCENARIO_DIR/scale.err")"
fi
assert_eq "plan ops of a restart adopting the table" 0 "$(awk '$2 == "restart_plan_ops" { print $3 }' "$out")"
if [[ -n $(awk '$2 == "after_kill_ready_s" { print $3 }' "$out") ]]; then
	pass "a start after a kill -9 during the plan converged to ipvsadm's table"
else
	fail "the kill -9 step did not run"
fi
cat "$SCENARIO_DIR/scale.err"
