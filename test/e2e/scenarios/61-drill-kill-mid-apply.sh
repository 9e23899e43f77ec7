#!/usr/bin/env bash
# Drill: ravel killed with SIGKILL in the middle of programming the kernel, then started again.
#   1 a director with 1,000 static services (10 VIPs x 100 ports, 4 destinations each) is
#     killed (kill -9, by a watcher in its namespace following its log) while its first
#     plan is part applied; started again, it converges by diff: its first plan adds only what
#     is missing and deletes nothing, and the kernel then holds exactly the configured table;
#   2 with every VIP bound, a reload adds 1,000 services; ravel is killed half way through that
#     plan and started again on the new file: exactly the 2,000 services, and no VIP ever left
#     ravel0 (ip monitor address, running from before the first start, saw no deletion);
#   a foreign IPVS service and its destination are untouched throughout.
#
# Topology: topo_dr (client, director, rs1, rs2 on one segment); no traffic: the claim is
# about the table.
. "$(dirname "$0")/../lib.sh"

FOREIGN_VIP=10.0.0.200
NVIP=10 PORTS=100 PORT0=1000 MORE=100 # phase 2 adds ports PORT0+PORTS .. +MORE-1 on every VIP
DESTS=(10.0.0.11 10.0.0.12 10.0.0.13 10.0.0.14)
topo_dr
in_ns director ipvsadm -A -t "$FOREIGN_VIP:8080" -s rr
in_ns director ipvsadm -a -t "$FOREIGN_VIP:8080" -r "$RS1_IP:8080" -g -w 7
foreign_svc() { in_ns director ipvsadm -Sn | grep -F -- "$FOREIGN_VIP:8080" | sort; }
foreign_before=$(foreign_svc)

vips=()
for ((i = 0; i < NVIP; i++)); do vips+=("10.0.0.$((100 + i))"); done

# config FILE NPORTS: the config with NPORTS ports on every VIP.
config() {
	local file=$1 nports=$2 v p d
	{
		cat <<-EOF
			apiVersion: ravel/v1
			kind: ClusterConfig
			node: {name: director, role: director, interface: eth0, vipInterface: ravel0}
			vipPool: [$(IFS=,; echo "${vips[*]}")]
			defaults:
			  ipvs: {scheduler: wrr, forwarding: dr}
			resync: 60s
			coordinator: {ports: [44461]}
			metrics: {listen: ""}
			services:
		EOF
		for v in "${vips[@]}"; do
			for ((p = PORT0; p < PORT0 + nports; p++)); do
				printf '  - name: s-%s-%d\n    vip: %s\n    port: %d\n    backends:\n' "${v##*.}" "$p" "$v" "$p"
				for d in "${DESTS[@]}"; do printf '      - {address: %s, weight: 1}\n' "$d"; done
			done
		done
	} >"$file"
	"$RAVEL_BIN" config validate "$file" >/dev/null 2>"$file.validate" ||
		die "ravel config validate $file: $(cat "$file.validate")"
}
# expected NPORTS: the owned part of 'ipvsadm -Sn' the config with NPORTS ports means, sorted.
expected() {
	local v p d
	for v in "${vips[@]}"; do
		for ((p = PORT0; p < PORT0 + $1; p++)); do
			echo "-A -t $v:$p -s wrr"
			for d in "${DESTS[@]}"; do echo "-a -t $v:$p -r $d:$p -g -w 1"; done
		done
	done | sort
}
owned_table() { in_ns director ipvsadm -Sn | grep -vF -- "$FOREIGN_VIP:" | sort; }
# table_is NPORTS: the owned table is exactly the config's; the difference in $SCENARIO_DIR/diff.
# (Files, not <(...): the guest's /dev has no /dev/fd for process substitution.)
table_is() {
	expected "$1" >"$SCENARIO_DIR/want"
	owned_table >"$SCENARIO_DIR/got"
	diff "$SCENARIO_DIR/want" "$SCENARIO_DIR/got" >"$SCENARIO_DIR/diff"
}

