#!/usr/bin/env bash
# Runs package netops' real-kernel tests in the guest: the IPVS, links and sysctl
# conformance suites (the same tables the fakes pass on every host), the quirk
# tests that pin what netops works around, and a real connection's counters.
# Each test makes its own throwaway network namespaces.
#
# Needs $E2E_BIN/netops.test, built on the host with
#   go test -c -o "$E2E_BIN/netops.test" ./netops/
# A missing binary, a failing test, a skipped kernel test or a run that ran no
# kernel test at all fails the scenario: a skip here would mean the guest
# kernel lost IPVS, never that the tests do not apply.
. "$(dirname "$0")/../lib.sh"

bin=$E2E_BIN/netops.test
[[ -x $bin ]] || die "no $bin: build it with 'go test -c -o $bin ./netops/' (test/e2e/run.sh does)"
[[ -e /proc/net/ip_vs ]] || die "the guest kernel has no IPVS (/proc/net/ip_vs missing)"

out=$SCENARIO_DIR/netops.test.log
log "running $bin -test.run 'Kernel|Netns' (output in $out)"
rc=0
(cd "$E2E_REPO/netops" && "$bin" -test.v -test.count=1 -test.timeout=240s -test.run 'Kernel|Netns') >"$out" 2>&1 || rc=$?
# The verdicts and every logged quirk, for the scenario's log.
grep -E '^(---|    ---) (PASS|FAIL|SKIP)|^\s+kernel_test\.go|^(ok|FAIL|PASS)$' "$out" || true

if ((rc == 0)); then pass "netops kernel tests exit 0"; else fail "netops kernel tests exit $rc (see $out)"; fi
if grep -q -- '--- SKIP' "$out"; then
	fail "skipped tests in the guest: $(grep -- '--- SKIP' "$out" | tr -s ' ' | tr '\n' ';')"
else
	pass "nothing skipped"
fi
for t in TestKernelConformanceIPVS TestKernelConformanceLinks TestKernelSysctl TestKernelIPVSStats TestKernelQuirks TestNetnsLinksLoopback; do
	if grep -q -- "^--- PASS: $t " "$out"; then pass "$t"; else fail "$t did not pass"; fi
done
