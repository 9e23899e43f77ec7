#!/usr/bin/env bash
# Issue 10 on the real kernel, static backends: http health checks take a dead
# backend out (weight 0, its connections drain) and put it back, a sorry server
# takes the traffic only while every backend fails, and the director answers the
# management port on every VIP of the pool itself.
#
#   client --- lan (10.0.0.0/24) --- director (ravel; VIPs .100 .101 on ravel0)
#                     |     |    \
#                    rs1   rs2   sorry 10.0.0.13   (VIP on lo, ARP suppressed)
. "$(dirname "$0")/../lib.sh"

topo_dr
SORRY_IP=10.0.0.13 VIP2=10.0.0.101
mk_ns sorry
mk_link sorry lan "$SORRY_IP/24"
for ns in rs1 rs2 sorry; do rs_vip "$ns" "$VIP"; done

# Each echoserver started alone, so one can be killed and started again.
declare -A ECHO
echo_up() {
	bg "$1" "echo-$1-$SECONDS" "$E2E_BIN/echoserver" -name "$1" -addr ":80"
	ECHO[$1]=$BG_PID
	wait_for 30 "echoserver $1" in_ns "$1" "$E2E_BIN/hit" -n 1 -timeout 2s "http://127.0.0.1:80/healthz"
}
echo_down() { kill -TERM "${ECHO[$1]}"; wait "${ECHO[$1]}" 2>/dev/null || true; }
for ns in rs1 rs2 sorry; do echo_up "$ns"; done

cfg=$SCENARIO_DIR/ravel.yaml
ravel_config "$cfg" <<EOF
apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director, role: director, interface: eth0, vipInterface: ravel0}
vipPool: [$VIP, $VIP2]
defaults:
  healthCheck: {type: http, path: /healthz, interval: 1s, timeout: 500ms, rise: 2, fall: 2}
services:
  - name: web
    vip: $VIP
    port: 80
    backends: [{address: $RS1_IP}, {address: $RS2_IP}]
    sorryServer: {address: $SORRY_IP}
management: {port: 8081}
resync: 30s
coordinator: {ports: [44470]}
metrics: {listen: "127.0.0.1:10234"}
EOF
director_up ravel "$cfg"

weight() { ipvs_dest director "$VIP:80" "$1:80" | awk '{ print $2 }'; }
weight_is() { [[ $(weight "$1") == "$2" ]]; }
up_metric() {
	in_ns director curl -fsS --max-time 5 http://127.0.0.1:10234/metrics |
		awk -v b="$1:80" '$1 ~ /^ravel_backend_up\{/ && index($1, "backend=\"" b "\"") { print $2 }'
}

# (4) The management port answers on every VIP of the pool, the one without a service too,
# and names the director (static backends only: the director answers it itself).
for vip in "$VIP" "$VIP2"; do
	body=$(in_ns client curl -fsS --max-time 5 "http://$vip:8081/healthz" || true)
	assert_eq "management port on $vip names the director" director "$(sed -n 's/.*"node":"\([^"]*\)".*/\1/p' <<<"$body")"
done
assert_eq "the sorry server is not a destination while the backends pass" "" "$(weight "$SORRY_IP")"
assert_eq "ravel_backend_up of rs1 at start" 1 "$(up_metric "$RS1_IP")"

# (2) rs1's server dies: weight 0 within fall x interval (+ one timeout, + slack: a process
# start in this emulated guest takes up to 0.5 s, and the probe's last interval may have just
# begun when the server died).
t0=$SECONDS
echo_down rs1
wait_for 15 "rs1 at weight 0" weight_is "$RS1_IP" 0
took=$((SECONDS - t0))
log "rs1 reached weight 0 ${took}s after its server died"
assert_ge "rs1 out within fall x interval + timeout + 2s = 5s (took ${took}s)" 0 "$((5 - took))"
assert_eq "ravel_backend_up of rs1 after it failed" 0 "$(up_metric "$RS1_IP")"
assert_eq "rs2 keeps its weight" 1 "$(weight "$RS2_IP")"
out=$(hit client "http://$VIP/" 40 -c 4) || fail "requests failed after rs1 was taken out: $out"
assert_eq "all 40 answered by rs2" 40 "$(hit_count "$out" rs2)"

t0=$SECONDS
echo_up rs1
wait_for 15 "rs1 back at weight 1" weight_is "$RS1_IP" 1
log "rs1 back at weight 1 $((SECONDS - t0))s after its server came back (rise 2)"
assert_eq "ravel_backend_up of rs1 back" 1 "$(up_metric "$RS1_IP")"

# (3) Every backend dies: the sorry server answers, the backends drain at weight 0.
echo_down rs1
echo_down rs2
wait_for 15 "the sorry server at weight 1" weight_is "$SORRY_IP" 1
assert_eq "rs1 at weight 0 behind the sorry server" 0 "$(weight "$RS1_IP")"
assert_eq "rs2 at weight 0 behind the sorry server" 0 "$(weight "$RS2_IP")"
out=$(hit client "http://$VIP/" 30 -c 3) || fail "requests failed with every backend down: $out"
assert_eq "all 30 answered by the sorry server" 30 "$(hit_count "$out" sorry)"

# One backend back: it takes the traffic and the sorry server leaves (drained, then gone).
echo_up rs2
wait_for 15 "rs2 back at weight 1" weight_is "$RS2_IP" 1
sorry_gone() { [[ $(weight "$SORRY_IP") == "" || $(weight "$SORRY_IP") == 0 ]]; }
wait_for 10 "the sorry server drained" sorry_gone
out=$(hit client "http://$VIP/" 30 -c 3) || fail "requests failed after rs2 came back: $out"
assert_eq "all 30 answered by rs2" 30 "$(hit_count "$out" rs2)"

# One log line per transition, not per check: rs1 down, rs1 down again, rs2 down.
assert_eq "'health check failing' lines (one per transition)" 3 "$(grep -c 'health check failing' "$SCENARIO_DIR/ravel.log" || true)"
status=$(in_ns director "$RAVEL_BIN" status --addr 127.0.0.1:10234 || true)
echo "$status"
assert_eq "ravel status lists rs1 as unhealthy" 1 "$(grep -c "web .*$RS1_IP:80" <<<"$status" || true)"
ravel_stop "$RAVEL_PID"
