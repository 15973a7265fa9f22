#!/usr/bin/env bash
# Builds Jaeger (all-in-one: OTLP receiver + query API, in-memory storage)
# from the Go module proxy, pinned, through a throw-away wrapper module like
# hack/s3-test-server.sh does for versitygw, and caches the binary outside the
# clone, so the second run takes milliseconds.
#
#   hack/jaeger.sh          # prints the binary's path on stdout
#
# internal/testservers.Jaeger finds it at $AUTHSTACK_CACHE/bin/jaeger
# (default ~/.cache/authstack/bin), or JAEGER_BIN, or PATH.
set -euo pipefail

JAEGER_VERSION="${JAEGER_VERSION:-v1.76.0}"
CACHE="${AUTHSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authstack}"
BIN="$CACHE/bin"
STAMP="$BIN/.jaeger-$JAEGER_VERSION"
mkdir -p "$BIN"

log() { echo "jaeger: $*" >&2; }

if [ -x "$BIN/jaeger" ] && [ -f "$STAMP" ]; then
  echo "$BIN/jaeger"
  exit 0
fi

dir="$CACHE/wrap-jaeger-$JAEGER_VERSION"
if [ ! -f "$dir/.ready" ]; then
  log "preparing a wrapper module for jaeger $JAEGER_VERSION (first run only)"
  rm -rf "$dir"; mkdir -p "$dir"
  printf 'module wrap\ngo 1.25\n' > "$dir/go.mod"
  (cd "$dir" && GOFLAGS=-mod=mod go get "github.com/jaegertracing/jaeger@$JAEGER_VERSION" >&2)
  touch "$dir/.ready"
fi

log "building jaeger $JAEGER_VERSION into $BIN (the first build takes several minutes)"
(cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' \
  -o "$BIN/jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
mv "$BIN/jaeger.tmp" "$BIN/jaeger"
rm -f "$BIN"/.jaeger-*
touch "$STAMP"
echo "$BIN/jaeger"
