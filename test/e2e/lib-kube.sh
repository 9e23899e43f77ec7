# shellcheck shell=bash
# Helpers for e2e scenarios that run ravel against the bed's real kube-apiserver
# (scenarios/3*-kube-*.sh, scenarios/4*-realserver-*.sh). Sourced INSTEAD of
# lib.sh (it sources lib.sh, whose functions and rules all apply):
#
#   # e2e-needs: kapi
#   # e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
#   . "$(dirname "$0")/../lib-kube.sh"
#
# "# e2e-needs: kapi" makes run.sh start etcd + kube-apiserver on the host and
# give the guest a network to them (see run.sh); the e2e-build line builds
# test/e2e/kubetool, which writes nodes, services and EndpointSlices. There is
# no kubelet and no controller behind that API server: the scenario writes what
# ravel must see. One API server serves the whole run, so each scenario uses its
# own names: nodes "sNN-*", Kubernetes namespace "sNN", and nodeSelector label
# "ravel-e2e/sNN" (a node of another scenario is then never eligible).
#
# Functions (on top of lib.sh's):
#   need_kube                       abort unless there is a guest kubeconfig and kubetool
#   kt ARGS...                      test/e2e/kubetool with the guest kubeconfig
#                                   ('kt - <<EOF' for several commands in one process)
#   kube_link NS                    give NS a route to the API server (see below)
#   mk_pod NODE POD IP              pod namespace POD with IP/24 on NODE's bridge cbr0
#                                   (gateway .1 of that /24, held by NODE)
#   start_echos NS:NAME:PORT...     echoservers (lib.sh's start_echo), started together
#   kube_ravel_config FILE SEL VIP... -- <<EOF   a ravel config: the common head (kubeconfig,
#                                   nodeSelector SEL=true, vipPool) + the YAML on stdin
#   kube_ravel NS NAME ARGS...     'ravel run ARGS...' in NS, log $SCENARIO_DIR/NAME.log
#   ipvs_weight NS VIP:PORT RS:PORT the weight of RS in IPVS service VIP:PORT, or "absent"
#   ipvs_conns NS VIP:PORT RS:PORT  the cumulative connection count of RS (ipvsadm --stats)
#   wait_weights SECS NS VIP:PORT RS:PORT=W...  until every RS has weight W ("absent" ok)
#   wait_conns SECS NS VIP:PORT RS:PORT MIN DESC  a check: RS's Conns counter reaches MIN
#   netstat_counter NS Group:Name   a counter of NS's /proc/net/netstat (e.g. TcpExt:IPReversePathFilter)
#   nat_chains NS                   the ravel-owned nat chains (RAVEL, RAVEL-*) in NS, sorted
#   nat_count NS REGEX              lines of NS's nat table (iptables-save) matching REGEX
#   log_time FILE REGEX             epoch seconds (s.ms) of the first log line matching REGEX
#   now                             epoch seconds (s.us), the clock of log_time
#   listen_watch NS PORT FILE       background: FILE gets the time NS first listens on PORT
#   secs_between T0 T1              T1 - T0 in seconds (3 decimals)
#   assert_le_secs DESC GOT MAX     a check: GOT <= MAX seconds
#   kapi_ctl stop-apiserver|start-apiserver   have the host stop or start the run's API server
#                                   (etcd and its data stay); returns once done (start: /readyz ok)
#
# Variables: E2E_KUBECONFIG (kubeconfig for the guest), E2E_KAPI_HOST (the API
# server as seen from the guest), KUBETOOL ($E2E_BIN/kubetool).

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBETOOL=$E2E_BIN/kubetool

kt() {
	"$KUBETOOL" --kubeconfig "$E2E_KUBECONFIG" "$@"
}

need_kube() {
	[[ -n ${E2E_KUBECONFIG:-} && -r ${E2E_KUBECONFIG:-} ]] ||
		die "no E2E_KUBECONFIG: scenarios that need the API server carry '# e2e-needs: kapi' and run through test/e2e/run.sh"
	[[ -x $KUBETOOL ]] || die "no $KUBETOOL (built by run.sh from this scenario's e2e-build line)"
}

