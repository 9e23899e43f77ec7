#!/usr/bin/env bash
# Drill: the Kubernetes API server goes away for 60 s under a director that carries traffic.
# The host stops kube-apiserver (etcd keeps its data; lib-kube.sh kapi_ctl) while a request
# loop runs through the VIP and a background shell samples /proc/net/ip_vs about every 50 ms
# (lib-ipvs.sh). Then it starts it again.
#   - during the outage and until it is back, no destination is removed or reweighted: every
#     sample has node-a at 2 and node-b at 1 (the safety valve keeps the last known endpoints,
#     and the 2 s resync re-applies that state, never an empty one);
#   - ravel saw the outage (its log says the watch fails and the valve holds);
#   - no request through the VIP fails, before, during or after;
#   - after the API server is back, an EndpointSlice change (a second endpoint on node-b)
#     reaches IPVS (the reflectors re-list on their own; the time it took is printed).
#
#   client --- lan 10.0.0.0/24 --- director (ravel; VIP on ravel0; route to the API server)
#                  |       \
#                rs1       rs2    nodes s60-node-a / s60-node-b: VIP on lo, echoservers
#
# e2e-needs: kapi
# e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
. "$(dirname "$0")/../lib-kube.sh"
. "$(dirname "$0")/../lib-ipvs.sh"

OUTAGE=60
need_ravel
need_kube
topo_dr
kube_link director
rs_vip rs1 "$VIP"
rs_vip rs2 "$VIP"
start_echos rs1:node-a:80 rs2:node-b:80

SEL=ravel-e2e/s60
SVC=$VIP:80 A=$RS1_IP:80 B=$RS2_IP:80
hex_addr HS "$SVC"
hex_addr HA "$A"
hex_addr HB "$B"

kt - <<EOF
node s60-director $DIRECTOR_IP --label $SEL=true
node s60-node-a $RS1_IP --label $SEL=true
node s60-node-b $RS2_IP --label $SEL=true
service s60 web --port http:80:8080
slice s60 web web-1 --port http:8080 --endpoint 10.244.1.11:s60-node-a --endpoint 10.244.1.12:s60-node-a --endpoint 10.244.2.11:s60-node-b
EOF

kube_ravel_config "$SCENARIO_DIR/director.yaml" "$SEL" "$VIP" -- <<EOF
node: {role: director, interface: eth0, vipInterface: ravel0}
defaults:
  ipvs: {scheduler: wrr, forwarding: dr}
services:
  - name: web
    vip: $VIP
    port: 80
    kubernetes: {namespace: s60, service: web, portName: http}
resync: 2s
EOF
kube_ravel director director --config "$SCENARIO_DIR/director.yaml" --node-name s60-director
wait_weights 90 director "$SVC" "$A=2" "$B=1" || die "the service never reached its weights"
out=$(hit client "http://$VIP/" 12 -c 3) || fail "requests before the outage failed: $out"

ipvs_sampler_start director
traffic_start client "http://$VIP/" loop
nap 3

# --- the outage ---------------------------------------------------------------------------
now_us T_DOWN
kapi_ctl stop-apiserver
log "kube-apiserver stopped; holding for ${OUTAGE}s"
nap "$OUTAGE"
now_us T_START
kapi_ctl start-apiserver
now_us T_UP
log "kube-apiserver back after $(((T_UP - T_DOWN) / 1000000)) s"
# A few resyncs and the reflectors' re-list after it came back are part of the window too.
nap 6
now_us T_AFTER
assert_held "node-a 2, node-b 1 through the outage and the API server's return" \
	"$HS/$HA=2 $HS/$HB=1" "$T_DOWN" "$T_AFTER"
if grep -q 'kubernetes watch failing' "$SCENARIO_DIR/director.log"; then
	pass "ravel saw the outage (log: kubernetes watch failing)"
else
	fail "no 'kubernetes watch failing' in the log: the drill did not reach ravel"
fi
if grep -q 'safety valve keeps the last known endpoints' "$SCENARIO_DIR/director.log"; then
	pass "the safety valve held the last known endpoints (log)"
else
	fail "no 'safety valve keeps the last known endpoints' in the log"
fi

# --- a change after the return reaches IPVS ----------------------------------------------
now_us T_SCALE
kt slice s60 web web-1 --port http:8080 --endpoint 10.244.1.11:s60-node-a --endpoint 10.244.1.12:s60-node-a \
	--endpoint 10.244.2.11:s60-node-b --endpoint 10.244.2.12:s60-node-b
SEEN_T=$T_SCALE
wait_seen MS 60 "an EndpointSlice change written after the return (node-b 2)" "$HS/$HA=2 $HS/$HB=2" "$T_SCALE"
log "from the API server's restart to the change in IPVS: $(((SEEN_T - T_START) / 1000)) ms (written $(((T_SCALE - T_UP) / 1000)) ms after its /readyz)"
ipvs_sampler_stop
traffic_stop loop
assert_ge "requests answered through the drill" 50 "$TRAFFIC_OK"
assert_eq "requests failed through the drill" 0 "$TRAFFIC_FAILED"
cp "$IPVS_DIR/ipvs.rec" "$SCENARIO_DIR/ipvs.rec" || true
in_ns director ipvsadm -Ln
