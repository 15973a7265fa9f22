#!/usr/bin/env bash
# A real node for the local cluster of hack/dev-cluster.sh: pods scheduled on
# it really run. `hack/dev-cluster.sh up --real-node` calls `up` once the control
# plane runs, and `hack/dev-cluster.sh down` calls `down`.
#
#   hack/real-node.sh up       # start the node (the control plane must run); idempotent
#   hack/real-node.sh down     # stop it and remove everything it set up on the host
#   hack/real-node.sh status
#   hack/real-node.sh build            # only build (or find) every binary the node needs
#   hack/real-node.sh cached           # exit 0 if they are all built (builds nothing)
#   hack/real-node.sh import FILE...   # import OCI image archives into the node's containerd
#
# What runs, as root, on the host:
#   containerd v2.4.2 (CRI) with Debian's runc, the CNI plugins bridge,
#     host-local, loopback and portmap v1.10.0: pods get addresses in $POD_CIDR
#     on the bridge $BRIDGE, whose address $GATEWAY is also the node's address;
#   kubelet v1.37.2, with failCgroupV1: false: this host is cgroup v1 (hybrid),
#     which kubelets since 1.35 refuse unless told (KEP-5573);
#   kube-proxy v1.37.2 (iptables mode) for Services;
#   CoreDNS (hack/coredns: only the plugins the Corefile uses) as a host process
#     serving cluster.local from the API server on
#     $GATEWAY:53, the pods' nameserver (a process, not a pod: it needs no image
#     and no Service, is up before the first pod, and the stack's NetworkPolicies
#     allow DNS to any address on port 53);
#   kube-router v2.1.0 with only its firewall on, enforcing networking.k8s.io/v1
#     NetworkPolicy with iptables and ipset (docs/getting-started.md says why
#     not kube-network-policies: this kernel has no nftables queue).
# Every root and state folder is under $AUTHSTACK_DEV_DIR/node; pods cannot be
# pulled from a registry: images are imported (`import` above; hack/images.sh and
# hack/oci-image.sh write them).
# The sandbox ("pause") image is built from hack/pause.
#
# One real node per machine: the bridge, the DNS address and the iptables rules
# are the host's. `down` leaves no process, mount, network namespace, bridge,
# cgroup or iptables rule behind, and restores the sysctls it changed.
set -euo pipefail
# containerd creates the containers' root folders (snapshots, upper dirs) with
# the umask it inherits: under hack/dev-cluster.sh's 077 a non-root container
# cannot even look up its own entrypoint ("stat /x: permission denied").
umask 022

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CACHE="${AUTHSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authstack}"
STATE="${AUTHSTACK_DEV_DIR:-$CACHE/dev-cluster}"
NODE="$STATE/node"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
KUBECONFIG_IN="$STATE/kubeconfig"
NODE_NAME=real-node-0
BRIDGE=authstack0
POD_CIDR=10.244.0.0/24
GATEWAY=10.244.0.1
SERVICE_CIDR=10.96.0.0/16 # the API server's --service-cluster-ip-range (hack/dev-cluster.sh)
CGROUP_ROOT=authstack-real-node
LOCK=/run/authstack-real-node # holds the state folder of the node that owns the host's bridge
SOCK="$NODE/containerd.sock"
PAUSE_IMAGE=localhost/authstack/pause:1
CONTAINERD_VERSION=v2.4.2 CNI_VERSION=v1.10.0 KUBE_ROUTER_VERSION=v2.1.0 CRICTL_VERSION=v1.37.0
DAEMONS=(containerd coredns kube-proxy kube-router kubelet)

