#!/usr/bin/env bash
# make demo: ravel programming a real kernel, end to end, in about a minute.
#
#   RAVEL_BIN=bin/ravel bash test/e2e/demo.sh        (what 'make demo' runs)
#
# This machine's kernel has no IPVS, so the demo boots a stock Debian kernel
# under QEMU (the e2e bed: test/e2e/README.md), builds a small lab of network
# namespaces on one virtual switch inside it (a client, a director, three
# realservers), starts 'ravel run' on the director with examples/demo.yaml,
# sends HTTP requests from the client through the VIP and shows:
#   - what ravel planned ('ravel plan --against kernel') before it started,
#   - the IPVS table ravel programmed ('ipvsadm -Ln', '--stats'),
#   - the VIP bound on ravel's device ravel0,
#   - how the requests were spread over the realservers, against the weights,
#   - a live edit of the config: a typo refused (kernel unchanged, `ravel status` shows the
#     finding), then a new weight applied in place.
# Exit status: 0 when every request was answered and both edits behaved, non-zero otherwise.
#
# Environment:
#   RAVEL_BIN           the ravel binary (default bin/ravel; built if missing)
#   RAVEL_DEMO_CONFIG   the config (default examples/demo.yaml; its services must
#                       use the lab's addresses: VIP 10.0.0.100, realservers
#                       10.0.0.11-13 on port 80)
#   RAVEL_DEMO_REQUESTS number of requests (default 120)
# Details of the run (guest console, ravel's log) go to test/e2e/.out/demo/.
set -euo pipefail

