#!/usr/bin/env bash
# shellcheck disable=SC2154 # t1..t7, syn_pos, thr_pos, *_hex are set through namerefs
# Hot reload of a running director (issue 6 acceptance test). A loop of
# requests runs through the VIP while the config file goes
#   1 valid (start) -> 2 invalid (YAML syntax) -> 3 invalid (lowerThreshold
#   above upperThreshold) -> 4 valid, a new weight -> 5 valid, a new VIP in the
#   pool with its service
# then 6 a SIGHUP with the file unchanged, 7 a change that needs a restart
# (node.vipInterface), 8 the good file back. Checked:
#   - no request through the VIP fails over the whole run;
#   - a refused file (2, 3, 7) or a reload to the same config (6, 8) changes
#     nothing in the kernel: 'ipvsadm -Sn', 'ipvsadm -Ln --thresholds' (less its
#     connection counters) and 'ip addr' byte-identical 2 s after the attempt
#     was counted, and no plan op applied;
#   - ravel_config_last_reload_successful reads 1 -> 0 -> 0 -> 1 -> 1 after
#     steps 1-5 (then 1, 0, 1), each read once ravel_config_reloads_total has
#     counted that attempt; each attempt is counted exactly once, under its
#     trigger (file, signal) and result;
#   - a valid file is in the kernel within 2 s of its write (measured per step);
#   - /status: lastReload.result "invalid" with the error's line and column
#     (2, 3), "restart-required" naming node (7); config.hash the running file's.
# Writes alternate between the two ways editors save: a temporary file renamed
# over the config (2, 4, 8) and the same file rewritten in place (3, 5, 7).
#
# The config lives in a directory of its own on the guest's tmpfs, not in
# $SCENARIO_DIR: ravel watches the file's whole directory, and the logs and the
# request loop's files written there would keep its debounce busy.
#
# Topology: topo_dr (client, director, rs1, rs2 on one segment); VIP 10.0.0.100
# (service web, weights 3:1), and from step 5 VIP2 10.0.0.101 (service web2).
. "$(dirname "$0")/../lib.sh"

topo_dr
VIP2=10.0.0.101
rs_serve "$VIP" 80 rs1 rs2
# (rs_serve set the realservers' ARP sysctls; VIP2 only needs its address)
ip -n rs1 addr add "$VIP2/32" dev lo
ip -n rs2 addr add "$VIP2/32" dev lo

M=127.0.0.1:10234
cfgdir=$(mktemp -d /tmp/ravel-e2e-50.XXXXXX)
cfg=$cfgdir/ravel.yaml
pdir=$(mktemp -d /tmp/ravel-e2e-50-run.XXXXXX) # scratch files; not in $cfgdir, which ravel watches
mkfifo "$pdir/nap"
exec {NAP}<>"$pdir/nap" # a FIFO nobody writes to: 'read -t S -u $NAP' sleeps without a process

# Process starts are what is slow in the emulated guest (up to a second or two
# each while the request loop runs), so this scenario avoids them: files are
# written with builtins, and the director is looked at through one long-lived
# shell in its namespace (dsh, below).

