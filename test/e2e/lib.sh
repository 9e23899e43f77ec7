# shellcheck shell=bash
# Helpers for e2e scenarios (test/e2e/scenarios/*.sh). Sourced, never run:
#
#   . "$(dirname "$0")/../lib.sh"
#
# Scenarios run as root inside the QEMU guest (see test/e2e/run.sh), whose
# kernel has IPVS, dummy and ipip. Every scenario builds its own network
# namespaces; lib.sh tears them (and every process started through it) down
# when the scenario exits, and the suite double-checks between scenarios.
#
# Error handling: 'set -eEuo pipefail' with an ERR trap, so a failing setup
# command aborts the scenario with its line number. Assertions (assert_*,
# fail) do NOT abort: they record a failure and return 0, so one run reports
# every broken expectation; the scenario then exits 1. Use 'die' to abort.
#
# Functions (NS = a namespace made by mk_ns/mk_switch):
#   log MSG...                      timestamped line on stdout
#   die MSG...                      record a failure and abort the scenario
#   pass MSG... / fail MSG...       record one passed / failed check
#   assert_eq DESC WANT GOT         GOT = WANT (string compare)
#   assert_ge DESC MIN GOT          GOT >= MIN (integers)
#   assert_ratio DESC A B WANT TOL  |A/B - WANT| <= TOL (B > 0)
#   wait_for SECS DESC CMD...       retry CMD until it succeeds; fail (return 1) after SECS
#   mk_ns NS...                     new namespace(s), lo up
#   mk_switch SW                    a namespace holding bridge br0: an L2 segment
#   mk_link NS SW ADDR/PREFIX [IF]  veth IF (default eth0) in NS, plugged into SW's br0
#   in_ns NS CMD...                 run CMD in NS ('ip netns exec')
#   ns_sysctl NS KEY=VAL...         set sysctls in NS
#   director_vip NS VIP [DEV]       VIP/32 on a dummy device DEV (default vip0) in NS
#   rs_vip NS VIP [DEV]             VIP/32 on DEV (default lo) + arp_ignore=1/arp_announce=2
#   bg NS NAME CMD...               run CMD in NS in the background, output in $SCENARIO_DIR/NAME.log
#   start_echo NS NAME [PORT]       echoserver answering NAME on :PORT (default 80); waits until up
#   hit NS URL N [FLAGS...]         N requests, fresh connection each; prints "name count" lines
#                                   and "failed N"; non-zero status if any failed
#   hit_count OUTPUT NAME           the count for NAME in hit's OUTPUT (0 if absent)
#   need_ravel                      abort clearly unless $RAVEL_BIN is an executable
#   topo_dr                         client/director/rs1/rs2 on one L2 segment 10.0.0.0/24
#   topo_ipip                       client+director / router / rs1+rs2 on two subnets
#   topo_nat                        client / two-legged director as the gateway / rs1+rs2
#
# Variables: E2E_REPO (repo root), E2E_BIN (built tools), E2E_OUT (host-visible
# results dir), SCENARIO (name), SCENARIO_DIR (its log dir, host-visible),
# RAVEL_BIN (the ravel binary, may not exist). The topo_* functions set the
# addresses they made: CLIENT_IP DIRECTOR_IP RS1_IP RS2_IP VIP (+ ROUTER_IP,
# DIRECTOR_RS_IP, RS_GW where relevant) and print them.

set -eEuo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_REPO=${E2E_REPO:-$(cd "$E2E_DIR/../.." && pwd)}
E2E_BIN=${E2E_BIN:-$E2E_DIR/.bin}
E2E_OUT=${E2E_OUT:-/tmp/e2e-out}
SCENARIO=${SCENARIO:-$(basename "${0%.sh}")}
SCENARIO_DIR=${SCENARIO_DIR:-$E2E_OUT/scenarios/$SCENARIO}
RAVEL_BIN=${RAVEL_BIN:-$E2E_REPO/bin/ravel}
mkdir -p "$SCENARIO_DIR"

if [[ ${E2E_IN_GUEST:-} != 1 && ${E2E_ALLOW_HOST:-} != 1 ]]; then
	echo "lib.sh: scenarios run inside the e2e guest: use 'bash test/e2e/run.sh'" \
		"(E2E_ALLOW_HOST=1 to run on this kernel anyway)" >&2
	exit 2
fi

_E2E_T0=$SECONDS
_E2E_PASSED=0
_E2E_FAILED=0
_E2E_NS=()   # namespaces to delete on exit
_E2E_PIDS=() # background processes to stop on exit

