#!/usr/bin/env bash
# Issue 10 on the real kernel, static backends: http health checks (GET /, which the
# echoserver answers 200 with its name; interval 1 s, timeout 500 ms, rise 2, fall 2) take a
# dead backend out (weight 0, its connections drain) and put it back, a sorry server takes the
# traffic only while every backend fails, and the director answers the management port on
# every VIP of the pool itself (IP_FREEBIND listeners: a static-only config has no node to
# send it to).
#
#   client --- lan (10.0.0.0/24) --- director (ravel; VIPs .100 .101 on ravel0)
#                     |     |    \
#                    rs1   rs2   sorry 10.0.0.13   (VIP on lo, ARP suppressed)
#
# Times come from the IPVS sampler (lib-ipvs.sh: /proc/net/ip_vs every ~50 ms, µs clock),
# measured from $EPOCHREALTIME taken right before the kill / the start of a server.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-ipvs.sh"

INTERVAL_MS=1000 TIMEOUT_MS=500 RISE=2 FALL=2
topo_dr
SORRY_IP=10.0.0.13 VIP2=10.0.0.101
mk_ns sorry
mk_link sorry lan "$SORRY_IP/24"
for ns in rs1 rs2 sorry; do rs_vip "$ns" "$VIP"; done

# Each echoserver started alone, so one can be killed and started again. 'ip netns exec'
# execs the server, so $BG_PID is the echoserver itself.
declare -A ECHO
echo_up() {
	bg "$1" "echo-$1-$SECONDS" "$E2E_BIN/echoserver" -name "$1" -addr ":80"
	ECHO[$1]=$BG_PID
	wait_for 30 "echoserver $1" in_ns "$1" "$E2E_BIN/hit" -n 1 -timeout 2s "http://127.0.0.1:80/"
}
# SIGTERM: the echoserver closes its listener at once (graceful shutdown of what is in flight).
echo_down() { kill -TERM "${ECHO[$1]}"; wait "${ECHO[$1]}" 2>/dev/null || true; }
for ns in rs1 rs2 sorry; do echo_up "$ns"; done

cfg=$SCENARIO_DIR/ravel.yaml
ravel_config "$cfg" <<EOF
apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director, role: director, interface: eth0, vipInterface: ravel0}
vipPool: [$VIP, $VIP2]
defaults:
  healthCheck: {type: http, path: /, interval: ${INTERVAL_MS}ms, timeout: ${TIMEOUT_MS}ms, rise: $RISE, fall: $FALL}
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
# A checked backend starts up (weight given, ravel_backend_up 1): it goes out only after FALL
# failed checks.
director_up ravel "$cfg"

weight() { ipvs_dest director "$VIP:80" "$1:80" | awk '{ print $2 }'; }
weight_is() { [[ $(weight "$1") == "$2" ]]; }
up_metric() {
	in_ns director curl -fsS --max-time 5 http://127.0.0.1:10234/metrics |
		awk -v b="$1:80" '$1 ~ /^ravel_backend_up\{/ && index($1, "backend=\"" b "\"") { print $2 }' || true
}
# Lines of the director's log: one per transition, whatever the number of checks.
log_lines() { grep -c "msg=\"$1.*backend=$2:80" "$SCENARIO_DIR/ravel.log" || true; }
hex_addr HS "$VIP:80"
hex_addr H1 "$RS1_IP:80"
hex_addr H2 "$RS2_IP:80"
hex_addr HSORRY "$SORRY_IP:80"
both_up() { weight_is "$RS1_IP" 1 && weight_is "$RS2_IP" 1; }
wait_for 30 "rs1 and rs2 at weight 1" both_up

# (4) The management port answers on every VIP of the pool, the one without a service too,
# and names the director (static backends only: the director answers it itself).
for vip in "$VIP" "$VIP2"; do
	body=$(in_ns client curl -fsS --max-time 5 "http://$vip:8081/healthz" || true)
	assert_eq "management port on $vip: node, role, vip" "director director $vip" \
		"$(jq -r '"\(.node) \(.role) \(.vip)"' <<<"$body" 2>/dev/null || echo "not JSON: $body")"
done
assert_eq "the sorry server is not a destination while the backends pass" "" "$(weight "$SORRY_IP")"
assert_eq "ravel_backend_up of rs1 at start" 1 "$(up_metric "$RS1_IP")"

ipvs_sampler_start director

# (2) rs1's server dies. Its weight goes to 0 after FALL failed checks: the first check that
# fails starts at or after the kill, the second one interval (+ up to 10 % jitter) after it,
# so never before (FALL - 1) x interval and, on a machine that keeps time, within
# FALL x interval + 1 s (jitter, the probe's last interval may have just begun, and the
# apply). Asserted: <= FALL x interval + timeout + 2 s, because under QEMU TCG on 2 shared
# cores timers and goroutines run late (process starts alone take 0.1 to 0.5 s here).
LIMIT_DOWN=$(((FALL * INTERVAL_MS + TIMEOUT_MS + 2000) / 1000))
now_us T_KILL
echo_down rs1
wait_seen MS_DOWN "$LIMIT_DOWN" "rs1 at weight 0 after its server died" "$HS/$H1=0 $HS/$H2=1" "$T_KILL"
log "rs1 reached weight 0 ${MS_DOWN} ms after its server died (fall $FALL x ${INTERVAL_MS} ms)"
assert_ge "rs1 not out before fall - 1 intervals (ms)" $(((FALL - 1) * INTERVAL_MS * 9 / 10)) "$MS_DOWN"
assert_eq "ravel_backend_up of rs1 after it failed" 0 "$(up_metric "$RS1_IP")"
# (Timeout 10 s: a request sent to rs1 now is refused at once, RST, since rs1 holds the VIP on
# lo with nothing listening; the long timeout only absorbs QEMU stalls, see 71.)
out=$(hit client "http://$VIP/" 60 -c 4 -timeout 10s 2>>"$SCENARIO_DIR/hit.err") || fail "requests failed after rs1 was taken out: $out"
assert_eq "after rs1 went out, of 60 requests: failed" 0 "$(awk '$1 == "failed" { print $2 }' <<<"$out")"
assert_eq "after rs1 went out, answered by rs2" 60 "$(hit_count "$out" rs2)"

