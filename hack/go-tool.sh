#!/usr/bin/env bash
# Builds Go programs from the Go module proxy, pinned, through a throw-away
# wrapper module (no download site, no checkout), and caches the binaries
# outside the clone under $AUTHSTACK_CACHE/bin, so the second run takes
# milliseconds. A stamp file names the version the cached binaries were built from.
#
#   hack/go-tool.sh NAME MODULE VERSION PACKAGE       # prints the binary's path on stdout
#   hack/go-tool.sh NAME MODULE VERSION PACKAGE...    # several packages of one module:
#       each binary is named after its package's last element, all in
#       $AUTHSTACK_CACHE/bin/NAME-VERSION/; prints that folder on stdout
#
# GO_TOOL_TAGS="a b": build tags (containerd: no_btrfs no_devmapper no_zfs).
# GO_TOOL_MAIN=1: the module itself is the main module: its source is taken from
# the module proxy (go mod download) into a writable copy and built there, so
# the replace directives of its go.mod apply (a wrapper module ignores them, and
# some programs, Traefik for one, do not build without them); PACKAGE is then
# relative to the module root (./cmd/traefik).
# Used by hack/s3-test-server.sh (versitygw), hack/jaeger.sh, hack/traefik.sh and hack/real-node.sh.
set -euo pipefail

[ $# -ge 4 ] || { echo "usage: $0 NAME MODULE VERSION PACKAGE..." >&2; exit 2; }
name="$1" module="$2" version="$3"; shift 3
pkgs=("$@")
CACHE="${AUTHSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authstack}"
BIN="$CACHE/bin"
tags="${GO_TOOL_TAGS:-}"
mkdir -p "$BIN"

log() { echo "$name: $*" >&2; }

if [ ${#pkgs[@]} -eq 1 ]; then
  out="$BIN/$name" stamp="$BIN/.$name-$version" done_when="$BIN/$name"
else
  out="$BIN/$name-$version" stamp="$BIN/$name-$version/.ready" done_when="$stamp"
fi
if [ -e "$done_when" ] && [ -f "$stamp" ]; then
  echo "$out"
  exit 0
fi

dir="$CACHE/wrap-$name-$version"
if [ "${GO_TOOL_MAIN:-}" = 1 ] && [ ! -f "$dir/.ready" ]; then
  log "downloading $module $version from the module proxy (first run only)"
  src="$(cd "$CACHE" && go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$src" ] || { log "go mod download gave no source folder"; exit 1; }
  rm -rf "$dir"; cp -r "$src" "$dir"; chmod -R u+w "$dir"
  touch "$dir/.ready"
elif [ ! -f "$dir/.ready" ]; then
  log "preparing a wrapper module for $module $version (first run only)"
  rm -rf "$dir"; mkdir -p "$dir"
  printf 'module wrap\ngo 1.25\n' > "$dir/go.mod"
  (cd "$dir" && GOFLAGS=-mod=mod go get "$module@$version" >&2)
  touch "$dir/.ready"
fi

gobuild() { # OUTPUT PACKAGE
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -tags "$tags" \
    -o "$1.tmp" "$2")
  mv "$1.tmp" "$1"
}

log "building $name $version (${pkgs[*]##*/}) into $BIN (the first build takes minutes)"
if [ ${#pkgs[@]} -eq 1 ]; then
  gobuild "$out" "${pkgs[0]}"
  rm -f "$BIN/.$name-"*
else
  rm -rf "$out"; mkdir -p "$out"
  for p in "${pkgs[@]}"; do gobuild "$out/${p##*/}" "$p"; done
fi
touch "$stamp"
echo "$out"
