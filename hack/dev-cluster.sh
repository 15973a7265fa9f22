#!/usr/bin/env bash
# A local Kubernetes control plane with simulated nodes, for the demo and the
# end-to-end tests. No containers and no internet needed: every binary is
# built from the Go module proxy by hack/control-plane.sh and cached.
#
#   hack/dev-cluster.sh up       # start (or check) the cluster; prints the kubeconfig path
#   hack/dev-cluster.sh up --real-node  # the same with a real node instead of kwok (hack/real-node.sh)
#   hack/dev-cluster.sh down     # stop every process it started; keeps nothing running
#   hack/dev-cluster.sh status   # what runs, on which ports
#   hack/dev-cluster.sh env      # KUBECONFIG=... line for eval
#
# What runs, all on 127.0.0.1: etcd, kube-apiserver (token auth, RBAC),
# kube-controller-manager (every controller: Deployment, ReplicaSet,
# StatefulSet, Job, CronJob, HPA, garbage collector, ...), kube-scheduler and
# kwok, which simulates the kubelet of one fake Node: pods scheduled there turn
# Running (and Jobs' pods Succeeded) without any container being run. That is
# the fast default. With --real-node, kwok is not started and one real node
# runs the pods instead (containerd, kubelet, kube-proxy, CoreDNS and a
# NetworkPolicy enforcer: hack/real-node.sh; root only). `up` switches a running
# cluster between the two; the mode is kept in $AUTHSTACK_DEV_DIR/mode.
#
# State (data, keys, logs, kubeconfig) lives in $AUTHSTACK_DEV_DIR, default
# ~/.cache/authstack/dev-cluster. `up` is idempotent: a running cluster is left
# alone, a half-dead one is restarted. Ports are chosen once (the first free
# port from a per-component default, plus $AUTHSTACK_DEV_PORT_OFFSET) and kept
# in $AUTHSTACK_DEV_DIR/ports.env.
#
# AUTHSTACK_DEV_WATCH_PID=<pid>: stop the cluster when that process exits
# (the e2e tests set it, so a killed test run leaves nothing behind).
#
# AUTHSTACK_DEV_AUDIT_POLICY=<file>: the API server writes an audit log with
# that policy to $AUTHSTACK_DEV_DIR/logs/audit.log (JSON lines; cmd/operatorbench
# counts the operator's requests in it). Read when the API server starts: a
# cluster already running keeps the audit settings it was started with.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${AUTHSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authstack}"
STATE="${AUTHSTACK_DEV_DIR:-$CACHE/dev-cluster}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
KUBECONFIG_OUT="$STATE/kubeconfig"
REAL_NODE=0
[ "${2:-}" = "--real-node" ] && REAL_NODE=1
[ -f "${AUTHSTACK_DEV_DIR:-$CACHE/dev-cluster}/mode" ] && [ "${1:-}" != up ] &&
  [ "$(cat "${AUTHSTACK_DEV_DIR:-$CACHE/dev-cluster}/mode")" = real-node ] && REAL_NODE=1
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)
[ $REAL_NODE = 1 ] || COMPONENTS+=(kwok)

