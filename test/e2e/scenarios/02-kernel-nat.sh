#!/usr/bin/env bash
# IPVS masquerading (NAT), set up by hand with ipvsadm: the director
# rewrites the destination to a realserver (here also the port: VIP:80 to
# :8080) and, as the realservers' gateway, rewrites their replies back.
#
#   client --- net1 10.0.1.0/24 --- director (eth0 | eth1) --- net2 10.0.2.0/24 --- rs1, rs2
. "$(dirname "$0")/../lib.sh"

topo_nat

director_vip director "$VIP"
# No VIP on the realservers with NAT: they see packets to their own address.
start_echo rs1 rs1 8080
start_echo rs2 rs2 8080

# -m: masquerading.
in_ns director ipvsadm -A -t "$VIP:80" -s wrr
in_ns director ipvsadm -a -t "$VIP:80" -r "$RS1_IP:8080" -m -w 3
in_ns director ipvsadm -a -t "$VIP:80" -r "$RS2_IP:8080" -m -w 1
in_ns director ipvsadm -Ln

out=$(hit client "http://$VIP/" 80) || fail "some requests through the VIP failed"
echo "$out"

rs1=$(hit_count "$out" rs1)
rs2=$(hit_count "$out" rs2)
assert_ge "rs1 served" 1 "$rs1"
assert_ge "rs2 served" 1 "$rs2"
assert_eq "all 80 requests answered" 80 "$((rs1 + rs2))"
assert_ratio "wrr 3:1 split" "$rs1" "$rs2" 3 1

# Without the director the realservers are unreachable from the client:
# there is no route, which is what makes this NAT and not routing.
if in_ns client "$E2E_BIN/hit" -n 1 -timeout 2s "http://$RS1_IP:8080/" >/dev/null 2>&1; then
	fail "client reached rs1 directly: the topology leaks"
else
	pass "client cannot reach the realservers directly"
fi
