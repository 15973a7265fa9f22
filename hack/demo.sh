#!/usr/bin/env bash
# The README's main command (make demo): AuthStack doing its job on this
# machine, with no container runtime and no internet.
#
#   hack/demo.sh up     # cluster, CRD, operator, sample AuthStack -> Ready; then the real authserver walk
#   hack/demo.sh down   # stop every process the demo started, and the cluster
#
# On a machine that can run the real node (root, runc/iptables/ipset, its
# binaries built, no other real node running), the pods really run: see
# up_real. Otherwise (it says why) the kwok mode below:
#
# Honest about what is simulated: the Kubernetes control plane is real (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler built from source),
# the operator is this checkout's, but the pods are simulated by kwok: nothing
# runs in them. The authserver that then serves real signups is this
# checkout's binary, run as a local process with exactly the environment and
# files the operator rendered into its Deployment and Secrets (addresses
# translated to loopback), next to real PostgreSQL, Redis, pgbouncer (with the
# pgbouncer.ini the operator rendered) and mailpit processes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${AUTHSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authstack}"
DEMO="${AUTHSTACK_DEMO_DIR:-$CACHE/demo}"
export AUTHSTACK_DEV_DIR="${AUTHSTACK_DEV_DIR:-$CACHE/dev-cluster}"
NS=default
NAME=example
SAMPLE="$ROOT/config/samples/auth_v1alpha1_authstack.yaml"

# kubectl: the installed one, else built once from the Kubernetes sources.
if [ -x /usr/bin/kubectl ]; then KUBECTL=/usr/bin/kubectl
elif command -v kubectl >/dev/null 2>&1; then KUBECTL=$(command -v kubectl)
else KUBECTL=""; fi
kubectl() {
  if [ -z "$KUBECTL" ]; then
    echo "    no kubectl installed: building it once from the Kubernetes sources (hack/control-plane.sh kubectl)" >&2
    KUBECTL="$("$ROOT/hack/control-plane.sh" kubectl)/kubectl"
  fi
  "$KUBECTL" "$@"
}

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

pid_alive() { [ -f "$DEMO/pids/$1" ] && kill -0 "$(cat "$DEMO/pids/$1")" 2>/dev/null; }

start_daemon() { # NAME CMD... : in its own session, output to logs/NAME.log
  local name="$1"; shift
  mkdir -p "$DEMO/logs" "$DEMO/pids"
  : >"$DEMO/logs/$name.log"
  setsid "$@" >>"$DEMO/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$DEMO/pids/$name"
}

stop_daemon() { # NAME: SIGTERM (it stops what it started), then SIGKILL after 20 s
  local pid
  [ -f "$DEMO/pids/$1" ] || return 0
  pid=$(cat "$DEMO/pids/$1")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$DEMO/pids/$1"
}

wait_file() { # FILE DAEMON SECONDS
  local deadline=$((SECONDS + $3))
  until [ -s "$1" ]; do
    pid_alive "$2" || { cat "$DEMO/logs/$2.log" >&2; die "$2 stopped (log: $DEMO/logs/$2.log)"; }
    [ $SECONDS -lt $deadline ] || { cat "$DEMO/logs/$2.log" >&2; die "timed out waiting for $2"; }
    sleep 0.3
  done
}

install_crd() {
  kubectl apply --server-side --field-manager authstack-demo -f "$ROOT/config/crd/bases" >/dev/null
  for _ in $(seq 60); do # kubectl wait fails at once while the CRD has no status yet
    kubectl wait --for condition=Established --timeout 5s crd/authstacks.auth.leanauth.dev >/dev/null 2>&1 && break
    sleep 1
  done
  kubectl wait --for condition=Established --timeout 5s crd/authstacks.auth.leanauth.dev >/dev/null
}

stop_processes() {
  stop_daemon authserver
  for d in servers operator; do stop_daemon "$d" & done
  wait
  rm -f "$DEMO/servers.json" "$DEMO/authserver.json"
}

