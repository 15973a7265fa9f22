#!/usr/bin/env bash
# Builds Traefik v3 (the edge proxy of the forward-auth tests in authserver/edge)
# from the Go module proxy, pinned, with hack/go-tool.sh, cached outside the
# clone. v3.6 is the newest v3 line that builds from the proxy: v3.7 replaces
# one of its own modules with a folder its module zip does not hold.
# Prints the binary's path on stdout.
set -euo pipefail

TRAEFIK_VERSION="${TRAEFIK_VERSION:-v3.6.12}"
GO_TOOL_MAIN=1 exec "$(dirname "$0")/go-tool.sh" traefik github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" ./cmd/traefik
