#!/usr/bin/env bash
# Runs e2e scenarios one after the other INSIDE the guest (test/e2e/run.sh
# boots the guest once and starts this through test/e2e/guest/run.sh).
#
#   suite.sh SCENARIO.sh...
#
# Each scenario runs in its own process group with a timeout
# (E2E_SCENARIO_TIMEOUT seconds, default 300); afterwards every process it
# left and every network namespace that exists is removed, so the next one
# starts clean whatever happened. One line per scenario goes to
# $E2E_OUT/results ("PASS|FAIL name seconds [reason]"), which the host reads
# to print the totals.
set -uo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${E2E_OUT:?suite.sh runs inside the e2e guest (E2E_OUT unset)}"
export E2E_BIN=${E2E_BIN:-$E2E_DIR/.bin}
export E2E_REPO=${E2E_REPO:-$(cd "$E2E_DIR/../.." && pwd)}
export RAVEL_BIN=${RAVEL_BIN:-$E2E_REPO/bin/ravel}
SCENARIO_TIMEOUT=${E2E_SCENARIO_TIMEOUT:-300}
RESULTS=$E2E_OUT/results
: >"$RESULTS"

echo "[e2e] guest kernel $(uname -r), $(nproc) vCPUs, $(ipvsadm --version 2>/dev/null | head -n1)"
[[ -x $RAVEL_BIN ]] || echo "[e2e] note: no ravel binary at $RAVEL_BIN; scenarios that need it will fail"

# Remove whatever a scenario left behind: processes in named namespaces,
# then the namespaces themselves (a namespace only dies with its last process).
clean_slate() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns delete "$ns" 2>/dev/null
	done
}

for f in "$@"; do
	name=$(basename "${f%.sh}")
	echo
	echo "[e2e] === $name"
	clean_slate
	t0=$SECONDS
	# timeout makes itself a process-group leader and signals the whole group
	# on expiry: the scenario and every server it started in the background.
	# -k: SIGKILL 10 s after the SIGTERM if something ignores it.
	SCENARIO=$name SCENARIO_DIR=$E2E_OUT/scenarios/$name \
		timeout -k 10 "$SCENARIO_TIMEOUT" bash "$f" </dev/null &
	pgid=$!
	wait "$pgid"
	rc=$?
	# Stragglers (a server the scenario did not stop) are still in the group.
	kill -9 -- "-$pgid" 2>/dev/null
	clean_slate
	secs=$((SECONDS - t0))
	if ((rc == 0)); then
		echo "[e2e] PASS $name (${secs}s)"
		echo "PASS $name $secs" >>"$RESULTS"
	else
		reason="exit $rc"
		((rc == 124)) && reason="timed out after ${SCENARIO_TIMEOUT}s (E2E_SCENARIO_TIMEOUT)"
		echo "[e2e] FAIL $name (${secs}s): $reason"
		echo "FAIL $name $secs $reason" >>"$RESULTS"
	fi
done

! grep -q '^FAIL' "$RESULTS"
