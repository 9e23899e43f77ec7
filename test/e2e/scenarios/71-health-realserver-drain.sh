#!/usr/bin/env bash
# Issue 10 on the real kernel, Kubernetes mode: a director checks two realserver
# nodes' health endpoints; `systemctl stop ravel` (SIGTERM) on one realserver
# drains it first (weight 0 while its rules still forward) and no request fails;
# the management port on every VIP is answered by a node's health endpoint.
#
#   client 10.0.0.10 --- lan --- director 10.0.0.2 (VIPs .100 .101 on ravel0)
#                         |  \
#                      nodea   nodeb (10.0.0.11, .12; ravel realserver, VIPs on lo)
#                        |        |
#                      pod-a    pod-b  (10.244.1.11, 10.244.2.11 :8080)
#
# e2e-needs: kapi
# e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
. "$(dirname "$0")/../lib-kube.sh"
. "$(dirname "$0")/../lib-ipvs.sh"

need_ravel
need_kube
CLIENT_IP=10.0.0.10 DIRECTOR_IP=10.0.0.2 A_IP=10.0.0.11 B_IP=10.0.0.12 VIP=10.0.0.100 VIP2=10.0.0.101
mk_switch lan
mk_ns client director nodea nodeb
mk_link client lan "$CLIENT_IP/24"
mk_link director lan "$DIRECTOR_IP/24"
mk_link nodea lan "$A_IP/24"
mk_link nodeb lan "$B_IP/24"
kube_link director
kube_link nodea
kube_link nodeb
mk_pod nodea pod-a 10.244.1.11
mk_pod nodeb pod-b 10.244.2.11
start_echos pod-a:pod-a:8080 pod-b:pod-b:8080

SEL=ravel-e2e/s71
kt - <<EOF
node s71-director $DIRECTOR_IP --label $SEL=true
node s71-node-a $A_IP --label $SEL=true
node s71-node-b $B_IP --label $SEL=true
service s71 web --port http:80:8080
slice s71 web web-1 --port http:8080 --endpoint 10.244.1.11:s71-node-a --endpoint 10.244.2.11:s71-node-b
EOF

# interval 1s, fall 2: the drain delay is 2 x 1 s + 1 s = 3 s.
kube_ravel_config "$SCENARIO_DIR/ravel.yaml" "$SEL" "$VIP" "$VIP2" -- <<EOF
node: {role: director, interface: eth0, vipInterface: ravel0}
services:
  - name: web
    vip: $VIP
    port: 80
    kubernetes: {namespace: s71, service: web, portName: http}
health: {interval: 1s, timeout: 500ms, rise: 2, fall: 2}
management: {port: 8081}
coordinator: {ports: [44471], failoverTimeout: 1s}
EOF
kube_ravel director director --config "$SCENARIO_DIR/ravel.yaml" --node-name s71-director
rs_up() {
	kube_ravel "$1" "realserver-$1-$SECONDS" --config "$SCENARIO_DIR/ravel.yaml" --node-name "$2" --role realserver --vip-interface lo
	RS_PID[$1]=$BG_PID
}
declare -A RS_PID
rs_up nodea s71-node-a
rs_up nodeb s71-node-b
wait_weights 90 director "$VIP:80" "$A_IP:80=1" "$B_IP:80=1"
dnat_a() { [[ $(nat_count nodea '-j DNAT --to-destination 10\.244\.1\.11:8080') == 1 ]]; }
wait_for 60 "node-a's DNAT to its pod" dnat_a

# The per-service health answer, as kube-proxy's healthCheckNodePort gives it.
hz=$(in_ns client curl -s --max-time 5 -D - "http://$A_IP:10236/healthz?vip=$VIP&port=80" || true)
assert_eq "node-a /healthz?vip&port status" 200 "$(awk 'NR == 1 { print $2 }' <<<"$hz")"
assert_eq "node-a endpoint weight header" 1 "$(tr -d '\r' <<<"$hz" | awk -F': ' 'tolower($1) == "x-load-balancing-endpoint-weight" { print $2 }')"

# (4) The management port on every VIP of the pool answers with a node's own view.
wait_weights 60 director "$VIP2:8081" "$A_IP:8081=1" "$B_IP:8081=1"
for vip in "$VIP" "$VIP2"; do
	body=$(in_ns client curl -s --max-time 5 "http://$vip:8081/healthz" || true)
	node=$(sed -n 's/^{"node":"\([^"]*\)".*/\1/p' <<<"$body")
	case $node in
	s71-node-a | s71-node-b) pass "management port on $vip answered by $node" ;;
	*) fail "management port on $vip: want a node's view, got '$body'" ;;
	esac
done

# (1) SIGTERM node-a's realserver during a request loop: it answers "draining", the director
# gives it weight 0, and only then (the drain delay) do its rules go. No request fails.
hex_addr HS "$VIP:80"
hex_addr HA "$A_IP:80"
ipvs_sampler_start director
bg client loop "$E2E_BIN/hit" -n 1200 -c 2 -timeout 3s -v "http://$VIP/"
LOOP_PID=$BG_PID
nap 1
now_us T_TERM
t_term=$(now)
kill -TERM "${RS_PID[nodea]}"
hz=$(in_ns client curl -s --max-time 3 -w ' %{http_code}' "http://$A_IP:10236/healthz" || true)
assert_eq "node-a answers 503 while it drains" 503 "${hz##* }"
assert_eq "node-a's view says draining" 1 "$(grep -c '"draining":true' <<<"$hz" || true)"
wait_seen MS 6 "node-a at weight 0 (draining answer, fall 2 x 1 s)" "$HS/$HA=0" "$T_TERM"
t_zero_us=$SEEN_T
wait "${RS_PID[nodea]}" || fail "node-a's ravel exited non-zero after SIGTERM"
t_rules=$(log_time "$SCENARIO_DIR/$(cd "$SCENARIO_DIR" && ls realserver-nodea-*.log | head -n 1)" 'drain delay over')
log "SIGTERM at $t_term; node-a at weight 0 +$(((t_zero_us - T_TERM) / 1000)) ms; its rules removed from +$(secs_between "$t_term" "$t_rules")s"
assert_ge "weight 0 came before the rules went" 0 "$(awk -v z="$t_zero_us" -v r="$t_rules" 'BEGIN { print (r * 1e6 > z) ? 0 : -1 }')"
assert_eq "node-a's DNAT rules are gone after the stop" "" "$(nat_chains nodea)"
wait "$LOOP_PID" || true
t_loop_end=$(date -r "$SCENARIO_DIR/loop.log" +%s.%N) # hit writes its counts when it ends
log "the request loop ended +$(secs_between "$t_term" "$t_loop_end")s after the SIGTERM"
assert_ge "the request loop outlasted the removal of node-a's rules" 0 "$(awk -v e="$t_loop_end" -v r="$t_rules" 'BEGIN { print (e > r + 0.5) ? 0 : -1 }')"
out=$(<"$SCENARIO_DIR/loop.log")
echo "$out" | tail -n 4
assert_eq "requests failed during the drain" 0 "$(awk '$1 == "failed" { print $2; f = 1 } END { if (!f) print 0 }' <<<"$out")"
assert_ge "pod-b answered during the drain" 1 "$(hit_count "$out" pod-b)"

# Back: the node answers again and gets its weight after rise good answers.
rs_up nodea s71-node-a
wait_weights 60 director "$VIP:80" "$A_IP:80=1" "$B_IP:80=1"
ipvs_sampler_stop
