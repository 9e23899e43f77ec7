#!/usr/bin/env bash
# Restart of the director process: ravel leaves the kernel as it is on
# SIGTERM and adopts it on the next start, converging by diff (never by
# flush). A loop of requests through the VIP runs across the stop and the
# start and sees no failure; the IPVS table and the VIP binding are identical
# before and after; the second ravel applies nothing.
#
# Topology: topo_dr (client, director, rs1, rs2 on one segment).
. "$(dirname "$0")/../lib.sh"

topo_dr
rs_serve "$VIP" 80 rs1 rs2

cfg=$SCENARIO_DIR/ravel.yaml
director_config "$cfg" 44424 ipvs="scheduler: wrr, forwarding: dr, upperThreshold: 1000, lowerThreshold: 800" \
	metrics=127.0.0.1:10234
synced() { (($(metric director 127.0.0.1:10234 ravel_reconcile_total) >= 1)); }

director_up ravel-1 "$cfg"
wait_for 30 "the first ravel's first sync" synced
ipvs_before=$(ipvs_save director)
addr_before=$(ip -n director addr show ravel0)
echo "$ipvs_before"

# Requests keep flowing while ravel is down and while it starts again.
traffic_start client "http://$VIP/" loop
sleep 4
ravel_stop "$RAVEL_PID"
down_from=$EPOCHSECONDS
log "ravel stopped; the kernel keeps serving"
sleep 6
if vip_bound director "$VIP"; then pass "VIP still bound while ravel is down"; else fail "VIP gone while ravel is down"; fi
if ipvs_has director "$VIP:80" 2; then pass "IPVS service still there while ravel is down"; else fail "IPVS service gone while ravel is down"; fi
down_to=$EPOCHSECONDS
ravel_start director ravel-2 "$cfg"
wait_for 60 "the second ravel's first sync" synced
sleep 4
traffic_stop loop
assert_eq "requests that failed across stop and restart" 0 "$TRAFFIC_FAILED"
assert_ge "requests answered across stop and restart" 20 "$TRAFFIC_OK"
assert_ge "requests answered while no ravel ran" 1 "$(traffic_ok_between loop "$down_from" "$down_to")"

assert_eq "IPVS table (ipvsadm -Sn) identical before and after the restart" "$ipvs_before" "$(ipvs_save director)"
assert_eq "ravel0 addresses (ip addr show) identical before and after the restart" "$addr_before" "$(ip -n director addr show ravel0)"
# The second ravel found nothing to do: no plan applied, no op counted.
if grep -q 'msg="applying plan"' "$SCENARIO_DIR/ravel-2.log"; then
	fail "the second ravel applied a plan: $(grep 'msg="applying plan"' "$SCENARIO_DIR/ravel-2.log")"
else
	pass "the second ravel applied no plan (log)"
fi
assert_eq "ops applied by the second ravel (ravel_plan_ops_total)" 0 "$(metric director 127.0.0.1:10234 ravel_plan_ops_total)"
assert_eq "plan after the restart" "no changes" "$(ravel_plan director "$cfg")"
ravel_stop "$RAVEL_PID"
