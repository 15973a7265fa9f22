#!/usr/bin/env bash
# Installs the real servers the tests start on loopback (internal/testservers):
# PostgreSQL, redis-server and pgbouncer from Debian, Debian's chromium for the
# hosted pages' browser tests (authserver/ui), and mailpit (an SMTP
# server with an HTTP API) built from the Go module proxy into a cache outside
# the clone. Idempotent: the second run only checks and takes seconds.
#
#   hack/test-deps.sh
#
# As root (CI) it runs apt-get; as a normal user it only checks and tells you
# the command to run. Prints the folder holding mailpit on stdout.
set -euo pipefail

MAILPIT_VERSION="${MAILPIT_VERSION:-v1.33.1}"
CACHE="${AUTHSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authstack}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

log() { echo "test-deps: $*" >&2; }

# --- Debian packages ---------------------------------------------------------
missing=()
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }
have_postgres || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck) # lints controllers/resources/redis_bootstrap.sh
# The hosted pages' browser tests (cold install measured at 16 s, 348 MB).
[ -x /usr/bin/chromium ] || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  log "postgresql, redis-server, pgbouncer, shellcheck and chromium are installed"
elif [ "$(id -u)" -eq 0 ]; then
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Other jobs on the machine may hold the dpkg lock: wait for it.
  apt-get -o DPkg::Lock::Timeout=900 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >&2
  # The Debian packages start system services; the tests start their own
  # servers on free ports, so these are not needed (harmless if absent).
  for svc in postgresql redis-server pgbouncer; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      log "stopping the system $svc service (tests start their own)"
      systemctl stop "$svc" >&2 || true
    fi
  done
  have_postgres || { log "postgresql installed but no /usr/lib/postgresql/*/bin/postgres found"; exit 1; }
else
  log "missing: ${missing[*]}"
  log "run as root:  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  exit 1
fi

# --- mailpit -------------------------------------------------------------------
if [ -x "$BIN/mailpit" ]; then
  log "mailpit present: $BIN/mailpit"
else
  command -v go >/dev/null 2>&1 || { log "go is needed to build mailpit"; exit 1; }
  dir="$CACHE/wrap-mailpit-$MAILPIT_VERSION"
  if [ ! -f "$dir/.ready" ]; then
    log "preparing a wrapper module for github.com/axllent/mailpit $MAILPIT_VERSION"
    rm -rf "$dir"; mkdir -p "$dir"
    printf 'module wrap\ngo 1.25\n' > "$dir/go.mod"
    (cd "$dir" && GOFLAGS=-mod=mod go get "github.com/axllent/mailpit@$MAILPIT_VERSION" >&2)
    touch "$dir/.ready"
  fi
  log "building mailpit $MAILPIT_VERSION into $BIN (first run only, about 2-3 minutes)"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
    -ldflags="-s -w -X github.com/axllent/mailpit/config.Version=$MAILPIT_VERSION" \
    -o "$BIN/mailpit.tmp" github.com/axllent/mailpit)
  mv "$BIN/mailpit.tmp" "$BIN/mailpit"
  log "built $BIN/mailpit"
fi

echo "$BIN"
