#!/usr/bin/env bash
# Builds versitygw (an S3-compatible gateway; its "posix" backend serves a
# plain directory) from the Go module proxy, pinned, through a throw-away
# wrapper module like hack/control-plane.sh does for etcd, and caches the
# binary outside the clone, so the second run takes milliseconds.
#
#   hack/s3-test-server.sh          # prints the binary's path on stdout
#
# internal/testservers.S3 finds it at $AUTHSTACK_CACHE/bin/versitygw
# (default ~/.cache/authstack/bin), or VERSITYGW_BIN, or PATH.
set -euo pipefail

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
CACHE="${AUTHSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authstack}"
BIN="$CACHE/bin"
STAMP="$BIN/.versitygw-$VERSITYGW_VERSION"
mkdir -p "$BIN"

log() { echo "s3-test-server: $*" >&2; }

if [ -x "$BIN/versitygw" ] && [ -f "$STAMP" ]; then
  echo "$BIN/versitygw"
  exit 0
fi

dir="$CACHE/wrap-versitygw-$VERSITYGW_VERSION"
if [ ! -f "$dir/.ready" ]; then
  log "preparing a wrapper module for versitygw $VERSITYGW_VERSION (first run only)"
  rm -rf "$dir"; mkdir -p "$dir"
  printf 'module wrap\ngo 1.25\n' > "$dir/go.mod"
  (cd "$dir" && GOFLAGS=-mod=mod go get "github.com/versity/versitygw@$VERSITYGW_VERSION" >&2)
  touch "$dir/.ready"
fi

log "building versitygw $VERSITYGW_VERSION into $BIN (the first build takes a few minutes)"
(cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' \
  -o "$BIN/versitygw.tmp" github.com/versity/versitygw/cmd/versitygw)
mv "$BIN/versitygw.tmp" "$BIN/versitygw"
rm -f "$BIN"/.versitygw-*
touch "$STAMP"
echo "$BIN/versitygw"
