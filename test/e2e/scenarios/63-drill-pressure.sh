#!/usr/bin/env bash
# Drill: a director under disk and memory pressure. Nothing already programmed is lost.
#   1 full filesystem: the config lives on a full 8 KiB tmpfs. ravel runs from it; an edit
#     written there is cut short by ENOSPC (the editor's write fails half way), and ravel
#     refuses the cut file with its position, the kernel unchanged; once there is room and
#     the edit is whole, it applies.
#   2 /run read-only (a private mount namespace): ravel starts, adopts the running state with
#     an empty plan, and reloads.
#   3 a 64 MiB memory limit (cgroup v2 memory.max, swap 0): ravel programs 1,000 services
#     (4 destinations each) within it, no OOM kill; then the limit drops far below what it
#     uses, the kernel's OOM killer ends ravel, and every service and VIP stays; a restart
#     without the limit adopts them with an empty plan.
#
# Topology: topo_dr, traffic through the first VIP in steps 1 and 2.
. "$(dirname "$0")/../lib.sh"

topo_dr
rs_serve "$VIP" 80 rs1 rs2

# cfg_small W1: one service, rs1 at weight W1, rs2 at 1; padded with a comment of PAD bytes
# before the services (so a write cut at 4 KiB ends inside them).
cfg_small() {
	local w1=$1 pad=${2:-0}
	cat <<-EOF
		apiVersion: ravel/v1
		kind: ClusterConfig
		node: {name: director, role: director, interface: eth0, vipInterface: ravel0}
		vipPool: [$VIP]
		defaults:
		  ipvs: {scheduler: wrr, forwarding: dr}
		resync: 2s
		coordinator: {ports: [44463]}
		metrics: {listen: "127.0.0.1:10263"}
	EOF
	if ((pad > 0)); then printf '# %s\n' "$(head -c "$pad" /dev/zero | tr '\0' 'x')"; fi
	cat <<-EOF
		services:
		  - name: web
		    vip: $VIP
		    port: 80
		    backends:
		      - {address: $RS1_IP, weight: $w1}
		      - {address: $RS2_IP, weight: 1}
	EOF
}
weights_are() { [[ $(ipvs_dest director "$VIP:80" "$RS1_IP:80") == "Route $1" && $(ipvs_dest director "$VIP:80" "$RS2_IP:80") == "Route 1" ]]; }
reloads() { metric director 127.0.0.1:10263 "ravel_config_reloads_total{result=\"$1\",trigger=\"file\"}"; }