# killer LOG N NAP: a watcher in the director's namespace that kill -9s ravel NAP seconds after
# ravel's log LOG has its N-th "applying plan" line (logged just before the kernel is written;
# reading thousands of /proc lines per poll is too slow under emulation to catch a short plan,
# and since IPVS changes go 256 to a netlink write a plan of 1,000 services is all written
# before a count of services in /proc/net/ip_vs reaches a tenth of them). It starts BEFORE
# ravel (a process start takes seconds here, longer than ravel needs for a plan) and waits for
# ravel's PID in $SCENARIO_DIR/victim (killer_arm). Bash builtins only: a read costs no
# process. It writes $SCENARIO_DIR/killed BEFORE the kill: the scenario reads that file as soon
# as ravel is dead, and a file written after the kill raced that read (a CI run failed on the
# missing file).
NAPFIFO=$(mktemp -u /tmp/ravel-e2e-61.XXXXXX)
mkfifo "$NAPFIFO"
killer() {
	local logf=$1 nth=$2 nap=$3
	rm -f "$SCENARIO_DIR/killed" "$SCENARIO_DIR/victim" "$SCENARIO_DIR/killer.up"
	bg director killer bash -c '
		dir=$1 logf=$3 nth=$4 nap=$5
		exec 3<>"$2" # read -t on a fifo nobody writes: a nap without a process
		: >"$dir/killer.up"
		until [[ -s $dir/victim ]]; do read -r -t 0.01 -u 3 || :; done
		pid=$(<"$dir/victim")
		while kill -0 "$pid" 2>/dev/null; do
			n=0
			if [[ -e $logf ]]; then
				while IFS= read -r l; do [[ $l != *"applying plan"* ]] || n=$((n + 1)); done <"$logf"
			fi
			if ((n >= nth)); then read -r -t "$nap" -u 3 || :; echo "plan $n" >"$dir/killed"; kill -9 "$pid"; exit 0; fi
			read -r -t 0.01 -u 3 || :
		done' _ "$SCENARIO_DIR" "$NAPFIFO" "$logf" "$nth" "$nap"
	wait_for 60 "the killer watches" test -e "$SCENARIO_DIR/killer.up" || die "the killer did not start"
}
killer_arm() { echo "$RAVEL_PID" >"$SCENARIO_DIR/victim"; }
# services_now: TCP services in the director's table (the foreign one included).
services_now() { in_ns director awk '$1 == "TCP" { n++ } END { print n + 0 }' /proc/net/ip_vs; }
# dests_now: destinations in the director's table (the foreign one included; not the header).
dests_now() { in_ns director awk '$1 == "->" && $2 != "RemoteAddress:Port" { n++ } END { print n + 0 }' /proc/net/ip_vs; }
all_vips_bound() {
	local v
	for v in "${vips[@]}"; do vip_bound director "$v" || return 1; done
}
# wait_dead PID: until the process is gone (killed by the watcher).
wait_dead() { ! kill -0 "$1" 2>/dev/null; }
# first_plan LOG: the summary of the first 'applying plan' line of a ravel log.
first_plan() { awk -F'summary=' '/msg="applying plan"/ { print $2; exit }' "$1"; }
plan_count() { # SUMMARY KIND: the count of KIND in a plan summary (0 if absent)
	awk -v k="$2" -F', ' '{ for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); split($i, a, " "); if (a[2] == k) print a[1] } }' <<<"$1" | awk '{ s += $1 } END { print s + 0 }'
}

# Every address added to or removed from any device of the director, from before ravel starts.
bg director addrmon ip -ts monitor address