log() { printf '[%s +%ss] %s\n' "$SCENARIO" "$((SECONDS - _E2E_T0))" "$*"; }

pass() {
	_E2E_PASSED=$((_E2E_PASSED + 1))
	printf '[%s]   ok: %s\n' "$SCENARIO" "$*"
}

fail() {
	_E2E_FAILED=$((_E2E_FAILED + 1))
	printf '[%s]   FAIL: %s\n' "$SCENARIO" "$*"
	# Also kept apart: test/e2e/run.sh repeats them under the totals, where a CI log's tail
	# shows them.
	[[ -d ${SCENARIO_DIR:-} ]] && printf '%s\n' "$*" >>"$SCENARIO_DIR/failures"
	return 0
}

die() {
	fail "$*"
	exit 1
}

# An unexpected command failure outside an assertion: say where, then the
# EXIT trap cleans up and the scenario fails.
_e2e_on_err() {
	local rc=$? line=$1 cmd=$2
	fail "command failed (exit $rc) at ${BASH_SOURCE[1]:-?}:$line: $cmd"
	exit 1
}
trap '_e2e_on_err "$LINENO" "$BASH_COMMAND"' ERR

_e2e_cleanup() {
	local rc=$? pid ns
	trap - ERR
	set +e
	for pid in "${_E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for ns in "${_E2E_NS[@]}"; do
		# A namespace only goes away with its last process.
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns delete "$ns" 2>/dev/null
	done
	if ((_E2E_FAILED > 0 && rc == 0)); then rc=1; fi
	printf '[%s] %d checks passed, %d failed, exit %d, %ss\n' \
		"$SCENARIO" "$_E2E_PASSED" "$_E2E_FAILED" "$rc" "$((SECONDS - _E2E_T0))"
	exit "$rc"
}
trap _e2e_cleanup EXIT
# The suite's per-scenario timeout sends SIGTERM: say so, then clean up.
trap 'fail "terminated (scenario timeout, E2E_SCENARIO_TIMEOUT?)"; exit 143' TERM

# --- assertions ---------------------------------------------------------------

assert_eq() {
	local desc=$1 want=$2 got=$3
	if [[ $got == "$want" ]]; then pass "$desc ($got)"; else fail "$desc: want '$want', got '$got'"; fi
}

assert_ge() {
	local desc=$1 min=$2 got=$3
	if [[ $got =~ ^-?[0-9]+$ ]] && ((got >= min)); then
		pass "$desc ($got >= $min)"
	else
		fail "$desc: want >= $min, got '$got'"
	fi
}