# --- 1: the config on a full filesystem ----------------------------------------------------
full=$(mktemp -d /tmp/ravel-e2e-63-full.XXXXXX)
mount -t tmpfs -o size=8k tmpfs "$full"
cfg_small 3 >"$full/ravel.yaml"
dd if=/dev/zero of="$full/fill" bs=1k 2>/dev/null || true # until ENOSPC: the filesystem is full
log "filesystem for the config: $(df -k "$full" | awk 'NR == 2 { print $2 " KiB, " $4 " KiB free" }')"
ravel_start director ravel1 "$full/ravel.yaml"
wait_for 60 "ravel programs $VIP:80 (3, 1)" weights_are 3
wait_for 30 "ravel binds $VIP" vip_bound director "$VIP"
before=$(in_ns director ipvsadm -Sn)
wait_for 20 "metrics answer" reloads invalid
err0=$(reloads invalid)
# The edit: weight 5, padded so it needs two pages; the truncate frees the only page it had,
# so the first 4 KiB land and the rest fails with ENOSPC. The padding puts that cut inside the
# service's VIP ("vip: 10.0"), so the cut file is plainly wrong, not a shorter valid config.
cfg_small 5 1 >"$SCENARIO_DIR/edit.yaml"
probe=$(<"$SCENARIO_DIR/edit.yaml")
head=${probe%%"    vip: $VIP"*}
cut="    vip: 10.0"
pad=$((4096 - ${#head} - ${#cut} + 1))
cfg_small 5 "$pad" >"$SCENARIO_DIR/edit.yaml"
if printf '%s' "$(<"$SCENARIO_DIR/edit.yaml")" >"$full/ravel.yaml" 2>"$SCENARIO_DIR/write.err"; then
	fail "the edit was written whole on a full filesystem: the drill tests nothing"
else
	pass "the editor's write failed: $(<"$SCENARIO_DIR/write.err")"
fi
log "the cut file: $(wc -c <"$full/ravel.yaml") of $(wc -c <"$SCENARIO_DIR/edit.yaml") bytes"
refused() { (($(reloads invalid) > err0)); }
wait_for 20 "ravel refuses the cut file (ravel_config_reloads_total{result=invalid})" refused
if grep -q 'config reload refused; the previous config keeps running' "$SCENARIO_DIR/ravel1.log"; then
	pass "ravel says it refused the reload and keeps the previous config"
else
	fail "no 'config reload refused' in the log"
fi
finding=$(grep -E 'msg="config finding".*ravel\.yaml:[0-9]+:[0-9]+: services\[0\]\.vip' "$SCENARIO_DIR/ravel1.log" | tail -n 1 || true)
if [[ -n $finding ]]; then
	pass "the finding names the file, line, column and field: ${finding#*finding=}"
else
	fail "no finding with file:line:col for services[0].vip in the log"
fi
nap_end=$((SECONDS + 3))
while ((SECONDS < nap_end)); do sleep 1; done # a resync or two on the refused file
assert_eq "the kernel is unchanged by the cut file" "$before" "$(in_ns director ipvsadm -Sn)"
assert_eq "the VIP stays bound" 0 "$(vip_bound director "$VIP" && echo 0 || echo 1)"
out=$(hit client "http://$VIP/" 8) || fail "requests after the cut edit failed: $out"
rm -f "$full/fill" # room again (a page: the 8 KiB hold the whole edit, not a copy beside it)
cp "$SCENARIO_DIR/edit.yaml" "$full/ravel.yaml"
wait_for 20 "the whole edit applies once there is room (weight 5)" weights_are 5
ravel_stop "$RAVEL_PID"
umount "$full"

# --- 2: /run read-only ---------------------------------------------------------------------
cfg_small 5 >"$SCENARIO_DIR/ravel.yaml"
# A private mount namespace where /run is a read-only bind of itself (the per-mount ro flag;
# a remount of the tmpfs itself would make /run read-only for the whole guest). --rbind: the
# results share is mounted under /run here and must stay visible (and writable); a write to
# /run itself must fail, or the shell exits 97 and the check below fails.
bg director ravel2 unshare -m --propagation private sh -c \
	'mount --rbind /run /run && mount -o remount,bind,ro /run && ! touch /run/.rw-probe 2>/dev/null || exit 97; exec "$0" run --config "$1"' \
	"$RAVEL_BIN" "$SCENARIO_DIR/ravel.yaml"
RAVEL_PID=$BG_PID
wait_for 60 "ravel with /run read-only answers /readyz" in_ns director curl -fsS --max-time 3 http://127.0.0.1:10263/readyz ||
	fail "ravel with /run read-only is not ready: $(tail -n 5 "$SCENARIO_DIR/ravel2.log")"
plan=$(awk -F'summary=' '/msg="applying plan"/ { print $2; exit }' "$SCENARIO_DIR/ravel2.log")
assert_eq "with /run read-only ravel adopts the running state (no plan applied)" "" "$plan"
out=$(hit client "http://$VIP/" 8) || fail "requests with /run read-only failed: $out"
cfg_small 2 >"$SCENARIO_DIR/ravel.yaml.new" && mv -f "$SCENARIO_DIR/ravel.yaml.new" "$SCENARIO_DIR/ravel.yaml"
wait_for 20 "a reload applies with /run read-only (weight 2)" weights_are 2
if grep -qiE 'read-only file system' "$SCENARIO_DIR/ravel2.log"; then
	log "ravel said (read-only /run): $(grep -iE 'read-only file system' "$SCENARIO_DIR/ravel2.log" | head -n 2)"
fi
ravel_stop "$RAVEL_PID"

# --- 3: 64 MiB memory limit ----------------------------------------------------------------
CG=/sys/fs/cgroup/ravel-e2e-63
[[ -e /sys/fs/cgroup/cgroup.controllers ]] || die "no cgroup v2 in the guest"
grep -qw memory /sys/fs/cgroup/cgroup.controllers || die "no memory controller in the guest's cgroup v2"
echo +memory >/sys/fs/cgroup/cgroup.subtree_control
mkdir -p "$CG"
echo 64M >"$CG/memory.max"
echo 0 >"$CG/memory.swap.max" 2>/dev/null || true
big=$SCENARIO_DIR/big.yaml
{
	cat <<-EOF
		apiVersion: ravel/v1
		kind: ClusterConfig
		node: {name: director, role: director, interface: eth0, vipInterface: ravel0}
		vipPool: [$VIP, 10.0.0.101, 10.0.0.102, 10.0.0.103]
		defaults:
		  ipvs: {scheduler: wrr, forwarding: dr}
		resync: 10s
		coordinator: {ports: [44463]}
		metrics: {listen: "127.0.0.1:10263"}
		services:
	EOF
	for v in 100 101 102 103; do
		for ((p = 2000; p < 2250; p++)); do
			printf '  - {name: m-%d-%d, vip: 10.0.0.%d, port: %d, backends: [{address: %s}, {address: %s}, {address: 10.0.0.13}, {address: 10.0.0.14}]}\n' \
				"$v" "$p" "$v" "$p" "$RS1_IP" "$RS2_IP"
		done
	done
	echo "  - {name: web, vip: $VIP, port: 80, backends: [{address: $RS1_IP, weight: 2}, {address: $RS2_IP}]}"
} >"$big"
"$RAVEL_BIN" config validate "$big" >/dev/null || die "big.yaml: $("$RAVEL_BIN" config validate "$big" 2>&1 | head -n 3)"
services() { in_ns director awk '$1 == "TCP" { n++ } END { print n + 0 }' /proc/net/ip_vs; }
# The shell joins the cgroup, then becomes ravel through ip netns exec (both exec): ravel and
# only ravel is in it. It joins from the root namespace: ip netns exec mounts a sysfs of its
# own, without /sys/fs/cgroup.
sh -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec director "$1" run --config "$2"' \
	"$CG" "$RAVEL_BIN" "$big" >"$SCENARIO_DIR/ravel3.log" 2>&1 &
RAVEL_PID=$!
_E2E_PIDS+=("$RAVEL_PID")
ready() { in_ns director curl -fsS --max-time 3 http://127.0.0.1:10263/readyz >/dev/null; }
wait_for 240 "1,001 services programmed under memory.max=64M" ready || fail "not ready under 64 MiB: $(tail -n 5 "$SCENARIO_DIR/ravel3.log")"
assert_eq "services in the kernel" 1001 "$(services)"
peak=$(cat "$CG/memory.peak" 2>/dev/null || echo "?")
log "cgroup memory.peak $peak bytes, memory.current $(cat "$CG/memory.current") bytes"
assert_eq "no OOM kill under 64 MiB" 0 "$(awk '$1 == "oom_kill" { print $2 }' "$CG/memory.events")"
before=$(in_ns director ipvsadm -Sn | sort)
# Now far less than it uses: the OOM killer ends ravel, which gets no chance to clean up.
echo 4M >"$CG/memory.max"
gone() { ! kill -0 "$RAVEL_PID" 2>/dev/null; }
wait_for 60 "the OOM killer ends ravel" gone || die "ravel survived memory.max=4M"
wait "$RAVEL_PID" 2>/dev/null || true
assert_ge "memory.events oom_kill" 1 "$(awk '$1 == "oom_kill" { print $2 }' "$CG/memory.events")"
after=$(in_ns director ipvsadm -Sn | sort)
if [[ $after == "$before" ]]; then
	pass "every service and destination stays after the OOM kill ($(wc -l <<<"$after") lines of ipvsadm -Sn, identical)"
else
	fail "the IPVS table changed after the OOM kill: $(wc -l <<<"$before") lines of ipvsadm -Sn before, $(wc -l <<<"$after") after"
fi
lost=
for v in "$VIP" 10.0.0.101 10.0.0.102 10.0.0.103; do
	vip_bound director "$v" || lost+=" $v"
done
assert_eq "VIPs lost after the OOM kill" "" "$lost"
out=$(hit client "http://$VIP/" 8) || fail "requests after the OOM kill failed: $out"
rmdir "$CG" 2>/dev/null || true
ravel_start director ravel4 "$big"
wait_for 240 "the restart without a limit is ready" ready
plan=$(awk -F'summary=' '/msg="applying plan"/ { print $2; exit }' "$SCENARIO_DIR/ravel4.log")
assert_eq "the restart adopts the state (no plan applied)" "" "$plan"
ravel_stop "$RAVEL_PID" 30
