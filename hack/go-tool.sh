#!/usr/bin/env bash
# Builds a Go program from the Go module proxy, pinned, through a throw-away
# wrapper module (no download site, no checkout), and caches the binary
# outside the clone under $AUTHSTACK_CACHE/bin, so the second run takes
# milliseconds. A stamp file names the version the cached binary was built from.
#
#   hack/go-tool.sh NAME MODULE VERSION PACKAGE [main]   # prints the binary's path on stdout
#
# With "main", the module itself is the main module: its source is taken from
# the module proxy (go mod download) into a writable copy and built there, so
# the replace directives of its go.mod apply (a wrapper module ignores them,
# and some programs, Traefik for one, do not build without them).
#
# Used by hack/s3-test-server.sh (versitygw) and hack/jaeger.sh.
set -euo pipefail

[ $# -eq 4 ] || [ $# -eq 5 ] || { echo "usage: $0 NAME MODULE VERSION PACKAGE [main]" >&2; exit 2; }
name="$1" module="$2" version="$3" pkg="$4" mode="${5:-wrap}"
CACHE="${AUTHSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authstack}"
BIN="$CACHE/bin"
STAMP="$BIN/.$name-$version"
mkdir -p "$BIN"

log() { echo "$name: $*" >&2; }

if [ -x "$BIN/$name" ] && [ -f "$STAMP" ]; then
  echo "$BIN/$name"
  exit 0
fi

dir="$CACHE/wrap-$name-$version"
if [ "$mode" = main ] && [ ! -f "$dir/.ready" ]; then
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

log "building $name $version into $BIN (the first build takes minutes)"
(cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' \
  -o "$BIN/$name.tmp" "$pkg")
mv "$BIN/$name.tmp" "$BIN/$name"
rm -f "$BIN/.$name-"*
touch "$STAMP"
echo "$BIN/$name"
