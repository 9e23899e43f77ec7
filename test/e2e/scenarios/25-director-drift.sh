#!/usr/bin/env bash
# Drift repair and ownership. With 'resync: 2s', hand-made damage to what
# ravel owns is undone within one resync period (+ slack for emulation):
#   - 'ipvsadm -D' of a managed service
#   - 'ip addr del' of a VIP from ravel0
#   - 'ip link set ravel0 down'
#   - 'ip link del ravel0' (the device and every VIP on it)
# and traffic works again after each. What ravel does NOT own is never
# touched, before, during and after ravel runs (byte-identical):
#   - a foreign IPVS service (VIP outside vipPool) with a destination
#   - a foreign dummy device with an address
#   - a foreign address (outside vipPool) added to ravel0 itself
#
# Topology: topo_dr (client, director, rs1, rs2 on one segment).
. "$(dirname "$0")/../lib.sh"

RESYNC=2
SLACK=8 # emulation: a sync reads and writes through netlink at TCG speed
FOREIGN_VIP=10.0.0.200
FOREIGN_ADDR=192.0.2.7
FOREIGN_ON_RAVEL0=198.51.100.9

topo_dr
rs_serve "$VIP" 80 rs1 rs2

# Foreign state, made before ravel ever runs.
in_ns director ipvsadm -A -t "$FOREIGN_VIP:8080" -s rr
in_ns director ipvsadm -a -t "$FOREIGN_VIP:8080" -r "$RS1_IP:8080" -g -w 7
ip -n director link add foreign0 type dummy
ip -n director addr add "$FOREIGN_ADDR/32" dev foreign0
ip -n director link set foreign0 up
foreign_svc() { in_ns director ipvsadm -Sn | grep -F -- "$FOREIGN_VIP:8080" | sort; }
foreign_dev() { ip -n director addr show foreign0; }
foreign_svc_before=$(foreign_svc)
foreign_dev_before=$(foreign_dev)
echo "$foreign_svc_before"
echo "$foreign_dev_before"

cfg=$SCENARIO_DIR/ravel.yaml
director_config "$cfg" 44425 resync="${RESYNC}s"

# --log-level debug: the log then has every plan in full (info has only their summary),
# which the foreign-object check below reads.
director_up ravel "$cfg" --log-level debug
ip -n director addr add "$FOREIGN_ON_RAVEL0/32" dev ravel0
out=$(hit client "http://$VIP/" 8) || fail "requests before any drift failed: $out"

# repaired DESC CHECK...: wait one resync period + slack for CHECK, say how long it took.
repaired() {
	local desc=$1 t0=$SECONDS
	shift
	if wait_for $((RESYNC + SLACK)) "$desc repaired" "$@"; then
		pass "$desc repaired in $((SECONDS - t0))s (resync ${RESYNC}s + ${SLACK}s slack)"
	fi
}
serves() { in_ns client "$E2E_BIN/hit" -n 4 -timeout 3s "http://$VIP/" >/dev/null; }

log "drift 1: ipvsadm -D of the managed service"
in_ns director ipvsadm -D -t "$VIP:80"
repaired "deleted IPVS service $VIP:80" ipvs_has director "$VIP:80" 2
assert_eq "destination $RS1_IP:80 after repair" "Route 3" "$(ipvs_dest director "$VIP:80" "$RS1_IP:80")"
assert_eq "destination $RS2_IP:80 after repair" "Route 1" "$(ipvs_dest director "$VIP:80" "$RS2_IP:80")"
out=$(hit client "http://$VIP/" 8) || fail "requests after the service repair failed: $out"
assert_eq "requests after the service repair" "failed 0" "$(tail -n1 <<<"$out")"

log "drift 2: ip addr del of the VIP from ravel0"
ip -n director addr del "$VIP/32" dev ravel0
repaired "VIP $VIP removed from ravel0" vip_bound director "$VIP"
# The client still has the director's MAC for the VIP; the director takes
# packets to it again as soon as it is local again.
wait_for 20 "traffic after the VIP repair" serves
out=$(hit client "http://$VIP/" 8) || fail "requests after the VIP repair failed: $out"
assert_eq "requests after the VIP repair" "failed 0" "$(tail -n1 <<<"$out")"

# Two repairs and several resyncs later, the foreign address on ravel0 is still there.
if vip_bound director "$FOREIGN_ON_RAVEL0"; then
	pass "foreign address $FOREIGN_ON_RAVEL0 on ravel0 left alone by the resyncs"
else
	fail "foreign address $FOREIGN_ON_RAVEL0 on ravel0 was removed"
fi

log "drift 3: ip link set ravel0 down"
ip -n director link set ravel0 down
dev_up() { ip -n director link show ravel0 | grep -q '[<,]UP[,>]'; }
repaired "ravel0 set down" dev_up
wait_for 20 "traffic after the device came up again" serves
out=$(hit client "http://$VIP/" 8) || fail "requests after ravel0 came up again failed: $out"
assert_eq "requests after ravel0 came up again" "failed 0" "$(tail -n1 <<<"$out")"

log "drift 4: ip link del ravel0"
ip -n director link del ravel0
repaired "deleted device ravel0 with the VIP" vip_bound director "$VIP"
wait_for 20 "traffic after the device repair" serves
out=$(hit client "http://$VIP/" 8) || fail "requests after the device repair failed: $out"
assert_eq "requests after the device repair" "failed 0" "$(tail -n1 <<<"$out")"

# Several resyncs went by: the foreign objects are exactly as they were.
assert_eq "foreign IPVS service untouched while ravel runs" "$foreign_svc_before" "$(foreign_svc)"
assert_eq "foreign dummy device untouched while ravel runs" "$foreign_dev_before" "$(foreign_dev)"
plans=$(grep 'msg=plan ' "$SCENARIO_DIR/ravel.log" || true)
if [[ -z $plans ]]; then
	fail "no full plan in the debug log: the foreign-object check below would see nothing"
elif grep -qE "$FOREIGN_VIP|$FOREIGN_ADDR|foreign0|$FOREIGN_ON_RAVEL0" <<<"$plans"; then
	fail "a plan of ravel mentions a foreign object: $plans"
else
	pass "no plan of ravel mentions a foreign object ($(wc -l <<<"$plans") plans read)"
fi
in_ns director ipvsadm -Ln

ravel_stop "$RAVEL_PID"
assert_eq "foreign IPVS service untouched after ravel stopped" "$foreign_svc_before" "$(foreign_svc)"
assert_eq "foreign dummy device untouched after ravel stopped" "$foreign_dev_before" "$(foreign_dev)"
