#!/usr/bin/env bash
# IPv6 tunnel forwarding across a router: the realservers are on another IPv6 subnet, so the
# director's IPVS encapsulates in IPv6 (ip6ip6); ravel's realserver role on each of them makes
# the catch-all decapsulation device ip6tnl0 itself (their namespaces have no fallback
# devices) and binds the VIP on lo. Real HTTP through the VIP is served 2:1, and it really
# came through ip6tnl0.
#
#   net1 fd00:e21::/64: client ::10, director ::2 (VIP ::100 on ravel0), router ::1
#   net2 fd00:e22::/64: router ::1, rs1 ::11, rs2 ::12
. "$(dirname "$0")/../lib.sh"

need_ravel
CLIENT6=fd00:e21::10 DIRECTOR6=fd00:e21::2 ROUTER1=fd00:e21::1 ROUTER2=fd00:e22::1
RS16=fd00:e22::11 RS26=fd00:e22::12 VIP6=fd00:e21::100
mk_switch net1
mk_switch net2
mk_ns client director router
# The realservers' namespaces without fallback tunnel devices: the sysctl only matters when a
# namespace is made; set it back at once (other scenarios rely on tunl0).
fb=$(sysctl -n net.core.fb_tunnels_only_for_init_net)
sysctl -q -w net.core.fb_tunnels_only_for_init_net=1
mk_ns rs1 rs2
sysctl -q -w net.core.fb_tunnels_only_for_init_net="$fb"
for ns in client director router rs1 rs2; do
	# No duplicate address detection: under emulation it keeps new addresses tentative for
	# seconds.
	ns_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
done
if ip -n rs1 link show ip6tnl0 >/dev/null 2>&1; then
	die "rs1 has an ip6tnl0 before ravel runs; the scenario could not prove ravel makes it"
fi
pass "no ip6tnl0 on the realservers before ravel"
mk_link client net1 "$CLIENT6/64"
mk_link director net1 "$DIRECTOR6/64"
mk_link router net1 "$ROUTER1/64" eth0
mk_link router net2 "$ROUTER2/64" eth1
mk_link rs1 net2 "$RS16/64"
mk_link rs2 net2 "$RS26/64"
ns_sysctl router net.ipv6.conf.all.forwarding=1
ip -n client -6 route add default via "$ROUTER1"
ip -n director -6 route add default via "$ROUTER1"
ip -n rs1 -6 route add default via "$ROUTER2"
ip -n rs2 -6 route add default via "$ROUTER2"
rs_serve "" 80 rs1 rs2

# One file for both roles; the realservers override role, name and vipInterface.
cfg=$SCENARIO_DIR/ravel.yaml
ravel_config "$cfg" <<EOF
apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director, role: director, interface: eth0, vipInterface: ravel0}
vipPool: ["$VIP6"]
services:
  - name: web6
    vip: "$VIP6"
    port: 80
    ipvs: {scheduler: wrr, forwarding: tunnel}
    backends: [{address: "$RS16", weight: 2}, {address: "$RS26", weight: 1}]
resync: 2s
coordinator: {ports: [44432], failoverTimeout: 1s}
EOF
for rs in rs1 rs2; do
	bg "$rs" "ravel-$rs" "$RAVEL_BIN" run --config "$cfg" --role realserver --node-name "$rs" --vip-interface lo
done
ravel_start director ravel "$cfg"
for rs in rs1 rs2; do
	wait_for 60 "ravel makes ip6tnl0 on $rs and sets it up" sh -c "ip -n $rs -o link show ip6tnl0 | grep -q '[<,]UP[,>]'"
	wait_for 30 "ravel binds $VIP6 on lo of $rs" sh -c "ip -n $rs -6 -o addr show dev lo | grep -q ' $VIP6/128 '"
done
wait_for 60 "ravel programs [$VIP6]:80 with 2 destinations" ipvs_has director "[$VIP6]:80" 2
in_ns director ipvsadm -Ln
ip -n rs1 -d link show ip6tnl0
assert_eq "[$VIP6]:80 -> [$RS16]:80" "Tunnel 2" "$(ipvs_dest director "[$VIP6]:80" "[$RS16]:80")"

rx() { ip -n "$1" -s link show ip6tnl0 | awk '/RX:/ { getline; print $2; exit }'; }
rx1=$(rx rs1)
out=$(hit client "http://[$VIP6]/" 60 -c 4) || fail "some requests through [$VIP6]:80 failed: $out"
echo "$out"
rs1n=$(hit_count "$out" rs1)
rs2n=$(hit_count "$out" rs2)
assert_eq "all 60 requests answered" 60 "$((rs1n + rs2n))"
assert_ratio "wrr 2:1 split through the IPv6 tunnel" "$rs1n" "$rs2n" 2 0.7
assert_ge "rs1's ip6tnl0 received the encapsulated requests" $((rx1 + rs1n)) "$(rx rs1)"
assert_ge "rs2's ip6tnl0 received packets" 1 "$(rx rs2)"
ravel_stop "$RAVEL_PID"