up() {
  local t0=$SECONDS
  mkdir -p "$DEMO/bin"
  stop_processes # a previous demo's processes, if any

  say "1/6 A local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)"
  note "binaries are built from the Go module proxy on first use and cached in $CACHE (first time: about 15 minutes on 2 cores)"
  KUBECONFIG="$("$ROOT/hack/dev-cluster.sh" up)"
  export KUBECONFIG
  note "kubeconfig: $KUBECONFIG"

  say "2/6 Test servers and the binaries of this checkout"
  note "checking PostgreSQL, Redis, pgbouncer and mailpit (hack/test-deps.sh; mailpit is built once, about 2 minutes)"
  "$ROOT/hack/test-deps.sh" >/dev/null
  note "building the operator, the authserver and the demo helper (go build; the first build takes a minute or two)"
  (cd "$ROOT" && go build -o "$DEMO/bin/manager" ./cmd/manager &&
    go build -o "$DEMO/bin/authserver" ./cmd/authserver &&
    go build -o "$DEMO/bin/authstack-demo" ./cmd/authstack-demo)

  say "3/6 The AuthStack CRD and the operator (a local process, leader election off)"
  install_crd
  if kubectl get authstack "$NAME" -n "$NS" >/dev/null 2>&1; then
    note "removing the AuthStack of a previous run (its pepper Secret stays, and is adopted again)"
    kubectl delete authstack "$NAME" -n "$NS" --wait --timeout 60s >/dev/null
  fi
  start_daemon operator "$DEMO/bin/manager" --kubeconfig "$KUBECONFIG" --leader-elect=false \
    --metrics-bind-address 0 --health-probe-bind-address 0 --authserver-image ghcr.io/leanauth/authserver:demo
  note "operator pid $(cat "$DEMO/pids/operator"), log $DEMO/logs/operator.log"

  say "4/6 The user's servers: PostgreSQL, Redis and an SMTP catcher (mailpit), as local processes"
  start_daemon servers "$DEMO/bin/authstack-demo" servers --state "$DEMO" --kubeconfig "$KUBECONFIG" --namespace "$NS" --sample "$SAMPLE"
  wait_file "$DEMO/servers.json" servers 120
  cat "$DEMO/logs/servers.log"

  say "5/6 kubectl apply the sample AuthStack ($SAMPLE) and wait for Ready"
  kubectl apply --server-side --field-manager authstack-demo -n "$NS" -f "$SAMPLE"
  note "the operator renders the Deployments, Services, HPA, PDBs, Ingress, NetworkPolicies and Secrets;"
  note "the real controller-manager and scheduler create and place the pods; kwok marks them Running (simulated)."
  local deadline=$((SECONDS + 180)) ready=""
  while :; do
    ready=$(kubectl get authstack "$NAME" -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
    [ "$ready" = True ] && break
    pid_alive operator || { tail -n 30 "$DEMO/logs/operator.log" >&2; die "the operator stopped"; }
    [ $SECONDS -lt $deadline ] || { kubectl get authstack,deploy,pods -n "$NS" >&2; die "AuthStack not Ready after 180 s"; }
    sleep 1
  done
  kubectl get authstack -n "$NS"
  echo
  kubectl get deployments,statefulsets,pods,hpa,pdb,ingress,networkpolicies -n "$NS" -l "app.kubernetes.io/instance=$NAME" 2>/dev/null || true
  note "(these pods are simulated by kwok on the fake node kwok-node-0: no container runs in them)"

  say "6/6 The real authserver with the configuration the operator rendered"
  note "reading Deployment $NAME-authserver and the Secrets it references; running the init container's"
  note "'migrate', then 'serve', with that environment (addresses translated to loopback) and the pepper file"
  start_daemon authserver "$DEMO/bin/authstack-demo" authserver --state "$DEMO" --kubeconfig "$KUBECONFIG" \
    --namespace "$NS" --name "$NAME" --binary "$DEMO/bin/authserver"
  wait_file "$DEMO/authserver.json" authserver 180
  cat "$DEMO/logs/authserver.log"
  echo
  note "walking a new user through it:"
  "$DEMO/bin/authstack-demo" walk --state "$DEMO"

  local url mail
  url=$(sed -n 's/.*"authServer": "\(.*\)".*/\1/p' "$DEMO/authserver.json")
  mail=$(sed -n 's/.*"mailpitAPI": "\(.*\)".*/\1/p' "$DEMO/authserver.json")
  say "Done in $((SECONDS - t0))s. Everything keeps running until 'make demo-down':"
  note "authserver   $url   (try: curl -s $url/ready)"
  note "mailpit      $mail   (the emails the authserver sent; a web UI)"
  note "kubectl      export KUBECONFIG=$KUBECONFIG; kubectl get authstack"
  note "logs         $DEMO/logs/"
}

# real_node_refusal: why this machine cannot run the demo on the real node
# ("" when it can). AUTHSTACK_DEMO_NODE=kwok asks for kwok, =real insists.
real_node_refusal() {
  [ "${AUTHSTACK_DEMO_NODE:-auto}" = kwok ] && { echo "AUTHSTACK_DEMO_NODE=kwok"; return; }
  [ "$(id -u)" = 0 ] || { echo "not root (containers, network namespaces and iptables need root)"; return; }
  local b
  for b in runc iptables ipset; do
    command -v "$b" >/dev/null 2>&1 || { echo "no $b (hack/test-deps.sh installs it)"; return; }
  done
  if [ -e /run/authstack-real-node ] && [ "$(cat /run/authstack-real-node 2>/dev/null)" != "$AUTHSTACK_DEV_DIR" ]; then
    echo "another real node runs on this machine (lock /run/authstack-real-node: $(cat /run/authstack-real-node 2>/dev/null))"; return
  fi
  local missing
  missing=$("$ROOT/hack/real-node.sh" cached) || { echo "the node's binaries are $missing (hack/real-node.sh build: about 90 minutes cold)"; return; }
}

# up_real: the same story on the real node: the operator's pods really run,
# from images built here (hack/images.sh), and the walk goes through the
# authserver's Service.
up_real() {
  local t0=$SECONDS
  mkdir -p "$DEMO/bin"
  stop_processes

  say "1/6 The images of this checkout, without Docker (hack/images.sh build; a second run takes seconds)"
  local refs
  refs=$(cd "$ROOT" && hack/images.sh build)
  img() { awk -v n="$1" '$1 == n {print $2}' <<<"$refs"; }
  awk '{print "    " $1 "  " $2}' <<<"$refs"

  say "2/6 A local control plane and one real node (containerd, runc, CNI, kubelet, kube-proxy, CoreDNS, kube-router)"
  KUBECONFIG="$("$ROOT/hack/dev-cluster.sh" up --real-node)"
  export KUBECONFIG
  note "kubeconfig: $KUBECONFIG"
  note "importing the images into the node's containerd (no registry)"
  local tarballs
  mapfile -t tarballs < <(awk '{print $3}' <<<"$refs")
  mkdir -p "$DEMO/logs"
  "$ROOT/hack/real-node.sh" import "${tarballs[@]}" 2>"$DEMO/logs/import.log" || die "importing the images failed (log: $DEMO/logs/import.log)"

  say "3/6 The AuthStack CRD and the operator (a local process, pointed at the local images)"
  note "the operator is bin/manager, built by step 1 (make build); building the walk's helper (go build ./cmd/authstack-demo)"
  (cd "$ROOT" && go build -o "$DEMO/bin/authstack-demo" ./cmd/authstack-demo)
  install_crd
  if kubectl get authstack "$NAME" -n "$NS" >/dev/null 2>&1; then
    note "removing the AuthStack of a previous run"
    kubectl delete authstack "$NAME" -n "$NS" --wait --timeout 120s >/dev/null
  fi
  start_daemon operator "$ROOT/bin/manager" --kubeconfig "$KUBECONFIG" --leader-elect=false \
    --metrics-bind-address 0 --health-probe-bind-address 0 \
    --authserver-image "$(img authserver)" --pgbouncer-image "$(img pgbouncer)" --redis-image "$(img redis)"
  note "operator pid $(cat "$DEMO/pids/operator"), log $DEMO/logs/operator.log"

  say "4/6 An SMTP catcher (mailpit) as a pod, Service smtp"
  kubectl apply --server-side --field-manager authstack-demo -n "$NS" -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: smtp, labels: {app: smtp}}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 1001, runAsGroup: 1001, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: mailpit
    image: $(img mailpit)
    imagePullPolicy: Never
    ports: [{containerPort: 1025}, {containerPort: 8025}]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
    volumeMounts: [{name: tmp, mountPath: /tmp}]
  volumes: [{name: tmp, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: smtp}
spec:
  selector: {app: smtp}
  ports: [{name: smtp, port: 1025}, {name: http, port: 8025}]
YAML
  note "waiting for the mailpit pod to be Ready"
  kubectl wait --for condition=Ready --timeout 180s pod/smtp -n "$NS" >/dev/null

  say "5/6 An AuthStack with managed PostgreSQL, managed Redis, pgbouncer and NetworkPolicies, and wait for Ready"
  local node_ip
  node_ip=$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
  kubectl apply --server-side --field-manager authstack-demo -n "$NS" -f - <<YAML
apiVersion: auth.leanauth.dev/v1alpha1
kind: AuthStack
metadata: {name: $NAME}
spec:
  authServer:
    replicas: 1
    autoscaling: {enabled: false}
    frontendURL: https://app.example.com
    mailFrom: "Example <noreply@example.com>"
    resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {memory: 256Mi}}
  database:
    managed:
      image: $(img postgres)
      resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {memory: 256Mi}}
      storage: {size: 256Mi}
  redis:
    resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {memory: 256Mi}}
    storage: {size: 256Mi}
  pooler: {enabled: true, poolMode: transaction, replicas: 1, resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {memory: 256Mi}}}
  smtp: {host: smtp, port: 1025}
  networkPolicy:
    enabled: true
    allowedIPBlocks: [{cidr: $node_ip/32}]   # this machine (the node's address) stands in for the ingress controller