# assert_ratio DESC A B WANT TOL: passes when |A/B - WANT| <= TOL.
assert_ratio() {
	local desc=$1 a=$2 b=$3 want=$4 tol=$5 r
	if ! [[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] || ((b == 0)); then
		fail "$desc: cannot take the ratio $a/$b"
		return 0
	fi
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
	if awk -v r="$r" -v w="$want" -v t="$tol" 'BEGIN { d = r - w; if (d < 0) d = -d; exit !(d <= t) }'; then
		pass "$desc ($a/$b = $r, want $want±$tol)"
	else
		fail "$desc: $a/$b = $r, want $want±$tol"
	fi
}

# wait_for SECS DESC CMD...: run CMD every 0.5 s until it succeeds. On
# timeout record a failure (naming DESC) and return 1, which aborts the
# scenario under 'set -e' unless the caller tests it ('wait_for ... || ...').
wait_for() {
	local secs=$1 desc=$2
	shift 2
	local deadline=$((SECONDS + secs))
	while true; do
		if "$@" >/dev/null 2>&1; then return 0; fi
		if ((SECONDS >= deadline)); then
			fail "timed out after ${secs}s waiting for: $desc"
			return 1
		fi
		sleep 0.5
	done
}

# --- namespaces and links ------------------------------------------------------

# mk_ns NS...: a fresh network namespace with lo up, deleted on exit.
mk_ns() {
	local ns
	for ns in "$@"; do
		# A leftover of an aborted earlier scenario would make 'add' fail.
		ip netns delete "$ns" 2>/dev/null || true
		ip netns add "$ns"
		_E2E_NS+=("$ns")
		ip -n "$ns" link set lo up
	done
}

in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# ns_sysctl NS KEY=VAL...: sysctls are per namespace for net.* keys; one
# process for all of them (each process start is slow under emulation).
ns_sysctl() {
	local ns=$1
	shift
	in_ns "$ns" sysctl -q -w "$@"
}

# mk_switch SW: a namespace holding a bridge br0, standing for one L2 segment.
# STP off and forward_delay 0: ports forward at once instead of spending 15 s
# in listening/learning.
mk_switch() {
	local sw=$1
	mk_ns "$sw"
	ip -n "$sw" link add br0 type bridge stp_state 0 forward_delay 0
	ip -n "$sw" link set br0 up
}

# mk_link NS SW ADDR/PREFIX [IF]: a veth pair, IF (default eth0) in NS with
# ADDR/PREFIX, its peer "NS-IF" (cut to 15 chars, the limit for link names)
# plugged into SW's br0. Both ends are up when this returns.
mk_link() {
	local ns=$1 sw=$2 addr=$3 ifname=${4:-eth0}
	local peer="${ns}-${ifname}"
	peer=${peer:0:15}
	ip link add "$ifname" netns "$ns" type veth peer name "$peer" netns "$sw"
	ip -n "$sw" link set "$peer" master br0 up
	ip -n "$ns" addr add "$addr" dev "$ifname"
	ip -n "$ns" link set "$ifname" up
}

# director_vip NS VIP [DEV]: VIP/32 on a dummy device (default vip0) in NS,
# the way a director holds its virtual addresses: local, so IPVS sees packets
# to it in INPUT, and answered for in ARP (arp_ignore=0, the default).
director_vip() {
	local ns=$1 vip=$2 dev=${3:-vip0}
	ip -n "$ns" link show "$dev" >/dev/null 2>&1 || ip -n "$ns" link add "$dev" type dummy
	ip -n "$ns" addr add "$vip/32" dev "$dev"
	ip -n "$ns" link set "$dev" up
}

# rs_vip NS VIP [DEV]: a realserver accepting traffic to VIP (DR, IPIP):
# VIP/32 on DEV (default lo) so the kernel takes packets to it as local,
# with ARP suppressed so the realserver never answers "who has VIP" on the
# shared segment (that would steal the VIP from the director):
#   arp_ignore=1   answer ARP only for addresses on the receiving interface
#   arp_announce=2 never use the VIP as source of our own ARP requests
# (set on 'all' and eth0: the kernel takes the max of the two).
rs_vip() {
	local ns=$1 vip=$2 dev=${3:-lo}
	ns_sysctl "$ns" net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
		net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
	ip -n "$ns" addr add "$vip/32" dev "$dev"
	ip -n "$ns" link set "$dev" up
}

# --- processes --------------------------------------------------------------------

# bg NS NAME CMD...: start CMD in NS in the background, stdout+stderr to
# $SCENARIO_DIR/NAME.log (kept on the host under test/e2e/.out), stopped on
# exit. Sets BG_PID.
bg() {
	local ns=$1 name=$2
	shift 2
	ip netns exec "$ns" "$@" >"$SCENARIO_DIR/$name.log" 2>&1 &
	BG_PID=$!
	_E2E_PIDS+=("$BG_PID")
}

# start_echo NS NAME [PORT]: test/e2e/tools/echoserver in NS on all addresses
# (so it also answers on a VIP held on lo), answering NAME; returns once it
# answers (process start-up alone takes a while under emulation).
start_echo() {
	local ns=$1 name=$2 port=${3:-80}
	[[ -x $E2E_BIN/echoserver ]] || die "no $E2E_BIN/echoserver: run through test/e2e/run.sh, which builds it"
	bg "$ns" "echo-$name" "$E2E_BIN/echoserver" -name "$name" -addr ":$port"
	wait_for 30 "echoserver $name in $ns on :$port" \
		in_ns "$ns" "$E2E_BIN/hit" -n 1 -timeout 2s "http://127.0.0.1:$port/healthz"
}

# hit NS URL N [FLAGS...]: test/e2e/tools/hit from NS. Typical use:
#   out=$(hit client "http://$VIP/" 80) || fail "requests failed: $out"
hit() {
	local ns=$1 url=$2 n=$3
	shift 3
	# -v: each failed request's error goes to stderr, i.e. into the log.
	in_ns "$ns" "$E2E_BIN/hit" -v -n "$n" "$@" "$url"
}

# hit_count OUTPUT NAME
hit_count() {
	awk -v n="$2" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }' <<<"$1"
}

need_ravel() {
	[[ -x $RAVEL_BIN ]] || die "ravel binary not found at RAVEL_BIN=$RAVEL_BIN (build it first, e.g. 'make build', or set RAVEL_BIN)"
}

# --- topologies ---------------------------------------------------------------------
# Namespaces: client, director, rs1, rs2 (+ router), and the switches lan /
# net1 / net2. Nothing IPVS-specific and no VIPs are configured: scenarios
# add those (director_vip, rs_vip, ipvsadm or ravel) since that is what they
# test. Addresses are fixed so logs read the same in every run.

