#!/usr/bin/env bash
# Proves the bed: a real IPVS direct-routing service in the guest kernel,
# set up by hand with ipvsadm, serves HTTP from two realservers by weight.
#
#   client --- lan (10.0.0.0/24) --- director (VIP on dummy vip0, IPVS wrr)
#                     |    \
#                    rs1    rs2   (VIP on lo, ARP suppressed)
#
# Later scenarios follow the same pattern with 'ravel run --config FILE' in
# the director namespace instead of ipvsadm.
. "$(dirname "$0")/../lib.sh"

topo_dr

director_vip director "$VIP"
rs_vip rs1 "$VIP"
rs_vip rs2 "$VIP"
start_echo rs1 rs1
start_echo rs2 rs2

# -g: gatewaying (direct routing). The realserver addresses must be routable
# from the director's namespace or ipvsadm says "Invalid operation".
in_ns director ipvsadm -A -t "$VIP:80" -s wrr
in_ns director ipvsadm -a -t "$VIP:80" -r "$RS1_IP:80" -g -w 3
in_ns director ipvsadm -a -t "$VIP:80" -r "$RS2_IP:80" -g -w 1
in_ns director ipvsadm -Ln

out=$(hit client "http://$VIP/" 80) || fail "some requests through the VIP failed"
echo "$out"

rs1=$(hit_count "$out" rs1)
rs2=$(hit_count "$out" rs2)
assert_ge "rs1 served" 1 "$rs1"
assert_ge "rs2 served" 1 "$rs2"
assert_eq "all 80 requests answered" 80 "$((rs1 + rs2))"
assert_ratio "wrr 3:1 split" "$rs1" "$rs2" 3 1