YAML
  local deadline=$((SECONDS + 600)) ready="" last=""
  while :; do
    ready=$(kubectl get authstack "$NAME" -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
    [ "$ready" = True ] && break
    local msg
    msg=$(kubectl get authstack "$NAME" -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}' 2>/dev/null || true)
    [ "$msg" = "$last" ] || { note "waiting for Ready: ${msg:-no status yet}"; last=$msg; }
    pid_alive operator || { tail -n 30 "$DEMO/logs/operator.log" >&2; die "the operator stopped"; }
    [ $SECONDS -lt $deadline ] || { kubectl get authstack,deploy,sts,pods -n "$NS" >&2; die "AuthStack not Ready after 600 s"; }
    sleep 2
  done
  kubectl get authstack -n "$NS"
  echo
  kubectl get deployments,statefulsets,pods,networkpolicies -n "$NS" -o wide
  note "(these pods really run: their processes are on this machine, in the node's containerd)"

  say "6/6 Walking a new user through the authserver's Service"
  local as mp
  as="http://$(kubectl get svc "$NAME-authserver" -n "$NS" -o jsonpath='{.spec.clusterIP}'):3000"
  mp="http://$(kubectl get svc smtp -n "$NS" -o jsonpath='{.spec.clusterIP}'):8025"
  note "waiting until kube-proxy routes $as to the pod and the policy admits this machine"
  local n=0
  until curl -fsS -o /dev/null --max-time 5 "$as/ready" 2>/dev/null; do
    n=$((n + 1)); [ $n -lt 60 ] || die "the authserver Service $as does not answer"
    sleep 1
  done
  "$DEMO/bin/authstack-demo" walk --authserver "$as" --mailpit "$mp"

  say "Done in $((SECONDS - t0))s, on the real node. Everything keeps running until 'make demo-down':"
  note "authserver   $as   (the Service; try: curl -s $as/ready)"
  note "mailpit      $mp   (the emails the authserver sent; a web UI)"
  note "kubectl      export KUBECONFIG=$KUBECONFIG; kubectl get authstack,pods"
  note "logs         $DEMO/logs/ (operator), $AUTHSTACK_DEV_DIR/node/pod-logs/ (containers)"
}

down() {
  stop_processes
  "$ROOT/hack/dev-cluster.sh" down
}

start() {
  local why
  why=$(real_node_refusal)
  if [ -z "$why" ]; then
    say "The demo runs on a real node (pods really run). AUTHSTACK_DEMO_NODE=kwok for the simulated one."
    up_real
    return
  fi
  [ "${AUTHSTACK_DEMO_NODE:-auto}" = real ] && die "no real node: $why"
  say "Falling back to kwok (simulated pods): $why"
  up
}

case "${1:-up}" in
  up) start ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