# topo_dr: one L2 segment 10.0.0.0/24 (switch 'lan'):
#   client 10.0.0.10   director 10.0.0.2   rs1 10.0.0.11   rs2 10.0.0.12
#   VIP 10.0.0.100 (same subnet: the client ARPs for it, the director answers)
# Direct routing: the director rewrites only the destination MAC, the
# realservers answer the client directly.
topo_dr() {
	CLIENT_IP=10.0.0.10 DIRECTOR_IP=10.0.0.2 RS1_IP=10.0.0.11 RS2_IP=10.0.0.12 VIP=10.0.0.100
	mk_switch lan
	mk_ns client director rs1 rs2
	mk_link client lan "$CLIENT_IP/24"
	mk_link director lan "$DIRECTOR_IP/24"
	mk_link rs1 lan "$RS1_IP/24"
	mk_link rs2 lan "$RS2_IP/24"
	log "topo_dr: client=$CLIENT_IP director=$DIRECTOR_IP rs1=$RS1_IP rs2=$RS2_IP vip=$VIP (lan 10.0.0.0/24)"
}

# topo_ipip: two subnets joined by a router:
#   net1 10.0.1.0/24: client 10.0.1.10, director 10.0.1.2, router 10.0.1.1
#   net2 10.0.2.0/24: router 10.0.2.1, rs1 10.0.2.11, rs2 10.0.2.12
#   VIP 10.0.1.100
# The director reaches the realservers only through the router, so it must
# encapsulate (IPVS -i): the realservers decapsulate on tunl0 (present in
# every namespace once ipip is loaded) and answer the client directly via the
# router, with the VIP as source.
# rp_filter=0 on the realservers: the decapsulated packet comes in on tunl0
# from the client's address, whose route points out of eth0, so strict
# reverse-path filtering would drop it. And on the router: the replies come
# from the VIP, a net1 address, but arrive on its net2 side.
# (The kernel uses max(all, <dev>) for rp_filter: zero both.)
topo_ipip() {
	CLIENT_IP=10.0.1.10 DIRECTOR_IP=10.0.1.2 ROUTER_IP=10.0.1.1 RS_GW=10.0.2.1
	RS1_IP=10.0.2.11 RS2_IP=10.0.2.12 VIP=10.0.1.100
	mk_switch net1
	mk_switch net2
	mk_ns client director router rs1 rs2
	mk_link client net1 "$CLIENT_IP/24"
	mk_link director net1 "$DIRECTOR_IP/24"
	mk_link router net1 "$ROUTER_IP/24" eth0
	mk_link router net2 "$RS_GW/24" eth1
	mk_link rs1 net2 "$RS1_IP/24"
	mk_link rs2 net2 "$RS2_IP/24"
	ns_sysctl router net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0
	ip -n client route add default via "$ROUTER_IP"
	ip -n director route add default via "$ROUTER_IP"
	local rs
	for rs in rs1 rs2; do
		ip -n "$rs" route add default via "$RS_GW"
		ip -n "$rs" link set tunl0 up
		ns_sysctl "$rs" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
			net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.tunl0.rp_filter=0
	done
	log "topo_ipip: client=$CLIENT_IP director=$DIRECTOR_IP router=$ROUTER_IP/$RS_GW rs1=$RS1_IP rs2=$RS2_IP vip=$VIP (net1 10.0.1.0/24, net2 10.0.2.0/24)"
}

# topo_nat: the director is the realservers' gateway:
#   net1 10.0.1.0/24: client 10.0.1.10, director eth0 10.0.1.2
#   net2 10.0.2.0/24: director eth1 10.0.2.1, rs1 10.0.2.11, rs2 10.0.2.12
#   VIP 10.0.1.100
# With NAT (IPVS -m) the realservers see the client's address and answer it
# through their default route, the director, which rewrites the source back
# to the VIP; replies that bypassed the director would be dropped by the
# client. IPVS handles the replies in FORWARD, hence ip_forward=1.
topo_nat() {
	CLIENT_IP=10.0.1.10 DIRECTOR_IP=10.0.1.2 DIRECTOR_RS_IP=10.0.2.1 RS_GW=10.0.2.1
	RS1_IP=10.0.2.11 RS2_IP=10.0.2.12 VIP=10.0.1.100
	mk_switch net1
	mk_switch net2
	mk_ns client director rs1 rs2
	mk_link client net1 "$CLIENT_IP/24"
	mk_link director net1 "$DIRECTOR_IP/24" eth0
	mk_link director net2 "$DIRECTOR_RS_IP/24" eth1
	mk_link rs1 net2 "$RS1_IP/24"
	mk_link rs2 net2 "$RS2_IP/24"
	ns_sysctl director net.ipv4.ip_forward=1
	ip -n rs1 route add default via "$RS_GW"
	ip -n rs2 route add default via "$RS_GW"
	log "topo_nat: client=$CLIENT_IP director=$DIRECTOR_IP/$DIRECTOR_RS_IP rs1=$RS1_IP rs2=$RS2_IP vip=$VIP (net1 10.0.1.0/24, net2 10.0.2.0/24)"
}

