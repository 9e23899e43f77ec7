#!/usr/bin/env bash
# Issue 12 on the real kernel: two bgp-role directors announce one VIP to a bird2 router, which
# installs it into its kernel as an ECMP route and spreads the client's flows over both.
#   1 the route has two next hops; requests through the VIP are served by both directors;
#   2 a director dies (its link cut, then ravel killed with -9: no FIN, no NOTIFICATION): the
#     router drops it after the hold time (3 s) and every request after that is answered; a
#     long-lived connection through it survives: the router moves the flow to the other
#     director, whose mh + mh-port hash picks the same realserver and whose sloppy_tcp=1 takes
#     the mid-stream packet;
#   3 SIGTERM with graceful restart, then a start again: the router keeps the route (stale) and
#     the stopped director's kernel keeps forwarding, so no request fails;
#   4 the other outcome of 2: with sloppy_tcp=0 the moved connection breaks.
#
#   client 10.1.0.10 --- wan --- router (bird2; 10.1.0.1 / 10.0.0.1) --- lan --- d1 10.0.0.2
#                                                                          |  \-- d2 10.0.0.3
#                                                                         rs1 .11  rs2 .12
#   VIP 10.9.0.100: on no subnet, reachable only by the BGP routes; DR from the directors to the
#   realservers (VIP on lo), which answer the client through the router.
. "$(dirname "$0")/../lib.sh"

VIP=10.9.0.100 RS1_IP=10.0.0.11 RS2_IP=10.0.0.12 D1_IP=10.0.0.2 D2_IP=10.0.0.3
mk_switch lan
mk_switch wan
mk_ns client router d1 d2 rs1 rs2
mk_link client wan 10.1.0.10/24
mk_link router wan 10.1.0.1/24 eth0
mk_link router lan 10.0.0.1/24 eth1
mk_link d1 lan "$D1_IP/24"
mk_link d2 lan "$D2_IP/24"
mk_link rs1 lan "$RS1_IP/24"
mk_link rs2 lan "$RS2_IP/24"
ip -n client route add default via 10.1.0.1
for ns in rs1 rs2 d1 d2; do ip -n "$ns" route add default via 10.0.0.1; done
# fib_multipath_hash_policy=1: the router hashes flows by ports too, so one client's
# connections spread over both directors. rp_filter off: replies come from the VIP.
ns_sysctl router net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
	net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0
rs_serve "$VIP" 80 rs1 rs2

# --- the router ---------------------------------------------------------------------------
BIRD_DIR=$(mktemp -d /tmp/ravel-e2e-80.XXXXXX) # a unix socket needs a local filesystem, not 9p
BIRD_SOCK=$BIRD_DIR/bird.ctl
cat >"$SCENARIO_DIR/bird.conf" <<EOF
log stderr all;
router id 10.0.0.1;
protocol device {}
protocol kernel { ipv4 { export all; }; merge paths on; }
template bgp dir {
	local 10.0.0.1 as 65000;
	connect delay time 1;
	error wait time 1, 5;
	graceful restart on;
	ipv4 { import all; export none; };
}
protocol bgp d1 from dir { neighbor $D1_IP as 65010; }
protocol bgp d2 from dir { neighbor $D2_IP as 65010; }
EOF
bg router bird bird -f -c "$SCENARIO_DIR/bird.conf" -s "$BIRD_SOCK"
wait_for 30 "bird answers on its socket" in_ns router birdc -s "$BIRD_SOCK" show status

# nexthops: how many next hops the router's kernel has for the VIP (0: no route).
nexthops() {
	local r
	r=$(ip -n router -4 route show "$VIP/32" 2>/dev/null)
	if [[ -z $r ]]; then echo 0; elif [[ $r == *nexthop* ]]; then grep -c nexthop <<<"$r"; else echo 1; fi
}
has_nexthops() { [[ $(nexthops) == "$1" ]]; }

