#!/usr/bin/env bash
# bench/rss.sh: resident memory of `ravel run` following a real kube-apiserver that holds
# 1,000 services × 20 nodes × 5 ready endpoints per node (100,000 endpoints).
#
# Usage: bench/rss.sh [--no-guest]      (root: network namespaces, iptables, QEMU)
#
#  1. builds ravel (as `make build` does), bench/kubeload and bench/nsproxy into $DIR/bin;
#  2. starts etcd + kube-apiserver with hack/kapi/kapi.sh in its own KAPI_DIR (never the
#     default one, so nobody else's server is touched) and fills it with bench/kubeload;
#  3. writes ravel configs with the 1,000 services (one VIP each, port 80), nodeSelector
#     ravel-bench=true, debounce 0/0, metrics on 127.0.0.1:10234;
#  4. host, case (a): the realserver role, `ravel run --role realserver --node-name bench-n0`
#     in a throwaway network namespace (5,000 local DNAT rules: 1,000 services × 5 pods on
#     bench-n0). bench/nsproxy makes the host's API server reachable at the same 127.0.0.1
#     address from inside the namespace. Converged = 5,000 DNAT rules in the namespace's nat
#     table; then it waits SETTLE seconds (more than the 1 m resync) and reads VmRSS / VmHWM
#     from /proc/PID/status. Baselines in the same run: the max RSS of `ravel config validate`
#     on the same file, and an idle `ravel run` (same kubernetes section, no services);
#  5. guest, case (b) (skipped with --no-guest): the director role in the QEMU e2e guest,
#     which has IPVS, against the host's API server (bench/rss-guest.sh): 1,000 IPVS services
#     × 19 destinations (bench-n0, the director's own node, is never one). Converged =
#     ravel_virtual_services 1000 after the first full sync; it then waits for the first
#     periodic full resync to complete as well, SETTLE_GUEST more seconds, and reads the RSS.
#  6. prints a table; stops everything it started (API server, namespaces, processes), also
#     on failure or Ctrl-C.
#
# Environment: RAVEL_BENCH_DIR (default /var/tmp/ravel-bench: outside /tmp, which the guest
# cannot see), RAVEL_BENCH_KAPI_DIR (default /var/tmp/ravel-bench-kapi), SETTLE (default 70 s),
# SETTLE_GUEST (default 20 s), GUEST_TIMEOUT (seconds to converge and to resync in the guest,
# each; default 1500). Figures depend on the machine's load: the load average is printed with
# each of them.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
export PATH=/usr/local/go/bin:$PATH

GUEST=1
for a in "$@"; do
	case "$a" in
	--no-guest) GUEST= ;;
	*)
		sed -n '2,31p' "$0" >&2
		exit 2
		;;
	esac
done
if [[ $(id -u) != 0 ]]; then
	echo "bench/rss.sh: needs root (network namespaces, iptables)" >&2
	exit 2
fi

DIR=${RAVEL_BENCH_DIR:-/var/tmp/ravel-bench}
KAPI_DIR=${RAVEL_BENCH_KAPI_DIR:-/var/tmp/ravel-bench-kapi}
SETTLE=${SETTLE:-70}
SETTLE_GUEST=${SETTLE_GUEST:-20}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-1500}
SERVICES=1000 NODES=20 EPS=5
NODE=bench-n0 # the node whose endpoints the realserver DNATs to; the director's own node
PORT=10234    # metrics, on 127.0.0.1 inside each namespace / the guest
NS_PREFIX=ravel-bench-$$

log() { echo "rss: $*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- clean-up: only what this run started, by PID and by name --------------------------
pids=()
netns=()
kapi_started=
cleanup() {
	local p n
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	for n in "${netns[@]}"; do
		ip netns del "$n" 2>/dev/null || true
	done
	if [[ -n $kapi_started ]]; then
		mkdir -p "$DIR/kapi-log"
		cp -r "$KAPI_DIR/log/." "$DIR/kapi-log/" 2>/dev/null || true
		KAPI_DIR=$KAPI_DIR bash hack/kapi/kapi.sh down >/dev/null 2>&1 || true
		rm -rf "$KAPI_DIR"
	fi
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

case "${DIR##*/}" in ravel-bench*) ;; *) die "RAVEL_BENCH_DIR must end in a directory named ravel-bench* (it is emptied)" ;; esac
rm -rf "$DIR"
mkdir -p "$DIR/bin"