# --- ravel director helpers (scenarios 2x-director-*) -------------------------------
# A director scenario writes a config, starts 'ravel run' in the director
# namespace, waits for the kernel to show what it asked for, and drives real
# traffic through the VIP:
#
#   ravel_config "$SCENARIO_DIR/ravel.yaml" <<EOF ... EOF   # stdin to FILE, validated
#   ravel_start director ravel "$SCENARIO_DIR/ravel.yaml"   # sets RAVEL_PID
#   wait_for 60 "web programmed" ipvs_has director "$VIP:80" 2
#   traffic_start client "http://$VIP/" loop; ...; traffic_stop loop
#   ravel_stop "$RAVEL_PID"                                  # SIGTERM, waits, checks exit 0
#
# Functions:
#   ravel_config FILE                  write stdin to FILE; 'ravel config validate' it (aborts if invalid)
#   ravel_start NS NAME CONFIG [ARGS...]  'ravel run --config CONFIG' in NS, log $SCENARIO_DIR/NAME.log; sets RAVEL_PID
#   ravel_stop PID [SECS]              SIGTERM, wait up to SECS (default 20) for exit; a check that it exited 0
#   ravel_plan NS CONFIG               'ravel plan --config CONFIG --against kernel' in NS (stdout)
#   ipvs_has NS VIP:PORT [NDESTS]      true when IPVS in NS has tcp VIP:PORT (with NDESTS destinations)
#   ipvs_dest NS VIP:PORT RS:PORT      "Forward Weight" of that destination in 'ipvsadm -Ln' ("" if absent)
#   ipvs_dest_thresholds NS VIP:PORT RS:PORT   "Upper Lower" from 'ipvsadm -Ln --thresholds'
#   ipvs_dest_conns NS VIP:PORT RS:PORT        the destination's total connections ('ipvsadm -Ln --stats')
#   ipvs_save NS                       'ipvsadm -Sn' sorted (stable text to compare)
#   vip_bound NS VIP [DEV]             true when VIP/32 is on DEV (default ravel0) in NS
#   metric NS ADDR NAME[{LABELS}]      the sum of a Prometheus metric's samples from http://ADDR/metrics in NS
#   traffic_start NS URL NAME          background loop of requests (hit -n 5 each) until traffic_stop
#   traffic_stop NAME                  stop it; sets TRAFFIC_RESULT TRAFFIC_OK TRAFFIC_FAILED
#   traffic_ok_between NAME T0 T1      requests answered by rounds run entirely within epoch T0..T1
#   longconn_start NS HOST PORT NAME   open one keep-alive HTTP connection, first request on it
#   longconn_finish NAME               second request on the same connection; sets LONGCONN_RESULT
#   rs_serve VIP PORT NS...            echoservers named NS on :PORT, started together (+ rs_vip unless VIP is "")
#   director_config FILE PORT [KEY=VALUE...]  the static director config of scenarios 20-26 (service
#                                      web, $VIP:80 over $RS1_IP and $RS2_IP, coordinator on PORT) to FILE, validated
#   director_up NAME CONFIG [ARGS...]  ravel_start in the director namespace, then wait for web in IPVS
#                                      ($VIP:80, 2 destinations) and $VIP on ravel0
#
# The prologue of a static director scenario (20-26) then reads:
#
#   topo_dr
#   rs_serve "$VIP" 80 rs1 rs2
#   cfg=$SCENARIO_DIR/ravel.yaml
#   director_config "$cfg" 44420
#   director_up ravel "$cfg"

ravel_config() {
	local file=$1
	cat >"$file"
	"$RAVEL_BIN" config validate "$file" >/dev/null 2>"$file.validate" ||
		die "ravel config validate $file: $(cat "$file.validate")"
}

ravel_start() {
	local ns=$1 name=$2 cfg=$3
	shift 3
	need_ravel
	bg "$ns" "$name" "$RAVEL_BIN" run --config "$cfg" "$@"
	RAVEL_PID=$BG_PID
	log "ravel run started in $ns (pid $RAVEL_PID, log $name.log, config $(basename "$cfg"))"
}

