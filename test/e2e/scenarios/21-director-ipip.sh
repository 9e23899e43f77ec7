#!/usr/bin/env bash
# ravel as an IPIP (tunnel) director across subnets: the realservers sit
# behind a router on another subnet, so direct routing is impossible; with
# 'forwarding: tunnel' ravel programs IPVS to encapsulate, the realservers
# decapsulate on tunl0 and answer the client directly through the router.
#
#   client, director (ravel; VIP on ravel0) --- net1 10.0.1.0/24 --- router --- net2 10.0.2.0/24 --- rs1, rs2
. "$(dirname "$0")/../lib.sh"

topo_ipip
rs_serve "$VIP" 80 rs1 rs2

cfg=$SCENARIO_DIR/ravel.yaml
director_config "$cfg" 44421 ipvs= web_ipvs="scheduler: wrr, forwarding: tunnel" weights="2 1"

director_up ravel "$cfg"
in_ns director ipvsadm -Ln

assert_eq "destination $RS1_IP:80 (forward weight)" "Tunnel 2" "$(ipvs_dest director "$VIP:80" "$RS1_IP:80")"
assert_eq "destination $RS2_IP:80 (forward weight)" "Tunnel 1" "$(ipvs_dest director "$VIP:80" "$RS2_IP:80")"
# The VIP is on the dummy device, not on eth0: the director answers ARP for
# it on net1 because the address is local (arp_ignore=0).
if ip -n director -4 -o addr show dev eth0 | grep -q " $VIP/"; then fail "VIP is on eth0"; else pass "VIP is not on eth0"; fi

rx_before=$(ip -n rs1 -s link show tunl0 | awk '/RX:/ { getline; print $2; exit }')
out=$(hit client "http://$VIP/" 60 -c 4) || fail "some requests through the VIP failed: $out"
echo "$out"
rs1=$(hit_count "$out" rs1)
rs2=$(hit_count "$out" rs2)
assert_ge "rs1 served" 1 "$rs1"
assert_ge "rs2 served" 1 "$rs2"
assert_eq "all 60 requests answered" 60 "$((rs1 + rs2))"
assert_ratio "wrr 2:1 split" "$rs1" "$rs2" 2 0.7

# The traffic really was encapsulated: tunl0 on each realserver received it.
for rs in rs1 rs2; do
	rx=$(ip -n "$rs" -s link show tunl0 | awk '/RX:/ { getline; print $2; exit }')
	assert_ge "$rs tunl0 received IPIP packets" 1 "$rx"
done
rx_after=$(ip -n rs1 -s link show tunl0 | awk '/RX:/ { getline; print $2; exit }')
assert_ge "rs1 tunl0 packets grew with the requests" $((rx_before + rs1)) "$rx_after"
ravel_stop "$RAVEL_PID"
