#!/usr/bin/env bash
# Weight-0 destinations under every scheduler: ravel makes each eligible node
# a destination, at weight 0 when it has no ready pods. Here, static backends
# stand in for 10 nodes with pods on 2: rs1 and rs2 at weight 1, eight more
# addresses (no host behind them) at weight 0. One service per scheduler the
# config accepts, each on its own VIP; 50 client addresses (secondary
# addresses of the client's eth0, bound in turn by hit -source) make 200
# connections to the sh, dh and mh services and 50 to each other one: every
# one must be answered. The kernel's sh and dh give every destination, weight
# 0 or not, a hash bucket, and a client hashed to a weight-0 one gets no
# destination (ICMP port unreachable) unless the scheduler falls back.
#
# ravel sets sh-fallback and mh-fallback on every sh and mh service, and
# never programs a weight-0 destination under sh and dh (docs/config.md).
#
# Then a drain: rs2 leaves the sh, mh and dh services (reload, SIGHUP). Under
# sh and mh ravel sets it to weight 0 and keeps it for drainTimeout (mh, too,
# refuses without its fallback here: a drained destination keeps its buckets);
# under dh it is deleted at once. The same 200 connections must all be
# answered, by rs1.
. "$(dirname "$0")/../lib.sh"

SCHEDS=(rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh)
topo_dr
rs_serve "$VIP" 80 rs1 rs2
# VIP of scheduler i: 10.0.0.(101+i), held by rs1 and rs2 too (direct routing).
declare -A SCHED_VIP
for i in "${!SCHEDS[@]}"; do SCHED_VIP[${SCHEDS[i]}]=10.0.0.$((101 + i)); done
vip_of() { echo "${SCHED_VIP[$1]}"; }
pool=$VIP batch_rs=
for s in "${SCHEDS[@]}"; do
	pool+=", $(vip_of "$s")"
	batch_rs+="addr add $(vip_of "$s")/32 dev lo"$'\n'
done
ip -n rs1 -batch - <<<"$batch_rs"
ip -n rs2 -batch - <<<"$batch_rs"
# 50 client addresses 10.0.0.150-199 (one 'ip -batch': process starts are slow).
batch_cl=
for i in $(seq 150 199); do batch_cl+="addr add 10.0.0.$i/24 dev eth0"$'\n'; done
ip -n client -batch - <<<"$batch_cl"
SOURCES=10.0.0.150-10.0.0.199
ZERO=(10.0.0.21 10.0.0.22 10.0.0.23 10.0.0.24 10.0.0.25 10.0.0.26 10.0.0.27 10.0.0.28)

# write_cfg FILE DRAINED: DRAINED lists the schedulers whose service leaves rs2 out.
write_cfg() {
	local file=$1 drained=" $2 " s a svcs=
	for s in "${SCHEDS[@]}"; do
		svcs+="  - {name: $s, vip: $(vip_of "$s"), port: 80, ipvs: {scheduler: $s}, backends: ["
		svcs+="{address: $RS1_IP, weight: 1}"
		[[ $drained == *" $s "* ]] || svcs+=", {address: $RS2_IP, weight: 1}"
		for a in "${ZERO[@]}"; do svcs+=", {address: $a, weight: 0}"; done
		svcs+="]}"$'\n'
	done
	ravel_config "$file" <<EOF
apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director, role: director, interface: eth0, vipInterface: ravel0}
vipPool: [$pool]
defaults:
  ipvs: {forwarding: dr}
  drainTimeout: 10m
services:
$svcs
resync: 2s
coordinator: {ports: [44428]}
metrics: {listen: ""}
EOF
}

cfg=$SCENARIO_DIR/ravel.yaml
write_cfg "$cfg" ""
ravel_start director ravel "$cfg"
# ndests SCHED: 10 destinations, or 2 where ravel leaves weight 0 out (sh,
# dh; E2E_S28_ALL_DESTS=1 for a ravel that programs all 10 everywhere).
ndests() { if [[ $1 == sh || $1 == dh ]] && [[ ${E2E_S28_ALL_DESTS:-} != 1 ]]; then echo 2; else echo 10; fi; }
all_programmed() {
	local s
	for s in "${SCHEDS[@]}"; do ipvs_has director "$(vip_of "$s"):80" "$(ndests "$s")" || return 1; done
}
wait_for 90 "ravel programs 13 services (10 destinations each, sh and dh 2)" all_programmed
in_ns director ipvsadm -Ln

