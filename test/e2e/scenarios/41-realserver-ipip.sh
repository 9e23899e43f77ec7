#!/usr/bin/env bash
# Issue 5's full path across subnets: the director (ravel, IPVS tunnel mode,
# following the real kube-apiserver) reaches the realserver node only through
# a router and encapsulates in IPIP; the node's ravel (role realserver) must
# create tunl0 itself, loosen rp_filter on it, bind the VIP on lo, and DNAT the
# decapsulated traffic to the node's pods, which see the client's address.
#
#   net1 10.0.1.0/24: client 10.0.1.10, director 10.0.1.2 (VIP 10.0.1.100), router 10.0.1.1
#   net2 10.0.2.0/24: router 10.0.2.1, nodea 10.0.2.11 (s41-node-a) --- cbr0 10.244.1.1/24
#                                                                   |-- pod-a1 10.244.1.11:8080
#                                                                   '-- pod-a2 10.244.1.12:8080
#
# Unlike lib.sh's topo_ipip nothing prepares the node for IPIP: its namespace
# is made while net.core.fb_tunnels_only_for_init_net=1, so the kernel gives it
# no fallback tunl0 (ravel has to create it through netlink), and its rp_filter
# is strict (1) on all/default/eth0, as on a hardened host: unless ravel turns
# reverse-path filtering off for tunl0 (conf/all and conf/tunl0) the
# decapsulated packets (from the client, whose route is out of eth0) are
# dropped.
#
# e2e-needs: kapi
# e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
. "$(dirname "$0")/../lib-kube.sh"

need_ravel
need_kube
CLIENT_IP=10.0.1.10 DIRECTOR_IP=10.0.1.2 ROUTER_IP=10.0.1.1 RS_GW=10.0.2.1 NODE_IP=10.0.2.11 VIP=10.0.1.100
mk_switch net1
mk_switch net2
mk_ns client director router
# The node's namespace without a fallback tunl0. The sysctl only matters when
# a namespace is created: set it back at once (other scenarios rely on tunl0).
fb=$(sysctl -n net.core.fb_tunnels_only_for_init_net)
sysctl -q -w net.core.fb_tunnels_only_for_init_net=1
mk_ns nodea
sysctl -q -w net.core.fb_tunnels_only_for_init_net="$fb"
if ip -n nodea link show tunl0 >/dev/null 2>&1; then
	die "nodea has a tunl0 before ravel runs; the scenario could not prove ravel creates it"
fi
pass "no tunl0 on the node before ravel"

mk_link client net1 "$CLIENT_IP/24"
mk_link director net1 "$DIRECTOR_IP/24"
mk_link router net1 "$ROUTER_IP/24" eth0
mk_link router net2 "$RS_GW/24" eth1
mk_link nodea net2 "$NODE_IP/24"
# The router forwards; the node's answers come from the VIP (a net1 address)
# into its net2 side: no reverse-path filtering there.
ns_sysctl router net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
	net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0
ip -n client route add default via "$ROUTER_IP"
ip -n director route add default via "$ROUTER_IP"
ip -n nodea route add default via "$RS_GW"
ns_sysctl nodea net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
kube_link director
kube_link nodea
mk_pod nodea pod-a1 10.244.1.11
mk_pod nodea pod-a2 10.244.1.12
start_echos pod-a1:pod-a1:8080 pod-a2:pod-a2:8080

log "topology, pods and echo servers ready"
SEL=ravel-e2e/s41
kt - <<EOF
node s41-director $DIRECTOR_IP --label $SEL=true
node s41-node-a $NODE_IP --label $SEL=true
service s41 web --port http:80:8080
slice s41 web web-1 --port http:8080 --endpoint 10.244.1.11:s41-node-a --endpoint 10.244.1.12:s41-node-a
EOF

kube_ravel_config "$SCENARIO_DIR/ravel.yaml" "$SEL" "$VIP" -- <<EOF
node: {role: director, interface: eth0, vipInterface: ravel0}
defaults:
  ipvs: {forwarding: tunnel}
