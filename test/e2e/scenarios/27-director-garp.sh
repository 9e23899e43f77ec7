#!/usr/bin/env bash
# Gratuitous ARP: when ravel binds a VIP it announces it from node.interface,
# addressed to node.gateway, and again every arp.interval. A neighbour on the
# director's segment learns the director's MAC for the VIP without ever
# having sent anything to the VIP, and learns it again within an interval
# after its entry is deleted. (That is what moves a VIP's traffic to a new
# director after a failover.)
#
# Topology: topo_dr; the client plays the gateway (node.gateway = client).
. "$(dirname "$0")/../lib.sh"

topo_dr
ARP_INTERVAL=1

cfg=$SCENARIO_DIR/ravel.yaml
ravel_config "$cfg" <<EOF
apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director, role: director, interface: eth0, vipInterface: ravel0, gateway: $CLIENT_IP}
vipPool: [$VIP]
services:
  - name: web
    vip: $VIP
    port: 80
    backends:
      - {address: $RS1_IP, weight: 1}
arp: {interval: ${ARP_INTERVAL}s}
resync: 2s
coordinator: {ports: [44427]}
metrics: {listen: "127.0.0.1:10234"}
EOF

director_mac=$(ip -n director -o link show eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "link/ether") print $(i + 1) }')
log "director eth0 MAC: $director_mac"
neigh_mac() { ip -n client neigh show "$VIP" dev eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'; }
learned() { [[ $(neigh_mac) == "$director_mac" ]]; }
assert_eq "client's ARP entry for the VIP before ravel starts" "" "$(neigh_mac)"

ravel_start director ravel "$cfg"
wait_for 60 "ravel binds $VIP on ravel0" vip_bound director "$VIP"
if wait_for 20 "client learns the VIP's MAC" learned; then
	pass "client learned $VIP -> $director_mac without sending to the VIP ($(ip -n client neigh show "$VIP"))"
fi
# Nothing in this scenario sends to the VIP: the entry can only come from
# the director's announcement.
assert_ge "gratuitous ARPs sent (ravel_garp_sent_total)" 1 "$(metric director 127.0.0.1:10234 ravel_garp_sent_total)"
assert_eq "gratuitous ARP errors (ravel_garp_errors_total)" 0 "$(metric director 127.0.0.1:10234 ravel_garp_errors_total)"

# Periodic: forget it, and it is back within an interval (+ slack). The
# delete and a look right after it run in one 'ip -batch' process, as an
# announcement may well come back before a second process has started.
for round in 1 2; do
	t0=$SECONDS
	after_del=$(printf 'neigh del %s dev eth0\nneigh show %s dev eth0\n' "$VIP" "$VIP" | ip -n client -batch -)
	if [[ $after_del == *"$director_mac"* ]]; then
		fail "round $round: entry still there right after 'ip neigh del': $after_del"
		continue
	fi
	if wait_for $((ARP_INTERVAL + 5)) "round $round: client re-learns the VIP's MAC" learned; then
		pass "round $round: deleted, then re-learned $VIP -> $director_mac within $((SECONDS - t0))s (interval ${ARP_INTERVAL}s)"
	fi
done
grep -i arp "$SCENARIO_DIR/ravel.log" || true
ravel_stop "$RAVEL_PID"