# --- 1. binaries ------------------------------------------------------------------------
log "building ravel, kubeload, nsproxy into $DIR/bin"
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$version" -o "$DIR/bin/ravel" ./cmd/ravel
go build -o "$DIR/bin/kubeload" ./bench/kubeload
go build -o "$DIR/bin/nsproxy" ./bench/nsproxy
RAVEL=$DIR/bin/ravel

# --- 2. API server ----------------------------------------------------------------------
log "starting kube-apiserver + etcd (KAPI_DIR=$KAPI_DIR)"
kapi_started=1
if [[ -e $KAPI_DIR/state ]]; then
	log "$KAPI_DIR holds a server of an earlier run: stopping it"
	KAPI_DIR=$KAPI_DIR bash hack/kapi/kapi.sh down >/dev/null 2>&1 || true
fi
ok=
for _ in 1 2; do # a loaded machine can lose kapi.sh's start race once (see test/e2e/run.sh)
	if KAPI_DIR=$KAPI_DIR bash hack/kapi/kapi.sh up >/dev/null; then
		ok=1
		break
	fi
done
[[ -n $ok ]] || die "hack/kapi/kapi.sh up failed"
# shellcheck disable=SC1091 # written by kapi.sh: API_PORT, TOKEN, ...
. "$KAPI_DIR/state"
# shellcheck disable=SC2153 # KAPI_BIN comes from the state file
kapi_version=${KAPI_BIN##*/}
KUBECONFIG_HOST=$KAPI_DIR/kubeconfig
t=$SECONDS
"$DIR/bin/kubeload" -kubeconfig "$KUBECONFIG_HOST" -nodes "$NODES" -services "$SERVICES" -eps-per-node "$EPS" -namespace bench
log "cluster loaded in $((SECONDS - t)) s"

# --- 3. configs -------------------------------------------------------------------------
vip() { echo "10.200.$(($1 / 250)).$((1 + $1 % 250))"; }
# write_config FILE KUBECONFIG NODE_LINE N: a ClusterConfig with services svc-0..svc-N-1.
write_config() {
	local file=$1 kc=$2 nodeline=$3 n=$4 i
	{
		echo "apiVersion: ravel/v1"
		echo "kind: ClusterConfig"
		echo "node: $nodeline"
		echo "kubernetes:"
		echo "  kubeconfig: $kc"
		echo "  nodeSelector: {ravel-bench: \"true\"}"
		echo "  debounce: {quiet: 0s, maxDelay: 0s}"
		echo "metrics: {listen: \"127.0.0.1:$PORT\"}"
		if ((n == 0)); then
			echo "vipPool: []"
			echo "services: []"
		else
			echo "vipPool:"
			for ((i = 0; i < n; i++)); do echo "  - $(vip "$i")"; done
			echo "services:"
			for ((i = 0; i < n; i++)); do
				echo "  - {name: svc-$i, vip: $(vip "$i"), port: 80, kubernetes: {namespace: bench, service: svc-$i, portName: http}}"
			done
		fi
	} >"$file"
	"$RAVEL" config validate "$file" >/dev/null || die "invalid config $file: $("$RAVEL" config validate "$file" 2>&1)"
}
RS_NODE="{name: $NODE, role: realserver, interface: eth0, vipInterface: lo}"
write_config "$DIR/realserver.yaml" "$KUBECONFIG_HOST" "$RS_NODE" "$SERVICES"
write_config "$DIR/idle.yaml" "$KUBECONFIG_HOST" "$RS_NODE" 0

# --- 4. host: the realserver role in a namespace ------------------------------------------
kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
dnat_rules() { ip netns exec "$1" iptables-save -t nat 2>/dev/null | grep -c -- '-j DNAT' || true; }
heap_kb() {
	ip netns exec "$1" curl -s --max-time 10 "http://127.0.0.1:$PORT/metrics" 2>/dev/null |
		awk '$1 == "go_memstats_heap_inuse_bytes" { printf "%d\n", $2 / 1024 }'
}
declare -A R=() # results: R[case.key]

/usr/bin/time -f %M -o "$DIR/validate.maxrss" "$RAVEL" config validate "$DIR/realserver.yaml" >/dev/null
R[validate.rss]=$(cat "$DIR/validate.maxrss")
R[validate.load]=$(loadavg)

# realserver CASE CONFIG WANT_DNAT: run the realserver role in a new namespace until it has
# WANT_DNAT DNAT rules (and logged its first snapshot), then SETTLE seconds; record RSS/HWM.
realserver() {
	local name=$1 cfg=$2 want=$3 ns=$NS_PREFIX-$1 pid t0 i n
	ip netns add "$ns"
	netns+=("$ns")
	ip -n "$ns" link set lo up
	# node.interface (ravel sets its arp_ignore/arp_announce): any device will do.
	ip -n "$ns" link add eth0 type veth peer name eth0p
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set eth0p up
	"$DIR/bin/nsproxy" -netns "/run/netns/$ns" -listen "127.0.0.1:$API_PORT" -to "127.0.0.1:$API_PORT" 2>>"$DIR/nsproxy.log" &
	pids+=($!)
	t0=$(date +%s%N)
	# 'ip netns exec' execs ravel: $! is ravel's PID.
	ip netns exec "$ns" "$RAVEL" run --config "$cfg" --role realserver --node-name "$NODE" >"$DIR/$name.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	log "$name: ravel run (realserver) pid $pid in netns $ns"
	for ((i = 0; ; i++)); do
		kill -0 "$pid" 2>/dev/null || die "$name: ravel exited: $(tail -n 5 "$DIR/$name.log")"
		n=$(dnat_rules "$ns")
		if ((n == want)) && grep -q 'first kubernetes snapshot' "$DIR/$name.log"; then break; fi
		((i < 600)) || die "$name: $n DNAT rules after 300 s, want $want"
		sleep 0.5
	done
	R[$name.converge]=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	R[$name.dnat]=$n
	log "$name: converged in ${R[$name.converge]} s ($n DNAT rules), VmRSS $(kb "$pid" VmRSS) kB; settling ${SETTLE} s"
	for ((i = 0; i < SETTLE; i += 10)); do
		sleep 10
		kill -0 "$pid" 2>/dev/null || die "$name: ravel exited while settling"
		log "$name: t+$((i + 10))s VmRSS $(kb "$pid" VmRSS) kB VmHWM $(kb "$pid" VmHWM) kB"
	done
	R[$name.rss]=$(kb "$pid" VmRSS)
	R[$name.hwm]=$(kb "$pid" VmHWM)
	R[$name.heap]=$(heap_kb "$ns")
	R[$name.load]=$(loadavg)
	n=$(dnat_rules "$ns")
	((n == want)) || die "$name: $n DNAT rules after settling, want $want"
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
}
realserver idle "$DIR/idle.yaml" 0
realserver realserver "$DIR/realserver.yaml" $((SERVICES * EPS))

# --- 5. guest: the director role with IPVS ------------------------------------------------
if [[ -n $GUEST ]]; then
	# The guest reaches the host's loopback at 192.168.76.2 (test/e2e/guest/run.sh,
	# E2E_GUEST_NET=user). kapi.sh's certificate covers 127.0.0.1 and the kubernetes* names,
	# not that address: name one of them, as test/e2e/run.sh does, and TLS stays verified.
	KUBECONFIG_GUEST=$KAPI_DIR/kubeconfig.guest
	cat >"$KUBECONFIG_GUEST" <<-EOS
		apiVersion: v1
		kind: Config
		clusters:
		- name: bench
		  cluster:
		    server: https://192.168.76.2:$API_PORT
		    certificate-authority: $KAPI_DIR/certs/apiserver.crt
		    tls-server-name: kubernetes
		users:
		- name: admin
		  user:
		    token: $TOKEN
		contexts:
		- name: bench
		  context:
		    cluster: bench
		    user: admin
		current-context: bench
	EOS
	chmod 600 "$KUBECONFIG_GUEST"
	write_config "$DIR/director.yaml" "$KUBECONFIG_GUEST" "{name: $NODE, role: director, interface: slirp0, vipInterface: ravel0}" "$SERVICES"
	log "guest: director with $SERVICES services × $((NODES - 1)) destinations (QEMU TCG: minutes)"
	R[guest.load]=$(loadavg)
	t=$SECONDS
	grc=0
	E2E_GUEST_NET=user E2E_OUT_DIR=$DIR/guest E2E_TIMEOUT=$((2 * GUEST_TIMEOUT + 600)) \
		bash test/e2e/guest/run.sh "$REPO/bench/rss-guest.sh" "$RAVEL" "$DIR/director.yaml" "$NODE" "$PORT" \
		"$SERVICES" $((SERVICES * (NODES - 1))) "$SETTLE_GUEST" "$GUEST_TIMEOUT" || grc=$?
	R[guest.secs]=$((SECONDS - t))
	R[guest.load_end]=$(loadavg)
	if ((grc != 0)); then
		log "guest run failed (exit $grc); director log: $DIR/guest/director.log"
		GUEST=failed
	else
		# shellcheck disable=SC1091 # KEY=VALUE lines written by rss-guest.sh
		. "$DIR/guest/result"
	fi
fi

# --- 6. report ----------------------------------------------------------------------------
mib() { [[ -n ${1:-} ]] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo -; }
row() { printf '%-58s %9s %9s %9s  %s\n' "$@"; }
echo
echo "# bench/rss.sh${*:+ $*}   ($(date -u +%FT%TZ))"
echo "# ravel $version, $(go version | cut -d' ' -f3), $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "# cluster: $NODES Ready nodes, $SERVICES services × $((NODES * EPS)) endpoints ($EPS per node) in EndpointSlices, kube-apiserver $kapi_version"
echo
row "case" "VmRSS MiB" "VmHWM MiB" "heap MiB" "notes"
row "host: ravel config validate realserver.yaml (max RSS)" "$(mib "${R[validate.rss]}")" - - "load ${R[validate.load]}"
row "host (a): ravel run realserver, idle (no services)" "$(mib "${R[idle.rss]}")" "$(mib "${R[idle.hwm]}")" "$(mib "${R[idle.heap]}")" \
	"converged ${R[idle.converge]} s; load ${R[idle.load]}"
row "host (a): ravel run realserver, 1000 services" "$(mib "${R[realserver.rss]}")" "$(mib "${R[realserver.hwm]}")" "$(mib "${R[realserver.heap]}")" \
	"${R[realserver.dnat]} DNAT rules, converged ${R[realserver.converge]} s; load ${R[realserver.load]}"
if [[ $GUEST == 1 ]]; then
	row "guest (b): ravel config validate director.yaml (max RSS)" "$(mib "$VALIDATE_MAXRSS_KB")" - - "QEMU TCG guest, 2 vCPUs"
	row "guest (b): ravel run director, 1000 services" "$(mib "$RSS_KB")" "$(mib "$HWM_KB")" "$(mib "$HEAP_INUSE_KB")" \
		"IPVS $IPVS_SERVICES services / $IPVS_DESTS dests, apply errors $APPLY_ERRORS"
	echo
	echo "guest (b): converged (first full sync applied) ${CONVERGE_SECS} s after 'ravel run' (RSS then $(mib "$CONVERGED_RSS_KB") MiB);"
	echo "  first periodic full resync done ${RESYNC_DONE_SECS} s after that ($FULL_SYNCS full syncs, ${SYNC_SECONDS_SUM} s in reconcile in all);"
	echo "  SIGTERM to exit: $STOP_SECS s; whole guest run ${R[guest.secs]} s; host load ${R[guest.load]} -> ${R[guest.load_end]}, guest load $GUEST_LOAD -> $GUEST_LOAD_END"
elif [[ $GUEST == failed ]]; then
	echo
	echo "guest (b): failed, see $DIR/guest/ (output.log, director.log, console.log)"
fi
echo
echo "logs: $DIR (ravel: idle.log, realserver.log, guest/director.log; API server: kapi-log/)"
