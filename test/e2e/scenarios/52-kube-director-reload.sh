#!/usr/bin/env bash
# shellcheck disable=SC2154 # t1, t2, ... are set through a nameref (cfg_text)
# Hot reload of a director that follows a REAL kube-apiserver: a reload that changes what is
# watched in Kubernetes starts new watches beside the running ones, and the old ones keep
# feeding until the new ones have synced and published a complete snapshot (README, "Change
# the config"; daemon/kubefeed.go). A request loop through service A runs the whole time.
#
#   1 start: service a (VIP:80) from Kubernetes service s52/a, endpoints 2 on node-a, 1 on
#     node-b (node-c eligible, none): IPVS weights 2 / 1 / 0.
#   2 reload (rename-over) adding service b (VIP2:80, s52/b: 1 on node-a, 3 on node-b): b in
#     IPVS at 1 / 3 / 0 within 10 s of the write (measured), then a request loop through VIP2;
#     ravel_kube_service_status ok for a and b.
#   3 reload adding service c (VIP3:80, s52/c: 1 on node-b, 2 on node-c) with a kubeconfig
#     whose server is a closed port (the scenario cannot stop the run's shared API server,
#     which lives on the host; an unreachable server for the NEW watches is what matters
#     here): the reload is ok (the config runs, its watches are pending), c gets no weight,
#     ravel logs its wait for the caches and swaps nothing; an EndpointSlice change to a made
#     now (an endpoint on node-c) reaches IPVS through the OLD watches. Then the good
#     kubeconfig back: the new watches sync and c gets 1 / 2 (measured), and an EndpointSlice
#     change to a written right after that reload (a second endpoint on node-c) reaches IPVS
#     within 6 s: the feed keeps flowing while the watches hand over.
#   4 reload removing b: b's IPVS service deleted and VIP2 unbound, b's status series gone.
#
# Across all of it, checked on the kernel's own table: a background shell in the director's
# namespace reads /proc/net/ip_vs about every 50 ms (bash builtins only: no process per read)
# and records every change; a's node-a/node-b destinations must be at 2 / 1 in every sample
# from the first sync to the end, and b's at 1 / 3 from its appearance to step 4. And in
# ravel's plans (--log-level debug logs each in full): no op ever touches those destinations
# after the first sync. No request through VIP (whole run) or VIP2 (steps 2-3) may fail.
#
#   client 10.0.0.10 --- lan 10.0.0.0/24 --- director 10.0.0.2 (ravel; VIPs on ravel0)
#                          |          |          |
#                rs1 10.0.0.11  rs2 10.0.0.12  rs3 10.0.0.13   nodes s52-node-a/b/c, the
#                VIPs on lo, an echoserver on :80 answering node-a / node-b / node-c
#
# e2e-needs: kapi
# e2e-build: CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$E2E_BIN/kubetool" ./test/e2e/kubetool/
. "$(dirname "$0")/../lib-kube.sh"
. "$(dirname "$0")/../lib-ipvs.sh"

need_ravel
need_kube
topo_dr
RS3_IP=10.0.0.13 VIP2=10.0.0.101 VIP3=10.0.0.102
mk_ns rs3
mk_link rs3 lan "$RS3_IP/24"
kube_link director
for ns in rs1 rs2 rs3; do
	rs_vip "$ns" "$VIP"
	ip -n "$ns" -b - <<-EOF
		addr add $VIP2/32 dev lo
		addr add $VIP3/32 dev lo
	EOF
done
start_echos rs1:node-a:80 rs2:node-b:80 rs3:node-c:80
log "topology and echo servers ready (rs3=$RS3_IP, VIP2=$VIP2, VIP3=$VIP3)"

SEL=ravel-e2e/s52
M=127.0.0.1:10252
A=$VIP:80 B=$VIP2:80 C=$VIP3:80
NA=$RS1_IP:80 NB=$RS2_IP:80 NC=$RS3_IP:80

cfgdir=$(mktemp -d /tmp/ravel-e2e-52.XXXXXX) # only the config: ravel watches this directory
cfg=$cfgdir/ravel.yaml
pdir=$(mktemp -d /tmp/ravel-e2e-52-run.XXXXXX) # scratch files

