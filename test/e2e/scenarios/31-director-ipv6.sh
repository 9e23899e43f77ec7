#!/usr/bin/env bash
# IPv6 through a dual-stack director: one ravel serves the same two realservers on an IPv4
# VIP and an IPv6 VIP by direct routing (weights 3:1 on both), and an IPv6 NAT service; real
# HTTP from the client reaches them. The IPv6 VIP lives on ravel0, so the kernel does not
# answer neighbour solicitations for it on eth0: ravel does. The client (playing the gateway,
# node.gateway) learns the VIP's MAC from ravel's announcement alone, without soliciting it,
# and a second client's solicitation is answered.
#
#   client --- lan: 10.0.0.0/24, fd00:e2e::/64 --- director (ravel run; VIPs on ravel0)
#                        |      \
#                       rs1     rs2   (VIPs on lo; NAT addresses fd00:e2f::11, ::12)
. "$(dirname "$0")/../lib.sh"

CLIENT6=fd00:e2e::10 DIRECTOR6=fd00:e2e::2 RS16=fd00:e2e::11 RS26=fd00:e2e::12 VIP6=fd00:e2e::100
NAT16=fd00:e2f::11 NAT26=fd00:e2f::12
# Duplicate address detection off before the links exist: under emulation it keeps new
# addresses, link-local ones too, tentative for seconds.
CLIENT_IP=10.0.0.10 DIRECTOR_IP=10.0.0.2 RS1_IP=10.0.0.11 RS2_IP=10.0.0.12 VIP=10.0.0.100
mk_switch lan
mk_ns client client2 director rs1 rs2
for ns in client client2 director rs1 rs2; do
	ns_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
done
mk_link client lan "$CLIENT_IP/24"
mk_link client2 lan 10.0.0.20/24
ip -n client2 addr add fd00:e2e::20/64 dev eth0 nodad
mk_link director lan "$DIRECTOR_IP/24"
mk_link rs1 lan "$RS1_IP/24"
mk_link rs2 lan "$RS2_IP/24"
ip -n client addr add "$CLIENT6/64" dev eth0 nodad
ip -n director addr add "$DIRECTOR6/64" dev eth0 nodad
ip -n director addr add fd00:e2f::2/64 dev eth0 nodad
# IPVS NAT sends the replies back through the director, which forwards them.
ns_sysctl director net.ipv6.conf.all.forwarding=1
for i in 1 2; do
	rs=rs$i
	ip -n "$rs" addr add "fd00:e2e::1$i/64" dev eth0 nodad
	ip -n "$rs" addr add "fd00:e2f::1$i/64" dev eth0 nodad
	# Direct routing: the VIPs on lo (an IPv6 address on lo is not answered for on eth0).
	ip -n "$rs" addr add "$VIP6/128" dev lo
	# NAT: replies from the NAT address go back through the director. The director forwards
	# them out of the interface they came in on, so it sends the realserver an ICMPv6
	# redirect (IPv6 has no send_redirects to turn that off): a realserver that took it
	# would answer the client directly, bypassing IPVS. On one segment, realservers of an
	# IPv6 NAT service must not accept redirects.
	ip -n "$rs" -6 rule add from fd00:e2f::/64 table 100
	ip -n "$rs" -6 route add default via fd00:e2f::2 dev eth0 table 100
	ns_sysctl "$rs" net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.eth0.accept_redirects=0
done
rs_serve "$VIP" 80 rs1 rs2

cfg=$SCENARIO_DIR/ravel.yaml
ravel_config "$cfg" <<EOF
apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director, role: director, interface: eth0, vipInterface: ravel0, gateway: "$CLIENT6"}
vipPool: [$VIP, "$VIP6"]
defaults:
  ipvs: {scheduler: wrr, forwarding: dr}
services:
  - name: web
    vip: $VIP
    port: 80
    backends: [{address: $RS1_IP, weight: 3}, {address: $RS2_IP, weight: 1}]
  - name: web6
    vip: "$VIP6"
    port: 80
    backends: [{address: "$RS16", weight: 3}, {address: "$RS26", weight: 1}]
  - name: web6-nat
    vip: "$VIP6"
    port: 8080
    ipvs: {forwarding: nat}
    backends: [{address: "$NAT16", port: 80, weight: 3}, {address: "$NAT26", port: 80, weight: 1}]
arp: {interval: 2s}
resync: 2s
coordinator: {ports: [44431]}
metrics: {listen: "127.0.0.1:10231"}
EOF