# --- 1: killed in the first plan -----------------------------------------------------------
total1=$((NVIP * PORTS))
config "$SCENARIO_DIR/ravel1.yaml" "$PORTS"
# 100 ms into the first plan: its 5,000 changes take about 0.4 s in the guest.
killer "$SCENARIO_DIR/ravel1.log" 1 0.1
ravel_start director ravel1 "$SCENARIO_DIR/ravel1.yaml"
killer_arm
wait_for 120 "ravel killed by the watcher" wait_dead "$RAVEL_PID" || die "ravel was not killed"
wait "$RAVEL_PID" 2>/dev/null || true
# A plan adds every service before any destination.
n1=$(($(services_now) - 1)) d1=$(($(dests_now) - 1)) dtotal1=$((total1 * ${#DESTS[@]}))
log "killed: $n1 services and $d1 destinations in the table after it died"
if ((n1 + d1 > 0 && (n1 < total1 || d1 < dtotal1))); then
	pass "killed mid-plan: $n1 of $total1 services, $d1 of $dtotal1 destinations programmed"
else
	fail "the kill did not land mid-plan: $n1 of $total1 services, $d1 of $dtotal1 destinations programmed"
fi
assert_eq "no VIP bound yet (bind-vip comes last in a plan)" 0 "$(ip -n director -4 -o addr show dev ravel0 2>/dev/null | grep -c ' inet 10\.0\.0\.1[0-9][0-9]/32 ' || true)"

ravel_start director ravel2 "$SCENARIO_DIR/ravel1.yaml"
wait_for 120 "the table after the restart is the config" table_is "$PORTS" || true
wait_for 60 "every VIP bound" all_vips_bound ||
	fail "VIPs not bound after the restart"
plan=$(first_plan "$SCENARIO_DIR/ravel2.log")
log "first plan after the restart: $plan"
assert_eq "the restart's plan adds only the missing services" "$((total1 - n1))" "$(plan_count "$plan" add-service)"
assert_eq "the restart's plan adds only the missing destinations" "$((dtotal1 - d1))" "$(plan_count "$plan" add-destination)"
assert_eq "the restart's plan deletes no service" 0 "$(plan_count "$plan" delete-service)"
assert_eq "the restart's plan deletes no destination" 0 "$(plan_count "$plan" delete-destination)"
if table_is "$PORTS"; then
	pass "after the restart the table is exactly the config ($total1 services, $((total1 * ${#DESTS[@]})) destinations)"
else
	die "the table differs from the config after the restart: $(grep -c '^[<>]' "$SCENARIO_DIR/diff" || true) lines; $(head -n 6 "$SCENARIO_DIR/diff")"
fi

# --- 2: killed in a reload's plan, VIPs bound --------------------------------------------
total2=$((NVIP * (PORTS + MORE)))
config "$SCENARIO_DIR/ravel2.yaml" $((PORTS + MORE))
# The reload's plan is ravel2's second 'applying plan' (the first is its start-up sync).
killer "$SCENARIO_DIR/ravel2.log" 2 0.1
killer_arm
cp "$SCENARIO_DIR/ravel2.yaml" "$SCENARIO_DIR/ravel1.yaml.new" && mv -f "$SCENARIO_DIR/ravel1.yaml.new" "$SCENARIO_DIR/ravel1.yaml"
wait_for 120 "ravel killed by the watcher during the reload's plan" wait_dead "$RAVEL_PID" || die "ravel was not killed"
wait "$RAVEL_PID" 2>/dev/null || true
# A plan adds every service before any destination: a kill late in the plan leaves all the
# services and part of the destinations (a CI run: 2,000 services, 20 of 4,000 new ones).
n2=$(($(services_now) - 1)) d2=$(($(dests_now) - 1)) dtotal2=$((total2 * ${#DESTS[@]}))
if ((n2 > total1 && (n2 < total2 || d2 < dtotal2))); then
	pass "killed mid-plan of the reload: $n2 of $total2 services, $d2 of $dtotal2 destinations programmed"
else
	fail "the kill did not land mid-plan of the reload: $n2 of $total2 services, $d2 of $dtotal2 destinations programmed"
fi
ravel_start director ravel3 "$SCENARIO_DIR/ravel1.yaml"
wait_for 120 "the table after the second restart is the new config" table_is $((PORTS + MORE)) || true
plan=$(first_plan "$SCENARIO_DIR/ravel3.log")
log "first plan after the second restart: $plan"
assert_eq "the second restart's plan adds only the missing services" "$((total2 - n2))" "$(plan_count "$plan" add-service)"
assert_eq "the second restart's plan adds only the missing destinations" "$((dtotal2 - d2))" "$(plan_count "$plan" add-destination)"
assert_eq "the second restart's plan deletes nothing" 0 "$(($(plan_count "$plan" delete-service) + $(plan_count "$plan" unbind-vip)))"
if table_is $((PORTS + MORE)); then
	pass "after the second restart the table is exactly the new config ($total2 services)"
else
	fail "the table differs from the new config: $(grep -c '^[<>]' "$SCENARIO_DIR/diff" || true) lines; $(head -n 6 "$SCENARIO_DIR/diff")"
fi
ravel_stop "$RAVEL_PID" 30

# No VIP left ravel0 once bound: ip monitor prints "Deleted ..." for every address removed.
deleted=$(grep -E '^(\[[^]]*\] *)?Deleted .* inet 10\.0\.0\.1[0-9][0-9]/32' "$SCENARIO_DIR/addrmon.log" || true)
added=$(grep -cE ' inet 10\.0\.0\.1[0-9][0-9]/32 .*ravel0' "$SCENARIO_DIR/addrmon.log" || true)
assert_ge "ip monitor saw the VIPs bound" "$NVIP" "$added"
assert_eq "no VIP ever removed from ravel0 (ip monitor)" "" "$deleted"
assert_eq "foreign IPVS service untouched" "$foreign_before" "$(foreign_svc)"
