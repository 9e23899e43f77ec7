#!/usr/bin/env bash
# Connection thresholds: the service's upperThreshold (X) and lowerThreshold
# (Y) are split across the destinations in proportion to their weights,
# rounding up (docs/config.md), and are visible in the kernel. A changed file
# (ravel restarted with it; scenario 50 covers a live reload) edits them IN PLACE: the plan
# has only "~ update destination" lines, and the destinations keep their
# connection counters, which a delete + add would have reset.
#
# Topology: topo_dr (client, director, rs1, rs2 on one segment), weights 3:1.
#   X=100, Y=50 -> rs1 ceil(100*3/4)=75 / ceil(50*3/4)=38, rs2 25 / 13
#   X=200, Y=90 -> rs1 150 / ceil(67.5)=68,                rs2 50 / ceil(22.5)=23
. "$(dirname "$0")/../lib.sh"

topo_dr
rs_serve "$VIP" 80 rs1 rs2

write_cfg() { # FILE X Y
	director_config "$1" 44423 ipvs="scheduler: wrr, forwarding: dr, upperThreshold: $2, lowerThreshold: $3" \
		metrics=127.0.0.1:10234
}
cfg1=$SCENARIO_DIR/ravel-1.yaml
cfg2=$SCENARIO_DIR/ravel-2.yaml
write_cfg "$cfg1" 100 50
write_cfg "$cfg2" 200 90

ravel_start director ravel-1 "$cfg1"
wait_for 60 "ravel programs $VIP:80 with 2 destinations" ipvs_has director "$VIP:80" 2
in_ns director ipvsadm -Ln --thresholds
assert_eq "rs1 thresholds (upper lower) for X=100 Y=50, weight 3/4" "75 38" "$(ipvs_dest_thresholds director "$VIP:80" "$RS1_IP:80")"
assert_eq "rs2 thresholds (upper lower) for X=100 Y=50, weight 1/4" "25 13" "$(ipvs_dest_thresholds director "$VIP:80" "$RS2_IP:80")"

out=$(hit client "http://$VIP/" 40) || fail "requests before the change failed: $out"
# The kernel folds its per-CPU connection counters into what ipvsadm reads only on the
# estimator's 2-second tick: a read right after the traffic can still show 0.
_conns_seen() { (($(ipvs_dest_conns director "$VIP:80" "$1:80") >= 1)); }
wait_for 10 "rs1 connection counter moves" _conns_seen "$RS1_IP"
wait_for 10 "rs2 connection counter moves" _conns_seen "$RS2_IP"
conns1=$(ipvs_dest_conns director "$VIP:80" "$RS1_IP:80")
conns2=$(ipvs_dest_conns director "$VIP:80" "$RS2_IP:80")
log "connection counters before the change: rs1 $conns1, rs2 $conns2"
assert_ge "rs1 connection counter before the change" 1 "$conns1"
assert_ge "rs2 connection counter before the change" 1 "$conns2"

# What would the new file do to the kernel as it is now? Only in-place edits.
plan=$(ravel_plan director "$cfg2")
echo "$plan"
assert_eq "plan for the new file: '~ update destination' lines" 2 "$(grep -c '^~ update destination' <<<"$plan")"
assert_eq "plan for the new file: lines other than '~ update destination'" 0 "$(grep -vc '^~ update destination' <<<"$plan" || true)"
if grep -q "^~ update destination $RS1_IP:80 of .*upper 75 -> 150, lower 38 -> 68" <<<"$plan"; then
	pass "plan says rs1 upper 75 -> 150, lower 38 -> 68"
else
	fail "plan does not say rs1 upper 75 -> 150, lower 38 -> 68"
fi

# A long-lived client connection through the VIP, open across the change.
longconn_start client "$VIP" 80 conn

ravel_stop "$RAVEL_PID"
ravel_start director ravel-2 "$cfg2"
# The second ravel has finished its first sync once its reconcile counter moves.
synced() { (($(metric director 127.0.0.1:10234 ravel_reconcile_total) >= 1)); }
wait_for 60 "the second ravel's first sync" synced
in_ns director ipvsadm -Ln --thresholds
assert_eq "rs1 thresholds after the change" "150 68" "$(ipvs_dest_thresholds director "$VIP:80" "$RS1_IP:80")"
assert_eq "rs2 thresholds after the change" "50 23" "$(ipvs_dest_thresholds director "$VIP:80" "$RS2_IP:80")"
assert_eq "weights kept (rs1)" "Route 3" "$(ipvs_dest director "$VIP:80" "$RS1_IP:80")"

# In place: the kernel's per-destination counters survived (a re-added
# destination starts again from 0), and ravel applied only updates.
assert_ge "rs1 connection counter survived the change" "$conns1" "$(ipvs_dest_conns director "$VIP:80" "$RS1_IP:80")"
assert_ge "rs2 connection counter survived the change" "$conns2" "$(ipvs_dest_conns director "$VIP:80" "$RS2_IP:80")"
assert_eq "ops applied by the second ravel: update-destination" 2 "$(metric director 127.0.0.1:10234 'ravel_plan_ops_total{kind="update-destination"}')"
assert_eq "ops applied by the second ravel: all kinds" 2 "$(metric director 127.0.0.1:10234 ravel_plan_ops_total)"
grep 'msg="applying plan"' "$SCENARIO_DIR/ravel-2.log" || true

if longconn_finish conn; then
	pass "a connection opened before the change still works after it ($LONGCONN_RESULT)"
else
	fail "the connection opened before the change broke: $LONGCONN_RESULT"
fi
out=$(hit client "http://$VIP/" 20) || fail "requests after the change failed: $out"
assert_eq "plan after convergence" "no changes" "$(ravel_plan director "$cfg2")"
ravel_stop "$RAVEL_PID"