# cfg_text VAR RS2_WEIGHT LOWER_THRESHOLD WITH_VIP2(0|1) VIP_INTERFACE: a config into VAR.
cfg_text() {
	local -n _text=$1
	local pool=$VIP web2=
	if (($4)); then
		pool="$VIP, $VIP2"
		web2="  - name: web2
    vip: $VIP2
    port: 80
    backends:
      - {address: $RS1_IP, weight: 1}
      - {address: $RS2_IP, weight: 1}
"
	fi
	# resync 60s: nothing below waits for a periodic resync; a reload applies by itself.
	_text="apiVersion: ravel/v1
kind: ClusterConfig
node: {name: director, role: director, interface: eth0, vipInterface: $5}
vipPool: [$pool]
defaults:
  ipvs: {scheduler: wrr, forwarding: dr}
services:
  - name: web
    vip: $VIP
    port: 80
    ipvs: {upperThreshold: 1000, lowerThreshold: $3}
    backends:
      - {address: $RS1_IP, weight: 3}
      - {address: $RS2_IP, weight: $2}
${web2}resync: 60s
coordinator: {ports: [44450]}
metrics: {listen: \"$M\"}
"
}

# The files of the steps, kept in $SCENARIO_DIR.
cfg_text t1 1 800 0 ravel0
# 2: one space too many before web's "port:": a YAML syntax error there.
t2=${t1/$'\n    port: 80\n'/$'\n     port: 80\n'}
# 3: web's lowerThreshold above its upperThreshold (upperThreshold > lowerThreshold > 0).
cfg_text t3 1 5000 0 ravel0
cfg_text t4 3 800 0 ravel0 # rs2's weight 1 -> 3
cfg_text t5 3 800 1 ravel0 # + VIP2 in the pool and service web2
cfg_text t7 3 800 1 ravel1 # node.vipInterface: needs a restart
for s in 1 2 3 4 5 7; do
	t=t$s
	printf '%s' "${!t}" >"$SCENARIO_DIR/step$s.yaml"
done
# Where the errors are, found in the files themselves: the line, and the column
# of the offending token (the ':' after the over-indented key; the value 5000).
find_pos() { # VAR TEXT LINE_PATTERN TOKEN: "LINE COLUMN" of TOKEN on the first line matching LINE_PATTERN
	local -n _pos=$1
	local i=0 line head
	while IFS= read -r line; do
		i=$((i + 1))
		# shellcheck disable=SC2053 # $3 is a pattern
		if [[ $line == $3 ]]; then
			head=${line%%"$4"*}
			_pos="$i $((${#head} + 1))"
			return 0
		fi
	done <<<"$2"
	die "no line matching '$3'"
}
find_pos syn_pos "$t2" '     port: 80' ':'
find_pos thr_pos "$t3" '*lowerThreshold: 5000*' '5000'
log "expected findings: YAML syntax at ${syn_pos/ /:}, lowerThreshold at ${thr_pos/ /:}"
# ravel's own validator agrees: the valid files pass, the invalid ones fail there.
validate=$("$RAVEL_BIN" config validate "$SCENARIO_DIR"/step{1,2,3,4,5,7}.yaml 2>&1) && die "step2.yaml and step3.yaml pass 'ravel config validate'"
echo "$validate"
for s in 1 4 5 7; do
	[[ $validate == *"$SCENARIO_DIR/step$s.yaml: OK"* ]] || die "step$s.yaml does not validate"
done
[[ $validate == *"$SCENARIO_DIR/step2.yaml:${syn_pos/ /:}: YAML syntax"* ]] ||
	die "'ravel config validate' does not place step2.yaml's error at ${syn_pos/ /:}"
[[ $validate == *"$SCENARIO_DIR/step3.yaml:${thr_pos/ /:}: services[0].ipvs.lowerThreshold: lowerThreshold 5000 must be below upperThreshold 1000"* ]] ||
	die "'ravel config validate' does not place step3.yaml's error at ${thr_pos/ /:}"
declare -A HASH=()
sha256sum "$SCENARIO_DIR"/step{1,4,5}.yaml >"$pdir/hashes"
while read -r h f; do HASH[${f##*/}]=$h; done <"$pdir/hashes"

# --- helpers ------------------------------------------------------------------------------

# now_us VAR: the time in µs into VAR (a builtin, no subshell).
now_us() {
	local _now=${EPOCHREALTIME//[.,]/}
	printf -v "$1" '%d' "$((10#$_now))"
}

# dsh CMD: run CMD in the director's shell; its status is dsh's, its output
# (stdout and stderr) goes to DSH_OUT. Call it in this shell, never in $(...)
# or a pipeline: a coprocess's descriptors do not reach subshells.
# The functions that shell has (dsh.sh):
#   get PATH FILE       GET http://$M/PATH (HTTP/1.0 through bash's /dev/tcp, the
#                       response read by cat: no curl, whose start-up is heavy) into FILE
#   snap                /metrics, /status and the kernel state, parsed (snap.awk)
#                       into files that snap (below) reads
#   counted BEFORE S    until ravel_config_reloads_total > BEFORE (S seconds at most)
#   poll OUT RE S FILE...   the write-to-kernel timer (timed_write, below)
cat >"$pdir/dsh.sh" <<EOF
P=$pdir M=$M
EOF
cat >>"$pdir/dsh.sh" <<'EOF'
exec {nap}<>"$P/nap"
get() {
	local fd
	exec {fd}<>"/dev/tcp/${M%:*}/${M#*:}" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: ravel\r\n\r\n' "$1" >&"$fd"
	cat <&"$fd" >"$2"
	exec {fd}<&-
}
snap() {
	get /metrics "$P/m.http" && get /status "$P/s.http" &&
		{ ipvsadm -Sn && echo '-- ipvsadm -Ln --thresholds' && ipvsadm -Ln --thresholds && echo '-- ip addr' && ip addr show; } >"$P/k.raw" &&
		awk -v P="$P" -f "$P/snap.awk" "$P/m.http" "$P/s.http" "$P/k.raw"
}
counted() {
	local n k v end=$((SECONDS + $2))
	while :; do
		n=0
		if get /metrics "$P/c.http"; then
			while read -r k v; do
				[[ $k != ravel_config_reloads_total* ]] || n=$((n + ${v%%.*}))
			done <"$P/c.http"
		fi
		((n <= $1)) || return 0
		((SECONDS < end)) || return 1
		read -r -t 0.2 -u "$nap" || :
	done
}
# poll OUT REGEX LIMIT FILE...: read FILEs (builtin reads, no process) about every
# 100 ms until their text matches REGEX; then write "seen T0 T1 READS PREV_T0" to
# OUT (µs: when the matching read started and ended, how many reads, when the
# read before started), or "never ..." after LIMIT seconds. OUT.live appears
# after the first read (which must not match yet).
poll() {
	local out=$1 re=$2 limit=$(($3 * 1000000)) f part s t0 t1 start n=0 prev=0
	shift 3
	start=${EPOCHREALTIME//[.,]/}
	while :; do
		t0=${EPOCHREALTIME//[.,]/}
		s=
		for f; do
			IFS= read -r -d '' part <"$f"
			s+=$part
		done
		t1=${EPOCHREALTIME//[.,]/}
		n=$((n + 1))
		if [[ $s =~ $re ]]; then
			echo "seen $((10#$t0)) $((10#$t1)) $n $prev" >"$out.tmp" && mv "$out.tmp" "$out"
			return 0
		fi
		prev=$((10#$t0))
		((n > 1)) || : >"$out.live"
		if ((10#$t1 - 10#$start > limit)); then
			printf '%s\n' "$s" >"$out.last"
			echo "never 0 0 $n $prev" >"$out.tmp" && mv "$out.tmp" "$out"
			return 1
		fi
		read -r -t 0.1 -u "$nap" || :
	done
}
EOF
# snap.awk: the three responses into $P/v ("KEY VALUE" lines, see snap below),
# $P/kstate (the kernel text to compare) and $P/status (the /status body).
cat >"$pdir/snap.awk" <<'EOF'
FNR == 1 { part++; body = 0 }
part <= 2 && !body {
	if (FNR == 1) { code[part] = $2 }
	if ($0 ~ /^\r?$/) body = 1
	next
}
part == 1 && /^ravel_/ {
	key = $1; base = key; sub(/\{.*/, "", base)
	if (base == "ravel_config_reloads_total") {
		reloads += $2
		t = key; sub(/.*trigger="/, "", t); sub(/".*/, "", t)
		r = key; sub(/.*result="/, "", r); sub(/".*/, "", r)
		per["reloads." t "." r] += $2
	}
	if (base == "ravel_config_last_reload_successful") ok = $2
	if (base == "ravel_config_last_reload_success_timestamp_seconds") ts = $2
	if (base == "ravel_plan_ops_total") ops += $2
	if (base == "ravel_config_info") { infon++; info = $0 }
	if (base == "ravel_vip_virtual_services") { vv = key; sub(/.*vip="/, "", vv); sub(/".*/, "", vv); per["vipsvc." vv] = $2 }
}
part == 2 {
	print > (P "/status")
	if (/^  "config": \{/) { blk = "config"; next }
	if (/^  "lastReload": \{/) { blk = "reload"; next }
	if (/^  [}\]]/) blk = ""
	if (blk == "config" && /^    "hash": /) { v = $2; gsub(/[",]/, "", v); hash = v }
	if (blk == "reload" && /^    "result": /) { v = $2; gsub(/[",]/, "", v); result = v }
	if (blk == "reload" && /^      \{/) { l = ""; c = ""; p = "" }
	if (blk == "reload" && /^        "line": /) { l = $2; gsub(/,/, "", l) }
	if (blk == "reload" && /^        "column": /) { c = $2; gsub(/,/, "", c) }
	if (blk == "reload" && /^        "path": /) { p = $2; gsub(/[",]/, "", p) }
	if (blk == "reload" && /^      \}/) { nf++; if (nf == 1) finding = l " " c " " p }
}
part == 3 {
	if (/^-- ipvsadm -Ln/) thr = 1
	if (/^-- ip addr/) thr = 0
	line = $0
	if (thr && $1 == "TCP") svc = $2
	if (thr && $1 == "->" && $2 ~ /^[0-9]/) {
		line = $1 " " $2 " " $3 " " $4 # without ActiveConn InActConn
		per["thr." svc "." $2] = $3 " " $4
	}
	print line > (P "/kstate")
}
END {
	out = P "/v"
	printf "code.metrics %s\ncode.status %s\n", code[1], code[2] > out
	printf "reloads %d\nok %s\nts %d\nops %d\ninfo.n %d\nfindings %d\n", reloads, ok, ts, ops, infon, nf > out
	for (k in per) print k, per[k] > out
	if (info != "") print "info", info > out
	if (hash != "") print "hash", hash > out
	if (result != "") print "result", result > out
	if (finding != "") print "finding", finding > out
}
EOF

dsh_start director "$pdir"
dsh ". $pdir/dsh.sh" || die "dsh: $DSH_OUT"

# snap: one look at the director (/metrics, /status, the kernel). Sets
#   KSTATE  'ipvsadm -Sn', 'ipvsadm -Ln --thresholds' without its connection
#           counters (the request loop changes them) and 'ip addr show';
#   STATUS  the /status JSON;
#   V[...]  reloads (ravel_config_reloads_total, all series), reloads.TRIGGER.RESULT,
#           ok (ravel_config_last_reload_successful), ts (its success timestamp),
#           ops (ravel_plan_ops_total), info.n and info (ravel_config_info: how many
#           series, the last one), vipsvc.VIP (ravel_vip_virtual_services),
#           thr.VIP:PORT.RS:PORT ("UPPER LOWER" in 'ipvsadm -Ln --thresholds');
#           from /status: hash (config.hash), result (lastReload.result), findings
#           (how many) and finding (the first one: "LINE COLUMN PATH").
declare -A V=()
snap() {
	local k v
	dsh snap || die "cannot read the director's /metrics, /status and kernel: $DSH_OUT"
	V=()
	while read -r k v; do V[$k]=$v; done <"$pdir/v"
	[[ ${V[code.metrics]:-} == 200 && ${V[code.status]:-} == 200 ]] ||
		die "/metrics answered '${V[code.metrics]:-}', /status '${V[code.status]:-}'"
	KSTATE='' STATUS=''
	IFS= read -r -d '' KSTATE <"$pdir/kstate" || true
	IFS= read -r -d '' STATUS <"$pdir/status" || true
}
# ipvs_rules: KSTATE's 'ipvsadm -Sn' part, sorted.
ipvs_rules() { sed -n '/^-- ipvsadm -Ln/q; p' <<<"$KSTATE" | sort; }

# wait_counted BEFORE: until ravel_config_reloads_total is above BEFORE (the
# attempt was counted), 20 s at most. The values checked are then read from a
# later scrape (snap): ravel bumps that counter just before it sets the gauge.
wait_counted() {
	dsh "counted $1 20" || fail "ravel_config_reloads_total still not above $1 20 s after the write"
}

# write_mv SRC / write_inplace SRC: replace the config the way editors do: a
# temporary file in the same directory renamed over it, or the same file
# truncated and rewritten. Both set T_WRITE (µs): for mv, just before mv starts
# (its start-up takes a while here, so the rename itself comes somewhat later:
# times measured from T_WRITE are upper bounds); in place, when it is written.
# In place is the shell's own printf: the truncating open and the write come
# back to back from one process. ('cat SRC > FILE' truncates in the shell and
# writes only once cat has started, which here took longer than ravel's 300 ms
# debounce at times: ravel then read the empty file first, refused it, and
# reloaded again on the write. Harmless to the kernel, but a second attempt.)
write_mv() {
	local text
	IFS= read -r -d '' text <"$1" || true
	printf '%s' "$text" >"$cfgdir/.ravel.yaml.new"
	now_us T_WRITE
	mv -f "$cfgdir/.ravel.yaml.new" "$cfg"
}
write_inplace() {
	local text
	IFS= read -r -d '' text <"$1" || true
	printf '%s' "$text" >"$cfg"
	now_us T_WRITE
}

# timed_write STEP HOW SRC DESC REGEX: start a poller in the director's shell,
# write SRC with write_HOW, and check the kernel shows it (REGEX matches the text
# of /proc/net/ip_vs and /proc/net/fib_trie) within 2 s of the write. The poller
# reads those files directly, about every 100 ms: they are the IPVS table that
# 'ipvsadm -Ln' prints (addresses in hex) and the addresses 'ip addr' lists,
# and an ipvsadm or ip started every 100 ms would take longer than that here,
# blurring the time measured. The state itself is then checked with ipvsadm.
# Sets STEP_MS[STEP].
declare -A STEP_MS=() STEP_FROM=() STEP_TO=() # STEP_FROM/TO: epoch seconds each step ran
timed_write() {
	local step=$1 how=$2 src=$3 desc=$4 re=$5 out=$pdir/step$1 q what t0 t1 n prev ms lo deadline
	printf -v q '%q' "$re"
	dsh "poll $out $q 25 /proc/net/ip_vs /proc/net/fib_trie >$pdir/poll$step.log 2>&1 &"
	deadline=$((SECONDS + 30))
	until [[ -e $out.live || -s $out ]] || ((SECONDS > deadline)); do read -r -t 0.1 -u "$NAP" || :; done
	[[ -e $out.live ]] || die "step $step: the poller did not read the old state: $(cat "$out" "$out.last" "$pdir/poll$step.log" 2>/dev/null || true)"
	"write_$how" "$src"
	deadline=$((SECONDS + 40)) # the poller gives up by itself after 25 s
	until [[ -s $out ]] || ((SECONDS > deadline)); do read -r -t 0.05 -u "$NAP" || :; done
	if [[ ! -s $out ]]; then
		STEP_MS[$step]=unknown
		fail "step $step: the poller died: $(cat "$pdir/poll$step.log" || true)"
		return 0
	fi
	read -r what t0 t1 n prev <"$out"
	if [[ $what != seen ]]; then
		STEP_MS[$step]=never
		fail "step $step: $desc not in the kernel 25 s after the write; last read: $(cat "$out.last" || true)"
		return 0
	fi
	ms=$(((t1 - T_WRITE) / 1000)) lo=$(((prev - T_WRITE) / 1000))
	STEP_MS[$step]="$ms ms (the read before started at $lo ms; $n reads)"
	if ((t0 < T_WRITE)); then
		fail "step $step: $desc was in the kernel before the write (the check is wrong)"
	elif ((ms <= 2000)); then
		pass "step $step: $desc in the kernel ${ms} ms after the write (limit 2000 ms; the read before started at $lo ms)"
	else
		fail "step $step: $desc in the kernel only ${ms} ms after the write (limit 2000 ms; the read before started at $lo ms)"
	fi
}

# hex_addr VAR IP[:PORT]: as /proc/net/ip_vs writes it (0A000064:0050).
hex_addr() {
	local -n _hex=$1
	local ip=${2%:*} port=${2##*:} a b c d
	IFS=. read -r a b c d <<<"$ip"
	printf -v _hex '%02X%02X%02X%02X:%04X' "$a" "$b" "$c" "$d" "$port"
}

assert_kernel_same() { # DESC BEFORE
	if [[ $KSTATE == "$2" ]]; then
		pass "$1: kernel unchanged (ipvsadm -Sn, ipvsadm -Ln --thresholds, ip addr: byte-identical)"
	else
		printf '%s' "$2" >"$pdir/kernel.before"
		printf '%s' "$KSTATE" >"$pdir/kernel.after"
		fail "$1: kernel changed: $(diff "$pdir/kernel.before" "$pdir/kernel.after" || true)"
	fi
}

# refused STEP DESC RESULT HOW [SRC]: write SRC (HOW mv or inplace), or send
# SIGHUP (HOW signal); must change nothing: counted once with RESULT, the metric
# 0 (1 for RESULT ok), the kernel byte-identical 2 s after the attempt was
# counted (well past the 300 ms debounce), no plan op applied, the running
# config as before (and its success timestamp, for a refused one).
refused() {
	local step=$1 desc=$2 result=$3 how=$4 src=${5:-} before total ops ts hash want_ok=0
	[[ $result != ok ]] || want_ok=1
	snap
	before=$KSTATE total=${V[reloads]} ops=${V[ops]} ts=${V[ts]} hash=${V[hash]:-}
	log "step $step: $desc ($how)"
	STEP_FROM[$step]=$EPOCHSECONDS
	if [[ $how == signal ]]; then kill -HUP "$RAVEL_PID"; else "write_$how" "$src"; fi
	wait_counted "$total"
	read -r -t 2 -u "$NAP" || :
	snap
	assert_eq "step $step ($desc): ravel_config_last_reload_successful" "$want_ok" "${V[ok]}"
	assert_kernel_same "step $step ($desc)" "$before"
	assert_eq "step $step ($desc): reload attempts counted" "$((total + 1))" "${V[reloads]}"
	assert_eq "step $step ($desc): plan ops applied (ravel_plan_ops_total)" "$ops" "${V[ops]}"
	[[ $result == ok ]] ||
		assert_eq "step $step ($desc): success timestamp unchanged" "$ts" "${V[ts]}"
	assert_eq "step $step ($desc): /status lastReload.result" "$result" "${V[result]:-}"
	assert_eq "step $step ($desc): /status config.hash (the running config's)" "$hash" "${V[hash]:-}"
	STEP_TO[$step]=$EPOCHSECONDS
}

# applied STEP DESC HOW SRC REGEX: a valid write, timed to the kernel; then
# counted once, the metric 1, the success timestamp not before the write,
# /status and ravel_config_info on the new file's hash and path.
applied() {
	local step=$1 desc=$2 how=$3 src=$4 re=$5 total hash
	hash=${HASH[${src##*/}]}
	snap
	total=${V[reloads]}
	log "step $step: $desc ($how)"
	STEP_FROM[$step]=$EPOCHSECONDS
	timed_write "$step" "$how" "$src" "$desc" "$re"
	wait_counted "$total"
	snap
	assert_eq "step $step ($desc): ravel_config_last_reload_successful" 1 "${V[ok]}"
	assert_eq "step $step ($desc): reload attempts counted" "$((total + 1))" "${V[reloads]}"
	assert_ge "step $step ($desc): success timestamp at or after the write" "$((T_WRITE / 1000000))" "${V[ts]}"
	assert_eq "step $step ($desc): /status lastReload.result" ok "${V[result]:-}"
	assert_eq "step $step ($desc): /status config.hash" "$hash" "${V[hash]:-}"
	assert_eq "step $step ($desc): ravel_config_info (one series, the new hash and path)" \
		"1 ravel_config_info{hash=\"$hash\",path=\"$cfg\"} 1" "${V[info.n]} ${V[info]:-}"
	STEP_TO[$step]=$EPOCHSECONDS
}

# --- 1: start with a valid file ---------------------------------------------------------
printf '%s' "$t1" >"$cfg"
ravel_start director ravel "$cfg"
_ready() { dsh "get /readyz $pdir/r.http" && [[ $DSH_OUT == "" && $(<"$pdir/r.http") == "HTTP/1."?" 200 "* ]]; }
wait_for 60 "/readyz answers 200 (first sync done)" _ready
if dsh "get /healthz $pdir/h.http" && [[ $(<"$pdir/h.http") == "HTTP/1."?" 200 "* ]]; then
	pass "/healthz answers 200"
else
	fail "/healthz does not answer 200: $(cat "$pdir/h.http" || true)"
fi
snap
echo "$KSTATE"
assert_eq "step 1 (start): IPVS rules (ipvsadm -Sn)" "$(sort <<EOF
-A -t $VIP:80 -s wrr
-a -t $VIP:80 -r $RS1_IP:80 -g -w 3
-a -t $VIP:80 -r $RS2_IP:80 -g -w 1
EOF
)" "$(ipvs_rules)"
assert_eq "step 1: rs1 thresholds (upper 1000, lower 800 split 3:1)" "750 600" "${V[thr.$VIP:80.$RS1_IP:80]:-}"
assert_eq "step 1: rs2 thresholds" "250 200" "${V[thr.$VIP:80.$RS2_IP:80]:-}"
if [[ $KSTATE == *" inet $VIP/32 scope global ravel0"* ]]; then pass "step 1: $VIP bound on ravel0"; else fail "step 1: $VIP not bound on ravel0"; fi
assert_eq "step 1 (start): ravel_config_last_reload_successful" 1 "${V[ok]}"
assert_eq "step 1 (start): reload attempts counted" 0 "${V[reloads]}"
assert_eq "step 1 (start): /status config.hash" "${HASH[step1.yaml]}" "${V[hash]:-}"

traffic_start client "http://$VIP/" loop
read -r -t 2 -u "$NAP" || :

# --- 2: YAML syntax error (temporary file renamed over the config) ---------------------
refused 2 "YAML syntax error at ${syn_pos/ /:}" invalid mv "$SCENARIO_DIR/step2.yaml"
echo "$STATUS"
assert_eq "step 2: /status finding at the syntax error's line and column" "$syn_pos" "${V[finding]:-}"
assert_eq "step 2: ravel_config_reloads_total{trigger=file,result=invalid}" 1 "${V[reloads.file.invalid]:-0}"

# --- 3: lowerThreshold above upperThreshold (rewritten in place) -----------------------
refused 3 "lowerThreshold 5000 above upperThreshold 1000 at ${thr_pos/ /:}" invalid inplace "$SCENARIO_DIR/step3.yaml"
echo "$STATUS"
assert_eq "step 3: /status finding: line column path" "$thr_pos services[0].ipvs.lowerThreshold" "${V[finding]:-}"
if [[ $STATUS == *'"message": "lowerThreshold 5000 must be below upperThreshold 1000'* ]]; then
	pass "step 3: /status finding says lowerThreshold 5000 must be below upperThreshold 1000"
else
	fail "step 3: /status has no finding 'lowerThreshold 5000 must be below upperThreshold 1000'"
fi
assert_eq "step 3: ravel_config_reloads_total{trigger=file,result=invalid}" 2 "${V[reloads.file.invalid]:-0}"

# --- 4: valid, rs2's weight 1 -> 3 (temporary file renamed over the config) ------------
hex_addr rs2_hex "$RS2_IP:80"
applied 4 "rs2 weight 1 -> 3" mv "$SCENARIO_DIR/step4.yaml" "-> $rs2_hex +Route +3 "
assert_eq "step 4: IPVS rules (ipvsadm -Sn; rs2 weight 3)" "$(sort <<EOF
-A -t $VIP:80 -s wrr
-a -t $VIP:80 -r $RS1_IP:80 -g -w 3
-a -t $VIP:80 -r $RS2_IP:80 -g -w 3
EOF
)" "$(ipvs_rules)"
assert_eq "step 4: rs1 thresholds (split 1:1 now)" "500 400" "${V[thr.$VIP:80.$RS1_IP:80]:-}"
assert_eq "step 4: rs2 thresholds" "500 400" "${V[thr.$VIP:80.$RS2_IP:80]:-}"
assert_eq "step 4: ravel_config_reloads_total{trigger=file,result=ok}" 1 "${V[reloads.file.ok]:-0}"

# --- 5: valid, a new VIP in the pool with its service (rewritten in place) -------------
# In the kernel: VIP2's service with both destinations (/proc/net/ip_vs), and
# VIP2 a local address (/proc/net/fib_trie: "|-- 10.0.0.101" then "/32 host LOCAL").
hex_addr vip2_hex "$VIP2:80"
hex_addr rs1_hex "$RS1_IP:80"
nl=$'\n'
applied 5 "$VIP2 and service web2 added" inplace "$SCENARIO_DIR/step5.yaml" \
	"TCP +$vip2_hex [^$nl]*$nl +-> ($rs1_hex|$rs2_hex) [^$nl]*$nl +-> ($rs1_hex|$rs2_hex) .*[|]-- ${VIP2//./\\.}$nl +/32 host LOCAL"
assert_eq "step 5: IPVS rules (ipvsadm -Sn)" "$(sort <<EOF
-A -t $VIP:80 -s wrr
-A -t $VIP2:80 -s wrr
-a -t $VIP:80 -r $RS1_IP:80 -g -w 3
-a -t $VIP:80 -r $RS2_IP:80 -g -w 3
-a -t $VIP2:80 -r $RS1_IP:80 -g -w 1
-a -t $VIP2:80 -r $RS2_IP:80 -g -w 1
EOF
)" "$(ipvs_rules)"
if [[ $KSTATE == *" inet $VIP2/32 scope global ravel0"* ]]; then pass "step 5: $VIP2 bound on ravel0"; else fail "step 5: $VIP2 not bound on ravel0"; fi
assert_eq "step 5: ravel_config_reloads_total{trigger=file,result=ok}" 2 "${V[reloads.file.ok]:-0}"
assert_eq "step 5: ravel_vip_virtual_services{vip=$VIP2}" 1 "${V[vipsvc.$VIP2]:-absent}"
out=$(hit client "http://$VIP2/" 20 -c 4) || fail "requests through the new VIP $VIP2 failed: $out"
assert_eq "step 5: requests answered through $VIP2" 20 "$(($(hit_count "$out" rs1) + $(hit_count "$out" rs2)))"

# --- 6: SIGHUP with the file unchanged: reloaded all the same, nothing changes ---------
refused 6 "SIGHUP, file unchanged" ok signal
assert_eq "step 6: ravel_config_reloads_total{trigger=signal,result=ok}" 1 "${V[reloads.signal.ok]:-0}"
if kill -0 "$RAVEL_PID" 2>/dev/null; then pass "step 6: ravel still runs after SIGHUP"; else fail "step 6: ravel exited on SIGHUP"; fi

# --- 7: a change that needs a restart: node.vipInterface (rewritten in place) ----------
refused 7 "node.vipInterface ravel0 -> ravel1" restart-required inplace "$SCENARIO_DIR/step7.yaml"
echo "$STATUS"
finding=${V[finding]:-}
assert_eq "step 7: /status first finding's path" node "${finding##* }"
assert_eq "step 7: ravel_config_reloads_total{trigger=file,result=restart-required}" 1 "${V[reloads.file.restart-required]:-0}"
if [[ $KSTATE == *ravel1* ]]; then fail "step 7: a device ravel1 appeared"; else pass "step 7: no device ravel1"; fi

# --- 8: the good file back (temporary file renamed over the config) --------------------
refused 8 "the step-5 file back" ok mv "$SCENARIO_DIR/step5.yaml"
assert_eq "step 8: ravel_config_reloads_total{trigger=file,result=ok}" 3 "${V[reloads.file.ok]:-0}"
assert_ge "step 8: success timestamp at or after the write" "$((T_WRITE / 1000000))" "${V[ts]}"

# --- the whole run ----------------------------------------------------------------------
traffic_stop loop
if ((TRAFFIC_FAILED != 0)); then
	log "failed requests (each error), then the rounds they were in (START END ok N failed N):"
	cat "$SCENARIO_DIR/loop.err" || true
	awk '$6 != 0' "$SCENARIO_DIR/loop.rounds" || true
fi
assert_eq "requests through $VIP that failed over the whole run (steps 2-8)" 0 "$TRAFFIC_FAILED"
assert_ge "requests through $VIP answered over the whole run" 30 "$TRAFFIC_OK"
# The loop ran through each step: some of its rounds fell entirely within it.
for s in 2 3 4 5 6 7 8; do
	assert_ge "requests through $VIP answered during step $s (rounds within its ${STEP_FROM[$s]}..${STEP_TO[$s]})" 1 \
		"$(traffic_ok_between loop "${STEP_FROM[$s]}" "${STEP_TO[$s]}")"
done
out=$(hit client "http://$VIP2/" 10) || fail "requests through $VIP2 at the end failed: $out"
assert_eq "reload attempts counted in all" 7 "${V[reloads]}"
assert_eq "plan against the kernel at the end" "no changes" "$(ravel_plan director "$cfg")"
log "write to kernel: step 4 (weight, mv): ${STEP_MS[4]:-?}; step 5 (new VIP, in place): ${STEP_MS[5]:-?}"
grep -E 'msg="(config reload|config finding|applying plan|SIGHUP)' "$SCENARIO_DIR/ravel.log" || true
ravel_stop "$RAVEL_PID"