# kube_link NS: a path from NS to the API server on the host.
# ravel runs inside scenario namespaces, which have no route out of the guest;
# only the guest's root namespace has eth0 on QEMU's user-mode network. So: a
# veth pair root <-> NS on its own /30 (172.31.N.0/30, N counting per scenario;
# outside every scenario subnet), in NS a /32 route to the API server's address
# only (the scenario's own routes, default route included, stay as they are),
# and in the root namespace forwarding plus MASQUERADE out of the NIC (slirp0,
# see guest/init.sh): QEMU's slirp only takes packets from the guest's own
# address.
# (Under emulation every process start costs 0.3 to 1 s: the commands go in
# batches, one 'ip' process per namespace.)
_KUBE_LINKS=0
kube_link() {
	local ns=$1 n root
	_KUBE_LINKS=$((_KUBE_LINKS + 1))
	n=$_KUBE_LINKS
	root="k-$ns"
	root=${root:0:15}
	ip -b - <<-EOF
		link add $root type veth peer name kapi0 netns $ns
		addr add 172.31.$n.1/30 dev $root
		link set $root up
	EOF
	ip -n "$ns" -b - <<-EOF
		addr add 172.31.$n.2/30 dev kapi0
		link set kapi0 up
		route add $E2E_KAPI_HOST/32 via 172.31.$n.1
	EOF
	# Once per boot: the root namespace's side.
	if [[ ! -e /run/e2e-kube-masq ]]; then
		sysctl -q -w net.ipv4.ip_forward=1
		iptables -t nat -C POSTROUTING -s 172.31.0.0/16 -o slirp0 -j MASQUERADE 2>/dev/null ||
			iptables -t nat -A POSTROUTING -s 172.31.0.0/16 -o slirp0 -j MASQUERADE
		: >/run/e2e-kube-masq
	fi
}

# mk_pod NODE POD IP: a pod namespace POD attached to node namespace NODE the
# way a simple CNI does it: a veth into a bridge cbr0 in NODE, which holds the
# gateway address (.1 of IP's /24) and forwards (ip_forward=1). The pod's
# default route is that gateway, so replies to a client go back through NODE,
# where the DNAT is undone.
declare -A _KUBE_BRIDGES=()
mk_pod() {
	local node=$1 pod=$2 ip=$3 gw peer bridge=
	gw=${ip%.*}.1
	peer="v-$pod"
	peer=${peer:0:15}
	mk_ns "$pod"
	if [[ -z ${_KUBE_BRIDGES[$node]:-} ]]; then
		_KUBE_BRIDGES[$node]=1
		bridge="link add cbr0 type bridge stp_state 0 forward_delay 0
addr add $gw/24 dev cbr0
link set cbr0 up"
		ns_sysctl "$node" net.ipv4.ip_forward=1
	fi
	ip link add eth0 netns "$pod" type veth peer name "$peer" netns "$node"
	ip -n "$node" -b - <<-EOF
		$bridge
		link set $peer master cbr0 up
	EOF
	ip -n "$pod" -b - <<-EOF
		addr add $ip/24 dev eth0
		link set eth0 up
		route add default via $gw
	EOF
}

# start_echos NS:NAME:PORT...: echoservers like lib.sh's start_echo, all
# started before waiting for any (their start-ups overlap).
start_echos() {
	local spec ns name port
	[[ -x $E2E_BIN/echoserver ]] || die "no $E2E_BIN/echoserver: run through test/e2e/run.sh, which builds it"
	for spec in "$@"; do
		IFS=: read -r ns name port <<<"$spec"
		bg "$ns" "echo-$name" "$E2E_BIN/echoserver" -name "$name" -addr ":$port"
	done
	for spec in "$@"; do
		IFS=: read -r ns name port <<<"$spec"
		wait_for 30 "echoserver $name in $ns on :$port" \
			in_ns "$ns" "$E2E_BIN/hit" -n 1 -timeout 2s "http://127.0.0.1:$port/healthz"
	done
}

# kube_ravel_config FILE SEL VIP... -- then the rest of the YAML on stdin: writes the
# common head (kubeconfig, nodeSelector {SEL: "true"}, no debounce so a change
# is published at once, vipPool, metrics off so that two ravel processes can
# share a namespace) followed by stdin.
kube_ravel_config() {
	local file=$1 sel=$2
	shift 2
	local vips=()
	while (($#)) && [[ $1 != -- ]]; do
		vips+=("$1")
		shift
	done
	{
		echo "apiVersion: ravel/v1"
		echo "kind: ClusterConfig"
		echo "kubernetes:"
		echo "  kubeconfig: $E2E_KUBECONFIG"
		echo "  nodeSelector: {\"$sel\": \"true\"}"
		echo "  debounce: {quiet: 0s, maxDelay: 0s}"
		echo "vipPool: [$(
			IFS=,
			echo "${vips[*]}"
		)]"
		echo "metrics: {listen: \"\"}"
		cat
	} >"$file"
	"$RAVEL_BIN" config validate "$file" >/dev/null || die "invalid ravel config $file: $("$RAVEL_BIN" config validate "$file" 2>&1)"
}

