#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries from the Go module proxy and
# caches them outside the clone, so the second run takes seconds.
#
#   hack/control-plane.sh [component ...]   # default: kube-apiserver etcd
#   hack/control-plane.sh --dir             # only print the folder
#
# Components: kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok
#             kubelet kube-proxy (the real node: hack/real-node.sh)
# Prints the folder holding the binaries on stdout (use it as KUBEBUILDER_ASSETS).
# No download site is needed: everything comes through GOPROXY, which is why
# setup-envtest (which downloads from its own release site) is not used.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
CACHE="${AUTHSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authstack}"
BIN="$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION/bin"
[ "${1:-}" = --dir ] && { echo "$BIN"; exit 0; } # where the binaries are (or would be): builds nothing
mkdir -p "$BIN"

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kube-apiserver etcd)

log() { echo "control-plane: $*" >&2; }

# A throw-away module that requires k8s.io/kubernetes and replaces each
# staging module with its published version (the upstream go.mod points them at ./staging).
k8s_wrapper() {
  local dir="$CACHE/wrap-kubernetes-$K8S_VERSION"
  if [ ! -f "$dir/.ready" ]; then
    log "preparing a wrapper module for k8s.io/kubernetes $K8S_VERSION (first run only)"
    rm -rf "$dir"; mkdir -p "$dir"
    local gomod staging_ver
    gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    staging_ver="v0.${K8S_VERSION#v1.}"
    {
      echo "module wrap"
      echo "go 1.25"
      echo "require k8s.io/kubernetes $K8S_VERSION"
      grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | sort -u |
        while read -r m; do echo "replace $m => $m $staging_ver"; done
    } > "$dir/go.mod"
    touch "$dir/.ready"
  fi
  echo "$dir"
}

simple_wrapper() { # name module version
  local dir="$CACHE/wrap-$1-$3"
  if [ ! -f "$dir/.ready" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    printf 'module wrap\ngo 1.25\n' > "$dir/go.mod"
    (cd "$dir" && GOFLAGS=-mod=mod go get "$2@$3" >/dev/null 2>&1)
    touch "$dir/.ready"
  fi
  echo "$dir"
}

build() { # component
  local c="$1" dir pkg
  [ -x "$BIN/$c" ] && return 0
  case "$c" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|kubelet|kube-proxy)
      dir=$(k8s_wrapper); pkg="k8s.io/kubernetes/cmd/$c" ;;
    etcd)
      dir=$(simple_wrapper etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"); pkg="go.etcd.io/etcd/server/v3" ;;
    kwok)
      dir=$(simple_wrapper kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"); pkg="sigs.k8s.io/kwok/cmd/kwok" ;;
    *) echo "unknown component $c" >&2; exit 2 ;;
  esac
  log "building $c (cached in $BIN; the first build of kube-apiserver takes several minutes)"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$BIN/$c.tmp" "$pkg")
  mv "$BIN/$c.tmp" "$BIN/$c"
}

for c in "${components[@]}"; do build "$c"; done
echo "$BIN"
