#!/usr/bin/env bash
# Builds Helm (the helm CLI), pinned, with hack/go-tool.sh, cached outside the clone.
#
#   hack/helm.sh          # prints the binary's path on stdout
#
# The chart tests (charts/authstack-operator/charttest) find it at
# $AUTHSTACK_CACHE/bin/helm (default ~/.cache/authstack/bin), or HELM_BIN, or PATH.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
exec "$(dirname "$0")/go-tool.sh" helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
