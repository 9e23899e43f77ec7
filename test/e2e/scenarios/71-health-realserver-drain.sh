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
# expire_nodest_conn 1: with the kernel's default (0) a client SYN whose source port matches an
# old connection entry of node-a still follows that entry to node-a at weight 0: under DR the
# director sees only the client's side, so a closed connection stays in FIN_WAIT (2 min), and
# conn_reuse_mode 1 reschedules only TIME_WAIT. hit's fresh connections reuse ports within
# seconds here: with the default, 2 of 1,200 and 4 of 4,000 requests hung (SYN_RECV entries to
# node-a in /proc/net/ip_vs_conn, their SYNs looping between node-a, which forwards since it
# lost the VIP, and the director until the TTL ran out). With 1 (kernel >= 5.9), a new SYN on
# an entry of a weight-0 destination is rescheduled.
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
ipvsSysctls: {expire_nodest_conn: 1}
EOF
kube_ravel director director --config "$SCENARIO_DIR/ravel.yaml" --node-name s71-director
rs_up() {
	RS_LOG[$1]=realserver-$1-$SECONDS
	kube_ravel "$1" "${RS_LOG[$1]}" --config "$SCENARIO_DIR/ravel.yaml" --node-name "$2" --role realserver --vip-interface lo
	RS_PID[$1]=$BG_PID
}
declare -A RS_PID RS_LOG
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
hex_addr HM "$VIP:8081"
hex_addr HM2 "$VIP2:8081"
hex_addr HAM "$A_IP:8081"
A_OUT="$HS/$HA=0 $HM/$HAM=0 $HM2/$HAM=0" # node-a out of the service and the management port
ipvs_sampler_start director
# The counts to loop.counts (hit writes them when it ends: its mtime is the loop's end), each
# failed request's error to loop.log with the time it was printed (to set against ipvs.rec).
# Timeout 10 s: a request sent to node-a once its rules are gone is refused at once (RST: the
# VIP is still on lo) or black-holed (no VIP, ip_forward on) and fails whatever the timeout;
# the long one only absorbs QEMU stalls. Seen with 3 s on a loaded host: both requests in
# flight stuck 3 s at once, 13 s after node-a's clean-up, IPVS unchanged, no log line anywhere
# and the sampler on time (a vCPU thread descheduled, not the guest).
# shellcheck disable=SC2016 # expanded by the inner bash
bg client loop bash -c '"$1" -v -n 1200 -c 2 -timeout 10s "$2" 2>&1 >"$3" |
	while IFS= read -r l; do echo "$EPOCHREALTIME $l"; done' loop "$E2E_BIN/hit" "http://$VIP/" "$SCENARIO_DIR/loop.counts"
LOOP_PID=$BG_PID
nap 1
now_us T_TERM
t_term=$(now)
# The director's log from here on: at its start it may have seen node-a "not synced yet" (it
# programs at once, with no realserver role of its own node to wait for), which is not the drill.
dlog_from=$(($(wc -l <"$SCENARIO_DIR/director.log") + 1))
kill -TERM "${RS_PID[nodea]}"
# Both questions in one curl (one process start, 0.1-0.5 s here, inside the 3 s drain, and the
# endpoint answers "draining" until ravel exits anyway): the whole view, then the per-service
# answer; -w ends each with its status (not "@...": curl -w @FILE reads the format from FILE).
hz=$(in_ns client curl -s --max-time 3 -D - -w '\nSTATUS %{http_code}\n' \
	"http://$A_IP:10236/healthz" "http://$A_IP:10236/healthz?vip=$VIP&port=80" || true)
echo "$hz" >"$SCENARIO_DIR/healthz-draining.txt"
assert_eq "node-a's /healthz and /healthz?vip&port statuses while it drains" "503 503" \
	"$(awk '$1 == "STATUS" { printf "%s%s", sep, $2; sep = " " }' <<<"$hz")"
