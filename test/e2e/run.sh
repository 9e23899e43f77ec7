#!/usr/bin/env bash
# Entry point of the real-kernel e2e tests ('make e2e'):
#
#   bash test/e2e/run.sh
#
# 1. installs the host packages the bed needs (first run on a machine only),
# 2. builds the test tools (test/e2e/tools) into test/e2e/.bin,
# 3. builds or reuses the guest kernel + initramfs (test/e2e/guest/build.sh),
# 4. boots the guest ONCE and runs every selected test/e2e/scenarios/*.sh in
#    it (test/e2e/suite.sh), each in fresh namespaces with its own timeout;
#    scenarios marked "# e2e-boot: systemd" run after, in a second boot with
#    systemd as PID 1 (see below),
# 5. prints the closing line "N passed, N failed" and exits non-zero if any
#    scenario failed or did not run, or the guest failed.
#
# Environment:
#   RAVEL_BIN             the ravel binary for scenarios that need it
#                         (default bin/ravel in the repo; missing = those fail)
#   E2E_ONLY              extended regex; only scenarios whose file name matches
#   E2E_SCENARIO_TIMEOUT  seconds per scenario (default 300)
#   E2E_TIMEOUT           seconds for the whole guest run (default 300 + 200 per scenario)
#   E2E_BOOT_TIMEOUT      seconds for the guest to boot (default 300)
#   E2E_OUT_DIR           results dir (default test/e2e/.out/last, emptied first)
#   E2E_GUEST_MEM, E2E_GUEST_CPUS   guest size (default 1536 MiB, 2 vCPUs)
#   E2E_KERNEL_VERSION, E2E_GUEST_CACHE   see guest/build.sh
#   E2E_KAPI_DIR          state dir of the kube-apiserver started for scenarios
#                         marked "# e2e-needs: kapi" (default /var/tmp/ravel-e2e-kapi.PID)
# Every E2E_* and RAVEL_* variable is passed on to the scenarios.
set -euo pipefail

# shellcheck source=guest/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/guest/common.sh"

T0=$SECONDS
cd "$E2E_REPO"

# --- scenarios ------------------------------------------------------------------
scenarios=()
for f in "$E2E_DIR"/scenarios/*.sh; do
	[[ -e $f ]] || continue
	if [[ -n ${E2E_ONLY:-} ]] && ! [[ $(basename "$f") =~ $E2E_ONLY ]]; then continue; fi
	scenarios+=("$f")
done
((${#scenarios[@]})) || e2e_die "no scenario in test/e2e/scenarios matches E2E_ONLY='${E2E_ONLY:-}'"

# --- host prerequisites and tools ---------------------------------------------------
e2e_ensure_packages

# CGO_ENABLED=0: static binaries, independent of the libc they meet in the
# guest. GOWORK=off, GOFLAGS empty: the tools are a stdlib-only module of
# their own (tools/go.mod), whatever go.work or flags the environment has.
# -buildvcs=false: no git stamping (fails on checkouts owned by another user).
e2e_log "building test tools into test/e2e/.bin"
(cd "$E2E_DIR/tools" && GOWORK=off GOFLAGS='' CGO_ENABLED=0 e2e_go build -trimpath -buildvcs=false -o "$E2E_DIR/.bin/" ./...) ||
	e2e_die "building test/e2e/tools failed"
export E2E_BIN=$E2E_DIR/.bin

RAVEL_BIN=${RAVEL_BIN:-bin/ravel}
RAVEL_BIN=$(realpath -m "$RAVEL_BIN")
export RAVEL_BIN
if [[ -x $RAVEL_BIN ]]; then
	e2e_log "ravel binary: $RAVEL_BIN"
else
	e2e_log "warning: no ravel binary at $RAVEL_BIN (RAVEL_BIN); scenarios that need it will fail"
fi
# The guest only sees the host's /tmp where run.sh binds it back in.
if e2e_guest_invisible "$RAVEL_BIN"; then
	E2E_GUEST_BINDS="${E2E_GUEST_BINDS:+$E2E_GUEST_BINDS:}$(dirname "$RAVEL_BIN")"
	export E2E_GUEST_BINDS
fi

# --- host-side build steps that scenarios need ------------------------------------
# Run from the repo root before the guest boots, with E2E_BIN, E2E_REPO and
# RAVEL_BIN set and Go on PATH. Two ways for a scenario to get one:
#   - implicitly: mentioning "$E2E_BIN/PKG.test" where ./PKG/ is a Go package
#     directory of the repo builds it with: go test -c -o "$E2E_BIN/PKG.test" ./PKG/
#   - explicitly, for anything else, a comment line of its own:
#       # e2e-build: go test -c -o "$E2E_BIN/iptables.test" ./netops/iptables/
# Identical steps run once. A failing step fails its scenario(s) without
# booting them (their output would only be a confusing "binary missing").
[[ -d /usr/local/go/bin ]] && export PATH=/usr/local/go/bin:$PATH
export E2E_REPO
build_steps() {
	local f=$1 pkg
	sed -n 's/^# e2e-build: *//p' "$f"
	# shellcheck disable=SC2016,SC2013 # the literal text $E2E_BIN is what we look for
	for pkg in $(grep -oE '\$\{?E2E_BIN\}?/[A-Za-z0-9_-]+\.test' "$f" | sed -E 's|.*/||; s|\.test$||' | sort -u); do
		if compgen -G "$E2E_REPO/$pkg/*.go" >/dev/null; then
			# shellcheck disable=SC2016 # expanded by the bash that runs the step
			printf 'go test -c -o "$E2E_BIN/%s.test" ./%s/\n' "$pkg" "$pkg"
		fi
	done
}
declare -A step_rc=() prep_failed=()
runnable=()
for f in "${scenarios[@]}"; do
	name=$(basename "${f%.sh}")
	while IFS= read -r step; do
		if [[ -z ${step_rc[$step]+set} ]]; then
			e2e_log "$name: host build step: $step"
			step_rc[$step]=0
			(cd "$E2E_REPO" && bash -c "$step") >&2 || step_rc[$step]=$?
		fi
		# (a plain variable: an array subscript holding '$' would be expanded
		# again inside (( )))
		src=${step_rc[$step]}
		if [[ $src != 0 ]]; then
			prep_failed[$name]="host build step failed (exit $src): $step"
		fi
	done < <(build_steps "$f")
	[[ -n ${prep_failed[$name]:-} ]] || runnable+=("$f")
