#!/usr/bin/env bash
# Issue 5's colocated director: the director's node runs one of the service's
# four ready pods, so a statistic rule in its own RAVEL chains DNATs 1/4 of the
# new connections to that pod before IPVS sees them; IPVS sends the rest (DR)
# to the other node, which has the other three. The director sets
# net.ipv4.vs.conntrack=1 in its namespace.
#
#   client 10.0.0.10 --- lan 10.0.0.0/24 --- director 10.0.0.2 (s42-director, VIP 10.0.0.100)
#                             |                  '-- cbr0 10.244.0.1/24 -- pod-d1 10.244.0.11:8080
#                           nodea 10.0.0.11 (s42-node-a: VIP on lo + an echoserver on
#                                  VIP:80 standing in for its realserver role and its
#                                  three pods; the full realserver path is scenarios 40/41)
#
# Statistics: each of N=200 connections goes to the local pod independently
# with p = 1/4 (iptables' statistic match draws per new connection), so the
# local count is Binomial(200, 0.25): mean 50, sd sqrt(200*0.25*0.75) = 6.1.
# The check allows 0.25 +- 0.12 of the total, i.e. 26..74 connections, about
# 3.9 sd either side: a correct ravel fails it about once in 10,000 runs, while
# a broken share (isolated: 0, all local: 1, or 1/2 or 1/5 from a wrong count)
# lands outside it.
#
# e2e-needs: kapi
# e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
. "$(dirname "$0")/../lib-kube.sh"

need_ravel
need_kube
CLIENT_IP=10.0.0.10 DIRECTOR_IP=10.0.0.2 NODE_IP=10.0.0.11 VIP=10.0.0.100
N=200
mk_switch lan
mk_ns client director nodea
mk_link client lan "$CLIENT_IP/24"
mk_link director lan "$DIRECTOR_IP/24"
mk_link nodea lan "$NODE_IP/24"
kube_link director
mk_pod director pod-d1 10.244.0.11
rs_vip nodea "$VIP"
start_echos pod-d1:pod-d1:8080 nodea:node-a:80

log "topology, pod and echo servers ready"
SEL=ravel-e2e/s42
kt - <<EOF
node s42-director $DIRECTOR_IP --label $SEL=true
node s42-node-a $NODE_IP --label $SEL=true
service s42 web --port http:80:8080
slice s42 web web-1 --port http:8080 --endpoint 10.244.0.11:s42-director --endpoint 10.244.1.11:s42-node-a --endpoint 10.244.1.12:s42-node-a --endpoint 10.244.1.13:s42-node-a
EOF

kube_ravel_config "$SCENARIO_DIR/director.yaml" "$SEL" "$VIP" -- <<EOF
node: {role: director, interface: eth0, vipInterface: ravel0}
colocation: colocated
services:
  - name: web
    vip: $VIP
    port: 80
    kubernetes: {namespace: s42, service: web, portName: http}
EOF
kube_ravel director director --config "$SCENARIO_DIR/director.yaml" --node-name s42-director

log "director started"
# IPVS: the other node by its 3 pods; the director's own node never.
wait_weights 60 director "$VIP:80" "$NODE_IP:80=3" "$DIRECTOR_IP:80=absent"
share_rule() { [[ $(nat_count director '-m statistic --mode random --probability 0\.2[45][0-9]* -j RAVEL-SVC-') == 1 ]]; }
wait_for 30 "the director's statistic rule (p=0.25) in front of its pod" share_rule
in_ns director iptables-save -t nat | grep -E '^(:RAVEL|-A (PREROUTING|RAVEL))' || true
assert_eq "the local pod's DNAT" 1 "$(nat_count director '-j DNAT --to-destination 10\.244\.0\.11:8080')"
assert_eq "net.ipv4.vs.conntrack in the director's namespace" 1 "$(in_ns director cat /proc/sys/net/ipv4/vs/conntrack)"

log "programmed; sending $N connections"
out=$(hit client "http://$VIP/client" "$N" -c 4) || fail "requests through the VIP failed: $out"
echo "$out"
local_n=$(hit_count "$out" "pod-d1@$CLIENT_IP") remote_n=$(hit_count "$out" "node-a@$CLIENT_IP")
assert_eq "all $N answered, by the local pod or node A, each seeing the client" "$N" "$((local_n + remote_n))"
assert_ratio "local pod's share of $N connections (1 of 4 ready endpoints)" "$local_n" "$N" 0.25 0.12
wait_conns 10 director "$VIP:80" "$NODE_IP:80" "$remote_n" "IPVS sent the other $remote_n to node A"