# --- the directors ------------------------------------------------------------------------
# config NS SLOPPY: d1 or d2's file.
config() {
	ravel_config "$SCENARIO_DIR/$1.yaml" <<EOF
apiVersion: ravel/v1
kind: ClusterConfig
node: {name: $1, role: bgp, interface: eth0, vipInterface: ravel0}
vipPool: [$VIP]
defaults:
  ipvs: {scheduler: mh, flags: [mh-port], forwarding: dr}
services:
  - name: web
    vip: $VIP
    port: 80
    backends:
      - {address: $RS1_IP, weight: 1}
      - {address: $RS2_IP, weight: 1}
ipvsSysctls: {sloppy_tcp: $2}
bgp:
  asn: 65010
  peers:
    - {address: 10.0.0.1, asn: 65000, holdTime: 3s, keepaliveTime: 1s, connectRetry: 1s,
       gracefulRestart: {enabled: true, restartTime: 60s}}
resync: 5s
coordinator: {ports: [44480]}
metrics: {listen: ""}
EOF
}
declare -A PID
director_start() { # NS NAME
	ravel_start "$1" "$2" "$SCENARIO_DIR/$1.yaml"
	PID[$1]=$RAVEL_PID
}
config d1 1
config d2 1
director_start d1 d1-a
director_start d2 d2-a
wait_for 90 "the router's kernel has the VIP with two next hops" has_nexthops 2 ||
	die "no ECMP route: $(ip -n router route show "$VIP/32"); bird: $(in_ns router birdc -s "$BIRD_SOCK" show protocols 2>&1 | tail -n 3)"
log "the ECMP route: $(ip -n router -4 route show "$VIP/32" | tr '\n' ' ')"
pass "the router installed $VIP/32 with two next hops ($D1_IP, $D2_IP)"

# --- 1: both directors serve ----------------------------------------------------------------
# conns NS: the client's connections to the VIP in the director's connection table (closed
# ones linger there for minutes). Not ipvsadm --stats: the kernel copies those counters from
# its rate estimator, every 2 s, so a fresh read says 0.
conns() { in_ns "$1" ipvsadm -Lnc 2>/dev/null | awk -v v="$VIP:80" '$4 ~ /^10\.1\.0\.10:/ && $5 == v { n++ } END { print n + 0 }'; }
out=$(hit client "http://$VIP/" 60 -timeout 3s) || fail "requests through the ECMP route failed: $out"
c1=$(conns d1) c2=$(conns d2)
log "60 requests: $(tr '\n' ' ' <<<"$out"); director connections d1 ${c1:-?} d2 ${c2:-?}"
assert_ge "connections through d1" 1 "${c1:-0}"
assert_ge "connections through d2" 1 "${c2:-0}"
assert_ge "requests answered by rs1" 1 "$(hit_count "$out" rs1)"
assert_ge "requests answered by rs2" 1 "$(hit_count "$out" rs2)"

# client_port: the client's port of its one established connection to the VIP (the
# long-lived one; the request loops' are closed by then), from the client's own sockets: a
# director's table can hold a stale ESTABLISHED entry of an earlier connection whose end it
# never saw (its route had moved away).
client_port() {
	in_ns client ss -Htn state established "( dport = :80 )" dst "$VIP" | awk '{ sub(/.*:/, "", $3); print $3; exit }'
}
# carrier PORT: the director whose IPVS has the client's PORT established to the VIP
# (ipvsadm -Lnc: pro expire state source virtual destination).
carrier() {
	local ns
	for ns in d1 d2; do
		if in_ns "$ns" ipvsadm -Lnc 2>/dev/null |
			awk -v v="$VIP:80" -v s="10.1.0.10:$1" '$3 == "ESTABLISHED" && $4 == s && $5 == v { n++ } END { exit n == 0 }'; then
			echo "$ns"
			return
		fi
	done
}
# has_conn NS PORT: NS's IPVS has an entry, in any state, for the client's PORT to the VIP.
has_conn() {
	in_ns "$1" ipvsadm -Lnc 2>/dev/null | awk -v v="$VIP:80" -v s="10.1.0.10:$2" '$4 == s && $5 == v { n++ } END { exit n == 0 }'
}
other() { [[ $1 == d1 ]] && echo d2 || echo d1; }
# die_hard NS: the director dies as a machine does: its link first (nothing gets out, not even
# the FIN of its BGP session), then ravel. Its IPVS state stays in the namespace, unreachable.
die_hard() {
	ip -n "$1" link set eth0 down
	kill -9 "${PID[$1]}"
	wait "${PID[$1]}" 2>/dev/null || true
}
# revive NS: its link back (the default route went with it).
revive() {
	ip -n "$1" link set eth0 up
	ip -n "$1" route replace default via 10.0.0.1
}
# failed_between LOOP T0 T1: failed requests of the rounds that ran entirely between T0 and T1.
failed_between() { awk -v a="$2" -v b="$3" '$1 >= a && $2 <= b { s += $6 } END { print s + 0 }' "$SCENARIO_DIR/$1.rounds"; }
established() { in_ns router birdc -s "$BIRD_SOCK" show protocols "$1" | grep -q Established; }
sloppy_is() {
	[[ $(in_ns d1 cat /proc/sys/net/ipv4/vs/sloppy_tcp) == "$1" && $(in_ns d2 cat /proc/sys/net/ipv4/vs/sloppy_tcp) == "$1" ]]
}

