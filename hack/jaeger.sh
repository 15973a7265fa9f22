#!/usr/bin/env bash
# Builds Jaeger (all-in-one: OTLP receiver + query API, in-memory storage),
# pinned, with hack/go-tool.sh, cached outside the clone.
#
#   hack/jaeger.sh          # prints the binary's path on stdout
#
# internal/testservers.Jaeger finds it at $AUTHSTACK_CACHE/bin/jaeger
# (default ~/.cache/authstack/bin), or JAEGER_BIN, or PATH.
set -euo pipefail
JAEGER_VERSION="${JAEGER_VERSION:-v1.76.0}"
exec "$(dirname "$0")/go-tool.sh" jaeger github.com/jaegertracing/jaeger "$JAEGER_VERSION" github.com/jaegertracing/jaeger/cmd/jaeger
