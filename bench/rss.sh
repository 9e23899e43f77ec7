#!/usr/bin/env bash
# bench/rss.sh: resident memory of `ravel run` following a real kube-apiserver that holds
# SERVICES (default 1,000) services × 20 nodes × 5 ready endpoints per node (100 endpoints per
# service), and how long an EndpointSlice change takes to reach the guest's IPVS.
#
# Usage: [SERVICES=N] [CHANGES=N] bench/rss.sh [--no-guest] [--no-host]
#        (root: network namespaces, iptables, QEMU)
#   e.g. SERVICES=10000 bench/rss.sh --no-host   (issue 13's set: the guest director only)
#
#  1. builds ravel (as `make build` does), bench/kubeload, bench/kubelat and bench/nsproxy into
#     $DIR/bin;
#  2. starts etcd + kube-apiserver with hack/kapi/kapi.sh in its own KAPI_DIR (never the
#     default one, so nobody else's server is touched) and fills it with bench/kubeload;
#  3. writes ravel configs with the SERVICES services (one VIP each, port 80), nodeSelector
#     ravel-bench=true, debounce DEBOUNCE_QUIET/DEBOUNCE_MAX (default 0s/0s), metrics on
#     127.0.0.1:10234; the director's also has health.checkRealservers false (the guest
#     cannot reach the fake nodes: with checks on, every node would fall to weight 0);
#  4. host, case (a) (skipped with --no-host): the realserver role, `ravel run --role
#     realserver --node-name bench-n0` in a throwaway network namespace (SERVICES × 5 local
#     DNAT rules: 5,000 for 1,000 services × 5 pods on
#     bench-n0). bench/nsproxy makes the host's API server reachable at the same 127.0.0.1
#     address from inside the namespace. Converged = 5,000 DNAT rules in the namespace's nat
#     table; then it waits SETTLE seconds (more than the 1 m resync) and reads VmRSS / VmHWM
#     from /proc/PID/status. Baselines in the same run: the max RSS of `ravel config validate`
#     on the same file, and an idle `ravel run` (same kubernetes section, no services);
#  5. guest, case (b) (skipped with --no-guest): the director role in the QEMU e2e guest,
#     which has IPVS, against the host's API server (bench/rss-guest.sh): SERVICES IPVS
#     services × 19 destinations (bench-n0, the director's own node, is never one). Converged
#     = ravel_virtual_services SERVICES after the first full sync; it then waits for the first
#     periodic full resync to complete as well, SETTLE_GUEST more seconds, and reads the RSS
#     (VmRSS, VmHWM, RssAnon, RssFile). Then the latency phase (CHANGES > 0): bench/kubelat,
#     in the guest beside the director, makes CHANGES EndpointSlice changes one after the
#     other (one endpoint's ready condition flipped on one node in one random service, so
#     that node's weight in that IPVS service changes) and times each from the API write's
#     acknowledgement to the new weight in IPVS (polled over netlink in process every 1 ms);
#     then the RSS again. A change that never shows within LAT_TIMEOUT fails the run;
#  6. prints a table; stops everything it started (API server, namespaces, processes), also
#     on failure or Ctrl-C. Exits non-zero on a failure, never on a time.
#
# Environment: SERVICES (default 1000), CHANGES (latency phase, default 200; 0 skips it),
# DEBOUNCE_QUIET / DEBOUNCE_MAX (ravel's kubernetes.debounce, default 0s / 0s), LAT_PAUSE
# (mean pause between two changes, default 200ms), LAT_TIMEOUT (default 30s), ARP_INTERVAL
# (the director's arp.interval; default unset: ravel's 5s; 0s turns the periodic gratuitous
# ARP of every VIP off),
# RAVEL_BENCH_DIR (default /var/tmp/ravel-bench: outside /tmp, which the guest cannot see),
# RAVEL_BENCH_KAPI_DIR (default /var/tmp/ravel-bench-kapi), SETTLE (default 70 s),
# SETTLE_GUEST (default 20 s), GUEST_TIMEOUT (seconds to converge and to resync in the guest,
# each; default 1500, SERVICES/4 if more), E2E_GUEST_MEM (MiB, default 1536, 4096 above
# 2,000 services). Figures depend on the machine's load: the load average is printed with
# each of them.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
export PATH=/usr/local/go/bin:$PATH

GUEST=1 HOST=1
for a in "$@"; do
	case "$a" in
	--no-guest) GUEST= ;;
	--no-host) HOST= ;;
	*)
		sed -n '2,50p' "$0" >&2
		exit 2
		;;
	esac
done
if [[ $(id -u) != 0 ]]; then
	echo "bench/rss.sh: needs root (network namespaces, iptables)" >&2
	exit 2
fi