log() { echo "real-node: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=hack/procs.sh
. "$HERE/procs.sh"

# --- binaries --------------------------------------------------------------------

containerd_bin() {
  CONTAINERD_BIN=$(GO_TOOL_TAGS="no_btrfs no_devmapper no_zfs" "$HERE/go-tool.sh" containerd \
    github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" \
    github.com/containerd/containerd/v2/cmd/containerd \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    github.com/containerd/containerd/v2/cmd/ctr)
}

# coredns_bin: CoreDNS with only the plugins the Corefile below uses, from its own
# module hack/coredns (the version is in its go.mod), cached under a hash of its source.
coredns_bin() {
  local key
  key=$(cat "$HERE/coredns/go.mod" "$HERE/coredns/go.sum" "$HERE/coredns/main.go" | sha256sum | cut -c1-12)
  # Named coredns: hack/procs.sh tells a daemon by its executable's name.
  COREDNS="$CACHE/bin/coredns-$key/coredns"
  [ -x "$COREDNS" ] && return
  [ "${1:-}" = check ] && return 1
  echo "coredns: building hack/coredns into $COREDNS (the first build takes minutes)" >&2
  mkdir -p "${COREDNS%/*}"
  (cd "$HERE/coredns" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$COREDNS.tmp" .)
  mv "$COREDNS.tmp" "$COREDNS"
}

# binaries: builds (once, cached) or finds every program the node runs.
binaries() {
  local miss=() b
  for b in runc iptables iptables-save ipset ip mount umount; do command -v "$b" >/dev/null 2>&1 || miss+=("$b"); done
  [ ${#miss[@]} -eq 0 ] || die "missing ${miss[*]}: run hack/test-deps.sh as root (it installs runc, iptables and ipset)"
  CP_BIN=$("$HERE/control-plane.sh" kubelet kube-proxy)
  containerd_bin
  CNI_BIN=$("$HERE/go-tool.sh" cni-plugins github.com/containernetworking/plugins "$CNI_VERSION" \
    github.com/containernetworking/plugins/plugins/main/bridge \
    github.com/containernetworking/plugins/plugins/ipam/host-local \
    github.com/containernetworking/plugins/plugins/main/loopback \
    github.com/containernetworking/plugins/plugins/meta/portmap)
  KUBE_ROUTER=$("$HERE/go-tool.sh" kube-router github.com/cloudnativelabs/kube-router/v2 "$KUBE_ROUTER_VERSION" \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
  coredns_bin
  CRICTL=$("$HERE/go-tool.sh" crictl sigs.k8s.io/cri-tools "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl)
}

# cached: says (exit 0) whether every binary the node runs is built already,
# without building anything (the demo picks the real node only then).
cached() {
  local f
  for f in "$CACHE/bin/containerd-$CONTAINERD_VERSION/.ready" "$CACHE/bin/cni-plugins-$CNI_VERSION/.ready" \
    "$CACHE/bin/.kube-router-$KUBE_ROUTER_VERSION" "$CACHE/bin/.crictl-$CRICTL_VERSION" \
    "$("$HERE/control-plane.sh" --dir)/kubelet" "$("$HERE/control-plane.sh" --dir)/kube-proxy"; do
    [ -e "$f" ] || { echo "not built yet: $f"; return 1; }
  done
  coredns_bin check || { echo "not built yet: $COREDNS"; return 1; }
}

ctr_() { "$CONTAINERD_BIN/ctr" -a "$SOCK" -n k8s.io "$@"; }
crictl_() { "$CRICTL" --runtime-endpoint "unix://$SOCK" --image-endpoint "unix://$SOCK" --timeout 30s "$@"; }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_IN" "$@"; }

# pause_image: the sandbox image, built from hack/pause and imported once per node.
pause_image() {
  ctr_ images ls -q | grep -qx "$PAUSE_IMAGE" && return 0
  local dir="$NODE/pause-image"
  rm -rf "$dir"; mkdir -p "$dir/rootfs"
  (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$dir/rootfs/pause" ./hack/pause)
  "$HERE/oci-image.sh" "$PAUSE_IMAGE" "$dir/rootfs" "$dir/pause.tar" '["/pause"]' 65535:65535
  ctr_ images import "$dir/pause.tar" >/dev/null
  rm -rf "$dir"
}

# --- configuration -----------------------------------------------------------------

choose_node_ports() {
  # shellcheck disable=SC1091
  if [ -f "$NODE/ports.env" ]; then . "$NODE/ports.env"; return; fi
  local p=27250 var out=""
  for var in KUBELET_PORT KUBELET_HEALTHZ_PORT PROXY_HEALTHZ_PORT PROXY_METRICS_PORT ROUTER_HEALTH_PORT; do
    while port_busy "$p"; do p=$((p + 1)); done
    out+="$var=$p"$'\n'; p=$((p + 1))
  done
  printf '%s' "$out" >"$NODE/ports.env"
  # shellcheck disable=SC1091
  . "$NODE/ports.env"
}

write_configs() {
  mkdir -p "$NODE/cni/net.d" "$NODE/containerd" "$NODE/kubelet" "$NODE/pod-logs" "$NODE/volumes"
  cat >"$NODE/containerd/config.toml" <<EOF
version = 4
root = "$NODE/containerd/root"
state = "$NODE/containerd/state"
imports = []
[plugins.'io.containerd.server.v1.grpc']
  address = "$SOCK"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "$SOCK.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = "$NODE/containerd/opt"
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "$PAUSE_IMAGE"
[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  # This machine lets no process lower its oom_score_adj (runc fails the
  # sandbox with "failed to update /proc/self/oom_score_adj: Permission denied"
  # for the kubelet's -998): keep containers at or above containerd's own.
  restrict_oom_score_adj = true
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["$CNI_BIN"]
  conf_dir = "$NODE/cni/net.d"
  max_conf_num = 1
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = "$(command -v runc)"
  Root = "$NODE/containerd/runc"
  SystemdCgroup = false
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
EOF
  cat >"$NODE/cni/net.d/10-authstack.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "authstack", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$NODE/cni/ipam",
            "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GATEWAY"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
EOF
  # failCgroupV1: false: kubelets since 1.35 refuse cgroup v1 hosts unless told (KEP-5573).
  # The kubelet serves on 127.0.0.1 only (no logs/exec through the API server: pods
  # reach $GATEWAY, and a kubelet API there would be theirs to call).
  # Image GC is off: an image deleted here cannot be pulled again.
  cat >"$NODE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
authorization: {mode: Webhook}
clusterDNS: [$GATEWAY]
clusterDomain: cluster.local
resolvConf: ""
containerRuntimeEndpoint: unix://$SOCK
podLogsDir: $NODE/pod-logs
failSwapOn: false
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
serializeImagePulls: false
maxPods: 60
EOF
  cat >"$NODE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $KUBECONFIG_IN}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
nodePortAddresses: [$GATEWAY/32]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  cat >"$NODE/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 {
  bind $GATEWAY
  errors
  kubernetes cluster.local in-addr.arpa {
    kubeconfig $KUBECONFIG_IN authstack-dev
    pods insecure
  }
  cache 5
}
EOF
}

# --- host setup ----------------------------------------------------------------------

sysctl_set() { # KEY VALUE: remembers the first value seen, so down can restore it
  local f="/proc/sys/${1//.//}" saved="$NODE/sysctl/$1"
  mkdir -p "$NODE/sysctl"
  [ -f "$saved" ] || cat "$f" >"$saved"
  echo "$2" >"$f"
}

host_setup() {
  # Pods route through the host (Services, DNS on the gateway); bridged pod to pod
  # traffic must pass iptables for NetworkPolicy and Services to apply.
  sysctl_set net.ipv4.ip_forward 1
  sysctl_set net.bridge.bridge-nf-call-iptables 1
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$GATEWAY/${POD_CIDR#*/}" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -L "${h%/}" ] && continue
    case "$h" in */unified/) continue ;; esac
    mkdir -p "$h$CGROUP_ROOT"
  done
}

# volumes: the default StorageClass authstack-local and $VOLUMES local
# PersistentVolumes under $NODE/volumes for PVCs to bind to (no provisioner
# runs). A volume released by its claim is wiped and offered again on the next `up`.
VOLUMES=12
volumes() {
  local i pv dir phase
  {
    cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: authstack-local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF
    for i in $(seq 0 $((VOLUMES - 1))); do
      pv="authstack-local-$i" dir="$NODE/volumes/$i"
      phase=$(kc get pv "$pv" -o jsonpath='{.status.phase}' 2>/dev/null || true)
      if [ "$phase" = Released ] || [ "$phase" = Failed ]; then
        kc delete pv "$pv" --wait=true >/dev/null
        rm -rf "$dir"
      fi
      # Any uid may write: the pods' users differ (restricted pods run as non-root).
      mkdir -p "$dir"; chmod 0777 "$dir"
      cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: $pv}
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: authstack-local
  local: {path: $dir}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}]
EOF
    done
  } | kc apply --server-side --field-manager real-node -f - >/dev/null
}

# --- commands ----------------------------------------------------------------------

node_ready() { kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True; }

up() {
  [ "$(id -u)" -eq 0 ] || die "the real node needs root (containers, network namespaces, iptables)"
  [ -s "$KUBECONFIG_IN" ] || die "no control plane in $STATE: start it with hack/dev-cluster.sh up --real-node"
  KUBECTL="${KUBECTL_BIN:-$(command -v kubectl || echo "$("$HERE/control-plane.sh" kubectl)/kubectl")}"
  if [ -f "$LOCK" ] && [ "$(cat "$LOCK")" != "$STATE" ] && [ -d "$(cat "$LOCK")/node" ]; then
    die "another real node runs on this machine (state $(cat "$LOCK")); one at a time: stop it with AUTHSTACK_DEV_DIR=$(cat "$LOCK") hack/dev-cluster.sh down"
  fi
  local t0=$SECONDS
  mkdir -p "$NODE" "$LOGS" "$PIDS"
  echo "$STATE" >"$LOCK"
  binaries
  choose_node_ports
  write_configs
  host_setup

  start containerd "$CONTAINERD_BIN/containerd" --config "$NODE/containerd/config.toml"
  wait_for "containerd" 60 containerd ctr_ version
  pause_image
  start coredns "$COREDNS" -conf "$NODE/Corefile"
  start kube-proxy "$CP_BIN/kube-proxy" --config "$NODE/kube-proxy.yaml"
  start kubelet "$CP_BIN/kubelet" --config "$NODE/kubelet/config.yaml" --kubeconfig "$KUBECONFIG_IN" \
    --root-dir "$NODE/kubelet" --node-ip "$GATEWAY" --hostname-override "$NODE_NAME"
  # kube-router reads its node's address from the Node object at start.
  wait_for "the kubelet to register the node $NODE_NAME" 120 kubelet kc get node "$NODE_NAME"
  start kube-router "$KUBE_ROUTER" --kubeconfig "$KUBECONFIG_IN" --hostname-override "$NODE_NAME" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
    --enable-cni=false --enable-ipv4=true --enable-ipv6=false --service-cluster-ip-range "$SERVICE_CIDR" \
    --health-port "$ROUTER_HEALTH_PORT" --metrics-port 0
  wait_for "the node $NODE_NAME to be Ready" 180 kubelet node_ready
  wait_for "kube-proxy /healthz" 60 kube-proxy curl -fsS --max-time 2 "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
  wait_for "kube-router /healthz" 60 kube-router curl -fsS --max-time 2 "http://127.0.0.1:$ROUTER_HEALTH_PORT/healthz"
  local c; for c in "${DAEMONS[@]}"; do alive "$c" || die "$c exited (log: $LOGS/$c.log)"; done
  volumes
  log "up in $((SECONDS - t0))s: node $NODE_NAME ($GATEWAY), pods in $POD_CIDR, DNS $GATEWAY:53, containerd $SOCK"
}

# purge_router_rules: kube-router v2.1.0's --cleanup-config leaves its filter
# rules, chains and ipsets behind here (and then panics cleaning up IPVS, which this
# kernel lacks): delete every rule that jumps to one of its chains, then the chains.
ROUTER_CHAINS='KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-|KUBE-FIREWALL'
purge_router_rules() {
  local rule chain
  iptables-save -t filter | { grep -E "^-A .* -j ($ROUTER_CHAINS)" || true; } | while read -r rule; do
    eval "iptables -t filter -D ${rule#-A }" || log "cannot delete the rule: $rule"
  done
  iptables-save -t filter | sed -n 's/^:\([^ ]*\) .*/\1/p' | { grep -E "^($ROUTER_CHAINS)" || true; } | while read -r chain; do
    iptables -t filter -F "$chain"
  done
  iptables-save -t filter | sed -n 's/^:\([^ ]*\) .*/\1/p' | { grep -E "^($ROUTER_CHAINS)" || true; } | while read -r chain; do
    iptables -t filter -X "$chain" || log "cannot delete the chain $chain"
  done
  # Its ipsets, which it could not destroy while those rules used them.
  ipset list -n | { grep -E '^KUBE-(SRC|DST)-' || true; } | while read -r set; do
    ipset destroy "$set" || log "cannot destroy the ipset $set"
  done
}

# our_shims: pids of the runc shims of this node's containerd.
our_shims() {
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "-address $SOCK " && echo "${p#/proc/}"
  done
  return 0
}

down() {
  [ -d "$NODE" ] || return 0
  KUBECTL="${KUBECTL_BIN:-$(command -v kubectl || echo "$("$HERE/control-plane.sh" kubectl)/kubectl")}"
  binaries
  stop kubelet
  # Pod sandboxes through the CRI, so the CNI plugins release their addresses,
  # veths and netns, then the containerd daemon and any shim left.
  if alive containerd; then
    crictl_ rmp --all --force >/dev/null 2>&1 || crictl_ rmp --all --force >&2 || log "crictl rmp failed; cleaning up by hand"
  fi
  stop kube-router
  "$KUBE_ROUTER" --cleanup-config >>"$LOGS/kube-router.log" 2>&1 || true
  purge_router_rules
  stop kube-proxy
  "$CP_BIN/kube-proxy" --cleanup --config "$NODE/kube-proxy.yaml" >>"$LOGS/kube-proxy.log" 2>&1 || log "kube-proxy --cleanup failed (log: $LOGS/kube-proxy.log)"
  stop coredns
  stop containerd
  local p; for p in $(our_shims); do kill -KILL "$p" 2>/dev/null || true; done
  # Mounts under the node's folder (netns, sandboxes' /dev/shm, volumes, overlays), deepest first.
  local m
  # (A grep that matches nothing must not end `down` under pipefail.)
  awk '{print $2}' /proc/mounts | { grep -F "$NODE/" || true; } | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || log "cannot unmount $m"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  local h
  for h in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    if [ -d "$h" ]; then find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
  local f; for f in "$NODE"/sysctl/*; do
    [ -f "$f" ] && cat "$f" >"/proc/sys/$(basename "$f" | tr . /)" && rm -f "$f"
  done
  [ -f "$LOCK" ] && [ "$(cat "$LOCK")" = "$STATE" ] && rm -f "$LOCK"
  if [ -s "$KUBECONFIG_IN" ]; then kc delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true; fi
  # The pod state (containers, CNI addresses, volumes) is gone with the pods.
  rm -rf "$NODE/cni/ipam" "$NODE/kubelet/pods" "$NODE/containerd/state"
  log "stopped"
}

status() {
  local c rc=0
  for c in "${DAEMONS[@]}"; do
    if alive "$c"; then echo "$c: running (pid $(pid_of "$c"))"; else echo "$c: stopped"; rc=1; fi
  done
  return $rc
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  build) binaries ;;
  cached) cached ;;
  import)
    shift; containerd_bin
    alive containerd || die "the node's containerd is not running (hack/dev-cluster.sh up --real-node)"
    for f in "$@"; do ctr_ images import "$f" >&2; done ;;
  *) echo "usage: $0 up|down|status|build|cached|import FILE..." >&2; exit 2 ;;
esac
