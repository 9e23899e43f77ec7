# shellcheck shell=bash
# The IPVS sampler for e2e scenarios: a claim such as "no destination was removed or reweighted
# during X" is checked on every read of the kernel's table, not on a few ipvsadm calls. Source
# after lib.sh (or lib-kube.sh):
#
#   . "$(dirname "$0")/../lib-ipvs.sh"
#
# A background bash in a namespace reads /proc/net/ip_vs about every 50 ms and records every
# change (test/e2e/ipvs-sampler.sh); test/e2e/ipvs.awk answers questions about the record.
# Specs name services and destinations in /proc's hex form (hex_addr).
#
# Functions:
#   ipvs_sampler_start NS           start the sampler in NS (scratch in $IPVS_DIR); returns after
#                                   its first sample, whose time (µs) is in IPVS_T0
#   ipvs_sampler_stop               stop it (lib.sh's cleanup kills it anyway)
#   hex_addr VAR IP:PORT            VAR = IP:PORT as /proc/net/ip_vs writes it (0A000064:0050)
#   ipvs_first SPEC AFTER_US        "seen T", "already T" or "never" (ipvs.awk mode first)
#   wait_seen VAR SECS DESC SPEC AFTER_US   a check: SPEC seen within SECS of AFTER_US; VAR
#                                   gets the milliseconds (SEEN_T the sample's time)
#   assert_held DESC SPEC FROM_US TO_US     a check: SPEC held in every sample of the window
#                                   (at least 5 samples, no gap over 2 s)
#   now_us VAR                      VAR = now in µs (EPOCHREALTIME, the sampler's clock)
#   nap SECS                        sleep without starting a process

IPVS_DIR=$(mktemp -d /tmp/ravel-e2e-ipvs.XXXXXX)
mkfifo "$IPVS_DIR/nap.lib"
exec {_IPVS_NAP}<>"$IPVS_DIR/nap.lib" # 'read -t S -u FD' sleeps without a process
nap() { read -r -t "$1" -u "$_IPVS_NAP" || :; }

now_us() {
	local _n=${EPOCHREALTIME//[.,]/}
	printf -v "$1" '%d' "$((10#$_n))"
}

hex_addr() {
	local -n _hex=$1
	local ip=${2%:*} port=${2##*:} a b c d
	IFS=. read -r a b c d <<<"$ip"
	printf -v _hex '%02X%02X%02X%02X:%04X' "$a" "$b" "$c" "$d" "$port"
}

ipvs_sampler_start() {
	local ns=$1
	rm -f "$IPVS_DIR/sampler.stop" "$IPVS_DIR/ipvs.rec"
	bg "$ns" ipvs-sampler bash "$E2E_DIR/ipvs-sampler.sh" "$IPVS_DIR"
	wait_for 30 "the IPVS sampler's first samples" test -s "$IPVS_DIR/ipvs.rec" || die "the IPVS sampler does not run"
	read -r IPVS_T0 _ <"$IPVS_DIR/ipvs.rec"
}

ipvs_sampler_stop() {
	: >"$IPVS_DIR/sampler.stop"
}

ipvs_first() { awk -v mode=first -v spec="$1" -v from="$2" -f "$E2E_DIR/ipvs.awk" "$IPVS_DIR/ipvs.rec"; }

wait_seen() {
	local -n _ms=$1
	local secs=$2 desc=$3 spec=$4 after=$5 deadline=$((SECONDS + $2)) r t
	while :; do
		read -r r t <<<"$(ipvs_first "$spec" "$after")"
		[[ $r == never ]] || break
		((SECONDS < deadline)) || break
		nap 0.3
	done
	case $r in
	seen)
		SEEN_T=$t
		_ms=$(((t - after) / 1000))
		if ((_ms <= secs * 1000)); then pass "$desc: in IPVS ${_ms} ms after the change (limit ${secs} s)"; else fail "$desc: in IPVS only ${_ms} ms after the change (limit ${secs} s)"; fi
		;;
	already)
		_ms=already
		fail "$desc: already in IPVS before the change (the check is wrong)"
		;;
	*)
		_ms=never
		fail "$desc: not in IPVS ${secs} s after the change; last change: $(awk '$2 != "=" { l = $0 } END { print l }' "$IPVS_DIR/ipvs.rec")"
		;;
	esac
	return 0
}

assert_held() {
	local desc=$1 bad n gap fbt fbs
	read -r bad n gap fbt fbs <<<"$(awk -v mode=hold -v spec="$2" -v from="$3" -v to="$4" -f "$E2E_DIR/ipvs.awk" "$IPVS_DIR/ipvs.rec")"
	if ((bad == 0 && n >= 5 && gap <= 2000000)); then
		pass "$desc: in all $n samples of /proc/net/ip_vs over $(((${4} - ${3}) / 1000)) ms (largest gap $((gap / 1000)) ms)"
	elif ((bad > 0)); then
		fail "$desc: violated in $bad of $n samples; first at +$(((fbt - ${3}) / 1000)) ms: $fbs"
	else
		fail "$desc: the sampler did not cover the window ($n samples, largest gap $((gap / 1000)) ms over $(((${4} - ${3}) / 1000)) ms)"
	fi
}
