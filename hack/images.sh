#!/usr/bin/env bash
# Builds AuthStack's container images without Docker or a registry download,
# as image tarballs (what `ctr images import` reads) in $AUTHSTACK_CACHE/images:
# authserver and manager from `make build` (VERSION baked in), PostgreSQL, Redis
# and pgbouncer from Debian packages (extracted with mmdebstrap, only the needed
# files and their libraries), mailpit and versitygw (the e2e suite's SMTP and S3
# servers), a client image for probes, and the edge proxies of the real-node
# edge tests: Debian's nginx and Traefik (hack/traefik.sh's binary).
# internal/imagebuild does the work; everything is content-addressed, so a
# second run takes seconds.
#
#   hack/images.sh build             # prints "NAME REF TARBALL" lines (also in $CACHE/images/refs)
#   hack/images.sh flags             # the operator's image flags for these images
#
# hack/real-node.sh import TARBALL... loads them into the real node's containerd
# (test/realnode's LocalImages does both).
#
# The first run downloads about 100 MB of Debian packages (mmdebstrap, which
# hack/test-deps.sh installs, takes 56 to 70 s for it here).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${AUTHSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authstack}"
OUT="$CACHE/images"
mkdir -p "$OUT"

build() {
  local tools
  tools="$(hack/test-deps.sh)"            # mmdebstrap, mailpit (and the servers the tests use)
  hack/s3-test-server.sh >/dev/null        # versitygw, into the same folder
  make --no-print-directory build >&2      # bin/authserver, bin/manager
  go run ./internal/imagebuild -out "$OUT" -bin bin -tools "$tools" -version "$(cat VERSION)" >"$OUT/refs.tmp"
  mv "$OUT/refs.tmp" "$OUT/refs"
  # Tarballs of earlier contents go.
  for f in "$OUT"/*.tar; do
    awk '{print $3}' "$OUT/refs" | grep -qxF "$f" || rm -f "$f"
  done
  cat "$OUT/refs"
}

# ref NAME: the reference of image NAME from the last build.
ref() { awk -v n="$1" '$1==n{print $2}' "$OUT/refs"; }

case "${1:-}" in
  build) build ;;
  flags)
    [ -f "$OUT/refs" ] || build >/dev/null
    echo "--authserver-image=$(ref authserver) --pgbouncer-image=$(ref pgbouncer) --redis-image=$(ref redis)" ;;
  *) echo "usage: $0 build|flags" >&2; exit 2 ;;
esac
