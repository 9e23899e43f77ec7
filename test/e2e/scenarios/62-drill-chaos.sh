#!/usr/bin/env bash
# Drill: chaos on what ravel owns, while traffic runs through the full path (client ->
# director (IPVS DR) -> realserver node (RAVEL DNAT chains) -> pods). Each blow is repaired
# within one resync period (2 s, + slack for emulation), and traffic works again after it:
#   1 ipvsadm -C on the director (the owner of the foreign service puts it back at once)
#   2 ip addr flush dev ravel0
#   3 ip link del ravel0
#   4 iptables -t nat -F RAVEL on the realserver
#   5 a sysctl set back: net.ipv4.vs.expire_nodest_conn (ipvsSysctls) on the director,
#     arp_ignore on the realserver's eth0
# What ravel does not own is untouched after all of it (byte-identical): a foreign IPVS
# service, a foreign dummy device with an address (director), and kube-proxy's KUBE-* chains
# with a rule (realserver).
#
#   client 10.0.0.10 --- lan 10.0.0.0/24 --- director 10.0.0.2 (VIP 10.0.0.100 on ravel0)
#                             |
#                           nodea 10.0.0.11 (s62-node-a) --- cbr0 10.244.1.1/24
#                                                              |-- pod-a1 10.244.1.11:8080
#                                                              '-- pod-a2 10.244.1.12:8080
#
# e2e-needs: kapi
# e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
. "$(dirname "$0")/../lib-kube.sh"

RESYNC=2
SLACK=8
FOREIGN_VIP=10.0.0.200
need_ravel
need_kube
CLIENT_IP=10.0.0.10 DIRECTOR_IP=10.0.0.2 NODE_IP=10.0.0.11 VIP=10.0.0.100
mk_switch lan
mk_ns client director nodea
mk_link client lan "$CLIENT_IP/24"
mk_link director lan "$DIRECTOR_IP/24"
mk_link nodea lan "$NODE_IP/24"
kube_link director
kube_link nodea
mk_pod nodea pod-a1 10.244.1.11
mk_pod nodea pod-a2 10.244.1.12
start_echos pod-a1:pod-a1:8080 pod-a2:pod-a2:8080

# Foreign state, made before ravel runs.
foreign_ipvs() {
	in_ns director ipvsadm -A -t "$FOREIGN_VIP:8080" -s rr
	in_ns director ipvsadm -a -t "$FOREIGN_VIP:8080" -r "$NODE_IP:8080" -g -w 7
}
foreign_ipvs
ip -n director link add foreign0 type dummy
ip -n director addr add 192.0.2.7/32 dev foreign0
ip -n director link set foreign0 up
in_ns nodea iptables -t nat -N KUBE-SERVICES
in_ns nodea iptables -t nat -A KUBE-SERVICES -d 10.96.0.1/32 -p tcp --dport 443 -j RETURN
in_ns nodea iptables -t nat -A PREROUTING -j KUBE-SERVICES
foreign_svc() { in_ns director ipvsadm -Sn | grep -F -- "$FOREIGN_VIP:8080" | sort; }
foreign_dev() { ip -n director addr show foreign0; }
kube_chains() { in_ns nodea iptables-save -t nat | grep -E '^(:KUBE-|-A KUBE-)' | sed 's/\[[0-9:]*\]//'; }
svc_before=$(foreign_svc) dev_before=$(foreign_dev) kube_before=$(kube_chains)

SEL=ravel-e2e/s62
kt - <<EOF
node s62-director $DIRECTOR_IP --label $SEL=true
node s62-node-a $NODE_IP --label $SEL=true
service s62 web --port http:80:8080
slice s62 web web-1 --port http:8080 --endpoint 10.244.1.11:s62-node-a --endpoint 10.244.1.12:s62-node-a
EOF
kube_ravel_config "$SCENARIO_DIR/ravel.yaml" "$SEL" "$VIP" -- <<EOF
node: {role: director, interface: eth0, vipInterface: ravel0}
services:
  - name: web
    vip: $VIP
    port: 80
    kubernetes: {namespace: s62, service: web, portName: http}
