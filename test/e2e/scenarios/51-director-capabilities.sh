#!/usr/bin/env bash
# The systemd unit's privileges, on the real kernel: systemd/ravel.service runs ravel as root
# with only the capabilities of its CapabilityBoundingSet= line (CAP_NET_ADMIN CAP_NET_RAW),
# NoNewPrivileges, and `modprobe -a ip_vs` run with full privileges before the daemon
# (ExecStartPre=-+). Its comments claim that is all the daemon needs. This scenario does what
# the unit does (the modprobe as full root, then `ravel run` under setpriv with the unit's
# bounding set, no inheritable caps, no_new_privs) and shows every kernel operation works:
#
#   director: IPVS over netlink (a DR service, wrr 3:1; a tunnel service with `sh`, whose
#             scheduler module is not loaded yet), its dummy vipInterface created from nothing
#             (the dummy module is unloaded first: the kernel's autoload on ravel's behalf),
#             ipvsSysctls written, gratuitous ARP on a raw socket (seen by a neighbour),
#             metrics / readyz / status;
#   realserver (rs1): tunl0 created (ipip unloaded first: autoloaded on its behalf), the VIPs
#             on lo, ARP and rp_filter sysctls, its iptables chains;
#   real TCP through both VIPs answered by both realservers.
#
# Negative control: the same director under a bounding set without net_admin programs nothing
# (the kernel answers EPERM), so the setpriv restriction is real and the test can fail.
#
#   client 10.0.0.10 (node.gateway) --- lan 10.0.0.0/24 --- director 10.0.0.2 (VIPs on ravel0)
#                                          |        \
#                                    rs1 10.0.0.11   rs2 10.0.0.12   (VIPs on lo; tunl0)
#   VIP 10.0.0.100:80 DR wrr 3:1, VIP2 10.0.0.101:80 tunnel sh (sh-port) 1:1
. "$(dirname "$0")/../lib.sh"

need_ravel

