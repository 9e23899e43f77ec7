#!/usr/bin/env bash
# ravel as a direct-routing director: 'ravel run' programs IPVS from static
# backends (weights 3 and 1, wrr), binds the VIP on its dummy device ravel0,
# and real HTTP through the VIP is served by both realservers 3:1.
#
#   client --- lan (10.0.0.0/24) --- director (ravel run; VIP on ravel0)
#                     |    \
#                    rs1    rs2   (VIP on lo, ARP suppressed)
. "$(dirname "$0")/../lib.sh"

topo_dr
rs_serve "$VIP" 80 rs1 rs2

cfg=$SCENARIO_DIR/ravel.yaml
director_config "$cfg" 44420

# Nothing is there yet: the plan against the kernel adds everything.
plan=$(ravel_plan director "$cfg")
echo "$plan"
assert_eq "plan before start adds 1 service" 1 "$(grep -c '^+ add service' <<<"$plan")"
assert_eq "plan before start adds 2 destinations" 2 "$(grep -c '^+ add destination' <<<"$plan")"

director_up ravel "$cfg"
in_ns director ipvsadm -Ln
ip -n director -4 addr show ravel0

# The kernel's table is exactly the config: direct routing ("Route"), weights 3 and 1.
assert_eq "IPVS scheduler of $VIP:80" wrr "$(in_ns director ipvsadm -Ln -t "$VIP:80" | awk '$1 == "TCP" { print $3 }')"
assert_eq "destination $RS1_IP:80 (forward weight)" "Route 3" "$(ipvs_dest director "$VIP:80" "$RS1_IP:80")"
assert_eq "destination $RS2_IP:80 (forward weight)" "Route 1" "$(ipvs_dest director "$VIP:80" "$RS2_IP:80")"
assert_eq "ravel0 is a dummy device" dummy "$(ip -n director -d link show ravel0 | awk '/^ +dummy/ { print $1; exit }')"

out=$(hit client "http://$VIP/" 100 -c 4) || fail "some requests through the VIP failed: $out"
echo "$out"
rs1=$(hit_count "$out" rs1)
rs2=$(hit_count "$out" rs2)
assert_ge "rs1 served" 1 "$rs1"
assert_ge "rs2 served" 1 "$rs2"
assert_eq "all 100 requests answered" 100 "$((rs1 + rs2))"
assert_ratio "wrr 3:1 split" "$rs1" "$rs2" 3 1

# Direct routing: the realservers answered the client themselves, so the
# director's IPVS saw only the inbound half (OutPkts stays 0 for DR).
in_ns director ipvsadm -Ln --stats --exact

# The plan against the running kernel is empty: ravel converged.
assert_eq "plan after convergence" "no changes" "$(ravel_plan director "$cfg")"
ravel_stop "$RAVEL_PID"