assert_eq "node-a's two answers say draining" 2 "$(grep -c '"draining":true' <<<"$hz" || true)"
assert_eq "node-a's endpoint weight header while it drains" 0 \
	"$(tr -d '\r' <<<"$hz" | awk -F': ' 'tolower($1) == "x-load-balancing-endpoint-weight" { print $2 }')"
wait_seen MS 6 "node-a at weight 0 (draining answer, fall 2 x 1 s)" "$HS/$HA=0" "$T_TERM"
t_zero_us=$SEEN_T
# The three weights go in one partial apply, which a sample may cut in two: from the first
# sample with all three at 0.
wait_seen MS_ALL 8 "node-a at weight 0 on $VIP:80, $VIP:8081 and $VIP2:8081" "$A_OUT" "$T_TERM"
t_all_zero_us=$SEEN_T
wait "${RS_PID[nodea]}" || fail "node-a's ravel exited non-zero after SIGTERM"
t_rules=$(log_time "$SCENARIO_DIR/${RS_LOG[nodea]}.log" 'drain delay over')
log "SIGTERM at $t_term; node-a at weight 0 +$(((t_zero_us - T_TERM) / 1000)) ms; its rules removed from +$(secs_between "$t_term" "$t_rules")s"
assert_ge "weight 0 came before the rules went" 0 "$(awk -v z="$t_zero_us" -v r="$t_rules" 'BEGIN { print (r * 1e6 > z) ? 0 : -1 }')"
# The rules stay for the whole drain delay (3 s from the signal; the log has milliseconds).
assert_ge "the rules stayed the drain delay (ms from SIGTERM to 'drain delay over')" 2990 \
	"$(awk -v a="$t_term" -v b="$t_rules" 'BEGIN { printf "%d", (b - a) * 1000 }')"
assert_eq "node-a's DNAT rules are gone after the stop" "" "$(nat_chains nodea)"
wait "$LOOP_PID" || true
t_loop_end=$(date -r "$SCENARIO_DIR/loop.counts" +%s.%N)
log "the request loop ended +$(secs_between "$t_term" "$t_loop_end")s after the SIGTERM"
assert_ge "the request loop outlasted the removal of node-a's rules" 0 "$(awk -v e="$t_loop_end" -v r="$t_rules" 'BEGIN { print (e > r + 0.5) ? 0 : -1 }')"
out=$(<"$SCENARIO_DIR/loop.counts")
echo "$out" | tail -n 4
assert_eq "requests failed during the drain" 0 "$(awk '$1 == "failed" { print $2; f = 1 } END { if (!f) print 0 }' <<<"$out")"
assert_ge "pod-b answered during the drain" 1 "$(hit_count "$out" pod-b)"
# No SYN went to node-a after its weight 0 (one would sit in SYN_RECV: node-a never answers).
conns=$(in_ns director cat /proc/net/ip_vs_conn) || true
assert_eq "IPVS entries to node-a in SYN_RECV after the loop" 0 \
	"$(awk -v d="${HA%:*}" '$6 == d && $8 == "SYN_RECV"' <<<"$conns" | wc -l)"

# Until node-a's ravel is started again nothing gives it weight back: not the end of the drain
# delay (its endpoint answers "draining" until the rules are gone and ravel exits), not the
# refused checks after that.
now_us T_RESTART
assert_held "node-a at weight 0 everywhere from its drain to its restart" "$A_OUT" "$t_all_zero_us" "$T_RESTART"
drill_log=$(tail -n "+$dlog_from" "$SCENARIO_DIR/director.log")
assert_eq "director log since the SIGTERM: node-a failing (one transition), never passing again before the restart" "1 0" \
	"$(grep -c 'health check failing.*service=\* backend=s71-node-a' <<<"$drill_log" || true) $(grep -c 'health check passes again.*backend=s71-node-a' <<<"$drill_log" || true)"

# Back: the node answers again and gets its weight after rise good answers.
rs_up nodea s71-node-a
wait_weights 60 director "$VIP:80" "$A_IP:80=1" "$B_IP:80=1"
ipvs_sampler_stop
cp "$IPVS_DIR/ipvs.rec" "$SCENARIO_DIR/" # the guest's /tmp is gone after the boot
