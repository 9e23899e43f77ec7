#!/usr/bin/env bash
# Scenario 40's path with the realserver's rules in nftables (rules.backend: nftables): client
# -> director (ravel, IPVS DR) -> realserver node (ravel role realserver, ONE table
# `inet ravel`) -> the node's two pods, which see the CLIENT's address. On the same node:
#   1. the switch from an earlier iptables run: ravel's RAVEL* chains, left by a realserver
#      of backend iptables killed with SIGKILL, are removed once the table serves, while a
#      foreign iptables chain (KUBE-SERVICES, jumped to from PREROUTING and OUTPUT) and a
#      foreign nftables table (`table ip kube-proxy`) stay byte-identical;
#   2. clients inside the zone: web2 (VIP2, in the pool, bound on the node's lo) has its only
#      ready pod on node B. It is an element of zone4, not services4; the node's own
#      processes and its pods reach it through node B's pod (the node's own connections
#      masqueraded, a pod's not), while a packet for VIP2 arriving on eth0 as a director
#      forwards it (DR: same packet, only the MAC differs) is left to the node's own socket,
#      which refuses it;
#   3. SIGTERM removes `table inet ravel`, and only it.
#
#   client 10.0.0.10 --- lan 10.0.0.0/24 --- director 10.0.0.2 (VIPs 10.0.0.100, .101 on ravel0)
#                         |                |
#   (s44-node-a) nodea 10.0.0.11         nodeb 10.0.0.12 (s44-node-b, no ravel)
#      cbr0 10.244.1.1/24                  cbr0 10.244.2.1/24
#        |-- pod-a1 10.244.1.11:8080         '-- pod-b1 10.244.2.11:8080 (web2's only pod)
#        '-- pod-a2 10.244.1.12:8080
#   pod routes: nodea 10.244.2.0/24 via 10.0.0.12, nodeb 10.244.1.0/24 via 10.0.0.11
#
# e2e-needs: kapi
# e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
. "$(dirname "$0")/../lib-kube.sh"

need_ravel
need_kube
CLIENT_IP=10.0.0.10 DIRECTOR_IP=10.0.0.2 NODE_IP=10.0.0.11 NODEB_IP=10.0.0.12
VIP=10.0.0.100 VIP2=10.0.0.101
mk_switch lan
mk_ns client director nodea nodeb
mk_link client lan "$CLIENT_IP/24"
mk_link director lan "$DIRECTOR_IP/24"
mk_link nodea lan "$NODE_IP/24"
mk_link nodeb lan "$NODEB_IP/24"
kube_link director
kube_link nodea

