#!/usr/bin/env bash
# Issue 5's full path, direct routing: client -> director (ravel, IPVS DR,
# following the real kube-apiserver) -> realserver node (ravel role
# realserver: VIP on lo, ARP kept quiet, RAVEL DNAT chains) -> the node's two
# pods. The pods must answer with the CLIENT's address (no masquerade).
#
#   client 10.0.0.10 --- lan 10.0.0.0/24 --- director 10.0.0.2 (VIP 10.0.0.100 on ravel0)
#                             |
#                           nodea 10.0.0.11 (s40-node-a) --- cbr0 10.244.1.1/24
#                                                              |-- pod-a1 10.244.1.11:8080
#                                                              '-- pod-a2 10.244.1.12:8080
#
# The realserver's director is "gone" from the start (no director in its own
# namespace answers 127.0.0.1:44444), so its role comes up after
# failoverTimeout: the normal state of a node that is only a realserver.
#
# e2e-needs: kapi
# e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
. "$(dirname "$0")/../lib-kube.sh"

need_ravel
need_kube
CLIENT_IP=10.0.0.10 DIRECTOR_IP=10.0.0.2 NODE_IP=10.0.0.11 VIP=10.0.0.100
mk_switch lan
mk_ns client director nodea
mk_link client lan "$CLIENT_IP/24"
mk_link director lan "$DIRECTOR_IP/24"
mk_link nodea lan "$NODE_IP/24"
kube_link director
kube_link nodea
mk_pod nodea pod-a1 10.244.1.11
mk_pod nodea pod-a2 10.244.1.12
start_echos pod-a1:pod-a1:8080 pod-a2:pod-a2:8080

log "topology, pods and echo servers ready"
SEL=ravel-e2e/s40
kt - <<EOF
node s40-director $DIRECTOR_IP --label $SEL=true
node s40-node-a $NODE_IP --label $SEL=true
service s40 web --port http:80:8080
slice s40 web web-1 --port http:8080 --endpoint 10.244.1.11:s40-node-a --endpoint 10.244.1.12:s40-node-a
EOF

# One file for both roles, as in production; the realserver overrides role
# and VIP interface by flag.
kube_ravel_config "$SCENARIO_DIR/ravel.yaml" "$SEL" "$VIP" -- <<EOF
node: {role: director, interface: eth0, vipInterface: ravel0}
services:
  - name: web
    vip: $VIP
    port: 80
    kubernetes: {namespace: s40, service: web, portName: http}
coordinator: {ports: [44444], failoverTimeout: 1s}
EOF
kube_ravel director director --config "$SCENARIO_DIR/ravel.yaml" --node-name s40-director
kube_ravel nodea realserver --config "$SCENARIO_DIR/ravel.yaml" --node-name s40-node-a --role realserver --vip-interface lo

log "director and realserver started"
wait_weights 60 director "$VIP:80" "$NODE_IP:80=2"
DNAT_RE='-j DNAT --to-destination 10\.244\.1\.1[12]:8080'
pods_dnat() { [[ $(nat_count nodea "$DNAT_RE") == 2 ]]; }
wait_for 60 "realserver chains DNAT to both pods" pods_dnat
log "nat chains on the node: $(nat_chains nodea | tr '\n' ' ')"
assert_eq "a PREROUTING jump to RAVEL" 1 "$(nat_count nodea '^-A PREROUTING .*-j RAVEL$')"
assert_eq "one DNAT per pod" 2 "$(nat_count nodea "$DNAT_RE")"
vip_lo=$(ip -n nodea -4 addr show dev lo)
assert_eq "VIP bound on the node's lo" 1 "$(grep -c "inet $VIP/32" <<<"$vip_lo" || true)"
assert_eq "arp_ignore=1 set by ravel" 1 "$(in_ns nodea sysctl -n net.ipv4.conf.eth0.arp_ignore)"
assert_eq "arp_announce=2 set by ravel" 2 "$(in_ns nodea sysctl -n net.ipv4.conf.eth0.arp_announce)"
in_ns nodea iptables-save -t nat | grep -E '^(:RAVEL|-A (PREROUTING|RAVEL))' || true

log "programmed; sending traffic"
out=$(hit client "http://$VIP/client" 60 -c 4) || fail "requests through the VIP failed: $out"
echo "$out"
p1=$(hit_count "$out" "pod-a1@$CLIENT_IP") p2=$(hit_count "$out" "pod-a2@$CLIENT_IP")
assert_ge "pod-a1 answered, seeing the client's address" 1 "$p1"
assert_ge "pod-a2 answered, seeing the client's address" 1 "$p2"
assert_eq "all 60 answers came from a pod that saw $CLIENT_IP" 60 "$((p1 + p2))"
# The director forwarded them all (DR: the node answered the client directly).
wait_conns 10 director "$VIP:80" "$NODE_IP:80" 60 "IPVS sent all 60 to the node"