# --- Kubernetes objects -------------------------------------------------------------------
kt - <<EOF
node s52-node-a $RS1_IP --label $SEL=true
node s52-node-b $RS2_IP --label $SEL=true
node s52-node-c $RS3_IP --label $SEL=true
service s52 a --port http:80:8080
slice s52 a a-1 --port http:8080 --endpoint 10.244.1.11:s52-node-a --endpoint 10.244.1.12:s52-node-a --endpoint 10.244.2.11:s52-node-b
service s52 b --port http:80:8080
slice s52 b b-1 --port http:8080 --endpoint 10.244.1.21:s52-node-a --endpoint 10.244.2.21:s52-node-b --endpoint 10.244.2.22:s52-node-b --endpoint 10.244.2.23:s52-node-b
service s52 c --port http:80:8080
slice s52 c c-1 --port http:8080 --endpoint 10.244.2.31:s52-node-b --endpoint 10.244.3.31:s52-node-c --endpoint 10.244.3.32:s52-node-c
EOF

# --- configs --------------------------------------------------------------------------------
# The unreachable kubeconfig: the run's own, its server moved to a closed port of the
# director's loopback (connection refused at once; same CA, token, tls-server-name).
bad_kc=$pdir/kubeconfig.unreachable
while IFS= read -r line; do
	if [[ $line =~ ^([[:space:]]*server:[[:space:]]*) ]]; then
		printf '%shttps://127.0.0.1:1\n' "${BASH_REMATCH[1]}"
	else
		printf '%s\n' "$line"
	fi
done <"$E2E_KUBECONFIG" >"$bad_kc"
grep -q 'server: https://127.0.0.1:1$' "$bad_kc" || die "no server line rewritten in $bad_kc"

# cfg_text VAR KUBECONFIG SERVICE...: a config with services among a, b, c (each on its own
# VIP, which is in the pool exactly while its service is configured).
cfg_text() {
	local -n _text=$1
	local kc=$2 s v pool='' svcs=''
	shift 2
	for s; do
		case $s in a) v=$VIP ;; b) v=$VIP2 ;; c) v=$VIP3 ;; esac
		pool+="${pool:+, }$v"
		svcs+="  - name: $s
    vip: $v
    port: 80
    kubernetes: {namespace: s52, service: $s, portName: http}
"
	done
	_text="apiVersion: ravel/v1