# kube_ravel NS NAME ARGS...: ravel run in NS (text log with millisecond
# timestamps in $SCENARIO_DIR/NAME.log). Sets BG_PID: 'ip netns exec' execs the
# command, so BG_PID is ravel's own PID (kill -9 BG_PID kills ravel).
kube_ravel() {
	local ns=$1 name=$2
	shift 2
	need_ravel
	bg "$ns" "$name" "$RAVEL_BIN" run "$@"
}

# ipvs_weight NS VIP:PORT RS:PORT: RS's weight in TCP service VIP:PORT ("absent"
# if RS or the service is not there).
ipvs_weight() {
	local ns=$1 svc=$2 rs=$3 out
	# (|| true, and no pipe from ipvsadm: under lib.sh's errtrace a failing
	# command inside $(...) would run the ERR trap into the caller's output.)
	out=$(in_ns "$ns" ipvsadm -Ln -t "$svc" 2>/dev/null) || true
	awk -v rs="$rs" '$1 == "->" && $2 == rs { print $4; found = 1 } END { if (!found) print "absent" }' <<<"$out"
}

# ipvs_conns NS VIP:PORT RS:PORT: RS's cumulative "Conns" counter (0 if absent).
# The kernel keeps it per destination object: an in-place edit (ipvsadm -e,
# IPVS_CMD_SET_DEST) keeps it, a delete and re-add starts it from 0.
ipvs_conns() {
	local ns=$1 svc=$2 rs=$3 out
	out=$(in_ns "$ns" ipvsadm -Ln --stats --exact -t "$svc" 2>/dev/null) || true
	awk -v rs="$rs" '$1 == "->" && $2 == rs { print $3; found = 1 } END { if (!found) print 0 }' <<<"$out"
}

# wait_conns SECS NS VIP:PORT RS:PORT MIN DESC: a check that RS's "Conns"
# counter reaches MIN. The kernel folds its per-CPU counters into what ipvsadm
# reads only in the estimator's 2-second timer: a read right after traffic
# can be short by what arrived since the last tick.
_conns_ge() {
	local c
	c=$(ipvs_conns "$1" "$2" "$3")
	((c >= $4))
}
wait_conns() {
	local secs=$1 ns=$2 svc=$3 rs=$4 min=$5 desc=$6
	if wait_for "$secs" "$desc" _conns_ge "$ns" "$svc" "$rs" "$min"; then
		pass "$desc ($(ipvs_conns "$ns" "$svc" "$rs") >= $min)"
	else
		fail "$desc: $(ipvs_conns "$ns" "$svc" "$rs") < $min"
	fi
	return 0
}

# netstat_counter NS NAME: a counter of NS's /proc/net/netstat, e.g.
# TcpExt:IPReversePathFilter (packets dropped by reverse-path filtering).
netstat_counter() {
	local out
	out=$(in_ns "$1" cat /proc/net/netstat) || true
	awk -v want="$2" '{
		split(want, w, ":")
		if ($1 == w[1] ":") {
			if (!names) { for (i = 2; i <= NF; i++) idx[$i] = i; names = 1 }
			else if (w[2] in idx) { print $(idx[w[2]]); found = 1 }
		}
	} END { if (!found) print "?" }' <<<"$out"
}

# _weights_are NS SVC RS=W...: every RS has weight W.
_weights_are() {
	local ns=$1 svc=$2 kv got
	shift 2
	for kv in "$@"; do
		got=$(ipvs_weight "$ns" "$svc" "${kv%=*}")
		[[ $got == "${kv#*=}" ]] || return 1
	done
}

# wait_weights SECS NS VIP:PORT RS:PORT=W...: wait until IPVS shows those
# weights; on timeout fail with the table as it is.
wait_weights() {
	local secs=$1 ns=$2 svc=$3
	shift 3
	if wait_for "$secs" "weights $* in $svc" _weights_are "$ns" "$svc" "$@"; then
		pass "IPVS $svc weights $*"
	else
		in_ns "$ns" ipvsadm -Ln || true
		return 1
	fi
}