# clients SCHED N PHASE: N connections to SCHED's VIP from the 50 client
# addresses; one check that every one was answered, one summary line.
clients() {
	local s=$1 n=$2 phase=$3 out failed srcs c=4
	# ovf sends a destination no more active connections than its weight (1).
	[[ $s != ovf ]] || c=1
	out=$(in_ns client "$E2E_BIN/hit" -v -n "$n" -c "$c" -timeout 3s -source "$SOURCES" \
		"http://$(vip_of "$s")/" 2>>"$SCENARIO_DIR/hit-$phase-$s.err") || true
	failed=$(awk '$1 == "failed" { print $2 }' <<<"$out")
	srcs=$(awk '$1 == "failed-sources" { print $2 }' <<<"$out")
	printf '%-6s %-5s %3d connections: rs1 %3d rs2 %3d failed %3s, client addresses refused %2s of 50\n' \
		"$phase" "$s" "$n" "$(hit_count "$out" rs1)" "$(hit_count "$out" rs2)" "${failed:-?}" "${srcs:-?}" |
		tee -a "$SCENARIO_DIR/summary.txt"
	assert_eq "$phase $s: connections refused of $n" 0 "${failed:-?}"
	LAST_OUT=$out
}

# Each phase takes the client's ports from a range of its own. Under direct routing the director
# sees only the client's half of a connection: a closed one stays in its table (FIN_WAIT) for
# minutes, and a new connection from the same address AND port reuses that entry and its
# realserver, weight 0 or not (conn_reuse_mode reschedules only TIME_WAIT; README, "Drains and
# reused client ports"). With one shared range a drain-phase connection can land on a "before"
# entry of rs2: a clean-clone run here saw it once in four runs (1 of 200 under sh).
ns_sysctl client net.ipv4.ip_local_port_range="20000 29999"
log "--- 1. 2 destinations at weight 1, 8 at weight 0"
for s in "${SCHEDS[@]}"; do
	case $s in sh | dh | mh) clients "$s" 200 before ;; *) clients "$s" 50 before ;; esac
done

log "--- 2. rs2 drains out of sh, mh and dh"
write_cfg "$cfg" "sh mh dh"
kill -HUP "$RAVEL_PID"
rs2_left() { # SCHED: rs2 at weight 0 (draining) or gone
	local w
	w=$(ipvs_dest director "$(vip_of "$1"):80" "$RS2_IP:80" | awk '{ print $2 }')
	[[ $w == 0 || -z $w ]]
}
rs2_left_all() { rs2_left sh && rs2_left mh && rs2_left dh; }
wait_for 30 "rs2 drained from sh, mh and dh" rs2_left_all
in_ns director ipvsadm -Ln -t "$(vip_of sh):80"
ns_sysctl client net.ipv4.ip_local_port_range="40000 49999"
for s in sh mh dh; do
	clients "$s" 200 drain
	assert_eq "drain $s: rs2 gets no new connection" 0 "$(hit_count "$LAST_OUT" rs2)"
done
# sh and mh keep the draining destination (its connections keep it) at weight 0,
# with their fallback flag; dh, which has none, had it deleted at once.
for s in sh mh; do
	assert_eq "drain $s: rs2 kept at weight 0 while draining" "Route 0" "$(ipvs_dest director "$(vip_of "$s"):80" "$RS2_IP:80")"
done
assert_eq "drain dh: rs2 deleted at once" "" "$(ipvs_dest director "$(vip_of dh):80" "$RS2_IP:80")"
grep -F "delete destination $RS2_IP:80 from tcp $(vip_of dh):80" "$SCENARIO_DIR/ravel.log" || true

cat "$SCENARIO_DIR/summary.txt"
ravel_stop "$RAVEL_PID"