kind: ClusterConfig
node: {role: director, interface: eth0, vipInterface: ravel0}
kubernetes:
  kubeconfig: $kc
  nodeSelector: {\"$SEL\": \"true\"}
  debounce: {quiet: 0s, maxDelay: 0s}
vipPool: [$pool]
defaults:
  ipvs: {scheduler: wrr, forwarding: dr}
services:
${svcs}metrics: {listen: \"$M\"}
"
}
cfg_text t1 "$E2E_KUBECONFIG" a
cfg_text t2 "$E2E_KUBECONFIG" a b
cfg_text t3 "$bad_kc" a b c
cfg_text t3r "$E2E_KUBECONFIG" a b c
cfg_text t4 "$E2E_KUBECONFIG" a c
for s in 1 2 3 3r 4; do
	t=t$s
	printf '%s' "${!t}" >"$SCENARIO_DIR/step$s.yaml"
done
"$RAVEL_BIN" config validate "$SCENARIO_DIR"/step{1,2,3,3r,4}.yaml >"$pdir/validate" 2>&1 ||
	die "the step files do not validate: $(cat "$pdir/validate")"

# write_mv SRC: the config replaced by a temporary file renamed over it. T_WRITE (µs) is taken
# just before mv starts (its start-up takes a while here: times from T_WRITE are upper bounds).
write_mv() {
	local text
	IFS= read -r -d '' text <"$1" || true
	printf '%s' "$text" >"$cfgdir/.ravel.yaml.new"
	T_WRITE=${EPOCHREALTIME//[.,]/}
	T_WRITE=$((10#$T_WRITE))
	mv -f "$cfgdir/.ravel.yaml.new" "$cfg"
}

# --- the director's shell: HTTP through bash's /dev/tcp, no process per request -----------
dsh_start director "$pdir"
cat >"$pdir/dsh.sh" <<EOF
M=$M
get() { # PATH FILE: GET http://\$M/PATH (HTTP/1.0) into FILE
	local fd
	exec {fd}<>"/dev/tcp/\${M%:*}/\${M#*:}" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: ravel\r\n\r\n' "\$1" >&"\$fd"
	cat <&"\$fd" >"\$2" # (bash's read would take a socket one byte per system call)
	exec {fd}<&-
}
EOF
dsh ". $pdir/dsh.sh" || die "dsh: $DSH_OUT"

# scrape: /metrics into MET[series]=value (ravel_* lines) and /status into STATUS.
declare -A MET=()
STATUS=
scrape() {
	local k v
	dsh "get /metrics $pdir/m.http && get /status $pdir/s.http" || die "cannot read /metrics and /status: $DSH_OUT"
	MET=()
	while read -r k v; do
		[[ $k != ravel_* ]] || MET[$k]=$v
	done <"$pdir/m.http"
	IFS= read -r -d '' STATUS <"$pdir/s.http" || true
	[[ $STATUS == "HTTP/1."?" 200 "* ]] || die "/status did not answer 200: ${STATUS:0:200}"
	((${#MET[@]} > 0)) || die "/metrics has no ravel_* series"
}
# msum NAME [SUBSTR...]: the sum of NAME's series whose labels contain every SUBSTR.
msum() {
	local name=$1 k sub s=0 ok
	shift
	for k in "${!MET[@]}"; do
		[[ $k == "$name" || $k == "$name{"* ]] || continue
		ok=1
		for sub; do [[ $k == *"$sub"* ]] || ok=0; done
		((ok)) && s=$((s + ${MET[$k]%%.*}))
	done
	echo "$s"
}
# kstatus SVC: ravel_kube_service_status series of s52/SVC as "status=value,...", or "none".
kstatus() {
	local k out=''
	for k in "${!MET[@]}"; do
		[[ $k == ravel_kube_service_status\{* && $k == *'namespace="s52"'* && $k == *"service=\"$1\""* ]] || continue
		[[ $k =~ status=\"([^\"]*)\" ]] && out+="${out:+,}${BASH_REMATCH[1]}=${MET[$k]}"
	done
	echo "${out:-none}"
}
# last_reload: /status lastReload.result ("none" if absent).
last_reload() {
	if [[ $STATUS =~ \"lastReload\":\ \{[^}]*\"result\":\ \"([a-z-]+)\" ]]; then echo "${BASH_REMATCH[1]}"; else echo none; fi
}

# --- the IPVS sampler (lib-ipvs.sh) -----------------------------------------------------------
hex_addr HA "$A"
hex_addr HB "$B"
hex_addr HC "$C"
hex_addr HNA "$NA"
hex_addr HNB "$NB"
hex_addr HNC "$NC"

# The steady states, as sampler specs.
A_HELD="$HA/$HNA=2 $HA/$HNB=1"       # a's node-a and node-b: never touched after the first sync
B_RIGHT="$HB/$HNA=1 $HB/$HNB=3 $HB/$HNC=0"
C_RIGHT="$HC/$HNA=0 $HC/$HNB=1 $HC/$HNC=2"

# log_lines: the number of lines in ravel's log now (a position for log_after).
LOG=$SCENARIO_DIR/director.log
log_lines() {
	local -n _n=$1
	_n=$(wc -l <"$LOG")
}
# log_after N REGEX [MAX]: the lines of ravel's log after line N that match REGEX (awk ERE),
# at most MAX (default 3), each cut to 400 characters. (One awk, no pipe: a pipe that fails in
# $(...) would run lib.sh's ERR trap there.)
log_after() {
	awk -v n="$1" -v re="$2" -v max="${3:-3}" 'NR > n && $0 ~ re { print substr($0, 1, 400); if (++c >= max) exit }' "$LOG"
}
has_log_after() { awk -v n="$1" -v re="$2" 'NR > n && $0 ~ re { f = 1 } END { exit !f }' "$LOG"; }

# reload_ok STEP SRC: write SRC (rename-over), wait until the attempt is counted, check it
# was ok (counted once under file/ok, ravel_config_last_reload_successful 1, /status).
declare -A STEP_FROM=() STEP_TO=() T_STEP=() LOGPOS=()
reload_ok() {
	local step=$1 src=$2 total fileok deadline
	scrape
	total=$(msum ravel_config_reloads_total) fileok=$(msum ravel_config_reloads_total 'result="ok"' 'trigger="file"')
	log_lines "LOGPOS[$step]"
	STEP_FROM[$step]=$EPOCHSECONDS
	write_mv "$src"
	T_STEP[$step]=$T_WRITE
	deadline=$((SECONDS + 20))
	while :; do
		scrape
		(($(msum ravel_config_reloads_total) <= total)) || break
		((SECONDS < deadline)) || {
			fail "step $step: ravel_config_reloads_total still $total 20 s after the write"
			break
		}
		nap 0.2
	done
	assert_eq "step $step: reload attempts counted" "$((total + 1))" "$(msum ravel_config_reloads_total)"
	assert_eq "step $step: counted as trigger=file result=ok" "$((fileok + 1))" "$(msum ravel_config_reloads_total 'result="ok"' 'trigger="file"')"
	assert_eq "step $step: ravel_config_last_reload_successful" 1 "$(msum ravel_config_last_reload_successful)"
	assert_eq "step $step: /status lastReload.result" ok "$(last_reload)"
	if has_log_after "${LOGPOS[$step]}" 'Kubernetes watches change with the new config'; then
		pass "step $step: ravel started new Kubernetes watches beside the running ones"
	else
		fail "step $step: no 'Kubernetes watches change with the new config' in the log after the write"
	fi
}

# --- 1: start with service a ------------------------------------------------------------------
printf '%s' "$t1" >"$cfg"
kube_ravel director director --config "$cfg" --node-name s52-director --log-level debug
RAVEL_PID=$BG_PID
log "ravel run started (pid $RAVEL_PID)"
wait_weights 90 director "$A" "$NA=2" "$NB=1" "$NC=0" || die "service a never reached its weights"
_ready() { dsh "get /readyz $pdir/r.http" && [[ $(<"$pdir/r.http") == "HTTP/1."?" 200 "* ]]; }
wait_for 30 "/readyz answers 200" _ready || true
log_lines LOG_SYNCED
ipvs_sampler_start director
T_SYNCED=$IPVS_T0 # a's hold is checked from the sampler's first sample on
out=$(hit client "http://$VIP/" 30 -c 3) || fail "step 1: requests through $VIP failed: $out"
assert_eq "step 1: a's requests answered" 30 "$(($(hit_count "$out" node-a) + $(hit_count "$out" node-b)))"
assert_ratio "step 1: a's wrr split node-a:node-b" "$(hit_count "$out" node-a)" "$(hit_count "$out" node-b)" 2 0.5
traffic_start client "http://$VIP/" loopA
scrape
assert_eq "step 1: ravel_kube_service_status for a" ok=1 "$(kstatus a)"
assert_eq "step 1: no status series for b yet" none "$(kstatus b)"

# --- 2: add service b --------------------------------------------------------------------------
log "step 2: add service b ($B)"
reload_ok 2 "$SCENARIO_DIR/step2.yaml"
SEEN_T=
wait_seen MS_B 10 "step 2: b at weights node-a 1, node-b 3, node-c 0" "$B_RIGHT" "${T_STEP[2]}"
T_B_OK=${SEEN_T:-}
wait_for 20 "the new watches took over (step 2)" has_log_after "${LOGPOS[2]}" 'new Kubernetes watches synced and took over' ||
	fail "step 2: no 'new Kubernetes watches synced and took over' in the log"
nap 1
now_us T2_END
assert_held "step 2: a's node-a/node-b at 2/1 from its first sync through b's swap" "$A_HELD" "$T_SYNCED" "$T2_END"
wait_weights 10 director "$B" "$NA=1" "$NB=3" "$NC=0" || fail "step 2: ipvsadm does not show b's weights"
out=$(hit client "http://$VIP2/" 40 -c 4) || fail "step 2: requests through $VIP2 failed: $out"
assert_eq "step 2: b's requests answered" 40 "$(($(hit_count "$out" node-a) + $(hit_count "$out" node-b)))"
assert_ratio "step 2: b's wrr split node-b:node-a" "$(hit_count "$out" node-b)" "$(hit_count "$out" node-a)" 3 0.6
traffic_start client "http://$VIP2/" loopB
scrape
assert_eq "step 2: ravel_kube_service_status for a" ok=1 "$(kstatus a)"
assert_eq "step 2: ravel_kube_service_status for b" ok=1 "$(kstatus b)"
assert_eq "step 2: ravel_vip_virtual_services{vip=$VIP2}" 1 "$(msum ravel_vip_virtual_services "vip=\"$VIP2\"")"
STEP_TO[2]=$EPOCHSECONDS
[[ -n $T_B_OK ]] || now_us T_B_OK

# --- 3: add service c while the new watches cannot reach the API server -------------------------
log "step 3: add service c ($C) with the unreachable kubeconfig"
reload_ok 3 "$SCENARIO_DIR/step3.yaml"
# c is configured: its VIP is bound and its IPVS service may exist, but nothing feeds it yet.
wait_for 15 "$VIP3 bound (the config runs)" vip_bound director "$VIP3" || fail "step 3: $VIP3 not bound"
# An endpoint of a on node-c, written now: only the old watches can carry it.
now_us T_SCALE
kt slice s52 a a-1 --port http:8080 --endpoint 10.244.1.11:s52-node-a --endpoint 10.244.1.12:s52-node-a \
	--endpoint 10.244.2.11:s52-node-b --endpoint 10.244.3.11:s52-node-c
wait_seen MS_SCALE 10 "step 3: a's new endpoint on node-c (weight 1) through the old watches" "$HA/$HNC=1" "$T_SCALE"
# The new watches keep failing: ravel says it waits (every 10 s), and swaps nothing.
wait_for 40 "ravel logs that it waits for the caches" has_log_after "${LOGPOS[3]}" 'waiting for kubernetes caches to sync' &&
	pass "step 3: ravel logs that it waits for the new watches' caches: $(log_after "${LOGPOS[3]}" 'waiting for kubernetes caches to sync' 1)"
if has_log_after "${LOGPOS[3]}" 'kubernetes watch failing'; then
	pass "step 3: the new watches fail (log: kubernetes watch failing)"
else
	fail "step 3: no 'kubernetes watch failing' in the log: the premise (new watches cannot reach the API server) is not shown"
fi
if has_log_after "${LOGPOS[3]}" 'new Kubernetes watches synced and took over'; then
	fail "step 3: the unreachable watches took over: $(log_after "${LOGPOS[3]}" 'took over' 1)"
else
	pass "step 3: no swap to the unreachable watches"
fi
wait_weights 5 director "$A" "$NA=2" "$NB=1" "$NC=1" || fail "step 3: ipvsadm does not show a's node-c endpoint"
scrape
assert_eq "step 3: ravel_config_last_reload_successful while the watches are pending" 1 "$(msum ravel_config_last_reload_successful)"
assert_eq "step 3: ravel_kube_service_status for a (old watches)" ok=1 "$(kstatus a)"
assert_eq "step 3: ravel_kube_service_status for b (old watches)" ok=1 "$(kstatus b)"
assert_eq "step 3: no status series for c (its watches are on standby)" none "$(kstatus c)"
if [[ $STATUS == *'"ready": true'* ]]; then pass "step 3: /status ready"; else fail "step 3: /status not ready: ${STATUS:0:400}"; fi
out=$(hit client "http://$VIP/" 40 -c 4) || fail "step 3: requests through $VIP failed: $out"
assert_ge "step 3: node-c serves a through the old watches" 1 "$(hit_count "$out" node-c)"
assert_eq "step 3: a's requests answered" 40 "$(($(hit_count "$out" node-a) + $(hit_count "$out" node-b) + $(hit_count "$out" node-c)))"
log "step 3: c in IPVS while its watches are pending:"
in_ns director ipvsadm -Ln -t "$C" || log "(no IPVS service $C)"
now_us T3_END
assert_held "step 3: c without weight while its watches are pending" "$HC=noweight" "${T_STEP[3]}" "$T3_END"
STEP_TO[3]=$EPOCHSECONDS

# --- 3r: the good kubeconfig back: the new watches sync, c appears -----------------------------
log "step 3r: the reachable kubeconfig back"
reload_ok 3r "$SCENARIO_DIR/step3r.yaml"
# Right away, while the running watches hand over: a second endpoint of a on node-c. The
# running (old) watches, or the new ones once synced, must carry it at once: the feed never
# stops flowing during a swap.
now_us T_SCALE2
kt slice s52 a a-1 --port http:8080 --endpoint 10.244.1.11:s52-node-a --endpoint 10.244.1.12:s52-node-a \
	--endpoint 10.244.2.11:s52-node-b --endpoint 10.244.3.11:s52-node-c --endpoint 10.244.3.12:s52-node-c
wait_seen MS_SCALE2 6 "step 3r: a's second node-c endpoint (weight 2), written right after the reload" "$HA/$HNC=2" "$T_SCALE2"
SEEN_T=
wait_seen MS_C 10 "step 3r: c at weights node-a 0, node-b 1, node-c 2" "$C_RIGHT" "${T_STEP[3r]}"
T_C_OK=${SEEN_T:-}
wait_for 20 "the new watches took over (step 3r)" has_log_after "${LOGPOS[3r]}" 'new Kubernetes watches synced and took over' ||
	fail "step 3r: no 'new Kubernetes watches synced and took over' in the log"
nap 1
wait_weights 5 director "$C" "$NA=0" "$NB=1" "$NC=2" || fail "step 3r: ipvsadm does not show c's weights"
out=$(hit client "http://$VIP3/" 30 -c 3) || fail "step 3r: requests through $VIP3 failed: $out"
assert_eq "step 3r: c's requests answered" 30 "$(($(hit_count "$out" node-b) + $(hit_count "$out" node-c)))"
assert_ratio "step 3r: c's wrr split node-c:node-b" "$(hit_count "$out" node-c)" "$(hit_count "$out" node-b)" 2 0.5
scrape
assert_eq "step 3r: ravel_kube_service_status for a" ok=1 "$(kstatus a)"
assert_eq "step 3r: ravel_kube_service_status for b" ok=1 "$(kstatus b)"
assert_eq "step 3r: ravel_kube_service_status for c" ok=1 "$(kstatus c)"
assert_eq "step 3r: ravel_vip_virtual_services{vip=$VIP3}" 1 "$(msum ravel_vip_virtual_services "vip=\"$VIP3\"")"
wait_weights 5 director "$A" "$NA=2" "$NB=1" "$NC=2" || fail "step 3r: a's weights after the swap"
STEP_TO[3r]=$EPOCHSECONDS
traffic_stop loopB
B_FAILED=$TRAFFIC_FAILED B_OK=$TRAFFIC_OK
now_us T_B_END
assert_held "steps 2-3r: b's weights at 1/3/0 from its appearance through both later swaps" "$B_RIGHT" "$T_B_OK" "$T_B_END"

# --- 4: remove b ----------------------------------------------------------------------------------
log "step 4: remove service b"
reload_ok 4 "$SCENARIO_DIR/step4.yaml"
wait_seen MS_BGONE 10 "step 4: b's IPVS service deleted" "$HB=absent" "${T_STEP[4]}"
wait_for 15 "$VIP2 unbound" sh -c "! ip -n director -4 -o addr show dev ravel0 | grep -q ' inet $VIP2/32 '" ||
	fail "step 4: $VIP2 still bound"
_b_series_gone() { scrape && [[ $(kstatus b) == none ]]; }
wait_for 30 "b's ravel_kube_service_status series gone" _b_series_gone || true
scrape
assert_eq "step 4: no status series for b" none "$(kstatus b)"
assert_eq "step 4: ravel_kube_service_status for a" ok=1 "$(kstatus a)"
assert_eq "step 4: ravel_kube_service_status for c" ok=1 "$(kstatus c)"
assert_eq "step 4: ravel_vip_virtual_services{vip=$VIP2}" 0 "$(msum ravel_vip_virtual_services "vip=\"$VIP2\"")"
wait_weights 5 director "$A" "$NA=2" "$NB=1" "$NC=2" || fail "step 4: a's weights changed"
wait_weights 5 director "$C" "$NA=0" "$NB=1" "$NC=2" || fail "step 4: c's weights changed"
nap 1
STEP_TO[4]=$EPOCHSECONDS

# --- the whole run --------------------------------------------------------------------------------
traffic_stop loopA
now_us T_END
ipvs_sampler_stop
assert_held "whole run: a's node-a/node-b at 2/1 in the kernel" "$A_HELD" "$T_SYNCED" "$T_END"
[[ -z $T_C_OK ]] || assert_held "step 3r to the end: c at 0/1/2" "$C_RIGHT" "$T_C_OK" "$T_END"
# Every plan ravel applied after the first sync, in full (--log-level debug): none touches
# a's node-a/node-b destinations or deletes a, and none touches b between its appearance and
# its removal.
re_a="(destination (${NA//./[.]}|${NB//./[.]}) (of|from) tcp ${A//./[.]}|service tcp ${A//./[.]})"
bad_a=$(log_after "$LOG_SYNCED" "$re_a")
if [[ -z $bad_a ]]; then pass "no plan op on a's node-a/node-b destinations after the first sync"; else fail "plan ops on a after the first sync: $bad_a"; fi
if has_log_after "$LOG_SYNCED" "~ update destination ${NC//./[.]} of tcp ${A//./[.]}"; then
	pass "the plans do show a's node-c change (the plan check sees ops on a)"
else
	fail "no plan op for a's node-c endpoint in the debug log (is the plan check blind?)"
fi
re_b="(destination [0-9.:]+ (of|from) tcp ${B//./[.]}|service tcp ${B//./[.]})"
bad_b_late=$(awk -v n="${LOGPOS[3]}" -v m="${LOGPOS[4]}" -v re="$re_b" 'NR > n && NR <= m && $0 ~ re' "$LOG")
if [[ -z $bad_b_late ]]; then pass "no plan op on b in steps 3-3r (the pending and the restored watches)"; else fail "plan ops on b in steps 3-3r: ${bad_b_late:0:600}"; fi

assert_eq "requests through $VIP (a) that failed over the whole run" 0 "$TRAFFIC_FAILED"
assert_ge "requests through $VIP (a) answered over the whole run" 50 "$TRAFFIC_OK"
for s in 2 3 3r 4; do
	assert_ge "requests through $VIP answered during step $s" 1 "$(traffic_ok_between loopA "${STEP_FROM[$s]}" "${STEP_TO[$s]}")"
done
assert_eq "requests through $VIP2 (b) that failed (steps 2-3r)" 0 "$B_FAILED"
assert_ge "requests through $VIP2 (b) answered (steps 2-3r)" 20 "$B_OK"
if ((TRAFFIC_FAILED + B_FAILED)); then
	cat "$SCENARIO_DIR/loopA.err" "$SCENARIO_DIR/loopB.err" 2>/dev/null | head -n 20 || true
fi
cp "$IPVS_DIR/ipvs.rec" "$SCENARIO_DIR/ipvs.rec" || true
log "swap times (write -> weights in /proc/net/ip_vs, sampled every ~50 ms): b added ${MS_B} ms; a's node-c endpoint through the old watches ${MS_SCALE} ms (from the kubetool start); a's second node-c endpoint during that swap ${MS_SCALE2} ms (from the kubetool start); c after the good kubeconfig ${MS_C} ms; b removed ${MS_BGONE} ms"
grep -E 'msg="(config reload|Kubernetes watches change|new Kubernetes watches|waiting for kubernetes caches|kubernetes caches synced|kubernetes watch failing|applying plan)' "$LOG" | cut -c1-300 || true
ravel_stop "$RAVEL_PID"