# ---------------------------------------------------------------------------
# Inside the guest: the lab, ravel, traffic, and the report.
# ---------------------------------------------------------------------------
demo_guest() {
	export SCENARIO=demo SCENARIO_DIR=$E2E_OUT/demo
	# shellcheck source=lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
	# lib.sh narrates for test logs; the demo tells its own story.
	log() { :; }
	trap _demo_cleanup EXIT

	local cfg=$RAVEL_DEMO_CONFIG n=${RAVEL_DEMO_REQUESTS:-120}
	local t0 out failed
	# Where this run's files are, as the host sees them.
	local logs=${E2E_OUT_DIR:-$E2E_OUT}/demo
	logs=${logs#"$E2E_REPO"/}

	heading "1. The lab: five network namespaces on one virtual switch (10.0.0.0/24)"
	topo_dr
	mk_ns rs3
	mk_link rs3 lan 10.0.0.13/24
	rs_serve "$VIP" 80 rs1 rs2 rs3
	cat <<EOF
   client   $CLIENT_IP   sends the requests to the VIP $VIP
   director $DIRECTOR_IP    runs 'ravel run'; ravel binds the VIP on its device ravel0
   rs1      $RS1_IP   \\
   rs2      $RS2_IP    > HTTP servers answering their name; each holds the VIP on lo
   rs3      10.0.0.13   /  (direct routing: they answer the client themselves)
EOF

	heading "2. The config: ${cfg#"$E2E_REPO"/}"
	grep -Ev '^[[:space:]]*(#|$)' "$cfg" | sed 's/[[:space:]]*#.*//; s/^/   /'

	heading "3. What ravel will change: ravel plan --against kernel (before it runs)"
	in_ns director "$RAVEL_BIN" plan --config "$cfg" --against kernel | sed 's/^/   /'

	heading "4. Starting ravel run on the director"
	t0=$SECONDS
	# ravel watches its file: run it on a copy the demo can edit (step 11).
	local live=$SCENARIO_DIR/ravel.yaml
	cp "$cfg" "$live"
	ravel_start director ravel "$live"
	wait_for 90 "ravel programs the web service" ipvs_has director "$VIP:80" 3 ||
		{ tail -n 20 "$SCENARIO_DIR/ravel.log"; exit 1; }
	wait_for 30 "ravel binds the VIP" vip_bound director "$VIP"
	echo "   the kernel was programmed $((SECONDS - t0)) s after start (its log: $logs/ravel.log)"

	heading "5. The kernel's IPVS table, as ravel programmed it: ipvsadm -Ln"
	in_ns director ipvsadm -Ln | sed 's/[[:space:]]*$//; s/^/   /'
	echo "   (Route = direct routing; Weight = the config's weights)"

	heading "6. The VIP on ravel's dummy device: ip -4 addr show ravel0"
	ip -n director -4 addr show ravel0 | sed 's/[[:space:]]*$//; s/^/   /'

	heading "7. Sending $n requests from the client to http://$VIP/ (a new connection each)"
	t0=$SECONDS
	out=$(hit client "http://$VIP/" "$n" -c 4 -timeout 5s 2>"$SCENARIO_DIR/hit.err") || true
	failed=$(awk '$1 == "failed" { print $2 }' <<<"$out")
	failed=${failed:-$n}
	echo "   $((n - failed)) answered, $failed failed, in $((SECONDS - t0)) s"

	heading "8. How the requests were spread over the realservers"
	# The destinations as the kernel has them, named by the lab's addresses.
	local -A name=([$RS1_IP]=rs1 [$RS2_IP]=rs2 [10.0.0.13]=rs3)
	local dests total_w=0 dest w nm got exp bar weights=""
	dests=$(in_ns director ipvsadm -Ln -t "$VIP:80" | awk '$1 == "->" && $2 ~ /:[0-9]+$/ { print $2, $4 }')
	while read -r dest w; do total_w=$((total_w + w)); done <<<"$dests"
	printf '   %-4s %-15s %6s %9s %9s\n' "" destination weight expected answered
	while read -r dest w; do
		nm=${name[${dest%:*}]:-"?"}
		got=$(hit_count "$out" "$nm")
		exp=$((total_w > 0 ? n * w / total_w : 0))
		bar=$(printf '%*s' $((got * 40 / n)) '' | tr ' ' '#')
		printf '   %-4s %-15s %6s %9s %9s  %s\n' "$nm" "$dest" "$w" "$exp" "$got" "$bar"
		weights+=${weights:+:}$w
	done <<<"$dests"
	echo "   (wrr sends each realserver weight/total of the new connections: $weights)"

	heading "9. The kernel's own counters: ipvsadm -Ln --stats"
	in_ns director ipvsadm -Ln --stats --exact | sed 's/[[:space:]]*$//; s/^/   /'
	echo "   (OutPkts stay 0: with direct routing the replies never pass the director)"

	heading "10. Converged: ravel plan --against kernel (while ravel runs)"
	in_ns director "$RAVEL_BIN" plan --config "$cfg" --against kernel | sed 's/^/   /'

	demo_reload "$live"

	local spread
	spread="rs1 $(hit_count "$out" rs1), rs2 $(hit_count "$out" rs2), rs3 $(hit_count "$out" rs3)"
	if ((failed == 0)); then
		echo "ok $((n - failed))/$n requests through VIP $VIP answered ($spread; weights $weights)" >"$SCENARIO_DIR/summary"
	else
		echo "FAILED: $failed of $n requests through VIP $VIP failed ($spread); errors: $logs/hit.err" >"$SCENARIO_DIR/summary"
		exit 1
	fi
	((_E2E_FAILED == 0)) || exit 1
}

heading() { printf '\n== %s\n' "$*"; }

# demo_reload FILE: edit the running config twice — a typo, which changes nothing, then a new
# weight, applied by diff — and show what the operator sees.
demo_reload() {
	local live=$1 t0 before after i
	local status=("$RAVEL_BIN" status --addr 127.0.0.1:10234)
	before=$(in_ns director ipvsadm -Sn)

	heading "11. Editing the config while ravel runs: a typo (wieght) is refused, nothing changes"
	sed 's/{address: 10.0.0.13, weight: 1}/{address: 10.0.0.13, wieght: 3}/' "$live" >"$live.tmp"
	mv "$live.tmp" "$live"
	# (Outputs are captured, not piped into grep -q: under pipefail, ravel status's exit 1 for
	# a refused reload, or a writer cut off by grep -q, would fail the test.)
	local js
	for ((i = 0; i < 100; i++)); do
		js=$(in_ns director "${status[@]}" --output json 2>/dev/null || true)
		[[ $js == *'"result": "invalid"'* ]] && break
		sleep 0.1
	done
	in_ns director "${status[@]}" | sed 's/^/   /' || true
	after=$(in_ns director ipvsadm -Sn)
	if [[ $after == "$before" ]]; then
		echo "   the kernel is unchanged: the last good config keeps running"
	else
		fail "a refused config changed the kernel"
	fi

	heading "12. Fixed: rs3's weight 1 -> 3, applied by diff (one in-place edit)"
	t0=$(date +%s%N)
	sed 's/{address: 10.0.0.13, weight: 1}/{address: 10.0.0.13, weight: 3}/' "$cfg" >"$live.tmp"
	mv "$live.tmp" "$live"
	local table
	for ((i = 0; i < 100; i++)); do
		table=$(in_ns director ipvsadm -Ln -t "$VIP:80")
		[[ $table =~ 10\.0\.0\.13:80\ +Route\ +3\  ]] && break
		sleep 0.1
	done
	echo "   in the kernel $((($(date +%s%N) - t0) / 1000000)) ms after the write:"
	sed 's/[[:space:]]*$//; s/^/   /' <<<"$table"
	grep -E 'applying plan|config reloaded|config reload refused' "$SCENARIO_DIR/ravel.log" | tail -n 3 | sed 's/^/   log: /'
	[[ $table =~ 10\.0\.0\.13:80\ +Route\ +3\  ]] || fail "the new weight did not reach the kernel within 10 s"
	in_ns director "${status[@]}" >/dev/null || fail "ravel status: not ready or the last reload was refused"
}

# Like lib.sh's cleanup, without its per-scenario summary line.
_demo_cleanup() {
	local rc=$? pid ns
	trap - ERR
	set +e
	for pid in "${_E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for ns in "${_E2E_NS[@]}"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns delete "$ns" 2>/dev/null
	done
	exit "$rc"
}

# ---------------------------------------------------------------------------
# On the host: prepare, boot the guest once, run demo_guest in it.
# ---------------------------------------------------------------------------
demo_host() {
	# shellcheck source=guest/common.sh
	. "$(dirname "${BASH_SOURCE[0]}")/guest/common.sh"
	local t0=$SECONDS out log rc=0
	cd "$E2E_REPO"
	out=$E2E_DIR/.out/demo
	rm -rf "$out"
	mkdir -p "$out"
	log=$out/prepare.log

	echo "ravel demo: a director programming IPVS in a real Linux kernel"
	echo "(this machine's kernel has no IPVS: the demo boots Debian's kernel under QEMU)"

	RAVEL_BIN=$(realpath -m "${RAVEL_BIN:-bin/ravel}")
	if [[ ! -x $RAVEL_BIN ]]; then
		echo "building ravel into $RAVEL_BIN"
		CGO_ENABLED=0 e2e_go build -trimpath -o "$RAVEL_BIN" ./cmd/ravel
	fi
	RAVEL_DEMO_CONFIG=$(realpath -e "${RAVEL_DEMO_CONFIG:-examples/demo.yaml}")
	"$RAVEL_BIN" config validate "$RAVEL_DEMO_CONFIG" >/dev/null ||
		e2e_die "the demo config $RAVEL_DEMO_CONFIG is not valid (ravel config validate says so above)"
	# The guest reads the binary lazily over 9p: a 'make build' on the host while the demo
	# runs would change it under the running ravel. Run a private copy.
	cp "$RAVEL_BIN" "$out/ravel"
	RAVEL_BIN=$out/ravel
	export RAVEL_BIN RAVEL_DEMO_CONFIG
	[[ -z ${RAVEL_DEMO_REQUESTS:-} ]] || export RAVEL_DEMO_REQUESTS

	echo "preparing: packages, test tools, guest kernel (cached after the first run)..."
	{
		e2e_ensure_packages
		(cd "$E2E_DIR/tools" && GOWORK=off GOFLAGS='' CGO_ENABLED=0 e2e_go build -trimpath -buildvcs=false -o "$E2E_DIR/.bin/" ./...)
	} >>"$log" 2>&1 || { cat "$log"; e2e_die "preparing failed (see above)"; }
	E2E_GUEST_IMAGE=$(bash "$E2E_GUEST_DIR/build.sh" 2>>"$log") || { cat "$log"; e2e_die "building the guest failed (see above)"; }
	export E2E_GUEST_IMAGE E2E_BIN=$E2E_DIR/.bin E2E_OUT_DIR=$out/guest
	# The guest sees the host's /tmp only where it is bound back in.
	local p
	for p in "$RAVEL_BIN" "$RAVEL_DEMO_CONFIG"; do
		if e2e_guest_invisible "$p"; then
			E2E_GUEST_BINDS="${E2E_GUEST_BINDS:+$E2E_GUEST_BINDS:}$(dirname "$p")"
		fi
	done
	export E2E_GUEST_BINDS=${E2E_GUEST_BINDS:-}

	echo "booting the guest (15-30 s under emulation)..."
	bash "$E2E_GUEST_DIR/run.sh" "$E2E_DIR/demo.sh" --guest 2>>"$log" || rc=$?

	echo
	if [[ $rc == 0 && -s $out/guest/demo/summary ]]; then
		echo "Demo OK in $((SECONDS - t0)) s: $(sed 's/^ok //' "$out/guest/demo/summary")"
		return 0
	fi
	tail -n 15 "$log" >&2
	if [[ -s $out/guest/demo/summary ]]; then
		echo "Demo FAILED after $((SECONDS - t0)) s: $(sed 's/^FAILED: //' "$out/guest/demo/summary")"
	else
		echo "Demo FAILED after $((SECONDS - t0)) s (guest exit $rc); details in ${out#"$E2E_REPO"/}/"
	fi
	return 1
}

if [[ ${1:-} == --guest ]]; then
	demo_guest
else
	demo_host
fi