done

t=$SECONDS
E2E_GUEST_IMAGE=$(bash "$E2E_GUEST_DIR/build.sh") || e2e_die "building the guest failed"
export E2E_GUEST_IMAGE
e2e_log "guest image ready in $((SECONDS - t))s: $E2E_GUEST_IMAGE"

export E2E_OUT_DIR=${E2E_OUT_DIR:-$E2E_DIR/.out/last}
rm -rf "$E2E_OUT_DIR"
mkdir -p "$E2E_OUT_DIR"

# The guest reads binaries lazily from the host over 9p: a `make build` during the run would
# change bin/ravel under processes already running in the guest (seen: ravel crashing inside
# client-go with "traceback did not unwind"). Scenarios get a private copy.
if [[ -x $RAVEL_BIN ]]; then
	cp "$RAVEL_BIN" "$E2E_OUT_DIR/ravel"
	export RAVEL_BIN=$E2E_OUT_DIR/ravel
fi

# --- a kube-apiserver, for scenarios that need one ----------------------------------
# A scenario with a line "# e2e-needs: kapi" follows a real kube-apiserver. One
# etcd + kube-apiserver serve the whole run, on the host's 127.0.0.1
# (hack/kapi/kapi.sh; the binaries come from hack/kapi/build.sh: a no-op when
# cached, about 11 minutes on a new machine). The guest reaches them through
# QEMU's user-mode network (E2E_GUEST_NET=user, see guest/run.sh), where the
# host's loopback is 192.168.76.2. Scenarios get:
#   E2E_KUBECONFIG  a kubeconfig for use IN the guest: https://192.168.76.2:PORT,
#                   the API server's self-signed certificate as the CA, and
#                   tls-server-name "kubernetes": that certificate covers 127.0.0.1
#                   and the kubernetes* names, not the address the guest dials, and
#                   naming one of its names keeps TLS verified (no insecure-skip).
#   E2E_KAPI_HOST   192.168.76.2, which scenario namespaces route to (lib-kube.sh)
# Scenarios keep apart by naming (own nodes, namespaces and nodeSelector label):
# nothing is deleted between them. The state dir is under /var/tmp because the
# guest must read the CA file there (it cannot see the host's /tmp). Stopped on
# exit; its logs are copied to $E2E_OUT_DIR/kapi/.
kapi_scenarios=()
for f in "${runnable[@]}"; do
	if grep -Eq '^# e2e-needs:.*\<kapi\>' "$f"; then kapi_scenarios+=("$f"); fi
done
KAPI_STARTED=
kapi_down() {
	[[ -n $KAPI_STARTED ]] || return 0
	KAPI_DIR=$E2E_KAPI_DIR bash "$E2E_REPO/hack/kapi/kapi.sh" down >/dev/null 2>&1 || true
	mkdir -p "$E2E_OUT_DIR/kapi" && cp -r "$E2E_KAPI_DIR/log/." "$E2E_OUT_DIR/kapi/" 2>/dev/null || true
	rm -rf "$E2E_KAPI_DIR"
	KAPI_STARTED=
}
trap kapi_down EXIT
if ((${#kapi_scenarios[@]})); then
	export E2E_KAPI_DIR=${E2E_KAPI_DIR:-/var/tmp/ravel-e2e-kapi.$$}
	t=$SECONDS
	e2e_log "starting kube-apiserver + etcd for ${#kapi_scenarios[@]} scenario(s) (state in $E2E_KAPI_DIR)"
	KAPI_STARTED=1
	kapi_ok=
	# Twice: on a loaded machine a start can lose a race (kapi.sh checks the
	# new process's name before setsid has exec'd it, and says "etcd exited").
	for try in 1 2; do
		if KAPI_DIR=$E2E_KAPI_DIR bash "$E2E_REPO/hack/kapi/kapi.sh" up >/dev/null; then
			kapi_ok=1
			break
		fi
		e2e_log "kube-apiserver start $try failed"
	done
	if [[ -n $kapi_ok ]]; then
		# shellcheck disable=SC1091 # written by kapi.sh: API_PORT, TOKEN, ...
		. "$E2E_KAPI_DIR/state"
		export E2E_KAPI_HOST=192.168.76.2 E2E_GUEST_NET=user
		export E2E_KUBECONFIG=$E2E_KAPI_DIR/kubeconfig.guest
		cat >"$E2E_KUBECONFIG" <<-EOS
			apiVersion: v1
			kind: Config
			clusters:
			- name: e2e
			  cluster:
			    server: https://$E2E_KAPI_HOST:$API_PORT
			    certificate-authority: $E2E_KAPI_DIR/certs/apiserver.crt
			    tls-server-name: kubernetes
			users:
			- name: admin
			  user:
			    token: $TOKEN
			contexts:
			- name: e2e
			  context:
			    cluster: e2e
			    user: admin
			current-context: e2e
		EOS
		chmod 600 "$E2E_KUBECONFIG"
		e2e_log "kube-apiserver ready in $((SECONDS - t))s (guest kubeconfig $E2E_KUBECONFIG)"
	else
		keep=()
		for f in "${runnable[@]}"; do
			if printf '%s\n' "${kapi_scenarios[@]}" | grep -qxF -- "$f"; then
				prep_failed[$(basename "${f%.sh}")]="the kube-apiserver did not start (hack/kapi/kapi.sh up; logs in ${E2E_OUT_DIR#"$E2E_REPO"/}/kapi/)"
			else
				keep+=("$f")
			fi
		done
		runnable=(${keep[@]+"${keep[@]}"})
		kapi_down
	fi
fi

# --- scenarios that need systemd as PID 1 ---------------------------------------------
# A scenario with a line "# e2e-boot: systemd" runs in a second boot of its own, with
# systemd as PID 1 over a writable overlay of a Debian root (packaging/debian-root.sh:
# debootstrap minbase + systemd, cached; guest/init.sh's boot_systemd). The first boot
# runs everything else, as before.
systemd_runnable=()
plain=()
for f in "${runnable[@]}"; do
	if grep -Eq '^# e2e-boot: *systemd *$' "$f"; then systemd_runnable+=("$f"); else plain+=("$f"); fi
done
runnable=(${plain[@]+"${plain[@]}"})
if ((${#systemd_runnable[@]})) && [[ -z ${E2E_GUEST_ROOT:-} ]]; then
	if ! E2E_GUEST_ROOT=$(bash "$E2E_REPO/packaging/debian-root.sh" | tail -n1) || [[ -z $E2E_GUEST_ROOT ]]; then
		for f in "${systemd_runnable[@]}"; do
			prep_failed[$(basename "${f%.sh}")]="no Debian root for the systemd boot (packaging/debian-root.sh failed)"
		done
		systemd_runnable=()
	fi
fi

# --- one boot, every scenario ---------------------------------------------------------
# E2E_TIMEOUT is only the backstop for a hung guest (each scenario has its own
# E2E_SCENARIO_TIMEOUT in suite.sh). A fixed 1200 s no longer fits the whole
# suite on a busy 2-core machine (17 scenarios took about 1500 s there), so
# unless it is set it grows with the selection: 300 s for the boot and
# start-up, 200 s per scenario.
if [[ -z ${E2E_TIMEOUT:-} ]]; then
	export E2E_TIMEOUT=$((300 + 200 * ${#runnable[@]}))
fi
# The API server lives on the host, out of the guest's reach: a scenario that must stop and
# start it (an outage drill) asks the host through the shared results dir. It writes
# kapi-ctl/ID.req holding "stop-apiserver" or "start-apiserver"; this loop runs
# 'kapi.sh CMD' (etcd keeps its data, the port stays) and answers with kapi-ctl/ID.done holding
# the exit status (lib-kube.sh: kapi_ctl). Nothing else is accepted.
KAPI_CTL_PID=
if [[ -n $KAPI_STARTED ]]; then
	mkdir -p "$E2E_OUT_DIR/kapi-ctl"
	export E2E_KAPI_CTL=1
	(
		while :; do
			for req in "$E2E_OUT_DIR"/kapi-ctl/*.req; do
				[[ -e $req ]] || continue
				cmd=$(<"$req") id=${req%.req}
				rm -f "$req"
				case $cmd in
				stop-apiserver | start-apiserver)
					e2e_log "kapi-ctl: $cmd (asked by ${id##*/})"
					st=0
					KAPI_DIR=$E2E_KAPI_DIR bash "$E2E_REPO/hack/kapi/kapi.sh" "$cmd" >"$id.log" 2>&1 || st=$?
					;;
				*)
					echo "kapi-ctl: refused '$cmd'" >"$id.log"
					st=2
					;;
				esac
				echo "$st" >"$id.done.tmp" && mv -f "$id.done.tmp" "$id.done"
			done
			sleep 0.2
		done
	) &
	KAPI_CTL_PID=$!
fi
rc=0
if ((${#runnable[@]})); then
	e2e_log "running ${#runnable[@]} scenario(s) in the guest"
	bash "$E2E_GUEST_DIR/run.sh" "$E2E_DIR/suite.sh" "${runnable[@]}" || rc=$?
fi
[[ -z $KAPI_CTL_PID ]] || kill "$KAPI_CTL_PID" 2>/dev/null || true
if ((${#systemd_runnable[@]})); then
	e2e_log "running ${#systemd_runnable[@]} scenario(s) in a guest with systemd as PID 1 ($E2E_GUEST_ROOT)"
	sd_out=$E2E_OUT_DIR/boot-systemd
	mkdir -p "$sd_out"
	src=0
	E2E_GUEST_INIT=systemd E2E_GUEST_ROOT=$E2E_GUEST_ROOT E2E_GUEST_NET=none E2E_OUT_DIR=$sd_out \
		E2E_TIMEOUT=$((300 + 200 * ${#systemd_runnable[@]})) \
		bash "$E2E_GUEST_DIR/run.sh" "$E2E_DIR/suite.sh" "${systemd_runnable[@]}" || src=$?
	((rc != 0)) || rc=$src
	# One results file and one scenarios dir for the totals below.
	cat "$sd_out/results" >>"$E2E_OUT_DIR/results" 2>/dev/null || true
	mkdir -p "$E2E_OUT_DIR/scenarios"
	cp -r "$sd_out/scenarios/." "$E2E_OUT_DIR/scenarios/" 2>/dev/null || true
fi

# --- totals ---------------------------------------------------------------------------
# Count from the guest's results file; a scenario with no result (the guest
# died or timed out first) counts as failed.
passed=0 failed=0
echo
echo "e2e results (logs: ${E2E_OUT_DIR#"$E2E_REPO"/}):"
for f in "${scenarios[@]}"; do
	name=$(basename "${f%.sh}")
	line=$(grep -E "^(PASS|FAIL) $name " "$E2E_OUT_DIR/results" 2>/dev/null | tail -n1 || true)
	if [[ -n ${prep_failed[$name]:-} ]]; then
		failed=$((failed + 1))
		echo "  FAIL  $name: ${prep_failed[$name]}"
	elif [[ $line == PASS* ]]; then
		passed=$((passed + 1))
		echo "  PASS  $name (${line#PASS "$name" }s)"
	elif [[ -n $line ]]; then
		failed=$((failed + 1))
		read -r _ _ secs reason <<<"$line"
		echo "  FAIL  $name (${secs}s): $reason"
		# The failed checks themselves (lib.sh fail), the first few.
		head -n 5 "$E2E_OUT_DIR/scenarios/$name/failures" 2>/dev/null | sed 's/^/          /' || true
	else
		failed=$((failed + 1))
		echo "  FAIL  $name: did not run to completion (guest exit $rc)"
	fi
done
if ((rc != 0 && failed == 0)); then
	echo "  the guest run itself failed (exit $rc): see above"
fi
e2e_log "e2e total $((SECONDS - T0))s"
echo "$passed passed, $failed failed"
((failed == 0 && rc == 0))