ipvsSysctls: {expire_nodest_conn: 1}
coordinator: {ports: [44462], failoverTimeout: 1s}
resync: ${RESYNC}s
EOF
kube_ravel director director --config "$SCENARIO_DIR/ravel.yaml" --node-name s62-director
kube_ravel nodea realserver --config "$SCENARIO_DIR/ravel.yaml" --node-name s62-node-a --role realserver --vip-interface lo
wait_weights 60 director "$VIP:80" "$NODE_IP:80=2"
DNAT_RE='-j DNAT --to-destination 10\.244\.1\.1[12]:8080'
pods_dnat() { [[ $(nat_count nodea "$DNAT_RE") == 2 ]]; }
wait_for 60 "realserver chains DNAT to both pods" pods_dnat
serves() { in_ns client "$E2E_BIN/hit" -n 4 -timeout 3s "http://$VIP/" >/dev/null; }
wait_for 30 "traffic through the VIP" serves
traffic_start client "http://$VIP/" loop

# blow DESC CHECK...: after the damage, wait one resync period + slack for CHECK; then the
# traffic through the VIP must work again.
blow() {
	local desc=$1 t0=$SECONDS out
	shift
	if wait_for $((RESYNC + SLACK)) "$desc repaired" "$@"; then
		pass "$desc repaired in $((SECONDS - t0))s (resync ${RESYNC}s + ${SLACK}s slack)"
	fi
	wait_for 20 "traffic after: $desc" serves || true
	out=$(hit client "http://$VIP/" 8 -c 2) || fail "requests after '$desc' failed: $out"
}
svc_ok() { [[ $(ipvs_weight director "$VIP:80" "$NODE_IP:80") == 2 ]]; }
sysctl_is() { [[ $(in_ns "$1" sysctl -n "$2") == "$3" ]]; }

log "1: ipvsadm -C"
in_ns director ipvsadm -C
foreign_ipvs # its owner puts it back; ravel must leave it as it is from here on
blow "ipvsadm -C (the service and its destination)" svc_ok
assert_eq "expire_nodest_conn as configured" 1 "$(in_ns director sysctl -n net.ipv4.vs.expire_nodest_conn)"

log "2: ip addr flush dev ravel0"
ip -n director addr flush dev ravel0
blow "ip addr flush dev ravel0" vip_bound director "$VIP"

log "3: ip link del ravel0"
ip -n director link del ravel0
blow "ip link del ravel0" vip_bound director "$VIP"

log "4: iptables -t nat -F RAVEL on the realserver"
in_ns nodea iptables -t nat -F RAVEL
blow "iptables -t nat -F RAVEL" pods_dnat

log "5: sysctls set back"
in_ns director sysctl -q -w net.ipv4.vs.expire_nodest_conn=0
blow "net.ipv4.vs.expire_nodest_conn=0 on the director" sysctl_is director net.ipv4.vs.expire_nodest_conn 1
in_ns nodea sysctl -q -w net.ipv4.conf.eth0.arp_ignore=0
blow "net.ipv4.conf.eth0.arp_ignore=0 on the realserver" sysctl_is nodea net.ipv4.conf.eth0.arp_ignore 1

traffic_stop loop
log "the request loop across all of it: $TRAFFIC_RESULT (failures are expected only while a blow is being repaired)"
assert_ge "requests answered through the drill" 20 "$TRAFFIC_OK"
assert_eq "foreign IPVS service untouched" "$svc_before" "$(foreign_svc)"
assert_eq "foreign dummy device untouched" "$dev_before" "$(foreign_dev)"
assert_eq "KUBE-* chains untouched" "$kube_before" "$(kube_chains)"
in_ns director ipvsadm -Ln
in_ns nodea iptables-save -t nat
