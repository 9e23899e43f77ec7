#!/usr/bin/env bash
# 90-systemd-unit: the .deb's unit under a real systemd. The guest boots with systemd as PID 1
# over a writable overlay of a Debian 12 minbase root (test/e2e/run.sh gives this scenario a
# boot of its own), dpkg installs the package there, and the package's own config (a director
# of 10.54.213.247:80 over 10.0.1.5 and 10.0.1.6 by direct routing, gratuitous ARP on eth0)
# runs as an operator would run it:
#   - systemctl start returns only after the first sync (Type=notify): IPVS is programmed
#     when it returns, not a moment later;
#   - the hardening holds in the running process: capabilities NET_ADMIN and NET_RAW only
#     (effective and bounding), no_new_privs, / read-only, /run writable;
#     systemd-analyze security's verdict is kept in the log;
#   - systemctl reload applies an edit; a bad file is refused, the old config keeps running,
#     and systemctl status says why (file:line:column);
#   - systemctl stop leaves the director's IPVS service and VIP in place;
#   - ExecStartPre refuses to start on a broken config, with the finding in the journal, and
#     the kernel state stays; fixed, the next start adopts it;
#   - the same unit runs a realserver (in a network namespace, by a drop-in): VIPs on lo,
#     sysctls, iptables chains and a tunl0 whose ipip module the kernel loads on its behalf,
#     with no permission error, and its clean-up on stop.
#
# e2e-boot: systemd
# e2e-build: make --no-print-directory package >/dev/null
. "$(dirname "$0")/../lib.sh"

[[ $(cat /proc/1/comm) == systemd ]] || die "PID 1 is $(cat /proc/1/comm), not systemd (run through test/e2e/run.sh)"
# The Debian root has no iproute2: the host's own ip, through the host's root at /host. It
# only speaks netlink, so the chroot's missing /proc does not matter.
hip() { chroot /host ip "$@"; }
conf=/etc/ravel/ravel.yaml
vip_hex=0A36D5F7:0050 # 10.54.213.247:80 in /proc/net/ip_vs

# The package's config sends gratuitous ARP on eth0 and routes to 10.0.1.5/.6 there.
hip link add eth0 type dummy
hip addr add 10.0.1.1/24 dev eth0
hip link set eth0 up