# rs1 back: weight 1 after RISE good checks, the second one interval after the first, which
# cannot start before the server listens: never before (RISE - 1) x interval after the start.
now_us T_UP
echo_up rs1
wait_seen MS_UP $(((RISE * INTERVAL_MS + TIMEOUT_MS + 2000) / 1000 + 1)) "rs1 back at weight 1" "$HS/$H1=1 $HS/$H2=1" "$T_UP"
log "rs1 back at weight 1 ${MS_UP} ms after its server was started (rise $RISE; the start itself takes 0.1-0.5 s here)"
assert_ge "rs1 not back before rise - 1 intervals (ms)" $(((RISE - 1) * INTERVAL_MS * 9 / 10)) "$MS_UP"
assert_eq "ravel_backend_up of rs1 back" 1 "$(up_metric "$RS1_IP")"

# (3) Every backend dies: the sorry server (weight 1) answers everything, the backends drain
# at weight 0.
now_us T_ALL
echo_down rs1
echo_down rs2
wait_seen MS_SORRY $((LIMIT_DOWN + 1)) "every backend down: rs1, rs2 at 0, the sorry server at 1" \
	"$HS/$H1=0 $HS/$H2=0 $HS/$HSORRY=1" "$T_ALL"
out=$(hit client "http://$VIP/" 30 -c 3 -timeout 10s 2>>"$SCENARIO_DIR/hit.err") || fail "requests failed with every backend down: $out"
assert_eq "with every backend down, answered by the sorry server (of 30)" 30 "$(hit_count "$out" sorry)"
# A sorry server is not the hold: the backends are at 0, nothing is held.
status=$(in_ns director "$RAVEL_BIN" status --addr 127.0.0.1:10234 --output json || true)
echo "$status" >"$SCENARIO_DIR/status-all-down.json"
assert_eq "ravel status: unhealthy backends of web" "10.0.0.11:80 10.0.0.12:80" \
	"$(jq -r '[.unhealthy[]? | select(.service == "web") | .backend] | sort | join(" ")' <<<"$status" || true)"
assert_eq "ravel status: no service under the hold (there is a sorry server)" 0 "$(jq -r '.healthHold // [] | length' <<<"$status" || true)"
assert_eq "ravel status: rs1's reason" "connection refused" \
	"$(jq -r '.unhealthy[]? | select(.backend == "10.0.0.11:80") | .reason' <<<"$status" | grep -o 'connection refused' || true)"

# One backend back: it takes the traffic and the sorry server leaves (drained at weight 0,
# or deleted).
now_us T_RS2
echo_up rs2
wait_seen MS_RS2 $(((RISE * INTERVAL_MS + TIMEOUT_MS + 2000) / 1000 + 1)) "rs2 back at weight 1" "$HS/$H2=1" "$T_RS2"
sorry_gone() { [[ $(weight "$SORRY_IP") == "" || $(weight "$SORRY_IP") == 0 ]]; }
wait_for 10 "the sorry server left" sorry_gone
log "rs2 back ${MS_RS2} ms after its start; the sorry server's weight now: '$(weight "$SORRY_IP")' ('' = deleted)"
out=$(hit client "http://$VIP/" 30 -c 3 -timeout 10s 2>>"$SCENARIO_DIR/hit.err") || fail "requests failed after rs2 came back: $out"
assert_eq "after rs2 came back, answered by rs2 (of 30)" 30 "$(hit_count "$out" rs2)"
ipvs_sampler_stop

# One log line per transition, not per check (rs1 failed about 8 checks in all, rs2 about 4):
# rs1 down, up, down; rs2 down, up.
assert_eq "'health check failing' lines for rs1 (2 transitions)" 2 "$(log_lines 'health check failing' "$RS1_IP")"
assert_eq "'health check passes again' lines for rs1 (1 transition)" 1 "$(log_lines 'health check passes again' "$RS1_IP")"
assert_eq "'health check failing' lines for rs2 (1 transition)" 1 "$(log_lines 'health check failing' "$RS2_IP")"
assert_eq "'health check passes again' lines for rs2 (1 transition)" 1 "$(log_lines 'health check passes again' "$RS2_IP")"
assert_eq "ravel_health_transitions_total of rs1 to down" 2 \
	"$(metric director 127.0.0.1:10234 "ravel_health_transitions_total{backend=\"$RS1_IP:80\",service=\"web\",to=\"down\"}")"
ravel_stop "$RAVEL_PID"
