#!/usr/bin/env bash
# Issue 5's failover through the coordinator port, on ONE node namespace that
# runs both a director and a realserver ravel process (coordinator on
# 127.0.0.1:44444, failoverTimeout 1s, the realserver probes once a second):
#   1. director up: the realserver role stays off (no RAVEL chains, no VIP on
#      lo) and the realserver says it is waiting;
#   2. director killed (SIGKILL): the realserver role comes up (RAVEL chains
#      with the DNAT to the node's pod, VIP on lo) within failoverTimeout + 1 s,
#      the worst case of a 1 s probe (the last successful probe can be up to
#      one interval before the kill), plus the slack stated below;
#   3. director started again: the realserver role answers its health checks
#      "draining" for the drain delay (health.drainDelay: 2 x interval + 1 s),
#      then removes its chains and its VIP, within one probe interval plus the
#      drain delay of the director listening (plus slack), and sets the ARP
#      sysctls it had overwritten back;
#   4. a neighbour with an empty ARP cache reaches the VIP: the director answers
#      ARP for it again (issue 11, item 1: before, arp_ignore=1 stayed on eth0
#      and the VIP was reachable only through periodic gratuitous ARP, which
#      this config turns off).
# Times come from ravel's own log timestamps and the guest's clock (same clock).
#
# Slack for emulation, stated and measured: under QEMU TCG on 2 shared cores
# probe ticks and process scheduling run late, and the role's first sync
# (netlink, then an iptables-restore process) took 1.2 to 2.0 s in this guest
# (milliseconds on hardware). The bounds use ravel's own log timestamps, which
# are written once the work is done: detection ("director gone", "director is
# back") gets 1 s of slack (measured up to 0.4 s beyond the 2 s worst case on a
# machine with load 12), a finished sync ("iptables chains updated",
# "realserver role cleaned up") 4 s. What this script sees itself (polling
# with ip/iptables-save processes, 0.3 to 3 s each under load) is reported and
# only has to happen within 30 s.
#
# e2e-needs: kapi
# e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
. "$(dirname "$0")/../lib-kube.sh"

need_ravel
need_kube
NODE_IP=10.0.0.11 VIP=10.0.0.100 PORT=44444 CLIENT_IP=10.0.0.10
FAILOVER=1 # failoverTimeout, seconds
DRAIN=3    # the drain delay: 2 x health.interval (1s) + 1 s
DETECT_SLACK=1 APPLY_SLACK=4
mk_switch lan
mk_ns node client
mk_link node lan "$NODE_IP/24"
mk_link client lan "$CLIENT_IP/24"
kube_link node

SEL=ravel-e2e/s43
kt - <<EOF
node s43-node $NODE_IP --label $SEL=true
service s43 web --port http:80:8080
slice s43 web web-1 --port http:8080 --endpoint 10.244.1.11:s43-node
EOF

kube_ravel_config "$SCENARIO_DIR/ravel.yaml" "$SEL" "$VIP" -- <<EOF
node: {role: director, interface: eth0, vipInterface: ravel0}
services:
  - name: web
    vip: $VIP
    port: 80
    kubernetes: {namespace: s43, service: web, portName: http}
coordinator: {ports: [$PORT], failoverTimeout: ${FAILOVER}s}
health: {interval: 1s, timeout: 500ms}
arp: {interval: 0s}
EOF
RS_LOG=$SCENARIO_DIR/realserver.log

# Listening, by the socket table: no connection attempts. A test connect to
# 127.0.0.1:44444 (inside the ephemeral port range) before the director
# listens can pick 44444 as its own source port and connect to itself (TCP
# simultaneous open); the director's listen then fails with "address already
# in use" (the likely cause of a director that refused to start here once,
# probed with bash's /dev/tcp; Go's dialer, which ravel's
# probe uses, detects a self-connect and retries).
coordinator_up() { [[ -n $(in_ns node ss -Hltn "sport = :$PORT") ]]; }
role_up() { [[ $(nat_count node '-j DNAT --to-destination 10\.244\.1\.11:8080') == 1 ]] && vip_on_lo; }
role_gone() { [[ -z $(nat_chains node) ]] && ! vip_on_lo; }
vip_on_lo() { [[ $(ip -n node -4 addr show dev lo) == *"inet $VIP/32"* ]]; }
# poll_until SECS CMD...: like wait_for, polling as fast as it can; prints the
# time CMD first succeeded (empty on timeout).
poll_until() {
	local deadline=$((SECONDS + $1))
	shift
	while ((SECONDS < deadline)); do
		if "$@" 2>/dev/null; then
			now
			return 0
		fi
		sleep 0.05
	done
	return 0
}

