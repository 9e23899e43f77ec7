#!/usr/bin/env bash
# IPVS tunnelling (IPIP) across subnets, set up by hand with ipvsadm: the
# director reaches the realservers only through a router, encapsulates each
# packet to the VIP in IPIP; the realservers decapsulate on tunl0 and answer
# the client directly (through the router) from the VIP.
#
#   client, director --- net1 10.0.1.0/24 --- router --- net2 10.0.2.0/24 --- rs1, rs2
. "$(dirname "$0")/../lib.sh"

topo_ipip

director_vip director "$VIP"
# The VIP on lo works for IPIP as for DR: the decapsulated packet is for a
# local address. ARP suppression is moot across subnets but harmless.
rs_vip rs1 "$VIP"
rs_vip rs2 "$VIP"
start_echo rs1 rs1
start_echo rs2 rs2

# -i: ipip tunnelling.
in_ns director ipvsadm -A -t "$VIP:80" -s wrr
in_ns director ipvsadm -a -t "$VIP:80" -r "$RS1_IP:80" -i -w 3
in_ns director ipvsadm -a -t "$VIP:80" -r "$RS2_IP:80" -i -w 1
in_ns director ipvsadm -Ln

out=$(hit client "http://$VIP/" 80) || fail "some requests through the VIP failed"
echo "$out"

rs1=$(hit_count "$out" rs1)
rs2=$(hit_count "$out" rs2)
assert_ge "rs1 served" 1 "$rs1"
assert_ge "rs2 served" 1 "$rs2"
assert_eq "all 80 requests answered" 80 "$((rs1 + rs2))"
assert_ratio "wrr 3:1 split" "$rs1" "$rs2" 3 1

# The traffic really was encapsulated: tunl0 on the realservers received it.
rx1=$(ip -n rs1 -s link show tunl0 | awk '/RX:/ { getline; print $2; exit }')
assert_ge "rs1 tunl0 received packets" 1 "$rx1"