# ravel_stop PID [SECS]: ravel leaves the kernel as it is on SIGTERM and
# exits 0; a process that needs SIGKILL or exits otherwise is a failure.
ravel_stop() {
	local pid=$1 secs=${2:-20} rc=0 deadline
	kill -TERM "$pid" 2>/dev/null || { fail "ravel (pid $pid) was not running when asked to stop"; return 0; }
	deadline=$((SECONDS + secs))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null || true
		fail "ravel (pid $pid) did not exit within ${secs}s of SIGTERM (killed)"
		return 0
	fi
	wait "$pid" 2>/dev/null || rc=$?
	assert_eq "ravel (pid $pid) exit status after SIGTERM" 0 "$rc"
}

ravel_plan() {
	in_ns "$1" "$RAVEL_BIN" plan --config "$2" --against kernel
}

# ipvs_has NS VIP:PORT [NDESTS]
ipvs_has() {
	local ns=$1 svc=$2 n=${3:-}
	in_ns "$ns" ipvsadm -Ln -t "$svc" >/dev/null 2>&1 || return 1
	[[ -z $n ]] || [[ $(in_ns "$ns" ipvsadm -Ln -t "$svc" | grep -c -- '->.*:[0-9]') -eq $((n)) ]]
}

# The 'ipvsadm -Ln -t SVC' lines of destinations read "-> ADDR:PORT FIELDS...".
_ipvs_dest_fields() {
	local ns=$1 svc=$2 rs=$3
	shift 3
	in_ns "$ns" ipvsadm -Ln -t "$svc" "$@" 2>/dev/null | awk -v rs="$rs" '$1 == "->" && $2 == rs { $1 = ""; $2 = ""; print; exit }'
}

ipvs_dest() {
	_ipvs_dest_fields "$1" "$2" "$3" | awk '{ print $1, $2 }'
}

ipvs_dest_thresholds() {
	_ipvs_dest_fields "$1" "$2" "$3" --thresholds | awk '{ print $1, $2 }'
}

ipvs_dest_conns() {
	_ipvs_dest_fields "$1" "$2" "$3" --stats --exact | awk '{ print $1 }'
}

ipvs_save() {
	in_ns "$1" ipvsadm -Sn | sort
}

vip_bound() {
	local ns=$1 vip=$2 dev=${3:-ravel0}
	ip -n "$ns" -4 -o addr show dev "$dev" 2>/dev/null | grep -q " inet $vip/32 "
}

