#!/usr/bin/env bash
# ipvs-sampler.sh DIR: reads /proc/net/ip_vs about every 50 ms (bash builtins only: no process
# per read, which costs 0.1-0.5 s under emulation) and appends one line per read to
# DIR/ipvs.rec: "T =" (unchanged) or "T S STATE" (changed; STATE: a token
# "SERVICE>DEST=WEIGHT,..." per service, in the kernel's order, addresses in /proc's hex form);
# T in µs. Stops when DIR/sampler.stop exists. Started by lib-ipvs.sh's ipvs_sampler_start.
P=$1
mkfifo "$P/nap" 2>/dev/null || :
exec 3<>"$P/nap"
prev=x
while [[ ! -e $P/sampler.stop ]]; do
	t=${EPOCHREALTIME//[.,]/}
	s=
	while read -r a b c d _; do
		case $a in
		TCP | UDP | SCTP) s+=" $b>" ;;
		'->') [[ $b != [0-9A-F]*:* ]] || s+="$b=$d," ;;
		esac
	done </proc/net/ip_vs
	if [[ $s == "$prev" ]]; then
		echo "$((10#$t)) =" >>"$P/ipvs.rec"
	else
		echo "$((10#$t)) S$s" >>"$P/ipvs.rec"
		prev=$s
	fi
	read -r -t 0.05 -u 3 || :
done