director_mac=$(ip -n director -o link show eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "link/ether") print $(i + 1) }')
neigh6() { ip -n client -6 neigh show "$VIP6" dev eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'; }
solicits() { in_ns client awk '$1 == "Icmp6OutNeighborSolicits" { print $2 }' /proc/net/snmp6; }
assert_eq "client's entry for $VIP6 before ravel starts" "" "$(neigh6)"
sent0=$(solicits)

ravel_start director ravel "$cfg"
wait_for 60 "ravel programs [$VIP6]:80 with 2 destinations" ipvs_has director "[$VIP6]:80" 2
wait_for 30 "ravel binds $VIP6/128 on ravel0" sh -c "ip -n director -6 -o addr show dev ravel0 | grep -q ' $VIP6/128 '"
in_ns director ipvsadm -Ln
ip -n director -6 addr show ravel0
if ip -n director -6 -o addr show dev ravel0 | grep -q "$VIP6/128.*\(tentative\|dadfailed\)"; then
	fail "$VIP6 is held back by duplicate address detection: $(ip -n director -6 -o addr show dev ravel0)"
fi
assert_eq "[$VIP6]:80 -> [$RS16]:80" "Route 3" "$(ipvs_dest director "[$VIP6]:80" "[$RS16]:80")"
assert_eq "[$VIP6]:8080 -> [$NAT26]:80" "Masq 1" "$(ipvs_dest director "[$VIP6]:8080" "[$NAT26]:80")"

# The announcement: the client, node.gateway, learns the VIP from ravel's solicitation of
# its address, without soliciting the VIP itself.
learned() { [[ $(neigh6) == "$director_mac" ]]; }
if wait_for 20 "the client learns $VIP6 from the announcement" learned; then
	pass "client learned $VIP6 -> $director_mac ($(ip -n client -6 neigh show "$VIP6"))"
fi
assert_eq "neighbour solicitations the client sent meanwhile" "$sent0" "$(solicits)"

# Forget it: it is back within an interval, still without a solicitation of the client's.
ip -n client -6 neigh flush dev eth0
sent1=$(solicits)
wait_for 10 "the client learns $VIP6 again within an interval" learned
assert_eq "neighbour solicitations the client sent meanwhile" "$sent1" "$(solicits)"

# DR and NAT through the IPv6 VIP, 3:1, and the IPv4 VIP to the same realservers.
out=$(hit client "http://[$VIP6]/" 100 -c 4) || fail "some requests to [$VIP6]:80 failed: $out"
assert_ratio "IPv6 DR 3:1" "$(hit_count "$out" rs1)" "$(hit_count "$out" rs2)" 3 1
out=$(hit client "http://[$VIP6]:8080/" 100 -c 4) || fail "some requests to [$VIP6]:8080 failed: $out"
assert_ratio "IPv6 NAT 3:1" "$(hit_count "$out" rs1)" "$(hit_count "$out" rs2)" 3 1
out=$(hit client "http://$VIP/" 100 -c 4) || fail "some requests to $VIP:80 failed: $out"
assert_ratio "IPv4 DR 3:1 beside it" "$(hit_count "$out" rs1)" "$(hit_count "$out" rs2)" 3 1
answer=$(in_ns client curl -6 -fsS --max-time 5 "http://[$VIP6]/") || fail "curl -6 through the VIP failed"
log "curl -6 http://[$VIP6]/ answered: $answer"

# A second client that is not the gateway creates no entry from the advertisements
# (accept_untracked_na=0, the default): it has to ask, and ravel answers its solicitation,
# which the kernel would not.
assert_eq "client2's entry for $VIP6 after the announcements" "" \
	"$(ip -n client2 -6 neigh show "$VIP6" dev eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }')"
sent2=$(in_ns client2 awk '$1 == "Icmp6OutNeighborSolicits" { print $2 }' /proc/net/snmp6)
answered0=$(metric director 127.0.0.1:10231 ravel_ndp_solicitations_answered_total)
out=$(hit client2 "http://[$VIP6]/" 1) || fail "request from client2 failed: $out"
assert_ge "neighbour solicitations client2 sent" $((sent2 + 1)) \
	"$(in_ns client2 awk '$1 == "Icmp6OutNeighborSolicits" { print $2 }' /proc/net/snmp6)"
answered_more() { (($(metric director 127.0.0.1:10231 ravel_ndp_solicitations_answered_total) > answered0)); }
if wait_for 10 "ravel counts the answered solicitation" answered_more; then
	pass "ravel answered the client's solicitation for $VIP6 (ravel_ndp_solicitations_answered_total above $answered0)"
fi
assert_ge "IPv6 announcements counted" 2 "$(metric director 127.0.0.1:10231 ravel_ndp_advertisements_total)"

assert_eq "plan after convergence" "no changes" "$(ravel_plan director "$cfg")"
ravel_stop "$RAVEL_PID"