log() { echo "dev-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

# Process helpers (start, stop, alive, wait_for) shared with hack/real-node.sh.
# shellcheck source=hack/procs.sh
. "$HERE/procs.sh"

# --- ports ---------------------------------------------------------------------

first_free() { # from
  local p="$1"
  while port_busy "$p" || grep -q "=$p\$" "$STATE/ports.env.tmp" 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

choose_ports() {
  if [ -f "$STATE/ports.env" ]; then
    # shellcheck disable=SC1091
    . "$STATE/ports.env"
    return
  fi
  : >"$STATE/ports.env.tmp"
  local var def
  # Below the kernel's ephemeral range (32768-60999 by default), where outgoing
  # connections would take ports between this choice and the bind.
  local off="${AUTHSTACK_DEV_PORT_OFFSET:-0}"
  for spec in ETCD_PORT:22379 ETCD_PEER_PORT:22380 APISERVER_PORT:26443 KCM_PORT:26257 SCHED_PORT:26259 KWOK_PORT:26247; do
    var=${spec%%:*}; def=${spec#*:}
    echo "$var=$(first_free $((def + off)))" >>"$STATE/ports.env.tmp"
  done
  mv "$STATE/ports.env.tmp" "$STATE/ports.env"
  # shellcheck disable=SC1091
  . "$STATE/ports.env"
}

# --- binaries and files ----------------------------------------------------------

KUBECTL=""
find_kubectl() {
  if [ -n "${KUBECTL_BIN:-}" ]; then KUBECTL="$KUBECTL_BIN"
  elif [ -x /usr/bin/kubectl ]; then KUBECTL=/usr/bin/kubectl
  elif command -v kubectl >/dev/null 2>&1; then KUBECTL=$(command -v kubectl)
  else
    log "no kubectl installed: building it (once) with hack/control-plane.sh"
    KUBECTL="$("$HERE/control-plane.sh" kubectl)/kubectl"
  fi
}

build_binaries() {
  local missing=()
  for c in "${COMPONENTS[@]}"; do
    [ -x "$CP_BIN/$c" ] || missing+=("$c")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "building ${missing[*]} from the Go module proxy (once; cached in $CP_BIN)."
    log "first builds take minutes: kube-apiserver ~7, kube-controller-manager ~2.5, kube-scheduler ~1, kwok ~1.5, etcd ~1"
    "$HERE/control-plane.sh" "${missing[@]}" >/dev/null
  fi
}

# The kwok Stage configs, from the pinned kwok module: node initialize and
# heartbeat, pods Ready (Job pods Succeeded), deletion, and volumes (a PVC of
# the default StorageClass kwok-volume gets a PV and turns Bound).
kwok_stages() {
  local out="$STATE/kwok-stages.yaml"
  [ -s "$out" ] && [ -s "$STATE/storage-class.yaml" ] && return 0
  local dir
  dir=$(cd "$CACHE" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -d "$dir/kustomize/stage" ] || die "kwok $KWOK_VERSION module has no kustomize/stage (looked in '$dir')"
  : >"$out.tmp"
  for f in "$dir"/kustomize/stage/node/fast/node-initialize.yaml \
           "$dir"/kustomize/stage/node/heartbeat/node-heartbeat.yaml \
           "$dir"/kustomize/stage/pod/fast/pod-ready.yaml \
           "$dir"/kustomize/stage/pod/fast/pod-complete.yaml \
           "$dir"/kustomize/stage/pod/fast/pod-delete.yaml \
           "$dir"/kustomize/stage/volume/fast/pvc-provision.yaml \
           "$dir"/kustomize/stage/volume/fast/pv-bind.yaml \
           "$dir"/kustomize/stage/volume/fast/pvc-delete.yaml \
           "$dir"/kustomize/stage/volume/fast/pv-delete.yaml; do
    { echo "---"; cat "$f"; } >>"$out.tmp"
  done
  mv "$out.tmp" "$out"
  cp "$dir/kustomize/stage/volume/fast/storage-class.yaml" "$STATE/storage-class.yaml"
}

keys_and_config() {
  mkdir -p "$STATE/pki"
  if [ ! -s "$STATE/pki/sa.key" ]; then
    openssl genrsa -out "$STATE/pki/sa.key.tmp" 2048 2>/dev/null
    openssl rsa -in "$STATE/pki/sa.key.tmp" -pubout -out "$STATE/pki/sa.pub" 2>/dev/null
    mv "$STATE/pki/sa.key.tmp" "$STATE/pki/sa.key"
  fi
  if [ ! -s "$STATE/token" ]; then
    openssl rand -hex 24 >"$STATE/token.tmp"; mv "$STATE/token.tmp" "$STATE/token"
  fi
  chmod 600 "$STATE/token" "$STATE/pki/sa.key"
  TOKEN=$(cat "$STATE/token")
  printf '%s,admin,admin,"system:masters"\n' "$TOKEN" >"$STATE/tokens.csv"
  chmod 600 "$STATE/tokens.csv"
}

write_kubeconfig() { # the serving cert (from --cert-dir) holds its own CA
  local ca
  ca=$(base64 -w0 <"$STATE/pki/apiserver.crt")
  umask 077
  cat >"$KUBECONFIG_OUT.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: authstack-dev
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $ca
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: authstack-dev
  context: {cluster: authstack-dev, user: admin, namespace: default}
current-context: authstack-dev
EOF
  mv "$KUBECONFIG_OUT.tmp" "$KUBECONFIG_OUT"
}

curl_api() { curl -fsS --max-time 3 --cacert "$STATE/pki/apiserver.crt" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$APISERVER_PORT$1"; }
curl_healthz() { curl -fsSk --max-time 3 "https://127.0.0.1:$1/healthz"; }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" "$@"; }
node_ready() { kc get node kwok-node-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True; }

# --- commands --------------------------------------------------------------------

up() {
  local t0=$SECONDS
  mkdir -p "$STATE" "$LOGS" "$PIDS"
  # The folder hack/control-plane.sh builds into (same variables, same defaults).
  CP_BIN="$CACHE/k8s-${K8S_VERSION:-v1.37.2}-etcd-${ETCD_VERSION:-v3.6.16}/bin"
  build_binaries
  find_kubectl
  kwok_stages
  keys_and_config
  choose_ports

  # Anything left from a crash? Restart the parts that died; etcd and the API server
  # come first, so if one of them is down everything after it restarts too.
  if ! alive etcd || ! alive kube-apiserver; then
    for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$c"; done
  fi

  # A stopped component's port must be free (another program may have taken it).
  # With everything stopped, new ports are simply chosen (etcd keeps its data).
  local spec c any_alive=0
  for c in "${COMPONENTS[@]}"; do alive "$c" && any_alive=1; done
  if [ $any_alive = 0 ]; then
    for spec in ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHED_PORT KWOK_PORT; do
      if port_busy "${!spec}"; then
        log "port ${!spec} ($spec) is taken by another program: choosing new ports"
        rm -f "$STATE/ports.env"
        choose_ports
        break
      fi
    done
  fi
  for spec in etcd:ETCD_PORT etcd:ETCD_PEER_PORT kube-apiserver:APISERVER_PORT kube-controller-manager:KCM_PORT \
              kube-scheduler:SCHED_PORT kwok:KWOK_PORT; do
    local var=${spec#*:}
    if ! alive "${spec%%:*}" && port_busy "${!var}"; then
      die "port ${!var} ($var, for ${spec%%:*}) is taken by another program; stop it, or remove $STATE for a fresh cluster on other ports"
    fi
  done

  start etcd "$CP_BIN/etcd" --name default --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn
  wait_for "etcd" 60 etcd curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

  local audit=()
  if [ -n "${AUTHSTACK_DEV_AUDIT_POLICY:-}" ]; then
    [ -s "$AUTHSTACK_DEV_AUDIT_POLICY" ] || die "AUTHSTACK_DEV_AUDIT_POLICY=$AUTHSTACK_DEV_AUDIT_POLICY: no such file"
    # Rotated files (audit-<time>.log, every 100 MB) are all kept.
    audit=(--audit-policy-file "$AUTHSTACK_DEV_AUDIT_POLICY" --audit-log-path "$LOGS/audit.log" --audit-log-maxbackup 0)
  fi
  start kube-apiserver "$CP_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --endpoint-reconciler-type none --secure-port "$APISERVER_PORT" \
    --cert-dir "$STATE/pki" --token-auth-file "$STATE/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$STATE/pki/sa.pub" --service-account-signing-key-file "$STATE/pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 --enable-priority-and-fairness=false --profiling=false "${audit[@]}"
  wait_for "kube-apiserver /readyz" 120 kube-apiserver test -s "$STATE/pki/apiserver.crt"
  wait_for "kube-apiserver /readyz" 120 kube-apiserver curl_api /readyz
  write_kubeconfig

  start kube-controller-manager "$CP_BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_OUT" --leader-elect=false --controllers '*' \
    --service-account-private-key-file "$STATE/pki/sa.key" --root-ca-file "$STATE/pki/apiserver.crt" \
    --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$STATE/pki/kcm" \
    --node-monitor-grace-period 60s --profiling=false
  start kube-scheduler "$CP_BIN/kube-scheduler" \
    --kubeconfig "$KUBECONFIG_OUT" --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --cert-dir "$STATE/pki/scheduler" --profiling=false
  if [ $REAL_NODE = 0 ]; then
    start kwok "$CP_BIN/kwok" \
      --kubeconfig "$KUBECONFIG_OUT" --manage-all-nodes=false \
      --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
      --server-address "127.0.0.1:$KWOK_PORT" --node-ip 127.0.0.1 \
      -c "$STATE/kwok-stages.yaml"
  fi
  wait_for "kube-controller-manager /healthz" 90 kube-controller-manager curl_healthz "$KCM_PORT"
  wait_for "kube-scheduler /healthz" 90 kube-scheduler curl_healthz "$SCHED_PORT"

  wait_for "the default ServiceAccount" 60 kube-controller-manager kc get serviceaccount default -n default
  if [ $REAL_NODE = 1 ]; then
    # Switching from kwok: its fake node would take pods that never run.
    stop kwok
    kc delete node kwok-node-0 --ignore-not-found >/dev/null
    kc delete storageclass kwok-volume --ignore-not-found >/dev/null
    echo real-node >"$STATE/mode"
    "$HERE/real-node.sh" up
  else
    "$HERE/real-node.sh" down
    kc delete storageclass authstack-local --ignore-not-found >/dev/null # the real node's default
    kc apply --server-side --field-manager dev-cluster -f "$HERE/kwok/node.yaml" -f "$STATE/storage-class.yaml" >/dev/null
    wait_for "the fake node kwok-node-0 to be Ready" 90 kwok node_ready
    echo kwok >"$STATE/mode"
  fi

  if [ -n "${AUTHSTACK_DEV_WATCH_PID:-}" ]; then
    # Stop everything when the watched process ends, even if it cannot clean up.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" down' _ \
      "$AUTHSTACK_DEV_WATCH_PID" "$HERE/dev-cluster.sh" >>"$LOGS/watch.log" 2>&1 </dev/null &
    echo $! >"$PIDS/watch"
  fi
  if [ $REAL_NODE = 1 ]; then
    log "up in $((SECONDS - t0))s: API server https://127.0.0.1:$APISERVER_PORT, one real node (real-node-0)"
  else
    log "up in $((SECONDS - t0))s: API server https://127.0.0.1:$APISERVER_PORT, one fake node (kwok-node-0; pods on it are simulated by kwok)"
  fi
  log "use it: export KUBECONFIG=$KUBECONFIG_OUT"
  echo "$KUBECONFIG_OUT"
}

down() {
  local pid
  # The watcher first (unless we are it), then in reverse start order.
  if [ -f "$PIDS/watch" ]; then
    pid=$(cat "$PIDS/watch")
    if [ "$pid" != "$PPID" ] && [ "$pid" != "$$" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
    rm -f "$PIDS/watch"
  fi
  # The real node first (its kubelet and proxies are the API server's clients),
  # then the API server's other clients together, then the API server, then etcd.
  "$HERE/real-node.sh" down
  for c in kwok kube-scheduler kube-controller-manager; do stop "$c" & done
  wait
  stop kube-apiserver
  stop etcd
  log "stopped (state kept in $STATE; remove it for a fresh cluster)"
}

status() {
  [ -f "$STATE/ports.env" ] && . "$STATE/ports.env"
  local any=1 c
  for c in "${COMPONENTS[@]}"; do
    if alive "$c"; then echo "$c: running (pid $(pid_of "$c"))"; any=0; else echo "$c: stopped"; fi
  done
  echo "kubeconfig: $KUBECONFIG_OUT"
  [ -n "${APISERVER_PORT:-}" ] && echo "api server: https://127.0.0.1:$APISERVER_PORT"
  for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
  if [ $REAL_NODE = 1 ]; then "$HERE/real-node.sh" status || return 1; fi
  return $any
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_OUT" ;;
  *) echo "usage: $0 up [--real-node]|down|status|env" >&2; exit 2 ;;
esac
