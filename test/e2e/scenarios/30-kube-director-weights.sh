#!/usr/bin/env bash
# Issue 4's end-to-end case: a director following a REAL kube-apiserver (on
# the host, reached through QEMU's user network) programs IPVS weights from
# EndpointSlices, changes them in place when the endpoints scale from one node
# to two, and drains a node relabelled out of the nodeSelector; real TCP
# through the VIP reaches exactly the nodes the weights say.
#
#   client --- lan 10.0.0.0/24 --- director (ravel run, IPVS DR, VIP on ravel0)
#                     |      \
#                   rs1       rs2     nodes s30-node-a / s30-node-b: VIP on lo,
#                                     an echoserver on VIP:80 standing in for
#                                     "this node serves the service" (the full
#                                     realserver path is scenario 40)
#
# The director's own node (s30-director) is labelled and has a ready endpoint
# too: it must never become an IPVS destination (isolated mode).
#
# e2e-needs: kapi
# e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
. "$(dirname "$0")/../lib-kube.sh"

need_ravel
need_kube
topo_dr
kube_link director
rs_vip rs1 "$VIP"
rs_vip rs2 "$VIP"
start_echos rs1:node-a:80 rs2:node-b:80

log "topology and echo servers ready"
SEL=ravel-e2e/s30
SVC=$VIP:80
A=$RS1_IP:80 B=$RS2_IP:80 D=$DIRECTOR_IP:80

# Two ready endpoints on node A, one on the director's own node, none on B.
kt - <<EOF
node s30-director $DIRECTOR_IP --label $SEL=true
node s30-node-a $RS1_IP --label $SEL=true
node s30-node-b $RS2_IP --label $SEL=true
service s30 web --port http:80:8080
slice s30 web web-1 --port http:8080 --endpoint 10.244.1.11:s30-node-a --endpoint 10.244.1.12:s30-node-a --endpoint 10.244.0.11:s30-director
EOF

kube_ravel_config "$SCENARIO_DIR/director.yaml" "$SEL" "$VIP" -- <<EOF
node: {role: director, interface: eth0, vipInterface: ravel0}
services:
  - name: web
    vip: $VIP
    port: 80
    kubernetes: {namespace: s30, service: web, portName: http}
EOF
# --log-level debug: the log then has every plan in full (info has only their summary).
kube_ravel director director --config "$SCENARIO_DIR/director.yaml" --node-name s30-director --log-level debug

# --- 1. endpoints on node A only: A 2, B 0, the director never ------------------
wait_weights 60 director "$SVC" "$A=2" "$B=0" "$D=absent"
out=$(hit client "http://$VIP/" 30 -c 4) || fail "requests through the VIP failed (phase 1): $out"
assert_eq "phase 1: all 30 requests to node A" 30 "$(hit_count "$out" node-a)"
assert_eq "phase 1: none to node B (weight 0)" 0 "$(hit_count "$out" node-b)"
wait_conns 10 director "$SVC" "$A" 30 "IPVS counted node A's 30 connections"
conns_a=$(ipvs_conns director "$SVC" "$A")

# --- 2. scale: one endpoint more, on node B (an EndpointSlice update) ---------------
t0=$(now)
kt slice s30 web web-1 --port http:8080 --endpoint 10.244.1.11:s30-node-a --endpoint 10.244.1.12:s30-node-a \
	--endpoint 10.244.0.11:s30-director --endpoint 10.244.2.11:s30-node-b
wait_weights 30 director "$SVC" "$A=2" "$B=1" "$D=absent"
log "weights followed the EndpointSlice update within $(secs_between "$t0" "$(now)")s (kubetool + polling included)"
# In place: the destination objects survived (their counters did not restart).
assert_ge "node A's destination edited in place (counter kept)" "$conns_a" "$(ipvs_conns director "$SVC" "$A")"
if grep -qF "~ update destination $B of" "$SCENARIO_DIR/director.log"; then
	pass "ravel's plan edited node B's weight in place (~ update destination)"
else
	fail "no in-place edit of $B in ravel's plan (see director.log)"
fi
out=$(hit client "http://$VIP/" 60 -c 4) || fail "requests through the VIP failed (phase 2): $out"
a=$(hit_count "$out" node-a) b=$(hit_count "$out" node-b)
assert_ge "phase 2: node A served" 1 "$a"
assert_ge "phase 2: node B served" 1 "$b"
assert_eq "phase 2: all 60 requests answered" 60 "$((a + b))"
# wrr is deterministic: 2:1 exactly over whole rounds; ±0.5 leaves room for a
# round cut at either end.
assert_ratio "phase 2: wrr 2:1 split" "$a" "$b" 2 0.5

# --- 3. node B relabelled out of the nodeSelector: drained, then no traffic ---------
kt node s30-node-b "$RS2_IP" --label "$SEL-"
# Drained is weight 0 (kept for drainTimeout while it has connections) or gone.
b_left() {
	local w
	w=$(ipvs_weight director "$SVC" "$B")
	[[ $w == 0 || $w == absent ]]
}
wait_for 30 "node B drained or removed" b_left
pass "node B left: weight $(ipvs_weight director "$SVC" "$B")"
assert_eq "node A keeps weight 2" 2 "$(ipvs_weight director "$SVC" "$A")"
out=$(hit client "http://$VIP/" 30 -c 4) || fail "requests through the VIP failed (phase 3): $out"
assert_eq "phase 3: all 30 requests to node A" 30 "$(hit_count "$out" node-a)"
assert_eq "phase 3: none to node B" 0 "$(hit_count "$out" node-b)"

in_ns director ipvsadm -Ln
