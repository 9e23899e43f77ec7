#!/usr/bin/env bash
# ravel as a NAT (masquerading) director: 'forwarding: nat', the realservers
# listen on another port (VIP:80 -> :8080), route their replies back through
# the director (their gateway), which rewrites them to come from the VIP.
#
#   client --- net1 10.0.1.0/24 --- director (ravel; eth0 | eth1) --- net2 10.0.2.0/24 --- rs1, rs2
. "$(dirname "$0")/../lib.sh"

topo_nat
# No VIP on the realservers with NAT: they see packets to their own address.
rs_serve "" 8080 rs1 rs2

cfg=$SCENARIO_DIR/ravel.yaml
director_config "$cfg" 44422 ipvs="scheduler: wrr, forwarding: nat" backend_port=8080

director_up ravel "$cfg"
in_ns director ipvsadm -Ln

assert_eq "destination $RS1_IP:8080 (forward weight)" "Masq 3" "$(ipvs_dest director "$VIP:80" "$RS1_IP:8080")"
assert_eq "destination $RS2_IP:8080 (forward weight)" "Masq 1" "$(ipvs_dest director "$VIP:80" "$RS2_IP:8080")"

out=$(hit client "http://$VIP/" 80 -c 4) || fail "some requests through the VIP failed: $out"
echo "$out"
rs1=$(hit_count "$out" rs1)
rs2=$(hit_count "$out" rs2)
assert_ge "rs1 served" 1 "$rs1"
assert_ge "rs2 served" 1 "$rs2"
assert_eq "all 80 requests answered" 80 "$((rs1 + rs2))"
assert_ratio "wrr 3:1 split" "$rs1" "$rs2" 3 1

# NAT: the director carried the replies too (OutPkts > 0), unlike DR/IPIP. The kernel folds
# its per-CPU counters into what ipvsadm reads only on the estimator's 2-second tick, so wait
# for it rather than read once right after the traffic (a fast run read 0).
_outpkts() { in_ns director ipvsadm -Ln --stats --exact -t "$VIP:80" | awk '$1 == "TCP" { print $4 }'; }
_outpkts_ge() { (($(_outpkts) >= $1)); }
wait_for 10 "service OutPkts reach 80" _outpkts_ge 80 || true
assert_ge "IPVS rewrote the replies (service OutPkts)" 80 "$(_outpkts)"
if in_ns client "$E2E_BIN/hit" -n 1 -timeout 2s "http://$RS1_IP:8080/" >/dev/null 2>&1; then
	fail "client reached rs1 directly: the topology leaks"
else
	pass "client cannot reach the realservers directly"
fi
ravel_stop "$RAVEL_PID"