# --- 2: the director that carries a long-lived connection dies -----------------------------
longconn_start client "$VIP" 80 long1
LONG_PORT=$(client_port)
[[ -n $LONG_PORT ]] || die "the client has no established connection to $VIP:80"
victim=$(carrier "$LONG_PORT")
[[ -n $victim ]] || die "neither director holds the long-lived connection"
log "the long-lived connection (client port $LONG_PORT) goes through $victim"
traffic_start client "http://$VIP/" loop1
sleep 3
die_hard "$victim"
tk=$EPOCHREALTIME
wait_for 30 "the router drops $victim's next hop" has_nexthops 1
took=$(awk -v a="$tk" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
log "FIGURE $victim dead: the router has one next hop after $took s (hold time 3 s; the nexthops poll adds its own)"
t_after=$EPOCHSECONDS
sleep 5
traffic_stop loop1
assert_eq "requests failed once the router moved the route" 0 "$(failed_between loop1 "$t_after" "$EPOCHSECONDS")"
assert_ge "requests answered after the route moved" 1 "$(traffic_ok_between loop1 "$t_after" "$EPOCHSECONDS")"
log "requests failed in all while $victim was dead (those sent to it within the hold time): $TRAFFIC_FAILED"
if longconn_finish long1; then
	read -r first second <<<"$LONGCONN_RESULT"
	assert_eq "the long-lived connection stays on its realserver through the other director (mh, sloppy_tcp=1)" "$first" "$second"
else
	fail "the long-lived connection broke when its director died (mh + sloppy_tcp=1 should keep it): $LONGCONN_RESULT"
fi
if has_conn "$(other "$victim")" "$LONG_PORT"; then
	pass "the other director took over the moved connection (sloppy_tcp created its entry mid-stream)"
else
	fail "the other director has no entry for the moved connection"
fi

revive "$victim"
director_start "$victim" "$victim-b"
wait_for 60 "$victim back in the ECMP route" has_nexthops 2

# --- 3: SIGTERM with graceful restart, then start again: no request fails -------------------
gr=$(other "$victim")
traffic_start client "http://$VIP/" loop2
sleep 2
ravel_stop "${PID[$gr]}" 30
ts=$EPOCHSECONDS
grep -q 'BGP graceful restart: routes left on the peers' "$SCENARIO_DIR/$gr-a.log" "$SCENARIO_DIR/$gr-b.log" 2>/dev/null ||
	fail "$gr did not log leaving its routes for a graceful restart"
# While it is stopped the router keeps both next hops (stale), and $gr's kernel forwards.
sleep 4
assert_eq "next hops while $gr is stopped (graceful restart: the route kept)" 2 "$(nexthops)"
in_ns router birdc -s "$BIRD_SOCK" show route "$VIP/32" all >"$SCENARIO_DIR/bird-route-stale.txt" 2>&1 || true
director_start "$gr" "$gr-gr"
wait_for 60 "$gr's session back" established "$gr"
grep -q 'BGP graceful restart: the peers keep' "$SCENARIO_DIR/$gr-gr.log" ||
	fail "the restarted $gr did not restart gracefully (no restart mark taken)"
sleep 3
traffic_stop loop2
assert_eq "requests failed through a SIGTERM and restart with graceful restart" 0 "$TRAFFIC_FAILED"
assert_ge "requests answered while $gr was stopped" 1 "$(traffic_ok_between loop2 "$ts" "$EPOCHSECONDS")"
assert_eq "next hops after the graceful restart" 2 "$(nexthops)"

# --- 4: without sloppy_tcp the moved connection breaks ---------------------------------------
# Both directors to sloppy_tcp=0 (a reload: the file changes, ravel writes the sysctl).
config d1 0
config d2 0
wait_for 30 "sloppy_tcp=0 on both directors" sloppy_is 0
longconn_start client "$VIP" 80 long2
LONG_PORT=$(client_port)
victim=$(carrier "$LONG_PORT")
[[ -n $victim ]] || die "neither director holds the second long-lived connection (client port ${LONG_PORT:-none})"
log "the second long-lived connection (client port $LONG_PORT) goes through $victim"
die_hard "$victim"
wait_for 30 "the router drops $victim's next hop" has_nexthops 1
if longconn_finish long2; then
	fail "with sloppy_tcp=0 the moved connection kept going ($LONGCONN_RESULT): the other director should drop its mid-stream packets"
else
	pass "with sloppy_tcp=0 the moved connection broke: $LONGCONN_RESULT"
fi

ravel_stop "${PID[$(other "$victim")]}" 30