services:
  - name: web
    vip: $VIP
    port: 80
    kubernetes: {namespace: s41, service: web, portName: http}
coordinator: {ports: [44444], failoverTimeout: 1s}
EOF
kube_ravel director director --config "$SCENARIO_DIR/ravel.yaml" --node-name s41-director
kube_ravel nodea realserver --config "$SCENARIO_DIR/ravel.yaml" --node-name s41-node-a --role realserver --vip-interface lo

log "director and realserver started"
wait_weights 60 director "$VIP:80" "$NODE_IP:80=2"
fwd=$(in_ns director ipvsadm -Ln -t "$VIP:80" | awk -v rs="$NODE_IP:80" '$2 == rs { print $3 }')
assert_eq "IPVS forwards by tunnel" Tunnel "$fwd"
DNAT_RE='-j DNAT --to-destination 10\.244\.1\.1[12]:8080'
pods_dnat() { [[ $(nat_count nodea "$DNAT_RE") == 2 ]]; }
wait_for 60 "realserver chains DNAT to both pods" pods_dnat
tunl=$(ip -n nodea -d link show tunl0 2>&1) || true
echo "$tunl"
if grep -qE '^ +ipip ' <<<"$tunl"; then pass "ravel created tunl0, an ipip device"; else fail "no ipip tunl0 on the node"; fi
if grep -qE 'tunl0@[A-Za-z0-9]+: <([A-Z_]+,)*UP[,>]' <<<"$tunl"; then pass "tunl0 is up"; else fail "tunl0 is not up"; fi
# Reverse-path filtering off for tunl0: the kernel takes the larger of conf/all
# and conf/tunl0 and, tunl0 having no address, drops the decapsulated packets
# in loose mode (2) too.
assert_eq "rp_filter on tunl0 set to 0 by ravel" 0 "$(in_ns nodea sysctl -n net.ipv4.conf.tunl0.rp_filter)"
assert_eq "rp_filter on conf/all lowered to 0 by ravel (it was 1)" 0 "$(in_ns nodea sysctl -n net.ipv4.conf.all.rp_filter)"
assert_eq "eth0 keeps its own strict rp_filter" 1 "$(in_ns nodea sysctl -n net.ipv4.conf.eth0.rp_filter)"
assert_eq "VIP bound on the node's lo" 1 "$(ip -n nodea -4 addr show dev lo | grep -c "inet $VIP/32" || true)"

log "programmed; sending traffic"
# One answer first, with short timeouts: a broken path fails in seconds, not
# 60 timeouts later.
if ! wait_for 20 "a first answer through the VIP" hit client "http://$VIP/client" 1 -timeout 2s; then
	log "node: reverse-path filter drops $(netstat_counter nodea TcpExt:IPReversePathFilter), tunl0 rp_filter $(in_ns nodea sysctl -n net.ipv4.conf.tunl0.rp_filter), all $(in_ns nodea sysctl -n net.ipv4.conf.all.rp_filter)"
	ip -n nodea -s link show tunl0 || true
	in_ns nodea iptables -t nat -L -n -v || true
	die "no answer through the VIP"
fi
out=$(hit client "http://$VIP/client" 60 -c 4 -timeout 3s) || fail "requests through the VIP failed: $out"
echo "$out"
p1=$(hit_count "$out" "pod-a1@$CLIENT_IP") p2=$(hit_count "$out" "pod-a2@$CLIENT_IP")
assert_ge "pod-a1 answered, seeing the client's address" 1 "$p1"
assert_ge "pod-a2 answered, seeing the client's address" 1 "$p2"
assert_eq "all 60 answers came from a pod that saw $CLIENT_IP" 60 "$((p1 + p2))"
rx=$(ip -n nodea -s link show tunl0 | awk '/RX:/ { getline; print $2; exit }')
assert_ge "the node decapsulated them on tunl0 (packets)" 60 "$rx"
assert_eq "no reverse-path filter drops on the node" 0 "$(netstat_counter nodea TcpExt:IPReversePathFilter)"