# What other programs own on the node, before any ravel runs there: kube-proxy's iptables
# chain (iptables is iptables-nft on Debian 12: it lives in nftables' `table ip nat`) and a
# table of kube-proxy's nftables mode, with a base chain on the same NAT hook as ravel's.
in_ns nodea iptables-restore --noflush <<EOF
*nat
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j RETURN
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -j KUBE-SERVICES
COMMIT
EOF
in_ns nodea nft -f - <<EOF
table ip kube-proxy {
	chain services {
		ip daddr 10.96.0.1 tcp dport 443 return
	}
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}
}
EOF
# The node's nat table as iptables-save prints it, without comment lines and chain counters.
# (Bash alone past iptables-save, as in map_elem below: under emulation on a loaded machine
# every process start costs 0.3 to 1 s, and these run in polls.)
ipt_nat() {
	local out line
	out=$(in_ns nodea iptables-save -t nat) || true
	while IFS= read -r line; do
		[[ $line == '#'* ]] && continue
		[[ $line =~ ^(:[^ ]+ [^ ]+)\ \[[0-9]+:[0-9]+\]$ ]] && line=${BASH_REMATCH[1]}
		printf '%s\n' "$line"
	done <<<"$out"
}
# kp_table [RULESET]: table ip kube-proxy, cut out of RULESET ('nft list ruleset') or listed.
kp_table() {
	if (($#)); then
		awk '$0 == "table ip kube-proxy {" { on = 1 } on { print } on && $0 == "}" { exit }' <<<"$1"
	else
		in_ns nodea nft list table ip kube-proxy 2>&1 || true
	fi
}
NAT_BEFORE=$(ipt_nat) KP_BEFORE=$(kp_table)
echo "$NAT_BEFORE" >"$SCENARIO_DIR/nat-before.txt"
echo "$KP_BEFORE" >"$SCENARIO_DIR/kube-proxy-before.nft"
assert_eq "the foreign iptables chain is in place (its 4 lines)" 4 "$(grep -c KUBE-SERVICES <<<"$NAT_BEFORE" || true)"
assert_eq "the foreign nftables table is in place" 1 "$(grep -c 'jump services' <<<"$KP_BEFORE" || true)"

SEL=ravel-e2e/s44
kt - <<EOF
node s44-director $DIRECTOR_IP --label $SEL=true
node s44-node-a $NODE_IP --label $SEL=true
node s44-node-b $NODEB_IP --label $SEL=true
service s44 web --port http:80:8080
service s44 web2 --port http:80:8080
slice s44 web web-1 --port http:8080 --endpoint 10.244.1.11:s44-node-a --endpoint 10.244.1.12:s44-node-a
slice s44 web2 web2-1 --port http:8080 --endpoint 10.244.2.11:s44-node-b
EOF

# One file per rules backend, the same otherwise (the director, not colocated, serves nothing
# from rules). A short drain delay: the stop is checked here, the drain in scenario 71.
config() {
	kube_ravel_config "$SCENARIO_DIR/$1.yaml" "$SEL" "$VIP" "$VIP2" -- <<EOF
node: {role: director, interface: eth0, vipInterface: ravel0}
rules: {backend: $1}
services:
  - name: web
    vip: $VIP
    port: 80
    kubernetes: {namespace: s44, service: web, portName: http}
  - name: web2
    vip: $VIP2
    port: 80
    kubernetes: {namespace: s44, service: web2, portName: http}
coordinator: {ports: [44444], failoverTimeout: 1s}
health: {interval: 1s, timeout: 500ms, drainDelay: 200ms}
EOF
}
config iptables
config nftables
RS_ARGS=(--node-name s44-node-a --role realserver --vip-interface lo)
kube_ravel director director --config "$SCENARIO_DIR/nftables.yaml" --node-name s44-director
# The earlier run: backend iptables, killed (a crash, or an upgrade that never got to clean
# up). It starts while the pods are made (its chains need only the API's objects).
kube_ravel nodea realserver-iptables --config "$SCENARIO_DIR/iptables.yaml" "${RS_ARGS[@]}"
IPT_PID=$BG_PID
mk_pod nodea pod-a1 10.244.1.11
mk_pod nodea pod-a2 10.244.1.12
mk_pod nodeb pod-b1 10.244.2.11
ip -n nodea route add 10.244.2.0/24 via "$NODEB_IP"
ip -n nodeb route add 10.244.1.0/24 via "$NODE_IP"
start_echos pod-a1:pod-a1:8080 pod-a2:pod-a2:8080 pod-b1:pod-b1:8080
log "topology, pods and echo servers ready; director and an iptables realserver started"

pods_dnat() {
	local t
	t=$(ipt_nat)
	[[ $t == *"-j DNAT --to-destination 10.244.1.11:8080"* && $t == *"-j DNAT --to-destination 10.244.1.12:8080"* ]]
}
wait_for 60 "the iptables realserver's DNAT to both pods" pods_dnat
kill -9 "$IPT_PID"
wait "$IPT_PID" 2>/dev/null || true
LEFT=$(ipt_nat)
echo "$LEFT" >"$SCENARIO_DIR/nat-left.txt"
left_chains=
while read -r c _; do [[ $c == :RAVEL* ]] && left_chains+="${c#:} "; done <<<"$LEFT"
[[ $left_chains == *"RAVEL "* && $LEFT =~ (^|$'\n')-A\ PREROUTING\ [^$'\n']*-j\ RAVEL($'\n'|$) ]] ||
	die "the killed iptables run left no RAVEL chains and jump to remove (chains: $left_chains)"
pass "the killed iptables run left its chains and jump: $left_chains"

kube_ravel nodea realserver --config "$SCENARIO_DIR/nftables.yaml" "${RS_ARGS[@]}"
RS_PID=$BG_PID
log "realserver (nftables) started"
# map_elem MAP VIP: the element "VIP . tcp . 80" of MAP (comment and verdict included) in
# $TABLE, 'nft list table inet ravel'; empty if none. nft lists a map's elements on one line.
map_elem() {
	local line on=0 re="(^|[{ ,])(${2//./\\.} \\. tcp \\. 80 [^,}]*[^ ,}])"
	while IFS= read -r line; do
		[[ $line == *"map $1 {" ]] && on=1
		((on)) || continue
		[[ $line == $'\t}' ]] && return 0
		[[ $line =~ $re ]] && echo "${BASH_REMATCH[2]}" && return 0
	done <<<"$TABLE"
	return 0
}
served() {
	TABLE=$(in_ns nodea nft list table inet ravel 2>&1) || return 1
	[[ $(map_elem services4 "$VIP") == *": goto svc-"* && $(map_elem zone4 "$VIP2") == *": goto zone-"* ]]
}
TABLE=
wait_for 60 "table inet ravel: $VIP in services4, $VIP2 in zone4" served || true
echo "$TABLE" >"$SCENARIO_DIR/table-inet-ravel.nft"

log "programmed; sending traffic through the director"
wait_weights 60 director "$VIP:80" "$NODE_IP:80=2"
out=$(hit client "http://$VIP/client" 60 -c 4 -timeout 3s) || fail "requests through the VIP failed: $out"
echo "$out"
p1=$(hit_count "$out" "pod-a1@$CLIENT_IP") p2=$(hit_count "$out" "pod-a2@$CLIENT_IP")
assert_ge "pod-a1 answered, seeing the client's address" 1 "$p1"
assert_ge "pod-a2 answered, seeing the client's address" 1 "$p2"
assert_eq "all 60 answers came from a pod that saw $CLIENT_IP" 60 "$((p1 + p2))"
wait_conns 10 director "$VIP:80" "$NODE_IP:80" 60 "IPVS sent all 60 to the node"

log "clients inside the zone: $VIP2 (its pod is on node B)"
out=$(hit nodea "http://$VIP2/client" 10 -timeout 3s) || fail "requests from the node's host namespace to $VIP2 failed: $out"
echo "$out"
assert_eq "the node's own process reached node B's pod, masqueraded to the node's address" 10 \
	"$(hit_count "$out" "pod-b1@$NODE_IP")"
out=$(hit pod-a1 "http://$VIP2/client" 10 -timeout 3s) || fail "requests from pod-a1 to $VIP2 failed: $out"
echo "$out"
assert_eq "the node's pod reached node B's pod with its own address" 10 "$(hit_count "$out" "pod-b1@10.244.1.11")"
# The director's path: a packet for VIP2 arriving on eth0 (the client routes VIP2 to the node,
# as a DR director would hand it over). The zone map is not consulted: the node's own socket
# refuses it (VIP2 is on lo, nothing listens on :80). Had the zone rules served it, node B's
# pod would answer the client from 10.244.2.11 behind the node's back: a timeout, not a refusal.
w2=$(ipvs_weight director "$VIP2:80" "$NODE_IP:80")
if [[ $w2 == absent || $w2 == 0 ]]; then pass "the director sends node A nothing for $VIP2 (weight $w2)"; else fail "the director gives node A weight $w2 for $VIP2"; fi
ip -n client route add "$VIP2/32" via "$NODE_IP"
rc=0
in_ns client curl -sS -o /dev/null --max-time 5 "http://$VIP2/client" 2>"$SCENARIO_DIR/curl-vip2.err" || rc=$?
assert_eq "$VIP2 arriving on the node's eth0 is refused by the node (curl exit 7), not zone-served" 7 "$rc"

log "the table, and what it left alone"
hooks=$(grep -oE 'type nat hook [a-z]+ priority [^;]+' <<<"$TABLE" | sed 's/^type nat //' | paste -sd '|' || true)
assert_eq "the table's base chains (prerouting and output at -110, postrouting at 90)" \
	"hook prerouting priority dstnat - 10|hook output priority -110|hook postrouting priority srcnat - 10" "$hooks"
assert_eq "$VIP:80 in services4, to its svc chain" 1 "$(map_elem services4 "$VIP" | grep -c ': goto svc-' || true)"
assert_eq "$VIP2:80 not in services4 (no local pod)" "" "$(map_elem services4 "$VIP2")"
assert_eq "$VIP2:80 in zone4, to its zone chain" 1 "$(map_elem zone4 "$VIP2" | grep -c ': goto zone-' || true)"
assert_eq "$VIP:80 not in zone4" "" "$(map_elem zone4 "$VIP")"
assert_eq "endpoint chains DNAT to pod-a1, pod-a2 and (zone) node B's pod" 3 \
	"$(grep -cE 'meta l4proto tcp dnat ip to 10\.244\.(1\.11|1\.12|2\.11):8080$' <<<"$TABLE" || true)"
ipt_clean() { [[ $(ipt_nat) != *RAVEL* ]]; }
wait_for 30 "the iptables run's RAVEL chains removed" ipt_clean || true
NAT_AFTER=$(ipt_nat)
echo "$NAT_AFTER" >"$SCENARIO_DIR/nat-after.txt"
if [[ $NAT_AFTER != *RAVEL* ]]; then pass "ravel's iptables chains and jumps are gone"; else fail "RAVEL left in the nat table: $NAT_AFTER"; fi
if [[ $NAT_AFTER == "$NAT_BEFORE" ]]; then
	pass "the nat table is as before any ravel run: the foreign chain and its jumps byte-identical"
else
	fail "the nat table differs from before ravel ran: $(diff <(echo "$NAT_BEFORE") <(echo "$NAT_AFTER") | tr '\n' ' ' || true)"
fi
kp=$(kp_table)
if [[ $kp == "$KP_BEFORE" ]]; then pass "table ip kube-proxy byte-identical"; else fail "table ip kube-proxy changed: $kp"; fi
vip_lo=$(ip -n nodea -4 addr show dev lo)
assert_eq "both VIPs bound on the node's lo" 2 "$(grep -cE "inet ($VIP|$VIP2)/32" <<<"$vip_lo" || true)"

log "SIGTERM to the realserver"
ravel_stop "$RS_PID"
ruleset=$(in_ns nodea nft list ruleset)
echo "$ruleset" >"$SCENARIO_DIR/ruleset-after-stop.nft"
assert_eq "table inet ravel removed on stop" 0 "$(grep -c '^table inet ravel ' <<<"$ruleset" || true)"
kp=$(kp_table "$ruleset")
if [[ $kp == "$KP_BEFORE" ]]; then pass "table ip kube-proxy still byte-identical"; else fail "table ip kube-proxy changed on stop: $kp"; fi
NAT_AFTER=$(ipt_nat)
if [[ $NAT_AFTER == "$NAT_BEFORE" ]]; then
	pass "the nat table still as before"
else
	fail "the nat table changed on stop: $(diff <(echo "$NAT_BEFORE") <(echo "$NAT_AFTER") | tr '\n' ' ' || true)"
fi
