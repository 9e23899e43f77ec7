#!/usr/bin/env bash
# bench/rss-guest.sh: the guest half of bench/rss.sh (case b). Do not run it by hand: rss.sh
# runs it in the QEMU e2e guest (test/e2e/guest/run.sh, E2E_GUEST_NET=user), which has IPVS
# and reaches the host's kube-apiserver at 192.168.76.2.
#
#   rss-guest.sh RAVEL CONFIG NODE METRICS_PORT SERVICES DESTS SETTLE TIMEOUT \
#                [KUBELAT KUBECONFIG NODES CHANGES DEBOUNCE PAUSE LAT_TIMEOUT]
#
# In the guest's root namespace: the RSS of `ravel config validate CONFIG` (baseline), then
# `ravel run --config CONFIG --role director --node-name NODE` until it has converged
# (ravel_virtual_services = SERVICES after its first full sync, no apply error, and ipvsadm
# shows SERVICES services and DESTS destinations), then until the first periodic full resync
# has completed too, then SETTLE more seconds, and reads VmRSS, VmHWM, RssAnon and RssFile.
# With KUBELAT and CHANGES > 0, the latency phase follows: KUBELAT (bench/kubelat) makes
# CHANGES EndpointSlice changes through the API server (KUBECONFIG) and times each until IPVS
# shows it (DEBOUNCE is the config's, printed only; PAUSE the mean pause between changes,
# LAT_TIMEOUT the wait after which a change counts as missing); then the RSS again. Last, how
# long a SIGTERM takes to stop the director. Results go to $E2E_OUT/result (KEY=VALUE lines,
# sourced by rss.sh), the director's log to $E2E_OUT/director.log, kubelat's to
# $E2E_OUT/kubelat.log and one line per change to $E2E_OUT/latency.csv. Exits 1 when the
# director did not converge or exited, or when a change never reached IPVS.
set -euo pipefail
ravel=$1 cfg=$2 node=$3 port=$4 services=$5 dests=$6 settle=$7 timeout=$8
kubelat=${9:-} kubeconfig=${10:-} nodes=${11:-20} changes=${12:-0} debounce=${13:-?} pause=${14:-200ms} lat_timeout=${15:-30s}
out=${E2E_OUT:?not in the e2e guest}
res=$out/result
: >"$res"

say() { echo "rss-guest: $*"; }
put() { echo "$1=$2" >>"$res"; }
kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# scrape prints the director's metrics, nothing while its listener is not up yet (a curl
# failure must not end the script: set -e and pipefail).
scrape() { curl -s --max-time 10 "http://127.0.0.1:$port/metrics" 2>/dev/null || true; }
metric() {
	scrape |
		awk -v m="$1" '$1 == m { v = $2 } END { if (v != "") printf "%d\n", v }'
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

put GUEST_LOAD "\"$(cut -d' ' -f1-3 /proc/loadavg)\""
/usr/bin/time -f %M -o /tmp/validate.maxrss "$ravel" config validate "$cfg" >/dev/null
put VALIDATE_MAXRSS_KB "$(cat /tmp/validate.maxrss)"

pid=
stop() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}
trap stop EXIT

t0=$(now)
"$ravel" run --config "$cfg" --role director --node-name "$node" >"$out/director.log" 2>&1 &
pid=$!
say "ravel run (director) pid $pid: waiting for $services virtual services"
converged=
while (($(awk -v a="$t0" -v b="$(now)" 'BEGIN { print int(b - a) }') < timeout)); do
	kill -0 "$pid" 2>/dev/null || { say "ravel exited:"; tail -n 20 "$out/director.log"; exit 1; }
	vs=$(metric ravel_virtual_services)
	if [[ ${vs:-0} == "$services" ]]; then
		converged=$(now)
		break
	fi
	sleep 2
done
[[ -n $converged ]] || { say "no convergence in ${timeout}s"; tail -n 20 "$out/director.log"; exit 1; }
put CONVERGE_SECS "$(secs "$t0" "$converged")"
put CONVERGED_RSS_KB "$(kb "$pid" VmRSS)"
put CONVERGED_HWM_KB "$(kb "$pid" VmHWM)"
errs=$(metric ravel_apply_errors_total)
put APPLY_ERRORS "${errs:-?}"
ipvs=$(ipvsadm -Ln)
nsvc=$(grep -c '^TCP ' <<<"$ipvs" || true)
ndst=$(grep -c '^  -> [0-9]' <<<"$ipvs" || true)
put IPVS_SERVICES "$nsvc"
put IPVS_DESTS "$ndst"
say "converged after $(secs "$t0" "$converged")s: $nsvc services, $ndst destinations (want $services, $dests), apply errors ${errs:-?}"

