#!/usr/bin/env bash
# Builds versitygw (an S3-compatible gateway; its "posix" backend serves a
# plain directory), pinned, with hack/go-tool.sh, cached outside the clone.
#
#   hack/s3-test-server.sh          # prints the binary's path on stdout
#
# internal/testservers.S3 finds it at $AUTHSTACK_CACHE/bin/versitygw
# (default ~/.cache/authstack/bin), or VERSITYGW_BIN, or PATH.
set -euo pipefail
VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
exec "$(dirname "$0")/go-tool.sh" versitygw github.com/versity/versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw
