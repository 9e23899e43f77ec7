#!/usr/bin/env bash
# kapi.sh: run a throwaway etcd + kube-apiserver on 127.0.0.1 for tests and local work.
#
#   kapi.sh up                  start both (fresh state), wait for /readyz, print the kubeconfig path
#   kapi.sh down                stop both by PID and remove the state (logs are kept)
#   kapi.sh env                 print `export KUBECONFIG=...` (and KAPI_* variables) for eval
#   kapi.sh status              say what runs
#   kapi.sh stop-apiserver      stop only the API server (etcd keeps running with its data)
#   kapi.sh start-apiserver     start it again on the same port, wait for /readyz
#   kapi.sh restart-apiserver   both of the above
#
# State lives in $KAPI_DIR (default /var/tmp/ravel-kapi): pid files, ports, certificates, the
# etcd data dir, the kubeconfig and the logs (log/etcd.log, log/kube-apiserver.log).
# Ports are picked at random among the free ones. Binaries come from hack/kapi/build.sh (it
# honors KAPI_BIN, builds if needed: about 11 minutes cold, a no-op when cached).
# Go tests use internal/kapitest instead, which does the same in-process.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KAPI_DIR=${KAPI_DIR:-/var/tmp/ravel-kapi}
SERVICE_CIDR=10.96.0.0/24
READY_TIMEOUT=${KAPI_READY_TIMEOUT:-60}   # seconds
STOP_TIMEOUT=${KAPI_STOP_TIMEOUT:-15}     # seconds of SIGTERM before SIGKILL

log() { echo "kapi: $*" >&2; }
die() { log "$*"; exit 1; }

# pid_of NAME: the PID in NAME.pid if that process is alive and still runs the NAME binary.
pid_of() {
  local f="$KAPI_DIR/$1.pid" pid exe
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  exe=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1)
  [ "${exe##*/}" = "$1" ] || return 1
  echo "$pid"
}

# stop NAME: SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL.
stop() {
  local pid i
  if ! pid=$(pid_of "$1"); then
    rm -f "$KAPI_DIR/$1.pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$1 (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$KAPI_DIR/$1.pid"
}

port_in_use() {
  if command -v ss >/dev/null; then
    [ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# free_port VAR: set VAR to a random port in 20000-59999 that nothing uses now and that we
# haven't picked yet.
picked=" "
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    case "$picked" in *" $p "*) continue ;; esac
    port_in_use "$p" && continue
    picked="$picked$p "
    printf -v "$1" %s "$p"
    return 0
  done
  die "no free port found"
}

# spawn NAME ARGS...: start BIN/NAME in its own session, logging to log/NAME.log.
spawn() {
  local name=$1
  shift
  echo "==== $(date -Is) $KAPI_BIN/$name $*" >>"$KAPI_DIR/log/$name.log"
  setsid "$KAPI_BIN/$name" "$@" </dev/null >>"$KAPI_DIR/log/$name.log" 2>&1 &
  echo $! >"$KAPI_DIR/$name.pid"
}

load_state() {
  [ -f "$KAPI_DIR/state" ] || die "nothing in $KAPI_DIR; run: $0 up"
  # shellcheck disable=SC1091
  . "$KAPI_DIR/state"
}

start_etcd() {
  local client="http://127.0.0.1:$ETCD_PORT" peer="http://127.0.0.1:$ETCD_PEER_PORT" i
  spawn etcd --name=kapi --data-dir="$KAPI_DIR/etcd" \
    --listen-client-urls="$client" --advertise-client-urls="$client" \
    --listen-peer-urls="$peer" --initial-advertise-peer-urls="$peer" \
    --initial-cluster="kapi=$peer" --unsafe-no-fsync --log-level=warn
  for ((i = 0; i < READY_TIMEOUT * 20; i++)); do
    if curl -fsS --max-time 1 "$client/health" 2>/dev/null | grep -q '"health":"true"'; then
      return 0
    fi
    pid_of etcd >/dev/null || { tail -n 30 "$KAPI_DIR/log/etcd.log" >&2; die "etcd exited"; }
    sleep 0.05
  done
  die "etcd not healthy after ${READY_TIMEOUT}s"
}

start_apiserver() {
  local i out
  pid_of kube-apiserver >/dev/null && die "kube-apiserver already running"
  pid_of etcd >/dev/null || die "etcd is not running; run: $0 up"
  spawn kube-apiserver \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --cert-dir="$KAPI_DIR/certs" \
    --endpoint-reconciler-type=none \
    --token-auth-file="$KAPI_DIR/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$KAPI_DIR/sa.pub" \
    --service-account-signing-key-file="$KAPI_DIR/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --disable-admission-plugins=ServiceAccount \
    --profiling=false
  for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
    out=$(curl -sk --max-time 2 -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null || true)
    [ "$out" = ok ] && return 0
    pid_of kube-apiserver >/dev/null || {
      tail -n 30 "$KAPI_DIR/log/kube-apiserver.log" >&2
      die "kube-apiserver exited"
    }
    sleep 0.1
  done
  tail -n 30 "$KAPI_DIR/log/kube-apiserver.log" >&2
  die "kube-apiserver /readyz not ok after ${READY_TIMEOUT}s"
}

up() {
  if pid_of kube-apiserver >/dev/null && pid_of etcd >/dev/null; then
    log "already up ($KAPI_DIR)"
    echo "$KAPI_DIR/kubeconfig"
    return 0
  fi
  down_quiet
  KAPI_BIN=$(bash "$here/build.sh" | tail -n 1)
  if [ ! -x "$KAPI_BIN/kube-apiserver" ] || [ ! -x "$KAPI_BIN/etcd" ]; then
    die "build.sh gave no binaries"
  fi
  local t0
  t0=$(date +%s%N)
  mkdir -p "$KAPI_DIR/log" "$KAPI_DIR/certs"
  chmod 700 "$KAPI_DIR"
  mkdir -m 700 "$KAPI_DIR/etcd"
  openssl genrsa -out "$KAPI_DIR/sa.key" 2048 2>/dev/null
  openssl rsa -in "$KAPI_DIR/sa.key" -pubout -out "$KAPI_DIR/sa.pub" 2>/dev/null
  TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$TOKEN,admin,admin-uid,system:masters" >"$KAPI_DIR/tokens.csv"
  chmod 600 "$KAPI_DIR/tokens.csv" "$KAPI_DIR/sa.key"
  free_port ETCD_PORT
  free_port ETCD_PEER_PORT
  free_port API_PORT
  cat >"$KAPI_DIR/state" <<EOS
KAPI_BIN=$KAPI_BIN
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
API_PORT=$API_PORT
TOKEN=$TOKEN
EOS
  # The API server self-signs certs/apiserver.crt (for 127.0.0.1 and localhost) on its first
  # start and reuses it on restarts; the kubeconfig trusts that file.
  cat >"$KAPI_DIR/kubeconfig" <<EOS
apiVersion: v1
kind: Config
clusters:
- name: kapi
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $KAPI_DIR/certs/apiserver.crt
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: kapi
  context:
    cluster: kapi
    user: admin
    namespace: default
current-context: kapi
EOS
  chmod 600 "$KAPI_DIR/kubeconfig"
  start_etcd
  start_apiserver
  log "ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms: etcd :$ETCD_PORT, kube-apiserver https://127.0.0.1:$API_PORT ($KAPI_DIR)"
  echo "$KAPI_DIR/kubeconfig"
}

# down_quiet: stop what runs and remove the state, keeping the logs.
down_quiet() {
  [ -d "$KAPI_DIR" ] || return 0
  stop kube-apiserver
  stop etcd
  rm -rf "$KAPI_DIR/etcd" "$KAPI_DIR/certs" "$KAPI_DIR/state" "$KAPI_DIR/kubeconfig" \
    "$KAPI_DIR/tokens.csv" "$KAPI_DIR/sa.key" "$KAPI_DIR/sa.pub"
}

case "${1:-}" in
up) up ;;
down)
  down_quiet
  log "down (logs kept in $KAPI_DIR/log)"
  ;;
env)
  load_state
  echo "export KUBECONFIG=$KAPI_DIR/kubeconfig"
  echo "export KAPI_DIR=$KAPI_DIR"
  echo "export KAPI_BIN=$KAPI_BIN"
  ;;
status)
  for n in etcd kube-apiserver; do
    if p=$(pid_of "$n"); then echo "$n: running (pid $p)"; else echo "$n: stopped"; fi
  done
  ;;
stop-apiserver)
  load_state
  stop kube-apiserver
  ;;
start-apiserver)
  load_state
  start_apiserver
  ;;
restart-apiserver)
  load_state
  t0=$(date +%s%N)
  stop kube-apiserver
  start_apiserver
  log "kube-apiserver restarted in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  ;;
*)
  sed -n '2,16p' "$0" >&2
  exit 2
  ;;
esac