# Steady state: after the first periodic full resync (resync: 1m) has completed too, so the
# figure includes what a no-op full sync of the whole table costs.
full_ok() {
	scrape |
		awk '$1 == "ravel_reconcile_total{kind=\"full\",result=\"ok\"}" { v = $2 } END { printf "%d\n", v }'
}
t1=$(now)
while (($(full_ok) < 2)); do
	kill -0 "$pid" 2>/dev/null || { say "ravel exited while waiting for the resync"; exit 1; }
	if (($(awk -v a="$t1" -v b="$(now)" 'BEGIN { print int(b - a) }') >= timeout)); then
		say "no periodic full resync completed in ${timeout}s"
		break
	fi
	say "t+$(secs "$converged" "$(now)")s VmRSS $(kb "$pid" VmRSS) kB VmHWM $(kb "$pid" VmHWM) kB, full syncs $(full_ok)"
	sleep 15
done
put RESYNC_DONE_SECS "$(secs "$converged" "$(now)")"
put FULL_SYNCS "$(full_ok)"
put SYNC_SECONDS_SUM "$(scrape | awk '$1 == "ravel_reconcile_duration_seconds_sum" { print $2 }')"
for ((i = 0; i < settle; i += 10)); do
	sleep 10
	say "settle t+$((i + 10))s VmRSS $(kb "$pid" VmRSS) kB VmHWM $(kb "$pid" VmHWM) kB"
done
put RSS_KB "$(kb "$pid" VmRSS)"
put HWM_KB "$(kb "$pid" VmHWM)"
put RSS_ANON_KB "$(kb "$pid" RssAnon)"
put RSS_FILE_KB "$(kb "$pid" RssFile)"
put HEAP_INUSE_KB "$(($(metric go_memstats_heap_inuse_bytes) / 1024))"
say "steady: VmRSS $(kb "$pid" VmRSS) kB, VmHWM $(kb "$pid" VmHWM) kB, RssAnon $(kb "$pid" RssAnon) kB, RssFile $(kb "$pid" RssFile) kB"

# Latency phase: EndpointSlice changes through the API server, each timed until IPVS shows it.
lat_failed=
if [[ -n $kubelat ]] && ((changes > 0)); then
	syncs() {
		scrape |
			awk -v k="$1" '$1 == "ravel_reconcile_total{kind=\"" k "\",result=\"ok\"}" { v = $2 } END { printf "%d\n", v }'
	}
	p0=$(syncs partial) f0=$(syncs full)
	say "latency phase: $changes EndpointSlice changes, debounce $debounce"
	if ! "$kubelat" -kubeconfig "$kubeconfig" -services "$services" -nodes "$nodes" -self "$node" \
		-changes "$changes" -debounce "$debounce" -pause "$pause" -timeout "$lat_timeout" \
		-result "$res" -csv "$out/latency.csv" 2>&1 | tee "$out/kubelat.log"; then
		say "latency phase FAILED (see kubelat.log)"
		lat_failed=1
	fi
	kill -0 "$pid" 2>/dev/null || { say "ravel exited during the latency phase:"; tail -n 20 "$out/director.log"; exit 1; }
	put LAT_PARTIAL_SYNCS "$(($(syncs partial) - p0))"
	put LAT_FULL_SYNCS "$(($(syncs full) - f0))"
	errs=$(metric ravel_apply_errors_total)
	put LAT_APPLY_ERRORS "${errs:-?}"
	put LAT_RSS_KB "$(kb "$pid" VmRSS)"
	put LAT_HWM_KB "$(kb "$pid" VmHWM)"
	put LAT_RSS_ANON_KB "$(kb "$pid" RssAnon)"
	put LAT_RSS_FILE_KB "$(kb "$pid" RssFile)"
	put LAT_HEAP_INUSE_KB "$(($(metric go_memstats_heap_inuse_bytes) / 1024))"
	say "after the changes: VmRSS $(kb "$pid" VmRSS) kB, VmHWM $(kb "$pid" VmHWM) kB, RssAnon $(kb "$pid" RssAnon) kB, RssFile $(kb "$pid" RssFile) kB"
fi
put GUEST_LOAD_END "\"$(cut -d' ' -f1-3 /proc/loadavg)\""

# How long a SIGTERM takes to stop the director (it is likely inside the next full resync);
# the guest is thrown away, so give up after 30 s.
ts=$(now)
kill -TERM "$pid"
for ((i = 0; i < 300; i++)); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
	put STOP_SECS '">30 (SIGKILL)"'
	kill -KILL "$pid" 2>/dev/null || true
else
	put STOP_SECS "$(secs "$ts" "$(now)")"
fi
wait "$pid" 2>/dev/null || true
pid=
cat "$res"
[[ -z $lat_failed ]]