debs=("$E2E_REPO"/dist/ravel_*_amd64.deb)
[[ ${#debs[@]} == 1 && -f ${debs[0]} ]] || die "want one dist/ravel_*_amd64.deb (make package), have: ${debs[*]}"
cp "${debs[0]}" /tmp/
dpkg -i "/tmp/${debs[0]##*/}" >"$SCENARIO_DIR/dpkg.log" 2>&1 || die "dpkg -i failed: $(tail -n 5 "$SCENARIO_DIR/dpkg.log")"
log "installed $(dpkg-query -W -f '${Package} ${Version}' ravel)"
systemctl daemon-reload

# ipvs_dests: "ADDR WEIGHT" per destination, sorted, of the VIP's service, from the kernel's own table.
ipvs_dests() {
	awk -v svc="$vip_hex" '$1 == "TCP" { in_svc = ($2 == svc) } in_svc && $1 == "->" { print $2, $4 }' /proc/net/ip_vs | sort
}
prop() { systemctl show -p "$1" --value ravel; }

# --- start: returns after the first sync ---------------------------------------------------
t0=$SECONDS
systemctl start ravel || die "systemctl start ravel failed: $(journalctl -u ravel --no-pager | tail -n 20)"
log "systemctl start returned after $((SECONDS - t0))s"
# Checked at once, with no wait: Type=notify holds start until READY=1, sent after the sync.
assert_eq "IPVS right after systemctl start returned" "0A000105:0050 3 0A000106:0050 1" "$(ipvs_dests | xargs)"
assert_eq "state after start" "active running" "$(prop ActiveState) $(prop SubState)"
assert_eq "status line after start" running "$(prop StatusText)"
if hip -4 addr show dev ravel0 | grep -q 'inet 10.54.213.247/32'; then pass "VIP bound on ravel0"; else fail "VIP not on ravel0: $(hip addr show dev ravel0 2>&1)"; fi

# --- the hardening, in the running process -----------------------------------------------
pid=$(prop MainPID)
st=/proc/$pid/status
# CAP_NET_ADMIN (12) and CAP_NET_RAW (13): 0x3000.
assert_eq "effective capabilities of ravel" 0000000000003000 "$(awk '/^CapEff:/ {print $2}' "$st")"
assert_eq "bounding capabilities of ravel" 0000000000003000 "$(awk '/^CapBnd:/ {print $2}' "$st")"
assert_eq "no_new_privs of ravel" 1 "$(awk '/^NoNewPrivs:/ {print $2}' "$st")"
# mountinfo field 5 is the mount point, field 6 its per-mount options.
mopt() { awk -v m="$1" '$5 == m { o = $6 } END { print o }' "/proc/$pid/mountinfo"; }
[[ $(mopt /) == ro,* ]] && pass "/ is read-only for ravel ($(mopt /))" || fail "/ for ravel: '$(mopt /)', want ro (ProtectSystem=strict)"
[[ $(mopt /run) == rw,* ]] && pass "/run is writable for ravel" || fail "/run for ravel: '$(mopt /run)', want rw (ReadWritePaths=/run)"
if nsenter -t "$pid" -m -- sh -c ': >/etc/ravel/probe' 2>/dev/null; then fail "a write to /etc/ravel succeeded in ravel's mount namespace"; else pass "/etc/ravel is not writable in ravel's mount namespace"; fi
systemd-analyze security ravel --no-pager >"$SCENARIO_DIR/security.txt" 2>&1 || true # exits 0 or the score's level
exposure=$(sed -n 's/.*Overall exposure level for ravel.service: \([0-9.]*\).*/\1/p' "$SCENARIO_DIR/security.txt")
log "systemd-analyze security ravel: $(grep 'Overall exposure' "$SCENARIO_DIR/security.txt")"
[[ -n $exposure ]] && pass "systemd-analyze security rated the unit ($exposure)" || fail "systemd-analyze security: $(tail -n 3 "$SCENARIO_DIR/security.txt")"

# --- reload: an edit applies; a bad file is refused and status says why ------------------------
sed -i 's/{address: 10.0.1.5, weight: 3}/{address: 10.0.1.5, weight: 5}/' "$conf"
systemctl reload ravel
dests_are() { [[ $(ipvs_dests | xargs) == "$1" ]]; }
wait_for 20 "the reloaded weight 5 in IPVS" dests_are "0A000105:0050 5 0A000106:0050 1"
cp "$conf" /tmp/good.yaml
# web's first backend: a weight out of range.
sed -i 's/{address: 10.0.1.5, weight: 5}/{address: 10.0.1.5, weight: 70000}/' "$conf"
line=$(grep -n 'weight: 70000' "$conf" | cut -d: -f1)
systemctl reload ravel
status_has() { [[ $(prop StatusText) == *"$1"* ]]; }
wait_for 20 "the refused reload in the status line" status_has "reload invalid"
status=$(systemctl status ravel --no-pager 2>&1 || true)
printf '%s\n' "$status" >"$SCENARIO_DIR/status-after-bad-reload.txt"
if grep -q "Status: \"running the previous config; reload invalid: $conf:$line:" <<<"$status"; then
	pass "systemctl status says why the reload was refused ($(grep -o 'Status: .*' <<<"$status" | cut -c1-110))"
else
	fail "systemctl status after a bad reload: $(grep -m1 Status: <<<"$status")"
fi
assert_eq "state after the bad reload" active "$(prop ActiveState)"
assert_eq "IPVS after the bad reload (the old config runs)" "0A000105:0050 5 0A000106:0050 1" "$(ipvs_dests | xargs)"
cp /tmp/good.yaml "$conf"

# --- stop leaves the director's state ---------------------------------------------------
systemctl stop ravel
assert_eq "state after stop" inactive "$(prop ActiveState)"
assert_eq "IPVS after systemctl stop" "0A000105:0050 5 0A000106:0050 1" "$(ipvs_dests | xargs)"
if hip -4 addr show dev ravel0 | grep -q 'inet 10.54.213.247/32'; then pass "VIP still bound after stop"; else fail "VIP gone after stop"; fi

# --- ExecStartPre refuses a broken config ----------------------------------------------------
refused_since=$(date '+%Y-%m-%d %H:%M:%S')
printf 'apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {role: director, interface: eth0}\nvipPool: [10.54.213.247]\nservices:\n  - {name: web, vip: 10.54.213.247, port: 80, shceduler: wrr}\n' >"$conf"
if systemctl start ravel 2>/dev/null; then fail "systemctl start succeeded on a broken config"; else pass "systemctl start failed on a broken config"; fi
# Restart=on-failure would try again every 2 s: stop it, so the state below stays put.
systemctl stop ravel
journal=$(journalctl -u ravel --no-pager -o cat)
printf '%s\n' "$journal" >"$SCENARIO_DIR/journal.txt"
if grep -q "$conf:6:[0-9]*: .*shceduler" <<<"$journal"; then
	pass "the journal names the finding: $(grep -m1 "$conf:6:[0-9]*: .*shceduler" <<<"$journal" | cut -c1-100)"
else
	fail "no finding at $conf:6 in the journal: $(tail -n 5 <<<"$journal")"
fi
# The daemon's first log line: present in every start above, absent from this one.
assert_eq "'ravel starting' lines since the refused start (ExecStart never ran)" 0 \
	"$(journalctl -u ravel --no-pager -o cat --since "$refused_since" | grep -c 'ravel starting' || true)"
assert_ge "'ravel starting' lines in the whole journal (the check above can see one)" 1 "$(grep -c 'ravel starting' <<<"$journal" || true)"
assert_eq "IPVS after the refused start" "0A000105:0050 5 0A000106:0050 1" "$(ipvs_dests | xargs)"

# --- fixed, a start adopts the state -------------------------------------------------------
cp /tmp/good.yaml "$conf"
systemctl reset-failed ravel 2>/dev/null || true
systemctl start ravel || die "systemctl start on the fixed config failed"
assert_eq "state after the fixed start" "active running" "$(prop ActiveState) $(prop SubState)"
assert_eq "IPVS after the fixed start" "0A000105:0050 5 0A000106:0050 1" "$(ipvs_dests | xargs)"
systemctl stop ravel

# --- a realserver under the same unit -----------------------------------------------------
# In a network namespace of its own (a drop-in: NetworkNamespacePath=, and the role and devices
# by flag, as one file serves both), with a tunnel service added: its tunl0 needs ipip,
# unloaded here first, so the kernel loads it on behalf of the sandboxed daemon.
mkdir -p /run/netns && : >/run/netns/rs && unshare --net=/run/netns/rs true
inrs() { nsenter --net=/run/netns/rs "$@"; }
inrs chroot /host ip link set lo up
inrs chroot /host ip link add eth0 type dummy
inrs chroot /host ip addr add 10.0.1.5/24 dev eth0
inrs chroot /host ip link set eth0 up
sed -i 's/^vipPool: .*/vipPool: [10.54.213.247, 10.54.213.248]/' "$conf"
# The tunnel service goes after web's backends, before resync.
awk '/^resync:/ { print "  - name: tun\n    vip: 10.54.213.248\n    port: 80\n    ipvs: {forwarding: tunnel}\n    backends:\n      - {address: 10.0.1.5}\n" } { print }' \
	"$conf" >/tmp/rs.yaml
cp /tmp/rs.yaml "$conf"
ravel config validate "$conf" >/dev/null || die "the realserver config does not validate: $(ravel config validate "$conf" 2>&1 | head -n 5)"
mkdir -p /etc/systemd/system/ravel.service.d
printf '%s\n' '[Service]' 'NetworkNamespacePath=/run/netns/rs' 'ExecStart=' \
	'ExecStart=/usr/bin/ravel run --config /etc/ravel/ravel.yaml --log-format json --role realserver --node-name rs1 --vip-interface lo' \
	>/etc/systemd/system/ravel.service.d/realserver.conf
systemctl daemon-reload
modprobe -r ipip
[[ ! -e /sys/module/ipip ]] && pass "ipip unloaded before the realserver starts" || fail "ipip still loaded"
since=$(date '+%Y-%m-%d %H:%M:%S')
systemctl start ravel || die "the realserver did not start: $(journalctl -u ravel --no-pager -o cat | tail -n 20)"
assert_eq "realserver state after start" "active running" "$(prop ActiveState) $(prop SubState)"
rs_lo=$(inrs chroot /host ip -4 -o addr show dev lo)
for v in 10.54.213.247 10.54.213.248; do
	if grep -q " inet $v/32 " <<<"$rs_lo"; then pass "realserver: $v bound on lo"; else fail "realserver: $v not on lo: $rs_lo"; fi
done
[[ -e /sys/module/ipip ]] && pass "ipip loaded by the kernel for the sandboxed realserver" || fail "ipip not loaded"
if inrs chroot /host ip link show tunl0 | grep -qE 'tunl0@[A-Za-z0-9]+: <([A-Z_]+,)*UP[,>]'; then
	pass "realserver: tunl0 up"
else
	fail "realserver: tunl0 not up: $(inrs chroot /host ip link show tunl0 2>&1)"
fi
# /proc/sys/net shows the network namespace of the process that reads it.
assert_eq "realserver sysctls (all.arp_ignore, all.arp_announce, tunl0.rp_filter)" "1 2 0" \
	"$(inrs cat /proc/sys/net/ipv4/conf/all/arp_ignore /proc/sys/net/ipv4/conf/all/arp_announce /proc/sys/net/ipv4/conf/tunl0/rp_filter | xargs)"
if inrs iptables-save -t nat | grep -q '^:RAVEL'; then pass "realserver: its iptables chains exist"; else fail "realserver: no RAVEL chain"; fi
pid=$(prop MainPID)
assert_eq "realserver's effective capabilities" 0000000000003000 "$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")"
systemctl stop ravel
rs_lo=$(inrs chroot /host ip -4 -o addr show dev lo)
if grep -qE ' inet 10\.54\.213\.24[78]/32 ' <<<"$rs_lo"; then fail "realserver: VIPs left on lo after stop: $rs_lo"; else pass "realserver: VIPs removed on stop"; fi
rs_journal=$(journalctl -u ravel --no-pager -o cat --since "$since")
printf '%s\n' "$rs_journal" >"$SCENARIO_DIR/journal-realserver.txt"
bad=$(grep -iE 'operation not permitted|EPERM|permission denied|EACCES|read-only file system' <<<"$rs_journal" || true)
[[ -z $bad ]] && pass "realserver: no permission error in the journal" || fail "realserver: $bad"
if grep -q 'realserver rules removed on shutdown' <<<"$rs_journal"; then pass "realserver: logged its clean-up"; else fail "realserver: no clean-up in the journal"; fi