log() { echo "rss: $*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

DIR=${RAVEL_BENCH_DIR:-/var/tmp/ravel-bench}
KAPI_DIR=${RAVEL_BENCH_KAPI_DIR:-/var/tmp/ravel-bench-kapi}
SETTLE=${SETTLE:-70}
SETTLE_GUEST=${SETTLE_GUEST:-20}
SERVICES=${SERVICES:-1000}
CHANGES=${CHANGES:-200}
[[ $SERVICES =~ ^[1-9][0-9]*$ ]] && ((SERVICES <= 49152)) || die "SERVICES must be 1..49152, not '$SERVICES'"
[[ $CHANGES =~ ^[0-9]+$ ]] || die "CHANGES must be a number, not '$CHANGES'"
DEBOUNCE_QUIET=${DEBOUNCE_QUIET:-0s}
DEBOUNCE_MAX=${DEBOUNCE_MAX:-0s}
LAT_PAUSE=${LAT_PAUSE:-200ms}
LAT_TIMEOUT=${LAT_TIMEOUT:-30s}
ARP_INTERVAL=${ARP_INTERVAL:-}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-$((SERVICES / 4 > 1500 ? SERVICES / 4 : 1500))}
if [[ -z ${E2E_GUEST_MEM:-} ]]; then
	E2E_GUEST_MEM=$((SERVICES > 2000 ? 4096 : 1536))
