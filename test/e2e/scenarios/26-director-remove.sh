#!/usr/bin/env bash
# A service removed from the config: ravel restarted with the new file
# deletes its IPVS service and unbinds its VIP from ravel0, while the other
# service keeps serving throughout (a request loop sees no failure).
#
# Topology: topo_dr plus a second VIP: web on 10.0.0.100:80, api on
# 10.0.0.101:80, both served by rs1 and rs2. The second file drops api but
# keeps 10.0.0.101 in vipPool: the pool is what ravel owns, so that is how
# it knows the leftover service and address are its own to remove.
. "$(dirname "$0")/../lib.sh"

topo_dr
VIP2=10.0.0.101
rs_serve "$VIP" 80 rs1 rs2
ip -n rs1 addr add "$VIP2/32" dev lo
ip -n rs2 addr add "$VIP2/32" dev lo

write_cfg() { # FILE SERVICES-YAML
	director_config "$1" 44426 pool="$VIP, $VIP2" services="$2"
}
cfg1=$SCENARIO_DIR/ravel-1.yaml
cfg2=$SCENARIO_DIR/ravel-2.yaml
write_cfg "$cfg1" "  - name: api
    vip: $VIP2
    port: 80
    backends:
      - {address: $RS1_IP, weight: 1}
      - {address: $RS2_IP, weight: 1}"
write_cfg "$cfg2" ""

ravel_start director ravel-1 "$cfg1"
wait_for 60 "ravel programs web $VIP:80" ipvs_has director "$VIP:80" 2
wait_for 60 "ravel programs api $VIP2:80" ipvs_has director "$VIP2:80" 2
wait_for 30 "ravel binds both VIPs" bash -c "ip -n director -4 -o addr show dev ravel0 | grep -q ' $VIP/32 ' && ip -n director -4 -o addr show dev ravel0 | grep -q ' $VIP2/32 '"
in_ns director ipvsadm -Ln
out=$(hit client "http://$VIP2/" 10) || fail "requests to api before the removal failed: $out"
assert_eq "api answers before the removal" "failed 0" "$(tail -n1 <<<"$out")"

plan=$(ravel_plan director "$cfg2")
echo "$plan"
# (The removed service's name is not in the new file: the plan names it by key.)
assert_eq "plan for the new file" "- delete service tcp $VIP2:80
- unbind $VIP2 from ravel0" "$plan"

traffic_start client "http://$VIP/" web
sleep 2
ravel_stop "$RAVEL_PID"
ravel_start director ravel-2 "$cfg2"
if wait_for 60 "api's IPVS service deleted" bash -c "! ip netns exec director ipvsadm -Ln -t $VIP2:80"; then
	pass "api's IPVS service $VIP2:80 is gone from the kernel"
fi
if wait_for 30 "api's VIP unbound" bash -c "! ip -n director -4 -o addr show dev ravel0 | grep -q ' $VIP2/32 '"; then
	pass "api's VIP $VIP2 is unbound from ravel0"
fi
sleep 2
traffic_stop web
assert_eq "web requests that failed across the removal" 0 "$TRAFFIC_FAILED"
assert_ge "web requests answered across the removal" 10 "$TRAFFIC_OK"

in_ns director ipvsadm -Ln
ip -n director -4 addr show ravel0
assert_eq "web untouched: $RS1_IP:80" "Route 3" "$(ipvs_dest director "$VIP:80" "$RS1_IP:80")"
assert_eq "web untouched: $RS2_IP:80" "Route 1" "$(ipvs_dest director "$VIP:80" "$RS2_IP:80")"
if vip_bound director "$VIP"; then pass "web's VIP $VIP still bound"; else fail "web's VIP $VIP was unbound"; fi
# Nothing answers for the removed VIP any more.
if in_ns client "$E2E_BIN/hit" -n 1 -timeout 2s "http://$VIP2/" >/dev/null 2>&1; then
	fail "api $VIP2 still answers after its removal"
else
	pass "api $VIP2 no longer answers"
fi
assert_eq "plan after convergence" "no changes" "$(ravel_plan director "$cfg2")"
ravel_stop "$RAVEL_PID"
