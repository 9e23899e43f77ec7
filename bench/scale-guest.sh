#!/usr/bin/env bash
# bench/scale-guest.sh: the guest half of bench/scale.sh; also the e2e correctness check of
# the same path at a small scale (test/e2e/scenarios/29-director-scale-small.sh). Runs in the
# QEMU e2e guest, which has IPVS:
#
#   scale-guest.sh RAVEL VIPS PORTS DESTS RUNS [small-services]
#
# In network namespaces of its own, for VIPS × PORTS static services × DESTS destinations
# (wrr, direct routing, weights 1 to 3):
#   1. `ipvsadm -R` of the set, RUNS times, each in a fresh namespace (the baseline);
#   2. `ravel run` from an empty kernel (a fresh namespace), RUNS times: process start →
#      "first sync done", and the plan's own share (its "applying plan" line → ready);
#   3. the table ravel programmed against ipvsadm's (`ipvsadm -Sn`, sorted): the only thing
#      that makes this script fail;
#   4. with the last ravel still running, one weight edited in the file: the edited file in
#      place → the daemon's "config reloaded" line (file watch, 300 ms debounce, parse, sync),
#      and the reload's own "took"; checked in the kernel;
#   5. a restart adopting the whole table: start → ready, and how many ops its plan had (want
#      none); the peak RSS (VmHWM) of the from-empty run and of the restart;
#   6. with small-services > 0: the same weight edit with that many services (1 VIP), after a
#      from-empty start;
#   7. a kill -9 halfway through a plan from empty, then a start: the table must converge to
#      ipvsadm's (the second thing that makes this script fail).
# Prints "RESULT key value" lines (seconds, KiB) that bench/scale.sh turns into a table.
set -euo pipefail
ravel=$1 vips=$2 ports=$3 dests=$4 runs=$5 small=${6:-0}
ns=ravel-scale
work=$(mktemp -d /tmp/ravel-scale.XXXXXX)
say() { echo "scale: $*" >&2; }
result() { echo "RESULT $1 $2"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
inns() { ip netns exec "$ns" "$@"; }
# logtime MSG FILE: the time (epoch seconds) of the first JSON log line with msg MSG.
logtime() {
	local t
	t=$(grep -m1 -F "\"msg\":\"$1\"" "$2" | sed -n 's/.*"time":"\([^"]*\)".*/\1/p')
	[[ -n $t ]] && date -d "$t" +%s.%N
}

pid=
cleanup() {
	[[ -z $pid ]] || kill -9 "$pid" 2>/dev/null || true
	ip netns delete "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
# fresh_ns: every run from empty gets a network namespace of its own. Emptying IPVS in place
# (ipvsadm -C) is not a fresh start: the kernel keeps deleted destinations in a per-namespace
# trash list for a while (IP_VS_DEST_TRASH_PERIOD) and every destination added meanwhile is
# looked up in it first (ip_vs_trash_get_dest walks the list), so after clearing 200,000
# destinations the next 200,000 additions ran 3.5 times slower (72 s, then 251 s, for the same
# ipvsadm -R here). The old namespace is deleted, and its IPVS torn down by the kernel in
# the background.
fresh_ns() {
	ip netns delete "$ns" 2>/dev/null || true
	ip netns add "$ns"
	inns ip link set lo up
	inns ip link add eth0 type dummy
	inns ip addr add 10.1.255.254/16 dev eth0
	inns ip link set eth0 up
}
fresh_ns

# --- the set, twice: ipvsadm -R input and a ravel config ---------------------------------
# gen VIPS PORTS NAME: writes $work/NAME.ipvsadm and $work/NAME.yaml.
gen() {
	awk -v vips="$1" -v ports="$2" -v dests="$dests" -v rules="$work/$3.ipvsadm" -v yaml="$work/$3.yaml" 'BEGIN {
		printf "apiVersion: ravel/v1\nkind: ClusterConfig\n" > yaml
		printf "node: {name: bench, role: director, interface: eth0, vipInterface: ravel0}\n" > yaml
		printf "vipPool: [" > yaml
		for (v = 0; v < vips; v++) printf "%s10.100.%d.%d", (v ? ", " : ""), int(v / 250), v % 250 + 1 > yaml
		printf "]\ndefaults: {ipvs: {scheduler: wrr, forwarding: dr}}\nservices:\n" > yaml
		for (v = 0; v < vips; v++) {
			vip = sprintf("10.100.%d.%d", int(v / 250), v % 250 + 1)
			for (p = 0; p < ports; p++) {
				port = 1000 + p
				printf "-A -t %s:%d -s wrr\n", vip, port > rules
				printf "  - {name: s%d-%d, vip: %s, port: %d, backends: [", v, port, vip, port > yaml
				for (d = 1; d <= dests; d++) {
					w = (v + p + d) % 3 + 1
					printf "-a -t %s:%d -r 10.1.%d.%d:%d -g -w %d\n", vip, port, int(d / 250), d % 250, port, w > rules
					printf "%s{address: 10.1.%d.%d, weight: %d}", (d > 1 ? ", " : ""), int(d / 250), d % 250, w > yaml
				}
				printf "]}\n" > yaml
			}
		}
		printf "resync: 1h\nmetrics: {listen: \"\"}\n" > yaml
	}'
}
gen "$vips" "$ports" big
services=$((vips * ports))
say "$services services × $dests destinations ($(wc -l <"$work/big.ipvsadm") ipvsadm lines, $(wc -c <"$work/big.yaml") bytes of config)"
t0=$(now)
"$ravel" config validate "$work/big.yaml" >/dev/null
result "validate_s" "$(elapsed "$t0" "$(now)")"


# --- 1. ipvsadm -R ---------------------------------------------------------------------------
for i in $(seq "$runs"); do
	fresh_ns
	t0=$(now)
	inns ipvsadm -R <"$work/big.ipvsadm"
	t1=$(now)
	result "ipvsadm_restore_s" "$(elapsed "$t0" "$t1")"
	say "ipvsadm -R run $i: $(elapsed "$t0" "$t1") s"
done
inns ipvsadm -Sn | sort >"$work/ipvsadm.table"

# --- 2. ravel from empty ----------------------------------------------------------------------
# start_ravel CONFIG LOG [NAME]: starts ravel in the namespace and waits for its first sync;
# sets pid, t_launch and t_ready. With RAVEL_BENCH_PROFILE=1 and NAME, ravel writes a CPU
# profile of its run to NAME.prof in the guest's results directory ($E2E_OUT, which
# bench/scale.sh keeps as $RAVEL_BENCH_DIR/guest).
start_ravel() {
	local prof=()
	[[ ${RAVEL_BENCH_PROFILE:-} != 1 || -z ${3:-} ]] || prof=(--cpu-profile "$E2E_OUT/$3.prof")
	t_launch=$(now)
	# Not through inns: a backgrounded function is a subshell, and its pid is not ravel's.
	ip netns exec "$ns" "$ravel" run --config "$1" --log-format json "${prof[@]}" >"$2" 2>&1 &
	pid=$!
	until grep -q '"msg":"first sync done: ready"' "$2"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			say "ravel exited:"
			tail -n 20 "$2" >&2
			exit 1
		fi
		sleep 0.2
	done
	t_ready=$(logtime "first sync done: ready" "$2")
}
stop_ravel() {
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}
hwm() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status"; }
for i in $(seq "$runs"); do
	fresh_ns
	log=$work/empty-$i.log
	start_ravel "$work/big.yaml" "$log" "empty-$i"
	t_plan=$(logtime "applying plan" "$log")
	result "ravel_empty_ready_s" "$(elapsed "$t_launch" "$t_ready")"
	plan_s=$(elapsed "$t_plan" "$t_ready")
	result "ravel_empty_plan_s" "$plan_s"
	result "ravel_empty_before_plan_s" "$(elapsed "$t_launch" "$t_plan")"
	say "ravel from empty run $i: ready after $(elapsed "$t_launch" "$t_ready") s (plan $(elapsed "$t_plan" "$t_ready") s)"
	if ((i < runs)); then
		stop_ravel
	fi
done
result "ravel_empty_vmhwm_kib" "$(hwm)"

# --- 3. the same table as ipvsadm's -------------------------------------------------------------
inns ipvsadm -Sn | sort >"$work/ravel.table"
if ! cmp -s "$work/ipvsadm.table" "$work/ravel.table"; then
	say "FAIL: ravel programmed another table than ipvsadm -R (first differences, < ipvsadm > ravel):"
	diff "$work/ipvsadm.table" "$work/ravel.table" | head -n 20 >&2
	exit 1
fi
say "ravel's table equals ipvsadm -R's ($(wc -l <"$work/ravel.table") lines)"
result "table_lines" "$(wc -l <"$work/ravel.table")"

# --- 4. one weight edited ---------------------------------------------------------------------
# edit_weight CONFIG LOG VIP: the first backend of VIP:1000 to weight 9, in place; prints the
# edit → "config reloaded" time and the reload's own took, and checks the kernel.
edit_weight() {
	local t0 t1 took
	# The clock starts once the edited file is in place: sed -i writes a copy and renames it
	# over the file, which is what the file watch sees (writing the copy of a 7 MB file is
	# the editor's time, 0.2 s here, not ravel's).
	sed -i "0,/{address: 10.1.0.1, weight: [0-9]*}/s//{address: 10.1.0.1, weight: 9}/" "$1"
	t0=$(now)
	until grep -q '"msg":"config reloaded"' "$2"; do sleep 0.1; done
	t1=$(logtime "config reloaded" "$2")
	# slog's JSON gives a duration in nanoseconds.
	took=$(grep -m1 -F '"msg":"config reloaded"' "$2" | sed -n 's/.*"took":\([0-9]*\).*/\1/p')
	took=$(awk -v n="${took:-0}" 'BEGIN { printf "%.3f", n / 1e9 }')
	if ! inns ipvsadm -Ln -t "$3:1000" | grep -qE '10\.1\.0\.1:1000 +Route +9 '; then
		say "FAIL: the edited weight is not in the kernel"
		exit 1
	fi
	echo "$(elapsed "$t0" "$t1") $took"
}
# (No process substitution: the guest has no /dev/fd.)
res=$(edit_weight "$work/big.yaml" "$work/empty-$runs.log" 10.100.0.1) || exit 1
read -r e2e took <<<"$res"
result "edit_big_s" "$e2e"
result "edit_big_took_s" "$took"
say "one weight at $services services: $e2e s from the edit to 'config reloaded' (the reload: $took s)"

# --- 5. a restart adopting everything ---------------------------------------------------------
stop_ravel
log=$work/restart.log
start_ravel "$work/big.yaml" "$log" restart
# Where a restart's time goes, from its own log lines (seconds after the launch).
awk -v t0="$t_launch" 'match($0, /"time":"[^"]*"/) && match($0, /"msg":"[^"]*"/) {
	m = substr($0, RSTART + 7, RLENGTH - 8)
	match($0, /"time":"[^"]*"/); ts = substr($0, RSTART + 8, RLENGTH - 9)
	cmd = "date -d \"" ts "\" +%s.%N"; cmd | getline e; close(cmd)
	printf "scale: restart +%.2f s %s\n", e - t0, m
}' "$log" >&2
result "restart_ready_s" "$(elapsed "$t_launch" "$t_ready")"
ops=$({ grep -F '"msg":"applying plan"' "$log" || true; } | sed -n 's/.*"ops":\([0-9]*\).*/\1/p' | head -n1)
result "restart_plan_ops" "${ops:-0}"
result "restart_vmhwm_kib" "$(hwm)"
# Of the resident set now, what is the binary's pages (file-backed) and what is memory.
result "restart_rss_file_kib" "$(awk '$1 == "RssFile:" { print $2 }' "/proc/$pid/status")"
result "restart_rss_anon_kib" "$(awk '$1 == "RssAnon:" { print $2 }' "/proc/$pid/status")"
say "restart adopting $services services: ready after $(elapsed "$t_launch" "$t_ready") s, plan ops ${ops:-0}"
stop_ravel