# --- 1. the director runs: the realserver role stays off ------------------------------
kube_ravel node director --config "$SCENARIO_DIR/ravel.yaml" --node-name s43-node
DIR_PID=$BG_PID
wait_for 60 "the director's coordinator port" coordinator_up
kube_ravel node realserver --config "$SCENARIO_DIR/ravel.yaml" --node-name s43-node --role realserver --vip-interface lo
wait_for 60 "the realserver waiting for the director" grep -q "realserver waiting for the director" "$RS_LOG"
pass "realserver log: $(grep -o 'msg="realserver waiting[^"]*"' "$RS_LOG")"
# Three probe intervals beyond failoverTimeout: time enough to (wrongly) take over.
sleep $((FAILOVER + 3))
assert_eq "while the director runs: no RAVEL chains" "" "$(nat_chains node)"
if vip_on_lo; then fail "while the director runs: the VIP is on lo"; else pass "while the director runs: no VIP on lo"; fi
if grep -q "director gone" "$RS_LOG"; then fail "the realserver took over while the director ran"; else pass "the realserver did not take over"; fi

# --- 2. the director dies: the realserver role comes up -------------------------------------
t_kill=$EPOCHREALTIME
kill -9 "$DIR_PID"
t_seen=$(poll_until 30 role_up)
[[ -n $t_seen ]] || die "the realserver role did not come up within 30 s of the kill"
t_gone=$(log_time "$RS_LOG" 'director gone: starting the realserver role')
t_chains=$(log_time "$RS_LOG" 'iptables chains updated')
log "kill at $t_kill; realserver: 'director gone' +$(secs_between "$t_kill" "$t_gone")s, chains written +$(secs_between "$t_kill" "$t_chains")s; seen here +$(secs_between "$t_kill" "$t_seen")s"
assert_le_secs "'director gone' within failoverTimeout + 1 s (+${DETECT_SLACK}s) of the kill" \
	"$(secs_between "$t_kill" "$t_gone")" "$(awk -v f=$FAILOVER -v s=$DETECT_SLACK 'BEGIN { print f + 1 + s }')"
assert_le_secs "realserver chains written within failoverTimeout + 1 s (+${APPLY_SLACK}s) of the kill" \
	"$(secs_between "$t_kill" "$t_chains")" "$(awk -v f=$FAILOVER -v s=$APPLY_SLACK 'BEGIN { print f + 1 + s }')"
pass "the role is up: DNAT to the node's pod and the VIP on lo"
in_ns node iptables-save -t nat | grep -E '^(:RAVEL|-A (PREROUTING|RAVEL))' || true
assert_eq "a PREROUTING jump to RAVEL" 1 "$(nat_count node '^-A PREROUTING .*-j RAVEL$')"

# --- 3. the director returns: the realserver role goes away ----------------------------------
listen_watch node "$PORT" "$SCENARIO_DIR/listen.time"
t_restart=$EPOCHREALTIME
kube_ravel node director2 --config "$SCENARIO_DIR/ravel.yaml" --node-name s43-node
t_removed=$(poll_until 60 role_gone)
[[ -n $t_removed ]] || die "the realserver role was not removed within 60 s of the director's restart"
wait_for 10 "the restarted director listening on $PORT" test -s "$SCENARIO_DIR/listen.time"
t_listen=$(<"$SCENARIO_DIR/listen.time")
t_dstart=$(log_time "$SCENARIO_DIR/director2.log" 'ravel starting')
t_back=$(log_time "$RS_LOG" 'director is back: stopping the realserver role')
t_clean=$(log_time "$RS_LOG" 'realserver role cleaned up')
log "director restarted at $t_restart: 'ravel starting' +$(secs_between "$t_restart" "$t_dstart")s, listening +$(secs_between "$t_restart" "$t_listen")s; realserver: 'director is back' +$(secs_between "$t_restart" "$t_back")s, cleaned up +$(secs_between "$t_restart" "$t_clean")s; seen here +$(secs_between "$t_restart" "$t_removed")s"
# The reference is the moment the director's socket listens (listen_watch: a
# 10 ms poll of the socket table, no process per poll).
assert_le_secs "'director is back' within one probe interval (+${DETECT_SLACK}s) of the director listening" \
	"$(secs_between "$t_listen" "$t_back")" "$(awk -v s=$DETECT_SLACK 'BEGIN { print 1 + s }')"
assert_le_secs "realserver chains and VIP removed within one probe interval + the drain delay (+${APPLY_SLACK}s) of the director listening" \
	"$(secs_between "$t_listen" "$t_clean")" "$(awk -v s=$APPLY_SLACK -v d=$DRAIN 'BEGIN { print 1 + d + s }')"
t_drained=$(log_time "$RS_LOG" 'drain delay over')
assert_ge "the rules stayed for the drain delay ($(secs_between "$t_back" "$t_drained")s from 'director is back' to 'drain delay over', want >= ${DRAIN}s)" \
	0 "$(awk -v a="$t_back" -v b="$t_drained" -v d=$DRAIN 'BEGIN { print (b - a >= d - 0.05) ? 0 : -1 }')"
pass "the role is gone: no RAVEL chains, no VIP on lo"

# --- 4. the director answers ARP for its VIP again --------------------------------------------
assert_eq "eth0 arp_ignore set back after the stand-down" 0 "$(in_ns node sysctl -n net.ipv4.conf.eth0.arp_ignore)"
assert_eq "all arp_ignore set back after the stand-down" 0 "$(in_ns node sysctl -n net.ipv4.conf.all.arp_ignore)"
wait_for 30 "the restarted director binds $VIP" vip_bound node "$VIP"
sleep 1 # past the one gratuitous ARP sent at the bind (periodic ones are off)
ip -n client neigh flush all
in_ns client curl -s --max-time 3 "http://$VIP/" >/dev/null 2>&1 || true # any answer, even a reset, needs ARP
node_mac=$(ip -n node -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | awk '{ print $2 }')
neigh=$(ip -n client neigh show "$VIP")
log "client's neighbour entry for $VIP after the request: $neigh"
assert_eq "the client learned $VIP by asking (ARP reply from the node, $node_mac)" 1 "$(grep -c "lladdr $node_mac" <<<"$neigh" || true)"
if grep -q 'level=ERROR' "$RS_LOG"; then fail "the realserver logged errors: $(grep 'level=ERROR' "$RS_LOG" | head -n 3)"; else pass "no errors in the realserver's log"; fi