# --- the unit's capabilities ----------------------------------------------------------------
UNIT=$E2E_REPO/systemd/ravel.service
[[ -r $UNIT ]] || die "no unit file at $UNIT"
# (no process substitution: the guest has no /dev/fd)
cap_raw=$(grep -E '^[[:space:]]*CapabilityBoundingSet=' "$UNIT" || true)
cap_lines=()
[[ -z $cap_raw ]] || mapfile -t cap_lines <<<"$cap_raw"
((${#cap_lines[@]} == 1)) || die "want exactly one CapabilityBoundingSet= line in $UNIT, found ${#cap_lines[@]}"
cap_value=${cap_lines[0]#*=}
[[ $cap_value != *'~'* ]] || die "CapabilityBoundingSet= is inverted (~) in $UNIT: this scenario reads a plain list"
read -ra UNIT_CAPS <<<"$cap_value"
((${#UNIT_CAPS[@]} > 0)) || die "CapabilityBoundingSet= of $UNIT is empty"

# linux/capability.h, in bit order.
CAP_NAMES=(chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap
	linux_immutable net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner
	sys_module sys_rawio sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice
	sys_resource sys_time sys_tty_config mknod lease audit_write audit_control setfcap
	mac_override mac_admin syslog wake_alarm block_suspend audit_read perfmon bpf
	checkpoint_restore)
cap_bit() {
	local want=$1 i
	for i in "${!CAP_NAMES[@]}"; do [[ ${CAP_NAMES[$i]} == "$want" ]] && { echo "$i"; return 0; }; done
	return 1
}
# caps_of NAME...: the setpriv list (+a,+b) and the 64-bit mask of /proc/PID/status, as
# "LIST MASK"; NAME is lower case without CAP_.
caps_of() {
	local list="" mask=0 c b
	for c in "$@"; do
		b=$(cap_bit "$c") || die "unknown capability '$c'"
		list+=",+$c"
		mask=$((mask | (1 << b)))
	done
	printf '%s %016x\n' "${list#,}" "$mask"
}
unit_caps=()
for c in "${UNIT_CAPS[@]}"; do
	c=${c,,}
	unit_caps+=("${c#cap_}")
done
read -r CAPS CAP_MASK <<<"$(caps_of "${unit_caps[@]}")"
[[ $CAP_MASK =~ ^[0-9a-f]{16}$ ]] || die "cannot map the unit's capabilities (${unit_caps[*]}) to a mask"
log "unit $UNIT: CapabilityBoundingSet=$cap_value -> setpriv $CAPS, mask $CAP_MASK"
# An independent decoding of the mask (libcap), so the table above cannot fool us.
decoded=$(capsh --decode="$CAP_MASK" 2>&1 || true)
log "capsh --decode=$CAP_MASK: $decoded"
for c in "${unit_caps[@]}"; do
	[[ ,${decoded#*=}, == *",cap_$c,"* ]] || fail "capsh does not decode $CAP_MASK to include cap_$c: $decoded"
done
# As systemd would run ExecStart=: bounding set = the unit's, nothing inheritable,
# NoNewPrivileges.
PRIV=(setpriv "--bounding-set=-all,$CAPS" --inh-caps=-all --no-new-privs --)

# The negative control: the unit's set without net_admin.
neg=()
for c in "${unit_caps[@]}"; do [[ $c == net_admin ]] || neg+=("$c"); done
if ((${#neg[@]})); then
	read -r NEG_CAPS NEG_MASK <<<"$(caps_of "${neg[@]}")"
	NEG_BSET="-all,$NEG_CAPS"
else
	NEG_CAPS="" NEG_MASK=0000000000000000 NEG_BSET="-all"
fi

# proc_status PID KEY: a field of /proc/PID/status (no process started).
proc_status() {
	local k v
	while IFS=$':\t ' read -r k v; do
		if [[ $k == "$2" ]]; then
			echo "$v"
			return 0
		fi
	done <"/proc/$1/status"
	return 1
}
proc_comm() { cat "/proc/$1/comm" 2>/dev/null || true; }

# assert_privs NAME PID MASK: the process runs ravel with exactly MASK, nothing inheritable or
# ambient, and no_new_privs.
assert_privs() {
	local name=$1 pid=$2 mask=$3
	assert_eq "$name: pid $pid is ravel itself (setpriv and ip netns exec exec'd it)" ravel "$(proc_comm "$pid")"
	assert_eq "$name: CapBnd is exactly the unit's set" "$mask" "$(proc_status "$pid" CapBnd)"
	assert_eq "$name: CapEff" "$mask" "$(proc_status "$pid" CapEff)"
	assert_eq "$name: CapPrm" "$mask" "$(proc_status "$pid" CapPrm)"
	assert_eq "$name: CapInh" 0000000000000000 "$(proc_status "$pid" CapInh)"
	assert_eq "$name: CapAmb" 0000000000000000 "$(proc_status "$pid" CapAmb)"
	assert_eq "$name: NoNewPrivs" 1 "$(proc_status "$pid" NoNewPrivs)"
	assert_eq "$name: runs as root (euid)" 0 "$(proc_status "$pid" Uid | awk '{ print $2 }')"
}

# assert_clean_log NAME FILE: no permission error, no error-level line.
assert_clean_log() {
	local name=$1 file=$2 bad
	bad=$(grep -iE 'operation not permitted|EPERM|permission denied|EACCES' "$file" || true)
	if [[ -z $bad ]]; then pass "$name: no permission error in its log"; else fail "$name: permission errors in its log: $bad"; fi
	bad=$(grep -E '"level":"ERROR"' "$file" || true)
	if [[ -z $bad ]]; then pass "$name: no error-level line in its log"; else fail "$name: error-level lines in its log: $bad"; fi
}

# --- modules: as ExecStartPre, then the ones the kernel must autoload ---------------------
# ExecStartPre=-+/sbin/modprobe -a ip_vs, with full privileges (the guest's modprobe needs the
# module tree of the guest's kernel).
modprobe -d "$E2E_MODROOT" -a ip_vs
[[ -e /sys/module/ip_vs ]] || die "ip_vs not loaded after modprobe -a ip_vs"
pass "ExecStartPre: modprobe -a ip_vs as full root"
# The guest preloads dummy, ipip and every scheduler; unload the ones ravel will ask for, so
# that what loads them again is the kernel on ravel's (capability-restricted) behalf. A
# namespace of the previous scenario may still be going away (and hold ip_vs_sh): retry.
AUTOLOAD=(dummy ip_vs_sh ipip)
unloaded=()
restore_modules() {
	local m
	for m in "${unloaded[@]}"; do
		[[ -e /sys/module/$m ]] || modprobe -d "$E2E_MODROOT" "$m" 2>/dev/null || true
	done
}
# Whatever happens, leave the guest's modules as the suite set them up; then lib.sh's
# clean-up with the scenario's exit status.
_s51_exit() {
	local rc=$?
	trap - ERR
	set +e
	restore_modules
	(exit "$rc") # lib.sh's clean-up reads the status from $?
	_e2e_cleanup
}
trap _s51_exit EXIT
unload() { [[ ! -e /sys/module/$1 ]] || rmmod "$1" 2>/dev/null; [[ ! -e /sys/module/$1 ]]; }
for m in "${AUTOLOAD[@]}"; do
	if [[ -e /sys/module/$m ]]; then
		unloaded+=("$m")
		wait_for 30 "rmmod $m" unload "$m" || die "cannot unload $m: $(grep "^$m " /proc/modules)"
	fi
	if [[ -e /sys/module/$m ]]; then fail "module $m still loaded"; else pass "module $m not loaded before ravel starts"; fi
done
lsmod | grep -E '^(dummy|ipip|ip_vs_sh) ' && fail "lsmod still lists one of ${AUTOLOAD[*]}"

# --- topology ------------------------------------------------------------------------------
topo_dr
VIP2=10.0.0.101
NOCAP_IP=10.0.0.3
mk_ns nocap
mk_link nocap lan "$NOCAP_IP/24"
# rs1 is the realserver ravel prepares: strict reverse-path filtering on all and default (a
# tunl0 made now inherits default), as on a hardened host; ravel must lower both for tunl0.
ns_sysctl rs1 net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1
# Look with a dump, never by name: 'ip link show tunl0' resolves the name through an ioctl,
# and the kernel answers an unknown name by loading the module with alias netdev-tunl0 (ipip)
# for a caller with CAP_NET_ADMIN.
has_link() { ip -n "$1" -o link show | grep -qE "^[0-9]+: $2[:@]"; }
if has_link rs1 tunl0; then fail "rs1 has a tunl0 before ravel (ipip loaded?)"; else pass "no tunl0 in rs1 before ravel"; fi
# rs2 is prepared by hand (its tunl0 once ipip is back, below).
rs_vip rs2 "$VIP"
ip -n rs2 addr add "$VIP2/32" dev lo
rs_serve "" 80 rs1 rs2

cfg=$SCENARIO_DIR/ravel.yaml
ravel_config "$cfg" <<EOF
apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director, role: director, interface: eth0, vipInterface: ravel0, gateway: $CLIENT_IP}
vipPool: [$VIP, $VIP2]
services:
  - name: dr
    vip: $VIP
    port: 80
    ipvs: {scheduler: wrr, forwarding: dr}
    backends:
      - {address: $RS1_IP, weight: 3}
      - {address: $RS2_IP, weight: 1}
  - name: tun
    vip: $VIP2
    port: 80
    ipvs: {scheduler: sh, flags: [sh-port], forwarding: tunnel}
    backends:
      - {address: $RS1_IP}
      - {address: $RS2_IP}
ipvsSysctls: {conntrack: 1, expire_nodest_conn: 1}
arp: {interval: 1s}
resync: 2s
coordinator: {ports: [44451], failoverTimeout: 200ms}
metrics: {listen: "127.0.0.1:10234"}
EOF

# --- the realserver rs1, under the unit's privileges ----------------------------------------
# The same file, as the README says one file can serve both: the role and devices by flag.
if [[ -e /sys/module/ipip ]]; then fail "ipip loaded before rs1's ravel starts"; else pass "ipip still not loaded as rs1's ravel starts"; fi
bg rs1 ravel-rs1 "${PRIV[@]}" "$RAVEL_BIN" run --config "$cfg" --log-format json \
	--role realserver --node-name rs1 --vip-interface lo
RS1_PID=$BG_PID
log "realserver ravel in rs1 (pid $RS1_PID) under ${PRIV[*]}"
wait_for 60 "rs1's ravel ready (ravel status)" in_ns rs1 "$RAVEL_BIN" status --addr 127.0.0.1:10234 ||
	die "rs1's ravel not ready: $(tail -n 20 "$SCENARIO_DIR/ravel-rs1.log")"
rs1_vips() { [[ $(ip -n rs1 -4 -o addr show dev lo | grep -cE " inet ($VIP|$VIP2)/32 ") == 2 ]]; }
wait_for 30 "rs1's ravel binds both VIPs on lo" rs1_vips || true
assert_privs "realserver" "$RS1_PID" "$CAP_MASK"
if [[ -e /sys/module/ipip ]]; then pass "ipip loaded by the kernel for rs1's ravel (rtnl-link-ipip)"; else fail "ipip not loaded"; fi
tunl=$(ip -n rs1 -d link show tunl0 2>&1) || true
echo "$tunl"
if grep -qE '^ +ipip ' <<<"$tunl"; then pass "rs1: tunl0 is an ipip device"; else fail "rs1: no ipip tunl0"; fi
if grep -qE 'tunl0@[A-Za-z0-9]+: <([A-Z_]+,)*UP[,>]' <<<"$tunl"; then pass "rs1: tunl0 is up"; else fail "rs1: tunl0 is not up"; fi
# One process for every sysctl (name = value lines).
rs1_sysctls=$(in_ns rs1 sysctl net.ipv4.conf.tunl0.rp_filter net.ipv4.conf.all.rp_filter \
	net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce net.ipv4.conf.eth0.arp_ignore \
	net.ipv4.conf.eth0.arp_announce 2>&1 | tr '\n' ' ' | sed 's/ $//')
assert_eq "rs1 sysctls set by ravel" \
	"net.ipv4.conf.tunl0.rp_filter = 0 net.ipv4.conf.all.rp_filter = 0 net.ipv4.conf.all.arp_ignore = 1 net.ipv4.conf.all.arp_announce = 2 net.ipv4.conf.eth0.arp_ignore = 1 net.ipv4.conf.eth0.arp_announce = 2" \
	"$rs1_sysctls"
rs1_lo=$(ip -n rs1 -4 -o addr show dev lo)
for v in "$VIP" "$VIP2"; do
	if grep -q " inet $v/32 " <<<"$rs1_lo"; then pass "rs1: $v bound on lo by ravel"; else fail "rs1: $v not on lo: $rs1_lo"; fi
done
rs1_nat=$(in_ns rs1 iptables-save -t nat 2>&1 || true)
if grep -q '^:RAVEL' <<<"$rs1_nat"; then pass "rs1: ravel's iptables chains exist"; else fail "rs1: no RAVEL chain: $rs1_nat"; fi

# rs2 by hand, now that ipip is back (its module init gave every namespace a tunl0).
ip -n rs2 link set tunl0 up
ns_sysctl rs2 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tunl0.rp_filter=0

# --- the director, under the unit's privileges --------------------------------------------
director_mac=$(ip -n director -o link show eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "link/ether") print $(i + 1) }')
if has_link director ravel0; then fail "director has a ravel0 before ravel"; else pass "no ravel0 in the director before ravel"; fi
for m in dummy ip_vs_sh; do
	if [[ -e /sys/module/$m ]]; then fail "$m loaded before the director starts"; else pass "$m still not loaded as the director starts"; fi
done
neigh_mac() { ip -n client neigh show "$1" dev eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'; }
assert_eq "client's ARP entry for $VIP before the director starts" "" "$(neigh_mac "$VIP")"

bg director ravel "${PRIV[@]}" "$RAVEL_BIN" run --config "$cfg" --log-format json
RAVEL_PID=$BG_PID
log "director ravel (pid $RAVEL_PID) under ${PRIV[*]}"
wait_for 60 "director ready (ravel status)" in_ns director "$RAVEL_BIN" status --addr 127.0.0.1:10234 ||
	die "director not ready: $(tail -n 20 "$SCENARIO_DIR/ravel.log")"
assert_privs "director" "$RAVEL_PID" "$CAP_MASK"

# Kernel autoloads on the director's behalf.
if [[ -e /sys/module/dummy ]]; then pass "dummy loaded by the kernel for the director (rtnl-link-dummy)"; else fail "dummy not loaded"; fi
if [[ -e /sys/module/ip_vs_sh ]]; then pass "ip_vs_sh loaded by the kernel for the director's sh service"; else fail "ip_vs_sh not loaded"; fi
lsmod | grep -E '^(dummy|ipip|ip_vs_sh|ip_vs) ' || true

# The negative control (checked at the end) starts now, in a namespace of its own on the lan:
# the same director config under the unit's set WITHOUT net_admin. (Started only now so that
# every module load above is the working director's.)
sed -e 's/name: director,/name: nocap,/' -e 's/^metrics: .*/metrics: {listen: ""}/' "$cfg" >"$SCENARIO_DIR/nocap.yaml"
bg nocap ravel-nocap setpriv "--bounding-set=$NEG_BSET" --inh-caps=-all --no-new-privs -- \
	"$RAVEL_BIN" run --config "$SCENARIO_DIR/nocap.yaml" --log-format json
NOCAP_PID=$BG_PID
log "director without net_admin in nocap (pid $NOCAP_PID), bounding set $NEG_BSET"

# IPVS, exactly.
# (sh-fallback below: ravel always sets it for sh; docs/config.md, "Weight 0 and the schedulers".)
want_ipvs=$(sort <<EOF
-A -t $VIP:80 -s wrr
-a -t $VIP:80 -r $RS1_IP:80 -g -w 3
-a -t $VIP:80 -r $RS2_IP:80 -g -w 1
-A -t $VIP2:80 -s sh -b sh-fallback,sh-port
-a -t $VIP2:80 -r $RS1_IP:80 -i -w 1 --tun-type ipip
-a -t $VIP2:80 -r $RS2_IP:80 -i -w 1 --tun-type ipip
EOF
)
got_ipvs=$(ipvs_save director)
echo "$got_ipvs"
if [[ $got_ipvs == "$want_ipvs" ]]; then pass "IPVS table is exactly the config"; else fail "IPVS table: want
$want_ipvs
got
$got_ipvs"; fi

# The VIPs on the dummy device ravel created.
ravel0=$(ip -n director -d -4 -o addr show dev ravel0 2>&1; ip -n director -d link show ravel0 2>&1) || true
echo "$ravel0"
if grep -qE '^ +dummy ' <<<"$ravel0"; then pass "ravel0 created by ravel, a dummy device"; else fail "ravel0 is not a dummy device"; fi
for v in "$VIP" "$VIP2"; do
	if grep -q " inet $v/32 " <<<"$ravel0"; then pass "$v bound on ravel0"; else fail "$v not bound on ravel0"; fi
done

# ipvsSysctls, in the director's namespace.
assert_eq "ipvsSysctls conntrack, expire_nodest_conn" "1 1" \
	"$(in_ns director cat /proc/sys/net/ipv4/vs/conntrack /proc/sys/net/ipv4/vs/expire_nodest_conn | tr '\n' ' ' | sed 's/ $//')"

# Gratuitous ARP (raw socket): the client learns both VIPs without sending to them.
learned() { [[ $(neigh_mac "$VIP") == "$director_mac" && $(neigh_mac "$VIP2") == "$director_mac" ]]; }
if wait_for 20 "client learns both VIPs' MAC from gratuitous ARP" learned; then
	pass "client learned $VIP and $VIP2 -> $director_mac before any traffic ($(ip -n client neigh show dev eth0 | tr '\n' ';'))"
fi
metrics=$(in_ns director curl -fsS --max-time 5 http://127.0.0.1:10234/metrics || true)
garp_sent=$(awk '$1 == "ravel_garp_sent_total" { print int($2) }' <<<"$metrics")
garp_err=$(awk '$1 == "ravel_garp_errors_total" { print int($2) }' <<<"$metrics")
assert_ge "gratuitous ARPs sent (ravel_garp_sent_total)" 2 "${garp_sent:-}"
assert_eq "gratuitous ARP errors (ravel_garp_errors_total)" 0 "${garp_err:-}"

# Real TCP through both VIPs.
out=$(hit client "http://$VIP/" 40 -c 4 -timeout 3s) || fail "requests through $VIP (DR) failed: $out"
echo "$out"
a=$(hit_count "$out" rs1) b=$(hit_count "$out" rs2)
assert_eq "DR: all 40 answered" 40 "$((a + b))"
assert_ge "DR: rs1 answered" 1 "$a"
assert_ge "DR: rs2 answered" 1 "$b"
assert_ratio "DR: wrr 3:1" "$a" "$b" 3 1.5
out=$(hit client "http://$VIP2/" 40 -c 4 -timeout 3s) || fail "requests through $VIP2 (tunnel) failed: $out"
echo "$out"
a=$(hit_count "$out" rs1) b=$(hit_count "$out" rs2)
assert_eq "tunnel: all 40 answered" 40 "$((a + b))"
assert_ge "tunnel: rs1 answered (via the tunl0 ravel made)" 1 "$a"
assert_ge "tunnel: rs2 answered" 1 "$b"
for rs in rs1 rs2; do
	rx=$(ip -n "$rs" -s link show tunl0 | awk '/RX:/ { getline; print $2; exit }')
	assert_ge "$rs: tunl0 received IPIP packets" 1 "$rx"
done

# Ready, by both ways of asking.
readyz=$(in_ns director curl -sS --max-time 5 -w ' %{http_code}' http://127.0.0.1:10234/readyz 2>&1 || true)
assert_eq "director /readyz" 200 "${readyz##* }"
st=$(in_ns director "$RAVEL_BIN" status --addr 127.0.0.1:10234 2>&1) && rc=0 || rc=$?
echo "$st"
assert_eq "director: ravel status exit code" 0 "$rc"
if grep -qE '^ready +yes' <<<"$st"; then pass "director: ravel status says ready"; else fail "director: ravel status does not say ready"; fi
assert_clean_log director "$SCENARIO_DIR/ravel.log"
assert_clean_log "realserver rs1" "$SCENARIO_DIR/ravel-rs1.log"

# SIGTERM as systemctl stop: both exit 0; the realserver removes its VIPs, still unprivileged.
ravel_stop "$RAVEL_PID"
ravel_stop "$RS1_PID"
rs1_lo=$(ip -n rs1 -4 -o addr show dev lo)
if grep -qE " inet ($VIP|$VIP2)/32 " <<<"$rs1_lo"; then fail "rs1: VIPs left on lo after SIGTERM: $rs1_lo"; else pass "rs1: VIPs removed on SIGTERM"; fi
# (Only permission errors here: a sync the SIGTERM interrupts may log its killed iptables-save.)
bad=$(grep -iE 'operation not permitted|EPERM|permission denied|EACCES' "$SCENARIO_DIR/ravel-rs1.log" || true)
if [[ -z $bad ]]; then pass "realserver rs1: no permission error during its shutdown"; else fail "realserver rs1: permission errors: $bad"; fi
if grep -q 'realserver rules removed on shutdown' "$SCENARIO_DIR/ravel-rs1.log"; then pass "realserver rs1: logged its clean-up"; else fail "realserver rs1: no clean-up logged"; fi

# --- negative control: without net_admin the kernel refuses ---------------------------------
# (started above, once the director was ready)
if wait_for 30 "the kernel's EPERM in the log of the director without net_admin" \
	grep -qi 'operation not permitted' "$SCENARIO_DIR/ravel-nocap.log"; then
	pass "without net_admin: $(grep -i -m1 'operation not permitted' "$SCENARIO_DIR/ravel-nocap.log" | cut -c1-300)"
fi
if kill -0 "$NOCAP_PID" 2>/dev/null && [[ $(proc_comm "$NOCAP_PID") == ravel ]]; then
	assert_eq "negative control: CapBnd without net_admin" "$NEG_MASK" "$(proc_status "$NOCAP_PID" CapBnd)"
	log "the director without net_admin still runs (retrying)"
else
	log "the director without net_admin exited"
fi
if grep -qiE 'IPVS.*operation not permitted|operation not permitted.*IPVS' "$SCENARIO_DIR/ravel-nocap.log"; then
	pass "without net_admin: the IPVS request was refused with EPERM"
else
	fail "without net_admin: no IPVS EPERM in the log"
fi
if grep -q 'needs CAP_NET_ADMIN' "$SCENARIO_DIR/ravel-nocap.log"; then
	pass "without net_admin: the error names the missing capability"
else
	fail "without net_admin: the error does not say that CAP_NET_ADMIN is missing"
fi
assert_eq "without net_admin: no IPVS service programmed" "" "$(ipvs_save nocap)"
if has_link nocap ravel0; then fail "without net_admin: ravel0 was created"; else pass "without net_admin: no ravel0"; fi
kill "$NOCAP_PID" 2>/dev/null || true
wait "$NOCAP_PID" 2>/dev/null && rc=0 || rc=$?
log "the director without net_admin: exit status $rc"
grep -i 'operation not permitted' "$SCENARIO_DIR/ravel-nocap.log" | head -n 5 | cut -c1-400 || true