# --- 6. the same edit with few services ---------------------------------------------------------
if ((small > 0)); then
	gen 1 "$small" small
	fresh_ns
	log=$work/small.log
	start_ravel "$work/small.yaml" "$log"
	res=$(edit_weight "$work/small.yaml" "$log" 10.100.0.1) || exit 1
	read -r e2e took <<<"$res"
	result "edit_small_s" "$e2e"
	result "edit_small_took_s" "$took"
	say "one weight at $small services: $e2e s (the reload: $took s)"
	stop_ravel
fi

# --- 7. kill -9 in the middle of the first plan, then a start ----------------------------------
# The plan from empty is killed about halfway through its batched writes (after half the time
# the plan took in step 2); the next start must read what the kernel holds and converge: the
# same table as ipvsadm's, or the script fails.
gen "$vips" "$ports" big # the file as ipvsadm's set again (step 4 edited a weight)
fresh_ns
log=$work/killed.log
t_launch=$(now)
ip netns exec "$ns" "$ravel" run --config "$work/big.yaml" --log-format json >"$log" 2>&1 &
pid=$!
until grep -q '"msg":"applying plan"' "$log"; do
	kill -0 "$pid" 2>/dev/null || { say "ravel exited before its plan"; tail -n 20 "$log" >&2; exit 1; }
	sleep 0.05
done
sleep "$(awk -v p="$plan_s" 'BEGIN { printf "%.2f", p / 2 }')"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
# Services come first in a plan, then their destinations: count those.
held=$(inns ipvsadm -Sn | grep -c '^-a' || true)
result "killed_dests_held" "$held"
say "kill -9 halfway through the plan: the kernel held $held of $((services * dests)) destinations"
log=$work/after-kill.log
start_ravel "$work/big.yaml" "$log"
result "after_kill_ready_s" "$(elapsed "$t_launch" "$t_ready")"
inns ipvsadm -Sn | sort >"$work/after-kill.table"
if ! cmp -s "$work/ipvsadm.table" "$work/after-kill.table"; then
	say "FAIL: after a kill -9 mid-plan and a start, the table differs from ipvsadm -R's (< ipvsadm > ravel):"
	diff "$work/ipvsadm.table" "$work/after-kill.table" | head -n 20 >&2
	exit 1
fi
say "after the kill and a start: ready in $(elapsed "$t_launch" "$t_ready") s, the table equals ipvsadm -R's"
stop_ravel