fi
export E2E_GUEST_MEM
NODES=20 EPS=5
NODE=bench-n0 # the node whose endpoints the realserver DNATs to; the director's own node
PORT=10234    # metrics, on 127.0.0.1 inside each namespace / the guest
NS_PREFIX=ravel-bench-$$

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
log "building ravel, kubeload, kubelat, nsproxy into $DIR/bin"
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$version" -o "$DIR/bin/ravel" ./cmd/ravel
go build -o "$DIR/bin/kubeload" ./bench/kubeload
go build -o "$DIR/bin/kubelat" ./bench/kubelat
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
# write_config FILE KUBECONFIG NODE_LINE N [EXTRA_LINE]: a ClusterConfig with services
# svc-0..svc-N-1.
write_config() {
	local file=$1 kc=$2 nodeline=$3 n=$4 extra=${5:-} i
	{
		echo "apiVersion: ravel/v1"
		echo "kind: ClusterConfig"
		echo "node: $nodeline"
		echo "kubernetes:"
		echo "  kubeconfig: $kc"
		echo "  nodeSelector: {ravel-bench: \"true\"}"
		echo "  debounce: {quiet: $DEBOUNCE_QUIET, maxDelay: $DEBOUNCE_MAX}"
		echo "metrics: {listen: \"127.0.0.1:$PORT\"}"
		[[ -z $extra ]] || echo "$extra"
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
if [[ -n $HOST ]]; then
	realserver idle "$DIR/idle.yaml" 0
	realserver realserver "$DIR/realserver.yaml" $((SERVICES * EPS))
fi

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
	# The fake nodes do not exist for the guest: with health.checkRealservers (default true)
	# every node would fall to weight 0 and no EndpointSlice change would show in IPVS.
	extra="health: {checkRealservers: false}"
	[[ -z $ARP_INTERVAL ]] || extra+=$'\n'"arp: {interval: $ARP_INTERVAL}"
	write_config "$DIR/director.yaml" "$KUBECONFIG_GUEST" "{name: $NODE, role: director, interface: slirp0, vipInterface: ravel0}" \
		"$SERVICES" "$extra"
	log "guest: director with $SERVICES services × $((NODES - 1)) destinations, debounce $DEBOUNCE_QUIET/$DEBOUNCE_MAX, then $CHANGES EndpointSlice changes (QEMU TCG, ${E2E_GUEST_MEM} MiB: minutes)"
	R[guest.load]=$(loadavg)
	t=$SECONDS
	grc=0
	E2E_GUEST_NET=user E2E_OUT_DIR=$DIR/guest E2E_TIMEOUT=$((2 * GUEST_TIMEOUT + 900 + 3 * CHANGES)) \
		bash test/e2e/guest/run.sh "$REPO/bench/rss-guest.sh" "$RAVEL" "$DIR/director.yaml" "$NODE" "$PORT" \
		"$SERVICES" $((SERVICES * (NODES - 1))) "$SETTLE_GUEST" "$GUEST_TIMEOUT" \
		"$DIR/bin/kubelat" "$KUBECONFIG_GUEST" "$NODES" "$CHANGES" "$DEBOUNCE_QUIET/$DEBOUNCE_MAX" "$LAT_PAUSE" "$LAT_TIMEOUT" || grc=$?
	R[guest.secs]=$((SECONDS - t))
	R[guest.load_end]=$(loadavg)
	if [[ -s $DIR/guest/result ]]; then
		# shellcheck disable=SC1091 # KEY=VALUE lines written by rss-guest.sh and kubelat
		. "$DIR/guest/result"
	fi
	if ((grc != 0)); then
		log "guest run failed (exit $grc); director log: $DIR/guest/director.log"
		GUEST=failed
	fi
fi

# --- 6. report ----------------------------------------------------------------------------
mib() { [[ -n ${1:-} ]] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo -; }
row() { printf '%-58s %9s %9s %9s  %s\n' "$@"; }
echo
echo "# bench/rss.sh${*:+ $*}   ($(date -u +%FT%TZ))"
echo "# ravel $version, $(go version | cut -d' ' -f3), $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "# cluster: $NODES Ready nodes, $SERVICES services × $((NODES * EPS)) endpoints ($EPS per node) in EndpointSlices, kube-apiserver $kapi_version"
echo "# ravel: kubernetes.debounce {quiet: $DEBOUNCE_QUIET, maxDelay: $DEBOUNCE_MAX}, resync 60s; director: health.checkRealservers false, arp.interval ${ARP_INTERVAL:-5s (default)}"
echo
row "case" "VmRSS MiB" "VmHWM MiB" "heap MiB" "notes"
row "host: ravel config validate realserver.yaml (max RSS)" "$(mib "${R[validate.rss]}")" - - "load ${R[validate.load]}"
if [[ -n $HOST ]]; then
	row "host (a): ravel run realserver, idle (no services)" "$(mib "${R[idle.rss]}")" "$(mib "${R[idle.hwm]}")" "$(mib "${R[idle.heap]}")" \
		"converged ${R[idle.converge]} s; load ${R[idle.load]}"
	row "host (a): ravel run realserver, $SERVICES services" "$(mib "${R[realserver.rss]}")" "$(mib "${R[realserver.hwm]}")" "$(mib "${R[realserver.heap]}")" \
		"${R[realserver.dnat]} DNAT rules, converged ${R[realserver.converge]} s; load ${R[realserver.load]}"
fi
if [[ -n ${RSS_KB:-} ]]; then
	row "guest (b): ravel config validate director.yaml (max RSS)" "$(mib "$VALIDATE_MAXRSS_KB")" - - "QEMU TCG guest, 2 vCPUs, ${E2E_GUEST_MEM} MiB"
	row "guest (b): ravel run director, $SERVICES services" "$(mib "$RSS_KB")" "$(mib "$HWM_KB")" "$(mib "$HEAP_INUSE_KB")" \
		"RssAnon $(mib "$RSS_ANON_KB") MiB, RssFile $(mib "$RSS_FILE_KB") MiB; IPVS $IPVS_SERVICES services / $IPVS_DESTS dests, apply errors $APPLY_ERRORS"
	if [[ -n ${LAT_RSS_KB:-} ]]; then
		row "guest (b): the same after ${LAT_CHANGES:-?} EndpointSlice changes" "$(mib "$LAT_RSS_KB")" "$(mib "$LAT_HWM_KB")" "$(mib "$LAT_HEAP_INUSE_KB")" \
			"RssAnon $(mib "$LAT_RSS_ANON_KB") MiB, RssFile $(mib "$LAT_RSS_FILE_KB") MiB; apply errors $LAT_APPLY_ERRORS"
	fi
	echo
	echo "guest (b): converged (first full sync applied) ${CONVERGE_SECS} s after 'ravel run' (RSS then $(mib "$CONVERGED_RSS_KB") MiB, HWM $(mib "$CONVERGED_HWM_KB") MiB);"
	echo "  first periodic full resync done ${RESYNC_DONE_SECS} s after that ($FULL_SYNCS full syncs, ${SYNC_SECONDS_SUM} s in reconcile in all);"
	if [[ -n ${LAT_P50_MS:-} ]]; then
		echo "  EndpointSlice change (API write acknowledged) -> new weight in IPVS, $LAT_CHANGES changes, debounce $LAT_DEBOUNCE:"
		echo "    p50 $LAT_P50_MS ms, p90 $LAT_P90_MS ms, p99 $LAT_P99_MS ms, max $LAT_MAX_MS ms (min $LAT_MIN_MS); never shown: $LAT_MISSING;"
		echo "    the API write's round trip from the guest p50 $LAT_WRITE_P50_MS ms, p99 $LAT_WRITE_P99_MS ms; one IPVS poll $LAT_POLL_MEAN_MS ms;"
		echo "    ${LAT_PARTIAL_SYNCS:-?} partial + ${LAT_FULL_SYNCS:-?} full syncs during the phase (per change: guest/latency.csv)"
	fi
	echo "  SIGTERM to exit: ${STOP_SECS:-?} s; whole guest run ${R[guest.secs]} s; host load ${R[guest.load]} -> ${R[guest.load_end]}, guest load $GUEST_LOAD -> ${GUEST_LOAD_END:-?}"
	echo "  director log: $(grep -c . "$DIR/guest/director.log" 2>/dev/null || echo 0) lines, $(grep -ciE 'level=(error|warn)|"level":"(error|warn)"' "$DIR/guest/director.log" 2>/dev/null || true) at warn/error level"
fi
if [[ $GUEST == failed ]]; then
	echo
	echo "guest (b): FAILED, see $DIR/guest/ (output.log, director.log, kubelat.log, console.log)"
fi
echo
echo "logs: $DIR (ravel: idle.log, realserver.log, guest/director.log; guest/kubelat.log, guest/latency.csv; API server: kapi-log/)"
[[ $GUEST != failed ]] || exit 1