# nat_chains NS: the chains named RAVEL or RAVEL-* in NS's nat table, one a line.
nat_chains() {
	local out
	out=$(in_ns "$1" iptables-save -t nat) || true
	sed -n 's/^:\(RAVEL[A-Za-z0-9_-]*\) .*/\1/p' <<<"$out" | sort
}

# nat_count NS REGEX: how many lines of NS's 'iptables-save -t nat' match REGEX
# (grep -E); 0 when none (never a failing status).
nat_count() {
	local out
	out=$(in_ns "$1" iptables-save -t nat) || true
	grep -cE -- "$2" <<<"$out" || true
}

# now: the wall clock as seconds.microseconds (bash's EPOCHREALTIME: no
# process), comparable with log_time. For the time of an action, take
# $EPOCHREALTIME right before it rather than $(now) (a subshell).
now() {
	echo "$EPOCHREALTIME"
}

# listen_watch NS PORT FILE: in the background, write to FILE the time
# ($EPOCHREALTIME) at which a TCP socket in NS first listens on PORT. It reads
# /proc/net/tcp6 and tcp with bash builtins every 10 ms: no process per poll
# (each costs 0.3 to 3 s under emulation on a busy machine) and no connection
# attempt (a connect to a free port in the ephemeral range can pick that very
# port as its source and connect to itself, which then makes the listen fail).
listen_watch() {
	local ns=$1 port=$2 file=$3 fifo
	fifo=$(mktemp -u /tmp/listen-watch.XXXXXX)
	mkfifo "$fifo"
	# shellcheck disable=SC2016 # expanded by the inner bash
	ip netns exec "$ns" bash -c '
		exec 3<>"$1"; rm -f "$1"
		while :; do
			for f in /proc/net/tcp6 /proc/net/tcp; do
				while read -r _ l _ st _; do
					if [[ $l == *:$2 && $st == 0A ]]; then echo "$EPOCHREALTIME" >"$3"; exit 0; fi
				done <"$f"
			done
			read -r -t 0.01 -u 3 _ || true
		done' listen-watch "$fifo" "$(printf %04X "$port")" "$file" &
	_E2E_PIDS+=("$!")
}

# log_time FILE REGEX: the timestamp (seconds.milliseconds since the epoch) of
# the first line of ravel's text log FILE that matches REGEX; empty if none.
log_time() {
	local line ts
	line=$(grep -m1 -E -- "$2" "$1" 2>/dev/null) || return 0
	ts=$(sed -n 's/^time=\([^ ]*\) .*/\1/p' <<<"$line")
	[[ -n $ts ]] && date -d "$ts" +%s.%3N
}

# secs_between A B: B - A in seconds, 3 decimals.
secs_between() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'
}

# assert_le_secs DESC GOT MAX: GOT <= MAX (decimal seconds).
assert_le_secs() {
	local desc=$1 got=$2 max=$3
	if [[ -n $got ]] && awk -v g="$got" -v m="$max" 'BEGIN { exit !(g <= m) }'; then
		pass "$desc (${got}s <= ${max}s)"
	else
		fail "$desc: ${got:-?}s, want <= ${max}s"
	fi
}

# kapi_ctl CMD: the API server runs on the host, so the guest asks run.sh's kapi-ctl loop
# through the shared results dir ($E2E_OUT/kapi-ctl) and waits for its answer.
kapi_ctl() {
	local cmd=$1 id st
	[[ ${E2E_KAPI_CTL:-} == 1 ]] || die "kapi_ctl: no kapi-ctl loop on the host (run through test/e2e/run.sh with '# e2e-needs: kapi')"
	id=$E2E_OUT/kapi-ctl/$SCENARIO-$$-$RANDOM
	echo "$cmd" >"$id.tmp" && mv -f "$id.tmp" "$id.req"
	wait_for 120 "the host ran kapi.sh $cmd" test -e "$id.done" || die "kapi_ctl $cmd: no answer from the host"
	st=$(<"$id.done")
	((st == 0)) || die "kapi_ctl $cmd: kapi.sh exit $st: $(tail -n 5 "$id.log" 2>/dev/null)"
	log "kapi_ctl: $cmd done"
}