# metric NS ADDR NAME: e.g. metric director 127.0.0.1:10234 'ravel_plan_ops_total'
# or 'ravel_reconcile_total{kind="full",result="ok"}'. Prints the sum of the
# matching samples (0 when none); fails when the endpoint does not answer.
metric() {
	local ns=$1 addr=$2 name=$3 body
	body=$(in_ns "$ns" curl -fsS --max-time 5 "http://$addr/metrics") || return 1
	awk -v want="$name" '
		/^#/ { next }
		{
			key = $1
			base = key; sub(/\{.*/, "", base)
			if (index(want, "{") ? key == want : base == want) sum += $2
		}
		END { printf "%d\n", sum }' <<<"$body"
}

# dsh_start NS DIR: a long-lived bash in NS for dsh (every process start costs about a second
# under emulation, so a scenario that reads often keeps one shell open); DIR holds its output.
# dsh CMD: run CMD in that shell; its status is CMD's, its stdout and stderr are in DSH_OUT.
# Call dsh in the scenario's shell, never in $(...): the coprocess belongs to this shell.
dsh_start() {
	_DSH_DIR=$2
	coproc DSH { exec ip netns exec "$1" bash --noprofile --norc 2>&1; }
	_E2E_PIDS+=("$DSH_PID")
}
dsh() {
	local line
	printf '{ %s\n} >%s 2>&1; echo "@@dsh $?"\n' "$1" "$_DSH_DIR/dsh.out" >&"${DSH[1]}"
	IFS= read -r line <&"${DSH[0]}" || die "the shell of dsh is gone"
	DSH_OUT=
	IFS= read -r -d '' DSH_OUT <"$_DSH_DIR/dsh.out" || true
	[[ $line == "@@dsh "* ]] || die "dsh: unexpected line: $line"
	return "${line#@@dsh }"
}

# traffic_start NS URL NAME: requests in a loop from NS until traffic_stop
# NAME, in rounds of 'hit -n 5'. Failures are counted, never fatal; each
# failed request's error is in $SCENARIO_DIR/NAME.err, each round in
# NAME.rounds as "START END ok N failed N" (epoch seconds).
traffic_start() {
	local ns=$1 url=$2 name=$3
	local stop=$SCENARIO_DIR/$name.stop res=$SCENARIO_DIR/$name.result
	rm -f "$stop" "$res" "$SCENARIO_DIR/$name.rounds"
	(
		trap - ERR
		set +e
		ok=0 bad=0 rounds=0
		while [[ ! -e $stop ]]; do
			t0=$EPOCHSECONDS
			out=$(in_ns "$ns" "$E2E_BIN/hit" -v -n 5 -timeout 3s "$url" 2>>"$SCENARIO_DIR/$name.err")
			n_ok=$(awk '$1 != "failed" { s += $2 } END { print s + 0 }' <<<"$out")
			n_bad=$(awk '$1 == "failed" { print $2 }' <<<"$out")
			# A hit that could not even run counts its 5 requests as failed.
			[[ -n $n_bad ]] || n_bad=$((5 - n_ok))
			ok=$((ok + n_ok)) bad=$((bad + n_bad)) rounds=$((rounds + 1))
			echo "$t0 $EPOCHSECONDS ok $n_ok failed $n_bad" >>"$SCENARIO_DIR/$name.rounds"
		done
		echo "ok $ok failed $bad rounds $rounds" >"$res"
	) &
	_E2E_PIDS+=("$!")
	eval "_TRAFFIC_PID_$name=$!"
}

# traffic_stop NAME: ends the loop after its current round. Sets
# TRAFFIC_RESULT ("ok N failed N rounds N"), TRAFFIC_OK, TRAFFIC_FAILED.
# Call it directly, not in $(...): it must wait for its own child.
traffic_stop() {
	local name=$1 pidvar="_TRAFFIC_PID_$1"
	touch "$SCENARIO_DIR/$name.stop"
	wait "${!pidvar}" 2>/dev/null || true
	TRAFFIC_RESULT=$(cat "$SCENARIO_DIR/$name.result" 2>/dev/null || echo "ok 0 failed -1 rounds 0")
	# shellcheck disable=SC2034 # read by the scenarios
	read -r _ TRAFFIC_OK _ TRAFFIC_FAILED _ _ <<<"$TRAFFIC_RESULT"
	log "request loop $name: $TRAFFIC_RESULT"
}

# traffic_ok_between NAME T0 T1: requests answered by the rounds of loop
# NAME that ran entirely between epoch seconds T0 and T1.
traffic_ok_between() {
	awk -v a="$2" -v b="$3" '$1 >= a && $2 <= b { s += $4 } END { print s + 0 }' "$SCENARIO_DIR/$1.rounds"
}

# longconn_start NS HOST PORT NAME: one TCP connection from NS to HOST:PORT,
# kept open (HTTP keep-alive to an echoserver) from now until longconn_finish
# NAME, with one request at each end; a long-lived connection that must
# survive what the scenario does in between.
# longconn_finish NAME: sends the second request; sets LONGCONN_RESULT to
# the two answers ("rs1 rs1"), or what went wrong. Fails (status 1) unless
# both came back. Call it directly, not in $(...).
longconn_start() {
	local ns=$1 host=$2 port=$3 name=$4
	local go=$SCENARIO_DIR/$name.go out=$SCENARIO_DIR/$name.out
	rm -f "$go" "$out"
	bg "$ns" "$name" bash -c '
		go=$1 out=$2
		ask() { # one request on fd 3; prints the body line
			local line
			printf "GET / HTTP/1.1\r\nHost: e2e\r\n\r\n" >&3 || return 1
			while IFS= read -r -t 20 line <&3; do [[ $line == $'"'"'\r'"'"' ]] && break; done || return 1
			IFS= read -r -t 20 line <&3 || return 1
			printf "%s\n" "$line"
		}
		exec 3<>"/dev/tcp/$3/$4" || { echo "connect failed" >"$out"; exit 1; }
		first=$(ask) || { echo "first request failed" >"$out"; exit 1; }
		echo "$first" >"$out.first"
		while [[ ! -e $go ]]; do sleep 0.2; done
		second=$(ask) || second="(second request failed)"
		echo "$first $second" >"$out"
	' longconn "$go" "$out" "$host" "$port"
	eval "_LONGCONN_PID_$name=$BG_PID"
	wait_for 30 "long-lived connection $name to $host:$port" test -s "$out.first"
}

longconn_finish() {
	local name=$1 pidvar="_LONGCONN_PID_$1"
	touch "$SCENARIO_DIR/$name.go"
	wait "${!pidvar}" 2>/dev/null || true
	LONGCONN_RESULT=$(cat "$SCENARIO_DIR/$name.out" 2>/dev/null || echo "(no result)")
	[[ $LONGCONN_RESULT =~ ^[a-z0-9]+\ [a-z0-9]+$ ]]
}

# rs_serve VIP PORT NS...: realservers NS... each answering its own name
# (echoserver) on :PORT, started together and then waited for (process
# start-up is the slow part under emulation). With a VIP (not ""), each also
# holds it the DR/IPIP way (rs_vip).
rs_serve() {
	local vip=$1 port=$2 ns
	shift 2
	[[ -x $E2E_BIN/echoserver ]] || die "no $E2E_BIN/echoserver: run through test/e2e/run.sh, which builds it"
	for ns in "$@"; do
		[[ -z $vip ]] || rs_vip "$ns" "$vip"
		bg "$ns" "echo-$ns" "$E2E_BIN/echoserver" -name "$ns" -addr ":$port"
	done
	for ns in "$@"; do
		wait_for 30 "echoserver $ns on :$port" \
			in_ns "$ns" "$E2E_BIN/hit" -n 1 -timeout 2s "http://127.0.0.1:$port/healthz"
	done
}

# director_config FILE PORT [KEY=VALUE...]: the config of the static director scenarios
# (20-26), written to FILE and validated (ravel_config): vipPool [$VIP], defaults.ipvs
# {scheduler: wrr, forwarding: dr}, one service web on $VIP:80 over $RS1_IP (weight 3) and
# $RS2_IP (weight 1), resync 2s, the coordinator on PORT (each scenario its own), no metrics
# listener. Each KEY=VALUE changes one part:
#   ipvs=FLOW           defaults.ipvs, what stands inside its braces; "" leaves defaults out
#   web_ipvs=FLOW       web's own ipvs, inside its braces (default: none)
#   weights="W1 W2"     the weights of $RS1_IP and $RS2_IP
#   backend_port=PORT   the backends' port (default: none, the service's)
#   pool=ITEMS          vipPool, inside its brackets
#   services=YAML       more items of the services list, after web (default: none)
#   resync=DURATION     resync
#   metrics=ADDR        metrics.listen
director_config() {
	local file=$1 coord=$2 kv
	local ipvs="scheduler: wrr, forwarding: dr" web_ipvs="" weights="3 1" backend_port=""
	local pool=$VIP services="" resync=2s metrics=""
	shift 2
	for kv in "$@"; do
		case $kv in
		ipvs=* | web_ipvs=* | weights=* | backend_port=* | pool=* | services=* | resync=* | metrics=*)
			printf -v "${kv%%=*}" '%s' "${kv#*=}"
			;;
		*) die "director_config: unknown setting '$kv'" ;;
		esac
	done
	local w1 w2 port="" defaults_yaml="" web_ipvs_yaml="" services_yaml=""
	read -r w1 w2 <<<"$weights"
	[[ -z $backend_port ]] || port=" port: $backend_port,"
	[[ -z $ipvs ]] || defaults_yaml="defaults:"$'\n'"  ipvs: {$ipvs}"$'\n'
	[[ -z $web_ipvs ]] || web_ipvs_yaml="    ipvs: {$web_ipvs}"$'\n'
	[[ -z $services ]] || services_yaml=$services$'\n'
	ravel_config "$file" <<EOF
apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director, role: director, interface: eth0, vipInterface: ravel0}
vipPool: [$pool]
${defaults_yaml}services:
  - name: web
    vip: $VIP
    port: 80
${web_ipvs_yaml}    backends:
      - {address: $RS1_IP,$port weight: $w1}
      - {address: $RS2_IP,$port weight: $w2}
${services_yaml}resync: $resync
coordinator: {ports: [$coord]}
metrics: {listen: "$metrics"}
EOF
}

# director_up NAME CONFIG [ARGS...]: 'ravel run --config CONFIG ARGS...' in the director
# namespace (ravel_start: log NAME.log, sets RAVEL_PID), then the waits every static director
# scenario starts with: web programmed in IPVS ($VIP:80 with 2 destinations) and $VIP bound
# on ravel0. A wait that times out aborts the scenario, as it would in the scenario itself.
director_up() {
	ravel_start director "$@"
	wait_for 60 "ravel programs $VIP:80 with 2 destinations" ipvs_has director "$VIP:80" 2
	wait_for 30 "ravel binds $VIP on ravel0" vip_bound director "$VIP"
}
